//! Input no caller should be able to turn into a panic, a hang or a corrupt store: each
//! test here backs a row of docs/bad-input.md.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use etcdlite::engine::{
    snapshot_file, Bounds, Direction, Engine, EngineRead, Keyspace, MemoryEngine, WriteBatch,
};
use etcdlite::mvcc::record;
use etcdlite::{Code, Error, ManualClock, Options, PutOptions, Store, Txn, TxnOp, WatchOptions};

#[test]
fn a_progress_interval_of_duration_max_means_never() {
    let clock = ManualClock::new();
    let options = Options::memory().clock(Arc::new(clock.clone())).watch_progress_interval(Duration::MAX);
    let store = Store::open(options).unwrap();
    let (watcher, stream) = store.watch_stream();
    watcher.watch("k", Some(WatchOptions::new().with_progress_notify())).unwrap();
    assert!(stream.recv().unwrap().created);
    clock.advance(Duration::from_secs(3600 * 24 * 365));
    store.put("k", "v", None).unwrap();
    let event = stream.recv().unwrap();
    assert_eq!(event.events.len(), 1, "only the put, no progress notification: {event:?}");
}

#[test]
fn a_manual_clock_advanced_by_duration_max_expires_every_lease_and_goes_on() {
    let clock = ManualClock::new();
    let store = Store::open(Options::memory().clock(Arc::new(clock.clone()))).unwrap();
    let lease = store.lease_grant(9_000_000_000, None).unwrap().id();
    store.put("k", "v", Some(PutOptions::new().with_lease(lease))).unwrap();
    clock.advance(Duration::MAX);
    clock.advance(Duration::MAX);
    assert_eq!(store.get("k", None).unwrap().count(), 0);
    // Leases granted at the end of time still work.
    let later = store.lease_grant(5, None).unwrap().id();
    assert_eq!(store.lease_time_to_live(later, None).unwrap().ttl(), 5);
}

/// A txn of `depth` levels, each holding the next as its one success op.
fn nested(depth: usize) -> Txn {
    (1..depth).fold(Txn::new().and_then([TxnOp::put("k", "v", None)]), |inner, _| {
        Txn::new().and_then([TxnOp::txn(inner)])
    })
}

#[test]
fn deep_txn_nesting_is_refused_even_with_a_large_op_budget() {
    let store = Store::open(Options::memory().max_txn_ops(usize::MAX)).unwrap();
    // (Deeper than a few thousand levels, dropping the txn itself would exhaust the stack.)
    assert_eq!(store.txn(nested(5_000)).unwrap_err(), Error::TooManyOps);
    assert_eq!(store.current_revision(), 1);
    assert!(store.txn(nested(128)).unwrap().succeeded);
    assert_eq!(store.current_revision(), 2);
}

/// A snapshot of a store with one put, whose record claims revision `main` (in its key and
/// as its value's mod revision).
fn snapshot_claiming_revision(main: i64) -> Vec<u8> {
    let store = Store::open(Options::memory()).unwrap();
    store.put("k", "v", None).unwrap();
    let mut bytes = Vec::new();
    store.snapshot(&mut bytes).unwrap();
    let engine = MemoryEngine::new();
    snapshot_file::load(&engine, &mut bytes.as_slice(), false).unwrap();
    let mut records = Vec::new();
    engine
        .scan(Keyspace::Kv, Bounds::all(), Direction::Forward, &mut |key, value| {
            records.push((key.to_vec(), value.to_vec()));
            ControlFlow::Continue(())
        })
        .unwrap();
    let mut batch = WriteBatch::new();
    for (key, value) in records {
        let mut crafted = key.clone();
        crafted[..8].copy_from_slice(&main.to_be_bytes());
        let mut kv = record::decode_value(&value).unwrap();
        kv.mod_revision = main;
        batch.delete(Keyspace::Kv, key);
        batch.put(Keyspace::Kv, crafted, record::encode_value(&kv));
    }
    engine.write(batch, false).unwrap();
    let mut crafted = Vec::new();
    snapshot_file::write(&*engine.snapshot().unwrap(), &mut crafted).unwrap();
    crafted
}

