//! The watchable store: every watcher of every stream, and the one lock that orders their
//! creation with the store's commits.
//!
//! A watcher is **synced** when it has been sent everything up to the hub's revision; each
//! commit then hands it that revision's events directly ([`WatchHub::committed`]). It is
//! **unsynced** while it needs history: when it starts in the past, or when its stream was
//! full at a commit (it becomes a "victim", as in etcd). The syncer thread reads history
//! for unsynced watchers and moves each one to the synced group under the hub lock once it
//! has caught up with the hub's revision. Since commits also take that lock to hand out
//! events, a watcher gets every revision exactly once: from history up to the moment it
//! joins, from commits after.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;
use crossbeam_channel::Sender;
use parking_lot::{Mutex, MutexGuard};
use slab::Slab;

use super::intervals::Intervals;
use super::request::{WatchCreateRequest, WatchFilterType};
use super::response::{Event, EventType, WatchResponse, INVALID_WATCH_ID};
use crate::error::{Error, Result};
use crate::lease::{later, Clock};
use crate::mvcc::{Change, CommitObserver, KeyRange, KeyValue, MvccStore, RangeOptions, ReadView, Revision};
use crate::txn::request::ResponseHeader;

/// A watch stream's number in its hub.
pub(crate) type StreamId = u64;

/// A watch's id on its stream (etcd's `WatchID`).
pub type WatchId = i64;

/// A watcher's place in the hub's slab of watchers.
type Slot = usize;

/// Most distinct revisions in one catch-up response (etcd's `watchBatchMaxRevs`).
const BATCH_REVISIONS: i64 = 1000;
/// Most unsynced watchers served by one pass of the syncer (etcd's `maxWatchersPerSync`).
const WATCHERS_PER_SYNC: usize = 512;
/// A catch-up read this short is done with the hub locked, so that a watcher racing a
/// fast writer joins the synced group in a bounded number of passes. Longer reads are done
/// unlocked, while commits go on.
const LOCKED_READ_REVISIONS: i64 = 64;
/// How often the syncer retries watchers that are waiting for their reader (etcd
/// retries victims every 10 ms and syncs every 100 ms).
const RETRY_INTERVAL: Duration = Duration::from_millis(100);
/// Passes per run of the syncer, between which the store can stop it.
const PASSES_PER_RUN: usize = 16;
/// How long an idle syncer sleeps when nothing can wake it sooner.
const IDLE_INTERVAL: Duration = Duration::from_secs(1);

/// How a store's watches behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchConfig {
    /// Responses a stream holds before its watchers fall behind (etcd: 128).
    pub stream_capacity: usize,
    /// Interval of progress notifications (etcd: 10 minutes).
    pub progress_interval: Duration,
    /// Watches one stream may hold (etcd has no limit; etcdlite's default is 100,000).
    pub max_watches_per_stream: usize,
}

/// Watches one stream may hold unless
/// [`Options::max_watches_per_stream`](crate::Options::max_watches_per_stream) says otherwise.
pub const DEFAULT_MAX_WATCHES_PER_STREAM: usize = 100_000;

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            stream_capacity: 128,
            progress_interval: Duration::from_secs(600),
            max_watches_per_stream: DEFAULT_MAX_WATCHES_PER_STREAM,
        }
    }
}

/// How many watch streams a store has open, and how many watches they hold (etcd's
/// `etcd_debugging_mvcc_watch_stream_total` and `etcd_debugging_mvcc_watcher_total`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchCounts {
    /// Open streams.
    pub streams: usize,
    /// Watches on them.
    pub watches: usize,
}

/// What a stream's reader and the hub share.
#[derive(Default)]
pub(crate) struct Signal {
    /// Wakes the async reader.
    pub(crate) waker: AtomicWaker,
    /// Set when a watcher of the stream fell behind because the stream was full: the
    /// reader wakes the syncer once it has drained the stream.
    pub(crate) blocked: AtomicBool,
}

/// The watchers of every stream, and the revision they have been handed.
pub struct WatchHub {
    state: Mutex<State>,
    mvcc: Weak<MvccStore>,
    clock: Arc<dyn Clock>,
    config: WatchConfig,
    /// Wakes the syncer (capacity 1: a wake-up pending is as good as two).
    wake: Sender<()>,
}

