//! Service registration and discovery: instances register under their service's name with
//! a TTL, stay while they renew it, and vanish when they stop.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use parking_lot::Mutex as PlMutex;
use serde::{Deserialize, Serialize};

use crate::client::{Client, EventType, GetOptions, PutOptions, WatchOptions};
use crate::concurrency::{Session, SessionOptions};

use super::follow::Follow;
use super::{lease_ttl, Error, Result, RetryPolicy};

/// Where services are registered: `services/<name>/<id>`, holding the instance's
/// [`ServiceInfo`] as JSON.
const ROOT: &str = "services/";

/// One instance of a service: where to reach it, and what else it says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// Unique among the service's instances.
    pub id: String,
    /// The service's name.
    pub name: String,
    /// Host name or address.
    pub address: String,
    /// Port.
    pub port: u16,
    /// Anything else (version, zone, weight...).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl ServiceInfo {
    /// Instance `id` of service `name` at `address:port`, without metadata.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        address: impl Into<String>,
        port: u16,
    ) -> Self {
        ServiceInfo {
            id: id.into(),
            name: name.into(),
            address: address.into(),
            port,
            metadata: BTreeMap::new(),
        }
    }

    /// Adds a metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// `http://address:port`.
    pub fn uri(&self) -> String {
        format!("http://{}:{}", self.address, self.port)
    }
}

/// A change to a service's instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceEvent {
    /// An instance registered, or registered again with new details.
    Put(ServiceInfo),
    /// An instance went: unregistered, or its TTL ran out.
    Delete {
        /// The instance's id.
        id: String,
    },
}

/// The changes to a service's instances, from [`ServiceRegistry::watch`].
#[derive(Debug)]
pub struct ServiceWatch(Follow<ServiceEvent>);

impl ServiceWatch {
    /// The next change; `None` once watching has ended.
    pub async fn next_event(&mut self) -> Option<Result<ServiceEvent>> {
        self.0.next_change().await
    }
}

impl Stream for ServiceWatch {
    type Item = Result<ServiceEvent>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().0).poll_next(cx)
    }
}

/// Registers service instances and finds them. An instance is a key on a lease of its own,
/// renewed in the background while it is registered; when its process dies the renewals
/// stop, and it vanishes from [`discover`](ServiceRegistry::discover) and
/// [`watch`](ServiceRegistry::watch) once its TTL has run out.
#[derive(Clone, Debug)]
pub struct ServiceRegistry {
    client: Client,
    retry: RetryPolicy,
    /// What this registry registered, by key (`services/<name>/<id>`).
    registered: Arc<PlMutex<HashMap<String, Registration>>>,
}

/// One registered instance: its key, and the session that keeps it alive.
#[derive(Clone, Debug)]
pub struct Registration {
    id: String,
    key: String,
    session: Session,
}

impl Registration {
    /// Revokes the instance's lease; one that has expired already is gone just the same.
    async fn end(&self) -> Result<()> {
        match self.session.close().await {
            Err(e) if e.status().is_some_and(|s| s.code() == crate::Code::NotFound) => Ok(()),
            ended => Ok(ended?),
        }
    }

    /// The instance's key (`services/<name>/<id>`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The session renewing the instance's lease: [`orphan`](Session::orphan) it to stop
    /// renewing without unregistering (the instance then lasts its TTL).
    pub fn session(&self) -> &Session {
        &self.session
    }
}

fn service_prefix(name: &str) -> String {
    format!("{ROOT}{name}/")
}

fn decode(key: &[u8], value: &[u8]) -> Result<ServiceInfo> {
    serde_json::from_slice(value)
        .map_err(|e| Error::Decode { key: String::from_utf8_lossy(key).into_owned(), message: e.to_string() })
}

impl ServiceRegistry {
    pub(crate) fn new(client: Client, retry: RetryPolicy) -> Self {
        ServiceRegistry { client, retry, registered: Arc::default() }
    }

