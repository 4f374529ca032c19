//! The embedded hot path under threads: `Store::get`, `Store::put`, and the embedded
//! `Client`'s get and put, on the memory engine, with 1, 2, 4 and 8 threads calling at once.
//!
//! Not a criterion bench: criterion times one routine, while this wants the throughput of N
//! threads sharing one store. Each case runs N threads over one store pre-filled as in
//! `benches/kv.rs` and `benches/client.rs` (10,000 keys of 16 bytes, 100-byte values, each
//! thread visiting the keys in a scattered order from its own starting point; a put
//! overwrites one). The threads start together at a barrier and call in a loop until the
//! case's time is up; what is reported is the calls made by all threads over the wall
//! time, and the latency per call as one thread sees it (its time over its calls).
//!
//! The client cases give each thread a clone of one embedded client (`Client::embedded`)
//! and its own tokio current_thread runtime, entered once per thousand calls (as
//! `benches/client.rs` enters it once per sample), so what is timed is the client's future,
//! not a runtime entry per call.
//!
//! Every measurement is printed as a JSON line on stdout (one per run, then one summary per
//! case with the median of the runs), so a script can plot calls/s against threads:
//!
//! ```text
//! {"bench":"threads","op":"store_get","threads":2,"run":0,"calls":..,"secs":..,"calls_per_sec":..,"ns_per_call":..}
//! {"bench":"threads","op":"store_get","threads":2,"summary":"median","runs":3,"calls_per_sec":..,"ns_per_call":..}
//! ```
//!
//! Environment: `THREADS` (a comma-separated list, default `1,2,4,8`), `SECS` (seconds per
//! run, default 1), `RUNS` (runs per case, default 3), `OPS` (a comma-separated subset of
//! `store_get,store_put,client_get,client_put`), `CALLS` (instead of a time, each thread
//! makes exactly this many calls, rounded up to a thousand: for instruction counts under
//! valgrind, where two runs differing only in `CALLS` give the cost per call).
//!
//! ```bash
//! CARGO_TARGET_DIR=/var/tmp/etcdlite-bench-target cargo bench --workspace --all-features --bench threads
//! ```

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use etcdlite::client::Client;
use etcdlite::{Options, Store};

/// Keys in every pre-filled store.
const KEYS: usize = 10_000;
/// Bytes per value.
const VALUE_LEN: usize = 100;
/// A step coprime with `KEYS`: point operations visit every key, not in key order.
const STRIDE: usize = 7_919;
/// Calls between two looks at the stop flag (and, for the client, per runtime entry).
const BATCH: usize = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    StoreGet,
    StorePut,
    ClientGet,
    ClientPut,
}

impl Op {
    const ALL: [Op; 4] = [Op::StoreGet, Op::StorePut, Op::ClientGet, Op::ClientPut];

    fn name(self) -> &'static str {
        match self {
            Op::StoreGet => "store_get",
            Op::StorePut => "store_put",
            Op::ClientGet => "client_get",
            Op::ClientPut => "client_put",
        }
    }
}

/// The `i`th key: 16 bytes, `bench/key/000000` to `bench/key/009999`.
fn key(i: usize) -> Vec<u8> {
    format!("bench/key/{i:06}").into_bytes()
}

/// A memory store of `KEYS` keys, each put once.
fn filled_store(keys: &[Vec<u8>], value: &[u8]) -> Arc<Store> {
    let store = Store::open(Options::memory()).unwrap();
    for k in keys {
        store.put(k.as_slice(), value, None).unwrap();
    }
    Arc::new(store)
}

/// What one thread did: its calls and the time it took for them.
struct Done {
    calls: u64,
    busy: Duration,
}

