//! Requests made as a [`Caller`]: what the server and the in-process client run for a user.

use std::future::Future;

use super::Store;
use crate::auth::Caller;
use crate::error::Result;
use crate::lease::{
    LeaseId, LeaseLeasesResponse, LeaseRevokeResponse, LeaseTimeToLiveOptions, LeaseTimeToLiveResponse,
};
use crate::options::{CompactionOptions, GetOptions};
use crate::txn::request::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteResponse, GetResponse, PutRequest,
    PutResponse, RangeRequest, ResponseHeader, Txn, TxnResponse,
};
use crate::txn::{Deferred, Kv};
use crate::worker::offload;

/// A [`Store`]'s requests made as one [`Caller`] (see [`Store::as_caller`]): while auth is
/// enabled each is checked as etcd checks it, and fails with etcd's error (`etcdserver:
/// permission denied`, `etcdserver: user name is empty`, ...) without changing anything.
pub struct Access<'a> {
    store: &'a Store,
    caller: &'a Caller,
}

impl<'a> Access<'a> {
    pub(super) fn new(store: &'a Store, caller: &'a Caller) -> Self {
        Access { store, caller }
    }

    fn kv(&self) -> Kv<'a> {
        let shared = &self.store.shared;
        Kv::new(&shared.mvcc, shared.limits, &shared.leases).with_caller(&shared.auth, self.caller)
    }

    /// Puts `key` = `value`.
    pub fn put(&self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Result<PutResponse> {
        self.put_request(PutRequest { key: key.into(), value: value.into(), ..Default::default() })
    }

    /// Applies a put request.
    pub fn put_request(&self, req: PutRequest) -> Result<PutResponse> {
        self.kv().put(req)
    }

    /// [`put_request`](Access::put_request) for async callers, as
    /// [`Store::put_request_async`].
    pub fn put_request_async(
        &self,
        req: PutRequest,
    ) -> impl Future<Output = Result<PutResponse>> + Send + 'static {
        self.kv().put_deferred(req).settle()
    }

    /// Reads `key` (or the range `options` describe).
    pub fn get(&self, key: impl Into<Vec<u8>>, options: Option<GetOptions>) -> Result<GetResponse> {
        self.range(&options.unwrap_or_default().into_request(key.into()))
    }

    /// Applies a range request.
    pub fn range(&self, req: &RangeRequest) -> Result<GetResponse> {
        self.kv().range(req)
    }

    /// Applies a delete request.
    pub fn delete_range(&self, req: &DeleteRangeRequest) -> Result<DeleteResponse> {
        self.kv().delete_range(req)
    }

    /// [`delete_range`](Access::delete_range) for async callers.
    pub fn delete_range_async(
        &self,
        req: &DeleteRangeRequest,
    ) -> impl Future<Output = Result<DeleteResponse>> + Send + 'static {
        self.kv().delete_range_deferred(req).settle()
    }

    /// Runs a transaction: its compares and both its branches (nested txns included) are
    /// checked, whichever branch runs.
    pub fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.kv().txn(txn)
    }

    /// [`txn`](Access::txn) for async callers.
    pub fn txn_async(&self, txn: Txn) -> impl Future<Output = Result<TxnResponse>> + Send + 'static {
        self.kv().txn_deferred(txn).settle()
    }

    /// Compacts history below `revision`: an administrator's call while auth is enabled
    /// (etcd 3.5.28 and later; before, anyone's).
    pub fn compact_async(
        &self,
        revision: i64,
        options: Option<CompactionOptions>,
    ) -> impl Future<Output = Result<CompactionResponse>> + Send + 'static {
        let refused = self.store.shared.auth.check_admin(self.caller);
        let shared = self.store.shared.clone();
        let physical = options.unwrap_or_default().physical();
        async move {
            refused?;
            offload("etcdlite-compact", move || shared.kv().compact(CompactionRequest { revision, physical }))
                .await
        }
    }

    /// Revokes lease `id`: an administrator may, anyone else needs write permission on
    /// every key attached to it.
    pub fn lease_revoke_async(
        &self,
        id: LeaseId,
    ) -> impl Future<Output = Result<LeaseRevokeResponse>> + Send + 'static {
        self.lease_revoke_deferred(id).settle()
    }

    /// [`lease_revoke_async`](Access::lease_revoke_async), blocking.
    pub fn lease_revoke(&self, id: LeaseId) -> Result<LeaseRevokeResponse> {
        self.lease_revoke_deferred(id).wait()
    }

    fn lease_revoke_deferred(&self, id: LeaseId) -> Deferred<LeaseRevokeResponse> {
        let shared = &self.store.shared;
        if let Err(e) =
            shared.auth.check_named(self.caller).and_then(|()| shared.auth.check_credentials(self.caller))
        {
            return Deferred::new(Err(e), shared.mvcc.settled());
        }
        let permit = |keys: &_| shared.auth.checker(self.caller).lease_keys(keys);
        shared.leases.revoke_checked(&shared.mvcc, id, None, &permit).map(|revision| {
            let revision = revision.expect("a revoke without a deadline always happens");
            LeaseRevokeResponse { header: ResponseHeader::at(revision) }
        })
    }

    /// Lease `id`'s TTLs and, with [`LeaseTimeToLiveOptions::with_keys`], its keys, which
    /// the caller must be allowed to read (an administrator may read them all).
    pub fn lease_time_to_live_async(
        &self,
        id: LeaseId,
        options: Option<LeaseTimeToLiveOptions>,
    ) -> impl Future<Output = Result<LeaseTimeToLiveResponse>> + Send + 'static {
        let auth = &self.store.shared.auth;
        let keys = options.unwrap_or_default().keys();
        let answer = self.store.lease_time_to_live_deferred(id, options);
        let checked = auth.check_named(self.caller).and_then(|()| {
            if !keys {
                return Ok(());
            }
            let Ok(resp) = answer.answer() else { return Ok(()) };
            auth.checker(self.caller).lease_keys_readable(&resp.keys)?;
            auth.check_unchanged(self.caller)
        });
        async move {
            checked?;
            answer.settle().await
        }
    }

    /// Fails unless the caller may renew lease `id` (etcd 3.5's `checkLeaseRenew`): while
    /// auth is enabled, a named user; an administrator, or one allowed to write every key
    /// attached to the lease.
    pub fn check_lease_renew(&self, id: LeaseId) -> Result<()> {
        let auth = &self.store.shared.auth;
        if !auth.is_enabled() {
            return Ok(());
        }
        auth.check_named(self.caller)?;
        auth.checker(self.caller).lease_keys(&self.store.shared.leases_keys(id))?;
        auth.check_unchanged(self.caller)
    }

    /// Every live lease; anyone but an administrator must be allowed to read every key
    /// attached to one.
    pub fn lease_leases_async(&self) -> impl Future<Output = Result<LeaseLeasesResponse>> + Send + 'static {
        let shared = &self.store.shared;
        let checked = shared.auth.check_named(self.caller).and_then(|()| {
            if !shared.auth.is_enabled() {
                return Ok(());
            }
            let checker = shared.auth.checker(self.caller);
            checker.lease_keys_readable(&shared.leases.attached_keys())?;
            shared.auth.check_unchanged(self.caller)
        });
        let answer = self.store.lease_leases_deferred();
        async move {
            checked?;
            answer.settle().await
        }
    }
}
