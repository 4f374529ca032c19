//! The MVCC store next to the raw engine under it, on every engine this build has.
//!
//! Each operation is measured twice per engine: through [`Store`] (`<engine>/mvcc`) and as
//! the equivalent work done directly through the [`Engine`] trait (`<engine>/raw`), so the
//! MVCC layer's cost is a ratio of the two. BENCHMARKS.md has the commands and the numbers.
//!
//! - `put`: a 16-byte key and a 100-byte value, overwriting the keys of a store pre-filled
//!   with 10,000 keys in turn. MVCC appends a record under a new revision, so the raw
//!   equivalent appends one record (a 16-byte revision key, a value the size of the encoded
//!   record) under an increasing key; `raw_overwrite` overwrites instead, for reference.
//! - `get`: one existing key. Raw: `Engine::get` of one stored record.
//! - `range100`: a prefix read returning exactly 100 keys. Raw: a scan of 100 consecutive
//!   records, collected.
//! - `txn3`: a value compare, then put, put, get. Raw: one get and one batch of two puts.
//! - `put_sync` (persistent engines only): `put` with sync on, the default for them.
//!
//! Persistent engines run in a fresh `tempfile::TempDir` (under `$TMPDIR`, else `/tmp`)
//! with sync off except in `put_sync`.

use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use etcdlite::engine::{Bounds, Direction, Engine, Keyspace, MemoryEngine, WriteBatch};
use etcdlite::mvcc::{record, Revision};
use etcdlite::{Compare, CompareOp, GetOptions, KeyValue, Options, Store, Txn, TxnOp};
use tempfile::TempDir;

/// Keys in every pre-filled store.
const KEYS: usize = 10_000;
/// Bytes per value.
const VALUE_LEN: usize = 100;
/// Keys per range read.
const RANGE_LEN: usize = 100;
/// A step coprime with `KEYS`: point operations visit every key, not in key order.
const STRIDE: usize = 7_919;
/// The first revision of a pre-filled store (an empty store is at revision 1).
const FIRST_REVISION: i64 = 2;

/// The engines this build has.
#[derive(Clone, Copy)]
enum Kind {
    Memory,
    #[cfg(feature = "rocksdb")]
    RocksDb,
    #[cfg(feature = "sled")]
    Sled,
}

impl Kind {
    fn all() -> Vec<Kind> {
        #[allow(unused_mut)]
        let mut kinds = vec![Kind::Memory];
        #[cfg(feature = "rocksdb")]
        kinds.push(Kind::RocksDb);
        #[cfg(feature = "sled")]
        kinds.push(Kind::Sled);
        kinds
    }

    fn persistent() -> Vec<Kind> {
        Kind::all().into_iter().filter(|k| !matches!(k, Kind::Memory)).collect()
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Memory => "memory",
            #[cfg(feature = "rocksdb")]
            Kind::RocksDb => "rocksdb",
            #[cfg(feature = "sled")]
            Kind::Sled => "sled",
        }
    }

    fn dir(self) -> Option<TempDir> {
        match self {
            Kind::Memory => None,
            #[allow(unreachable_patterns)]
            _ => Some(TempDir::new().expect("a temporary directory")),
        }
    }

    fn options(self, dir: Option<&TempDir>) -> Options {
        match self {
            Kind::Memory => Options::memory(),
            #[cfg(feature = "rocksdb")]
            Kind::RocksDb => Options::rocksdb(dir.expect("a directory").path()),
            #[cfg(feature = "sled")]
            Kind::Sled => Options::sled(dir.expect("a directory").path()),
        }
    }

    fn open_engine(self, dir: Option<&TempDir>) -> Box<dyn Engine> {
        let _ = dir;
        match self {
            Kind::Memory => Box::new(MemoryEngine::new()),
            #[cfg(feature = "rocksdb")]
            Kind::RocksDb => {
                Box::new(etcdlite::engine::RocksEngine::open(dir.expect("a directory").path()).unwrap())
            }
            #[cfg(feature = "sled")]
            Kind::Sled => {
                Box::new(etcdlite::engine::SledEngine::open(dir.expect("a directory").path()).unwrap())
            }
        }
    }
}

/// The `i`th key: 16 bytes, `bench/key/000000` to `bench/key/009999`.
fn key(i: usize) -> Vec<u8> {
    format!("bench/key/{i:06}").into_bytes()
}

fn keys() -> Vec<Vec<u8>> {
    (0..KEYS).map(key).collect()
}

fn value() -> Vec<u8> {
    vec![b'v'; VALUE_LEN]
}

/// The engine key of the record written at `main`: what the MVCC layer writes.
fn raw_key(main: i64) -> Vec<u8> {
    record::encode_key(Revision::new(main, 0), false)
}

