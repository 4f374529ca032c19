//! etcd's Maintenance service for one store: HashKV and Hash, snapshot and restore,
//! defragmentation, and the database size Status reports.

use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_core::Stream;
use sha2::{Digest, Sha256};
use tokio::sync::OwnedSemaphorePermit;

use super::{Shared, Store};
use crate::engine::{snapshot_file, EngineError};
use crate::error::{Error, Result};
use crate::options::Options;
use crate::txn::request::ResponseHeader;
use crate::worker::offload;

/// Payload bytes in each chunk of a streamed snapshot, as etcd sends them (32 KiB).
pub const SNAPSHOT_CHUNK_BYTES: usize = 32 * 1024;

/// How many snapshots a store streams at once unless
/// [`Options::max_concurrent_snapshots`](crate::Options::max_concurrent_snapshots) says
/// otherwise.
pub const DEFAULT_MAX_CONCURRENT_SNAPSHOTS: usize = 16;

/// One message of a streamed snapshot (etcd's `SnapshotResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotChunk {
    /// Bytes still to come after this chunk (0 on the last one).
    pub remaining_bytes: u64,
    /// The chunk's bytes.
    pub blob: Vec<u8>,
}

/// A snapshot streamed as etcd's Maintenance.Snapshot streams it, from
/// [`Store::snapshot_chunks`]: the [`snapshot`](Store::snapshot) payload in chunks of
/// [`SNAPSHOT_CHUNK_BYTES`], padded with zeros to whole 512-byte pages, then a last chunk
/// holding the SHA-256 of everything before it (what `etcdctl snapshot save` checks).
/// Read it as an async `Stream` or with [`blocking_next`](SnapshotChunks::blocking_next)
/// (not from an async task).
///
/// The snapshot is first written to a temporary file on a thread of its own, which then
/// ends; each chunk is read from that file (just written, so from the page cache) as the
/// reader asks for it. A reader that stops reading holds the file and a place among the
/// store's concurrent snapshots, but no thread. Dropping it ends the snapshot and frees both.
#[derive(Debug)]
pub struct SnapshotChunks {
    state: Streaming,
}

#[derive(Debug)]
enum Streaming {
    /// The snapshot is being written into its file.
    Writing(tokio::sync::oneshot::Receiver<Result<Written>>, OwnedSemaphorePermit),
    /// Chunks are being read from the file.
    Sending(Box<Sending>),
    /// Refused before it began: this error comes, then the end.
    Refused(Error),
    Done,
}

/// A snapshot in its temporary file.
#[derive(Debug)]
struct Written {
    file: std::fs::File,
    bytes: u64,
}

#[derive(Debug)]
struct Sending {
    payload: io::Chain<io::Take<std::fs::File>, io::Take<io::Repeat>>,
    sha: Sha256,
    sent: u64,
    total: u64,
    _slot: OwnedSemaphorePermit,
}

impl SnapshotChunks {
    /// The next chunk, asynchronously; `None` after the last.
    pub async fn next_chunk(&mut self) -> Option<Result<SnapshotChunk>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// The next chunk, blocking; `None` after the last.
    pub fn blocking_next(&mut self) -> Option<Result<SnapshotChunk>> {
        if matches!(self.state, Streaming::Writing(..)) {
            if let Streaming::Writing(written, slot) = std::mem::replace(&mut self.state, Streaming::Done) {
                self.wrote(written.blocking_recv(), slot);
            }
        }
        self.next_ready()
    }

    /// Moves on once the file is written (or failed to be).
    fn wrote(
        &mut self,
        written: Result<Result<Written>, tokio::sync::oneshot::error::RecvError>,
        slot: OwnedSemaphorePermit,
    ) {
        self.state = match written {
            Ok(Ok(Written { file, bytes })) => {
                let total = bytes.next_multiple_of(snapshot_file::PAGE);
                let payload = file.take(bytes).chain(io::repeat(0).take(total - bytes));
                Streaming::Sending(Box::new(Sending {
                    payload,
                    sha: Sha256::new(),
                    sent: 0,
                    total,
                    _slot: slot,
                }))
            }
            Ok(Err(e)) => Streaming::Refused(e),
            Err(_) => {
                Streaming::Refused(EngineError::io("the snapshot's thread ended without an answer").into())
            }
        };
    }

