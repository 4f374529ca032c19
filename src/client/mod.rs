//! One async client with the `etcd-client` crate's API, three places to run it: over a
//! store in this process ([`Client::embedded`]), over an etcdlite
//! [`TestServer`](https://docs.rs/etcdlite-server) or a real etcd cluster
//! (`Client::connect`, with the `remote` feature). Switching between them is a constructor
//! change.
//!
//! The method names, option builders, response types and accessors are `etcd-client`
//! 0.21's, so a program written against `etcd-client` compiles against
//! `etcdlite::client` once its `use etcd_client::` lines and its constructor change, and
//! behaves the same: the same revisions, the same errors (a [`Status`] with etcd's code and
//! message), the same watch and keep-alive streams.
//!
//! ```
//! use etcdlite::client::{Client, Compare, CompareOp, EventType, GetOptions, Txn, TxnOp};
//! use etcdlite::{Options, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), etcdlite::client::Error> {
//! let mut client = Client::embedded(Store::open(Options::memory())?, None).await?;
//! let mut watch = client.watch("config/", Some(etcdlite::client::WatchOptions::new().with_prefix())).await?;
//! assert!(watch.message().await?.unwrap().created());
//!
//! client.put("config/mode", "blue", None).await?;
//! let got = client.get("config/", Some(GetOptions::new().with_prefix())).await?;
//! assert_eq!(got.kvs()[0].value_str()?, "blue");
//!
//! let cas = Txn::new()
//!     .when([Compare::value("config/mode", CompareOp::Equal, "blue")])
//!     .and_then([TxnOp::put("config/mode", "green", None)]);
//! assert!(client.txn(cas).await?.succeeded());
//!
//! let changes = watch.message().await?.unwrap();
//! assert_eq!(changes.events()[0].event_type(), EventType::Put);
//! # Ok(()) }
//! ```
//!
//! In-process, nothing blocks the caller's executor: writes are applied at once and
//! awaited until durable with no thread waiting, and compaction, hashes, snapshots and
//! defragmentation run on threads of the store's own. A store is shared by any number of
//! clients and async runtimes; a runtime ending never stops it.
//!
//! The Lock and Election services run in-process on the library's
//! [`concurrency`](crate::concurrency) types, as etcd's servers run clientv3's. Auth is
//! the store's own ([`auth`](crate::auth)): an in-process client is checked as a server
//! checks a connection, as the user of [`ConnectOptions::with_user`] or as nobody.
//! `docs/api.md` lists every method and where it works.

mod auth;
mod cluster;
mod election;
mod embedded;
mod error;
mod kv;
mod lease;
mod lock;
mod mailbox;
mod maintenance;
#[cfg(feature = "remote")]
mod remote;
mod watch;

use std::sync::Arc;
use std::time::Duration;

pub use auth::{
    AuthClient, AuthDisableResponse, AuthEnableResponse, AuthStatusResponse, AuthenticateResponse,
    Permission, PermissionType, RoleAddResponse, RoleDeleteResponse, RoleGetResponse,
    RoleGrantPermissionResponse, RoleListResponse, RoleRevokePermissionOptions, RoleRevokePermissionResponse,
    UserAddOptions, UserAddResponse, UserChangePasswordResponse, UserDeleteResponse, UserGetResponse,
    UserGrantRoleResponse, UserListResponse, UserRevokeRoleResponse,
};
pub use cluster::{
    ClusterClient, Member, MemberAddOptions, MemberAddResponse, MemberListResponse, MemberPromoteResponse,
    MemberRemoveResponse, MemberUpdateResponse,
};
pub use election::{
    CampaignResponse, ElectionClient, LeaderKey, LeaderResponse, ObserveStream, ProclaimOptions,
    ProclaimResponse, ResignOptions, ResignResponse,
};
pub use error::{Error, Result, Status};
pub use kv::{
    CompactionResponse, DeleteResponse, GetResponse, KeyValue, KvClient, PutResponse, TxnOpResponse,
    TxnResponse,
};
pub use lease::{
    LeaseClient, LeaseGrantResponse, LeaseKeepAliveResponse, LeaseKeepAliveStream, LeaseKeeper,
    LeaseLeasesResponse, LeaseRevokeResponse, LeaseTimeToLiveResponse,
};
pub use lock::{LockClient, LockOptions, LockResponse, UnlockResponse};
pub use maintenance::{
    AlarmOptions, AlarmResponse, DefragmentResponse, DowngradeInfo, DowngradeOptions, DowngradeResponse,
    HashKvResponse, HashResponse, MaintenanceClient, MoveLeaderResponse, SnapshotResponse, SnapshotStreaming,
    StatusResponse,
};
pub use watch::{Event, WatchClient, WatchRequestSender, WatchResponse, WatchResponseStream, WatchStream};

