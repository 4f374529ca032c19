//! An acknowledged write on a persistent engine, with sync on (the default), survives the
//! process dying right after the acknowledgement.
//!
//! Each test runs twice: as the parent it starts this same test binary again, filtered to
//! itself, with `CRASH_DIR` set; the child writes, prints a line per acknowledged write and
//! aborts without closing anything. The parent then reopens the data and checks that every
//! acknowledged write is there, under the revision it was acknowledged with.
#![cfg(any(feature = "rocksdb", feature = "sled"))]

use std::io::Write;
use std::path::Path;
use std::process::Command;

use etcdlite::{GetOptions, Options, Store, Txn, TxnOp};

const CRASH_DIR: &str = "ETCDLITE_CRASH_DIR";
const WRITES: usize = 60;

/// Runs `write(n)` for each `n` below [`WRITES`], printing `ack <n> <revision>` with the
/// revision it returns once it has returned, then aborts.
fn ack_each_until_killed(mut write: impl FnMut(usize) -> i64) -> ! {
    let mut out = std::io::stdout().lock();
    for n in 0..WRITES {
        let revision = write(n);
        writeln!(out, "ack {n} {revision}").unwrap();
        out.flush().unwrap();
    }
    std::process::abort();
}

/// Writes puts, deletes and txns, acknowledging each as it returns.
fn write_until_killed(store: Store) -> ! {
    ack_each_until_killed(|n| match n % 3 {
        0 => store.put(format!("k{n}"), format!("v{n}"), None).unwrap().header.revision,
        1 => {
            store
                .txn(Txn::new().and_then([
                    TxnOp::put(format!("k{n}"), format!("v{n}"), None),
                    TxnOp::put(format!("t{n}"), "pair", None),
                ]))
                .unwrap()
                .header
                .revision
        }
        _ => store.delete(format!("k{}", n - 2), None).unwrap().header.revision,
    })
}

/// What the acknowledged writes leave behind, checked key by key.
fn check_survivors(store: &Store, acked: &[(usize, i64)]) {
    let last = acked.last().expect("the child acknowledged writes").1;
    assert_eq!(store.current_revision(), last);
    for &(n, revision) in acked {
        let key = format!("k{n}");
        let at = store.get(key.as_str(), Some(GetOptions::new().with_revision(revision))).unwrap();
        match n % 3 {
            2 => {
                let deleted = format!("k{}", n - 2);
                let gone = store.get(deleted, Some(GetOptions::new().with_revision(revision))).unwrap();
                assert!(gone.kvs.is_empty(), "delete {n} was acknowledged at {revision}");
            }
            _ => {
                let kv =
                    at.kvs.first().unwrap_or_else(|| panic!("write {n} acknowledged at {revision} is lost"));
                assert_eq!((kv.value.clone(), kv.mod_revision), (format!("v{n}").into_bytes(), revision));
            }
        }
    }
}

/// Puts from several threads at once, so that writes share syncs (group commit), printing
/// `ack <n> <revision>` after each put returns; `n` numbers the puts across threads.
fn write_concurrently_until_killed(store: Store) -> ! {
    const THREADS: usize = 4;
    let out = std::sync::Mutex::new(std::io::stdout());
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (store, out) = (&store, &out);
            scope.spawn(move || {
                for n in (t..WRITES).step_by(THREADS) {
                    let revision = store.put(format!("k{n}"), format!("v{n}"), None).unwrap().header.revision;
                    let mut out = out.lock().unwrap();
                    writeln!(out, "ack {n} {revision}").unwrap();
                    out.flush().unwrap();
                }
            });
        }
    });
    std::process::abort();
}

/// Every acknowledged put of [`write_concurrently_until_killed`] is there, at its revision,
/// and the revisions are one per put.
fn check_concurrent_survivors(store: &Store, acked: &[(usize, i64)]) {
    let mut revisions: Vec<i64> = acked.iter().map(|&(_, revision)| revision).collect();
    revisions.sort_unstable();
    assert_eq!(revisions, (2..2 + WRITES as i64).collect::<Vec<_>>());
    assert_eq!(store.current_revision(), 1 + WRITES as i64);
    for &(n, revision) in acked {
        assert_put_survives(store, n, revision);
    }
}

