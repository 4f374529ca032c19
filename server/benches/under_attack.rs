//! A well-behaved client's latency while the server is under attack. BENCHMARKS.md and
//! docs/bad-input.md have the command and the numbers.
//!
//! For each case, a fresh `etcdlite` server (this build's binary, memory engine) runs as a
//! child process; an attacker (its own thread and runtime in this process) starts on it,
//! and once the attack is under way the well-behaved client, the `etcd-client` crate on a
//! current_thread runtime with a connection of its own, does `ROUNDS` rounds (or
//! `UNDER_ATTACK_ROUNDS`, to keep an attack up longer) of a put (a
//! 256-byte value to one of 1,000 keys) and a get of the same key, one after another, each
//! timed. The attack goes on until the rounds are done. Printed per case: the put's and the
//! get's p50, p99 and maximum (nearest rank over every call), the server's resident memory
//! at the end, and what the attacker saw (connections it opened, and how many the server
//! closed on it).
//!
//! This is not a criterion bench: criterion reports means and their intervals, and the
//! question here is the tail, the p99 of a client that shares the server with an attacker.
//!
//! Cases (the attacks of `tests/floods.rs` and `tests/hostile.rs`, each kept up for the
//! whole measurement, reconnecting when the server closes a connection):
//!
//! - `none`: no attack.
//! - `rapid reset`: HEADERS of a Range call, then RST_STREAM, 100 streams per write.
//! - `settings flood`: SETTINGS frames, never reading the acknowledgements, until the server
//!   stops reading; then a new connection.
//! - `ping flood`: PINGs without a pause.
//! - `continuation flood`: HEADERS without END_HEADERS, then CONTINUATION frames.
//! - `zero window`: 200 Range calls of 4 MiB each on a connection that grants no window;
//!   a new connection every 200 ms.
//! - `declared lengths`: 200 Put calls each declaring a 2 MiB message and sending 10 bytes;
//!   a new connection every 200 ms.
//! - `10k idle`: 10,000 connections that sent the HTTP/2 preface and nothing more.
//! - `slow watchers`: 100 watch streams (64 KiB windows), each watching every key, never
//!   read: each of the client's puts is an event for all of them.
//! - `unread snapshots`: snapshot streams (12 MiB of data) opened on connections of their
//!   own and never read, as many as the server allows, and more, refused.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[allow(dead_code, reason = "only the etcdlite child is used here")]
#[path = "../tests/common/process.rs"]
mod process;

#[allow(dead_code, reason = "the builders the floods share; each bench uses some")]
#[path = "../tests/common/raw_h2.rs"]
mod raw_h2;
use raw_h2::*;

const ROUNDS: usize = 2_000;

/// `ROUNDS`, or the number in `UNDER_ATTACK_ROUNDS`.
fn rounds() -> usize {
    std::env::var("UNDER_ATTACK_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(ROUNDS)
}
const KEYS: usize = 1_000;
const MIB: usize = 1 << 20;

#[derive(Clone, Copy, Debug)]
enum Attack {
    None,
    RapidReset,
    SettingsFlood,
    PingFlood,
    ContinuationFlood,
    ZeroWindow,
    DeclaredLengths,
    IdleConnections,
    SlowWatchers,
    UnreadSnapshots,
}

impl Attack {
    fn name(self) -> &'static str {
        match self {
            Attack::None => "none",
            Attack::RapidReset => "rapid reset",
            Attack::SettingsFlood => "settings flood",
            Attack::PingFlood => "ping flood",
            Attack::ContinuationFlood => "continuation flood",
            Attack::ZeroWindow => "zero window, 4 MiB ranges",
            Attack::DeclaredLengths => "declared 2 MiB, 10 B sent",
            Attack::IdleConnections => "10k idle connections",
            Attack::SlowWatchers => "100 slow watchers",
            Attack::UnreadSnapshots => "unread snapshots",
        }
    }
}

/// What the attacker saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    closed_by_server: AtomicUsize,
}

/// A raw HTTP/2 connection to `port` that has sent its preface and `first` settings.
async fn open(port: u16, first: &[(u16, u32)]) -> Option<TcpStream> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    tcp.write_all(PREFACE).await.ok()?;
    tcp.write_all(&settings(first)).await.ok()?;
    Some(tcp)
}

/// Writes `bytes`: false once the server closed the connection or stopped reading it for
/// 200 ms.
async fn send(tcp: &mut TcpStream, bytes: &[u8]) -> bool {
    matches!(tokio::time::timeout(Duration::from_millis(200), tcp.write_all(bytes)).await, Ok(Ok(())))
}

