//! What every service shares: the store (whose [`Cluster`](etcdlite::cluster::Cluster)
//! holds this member's identity, alarms and quota), the stop signal, and the faults a
//! [`TestServer`](crate::TestServer) injects.

use std::future::Future;
use std::sync::Arc;

use etcdlite::auth::Caller;
use etcdlite::Store;
use tonic::Status;

use crate::faults::Faults;
use crate::pb::etcdserverpb::ResponseHeader;
use crate::status::to_status;
use crate::tls::ClientCertName;

/// What a request says of who sent it: its token (in its `token` metadata, or else its
/// `authorization` metadata: etcd reads both), and the Common Name of its verified client
/// certificate where the server checks client certificates (`--client-cert-auth`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The token, as sent.
    pub token: Option<Vec<u8>>,
    /// The client certificate's Common Name.
    pub certificate_name: Option<String>,
}

impl Credentials {
    /// The credentials `request` carries.
    pub fn of<T>(request: &tonic::Request<T>) -> Credentials {
        let metadata = request.metadata();
        let token =
            metadata.get("token").or_else(|| metadata.get("authorization")).map(|v| v.as_bytes().to_vec());
        let certificate_name = request.extensions().get::<ClientCertName>().map(|name| name.0.clone());
        Credentials { token, certificate_name }
    }
}

/// The state every service holds an `Arc` of.
pub struct Node {
    /// The one store every service (gRPC and gateway) reads and writes.
    pub store: Arc<Store>,
    /// Faults to inject, for tests of clients' retry paths (none unless a test sets them).
    pub faults: Faults,
    /// Set once the server is stopping: open streams end.
    stop: tokio::sync::watch::Sender<bool>,
    /// Set once a stopping server's grace period is over: calls still in flight end.
    abort: tokio::sync::watch::Sender<bool>,
}

impl Node {
    /// A node serving `store`.
    pub fn new(store: Arc<Store>) -> Node {
        Node {
            store,
            faults: Faults::default(),
            stop: tokio::sync::watch::channel(false).0,
            abort: tokio::sync::watch::channel(false).0,
        }
    }

    /// Tells every open stream (watch, lease keep-alive) that the server is stopping: each
    /// ends with etcd's "server stopped", so a graceful shutdown does not wait for clients
    /// that never hang up.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Why this node cannot serve every request, in etcd's `/health` words, or `None`
    /// when it can: a raised alarm (`ALARM NOSPACE`, `ALARM CORRUPT`), writes stopped
    /// after a failed sync, or a server that is stopping.
    pub fn unhealthy(&self) -> Option<String> {
        if *self.stop.borrow() {
            return Some("etcdserver: server stopped".to_owned());
        }
        if let Some(alarm) = self.store.cluster().alarms().first() {
            return Some(match alarm.alarm {
                etcdlite::cluster::AlarmType::Nospace => "ALARM NOSPACE".to_owned(),
                etcdlite::cluster::AlarmType::Corrupt => "ALARM CORRUPT".to_owned(),
                etcdlite::cluster::AlarmType::None => "ALARM UNKNOWN".to_owned(),
            });
        }
        self.store.failure().map(|e| e.to_string())
    }

