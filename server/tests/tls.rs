//! TLS on the client port, as etcd's `--cert-file`, `--key-file`, `--trusted-ca-file`,
//! `--client-cert-auth` and `--auto-tls` set it up: the real etcdctl, the `etcd-client`
//! crate and the JSON gateway (reqwest, HTTP/1.1) over one TLS port; clients without the
//! right certificate, and plain-text clients, refused while the server goes on serving.
//!
//! Each test makes its own CA, a server certificate for 127.0.0.1 and localhost, a client
//! certificate for "alice", and a client certificate for "mallory" from another CA, with
//! rcgen into a temp dir. Every wait is bounded: client calls by [`WAIT`], etcdctl runs and
//! the binary's start by [`DEADLINE`]. The etcdctl tests skip (pass, saying so on stderr)
//! when etcdctl is not installed; `ETCDCTL` names another binary.

#[path = "common/process.rs"]
mod process;

use std::future::Future;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine as _;
use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::{json, Value};
use tempfile::TempDir;

use etcdlite_server::tls::Pem;
use etcdlite_server::{TestServer, TlsConfig};

/// The longest one client step may take.
const WAIT: Duration = Duration::from_secs(10);
/// The longest one etcdctl run, or the binary's start, may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// A CA and the certificates it signed, and a client certificate from another CA, as PEM
/// files in a temp dir: `ca.pem`, `server.pem` (for 127.0.0.1 and localhost), `alice.pem`
/// (CN alice), `mallory.pem` (CN mallory, another CA), each key in `<name>-key.pem`.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write PEM");
        let ca = new_ca("etcdlite test CA");
        let other_ca = new_ca("another CA");
        write("ca.pem", &ca.pem());
        for (name, issuer, sans, usage) in [
            ("server", &ca, vec!["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth),
            ("alice", &ca, vec![], ExtendedKeyUsagePurpose::ClientAuth),
            ("mallory", &other_ca, vec![], ExtendedKeyUsagePurpose::ClientAuth),
        ] {
            let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("certificate params");
            params.distinguished_name = DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().expect("key");
            let cert = params.signed_by(&key, issuer).expect("sign");
            write(&format!("{name}.pem"), &cert.pem());
            write(&format!("{name}-key.pem"), &key.serialize_pem());
        }
        Pki { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.path(file)).expect("read PEM")
    }

    /// The server's TLS: its certificate, clients' certificates checked against the CA,
    /// with `--client-cert-auth`.
    fn server_tls(&self) -> TlsConfig {
        TlsConfig::from_files(self.path("server.pem"), self.path("server-key.pem"))
            .with_trusted_ca(Pem::File(self.path("ca.pem")))
            .with_client_cert_auth()
    }

    /// etcd-client's TLS: trusting the CA, and presenting `client`'s certificate if any.
    fn client_tls(&self, client: Option<&str>) -> TlsOptions {
        let tls = TlsOptions::new().ca_certificate(Certificate::from_pem(self.read("ca.pem")));
        match client {
            Some(name) => tls.identity(Identity::from_pem(
                self.read(&format!("{name}.pem")),
                self.read(&format!("{name}-key.pem")),
            )),
            None => tls,
        }
    }
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA")
}

/// `fut`, or a panic naming `what` if it takes longer than [`WAIT`].
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("{what}: no answer within {WAIT:?}"))
}

