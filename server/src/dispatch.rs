//! How requests reach the services. Each accepted connection is served by hyper (HTTP/2,
//! or HTTP/1.1 for the JSON gateway), and each request goes straight to its gRPC service
//! by the service name in its path (`/etcdserverpb.KV/Range` goes to KV), or else to the
//! gateway's router.
//!
//! tonic's `transport::Server` with a merged axum router did the same through a dozen
//! general layers per request (a tracing span, a deadline, load shedding, connection info,
//! a path router with URL parameters, a response body boxed twice); on a put they were
//! 12 % of the server's instructions.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{Request, Response};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic_health::pb::health_server::{self, HealthServer};

use crate::header_blocks::{MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE};
use crate::health::HealthService;
use crate::inbound::Inbound;
use crate::pb::etcdserverpb::auth_server::{self, AuthServer};
use crate::pb::etcdserverpb::cluster_server::{self, ClusterServer};
use crate::pb::etcdserverpb::kv_server::{self, KvServer};
use crate::pb::etcdserverpb::lease_server::{self, LeaseServer};
use crate::pb::etcdserverpb::maintenance_server::{self, MaintenanceServer};
use crate::pb::etcdserverpb::watch_server::{self, WatchServer};
use crate::pb::v3electionpb::election_server::{self, ElectionServer};
use crate::pb::v3lockpb::lock_server::{self, LockServer};
use crate::tls::{Acceptor, WithClientCertName};
use crate::unsent_answers::{AnswerBody, UnsentAnswers};
use crate::whole_messages::WholeMessages;
use crate::{gateway, status};
use crate::{AuthService, ClusterService, ElectionService, KvService, LeaseService, LockService};
use crate::{MaintenanceService, Node, WatchService};

/// What one connection may hold, and how long it may stay silent: etcd's
/// `--max-concurrent-streams`, `--grpc-keepalive-interval` and `--grpc-keepalive-timeout`,
/// and etcdlite's own caps on connections and on a connection that never says which
/// protocol it speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// The most streams (calls) open at once on one HTTP/2 connection (etcd's default:
    /// 2^32 - 1, no practical limit, since clientv3 puts every call on one connection).
    pub max_concurrent_streams: u32,
    /// How long a connection may be idle before the server pings it (etcd: 2 h).
    pub keepalive_interval: Duration,
    /// How long the server waits for the answer to its ping before closing the
    /// connection (etcd: 20 s).
    pub keepalive_timeout: Duration,
    /// How often a client may ping: the third ping sooner than this after the one before
    /// (with no call in between) closes the connection (etcd: 5 s).
    pub keepalive_min_time: Duration,
    /// The most connections served at once on one listen address; more are closed as soon
    /// as they are accepted.
    pub max_connections: usize,
    /// How long a new connection has to send its first bytes (and, on a TLS address, to
    /// finish its handshake) before it is closed.
    pub handshake_timeout: Duration,
    /// The most bytes of Range answers one connection may hold that its client has not taken
    /// yet (its HTTP/2 flow-control window kept them back, or it did not read the socket);
    /// past it, the next Range call's answer is dropped and the call fails with
    /// ResourceExhausted "etcdserver: too many requests". One answer always goes through,
    /// however large, unless the server's budget is full.
    pub max_unsent_response_bytes: usize,
    /// The same budget for all connections together, in one server; past it, a Range call
    /// fails the same way, except the first answer of a connection that holds none, if it
    /// is 64 KiB or less (or nothing is held anywhere).
    pub max_unsent_response_bytes_total: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_concurrent_streams: u32::MAX,
            keepalive_interval: Duration::from_secs(2 * 60 * 60),
            keepalive_timeout: Duration::from_secs(20),
            keepalive_min_time: Duration::from_secs(5),
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(10),
            max_unsent_response_bytes: 128 << 20,
            max_unsent_response_bytes_total: 1 << 30,
        }
    }
}

