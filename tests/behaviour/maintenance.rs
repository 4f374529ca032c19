//! Maintenance: etcd-semantics.md section 6 (HashKV, Hash, Snapshot, Defragment, sizes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use etcdlite::engine::{snapshot_file, EngineErrorKind};
use etcdlite::{
    Code, CompactionOptions, DeleteOptions, Error, GetOptions, LeaseTimeToLiveOptions, Options, PutOptions,
    Store, Txn, TxnOp,
};

use crate::harness::{keys, kv, Harness};

fn physical() -> Option<CompactionOptions> {
    Some(CompactionOptions::new().with_physical())
}

fn at(store: &Store, key: &str, rev: i64) -> Result<Option<Vec<u8>>, Error> {
    let resp = store.get(key, Some(GetOptions::new().with_revision(rev)))?;
    Ok(resp.kvs.into_iter().next().map(|kv| kv.value))
}

fn hash_at(store: &Store, rev: i64) -> u32 {
    store.hash_kv(rev).unwrap().hash()
}

fn snapshot_of(store: &Store) -> Vec<u8> {
    let mut bytes = Vec::new();
    let written = store.snapshot(&mut bytes).unwrap();
    assert_eq!(written, bytes.len() as u64);
    bytes
}

/// The etcd 3.4.23 session recorded in `src/mvcc/hash.rs`, through the store's API.
fn etcd_history(store: &Store) {
    store.put("a", "1", None).unwrap(); // 2
    store.put("b", "2", None).unwrap(); // 3
    store.put("a", "3", None).unwrap(); // 4
    store.delete("b", None).unwrap(); // 5
    store.txn(Txn::new().and_then([TxnOp::put("c", "4", None), TxnOp::put("d", "5", None)])).unwrap(); // 6
    store.delete("a", None).unwrap(); // 7
    store.put("a", "6", None).unwrap(); // 8
}

pub fn hash_kv_equals_etcds_hash_on_every_engine_and_after_reopening(h: &Harness) {
    let store = h.open();
    etcd_history(&store);
    for (rev, etcd) in [(0, 1_029_331_830), (4, 2_069_675_932), (6, 3_853_268_819), (8, 1_029_331_830)] {
        assert_eq!(hash_at(&store, rev), etcd, "revision {rev}");
    }
    store.compact(5, physical()).unwrap();
    let etcd_after = [(0, 2_595_435_283), (6, 4_290_631_835), (7, 4_033_764_365)];
    for (rev, etcd) in etcd_after {
        assert_eq!(hash_at(&store, rev), etcd, "revision {rev} after compacting at 5");
    }
    let store = h.reopen(store);
    for (rev, etcd) in etcd_after {
        assert_eq!(hash_at(&store, rev), etcd, "revision {rev} after reopening");
    }
    let resp = store.hash_kv(6).unwrap();
    assert_eq!((resp.header().revision(), resp.compact_revision(), resp.hash_revision()), (8, 5, 6));
}

pub fn hash_kv_refuses_future_and_compacted_revisions(h: &Harness) {
    let store = h.open();
    let empty = store.hash_kv(0).unwrap();
    assert_eq!((empty.hash(), empty.compact_revision(), empty.hash_revision()), (1_084_519_789, -1, 1));
    assert_eq!(empty.header().revision(), 1);
    let err = store.hash_kv(2).unwrap_err();
    assert_eq!(err, Error::FutureRevision);
    assert_eq!(err.code(), Code::OutOfRange);
    store.put("k", "1", None).unwrap(); // 2
    store.put("k", "2", None).unwrap(); // 3
    store.compact(3, None).unwrap();
    assert_eq!(store.hash_kv(2).unwrap_err(), Error::Compacted);
    // etcd 3.4.23 and 3.5.1 refuse exactly the compacted revision too (scripts/conformance).
    assert_eq!(store.hash_kv(3).unwrap_err(), Error::Compacted);
    store.put("k", "3", None).unwrap(); // 4
    assert_eq!(store.hash_kv(4).unwrap().compact_revision(), 3);
    assert_eq!(store.hash_kv(4).unwrap().hash(), hash_at(&store, 0));
}

pub fn hash_kv_of_a_past_revision_ignores_later_writes(h: &Harness) {
    let store = h.open();
    store.put("a", "1", None).unwrap(); // 2
    store.put("b", "1", None).unwrap(); // 3
    let then = store.hash_kv(0).unwrap();
    store.put("a", "2", None).unwrap();
    store.delete("b", None).unwrap();
    let now = store.hash_kv(0).unwrap();
    assert_ne!(now.hash(), then.hash());
    assert_eq!(store.hash_kv(3).unwrap().hash(), then.hash());
    assert_eq!(now.hash_revision(), 5);
}

