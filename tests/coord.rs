//! The coordinator in-process: distributed locks, the service registry and the config
//! center, with lease expiry driven by a manual clock. (The client suite in the server
//! crate runs the same services on a TestServer and on etcd.)

use std::sync::Arc;
use std::time::Duration;

use etcdlite::client::{Client, GetOptions};
use etcdlite::coord::{ConfigEvent, Coordinator, CoordinatorConfig, Error, ServiceEvent, ServiceInfo};
use etcdlite::{ManualClock, Options, Store};
use serde::{Deserialize, Serialize};

const WAIT: Duration = Duration::from_secs(10);

async fn manual() -> (Coordinator, ManualClock) {
    let clock = ManualClock::new();
    let store = Store::open(Options::memory().clock(Arc::new(clock.clone()))).unwrap();
    (Coordinator::connect(CoordinatorConfig::embedded(store)).await.unwrap(), clock)
}

async fn leases(client: &Client) -> usize {
    client.clone().leases().await.unwrap().leases().len()
}

async fn keys(client: &Client, prefix: &str) -> i64 {
    let mut c = client.clone();
    c.get(prefix, Some(GetOptions::new().with_prefix().with_count_only())).await.unwrap().count()
}

#[tokio::test]
async fn a_lock_is_exclusive_and_try_acquire_fails_at_once() {
    let (coordinator, _clock) = manual().await;
    let locks = coordinator.lock();
    let held = locks.acquire("jobs/nightly", Duration::from_secs(10)).await.unwrap();
    assert_eq!(held.key(), "jobs/nightly");
    assert!(held.is_held());
    let left = held.ttl().await.unwrap();
    assert!(left <= Duration::from_secs(10) && left >= Duration::from_secs(9), "{left:?}");
    let refused = locks.try_acquire("jobs/nightly", Duration::from_secs(10)).await.unwrap_err();
    assert!(matches!(refused, Error::Locked), "{refused:?}");
    assert_eq!(leases(coordinator.client()).await, 1, "a refused try leaves no lease");
    assert_eq!(keys(coordinator.client(), "jobs/nightly/").await, 1, "nor a key");
    held.unlock().await.unwrap();
    let again = locks.try_acquire("jobs/nightly", Duration::from_secs(10)).await.unwrap();
    drop(again);
    assert_eq!(keys(coordinator.client(), "jobs/nightly/").await, 0, "dropping a held lock releases it");
}