/// The one call whose answer counts against a connection's budget of unsent answers.
const RANGE_PATH: &str = "/etcdserverpb.KV/Range";

/// The calls whose requests are a stream: a request too large to decode ends them in their
/// trailers. Every other call fails before its handler runs, with the status in the
/// response headers.
const STREAMING_REQUESTS: [&str; 2] = ["/etcdserverpb.Watch/Watch", "/etcdserverpb.Lease/LeaseKeepAlive"];

/// Every service of one node, as a hyper service that routes each request by its path.
#[derive(Clone)]
pub struct Dispatch {
    kv: KvServer<KvService>,
    watch: WatchServer<WatchService>,
    lease: LeaseServer<LeaseService>,
    maintenance: MaintenanceServer<MaintenanceService>,
    cluster: ClusterServer<ClusterService>,
    auth: AuthServer<AuthService>,
    lock: LockServer<LockService>,
    election: ElectionServer<ElectionService>,
    health: HealthServer<HealthService>,
    gateway: axum::Router,
    /// The largest request message the services decode.
    max_message_bytes: usize,
    /// The budgets the Range answers not yet taken by their clients count against: the
    /// server's, and once [`serve`] gives each connection a dispatch of its own, the
    /// connection's.
    unsent: UnsentAnswers,
    /// For the faults a test injects.
    node: Arc<Node>,
}

impl Dispatch {
    /// The services of `node`, each decoding messages up to `max_message_bytes`; the
    /// gateway's answers carry the CORS headers `cors` allows. The Range answers of every
    /// connection it serves, not yet taken by their clients, may hold `max_unsent_total`
    /// bytes together (see [`ConnectionLimits::max_unsent_response_bytes_total`]).
    pub fn new(
        node: &Arc<Node>,
        max_message_bytes: usize,
        cors: gateway::Cors,
        max_unsent_total: usize,
    ) -> Dispatch {
        let limit = max_message_bytes;
        Dispatch {
            kv: KvServer::new(KvService::new(node.clone())).max_decoding_message_size(limit),
            watch: WatchServer::new(WatchService::new(node.clone(), limit)).max_decoding_message_size(limit),
            lease: LeaseServer::new(LeaseService::new(node.clone())).max_decoding_message_size(limit),
            maintenance: MaintenanceServer::new(MaintenanceService::new(node.clone()))
                .max_decoding_message_size(limit),
            cluster: ClusterServer::new(ClusterService::new(node.clone())).max_decoding_message_size(limit),
            auth: AuthServer::new(AuthService::new(node.clone())).max_decoding_message_size(limit),
            lock: LockServer::new(LockService::new(node.clone())).max_decoding_message_size(limit),
            election: ElectionServer::new(ElectionService::new(node.clone()))
                .max_decoding_message_size(limit),
            health: HealthServer::new(HealthService::new(node.clone())).max_decoding_message_size(limit),
            gateway: gateway::router(gateway::Services::new(node.clone(), limit), cors),
            max_message_bytes: limit,
            unsent: UnsentAnswers::for_server(max_unsent_total),
            node: node.clone(),
        }
    }

    /// This dispatch for one new connection, whose Range answers not yet taken by its client
    /// may hold up to `max_unsent` bytes.
    fn for_connection(&self, max_unsent: usize) -> Dispatch {
        Dispatch { unsent: self.unsent.for_connection(max_unsent), ..self.clone() }
    }

    /// The gRPC service named `service`, called with `request`.
    fn grpc(&self, service: Grpc, request: Request<Incoming>) -> GrpcFuture {
        // A message's declared length is not reserved until its bytes have come.
        let request = request.map(|body| WholeMessages::new(body, self.max_message_bytes));
        match service {
            Grpc::Kv => self.kv.clone().call(request),
            Grpc::Watch => self.watch.clone().call(request),
            Grpc::Lease => self.lease.clone().call(request),
            Grpc::Maintenance => self.maintenance.clone().call(request),
            Grpc::Cluster => self.cluster.clone().call(request),
            Grpc::Auth => self.auth.clone().call(request),
            Grpc::Lock => self.lock.clone().call(request),
            Grpc::Election => self.election.clone().call(request),
            Grpc::Health => self.health.clone().call(request),
        }
    }
}