pub fn store_hash_follows_every_keyspace_and_survives_reopening(h: &Harness) {
    let store = h.open();
    let empty = store.hash().unwrap();
    store.put("k", "v", None).unwrap();
    let one_key = store.hash().unwrap();
    assert_ne!(one_key, empty);
    assert_eq!(store.hash().unwrap(), one_key);
    // A grant takes no revision, but changes stored data.
    store.lease_grant(600, None).unwrap();
    let with_lease = store.hash().unwrap();
    assert_ne!(with_lease, one_key);
    let store = h.reopen(store);
    assert_eq!(store.hash().unwrap(), with_lease);
}

pub fn a_restored_snapshot_keeps_revisions_history_compaction_and_leases(h: &Harness) {
    let store = h.open();
    let lease = store.lease_grant(600, None).unwrap().id();
    let leased = || Some(PutOptions::new().with_lease(lease));
    store.put("a", "1", None).unwrap(); // 2
    store.put("a", "2", leased()).unwrap(); // 3
    store.put("b", "1", None).unwrap(); // 4
    store.delete("b", None).unwrap(); // 5
    store.put("c", "1", leased()).unwrap(); // 6
    store.compact(3, physical()).unwrap();
    store.put("e", "1", None).unwrap(); // 7
    let bytes = snapshot_of(&store);

    let target = h.fresh();
    let copy = Store::restore_snapshot(target.options(), &mut bytes.as_slice()).unwrap();
    assert_eq!((copy.current_revision(), copy.compacted_revision()), (7, 3));
    assert_eq!(copy.hash_kv(0).unwrap(), store.hash_kv(0).unwrap());
    assert_eq!(copy.hash().unwrap(), store.hash().unwrap());
    assert_eq!(at(&copy, "a", 3).unwrap(), Some(b"2".to_vec()));
    assert_eq!(at(&copy, "b", 4).unwrap(), Some(b"1".to_vec()));
    assert_eq!(at(&copy, "b", 5).unwrap(), None);
    assert_eq!(at(&copy, "a", 2).unwrap_err(), Error::Compacted);
    assert_eq!(copy.compact(3, None).unwrap_err(), Error::Compacted);
    let a = kv(&copy, "a").unwrap();
    assert_eq!((a.create_revision, a.mod_revision, a.version, a.lease), (2, 3, 2, lease));

    let leases = copy.lease_leases().unwrap();
    assert_eq!(leases.leases().iter().map(|l| l.id()).collect::<Vec<_>>(), vec![lease]);
    let ttl = copy.lease_time_to_live(lease, Some(LeaseTimeToLiveOptions::new().with_keys())).unwrap();
    assert_eq!((ttl.granted_ttl(), ttl.keys()), (600, &[b"a".to_vec(), b"c".to_vec()][..]));

    // The copy goes on from where the snapshot stopped, and reopens like any store.
    assert_eq!(copy.put("d", "1", None).unwrap().header().revision(), 8);
    assert_eq!(copy.lease_revoke(lease).unwrap().header().revision(), 9);
    let copy = target.reopen(copy);
    assert_eq!(copy.current_revision(), 9);
    assert_eq!(keys(&copy.get("", Some(GetOptions::new().with_all_keys())).unwrap().kvs), ["d", "e"]);
    // The source is untouched.
    assert_eq!(store.current_revision(), 7);
    assert_eq!(kv(&store, "a").unwrap().lease, lease);
}

pub fn restoring_into_a_store_that_holds_data_is_refused_and_changes_nothing(h: &Harness) {
    let source = Store::open(Options::memory()).unwrap();
    source.put("theirs", "1", None).unwrap();
    let bytes = snapshot_of(&source);
    let store = h.open();
    store.put("mine", "1", None).unwrap();
    let before = store.hash().unwrap();
    drop(store);

    let err = Store::restore_snapshot(h.options(), &mut bytes.as_slice()).err().expect("a store is there");
    assert_eq!(err, Error::RestoreTargetNotEmpty);
    assert_eq!(err.code(), Code::FailedPrecondition);
    let store = h.open();
    assert_eq!(store.hash().unwrap(), before);
    assert_eq!(kv(&store, "theirs"), None);
}

