//! The recipes of etcd's `experimental/recipes` Go package, and two of Curator's.
//!
//! [`RwMutex`], [`Barrier`], [`DoubleBarrier`], [`Queue`] and [`PriorityQueue`] keep the Go
//! package's key layouts and protocols, so Go and Rust programs share them on one cluster.
//! [`Semaphore`] and [`PrefixCache`] are Curator's counting semaphore and path cache, built
//! on the same principles. All of them work only through [`Client`](crate::client::Client).

mod barrier;
mod double_barrier;
mod key;
mod prefix_cache;
mod priority_queue;
mod queue;
mod rwmutex;
mod semaphore;

pub use barrier::Barrier;
pub use double_barrier::DoubleBarrier;
pub use prefix_cache::PrefixCache;
pub use priority_queue::PriorityQueue;
pub use queue::Queue;
pub use rwmutex::RwMutex;
pub use semaphore::Semaphore;

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::client::{Client, GetOptions};
    use crate::concurrency::{Session, SessionOptions};
    use crate::{ManualClock, Options, Store};

    /// A bound on waits that must end; nothing here takes it unless broken.
    pub(super) const WAIT: Duration = Duration::from_secs(10);

    pub(super) async fn client() -> Client {
        let store = Arc::new(Store::open(Options::memory()).unwrap());
        Client::embedded(store, None).await.unwrap()
    }

    /// A client over a store whose leases follow `ManualClock`.
    pub(super) async fn manual() -> (Client, ManualClock) {
        let clock = ManualClock::new();
        let store = Store::open(Options::memory().clock(Arc::new(clock.clone()))).unwrap();
        (Client::embedded(store, None).await.unwrap(), clock)
    }

    pub(super) async fn session(client: &Client, ttl: i64) -> Session {
        Session::new(client, Some(SessionOptions::new().with_ttl(ttl))).await.unwrap()
    }

    pub(super) async fn count(client: &Client, prefix: &str) -> i64 {
        let mut c = client.clone();
        c.get(prefix, Some(GetOptions::new().with_prefix().with_count_only())).await.unwrap().count()
    }
}
