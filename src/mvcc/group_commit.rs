//! Group commit: many writes made durable by one engine sync.
//!
//! With `sync` on, a write does not sync its own batch while it holds the writer lock, as
//! that would make every write wait for every earlier write's sync in turn. Instead it
//! writes the batch unsynced, takes a ticket (the batch's place in write order), lets the
//! next writer in, and waits for its ticket to become durable: blocking
//! ([`Durable::wait`]) or as a future ([`Durable`] implements `Future`), so an async
//! server needs no thread per write in flight. A syncer thread runs one engine sync at a
//! time, each covering every batch written before it began; the writes that arrive during
//! a sync are covered by the next. So under load one sync serves a whole group, and a lone
//! writer still costs one sync.
//!
//! When writes are concurrent (the last sync covered more than one batch, or more than one
//! is waiting), the syncer lets a group gather before syncing it: it waits about as long as
//! recent syncs took ([`Gathering`]), between [`MIN_GATHER`] and [`MAX_GATHER`]. Without
//! that wait, a fast disk ends each sync before many writers come back with their next
//! write, so groups stay small (about 3 batches per sync under 16 closed-loop writers) and
//! the syncs, each costing CPU in the kernel, take a large share of it; with it, groups
//! double and writes' tail latency falls under load. A lone writer does not wait, except
//! once right after a group of several.
//!
//! A revision is published (made current for readers, told to the commit observer) only
//! once its batch is durable, in revision order, by the syncer thread, so nothing a reader
//! sees can be lost to a crash, and a write whose waiter went away is published all the
//! same. A failed sync leaves it unknown which batches reached the disk; like etcd, which
//! stops on a failed WAL sync, the store then refuses every write
//! ([`GroupCommit::failed`]) until it is reopened.
//!
//! With `sync` off there is no thread: a commit publishes at once, under the writer lock.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::store::{Change, CommitObserver};
use crate::engine::{Engine, EngineError};
use crate::error::{Error, Result};

/// A batch's place in write order: it is durable once the durable ticket reaches it.
type Ticket = u64;

/// The longest a group gathers before its sync, however slow the disk.
const MAX_GATHER: Duration = Duration::from_millis(1);

/// Syncs quicker than this on average (a memory engine, a disk with a power-safe cache)
/// gather nothing: a sleep overshoots by the thread's timer slack, 50 µs by default, so a
/// shorter one cannot be slept, and such syncs cost too little to be worth sharing more.
const MIN_GATHER: Duration = Duration::from_micros(50);

/// When and for how long a group gathers before its sync (see the module docs).
#[derive(Default, Debug)]
struct Gathering {
    /// How many batches the last sync covered.
    last_group: Ticket,
    /// The moving average of sync durations (each new one weighs 1/8).
    recent_sync: Duration,
}

impl Gathering {
    /// How long to wait before syncing `waiting` batches: nothing for a lone writer;
    /// when writes are concurrent (the last sync covered more than one batch, or more than
    /// one waits now), as long as recent syncs took, up to [`MAX_GATHER`] (and nothing
    /// under [`MIN_GATHER`]). Waiting that long lets the writes that would have arrived
    /// during the next sync join this one, at most doubling a write's wait for the disk.
    fn wait(&self, waiting: Ticket) -> Option<Duration> {
        let concurrent = self.last_group > 1 || waiting > 1;
        (concurrent && self.recent_sync >= MIN_GATHER).then(|| self.recent_sync.min(MAX_GATHER))
    }

    /// Records a sync of `group` batches that took `took`.
    fn synced(&mut self, group: Ticket, took: Duration) {
        self.last_group = group;
        self.recent_sync = (self.recent_sync * 7 + took) / 8;
    }
}

/// The current revision and the observer: what publishing a revision changes.
pub(super) struct Publisher {
    current: AtomicI64,
    observer: OnceLock<Arc<dyn CommitObserver>>,
}

impl Publisher {
    pub(super) fn current(&self) -> i64 {
        self.current.load(Ordering::SeqCst)
    }

