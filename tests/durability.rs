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

/// Writes puts, deletes and txns, printing `ack <n> <revision>` after each one returns.
fn write_until_killed(store: Store) -> ! {
    let mut out = std::io::stdout().lock();
    for n in 0..WRITES {
        let revision = match n % 3 {
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
        };
        writeln!(out, "ack {n} {revision}").unwrap();
        out.flush().unwrap();
    }
    std::process::abort();
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

fn crash_and_recover(test_name: &str, open: impl Fn(&Path) -> Options) {
    if let Ok(dir) = std::env::var(CRASH_DIR) {
        write_until_killed(Store::open(open(Path::new(&dir))).unwrap());
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
    check_survivors(&store, &acked);
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
