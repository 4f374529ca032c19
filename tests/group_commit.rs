//! Group commit seen from the `Store`: with sync on, nothing is answered from a write that
//! is not durable yet: not a refusal resting on it, not a snapshot or a lease read. The
//! engine's syncs are held (`FaultyEngine::hold_syncs`) to catch writes in between.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use etcdlite::engine::{FaultyEngine, MemoryEngine};
use etcdlite::{Error, Options, PutOptions, Store};

fn synced_store() -> (Arc<FaultyEngine>, Arc<Store>) {
    let engine = Arc::new(FaultyEngine::new(Arc::new(MemoryEngine::new())));
    let store = Store::open(Options::engine(engine.clone()).sync(true)).unwrap();
    (engine, Arc::new(store))
}

/// Polls `done` for up to ten seconds.
fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting until {what}");
}

/// Runs `call` on a thread while a write of `pending` is held in its sync, checks that
/// `call` waits for that sync, then releases it and returns what `call` returned.
fn held_behind_a_sync<T: Send + 'static>(
    engine: &FaultyEngine,
    store: &Arc<Store>,
    pending: impl FnOnce(&Store) + Send + 'static,
    call: impl FnOnce(&Store) -> T + Send + 'static,
) -> T {
    let syncs = engine.syncs_started();
    engine.hold_syncs(true);
    let writer = thread::spawn({
        let store = store.clone();
        move || pending(&store)
    });
    eventually("the pending write syncs", || engine.syncs_started() > syncs);
    eventually("the pending write waits for its sync", || store.sync_waiters() == 1);
    let caller = thread::spawn({
        let store = store.clone();
        move || call(&store)
    });
    // The call waits for the same sync (a call that answered would never wait: then this
    // times out, and the assertion below would fail too).
    eventually("the call waits for the pending write's sync", || store.sync_waiters() == 2);
    assert!(!caller.is_finished(), "answered before the write it rests on was durable");
    engine.hold_syncs(false);
    writer.join().unwrap();
    caller.join().unwrap()
}

#[test]
fn a_refusal_that_rests_on_a_pending_write_waits_for_it() {
    let (engine, store) = synced_store();
    store.put("k", "v", None).unwrap();
    let refused = held_behind_a_sync(
        &engine,
        &store,
        |store| {
            store.delete("k", None).unwrap();
        },
        |store| store.put("k", "", Some(PutOptions::new().with_ignore_value())),
    );
    assert!(matches!(refused, Err(Error::KeyNotFound)), "{refused:?}");
}

#[test]
fn a_snapshot_holds_only_durable_writes() {
    let (engine, store) = synced_store();
    let bytes = held_behind_a_sync(
        &engine,
        &store,
        |store| {
            store.put("k", "v", None).unwrap();
        },
        |store| {
            let mut out = Vec::new();
            store.snapshot(&mut out).unwrap();
            out
        },
    );
    let copy = Store::restore_snapshot(Options::memory(), &mut bytes.as_slice()).unwrap();
    assert_eq!(copy.get("k", None).unwrap().kvs[0].value, b"v");
}

#[test]
fn lease_reads_wait_for_a_pending_revoke() {
    let (engine, store) = synced_store();
    let lease = store.lease_grant(60, None).unwrap().id;
    store.put("k", "v", Some(PutOptions::new().with_lease(lease))).unwrap();
    let ttl = held_behind_a_sync(
        &engine,
        &store,
        move |store| {
            store.lease_revoke(lease).unwrap();
        },
        move |store| store.lease_time_to_live(lease, None).unwrap().ttl,
    );
    assert_eq!(ttl, -1);
    assert_eq!(store.get("k", None).unwrap().count, 0);
}

#[test]
fn a_revoke_refused_on_a_pending_revoke_waits_for_it() {
    let (engine, store) = synced_store();
    let lease = store.lease_grant(60, None).unwrap().id;
    let refused = held_behind_a_sync(
        &engine,
        &store,
        move |store| {
            store.lease_revoke(lease).unwrap();
        },
        move |store| store.lease_revoke(lease),
    );
    assert!(matches!(refused, Err(Error::LeaseNotFound)), "{refused:?}");
}

#[test]
fn due_leases_expire_in_a_batch_that_shares_its_syncs() {
    use etcdlite::ManualClock;

    const LEASES: u64 = 200;
    let engine = Arc::new(FaultyEngine::new(Arc::new(MemoryEngine::new())));
    let clock = ManualClock::new();
    let options = Options::engine(engine.clone()).sync(true).clock(Arc::new(clock.clone()));
    let store = Arc::new(Store::open(options).unwrap());
    for i in 0..LEASES {
        let lease = store.lease_grant(10, None).unwrap().id();
        store.put(format!("k{i}"), "v", Some(PutOptions::new().with_lease(lease))).unwrap();
    }
    let (writes, syncs) = (engine.writes_done(), engine.syncs_started());
    // With syncs held, every revoke must still be written: none waits for another's sync.
    engine.hold_syncs(true);
    let expiry = thread::spawn(move || clock.advance(Duration::from_secs(11)));
    eventually("every due lease's revoke is written", || engine.writes_done() >= writes + LEASES);
    engine.hold_syncs(false);
    expiry.join().unwrap();
    assert_eq!(store.get("k", Some(etcdlite::GetOptions::new().with_prefix())).unwrap().count(), 0);
    let used = engine.syncs_started() - syncs;
    assert!(used <= 3, "{used} syncs for {LEASES} expiries");
}
