//! Distributed locks with a TTL: a lock whose holder dies is freed within its TTL.

use std::time::Duration;

use crate::client::{Client, Compare, CompareOp};
use crate::concurrency::{delete_abandoned, Mutex, Session, SessionOptions};

use super::{lease_ttl, Error, Result, RetryPolicy};

/// Hands out locks by name. Each lock is taken for a session of its own, whose lease (of
/// the TTL asked for) is renewed while the lock is held: if the holder dies, renewals stop
/// and the lock is free once the TTL has run out. The locks are
/// [`concurrency::Mutex`]es, so they exclude Go programs using clientv3's
/// `concurrency.Mutex` on the same name.
#[derive(Clone, Debug)]
pub struct DistributedLock {
    client: Client,
    retry: RetryPolicy,
}

impl DistributedLock {
    pub(crate) fn new(client: Client, retry: RetryPolicy) -> Self {
        DistributedLock { client, retry }
    }

    /// Takes the lock `key`, waiting while someone else holds it. Cancel the wait by
    /// dropping the future (or under a timeout): nothing is left behind.
    pub async fn acquire(&self, key: impl Into<String>, ttl: Duration) -> Result<HeldLock> {
        self.take(key.into(), ttl, false).await
    }

    /// Takes the lock `key` if it is free; otherwise fails at once with [`Error::Locked`].
    pub async fn try_acquire(&self, key: impl Into<String>, ttl: Duration) -> Result<HeldLock> {
        self.take(key.into(), ttl, true).await
    }

    async fn take(&self, key: String, ttl: Duration, at_once: bool) -> Result<HeldLock> {
        if key.is_empty() {
            return Err(Error::InvalidArgs("a lock's key must not be empty".into()));
        }
        let options = SessionOptions::new().with_ttl(lease_ttl(ttl)?);
        let session = self.retry.run(|| Session::new(&self.client, Some(options))).await?;
        // An acquire abandoned while it waits (its future dropped) revokes its lease too.
        let mut abandoned = RevokeOnDrop(Some(session.clone()));
        let mut mutex = Mutex::new(&session, key.clone());
        // A try that failed withdrew its key (only that incarnation of it); the next one
        // queues afresh, on the same session.
        let mut attempt = 1;
        let taken = loop {
            let taken = if at_once { mutex.try_lock().await } else { mutex.lock().await };
            match taken {
                Err(e) if self.retry.again(&mut attempt, &e).await => {}
                taken => break taken,
            }
        };
        abandoned.0 = None;
        match taken {
            Ok(()) => Ok(HeldLock { key, mutex, session, released: false }),
            Err(e) => {
                // No lease left behind.
                let _ = session.close().await;
                Err(e.into())
            }
        }
    }
}

/// Revokes a session's lease when dropped still holding it: an acquire whose future was
/// dropped leaves no lease to run out its TTL. In-process the revoke is applied at once;
/// over the network it is sent from a task of the current runtime.
struct RevokeOnDrop(Option<Session>);

impl Drop for RevokeOnDrop {
    fn drop(&mut self) {
        let Some(session) = self.0.take() else { return };
        let lease = session.lease();
        if let Some(store) = session.client().store() {
            drop(store.lease_revoke_async(lease));
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let mut client = session.client().clone();
            runtime.spawn(async move {
                let _ = client.lease_revoke(lease).await;
            });
        }
    }
}

/// A lock held: released by [`unlock`](HeldLock::unlock), or by dropping it (its key is
/// deleted at once; its lease runs out on its own).
#[derive(Debug)]
pub struct HeldLock {
    key: String,
    mutex: Mutex,
    session: Session,
    released: bool,
}

impl HeldLock {
    /// Releases the lock and revokes its lease.
    pub async fn unlock(mut self) -> Result<()> {
        self.released = true;
        self.mutex.unlock().await?;
        self.session.close().await?;
        Ok(())
    }

    /// The time left before the lock would be freed if its holder stopped renewing it now:
    /// the lease's remaining TTL.
    pub async fn ttl(&self) -> Result<Duration> {
        let mut client = self.session.client().clone();
        let left = client.lease_time_to_live(self.session.lease(), None).await?.ttl();
        Ok(Duration::from_secs(left.max(0).unsigned_abs()))
    }

    /// The lock's name, as acquired.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The key that holds the lock in etcd (`name/<lease id in hex>`).
    pub fn owner_key(&self) -> &[u8] {
        self.mutex.key()
    }

    /// A compare that holds while this lock is held: a fencing condition for a txn.
    pub fn is_owner(&self) -> Compare {
        self.mutex.is_owner()
    }

    /// False once the lock's lease is no longer renewed (lost: expired or revoked).
    pub fn is_held(&self) -> bool {
        !self.released && !self.session.is_done()
    }

    /// Resolves when the lock's lease is lost: whoever relied on holding it must stop.
    pub async fn lost(&self) {
        self.session.done().await
    }

    /// The session the lock is held for.
    pub fn session(&self) -> &Session {
        &self.session
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if !self.released && !self.mutex.key().is_empty() {
            let key = self.mutex.key().to_vec();
            let only_if = Compare::create_revision(key.clone(), CompareOp::Equal, self.mutex.rev());
            delete_abandoned(self.session.client(), key, Some(only_if));
        }
    }
}
