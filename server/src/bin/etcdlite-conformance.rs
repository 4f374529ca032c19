//! `etcdlite-conformance`: runs the scenarios of `tests/conformance/` against a real etcd
//! and against etcdlite, through the same gRPC client, and reports where they differ.
//!
//! Each scenario gets a fresh etcd (`--etcd`, a binary, on a fresh data directory) and a
//! fresh etcdlite (`--etcdlite`, a binary, memory engine), both on loopback ports. A step
//! is one unary call (or a watch stream step, below), its request written in proto3 JSON;
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
//! Streams are steps too: `{"call": "Watch", "stream": "w", "req": <WatchRequest>}` sends a
//! request on watch stream `w` (opened by its first step), and `{"call": "WatchRecv",
//! "stream": "w", "count": 2}` compares the next two responses (a response that does not
//! come within 3 s is `{"timeout": true}`). `LeaseKeepAlive` and `LeaseKeepAliveRecv` do the
//! same on a keep-alive stream. A `Status` answer keeps the version, database sizes, leader
//! and raft indexes only as present or absent.
//!
//! A string written `s:text` is the bytes of `text` (the runner base64-encodes it, as
//! proto3 JSON wants bytes), `n:N` is N bytes of `x`; `$L1`, `$L2`... stand for the
//! first, second... lease id a server granted in the scenario. A scenario with `"differs": "why"` is expected to
//! differ (the reason is listed in `docs/limitations.md`): it is reported, not failed.
//!
//! ```text
//! etcdlite-conformance --etcd /usr/bin/etcd --etcdlite target/debug/etcdlite \
//!     --scenarios tests/conformance --report docs/conformance.md
//! ```
//!
//! The exit status is non-zero when a scenario not marked `differs` differs, or when one
//! could not run to its end (reported as a FAIL with the reason).

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::Parser;
use etcdlite_server::pb::etcdserverpb as pb;
use etcdlite_server::pb::etcdserverpb::kv_client::KvClient;
use etcdlite_server::pb::etcdserverpb::lease_client::LeaseClient;
use etcdlite_server::pb::etcdserverpb::maintenance_client::MaintenanceClient;
use etcdlite_server::pb::etcdserverpb::watch_client::WatchClient;
use etcdlite_server::pb::v3electionpb as election;
use etcdlite_server::pb::v3electionpb::election_client::ElectionClient;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tonic::transport::Channel;

type BoxError = Box<dyn Error + Send + Sync>;

#[derive(Parser)]
#[command(about = "Runs the conformance scenarios against etcd and etcdlite and compares them")]
struct Args {
    /// The etcd binary.
    #[arg(long)]
    etcd: PathBuf,
    /// The etcdlite binary.
    #[arg(long)]
    etcdlite: PathBuf,
    /// The folder of scenario files (`*.json`).
    #[arg(long, default_value = "tests/conformance")]
    scenarios: PathBuf,
    /// Where to write the Markdown report.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Only scenarios whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// How the report names the etcd it ran against (default: the binary's path).
    #[arg(long)]
    label: Option<String>,
}

#[derive(Deserialize)]
struct File {
    area: String,
    scenarios: Vec<Scenario>,
}

#[derive(Deserialize)]
struct Scenario {
    name: String,
    steps: Vec<Step>,
    /// Why etcdlite differs here on purpose.
    #[serde(default)]
    differs: Option<String>,
}

#[derive(Deserialize)]
struct Step {
    call: String,
    #[serde(default)]
    req: Value,
    /// For `Watch` and `WatchRecv`: which watch stream (opened by its first `Watch`).
    #[serde(default)]
    stream: String,
    /// For `WatchRecv`: how many responses to take.
    #[serde(default = "one")]
    count: usize,
}

fn one() -> usize {
    1
}

/// A bidirectional stream a scenario opened: where to send requests, and the responses.
enum Stream {
    Watch(mpsc::Sender<pb::WatchRequest>, tonic::Streaming<pb::WatchResponse>),
    KeepAlive(mpsc::Sender<pb::LeaseKeepAliveRequest>, tonic::Streaming<pb::LeaseKeepAliveResponse>),
    /// A stream the server refused when it opened, with the error its first receive gets
    /// (a Go client sees the error there; tonic's call waits for the response headers).
    Refused(Option<tonic::Status>),
}

/// The streams a scenario opened on one server, by name.
type Streams = HashMap<String, Stream>;