pub use crate::cluster::{AlarmAction, AlarmMember, AlarmType};
pub use crate::error::Code;
pub use crate::lease::{LeaseGrantOptions, LeaseStatus, LeaseTimeToLiveOptions};
pub use crate::options::{CompactionOptions, DeleteOptions, GetOptions, PutOptions, WatchOptions};
pub use crate::txn::request::{Compare, CompareOp, ResponseHeader, SortOrder, SortTarget, Txn, TxnOp};
pub use crate::watch::{EventType, WatchFilterType};

use crate::Store;
use embedded::Embedded;

/// Where a client's calls go.
#[derive(Clone, Debug)]
pub(crate) enum Backend {
    /// A store in this process.
    Embedded(Arc<Embedded>),
    /// An etcd cluster (or etcdlite server), through the `etcd-client` crate.
    #[cfg(feature = "remote")]
    Remote(Arc<remote::Remote>),
}

/// Runs the embedded or the remote form of a call: `dispatch!(backend, e => ..., r => ...)`
/// binds the embedded backend to `e` and the remote client to `r`. Without the `remote`
/// feature the remote form is not compiled.
macro_rules! dispatch {
    ($backend:expr, $e:ident => $embedded:expr, $r:ident => $remote:expr) => {
        match $backend {
            $crate::client::Backend::Embedded($e) => $embedded,
            #[cfg(feature = "remote")]
            $crate::client::Backend::Remote($r) => $remote,
        }
    };
}
pub(crate) use dispatch;

/// `header()` and `take_header()`, as every `etcd-client` response has them, over a
/// `header: Option<ResponseHeader>` field.
macro_rules! header_accessors {
    () => {
        /// The response header (`None` where etcd sends none).
        pub fn header(&self) -> Option<&$crate::client::ResponseHeader> {
            self.header.as_ref()
        }

        /// Takes the header out, leaving `None`.
        pub fn take_header(&mut self) -> Option<$crate::client::ResponseHeader> {
            self.header.take()
        }
    };
}
pub(crate) use header_accessors;

/// How a client connects (`etcd-client`'s options). In-process, what has a meaning there
/// is honoured: [`with_timeout`](ConnectOptions::with_timeout) bounds every call, and
/// [`with_user`](ConnectOptions::with_user) makes every call that user's. The network options (keep-alive, TCP, connect timeout) are kept for a remote client
/// and mean nothing in-process; [`with_require_leader`](ConnectOptions::with_require_leader)
/// is always met by a store, which leads its cluster of one.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub(crate) user: Option<(String, String)>,
    pub(crate) keep_alive: Option<(Duration, Duration)>,
    pub(crate) keep_alive_while_idle: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) tcp_keepalive: Option<Duration>,
    pub(crate) require_leader: bool,
    pub(crate) refresh_expired_token: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions::new()
    }
}

impl ConnectOptions {
    /// No options: no user, no timeout, keep-alive pings while idle when enabled.
    pub const fn new() -> Self {
        ConnectOptions {
            user: None,
            keep_alive: None,
            keep_alive_while_idle: true,
            timeout: None,
            connect_timeout: None,
            tcp_keepalive: None,
            require_leader: false,
            refresh_expired_token: false,
        }
    }

    /// Authenticates as `name` with `password` when connecting.
    pub fn with_user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((name.into(), password.into()));
        self
    }

    /// HTTP/2 keep-alive pings every `interval`, the connection dropped after `timeout`
    /// without an answer (remote only).
    pub fn with_keep_alive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keep_alive = Some((interval, timeout));
        self
    }

    /// A timeout for each call; a call that takes longer fails with Cancelled
    /// `Timeout expired`, as tonic reports it.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// A timeout for connecting (remote only).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// TCP keep-alive (remote only).
    pub fn with_tcp_keepalive(mut self, tcp_keepalive: Duration) -> Self {
        self.tcp_keepalive = Some(tcp_keepalive);
        self
    }

    /// Whether keep-alive pings are sent with no call open (remote only).
    pub fn with_keep_alive_while_idle(mut self, enabled: bool) -> Self {
        self.keep_alive_while_idle = enabled;
        self
    }

    /// Refuse calls while the cluster has no leader (a store always leads its own).
    pub fn with_require_leader(mut self, require_leader: bool) -> Self {
        self.require_leader = require_leader;
        self
    }

    /// Authenticate again when the token expires (an in-process client always does).
    pub fn with_auto_token_refresh(mut self, refresh_expired_token: bool) -> Self {
        self.refresh_expired_token = refresh_expired_token;
        self
    }
}

