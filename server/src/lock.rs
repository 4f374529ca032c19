//! The Lock service (`v3lockpb.Lock`): etcd's server-side mutex, the same protocol as
//! clientv3's `concurrency.Mutex`, run on the server over the store.
//!
//! Locking `name` with a lease puts the key `name/<lease id in hex>` (empty value, on the
//! lease) unless it exists already; the lock is held by the key of the prefix `name/` with
//! the lowest create revision. A waiter waits, one key at a time, for the deletion of the
//! newest key created before its own, then checks that its own key still exists. Unlock
//! deletes the key; the lease's expiry deletes it too, which is what frees the lock of a
//! holder that died.

use std::sync::Arc;

use etcdlite::{
    Compare, CompareOp, DeleteRangeRequest, EventType, GetOptions, PutOptions, ResponseHeader, SortOrder,
    SortTarget, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use futures::StreamExt;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::lease::LEASE_COST;
use crate::node::Node;
use crate::pb::v3lockpb as pb;
use crate::pb::v3lockpb::lock_server::Lock;
use crate::status::server_stopped;

/// The TTL of the lease a Lock request without one gets (clientv3's default session TTL).
const DEFAULT_SESSION_TTL: i64 = 60;

/// etcd's `Lock` service over the node's store.
#[derive(Clone)]
pub struct LockService {
    node: Arc<Node>,
}

impl LockService {
    /// The service of `node`.
    pub fn new(node: Arc<Node>) -> Self {
        LockService { node }
    }

    /// Takes the lock `name` for `lease` (0: a new lease of 60 s, which nothing keeps
    /// alive, as etcd does), waiting while others hold it. Returns the lock's key and the
    /// header of the txn that took it, or of the read that saw it free after a wait.
    async fn acquire(&self, name: Vec<u8>, lease: i64) -> Result<(Vec<u8>, ResponseHeader), Status> {
        let store = &self.node.store;
        let lease = session_lease(&self.node, lease).await?;
        let mut prefix = name;
        prefix.push(b'/');
        let mut key = prefix.clone();
        key.extend_from_slice(go_hex(lease).as_bytes());

        let owner = || {
            let first = GetOptions::new().with_prefix().with_sort(SortTarget::Create, SortOrder::Ascend);
            TxnOp::get(prefix.clone(), Some(first.with_limit(1)))
        };
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.clone(), "", Some(PutOptions::new().with_lease(lease))), owner()])
            .or_else([TxnOp::get(key.clone(), None), owner()]);
        // Through the quota, as etcd's lock server writes through its quota-checked client.
        let cost = key.len() + LEASE_COST;
        self.node.check_space(cost).map_err(|s| Status::unknown(s.message()))?;
        // From here on a Lock that fails or is cancelled deletes the key, as etcd's does.
        let (resp, mut held) = put_guarded(&self.node, &key, txn).await?;
        let my_rev = if resp.succeeded {
            resp.header.revision
        } else {
            match resp.responses.first() {
                Some(TxnOpResponse::Get(get)) if !get.kvs.is_empty() => get.kvs[0].create_revision,
                _ => return Err(Status::internal("etcdlite: lock key vanished inside its txn")),
            }
        };
        let owner_rev = match resp.responses.get(1) {
            Some(TxnOpResponse::Get(get)) => get.kvs.first().map(|kv| kv.create_revision),
            _ => None,
        };
        if owner_rev.is_none_or(|rev| rev == my_rev) {
            held.key = None;
            return Ok((key, resp.header));
        }

        let header = wait_deletes(&self.node, &prefix, my_rev - 1).await?;
        if store.get(key.clone(), None).map_err(relayed)?.kvs.is_empty() {
            // The lease expired while waiting (etcd's concurrency.ErrSessionExpired).
            held.key = None;
            return Err(Status::unknown("mutex: session is expired"));
        }
        held.key = None;
        Ok((key, header))
    }
}

/// The lease of a Lock or Election request's session: `lease` itself, or for 0 a new lease
/// of 60 s (clientv3's default session TTL), which nothing keeps alive, as etcd does.
pub(crate) async fn session_lease(node: &Arc<Node>, lease: i64) -> Result<i64, Status> {
    if lease != 0 {
        return Ok(lease);
    }
    node.check_space(LEASE_COST).map_err(|s| Status::unknown(s.message()))?;
    Ok(node.store.lease_grant_async(DEFAULT_SESSION_TTL, None).await.map_err(relayed)?.id)
}

