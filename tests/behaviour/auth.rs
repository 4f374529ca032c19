//! Auth on every engine: users, roles and permissions persist with the data, the checks
//! follow etcd's rules, tokens expire on the store's clock.

use std::sync::Arc;
use std::time::Duration;

use etcdlite::auth::{AuthStatus, Caller, KeyPermission, PermissionType};
use etcdlite::{
    DeleteRangeRequest, Error, GetOptions, LeaseTimeToLiveOptions, ManualClock, PutOptions, PutRequest,
    RangeRequest, Store, Txn, TxnOp,
};

use crate::harness::Harness;

const ADMIN: Caller = Caller::Trusted;

/// A store with `root` (root role) and `alice` (role `app`: readwrite on `app/`, read on
/// `shared`), auth enabled; bcrypt at its cheapest cost.
fn secured(h: &Harness) -> Store {
    let store = h.open_with(|o| o.with_bcrypt_cost(4));
    set_up(&store);
    store
}

fn set_up(store: &Store) {
    let auth = store.auth();
    auth.user_add(&ADMIN, "root", "rootpw", false).unwrap();
    auth.user_grant_role(&ADMIN, "root", "root").unwrap();
    auth.role_add(&ADMIN, "app").unwrap();
    auth.role_grant_permission(&ADMIN, "app", KeyPermission::prefix(PermissionType::Readwrite, "app/"))
        .unwrap();
    auth.role_grant_permission(&ADMIN, "app", KeyPermission::key(PermissionType::Read, "shared")).unwrap();
    auth.user_add(&ADMIN, "alice", "alicepw", false).unwrap();
    auth.user_grant_role(&ADMIN, "alice", "app").unwrap();
    auth.auth_enable(&ADMIN).unwrap();
}

fn login(store: &Store, user: &str, password: &str) -> Caller {
    let token = store.auth().authenticate(user, password).unwrap();
    store.auth().caller_from_token(&token)
}

pub fn auth_state_survives_reopening(h: &Harness) {
    let store = secured(h);
    let before = store.auth().auth_status(&ADMIN).unwrap();
    let store = h.reopen(store);
    let auth = store.auth();
    assert_eq!(auth.auth_status(&ADMIN).unwrap(), before);
    assert!(before.enabled);
    assert_eq!(auth.user_list(&ADMIN).unwrap(), ["alice", "root"]);
    assert_eq!(auth.user_get(&ADMIN, "alice").unwrap(), ["app"]);
    assert_eq!(
        auth.role_get(&ADMIN, "app").unwrap(),
        [
            KeyPermission::prefix(PermissionType::Readwrite, "app/"),
            KeyPermission::key(PermissionType::Read, "shared")
        ]
    );
    // Passwords (their hashes) came back too, and the permissions work.
    let alice = login(&store, "alice", "alicepw");
    store.as_caller(&alice).put("app/x", "1").unwrap();
    assert_eq!(store.as_caller(&alice).put("other", "1").unwrap_err(), Error::PermissionDenied);
    // Tokens are not persisted, as in etcd.
    let token = store.auth().authenticate("alice", "alicepw").unwrap();
    let store = h.reopen(store);
    assert_eq!(store.auth().caller_from_token(&token), Caller::Refused(Error::InvalidAuthToken));
}

pub fn auth_state_survives_a_snapshot_restore(h: &Harness) {
    let store = secured(h);
    store.put("app/a", "1", None).unwrap();
    let mut bytes = Vec::new();
    store.snapshot(&mut bytes).unwrap();
    let target = h.fresh();
    let copy = Store::restore_snapshot(target.options().with_bcrypt_cost(4), &mut bytes.as_slice()).unwrap();
    assert_eq!(copy.auth().auth_status(&ADMIN).unwrap(), store.auth().auth_status(&ADMIN).unwrap());
    let alice = login(&copy, "alice", "alicepw");
    assert_eq!(copy.as_caller(&alice).get("app/a", None).unwrap().kvs[0].value, b"1");
    assert_eq!(copy.as_caller(&alice).get("zzz", None).unwrap_err(), Error::PermissionDenied);
}

