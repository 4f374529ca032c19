//! Many leases expiring at once on a persistent engine with sync on, and what that does to
//! a writer putting at the same time.
//!
//! Each run: `LEASES` leases (default 100,000) are granted with one key each, with sync off
//! and a clock that never moves (a setup, not measured); the store is reopened with sync
//! on and a fresh `ManualClock` (leases come back with their whole TTL, as in etcd). A
//! writer thread then puts one key in a closed loop (a 16-byte key, a 100-byte value, sync
//! on, each put awaited before the next), timing every put: first for `BASELINE_SECS`
//! (default 2) alone, then while one `ManualClock::advance` expires every lease on the
//! main thread, which times it. Each revoke is its own revision, as in etcd.
//!
//! Printed as JSON lines on stdout, one per run:
//!
//! ```text
//! {"bench":"lease_expiry","engine":"rocksdb","leases":100000,"run":0,"expiry_secs":..,
//!  "baseline":{"puts":..,"p50_us":..,"p99_us":..,"max_us":..},
//!  "during":{"puts":..,"p50_us":..,"p99_us":..,"max_us":..},"during_p99_over_baseline_p99":..,
//!  "during_max_over_baseline_p99":..}
//! ```
//!
//! Environment: `LEASES`, `RUNS` (default 3), `ENGINES` (comma-separated, default every
//! persistent engine of the build), `BASELINE_SECS`, `WRITER` (0 to expire without a
//! writer). Runs in a fresh `tempfile::TempDir` (under `$TMPDIR`, else `/tmp`).
//!
//! ```bash
//! CARGO_TARGET_DIR=/var/tmp/etcdlite-bench-target cargo bench --workspace --all-features --bench lease_expiry
//! ```

#[cfg(any(feature = "rocksdb", feature = "sled"))]
mod run {
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use etcdlite::{ManualClock, Options, PutOptions, Store};

    type OpenAt = fn(&Path) -> Options;

    fn engines() -> Vec<(&'static str, OpenAt)> {
        vec![
            #[cfg(feature = "rocksdb")]
            ("rocksdb", |path| Options::rocksdb(path)),
            #[cfg(feature = "sled")]
            ("sled", |path| Options::sled(path)),
        ]
    }

    /// Latency percentiles of a sample of put times, in microseconds.
    struct Summary {
        puts: usize,
        p50: f64,
        p99: f64,
        max: f64,
    }

    impl Summary {
        fn of(mut times: Vec<Duration>) -> Summary {
            times.sort();
            let at = |q: f64| {
                if times.is_empty() {
                    return f64::NAN;
                }
                let i = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1;
                times[i].as_secs_f64() * 1e6
            };
            Summary { puts: times.len(), p50: at(0.50), p99: at(0.99), max: at(1.0) }
        }

        fn json(&self) -> String {
            format!(
                "{{\"puts\":{},\"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1}}}",
                self.puts, self.p50, self.p99, self.max
            )
        }
    }

    fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
        std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    }

    /// A store in `dir` holding `leases` leases of 5 s with one key each, reopened with sync
    /// on and a clock of its own.
    fn prepared(open_at: OpenAt, dir: &Path, leases: usize) -> (Store, ManualClock) {
        let still = Arc::new(ManualClock::new());
        let store = Store::open(open_at(dir).sync(false).clock(still)).unwrap();
        for i in 0..leases {
            let id = store.lease_grant(5, None).unwrap().id();
            store.put(format!("session/{i:06}"), "alive", Some(PutOptions::new().with_lease(id))).unwrap();
        }
        drop(store);
        let clock = ManualClock::new();
        let store = Store::open(open_at(dir).sync(true).clock(Arc::new(clock.clone()))).unwrap();
        (store, clock)
    }

    pub fn main() {
        let leases: usize = env("LEASES", 100_000);
        let runs: usize = env("RUNS", 3);
        let baseline_secs: f64 = env("BASELINE_SECS", 2.0);
        let with_writer: u32 = env("WRITER", 1);
        let wanted: Vec<String> = std::env::var("ENGINES")
            .map(|e| e.split(',').map(str::to_string).collect())
            .unwrap_or_else(|_| engines().iter().map(|(n, _)| n.to_string()).collect());
        for (name, open_at) in engines().into_iter().filter(|(n, _)| wanted.iter().any(|w| w == n)) {
            for run in 0..runs {
                let dir = tempfile::TempDir::new().unwrap();
                let (store, clock) = prepared(open_at, dir.path(), leases);
                let store = Arc::new(store);
                // 0: baseline, 1: expiring, 2: stop.
                let phase = Arc::new(std::sync::atomic::AtomicU8::new(0));
                let times = Arc::new(Mutex::new((Vec::new(), Vec::new())));
                let started = Arc::new(AtomicBool::new(false));
                let writer = (with_writer != 0).then(|| {
                    let (store, phase, times, started) =
                        (store.clone(), phase.clone(), times.clone(), started.clone());
                    std::thread::spawn(move || {
                        let value = vec![b'v'; 100];
                        let (mut alone, mut during) = (Vec::new(), Vec::new());
                        let mut i = 0u64;
                        started.store(true, Ordering::SeqCst);
                        loop {
                            let p = phase.load(Ordering::SeqCst);
                            if p == 2 {
                                break;
                            }
                            let key = format!("writer/{:06}", i % 1000);
                            i += 1;
                            let start = Instant::now();
                            store.put(key, value.as_slice(), None).unwrap();
                            let took = start.elapsed();
                            // A put counts as during the expiry if it began during it.
                            if p == 0 {
                                alone.push(took);
                            } else {
                                during.push(took);
                            }
                        }
                        *times.lock().unwrap() = (alone, during);
                    })
                });
                while writer.is_some() && !started.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                if writer.is_some() {
                    std::thread::sleep(Duration::from_secs_f64(baseline_secs));
                }
                let before = store.current_revision();
                phase.store(1, Ordering::SeqCst);
                let start = Instant::now();
                clock.advance(Duration::from_secs(5));
                let expiry = start.elapsed();
                phase.store(2, Ordering::SeqCst);
                if let Some(w) = writer {
                    w.join().unwrap();
                }
                let left = store.lease_leases().unwrap().leases().len();
                assert_eq!(left, 0, "every lease expired");
                assert!(store.current_revision() >= before + leases as i64);
                let (alone, during) = std::mem::take(&mut *times.lock().unwrap());
                let (alone, during) = (Summary::of(alone), Summary::of(during));
                println!(
                    "{{\"bench\":\"lease_expiry\",\"engine\":\"{name}\",\"leases\":{leases},\"run\":{run},\"expiry_secs\":{:.4},\"baseline\":{},\"during\":{},\"during_p99_over_baseline_p99\":{:.2},\"during_max_over_baseline_p99\":{:.2}}}",
                    expiry.as_secs_f64(),
                    alone.json(),
                    during.json(),
                    during.p99 / alone.p99,
                    during.max / alone.p99,
                );
                drop(store);
            }
        }
    }
}

fn main() {
    #[cfg(any(feature = "rocksdb", feature = "sled"))]
    run::main();
}
