//! `etcdlite-conformance`: runs the scenarios of `tests/conformance/` against a real etcd
//! and against etcdlite, through the same gRPC client (and the same HTTP client for the
//! JSON gateway), and reports where they differ.
//!
//! Each scenario gets a fresh etcd (`--etcd`, a binary, on a fresh data directory) and a
//! fresh etcdlite (`--etcdlite`, a binary, memory engine), both on loopback ports. A step
//! is one unary call (or a stream step, below), its request written in proto3 JSON;
//! the two answers (the response as proto3 JSON, or the error's gRPC code and message) are
//! normalised (see [`normalise`]) and must be equal. A scenario file is JSON:
//!
//! ```json
//! {"area": "range", "scenarios": [
//!   {"name": "limit cuts kvs but not count",
//!    "steps": [
//!      {"call": "Put", "req": {"key": "s:a", "value": "s:1"}},
//!      {"call": "Range", "req": {"key": "s:a", "range_end": "s:z", "limit": 1}}]}]}
//! ```
//!
//! The calls: KV (`Range`, `Put`, `DeleteRange`, `Txn`, `Compact`), Lease (`LeaseGrant`,
//! `LeaseRevoke`, `LeaseTimeToLive`, `LeaseLeases`), Maintenance (`Status`, `Alarm`,
//! `Defragment`, `Hash`, `HashKV`, `Snapshot`, `MoveLeader`, `Downgrade`), Cluster (`MemberList`, `MemberAdd`,
//! `MemberRemove`, `MemberUpdate`, `MemberPromote`), Auth
//! (`AuthEnable`, `AuthDisable`, `AuthStatus`, `Authenticate`, `UserAdd`, `UserGet`,
//! `UserList`, `UserDelete`, `UserChangePassword`, `UserGrantRole`, `UserRevokeRole`,
//! `RoleAdd`, `RoleGet`, `RoleList`, `RoleDelete`, `RoleGrantPermission`,
//! `RoleRevokePermission`), Lock (`Lock`, `Unlock`) and Election (`Campaign`, `Proclaim`,
//! `Leader`, `Resign`). `Snapshot` reads the whole stream and answers its first and last
//! chunks (each whole, its `blob` kept only as its length on the last, the SHA-256, and as
//! present on the first, whose size and bytes are the engine's; `remaining_bytes` kept as
//! present or absent) and how many there were only as `"chunks": "one"` or `"many"`, or
//! the error.
//!
//! Streams are steps too: `{"call": "Watch", "stream": "w", "req": <WatchRequest>}` sends a
//! request on watch stream `w` (opened by its first step), and `{"call": "WatchRecv",
//! "stream": "w", "count": 2}` compares the next two responses (a response that does not
//! come within 3 s is `{"timeout": true}`). `LeaseKeepAlive` and `LeaseKeepAliveRecv` do the
//! same on a keep-alive stream. `Observe` opens an Election Observe stream (a server
//! stream: its request is the one it opens with) and `ObserveRecv` compares its next
//! `count` responses. A `Status` answer keeps the version, database sizes, leader
//! and raft indexes only as present or absent; a `Hash` answer keeps its hash only as
//! present (etcd hashes its whole database file); a member in a Cluster call's answer keeps
//! its id and client URLs only as present (an added member's id hashes the second it was
//! added; client ports differ), its name and peer URLs as they are.
//!
//! Both servers start as member `conformance` advertising the same peer URL
//! ([`PEER_URL`]; nothing listens there, etcd's peer listener is on a free port), so both
//! derive the same member and cluster ids, and headers are compared with them.
//!
//! Credentials: `{"call": "Authenticate", "req": {"name": "alice", "password": "p"},
//! "save_token": "alice"}` keeps the token the server answered under the name `alice`, and
//! any later step with `"token": "alice"` sends it as gRPC metadata `token` (a stream step
//! sends it when it opens the stream: give it on the stream's first step). `"raw_token":
//! "garbage"` sends that text as the token instead. Tokens differ between servers: an
//! Authenticate answer's token is compared only by its form, `"<simple>"` for etcd's simple
//! token (16 ASCII letters, a dot, a decimal index), `"<other>"` for any other.
//!
//! A string written `s:text` is the bytes of `text` (the runner base64-encodes it, as
//! proto3 JSON wants bytes), `n:N` is N bytes of `x`, `x:hex` the bytes written in hex;
//! `$L1`, `$L2`... stand for the first, second... lease id a server granted in the scenario;
//! `$M1`, `$M2`... for the first, second... member a server added, `$ME` for the member
//! answering;
//! `repeat:N:text` is the string `text` N times (for a long `string` field).
//! A request JSON cannot hold a `string` field that is not UTF-8: a step with `"wire":
//! [[1, "x:ff"], [2, "s:pw"]]` instead of `req` sends a request made of exactly those
//! length-delimited fields (field number, bytes), and its answer is the response decoded
//! as its type or, where that fails (a `string` that is not UTF-8), field by field
//! (`{"fields": {"2": ["x:ff"]}}`, the header left out).
//!
//! `{"call": "Pause", "req": {"ms": 300}}` waits that long on each server: etcd's raft drops
//! a membership change proposed before it has taken the previous one in (the call then never
//! answers), so a scenario pauses between two.
//!
//! The JSON gateway: a step `{"call": "HTTP", "path": "/v3/kv/put", "req": {...}}` POSTs the
//! request (its JSON, strings prepared as above) over HTTP/1.1 on the client port; `"body":
//! "{\"key\":"` sends that text instead, exactly (with `$Ln` replaced), for bodies that are
//! not JSON or whose field order matters; `"method"` (POST by default) and `"headers"`
//! (`{"Origin": "http://a:80"}`; a `token` goes as `Authorization`) complete the request.
//! Its answer is `{"status": 400, "headers": {...}, "body": ...}`: the headers that carry
//! behaviour (`content-type`, `grpc-metadata-content-type`, the `access-control-allow-*`
//! ones, `x-content-type-options`, `www-authenticate`, `allow`, `location`, `trailer`,
//! `transfer-encoding`), the body as JSON when it is JSON and as text otherwise, and the
//! trailers of a chunked body. With a `stream` name the answer stays
//! open and its first `count` lines are compared instead of a body (`"lines": [...]`); an
//! `HTTPRecv` step on that stream compares its next `count` lines. An `/v3/auth/authenticate`
//! answer's token is kept by `save_token` and compared by form, as for `Authenticate`.
//! A scenario's `"flags": ["--cors", "http://a:80"]` starts both servers with those flags.
//!
//! A scenario with `"differs": "why"` is expected to differ from etcdlite (the reason is
//! listed in `docs/limitations.md`): it is reported, not failed. `"etcd34": "how"` says how
//! etcd 3.4 answers otherwise than 3.5: against an etcd 3.4 (the runner asks the binary's
//! `--version`) a difference in that scenario is reported as known too. `"note"`, on a
//! scenario or a step, is a comment.
//!
//! ```text
//! etcdlite-conformance --etcd /usr/bin/etcd --etcdlite target/debug/etcdlite \
//!     --scenarios tests/conformance --report docs/conformance.md
//! ```
//!
//! Reference-only: `--reference-only` runs every scenario on two fresh servers of the same
//! `--etcd` (no etcdlite needed), compares the two runs (a scenario that passes is
//! deterministic) and prints every step's normalised answer on stdout; `--against-etcd
//! OTHER` compares `--etcd` with another etcd binary the same way (3.5 against 3.4, say);
//! `--print` prints the answers in any mode.
//!
//! The exit status is non-zero when a scenario not marked as known differs, or when one
//! could not run to its end (reported as a FAIL with the reason).

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::Parser;
use etcdlite_server::pb::etcdserverpb as pb;
use etcdlite_server::pb::etcdserverpb::auth_client::AuthClient;
use etcdlite_server::pb::etcdserverpb::cluster_client::ClusterClient;
use etcdlite_server::pb::etcdserverpb::kv_client::KvClient;
use etcdlite_server::pb::etcdserverpb::lease_client::LeaseClient;
use etcdlite_server::pb::etcdserverpb::maintenance_client::MaintenanceClient;
use etcdlite_server::pb::etcdserverpb::watch_client::WatchClient;
use etcdlite_server::pb::v3electionpb as election;
use etcdlite_server::pb::v3electionpb::election_client::ElectionClient;
use etcdlite_server::pb::v3lockpb as lock;
use etcdlite_server::pb::v3lockpb::lock_client::LockClient;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tonic::transport::Channel;

