//! etcd's JSON gateway: the v3 API as JSON over HTTP/1.1 (`POST /v3/kv/range`, ...), as
//! etcd 3.5 serves it with grpc-gateway v1, on the gRPC port and over the same services.
//!
//! Every route decodes its JSON body into the request message, calls the very service
//! implementation gRPC calls, and writes the answer as etcd's gateway writes it:
//!
//! * a request is read as etcd reads it (`jsonpb.rs`, over Go's JSON rules in `gojson.rs`):
//!   the first JSON value of the body (an empty body is the empty request, data after the
//!   value is ignored), fields by proto or JSON name, 64-bit integers as numbers or
//!   strings, bytes as standard base64, enums by name or number, unknown fields and `null`s
//!   ignored, whatever the `Content-Type`; a body that is not the message's JSON is
//!   InvalidArgument (400) with Go's message (`illegal base64 data at input byte 4`,
//!   `json: cannot unmarshal number 1.5 into Go value of type int64`, ...);
//! * messages as proto3 JSON with the proto field names (`create_revision`, `TTL`,
//!   `dbSize`), 64-bit integers as strings, bytes as base64, enums by name, zero values
//!   left out, and `<`, `>`, `&` escaped as Go's encoder escapes them;
//! * an error as `{"error": msg, "code": grpc_code, "message": msg}` with the HTTP status
//!   grpc-gateway v1.16 maps the gRPC code to ([`http_status`]);
//! * streams (watch, lease keep-alive, snapshot, election observe) as newline-separated `{"result": msg}`
//!   objects, an error ending one as `{"error": {"grpc_code", "http_code", "message",
//!   "http_status"}}`; the response headers go out with the first message, as Go's
//!   response writer sends them; a request stream is a sequence of JSON values, each read
//!   once as it arrives, and one that is not a request ends it (the first one failing is
//!   an Unknown error, 500);
//! * an unknown `/v3/...` path is grpc-gateway's `404 Not Found`, any other path Go's
//!   `404 page not found`, and another method than POST on a known path `405 Method Not
//!   Allowed`, all as plain text; `OPTIONS` on any path is answered empty, and answers
//!   carry etcd's CORS headers as `--cors` says ([`Cors`]).
//!
//! The paths are etcd 3.5's, also under `/v3beta` as etcd 3.5 serves them. etcd 3.5 maps
//! both `Hash` and `HashKV` to `/v3/maintenance/hash`, where `Hash` wins; `HashKV` is
//! served at `/v3/maintenance/hashkv`, as etcd 3.6 serves it. A server presenting itself
//! as etcd 3.4 (`--etcd-version 3.4.x`) has no `/maintenance/downgrade`, as etcd 3.4 has
//! none.

mod cors;
mod gojson;
mod jsonpb;

pub use cors::Cors;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::handler::Handler;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::{any, MethodRouter};
use axum::Router;
use futures::{Stream, StreamExt};
use prost::Message;
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::node::{Credentials, Node};
use crate::pb::etcdserverpb as pb;
use crate::pb::etcdserverpb::auth_server::Auth;
use crate::pb::etcdserverpb::cluster_server::Cluster;
use crate::pb::etcdserverpb::kv_server::Kv;
use crate::pb::etcdserverpb::lease_server::Lease;
use crate::pb::etcdserverpb::maintenance_server::Maintenance;
use crate::pb::v3electionpb::election_server::Election;
use crate::pb::v3lockpb::lock_server::Lock;
use crate::status::too_large;
use crate::{
    AuthService, ClusterService, ElectionService, KvService, LeaseService, LockService, MaintenanceService,
    WatchService,
};

/// The path prefixes etcd 3.5 serves the gateway under.
const PREFIXES: [&str; 2] = ["/v3", "/v3beta"];

/// The largest JSON body read, as a multiple of the message size limit (base64 and JSON
/// make a message's JSON larger than its encoding).
const BODY_LIMIT_FACTOR: usize = 8;

/// The services the gateway calls: the same ones (over the same node) that gRPC serves.
#[derive(Clone)]
pub struct Services {
    /// `KV`.
    pub kv: KvService,
    /// `Watch`.
    pub watch: WatchService,
    /// `Lease`.
    pub lease: LeaseService,
    /// `Maintenance`.
    pub maintenance: MaintenanceService,
    /// `Cluster`.
    pub cluster: ClusterService,
    /// `v3lockpb.Lock`.
    pub lock: LockService,
    /// `v3electionpb.Election`.
    pub election: ElectionService,
    /// `Auth`.
    pub auth: AuthService,
    /// The largest request message accepted, as gRPC's decoding limit: a larger one gets
    /// ResourceExhausted, as etcd's gateway relays it from its gRPC server.
    pub max_message_bytes: usize,
}

impl Services {
    /// The services of `node`: `max_message_bytes` is the largest message decoded, and the
    /// watch fragment size (as in etcd, whose watch server splits at its gRPC limit).
    pub fn new(node: Arc<Node>, max_message_bytes: usize) -> Services {
        Services {
            kv: KvService::new(node.clone()),
            watch: WatchService::new(node.clone(), max_message_bytes),
            lease: LeaseService::new(node.clone()),
            maintenance: MaintenanceService::new(node.clone()),
            cluster: ClusterService::new(node.clone()),
            lock: LockService::new(node.clone()),
            election: ElectionService::new(node.clone()),
            auth: AuthService::new(node),
            max_message_bytes,
        }
    }
}

