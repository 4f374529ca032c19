//! etcd's errors as gRPC statuses: the same code and the same message, which clients
//! match on.

use etcdlite::{Code, Error};
use tonic::Status;

/// The status etcd sends for `error`.
pub fn to_status(error: Error) -> Status {
    let code = match error.code() {
        Code::Canceled => tonic::Code::Cancelled,
        Code::InvalidArgument => tonic::Code::InvalidArgument,
        Code::NotFound => tonic::Code::NotFound,
        Code::FailedPrecondition => tonic::Code::FailedPrecondition,
        Code::OutOfRange => tonic::Code::OutOfRange,
        Code::DataLoss => tonic::Code::DataLoss,
        _ => tonic::Code::Internal,
    };
    Status::new(code, error.to_string())
}

/// ResourceExhausted "etcdserver: mvcc: database space exceeded": a write refused while
/// the NOSPACE alarm is raised.
pub fn no_space() -> Status {
    Status::resource_exhausted("etcdserver: mvcc: database space exceeded")
}

/// A blocking store call failed to run at all (its task panicked or was cancelled).
pub fn join_error(error: tokio::task::JoinError) -> Status {
    Status::internal(format!("etcdlite: store call did not complete: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages_are_etcds() {
        let s = to_status(Error::Compacted);
        assert_eq!(s.code(), tonic::Code::OutOfRange);
        assert_eq!(s.message(), "etcdserver: mvcc: required revision has been compacted");
        let s = to_status(Error::LeaseNotFound);
        assert_eq!(s.code(), tonic::Code::NotFound);
        assert_eq!(s.message(), "etcdserver: requested lease not found");
        let s = to_status(Error::LeaseExists);
        assert_eq!(s.code(), tonic::Code::FailedPrecondition);
        let s = to_status(Error::EmptyKey);
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert_eq!(s.message(), "etcdserver: key is not provided");
        assert_eq!(to_status(Error::WatchCanceled).code(), tonic::Code::Cancelled);
    }
}