mod http_client;

type BoxError = Box<dyn Error + Send + Sync>;

#[derive(Parser)]
#[command(about = "Runs the conformance scenarios against etcd and etcdlite and compares them")]
struct Args {
    /// The etcd binary.
    #[arg(long)]
    etcd: PathBuf,
    /// The etcdlite binary (not needed with --reference-only or --against-etcd).
    #[arg(long, required_unless_present_any = ["reference_only", "against_etcd"])]
    etcdlite: Option<PathBuf>,
    /// Compare two fresh servers of --etcd (no etcdlite), and print every answer: proves
    /// that scenarios are deterministic and shows what etcd answers.
    #[arg(long, conflicts_with = "against_etcd")]
    reference_only: bool,
    /// Compare --etcd with this other etcd binary instead of etcdlite.
    #[arg(long)]
    against_etcd: Option<PathBuf>,
    /// Print every step's normalised answer (of --etcd) on stdout.
    #[arg(long)]
    print: bool,
    /// The folder of scenario files (`*.json`).
    #[arg(long, default_value = "tests/conformance")]
    scenarios: PathBuf,
    /// Only the scenario files whose name contains this (`auth` for `auth*.json`).
    #[arg(long)]
    files: Option<String>,
    /// Where to write the Markdown report.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Only scenarios whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// How the report names the etcd it ran against (default: `etcd <its version>`).
    #[arg(long)]
    label: Option<String>,
}

#[derive(Deserialize)]
struct File {
    area: String,
    scenarios: Vec<Scenario>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    name: String,
    steps: Vec<Step>,
    /// Why etcdlite differs here on purpose.
    #[serde(default)]
    differs: Option<String>,
    /// How etcd 3.4 answers otherwise than etcd 3.5.
    #[serde(default)]
    etcd34: Option<String>,
    /// Flags both servers start with (`--cors`, ...).
    #[serde(default)]
    flags: Vec<String>,
    /// A comment.
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    call: String,
    #[serde(default)]
    req: Value,
    /// For stream steps: which stream (opened by its first step).
    #[serde(default)]
    stream: String,
    /// For `WatchRecv` and `LeaseKeepAliveRecv`: how many responses to take.
    #[serde(default = "one")]
    count: usize,
    /// For `Authenticate`: the name to keep the answered token under.
    #[serde(default)]
    save_token: Option<String>,
    /// The saved token to send with the call (or with the stream's opening).
    #[serde(default)]
    token: Option<String>,
    /// A literal token to send instead.
    #[serde(default)]
    raw_token: Option<String>,
    /// The request as length-delimited fields (number, bytes) instead of `req`.
    #[serde(default)]
    wire: Option<Vec<(u32, String)>>,
    /// For `HTTP`: the path.
    #[serde(default)]
    path: String,
    /// For `HTTP`: the method (POST).
    #[serde(default)]
    method: Option<String>,
    /// For `HTTP`: the body, as is, instead of `req`.
    #[serde(default)]
    body: Option<String>,
    /// For `HTTP`: request headers.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// A comment.
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

fn one() -> usize {
    1
}

/// A bidirectional stream a scenario opened: where to send requests, and the responses.
enum Stream {
    Watch(mpsc::Sender<pb::WatchRequest>, tonic::Streaming<pb::WatchResponse>),
    KeepAlive(mpsc::Sender<pb::LeaseKeepAliveRequest>, tonic::Streaming<pb::LeaseKeepAliveResponse>),
    /// An Election Observe stream: its responses, or the error that refused it, as a task
    /// forwards them (etcd sends the stream's headers only with its first response, which
    /// may never come, so the call is not awaited by the step that opens it).
    Observe(Forwarded<election::LeaderResponse>),
    /// A stream the server refused when it opened, with the error its first receive gets
    /// (a Go client sees the error there; tonic's call waits for the response headers).
    Refused(Option<tonic::Status>),
    /// A gateway answer left open (a watch over HTTP).
    Http(http_client::Response),
}

/// A server stream's responses as a task receives them; the task ends with the scenario.
struct Forwarded<T> {
    responses: mpsc::Receiver<Result<T, tonic::Status>>,
    task: tokio::task::JoinHandle<()>,
}

impl<T> Drop for Forwarded<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T: Send + 'static> Forwarded<T> {
    /// Awaits `call` and then each response of the stream it opens in a task of its own.
    fn spawn<F>(call: F) -> Forwarded<T>
    where
        F: std::future::Future<Output = Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>>
            + Send
            + 'static,
    {
        let (send, responses) = mpsc::channel(16);
        let task = tokio::spawn(async move {
            let mut stream = match call.await {
                Ok(stream) => stream.into_inner(),
                Err(status) => {
                    let _ = send.send(Err(status)).await;
                    return;
                }
            };
            loop {
                let next = stream.message().await;
                let item = match next {
                    Ok(Some(response)) => Ok(response),
                    Ok(None) => return,
                    Err(status) => Err(status),
                };
                if send.send(item).await.is_err() {
                    return;
                }
            }
        });
        Forwarded { responses, task }
    }

    /// The next `count` responses, as answers.
    async fn received(&mut self, count: usize) -> Result<Value, BoxError>
    where
        T: serde::Serialize,
    {
        let mut got = Vec::new();
        for _ in 0..count {
            match tokio::time::timeout(STREAM_WAIT, self.responses.recv()).await {
                Ok(Some(Ok(resp))) => got.push(to_json(resp)?),
                Ok(Some(Err(status))) => got.push(error_answer(&status)),
                Ok(None) => got.push(json!({"ended": true})),
                Err(_) => got.push(json!({"timeout": true})),
            }
        }
        Ok(Value::Array(got))
    }
}

/// The streams a scenario opened on one server, by name.
type Streams = HashMap<String, Stream>;

/// What one server's run of a scenario keeps between steps.
#[derive(Default)]
struct Session {
    /// Lease ids in the order the server first answered them (`$L1`...).
    leases: Vec<i64>,
    streams: Streams,
    /// Tokens saved by `Authenticate` steps, by name.
    tokens: HashMap<String, String>,
    /// The ids of the members the server added, in order (`$M1`...).
    members: Vec<u64>,
    /// The id of the member answering (`$ME`).
    me: u64,
}

/// How long one scenario may take, servers' start included.
const SCENARIO_LIMIT: Duration = Duration::from_secs(120);

/// How long a receiving step waits for each response; none in time is an answer too.
const STREAM_WAIT: Duration = Duration::from_secs(3);

/// What a step sends besides its request: its token.
struct Meta {
    token: Option<String>,
}

/// `message` as a request carrying the step's token (as etcd's clients send it: metadata
/// `token`).
fn with_meta<T>(message: T, meta: &Meta) -> Result<tonic::Request<T>, BoxError> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = &meta.token {
        request.metadata_mut().insert("token", token.parse()?);
    }
    Ok(request)
}

