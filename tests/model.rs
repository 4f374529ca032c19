//! Model test: random sequences of put, delete, txn, compact and range requests, each
//! response (or error) checked against a small reference model of etcd's KV semantics
//! (etcd-semantics.md sections 1.2, 1.3, 1.4 and 2).
//!
//! The model keeps the whole keyspace at every revision (`states[r]`), the compacted
//! revision and, implicitly, the current one (`states.len() - 1`). It shares no code with
//! the crate: requests are built through the public builders, and the model reads only
//! their fields.

use std::collections::{BTreeMap, HashMap, HashSet};

use etcdlite::{
    CompactionOptions, Compare, CompareOp, CompareTarget, DeleteOptions, DeleteRangeRequest, DeleteResponse,
    Error, GetOptions, GetResponse, KeyValue, Options, PutOptions, PutRequest, PutResponse, RangeRequest,
    ResponseHeader, SortOrder, SortTarget, Store, TargetValue, Txn, TxnOp, TxnOpResponse,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;

/// A small txn op limit, so that too-long txns are cheap to generate.
const MAX_TXN_OPS: usize = 4;

/// Single-byte keys, a key that is a prefix of another, a multi-byte UTF-8 key and an
/// all-0xff key (whose prefix end is `"\0"`, i.e. "every key from here on").
const KEYS: &[&[u8]] = &[b"a", b"ab", b"b", b"c", b"d", b"e", b"f", b"\xc3\xa9", b"\xff\xff"];
const VALUES: &[&[u8]] = &[b"", b"0", b"1", b"10", b"2", b"z"];

/// The keyspace at one revision.
type State = BTreeMap<Vec<u8>, KeyValue>;

/// Generated key and value bytes, shown as `b"..."` in counterexamples.
#[derive(Clone, PartialEq, Eq)]
struct Bytes(Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

// ---------------------------------------------------------------------------------------
// Generated operations. Revisions are picked relative to the state they run against.
// ---------------------------------------------------------------------------------------

/// Which keys a get, delete or compare covers, before the key is known.
#[derive(Clone, Debug)]
enum Span {
    Key,
    Range(Bytes),
    Prefix,
    FromKey,
    All,
}

/// A revision chosen relative to the model when the op runs.
#[derive(Clone, Copy, Debug)]
enum Rev {
    Latest,
    Absolute(i64),
    FromCurrent(i64),
    FromCompacted(i64),
}

/// An integer a compare tests against.
#[derive(Clone, Copy, Debug)]
enum CompareInt {
    Fixed(i64),
    FromCurrent(i64),
    /// The compared key's own field (0 when absent), plus an offset.
    FieldOfKey(i64),
}

/// Which member of etcd's `target_union` a compare sets. etcd reads only the member that
/// matches the target; any other member, or none, counts as 0 or empty bytes.
#[derive(Clone, Copy, Debug)]
enum Union {
    Matching,
    Unset,
    OtherMember,
}

#[derive(Clone, Debug)]
struct RangeSpec {
    key: Bytes,
    span: Span,
    rev: Rev,
    limit: i64,
    sort: (SortTarget, SortOrder),
    keys_only: bool,
    count_only: bool,
    /// min_mod, max_mod, min_create, max_create; `None` is 0 (off).
    filters: [Option<Rev>; 4],
}

#[derive(Clone, Debug)]
struct PutSpec {
    key: Bytes,
    value: Bytes,
    prev_kv: bool,
    ignore_value: bool,
    /// No lease exists, so any lease but 0 is refused.
    lease: i64,
}

#[derive(Clone, Debug)]
struct DeleteSpec {
    key: Bytes,
    span: Span,
    prev_kv: bool,
}

#[derive(Clone, Debug)]
struct CompareSpec {
    key: Bytes,
    span: Span,
    target: CompareTarget,
    op: CompareOp,
    int: CompareInt,
    bytes: Bytes,
    union: Union,
}

#[derive(Clone, Debug)]
enum TxnOpSpec {
    Get(RangeSpec),
    Put(PutSpec),
    Delete(DeleteSpec),
}

#[derive(Clone, Debug)]
struct TxnSpec {
    compares: Vec<CompareSpec>,
    success: Vec<TxnOpSpec>,
    failure: Vec<TxnOpSpec>,
}

#[derive(Clone, Debug)]
enum Op {
    Put(PutSpec),
    Delete(DeleteSpec),
    Txn(TxnSpec),
    Compact { rev: Rev, physical: bool },
    Range(RangeSpec),
}

fn key() -> impl Strategy<Value = Bytes> {
    prop_oneof![80 => select(KEYS).prop_map(|k| Bytes(k.to_vec())), 1 => Just(Bytes(Vec::new()))]
}

fn value() -> impl Strategy<Value = Bytes> {
    select(VALUES).prop_map(|v| Bytes(v.to_vec()))
}

/// Spans for writes and compares: mostly one key, so that state builds up.
fn span() -> impl Strategy<Value = Span> {
    prop_oneof![
        12 => Just(Span::Key),
        3 => select(KEYS).prop_map(|end| Span::Range(Bytes(end.to_vec()))),
        2 => Just(Span::Prefix),
        2 => Just(Span::FromKey),
        1 => Just(Span::All),
    ]
}

/// Keys and spans for reads: mostly many keys, so that limits, filters and sorting have
/// work; ranges are mostly the right way round.
fn read_span() -> impl Strategy<Value = (Bytes, Span)> {
    let bound = || select(KEYS).prop_map(|k| Bytes(k.to_vec()));
    let ordered = (bound(), bound()).prop_map(|(a, b)| if a.0 <= b.0 { (a, b) } else { (b, a) });
    prop_oneof![
        2 => (key(), Just(Span::Key)),
        4 => ordered.prop_map(|(start, end)| (start, Span::Range(end))),
        1 => (key(), bound()).prop_map(|(start, end)| (start, Span::Range(end))),
        2 => (key(), Just(Span::Prefix)),
        2 => (key(), Just(Span::FromKey)),
        3 => (key(), Just(Span::All)),
    ]
}

fn rev() -> impl Strategy<Value = Rev> {
    prop_oneof![
        4 => Just(Rev::Latest),
        1 => (-2i64..0).prop_map(Rev::Absolute),
        2 => (1i64..20).prop_map(Rev::Absolute),
        4 => (-5i64..=2).prop_map(Rev::FromCurrent),
        2 => (-1i64..=1).prop_map(Rev::FromCompacted),
    ]
}

/// Compactions mostly land on recent revisions, often exactly on the last write, where
/// what a compaction keeps is most delicate; the rest of the time anywhere.
fn compact_rev() -> impl Strategy<Value = Rev> {
    prop_oneof![2 => Just(Rev::FromCurrent(0)), 2 => (-3i64..0).prop_map(Rev::FromCurrent), 2 => rev()]
}

fn filter() -> impl Strategy<Value = Option<Rev>> {
    prop_oneof![6 => Just(None), 1 => rev().prop_map(Some)]
}

fn sort() -> impl Strategy<Value = (SortTarget, SortOrder)> {
    let target = select(vec![
        SortTarget::Key,
        SortTarget::Version,
        SortTarget::Create,
        SortTarget::Mod,
        SortTarget::Value,
    ]);
    let order =
        prop_oneof![2 => Just(SortOrder::None), 1 => Just(SortOrder::Ascend), 1 => Just(SortOrder::Descend)];
    prop_oneof![2 => Just((SortTarget::Key, SortOrder::None)), 3 => (target, order)]
}

fn range_spec(rev: impl Strategy<Value = Rev>) -> impl Strategy<Value = RangeSpec> {
    (
        (read_span(), rev),
        select(vec![0i64, 0, -1, 1, 1, 2, 3, 5]),
        sort(),
        (prop::bool::weighted(0.2), prop::bool::weighted(0.15)),
        [filter(), filter(), filter(), filter()],
    )
        .prop_map(|(((key, span), rev), limit, sort, (keys_only, count_only), filters)| RangeSpec {
            key,
            span,
            rev,
            limit,
            sort,
            keys_only,
            count_only,
            filters,
        })
}

fn put_spec() -> impl Strategy<Value = PutSpec> {
    let ignore_value =
        prop_oneof![40 => Just(None), 2 => Just(Some(Bytes(Vec::new()))), 1 => value().prop_map(Some)];
    (key(), value(), any::<bool>(), ignore_value, prop::bool::weighted(0.02)).prop_map(
        |(key, value, prev_kv, ignore_value, with_lease)| PutSpec {
            key,
            // etcd wants an empty value with ignore_value; a non-empty one is refused.
            value: ignore_value.clone().unwrap_or(value),
            prev_kv,
            ignore_value: ignore_value.is_some(),
            // Never together with ignore_value, so the order of those two checks is moot.
            lease: if with_lease && ignore_value.is_none() { 7 } else { 0 },
        },
    )
}

fn delete_spec() -> impl Strategy<Value = DeleteSpec> {
    (key(), span(), any::<bool>()).prop_map(|(key, span, prev_kv)| DeleteSpec { key, span, prev_kv })
}

fn compare_spec() -> impl Strategy<Value = CompareSpec> {
    let target = select(vec![
        CompareTarget::Version,
        CompareTarget::Create,
        CompareTarget::Mod,
        CompareTarget::Value,
        CompareTarget::Lease,
    ]);
    let op = select(vec![CompareOp::Equal, CompareOp::NotEqual, CompareOp::Greater, CompareOp::Less]);
    let int = prop_oneof![
        1 => (-1i64..=3).prop_map(CompareInt::Fixed),
        1 => (-2i64..=1).prop_map(CompareInt::FromCurrent),
        2 => (-1i64..=1).prop_map(CompareInt::FieldOfKey),
    ];
    let span = prop_oneof![6 => Just(Span::Key), 1 => span()];
    let union =
        prop_oneof![12 => Just(Union::Matching), 1 => Just(Union::Unset), 1 => Just(Union::OtherMember)];
    (key(), span, target, op, int, value(), union).prop_map(|(key, span, target, op, int, bytes, union)| {
        CompareSpec { key, span, target, op, int, bytes, union }
    })
}

fn txn_op() -> impl Strategy<Value = TxnOpSpec> {
    prop_oneof![
        2 => range_spec(prop_oneof![6 => Just(Rev::Latest), 1 => rev()]).prop_map(TxnOpSpec::Get),
        3 => put_spec().prop_map(TxnOpSpec::Put),
        2 => delete_spec().prop_map(TxnOpSpec::Delete),
    ]
}

/// Mostly within the op limit; now and then one over it.
fn op_list() -> impl Strategy<Value = Vec<TxnOpSpec>> {
    prop_oneof![40 => vec(txn_op(), 0..=MAX_TXN_OPS), 1 => vec(txn_op(), MAX_TXN_OPS + 1)]
}

fn txn_spec() -> impl Strategy<Value = TxnSpec> {
    let compares = prop_oneof![40 => vec(compare_spec(), 0..=2), 1 => vec(compare_spec(), MAX_TXN_OPS + 1)];
    (compares, op_list(), op_list()).prop_map(|(compares, success, failure)| TxnSpec {
        compares,
        success,
        failure,
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => put_spec().prop_map(Op::Put),
        2 => delete_spec().prop_map(Op::Delete),
        5 => txn_spec().prop_map(Op::Txn),
        2 => (compact_rev(), prop::bool::weighted(0.5)).prop_map(|(rev, physical)| Op::Compact { rev, physical }),
        5 => range_spec(rev()).prop_map(Op::Range),
    ]
}

// ---------------------------------------------------------------------------------------
// The reference model.
// ---------------------------------------------------------------------------------------

/// `[key, end)` as etcd clients spell a span: the prefix end increments the last byte
/// below 0xff and cuts the rest, or is `"\0"` when there is none; an empty key with a
/// prefix or from-key span means every key.
fn span_bounds(key: &Bytes, span: &Span) -> (Vec<u8>, Vec<u8>) {
    let key = key.0.as_slice();
    match span {
        Span::Key => (key.to_vec(), Vec::new()),
        Span::Range(end) => (key.to_vec(), end.0.clone()),
        Span::All => (vec![0], vec![0]),
        Span::Prefix | Span::FromKey if key.is_empty() => (vec![0], vec![0]),
        Span::FromKey => (key.to_vec(), vec![0]),
        Span::Prefix => {
            let mut end = key.to_vec();
            while end.last() == Some(&0xff) {
                end.pop();
            }
            match end.last_mut() {
                Some(last) => *last += 1,
                None => end = vec![0],
            }
            (key.to_vec(), end)
        }
    }
}

/// etcd's `(key, range_end)` convention: empty end is the key alone, `"\0"` is every key
/// from `start` on, anything else is the exclusive end.
fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    match end {
        [] => key == start,
        [0] => key >= start,
        _ => start <= key && key < end,
    }
}

/// What a range sorts by. Ties are compared through this, never through the tie order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Int(i64),
    Bytes(Vec<u8>),
}

fn sort_key(kv: &KeyValue, target: SortTarget) -> SortKey {
    match target {
        SortTarget::Key => SortKey::Bytes(kv.key.clone()),
        SortTarget::Version => SortKey::Int(kv.version),
        SortTarget::Create => SortKey::Int(kv.create_revision),
        SortTarget::Mod => SortKey::Int(kv.mod_revision),
        SortTarget::Value => SortKey::Bytes(kv.value.clone()),
    }
}

/// The expected answer to a range: the key-values that survive fetch, filters and sort
/// (before the limit cuts them to `len`).
#[derive(Debug)]
struct ExpectedRange {
    header: i64,
    ranked: Vec<KeyValue>,
    len: usize,
    more: bool,
    count: i64,
    keys_only: bool,
    /// What `ranked` is ordered by.
    order_by: SortTarget,
}

#[derive(Debug)]
enum ExpectedOp {
    Get(ExpectedRange),
    Put(PutResponse),
    Delete(DeleteResponse),
}

#[derive(Debug)]
struct ExpectedTxn {
    header: i64,
    succeeded: bool,
    ops: Vec<ExpectedOp>,
}

struct Model {
    /// `states[r]` is the keyspace at revision `r`; index 0 is a placeholder.
    states: Vec<State>,
    compacted: i64,
}

impl Model {
    fn new() -> Self {
        Model { states: vec![State::new(), State::new()], compacted: -1 }
    }

    fn current(&self) -> i64 {
        self.states.len() as i64 - 1
    }

    fn latest(&self) -> &State {
        self.states.last().expect("the model always holds revision 1")
    }

    fn resolve(&self, rev: Rev) -> i64 {
        match rev {
            Rev::Latest => 0,
            Rev::Absolute(r) => r,
            Rev::FromCurrent(d) => self.current() + d,
            Rev::FromCompacted(d) => self.compacted + d,
        }
    }

    /// A standalone range's view: `<= 0` is the current revision.
    fn read_state(&self, rev: i64) -> Result<&State, Error> {
        if rev > self.current() {
            return Err(Error::FutureRevision);
        }
        let rev = if rev <= 0 { self.current() } else { rev };
        if rev < self.compacted {
            return Err(Error::Compacted);
        }
        Ok(&self.states[rev as usize])
    }

    fn range(&self, req: &RangeRequest) -> Result<ExpectedRange, Error> {
        if req.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let state = self.read_state(req.revision)?;
        Ok(expect_range(state, req, self.current()))
    }

    fn put(&mut self, req: &PutRequest) -> Result<PutResponse, Error> {
        if req.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if req.ignore_value && !req.value.is_empty() {
            return Err(Error::ValueProvided);
        }
        if req.lease != 0 {
            return Err(Error::LeaseNotFound);
        }
        let mut state = self.latest().clone();
        let rev = self.current() + 1;
        let prev_kv = apply_put(&mut state, req, rev)?;
        self.states.push(state);
        Ok(PutResponse { header: header(rev), prev_kv: prev_kv.filter(|_| req.prev_kv) })
    }

    fn delete(&mut self, req: &DeleteRangeRequest) -> Result<DeleteResponse, Error> {
        if req.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let mut state = self.latest().clone();
        let rev = self.current() + 1;
        let deleted = apply_delete(&mut state, req);
        if deleted.is_empty() {
            return Ok(DeleteResponse { header: header(self.current()), ..Default::default() });
        }
        self.states.push(state);
        Ok(DeleteResponse {
            header: header(rev),
            deleted: deleted.len() as i64,
            prev_kvs: if req.prev_kv { deleted } else { Vec::new() },
        })
    }

    fn compact(&mut self, rev: i64) -> Result<i64, Error> {
        if rev <= self.compacted {
            return Err(Error::Compacted);
        }
        if rev > self.current() {
            return Err(Error::FutureRevision);
        }
        self.compacted = rev;
        Ok(self.current())
    }

    fn txn(&mut self, txn: &Txn) -> Result<ExpectedTxn, Error> {
        validate_txn(txn)?;
        let before = self.current();
        let pre = self.latest().clone();
        let succeeded = txn.compare.iter().all(|c| compare_holds(&pre, c));
        let ops = if succeeded { &txn.success } else { &txn.failure };
        // etcd checks the chosen branch's puts first, then its ranges, before running it.
        for op in ops {
            if let TxnOp::Put(put) = op {
                if put.ignore_value && !pre.contains_key(&put.key) {
                    return Err(Error::KeyNotFound);
                }
                if put.lease != 0 {
                    return Err(Error::LeaseNotFound);
                }
            }
        }
        for op in ops {
            if let TxnOp::Get(get) = op {
                // A negative revision is compared too (etcd issue 13871).
                if get.revision != 0 && get.revision > before {
                    return Err(Error::FutureRevision);
                }
                if get.revision != 0 && get.revision < self.compacted {
                    return Err(Error::Compacted);
                }
            }
        }
        let next = before + 1;
        let mut working = pre;
        let mut changed = false;
        let mut expected = Vec::new();
        for op in ops {
            expected.push(match op {
                TxnOp::Get(get) => {
                    let view = if changed { next } else { before };
                    let state =
                        if get.revision <= 0 { &working } else { &self.states[get.revision as usize] };
                    ExpectedOp::Get(expect_range(state, get, view))
                }
                TxnOp::Put(put) => {
                    // Fails only for ignore_value on a key that a from-key delete earlier
                    // in this branch removed. etcd panics there ("unexpected error during
                    // txn"); the store should refuse the txn and change nothing.
                    let prev_kv = apply_put(&mut working, put, next)?;
                    changed = true;
                    ExpectedOp::Put(PutResponse {
                        header: header(next),
                        prev_kv: prev_kv.filter(|_| put.prev_kv),
                    })
                }
                TxnOp::Delete(delete) => {
                    let deleted = apply_delete(&mut working, delete);
                    changed |= !deleted.is_empty();
                    ExpectedOp::Delete(DeleteResponse {
                        header: header(if changed { next } else { before }),
                        deleted: deleted.len() as i64,
                        prev_kvs: if delete.prev_kv { deleted } else { Vec::new() },
                    })
                }
                TxnOp::Txn(_) => unreachable!("the generator makes no nested txns"),
            });
        }
        if changed {
            self.states.push(working);
        }
        Ok(ExpectedTxn { header: if changed { next } else { before }, succeeded, ops: expected })
    }
}

fn header(revision: i64) -> ResponseHeader {
    ResponseHeader { revision, ..Default::default() }
}

/// Puts into `state` at revision `rev`; returns the previous key-value.
fn apply_put(state: &mut State, req: &PutRequest, rev: i64) -> Result<Option<KeyValue>, Error> {
    let prev = state.get(&req.key).cloned();
    let kv = match &prev {
        None if req.ignore_value => return Err(Error::KeyNotFound),
        None => KeyValue {
            key: req.key.clone(),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
            value: req.value.clone(),
            lease: 0,
        },
        Some(prev) => KeyValue {
            key: req.key.clone(),
            create_revision: prev.create_revision,
            mod_revision: rev,
            version: prev.version + 1,
            value: if req.ignore_value { prev.value.clone() } else { req.value.clone() },
            lease: 0,
        },
    };
    state.insert(req.key.clone(), kv);
    Ok(prev)
}

/// Deletes from `state`; returns the deleted key-values in key order.
fn apply_delete(state: &mut State, req: &DeleteRangeRequest) -> Vec<KeyValue> {
    let keys: Vec<Vec<u8>> =
        state.keys().filter(|k| in_range(k, &req.key, &req.range_end)).cloned().collect();
    keys.iter().map(|k| state.remove(k).expect("the key was just listed")).collect()
}

/// etcd's Range over one state: fetch (only limit + 1 keys, in key order, when the sort
/// order is NONE and no revision filter is set), filter, sort, then cut at the limit.
fn expect_range(state: &State, req: &RangeRequest, header: i64) -> ExpectedRange {
    let live: Vec<KeyValue> =
        state.values().filter(|kv| in_range(&kv.key, &req.key, &req.range_end)).cloned().collect();
    let count = live.len() as i64;
    // Order NONE with a target other than the key sorts ascending; with the key, the
    // key order is the natural one anyway.
    let order_by = req.sort_target;
    if req.count_only {
        let (ranked, len, more, keys_only) = (Vec::new(), 0, false, req.keys_only);
        return ExpectedRange { header, ranked, len, more, count, keys_only, order_by };
    }
    let filters =
        [req.min_mod_revision, req.max_mod_revision, req.min_create_revision, req.max_create_revision];
    let filtered = filters.iter().any(|&f| f != 0);
    let mut ranked = if req.sort_order == SortOrder::None && !filtered && req.limit > 0 {
        live.into_iter().take(req.limit as usize + 1).collect()
    } else {
        live
    };
    ranked.retain(|kv| {
        (req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
            && (req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
            && (req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision)
            && (req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision)
    });
    ranked.sort_by_key(|kv| sort_key(kv, order_by));
    if req.sort_order == SortOrder::Descend {
        ranked.reverse();
    }
    let more = req.limit > 0 && ranked.len() > req.limit as usize;
    let len = if more { req.limit as usize } else { ranked.len() };
    ExpectedRange { header, ranked, len, more, count, keys_only: req.keys_only, order_by }
}

/// etcd's `applyCompare`: every key in the range must satisfy it; an empty range compares
/// as a zero key-value, except that a VALUE compare then fails.
fn compare_holds(state: &State, c: &Compare) -> bool {
    let kvs: Vec<&KeyValue> = state.values().filter(|kv| in_range(&kv.key, &c.key, &c.range_end)).collect();
    if kvs.is_empty() {
        return c.target != CompareTarget::Value && compare_kv(c, &KeyValue::default());
    }
    kvs.into_iter().all(|kv| compare_kv(c, kv))
}

fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    let wanted = c.target_value.clone();
    let ordering = match c.target {
        CompareTarget::Value => match wanted {
            Some(TargetValue::Value(v)) => kv.value.cmp(&v),
            _ => kv.value.cmp(&Vec::new()),
        },
        CompareTarget::Version => match wanted {
            Some(TargetValue::Version(v)) => kv.version.cmp(&v),
            _ => kv.version.cmp(&0),
        },
        CompareTarget::Create => match wanted {
            Some(TargetValue::CreateRevision(v)) => kv.create_revision.cmp(&v),
            _ => kv.create_revision.cmp(&0),
        },
        CompareTarget::Mod => match wanted {
            Some(TargetValue::ModRevision(v)) => kv.mod_revision.cmp(&v),
            _ => kv.mod_revision.cmp(&0),
        },
        CompareTarget::Lease => match wanted {
            Some(TargetValue::Lease(v)) => kv.lease.cmp(&v),
            _ => kv.lease.cmp(&0),
        },
    };
    match c.result {
        CompareOp::Equal => ordering.is_eq(),
        CompareOp::NotEqual => ordering.is_ne(),
        CompareOp::Greater => ordering.is_gt(),
        CompareOp::Less => ordering.is_lt(),
    }
}

/// etcd's `checkTxnRequest` then `checkIntervals` on each branch.
fn validate_txn(txn: &Txn) -> Result<(), Error> {
    let ops = txn.compare.len().max(txn.success.len()).max(txn.failure.len());
    if ops > MAX_TXN_OPS {
        return Err(Error::TooManyOps);
    }
    if txn.compare.iter().any(|c| c.key.is_empty()) {
        return Err(Error::EmptyKey);
    }
    for op in txn.success.iter().chain(&txn.failure) {
        match op {
            TxnOp::Get(get) if get.key.is_empty() => return Err(Error::EmptyKey),
            TxnOp::Delete(delete) if delete.key.is_empty() => return Err(Error::EmptyKey),
            TxnOp::Put(put) if put.key.is_empty() => return Err(Error::EmptyKey),
            TxnOp::Put(put) if put.ignore_value && !put.value.is_empty() => return Err(Error::ValueProvided),
            _ => {}
        }
    }
    if writes_a_key_twice(&txn.success) || writes_a_key_twice(&txn.failure) {
        return Err(Error::DuplicateKey);
    }
    Ok(())
}

/// Two puts of one key, or a put inside a delete of the same list. etcd keeps deletes in
/// an interval tree with plain byte bounds, so a `"\0"` end (from-key) covers no put.
fn writes_a_key_twice(ops: &[TxnOp]) -> bool {
    let deletes: Vec<&DeleteRangeRequest> =
        ops.iter().filter_map(|op| if let TxnOp::Delete(d) = op { Some(d) } else { None }).collect();
    let mut puts = HashSet::new();
    ops.iter().filter_map(|op| if let TxnOp::Put(p) = op { Some(&p.key) } else { None }).any(|key| {
        let deleted = deletes.iter().any(|d| match d.range_end.as_slice() {
            [] => *key == d.key,
            end => d.key.as_slice() <= key.as_slice() && key.as_slice() < end,
        });
        deleted || !puts.insert(key)
    })
}

// ---------------------------------------------------------------------------------------
// Building requests from specs (through the public builders) and checking responses.
// ---------------------------------------------------------------------------------------

fn range_request(model: &Model, spec: &RangeSpec) -> Result<RangeRequest, TestCaseError> {
    let filter = |f: Option<Rev>| f.map_or(0, |rev| model.resolve(rev));
    let mut options = match &spec.span {
        Span::Key => GetOptions::new(),
        Span::Range(end) => GetOptions::new().with_range(end.0.clone()),
        Span::Prefix => GetOptions::new().with_prefix(),
        Span::FromKey => GetOptions::new().with_from_key(),
        Span::All => GetOptions::new().with_all_keys(),
    }
    .with_revision(model.resolve(spec.rev))
    .with_limit(spec.limit)
    .with_sort(spec.sort.0, spec.sort.1)
    .with_min_mod_revision(filter(spec.filters[0]))
    .with_max_mod_revision(filter(spec.filters[1]))
    .with_min_create_revision(filter(spec.filters[2]))
    .with_max_create_revision(filter(spec.filters[3]));
    if spec.keys_only {
        options = options.with_keys_only();
    }
    if spec.count_only {
        options = options.with_count_only();
    }
    let req = options.into_request(spec.key.0.clone());
    let (key, end) = span_bounds(&spec.key, &spec.span);
    prop_assert_eq!((&req.key, &req.range_end), (&key, &end));
    Ok(req)
}

fn put_request(spec: &PutSpec) -> PutRequest {
    let mut options = PutOptions::new().with_lease(spec.lease);
    if spec.prev_kv {
        options = options.with_prev_key();
    }
    if spec.ignore_value {
        options = options.with_ignore_value();
    }
    options.into_request(spec.key.0.clone(), spec.value.0.clone())
}

fn delete_request(spec: &DeleteSpec) -> Result<DeleteRangeRequest, TestCaseError> {
    let mut options = match &spec.span {
        Span::Key => DeleteOptions::new(),
        Span::Range(end) => DeleteOptions::new().with_range(end.0.clone()),
        Span::Prefix => DeleteOptions::new().with_prefix(),
        Span::FromKey => DeleteOptions::new().with_from_key(),
        Span::All => DeleteOptions::new().with_all_keys(),
    };
    if spec.prev_kv {
        options = options.with_prev_key();
    }
    let req = options.into_request(spec.key.0.clone());
    let (key, end) = span_bounds(&spec.key, &spec.span);
    prop_assert_eq!((&req.key, &req.range_end), (&key, &end));
    Ok(req)
}

fn compare(model: &Model, spec: &CompareSpec) -> Result<Compare, TestCaseError> {
    let int = match spec.int {
        CompareInt::Fixed(v) => v,
        CompareInt::FromCurrent(d) => model.current() + d,
        CompareInt::FieldOfKey(d) => {
            let kv = model.latest().get(&spec.key.0).cloned().unwrap_or_default();
            d + match spec.target {
                CompareTarget::Create => kv.create_revision,
                CompareTarget::Mod => kv.mod_revision,
                CompareTarget::Lease => kv.lease,
                _ => kv.version,
            }
        }
    };
    let key = spec.key.0.clone();
    let mut c = match spec.target {
        CompareTarget::Version => Compare::version(key, spec.op, int),
        CompareTarget::Create => Compare::create_revision(key, spec.op, int),
        CompareTarget::Mod => Compare::mod_revision(key, spec.op, int),
        CompareTarget::Value => Compare::value(key, spec.op, spec.bytes.0.clone()),
        CompareTarget::Lease => Compare::lease(key, spec.op, int),
    };
    c.target_value = match spec.union {
        Union::Matching => c.target_value,
        Union::Unset => None,
        Union::OtherMember if spec.target == CompareTarget::Version => {
            Some(TargetValue::Value(spec.bytes.0.clone()))
        }
        Union::OtherMember => Some(TargetValue::Version(int)),
    };
    Ok(match &spec.span {
        Span::Key => c,
        Span::Range(end) => c.with_range(end.0.clone()),
        Span::FromKey => c.with_range(vec![0]),
        Span::All => Compare { key: vec![0], range_end: vec![0], ..c },
        Span::Prefix => {
            let c = c.with_prefix();
            let (key, end) = span_bounds(&spec.key, &spec.span);
            prop_assert_eq!((&c.key, &c.range_end), (&key, &end));
            c
        }
    })
}

fn txn_request(model: &Model, spec: &TxnSpec) -> Result<Txn, TestCaseError> {
    let ops = |specs: &[TxnOpSpec]| -> Result<Vec<TxnOp>, TestCaseError> {
        specs
            .iter()
            .map(|op| {
                Ok(match op {
                    TxnOpSpec::Get(get) => TxnOp::Get(range_request(model, get)?),
                    TxnOpSpec::Put(put) => TxnOp::Put(put_request(put)),
                    TxnOpSpec::Delete(delete) => TxnOp::Delete(delete_request(delete)?),
                })
            })
            .collect()
    };
    let compares = spec.compares.iter().map(|c| compare(model, c)).collect::<Result<Vec<_>, _>>()?;
    Ok(Txn::new().when(compares).and_then(ops(&spec.success)?).or_else(ops(&spec.failure)?))
}

/// Checks a range response; sorted results are compared without relying on the order of
/// ties: the i-th key-value must be one the model ranks with the same sort key as its i-th.
fn check_range(got: &GetResponse, want: &ExpectedRange) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.header.revision, want.header, "header revision");
    prop_assert_eq!(got.count, want.count, "count");
    prop_assert_eq!(got.more, want.more, "more");
    prop_assert_eq!(got.kvs.len(), want.len, "number of kvs in {:?}", got.kvs);
    let ranked: HashMap<&[u8], &KeyValue> = want.ranked.iter().map(|kv| (kv.key.as_slice(), kv)).collect();
    let mut seen = HashSet::new();
    for (i, kv) in got.kvs.iter().enumerate() {
        let Some(&expected) = ranked.get(kv.key.as_slice()) else {
            return Err(TestCaseError::fail(format!("unexpected kv {kv:?}; model ranks {:?}", want.ranked)));
        };
        prop_assert!(seen.insert(&kv.key), "key {:?} returned twice", kv.key);
        let mut shown = expected.clone();
        if want.keys_only {
            shown.value.clear();
        }
        prop_assert_eq!(kv, &shown);
        prop_assert_eq!(
            sort_key(expected, want.order_by),
            sort_key(&want.ranked[i], want.order_by),
            "kv {} out of order: got {:?}, model ranks {:?}",
            i,
            got.kvs,
            want.ranked
        );
    }
    Ok(())
}

