//! The auth store: its state, its changes (each a write of the `auth` keyspace under the
//! store's writer lock), authentication and the permission checks.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;

use parking_lot::RwLock;
use prost::Message;

use super::jwt::{JwtOptions, JwtTokens};
use super::perms::{is_valid_range, UserPerms};
use super::record::{self, PermissionRecord, RoleRecord, UserOptions, UserRecord};
use super::tokens::{SimpleTokens, Tokens};
use super::{AuthConfig, AuthInfo, Caller, KeyPermission, PermissionType, ROOT_ROLE, ROOT_USER};
use crate::engine::{Bounds, Direction, EngineError, EngineErrorKind, Keyspace};
use crate::error::{Error, Result};
use crate::lease::Clock;
use crate::mvcc::MvccStore;

/// Whether auth is on, and the auth revision (etcd's `AuthStatusResponse`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthStatus {
    /// True while auth is enabled.
    pub enabled: bool,
    /// The auth revision: 1 at first, one more after every change.
    pub revision: u64,
}

/// One moment of the auth state. Changes build a new one and swap it in.
#[derive(Clone, Debug)]
struct State {
    enabled: bool,
    revision: u64,
    users: BTreeMap<String, UserRecord>,
    roles: BTreeMap<String, RoleRecord>,
    /// Each user's merged permissions, rebuilt after every change.
    perms: HashMap<String, Arc<UserPerms>>,
}

impl State {
    fn rebuild_perms(&mut self) {
        let roles = &self.roles;
        self.perms = self
            .users
            .iter()
            .map(|(name, user)| {
                let held: Vec<_> =
                    user.roles.iter().filter_map(|r| roles.get(r)).map(RoleRecord::permissions).collect();
                (name.clone(), Arc::new(UserPerms::merge(held.iter().map(Vec::as_slice))))
            })
            .collect();
    }

    fn is_root(&self, user: &str) -> bool {
        self.users.get(user).is_some_and(|u| u.has_role(ROOT_ROLE))
    }
}

impl RoleRecord {
    fn permissions(&self) -> Vec<KeyPermission> {
        self.key_permission
            .iter()
            .map(|p| KeyPermission {
                perm_type: PermissionType::from_i32(p.perm_type).unwrap_or_default(),
                key: p.key.clone(),
                range_end: p.range_end.clone(),
            })
            .collect()
    }
}

/// The engine writes a change stages, beside the new state.
#[derive(Default)]
struct Staged(Vec<(Vec<u8>, Option<Vec<u8>>)>);

impl Staged {
    fn user(&mut self, user: &UserRecord) {
        let name = String::from_utf8_lossy(&user.name);
        self.0.push((record::user_key(&name), Some(user.encode_to_vec())));
    }

    fn role(&mut self, role: &RoleRecord) {
        let name = String::from_utf8_lossy(&role.name);
        self.0.push((record::role_key(&name), Some(role.encode_to_vec())));
    }
}

/// A change to the state: applies itself to `next` (a copy of the current state) and
/// stages its writes; returns whether it changed anything.
type Change<'a> = dyn FnOnce(&mut State, &mut Staged) -> Result<bool> + 'a;

/// etcd's auth store: users, roles, permissions, the enabled flag and the auth revision,
/// persisted in the `auth` keyspace, with the tokens handed out (in memory).
pub struct AuthStore {
    mvcc: Arc<MvccStore>,
    state: RwLock<Arc<State>>,
    tokens: Tokens,
    bcrypt_cost: u32,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.status_unchecked();
        f.debug_struct("AuthStore")
            .field("enabled", &status.enabled)
            .field("revision", &status.revision)
            .finish()
    }
}

