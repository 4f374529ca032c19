//! etcd's v3 API over an [`etcdlite`] store: the gRPC services (KV, Watch, Lease,
//! Maintenance, Cluster, health) and, on the same port, etcd's JSON gateway, so that
//! `etcdctl` and every etcd client work against it unchanged. [`Config::tls`] serves them
//! over TLS as etcd does ([`tls`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use etcdlite_server::{Config, Server};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(etcdlite::Store::open(etcdlite::Options::memory())?);
//! let server = Server::bind(Config::default(), store).await?;
//! println!("serving on {:?}", server.local_addrs());
//! server.serve(async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod auth;
pub mod bootstrap;
mod cluster;
mod compactor;
mod convert;
mod dispatch;
pub mod duration;
mod election;
pub mod faults;
pub mod gateway;
mod header_blocks;
mod health;
mod hpack;
mod inbound;
mod kv;
mod lease;
mod lock;
mod maintenance;
mod node;
pub mod pb;
mod ping_policy;
mod status;
mod testing;
pub mod tls;
mod unsent_answers;
mod watch;
mod whole_messages;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use etcdlite::cluster::Identity;
use etcdlite::Store;
use tokio::net::TcpListener;

pub use auth::AuthService;
pub use cluster::ClusterService;
pub use compactor::AutoCompaction;
pub use dispatch::{ConnectionLimits, Dispatch};
pub use election::ElectionService;
pub use faults::Faults;
pub use kv::KvService;
pub use lease::LeaseService;
pub use lock::LockService;
pub use maintenance::MaintenanceService;
pub use node::Node;
pub use testing::{TestServer, TestServerBuilder};
pub use tls::TlsConfig;
pub use watch::WatchService;

/// etcd's default request size limit: 1.5 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;
/// etcd's default space quota: 2 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = etcdlite::cluster::DEFAULT_QUOTA_BYTES;
/// The etcd version `Status` reports unless told otherwise.
pub const DEFAULT_ETCD_VERSION: &str = etcdlite::cluster::DEFAULT_ETCD_VERSION;
/// gRPC accepts messages this much larger than the request limit, so that an oversized
/// write gets etcd's "request is too large" rather than a transport error (as etcd).
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// How the server is set up; the binary's flags fill it.
#[derive(Clone, Debug)]
pub struct Config {
    /// `--name`: this member's name.
    pub name: String,
    /// `--listen-client-urls`' `http://` addresses: where to serve gRPC and the JSON
    /// gateway in plain text.
    pub listen: Vec<SocketAddr>,
    /// `--listen-client-urls`' `https://` addresses: where to serve the same over TLS, as
    /// [`tls`](Config::tls) sets it up (binding them fails without it).
    pub listen_tls: Vec<SocketAddr>,
    /// `--cert-file`, `--key-file`, `--trusted-ca-file`, `--client-cert-auth` (or
    /// `--auto-tls`): TLS on the [`listen_tls`](Config::listen_tls) addresses.
    pub tls: Option<TlsConfig>,
    /// `--advertise-client-urls`: the URLs the Cluster service reports; the listen
    /// addresses when empty (`https://` for the TLS ones).
    pub advertise_client_urls: Vec<String>,
    /// This member's peer URLs, as `--initial-cluster` names them for it
    /// ([`bootstrap::peer_urls`]): reported by the Cluster service, and with
    /// [`cluster_token`](Config::cluster_token) what its member and cluster ids derive from.
    /// etcd's default `http://localhost:2380`. Nothing listens on them. Read as the flag
    /// reads them ([`bootstrap::advertised_peer_urls`]: trimmed, scheme in lower case,
    /// sorted) when the server binds, which fails with `InvalidInput` and the flag's error
    /// for a URL etcd refuses.
    pub peer_urls: Vec<String>,
    /// `--initial-cluster-token` (etcd's default `etcd-cluster`).
    pub cluster_token: String,
    /// `--max-request-bytes`: the largest write request accepted.
    pub max_request_bytes: usize,
    /// `--cors`: the origins the gateway's answers allow (any, by default).
    pub cors: gateway::Cors,
    /// `--quota-backend-bytes`: the space quota (NOSPACE above it).
    pub quota_bytes: u64,
    /// The etcd version `Status` reports (clients such as Kubernetes check it). Below 3.5
    /// (`3.4.23`) the server has no Downgrade call, as etcd 3.4 has none.
    pub etcd_version: String,
    /// `--auto-compaction-mode/retention`.
    pub auto_compaction: Option<AutoCompaction>,
    /// How long a stopping server waits for calls in flight before it closes their
    /// connections (10 s).
    pub shutdown_grace: Duration,
    /// `--max-concurrent-streams`, `--grpc-keepalive-interval`, `--grpc-keepalive-timeout`,
    /// `--grpc-keepalive-min-time`, `--max-connections`: what each connection, and each
    /// listen address, may hold.
    pub connections: ConnectionLimits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "default".to_owned(),
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2379))],
            listen_tls: Vec::new(),
            tls: None,
            advertise_client_urls: Vec::new(),
            peer_urls: vec![bootstrap::DEFAULT_PEER_URL.to_owned()],
            cluster_token: etcdlite::cluster::DEFAULT_CLUSTER_TOKEN.to_owned(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            cors: gateway::Cors::Any,
            quota_bytes: DEFAULT_QUOTA_BYTES,
            etcd_version: DEFAULT_ETCD_VERSION.to_owned(),
            auto_compaction: None,
            shutdown_grace: SHUTDOWN_GRACE,
            connections: ConnectionLimits::default(),
        }
    }
}

