//! A counting semaphore (Curator's `InterProcessSemaphoreV2`, which etcd lacks), built
//! on the same principles as the mutex.

use crate::client::{
    Client, EventType, GetOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse, WatchFilterType,
    WatchOptions,
};

use super::super::wait::Resumed;
use super::super::Withdraw;
use super::super::{with_slash, Error, Result, Session};
use super::key::put_unique;

/// A semaphore of `n` slots shared by everyone who names the same prefix (and the same
/// `n`); each `Semaphore` takes at most one slot, for a [`Session`].
///
/// Acquiring puts a unique key `prefix/<ns>` on the session's lease and holds a slot once
/// fewer than `n` keys of the prefix have a lower create revision; until then it waits for
/// the deletion of one of those and counts again. The session's end frees its slots.
#[derive(Debug)]
pub struct Semaphore {
    session: Session,
    client: Client,
    prefix: Vec<u8>,
    slots: usize,
    key: Vec<u8>,
    rev: i64,
}

impl Semaphore {
    /// The semaphore named `prefix` (its keys go under `prefix/`) with `slots` slots, for
    /// `session`. An empty prefix or no slots is refused when acquiring.
    pub fn new(session: &Session, prefix: impl Into<Vec<u8>>, slots: usize) -> Semaphore {
        Semaphore {
            session: session.clone(),
            client: session.client().clone(),
            prefix: with_slash(&prefix.into()),
            slots,
            key: Vec::new(),
            rev: -1,
        }
    }

    /// Takes a slot, waiting while all are held by those who came first. Fails with
    /// [`Error::SessionExpired`] when the session's lease ended meanwhile. An acquire
    /// abandoned while waiting (its future dropped) or whose wait fails withdraws.
    pub async fn acquire(&mut self) -> Result<()> {
        let mut pending = Withdraw::new(&self.client);
        let (key, rev) = self.enqueue(&mut pending).await?;
        let mut client = self.client.clone();
        loop {
            let (mine, earlier, read_at) = self.standing(&mut client, &key, rev).await?;
            if !mine {
                pending.disarm();
                return Err(Error::SessionExpired);
            }
            if earlier < self.slots {
                break;
            }
            self.wait_for_release(&key, rev, read_at + 1).await?;
        }
        pending.disarm();
        self.key = key;
        self.rev = rev;
        Ok(())
    }

    /// Takes a slot if one is free now; otherwise fails at once with [`Error::NoSlot`]
    /// and leaves no key behind.
    pub async fn try_acquire(&mut self) -> Result<()> {
        let mut pending = Withdraw::new(&self.client);
        let (key, rev) = self.enqueue(&mut pending).await?;
        let (mine, earlier, _) = self.standing(&mut self.client.clone(), &key, rev).await?;
        if !mine {
            pending.disarm();
            return Err(Error::SessionExpired);
        }
        if earlier >= self.slots {
            // Withdrawn now, not left for a later acquirer to wait on.
            self.client.delete(key, None).await?;
            pending.disarm();
            return Err(Error::NoSlot(self.slots));
        }
        pending.disarm();
        self.key = key;
        self.rev = rev;
        Ok(())
    }

    /// Frees the slot (deletes its key). Fails with [`Error::LockReleased`] when none is
    /// held.
    pub async fn release(&mut self) -> Result<()> {
        if self.rev < 0 {
            return Err(Error::LockReleased);
        }
        self.client.delete(self.key.clone(), None).await?;
        self.key.clear();
        self.rev = -1;
        Ok(())
    }

    /// The key of the held slot (`prefix/<ns>`); empty when none is held.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The number of slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The session the slot is held for.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Checks the arguments and puts this acquirer's key; `pending` withdraws it unless
    /// the caller disarms it.
    async fn enqueue(&mut self, pending: &mut Withdraw) -> Result<(Vec<u8>, i64)> {
        if self.prefix.len() == 1 {
            return Err(Error::InvalidArgs("a semaphore's name must not be empty".into()));
        }
        if self.slots == 0 {
            return Err(Error::InvalidArgs("a semaphore needs at least one slot".into()));
        }
        if self.rev >= 0 {
            return Err(Error::InvalidArgs("this Semaphore holds a slot already: release it first".into()));
        }
        let name = &self.prefix[..self.prefix.len() - 1];
        put_unique(&mut self.client.clone(), name, b"", self.session.lease(), Some(pending)).await
    }

    /// In one read: whether `key` still exists, how many keys of the prefix were created
    /// before it (at `rev`; counted up to the number of slots), and the revision read at.
    async fn standing(&self, client: &mut Client, key: &[u8], rev: i64) -> Result<(bool, usize, i64)> {
        // A range's count ignores its revision filters (etcd prunes the keys after
        // counting), so the earlier keys are read, at most one per slot.
        let limit = i64::try_from(self.slots).unwrap_or(i64::MAX);
        let earlier = GetOptions::new()
            .with_prefix()
            .with_keys_only()
            .with_sort(SortTarget::Create, SortOrder::Ascend)
            .with_max_create_revision(rev - 1)
            .with_limit(limit);
        let txn = Txn::new().and_then([
            TxnOp::get(key.to_vec(), Some(GetOptions::new().with_count_only())),
            TxnOp::get(self.prefix.clone(), Some(earlier)),
        ]);
        let resp = client.txn(txn).await?;
        let read_at = resp.header().map_or(0, |h| h.revision());
        match (resp.responses.first(), resp.responses.get(1)) {
            (Some(TxnOpResponse::Get(mine)), Some(TxnOpResponse::Get(earlier))) => {
                Ok((mine.count() > 0, earlier.kvs().len(), read_at))
            }
            _ => Err(crate::client::Error::Internal("a semaphore's txn answered no reads".into()).into()),
        }
    }

