//! A distributed mutex: clientv3's `concurrency.Mutex`, its keys and its protocol.

use crate::client::{
    Client, Compare, CompareOp, PutOptions, ResponseHeader, Txn, TxnOp, TxnOpResponse, TxnResponse,
};

use super::{first_created, go_hex, wait, with_slash, Error, Result, Session, Withdraw};

/// A lock shared by everyone who names the same prefix, held for a [`Session`].
///
/// Locking puts the key `prefix/<lease id in hex>` on the session's lease; the lock belongs
/// to the key of the prefix with the lowest create revision. A waiter waits only for the
/// deletion of the newest key created before its own (clientv3's protocol), so waiters are
/// served in order and each unlock wakes one of them. The session's end (close, or its
/// lease expiring after the holder died) deletes the key and frees the lock.
///
/// The key layout and the protocol are clientv3's, so a Go program's
/// `concurrency.NewMutex(session, "prefix")` and `Mutex::new(&session, "prefix")` exclude
/// each other on the same cluster.
#[derive(Debug)]
pub struct Mutex {
    session: Session,
    client: Client,
    prefix: Vec<u8>,
    key: Vec<u8>,
    rev: i64,
    header: Option<ResponseHeader>,
    /// Whether an empty name is refused (the library's API) or taken as etcd does (the
    /// Lock service).
    checked: bool,
}

impl Mutex {
    /// The lock named `prefix` (its keys go under `prefix/`), for `session`. An empty
    /// prefix is refused when locking.
    pub fn new(session: &Session, prefix: impl Into<Vec<u8>>) -> Mutex {
        Mutex {
            session: session.clone(),
            client: session.client().clone(),
            prefix: with_slash(&prefix.into()),
            key: Vec::new(),
            rev: -1,
            header: None,
            checked: true,
        }
    }

    /// The lock as etcd's Lock service takes it: any name, the empty one included.
    pub(crate) fn unchecked(session: &Session, prefix: impl Into<Vec<u8>>) -> Mutex {
        Mutex { checked: false, ..Mutex::new(session, prefix) }
    }

    /// Takes the lock if nobody holds it; otherwise fails at once with
    /// [`Error::Locked`] and leaves no key behind.
    pub async fn try_lock(&mut self) -> Result<()> {
        self.check_name()?;
        let mut pending = Withdraw::new(&self.client);
        pending.arm_before_creating(self.key_for_session());
        let resp = self.try_acquire().await?;
        pending.arm_created_at(self.key.clone(), self.rev);
        if self.owns(&resp) {
            pending.disarm();
            self.header = resp.header().cloned();
            return Ok(());
        }
        // Not ours: withdraw, so nobody waits on a key that is not waiting.
        self.client.delete(self.key.clone(), None).await?;
        pending.disarm();
        self.forget();
        Err(Error::Locked)
    }

    /// Takes the lock, waiting while others hold it. Waiting ends when every key created
    /// before this one is gone; if the session's lease ended meanwhile, the lock is not
    /// taken ([`Error::SessionExpired`]). A call abandoned while waiting (its future
    /// dropped) and a wait that fails withdraw the key, as clientv3 unlocks then.
    pub async fn lock(&mut self) -> Result<()> {
        self.check_name()?;
        let mut pending = Withdraw::new(&self.client);
        pending.arm_before_creating(self.key_for_session());
        let resp = self.try_acquire().await?;
        if self.owns(&resp) {
            pending.disarm();
            self.header = resp.header().cloned();
            return Ok(());
        }
        pending.arm_created_at(self.key.clone(), self.rev);
        let mut client = self.client.clone();
        let waited = async {
            wait::wait_deletes(&mut client, &self.prefix, self.rev - 1).await?;
            // The session's lease may have ended while waiting, taking the key with it.
            Ok::<_, Error>(client.get(self.key.clone(), None).await?)
        };
        let mut mine = match waited.await {
            Ok(mine) => mine,
            Err(e) => {
                // Not taken: the guard withdraws the key.
                self.forget();
                return Err(e);
            }
        };
        pending.disarm();
        if mine.kvs().is_empty() {
            self.forget();
            return Err(Error::SessionExpired);
        }
        self.header = mine.take_header();
        Ok(())
    }

    /// Releases the lock (deletes its key). Fails with [`Error::LockReleased`] when it is
    /// not held.
    pub async fn unlock(&mut self) -> Result<()> {
        if self.rev < 0 {
            return Err(Error::LockReleased);
        }
        self.client.delete(self.key.clone(), None).await?;
        self.forget();
        Ok(())
    }

    /// A compare that holds while this lock is held: put it in a txn's `when` to write only
    /// as the lock's owner. It fails once the lock's key is gone (unlocked, or its lease
    /// expired), even if the key is created again.
    pub fn is_owner(&self) -> Compare {
        Compare::create_revision(self.key.clone(), CompareOp::Equal, self.rev)
    }

    /// The create revision of the lock's key; -1 when not held.
    pub(crate) fn rev(&self) -> i64 {
        self.rev
    }

    /// The lock's key (`prefix/<lease id in hex>`); empty when not held.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The header of the call that took the lock.
    pub fn header(&self) -> Option<&ResponseHeader> {
        self.header.as_ref()
    }

    /// The session the lock is held for.
    pub fn session(&self) -> &Session {
        &self.session
    }

    fn key_for_session(&self) -> Vec<u8> {
        let mut key = self.prefix.clone();
        key.extend_from_slice(go_hex(self.session.lease()).as_bytes());
        key
    }

    fn check_name(&self) -> Result<()> {
        if self.checked && self.prefix.len() == 1 {
            return Err(Error::InvalidArgs("a lock's name must not be empty".into()));
        }
        Ok(())
    }

    /// Puts this session's key unless it exists, and reads the owner: one txn.
    async fn try_acquire(&mut self) -> Result<TxnResponse> {
        self.key = self.key_for_session();
        let mine = PutOptions::new().with_lease(self.session.lease());
        let txn = Txn::new()
            .when([Compare::create_revision(self.key.clone(), CompareOp::Equal, 0)])
            .and_then([
                TxnOp::put(self.key.clone(), "", Some(mine)),
                TxnOp::get(self.prefix.clone(), Some(first_created())),
            ])
            .or_else([
                TxnOp::get(self.key.clone(), None),
                TxnOp::get(self.prefix.clone(), Some(first_created())),
            ]);
        let resp = self.client.txn(txn).await?;
        self.rev = if resp.succeeded() {
            resp.header().map_or(0, |h| h.revision())
        } else {
            // The session asked before: its place in the queue stands.
            created_revision(&resp, 0)
                .ok_or_else(|| crate::client::Error::Internal("lock key vanished inside its txn".into()))?
        };
        Ok(resp)
    }

    /// Whether the txn of `try_acquire` found this key first (or the prefix empty).
    fn owns(&self, resp: &TxnResponse) -> bool {
        created_revision(resp, 1).is_none_or(|owner| owner == self.rev)
    }

    fn forget(&mut self) {
        self.key.clear();
        self.rev = -1;
    }
}

/// The create revision of the first key read by the `index`th op of `resp`.
fn created_revision(resp: &TxnResponse, index: usize) -> Option<i64> {
    match resp.responses.get(index) {
        Some(TxnOpResponse::Get(get)) => get.kvs().first().map(|kv| kv.create_revision()),
        _ => None,
    }
}