/// A stream step. `Watch` and `LeaseKeepAlive` send `req` on the named stream (opening it
/// with their first request, with `token` if given), answering nothing; `Observe` opens an
/// Observe stream with `req`; `WatchRecv`, `LeaseKeepAliveRecv` and `ObserveRecv` answer
/// the stream's next `count` responses, `{"timeout": true}` where one does not come within
/// 3 s.
async fn stream_step(
    channel: &Channel,
    streams: &mut Streams,
    step: &Step,
    req: Value,
    meta: &Meta,
) -> Result<Value, BoxError> {
    match (step.call.as_str(), streams.get_mut(&step.stream)) {
        ("Watch", Some(Stream::Watch(send, _))) => send.send(from_json(req)?).await?,
        ("LeaseKeepAlive", Some(Stream::KeepAlive(send, _))) => send.send(from_json(req)?).await?,
        // The first request goes before the call is awaited: etcd's server sends the
        // stream's headers only with its first response.
        ("Watch", None) => {
            let (send, outgoing) = opened(from_json(req)?).await?;
            let stream = match WatchClient::new(channel.clone()).watch(with_meta(outgoing, meta)?).await {
                Ok(responses) => Stream::Watch(send, responses.into_inner()),
                Err(status) => Stream::Refused(Some(status)),
            };
            streams.insert(step.stream.clone(), stream);
        }
        ("LeaseKeepAlive", None) => {
            let (send, outgoing) = opened(from_json(req)?).await?;
            let stream =
                match LeaseClient::new(channel.clone()).lease_keep_alive(with_meta(outgoing, meta)?).await {
                    Ok(responses) => Stream::KeepAlive(send, responses.into_inner()),
                    Err(status) => Stream::Refused(Some(status)),
                };
            streams.insert(step.stream.clone(), stream);
        }
        ("Observe", None) => {
            let request = with_meta(from_json::<election::LeaderRequest>(req)?, meta)?;
            let mut client = ElectionClient::new(channel.clone());
            let observed = Forwarded::spawn(async move { client.observe(request).await });
            streams.insert(step.stream.clone(), Stream::Observe(observed));
        }
        ("WatchRecv", Some(Stream::Watch(_, responses))) => return received(responses, step.count).await,
        ("ObserveRecv", Some(Stream::Observe(observed))) => return observed.received(step.count).await,
        ("LeaseKeepAliveRecv", Some(Stream::KeepAlive(_, responses))) => {
            return received(responses, step.count).await
        }
        ("Watch" | "LeaseKeepAlive", Some(Stream::Refused(_))) => {}
        ("WatchRecv" | "LeaseKeepAliveRecv", Some(Stream::Refused(error))) => {
            let answers = (0..step.count).map(|_| match error.take() {
                Some(status) => error_answer(&status),
                None => json!({"ended": true}),
            });
            return Ok(Value::Array(answers.collect()));
        }
        (call, _) => return Err(format!("{call} does not fit stream {:?}", step.stream).into()),
    }
    Ok(json!({"sent": true}))
}

/// A channel for a stream's requests, `first` already in it.
async fn opened<T: Send + 'static>(
    first: T,
) -> Result<(mpsc::Sender<T>, tokio_stream::wrappers::ReceiverStream<T>), BoxError> {
    let (send, outgoing) = mpsc::channel(16);
    send.send(first).await.map_err(|_| "stream closed")?;
    Ok((send, tokio_stream::wrappers::ReceiverStream::new(outgoing)))
}

/// The next `count` responses of a stream, as answers.
async fn received<T: serde::Serialize>(
    responses: &mut tonic::Streaming<T>,
    count: usize,
) -> Result<Value, BoxError> {
    let mut got = Vec::new();
    for _ in 0..count {
        match tokio::time::timeout(STREAM_WAIT, responses.message()).await {
            Ok(Ok(Some(resp))) => got.push(to_json(resp)?),
            Ok(Ok(None)) => got.push(json!({"ended": true})),
            Ok(Err(status)) => got.push(error_answer(&status)),
            Err(_) => got.push(json!({"timeout": true})),
        }
    }
    Ok(Value::Array(got))
}

fn error_answer(status: &tonic::Status) -> Value {
    json!({"error": {"code": status.code() as i32, "message": status.message()}})
}

/// The two sides a scenario compares: `--etcd` and etcdlite, or another etcd.
#[derive(Clone)]
enum Side {
    Etcd(PathBuf),
    Lite(PathBuf),
}

impl Side {
    fn start(&self, flags: &[String]) -> Result<Server, BoxError> {
        match self {
            Side::Etcd(binary) => Server::etcd(binary, flags),
            Side::Lite(binary) => Server::etcdlite(binary, flags),
        }
    }

    /// A fresh server started with `flags` and a channel to it; started again on new ports
    /// if it does not come up (at most three times).
    async fn started(&self, flags: &[String]) -> Result<(Server, Channel), BoxError> {
        let mut attempt = 1;
        loop {
            let mut server = self.start(flags)?;
            match server.connect().await {
                Ok(channel) => return Ok((server, channel)),
                Err(error) if attempt == 3 => return Err(error),
                Err(_) => attempt += 1,
            }
        }
    }
}

/// An etcd binary's version (`3.5.1`), from `--version`; empty if it does not say.
fn etcd_version(binary: &Path) -> String {
    let out = Command::new(binary).arg("--version").output().map(|o| o.stdout).unwrap_or_default();
    String::from_utf8_lossy(&out)
        .lines()
        .find_map(|l| l.strip_prefix("etcd Version: ").map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

/// One scenario's outcome.
struct Outcome {
    area: String,
    name: String,
    failure: Option<Failure>,
    /// Why a difference is expected here, if it is.
    known: Option<String>,
}

impl Outcome {
    /// A failure the scenario does not expect: any error, or a difference not known.
    fn unexpected(&self) -> bool {
        matches!((&self.failure, &self.known), (Some(Failure::Error(_)), _) | (Some(_), None))
    }
}

/// Why a scenario did not pass.
enum Failure {
    /// The servers answered differently.
    Differs(Difference),
    /// The scenario could not run to its end (a server did not start, a bad step...).
    Error(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Differs(difference) => difference.fmt(f),
            Failure::Error(error) => write!(f, "could not run: {error}"),
        }
    }
}

/// Where a scenario's answers first differ: the step (from 1) and its call, the field's path
/// in the normalised answer, and each server's value there (`null` where it has none).
struct Difference {
    step: usize,
    call: String,
    path: String,
    etcd: Value,
    lite: Value,
    /// How the report names the two servers.
    labels: [String; 2],
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() { "the answer" } else { &self.path };
        write!(
            f,
            "step {} ({}), {path}: {} `{}`, {} `{}`",
            self.step,
            self.call,
            self.labels[0],
            shortened(&self.etcd),
            self.labels[1],
            shortened(&self.lite)
        )
    }
}

/// A value as JSON, cut after 120 characters.
fn shortened(value: &Value) -> String {
    clipped(value, 120)
}

/// A value as JSON, cut after `limit` characters.
fn clipped(value: &Value, limit: usize) -> String {
    let text = value.to_string();
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}... ({} characters)", &text[..cut], text.chars().count()),
        None => text,
    }
}

/// The first field (in key order, depth first) where two answers differ: its path, like
/// `[1].events[0].kv.value`, and the two values there.
fn first_difference(etcd: &Value, lite: &Value, path: &str) -> Option<(String, Value, Value)> {
    let null = Value::Null;
    match (etcd, lite) {
        (Value::Object(a), Value::Object(b)) => {
            let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            names.into_iter().find_map(|name| {
                let inner = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                first_difference(a.get(name).unwrap_or(&null), b.get(name).unwrap_or(&null), &inner)
            })
        }
        (Value::Array(a), Value::Array(b)) => (0..a.len().max(b.len())).find_map(|i| {
            first_difference(a.get(i).unwrap_or(&null), b.get(i).unwrap_or(&null), &format!("{path}[{i}]"))
        }),
        _ if etcd == lite => None,
        _ => Some((path.to_string(), etcd.clone(), lite.clone())),
    }
}

/// A server process on a loopback port, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    /// etcd's data directory, removed when the server goes.
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, BoxError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The peer URL both servers advertise, so that both derive the same ids. Nothing serves
/// it: etcd listens for peers on a free port, and a single member never dials itself.
const PEER_URL: &str = "http://127.0.0.1:2380";

/// The flags that make a server member `conformance` advertising [`PEER_URL`].
fn member_flags() -> [String; 6] {
    [
        "--name".into(),
        "conformance".into(),
        "--initial-advertise-peer-urls".into(),
        PEER_URL.into(),
        "--initial-cluster".into(),
        format!("conformance={PEER_URL}"),
    ]
}

