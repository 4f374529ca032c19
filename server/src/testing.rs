//! [`TestServer`]: the etcdlite server (gRPC and gateway) inside a test process, on an
//! ephemeral loopback port, on threads of its own.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use etcdlite::{ManualClock, Options, Store};
use tokio::sync::oneshot;

use crate::{Config, Faults, Node, Server, TlsConfig};

/// How long a dropped test server lets calls in flight finish before it closes their
/// connections.
const STOP_GRACE: Duration = Duration::from_millis(200);

/// How long the certificate of [`TestServerBuilder::auto_tls`] is valid: longer than any test.
const AUTO_TLS_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);

/// A real etcd-compatible server for tests: the etcdlite server's own code, gateway
/// included, on `127.0.0.1` and a port the system picks, over a memory store by default.
///
/// It runs on threads of its own, so tests with their own runtimes (or none) share it, and
/// clients of any kind reach it at [`endpoint`](TestServer::endpoint): the `etcd-client`
/// crate, etcdctl, `etcdlite::client::Client::connect`. Dropping it stops it: open watch and
/// keep-alive streams end with Unavailable `etcdserver: server stopped`, calls still in
/// flight after a moment have their connections closed, and the port is free again.
///
/// ```
/// use etcdlite_server::TestServer;
///
/// let server = TestServer::start()?;
/// assert!(server.endpoint().starts_with("http://127.0.0.1:"));
/// server.store().put("seeded", "by the test", None)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// With a [`ManualClock`], lease expiry is driven by the test:
///
/// ```
/// use std::time::Duration;
/// use etcdlite_server::TestServer;
///
/// let server = TestServer::builder().manual_clock().start()?;
/// let lease = server.store().lease_grant(10, None)?.id();
/// server.clock().unwrap().advance(Duration::from_secs(10));
/// assert_eq!(server.store().lease_time_to_live(lease, None)?.ttl(), -1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Over TLS, with a certificate generated at start (as etcd's `--auto-tls`) that a client
/// trusts through [`ca_pem`](TestServer::ca_pem):
///
/// ```
/// use etcdlite_server::TestServer;
///
/// let server = TestServer::builder().auto_tls().start()?;
/// assert!(server.endpoint().starts_with("https://127.0.0.1:"));
/// assert!(server.ca_pem().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TestServer {
    addr: SocketAddr,
    /// Whether it serves TLS (`https://`).
    tls: bool,
    /// The certificate [`TestServerBuilder::auto_tls`] generated.
    ca_pem: Option<String>,
    store: Arc<Store>,
    clock: Option<ManualClock>,
    node: Arc<Node>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// How to build a [`TestServer`]: its store (engine and options, or one of the test's
/// own), its clock, its server configuration.
#[derive(Default)]
pub struct TestServerBuilder {
    options: Option<Options>,
    store: Option<Arc<Store>>,
    clock: Option<ManualClock>,
    config: Option<Config>,
    tls: Option<TestTls>,
    /// The root user's password, when the server starts with auth on.
    root_password: Option<String>,
}

/// How a [`TestServer`] serves TLS.
enum TestTls {
    /// With the test's certificate.
    Given(TlsConfig),
    /// With one generated at start.
    Auto,
}

impl TestServerBuilder {
    /// Opens the store with `options` (any engine; default: memory).
    pub fn options(mut self, options: Options) -> Self {
        self.options = Some(options);
        self
    }

    /// Serves `store`, which the test also uses directly (instead of opening one with
    /// [`options`](TestServerBuilder::options)). It runs on the clock it was opened with,
    /// so a builder given a store takes no clock.
    pub fn store(mut self, store: Arc<Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Opens the store on a new [`ManualClock`]: leases expire only when the test advances
    /// it ([`TestServer::clock`]). Not with [`store`](TestServerBuilder::store).
    pub fn manual_clock(self) -> Self {
        self.clock(ManualClock::new())
    }

    /// Opens the store on `clock`.
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Serves with `config`. Its listen addresses are replaced by one, `127.0.0.1:0`: a
    /// TLS one when `config` has [`tls`](Config::tls) (or the builder is given
    /// [`tls`](TestServerBuilder::tls) or [`auto_tls`](TestServerBuilder::auto_tls)).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Serves TLS set up by `tls` (the test's own certificate, say for `127.0.0.1`, and
    /// its client certificate policy): the server's [`endpoint`](TestServer::endpoint) is
    /// `https://127.0.0.1:<port>`. Replaces an earlier [`auto_tls`](TestServerBuilder::auto_tls).
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(TestTls::Given(tls));
        self
    }

    /// Serves TLS with a self-signed certificate for `127.0.0.1` and `localhost` generated
    /// at start (as etcd's `--auto-tls`, in memory), which [`TestServer::ca_pem`] returns for
    /// clients to trust. No client certificates are asked for. Replaces an earlier
    /// [`tls`](TestServerBuilder::tls).
    pub fn auto_tls(mut self) -> Self {
        self.tls = Some(TestTls::Auto);
        self
    }