fn check_txn(got: &etcdlite::TxnResponse, want: &ExpectedTxn) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.header.revision, want.header, "txn header revision");
    prop_assert_eq!(got.succeeded, want.succeeded, "succeeded");
    prop_assert_eq!(got.responses.len(), want.ops.len(), "number of op responses");
    for (got, want) in got.responses.iter().zip(&want.ops) {
        match (got, want) {
            (TxnOpResponse::Get(got), ExpectedOp::Get(want)) => check_range(got, want)?,
            (TxnOpResponse::Put(got), ExpectedOp::Put(want)) => prop_assert_eq!(got, want),
            (TxnOpResponse::Delete(got), ExpectedOp::Delete(want)) => prop_assert_eq!(got, want),
            (got, want) => return Err(TestCaseError::fail(format!("got {got:?}, expected {want:?}"))),
        }
    }
    Ok(())
}

/// Checks that both sides failed alike, or hands both successes to `check`.
fn check_outcome<G: std::fmt::Debug, W: std::fmt::Debug>(
    got: Result<G, Error>,
    want: Result<W, Error>,
    check: impl FnOnce(&G, &W) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    match (&got, &want) {
        (Ok(got), Ok(want)) => check(got, want),
        (Err(got), Err(want)) => {
            prop_assert_eq!(got, want);
            Ok(())
        }
        _ => Err(TestCaseError::fail(format!("store answered {got:?}, model expected {want:?}"))),
    }
}

