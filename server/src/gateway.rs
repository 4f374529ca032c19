//! etcd's JSON gateway: the v3 API as JSON over HTTP/1.1 (`POST /v3/kv/range`, ...), as
//! etcd 3.5 serves it with grpc-gateway v1, on the gRPC port and over the same services.
//!
//! Every route decodes its JSON body into the request message, calls the very service
//! implementation gRPC calls, and writes the answer as etcd's gateway writes it:
//!
//! * messages as proto3 JSON with the proto field names (`create_revision`, `TTL`,
//!   `dbSize`), 64-bit integers as strings, bytes as base64, enums by name, zero values
//!   left out, and `<`, `>`, `&` escaped as Go's encoder escapes them;
//! * a request body may be empty (the empty request) and may carry trailing data (ignored);
//!   unknown fields and `null` values are ignored, as Go's decoder ignores them;
//! * an error as `{"error": msg, "code": grpc_code, "message": msg}` with the HTTP status
//!   grpc-gateway maps the gRPC code to (NotFound 404, OutOfRange 400, ...); a body that is
//!   not JSON is InvalidArgument (400);
//! * streams (watch, lease keep-alive, snapshot, election observe) as newline-separated `{"result": msg}`
//!   objects, an error ending one as `{"error": {"grpc_code", "http_code", "message",
//!   "http_status"}}`; the response headers go out with the first message, as Go's
//!   response writer sends them; a request stream is a sequence of JSON objects, and one
//!   that is not JSON ends it (the first one failing is an Unknown error, 500);
//! * an unknown `/v3/...` path is `404 Not Found` and another method than POST on a known
//!   one `405 Method Not Allowed`, both as plain text; `OPTIONS` is answered empty, and
//!   every answer carries etcd's CORS headers.
//!
//! The paths are etcd 3.5's, also under `/v3beta` as etcd 3.5 serves them. etcd 3.5 maps
//! both `Hash` and `HashKV` to `/v3/maintenance/hash`, where `Hash` wins; `HashKV` is
//! served at `/v3/maintenance/hashkv`, as etcd 3.6 serves it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, LazyLock};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::handler::Handler;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::{any, MethodRouter};
use axum::Router;
use futures::{Stream, StreamExt};
use prost::Message;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;
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

/// The gateway's routes (`/v3/kv/range`, ...; see the module documentation), to merge
/// with the gRPC routes: it sets no fallback, so paths outside `/v3` stay gRPC's.
pub fn router(services: Services) -> Router {
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
            ("/maintenance/downgrade", endpoint(maintenance_downgrade)),
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
        router = router.route(&format!("{prefix}/{{*rest}}"), any(not_found));
    }
    router.with_state(Arc::new(services)).layer(axum::middleware::map_response(cors))
}

type Shared = Arc<Services>;

/// A route: POST to `handler`, OPTIONS answered empty, any other method refused (without
/// the `Allow` header axum's method routing would add, which etcd does not send).
fn endpoint<H, T>(handler: H) -> MethodRouter<Shared>
where
    H: Handler<T, Shared>,
    T: 'static,
{
    any(move |State(services): State<Shared>, request: axum::extract::Request| {
        let handler = handler.clone();
        async move {
            match *request.method() {
                Method::POST => handler.call(request, services).await,
                Method::OPTIONS => preflight().await,
                _ => method_not_allowed().await,
            }
        }
    })
}

/// The headers etcd's CORS wrapper (`--cors`, `*` by default) adds to every answer.
async fn cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, GET, OPTIONS, PUT, DELETE"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("accept, content-type, authorization"),
    );
    response
}

/// `OPTIONS`: an empty 200, as etcd's CORS wrapper answers it.
async fn preflight() -> Response {
    Response::new(Body::empty())
}