/// Every HTTP route of the server: the gateway's (`/v3/kv/range`, ...; see the module
/// documentation), and Go's `404 page not found` for any other path, CORS as `cors` says.
pub fn router(services: Services, cors: Cors) -> Router {
    let mut router = Router::new();
    for prefix in PREFIXES {
        let routes: [(&str, MethodRouter<Shared>); 51] = [
            ("/kv/range", endpoint(kv_range)),
            ("/kv/put", endpoint(kv_put)),
            ("/kv/deleterange", endpoint(kv_delete_range)),
            ("/kv/txn", endpoint(kv_txn)),
            ("/kv/compaction", endpoint(kv_compact)),
            ("/lease/grant", endpoint(lease_grant)),
            ("/lease/revoke", endpoint(lease_revoke)),
            ("/kv/lease/revoke", endpoint(lease_revoke)),
            ("/lease/timetolive", endpoint(lease_time_to_live)),
            ("/kv/lease/timetolive", endpoint(lease_time_to_live)),
            ("/lease/leases", endpoint(lease_leases)),
            ("/kv/lease/leases", endpoint(lease_leases)),
            ("/maintenance/alarm", endpoint(maintenance_alarm)),
            ("/maintenance/status", endpoint(maintenance_status)),
            ("/maintenance/defragment", endpoint(maintenance_defragment)),
            ("/maintenance/hash", endpoint(maintenance_hash)),
            ("/maintenance/hashkv", endpoint(maintenance_hash_kv)),
            ("/maintenance/transfer-leadership", endpoint(maintenance_move_leader)),
            // etcd 3.4's gateway has no such route: a server presenting itself as 3.4
            // answers it as an unknown path.
            (
                "/maintenance/downgrade",
                endpoint_while(maintenance_downgrade, |s| s.maintenance.has_downgrade()),
            ),
            ("/cluster/member/add", endpoint(cluster_member_add)),
            ("/cluster/member/remove", endpoint(cluster_member_remove)),
            ("/cluster/member/update", endpoint(cluster_member_update)),
            ("/cluster/member/list", endpoint(cluster_member_list)),
            ("/cluster/member/promote", endpoint(cluster_member_promote)),
            ("/lock/lock", endpoint(lock_lock)),
            ("/lock/unlock", endpoint(lock_unlock)),
            ("/election/campaign", endpoint(election_campaign)),
            ("/election/proclaim", endpoint(election_proclaim)),
            ("/election/leader", endpoint(election_leader)),
            ("/election/resign", endpoint(election_resign)),
            ("/election/observe", endpoint(election_observe)),
            ("/watch", endpoint(watch)),
            ("/lease/keepalive", endpoint(lease_keep_alive)),
            ("/maintenance/snapshot", endpoint(maintenance_snapshot)),
            ("/auth/enable", endpoint(auth_enable)),
            ("/auth/disable", endpoint(auth_disable)),
            ("/auth/status", endpoint(auth_status)),
            ("/auth/authenticate", endpoint(auth_authenticate)),
            ("/auth/user/add", endpoint(auth_user_add)),
            ("/auth/user/get", endpoint(auth_user_get)),
            ("/auth/user/list", endpoint(auth_user_list)),
            ("/auth/user/delete", endpoint(auth_user_delete)),
            ("/auth/user/changepw", endpoint(auth_user_change_password)),
            ("/auth/user/grant", endpoint(auth_user_grant_role)),
            ("/auth/user/revoke", endpoint(auth_user_revoke_role)),
            ("/auth/role/add", endpoint(auth_role_add)),
            ("/auth/role/get", endpoint(auth_role_get)),
            ("/auth/role/list", endpoint(auth_role_list)),
            ("/auth/role/delete", endpoint(auth_role_delete)),
            ("/auth/role/grant", endpoint(auth_role_grant_permission)),
            ("/auth/role/revoke", endpoint(auth_role_revoke_permission)),
        ];
        for (path, route) in routes {
            router = router.route(&format!("{prefix}{path}"), route);
        }
        router = router.route(&format!("{prefix}/{{*rest}}"), any(gateway_not_found));
    }
    router
        .fallback(not_found)
        .with_state(Arc::new(services))
        .layer(axum::middleware::from_fn_with_state(Arc::new(cors), with_cors))
}

type Shared = Arc<Services>;

/// A route: POST to `handler`, any other method refused (without the `Allow` header
/// axum's method routing would add, which etcd does not send).
fn endpoint<H, T>(handler: H) -> MethodRouter<Shared>
where
    H: Handler<T, Shared>,
    T: 'static,
{
    endpoint_while(handler, |_| true)
}

/// An [`endpoint`] that exists only while `exists` says so of the services; an unknown
/// path (whatever the method) otherwise.
fn endpoint_while<H, T>(handler: H, exists: fn(&Services) -> bool) -> MethodRouter<Shared>
where
    H: Handler<T, Shared>,
    T: 'static,
{
    any(move |State(services): State<Shared>, request: axum::extract::Request| {
        let handler = handler.clone();
        async move {
            if !exists(&services) {
                return gateway_not_found().await;
            }
            match *request.method() {
                Method::POST => handler.call(request, services).await,
                _ => plain_error(StatusCode::METHOD_NOT_ALLOWED, None),
            }
        }
    })
}

/// etcd's HTTP front (its access controller): `OPTIONS` to any path is an empty 200; every
/// answer gets the CORS headers `cors` allows the request's origin.
async fn with_cors(
    State(cors): State<Arc<Cors>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers().clone();
    let mut response = if request.method() == Method::OPTIONS {
        Response::new(Body::empty())
    } else {
        next.run(request).await
    };
    cors.apply(&headers, response.headers_mut());
    response
}

