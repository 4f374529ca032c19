//! etcd's Maintenance service for one store: HashKV and Hash, snapshot and restore,
//! defragmentation, and the database size Status reports.

use std::io::{Read, Write};

use super::Store;
use crate::engine::snapshot_file;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::txn::request::ResponseHeader;

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
        let hash = self.shared.mvcc.hash_kv(revision)?;
        Ok(HashKvResponse {
            header: ResponseHeader::at(hash.current_revision),
            hash: hash.hash,
            compact_revision: hash.compact_revision,
            hash_revision: hash.revision,
        })
    }

    /// etcd's Hash: a CRC-32C over the contents of every keyspace, read from one consistent
    /// view. It is the checksum that ends a [`snapshot`](Store::snapshot) taken at the same
    /// moment. It changes whenever stored data changes (background compaction included)
    /// and two stores holding the same data agree on it, but it is **not** the value an etcd
    /// member reports, which hashes its bbolt file; compare [`hash_kv`](Store::hash_kv)
    /// with etcd instead.
    pub fn hash(&self) -> Result<u32> {
        let view = self.shared.mvcc.durable_snapshot()?;
        Ok(snapshot_file::write(&*view, &mut std::io::sink())?.checksum)
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

    /// Loads a [`snapshot`](Store::snapshot) into the engine `options` describe and opens a
    /// store over it: the same revisions, history, compaction state and leases (each lease
    /// with its full TTL again, as on any open).
    ///
    /// The engine must be empty, or this fails with [`Error::RestoreTargetNotEmpty`] and
    /// changes nothing. A truncated or damaged snapshot fails with an
    /// [`Error::Engine`] corruption error, and what was loaded is removed again; should the
    /// process stop in the middle instead, a store refuses to open the half-loaded engine
    /// (its `meta` keyspace, with the schema version, is loaded last).
    pub fn restore_snapshot(options: Options, input: &mut dyn Read) -> Result<Store> {
        let engine = options.engine.open(options.sync)?;
        if !snapshot_file::is_empty(&*engine)? {
            return Err(Error::RestoreTargetNotEmpty);
        }
        if let Err(error) = snapshot_file::load(&*engine, input, options.sync) {
            if let Err(cleanup) = snapshot_file::clear(&*engine) {
                tracing::warn!(%cleanup, "removing a failed snapshot restore's data failed");
            }
            return Err(error.into());
        }
        Self::open_over(engine, options)
    }

    /// etcd's Defragment: asks the engine to give back the space deleted data held
    /// ([`Engine::defragment`](crate::engine::Engine::defragment): a full compaction on
    /// RocksDB; nothing to do in memory; sled has no such call and reclaims space by
    /// itself). Data and revisions stay as they are; reads and writes go on meanwhile.
    pub fn defragment(&self) -> Result<()> {
        Ok(self.shared.mvcc.engine().defragment()?)
    }

    /// The engine's size, as etcd's Status reports it (`dbSize`, `dbSizeInUse`).
    pub fn db_size(&self) -> Result<DbSize> {
        let stats = self.shared.mvcc.engine().stats()?;
        Ok(DbSize { total: stats.size_bytes, in_use: stats.size_in_use_bytes })
    }
}