/// Puts, then compacts at the put's revision, acknowledging each once the compaction
/// returns: a compaction's record is written with `sync` on, outside group commit, so this
/// checks that such writes are durable too (RocksDB's buffered WAL).
fn compact_until_killed(store: Store) -> ! {
    ack_each_until_killed(|n| {
        let revision = store.put(format!("k{n}"), format!("v{n}"), None).unwrap().header.revision;
        store.compact(revision, None).unwrap();
        revision
    })
}

/// Put `n`, acknowledged at `revision`, is the key's current value.
fn assert_put_survives(store: &Store, n: usize, revision: i64) {
    let kv = store.get(format!("k{n}"), None).unwrap().kvs.pop();
    let kv = kv.unwrap_or_else(|| panic!("put {n} acknowledged at {revision} is lost"));
    assert_eq!((kv.value, kv.mod_revision), (format!("v{n}").into_bytes(), revision));
}

/// The last acknowledged compaction holds, and every put is there.
fn check_compacted(store: &Store, acked: &[(usize, i64)]) {
    let last = acked.last().expect("the child acknowledged writes").1;
    assert_eq!(store.compacted_revision(), last);
    for &(n, revision) in acked {
        assert_put_survives(store, n, revision);
    }
}

fn crash_and_recover(test_name: &str, open: impl Fn(&Path) -> Options) {
    crash_and_recover_with(test_name, open, write_until_killed, check_survivors);
}

fn crash_and_recover_with(
    test_name: &str,
    open: impl Fn(&Path) -> Options,
    write: fn(Store) -> !,
    check: fn(&Store, &[(usize, i64)]),
) {
    if let Ok(dir) = std::env::var(CRASH_DIR) {
        write(Store::open(open(Path::new(&dir))).unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CRASH_DIR, dir.path())
        .output()
        .unwrap();
    assert!(!child.status.success(), "the child must die by abort");
    let acked: Vec<(usize, i64)> = String::from_utf8_lossy(&child.stdout)
        .lines()
        // libtest may print "test <name> ... " on the line of the first acknowledgement.
        .filter_map(|line| {
            // libtest prints "test <name> ... " on the line of the first acknowledgement.
            let mut fields = line.split("ack ").nth(1)?.split(' ');
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
        })
        .collect();
    assert_eq!(acked.len(), WRITES, "child output: {}", String::from_utf8_lossy(&child.stderr));
    let store = Store::open(open(dir.path())).unwrap();
    check(&store, &acked);
}

#[cfg(feature = "rocksdb")]
#[test]
fn acknowledged_writes_survive_a_crash_on_rocksdb() {
    crash_and_recover("acknowledged_writes_survive_a_crash_on_rocksdb", |dir| Options::rocksdb(dir));
}

#[cfg(feature = "sled")]
#[test]
fn acknowledged_writes_survive_a_crash_on_sled() {
    crash_and_recover("acknowledged_writes_survive_a_crash_on_sled", |dir| Options::sled(dir));
}

#[cfg(feature = "rocksdb")]
#[test]
fn concurrent_acknowledged_writes_survive_a_crash_on_rocksdb() {
    crash_and_recover_with(
        "concurrent_acknowledged_writes_survive_a_crash_on_rocksdb",
        |dir| Options::rocksdb(dir),
        write_concurrently_until_killed,
        check_concurrent_survivors,
    );
}

#[cfg(feature = "sled")]
#[test]
fn concurrent_acknowledged_writes_survive_a_crash_on_sled() {
    crash_and_recover_with(
        "concurrent_acknowledged_writes_survive_a_crash_on_sled",
        |dir| Options::sled(dir),
        write_concurrently_until_killed,
        check_concurrent_survivors,
    );
}

#[cfg(feature = "rocksdb")]
#[test]
fn acknowledged_compactions_survive_a_crash_on_rocksdb() {
    crash_and_recover_with(
        "acknowledged_compactions_survive_a_crash_on_rocksdb",
        |dir| Options::rocksdb(dir),
        compact_until_killed,
        check_compacted,
    );
}