/// True if `name` is one of the gRPC services served.
pub(crate) fn is_service(name: &str) -> bool {
    Grpc::named(name).is_some()
}

/// The gRPC services, by name.
#[derive(Clone, Copy)]
enum Grpc {
    Kv,
    Watch,
    Lease,
    Maintenance,
    Cluster,
    Auth,
    Lock,
    Election,
    Health,
}

impl Grpc {
    fn named(name: &str) -> Option<Grpc> {
        Some(match name {
            kv_server::SERVICE_NAME => Grpc::Kv,
            watch_server::SERVICE_NAME => Grpc::Watch,
            lease_server::SERVICE_NAME => Grpc::Lease,
            maintenance_server::SERVICE_NAME => Grpc::Maintenance,
            cluster_server::SERVICE_NAME => Grpc::Cluster,
            auth_server::SERVICE_NAME => Grpc::Auth,
            lock_server::SERVICE_NAME => Grpc::Lock,
            election_server::SERVICE_NAME => Grpc::Election,
            health_server::SERVICE_NAME => Grpc::Health,
            _ => return None,
        })
    }
}

/// What a generated gRPC service's `call` returns.
type GrpcFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Dispatch {
    type Response = Response<AnswerBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> ResponseFuture {
        // As etcd tells them apart: gRPC is HTTP/2 with a gRPC content type; anything else
        // (HTTP/1.1 whatever its content type) is for the gateway.
        let is_grpc = request.version() == axum::http::Version::HTTP_2
            && request
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .is_some_and(|t| t.as_bytes().windows(16).any(|w| w == b"application/grpc"));
        if !is_grpc {
            let gateway = self.gateway.clone().call(request);
            let future = Box::pin(async move { Ok(gateway.await?.map(Body::new)) });
            return ResponseFuture { future, size_errors: None, budget: None, encoding: None };
        }
        let path = request.uri().path();
        let name = path.strip_prefix('/').and_then(|p| p.split_once('/')).map_or("", |(name, _)| name);
        let Some(service) = Grpc::named(name) else {
            let status = status::unknown_call(path);
            return ResponseFuture {
                future: Box::pin(std::future::ready(Ok(status.into_http()))),
                size_errors: None,
                budget: None,
                encoding: None,
            };
        };
        let in_trailers = STREAMING_REQUESTS.contains(&path);
        // Only a Range's answer is counted against the connection's budget: it reads and
        // changes nothing, so refusing it once built is a refusal of the whole call. A Put,
        // DeleteRange or Txn is applied before its answer exists; refusing that answer
        // would report as not done a write that was.
        let budgeted = path == RANGE_PATH;
        // For the answer to a method the service does not have (a cheap clone: the path's
        // bytes are shared).
        let called = request.uri().path_and_query().cloned();
        let faults = &self.node.faults;
        let (latency, unavailable) = (faults.latency(), faults.unavailable_now());
        let call = if unavailable {
            let status = tonic::Status::unavailable(crate::faults::INJECTED_UNAVAILABLE);
            Box::pin(async move {
                tokio::time::sleep(latency).await;
                Ok(status.into_http())
            })
        } else if !latency.is_zero() {
            let call = self.grpc(service, request);
            Box::pin(async move {
                tokio::time::sleep(latency).await;
                call.await
            })
        } else {
            self.grpc(service, request)
        };
        // A call still running when a stopping server's grace period ends answers "server
        // stopped", as the server's streams do, before its connection is closed.
        let aborted = self.node.aborted();
        let future = Box::pin(async move {
            let response = tokio::select! {
                biased;
                response = call => response?,
                () = aborted => status::server_stopped().into_http(),
            };
            Ok(status::name_unknown_method(response, called.as_ref().map_or("", |p| p.path())))
        });
        let budget = budgeted.then(|| self.unsent.clone());
        ResponseFuture { future, size_errors: Some(in_trailers), budget, encoding: None }
    }
}