impl AuthStore {
    /// The auth store of `mvcc`, as its `auth` keyspace holds it.
    pub(crate) fn open(
        mvcc: Arc<MvccStore>,
        config: &AuthConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<AuthStore> {
        // etcd's `--auth-token`: "simple", or "jwt,<options>".
        let tokens = match config.token.split(',').next().unwrap_or_default() {
            "simple" => Tokens::Simple(SimpleTokens::new(config.token_ttl)),
            "jwt" => Tokens::Jwt(Box::new(JwtTokens::new(&JwtOptions::parse(&config.token)?)?)),
            _ => return Err(Error::InvalidAuthOpts),
        };
        // etcd falls back to its default cost for one bcrypt would refuse.
        let bcrypt_cost = if (4..=31).contains(&config.bcrypt_cost) {
            config.bcrypt_cost
        } else {
            super::DEFAULT_BCRYPT_COST
        };
        let state = load(&mvcc)?;
        if state.enabled {
            tokens.enable();
        }
        Ok(AuthStore { mvcc, state: RwLock::new(Arc::new(state)), tokens, bcrypt_cost, clock })
    }

    fn current(&self) -> Arc<State> {
        self.state.read().clone()
    }

    fn status_unchecked(&self) -> AuthStatus {
        let state = self.current();
        AuthStatus { enabled: state.enabled, revision: state.revision }
    }

    /// True while auth is enabled.
    pub fn is_enabled(&self) -> bool {
        self.state.read().enabled
    }

    /// The auth revision.
    pub fn revision(&self) -> u64 {
        self.state.read().revision
    }

    /// Applies `change` as `caller` (who must be an administrator while auth is enabled),
    /// under the store's writer lock; the new state is swapped in when the write commits.
    fn change(&self, caller: &Caller, change: Box<Change<'_>>) -> Result<()> {
        let write = self.mvcc.write();
        let current = self.current();
        let checked = check_admin(&current, caller);
        let mut next = (*current).clone();
        let mut staged = Staged::default();
        match checked.and_then(|()| change(&mut next, &mut staged)) {
            Ok(true) => {}
            // An answer that rests on what was read waits until that is durable, as a
            // refused KV write does.
            Ok(false) => {
                write.abandon().wait()?;
                return Ok(());
            }
            Err(e) => {
                write.abandon().wait()?;
                return Err(e);
            }
        }
        let mut write = write;
        for (key, value) in staged.0 {
            write.stage(Keyspace::Auth, key, value);
        }
        if next.revision != current.revision {
            write.stage(
                Keyspace::Auth,
                record::REVISION.to_vec(),
                Some(next.revision.to_be_bytes().to_vec()),
            );
        }
        if next.enabled != current.enabled {
            write.stage(Keyspace::Auth, record::ENABLED.to_vec(), Some(vec![u8::from(next.enabled)]));
        }
        next.rebuild_perms();
        let next = Arc::new(next);
        write.commit_with(|_| *self.state.write() = next)?;
        Ok(())
    }

    /// etcd's AuthEnable: needs a `root` user with the `root` role. Enabling it again is
    /// not an error.
    pub fn auth_enable(&self, caller: &Caller) -> Result<()> {
        // Token keeping starts first, so that no login between the switch and here gets a
        // token that was not kept (none is handed out while auth is still disabled).
        self.tokens.enable();
        self.change(
            caller,
            Box::new(|state, _| {
                if state.enabled {
                    return Ok(false);
                }
                let root = state.users.get(ROOT_USER).ok_or(Error::RootUserNotExist)?;
                if !root.has_role(ROOT_ROLE) {
                    return Err(Error::RootRoleNotExist);
                }
                state.enabled = true;
                Ok(true)
            }),
        )
    }

    /// etcd's AuthDisable: every token is forgotten.
    pub fn auth_disable(&self, caller: &Caller) -> Result<()> {
        self.change(
            caller,
            Box::new(|state, _| {
                if !state.enabled {
                    return Ok(false);
                }
                state.enabled = false;
                state.revision += 1;
                Ok(true)
            }),
        )?;
        if !self.is_enabled() {
            self.tokens.disable();
        }
        Ok(())
    }

    /// etcd's AuthStatus (for an administrator while auth is enabled).
    pub fn auth_status(&self, caller: &Caller) -> Result<AuthStatus> {
        let state = self.current();
        check_admin(&state, caller)?;
        Ok(AuthStatus { enabled: state.enabled, revision: state.revision })
    }

    /// etcd's Authenticate: a token for `name` when `password` is theirs.
    pub fn authenticate(&self, name: &str, password: &str) -> Result<String> {
        loop {
            let checked = self.current();
            if !checked.enabled {
                return Err(Error::AuthNotEnabled);
            }
            let user = checked.users.get(name).ok_or(Error::AuthFailed)?;
            if user.no_password() {
                return Err(Error::NoPasswordUser);
            }
            // bcrypt is slow by design: no lock is held meanwhile.
            let hash = std::str::from_utf8(&user.password).unwrap_or_default();
            if !bcrypt::verify(password, hash).unwrap_or(false) {
                return Err(Error::AuthFailed);
            }
            // Hand the token out against the state the password was checked on; a change
            // since then (a new password, a deleted user) means checking again. Holding the
            // state's read lock keeps a change from forgetting the user's tokens between
            // the check and the assignment.
            let state = self.state.read();
            if state.revision == checked.revision {
                return self.tokens.assign(name, state.revision, self.clock.now());
            }
        }
    }

    /// Who `token` stands for: a [`Caller::User`], or [`Caller::Refused`] with
    /// `etcdserver: invalid auth token` for a token that is unknown, expired or forged.
    /// While auth is disabled a token is not read at all (nobody), and a `Bearer ` prefix
    /// is dropped, as etcd 3.5 does.
    pub fn caller_from_token(&self, token: &str) -> Caller {
        if !self.is_enabled() {
            return Caller::anonymous();
        }
        let token = token.strip_prefix("Bearer ").unwrap_or(token);
        match self.tokens.info(token, self.revision(), self.clock.now()) {
            Some(info) => Caller::User(info),
            None => Caller::Refused(Error::InvalidAuthToken),
        }
    }

    /// The caller a verified client certificate with common name `name` stands for (etcd
    /// with `--client-cert-auth`, when the request carries no token).
    pub fn caller_from_certificate(&self, name: &str) -> Caller {
        Caller::User(AuthInfo { user: name.to_owned(), revision: self.revision() })
    }

    fn hash(&self, password: &str) -> Result<Vec<u8>> {
        if password.len() > 72 {
            return Err(Error::PasswordTooLong);
        }
        let hashed = bcrypt::hash_with_result(password, self.bcrypt_cost)
            .map_err(|e| Error::Internal(format!("bcrypt: {e}")))?;
        Ok(hashed.format_for_version(bcrypt::Version::TwoA).into_bytes())
    }

    /// etcd's UserAdd; a `no_password` user can only be authenticated by a certificate.
    pub fn user_add(&self, caller: &Caller, name: &str, password: &str, no_password: bool) -> Result<()> {
        // Hashing first, outside the lock, as etcd hashes before proposing.
        let hashed = if no_password { Vec::new() } else { self.hash(password)? };
        self.change(
            caller,
            Box::new(move |state, staged| {
                if name.is_empty() {
                    return Err(Error::UserEmpty);
                }
                if state.users.contains_key(name) {
                    return Err(Error::UserAlreadyExist);
                }
                let user = UserRecord {
                    name: name.as_bytes().to_vec(),
                    password: hashed,
                    roles: Vec::new(),
                    options: Some(UserOptions { no_password }),
                };
                staged.user(&user);
                state.users.insert(name.to_owned(), user);
                state.revision += 1;
                Ok(true)
            }),
        )
    }

    /// etcd's UserDelete; the root user cannot be deleted while auth is enabled.
    pub fn user_delete(&self, caller: &Caller, name: &str) -> Result<()> {
        self.change(
            caller,
            Box::new(|state, staged| {
                if state.enabled && name == ROOT_USER {
                    return Err(Error::InvalidAuthMgmt);
                }
                if state.users.remove(name).is_none() {
                    return Err(Error::UserNotFound);
                }
                staged.0.push((record::user_key(name), None));
                state.revision += 1;
                Ok(true)
            }),
        )?;
        self.tokens.invalidate_user(name);
        Ok(())
    }

    /// etcd's UserChangePassword; a `no_password` user stays without one.
    pub fn user_change_password(&self, caller: &Caller, name: &str, password: &str) -> Result<()> {
        // etcd hashes a non-empty password; an empty one leaves a password nothing matches.
        let hashed = if password.is_empty() { Vec::new() } else { self.hash(password)? };
        self.set_password(caller, name, hashed)
    }

    /// etcd's UserChangePassword with a hash made by the client (`hashedPassword`, the
    /// base64 of a bcrypt hash), stored as it is; one that is not base64 is refused as etcd
    /// refuses it (`NoPasswordUser`).
    pub fn user_change_password_hashed(
        &self,
        caller: &Caller,
        name: &str,
        hashed_base64: &str,
    ) -> Result<()> {
        use base64::Engine as _;
        let hashed = base64::engine::general_purpose::STANDARD.decode(hashed_base64);
        self.set_password(caller, name, hashed.map_err(|_| Error::NoPasswordUser)?)
    }

    fn set_password(&self, caller: &Caller, name: &str, hashed: Vec<u8>) -> Result<()> {
        self.change(
            caller,
            Box::new(move |state, staged| {
                let user = state.users.get_mut(name).ok_or(Error::UserNotFound)?;
                if !user.no_password() {
                    user.password = hashed;
                }
                staged.user(user);
                state.revision += 1;
                Ok(true)
            }),
        )?;
        self.tokens.invalidate_user(name);
        Ok(())
    }

    /// etcd's UserGrantRole; granting a role the user has changes nothing. The `root` role
    /// need not exist to be granted.
    pub fn user_grant_role(&self, caller: &Caller, name: &str, role: &str) -> Result<()> {
        self.change(
            caller,
            Box::new(|state, staged| {
                let roles = &state.roles;
                let user = state.users.get_mut(name).ok_or(Error::UserNotFound)?;
                if role != ROOT_ROLE && !roles.contains_key(role) {
                    return Err(Error::RoleNotFound);
                }
                let Err(at) = user.roles.binary_search_by(|r| r.as_str().cmp(role)) else {
                    return Ok(false);
                };
                user.roles.insert(at, role.to_owned());
                staged.user(user);
                state.revision += 1;
                Ok(true)
            }),
        )
    }

    /// etcd's UserRevokeRole; root keeps the root role while auth is enabled.
    pub fn user_revoke_role(&self, caller: &Caller, name: &str, role: &str) -> Result<()> {
        self.change(
            caller,
            Box::new(|state, staged| {
                if state.enabled && name == ROOT_USER && role == ROOT_ROLE {
                    return Err(Error::InvalidAuthMgmt);
                }
                let user = state.users.get_mut(name).ok_or(Error::UserNotFound)?;
                let before = user.roles.len();
                user.roles.retain(|r| r != role);
                if user.roles.len() == before {
                    return Err(Error::RoleNotGranted);
                }
                staged.user(user);
                state.revision += 1;
                Ok(true)
            }),
        )
    }

    /// etcd's UserGet: the user's roles (an administrator's call, or the user's own).
    pub fn user_get(&self, caller: &Caller, name: &str) -> Result<Vec<String>> {
        let state = self.current();
        if let Err(e) = check_admin(&state, caller) {
            if !matches!(caller, Caller::User(info) if info.user == name) {
                return Err(e);
            }
        }
        state.users.get(name).map(|u| u.roles.clone()).ok_or(Error::UserNotFound)
    }

    /// etcd's UserList: every user's name, in byte order.
    pub fn user_list(&self, caller: &Caller) -> Result<Vec<String>> {
        let state = self.current();
        check_admin(&state, caller)?;
        Ok(state.users.keys().cloned().collect())
    }

    /// etcd's RoleAdd.
    pub fn role_add(&self, caller: &Caller, name: &str) -> Result<()> {
        self.change(
            caller,
            Box::new(|state, staged| {
                if name.is_empty() {
                    return Err(Error::RoleEmpty);
                }
                if state.roles.contains_key(name) {
                    return Err(Error::RoleAlreadyExist);
                }
                let role = RoleRecord { name: name.as_bytes().to_vec(), key_permission: Vec::new() };
                staged.role(&role);
                state.roles.insert(name.to_owned(), role);
                state.revision += 1;
                Ok(true)
            }),
        )
    }

    /// etcd's RoleGet: the role's permissions, by key (an administrator's call, or one of
    /// a user holding the role).
    pub fn role_get(&self, caller: &Caller, name: &str) -> Result<Vec<KeyPermission>> {
        let state = self.current();
        if let Err(e) = check_admin(&state, caller) {
            let holds = matches!(caller, Caller::User(info)
                if state.users.get(&info.user).is_some_and(|u| u.roles.iter().any(|r| r == name)));
            if !holds {
                return Err(e);
            }
        }
        state.roles.get(name).map(RoleRecord::permissions).ok_or(Error::RoleNotFound)
    }

    /// etcd's RoleList: every role's name, in byte order.
    pub fn role_list(&self, caller: &Caller) -> Result<Vec<String>> {
        let state = self.current();
        check_admin(&state, caller)?;
        Ok(state.roles.keys().cloned().collect())
    }

    /// etcd's RoleDelete: the role also leaves every user holding it. The root role cannot
    /// be deleted while auth is enabled.
    pub fn role_delete(&self, caller: &Caller, name: &str) -> Result<()> {
        self.change(
            caller,
            Box::new(|state, staged| {
                if state.enabled && name == ROOT_ROLE {
                    return Err(Error::InvalidAuthMgmt);
                }
                if state.roles.remove(name).is_none() {
                    return Err(Error::RoleNotFound);
                }
                staged.0.push((record::role_key(name), None));
                for user in state.users.values_mut() {
                    let before = user.roles.len();
                    user.roles.retain(|r| r != name);
                    if user.roles.len() != before {
                        staged.user(user);
                    }
                }
                state.revision += 1;
                Ok(true)
            }),
        )
    }

    /// etcd's RoleGrantPermission: a permission over the same key and range end as the
    /// first one of the role with that key replaces its type; any other is added.
    pub fn role_grant_permission(&self, caller: &Caller, name: &str, perm: KeyPermission) -> Result<()> {
        self.change(
            caller,
            Box::new(move |state, staged| {
                if !is_valid_range(&perm.key, &perm.range_end) {
                    return Err(Error::InvalidAuthMgmt);
                }
                let role = state.roles.get_mut(name).ok_or(Error::RoleNotFound)?;
                let perms = &mut role.key_permission;
                let at = perms.partition_point(|p| p.key < perm.key);
                match perms.get_mut(at) {
                    Some(found) if found.key == perm.key && found.range_end == perm.range_end => {
                        found.perm_type = perm.perm_type as i32;
                    }
                    _ => {
                        perms.push(PermissionRecord {
                            perm_type: perm.perm_type as i32,
                            key: perm.key,
                            range_end: perm.range_end,
                        });
                        perms.sort_by(|a, b| a.key.cmp(&b.key));
                    }
                }
                staged.role(role);
                state.revision += 1;
                Ok(true)
            }),
        )
    }

    /// etcd's RoleRevokePermission: removes the role's permissions over exactly `key` and
    /// `range_end`.
    pub fn role_revoke_permission(
        &self,
        caller: &Caller,
        name: &str,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<()> {
        self.change(
            caller,
            Box::new(|state, staged| {
                let role = state.roles.get_mut(name).ok_or(Error::RoleNotFound)?;
                let before = role.key_permission.len();
                role.key_permission.retain(|p| p.key != key || p.range_end != range_end);
                if role.key_permission.len() == before {
                    return Err(Error::PermissionNotGranted);
                }
                staged.role(role);
                state.revision += 1;
                Ok(true)
            }),
        )
    }

    /// The permission checks of `caller` against the auth state as it is now.
    pub(crate) fn checker<'a>(&self, caller: &'a Caller) -> Checker<'a> {
        let state = match caller {
            Caller::Trusted => None,
            _ => Some(self.current()),
        };
        Checker { caller, state }
    }

