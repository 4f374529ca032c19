//! A local copy of a prefix kept current by a watch (Curator's `PathChildrenCache`, which
//! etcd lacks).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex as PlMutex;
use tokio::sync::{oneshot, watch, Notify};

use crate::client::{Client, EventType, GetOptions, KeyValue, WatchOptions, WatchResponse};

use super::super::{Error, Result};
use super::key::check_name;

/// How long the first retry of a broken watch or a failed reload waits; each failure in a
/// row doubles it, up to [`MAX_RETRY_DELAY`].
const RETRY_DELAY: Duration = Duration::from_millis(200);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// How often a [`PrefixCache::wait_for`] that is not answered asks again for progress
/// (a server answers a progress request only once its watches have caught up).
const PROGRESS_RETRY: Duration = Duration::from_millis(500);

/// A local, always-current copy of every key under a prefix, read without a round trip.
///
/// The copy is loaded with one ranged read at revision R, then kept in step by a watch of
/// the prefix from R + 1 that applies each put and delete in revision order. When the
/// watch is cancelled because the revisions it needs were compacted away (the cache fell
/// too far behind), the cache loads the prefix afresh and watches from there; a watch that
/// breaks is opened again from the first revision not applied. The watch runs on a task
/// of the tokio runtime the cache was created in, stopped when the cache is dropped.
///
/// The prefix is taken as etcd takes one: `app/` covers `app/x` but not `apps`.
#[derive(Debug)]
pub struct PrefixCache {
    shared: Arc<Shared>,
    /// Dropped with the cache, which stops its task.
    _stop: oneshot::Sender<()>,
}

#[derive(Debug)]
struct Shared {
    prefix: Vec<u8>,
    copy: PlMutex<Local>,
    /// The revision the copy is current at, for waiters.
    current: watch::Sender<i64>,
    /// Asks the task for a progress notification.
    progress: Notify,
    reloads: AtomicU64,
}

#[derive(Debug, Default)]
struct Local {
    kvs: BTreeMap<Vec<u8>, KeyValue>,
    revision: i64,
}

/// Why a watch of the task ended.
enum Ended {
    /// Cancelled because its revisions were compacted: the copy must be loaded again.
    Compacted,
    /// Broken; `applied` tells whether it delivered anything first.
    Broken { error: Error, applied: bool },
}

impl PrefixCache {
    /// Loads the keys under `prefix` and starts following them on a task of the current
    /// tokio runtime. Fails with [`Error::InvalidArgs`] for an empty prefix or outside a
    /// tokio runtime, and with the client's error when the first read fails; later
    /// failures are retried in the background.
    pub async fn new(client: &Client, prefix: impl Into<Vec<u8>>) -> Result<PrefixCache> {
        let prefix = prefix.into();
        check_name(&prefix, "a prefix cache")?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::InvalidArgs(
                "a prefix cache follows its prefix on a tokio runtime: create it inside one".into(),
            )
        })?;
        let mut client = client.clone();
        let copy = load(&mut client, &prefix).await?;
        let (current, _) = watch::channel(copy.revision);
        let shared = Arc::new(Shared {
            prefix,
            copy: PlMutex::new(copy),
            current,
            progress: Notify::new(),
            reloads: AtomicU64::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        runtime.spawn(follow(client, shared.clone(), stopped));
        Ok(PrefixCache { shared, _stop: stop })
    }

    /// The key-value of `key` in the copy, if the key exists there.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<KeyValue> {
        self.shared.copy.lock().kvs.get(key.as_ref()).cloned()
    }

    /// Every key-value of the copy, by key, and the revision they are current at.
    pub fn snapshot(&self) -> (i64, BTreeMap<Vec<u8>, KeyValue>) {
        let copy = self.shared.copy.lock();
        (copy.revision, copy.kvs.clone())
    }

    /// How many keys the copy holds.
    pub fn len(&self) -> usize {
        self.shared.copy.lock().kvs.len()
    }

    /// Whether the copy holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The revision the copy is current at: every change up to it is applied.
    pub fn revision(&self) -> i64 {
        self.shared.copy.lock().revision
    }

    /// Resolves once the copy is current at `revision` or later, e.g. the revision a write
    /// answered with. A revision with no change under the prefix is reached through a
    /// progress notification. While the server cannot be reached this waits: bound it with
    /// a timeout.
    pub async fn wait_for(&self, revision: i64) {
        let mut current = self.shared.current.subscribe();
        loop {
            if *current.borrow_and_update() >= revision {
                return;
            }
            self.shared.progress.notify_one();
            tokio::select! {
                _ = current.changed() => {}
                _ = futures_timer::Delay::new(PROGRESS_RETRY) => {}
            }
        }
    }

    /// How many times the copy was loaded afresh because the history its watch needed had
    /// been compacted.
    pub fn reloads(&self) -> u64 {
        self.shared.reloads.load(Ordering::Relaxed)
    }

    /// The prefix followed.
    pub fn prefix(&self) -> &[u8] {
        &self.shared.prefix
    }
}