/// Go's `http.Error`: plain text, the text followed by a newline.
fn plain_error(status: StatusCode) -> Response {
    let text = format!("{}\n", status.canonical_reason().unwrap_or(""));
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

async fn method_not_allowed() -> Response {
    plain_error(StatusCode::METHOD_NOT_ALLOWED)
}

async fn not_found(method: Method) -> Response {
    if method == Method::OPTIONS {
        return preflight().await;
    }
    plain_error(StatusCode::NOT_FOUND)
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
    Req: DeserializeOwned + Message + Default,
    Resp: Serialize,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
{
    let request = match read_unary(services.max_message_bytes, name, body).await {
        Ok(request) => request,
        Err(status) => return error_response(&status),
    };
    match call(grpc_request(request, headers)).await {
        Ok(response) => match to_json(response.get_ref()) {
            Ok(json) => {
                let mut response = json_response(StatusCode::OK, Body::from(json));
                response
                    .headers_mut()
                    .insert(GRPC_METADATA_CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                response
            }
            Err(e) => error_response(&Status::unknown(e.to_string())),
        },
        Err(status) => error_response(&status),
    }
}

/// The header grpc-gateway derives from the gRPC response's `content-type`.
const GRPC_METADATA_CONTENT_TYPE: &str = "grpc-metadata-content-type";

/// The request of a unary call: the first JSON value of the body (nothing at all is the
/// empty request, anything after the value is ignored), as Go's decoder reads it.
async fn read_unary<T>(max_message_bytes: usize, name: &str, body: Body) -> Result<T, Status>
where
    T: DeserializeOwned + Message + Default,
{
    let limit = max_message_bytes.saturating_mul(BODY_LIMIT_FACTOR);
    let mut bytes = Vec::new();
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| Status::invalid_argument(e.to_string()))?;
        if bytes.len() + chunk.len() > limit {
            return Err(too_large(bytes.len() + chunk.len(), max_message_bytes));
        }
        bytes.extend_from_slice(&chunk);
    }
    let value = match serde_json::Deserializer::from_slice(&bytes).into_iter::<Value>().next() {
        None => Value::Null,
        Some(Ok(value)) => value,
        Some(Err(e)) => return Err(Status::invalid_argument(e.to_string())),
    };
    decode(name, value, max_message_bytes).map_err(DecodeError::into_status)
}

/// Why a JSON value is not a request.
enum DecodeError {
    /// Not the message's JSON.
    Invalid(String),
    /// Larger than the gRPC server accepts.
    TooLarge(Status),
}

impl DecodeError {
    /// The status a unary call answers.
    fn into_status(self) -> Status {
        match self {
            DecodeError::Invalid(message) => Status::invalid_argument(message),
            DecodeError::TooLarge(status) => status,
        }
    }
}

/// `value` as message `name` (e.g. `etcdserverpb.RangeRequest`): unknown fields and nulls
/// ignored, as Go's decoder ignores them; refused when its encoding is over `max` bytes.
fn decode<T>(name: &str, mut value: Value, max: usize) -> Result<T, DecodeError>
where
    T: DeserializeOwned + Message + Default,
{
    let message = if value.is_null() {
        T::default()
    } else {
        prune(name, &mut value);
        serde_json::from_value(value).map_err(|e| DecodeError::Invalid(e.to_string()))?
    };
    let size = message.encoded_len();
    if size > max {
        return Err(DecodeError::TooLarge(too_large(size, max)));
    }
    Ok(message)
}

// ---------------------------------------------------------------------------------------
// Unknown fields: the generated serde impls refuse them; Go's decoder skips them. The
// protocol's descriptors (compiled by the build script) say which fields each message has.

/// How a field's JSON value is checked further.
#[derive(Clone, Debug, PartialEq)]
enum Shape {
    /// A scalar or enum: left to the message's deserializer.
    Scalar,
    /// A message (or a list of them): pruned as that message.
    Message(String),
    /// A map: its values pruned as the message named, if they are messages.
    Map(Option<String>),
}

/// Message full name (`etcdserverpb.RangeRequest`) to its fields, by every JSON name each
/// is accepted under (the proto name and the lowerCamelCase JSON name).
type Schema = HashMap<String, HashMap<String, Shape>>;

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    let bytes = include_bytes!(concat!(env!("OUT_DIR"), "/etcd_descriptors.bin"));
    schema(&prost_types::FileDescriptorSet::decode(&bytes[..]).unwrap_or_default())
});

/// The schema of every message of `set`.
fn schema(set: &prost_types::FileDescriptorSet) -> Schema {
    fn collect<'a>(
        scope: &str,
        messages: &'a [prost_types::DescriptorProto],
        out: &mut HashMap<String, &'a prost_types::DescriptorProto>,
    ) {
        for message in messages {
            let name = if scope.is_empty() {
                message.name().to_owned()
            } else {
                format!("{scope}.{}", message.name())
            };
            collect(&name, &message.nested_type, out);
            out.insert(name, message);
        }
    }
    let mut messages = HashMap::new();
    for file in &set.file {
        collect(file.package(), &file.message_type, &mut messages);
    }
    let is_map =
        |name: &str| messages.get(name).is_some_and(|m| m.options.as_ref().is_some_and(|o| o.map_entry()));
    let message_type = |field: &prost_types::FieldDescriptorProto| {
        (field.r#type() == prost_types::field_descriptor_proto::Type::Message)
            .then(|| field.type_name().trim_start_matches('.').to_owned())
    };
    let mut schema = Schema::new();
    for (name, message) in &messages {
        let mut fields = HashMap::new();
        for field in &message.field {
            let shape = match message_type(field) {
                None => Shape::Scalar,
                Some(entry) if is_map(&entry) => {
                    let value = messages[&entry].field.iter().find(|f| f.number() == 2);
                    Shape::Map(value.and_then(message_type))
                }
                Some(nested) => Shape::Message(nested),
            };
            let json_name = field.json_name.clone().unwrap_or_else(|| camel_case(field.name()));
            fields.insert(json_name, shape.clone());
            fields.insert(field.name().to_owned(), shape);
        }
        schema.insert(name.clone(), fields);
    }
    schema
}