/// How long a stopping server gives connections to flush the "server stopped" answers of the
/// calls it ended, before it closes them.
const ABORT_FLUSH: Duration = Duration::from_millis(100);

/// How long a stopping server waits for calls in flight before it closes their connections,
/// unless [`Config::shutdown_grace`] says otherwise.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A server bound to its addresses, ready to serve.
pub struct Server {
    node: Arc<Node>,
    config: Config,
    listeners: Vec<Listener>,
}

/// One bound address, and its TLS when it is an `https://` one.
struct Listener {
    tcp: TcpListener,
    tls: Option<tls::Acceptor>,
}

impl Listener {
    /// The URL clients reach it at: `http://` or `https://`, then the address bound.
    fn url(&self) -> io::Result<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        Ok(format!("{scheme}://{}", self.tcp.local_addr()?))
    }
}

impl Server {
    /// Binds every listen address of `config` (port 0 picks a free port) for `store`, and
    /// makes the store's member the one `config` names (its name and URLs, with the ids etcd
    /// derives from its peer URLs and cluster token, the version it reports, its space
    /// quota). The peer URLs are read as `--initial-advertise-peer-urls` reads them: one etcd
    /// refuses fails with `InvalidInput` and the flag's error. TLS addresses need
    /// [`Config::tls`], whose files are read and checked here: a TLS configuration that
    /// cannot serve fails with `InvalidInput` (or the file's error), saying why.
    pub async fn bind(config: Config, store: Arc<Store>) -> io::Result<Server> {
        let acceptor = match (&config.tls, config.listen_tls.is_empty()) {
            (_, true) => None,
            (Some(tls), false) => Some(tls::Acceptor::new(tls)?),
            (None, false) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "TLS listen addresses need a TLS configuration (a certificate and its key)",
                ))
            }
        };
        // As the flag reads them, so that URLs set from code give etcd's ids (which hash the
        // URLs as etcd writes them) and a URL etcd refuses fails here as it fails there.
        let peer_urls = bootstrap::advertised_peer_urls(&config.peer_urls)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut listeners = Vec::new();
        for addr in &config.listen {
            listeners.push(Listener { tcp: dispatch::listen(*addr)?, tls: None });
        }
        for addr in &config.listen_tls {
            listeners.push(Listener { tcp: dispatch::listen(*addr)?, tls: acceptor.clone() });
        }
        let mut advertise = config.advertise_client_urls.clone();
        if advertise.is_empty() {
            for listener in &listeners {
                advertise.push(listener.url()?);
            }
        }
        let cluster = store.cluster();
        let identity = Identity::new(&config.name, advertise, peer_urls, &config.cluster_token);
        cluster.set_identity(identity);
        cluster.set_version(config.etcd_version.clone());
        cluster.set_quota_bytes(config.quota_bytes);
        let node = Arc::new(Node::new(store));
        Ok(Server { node, config, listeners })
    }

    /// The addresses actually bound: the plain ones, then the TLS ones.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().filter_map(|l| l.tcp.local_addr().ok()).collect()
    }

    /// The URLs served, in the order of [`local_addrs`](Server::local_addrs):
    /// `http://<addr>` for a plain address, `https://<addr>` for a TLS one.
    pub fn local_urls(&self) -> Vec<String> {
        self.listeners.iter().filter_map(|l| l.url().ok()).collect()
    }

    /// What every service shares (the store, this member's identity).
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Every service as one hyper service: gRPC by path (`/etcdserverpb.KV/Range`, ...)
    /// and the JSON gateway's `/v3/...`.
    pub fn dispatch(&self) -> Dispatch {
        Dispatch::new(
            &self.node,
            self.config.max_request_bytes + GRPC_OVERHEAD_BYTES,
            self.config.cors.clone(),
            self.config.connections.max_unsent_response_bytes_total,
        )
    }

    /// Serves until `shutdown` completes, then stops accepting, ends open watch and
    /// keep-alive streams (Unavailable "etcdserver: server stopped"), gives calls in flight
    /// up to [`Config::shutdown_grace`] to finish, ends those still running with the same
    /// answer, and returns. Connections still busy after that are left to
    /// their tasks on the runtime (the binary exits, which ends them).
    ///
    /// Dropping the returned future before it completes stops the server at once: no more
    /// connections are accepted, and every call in flight answers "server stopped".
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let dispatch = self.dispatch();
        let compactor =
            self.config.auto_compaction.clone().map(|mode| compactor::spawn(self.node.store.clone(), mode));
        let mut running = Running { node: self.node.clone(), tasks: Vec::new(), compactor, done: false };
        for listener in self.listeners {
            let limits = self.config.connections;
            let stopped = self.node.stopped();
            let serve = dispatch::serve(listener.tcp, listener.tls, dispatch.clone(), limits, stopped);
            running.tasks.push(tokio::spawn(serve));
        }
        shutdown.await;
        tracing::info!("shutting down");
        // Open watch and keep-alive streams end with "server stopped"; calls in flight get
        // a bounded time to finish.
        self.node.stop();
        let mut result = Ok(());
        let grace = self.config.shutdown_grace;
        let deadline = tokio::time::Instant::now() + grace;
        let mut aborted = false;
        for server in &mut running.tasks {
            let finished = match tokio::time::timeout_at(deadline, &mut *server).await {
                Ok(finished) => Some(finished),
                Err(_) => {
                    // Calls still in flight answer "server stopped"; their connections
                    // then close, given a moment to flush those answers.
                    if !aborted {
                        tracing::warn!("calls still in flight after {grace:?}; ending them");
                        self.node.abort();
                        aborted = true;
                    }
                    tokio::time::timeout(ABORT_FLUSH, &mut *server).await.ok()
                }
            };
            match finished {
                Some(Ok(())) => {}
                Some(Err(e)) => result = Err(io::Error::other(e)),
                None => server.abort(),
            }
        }
        running.done = true;
        result
    }
}

