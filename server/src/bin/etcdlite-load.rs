//! `etcdlite-load`: a load generator for any etcd v3 gRPC endpoint (etcdlite or a real
//! etcd), meant for loopback benchmarks.
//!
//! It opens `--conns` gRPC connections (HTTP/2, one TCP connection each), shares them
//! round-robin among `--clients` concurrent tasks, and each task issues one request at a
//! time (closed loop) until `--total` requests are done or `--duration` has passed. Every
//! successful request's latency is kept, so the percentiles are exact (nearest rank over
//! all samples), not estimated. Unary calls go through the h2 crate directly (see
//! `Conn`), so the tool spends as little as it can of the CPU it shares with the server it
//! measures; so do the watch streams unless `--watch-client tonic` is given.
//!
//! Workloads:
//!
//! - `put`: puts of `--key-size`-byte keys (random, or sequential with
//!   `--sequential-keys`, among `--key-space` keys) with a `--val-size`-byte value.
//! - `get`: single-key ranges over the same keys, written once before the timed part;
//!   linearizable by default, serializable with `--consistency s`.
//! - `txn`: compare-and-swap, each client on its own key: "if the key's mod revision is
//!   still the one I last wrote, put a new value, else read it" (the pattern Kubernetes
//!   uses for updates). A failed compare counts as a completed request and is reported.
//! - `watch`: `--watchers` watchers of one key, each on its own Watch stream, spread over
//!   the connections; one writer on a connection of its own puts the key, waits until every
//!   watcher has the event, then puts again. Each sample is one watcher's latency from just
//!   before the put was sent until it received the event; throughput is events delivered
//!   per second. With `--prefix` the watchers watch the prefix `load/` and the writer puts
//!   `--key-space` keys under it in turn. The watchers use h2 directly, as the unary calls
//!   do (`--watch-client tonic` for tonic's client, what earlier rounds measured with).
//!
//! ```text
//! etcdlite-load put --endpoints 127.0.0.1:2379 --clients 16 --total 20000
//! etcdlite-load get --clients 16 --conns 4 --duration 10s --json
//! etcdlite-load watch --watchers 1000 --conns 10 --total 200
//! etcdlite-load watch --watchers 10000 --conns 100 --total 20 --prefix --json
//! ```

#![forbid(unsafe_code)]

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use clap::{Parser, ValueEnum};
use etcdlite_server::pb::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use etcdlite_server::pb::etcdserverpb::request_op::Request as Op;
use etcdlite_server::pb::etcdserverpb::response_op::Response as OpResponse;
use etcdlite_server::pb::etcdserverpb::watch_client::WatchClient;
use etcdlite_server::pb::etcdserverpb::watch_request::RequestUnion;
use etcdlite_server::pb::etcdserverpb::{
    AuthenticateRequest, AuthenticateResponse, Compare, PutRequest, PutResponse, RangeRequest, RangeResponse,
    RequestOp, TxnRequest, TxnResponse, WatchCreateRequest, WatchRequest,
};
use etcdlite_server::pb::mvccpb::event::EventType;
use tokio::sync::{mpsc, Barrier};
use tonic::transport::{Channel, Endpoint};

#[path = "common/watch_rounds.rs"]
mod watch_rounds;
use watch_rounds::Rounds;

/// mimalloc, as in the server: the tool shares the machine with the server it measures,
/// and the fewer cycles it spends on each request, the fewer it takes from the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Any error, sendable between tasks.
type BoxError = Box<dyn Error + Send + Sync>;

/// The requests without `--total` nor `--duration`.
const DEFAULT_TOTAL: u64 = 10_000;
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The KV methods the unary workloads call.
const PUT: &str = "/etcdserverpb.KV/Put";
const RANGE: &str = "/etcdserverpb.KV/Range";
const TXN: &str = "/etcdserverpb.KV/Txn";
/// The Watch call.
const WATCH: &str = "/etcdserverpb.Watch/Watch";

/// The most connections `watch` opens without `--conns`: one per watcher would take two
/// descriptors per watcher on a loopback run (the tool's and the server's), and etcdlite
/// serves 10,000 connections at most by default.
const MAX_DEFAULT_WATCH_CONNS: usize = 1_000;

/// Puts per transaction when `get` writes its keys before the timed part.
const PREFILL_BATCH: u64 = 100;

/// What the clients do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// Puts of random (or sequential) keys.
    Put,
    /// Single-key ranges of keys written beforehand.
    Get,
    /// Compare-and-swap on one key per client.
    Txn,
    /// One writer, `--watchers` watchers of its key: put-to-event latency.
    Watch,
}

/// How `get` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Consistency {
    /// Linearizable (etcd's default: confirmed with the leader before answering).
    L,
    /// Serializable (served from the member's local state).
    S,
}

