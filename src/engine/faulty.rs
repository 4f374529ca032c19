//! A wrapper engine that fails on command: the test kit for error paths.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::{
    Bounds, Direction, Engine, EngineError, EngineErrorKind, EngineRead, EngineStats, Keyspace, Visitor,
    WriteBatch,
};

/// Wraps an engine and injects I/O errors when told to, so tests can check that a failed
/// write changes nothing and that interrupted work resumes.
///
/// ```
/// use std::sync::Arc;
/// use etcdlite::engine::{Engine, FaultyEngine, Keyspace, MemoryEngine, WriteBatch};
///
/// let faulty = FaultyEngine::new(Arc::new(MemoryEngine::new()));
/// faulty.fail_writes_after(0);
/// let mut batch = WriteBatch::new();
/// batch.put(Keyspace::Meta, b"k".to_vec(), b"v".to_vec());
/// assert!(faulty.write(batch, true).is_err());
/// faulty.heal();
/// ```
pub struct FaultyEngine {
    inner: Arc<dyn Engine>,
    /// Writes still allowed before every write fails; `u64::MAX` means no fault is armed.
    writes_left: AtomicU64,
    fail_reads: AtomicBool,
    fail_syncs: AtomicBool,
    writes_done: AtomicU64,
    syncs_started: AtomicU64,
    /// While true, [`sync`](Engine::sync) waits (on `released`) before it syncs.
    hold_syncs: Mutex<bool>,
    released: Condvar,
}

impl FaultyEngine {
    /// Wraps `inner`; no fault is armed.
    pub fn new(inner: Arc<dyn Engine>) -> Self {
        FaultyEngine {
            inner,
            writes_left: AtomicU64::new(u64::MAX),
            fail_reads: AtomicBool::new(false),
            fail_syncs: AtomicBool::new(false),
            writes_done: AtomicU64::new(0),
            syncs_started: AtomicU64::new(0),
            hold_syncs: Mutex::new(false),
            released: Condvar::new(),
        }
    }

    /// Lets `n` more batches through, then fails every write until [`heal`](Self::heal).
    pub fn fail_writes_after(&self, n: u64) {
        self.writes_left.store(n, Ordering::SeqCst);
    }

    /// Makes every read fail (or succeed again).
    pub fn fail_reads(&self, fail: bool) {
        self.fail_reads.store(fail, Ordering::SeqCst);
    }

    /// Makes every [`sync`](Engine::sync) (and every write with `sync` on) fail, or
    /// succeed again. The writes themselves still reach the inner engine, as data written
    /// before a failed fsync may.
    pub fn fail_syncs(&self, fail: bool) {
        self.fail_syncs.store(fail, Ordering::SeqCst);
    }

    /// Makes every [`sync`](Engine::sync) wait until released with `hold_syncs(false)`:
    /// to catch writes while a sync is in progress.
    pub fn hold_syncs(&self, hold: bool) {
        *self.hold_syncs.lock() = hold;
        self.released.notify_all();
    }

    /// Disarms every fault (held syncs go on).
    pub fn heal(&self) {
        self.writes_left.store(u64::MAX, Ordering::SeqCst);
        self.fail_reads.store(false, Ordering::SeqCst);
        self.fail_syncs.store(false, Ordering::SeqCst);
        self.hold_syncs(false);
    }

    fn check_sync(&self) -> Result<(), EngineError> {
        if self.fail_syncs.load(Ordering::SeqCst) {
            return Err(EngineError::new(EngineErrorKind::Injected, "sync failed"));
        }
        Ok(())
    }

    /// Number of batches written through this wrapper so far.
    pub fn writes_done(&self) -> u64 {
        self.writes_done.load(Ordering::SeqCst)
    }

    /// Number of [`sync`](Engine::sync) calls begun so far (held ones included).
    pub fn syncs_started(&self) -> u64 {
        self.syncs_started.load(Ordering::SeqCst)
    }

    /// The wrapped engine.
    pub fn inner(&self) -> &Arc<dyn Engine> {
        &self.inner
    }

    fn check_read(&self) -> Result<(), EngineError> {
        if self.fail_reads.load(Ordering::SeqCst) {
            return Err(EngineError::new(EngineErrorKind::Injected, "read failed"));
        }
        Ok(())
    }
}

impl EngineRead for FaultyEngine {
    fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.check_read()?;
        self.inner.get(keyspace, key)
    }

    fn get_with(
        &self,
        keyspace: Keyspace,
        key: &[u8],
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, EngineError> {
        self.check_read()?;
        self.inner.get_with(keyspace, key, read)
    }

    fn scan(
        &self,
        keyspace: Keyspace,
        bounds: Bounds<'_>,
        direction: Direction,
        visit: &mut Visitor<'_>,
    ) -> Result<(), EngineError> {
        self.check_read()?;
        self.inner.scan(keyspace, bounds, direction, visit)
    }
}

impl Engine for FaultyEngine {
    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), EngineError> {
        let allowed = self
            .writes_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| match left {
                u64::MAX => Some(u64::MAX),
                0 => None,
                n => Some(n - 1),
            })
            .is_ok();
        if !allowed {
            return Err(EngineError::new(EngineErrorKind::Injected, "write failed"));
        }
        self.inner.write(batch, sync)?;
        self.writes_done.fetch_add(1, Ordering::SeqCst);
        if sync {
            self.check_sync()?;
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), EngineError> {
        self.syncs_started.fetch_add(1, Ordering::SeqCst);
        let mut held = self.hold_syncs.lock();
        while *held {
            self.released.wait(&mut held);
        }
        drop(held);
        self.check_sync()?;
        self.inner.sync()
    }

    fn snapshot(&self) -> Result<Box<dyn EngineRead + Send + Sync + '_>, EngineError> {
        self.check_read()?;
        self.inner.snapshot()
    }

    fn stats(&self) -> Result<EngineStats, EngineError> {
        self.inner.stats()
    }

    fn defragment(&self) -> Result<(), EngineError> {
        self.inner.defragment()
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}