/// Go's `http.Error`: plain text, `text` (the status's reason by default) and a newline.
fn plain_error(status: StatusCode, text: Option<&str>) -> Response {
    let text = format!("{}\n", text.or(status.canonical_reason()).unwrap_or(""));
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// An unknown path under `/v3`: grpc-gateway's answer.
async fn gateway_not_found() -> Response {
    plain_error(StatusCode::NOT_FOUND, None)
}

/// Any other path: Go's `http.NotFound`, as etcd's HTTP mux answers it.
async fn not_found() -> Response {
    plain_error(StatusCode::NOT_FOUND, Some("404 page not found"))
}

// ---------------------------------------------------------------------------------------
// Unary calls.

/// Declares the handler of a unary call: decode, call the service, answer.
macro_rules! unary_handlers {
    ($($handler:ident: $service:ident, $method:path, $request:literal;)*) => {
        $(
            async fn $handler(State(services): State<Shared>, headers: HeaderMap, body: Body) -> Response {
                unary(&services, $request, &headers, body, |request| $method(&services.$service, request)).await
            }
        )*
    };
}

unary_handlers! {
    kv_range: kv, Kv::range, "etcdserverpb.RangeRequest";
    kv_put: kv, Kv::put, "etcdserverpb.PutRequest";
    kv_delete_range: kv, Kv::delete_range, "etcdserverpb.DeleteRangeRequest";
    kv_txn: kv, Kv::txn, "etcdserverpb.TxnRequest";
    kv_compact: kv, Kv::compact, "etcdserverpb.CompactionRequest";
    lease_grant: lease, Lease::lease_grant, "etcdserverpb.LeaseGrantRequest";
    lease_revoke: lease, Lease::lease_revoke, "etcdserverpb.LeaseRevokeRequest";
    lease_time_to_live: lease, Lease::lease_time_to_live, "etcdserverpb.LeaseTimeToLiveRequest";
    lease_leases: lease, Lease::lease_leases, "etcdserverpb.LeaseLeasesRequest";
    maintenance_alarm: maintenance, Maintenance::alarm, "etcdserverpb.AlarmRequest";
    maintenance_status: maintenance, Maintenance::status, "etcdserverpb.StatusRequest";
    maintenance_defragment: maintenance, Maintenance::defragment, "etcdserverpb.DefragmentRequest";
    maintenance_hash: maintenance, Maintenance::hash, "etcdserverpb.HashRequest";
    maintenance_hash_kv: maintenance, Maintenance::hash_kv, "etcdserverpb.HashKVRequest";
    maintenance_move_leader: maintenance, Maintenance::move_leader, "etcdserverpb.MoveLeaderRequest";
    maintenance_downgrade: maintenance, Maintenance::downgrade, "etcdserverpb.DowngradeRequest";
    cluster_member_add: cluster, Cluster::member_add, "etcdserverpb.MemberAddRequest";
    cluster_member_remove: cluster, Cluster::member_remove, "etcdserverpb.MemberRemoveRequest";
    cluster_member_update: cluster, Cluster::member_update, "etcdserverpb.MemberUpdateRequest";
    cluster_member_list: cluster, Cluster::member_list, "etcdserverpb.MemberListRequest";
    lock_lock: lock, Lock::lock, "v3lockpb.LockRequest";
    lock_unlock: lock, Lock::unlock, "v3lockpb.UnlockRequest";
    election_campaign: election, Election::campaign, "v3electionpb.CampaignRequest";
    election_proclaim: election, Election::proclaim, "v3electionpb.ProclaimRequest";
    election_leader: election, Election::leader, "v3electionpb.LeaderRequest";
    election_resign: election, Election::resign, "v3electionpb.ResignRequest";
    cluster_member_promote: cluster, Cluster::member_promote, "etcdserverpb.MemberPromoteRequest";
    auth_enable: auth, Auth::auth_enable, "etcdserverpb.AuthEnableRequest";
    auth_disable: auth, Auth::auth_disable, "etcdserverpb.AuthDisableRequest";
    auth_status: auth, Auth::auth_status, "etcdserverpb.AuthStatusRequest";
    auth_authenticate: auth, Auth::authenticate, "etcdserverpb.AuthenticateRequest";
    auth_user_add: auth, Auth::user_add, "etcdserverpb.AuthUserAddRequest";
    auth_user_get: auth, Auth::user_get, "etcdserverpb.AuthUserGetRequest";
    auth_user_list: auth, Auth::user_list, "etcdserverpb.AuthUserListRequest";
    auth_user_delete: auth, Auth::user_delete, "etcdserverpb.AuthUserDeleteRequest";
    auth_user_change_password: auth, Auth::user_change_password, "etcdserverpb.AuthUserChangePasswordRequest";
    auth_user_grant_role: auth, Auth::user_grant_role, "etcdserverpb.AuthUserGrantRoleRequest";
    auth_user_revoke_role: auth, Auth::user_revoke_role, "etcdserverpb.AuthUserRevokeRoleRequest";
    auth_role_add: auth, Auth::role_add, "etcdserverpb.AuthRoleAddRequest";
    auth_role_get: auth, Auth::role_get, "etcdserverpb.AuthRoleGetRequest";
    auth_role_list: auth, Auth::role_list, "etcdserverpb.AuthRoleListRequest";
    auth_role_delete: auth, Auth::role_delete, "etcdserverpb.AuthRoleDeleteRequest";
    auth_role_grant_permission: auth, Auth::role_grant_permission, "etcdserverpb.AuthRoleGrantPermissionRequest";
    auth_role_revoke_permission: auth, Auth::role_revoke_permission, "etcdserverpb.AuthRoleRevokePermissionRequest";
}

/// The request the gateway makes of a service: `message`, with the caller's credentials
/// (the `Authorization` header, and any `Grpc-Metadata-*` header, as grpc-gateway forwards
/// them) as its metadata.
fn grpc_request<T>(message: T, headers: &HeaderMap) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    for (name, value) in headers {
        let forwarded = if name == header::AUTHORIZATION {
            Some("authorization")
        } else {
            name.as_str().strip_prefix("grpc-metadata-")
        };
        let Some(key) = forwarded else { continue };
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::AsciiMetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::AsciiMetadataValue::try_from(value.as_bytes()),
        ) {
            metadata.insert(key, value);
        }
    }
    request
}

/// The credentials of a gateway request: its token. A client certificate names no user
/// through the gateway: etcd's gateway reaches its gRPC server as itself, whose
/// certificate's name etcd ignores.
fn credentials_of(headers: &HeaderMap) -> Credentials {
    Credentials::of(&grpc_request((), headers))
}

