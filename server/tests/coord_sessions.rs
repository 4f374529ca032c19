//! Many short-lived sessions over one connection: a long-lived application that takes a
//! `DistributedLock` (a session of its own each time) thousands of times over one client
//! keeps its connection. The coordination bench found such a connection closed by the
//! HTTP/2 client after a few thousand (a renewal in flight on each stream dropped at once,
//! answered late, counted as protocol errors); this holds the fix (no renewal right after
//! a keep-alive stream opens, and h2 0.4.21) in place.

use std::time::Duration;

use etcdlite::coord::{Coordinator, CoordinatorConfig};
use etcdlite_server::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_short_sessions_keep_their_connection() {
    let server = TestServer::start().unwrap();
    let coordinator = Coordinator::connect(CoordinatorConfig::endpoints([server.endpoint()])).await.unwrap();
    let locks = coordinator.lock();
    for i in 0..5000 {
        let held = locks
            .acquire("busy", Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("acquire {i}: {e}"));
        held.unlock().await.unwrap_or_else(|e| panic!("unlock {i}: {e}"));
        // Each acquire leaves a deleted key in the index until a compaction, as in etcd.
        if i % 100 == 99 {
            let revision = server.store().current_revision();
            server.store().compact(revision, None).unwrap();
        }
    }
}
