//! The sled engine: one tree per keyspace, `Batch` for writes to one tree and a sled
//! transaction when a batch spans several.

use std::ops::Bound;
use std::path::Path;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use sled::Transactional;

use super::dir_lock::DirLock;
use super::{
    Bounds, Direction, Engine, EngineError, EngineRead, EngineStats, Keyspace, MemoryEngine, Visitor,
    WriteBatch, WriteOp,
};

/// An engine over a sled database directory.
///
/// [`Engine::defragment`] does nothing here: sled 0.34 has no compaction call. It
/// rewrites fragmented segments by itself in the background, as it writes.
pub struct SledEngine {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    /// Writes hold it shared; taking a snapshot holds it exclusively while copying, because
    /// sled has no point-in-time read view across trees.
    snapshot_gate: RwLock<()>,
    /// What `sync` makes durable after sled's own flush.
    durable: SyncedFiles,
    /// Declared last, so released after the database closes.
    _lock: DirLock,
}

/// sled 0.34 makes a flush "stable" with `sync_file_range`, which writes the pages out but
/// neither the file's size nor the drive's cache, and writes large values into `blobs/`
/// files without any sync. After each flush this completes it: `fdatasync` of the log file
/// (`db`), of every blob file written since the last sync, and of the blob directory.
struct SyncedFiles {
    log: std::fs::File,
    blobs: std::path::PathBuf,
    /// The highest blob file (sled names them by log sequence number) already synced.
    last_blob: parking_lot::Mutex<u64>,
}

impl SyncedFiles {
    fn open(dir: &Path) -> Result<Self, EngineError> {
        let log = std::fs::File::open(dir.join("db")).map_err(EngineError::io)?;
        Ok(SyncedFiles { log, blobs: dir.join("blobs"), last_blob: parking_lot::Mutex::new(0) })
    }

    fn sync(&self) -> Result<(), EngineError> {
        self.log.sync_data().map_err(EngineError::io)?;
        let mut last_blob = self.last_blob.lock();
        let mut newest = *last_blob;
        let entries = match std::fs::read_dir(&self.blobs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(EngineError::io(e)),
        };
        for entry in entries {
            let entry = entry.map_err(EngineError::io)?;
            let Some(lsn) = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) else { continue };
            if lsn > *last_blob {
                match std::fs::File::open(entry.path()) {
                    Ok(blob) => blob.sync_data().map_err(EngineError::io)?,
                    // sled removed it meanwhile (garbage collected): nothing to keep.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(EngineError::io(e)),
                }
                newest = newest.max(lsn);
            }
        }
        std::fs::File::open(&self.blobs).and_then(|dir| dir.sync_all()).map_err(EngineError::io)?;
        *last_blob = newest;
        Ok(())
    }
}

/// How long [`SledEngine::open`] waits for a just-closed database's lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

