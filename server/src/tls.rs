//! TLS on the client listeners, set up as etcd's `--cert-file`, `--key-file`,
//! `--trusted-ca-file`, `--client-cert-auth` and `--auto-tls` set it up.
//!
//! A TLS listener runs rustls (with the ring provider) in front of the same hyper connection
//! a plain listener serves, so gRPC (HTTP/2, ALPN `h2`) and the JSON gateway (HTTP/1.1,
//! ALPN `http/1.1`) share a TLS port as they share a plain one.
//!
//! Client certificates follow etcd's `TLSInfo.ServerConfig`: with a trusted CA every client
//! must present a certificate that chains to it (etcd asks for one as soon as
//! `--trusted-ca-file` is set, with or without `--client-cert-auth`); without a trusted CA
//! none is asked for. With `client_cert_auth`, each request of a connection carries its
//! client certificate's Common Name as a [`ClientCertName`] extension: the name etcd takes
//! as the user's when auth is on and a request has no token.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::Request;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::crypto::{ring, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a new connection has to send its first bytes and finish the TLS handshake; a
/// slow or silent client is dropped then (accepting goes on meanwhile: each handshake runs
/// in its connection's task).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The content type byte that starts a TLS record carrying a handshake message: every TLS
/// client's first byte.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a plain-text HTTP/1 request to a TLS listener gets back (as Go's `net/http`, and so
/// etcd, answers it), before the connection is closed.
const PLAIN_HTTP_ANSWER: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// How long the answer to a plain-text HTTP/1 request waits for the client to hang up, so
/// that closing with its request unread does not reset the connection before it reads the
/// answer.
const PLAIN_HTTP_LINGER: Duration = Duration::from_secs(1);

/// A PEM document: a file read when the server binds, or the text itself.
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    /// A file, read when the server binds (as etcd reads `--cert-file` and the others).
    File(PathBuf),
    /// The PEM text itself.
    Inline(Vec<u8>),
}

impl Pem {
    /// The PEM text: the file's content, or the text given.
    pub fn read(&self) -> io::Result<Vec<u8>> {
        match self {
            Pem::File(path) => std::fs::read(path)
                .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", path.display()))),
            Pem::Inline(text) => Ok(text.clone()),
        }
    }
}

/// A file shows its path; inline text only its length, since it may be a private key.
impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(path) => f.debug_tuple("File").field(path).finish(),
            Pem::Inline(text) => write!(f, "Inline({} bytes)", text.len()),
        }
    }
}

/// Where it came from, for error messages.
impl fmt::Display for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(path) => write!(f, "{}", path.display()),
            Pem::Inline(_) => f.write_str("the PEM given in memory"),
        }
    }
}

/// How a TLS listener is set up: the server's certificate and key, and what it asks of
/// clients.
///
/// ```
/// use etcdlite_server::tls::{Pem, TlsConfig};
///
/// // As `--cert-file server.pem --key-file server-key.pem --trusted-ca-file ca.pem
/// // --client-cert-auth`:
/// let tls = TlsConfig::from_files("server.pem", "server-key.pem")
///     .with_trusted_ca(Pem::File("ca.pem".into()))
///     .with_client_cert_auth();
/// assert!(tls.client_cert_auth);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// `--cert-file`: the server's certificate, then any intermediate CA certificates.
    pub cert: Pem,
    /// `--key-file`: the certificate's private key (PKCS#8, PKCS#1 or SEC1 PEM).
    pub key: Pem,
    /// `--trusted-ca-file`: the CA certificates a client's certificate must chain to. As in
    /// etcd, with it every client must present such a certificate, whether or not
    /// [`client_cert_auth`](TlsConfig::client_cert_auth) is set.
    pub trusted_ca: Option<Pem>,
    /// `--client-cert-auth`: every client must present a certificate signed by
    /// [`trusted_ca`](TlsConfig::trusted_ca) (which it needs: client certificates are not
    /// checked against the system's roots), and each request carries its Common Name as a
    /// [`ClientCertName`] extension.
    pub client_cert_auth: bool,
}

