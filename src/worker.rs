//! A named background thread that does one step of work at a time and is stopped and
//! joined when its handle drops: the lease expiry check and the watch syncer.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{select, Receiver, Sender};

use crate::engine::EngineError;
use crate::error::Result;

/// Owns the thread: dropping it stops the thread and waits for its current step to end.
pub(crate) struct Worker {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts a thread that waits `first_wait` (or until `wake` receives), runs `step`, and
    /// repeats with the wait `step` returns, until `step` returns `None` or the handle drops.
    pub(crate) fn spawn(
        name: &str,
        first_wait: Duration,
        wake: Receiver<()>,
        mut step: impl FnMut() -> Option<Duration> + Send + 'static,
    ) -> Result<Worker> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut wake = wake;
                let mut wait = first_wait;
                loop {
                    select! {
                        recv(stopped) -> _ => return,
                        recv(wake) -> message => if message.is_err() {
                            // No one can wake this worker any more: it runs on its timer alone.
                            wake = crossbeam_channel::never();
                        },
                        default(wait) => {}
                    }
                    match step() {
                        Some(next) => wait = next,
                        None => return,
                    }
                }
            })
            .map_err(EngineError::io)?;
        Ok(Worker { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `call` on a thread of its own and resolves to its result, so that no async
/// executor thread waits on it: for store calls that read or write much (compaction,
/// hashes, snapshots, defragmentation). The call runs to its end even if the future is
/// dropped.
pub(crate) fn offload<T: Send + 'static>(
    name: &str,
    call: impl FnOnce() -> Result<T> + Send + 'static,
) -> impl std::future::Future<Output = Result<T>> + Send + 'static {
    let (done, result) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name(name.into()).spawn(move || {
        let _ = done.send(call());
    });
    async move {
        spawned.map_err(EngineError::io)?;
        result.await.map_err(|_| EngineError::io("a store call's thread ended without an answer"))?
    }
}
