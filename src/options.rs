//! Options: how a store is opened, and the per-call options of its KV methods.

#[cfg(any(feature = "rocksdb", feature = "sled"))]
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Engine, EngineError, MemoryEngine};
use crate::lease::{Clock, SystemClock};
use crate::txn::request::{DeleteRangeRequest, PutRequest, RangeRequest, SortOrder, SortTarget};
use crate::txn::Limits;
use crate::watch::{WatchConfig, WatchCreateRequest, WatchFilterType};

/// Where the store keeps its data.
#[derive(Clone)]
pub(crate) enum EngineChoice {
    Memory,
    #[cfg(feature = "rocksdb")]
    RocksDb(PathBuf),
    #[cfg(feature = "sled")]
    Sled(PathBuf),
    Custom(Arc<dyn Engine>),
}

impl EngineChoice {
    /// Opens (or for the memory engine, creates) the engine, for a store that syncs its
    /// writes when `sync` is on.
    #[cfg_attr(not(feature = "rocksdb"), allow(unused_variables))]
    pub(crate) fn open(&self, sync: bool) -> Result<Arc<dyn Engine>, EngineError> {
        Ok(match self {
            EngineChoice::Memory => Arc::new(MemoryEngine::new()),
            #[cfg(feature = "rocksdb")]
            EngineChoice::RocksDb(path) if sync => Arc::new(crate::engine::RocksEngine::open_buffered(path)?),
            #[cfg(feature = "rocksdb")]
            EngineChoice::RocksDb(path) => Arc::new(crate::engine::RocksEngine::open(path)?),
            #[cfg(feature = "sled")]
            EngineChoice::Sled(path) => Arc::new(crate::engine::SledEngine::open(path)?),
            EngineChoice::Custom(engine) => engine.clone(),
        })
    }
}

/// How to open a [`Store`](crate::Store).
///
/// ```
/// use etcdlite::{Options, Store};
///
/// let store = Store::open(Options::memory().max_txn_ops(256))?;
/// # Ok::<(), etcdlite::Error>(())
/// ```
#[derive(Clone)]
pub struct Options {
    pub(crate) engine: EngineChoice,
    pub(crate) sync: bool,
    pub(crate) limits: Limits,
    pub(crate) compaction_batch_limit: usize,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) watch: WatchConfig,
    pub(crate) quota_bytes: u64,
    pub(crate) auth: crate::auth::AuthConfig,
    pub(crate) max_concurrent_snapshots: usize,
}

impl Options {
    fn with(engine: EngineChoice, sync: bool) -> Self {
        Options {
            engine,
            sync,
            limits: Limits::default(),
            compaction_batch_limit: crate::mvcc::DEFAULT_COMPACTION_BATCH_LIMIT,
            clock: Arc::new(SystemClock),
            watch: WatchConfig::default(),
            quota_bytes: crate::cluster::DEFAULT_QUOTA_BYTES,
            auth: crate::auth::AuthConfig::default(),
            max_concurrent_snapshots: crate::store::DEFAULT_MAX_CONCURRENT_SNAPSHOTS,
        }
    }

    /// An in-memory store: fast, and gone when dropped.
    pub fn memory() -> Self {
        Self::with(EngineChoice::Memory, false)
    }

    /// A store in the RocksDB database at `path` (created if missing); writes are synced.
    #[cfg(feature = "rocksdb")]
    pub fn rocksdb(path: impl Into<PathBuf>) -> Self {
        Self::with(EngineChoice::RocksDb(path.into()), true)
    }

    /// A store in the sled database at `path` (created if missing); writes are synced:
    /// sled's flush, then `fdatasync` of its log and blob files (sled 0.34's flush alone
    /// uses `sync_file_range`, which leaves the file size and the drive cache unsynced).
    #[cfg(feature = "sled")]
    pub fn sled(path: impl Into<PathBuf>) -> Self {
        Self::with(EngineChoice::Sled(path.into()), true)
    }

    /// A store over an engine of your own (or a shared one); writes are synced.
    pub fn engine(engine: Arc<dyn Engine>) -> Self {
        Self::with(EngineChoice::Custom(engine), true)
    }

