//! Watch costs on the memory engine. BENCHMARKS.md has the commands and the figures.
//!
//! - `watch_put/idle_other_keys/N`: a put (16-byte key, 100-byte value, overwriting one of
//!   10,000 keys, as `benches/kv.rs` does) while N watchers, each on its own stream
//!   ([`Store::watch`]) and each on its own single key, watch keys that are never put. The
//!   streams stay open and stay empty. This is the commit path's cost of merely *having*
//!   watchers; the target is that N = 10,000 costs under 2x N = 0.
//! - `watch_put/same_key/N`: a put of the one key that N watchers (one stream each) watch.
//!   Measured: the writer's side only, i.e. `Store::put` returning, which includes handing
//!   each of the N watchers its event (the hub builds one response per watcher and sends
//!   it on the watcher's channel while the writer lock is held). Not measured: the readers
//!   taking the events off their streams. Every stream is drained between timed batches,
//!   outside the timing, so no stream ever holds more than a batch of responses (batches
//!   stay below the default stream capacity of 128): the watchers stay synced, and no put
//!   takes the "stream full, fall behind" path, which would be cheaper and not what a
//!   watcher with a live reader costs. Each drained response is checked to be the one event
//!   of its put. N = 0 is the baseline: the same put of that one key, with no watcher
//!   (a repeated put of one key is cheaper than `idle_other_keys`' scattered puts).
//! - `watch_latency/10000_watchers_one_key/*`: the time from just before a put of the key
//!   10,000 watchers (one stream each) watch until every one of the 10,000 streams has
//!   handed its reader the event (the target: within 50 ms). `bench_thread`: the
//!   bench thread puts, then receives from every stream itself. `2_threads`: two reader
//!   threads own 5,000 streams each and wait, blocked in `recv`, on them in turn; the time
//!   runs until both have received all of theirs, so it includes waking them.
//! - `watch_catch_up/*`: a store holding 100,000 revisions, each a put of one of 10,000
//!   keys `hist/0000`..`hist/9999` (100-byte values); timed: creating a watch with
//!   `start_revision = 1` and receiving until every event it wants has arrived, read from
//!   history by the syncer thread in batches of up to 1,000 revisions. `all`: a watch of the
//!   prefix `hist/` (100,000 events); `tenth`: of `hist/3` (10,000 events, from the same
//!   100,000 revisions of history). Throughput is events delivered per second.
//!
//! - `watch_put/1mib_value/N`: a put of a 1 MiB value to the key N watchers (one stream
//!   each) watch, timed as `same_key` is (the writer's side; streams drained and history
//!   compacted between timed batches, outside the timing; the values are made before the
//!   timing and moved into the put). `watch_put/1mib_value/memcpy` is one `Vec::clone` of
//!   1 MiB in the same run: each watcher sharing the event, not copying it, keeps N =
//!   1,000 within a few copies of N = 0 (before events were shared: about 1.8 s a put).
//! - `watch_put/prefix_watchers_elsewhere/N`: a put as in `idle_other_keys` while N
//!   prefix watchers (one stream each) watch prefixes that do not hold the key, half
//!   sorting below the put keys (`abc/NNNNNN/`) and half above (`pfx/NNNNNN/`). Range
//!   watchers are found through an interval tree, so N = 100,000 should cost at most 2x
//!   N = 0 (before, every put scanned every range watcher: about 41 ms).
//!
//! Memory per idle watcher is measured by `examples/watch_memory.rs`, not here.

use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use etcdlite::{Options, Store, WatchOptions, WatchStream, Watcher};

/// Keys in every pre-filled store (as in `benches/kv.rs`).
const KEYS: usize = 10_000;
/// Bytes per value.
const VALUE_LEN: usize = 100;
/// A step coprime with `KEYS`: puts visit every key, not in key order.
const STRIDE: usize = 7_919;
/// Watcher counts of the idle case.
const IDLE: [usize; 4] = [0, 1, 100, 10_000];
/// Watcher counts of the same-key case.
const SAME: [usize; 5] = [0, 1, 100, 1_000, 10_000];
/// Watchers of the latency case.
const LATENCY_WATCHERS: usize = 10_000;
/// Reader threads of the latency case's threaded variant.
const READERS: usize = 2;
/// Revisions of history in the catch-up case.
const HISTORY: usize = 100_000;
/// Bytes of the large value case's value.
const LARGE: usize = 1 << 20;
/// Watcher counts of the large value case.
const LARGE_WATCHERS: [usize; 3] = [0, 1, 1_000];
/// Prefix watcher counts of the prefixes-elsewhere case.
const PREFIXES: [usize; 2] = [0, 100_000];
/// The key the same-key and latency cases put.
const HOT: &[u8] = b"bench/hot";

/// The `i`th key of the pre-filled store: 16 bytes, `bench/key/000000` to `bench/key/009999`.
fn key(i: usize) -> Vec<u8> {
    format!("bench/key/{i:06}").into_bytes()
}

