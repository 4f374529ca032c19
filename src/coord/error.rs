//! The coordinator's errors.

use crate::{client, concurrency};

/// The result of a coordinator call.
pub type Result<T> = std::result::Result<T, Error>;

/// What a lock, registry or config call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `try_acquire` found the lock held.
    #[error("mutex: Locked by another session")]
    Locked,
    /// An argument refused before anything was sent: an empty key, a zero TTL.
    #[error("invalid arguments: {0}")]
    InvalidArgs(String),
    /// A stored value that is not the JSON of the type asked for.
    #[error("cannot decode the value of {key:?}: {message}")]
    Decode {
        /// The key whose value did not decode.
        key: String,
        /// Why.
        message: String,
    },
    /// A value that cannot be written as JSON.
    #[error("cannot encode a value as JSON: {0}")]
    Encode(String),
    /// `unregister` of a service this registry did not register.
    #[error("service {0:?} is not registered here")]
    NotRegistered(String),
    /// A lock, session or election failure.
    #[error(transparent)]
    Concurrency(concurrency::Error),
    /// What the client or the server answered.
    #[error(transparent)]
    Client(#[from] client::Error),
}

impl Error {
    /// The server's status, when the error is an answer of the server (or the store).
    pub fn status(&self) -> Option<&client::Status> {
        match self {
            Error::Client(e) => e.status(),
            Error::Concurrency(e) => e.status(),
            _ => None,
        }
    }
}

impl From<concurrency::Error> for Error {
    fn from(error: concurrency::Error) -> Error {
        match error {
            concurrency::Error::Locked => Error::Locked,
            concurrency::Error::InvalidArgs(why) => Error::InvalidArgs(why),
            concurrency::Error::Client(e) => Error::Client(e),
            other => Error::Concurrency(other),
        }
    }
}

impl From<crate::Error> for Error {
    fn from(error: crate::Error) -> Error {
        Error::Client(error.into())
    }
}
