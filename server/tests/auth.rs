//! Auth through the server: the `etcd-client` crate logging in, tokens in gRPC metadata and
//! in the gateway's `Authorization` header, JWT tokens, and bad tokens of every kind.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, Permission};
use etcdlite::Options;
use etcdlite_server::pb::etcdserverpb as pb;
use etcdlite_server::pb::etcdserverpb::kv_client::KvClient;
use etcdlite_server::TestServer;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("{what}: no answer within {WAIT:?}"))
}

/// A TestServer with auth on (root's password `rootpw`), bcrypt at its cheapest cost, and
/// `options` tuned further.
fn start(options: impl FnOnce(Options) -> Options) -> TestServer {
    TestServer::builder()
        .options(options(Options::memory().with_bcrypt_cost(4)))
        .auth("rootpw")
        .start()
        .expect("start a TestServer with auth")
}

async fn connect_as(server: &TestServer, user: &str, password: &str) -> Result<Client, etcd_client::Error> {
    let options = ConnectOptions::new().with_user(user, password);
    within("connect", Client::connect([server.endpoint()], Some(options))).await
}

/// `alice`, with the role `app` (readwrite over the prefix `app/`).
async fn add_alice(root: &mut Client) {
    root.user_add("alice", "alicepw", None).await.unwrap();
    root.role_add("app").await.unwrap();
    root.role_grant_permission("app", Permission::read_write("app/").with_prefix()).await.unwrap();
    root.user_grant_role("alice", "app").await.unwrap();
}

fn code_and_message<T>(result: Result<T, etcd_client::Error>) -> (Code, String) {
    match result {
        Err(etcd_client::Error::GRpcStatus(status)) => (status.code(), status.message().to_owned()),
        Err(other) => panic!("expected a gRPC status, got {other:?}"),
        Ok(_) => panic!("expected a gRPC status, got an answer"),
    }
}

/// A raw KV client sending `token` (if any) as clientv3 does, in the `token` metadata.
async fn put_with_token(server: &TestServer, token: Option<&str>, key: &str) -> Result<(), tonic::Status> {
    let mut kv = KvClient::connect(server.endpoint()).await.expect("connect");
    let mut request = tonic::Request::new(pb::PutRequest {
        key: key.as_bytes().to_vec(),
        value: b"v".to_vec(),
        ..Default::default()
    });
    if let Some(token) = token {
        request.metadata_mut().insert("token", token.parse().expect("an ASCII token"));
    }
    within("put", kv.put(request)).await.map(|_| ())
}

#[tokio::test]
async fn etcd_client_logs_in_and_is_held_to_its_permissions() {
    let server = start(|o| o);
    let mut root = connect_as(&server, "root", "rootpw").await.expect("root logs in");
    add_alice(&mut root).await;
    let mut alice = connect_as(&server, "alice", "alicepw").await.expect("alice logs in");
    alice.put("app/a", "1", None).await.unwrap();
    assert_eq!(
        code_and_message(alice.put("other", "1", None).await),
        (Code::PermissionDenied, "etcdserver: permission denied".into())
    );
    assert_eq!(
        code_and_message(alice.user_list().await),
        (Code::PermissionDenied, "etcdserver: permission denied".into())
    );
    assert_eq!(
        code_and_message(connect_as(&server, "alice", "wrong").await),
        (Code::InvalidArgument, "etcdserver: authentication failed, invalid user ID or password".into())
    );
    // A watch alice may not make is created and cancelled with etcd's reason.
    let mut stream = alice.watch("secret", None).await.unwrap();
    let first = within("watch", stream.message()).await.unwrap().expect("a response");
    assert!(first.canceled());
    assert_eq!(
        first.cancel_reason(),
        "rpc error: code = PermissionDenied desc = etcdserver: permission denied"
    );
    // Maintenance and membership changes are root's.
    // etcd answers Defragment's auth failure unmapped: code Unknown, the auth store's text.
    assert_eq!(code_and_message(alice.defragment().await), (Code::Unknown, "auth: permission denied".into()));
    assert_eq!(
        code_and_message(alice.compact(1, None).await),
        (Code::PermissionDenied, "etcdserver: permission denied".into())
    );
    assert_eq!(
        code_and_message(alice.member_add(["http://127.0.0.1:2390"], None).await).0,
        Code::PermissionDenied
    );
    alice.status().await.unwrap();
    root.defragment().await.unwrap();
    // The Lock service acts as its caller: alice may lock under her prefix only.
    let lock = alice.lock("app/lock", None).await.unwrap();
    alice.unlock(lock.key()).await.unwrap();
    assert_eq!(code_and_message(alice.lock("elsewhere", None).await).1, "etcdserver: permission denied");
}

