//! The Lease service: grant, revoke, keep-alive streams, time-to-live and the list.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::embedded::Embedded;
use super::mailbox::{self, mailbox};
use super::{dispatch, header_accessors, Backend, Error, Result, Status};
use crate::lease::{LeaseGrantOptions, LeaseStatus, LeaseTimeToLiveOptions};
use crate::txn::request::ResponseHeader;

/// Keep-alive answers an in-process stream holds for its reader before dropping the
/// oldest (a keeper whose answers are never read must not grow without bound).
const ANSWERS_HELD: usize = 128;

/// The answer to a grant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseGrantResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) id: i64,
    pub(crate) ttl: i64,
    pub(crate) error: String,
}

impl LeaseGrantResponse {
    header_accessors!();

    /// The TTL granted, in seconds (at least etcd's 2 s minimum).
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// The lease's id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// An error the server reported in the response (etcd leaves it empty).
    pub fn error(&self) -> &str {
        &self.error
    }
}

/// The answer to a revoke.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseRevokeResponse {
    pub(crate) header: Option<ResponseHeader>,
}

impl LeaseRevokeResponse {
    header_accessors!();
}

/// One answer of a keep-alive stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseKeepAliveResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) id: i64,
    pub(crate) ttl: i64,
}

impl LeaseKeepAliveResponse {
    header_accessors!();

    /// The TTL the lease now has left (its full TTL), or 0 when it is unknown or expired.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// The lease's id.
    pub fn id(&self) -> i64 {
        self.id
    }
}

/// The answer to a time-to-live query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseTimeToLiveResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) id: i64,
    pub(crate) ttl: i64,
    pub(crate) granted_ttl: i64,
    pub(crate) keys: Vec<Vec<u8>>,
}

impl LeaseTimeToLiveResponse {
    header_accessors!();

    /// Whole seconds left; -1 when the lease does not exist.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// The lease's id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The TTL the lease was granted.
    pub fn granted_ttl(&self) -> i64 {
        self.granted_ttl
    }

    /// The attached keys, when asked for.
    pub fn keys(&self) -> &[Vec<u8>] {
        &self.keys
    }
}

/// The answer to a lease listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseLeasesResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) leases: Vec<LeaseStatus>,
}

impl LeaseLeasesResponse {
    header_accessors!();

    /// Every live lease.
    pub fn leases(&self) -> &[LeaseStatus] {
        &self.leases
    }
}

/// The Lease service of a [`Client`](super::Client).
#[derive(Clone, Debug)]
pub struct LeaseClient {
    pub(crate) backend: Backend,
}

impl LeaseClient {
    /// Grants a lease of `ttl` seconds.
    pub async fn grant(
        &mut self,
        ttl: i64,
        options: Option<LeaseGrantOptions>,
    ) -> Result<LeaseGrantResponse> {
        dispatch!(&mut self.backend, e => e.grant(ttl, options).await, r => super::remote::lease_grant(r, ttl, options).await)
    }

    /// Revokes lease `id`, deleting its keys in one revision.
    pub async fn revoke(&mut self, id: i64) -> Result<LeaseRevokeResponse> {
        dispatch!(&mut self.backend, e => e.revoke(id).await, r => super::remote::lease_revoke(r, id).await)
    }

    /// Opens a keep-alive stream for lease `id`, renewing it once: an unknown or expired
    /// lease fails with [`Error::LeaseKeepAliveError`] (`lease not found`), as in
    /// `etcd-client`. Each [`LeaseKeeper::keep_alive`] then renews it, and its answer comes
    /// on the [`LeaseKeepAliveStream`] (TTL 0 once the lease is gone).
    pub async fn keep_alive(&mut self, id: i64) -> Result<(LeaseKeeper, LeaseKeepAliveStream)> {
        dispatch!(&mut self.backend, e => Embedded::keep_alive(e, id).await, r => super::remote::lease_keep_alive(r, id).await)
    }

    /// The remaining and granted TTL of lease `id` (-1 for an unknown lease).
    pub async fn time_to_live(
        &mut self,
        id: i64,
        options: Option<LeaseTimeToLiveOptions>,
    ) -> Result<LeaseTimeToLiveResponse> {
        dispatch!(
            &mut self.backend,
            e => e.time_to_live(id, options).await,
            r => super::remote::lease_time_to_live(r, id, options).await
        )
    }

    /// Every live lease.
    pub async fn leases(&mut self) -> Result<LeaseLeasesResponse> {
        dispatch!(&mut self.backend, e => e.leases().await, r => super::remote::leases(r).await)
    }
}

/// The sending end of a keep-alive stream: each [`keep_alive`](LeaseKeeper::keep_alive)
/// renews the lease. Dropping it ends the stream.
pub struct LeaseKeeper {
    id: i64,
    inner: KeeperInner,
}

enum KeeperInner {
    Embedded {
        /// Whose renewals they are: each is checked as its caller's.
        client: Arc<Embedded>,
        answers: mailbox::Sender<std::result::Result<LeaseKeepAliveResponse, Status>>,
    },
    #[cfg(feature = "remote")]
    Remote(etcd_client::LeaseKeeper),
}

impl LeaseKeeper {
    /// The lease kept alive.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Renews the lease; the answer comes on the stream. Fails with
    /// [`Error::LeaseKeepAliveError`] once the stream has been dropped.
    pub async fn keep_alive(&mut self) -> Result<()> {
        match &mut self.inner {
            KeeperInner::Embedded { client, answers } => {
                if answers.is_closed() {
                    return Err(Error::LeaseKeepAliveError("channel closed".into()));
                }
                answers.send(renew(client, self.id).await);
                Ok(())
            }
            #[cfg(feature = "remote")]
            KeeperInner::Remote(r) => Ok(r.keep_alive().await?),
        }
    }