pub fn auth_changes_follow_etcds_rules(h: &Harness) {
    let store = h.open_with(|o| o.with_bcrypt_cost(4));
    let auth = store.auth();
    assert_eq!(auth.auth_status(&ADMIN).unwrap(), AuthStatus { enabled: false, revision: 1 });
    assert_eq!(auth.auth_enable(&ADMIN).unwrap_err(), Error::RootUserNotExist);
    auth.user_add(&ADMIN, "root", "pw", false).unwrap(); // revision 2
    assert_eq!(auth.auth_enable(&ADMIN).unwrap_err(), Error::RootRoleNotExist);
    assert_eq!(auth.user_add(&ADMIN, "root", "pw", false).unwrap_err(), Error::UserAlreadyExist);
    assert_eq!(auth.user_add(&ADMIN, "", "pw", false).unwrap_err(), Error::UserEmpty);
    assert_eq!(auth.role_add(&ADMIN, "").unwrap_err(), Error::RoleEmpty);
    // The root role need not exist to be granted.
    auth.user_grant_role(&ADMIN, "root", "root").unwrap(); // 3
    assert_eq!(auth.user_grant_role(&ADMIN, "root", "nope").unwrap_err(), Error::RoleNotFound);
    assert_eq!(auth.user_grant_role(&ADMIN, "nobody", "root").unwrap_err(), Error::UserNotFound);
    // Granting a role twice changes nothing, not even the revision.
    auth.user_grant_role(&ADMIN, "root", "root").unwrap();
    assert_eq!(auth.revision(), 3);
    auth.role_add(&ADMIN, "r").unwrap(); // 4
    assert_eq!(auth.role_add(&ADMIN, "r").unwrap_err(), Error::RoleAlreadyExist);
    assert_eq!(
        auth.role_grant_permission(&ADMIN, "r", KeyPermission::range(PermissionType::Read, "b", "a"))
            .unwrap_err(),
        Error::InvalidAuthMgmt
    );
    assert_eq!(
        auth.role_grant_permission(&ADMIN, "r", KeyPermission::key(PermissionType::Read, "")).unwrap_err(),
        Error::InvalidAuthMgmt
    );
    auth.role_grant_permission(&ADMIN, "r", KeyPermission::key(PermissionType::Read, "k")).unwrap(); // 5
                                                                                                     // The same key and range again replaces the type.
    auth.role_grant_permission(&ADMIN, "r", KeyPermission::key(PermissionType::Write, "k")).unwrap(); // 6
    assert_eq!(auth.role_get(&ADMIN, "r").unwrap(), [KeyPermission::key(PermissionType::Write, "k")]);
    assert_eq!(
        auth.role_revoke_permission(&ADMIN, "r", b"k", b"z").unwrap_err(),
        Error::PermissionNotGranted
    );
    auth.role_revoke_permission(&ADMIN, "r", b"k", b"").unwrap(); // 7
    assert_eq!(auth.user_revoke_role(&ADMIN, "root", "r").unwrap_err(), Error::RoleNotGranted);
    auth.auth_enable(&ADMIN).unwrap(); // enabling takes no revision
    auth.auth_enable(&ADMIN).unwrap();
    assert_eq!(auth.auth_status(&ADMIN).unwrap(), AuthStatus { enabled: true, revision: 7 });
    // While enabled, root and its root role stay.
    assert_eq!(auth.user_delete(&ADMIN, "root").unwrap_err(), Error::InvalidAuthMgmt);
    assert_eq!(auth.role_delete(&ADMIN, "root").unwrap_err(), Error::InvalidAuthMgmt);
    assert_eq!(auth.user_revoke_role(&ADMIN, "root", "root").unwrap_err(), Error::InvalidAuthMgmt);
    // Deleting a role takes it from its users.
    auth.user_add(&ADMIN, "bob", "pw", false).unwrap();
    auth.user_grant_role(&ADMIN, "bob", "r").unwrap();
    auth.role_delete(&ADMIN, "r").unwrap();
    assert!(auth.user_get(&ADMIN, "bob").unwrap().is_empty());
    auth.auth_disable(&ADMIN).unwrap(); // a revision
    assert_eq!(auth.auth_status(&ADMIN).unwrap(), AuthStatus { enabled: false, revision: 11 });
    auth.user_delete(&ADMIN, "root").unwrap();
    assert_eq!(auth.user_delete(&ADMIN, "root").unwrap_err(), Error::UserNotFound);
}

