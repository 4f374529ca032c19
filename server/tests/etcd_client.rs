//! Interop with the `etcd-client` crate (a client no one here wrote): each test starts
//! the server in-process on a loopback port and drives it over gRPC, checking what etcd
//! itself answers (values, revisions, versions, and errors by gRPC code and exact message).
//!
//! Lease expiry follows a [`ManualClock`], so no test sleeps for time to pass; every wait
//! on the network is bounded by [`WAIT`].

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, Error as ClientError, EventType, GetOptions,
    KeyValue, LeaseGrantOptions, LeaseTimeToLiveOptions, LockOptions, MemberAddOptions, ProclaimOptions,
    PutOptions, ResignOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse, WatchOptions, WatchResponse,
    WatchStream,
};
use etcdlite::ManualClock;
use etcdlite_server::TestServer;
use tonic::Code;

/// The longest any single network step may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";
const FUTURE_REV: &str = "etcdserver: mvcc: required revision is a future revision";
const LEASE_NOT_FOUND: &str = "etcdserver: requested lease not found";

/// A [`TestServer`] over an in-memory store whose leases follow a [`ManualClock`].
fn start() -> TestServer {
    TestServer::builder().manual_clock().start().expect("start a TestServer")
}

/// The manual clock `server`'s leases follow.
fn clock(server: &TestServer) -> &ManualClock {
    server.clock().expect("started with a manual clock")
}

/// An etcd-client client of `server`.
async fn connect(server: &TestServer) -> Client {
    let options = ConnectOptions::new().with_connect_timeout(WAIT);
    within(Client::connect([server.endpoint()], Some(options))).await.expect("connect")
}

/// Drops `server`, off the test's runtime since the drop waits for the server's thread,
/// and returns the drop to await once the test has checked what its clients saw.
fn stop(server: TestServer) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || drop(server))
}

/// `fut`, or a panic if it takes longer than [`WAIT`].
async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.expect("no answer within the deadline")
}

/// The gRPC status of a failed call.
fn status_of<T: Debug>(result: Result<T, ClientError>) -> tonic::Status {
    match result {
        Err(ClientError::GRpcStatus(status)) => status,
        other => panic!("expected a gRPC error status, got {other:?}"),
    }
}

/// Asserts that `result` failed with gRPC `code` and exactly `message`.
#[track_caller]
fn assert_grpc_error<T: Debug>(result: Result<T, ClientError>, code: Code, message: &str) {
    let status = status_of(result);
    assert_eq!((status.code(), status.message()), (code, message), "full status: {status:?}");
}

fn key_strs(kvs: &[KeyValue]) -> Vec<&str> {
    kvs.iter().map(|kv| kv.key_str().expect("utf-8 key")).collect()
}

fn rev(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.expect("a response header").revision()
}

/// The next response on a watch stream (bounded wait; the stream must not end).
async fn next_response(stream: &mut WatchStream) -> WatchResponse {
    within(stream.message()).await.expect("watch stream error").expect("watch stream ended")
}

/// Reads the created response of the watch just requested and returns its id.
async fn expect_created(stream: &mut WatchStream) -> i64 {
    let resp = next_response(stream).await;
    assert!(resp.created(), "expected a created response, got {resp:?}");
    assert!(!resp.canceled(), "watch canceled at creation: {resp:?}");
    resp.watch_id()
}

/// Reads responses until `n` events have arrived; returns (watch id, event type, key, value,
/// mod revision, prev value) for each.
async fn events(
    stream: &mut WatchStream,
    n: usize,
) -> Vec<(i64, EventType, String, String, i64, Option<String>)> {
    let mut out = Vec::new();
    while out.len() < n {
        let resp = next_response(stream).await;
        assert!(!resp.canceled(), "watch canceled while waiting for events: {resp:?}");
        for event in resp.events() {
            let kv = event.kv().expect("event kv");
            out.push((
                resp.watch_id(),
                event.event_type(),
                kv.key_str().unwrap().to_owned(),
                kv.value_str().unwrap().to_owned(),
                kv.mod_revision(),
                event.prev_kv().map(|p| p.value_str().unwrap().to_owned()),
            ));
        }
    }
    assert_eq!(out.len(), n, "more events than expected: {out:?}");
    out
}