    /// Fails when `caller` may not read `key` (with an empty `range_end`) or
    /// `[key, range_end)`: the check of a watch, or of a read made elsewhere.
    pub fn check_range(&self, caller: &Caller, key: &[u8], range_end: &[u8]) -> Result<()> {
        self.checker(caller).range(key, range_end)
    }

    /// etcd's check of a watch create: read permission on its key or range, made after a
    /// negative start revision is refused (so not for one), with an empty key read as
    /// `"\0"` and the range end as sent. A refusal is the watch's cancel reason, as etcd
    /// words it (see [`watch_cancel_reason`](super::watch_cancel_reason)).
    pub fn check_watch(&self, caller: &Caller, req: &crate::watch::WatchCreateRequest) -> Result<(), String> {
        if req.start_revision < 0 {
            return Ok(());
        }
        let key = if req.key.is_empty() { &[0][..] } else { &req.key[..] };
        self.check_range(caller, key, &req.range_end).map_err(|e| super::watch_cancel_reason(&e))
    }

    /// Fails unless `caller` is an administrator (or auth is disabled): the check of
    /// maintenance and member calls.
    pub fn check_admin(&self, caller: &Caller) -> Result<()> {
        self.checker(caller).admin()
    }

    /// etcd's `requireAuthInfo` (Status, alarm lists, lease revoke and time-to-live): while
    /// auth is enabled, fails when `caller` named no one or gave refused credentials; while
    /// it is disabled, passes.
    pub fn check_named(&self, caller: &Caller) -> Result<()> {
        if !self.is_enabled() {
            return Ok(());
        }
        match caller {
            Caller::Trusted => Ok(()),
            Caller::Refused(e) => Err(e.clone()),
            Caller::User(info) if info.user.is_empty() => Err(Error::UserEmpty),
            Caller::User(_) => Ok(()),
        }
    }

