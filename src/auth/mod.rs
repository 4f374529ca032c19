//! etcd's auth: users, roles, permissions and tokens, kept in the store itself.
//!
//! The state lives in the engine's `auth` keyspace, so it is on every engine, back after a
//! reopen, and in snapshots. Every change takes the store's writer lock, as a KV write does,
//! and the permission check of a KV write happens under that same lock: a write and an auth
//! change never interleave (etcd checks in its one apply loop for the same reason).
//!
//! A request says who it is from with a [`Caller`]: the application itself
//! ([`Caller::Trusted`], what [`Store`](crate::Store)'s own methods use), a user known by
//! a token or certificate ([`Caller::User`]), or credentials that were refused
//! ([`Caller::Refused`]). [`Store::as_caller`](crate::Store::as_caller) runs requests as a
//! caller, checking what etcd checks.
//!
//! ```
//! use etcdlite::auth::{Caller, KeyPermission, PermissionType};
//! use etcdlite::{Error, Options, Store};
//!
//! let store = Store::open(Options::memory().with_bcrypt_cost(4))?;
//! let auth = store.auth();
//! let admin = Caller::Trusted;
//! auth.user_add(&admin, "root", "secret", false)?;
//! auth.user_grant_role(&admin, "root", "root")?;
//! auth.user_add(&admin, "alice", "pw", false)?;
//! auth.role_add(&admin, "app")?;
//! auth.role_grant_permission(&admin, "app", KeyPermission::prefix(PermissionType::Readwrite, "app/"))?;
//! auth.user_grant_role(&admin, "alice", "app")?;
//! auth.auth_enable(&admin)?;
//!
//! let alice = auth.authenticate("alice", "pw")?;
//! let alice = auth.caller_from_token(&alice);
//! store.as_caller(&alice).put("app/x", "1")?;
//! assert_eq!(store.as_caller(&alice).put("other", "1").unwrap_err(), Error::PermissionDenied);
//! # Ok::<(), etcdlite::Error>(())
//! ```

mod jwt;
mod perms;
mod record;
mod requests;
mod store;
mod tokens;

use std::time::Duration;

pub(crate) use store::Checker;
pub use store::{AuthStatus, AuthStore};

use crate::error::Error;

/// The user etcd requires before auth can be enabled, and whose role can do everything.
pub const ROOT_USER: &str = "root";
/// The role that can do everything.
pub const ROOT_ROLE: &str = "root";

/// etcd's default bcrypt cost.
pub const DEFAULT_BCRYPT_COST: u32 = 10;
/// etcd's default simple token TTL (`--auth-token-ttl`).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(300);

/// Who a request is from, as a token or certificate names them (etcd's `AuthInfo`): a
/// user, and the auth revision their credentials stand at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthInfo {
    /// The user's name; empty for a request that named no one.
    pub user: String,
    /// The auth revision the credentials were checked at; 0 for none.
    pub revision: u64,
}

/// Who is asking, for the permission checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The application embedding the store: never checked.
    Trusted,
    /// A user (or, with an empty [`AuthInfo`], nobody: refused while auth is enabled with
    /// `etcdserver: user name is empty`).
    User(AuthInfo),
    /// Credentials that were refused (a token that is unknown, expired or forged): every
    /// checked request fails with this error.
    Refused(Error),
}

impl Caller {
    /// A request that named no user.
    pub fn anonymous() -> Caller {
        Caller::User(AuthInfo::default())
    }
}

/// The cancel reason of a watch create refused by auth, for the error its permission check
/// failed with: etcd puts the gRPC error's whole text there (`rpc error: code =
/// PermissionDenied desc = etcdserver: permission denied`), and reports every failure
/// other than a bad token, an old auth revision or a missing user as permission denied.
pub fn watch_cancel_reason(error: &Error) -> String {
    let (code, error) = match error {
        Error::InvalidAuthToken => ("Unauthenticated", error),
        Error::AuthOldRevision | Error::UserEmpty => ("InvalidArgument", error),
        _ => ("PermissionDenied", &Error::PermissionDenied),
    };
    format!("rpc error: code = {code} desc = {error}")
}

/// The text etcd's Maintenance service answers for an auth failure of Defragment, Hash,
/// HashKV and Snapshot: those return the auth store's own error, unmapped, which gRPC
/// sends with code Unknown (`auth: permission denied`, not `etcdserver: permission
/// denied`). `None` for an error that is not an auth store's.
pub fn unmapped_message(error: &Error) -> Option<&'static str> {
    Some(match error {
        Error::PermissionDenied => "auth: permission denied",
        Error::UserEmpty => "auth: user name is empty",
        Error::UserNotFound => "auth: user not found",
        Error::InvalidAuthToken => "auth: invalid auth token",
        Error::AuthOldRevision => "auth: revision in header is old",
        _ => return None,
    })
}

/// What a permission allows (etcd's `authpb.Permission.Type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PermissionType {
    /// Reads.
    #[default]
    Read = 0,
    /// Writes.
    Write = 1,
    /// Reads and writes.
    Readwrite = 2,
}

impl PermissionType {
    /// The type with etcd's number `number`, if it is one.
    pub fn from_i32(number: i32) -> Option<PermissionType> {
        match number {
            0 => Some(PermissionType::Read),
            1 => Some(PermissionType::Write),
            2 => Some(PermissionType::Readwrite),
            _ => None,
        }
    }
}

/// A permission of a role: over one key (an empty `range_end`), over `[key, range_end)`,
/// or over every key from `key` on (`range_end` = `"\0"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPermission {
    /// What it allows.
    pub perm_type: PermissionType,
    /// The key, or the start of the range.
    pub key: Vec<u8>,
    /// The end of the range; empty for one key.
    pub range_end: Vec<u8>,
}

impl KeyPermission {
    /// A permission over `key` alone.
    pub fn key(perm_type: PermissionType, key: impl Into<Vec<u8>>) -> Self {
        KeyPermission { perm_type, key: key.into(), range_end: Vec::new() }
    }

    /// A permission over every key starting with `prefix`.
    pub fn prefix(perm_type: PermissionType, prefix: impl Into<Vec<u8>>) -> Self {
        let (key, range_end) = crate::options::prefix_range(prefix.into());
        KeyPermission { perm_type, key, range_end }
    }

    /// A permission over `[key, range_end)`.
    pub fn range(perm_type: PermissionType, key: impl Into<Vec<u8>>, range_end: impl Into<Vec<u8>>) -> Self {
        KeyPermission { perm_type, key: key.into(), range_end: range_end.into() }
    }

    /// A permission over every key from `key` on.
    pub fn from_key(perm_type: PermissionType, key: impl Into<Vec<u8>>) -> Self {
        KeyPermission { perm_type, key: key.into(), range_end: vec![0] }
    }
}

/// How auth issues tokens and hashes passwords.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    pub(crate) token: String,
    pub(crate) token_ttl: Duration,
    pub(crate) bcrypt_cost: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token: "simple".to_owned(),
            token_ttl: DEFAULT_TOKEN_TTL,
            bcrypt_cost: DEFAULT_BCRYPT_COST,
        }
    }
}