/// A load generator for etcd v3 gRPC endpoints.
#[derive(Debug, Parser)]
#[command(
    name = "etcdlite-load",
    version,
    about = "A load generator for etcd v3 gRPC endpoints (etcdlite or etcd)"
)]
struct Args {
    /// The workload to run.
    #[arg(value_enum)]
    workload: Workload,
    /// Comma-separated `host:port` endpoints (an `http://` prefix is accepted);
    /// connections go to them in turn.
    #[arg(long, default_value = "127.0.0.1:2379", value_delimiter = ',')]
    endpoints: Vec<String>,
    /// Concurrent clients, each with one request in flight at a time (put, get, txn).
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// gRPC connections, shared round-robin by the clients (or the watchers); default:
    /// one per client (one per watcher for `watch`, up to 1,000).
    #[arg(long)]
    conns: Option<usize>,
    /// Requests to issue, over all clients (for `watch`: puts by the writer); default
    /// 10,000, or unlimited when `--duration` is given.
    #[arg(long)]
    total: Option<u64>,
    /// Stop issuing requests after this long (`500ms`, `10s`, `2m`; a bare number is
    /// seconds).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Key size in bytes (keys are zero-padded decimal numbers; a number with more digits
    /// makes a longer key).
    #[arg(long, default_value_t = 8)]
    key_size: usize,
    /// Value size in bytes (at least 8 for `watch`, whose values carry a sequence number).
    #[arg(long, default_value_t = 256)]
    val_size: usize,
    /// Distinct keys that `put` and `get` choose from.
    #[arg(long, default_value_t = 10_000)]
    key_space: u64,
    /// Keys in order (request i uses key i modulo the key space) instead of at random.
    #[arg(long)]
    sequential_keys: bool,
    /// Read consistency for `get`: l (linearizable) or s (serializable).
    #[arg(long, value_enum, default_value = "l")]
    consistency: Consistency,
    /// `get`: do not write the key space before reading (reads then find nothing).
    #[arg(long)]
    no_prefill: bool,
    /// Watchers of the one key (`watch`).
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// `watch`: the watchers watch a prefix (`load/`) and the writer puts keys under it
    /// (`--key-space` keys in turn), instead of all watching one key.
    #[arg(long)]
    prefix: bool,
    /// `watch`: the client library of the watchers (the writer always uses h2).
    #[arg(long, value_enum, default_value = "h2")]
    watch_client: WatchClientKind,
    /// How long the writer waits for every watcher to get an event before counting the
    /// missing ones as lost and going on (`watch`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    watch_timeout: Duration,
    /// Deadline of each unary request.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
    /// Threads of the tool's runtime. One (the default) runs every client on one event
    /// loop: on a machine the tool shares with the server under test, that takes the
    /// least CPU from the server, since a worker per core makes the tool's threads and the
    /// server's contend for the same cores and both spend more per request.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print the result as one JSON object on stdout (the human-readable line goes to
    /// stderr).
    #[arg(long)]
    json: bool,
    /// `name:password`: authenticate once at start and send the token with every call, as
    /// clientv3 does (`--user` of etcdctl and etcd's benchmark tool); put, get and txn.
    #[arg(long)]
    user: Option<String>,
}

impl Args {
    /// The connection count: `--conns`, or one per client (per watcher for `watch`, up to
    /// `MAX_DEFAULT_WATCH_CONNS`).
    fn conn_count(&self) -> usize {
        let default = if self.workload == Workload::Watch {
            self.watchers.min(MAX_DEFAULT_WATCH_CONNS)
        } else {
            self.clients
        };
        self.conns.unwrap_or(default).max(1)
    }

    /// The request budget: `--total`, else unlimited with `--duration`, else 10,000.
    fn total(&self) -> u64 {
        self.total.unwrap_or(if self.duration.is_some() { u64::MAX } else { DEFAULT_TOTAL })
    }
}

/// Parses `500ms`, `10s`, `1.5s`, `2m`, `1h`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("bad duration {text:?}: expected e.g. 10s"))?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1e3,
        "us" | "µs" => number / 1e6,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        other => return Err(format!("bad duration unit {other:?}: use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("bad duration {text:?}: {e}"))
}

/// Latency statistics over a set of samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Summary {
    /// Number of samples.
    count: usize,
    /// Arithmetic mean.
    mean: Duration,
    /// Smallest sample.
    min: Duration,
    /// Median (nearest rank).
    p50: Duration,
    /// 90th percentile (nearest rank).
    p90: Duration,
    /// 99th percentile (nearest rank).
    p99: Duration,
    /// Largest sample.
    max: Duration,
}

impl Summary {
    /// Sorts `samples` and summarizes them; all zero when there are none.
    fn of(samples: &mut [Duration]) -> Summary {
        samples.sort_unstable();
        if samples.is_empty() {
            return Summary::default();
        }
        let total: Duration = samples.iter().sum();
        Summary {
            count: samples.len(),
            mean: total / samples.len() as u32,
            min: samples[0],
            p50: percentile(samples, 50.0),
            p90: percentile(samples, 90.0),
            p99: percentile(samples, 99.0),
            max: samples[samples.len() - 1],
        }
    }
}

/// The `p`th percentile (0 to 100) of `sorted` (ascending) by the nearest-rank method: the
/// smallest sample with at least `p` % of the samples at or below it. Zero when empty.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // p * n is exact for integer percentiles and realistic counts, and one division of exact
    // values rounds correctly: p / 100 * n would put p7 of 100 samples at rank 8
    // (0.07 * 100 is 7.000000000000001 in floats).
    let rank = (p * sorted.len() as f64 / 100.0).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What one run measured.
#[derive(Debug)]
struct Report {
    /// Requests (or, for `watch`, events) that succeeded: the latency samples.
    ok: u64,
    /// Requests that failed (for `watch`: failed puts plus events not delivered in time).
    errors: u64,
    /// `txn` only: transactions whose compare failed (the key had moved on).
    cas_failures: u64,
    /// The first error seen, for the report.
    first_error: Option<String>,
    /// Wall time from the start of the timed part until the last client finished.
    elapsed: Duration,
    /// Latency statistics of the successful requests.
    latency: Summary,
}

