//! The client's error type: `etcd-client`'s variants, with etcd's statuses.

use std::fmt;
use std::str::Utf8Error;

use crate::error::Code;

/// The result of a client call.
pub type Result<T> = std::result::Result<T, Error>;

/// What a server (or the store, in-process) answered instead of a response: a gRPC code
/// and etcd's message, as `tonic::Status` carries them.
///
/// ```
/// use etcdlite::client::{Error, Status};
/// use etcdlite::Code;
///
/// let error = Error::from(etcdlite::Error::LeaseNotFound);
/// let Error::GRpcStatus(status) = &error else { unreachable!() };
/// assert_eq!(status.code(), Code::NotFound);
/// assert_eq!(status.message(), "etcdserver: requested lease not found");
/// ```
#[derive(Clone, Debug)]
pub struct Status {
    code: Code,
    message: String,
    /// Whether a server answered this, or the call failed on its way (remote client).
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    pub(crate) delivery: Delivery,
}

/// What became of a call that failed with a status: what a remote client needs to know to
/// retry it safely on another endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub(crate) enum Delivery {
    /// A server (or the store) answered with the status.
    #[default]
    Answered,
    /// The request never reached a server (the connection could not be made): no server
    /// acted on it.
    NotSent,
    /// The connection failed under the call: a server may have acted on it.
    Lost,
}

impl PartialEq for Status {
    /// Equal code and message, as clients compare statuses.
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code && self.message == other.message
    }
}

impl Eq for Status {}

impl Status {
    /// A status of `code` with `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status { code, message: message.into(), delivery: Delivery::Answered }
    }

    /// The gRPC code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message: etcd's exact words (`etcdserver: mvcc: required revision has been
    /// compacted`), which clients match on.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Unimplemented `message`: a call this backend does not have.
    pub(crate) fn unimplemented(message: impl Into<String>) -> Status {
        Status::new(Code::Unimplemented, message)
    }
}

impl fmt::Display for Status {
    /// As `tonic::Status` displays itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "code: '{}'", self.code)?;
        if !self.message.is_empty() {
            write!(f, ", message: {:?}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Status {}

impl From<crate::Error> for Status {
    fn from(error: crate::Error) -> Status {
        Status::new(error.code(), error.to_string())
    }
}

/// Everything a client call can fail with: the variants of `etcd-client`'s `Error`, so
/// code matching on them compiles unchanged. An etcd error (a compacted revision, an
/// unknown lease...) is [`Error::GRpcStatus`], in-process as over the network.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A call the client refused before sending it.
    InvalidArgs(String),
    /// An endpoint that is not a URI (remote client).
    InvalidUri(String),
    /// An I/O failure.
    IoError(std::io::Error),
    /// The connection failed (remote client).
    TransportError(String),
    /// The server's answer: a gRPC code and etcd's message.
    GRpcStatus(Status),
    /// A watch stream failed.
    WatchError(String),
    /// A key or value that is not UTF-8, from the `_str` accessors.
    Utf8Error(Utf8Error),
    /// A lease keep-alive failed.
    LeaseKeepAliveError(String),
    /// An election call failed.
    ElectError(String),
    /// A token that cannot be sent as gRPC metadata (remote client).
    InvalidMetadataValue(String),
    /// An endpoint could not be added or removed (remote client).
    EndpointError(String),
    /// The endpoints of this client cannot be changed.
    EndpointsNotManaged,
    /// Anything else.
    Internal(String),
}

impl Error {
    /// The status, for a [`GRpcStatus`](Error::GRpcStatus).
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::GRpcStatus(status) => Some(status),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    /// As `etcd-client` displays its errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgs(e) => write!(f, "invalid arguments: {e}"),
            Error::InvalidUri(e) => write!(f, "invalid uri: {e}"),
            Error::IoError(e) => write!(f, "io error: {e}"),
            Error::TransportError(e) => write!(f, "transport error: {e}"),
            Error::GRpcStatus(e) => write!(f, "grpc request error: {e}"),
            Error::WatchError(e) => write!(f, "watch error: {e}"),
            Error::Utf8Error(e) => write!(f, "utf8 error: {e}"),
            Error::LeaseKeepAliveError(e) => write!(f, "lease keep alive error: {e}"),
            Error::ElectError(e) => write!(f, "election error: {e}"),
            Error::InvalidMetadataValue(e) => write!(f, "invalid metadata value: {e}"),
            Error::EndpointError(e) => write!(f, "endpoint error: {e}"),
            Error::EndpointsNotManaged => write!(f, "endpoints not managed by this client"),
            Error::Internal(e) => write!(f, "internal error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::IoError(e) => Some(e),
            Error::GRpcStatus(e) => Some(e),
            Error::Utf8Error(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Error {
        Error::GRpcStatus(status)
    }
}

impl From<crate::Error> for Error {
    fn from(error: crate::Error) -> Error {
        Error::GRpcStatus(error.into())
    }
}

impl From<Utf8Error> for Error {
    fn from(error: Utf8Error) -> Error {
        Error::Utf8Error(error)
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Error {
        Error::IoError(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_display_as_tonic_and_errors_as_etcd_client() {
        let error = Error::from(crate::Error::Compacted);
        assert_eq!(
            error.to_string(),
            "grpc request error: code: 'Operation was attempted past the valid range', \
             message: \"etcdserver: mvcc: required revision has been compacted\""
        );
        assert_eq!(error.status().map(Status::code), Some(Code::OutOfRange));
        assert_eq!(Error::LeaseKeepAliveError("x".into()).to_string(), "lease keep alive error: x");
        assert_eq!(Status::new(Code::Cancelled, "").to_string(), "code: 'The operation was cancelled'");
    }
}
