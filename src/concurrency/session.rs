//! A session: a lease kept alive while its holder lives, the liveness that locks and
//! elections stand on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex as PlMutex;
use tokio::sync::{oneshot, watch};

use crate::client::{Client, Error as ClientError};

use super::{Error, Result};

/// clientv3's default session TTL, in seconds.
const DEFAULT_TTL: i64 = 60;
/// How long a keep-alive stream that broke waits before it is opened again.
const RECONNECT_DELAY: Duration = Duration::from_millis(200);

/// How a session is made: its lease's TTL, or an existing lease to adopt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    ttl: i64,
    lease: i64,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions::new()
    }
}

impl SessionOptions {
    /// A new lease of 60 seconds (clientv3's default).
    pub const fn new() -> Self {
        SessionOptions { ttl: DEFAULT_TTL, lease: 0 }
    }

    /// The TTL, in seconds, of the lease the session grants. Must be positive; beyond
    /// etcd's maximum the grant fails with `etcdserver: too large lease TTL`.
    pub const fn with_ttl(mut self, ttl: i64) -> Self {
        self.ttl = ttl;
        self
    }

    /// Adopts the existing lease `lease` instead of granting one: a process that restarts
    /// can take back the locks and the leadership it held (clientv3's `WithLease`).
    pub const fn with_lease(mut self, lease: i64) -> Self {
        self.lease = lease;
        self
    }
}

/// A lease kept alive in the background for as long as the session lives (clientv3's
/// `concurrency.Session`). Keys put on the session's lease, a lock's or a candidate's, last
/// while the session does: when its holder stops (the session is dropped, the process
/// dies), the keep-alive stops and the lease expires within its TTL, freeing them.
///
/// Clones share the session; the keep-alive stops when the last clone is dropped, on
/// [`orphan`](Session::orphan), or on [`close`](Session::close), which also revokes the
/// lease. [`done`](Session::done) resolves when the lease is no longer kept alive.
#[derive(Clone, Debug)]
pub struct Session {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    lease: i64,
    ttl: i64,
    /// Dropped to stop the keep-alive task.
    stop: PlMutex<Option<oneshot::Sender<()>>>,
    /// Turns true when the lease is no longer kept alive.
    done: watch::Receiver<bool>,
}

impl Session {
    /// A session over `client`: grants a lease (or adopts the one of
    /// [`with_lease`](SessionOptions::with_lease)) and keeps it alive on a task of the
    /// current tokio runtime, renewing it every third of its TTL.
    ///
    /// Fails with [`Error::InvalidArgs`] for a TTL that is not positive or when called
    /// outside a tokio runtime; with the server's error when the grant fails.
    pub async fn new(client: &Client, options: Option<SessionOptions>) -> Result<Session> {
        let options = options.unwrap_or_default();
        if options.ttl <= 0 {
            return Err(Error::InvalidArgs(format!("a session's TTL must be positive, not {}", options.ttl)));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::InvalidArgs(
                "a session keeps its lease alive on a tokio runtime: create it inside one".into(),
            )
        })?;
        let mut client = client.clone();
        let (lease, ttl) = match options.lease {
            0 => {
                let granted = client.lease_grant(options.ttl, None).await?;
                (granted.id(), granted.ttl())
            }
            // An adopted lease keeps its own TTL, which sets the pace of renewals and how
            // soon its loss is noticed; an unknown lease is found lost by the keep-alive.
            lease => match client.lease_time_to_live(lease, None).await {
                Ok(alive) if alive.granted_ttl() > 0 => (lease, alive.granted_ttl()),
                _ => (lease, options.ttl),
            },
        };
        let (stop, stopped) = oneshot::channel();
        let (done_tx, done) = watch::channel(false);
        runtime.spawn(keep_alive(client.clone(), lease, ttl, stopped, done_tx));
        Ok(Session { inner: Arc::new(Inner { client, lease, ttl, stop: PlMutex::new(Some(stop)), done }) })
    }

    /// A session over `lease` that nothing keeps alive (0: a new lease of 60 seconds),
    /// as etcd's Lock and Election servers make one for each request.
    pub(crate) async fn orphaned(client: &Client, lease: i64) -> Result<Session> {
        let mut client = client.clone();
        let lease = match lease {
            0 => client.lease_grant(DEFAULT_TTL, None).await?.id(),
            lease => lease,
        };
        let (_, done) = watch::channel(true);
        Ok(Session {
            inner: Arc::new(Inner { client, lease, ttl: DEFAULT_TTL, stop: PlMutex::new(None), done }),
        })
    }

    /// The client the session's calls go through.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The session's lease: keys put on it last as long as the session.
    pub fn lease(&self) -> i64 {
        self.inner.lease
    }

    /// The TTL of the session's lease, in seconds.
    pub fn ttl(&self) -> i64 {
        self.inner.ttl
    }

    /// True once the lease is no longer kept alive (lost, orphaned or closed).
    pub fn is_done(&self) -> bool {
        // A keep-alive task gone without a word (its runtime shut down) renews nothing.
        *self.inner.done.borrow() || self.inner.done.has_changed().is_err()
    }

    /// Resolves when the lease is no longer kept alive: it expired or was revoked (the
    /// server stopped answering for longer than its TTL, or someone revoked it), or the
    /// session was orphaned or closed.
    pub async fn done(&self) {
        let mut done = self.inner.done.clone();
        // An error means the task is gone, which is done too.
        let _ = done.wait_for(|done| *done).await;
    }

    /// Stops keeping the lease alive, without revoking it: its keys stay until it expires.
    /// For handing the lease to another process, or when the connection is in doubt.
    pub async fn orphan(&self) {
        self.inner.stop.lock().take();
        self.done().await;
    }

    /// Stops the keep-alive and revokes the lease, deleting every key put on it (the
    /// session's locks are released, its candidacies withdrawn).
    pub async fn close(&self) -> Result<()> {
        self.orphan().await;
        let mut client = self.inner.client.clone();
        // A revoke that takes longer than the TTL is moot: the lease has expired anyway.
        let revoke = client.lease_revoke(self.inner.lease);
        let expired = futures_timer::Delay::new(Duration::from_secs(self.inner.ttl.unsigned_abs()));
        tokio::select! {
            revoked = revoke => { revoked?; }
            _ = expired => {}
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Stops the keep-alive: the lease runs out its TTL.
        self.stop.get_mut().take();
    }
}

