//! Applying requests: etcd's `applierV3backend` for Range, Put, DeleteRange, Txn and Compact.

use super::compare;
use super::gosort;
use super::request::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteResponse, GetResponse, PutRequest,
    PutResponse, RangeRequest, ResponseHeader, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse, TxnResponse,
};
use super::size;
use super::validate;
use crate::auth::{AuthStore, Caller, Checker};
use crate::error::{Error, Result};
use crate::mvcc::{Change, Durable, KeyRange, KeyValue, MvccStore, RangeOptions, ReadView, WriteTxn};

/// The limits etcd puts on requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest write request, measured as etcd measures it (`--max-request-bytes`).
    pub max_request_bytes: usize,
    /// Most compares or ops in one txn branch (`--max-txn-ops`).
    pub max_txn_ops: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_request_bytes: 1536 * 1024, max_txn_ops: 128 }
    }
}

/// What the KV layer needs from the lease layer. Both methods are called with the store's
/// writer lock held.
pub trait LeaseLookup: Send + Sync {
    /// True when a live lease has this id.
    fn lease_exists(&self, id: i64) -> bool;

    /// The keys attached to lease `id` (none for an unknown lease).
    fn lease_keys(&self, id: i64) -> std::collections::BTreeSet<Vec<u8>> {
        let _ = id;
        std::collections::BTreeSet::new()
    }

    /// A write committed these changes: keys put with a lease are now attached to it (and
    /// detached from any other), deleted keys are detached.
    fn committed(&self, changes: &[Change]) {
        let _ = changes;
    }
}

/// The answer to a write request, final once `durable` is ready: a write's own
/// durability, or, for a request refused on what it read, the durability of the writes it
/// read. [`wait`](Deferred::wait) blocks for it; [`settle`](Deferred::settle) awaits it.
/// Dropping it does not undo the write.
#[must_use = "an answer is not final until its Durable is ready"]
#[derive(Debug)]
pub struct Deferred<T> {
    result: Result<T>,
    durable: Durable,
}

impl<T> Deferred<T> {
    /// `result`, final once `durable` is ready.
    pub(crate) fn new(result: Result<T>, durable: Durable) -> Self {
        Deferred { result, durable }
    }

    /// A request refused before it read anything.
    fn refused(error: Error, mvcc: &MvccStore) -> Self {
        Deferred { result: Err(error), durable: mvcc.settled() }
    }

    /// A read's answer, final at once.
    fn ready(result: Result<T>, mvcc: &MvccStore) -> Self {
        Deferred { result, durable: mvcc.settled() }
    }

    /// The answer mapped by `f` (the answer is known before it is final).
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Deferred<U> {
        Deferred { result: self.result.map(f), durable: self.durable }
    }

    /// The answer as it stands: not final (nor to be acknowledged) until the write is
    /// durable, but already what it will be unless a sync fails.
    pub fn answer(&self) -> &Result<T> {
        &self.result
    }

    /// Blocks until the answer is final and returns it; a failed sync fails it.
    pub fn wait(self) -> Result<T> {
        self.durable.wait()?;
        self.result
    }

    /// Awaits the answer; a failed sync fails it.
    pub async fn settle(self) -> Result<T> {
        self.durable.await?;
        self.result
    }
}

/// etcd's KV service over one MVCC store.
pub struct Kv<'a> {
    mvcc: &'a MvccStore,
    limits: Limits,
    leases: &'a dyn LeaseLookup,
    /// Who asks, and the auth store that says what they may do; `None` for the
    /// application itself.
    caller: Option<(&'a AuthStore, &'a Caller)>,
}

impl<'a> Kv<'a> {
    /// The KV service of `mvcc`, enforcing `limits` and asking `leases` about lease ids.
    pub fn new(mvcc: &'a MvccStore, limits: Limits, leases: &'a dyn LeaseLookup) -> Self {
        Kv { mvcc, limits, leases, caller: None }
    }

    /// The same service for requests from `caller`, checked against `auth` as etcd checks
    /// them: writes under the writer lock (so no auth change comes between the check and
    /// the write), reads before they read and again after (a read answered across an auth
    /// change fails with `revision of auth store is old`).
    pub fn with_caller(mut self, auth: &'a AuthStore, caller: &'a Caller) -> Self {
        self.caller = Some((auth, caller));
        self
    }

