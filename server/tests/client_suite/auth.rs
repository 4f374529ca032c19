//! Auth: users, roles, permissions and tokens, enforced alike in-process, by the server
//! and by etcd.

use etcdlite::client::{
    Client, Code, DeleteOptions, EventType, GetOptions, Permission, PutOptions, RoleRevokePermissionOptions,
    UserAddOptions,
};

use crate::harness::Target;
use crate::status;

const DENIED: (Code, &str) = (Code::PermissionDenied, "etcdserver: permission denied");

/// `root` (root role) and `alice` (role `app`: readwrite over the prefix `app/`, read over
/// the key `shared`), then auth enabled; answers root's and alice's clients.
async fn secure(t: &Target) -> (Client, Client) {
    let mut c = t.client();
    c.user_add("root", "rootpw", None).await.unwrap();
    c.user_grant_role("root", "root").await.unwrap();
    c.role_add("app").await.unwrap();
    c.role_grant_permission("app", Permission::read_write("app/").with_prefix()).await.unwrap();
    c.role_grant_permission("app", Permission::read("shared")).await.unwrap();
    c.user_add("alice", "alicepw", None).await.unwrap();
    c.user_grant_role("alice", "app").await.unwrap();
    c.put("shared", "s", None).await.unwrap();
    c.put("secret", "x", None).await.unwrap();
    c.auth_enable().await.unwrap();
    let root = t.client_as("root", "rootpw").await.expect("root connects");
    let alice = t.client_as("alice", "alicepw").await.expect("alice connects");
    (root, alice)
}

fn denied() -> (Code, String) {
    (DENIED.0, DENIED.1.to_owned())
}

pub async fn users_roles_and_permissions_are_enforced(t: Target) {
    let (mut root, mut alice) = secure(&t).await;
    // A client naming no user may do nothing.
    let mut nobody = t.client();
    assert_eq!(
        status(nobody.get("shared", None).await),
        (Code::InvalidArgument, "etcdserver: user name is empty".to_owned())
    );
    assert_eq!(
        status(nobody.auth_disable().await),
        (Code::InvalidArgument, "etcdserver: user name is empty".to_owned())
    );

    alice.put("app/a", "1", None).await.unwrap();
    assert_eq!(alice.get("app/a", None).await.unwrap().kvs()[0].value(), b"1");
    assert_eq!(alice.get("shared", None).await.unwrap().kvs()[0].value(), b"s");
    assert_eq!(alice.get("app/", Some(GetOptions::new().with_prefix())).await.unwrap().count(), 1);
    assert_eq!(status(alice.put("shared", "2", None).await), denied());
    assert_eq!(status(alice.get("secret", None).await), denied());
    assert_eq!(status(alice.get("a", Some(GetOptions::new().with_prefix())).await), denied());
    assert_eq!(status(alice.delete("app/", Some(DeleteOptions::new().with_from_key())).await), denied());
    // Administration is root's.
    assert_eq!(status(alice.user_list().await), denied());
    assert_eq!(status(alice.user_add("eve", "pw", None).await), denied());
    // Yet a user may read their own user and roles.
    assert_eq!(alice.user_get("alice").await.unwrap().roles(), ["app"]);
    assert_eq!(alice.role_get("app").await.unwrap().permissions().len(), 2);
    assert_eq!(root.user_list().await.unwrap().users(), ["alice", "root"]);
    // The root role was granted without being added: it is not listed.
    assert_eq!(root.role_list().await.unwrap().roles(), ["app"]);
    assert_eq!(root.get("secret", None).await.unwrap().kvs()[0].value(), b"x");

    // A permission taken away applies to alice's next call.
    root.role_revoke_permission("app", "app/", Some(RoleRevokePermissionOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(status(alice.put("app/a", "2", None).await), denied());
    root.auth_disable().await.unwrap();
    nobody.put("app/a", "3", None).await.unwrap();
}

pub async fn txns_leases_and_watches_are_checked(t: Target) {
    let (mut root, mut alice) = secure(&t).await;
    use etcdlite::client::{Compare, CompareOp, Txn, TxnOp};
    // A txn is checked whole: a forbidden op in the branch that would not run still fails it.
    let txn = Txn::new()
        .when([Compare::version("app/a", CompareOp::Equal, 0)])
        .and_then([TxnOp::put("app/a", "1", None)])
        .or_else([TxnOp::put("secret", "1", None)]);
    assert_eq!(status(alice.txn(txn).await), denied());
    let txn = Txn::new()
        .when([Compare::version("app/a", CompareOp::Equal, 0)])
        .and_then([TxnOp::put("app/a", "1", None)])
        .or_else([TxnOp::get("shared", None)]);
    assert!(alice.txn(txn).await.unwrap().succeeded());

    // Revoking a lease needs write on every key attached to it.
    let lease = root.lease_grant(600, None).await.unwrap().id();
    root.put("secret", "y", Some(PutOptions::new().with_lease(lease))).await.unwrap();
    assert_eq!(status(alice.lease_revoke(lease).await), denied());
    root.lease_revoke(lease).await.unwrap();

    // A watch of a key alice may not read is created and cancelled at once.
    let mut stream = alice.watch("secret", None).await.unwrap();
    let first = stream.message().await.unwrap().expect("a response");
    assert!(first.created() && first.canceled(), "{first:?}");
    // etcd puts the gRPC error's whole text there.
    assert_eq!(
        first.cancel_reason(),
        "rpc error: code = PermissionDenied desc = etcdserver: permission denied"
    );
    let mut stream = alice.watch("app/w", None).await.unwrap();
    assert!(stream.message().await.unwrap().expect("created").created());
    alice.put("app/w", "1", None).await.unwrap();
    let events = stream.message().await.unwrap().expect("an event");
    assert_eq!(events.events()[0].event_type(), EventType::Put);
    root.auth_disable().await.unwrap();
}

pub async fn credentials_are_checked(t: Target) {
    let mut c = t.client();
    c.user_add("root", "rootpw", None).await.unwrap();
    c.user_grant_role("root", "root").await.unwrap();
    c.user_add("certonly", "", Some(UserAddOptions::new().with_no_pwd())).await.unwrap();
    assert_eq!(
        status(c.auth_client().authenticate("root", "rootpw").await),
        (Code::FailedPrecondition, "etcdserver: authentication is not enabled".to_owned())
    );
    c.auth_enable().await.unwrap();
    let failed =
        (Code::InvalidArgument, "etcdserver: authentication failed, invalid user ID or password".to_owned());
    assert_eq!(status(t.client_as("root", "wrong").await), failed);
    assert_eq!(status(t.client_as("nobody", "pw").await), failed);
    let mut root = t.client_as("root", "rootpw").await.unwrap();
    assert!(!root.auth_client().authenticate("root", "rootpw").await.unwrap().token().is_empty());
    // Root and its role stay while auth is on.
    let invalid = (Code::InvalidArgument, "etcdserver: invalid auth management".to_owned());
    assert_eq!(status(root.user_delete("root").await), invalid);
    assert_eq!(status(root.role_delete("root").await), invalid);
    assert_eq!(status(root.user_revoke_role("root", "root").await), invalid);
    root.auth_disable().await.unwrap();
    c.user_delete("certonly").await.unwrap();
}
