//! Scale: `SCALE_KEYS` keys (1,000,000 by default) × `SCALE_REVS` revisions each (10), on
//! the embedded engines and on the server beside etcd, in one run. The command, the
//! conditions and the figures are in BENCHMARKS.md.
//!
//! Every key is `scale/NNNNNNN` (seven digits) and every value 24 bytes. A load writes the
//! keys round after round, each round one put of every key, in txns of 128 puts (etcd's
//! default `--max-txn-ops`), `SCALE_WRITERS` (8) txns in flight: threads on the embedded
//! `Store`, tasks of one `etcd-client` connection on a server.
//!
//! For each system (`SCALE_SYSTEMS`, a comma-separated subset of
//! `memory,rocksdb,sled,etcd,server`; all by default):
//!
//! 1. `load`: the rounds' time and rate; during the first round, memory samples every
//!    10% of the keys (`memory_sample`: the live heap of this process for the embedded
//!    engines, the server's RssAnon and for etcd also `go_memstats_heap_inuse_bytes`).
//! 2. `open`: the store (or the server process) stopped and started again on its data,
//!    timed until its first get is answered, with the memory it then holds: empty, after
//!    the first round (one revision per key), after every round, and after compaction. For
//!    the embedded persistent engines, `heap_bytes` is what the open allocated on this
//!    process's Rust heap (a counting global allocator, bytes as requested): on RocksDB
//!    that is the index alone, as RocksDB allocates in C++; sled is Rust, so its page
//!    cache is counted too. `rss_anon_delta` is the change of RssAnon (freed memory the
//!    allocator kept can hide part of it). For a server: its RssAnon (`/proc/PID/status`,
//!    which leaves out file mappings such as bbolt's) and for etcd its heap in use.
//! 3. `range`: latency (p50, p99, in µs) over every key: a point get of a random key, a
//!    1,000-key prefix (`scale/NNNN`), a count-only range of every key and of a 1,000-key
//!    prefix. On a server, linearizable (etcd-client's default) and a serializable point
//!    get beside it.
//! 4. `compaction`: a compaction at the revision the load ended at (each key's last put
//!    remains: `(revs - 1) × keys` revisions go), physical (the call returns once the
//!    records are gone), its duration; and the latency of one writer's puts (other keys,
//!    one at a time) while it runs, against the same writer's without it.
//!
//! Printed: one JSON object per line on stdout (`"kind"` says which measurement), and
//! progress on stderr. Data goes under `SCALE_DIR` (`/tmp`), removed at the end. etcd (the
//! binary `$ETCD_BIN` or as tests/common/etcd.rs finds it) runs with
//! `--quota-backend-bytes` 16 GiB, and so does the etcdlite server (RocksDB engine); both
//! fsync their writes, as do the embedded RocksDB and sled stores.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcdlite::{CompactionOptions, GetOptions, Options, Store, Txn, TxnOp};

#[allow(dead_code, reason = "only the etcdlite child is used here")]
#[path = "../tests/common/process.rs"]
mod process;

#[allow(dead_code, reason = "only the binary and free ports are used here")]
#[path = "../tests/common/etcd.rs"]
mod etcd;

/// The global allocator, counting the bytes allocated and not yet freed (as requested: the
/// allocator's own rounding is not counted).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; the counter is all
// that is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the system allocator's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for alloc.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for alloc.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for alloc.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const TXN_PUTS: usize = 128;
const GIB16: u64 = 16 << 30;
const POINT_GETS: usize = 2_000;
const PREFIX_RANGES: usize = 200;
const COUNT_ALL: usize = 10;
/// The writer's puts without a compaction.
const BASELINE_PUTS: usize = 2_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Config {
    keys: usize,
    revs: usize,
    writers: usize,
    dir: PathBuf,
}

fn key(i: usize) -> Vec<u8> {
    format!("scale/{i:07}").into_bytes()
}

/// 24 bytes, different in every round.
fn value(i: usize, round: usize) -> Vec<u8> {
    format!("v{:02}-{i:07}-0123456789ab", round % 100).into_bytes()
}

