//! Model test for watches: random interleavings of writes, compactions, watch creations
//! (from now, from the past, from the future, from compacted revisions), cancels and
//! partial reads, on streams small enough that readers fall behind. Every watch's
//! deliveries are checked against a model that keeps the keyspace at every revision
//! (etcd-semantics.md section 3):
//! - a watch that was not cancelled receives exactly the events of its range and filters
//!   from its start to the last revision, in order, each revision in one response;
//! - a watch whose start was compacted is cancelled with `compact_revision` and no events;
//! - a watch cancelled by compaction while behind received a prefix of its events and
//!   needed a revision below the compaction;
//! - `prev_kv` is the key's value just before the event, absent for a creation, and absent
//!   otherwise only when that revision had been compacted.
//!
//! Watchers of the same key share each event's key-values (one allocation, not one copy
//! per watcher): this checks that sharing changes nothing any watcher sees, on single keys,
//! prefixes, explicit ranges and from-key ranges (the latter three found through the
//! hub's interval tree).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use etcdlite::watch::{RecvTimeoutError, TryRecvError};
use etcdlite::{
    DeleteOptions, EventType, Options, Store, Txn, TxnOp, WatchFilterType, WatchOptions, WatchResponse,
    WatchStream, Watcher,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

const KEYS: &[&str] = &["a", "ab", "b", "c", "d"];
const VALUES: &[&str] = &["0", "1", "2"];
/// Small, so that readers that do not read fall behind and catch up from history.
const STREAM_CAPACITY: usize = 3;
const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
enum Span {
    Key,
    Prefix,
    FromKey,
    All,
    /// From the key to the key with its first byte raised by this much (exclusive).
    Range(u8),
}

#[derive(Clone, Copy, Debug)]
enum Start {
    Now,
    /// This many revisions before the current one (at least revision 1).
    Back(i64),
    /// This many revisions after the current one.
    Ahead(i64),
}

#[derive(Clone, Debug)]
enum Op {
    Put(&'static str, &'static str),
    Delete(&'static str),
    DeletePrefix(&'static str),
    /// Puts two keys in one revision (nothing when they are the same key).
    Txn(&'static str, &'static str, &'static str),
    /// Compacts at this per-mille of the way from the compacted to the current revision.
    Compact(u16),
    Watch {
        key: &'static str,
        span: Span,
        start: Start,
        filter: Option<WatchFilterType>,
        prev_kv: bool,
    },
    /// Cancels the n-th watch (modulo how many there are).
    Cancel(usize),
    /// Reads what the n-th watch's stream holds now, without waiting.
    Drain(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let key = || select(KEYS);
    let value = || select(VALUES);
    let span = prop_oneof![
        Just(Span::Key),
        Just(Span::Prefix),
        Just(Span::FromKey),
        Just(Span::All),
        (1u8..3).prop_map(Span::Range),
    ];
    let start =
        prop_oneof![Just(Start::Now), (0i64..12).prop_map(Start::Back), (1i64..3).prop_map(Start::Ahead)];
    let filter = prop_oneof![
        3 => Just(None),
        1 => Just(Some(WatchFilterType::NoPut)),
        1 => Just(Some(WatchFilterType::NoDelete)),
    ];
    prop_oneof![
        6 => (key(), value()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => key().prop_map(Op::Delete),
        1 => select(&["a", "b", ""][..]).prop_map(Op::DeletePrefix),
        2 => (key(), key(), value()).prop_map(|(a, b, v)| Op::Txn(a, b, v)),
        1 => (0u16..=1000).prop_map(Op::Compact),
        3 => (key(), span, start, filter, any::<bool>()).prop_map(|(key, span, start, filter, prev_kv)| {
            Op::Watch { key, span, start, filter, prev_kv }
        }),
        1 => any::<usize>().prop_map(Op::Cancel),
        3 => any::<usize>().prop_map(Op::Drain),
    ]
}

/// The keyspace at one revision: key -> value.
type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// An event as the model describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Expected {
    revision: i64,
    event_type: EventType,
    key: Vec<u8>,
    value: Vec<u8>,
}

struct Model {
    /// `states[r]` is the keyspace at revision `r` (`states[0]` is unused).
    states: Vec<State>,
    /// Each revision's changes, in order (`changes[r]`).
    changes: Vec<Vec<Expected>>,
    compacted: i64,
}

impl Model {
    fn new() -> Self {
        Model {
            states: vec![State::new(), State::new()],
            changes: vec![Vec::new(), Vec::new()],
            compacted: -1,
        }
    }

    fn current(&self) -> i64 {
        self.states.len() as i64 - 1
    }

    /// Records the store's new revision, checking it is the next one.
    fn commit(&mut self, revision: i64, state: State, changes: Vec<Expected>) -> Result<(), TestCaseError> {
        prop_assert_eq!(revision, self.current() + 1);
        self.states.push(state);
        self.changes.push(changes);
        Ok(())
    }
}

struct Watch {
    key: Vec<u8>,
    range_end: Vec<u8>,
    start: i64,
    /// The start revision asked for: 0 is "from now".
    requested_start: i64,
    filter: Option<WatchFilterType>,
    prev_kv: bool,
    /// The compacted revision when the watch was created.
    compacted_at_creation: i64,
    watcher: Watcher,
    stream: WatchStream,
    responses: Vec<WatchResponse>,
}

impl Watch {
    fn contains(&self, key: &[u8]) -> bool {
        match self.range_end.as_slice() {
            [] => key == self.key.as_slice(),
            [0] => key >= self.key.as_slice(),
            end => key >= self.key.as_slice() && key < end,
        }
    }

    fn wants(&self, e: &Expected) -> bool {
        let filtered = match self.filter {
            Some(WatchFilterType::NoPut) => e.event_type == EventType::Put,
            Some(WatchFilterType::NoDelete) => e.event_type == EventType::Delete,
            None => false,
        };
        !filtered && self.contains(&e.key)
    }

    fn expected(&self, model: &Model) -> Vec<Expected> {
        let from = usize::try_from(self.start).expect("positive start");
        model.changes.iter().skip(from).flatten().filter(|e| self.wants(e)).cloned().collect()
    }

    fn cancel(&self) -> Option<&WatchResponse> {
        self.responses.iter().find(|r| r.canceled())
    }

    fn drain(&mut self) -> Result<(), TestCaseError> {
        loop {
            match self.stream.try_recv() {
                Ok(response) => self.responses.push(response),
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => prop_assert!(false, "stream ended"),
            }
        }
    }

    /// Reads until a progress notification at `last` or later, or a cancel, arrives.
    fn finish(&mut self, last: i64) -> Result<(), TestCaseError> {
        let deadline = Instant::now() + PATIENCE;
        self.watcher.request_progress().expect("progress");
        while self.cancel().is_none() {
            prop_assert!(Instant::now() < deadline, "watch stalled");
            match self.stream.recv_timeout(Duration::from_millis(20)) {
                Ok(r) if r.is_progress_notify() && r.header().revision() >= last => return Ok(()),
                Ok(r) => self.responses.push(r),
                Err(RecvTimeoutError::Timeout) => self.watcher.request_progress().expect("progress"),
                Err(RecvTimeoutError::Disconnected) => prop_assert!(false, "stream ended"),
            }
        }
        Ok(())
    }

    /// Checks everything the watch received against the model.
    fn check(&self, model: &Model, cancelled_by_user: bool) -> Result<(), TestCaseError> {
        let mut seen = Vec::new();
        let mut last_rev = 0;
        for (i, r) in self.responses.iter().enumerate() {
            if r.canceled() {
                prop_assert_eq!(i, self.responses.len() - 1, "nothing after a cancel");
            }
            let Some(first) = r.events().first() else { continue };
            prop_assert!(first.kv().mod_revision() > last_rev, "a revision split or repeated: {:?}", r);
            last_rev = r.events().last().expect("non-empty").kv().mod_revision();
            for e in r.events() {
                self.check_prev_kv(model, e)?;
                let kv = e.kv();
                seen.push(Expected {
                    revision: kv.mod_revision(),
                    event_type: e.event_type(),
                    key: kv.key().to_vec(),
                    value: kv.value().to_vec(),
                });
            }
        }
        let want = self.expected(model);
        match self.cancel() {
            Some(c) if c.compact_revision() != 0 => {
                let compact = c.compact_revision();
                prop_assert_eq!(c.header().revision(), 0);
                prop_assert!(compact <= model.compacted);
                prop_assert!(self.start < compact, "a watch at or past the compacted revision is kept");
                if self.start < self.compacted_at_creation {
                    prop_assert!(seen.is_empty(), "a watch from a compacted revision gets no events");
                }
                // It needed a revision below `compact`, after everything it received.
                prop_assert!(last_rev < compact - 1, "cancelled after receiving revision {}", last_rev);
                prop_assert_eq!(&seen[..], &want[..seen.len()]);
            }
            Some(_) => {
                prop_assert!(cancelled_by_user);
                prop_assert!(seen.len() <= want.len());
                prop_assert_eq!(&seen[..], &want[..seen.len()]);
            }
            None => {
                prop_assert!(!cancelled_by_user, "a cancel request is answered");
                prop_assert!(self.start >= self.compacted_at_creation);
                prop_assert_eq!(seen, want);
            }
        }
        Ok(())
    }

    fn check_prev_kv(&self, model: &Model, e: &etcdlite::Event) -> Result<(), TestCaseError> {
        let rev = e.kv().mod_revision();
        let before = model.states[rev as usize - 1].get(e.kv().key());
        match (self.prev_kv, e.prev_kv(), before) {
            (false, None, _) => {}
            (false, Some(_), _) => prop_assert!(false, "prev_kv not asked for"),
            (true, Some(prev), Some(value)) => prop_assert_eq!(prev.value(), value.as_slice()),
            (true, Some(prev), None) => prop_assert!(false, "prev_kv {:?} of a created key", prev),
            (true, None, None) => {}
            // Looked up when handed out: gone only if compacted by then.
            (true, None, Some(_)) => prop_assert!(rev - 1 < model.compacted, "prev_kv missing at {}", rev),
        }
        Ok(())
    }
}

fn apply(
    store: &Store,
    model: &mut Model,
    watches: &mut Vec<(Watch, bool)>,
    op: &Op,
) -> Result<(), TestCaseError> {
    let mut state = model.states.last().expect("revision 1").clone();
    let put = |state: &mut State, key: &str, value: &str, revision: i64| {
        state.insert(key.into(), value.into());
        Expected { revision, event_type: EventType::Put, key: key.into(), value: value.into() }
    };
    let delete = |state: &mut State, keys: Vec<Vec<u8>>, revision: i64| -> Vec<Expected> {
        keys.into_iter()
            .map(|key| {
                state.remove(&key);
                Expected { revision, event_type: EventType::Delete, key, value: Vec::new() }
            })
            .collect()
    };
    let next = model.current() + 1;
    match *op {
        Op::Put(key, value) => {
            let revision = store.put(key, value, None).expect("put").header().revision();
            let change = put(&mut state, key, value, next);
            model.commit(revision, state, vec![change])?;
        }
        Op::Delete(key) | Op::DeletePrefix(key) => {
            let (options, keys): (_, Vec<Vec<u8>>) = match op {
                Op::Delete(_) => {
                    (None, state.keys().filter(|k| k.as_slice() == key.as_bytes()).cloned().collect())
                }
                _ => (
                    Some(DeleteOptions::new().with_prefix()),
                    state.keys().filter(|k| k.starts_with(key.as_bytes())).cloned().collect(),
                ),
            };
            let response = store.delete(key, options).expect("delete");
            prop_assert_eq!(response.deleted(), keys.len() as i64);
            if !keys.is_empty() {
                let changes = delete(&mut state, keys, next);
                model.commit(response.header().revision(), state, changes)?;
            }
        }
        Op::Txn(a, b, value) if a != b => {
            let ops = [TxnOp::put(a, value, None), TxnOp::put(b, value, None)];
            let revision = store.txn(Txn::new().and_then(ops)).expect("txn").header().revision();
            let changes = vec![put(&mut state, a, value, next), put(&mut state, b, value, next)];
            model.commit(revision, state, changes)?;
        }
        Op::Txn(..) => {}
        Op::Compact(per_mille) => {
            let (low, high) = (model.compacted.max(1), model.current());
            let at = low + (high - low) * i64::from(per_mille) / 1000;
            if at > model.compacted {
                store.compact(at, None).expect("compact");
                model.compacted = at;
            }
        }
        Op::Watch { key, ref span, start, filter, prev_kv } => {
            let mut options = match span {
                Span::Key => WatchOptions::new(),
                Span::Prefix => WatchOptions::new().with_prefix(),
                Span::FromKey => WatchOptions::new().with_from_key(),
                Span::All => WatchOptions::new().with_all_keys(),
                Span::Range(width) => {
                    let mut end = key.as_bytes().to_vec();
                    end[0] += width;
                    WatchOptions::new().with_range(end)
                }
            };
            if prev_kv {
                options = options.with_prev_key();
            }
            if let Some(filter) = filter {
                options = options.with_filters([filter]);
            }
            let start = match start {
                Start::Now => 0,
                Start::Back(n) => (model.current() - n).max(1),
                Start::Ahead(n) => model.current() + n,
            };
            let req = options.with_start_revision(start).into_request(key.as_bytes().to_vec());
            let (watcher, stream) = store.watch_stream();
            watcher.watch_request(req.clone()).expect("watch");
            let created = stream.try_recv().expect("created response first");
            prop_assert!(created.created() && !created.canceled());
            prop_assert_eq!(created.header().revision(), model.current());
            let key = if req.key.is_empty() { vec![0] } else { req.key };
            let watch = Watch {
                key,
                range_end: req.range_end,
                start: if start == 0 { model.current() + 1 } else { start },
                requested_start: start,
                filter,
                prev_kv,
                compacted_at_creation: model.compacted,
                watcher,
                stream,
                responses: Vec::new(),
            };
            watches.push((watch, false));
        }
        Op::Cancel(n) if !watches.is_empty() => {
            let i = n % watches.len();
            let (watch, cancelled) = &mut watches[i];
            watch.watcher.cancel_by_id(0).expect("cancel");
            *cancelled = true;
        }
        Op::Drain(n) if !watches.is_empty() => {
            let i = n % watches.len();
            watches[i].0.drain()?;
        }
        Op::Cancel(_) | Op::Drain(_) => {}
    }
    Ok(())
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let store = Store::open(Options::memory().watch_stream_capacity(STREAM_CAPACITY)).expect("open");
    let mut model = Model::new();
    let mut watches = Vec::new();
    for op in ops {
        apply(&store, &mut model, &mut watches, op)?;
    }
    let last = model.current();
    for (watch, cancelled) in &mut watches {
        let waiting = watch.requested_start > last;
        if *cancelled || waiting {
            // A cancel response is already queued, and everything before it. A watch
            // waiting for a future revision has nothing to get, and etcd sends it no
            // progress notification.
            watch.drain()?;
        } else {
            watch.finish(last)?;
        }
        watch.check(&model, *cancelled)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn watches_deliver_what_the_model_says(ops in vec(op(), 1..60)) {
        run(&ops)?;
    }
}