fn run_op(store: &Store, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match op {
        Op::Put(spec) => {
            let req = put_request(spec);
            check_outcome(store.put_request(req.clone()), model.put(&req), |got, want| {
                prop_assert_eq!(got, want);
                Ok(())
            })
        }
        Op::Delete(spec) => {
            let req = delete_request(spec)?;
            check_outcome(store.delete_range(&req), model.delete(&req), |got, want| {
                prop_assert_eq!(got, want);
                Ok(())
            })
        }
        Op::Txn(spec) => {
            let txn = txn_request(model, spec)?;
            check_outcome(store.txn(txn.clone()), model.txn(&txn), check_txn)
        }
        Op::Compact { rev, physical } => {
            let rev = model.resolve(*rev);
            let options =
                if *physical { CompactionOptions::new().with_physical() } else { CompactionOptions::new() };
            check_outcome(store.compact(rev, Some(options)), model.compact(rev), |got, want| {
                prop_assert_eq!(got.header.revision, *want);
                Ok(())
            })
        }
        Op::Range(spec) => {
            let req = range_request(model, spec)?;
            check_outcome(store.range(&req), model.range(&req), check_range)
        }
    }
}

/// Reads every key at every revision and checks it against the model: history below the
/// compacted revision is gone, everything from it up is intact.
fn check_history(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    for rev in 1..=model.current() + 1 {
        let got = store.get("", Some(GetOptions::new().with_all_keys().with_revision(rev)));
        let want = model.read_state(rev).map(|state| state.values().cloned().collect::<Vec<_>>());
        match (got, want) {
            (Ok(got), Ok(want)) => prop_assert_eq!(got.kvs, want, "all keys at revision {}", rev),
            (got, want) => prop_assert_eq!(got.map(|_| ()), want.map(|_| ()), "reading revision {}", rev),
        }
    }
    Ok(())
}