/// The keys under `prefix` now, and the revision read at.
async fn load(client: &mut Client, prefix: &[u8]) -> Result<Local> {
    let mut resp = client.get(prefix.to_vec(), Some(GetOptions::new().with_prefix())).await?;
    let revision = resp.header().map_or(0, |h| h.revision());
    let kvs = resp.take_kvs().into_iter().map(|kv| (kv.key().to_vec(), kv)).collect();
    Ok(Local { kvs, revision })
}

/// Keeps the copy current until `stop` fires (the cache is dropped).
async fn follow(client: Client, shared: Arc<Shared>, stop: oneshot::Receiver<()>) {
    tokio::select! {
        _ = stop => {}
        _ = keep_current(client, &shared) => {}
    }
}

async fn keep_current(mut client: Client, shared: &Shared) {
    let mut failures = 0u32;
    loop {
        let from = shared.copy.lock().revision + 1;
        match watch_from(&mut client, shared, from).await {
            Ended::Compacted => {
                tracing::debug!("prefix cache: revision {from} was compacted; loading the prefix again");
                match load(&mut client, &shared.prefix).await {
                    Ok(copy) => {
                        shared.replace(copy);
                        shared.reloads.fetch_add(1, Ordering::Relaxed);
                        failures = 0;
                        continue;
                    }
                    Err(e) => tracing::warn!("prefix cache: could not load the prefix again: {e}"),
                }
            }
            Ended::Broken { error, applied } => {
                if applied {
                    failures = 0;
                }
                tracing::warn!("prefix cache: watch broken, opening it again: {error}");
            }
        }
        let delay = RETRY_DELAY.saturating_mul(1 << failures.min(5)).min(MAX_RETRY_DELAY);
        failures = failures.saturating_add(1);
        futures_timer::Delay::new(delay).await;
    }
}

/// Follows the prefix from revision `from`, applying what the watch delivers, until the
/// watch ends.
async fn watch_from(client: &mut Client, shared: &Shared, from: i64) -> Ended {
    let mut applied = false;
    let broken = |error: Error, applied| Ended::Broken { error, applied };
    let options = WatchOptions::new().with_prefix().with_start_revision(from);
    let mut stream = match client.watch(shared.prefix.clone(), Some(options)).await {
        Ok(stream) => stream,
        Err(e) => return broken(e.into(), applied),
    };
    loop {
        let message = tokio::select! {
            message = stream.message() => message,
            _ = shared.progress.notified() => {
                if let Err(e) = stream.request_progress().await {
                    return broken(e.into(), applied);
                }
                continue;
            }
        };
        let resp = match message {
            Ok(Some(resp)) => resp,
            Ok(None) => return broken(Error::LostWatcher, applied),
            Err(e) => return broken(e.into(), applied),
        };
        if resp.canceled() {
            if resp.compact_revision() > 0 {
                return Ended::Compacted;
            }
            let reason = format!("watch cancelled: {}", resp.cancel_reason());
            return broken(crate::client::Error::WatchError(reason).into(), applied);
        }
        applied |= shared.apply(&resp);
    }
}