    /// Sets the observer, unless one is set already.
    pub(super) fn observe(&self, observer: Arc<dyn CommitObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }

    /// Makes `revision` current and tells the observer of its `changes`. Every commit
    /// passes here, one at a time, in revision order.
    pub(super) fn publish(&self, revision: i64, changes: &[Change]) {
        self.current.store(revision, Ordering::SeqCst);
        if let (Some(observer), false) = (self.observer.get(), changes.is_empty()) {
            observer.committed(revision, changes);
        }
    }
}

/// The group commit of one MVCC store (see the module docs).
pub(super) struct GroupCommit {
    shared: Arc<Shared>,
    /// The syncer thread, when `sync` is on.
    syncer: Option<JoinHandle<()>>,
}

struct Shared {
    engine: Arc<dyn Engine>,
    publisher: Publisher,
    state: Mutex<State>,
    /// Wakes the syncer: a batch was written, or the store is closing.
    work: Condvar,
    /// Wakes blocked waiters: a sync ended.
    synced: Condvar,
}

#[derive(Default)]
struct State {
    /// The ticket of the last batch written to the engine.
    written: Ticket,
    /// Every batch up to this ticket is durable, and its revision published.
    durable: Ticket,
    /// Revisions written but not yet published, in order, with their changes for the
    /// commit observer.
    pending: VecDeque<(Ticket, i64, Vec<Change>)>,
    /// Why the store refuses writes: a sync failed.
    failed: Option<EngineError>,
    /// Futures to wake when a sync ends.
    wakers: Vec<Waker>,
    /// Threads blocked in [`Durable::wait`].
    blocked: usize,
    stop: bool,
    gathering: Gathering,
}

impl GroupCommit {
    /// The group commit of a store whose current revision is `current`; with `sync`, it
    /// starts the syncer thread.
    pub(super) fn start(engine: Arc<dyn Engine>, current: i64, sync: bool) -> Result<Self> {
        let shared = Arc::new(Shared {
            engine,
            publisher: Publisher { current: AtomicI64::new(current), observer: OnceLock::new() },
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            synced: Condvar::new(),
        });
        let syncer = if sync {
            let shared = shared.clone();
            let thread = std::thread::Builder::new()
                .name("etcdlite-sync".into())
                .spawn(move || shared.run_syncer())
                .map_err(|e| EngineError::io(format!("cannot start the sync thread: {e}")))?;
            Some(thread)
        } else {
            None
        };
        Ok(GroupCommit { shared, syncer })
    }

    pub(super) fn publisher(&self) -> &Publisher {
        &self.shared.publisher
    }

    /// Callers waiting for a sync: threads blocked in [`Durable::wait`] and futures
    /// parked on a [`Durable`].
    pub(super) fn waiting(&self) -> usize {
        let state = self.shared.state.lock();
        state.blocked + state.wakers.len()
    }

    /// The sync failure that stops all writes, if there was one.
    pub(super) fn failed(&self) -> Option<EngineError> {
        self.shared.state.lock().failed.clone()
    }

    /// Records a batch just written to the engine (unsynced) that commits `revision` with
    /// `changes` (none for a batch that takes no revision), and returns what to wait on.
    /// Called with the writer lock held, so tickets follow write order.
    pub(super) fn written(&self, revision: i64, changes: Vec<Change>) -> Durable {
        let mut state = self.shared.state.lock();
        state.written += 1;
        let ticket = state.written;
        if !changes.is_empty() {
            state.pending.push_back((ticket, revision, changes));
        }
        drop(state);
        self.shared.work.notify_one();
        self.durable(ticket)
    }

    /// Waits on every batch written so far.
    pub(super) fn last(&self) -> Durable {
        let ticket = self.shared.state.lock().written;
        self.durable(ticket)
    }

    /// Nothing to wait on: a commit with `sync` off, published already.
    pub(super) fn done(&self) -> Durable {
        self.durable(0)
    }

    fn durable(&self, ticket: Ticket) -> Durable {
        Durable { shared: self.shared.clone(), ticket }
    }
}

