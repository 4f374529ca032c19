//! Leases: etcd-semantics.md section 4. Every expiry here runs on a `ManualClock`.

use std::sync::Arc;
use std::time::Duration;

use etcdlite::engine::FaultyEngine;
use etcdlite::{
    Code, Compare, CompareOp, Error, GetOptions, LeaseGrantOptions, LeaseTimeToLiveOptions, ManualClock,
    Options, PutOptions, Store, Txn, TxnOp,
};

use crate::harness::{keys, kv, Harness};

fn open(h: &Harness, clock: &ManualClock) -> Store {
    h.open_with(|o| o.clock(Arc::new(clock.clone())))
}

fn leased(lease: i64) -> Option<PutOptions> {
    Some(PutOptions::new().with_lease(lease))
}

fn with_id(id: i64) -> Option<LeaseGrantOptions> {
    Some(LeaseGrantOptions::new().with_id(id))
}

fn all_keys(store: &Store) -> Vec<String> {
    keys(&store.get("", Some(GetOptions::new().with_all_keys())).unwrap().kvs)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn grants_raise_short_ttls_refuse_huge_ones_and_take_no_revision(h: &Harness) {
    let store = open(h, &ManualClock::new());
    store.put("k", "v", None).unwrap();
    for (asked, granted) in [(0, 2), (-5, 2), (1, 2), (2, 2), (60, 60), (9_000_000_000, 9_000_000_000)] {
        let resp = store.lease_grant(asked, None).unwrap();
        assert_eq!(resp.ttl(), granted, "asked for {asked}");
        assert!(resp.id() > 0);
        assert_eq!(resp.header().revision(), 2);
    }
    let err = store.lease_grant(9_000_000_001, None).unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: too large lease TTL");
    assert_eq!(err.code(), Code::OutOfRange);
    assert_eq!(store.lease_leases().unwrap().leases().len(), 6);
    assert_eq!(store.current_revision(), 2);
}

pub fn a_chosen_id_is_used_once(h: &Harness) {
    let store = open(h, &ManualClock::new());
    assert_eq!(store.lease_grant(10, with_id(42)).unwrap().id(), 42);
    let err = store.lease_grant(20, with_id(42)).unwrap_err();
    assert_eq!(err, Error::LeaseExists);
    assert_eq!(err.to_string(), "etcdserver: lease already exists");
    assert_eq!(err.code(), Code::FailedPrecondition);
    // The failed grant changed nothing: the lease keeps its TTL.
    assert_eq!(store.lease_time_to_live(42, None).unwrap().granted_ttl(), 10);
    // Too large is checked first, as etcd does.
    assert_eq!(store.lease_grant(9_000_000_001, with_id(42)).unwrap_err(), Error::LeaseTtlTooLarge);
    // Picked ids never collide with chosen ones.
    let picked = store.lease_grant(10, None).unwrap().id();
    assert_ne!(picked, 42);
}

pub fn revoke_deletes_every_attached_key_in_one_revision(h: &Harness) {
    let store = open(h, &ManualClock::new());
    let lease = store.lease_grant(60, None).unwrap().id();
    for key in ["c", "a", "b"] {
        store.put(key, "v", leased(lease)).unwrap(); // 2, 3, 4
    }
    store.put("free", "v", None).unwrap(); // 5
    let resp = store.lease_revoke(lease).unwrap();
    assert_eq!(resp.header().revision(), 6);
    assert_eq!(all_keys(&store), ["free"]);
    // All three went in revision 6; revision 5 still has them.
    let before = store.get("", Some(GetOptions::new().with_all_keys().with_revision(5))).unwrap();
    assert_eq!(keys(&before.kvs), ["a", "b", "c", "free"]);
    assert_eq!(store.lease_time_to_live(lease, None).unwrap().ttl(), -1);

    for id in [lease, 0, 12345] {
        let err = store.lease_revoke(id).unwrap_err();
        assert_eq!(err.to_string(), "etcdserver: requested lease not found");
        assert_eq!(err.code(), Code::NotFound);
    }
    // A lease with no keys goes without a revision.
    let empty = store.lease_grant(60, None).unwrap().id();
    assert_eq!(store.lease_revoke(empty).unwrap().header().revision(), 6);
    assert_eq!(store.current_revision(), 6);
}

pub fn puts_with_unknown_or_revoked_leases_fail_and_write_nothing(h: &Harness) {
    let store = open(h, &ManualClock::new());
    let lease = store.lease_grant(60, None).unwrap().id();
    store.lease_revoke(lease).unwrap();
    for id in [lease, 777] {
        let err = store.put("k", "v", leased(id)).unwrap_err();
        assert_eq!(err, Error::LeaseNotFound);
        let txn = Txn::new().and_then([TxnOp::put("k", "v", leased(id))]);
        assert_eq!(store.txn(txn).unwrap_err(), Error::LeaseNotFound);
    }
    assert_eq!(store.current_revision(), 1);
    // Only the branch taken is checked.
    let txn = Txn::new()
        .when([Compare::version("k", CompareOp::Equal, 0)])
        .and_then([TxnOp::put("k", "v", None)])
        .or_else([TxnOp::put("k", "v", leased(777))]);
    assert!(store.txn(txn).unwrap().succeeded());
}

pub fn keys_move_between_leases_and_deletes_detach_them(h: &Harness) {
    let store = open(h, &ManualClock::new());
    let a = store.lease_grant(60, None).unwrap().id();
    let b = store.lease_grant(60, None).unwrap().id();
    store.put("moved", "1", leased(a)).unwrap();
    store.put("moved", "2", leased(b)).unwrap();
    store.put("freed", "1", leased(a)).unwrap();
    store.put("freed", "2", None).unwrap();
    store.put("kept", "1", leased(a)).unwrap();
    store.put("kept", "2", Some(PutOptions::new().with_ignore_lease())).unwrap();
    store.put("deleted", "1", leased(a)).unwrap();
    store.delete("deleted", None).unwrap();
    store.put("deleted", "2", None).unwrap();
    // A txn attaches too, and a lease compare sees it.
    store.txn(Txn::new().and_then([TxnOp::put("in-txn", "1", leased(a))])).unwrap();
    let compare = Txn::new().when([Compare::lease("in-txn", CompareOp::Equal, a)]);
    assert!(store.txn(compare).unwrap().succeeded());
    assert_eq!(kv(&store, "kept").unwrap().lease, a);

    let ttl = store.lease_time_to_live(a, Some(LeaseTimeToLiveOptions::new().with_keys())).unwrap();
    assert_eq!(ttl.keys(), [b"in-txn".to_vec(), b"kept".to_vec()]);
    store.lease_revoke(a).unwrap();
    assert_eq!(all_keys(&store), ["deleted", "freed", "moved"]);
    store.lease_revoke(b).unwrap();
    assert_eq!(all_keys(&store), ["deleted", "freed"]);
}

pub fn a_lease_expires_exactly_when_the_clock_reaches_its_ttl(h: &Harness) {
    let clock = ManualClock::new();
    let store = open(h, &clock);
    let lease = store.lease_grant(5, None).unwrap().id();
    store.put("a", "1", leased(lease)).unwrap(); // 2
    store.put("b", "1", leased(lease)).unwrap(); // 3
    clock.advance(Duration::from_millis(4_999));
    assert_eq!(all_keys(&store), ["a", "b"]);
    assert_eq!(store.lease_time_to_live(lease, None).unwrap().ttl(), 0);
    clock.advance(Duration::from_millis(1));
    assert!(all_keys(&store).is_empty());
    // One revision for both deletes, through the same write path as any delete.
    assert_eq!(store.current_revision(), 4);
    let resp = store.lease_time_to_live(lease, None).unwrap();
    assert_eq!((resp.ttl(), resp.granted_ttl()), (-1, 0));
    assert_eq!(store.lease_keep_alive(lease).unwrap_err(), Error::LeaseNotFound);
}

pub fn keep_alive_renews_to_the_full_ttl(h: &Harness) {
    let clock = ManualClock::new();
    let store = open(h, &clock);
    let lease = store.lease_grant(10, None).unwrap().id();
    store.put("k", "v", leased(lease)).unwrap();
    clock.advance(secs(8));
    let resp = store.lease_keep_alive(lease).unwrap();
    assert_eq!((resp.id(), resp.ttl()), (lease, 10));
    clock.advance(secs(8));
    assert_eq!(all_keys(&store), ["k"]);
    assert_eq!(store.lease_time_to_live(lease, None).unwrap().ttl(), 2);
    clock.advance(secs(2));
    assert!(all_keys(&store).is_empty());
    let err = store.lease_keep_alive(999).unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: requested lease not found");
    assert_eq!(err.code(), Code::NotFound);
}

pub fn time_to_live_rounds_down_and_lists_keys(h: &Harness) {
    let clock = ManualClock::new();
    let store = open(h, &clock);
    let lease = store.lease_grant(10, None).unwrap().id();
    assert_eq!(store.lease_time_to_live(lease, None).unwrap().ttl(), 10);
    clock.advance(Duration::from_millis(1));
    let resp = store.lease_time_to_live(lease, None).unwrap();
    assert_eq!((resp.id(), resp.ttl(), resp.granted_ttl()), (lease, 9, 10));
    assert!(resp.keys().is_empty());
    store.put("z", "v", leased(lease)).unwrap();
    store.put("y", "v", leased(lease)).unwrap();
    let with_keys = store.lease_time_to_live(lease, Some(LeaseTimeToLiveOptions::new().with_keys())).unwrap();
    assert_eq!(with_keys.keys(), [b"y".to_vec(), b"z".to_vec()]);
    assert_eq!(with_keys.header().revision(), 3);
    let unknown = store.lease_time_to_live(4242, Some(LeaseTimeToLiveOptions::new().with_keys())).unwrap();
    assert_eq!((unknown.id(), unknown.ttl(), unknown.granted_ttl()), (4242, -1, 0));
}

pub fn leases_are_listed_soonest_to_expire_first(h: &Harness) {
    let clock = ManualClock::new();
    let store = open(h, &clock);
    let long = store.lease_grant(30, None).unwrap().id();
    let short = store.lease_grant(10, None).unwrap().id();
    let mid = store.lease_grant(12, None).unwrap().id();
    let ids = |s: &Store| s.lease_leases().unwrap().leases().iter().map(|l| l.id()).collect::<Vec<_>>();
    assert_eq!(ids(&store), [short, mid, long]);
    clock.advance(secs(8));
    store.lease_keep_alive(short).unwrap(); // now due at 18
    assert_eq!(ids(&store), [mid, short, long]);
    clock.advance(secs(4)); // mid is due at 12
    assert_eq!(ids(&store), [short, long]);
}

pub fn leases_survive_reopening_with_their_full_ttl(h: &Harness) {
    let clock = ManualClock::new();
    let store = open(h, &clock);
    let lease = store.lease_grant(10, with_id(7)).unwrap().id();
    let other = store.lease_grant(100, None).unwrap().id();
    store.put("a", "1", leased(lease)).unwrap();
    store.put("b", "1", leased(lease)).unwrap();
    store.put("c", "1", leased(other)).unwrap();
    store.put("c", "2", None).unwrap();
    store.put("d", "1", leased(lease)).unwrap();
    store.delete("d", None).unwrap();
    clock.advance(secs(8));
    drop(store);

    // A new clock: the lease is due its full TTL from the reopening, as after etcd restarts.
    let clock = ManualClock::new();
    let store = open(h, &clock);
    let resp = store.lease_time_to_live(lease, Some(LeaseTimeToLiveOptions::new().with_keys())).unwrap();
    assert_eq!((resp.ttl(), resp.granted_ttl()), (10, 10));
    assert_eq!(resp.keys(), [b"a".to_vec(), b"b".to_vec()]);
    assert!(store
        .lease_time_to_live(other, Some(LeaseTimeToLiveOptions::new().with_keys()))
        .unwrap()
        .keys()
        .is_empty());
    assert_eq!(store.lease_grant(5, with_id(7)).unwrap_err(), Error::LeaseExists);
    clock.advance(secs(10));
    assert_eq!(all_keys(&store), ["c"]);
    // The expiry is durable: it does not come back.
    let store = h.reopen(store);
    assert_eq!(all_keys(&store), ["c"]);
    assert_eq!(store.lease_leases().unwrap().leases().len(), 1);
}

pub fn a_revoke_that_fails_to_write_changes_nothing(h: &Harness) {
    let faulty = Arc::new(FaultyEngine::new(h.engine()));
    let clock = ManualClock::new();
    let store =
        Store::open(Options::engine(faulty.clone()).sync(false).clock(Arc::new(clock.clone()))).unwrap();
    let lease = store.lease_grant(5, None).unwrap().id();
    store.put("k", "v", leased(lease)).unwrap();
    faulty.fail_writes_after(0);
    assert!(matches!(store.lease_revoke(lease).unwrap_err(), Error::Engine(_)));
    // Expiry fails too, and is retried later.
    clock.advance(secs(5));
    assert_eq!(all_keys(&store), ["k"]);
    assert!(matches!(store.lease_grant(5, None).unwrap_err(), Error::Engine(_)));
    assert_eq!(store.lease_leases().unwrap().leases().len(), 1);
    assert_eq!(store.current_revision(), 2);
    faulty.heal();
    assert_eq!(store.expire_leases().unwrap(), 1);
    assert!(all_keys(&store).is_empty());
    assert_eq!(store.current_revision(), 3);
}

pub fn expiry_among_concurrent_writers_keeps_revisions_gapless(h: &Harness) {
    const WRITERS: usize = 3;
    const PUTS: usize = 150;
    const LEASES: i64 = 60;
    let clock = ManualClock::new();
    let store = open(h, &clock);
    // Lease i (1-based) holds key lease/i and is due at i seconds.
    for i in 1..=LEASES {
        store.lease_grant(i.max(2), with_id(i)).unwrap();
    }
    for i in 1..=LEASES {
        store.put(format!("lease/{i:02}"), "v", leased(i)).unwrap();
    }
    let before = store.current_revision();
    let handed_out: Vec<i64> = std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = &store;
                s.spawn(move || {
                    (0..PUTS)
                        .map(|i| store.put(format!("w{w}/{i}"), "v", None).unwrap().header.revision)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for _ in 0..LEASES {
            clock.advance(secs(1));
        }
        writers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert!(store.lease_leases().unwrap().leases().is_empty());
    assert!(keys(&store.get("lease/", Some(GetOptions::new().with_prefix())).unwrap().kvs).is_empty());
    // Every revision went to exactly one put or one expiry.
    let expiries = LEASES;
    assert_eq!(store.current_revision(), before + (WRITERS * PUTS) as i64 + expiries);
    let mut sorted = handed_out.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), handed_out.len(), "no revision handed out twice");
    // Each lease key was deleted alone in its own revision, none of them a put's.
    for rev in before + 1..=store.current_revision() {
        if sorted.binary_search(&rev).is_ok() {
            continue;
        }
        let now =
            store.get("lease/", Some(GetOptions::new().with_prefix().with_revision(rev))).unwrap().count;
        let then =
            store.get("lease/", Some(GetOptions::new().with_prefix().with_revision(rev - 1))).unwrap().count;
        assert_eq!(then - now, 1, "revision {rev} is one expiry");
    }
}