impl Report {
    /// Successful requests (events for `watch`) per second.
    fn throughput(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.ok as f64 / seconds
        } else {
            0.0
        }
    }
}

/// Milliseconds, as a float, for the reports.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The one-line human-readable report.
fn human_line(args: &Args, report: &Report) -> String {
    let setup = match args.workload {
        Workload::Watch => format!(
            "watchers={} conns={} {} client={:?}",
            args.watchers,
            args.conn_count(),
            if args.prefix { "prefix" } else { "key" },
            args.watch_client
        ),
        _ => format!("clients={} conns={}", args.clients, args.conn_count()),
    };
    let unit = if args.workload == Workload::Watch { "events" } else { "req" };
    let l = &report.latency;
    let mut line = format!(
        "{workload:?} {setup} key={k}B value={v}B: {ok} ok, {err} errors in {secs:.3} s = {tput:.1} {unit}/s; \
         latency ms p50 {p50:.3} p90 {p90:.3} p99 {p99:.3} max {max:.3} (mean {mean:.3})",
        workload = args.workload,
        k = args.key_size,
        v = args.val_size,
        ok = report.ok,
        err = report.errors,
        secs = report.elapsed.as_secs_f64(),
        tput = report.throughput(),
        p50 = ms(l.p50),
        p90 = ms(l.p90),
        p99 = ms(l.p99),
        max = ms(l.max),
        mean = ms(l.mean),
    )
    .to_lowercase();
    if report.cas_failures > 0 {
        line.push_str(&format!("; {} compares failed", report.cas_failures));
    }
    if let Some(error) = &report.first_error {
        line.push_str(&format!("; first error: {error}"));
    }
    line
}

/// The report as one JSON object.
fn json_report(args: &Args, report: &Report) -> serde_json::Value {
    let l = &report.latency;
    serde_json::json!({
        "workload": format!("{:?}", args.workload).to_lowercase(),
        "endpoints": args.endpoints,
        "clients": args.clients,
        "conns": args.conn_count(),
        "watchers": if args.workload == Workload::Watch { Some(args.watchers) } else { None },
        "watch": if args.workload == Workload::Watch { Some(if args.prefix { "prefix" } else { "key" }) } else { None },
        "watch_client": if args.workload == Workload::Watch {
            Some(format!("{:?}", args.watch_client).to_lowercase())
        } else {
            None
        },
        "key_size": args.key_size,
        "val_size": args.val_size,
        "ok": report.ok,
        "errors": report.errors,
        "cas_failures": report.cas_failures,
        "first_error": report.first_error,
        "elapsed_s": report.elapsed.as_secs_f64(),
        "throughput": report.throughput(),
        "latency_ms": {
            "mean": ms(l.mean), "min": ms(l.min), "p50": ms(l.p50), "p90": ms(l.p90),
            "p99": ms(l.p99), "max": ms(l.max),
        },
    })
}

/// splitmix64: a small, fast, seedable generator for key choice and value bytes.
struct Rng(u64);