    /// Runs `check` against the auth state as it is now; nothing for the application.
    fn permit(&self, check: impl FnOnce(&Checker<'_>) -> Result<()>) -> Result<()> {
        match self.caller {
            None => Ok(()),
            Some((auth, caller)) => check(&auth.checker(caller)),
        }
    }

    /// Fails when the caller's credentials were refused (a bad token), which etcd reports
    /// before a request's size.
    fn credentials(&self) -> Result<()> {
        match self.caller {
            Some((_, Caller::Refused(e))) => Err(e.clone()),
            _ => Ok(()),
        }
    }

    /// A read's answer, unless the auth state changed while it was read.
    fn unchanged<T>(&self, answer: Result<T>) -> Result<T> {
        match self.caller {
            Some((auth, caller)) => auth.check_unchanged(caller).and(answer),
            None => answer,
        }
    }

    fn check_size(&self, size: usize) -> Result<()> {
        if size > self.limits.max_request_bytes {
            return Err(Error::RequestTooLarge);
        }
        Ok(())
    }

    /// etcd's Range.
    pub fn range(&self, req: &RangeRequest) -> Result<GetResponse> {
        validate::check_range(req)?;
        self.permit(|c| c.range(&req.key, &req.range_end))?;
        self.unchanged(range(&self.mvcc.read(), req))
    }

    /// etcd's Put.
    pub fn put(&self, req: PutRequest) -> Result<PutResponse> {
        self.put_deferred(req).wait()
    }

    /// [`put`](Kv::put), returning once the write is staged: the answer, final once its
    /// [`Durable`] is ready.
    pub fn put_deferred(&self, req: PutRequest) -> Deferred<PutResponse> {
        if let Err(e) = validate::check_put(&req)
            .and_then(|()| self.credentials())
            .and_then(|()| self.check_size(size::put_request_size(&req)))
        {
            return Deferred::refused(e, self.mvcc);
        }
        let mut write = self.mvcc.write();
        let staged = self.permit(|c| c.put(&req, self.leases)).and_then(|()| {
            if req.lease != 0 && !self.leases.lease_exists(req.lease) {
                Err(Error::LeaseNotFound)
            } else {
                put(&mut write, req)
            }
        });
        self.finish(write, staged, |_, _| ())
    }

    /// etcd's DeleteRange.
    pub fn delete_range(&self, req: &DeleteRangeRequest) -> Result<DeleteResponse> {
        self.delete_range_deferred(req).wait()
    }

    /// [`delete_range`](Kv::delete_range), returning once the write is staged: the answer,
    /// final once its [`Durable`] is ready.
    pub fn delete_range_deferred(&self, req: &DeleteRangeRequest) -> Deferred<DeleteResponse> {
        if let Err(e) = validate::check_delete(req)
            .and_then(|()| self.credentials())
            .and_then(|()| self.check_size(size::delete_request_size(req)))
        {
            return Deferred::refused(e, self.mvcc);
        }
        let mut write = self.mvcc.write();
        let staged = self.permit(|c| c.delete(req)).and_then(|()| delete_range(&mut write, req));
        self.finish(write, staged, |_, _| ())
    }

    /// etcd's Txn. A txn whose branches hold only ranges is served as a read and never
    /// waits for writers.
    pub fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.txn_deferred(txn).wait()
    }

    /// [`txn`](Kv::txn), returning once the write is staged: the answer, final once its
    /// [`Durable`] is ready (at once for a read-only txn).
    pub fn txn_deferred(&self, txn: Txn) -> Deferred<TxnResponse> {
        if let Err(e) = validate::check_txn(&txn, self.limits.max_txn_ops).and_then(|()| self.credentials()) {
            return Deferred::refused(e, self.mvcc);
        }
        if txn.is_read_only() {
            let answer = self
                .permit(|c| c.txn(&txn, self.leases))
                .and_then(|()| self.unchanged(read_only_txn(&self.mvcc.read(), &txn)));
            return Deferred::ready(answer, self.mvcc);
        }
        if let Err(e) = self.check_size(size::txn_request_size(&txn)) {
            return Deferred::refused(e, self.mvcc);
        }
        let mut write = self.mvcc.write();
        let staged = (|| {
            self.permit(|c| c.txn(&txn, self.leases))?;
            let path = Path::evaluate(&write, &txn)?;
            path.check(&txn, &mut |op| self.check_put(&write, op))?;
            path.check(&txn, &mut |op| check_range_revision(&write, op))?;
            apply_txn(&mut write, txn, path)
        })();
        self.finish(write, staged, |response, revision| response.header = ResponseHeader::at(revision))
    }