pub fn authentication_checks_passwords_and_auth_state(h: &Harness) {
    let store = h.open_with(|o| o.with_bcrypt_cost(4));
    let auth = store.auth();
    auth.user_add(&ADMIN, "root", "pw", false).unwrap();
    auth.user_grant_role(&ADMIN, "root", "root").unwrap();
    auth.user_add(&ADMIN, "cert", "ignored", true).unwrap();
    assert_eq!(auth.authenticate("root", "pw").unwrap_err(), Error::AuthNotEnabled);
    auth.auth_enable(&ADMIN).unwrap();
    assert_eq!(auth.authenticate("root", "wrong").unwrap_err(), Error::AuthFailed);
    assert_eq!(auth.authenticate("nobody", "pw").unwrap_err(), Error::AuthFailed);
    assert_eq!(auth.authenticate("cert", "ignored").unwrap_err(), Error::NoPasswordUser);
    let token = auth.authenticate("root", "pw").unwrap();
    assert!(matches!(auth.caller_from_token(&token), Caller::User(info) if info.user == "root"));
    // A new password forgets the user's tokens.
    auth.user_change_password(&ADMIN, "root", "new").unwrap();
    assert_eq!(auth.caller_from_token(&token), Caller::Refused(Error::InvalidAuthToken));
    assert_eq!(auth.authenticate("root", "pw").unwrap_err(), Error::AuthFailed);
    let token = auth.authenticate("root", "new").unwrap();
    // Disabling auth forgets every token; while it is off, tokens are not read at all.
    auth.auth_disable(&ADMIN).unwrap();
    assert_eq!(auth.caller_from_token(&token), Caller::anonymous());
    assert_eq!(auth.caller_from_token("garbage"), Caller::anonymous());
    auth.auth_enable(&ADMIN).unwrap();
    assert_eq!(auth.caller_from_token(&token), Caller::Refused(Error::InvalidAuthToken));
    // A refused token fails every checked request.
    let refused = auth.caller_from_token(&token);
    assert_eq!(store.as_caller(&refused).put("a", "1").unwrap_err(), Error::InvalidAuthToken);
    // etcd 3.5 drops a "Bearer " prefix.
    let fresh = auth.authenticate("root", "new").unwrap();
    assert!(matches!(auth.caller_from_token(&format!("Bearer {fresh}")), Caller::User(_)));
    // bcrypt takes at most 72 bytes; a longer password is refused, not cut.
    assert_eq!(auth.user_add(&ADMIN, "long", &"x".repeat(73), false).unwrap_err(), Error::PasswordTooLong);
}

pub fn simple_tokens_expire_on_the_stores_clock(h: &Harness) {
    let clock = Arc::new(ManualClock::new());
    let store = h.open_with(|o| {
        o.with_bcrypt_cost(4).with_auth_token_ttl(Duration::from_secs(60)).clock(clock.clone())
    });
    set_up(&store);
    let token = store.auth().authenticate("alice", "alicepw").unwrap();
    clock.advance(Duration::from_secs(59));
    // Each use renews the token's TTL.
    assert!(matches!(store.auth().caller_from_token(&token), Caller::User(_)));
    clock.advance(Duration::from_secs(59));
    assert!(matches!(store.auth().caller_from_token(&token), Caller::User(_)));
    clock.advance(Duration::from_secs(60));
    assert_eq!(store.auth().caller_from_token(&token), Caller::Refused(Error::InvalidAuthToken));
}

