//! The Auth service: users, roles, permissions and tokens, in-process over the store's
//! [`AuthStore`](crate::auth::AuthStore) or remotely.

use super::{dispatch, header_accessors, Backend, Result};
use crate::auth::KeyPermission;
use crate::options::prefix_range;
use crate::txn::request::ResponseHeader;

pub use crate::auth::PermissionType;

/// A permission over a key, a range, a prefix or every key from a key on, as
/// `etcd-client` builds it.
#[derive(Clone, Debug)]
pub struct Permission {
    pub(crate) perm_type: PermissionType,
    pub(crate) key: Vec<u8>,
    pub(crate) range_end: Vec<u8>,
    pub(crate) with_prefix: bool,
    pub(crate) with_from_key: bool,
}

impl Permission {
    /// A permission of `perm_type` over `key`.
    pub fn new(perm_type: PermissionType, key: impl Into<Vec<u8>>) -> Self {
        Permission {
            perm_type,
            key: key.into(),
            range_end: Vec::new(),
            with_prefix: false,
            with_from_key: false,
        }
    }

    /// Read permission over `key`.
    pub fn read(key: impl Into<Vec<u8>>) -> Self {
        Permission::new(PermissionType::Read, key)
    }

    /// Write permission over `key`.
    pub fn write(key: impl Into<Vec<u8>>) -> Self {
        Permission::new(PermissionType::Write, key)
    }

    /// Read and write permission over `key`.
    pub fn read_write(key: impl Into<Vec<u8>>) -> Self {
        Permission::new(PermissionType::Readwrite, key)
    }

    /// Over `[key, range_end)`.
    pub fn with_range_end(mut self, range_end: impl Into<Vec<u8>>) -> Self {
        self.range_end = range_end.into();
        self.with_prefix = false;
        self.with_from_key = false;
        self
    }

    /// Over every key from `key` on.
    pub fn with_from_key(mut self) -> Self {
        self.with_from_key = true;
        self.with_prefix = false;
        self
    }

    /// Over every key starting with `key`.
    pub fn with_prefix(mut self) -> Self {
        self.with_prefix = true;
        self.with_from_key = false;
        self
    }

    /// Over every key.
    pub fn with_all_keys(mut self) -> Self {
        self.key.clear();
        self.with_from_key()
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The range end.
    pub fn range_end(&self) -> &[u8] {
        &self.range_end
    }

    /// The key as UTF-8.
    pub fn key_str(&self) -> Result<&str> {
        Ok(std::str::from_utf8(&self.key)?)
    }

    /// The range end as UTF-8.
    pub fn range_end_str(&self) -> Result<&str> {
        Ok(std::str::from_utf8(&self.range_end)?)
    }

    /// The permission type's number.
    pub const fn get_type(&self) -> i32 {
        self.perm_type as i32
    }

    /// True for a from-key permission.
    pub const fn is_from_key(&self) -> bool {
        self.with_from_key
    }

    /// True for a prefix permission.
    pub const fn is_prefix(&self) -> bool {
        self.with_prefix
    }

    /// The key and range end sent to the server: a prefix or from-key resolved as etcd's
    /// clients resolve them.
    pub(crate) fn resolved(&self) -> (Vec<u8>, Vec<u8>) {
        if self.with_prefix {
            prefix_range(self.key.clone())
        } else if self.with_from_key {
            let key = if self.key.is_empty() { vec![0] } else { self.key.clone() };
            (key, vec![0])
        } else {
            (self.key.clone(), self.range_end.clone())
        }
    }

    /// A permission as a server lists it: the prefix and from-key forms recognised.
    pub(crate) fn listed(perm_type: PermissionType, key: Vec<u8>, range_end: Vec<u8>) -> Self {
        let with_from_key = range_end == [0];
        let with_prefix = !with_from_key && !range_end.is_empty() && prefix_range(key.clone()).1 == range_end;
        Permission { perm_type, key, range_end, with_prefix, with_from_key }
    }
}

impl PartialEq for Permission {
    /// Equal type, form and key (the empty key and `"\0"` both mean "from the first key").
    fn eq(&self, other: &Self) -> bool {
        let same_key = self.key == other.key
            || (self.key.is_empty() && other.key == [0])
            || (self.key == [0] && other.key.is_empty());
        self.with_prefix == other.with_prefix
            && self.with_from_key == other.with_from_key
            && self.perm_type == other.perm_type
            && same_key
    }
}

/// Options of a permission revoke: which range the revoked permission covered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleRevokePermissionOptions {
    pub(crate) range_end: Vec<u8>,
    pub(crate) prefix: bool,
    pub(crate) from_key: bool,
    pub(crate) all_keys: bool,
}