    /// Fails when `caller`'s credentials were refused (etcd reads the token of every request
    /// it proposes; while auth is disabled no token is refused).
    pub fn check_credentials(&self, caller: &Caller) -> Result<()> {
        refused(caller)
    }

    /// Fails when the auth revision moved past the one `caller` was checked at: a read
    /// answered meanwhile rests on permissions that may be gone (etcd checks after serving).
    pub fn check_unchanged(&self, caller: &Caller) -> Result<()> {
        match caller {
            Caller::User(info) if info.revision != 0 && info.revision != self.revision() => {
                Err(Error::AuthOldRevision)
            }
            _ => Ok(()),
        }
    }
}

/// The error of refused credentials, which every checked request fails with.
fn refused(caller: &Caller) -> Result<()> {
    match caller {
        Caller::Refused(e) => Err(e.clone()),
        _ => Ok(()),
    }
}

/// etcd's `IsAdminPermitted` (which does not check the revision).
fn check_admin(state: &State, caller: &Caller) -> Result<()> {
    match caller {
        Caller::Trusted => Ok(()),
        Caller::Refused(e) => Err(e.clone()),
        Caller::User(_) if !state.enabled => Ok(()),
        Caller::User(info) if info.user.is_empty() => Err(Error::UserEmpty),
        Caller::User(info) => match state.users.get(&info.user) {
            None => Err(Error::UserNotFound),
            Some(user) if user.has_role(ROOT_ROLE) => Ok(()),
            Some(_) => Err(Error::PermissionDenied),
        },
    }
}