    /// Registers `info`, kept for `ttl` after the last renewal. Registering the same id of
    /// the same service again replaces the earlier registration.
    pub async fn register(&self, info: ServiceInfo, ttl: Duration) -> Result<Registration> {
        if info.id.is_empty() || info.name.is_empty() || info.name.contains('/') {
            return Err(Error::InvalidArgs("a service needs an id and a name without '/'".into()));
        }
        let options = SessionOptions::new().with_ttl(lease_ttl(ttl)?);
        let session = self.retry.run(|| Session::new(&self.client, Some(options))).await?;
        let key = format!("{}{}", service_prefix(&info.name), info.id);
        let value = serde_json::to_vec(&info).map_err(|e| Error::Encode(e.to_string()))?;
        let put = PutOptions::new().with_lease(session.lease());
        let written = self
            .retry
            .run(|| {
                let mut client = self.client.clone();
                let (key, value, put) = (key.clone(), value.clone(), put.clone());
                async move { client.put(key, value, Some(put)).await }
            })
            .await;
        if let Err(e) = written {
            let _ = session.close().await;
            return Err(e.into());
        }
        let registration = Registration { id: info.id, key: key.clone(), session };
        let replaced = self.registered.lock().insert(key, registration.clone());
        if let Some(replaced) = replaced {
            // Its key now lives on the new lease; the old lease has nothing left to keep.
            let _ = replaced.session.close().await;
        }
        Ok(registration)
    }

    /// Unregisters instance `id` (registered by this registry, under any service name):
    /// its key goes at once.
    pub async fn unregister(&self, id: &str) -> Result<()> {
        let removed: Vec<Registration> = {
            let mut registered = self.registered.lock();
            let keys: Vec<String> =
                registered.values().filter(|r| r.id == id).map(|r| r.key.clone()).collect();
            keys.iter().filter_map(|key| registered.remove(key)).collect()
        };
        if removed.is_empty() {
            return Err(Error::NotRegistered(id.to_owned()));
        }
        for registration in removed {
            registration.end().await?;
        }
        Ok(())
    }

    /// Unregisters everything this registry registered.
    pub(crate) async fn unregister_all(&self) -> Result<()> {
        let all: Vec<_> = self.registered.lock().drain().map(|(_, r)| r).collect();
        for registration in all {
            registration.end().await?;
        }
        Ok(())
    }

    /// The instances of service `name` now. An entry that is not a `ServiceInfo`
    /// (written by something else) is skipped, with a warning in the log.
    pub async fn discover(&self, name: &str) -> Result<Vec<ServiceInfo>> {
        Ok(self.discover_at(name).await?.0)
    }

    async fn discover_at(&self, name: &str) -> Result<(Vec<ServiceInfo>, i64)> {
        let prefix = service_prefix(name);
        let resp = self
            .retry
            .run(|| {
                let mut client = self.client.clone();
                let prefix = prefix.clone();
                async move { client.get(prefix, Some(GetOptions::new().with_prefix())).await }
            })
            .await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let instances = resp
            .kvs()
            .iter()
            .filter_map(|kv| {
                decode(kv.key(), kv.value()).map_err(|e| tracing::warn!("skipping a registration: {e}")).ok()
            })
            .collect();
        Ok((instances, revision))
    }

    /// The changes to service `name`'s instances from now on.
    pub async fn watch(&self, name: &str) -> Result<ServiceWatch> {
        let (_, revision) = self.discover_at(name).await?;
        self.watch_from(name, revision + 1)
    }