/// What a serving [`Server::serve`] has started: stopped when it is dropped, whether the
/// serve future finished or was dropped half-way.
struct Running {
    node: Arc<Node>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    compactor: Option<tokio::task::JoinHandle<()>>,
    /// The shutdown ran to its end: only the compactor is left to stop.
    done: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.done {
            // Connections end their calls with "server stopped" and close.
            self.node.stop();
            self.node.abort();
            for task in &self.tasks {
                task.abort();
            }
        }
        if let Some(compactor) = &self.compactor {
            compactor.abort();
        }
    }
}

/// The README's examples, compiled and run as doc tests here, where every crate they use
/// (the library, the TestServer, etcd-client) is at hand.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use super::*;
    use etcdlite::Options;

    /// Binds `peer_urls` set from code on a free loopback port, over a store of its own.
    async fn bind_with(peer_urls: &[&str]) -> (io::Result<Server>, Arc<Store>) {
        let store = Arc::new(Store::open(Options::memory()).expect("an in-memory store"));
        let config = Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            peer_urls: peer_urls.iter().map(|url| url.to_string()).collect(),
            ..Config::default()
        };
        (Server::bind(config, store.clone()).await, store)
    }

    // etcd 3.5.1 started with `--initial-advertise-peer-urls ' HTTP://127.0.0.1:23802'` (and
    // `--initial-cluster 'default= HTTP://127.0.0.1:23802'`) lists its peer URL as
    // `http://127.0.0.1:23802` and answers member 185828541645115251 in cluster
    // 8140765981764738059 (`etcdctl member list -w json`).
    #[tokio::test]
    async fn peer_urls_from_code_are_read_as_the_flag_reads_them_so_the_ids_are_etcds() {
        let (server, store) = bind_with(&[" HTTP://127.0.0.1:23802"]).await;
        server.expect("bound");
        let me = store.cluster().identity();
        assert_eq!(me.peer_urls, ["http://127.0.0.1:23802"]);
        assert_eq!((me.member_id, me.cluster_id), (185828541645115251, 8140765981764738059));
        // Several URLs are sorted, as etcd keeps them.
        let (server, store) = bind_with(&["http://b:2", "HTTP://a:1"]).await;
        server.expect("bound");
        assert_eq!(store.cluster().identity().peer_urls, ["http://a:1", "http://b:2"]);
    }

    #[tokio::test]
    async fn a_peer_url_etcd_refuses_fails_from_code_with_the_flags_error() {
        for bad in [&["foo"][..], &["http://a"], &["http://a:1/path"], &[]] {
            let (server, _) = bind_with(bad).await;
            let error = server.err().expect("refused");
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            let urls: Vec<String> = bad.iter().map(|url| url.to_string()).collect();
            let from_flag = bootstrap::peer_urls("n1", bootstrap::DEFAULT_INITIAL_CLUSTER, &urls);
            assert_eq!(error.to_string(), from_flag.unwrap_err(), "{bad:?}");
        }
    }
}
