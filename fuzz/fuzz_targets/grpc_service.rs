//! Every gRPC method of the server, called in-process through its service implementation
//! (the code a network call reaches after tonic decodes it) over a memory store. An input
//! is a sequence of calls, each a method and the bytes of its request message, decoded
//! with prost as tonic decodes them; the streaming calls (Watch, LeaseKeepAlive) get a
//! sequence of messages framed as gRPC frames them, through tonic's own decoder.
//!
//! A request that does not decode is skipped; a call may fail, but never panics. A call
//! that succeeds leaves what it says it did: a put reads back at its revision, a deleted
//! range is empty at the delete's revision, a compaction is recorded, a granted lease
//! exists and a revoked one does not, a snapshot restores. The revision never goes back,
//! and at the end the store passes [`check_consistent`]. Lock and Campaign, which may wait
//! for another holder, run as tasks beside the calls that follow them; the ones still
//! waiting at the end are dropped with the rest.
#![no_main]

use std::fmt::Debug;
use std::sync::Arc;

use arbitrary::Arbitrary;
use bytes::Bytes;
use etcdlite::{LeaseTimeToLiveOptions, RangeRequest, Store};
use etcdlite_fuzz::{check_consistent, memory_options};
use etcdlite_server::pb::etcdserverpb::auth_server::Auth;
use etcdlite_server::pb::etcdserverpb::cluster_server::Cluster;
use etcdlite_server::pb::etcdserverpb::kv_server::Kv;
use etcdlite_server::pb::etcdserverpb::lease_server::Lease;
use etcdlite_server::pb::etcdserverpb::maintenance_server::Maintenance;
use etcdlite_server::pb::etcdserverpb::watch_server::Watch;
use etcdlite_server::pb::etcdserverpb::{self as pb};
use etcdlite_server::pb::v3electionpb::election_server::Election;
use etcdlite_server::pb::v3lockpb::lock_server::Lock;
use etcdlite_server::pb::{v3electionpb, v3lockpb};
use etcdlite_server::{
    AuthService, ClusterService, ElectionService, KvService, LeaseService, LockService, MaintenanceService,
    Node, WatchService,
};
use futures::{FutureExt, Stream, StreamExt};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use tonic::codec::{Codec, Streaming};
use tonic::{Request, Response, Status};

/// The decoding limit the services get (the server's default is 2 MiB).
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// How often a stream that has nothing to say is polled again (other tasks running in
/// between) before it is taken to have said all it will.
const IDLE_POLLS: usize = 32;
/// The most responses read from one stream.
const MAX_RESPONSES: usize = 64;

#[derive(Arbitrary, Debug)]
struct Call {
    method: u8,
    /// The request message, or the stream's messages.
    messages: Vec<Vec<u8>>,
    /// Bytes after the last whole frame of a stream (a frame cut short, or garbage).
    tail: Vec<u8>,
    /// Whether the call carries the token of the last successful Authenticate.
    with_token: bool,
}

/// The services of one node.
struct Services {
    node: Arc<Node>,
    kv: KvService,
    watch: WatchService,
    lease: LeaseService,
    maintenance: MaintenanceService,
    cluster: ClusterService,
    auth: AuthService,
    lock: LockService,
    election: ElectionService,
}

/// What the calls so far have left behind.
struct Session {
    token: Option<String>,
    revision: i64,
    waiting: Vec<tokio::task::JoinHandle<()>>,
}

fn decode<T: Message + Default>(bytes: &[u8]) -> Option<T> {
    T::decode(bytes).ok()
}

fn request<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(value) = token.and_then(|t| t.parse().ok()) {
        request.metadata_mut().insert("token", value);
    }
    request
}

/// The messages as a gRPC request body, decoded by tonic's prost codec.
fn streaming<T: Message + Default + Send + 'static>(messages: &[Vec<u8>], tail: &[u8]) -> Streaming<T> {
    let mut body = Vec::new();
    for message in messages {
        body.push(0);
        body.extend_from_slice(&(message.len() as u32).to_be_bytes());
        body.extend_from_slice(message);
    }
    body.extend_from_slice(tail);
    let decoder = tonic_prost::ProstCodec::<(), T>::default().decoder();
    let body = http_body_util::Full::new(Bytes::from(body));
    Streaming::new_request(decoder, body, None, Some(MAX_MESSAGE_BYTES))
}

/// What a response stream says until it ends, goes quiet (nothing after [`IDLE_POLLS`]
/// turns of the other tasks) or has said [`MAX_RESPONSES`].
async fn drain<T>(mut stream: impl Stream<Item = Result<T, Status>> + Unpin) -> Vec<Result<T, Status>> {
    let mut out = Vec::new();
    'responses: while out.len() < MAX_RESPONSES {
        for _ in 0..IDLE_POLLS {
            match stream.next().now_or_never() {
                Some(Some(item)) => {
                    out.push(item);
                    continue 'responses;
                }
                Some(None) => break 'responses,
                None => tokio::task::yield_now().await,
            }
        }
        break;
    }
    out
}

