//! The errors of the coordination types: clientv3 `concurrency`'s, with its messages, and
//! the client's.

use crate::client;

/// The result of a coordination call.
pub type Result<T> = std::result::Result<T, Error>;

/// What a lock, election, session or recipe call can fail with. The messages are
/// clientv3's (`mutex: Locked by another session`), so logs and matching read the same as
/// for a Go program.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `try_lock` found the lock held by another session.
    #[error("mutex: Locked by another session")]
    Locked,
    /// The session's lease ended while waiting for a lock: the lock was not taken.
    #[error("mutex: session is expired")]
    SessionExpired,
    /// `unlock` of a lock that is not held.
    #[error("mutex: lock has already been released")]
    LockReleased,
    /// `proclaim` by a candidate that does not lead.
    #[error("election: not leader")]
    NotLeader,
    /// `leader` of an election nobody leads.
    #[error("election: no leader")]
    NoLeader,
    /// A wait for a key's deletion lost its watch.
    #[error("lost watcher waiting for delete")]
    LostWatcher,
    /// A recipe's key that must be new exists already.
    #[error("key already exists")]
    KeyExists,
    /// A recipe's wait saw something it did not expect.
    #[error("unexpected wait result")]
    WaitMismatch,
    /// A double barrier that already has its number of clients.
    #[error("too many clients")]
    TooManyClients,
    /// A semaphore's `try_acquire` found every one of its slots held.
    #[error("semaphore: all {0} slots are held")]
    NoSlot(usize),
    /// An STM transaction that still conflicted after its retries.
    #[error("stm: transaction conflicted {0} times")]
    Conflict(usize),
    /// An argument refused before anything was sent (an empty name, a TTL that is not
    /// positive).
    #[error("invalid arguments: {0}")]
    InvalidArgs(String),
    /// What the client or the server answered.
    #[error(transparent)]
    Client(#[from] client::Error),
}

impl Error {
    /// The client's status, when the error is a server's (or the store's) answer.
    pub fn status(&self) -> Option<&client::Status> {
        match self {
            Error::Client(e) => e.status(),
            _ => None,
        }
    }
}

impl From<crate::Error> for Error {
    fn from(error: crate::Error) -> Error {
        Error::Client(error.into())
    }
}

impl From<client::Status> for Error {
    fn from(status: client::Status) -> Error {
        Error::Client(status.into())
    }
}