    /// Starts with auth enabled: a `root` user (password `root_password`) holding the `root`
    /// role is added first, as etcd requires. Log in as root (etcd-client's
    /// `ConnectOptions::with_user("root", root_password)`) to add users and roles.
    pub fn auth(mut self, root_password: impl Into<String>) -> Self {
        self.root_password = Some(root_password.into());
        self
    }

    /// Starts the server; returns once it accepts connections. Fails with `InvalidInput`
    /// for a builder given both a store and a clock, or a TLS configuration that cannot
    /// serve (see [`Server::bind`]).
    pub fn start(self) -> io::Result<TestServer> {
        let store = match self.store {
            Some(_) if self.clock.is_some() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a TestServer given a store runs on that store's clock: open the store with \
                     Options::clock(ManualClock) instead of giving the builder a clock",
                ));
            }
            Some(store) => store,
            None => {
                let mut options = self.options.unwrap_or_else(Options::memory);
                if let Some(clock) = &self.clock {
                    options = options.clock(Arc::new(clock.clone()));
                }
                Arc::new(Store::open(options).map_err(io::Error::other)?)
            }
        };
        if let Some(password) = &self.root_password {
            let (auth, admin) = (store.auth(), etcdlite::auth::Caller::Trusted);
            let root = etcdlite::auth::ROOT_USER;
            let enabled = match auth.user_add(&admin, root, password, false) {
                Ok(()) | Err(etcdlite::Error::UserAlreadyExist) => auth
                    .user_grant_role(&admin, root, etcdlite::auth::ROOT_ROLE)
                    .and_then(|()| auth.auth_enable(&admin)),
                Err(e) => Err(e),
            };
            enabled.map_err(io::Error::other)?;
        }
        let mut config = self.config.unwrap_or_default();
        let mut ca_pem = None;
        match self.tls {
            Some(TestTls::Given(tls)) => config.tls = Some(tls),
            Some(TestTls::Auto) => {
                let tls = TlsConfig::self_signed(&["127.0.0.1", "localhost"], AUTO_TLS_VALIDITY)?;
                ca_pem = Some(String::from_utf8(tls.cert.read()?).map_err(io::Error::other)?);
                config.tls = Some(tls);
            }
            None => {}
        }
        let tls = config.tls.is_some();
        let loopback = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
        (config.listen, config.listen_tls) =
            if tls { (Vec::new(), loopback) } else { (loopback, Vec::new()) };
        config.shutdown_grace = config.shutdown_grace.min(STOP_GRACE);
        let (ready, started) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = store.clone();
        let thread = std::thread::Builder::new()
            .name("etcdlite-test-server".into())
            .spawn(move || serve(config, served, ready, stopped))?;
        let started = started.recv().map_err(|_| io::Error::other("the test server's thread ended at start"));
        let (addr, node) = match started.and_then(|r| r) {
            Ok(started) => started,
            Err(e) => {
                let _ = thread.join();
                return Err(e);
            }
        };
        Ok(TestServer {
            addr,
            tls,
            ca_pem,
            store,
            clock: self.clock,
            node,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// The server thread: a runtime of its own, serving until told to stop.
fn serve(
    config: Config,
    store: Arc<Store>,
    ready: std::sync::mpsc::Sender<io::Result<(SocketAddr, Arc<Node>)>>,
    stopped: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("etcdlite-test-server-worker")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    runtime.block_on(async move {
        let server = match Server::bind(config, store).await {
            Ok(server) => server,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let Some(addr) = server.local_addrs().first().copied() else {
            let _ = ready.send(Err(io::Error::other("the test server bound no address")));
            return;
        };
        let _ = ready.send(Ok((addr, server.node().clone())));
        if let Err(e) = server
            .serve(async {
                let _ = stopped.await;
            })
            .await
        {
            tracing::warn!("test server: {e}");
        }
    });
    // Dropping the runtime ends whatever is left: connections past the grace period.
    runtime.shutdown_timeout(Duration::from_millis(100));
}

impl TestServer {
    /// A server over a new memory store, on the system clock.
    pub fn start() -> io::Result<TestServer> {
        TestServer::builder().start()
    }

    /// A builder, to choose the engine, the clock or the configuration.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// The server's URL, `http://127.0.0.1:<port>` (`https://` over TLS): an endpoint for
    /// any etcd client.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The PEM certificate a client trusts to reach a server started with
    /// [`auto_tls`](TestServerBuilder::auto_tls): the self-signed one it serves. None for
    /// other servers (the test that gave [`tls`](TestServerBuilder::tls) a certificate has
    /// its CA already).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The store served, for seeding and checking state directly.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The manual clock the store runs on, when the server was built with one.
    pub fn clock(&self) -> Option<&ManualClock> {
        self.clock.as_ref()
    }

    /// The faults the server injects (none until a test sets them).
    pub fn faults(&self) -> &Faults {
        &self.node.faults
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