pub fn kv_requests_are_checked_as_etcd_checks_them(h: &Harness) {
    let store = secured(h);
    let alice = login(&store, "alice", "alicepw");
    let root = login(&store, "root", "rootpw");
    let anonymous = Caller::anonymous();
    let as_alice = store.as_caller(&alice);
    store.put("shared", "s", None).unwrap();
    store.put("secret", "x", None).unwrap();

    assert_eq!(store.as_caller(&anonymous).get("app/a", None).unwrap_err(), Error::UserEmpty);
    as_alice.put("app/a", "1").unwrap();
    assert_eq!(as_alice.get("app/a", None).unwrap().kvs.len(), 1);
    assert_eq!(as_alice.get("shared", None).unwrap().kvs.len(), 1);
    assert_eq!(as_alice.put("shared", "2").unwrap_err(), Error::PermissionDenied);
    assert_eq!(as_alice.get("secret", None).unwrap_err(), Error::PermissionDenied);
    // A range must lie inside what the user may read.
    assert!(as_alice.get("app/", Some(GetOptions::new().with_prefix())).is_ok());
    assert_eq!(
        as_alice.get("a", Some(GetOptions::new().with_prefix())).unwrap_err(),
        Error::PermissionDenied
    );
    assert_eq!(
        as_alice.get("app/", Some(GetOptions::new().with_from_key())).unwrap_err(),
        Error::PermissionDenied
    );
    // prev_kv needs read on top of write; a delete needs write on its whole range.
    let put_prev =
        PutRequest { key: b"app/b".to_vec(), value: b"1".to_vec(), prev_kv: true, ..Default::default() };
    as_alice.put_request(put_prev).unwrap();
    let wide = DeleteRangeRequest { key: b"app/".to_vec(), range_end: b"b".to_vec(), prev_kv: false };
    assert_eq!(as_alice.delete_range(&wide).unwrap_err(), Error::PermissionDenied);
    // Root may do everything; the application itself is never checked.
    store.as_caller(&root).put("secret", "y").unwrap();
    store.put("secret", "z", None).unwrap();

    // A txn is checked whole, whichever branch runs, nested txns included.
    let allowed = Txn::new()
        .when([etcdlite::Compare::version("app/a", etcdlite::CompareOp::Greater, 0)])
        .and_then([TxnOp::put("app/c", "1", None)])
        .or_else([TxnOp::get("shared", None)]);
    assert!(as_alice.txn(allowed).unwrap().succeeded);
    let forbidden_compare =
        Txn::new().when([etcdlite::Compare::version("secret", etcdlite::CompareOp::Equal, 0)]);
    assert_eq!(as_alice.txn(forbidden_compare).unwrap_err(), Error::PermissionDenied);
    let forbidden_branch_not_taken = Txn::new()
        .when([etcdlite::Compare::version("app/a", etcdlite::CompareOp::Greater, 0)])
        .and_then([TxnOp::put("app/d", "1", None)])
        .or_else([TxnOp::put("secret", "1", None)]);
    let revision = store.current_revision();
    assert_eq!(as_alice.txn(forbidden_branch_not_taken).unwrap_err(), Error::PermissionDenied);
    assert_eq!(store.current_revision(), revision, "a refused txn writes nothing");
    let nested = Txn::new().and_then([TxnOp::txn(Txn::new().and_then([TxnOp::delete("secret", None)]))]);
    assert_eq!(as_alice.txn(nested).unwrap_err(), Error::PermissionDenied);
    // A read-only txn is checked too.
    assert_eq!(
        as_alice.txn(Txn::new().and_then([TxnOp::get("secret", None)])).unwrap_err(),
        Error::PermissionDenied
    );
    assert!(as_alice.range(&RangeRequest { key: b"app/a".to_vec(), ..Default::default() }).is_ok());
}

