//! The MVCC store: one writer at a time, readers that never wait for it.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard, RwLock};

use super::compaction::{self, CompactionDone, Compactor};
use super::group_commit::{Durable, GroupCommit};
use super::hash::{self, KvHash};
use super::index::Index;
use super::record;
use super::{KeyRange, KeyValue, RangeOptions, RangeResult, ReadView, Revision};
use crate::engine::{
    snapshot_file, try_scan, Bounds, Direction, Engine, EngineError, EngineErrorKind, EngineRead, Keyspace,
    WriteBatch,
};
use crate::error::{Error, Result};

/// The revision of a store that has never been written (etcd's initial revision).
const INITIAL_REVISION: i64 = 1;
/// How many times compaction and HashKV wait for pending writes without holding the writer
/// lock before they wait holding it.
const QUIESCE_UNLOCKED_TRIES: usize = 3;
/// The compacted revision of a store that has never been compacted.
const NEVER_COMPACTED: i64 = -1;

/// The highest revision (and version) a store opens with. Far beyond what any store
/// reaches by writing (14,000 years at ten million writes a second), and far enough below
/// `i64::MAX` that counting up from it cannot overflow: a crafted snapshot cannot bring a
/// store to the edge of its revision space.
pub const MAX_REVISION: i64 = i64::MAX >> 1;

/// An MVCC keyspace over an engine.
///
/// Writers are serialized; each [`WriteTxn`] stages its changes in the index under the next
/// revision and in one engine batch, and [`WriteTxn::commit`] publishes that revision only
/// after the batch is written. Readers pin the published revision, look revisions up in the
/// index and read records from the engine without taking the writer's lock, so a slow (or
/// fsyncing) writer never blocks them. With `sync` on, writers do not sync one by one under
/// the lock: [`group_commit`](super::group_commit) makes a whole group durable with one
/// sync, and publishes each revision once it is. Compaction raises the compacted revision
/// before it trims anything, and readers check it again after reading, so a read racing a
/// compaction either sees complete data or fails with [`Error::Compacted`].
pub struct MvccStore {
    engine: Arc<dyn Engine>,
    index: RwLock<Index>,
    /// The compacted revision.
    compacted: AtomicI64,
    /// The writer lock, holding the last revision written to the engine: ahead of the
    /// current (published) revision while writes wait for their group's sync.
    writer: Mutex<i64>,
    sync: bool,
    group: GroupCommit,
    compactor: Compactor,
}

/// Hears of every committed revision that changed keys, in revision order: the seam the
/// watch layer hangs from.
pub trait CommitObserver: Send + Sync {
    /// `revision` was published with `changes`. Calls never overlap and come in revision
    /// order, each just after `revision` became the current one; it must not block, as
    /// writers wait for it (with `sync` on, the sync thread calls it, and every write
    /// waiting for a sync waits behind it).
    fn committed(&self, revision: i64, changes: &[Change]);
}

impl MvccStore {
    /// Opens the store kept in `engine`: rebuilds the index from the stored records and
    /// finishes a compaction that a crash interrupted. With `sync`, a commit is durable
    /// before it is published (before [`WriteTxn::commit`] returns, and before the
    /// [`Durable`] of [`WriteTxn::commit_deferred_with`] is ready).
    /// `compaction_batch_limit` is the number of records physical compaction deletes per
    /// engine batch.
    pub fn open(engine: Arc<dyn Engine>, sync: bool, compaction_batch_limit: usize) -> Result<Self> {
        Self::open_visiting(engine, sync, compaction_batch_limit, &mut |_, _| ())
    }