struct State {
    /// The last revision handed to synced watchers: every watcher created from now on
    /// starts from here.
    revision: i64,
    next_stream: StreamId,
    /// Every watcher of every stream, found by one index wherever the hub meets it (the
    /// groups below and the streams hold slots). Declared before `streams`: a watcher holds
    /// a copy of its stream's sender, so the channel closes once both are gone.
    watchers: Slab<Watcher>,
    streams: HashMap<StreamId, Stream>,
    /// Tells a watcher apart from an earlier one in the same slot.
    next_serial: u64,
    /// Synced watchers of a single key, in slot order (a commit then walks the slab
    /// forward, not at random).
    by_key: HashMap<Vec<u8>, BTreeSet<Slot>>,
    /// Synced watchers of a range, by their range.
    ranges: Intervals<Slot>,
    unsynced: BTreeSet<Slot>,
    /// Where the syncer's next pass starts in `unsynced`: each pass goes on from the slot
    /// after the last one the previous pass served, wrapping around, so that watchers
    /// that keep falling behind cannot hold the others back.
    cursor: Slot,
    /// Watchers that asked for progress notifications.
    progress_watchers: usize,
    next_progress: Instant,
}

struct Stream {
    sender: Option<Sender<WatchResponse>>,
    signal: Arc<Signal>,
    /// Its watches: id → slot in [`State::watchers`].
    ids: HashMap<WatchId, Slot>,
    /// The next id to try for a watch created without one.
    next_id: WatchId,
}

struct Watcher {
    stream: StreamId,
    id: WatchId,
    serial: u64,
    /// Its stream's channel and signal, so that handing it events needs no stream lookup.
    sender: Sender<WatchResponse>,
    signal: Arc<Signal>,
    key: Vec<u8>,
    range_end: Vec<u8>,
    start: i64,
    /// The first revision not yet sent.
    next: i64,
    /// In the synced group (`by_key` or `ranges`); otherwise in `unsynced`.
    synced: bool,
    no_put: bool,
    no_delete: bool,
    prev_kv: bool,
    progress_notify: bool,
    /// No event was sent since the last progress tick.
    quiet: bool,
}

impl Watcher {
    fn range(&self) -> KeyRange<'_> {
        KeyRange::from_etcd(&self.key, &self.range_end)
    }

    /// True when the watcher's filters drop `change`.
    fn filters_out(&self, change: &Change) -> bool {
        if change.tombstone {
            self.no_delete
        } else {
            self.no_put
        }
    }

    /// True when the watcher wants `change` (its range and filters; not its revision).
    fn wants(&self, change: &Change) -> bool {
        !self.filters_out(change) && self.range().contains(&change.kv.key)
    }

    /// True when its stream holds `capacity` responses.
    fn is_full(&self, capacity: usize) -> bool {
        self.sender.len() >= capacity
    }

    fn send(&self, response: WatchResponse) {
        // A send fails only when the reader is gone, and then the stream is closing.
        let _ = self.sender.send(response);
        self.signal.waker.wake();
    }

    /// Sends its `events`, under a header at `revision`.
    fn send_events(&self, revision: i64, events: Vec<Event>) {
        self.send(WatchResponse {
            header: ResponseHeader::at(revision),
            watch_id: self.id,
            events,
            ..Default::default()
        });
    }
}

/// The event of `change`, sharing its key-value; `prev` is the key's previous key-value,
/// for a watcher that asked for it.
fn event(change: &Change, prev: Option<&Arc<KeyValue>>) -> Event {
    let event_type = if change.tombstone { EventType::Delete } else { EventType::Put };
    Event { event_type, kv: change.kv.clone(), prev_kv: prev.cloned() }
}

/// The key-value `change`'s key had just before it: etcd's `prev_kv`, looked up when the
/// event is handed to the watcher. None for the put that created the key, and when that
/// revision has been compacted (etcd leaves it out then).
fn prev_kv(mvcc: &MvccStore, change: &Change) -> Option<Arc<KeyValue>> {
    let kv = &change.kv;
    if !change.tombstone && kv.create_revision == kv.mod_revision {
        return None;
    }
    let options = RangeOptions { revision: kv.mod_revision - 1, ..Default::default() };
    mvcc.read().range(KeyRange::Key(&kv.key), options).ok()?.kvs.pop().map(Arc::new)
}

impl Stream {
    /// The id for a new watch: `requested`, or with 0 the next one free.
    fn assign_id(&mut self, requested: WatchId) -> Result<WatchId> {
        match requested {
            0 => {
                while self.ids.contains_key(&self.next_id) {
                    self.next_id += 1;
                }
                self.next_id += 1;
                Ok(self.next_id - 1)
            }
            id if self.ids.contains_key(&id) => Err(Error::DuplicateWatchId),
            id => Ok(id),
        }
    }