/// What a call through the gateway starts with: its deadline from `Grpc-Timeout`, and its
/// body decoded as `name`; or the answer that refuses it.
async fn read_call<Req: Message + Default>(
    services: &Services,
    name: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Option<Instant>, Req), Response> {
    let deadline = annotate(headers).map_err(|status| error_answer(&status, headers, Failed::Gateway))?;
    let request = read_unary(services.max_message_bytes, name, body).await.map_err(|e| e.answer(headers))?;
    Ok((deadline, request))
}

/// One unary call: the body decoded as `name` (InvalidArgument when it is not), `call`
/// made, its answer written.
async fn unary<Req, Resp, F, Fut>(
    services: &Services,
    name: &str,
    headers: &HeaderMap,
    body: Body,
    call: F,
) -> Response
where
    Req: Message + Default,
    Resp: Serialize,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
{
    let (deadline, request) = match read_call(services, name, headers, body).await {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    let answer = match within(deadline, call(grpc_request(request, headers))).await {
        Ok(answer) => answer,
        Err(status) => return error_answer(&status, headers, Failed::Gateway),
    };
    match answer {
        Ok(response) => match to_json(response.get_ref()) {
            Ok(json) => {
                let mut response = json_response(StatusCode::OK, Body::from(json));
                response
                    .headers_mut()
                    .insert(GRPC_METADATA_CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                response
            }
            Err(e) => error_answer(&Status::unknown(e.to_string()), headers, Failed::Gateway),
        },
        Err(status) => error_answer(&status, headers, Failed::Call),
    }
}

/// The header grpc-gateway derives from the gRPC response's `content-type`.
const GRPC_METADATA_CONTENT_TYPE: &str = "grpc-metadata-content-type";

/// The request of a unary call, read as grpc-gateway reads it: the body's first JSON value
/// (an empty body is the empty request; anything after the value is ignored).
async fn read_unary<T>(max_message_bytes: usize, name: &str, body: Body) -> Result<T, DecodeError>
where
    T: Message + Default,
{
    let mut values = RequestValues::new(body, max_message_bytes);
    values.next_request(name).await.unwrap_or_else(|| Ok(T::default()))
}

/// The request a whole unary body holds, read as the gateway reads one (its first JSON
/// value as message `name`, `etcdserverpb.RangeRequest` and so on; an empty body is the
/// empty request): the request, or the message of the InvalidArgument (or
/// ResourceExhausted, over `max_message_bytes`) the gateway answers with. The fuzz target
/// `gateway_json` drives every request type through it.
///
/// ```
/// use etcdlite_server::gateway::decode_request;
/// use etcdlite_server::pb::etcdserverpb::RangeRequest;
///
/// let req: RangeRequest = decode_request("etcdserverpb.RangeRequest", br#"{"key": "Zm9v", "limit": "2"}"#, 1024)?;
/// assert_eq!((req.key.as_slice(), req.limit), (&b"foo"[..], 2));
/// let bad = decode_request::<RangeRequest>("etcdserverpb.RangeRequest", br#"{"limit": 1.5}"#, 1024);
/// assert_eq!(bad.unwrap_err(), "json: cannot unmarshal number 1.5 into Go value of type int64");
/// # Ok::<(), String>(())
/// ```
pub fn decode_request<T: Message + Default>(
    name: &str,
    body: &[u8],
    max_message_bytes: usize,
) -> Result<T, String> {
    let value = match gojson::Values::default().next(body, true) {
        gojson::Next::Value(len) => gojson::trim(&body[..len]),
        gojson::Next::End | gojson::Next::More => return Ok(T::default()),
        gojson::Next::Error(message) => return Err(message),
    };
    decode(name, value, max_message_bytes).map_err(|e| match e {
        DecodeError::Invalid(message) => message,
        DecodeError::TooLarge(status) => status.message().to_owned(),
    })
}

/// Why a body does not hold a request.
enum DecodeError {
    /// Not the message's JSON: Go's message.
    Invalid(String),
    /// Larger than the gRPC server accepts.
    TooLarge(Status),
}

impl DecodeError {
    /// The answer of a unary call to the request with `headers`: a request etcd's gateway
    /// cannot read is InvalidArgument; one too large reaches its gRPC server, which fails
    /// the call.
    fn answer(self, headers: &HeaderMap) -> Response {
        match self {
            DecodeError::Invalid(message) => {
                error_answer(&Status::invalid_argument(message), headers, Failed::Gateway)
            }
            DecodeError::TooLarge(status) => error_answer(&status, headers, Failed::Call),
        }
    }
}

/// JSON `value` (one whole value) as request `name` (`etcdserverpb.RangeRequest`), read as
/// etcd's gateway reads it; refused when its encoding is over `max` bytes, as etcd's gRPC
/// server refuses it.
fn decode<T>(name: &str, value: &[u8], max: usize) -> Result<T, DecodeError>
where
    T: Message + Default,
{
    let encoded = jsonpb::SCHEMA.encode(name, value).map_err(DecodeError::Invalid)?;
    let message = T::decode(encoded.as_slice()).map_err(|e| DecodeError::Invalid(e.to_string()))?;
    let size = message.encoded_len();
    if size > max {
        return Err(DecodeError::TooLarge(too_large(size, max)));
    }
    Ok(message)
}

// ---------------------------------------------------------------------------------------
// Answers.

/// `message` as etcd's gateway writes it.
fn to_json<T: Serialize>(message: &T) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(message).map(go_escape)
}

/// Escapes what Go's JSON encoder escapes and serde's does not: `<`, `>`, `&`, U+2028 and
/// U+2029. They only occur inside strings of the encoded JSON, so each is replaced as is.
fn go_escape(json: Vec<u8>) -> Vec<u8> {
    let needs = |b: &u8| matches!(b, b'<' | b'>' | b'&' | 0xE2);
    if !json.iter().any(needs) {
        return json;
    }
    let mut out = Vec::with_capacity(json.len() + 16);
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            0xE2 if json.get(i + 1) == Some(&0x80) && matches!(json.get(i + 2), Some(0xA8 | 0xA9)) => {
                out.extend_from_slice(if json[i + 2] == 0xA8 { b"\\u2028" } else { b"\\u2029" });
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// A JSON answer with `status`.
fn json_response(status: StatusCode, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The HTTP status grpc-gateway (v1, as etcd 3.5 uses it) maps a gRPC code to.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A JSON string (escaped as Go escapes it).
fn json_string(s: &str) -> String {
    String::from_utf8(go_escape(serde_json::to_vec(s).unwrap_or_default())).unwrap_or_default()
}

/// The body of a failed call: `{"error": msg, "code": n, "message": msg}`, the message left
/// out when empty (grpc-gateway's `Error` message, zero fields omitted).
pub fn error_body(status: &Status) -> String {
    let code = status.code() as i32;
    if status.message().is_empty() {
        return format!("{{\"code\":{code}}}");
    }
    let message = json_string(status.message());
    format!("{{\"error\":{message},\"code\":{code},\"message\":{message}}}")
}

/// The chunk that ends a failed stream: `{"error": {"grpc_code", "http_code", "message",
/// "http_status"}}` (grpc-gateway's `StreamError`, zero fields omitted), no newline after.
pub fn stream_error_chunk(status: &Status) -> String {
    let http = http_status(status.code());
    let mut out =
        format!("{{\"error\":{{\"grpc_code\":{},\"http_code\":{}", status.code() as i32, http.as_u16());
    if !status.message().is_empty() {
        out.push_str(",\"message\":");
        out.push_str(&json_string(status.message()));
    }
    if let Some(reason) = http.canonical_reason() {
        out.push_str(",\"http_status\":");
        out.push_str(&json_string(reason));
    }
    out.push_str("}}");
    out
}

/// A failed call's answer.
fn error_response(status: &Status) -> Response {
    json_response(http_status(status.code()), Body::from(error_body(status)))
}

/// What failed, which decides the trailers of the answer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Failed {
    /// The gateway itself (a request it could not read, a deadline that passed): the call
    /// sent no answer.
    Gateway,
    /// The call: its trailers-only answer carried its content type.
    Call,
}

/// A failed call's answer as grpc-gateway writes it for the request with `headers`: to a
/// client whose `TE` accepts trailers, chunked, and after a failed call with the call's
/// content type as a `Grpc-Trailer-Content-Type` trailer (announced in `Trailer`).
fn error_answer(status: &Status, headers: &HeaderMap, failed: Failed) -> Response {
    let accepts_trailers = headers
        .get(header::TE)
        .and_then(|te| te.to_str().ok())
        .is_some_and(|te| te.to_ascii_lowercase().contains("trailers"));
    if !accepts_trailers {
        return error_response(status);
    }
    let (mut parts, _) = error_response(status).into_parts();
    let mut frames = vec![http_body::Frame::data(Bytes::from(error_body(status)))];
    if failed == Failed::Call {
        parts.headers.insert(header::TRAILER, HeaderValue::from_static("Grpc-Trailer-Content-Type"));
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-trailer-content-type", HeaderValue::from_static("application/grpc"));
        frames.push(http_body::Frame::trailers(trailers));
    }
    // A body of unknown length goes out chunked.
    let frames = futures::stream::iter(frames.into_iter().map(Ok::<_, Infallible>));
    Response::from_parts(parts, Body::new(http_body_util::StreamBody::new(frames)))
}

// ---------------------------------------------------------------------------------------
// What grpc-gateway reads from a request's headers before its body: the deadline
// (`Grpc-Timeout`) and the metadata (`Grpc-Metadata-*`).

/// The call's deadline ([`deadline`]), once the binary metadata headers
/// (`Grpc-Metadata-*-Bin`, base64 with or without padding) are checked as grpc-gateway
/// checks them: one that is not base64 is InvalidArgument.
fn annotate(headers: &HeaderMap) -> Result<Option<Instant>, Status> {
    let deadline = deadline(headers)?;
    for (name, value) in headers {
        let name = name.as_str();
        if !(name.starts_with("grpc-metadata-") && name.ends_with("-bin")) {
            continue;
        }
        let value = value.as_bytes();
        if let Err(at) = gojson::base64_decode(value, value.len() % 4 == 0) {
            return Err(Status::invalid_argument(format!(
                "invalid binary header {}: illegal base64 data at input byte {at}",
                canonical_header_name(name)
            )));
        }
    }
    Ok(deadline)
}

/// Go's canonical form of a header name: each word's first letter upper case, the rest
/// lower case (`Grpc-Metadata-Foo-Bin`).
fn canonical_header_name(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let c = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            c
        })
        .collect()
}

/// The status of a call whose deadline passed, as Go's gRPC client reports it.
fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("context deadline exceeded")
}

