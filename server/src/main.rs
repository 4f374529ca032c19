//! `etcdlite`: an etcd v3 server (gRPC and JSON gateway) on one in-process store.

#![forbid(unsafe_code)]

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use etcdlite::{Options, Store};
use etcdlite_server::gateway::Cors;
use etcdlite_server::tls::Pem;
use etcdlite_server::{AutoCompaction, Config, ConnectionLimits, Server, TlsConfig, DEFAULT_ETCD_VERSION};

/// mimalloc rather than the system allocator: a request allocates and frees dozens of small
/// buffers across the gRPC stack, and glibc's malloc spent about 14 % of the server's
/// instructions on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Engine {
    Memory,
    Rocksdb,
    Sled,
}

/// etcd's `--initial-cluster-state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ClusterState {
    New,
    Existing,
}

/// An etcd v3 server on one in-process etcdlite store. Flags are etcd's where they apply.
#[derive(Debug, Parser)]
#[command(name = "etcdlite", version)]
struct Args {
    /// Human-readable name for this member.
    #[arg(long, default_value = "default")]
    name: String,
    /// Directory for the data; without it the store lives in memory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Storage engine: memory (the default without --data-dir), rocksdb or sled (the
    /// default with --data-dir is the first one this build has).
    #[arg(long, value_enum)]
    engine: Option<Engine>,
    /// Comma-separated URLs to serve gRPC and the JSON gateway on: http:// in plain text,
    /// https:// over TLS (needs --cert-file and --key-file, or --auto-tls).
    #[arg(long, default_value = "http://127.0.0.1:2379", value_delimiter = ',')]
    listen_client_urls: Vec<String>,
    /// Comma-separated client URLs this member advertises (default: the listen URLs).
    #[arg(long, value_delimiter = ',')]
    advertise_client_urls: Vec<String>,
    /// Comma-separated peer URLs this member advertises: the member list shows them, and
    /// with --initial-cluster-token they make its member and cluster ids, as in etcd
    /// (nothing listens on them: there are no peers).
    #[arg(long, default_value = etcdlite_server::bootstrap::DEFAULT_PEER_URL, value_delimiter = ',')]
    initial_advertise_peer_urls: Vec<String>,
    /// The initial cluster, `name=peer-url,...`: it must name this member (--name) with its
    /// advertised peer URLs, and no other member.
    #[arg(long, default_value = etcdlite_server::bootstrap::DEFAULT_INITIAL_CLUSTER)]
    initial_cluster: String,
    /// The initial cluster token: part of the member and cluster ids, as in etcd.
    #[arg(long, default_value = etcdlite::cluster::DEFAULT_CLUSTER_TOKEN)]
    initial_cluster_token: String,
    /// The initial cluster state, new or existing (accepted for etcd's command lines; a
    /// member of one always starts its own cluster).
    #[arg(long, value_enum, default_value = "new")]
    initial_cluster_state: ClusterState,
    /// Largest write request accepted, in bytes.
    #[arg(long, default_value_t = etcdlite_server::DEFAULT_MAX_REQUEST_BYTES)]
    max_request_bytes: usize,
    /// Comma-separated origins (http://host:port) whose HTTP requests get CORS headers, or
    /// * for every origin.
    #[arg(long, default_value = "*")]
    cors: Cors,
    /// Space quota in bytes; 0 means etcd's default of 2 GiB.
    #[arg(long, default_value_t = 0)]
    quota_backend_bytes: u64,
    /// Auto-compaction mode: periodic or revision.
    #[arg(long, default_value = "periodic")]
    auto_compaction_mode: String,
    /// Auto-compaction retention: a duration (1h, 30m, or hours as a number) for periodic,
    /// a number of revisions for revision; 0 turns it off.
    #[arg(long, default_value = "0")]
    auto_compaction_retention: String,
    /// fsync every write before acknowledging it (persistent engines).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    sync: bool,
    /// The etcd version the Status call reports; below 3.5 there is no Downgrade call, as
    /// in etcd 3.4.
    #[arg(long, default_value = DEFAULT_ETCD_VERSION)]
    etcd_version: String,
    /// Path to the client server TLS cert file (for https:// listen URLs).
    #[arg(long)]
    cert_file: Option<PathBuf>,
    /// Path to the client server TLS key file.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Path to the client server TLS trusted CA cert file: clients must then present a
    /// certificate it signed.
    #[arg(long)]
    trusted_ca_file: Option<PathBuf>,
    /// Enable client cert authentication (needs --trusted-ca-file): a request without a
    /// token is made as the user its certificate's Common Name names.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value_t = false, action = clap::ArgAction::Set)]
    client_cert_auth: bool,
    /// Client TLS using a generated self-signed certificate (kept in the data dir's
    /// fixtures/client, or in memory without --data-dir), when no --cert-file/--key-file are
    /// given.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value_t = false, action = clap::ArgAction::Set)]
    auto_tls: bool,
    /// How auth tokens are made: `simple` (random tokens kept in memory) or
    /// `jwt,pub-key=PATH,priv-key=PATH,sign-method=ALG[,ttl=DURATION]` (signed tokens).
    #[arg(long, default_value = "simple")]
    auth_token: String,
    /// How long a simple token lives after its last use, in seconds.
    #[arg(long, default_value_t = 300)]
    auth_token_ttl: u64,
    /// The bcrypt cost of password hashes (4 to 31).
    #[arg(long, default_value_t = etcdlite::auth::DEFAULT_BCRYPT_COST)]
    bcrypt_cost: u32,
    /// The most concurrent streams (calls) on one client connection.
    #[arg(long, default_value_t = u32::MAX)]
    max_concurrent_streams: u32,
    /// How long a client connection may be idle before the server pings it (a Go
    /// duration: 2h, 30s).
    #[arg(long, default_value = "2h", value_parser = etcdlite_server::duration::parse_go_duration)]
    grpc_keepalive_interval: Duration,
    /// How long the server waits for the answer to its ping before closing the connection.
    #[arg(long, default_value = "20s", value_parser = etcdlite_server::duration::parse_go_duration)]
    grpc_keepalive_timeout: Duration,
    /// How often a client may ping: the third ping sooner than this after the one before
    /// closes its connection.
    #[arg(long, default_value = "5s", value_parser = etcdlite_server::duration::parse_go_duration)]
    grpc_keepalive_min_time: Duration,
    /// The most client connections served at once on each listen URL (etcdlite's own;
    /// more are closed as soon as they are accepted).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
    /// The most bytes of Range answers one connection may hold that its client has not taken
    /// yet (its HTTP/2 flow-control window held them back); past it, the next Range call on
    /// that connection fails with "etcdserver: too many requests" (etcdlite's own). One
    /// answer always goes through, however large.
    #[arg(long, default_value_t = etcdlite_server::ConnectionLimits::default().max_unsent_response_bytes)]
    max_unsent_response_bytes: usize,
    /// The same for all connections together (etcdlite's own): past it, a Range call fails
    /// the same way, except the first answer of a connection that holds none, if it is
    /// 64 KiB or less.
    #[arg(long, default_value_t = etcdlite_server::ConnectionLimits::default().max_unsent_response_bytes_total)]
    max_unsent_response_bytes_total: usize,
    /// The most watches one watch stream may hold (etcdlite's own); one more is refused
    /// in-band with "etcdserver: too many requests".
    #[arg(long, default_value_t = etcdlite::watch::DEFAULT_MAX_WATCHES_PER_STREAM)]
    max_watches_per_stream: usize,
    /// The most snapshots streamed at once (etcdlite's own; each holds a temporary copy of
    /// the database until its client has read it); one more is refused with
    /// "etcdserver: too many requests".
    #[arg(long, default_value_t = etcdlite::DEFAULT_MAX_CONCURRENT_SNAPSHOTS)]
    max_concurrent_snapshots: usize,
    /// The validity of the --auto-tls certificate, in years.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    self_signed_cert_validity: u32,
}