/// An etcd client: KV, watch, lease, maintenance and cluster calls, in-process over a
/// [`Store`] or, with the `remote` feature, over the network. Clones share the backend
/// (the store, or the connections), as `etcd-client`'s do.
#[derive(Clone, Debug)]
pub struct Client {
    kv: KvClient,
    watch: WatchClient,
    lease: LeaseClient,
    lock: LockClient,
    auth: AuthClient,
    maintenance: MaintenanceClient,
    cluster: ClusterClient,
    election: ElectionClient,
    backend: Backend,
}

impl Client {
    /// A client over `store`, in this process: no sockets, no encoding. `store` is an
    /// `Arc<Store>` (to share it with other clients, a server or sync code) or a `Store`.
    ///
    /// Its calls are checked as a server checks a connection's: with
    /// [`ConnectOptions::with_user`] they are that user's (authenticated now, so a wrong
    /// password fails here with `etcdserver: authentication failed, invalid user ID or
    /// password`, and again whenever the token is refused); without, they name no one,
    /// which is refused while auth is enabled (`etcdserver: user name is empty`).
    pub async fn embedded(store: impl Into<Arc<Store>>, options: Option<ConnectOptions>) -> Result<Client> {
        let options = options.unwrap_or_default();
        let identity = match options.user {
            Some((name, password)) => embedded::Identity::User { name, password, token: Default::default() },
            None => embedded::Identity::Relayed { token: None, certificate_name: None },
        };
        let embedded = Embedded::new(store.into(), options.timeout, identity);
        embedded.caller()?;
        Ok(Client::over(Backend::Embedded(Arc::new(embedded))))
    }

    /// An in-process client whose calls carry a caller's credentials: `token`, or without
    /// one the Common Name of a verified client certificate, checked as a server checks a
    /// request carrying them. For servers that make calls for their callers (the etcdlite
    /// server's Lock and Election services relay theirs so, as etcd's do).
    pub async fn embedded_relaying(
        store: impl Into<Arc<Store>>,
        token: Option<String>,
        certificate_name: Option<String>,
    ) -> Result<Client> {
        let identity = embedded::Identity::Relayed { token, certificate_name };
        let embedded = Embedded::new(store.into(), None, identity);
        Ok(Client::over(Backend::Embedded(Arc::new(embedded))))
    }

    /// A client of the etcd cluster at `endpoints` (`http://host:port` or `host:port`),
    /// through the `etcd-client` crate: the same API, against a real etcd cluster, an
    /// etcdlite server or a `TestServer`. Calls go to one endpoint; when it fails (a member
    /// stopped, a connection broke) they move to the next, and a call that failed on its
    /// way is sent again where that is safe: a read always, a write only if it never
    /// reached a server, so no write is applied twice.
    #[cfg(feature = "remote")]
    pub async fn connect<E: AsRef<str>, S: AsRef<[E]>>(
        endpoints: S,
        options: Option<ConnectOptions>,
    ) -> Result<Client> {
        let remote = remote::connect(endpoints, options.unwrap_or_default()).await?;
        Ok(Client::over(Backend::Remote(Arc::new(remote))))
    }

    pub(crate) fn over(backend: Backend) -> Client {
        Client {
            kv: KvClient { backend: backend.clone() },
            watch: WatchClient { backend: backend.clone() },
            lease: LeaseClient { backend: backend.clone() },
            lock: LockClient { backend: backend.clone() },
            auth: AuthClient { backend: backend.clone() },
            maintenance: MaintenanceClient { backend: backend.clone() },
            cluster: ClusterClient { backend: backend.clone() },
            election: ElectionClient { backend: backend.clone() },
            backend,
        }
    }

