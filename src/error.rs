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
    /// More snapshots in progress at once than the store allows
    /// ([`Options::max_concurrent_snapshots`](crate::Options::max_concurrent_snapshots)).
    #[error("etcdserver: too many requests")]
    TooManyRequests,
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
    /// A write refused because the database would exceed its space quota, or while the
    /// NOSPACE alarm is raised.
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    /// A member id that is not this store's member.
    #[error("etcdserver: member not found")]
    MemberNotFound,
    /// A membership change that would leave fewer started voters than a quorum (removing
    /// this member, or adding a voter after one was added). etcd sends it with code
    /// Unknown, as its gRPC layer does not map it.
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStartedMembers,
    /// A member add with no peer URLs, or one etcd cannot read.
    #[error("etcdserver: given member URLs are invalid")]
    InvalidPeerUrls,
    /// A member add or update with peer URLs another member already has.
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlsExist,
    /// A member add whose derived id a member already has.
    #[error("etcdserver: member ID already exist")]
    MemberExist,
    /// A promotion of a member that is not a learner.
    #[error("etcdserver: can only promote a learner member")]
    NotLearner,
    /// A promotion of a learner that has not caught up with the leader (an added member
    /// never starts, so never does).
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    /// A learner add while a learner is already a member.
    #[error("etcdserver: too many learner members in cluster")]
    TooManyLearners,
    /// A membership change while an added voter has never connected.
    #[error("etcdserver: unhealthy cluster")]
    Unhealthy,
    /// A leadership transfer to a member that is not this one.
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    /// A downgrade call while the member's version is not a version.
    #[error("etcdserver: cluster version not found during downgrade")]
    ClusterVersionUnavailable,
    /// A downgrade to a version that is not `major.minor` or a semantic version.
    #[error("etcdserver: wrong downgrade target version format")]
    WrongDowngradeVersionFormat,
    /// A downgrade to a version other than the minor version below the cluster's.
    #[error("etcdserver: invalid downgrade target version")]
    InvalidDowngradeTargetVersion,
    /// A downgrade validated or enabled while one is under way.
    #[error("etcdserver: cluster has a downgrade job in progress")]
    DowngradeInProcess,
    /// A downgrade cancel with none under way.
    #[error("etcdserver: no inflight downgrade job")]
    NoInflightDowngrade,
    /// Auth enable without a `root` user.
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    /// Auth enable while the `root` user lacks the `root` role.
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    /// A user add with a name a user already has.
    #[error("etcdserver: user name already exists")]
    UserAlreadyExist,
    /// A user add with an empty name, or a request with no user while auth is enabled.
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    /// A user that does not exist.
    #[error("etcdserver: user name not found")]
    UserNotFound,
    /// A role add with a name a role already has.
    #[error("etcdserver: role name already exists")]
    RoleAlreadyExist,
    /// A role that does not exist.
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    /// A role add with an empty name.
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    /// An authenticate with an unknown user or a wrong password.
    #[error("etcdserver: authentication failed, invalid user ID or password")]
    AuthFailed,
    /// An authenticate of a user added without a password (etcd relays this one with
    /// code Unknown and its internal message).
    #[error("auth: authentication failed, password was given for no password user")]
    NoPasswordUser,
    /// A permission grant without a permission.
    #[error("etcdserver: permission not given")]
    PermissionNotGiven,
    /// The user may not do this.
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    /// A role revoke of a role the user does not have.
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    /// A permission revoke of a permission the role does not have.
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    /// An authenticate while auth is disabled.
    #[error("etcdserver: authentication is not enabled")]
    AuthNotEnabled,
    /// A token that is unknown, expired, forged or malformed.
    #[error("etcdserver: invalid auth token")]
    InvalidAuthToken,
    /// A change auth forbids: deleting the root user or role, or revoking root's root role,
    /// while auth is enabled; a permission over an invalid range.
    #[error("etcdserver: invalid auth management")]
    InvalidAuthMgmt,
    /// A request whose token was issued before an auth change it must not outlive.
    #[error("etcdserver: revision of auth store is old")]
    AuthOldRevision,
    /// A password longer than bcrypt takes (etcd relays Go's bcrypt error with code Unknown).
    #[error("bcrypt: password length exceeds 72 bytes")]
    PasswordTooLong,
    /// Token options etcd would refuse (`--auth-token`).
    #[error("auth: invalid auth options")]
    InvalidAuthOpts,
    /// A JWT signing method etcd does not know.
    #[error("auth: invalid auth signature method")]
    InvalidAuthMethod,
    /// JWT options without key data.
    #[error("auth: missing key data")]
    MissingKey,
    /// JWT options whose public and private keys are not a pair.
    #[error("auth: public and private keys don't match")]
    KeyMismatch,
    /// A JWT provider with only a public key asked to sign a token.
    #[error("auth: token signing attempted with verify-only key")]
    VerifyOnly,
    /// Something the process needs failed (the operating system's random source).
    #[error("etcdserver: {0}")]
    Internal(String),
    /// The storage engine failed; nothing of the request was applied.
    #[error("etcdserver: storage engine failure: {0}")]
    Engine(#[from] EngineError),
}