    /// [`open`](MvccStore::open), showing `visit` every stored change in revision order
    /// (the key-value, and true for a delete) as the index is rebuilt, so that a layer
    /// above can rebuild its own state in the same pass (the lessor, which keys carry which
    /// lease).
    pub fn open_visiting(
        engine: Arc<dyn Engine>,
        sync: bool,
        compaction_batch_limit: usize,
        visit: &mut dyn FnMut(&KeyValue, bool),
    ) -> Result<Self> {
        check_schema(&*engine, sync)?;
        let (index, last_main) = restore_index(&*engine, visit)?;
        let finished = read_meta(&*engine, record::FINISHED_COMPACT_KEY)?;
        let scheduled = read_meta(&*engine, record::SCHEDULED_COMPACT_KEY)?;
        let compacted = finished.unwrap_or(NEVER_COMPACTED);
        let unfinished = scheduled.filter(|&s| s > compacted);
        let compacted = unfinished.unwrap_or(compacted);
        for rev in [finished, scheduled].into_iter().flatten() {
            if !(NEVER_COMPACTED..=MAX_REVISION).contains(&rev) {
                return Err(record::corrupt(format!("compacted revision {rev} is out of range")).into());
            }
        }
        // Compaction never lowers the revision, even when it removed the newest records
        // of deleted keys (etcd issue 17780).
        let current = last_main.max(compacted).max(INITIAL_REVISION);
        let limit = compaction_batch_limit.max(1);
        let store = MvccStore {
            compactor: Compactor::start(engine.clone(), limit, sync)?,
            group: GroupCommit::start(engine.clone(), current, sync)?,
            engine,
            index: RwLock::new(index),
            compacted: AtomicI64::new(compacted),
            writer: Mutex::new(current),
            sync,
        };
        if let Some(rev) = unfinished {
            tracing::info!(revision = rev, "resuming an interrupted compaction");
            let keep = store.index.write().compact(rev);
            let stop = AtomicBool::new(false);
            compaction::delete_unreachable(&*store.engine, rev, &keep, limit, sync, &stop)?;
        }
        Ok(store)
    }

    /// Makes `observer` hear of every commit from now on. A store has at most one observer;
    /// a second call is refused and returns false.
    pub fn observe(&self, observer: Arc<dyn CommitObserver>) -> bool {
        // After a failed sync no write is published again: nothing to wait for.
        let _writer = self.quiesce();
        self.group.publisher().observe(observer)
    }