    /// The store under an in-process client (`None` for a remote one).
    pub fn store(&self) -> Option<&Arc<Store>> {
        match &self.backend {
            Backend::Embedded(e) => Some(&e.store),
            #[cfg(feature = "remote")]
            Backend::Remote(_) => None,
        }
    }

    /// Adds an endpoint to a remote client's set; an in-process client has none
    /// ([`Error::EndpointsNotManaged`]).
    pub async fn add_endpoint<E: AsRef<str>>(&self, endpoint: E) -> Result<()> {
        dispatch!(&self.backend, _e => {
            let _ = endpoint;
            Err(Error::EndpointsNotManaged)
        }, r => r.add_endpoint(endpoint.as_ref()).await)
    }

    /// Removes an endpoint from a remote client's set; an in-process client has none.
    pub async fn remove_endpoint<E: AsRef<str>>(&self, endpoint: E) -> Result<()> {
        dispatch!(&self.backend, _e => {
            let _ = endpoint;
            Err(Error::EndpointsNotManaged)
        }, r => r.remove_endpoint(endpoint.as_ref()))
    }

    /// The KV service.
    pub fn kv_client(&self) -> KvClient {
        self.kv.clone()
    }

    /// The Watch service.
    pub fn watch_client(&self) -> WatchClient {
        self.watch.clone()
    }

    /// The Lease service.
    pub fn lease_client(&self) -> LeaseClient {
        self.lease.clone()
    }

    /// The Auth service.
    pub fn auth_client(&self) -> AuthClient {
        self.auth.clone()
    }

    /// The Maintenance service.
    pub fn maintenance_client(&self) -> MaintenanceClient {
        self.maintenance.clone()
    }

    /// The Cluster service.
    pub fn cluster_client(&self) -> ClusterClient {
        self.cluster.clone()
    }

    /// The Lock service.
    pub fn lock_client(&self) -> LockClient {
        self.lock.clone()
    }

    /// The Election service.
    pub fn election_client(&self) -> ElectionClient {
        self.election.clone()
    }

    /// Puts `key` = `value`.
    pub async fn put(
        &mut self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        options: Option<PutOptions>,
    ) -> Result<PutResponse> {
        self.kv.put(key, value, options).await
    }

    /// Reads `key`, or the range `options` describe.
    pub async fn get(&mut self, key: impl Into<Vec<u8>>, options: Option<GetOptions>) -> Result<GetResponse> {
        self.kv.get(key, options).await
    }

    /// Deletes `key`, or the range `options` describe.
    pub async fn delete(
        &mut self,
        key: impl Into<Vec<u8>>,
        options: Option<DeleteOptions>,
    ) -> Result<DeleteResponse> {
        self.kv.delete(key, options).await
    }

    /// Compacts history below `revision`.
    pub async fn compact(
        &mut self,
        revision: i64,
        options: Option<CompactionOptions>,
    ) -> Result<CompactionResponse> {
        self.kv.compact(revision, options).await
    }

    /// Runs a transaction.
    pub async fn txn(&mut self, txn: Txn) -> Result<TxnResponse> {
        self.kv.txn(txn).await
    }

    /// Opens a watch stream with one watch of `key` (or the range `options` describe). Its
    /// first message is the watch's `created` response (or, for a watch that could not be
    /// created, one with `created` and `canceled` and the reason), as etcd sends it.
    pub async fn watch(
        &mut self,
        key: impl Into<Vec<u8>>,
        options: Option<WatchOptions>,
    ) -> Result<WatchStream> {
        self.watch.watch(key, options).await
    }

    /// Grants a lease of `ttl` seconds.
    pub async fn lease_grant(
        &mut self,
        ttl: i64,
        options: Option<LeaseGrantOptions>,
    ) -> Result<LeaseGrantResponse> {
        self.lease.grant(ttl, options).await
    }

    /// Revokes lease `id`, deleting its keys.
    pub async fn lease_revoke(&mut self, id: i64) -> Result<LeaseRevokeResponse> {
        self.lease.revoke(id).await
    }

    /// Opens a keep-alive stream for lease `id` (renewing it once): a keeper that sends
    /// keep-alives, and the stream of their answers.
    pub async fn lease_keep_alive(&mut self, id: i64) -> Result<(LeaseKeeper, LeaseKeepAliveStream)> {
        self.lease.keep_alive(id).await
    }

