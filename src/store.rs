//! The public facade.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::never;

use crate::auth::AuthStore;
use crate::cluster::Cluster;
use crate::engine::Engine;
use crate::error::Result;
use crate::lease::{
    Attachments, Clock, LeaseGrantOptions, LeaseGrantResponse, LeaseId, LeaseKeepAliveResponse,
    LeaseLeasesResponse, LeaseRevokeResponse, LeaseTimeToLiveOptions, LeaseTimeToLiveResponse, Leases, Wake,
};
use crate::mvcc::{KeyValue, MvccStore};
use crate::options::{CompactionOptions, DeleteOptions, GetOptions, Options, PutOptions, WatchOptions};
use crate::txn::request::ResponseHeader;
use crate::txn::request::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteResponse, GetResponse, PutRequest,
    PutResponse, RangeRequest, Txn, TxnResponse,
};
use crate::txn::Deferred;
use crate::txn::{Kv, Limits};
use crate::watch::{self, EventType, WatchHub, WatchStream, Watcher};
use crate::worker::{offload, Worker};

mod access;
mod cluster;
mod maintenance;

pub use access::Access;

pub use maintenance::{
    DbSize, HashKvResponse, SnapshotChunk, SnapshotChunks, DEFAULT_MAX_CONCURRENT_SNAPSHOTS,
    SNAPSHOT_CHUNK_BYTES,
};

/// An etcd v3 keyspace in your process: revisions, history reads, transactions and
/// compaction over a memory, RocksDB or sled engine.
///
/// Calls are synchronous, and a store is `Send + Sync`: share it as `Arc<Store>`. Reads
/// never wait for writers; writes are applied one at a time, each under one new revision.
///
/// ```
/// use etcdlite::{GetOptions, Options, Store};
///
/// let store = Store::open(Options::memory())?;
/// let first = store.put("greeting", "hello", None)?.header().revision();
/// store.put("greeting", "bonjour", None)?;
///
/// let now = store.get("greeting", None)?;
/// assert_eq!(now.kvs()[0].value(), b"bonjour");
/// assert_eq!(now.kvs()[0].version(), 2);
///
/// let then = store.get("greeting", Some(GetOptions::new().with_revision(first)))?;
/// assert_eq!(then.kvs()[0].value(), b"hello");
/// # Ok::<(), etcdlite::Error>(())
/// ```
pub struct Store {
    // Fields drop in order: the background threads are stopped and joined before the
    // rest goes.
    /// The thread expiring leases on a clock that moves on its own.
    _expiry: Option<Worker>,
    /// The thread catching watchers up from history.
    _syncer: Worker,
    /// Keeps the clock's callback alive (a [`ManualClock`](crate::ManualClock) holds it
    /// weakly); `None` with a clock that moves on its own.
    _wake: Option<Arc<Wake>>,
    shared: Arc<Shared>,
}

/// How often the expiry thread looks for due leases (etcd: every 500 ms).
const EXPIRY_INTERVAL: Duration = Duration::from_millis(500);

struct Shared {
    mvcc: Arc<MvccStore>,
    limits: Limits,
    leases: Leases,
    watch: Arc<WatchHub>,
    clock: Arc<dyn Clock>,
    cluster: Cluster,
    auth: AuthStore,
    /// A place for each snapshot being streamed.
    snapshots: Arc<tokio::sync::Semaphore>,
}

impl Shared {
    /// The keys attached to lease `id` (none for an unknown lease).
    fn leases_keys(&self, id: LeaseId) -> std::collections::BTreeSet<Vec<u8>> {
        crate::txn::LeaseLookup::lease_keys(&self.leases, id)
    }

    fn kv(&self) -> Kv<'_> {
        Kv::new(&self.mvcc, self.limits, &self.leases)
    }

    /// Revokes the leases due now; returns how many.
    fn expire_due(&self) -> Result<usize> {
        self.leases.expire(&self.mvcc, self.clock.now())
    }

    /// What the clock moving on triggers: lease expiry (an engine failure leaves the
    /// leases for the next check) and progress notifications.
    fn on_time(&self) {
        if let Err(e) = self.expire_due() {
            tracing::warn!(error = %e, "expiring leases failed; retrying at the next check");
        }
        self.watch.tick_progress();
    }
}

