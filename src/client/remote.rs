//! The remote backend: every call over the network, through the `etcd-client` crate, to an
//! etcd cluster, an etcdlite server or a `TestServer`.
//!
//! Requests arrive as the library's types, their key ranges already resolved (a prefix or
//! from-key is a key and a range end by now), and are rebuilt with `etcd-client`'s option
//! builders, field for field: a range end is passed as a range, never re-derived, so the
//! server sees the keys the caller's options chose. Answers come back as the client's own
//! response types, every field kept; values are moved out where `etcd-client` lets them be
//! taken and copied where it only lends them. Errors become the client's [`Error`], with
//! a gRPC status's code and message intact.

use std::sync::Arc;

use etcd_client as ec;

use super::error::Delivery;
use super::{
    AlarmResponse, AuthDisableResponse, AuthEnableResponse, AuthenticateResponse, CampaignResponse,
    CompactionResponse, ConnectOptions, DefragmentResponse, DeleteResponse, DowngradeInfo, DowngradeOptions,
    DowngradeResponse, Error, Event, GetResponse, HashKvResponse, HashResponse, KeyValue, LeaderKey,
    LeaderResponse, LeaseGrantResponse, LeaseKeepAliveResponse, LeaseKeepAliveStream, LeaseKeeper,
    LeaseLeasesResponse, LeaseRevokeResponse, LeaseTimeToLiveResponse, LockOptions, LockResponse,
    MemberAddOptions, MemberAddResponse, MemberListResponse, MemberPromoteResponse, MemberRemoveResponse,
    MemberUpdateResponse, MoveLeaderResponse, ObserveStream, Permission, PermissionType, ProclaimOptions,
    ProclaimResponse, PutResponse, ResignOptions, ResignResponse, Result, RoleAddResponse,
    RoleDeleteResponse, RoleGetResponse, RoleGrantPermissionResponse, RoleListResponse,
    RoleRevokePermissionResponse, SnapshotResponse, SnapshotStreaming, Status, StatusResponse, TxnOpResponse,
    TxnResponse, UnlockResponse, UserAddOptions, UserAddResponse, UserChangePasswordResponse,
    UserDeleteResponse, UserGetResponse, UserGrantRoleResponse, UserListResponse, UserRevokeRoleResponse,
    WatchResponse, WatchStream,
};
use crate::cluster::{AlarmAction, AlarmMember, AlarmType, Member};
use crate::error::Code;
use crate::lease::{LeaseGrantOptions, LeaseStatus, LeaseTimeToLiveOptions};
use crate::options::{CompactionOptions, WatchOptions};
use crate::txn::request::{
    Compare, CompareOp, CompareTarget, DeleteRangeRequest, PutRequest, RangeRequest, ResponseHeader,
    SortOrder, SortTarget, TargetValue, Txn, TxnOp,
};
use crate::watch::{EventType, WatchFilterType};

/// An etcd cluster's endpoints, one `etcd-client` client each, and the one calls go to.
///
/// Calls go to one endpoint at a time, as clientv3 pins one. When a call fails on its way
/// (the endpoint is down, or its connection broke), it is tried on the next endpoint, which
/// then takes the pin, so a client carries on when a member goes away. A call is retried
/// only when that is safe: a read whenever it failed on its way or the member answered
/// Unavailable (a member without a leader); a write only when it never reached a server
/// (the connection could not be made), so no write is ever applied twice.
pub(crate) struct Remote {
    /// Each endpoint, in the order given.
    members: parking_lot::RwLock<Vec<Arc<Endpoint>>>,
    /// The member calls go to first.
    pinned: std::sync::atomic::AtomicUsize,
    /// For endpoints added later.
    options: ec::ConnectOptions,
}

/// One endpoint: its client, and spare copies of it. etcd-client's calls take the client
/// `&mut`, so each call needs a copy of its own; a copy costs about 2 µs (it holds eight
/// service clients), so copies are kept for reuse rather than made per call.
struct Endpoint {
    endpoint: String,
    client: ec::Client,
    spares: parking_lot::Mutex<Vec<ec::Client>>,
}

/// Spare copies an endpoint keeps, at most (one per call in flight is enough).
const SPARES: usize = 64;

impl Endpoint {
    fn new(endpoint: String, client: ec::Client) -> Arc<Endpoint> {
        Arc::new(Endpoint { endpoint, client, spares: parking_lot::Mutex::new(Vec::new()) })
    }

    /// A copy of the member's client for one call, back among the spares when dropped.
    fn lend(self: &Arc<Self>) -> Lent {
        let client = self.spares.lock().pop().unwrap_or_else(|| self.client.clone());
        Lent { client: Some(client), member: self.clone() }
    }
}

/// A member's client, lent for one call.
struct Lent {
    client: Option<ec::Client>,
    member: Arc<Endpoint>,
}

impl std::ops::Deref for Lent {
    type Target = ec::Client;

    fn deref(&self) -> &ec::Client {
        self.client.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for Lent {
    fn deref_mut(&mut self) -> &mut ec::Client {
        self.client.as_mut().expect("held until dropped")
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let mut spares = self.member.spares.lock();
        if spares.len() < SPARES {
            spares.extend(self.client.take());
        }
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let endpoints: Vec<String> = self.members.read().iter().map(|m| m.endpoint.clone()).collect();
        f.debug_struct("Remote")
            .field("endpoints", &endpoints)
            .field("pinned", &self.pinned)
            .finish_non_exhaustive()
    }
}

/// Whether a call may be sent again after it failed on its way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    /// A read, or a write that is the same however often it is applied.
    Idempotent,
    /// A write: retried only when no server received it.
    Unsent,
}

impl Remote {
    /// The members, in order, starting at the pinned one.
    fn rotation(&self) -> Vec<(usize, Arc<Endpoint>)> {
        let members = self.members.read();
        let start = self.pinned.load(std::sync::atomic::Ordering::Relaxed);
        (0..members.len()).map(|i| (start + i) % members.len()).map(|i| (i, members[i].clone())).collect()
    }

    /// Runs `call` on the pinned endpoint, and on the next ones while it fails in a way
    /// `retry` allows to retry; the first endpoint that answers takes the pin.
    async fn call<T, F, Fut>(&self, retry: Retry, mut call: F) -> Result<T>
    where
        F: FnMut(Lent) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut failure = None;
        for (i, member) in self.rotation() {
            match call(member.lend()).await {
                Ok(answer) => {
                    self.pinned.store(i, std::sync::atomic::Ordering::Relaxed);
                    return Ok(answer);
                }
                Err(Error::GRpcStatus(status)) if may_retry(&status, retry) => {
                    failure = Some(Error::GRpcStatus(status));
                }
                Err(e) => return Err(e),
            }
        }
        Err(failure.unwrap_or_else(|| Error::InvalidArgs("no endpoints".into())))
    }
}

/// Declares a call whose answer is only its header: `name(remote, args)` runs `method` with
/// the args on the pinned endpoint, retried as `retry` allows.
macro_rules! header_only_call {
    ($name:ident, $method:ident, $response:ident, $retry:ident, ($($arg:ident: $ty:ty),*)) => {
        pub(crate) async fn $name(remote: &Remote, $($arg: $ty),*) -> Result<$response> {
            remote
                .call(Retry::$retry, |mut client| {
                    $(let $arg = $arg.clone();)*
                    async move {
                        let mut resp = client.$method($($arg),*).await?;
                        Ok($response { header: header(resp.take_header()) })
                    }
                })
                .await
        }
    };
}

