//! The storage seam: an ordered byte store that knows nothing about etcd.
//!
//! An [`Engine`] holds a few named [`Keyspace`]s (RocksDB column families, sled trees, a
//! `BTreeMap` each in memory). It offers point reads and ordered scans ([`EngineRead`]), an
//! atomic [`WriteBatch`] across keyspaces with a `sync` flag, a consistent read snapshot,
//! size statistics and defragmentation; [`snapshot_file`] streams every keyspace out and
//! back in. Everything etcd-specific (revisions, the key index, compaction) lives in
//! [`crate::mvcc`] above it, so any engine that passes the shared behaviour suite can carry a
//! store.
//!
//! ```
//! use etcdlite::engine::{Bounds, Direction, Engine, EngineRead, Keyspace, MemoryEngine, WriteBatch};
//! use std::ops::ControlFlow;
//!
//! let engine = MemoryEngine::new();
//! let mut batch = WriteBatch::new();
//! batch.put(Keyspace::Meta, b"a".to_vec(), b"1".to_vec());
//! batch.put(Keyspace::Meta, b"b".to_vec(), b"2".to_vec());
//! engine.write(batch, false)?;
//!
//! let mut keys = Vec::new();
//! engine.scan(Keyspace::Meta, Bounds::all(), Direction::Reverse, &mut |k, _| {
//!     keys.push(k.to_vec());
//!     ControlFlow::Continue(())
//! })?;
//! assert_eq!(keys, vec![b"b".to_vec(), b"a".to_vec()]);
//! # Ok::<(), etcdlite::engine::EngineError>(())
//! ```

#[cfg(any(feature = "rocksdb", feature = "sled"))]
mod dir_lock;
mod faulty;
mod memory;
#[cfg(feature = "rocksdb")]
mod rocksdb;
#[cfg(feature = "sled")]
mod sled;
pub mod snapshot_file;

use std::fmt;
use std::ops::ControlFlow;

#[cfg(feature = "rocksdb")]
pub use self::rocksdb::RocksEngine;
#[cfg(feature = "sled")]
pub use self::sled::SledEngine;
#[cfg(any(feature = "rocksdb", feature = "sled"))]
pub use dir_lock::LOCK_FILE;
pub use faulty::FaultyEngine;
pub use memory::MemoryEngine;

/// A named, independently ordered keyspace inside an engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Keyspace {
    /// MVCC records: revision -> key-value record.
    Kv,
    /// Store metadata: schema version, compaction progress.
    Meta,
    /// Leases and their attachments.
    Lease,
    /// Users, roles and permissions.
    Auth,
}

impl Keyspace {
    /// Every keyspace, in a fixed order; `keyspace as usize` indexes this array.
    pub const ALL: [Keyspace; 4] = [Keyspace::Kv, Keyspace::Meta, Keyspace::Lease, Keyspace::Auth];

    /// The on-disk name (RocksDB column family, sled tree).
    pub fn name(self) -> &'static str {
        match self {
            Keyspace::Kv => "key",
            Keyspace::Meta => "meta",
            Keyspace::Lease => "lease",
            Keyspace::Auth => "auth",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Half-open key bounds of a scan: `start` is included, `end` is excluded, and `end: None`
/// runs to the end of the keyspace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bounds<'a> {
    /// First key to visit (inclusive).
    pub start: &'a [u8],
    /// First key not to visit; `None` means no upper bound.
    pub end: Option<&'a [u8]>,
}

impl<'a> Bounds<'a> {
    /// Every key of the keyspace.
    pub fn all() -> Self {
        Bounds { start: &[], end: None }
    }

    /// `[start, end)`.
    pub fn new(start: &'a [u8], end: &'a [u8]) -> Self {
        Bounds { start, end: Some(end) }
    }

    /// Every key `>= start`.
    pub fn from(start: &'a [u8]) -> Self {
        Bounds { start, end: None }
    }

    /// True when no key can fall inside these bounds.
    pub fn is_empty(&self) -> bool {
        matches!(self.end, Some(end) if end <= self.start)
    }

    /// True when `key` falls inside these bounds.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start && self.end.is_none_or(|end| key < end)
    }
}

/// Scan order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Ascending key order.
    Forward,
    /// Descending key order.
    Reverse,
}

/// The callback of a scan: sees each key and value in order and says whether to go on.
pub type Visitor<'v> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'v;

/// The callback of [`try_scan`]: a [`Visitor`] that can fail, which stops the scan.
pub type TryVisitor<'v> = dyn FnMut(&[u8], &[u8]) -> Result<(), EngineError> + 'v;

/// Scans like [`EngineRead::scan`] with a visitor that can fail: the first error stops the
/// scan and is returned.
pub fn try_scan<R: EngineRead + ?Sized>(
    view: &R,
    keyspace: Keyspace,
    bounds: Bounds<'_>,
    direction: Direction,
    visit: &mut TryVisitor<'_>,
) -> Result<(), EngineError> {
    let mut failure = None;
    view.scan(keyspace, bounds, direction, &mut |key, value| match visit(key, value) {
        Ok(()) => ControlFlow::Continue(()),
        Err(error) => {
            failure = Some(error);
            ControlFlow::Break(())
        }
    })?;
    failure.map_or(Ok(()), Err)
}