impl Store {
    /// Opens a store; on a persistent engine, everything committed before is back,
    /// history, compaction state and leases included (each lease with its full TTL again,
    /// as etcd restores them).
    pub fn open(options: Options) -> Result<Store> {
        let engine = options.engine.open(options.sync)?;
        Self::open_over(engine, options)
    }

    /// Opens a store over `engine`, the one `options` describe, already opened.
    fn open_over(engine: Arc<dyn Engine>, options: Options) -> Result<Store> {
        let mut attached = Attachments::default();
        let mvcc =
            MvccStore::open_visiting(engine, options.sync, options.compaction_batch_limit, &mut |kv, t| {
                attached.visit(kv, t)
            })?;
        let mvcc = Arc::new(mvcc);
        let clock = options.clock;
        let leases = Leases::open(&mvcc, clock.now(), attached)?;
        let (watch, woken) = WatchHub::attach(&mvcc, clock.clone(), options.watch);
        let syncer = {
            let hub = Arc::downgrade(&watch);
            Worker::spawn("etcdlite-watch-sync", Duration::ZERO, woken, move || Some(hub.upgrade()?.sync()))?
        };
        let cluster = Cluster::new(options.quota_bytes);
        let auth = AuthStore::open(mvcc.clone(), &options.auth, clock.clone())?;
        let snapshots = Arc::new(tokio::sync::Semaphore::new(options.max_concurrent_snapshots));
        let shared =
            Arc::new(Shared { mvcc, limits: options.limits, leases, watch, clock, cluster, auth, snapshots });
        let weak = Arc::downgrade(&shared);
        let wake: Arc<Wake> = Arc::new(move || {
            if let Some(shared) = weak.upgrade() {
                shared.on_time();
            }
        });
        let (wake, expiry) = if shared.clock.on_advance(Arc::downgrade(&wake)) {
            (Some(wake), None)
        } else {
            let weak = Arc::downgrade(&shared);
            let expiry = Worker::spawn("etcdlite-lease-expiry", EXPIRY_INTERVAL, never(), move || {
                weak.upgrade()?.on_time();
                Some(EXPIRY_INTERVAL)
            })?;
            (None, Some(expiry))
        };
        Ok(Store { _expiry: expiry, _syncer: syncer, _wake: wake, shared })
    }