fn header_revision(header: &Option<pb::ResponseHeader>) -> i64 {
    header.as_ref().expect("every response has a header").revision
}

/// The key or range of `key` and `range_end`, read from the store at `revision`.
fn read_at(store: &Store, key: &[u8], range_end: &[u8], revision: i64) -> etcdlite::GetResponse {
    let req =
        RangeRequest { key: key.to_vec(), range_end: range_end.to_vec(), revision, ..Default::default() };
    store.range(&req).expect("a read at the revision a write just answered with")
}

impl Services {
    fn new(store: Arc<Store>) -> Services {
        let node = Arc::new(Node::new(store));
        Services {
            kv: KvService::new(node.clone()),
            watch: WatchService::new(node.clone(), MAX_MESSAGE_BYTES),
            lease: LeaseService::new(node.clone()),
            maintenance: MaintenanceService::new(node.clone()),
            cluster: ClusterService::new(node.clone()),
            auth: AuthService::new(node.clone()),
            lock: LockService::new(node.clone()),
            election: ElectionService::new(node.clone()),
            node,
        }
    }

    fn store(&self) -> &Store {
        &self.node.store
    }

    async fn call(&self, call: &Call, session: &mut Session) {
        let token = if call.with_token { session.token.as_deref() } else { None };
        let first = call.messages.first().map(Vec::as_slice).unwrap_or_default();
        // A unary call: decode its request, call the method, keep its answer.
        macro_rules! unary {
            ($service:ident . $method:ident) => {{
                let Some(message) = decode(first) else { return };
                self.$service.$method(request(message, token)).await.map(Response::into_inner)
            }};
        }
        match call.method % 50 {
            0 => {
                let Some(req) = decode::<pb::RangeRequest>(first) else { return };
                if let Ok(resp) = self.kv.range(request(req, token)).await.map(Response::into_inner) {
                    assert!(resp.count >= resp.kvs.len() as i64 || resp.count == 0, "{resp:?}");
                }
            }
            1 => {
                let Some(req) = decode::<pb::PutRequest>(first) else { return };
                if let Ok(resp) = self.kv.put(request(req.clone(), token)).await {
                    let revision = header_revision(&resp.into_inner().header);
                    let read = read_at(self.store(), &req.key, &[], revision);
                    assert_eq!(read.kvs().len(), 1, "a put that succeeded at {revision} is not there");
                    assert_eq!(read.kvs()[0].mod_revision, revision);
                    if !req.ignore_value {
                        assert_eq!(read.kvs()[0].value, req.value);
                    }
                }
            }
            2 => {
                let Some(req) = decode::<pb::DeleteRangeRequest>(first) else { return };
                if let Ok(resp) = self.kv.delete_range(request(req.clone(), token)).await {
                    let revision = header_revision(&resp.into_inner().header);
                    let read = read_at(self.store(), &req.key, &req.range_end, revision);
                    assert_eq!(read.count(), 0, "a deleted range still holds keys at {revision}");
                }
            }
            3 => {
                if let Ok(resp) = unary!(kv.txn) {
                    assert!(header_revision(&resp.header) <= self.store().current_revision());
                }
            }
            4 => {
                let Some(req) = decode::<pb::CompactionRequest>(first) else { return };
                if self.kv.compact(request(req.clone(), token)).await.is_ok() {
                    assert!(self.store().compacted_revision() >= req.revision);
                }
            }
            5 => {
                if let Ok(resp) = unary!(lease.lease_grant) {
                    let ttl = self.store().lease_time_to_live(resp.id, None::<LeaseTimeToLiveOptions>);
                    assert!(ttl.expect("a lease just granted").ttl() > 0);
                }
            }
            6 => {
                let Some(req) = decode::<pb::LeaseRevokeRequest>(first) else { return };
                if self.lease.lease_revoke(request(req.clone(), token)).await.is_ok() {
                    let ttl = self.store().lease_time_to_live(req.id, None::<LeaseTimeToLiveOptions>);
                    assert!(ttl.is_err() || ttl.is_ok_and(|t| t.ttl() == -1), "a revoked lease lives on");
                }
            }
            7 => drop(unary!(lease.lease_time_to_live)),
            8 => drop(unary!(lease.lease_leases)),
            9 => {
                let requests = streaming::<pb::LeaseKeepAliveRequest>(&call.messages, &call.tail);
                let mut request = Request::new(requests);
                if let Some(value) = token.and_then(|t| t.parse().ok()) {
                    request.metadata_mut().insert("token", value);
                }
                if let Ok(responses) = self.lease.lease_keep_alive(request).await {
                    drain(responses.into_inner()).await;
                }
            }
            10 => drop(unary!(maintenance.alarm)),
            11 => {
                // The service's own `status` (what /health reads) shadows the trait's.
                let Some(message) = decode(first) else { return };
                drop(Maintenance::status(&self.maintenance, request(message, token)).await);
            }
            12 => drop(unary!(maintenance.defragment)),
            13 => drop(unary!(maintenance.hash)),
            14 => drop(unary!(maintenance.hash_kv)),
            15 => {
                let Some(message) = decode::<pb::SnapshotRequest>(first) else { return };
                let Ok(chunks) = self.maintenance.snapshot(request(message, token)).await else { return };
                let mut blob = Vec::new();
                let mut chunks = chunks.into_inner();
                while let Some(chunk) = chunks.next().await {
                    match chunk {
                        Ok(chunk) => blob.extend_from_slice(&chunk.blob),
                        Err(_) => return,
                    }
                }
                let copy = Store::restore_snapshot(memory_options(), &mut blob.as_slice())
                    .expect("a snapshot the service streamed whole restores");
                assert!(copy.current_revision() <= self.store().current_revision());
            }
            16 => drop(unary!(maintenance.move_leader)),
            17 => drop(unary!(maintenance.downgrade)),
            18 => drop(unary!(cluster.member_add)),
            19 => drop(unary!(cluster.member_remove)),
            20 => drop(unary!(cluster.member_update)),
            21 => drop(unary!(cluster.member_list)),
            22 => drop(unary!(cluster.member_promote)),
            23 => drop(unary!(auth.auth_enable)),
            24 => drop(unary!(auth.auth_disable)),
            25 => drop(unary!(auth.auth_status)),
            26 => {
                if let Ok(resp) = unary!(auth.authenticate) {
                    session.token = Some(resp.token);
                }
            }
            27 => drop(unary!(auth.user_add)),
            28 => drop(unary!(auth.user_get)),
            29 => drop(unary!(auth.user_list)),
            30 => drop(unary!(auth.user_delete)),
            31 => drop(unary!(auth.user_change_password)),
            32 => drop(unary!(auth.user_grant_role)),
            33 => drop(unary!(auth.user_revoke_role)),
            34 => drop(unary!(auth.role_add)),
            35 => drop(unary!(auth.role_get)),
            36 => drop(unary!(auth.role_list)),
            37 => drop(unary!(auth.role_delete)),
            38 => drop(unary!(auth.role_grant_permission)),
            39 => drop(unary!(auth.role_revoke_permission)),
            40 => {
                let Some(message) = decode::<v3lockpb::LockRequest>(first) else { return };
                let lock = self.lock.clone();
                let request = request(message, token);
                session.waiting.push(tokio::spawn(async move {
                    let _ = lock.lock(request).await;
                }));
            }
            41 => drop(unary!(lock.unlock)),
            42 => {
                let Some(message) = decode::<v3electionpb::CampaignRequest>(first) else { return };
                let election = self.election.clone();
                let request = request(message, token);
                session.waiting.push(tokio::spawn(async move {
                    let _ = election.campaign(request).await;
                }));
            }
            43 => drop(unary!(election.proclaim)),
            44 => drop(unary!(election.leader)),
            45 => drop(unary!(election.resign)),
            46 => {
                let Some(message) = decode::<v3electionpb::LeaderRequest>(first) else { return };
                if let Ok(responses) = self.election.observe(request(message, token)).await {
                    drain(responses.into_inner()).await;
                }
            }
            _ => {
                let requests = streaming::<pb::WatchRequest>(&call.messages, &call.tail);
                let mut request = Request::new(requests);
                if let Some(value) = token.and_then(|t| t.parse().ok()) {
                    request.metadata_mut().insert("token", value);
                }
                if let Ok(responses) = self.watch.watch(request).await {
                    for response in drain(responses.into_inner()).await.into_iter().flatten() {
                        assert!(
                            !(response.created && response.canceled && response.cancel_reason.is_empty())
                        );
                    }
                }
            }
        }
        let revision = self.store().current_revision();
        assert!(
            revision >= session.revision,
            "the revision went back from {} to {revision}",
            session.revision
        );
        session.revision = revision;
    }
}

fuzz_target!(|calls: Vec<Call>| {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let store = Arc::new(Store::open(memory_options()).expect("memory store"));
    let services = Services::new(store.clone());
    runtime.block_on(async {
        let mut session = Session { token: None, revision: store.current_revision(), waiting: Vec::new() };
        for call in calls.iter().take(24) {
            services.call(call, &mut session).await;
        }
        // Waiting Lock and Campaign calls withdraw, as when the server stops.
        services.node.stop();
        for task in session.waiting {
            task.abort();
        }
    });
    drop(runtime);
    check_consistent(&store);
});