    fn watch_from(&self, name: &str, revision: i64) -> Result<ServiceWatch> {
        let prefix = service_prefix(name);
        let follow = Follow::start(
            &self.client,
            prefix.clone().into_bytes(),
            WatchOptions::new().with_prefix(),
            revision,
            move |event| {
                let kv = event.kv()?;
                match event.event_type() {
                    EventType::Put => match decode(kv.key(), kv.value()) {
                        Ok(info) => Some(ServiceEvent::Put(info)),
                        Err(e) => {
                            tracing::warn!("skipping a registration: {e}");
                            None
                        }
                    },
                    EventType::Delete => {
                        let id = String::from_utf8_lossy(&kv.key()[prefix.len()..]).into_owned();
                        Some(ServiceEvent::Delete { id })
                    }
                }
            },
        )?;
        Ok(ServiceWatch(follow))
    }

    /// A gRPC channel to service `name` that balances calls over its instances and follows
    /// them as they register and go: an instance that stops renewing is dropped from the
    /// channel once its TTL runs out. Instances are reached at [`ServiceInfo::uri`]. If
    /// the registry's watch is cut short (a compaction, an outage), the instances are read
    /// again and followed from there; the following ends when the channel and its clones
    /// are dropped.
    #[cfg(feature = "balanced-channel")]
    pub async fn channel(&self, name: &str) -> Result<tonic::transport::Channel> {
        let (instances, revision) = self.discover_at(name).await?;
        let (channel, balance) = tonic::transport::Channel::balance_channel::<String>(64);
        tokio::spawn(self.clone().steer(name.to_owned(), instances, revision, balance));
        Ok(channel)
    }

    /// Keeps `balance`'s endpoints those of service `name`'s live instances, from
    /// `instances` read at `revision` on.
    #[cfg(feature = "balanced-channel")]
    async fn steer(
        self,
        name: String,
        mut instances: Vec<ServiceInfo>,
        mut revision: i64,
        balance: tokio::sync::mpsc::Sender<
            tonic::transport::channel::Change<String, tonic::transport::Endpoint>,
        >,
    ) {
        use std::collections::HashSet;
        use tonic::transport::channel::Change;

        fn endpoint(info: &ServiceInfo) -> Option<tonic::transport::Endpoint> {
            tonic::transport::Endpoint::from_shared(info.uri())
                .map_err(|e| tracing::warn!("skipping instance {} at {}: {e}", info.id, info.uri()))
                .ok()
        }

        let mut live: HashSet<String> = HashSet::new();
        loop {
            // Bring the channel to the instances just read.
            let now: HashSet<String> = instances.iter().map(|i| i.id.clone()).collect();
            let mut changes: Vec<_> = live.difference(&now).map(|id| Change::Remove(id.clone())).collect();
            for info in instances.iter().filter(|i| !live.contains(&i.id)) {
                changes.extend(endpoint(info).map(|e| Change::Insert(info.id.clone(), e)));
            }
            live = now;
            for change in changes {
                if balance.send(change).await.is_err() {
                    return;
                }
            }
            // Then every change after them, until the watch is cut short.
            let Ok(mut watch) = self.watch_from(&name, revision + 1) else { return };
            loop {
                let event = tokio::select! {
                    event = watch.next_event() => event,
                    // The channel and all its clones are gone: nothing left to steer.
                    _ = balance.closed() => return,
                };
                let change = match event {
                    Some(Ok(ServiceEvent::Put(info))) => match endpoint(&info) {
                        Some(endpoint) => {
                            live.insert(info.id.clone());
                            Change::Insert(info.id, endpoint)
                        }
                        None => continue,
                    },
                    Some(Ok(ServiceEvent::Delete { id })) => {
                        live.remove(&id);
                        Change::Remove(id)
                    }
                    Some(Err(_)) | None => break,
                };
                if balance.send(change).await.is_err() {
                    return;
                }
            }
            // Read the present again, after a pause, until the registry answers.
            loop {
                tokio::select! {
                    _ = futures_timer::Delay::new(self.retry.delay(1)) => {}
                    _ = balance.closed() => return,
                }
                if let Ok((now, at)) = self.discover_at(&name).await {
                    (instances, revision) = (now, at);
                    break;
                }
            }
        }
    }
}