#[tokio::test]
async fn a_dead_holder_frees_the_lock_within_its_ttl() {
    let (coordinator, clock) = manual().await;
    let locks = coordinator.lock();
    let holder = locks.acquire("leader-job", Duration::from_secs(5)).await.unwrap();
    let waiting = {
        let locks = locks.clone();
        tokio::spawn(async move { locks.acquire("leader-job", Duration::from_secs(60)).await })
    };
    tokio::time::timeout(WAIT, async {
        while keys(coordinator.client(), "leader-job/").await < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    // The holder's process dies: its renewals stop and nothing releases the lock.
    holder.session().orphan().await;
    std::mem::forget(holder);
    clock.advance(Duration::from_secs(5));
    let next = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap().unwrap();
    assert!(next.is_held());
    next.unlock().await.unwrap();
    assert_eq!(leases(coordinator.client()).await, 0, "unlock revokes the lease");
}

#[tokio::test]
async fn a_cancelled_acquire_leaves_nothing_behind() {
    let (coordinator, _clock) = manual().await;
    let locks = coordinator.lock();
    let held = locks.acquire("m", Duration::from_secs(10)).await.unwrap();
    let gave_up =
        tokio::time::timeout(Duration::from_millis(50), locks.acquire("m", Duration::from_secs(10))).await;
    assert!(gave_up.is_err(), "the lock is held");
    assert_eq!(keys(coordinator.client(), "m/").await, 1, "the cancelled waiter withdrew its key");
    assert_eq!(leases(coordinator.client()).await, 1, "and revoked its lease");
    held.unlock().await.unwrap();
}

#[tokio::test]
async fn bad_lock_requests_get_clear_errors_and_leak_nothing() {
    let (coordinator, _clock) = manual().await;
    let locks = coordinator.lock();
    assert!(matches!(locks.acquire("", Duration::from_secs(5)).await, Err(Error::InvalidArgs(_))));
    assert!(matches!(locks.acquire("k", Duration::ZERO).await, Err(Error::InvalidArgs(_))));
    let too_long = locks.acquire("k", Duration::from_secs(9_000_000_001)).await.unwrap_err();
    assert_eq!(too_long.status().unwrap().message(), "etcdserver: too large lease TTL");
    let huge = "k".repeat(2 * 1024 * 1024);
    let too_large = locks.acquire(huge, Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(too_large.status().unwrap().message(), "etcdserver: request is too large");
    assert_eq!(leases(coordinator.client()).await, 0, "no lease leaked");
    assert_eq!(keys(coordinator.client(), "").await, 0, "no key leaked");
}

#[tokio::test]
async fn services_are_discovered_watched_and_vanish_after_their_ttl() {
    let (coordinator, clock) = manual().await;
    let registry = coordinator.registry();
    let mut watch = registry.watch("api").await.unwrap();
    let one = ServiceInfo::new("api-1", "api", "10.0.0.1", 8080).with_metadata("zone", "a");
    let two = ServiceInfo::new("api-2", "api", "10.0.0.2", 8080);
    let registered = registry.register(one.clone(), Duration::from_secs(5)).await.unwrap();
    assert_eq!(registered.key(), "services/api/api-1");
    registry.register(two.clone(), Duration::from_secs(60)).await.unwrap();
    registry
        .register(ServiceInfo::new("db-1", "db", "10.0.1.1", 5432), Duration::from_secs(60))
        .await
        .unwrap();
    // The same instance id under another service is another registration: it replaces
    // nothing of "api".
    let cache = ServiceInfo::new("api-1", "cache", "10.0.2.1", 6379);
    registry.register(cache.clone(), Duration::from_secs(60)).await.unwrap();
    assert_eq!(registry.discover("cache").await.unwrap(), [cache]);
    let mut found = registry.discover("api").await.unwrap();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(found, [one.clone(), two.clone()]);
    assert_eq!(watch.next_event().await.unwrap().unwrap(), ServiceEvent::Put(one.clone()));
    assert_eq!(watch.next_event().await.unwrap().unwrap(), ServiceEvent::Put(two.clone()));

    // api-1 stops renewing (its process died): gone once its TTL has run out.
    registered.session().orphan().await;
    clock.advance(Duration::from_secs(5));
    assert_eq!(registry.discover("api").await.unwrap(), std::slice::from_ref(&two));
    let gone = tokio::time::timeout(WAIT, watch.next_event()).await.unwrap().unwrap().unwrap();
    assert_eq!(gone, ServiceEvent::Delete { id: "api-1".into() });

    registry.unregister("api-2").await.unwrap();
    assert!(registry.discover("api").await.unwrap().is_empty());
    assert_eq!(watch.next_event().await.unwrap().unwrap(), ServiceEvent::Delete { id: "api-2".into() });
    assert!(matches!(registry.unregister("api-2").await, Err(Error::NotRegistered(_))));
    let nameless = ServiceInfo::new("x", "", "h", 1);
    assert!(matches!(registry.register(nameless, Duration::from_secs(5)).await, Err(Error::InvalidArgs(_))));

    // Closing the coordinator unregisters what it registered.
    coordinator.close().await.unwrap();
    assert!(registry.discover("db").await.unwrap().is_empty());
    assert!(registry.discover("cache").await.unwrap().is_empty());
    assert_eq!(leases(coordinator.client()).await, 0);
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Limits {
    rps: u32,
    burst: u32,
}

#[tokio::test]
async fn config_values_round_trip_and_watches_see_every_change_in_order() {
    let (coordinator, _clock) = manual().await;
    let config = coordinator.config();
    let mut changes = config.watch_prefix::<Limits>("limits/").await.unwrap();
    let mut one = config.watch::<Limits>("limits/api").await.unwrap();
    assert_eq!(config.get::<Limits>("limits/api").await.unwrap(), None);

    let api = Limits { rps: 100, burst: 10 };
    let set_at = config.set("limits/api", &api).await.unwrap();
    assert_eq!(config.get::<Limits>("limits/api").await.unwrap(), Some(api.clone()));
    config.set("limits/db", &Limits { rps: 5, burst: 1 }).await.unwrap();
    // Something else writes a value that is not a `Limits`.
    coordinator.client().clone().put("limits/bad", "{not json", None).await.unwrap();
    assert!(config.delete("limits/db").await.unwrap());
    assert!(!config.delete("limits/db").await.unwrap());

    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(tokio::time::timeout(WAIT, changes.next_event()).await.unwrap().unwrap().unwrap());
    }
    assert_eq!(seen[0], ConfigEvent::Put { key: "limits/api".into(), value: api.clone(), revision: set_at });
    assert!(matches!(&seen[1], ConfigEvent::Put { key, value, .. } if key == "limits/db" && value.rps == 5));
    assert!(matches!(&seen[2], ConfigEvent::Invalid { key, .. } if key == "limits/bad"), "{:?}", seen[2]);
    assert!(matches!(&seen[3], ConfigEvent::Delete { key, .. } if key == "limits/db"));
    assert_eq!(one.next_event().await.unwrap().unwrap(), seen[0], "a key's watch sees that key only");

    let listed = config.list::<Limits>("limits/api").await.unwrap();
    assert_eq!(listed.into_iter().collect::<Vec<_>>(), [("limits/api".to_owned(), api)]);
    let refused = config.list::<Limits>("limits/").await.unwrap_err();
    assert!(matches!(&refused, Error::Decode { key, .. } if key == "limits/bad"), "{refused:?}");
    assert!(matches!(config.get::<Limits>("").await, Err(Error::InvalidArgs(_))));
}