    /// Takes the writer lock with every write before it published, so that the current
    /// revision is the last one written until the lock is released. It first waits for
    /// pending writes without the lock, so that writers (possibly async tasks) do not wait
    /// behind a sync; only if writes keep coming does it wait holding the lock. Fails when
    /// an engine sync failed (the store then refuses writes).
    fn quiesce(&self) -> Result<MutexGuard<'_, i64>> {
        for _ in 0..QUIESCE_UNLOCKED_TRIES {
            let pending = {
                let writer = self.writer.lock();
                let pending = self.group.last();
                if pending.is_ready() {
                    return Ok(writer);
                }
                pending
            };
            pending.wait()?;
        }
        let writer = self.writer.lock();
        self.group.last().wait()?;
        Ok(writer)
    }

    /// Every write made so far: waiting on it waits until all of them are durable and
    /// published. Ready at once with `sync` off. A write whose `on_commit` has run but which
    /// has not taken its place yet (it holds the writer lock) is not included; see
    /// [`written`](MvccStore::written).
    pub fn pending(&self) -> Durable {
        self.group.last()
    }

    /// [`pending`](MvccStore::pending), taken under the writer lock, so that it covers
    /// every write whose effects on other layers (a lessor change in `on_commit`) could be
    /// seen before the call. Read such state first, then wait on this.
    pub fn written(&self) -> Durable {
        let _writer = self.writer.lock();
        self.group.last()
    }

    /// A consistent view of the engine holding only durable writes: taken between writes,
    /// then waited on until every write it holds is durable. For snapshots and hashes, so
    /// that they never carry a write that a failed sync could still lose.
    pub fn durable_snapshot(&self) -> Result<Box<dyn EngineRead + Send + Sync + '_>> {
        let (view, pending) = {
            let _writer = self.writer.lock();
            (self.engine.snapshot()?, self.group.last())
        };
        pending.wait()?;
        Ok(view)
    }

    /// Visits every change with a main revision in `from..=to`, in revision order. Fails
    /// with [`Error::Compacted`] when `from` is below the compacted revision, before or
    /// during the read (what was read may then be incomplete). `to` must be committed.
    pub fn history(&self, from: i64, to: i64, visit: &mut dyn FnMut(Revision, Change)) -> Result<()> {
        self.check_not_compacted(from)?;
        let (start, end) = (record::revision_start(from), record::revision_start(to.saturating_add(1)));
        let bounds = Bounds { start: &start, end: Some(&end) };
        try_scan(&*self.engine, Keyspace::Kv, bounds, Direction::Forward, &mut |key, value| {
            let (rev, tombstone) = record::decode_key(key)?;
            let mut kv = record::decode_value(value)?;
            if tombstone {
                kv.mod_revision = rev.main;
            }
            visit(rev, Change { kv: Arc::new(kv), tombstone });
            Ok(())
        })?;
        self.check_not_compacted(from)
    }

    /// How many callers wait for a sync right now (blocked threads and parked futures): a
    /// gauge of group commit, and how a test knows a caller is waiting for a sync without
    /// sleeping.
    pub fn sync_waiters(&self) -> usize {
        self.group.waiting()
    }

    /// The sync failure that stopped every write, if one did: the store then refuses
    /// writes until it is reopened.
    pub fn failure(&self) -> Option<EngineError> {
        self.group.failed()
    }

    /// The engine under this store.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// The last committed revision (1 for an empty store).
    pub fn current_revision(&self) -> i64 {
        self.group.publisher().current()
    }

    /// The compacted revision (-1 before any compaction).
    pub fn compacted_revision(&self) -> i64 {
        self.compacted.load(Ordering::SeqCst)
    }

    /// A [`Durable`] that is ready at once: for a request that wrote nothing.
    pub fn settled(&self) -> Durable {
        self.group.done()
    }

    /// A read view pinned at the current revision.
    pub fn read(&self) -> ReadTxn<'_> {
        ReadTxn { store: self, first: self.compacted_revision(), rev: self.current_revision() }
    }

    /// Starts the next write; blocks while another write stages its changes, and while a
    /// compaction or HashKV holds the lock (which, under a steady stream of writes, can
    /// last one sync). It does not wait for earlier writes' syncs: it builds on them.
    pub fn write(&self) -> WriteTxn<'_> {
        let guard = self.writer.lock();
        WriteTxn {
            store: self,
            begin: *guard,
            writer: Some(guard),
            first: self.compacted_revision(),
            changes: Vec::new(),
            batch: WriteBatch::new(),
            finished: false,
        }
    }

    /// Compacts history at `rev`: reads below it fail from now on, and the records only
    /// they could see are deleted in the background; [`CompactionDone::wait`] waits for that.
    pub fn compact(&self, rev: i64) -> Result<CompactionDone> {
        let _writer = self.quiesce()?;
        if rev <= self.compacted_revision() {
            return Err(Error::Compacted);
        }
        if rev > self.current_revision() {
            return Err(Error::FutureRevision);
        }
        let mut batch = WriteBatch::new();
        batch.put(Keyspace::Meta, record::SCHEDULED_COMPACT_KEY.to_vec(), record::encode_i64(rev));
        self.engine.write(batch, self.sync)?;
        self.compacted.store(rev, Ordering::SeqCst);
        let keep = self.index.write().compact(rev);
        Ok(self.compactor.schedule(rev, keep))
    }

    /// etcd's `HashByRev`: the hash of the history up to `rev` (0: the current revision),
    /// equal to what an etcd 3.5 member with the same history and compacted revision
    /// reports ([`hash`](super::hash) tells how). As in etcd, `rev` above the current
    /// revision is [`Error::FutureRevision`], `rev` at or below the compacted revision
    /// [`Error::Compacted`] (checked against etcd 3.4.23 and 3.5.1), and a negative `rev`
    /// hashes no record.
    pub fn hash_kv(&self, rev: i64) -> Result<KvHash> {
        // The revisions, the index and the engine view are taken together under the writer
        // lock, so no commit or compaction comes between them; the hashing itself runs on
        // the view, with the lock released.
        let (current, compacted, target, kept, view) = {
            let _writer = self.quiesce()?;
            let (current, compacted) = (self.current_revision(), self.compacted_revision());
            if rev > 0 && rev <= compacted {
                return Err(Error::Compacted);
            }
            if rev > current {
                return Err(Error::FutureRevision);
            }
            let target = if rev == 0 { current } else { rev };
            let kept = {
                let index = self.index.read();
                let keep = index.hash_keep(target);
                // etcd filters by `Keep` only when it holds something.
                if keep.is_empty() {
                    index.retained_up_to(compacted)
                } else {
                    keep
                }
            };
            (current, compacted, target, kept, self.engine.snapshot()?)
        };
        let hash = hash::hash_records(&*view, target, compacted, &kept)?;
        Ok(KvHash { hash, compact_revision: compacted, revision: target, current_revision: current })
    }

    fn check_not_compacted(&self, rev: i64) -> Result<()> {
        if rev < self.compacted_revision() {
            return Err(Error::Compacted);
        }
        Ok(())
    }

    /// etcd's `rangeKeys`: reads `range` for a view at `view_rev`; `staged` holds the
    /// changes of a write txn under main revision `view_rev`.
    fn range_keys(
        &self,
        range: KeyRange<'_>,
        options: RangeOptions,
        view_rev: i64,
        staged: &[Change],
    ) -> Result<RangeResult> {
        if options.revision > view_rev {
            return Err(Error::FutureRevision);
        }
        let rev = if options.revision <= 0 { view_rev } else { options.revision };
        self.check_not_compacted(rev)?;
        if options.count_only {
            let count = self.index.read().count(range, rev);
            self.check_not_compacted(rev)?;
            return Ok(RangeResult { kvs: Vec::new(), count, revision: view_rev });
        }
        if let KeyRange::Key(key) = range {
            // One key (a get): whatever the limit, the key alone or nothing, found with one
            // lookup and no list of revisions.
            let found = self.index.read().visible(key, rev);
            let kvs = match found {
                Some(r) => vec![self.fetch(r, rev, view_rev, staged)?],
                None => Vec::new(),
            };
            self.check_not_compacted(rev)?;
            return Ok(RangeResult { count: kvs.len(), kvs, revision: view_rev });
        }
        let limit = usize::try_from(options.limit).unwrap_or(0);
        let (revs, count) = self.index.read().revisions(range, rev, limit);
        let kvs =
            revs.into_iter().map(|r| self.fetch(r, rev, view_rev, staged)).collect::<Result<Vec<_>>>()?;
        // A compaction past `rev` that started after the checks above may have removed
        // what the index pointed at: the read is then a read of compacted history.
        self.check_not_compacted(rev)?;
        Ok(RangeResult { kvs, count, revision: view_rev })
    }

    fn fetch(&self, rev: Revision, read_rev: i64, view_rev: i64, staged: &[Change]) -> Result<KeyValue> {
        if rev.main == view_rev && !staged.is_empty() {
            let change = usize::try_from(rev.sub).ok().and_then(|i| staged.get(i));
            return Ok(KeyValue::clone(&change.expect("the index only holds staged changes of this txn").kv));
        }
        let mut decoded = None;
        let key = record::put_key(rev);
        self.engine.get_with(Keyspace::Kv, &key, &mut |bytes| decoded = Some(record::decode_value(bytes)))?;
        match decoded {
            Some(kv) => Ok(kv?),
            None => {
                self.check_not_compacted(read_rev)?;
                Err(EngineError::new(
                    EngineErrorKind::Corruption,
                    format!("the index points at revision {rev}, which the engine does not hold"),
                )
                .into())
            }
        }
    }
}

