//! How users, roles and the auth flags are kept in the engine's `auth` keyspace. Users and
//! roles are encoded as etcd's `authpb.User` and `authpb.Role` messages.

/// `authpb.UserAddOptions`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub(crate) struct UserOptions {
    #[prost(bool, tag = "1")]
    pub no_password: bool,
}

/// `authpb.User`: the password is the bcrypt hash, roles are sorted.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub(crate) struct UserRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub password: Vec<u8>,
    #[prost(string, repeated, tag = "3")]
    pub roles: Vec<String>,
    #[prost(message, optional, tag = "4")]
    pub options: Option<UserOptions>,
}

impl UserRecord {
    pub(crate) fn no_password(&self) -> bool {
        self.options.is_some_and(|o| o.no_password)
    }

    pub(crate) fn has_role(&self, role: &str) -> bool {
        self.roles.binary_search_by(|r| r.as_str().cmp(role)).is_ok()
    }
}

/// `authpb.Permission`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub(crate) struct PermissionRecord {
    #[prost(int32, tag = "1")]
    pub perm_type: i32,
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub range_end: Vec<u8>,
}

/// `authpb.Role`: permissions sorted by key.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub(crate) struct RoleRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    pub key_permission: Vec<PermissionRecord>,
}

/// The key of the enabled flag (one byte, 1 when enabled).
pub(crate) const ENABLED: &[u8] = b"enabled";
/// The key of the auth revision (8 bytes, big-endian).
pub(crate) const REVISION: &[u8] = b"revision";
/// The prefix of user records, followed by the name.
pub(crate) const USER_PREFIX: &[u8] = b"user/";
/// The prefix of role records, followed by the name.
pub(crate) const ROLE_PREFIX: &[u8] = b"role/";

pub(crate) fn user_key(name: &str) -> Vec<u8> {
    [USER_PREFIX, name.as_bytes()].concat()
}

pub(crate) fn role_key(name: &str) -> Vec<u8> {
    [ROLE_PREFIX, name.as_bytes()].concat()
}
