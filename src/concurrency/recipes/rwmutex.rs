//! A reader/writer lock: the Go package's `RWMutex`, its keys and its protocol.

use crate::client::{Client, GetOptions, SortOrder, SortTarget};

use super::super::Withdraw;
use super::super::{wait, with_slash, Error, Result, Session};
use super::key::{join, put_unique};

/// A lock that many readers or one writer hold at once, shared by everyone who names the
/// same prefix, held for a [`Session`].
///
/// A reader puts a unique key `prefix/read/<ns>` on the session's lease, a writer
/// `prefix/write/<ns>` (`<ns>`: nanoseconds since the epoch). A reader waits until no
/// writer's key older than its own is left, a writer until no key at all older than its
/// own is left; each round waits for the deletion of the newest such key only. Keys and
/// protocol are the Go package's (`recipe.NewRWMutex`), so Go and Rust share the lock.
///
/// A call abandoned while waiting (its future dropped) or whose wait fails withdraws its
/// key, so nobody queues behind a holder that is not coming; the session's end (its lease
/// expiring after the holder died) frees what it held.
#[derive(Debug)]
pub struct RwMutex {
    session: Session,
    client: Client,
    prefix: Vec<u8>,
    key: Vec<u8>,
    rev: i64,
}

impl RwMutex {
    /// The lock named `prefix` (its keys go under `prefix/`), for `session`. An empty
    /// prefix is refused when locking.
    pub fn new(session: &Session, prefix: impl Into<Vec<u8>>) -> RwMutex {
        RwMutex {
            session: session.clone(),
            client: session.client().clone(),
            prefix: with_slash(&prefix.into()),
            key: Vec::new(),
            rev: -1,
        }
    }

    /// Takes the lock for reading, waiting while a writer that came first holds it or
    /// waits for it. Fails with [`Error::SessionExpired`] when the session's lease ended
    /// meanwhile (the lock is not taken).
    pub async fn rlock(&mut self) -> Result<()> {
        let writers = join(&self.prefix, b"write");
        self.acquire(b"read", writers).await
    }

    /// Takes the lock for writing, waiting while anyone who came first holds it or waits
    /// for it. Fails with [`Error::SessionExpired`] when the session's lease ended
    /// meanwhile.
    pub async fn lock(&mut self) -> Result<()> {
        let everyone = self.prefix.clone();
        self.acquire(b"write", everyone).await
    }

    /// Releases a read lock; [`Error::LockReleased`] when none is held.
    pub async fn runlock(&mut self) -> Result<()> {
        self.release().await
    }

    /// Releases a write lock; [`Error::LockReleased`] when none is held.
    pub async fn unlock(&mut self) -> Result<()> {
        self.release().await
    }

    /// The key this lock holds (`prefix/read/<ns>` or `prefix/write/<ns>`); empty when not
    /// held.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The revision that created the held key; -1 when not held.
    pub fn rev(&self) -> i64 {
        self.rev
    }

    /// The session the lock is held for.
    pub fn session(&self) -> &Session {
        &self.session
    }