impl Server {
    fn etcd(binary: &Path, flags: &[String]) -> Result<Server, BoxError> {
        let dir = tempfile::tempdir()?;
        let (port, peer) = (free_port()?, free_port()?);
        let client = format!("http://127.0.0.1:{port}");
        let listen_peer = format!("http://127.0.0.1:{peer}");
        let child = Command::new(binary)
            .args(member_flags())
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &listen_peer])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Server { child, port, _dir: Some(dir) })
    }

    fn etcdlite(binary: &Path, flags: &[String]) -> Result<Server, BoxError> {
        let port = free_port()?;
        let child = Command::new(binary)
            .args(member_flags())
            .args(["--listen-client-urls", &format!("http://127.0.0.1:{port}")])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Server { child, port, _dir: None })
    }

    /// A channel once the server answers Status (at most 30 s); an error at once if the
    /// server exited (a port another process took between `free_port` and its bind, say).
    async fn connect(&mut self) -> Result<Channel, BoxError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("the server on port {} exited ({status})", self.port).into());
            }
            let endpoint =
                tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", self.port))?;
            if let Ok(channel) = endpoint.connect().await {
                let mut m = MaintenanceClient::new(channel.clone());
                if m.status(pb::StatusRequest {}).await.is_ok() {
                    return Ok(channel);
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no server on port {} after 30 s", self.port).into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The bytes a step's string stands for: `s:text`, `n:N` (N bytes of `x`), `x:hex`.
fn step_bytes(s: &str) -> Option<Vec<u8>> {
    if let Some(text) = s.strip_prefix("s:") {
        Some(text.as_bytes().to_vec())
    } else if let Some(len) = s.strip_prefix("n:") {
        Some(vec![b'x'; len.parse().unwrap_or(0)])
    } else if let Some(hex) = s.strip_prefix("x:") {
        (0..hex.len())
            .step_by(2)
            .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
            .collect()
    } else {
        None
    }
}

/// The ids a step's request may name: `$Ln` leases, `$Mn` added members, `$ME` the member.
#[derive(Clone, Copy)]
struct Ids<'a> {
    leases: &'a [i64],
    members: &'a [u64],
    me: u64,
}

impl Ids<'_> {
    fn of(session: &Session) -> Ids<'_> {
        Ids { leases: &session.leases, members: &session.members, me: session.me }
    }

    /// The id `name` stands for (0 for one not granted or added), if it names one.
    fn resolve(&self, name: &str) -> Option<String> {
        fn nth<T: Copy + Default + ToString>(list: &[T], n: &str) -> String {
            let n: usize = n.parse().unwrap_or(0);
            list.get(n.wrapping_sub(1)).copied().unwrap_or_default().to_string()
        }
        if name == "$ME" {
            Some(self.me.to_string())
        } else if let Some(n) = name.strip_prefix("$M") {
            Some(nth(self.members, n))
        } else {
            name.strip_prefix("$L").map(|n| nth(self.leases, n))
        }
    }
}

/// One step's request with `s:`, `n:` and `x:` strings encoded, `repeat:N:text` strings
/// repeated and `$Ln`, `$Mn` and `$ME` ids resolved.
fn prepare(value: &Value, ids: Ids) -> Value {
    match value {
        Value::String(s) if s.starts_with('$') && ids.resolve(s).is_some() => {
            Value::String(ids.resolve(s).expect("checked"))
        }
        Value::String(s) if s.starts_with("repeat:") => {
            let (count, text) = s["repeat:".len()..].split_once(':').unwrap_or(("0", ""));
            Value::String(text.repeat(count.parse().unwrap_or(0)))
        }
        Value::String(s) => match step_bytes(s) {
            Some(bytes) => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
            None => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| prepare(v, ids)).collect()),
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), prepare(v, ids))).collect())
        }
        other => other.clone(),
    }
}