fn may_retry(status: &Status, retry: Retry) -> bool {
    match (status.delivery, retry) {
        (Delivery::NotSent, _) => true,
        (Delivery::Lost, Retry::Idempotent) => true,
        (Delivery::Answered, Retry::Idempotent) => status.code() == Code::Unavailable,
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// Errors and codes
// ---------------------------------------------------------------------------------------

impl From<ec::Error> for Error {
    /// Each `etcd-client` error as the variant of the same name. The payloads the client
    /// does not carry (an invalid URI, a transport error, an invalid metadata value) become
    /// their text, with the errors under them: tonic's transport error alone says no more
    /// than "transport error".
    fn from(error: ec::Error) -> Error {
        match error {
            ec::Error::InvalidArgs(e) => Error::InvalidArgs(e),
            ec::Error::InvalidUri(e) => Error::InvalidUri(with_sources(&e)),
            ec::Error::IoError(e) => Error::IoError(e),
            ec::Error::TransportError(e) => Error::TransportError(with_sources(&e)),
            ec::Error::GRpcStatus(status) => Error::GRpcStatus(status.into()),
            ec::Error::WatchError(e) => Error::WatchError(e),
            ec::Error::Utf8Error(e) => Error::Utf8Error(e),
            ec::Error::LeaseKeepAliveError(e) => Error::LeaseKeepAliveError(e),
            ec::Error::ElectError(e) => Error::ElectError(e),
            ec::Error::InvalidMetadataValue(e) => Error::InvalidMetadataValue(with_sources(&e)),
            ec::Error::EndpointError(e) => Error::EndpointError(e),
            ec::Error::EndpointsNotManaged => Error::EndpointsNotManaged,
            ec::Error::Internal(e) => Error::Internal(e),
            // Variants behind `etcd-client` features (`tls-openssl`'s OpenSsl), which another
            // crate in the build may turn on.
            #[allow(unreachable_patterns)]
            other => Error::Internal(other.to_string()),
        }
    }
}

/// `error`'s text followed by those of the errors under it, `: `-separated.
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        // Some errors repeat their source's text in their own; say it once.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

impl From<tonic::Status> for Status {
    /// The code and the message (etcd's words); tonic's details and metadata are dropped.
    /// A status tonic made from a transport failure records whether the request left.
    fn from(status: tonic::Status) -> Status {
        let mut out = Status::new(status.code().into(), status.message());
        out.delivery = delivery(&status);
        out
    }
}

/// What became of a call that failed with `status`. tonic makes a status of a transport
/// failure with that failure as its source: a connection that could not be made means no
/// server received the request; any other transport failure may have come after a server
/// acted on it. (A broken connection says nothing about one request: h2 fails every stream
/// open on it with the same `EPIPE`, whether or not its request went out.)
fn delivery(status: &tonic::Status) -> Delivery {
    let mut source = std::error::Error::source(status);
    let mut transport = false;
    while let Some(e) = source {
        transport |= e.is::<tonic::transport::Error>();
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(io.kind(), ConnectionRefused | AddrNotAvailable) {
                return Delivery::NotSent;
            }
        }
        source = e.source();
    }
    if transport {
        Delivery::Lost
    } else {
        Delivery::Answered
    }
}

impl From<tonic::Code> for Code {
    fn from(code: tonic::Code) -> Code {
        Code::from_i32(code as i32)
    }
}

impl From<Code> for tonic::Code {
    fn from(code: Code) -> tonic::Code {
        tonic::Code::from_i32(code as i32)
    }
}

/// So `status.code() == tonic::Code::NotFound`, written for `etcd-client`, compiles.
impl PartialEq<tonic::Code> for Code {
    fn eq(&self, other: &tonic::Code) -> bool {
        *self as i32 == *other as i32
    }
}

impl PartialEq<Code> for tonic::Code {
    fn eq(&self, other: &Code) -> bool {
        *self as i32 == *other as i32
    }
}

// ---------------------------------------------------------------------------------------
// Connecting
// ---------------------------------------------------------------------------------------

/// Connects to `endpoints` with every option the client has: one `etcd-client` client per
/// endpoint, each connecting when first used. An endpoint that is not a URL fails the
/// connect; one that cannot be reached is skipped while another can be (only a connect
/// with a user reaches the endpoints at once, to authenticate).
pub(crate) async fn connect<E: AsRef<str>, S: AsRef<[E]>>(
    endpoints: S,
    options: ConnectOptions,
) -> Result<Remote> {
    let endpoints: Vec<String> = endpoints.as_ref().iter().map(|e| e.as_ref().to_owned()).collect();
    if endpoints.is_empty() {
        return Err(Error::InvalidArgs("empty endpoints".into()));
    }
    let options = connect_options(options);
    let mut members = Vec::new();
    let mut unreachable = None;
    for endpoint in endpoints {
        match connect_one(&endpoint, &options).await {
            Ok(client) => members.push(Endpoint::new(endpoint, client)),
            Err(Error::GRpcStatus(status)) if status.delivery != Delivery::Answered => {
                unreachable = Some(Error::GRpcStatus(status));
            }
            Err(e) => return Err(e),
        }
    }
    match (members.is_empty(), unreachable) {
        (true, Some(e)) => Err(e),
        _ => Ok(Remote { members: parking_lot::RwLock::new(members), pinned: 0.into(), options }),
    }
}

async fn connect_one(endpoint: &str, options: &ec::ConnectOptions) -> Result<ec::Client> {
    Ok(ec::Client::connect([endpoint], Some(options.clone())).await?)
}

impl Remote {
    /// Adds `endpoint` to the ones calls may go to.
    pub(crate) async fn add_endpoint(&self, endpoint: &str) -> Result<()> {
        let client = connect_one(endpoint, &self.options).await?;
        self.members.write().push(Endpoint::new(endpoint.to_owned(), client));
        Ok(())
    }

    /// Removes `endpoint` (as it was given) from the ones calls go to; the last one stays.
    pub(crate) fn remove_endpoint(&self, endpoint: &str) -> Result<()> {
        let mut members = self.members.write();
        let Some(i) = members.iter().position(|m| m.endpoint == endpoint) else {
            return Err(Error::EndpointError(format!("{endpoint} is not an endpoint of this client")));
        };
        if members.len() == 1 {
            return Err(Error::EndpointError("the last endpoint cannot be removed".into()));
        }
        members.remove(i);
        self.pinned.store(0, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Authenticates again with the user, at every endpoint.
    pub(crate) async fn refresh_token(&self) -> Result<()> {
        for (_, member) in self.rotation() {
            member.client.refresh_token().await?;
        }
        Ok(())
    }

    /// Changes the user calls authenticate as, at every endpoint.
    pub(crate) async fn update_user(&self, user: Option<(String, String)>) -> Result<()> {
        for (_, member) in self.rotation() {
            member.lend().update_user(user.clone()).await?;
        }
        Ok(())
    }
}

/// Opens an election's observe stream.
pub(crate) async fn observe(remote: &Remote, name: Vec<u8>) -> Result<ObserveStream> {
    remote
        .call(Retry::Idempotent, |mut client| {
            let name = name.clone();
            async move { Ok(ObserveStream::remote(client.observe(name).await?)) }
        })
        .await
}

/// Opens a snapshot stream.
pub(crate) async fn snapshot(remote: &Remote) -> Result<SnapshotStreaming> {
    remote
        .call(Retry::Idempotent, |mut client| async move {
            Ok(SnapshotStreaming::remote(client.snapshot().await?))
        })
        .await
}

/// `etcd-client`'s options for ours. Built from `ConnectOptions::new()`, not `default()`:
/// the two differ on keep-alive while idle, which is set explicitly anyway.
fn connect_options(options: ConnectOptions) -> ec::ConnectOptions {
    let mut out = ec::ConnectOptions::new()
        .with_keep_alive_while_idle(options.keep_alive_while_idle)
        .with_require_leader(options.require_leader)
        .with_auto_token_refresh(options.refresh_expired_token);
    if let Some((name, password)) = options.user {
        out = out.with_user(name, password);
    }
    if let Some((interval, timeout)) = options.keep_alive {
        out = out.with_keep_alive(interval, timeout);
    }
    if let Some(timeout) = options.timeout {
        out = out.with_timeout(timeout);
    }
    if let Some(timeout) = options.connect_timeout {
        out = out.with_connect_timeout(timeout);
    }
    if let Some(keepalive) = options.tcp_keepalive {
        out = out.with_tcp_keepalive(keepalive);
    }
    out
}

// ---------------------------------------------------------------------------------------
// Shared conversions
// ---------------------------------------------------------------------------------------

fn header(header: Option<ec::ResponseHeader>) -> Option<ResponseHeader> {
    header.map(|h| ResponseHeader {
        cluster_id: h.cluster_id(),
        member_id: h.member_id(),
        revision: h.revision(),
        raft_term: h.raft_term(),
    })
}

/// A key-value, its key and value moved, not copied.
fn key_value(kv: ec::KeyValue) -> KeyValue {
    let (create_revision, mod_revision, version, lease) =
        (kv.create_revision(), kv.mod_revision(), kv.version(), kv.lease());
    let (key, value) = kv.into_key_value();
    crate::KeyValue { key, create_revision, mod_revision, version, value, lease }.into()
}

fn key_values(kvs: Vec<ec::KeyValue>) -> Vec<KeyValue> {
    kvs.into_iter().map(key_value).collect()
}

// ---------------------------------------------------------------------------------------
// KV
// ---------------------------------------------------------------------------------------

pub(crate) async fn put(remote: &Remote, req: PutRequest) -> Result<PutResponse> {
    remote
        .call(Retry::Unsent, |mut client| {
            let req = req.clone();
            async move {
                let client = &mut client;
                let (key, value, options) = put_args(req);
                Ok(put_response(client.put(key, value, Some(options)).await?))
            }
        })
        .await
}

pub(crate) async fn get(remote: &Remote, req: RangeRequest) -> Result<GetResponse> {
    remote
        .call(Retry::Idempotent, |mut client| {
            let req = req.clone();
            async move {
                let client = &mut client;
                let (key, options) = get_args(req);
                Ok(get_response(client.get(key, Some(options)).await?))
            }
        })
        .await
}

pub(crate) async fn delete(remote: &Remote, req: DeleteRangeRequest) -> Result<DeleteResponse> {
    remote
        .call(Retry::Unsent, |mut client| {
            let req = req.clone();
            async move {
                let client = &mut client;
                let (key, options) = delete_args(req);
                Ok(delete_response(client.delete(key, Some(options)).await?))
            }
        })
        .await
}

pub(crate) async fn compact(
    remote: &Remote,
    revision: i64,
    options: Option<CompactionOptions>,
) -> Result<CompactionResponse> {
    remote
        .call(Retry::Unsent, |mut client| async move {
            let client = &mut client;
            let mut out = ec::CompactionOptions::new();
            if options.is_some_and(|o| o.physical()) {
                out = out.with_physical();
            }
            let mut resp = client.compact(revision, Some(out)).await?;
            Ok(CompactionResponse { header: header(resp.take_header()) })
        })
        .await
}

pub(crate) async fn txn(remote: &Remote, txn: Txn) -> Result<TxnResponse> {
    remote
        .call(if txn.is_read_only() { Retry::Idempotent } else { Retry::Unsent }, |mut client| {
            let txn = txn.clone();
            async move {
                let client = &mut client;
                Ok(txn_response(client.txn(txn_request(txn)).await?))
            }
        })
        .await
}

fn put_args(req: PutRequest) -> (Vec<u8>, Vec<u8>, ec::PutOptions) {
    let mut options = ec::PutOptions::new().with_lease(req.lease);
    if req.prev_kv {
        options = options.with_prev_key();
    }
    if req.ignore_value {
        options = options.with_ignore_value();
    }
    if req.ignore_lease {
        options = options.with_ignore_lease();
    }
    (req.key, req.value, options)
}

/// A range read's options. The sort is set only when one is asked for: `etcd-client`
/// rewrites (key, ascend) to no sort, and a request that sorts by nothing must stay one.
fn get_args(req: RangeRequest) -> (Vec<u8>, ec::GetOptions) {
    let mut options = ec::GetOptions::new()
        .with_limit(req.limit)
        .with_revision(req.revision)
        .with_min_mod_revision(req.min_mod_revision)
        .with_max_mod_revision(req.max_mod_revision)
        .with_min_create_revision(req.min_create_revision)
        .with_max_create_revision(req.max_create_revision);
    if !req.range_end.is_empty() {
        options = options.with_range(req.range_end);
    }
    if req.sort_target != SortTarget::Key || req.sort_order != SortOrder::None {
        options = options.with_sort(sort_target(req.sort_target), sort_order(req.sort_order));
    }
    if req.serializable {
        options = options.with_serializable();
    }
    if req.keys_only {
        options = options.with_keys_only();
    }
    if req.count_only {
        options = options.with_count_only();
    }
    (req.key, options)
}

fn delete_args(req: DeleteRangeRequest) -> (Vec<u8>, ec::DeleteOptions) {
    let mut options = ec::DeleteOptions::new();
    if !req.range_end.is_empty() {
        options = options.with_range(req.range_end);
    }
    if req.prev_kv {
        options = options.with_prev_key();
    }
    (req.key, options)
}

fn sort_target(target: SortTarget) -> ec::SortTarget {
    match target {
        SortTarget::Key => ec::SortTarget::Key,
        SortTarget::Version => ec::SortTarget::Version,
        SortTarget::Create => ec::SortTarget::Create,
        SortTarget::Mod => ec::SortTarget::Mod,
        SortTarget::Value => ec::SortTarget::Value,
    }
}

fn sort_order(order: SortOrder) -> ec::SortOrder {
    match order {
        SortOrder::None => ec::SortOrder::None,
        SortOrder::Ascend => ec::SortOrder::Ascend,
        SortOrder::Descend => ec::SortOrder::Descend,
    }
}

/// A txn as `etcd-client` builds it, nested txns included. `when`, `and_then` and
/// `or_else` are called once each and in that order, which is all its builder asserts.
fn txn_request(txn: Txn) -> ec::Txn {
    let compares: Vec<ec::Compare> = txn.compare.into_iter().map(compare).collect();
    ec::Txn::new().when(compares).and_then(txn_ops(txn.success)).or_else(txn_ops(txn.failure))
}

fn txn_ops(ops: Vec<TxnOp>) -> Vec<ec::TxnOp> {
    ops.into_iter()
        .map(|op| match op {
            TxnOp::Get(req) => {
                let (key, options) = get_args(req);
                ec::TxnOp::get(key, Some(options))
            }
            TxnOp::Put(req) => {
                let (key, value, options) = put_args(req);
                ec::TxnOp::put(key, value, Some(options))
            }
            TxnOp::Delete(req) => {
                let (key, options) = delete_args(req);
                ec::TxnOp::delete(key, Some(options))
            }
            TxnOp::Txn(txn) => ec::TxnOp::txn(txn_request(txn)),
        })
        .collect()
}

/// A compare, tested against the member of its target's kind. A missing value, or one of
/// another kind, is the target's zero (0, or empty bytes), which is what etcd reads then.
fn compare(c: Compare) -> ec::Compare {
    let op = compare_op(c.result);
    let number = |value: Option<TargetValue>| match (c.target, value) {
        (CompareTarget::Version, Some(TargetValue::Version(n)))
        | (CompareTarget::Create, Some(TargetValue::CreateRevision(n)))
        | (CompareTarget::Mod, Some(TargetValue::ModRevision(n)))
        | (CompareTarget::Lease, Some(TargetValue::Lease(n))) => n,
        _ => 0,
    };
    let out = match c.target {
        CompareTarget::Version => ec::Compare::version(c.key, op, number(c.target_value)),
        CompareTarget::Create => ec::Compare::create_revision(c.key, op, number(c.target_value)),
        CompareTarget::Mod => ec::Compare::mod_revision(c.key, op, number(c.target_value)),
        CompareTarget::Lease => ec::Compare::lease(c.key, op, number(c.target_value)),
        CompareTarget::Value => {
            let value = match c.target_value {
                Some(TargetValue::Value(value)) => value,
                _ => Vec::new(),
            };
            ec::Compare::value(c.key, op, value)
        }
    };
    if c.range_end.is_empty() {
        out
    } else {
        out.with_range(c.range_end)
    }
}

fn compare_op(op: CompareOp) -> ec::CompareOp {
    match op {
        CompareOp::Equal => ec::CompareOp::Equal,
        CompareOp::Greater => ec::CompareOp::Greater,
        CompareOp::Less => ec::CompareOp::Less,
        CompareOp::NotEqual => ec::CompareOp::NotEqual,
    }
}

fn put_response(mut resp: ec::PutResponse) -> PutResponse {
    PutResponse { header: header(resp.take_header()), prev_kv: resp.take_prev_key().map(key_value) }
}

fn get_response(mut resp: ec::GetResponse) -> GetResponse {
    GetResponse {
        header: header(resp.take_header()),
        kvs: key_values(resp.take_kvs()),
        more: resp.more(),
        count: resp.count(),
    }
}

fn delete_response(mut resp: ec::DeleteResponse) -> DeleteResponse {
    DeleteResponse {
        header: header(resp.take_header()),
        deleted: resp.deleted(),
        prev_kvs: key_values(resp.take_prev_kvs()),
    }
}

/// A txn's answer, nested answers with the headers the server gave them. `etcd-client`
/// hands the op responses out only as copies.
fn txn_response(mut resp: ec::TxnResponse) -> TxnResponse {
    let responses = resp
        .op_responses()
        .into_iter()
        .map(|op| match op {
            ec::TxnOpResponse::Put(r) => TxnOpResponse::Put(put_response(r)),
            ec::TxnOpResponse::Get(r) => TxnOpResponse::Get(get_response(r)),
            ec::TxnOpResponse::Delete(r) => TxnOpResponse::Delete(delete_response(r)),
            ec::TxnOpResponse::Txn(r) => TxnOpResponse::Txn(txn_response(r)),
        })
        .collect();
    TxnResponse { header: header(resp.take_header()), succeeded: resp.succeeded(), responses }
}

// ---------------------------------------------------------------------------------------
// Watch
// ---------------------------------------------------------------------------------------

/// Opens a watch stream with one watch of `key`.
pub(crate) async fn watch(
    remote: &Remote,
    key: Vec<u8>,
    options: Option<WatchOptions>,
) -> Result<WatchStream> {
    remote
        .call(Retry::Idempotent, |mut client| {
            let key = key.clone();
            let options = options.clone();
            async move {
                let client = &mut client;
                let (key, options) = watch_args(key, options);
                Ok(WatchStream::remote(client.watch(key, Some(options)).await?))
            }
        })
        .await
}

/// What `etcd-client`'s `watch(key, Some(options))` takes for our `options` on `key`: the
/// key and range our options resolve to, and every field of the create request.
pub(crate) fn watch_args(key: Vec<u8>, options: Option<WatchOptions>) -> (Vec<u8>, ec::WatchOptions) {
    let options = options.unwrap_or_default();
    let fragment = options.fragment();
    let req = options.into_request(key);
    let mut out = ec::WatchOptions::new().with_start_revision(req.start_revision).with_watch_id(req.watch_id);
    if !req.range_end.is_empty() {
        out = out.with_range(req.range_end);
    }
    if req.progress_notify {
        out = out.with_progress_notify();
    }
    if !req.filters.is_empty() {
        let filters: Vec<ec::WatchFilterType> = req.filters.into_iter().map(watch_filter).collect();
        out = out.with_filters(filters);
    }
    if req.prev_kv {
        out = out.with_prev_key();
    }
    if fragment {
        out = out.with_fragment();
    }
    (req.key, out)
}

fn watch_filter(filter: WatchFilterType) -> ec::WatchFilterType {
    match filter {
        WatchFilterType::NoPut => ec::WatchFilterType::NoPut,
        WatchFilterType::NoDelete => ec::WatchFilterType::NoDelete,
    }
}

/// One message of a watch stream. `etcd-client` 0.21 does not expose `fragment` (it
/// reassembles nothing either), so it stays false; the events are only lent, so their
/// key-values are copied.
pub(crate) fn watch_response(mut resp: ec::WatchResponse) -> WatchResponse {
    WatchResponse {
        header: header(resp.take_header()),
        watch_id: resp.watch_id(),
        created: resp.created(),
        canceled: resp.canceled(),
        compact_revision: resp.compact_revision(),
        cancel_reason: resp.cancel_reason().to_owned(),
        fragment: false,
        events: resp.events().iter().map(event).collect(),
    }
}

fn event(event: &ec::Event) -> Event {
    let event_type = match event.event_type() {
        ec::EventType::Put => EventType::Put,
        ec::EventType::Delete => EventType::Delete,
    };
    Event {
        event_type,
        kv: event.kv().cloned().map(key_value),
        prev_kv: event.prev_kv().cloned().map(key_value),
    }
}

// ---------------------------------------------------------------------------------------
// Lease
// ---------------------------------------------------------------------------------------

pub(crate) async fn lease_grant(
    remote: &Remote,
    ttl: i64,
    options: Option<LeaseGrantOptions>,
) -> Result<LeaseGrantResponse> {
    remote
        .call(Retry::Unsent, |mut client| async move {
            let client = &mut client;
            let id = options.map_or(0, |o| o.id());
            let mut resp = client.lease_grant(ttl, Some(ec::LeaseGrantOptions::new().with_id(id))).await?;
            Ok(LeaseGrantResponse {
                header: header(resp.take_header()),
                id: resp.id(),
                ttl: resp.ttl(),
                error: resp.error().to_owned(),
            })
        })
        .await
}

header_only_call!(lease_revoke, lease_revoke, LeaseRevokeResponse, Unsent, (id: i64));

/// Opens a keep-alive stream; `etcd-client` renews the lease once and fails with
/// `LeaseKeepAliveError` for an unknown lease, as the in-process backend does.
pub(crate) async fn lease_keep_alive(
    remote: &Remote,
    id: i64,
) -> Result<(LeaseKeeper, LeaseKeepAliveStream)> {
    remote
        .call(Retry::Idempotent, |mut client| async move {
            let client = &mut client;
            let (keeper, stream) = client.lease_keep_alive(id).await?;
            Ok((LeaseKeeper::remote(keeper), LeaseKeepAliveStream::remote(stream)))
        })
        .await
}

/// One answer of a keep-alive stream.
pub(crate) fn keep_alive_response(mut resp: ec::LeaseKeepAliveResponse) -> LeaseKeepAliveResponse {
    LeaseKeepAliveResponse { header: header(resp.take_header()), id: resp.id(), ttl: resp.ttl() }
}

pub(crate) async fn lease_time_to_live(
    remote: &Remote,
    id: i64,
    options: Option<LeaseTimeToLiveOptions>,
) -> Result<LeaseTimeToLiveResponse> {
    remote
        .call(Retry::Idempotent, |mut client| async move {
            let client = &mut client;
            let mut out = ec::LeaseTimeToLiveOptions::new();
            if options.is_some_and(|o| o.keys()) {
                out = out.with_keys();
            }
            let mut resp = client.lease_time_to_live(id, Some(out)).await?;
            Ok(LeaseTimeToLiveResponse {
                header: header(resp.take_header()),
                id: resp.id(),
                ttl: resp.ttl(),
                granted_ttl: resp.granted_ttl(),
                keys: resp.keys().to_vec(),
            })
        })
        .await
}

pub(crate) async fn leases(remote: &Remote) -> Result<LeaseLeasesResponse> {
    remote
        .call(Retry::Idempotent, |mut client| async move {
            let client = &mut client;
            let mut resp = client.leases().await?;
            Ok(LeaseLeasesResponse {
                header: header(resp.take_header()),
                leases: resp.leases().iter().map(|l| LeaseStatus { id: l.id() }).collect(),
            })
        })
        .await
}

// ---------------------------------------------------------------------------------------
// Lock and Election
// ---------------------------------------------------------------------------------------

pub(crate) async fn lock(remote: &Remote, name: Vec<u8>, options: LockOptions) -> Result<LockResponse> {
    remote
        .call(Retry::Unsent, |mut client| {
            let name = name.clone();
            async move {
                let client = &mut client;
                let mut resp =
                    client.lock(name, Some(ec::LockOptions::new().with_lease(options.lease))).await?;
                Ok(LockResponse { header: header(resp.take_header()), key: resp.key().to_vec() })
            }
        })
        .await
}

header_only_call!(unlock, unlock, UnlockResponse, Unsent, (key: Vec<u8>));

pub(crate) async fn campaign(
    remote: &Remote,
    name: Vec<u8>,
    value: Vec<u8>,
    lease: i64,
) -> Result<CampaignResponse> {
    remote
        .call(Retry::Unsent, |mut client| {
            let name = name.clone();
            let value = value.clone();
            async move {
                let client = &mut client;
                let mut resp = client.campaign(name, value, lease).await?;
                Ok(CampaignResponse {
                    header: header(resp.take_header()),
                    leader: resp.leader().map(leader_key),
                })
            }
        })
        .await
}

pub(crate) async fn proclaim(
    remote: &Remote,
    value: Vec<u8>,
    options: ProclaimOptions,
) -> Result<ProclaimResponse> {
    remote
        .call(Retry::Unsent, |mut client| {
            let value = value.clone();
            let options = options.clone();
            async move {
                let client = &mut client;
                let mut out = ec::ProclaimOptions::new();
                if let Some(leader) = options.leader {
                    out = out.with_leader(remote_leader_key(leader));
                }
                let mut resp = client.proclaim(value, Some(out)).await?;
                Ok(ProclaimResponse { header: header(resp.take_header()) })
            }
        })
        .await
}

pub(crate) async fn leader(remote: &Remote, name: Vec<u8>) -> Result<LeaderResponse> {
    remote
        .call(Retry::Idempotent, |mut client| {
            let name = name.clone();
            async move {
                let client = &mut client;
                Ok(leader_response(client.leader(name).await?))
            }
        })
        .await
}

/// A leader answer, from `leader` or one message of an observe stream.
pub(crate) fn leader_response(mut resp: ec::LeaderResponse) -> LeaderResponse {
    LeaderResponse { header: header(resp.take_header()), kv: resp.take_kv().map(key_value) }
}

pub(crate) async fn resign(remote: &Remote, options: ResignOptions) -> Result<ResignResponse> {
    remote
        .call(Retry::Unsent, |mut client| {
            let options = options.clone();
            async move {
                let client = &mut client;
                let mut out = ec::ResignOptions::new();
                if let Some(leader) = options.leader {
                    out = out.with_leader(remote_leader_key(leader));
                }
                let mut resp = client.resign(Some(out)).await?;
                Ok(ResignResponse { header: header(resp.take_header()) })
            }
        })
        .await
}

fn leader_key(key: &ec::LeaderKey) -> LeaderKey {
    LeaderKey { name: key.name().to_vec(), key: key.key().to_vec(), rev: key.rev(), lease: key.lease() }
}

fn remote_leader_key(key: LeaderKey) -> ec::LeaderKey {
    ec::LeaderKey::new().with_name(key.name).with_key(key.key).with_rev(key.rev).with_lease(key.lease)
}

// ---------------------------------------------------------------------------------------
// Maintenance
// ---------------------------------------------------------------------------------------

pub(crate) async fn alarm(
    remote: &Remote,
    action: AlarmAction,
    alarm: AlarmType,
    member: u64,
) -> Result<AlarmResponse> {
    remote
        .call(
            if action == AlarmAction::Get { Retry::Idempotent } else { Retry::Unsent },
            |mut client| async move {
                let client = &mut client;
                let action = match action {
                    AlarmAction::Get => ec::AlarmAction::Get,
                    AlarmAction::Activate => ec::AlarmAction::Activate,
                    AlarmAction::Deactivate => ec::AlarmAction::Deactivate,
                };
                let mut options = ec::AlarmOptions::new();
                options.with_member(member);
                let mut resp = client.alarm(action, remote_alarm_type(alarm), Some(options)).await?;
                let alarms = resp
                    .alarms()
                    .iter()
                    .map(|a| AlarmMember { member_id: a.member_id(), alarm: alarm_type(a.alarm()) })
                    .collect();
                Ok(AlarmResponse { header: header(resp.take_header()), alarms })
            },
        )
        .await
}

fn alarm_type(alarm: ec::AlarmType) -> AlarmType {
    match alarm {
        ec::AlarmType::None => AlarmType::None,
        ec::AlarmType::Nospace => AlarmType::Nospace,
        ec::AlarmType::Corrupt => AlarmType::Corrupt,
    }
}

fn remote_alarm_type(alarm: AlarmType) -> ec::AlarmType {
    match alarm {
        AlarmType::None => ec::AlarmType::None,
        AlarmType::Nospace => ec::AlarmType::Nospace,
        AlarmType::Corrupt => ec::AlarmType::Corrupt,
    }
}

pub(crate) async fn status(remote: &Remote) -> Result<StatusResponse> {
    remote
        .call(Retry::Idempotent, |mut client| async move {
            let client = &mut client;
            let mut resp = client.status().await?;
            Ok(StatusResponse {
                header: header(resp.take_header()),
                version: resp.version().to_owned(),
                db_size: resp.db_size(),
                leader: resp.leader(),
                raft_index: resp.raft_index(),
                raft_term: resp.raft_term(),
                raft_applied_index: resp.raft_applied_index(),
                errors: resp.errors().to_vec(),
                raft_used_db_size: resp.raft_used_db_size(),
                is_learner: resp.is_learner(),
                storage_version: resp.storage_version().to_owned(),
                db_size_quota: resp.db_size_quota(),
                downgrade_info: resp.downgrade_info().map(|d| DowngradeInfo {
                    enabled: d.enabled(),
                    target_version: d.target_version().to_owned(),
                }),
            })
        })
        .await
}

header_only_call!(defragment, defragment, DefragmentResponse, Idempotent, ());

pub(crate) async fn hash(remote: &Remote) -> Result<HashResponse> {
    remote
        .call(Retry::Idempotent, |mut client| async move {
            let client = &mut client;
            let mut resp = client.hash().await?;
            Ok(HashResponse { header: header(resp.take_header()), hash: resp.hash() })
        })
        .await
}

pub(crate) async fn hash_kv(remote: &Remote, revision: i64) -> Result<HashKvResponse> {
    remote
        .call(Retry::Idempotent, |mut client| async move {
            let client = &mut client;
            let mut resp = client.hash_kv(revision).await?;
            Ok(HashKvResponse {
                header: header(resp.take_header()),
                hash: resp.hash(),
                compact_revision: resp.compact_version(),
                hash_revision: resp.hash_revision(),
            })
        })
        .await
}

/// One chunk of a snapshot stream (its blob is only lent, so it is copied).
pub(crate) fn snapshot_response(mut resp: ec::SnapshotResponse) -> SnapshotResponse {
    SnapshotResponse {
        header: header(resp.take_header()),
        remaining_bytes: resp.remaining_bytes(),
        blob: resp.blob().to_vec(),
        version: resp.version().to_owned(),
    }
}

header_only_call!(move_leader, move_leader, MoveLeaderResponse, Unsent, (target_id: u64));

pub(crate) async fn downgrade(remote: &Remote, options: DowngradeOptions) -> Result<DowngradeResponse> {
    remote
        .call(Retry::Unsent, |mut client| {
            let options = options.clone();
            async move {
                let client = &mut client;
                let options = match options {
                    DowngradeOptions::Validate(version) => ec::DowngradeOptions::Validate(version),
                    DowngradeOptions::Enable(version) => ec::DowngradeOptions::Enable(version),
                    DowngradeOptions::Cancel => ec::DowngradeOptions::Cancel,
                };
                // `Client` has no `downgrade` of its own: it is the Maintenance service's.
                let mut resp = client.maintenance_client().downgrade(options).await?;
                Ok(DowngradeResponse {
                    header: header(resp.take_header()),
                    version: resp.version().to_owned(),
                })
            }
        })
        .await
}

// ---------------------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------------------

/// Adds a member. Through the Cluster service, not `Client::member_add`, which would add
/// `http://` to URLs without a scheme: our `Client` has done that already, and our
/// `ClusterClient`, like `etcd-client`'s, sends the URLs as given.
pub(crate) async fn member_add(
    remote: &Remote,
    urls: Vec<String>,
    options: MemberAddOptions,
) -> Result<MemberAddResponse> {
    remote
        .call(Retry::Unsent, |mut client| {
            let urls = urls.clone();
            async move {
                let client = &mut client;
                let mut out = ec::MemberAddOptions::new();
                if options.is_learner {
                    out = out.with_is_learner();
                }
                let mut resp = client.cluster_client().member_add(urls, Some(out)).await?;
                Ok(MemberAddResponse {
                    header: header(resp.take_header()),
                    member: resp.member().map(member),
                    members: members(resp.member_list()),
                })
            }
        })
        .await
}

pub(crate) async fn member_remove(remote: &Remote, id: u64) -> Result<MemberRemoveResponse> {
    remote
        .call(Retry::Unsent, |mut client| async move {
            let client = &mut client;
            let mut resp = client.member_remove(id).await?;
            Ok(MemberRemoveResponse { header: header(resp.take_header()), members: members(resp.members()) })
        })
        .await
}

pub(crate) async fn member_update(
    remote: &Remote,
    id: u64,
    urls: Vec<String>,
) -> Result<MemberUpdateResponse> {
    remote
        .call(Retry::Unsent, |mut client| {
            let urls = urls.clone();
            async move {
                let client = &mut client;
                let mut resp = client.member_update(id, urls).await?;
                Ok(MemberUpdateResponse {
                    header: header(resp.take_header()),
                    members: members(resp.members()),
                })
            }
        })
        .await
}

pub(crate) async fn member_list(remote: &Remote) -> Result<MemberListResponse> {
    remote
        .call(Retry::Idempotent, |mut client| async move {
            let client = &mut client;
            let mut resp = client.member_list().await?;
            Ok(MemberListResponse { header: header(resp.take_header()), members: members(resp.members()) })
        })
        .await
}

pub(crate) async fn member_promote(remote: &Remote, id: u64) -> Result<MemberPromoteResponse> {
    remote
        .call(Retry::Unsent, |mut client| async move {
            let client = &mut client;
            let mut resp = client.member_promote(id).await?;
            Ok(MemberPromoteResponse { header: header(resp.take_header()), members: members(resp.members()) })
        })
        .await
}

fn member(m: &ec::Member) -> Member {
    Member {
        id: m.id(),
        name: m.name().to_owned(),
        peer_urls: m.peer_urls().to_vec(),
        client_urls: m.client_urls().to_vec(),
        is_learner: m.is_learner(),
    }
}

fn members(members: &[ec::Member]) -> Vec<Member> {
    members.iter().map(member).collect()
}

// ---------------------------------------------------------------------------------------
// Auth
// ---------------------------------------------------------------------------------------

header_only_call!(auth_enable, auth_enable, AuthEnableResponse, Unsent, ());

header_only_call!(auth_disable, auth_disable, AuthDisableResponse, Unsent, ());

/// AuthStatus: the etcd-client crate (0.21) has no such call, so a remote client cannot
/// make it.
pub(crate) async fn auth_status(_remote: &Remote) -> Result<super::auth::AuthStatusResponse> {
    Err(Status::unimplemented(
        "etcdlite: the etcd-client crate has no AuthStatus call; it is in-process only",
    )
    .into())
}

/// Asks for a token for `name` (the Auth service's call: it changes nothing in the
/// client's own credentials, as in `etcd-client`).
pub(crate) async fn authenticate(
    remote: &Remote,
    name: String,
    password: String,
) -> Result<AuthenticateResponse> {
    remote
        .call(Retry::Idempotent, |mut client| {
            let name = name.clone();
            let password = password.clone();
            async move {
                let client = &mut client;
                let mut resp = client.auth_client().authenticate(name, password).await?;
                Ok(AuthenticateResponse {
                    header: header(resp.take_header()),
                    token: resp.token().to_owned(),
                })
            }
        })
        .await
}

header_only_call!(role_add, role_add, RoleAddResponse, Unsent, (name: String));

header_only_call!(role_delete, role_delete, RoleDeleteResponse, Unsent, (name: String));

/// A role's permissions, their prefix and from-key forms recognised as `etcd-client`
/// recognises them. A permission type etcd does not define fails the call rather than
/// being reported as some other type.
pub(crate) async fn role_get(remote: &Remote, name: String) -> Result<RoleGetResponse> {
    remote
        .call(Retry::Idempotent, |mut client| {
            let name = name.clone();
            async move {
                let client = &mut client;
                let mut resp = client.role_get(name.as_str()).await?;
                let permissions = resp
                    .permissions()
                    .into_iter()
                    .map(|p| {
                        let perm_type = PermissionType::from_i32(p.get_type()).ok_or_else(|| {
                            Error::Internal(format!(
                                "role {name:?} has a permission of unknown type {}",
                                p.get_type()
                            ))
                        })?;
                        Ok(Permission::listed(perm_type, p.key().to_vec(), p.range_end().to_vec()))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(RoleGetResponse { header: header(resp.take_header()), permissions })
            }
        })
        .await
}

pub(crate) async fn role_list(remote: &Remote) -> Result<RoleListResponse> {
    remote
        .call(Retry::Idempotent, |mut client| async move {
            let client = &mut client;
            let mut resp = client.role_list().await?;
            Ok(RoleListResponse { header: header(resp.take_header()), roles: resp.roles().to_vec() })
        })
        .await
}

/// Grants `perm`, sent as the key and range end it resolves to, so `etcd-client` has no
/// prefix or from-key left to work out.
pub(crate) async fn role_grant_permission(
    remote: &Remote,
    name: String,
    perm: Permission,
) -> Result<RoleGrantPermissionResponse> {
    remote
        .call(Retry::Unsent, |mut client| {
            let name = name.clone();
            let perm = perm.clone();
            async move {
                let client = &mut client;
                let perm_type = match perm.perm_type {
                    PermissionType::Read => ec::PermissionType::Read,
                    PermissionType::Write => ec::PermissionType::Write,
                    PermissionType::Readwrite => ec::PermissionType::Readwrite,
                };
                let (key, range_end) = perm.resolved();
                let mut out = ec::Permission::new(perm_type, key);
                if !range_end.is_empty() {
                    out = out.with_range_end(range_end);
                }
                let mut resp = client.role_grant_permission(name, out).await?;
                Ok(RoleGrantPermissionResponse { header: header(resp.take_header()) })
            }
        })
        .await
}

/// Revokes the permission over `key` and `range_end`, already resolved.
pub(crate) async fn role_revoke_permission(
    remote: &Remote,
    name: String,
    key: Vec<u8>,
    range_end: Vec<u8>,
) -> Result<RoleRevokePermissionResponse> {
    remote
        .call(Retry::Unsent, |mut client| {
            let name = name.clone();
            let key = key.clone();
            let range_end = range_end.clone();
            async move {
                let client = &mut client;
                let mut options = ec::RoleRevokePermissionOptions::new();
                if !range_end.is_empty() {
                    options = options.with_range_end(range_end);
                }
                let mut resp = client.role_revoke_permission(name, key, Some(options)).await?;
                Ok(RoleRevokePermissionResponse { header: header(resp.take_header()) })
            }
        })
        .await
}

pub(crate) async fn user_add(
    remote: &Remote,
    name: String,
    password: String,
    options: UserAddOptions,
) -> Result<UserAddResponse> {
    remote
        .call(Retry::Unsent, |mut client| {
            let name = name.clone();
            let password = password.clone();
            async move {
                let client = &mut client;
                let mut out = ec::UserAddOptions::new();
                if options.no_password {
                    out = out.with_no_pwd();
                }
                let mut resp = client.user_add(name, password, Some(out)).await?;
                Ok(UserAddResponse { header: header(resp.take_header()) })
            }
        })
        .await
}

pub(crate) async fn user_get(remote: &Remote, name: String) -> Result<UserGetResponse> {
    remote
        .call(Retry::Idempotent, |mut client| {
            let name = name.clone();
            async move {
                let client = &mut client;
                let mut resp = client.user_get(name).await?;
                Ok(UserGetResponse { header: header(resp.take_header()), roles: resp.roles().to_vec() })
            }
        })
        .await
}

pub(crate) async fn user_list(remote: &Remote) -> Result<UserListResponse> {
    remote
        .call(Retry::Idempotent, |mut client| async move {
            let client = &mut client;
            let mut resp = client.user_list().await?;
            Ok(UserListResponse { header: header(resp.take_header()), users: resp.users().to_vec() })
        })
        .await
}

header_only_call!(user_delete, user_delete, UserDeleteResponse, Unsent, (name: String));

header_only_call!(user_change_password, user_change_password, UserChangePasswordResponse, Unsent, (name: String, password: String));

header_only_call!(user_grant_role, user_grant_role, UserGrantRoleResponse, Unsent, (user: String, role: String));

header_only_call!(user_revoke_role, user_revoke_role, UserRevokeRoleResponse, Unsent, (user: String, role: String));

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::options::GetOptions;
    use crate::{DeleteOptions, PutOptions};

    /// Asserts that `value`'s `Debug` text holds each of `parts`. `etcd-client`'s option
    /// and request types show their fields only that way (prost's `Debug`, for the protobuf
    /// messages), so that is where the request conversions are checked.
    #[track_caller]
    fn assert_shows(value: impl std::fmt::Debug, parts: &[&str]) {
        let text = format!("{value:?}");
        for part in parts {
            assert!(text.contains(part), "{part:?} not in {text}");
        }
    }

    #[test]
    fn errors_keep_their_variant_and_a_status_its_code_and_message() {
        let status = tonic::Status::new(tonic::Code::NotFound, "etcdserver: requested lease not found");
        let Error::GRpcStatus(status) = Error::from(ec::Error::GRpcStatus(status)) else {
            panic!("not a status")
        };
        assert_eq!(status.code(), Code::NotFound);
        assert!(status.code() == tonic::Code::NotFound);
        assert_eq!(status.message(), "etcdserver: requested lease not found");

        let text = |e: ec::Error| match Error::from(e) {
            Error::InvalidArgs(e) => format!("InvalidArgs {e}"),
            Error::WatchError(e) => format!("WatchError {e}"),
            Error::LeaseKeepAliveError(e) => format!("LeaseKeepAliveError {e}"),
            Error::ElectError(e) => format!("ElectError {e}"),
            Error::EndpointError(e) => format!("EndpointError {e}"),
            Error::EndpointsNotManaged => "EndpointsNotManaged".to_owned(),
            Error::Internal(e) => format!("Internal {e}"),
            Error::InvalidMetadataValue(e) => format!("InvalidMetadataValue {e}"),
            other => format!("other {other}"),
        };
        assert_eq!(text(ec::Error::InvalidArgs("a".into())), "InvalidArgs a");
        assert_eq!(text(ec::Error::WatchError("w".into())), "WatchError w");
        assert_eq!(text(ec::Error::LeaseKeepAliveError("gone".into())), "LeaseKeepAliveError gone");
        assert_eq!(text(ec::Error::ElectError("e".into())), "ElectError e");
        assert_eq!(text(ec::Error::EndpointError("x".into())), "EndpointError x");
        assert_eq!(text(ec::Error::EndpointsNotManaged), "EndpointsNotManaged");
        assert_eq!(text(ec::Error::Internal("i".into())), "Internal i");
        let invalid = tonic::metadata::MetadataValue::<tonic::metadata::Ascii>::try_from("a\nb").unwrap_err();
        let expected = format!("InvalidMetadataValue {invalid}");
        assert_eq!(text(ec::Error::InvalidMetadataValue(invalid)), expected);

        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let Error::IoError(reset) = Error::from(ec::Error::IoError(reset)) else {
            panic!("not an I/O error")
        };
        assert_eq!(reset.kind(), std::io::ErrorKind::ConnectionReset);
        let utf8 = String::from_utf8(vec![0xff]).unwrap_err().utf8_error();
        assert!(matches!(Error::from(ec::Error::Utf8Error(utf8)), Error::Utf8Error(e) if e == utf8));
    }

    #[tokio::test]
    async fn endpoints_refused_before_connecting_answer_etcd_clients_errors() {
        let Err(error) = super::super::Client::connect(["http://bad uri"], None).await else {
            panic!("an endpoint with a space connected")
        };
        assert!(matches!(&error, Error::InvalidUri(e) if !e.is_empty()), "{error}");
        let Err(error) = super::super::Client::connect(Vec::<&str>::new(), None).await else {
            panic!("no endpoints connected")
        };
        assert!(matches!(&error, Error::InvalidArgs(e) if e == "empty endpoints"), "{error}");
    }

    #[test]
    fn codes_convert_both_ways_with_grpcs_numbers() {
        for number in 0..17 {
            let code = Code::from_i32(number);
            let tonic_code = tonic::Code::from(code);
            assert_eq!(tonic_code as i32, number);
            assert!(code == tonic_code);
            assert!(tonic_code == code);
            assert_eq!(Code::from(tonic_code), code);
        }
        assert!(Code::NotFound != tonic::Code::Ok);
        assert_eq!(Code::from(tonic::Code::from_i32(99)), Code::Unknown);
        let status = Status::from(tonic::Status::new(tonic::Code::OutOfRange, "compacted"));
        assert_eq!(status, Status::new(Code::OutOfRange, "compacted"));
    }

    #[test]
    fn watch_args_send_the_resolved_key_and_range() {
        // The range goes in as a plain range: no prefix or from-key for etcd-client to redo.
        let plain = "with_prefix: false, with_from_key: false, with_all_keys: false";
        let (key, options) = watch_args(b"a".to_vec(), Some(WatchOptions::new().with_prefix()));
        assert_eq!(key, b"a");
        assert_shows(&options, &["key_range: KeyRange { key: [], range_end: [98], ", plain]);

        let (key, options) = watch_args(b"a".to_vec(), Some(WatchOptions::new().with_from_key()));
        assert_eq!(key, b"a");
        assert_shows(&options, &["range_end: [0], ", plain]);
        let (key, options) = watch_args(Vec::new(), Some(WatchOptions::new().with_from_key()));
        assert_eq!(key, [0]);
        assert_shows(&options, &["range_end: [0], ", plain]);

        let (key, options) = watch_args(b"k".to_vec(), None);
        assert_eq!(key, b"k");
        assert_shows(&options, &["range_end: [], ", plain]);

        let every = WatchOptions::new()
            .with_start_revision(7)
            .with_progress_notify()
            .with_filters([WatchFilterType::NoDelete, WatchFilterType::NoPut])
            .with_prev_key()
            .with_watch_id(3)
            .with_fragment();
        let (_, options) = watch_args(b"k".to_vec(), Some(every));
        assert_shows(
            &options,
            &[
                "start_revision: 7, progress_notify: true, filters: [Nodelete, Noput], prev_kv: true",
                "watch_id: 3, fragment: true",
            ],
        );
    }

    #[test]
    fn a_compare_without_a_value_of_its_kind_tests_the_zero_value() {
        let compare_of = |target, target_value| {
            let key = b"k".to_vec();
            compare(Compare { result: CompareOp::Less, target, key, target_value, range_end: Vec::new() })
        };
        let wrong_kind = compare_of(CompareTarget::Value, Some(TargetValue::Lease(3)));
        assert_shows(
            wrong_kind,
            &["result: Less, target: Value, key: [107], range_end: [], target_union: Some(Value([]))"],
        );
        assert_shows(compare_of(CompareTarget::Version, None), &["target_union: Some(Version(0))"]);
        let wrong_kind = compare_of(CompareTarget::Create, Some(TargetValue::Version(4)));
        assert_shows(wrong_kind, &["target_union: Some(CreateRevision(0))"]);
        let right_kind = compare_of(CompareTarget::Mod, Some(TargetValue::ModRevision(5)));
        assert_shows(
            right_kind,
            &["target: Mod, key: [107], range_end: [], target_union: Some(ModRevision(5))"],
        );
        assert_shows(
            compare_of(CompareTarget::Lease, Some(TargetValue::Lease(6))),
            &["target_union: Some(Lease(6))"],
        );
        let ranged = compare(Compare::value("a", CompareOp::NotEqual, "v").with_prefix());
        assert_shows(
            ranged,
            &["result: NotEqual, target: Value, key: [97], range_end: [98], ", "Some(Value([118]))"],
        );
    }

    #[test]
    fn txns_keep_their_compares_and_nested_ops() {
        let inner = Txn::new()
            .when([Compare::version("n", CompareOp::Greater, 1)])
            .and_then([TxnOp::delete("n", Some(DeleteOptions::new().with_prefix().with_prev_key()))]);
        let txn = Txn::new()
            .when([Compare::create_revision("c", CompareOp::Equal, 2)])
            .and_then([
                TxnOp::put("p", "v", Some(PutOptions::new().with_lease(9).with_prev_key())),
                TxnOp::txn(inner),
            ])
            .or_else([TxnOp::get("g", None)]);
        assert_shows(
            txn_request(txn),
            &[
                "TxnRequest { compare: [Compare { result: Equal, target: Create, key: [99], range_end: [], \
                 target_union: Some(CreateRevision(2)) }]",
                "RequestPut(PutRequest { key: [112], value: [118], lease: 9, prev_kv: true, \
                 ignore_value: false, ignore_lease: false })",
                "RequestTxn(TxnRequest { compare: [Compare { result: Greater, target: Version, key: [110], \
                 range_end: [], target_union: Some(Version(1)) }]",
                "RequestDeleteRange(DeleteRangeRequest { key: [110], range_end: [111], prev_kv: true })",
                "failure: [RequestOp { request: Some(RequestRange(RangeRequest { key: [103], range_end: []",
            ],
        );
    }

    #[test]
    fn gets_sort_only_when_asked_and_keep_every_field() {
        let get = |options: GetOptions| get_args(options.into_request(b"k".to_vec())).1;
        assert_shows(get(GetOptions::new()), &["sort_order: None, sort_target: Key"]);
        let by_key_down = GetOptions::new().with_sort(SortTarget::Key, SortOrder::Descend);
        assert_shows(get(by_key_down), &["sort_order: Descend, sort_target: Key"]);
        let by_mod = GetOptions::new().with_sort(SortTarget::Mod, SortOrder::None);
        assert_shows(get(by_mod), &["sort_order: None, sort_target: Mod"]);
        let every = GetOptions::new()
            .with_range("m")
            .with_limit(2)
            .with_revision(3)
            .with_serializable()
            .with_keys_only()
            .with_count_only()
            .with_min_mod_revision(4)
            .with_max_mod_revision(5)
            .with_min_create_revision(6)
            .with_max_create_revision(7);
        assert_shows(
            get(every),
            &[
                "limit: 2, revision: 3",
                "serializable: true, keys_only: true, count_only: true",
                "min_mod_revision: 4, max_mod_revision: 5, min_create_revision: 6, max_create_revision: 7",
                "key_range: KeyRange { key: [], range_end: [109]",
            ],
        );
    }

    #[test]
    fn connect_options_carry_every_field() {
        let ours = ConnectOptions::new()
            .with_user("u", "p")
            .with_keep_alive(Duration::from_secs(1), Duration::from_secs(2))
            .with_keep_alive_while_idle(false)
            .with_timeout(Duration::from_secs(3))
            .with_connect_timeout(Duration::from_secs(4))
            .with_tcp_keepalive(Duration::from_secs(5))
            .with_require_leader(true)
            .with_auto_token_refresh(true);
        assert_shows(
            connect_options(ours),
            &[
                "user: Some((\"u\", \"p\"))",
                "keep_alive: Some((1s, 2s))",
                "keep_alive_while_idle: false",
                "timeout: Some(3s)",
                "connect_timeout: Some(4s)",
                "tcp_keepalive: Some(5s)",
                "require_leader: true",
                "refresh_expired_token: true",
            ],
        );
        // etcd-client's `default()` turns keep-alive while idle off; our default keeps it on.
        assert_shows(connect_options(ConnectOptions::new()), &["keep_alive_while_idle: true"]);
    }
}