/// The key of the `i`th idle watcher: never put.
fn idle_key(i: usize) -> Vec<u8> {
    format!("idle/key/{i:06}").into_bytes()
}

fn value() -> Vec<u8> {
    vec![b'v'; VALUE_LEN]
}

fn next_point(i: &mut usize) -> usize {
    *i = (*i + STRIDE) % KEYS;
    *i
}

/// A memory store with `KEYS` keys, each put once.
struct Fixture {
    store: Store,
    keys: Vec<Vec<u8>>,
    value: Vec<u8>,
    /// Open watch streams (both ends kept alive). Declared after `store`, so they drop
    /// after it, and the store's drop does not close them one by one.
    streams: Vec<(Watcher, WatchStream)>,
}

impl Fixture {
    fn new() -> Self {
        let store = Store::open(Options::memory()).unwrap();
        let keys: Vec<_> = (0..KEYS).map(key).collect();
        let value = value();
        for k in &keys {
            store.put(k.as_slice(), value.as_slice(), None).unwrap();
        }
        store.put(HOT, value.as_slice(), None).unwrap();
        Fixture { store, keys, value, streams: Vec::new() }
    }

    /// Adds `n` watchers, each on its own stream, each of `key(i)`.
    fn watch_each(self, n: usize, key: impl Fn(usize) -> Vec<u8>) -> Self {
        self.watch_each_with(n, key, None)
    }

    /// Opens `n` streams, each watching `key(i)` with `options`.
    fn watch_each_with(
        mut self,
        n: usize,
        key: impl Fn(usize) -> Vec<u8>,
        options: Option<WatchOptions>,
    ) -> Self {
        self.streams.extend((0..n).map(|i| self.store.watch(key(i), options.clone()).unwrap()));
        self
    }
}

/// Times a put of one of the pre-filled keys, visited in a scattered order, beside the
/// watchers `watched` opens, none of which watches a put key; then checks that not one
/// response reached their streams.
fn bench_puts_beside_watchers(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    watched: impl FnOnce() -> Fixture,
) {
    let mut watched = Some(watched);
    let mut fixture = None;
    group.bench_function(id, |b| {
        let f = fixture.get_or_insert_with(|| (watched.take().expect("set up once"))());
        let mut i = 0;
        b.iter(|| {
            black_box(f.store.put(f.keys[next_point(&mut i)].as_slice(), f.value.as_slice(), None).unwrap())
        })
    });
    if let Some(f) = fixture {
        assert!(
            f.streams.iter().all(|(_, s)| s.try_recv().is_err()),
            "a watcher of other keys got a response"
        );
    }
}

/// The prefix of the `i`th prefix watcher: never holds a put key (`bench/key/...`), half
/// below them, half above.
fn elsewhere_prefix(i: usize) -> Vec<u8> {
    let side = if i.is_multiple_of(2) { "abc" } else { "pfx" };
    format!("{side}/{i:06}/").into_bytes()
}

/// Takes `puts` responses off every stream: each the single event of one put of `HOT`.
/// Panics if a stream has fewer (a watcher fell behind, or a delivery was lost).
fn drain(streams: &[(Watcher, WatchStream)], puts: u64) {
    for (_, stream) in streams {
        for _ in 0..puts {
            let response = stream.try_recv().expect("every put's event is on every stream");
            assert_eq!(response.events().len(), 1);
            assert_eq!(response.events()[0].kv().key(), HOT);
        }
    }
}

fn put_with_watchers(c: &mut Criterion) {
    let mut group = c.benchmark_group("watch_put");
    group.sample_size(50).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for n in IDLE {
        let id = BenchmarkId::new("idle_other_keys", n);
        bench_puts_beside_watchers(&mut group, id, || Fixture::new().watch_each(n, idle_key));
    }
    for n in SAME {
        if n >= 10_000 {
            // About 5 ms a put, plus as long again to drain: fewer samples.
            group.sample_size(20);
        }
        // Puts per timed batch: enough to make the timer's cost negligible for one watcher,
        // few enough that the responses held between drains stay small, and always below
        // the default stream capacity (128), so no watcher falls behind.
        let batch = (1_000 / n.max(1) as u64).clamp(1, 64);
        let mut fixture = None;
        group.bench_function(BenchmarkId::new("same_key", n), |b| {
            let f = fixture.get_or_insert_with(|| Fixture::new().watch_each(n, |_| HOT.to_vec()));
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let puts = left.min(batch);
                    let start = Instant::now();
                    for _ in 0..puts {
                        black_box(f.store.put(HOT, f.value.as_slice(), None).unwrap());
                    }
                    timed += start.elapsed();
                    drain(&f.streams, puts);
                    left -= puts;
                }
                timed
            })
        });
    }
    group.finish();
}

