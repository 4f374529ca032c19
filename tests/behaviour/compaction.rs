//! Compaction: etcd-semantics.md section 1.4.

use std::sync::Arc;

use etcdlite::engine::FaultyEngine;
use etcdlite::{Code, CompactionOptions, DeleteOptions, Error, GetOptions, Options, Store, Txn, TxnOp};

use crate::harness::{keys, kv, record_count, Harness};

fn physical() -> Option<CompactionOptions> {
    Some(CompactionOptions::new().with_physical())
}

fn at(store: &Store, key: &str, rev: i64) -> Result<Option<Vec<u8>>, Error> {
    let resp = store.get(key, Some(GetOptions::new().with_revision(rev)))?;
    Ok(resp.kvs.into_iter().next().map(|kv| kv.value))
}

pub fn compaction_refuses_future_and_compacted_revisions(h: &Harness) {
    let store = h.open();
    // A fresh store (revision 1, never compacted) accepts 0 and then 1.
    store.compact(0, None).unwrap();
    assert_eq!(store.compact(0, None).unwrap_err(), Error::Compacted);
    store.compact(1, None).unwrap();
    let err = store.compact(1, None).unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: mvcc: required revision has been compacted");
    assert_eq!(err.code(), Code::OutOfRange);
    assert_eq!(store.compact(2, None).unwrap_err(), Error::FutureRevision);
    store.put("k", "v", None).unwrap();
    // The current revision itself may be compacted.
    let resp = store.compact(2, physical()).unwrap();
    assert_eq!(resp.header.revision, 2);
    assert_eq!(store.compacted_revision(), 2);
    assert_eq!(store.current_revision(), 2);
}

pub fn reads_below_the_compacted_revision_fail(h: &Harness) {
    let store = h.open();
    store.put("k", "v1", None).unwrap();
    store.put("k", "v2", None).unwrap();
    store.put("j", "v", None).unwrap();
    store.compact(3, None).unwrap();
    assert_eq!(at(&store, "k", 2).unwrap_err(), Error::Compacted);
    assert_eq!(at(&store, "k", 3).unwrap(), Some(b"v2".to_vec()));
    assert_eq!(at(&store, "j", 3).unwrap(), None);
    assert_eq!(at(&store, "j", 4).unwrap(), Some(b"v".to_vec()));
    assert_eq!(store.compact(2, None).unwrap_err(), Error::Compacted);
    assert_eq!(store.compact(5, None).unwrap_err(), Error::FutureRevision);
}

pub fn compaction_keeps_the_latest_revision_of_each_key(h: &Harness) {
    let store = h.open();
    store.put("a", "a1", None).unwrap(); // 2
    store.put("b", "b1", None).unwrap(); // 3
    store.put("a", "a2", None).unwrap(); // 4
    store.delete("b", None).unwrap(); // 5
    store.put("c", "c1", None).unwrap(); // 6
    store.compact(5, physical()).unwrap();
    let all =
        |rev| keys(&store.get("", Some(GetOptions::new().with_all_keys().with_revision(rev))).unwrap().kvs);
    assert_eq!(all(5), ["a"]);
    assert_eq!(all(6), ["a", "c"]);
    assert_eq!(at(&store, "a", 5).unwrap(), Some(b"a2".to_vec()));
    // a@2 and b@3 are gone; a@4, c@6 and the tombstone of b at exactly 5 remain (etcd
    // 3.5.16+ keeps a tombstone at the compacted revision, so a watch from it sees the delete).
    assert_eq!(record_count(&store), 3);
}

pub fn physical_compaction_removes_superseded_records_and_old_tombstones(h: &Harness) {
    let store = h.open();
    store.put("a", "1", None).unwrap(); // 2
    store.put("a", "2", None).unwrap(); // 3
    store.delete("a", None).unwrap(); // 4
    store.put("b", "1", None).unwrap(); // 5
    store.put("b", "2", None).unwrap(); // 6
    assert_eq!(record_count(&store), 5);
    store.compact(6, physical()).unwrap();
    assert_eq!(record_count(&store), 1);
    assert_eq!(kv(&store, "b").unwrap().value, b"2");
    assert_eq!(kv(&store, "a"), None);
}

pub fn compaction_keeps_version_and_create_revision(h: &Harness) {
    let store = h.open();
    for v in ["1", "2", "3"] {
        store.put("k", v, None).unwrap();
    }
    store.compact(4, physical()).unwrap();
    let kv1 = kv(&store, "k").unwrap();
    assert_eq!((kv1.create_revision, kv1.version), (2, 3));
    store.put("k", "4", None).unwrap();
    let kv2 = kv(&store, "k").unwrap();
    assert_eq!((kv2.create_revision, kv2.version, kv2.mod_revision), (2, 4, 5));
}

pub fn a_compaction_interrupted_by_a_failure_finishes_on_reopen(h: &Harness) {
    let faulty = Arc::new(FaultyEngine::new(h.engine()));
    let options = Options::engine(faulty.clone()).sync(false).compaction_batch_limit(2);
    let store = Store::open(options).unwrap();
    for i in 0..10 {
        store.put("k", format!("v{i}"), None).unwrap(); // 2..=11
    }
    store.put("j", "v", None).unwrap(); // 12

    // The scheduled-compaction mark and one batch get through; the next batch fails.
    faulty.fail_writes_after(2);
    let err = store.compact(11, physical()).unwrap_err();
    assert!(matches!(err, Error::Engine(_)), "{err:?}");
    // The compaction took effect logically even though its records are not all gone.
    assert_eq!(store.compacted_revision(), 11);
    assert_eq!(at(&store, "k", 10).unwrap_err(), Error::Compacted);
    assert!(record_count(&store) > 2);
    drop(store);
    drop(faulty);

    let store = h.open();
    assert_eq!((store.compacted_revision(), store.current_revision()), (11, 12));
    assert_eq!(record_count(&store), 2);
    assert_eq!(kv(&store, "k").unwrap().value, b"v9");
    assert_eq!(at(&store, "k", 11).unwrap(), Some(b"v9".to_vec()));
    assert_eq!(store.compact(11, None).unwrap_err(), Error::Compacted);
}

pub fn compaction_at_a_txn_that_deleted_and_recreated_a_key_keeps_the_new_key(h: &Harness) {
    let store = h.open();
    store.put("ab", "old", None).unwrap(); // 2
                                           // etcd accepts a from-key delete and a put of a key inside it in one txn: at revision 3
                                           // the delete ends the key's generation (3.0) and the put starts the next (3.1).
    let txn = Txn::new().and_then([
        TxnOp::delete("a", Some(DeleteOptions::new().with_from_key())),
        TxnOp::put("ab", "new", None),
    ]);
    assert_eq!(store.txn(txn).unwrap().header.revision, 3);
    store.compact(3, physical()).unwrap();
    assert_eq!(at(&store, "ab", 3).unwrap(), Some(b"new".to_vec()));
    let store = h.reopen(store);
    assert_eq!(at(&store, "ab", 3).unwrap(), Some(b"new".to_vec()));
    let found = kv(&store, "ab").unwrap();
    assert_eq!((found.create_revision, found.mod_revision, found.version), (3, 3, 1));
    // The tombstone at 3.0 stays with the put at 3.1 until a later compaction.
    assert_eq!(record_count(&store), 2);
    store.put("x", "1", None).unwrap(); // 4
    store.compact(4, physical()).unwrap();
    assert_eq!(record_count(&store), 2);
    assert_eq!(kv(&store, "ab").unwrap().value, b"new");
}