/// A change made by a write: the key-value written, or for a delete the key and the
/// delete's revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The key-value a put wrote; for a delete, the key and `mod_revision` alone. Shared:
    /// the watch hub hands this one allocation to every watcher of the key (as each
    /// [`Event`](crate::Event)'s `kv`), so a large value is never copied per watcher.
    pub kv: Arc<KeyValue>,
    /// True for a delete.
    pub tombstone: bool,
}

/// A read view pinned at one revision.
pub struct ReadTxn<'a> {
    store: &'a MvccStore,
    first: i64,
    rev: i64,
}

impl ReadView for ReadTxn<'_> {
    fn revision(&self) -> i64 {
        self.rev
    }

    fn first_revision(&self) -> i64 {
        self.first
    }

    fn range(&self, range: KeyRange<'_>, options: RangeOptions) -> Result<RangeResult> {
        self.store.range_keys(range, options, self.rev, &[])
    }
}

/// One write request in progress: every change it makes shares one new revision. Reads
/// through it see its own changes. Dropping it without [`commit`](WriteTxn::commit) undoes
/// them.
pub struct WriteTxn<'a> {
    store: &'a MvccStore,
    /// Held until the write is staged in the engine (until commit, or drop).
    writer: Option<MutexGuard<'a, i64>>,
    begin: i64,
    first: i64,
    changes: Vec<Change>,
    batch: WriteBatch,
    finished: bool,
}