impl TlsConfig {
    /// The certificate and key in these PEM files, read when the server binds; no client
    /// certificates asked for.
    pub fn from_files(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> TlsConfig {
        TlsConfig::new(Pem::File(cert.into()), Pem::File(key.into()))
    }

    /// The certificate and key given as PEM text; no client certificates asked for.
    pub fn from_pem(cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> TlsConfig {
        TlsConfig::new(Pem::Inline(cert.into()), Pem::Inline(key.into()))
    }

    fn new(cert: Pem, key: Pem) -> TlsConfig {
        TlsConfig { cert, key, trusted_ca: None, client_cert_auth: false }
    }

    /// Requires a client certificate that chains to `ca` (`--trusted-ca-file`).
    pub fn with_trusted_ca(mut self, ca: Pem) -> TlsConfig {
        self.trusted_ca = Some(ca);
        self
    }

    /// Turns on `--client-cert-auth` (see [`client_cert_auth`](TlsConfig::client_cert_auth)).
    pub fn with_client_cert_auth(mut self) -> TlsConfig {
        self.client_cert_auth = true;
        self
    }

    /// `--auto-tls` without a data dir: a new self-signed certificate (ECDSA P-256, server
    /// auth) for `hosts` (IP addresses or DNS names), valid from now for `validity`, held in
    /// memory. Clients cannot verify it unless they are given it, as with etcd's.
    pub fn self_signed(hosts: &[impl AsRef<str>], validity: Duration) -> io::Result<TlsConfig> {
        let (cert, key) = self_signed_pem(hosts, validity)?;
        Ok(TlsConfig::from_pem(cert, key))
    }

    /// `--auto-tls` with a data dir, as etcd does under `<data-dir>/fixtures/client`: the
    /// `cert.pem` and `key.pem` already in `dir`, or else a new self-signed certificate (as
    /// [`self_signed`](TlsConfig::self_signed)) written there (the key readable by its owner
    /// only).
    pub fn self_signed_in(
        dir: &Path,
        hosts: &[impl AsRef<str>],
        validity: Duration,
    ) -> io::Result<TlsConfig> {
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        if cert_path.is_file() && key_path.is_file() {
            tracing::info!(cert = %cert_path.display(), "auto TLS: using the certificate generated before");
            return Ok(TlsConfig::from_files(cert_path, key_path));
        }
        let (cert, key) = self_signed_pem(hosts, validity)?;
        let in_dir = |e: io::Error| {
            io::Error::new(e.kind(), format!("writing the certificate into {}: {e}", dir.display()))
        };
        std::fs::DirBuilder::new().recursive(true).mode_owner_only().create(dir).map_err(in_dir)?;
        write_owner_only(&key_path, key.as_bytes()).map_err(in_dir)?;
        std::fs::write(&cert_path, cert).map_err(in_dir)?;
        tracing::warn!(cert = %cert_path.display(), "auto TLS: generated a self-signed certificate");
        Ok(TlsConfig::from_files(cert_path, key_path))
    }

    /// The rustls acceptor this configuration describes: it reads the PEM files, checks that
    /// the key is the certificate's, and offers ALPN `h2` and `http/1.1`. Fails with
    /// `InvalidInput` (or the file's error) and a message naming what is wrong.
    pub fn acceptor(&self) -> io::Result<TlsAcceptor> {
        Ok(TlsAcceptor::from(Arc::new(self.server_config()?)))
    }

    fn server_config(&self) -> io::Result<ServerConfig> {
        let provider = ring_provider();
        let chain = certificates(&self.cert, "the certificate")?;
        let key = PrivateKeyDer::from_pem_slice(&read(&self.key, "the key")?)
            .map_err(|e| invalid(format!("no private key in {}: {e}", self.key)))?;
        let clients = match &self.trusted_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates(ca, "the trusted CA")? {
                    roots.add(cert).map_err(|e| invalid(format!("a trusted CA in {ca}: {e}")))?;
                }
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| invalid(format!("the trusted CAs in {ca}: {e}")))?
            }
            None if self.client_cert_auth => {
                return Err(invalid(
                    "client certificate auth (--client-cert-auth) needs the CA to check client \
                     certificates against (--trusted-ca-file)"
                        .into(),
                ))
            }
            None => WebPkiClientVerifier::no_client_auth(),
        };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(format!("TLS versions: {e}")))?
            .with_client_cert_verifier(clients)
            .with_single_cert(chain, key)
            .map_err(|e| {
                invalid(format!("the certificate in {} with the key in {}: {e}", self.cert, self.key))
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// rustls with *ring*: it builds from crates alone, where aws-lc-rs needs cmake and a long C
/// build. rustls 0.23.48 deprecates it for lacking post-quantum key exchange (X25519MLKEM768,
/// which etcd built with Go 1.24 or later offers); docs/security.md says so.
#[allow(deprecated)]
fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// The text of `pem`, which holds `what`; a failure says so.
fn read(pem: &Pem, what: &str) -> io::Result<Vec<u8>> {
    pem.read().map_err(|e| io::Error::new(e.kind(), format!("{what}: {e}")))
}

/// Every certificate in `pem` (which holds `what`), in order; at least one.
fn certificates(pem: &Pem, what: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(&read(pem, what)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("a certificate in {pem}: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(format!("no certificate in {pem}")));
    }
    Ok(certs)
}

/// A self-signed server certificate for `hosts` and its key, both PEM.
fn self_signed_pem(hosts: &[impl AsRef<str>], validity: Duration) -> io::Result<(String, String)> {
    let failed = |e: rcgen::Error| io::Error::other(format!("generating a self-signed certificate: {e}"));
    let mut names: Vec<String> = hosts.iter().map(|h| h.as_ref().to_owned()).collect();
    names.sort();
    names.dedup();
    let mut params = CertificateParams::new(names).map_err(failed)?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::OrganizationName, "etcdlite");
    params.distinguished_name = subject;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now;
    params.not_after = now + validity;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Creates directories readable by their owner only, where the system has modes.
trait OwnerOnly {
    fn mode_owner_only(&mut self) -> &mut Self;
}

impl OwnerOnly for std::fs::DirBuilder {
    fn mode_owner_only(&mut self) -> &mut Self {
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(self, 0o700);
        self
    }
}

/// Writes a new file (or truncates one) readable and writable by its owner only.
fn write_owner_only(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, contents)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// The Common Name of the verified certificate a client presented on a TLS listener with
/// [`client_cert_auth`](TlsConfig::client_cert_auth): in the extensions of every HTTP request
/// of that connection (gRPC calls and JSON gateway requests alike), as
/// `request.extensions().get::<ClientCertName>()` (tonic's `Request::extensions` has it too).
///
/// etcd takes this name as the user's when auth is enabled and a request carries no token
/// (`AuthInfoFromTLS`, used only with `--client-cert-auth`), and refuses a JSON gateway
/// request from a client whose certificate has a Common Name while auth is enabled. The
/// string is empty when the certificate's subject has no Common Name; with several, it is
/// the last (as Go's `pkix.Name.CommonName`, which etcd reads). Connections on plain
/// listeners, and TLS listeners without `client_cert_auth`, never have it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientCertName(pub String);

impl ClientCertName {
    /// The Common Name in the subject of the DER certificate `der`; None if it cannot be
    /// parsed.
    fn of_certificate(der: &[u8]) -> Option<ClientCertName> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let name = match cert.subject().iter_common_name().last() {
            Some(cn) => cn.as_str().ok()?.to_owned(),
            None => String::new(),
        };
        Some(ClientCertName(name))
    }
}

/// A TLS listener's handshake, and whether its connections name their clients.
#[derive(Clone)]
pub(crate) struct Acceptor {
    tls: TlsAcceptor,
    /// `client_cert_auth`: each connection's requests carry its client's [`ClientCertName`].
    names_clients: bool,
}

impl Acceptor {
    /// Reads and checks `config`'s certificates and key.
    pub(crate) fn new(config: &TlsConfig) -> io::Result<Acceptor> {
        Ok(Acceptor { tls: config.acceptor()?, names_clients: config.client_cert_auth })
    }

    /// The TLS handshake on `stream`, bounded by [`HANDSHAKE_TIMEOUT`], and the name of the
    /// client when this listener names them. A plain-text HTTP/1 request is answered with
    /// etcd's 400 "Client sent an HTTP request to an HTTPS server." before it fails.
    pub(crate) async fn accept(
        &self,
        mut stream: TcpStream,
    ) -> io::Result<(TlsStream<TcpStream>, Option<ClientCertName>)> {
        let tls = &self.tls;
        let handshake = async move {
            expect_client_hello(&mut stream).await?;
            tls.accept(stream).await
        };
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await.map_err(|_| {
            io::Error::new(io::ErrorKind::TimedOut, format!("no TLS handshake within {HANDSHAKE_TIMEOUT:?}"))
        })??;
        let name = if self.names_clients {
            let leaf = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first());
            leaf.and_then(|der| ClientCertName::of_certificate(der))
        } else {
            None
        };
        Ok((stream, name))
    }
}

/// Waits for the client's first bytes and fails unless they start a TLS handshake; a
/// plain-text HTTP/1 request gets [`PLAIN_HTTP_ANSWER`] first.
async fn expect_client_hello(stream: &mut TcpStream) -> io::Result<()> {
    let mut head = [0u8; 4];
    let read = stream.peek(&mut head).await?;
    match &head[..read] {
        [] => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before its TLS handshake")),
        [TLS_HANDSHAKE_RECORD, ..] => Ok(()),
        // An HTTP/1 method; `PRI` starts HTTP/2's preface, which would not read the answer.
        [first, ..] if first.is_ascii_uppercase() && !head.starts_with(b"PRI") => {
            answer_plain_http(stream).await;
            Err(io::Error::new(io::ErrorKind::InvalidData, "a plain-text HTTP/1 request on a TLS listener"))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the first bytes are not a TLS handshake (plain-text HTTP/2 or gRPC?)",
        )),
    }
}

