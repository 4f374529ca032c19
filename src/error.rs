//! The one error type, with etcd's messages and gRPC status codes.

use crate::engine::EngineError;

/// Everything a store call can fail with. Each variant's message is the exact string etcd
/// sends to clients (clients match on it), and [`Error::code`] is the gRPC status code etcd
/// sends with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An empty key in a range, put, delete or compare.
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    /// `ignore_value`/`ignore_lease` on a key that does not exist, or a txn op with nothing set.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// `ignore_value` together with a value.
    #[error("etcdserver: value is provided")]
    ValueProvided,
    /// `ignore_lease` together with a lease.
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    /// A txn with more compares or ops than the configured maximum.
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    /// A txn writing one key twice, or putting a key it also deletes.
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// A sort order or sort target that is not one of etcd's (etcd 3.6+).
    #[error("etcdserver: invalid sort option")]
    InvalidSortOption,
    /// A write request larger than the configured maximum request size.
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    /// A revision below the compacted revision.
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    /// A revision above the current revision.
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    /// A lease id that no live lease has.
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    /// A grant with an id a live lease already has.
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    /// A grant with a TTL above 9,000,000,000 seconds.
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    /// A watch on a range whose end is not above its start.
    #[error("mvcc: watcher range is empty")]
    WatchRangeEmpty,
    /// A watch created with an id its stream already uses.
    #[error("mvcc: duplicate watch ID provided on the WatchStream")]
    DuplicateWatchId,
    /// A watch stream that has been closed (its receiving end dropped, or its store).
    #[error("etcdserver: watch canceled")]
    WatchCanceled,
    /// A snapshot restore into an engine that already holds data. etcd has no message for
    /// it (`etcdutl snapshot restore` likewise refuses a data dir that is not empty).
    #[error("snapshot restore: the target engine is not empty")]
    RestoreTargetNotEmpty,
    /// The storage engine failed; nothing of the request was applied.
    #[error("etcdserver: storage engine failure: {0}")]
    Engine(#[from] EngineError),
}

/// gRPC status codes, as etcd uses them (numbers are gRPC's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// The call was cancelled.
    Canceled = 1,
    /// Bad request fields.
    InvalidArgument = 3,
    /// A lease or member that does not exist.
    NotFound = 5,
    /// A request that conflicts with the current state.
    FailedPrecondition = 9,
    /// A revision or TTL out of the allowed range.
    OutOfRange = 11,
    /// An internal failure.
    Internal = 13,
    /// Stored data is lost or damaged.
    DataLoss = 15,
}

impl Error {
    /// The gRPC status code etcd sends with this error.
    pub fn code(&self) -> Code {
        match self {
            Error::EmptyKey
            | Error::KeyNotFound
            | Error::ValueProvided
            | Error::LeaseProvided
            | Error::TooManyOps
            | Error::DuplicateKey
            | Error::InvalidSortOption
            | Error::RequestTooLarge
            | Error::WatchRangeEmpty
            | Error::DuplicateWatchId => Code::InvalidArgument,
            Error::WatchCanceled => Code::Canceled,
            Error::Compacted | Error::FutureRevision | Error::LeaseTtlTooLarge => Code::OutOfRange,
            Error::LeaseNotFound => Code::NotFound,
            Error::LeaseExists | Error::RestoreTargetNotEmpty => Code::FailedPrecondition,
            Error::Engine(e) if e.kind() == crate::engine::EngineErrorKind::Corruption => Code::DataLoss,
            Error::Engine(_) => Code::Internal,
        }
    }
}

/// The result of a store call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_codes_are_etcds() {
        assert_eq!(Error::Compacted.to_string(), "etcdserver: mvcc: required revision has been compacted");
        assert_eq!(Error::Compacted.code(), Code::OutOfRange);
        assert_eq!(Error::LeaseNotFound.to_string(), "etcdserver: requested lease not found");
        assert_eq!(Error::LeaseNotFound.code(), Code::NotFound);
        assert_eq!(Error::DuplicateKey.code(), Code::InvalidArgument);
        assert_eq!(Error::RequestTooLarge.to_string(), "etcdserver: request is too large");
        assert_eq!(Error::LeaseExists.to_string(), "etcdserver: lease already exists");
        assert_eq!(Error::LeaseExists.code(), Code::FailedPrecondition);
        assert_eq!(Error::LeaseTtlTooLarge.to_string(), "etcdserver: too large lease TTL");
        assert_eq!(Error::LeaseTtlTooLarge.code(), Code::OutOfRange);
        assert_eq!(Error::WatchRangeEmpty.to_string(), "mvcc: watcher range is empty");
        assert_eq!(
            Error::DuplicateWatchId.to_string(),
            "mvcc: duplicate watch ID provided on the WatchStream"
        );
        assert_eq!(Error::WatchCanceled.to_string(), "etcdserver: watch canceled");
        assert_eq!(Error::WatchCanceled.code(), Code::Canceled);
        assert_eq!(Error::RestoreTargetNotEmpty.code(), Code::FailedPrecondition);
    }
}