/// The deadline a request sets with `Grpc-Timeout` (grpc-gateway's header: an integer and a
/// unit, `H`, `M`, `S`, `m`, `u` or `n`), from now: `None` without one or with a zero one,
/// already passed with a negative one; a value grpc-gateway does not read is
/// InvalidArgument. As in Go, the product is taken in nanoseconds, wrapping.
fn deadline(headers: &HeaderMap) -> Result<Option<Instant>, Status> {
    let Some(value) = headers.get("grpc-timeout") else { return Ok(None) };
    let text = value.as_bytes();
    let invalid =
        || Status::invalid_argument(format!("invalid grpc-timeout: {}", String::from_utf8_lossy(text)));
    let (count, unit) = match text {
        [count @ .., unit] if !count.is_empty() => (count, unit),
        _ => return Err(invalid()),
    };
    let unit: i64 = match unit {
        b'H' => 3_600_000_000_000,
        b'M' => 60_000_000_000,
        b'S' => 1_000_000_000,
        b'm' => 1_000_000,
        b'u' => 1_000,
        b'n' => 1,
        _ => return Err(invalid()),
    };
    let count: i64 = std::str::from_utf8(count).ok().and_then(|c| c.parse().ok()).ok_or_else(invalid)?;
    let now = Instant::now();
    Ok(match unit.wrapping_mul(count) {
        0 => None,
        n if n < 0 => Some(now),
        n => Some(now + std::time::Duration::from_nanos(n.unsigned_abs())),
    })
}

