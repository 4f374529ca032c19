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

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;
use crossbeam_channel::Sender;
use parking_lot::{Mutex, MutexGuard};

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

/// One watcher: its stream and its id on it.
type WatcherRef = (StreamId, WatchId);

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
    streams: HashMap<StreamId, Stream>,
    /// Synced watchers of a single key.
    by_key: HashMap<Vec<u8>, HashSet<WatcherRef>>,
    /// Synced watchers of a range.
    ranges: HashSet<WatcherRef>,
    unsynced: BTreeSet<WatcherRef>,
    /// Watchers that asked for progress notifications.
    progress_watchers: usize,
    next_progress: Instant,
}

struct Stream {
    sender: Option<Sender<WatchResponse>>,
    signal: Arc<Signal>,
    watchers: HashMap<WatchId, Watcher>,
    /// The next id to try for a watch created without one.
    next_id: WatchId,
}

struct Watcher {
    key: Vec<u8>,
    range_end: Vec<u8>,
    start: i64,
    /// The first revision not yet sent.
    next: i64,
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
}

/// The event of `change`; `prev` is the key's previous key-value, for a watcher that asked
/// for it.
fn event(change: &Change, prev: Option<&KeyValue>) -> Event {
    let event_type = if change.tombstone { EventType::Delete } else { EventType::Put };
    Event { event_type, kv: change.kv.clone(), prev_kv: prev.cloned() }
}

/// The key-value `change`'s key had just before it: etcd's `prev_kv`, looked up when the
/// event is handed to the watcher. None for the put that created the key, and when that
/// revision has been compacted (etcd leaves it out then).
fn prev_kv(mvcc: &MvccStore, change: &Change) -> Option<KeyValue> {
    let kv = &change.kv;
    if !change.tombstone && kv.create_revision == kv.mod_revision {
        return None;
    }
    let options = RangeOptions { revision: kv.mod_revision - 1, ..Default::default() };
    mvcc.read().range(KeyRange::Key(&kv.key), options).ok()?.kvs.pop()
}

impl Stream {
    /// The id for a new watch: `requested`, or with 0 the next one free.
    fn assign_id(&mut self, requested: WatchId) -> Result<WatchId> {
        match requested {
            0 => {
                while self.watchers.contains_key(&self.next_id) {
                    self.next_id += 1;
                }
                self.next_id += 1;
                Ok(self.next_id - 1)
            }
            id if self.watchers.contains_key(&id) => Err(Error::DuplicateWatchId),
            id => Ok(id),
        }
    }

    fn is_full(&self, capacity: usize) -> bool {
        self.sender.as_ref().is_some_and(|s| s.len() >= capacity)
    }