impl WriteTxn<'_> {
    /// The revision this write will commit.
    fn next(&self) -> i64 {
        self.begin + 1
    }

    fn next_sub(&self) -> Revision {
        Revision::new(self.next(), self.changes.len() as i64)
    }

    /// True once the write has changed something (and so will take a new revision).
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// Puts `key`; returns the revision the write will commit.
    pub fn put(&mut self, key: &[u8], value: Vec<u8>, lease: i64) -> i64 {
        let rev = self.next_sub();
        let (create_revision, version) = self.store.index.write().put_next(key, rev);
        let kv =
            KeyValue { key: key.to_vec(), create_revision, mod_revision: rev.main, version, value, lease };
        self.batch.put(Keyspace::Kv, record::encode_key(rev, false), record::encode_value(&kv));
        self.changes.push(Change { kv: Arc::new(kv), tombstone: false });
        rev.main
    }

    /// Deletes the keys live in `range`, in key order; returns how many there were and the
    /// revision of the write (the current one when nothing has changed yet).
    pub fn delete_range(&mut self, range: KeyRange<'_>) -> (i64, i64) {
        let keys = self.store.index.read().keys(range, self.revision());
        if !keys.is_empty() {
            let mut index = self.store.index.write();
            for key in &keys {
                let rev = self.next_sub();
                self.batch.put(Keyspace::Kv, record::encode_key(rev, true), record::encode_tombstone(key));
                index.tombstone(key, rev);
                let kv = KeyValue { key: key.clone(), mod_revision: rev.main, ..Default::default() };
                self.changes.push(Change { kv: Arc::new(kv), tombstone: true });
            }
        }
        (keys.len() as i64, self.revision())
    }

    /// Stages a write to another keyspace than `kv` (a lease record, say), committed in the
    /// same engine batch as the write's changes. It takes no revision: a write that stages
    /// only these commits without changing the current revision.
    pub fn stage(&mut self, keyspace: Keyspace, key: Vec<u8>, value: Option<Vec<u8>>) {
        assert!(keyspace != Keyspace::Kv, "kv records are written through put and delete_range");
        match value {
            Some(value) => self.batch.put(keyspace, key, value),
            None => self.batch.delete(keyspace, key),
        }
    }

    /// Writes the staged changes to the engine and publishes their revision, which it
    /// returns (or the unchanged current revision when nothing changed). On an engine write
    /// error nothing is published and the index is restored. When the group's sync fails
    /// instead, the revision is never published and the store refuses writes from then on.
    pub fn commit(self) -> Result<i64> {
        self.commit_with(|_| ())
    }

    /// [`commit`](WriteTxn::commit), calling `on_commit` with the changes while the writer
    /// lock is still held, so no other write can come between the two (the lease layer
    /// tracks which keys carry which lease this way). Not called when the engine write
    /// fails; with `sync` on it is called before the group's sync, so a failed sync (which
    /// stops all writes) comes after it.
    pub fn commit_with(self, on_commit: impl FnOnce(&[Change])) -> Result<i64> {
        let (revision, durable) = self.commit_deferred_with(on_commit)?;
        durable.wait()?;
        Ok(revision)
    }

    /// [`commit_with`](WriteTxn::commit_with) without the wait: returns once the write is
    /// in the engine and the writer lock released, with the revision it commits and the
    /// [`Durable`] to wait on (blocking or as a future) before acknowledging it. Until
    /// then the revision is not published, though later writes build on it.
    pub fn commit_deferred_with(mut self, on_commit: impl FnOnce(&[Change])) -> Result<(i64, Durable)> {
        let store = self.store;
        let revision = self.revision();
        if let Some(error) = store.group.failed() {
            self.rollback();
            return Err(error.into());
        }
        let wrote = !self.batch.is_empty();
        if wrote {
            let batch = std::mem::take(&mut self.batch);
            // With `sync` on, the group's sync makes it durable, after the lock is released.
            if let Err(error) = store.engine.write(batch, false) {
                self.rollback();
                return Err(error.into());
            }
        }
        self.finished = true;
        let mut writer = self.writer.take().expect("held until commit");
        *writer = revision;
        if !store.sync {
            // The layers above first (the lessor attaches the keys), then readers see it.
            on_commit(&self.changes);
            store.group.publisher().publish(revision, &self.changes);
            return Ok((revision, store.group.done()));
        }
        on_commit(&self.changes);
        let changes = std::mem::take(&mut self.changes);
        // A write that wrote nothing still waits for the writes before it, whose revision
        // it reports.
        let durable = if wrote { store.group.written(revision, changes) } else { store.group.last() };
        Ok((revision, durable))
    }

    /// Drops the write, changing nothing, and returns what an answer given from it must
    /// wait for: the writes it read, which may not be durable yet. A request refused on
    /// what it read (a failed compare of a lease, a missing key) waits for this before
    /// answering, so that no one hears of state that a crash could still undo.
    pub fn abandon(self) -> Durable {
        let pending = self.store.pending();
        drop(self);
        pending
    }

    fn rollback(&mut self) {
        if !self.changes.is_empty() {
            let keys = self.changes.iter().map(|c| c.kv.key.as_slice());
            self.store.index.write().rollback_after(keys, self.begin);
            self.changes.clear();
        }
        self.finished = true;
    }
}