fn delivery_latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("watch_latency");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    let id = format!("{LATENCY_WATCHERS}_watchers_one_key");

    let mut fixture = None;
    group.bench_function(BenchmarkId::new(&id, "bench_thread"), |b| {
        let f = fixture.get_or_insert_with(|| Fixture::new().watch_each(LATENCY_WATCHERS, |_| HOT.to_vec()));
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                f.store.put(HOT, f.value.as_slice(), None).unwrap();
                for (_, stream) in &f.streams {
                    let response = stream.recv().expect("the store is open");
                    debug_assert_eq!(response.events().len(), 1);
                    black_box(response);
                }
                timed += start.elapsed();
            }
            timed
        })
    });
    drop(fixture);

    // The store, and the channel on which the reader threads report each completed round.
    let mut fixture: Option<(Fixture, mpsc::Receiver<()>)> = None;
    let mut readers = Vec::new();
    group.bench_function(BenchmarkId::new(&id, format!("{READERS}_threads")), |b| {
        let (f, done) = fixture.get_or_insert_with(|| {
            let mut f = Fixture::new().watch_each(LATENCY_WATCHERS, |_| HOT.to_vec());
            let (report, done) = mpsc::channel();
            let per_reader = LATENCY_WATCHERS.div_ceil(READERS);
            while !f.streams.is_empty() {
                let mine = f.streams.split_off(f.streams.len().saturating_sub(per_reader));
                let report = report.clone();
                readers.push(thread::spawn(move || loop {
                    for (_, stream) in &mine {
                        // `None` once the store is dropped: the bench is over.
                        let Some(response) = stream.recv() else { return };
                        debug_assert_eq!(response.events().len(), 1);
                        black_box(response);
                    }
                    if report.send(()).is_err() {
                        return;
                    }
                }));
            }
            (f, done)
        });
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                f.store.put(HOT, f.value.as_slice(), None).unwrap();
                for _ in 0..READERS {
                    done.recv().expect("a reader thread is running");
                }
                timed += start.elapsed();
            }
            timed
        })
    });
    // Dropping the store ends the streams, and with them the reader threads.
    drop(fixture);
    for reader in readers {
        reader.join().unwrap();
    }
    group.finish();
}

/// A memory store with `HISTORY` revisions: puts of `hist/0000`..`hist/9999`, visited in
/// a scattered order, ten times each.
fn history_store() -> Store {
    let store = Store::open(Options::memory()).unwrap();
    let value = value();
    let mut i = 0;
    for _ in 0..HISTORY {
        store.put(format!("hist/{:04}", next_point(&mut i)), value.as_slice(), None).unwrap();
    }
    assert_eq!(store.current_revision(), 1 + HISTORY as i64);
    store
}

fn catch_up(c: &mut Criterion) {
    let mut group = c.benchmark_group("watch_catch_up");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(6));
    let mut store = None;
    for (name, prefix, events) in [("all", "hist/", HISTORY), ("tenth", "hist/3", HISTORY / 10)] {
        group.throughput(Throughput::Elements(events as u64));
        group.bench_function(format!("{HISTORY}_revisions/{name}"), |b| {
            let store = store.get_or_insert_with(history_store);
            b.iter(|| {
                let options = WatchOptions::new().with_prefix().with_start_revision(1);
                let (_watcher, stream) = store.watch(prefix, Some(options)).unwrap();
                let mut received = 0;
                while received < events {
                    let response = stream.recv().expect("the store is open");
                    assert!(!response.canceled());
                    received += response.events().len();
                }
                assert_eq!(received, events);
            })
        });
    }
    group.finish();
}

fn put_large_and_among_prefixes(c: &mut Criterion) {
    let mut group = c.benchmark_group("watch_put");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    let large = vec![b'v'; LARGE];
    group.bench_function(BenchmarkId::new("1mib_value", "memcpy"), |b| {
        b.iter(|| black_box(black_box(&large).clone()))
    });
    for n in LARGE_WATCHERS {
        // Puts per timed batch: the streams hold that many shared events between drains.
        const BATCH: u64 = 8;
        let mut fixture = None;
        group.bench_function(BenchmarkId::new("1mib_value", n), |b| {
            let f = fixture.get_or_insert_with(|| Fixture::new().watch_each(n, |_| HOT.to_vec()));
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let puts = left.min(BATCH);
                    let values: Vec<Vec<u8>> = (0..puts).map(|_| large.clone()).collect();
                    let start = Instant::now();
                    for value in values {
                        black_box(f.store.put(HOT, value, None).unwrap());
                    }
                    timed += start.elapsed();
                    drain(&f.streams, puts);
                    // Keep the history of 1 MiB values from filling memory.
                    f.store.compact(f.store.current_revision(), None).unwrap();
                    left -= puts;
                }
                timed
            })
        });
    }
    for n in PREFIXES {
        let id = BenchmarkId::new("prefix_watchers_elsewhere", n);
        let prefix = Some(WatchOptions::new().with_prefix());
        bench_puts_beside_watchers(&mut group, id, || {
            Fixture::new().watch_each_with(n, elsewhere_prefix, prefix)
        });
    }
    group.finish();
}

criterion_group!(benches, put_with_watchers, put_large_and_among_prefixes, delivery_latency, catch_up);
criterion_main!(benches);