/// Floods connections to `port`, one after another, each with `first` and then `chunk`
/// (given its index) until the server closes it or stops reading, until `stop`.
async fn flood_connections(
    port: u16,
    stop: &AtomicBool,
    seen: &Seen,
    first: Vec<u8>,
    chunk: impl Fn(usize) -> Vec<u8>,
) {
    while !stop.load(Ordering::Relaxed) {
        let Some(mut tcp) = open(port, &[]).await else { continue };
        seen.connections.fetch_add(1, Ordering::Relaxed);
        if !first.is_empty() && !send(&mut tcp, &first).await {
            continue;
        }
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) && send(&mut tcp, &chunk(i)).await {
            i += 1;
        }
        if closed(&mut tcp).await {
            seen.closed_by_server.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// True if the server has closed `tcp` (reads end within 100 ms).
async fn closed(tcp: &mut TcpStream) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    let drain = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_millis(100), drain).await.is_ok()
}

/// Opens a connection to `port` every 200 ms (its settings `first`), writes `calls` on it,
/// and drops it at the next, until `stop`.
async fn calls_per_connection(
    port: u16,
    stop: &AtomicBool,
    seen: &Seen,
    first: &[(u16, u32)],
    calls: Vec<u8>,
) {
    while !stop.load(Ordering::Relaxed) {
        let Some(mut tcp) = open(port, first).await else { continue };
        seen.connections.fetch_add(1, Ordering::Relaxed);
        if !send(&mut tcp, &calls).await {
            seen.closed_by_server.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `attack` on the server at `port` until `stop`; `ready` is set once it is under way.
async fn attack(attack: Attack, port: u16, stop: Arc<AtomicBool>, ready: Arc<AtomicBool>, seen: Arc<Seen>) {
    let endpoint = format!("http://127.0.0.1:{port}");
    let (stop, seen) = (&*stop, &*seen);
    let under_way = || ready.store(true, Ordering::Relaxed);
    match attack {
        Attack::None => under_way(),
        Attack::RapidReset => {
            under_way();
            flood_connections(port, stop, seen, Vec::new(), |i| reset_streams(200 * i as u32 + 1, 100)).await
        }
        Attack::SettingsFlood => {
            under_way();
            let chunk = settings_frames(1000);
            flood_connections(port, stop, seen, Vec::new(), |_| chunk.clone()).await
        }
        Attack::PingFlood => {
            under_way();
            let chunk = pings(100);
            flood_connections(port, stop, seen, Vec::new(), |_| chunk.clone()).await
        }
        Attack::ContinuationFlood => {
            under_way();
            let pad = header_pad();
            flood_connections(port, stop, seen, unfinished_headers(), |_| frame(CONTINUATION, 0, 1, &pad))
                .await
        }
        Attack::ZeroWindow => {
            under_way();
            let first = [(SETTINGS_INITIAL_WINDOW_SIZE, 0)];
            calls_per_connection(port, stop, seen, &first, range_calls(1, 200, b"big/")).await
        }
        Attack::DeclaredLengths => {
            under_way();
            let declared = u32::try_from(2 * MIB).expect("2 MiB fits");
            calls_per_connection(port, stop, seen, &[], declared_calls(1, 200, declared)).await
        }
        Attack::IdleConnections => {
            let mut idle = Vec::new();
            while idle.len() < 10_000 {
                let mut batch = Vec::new();
                for _ in 0..500 {
                    batch.push(open(port, &[]).await.expect("an idle connection"));
                }
                for tcp in &mut batch {
                    let mut first = [0u8; 9];
                    tcp.read_exact(&mut first).await.expect("the server's SETTINGS");
                }
                idle.append(&mut batch);
            }
            seen.connections.store(idle.len(), Ordering::Relaxed);
            under_way();
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Attack::SlowWatchers => {
            use etcdlite_server::pb::etcdserverpb::watch_client::WatchClient;
            use etcdlite_server::pb::etcdserverpb::{
                watch_request::RequestUnion, WatchCreateRequest, WatchRequest,
            };
            let mut held = Vec::new();
            for _ in 0..100 {
                let channel = tonic::transport::Endpoint::from_shared(endpoint.clone())
                    .expect("an endpoint")
                    .initial_stream_window_size(65_535)
                    .initial_connection_window_size(65_535)
                    .connect()
                    .await
                    .expect("a watch connection");
                seen.connections.fetch_add(1, Ordering::Relaxed);
                let create = WatchRequest {
                    request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                        key: vec![0],
                        range_end: vec![0],
                        ..Default::default()
                    })),
                };
                let requests = futures::stream::iter([create]).chain(futures::stream::pending());
                let mut client = WatchClient::new(channel);
                let stream = client.watch(requests).await.expect("a watch stream");
                held.push((client, stream));
            }
            under_way();
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Attack::UnreadSnapshots => {
            use etcdlite_server::pb::etcdserverpb::maintenance_client::MaintenanceClient;
            use etcdlite_server::pb::etcdserverpb::SnapshotRequest;
            let mut held = Vec::new();
            // The server allows a few at once; the rest are refused, and tried again.
            for _ in 0..8 {
                let channel = tonic::transport::Channel::from_shared(endpoint.clone())
                    .expect("an endpoint")
                    .connect()
                    .await
                    .expect("a snapshot connection");
                seen.connections.fetch_add(1, Ordering::Relaxed);
                let mut client = MaintenanceClient::new(channel);
                match client.snapshot(SnapshotRequest {}).await {
                    Ok(stream) => held.push((client, stream.into_inner())),
                    Err(_) => {
                        seen.closed_by_server.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            under_way();
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Put and get latencies of [`rounds`] rounds against `endpoint`.
fn measure(endpoint: &str) -> (Vec<Duration>, Vec<Duration>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let mut client = etcd_client::Client::connect([endpoint], None).await.expect("the client connects");
        let value = vec![b'v'; 256];
        let rounds = rounds();
        let (mut puts, mut gets) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
        for i in 0..rounds {
            let key = format!("bench/{:04}", i % KEYS);
            let start = Instant::now();
            client.put(key.as_str(), value.clone(), None).await.expect("a put");
            puts.push(start.elapsed());
            let start = Instant::now();
            let got = client.get(key.as_str(), None).await.expect("a get");
            gets.push(start.elapsed());
            assert_eq!(got.kvs().len(), 1);
        }
        (puts, gets)
    })
}

/// The `p`th percentile (nearest rank) of `samples`, sorted here.
fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort_unstable();
    let rank = (p * samples.len()).div_ceil(100).max(1);
    samples[rank - 1]
}

fn micros(d: Duration) -> String {
    if d >= Duration::from_millis(10) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{} µs", d.as_micros())
    }
}

/// The resident memory of process `pid`, in MiB.
fn resident_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server's status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

/// Writes the data the attacks read: 12 MiB under `big/` (a Range of `big/` is 4 MiB of it).
fn preload(endpoint: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let mut client = etcd_client::Client::connect([endpoint], None).await.expect("the client connects");
        for i in 0..4 {
            client.put(format!("big/{i}"), vec![b'x'; MIB], None).await.expect("a big put");
        }
        for i in 0..8 {
            client.put(format!("more/{i}"), vec![b'x'; MIB], None).await.expect("a big put");
        }
    });
}

fn case(which: Attack, dir: &std::path::Path) {
    let log = dir.join(format!("{}.log", which.name().replace(' ', "-")));
    let server =
        process::EtcdLiteChild::start("http", &["--max-connections", "10100"], &log, Duration::from_secs(30))
            .unwrap_or_else(|log| panic!("etcdlite did not start; its log:\n{log}"));
    let endpoint = format!("http://127.0.0.1:{}", server.port());
    preload(&endpoint);
    let (stop, ready, seen) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)), Arc::new(Seen::default()));
    let attacker = {
        let (stop, ready, seen, port) = (stop.clone(), ready.clone(), seen.clone(), server.port());
        std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(attack(which, port, stop, ready, seen));
        })
    };
    while !ready.load(Ordering::Relaxed) {
        assert!(!attacker.is_finished(), "the attacker ended before its attack was under way");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let the attack get going.
    std::thread::sleep(Duration::from_millis(300));
    let measured = std::panic::catch_unwind(|| measure(&endpoint));
    let Ok((mut puts, mut gets)) = measured else {
        panic!("the client failed under {}; the server's log:\n{}", which.name(), server.log());
    };
    let rss = resident_mib(server.pid());
    stop.store(true, Ordering::Relaxed);
    attacker.join().expect("the attacker");
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {:.0} MiB | {} opened, {} closed by the server |",
        which.name(),
        micros(percentile(&mut puts, 50)),
        micros(percentile(&mut puts, 99)),
        micros(percentile(&mut puts, 100)),
        micros(percentile(&mut gets, 50)),
        micros(percentile(&mut gets, 99)),
        micros(percentile(&mut gets, 100)),
        rss,
        seen.connections.load(Ordering::Relaxed),
        seen.closed_by_server.load(Ordering::Relaxed),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks cases by name.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let dir = tempfile::tempdir().expect("a temp dir");
    println!(
        "{} rounds of put + get per case, one client; server: this build's etcdlite, memory engine",
        rounds()
    );
    println!();
    println!("| attack | put p50 | put p99 | put max | get p50 | get p99 | get max | server RSS | attacker's connections |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let all = [
        Attack::None,
        Attack::RapidReset,
        Attack::SettingsFlood,
        Attack::PingFlood,
        Attack::ContinuationFlood,
        Attack::ZeroWindow,
        Attack::DeclaredLengths,
        Attack::IdleConnections,
        Attack::SlowWatchers,
        Attack::UnreadSnapshots,
    ];
    for which in all {
        if filter.is_empty() || filter.iter().any(|f| which.name().contains(f.as_str())) {
            case(which, dir.path());
        }
    }
}