#[test]
fn a_snapshot_with_a_revision_at_the_end_of_the_range_is_refused() {
    for main in [i64::MAX, i64::MAX / 2 + 1, -1, 0] {
        let crafted = snapshot_claiming_revision(main);
        let error =
            Store::restore_snapshot(Options::memory(), &mut crafted.as_slice()).err().expect("refused");
        assert_eq!(error.code(), Code::DataLoss, "revision {main}: {error}");
    }
    let fine = snapshot_claiming_revision(7);
    let store = Store::restore_snapshot(Options::memory(), &mut fine.as_slice()).unwrap();
    assert_eq!(store.current_revision(), 7);
    assert_eq!(store.put("k", "w", None).unwrap().header.revision, 8);
}

/// Found by the snapshot_restore fuzz target: a snapshot whose framing and checksum are
/// right but whose records no store opens used to stay loaded in the engine after the
/// restore failed, so the engine could not take another restore.
#[test]
fn a_snapshot_no_store_opens_leaves_the_engine_empty() {
    let engine = Arc::new(MemoryEngine::new());
    let crafted = snapshot_claiming_revision(i64::MAX);
    let error = Store::restore_snapshot(Options::engine(engine.clone()), &mut crafted.as_slice())
        .err()
        .expect("refused");
    assert_eq!(error.code(), Code::DataLoss, "{error}");
    for keyspace in Keyspace::ALL {
        let mut left = 0;
        engine
            .scan(keyspace, Bounds::all(), Direction::Forward, &mut |_, _| {
                left += 1;
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(left, 0, "{keyspace:?} records left behind");
    }
    let fine = snapshot_claiming_revision(7);
    let store = Store::restore_snapshot(Options::engine(engine), &mut fine.as_slice()).unwrap();
    assert_eq!(store.current_revision(), 7);
}

/// Opens a store on a fresh directory, then a second one on the same directory.
#[cfg(any(feature = "rocksdb", feature = "sled"))]
fn a_second_store_is_refused(options: impl Fn(&std::path::Path) -> Options) {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(options(dir.path())).unwrap();
    first.put("k", "v", None).unwrap();
    let second = Store::open(options(dir.path())).err().expect("refused");
    assert!(second.to_string().contains("is in use by another store"), "{second}");
    assert_eq!(first.get("k", None).unwrap().count(), 1);
}

#[cfg(feature = "rocksdb")]
#[test]
fn a_second_store_on_one_rocksdb_directory_is_refused() {
    a_second_store_is_refused(|dir| Options::rocksdb(dir));
}

#[cfg(feature = "sled")]
#[test]
fn a_second_store_on_one_sled_directory_is_refused() {
    a_second_store_is_refused(|dir| Options::sled(dir));
}

/// The threads of this process.
#[cfg(target_os = "linux")]
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[cfg(target_os = "linux")]
#[test]
fn snapshots_nobody_reads_hold_no_thread_and_are_capped() {
    let store = Store::open(Options::memory().max_concurrent_snapshots(40)).unwrap();
    store.put("k", "v", None).unwrap();
    let before = threads();
    let mut unread: Vec<_> = (0..40).map(|_| store.snapshot_chunks()).collect();
    // Each is written to its file by a thread that then ends.
    let mut settled = false;
    for _ in 0..500 {
        if threads() <= before + 2 {
            settled = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(settled, "{} threads for 40 unread snapshots (from {before})", threads());
    let mut over = store.snapshot_chunks();
    assert_eq!(over.blocking_next().unwrap().unwrap_err(), Error::TooManyRequests);
    assert!(over.blocking_next().is_none());
    // The store goes on meanwhile, and a place freed is a snapshot served.
    store.put("k", "w", None).unwrap();
    let mut first = unread.swap_remove(0);
    let chunk = first.blocking_next().unwrap().unwrap();
    assert!(!chunk.blob.is_empty());
    drop(first);
    let mut again = store.snapshot_chunks();
    let mut file = Vec::new();
    while let Some(chunk) = again.blocking_next() {
        file.extend(chunk.unwrap().blob);
    }
    let copy = Store::restore_snapshot(Options::memory(), &mut file.as_slice()).err().is_none();
    assert!(copy, "the snapshot taken once a place was free restores");
}