impl Drop for GroupCommit {
    /// Stops the syncer after a last sync of whatever is unsynced.
    fn drop(&mut self) {
        self.shared.state.lock().stop = true;
        self.shared.work.notify_one();
        if let Some(thread) = self.syncer.take() {
            // The store can be dropped on the syncer thread itself, when a commit observer
            // held its last reference while publishing; that thread then ends on its own.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

impl Shared {
    fn run_syncer(&self) {
        // Should the thread die (a panicking observer or engine), no waiter may hang.
        let _failing = FailOnPanic(self);
        let mut state = self.state.lock();
        loop {
            if state.failed.is_some() || state.written == state.durable {
                if state.stop {
                    return;
                }
                self.work.wait(&mut state);
                continue;
            }
            if let Some(wait) = state.gathering.wait(state.written - state.durable).filter(|_| !state.stop) {
                // Slept off the lock, so writers go on joining the group meanwhile.
                drop(state);
                std::thread::sleep(wait);
                state = self.state.lock();
            }
            let target = state.written;
            let group = target - state.durable;
            drop(state);
            let started = Instant::now();
            let result = self.engine.sync();
            let took = started.elapsed();
            state = self.state.lock();
            state.gathering.synced(group, took);
            match result {
                Ok(()) => {
                    let mut covered = Vec::new();
                    while state.pending.front().is_some_and(|(ticket, _, _)| *ticket <= target) {
                        covered.push(state.pending.pop_front().expect("checked above"));
                    }
                    // Published with the lock released, so writers go on taking tickets;
                    // only this thread publishes, so the order holds.
                    drop(state);
                    for (_, revision, changes) in covered {
                        self.publisher.publish(revision, &changes);
                    }
                    state = self.state.lock();
                    state.durable = target;
                }
                Err(error) => {
                    tracing::error!(%error, "engine sync failed; the store refuses writes until reopened");
                    state.failed.get_or_insert(error);
                }
            }
            let wakers = std::mem::take(&mut state.wakers);
            self.synced.notify_all();
            drop(state);
            wakers.into_iter().for_each(Waker::wake);
            state = self.state.lock();
        }
    }

    /// Marks the store failed and wakes every waiter.
    fn fail(&self, error: EngineError) {
        let mut state = self.state.lock();
        state.failed.get_or_insert(error);
        let wakers = std::mem::take(&mut state.wakers);
        self.synced.notify_all();
        drop(state);
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Ready once `ticket` is durable; an error once a sync failed before it was.
    fn check(&self, state: &State, ticket: Ticket) -> Option<Result<()>> {
        if state.durable >= ticket {
            return Some(Ok(()));
        }
        state.failed.clone().map(|error| Err(Error::Engine(error)))
    }
}

/// Fails the store if the syncer thread unwinds.
struct FailOnPanic<'a>(&'a Shared);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail(EngineError::io("the sync thread panicked; the store refuses writes until reopened"));
        }
    }
}

/// A committed write that may not be durable yet: [`wait`](Durable::wait) for it, or
/// `.await` it. Its revision is published (current for readers) by the time either
/// returns `Ok`; they fail when a sync failed first, and the write's fate is then unknown.
/// Dropping it does not undo the write.
#[must_use = "a write is not durable, nor visible, until its Durable is ready"]
pub struct Durable {
    shared: Arc<Shared>,
    ticket: Ticket,
}

impl Durable {
    /// True once the write is durable and published (false after a failed sync).
    pub fn is_ready(&self) -> bool {
        self.shared.state.lock().durable >= self.ticket
    }

    /// Blocks until the write is durable and published.
    pub fn wait(self) -> Result<()> {
        let mut state = self.shared.state.lock();
        loop {
            if let Some(result) = self.shared.check(&state, self.ticket) {
                return result;
            }
            state.blocked += 1;
            self.shared.synced.wait(&mut state);
            state.blocked -= 1;
        }
    }
}