impl SledEngine {
    /// Opens (creating if needed) the database at `path`.
    ///
    /// sled 0.34 releases its lock on the directory from a background thread that outlives
    /// the dropped database for a moment (sled issues #1234 and #1289), so opening the same
    /// path right after closing it can find the lock still held. Opening therefore waits up
    /// to [`LOCK_WAIT`] for the lock before failing.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, EngineError> {
        let dir = path.as_ref();
        let lock = DirLock::take(dir)?;
        let config = sled::Config::new().path(dir);
        let deadline = Instant::now() + LOCK_WAIT;
        let mut pause = Duration::from_millis(2);
        let db = loop {
            match config.open() {
                // sled reports a held lock only as text in an `Other` I/O error.
                Err(sled::Error::Io(e))
                    if e.to_string().starts_with("could not acquire lock") && Instant::now() < deadline =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                result => break result.map_err(EngineError::io)?,
            }
        };
        let trees = Keyspace::ALL
            .iter()
            .map(|ks| db.open_tree(ks.name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(EngineError::io)?;
        let durable = SyncedFiles::open(dir)?;
        Ok(SledEngine { db, trees, snapshot_gate: RwLock::new(()), durable, _lock: lock })
    }

    fn tree(&self, keyspace: Keyspace) -> &sled::Tree {
        &self.trees[keyspace.index()]
    }
}

/// Closing flushes, so writes made with sync off survive a clean close.
impl Drop for SledEngine {
    fn drop(&mut self) {
        if let Err(e) = self.db.flush() {
            tracing::warn!(error = %e, "flushing sled on close failed");
        }
    }
}

impl EngineRead for SledEngine {
    fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        let value = self.tree(keyspace).get(key).map_err(EngineError::io)?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn get_with(
        &self,
        keyspace: Keyspace,
        key: &[u8],
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, EngineError> {
        let value = self.tree(keyspace).get(key).map_err(EngineError::io)?;
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
        let end = bounds.end.map_or(Bound::Unbounded, Bound::Excluded);
        let range = self.tree(keyspace).range::<&[u8], _>((Bound::Included(bounds.start), end));
        match direction {
            Direction::Forward => visit_each(range, visit),
            Direction::Reverse => visit_each(range.rev(), visit),
        }
    }
}

fn visit_each(
    entries: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    visit: &mut Visitor<'_>,
) -> Result<(), EngineError> {
    for entry in entries {
        let (key, value) = entry.map_err(EngineError::io)?;
        if visit(&key, &value).is_break() {
            break;
        }
    }
    Ok(())
}

impl Engine for SledEngine {
    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), EngineError> {
        let mut batches: Vec<sled::Batch> = Keyspace::ALL.iter().map(|_| sled::Batch::default()).collect();
        let mut touched = [false; 4];
        for op in batch.into_ops() {
            match op {
                WriteOp::Put { keyspace, key, value } => {
                    touched[keyspace.index()] = true;
                    batches[keyspace.index()].insert(key, value);
                }
                WriteOp::Delete { keyspace, key } => {
                    touched[keyspace.index()] = true;
                    batches[keyspace.index()].remove(key);
                }
            }
        }
        let _gate = self.snapshot_gate.read();
        let mut used = touched.iter().enumerate().filter(|(_, t)| **t).map(|(i, _)| i);
        match (used.next(), used.next()) {
            (None, _) => return Ok(()),
            (Some(only), None) => {
                let batch = std::mem::take(&mut batches[only]);
                self.trees[only].apply_batch(batch).map_err(EngineError::io)?;
            }
            _ => {
                self.trees[..]
                    .transaction(|trees| {
                        for (tree, batch) in trees.iter().zip(&batches) {
                            tree.apply_batch(batch)?;
                        }
                        Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
                    })
                    .map_err(|e| EngineError::io(format!("{e:?}")))?;
            }
        }
        if sync {
            self.sync()?;
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), EngineError> {
        self.db.flush().map_err(EngineError::io)?;
        self.durable.sync()
    }

    /// sled offers no consistent view across trees, so a snapshot is a copy, taken while
    /// writes are held off.
    fn snapshot(&self) -> Result<Box<dyn EngineRead + Send + Sync + '_>, EngineError> {
        let _gate = self.snapshot_gate.write();
        let copy = MemoryEngine::new();
        let mut batch = WriteBatch::new();
        for ks in Keyspace::ALL {
            for entry in self.tree(ks).iter() {
                let (key, value) = entry.map_err(EngineError::io)?;
                batch.put(ks, key.to_vec(), value.to_vec());
            }
        }
        copy.write(batch, false)?;
        Ok(Box::new(copy))
    }

    fn stats(&self) -> Result<EngineStats, EngineError> {
        let size = self.db.size_on_disk().map_err(EngineError::io)?;
        Ok(EngineStats { size_bytes: size, size_in_use_bytes: size })
    }

    fn name(&self) -> &'static str {
        "sled"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_synced_write_also_syncs_the_blob_files_sled_wrote_for_large_values() {
        let dir = tempfile::tempdir().unwrap();
        let engine = SledEngine::open(dir.path()).unwrap();
        let mut batch = WriteBatch::new();
        batch.put(Keyspace::Kv, b"small".to_vec(), b"v".to_vec());
        engine.write(batch, true).unwrap();
        assert_eq!(*engine.durable.last_blob.lock(), 0, "no blob for a small value");

        let mut batch = WriteBatch::new();
        batch.put(Keyspace::Kv, b"large".to_vec(), vec![7; 1 << 20]);
        engine.write(batch, true).unwrap();
        let synced = *engine.durable.last_blob.lock();
        assert!(synced > 0, "the blob of a 1 MiB value was synced");
        let blobs: Vec<u64> = std::fs::read_dir(dir.path().join("blobs"))
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().to_str()?.parse().ok())
            .collect();
        assert!(blobs.contains(&synced), "{synced} among {blobs:?}");

        drop(engine);
        let reopened = SledEngine::open(dir.path()).unwrap();
        assert_eq!(reopened.get(Keyspace::Kv, b"large").unwrap(), Some(vec![7; 1 << 20]));
    }
}