impl Rng {
    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `len` random bytes.
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// Key number `index`, as zero-padded decimal of at least `size` bytes.
fn key_bytes(index: u64, size: usize) -> Vec<u8> {
    format!("{index:0size$}").into_bytes()
}

/// The URL of endpoint `text` (`host:port` or `http://host:port`).
fn endpoint_url(text: &str) -> String {
    if text.starts_with("http://") || text.starts_with("https://") {
        text.to_owned()
    } else {
        format!("http://{text}")
    }
}

/// Opens `count` tonic channels (for `watch`), to the endpoints in turn.
async fn connect(endpoints: &[String], count: usize) -> Result<Vec<Channel>, BoxError> {
    let mut channels = Vec::with_capacity(count);
    for i in 0..count {
        let url = endpoint_url(&endpoints[i % endpoints.len()]);
        let endpoint = Endpoint::from_shared(url.clone())?.tcp_nodelay(true).connect_timeout(CONNECT_TIMEOUT);
        let channel = endpoint.connect().await.map_err(|e| format!("connecting to {url}: {e}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// A gRPC connection for unary calls, driven through the h2 crate itself: each call
/// is one HTTP/2 stream (headers, one data frame, then the answer and its trailers).
///
/// tonic's `Channel` puts a buffer task, a reconnecting service stack and hyper's client
/// between a call and h2. Without them the tool runs 40 % fewer instructions per put
/// (callgrind), CPU that the server under test, sharing the machine, gets instead.
#[derive(Clone)]
struct Conn {
    send: h2::client::SendRequest<Bytes>,
    /// `http://host:port`, which each call's URI starts with.
    base: String,
    /// Each call's deadline.
    timeout: Duration,
    /// The auth token sent with every call (`token` metadata), if any.
    token: Option<http::HeaderValue>,
}

impl Conn {
    /// Authenticates `user` (`name:password`) on this connection, and sends its token with
    /// every later call of every connection in `conns`.
    async fn log_in(conns: &mut [Conn], user: &str) -> Result<(), BoxError> {
        let (name, password) = user.split_once(':').ok_or("--user takes name:password")?;
        let request = AuthenticateRequest { name: name.to_owned(), password: password.to_owned() };
        let answer: AuthenticateResponse = conns[0].call("/etcdserverpb.Auth/Authenticate", &request).await?;
        let token = http::HeaderValue::from_str(&answer.token)?;
        for conn in conns {
            conn.token = Some(token.clone());
        }
        Ok(())
    }

    /// Opens `count` connections, to the endpoints in turn.
    async fn open(endpoints: &[String], count: usize, timeout: Duration) -> Result<Vec<Conn>, BoxError> {
        let mut conns = Vec::with_capacity(count);
        for i in 0..count {
            let base = endpoint_url(&endpoints[i % endpoints.len()]);
            let uri: http::Uri = base.parse()?;
            let address = uri.authority().ok_or_else(|| format!("no host:port in {base}"))?.as_str();
            let connecting = async {
                let tcp = tokio::net::TcpStream::connect(address).await?;
                tcp.set_nodelay(true)?;
                // hyper's client windows (tonic's, before), so that large answers flow as
                // they did in earlier rounds.
                let (send, connection) = h2::client::Builder::new()
                    .initial_window_size(2 * 1024 * 1024)
                    .initial_connection_window_size(5 * 1024 * 1024)
                    .handshake(tcp)
                    .await?;
                Ok::<_, BoxError>((send, connection))
            };
            let (send, connection) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
                .await
                .map_err(|_| format!("connecting to {base}: timed out"))?
                .map_err(|e| format!("connecting to {base}: {e}"))?;
            let peer = base.clone();
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    eprintln!("etcdlite-load: connection to {peer} ended: {e}");
                }
            });
            conns.push(Conn { send, base: base.trim_end_matches('/').to_owned(), timeout, token: None });
        }
        Ok(conns)
    }

    /// Calls `method` (`/etcdserverpb.KV/Put`, ...) with `request`, within the deadline.
    async fn call<A: prost::Message + Default>(
        &self,
        method: &str,
        request: &impl prost::Message,
    ) -> Result<A, tonic::Status> {
        match tokio::time::timeout(self.timeout, self.call_once(method, request)).await {
            Ok(answer) => answer,
            Err(_) => Err(tonic::Status::deadline_exceeded("etcdlite-load: deadline exceeded")),
        }
    }

    async fn call_once<A: prost::Message + Default>(
        &self,
        method: &str,
        request: &impl prost::Message,
    ) -> Result<A, tonic::Status> {
        let mut head = http::Request::post(format!("{}{method}", self.base))
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(())
            .map_err(|e| tonic::Status::internal(e.to_string()))?;
        if let Some(token) = &self.token {
            head.headers_mut().insert("token", token.clone());
        }
        // A gRPC message: uncompressed, its length, then the protobuf.
        let message = grpc_message(request)?;

        let mut send = self.send.clone().ready().await.map_err(h2_status)?;
        let (answer, mut stream) = send.send_request(head, false).map_err(h2_status)?;
        stream.send_data(message, true).map_err(h2_status)?;
        let (head, mut body) = answer.await.map_err(h2_status)?.into_parts();
        if head.status != http::StatusCode::OK {
            return Err(tonic::Status::unknown(format!("HTTP status {}", head.status)));
        }
        // A call that failed before it ran answers with headers only, the status in them.
        if let Some(status) = tonic::Status::from_header_map(&head.headers) {
            return Err(match status.code() {
                tonic::Code::Ok => tonic::Status::internal("the answer has no message"),
                _ => status,
            });
        }
        let mut data = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(h2_status)?;
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.map_err(h2_status)?.unwrap_or_default();
        match tonic::Status::from_header_map(&trailers) {
            Some(status) if status.code() == tonic::Code::Ok => {}
            Some(status) => return Err(status),
            None => return Err(tonic::Status::internal("the answer has no grpc-status")),
        }
        let framed = match data.first_chunk::<5>() {
            Some(&[0, a, b, c, d]) => data.len() - 5 == u32::from_be_bytes([a, b, c, d]) as usize,
            _ => false,
        };
        if !framed {
            return Err(tonic::Status::internal("the answer is not one uncompressed message"));
        }
        A::decode(&data[5..]).map_err(|e| tonic::Status::internal(format!("decoding the answer: {e}")))
    }
}

/// A transport error as the status a gRPC client reports for it.
fn h2_status(error: h2::Error) -> tonic::Status {
    tonic::Status::unavailable(error.to_string())
}

/// A put request.
fn put(key: Vec<u8>, value: Vec<u8>) -> PutRequest {
    PutRequest { key, value, ..Default::default() }
}

/// One client's results.
#[derive(Default)]
struct ClientResult {
    /// Latencies of its successful requests.
    latencies: Vec<Duration>,
    /// Its failed requests.
    errors: u64,
    /// Its failed compares (`txn`).
    cas_failures: u64,
    /// Its first error.
    first_error: Option<String>,
}

/// Per-client state of a unary workload.
enum ClientOp {
    /// `put`: random keys and one value.
    Put {
        /// Key choice.
        rng: Rng,
        /// The value of every put.
        value: Vec<u8>,
    },
    /// `get`: random keys.
    Get {
        /// Key choice.
        rng: Rng,
    },
    /// `txn`: compare-and-swap on the client's own key.
    Txn {
        /// The client's key.
        key: Vec<u8>,
        /// The value of every swap.
        value: Vec<u8>,
        /// The key's mod revision as last seen.
        revision: i64,
    },
}

/// Shared settings of the unary workloads.
struct Plan {
    /// Requests to issue in all.
    total: u64,
    /// How long to issue them, if bounded.
    duration: Option<Duration>,
    /// Key size.
    key_size: usize,
    /// Keys to choose from.
    key_space: u64,
    /// Keys in order rather than at random.
    sequential: bool,
    /// Serializable reads.
    serializable: bool,
}

impl Plan {
    /// The key of request number `i`.
    fn key(&self, i: u64, rng: &mut Rng) -> Vec<u8> {
        let index = if self.sequential { i % self.key_space } else { rng.next_u64() % self.key_space };
        key_bytes(index, self.key_size)
    }
}

impl ClientOp {
    /// Issues request number `i`; `Ok(false)` is a failed compare.
    async fn run(&mut self, conn: &Conn, plan: &Plan, i: u64) -> Result<bool, tonic::Status> {
        match self {
            ClientOp::Put { rng, value } => {
                conn.call::<PutResponse>(PUT, &put(plan.key(i, rng), value.clone())).await?;
                Ok(true)
            }
            ClientOp::Get { rng } => {
                let key = plan.key(i, rng);
                let request = RangeRequest { key, serializable: plan.serializable, ..Default::default() };
                conn.call::<RangeResponse>(RANGE, &request).await?;
                Ok(true)
            }
            ClientOp::Txn { key, value, revision } => {
                let request = TxnRequest {
                    compare: vec![Compare {
                        result: CompareResult::Equal as i32,
                        target: CompareTarget::Mod as i32,
                        key: key.clone(),
                        target_union: Some(TargetUnion::ModRevision(*revision)),
                        range_end: Vec::new(),
                    }],
                    success: vec![RequestOp {
                        request: Some(Op::RequestPut(put(key.clone(), value.clone()))),
                    }],
                    failure: vec![RequestOp {
                        request: Some(Op::RequestRange(RangeRequest {
                            key: key.clone(),
                            ..Default::default()
                        })),
                    }],
                };
                let resp: TxnResponse = conn.call(TXN, &request).await?;
                if resp.succeeded {
                    *revision = resp.header.map_or(0, |h| h.revision);
                    return Ok(true);
                }
                // Someone else moved the key: take its current revision and go on.
                if let Some(OpResponse::ResponseRange(range)) =
                    resp.responses.into_iter().next().and_then(|r| r.response)
                {
                    *revision = range.kvs.first().map_or(0, |kv| kv.mod_revision);
                }
                Ok(false)
            }
        }
    }
}

/// Writes every key of the key space once (untimed), in transactions of 100 puts, spread
/// over the connections.
async fn prefill(conns: &[Conn], plan: &Plan, val_size: usize) -> Result<(), BoxError> {
    let batches = plan.key_space.div_ceil(PREFILL_BATCH);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (c, conn) in conns.iter().enumerate().take(16) {
        let conn = conn.clone();
        let next = next.clone();
        let (key_space, key_size) = (plan.key_space, plan.key_size);
        let value = Rng(c as u64 + 1000).bytes(val_size);
        tasks.push(tokio::spawn(async move {
            loop {
                let batch = next.fetch_add(1, Ordering::Relaxed);
                if batch >= batches {
                    return Ok::<(), tonic::Status>(());
                }
                let first = batch * PREFILL_BATCH;
                let success = (first..(first + PREFILL_BATCH).min(key_space))
                    .map(|k| RequestOp {
                        request: Some(Op::RequestPut(put(key_bytes(k, key_size), value.clone()))),
                    })
                    .collect();
                conn.call::<TxnResponse>(TXN, &TxnRequest { success, ..Default::default() }).await?;
            }
        }));
    }
    for task in tasks {
        task.await?.map_err(|e| format!("writing the keys to read: {e}"))?;
    }
    Ok(())
}

/// Runs `put`, `get` or `txn`.
async fn run_unary(args: &Args) -> Result<Report, BoxError> {
    let mut conns = Conn::open(&args.endpoints, args.conn_count(), args.timeout).await?;
    if let Some(user) = &args.user {
        Conn::log_in(&mut conns, user).await?;
    }
    let plan = Arc::new(Plan {
        total: args.total(),
        duration: args.duration,
        key_size: args.key_size,
        key_space: args.key_space.max(1),
        sequential: args.sequential_keys,
        serializable: args.consistency == Consistency::S,
    });
    if args.workload == Workload::Get && !args.no_prefill {
        prefill(&conns, &plan, args.val_size).await?;
    }

    let issued = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(args.clients + 1));
    let mut tasks = Vec::with_capacity(args.clients);
    for client in 0..args.clients {
        let conn = conns[client % conns.len()].clone();
        let mut rng = Rng(client as u64);
        let mut op = match args.workload {
            Workload::Put => ClientOp::Put { value: rng.bytes(args.val_size), rng },
            Workload::Get => ClientOp::Get { rng },
            Workload::Txn => {
                // Each client's key, created untimed; its revision starts the swaps.
                let key = key_bytes(client as u64, args.key_size);
                let value = rng.bytes(args.val_size);
                let resp: PutResponse = conn.call(PUT, &put(key.clone(), value.clone())).await?;
                ClientOp::Txn { key, value, revision: resp.header.map_or(0, |h| h.revision) }
            }
            Workload::Watch => unreachable!("watch has its own runner"),
        };
        let (plan, issued, barrier) = (plan.clone(), issued.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut result = ClientResult {
                latencies: Vec::with_capacity(plan.total.min(1 << 20) as usize),
                ..Default::default()
            };
            barrier.wait().await;
            let deadline = plan.duration.map(|d| Instant::now() + d);
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let i = issued.fetch_add(1, Ordering::Relaxed);
                if i >= plan.total {
                    break;
                }
                let start = Instant::now();
                match op.run(&conn, &plan, i).await {
                    Ok(swapped) => {
                        result.latencies.push(start.elapsed());
                        result.cas_failures += u64::from(!swapped);
                    }
                    Err(status) => {
                        result.errors += 1;
                        result.first_error.get_or_insert_with(|| status.to_string());
                    }
                }
            }
            result
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut all = ClientResult::default();
    for task in tasks {
        let result = task.await?;
        all.latencies.extend(result.latencies);
        all.errors += result.errors;
        all.cas_failures += result.cas_failures;
        if all.first_error.is_none() {
            all.first_error = result.first_error;
        }
    }
    let elapsed = start.elapsed();
    Ok(Report {
        ok: all.latencies.len() as u64,
        errors: all.errors,
        cas_failures: all.cas_failures,
        first_error: all.first_error,
        elapsed,
        latency: Summary::of(&mut all.latencies),
    })
}

/// The prefix every key of a `watch --prefix` run starts with.
const WATCH_PREFIX: &[u8] = b"load/";

/// The end of the range of keys starting with `prefix` (etcd's `--prefix`): `prefix` with its
/// last byte below 0xff incremented and what follows it dropped.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The sequence numbers of the put events in `resp` (the first 8 bytes of each value).
fn put_sequences(resp: &etcdlite_server::pb::etcdserverpb::WatchResponse) -> impl Iterator<Item = u64> + '_ {
    resp.events.iter().filter(|e| e.r#type == EventType::Put as i32).filter_map(|e| {
        let value = &e.kv.as_ref()?.value;
        value.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
    })
}