/// Prints one result line.
fn emit(mut line: serde_json::Value) {
    line["load_average"] = serde_json::json!(load_average());
    println!("{line}");
    std::io::stdout().flush().unwrap();
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A field of `/proc/PID/status` (self when `pid` is None), in bytes.
fn proc_status_bytes(pid: Option<u32>, field: &str) -> u64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?.strip_prefix(':')?.split_whitespace().next()?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

fn live_heap() -> i64 {
    LIVE.load(Ordering::Relaxed) as i64
}

/// p50 and p99 (nearest rank) in microseconds.
fn percentiles(samples: &mut [Duration]) -> serde_json::Value {
    samples.sort();
    let at = |q: f64| {
        let i = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1e6
    };
    if samples.is_empty() {
        return serde_json::json!({"n": 0});
    }
    serde_json::json!({
        "n": samples.len(),
        "p50_us": at(0.50),
        "p99_us": at(0.99),
        "max_us": samples[samples.len() - 1].as_secs_f64() * 1e6,
    })
}

// ---------------------------------------------------------------------------------------
// Embedded

#[derive(Clone, Copy, PartialEq)]
enum Engine {
    Memory,
    RocksDb,
    Sled,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Memory => "memory",
            Engine::RocksDb => "rocksdb",
            Engine::Sled => "sled",
        }
    }

    fn options(self, dir: &Path) -> Options {
        match self {
            Engine::Memory => Options::memory(),
            Engine::RocksDb => Options::rocksdb(dir),
            Engine::Sled => Options::sled(dir),
        }
    }
}

/// Loads `rounds` into `store` with the config's writers; in round 0, calls `sample` after
/// every 10% of the keys. Returns the load's time.
fn load_embedded(
    store: &Store,
    cfg: &Config,
    rounds: std::ops::Range<usize>,
    sample: &mut dyn FnMut(usize),
) -> Duration {
    let chunks = cfg.keys.div_ceil(TXN_PUTS);
    let start = Instant::now();
    for round in rounds {
        let steps = if round == 0 { 10 } else { 1 };
        for step in 0..steps {
            let (from, to) = (chunks * step / steps, chunks * (step + 1) / steps);
            let next = AtomicUsize::new(from);
            std::thread::scope(|s| {
                for _ in 0..cfg.writers {
                    s.spawn(|| loop {
                        let chunk = next.fetch_add(1, Ordering::Relaxed);
                        if chunk >= to {
                            return;
                        }
                        let ops: Vec<_> = (chunk * TXN_PUTS..((chunk + 1) * TXN_PUTS).min(cfg.keys))
                            .map(|i| TxnOp::put(key(i), value(i, round), None))
                            .collect();
                        store.txn(Txn::new().and_then(ops)).expect("a load txn");
                    });
                }
            });
            if round == 0 {
                sample((to * TXN_PUTS).min(cfg.keys));
            }
        }
    }
    start.elapsed()
}

/// Opens the store at `dir`, timed until its first get is answered; emits what the open
/// took, in time and memory.
fn open_embedded(engine: Engine, dir: &Path, state: &str, keys: usize) -> Store {
    let (heap_before, rss_before) = (live_heap(), proc_status_bytes(None, "RssAnon"));
    let start = Instant::now();
    let store = Store::open(engine.options(dir)).expect("open");
    let first = store.get(key(0), None).expect("the first get");
    let open_time = start.elapsed();
    std::hint::black_box(first);
    let (heap, rss) =
        (live_heap() - heap_before, proc_status_bytes(None, "RssAnon") as i64 - rss_before as i64);
    eprintln!("{} open ({state}): {open_time:.2?}, heap {heap} B, RssAnon +{rss} B", engine.name());
    emit(serde_json::json!({
        "kind": "open", "system": engine.name(), "state": state, "keys": keys,
        "open_s": open_time.as_secs_f64(), "heap_bytes": heap, "rss_anon_delta": rss,
        "revision": store.current_revision(),
    }));
    store
}