    /// The remaining and granted TTL of lease `id`.
    pub async fn lease_time_to_live(
        &mut self,
        id: i64,
        options: Option<LeaseTimeToLiveOptions>,
    ) -> Result<LeaseTimeToLiveResponse> {
        self.lease.time_to_live(id, options).await
    }

    /// Every live lease.
    pub async fn leases(&mut self) -> Result<LeaseLeasesResponse> {
        self.lease.leases().await
    }

    /// Acquires the lock `name` (etcd's Lock service).
    pub async fn lock(
        &mut self,
        name: impl Into<Vec<u8>>,
        options: Option<LockOptions>,
    ) -> Result<LockResponse> {
        self.lock.lock(name, options).await
    }

    /// Releases a lock by the key [`lock`](Client::lock) answered.
    pub async fn unlock(&mut self, key: impl Into<Vec<u8>>) -> Result<UnlockResponse> {
        self.lock.unlock(key).await
    }

    /// Enables auth.
    pub async fn auth_enable(&mut self) -> Result<AuthEnableResponse> {
        self.auth.auth_enable().await
    }

    /// Disables auth.
    pub async fn auth_disable(&mut self) -> Result<AuthDisableResponse> {
        self.auth.auth_disable().await
    }

    /// Whether auth is enabled, and the auth revision (in-process only: the etcd-client
    /// crate has no such call).
    pub async fn auth_status(&mut self) -> Result<AuthStatusResponse> {
        self.auth.auth_status().await
    }

    /// Adds role `name`.
    pub async fn role_add(&mut self, name: impl Into<String>) -> Result<RoleAddResponse> {
        self.auth.role_add(name).await
    }

    /// Deletes role `name`.
    pub async fn role_delete(&mut self, name: impl Into<String>) -> Result<RoleDeleteResponse> {
        self.auth.role_delete(name).await
    }

    /// Role `name` and its permissions.
    pub async fn role_get(&mut self, name: impl Into<String>) -> Result<RoleGetResponse> {
        self.auth.role_get(name).await
    }

    /// Every role.
    pub async fn role_list(&mut self) -> Result<RoleListResponse> {
        self.auth.role_list().await
    }

    /// Grants `perm` to role `name`.
    pub async fn role_grant_permission(
        &mut self,
        name: impl Into<String>,
        perm: Permission,
    ) -> Result<RoleGrantPermissionResponse> {
        self.auth.role_grant_permission(name, perm).await
    }

    /// Revokes role `name`'s permission on `key` (or the range `options` describe).
    pub async fn role_revoke_permission(
        &mut self,
        name: impl Into<String>,
        key: impl Into<Vec<u8>>,
        options: Option<RoleRevokePermissionOptions>,
    ) -> Result<RoleRevokePermissionResponse> {
        self.auth.role_revoke_permission(name, key, options).await
    }

    /// Adds user `name`.
    pub async fn user_add(
        &mut self,
        name: impl Into<String>,
        password: impl Into<String>,
        options: Option<UserAddOptions>,
    ) -> Result<UserAddResponse> {
        self.auth.user_add(name, password, options).await
    }

    /// User `name` and their roles.
    pub async fn user_get(&mut self, name: impl Into<String>) -> Result<UserGetResponse> {
        self.auth.user_get(name).await
    }

    /// Every user.
    pub async fn user_list(&mut self) -> Result<UserListResponse> {
        self.auth.user_list().await
    }

    /// Deletes user `name`.
    pub async fn user_delete(&mut self, name: impl Into<String>) -> Result<UserDeleteResponse> {
        self.auth.user_delete(name).await
    }