/// Which client library the watchers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum WatchClientKind {
    /// The h2 crate directly, as the unary calls: the least CPU taken from the server.
    H2,
    /// tonic's generated client (what earlier rounds measured with).
    Tonic,
}

/// The messages of a gRPC stream's answer, read from its HTTP/2 body.
struct GrpcMessages {
    body: h2::RecvStream,
    buffer: BytesMut,
}

impl GrpcMessages {
    /// The next whole message, `None` at the end of the stream.
    async fn next(&mut self) -> Result<Option<Bytes>, tonic::Status> {
        loop {
            if let Some(&[flag, a, b, c, d]) = self.buffer.first_chunk::<5>() {
                if flag != 0 {
                    return Err(tonic::Status::internal("a compressed message"));
                }
                let len = u32::from_be_bytes([a, b, c, d]) as usize;
                if self.buffer.len() >= 5 + len {
                    let _ = self.buffer.split_to(5);
                    return Ok(Some(self.buffer.split_to(len).freeze()));
                }
            }
            match self.body.data().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(h2_status)?;
                    let _ = self.body.flow_control().release_capacity(chunk.len());
                    self.buffer.extend_from_slice(&chunk);
                }
                None => return Ok(None),
            }
        }
    }
}

impl Conn {
    /// Opens a streaming call of `method` and sends `first` on it, leaving the request side
    /// open; the request side and the answer's messages once the answer's headers came.
    async fn open_stream(
        &self,
        method: &str,
        first: &impl prost::Message,
    ) -> Result<(h2::SendStream<Bytes>, GrpcMessages), tonic::Status> {
        let head = http::Request::post(format!("{}{method}", self.base))
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(())
            .map_err(|e| tonic::Status::internal(e.to_string()))?;
        let mut send = self.send.clone().ready().await.map_err(h2_status)?;
        let (answer, mut stream) = send.send_request(head, false).map_err(h2_status)?;
        stream.send_data(grpc_message(first)?, false).map_err(h2_status)?;
        let (head, body) = answer.await.map_err(h2_status)?.into_parts();
        if head.status != http::StatusCode::OK {
            return Err(tonic::Status::unknown(format!("HTTP status {}", head.status)));
        }
        if let Some(status) = tonic::Status::from_header_map(&head.headers) {
            return Err(status);
        }
        Ok((stream, GrpcMessages { body, buffer: BytesMut::new() }))
    }
}