/// One run: `threads` threads doing `op` on `store` until `secs` have passed; returns each
/// thread's calls and time, and the wall time from the barrier to the last thread's end.
/// With `calls`, each thread stops after that many calls instead.
fn run(
    op: Op,
    threads: usize,
    secs: f64,
    calls: Option<u64>,
    store: &Arc<Store>,
    client: Option<&Client>,
) -> (Vec<Done>, Duration) {
    let keys: Arc<Vec<Vec<u8>>> = Arc::new((0..KEYS).map(key).collect());
    let value = Arc::new(vec![b'v'; VALUE_LEN]);
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (keys, value, stop, barrier) = (keys.clone(), value.clone(), stop.clone(), barrier.clone());
            let store = store.clone();
            let client = client.cloned();
            std::thread::spawn(move || {
                let mut i = t * (KEYS / threads.max(1));
                let mut next = move || {
                    i = (i + STRIDE) % KEYS;
                    i
                };
                let mut made = 0u64;
                let more = |made: u64| match calls {
                    Some(calls) => made < calls,
                    None => !stop.load(Ordering::Relaxed),
                };
                match (op, client) {
                    (Op::StoreGet | Op::StorePut, _) => {
                        barrier.wait();
                        let start = Instant::now();
                        while more(made) {
                            for _ in 0..BATCH {
                                let key = keys[next()].as_slice();
                                if op == Op::StoreGet {
                                    let resp = store.get(key, None).unwrap();
                                    debug_assert_eq!(resp.kvs().len(), 1);
                                    black_box(resp);
                                } else {
                                    black_box(store.put(key, value.as_slice(), None).unwrap());
                                }
                            }
                            made += BATCH as u64;
                        }
                        Done { calls: made, busy: start.elapsed() }
                    }
                    (Op::ClientGet | Op::ClientPut, Some(mut client)) => {
                        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                        barrier.wait();
                        let start = Instant::now();
                        while more(made) {
                            rt.block_on(async {
                                for _ in 0..BATCH {
                                    let key = keys[next()].as_slice();
                                    if op == Op::ClientGet {
                                        let resp = client.get(key, None).await.unwrap();
                                        debug_assert_eq!(resp.kvs().len(), 1);
                                        black_box(resp);
                                    } else {
                                        black_box(client.put(key, value.as_slice(), None).await.unwrap());
                                    }
                                }
                            });
                            made += BATCH as u64;
                        }
                        Done { calls: made, busy: start.elapsed() }
                    }
                    (_, None) => unreachable!("client cases are given a client"),
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    if calls.is_none() {
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
    }
    let done: Vec<Done> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    (done, start.elapsed())
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported here (use `OPS`).
    let threads: Vec<usize> =
        env_list("THREADS", "1,2,4,8").iter().map(|t| t.parse().expect("THREADS: numbers")).collect();
    let secs: f64 = std::env::var("SECS").ok().map_or(1.0, |s| s.parse().expect("SECS: a number"));
    let runs: usize = std::env::var("RUNS").ok().map_or(3, |s| s.parse().expect("RUNS: a number"));
    let calls: Option<u64> = std::env::var("CALLS").ok().map(|s| s.parse().expect("CALLS: a number"));
    let wanted = env_list("OPS", "store_get,store_put,client_get,client_put");
    let keys: Vec<_> = (0..KEYS).map(key).collect();
    let value = vec![b'v'; VALUE_LEN];
    for op in Op::ALL.into_iter().filter(|op| wanted.iter().any(|w| w == op.name())) {
        let store = filled_store(&keys, &value);
        let setup = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let client = match op {
            Op::ClientGet | Op::ClientPut => {
                Some(setup.block_on(Client::embedded(store.clone(), None)).unwrap())
            }
            _ => None,
        };
        for &n in &threads {
            let (mut rates, mut latencies) = (Vec::new(), Vec::new());
            for r in 0..runs {
                let (done, wall) = run(op, n, secs, calls, &store, client.as_ref());
                let calls: u64 = done.iter().map(|d| d.calls).sum();
                let busy: f64 = done.iter().map(|d| d.busy.as_secs_f64()).sum();
                let rate = calls as f64 / wall.as_secs_f64();
                // Each thread's time over its calls, averaged over the threads' calls.
                let ns = busy * 1e9 / calls as f64;
                println!(
                    "{{\"bench\":\"threads\",\"op\":\"{}\",\"threads\":{n},\"run\":{r},\"calls\":{calls},\"secs\":{:.4},\"calls_per_sec\":{rate:.0},\"ns_per_call\":{ns:.1}}}",
                    op.name(),
                    wall.as_secs_f64()
                );
                rates.push(rate);
                latencies.push(ns);
            }
            println!(
                "{{\"bench\":\"threads\",\"op\":\"{}\",\"threads\":{n},\"summary\":\"median\",\"runs\":{runs},\"calls_per_sec\":{:.0},\"ns_per_call\":{:.1}}}",
                op.name(),
                median(rates),
                median(latencies)
            );
        }
    }
}