/// gRPC status codes, as etcd sends them (names and numbers are gRPC's, spelt as
/// `tonic::Code` spells them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Code {
    /// Not an error.
    Ok = 0,
    /// The call was cancelled (or, in a client, its timeout expired).
    Cancelled = 1,
    /// An error with no better code (etcd's Lock and Election services relay theirs so).
    Unknown = 2,
    /// Bad request fields.
    InvalidArgument = 3,
    /// The deadline passed before the call completed.
    DeadlineExceeded = 4,
    /// A lease or member that does not exist.
    NotFound = 5,
    /// Something that already exists.
    AlreadyExists = 6,
    /// The caller may not do this.
    PermissionDenied = 7,
    /// A quota or limit was reached (NOSPACE).
    ResourceExhausted = 8,
    /// A request that conflicts with the current state.
    FailedPrecondition = 9,
    /// The call was aborted.
    Aborted = 10,
    /// A revision or TTL out of the allowed range.
    OutOfRange = 11,
    /// The call is not built.
    Unimplemented = 12,
    /// An internal failure.
    Internal = 13,
    /// The server cannot answer now (stopped, unreachable).
    Unavailable = 14,
    /// Stored data is lost or damaged.
    DataLoss = 15,
    /// The call carried no valid credentials.
    Unauthenticated = 16,
}

impl Code {
    /// The code with gRPC number `number`; [`Code::Unknown`] for a number gRPC does not define.
    pub fn from_i32(number: i32) -> Code {
        const CODES: [Code; 17] = [
            Code::Ok,
            Code::Cancelled,
            Code::Unknown,
            Code::InvalidArgument,
            Code::DeadlineExceeded,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::ResourceExhausted,
            Code::FailedPrecondition,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unimplemented,
            Code::Internal,
            Code::Unavailable,
            Code::DataLoss,
            Code::Unauthenticated,
        ];
        usize::try_from(number).ok().and_then(|i| CODES.get(i)).copied().unwrap_or(Code::Unknown)
    }