/// What must differ between two servers is taken out: the raft term (in every header;
/// the member and cluster ids stay, both servers deriving them from the same flags), lease ids (as `$Ln`, in order of appearance), the
/// remaining TTL of a lease (timing), kept only as "positive" or its sign, and the order of
/// a lease's keys (etcd lists them in Go map order, which is random).
fn normalise(value: &mut Value, leases: &mut Vec<i64>) {
    match value {
        Value::Object(fields) => {
            fields.remove("raft_term");
            for (name, field) in fields.iter_mut() {
                match name.as_str() {
                    "ID" | "lease" | "id" => {
                        if let Some(id) =
                            field.as_str().and_then(|s| s.parse::<i64>().ok()).filter(|&id| id != 0)
                        {
                            let n = match leases.iter().position(|&l| l == id) {
                                Some(n) => n,
                                None => {
                                    leases.push(id);
                                    leases.len() - 1
                                }
                            };
                            *field = Value::String(format!("$L{}", n + 1));
                        }
                    }
                    "keys" => {
                        if let Value::Array(keys) = field {
                            keys.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                        }
                    }
                    "TTL" => {
                        if let Some(ttl) = field.as_str().and_then(|s| s.parse::<i64>().ok()) {
                            *field = Value::String(if ttl > 0 { "positive".into() } else { ttl.to_string() });
                        }
                    }
                    _ => normalise(field, leases),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| normalise(v, leases)),
        _ => {}
    }
}

/// Each of `names` in an answer's top level kept only as present (where it is).
fn present(answer: &mut Value, names: &[&str]) {
    if let Value::Object(fields) = answer {
        for name in names {
            if let Some(field) = fields.get_mut(*name) {
                *field = Value::String("present".into());
            }
        }
    }
}

/// A Status answer without what describes the member rather than the store: the server's
/// version, the database's sizes (each engine's own), the leader's id and the raft indexes
/// (etcd counts raft entries). Each is kept only as present or absent.
fn status_normalised(status: &mut Value) {
    present(status, &["version", "dbSize", "dbSizeInUse", "leader", "raftIndex", "raftAppliedIndex"]);
}

/// A Cluster call's answer without what differs between the servers: each member's id
/// (an added member's hashes the second of the add) and client URLs (the servers' ports)
/// kept only as present, and the members in the order of what is left (etcd lists them by
/// id).
fn members_normalised(answer: &mut Value) {
    let Value::Object(fields) = answer else { return };
    if let Some(member) = fields.get_mut("member") {
        present(member, &["ID", "clientURLs"]);
    }
    if let Some(Value::Array(members)) = fields.get_mut("members") {
        for member in members.iter_mut() {
            present(member, &["ID", "clientURLs"]);
        }
        members.sort_by_key(|member| member.to_string());
    }
}

/// The id of the member a MemberAdd answer added.
fn added_member(answer: &Value) -> Option<u64> {
    answer.get("member")?.get("ID")?.as_str()?.parse().ok()
}

/// The form of a token, never its text: `<simple>` for etcd's simple token (16 ASCII
/// letters, a dot, a decimal raft index), `<other>` for any other.
fn token_form(token: &str) -> &'static str {
    let simple = token.split_once('.').is_some_and(|(prefix, index)| {
        prefix.len() == 16
            && prefix.bytes().all(|b| b.is_ascii_alphabetic())
            && !index.is_empty()
            && index.bytes().all(|b| b.is_ascii_digit())
    });
    if simple {
        "<simple>"
    } else {
        "<other>"
    }
}

fn to_json<T: serde::Serialize>(message: T) -> Result<Value, BoxError> {
    Ok(serde_json::to_value(message)?)
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, BoxError> {
    Ok(serde_json::from_value(value)?)
}

/// A unary call of `$client.$method` with the step's JSON request as `$req` and its token.
macro_rules! unary {
    ($client:expr, $method:ident, $req:ty, $json:expr, $token:expr) => {
        $client.$method(with_meta(from_json::<$req>($json)?, $token)?).await.map(|r| to_json(r.into_inner()))
    };
}

/// Runs one call; an error status is an answer too.
async fn call(channel: &Channel, name: &str, req: Value, meta: &Meta) -> Result<Value, BoxError> {
    let (mut kv, mut lease, mut maintenance, mut elections) = (
        KvClient::new(channel.clone()),
        LeaseClient::new(channel.clone()),
        MaintenanceClient::new(channel.clone()),
        ElectionClient::new(channel.clone()),
    );
    let (mut auth, mut cluster) = (AuthClient::new(channel.clone()), ClusterClient::new(channel.clone()));
    let mut locks = LockClient::new(channel.clone());
    let t = meta;
    let result = match name {
        "Range" => unary!(kv, range, pb::RangeRequest, req, t),
        "Put" => unary!(kv, put, pb::PutRequest, req, t),
        "DeleteRange" => unary!(kv, delete_range, pb::DeleteRangeRequest, req, t),
        "Txn" => unary!(kv, txn, pb::TxnRequest, req, t),
        "Compact" => unary!(kv, compact, pb::CompactionRequest, req, t),
        "LeaseGrant" => unary!(lease, lease_grant, pb::LeaseGrantRequest, req, t),
        "LeaseRevoke" => unary!(lease, lease_revoke, pb::LeaseRevokeRequest, req, t),
        "LeaseTimeToLive" => unary!(lease, lease_time_to_live, pb::LeaseTimeToLiveRequest, req, t),
        "LeaseLeases" => unary!(lease, lease_leases, pb::LeaseLeasesRequest, req, t),
        "HashKV" => unary!(maintenance, hash_kv, pb::HashKvRequest, req, t),
        "Hash" => unary!(maintenance, hash, pb::HashRequest, req, t).map(|answer| {
            let mut answer = answer?;
            present(&mut answer, &["hash"]);
            Ok(answer)
        }),
        "Alarm" => unary!(maintenance, alarm, pb::AlarmRequest, req, t),
        "Defragment" => unary!(maintenance, defragment, pb::DefragmentRequest, req, t),
        "Status" => unary!(maintenance, status, pb::StatusRequest, req, t).map(|status| {
            let mut status = status?;
            status_normalised(&mut status);
            Ok(status)
        }),
        "Snapshot" => return snapshot(&mut maintenance, req, t).await,
        "MoveLeader" => unary!(maintenance, move_leader, pb::MoveLeaderRequest, req, t),
        "Downgrade" => unary!(maintenance, downgrade, pb::DowngradeRequest, req, t),
        // Their answers are normalised by `run_step`, which first notes an added member's id.
        "MemberList" => unary!(cluster, member_list, pb::MemberListRequest, req, t),
        "MemberAdd" => unary!(cluster, member_add, pb::MemberAddRequest, req, t),
        "MemberRemove" => unary!(cluster, member_remove, pb::MemberRemoveRequest, req, t),
        "MemberUpdate" => unary!(cluster, member_update, pb::MemberUpdateRequest, req, t),
        "MemberPromote" => unary!(cluster, member_promote, pb::MemberPromoteRequest, req, t),
        "AuthEnable" => unary!(auth, auth_enable, pb::AuthEnableRequest, req, t),
        "AuthDisable" => unary!(auth, auth_disable, pb::AuthDisableRequest, req, t),
        "AuthStatus" => unary!(auth, auth_status, pb::AuthStatusRequest, req, t),
        "Authenticate" => unary!(auth, authenticate, pb::AuthenticateRequest, req, t),
        "UserAdd" => unary!(auth, user_add, pb::AuthUserAddRequest, req, t),
        "UserGet" => unary!(auth, user_get, pb::AuthUserGetRequest, req, t),
        "UserList" => unary!(auth, user_list, pb::AuthUserListRequest, req, t),
        "UserDelete" => unary!(auth, user_delete, pb::AuthUserDeleteRequest, req, t),
        "UserChangePassword" => {
            unary!(auth, user_change_password, pb::AuthUserChangePasswordRequest, req, t)
        }
        "UserGrantRole" => unary!(auth, user_grant_role, pb::AuthUserGrantRoleRequest, req, t),
        "UserRevokeRole" => unary!(auth, user_revoke_role, pb::AuthUserRevokeRoleRequest, req, t),
        "RoleAdd" => unary!(auth, role_add, pb::AuthRoleAddRequest, req, t),
        "RoleGet" => unary!(auth, role_get, pb::AuthRoleGetRequest, req, t),
        "RoleList" => unary!(auth, role_list, pb::AuthRoleListRequest, req, t),
        "RoleDelete" => unary!(auth, role_delete, pb::AuthRoleDeleteRequest, req, t),
        "RoleGrantPermission" => {
            unary!(auth, role_grant_permission, pb::AuthRoleGrantPermissionRequest, req, t)
        }
        "RoleRevokePermission" => {
            unary!(auth, role_revoke_permission, pb::AuthRoleRevokePermissionRequest, req, t)
        }
        "Campaign" => unary!(elections, campaign, election::CampaignRequest, req, t),
        "Proclaim" => unary!(elections, proclaim, election::ProclaimRequest, req, t),
        "Leader" => unary!(elections, leader, election::LeaderRequest, req, t),
        "Resign" => unary!(elections, resign, election::ResignRequest, req, t),
        "Lock" => unary!(locks, lock, lock::LockRequest, req, t),
        "Unlock" => unary!(locks, unlock, lock::UnlockRequest, req, t),
        other => return Err(format!("unknown call {other:?}").into()),
    };
    match result {
        Ok(json) => json,
        Err(status) => Ok(error_answer(&status)),
    }
}

/// Reads a whole snapshot stream: its first and last chunks (see [`snapshot_chunk`]) and
/// whether there was one chunk or more, once it ends; or the error.
async fn snapshot(
    maintenance: &mut MaintenanceClient<Channel>,
    req: Value,
    meta: &Meta,
) -> Result<Value, BoxError> {
    let mut chunks =
        match maintenance.snapshot(with_meta(from_json::<pb::SnapshotRequest>(req)?, meta)?).await {
            Ok(chunks) => chunks.into_inner(),
            Err(status) => return Ok(error_answer(&status)),
        };
    let mut got: Vec<pb::SnapshotResponse> = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(30), chunks.message()).await {
            Ok(Ok(Some(chunk))) => {
                // Only the first and the last are compared: keep those two.
                if got.len() == 2 {
                    got.pop();
                }
                got.push(chunk);
            }
            Ok(Ok(None)) => break,
            Ok(Err(status)) => return Ok(error_answer(&status)),
            Err(_) => return Ok(json!({"timeout": true})),
        }
    }
    let count = if got.len() > 1 { "many" } else { "one" };
    let last = got.pop().map(|chunk| snapshot_chunk(chunk, true)).transpose()?;
    let first = got.pop().map(|chunk| snapshot_chunk(chunk, false)).transpose()?;
    Ok(json!({"chunks": count, "first": first, "last": last}))
}

/// A snapshot chunk as compared: whole, but its `blob` as its length (`"32 bytes"`) on
/// the last chunk (the SHA-256 of what came before) and as present on the others (the
/// database's bytes, each engine's own), and `remaining_bytes` kept as present.
fn snapshot_chunk(chunk: pb::SnapshotResponse, last: bool) -> Result<Value, BoxError> {
    let len = chunk.blob.len();
    let mut answer = to_json(chunk)?;
    present(&mut answer, &["remaining_bytes"]);
    if let Some(blob) = answer.get_mut("blob") {
        *blob = Value::String(if last { format!("{len} bytes") } else { "present".into() });
    }
    Ok(answer)
}

/// The gRPC path of a call a `wire` step can make.
fn wire_path(call: &str) -> Option<&'static str> {
    Some(match call {
        "Authenticate" => "/etcdserverpb.Auth/Authenticate",
        "UserAdd" => "/etcdserverpb.Auth/UserAdd",
        "UserGet" => "/etcdserverpb.Auth/UserGet",
        "UserList" => "/etcdserverpb.Auth/UserList",
        "UserDelete" => "/etcdserverpb.Auth/UserDelete",
        "UserChangePassword" => "/etcdserverpb.Auth/UserChangePassword",
        "UserGrantRole" => "/etcdserverpb.Auth/UserGrantRole",
        "UserRevokeRole" => "/etcdserverpb.Auth/UserRevokeRole",
        "RoleAdd" => "/etcdserverpb.Auth/RoleAdd",
        "RoleGet" => "/etcdserverpb.Auth/RoleGet",
        "RoleList" => "/etcdserverpb.Auth/RoleList",
        "RoleDelete" => "/etcdserverpb.Auth/RoleDelete",
        "RoleGrantPermission" => "/etcdserverpb.Auth/RoleGrantPermission",
        "RoleRevokePermission" => "/etcdserverpb.Auth/RoleRevokePermission",
        "Range" => "/etcdserverpb.KV/Range",
        "Put" => "/etcdserverpb.KV/Put",
        _ => return None,
    })
}