impl Future for Durable {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut state = self.shared.state.lock();
        if let Some(result) = self.shared.check(&state, self.ticket) {
            return Poll::Ready(result);
        }
        if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable").field("ticket", &self.ticket).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    use super::{Gathering, MAX_GATHER, MIN_GATHER};
    use crate::engine::{Engine, FaultyEngine, MemoryEngine};
    use crate::error::Error;
    use crate::mvcc::{KeyRange, MvccStore, RangeOptions, ReadView, DEFAULT_COMPACTION_BATCH_LIMIT};

    fn synced_store() -> (Arc<FaultyEngine>, Arc<MvccStore>) {
        let engine = Arc::new(FaultyEngine::new(Arc::new(MemoryEngine::new())));
        let store = MvccStore::open(engine.clone(), true, DEFAULT_COMPACTION_BATCH_LIMIT).unwrap();
        (engine, Arc::new(store))
    }

    fn put(store: &MvccStore, key: &str) -> Result<i64, Error> {
        let mut write = store.write();
        write.put(key.as_bytes(), b"v".to_vec(), 0);
        write.commit()
    }

    fn keys(store: &MvccStore) -> usize {
        store.read().range(KeyRange::From(b""), RangeOptions::default()).unwrap().kvs.len()
    }

    /// Polls `done` for up to ten seconds.
    fn eventually(what: &str, done: impl Fn() -> bool) {
        for _ in 0..1000 {
            if done() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        panic!("timed out waiting until {what}");
    }

    /// A store whose syncs are held, and the thread of a first put ("a", revision 2) that
    /// is waiting in its sync.
    fn a_write_in_a_held_sync() -> (Arc<FaultyEngine>, Arc<MvccStore>, thread::JoinHandle<Result<i64, Error>>)
    {
        let (engine, store) = synced_store();
        engine.hold_syncs(true);
        let first = thread::spawn({
            let store = store.clone();
            move || put(&store, "a")
        });
        eventually("the first write syncs", || engine.syncs_started() == 1);
        eventually("the first write waits for its sync", || store.sync_waiters() == 1);
        (engine, store, first)
    }

    #[test]
    fn a_group_gathers_only_when_writes_are_concurrent_and_for_about_one_sync() {
        let mut gathering = Gathering::default();
        // No sync measured yet: nothing to go by.
        assert_eq!(gathering.wait(3), None);
        gathering.synced(1, Duration::from_micros(800));
        assert_eq!(gathering.recent_sync, Duration::from_micros(100));
        assert!(gathering.recent_sync >= MIN_GATHER);
        // A lone writer syncs at once; two waiting are concurrent.
        assert_eq!(gathering.wait(1), None);
        assert_eq!(gathering.wait(2), Some(Duration::from_micros(100)));
        // So is one writer after a group of several.
        gathering.synced(4, Duration::from_micros(100));
        assert_eq!(gathering.wait(1), Some(Duration::from_micros(100)));
        // However slow the disk, a group waits at most MAX_GATHER.
        gathering.synced(2, Duration::from_secs(1));
        assert_eq!(gathering.wait(1), Some(MAX_GATHER));
        // Syncs too quick to sleep for (a memory engine's) gather nothing.
        let mut quick = Gathering::default();
        for _ in 0..100 {
            quick.synced(8, Duration::from_micros(40));
        }
        assert_eq!(quick.wait(8), None);
    }

    #[test]
    fn writes_made_during_a_sync_share_the_next_one_and_are_published_only_after_it() {
        let (engine, store, first) = a_write_in_a_held_sync();
        // The writer lock is free while the first write's sync runs: two more writes build
        // on it, and wait.
        let later: Vec<_> = ["b", "c"]
            .into_iter()
            .map(|key| {
                let store = store.clone();
                thread::spawn(move || put(&store, key))
            })
            .collect();
        eventually("both later writes are in the engine", || engine.writes_done() == 4);
        // Nothing is visible before it is durable: the schema write and no key.
        assert_eq!(store.current_revision(), 1);
        assert_eq!(keys(&store), 0);

        engine.hold_syncs(false);
        assert_eq!(first.join().unwrap().unwrap(), 2);
        let mut revisions: Vec<i64> = later.into_iter().map(|t| t.join().unwrap().unwrap()).collect();
        revisions.sort();
        assert_eq!(revisions, [3, 4]);
        assert_eq!(store.current_revision(), 4);
        assert_eq!(keys(&store), 3);
        // One sync for the first write, one for the two that queued behind it.
        assert_eq!(engine.syncs_started(), 2);
    }

    #[test]
    fn a_failed_sync_publishes_nothing_and_stops_every_later_write() {
        let (engine, store) = synced_store();
        put(&store, "before").unwrap();
        engine.fail_syncs(true);
        let err = put(&store, "lost").unwrap_err();
        assert!(err.to_string().contains("sync failed"), "{err}");
        assert_eq!(store.current_revision(), 2);
        assert_eq!(keys(&store), 1);

        // Even with the engine healed, the store does not know what reached the disk.
        engine.heal();
        let err = put(&store, "after").unwrap_err();
        assert!(err.to_string().contains("sync failed"), "{err}");
        assert!(matches!(store.compact(2), Err(Error::Engine(_))));
        assert_eq!(store.current_revision(), 2);

        // Reopened, it serves what the engine holds.
        drop(store);
        let inner: Arc<dyn Engine> = engine.inner().clone();
        let reopened = MvccStore::open(inner, true, DEFAULT_COMPACTION_BATCH_LIMIT).unwrap();
        assert_eq!(put(&reopened, "after").unwrap(), reopened.current_revision());
    }

    #[test]
    fn a_write_that_changes_nothing_waits_for_the_writes_before_it() {
        let (engine, store, first) = a_write_in_a_held_sync();
        let noop = thread::spawn({
            let store = store.clone();
            move || store.write().commit()
        });
        // It reports revision 2, so it must not return before 2 is published: it waits
        // for the same sync.
        eventually("the no-op write waits for the first write's sync", || store.sync_waiters() == 2);
        assert!(!noop.is_finished(), "a no-op write returned a revision not yet published");
        engine.hold_syncs(false);
        assert_eq!(first.join().unwrap().unwrap(), 2);
        assert_eq!(noop.join().unwrap().unwrap(), 2);
        assert_eq!(store.current_revision(), 2);
    }

    #[test]
    fn a_durable_future_is_pending_until_its_sync_and_its_write_is_published_if_dropped() {
        use std::future::Future;
        use std::pin::pin;
        use std::task::{Context, Poll, Waker};

        let (engine, store) = synced_store();
        engine.hold_syncs(true);
        let mut write = store.write();
        write.put(b"a", b"v".to_vec(), 0);
        let (revision, durable) = write.commit_deferred_with(|_| ()).unwrap();
        assert_eq!(revision, 2);
        let mut durable = pin!(durable);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(durable.as_mut().poll(&mut cx).is_pending());
        // A later write builds on the unpublished one; its waiter goes away.
        let mut write = store.write();
        write.put(b"b", b"v".to_vec(), 0);
        let (later, dropped) = write.commit_deferred_with(|_| ()).unwrap();
        assert_eq!(later, 3);
        drop(dropped);
        assert_eq!(store.current_revision(), 1);

        engine.hold_syncs(false);
        assert!(matches!(futures::executor::block_on(durable), Ok(())));
        // The syncer publishes revision 3 too, though no one waits for it.
        eventually("the dropped write is published", || store.current_revision() == 3);
        assert_eq!(keys(&store), 2);
        assert!(matches!(durable_poll_now(&store), Poll::Ready(Ok(()))));
    }

    /// Polls a no-op write's Durable once.
    fn durable_poll_now(store: &MvccStore) -> std::task::Poll<Result<(), Error>> {
        use std::future::Future;
        use std::pin::pin;
        use std::task::{Context, Waker};
        let (_, durable) = store.write().commit_deferred_with(|_| ()).unwrap();
        pin!(durable).poll(&mut Context::from_waker(Waker::noop()))
    }
}
