//! Many threads on one store: revisions stay gapless and strictly increasing, every read
//! sees one revision's state, and compaction never corrupts a concurrent read of the past.
//!
//! Every loop is bounded by an operation count; nothing here waits on time.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use etcdlite::{
    CompactionOptions, Compare, CompareOp, DeleteOptions, Error, GetOptions, GetResponse, Txn, TxnOp,
};

use crate::harness::Harness;

const WRITERS: usize = 4;
const READERS: usize = 3;
const WRITES_PER_WRITER: usize = 200;

fn prefix() -> Option<GetOptions> {
    Some(GetOptions::new().with_prefix())
}

fn number(bytes: &[u8]) -> i64 {
    std::str::from_utf8(bytes).expect("utf-8").parse().expect("a number")
}

pub fn concurrent_writers_get_gapless_strictly_increasing_revisions(h: &Harness) {
    let store = h.open();
    let per_writer: Vec<Vec<i64>> = std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = &store;
                s.spawn(move || {
                    let mut revisions = Vec::with_capacity(WRITES_PER_WRITER);
                    for i in 0..WRITES_PER_WRITER {
                        let key = format!("w{w}/{}", i % 7);
                        // Puts, txns and deletes of existing keys all take one revision each.
                        let revision = match i % 3 {
                            0 => store.put(key, i.to_string(), None).unwrap().header.revision,
                            1 => {
                                let txn = Txn::new()
                                    .when([Compare::version(key.as_str(), CompareOp::Greater, -1)])
                                    .and_then([
                                        TxnOp::put(key.as_str(), "a", None),
                                        TxnOp::put(format!("{key}/x"), "b", None),
                                    ]);
                                store.txn(txn).unwrap().header.revision
                            }
                            _ => {
                                revisions
                                    .push(store.put(key.as_str(), "doomed", None).unwrap().header.revision);
                                let resp = store.delete(key, None).unwrap();
                                assert_eq!(resp.deleted, 1);
                                resp.header.revision
                            }
                        };
                        revisions.push(revision);
                    }
                    revisions
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });

    let mut all = BTreeSet::new();
    for revisions in &per_writer {
        assert!(revisions.windows(2).all(|w| w[0] < w[1]), "one writer's revisions go up: {revisions:?}");
        for &r in revisions {
            assert!(all.insert(r), "revision {r} was handed out twice");
        }
    }
    let last = store.current_revision();
    assert_eq!(all.into_iter().collect::<Vec<_>>(), (2..=last).collect::<Vec<_>>(), "no gaps");
    // What was handed out is what the store kept.
    let store = h.reopen(store);
    assert_eq!(store.current_revision(), last);
}

/// Checks that one prefix read of `g/` saw a single revision: each writer's group of keys,
/// written together by one txn, carries one value and one mod revision, none above the
/// header's.
fn assert_groups_consistent(resp: &GetResponse) {
    let mut groups: std::collections::BTreeMap<&[u8], Vec<(i64, i64)>> = Default::default();
    for kv in &resp.kvs {
        assert!(kv.mod_revision <= resp.header.revision, "{kv:?} above {}", resp.header.revision);
        let group = &kv.key[..kv.key.iter().rposition(|&b| b == b'/').unwrap()];
        groups.entry(group).or_default().push((number(&kv.value), kv.mod_revision));
    }
    for (group, members) in groups {
        assert_eq!(members.len(), 5, "group {:?} is whole", String::from_utf8_lossy(group));
        assert!(members.windows(2).all(|m| m[0] == m[1]), "group {:?} torn: {members:?}", group);
    }
}