/// `message` framed as one uncompressed gRPC message.
fn grpc_message(message: &impl prost::Message) -> Result<Bytes, tonic::Status> {
    let len = message.encoded_len();
    let mut framed = BytesMut::with_capacity(5 + len);
    framed.put_u8(0);
    framed.put_u32(u32::try_from(len).map_err(|_| tonic::Status::internal("message too large"))?);
    message.encode(&mut framed).map_err(|e| tonic::Status::internal(e.to_string()))?;
    Ok(framed.freeze())
}

/// Where a watcher's stream goes.
enum WatchConn {
    H2(Conn),
    Tonic(Channel),
}

/// Opens one watch (`create`) on `conn`, reports to `ready` once it is created, then tells
/// `rounds` of every put event it receives until the stream ends.
async fn watcher(
    conn: WatchConn,
    create: WatchRequest,
    ready: mpsc::Sender<Result<(), String>>,
    rounds: Arc<Rounds>,
) {
    match conn {
        WatchConn::H2(conn) => {
            let (requests, mut messages) = match conn.open_stream(WATCH, &create).await {
                Ok(opened) => opened,
                Err(e) => {
                    let _ = ready.send(Err(e.to_string())).await;
                    return;
                }
            };
            let decode = |m: Bytes| {
                <etcdlite_server::pb::etcdserverpb::WatchResponse as prost::Message>::decode(m)
                    .map_err(|e| e.to_string())
            };
            match messages.next().await.map_err(|e| e.to_string()).and_then(|m| m.map(decode).transpose()) {
                Ok(Some(resp)) if resp.created && !resp.canceled => {
                    let _ = ready.send(Ok(())).await;
                }
                other => {
                    let _ = ready.send(Err(format!("watch not created: {other:?}"))).await;
                    return;
                }
            }
            drop(ready);
            while let Ok(Some(message)) = messages.next().await {
                let now = Instant::now();
                let Ok(resp) = decode(message) else { return };
                for seq in put_sequences(&resp) {
                    rounds.arrived(seq, now);
                }
            }
            // The request side stays open until here: some servers end a stream whose
            // client closed its side.
            drop(requests);
        }
        WatchConn::Tonic(channel) => {
            let (requests, outgoing) = mpsc::channel(1);
            if requests.send(create).await.is_err() {
                return;
            }
            let outgoing = tokio_stream::wrappers::ReceiverStream::new(outgoing);
            let mut stream = match WatchClient::new(channel).watch(outgoing).await {
                Ok(stream) => stream.into_inner(),
                Err(e) => {
                    let _ = ready.send(Err(e.to_string())).await;
                    return;
                }
            };
            match stream.message().await {
                Ok(Some(resp)) if resp.created && !resp.canceled => {
                    let _ = ready.send(Ok(())).await;
                }
                other => {
                    let _ = ready.send(Err(format!("watch not created: {other:?}"))).await;
                    return;
                }
            }
            drop(ready);
            while let Ok(Some(resp)) = stream.message().await {
                let now = Instant::now();
                for seq in put_sequences(&resp) {
                    rounds.arrived(seq, now);
                }
            }
            drop(requests);
        }
    }
}