    /// Waits, from `revision`, for the deletion of a key created before `rev` (a slot, or a
    /// place ahead in the queue, given up) or of `key` itself (the session's lease ended).
    /// A watch cut short returns too: the caller counts again either way.
    async fn wait_for_release(&self, key: &[u8], rev: i64, revision: i64) -> Result<()> {
        let deletes =
            WatchOptions::new().with_prefix().with_prev_key().with_filters([WatchFilterType::NoPut]);
        let mut watch = Resumed::new(&self.client, &self.prefix, deletes, revision);
        while let Some(resp) = watch.next().await? {
            let freed = resp.events().iter().filter(|e| e.event_type() == EventType::Delete).any(|e| {
                let earlier = e.prev_kv().is_none_or(|kv| kv.create_revision() < rev);
                earlier || e.kv().is_some_and(|kv| kv.key() == key)
            });
            if freed {
                return Ok(());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::super::tests::{client, count, manual, session, WAIT};
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_more_than_n_holders_under_contention() {
        const SLOTS: usize = 2;
        let client = client().await;
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let (client, inside, most) = (client.clone(), inside.clone(), most.clone());
                tokio::spawn(async move {
                    let s = session(&client, 60).await;
                    let mut sem = Semaphore::new(&s, "sem", SLOTS);
                    for _ in 0..5 {
                        sem.acquire().await.unwrap();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        assert!(now <= SLOTS, "{now} holders of {SLOTS} slots");
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        inside.fetch_sub(1, Ordering::SeqCst);
                        sem.release().await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            tokio::time::timeout(WAIT, task).await.expect("no deadlock").unwrap();
        }
        assert!(most.load(Ordering::SeqCst) >= 1);
        assert_eq!(count(&client, "sem/").await, 0, "every slot freed");
    }

    #[tokio::test]
    async fn a_dead_holders_slot_is_freed_by_its_lease() {
        let (client, clock) = manual().await;
        let dying = session(&client, 5).await;
        let living = session(&client, 60).await;
        let mut held = Semaphore::new(&living, "sem", 2);
        held.acquire().await.unwrap();
        let mut dead = Semaphore::new(&dying, "sem", 2);
        dead.acquire().await.unwrap();
        assert_ne!(held.key(), dead.key());

        let mut full = Semaphore::new(&living, "sem", 2);
        assert!(matches!(full.try_acquire().await, Err(Error::NoSlot(2))));
        assert_eq!(count(&client, "sem/").await, 2, "a failed try leaves no key");

        let waiting = {
            let living = living.clone();
            tokio::spawn(async move {
                let mut sem = Semaphore::new(&living, "sem", 2);
                sem.acquire().await.map(|_| sem)
            })
        };
        // Once its key is there, the third acquirer is queued behind the two holders.
        tokio::time::timeout(WAIT, async {
            while count(&client, "sem/").await < 3 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the third acquirer queues");
        assert!(!waiting.is_finished(), "a third holder of two slots");
        dying.orphan().await;
        clock.advance(Duration::from_secs(6));
        let third = tokio::time::timeout(WAIT, waiting).await.expect("the dead holder's slot is freed");
        assert!(third.unwrap().unwrap().key().starts_with(b"sem/"));
        assert_eq!(count(&client, "sem/").await, 2);
        held.release().await.unwrap();
        full.try_acquire().await.unwrap();
        assert!(matches!(held.release().await, Err(Error::LockReleased)));
    }

    #[tokio::test]
    async fn an_abandoned_acquire_withdraws_and_bad_input_is_refused() {
        let client = client().await;
        let s = session(&client, 60).await;
        let mut one = Semaphore::new(&s, "sem", 1);
        one.acquire().await.unwrap();
        let mut other = Semaphore::new(&s, "sem", 1);
        assert!(tokio::time::timeout(Duration::from_millis(50), other.acquire()).await.is_err());
        assert_eq!(count(&client, "sem/").await, 1, "the abandoned acquirer withdrew");
        assert!(matches!(one.acquire().await, Err(Error::InvalidArgs(_))), "one slot per Semaphore");
        one.release().await.unwrap();
        tokio::time::timeout(WAIT, other.acquire()).await.unwrap().unwrap();

        assert!(matches!(Semaphore::new(&s, "", 1).acquire().await, Err(Error::InvalidArgs(_))));
        assert!(matches!(Semaphore::new(&s, "x", 0).acquire().await, Err(Error::InvalidArgs(_))));
        assert!(matches!(Semaphore::new(&s, "x", 0).try_acquire().await, Err(Error::InvalidArgs(_))));
        assert_eq!(count(&client, "x").await, 0);
    }
}