/// The permission checks of one caller against one moment of the auth state, so that every
/// check of one request (each compare and op of a txn) sees the same permissions.
pub(crate) struct Checker<'a> {
    caller: &'a Caller,
    /// `None` for the trusted caller.
    state: Option<Arc<State>>,
}

impl Checker<'_> {
    /// etcd's `isOpPermitted`.
    fn permitted(&self, key: &[u8], range_end: &[u8], kind: PermissionType) -> Result<()> {
        let Some(state) = &self.state else { return Ok(()) };
        let info = match self.caller {
            Caller::Trusted => return Ok(()),
            Caller::Refused(e) => return Err(e.clone()),
            Caller::User(info) => info,
        };
        if !state.enabled {
            return Ok(());
        }
        if info.revision == 0 {
            return Err(Error::UserEmpty);
        }
        if info.revision < state.revision {
            return Err(Error::AuthOldRevision);
        }
        if !state.users.contains_key(&info.user) {
            return Err(Error::PermissionDenied);
        }
        if state.is_root(&info.user) {
            return Ok(());
        }
        match state.perms.get(&info.user) {
            Some(perms) if perms.allows(key, range_end, kind) => Ok(()),
            _ => Err(Error::PermissionDenied),
        }
    }

    /// May the caller read `key` (or `[key, range_end)`)?
    pub(crate) fn range(&self, key: &[u8], range_end: &[u8]) -> Result<()> {
        self.permitted(key, range_end, PermissionType::Read)
    }

    /// May the caller write `key` (or `[key, range_end)`)?
    pub(crate) fn write(&self, key: &[u8], range_end: &[u8]) -> Result<()> {
        self.permitted(key, range_end, PermissionType::Write)
    }

    /// Is the caller an administrator (or auth disabled)?
    pub(crate) fn admin(&self) -> Result<()> {
        match &self.state {
            None => Ok(()),
            Some(state) => check_admin(state, self.caller),
        }
    }

    /// True when nothing is checked: the trusted caller, or auth disabled with credentials
    /// that were not refused.
    pub(crate) fn is_open(&self) -> bool {
        match (&self.state, self.caller) {
            (None, _) => true,
            (Some(_), Caller::Refused(_)) => false,
            (Some(state), _) => !state.enabled,
        }
    }
}