/// Answers a plain-text HTTP/1 request, then reads what the client still sends until it
/// hangs up (bounded by [`PLAIN_HTTP_LINGER`]), so that the answer is not lost to a reset.
async fn answer_plain_http(stream: &mut TcpStream) {
    if stream.write_all(PLAIN_HTTP_ANSWER).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut buf = [0u8; 4096];
        while let Ok(1..) = stream.read(&mut buf).await {}
    };
    let _ = tokio::time::timeout(PLAIN_HTTP_LINGER, drain).await;
}

/// A connection's service that adds its client's [`ClientCertName`] to each request.
#[derive(Clone)]
pub(crate) struct WithClientCertName<S> {
    inner: S,
    name: ClientCertName,
}

impl<S> WithClientCertName<S> {
    pub(crate) fn new(inner: S, name: ClientCertName) -> Self {
        WithClientCertName { inner, name }
    }
}

impl<S, B> hyper::service::Service<Request<B>> for WithClientCertName<S>
where
    S: hyper::service::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut request: Request<B>) -> S::Future {
        request.extensions_mut().insert(self.name.clone());
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use rcgen::{BasicConstraints, CertifiedIssuer, IsCa};
    use tokio::net::TcpListener;
    use tokio_rustls::rustls::pki_types::ServerName;
    use tokio_rustls::rustls::ClientConfig;
    use tokio_rustls::TlsConnector;

    use super::*;

    /// A CA, a server certificate for 127.0.0.1 and a client certificate for `cn`, all PEM.
    struct Pki {
        ca: String,
        server: (String, String),
        client: (String, String),
    }

    fn pki(cn: &str) -> Pki {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let issue = |names: Vec<String>, cn: Option<&str>, usage| {
            let mut params = CertificateParams::new(names).unwrap();
            params.distinguished_name = DistinguishedName::new();
            if let Some(cn) = cn {
                params.distinguished_name.push(DnType::CommonName, cn);
            }
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            (params.signed_by(&key, &ca).unwrap().pem(), key.serialize_pem())
        };
        Pki {
            server: issue(vec!["127.0.0.1".into()], None, ExtendedKeyUsagePurpose::ServerAuth),
            client: issue(vec![], Some(cn), ExtendedKeyUsagePurpose::ClientAuth),
            ca: ca.pem(),
        }
    }

    /// Accepts one connection with `config` and returns what the handshake named; meanwhile
    /// a client with `pki`'s client certificate connects.
    async fn handshake_naming(pki: &Pki, config: TlsConfig) -> Option<ClientCertName> {
        let acceptor = Acceptor::new(&config).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(pki.ca.as_bytes()).unwrap()).unwrap();
        let client_cert = CertificateDer::pem_slice_iter(pki.client.0.as_bytes()).collect::<Result<_, _>>();
        let client_key = PrivateKeyDer::from_pem_slice(pki.client.1.as_bytes()).unwrap();
        let client = ClientConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(client_cert.unwrap(), client_key)
            .unwrap();
        let connect = async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let server_name = ServerName::try_from("127.0.0.1").unwrap();
            let mut tls = TlsConnector::from(Arc::new(client)).connect(server_name, tcp).await.unwrap();
            // TLS 1.3 finishes the server's side of the handshake with the client's first bytes.
            tls.write_all(b"x").await.unwrap();
            tls
        };
        let accept = async {
            let (tcp, _) = listener.accept().await.unwrap();
            acceptor.accept(tcp).await.unwrap().1
        };
        let (_client, name) =
            tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(connect, accept) })
                .await
                .expect("the handshake did not finish");
        name
    }

    #[tokio::test]
    async fn with_client_cert_auth_the_handshake_names_the_client_by_its_common_name() {
        let pki = pki("alice");
        let config = TlsConfig::from_pem(pki.server.0.clone(), pki.server.1.clone())
            .with_trusted_ca(Pem::Inline(pki.ca.clone().into_bytes()))
            .with_client_cert_auth();
        assert_eq!(handshake_naming(&pki, config).await, Some(ClientCertName("alice".into())));
    }

    #[tokio::test]
    async fn without_client_cert_auth_a_verified_client_is_not_named() {
        // As etcd: a trusted CA alone requires client certificates, but their names are
        // used only with --client-cert-auth.
        let pki = pki("alice");
        let config = TlsConfig::from_pem(pki.server.0.clone(), pki.server.1.clone())
            .with_trusted_ca(Pem::Inline(pki.ca.clone().into_bytes()));
        assert_eq!(handshake_naming(&pki, config).await, None);
    }

    /// A service answering each request with the [`ClientCertName`] it carries.
    struct Echo;

    impl hyper::service::Service<Request<()>> for Echo {
        type Response = Option<ClientCertName>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn call(&self, request: Request<()>) -> Self::Future {
            std::future::ready(Ok(request.extensions().get::<ClientCertName>().cloned()))
        }
    }

    #[tokio::test]
    async fn each_request_of_a_named_connection_carries_the_name() {
        let service = WithClientCertName::new(Echo, ClientCertName("alice".into()));
        for _ in 0..2 {
            let seen = hyper::service::Service::call(&service, Request::new(())).await.unwrap();
            assert_eq!(seen, Some(ClientCertName("alice".into())));
        }
    }

    #[test]
    fn a_certificate_without_a_common_name_names_the_empty_user() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.distinguished_name = DistinguishedName::new();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(ClientCertName::of_certificate(cert.der()), Some(ClientCertName(String::new())));
    }

    #[test]
    fn client_cert_auth_without_a_trusted_ca_is_refused() {
        let pki = pki("alice");
        let config = TlsConfig::from_pem(pki.server.0, pki.server.1).with_client_cert_auth();
        let err = config.acceptor().err().expect("accepted");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("--trusted-ca-file"), "{err}");
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let (one, other) = (pki("a"), pki("b"));
        let err = TlsConfig::from_pem(one.server.0, other.server.1).acceptor().err().expect("accepted");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }

    #[test]
    fn a_missing_certificate_file_is_named_in_the_error() {
        let err = TlsConfig::from_files("/nonexistent/cert.pem", "/nonexistent/key.pem").acceptor().err();
        let err = err.expect("accepted");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    }

    #[test]
    fn auto_tls_in_a_dir_keeps_the_certificate_it_generated() {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = dir.path().join("fixtures").join("client");
        let first = TlsConfig::self_signed_in(&fixtures, &["127.0.0.1"], Duration::from_secs(3600)).unwrap();
        let cert = std::fs::read(fixtures.join("cert.pem")).unwrap();
        first.acceptor().unwrap();
        let second = TlsConfig::self_signed_in(&fixtures, &["127.0.0.1"], Duration::from_secs(3600)).unwrap();
        assert_eq!(second, first);
        assert_eq!(std::fs::read(fixtures.join("cert.pem")).unwrap(), cert);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(fixtures.join("key.pem")).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key is readable by others: {mode:o}");
        }
    }

    #[test]
    fn inline_pem_does_not_show_in_debug_output() {
        let config = TlsConfig::from_pem("CERT", "-----BEGIN PRIVATE KEY----- secret");
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