/// How long one scenario may take, servers' start included.
const SCENARIO_LIMIT: Duration = Duration::from_secs(120);

/// How long a receiving step waits for each response; none in time is an answer too.
const STREAM_WAIT: Duration = Duration::from_secs(3);

/// A stream step. `Watch` and `LeaseKeepAlive` send `req` on the named stream (opening it
/// with their first request), answering nothing; `WatchRecv` and `LeaseKeepAliveRecv`
/// answer the stream's next `count` responses, `{"timeout": true}` where one does not come
/// within 3 s.
async fn stream_step(
    channel: &Channel,
    streams: &mut Streams,
    step: &Step,
    req: Value,
) -> Result<Value, BoxError> {
    match (step.call.as_str(), streams.get_mut(&step.stream)) {
        ("Watch", Some(Stream::Watch(send, _))) => send.send(from_json(req)?).await?,
        ("LeaseKeepAlive", Some(Stream::KeepAlive(send, _))) => send.send(from_json(req)?).await?,
        // The first request goes before the call is awaited: etcd's server sends the
        // stream's headers only with its first response.
        ("Watch", None) => {
            let (send, outgoing) = opened(from_json(req)?).await?;
            let stream = match WatchClient::new(channel.clone()).watch(outgoing).await {
                Ok(responses) => Stream::Watch(send, responses.into_inner()),
                Err(status) => Stream::Refused(Some(status)),
            };
            streams.insert(step.stream.clone(), stream);
        }
        ("LeaseKeepAlive", None) => {
            let (send, outgoing) = opened(from_json(req)?).await?;
            let stream = match LeaseClient::new(channel.clone()).lease_keep_alive(outgoing).await {
                Ok(responses) => Stream::KeepAlive(send, responses.into_inner()),
                Err(status) => Stream::Refused(Some(status)),
            };
            streams.insert(step.stream.clone(), stream);
        }
        ("WatchRecv", Some(Stream::Watch(_, responses))) => return received(responses, step.count).await,
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

/// One scenario's outcome.
struct Outcome {
    area: String,
    name: String,
    failure: Option<Failure>,
    differs: Option<String>,
}

impl Outcome {
    /// A failure the scenario does not expect: any error, or a difference not marked.
    fn unexpected(&self) -> bool {
        matches!((&self.failure, &self.differs), (Some(Failure::Error(_)), _) | (Some(_), None))
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
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() { "the answer" } else { &self.path };
        write!(
            f,
            "step {} ({}), {path}: etcd `{}`, etcdlite `{}`",
            self.step,
            self.call,
            shortened(&self.etcd),
            shortened(&self.lite)
        )
    }
}

/// A value as JSON, cut after 120 characters.
fn shortened(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(120) {
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

impl Server {
    fn etcd(binary: &Path) -> Result<Server, BoxError> {
        let dir = tempfile::tempdir()?;
        let (port, peer) = (free_port()?, free_port()?);
        let client = format!("http://127.0.0.1:{port}");
        let peer = format!("http://127.0.0.1:{peer}");
        let child = Command::new(binary)
            .args(["--name", "conformance", "--data-dir"])
            .arg(dir.path())
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("conformance={peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Server { child, port, _dir: Some(dir) })
    }

    fn etcdlite(binary: &Path) -> Result<Server, BoxError> {
        let port = free_port()?;
        let child = Command::new(binary)
            .args(["--listen-client-urls", &format!("http://127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Server { child, port, _dir: None })
    }

    /// A channel once the server answers Status (at most 30 s).
    async fn connect(&self) -> Result<Channel, BoxError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
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

/// One step's request with `s:` strings encoded and `$Ln` lease names resolved.
fn prepare(value: &Value, leases: &[i64]) -> Value {
    match value {
        Value::String(s) if s.starts_with("s:") => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(&s.as_bytes()[2..]))
        }
        Value::String(s) if s.starts_with("n:") => {
            let len: usize = s[2..].parse().unwrap_or(0);
            Value::String(base64::engine::general_purpose::STANDARD.encode(vec![b'x'; len]))
        }
        Value::String(s) if s.starts_with("$L") => {
            let n: usize = s[2..].parse().unwrap_or(0);
            Value::String(leases.get(n.wrapping_sub(1)).copied().unwrap_or(0).to_string())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| prepare(v, leases)).collect()),
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), prepare(v, leases))).collect())
        }
        other => other.clone(),
    }
}

/// What must differ between two servers is taken out: the cluster's and member's ids and
/// the raft term (in every header), lease ids (as `$Ln`, in order of appearance), the
/// remaining TTL of a lease (timing), kept only as "positive" or its sign, and the order of
/// a lease's keys (etcd lists them in Go map order, which is random).
fn normalise(value: &mut Value, leases: &mut Vec<i64>) {
    match value {
        Value::Object(fields) => {
            for id in ["cluster_id", "member_id", "raft_term"] {
                fields.remove(id);
            }
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

/// A Status answer without what describes the member rather than the store: the server's
/// version, the database's sizes (each engine's own), the leader's id and the raft indexes
/// (etcd counts raft entries). Each is kept only as present or absent.
fn status_normalised(status: &mut Value) {
    if let Value::Object(fields) = status {
        for name in ["version", "dbSize", "dbSizeInUse", "leader", "raftIndex", "raftAppliedIndex"] {
            if let Some(field) = fields.get_mut(name) {
                *field = Value::String("present".into());
            }
        }
    }
}

fn to_json<T: serde::Serialize>(message: T) -> Result<Value, BoxError> {
    Ok(serde_json::to_value(message)?)
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, BoxError> {
    Ok(serde_json::from_value(value)?)
}

/// Runs one call; an error status is an answer too.
async fn call(channel: &Channel, name: &str, req: Value) -> Result<Value, BoxError> {
    let (mut kv, mut lease, mut maintenance, mut elections) = (
        KvClient::new(channel.clone()),
        LeaseClient::new(channel.clone()),
        MaintenanceClient::new(channel.clone()),
        ElectionClient::new(channel.clone()),
    );
    let result = match name {
        "Range" => kv.range(from_json::<pb::RangeRequest>(req)?).await.map(|r| to_json(r.into_inner())),
        "Put" => kv.put(from_json::<pb::PutRequest>(req)?).await.map(|r| to_json(r.into_inner())),
        "DeleteRange" => {
            kv.delete_range(from_json::<pb::DeleteRangeRequest>(req)?).await.map(|r| to_json(r.into_inner()))
        }
        "Txn" => kv.txn(from_json::<pb::TxnRequest>(req)?).await.map(|r| to_json(r.into_inner())),
        "Compact" => {
            kv.compact(from_json::<pb::CompactionRequest>(req)?).await.map(|r| to_json(r.into_inner()))
        }
        "LeaseGrant" => {
            lease.lease_grant(from_json::<pb::LeaseGrantRequest>(req)?).await.map(|r| to_json(r.into_inner()))
        }
        "LeaseRevoke" => lease
            .lease_revoke(from_json::<pb::LeaseRevokeRequest>(req)?)
            .await
            .map(|r| to_json(r.into_inner())),
        "LeaseTimeToLive" => lease
            .lease_time_to_live(from_json::<pb::LeaseTimeToLiveRequest>(req)?)
            .await
            .map(|r| to_json(r.into_inner())),
        "LeaseLeases" => lease
            .lease_leases(from_json::<pb::LeaseLeasesRequest>(req)?)
            .await
            .map(|r| to_json(r.into_inner())),
        "HashKV" => {
            maintenance.hash_kv(from_json::<pb::HashKvRequest>(req)?).await.map(|r| to_json(r.into_inner()))
        }
        "Status" => maintenance.status(from_json::<pb::StatusRequest>(req)?).await.map(|r| {
            let mut status = to_json(r.into_inner())?;
            status_normalised(&mut status);
            Ok(status)
        }),
        "Campaign" => elections
            .campaign(from_json::<election::CampaignRequest>(req)?)
            .await
            .map(|r| to_json(r.into_inner())),
        "Proclaim" => elections
            .proclaim(from_json::<election::ProclaimRequest>(req)?)
            .await
            .map(|r| to_json(r.into_inner())),
        "Leader" => elections
            .leader(from_json::<election::LeaderRequest>(req)?)
            .await
            .map(|r| to_json(r.into_inner())),
        "Resign" => elections
            .resign(from_json::<election::ResignRequest>(req)?)
            .await
            .map(|r| to_json(r.into_inner())),
        other => return Err(format!("unknown call {other:?}").into()),
    };
    match result {
        Ok(json) => json,
        Err(status) => Ok(error_answer(&status)),
    }
}

/// Runs `scenario` on a fresh pair of servers; the first difference, if any.
async fn run(args: &Args, scenario: &Scenario) -> Result<Option<Difference>, BoxError> {
    let etcd = Server::etcd(&args.etcd)?;
    let lite = Server::etcdlite(&args.etcdlite)?;
    let channels = [etcd.connect().await?, lite.connect().await?];
    let mut leases: [Vec<i64>; 2] = [Vec::new(), Vec::new()];
    let mut streams: [Streams; 2] = [HashMap::new(), HashMap::new()];
    for (n, step) in scenario.steps.iter().enumerate() {
        let mut answers = Vec::new();
        for (side, channel) in channels.iter().enumerate() {
            let req = prepare(&step.req, &leases[side]);
            let mut answer = match step.call.as_str() {
                "Watch" | "WatchRecv" | "LeaseKeepAlive" | "LeaseKeepAliveRecv" => {
                    stream_step(channel, &mut streams[side], step, req).await?
                }
                _ => call(channel, &step.call, req).await?,
            };
            normalise(&mut answer, &mut leases[side]);
            answers.push(answer);
        }
        let lite = answers.pop().expect("two answers");
        let etcd = answers.pop().expect("two answers");
        if let Some((path, etcd, lite)) = first_difference(&etcd, &lite, "") {
            return Ok(Some(Difference { step: n + 1, call: step.call.clone(), path, etcd, lite }));
        }
    }
    Ok(None)
}

fn report(outcomes: &[Outcome], etcd: &str) -> String {
    let passed = outcomes.iter().filter(|o| o.failure.is_none()).count();
    let known = outcomes.iter().filter(|o| o.failure.is_some() && !o.unexpected()).count();
    let mut out = format!(
        "# Conformance: etcdlite against a real etcd\n\n\
         Written by `scripts/conformance` (`etcdlite-conformance`): every scenario of \
         `tests/conformance/` run against a fresh {} and a fresh etcdlite, through the \
         same gRPC client, answers compared after normalising cluster and member ids, raft \
         terms, lease ids and remaining TTLs (and, in Status, what describes the member rather \
         than the store). A FAIL (known) is a deliberate difference, listed in \
         `docs/limitations.md`.\n\n**{passed} of {} scenarios PASS; {known} differ as \
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
            let (result, detail) = match (&o.failure, &o.differs) {
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

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.scenarios)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
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
            let failure = match tokio::time::timeout(SCENARIO_LIMIT, run(&args, scenario)).await {
                Ok(Ok(difference)) => difference.map(Failure::Differs),
                Ok(Err(error)) => Some(Failure::Error(error.to_string())),
                Err(_) => Some(Failure::Error(format!("no end after {SCENARIO_LIMIT:?}"))),
            };
            eprintln!(
                "{} {} / {}",
                if failure.is_none() { "PASS" } else { "FAIL" },
                file.area,
                scenario.name
            );
            if let Some(failure) = &failure {
                eprintln!("  {failure}");
            }
            outcomes.push(Outcome {
                area: file.area.clone(),
                name: scenario.name.clone(),
                failure,
                differs: scenario.differs.clone(),
            });
        }
    }
    let unexpected = outcomes.iter().filter(|o| o.unexpected()).count();
    let passed = outcomes.iter().filter(|o| o.failure.is_none()).count();
    eprintln!("{passed} of {} scenarios PASS; {unexpected} unexpected FAIL", outcomes.len());
    if let Some(path) = &args.report {
        let label = args.label.clone().unwrap_or_else(|| args.etcd.display().to_string());
        std::fs::write(path, report(&outcomes, &label))?;
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
        let req = json!({"key": "s:ab", "value": "n:3", "lease": "$L2", "limit": "5", "nested": ["s:"]});
        let prepared = prepare(&req, &[7, 9]);
        assert_eq!(
            prepared,
            json!({"key": "YWI=", "value": "eHh4", "lease": "9", "limit": "5", "nested": [""]})
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
                "header": {"revision": "5"},
                "ID": "$L1", "TTL": "positive", "grantedTTL": "60", "keys": ["YQ==", "Yg=="],
                "kvs": [{"key": "YQ==", "lease": "$L2"}, {"key": "Yg==", "lease": "$L1"}]
            })
        );
        assert_eq!(leases, [700, 800]);
        let mut expired = json!({"TTL": "-1"});
        normalise(&mut expired, &mut leases);
        assert_eq!(expired, json!({"TTL": "-1"}));
    }
}