/// Keeps `lease` alive until `stop` fires (its sender dropped) or the lease is lost, then
/// sets `done`. Renews a third of the TTL after each answer, as clientv3 does; the lease is
/// lost when the server answers TTL 0 (expired or revoked) or has not renewed it for a
/// whole TTL.
async fn keep_alive(
    client: Client,
    lease: i64,
    ttl: i64,
    stop: oneshot::Receiver<()>,
    done: watch::Sender<bool>,
) {
    tokio::select! {
        _ = stop => {}
        _ = renew_until_lost(client, lease, ttl) => {}
    }
    done.send_replace(true);
}

async fn renew_until_lost(mut client: Client, lease: i64, ttl: i64) {
    let mut expires = Instant::now() + secs(ttl);
    // Every step, opening a stream included, is bounded by the lease's deadline: a server
    // that stops answering must not keep the session looking alive past it.
    loop {
        let opened = tokio::select! {
            opened = client.lease_keep_alive(lease) => opened,
            _ = until(expires) => return,
        };
        let (mut keeper, mut answers) = match opened {
            Ok(stream) => stream,
            // In-process, an unknown lease is refused up front.
            Err(ClientError::LeaseKeepAliveError(_)) => return,
            Err(ClientError::GRpcStatus(s)) if s.code() == crate::Code::NotFound => return,
            Err(_) => {
                tokio::select! {
                    _ = futures_timer::Delay::new(RECONNECT_DELAY) => continue,
                    _ = until(expires) => return,
                }
            }
        };
        // Opening the stream renewed the lease (both backends check the lease that way):
        // the next renewal is due a third of the TTL later, not at once, so a session
        // closed right after it opened leaves no renewal in flight.
        expires = Instant::now() + secs(ttl);
        let mut pace = secs(ttl) / 3;
        loop {
            futures_timer::Delay::new(pace).await;
            let answer = tokio::select! {
                answer = async {
                    keeper.keep_alive().await?;
                    answers.message().await
                } => answer,
                _ = until(expires) => return,
            };
            match answer {
                Ok(Some(answer)) if answer.ttl() > 0 => {
                    expires = Instant::now() + secs(answer.ttl());
                    pace = secs(answer.ttl()) / 3;
                }
                // The lease expired or was revoked.
                Ok(Some(_)) => return,
                // The stream ended or broke: open another while the lease may still live.
                Ok(None) | Err(_) => break,
            }
        }
        tokio::select! {
            _ = futures_timer::Delay::new(RECONNECT_DELAY) => {}
            _ = until(expires) => return,
        }
    }
}

/// Resolves at `deadline`.
async fn until(deadline: Instant) {
    futures_timer::Delay::new(deadline.saturating_duration_since(Instant::now())).await
}

fn secs(seconds: i64) -> Duration {
    Duration::from_secs(seconds.max(0).unsigned_abs())
}
