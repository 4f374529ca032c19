//! Coordination for applications, in the shape of the coordination libraries users of etcd
//! write against: a [`Coordinator`] hands out distributed locks, a service registry and a
//! config center, all over one [`Client`], with retries on transient failures.
//!
//! ```
//! use std::time::Duration;
//! use etcdlite::coord::{Coordinator, CoordinatorConfig, ServiceInfo};
//! use etcdlite::{Options, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), etcdlite::coord::Error> {
//! // In-process; `CoordinatorConfig::endpoints(["http://10.0.0.1:2379"])` points the same
//! // code at an etcd cluster (with the `remote` feature).
//! let coordinator = Coordinator::connect(CoordinatorConfig::embedded(Store::open(Options::memory())?)).await?;
//!
//! let held = coordinator.lock().acquire("jobs/nightly", Duration::from_secs(10)).await?;
//! // ... only one process runs the nightly job ...
//! held.unlock().await?;
//!
//! let registry = coordinator.registry();
//! registry.register(ServiceInfo::new("api-1", "api", "10.0.0.5", 8080), Duration::from_secs(10)).await?;
//! assert_eq!(registry.discover("api").await?.len(), 1);
//!
//! let config = coordinator.config();
//! config.set("app/limits", &serde_json::json!({"rps": 100})).await?;
//! let limits: Option<serde_json::Value> = config.get("app/limits").await?;
//! assert_eq!(limits.unwrap()["rps"], 100);
//! coordinator.close().await?;
//! # Ok(()) }
//! ```
//!
//! Everything here is written against [`Client`] and [`concurrency`](crate::concurrency)
//! only, so it runs in-process, on an etcdlite server and on a real etcd cluster alike.

mod config;
mod error;
mod follow;
mod lock;
mod registry;
mod retry;

use std::sync::Arc;
use std::time::Duration;

pub use config::{ConfigCenter, ConfigEvent, ConfigWatch};
pub use error::{Error, Result};
pub use lock::{DistributedLock, HeldLock};
pub use registry::{Registration, ServiceEvent, ServiceInfo, ServiceRegistry, ServiceWatch};
pub use retry::RetryPolicy;

use crate::client::{Client, ConnectOptions};
use crate::Store;

/// Where a coordinator's client goes.
#[derive(Clone)]
enum Target {
    Embedded(Arc<Store>),
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    Endpoints(Vec<String>),
    Client(Client),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Embedded(_) => f.write_str("Embedded"),
            Target::Endpoints(endpoints) => f.debug_tuple("Endpoints").field(endpoints).finish(),
            Target::Client(client) => f.debug_tuple("Client").field(client).finish(),
        }
    }
}

/// How a [`Coordinator`] connects: endpoints of an etcd cluster or a store in this
/// process, a user, a timeout per call, and how transient failures are retried.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    target: Target,
    user: Option<(String, String)>,
    timeout: Option<Duration>,
    retry: RetryPolicy,
}

impl CoordinatorConfig {
    fn over(target: Target) -> Self {
        CoordinatorConfig { target, user: None, timeout: None, retry: RetryPolicy::default() }
    }

    /// An etcd cluster (or an etcdlite server) at `endpoints`, through the `remote`
    /// feature's client; without that feature, connecting fails with
    /// [`Error::InvalidArgs`].
    pub fn endpoints<E: AsRef<str>>(endpoints: impl IntoIterator<Item = E>) -> Self {
        CoordinatorConfig::over(Target::Endpoints(
            endpoints.into_iter().map(|e| e.as_ref().to_owned()).collect(),
        ))
    }

    /// A store in this process.
    pub fn embedded(store: impl Into<Arc<Store>>) -> Self {
        CoordinatorConfig::over(Target::Embedded(store.into()))
    }

    /// A client the application has already made.
    pub fn client(client: Client) -> Self {
        CoordinatorConfig::over(Target::Client(client))
    }

    /// Authenticates as `name` with `password`.
    pub fn with_user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((name.into(), password.into()));
        self
    }

    /// Bounds every call (a lock's wait excepted: that is bounded by the caller).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How transient failures are retried (default: 3 attempts, 100 ms doubling to 2 s).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// The entry point: one client, and the coordination services over it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Coordinator {
    client: Client,
    retry: RetryPolicy,
    registry: ServiceRegistry,
}

impl Coordinator {
    /// Connects as `config` says.
    pub async fn connect(config: CoordinatorConfig) -> Result<Coordinator> {
        let mut options = ConnectOptions::new();
        if let Some((name, password)) = config.user {
            options = options.with_user(name, password);
        }
        if let Some(timeout) = config.timeout {
            options = options.with_timeout(timeout);
        }
        let client = match config.target {
            Target::Client(client) => client,
            Target::Embedded(store) => Client::embedded(store, Some(options)).await?,
            #[cfg(feature = "remote")]
            Target::Endpoints(endpoints) => {
                let retry = config.retry;
                retry.run(|| Client::connect(&endpoints, Some(options.clone()))).await?
            }
            #[cfg(not(feature = "remote"))]
            Target::Endpoints(_) => {
                return Err(Error::InvalidArgs(
                    "connecting to endpoints needs etcdlite's `remote` feature".into(),
                ))
            }
        };
        let registry = ServiceRegistry::new(client.clone(), config.retry);
        Ok(Coordinator { client, retry: config.retry, registry })
    }

    /// Distributed locks.
    pub fn lock(&self) -> DistributedLock {
        DistributedLock::new(self.client.clone(), self.retry)
    }

    /// The service registry (one per coordinator: it remembers what it registered).
    pub fn registry(&self) -> ServiceRegistry {
        self.registry.clone()
    }

    /// The config center.
    pub fn config(&self) -> ConfigCenter {
        ConfigCenter::new(self.client.clone(), self.retry)
    }

    /// The client underneath.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Unregisters every service this coordinator registered (their leases revoked, their
    /// keys gone at once rather than after their TTL). Held locks stay with their holders.
    pub async fn close(&self) -> Result<()> {
        self.registry.unregister_all().await
    }
}

/// A TTL as a whole number of seconds for a lease: positive, rounded up.
pub(crate) fn lease_ttl(ttl: Duration) -> Result<i64> {
    if ttl.is_zero() {
        return Err(Error::InvalidArgs("a TTL must be positive".into()));
    }
    let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(seconds).map_err(|_| Error::InvalidArgs(format!("a TTL of {ttl:?} is too long")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_whole_seconds_rounded_up_and_positive() {
        assert_eq!(lease_ttl(Duration::from_secs(5)).unwrap(), 5);
        assert_eq!(lease_ttl(Duration::from_millis(1500)).unwrap(), 2);
        assert!(matches!(lease_ttl(Duration::ZERO), Err(Error::InvalidArgs(_))));
    }
}