    /// Commits `write` when staging it succeeded (`fill` then gets the committed revision),
    /// and abandons it when it was refused: a refusal may rest on writes not yet durable,
    /// so it waits for them too.
    fn finish<T>(
        &self,
        write: WriteTxn<'_>,
        staged: Result<T>,
        fill: impl FnOnce(&mut T, i64),
    ) -> Deferred<T> {
        let mut response = match staged {
            Ok(response) => response,
            Err(e) => return Deferred { result: Err(e), durable: write.abandon() },
        };
        match write.commit_deferred_with(|changes| self.leases.committed(changes)) {
            Ok((revision, durable)) => {
                fill(&mut response, revision);
                Deferred { result: Ok(response), durable }
            }
            // The engine refused the write: nothing changed, and the error rests on no state.
            Err(e) => Deferred::refused(e, self.mvcc),
        }
    }

    /// etcd's Compact: history below `revision` becomes unreadable at once; with
    /// `physical`, this also waits until the engine no longer holds it.
    pub fn compact(&self, req: CompactionRequest) -> Result<CompactionResponse> {
        // etcd asks no permission of a compaction; refused credentials still fail it.
        self.credentials()?;
        let done = self.mvcc.compact(req.revision)?;
        if req.physical {
            done.wait()?;
        }
        Ok(CompactionResponse { header: ResponseHeader::at(self.mvcc.current_revision()) })
    }

    /// etcd's `checkRequestPut`, against the state before the txn.
    fn check_put(&self, view: &impl ReadView, op: &TxnOp) -> Result<()> {
        let TxnOp::Put(req) = op else { return Ok(()) };
        if req.ignore_value || req.ignore_lease {
            let found = view.range(KeyRange::Key(&req.key), RangeOptions::default())?;
            if found.kvs.is_empty() {
                return Err(Error::KeyNotFound);
            }
        }
        if req.lease != 0 && !self.leases.lease_exists(req.lease) {
            return Err(Error::LeaseNotFound);
        }
        Ok(())
    }
}

/// etcd's `checkRequestRange`: a range's revision must be readable. Note that it compares
/// a negative revision with the compacted revision (-1 before any compaction), where a
/// standalone range would read the latest revision (etcd issue 13871).
fn check_range_revision(view: &impl ReadView, op: &TxnOp) -> Result<()> {
    let TxnOp::Get(req) = op else { return Ok(()) };
    match req.revision {
        0 => Ok(()),
        rev if rev > view.revision() => Err(Error::FutureRevision),
        rev if rev < view.first_revision() => Err(Error::Compacted),
        _ => Ok(()),
    }
}

/// Which branch each (nested) txn takes, decided from the state before the txn runs.
struct Path {
    succeeded: bool,
    /// One path per nested txn of the chosen branch, in order.
    nested: Vec<Path>,
}

fn branch(txn: &Txn, succeeded: bool) -> &[TxnOp] {
    if succeeded {
        &txn.success
    } else {
        &txn.failure
    }
}

impl Path {
    /// etcd's `compareToPath`: every compare, nested ones included, reads the same view.
    fn evaluate(view: &impl ReadView, txn: &Txn) -> Result<Path> {
        let succeeded = compare::all_hold(view, &txn.compare)?;
        let nested = branch(txn, succeeded)
            .iter()
            .filter_map(|op| match op {
                TxnOp::Txn(nested) => Some(Path::evaluate(view, nested)),
                _ => None,
            })
            .collect::<Result<_>>()?;
        Ok(Path { succeeded, nested })
    }

    /// Runs `check` on every non-txn op along the path.
    fn check(&self, txn: &Txn, check: &mut impl FnMut(&TxnOp) -> Result<()>) -> Result<()> {
        let mut nested = self.nested.iter();
        for op in branch(txn, self.succeeded) {
            match op {
                TxnOp::Txn(inner) => nested.next().expect("one path per nested txn").check(inner, check)?,
                _ => check(op)?,
            }
        }
        Ok(())
    }
}

fn read_only_txn(view: &impl ReadView, txn: &Txn) -> Result<TxnResponse> {
    let path = Path::evaluate(view, txn)?;
    path.check(txn, &mut |op| check_range_revision(view, op))?;
    let responses = branch(txn, path.succeeded)
        .iter()
        .map(|op| match op {
            TxnOp::Get(req) => range(view, req).map(TxnOpResponse::Get),
            _ => unreachable!("is_read_only admits only ranges"),
        })
        .collect::<Result<_>>()?;
    Ok(TxnResponse { header: ResponseHeader::at(view.revision()), succeeded: path.succeeded, responses })
}

