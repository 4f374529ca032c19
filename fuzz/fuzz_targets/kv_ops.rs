//! Arbitrary sequences of KV requests on the memory engine: no panic, and the revision only
//! moves forward, by one per successful write that changed something.
#![no_main]

use arbitrary::Arbitrary;
use etcdlite::{
    CompactionOptions, Compare, CompareOp, DeleteOptions, GetOptions, Options, PutOptions, SortOrder,
    SortTarget, Store, Txn, TxnOp,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: i64,
        prev: bool,
        ignore_value: bool,
        ignore_lease: bool,
    },
    Get {
        key: Vec<u8>,
        end: Vec<u8>,
        revision: i64,
        limit: i64,
        sort: (u8, u8),
        keys_only: bool,
        count_only: bool,
    },
    Delete {
        key: Vec<u8>,
        end: Vec<u8>,
        prev: bool,
    },
    Txn {
        compare_key: Vec<u8>,
        version: i64,
        then: Vec<(Vec<u8>, Vec<u8>)>,
        otherwise: Vec<Vec<u8>>,
    },
    Compact {
        revision: i64,
        physical: bool,
    },
}

fn sort(byte: u8) -> (SortTarget, SortOrder) {
    let targets =
        [SortTarget::Key, SortTarget::Version, SortTarget::Create, SortTarget::Mod, SortTarget::Value];
    let orders = [SortOrder::None, SortOrder::Ascend, SortOrder::Descend];
    (targets[byte as usize % 5], orders[(byte / 5) as usize % 3])
}

fuzz_target!(|ops: Vec<Op>| {
    let store = Store::open(Options::memory().max_request_bytes(4096)).unwrap();
    for op in ops {
        let before = store.current_revision();
        let wrote = match op {
            Op::Put { key, value, lease, prev, ignore_value, ignore_lease } => {
                let mut options = PutOptions::new().with_lease(lease);
                if prev {
                    options = options.with_prev_key();
                }
                if ignore_value {
                    options = options.with_ignore_value();
                }
                if ignore_lease {
                    options = options.with_ignore_lease();
                }
                store.put(key, value, Some(options)).map(|r| r.header.revision).ok()
            }
            Op::Get { key, end, revision, limit, sort: (target, order), keys_only, count_only } => {
                let (target, _) = self::sort(target);
                let (_, order) = self::sort(order);
                let mut options = GetOptions::new()
                    .with_range(end)
                    .with_revision(revision)
                    .with_limit(limit)
                    .with_sort(target, order);
                if keys_only {
                    options = options.with_keys_only();
                }
                if count_only {
                    options = options.with_count_only();
                }
                if let Ok(resp) = store.get(key, Some(options)) {
                    assert!(resp.count >= resp.kvs.len() as i64);
                }
                None
            }
            Op::Delete { key, end, prev } => {
                let mut options = DeleteOptions::new().with_range(end);
                if prev {
                    options = options.with_prev_key();
                }
                store.delete(key, Some(options)).map(|r| r.header.revision).ok()
            }
            Op::Txn { compare_key, version, then, otherwise } => {
                let txn = Txn::new()
                    .when([Compare::version(compare_key, CompareOp::Equal, version)])
                    .and_then(then.into_iter().map(|(k, v)| TxnOp::put(k, v, None)).collect::<Vec<_>>())
                    .or_else(otherwise.into_iter().map(|k| TxnOp::delete(k, None)).collect::<Vec<_>>());
                store.txn(txn).map(|r| r.header.revision).ok()
            }
            Op::Compact { revision, physical } => {
                let options = physical.then(|| CompactionOptions::new().with_physical());
                let _ = store.compact(revision, options);
                None
            }
        };
        let after = store.current_revision();
        match wrote {
            Some(revision) => {
                assert_eq!(revision, after);
                assert!(after == before || after == before + 1);
            }
            None => assert_eq!(after, before),
        }
    }
});