/// The auth state as `mvcc`'s engine holds it.
fn load(mvcc: &MvccStore) -> Result<State> {
    let mut state = State {
        enabled: false,
        revision: 1,
        users: BTreeMap::new(),
        roles: BTreeMap::new(),
        perms: HashMap::new(),
    };
    let mut failed = None;
    mvcc.engine().scan(Keyspace::Auth, Bounds::all(), Direction::Forward, &mut |key, value| {
        let decoded = if key == record::ENABLED {
            state.enabled = value == [1];
            Ok(())
        } else if key == record::REVISION {
            match <[u8; 8]>::try_from(value) {
                Ok(bytes) => {
                    state.revision = u64::from_be_bytes(bytes);
                    Ok(())
                }
                Err(_) => Err("auth revision"),
            }
        } else if let Some(name) = key.strip_prefix(record::USER_PREFIX) {
            UserRecord::decode(value)
                .map(|user| {
                    state.users.insert(String::from_utf8_lossy(name).into_owned(), user);
                })
                .map_err(|_| "user")
        } else if let Some(name) = key.strip_prefix(record::ROLE_PREFIX) {
            RoleRecord::decode(value)
                .map(|role| {
                    state.roles.insert(String::from_utf8_lossy(name).into_owned(), role);
                })
                .map_err(|_| "role")
        } else {
            Ok(())
        };
        match decoded {
            Ok(()) => ControlFlow::Continue(()),
            Err(what) => {
                failed = Some(what);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(what) = failed {
        return Err(EngineError::new(
            EngineErrorKind::Corruption,
            format!("undecodable {what} record in the auth keyspace"),
        )
        .into());
    }
    state.rebuild_perms();
    Ok(state)
}