    /// The KV service: etcd's requests, field for field.
    pub fn kv(&self) -> Kv<'_> {
        self.shared.kv()
    }

    /// Visits every change with a revision in `from..=to` (at most the current revision),
    /// in revision order: the retained history, as a watch from `from` would see it but
    /// without waiting. Fails with [`Error::Compacted`](crate::Error::Compacted) when `from` is below the compacted
    /// revision, before or during the read.
    pub fn history(&self, from: i64, to: i64, visit: &mut dyn FnMut(KeyValue, EventType)) -> Result<()> {
        let mvcc = &self.shared.mvcc;
        let to = to.min(mvcc.current_revision());
        mvcc.history(from, to, &mut |_, change| {
            let kind = if change.tombstone { EventType::Delete } else { EventType::Put };
            visit(Arc::unwrap_or_clone(change.kv), kind)
        })
    }

    /// How many callers wait for a sync right now: threads blocked until their write (or
    /// a write their answer rests on) is durable, and futures parked on one. A gauge of
    /// group commit; tests use it to know a caller is waiting, without sleeping.
    pub fn sync_waiters(&self) -> usize {
        self.shared.mvcc.sync_waiters()
    }

    /// The failure that stopped every write, if one did (a sync of the engine failed; a
    /// later write could otherwise be acknowledged over a lost one). The store then
    /// refuses writes until it is reopened; health checks report it.
    pub fn failure(&self) -> Option<crate::Error> {
        self.shared.mvcc.failure().map(Into::into)
    }

    /// The current revision (1 for an empty store).
    pub fn current_revision(&self) -> i64 {
        self.shared.mvcc.current_revision()
    }

    /// The compacted revision (-1 before any compaction).
    pub fn compacted_revision(&self) -> i64 {
        self.shared.mvcc.compacted_revision()
    }

    /// The request limits the store enforces (`--max-request-bytes`, `--max-txn-ops`).
    pub fn limits(&self) -> Limits {
        self.shared.limits
    }

    /// Users, roles, permissions and tokens: etcd's auth, kept in this store.
    pub fn auth(&self) -> &AuthStore {
        &self.shared.auth
    }

    /// Requests made as `caller`, checked as etcd checks them while auth is enabled (the
    /// store's own methods are the application's, and never checked).
    pub fn as_caller<'a>(&'a self, caller: &'a crate::auth::Caller) -> Access<'a> {
        Access::new(self, caller)
    }

    /// Puts `key` = `value`.
    pub fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        options: Option<PutOptions>,
    ) -> Result<PutResponse> {
        self.put_request(options.unwrap_or_default().into_request(key.into(), value.into()))
    }

    /// Applies a put request.
    pub fn put_request(&self, req: PutRequest) -> Result<PutResponse> {
        self.kv().put(req)
    }

    /// [`put_request`](Store::put_request) for async callers. The write is applied when
    /// this is called: that takes the writer lock, which writes hold for microseconds (a
    /// compaction or HashKV under a steady stream of writes, for up to one sync), and an
    /// engine write (which may stall when the engine does: RocksDB write stalls, a sled
    /// snapshot copy). The future resolves once the write is durable (with sync on) and
    /// visible to readers, without a thread waiting meanwhile. An answer that rests on
    /// writes not yet durable (a refused ignore-value put, say) also waits for them.
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

    /// Deletes `key` (or the range `options` describe).
    pub fn delete(&self, key: impl Into<Vec<u8>>, options: Option<DeleteOptions>) -> Result<DeleteResponse> {
        self.delete_range(&options.unwrap_or_default().into_request(key.into()))
    }

    /// Applies a delete request.
    pub fn delete_range(&self, req: &DeleteRangeRequest) -> Result<DeleteResponse> {
        self.kv().delete_range(req)
    }

    /// [`delete_range`](Store::delete_range) for async callers, as
    /// [`put_request_async`](Store::put_request_async).
    pub fn delete_range_async(
        &self,
        req: &DeleteRangeRequest,
    ) -> impl Future<Output = Result<DeleteResponse>> + Send + 'static {
        self.kv().delete_range_deferred(req).settle()
    }

    /// Runs a transaction.
    pub fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.kv().txn(txn)
    }

    /// [`txn`](Store::txn) for async callers, as
    /// [`put_request_async`](Store::put_request_async).
    pub fn txn_async(&self, txn: Txn) -> impl Future<Output = Result<TxnResponse>> + Send + 'static {
        self.kv().txn_deferred(txn).settle()
    }

    /// Compacts history below `revision`.
    pub fn compact(&self, revision: i64, options: Option<CompactionOptions>) -> Result<CompactionResponse> {
        let physical = options.unwrap_or_default().physical();
        self.kv().compact(CompactionRequest { revision, physical })
    }

    /// [`compact`](Store::compact) for async callers: it runs on a thread of its own (a
    /// compaction writes to the engine, and a physical one waits for the records to go).
    pub fn compact_async(
        &self,
        revision: i64,
        options: Option<CompactionOptions>,
    ) -> impl Future<Output = Result<CompactionResponse>> + Send + 'static {
        let shared = self.shared.clone();
        let physical = options.unwrap_or_default().physical();
        offload("etcdlite-compact", move || shared.kv().compact(CompactionRequest { revision, physical }))
    }

    /// etcd's quota guard, for a write adding about `cost` bytes (its encoded request):
    /// [`Error::NoSpace`](crate::Error::NoSpace) while the NOSPACE alarm is raised, and when
    /// the write would take the database past [`Options::quota_backend_bytes`], which also
    /// raises the alarm. The store's own calls do not check it; etcd's server, and so the
    /// [`client`](crate::client) and the etcdlite server, check it before every put, txn
    /// that puts, and lease grant. A cost of 0 always passes.
    pub fn check_quota(&self, cost: usize) -> Result<()> {
        self.shared.cluster.check_space(cost, || self.db_size().map(|s| s.total).unwrap_or(0))
    }

    /// Grants a lease of `ttl` seconds (raised to etcd's 2 s minimum). With
    /// [`LeaseGrantOptions::with_id`], under that id (`etcdserver: lease already exists` if
    /// it is taken); otherwise the store picks a positive id. A grant takes no revision.
    pub fn lease_grant(&self, ttl: i64, options: Option<LeaseGrantOptions>) -> Result<LeaseGrantResponse> {
        self.lease_grant_deferred(ttl, options).wait()
    }

    /// [`lease_grant`](Store::lease_grant) for async callers: the grant is made at once and
    /// the future resolves once it is durable, without a thread waiting meanwhile.
    pub fn lease_grant_async(
        &self,
        ttl: i64,
        options: Option<LeaseGrantOptions>,
    ) -> impl Future<Output = Result<LeaseGrantResponse>> + Send + 'static {
        self.lease_grant_deferred(ttl, options).settle()
    }

    fn lease_grant_deferred(
        &self,
        ttl: i64,
        options: Option<LeaseGrantOptions>,
    ) -> Deferred<LeaseGrantResponse> {
        let id = options.unwrap_or_default().id();
        self.shared.leases.grant(&self.shared.mvcc, ttl, id, self.shared.clock.now())
    }

    /// Revokes lease `id`, deleting every key attached to it in one revision
    /// (`etcdserver: requested lease not found` for an unknown id).
    pub fn lease_revoke(&self, id: LeaseId) -> Result<LeaseRevokeResponse> {
        self.lease_revoke_deferred(id).wait()
    }

    /// [`lease_revoke`](Store::lease_revoke) for async callers, as
    /// [`lease_grant_async`](Store::lease_grant_async).
    pub fn lease_revoke_async(
        &self,
        id: LeaseId,
    ) -> impl Future<Output = Result<LeaseRevokeResponse>> + Send + 'static {
        self.lease_revoke_deferred(id).settle()
    }

    fn lease_revoke_deferred(&self, id: LeaseId) -> Deferred<LeaseRevokeResponse> {
        self.shared.leases.revoke(&self.shared.mvcc, id, None).map(|revision| {
            let revision = revision.expect("a revoke without a deadline always happens");
            LeaseRevokeResponse { header: ResponseHeader::at(revision) }
        })
    }

    /// Renews lease `id` to its full TTL. An unknown or expired lease is `etcdserver:
    /// requested lease not found`, as etcd's lessor and clientv3's `KeepAliveOnce` report it.
    pub fn lease_keep_alive(&self, id: LeaseId) -> Result<LeaseKeepAliveResponse> {
        self.lease_keep_alive_deferred(id).wait()
    }

    /// [`lease_keep_alive`](Store::lease_keep_alive) for async callers: the lease is renewed
    /// at once; the answer comes once the writes it may have seen are durable.
    pub fn lease_keep_alive_async(
        &self,
        id: LeaseId,
    ) -> impl Future<Output = Result<LeaseKeepAliveResponse>> + Send + 'static {
        self.lease_keep_alive_deferred(id).settle()
    }

    fn lease_keep_alive_deferred(&self, id: LeaseId) -> Deferred<LeaseKeepAliveResponse> {
        let resp = self.shared.leases.keep_alive(&self.shared.mvcc, id, self.shared.clock.now());
        // The lessor runs ahead of durable state while writes wait for their sync: what was
        // read is answered once the writes it may have seen are durable.
        Deferred::new(resp, self.shared.mvcc.written())
    }

    /// The remaining and granted TTL of lease `id`, and with
    /// [`LeaseTimeToLiveOptions::with_keys`] its keys. An unknown lease is not an error: its
    /// TTL is -1, as etcd answers.
    pub fn lease_time_to_live(
        &self,
        id: LeaseId,
        options: Option<LeaseTimeToLiveOptions>,
    ) -> Result<LeaseTimeToLiveResponse> {
        self.lease_time_to_live_deferred(id, options).wait()
    }

    /// [`lease_time_to_live`](Store::lease_time_to_live) for async callers.
    pub fn lease_time_to_live_async(
        &self,
        id: LeaseId,
        options: Option<LeaseTimeToLiveOptions>,
    ) -> impl Future<Output = Result<LeaseTimeToLiveResponse>> + Send + 'static {
        self.lease_time_to_live_deferred(id, options).settle()
    }

    pub(crate) fn lease_time_to_live_deferred(
        &self,
        id: LeaseId,
        options: Option<LeaseTimeToLiveOptions>,
    ) -> Deferred<LeaseTimeToLiveResponse> {
        let keys = options.unwrap_or_default().keys();
        let resp = self.shared.leases.time_to_live(&self.shared.mvcc, id, keys, self.shared.clock.now());
        Deferred::new(Ok(resp), self.shared.mvcc.written())
    }

    /// Every live lease, soonest to expire first.
    pub fn lease_leases(&self) -> Result<LeaseLeasesResponse> {
        self.lease_leases_deferred().wait()
    }

    /// [`lease_leases`](Store::lease_leases) for async callers.
    pub fn lease_leases_async(&self) -> impl Future<Output = Result<LeaseLeasesResponse>> + Send + 'static {
        self.lease_leases_deferred().settle()
    }

    pub(crate) fn lease_leases_deferred(&self) -> Deferred<LeaseLeasesResponse> {
        let resp = self.shared.leases.leases(&self.shared.mvcc);
        Deferred::new(Ok(resp), self.shared.mvcc.written())
    }

    /// Revokes every lease that is due now. The store does this by itself (every 500 ms on
    /// the system clock, inside [`ManualClock::advance`](crate::ManualClock::advance) on a
    /// manual one); call it to expire leases at a moment of your choosing.
    pub fn expire_leases(&self) -> Result<usize> {
        self.shared.expire_due()
    }

    /// Watches `key` (or the range `options` describe): opens a watch stream with one
    /// watch on it, as the `etcd-client` crate's `watch` does: the watch's id is
    /// [`Watcher::watch_id`] and its `created` response is not on the stream, whose first
    /// response is the first batch of events (or the watch's cancellation, if its start
    /// revision is compacted).
    ///
    /// ```
    /// use etcdlite::{EventType, Options, Store};
    ///
    /// let store = Store::open(Options::memory())?;
    /// let (_watcher, stream) = store.watch("door", None)?;
    /// store.put("door", "open", None)?;
    /// store.delete("door", None)?;
    ///
    /// let opened = stream.recv().unwrap();
    /// assert_eq!(opened.events()[0].kv().value(), b"open");
    /// assert_eq!(stream.recv().unwrap().events()[0].event_type(), EventType::Delete);
    /// # Ok::<(), etcdlite::Error>(())
    /// ```
    ///
    /// Errors are those of [`Watcher::watch_request`]; then no stream is opened.
    pub fn watch(
        &self,
        key: impl Into<Vec<u8>>,
        options: Option<WatchOptions>,
    ) -> Result<(Watcher, WatchStream)> {
        let (mut watcher, stream) = self.watch_stream();
        watcher.watch_unannounced(options.unwrap_or_default().into_request(key.into()))?;
        Ok((watcher, stream))
    }

    /// How many watch streams are open, and how many watches they hold.
    pub fn watch_counts(&self) -> watch::WatchCounts {
        self.shared.watch.counts()
    }

    /// Opens a watch stream with no watch on it yet: what etcd's gRPC `Watch` call opens.
    /// Add watches with [`Watcher::watch`]; each one's `created` response comes first on
    /// the stream.
    pub fn watch_stream(&self) -> (Watcher, WatchStream) {
        watch::open(&self.shared.watch)
    }
}
