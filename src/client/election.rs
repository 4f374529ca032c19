//! The Election service (etcd's server-side leader election). In-process, the library's
//! [`concurrency::Election`](crate::concurrency::Election) runs it, as etcd's server runs
//! clientv3's.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::kv::KeyValue;
use super::{dispatch, header_accessors, Backend, Client, Result};
use crate::concurrency::{self, service};
use crate::txn::request::ResponseHeader;

/// Who leads an election: the election's name, the leader's key, its create revision and
/// its lease.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LeaderKey {
    pub(crate) name: Vec<u8>,
    pub(crate) key: Vec<u8>,
    pub(crate) rev: i64,
    pub(crate) lease: i64,
}

impl LeaderKey {
    /// An empty leader key.
    pub const fn new() -> Self {
        LeaderKey { name: Vec::new(), key: Vec::new(), rev: 0, lease: 0 }
    }

    /// Sets the election's name.
    pub fn with_name(mut self, name: impl Into<Vec<u8>>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the leader's key.
    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = key.into();
        self
    }

    /// Sets the key's create revision.
    pub const fn with_rev(mut self, rev: i64) -> Self {
        self.rev = rev;
        self
    }

    /// Sets the leader's lease.
    pub const fn with_lease(mut self, lease: i64) -> Self {
        self.lease = lease;
        self
    }

    /// The election's name.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The election's name as UTF-8.
    pub fn name_str(&self) -> Result<&str> {
        Ok(std::str::from_utf8(&self.name)?)
    }

    /// The leader's key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The leader's key as UTF-8.
    pub fn key_str(&self) -> Result<&str> {
        Ok(std::str::from_utf8(&self.key)?)
    }

    /// The key's create revision.
    pub const fn rev(&self) -> i64 {
        self.rev
    }

    /// The leader's lease.
    pub const fn lease(&self) -> i64 {
        self.lease
    }
}

/// The answer to a campaign: the campaigner now leads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CampaignResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) leader: Option<LeaderKey>,
}

impl CampaignResponse {
    header_accessors!();

    /// The leader key to proclaim and resign with.
    pub fn leader(&self) -> Option<&LeaderKey> {
        self.leader.as_ref()
    }

    /// Takes the leader key out.
    pub fn take_leader(&mut self) -> Option<LeaderKey> {
        self.leader.take()
    }
}

/// Options of a proclaim call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProclaimOptions {
    pub(crate) leader: Option<LeaderKey>,
}

impl ProclaimOptions {
    /// No leader key (the server refuses that).
    pub const fn new() -> Self {
        ProclaimOptions { leader: None }
    }

    /// The leader key a campaign answered.
    pub fn with_leader(mut self, leader: LeaderKey) -> Self {
        self.leader = Some(leader);
        self
    }
}

/// The answer to a proclaim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProclaimResponse {
    pub(crate) header: Option<ResponseHeader>,
}

impl ProclaimResponse {
    header_accessors!();
}

/// The leader of an election.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) kv: Option<KeyValue>,
}

impl LeaderResponse {
    header_accessors!();

    /// The leader's key and value.
    pub fn kv(&self) -> Option<&KeyValue> {
        self.kv.as_ref()
    }

    /// Takes the leader's key-value out.
    pub fn take_kv(&mut self) -> Option<KeyValue> {
        self.kv.take()
    }
}

/// Options of a resign call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResignOptions {
    pub(crate) leader: Option<LeaderKey>,
}

impl ResignOptions {
    /// No leader key (the server refuses that).
    pub const fn new() -> Self {
        ResignOptions { leader: None }
    }

    /// The leader key a campaign answered.
    pub fn with_leader(mut self, leader: LeaderKey) -> Self {
        self.leader = Some(leader);
        self
    }
}

/// The answer to a resign.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResignResponse {
    pub(crate) header: Option<ResponseHeader>,
}