impl ReadView for WriteTxn<'_> {
    fn revision(&self) -> i64 {
        if self.changes.is_empty() {
            self.begin
        } else {
            self.next()
        }
    }

    fn first_revision(&self) -> i64 {
        self.first
    }

    fn range(&self, range: KeyRange<'_>, options: RangeOptions) -> Result<RangeResult> {
        self.store.range_keys(range, options, self.revision(), &self.changes)
    }
}

impl Drop for WriteTxn<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.rollback();
        }
    }
}

fn check_schema(engine: &dyn Engine, sync: bool) -> Result<()> {
    match engine.get(Keyspace::Meta, record::SCHEMA_VERSION_KEY)? {
        Some(bytes) => {
            let version = record::decode_i64(&bytes)?;
            if version != record::SCHEMA_VERSION as i64 {
                return Err(EngineError::new(
                    EngineErrorKind::Corruption,
                    format!(
                        "unsupported schema version {version}; this build reads version {}",
                        record::SCHEMA_VERSION
                    ),
                )
                .into());
            }
            Ok(())
        }
        None => {
            // A store writes its schema version before anything else, and a snapshot restore
            // writes the `meta` keyspace last: data without it is a restore that never
            // finished (or not a store's data at all), not something to serve.
            if !snapshot_file::is_empty(engine)? {
                return Err(EngineError::new(
                    EngineErrorKind::Corruption,
                    "the engine holds data but no schema version: an unfinished snapshot restore?",
                )
                .into());
            }
            let mut batch = WriteBatch::new();
            batch.put(
                Keyspace::Meta,
                record::SCHEMA_VERSION_KEY.to_vec(),
                record::encode_i64(record::SCHEMA_VERSION as i64),
            );
            Ok(engine.write(batch, sync)?)
        }
    }
}

fn read_meta(engine: &dyn Engine, key: &[u8]) -> Result<Option<i64>> {
    match engine.get(Keyspace::Meta, key)? {
        Some(bytes) => Ok(Some(record::decode_i64(&bytes)?)),
        None => Ok(None),
    }
}

