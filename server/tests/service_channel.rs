//! The service registry's balanced gRPC channel: calls spread over every registered
//! instance, a new instance gets calls once it registers, and an instance that stops
//! renewing gets none once its TTL has run out. The instances are TestServers (each its own
//! etcd-compatible server and store), so where a call went is read from their stores.

use std::sync::Arc;
use std::time::Duration;

use etcdlite::coord::{Coordinator, CoordinatorConfig, ServiceInfo};
use etcdlite::{ManualClock, Options, Store};
use etcdlite_server::pb::etcdserverpb::kv_client::KvClient;
use etcdlite_server::pb::etcdserverpb::PutRequest;
use etcdlite_server::TestServer;

/// Puts `count` keys through `kv`.
async fn put_through(kv: &mut KvClient<tonic::transport::Channel>, count: usize, tag: &str) {
    for i in 0..count {
        let put =
            PutRequest { key: format!("{tag}/{i}").into_bytes(), value: b"v".to_vec(), ..Default::default() };
        kv.put(put).await.expect("every call reaches a live instance");
    }
}

fn instance(id: &str, server: &TestServer) -> ServiceInfo {
    ServiceInfo::new(id, "kv", server.addr().ip().to_string(), server.addr().port())
}

/// How many calls `server` has served: its store's revision counts the puts.
fn served(server: &TestServer) -> i64 {
    server.store().current_revision() - 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balanced_channel_follows_registrations_and_expiries() {
    let (a, b, c) =
        (TestServer::start().unwrap(), TestServer::start().unwrap(), TestServer::start().unwrap());
    // The registry's own store, on a clock the test moves.
    let clock = ManualClock::new();
    let store = Store::open(Options::memory().clock(Arc::new(clock.clone()))).unwrap();
    let coordinator = Coordinator::connect(CoordinatorConfig::embedded(store)).await.unwrap();
    let registry = coordinator.registry();
    let dying = registry.register(instance("a", &a), Duration::from_secs(3)).await.unwrap();
    registry.register(instance("b", &b), Duration::from_secs(60)).await.unwrap();

    let mut kv = KvClient::new(registry.channel("kv").await.unwrap());
    put_through(&mut kv, 40, "spread").await;
    assert!(served(&a) > 0 && served(&b) > 0, "both instances serve: a {} b {}", served(&a), served(&b));

    // A new instance joins and gets calls.
    registry.register(instance("c", &c), Duration::from_secs(60)).await.unwrap();
    for round in 0.. {
        put_through(&mut kv, 20, &format!("join{round}")).await;
        if served(&c) > 0 {
            break;
        }
        assert!(round < 100, "the new instance never got a call");
    }

    // Instance a stops renewing; once its TTL runs out the channel stops calling it.
    dying.session().orphan().await;
    clock.advance(Duration::from_secs(3));
    assert_eq!(registry.discover("kv").await.unwrap().len(), 2);
    for round in 0.. {
        let before = served(&a);
        put_through(&mut kv, 20, &format!("drain{round}")).await;
        if served(&a) == before {
            break;
        }
        assert!(round < 100, "the expired instance kept getting calls");
    }
    let (before_a, before_b, before_c) = (served(&a), served(&b), served(&c));
    put_through(&mut kv, 40, "after").await;
    assert_eq!(served(&a), before_a, "no call reaches the expired instance");
    assert_eq!(served(&b) + served(&c), before_b + before_c + 40);
}