/// Runs `watch`: watchers on the connections, one writer on its own connection.
async fn run_watch(args: &Args) -> Result<Report, BoxError> {
    if args.val_size < 8 {
        return Err("watch needs --val-size of at least 8 (values carry a sequence number)".into());
    }
    if args.user.is_some() {
        return Err("--user is for the put, get and txn workloads".into());
    }
    let watchers = args.watchers.max(1);
    let conns: Vec<WatchConn> = match args.watch_client {
        WatchClientKind::H2 => Conn::open(&args.endpoints, args.conn_count(), args.timeout)
            .await?
            .into_iter()
            .map(WatchConn::H2)
            .collect(),
        WatchClientKind::Tonic => {
            connect(&args.endpoints, args.conn_count()).await?.into_iter().map(WatchConn::Tonic).collect()
        }
    };
    let writer = Conn::open(&args.endpoints, 1, args.timeout).await?.remove(0);
    let create = if args.prefix {
        WatchCreateRequest {
            key: WATCH_PREFIX.to_vec(),
            range_end: prefix_end(WATCH_PREFIX),
            ..Default::default()
        }
    } else {
        WatchCreateRequest { key: key_bytes(0, args.key_size), ..Default::default() }
    };
    let create = WatchRequest { request_union: Some(RequestUnion::CreateRequest(create)) };

    let rounds = Arc::new(Rounds::new(watchers));
    let (ready_tx, mut ready) = mpsc::channel(watchers);
    let mut tasks = Vec::with_capacity(watchers);
    for w in 0..watchers {
        let conn = match &conns[w % conns.len()] {
            WatchConn::H2(conn) => WatchConn::H2(conn.clone()),
            WatchConn::Tonic(channel) => WatchConn::Tonic(channel.clone()),
        };
        tasks.push(tokio::spawn(watcher(conn, create.clone(), ready_tx.clone(), rounds.clone())));
    }
    drop(ready_tx);
    for _ in 0..watchers {
        match ready.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(format!("opening a watcher: {e}").into()),
            None => return Err("a watcher ended before it was created".into()),
        }
    }

    let mut value = Rng(7).bytes(args.val_size);
    let (mut errors, mut first_error) = (0u64, None::<String>);
    let total = args.total();
    let start = Instant::now();
    let deadline = args.duration.map(|d| start + d);
    for seq in 0..total {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        value[..8].copy_from_slice(&seq.to_le_bytes());
        let key = if args.prefix {
            [WATCH_PREFIX, &key_bytes(seq % args.key_space.max(1), args.key_size)].concat()
        } else {
            key_bytes(0, args.key_size)
        };
        rounds.start(seq);
        let give_up = tokio::time::Instant::now() + args.watch_timeout;
        if let Err(status) = writer.call::<PutResponse>(PUT, &put(key, value.clone())).await {
            errors += 1;
            first_error.get_or_insert_with(|| format!("put: {status}"));
            let _ = rounds.finish(tokio::time::Instant::now()).await;
            continue;
        }
        let received = rounds.finish(give_up).await;
        if received < watchers {
            errors += (watchers - received) as u64;
            first_error.get_or_insert_with(|| {
                format!("put {seq}: {} of {watchers} watchers got no event in time", watchers - received)
            });
        }
    }
    let elapsed = start.elapsed();
    for task in tasks {
        task.abort();
    }
    let mut latencies = rounds.take_latencies();
    Ok(Report {
        ok: latencies.len() as u64,
        errors,
        cas_failures: 0,
        first_error,
        elapsed,
        latency: Summary::of(&mut latencies),
    })
}