pub fn every_concurrent_read_sees_one_revision(h: &Harness) {
    let store = h.open();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = &store;
                s.spawn(move || {
                    for n in 0..WRITES_PER_WRITER {
                        let puts: Vec<_> =
                            (0..5).map(|k| TxnOp::put(format!("g/{w}/{k}"), n.to_string(), None)).collect();
                        store.txn(Txn::new().and_then(puts)).unwrap();
                    }
                })
            })
            .collect();
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (store, done) = (&store, &done);
                s.spawn(move || {
                    let mut last_seen = 0;
                    let mut reads = 0;
                    // Bounded: the writers finish after a fixed number of txns.
                    while !done.load(Ordering::Acquire) || reads == 0 {
                        let resp = store.get("g/", prefix()).unwrap();
                        assert!(resp.header.revision >= last_seen, "the store never goes back");
                        last_seen = resp.header.revision;
                        assert_groups_consistent(&resp);
                        // The same revision read again, as history, is the same state.
                        let again = store.get("g/", prefix().map(|o| o.with_revision(last_seen))).unwrap();
                        assert_eq!(again.kvs, resp.kvs);
                        // A txn's reads are one snapshot too.
                        let txn = store.txn(Txn::new().and_then([TxnOp::get("g/", prefix())])).unwrap();
                        match &txn.responses[0] {
                            etcdlite::TxnOpResponse::Get(inner) => assert_groups_consistent(inner),
                            other => panic!("a get answered {other:?}"),
                        }
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Release);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
    });
    assert_eq!(store.current_revision(), 1 + (WRITERS * WRITES_PER_WRITER) as i64);
}

pub fn concurrent_compare_and_swap_transfers_keep_the_total(h: &Harness) {
    const ACCOUNTS: i64 = 5;
    const TOTAL: i64 = 100 * ACCOUNTS;
    let store = h.open();
    for a in 0..ACCOUNTS {
        store.put(format!("acct/{a}"), "100", None).unwrap();
    }
    let total = |resp: &GetResponse| resp.kvs.iter().map(|kv| number(&kv.value)).sum::<i64>();
    let done = AtomicBool::new(false);
    let committed: usize = std::thread::scope(|s| {
        let movers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = &store;
                s.spawn(move || {
                    let mut committed = 0;
                    for i in 0..WRITES_PER_WRITER {
                        let from = format!("acct/{}", (w + i) as i64 % ACCOUNTS);
                        let to = format!("acct/{}", (w + 2 * i + 1) as i64 % ACCOUNTS);
                        if from == to {
                            continue;
                        }
                        let read = store.get("acct/", prefix()).unwrap();
                        let find = |k: &str| read.kvs.iter().find(|kv| kv.key == k.as_bytes()).unwrap();
                        let (f, t) = (find(&from), find(&to));
                        // Move one unit, if nobody changed either account since the read.
                        let txn = Txn::new()
                            .when([
                                Compare::mod_revision(from.as_str(), CompareOp::Equal, f.mod_revision),
                                Compare::mod_revision(to.as_str(), CompareOp::Equal, t.mod_revision),
                            ])
                            .and_then([
                                TxnOp::put(from.as_str(), (number(&f.value) - 1).to_string(), None),
                                TxnOp::put(to.as_str(), (number(&t.value) + 1).to_string(), None),
                            ]);
                        committed += store.txn(txn).unwrap().succeeded as usize;
                    }
                    committed
                })
            })
            .collect();
        let auditors: Vec<_> = (0..READERS)
            .map(|_| {
                let (store, done) = (&store, &done);
                s.spawn(move || {
                    let mut audits = 0;
                    while !done.load(Ordering::Acquire) || audits == 0 {
                        let resp = store.get("acct/", prefix()).unwrap();
                        assert_eq!(total(&resp), TOTAL, "at revision {}", resp.header.revision);
                        audits += 1;
                    }
                })
            })
            .collect();
        let committed = movers.into_iter().map(|m| m.join().unwrap()).sum();
        done.store(true, Ordering::Release);
        auditors.into_iter().for_each(|a| a.join().unwrap());
        committed
    });
    assert!(committed > 0);
    // Failed compares wrote nothing: the revision counts the fills and the committed moves.
    assert_eq!(store.current_revision(), 1 + ACCOUNTS + committed as i64);
    // Every past revision also balances.
    for rev in 1 + ACCOUNTS..=store.current_revision() {
        let resp = store.get("acct/", prefix().map(|o| o.with_revision(rev))).unwrap();
        assert_eq!(total(&resp), TOTAL, "history at revision {rev}");
    }
}