/// One `--listen-client-urls` entry.
struct ListenUrl {
    url: String,
    addrs: Vec<SocketAddr>,
    /// `https://`: served over TLS.
    secure: bool,
    /// The host, without its port or an IPv6 address's brackets: what an `--auto-tls`
    /// certificate names.
    host: String,
}

fn parse_url(url: &str) -> Result<ListenUrl, String> {
    let (secure, host_port) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => {
            return Err(format!("unsupported URL {url:?}: only http:// and https:// client URLs are served"))
        }
    };
    let host_port = host_port.trim_end_matches('/');
    let addrs = host_port.to_socket_addrs().map_err(|e| format!("bad URL {url:?}: {e}"))?.collect();
    let host = host_port.rsplit_once(':').map_or(host_port, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    Ok(ListenUrl { url: url.to_owned(), addrs, secure, host })
}

/// The TLS of the https:// listen URLs, from the TLS flags as etcd reads them: the
/// certificate files, else with --auto-tls a generated certificate (which, as etcd's,
/// leaves out --trusted-ca-file and --client-cert-auth). None when no URL is https://.
fn tls_config(args: &Args, urls: &[ListenUrl]) -> Result<Option<TlsConfig>, String> {
    let files = match (&args.cert_file, &args.key_file) {
        (Some(cert), Some(key)) => Some(TlsConfig::from_files(cert, key)),
        (None, None) => None,
        _ => return Err("--cert-file and --key-file must be given together".into()),
    };
    for url in urls.iter().filter(|u| !u.secure) {
        if files.is_some() || args.auto_tls {
            tracing::warn!(client_url = %url.url, "scheme is http while TLS is set up; serving it in plain text");
        }
        if args.client_cert_auth {
            tracing::warn!(client_url = %url.url, "scheme is http while --client-cert-auth is enabled; ignoring client cert auth for this URL");
        }
    }
    let https: Vec<&ListenUrl> = urls.iter().filter(|u| u.secure).collect();
    let Some(first) = https.first() else {
        return Ok(None);
    };
    let tls = match files {
        Some(files) => {
            if args.auto_tls {
                tracing::warn!("ignoring --auto-tls since --cert-file and --key-file are given");
            }
            let mut tls = files;
            tls.trusted_ca = args.trusted_ca_file.clone().map(Pem::File);
            tls.client_cert_auth = args.client_cert_auth;
            tls
        }
        None if args.auto_tls => {
            if args.trusted_ca_file.is_some() || args.client_cert_auth {
                tracing::warn!("--auto-tls ignores --trusted-ca-file and --client-cert-auth, as etcd does: no client certificates are asked for");
            }
            let hosts: Vec<&str> = https.iter().map(|u| u.host.as_str()).collect();
            let validity = Duration::from_secs(u64::from(args.self_signed_cert_validity) * 365 * 24 * 3600);
            let generated = match &args.data_dir {
                Some(dir) => {
                    TlsConfig::self_signed_in(&dir.join("fixtures").join("client"), &hosts, validity)
                }
                None => TlsConfig::self_signed(&hosts, validity),
            };
            generated.map_err(|e| format!("--auto-tls: {e}"))?
        }
        None => {
            return Err(format!(
                "TLS key/cert (--cert-file, --key-file) must be provided for client url {} with HTTPS \
                 scheme (or --auto-tls for a self-signed certificate)",
                first.url
            ))
        }
    };
    Ok(Some(tls))
}