    /// Whether each write is on stable storage before it is acknowledged (default: on for
    /// persistent engines). Off trades durability of the last writes for speed.
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// Largest write request, measured as etcd does (default 1.5 MiB, etcd's
    /// `--max-request-bytes`).
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_request_bytes = bytes;
        self
    }

    /// Most compares or ops per txn branch (default 128, etcd's `--max-txn-ops`).
    pub fn max_txn_ops(mut self, ops: usize) -> Self {
        self.limits.max_txn_ops = ops;
        self
    }

    /// Records removed per engine batch by physical compaction (default 1000, etcd's
    /// `--experimental-compaction-batch-limit`).
    pub fn compaction_batch_limit(mut self, records: usize) -> Self {
        self.compaction_batch_limit = records;
        self
    }

    /// The clock lease deadlines follow (default: [`SystemClock`]). Pass a
    /// [`ManualClock`](crate::ManualClock) to make leases expire exactly when a test
    /// advances it.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How often watches that asked for progress notifications get one (default 10
    /// minutes, etcd's `--experimental-watch-progress-notify-interval`). The interval
    /// follows the store's [`clock`](Options::clock). As in etcd, an interval below 100 ms
    /// is raised to 100 ms.
    pub fn watch_progress_interval(mut self, interval: Duration) -> Self {
        self.watch.progress_interval = interval.max(Duration::from_millis(100));
        self
    }

    /// How many watches one watch stream may hold (default 100,000; etcd has no limit). A
    /// create beyond it fails with `etcdserver: too many requests` (in-band, on the
    /// server, as etcd answers a failed create).
    pub fn max_watches_per_stream(mut self, watches: usize) -> Self {
        self.watch.max_watches_per_stream = watches;
        self
    }

    /// How many snapshots ([`Store::snapshot_chunks`](crate::Store::snapshot_chunks), the
    /// Snapshot RPC) stream at once (default 16; etcd has no limit). Each holds a temporary
    /// copy of the database until its reader finishes or drops it, so the cap bounds the
    /// disk that readers who never finish can take; one more is refused with
    /// `etcdserver: too many requests`.
    pub fn max_concurrent_snapshots(mut self, snapshots: usize) -> Self {
        self.max_concurrent_snapshots = snapshots;
        self
    }

    /// The space quota (default 2 GiB, etcd's `--quota-backend-bytes`): a write checked
    /// with [`Store::check_quota`](crate::Store::check_quota), as the
    /// [`client`](crate::client) and the server check every put, that would take the
    /// database past it fails with `etcdserver: mvcc: database space exceeded` and raises the
    /// NOSPACE alarm. Change it later with
    /// [`Cluster::set_quota_bytes`](crate::cluster::Cluster::set_quota_bytes).
    pub fn quota_backend_bytes(mut self, bytes: u64) -> Self {
        self.quota_bytes = bytes;
        self
    }

    /// How auth tokens are made, in etcd's `--auth-token` form: `simple` (the default:
    /// random tokens kept in memory) or `jwt,pub-key=PATH,priv-key=PATH,sign-method=ALG`
    /// (signed tokens). [`Store::open`](crate::Store::open) fails with etcd's `auth: invalid
    /// auth options` (or the JWT key errors) for one etcd would refuse.
    pub fn with_auth_token(mut self, spec: impl Into<String>) -> Self {
        self.auth.token = spec.into();
        self
    }

    /// How long a simple token lives after its last use (default 300 s, etcd's
    /// `--auth-token-ttl`).
    pub fn with_auth_token_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.auth.token_ttl = ttl;
        self
    }

    /// The bcrypt cost of password hashes (default 10, etcd's `--bcrypt-cost`; a cost
    /// outside 4..=31 means the default, as in etcd). Tests may take 4: hashing is then
    /// about a hundred times faster.
    pub fn with_bcrypt_cost(mut self, cost: u32) -> Self {
        self.auth.bcrypt_cost = cost;
        self
    }

    /// How many responses a watch stream holds for its reader before its watches fall
    /// behind and catch up from history instead (default 128, etcd's per-stream buffer).
    pub fn watch_stream_capacity(mut self, responses: usize) -> Self {
        self.watch.stream_capacity = responses.max(1);
        self
    }
}

/// The end of the range of keys that start with `key`, as etcd's clients compute it:
/// the key with its last byte below 0xff incremented and the rest cut; `"\0"` (every key
/// from `key` on) when there is no such byte. An empty key means every key.
pub(crate) fn prefix_range(key: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    if key.is_empty() {
        return (vec![0], vec![0]);
    }
    let mut end = key.clone();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return (key, end);
        }
    }
    (key, vec![0])
}

/// Which keys a get or delete covers, resolved once the key is known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum KeySpan {
    #[default]
    Key,
    Range(Vec<u8>),
    Prefix,
    FromKey,
    AllKeys,
}

impl KeySpan {
    fn resolve(self, key: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
        match self {
            KeySpan::Key => (key, Vec::new()),
            KeySpan::Range(end) => (key, end),
            KeySpan::Prefix => prefix_range(key),
            KeySpan::FromKey if key.is_empty() => (vec![0], vec![0]),
            KeySpan::FromKey => (key, vec![0]),
            KeySpan::AllKeys => (vec![0], vec![0]),
        }
    }
}