    async fn acquire(&mut self, kind: &[u8], blockers: Vec<u8>) -> Result<()> {
        if self.prefix.len() == 1 {
            return Err(Error::InvalidArgs("a lock's name must not be empty".into()));
        }
        if self.rev >= 0 {
            return Err(Error::InvalidArgs("this RwMutex already holds the lock: unlock it first".into()));
        }
        let mut client = self.client.clone();
        let mut pending = Withdraw::new(&client);
        let mine = join(&self.prefix, kind);
        let (key, rev) =
            put_unique(&mut client, &mine, b"", self.session.lease(), Some(&mut pending)).await?;
        // The Go package reads the blockers by mod revision; its keys are never rewritten,
        // so that is their create revision.
        let newest_before = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Mod, SortOrder::Descend)
            .with_limit(1)
            .with_max_mod_revision(rev - 1);
        loop {
            let blocking = client.get(blockers.clone(), Some(newest_before.clone())).await?;
            let Some(last) = blocking.kvs().first() else { break };
            let read_at = blocking.header().map_or(rev, |h| h.revision());
            wait::wait_delete(&client, last.key(), read_at).await?;
        }
        // The session's lease may have ended while waiting, taking the key with it.
        let held = client.get(key.clone(), Some(GetOptions::new().with_count_only())).await?;
        pending.disarm();
        if held.count() == 0 {
            return Err(Error::SessionExpired);
        }
        self.key = key;
        self.rev = rev;
        Ok(())
    }

    async fn release(&mut self) -> Result<()> {
        if self.rev < 0 {
            return Err(Error::LockReleased);
        }
        self.client.delete(self.key.clone(), None).await?;
        self.key.clear();
        self.rev = -1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::super::tests::{client, count, session, WAIT};
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_share_and_a_writer_excludes() {
        let client = client().await;
        let readers = Arc::new(AtomicUsize::new(0));
        let writers = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (client, readers, writers) = (client.clone(), readers.clone(), writers.clone());
            tasks.push(tokio::spawn(async move {
                let s = session(&client, 60).await;
                let mut lock = RwMutex::new(&s, "rw");
                for _ in 0..6 {
                    if i < 3 {
                        lock.rlock().await.unwrap();
                        readers.fetch_add(1, Ordering::SeqCst);
                        assert_eq!(writers.load(Ordering::SeqCst), 0, "a reader inside with a writer");
                        tokio::task::yield_now().await;
                        readers.fetch_sub(1, Ordering::SeqCst);
                        lock.runlock().await.unwrap();
                    } else {
                        lock.lock().await.unwrap();
                        assert_eq!(writers.fetch_add(1, Ordering::SeqCst), 0, "two writers inside");
                        assert_eq!(readers.load(Ordering::SeqCst), 0, "a writer inside with readers");
                        tokio::task::yield_now().await;
                        writers.fetch_sub(1, Ordering::SeqCst);
                        lock.unlock().await.unwrap();
                    }
                }
            }));
        }
        for task in tasks {
            tokio::time::timeout(WAIT, task).await.expect("no deadlock").unwrap();
        }
        assert_eq!(count(&client, "rw/").await, 0, "every key released");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_readers_hold_at_once_and_the_writer_waits_for_both() {
        let client = client().await;
        let s = session(&client, 60).await;
        let (mut r1, mut r2) = (RwMutex::new(&s, "rw"), RwMutex::new(&s, "rw"));
        tokio::time::timeout(WAIT, r1.rlock()).await.expect("first reader").unwrap();
        tokio::time::timeout(WAIT, r2.rlock()).await.expect("a reader does not wait for a reader").unwrap();
        assert!(r1.key().starts_with(b"rw/read/") && r2.key().starts_with(b"rw/read/"));
        assert_ne!(r1.key(), r2.key());

        let writer_session = session(&client, 60).await;
        let writer = tokio::spawn(async move {
            let mut w = RwMutex::new(&writer_session, "rw");
            w.lock().await.map(|_| w)
        });
        // Once its key is there, the writer is queued behind the readers.
        tokio::time::timeout(WAIT, async {
            while count(&client, "rw/write/").await == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the writer queues");
        // A reader after a waiting writer waits too (the writer is not starved).
        let mut late = RwMutex::new(&s, "rw");
        assert!(tokio::time::timeout(Duration::from_millis(100), late.rlock()).await.is_err());
        assert_eq!(count(&client, "rw/read/").await, 2, "the late reader withdrew when abandoned");
        assert!(!writer.is_finished(), "the writer got in while readers held the lock");

        r1.runlock().await.unwrap();
        r2.runlock().await.unwrap();
        let mut w = tokio::time::timeout(WAIT, writer).await.expect("the writer gets in").unwrap().unwrap();
        assert!(w.key().starts_with(b"rw/write/"));
        w.unlock().await.unwrap();
        assert!(matches!(w.unlock().await, Err(Error::LockReleased)));
        assert_eq!(count(&client, "rw/").await, 0);
    }

    #[tokio::test]
    async fn a_dead_writers_lock_is_freed_by_its_lease() {
        let (client, clock) = super::super::tests::manual().await;
        let dying = session(&client, 5).await;
        let mut w = RwMutex::new(&dying, "rw");
        w.lock().await.unwrap();

        let s = session(&client, 60).await;
        let reader = tokio::spawn(async move {
            let mut r = RwMutex::new(&s, "rw");
            r.rlock().await.map(|_| r)
        });
        tokio::time::timeout(WAIT, async {
            while count(&client, "rw/read/").await == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the reader queues");
        assert!(!reader.is_finished(), "the reader got in while the writer held the lock");
        dying.orphan().await;
        clock.advance(Duration::from_secs(6));
        let r = tokio::time::timeout(WAIT, reader).await.expect("the reader gets in").unwrap().unwrap();
        assert!(r.key().starts_with(b"rw/read/"));
    }

    #[tokio::test]
    async fn an_empty_name_is_refused() {
        let client = client().await;
        let s = session(&client, 60).await;
        assert!(matches!(RwMutex::new(&s, "").rlock().await, Err(Error::InvalidArgs(_))));
        assert!(matches!(RwMutex::new(&s, "").lock().await, Err(Error::InvalidArgs(_))));
        assert!(matches!(RwMutex::new(&s, "x").runlock().await, Err(Error::LockReleased)));
        assert_eq!(count(&client, "x").await, 0);
    }
}