/// Parses the flags, runs the workload, prints the report.
fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.endpoints.is_empty() || args.clients == 0 {
        eprintln!("etcdlite-load: need at least one endpoint and one client");
        return std::process::ExitCode::FAILURE;
    }
    // The tool logs nothing. With no subscriber at all, tracing's `log` fallback (a feature
    // a dependency turns on) still does work for every trace span of the HTTP/2 stack,
    // about 18 % of the tool's instructions per request; a subscriber that wants nothing
    // makes those spans free.
    let _ = tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default());
    let mut runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut runtime = tokio::runtime::Builder::new_multi_thread();
        runtime.worker_threads(args.threads);
        runtime
    };
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("etcdlite-load: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match args.workload {
            Workload::Watch => run_watch(&args).await,
            _ => run_unary(&args).await,
        }
    });
    match result {
        Ok(report) => {
            let line = human_line(&args, &report);
            if args.json {
                eprintln!("{line}");
                println!("{}", json_report(&args, &report));
            } else {
                println!("{line}");
            }
            if report.ok == 0 {
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("etcdlite-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn percentile_of_one_to_a_hundred_is_the_rank() {
        let samples = millis(1..=100);
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 90.0), Duration::from_millis(90));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&samples, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&samples, 0.0), Duration::from_millis(1));
    }

    #[test]
    fn percentile_uses_nearest_rank_without_rounding_errors() {
        // Exact ranks, including ones that p / 100 * n gets wrong by a hair (p7 of 100).
        for n in [100u64, 1_000, 10_000, 1_000_000] {
            let samples = millis(1..=n);
            for p in [7u64, 50, 90, 99] {
                assert_eq!(percentile(&samples, p as f64), Duration::from_millis(p * n / 100), "p{p} of {n}");
            }
        }
        // Between ranks, the next sample up.
        let samples = millis([10, 20, 30]);
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(20));
        assert_eq!(percentile(&samples, 34.0), Duration::from_millis(20));
        assert_eq!(percentile(&samples, 33.0), Duration::from_millis(10));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(30));
    }

    #[test]
    fn percentile_of_one_or_no_sample() {
        let one = millis([7]);
        for p in [0.0, 50.0, 99.0, 100.0] {
            assert_eq!(percentile(&one, p), Duration::from_millis(7));
        }
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn summary_sorts_and_reports_every_statistic() {
        let mut samples = millis((1..=1000).rev());
        let s = Summary::of(&mut samples);
        assert_eq!(s.count, 1000);
        assert_eq!(s.min, Duration::from_millis(1));
        assert_eq!(s.p50, Duration::from_millis(500));
        assert_eq!(s.p90, Duration::from_millis(900));
        assert_eq!(s.p99, Duration::from_millis(990));
        assert_eq!(s.max, Duration::from_millis(1000));
        assert_eq!(s.mean, Duration::from_micros(500_500));
        assert_eq!(Summary::of(&mut []), Summary::default());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn keys_are_zero_padded_and_values_random() {
        assert_eq!(key_bytes(42, 8), b"00000042");
        assert_eq!(key_bytes(123_456_789, 4), b"123456789");
        let mut rng = Rng(1);
        let (a, b) = (rng.bytes(16), rng.bytes(16));
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }

    #[test]
    fn endpoints_get_a_scheme() {
        assert_eq!(endpoint_url("127.0.0.1:2379"), "http://127.0.0.1:2379");
        assert_eq!(endpoint_url("http://127.0.0.1:2379"), "http://127.0.0.1:2379");
    }

    #[test]
    fn throughput_is_ok_requests_per_second() {
        let report = Report {
            ok: 500,
            errors: 3,
            cas_failures: 0,
            first_error: None,
            elapsed: Duration::from_millis(250),
            latency: Summary::default(),
        };
        assert!((report.throughput() - 2000.0).abs() < 1e-9);
    }

    #[test]
    fn conns_default_to_one_per_client_or_watcher() {
        let args = Args::parse_from(["etcdlite-load", "put", "--clients", "16"]);
        assert_eq!(args.conn_count(), 16);
        assert_eq!(args.total(), DEFAULT_TOTAL);
        let args = Args::parse_from(["etcdlite-load", "watch", "--watchers", "100", "--duration", "5s"]);
        assert_eq!(args.conn_count(), 100);
        assert_eq!(args.total(), u64::MAX);
        let args = Args::parse_from(["etcdlite-load", "get", "--clients", "16", "--conns", "4"]);
        assert_eq!(args.conn_count(), 4);
    }

    #[test]
    fn watch_conns_default_to_at_most_a_thousand() {
        let args = Args::parse_from(["etcdlite-load", "watch", "--watchers", "10000", "--prefix"]);
        assert_eq!(args.conn_count(), MAX_DEFAULT_WATCH_CONNS);
        assert!(args.prefix);
        assert_eq!(args.watch_client, WatchClientKind::H2);
    }

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"load/"), b"load0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn grpc_message_frames_one_uncompressed_message() {
        let message = grpc_message(&PutRequest { key: b"k".to_vec(), ..Default::default() }).unwrap();
        assert_eq!(&message[..5], &[0, 0, 0, 0, 3]);
        assert_eq!(&message[5..], b"\x0a\x01k");
    }
}