    fn is_full(&self, capacity: usize) -> bool {
        self.sender.as_ref().is_some_and(|s| s.len() >= capacity)
    }

    fn send(&self, response: WatchResponse) {
        if let Some(sender) = &self.sender {
            // A send fails only when the reader is gone, and then the stream is closing.
            let _ = sender.send(response);
            self.signal.waker.wake();
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Close the channel first, then wake the async reader to see it closed.
        self.sender.take();
        self.signal.waker.wake();
    }
}

impl State {
    /// Adds synced watcher `slot` to the synced group.
    fn index(&mut self, slot: Slot) {
        let w = &mut self.watchers[slot];
        w.synced = true;
        match w.range_end.as_slice() {
            [] => {
                self.by_key.entry(w.key.clone()).or_default().insert(slot);
            }
            [0] => self.ranges.insert(w.key.clone(), None, slot),
            end => self.ranges.insert(w.key.clone(), Some(end.to_vec()), slot),
        }
    }

    /// Takes watcher `slot` out of the synced group, if it is there.
    fn unindex(&mut self, slot: Slot) {
        let w = &mut self.watchers[slot];
        if !std::mem::replace(&mut w.synced, false) {
            return;
        }
        match w.range_end.as_slice() {
            [] => {
                if let Some(set) = self.by_key.get_mut(&w.key) {
                    set.remove(&slot);
                    if set.is_empty() {
                        self.by_key.remove(&w.key);
                    }
                }
            }
            [0] => {
                self.ranges.remove(&w.key, None, slot);
            }
            end => {
                self.ranges.remove(&w.key, Some(end), slot);
            }
        }
    }

    /// The slot of watch `id` of `stream`.
    fn slot(&self, stream: StreamId, id: WatchId) -> Option<Slot> {
        self.streams.get(&stream)?.ids.get(&id).copied()
    }

    /// Takes watcher `slot` out of every group and its stream; returns it.
    fn remove(&mut self, slot: Slot) -> Watcher {
        self.unindex(slot);
        self.unsynced.remove(&slot);
        let w = self.watchers.remove(slot);
        if let Some(stream) = self.streams.get_mut(&w.stream) {
            stream.ids.remove(&w.id);
        }
        if w.progress_notify {
            self.progress_watchers -= 1;
        }
        w
    }

    /// Moves synced watcher `slot` to the unsynced group, to resume at revision `next`.
    fn fall_behind(&mut self, slot: Slot, next: i64) {
        self.unindex(slot);
        let w = &mut self.watchers[slot];
        w.signal.blocked.store(true, Ordering::SeqCst);
        w.next = next;
        self.unsynced.insert(slot);
    }

    /// The synced watchers of `key` (their filters and start not yet applied): its own
    /// watchers by hash, the range watchers holding it through the interval tree.
    fn synced_for(&self, key: &[u8], into: &mut Vec<Slot>) {
        if let Some(set) = self.by_key.get(key) {
            into.extend(set);
        }
        self.ranges.stab(key, into);
    }

    /// Cancels every unsynced watcher that needs a revision below `compacted`, as etcd
    /// does: a response with `compact_revision` set and a zero header.
    fn cancel_compacted(&mut self, compacted: i64) {
        let gone: Vec<Slot> =
            self.unsynced.iter().copied().filter(|&slot| self.watchers[slot].next < compacted).collect();
        for slot in gone {
            let w = self.remove(slot);
            w.send(WatchResponse {
                watch_id: w.id,
                canceled: true,
                compact_revision: compacted,
                ..Default::default()
            });
        }
    }
}

/// A change read back from history, with its `prev_kv` when a watcher wants it.
struct Past {
    revision: Revision,
    change: Change,
    prev_kv: Option<Arc<KeyValue>>,
}

/// The changes of revisions `from..=to`, with their previous key-values if `with_prev_kv`.
fn read_history(mvcc: &MvccStore, from: i64, to: i64, with_prev_kv: bool) -> Result<Vec<Past>> {
    let mut history = Vec::new();
    mvcc.history(from, to, &mut |revision, change| {
        history.push(Past { revision, change, prev_kv: None });
    })?;
    if with_prev_kv {
        for past in &mut history {
            past.prev_kv = prev_kv(mvcc, &past.change);
        }
    }
    Ok(history)
}

impl WatchHub {
    /// A hub over `mvcc`, registered as its commit observer. The receiver wakes the syncer
    /// thread, which must call [`WatchHub::sync`] when woken.
    pub(crate) fn attach(
        mvcc: &Arc<MvccStore>,
        clock: Arc<dyn Clock>,
        config: WatchConfig,
    ) -> (Arc<WatchHub>, crossbeam_channel::Receiver<()>) {
        let (wake, woken) = crossbeam_channel::bounded(1);
        let state = State {
            revision: mvcc.current_revision(),
            next_stream: 0,
            watchers: Slab::new(),
            streams: HashMap::new(),
            next_serial: 0,
            by_key: HashMap::new(),
            ranges: Intervals::new(),
            unsynced: BTreeSet::new(),
            cursor: 0,
            progress_watchers: 0,
            next_progress: later(clock.now(), config.progress_interval),
        };
        let hub =
            Arc::new(WatchHub { state: Mutex::new(state), mvcc: Arc::downgrade(mvcc), clock, config, wake });
        let registered = mvcc.observe(hub.clone());
        assert!(registered, "a store has one watch hub");
        (hub, woken)
    }