/// The deadline of a bidirectional stream, or why it fails at once: a deadline that cannot
/// be read or has passed (grpc-gateway opens the stream, which fails then, before it
/// reads the body).
fn stream_deadline(headers: &HeaderMap) -> Result<Option<Instant>, Status> {
    let deadline = annotate(headers)?;
    if deadline.is_some_and(|at| at <= Instant::now()) {
        return Err(deadline_exceeded());
    }
    Ok(deadline)
}

/// `call`, unless `deadline` passes first (or has passed already).
async fn within<F: Future>(deadline: Option<Instant>, call: F) -> Result<F::Output, Status> {
    let Some(at) = deadline else { return Ok(call.await) };
    if at <= Instant::now() {
        return Err(deadline_exceeded());
    }
    tokio::time::timeout_at(at, call).await.map_err(|_| deadline_exceeded())
}

// ---------------------------------------------------------------------------------------
// Streams.

/// The JSON values of a request body as they arrive, split as Go's `json.Decoder` splits
/// them: each byte is scanned once, and what has been read is dropped when more comes.
struct RequestValues {
    body: axum::body::BodyDataStream,
    /// What has arrived: the values already read, then `buffer[start..]`, not yet read.
    buffer: Vec<u8>,
    start: usize,
    values: gojson::Values,
    max_message_bytes: usize,
    ended: bool,
}

impl RequestValues {
    fn new(body: Body, max_message_bytes: usize) -> Self {
        RequestValues {
            body: body.into_data_stream(),
            buffer: Vec::new(),
            start: 0,
            values: gojson::Values::default(),
            max_message_bytes,
            ended: false,
        }
    }

    /// The next value, spaces trimmed; `None` at the end of the body. After an error, the
    /// caller stops.
    async fn next(&mut self) -> Option<Result<&[u8], DecodeError>> {
        loop {
            match self.values.next(&self.buffer[self.start..], self.ended) {
                gojson::Next::Value(len) => {
                    let value = self.start..self.start + len;
                    self.start += len;
                    return Some(Ok(gojson::trim(&self.buffer[value])));
                }
                gojson::Next::End => return None,
                gojson::Next::Error(e) => return Some(Err(DecodeError::Invalid(e))),
                gojson::Next::More => {}
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.buffer.drain(..self.start);
                    self.start = 0;
                    let size = self.buffer.len() + chunk.len();
                    if size > self.max_message_bytes.saturating_mul(BODY_LIMIT_FACTOR) {
                        return Some(Err(DecodeError::TooLarge(too_large(size, self.max_message_bytes))));
                    }
                    self.buffer.extend_from_slice(&chunk);
                }
                Some(Err(e)) => return Some(Err(DecodeError::Invalid(e.to_string()))),
                None => self.ended = true,
            }
        }
    }

    /// The next value as request `name`.
    async fn next_request<T: Message + Default>(&mut self, name: &str) -> Option<Result<T, DecodeError>> {
        let max = self.max_message_bytes;
        Some(self.next().await?.and_then(|value| decode(name, value, max)))
    }
}

/// The first request of a stream, read before the call is answered (as grpc-gateway reads
/// it): `Ok(None)` for an empty body; a body that is not JSON is an Unknown error (500).
async fn first_request<T>(
    values: &mut RequestValues,
    name: &str,
    headers: &HeaderMap,
) -> Result<Option<T>, Response>
where
    T: Message + Default,
{
    match values.next_request(name).await {
        None => Ok(None),
        Some(Ok(request)) => Ok(Some(request)),
        Some(Err(DecodeError::Invalid(e))) => {
            Err(error_answer(&Status::unknown(e), headers, Failed::Gateway))
        }
        Some(Err(DecodeError::TooLarge(status))) => Err(stream_error_response(&status)),
    }
}

/// The rest of a stream's requests: ends at the end of the body or at a value that is not
/// a request (as grpc-gateway closes its send side there); a request too large for gRPC
/// fails the whole call, through `abort`.
fn remaining_requests<T>(
    values: RequestValues,
    name: &'static str,
    abort: oneshot::Sender<Status>,
) -> impl Stream<Item = Result<T, Status>> + Send + 'static
where
    T: Message + Default + Send + 'static,
{
    futures::stream::unfold(Some((values, abort)), move |state| async move {
        let (mut values, abort) = state?;
        match values.next_request(name).await? {
            Ok(request) => Some((Ok(request), Some((values, abort)))),
            Err(DecodeError::TooLarge(status)) => {
                let _ = abort.send(status);
                None
            }
            Err(DecodeError::Invalid(_)) => None,
        }
    })
}

/// The requests of a bidirectional stream, and what fails the call from the request side.
type RequestStream<T> =
    (std::pin::Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>, bool, oneshot::Receiver<Status>);

/// Reads the first request of a bidirectional stream and returns the stream of them all,
/// whether there was a first one, and the request side's failure; or the answer to a
/// body that does not start with a request.
async fn request_stream<T>(
    services: &Services,
    name: &'static str,
    headers: &HeaderMap,
    body: Body,
) -> Result<RequestStream<T>, Response>
where
    T: Message + Default + Send + 'static,
{
    let mut values = RequestValues::new(body, services.max_message_bytes);
    let first = first_request::<T>(&mut values, name, headers).await?;
    let started = first.is_some();
    let (abort, aborted) = oneshot::channel();
    let rest: std::pin::Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>> = if started {
        Box::pin(remaining_requests(values, name, abort))
    } else {
        Box::pin(futures::stream::empty())
    };
    let requests = Box::pin(futures::stream::iter(first.map(Ok)).chain(rest));
    Ok((requests, started, aborted))
}

