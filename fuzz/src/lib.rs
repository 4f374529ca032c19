//! What the fuzz targets share: a store opened for fuzzing, and the checks any store that
//! opened (from an engine, from a snapshot) must pass.

use std::sync::{Arc, LazyLock};

use arbitrary::Arbitrary;

use etcdlite::engine::{Bounds, Direction, Engine, Keyspace, MemoryEngine};
use etcdlite::{LeaseGrantOptions, ManualClock, Options, PutOptions, RangeRequest, Store};

/// A memory store for fuzzing: its leases expire only when a target moves the clock, and
/// bcrypt runs at its lowest cost, so an input that adds users stays fast.
pub fn memory_options() -> Options {
    Options::memory().clock(Arc::new(ManualClock::new())).with_bcrypt_cost(4)
}

/// The same over `engine`, unsynced.
pub fn engine_options(engine: Arc<MemoryEngine>) -> Options {
    Options::engine(engine).sync(false).clock(Arc::new(ManualClock::new())).with_bcrypt_cost(4)
}

/// Every key-value the store holds now, in key order.
pub fn everything(store: &Store) -> Vec<etcdlite::KeyValue> {
    let all = RangeRequest { key: vec![0], range_end: vec![0], ..Default::default() };
    let mut resp = store.range(&all).expect("a read of every key at the current revision succeeds");
    assert_eq!(resp.count(), resp.kvs().len() as i64, "count of an unlimited range");
    resp.take_kvs()
}

/// Every record of every keyspace of `engine`, in keyspace then key order.
pub fn records(engine: &dyn Engine) -> Vec<(Keyspace, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for keyspace in Keyspace::ALL {
        engine
            .scan(keyspace, Bounds::all(), Direction::Forward, &mut |k, v| {
                out.push((keyspace, k.to_vec(), v.to_vec()));
                std::ops::ControlFlow::Continue(())
            })
            .expect("a memory engine scan cannot fail");
    }
    out
}

/// What a store that opened must satisfy, whatever it was opened from:
///
/// * its revisions are in order (compacted <= current) and every key it holds was written
///   at or before the current revision, with a version of at least 1;
/// * HashKV answers, and answers the same twice;
/// * a snapshot of it restores to a store with the same revision, compacted revision,
///   keys and HashKV;
/// * it takes a write, which is its next revision and reads back.
pub fn check_store(store: &Store) {
    check_consistent(store);
    let revision = store.current_revision();
    let key = b"\xff\xfe etcdlite-fuzz check".to_vec();
    let put = store.put(key.clone(), "written", None).expect("a store that opened takes a write");
    assert_eq!(put.header.revision, revision + 1);
    let read = store.get(key, None).expect("read back");
    assert_eq!(read.kvs().len(), 1);
    assert_eq!(read.kvs()[0].value, b"written");
    assert_eq!(read.kvs()[0].mod_revision, revision + 1);
}

/// [`check_store`] without its write: for a store whose alarms or quota may refuse one.
pub fn check_consistent(store: &Store) {
    let revision = store.current_revision();
    let compacted = store.compacted_revision();
    assert!(revision >= 1, "current revision {revision}");
    assert!(compacted <= revision, "compacted {compacted} after current {revision}");
    let kvs = everything(store);
    for kv in &kvs {
        assert!(kv.version >= 1, "{kv:?}");
        assert!(kv.create_revision >= 1 && kv.create_revision <= kv.mod_revision, "{kv:?}");
        assert!(kv.mod_revision <= revision, "{kv:?} after revision {revision}");
    }
    let hash = store.hash_kv(0).expect("HashKV of a store that opened");
    assert_eq!(store.hash_kv(0).expect("HashKV again").hash, hash.hash, "HashKV changed with no write");

    let mut snapshot = Vec::new();
    store.snapshot(&mut snapshot).expect("a snapshot of a store that opened");
    let copy = Store::restore_snapshot(memory_options(), &mut snapshot.as_slice())
        .expect("a store's own snapshot restores");
    assert_eq!(copy.current_revision(), revision);
    assert_eq!(copy.compacted_revision(), compacted);
    assert_eq!(everything(&copy), kvs);
    assert_eq!(copy.hash_kv(0).expect("HashKV of the restored copy").hash, hash.hash);
    drop(copy);
}

/// The records of a store with a little of everything in it.
pub static BASE: LazyLock<Vec<(Keyspace, Vec<u8>, Vec<u8>)>> = LazyLock::new(|| {
    let engine = Arc::new(MemoryEngine::new());
    let store = Store::open(engine_options(engine.clone())).expect("memory store");
    store.put("a", "1", None).expect("put");
    store.put("b", "2", None).expect("put");
    store.put("a", "3", None).expect("put");
    store.delete("b", None).expect("delete");
    store.compact(3, None).expect("compact");
    let lease = store.lease_grant(60, Some(LeaseGrantOptions::new().with_id(9))).expect("lease").id();
    store.put("l", "leased", Some(PutOptions::new().with_lease(lease))).expect("put with lease");
    let root = etcdlite::auth::Caller::anonymous();
    store.auth().role_add(&root, "root").expect("role");
    store.auth().user_add(&root, "root", "pw", false).expect("user");
    store.auth().user_grant_role(&root, "root", "root").expect("grant");
    drop(store);
    records(&*engine)
});

#[derive(Arbitrary, Debug)]
pub enum Change {
    /// A record added (or replaced) in a keyspace.
    Put { keyspace: u8, key: Vec<u8>, value: Vec<u8> },
    /// The n-th record removed.
    Remove(u16),
    /// The n-th record's value replaced.
    Value(u16, Vec<u8>),
    /// One byte of the n-th record's key or value changed.
    Flip { record: u16, in_key: bool, at: u16, xor: u8 },
    /// The n-th record's value cut short.
    Truncate(u16, u16),
}

/// The records of [`BASE`] with `changes` made to them (the first 16).
pub fn changed_records(changes: &[Change]) -> Vec<(Keyspace, Vec<u8>, Vec<u8>)> {
    let mut records = BASE.clone();
    for change in changes.iter().take(16) {
        let n = records.len().max(1);
        match change {
            Change::Put { keyspace, key, value } => {
                let keyspace = Keyspace::ALL[*keyspace as usize % Keyspace::ALL.len()];
                records.push((keyspace, key.clone(), value.clone()));
            }
            Change::Remove(i) if !records.is_empty() => {
                records.remove(*i as usize % n);
            }
            Change::Value(i, value) if !records.is_empty() => records[*i as usize % n].2 = value.clone(),
            Change::Flip { record, in_key, at, xor } if !records.is_empty() => {
                let (_, key, value) = &mut records[*record as usize % n];
                let bytes = if *in_key { key } else { value };
                if !bytes.is_empty() {
                    let at = *at as usize % bytes.len();
                    bytes[at] ^= xor;
                }
            }
            Change::Truncate(i, len) if !records.is_empty() => {
                let value = &mut records[*i as usize % n].2;
                value.truncate(*len as usize % (value.len() + 1));
            }
            _ => {}
        }
    }
    records
}
