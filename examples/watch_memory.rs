//! Memory per idle watcher, from the process's resident set size (Linux only: it reads
//! `/proc/self/statm`). BENCHMARKS.md has the figures.
//!
//! ```bash
//! cargo run --release --example watch_memory              # both variants, 100,000 watchers
//! cargo run --release --example watch_memory -- streams 50000
//! ```
//!
//! Variants, each run in a process of its own (so memory one variant freed does not make
//! the other look cheaper):
//!
//! - `streams`: N watchers of N distinct keys, each on its own stream ([`Store::watch`]),
//!   both ends of every stream held. Counts the caller's handles too (one `(Watcher,
//!   WatchStream)` pair per watcher, in one `Vec`): they are what a watcher costs its user.
//! - `one-stream`: N watches of N distinct keys on one stream ([`Watcher::watch`]), each
//!   watch's `created` response taken off the stream as it comes.
//! - `bare-streams`, for reference: N streams opened by [`Store::watch_stream`] with no
//!   watch on them (and so nothing ever sent on them), both ends held.
//!
//! The figure is (resident after - resident before) / N, the store opened (and empty)
//! before the first reading. The virtual size's growth is shown too: memory allocated but
//! never touched (zeroed pages the allocator got from the kernel) is in it and not in the
//! resident set.

use std::process::{Command, ExitCode};

use etcdlite::{Options, Store, WatchResponse, WatchStream, Watcher};

const DEFAULT_WATCHERS: usize = 100_000;

/// The process's size and resident set, in bytes.
#[derive(Clone, Copy)]
struct Memory {
    size: u64,
    resident: u64,
}

impl Memory {
    fn now() -> Memory {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm (Linux only)");
        let mut pages = statm.split_whitespace().map(|f| f.parse::<u64>().expect("a page count"));
        let (size, resident) = (pages.next().unwrap(), pages.next().unwrap());
        let page = page_size();
        Memory { size: size * page, resident: resident * page }
    }
}

/// The kernel's page size, from `/proc/self/smaps` (4 KiB when it does not say).
fn page_size() -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    smaps
        .lines()
        .find_map(|l| l.strip_prefix("KernelPageSize:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(4096, |kb| kb * 1024)
}

fn key(i: usize) -> Vec<u8> {
    format!("idle/key/{i:06}").into_bytes()
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn report(variant: &str, n: usize, before: Memory, after: Memory) {
    let resident = after.resident as i64 - before.resident as i64;
    let size = after.size as i64 - before.size as i64;
    println!(
        "{variant:>10}: {n} idle watchers: resident +{:.1} MiB = {} bytes per watcher \
         (virtual size +{:.1} MiB = {} bytes per watcher)",
        mib(resident),
        resident / n as i64,
        mib(size),
        size / n as i64,
    );
}

fn measure(variant: &str, n: usize) -> etcdlite::Result<()> {
    let store = Store::open(Options::memory())?;
    let before = Memory::now();
    match variant {
        "streams" => {
            let held: Vec<(Watcher, WatchStream)> =
                (0..n).map(|i| store.watch(key(i), None)).collect::<etcdlite::Result<_>>()?;
            let after = Memory::now();
            report(variant, n, before, after);
            // Idle: nothing was sent on any stream.
            assert!(held.iter().all(|(_, stream)| stream.try_recv().is_err()));
        }
        "one-stream" => {
            let (watcher, stream) = store.watch_stream();
            for i in 0..n {
                let id = watcher.watch(key(i), None)?;
                let created: WatchResponse = stream.try_recv().expect("a created response");
                assert!(created.created() && created.watch_id() == id);
            }
            let after = Memory::now();
            report(variant, n, before, after);
            assert!(stream.try_recv().is_err());
        }
        "bare-streams" => {
            let held: Vec<(Watcher, WatchStream)> = (0..n).map(|_| store.watch_stream()).collect();
            let after = Memory::now();
            report(variant, n, before, after);
            assert!(held.iter().all(|(_, stream)| stream.try_recv().is_err()));
        }
        other => panic!("unknown variant {other:?}: streams, one-stream or bare-streams"),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = |arg: Option<&String>| arg.map_or(DEFAULT_WATCHERS, |a| a.parse().expect("a watcher count"));
    if let Some(variant) = args.first() {
        return match measure(variant, n(args.get(1))) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("{error}");
                ExitCode::FAILURE
            }
        };
    }
    println!(
        "size_of::<(Watcher, WatchStream)>() = {} bytes (the caller's handles, counted in `streams`); \
         size_of::<WatchResponse>() = {} bytes",
        std::mem::size_of::<(Watcher, WatchStream)>(),
        std::mem::size_of::<WatchResponse>(),
    );
    let me = std::env::current_exe().expect("the path of this program");
    for variant in ["streams", "one-stream", "bare-streams"] {
        let status = Command::new(&me).arg(variant).arg(DEFAULT_WATCHERS.to_string()).status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("the {variant} run failed");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