    /// The next chunk once the file is written.
    fn next_ready(&mut self) -> Option<Result<SnapshotChunk>> {
        match std::mem::replace(&mut self.state, Streaming::Done) {
            Streaming::Sending(mut sending) if sending.sent < sending.total => {
                let mut blob = vec![0u8; SNAPSHOT_CHUNK_BYTES.min((sending.total - sending.sent) as usize)];
                if let Err(e) = sending.payload.read_exact(&mut blob) {
                    return Some(Err(EngineError::io(format!("snapshot: {e}")).into()));
                }
                sending.sent += blob.len() as u64;
                sending.sha.update(&blob);
                let remaining_bytes = sending.total - sending.sent;
                self.state = Streaming::Sending(sending);
                Some(Ok(SnapshotChunk { remaining_bytes, blob }))
            }
            Streaming::Sending(sending) => {
                Some(Ok(SnapshotChunk { remaining_bytes: 0, blob: sending.sha.finalize().to_vec() }))
            }
            Streaming::Refused(e) => Some(Err(e)),
            writing @ Streaming::Writing(..) => {
                self.state = writing;
                None
            }
            Streaming::Done => None,
        }
    }
}

impl Stream for SnapshotChunks {
    type Item = Result<SnapshotChunk>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Streaming::Writing(written, _) = &mut this.state {
            let written = ready!(Pin::new(written).poll(cx));
            if let Streaming::Writing(_, slot) = std::mem::replace(&mut this.state, Streaming::Done) {
                this.wrote(written, slot);
            }
        }
        Poll::Ready(this.next_ready())
    }
}

impl Shared {
    fn hash_kv(&self, revision: i64) -> Result<HashKvResponse> {
        let hash = self.mvcc.hash_kv(revision)?;
        Ok(HashKvResponse {
            header: ResponseHeader::at(hash.current_revision),
            hash: hash.hash,
            compact_revision: hash.compact_revision,
            hash_revision: hash.revision,
        })
    }

    fn hash(&self) -> Result<u32> {
        let view = self.mvcc.durable_snapshot()?;
        Ok(snapshot_file::write(&*view, &mut std::io::sink())?.checksum)
    }

    fn defragment(&self) -> Result<()> {
        Ok(self.mvcc.engine().defragment()?)
    }
}

/// Writes a durable snapshot of `shared` into a temporary file, and rewinds it.
fn write_snapshot(shared: &Shared) -> Result<Written> {
    let io_error = |e: io::Error| Error::from(EngineError::io(format!("snapshot: {e}")));
    let mut file = tempfile::tempfile().map_err(io_error)?;
    let written = {
        let view = shared.mvcc.durable_snapshot()?;
        snapshot_file::write(&*view, &mut file)?
    };
    file.seek(SeekFrom::Start(0)).map_err(io_error)?;
    Ok(Written { file, bytes: written.bytes })
}

/// The answer to a HashKV (etcd's `HashKVResponse`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HashKvResponse {
    /// Header; `revision` is the current revision.
    pub header: ResponseHeader,
    /// The CRC-32C of the history up to `hash_revision`: what an etcd 3.5 member with the
    /// same history and compacted revision reports.
    pub hash: u32,
    /// The compacted revision the hash was computed with (-1 before any compaction).
    pub compact_revision: i64,
    /// The revision the hash covers history up to (etcd 3.6's `hash_revision`).
    pub hash_revision: i64,
}

impl HashKvResponse {
    /// The header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }
    /// The hash.
    pub fn hash(&self) -> u32 {
        self.hash
    }
    /// The compacted revision the hash was computed with.
    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }
    /// The revision the hash covers history up to.
    pub fn hash_revision(&self) -> i64 {
        self.hash_revision
    }
}

/// How much room a store takes: etcd Status's `dbSize` and `dbSizeInUse`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DbSize {
    /// Bytes the engine occupies (on disk; in memory for the memory engine).
    pub total: u64,
    /// Bytes held by live data, at most `total`; [`Store::defragment`] gives the rest back
    /// where the engine can.
    pub in_use: u64,
}