/// Runs the chosen branch. Checks have passed, so only an engine failure can stop it
/// midway, and the caller's write then rolls back.
fn apply_txn(write: &mut WriteTxn<'_>, txn: Txn, path: Path) -> Result<TxnResponse> {
    let ops = if path.succeeded { txn.success } else { txn.failure };
    let mut nested = path.nested.into_iter();
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        responses.push(match op {
            TxnOp::Get(req) => TxnOpResponse::Get(range(write, &req)?),
            TxnOp::Put(req) => TxnOpResponse::Put(put(write, req)?),
            TxnOp::Delete(req) => TxnOpResponse::Delete(delete_range(write, &req)?),
            TxnOp::Txn(inner) => {
                let path = nested.next().expect("one path per nested txn");
                TxnOpResponse::Txn(apply_txn(write, inner, path)?)
            }
        });
    }
    // A nested txn's header stays empty, as etcd leaves it; the caller sets the top one.
    Ok(TxnResponse { header: ResponseHeader::default(), succeeded: path.succeeded, responses })
}

/// etcd's Range over any view: fetch (limit + 1 when the order is the index order and no
/// revision filter applies, else everything), filter, sort, truncate.
fn range(view: &impl ReadView, req: &RangeRequest) -> Result<GetResponse> {
    let filtered = req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0;
    let fetch = if req.sort_order != SortOrder::None || filtered {
        0
    } else if req.limit > 0 {
        req.limit.saturating_add(1)
    } else {
        req.limit
    };
    let options = RangeOptions { limit: fetch, revision: req.revision, count_only: req.count_only };
    let found = view.range(KeyRange::from_etcd(&req.key, &req.range_end), options)?;
    let mut kvs = found.kvs;
    kvs.retain(|kv| {
        (req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
            && (req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
            && (req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision)
            && (req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision)
    });
    sort(&mut kvs, req.sort_target, req.sort_order);
    let mut more = false;
    if let Ok(limit) = usize::try_from(req.limit) {
        if limit > 0 && kvs.len() > limit {
            kvs.truncate(limit);
            more = true;
        }
    }
    if req.keys_only {
        kvs.iter_mut().for_each(|kv| kv.value = Vec::new());
    }
    Ok(GetResponse { header: ResponseHeader::at(found.revision), kvs, more, count: found.count as i64 })
}

/// Sorts as etcd does: a target other than the key with no order means ascending, the key
/// with no order is the index order already; otherwise Go's `sort.Sort` on the target alone
/// (`sort.Reverse` for descending), which decides how ties end up (see [`gosort`]).
fn sort(kvs: &mut [KeyValue], target: SortTarget, order: SortOrder) {
    let descending = match (target, order) {
        (SortTarget::Key, SortOrder::None) => return,
        (_, SortOrder::None | SortOrder::Ascend) => false,
        (_, SortOrder::Descend) => true,
    };
    let less: fn(&KeyValue, &KeyValue) -> bool = match target {
        SortTarget::Key => |a, b| a.key < b.key,
        SortTarget::Version => |a, b| a.version < b.version,
        SortTarget::Create => |a, b| a.create_revision < b.create_revision,
        SortTarget::Mod => |a, b| a.mod_revision < b.mod_revision,
        SortTarget::Value => |a, b| a.value < b.value,
    };
    if descending {
        gosort::sort_by(kvs, |a, b| less(b, a));
    } else {
        gosort::sort_by(kvs, less);
    }
}

/// etcd's Put inside a write: `ignore_value`/`ignore_lease` keep the current value/lease.
fn put(write: &mut WriteTxn<'_>, req: PutRequest) -> Result<PutResponse> {
    let keeps_something = req.ignore_value || req.ignore_lease;
    let prev = if keeps_something || req.prev_kv {
        write.range(KeyRange::Key(&req.key), RangeOptions::default())?.kvs.pop()
    } else {
        None
    };
    let (value, lease) = match &prev {
        Some(prev) => (
            if req.ignore_value { prev.value.clone() } else { req.value },
            if req.ignore_lease { prev.lease } else { req.lease },
        ),
        None if keeps_something => return Err(Error::KeyNotFound),
        None => (req.value, req.lease),
    };
    let revision = write.put(&req.key, value, lease);
    Ok(PutResponse { header: ResponseHeader::at(revision), prev_kv: prev.filter(|_| req.prev_kv) })
}

/// etcd's DeleteRange inside a write.
fn delete_range(write: &mut WriteTxn<'_>, req: &DeleteRangeRequest) -> Result<DeleteResponse> {
    let keys = KeyRange::from_etcd(&req.key, &req.range_end);
    let prev_kvs = if req.prev_kv { write.range(keys, RangeOptions::default())?.kvs } else { Vec::new() };
    let (deleted, revision) = write.delete_range(keys);
    Ok(DeleteResponse { header: ResponseHeader::at(revision), deleted, prev_kvs })
}
