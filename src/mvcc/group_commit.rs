//! Group commit: many writes made durable by one engine sync.
//!
//! With `sync` on, a write does not sync its own batch while it holds the writer lock, as
//! that would make every write wait for every earlier write's sync in turn. Instead it
//! writes the batch unsynced, takes a ticket (the batch's place in write order), lets the
//! next writer in, and then waits for its ticket to be made durable. The first waiter finds
//! no sync running and runs one, which covers every batch written before it started; the
//! writers that queued up meanwhile are covered by the next. So under load one sync serves
//! a whole group, and a lone writer still costs one sync, as before.
//!
//! A revision is published (made visible to readers, told to the commit observer) only once
//! its batch is durable, and in revision order, so nothing a reader sees can be lost to a
//! crash. A failed sync leaves it unknown which batches reached the disk; like etcd, which
//! stops on a failed WAL sync, the store then refuses every write ([`GroupCommit::failed`])
//! until it is reopened.

use std::collections::VecDeque;

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::store::{Change, MvccStore};
use crate::engine::EngineError;

/// A batch's place in write order: it is durable once the durable ticket reaches it.
pub(super) type Ticket = u64;

pub(super) struct GroupCommit {
    state: Mutex<State>,
    /// Signalled whenever a sync ends.
    synced: Condvar,
}

struct State {
    /// The ticket of the last batch written to the engine.
    written: Ticket,
    /// Every batch up to this ticket is durable, and its revision published.
    durable: Ticket,
    /// A writer is running a sync now.
    syncing: bool,
    /// Revisions written but not yet published, in order, with their changes for the
    /// commit observer.
    pending: VecDeque<(Ticket, i64, Vec<Change>)>,
    /// Why the store refuses writes: a sync failed.
    failed: Option<EngineError>,
}

impl GroupCommit {
    pub(super) fn new() -> Self {
        GroupCommit {
            state: Mutex::new(State {
                written: 0,
                durable: 0,
                syncing: false,
                pending: VecDeque::new(),
                failed: None,
            }),
            synced: Condvar::new(),
        }
    }

    /// The sync failure that stops all writes, if there was one.
    pub(super) fn failed(&self) -> Option<EngineError> {
        self.state.lock().failed.clone()
    }

    /// Records a batch just written to the engine (unsynced) that commits `revision` with
    /// `changes` (none for a batch that takes no revision), and returns its ticket. Called
    /// with the writer lock held, so tickets follow write order.
    pub(super) fn written(&self, revision: i64, changes: Vec<Change>) -> Ticket {
        let mut state = self.state.lock();
        state.written += 1;
        let ticket = state.written;
        if !changes.is_empty() {
            state.pending.push_back((ticket, revision, changes));
        }
        ticket
    }

    /// The ticket of the last batch written: waiting for it waits for every write so far.
    pub(super) fn last(&self) -> Ticket {
        self.state.lock().written
    }

    /// Waits until `ticket` is durable and published, running the sync itself when none is
    /// running. Fails when a sync failed before `ticket` was durable.
    pub(super) fn wait(&self, ticket: Ticket, store: &MvccStore) -> Result<(), EngineError> {
        let mut state = self.state.lock();
        loop {
            if state.durable >= ticket {
                return Ok(());
            }
            if let Some(error) = &state.failed {
                return Err(error.clone());
            }
            if state.syncing {
                self.synced.wait(&mut state);
                continue;
            }
            state.syncing = true;
            let target = state.written;
            let result = MutexGuard::unlocked(&mut state, || store.engine().sync());
            state.syncing = false;
            match result {
                Ok(()) => publish(&mut state, target, store),
                Err(error) => {
                    tracing::error!(%error, "engine sync failed; the store refuses writes until reopened");
                    state.failed = Some(error);
                }
            }
            self.synced.notify_all();
        }
    }
}

/// Publishes every pending revision up to `target`, in order, and marks `target` durable.
fn publish(state: &mut State, target: Ticket, store: &MvccStore) {
    while state.pending.front().is_some_and(|(ticket, _, _)| *ticket <= target) {
        let (_, revision, changes) = state.pending.pop_front().expect("checked above");
        store.publish(revision, &changes);
    }
    state.durable = target;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

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

    #[test]
    fn writes_made_during_a_sync_share_the_next_one_and_are_published_only_after_it() {
        let (engine, store) = synced_store();
        engine.hold_syncs(true);
        let first = thread::spawn({
            let store = store.clone();
            move || put(&store, "a")
        });
        eventually("the first write syncs", || engine.syncs_started() == 1);
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
        let (engine, store) = synced_store();
        engine.hold_syncs(true);
        let first = thread::spawn({
            let store = store.clone();
            move || put(&store, "a")
        });
        eventually("the first write syncs", || engine.syncs_started() == 1);
        let noop = thread::spawn({
            let store = store.clone();
            move || store.write().commit()
        });
        // It reports revision 2, so it must not return before 2 is published.
        thread::sleep(Duration::from_millis(50));
        assert!(!noop.is_finished(), "a no-op write returned a revision not yet published");
        engine.hold_syncs(false);
        assert_eq!(first.join().unwrap().unwrap(), 2);
        assert_eq!(noop.join().unwrap().unwrap(), 2);
        assert_eq!(store.current_revision(), 2);
    }
}