impl RoleRevokePermissionOptions {
    /// The key alone.
    pub const fn new() -> Self {
        RoleRevokePermissionOptions { range_end: Vec::new(), prefix: false, from_key: false, all_keys: false }
    }

    /// `[key, range_end)`.
    pub fn with_range_end(mut self, range_end: impl Into<Vec<u8>>) -> Self {
        self.range_end = range_end.into();
        self.prefix = false;
        self.from_key = false;
        self.all_keys = false;
        self
    }

    /// Every key starting with the key.
    pub fn with_prefix(mut self) -> Self {
        self.prefix = true;
        self.from_key = false;
        self.all_keys = false;
        self
    }

    /// Every key from the key on.
    pub fn with_from_key(mut self) -> Self {
        self.from_key = true;
        self.prefix = false;
        self.all_keys = false;
        self
    }

    /// Every key.
    pub fn with_all_keys(mut self) -> Self {
        self.all_keys = true;
        self.prefix = false;
        self.from_key = false;
        self
    }

    /// The key and range end sent to the server for `key`.
    pub(crate) fn resolve(&self, key: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
        if self.all_keys {
            (vec![0], vec![0])
        } else if self.from_key {
            (if key.is_empty() { vec![0] } else { key }, vec![0])
        } else if self.prefix {
            prefix_range(key)
        } else {
            (key, self.range_end.clone())
        }
    }
}

/// Options of a user add.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserAddOptions {
    pub(crate) no_password: bool,
}

impl UserAddOptions {
    /// A user with a password.
    pub const fn new() -> Self {
        UserAddOptions { no_password: false }
    }

    /// A user without a password (who authenticates by TLS certificate only).
    pub const fn with_no_pwd(mut self) -> Self {
        self.no_password = true;
        self
    }
}

/// Declares an Auth response that carries only its header.
macro_rules! header_response {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            pub(crate) header: Option<ResponseHeader>,
        }

        impl $name {
            header_accessors!();
        }
    };
}

/// Declares an Auth response that carries a list of names.
macro_rules! names_response {
    ($(#[$doc:meta])* $name:ident, $field:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            pub(crate) header: Option<ResponseHeader>,
            pub(crate) $field: Vec<String>,
        }

        impl $name {
            header_accessors!();

            /// The names.
            pub fn $field(&self) -> &[String] {
                &self.$field
            }
        }
    };
}

header_response!(
    /// The answer to an auth enable.
    AuthEnableResponse
);
header_response!(
    /// The answer to an auth disable.
    AuthDisableResponse
);
header_response!(
    /// The answer to a role add.
    RoleAddResponse
);
header_response!(
    /// The answer to a role delete.
    RoleDeleteResponse
);
header_response!(
    /// The answer to a permission grant.
    RoleGrantPermissionResponse
);
header_response!(
    /// The answer to a permission revoke.
    RoleRevokePermissionResponse
);
header_response!(
    /// The answer to a user add.
    UserAddResponse
);
header_response!(
    /// The answer to a user delete.
    UserDeleteResponse
);
header_response!(
    /// The answer to a password change.
    UserChangePasswordResponse
);
header_response!(
    /// The answer to a role grant.
    UserGrantRoleResponse
);
header_response!(
    /// The answer to a role revoke.
    UserRevokeRoleResponse
);
names_response!(
    /// Every role.
    RoleListResponse,
    roles
);
names_response!(
    /// A user's roles.
    UserGetResponse,
    roles
);
names_response!(
    /// Every user.
    UserListResponse,
    users
);

/// Whether auth is enabled, and the auth revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthStatusResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) enabled: bool,
    pub(crate) auth_revision: u64,
}

impl AuthStatusResponse {
    header_accessors!();