/// What a first-time user does: put then get, a compare-and-swap, a key on a 5 s lease that
/// is gone once the lease expires, and a watch from the next revision seeing a later put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenario_users_try_first() {
    let server = start();
    let mut client = connect(&server).await;

    // Put, then get.
    let put = client.put("greeting", "hello", None).await.unwrap();
    let get = client.get("greeting", None).await.unwrap();
    assert_eq!(get.kvs().len(), 1);
    assert_eq!(get.kvs()[0].value_str().unwrap(), "hello");
    assert_eq!(get.kvs()[0].mod_revision(), rev(put.header()));

    // Compare-and-swap: only if the value is still "hello".
    let cas = Txn::new()
        .when([Compare::value("greeting", CompareOp::Equal, "hello")])
        .and_then([TxnOp::put("greeting", "world", None)])
        .or_else([TxnOp::get("greeting", None)]);
    assert!(client.txn(cas.clone()).await.unwrap().succeeded());
    assert!(!client.txn(cas).await.unwrap().succeeded(), "the second CAS must fail");
    assert_eq!(client.get("greeting", None).await.unwrap().kvs()[0].value_str().unwrap(), "world");

    // A key on a 5 s lease disappears when the lease expires.
    let lease = client.lease_grant(5, None).await.unwrap();
    assert_eq!(lease.ttl(), 5);
    client.put("session", "alive", Some(PutOptions::new().with_lease(lease.id()))).await.unwrap();
    clock(&server).advance(Duration::from_secs(4));
    assert_eq!(client.get("session", None).await.unwrap().count(), 1, "expired a second early");
    clock(&server).advance(Duration::from_secs(1));
    assert_eq!(client.get("session", None).await.unwrap().count(), 0, "key outlived its lease");

    // A watch from revision+1 sees the put made after it.
    let now = rev(client.get("greeting", None).await.unwrap().header());
    let mut watch =
        client.watch("greeting", Some(WatchOptions::new().with_start_revision(now + 1))).await.unwrap();
    let id = expect_created(&mut watch).await;
    client.put("greeting", "again", None).await.unwrap();
    let seen = events(&mut watch, 1).await;
    assert_eq!(seen, vec![(id, EventType::Put, "greeting".into(), "again".into(), now + 1, None)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_prefix_limit_and_delete_with_prev_kv() {
    let server = start();
    let mut client = connect(&server).await;

    // prev_kv: absent for a new key, the old KV for an existing one.
    let first = client.put("foo/1", "a", Some(PutOptions::new().with_prev_key())).await.unwrap();
    assert!(first.prev_key().is_none());
    let second = client.put("foo/1", "b", Some(PutOptions::new().with_prev_key())).await.unwrap();
    let prev = second.prev_key().expect("prev_kv of an existing key");
    assert_eq!((prev.key_str().unwrap(), prev.value_str().unwrap(), prev.version()), ("foo/1", "a", 1));
    for (k, v) in [("foo/3", "c"), ("foo/2", "d"), ("fop", "x"), ("fo", "y"), ("foo", "z")] {
        client.put(k, v, None).await.unwrap();
    }

    // Prefix, in key order; count ignores the limit.
    let all = client.get("foo/", Some(GetOptions::new().with_prefix())).await.unwrap();
    assert_eq!(key_strs(all.kvs()), ["foo/1", "foo/2", "foo/3"]);
    assert_eq!((all.count(), all.more()), (3, false));
    let limited = client.get("foo/", Some(GetOptions::new().with_prefix().with_limit(2))).await.unwrap();
    assert_eq!(key_strs(limited.kvs()), ["foo/1", "foo/2"]);
    assert_eq!((limited.count(), limited.more()), (3, true));
    let exact = client.get("foo/", Some(GetOptions::new().with_prefix().with_limit(3))).await.unwrap();
    assert_eq!((exact.kvs().len(), exact.more()), (3, false));

    // Sorting, keys only, count only, an explicit range.
    let desc = client
        .get("foo/", Some(GetOptions::new().with_prefix().with_sort(SortTarget::Key, SortOrder::Descend)))
        .await
        .unwrap();
    assert_eq!(key_strs(desc.kvs()), ["foo/3", "foo/2", "foo/1"]);
    let keys = client.get("foo/", Some(GetOptions::new().with_prefix().with_keys_only())).await.unwrap();
    assert!(keys.kvs().iter().all(|kv| kv.value().is_empty()) && keys.kvs().len() == 3);
    let counted = client.get("foo/", Some(GetOptions::new().with_prefix().with_count_only())).await.unwrap();
    assert_eq!((counted.kvs().len(), counted.count()), (0, 3));
    let ranged = client.get("fo", Some(GetOptions::new().with_range("foo/2"))).await.unwrap();
    assert_eq!(key_strs(ranged.kvs()), ["fo", "foo", "foo/1"]);
    let from = client.get("foo/3", Some(GetOptions::new().with_from_key())).await.unwrap();
    assert_eq!(key_strs(from.kvs()), ["foo/3", "fop"]);

    // Delete the prefix with prev_kv: the deleted KVs in key order, one new revision.
    let before = rev(all.header());
    let deleted =
        client.delete("foo/", Some(DeleteOptions::new().with_prefix().with_prev_key())).await.unwrap();
    assert_eq!(deleted.deleted(), 3);
    assert_eq!(key_strs(deleted.prev_kvs()), ["foo/1", "foo/2", "foo/3"]);
    let values: Vec<_> = deleted.prev_kvs().iter().map(|kv| kv.value_str().unwrap()).collect();
    assert_eq!(values, ["b", "d", "c"]);
    assert_eq!(rev(deleted.header()), before + 1);
    assert_eq!(client.get("foo/", Some(GetOptions::new().with_prefix())).await.unwrap().count(), 0);
    assert_eq!(client.get("foo", None).await.unwrap().count(), 1, "a prefix delete took a key outside it");

    // Empty keys are refused.
    assert_grpc_error(client.get("", None).await, Code::InvalidArgument, "etcdserver: key is not provided");
    assert_grpc_error(
        client.put("", "v", None).await,
        Code::InvalidArgument,
        "etcdserver: key is not provided",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_and_versions() {
    let server = start();
    let mut client = connect(&server).await;

    let empty = client.get("a", None).await.unwrap();
    assert_eq!((rev(empty.header()), empty.count()), (1, 0), "an empty store is at revision 1");

    assert_eq!(rev(client.put("a", "1", None).await.unwrap().header()), 2);
    assert_eq!(rev(client.put("a", "2", None).await.unwrap().header()), 3);
    assert_eq!(rev(client.put("b", "1", None).await.unwrap().header()), 4);
    let a = client.get("a", None).await.unwrap();
    let kv = &a.kvs()[0];
    assert_eq!((kv.create_revision(), kv.mod_revision(), kv.version(), kv.lease()), (2, 3, 2, 0));
    let header = a.header().unwrap();
    assert_eq!((header.revision(), header.raft_term()), (4, 2));
    assert_ne!(header.member_id(), 0);
    assert_ne!(header.cluster_id(), 0);

    // A past revision reads the old value; the header still carries the current revision.
    let old = client.get("a", Some(GetOptions::new().with_revision(2))).await.unwrap();
    assert_eq!(old.kvs()[0].value_str().unwrap(), "1");
    assert_eq!((old.kvs()[0].version(), rev(old.header())), (1, 4));
    assert_eq!(client.get("b", Some(GetOptions::new().with_revision(3))).await.unwrap().count(), 0);

    // Delete, then a new generation: version 1, created at the new revision.
    assert_eq!(rev(client.delete("a", None).await.unwrap().header()), 5);
    assert_eq!(rev(client.put("a", "3", None).await.unwrap().header()), 6);
    let a = client.get("a", None).await.unwrap();
    let kv = &a.kvs()[0];
    assert_eq!((kv.create_revision(), kv.mod_revision(), kv.version()), (6, 6, 1));
    assert_eq!(client.get("a", Some(GetOptions::new().with_revision(5))).await.unwrap().count(), 0);

    // Writes that change nothing keep the revision.
    let nothing = client.delete("missing", None).await.unwrap();
    assert_eq!((nothing.deleted(), rev(nothing.header())), (0, 6));
    let read_only = client.txn(Txn::new().and_then([TxnOp::get("a", None)])).await.unwrap();
    assert_eq!(rev(read_only.header()), 6);
    let lease = client.lease_grant(60, None).await.unwrap();
    assert_eq!(rev(lease.header()), 6, "a lease grant bumped the revision");

    // A future revision is an error.
    assert_grpc_error(
        client.get("a", Some(GetOptions::new().with_revision(7))).await,
        Code::OutOfRange,
        FUTURE_REV,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_compare_and_swap_takes_either_branch() {
    let server = start();
    let mut client = connect(&server).await;
    let r = rev(client.put("k", "v1", None).await.unwrap().header());

    let cas = |expect: &str, mod_rev: i64, new: &str| {
        Txn::new()
            .when([
                Compare::value("k", CompareOp::Equal, expect),
                Compare::mod_revision("k", CompareOp::Equal, mod_rev),
            ])
            .and_then([TxnOp::put("k", new, Some(PutOptions::new().with_prev_key())), TxnOp::get("k", None)])
            .or_else([TxnOp::get("k", None)])
    };

    // Success branch: one new revision; the get inside sees the txn's own put.
    let ok = client.txn(cas("v1", r, "v2")).await.unwrap();
    assert!(ok.succeeded());
    assert_eq!(rev(ok.header()), r + 1);
    let responses = ok.op_responses();
    assert_eq!(responses.len(), 2);
    match &responses[0] {
        TxnOpResponse::Put(put) => {
            let prev = put.prev_key().expect("prev_kv inside the txn");
            assert_eq!((prev.value_str().unwrap(), prev.mod_revision()), ("v1", r));
            // Nested response headers carry only the revision (etcd's txn.go).
            let h = put.header().expect("nested header");
            assert_eq!((h.revision(), h.cluster_id(), h.member_id(), h.raft_term()), (r + 1, 0, 0, 0));
        }
        other => panic!("expected a put response, got {other:?}"),
    }
    match &responses[1] {
        TxnOpResponse::Get(get) => {
            let kv = &get.kvs()[0];
            assert_eq!((kv.value_str().unwrap(), kv.mod_revision(), kv.version()), ("v2", r + 1, 2));
        }
        other => panic!("expected a range response, got {other:?}"),
    }

    // Failure branch: the same CAS again, nothing written, the revision unchanged.
    let failed = client.txn(cas("v1", r, "v3")).await.unwrap();
    assert!(!failed.succeeded());
    assert_eq!(rev(failed.header()), r + 1);
    match failed.op_responses().as_slice() {
        [TxnOpResponse::Get(get)] => assert_eq!(get.kvs()[0].value_str().unwrap(), "v2"),
        other => panic!("expected one range response, got {other:?}"),
    }

    // Create-if-absent: CREATE == 0.
    let create = || {
        Txn::new()
            .when([Compare::create_revision("new", CompareOp::Equal, 0)])
            .and_then([TxnOp::put("new", "first", None)])
            .or_else([TxnOp::get("new", None)])
    };
    assert!(client.txn(create()).await.unwrap().succeeded());
    let again = client.txn(create()).await.unwrap();
    assert!(!again.succeeded());
    assert_eq!(rev(again.header()), r + 2);

    // A VALUE compare on a missing key is false even with NOT_EQUAL.
    let missing = Txn::new().when([Compare::value("absent", CompareOp::NotEqual, "x")]);
    assert!(!client.txn(missing).await.unwrap().succeeded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_with_duplicate_keys_is_refused() {
    const DUPLICATE: &str = "etcdserver: duplicate key given in txn request";
    let server = start();
    let mut client = connect(&server).await;

    let two_puts = Txn::new().and_then([TxnOp::put("k", "a", None), TxnOp::put("k", "b", None)]);
    assert_grpc_error(client.txn(two_puts).await, Code::InvalidArgument, DUPLICATE);
    let put_in_deleted_range = Txn::new().and_then([
        TxnOp::put("d/x", "a", None),
        TxnOp::delete("d/", Some(DeleteOptions::new().with_prefix())),
    ]);
    assert_grpc_error(client.txn(put_in_deleted_range).await, Code::InvalidArgument, DUPLICATE);
    // Checked before the compares: the failure branch is refused even when success is taken.
    let in_failure = Txn::new().or_else([TxnOp::put("k", "a", None), TxnOp::put("k", "b", None)]);
    assert_grpc_error(client.txn(in_failure).await, Code::InvalidArgument, DUPLICATE);
    assert_eq!(client.get("k", None).await.unwrap().count(), 0, "a refused txn wrote something");

    // Allowed: the same key in the success and the failure branch.
    let both = Txn::new().and_then([TxnOp::put("k", "a", None)]).or_else([TxnOp::put("k", "b", None)]);
    assert!(client.txn(both).await.unwrap().succeeded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_grant_keep_alive_time_to_live_and_revoke() {
    let server = start();
    let mut client = connect(&server).await;

    let lease = client.lease_grant(10, None).await.unwrap();
    let id = lease.id();
    assert!(id > 0, "server-chosen lease ids are positive");
    assert_eq!((lease.ttl(), lease.error()), (10, ""));
    let r = rev(client.put("k1", "v", Some(PutOptions::new().with_lease(id))).await.unwrap().header());
    client.put("k2", "v", Some(PutOptions::new().with_lease(id))).await.unwrap();
    assert_eq!(client.get("k1", None).await.unwrap().kvs()[0].lease(), id);

    let ttl = client.lease_time_to_live(id, Some(LeaseTimeToLiveOptions::new().with_keys())).await.unwrap();
    assert_eq!((ttl.id(), ttl.ttl(), ttl.granted_ttl()), (id, 10, 10));
    let mut keys = ttl.keys().to_vec();
    keys.sort();
    assert_eq!(keys, [b"k1".to_vec(), b"k2".to_vec()]);
    let no_keys = client.lease_time_to_live(id, None).await.unwrap();
    assert!(no_keys.keys().is_empty(), "keys listed without being asked for");

    // Keep-alive stream: each request renews to the full TTL.
    clock(&server).advance(Duration::from_secs(4));
    assert_eq!(client.lease_time_to_live(id, None).await.unwrap().ttl(), 6);
    let (mut keeper, mut responses) = within(client.lease_keep_alive(id)).await.unwrap();
    assert_eq!(keeper.id(), id);
    assert_eq!(client.lease_time_to_live(id, None).await.unwrap().ttl(), 10, "the first keep-alive");
    clock(&server).advance(Duration::from_secs(3));
    keeper.keep_alive().await.unwrap();
    let renewed = within(responses.message()).await.unwrap().expect("a keep-alive response");
    assert_eq!((renewed.id(), renewed.ttl()), (id, 10));
    assert_eq!(client.lease_time_to_live(id, None).await.unwrap().ttl(), 10);

    // The lease list.
    let other = client.lease_grant(30, Some(LeaseGrantOptions::new().with_id(0x1234))).await.unwrap();
    assert_eq!(other.id(), 0x1234);
    let mut ids: Vec<i64> = client.leases().await.unwrap().leases().iter().map(|l| l.id()).collect();
    ids.sort();
    let mut expected = vec![id, 0x1234];
    expected.sort();
    assert_eq!(ids, expected);

    // Revoke: both keys go in one revision; the lease is then unknown.
    let revoked = client.lease_revoke(id).await.unwrap();
    assert_eq!(rev(revoked.header()), r + 2);
    assert_eq!(client.get("k", Some(GetOptions::new().with_prefix())).await.unwrap().count(), 0);
    let gone = client.lease_time_to_live(id, None).await.unwrap();
    assert_eq!((gone.ttl(), gone.granted_ttl()), (-1, 0), "TimeToLive of a revoked lease");
    // Revoking a lease with no keys does not bump the revision.
    assert_eq!(rev(client.lease_revoke(0x1234).await.unwrap().header()), r + 2);

    // The keep-alive stream answers TTL 0 for the lease now gone, and stays open.
    keeper.keep_alive().await.unwrap();
    let dead = within(responses.message()).await.unwrap().expect("a keep-alive response");
    assert_eq!((dead.id(), dead.ttl()), (id, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_expiry_deletes_the_keys_and_tells_watchers() {
    let server = start();
    let mut client = connect(&server).await;

    // TTLs below the minimum are raised to 2 s.
    assert_eq!(client.lease_grant(1, None).await.unwrap().ttl(), 2);

    let id = client.lease_grant(5, None).await.unwrap().id();
    client.put("session/b", "2", Some(PutOptions::new().with_lease(id))).await.unwrap();
    let r = rev(client.put("session/a", "1", Some(PutOptions::new().with_lease(id))).await.unwrap().header());
    let mut watch = client
        .watch("session/", Some(WatchOptions::new().with_prefix().with_start_revision(r + 1).with_prev_key()))
        .await
        .unwrap();
    let wid = expect_created(&mut watch).await;

    clock(&server).advance(Duration::from_millis(4999));
    assert_eq!(client.get("session/", Some(GetOptions::new().with_prefix())).await.unwrap().count(), 2);
    clock(&server).advance(Duration::from_millis(1));
    let after = client.get("session/", Some(GetOptions::new().with_prefix())).await.unwrap();
    assert_eq!(after.count(), 0, "keys outlived their lease");
    assert_eq!(rev(after.header()), r + 1, "expiry deletes every key in one revision");
    let ttl = client.lease_time_to_live(id, None).await.unwrap();
    assert_eq!((ttl.ttl(), ttl.granted_ttl()), (-1, 0));

    let seen = events(&mut watch, 2).await;
    assert_eq!(
        seen,
        vec![
            (wid, EventType::Delete, "session/a".into(), String::new(), r + 1, Some("1".into())),
            (wid, EventType::Delete, "session/b".into(), String::new(), r + 1, Some("2".into())),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_errors() {
    let server = start();
    let mut client = connect(&server).await;

    assert_grpc_error(client.lease_revoke(0x7777).await, Code::NotFound, LEASE_NOT_FOUND);
    assert_grpc_error(client.lease_revoke(0).await, Code::NotFound, LEASE_NOT_FOUND);
    let attach = client.put("k", "v", Some(PutOptions::new().with_lease(0x7777))).await;
    assert_grpc_error(attach, Code::NotFound, LEASE_NOT_FOUND);
    assert_eq!(client.get("k", None).await.unwrap().count(), 0);

    // TimeToLive of an unknown lease is no error.
    let unknown = client.lease_time_to_live(0x7777, None).await.unwrap();
    assert_eq!((unknown.id(), unknown.ttl(), unknown.granted_ttl()), (0x7777, -1, 0));

    // KeepAlive of an unknown lease answers TTL 0 on the stream, which etcd-client reports.
    match within(client.lease_keep_alive(0x7777)).await {
        Err(ClientError::LeaseKeepAliveError(message)) => assert_eq!(message, "lease not found"),
        other => panic!("expected etcd-client's lease-not-found, got {other:?}"),
    }

    client.lease_grant(10, Some(LeaseGrantOptions::new().with_id(42))).await.unwrap();
    let again = client.lease_grant(10, Some(LeaseGrantOptions::new().with_id(42))).await;
    assert_grpc_error(again, Code::FailedPrecondition, "etcdserver: lease already exists");
    let huge = client.lease_grant(9_000_000_001, None).await;
    assert_grpc_error(huge, Code::OutOfRange, "etcdserver: too large lease TTL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_past_revision_replays_history_then_continues() {
    let server = start();
    let mut client = connect(&server).await;
    client.put("w/a", "1", None).await.unwrap(); // 2
    client.put("other", "x", None).await.unwrap(); // 3
    client.put("w/b", "2", None).await.unwrap(); // 4
    client.put("w/a", "3", None).await.unwrap(); // 5
    client.delete("w/b", None).await.unwrap(); // 6

    let mut watch =
        client.watch("w/", Some(WatchOptions::new().with_prefix().with_start_revision(3))).await.unwrap();
    let created = next_response(&mut watch).await;
    assert!(created.created() && !created.canceled());
    assert_eq!(created.watch_id(), 0, "the first watch on a stream gets id 0");
    let history = events(&mut watch, 3).await;
    let brief: Vec<_> = history.iter().map(|(_, t, k, v, r, _)| (*t, k.as_str(), v.as_str(), *r)).collect();
    assert_eq!(
        brief,
        [(EventType::Put, "w/b", "2", 4), (EventType::Put, "w/a", "3", 5), (EventType::Delete, "w/b", "", 6)]
    );

    // Then live, with no gap.
    client.put("w/c", "4", None).await.unwrap();
    let live = events(&mut watch, 1).await;
    assert_eq!((live[0].2.as_str(), live[0].4), ("w/c", 7));

    // A second watch on the same stream gets the next id.
    watch.watch("other", Some(WatchOptions::new().with_start_revision(1))).await.unwrap();
    assert_eq!(expect_created(&mut watch).await, 1);
    let replay = events(&mut watch, 1).await;
    assert_eq!((replay[0].0, replay[0].2.as_str(), replay[0].4), (1, "other", 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_the_next_revision_sees_a_put_and_a_delete_with_prev_kv() {
    let server = start();
    let mut client = connect(&server).await;
    let r = rev(client.put("key", "before", None).await.unwrap().header());

    let options = WatchOptions::new().with_start_revision(r + 1).with_prev_key();
    let mut watch = client.watch("key", Some(options)).await.unwrap();
    let created = next_response(&mut watch).await;
    assert!(created.created());
    assert_eq!(rev(created.header()), r, "created response header is the current revision");
    let id = created.watch_id();

    client.put("key", "after", None).await.unwrap();
    client.delete("key", None).await.unwrap();
    client.put("key", "reborn", None).await.unwrap();

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let resp = next_response(&mut watch).await;
        assert_eq!(resp.watch_id(), id);
        for event in resp.events() {
            let kv = event.kv().unwrap();
            let prev = event.prev_kv().map(|p| (p.value_str().unwrap().to_owned(), p.mod_revision()));
            seen.push((
                event.event_type(),
                kv.value_str().unwrap().to_owned(),
                kv.create_revision(),
                kv.mod_revision(),
                kv.version(),
                prev,
            ));
            // A live watcher gets each revision in its own response, headed with it.
            assert_eq!(rev(resp.header()), kv.mod_revision());
        }
    }
    assert_eq!(
        seen,
        vec![
            (EventType::Put, "after".into(), r, r + 1, 2, Some(("before".into(), r))),
            // A delete's kv is the key and the delete revision only.
            (EventType::Delete, String::new(), 0, r + 2, 0, Some(("after".into(), r + 1))),
            // A create has no prev_kv.
            (EventType::Put, "reborn".into(), r + 3, r + 3, 1, None),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_cancel_stops_the_events_of_that_watch() {
    let server = start();
    let mut client = connect(&server).await;

    let mut watch = client.watch("a", None).await.unwrap();
    let a = expect_created(&mut watch).await;
    client.put("a", "1", None).await.unwrap();
    assert_eq!(events(&mut watch, 1).await[0].0, a);

    watch.cancel(a).await.unwrap();
    let canceled = next_response(&mut watch).await;
    assert!(canceled.canceled() && !canceled.created(), "expected the cancel reply, got {canceled:?}");
    assert_eq!(canceled.watch_id(), a);
    assert_eq!(canceled.cancel_reason(), "");
    assert_eq!(rev(canceled.header()), 2);

    // Cancelling an unknown id is ignored (no reply, no error).
    watch.cancel(99).await.unwrap();

    // Events for "a" no longer come: the next event on the stream is the new watch's.
    watch.watch("b", None).await.unwrap();
    let b = expect_created(&mut watch).await;
    assert_ne!(a, b);
    client.put("a", "2", None).await.unwrap();
    client.put("b", "1", None).await.unwrap();
    let next = events(&mut watch, 1).await;
    assert_eq!((next[0].0, next[0].2.as_str(), next[0].4), (b, "b", 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_compacted_revision_is_canceled_with_the_compact_revision() {
    let server = start();
    let mut client = connect(&server).await;
    for i in 0..5 {
        client.put("k", format!("{i}"), None).await.unwrap(); // revisions 2..=6
    }
    client.compact(4, None).await.unwrap();

    let mut watch = client.watch("k", Some(WatchOptions::new().with_start_revision(3))).await.unwrap();
    let created = next_response(&mut watch).await;
    assert!(created.created() && !created.canceled(), "first the created response: {created:?}");
    let canceled = next_response(&mut watch).await;
    assert!(canceled.canceled(), "then the compaction cancel: {canceled:?}");
    assert_eq!(canceled.watch_id(), created.watch_id());
    assert_eq!(canceled.compact_revision(), 4);
    assert!(canceled.events().is_empty());
    assert_eq!(canceled.cancel_reason(), "");
    assert_eq!(rev(canceled.header()), 0, "etcd sends header.revision 0 on a compaction cancel");

    // At exactly the compact revision the watch works.
    watch.watch("k", Some(WatchOptions::new().with_start_revision(4))).await.unwrap();
    expect_created(&mut watch).await;
    let replay = events(&mut watch, 3).await;
    let revs: Vec<i64> = replay.iter().map(|e| e.4).collect();
    assert_eq!(revs, [4, 5, 6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_reading_a_compacted_revision() {
    let server = start();
    let mut client = connect(&server).await;
    for v in ["1", "2", "3", "4"] {
        client.put("k", v, None).await.unwrap(); // revisions 2..=5
    }

    let compacted = client.compact(3, None).await.unwrap();
    assert_eq!(rev(compacted.header()), 5);
    assert_grpc_error(
        client.get("k", Some(GetOptions::new().with_revision(2))).await,
        Code::OutOfRange,
        COMPACTED,
    );
    // The compact revision itself is still readable, with its value.
    let at = client.get("k", Some(GetOptions::new().with_revision(3))).await.unwrap();
    assert_eq!(at.kvs()[0].value_str().unwrap(), "2");
    // A read-only txn hits the same error.
    let txn = Txn::new().and_then([TxnOp::get("k", Some(GetOptions::new().with_revision(2)))]);
    assert_grpc_error(client.txn(txn).await, Code::OutOfRange, COMPACTED);

    // Compacting at or below the compact revision again, or past the current one, fails.
    assert_grpc_error(client.compact(3, None).await, Code::OutOfRange, COMPACTED);
    assert_grpc_error(client.compact(2, None).await, Code::OutOfRange, COMPACTED);
    assert_grpc_error(client.compact(6, None).await, Code::OutOfRange, FUTURE_REV);
    // Compacting to the current revision, physically, is fine; the latest value survives.
    client.compact(5, Some(etcd_client::CompactionOptions::new().with_physical())).await.unwrap();
    assert_grpc_error(
        client.get("k", Some(GetOptions::new().with_revision(4))).await,
        Code::OutOfRange,
        COMPACTED,
    );
    let latest = client.get("k", None).await.unwrap();
    assert_eq!((latest.kvs()[0].value_str().unwrap(), latest.kvs()[0].version()), ("4", 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_the_version_and_this_member_as_leader() {
    let server = start();
    let mut client = connect(&server).await;
    client.put("k", "v", None).await.unwrap();

    let status = client.status().await.unwrap();
    assert_eq!(status.version(), etcdlite_server::DEFAULT_ETCD_VERSION);
    let header = status.header().expect("status header");
    assert_ne!(header.member_id(), 0);
    assert_eq!(status.leader(), header.member_id(), "a single member leads itself");
    assert_eq!(header.revision(), 2);
    assert_eq!(status.raft_term(), header.raft_term());
    assert!(status.raft_index() >= 1 && status.raft_applied_index() >= 1);
    assert!(status.db_size() >= status.raft_used_db_size(), "{status:?}");
    assert!(status.errors().is_empty(), "no alarms: {:?}", status.errors());
    assert!(!status.is_learner());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_list_is_this_one_member() {
    let server = start();
    let mut client = connect(&server).await;
    let member_id = client.status().await.unwrap().header().unwrap().member_id();

    let list = client.member_list().await.unwrap();
    let header = list.header().expect("member list header");
    assert_eq!((header.member_id(), header.revision()), (member_id, 0), "cluster responses carry revision 0");
    let members = list.members();
    assert_eq!(members.len(), 1);
    let me = &members[0];
    assert_eq!((me.id(), me.name(), me.is_learner()), (member_id, "default", false));
    assert_eq!(me.client_urls(), [server.endpoint()]);
    assert_eq!(me.peer_urls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_changes_answer_as_a_one_member_etcd() {
    let server = start();
    let mut client = connect(&server).await;
    let list = client.member_list().await.unwrap();
    let me = &list.members()[0];
    let (my_id, my_peer) = (me.id(), me.peer_urls()[0].clone());
    // etcd's defaults: etcd 3.5.1 started with only --data-dir reports these ids.
    let header = list.header().unwrap();
    assert_eq!((header.member_id(), header.cluster_id()), (10276657743932975437, 14841639068965178418));
    assert_eq!(my_peer, "http://localhost:2380");

    // Same answers as etcd 3.5.1 and 3.4.23 (tests/conformance/members.json).
    let add_existing = client.member_add([my_peer.as_str()], None).await;
    assert_grpc_error(add_existing, Code::FailedPrecondition, "etcdserver: Peer URLs already exists");
    let remove_self = client.member_remove(my_id).await;
    assert_grpc_error(
        remove_self,
        Code::Unknown,
        "etcdserver: re-configuration failed due to not enough started members",
    );
    assert_grpc_error(client.member_remove(my_id ^ 1).await, Code::NotFound, "etcdserver: member not found");
    let no_urls: [&str; 0] = [];
    assert_grpc_error(
        client.member_add(no_urls, None).await,
        Code::InvalidArgument,
        "etcdserver: given member URLs are invalid",
    );
    let promote = client.member_promote(my_id).await;
    assert_grpc_error(promote, Code::FailedPrecondition, "etcdserver: can only promote a learner member");

    // A learner joins (and never starts), and leaves.
    let learner = MemberAddOptions::new().with_is_learner();
    let added = client.member_add(["http://127.0.0.1:1"], Some(learner)).await.unwrap();
    let new = added.member().unwrap();
    assert!(new.is_learner() && new.name().is_empty() && new.client_urls().is_empty());
    assert_eq!(new.peer_urls(), ["http://127.0.0.1:1"]);
    assert_eq!(added.member_list().len(), 2);
    assert_eq!(client.member_list().await.unwrap().members().len(), 2);
    assert_grpc_error(
        client.member_promote(new.id()).await,
        Code::FailedPrecondition,
        "etcdserver: can only promote a learner member which is in sync with leader",
    );
    assert_eq!(client.member_remove(new.id()).await.unwrap().members().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_size_limit_are_refused() {
    let server = start();
    let mut client = connect(&server).await;
    let limit = etcdlite_server::DEFAULT_MAX_REQUEST_BYTES;

    // Above 1.5 MiB: etcd's own error.
    let big = vec![b'x'; limit + 1024];
    let put = client.put("big", big.clone(), None).await;
    assert_grpc_error(put, Code::InvalidArgument, "etcdserver: request is too large");
    let txn = client.txn(Txn::new().and_then([TxnOp::put("big", big, None)])).await;
    assert_grpc_error(txn, Code::InvalidArgument, "etcdserver: request is too large");
    assert_eq!(client.get("big", None).await.unwrap().count(), 0);

    // Above the 2 MiB gRPC limit: refused by gRPC itself.
    let huge = vec![b'x'; 3 * 1024 * 1024];
    assert_eq!(status_of(client.put("huge", huge, None).await).code(), Code::ResourceExhausted);

    // Just under the limit is fine, and reads are not limited.
    let fits = vec![b'y'; limit - 1024];
    client.put("fits", fits.clone(), None).await.unwrap();
    assert_eq!(client.get("fits", None).await.unwrap().kvs()[0].value(), fits.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_kv_is_stable_for_a_revision_and_honours_compaction() {
    let server = start();
    let mut client = connect(&server).await;
    client.put("a", "1", None).await.unwrap(); // 2
    client.put("b", "2", None).await.unwrap(); // 3

    let at3 = client.hash_kv(0).await.unwrap();
    assert_eq!(rev(at3.header()), 3);
    assert_eq!(client.hash_kv(0).await.unwrap().hash(), at3.hash(), "hash of an unchanged store changed");
    assert_eq!(client.hash_kv(3).await.unwrap().hash(), at3.hash());
    client.put("c", "3", None).await.unwrap(); // 4
    assert_ne!(client.hash_kv(0).await.unwrap().hash(), at3.hash(), "a put did not change the hash");
    assert_eq!(client.hash_kv(3).await.unwrap().hash(), at3.hash(), "the hash at a past revision changed");

    assert_grpc_error(client.hash_kv(5).await, Code::OutOfRange, FUTURE_REV);
    client.compact(3, None).await.unwrap();
    let after = client.hash_kv(0).await.unwrap();
    assert_eq!((after.compact_version(), rev(after.header())), (3, 4));
    assert_grpc_error(client.hash_kv(2).await, Code::OutOfRange, COMPACTED);
}

/// The Snapshot stream as etcd sends it: chunks of at most 32 KiB with the bytes remaining
/// after each, then one message holding the SHA-256 of everything before it. etcdctl
/// (3.4 and 3.5) then insists that the whole stream's length be 32 more than a multiple of
/// 512 (its `hasChecksum`: bbolt files are made of 4 KiB pages), else "sha256 checksum not
/// found".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_stream_ends_with_its_sha256_as_etcdctl_expects() {
    const CHUNK: usize = 32 * 1024;
    let server = start();
    let mut client = connect(&server).await;
    for i in 0..100 {
        client.put(format!("key/{i:03}"), vec![b'v'; 1024], None).await.unwrap();
    }

    let mut stream = within(client.snapshot()).await.unwrap();
    let mut messages = Vec::new();
    while let Some(message) = within(stream.message()).await.unwrap() {
        messages.push((message.remaining_bytes(), message.blob().to_vec()));
        assert!(messages.len() < 100_000, "the snapshot stream does not end");
    }
    let (trailer, data) = messages.split_last().expect("an empty snapshot stream");
    assert_eq!(trailer.0, 0, "the trailer has remaining_bytes 0");
    assert!(!data.is_empty(), "the snapshot holds no data chunk");
    let payload: Vec<u8> = data.iter().flat_map(|(_, blob)| blob.clone()).collect();
    let mut sent = 0;
    for (remaining, blob) in data {
        assert!(!blob.is_empty() && blob.len() <= CHUNK, "chunk of {} bytes", blob.len());
        sent += blob.len();
        assert_eq!(*remaining as usize, payload.len() - sent, "remaining_bytes after {sent} bytes");
    }
    use sha2::Digest;
    assert_eq!(
        trailer.1,
        sha2::Sha256::digest(&payload).to_vec(),
        "the trailer is not the SHA-256 of the data"
    );
    assert!(payload.len() > 100 * 1024, "a snapshot of 100 KiB of values holds {} bytes", payload.len());
    assert_eq!(
        payload.len() % 512,
        0,
        "etcdctl refuses a snapshot whose data is not a multiple of 512 bytes"
    );
}

/// Waits (at most 5 s) until the prefix `prefix` holds `count` keys.
async fn wait_for_keys(client: &mut Client, prefix: &str, count: i64) {
    for _ in 0..500 {
        if client.get(prefix, Some(GetOptions::new().with_prefix())).await.unwrap().count() == count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{prefix} never held {count} keys");
}

/// A lock `name` held on one lease, and a second client's Lock on another lease queued
/// behind it: the client, the two leases, and the waiting call.
struct Contended {
    client: Client,
    holder: i64,
    waiter_lease: i64,
    waiter: tokio::task::JoinHandle<Result<etcd_client::LockResponse, ClientError>>,
}

async fn contended(server: &TestServer, name: &'static str) -> Contended {
    let mut client = connect(server).await;
    let holder = client.lease_grant(60, None).await.unwrap().id();
    let waiter_lease = client.lease_grant(60, None).await.unwrap().id();
    client.lock(name, Some(LockOptions::new().with_lease(holder))).await.unwrap();
    let mut waiter_client = connect(server).await;
    let waiter = tokio::spawn(async move {
        waiter_client.lock(name, Some(LockOptions::new().with_lease(waiter_lease))).await
    });
    wait_for_keys(&mut client, &format!("{name}/"), 2).await;
    Contended { client, holder, waiter_lease, waiter }
}

/// The key etcd's Lock service puts for `name` under `lease`: `name/<lease in hex>`.
fn lock_key(name: &str, lease: i64) -> Vec<u8> {
    format!("{name}/{lease:x}").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_is_exclusive_and_passes_to_the_next_waiter_on_unlock() {
    let server = start();
    let mut client = connect(&server).await;
    let first = client.lease_grant(60, None).await.unwrap().id();
    let second = client.lease_grant(60, None).await.unwrap().id();

    let held = client.lock("job", Some(LockOptions::new().with_lease(first))).await.unwrap();
    assert_eq!(held.key(), lock_key("job", first));
    let put = client.get(held.key(), None).await.unwrap();
    assert_eq!((put.kvs()[0].lease(), put.kvs()[0].value()), (first, &b""[..]));
    assert_eq!(rev(held.header()), put.kvs()[0].create_revision());
    // Locking again with the same lease is the same acquisition.
    let again = client.lock("job", Some(LockOptions::new().with_lease(first))).await.unwrap();
    assert_eq!(again.key(), held.key());

    let mut waiter_client = connect(&server).await;
    let waiter =
        tokio::spawn(
            async move { waiter_client.lock("job", Some(LockOptions::new().with_lease(second))).await },
        );
    // The waiter queues its key, and does not get the lock while the first holds it.
    let queued = lock_key("job", second);
    wait_for_keys(&mut client, "job/", 2).await;
    assert_eq!(client.get(queued.clone(), None).await.unwrap().count(), 1, "the waiter's key");
    assert!(!waiter.is_finished(), "the lock was given while held");

    let unlocked = client.unlock(held.key()).await.unwrap();
    let got = within(waiter).await.unwrap().unwrap();
    assert_eq!(got.key(), queued);
    assert!(rev(got.header()) >= rev(unlocked.header()));
    assert_eq!(client.get(held.key(), None).await.unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_holder_frees_the_lock_and_an_unknown_lease_is_refused() {
    let server = start();
    let Contended { mut client, holder, waiter_lease, waiter } = contended(&server, "db").await;
    client.lease_revoke(holder).await.unwrap();
    assert_eq!(within(waiter).await.unwrap().unwrap().key(), lock_key("db", waiter_lease));

    // etcd's lock server relays its inner client's error, which gRPC sends as Unknown.
    let unknown = client.lock("db", Some(LockOptions::new().with_lease(0x1234))).await;
    assert_grpc_error(unknown, Code::Unknown, LEASE_NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_that_gives_up_leaves_no_key_behind() {
    let server = start();
    let Contended { mut client, holder, waiter, .. } = contended(&server, "q").await;
    // Cancelling the call (dropping it, with its connection) makes the server delete the
    // waiter's key.
    waiter.abort();
    wait_for_keys(&mut client, "q/", 1).await;
    let left = client.get("q/", Some(GetOptions::new().with_prefix())).await.unwrap();
    assert_eq!(key_strs(left.kvs()), [std::str::from_utf8(&lock_key("q", holder)).unwrap()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_ends_a_waiting_lock_with_server_stopped() {
    let server = start();
    let Contended { waiter, .. } = contended(&server, "s").await;
    let stopped = stop(server);
    assert_grpc_error(within(waiter).await.unwrap(), Code::Unavailable, "etcdserver: server stopped");
    within(stopped).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_without_a_lease_takes_one_of_its_own() {
    let server = start();
    let mut client = connect(&server).await;
    let held = client.lock("solo", None).await.unwrap();
    let kv = client.get(held.key(), None).await.unwrap().kvs()[0].clone();
    assert_ne!(kv.lease(), 0);
    assert_eq!(held.key(), lock_key("solo", kv.lease()));
    let ttl = client.lease_time_to_live(kv.lease(), None).await.unwrap();
    assert_eq!(ttl.granted_ttl(), 60);
}

// --- Election (v3electionpb) ---------------------------------------------------------

/// The next leader value an Observe stream reports.
async fn observed_value(observed: &mut etcd_client::ObserveStream) -> String {
    let resp = within(observed.message()).await.unwrap().expect("observe ended");
    resp.kv().expect("a leader key-value").value_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_campaign_proclaim_observe_and_resign_hand_leadership_over() {
    let server = start();
    let mut client = connect(&server).await;
    let (first, second) = (60, 0x1_0000_0001_i64);
    client.lease_grant(60, Some(LeaseGrantOptions::new().with_id(first))).await.unwrap();
    client.lease_grant(60, Some(LeaseGrantOptions::new().with_id(second))).await.unwrap();
    assert_grpc_error(client.leader("e").await, Code::Unknown, "election: no leader");

    let won = client.campaign("e", "a", first).await.unwrap();
    let leader = won.leader().unwrap().clone();
    assert_eq!(
        (leader.name(), leader.key(), leader.rev(), leader.lease()),
        (&b"e"[..], &b"e/3c"[..], 2, first)
    );
    assert_eq!(rev(won.header()), 2);
    let mut observed = client.observe("e").await.unwrap();
    assert_eq!(observed_value(&mut observed).await, "a");

    let mut other = connect(&server).await;
    let mut waiting = tokio::spawn(async move { other.campaign("e", "b", second).await });
    wait_for_keys(&mut client, "e/", 2).await;
    assert!(tokio::time::timeout(Duration::from_millis(200), &mut waiting).await.is_err(), "elected early");

    let proclaimed = client.proclaim("a2", Some(ProclaimOptions::new().with_leader(leader.clone()))).await;
    assert_eq!(rev(proclaimed.unwrap().header()), 4);
    assert_eq!(observed_value(&mut observed).await, "a2");
    client.resign(Some(ResignOptions::new().with_leader(leader.clone()))).await.unwrap();
    let elected = within(waiting).await.unwrap().unwrap();
    assert_eq!(elected.leader().unwrap().key(), b"e/100000001");
    assert_eq!(observed_value(&mut observed).await, "b");
    assert_eq!(client.leader("e").await.unwrap().kv().unwrap().value(), b"b");

    // The old leader key is no longer the leader's: proclaiming with it fails, resigning
    // with it deletes nothing.
    let stale = client.proclaim("x", Some(ProclaimOptions::new().with_leader(leader.clone()))).await;
    assert_grpc_error(stale, Code::Unknown, "election: not leader");
    client.resign(Some(ResignOptions::new().with_leader(leader))).await.unwrap();
    assert_eq!(client.leader("e").await.unwrap().kv().unwrap().value(), b"b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_errors_are_etcds_and_an_expired_leader_steps_down() {
    let server = start();
    let mut client = connect(&server).await;
    assert_grpc_error(client.campaign("e", "a", 0x99).await, Code::Unknown, LEASE_NOT_FOUND);
    assert_grpc_error(client.proclaim("a", None).await, Code::Unknown, "\"leader\" field must be provided");
    assert_grpc_error(client.resign(None).await, Code::Unknown, "\"leader\" field must be provided");

    // Without a lease, a campaign takes one of 60 s of its own, which nothing keeps alive.
    let won = client.campaign("solo", "a", 0).await.unwrap();
    let lease = won.leader().unwrap().lease();
    assert_eq!(client.lease_time_to_live(lease, None).await.unwrap().granted_ttl(), 60);
    let mut observed = client.observe("solo").await.unwrap();
    assert_eq!(observed_value(&mut observed).await, "a");
    clock(&server).advance(Duration::from_secs(61));
    assert_grpc_error(client.leader("solo").await, Code::Unknown, "election: no leader");
    // Observe waits for the next candidate.
    client.campaign("solo", "next", 0).await.unwrap();
    assert_eq!(observed_value(&mut observed).await, "next");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_campaign_resigns_and_a_stopping_server_ends_a_waiting_one() {
    let server = start();
    let mut client = connect(&server).await;
    client.campaign("c", "a", 0).await.unwrap();
    let mut quitter = connect(&server).await;
    let gives_up = tokio::spawn(async move { quitter.campaign("c", "b", 0).await });
    wait_for_keys(&mut client, "c/", 2).await;
    gives_up.abort();
    wait_for_keys(&mut client, "c/", 1).await;

    let mut waiter = connect(&server).await;
    let waiting = tokio::spawn(async move { waiter.campaign("c", "w", 0).await });
    wait_for_keys(&mut client, "c/", 2).await;
    let mut observed = client.observe("c").await.unwrap();
    assert_eq!(observed_value(&mut observed).await, "a");
    let stopped = stop(server);
    assert_grpc_error(within(waiting).await.unwrap(), Code::Unavailable, "etcdserver: server stopped");
    let ended = within(observed.message()).await;
    assert_grpc_error(ended, Code::Unavailable, "etcdserver: server stopped");
    within(stopped).await.unwrap();
}