/// Reads shared by an engine and its snapshots.
pub trait EngineRead {
    /// The value stored under `key`, if any.
    fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;

    /// Calls `read` with the value stored under `key`, if any, and says whether there was
    /// one. Engines that can lend the stored bytes do, so a caller that only decodes the
    /// value saves [`get`](EngineRead::get)'s copy. `read` may run under the engine's
    /// internal locks, so it must not call back into the engine.
    fn get_with(
        &self,
        keyspace: Keyspace,
        key: &[u8],
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, EngineError> {
        Ok(self.get(keyspace, key)?.map(|value| read(&value)).is_some())
    }

    /// Visits the keys inside `bounds` in `direction` order until `visit` breaks or the
    /// bounds are exhausted.
    fn scan(
        &self,
        keyspace: Keyspace,
        bounds: Bounds<'_>,
        direction: Direction,
        visit: &mut Visitor<'_>,
    ) -> Result<(), EngineError>;
}

/// An ordered byte store with atomic batches: the storage under an MVCC store.
///
/// Implementations must make a [`write`](Engine::write) atomic (all of a batch or none of
/// it, across keyspaces), durable before returning when `sync` is true, and every write
/// made so far durable on [`sync`](Engine::sync).
pub trait Engine: EngineRead + Send + Sync {
    /// Applies every operation of `batch` atomically; with `sync`, the batch is on stable
    /// storage before this returns.
    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), EngineError>;

    /// Puts every batch written before this call on stable storage, in one go: the group
    /// commit of writes made with `sync` off. May run while other threads write. Required,
    /// so that no engine acknowledges writes it has not made durable by omission; one with
    /// nothing to lose returns `Ok(())`.
    fn sync(&self) -> Result<(), EngineError>;

    /// A consistent, read-only view of every keyspace as of now; later writes do not show
    /// through it.
    fn snapshot(&self) -> Result<Box<dyn EngineRead + Send + Sync + '_>, EngineError>;

    /// Size statistics.
    fn stats(&self) -> Result<EngineStats, EngineError>;

    /// Gives the space freed by deletes back, as etcd's Defragment does for bbolt, without
    /// changing any keyspace's contents. The default does nothing: an engine that frees
    /// space as it deletes has nothing to reclaim.
    fn defragment(&self) -> Result<(), EngineError> {
        Ok(())
    }

    /// A short name for logs and benchmarks ("memory", "rocksdb", "sled").
    fn name(&self) -> &'static str;
}

/// One operation of a [`WriteBatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// Sets `key` to `value`.
    Put {
        /// Target keyspace.
        keyspace: Keyspace,
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Removes `key` (a no-op when absent).
    Delete {
        /// Target keyspace.
        keyspace: Keyspace,
        /// Key.
        key: Vec<u8>,
    },
}

/// An ordered list of writes that an engine applies atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<WriteOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `n` operations.
    pub fn with_capacity(n: usize) -> Self {
        WriteBatch { ops: Vec::with_capacity(n) }
    }

    /// Adds a put.
    pub fn put(&mut self, keyspace: Keyspace, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(WriteOp::Put { keyspace, key, value });
    }

    /// Adds a delete.
    pub fn delete(&mut self, keyspace: Keyspace, key: Vec<u8>) {
        self.ops.push(WriteOp::Delete { keyspace, key });
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations, in order.
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }

    /// Consumes the batch, yielding its operations in order.
    pub fn into_ops(self) -> Vec<WriteOp> {
        self.ops
    }
}

/// Size statistics of an engine, as etcd's Status reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Bytes the engine occupies (on disk, or in memory for the memory engine).
    pub size_bytes: u64,
    /// Bytes held by live data; at most `size_bytes`.
    pub size_in_use_bytes: u64,
}

/// What went wrong in an engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineErrorKind {
    /// An I/O or backend failure.
    Io,
    /// Stored bytes are not what the store wrote.
    Corruption,
    /// A failure injected by [`FaultyEngine`].
    Injected,
}

/// An error from a storage engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineError {
    kind: EngineErrorKind,
    message: String,
}

impl EngineError {
    /// An error of `kind` described by `message`.
    pub fn new(kind: EngineErrorKind, message: impl Into<String>) -> Self {
        EngineError { kind, message: message.into() }
    }

    /// An I/O or backend failure.
    pub fn io(message: impl fmt::Display) -> Self {
        Self::new(EngineErrorKind::Io, message.to_string())
    }

    /// The kind of failure.
    pub fn kind(&self) -> EngineErrorKind {
        self.kind
    }

    /// The description.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            EngineErrorKind::Io => "I/O error",
            EngineErrorKind::Corruption => "corruption",
            EngineErrorKind::Injected => "injected fault",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for EngineError {}