    pub(crate) fn wake_syncer(&self) {
        let _ = self.wake.try_send(());
    }

    /// Opens a stream; returns its id, the receiving end and the signal it shares.
    pub(crate) fn open_stream(&self) -> (StreamId, crossbeam_channel::Receiver<WatchResponse>, Arc<Signal>) {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let signal = Arc::new(Signal::default());
        let mut state = self.state.lock();
        let id = state.next_stream;
        state.next_stream += 1;
        let stream = Stream { sender: Some(sender), signal: signal.clone(), ids: HashMap::new(), next_id: 0 };
        state.streams.insert(id, stream);
        (id, receiver, signal)
    }

    /// Responses waiting in `stream`'s channel (0 once it is closed).
    pub(crate) fn backlog(&self, stream: StreamId) -> usize {
        let state = self.state.lock();
        let sender = state.streams.get(&stream).and_then(|s| s.sender.as_ref());
        sender.map_or(0, |s| s.len())
    }

    /// Closes a stream: its watchers are removed and its channel closed.
    pub(crate) fn close_stream(&self, stream: StreamId) {
        let mut state = self.state.lock();
        let slots: Vec<Slot> =
            state.streams.get(&stream).map(|s| s.ids.values().copied().collect()).unwrap_or_default();
        for slot in slots {
            state.remove(slot);
        }
        state.streams.remove(&stream);
    }

    /// How many streams are open, and how many watches they hold.
    pub(crate) fn counts(&self) -> WatchCounts {
        let state = self.state.lock();
        WatchCounts { streams: state.streams.len(), watches: state.watchers.len() }
    }

    fn stream_state(&self, stream: StreamId) -> Result<(MutexGuard<'_, State>, StreamId)> {
        let state = self.state.lock();
        if !state.streams.contains_key(&stream) {
            return Err(Error::WatchCanceled);
        }
        Ok((state, stream))
    }

    /// Creates a watch on `stream`: etcd's `watchStream.Watch` and `watchableStore.watch`.
    /// Sends the created response if `announce`, then the watch's events; returns its id.
    pub(crate) fn watch(
        &self,
        stream: StreamId,
        mut req: WatchCreateRequest,
        announce: bool,
    ) -> Result<WatchId> {
        if req.start_revision < 0 {
            // etcd 3.5.33 and 3.6 refuse a negative start as compacted.
            return Err(Error::Compacted);
        }
        if req.key.is_empty() {
            req.key = vec![0];
        }
        if !matches!(req.range_end.as_slice(), [] | [0]) && req.key >= req.range_end {
            return Err(Error::WatchRangeEmpty);
        }
        let (mut state, stream) = self.stream_state(stream)?;
        let revision = state.revision;
        let serial = state.next_serial;
        let s = state.streams.get_mut(&stream).expect("checked by stream_state");
        if s.ids.len() >= self.config.max_watches_per_stream {
            return Err(Error::TooManyRequests);
        }
        let id = s.assign_id(req.watch_id)?;
        let sender = s.sender.clone().expect("an open stream has its channel");
        let signal = s.signal.clone();
        if announce {
            let header = ResponseHeader::at(revision);
            s.send(WatchResponse { header, watch_id: id, created: true, ..Default::default() });
        }
        let synced = req.start_revision == 0 || req.start_revision > revision;
        let watcher = Watcher {
            stream,
            id,
            serial,
            sender,
            signal,
            next: if req.start_revision == 0 { revision + 1 } else { req.start_revision },
            start: req.start_revision,
            synced: false,
            no_put: req.filters.contains(&WatchFilterType::NoPut),
            no_delete: req.filters.contains(&WatchFilterType::NoDelete),
            prev_kv: req.prev_kv,
            progress_notify: req.progress_notify,
            quiet: true,
            key: req.key,
            range_end: req.range_end,
        };
        state.next_serial += 1;
        let slot = state.watchers.insert(watcher);
        state.streams.get_mut(&stream).expect("checked by stream_state").ids.insert(id, slot);
        if req.progress_notify {
            state.progress_watchers += 1;
        }
        if synced {
            state.index(slot);
        } else {
            state.unsynced.insert(slot);
        }
        drop(state);
        if !synced || req.progress_notify {
            self.wake_syncer();
        }
        Ok(id)
    }