pub fn a_truncated_or_damaged_snapshot_is_refused_and_loads_nothing(h: &Harness) {
    let source = Store::open(Options::memory()).unwrap();
    etcd_history(&source);
    source.lease_grant(600, None).unwrap();
    let bytes = snapshot_of(&source);
    let mut damaged = bytes.clone();
    damaged[bytes.len() / 2] ^= 0x01;
    let mut attempts: Vec<&[u8]> =
        [0, 5, 12, bytes.len() / 2, bytes.len() - 1].map(|cut| &bytes[..cut]).to_vec();
    attempts.push(&damaged);
    for attempt in attempts {
        let err =
            Store::restore_snapshot(h.options(), &mut &attempt[..]).err().expect("a bad snapshot fails");
        assert_eq!(err.code(), Code::DataLoss, "{} bytes: {err}", attempt.len());
    }
    // Every failure left the engine empty, so the whole snapshot still loads into it.
    let copy = Store::restore_snapshot(h.options(), &mut bytes.as_slice()).unwrap();
    assert_eq!(copy.hash_kv(0).unwrap(), source.hash_kv(0).unwrap());
    assert_eq!(copy.hash().unwrap(), source.hash().unwrap());
}

pub fn a_half_restored_engine_is_refused_by_open(h: &Harness) {
    // Over 4 MiB of values, so loading writes a batch before it reaches the damage.
    let source = Store::open(Options::memory()).unwrap();
    let value = vec![b'x'; 1 << 20];
    for i in 0..5 {
        source.put(format!("k{i}"), value.clone(), None).unwrap();
    }
    let bytes = snapshot_of(&source);
    let engine = h.engine();
    let err = snapshot_file::load(&*engine, &mut &bytes[..bytes.len() - 1], false).unwrap_err();
    assert_eq!(err.kind(), EngineErrorKind::Corruption);
    drop(engine);
    // What a crash in the middle of a restore leaves: records, but no schema version.
    let err = Store::open(h.options()).err().expect("a half-restored engine is not a store");
    assert_eq!(err.code(), Code::DataLoss);
    assert!(err.to_string().contains("no schema version"), "{err}");
}

pub fn a_snapshot_taken_during_writes_is_one_revision(h: &Harness) {
    const WRITES: u64 = 2000;
    let store = Arc::new(h.open());
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            for i in 0..WRITES {
                let v = i.to_string();
                let ops = [TxnOp::put("a", v.as_str(), None), TxnOp::put("b", v.as_str(), None)];
                store.txn(Txn::new().and_then(ops)).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    // Snapshots for as long as the writer writes (and one after).
    let mut last = false;
    while !last {
        last = done.load(Ordering::SeqCst);
        let bytes = snapshot_of(&store);
        let copy = Store::restore_snapshot(Options::memory(), &mut bytes.as_slice()).unwrap();
        let rev = copy.current_revision();
        if let (Some(a), Some(b)) = (kv(&copy, "a"), kv(&copy, "b")) {
            assert_eq!(a.value, b.value);
            assert_eq!(a.mod_revision, rev);
        }
        // The copy's history is the live store's up to the copy's revision.
        assert_eq!(copy.hash_kv(0).unwrap().hash(), hash_at(&store, rev));
    }
    writer.join().unwrap();
    assert_eq!(store.current_revision(), 1 + WRITES as i64);
}

pub fn defragment_changes_neither_data_nor_revision(h: &Harness) {
    let store = h.open();
    let value = vec![b'v'; 1024];
    for i in 0..300 {
        store.put(format!("key{:02}", i % 30), value.clone(), None).unwrap();
    }
    store.delete("key1", Some(DeleteOptions::new().with_prefix())).unwrap();
    store.compact(store.current_revision() - 1, physical()).unwrap();
    let everything = || store.get("", Some(GetOptions::new().with_all_keys())).unwrap();
    let before = (store.current_revision(), store.hash_kv(0).unwrap(), store.hash().unwrap(), everything());

    store.defragment().unwrap();
    let after = (store.current_revision(), store.hash_kv(0).unwrap(), store.hash().unwrap(), everything());
    assert_eq!(after, before);
    let size = store.db_size().unwrap();
    assert!(size.in_use <= size.total, "{size:?}");
    assert_eq!(store.put("new", "1", None).unwrap().header().revision(), before.0 + 1);
    let hash = store.hash_kv(0).unwrap();
    let store = h.reopen(store);
    assert_eq!(store.hash_kv(0).unwrap(), hash);
}

pub fn db_size_grows_with_data_and_in_use_is_at_most_total(h: &Harness) {
    let store = h.open_with(|o| o.sync(true));
    let empty = store.db_size().unwrap();
    assert!(empty.in_use <= empty.total, "{empty:?}");
    let value = vec![b'x'; 4096];
    for i in 0..64 {
        store.put(format!("key{i:03}"), value.clone(), None).unwrap();
    }
    let full = store.db_size().unwrap();
    assert!(full.total > empty.total, "{empty:?} -> {full:?}");
    assert!(full.in_use <= full.total, "{full:?}");
}
