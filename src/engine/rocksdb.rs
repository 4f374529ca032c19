//! The RocksDB engine: one column family per keyspace, `WriteBatch` for atomic writes.

use std::path::Path;

use rocksdb::{
    BottommostLevelCompaction, ColumnFamily, ColumnFamilyDescriptor, CompactOptions, DBCompressionType,
    DBRawIteratorWithThreadMode, Options, ReadOptions, SnapshotWithThreadMode, WriteOptions, DB,
};

use super::dir_lock::DirLock;
use super::{
    Bounds, Direction, Engine, EngineError, EngineRead, EngineStats, Keyspace, Visitor, WriteBatch, WriteOp,
};

/// An engine over a RocksDB database directory.
pub struct RocksEngine {
    db: DB,
    /// Declared after `db`, so released after it closes.
    _lock: DirLock,
}

impl RocksEngine {
    /// Opens (creating if needed) the database at `path`. Every write reaches the operating
    /// system before it returns, so a write made with `sync` off survives the process
    /// dying, though not the machine.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, EngineError> {
        Self::open_with(path.as_ref(), false)
    }

    /// [`open`](RocksEngine::open) for a store that syncs: a write made with `sync` off
    /// stays in RocksDB's WAL buffer until the next [`sync`](Engine::sync) or synced write
    /// (which writes the whole buffer in one system call before syncing it), a WAL switch,
    /// or the buffer filling up (1 MiB). Group commit then costs one write and one
    /// fdatasync per group instead of a write per batch. Unsynced writes are lost if the
    /// process dies; on a clean close RocksDB writes the buffer out (and a store's group
    /// commit syncs it first).
    pub fn open_buffered(path: impl AsRef<Path>) -> Result<Self, EngineError> {
        Self::open_with(path.as_ref(), true)
    }

    fn open_with(path: &Path, buffered: bool) -> Result<Self, EngineError> {
        let lock = DirLock::take(path)?;
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_manual_wal_flush(buffered);
        options.set_compression_type(DBCompressionType::Lz4);
        let families = Keyspace::ALL.map(|ks| {
            let mut cf_options = Options::default();
            cf_options.set_compression_type(DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(ks.name(), cf_options)
        });
        let db = DB::open_cf_descriptors(&options, path, families).map_err(EngineError::io)?;
        Ok(RocksEngine { db, _lock: lock })
    }

    fn cf(&self, keyspace: Keyspace) -> &ColumnFamily {
        self.db.cf_handle(keyspace.name()).expect("every keyspace's column family is created on open")
    }

    fn property_sum(&self, name: &str) -> Result<u64, EngineError> {
        let mut total = 0;
        for ks in Keyspace::ALL {
            let value = self.db.property_int_value_cf(self.cf(ks), name).map_err(EngineError::io)?;
            total += value.unwrap_or(0);
        }
        Ok(total)
    }
}

fn read_options(bounds: Bounds<'_>) -> ReadOptions {
    let mut options = ReadOptions::default();
    options.set_iterate_lower_bound(bounds.start.to_vec());
    if let Some(end) = bounds.end {
        options.set_iterate_upper_bound(end.to_vec());
    }
    options
}

fn visit_raw(
    mut iter: DBRawIteratorWithThreadMode<'_, DB>,
    direction: Direction,
    visit: &mut Visitor<'_>,
) -> Result<(), EngineError> {
    match direction {
        Direction::Forward => iter.seek_to_first(),
        Direction::Reverse => iter.seek_to_last(),
    }
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        if visit(key, value).is_break() {
            return Ok(());
        }
        match direction {
            Direction::Forward => iter.next(),
            Direction::Reverse => iter.prev(),
        }
    }
    iter.status().map_err(EngineError::io)
}

impl EngineRead for RocksEngine {
    fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        let value = self.db.get_pinned_cf(self.cf(keyspace), key).map_err(EngineError::io)?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn get_with(
        &self,
        keyspace: Keyspace,
        key: &[u8],
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, EngineError> {
        let value = self.db.get_pinned_cf(self.cf(keyspace), key).map_err(EngineError::io)?;
        Ok(value.map(|v| read(&v)).is_some())
    }

    fn scan(
        &self,
        keyspace: Keyspace,
        bounds: Bounds<'_>,
        direction: Direction,
        visit: &mut Visitor<'_>,
    ) -> Result<(), EngineError> {
        if bounds.is_empty() {
            return Ok(());
        }
        let iter = self.db.raw_iterator_cf_opt(self.cf(keyspace), read_options(bounds));
        visit_raw(iter, direction, visit)
    }
}

impl Engine for RocksEngine {
    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), EngineError> {
        let mut rocks_batch = rocksdb::WriteBatch::default();
        for op in batch.into_ops() {
            match op {
                WriteOp::Put { keyspace, key, value } => rocks_batch.put_cf(self.cf(keyspace), key, value),
                WriteOp::Delete { keyspace, key } => rocks_batch.delete_cf(self.cf(keyspace), key),
            }
        }
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.db.write_opt(rocks_batch, &options).map_err(EngineError::io)
    }