pub fn a_permission_change_applies_to_the_next_request(h: &Harness) {
    let store = secured(h);
    let alice = login(&store, "alice", "alicepw");
    store.as_caller(&alice).put("app/a", "1").unwrap();
    store.auth().role_revoke_permission(&ADMIN, "app", b"app/", b"app0").unwrap();
    // The caller resolved before the change stands at an older auth revision.
    assert_eq!(store.as_caller(&alice).put("app/a", "2").unwrap_err(), Error::AuthOldRevision);
    // A simple token names its user at the current revision: the new rules apply.
    let token = store.auth().authenticate("alice", "alicepw").unwrap();
    let alice = store.auth().caller_from_token(&token);
    assert_eq!(store.as_caller(&alice).put("app/a", "2").unwrap_err(), Error::PermissionDenied);
    // Deleting the user refuses their tokens; a deleted user named by an old caller is denied.
    store.auth().user_delete(&ADMIN, "alice").unwrap();
    assert_eq!(store.auth().caller_from_token(&token), Caller::Refused(Error::InvalidAuthToken));
}

pub fn leases_are_checked_as_etcd_checks_them(h: &Harness) {
    let store = secured(h);
    let alice = login(&store, "alice", "alicepw");
    let as_alice = store.as_caller(&alice);
    let mine = store.lease_grant(60, None).unwrap().id();
    let theirs = store.lease_grant(60, None).unwrap().id();
    store.put("app/a", "1", Some(PutOptions::new().with_lease(mine))).unwrap();
    store.put("secret", "1", Some(PutOptions::new().with_lease(theirs))).unwrap();
    // Attaching a key to a lease that holds a key the user cannot write is refused.
    let attach =
        PutRequest { key: b"app/b".to_vec(), value: b"1".to_vec(), lease: theirs, ..Default::default() };
    assert_eq!(as_alice.put_request(attach).unwrap_err(), Error::PermissionDenied);
    // Revoking needs write on every attached key.
    assert_eq!(as_alice.lease_revoke(theirs).unwrap_err(), Error::PermissionDenied);
    assert!(store.get("secret", None).unwrap().kvs.len() == 1);
    as_alice.lease_revoke(mine).unwrap();
    assert!(store.get("app/a", None).unwrap().kvs.is_empty());
    // Time-to-live with keys needs read on them; without keys, nothing.
    let keys = Some(LeaseTimeToLiveOptions::new().with_keys());
    let ttl = futures::executor::block_on(as_alice.lease_time_to_live_async(theirs, keys));
    assert_eq!(ttl.unwrap_err(), Error::PermissionDenied);
    assert!(futures::executor::block_on(as_alice.lease_time_to_live_async(theirs, None)).is_ok());
    assert_eq!(
        futures::executor::block_on(as_alice.lease_leases_async()).unwrap_err(),
        Error::PermissionDenied
    );
    let root = login(&store, "root", "rootpw");
    assert!(futures::executor::block_on(store.as_caller(&root).lease_leases_async()).is_ok());
}

pub fn administration_needs_the_root_role(h: &Harness) {
    let store = secured(h);
    let auth = store.auth();
    let alice = login(&store, "alice", "alicepw");
    assert_eq!(auth.user_add(&alice, "eve", "pw", false).unwrap_err(), Error::PermissionDenied);
    assert_eq!(auth.user_list(&alice).unwrap_err(), Error::PermissionDenied);
    assert_eq!(auth.auth_disable(&Caller::anonymous()).unwrap_err(), Error::UserEmpty);
    assert_eq!(auth.check_admin(&alice).unwrap_err(), Error::PermissionDenied);
    // A user may read their own user and the roles they hold.
    assert_eq!(auth.user_get(&alice, "alice").unwrap(), ["app"]);
    assert!(auth.role_get(&alice, "app").is_ok());
    assert_eq!(auth.user_get(&alice, "root").unwrap_err(), Error::PermissionDenied);
    let root = login(&store, "root", "rootpw");
    auth.user_add(&root, "eve", "pw", false).unwrap();
    auth.auth_disable(&root).unwrap();
    // With auth off, anyone may administer.
    auth.user_delete(&Caller::anonymous(), "eve").unwrap();
}