/// The builders that choose which keys an option set covers, shared by the options of
/// get, delete and watch (each has a `span: KeySpan` field).
macro_rules! key_span_builders {
    () => {
        /// Every key in `[key, end)`.
        pub fn with_range(mut self, end: impl Into<Vec<u8>>) -> Self {
            self.span = KeySpan::Range(end.into());
            self
        }

        /// Every key `>= key`.
        pub fn with_from_key(mut self) -> Self {
            self.span = KeySpan::FromKey;
            self
        }

        /// Every key that starts with `key`.
        pub fn with_prefix(mut self) -> Self {
            self.span = KeySpan::Prefix;
            self
        }

        /// Every key (the key argument is ignored).
        pub fn with_all_keys(mut self) -> Self {
            self.span = KeySpan::AllKeys;
            self
        }
    };
}

/// Options of [`Store::get`](crate::Store::get), as in the `etcd-client` crate.
///
/// ```
/// use etcdlite::{GetOptions, Options, SortOrder, SortTarget, Store};
///
/// let store = Store::open(Options::memory())?;
/// store.put("app/b", "2", None)?;
/// store.put("app/a", "1", None)?;
/// let newest_first = GetOptions::new().with_prefix().with_sort(SortTarget::Mod, SortOrder::Descend);
/// let resp = store.get("app/", Some(newest_first))?;
/// assert_eq!(resp.kvs()[0].key(), b"app/a");
/// # Ok::<(), etcdlite::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetOptions {
    span: KeySpan,
    req: RangeRequest,
}

impl GetOptions {
    /// Defaults: the key alone, at the current revision.
    pub fn new() -> Self {
        Self::default()
    }

    key_span_builders!();

    /// At most `limit` keys (0: no limit).
    pub fn with_limit(mut self, limit: i64) -> Self {
        self.req.limit = limit;
        self
    }

    /// Reads at a past revision (0: the current one).
    pub fn with_revision(mut self, revision: i64) -> Self {
        self.req.revision = revision;
        self
    }

    /// Sorts the result. Ascending by key is the order a range has anyway, so that asks
    /// for no sort (as `etcd-client` sends it, which spares the server a full read).
    pub fn with_sort(mut self, target: SortTarget, order: SortOrder) -> Self {
        self.req.sort_target = target;
        self.req.sort_order = match (target, order) {
            (SortTarget::Key, SortOrder::Ascend) => SortOrder::None,
            _ => order,
        };
        self
    }

    /// Serializable read (no effect on a single in-process store).
    pub fn with_serializable(mut self) -> Self {
        self.req.serializable = true;
        self
    }

    /// Keys without values.
    pub fn with_keys_only(mut self) -> Self {
        self.req.keys_only = true;
        self
    }

    /// Only the count.
    pub fn with_count_only(mut self) -> Self {
        self.req.count_only = true;
        self
    }

    /// Only keys modified at or after `revision`.
    pub fn with_min_mod_revision(mut self, revision: i64) -> Self {
        self.req.min_mod_revision = revision;
        self
    }

    /// Only keys modified at or before `revision`.
    pub fn with_max_mod_revision(mut self, revision: i64) -> Self {
        self.req.max_mod_revision = revision;
        self
    }

    /// Only keys created at or after `revision`.
    pub fn with_min_create_revision(mut self, revision: i64) -> Self {
        self.req.min_create_revision = revision;
        self
    }

    /// Only keys created at or before `revision`.
    pub fn with_max_create_revision(mut self, revision: i64) -> Self {
        self.req.max_create_revision = revision;
        self
    }

    /// The range request for `key`.
    pub fn into_request(self, key: Vec<u8>) -> RangeRequest {
        let (key, range_end) = self.span.resolve(key);
        RangeRequest { key, range_end, ..self.req }
    }
}

/// Options of [`Store::put`](crate::Store::put), as in the `etcd-client` crate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutOptions {
    req: PutRequest,
}

impl PutOptions {
    /// Defaults: no lease, no previous key-value.
    pub fn new() -> Self {
        Self::default()
    }

    /// Attaches the key to a lease.
    pub fn with_lease(mut self, lease: i64) -> Self {
        self.req.lease = lease;
        self
    }

    /// Returns the previous key-value.
    pub fn with_prev_key(mut self) -> Self {
        self.req.prev_kv = true;
        self
    }