    /// Sends watch `id` its `events`, under a header at `revision`.
    fn send_events(&self, id: WatchId, revision: i64, events: Vec<Event>) {
        self.send(WatchResponse {
            header: ResponseHeader::at(revision),
            watch_id: id,
            events,
            ..Default::default()
        });
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
    fn watcher_mut(&mut self, (stream, id): WatcherRef) -> Option<&mut Watcher> {
        self.streams.get_mut(&stream)?.watchers.get_mut(&id)
    }

    fn index(&mut self, r: WatcherRef) {
        let Some(w) = self.watcher_mut(r) else { return };
        w.synced = true;
        if w.range_end.is_empty() {
            let key = w.key.clone();
            self.by_key.entry(key).or_default().insert(r);
        } else {
            self.ranges.insert(r);
        }
    }

    fn unindex(&mut self, r: WatcherRef, key: &[u8]) {
        if let Some(set) = self.by_key.get_mut(key) {
            set.remove(&r);
            if set.is_empty() {
                self.by_key.remove(key);
            }
        }
        self.ranges.remove(&r);
    }

    /// Takes watcher `r` out of every group; returns it.
    fn remove(&mut self, r: WatcherRef) -> Option<Watcher> {
        let w = self.streams.get_mut(&r.0)?.watchers.remove(&r.1)?;
        self.unindex(r, &w.key);
        self.unsynced.remove(&r);
        if w.progress_notify {
            self.progress_watchers -= 1;
        }
        Some(w)
    }

    /// Moves synced watcher `r` to the unsynced group, to resume at revision `next`.
    fn fall_behind(&mut self, r: WatcherRef, next: i64) {
        let Some(stream) = self.streams.get_mut(&r.0) else { return };
        stream.signal.blocked.store(true, Ordering::SeqCst);
        let Some(w) = stream.watchers.get_mut(&r.1) else { return };
        w.synced = false;
        w.next = next;
        let key = w.key.clone();
        self.unindex(r, &key);
        self.unsynced.insert(r);
    }

    /// The synced watchers of `change`'s key (their filters and start not yet applied).
    fn synced_for(&self, change: &Change, into: &mut Vec<WatcherRef>) {
        let key = &change.kv.key;
        let keyed = self.by_key.get(key).into_iter().flatten();
        let ranged = self.ranges.iter().filter(|r| {
            let w = self.streams.get(&r.0).and_then(|s| s.watchers.get(&r.1));
            w.is_some_and(|w| w.range().contains(key))
        });
        into.extend(keyed.chain(ranged).copied());
    }

    /// Sends one revision's events to synced watcher `r`, or makes it fall behind when its
    /// stream is full.
    /// Returns true when it fell behind.
    fn deliver(&mut self, r: WatcherRef, revision: i64, events: Vec<Event>, capacity: usize) -> bool {
        let Some(stream) = self.streams.get_mut(&r.0) else { return false };
        if stream.is_full(capacity) {
            self.fall_behind(r, revision);
            return true;
        }
        let Some(w) = stream.watchers.get_mut(&r.1) else { return false };
        w.next = revision + 1;
        w.quiet = false;
        stream.send_events(r.1, revision, events);
        false
    }

    /// Cancels every unsynced watcher that needs a revision below `compacted`, as etcd
    /// does: a response with `compact_revision` set and a zero header.
    fn cancel_compacted(&mut self, compacted: i64) {
        let gone: Vec<WatcherRef> = self
            .unsynced
            .iter()
            .copied()
            .filter(|&r| {
                self.streams.get(&r.0).and_then(|s| s.watchers.get(&r.1)).is_some_and(|w| w.next < compacted)
            })
            .collect();
        for r in gone {
            self.remove(r);
            let response = WatchResponse {
                watch_id: r.1,
                canceled: true,
                compact_revision: compacted,
                ..Default::default()
            };
            if let Some(stream) = self.streams.get(&r.0) {
                stream.send(response);
            }
        }
    }
}

/// A change read back from history, with its `prev_kv` when a watcher wants it.
struct Past {
    revision: Revision,
    change: Change,
    prev_kv: Option<KeyValue>,
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
            streams: HashMap::new(),
            by_key: HashMap::new(),
            ranges: HashSet::new(),
            unsynced: BTreeSet::new(),
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
        let stream =
            Stream { sender: Some(sender), signal: signal.clone(), watchers: HashMap::new(), next_id: 0 };
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
        let ids: Vec<WatchId> =
            state.streams.get(&stream).map(|s| s.watchers.keys().copied().collect()).unwrap_or_default();
        for id in ids {
            state.remove((stream, id));
        }
        state.streams.remove(&stream);
    }

