//! Physical compaction: deleting the records that a compaction made unreachable.
//!
//! Logical compaction (raising the compacted revision and trimming the index) happens under
//! the write lock in [`MvccStore::compact`](super::MvccStore::compact) and takes effect at
//! once. Deleting the records it freed is slow, so a background thread does it in batches,
//! recording the finished revision in `meta` with the last batch. A store opened over an
//! engine whose scheduled compaction is ahead of the finished one redoes the deletion
//! (idempotent) before serving.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::record;
use super::Revision;
use crate::engine::{Bounds, Direction, Engine, EngineError, Keyspace, WriteBatch};
use crate::error::{Error, Result};

/// Records deleted per engine batch when no limit is configured (etcd's default).
pub const DEFAULT_COMPACTION_BATCH_LIMIT: usize = 1000;

/// Deletes every record at or below `rev` that is not in `keep`, in batches of `limit`, then
/// records `rev` as finished. Stops early, leaving the finished mark unwritten, when `stop`
/// is raised.
pub(crate) fn delete_unreachable(
    engine: &dyn Engine,
    rev: i64,
    keep: &HashSet<Revision>,
    limit: usize,
    sync: bool,
    stop: &AtomicBool,
) -> Result<()> {
    let end = record::revision_start(rev.saturating_add(1));
    let mut start = Vec::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Err(EngineError::io("compaction interrupted: the store is closing").into());
        }
        let mut keys = Vec::with_capacity(limit.min(4096));
        engine.scan(Keyspace::Kv, Bounds::new(&start, &end), Direction::Forward, &mut |k, _| {
            keys.push(k.to_vec());
            if keys.len() == limit {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })?;
        let last_batch = keys.len() < limit;
        let next_start = keys.last().map(|k| [k.as_slice(), &[0]].concat());
        let mut batch = WriteBatch::with_capacity(keys.len() + 1);
        for key in keys {
            let (rev, _) = record::decode_key(&key)?;
            if !keep.contains(&rev) {
                batch.delete(Keyspace::Kv, key);
            }
        }
        if last_batch {
            batch.put(Keyspace::Meta, record::FINISHED_COMPACT_KEY.to_vec(), record::encode_i64(rev));
            engine.write(batch, sync)?;
            tracing::debug!(revision = rev, "finished compaction");
            return Ok(());
        }
        if !batch.is_empty() {
            engine.write(batch, false)?;
        }
        start = next_start.expect("a full batch has a last key");
    }
}

/// Waits for the physical part of one compaction.
#[must_use = "dropping it does not cancel the compaction; call wait() to block until it is done"]
pub struct CompactionDone {
    done: mpsc::Receiver<Result<()>>,
}

impl CompactionDone {
    /// Blocks until the compaction's records are deleted (or it failed, or the store closed).
    pub fn wait(self) -> Result<()> {
        self.done.recv().unwrap_or_else(|_| Err(EngineError::io("the compactor stopped").into()))
    }
}

struct Job {
    rev: i64,
    keep: HashSet<Revision>,
    done: mpsc::Sender<Result<()>>,
}

/// The background thread that runs physical compactions in order.
pub(crate) struct Compactor {
    jobs: Option<mpsc::Sender<Job>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Compactor {
    pub fn start(engine: Arc<dyn Engine>, limit: usize, sync: bool) -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("etcdlite-compactor".into())
            .spawn(move || {
                for job in queue {
                    let result =
                        delete_unreachable(&*engine, job.rev, &job.keep, limit, sync, &stopping);
                    if let Err(error) = &result {
                        tracing::warn!(revision = job.rev, %error, "physical compaction did not finish; it resumes on the next open");
                    }
                    let _ = job.done.send(result);
                }
            })
            .map_err(|e| Error::Engine(EngineError::io(format!("cannot start the compactor: {e}"))))?;
        Ok(Compactor { jobs: Some(jobs), stop, thread: Some(thread) })
    }

    pub fn schedule(&self, rev: i64, keep: HashSet<Revision>) -> CompactionDone {
        let (done, wait) = mpsc::channel();
        let job = Job { rev, keep, done };
        if let Err(mpsc::SendError(job)) = self.jobs.as_ref().expect("jobs is only taken on drop").send(job) {
            let _ = job.done.send(Err(EngineError::io("the compactor stopped").into()));
        }
        CompactionDone { done: wait }
    }
}

impl Drop for Compactor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