/// Runs `ops` against `store` and the model, checking every answer, then the whole history.
/// Returns the model, for a check after reopening.
fn run(store: &Store, ops: &[Op]) -> Result<Model, TestCaseError> {
    let mut model = Model::new();
    for (i, op) in ops.iter().enumerate() {
        run_op(store, &mut model, op).map_err(|e| TestCaseError::fail(format!("op {i} {op:?}: {e}")))?;
        prop_assert_eq!(store.current_revision(), model.current(), "current revision after op {}", i);
        prop_assert_eq!(store.compacted_revision(), model.compacted, "compacted revision after op {}", i);
    }
    check_history(store, &model)?;
    Ok(model)
}

/// Runs `ops` on a persistent store in a fresh directory (`options` opens the engine
/// there), then reopens it and checks the history again.
#[cfg(any(feature = "sled", feature = "rocksdb"))]
fn run_and_reopen(options: fn(&std::path::Path) -> Options, ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = options(dir.path()).sync(false).max_txn_ops(MAX_TXN_OPS);
    let open = || Store::open(options.clone()).expect("open store");
    let store = open();
    let model = run(&store, ops)?;
    drop(store);
    let store = open();
    prop_assert_eq!(store.current_revision(), model.current(), "current revision after reopening");
    prop_assert_eq!(store.compacted_revision(), model.compacted, "compacted revision after reopening");
    check_history(&store, &model)
}

/// `cases` unless `PROPTEST_CASES` asks for more (or fewer), for soak runs.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases);
    // No regression files: a failure prints the minimal sequence, which is the repro.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn memory_store_answers_every_request_as_the_model_does(ops in vec(op(), 1..60)) {
        let store = Store::open(Options::memory().max_txn_ops(MAX_TXN_OPS)).expect("open memory store");
        run(&store, &ops).map(drop)?;
    }
}

#[cfg(feature = "sled")]
proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn sled_store_answers_every_request_as_the_model_does(ops in vec(op(), 1..60)) {
        run_and_reopen(|dir| Options::sled(dir), &ops)?;
    }
}

#[cfg(feature = "rocksdb")]
proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn rocksdb_store_answers_every_request_as_the_model_does(ops in vec(op(), 1..60)) {
        run_and_reopen(|dir| Options::rocksdb(dir), &ops)?;
    }
}