    /// How many streams are open, and how many watches they hold.
    pub(crate) fn counts(&self) -> WatchCounts {
        let state = self.state.lock();
        WatchCounts {
            streams: state.streams.len(),
            watches: state.streams.values().map(|s| s.watchers.len()).sum(),
        }
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
        let s = state.streams.get_mut(&stream).expect("checked by stream_state");
        if s.watchers.len() >= self.config.max_watches_per_stream {
            return Err(Error::TooManyRequests);
        }
        let id = s.assign_id(req.watch_id)?;
        let synced = req.start_revision == 0 || req.start_revision > revision;
        let watcher = Watcher {
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
        s.watchers.insert(id, watcher);
        if announce {
            let header = ResponseHeader::at(revision);
            s.send(WatchResponse { header, watch_id: id, created: true, ..Default::default() });
        }
        if req.progress_notify {
            state.progress_watchers += 1;
        }
        if synced {
            state.index((stream, id));
        } else {
            state.unsynced.insert((stream, id));
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
        if s.watchers.len() >= self.config.max_watches_per_stream {
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
        if state.remove((stream, id)).is_some() {
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
        let ready = s.watchers.values().all(|w| w.synced && state.revision >= w.start);
        if ready && !s.watchers.is_empty() && !s.is_full(self.config.stream_capacity) {
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
        for s in state.streams.values_mut() {
            let full = s.is_full(self.config.stream_capacity);
            let mut due = Vec::new();
            for (&id, w) in s.watchers.iter_mut().filter(|(_, w)| w.progress_notify) {
                if w.quiet && w.synced && revision >= w.start && !full {
                    due.push(id);
                }
                w.quiet = true;
            }
            for id in due {
                s.send(WatchResponse {
                    header: ResponseHeader::at(revision),
                    watch_id: id,
                    ..Default::default()
                });
            }
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
    /// [`BATCH_REVISIONS`] revisions of history each; returns true when it may be called
    /// again at once.
    fn sync_pass(&self) -> Result<bool> {
        let Some(mvcc) = self.mvcc.upgrade() else { return Ok(false) };
        let mut state = self.state.lock();
        state.cancel_compacted(mvcc.compacted_revision());
        let capacity = self.config.stream_capacity;
        let picked: Vec<(WatcherRef, i64, bool)> = state
            .unsynced
            .iter()
            .filter_map(|&r| {
                let s = state.streams.get(&r.0)?;
                if s.is_full(capacity) {
                    // Its reader wakes the syncer once it has drained the stream.
                    s.signal.blocked.store(true, Ordering::SeqCst);
                    return None;
                }
                s.watchers.get(&r.1).map(|w| (r, w.next, w.prev_kv))
            })
            .take(WATCHERS_PER_SYNC)
            .collect();
        let Some(from) = picked.iter().map(|&(_, next, _)| next).min() else { return Ok(false) };
        let with_prev_kv = picked.iter().any(|&(_, _, prev_kv)| prev_kv);
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
        for (r, next, _) in picked {
            self.catch_up(&mut state, r, next, to, &history);
        }
        let more =
            state.unsynced.iter().any(|r| state.streams.get(&r.0).is_some_and(|s| !s.is_full(capacity)));
        Ok(more)
    }

    /// Sends watcher `r` its events of `history` (revisions `next..=to`), if it still
    /// waits for them, and moves it to the synced group if that caught it up.
    fn catch_up(&self, state: &mut State, r: WatcherRef, next: i64, to: i64, history: &[Past]) {
        let capacity = self.config.stream_capacity;
        let revision = state.revision;
        let Some(s) = state.streams.get_mut(&r.0) else { return };
        let full = s.is_full(capacity);
        let Some(w) = s.watchers.get_mut(&r.1) else { return };
        if w.synced || w.next != next || next > to {
            return;
        }
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
            s.send_events(r.1, revision, events);
            if s.is_full(capacity) {
                // Its reader wakes the syncer once it has drained the stream.
                s.signal.blocked.store(true, Ordering::SeqCst);
            }
        }
        let w = s.watchers.get_mut(&r.1).expect("found above");
        w.next = to + 1;
        if w.next > revision {
            state.unsynced.remove(&r);
            state.index(r);
        }
    }
}

impl CommitObserver for WatchHub {
    /// Hands the revision's events to the synced watchers that want them, one response
    /// per watcher.
    fn committed(&self, revision: i64, changes: &[Change]) {
        let mut state = self.state.lock();
        state.revision = revision;
        if state.by_key.is_empty() && state.ranges.is_empty() {
            return;
        }
        let mut batches: Vec<(WatcherRef, Vec<Event>)> = Vec::new();
        let mut slots: HashMap<WatcherRef, usize> = HashMap::new();
        let mut refs = Vec::new();
        // The watchers that take the change, and whether each wants prev_kv.
        let mut takers: Vec<(WatcherRef, bool)> = Vec::new();
        for change in changes {
            refs.clear();
            state.synced_for(change, &mut refs);
            // One lookup per watcher: writers wait for this path.
            takers.clear();
            takers.extend(refs.iter().filter_map(|&r| {
                let w = state.streams.get(&r.0)?.watchers.get(&r.1)?;
                (revision >= w.next && !w.filters_out(change)).then_some((r, w.prev_kv))
            }));
            // Looked up once per change, and only when a watcher wants it (only then is the
            // store upgraded: this may run on the store's sync thread).
            let prev = if takers.iter().any(|&(_, p)| p) {
                self.mvcc.upgrade().and_then(|mvcc| prev_kv(&mvcc, change))
            } else {
                None
            };
            if changes.len() == 1 {
                // The common case needs no slot lookup: each watcher appears once.
                batches.reserve_exact(takers.len());
            }
            for &(r, wants_prev) in &takers {
                let event = event(change, prev.as_ref().filter(|_| wants_prev));
                if changes.len() == 1 {
                    batches.push((r, vec![event]));
                    continue;
                }
                let slot = *slots.entry(r).or_insert_with(|| {
                    batches.push((r, Vec::new()));
                    batches.len() - 1
                });
                batches[slot].1.push(event);
            }
        }
        let mut fell_behind = false;
        for (r, events) in batches {
            fell_behind |= state.deliver(r, revision, events, self.config.stream_capacity);
        }
        drop(state);
        if fell_behind {
            // The syncer may be idle; it must learn of the new unsynced watchers.
            self.wake_syncer();
        }
    }
}