/// Applies `txn`, which puts `key` if it does not exist, and answers it with a guard that
/// deletes `key` when dropped (clear its `key` to keep the key). The txn is applied when
/// called: if it put the key, the key is the caller's from then on, and a call cancelled
/// while the txn's sync is awaited deletes it; a key that was there already (the same lease
/// asked before) is left alone until the txn has answered.
pub(crate) async fn put_guarded<'a>(
    node: &'a Node,
    key: &[u8],
    txn: Txn,
) -> Result<(etcdlite::TxnResponse, DeleteOnDrop<'a>), Status> {
    let applied = node.store.kv().txn_deferred(txn);
    let put_ours = matches!(applied.answer(), Ok(resp) if resp.succeeded);
    let mut guard = DeleteOnDrop { node, key: put_ours.then(|| key.to_vec()) };
    match applied.settle().await {
        Ok(resp) => {
            guard.key = Some(key.to_vec());
            Ok((resp, guard))
        }
        Err(e) => {
            guard.key = None;
            Err(relayed(e))
        }
    }
}

/// Waits until no key of `prefix` created at or before `max_create_revision` is left;
/// returns the header of the read that found none. A stopping server ends the wait with
/// [`server_stopped`].
pub(crate) async fn wait_deletes(
    node: &Node,
    prefix: &[u8],
    max_create_revision: i64,
) -> Result<ResponseHeader, Status> {
    let store = &node.store;
    let newest = GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Descend)
        .with_limit(1)
        .with_max_create_revision(max_create_revision);
    let stopped = node.stopped();
    tokio::pin!(stopped);
    loop {
        let resp = store.get(prefix.to_vec(), Some(newest.clone())).map_err(relayed)?;
        let Some(last) = resp.kvs.first() else { return Ok(resp.header) };
        let from = WatchOptions::new().with_start_revision(resp.header.revision);
        let (_watcher, mut events) = store.watch(last.key.clone(), Some(from)).map_err(relayed)?;
        loop {
            let watched = tokio::select! {
                watched = events.next() => watched,
                _ = &mut stopped => return Err(server_stopped()),
            };
            let Some(watched) = watched else {
                return Err(Status::unknown("lost watcher waiting for delete"));
            };
            // Deleted; or the watch was cut short (compaction): look again.
            if watched.events.iter().any(|e| e.event_type == EventType::Delete) || watched.canceled {
                break;
            }
        }
    }
}

/// A lease id as Go's `%x` writes it (a sign, then the magnitude), for lock and election
/// keys.
pub(crate) fn go_hex(lease: i64) -> String {
    if lease < 0 {
        format!("-{:x}", lease.unsigned_abs())
    } else {
        format!("{lease:x}")
    }
}

/// etcd's lock and election servers reach the store through a client, and relay the
/// client's errors as they are, which gRPC then sends as Unknown: an unknown lease is
/// Unknown "etcdserver: requested lease not found", not NotFound.
pub(crate) fn relayed(error: etcdlite::Error) -> Status {
    Status::unknown(error.to_string())
}

/// Deletes a Lock (or Campaign) request's key when the request ends without the lock (an
/// error, or the client going away while it waits), as etcd's servers do.
pub(crate) struct DeleteOnDrop<'a> {
    pub(crate) node: &'a Node,
    pub(crate) key: Option<Vec<u8>>,
}

impl Drop for DeleteOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let delete = DeleteRangeRequest { key, ..Default::default() };
            // Applied at once; its durability needs no waiter.
            drop(self.node.store.delete_range_async(&delete));
        }
    }
}

#[tonic::async_trait]
impl Lock for LockService {
    async fn lock(&self, request: Request<pb::LockRequest>) -> Result<Response<pb::LockResponse>, Status> {
        let req = request.into_inner();
        let (key, header) = self.acquire(req.name, req.lease).await?;
        Ok(Response::new(pb::LockResponse { header: self.node.header(convert::header(header)), key }))
    }

    async fn unlock(
        &self,
        request: Request<pb::UnlockRequest>,
    ) -> Result<Response<pb::UnlockResponse>, Status> {
        let delete = DeleteRangeRequest { key: request.into_inner().key, ..Default::default() };
        let resp = self.node.store.delete_range_async(&delete).await.map_err(relayed)?;
        Ok(Response::new(pb::UnlockResponse { header: self.node.header(convert::header(resp.header)) }))
    }
}

#[cfg(test)]
mod tests {
    use super::go_hex;

    #[test]
    fn lease_ids_are_written_as_go_writes_them() {
        assert_eq!(go_hex(42), "2a");
        assert_eq!(go_hex(-42), "-2a");
        assert_eq!(go_hex(i64::MIN), "-8000000000000000");
    }
}