impl Store {
    /// etcd's HashKV: a CRC-32C of the history up to `revision` (0: the current revision),
    /// the same value an etcd 3.5 member with the same history and compacted revision
    /// reports, so replicas and etcd itself can be compared. History below the compacted
    /// revision counts only as far as compaction keeps it, and how far physical compaction
    /// has got makes no difference. A `revision` above the current one is
    /// [`Error::FutureRevision`], one below the compacted revision [`Error::Compacted`].
    ///
    /// ```
    /// use etcdlite::{Options, Store};
    ///
    /// let store = Store::open(Options::memory())?;
    /// store.put("a", "1", None)?;
    /// let at_2 = store.hash_kv(0)?;
    /// store.put("a", "2", None)?;
    /// assert_eq!(store.hash_kv(2)?.hash(), at_2.hash());
    /// assert_ne!(store.hash_kv(0)?.hash(), at_2.hash());
    /// assert_eq!(store.hash_kv(0)?.header().revision(), 3);
    /// # Ok::<(), etcdlite::Error>(())
    /// ```
    pub fn hash_kv(&self, revision: i64) -> Result<HashKvResponse> {
        self.shared.hash_kv(revision)
    }

    /// etcd's Hash: a CRC-32C over the contents of every keyspace, read from one consistent
    /// view. It is the checksum that ends a [`snapshot`](Store::snapshot) taken at the same
    /// moment. It changes whenever stored data changes (background compaction included)
    /// and two stores holding the same data agree on it, but it is **not** the value an etcd
    /// member reports, which hashes its bbolt file; compare [`hash_kv`](Store::hash_kv)
    /// with etcd instead.
    pub fn hash(&self) -> Result<u32> {
        self.shared.hash()
    }

    /// etcd's Snapshot: writes a consistent copy of the whole store (history, compaction
    /// state, leases) to `out` and returns the number of bytes written. It is read from the
    /// engine's snapshot, so writes made meanwhile neither wait nor tear it; with sync on, it
    /// holds only durable writes (it waits for the writes pending when it is taken). The format is
    /// etcdlite's own ([`snapshot_file`](crate::engine::snapshot_file)), not a bbolt file:
    /// load it with [`restore_snapshot`](Store::restore_snapshot), not `etcdutl`.
    ///
    /// ```
    /// use etcdlite::{Options, Store};
    ///
    /// let store = Store::open(Options::memory())?;
    /// store.put("k", "v", None)?;
    /// let mut snapshot = Vec::new();
    /// let bytes = store.snapshot(&mut snapshot)?;
    /// assert_eq!(bytes, snapshot.len() as u64);
    ///
    /// let copy = Store::restore_snapshot(Options::memory(), &mut snapshot.as_slice())?;
    /// assert_eq!(copy.current_revision(), 2);
    /// assert_eq!(copy.get("k", None)?.kvs()[0].value(), b"v");
    /// assert_eq!(copy.hash_kv(0)?, store.hash_kv(0)?);
    /// # Ok::<(), etcdlite::Error>(())
    /// ```
    pub fn snapshot(&self, out: &mut dyn Write) -> Result<u64> {
        let view = self.shared.mvcc.durable_snapshot()?;
        Ok(snapshot_file::write(&*view, out)?.bytes)
    }