    /// Resolves once [`stop`](Node::stop) has been called.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        raised(&self.stop)
    }

    /// Ends every call still in flight: each answers Unavailable "etcdserver: server
    /// stopped" (what a stopping server does once its grace period is over), so clients see
    /// etcd's answer rather than a connection closed under them.
    pub fn abort(&self) {
        self.abort.send_replace(true);
    }

    /// Resolves once [`abort`](Node::abort) has been called.
    pub fn aborted(&self) -> impl Future<Output = ()> + Send + 'static {
        raised(&self.abort)
    }

    /// Who `request` is from: the user of its token; without one, the user its client
    /// certificate names (with `--client-cert-auth`, as etcd); else nobody. A token that is
    /// unknown, expired or forged is a [`Caller::Refused`].
    pub fn caller<T>(&self, request: &tonic::Request<T>) -> Caller {
        self.caller_for(&Credentials::of(request))
    }

    /// Who a request carrying `credentials` is from, as [`caller`](Node::caller) says.
    pub fn caller_for(&self, credentials: &Credentials) -> Caller {
        let auth = self.store.auth();
        match (&credentials.token, &credentials.certificate_name) {
            (Some(token), _) => match std::str::from_utf8(token) {
                Ok(token) => auth.caller_from_token(token),
                // No token is read while auth is disabled, not even one that is not text.
                Err(_) if !auth.is_enabled() => Caller::anonymous(),
                Err(_) => Caller::Refused(etcdlite::Error::InvalidAuthToken),
            },
            (None, Some(name)) if auth.is_enabled() => auth.caller_from_certificate(name),
            (None, _) => Caller::anonymous(),
        }
    }

    /// Fails unless `request` is from an administrator (a user with the root role), or auth
    /// is disabled: etcd's check of maintenance and membership calls.
    pub fn require_admin<T>(&self, request: &tonic::Request<T>) -> Result<(), Status> {
        self.store.auth().check_admin(&self.caller(request)).map_err(to_status)
    }

    /// [`require_admin`](Node::require_admin) as etcd's Defragment, Hash, HashKV and
    /// Snapshot answer it: the auth store's own error, code Unknown (`auth: permission
    /// denied`).
    pub fn require_admin_unmapped<T>(&self, request: &tonic::Request<T>) -> Result<(), Status> {
        self.store.auth().check_admin(&self.caller(request)).map_err(|e| {
            match etcdlite::auth::unmapped_message(&e) {
                Some(message) => Status::unknown(message),
                None => to_status(e),
            }
        })
    }

    /// Fails when auth is enabled and `request` names no user (etcd's `requireAuthInfo`).
    pub fn require_user<T>(&self, request: &tonic::Request<T>) -> Result<(), Status> {
        self.store.auth().check_named(&self.caller(request)).map_err(to_status)
    }

    /// A top-level response header: cluster, member and term filled in, and the store's
    /// current revision when the response carries none (as etcd's v3rpc layer does).
    pub fn header(&self, header: Option<ResponseHeader>) -> Option<ResponseHeader> {
        let revision = header.map_or(0, |h| h.revision);
        let revision = if revision == 0 { self.store.current_revision() } else { revision };
        self.header_at(revision)
    }

    /// A watch response's header: cluster, member and term filled in, the revision left
    /// as the watch gave it (0 on a compaction cancel, as etcd sends it).
    pub fn watch_header(&self, header: Option<ResponseHeader>) -> Option<ResponseHeader> {
        self.header_at(header.map_or(0, |h| h.revision))
    }

    /// The header of a Cluster service response: revision 0, as etcd sends it.
    pub fn cluster_header(&self) -> Option<ResponseHeader> {
        self.header_at(0)
    }

    fn header_at(&self, revision: i64) -> Option<ResponseHeader> {
        let h = self.store.cluster().header(revision);
        Some(ResponseHeader {
            cluster_id: h.cluster_id,
            member_id: h.member_id,
            revision,
            raft_term: h.raft_term,
        })
    }

    /// The id of this member.
    pub fn member_id(&self) -> u64 {
        self.store.cluster().member_id()
    }

    /// etcd's quota guard for a write adding about `cost` bytes (see
    /// [`Store::check_quota`]): ResourceExhausted `etcdserver: mvcc: database space
    /// exceeded` while NOSPACE is raised or past the quota.
    pub fn check_space(&self, cost: usize) -> Result<(), Status> {
        self.store.check_quota(cost).map_err(to_status)
    }
}

/// Resolves once `flag` is set.
fn raised(flag: &tokio::sync::watch::Sender<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut flag = flag.subscribe();
    async move {
        let _ = flag.wait_for(|set| *set).await;
    }
}