pub fn compaction_during_reads_of_the_past_never_serves_wrong_data(h: &Harness) {
    const PUTS: i64 = 600;
    const SLOTS: i64 = 10;
    let store = h.open();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        // One writer, so the nth put (from 0) lands at revision n + 2: put n writes
        // `slot/{n % SLOTS}` = n, and the value of any slot at any revision is known.
        let writer = s.spawn(|| {
            for n in 0..PUTS {
                let resp = store.put(format!("slot/{}", n % SLOTS), n.to_string(), None).unwrap();
                assert_eq!(resp.header.revision, n + 2);
                if n % 50 == 49 {
                    // Deletes matching nothing keep the revision arithmetic intact.
                    store.delete("none/", Some(DeleteOptions::new().with_prefix())).unwrap();
                }
            }
        });
        let compactor = s.spawn(|| {
            let mut compactions = 0;
            // At least once, even if the writer finishes before this thread gets going.
            while !done.load(Ordering::Acquire) || compactions == 0 {
                let target = store.current_revision() - 20;
                if target > store.compacted_revision() {
                    let physical = compactions % 2 == 0;
                    let options = physical.then(|| CompactionOptions::new().with_physical());
                    match store.compact(target, options) {
                        Ok(_) => compactions += 1,
                        // With one compactor, nothing else can have compacted past `target`.
                        Err(e) => panic!("compact({target}): {e}"),
                    }
                }
                std::thread::yield_now();
            }
            compactions
        });
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let (store, done) = (&store, &done);
                s.spawn(move || {
                    let (mut served, mut compacted) = (0u32, 0u32);
                    let mut i = r as i64;
                    while !done.load(Ordering::Acquire) || served == 0 {
                        let current = store.current_revision();
                        // Walk revisions from far behind the compactor to the present.
                        i += 7;
                        let rev = (current - i % 40).max(1);
                        let slot = i % SLOTS;
                        let options = Some(GetOptions::new().with_revision(rev));
                        match store.get(format!("slot/{slot}"), options) {
                            Ok(resp) => {
                                // The last put to `slot` at or before `rev`.
                                let last = (0..=rev - 2).rev().find(|n| n % SLOTS == slot);
                                let got = resp.kvs.first().map(|kv| (number(&kv.value), kv.mod_revision));
                                assert_eq!(got, last.map(|n| (n, n + 2)), "slot {slot} at revision {rev}");
                                served += 1;
                            }
                            Err(Error::Compacted) => compacted += 1,
                            Err(e) => panic!("slot {slot} at revision {rev}: {e}"),
                        }
                    }
                    (served, compacted)
                })
            })
            .collect();
        writer.join().unwrap();
        done.store(true, Ordering::Release);
        assert!(compactor.join().unwrap() > 0, "the compactor ran");
        for r in readers {
            let (served, _compacted) = r.join().unwrap();
            assert!(served > 0);
        }
    });
    let last = store.current_revision();
    assert_eq!(last, PUTS + 1);
    // After everything settles, the retained history is still exact.
    let store = h.reopen(store);
    for rev in store.compacted_revision()..=last {
        let resp = store.get("slot/", prefix().map(|o| o.with_revision(rev))).unwrap();
        // Keys `slot/0` to `slot/9` sort as their slot numbers do.
        let want: Vec<i64> =
            (0..SLOTS).filter_map(|s| (0..=rev - 2).rev().find(|n| n % SLOTS == s)).collect();
        let got: Vec<i64> = resp.kvs.iter().map(|kv| number(&kv.value)).collect();
        assert_eq!(got, want, "all slots at revision {rev}");
    }
}