    /// Answers a create request as if its start revision had been compacted at the hub's
    /// revision: `created`, then a cancel with `compact_revision` set, and no watch left.
    /// What a client's resync path meets; a test server injects it as a fault.
    pub(crate) fn watch_compacted(&self, stream: StreamId, req: &WatchCreateRequest) -> Result<WatchId> {
        let (mut state, stream) = self.stream_state(stream)?;
        let revision = state.revision;
        let s = state.streams.get_mut(&stream).expect("checked by stream_state");
        if s.ids.len() >= self.config.max_watches_per_stream {
            return Err(Error::TooManyRequests);
        }
        let id = s.assign_id(req.watch_id)?;
        s.send(WatchResponse {
            header: ResponseHeader::at(revision),
            watch_id: id,
            created: true,
            ..Default::default()
        });
        s.send(WatchResponse {
            watch_id: id,
            canceled: true,
            compact_revision: revision,
            ..Default::default()
        });
        Ok(id)
    }

    /// Cancels watch `id` of `stream` and says so on the stream; an unknown id is ignored,
    /// as etcd ignores it.
    pub(crate) fn cancel(&self, stream: StreamId, id: WatchId) -> Result<()> {
        let (mut state, stream) = self.stream_state(stream)?;
        if let Some(slot) = state.slot(stream, id) {
            state.remove(slot);
            let response = WatchResponse {
                header: ResponseHeader::at(state.revision),
                watch_id: id,
                canceled: true,
                ..Default::default()
            };
            state.streams[&stream].send(response);
        }
        Ok(())
    }

    /// etcd's `RequestProgressAll`: when every watcher of `stream` is synced and past its
    /// start, sends one progress notification with watch id -1 behind their events;
    /// otherwise does nothing, and the caller may ask again.
    pub(crate) fn request_progress(&self, stream: StreamId) -> Result<()> {
        let (state, stream) = self.stream_state(stream)?;
        let s = &state.streams[&stream];
        let ready = s.ids.values().all(|&slot| {
            let w = &state.watchers[slot];
            w.synced && state.revision >= w.start
        });
        if ready && !s.ids.is_empty() && !s.is_full(self.config.stream_capacity) {
            let response = WatchResponse {
                header: ResponseHeader::at(state.revision),
                watch_id: INVALID_WATCH_ID,
                ..Default::default()
            };
            s.send(response);
        }
        Ok(())
    }

    /// Sends the periodic progress notifications when they are due: to each watcher that
    /// asked for them, is synced and past its start, and got no event since the last tick.
    pub(crate) fn tick_progress(&self) {
        let now = self.clock.now();
        let mut state = self.state.lock();
        if now < state.next_progress {
            return;
        }
        state.next_progress = later(now, self.config.progress_interval);
        if state.progress_watchers == 0 {
            return;
        }
        let revision = state.revision;
        let capacity = self.config.stream_capacity;
        for (_, w) in state.watchers.iter_mut().filter(|(_, w)| w.progress_notify) {
            if w.quiet && w.synced && revision >= w.start && !w.is_full(capacity) {
                w.send(WatchResponse {
                    header: ResponseHeader::at(revision),
                    watch_id: w.id,
                    ..Default::default()
                });
            }
            w.quiet = true;
        }
    }