/// protoc's JSON name of a field: underscores dropped, the letter after each capitalized.
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Drops from `value` (message `name`'s JSON), at every depth, the fields the message does
/// not have and the fields set to `null`.
fn prune(name: &str, value: &mut Value) {
    let (Some(fields), Value::Object(object)) = (SCHEMA.get(name), value) else {
        return;
    };
    object.retain(|key, value| !value.is_null() && fields.contains_key(key));
    for (key, value) in object.iter_mut() {
        match &fields[key] {
            Shape::Scalar | Shape::Map(None) => {}
            Shape::Message(nested) => match value {
                Value::Array(items) => items.iter_mut().for_each(|item| prune(nested, item)),
                value => prune(nested, value),
            },
            Shape::Map(Some(nested)) => {
                if let Value::Object(entries) = value {
                    entries.values_mut().for_each(|entry| prune(nested, entry));
                }
            }
        }
    }
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
    let mut response = json_response(http_status(status.code()), Body::from(error_body(status)));
    if status.code() == Code::Unauthenticated {
        if let Ok(value) = HeaderValue::from_str(status.message()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}

// ---------------------------------------------------------------------------------------
// Streams.

/// The JSON values of a request body, read as they arrive.
struct JsonValues {
    body: axum::body::BodyDataStream,
    buffer: Vec<u8>,
    limit: usize,
    ended: bool,
    /// How far the object or array at the start of `buffer` has been scanned for its end,
    /// so that a large one arriving in many chunks is scanned once, not parsed per chunk.
    scan: Scan,
}

/// The state of the scan for the end of a JSON object or array.
#[derive(Default)]
struct Scan {
    position: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Scan {
    /// Scans `buffer` (which starts with `{` or `[`) on from where the last call stopped:
    /// the length of the complete object or array, if it has ended.
    fn end(&mut self, buffer: &[u8]) -> Option<usize> {
        while self.position < buffer.len() {
            let b = buffer[self.position];
            self.position += 1;
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Some(self.position);
                    }
                }
                _ => {}
            }
        }
        None
    }
}

impl JsonValues {
    fn new(body: Body, max_message_bytes: usize) -> Self {
        JsonValues {
            body: body.into_data_stream(),
            buffer: Vec::new(),
            limit: max_message_bytes.saturating_mul(BODY_LIMIT_FACTOR),
            ended: false,
            scan: Scan::default(),
        }
    }

    /// The next value; `None` at the end of the body. After an error, the caller stops.
    async fn next(&mut self) -> Option<Result<Value, String>> {
        loop {
            if self.scan.position == 0 {
                let start =
                    self.buffer.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(self.buffer.len());
                self.buffer.drain(..start);
            }
            if let Some(&first) = self.buffer.first() {
                // An object or array is parsed once it is complete (or the body has ended);
                // anything else is tried as it is.
                let end = if matches!(first, b'{' | b'[') { self.scan.end(&self.buffer) } else { None };
                if end.is_some() || self.ended || !matches!(first, b'{' | b'[') {
                    let slice = &self.buffer[..end.unwrap_or(self.buffer.len())];
                    let mut values = serde_json::Deserializer::from_slice(slice).into_iter::<Value>();
                    match values.next() {
                        Some(Ok(value)) => {
                            let used = values.byte_offset();
                            self.buffer.drain(..used);
                            self.scan = Scan::default();
                            return Some(Ok(value));
                        }
                        Some(Err(e)) if !e.is_eof() || self.ended || end.is_some() => {
                            return Some(Err(e.to_string()))
                        }
                        _ => {}
                    }
                }
            }
            if self.ended {
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    if self.buffer.len() + chunk.len() > self.limit {
                        return Some(Err(format!("request message larger than {} bytes", self.limit)));
                    }
                    self.buffer.extend_from_slice(&chunk);
                }
                Some(Err(e)) => return Some(Err(e.to_string())),
                None => self.ended = true,
            }
        }
    }
}