/// The range latencies over every key.
fn ranges_embedded(store: &Store, name: &str, keys: usize) {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut timed = |what: &str, n: usize, f: &mut dyn FnMut(&mut fastrand::Rng) -> i64| {
        let mut samples = Vec::with_capacity(n);
        let mut counted = 0;
        for _ in 0..n {
            let start = Instant::now();
            counted = f(&mut rng);
            samples.push(start.elapsed());
        }
        let mut line = serde_json::json!({"kind": "range", "system": name, "op": what, "keys": keys, "last_count": counted});
        let p = percentiles(&mut samples);
        eprintln!("{name} {what}: {p}");
        line["latency"] = p;
        emit(line);
    };
    let blocks = (keys / 1000).max(1);
    timed("point", POINT_GETS, &mut |rng| store.get(key(rng.usize(..keys)), None).unwrap().count());
    timed("prefix_1k", PREFIX_RANGES, &mut |rng| {
        let prefix = format!("scale/{:04}", rng.usize(..blocks));
        store.get(prefix, Some(GetOptions::new().with_prefix())).unwrap().kvs().len() as i64
    });
    timed("count_all", COUNT_ALL, &mut |_| {
        store.get("scale/", Some(GetOptions::new().with_prefix().with_count_only())).unwrap().count()
    });
    timed("count_1k", PREFIX_RANGES, &mut |rng| {
        let prefix = format!("scale/{:04}", rng.usize(..blocks));
        store.get(prefix, Some(GetOptions::new().with_prefix().with_count_only())).unwrap().count()
    });
}

/// One writer's puts, each timed, until `stop` (or `limit` puts).
fn writer_embedded(store: &Store, stop: &AtomicBool, limit: usize) -> Vec<Duration> {
    let mut samples = Vec::new();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) && samples.len() < limit {
        let start = Instant::now();
        store.put(format!("other/{:04}", n % 1000), value(n, 0), None).expect("a writer's put");
        samples.push(start.elapsed());
        n += 1;
    }
    samples
}

fn compaction_embedded(store: &Store, name: &str, rev: i64) {
    let never = AtomicBool::new(false);
    let mut baseline = writer_embedded(store, &never, BASELINE_PUTS);
    let stop = AtomicBool::new(false);
    let (duration, mut during) = std::thread::scope(|s| {
        let writer = s.spawn(|| writer_embedded(store, &stop, usize::MAX));
        std::thread::sleep(Duration::from_millis(100));
        let start = Instant::now();
        store.compact(rev, Some(CompactionOptions::new().with_physical())).expect("compaction");
        let duration = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        (duration, writer.join().unwrap())
    });
    // The writes before the compaction started are not "during" it.
    let skip = during.len().min(
        during
            .iter()
            .scan(Duration::ZERO, |t, d| {
                *t += *d;
                Some(*t)
            })
            .take_while(|t| *t < Duration::from_millis(100))
            .count(),
    );
    during.drain(..skip);
    let line = serde_json::json!({
        "kind": "compaction", "system": name, "revision": rev, "compaction_s": duration.as_secs_f64(),
        "writes_without": percentiles(&mut baseline), "writes_during": percentiles(&mut during),
    });
    eprintln!("{name} compaction: {line}");
    emit(line);
}