    /// What the code means, in gRPC's words (what `tonic::Code` displays).
    pub fn description(&self) -> &'static str {
        match self {
            Code::Ok => "The operation completed successfully",
            Code::Cancelled => "The operation was cancelled",
            Code::Unknown => "Unknown error",
            Code::InvalidArgument => "Client specified an invalid argument",
            Code::DeadlineExceeded => "Deadline expired before operation could complete",
            Code::NotFound => "Some requested entity was not found",
            Code::AlreadyExists => "Some entity that we attempted to create already exists",
            Code::PermissionDenied => {
                "The caller does not have permission to execute the specified operation"
            }
            Code::ResourceExhausted => "Some resource has been exhausted",
            Code::FailedPrecondition => "The system is not in a state required for the operation's execution",
            Code::Aborted => "The operation was aborted",
            Code::OutOfRange => "Operation was attempted past the valid range",
            Code::Unimplemented => "Operation is not implemented or not supported",
            Code::Internal => "Internal error",
            Code::Unavailable => "The service is currently unavailable",
            Code::DataLoss => "Unrecoverable data loss or corruption",
            Code::Unauthenticated => "The request does not have valid authentication credentials",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
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
            | Error::DuplicateWatchId
            | Error::InvalidPeerUrls
            | Error::UserEmpty
            | Error::RoleEmpty
            | Error::AuthFailed
            | Error::PermissionNotGiven
            | Error::InvalidAuthMgmt
            | Error::AuthOldRevision => Code::InvalidArgument,
            Error::PermissionDenied => Code::PermissionDenied,
            Error::InvalidAuthToken => Code::Unauthenticated,
            Error::RootUserNotExist
            | Error::RootRoleNotExist
            | Error::UserAlreadyExist
            | Error::UserNotFound
            | Error::RoleAlreadyExist
            | Error::RoleNotFound
            | Error::RoleNotGranted
            | Error::PermissionNotGranted
            | Error::AuthNotEnabled => Code::FailedPrecondition,
            Error::NoPasswordUser
            | Error::PasswordTooLong
            | Error::InvalidAuthOpts
            | Error::InvalidAuthMethod
            | Error::MissingKey
            | Error::KeyMismatch
            | Error::VerifyOnly
            | Error::NotEnoughStartedMembers => Code::Unknown,
            Error::WatchCanceled => Code::Cancelled,
            Error::Compacted | Error::FutureRevision | Error::LeaseTtlTooLarge => Code::OutOfRange,
            Error::LeaseNotFound | Error::MemberNotFound => Code::NotFound,
            Error::LeaseExists
            | Error::RestoreTargetNotEmpty
            | Error::PeerUrlsExist
            | Error::MemberExist
            | Error::NotLearner
            | Error::LearnerNotReady
            | Error::TooManyLearners
            | Error::BadLeaderTransferee
            | Error::DowngradeInProcess
            | Error::NoInflightDowngrade => Code::FailedPrecondition,
            Error::WrongDowngradeVersionFormat | Error::InvalidDowngradeTargetVersion => {
                Code::InvalidArgument
            }
            Error::Unhealthy | Error::ClusterVersionUnavailable => Code::Unavailable,
            Error::NoSpace | Error::TooManyRequests => Code::ResourceExhausted,
            Error::Engine(e) if e.kind() == crate::engine::EngineErrorKind::Corruption => Code::DataLoss,
            Error::Engine(_) | Error::Internal(_) => Code::Internal,
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
        assert_eq!(Error::WatchCanceled.code(), Code::Cancelled);
        assert_eq!(Error::RestoreTargetNotEmpty.code(), Code::FailedPrecondition);
        assert_eq!(Error::NoSpace.to_string(), "etcdserver: mvcc: database space exceeded");
        assert_eq!(Error::NoSpace.code(), Code::ResourceExhausted);
        assert_eq!(Error::MemberNotFound.code(), Code::NotFound);
        assert_eq!(Error::BadLeaderTransferee.code(), Code::FailedPrecondition);
        // etcd 3.5.1 and 3.4.23 send this one with code Unknown (seen through etcdctl).
        assert_eq!(Error::NotEnoughStartedMembers.code(), Code::Unknown);
        assert_eq!(Error::Unhealthy.code(), Code::Unavailable);
        assert_eq!(Error::PermissionDenied.to_string(), "etcdserver: permission denied");
        assert_eq!(Error::PermissionDenied.code(), Code::PermissionDenied);
        assert_eq!(Error::InvalidAuthToken.code(), Code::Unauthenticated);
        assert_eq!(Error::AuthOldRevision.to_string(), "etcdserver: revision of auth store is old");
        assert_eq!(Error::AuthOldRevision.code(), Code::InvalidArgument);
        assert_eq!(Error::UserNotFound.code(), Code::FailedPrecondition);
        assert_eq!(Error::NoPasswordUser.code(), Code::Unknown);
    }

    #[test]
    fn codes_have_grpcs_numbers_and_descriptions() {
        assert_eq!(Code::from_i32(5), Code::NotFound);
        assert_eq!(Code::from_i32(16), Code::Unauthenticated);
        assert_eq!(Code::from_i32(17), Code::Unknown);
        assert_eq!(Code::from_i32(-1), Code::Unknown);
        assert_eq!(Code::Unavailable as i32, 14);
        assert_eq!(Code::NotFound.to_string(), "Some requested entity was not found");
    }
}
