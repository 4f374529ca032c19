//! Many writers, many watchers: every watcher must receive exactly the events of its range
//! and filters, from its start, in revision order, with no gap and no duplicate, whatever
//! the interleaving. Some watchers start in the past while writes go on, some read slowly
//! on purpose (their small stream fills, they fall behind and catch up from history), some
//! are created halfway. The expected events come from the store's own history, read once
//! every writer is done.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use etcdlite::watch::RecvTimeoutError;
use etcdlite::{
    DeleteOptions, EventType, KeyValue, Options, Store, Txn, TxnOp, WatchFilterType, WatchOptions,
    WatchStream, Watcher,
};

const WRITERS: usize = 4;
const WRITES_PER_WRITER: usize = 300;
const KEYS: usize = 24;
/// A stream this small fills after a few revisions when its reader dawdles.
const STREAM_CAPACITY: usize = 4;
/// Long enough to matter only when something is wrong.
const PATIENCE: Duration = Duration::from_secs(20);

/// An event as the test compares it.
type Seen = (i64, EventType, Vec<u8>, Vec<u8>);

fn key(i: usize) -> Vec<u8> {
    format!("k/{:02}", i % KEYS).into_bytes()
}

/// One writer's work: puts, deletes, multi-key txns and prefix deletes over a small key set.
fn write(store: &Store, writer: usize) {
    for i in 0..WRITES_PER_WRITER {
        let n = writer * 7919 + i * 31;
        let value = format!("w{writer}-{i}");
        match n % 10 {
            0..=5 => {
                store.put(key(n), value, None).expect("put");
            }
            6 | 7 => {
                store.delete(key(n), None).expect("delete");
            }
            8 => {
                let ops = [TxnOp::put(key(n), value.clone(), None), TxnOp::put(key(n + 1), value, None)];
                store.txn(Txn::new().and_then(ops)).expect("txn");
            }
            _ => {
                let prefix = format!("k/{}", n % 3);
                store.delete(prefix, Some(DeleteOptions::new().with_prefix())).expect("prefix delete");
            }
        }
    }
}

/// What a watcher asks for, and how its reader behaves.
#[derive(Clone)]
struct Spec {
    options: WatchOptions,
    key: Vec<u8>,
    /// Start in the past: this many revisions before the current one at creation.
    behind: Option<i64>,
    slow: bool,
}

fn specs() -> Vec<Spec> {
    let spec = |key: &str, options: WatchOptions, behind: Option<i64>, slow: bool| Spec {
        options,
        key: key.as_bytes().to_vec(),
        behind,
        slow,
    };
    vec![
        spec("k/", WatchOptions::new().with_prefix(), None, false),
        spec("k/", WatchOptions::new().with_prefix(), None, true),
        spec("k/", WatchOptions::new().with_prefix(), Some(1_000_000), false),
        spec("k/", WatchOptions::new().with_prefix(), Some(50), true),
        spec("k/03", WatchOptions::new(), None, false),
        spec("k/03", WatchOptions::new(), Some(30), true),
        spec("k/1", WatchOptions::new().with_prefix(), None, true),
        spec("k/05", WatchOptions::new().with_range("k/12"), Some(10), false),
        spec("k/", WatchOptions::new().with_prefix().with_filters([WatchFilterType::NoPut]), None, true),
        spec(
            "k/",
            WatchOptions::new().with_prefix().with_filters([WatchFilterType::NoDelete]),
            Some(5),
            false,
        ),
        spec("k/2", WatchOptions::new().with_from_key(), None, false),
        spec("", WatchOptions::new().with_all_keys(), Some(100), true),
    ]
}

/// A watch on its own stream, and the revision it starts from.
struct Watch {
    spec: Spec,
    start: i64,
    watcher: Watcher,
    stream: WatchStream,
}

fn create(store: &Store, spec: &Spec) -> Watch {
    let (watcher, stream) = store.watch_stream();
    let current = store.current_revision();
    let start = spec.behind.map(|behind| (current - behind).max(1));
    let options = spec.options.clone().with_start_revision(start.unwrap_or(0));
    watcher.watch(spec.key.clone(), Some(options)).expect("watch");
    let created = stream.recv_timeout(PATIENCE).expect("created response");
    assert!(created.created() && !created.canceled());
    // A watch from now starts after the revision its created response names.
    let start = start.unwrap_or(created.header().revision() + 1);
    Watch { spec: spec.clone(), start, watcher, stream }
}