    /// True while auth is enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The auth revision.
    pub fn auth_revision(&self) -> u64 {
        self.auth_revision
    }
}

/// The answer to an authenticate call: a token for the user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthenticateResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) token: String,
}

impl AuthenticateResponse {
    header_accessors!();

    /// The token.
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// A role's permissions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoleGetResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) permissions: Vec<Permission>,
}

impl RoleGetResponse {
    header_accessors!();

    /// The role's permissions (a copy, as `etcd-client` gives them).
    pub fn permissions(&self) -> Vec<Permission> {
        self.permissions.clone()
    }
}

/// The Auth service of a [`Client`](super::Client).
#[derive(Clone, Debug)]
pub struct AuthClient {
    pub(crate) backend: Backend,
}

/// Runs an Auth call: in-process, `$embedded` with the store's auth (`$a`) as the client's
/// caller (`$c`) on a blocking-free path (bcrypt runs on the calling thread), answered
/// with a header; remotely, `$remote`.
macro_rules! auth_call {
    ($self:ident, ($a:ident, $c:ident) => $embedded:expr, $r:ident => $remote:expr) => {
        dispatch!(&mut $self.backend, e => {
            e.call(async {
                let $c = e.caller()?;
                let $a = e.store.auth();
                Ok($embedded(e.header(0))?)
            })
            .await
        }, $r => $remote)
    };
}

impl AuthClient {
    /// Enables auth (a `root` user with the `root` role must exist).
    pub async fn auth_enable(&mut self) -> Result<AuthEnableResponse> {
        auth_call!(self, (a, c) => |header| a.auth_enable(&c).map(|()| AuthEnableResponse { header }),
            r => super::remote::auth_enable(r).await)
    }

    /// Disables auth.
    pub async fn auth_disable(&mut self) -> Result<AuthDisableResponse> {
        auth_call!(self, (a, c) => |header| a.auth_disable(&c).map(|()| AuthDisableResponse { header }),
            r => super::remote::auth_disable(r).await)
    }

    /// Whether auth is enabled, and the auth revision.
    pub async fn auth_status(&mut self) -> Result<AuthStatusResponse> {
        auth_call!(self, (a, c) => |header| a.auth_status(&c).map(|s| AuthStatusResponse {
            header,
            enabled: s.enabled,
            auth_revision: s.revision,
        }), r => super::remote::auth_status(r).await)
    }