impl ResignResponse {
    header_accessors!();
}

/// The leaders of an election, one answer per change.
pub struct ObserveStream(ObserveInner);

enum ObserveInner {
    Embedded(concurrency::Observe),
    #[cfg(feature = "remote")]
    Remote(Box<etcd_client::ObserveStream>),
}

impl ObserveStream {
    /// The next leader; `None` once the stream has ended.
    pub async fn message(&mut self) -> Result<Option<LeaderResponse>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await.transpose()
    }

    pub(crate) fn embedded(observe: concurrency::Observe) -> Self {
        ObserveStream(ObserveInner::Embedded(observe))
    }

    #[cfg(feature = "remote")]
    pub(crate) fn remote(stream: etcd_client::ObserveStream) -> Self {
        ObserveStream(ObserveInner::Remote(Box::new(stream)))
    }
}

impl Stream for ObserveStream {
    type Item = Result<LeaderResponse>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut self.get_mut().0 {
            ObserveInner::Embedded(observe) => Pin::new(observe).poll_next(cx).map(|l| {
                l.map(|l| {
                    l.map(|mut leader| LeaderResponse {
                        header: leader.take_header(),
                        kv: leader.take_kvs().into_iter().next(),
                    })
                    .map_err(service::relayed)
                })
            }),
            #[cfg(feature = "remote")]
            ObserveInner::Remote(r) => Pin::new(r)
                .poll_next(cx)
                .map(|l| l.map(|l| l.map(super::remote::leader_response).map_err(super::Error::from))),
        }
    }
}

/// The Election service of a [`Client`](super::Client).
#[derive(Clone, Debug)]
pub struct ElectionClient {
    pub(crate) backend: Backend,
}

impl ElectionClient {
    /// Waits to lead election `name`, then leads it with `value`, on lease `lease`.
    pub async fn campaign(
        &mut self,
        name: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        lease: i64,
    ) -> Result<CampaignResponse> {
        let (name, value) = (name.into(), value.into());
        let client = Client::over(self.backend.clone());
        dispatch!(&mut self.backend, e => e.call(service::campaign(&client, name, value, lease)).await, r => super::remote::campaign(r, name, value, lease).await)
    }

    /// Sets the leader's value.
    pub async fn proclaim(
        &mut self,
        value: impl Into<Vec<u8>>,
        options: Option<ProclaimOptions>,
    ) -> Result<ProclaimResponse> {
        let value = value.into();
        let client = Client::over(self.backend.clone());
        dispatch!(&mut self.backend, e => {
            e.call(service::proclaim(&client, options.unwrap_or_default().leader, value)).await
        }, r => super::remote::proclaim(r, value, options.unwrap_or_default()).await)
    }

    /// The leader of election `name`.
    pub async fn leader(&mut self, name: impl Into<Vec<u8>>) -> Result<LeaderResponse> {
        let name = name.into();
        let client = Client::over(self.backend.clone());
        dispatch!(&mut self.backend, e => e.call(service::leader(&client, name)).await,
            r => super::remote::leader(r, name).await)
    }

    /// Streams the leaders of election `name`.
    pub async fn observe(&mut self, name: impl Into<Vec<u8>>) -> Result<ObserveStream> {
        let name = name.into();
        let client = Client::over(self.backend.clone());
        dispatch!(&mut self.backend, e => e.call(service::observe(&client, name)).await,
            r => super::remote::observe(r, name).await)
    }

    /// Gives up leadership.
    pub async fn resign(&mut self, options: Option<ResignOptions>) -> Result<ResignResponse> {
        let client = Client::over(self.backend.clone());
        dispatch!(&mut self.backend, e => e.call(service::resign(&client, options.unwrap_or_default().leader)).await, r => super::remote::resign(r, options.unwrap_or_default()).await)
    }
}

impl std::fmt::Debug for ObserveStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserveStream").finish_non_exhaustive()
    }
}