/// Reads `watch` while the writers run, until a progress notification says every revision
/// up to `last` (set once they are done) has been sent; returns its events and checks each
/// response on the way.
fn read(watch: &Watch, last: &AtomicI64) -> Vec<Seen> {
    let deadline = Instant::now() + PATIENCE;
    let mut seen: Vec<Seen> = Vec::new();
    let mut last_response_rev = 0;
    watch.watcher.request_progress().expect("progress");
    loop {
        assert!(Instant::now() < deadline, "watch stalled");
        let response = match watch.stream.recv_timeout(Duration::from_millis(50)) {
            Ok(response) => response,
            Err(RecvTimeoutError::Timeout) => {
                // Progress is granted only once the watch has caught up: ask again.
                watch.watcher.request_progress().expect("progress");
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => panic!("stream ended"),
        };
        assert!(!response.canceled(), "nothing is compacted, so nothing is cancelled: {response:?}");
        let last = last.load(Ordering::SeqCst);
        if response.is_progress_notify() && last > 0 && response.header().revision() >= last {
            return seen;
        }
        if watch.spec.slow {
            thread::sleep(Duration::from_micros(300));
        }
        if let Some(first) = response.events().first() {
            // A revision's events are never split across responses.
            assert!(first.kv().mod_revision() > last_response_rev, "revision split or repeated");
            last_response_rev = response.events().last().expect("non-empty").kv().mod_revision();
            assert!(response.header().revision() >= last_response_rev);
        }
        seen.extend(response.events().iter().map(|e| {
            let kv = e.kv();
            (kv.mod_revision(), e.event_type(), kv.key().to_vec(), kv.value().to_vec())
        }));
    }
}

/// The events `spec` must see from `start`, out of the store's history.
fn expected(store: &Store, watch: &Watch, last: i64) -> Vec<Seen> {
    let options = watch.spec.options.clone().into_request(watch.spec.key.clone());
    let (key, end) =
        (if options.key.is_empty() { vec![0] } else { options.key.clone() }, options.range_end.clone());
    let inside = |k: &[u8]| match end.as_slice() {
        [] => k == key.as_slice(),
        [0] => k >= key.as_slice(),
        end => k >= key.as_slice() && k < end,
    };
    let mut events = Vec::new();
    let mut visit = |kv: KeyValue, kind: EventType| {
        let filtered = options.filters.contains(match kind {
            EventType::Delete => &WatchFilterType::NoDelete,
            EventType::Put => &WatchFilterType::NoPut,
        });
        if !filtered && inside(&kv.key) {
            events.push((kv.mod_revision, kind, kv.key, kv.value));
        }
    };
    store.history(watch.start, last, &mut visit).expect("history");
    events
}

#[test]
fn memory_watchers_get_exactly_their_events_under_concurrent_writes() {
    run(Options::memory());
}

#[cfg(feature = "sled")]
#[test]
fn sled_watchers_get_exactly_their_events_under_concurrent_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    run(Options::sled(dir.path()).sync(false));
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocksdb_watchers_get_exactly_their_events_under_concurrent_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    run(Options::rocksdb(dir.path()).sync(false));
}

fn run(options: Options) {
    let store = Arc::new(Store::open(options.watch_stream_capacity(STREAM_CAPACITY)).expect("open"));
    for i in 0..KEYS {
        store.put(key(i), "seed", None).expect("seed");
    }
    let last = Arc::new(AtomicI64::new(0));
    let read_in_background = |watch: Watch| {
        let (store, last) = (store.clone(), last.clone());
        thread::spawn(move || {
            let seen = read(&watch, &last);
            let want = expected(&store, &watch, last.load(Ordering::SeqCst));
            (watch.spec.key.clone(), watch.start, seen, want)
        })
    };
    let mut readers: Vec<_> = specs().iter().map(|s| read_in_background(create(&store, s))).collect();

    let start = Arc::new(Barrier::new(WRITERS + 1));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, start) = (store.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                write(&store, w);
            })
        })
        .collect();
    start.wait();
    // Watches created while the writers run: those starting in the past race live writes.
    for spec in specs() {
        readers.push(read_in_background(create(&store, &spec)));
        thread::sleep(Duration::from_millis(1));
    }
    for writer in writers {
        writer.join().expect("writer");
    }
    last.store(store.current_revision(), Ordering::SeqCst);

    for (i, reader) in readers.into_iter().enumerate() {
        let (key, start, seen, want) = reader.join().expect("reader");
        // Those created before the writers started see their writes (later ones may be
        // created after the last write).
        assert!(i >= specs().len() || !want.is_empty(), "the early watches have events to get");
        assert_eq!(seen.len(), want.len(), "watch of {:?} from {start}", String::from_utf8_lossy(&key));
        assert_eq!(seen, want, "watch of {:?} from {start}", String::from_utf8_lossy(&key));
    }
}