    /// [`snapshot`](Store::snapshot), streamed as etcd's Snapshot RPC streams it (see
    /// [`SnapshotChunks`]). The snapshot is written on a thread of its own, into a
    /// temporary file first (so the size of what remains is known), while reads and writes
    /// go on. At most [`Options::max_concurrent_snapshots`] stream at once (each holds its
    /// file until dropped); one more yields etcd's `etcdserver: too many requests`
    /// ([`Error::TooManyRequests`]) and ends.
    ///
    /// ```
    /// use etcdlite::{Options, Store};
    ///
    /// let store = Store::open(Options::memory())?;
    /// store.put("k", "v", None)?;
    /// let mut chunks = store.snapshot_chunks();
    /// let mut file = Vec::new();
    /// while let Some(chunk) = chunks.blocking_next() {
    ///     file.extend(chunk?.blob);
    /// }
    /// let copy = Store::restore_snapshot(Options::memory(), &mut file.as_slice())?;
    /// assert_eq!(copy.get("k", None)?.kvs()[0].value(), b"v");
    /// # Ok::<(), etcdlite::Error>(())
    /// ```
    pub fn snapshot_chunks(&self) -> SnapshotChunks {
        let Ok(slot) = self.shared.snapshots.clone().try_acquire_owned() else {
            return SnapshotChunks { state: Streaming::Refused(Error::TooManyRequests) };
        };
        let (done, written) = tokio::sync::oneshot::channel();
        let shared = self.shared.clone();
        let started = std::thread::Builder::new().name("etcdlite-snapshot".into()).spawn(move || {
            let _ = done.send(write_snapshot(&shared));
        });
        match started {
            Ok(_) => SnapshotChunks { state: Streaming::Writing(written, slot) },
            Err(e) => SnapshotChunks { state: Streaming::Refused(EngineError::io(e).into()) },
        }
    }

    /// Loads a [`snapshot`](Store::snapshot) into the engine `options` describe and opens a
    /// store over it: the same revisions, history, compaction state and leases (each lease
    /// with its full TTL again, as on any open).
    ///
    /// The engine must be empty, or this fails with [`Error::RestoreTargetNotEmpty`] and
    /// changes nothing. A truncated or damaged snapshot, or one holding records no store
    /// could have written, fails with an [`Error::Engine`] corruption error, and what was
    /// loaded is removed again; should the
    /// process stop in the middle instead, a store refuses to open the half-loaded engine
    /// (its `meta` keyspace, with the schema version, is loaded last).
    pub fn restore_snapshot(options: Options, input: &mut dyn Read) -> Result<Store> {
        let engine = options.engine.open(options.sync)?;
        if !snapshot_file::is_empty(&*engine)? {
            return Err(Error::RestoreTargetNotEmpty);
        }
        // Records that load but that no store opens (a crafted or damaged snapshot with a
        // valid checksum) are removed as well: a failed restore leaves the engine empty.
        let restored = snapshot_file::load(&*engine, input, options.sync)
            .map_err(Error::from)
            .and_then(|_| Self::open_over(engine.clone(), options));
        if restored.is_err() {
            if let Err(cleanup) = snapshot_file::clear(&*engine) {
                tracing::warn!(%cleanup, "removing a failed snapshot restore's data failed");
            }
        }
        restored
    }

    /// etcd's Defragment: asks the engine to give back the space deleted data held
    /// ([`Engine::defragment`](crate::engine::Engine::defragment): a full compaction on
    /// RocksDB; nothing to do in memory; sled has no such call and reclaims space by
    /// itself). Data and revisions stay as they are; reads and writes go on meanwhile.
    pub fn defragment(&self) -> Result<()> {
        self.shared.defragment()
    }

    /// [`hash_kv`](Store::hash_kv) for async callers: it runs on a thread of its own.
    pub fn hash_kv_async(
        &self,
        revision: i64,
    ) -> impl Future<Output = Result<HashKvResponse>> + Send + 'static {
        let shared = self.shared.clone();
        offload("etcdlite-hash-kv", move || shared.hash_kv(revision))
    }

    /// [`hash`](Store::hash) for async callers: it runs on a thread of its own.
    pub fn hash_async(&self) -> impl Future<Output = Result<u32>> + Send + 'static {
        let shared = self.shared.clone();
        offload("etcdlite-hash", move || shared.hash())
    }

    /// [`defragment`](Store::defragment) for async callers: it runs on a thread of its own.
    pub fn defragment_async(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let shared = self.shared.clone();
        offload("etcdlite-defragment", move || shared.defragment())
    }

    /// The engine's size, as etcd's Status reports it (`dbSize`, `dbSizeInUse`).
    pub fn db_size(&self) -> Result<DbSize> {
        let stats = self.shared.mvcc.engine().stats()?;
        Ok(DbSize { total: stats.size_bytes, in_use: stats.size_in_use_bytes })
    }
}