/// The first request of a stream, read before the call is answered (as grpc-gateway reads
/// it): `Ok(None)` for an empty body; a body that is not JSON is an Unknown error (500).
async fn first_request<T>(values: &mut JsonValues, name: &str, max: usize) -> Result<Option<T>, Response>
where
    T: DeserializeOwned + Message + Default,
{
    let value = match values.next().await {
        None => return Ok(None),
        Some(Ok(value)) => value,
        Some(Err(e)) => return Err(error_response(&Status::unknown(e))),
    };
    match decode(name, value, max) {
        Ok(request) => Ok(Some(request)),
        Err(DecodeError::Invalid(e)) => Err(error_response(&Status::unknown(e))),
        Err(DecodeError::TooLarge(status)) => Err(stream_error_response(&status)),
    }
}

/// The rest of a stream's requests: ends at the end of the body or at a value that is not
/// a request (as grpc-gateway closes its send side there); a request too large for gRPC
/// fails the whole call, through `abort`.
fn remaining_requests<T>(
    values: JsonValues,
    name: &'static str,
    max: usize,
    abort: oneshot::Sender<Status>,
) -> impl Stream<Item = Result<T, Status>> + Send + 'static
where
    T: DeserializeOwned + Message + Default + Send + 'static,
{
    futures::stream::unfold(Some((values, abort)), move |state| async move {
        let (mut values, abort) = state?;
        match decode(name, values.next().await?.ok()?, max) {
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
    body: Body,
) -> Result<RequestStream<T>, Response>
where
    T: DeserializeOwned + Message + Default + Send + 'static,
{
    let max = services.max_message_bytes;
    let mut values = JsonValues::new(body, max);
    let first = first_request::<T>(&mut values, name, max).await?;
    let started = first.is_some();
    let (abort, aborted) = oneshot::channel();
    let rest: std::pin::Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>> = if started {
        Box::pin(remaining_requests(values, name, max, abort))
    } else {
        Box::pin(futures::stream::empty())
    };
    let requests = Box::pin(futures::stream::iter(first.map(Ok)).chain(rest));
    Ok((requests, started, aborted))
}

async fn watch(State(services): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    match request_stream::<pb::WatchRequest>(&services, "etcdserverpb.WatchRequest", body).await {
        Ok((requests, started, aborted)) => {
            forward_stream(services.watch.serve(requests, credentials_of(&headers)), started, Some(aborted))
                .await
        }
        Err(response) => response,
    }
}

async fn lease_keep_alive(State(services): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    match request_stream::<pb::LeaseKeepAliveRequest>(&services, "etcdserverpb.LeaseKeepAliveRequest", body)
        .await
    {
        Ok((requests, started, aborted)) => {
            forward_stream(services.lease.serve(requests, credentials_of(&headers)), started, Some(aborted))
                .await
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
    Req: DeserializeOwned + Message + Default,
    S: Stream<Item = Result<T, Status>> + Send + Unpin + 'static,
    T: Serialize + Send + 'static,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<S>, Status>>,
{
    let request = match read_unary(services.max_message_bytes, name, body).await {
        Ok(request) => request,
        Err(status) => return error_response(&status),
    };
    match call(grpc_request(request, headers)).await {
        Ok(messages) => forward_stream(messages.into_inner(), true, None).await,
        // The call failed before its first message: grpc-gateway reads that failure as the
        // stream's first message.
        Err(status) => stream_error_response(&status),
    }
}

/// The answer to a stream that failed before its first message.
fn stream_error_response(status: &Status) -> Response {
    json_response(http_status(status.code()), Body::from(stream_error_chunk(status)))
}

/// The next response of `responses`, or the request side's failure.
async fn next_response<S, T>(
    responses: &mut S,
    aborted: &mut Option<oneshot::Receiver<Status>>,
) -> Option<Result<T, Status>>
where
    S: Stream<Item = Result<T, Status>> + Unpin,
{
    let Some(receiver) = aborted.as_mut() else {
        return responses.next().await;
    };
    tokio::select! {
        response = responses.next() => response,
        failure = receiver => {
            *aborted = None;
            match failure {
                Ok(status) => Some(Err(status)),
                // The request side ended without failing.
                Err(_) => responses.next().await,
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
/// request was sent), which grpc-gateway turns into `Grpc-Metadata-Content-Type`.
async fn forward_stream<S, T>(
    mut responses: S,
    started: bool,
    mut aborted: Option<oneshot::Receiver<Status>>,
) -> Response
where
    S: Stream<Item = Result<T, Status>> + Send + Unpin + 'static,
    T: Serialize + Send + 'static,
{
    let (status, first) = match next_response(&mut responses, &mut aborted).await {
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
    let rest = futures::stream::unfold(more.then_some((responses, aborted)), |state| async move {
        let (mut responses, mut aborted) = state?;
        match next_response(&mut responses, &mut aborted).await? {
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
        assert_eq!(http_status(s.code()), StatusCode::BAD_REQUEST);
        assert_eq!(error_body(&Status::unknown("")), r#"{"code":2}"#);
        assert_eq!(
            stream_error_chunk(&Status::not_found("a <b>")),
            r#"{"error":{"grpc_code":5,"http_code":404,"message":"a \u003cb\u003e","http_status":"Not Found"}}"#
        );
        assert_eq!(http_status(Code::ResourceExhausted), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(http_status(Code::Cancelled), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(http_status(Code::FailedPrecondition), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn html_characters_are_escaped_as_go_escapes_them() {
        let json = serde_json::to_vec("<a&b>\u{2028}\u{2029}é").unwrap();
        assert_eq!(go_escape(json), br#""\u003ca\u0026b\u003e\u2028\u2029"#.iter().chain("é\"".as_bytes()).copied().collect::<Vec<_>>());
    }

    #[test]
    fn unknown_fields_and_nulls_are_dropped_at_every_depth() {
        let mut v: Value = serde_json::json!({
            "compare": [{"key": "YQ==", "bogus": 1, "target": "VALUE"}],
            "success": [{"request_put": {"key": "YQ==", "nope": true, "lease": null}}],
            "failure": null,
            "extra": {"x": 1}
        });
        prune("etcdserverpb.TxnRequest", &mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "compare": [{"key": "YQ==", "target": "VALUE"}],
                "success": [{"request_put": {"key": "YQ=="}}]
            })
        );
        let txn: pb::TxnRequest = decode("etcdserverpb.TxnRequest", v, 1 << 20).ok().unwrap();
        assert_eq!(txn.success.len(), 1);
    }

    /// The values of a body arriving in chunks of `size` bytes.
    async fn values(text: &str, size: usize) -> Vec<Result<Value, String>> {
        let chunks: Vec<Result<Bytes, Infallible>> =
            text.as_bytes().chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let mut values = JsonValues::new(Body::from_stream(futures::stream::iter(chunks)), 1 << 20);
        let mut out = Vec::new();
        while let Some(value) = values.next().await {
            let failed = value.is_err();
            out.push(value);
            if failed {
                break;
            }
        }
        out
    }

    #[tokio::test]
    async fn request_streams_are_split_into_values_however_they_arrive() {
        let text = r#" {"a":"x}\"{y"} {"b":[1,{"c":2}]}{"d":{}}
 [3] "#;
        for size in 1..=text.len() {
            let got = values(text, size).await;
            let got: Vec<Value> = got.into_iter().map(|v| v.expect("a value")).collect();
            assert_eq!(
                got,
                vec![
                    serde_json::json!({"a": "x}\"{y"}),
                    serde_json::json!({"b": [1, {"c": 2}]}),
                    serde_json::json!({"d": {}}),
                    serde_json::json!([3]),
                ],
                "chunks of {size}"
            );
        }
        for size in [1, 3, 100] {
            let got = values(r#"{"a":1} {"b":"#, size).await;
            assert_eq!(got.len(), 2);
            assert!(got[0].is_ok() && got[1].is_err(), "{got:?}");
            let got = values(r#"{"a":1} x {"b":2}"#, size).await;
            assert_eq!(got.len(), 2);
            assert!(got[1].is_err());
            assert!(values("  \n ", size).await.is_empty());
        }
    }

    #[test]
    fn every_request_message_is_known_and_json_names_are_accepted() {
        for name in ["etcdserverpb.RangeRequest", "etcdserverpb.HashKVRequest", "etcdserverpb.WatchRequest"] {
            assert!(SCHEMA.contains_key(name), "{name}");
        }
        let fields = &SCHEMA["etcdserverpb.RangeRequest"];
        assert!(fields.contains_key("range_end") && fields.contains_key("rangeEnd"));
        assert_eq!(fields["key"], Shape::Scalar);
        assert_eq!(SCHEMA["etcdserverpb.MemberAddRequest"]["peerURLs"], Shape::Scalar);
        assert_eq!(camel_case("min_mod_revision"), "minModRevision");
    }
}