/// A wire answer decoded as the call's response type.
fn wire_decoded(call: &str, bytes: &[u8]) -> Result<Value, BoxError> {
    use prost::Message as _;
    fn typed<T: prost::Message + Default + serde::Serialize>(bytes: &[u8]) -> Result<Value, BoxError> {
        to_json(T::decode(bytes)?)
    }
    match call {
        "Authenticate" => typed::<pb::AuthenticateResponse>(bytes),
        "UserGet" => typed::<pb::AuthUserGetResponse>(bytes),
        "UserList" => typed::<pb::AuthUserListResponse>(bytes),
        "RoleGet" => typed::<pb::AuthRoleGetResponse>(bytes),
        "RoleList" => typed::<pb::AuthRoleListResponse>(bytes),
        "Range" => typed::<pb::RangeResponse>(bytes),
        "Put" => typed::<pb::PutResponse>(bytes),
        // The other auth responses hold only a header.
        _ => to_json(pb::AuthUserAddResponse::decode(bytes)?),
    }
}

/// A protobuf message field by field, for an answer its type cannot decode: `{"N":
/// [values]}`, a varint as its number, a length-delimited field as `s:text` if it is
/// UTF-8 and `x:hex` if not; field 1 (the header of every response) left out.
fn wire_fields(mut bytes: &[u8]) -> Value {
    use prost::encoding::{decode_key, decode_varint, WireType};
    let mut fields: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    while !bytes.is_empty() {
        let Ok((number, wire_type)) = decode_key(&mut bytes) else { break };
        let value = match wire_type {
            WireType::Varint => match decode_varint(&mut bytes) {
                Ok(v) => json!(v),
                Err(_) => break,
            },
            WireType::LengthDelimited => {
                let Ok(len) = decode_varint(&mut bytes) else { break };
                let Some((field, rest)) = bytes.split_at_checked(len as usize) else { break };
                bytes = rest;
                match std::str::from_utf8(field) {
                    Ok(text) => json!(format!("s:{text}")),
                    Err(_) => {
                        json!(format!("x:{}", field.iter().map(|b| format!("{b:02x}")).collect::<String>()))
                    }
                }
            }
            _ => json!({"unreadable": true}),
        };
        if number != 1 {
            fields.entry(number.to_string()).or_default().push(value);
        }
    }
    json!(fields)
}

/// The request of a `wire` step: each (field number, bytes) as a length-delimited field.
fn wire_request(fields: &[(u32, String)]) -> Result<Vec<u8>, BoxError> {
    use prost::encoding::{encode_key, encode_varint, WireType};
    let mut out = Vec::new();
    for (number, text) in fields {
        let bytes = step_bytes(text).unwrap_or_else(|| text.as_bytes().to_vec());
        encode_key(*number, WireType::LengthDelimited, &mut out);
        encode_varint(bytes.len() as u64, &mut out);
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

/// A codec of messages as their encoded bytes, for `wire` steps.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let len = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, len).to_vec()))
    }
}

/// Runs a `wire` step: the request as the given fields, the answer decoded as the call's
/// response type or, where that fails, field by field.
async fn wire_call(
    channel: &Channel,
    name: &str,
    fields: &[(u32, String)],
    meta: &Meta,
) -> Result<Value, BoxError> {
    let path = wire_path(name).ok_or_else(|| format!("{name} cannot be a wire step"))?;
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await?;
    let request = with_meta(wire_request(fields)?, meta)?;
    match grpc.unary(request, http::uri::PathAndQuery::from_static(path), RawCodec).await {
        Ok(response) => {
            let bytes = response.into_inner();
            Ok(wire_decoded(name, &bytes).unwrap_or_else(|_| json!({"fields": wire_fields(&bytes)})))
        }
        Err(status) => Ok(error_answer(&status)),
    }
}

/// The response headers a gateway step compares: those that carry behaviour (not the
/// date, nor the length, which follows the ids in the body).
const HTTP_HEADERS: [&str; 11] = [
    "content-type",
    "grpc-metadata-content-type",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "x-content-type-options",
    "www-authenticate",
    "allow",
    "location",
    "trailer",
    "transfer-encoding",
];

/// How long a gateway answer that is not a stream may take to end.
const HTTP_WAIT: Duration = Duration::from_secs(30);

