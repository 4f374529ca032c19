//! The async [`Client`] over a store in this process (`Client::embedded`) next to the
//! [`Store`] call it wraps, on the memory engine, so the client layer's cost is a ratio
//! (the target: `Client::put` and `Client::get` within 1.5x of `Store::put` and
//! `Store::get`). BENCHMARKS.md has the commands and the numbers.
//!
//! - `client_put`: a 16-byte key and a 100-byte value, overwriting the keys of a store
//!   pre-filled with 10,000 keys, visited in a scattered order, as in `benches/kv.rs`;
//!   `store` is `Store::put`, `client` is `Client::put` on an embedded client of the same
//!   kind of store.
//! - `client_get`: one existing key, the same way: `Store::get` against `Client::get`.
//!
//! Both sides take the key and value as slices and copy them into the request, so the
//! copies are in both. The client's calls run on a tokio current_thread runtime, entered
//! once per sample: one `block_on` awaits the sample's calls one after another in a loop
//! and times the loop (what criterion's `to_async(&runtime).iter` does, written out with
//! `iter_custom` so that every call borrows the one client mutably, as `Client::put`
//! wants, instead of cloning it per call as a `to_async` closure would have to). So what
//! is timed per call is the client's own future (building the request, the quota check,
//! the store call, awaiting durability, the header, converting the answer), not a runtime
//! entry and exit, which a `Runtime::block_on` per call would add to every call though a
//! program awaiting the client inside its runtime never pays it. An embedded call never
//! waits on the memory engine (its durability future is ready when first polled), so the
//! runtime never parks.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use etcdlite::client::Client;
use etcdlite::{Options, Store};
use tokio::runtime::Runtime;

/// Keys in every pre-filled store.
const KEYS: usize = 10_000;
/// Bytes per value.
const VALUE_LEN: usize = 100;
/// A step coprime with `KEYS`: point operations visit every key, not in key order.
const STRIDE: usize = 7_919;

/// The `i`th key: 16 bytes, `bench/key/000000` to `bench/key/009999`.
fn key(i: usize) -> Vec<u8> {
    format!("bench/key/{i:06}").into_bytes()
}

fn next_point(i: &mut usize) -> usize {
    *i = (*i + STRIDE) % KEYS;
    *i
}

/// A memory store of `KEYS` keys, each put once, and its keys and value.
struct Fixture {
    store: Store,
    keys: Vec<Vec<u8>>,
    value: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        let store = Store::open(Options::memory()).unwrap();
        let keys: Vec<_> = (0..KEYS).map(key).collect();
        let value = vec![b'v'; VALUE_LEN];
        for k in &keys {
            store.put(k.as_slice(), value.as_slice(), None).unwrap();
        }
        Fixture { store, keys, value }
    }
}

/// A current_thread runtime, as a single-threaded program would run the client on.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

/// An embedded client over a fresh pre-filled store, and its keys and value.
fn client_fixture(rt: &Runtime) -> (Client, Vec<Vec<u8>>, Vec<u8>) {
    let Fixture { store, keys, value } = Fixture::new();
    let client = rt.block_on(Client::embedded(store, None)).unwrap();
    (client, keys, value)
}

fn bench_put(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_put");
    let mut fixture = None;
    group.bench_function("store", |b| {
        let f = fixture.get_or_insert_with(Fixture::new);
        let mut i = 0;
        b.iter(|| {
            black_box(f.store.put(f.keys[next_point(&mut i)].as_slice(), f.value.as_slice(), None).unwrap())
        })
    });
    drop(fixture);
    let rt = runtime();
    let mut fixture = None;
    group.bench_function("client", |b| {
        let (client, keys, value) = fixture.get_or_insert_with(|| client_fixture(&rt));
        let mut i = 0;
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let key = keys[next_point(&mut i)].as_slice();
                    black_box(client.put(key, value.as_slice(), None).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn bench_get(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_get");
    let mut fixture = None;
    group.bench_function("store", |b| {
        let f = fixture.get_or_insert_with(Fixture::new);
        let mut i = 0;
        b.iter(|| {
            let resp = f.store.get(f.keys[next_point(&mut i)].as_slice(), None).unwrap();
            debug_assert_eq!(resp.kvs().len(), 1);
            black_box(resp)
        })
    });
    drop(fixture);
    let rt = runtime();
    let mut fixture = None;
    group.bench_function("client", |b| {
        let (client, keys, _) = fixture.get_or_insert_with(|| client_fixture(&rt));
        let mut i = 0;
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let resp = client.get(keys[next_point(&mut i)].as_slice(), None).await.unwrap();
                    debug_assert_eq!(resp.kvs().len(), 1);
                    black_box(resp);
                }
                start.elapsed()
            })
        })
    });
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
    targets = bench_put, bench_get
}
criterion_main!(benches);