    /// Authenticates `name` with `password`; answers a token.
    pub async fn authenticate(
        &mut self,
        name: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<AuthenticateResponse> {
        let (name, password) = (name.into(), password.into());
        dispatch!(&mut self.backend, e => {
            let token = e.store.auth().authenticate(&name, &password)?;
            Ok(AuthenticateResponse { header: e.header(0), token })
        }, r => super::remote::authenticate(r, name, password).await)
    }

    /// Adds role `name`.
    pub async fn role_add(&mut self, name: impl Into<String>) -> Result<RoleAddResponse> {
        let name = name.into();
        auth_call!(self, (a, c) => |header| a.role_add(&c, &name).map(|()| RoleAddResponse { header }),
            r => super::remote::role_add(r, name).await)
    }

    /// Deletes role `name`.
    pub async fn role_delete(&mut self, name: impl Into<String>) -> Result<RoleDeleteResponse> {
        let name = name.into();
        auth_call!(self, (a, c) => |header| a.role_delete(&c, &name).map(|()| RoleDeleteResponse { header }),
            r => super::remote::role_delete(r, name).await)
    }

    /// Role `name`'s permissions.
    pub async fn role_get(&mut self, name: impl Into<String>) -> Result<RoleGetResponse> {
        let name = name.into();
        auth_call!(self, (a, c) => |header| a.role_get(&c, &name).map(|perms| RoleGetResponse {
            header,
            permissions: perms.into_iter().map(|p| Permission::listed(p.perm_type, p.key, p.range_end)).collect(),
        }), r => super::remote::role_get(r, name).await)
    }

    /// Every role.
    pub async fn role_list(&mut self) -> Result<RoleListResponse> {
        auth_call!(self, (a, c) => |header| a.role_list(&c).map(|roles| RoleListResponse { header, roles }),
            r => super::remote::role_list(r).await)
    }

    /// Grants `perm` to role `name`.
    pub async fn role_grant_permission(
        &mut self,
        name: impl Into<String>,
        perm: Permission,
    ) -> Result<RoleGrantPermissionResponse> {
        let name = name.into();
        auth_call!(self, (a, c) => |header| {
            let (key, range_end) = perm.resolved();
            let granted = KeyPermission { perm_type: perm.perm_type, key, range_end };
            a.role_grant_permission(&c, &name, granted).map(|()| RoleGrantPermissionResponse { header })
        }, r => super::remote::role_grant_permission(r, name, perm).await)
    }

    /// Revokes role `name`'s permission over `key` (or the range `options` describe).
    pub async fn role_revoke_permission(
        &mut self,
        name: impl Into<String>,
        key: impl Into<Vec<u8>>,
        options: Option<RoleRevokePermissionOptions>,
    ) -> Result<RoleRevokePermissionResponse> {
        let (name, key) = (name.into(), key.into());
        let (key, range_end) = options.unwrap_or_default().resolve(key);
        auth_call!(self, (a, c) => |header| a
            .role_revoke_permission(&c, &name, &key, &range_end)
            .map(|()| RoleRevokePermissionResponse { header }),
            r => super::remote::role_revoke_permission(r, name, key, range_end).await)
    }

    /// Adds user `name`.
    pub async fn user_add(
        &mut self,
        name: impl Into<String>,
        password: impl Into<String>,
        options: Option<UserAddOptions>,
    ) -> Result<UserAddResponse> {
        let (name, password) = (name.into(), password.into());
        let options = options.unwrap_or_default();
        auth_call!(self, (a, c) => |header| a
            .user_add(&c, &name, &password, options.no_password)
            .map(|()| UserAddResponse { header }),
            r => super::remote::user_add(r, name, password, options).await)
    }

    /// User `name`'s roles.
    pub async fn user_get(&mut self, name: impl Into<String>) -> Result<UserGetResponse> {
        let name = name.into();
        auth_call!(self, (a, c) => |header| a.user_get(&c, &name).map(|roles| UserGetResponse { header, roles }),
            r => super::remote::user_get(r, name).await)
    }

    /// Every user.
    pub async fn user_list(&mut self) -> Result<UserListResponse> {
        auth_call!(self, (a, c) => |header| a.user_list(&c).map(|users| UserListResponse { header, users }),
            r => super::remote::user_list(r).await)
    }

    /// Deletes user `name`.
    pub async fn user_delete(&mut self, name: impl Into<String>) -> Result<UserDeleteResponse> {
        let name = name.into();
        auth_call!(self, (a, c) => |header| a.user_delete(&c, &name).map(|()| UserDeleteResponse { header }),
            r => super::remote::user_delete(r, name).await)
    }

    /// Changes user `name`'s password.
    pub async fn user_change_password(
        &mut self,
        name: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<UserChangePasswordResponse> {
        let (name, password) = (name.into(), password.into());
        auth_call!(self, (a, c) => |header| a
            .user_change_password(&c, &name, &password)
            .map(|()| UserChangePasswordResponse { header }),
            r => super::remote::user_change_password(r, name, password).await)
    }

    /// Grants `role` to `user`.
    pub async fn user_grant_role(
        &mut self,
        user: impl Into<String>,
        role: impl Into<String>,
    ) -> Result<UserGrantRoleResponse> {
        let (user, role) = (user.into(), role.into());
        auth_call!(self, (a, c) => |header| a
            .user_grant_role(&c, &user, &role)
            .map(|()| UserGrantRoleResponse { header }),
            r => super::remote::user_grant_role(r, user, role).await)
    }

    /// Revokes `role` from `user`.
    pub async fn user_revoke_role(
        &mut self,
        user: impl Into<String>,
        role: impl Into<String>,
    ) -> Result<UserRevokeRoleResponse> {
        let (user, role) = (user.into(), role.into());
        auth_call!(self, (a, c) => |header| a
            .user_revoke_role(&c, &user, &role)
            .map(|()| UserRevokeRoleResponse { header }),
            r => super::remote::user_revoke_role(r, user, role).await)
    }
}