    /// Keeps the current value (the key must exist; pass an empty value).
    pub fn with_ignore_value(mut self) -> Self {
        self.req.ignore_value = true;
        self
    }

    /// Keeps the current lease (the key must exist).
    pub fn with_ignore_lease(mut self) -> Self {
        self.req.ignore_lease = true;
        self
    }

    /// The put request for `key` = `value`.
    pub fn into_request(self, key: Vec<u8>, value: Vec<u8>) -> PutRequest {
        PutRequest { key, value, ..self.req }
    }
}

/// Options of [`Store::delete`](crate::Store::delete), as in the `etcd-client` crate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    span: KeySpan,
    prev_kv: bool,
}

impl DeleteOptions {
    /// Defaults: the key alone.
    pub fn new() -> Self {
        Self::default()
    }

    key_span_builders!();

    /// Returns the deleted key-values.
    pub fn with_prev_key(mut self) -> Self {
        self.prev_kv = true;
        self
    }

    /// The delete request for `key`.
    pub fn into_request(self, key: Vec<u8>) -> DeleteRangeRequest {
        let (key, range_end) = self.span.resolve(key);
        DeleteRangeRequest { key, range_end, prev_kv: self.prev_kv }
    }
}

/// Options of [`Store::watch`](crate::Store::watch), as in the `etcd-client` crate.
///
/// ```
/// use etcdlite::{Options, Store, WatchOptions};
///
/// let store = Store::open(Options::memory())?;
/// let first = store.put("jobs/1", "queued", None)?.header().revision();
/// // Every change under jobs/, history included, with the value before each change.
/// let options = WatchOptions::new().with_prefix().with_start_revision(first).with_prev_key();
/// let (_watcher, stream) = store.watch("jobs/", Some(options))?;
/// assert_eq!(stream.recv().unwrap().events()[0].kv().value(), b"queued");
/// # Ok::<(), etcdlite::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchOptions {
    span: KeySpan,
    req: WatchCreateRequest,
    fragment: bool,
}

impl WatchOptions {
    /// Defaults: the key alone, from the next revision on.
    pub fn new() -> Self {
        Self::default()
    }

    key_span_builders!();

    /// Starts at `revision`, replaying history from there (0: the next revision).
    pub fn with_start_revision(mut self, revision: i64) -> Self {
        self.req.start_revision = revision;
        self
    }

    /// Sends a progress notification each progress interval in which no event was sent.
    pub fn with_progress_notify(mut self) -> Self {
        self.req.progress_notify = true;
        self
    }

    /// Leaves out these kinds of events.
    pub fn with_filters(mut self, filters: impl Into<Vec<WatchFilterType>>) -> Self {
        self.req.filters = filters.into();
        self
    }

    /// Attaches each event's previous key-value.
    pub fn with_prev_key(mut self) -> Self {
        self.req.prev_kv = true;
        self
    }

    /// Asks the server to split responses larger than its message limit (etcd's
    /// `fragment`). An in-process watch has no message limit and sends every response
    /// whole; the etcdlite server honours it.
    pub fn with_fragment(mut self) -> Self {
        self.fragment = true;
        self
    }

    /// True when [`with_fragment`](WatchOptions::with_fragment) was asked for.
    pub fn fragment(&self) -> bool {
        self.fragment
    }

    /// Gives the watch this id on its stream (0: the stream picks).
    pub fn with_watch_id(mut self, id: i64) -> Self {
        self.req.watch_id = id;
        self
    }

    /// The create request for `key`.
    pub fn into_request(self, key: Vec<u8>) -> WatchCreateRequest {
        let (key, range_end) = self.span.resolve(key);
        WatchCreateRequest { key, range_end, ..self.req }
    }
}

/// Options of [`Store::compact`](crate::Store::compact).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionOptions {
    physical: bool,
}

impl CompactionOptions {
    /// Defaults: return once the compaction took effect, before its records are removed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits until the engine no longer holds the compacted records.
    pub fn with_physical(mut self) -> Self {
        self.physical = true;
        self
    }

    pub(crate) fn physical(&self) -> bool {
        self.physical
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_range(b"a".to_vec()).1, b"b".to_vec());
        assert_eq!(prefix_range(b"a\xff".to_vec()).1, b"b".to_vec());
        assert_eq!(prefix_range(b"\xff\xff".to_vec()).1, vec![0]);
        assert_eq!(prefix_range(Vec::new()), (vec![0], vec![0]));
    }

    #[test]
    fn from_key_of_the_empty_key_is_every_key() {
        let req = GetOptions::new().with_from_key().into_request(Vec::new());
        assert_eq!((req.key, req.range_end), (vec![0], vec![0]));
    }
}