/// A value the size of the record an MVCC put of `key(_)` = `value()` stores, at revisions
/// of the size this benchmark reaches.
fn raw_value() -> Vec<u8> {
    let kv = KeyValue {
        key: key(0),
        create_revision: FIRST_REVISION,
        mod_revision: 1_000_000,
        version: 100,
        value: value(),
        lease: 0,
    };
    vec![b'r'; record::encode_value(&kv).len()]
}

/// A store of `KEYS` keys, each put once (revisions 2 to `KEYS + 1`), with sync off.
struct StoreFixture {
    store: Store,
    keys: Vec<Vec<u8>>,
    value: Vec<u8>,
    // Dropped after the store.
    _dir: Option<TempDir>,
}

impl StoreFixture {
    fn new(kind: Kind, sync: bool) -> Self {
        let dir = kind.dir();
        let keys = keys();
        let value = value();
        let fill = |store: Store| {
            for k in &keys {
                store.put(k.as_slice(), value.as_slice(), None).unwrap();
            }
            store
        };
        let mut store = fill(Store::open(kind.options(dir.as_ref()).sync(false)).unwrap());
        if sync {
            // Filled with sync off (10,000 fsyncs would take a while), then reopened.
            drop(store);
            store = Store::open(kind.options(dir.as_ref()).sync(true)).unwrap();
        }
        assert_eq!(store.current_revision(), FIRST_REVISION + KEYS as i64 - 1);
        StoreFixture { store, keys, value, _dir: dir }
    }
}

/// An engine holding `KEYS` records of `raw_value()`'s size under the keys of revisions 2
/// to `KEYS + 1`, written one per batch, as the MVCC fixture's engine holds them.
struct EngineFixture {
    engine: Box<dyn Engine>,
    /// The keys of the pre-filled records, in order.
    keys: Vec<Vec<u8>>,
    value: Vec<u8>,
    /// The next key an appending write uses.
    next: i64,
    _dir: Option<TempDir>,
}

impl EngineFixture {
    fn new(kind: Kind) -> Self {
        let dir = kind.dir();
        let engine = kind.open_engine(dir.as_ref());
        let value = raw_value();
        let keys: Vec<_> = (0..KEYS).map(|i| raw_key(FIRST_REVISION + i as i64)).collect();
        // One record per batch, as the store's puts write them: sled reads a tree built
        // from 10,000 one-record batches about 6x slower than one built from a single batch.
        for k in &keys {
            let mut batch = WriteBatch::with_capacity(1);
            batch.put(Keyspace::Kv, k.clone(), value.clone());
            engine.write(batch, false).unwrap();
        }
        EngineFixture { engine, keys, value, next: FIRST_REVISION + KEYS as i64, _dir: dir }
    }
}

fn next_point(i: &mut usize) -> usize {
    *i = (*i + STRIDE) % KEYS;
    *i
}

fn bench_put(c: &mut Criterion) {
    let mut group = c.benchmark_group("put");
    for kind in Kind::all() {
        put_pair(&mut group, kind, false);
        let mut fixture = None;
        group.bench_function(format!("{}/raw_overwrite", kind.name()), |b| {
            let f = fixture.get_or_insert_with(|| EngineFixture::new(kind));
            let mut i = 0;
            b.iter(|| {
                let mut batch = WriteBatch::new();
                batch.put(Keyspace::Kv, f.keys[next_point(&mut i)].clone(), f.value.clone());
                f.engine.write(batch, false).unwrap();
            })
        });
    }
    group.finish();
}

fn bench_put_sync(c: &mut Criterion) {
    let mut group = c.benchmark_group("put_sync");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    for kind in Kind::persistent() {
        put_pair(&mut group, kind, true);
    }
    group.finish();
}

/// MVCC put and its raw equivalent (an appending one-record batch).
fn put_pair(group: &mut BenchmarkGroup<'_, WallTime>, kind: Kind, sync: bool) {
    let mut fixture = None;
    group.bench_function(format!("{}/mvcc", kind.name()), |b| {
        let f = fixture.get_or_insert_with(|| StoreFixture::new(kind, sync));
        let mut i = 0;
        b.iter(|| {
            black_box(f.store.put(f.keys[next_point(&mut i)].as_slice(), f.value.as_slice(), None).unwrap())
        })
    });
    drop(fixture);
    let mut fixture = None;
    group.bench_function(format!("{}/raw", kind.name()), |b| {
        let f = fixture.get_or_insert_with(|| EngineFixture::new(kind));
        b.iter(|| {
            let mut batch = WriteBatch::new();
            batch.put(Keyspace::Kv, raw_key(f.next), f.value.clone());
            f.next += 1;
            f.engine.write(batch, sync).unwrap();
        })
    });
}