    /// Syncs the write-ahead log, which holds every batch written so far.
    fn sync(&self) -> Result<(), EngineError> {
        self.db.flush_wal(true).map_err(EngineError::io)
    }

    fn snapshot(&self) -> Result<Box<dyn EngineRead + Send + Sync + '_>, EngineError> {
        Ok(Box::new(RocksSnapshot { engine: self, snapshot: self.db.snapshot() }))
    }

    fn stats(&self) -> Result<EngineStats, EngineError> {
        let on_disk = self.property_sum("rocksdb.total-sst-files-size")?;
        let in_memory = self.property_sum("rocksdb.cur-size-all-mem-tables")?;
        let live = self.property_sum("rocksdb.estimate-live-data-size")?;
        let size_bytes = on_disk + in_memory;
        Ok(EngineStats { size_bytes, size_in_use_bytes: (live + in_memory).min(size_bytes) })
    }

    /// A full manual compaction of every column family, bottommost level included, so
    /// deleted records and their tombstones are dropped from the SST files. Blocks until it
    /// is done; reads and writes go on meanwhile.
    fn defragment(&self) -> Result<(), EngineError> {
        let mut options = CompactOptions::default();
        options.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        for ks in Keyspace::ALL {
            self.db.compact_range_cf_opt(self.cf(ks), None::<&[u8]>, None::<&[u8]>, &options);
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "rocksdb"
    }
}

struct RocksSnapshot<'a> {
    engine: &'a RocksEngine,
    snapshot: SnapshotWithThreadMode<'a, DB>,
}

impl EngineRead for RocksSnapshot<'_> {
    fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        let cf = self.engine.cf(keyspace);
        let value = self.snapshot.get_pinned_cf(cf, key).map_err(EngineError::io)?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        keyspace: Keyspace,
        bounds: Bounds<'_>,
        direction: Direction,
        visit: &mut Visitor<'_>,
    ) -> Result<(), EngineError> {
        if bounds.is_empty() {
            return Ok(());
        }
        let cf = self.engine.cf(keyspace);
        let iter = self.snapshot.raw_iterator_cf_opt(cf, read_options(bounds));
        visit_raw(iter, direction, visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4 KiB that LZ4 cannot shrink (xorshift), so sizes measure records, not compression.
    fn incompressible(seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn one_put(key: &[u8]) -> WriteBatch {
        let mut batch = WriteBatch::new();
        batch.put(Keyspace::Kv, key.to_vec(), b"value".to_vec());
        batch
    }

    #[test]
    fn a_buffered_engine_keeps_unsynced_writes_readable_and_writes_them_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let engine = RocksEngine::open_buffered(dir.path()).unwrap();
        engine.write(one_put(b"synced"), false).unwrap();
        engine.sync().unwrap();
        engine.write(one_put(b"buffered"), false).unwrap();
        engine.write(one_put(b"sync write"), true).unwrap();
        engine.write(one_put(b"at close"), false).unwrap();
        assert_eq!(engine.get(Keyspace::Kv, b"at close").unwrap().as_deref(), Some(&b"value"[..]));
        drop(engine);

        let reopened = RocksEngine::open_buffered(dir.path()).unwrap();
        for key in [&b"synced"[..], b"buffered", b"sync write", b"at close"] {
            let value = reopened.get(Keyspace::Kv, key).unwrap();
            assert_eq!(value.as_deref(), Some(&b"value"[..]), "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn defragment_gives_back_the_space_of_deleted_records() {
        let dir = tempfile::tempdir().unwrap();
        let engine = RocksEngine::open(dir.path()).unwrap();
        let keys: Vec<Vec<u8>> = (0..2000u32).map(|i| i.to_be_bytes().to_vec()).collect();
        for (n, chunk) in keys.chunks(100).enumerate() {
            let mut batch = WriteBatch::new();
            for (i, key) in chunk.iter().enumerate() {
                batch.put(Keyspace::Kv, key.clone(), incompressible((n * 100 + i) as u64));
            }
            engine.write(batch, false).unwrap();
        }
        engine.db.flush_cf(engine.cf(Keyspace::Kv)).unwrap();
        let full = engine.stats().unwrap();
        assert!(full.size_bytes > 4 << 20, "{full:?}");
        let kept = engine.get(Keyspace::Kv, &keys[0]).unwrap();
        let mut batch = WriteBatch::new();
        for key in &keys[1..] {
            batch.delete(Keyspace::Kv, key.clone());
        }
        engine.write(batch, false).unwrap();

        engine.defragment().unwrap();
        let after = engine.stats().unwrap();
        assert!(after.size_bytes < full.size_bytes / 10, "{full:?} -> {after:?}");
        assert_eq!(engine.get(Keyspace::Kv, &keys[0]).unwrap(), kept);
        assert_eq!(engine.get(Keyspace::Kv, &keys[1]).unwrap(), None);
    }
}