fn store_options(args: &Args) -> Result<Options, String> {
    let engine = match (args.engine, &args.data_dir) {
        (Some(engine), _) => engine,
        (None, None) => Engine::Memory,
        (None, Some(_)) if cfg!(feature = "rocksdb") => Engine::Rocksdb,
        (None, Some(_)) if cfg!(feature = "sled") => Engine::Sled,
        (None, Some(_)) => {
            return Err("--data-dir needs a persistent engine: build with --features rocksdb or sled".into())
        }
    };
    let dir = || args.data_dir.clone().ok_or_else(|| format!("--engine {engine:?} needs --data-dir"));
    let options = match engine {
        Engine::Memory => Options::memory(),
        #[cfg(feature = "rocksdb")]
        Engine::Rocksdb => Options::rocksdb(dir()?),
        #[cfg(feature = "sled")]
        Engine::Sled => Options::sled(dir()?),
        #[allow(unreachable_patterns)]
        other => {
            let _ = dir;
            return Err(format!("this build has no {other:?} engine: rebuild with --features {other:?}")
                .to_lowercase());
        }
    };
    // The memory engine has nothing to sync: waiting for a no-op sync would only slow it.
    let sync = args.sync && engine != Engine::Memory;
    Ok(options
        .sync(sync)
        .max_request_bytes(args.max_request_bytes)
        .max_concurrent_snapshots(args.max_concurrent_snapshots)
        .max_watches_per_stream(args.max_watches_per_stream)
        .with_auth_token(args.auth_token.clone())
        .with_auth_token_ttl(std::time::Duration::from_secs(args.auth_token_ttl))
        .with_bcrypt_cost(args.bcrypt_cost))
}