    /// One run of the syncer: catches unsynced watchers up from history until none can
    /// move on, and sends progress notifications that are due. Returns how long to sleep.
    pub(crate) fn sync(&self) -> Duration {
        for pass in 0.. {
            if pass == PASSES_PER_RUN {
                // Come back at once, but let a dropping store stop the thread first.
                self.tick_progress();
                return Duration::ZERO;
            }
            match self.sync_pass() {
                Ok(true) => continue,
                Ok(false) => break,
                Err(error) => {
                    tracing::warn!(%error, "reading watch history failed; retrying");
                    break;
                }
            }
        }
        self.tick_progress();
        let state = self.state.lock();
        let mut sleep = if state.unsynced.is_empty() { IDLE_INTERVAL } else { RETRY_INTERVAL };
        if state.progress_watchers > 0 {
            let until = state.next_progress.saturating_duration_since(self.clock.now());
            sleep = sleep.min(until.max(Duration::from_millis(1)));
        }
        sleep
    }

    /// Serves up to [`WATCHERS_PER_SYNC`] unsynced watchers with up to
    /// [`BATCH_REVISIONS`] revisions of history each, round robin: from the one after the
    /// last served by the previous pass. Returns true when it may be called again at once.
    fn sync_pass(&self) -> Result<bool> {
        let Some(mvcc) = self.mvcc.upgrade() else { return Ok(false) };
        let mut state = self.state.lock();
        state.cancel_compacted(mvcc.compacted_revision());
        let capacity = self.config.stream_capacity;
        let cursor = state.cursor;
        let mut picked: Vec<Picked> = Vec::new();
        for &slot in state.unsynced.range(cursor..).chain(state.unsynced.range(..cursor)) {
            let w = &state.watchers[slot];
            if w.is_full(capacity) {
                // Its reader wakes the syncer once it has drained the stream.
                w.signal.blocked.store(true, Ordering::SeqCst);
                continue;
            }
            picked.push(Picked { slot, serial: w.serial, next: w.next, prev_kv: w.prev_kv });
            if picked.len() == WATCHERS_PER_SYNC {
                break;
            }
        }
        let Some(last) = picked.last() else { return Ok(false) };
        state.cursor = last.slot + 1;
        let from = picked.iter().map(|p| p.next).min().expect("one picked");
        let with_prev_kv = picked.iter().any(|p| p.prev_kv);
        let target = state.revision;
        let to = target.min(from + BATCH_REVISIONS - 1);
        let read = || read_history(&mvcc, from, to, with_prev_kv);
        let history =
            if to - from < LOCKED_READ_REVISIONS { read() } else { MutexGuard::unlocked(&mut state, read) };
        let history = match history {
            Ok(history) => history,
            // The next pass cancels the watchers that needed the compacted revisions.
            Err(Error::Compacted) => return Ok(true),
            Err(error) => return Err(error),
        };
        for p in picked {
            self.catch_up(&mut state, &p, to, &history);
        }
        let more = state.unsynced.iter().any(|&slot| !state.watchers[slot].is_full(capacity));
        Ok(more)
    }