/// A put and a get through `endpoint` with `tls`: the client's whole round trip, or its
/// first error.
async fn put_and_get(
    endpoint: &str,
    tls: Option<TlsOptions>,
    key: &str,
) -> Result<String, etcd_client::Error> {
    let options = tls.map(|tls| ConnectOptions::new().with_tls(tls));
    let mut client = Client::connect([endpoint], options).await?;
    client.put(key, "over TLS", None).await?;
    let got = client.get(key, None).await?;
    Ok(got.kvs().first().map(|kv| kv.value_str().unwrap_or_default().to_owned()).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_client_puts_and_gets_with_the_ca_and_a_client_certificate() {
    let pki = Pki::new();
    let server = TestServer::builder().tls(pki.server_tls()).start().unwrap();
    assert!(server.endpoint().starts_with("https://127.0.0.1:"), "{}", server.endpoint());
    let got =
        within("put and get", put_and_get(&server.endpoint(), Some(pki.client_tls(Some("alice"))), "k"))
            .await;
    assert_eq!(got.unwrap(), "over TLS");
    assert_eq!(server.store().get("k", None).unwrap().kvs().len(), 1);

    // The member advertises its TLS URL.
    let options = ConnectOptions::new().with_tls(pki.client_tls(Some("alice")));
    let mut client = within("connect", Client::connect([server.endpoint()], Some(options))).await.unwrap();
    let members = within("member list", client.member_list()).await.unwrap();
    assert_eq!(members.members()[0].client_urls(), [server.endpoint()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_cert_auth_refuses_a_client_without_a_certificate_or_with_another_cas() {
    let pki = Pki::new();
    let server = TestServer::builder().tls(pki.server_tls()).start().unwrap();
    let endpoint = server.endpoint();
    for (client, why) in [(None, "no certificate"), (Some("mallory"), "a certificate from another CA")] {
        let refused = within(why, put_and_get(&endpoint, Some(pki.client_tls(client)), "refused")).await;
        assert!(refused.is_err(), "a client with {why} was served: {refused:?}");
    }
    assert!(server.store().get("refused", None).unwrap().kvs().is_empty());
    let served = within("alice", put_and_get(&endpoint, Some(pki.client_tls(Some("alice"))), "k")).await;
    assert_eq!(served.unwrap(), "over TLS", "the server stopped serving after refusing clients");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_client_cert_auth_or_a_trusted_ca_no_client_certificate_is_asked_for() {
    let pki = Pki::new();
    let tls = TlsConfig::from_files(pki.path("server.pem"), pki.path("server-key.pem"));
    let server = TestServer::builder().tls(tls).start().unwrap();
    let got = within("put and get", put_and_get(&server.endpoint(), Some(pki.client_tls(None)), "k")).await;
    assert_eq!(got.unwrap(), "over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_ca_alone_requires_client_certificates_as_etcd_does() {
    let pki = Pki::new();
    let tls = TlsConfig::from_files(pki.path("server.pem"), pki.path("server-key.pem"))
        .with_trusted_ca(Pem::File(pki.path("ca.pem")));
    let server = TestServer::builder().tls(tls).start().unwrap();
    let refused =
        within("no certificate", put_and_get(&server.endpoint(), Some(pki.client_tls(None)), "k")).await;
    assert!(refused.is_err(), "a client without a certificate was served: {refused:?}");
    let got =
        within("alice", put_and_get(&server.endpoint(), Some(pki.client_tls(Some("alice"))), "k")).await;
    assert_eq!(got.unwrap(), "over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_clients_fail_cleanly_and_the_tls_port_goes_on_serving() {
    let pki = Pki::new();
    let server = TestServer::builder().tls(pki.server_tls()).start().unwrap();
    let plain = format!("http://{}", server.addr());

    // A client that connects and says nothing holds up no one else.
    let silent = TcpStream::connect(server.addr()).unwrap();

    // Plain-text gRPC: the connection is closed on it.
    let grpc = within("plain-text gRPC", put_and_get(&plain, None, "plain")).await;
    assert!(grpc.is_err(), "plain-text gRPC was served: {grpc:?}");

    // Plain-text HTTP/1.1 to the gateway: Go's (and so etcd's) answer.
    let http = reqwest::Client::new();
    let put = http.post(format!("{plain}/v3/kv/put")).json(&json!({"key": b64("plain"), "value": b64("v")}));
    let answer = within("plain-text HTTP/1.1", put.send()).await.expect("an answer");
    assert_eq!(answer.status(), reqwest::StatusCode::BAD_REQUEST);
    let body = within("its body", answer.text()).await.unwrap();
    assert_eq!(body, "Client sent an HTTP request to an HTTPS server.\n");

    assert!(server.store().get("plain", None).unwrap().kvs().is_empty());
    let served =
        within("TLS", put_and_get(&server.endpoint(), Some(pki.client_tls(Some("alice"))), "k")).await;
    assert_eq!(served.unwrap(), "over TLS");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_gateway_and_grpc_share_the_tls_port() {
    let pki = Pki::new();
    let server = TestServer::builder().tls(pki.server_tls()).start().unwrap();
    let identity = format!("{}{}", pki.read("alice.pem"), pki.read("alice-key.pem"));
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.read("ca.pem").as_bytes()).unwrap())
        .identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap())
        .build()
        .unwrap();
    let endpoint = server.endpoint();
    let post = |path: &str, body: Value| http.post(format!("{endpoint}{path}")).json(&body).send();

    let put = within("gateway put", post("/v3/kv/put", json!({"key": b64("gw"), "value": b64("json")})))
        .await
        .unwrap();
    assert_eq!(put.status(), reqwest::StatusCode::OK);
    assert_eq!(put.version(), reqwest::Version::HTTP_11);

    // gRPC on the same port reads what the gateway wrote, and the other way round.
    let options = ConnectOptions::new().with_tls(pki.client_tls(Some("alice")));
    let mut client = within("connect", Client::connect([endpoint.as_str()], Some(options))).await.unwrap();
    let got = within("gRPC get", client.get("gw", None)).await.unwrap();
    assert_eq!(got.kvs()[0].value(), b"json");
    within("gRPC put", client.put("grpc", "proto", None)).await.unwrap();
    let range = within("gateway range", post("/v3/kv/range", json!({"key": b64("grpc")}))).await.unwrap();
    let range: Value = within("range body", range.json()).await.unwrap();
    assert_eq!(range["kvs"][0]["value"], b64("proto"), "{range}");

    // Without a client certificate the gateway is refused too.
    let anonymous = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.read("ca.pem").as_bytes()).unwrap())
        .build()
        .unwrap();
    let refused = within(
        "anonymous gateway put",
        anonymous.post(format!("{endpoint}/v3/kv/put")).json(&json!({"key": b64("anon")})).send(),
    )
    .await;
    assert!(refused.is_err(), "a gateway request without a certificate was served: {refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_tls_test_server_is_trusted_through_its_ca_pem() {
    let server = TestServer::builder().auto_tls().start().unwrap();
    let ca = server.ca_pem().expect("auto TLS has a certificate to trust");
    let tls = TlsOptions::new().ca_certificate(Certificate::from_pem(ca));
    let got = within("put and get", put_and_get(&server.endpoint(), Some(tls), "k")).await;
    assert_eq!(got.unwrap(), "over TLS");
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The `etcdlite` binary as a child on a free loopback port, serving `https://`; killed on
/// drop.
struct EtcdLite {
    server: process::EtcdLiteChild,
    _dir: TempDir,
}

impl EtcdLite {
    /// Starts `etcdlite --listen-client-urls https://127.0.0.1:<port>` with `args`, and
    /// waits until the port accepts.
    fn start(args: &[&str]) -> EtcdLite {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = process::EtcdLiteChild::start("https", args, &dir.path().join("server.log"), DEADLINE)
            .unwrap_or_else(|log| panic!("etcdlite did not start; its log:\n{log}"));
        EtcdLite { server, _dir: dir }
    }

    fn log(&self) -> String {
        self.server.log()
    }

    /// Runs `etcdctl` with `args` against this server, bounded by [`DEADLINE`].
    fn etcdctl(&self, etcdctl: &Path, args: &[&str]) -> Output {
        let child = Command::new(etcdctl)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints=127.0.0.1:{}", self.server.port()))
            .args(["--dial-timeout=5s", "--command-timeout=10s"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn etcdctl");
        process::output_within(child, &format!("etcdctl {args:?}"), DEADLINE)
    }

    /// etcdctl's stdout; panics (with both outputs and the server's log) unless it succeeds.
    #[track_caller]
    fn etcdctl_ok(&self, etcdctl: &Path, args: &[&str]) -> String {
        let out = self.etcdctl(etcdctl, args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed ({}):\n{stdout}\n{stderr}\nserver log:\n{}",
            out.status,
            self.log()
        );
        stdout
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn etcdctl_puts_and_gets_over_https_with_its_client_certificate() {
    let Some(etcdctl) = process::etcdctl_binary() else { return };
    let pki = Pki::new();
    let path = |file: &str| pki.path(file).to_str().expect("UTF-8 temp path").to_owned();
    let server = EtcdLite::start(&[
        "--cert-file",
        &path("server.pem"),
        "--key-file",
        &path("server-key.pem"),
        "--trusted-ca-file",
        &path("ca.pem"),
        "--client-cert-auth",
    ]);
    let (ca, cert, key) = (path("ca.pem"), path("alice.pem"), path("alice-key.pem"));
    let alice = ["--cacert", &ca, "--cert", &cert, "--key", &key];
    let with = |args: &[&'static str]| [&alice[..], args].concat();

    assert_eq!(server.etcdctl_ok(&etcdctl, &with(&["put", "greeting", "hello over TLS"])).trim(), "OK");
    let got = server.etcdctl_ok(&etcdctl, &with(&["get", "greeting", "--print-value-only"]));
    assert_eq!(got.trim(), "hello over TLS");

    // Without a client certificate, or with one from another CA, etcdctl is refused.
    let (mallory, mallory_key) = (path("mallory.pem"), path("mallory-key.pem"));
    let mallory = ["--cacert", &ca, "--cert", &mallory, "--key", &mallory_key];
    for client in [&["--cacert", &ca][..], &mallory[..]] {
        // Short timeouts: etcdctl retries a refused handshake until its command times out.
        let quick = ["--dial-timeout=1s", "--command-timeout=2s"];
        let out = server.etcdctl(&etcdctl, &[client, &quick, &["put", "refused", "x"]].concat());
        assert!(!out.status.success(), "etcdctl {client:?} was served: {}", text(&out.stdout));
    }
    let got = server.etcdctl_ok(&etcdctl, &with(&["get", "refused", "--print-value-only"]));
    assert_eq!(got.trim(), "", "a refused client's put was applied");
}

#[test]
fn an_auto_tls_server_serves_etcdctl_that_skips_verification() {
    let Some(etcdctl) = process::etcdctl_binary() else { return };
    let server = EtcdLite::start(&["--auto-tls"]);
    let insecure = ["--insecure-transport=false", "--insecure-skip-tls-verify"];
    let with = |args: &[&'static str]| [&insecure[..], args].concat();
    assert_eq!(server.etcdctl_ok(&etcdctl, &with(&["put", "auto", "tls"])).trim(), "OK");
    let got = server.etcdctl_ok(&etcdctl, &with(&["get", "auto", "--print-value-only"]));
    assert_eq!(got.trim(), "tls");
    assert!(server.log().contains("https://127.0.0.1:"), "{}", server.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_on_a_client_certificate_names_the_user() {
    let pki = Pki::new();
    let store =
        std::sync::Arc::new(etcdlite::Store::open(etcdlite::Options::memory().with_bcrypt_cost(4)).unwrap());
    let server =
        TestServer::builder().store(store.clone()).tls(pki.server_tls()).auth("rootpw").start().unwrap();
    let (auth, admin) = (store.auth(), etcdlite::auth::Caller::Trusted);
    // alice exists without a password: her certificate is how she logs in.
    auth.user_add(&admin, "alice", "", true).unwrap();
    auth.role_add(&admin, "app").unwrap();
    let perm = etcdlite::auth::KeyPermission::prefix(etcdlite::auth::PermissionType::Readwrite, "app/");
    auth.role_grant_permission(&admin, "app", perm).unwrap();
    auth.user_grant_role(&admin, "alice", "app").unwrap();

    let endpoint = server.endpoint();
    let alice = || Some(pki.client_tls(Some("alice")));
    assert_eq!(within("alice's key", put_and_get(&endpoint, alice(), "app/k")).await.unwrap(), "over TLS");
    let refused = within("another key", put_and_get(&endpoint, alice(), "other")).await.unwrap_err();
    match refused {
        etcd_client::Error::GRpcStatus(status) => {
            assert_eq!(
                (status.code(), status.message()),
                (tonic::Code::PermissionDenied, "etcdserver: permission denied")
            )
        }
        other => panic!("expected permission denied, got {other:?}"),
    }
    // A token still wins over the certificate: root logs in on the same TLS connection.
    let options = ConnectOptions::new().with_tls(pki.client_tls(Some("alice"))).with_user("root", "rootpw");
    let mut root = within("root connects", Client::connect([endpoint], Some(options))).await.unwrap();
    within("root puts", root.put("other", "1", None)).await.unwrap();
}