fn bench_get(c: &mut Criterion) {
    let mut group = c.benchmark_group("get");
    for kind in Kind::all() {
        let mut fixture = None;
        group.bench_function(format!("{}/mvcc", kind.name()), |b| {
            let f = fixture.get_or_insert_with(|| StoreFixture::new(kind, false));
            let mut i = 0;
            b.iter(|| {
                let resp = f.store.get(f.keys[next_point(&mut i)].as_slice(), None).unwrap();
                debug_assert_eq!(resp.kvs().len(), 1);
                black_box(resp)
            })
        });
        drop(fixture);
        let mut fixture = None;
        group.bench_function(format!("{}/raw", kind.name()), |b| {
            let f = fixture.get_or_insert_with(|| EngineFixture::new(kind));
            let mut i = 0;
            b.iter(|| black_box(f.engine.get(Keyspace::Kv, &f.keys[next_point(&mut i)]).unwrap().unwrap()))
        });
    }
    group.finish();
}

fn bench_range(c: &mut Criterion) {
    let mut group = c.benchmark_group("range100");
    let windows = KEYS / RANGE_LEN;
    for kind in Kind::all() {
        let mut fixture = None;
        group.bench_function(format!("{}/mvcc", kind.name()), |b| {
            let (f, prefixes) = fixture.get_or_insert_with(|| {
                let f = StoreFixture::new(kind, false);
                // `bench/key/0042` covers keys 4200 to 4299.
                let prefixes: Vec<_> =
                    (0..windows).map(|w| format!("bench/key/{w:04}").into_bytes()).collect();
                for p in &prefixes {
                    let resp = f.store.get(p.as_slice(), Some(GetOptions::new().with_prefix())).unwrap();
                    assert_eq!(resp.kvs().len(), RANGE_LEN);
                }
                (f, prefixes)
            });
            let mut w = 0;
            b.iter(|| {
                w = (w + 37) % windows;
                black_box(f.store.get(prefixes[w].as_slice(), Some(GetOptions::new().with_prefix())).unwrap())
            })
        });
        drop(fixture);
        let mut fixture = None;
        group.bench_function(format!("{}/raw", kind.name()), |b| {
            let f = fixture.get_or_insert_with(|| EngineFixture::new(kind));
            // Window `w` is records `w * 100` to `w * 100 + 99`; its end is the next record's key.
            let end = |w: usize| raw_key(FIRST_REVISION + ((w + 1) * RANGE_LEN) as i64);
            let bounds: Vec<_> = (0..windows).map(|w| (f.keys[w * RANGE_LEN].clone(), end(w))).collect();
            let mut w = 0;
            b.iter(|| {
                w = (w + 37) % windows;
                let (start, end) = &bounds[w];
                let mut found = Vec::with_capacity(RANGE_LEN);
                f.engine
                    .scan(Keyspace::Kv, Bounds::new(start, end), Direction::Forward, &mut |k, v| {
                        found.push((k.to_vec(), v.to_vec()));
                        ControlFlow::Continue(())
                    })
                    .unwrap();
                debug_assert_eq!(found.len(), RANGE_LEN);
                black_box(found)
            })
        });
    }
    group.finish();
}

fn bench_txn(c: &mut Criterion) {
    let mut group = c.benchmark_group("txn3");
    for kind in Kind::all() {
        let mut fixture = None;
        group.bench_function(format!("{}/mvcc", kind.name()), |b| {
            let f = fixture.get_or_insert_with(|| StoreFixture::new(kind, false));
            let mut i = 0;
            b.iter(|| {
                let i = next_point(&mut i);
                let (a, b, c) = (&f.keys[i], &f.keys[(i + 1) % KEYS], &f.keys[(i + 2) % KEYS]);
                let txn = Txn::new()
                    .when([Compare::value(a.as_slice(), CompareOp::Equal, f.value.as_slice())])
                    .and_then([
                        TxnOp::put(a.as_slice(), f.value.as_slice(), None),
                        TxnOp::put(b.as_slice(), f.value.as_slice(), None),
                        TxnOp::get(c.as_slice(), None),
                    ]);
                let resp = f.store.txn(txn).unwrap();
                debug_assert!(resp.succeeded());
                black_box(resp)
            })
        });
        drop(fixture);
        let mut fixture = None;
        group.bench_function(format!("{}/raw", kind.name()), |b| {
            let f = fixture.get_or_insert_with(|| EngineFixture::new(kind));
            let mut i = 0;
            b.iter(|| {
                let read = f.engine.get(Keyspace::Kv, &f.keys[next_point(&mut i)]).unwrap();
                let mut batch = WriteBatch::with_capacity(2);
                batch.put(Keyspace::Kv, raw_key(f.next), f.value.clone());
                batch.put(Keyspace::Kv, raw_key(f.next + 1), f.value.clone());
                f.next += 2;
                f.engine.write(batch, false).unwrap();
                black_box(read)
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_put, bench_get, bench_range, bench_txn, bench_put_sync
}
criterion_main!(benches);