    #[cfg(feature = "remote")]
    pub(crate) fn remote(keeper: etcd_client::LeaseKeeper) -> Self {
        LeaseKeeper { id: keeper.id(), inner: KeeperInner::Remote(keeper) }
    }
}

/// The answers of a keep-alive stream. It ends once its [`LeaseKeeper`] is dropped and
/// every answer has been read.
pub struct LeaseKeepAliveStream(StreamInner);

enum StreamInner {
    Embedded(mailbox::Receiver<std::result::Result<LeaseKeepAliveResponse, Status>>),
    #[cfg(feature = "remote")]
    Remote(Box<etcd_client::LeaseKeepAliveStream>),
}

impl LeaseKeepAliveStream {
    /// The next answer; `None` once the stream has ended.
    pub async fn message(&mut self) -> Result<Option<LeaseKeepAliveResponse>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await.transpose()
    }

    #[cfg(feature = "remote")]
    pub(crate) fn remote(stream: etcd_client::LeaseKeepAliveStream) -> Self {
        LeaseKeepAliveStream(StreamInner::Remote(Box::new(stream)))
    }
}

impl Stream for LeaseKeepAliveStream {
    type Item = Result<LeaseKeepAliveResponse>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut self.get_mut().0 {
            StreamInner::Embedded(answers) => {
                answers.poll_recv(cx).map(|a| a.map(|a| a.map_err(Error::from)))
            }
            #[cfg(feature = "remote")]
            StreamInner::Remote(r) => Pin::new(r)
                .poll_next(cx)
                .map(|a| a.map(|a| a.map(super::remote::keep_alive_response).map_err(Error::from))),
        }
    }
}

/// One keep-alive of an in-process stream, answered as etcd's server answers it on the
/// stream: the header taken before the renewal, TTL 0 for a lease that is unknown or
/// expired; a caller who may not renew it (etcd 3.5's `checkLeaseRenew`) gets the error.
async fn renew(client: &Embedded, id: i64) -> std::result::Result<LeaseKeepAliveResponse, Status> {
    let store = &client.store;
    let header = Some(store.cluster().header(store.current_revision()));
    let caller = client.caller().map_err(|e| match e {
        Error::GRpcStatus(status) => status,
        other => Status::new(crate::error::Code::Unknown, other.to_string()),
    })?;
    store.as_caller(&caller).check_lease_renew(id)?;
    match store.lease_keep_alive_async(id).await {
        Ok(resp) => Ok(LeaseKeepAliveResponse { header, id, ttl: resp.ttl }),
        Err(crate::Error::LeaseNotFound) => Ok(LeaseKeepAliveResponse { header, id, ttl: 0 }),
        Err(e) => Err(e.into()),
    }
}

impl Embedded {
    async fn grant(&self, ttl: i64, options: Option<LeaseGrantOptions>) -> Result<LeaseGrantResponse> {
        self.call(async {
            self.store.check_quota(crate::lease::GRANT_QUOTA_COST)?;
            self.store.auth().check_credentials(&self.caller()?)?;
            let resp = self.store.lease_grant_async(ttl, options).await?;
            Ok(LeaseGrantResponse {
                header: self.header(resp.header.revision),
                id: resp.id,
                ttl: resp.ttl,
                error: String::new(),
            })
        })
        .await
    }

    async fn revoke(&self, id: i64) -> Result<LeaseRevokeResponse> {
        self.call(async {
            let caller = self.caller()?;
            let resp = self.store.as_caller(&caller).lease_revoke_async(id).await?;
            Ok(LeaseRevokeResponse { header: self.header(resp.header.revision) })
        })
        .await
    }

    async fn keep_alive(self: &Arc<Self>, id: i64) -> Result<(LeaseKeeper, LeaseKeepAliveStream)> {
        let first = self.call(async { Ok(renew(self, id).await?) }).await?;
        if first.ttl <= 0 {
            return Err(Error::LeaseKeepAliveError("lease not found".into()));
        }
        let (answers, received) = mailbox(ANSWERS_HELD);
        let keeper = LeaseKeeper { id, inner: KeeperInner::Embedded { client: self.clone(), answers } };
        Ok((keeper, LeaseKeepAliveStream(StreamInner::Embedded(received))))
    }

    async fn time_to_live(
        &self,
        id: i64,
        options: Option<LeaseTimeToLiveOptions>,
    ) -> Result<LeaseTimeToLiveResponse> {
        self.call(async {
            let caller = self.caller()?;
            let resp = self.store.as_caller(&caller).lease_time_to_live_async(id, options).await?;
            Ok(LeaseTimeToLiveResponse {
                header: self.header(resp.header.revision),
                id: resp.id,
                ttl: resp.ttl,
                granted_ttl: resp.granted_ttl,
                keys: resp.keys,
            })
        })
        .await
    }

    async fn leases(&self) -> Result<LeaseLeasesResponse> {
        self.call(async {
            let caller = self.caller()?;
            let resp = self.store.as_caller(&caller).lease_leases_async().await?;
            Ok(LeaseLeasesResponse { header: self.header(resp.header.revision), leases: resp.leases })
        })
        .await
    }
}

impl std::fmt::Debug for LeaseKeepAliveStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseKeepAliveStream").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LeaseKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseKeeper").field("id", &self.id).finish_non_exhaustive()
    }
}
