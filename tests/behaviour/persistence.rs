//! Reopening, and writes that fail in the engine.

use std::sync::Arc;

use etcdlite::engine::{FaultyEngine, Keyspace, WriteBatch};
use etcdlite::mvcc::{record, Revision};
use etcdlite::{Code, Error, GetOptions, Options, Store, Txn, TxnOp};

use crate::harness::{kv, Harness};

pub fn reopening_gives_back_keys_history_and_revisions(h: &Harness) {
    let store = h.open();
    store.put("a", "1", None).unwrap(); // 2
    store.put("a", "2", None).unwrap(); // 3
    store.put("b", "1", None).unwrap(); // 4
    store.delete("b", None).unwrap(); // 5
    store.txn(Txn::new().and_then([TxnOp::put("c", "1", None), TxnOp::put("d", "1", None)])).unwrap(); // 6
    store.compact(3, None).unwrap();
    let store = h.reopen(store);

    assert_eq!((store.current_revision(), store.compacted_revision()), (6, 3));
    let a = kv(&store, "a").unwrap();
    assert_eq!((a.value.as_slice(), a.create_revision, a.version), (&b"2"[..], 2, 2));
    let at = |key: &str, rev| store.get(key, Some(GetOptions::new().with_revision(rev)));
    assert_eq!(at("b", 4).unwrap().kvs[0].value, b"1");
    assert!(at("b", 5).unwrap().kvs.is_empty());
    assert_eq!(at("a", 2).unwrap_err(), Error::Compacted);
    assert_eq!(kv(&store, "d").unwrap().mod_revision, 6);
    // Writing goes on from where it stopped.
    assert_eq!(store.put("a", "3", None).unwrap().header.revision, 7);
    assert_eq!(kv(&store, "a").unwrap().version, 3);
    assert_eq!(store.compact(3, None).unwrap_err(), Error::Compacted);
}

pub fn a_failed_write_changes_nothing(h: &Harness) {
    let faulty = Arc::new(FaultyEngine::new(h.engine()));
    let store = Store::open(Options::engine(faulty.clone()).sync(false)).unwrap();
    store.put("a", "1", None).unwrap(); // 2
    faulty.fail_writes_after(0);
    let err = store.put("a", "2", None).unwrap_err();
    assert!(matches!(err, Error::Engine(_)));
    assert_eq!(err.code(), Code::Internal);
    assert!(store.put("new", "x", None).is_err());
    assert!(store.delete("a", None).is_err());
    let txn = Txn::new().and_then([
        TxnOp::put("a", "3", None),
        TxnOp::delete("a", None),
        TxnOp::put("t", "1", None),
    ]);
    assert!(store.txn(txn).is_err());
    assert!(store.compact(2, None).is_err());

    assert_eq!((store.current_revision(), store.compacted_revision()), (2, -1));
    let a = kv(&store, "a").unwrap();
    assert_eq!((a.value.as_slice(), a.version, a.mod_revision), (&b"1"[..], 1, 2));
    assert_eq!(kv(&store, "new"), None);

    faulty.heal();
    assert_eq!(store.put("a", "2", None).unwrap().header.revision, 3);
    assert_eq!(kv(&store, "a").unwrap().version, 2);
    store.put("new", "x", None).unwrap();
    assert_eq!(kv(&store, "new").unwrap().version, 1);
    drop(store);
    drop(faulty);

    let store = h.open();
    assert_eq!(store.current_revision(), 4);
    assert_eq!(kv(&store, "a").unwrap().value, b"2");
}

pub fn a_corrupt_record_is_reported_not_served(h: &Harness) {
    let store = h.open();
    store.put("a", "1", None).unwrap();
    drop(store);
    let engine = h.engine();
    let mut batch = WriteBatch::new();
    batch.put(Keyspace::Kv, record::encode_key(Revision::new(3, 0), false), vec![0xff, 0xff]);
    engine.write(batch, false).unwrap();
    drop(engine);
    let err = Store::open(h.options()).err().expect("a corrupt record fails the open");
    assert_eq!(err.code(), Code::DataLoss);
}

pub fn another_schema_version_is_refused(h: &Harness) {
    drop(h.open());
    let engine = h.engine();
    let mut batch = WriteBatch::new();
    batch.put(Keyspace::Meta, record::SCHEMA_VERSION_KEY.to_vec(), record::encode_i64(2));
    engine.write(batch, false).unwrap();
    drop(engine);
    let err = Store::open(h.options()).err().expect("schema version 2 is not readable");
    assert_eq!(err.code(), Code::DataLoss);
    assert!(err.to_string().contains("unsupported schema version 2"), "{err}");
}

pub fn the_store_is_send_and_sync(h: &Harness) {
    fn shareable<T: Send + Sync + 'static>(value: T) -> Arc<T> {
        Arc::new(value)
    }
    let store = shareable(h.open());
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || store.put("k", "v", None).unwrap().header.revision)
    };
    assert_eq!(writer.join().unwrap(), 2);
    assert_eq!(kv(&store, "k").unwrap().value, b"v");
}
