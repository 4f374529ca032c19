//! Arbitrary txns (compares of every target over keys and ranges, nested txns, puts,
//! deletes and ranges with their options) applied in turn to a memory store and to a small
//! model of its keys:
//!
//! * a txn that fails leaves the store as it was: same revision, same HashKV, same keys;
//! * one that succeeds moves the revision by one if it changed a key, else not at all, and
//!   its branch (the one the store reports it took), applied to the model, gives exactly
//!   the keys the store then holds (value, lease, create and mod revision, version).
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use etcdlite::{
    Compare, CompareOp, CompareTarget, DeleteRangeRequest, LeaseGrantOptions, PutRequest, RangeRequest,
    SortOrder, SortTarget, Store, TargetValue, Txn, TxnOp, TxnOpResponse,
};
use etcdlite_fuzz::{check_store, everything, memory_options};
use libfuzzer_sys::fuzz_target;

/// The only lease that exists.
const LEASE: i64 = 7;

/// Keys from a small alphabet, so that compares, ranges and writes meet.
#[derive(Arbitrary, Debug, Clone)]
struct Key(Vec<u8>);

impl Key {
    fn bytes(&self) -> Vec<u8> {
        self.0.iter().take(3).map(|b| if *b < 4 { *b } else { b'a' + b % 4 }).collect()
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum End {
    Single,
    AllFrom,
    To(Key),
}

impl End {
    fn bytes(&self) -> Vec<u8> {
        match self {
            End::Single => Vec::new(),
            End::AllFrom => vec![0],
            End::To(key) => key.bytes(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Target {
    Version(i64),
    Create(i64),
    Mod(i64),
    Value(Key),
    Lease(i64),
    Missing(u8),
}

#[derive(Arbitrary, Debug)]
struct Cmp {
    key: Key,
    end: End,
    op: u8,
    target: Target,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Get { key: Key, end: End, limit: i64, revision: i64, sort: (u8, u8), flags: u8, filters: [i64; 4] },
    Put { key: Key, value: Key, lease: bool, flags: u8 },
    Delete { key: Key, end: End, prev: bool },
    Txn(Box<FuzzTxn>),
}

#[derive(Arbitrary, Debug)]
struct FuzzTxn {
    compare: Vec<Cmp>,
    success: Vec<Op>,
    failure: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    Txn(FuzzTxn),
    Compact(i64),
}

/// A small count of revisions, so that compares and reads hit real revisions often.
fn small(n: i64) -> i64 {
    if n.unsigned_abs() < 1 << 20 {
        n % 16
    } else {
        n
    }
}

fn compare(c: &Cmp) -> Compare {
    let ops = [CompareOp::Equal, CompareOp::Greater, CompareOp::Less, CompareOp::NotEqual];
    let (target, value) = match &c.target {
        Target::Version(v) => (CompareTarget::Version, Some(TargetValue::Version(small(*v)))),
        Target::Create(v) => (CompareTarget::Create, Some(TargetValue::CreateRevision(small(*v)))),
        Target::Mod(v) => (CompareTarget::Mod, Some(TargetValue::ModRevision(small(*v)))),
        Target::Value(v) => (CompareTarget::Value, Some(TargetValue::Value(v.bytes()))),
        Target::Lease(v) => (CompareTarget::Lease, Some(TargetValue::Lease(small(*v)))),
        // A target with no value, or with the value of another target.
        Target::Missing(t) => {
            let targets = [
                CompareTarget::Version,
                CompareTarget::Create,
                CompareTarget::Mod,
                CompareTarget::Value,
                CompareTarget::Lease,
            ];
            let value = (t & 0x80 != 0).then_some(TargetValue::Version(1));
            (targets[*t as usize % 5], value)
        }
    };
    Compare {
        result: ops[c.op as usize % 4],
        target,
        key: c.key.bytes(),
        target_value: value,
        range_end: c.end.bytes(),
    }
}

fn op(op: &Op) -> TxnOp {
    match op {
        Op::Get { key, end, limit, revision, sort, flags, filters } => {
            let targets = [
                SortTarget::Key,
                SortTarget::Version,
                SortTarget::Create,
                SortTarget::Mod,
                SortTarget::Value,
            ];
            let orders = [SortOrder::None, SortOrder::Ascend, SortOrder::Descend];
            TxnOp::Get(RangeRequest {
                key: key.bytes(),
                range_end: end.bytes(),
                limit: small(*limit),
                revision: small(*revision),
                sort_order: orders[sort.0 as usize % 3],
                sort_target: targets[sort.1 as usize % 5],
                serializable: flags & 1 != 0,
                keys_only: flags & 2 != 0,
                count_only: flags & 4 != 0,
                min_mod_revision: small(filters[0]),
                max_mod_revision: small(filters[1]),
                min_create_revision: small(filters[2]),
                max_create_revision: small(filters[3]),
            })
        }
        Op::Put { key, value, lease, flags } => TxnOp::Put(PutRequest {
            key: key.bytes(),
            value: value.bytes(),
            lease: if *lease { LEASE } else { 0 },
            prev_kv: flags & 1 != 0,
            ignore_value: flags & 2 != 0,
            ignore_lease: flags & 4 != 0,
        }),
        Op::Delete { key, end, prev } => {
            TxnOp::Delete(DeleteRangeRequest { key: key.bytes(), range_end: end.bytes(), prev_kv: *prev })
        }
        Op::Txn(t) => TxnOp::Txn(txn(t)),
    }
}

fn txn(t: &FuzzTxn) -> Txn {
    Txn {
        compare: t.compare.iter().map(compare).collect(),
        success: t.success.iter().map(op).collect(),
        failure: t.failure.iter().map(op).collect(),
    }
}

/// A key as the model holds it.
#[derive(Clone, Debug, PartialEq)]
struct Entry {
    value: Vec<u8>,
    lease: i64,
    create: i64,
    modified: i64,
    version: i64,
}

type Model = BTreeMap<Vec<u8>, Entry>;

/// Whether `k` falls in etcd's range `[key, end)` (`end` empty: `key` alone; `"\0"`: every
/// key from `key` on).
fn in_range(k: &[u8], key: &[u8], end: &[u8]) -> bool {
    match end {
        [] => k == key,
        [0] => k >= key,
        _ => k >= key && k < end,
    }
}

/// Applies the ops of the branch `responses` says were run; returns whether any key changed.
fn apply(model: &mut Model, ops: &[TxnOp], responses: &[TxnOpResponse], revision: i64) -> bool {
    assert_eq!(ops.len(), responses.len(), "one response per op of the branch taken");
    let mut changed = false;
    for (op, response) in ops.iter().zip(responses) {
        match (op, response) {
            (TxnOp::Get(_), TxnOpResponse::Get(_)) => {}
            (TxnOp::Put(put), TxnOpResponse::Put(_)) => {
                let old = model.get(&put.key).cloned();
                let entry = Entry {
                    value: match (&old, put.ignore_value) {
                        (Some(old), true) => old.value.clone(),
                        _ => put.value.clone(),
                    },
                    lease: match (&old, put.ignore_lease) {
                        (Some(old), true) => old.lease,
                        _ => put.lease,
                    },
                    create: old.as_ref().map_or(revision, |o| o.create),
                    modified: revision,
                    version: old.as_ref().map_or(1, |o| o.version + 1),
                };
                model.insert(put.key.clone(), entry);
                changed = true;
            }
            (TxnOp::Delete(del), TxnOpResponse::Delete(resp)) => {
                let gone: Vec<_> =
                    model.keys().filter(|k| in_range(k, &del.key, &del.range_end)).cloned().collect();
                assert_eq!(resp.deleted(), gone.len() as i64, "keys deleted by {del:?}");
                for key in gone {
                    model.remove(&key);
                    changed = true;
                }
            }
            (TxnOp::Txn(inner), TxnOpResponse::Txn(resp)) => {
                let branch = if resp.succeeded() { &inner.success } else { &inner.failure };
                changed |= apply(model, branch, resp.op_responses(), revision);
            }
            (op, response) => panic!("response {response:?} to {op:?}"),
        }
    }
    changed
}

fn state(store: &Store) -> Model {
    everything(store)
        .into_iter()
        .map(|kv| {
            let entry = Entry {
                value: kv.value,
                lease: kv.lease,
                create: kv.create_revision,
                modified: kv.mod_revision,
                version: kv.version,
            };
            (kv.key, entry)
        })
        .collect()
}

fuzz_target!(|steps: Vec<Step>| {
    let store = Store::open(memory_options().max_txn_ops(16).max_request_bytes(4096)).expect("memory store");
    store.lease_grant(1000, Some(LeaseGrantOptions::new().with_id(LEASE))).expect("lease");
    let mut model = Model::new();
    for step in steps.iter().take(32) {
        let before = store.current_revision();
        let hash_before = store.hash_kv(0).expect("HashKV").hash;
        let txn = match step {
            Step::Txn(t) => txn(t),
            Step::Compact(revision) => {
                let _ = store.compact(small(*revision), None);
                assert_eq!(store.current_revision(), before);
                continue;
            }
        };
        match store.txn(txn.clone()) {
            Err(_) => {
                assert_eq!(store.current_revision(), before, "a failed txn moved the revision");
                assert_eq!(
                    store.hash_kv(0).expect("HashKV").hash,
                    hash_before,
                    "a failed txn changed HashKV"
                );
                assert_eq!(state(&store), model, "a failed txn changed the keys");
            }
            Ok(resp) => {
                let branch = if resp.succeeded() { &txn.success } else { &txn.failure };
                let changed = apply(&mut model, branch, resp.op_responses(), before + 1);
                let after = store.current_revision();
                assert_eq!(after, before + i64::from(changed), "revision after {txn:?}");
                assert_eq!(resp.header().revision(), after);
                assert_eq!(state(&store), model, "keys after {txn:?}");
            }
        }
    }
    check_store(&store);
});