    /// Changes user `name`'s password.
    pub async fn user_change_password(
        &mut self,
        name: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<UserChangePasswordResponse> {
        self.auth.user_change_password(name, password).await
    }

    /// Grants `role` to `user`.
    pub async fn user_grant_role(
        &mut self,
        user: impl Into<String>,
        role: impl Into<String>,
    ) -> Result<UserGrantRoleResponse> {
        self.auth.user_grant_role(user, role).await
    }

    /// Revokes `role` from `user`.
    pub async fn user_revoke_role(
        &mut self,
        user: impl Into<String>,
        role: impl Into<String>,
    ) -> Result<UserRevokeRoleResponse> {
        self.auth.user_revoke_role(user, role).await
    }

    /// Lists, raises or clears alarms.
    pub async fn alarm(
        &mut self,
        alarm_action: AlarmAction,
        alarm_type: AlarmType,
        options: Option<AlarmOptions>,
    ) -> Result<AlarmResponse> {
        self.maintenance.alarm(alarm_action, alarm_type, options).await
    }

    /// The member's status.
    pub async fn status(&mut self) -> Result<StatusResponse> {
        self.maintenance.status().await
    }

    /// Gives back the space deleted data held.
    pub async fn defragment(&mut self) -> Result<DefragmentResponse> {
        self.maintenance.defragment().await
    }

    /// A hash of the whole backend.
    pub async fn hash(&mut self) -> Result<HashResponse> {
        self.maintenance.hash().await
    }

    /// A hash of the history up to `revision` (0: the current revision).
    pub async fn hash_kv(&mut self, revision: i64) -> Result<HashKvResponse> {
        self.maintenance.hash_kv(revision).await
    }

    /// Streams a snapshot of the backend.
    pub async fn snapshot(&mut self) -> Result<SnapshotStreaming> {
        self.maintenance.snapshot().await
    }

    /// Adds a member with peer `urls` (`http://` is added to those without a scheme).
    pub async fn member_add<E: AsRef<str>, S: AsRef<[E]>>(
        &mut self,
        urls: S,
        options: Option<MemberAddOptions>,
    ) -> Result<MemberAddResponse> {
        let urls: Vec<String> = urls
            .as_ref()
            .iter()
            .map(|url| {
                let url = url.as_ref();
                if url.starts_with("http://") || url.starts_with("https://") {
                    url.to_owned()
                } else {
                    format!("http://{url}")
                }
            })
            .collect();
        self.cluster.member_add(urls, options).await
    }

    /// Removes member `id`.
    pub async fn member_remove(&mut self, id: u64) -> Result<MemberRemoveResponse> {
        self.cluster.member_remove(id).await
    }

    /// Replaces member `id`'s peer URLs.
    pub async fn member_update(
        &mut self,
        id: u64,
        url: impl Into<Vec<String>>,
    ) -> Result<MemberUpdateResponse> {
        self.cluster.member_update(id, url).await
    }

    /// Promotes learner `id`.
    pub async fn member_promote(&mut self, id: u64) -> Result<MemberPromoteResponse> {
        self.cluster.member_promote(id).await
    }

    /// Every member.
    pub async fn member_list(&mut self) -> Result<MemberListResponse> {
        self.cluster.member_list().await
    }

    /// Hands leadership to member `target_id`.
    pub async fn move_leader(&mut self, target_id: u64) -> Result<MoveLeaderResponse> {
        self.maintenance.move_leader(target_id).await
    }

    /// Campaigns for leadership of election `name` with `value`, on lease `lease`.
    pub async fn campaign(
        &mut self,
        name: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        lease: i64,
    ) -> Result<CampaignResponse> {
        self.election.campaign(name, value, lease).await
    }

    /// Sets the leader's value.
    pub async fn proclaim(
        &mut self,
        value: impl Into<Vec<u8>>,
        options: Option<ProclaimOptions>,
    ) -> Result<ProclaimResponse> {
        self.election.proclaim(value, options).await
    }

    /// The leader of election `name`.
    pub async fn leader(&mut self, name: impl Into<Vec<u8>>) -> Result<LeaderResponse> {
        self.election.leader(name).await
    }

    /// Streams the leaders of election `name`.
    pub async fn observe(&mut self, name: impl Into<Vec<u8>>) -> Result<ObserveStream> {
        self.election.observe(name).await
    }

    /// Gives up leadership.
    pub async fn resign(&mut self, option: Option<ResignOptions>) -> Result<ResignResponse> {
        self.election.resign(option).await
    }

    /// Authenticates again with the client's user (nothing to do without one).
    pub async fn refresh_token(&self) -> Result<()> {
        dispatch!(&self.backend, e => e.refresh_token(), r => r.refresh_token().await)
    }

    /// Changes the user the client authenticates as (`None`: no user).
    pub async fn update_user(&mut self, user: Option<(String, String)>) -> Result<()> {
        dispatch!(&mut self.backend, e => {
            let identity = match user {
                Some((name, password)) => embedded::Identity::User { name, password, token: Default::default() },
                None => embedded::Identity::Relayed { token: None, certificate_name: None },
            };
            e.set_identity(identity);
            e.caller().map(|_| ())
        }, r => r.update_user(user).await)
    }
}