fn run_embedded(engine: Engine, cfg: &Config) {
    let name = engine.name();
    let dir = cfg.dir.join(format!("scale-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("== {name}");
    let heap_start = live_heap();
    let mut store = if engine == Engine::Memory {
        Store::open(Options::memory()).unwrap()
    } else {
        open_embedded(engine, &dir, "empty", 0)
    };
    let mut sample = |keys: usize| {
        let heap = live_heap() - heap_start;
        emit(serde_json::json!({"kind": "memory_sample", "system": name, "keys": keys, "heap_bytes": heap,
            "rss_anon": proc_status_bytes(None, "RssAnon")}));
    };
    let first = load_embedded(&store, cfg, 0..1, &mut sample);
    emit_load(name, cfg, 1, first);
    if engine != Engine::Memory {
        drop(store);
        store = open_embedded(engine, &dir, "1rev", cfg.keys);
    }
    let rest = load_embedded(&store, cfg, 1..cfg.revs, &mut |_| ());
    emit_load(name, cfg, cfg.revs - 1, rest);
    emit(serde_json::json!({"kind": "load_total", "system": name, "keys": cfg.keys, "revs": cfg.revs,
        "load_s": (first + rest).as_secs_f64(),
        "puts_per_s": (cfg.keys * cfg.revs) as f64 / (first + rest).as_secs_f64()}));
    let rev = store.current_revision();
    if engine == Engine::Memory {
        emit(serde_json::json!({"kind": "memory_total", "system": name, "keys": cfg.keys, "revs": cfg.revs,
            "heap_bytes": live_heap() - heap_start, "note": "index and records: the memory engine holds both"}));
    } else {
        drop(store);
        store = open_embedded(engine, &dir, "all_revs", cfg.keys);
    }
    ranges_embedded(&store, name, cfg.keys);
    compaction_embedded(&store, name, rev);
    if engine == Engine::Memory {
        emit(serde_json::json!({"kind": "memory_total", "system": name, "keys": cfg.keys, "revs": 1,
            "state": "compacted", "heap_bytes": live_heap() - heap_start}));
    } else {
        drop(store);
        store = open_embedded(engine, &dir, "compacted", cfg.keys);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn emit_load(name: &str, cfg: &Config, rounds: usize, took: Duration) {
    let puts = cfg.keys * rounds;
    eprintln!("{name} load of {rounds} round(s): {took:.2?}, {:.0} puts/s", puts as f64 / took.as_secs_f64());
    emit(serde_json::json!({"kind": "load", "system": name, "keys": cfg.keys, "rounds": rounds,
        "load_s": took.as_secs_f64(), "puts_per_s": puts as f64 / took.as_secs_f64()}));
}

// ---------------------------------------------------------------------------------------
// Servers

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Etcd,
    Server,
}

/// A server process over a data dir that outlives it.
struct ServerProcess {
    kind: Kind,
    dir: PathBuf,
    etcd: Option<(Child, u16)>,
    lite: Option<process::EtcdLiteChild>,
}

impl ServerProcess {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Etcd => "etcd",
            Kind::Server => "server",
        }
    }

    fn new(kind: Kind, cfg: &Config) -> Self {
        let name = if kind == Kind::Etcd { "etcd" } else { "server" };
        let dir = cfg.dir.join(format!("scale-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ServerProcess { kind, dir, etcd: None, lite: None }
    }

    /// Starts the process on its data dir.
    fn start(&mut self) {
        match self.kind {
            Kind::Etcd => {
                let (client, peer) = (etcd::free_port(), etcd::free_port());
                let log = std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("etcd.log"))
                    .unwrap();
                let child = Command::new(etcd::etcd_binary())
                    .arg("--data-dir")
                    .arg(self.dir.join("data"))
                    .args(["--name", "m0", "--listen-client-urls", &format!("http://{client}")])
                    .args(["--advertise-client-urls", &format!("http://{client}")])
                    .args(["--listen-peer-urls", &format!("http://{peer}")])
                    .args(["--initial-advertise-peer-urls", &format!("http://{peer}")])
                    .args(["--initial-cluster", &format!("m0=http://{peer}")])
                    .args(["--quota-backend-bytes", &GIB16.to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("spawn etcd");
                self.etcd = Some((child, client.port()));
            }
            Kind::Server => {
                let dir = self.dir.join("data");
                let args = [
                    "--data-dir",
                    dir.to_str().unwrap(),
                    "--engine",
                    "rocksdb",
                    "--quota-backend-bytes",
                    &GIB16.to_string(),
                ];
                let child = process::EtcdLiteChild::start(
                    "http",
                    &args,
                    &self.dir.join("server.log"),
                    Duration::from_secs(600),
                )
                .expect("the etcdlite server starts");
                self.lite = Some(child);
            }
        }
    }

    fn port(&self) -> u16 {
        match self.kind {
            Kind::Etcd => self.etcd.as_ref().unwrap().1,
            Kind::Server => self.lite.as_ref().unwrap().port(),
        }
    }

    fn pid(&self) -> u32 {
        match self.kind {
            Kind::Etcd => self.etcd.as_ref().unwrap().0.id(),
            Kind::Server => self.lite.as_ref().unwrap().pid(),
        }
    }

    fn stop(&mut self) {
        if let Some((mut child, _)) = self.etcd.take() {
            // SIGTERM, so that etcd closes its files as a restart after maintenance would.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
        if let Some(mut lite) = self.lite.take() {
            let _ = Command::new("kill").arg(lite.pid().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && Path::new(&format!("/proc/{}/status", lite.pid())).exists() {
                let status =
                    std::fs::read_to_string(format!("/proc/{}/status", lite.pid())).unwrap_or_default();
                if status.contains("State:\tZ") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            lite.kill();
        }
    }

    /// A client, once a get of the first key is answered (tried every 10 ms).
    async fn client(&self) -> etcd_client::Client {
        let endpoint = format!("http://127.0.0.1:{}", self.port());
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Ok(mut client) = etcd_client::Client::connect([&endpoint], None).await {
                if client.get(key(0), None).await.is_ok() {
                    return client;
                }
            }
            assert!(Instant::now() < deadline, "{} did not answer in 600 s", self.name());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `go_memstats_heap_inuse_bytes` of etcd's /metrics.
    fn heap_inuse(&self) -> Option<u64> {
        if self.kind != Kind::Etcd {
            return None;
        }
        let mut conn = TcpStream::connect(("127.0.0.1", self.port())).ok()?;
        conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut body = String::new();
        conn.read_to_string(&mut body).ok()?;
        body.lines()
            .find_map(|l| l.strip_prefix("go_memstats_heap_inuse_bytes "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    }

    fn memory(&self) -> serde_json::Value {
        serde_json::json!({
            "rss_anon": proc_status_bytes(Some(self.pid()), "RssAnon"),
            "rss": proc_status_bytes(Some(self.pid()), "VmRSS"),
            "heap_inuse": self.heap_inuse(),
        })
    }

    /// Stops the process and starts it again, timed until its first get is answered.
    async fn restart(&mut self, state: &str, keys: usize) -> etcd_client::Client {
        self.stop();
        let start = Instant::now();
        self.start();
        let client = self.client().await;
        let took = start.elapsed();
        // What it holds once settled.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut line = serde_json::json!({"kind": "open", "system": self.name(), "state": state, "keys": keys,
            "open_s": took.as_secs_f64()});
        line["memory"] = self.memory();
        eprintln!("{} restart ({state}): {took:.2?}, {}", self.name(), line["memory"]);
        emit(line);
        client
    }

    fn disk_bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(p) else { return 0 };
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.dir.join("data"))
    }
}

async fn load_server(
    server: &ServerProcess,
    client: &etcd_client::Client,
    cfg: &Config,
    rounds: std::ops::Range<usize>,
) -> (Duration, i64) {
    let chunks = cfg.keys.div_ceil(TXN_PUTS);
    let last_rev = Arc::new(Mutex::new(0i64));
    let start = Instant::now();
    for round in rounds {
        let steps = if round == 0 { 10 } else { 1 };
        for step in 0..steps {
            let (from, to) = (chunks * step / steps, chunks * (step + 1) / steps);
            let next = Arc::new(AtomicUsize::new(from));
            let tasks: Vec<_> = (0..cfg.writers)
                .map(|_| {
                    let (next, mut client, keys, last_rev) =
                        (next.clone(), client.clone(), cfg.keys, last_rev.clone());
                    tokio::spawn(async move {
                        loop {
                            let chunk = next.fetch_add(1, Ordering::Relaxed);
                            if chunk >= to {
                                return;
                            }
                            let ops: Vec<_> = (chunk * TXN_PUTS..((chunk + 1) * TXN_PUTS).min(keys))
                                .map(|i| etcd_client::TxnOp::put(key(i), value(i, round), None))
                                .collect();
                            let resp =
                                client.txn(etcd_client::Txn::new().and_then(ops)).await.expect("a load txn");
                            let rev = resp.header().unwrap().revision();
                            let mut last = last_rev.lock().unwrap();
                            *last = (*last).max(rev);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            if round == 0 {
                let mut line = serde_json::json!({"kind": "memory_sample", "system": server.name(),
                    "keys": (to * TXN_PUTS).min(cfg.keys)});
                line["memory"] = server.memory();
                emit(line);
            }
        }
    }
    let rev = *last_rev.lock().unwrap();
    (start.elapsed(), rev)
}

/// A range case on a server: its name, how many calls, their options, and whether the key is
/// a 1,000-key prefix.
type RangeCase = (&'static str, usize, fn() -> Option<etcd_client::GetOptions>, bool);

async fn ranges_server(client: &etcd_client::Client, name: &str, keys: usize) {
    use etcd_client::GetOptions as G;
    let blocks = (keys / 1000).max(1);
    let mut rng = fastrand::Rng::with_seed(7);
    let cases: [RangeCase; 5] = [
        ("point", POINT_GETS, || None, false),
        ("point_serializable", POINT_GETS, || Some(G::new().with_serializable()), false),
        ("prefix_1k", PREFIX_RANGES, || Some(G::new().with_prefix()), true),
        ("count_all", COUNT_ALL, || Some(G::new().with_prefix().with_count_only()), false),
        ("count_1k", PREFIX_RANGES, || Some(G::new().with_prefix().with_count_only()), true),
    ];
    for (what, n, options, block) in cases {
        let mut client = client.clone();
        let mut samples = Vec::with_capacity(n);
        let mut counted = 0;
        for _ in 0..n {
            let k = if what == "count_all" {
                b"scale/".to_vec()
            } else if block {
                format!("scale/{:04}", rng.usize(..blocks)).into_bytes()
            } else {
                key(rng.usize(..keys))
            };
            let start = Instant::now();
            let resp = client.get(k, options()).await.expect("a range");
            samples.push(start.elapsed());
            counted = if what.starts_with("count") { resp.count() } else { resp.kvs().len() as i64 };
        }
        let mut line = serde_json::json!({"kind": "range", "system": name, "op": what, "keys": keys,
            "last_count": counted, "consistency": if what == "point_serializable" { "serializable" } else { "linearizable" }});
        let p = percentiles(&mut samples);
        eprintln!("{name} {what}: {p}");
        line["latency"] = p;
        emit(line);
    }
}

async fn writer_server(
    mut client: etcd_client::Client,
    stop: Arc<AtomicBool>,
    limit: usize,
) -> Vec<(Instant, Duration)> {
    let mut samples = Vec::new();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) && samples.len() < limit {
        let start = Instant::now();
        client.put(format!("other/{:04}", n % 1000), value(n, 0), None).await.expect("a writer's put");
        samples.push((start, start.elapsed()));
        n += 1;
    }
    samples
}

async fn compaction_server(client: &etcd_client::Client, name: &str, rev: i64) {
    let baseline = writer_server(client.clone(), Arc::new(AtomicBool::new(false)), BASELINE_PUTS).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(writer_server(client.clone(), stop.clone(), usize::MAX));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    client
        .clone()
        .compact(rev, Some(etcd_client::CompactionOptions::new().with_physical()))
        .await
        .expect("compaction");
    let duration = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let during = writer.await.unwrap();
    let mut during: Vec<_> = during.into_iter().filter(|(t, _)| *t >= start).map(|(_, d)| d).collect();
    let mut baseline: Vec<_> = baseline.into_iter().map(|(_, d)| d).collect();
    let line = serde_json::json!({
        "kind": "compaction", "system": name, "revision": rev, "compaction_s": duration.as_secs_f64(),
        "writes_without": percentiles(&mut baseline), "writes_during": percentiles(&mut during),
        "note": if name == "etcd" { "etcd compacts in batches with pauses between them (incremental by design)" } else { "" },
    });
    eprintln!("{name} compaction: {line}");
    emit(line);
}

async fn run_servers(kinds: &[Kind], cfg: &Config) {
    let mut servers: Vec<ServerProcess> = kinds.iter().map(|&k| ServerProcess::new(k, cfg)).collect();
    let mut revs = Vec::new();
    // Each loaded in turn (one at a time on the machine), each measured on restart.
    for server in &mut servers {
        eprintln!("== {}", server.name());
        server.start();
        let client = server.client().await;
        let mut line =
            serde_json::json!({"kind": "open", "system": server.name(), "state": "empty", "keys": 0});
        tokio::time::sleep(Duration::from_secs(2)).await;
        line["memory"] = server.memory();
        emit(line);
        let (first, _) = load_server(server, &client, cfg, 0..1).await;
        emit_load(server.name(), cfg, 1, first);
        let client = server.restart("1rev", cfg.keys).await;
        let (rest, rev) = load_server(server, &client, cfg, 1..cfg.revs).await;
        emit_load(server.name(), cfg, cfg.revs - 1, rest);
        emit(
            serde_json::json!({"kind": "load_total", "system": server.name(), "keys": cfg.keys, "revs": cfg.revs,
            "load_s": (first + rest).as_secs_f64(), "revision": rev, "disk_bytes": server.disk_bytes(),
            "puts_per_s": (cfg.keys * cfg.revs) as f64 / (first + rest).as_secs_f64()}),
        );
        revs.push(rev);
        server.stop();
    }
    // Restarts on the whole history, interleaved.
    for round in 0..3 {
        for server in &mut servers {
            let _ = server.restart(&format!("all_revs#{round}"), cfg.keys).await;
            server.stop();
        }
    }
    for (server, rev) in servers.iter_mut().zip(revs) {
        let client = server.restart("all_revs", cfg.keys).await;
        ranges_server(&client, server.name(), cfg.keys).await;
        compaction_server(&client, server.name(), rev).await;
        emit(
            serde_json::json!({"kind": "disk", "system": server.name(), "state": "compacted", "disk_bytes": server.disk_bytes()}),
        );
        server.stop();
    }
    for round in 0..3 {
        for server in &mut servers {
            let _ = server.restart(&format!("compacted#{round}"), cfg.keys).await;
            server.stop();
        }
    }
    for server in &mut servers {
        server.stop();
        let _ = std::fs::remove_dir_all(&server.dir);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; this is not a criterion bench and takes no arguments.
    let cfg = Config {
        keys: env_usize("SCALE_KEYS", 1_000_000),
        revs: env_usize("SCALE_REVS", 10).max(1),
        writers: env_usize("SCALE_WRITERS", 8).max(1),
        dir: std::env::var_os("SCALE_DIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from),
    };
    let systems =
        std::env::var("SCALE_SYSTEMS").unwrap_or_else(|_| "memory,rocksdb,sled,etcd,server".to_owned());
    let systems: Vec<&str> = systems.split(',').map(str::trim).collect();
    emit(serde_json::json!({"kind": "config", "keys": cfg.keys, "revs": cfg.revs, "writers": cfg.writers,
        "txn_puts": TXN_PUTS, "systems": systems, "etcd": etcd::etcd_binary(),
        "date": String::from_utf8_lossy(&Command::new("date").arg("-u").arg("+%FT%TZ").output().unwrap().stdout).trim()}));
    for (name, engine) in [("memory", Engine::Memory), ("rocksdb", Engine::RocksDb), ("sled", Engine::Sled)] {
        if systems.contains(&name) {
            run_embedded(engine, &cfg);
        }
    }
    let kinds: Vec<Kind> = [("etcd", Kind::Etcd), ("server", Kind::Server)]
        .into_iter()
        .filter(|(name, _)| systems.contains(name))
        .map(|(_, k)| k)
        .collect();
    if !kinds.is_empty() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run_servers(&kinds, &cfg));
    }
}