    /// Sends picked watcher `p` its events of `history` (revisions `p.next..=to`), if it
    /// is still there and waits for them, and moves it to the synced group if that caught
    /// it up.
    fn catch_up(&self, state: &mut State, p: &Picked, to: i64, history: &[Past]) {
        let capacity = self.config.stream_capacity;
        let revision = state.revision;
        // The history was read unlocked: the slot may hold another watcher by now.
        let Some(w) = state.watchers.get_mut(p.slot).filter(|w| w.serial == p.serial) else { return };
        let next = p.next;
        if w.synced || w.next != next || next > to {
            return;
        }
        let full = w.is_full(capacity);
        let events: Vec<Event> = history
            .iter()
            .filter(|past| past.revision.main >= next && w.wants(&past.change))
            .map(|past| event(&past.change, past.prev_kv.as_ref().filter(|_| w.prev_kv)))
            .collect();
        if !events.is_empty() {
            if full {
                return;
            }
            w.quiet = false;
            w.send_events(revision, events);
            if w.is_full(capacity) {
                // Its reader wakes the syncer once it has drained the stream.
                w.signal.blocked.store(true, Ordering::SeqCst);
            }
        }
        w.next = to + 1;
        if w.next > revision {
            state.unsynced.remove(&p.slot);
            state.index(p.slot);
        }
    }
}

/// An unsynced watcher a pass of the syncer serves, as it was when picked.
struct Picked {
    slot: Slot,
    serial: u64,
    next: i64,
    prev_kv: bool,
}

impl CommitObserver for WatchHub {
    /// Hands the revision's events to the synced watchers that want them, one response
    /// per watcher. Each change's event is built once (and once more with its `prev_kv`,
    /// when a watcher asked for it); every watcher gets a clone of it, which shares the
    /// key-values. Each watcher is looked up once per change, by its slot.
    fn committed(&self, revision: i64, changes: &[Change]) {
        let mut state = self.state.lock();
        state.revision = revision;
        if state.by_key.is_empty() && state.ranges.is_empty() {
            return;
        }
        let capacity = self.config.stream_capacity;
        let single = changes.len() == 1;
        let mut found: Vec<Slot> = Vec::new();
        // Watchers whose stream was full, to move to the unsynced group.
        let mut behind: Vec<Slot> = Vec::new();
        // With several changes, each watcher's events, sent once all are gathered.
        let mut batches: Vec<(Slot, Vec<Event>)> = Vec::new();
        let mut batch_of: HashMap<Slot, usize> = HashMap::new();
        for change in changes {
            found.clear();
            state.synced_for(&change.kv.key, &mut found);
            if found.is_empty() {
                continue;
            }
            let plain = event(change, None);
            let mut with_prev: Option<Event> = None;
            for &slot in &found {
                let w = &mut state.watchers[slot];
                if revision < w.next || w.filters_out(change) {
                    continue;
                }
                let event = if w.prev_kv {
                    with_prev
                        .get_or_insert_with(|| {
                            // Looked up once per change, and only when a watcher wants it
                            // (only then is the store upgraded: this may run on the
                            // store's sync thread).
                            let prev = self.mvcc.upgrade().and_then(|mvcc| prev_kv(&mvcc, change));
                            Event { prev_kv: prev, ..plain.clone() }
                        })
                        .clone()
                } else {
                    plain.clone()
                };
                if !single {
                    let i = *batch_of.entry(slot).or_insert_with(|| {
                        batches.push((slot, Vec::new()));
                        batches.len() - 1
                    });
                    batches[i].1.push(event);
                } else if w.is_full(capacity) {
                    behind.push(slot);
                } else {
                    w.next = revision + 1;
                    w.quiet = false;
                    w.send_events(revision, vec![event]);
                }
            }
        }
        for (slot, events) in batches {
            let w = &mut state.watchers[slot];
            if w.is_full(capacity) {
                behind.push(slot);
                continue;
            }
            w.next = revision + 1;
            w.quiet = false;
            w.send_events(revision, events);
        }
        let fell_behind = !behind.is_empty();
        for slot in behind {
            state.fall_behind(slot, revision);
        }
        drop(state);
        if fell_behind {
            // The syncer may be idle; it must learn of the new unsynced watchers.
            self.wake_syncer();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::MemoryEngine;
    use crate::lease::SystemClock;
    use crate::mvcc::DEFAULT_COMPACTION_BATCH_LIMIT;
    use crate::watch::stream::{open, WatchStream, Watcher as Handle};

    /// A store and its hub, with no syncer thread: tests run its passes by hand.
    fn hub(stream_capacity: usize) -> (Arc<MvccStore>, Arc<WatchHub>) {
        let engine = Arc::new(MemoryEngine::new());
        let mvcc = Arc::new(MvccStore::open(engine, false, DEFAULT_COMPACTION_BATCH_LIMIT).unwrap());
        let config = WatchConfig { stream_capacity, ..Default::default() };
        let (hub, _woken) = WatchHub::attach(&mvcc, Arc::new(SystemClock), config);
        (mvcc, hub)
    }

    fn put(mvcc: &MvccStore, key: &[u8], value: Vec<u8>) -> i64 {
        let mut write = mvcc.write();
        write.put(key, value, 0);
        write.commit().unwrap()
    }

    /// A stream with one watch of `req`, its created response read.
    fn watch(hub: &Arc<WatchHub>, req: WatchCreateRequest) -> (Handle, WatchStream) {
        let (handle, stream) = open(hub);
        handle.watch_request(req).unwrap();
        assert!(stream.try_recv().unwrap().created);
        (handle, stream)
    }

    fn key_watch(key: &[u8], range_end: &[u8], start_revision: i64, prev_kv: bool) -> WatchCreateRequest {
        let (key, range_end) = (key.to_vec(), range_end.to_vec());
        WatchCreateRequest { key, range_end, start_revision, prev_kv, ..Default::default() }
    }

    #[test]
    fn every_watcher_of_a_change_shares_one_key_value() {
        let (mvcc, hub) = hub(128);
        put(&mvcc, b"k", b"old".to_vec());
        let mut watches = Vec::new();
        for prev_kv in [false, true] {
            // The key alone, a range, from the key on, twice each.
            for range_end in [&b""[..], b"l", b"\0", b"", b"l", b"\0"] {
                watches.push((watch(&hub, key_watch(b"k", range_end, 0, prev_kv)), prev_kv));
            }
        }
        put(&mvcc, b"k", vec![7; 1 << 20]);
        let events: Vec<(Event, bool)> = watches
            .iter()
            .map(|((_, stream), prev_kv)| {
                let response = stream.try_recv().unwrap();
                assert_eq!(response.events.len(), 1);
                (response.events[0].clone(), *prev_kv)
            })
            .collect();
        let first = &events[0].0.kv;
        assert_eq!(first.value.len(), 1 << 20);
        for (event, prev_kv) in &events {
            assert!(Arc::ptr_eq(&event.kv, first), "one allocation for every watcher");
            assert_eq!(event.prev_kv.is_some(), *prev_kv);
        }
        let prevs: Vec<_> = events.iter().filter_map(|(e, _)| e.prev_kv.clone()).collect();
        assert_eq!(prevs[0].value, b"old");
        assert!(prevs.iter().all(|p| Arc::ptr_eq(p, &prevs[0])), "one prev_kv for every watcher");
    }

    #[test]
    fn watchers_caught_up_in_one_pass_share_the_history_they_read() {
        let (mvcc, hub) = hub(128);
        let first = put(&mvcc, b"k", b"v1".to_vec());
        let revision = put(&mvcc, b"k", b"v2".to_vec());
        let watches: Vec<_> = (0..3).map(|_| watch(&hub, key_watch(b"k", b"", first, true))).collect();
        assert!(!hub.sync_pass().unwrap(), "all caught up in one pass");
        let events: Vec<Vec<Event>> = watches.iter().map(|(_, s)| s.try_recv().unwrap().events).collect();
        for e in &events {
            assert_eq!(e.iter().map(|e| e.kv.mod_revision).collect::<Vec<_>>(), [first, revision]);
            assert!(Arc::ptr_eq(&e[1].kv, &events[0][1].kv));
            assert!(Arc::ptr_eq(e[1].prev_kv.as_ref().unwrap(), events[0][1].prev_kv.as_ref().unwrap()));
        }
    }

    /// More unsynced watchers than one pass serves, all further behind than one batch
    /// while a writer keeps going, beside slow ones whose readers never read: each pass
    /// goes on where the last one stopped, so every watcher gets events within two
    /// passes (before, the first 512 in id order were served every pass and the rest
    /// starved); a slow stream never holds more than its capacity, and no catch-up
    /// response spans more than BATCH_REVISIONS revisions.
    #[test]
    fn the_syncer_serves_unsynced_watchers_round_robin_with_bounded_backlogs() {
        const CAPACITY: usize = 4;
        let (mvcc, hub) = hub(CAPACITY);
        put(&mvcc, b"k", b"0".to_vec());
        let draining: Vec<_> =
            (0..WATCHERS_PER_SYNC + 88).map(|_| watch(&hub, key_watch(b"k", b"", 1, false))).collect();
        let slow: Vec<_> = (0..50).map(|_| watch(&hub, key_watch(b"k", b"", 1, false))).collect();
        let mut last_seen = vec![0; draining.len()];
        let check = |response: &WatchResponse| {
            let revisions: Vec<i64> = response.events.iter().map(|e| e.kv.mod_revision).collect();
            let (first, last) = (revisions[0], *revisions.last().unwrap());
            assert!(last - first < BATCH_REVISIONS, "one response spans {first}..={last}");
            last
        };
        for pass in 1..=4 {
            for _ in 0..BATCH_REVISIONS {
                put(&mvcc, b"k", b"v".to_vec());
            }
            assert!(hub.sync_pass().unwrap(), "watchers are still behind");
            for (i, (_, stream)) in draining.iter().enumerate() {
                while let Ok(response) = stream.try_recv() {
                    last_seen[i] = check(&response);
                }
            }
            if pass >= 2 {
                let starved = last_seen.iter().filter(|&&seen| seen == 0).count();
                assert_eq!(starved, 0, "watchers with no event after pass {pass}");
            }
            for (handle, _) in &slow {
                assert!(handle.backlog() <= CAPACITY, "a slow stream holds {}", handle.backlog());
            }
        }
        for (_, stream) in &slow {
            let responses: Vec<_> = std::iter::from_fn(|| stream.try_recv().ok()).collect();
            assert!(!responses.is_empty() && responses.len() <= CAPACITY);
            for response in &responses {
                check(response);
            }
        }
    }
}
