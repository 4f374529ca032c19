//! A config center: typed values stored as JSON, read, listed and watched.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::{Client, EventType, GetOptions, WatchOptions};

use super::follow::Follow;
use super::{Error, Result, RetryPolicy};

/// A change to a watched config value.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigEvent<T> {
    /// `key` was set to `value`, at `revision`.
    Put {
        /// The key.
        key: String,
        /// Its new value.
        value: T,
        /// The revision of the change.
        revision: i64,
    },
    /// `key` was deleted, at `revision`.
    Delete {
        /// The key.
        key: String,
        /// The revision of the change.
        revision: i64,
    },
    /// `key` was set to something that is not the JSON of a `T`: reported, not dropped.
    Invalid {
        /// The key.
        key: String,
        /// Why it did not decode.
        error: String,
        /// The revision of the change.
        revision: i64,
    },
}

/// Typed changes to a key or prefix, from [`ConfigCenter::watch`] and
/// [`ConfigCenter::watch_prefix`].
pub struct ConfigWatch<T>(Follow<ConfigEvent<T>>);

impl<T> ConfigWatch<T> {
    /// The next change; `None` once watching has ended.
    pub async fn next_event(&mut self) -> Option<Result<ConfigEvent<T>>> {
        self.0.next_change().await
    }
}

impl<T> Stream for ConfigWatch<T> {
    type Item = Result<ConfigEvent<T>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().0).poll_next(cx)
    }
}

impl<T> std::fmt::Debug for ConfigWatch<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigWatch").finish_non_exhaustive()
    }
}

/// Config values of any serde type, stored as JSON under their keys.
#[derive(Clone, Debug)]
pub struct ConfigCenter {
    client: Client,
    retry: RetryPolicy,
}

fn decode<T: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T> {
    serde_json::from_slice(value)
        .map_err(|e| Error::Decode { key: String::from_utf8_lossy(key).into_owned(), message: e.to_string() })
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgs("a config key must not be empty".into()));
    }
    Ok(())
}

impl ConfigCenter {
    pub(crate) fn new(client: Client, retry: RetryPolicy) -> Self {
        ConfigCenter { client, retry }
    }

    /// The value of `key`; `None` when unset; [`Error::Decode`] when it is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        check_key(key)?;
        let resp = self
            .retry
            .run(|| {
                let mut client = self.client.clone();
                async move { client.get(key, None).await }
            })
            .await?;
        resp.kvs().first().map(|kv| decode(kv.key(), kv.value())).transpose()
    }

    /// Sets `key` to `value`; returns the revision of the write.
    pub async fn set<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<i64> {
        check_key(key)?;
        let json = serde_json::to_vec(value).map_err(|e| Error::Encode(e.to_string()))?;
        let resp = self
            .retry
            .run(|| {
                let mut client = self.client.clone();
                let json = json.clone();
                async move { client.put(key, json, None).await }
            })
            .await?;
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    /// Deletes `key`; true if it was set.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        let resp = self
            .retry
            .run(|| {
                let mut client = self.client.clone();
                async move { client.delete(key, None).await }
            })
            .await?;
        Ok(resp.deleted() > 0)
    }

    /// Every value under `prefix`, by key; [`Error::Decode`] names the first that is not
    /// a `T`.
    pub async fn list<T: DeserializeOwned>(&self, prefix: &str) -> Result<BTreeMap<String, T>> {
        check_key(prefix)?;
        let resp = self
            .retry
            .run(|| {
                let mut client = self.client.clone();
                async move { client.get(prefix, Some(GetOptions::new().with_prefix())).await }
            })
            .await?;
        resp.kvs()
            .iter()
            .map(|kv| Ok((String::from_utf8_lossy(kv.key()).into_owned(), decode(kv.key(), kv.value())?)))
            .collect()
    }

    /// The changes to `key` from now on.
    pub async fn watch<T: DeserializeOwned + Send + 'static>(&self, key: &str) -> Result<ConfigWatch<T>> {
        self.follow(key, WatchOptions::new()).await
    }

    /// The changes to every key under `prefix` from now on, in the order they happened.
    pub async fn watch_prefix<T: DeserializeOwned + Send + 'static>(
        &self,
        prefix: &str,
    ) -> Result<ConfigWatch<T>> {
        self.follow(prefix, WatchOptions::new().with_prefix()).await
    }

    async fn follow<T: DeserializeOwned + Send + 'static>(
        &self,
        key: &str,
        options: WatchOptions,
    ) -> Result<ConfigWatch<T>> {
        check_key(key)?;
        // From the revision after now, so nothing between this call and the watch is missed.
        let now = self
            .retry
            .run(|| {
                let mut client = self.client.clone();
                async move { client.get(key, Some(GetOptions::new().with_count_only())).await }
            })
            .await?;
        let from = now.header().map_or(0, |h| h.revision()) + 1;
        let follow = Follow::start(&self.client, key.as_bytes().to_vec(), options, from, |event| {
            let kv = event.kv()?;
            let (key, revision) = (String::from_utf8_lossy(kv.key()).into_owned(), kv.mod_revision());
            Some(match event.event_type() {
                EventType::Delete => ConfigEvent::Delete { key, revision },
                EventType::Put => match decode::<T>(kv.key(), kv.value()) {
                    Ok(value) => ConfigEvent::Put { key, value, revision },
                    Err(e) => ConfigEvent::Invalid { key, error: e.to_string(), revision },
                },
            })
        })?;
        Ok(ConfigWatch(follow))
    }
}