/// Refuses a record no sequence of writes could have stored (from a damaged or crafted
/// snapshot), before the index counts on it: revisions from 1 to [`MAX_REVISION`], a put
/// created at or before its own revision, modified at it (reads return the stored value's
/// revisions, which must agree with where it is stored), with a version from 1 up, and a key.
fn check_record(rev: Revision, tombstone: bool, kv: &KeyValue) -> std::result::Result<(), EngineError> {
    let valid = (1..=MAX_REVISION).contains(&rev.main)
        && (0..=MAX_REVISION).contains(&rev.sub)
        && !kv.key.is_empty()
        && (tombstone
            || ((1..=rev.main).contains(&kv.create_revision)
                && kv.mod_revision == rev.main
                && (1..=MAX_REVISION).contains(&kv.version)));
    if valid {
        Ok(())
    } else {
        Err(record::corrupt(format!("record at revision {rev:?} is out of range: {kv:?}")))
    }
}

/// Rebuilds the index from every stored record, showing each to `visit`; returns it with
/// the highest main revision.
fn restore_index(engine: &dyn Engine, visit: &mut dyn FnMut(&KeyValue, bool)) -> Result<(Index, i64)> {
    let mut index = Index::default();
    let mut last_main = 0;
    try_scan(engine, Keyspace::Kv, Bounds::all(), Direction::Forward, &mut |key, value| {
        let (rev, tombstone) = record::decode_key(key)?;
        let kv = record::decode_value(value)?;
        check_record(rev, tombstone, &kv)?;
        if tombstone {
            index.tombstone(&kv.key, rev);
        } else {
            index.put(&kv.key, rev, kv.create_revision, kv.version);
        }
        visit(&kv, tombstone);
        last_main = rev.main;
        Ok(())
    })?;
    index.shrink_to_fit();
    Ok((index, last_main))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::engine::{MemoryEngine, WriteBatch};
    use crate::mvcc::DEFAULT_COMPACTION_BATCH_LIMIT;

    fn open(engine: &Arc<MemoryEngine>, sync: bool) -> Result<MvccStore> {
        MvccStore::open(engine.clone(), sync, DEFAULT_COMPACTION_BATCH_LIMIT)
    }

    /// Records whether the write's `on_commit` had run when its revision was published.
    struct SeesCommitFirst(Arc<AtomicBool>, AtomicBool);

    impl CommitObserver for SeesCommitFirst {
        fn committed(&self, _: i64, _: &[Change]) {
            self.1.store(self.0.load(Ordering::SeqCst), Ordering::SeqCst);
        }
    }

    #[test]
    fn the_layers_above_hear_of_a_commit_before_readers_see_it_with_sync_on_or_off() {
        for sync in [false, true] {
            let store = open(&Arc::new(MemoryEngine::new()), sync).unwrap();
            let on_commit_ran = Arc::new(AtomicBool::new(false));
            let observer = Arc::new(SeesCommitFirst(on_commit_ran.clone(), AtomicBool::new(false)));
            assert!(store.observe(observer.clone()));
            let mut write = store.write();
            write.put(b"k", b"v".to_vec(), 0);
            write.commit_with(|_| on_commit_ran.store(true, Ordering::SeqCst)).unwrap();
            assert!(observer.1.load(Ordering::SeqCst), "published before on_commit (sync {sync})");
        }
    }

    fn engine_with(record: (Revision, bool, KeyValue)) -> Arc<MemoryEngine> {
        let engine = Arc::new(MemoryEngine::new());
        open(&engine, false).unwrap();
        let (rev, tombstone, kv) = record;
        let mut batch = WriteBatch::new();
        batch.put(Keyspace::Kv, record::encode_key(rev, tombstone), record::encode_value(&kv));
        engine.write(batch, false).unwrap();
        engine
    }

    /// A put record as a write at revision 5 stores it.
    fn kv(create_revision: i64, version: i64) -> KeyValue {
        KeyValue {
            key: b"k".to_vec(),
            create_revision,
            mod_revision: 5,
            version,
            value: b"v".to_vec(),
            lease: 0,
        }
    }

    #[test]
    fn records_no_write_could_have_stored_are_refused_on_open() {
        let refused = [
            (Revision::new(i64::MAX, 0), false, kv(1, 1)),
            (Revision::new(MAX_REVISION + 1, 0), false, kv(1, 1)),
            (Revision::new(-3, 0), false, kv(1, 1)),
            (Revision::new(0, 0), true, kv(0, 0)),
            (Revision::new(5, -1), false, kv(5, 1)),
            (Revision::new(5, 0), false, kv(6, 1)),
            (Revision::new(5, 0), false, kv(0, 1)),
            (Revision::new(5, 0), false, kv(5, i64::MAX)),
            (Revision::new(5, 0), false, kv(5, 0)),
            (Revision::new(5, 0), false, KeyValue { key: Vec::new(), ..kv(5, 1) }),
            // Found by the engine_open fuzz target: a put whose value says it was modified
            // after the revision it is stored at (the store then read back a key modified
            // after its current revision).
            (Revision::new(5, 0), false, KeyValue { mod_revision: 60, ..kv(5, 1) }),
            (Revision::new(5, 0), false, KeyValue { mod_revision: 4, ..kv(1, 1) }),
        ];
        for record in refused {
            let shown = format!("{record:?}");
            let error = open(&engine_with(record), false).err().unwrap_or_else(|| panic!("{shown} opened"));
            assert_eq!(error.code(), crate::Code::DataLoss, "{shown}: {error}");
        }
        let last = KeyValue { mod_revision: MAX_REVISION, ..kv(7, 3) };
        let fine = open(&engine_with((Revision::new(MAX_REVISION, 0), false, last)), false).unwrap();
        assert_eq!(fine.current_revision(), MAX_REVISION);
    }

    /// A key's range of one: `[key, key + "\0")` holds `key` alone.
    fn just(key: &[u8]) -> Vec<u8> {
        let mut end = key.to_vec();
        end.push(0);
        end
    }

    proptest::proptest! {
        /// A get of one key (its own path, with no list of revisions) finds what a range
        /// holding that key alone finds, at every revision and limit, from a read and from
        /// a write txn that has staged changes of its own.
        #[test]
        fn a_single_key_read_matches_the_range_of_that_key(
            ops in proptest::collection::vec((0u8..3, proptest::bool::ANY, 0u8..4), 1..40),
            limit in -1i64..3,
        ) {
            let store = open(&Arc::new(MemoryEngine::new()), false).unwrap();
            let keys: [&[u8]; 3] = [b"a", b"b", b"c"];
            let compare = |view: &dyn ReadView, at: i64| {
                for key in keys {
                    let end = just(key);
                    let options = RangeOptions { limit, revision: at, count_only: false };
                    let one = view.range(KeyRange::Key(key), options).unwrap();
                    let range = view.range(KeyRange::Range(key, &end), options).unwrap();
                    assert_eq!(one, range, "key {key:?} at {at} limit {limit}");
                }
            };
            for (key, put, value) in &ops {
                let key = keys[usize::from(*key)];
                let mut write = store.write();
                if *put {
                    write.put(key, vec![*value], 0);
                } else {
                    write.delete_range(KeyRange::Key(key));
                }
                // A second change in the same txn, so reads through it see staged changes.
                write.put(b"b", vec![*value], 0);
                compare(&write, 0);
                write.commit().unwrap();
            }
            let read = store.read();
            for at in 0..=read.revision() {
                compare(&read, at);
            }
        }
    }

    #[test]
    fn a_compacted_revision_out_of_range_is_refused_on_open() {
        for (key, rev) in [(record::FINISHED_COMPACT_KEY, i64::MAX), (record::SCHEDULED_COMPACT_KEY, -2)] {
            let engine = Arc::new(MemoryEngine::new());
            open(&engine, false).unwrap();
            let mut batch = WriteBatch::new();
            batch.put(Keyspace::Meta, key.to_vec(), record::encode_i64(rev));
            engine.write(batch, false).unwrap();
            assert_eq!(open(&engine, false).err().map(|e| e.code()), Some(crate::Code::DataLoss));
        }
    }
}