/// A response on its way: a gRPC call's has tonic's size error rewritten into etcd's.
pub struct ResponseFuture {
    future: GrpcFuture,
    /// For a gRPC call: whether its status may come in trailers too.
    size_errors: Option<bool>,
    /// For a Range call: the budgets of answers not yet taken, which this answer's message
    /// is counted against once encoded.
    budget: Option<UnsentAnswers>,
    /// The answer, once come, while its first frame (the encoded message) is taken.
    encoding: Option<(http::response::Parts, Body)>,
}

impl Future for ResponseFuture {
    type Output = Result<Response<AnswerBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.encoding.is_none() {
            // A Range whose answer would be refused whatever its size is not read at all:
            // a client asking on hundreds of streams at once has each refused here, not
            // each built and encoded first.
            if this.budget.as_ref().is_some_and(UnsentAnswers::full) {
                return Poll::Ready(Ok(refused_answer(None)));
            }
            let response = ready!(this.future.as_mut().poll(cx))?;
            let response = match this.size_errors {
                Some(in_trailers) => status::etcd_size_errors(response, in_trailers),
                None => response,
            };
            if this.budget.is_none() {
                return Poll::Ready(Ok(response.map(AnswerBody::uncounted)));
            }
            this.encoding = Some(response.into_parts());
        }
        let (_, body) = this.encoding.as_mut().expect("the answer is being encoded");
        let first = ready!(Pin::new(body).poll_frame(cx));
        let (parts, body) = this.encoding.take().expect("the answer is being encoded");
        let budget = this.budget.take().expect("a budget for a Range answer");
        let size = match &first {
            Some(Ok(frame)) => frame.data_ref().map_or(0, bytes::Bytes::len),
            _ => 0,
        };
        let charge = if size == 0 {
            None
        } else {
            match budget.charge(size) {
                Some(charge) => Some(charge),
                None => return Poll::Ready(Ok(refused_answer(Some(size)))),
            }
        };
        let body = AnswerBody::counted(first, body, charge);
        Poll::Ready(Ok(Response::from_parts(parts, body)))
    }
}

/// The answer to a Range refused because answers not yet taken fill a budget (its own
/// answer's size, if it was built).
fn refused_answer(size: Option<usize>) -> Response<AnswerBody> {
    match size {
        Some(size) => {
            tracing::debug!("refusing a Range answer of {size} bytes: earlier ones are not taken yet")
        }
        None => tracing::debug!("refusing a Range call: earlier answers are not taken yet"),
    }
    status::to_status(etcdlite::Error::TooManyRequests).into_http().map(AnswerBody::uncounted)
}

/// A listener on `addr` whose queue of connections not yet accepted is as deep as the
/// system allows (`net.core.somaxconn`, 4096 by default), as Go's and so etcd's is. tokio's
/// `TcpListener::bind` asks for 128: a burst of more new connections than that overflowed
/// the queue, and the kernel dropped their SYNs, each client then waiting a second for its
/// retry, while the server was idle.
pub(crate) fn listen(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    let socket =
        if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(listen_backlog())
}

/// The deepest listen queue the system allows, as Go reads it.
fn listen_backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(4096)
}