async fn watch(State(services): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let deadline = match stream_deadline(&headers) {
        Ok(deadline) => deadline,
        Err(status) => return error_answer(&status, &headers, Failed::Gateway),
    };
    match request_stream::<pb::WatchRequest>(&services, "etcdserverpb.WatchRequest", &headers, body).await {
        Ok((requests, started, aborted)) => {
            let responses = services.watch.serve(requests, credentials_of(&headers));
            forward_stream(responses, started, Some(aborted), deadline).await
        }
        Err(response) => response,
    }
}

async fn lease_keep_alive(State(services): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let deadline = match stream_deadline(&headers) {
        Ok(deadline) => deadline,
        Err(status) => return error_answer(&status, &headers, Failed::Gateway),
    };
    match request_stream::<pb::LeaseKeepAliveRequest>(
        &services,
        "etcdserverpb.LeaseKeepAliveRequest",
        &headers,
        body,
    )
    .await
    {
        Ok((requests, started, aborted)) => {
            let responses = services.lease.serve(requests, credentials_of(&headers));
            forward_stream(responses, started, Some(aborted), deadline).await
        }
        Err(response) => response,
    }
}

async fn maintenance_snapshot(State(services): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    server_stream(&services, "etcdserverpb.SnapshotRequest", &headers, body, |request| {
        Maintenance::snapshot(&services.maintenance, request)
    })
    .await
}

async fn election_observe(State(services): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    server_stream(&services, "v3electionpb.LeaderRequest", &headers, body, |request| {
        Election::observe(&services.election, request)
    })
    .await
}