/// A body or line of a gateway answer: its JSON, or its text when it is not JSON.
fn http_text(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// The next `count` lines of a streamed gateway answer.
async fn http_lines(response: &mut http_client::Response, count: usize) -> Value {
    let mut lines = Vec::new();
    for _ in 0..count {
        lines.push(match response.next_line(STREAM_WAIT).await {
            http_client::Line::Text(line) => http_text(&line),
            http_client::Line::Ended => json!({"ended": true}),
            http_client::Line::Timeout => json!({"timeout": true}),
        });
    }
    Value::Array(lines)
}

/// An `HTTP` step (a request to the gateway; kept open as `stream` when it names one) or an
/// `HTTPRecv` step (more lines of such a stream).
async fn http_step(
    port: u16,
    session: &mut Session,
    step: &Step,
    req: Value,
    meta: &Meta,
) -> Result<Value, BoxError> {
    if step.call == "HTTPRecv" {
        let Some(Stream::Http(response)) = session.streams.get_mut(&step.stream) else {
            return Err(format!("no HTTP stream {:?}", step.stream).into());
        };
        return Ok(json!({"lines": http_lines(response, step.count).await}));
    }
    let body = match (&step.body, &req) {
        (Some(body), _) => {
            let mut body = body.clone();
            for (n, lease) in session.leases.iter().enumerate().rev() {
                body = body.replace(&format!("$L{}", n + 1), &lease.to_string());
            }
            body.into_bytes()
        }
        (None, Value::Null) => Vec::new(),
        (None, req) => serde_json::to_vec(req)?,
    };
    let mut headers: Vec<(String, String)> = step.headers.clone().into_iter().collect();
    if let Some(token) = &meta.token {
        headers.push(("Authorization".to_owned(), token.clone()));
    }
    let method = step.method.as_deref().unwrap_or("POST");
    let request = http_client::Request { method, path: &step.path, headers: &headers, body: &body };
    let mut response = http_client::Response::send(port, &request, HTTP_WAIT).await?;
    let shown: serde_json::Map<String, Value> = HTTP_HEADERS
        .iter()
        .filter_map(|name| Some((name.to_string(), Value::String(response.header(name)?))))
        .collect();
    let mut answer = json!({"status": response.status, "headers": shown});
    if step.stream.is_empty() {
        let (body, ended) = response.rest(HTTP_WAIT).await;
        answer["body"] = if body.is_empty() { Value::String(String::new()) } else { http_text(&body) };
        if !ended {
            answer["timeout"] = json!(true);
        }
        if !response.trailers.is_empty() {
            answer["trailers"] = response.trailers.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
        }
    } else {
        answer["lines"] = http_lines(&mut response, step.count).await;
        session.streams.insert(step.stream.clone(), Stream::Http(response));
    }
    Ok(answer)
}

/// Runs one step on one server (its gRPC channel, its client port): its normalised answer.
async fn run_step(
    channel: &Channel,
    port: u16,
    session: &mut Session,
    step: &Step,
) -> Result<Value, BoxError> {
    let token = match (&step.token, &step.raw_token) {
        (Some(name), _) => {
            Some(session.tokens.get(name).ok_or_else(|| format!("no token saved as {name:?}"))?.clone())
        }
        (None, Some(raw)) => Some(raw.clone()),
        (None, None) => None,
    };
    let meta = Meta { token };
    let req = prepare(&step.req, Ids::of(session));
    let mut answer = match (step.call.as_str(), &step.wire) {
        (_, Some(fields)) => wire_call(channel, &step.call, fields, &meta).await?,
        ("HTTP" | "HTTPRecv", None) => http_step(port, session, step, req, &meta).await?,
        (
            "Watch" | "WatchRecv" | "LeaseKeepAlive" | "LeaseKeepAliveRecv" | "Observe" | "ObserveRecv",
            None,
        ) => stream_step(channel, &mut session.streams, step, req, &meta).await?,
        ("Pause", None) => {
            let ms = req.get("ms").and_then(Value::as_u64).ok_or("a Pause step needs {\"ms\": N}")?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            json!({"paused": true})
        }
        (name, None) => call(channel, name, req, &meta).await?,
    };
    if step.call.starts_with("Member") {
        if let Some(id) = added_member(&answer) {
            session.members.push(id);
        }
        members_normalised(&mut answer);
    }
    let authenticated = match step.call.as_str() {
        "Authenticate" => Some(&mut answer),
        "HTTP" if step.path.ends_with("/auth/authenticate") => answer.get_mut("body"),
        _ => None,
    };
    if let Some(authenticated) = authenticated {
        if let Some(Value::String(token)) = authenticated.get_mut("token") {
            if let Some(name) = &step.save_token {
                session.tokens.insert(name.clone(), token.clone());
            }
            *token = token_form(token).to_string();
        }
    }
    normalise(&mut answer, &mut session.leases);
    Ok(answer)
}

/// What a run compares and how it reports.
struct Plan {
    sides: [Side; 2],
    /// How the report names the second side: `etcdlite` or `etcd`.
    other: &'static str,
    /// How a difference names the two sides.
    labels: [String; 2],
    print: bool,
}

/// Runs `scenario` on a fresh pair of servers; the first difference, if any. A step that
/// cannot run after the servers differed (a token one of them did not answer, say) ends the
/// scenario with that difference rather than the error.
async fn run(plan: &Plan, scenario: &Scenario) -> Result<Option<Difference>, BoxError> {
    let (first_server, first_channel) = plan.sides[0].started(&scenario.flags).await?;
    let (second_server, second_channel) = plan.sides[1].started(&scenario.flags).await?;
    let ports = [first_server.port, second_server.port];
    let _servers = [first_server, second_server];
    let channels = [first_channel, second_channel];
    let mut sessions = [Session::default(), Session::default()];
    for (channel, session) in channels.iter().zip(sessions.iter_mut()) {
        let status = MaintenanceClient::new(channel.clone()).status(pb::StatusRequest {}).await?;
        session.me = status.into_inner().header.map_or(0, |h| h.member_id);
    }
    let mut first = None;
    for (n, step) in scenario.steps.iter().enumerate() {
        let mut answers = Vec::new();
        for ((channel, port), session) in channels.iter().zip(ports).zip(sessions.iter_mut()) {
            match run_step(channel, port, session, step).await {
                Ok(answer) => answers.push(answer),
                Err(error) if first.is_some() => {
                    if plan.print {
                        println!("  {:>2} {} could not run: {error}", n + 1, step.call);
                    }
                    return Ok(first);
                }
                Err(error) => return Err(error),
            }
        }
        let lite = answers.pop().expect("two answers");
        let etcd = answers.pop().expect("two answers");
        if plan.print {
            println!("  {:>2} {} {} -> {}", n + 1, step.call, compact(&step.req, step), clipped(&etcd, 2000));
        }
        if let Some((path, etcd, lite)) = first_difference(&etcd, &lite, "") {
            let labels = plan.labels.clone();
            let difference = Difference { step: n + 1, call: step.call.clone(), path, etcd, lite, labels };
            if !plan.print {
                return Ok(Some(difference));
            }
            println!("     DIFFERS: {difference}");
            first.get_or_insert(difference);
        }
    }
    Ok(first)
}

/// A step's request as printed: its JSON (or wire fields), with its credentials.
fn compact(req: &Value, step: &Step) -> String {
    let mut out = match (&step.wire, step.call.as_str()) {
        (Some(fields), _) => format!("wire {fields:?}"),
        (None, "HTTP") => {
            let body = step.body.clone().map_or_else(|| shortened(req), |body| clipped(&json!(body), 120));
            let method = step.method.as_deref().unwrap_or("POST");
            let headers =
                if step.headers.is_empty() { String::new() } else { format!(" {:?}", step.headers) };
            format!("{method} {}{headers} {body}", step.path)
        }
        _ => shortened(req),
    };
    if let Some(token) = &step.token {
        out.push_str(&format!(" [token {token}]"));
    }
    if let Some(token) = &step.raw_token {
        out.push_str(&format!(" [raw token {token:?}]"));
    }
    if !step.stream.is_empty() {
        out.push_str(&format!(" [stream {}]", step.stream));
    }
    out
}

fn report(outcomes: &[Outcome], etcd: &str, other: &str) -> String {
    let passed = outcomes.iter().filter(|o| o.failure.is_none()).count();
    let known = outcomes.iter().filter(|o| o.failure.is_some() && !o.unexpected()).count();
    let mut out = format!(
        "# Conformance: {other} against a real etcd\n\n\
         Written by `scripts/conformance` (`etcdlite-conformance`): every scenario of \
         `tests/conformance/` run against a fresh {} and a fresh {other}, through the \
         same gRPC client (the same HTTP client for the JSON gateway's), answers compared \
         after normalising raft terms, lease ids and remaining TTLs, tokens (by their \
         form), the ids and client URLs of listed members (and, in Status, what describes \
         the member rather than the store; in a Snapshot, the bytes of its chunks); both run as the same member, so headers keep \
         their member and cluster ids. A FAIL (known) is a deliberate \
         difference, listed in `docs/limitations.md`, or a difference of etcd 3.4 the \
         scenario names.\n\n**{passed} of {} scenarios PASS; {known} differ as \
         known.**\n\n\
         | area | scenario | result | first difference |\n|---|---|---|---|\n",
        etcd,
        outcomes.len()
    );
    let mut by_area: BTreeMap<&str, Vec<&Outcome>> = BTreeMap::new();
    for o in outcomes {
        by_area.entry(&o.area).or_default().push(o);
    }
    for (area, list) in by_area {
        for o in list {
            let (result, detail) = match (&o.failure, &o.known) {
                (None, _) => ("PASS", String::new()),
                (Some(failure @ Failure::Differs(_)), Some(why)) => {
                    ("FAIL (known)", format!("{failure}; {why}"))
                }
                (Some(failure), _) => ("FAIL", failure.to_string()),
            };
            out.push_str(&format!("| {area} | {} | {result} | {} |\n", o.name, detail.replace('|', "\\|")));
        }
    }
    out
}

/// Why a difference in `scenario` is expected in this run, if it is: its `differs` against
/// etcdlite; its `etcd34` when exactly one side is etcd 3.4.
fn known_difference(scenario: &Scenario, other: &str, versions: &[String; 2]) -> Option<String> {
    let is34 = |v: &String| v.starts_with("3.4.");
    let one34 = is34(&versions[0]) != is34(&versions[1]);
    let etcd34 = scenario.etcd34.as_ref().filter(|_| one34).map(|why| format!("etcd 3.4: {why}"));
    let differs = scenario.differs.clone().filter(|_| other == "etcdlite");
    match (differs, etcd34) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let version = etcd_version(&args.etcd);
    let (plan, versions) = match (&args.etcdlite, &args.against_etcd, args.reference_only) {
        (_, _, true) => (
            Plan {
                sides: [Side::Etcd(args.etcd.clone()), Side::Etcd(args.etcd.clone())],
                other: "etcd",
                labels: ["etcd (first run)".into(), "etcd (second run)".into()],
                print: true,
            },
            [version.clone(), version.clone()],
        ),
        (_, Some(other), false) => (
            Plan {
                sides: [Side::Etcd(args.etcd.clone()), Side::Etcd(other.clone())],
                other: "etcd",
                labels: [format!("etcd {version}"), format!("etcd {}", etcd_version(other))],
                print: args.print,
            },
            [version.clone(), etcd_version(other)],
        ),
        (Some(lite), None, false) => (
            Plan {
                sides: [Side::Etcd(args.etcd.clone()), Side::Lite(lite.clone())],
                other: "etcdlite",
                labels: ["etcd".into(), "etcdlite".into()],
                print: args.print,
            },
            [version.clone(), String::new()],
        ),
        (None, None, false) => return Err("--etcdlite is needed".into()),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.scenarios)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| {
            args.files
                .as_ref()
                .is_none_or(|f| p.file_name().is_some_and(|n| n.to_string_lossy().contains(f.as_str())))
        })
        .collect();
    files.sort();
    let mut outcomes = Vec::new();
    for path in files {
        let file: File = serde_json::from_str(&std::fs::read_to_string(&path)?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        for scenario in &file.scenarios {
            if args.filter.as_ref().is_some_and(|f| !scenario.name.contains(f.as_str())) {
                continue;
            }
            if plan.print {
                println!("== {} / {}", file.area, scenario.name);
            }
            let failure = match tokio::time::timeout(SCENARIO_LIMIT, run(&plan, scenario)).await {
                Ok(Ok(difference)) => difference.map(Failure::Differs),
                Ok(Err(error)) => Some(Failure::Error(error.to_string())),
                Err(_) => Some(Failure::Error(format!("no end after {SCENARIO_LIMIT:?}"))),
            };
            let known = known_difference(scenario, plan.other, &versions);
            let outcome = Outcome { area: file.area.clone(), name: scenario.name.clone(), failure, known };
            let verdict = match (&outcome.failure, outcome.unexpected()) {
                (None, _) => "PASS",
                (Some(_), false) => "FAIL (known)",
                (Some(_), true) => "FAIL",
            };
            eprintln!("{verdict} {} / {}", file.area, scenario.name);
            if let Some(failure) = &outcome.failure {
                eprintln!("  {failure}");
            }
            outcomes.push(outcome);
        }
    }
    let unexpected = outcomes.iter().filter(|o| o.unexpected()).count();
    let passed = outcomes.iter().filter(|o| o.failure.is_none()).count();
    eprintln!("{passed} of {} scenarios PASS; {unexpected} unexpected FAIL", outcomes.len());
    if let Some(path) = &args.report {
        let label = args.label.clone().unwrap_or_else(|| format!("etcd {version}"));
        let other = match (&args.against_etcd, args.reference_only) {
            (Some(other), _) => format!("etcd {}", etcd_version(other)),
            (None, true) => format!("etcd {version}"),
            (None, false) => "etcdlite".to_string(),
        };
        std::fs::write(path, report(&outcomes, &label, &other))?;
    }
    if unexpected > 0 {
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_get_bytes_and_lease_ids_filled_in() {
        let req =
            json!({"key": "s:ab", "value": "n:3", "lease": "$L2", "limit": "5", "nested": ["s:", "x:ff00"]});
        let ids = Ids { leases: &[7, 9], members: &[], me: 0 };
        let prepared = prepare(&req, ids);
        assert_eq!(
            prepared,
            json!({"key": "YWI=", "value": "eHh4", "lease": "9", "limit": "5", "nested": ["", "/wA="]})
        );
        // Not hex: left as it is.
        let none = Ids { leases: &[], members: &[], me: 0 };
        assert_eq!(prepare(&json!("x:zz"), none), json!("x:zz"));
        assert_eq!(prepare(&json!({"name": "repeat:3:ab"}), none), json!({"name": "ababab"}));
        // Members: added ones in order, and the member answering.
        let ids = Ids { leases: &[], members: &[u64::MAX, 5], me: 3 };
        assert_eq!(
            prepare(&json!({"ID": "$M1", "b": "$M2", "c": "$ME", "d": "$M3", "e": "$X"}), ids),
            json!({"ID": u64::MAX.to_string(), "b": "5", "c": "3", "d": "0", "e": "$X"})
        );
    }

    #[test]
    fn answers_lose_what_must_differ_and_keep_the_rest() {
        let mut leases = Vec::new();
        let mut answer = json!({
            "header": {"cluster_id": "1", "member_id": "2", "revision": "5", "raft_term": "3"},
            "ID": "700", "TTL": "59", "grantedTTL": "60", "keys": ["Yg==", "YQ=="],
            "kvs": [{"key": "YQ==", "lease": "800"}, {"key": "Yg==", "lease": "700"}]
        });
        normalise(&mut answer, &mut leases);
        assert_eq!(
            answer,
            json!({
                "header": {"cluster_id": "1", "member_id": "2", "revision": "5"},
                "ID": "$L1", "TTL": "positive", "grantedTTL": "60", "keys": ["YQ==", "Yg=="],
                "kvs": [{"key": "YQ==", "lease": "$L2"}, {"key": "Yg==", "lease": "$L1"}]
            })
        );
        assert_eq!(leases, [700, 800]);
        let mut expired = json!({"TTL": "-1"});
        normalise(&mut expired, &mut leases);
        assert_eq!(expired, json!({"TTL": "-1"}));
    }

    #[test]
    fn tokens_are_compared_by_form() {
        assert_eq!(token_form("abcdefghijklmnOP.12"), "<simple>");
        assert_eq!(token_form("abcdefghijklmnOP."), "<other>");
        assert_eq!(token_form("abcdefghijklmno.12"), "<other>");
        assert_eq!(token_form("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"), "<other>");
    }

    #[test]
    fn members_keep_their_name_and_peer_urls() {
        let mut answer = json!({"header": {"revision": "1"}, "member": {"ID": "7", "peerURLs": ["http://q"]},
            "members": [
                {"ID": "7", "peerURLs": ["http://q"]},
                {"ID": "12", "name": "a", "peerURLs": ["http://p"], "clientURLs": ["http://c"]}]});
        assert_eq!(added_member(&answer), Some(7));
        members_normalised(&mut answer);
        assert_eq!(
            answer,
            json!({"header": {"revision": "1"}, "member": {"ID": "present", "peerURLs": ["http://q"]},
                "members": [
                {"ID": "present", "name": "a", "peerURLs": ["http://p"], "clientURLs": "present"},
                {"ID": "present", "peerURLs": ["http://q"]}]})
        );
    }

    #[test]
    fn wire_requests_and_undecodable_answers() {
        let request = wire_request(&[(1, "x:ff61".into()), (2, "s:pw".into())]).unwrap();
        assert_eq!(request, [0x0a, 2, 0xff, b'a', 0x12, 2, b'p', b'w']);
        // A header (field 1), a name that is not UTF-8 (2) and a varint (3).
        let answer = [0x0a, 2, 8, 5, 0x12, 1, 0xff, 0x12, 1, b'a', 0x18, 7];
        assert_eq!(wire_fields(&answer), json!({"2": ["x:ff", "s:a"], "3": [7]}));
        assert!(wire_decoded("UserList", &answer).is_err());
    }

    #[test]
    fn known_differences_depend_on_the_sides() {
        let scenario: Scenario = serde_json::from_value(json!({
            "name": "n", "steps": [], "differs": "lite", "etcd34": "old"
        }))
        .unwrap();
        let (v35, v34) = ("3.5.1".to_string(), "3.4.23".to_string());
        assert_eq!(
            known_difference(&scenario, "etcdlite", &[v35.clone(), String::new()]).as_deref(),
            Some("lite")
        );
        assert_eq!(
            known_difference(&scenario, "etcdlite", &[v34.clone(), String::new()]).as_deref(),
            Some("lite; etcd 3.4: old")
        );
        assert_eq!(
            known_difference(&scenario, "etcd", &[v35.clone(), v34.clone()]).as_deref(),
            Some("etcd 3.4: old")
        );
        assert_eq!(known_difference(&scenario, "etcd", &[v34.clone(), v34]), None);
        assert_eq!(known_difference(&scenario, "etcd", &[v35.clone(), v35]), None);
    }
}