impl Shared {
    /// Applies a watch response's events in order, or a progress notification's revision;
    /// true if the copy moved on.
    fn apply(&self, resp: &WatchResponse) -> bool {
        let mut copy = self.copy.lock();
        let before = copy.revision;
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            match event.event_type() {
                EventType::Put => {
                    copy.kvs.insert(kv.key().to_vec(), kv.clone());
                }
                EventType::Delete => {
                    copy.kvs.remove(kv.key());
                }
            }
            copy.revision = copy.revision.max(kv.mod_revision());
        }
        // Only a progress notification vouches for its header: an event response's may run
        // ahead of events still to come while the watch catches up.
        if resp.is_progress_notify() {
            copy.revision = copy.revision.max(resp.header().map_or(0, |h| h.revision()));
        }
        let revision = copy.revision;
        drop(copy);
        self.current.send_if_modified(|current| std::mem::replace(current, revision) != revision);
        revision > before
    }

    fn replace(&self, fresh: Local) {
        let mut copy = self.copy.lock();
        copy.kvs = fresh.kvs;
        copy.revision = copy.revision.max(fresh.revision);
        let revision = copy.revision;
        drop(copy);
        self.current.send_replace(revision);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::tests::{client, WAIT};
    use super::*;
    use crate::client::{DeleteOptions, PutOptions, Txn, TxnOp};
    use crate::{Options, Store};

    /// The keys under `prefix` as a fresh read gives them.
    async fn fresh(client: &Client, prefix: &str) -> BTreeMap<Vec<u8>, KeyValue> {
        let mut c = client.clone();
        let got = c.get(prefix, Some(GetOptions::new().with_prefix())).await.unwrap();
        got.kvs().iter().map(|kv| (kv.key().to_vec(), kv.clone())).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_copy_follows_puts_and_deletes() {
        let client = client().await;
        let mut c = client.clone();
        c.put("app/a", "1", None).await.unwrap();
        c.put("app/b", "1", None).await.unwrap();
        c.put("apps", "not under app/", None).await.unwrap();
        let cache = PrefixCache::new(&client, "app/").await.unwrap();
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("app/a").unwrap().value(), b"1");

        let lease = c.lease_grant(60, None).await.unwrap().id();
        c.put("app/a", "2", None).await.unwrap();
        c.put("app/c", "1", Some(PutOptions::new().with_lease(lease))).await.unwrap();
        c.delete("app/b", None).await.unwrap();
        for i in 0..20 {
            c.put(format!("app/dir/{i:02}"), format!("{i}"), None).await.unwrap();
        }
        c.delete("app/dir/1", Some(DeleteOptions::new().with_prefix())).await.unwrap();
        let txn = Txn::new().and_then([TxnOp::put("app/t1", "x", None), TxnOp::delete("app/a", None)]);
        c.txn(txn).await.unwrap();
        c.lease_revoke(lease).await.unwrap();
        let last = c.put("elsewhere", "x", None).await.unwrap().header().unwrap().revision();

        tokio::time::timeout(WAIT, cache.wait_for(last)).await.expect("the copy catches up");
        let (revision, copy) = cache.snapshot();
        assert!(revision >= last);
        assert_eq!(copy, fresh(&client, "app/").await);
        assert!(cache.get("app/a").is_none() && cache.get("app/c").is_none() && cache.get("apps").is_none());
        assert_eq!(cache.len(), 11);
        assert_eq!(cache.reloads(), 0);
    }

    /// On a current-thread runtime the cache's task runs only while the test awaits, and
    /// the store's own calls never await: the test writes and compacts while the cache
    /// cannot read.
    #[tokio::test]
    async fn a_compaction_past_a_slow_cache_makes_it_reload() {
        let store = Arc::new(Store::open(Options::memory().watch_stream_capacity(1)).unwrap());
        let client = Client::embedded(store.clone(), None).await.unwrap();
        store.put("app/a", "1", None).unwrap();
        store.put("app/b", "1", None).unwrap();
        let cache = PrefixCache::new(&client, "app/").await.unwrap();
        // Its watch is open and caught up.
        let caught_up = store.put("app/c", "1", None).unwrap().header().revision();
        tokio::time::timeout(WAIT, cache.wait_for(caught_up)).await.expect("caught up");
        assert_eq!(store.watch_counts().watches, 1);

        // More changes than its stream holds, then the history it would catch up from goes.
        for i in 0..5 {
            store.put(format!("app/k{i}"), "v", None).unwrap();
        }
        store.delete("app/a", None).unwrap();
        let last = store.put("app/b", "2", None).unwrap().header().revision();
        store.compact(last, None).unwrap();

        tokio::time::timeout(WAIT, cache.wait_for(last)).await.expect("the copy reloads");
        assert_eq!(cache.reloads(), 1);
        assert_eq!(cache.snapshot().1, fresh(&client, "app/").await);
        assert_eq!(cache.get("app/b").unwrap().value(), b"2");

        // And it follows on from the reload.
        let after = store.delete("app/k0", None).unwrap().header().revision();
        tokio::time::timeout(WAIT, cache.wait_for(after)).await.expect("follows on");
        assert_eq!(cache.snapshot().1, fresh(&client, "app/").await);

        drop(cache);
        // The task sees the stop the next time it runs.
        tokio::time::timeout(WAIT, async {
            while store.watch_counts().watches > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("dropping the cache ends its watch");
    }

    /// The compacted revisions are gone before the cache's watch is even opened.
    #[tokio::test]
    async fn a_compaction_before_the_watch_opens_makes_it_reload() {
        let store = Arc::new(Store::open(Options::memory()).unwrap());
        let client = Client::embedded(store.clone(), None).await.unwrap();
        store.put("app/a", "1", None).unwrap();
        let cache = PrefixCache::new(&client, "app/").await.unwrap();
        store.put("app/b", "1", None).unwrap();
        store.delete("app/a", None).unwrap();
        let last = store.put("other", "1", None).unwrap().header().revision();
        store.compact(last, None).unwrap();

        tokio::time::timeout(WAIT, cache.wait_for(last)).await.expect("the copy reloads");
        assert_eq!(cache.reloads(), 1);
        assert_eq!(cache.snapshot().1, fresh(&client, "app/").await);
    }

    #[tokio::test]
    async fn bad_input_is_refused() {
        let client = client().await;
        assert!(matches!(PrefixCache::new(&client, "").await, Err(Error::InvalidArgs(_))));
        let empty = PrefixCache::new(&client, "nothing/").await.unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.prefix(), b"nothing/");
    }
}