/// One server-streaming call: the body decoded as `name` (an error answer when it is not),
/// `call` made, its messages forwarded as they come.
async fn server_stream<Req, S, T, F, Fut>(
    services: &Services,
    name: &str,
    headers: &HeaderMap,
    body: Body,
    call: F,
) -> Response
where
    Req: Message + Default,
    S: Stream<Item = Result<T, Status>> + Send + Unpin + 'static,
    T: Serialize + Send + 'static,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<S>, Status>>,
{
    let (deadline, request) = match read_call(services, name, headers, body).await {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    match within(deadline, call(grpc_request(request, headers))).await {
        Ok(Ok(messages)) => forward_stream(messages.into_inner(), true, None, deadline).await,
        // The call failed before its first message: grpc-gateway reads that failure as the
        // stream's first message.
        Ok(Err(status)) => stream_error_response(&status),
        Err(status) => error_answer(&status, headers, Failed::Gateway),
    }
}

/// The answer to a stream that failed before its first message.
fn stream_error_response(status: &Status) -> Response {
    // Chunked, as every streamed answer (the length of a stream is not known ahead).
    let chunk = Bytes::from(stream_error_chunk(status));
    json_response(
        http_status(status.code()),
        Body::from_stream(futures::stream::iter([Ok::<_, Infallible>(chunk)])),
    )
}

/// The next response of `responses`, or the request side's failure.
async fn next_response<S, T>(
    responses: &mut S,
    aborted: &mut Option<oneshot::Receiver<Status>>,
    deadline: Option<Instant>,
) -> Option<Result<T, Status>>
where
    S: Stream<Item = Result<T, Status>> + Unpin,
{
    let expired = async move {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expired);
    loop {
        let Some(receiver) = aborted.as_mut() else {
            return tokio::select! {
                response = responses.next() => response,
                () = &mut expired => Some(Err(deadline_exceeded())),
            };
        };
        tokio::select! {
            response = responses.next() => return response,
            () = &mut expired => return Some(Err(deadline_exceeded())),
            failure = receiver => {
                *aborted = None;
                if let Ok(status) = failure {
                    return Some(Err(status));
                }
                // The request side ended without failing: the responses go on.
            }
        }
    }
}

/// One message of a stream: `{"result": ...}` and a newline; or the error chunk when it
/// cannot be written.
fn result_chunk<T: Serialize>(message: &T) -> Result<Bytes, Bytes> {
    match to_json(message) {
        Ok(json) => {
            let mut chunk = Vec::with_capacity(json.len() + 12);
            chunk.extend_from_slice(b"{\"result\":");
            chunk.extend_from_slice(&json);
            chunk.extend_from_slice(b"}\n");
            Ok(Bytes::from(chunk))
        }
        Err(e) => Err(Bytes::from(stream_error_chunk(&Status::unknown(e.to_string())))),
    }
}

/// Writes a stream of responses as grpc-gateway does: nothing until the first message
/// (the status and headers go with it), then a chunk per message, an error chunk ending a
/// failed stream. `started` is whether the call got its response headers (the first
/// request was sent), which grpc-gateway turns into `Grpc-Metadata-Content-Type`; at
/// `deadline` the stream ends with DeadlineExceeded.
async fn forward_stream<S, T>(
    mut responses: S,
    started: bool,
    mut aborted: Option<oneshot::Receiver<Status>>,
    deadline: Option<Instant>,
) -> Response
where
    S: Stream<Item = Result<T, Status>> + Send + Unpin + 'static,
    T: Serialize + Send + 'static,
{
    let (status, first) = match next_response(&mut responses, &mut aborted, deadline).await {
        None => (StatusCode::OK, None),
        Some(Ok(message)) => match result_chunk(&message) {
            Ok(chunk) => (StatusCode::OK, Some(Ok(chunk))),
            Err(chunk) => (StatusCode::INTERNAL_SERVER_ERROR, Some(Err(chunk))),
        },
        Some(Err(status)) => {
            (http_status(status.code()), Some(Err(Bytes::from(stream_error_chunk(&status)))))
        }
    };
    let more = matches!(first, Some(Ok(_)));
    let first = futures::stream::iter(first.map(|chunk| Ok::<_, Infallible>(chunk.unwrap_or_else(|e| e))));
    let rest = futures::stream::unfold(more.then_some((responses, aborted)), move |state| async move {
        let (mut responses, mut aborted) = state?;
        match next_response(&mut responses, &mut aborted, deadline).await? {
            Ok(message) => match result_chunk(&message) {
                Ok(chunk) => Some((Ok::<_, Infallible>(chunk), Some((responses, aborted)))),
                Err(chunk) => Some((Ok(chunk), None)),
            },
            Err(status) => Some((Ok(Bytes::from(stream_error_chunk(&status))), None)),
        }
    });
    let mut response = json_response(status, Body::from_stream(first.chain(rest)));
    if started {
        response
            .headers_mut()
            .insert(GRPC_METADATA_CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_written_as_grpc_gateway_v1_writes_them() {
        let s = Status::out_of_range("etcdserver: mvcc: required revision has been compacted");
        assert_eq!(
            error_body(&s),
            r#"{"error":"etcdserver: mvcc: required revision has been compacted","code":11,"message":"etcdserver: mvcc: required revision has been compacted"}"#
        );
        assert_eq!(error_body(&Status::unknown("")), r#"{"code":2}"#);
        assert_eq!(
            stream_error_chunk(&Status::not_found("a <b>")),
            r#"{"error":{"grpc_code":5,"http_code":404,"message":"a \u003cb\u003e","http_status":"Not Found"}}"#
        );
    }

    #[test]
    fn http_statuses_are_grpc_gateway_v1_16s() {
        // runtime.HTTPStatusFromCode of grpc-gateway v1.16.0, which etcd 3.5 builds with:
        // FailedPrecondition is deliberately 400, not 412.
        for (code, status) in [
            (Code::Ok, 200),
            (Code::Cancelled, 408),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 400),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
            (Code::Unauthenticated, 401),
        ] {
            assert_eq!(http_status(code).as_u16(), status, "{code:?}");
        }
    }

    #[test]
    fn html_characters_are_escaped_as_go_escapes_them() {
        let json = serde_json::to_vec("<a&b>\u{2028}\u{2029}é").unwrap();
        assert_eq!(go_escape(json), br#""\u003ca\u0026b\u003e\u2028\u2029"#.iter().chain("é\"".as_bytes()).copied().collect::<Vec<_>>());
    }

    /// A body arriving in the given chunks.
    fn body(chunks: Vec<Vec<u8>>) -> Body {
        Body::from_stream(futures::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>)))
    }

    /// The values of `text` arriving in chunks of `size` bytes, up to the first error.
    async fn values(text: &str, size: usize) -> Vec<Result<String, String>> {
        let chunks = text.as_bytes().chunks(size).map(<[u8]>::to_vec).collect();
        let mut values = RequestValues::new(body(chunks), 1 << 20);
        let mut out = Vec::new();
        while let Some(value) = values.next().await {
            match value {
                Ok(value) => out.push(Ok(String::from_utf8(value.to_vec()).unwrap())),
                Err(DecodeError::Invalid(e)) => {
                    out.push(Err(e));
                    break;
                }
                Err(DecodeError::TooLarge(status)) => panic!("{status:?}"),
            }
        }
        out
    }

    #[tokio::test]
    async fn request_streams_are_split_into_values_however_they_arrive() {
        let text = r#" {"a":"x}\"{y"} {"b":[1,{"c":2}]}{"d":{}}
 [3] 7 "#;
        for size in 1..=text.len() {
            let expected = [r#"{"a":"x}\"{y"}"#, r#"{"b":[1,{"c":2}]}"#, r#"{"d":{}}"#, "[3]", "7"];
            let expected: Vec<Result<String, String>> = expected.iter().map(|v| Ok(v.to_string())).collect();
            assert_eq!(values(text, size).await, expected, "chunks of {size}");
        }
        for size in [1, 3, 100] {
            let got = values(r#"{"a":1} {"b":"#, size).await;
            assert_eq!(got, [Ok(r#"{"a":1}"#.to_owned()), Err("unexpected EOF".to_owned())]);
            let got = values(r#"{"a":1} x {"b":2}"#, size).await;
            assert_eq!(got[1], Err("invalid character 'x' looking for beginning of value".to_owned()));
            assert!(values("  \n ", size).await.is_empty());
        }
    }

    #[tokio::test]
    async fn request_streams_are_read_in_linear_time() {
        // Many values in one chunk: each is read where it lies, nothing moved per value.
        let many = r#"{"ID":"1"} "#.repeat(200_000).into_bytes();
        let started = std::time::Instant::now();
        let mut values = RequestValues::new(body(vec![many]), 1 << 20);
        let mut count = 0;
        while let Some(value) =
            values.next_request::<pb::LeaseKeepAliveRequest>("etcdserverpb.LeaseKeepAliveRequest").await
        {
            assert_eq!(value.ok().map(|r| r.id), Some(1));
            count += 1;
        }
        assert_eq!(count, 200_000);
        // One large value arriving a byte at a time: each byte scanned once.
        let large = format!(r#""{}""#, "x".repeat(200_000)).into_bytes();
        let mut values = RequestValues::new(body(large.chunks(1).map(<[u8]>::to_vec).collect()), 1 << 20);
        assert_eq!(values.next().await.and_then(Result::ok).map(<[u8]>::len), Some(200_002));
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_too_large() {
        let mut values = RequestValues::new(body(vec![vec![b' '; 100], vec![b' '; 100]]), 20);
        match values.next().await {
            Some(Err(DecodeError::TooLarge(status))) => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                assert_eq!(status.message(), "grpc: received message larger than max (200 vs. 20)");
            }
            _ => panic!("too large"),
        }
    }
}