/// Serves `listener` until `stopped` completes, then stops accepting, lets each
/// connection finish its calls in flight (HTTP/2 GOAWAY), and returns once all have closed.
/// With `tls`, each connection is served once its TLS handshake succeeds (in its own task,
/// so a slow or plain-text client holds up no other). `limits` bounds what each connection
/// and the listener may hold.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<Acceptor>,
    dispatch: Dispatch,
    limits: ConnectionLimits,
    stopped: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper enforces its HTTP/1 header read timeout only with a timer; HTTP/2 needs one to ping.
    builder.http1().timer(TokioTimer::new());
    // hyper's guard against HTTP/2 rapid reset (RUSTSEC-2024-0003) stays at its default.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.keepalive_interval))
        .keep_alive_timeout(limits.keepalive_timeout)
        .max_concurrent_streams(limits.max_concurrent_streams)
        // What the inbound header-block reader assumes of h2 (hyper's defaults, stated).
        .max_frame_size(MAX_FRAME_SIZE as u32)
        .max_header_list_size(MAX_HEADER_LIST_SIZE as u32);
    let (stop, stop_seen) = tokio::sync::watch::channel(());
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut stopped = std::pin::pin!(stopped);
    let mut last_warning = None;
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => {
                    tracing::debug!("accepting a connection: {e}");
                    continue;
                }
                Err(e) => {
                    // Out of descriptors or memory: give calls in flight a moment, and say
                    // so at most once a second.
                    if last_warning.is_none_or(|at: Instant| at.elapsed() >= Duration::from_secs(1)) {
                        tracing::warn!("accepting a connection: {e}");
                        last_warning = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            if last_warning.is_none_or(|at: Instant| at.elapsed() >= Duration::from_secs(1)) {
                tracing::warn!(remote_addr = %peer, "refusing a connection: {} are open", limits.max_connections);
                last_warning = Some(Instant::now());
            }
            drop(stream);
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("setting TCP_NODELAY: {e}");
        }
        let builder = builder.clone();
        let dispatch = dispatch.for_connection(limits.max_unsent_response_bytes);
        let mut stop_seen = stop_seen.clone();
        let (timeout, min_time) = (limits.handshake_timeout, limits.keepalive_min_time);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Some(tls) = tls else {
                // A client that never says a word is not held on to.
                let mut first = [0u8; 1];
                tokio::select! {
                    peeked = tokio::time::timeout(timeout, stream.peek(&mut first)) => match peeked {
                        Ok(Ok(n)) if n > 0 => {}
                        Ok(_) => return,
                        Err(_) => {
                            tracing::debug!(remote_addr = %peer, "closing a connection silent for {timeout:?}");
                            return;
                        }
                    },
                    _ = stop_seen.changed() => return,
                }
                let stream = Inbound::new(stream, min_time);
                serve_connection(builder, TokioIo::new(stream), dispatch, stop_seen).await;
                return;
            };
            let accepted = tokio::select! {
                accepted = tokio::time::timeout(timeout, tls.accept(stream)) => match accepted {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        tracing::warn!(remote_addr = %peer, "rejected connection: no TLS handshake within {timeout:?}");
                        return;
                    }
                },
                _ = stop_seen.changed() => return,
            };
            match accepted {
                Ok((stream, None)) => {
                    let stream = Inbound::new(stream, min_time);
                    serve_connection(builder, TokioIo::new(stream), dispatch, stop_seen).await
                }
                Ok((stream, Some(name))) => {
                    let named = WithClientCertName::new(dispatch, name);
                    let stream = Inbound::new(stream, min_time);
                    serve_connection(builder, TokioIo::new(stream), named, stop_seen).await
                }
                // As etcd, which logs each failed handshake as a rejected connection.
                Err(e) => tracing::warn!(remote_addr = %peer, "rejected connection: {e}"),
            }
        });
    }
    // No new connections; the open ones are told to finish, and hold a receiver until they have.
    drop(listener);
    let _ = stop.send(());
    drop(stop_seen);
    stop.closed().await;
}

/// Serves one connection's requests with `service` until the peer closes it, or, once
/// `stop_seen` changes, until its calls in flight have finished.
async fn serve_connection<I, S>(
    builder: auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    mut stop_seen: tokio::sync::watch::Receiver<()>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<AnswerBody>, Error = Infallible>,
    S::Future: 'static,
    TokioExecutor: auto::HttpServerConnExec<S::Future, AnswerBody>,
{
    let connection = builder.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stop_seen.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!("serving a connection: {e}");
    }
}

/// An accept error that concerns one connection only (the peer reset it while queued).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}