fn config(args: &Args) -> Result<Config, String> {
    let urls = args.listen_client_urls.iter().map(|url| parse_url(url)).collect::<Result<Vec<_>, _>>()?;
    let tls = tls_config(args, &urls)?;
    let (mut listen, mut listen_tls) = (Vec::new(), Vec::new());
    for url in urls {
        if url.secure { &mut listen_tls } else { &mut listen }.extend(url.addrs);
    }
    let peer_urls = etcdlite_server::bootstrap::peer_urls(
        &args.name,
        &args.initial_cluster,
        &args.initial_advertise_peer_urls,
    )?;
    if args.initial_cluster_state == ClusterState::Existing {
        tracing::info!(
            "--initial-cluster-state existing: a member of one starts its own cluster as with new"
        );
    }
    Ok(Config {
        name: args.name.clone(),
        peer_urls,
        cluster_token: args.initial_cluster_token.clone(),
        listen,
        listen_tls,
        tls,
        advertise_client_urls: args.advertise_client_urls.clone(),
        max_request_bytes: args.max_request_bytes,
        cors: args.cors.clone(),
        quota_bytes: if args.quota_backend_bytes == 0 {
            etcdlite_server::DEFAULT_QUOTA_BYTES
        } else {
            args.quota_backend_bytes
        },
        etcd_version: args.etcd_version.clone(),
        auto_compaction: AutoCompaction::parse(&args.auto_compaction_mode, &args.auto_compaction_retention)?,
        connections: ConnectionLimits {
            max_concurrent_streams: args.max_concurrent_streams,
            keepalive_interval: args.grpc_keepalive_interval,
            keepalive_timeout: args.grpc_keepalive_timeout,
            keepalive_min_time: args.grpc_keepalive_min_time,
            max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
            max_unsent_response_bytes: args.max_unsent_response_bytes,
            max_unsent_response_bytes_total: args.max_unsent_response_bytes_total,
            ..ConnectionLimits::default()
        },
        ..Config::default()
    })
}

async fn shutdown_signal() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let options = store_options(&args)?;
    let config = config(&args)?;
    let store = Arc::new(Store::open(options).map_err(|e| format!("opening the store: {e}"))?);
    let server =
        Server::bind(config, store.clone()).await.map_err(|e| format!("starting the server: {e}"))?;
    for url in server.local_urls() {
        tracing::info!(%url, name = %args.name, data_dir = ?args.data_dir, "serving etcd v3 gRPC and JSON gateway");
    }
    server.serve(shutdown_signal()).await.map_err(|e| format!("serving: {e}"))?;
    drop(store);
    tracing::info!("stopped");
    Ok(())
}