#[tokio::test]
async fn tokens_missing_malformed_or_forged_are_refused() {
    let server = start(|o| o);
    assert_eq!(
        put_with_token(&server, None, "k").await.unwrap_err().message(),
        "etcdserver: user name is empty"
    );
    for bad in ["garbage", "abc.def", "abcdefghijklmnop.1", "", &"x".repeat(4096)] {
        let refused = put_with_token(&server, Some(bad), "k").await.unwrap_err();
        assert_eq!(
            (refused.code(), refused.message()),
            (Code::Unauthenticated, "etcdserver: invalid auth token")
        );
    }
    let mut root = connect_as(&server, "root", "rootpw").await.unwrap();
    let token =
        root.auth_client().authenticate("root".into(), "rootpw".into()).await.unwrap().token().to_owned();
    put_with_token(&server, Some(&token), "k").await.unwrap();
    // A token of a user whose password changed is forgotten.
    root.user_change_password("root", "newpw").await.unwrap();
    assert_eq!(put_with_token(&server, Some(&token), "k").await.unwrap_err().code(), Code::Unauthenticated);
    // With auth off, tokens are not read at all (etcd 3.5.33; 3.5.1 refused unknown ones).
    let mut root = connect_as(&server, "root", "newpw").await.unwrap();
    root.auth_disable().await.unwrap();
    put_with_token(&server, Some("garbage"), "k").await.unwrap();
    put_with_token(&server, None, "k").await.unwrap();
}

#[tokio::test]
async fn the_gateway_reads_the_authorization_header() {
    let server = start(|o| o);
    let http = reqwest::Client::new();
    let base = server.endpoint();
    let post = |path: &str, token: Option<&str>, body: &str| {
        let mut request = http.post(format!("{base}{path}")).body(body.to_owned());
        if let Some(token) = token {
            request = request.header("Authorization", token);
        }
        request.send()
    };
    let answer =
        within("authenticate", post("/v3/auth/authenticate", None, r#"{"name":"root","password":"rootpw"}"#))
            .await
            .unwrap();
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    let token = body["token"].as_str().expect("a token").to_owned();
    let put = r#"{"key":"YQ==","value":"MQ=="}"#;
    let refused = within("put", post("/v3/kv/put", None, put)).await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["message"], "etcdserver: user name is empty");
    let done = within("put", post("/v3/kv/put", Some(&token), put)).await.unwrap();
    assert_eq!(done.status(), 200);
    let status = within("status", post("/v3/auth/status", Some(&token), "{}")).await.unwrap();
    let body: serde_json::Value = status.json().await.unwrap();
    assert_eq!(body["enabled"], true);
    let users = within("users", post("/v3/auth/user/list", Some(&token), "{}")).await.unwrap();
    let body: serde_json::Value = users.json().await.unwrap();
    assert_eq!(body["users"], serde_json::json!(["root"]));
}

fn fixture(name: &str) -> String {
    format!("{}/../tests/data/jwt/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn jwt_tokens_carry_their_auth_revision() {
    let spec = format!(
        "jwt,pub-key={},priv-key={},sign-method=RS256,ttl=5m",
        fixture("rsa.pub"),
        fixture("rsa.key")
    );
    let server = start(|o| o.with_auth_token(spec));
    let mut root = connect_as(&server, "root", "rootpw").await.unwrap();
    let token =
        root.auth_client().authenticate("root".into(), "rootpw".into()).await.unwrap().token().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    put_with_token(&server, Some(&token), "k").await.unwrap();
    // An auth change makes a JWT issued before it stale (a simple token would follow).
    root.role_add("another").await.unwrap();
    let stale = put_with_token(&server, Some(&token), "k").await.unwrap_err();
    assert_eq!(
        (stale.code(), stale.message()),
        (Code::InvalidArgument, "etcdserver: revision of auth store is old")
    );
    // A token signed with another key, and one with `alg: none`, are refused.
    let header_none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
    let claims = token.split('.').nth(1).unwrap();
    for forged in [format!("{header_none}.{claims}."), format!("{header_none}.{claims}")] {
        assert_eq!(
            put_with_token(&server, Some(&forged), "k").await.unwrap_err().code(),
            Code::Unauthenticated
        );
    }
    let mut tampered = token.clone();
    tampered.push('A');
    assert_eq!(
        put_with_token(&server, Some(&tampered), "k").await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn bad_names_get_etcds_errors() {
    let server = start(|o| o);
    let mut root = connect_as(&server, "root", "rootpw").await.unwrap();
    assert_eq!(
        code_and_message(root.user_add("", "pw", None).await),
        (Code::InvalidArgument, "etcdserver: user name is empty".into())
    );
    assert_eq!(
        code_and_message(root.role_add("").await),
        (Code::InvalidArgument, "etcdserver: role name is empty".into())
    );
    // Huge names are names like any other (etcd sets no limit below the request size).
    let huge = "n".repeat(100 * 1024);
    root.role_add(huge.as_str()).await.unwrap();
    assert!(root.role_list().await.unwrap().roles().contains(&huge));
    root.role_delete(huge.as_str()).await.unwrap();
    assert_eq!(
        code_and_message(root.user_delete("root").await),
        (Code::InvalidArgument, "etcdserver: invalid auth management".into())
    );
    assert_eq!(
        code_and_message(root.role_delete("root").await),
        (Code::InvalidArgument, "etcdserver: invalid auth management".into())
    );
}
