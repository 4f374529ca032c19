//! The in-process client's own promises, beyond the shared behaviour suite
//! (`server/tests/client_suite/`): nothing blocks the caller's executor, a store outlives
//! the runtimes that used it, dropped streams free what they held, options mean what they
//! say in-process, and the services the library does not have yet say so.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcdlite::client::{Client, Code, ConnectOptions, Error, MemberAddOptions, WatchOptions};
use etcdlite::engine::{FaultyEngine, MemoryEngine};
use etcdlite::{Options, Store};

/// The status of a failed call.
#[track_caller]
fn status<T: std::fmt::Debug>(result: Result<T, Error>) -> (Code, String) {
    match result {
        Err(Error::GRpcStatus(status)) => (status.code(), status.message().to_owned()),
        other => panic!("expected an error status, got {other:?}"),
    }
}

async fn memory_client() -> Client {
    Client::embedded(Store::open(Options::memory()).unwrap(), None).await.unwrap()
}

/// A store whose syncs can be held: with sync on, a write is not acknowledged until its sync
/// has run.
fn held_store() -> (Arc<FaultyEngine>, Store) {
    let engine = Arc::new(FaultyEngine::new(Arc::new(MemoryEngine::new())));
    let store = Store::open(Options::engine(engine.clone()).sync(true)).unwrap();
    (engine, store)
}

/// If a put blocked its thread until its write was durable, a put would finish before the
/// next one started, and no two would ever be in flight at once on a one-thread runtime. A
/// put that waits without blocking yields, and the runtime starts others meanwhile (how many
/// depends on how often tokio looks at wake-ups from other threads: every 31 polls).
#[cfg(feature = "rocksdb")]
#[test]
fn a_thousand_concurrent_puts_on_one_thread_with_synced_rocksdb_all_complete() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(Options::rocksdb(dir.path())).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most_in_flight = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        let client = Client::embedded(store, None).await.unwrap();
        let tasks: Vec<_> = (0..1000)
            .map(|i| {
                let (mut client, in_flight, most) =
                    (client.clone(), in_flight.clone(), most_in_flight.clone());
                tokio::spawn(async move {
                    most.fetch_max(in_flight.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                    let put = client.put(format!("k{i:04}"), "v", None).await.unwrap();
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    put.header().unwrap().revision()
                })
            })
            .collect();
        let mut revisions = Vec::new();
        for task in tasks {
            revisions.push(tokio::time::timeout(Duration::from_secs(60), task).await.unwrap().unwrap());
        }
        revisions.sort();
        assert_eq!(revisions, (2..=1001).collect::<Vec<i64>>(), "every put took its own revision");
        assert_eq!(client.store().unwrap().current_revision(), 1001);
    });
    let most = most_in_flight.load(Ordering::SeqCst);
    assert!(most > 1, "at most {most} put in flight at once: puts block the runtime's thread");
}

#[test]
fn a_store_outlives_the_runtimes_that_used_it() {
    let store = Arc::new(Store::open(Options::memory()).unwrap());
    for round in 0..3 {
        let store = store.clone();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let mut client = Client::embedded(store, None).await.unwrap();
            let mut watch = client.watch("k", None).await.unwrap();
            assert!(watch.message().await.unwrap().unwrap().created());
            client.put("k", format!("{round}"), None).await.unwrap();
            let changed = watch.message().await.unwrap().unwrap();
            assert_eq!(changed.events()[0].kv().unwrap().value_str().unwrap(), round.to_string());
        });
    }
    assert_eq!(store.get("k", None).unwrap().kvs()[0].version(), 3);
    assert_eq!(store.watch_counts().watches, 0, "each runtime's watch went with its stream");
}

#[tokio::test]
async fn dropping_a_watch_stream_cancels_its_watches() {
    let mut client = memory_client().await;
    let store = client.store().unwrap().clone();
    let mut stream = client.watch("a", None).await.unwrap();
    stream.watch("b", Some(WatchOptions::new().with_prefix())).await.unwrap();
    assert_eq!(store.watch_counts().watches, 2);
    let (sender, responses) = stream.split();
    drop(sender);
    assert_eq!(store.watch_counts().watches, 2, "the request end going leaves the watches, as in etcd");
    drop(responses);
    assert_eq!((store.watch_counts().streams, store.watch_counts().watches), (0, 0));
}

#[tokio::test]
async fn a_keeper_and_its_stream_end_each_other() {
    let mut client = memory_client().await;
    let lease = client.lease_grant(10, None).await.unwrap().id();
    let (keeper, mut answers) = client.lease_keep_alive(lease).await.unwrap();
    drop(keeper);
    assert!(answers.message().await.unwrap().is_none(), "no keeper, no more answers");

    let (mut keeper, answers) = client.lease_keep_alive(lease).await.unwrap();
    drop(answers);
    match keeper.keep_alive().await {
        Err(Error::LeaseKeepAliveError(reason)) => assert_eq!(reason, "channel closed"),
        other => panic!("a keep-alive with no one to answer: {other:?}"),
    }
}

#[tokio::test]
async fn unread_keep_alive_answers_are_bounded() {
    let mut client = memory_client().await;
    let lease = client.lease_grant(10, None).await.unwrap().id();
    let (mut keeper, mut answers) = client.lease_keep_alive(lease).await.unwrap();
    for _ in 0..10_000 {
        keeper.keep_alive().await.unwrap();
    }
    drop(keeper);
    let mut held = 0;
    while answers.message().await.unwrap().is_some() {
        held += 1;
    }
    assert!(held > 0 && held <= 1000, "{held} answers held for a reader that never read");
}

#[tokio::test]
async fn a_timeout_bounds_a_write_waiting_for_its_sync() {
    let (engine, store) = held_store();
    let options = ConnectOptions::new().with_timeout(Duration::from_millis(50));
    let mut client = Client::embedded(store, Some(options)).await.unwrap();
    engine.hold_syncs(true);
    assert_eq!(status(client.put("k", "v", None).await), (Code::Cancelled, "Timeout expired".into()));
    engine.hold_syncs(false);
    // A later write is acknowledged once every earlier one is durable, and so visible.
    client.put("later", "v", None).await.unwrap();
    let got = client.get("k", None).await.unwrap();
    assert_eq!(got.count(), 1, "the write was applied, as on a server whose client gave up");
}

#[tokio::test]
async fn an_embedded_client_logs_in_and_is_checked_as_its_user() {
    let store = std::sync::Arc::new(Store::open(Options::memory().with_bcrypt_cost(4)).unwrap());
    let mut admin = Client::embedded(store.clone(), None).await.unwrap();
    admin.user_add("root", "secret", None).await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.user_add("reader", "pw", None).await.unwrap();
    admin.role_add("read-all").await.unwrap();
    admin
        .role_grant_permission("read-all", etcdlite::client::Permission::read("").with_all_keys())
        .await
        .unwrap();
    admin.user_grant_role("reader", "read-all").await.unwrap();
    admin.put("k", "v", None).await.unwrap();
    // With auth off, a user's client simply names no one.
    let mut reader =
        Client::embedded(store.clone(), Some(ConnectOptions::new().with_user("reader", "pw"))).await.unwrap();
    admin.auth_enable().await.unwrap();
    let status_of = admin.auth_status().await;
    assert_eq!(status(status_of), (Code::InvalidArgument, "etcdserver: user name is empty".into()));
    // The reader logs in on its next call, now that auth is on.
    assert_eq!(reader.get("k", None).await.unwrap().kvs()[0].value(), b"v");
    assert_eq!(
        status(reader.put("k", "w", None).await),
        (Code::PermissionDenied, "etcdserver: permission denied".into())
    );
    let wrong = ConnectOptions::new().with_user("root", "nope");
    assert_eq!(
        status(Client::embedded(store.clone(), Some(wrong)).await),
        (Code::InvalidArgument, "etcdserver: authentication failed, invalid user ID or password".into())
    );
    let mut root = Client::embedded(store.clone(), Some(ConnectOptions::new().with_user("root", "secret")))
        .await
        .unwrap();
    let auth = root.auth_status().await.unwrap();
    assert!(auth.enabled());
    root.put("k", "w", None).await.unwrap();
    // A changed password forgets the reader's token; the client logs in again, and fails.
    root.user_change_password("reader", "new").await.unwrap();
    assert_eq!(
        status(reader.get("k", None).await),
        (Code::InvalidArgument, "etcdserver: authentication failed, invalid user ID or password".into())
    );
    reader.update_user(Some(("reader".into(), "new".into()))).await.unwrap();
    assert_eq!(reader.get("k", None).await.unwrap().kvs()[0].value(), b"w");
    reader.refresh_token().await.unwrap();
    root.auth_disable().await.unwrap();
    // Tokens were forgotten; with auth off the clients go on naming no one.
    reader.put("k", "x", None).await.unwrap();
    assert!(matches!(admin.add_endpoint("http://127.0.0.1:2379").await, Err(Error::EndpointsNotManaged)));
}

#[tokio::test]
async fn the_quota_guards_embedded_writes_as_the_server_guards_them() {
    let store = Store::open(Options::memory().quota_backend_bytes(64 * 1024)).unwrap();
    let mut client = Client::embedded(store, None).await.unwrap();
    let big = vec![b'x'; 100 * 1024];
    let refused = status(client.put("big", big, None).await);
    assert_eq!(refused, (Code::ResourceExhausted, "etcdserver: mvcc: database space exceeded".into()));
    let alarms =
        client.alarm(etcdlite::client::AlarmAction::Get, etcdlite::client::AlarmType::None, None).await;
    assert_eq!(alarms.unwrap().alarms().len(), 1, "the refusal raised NOSPACE");
    assert_eq!(status(client.put("small", "v", None).await).0, Code::ResourceExhausted);
    client.delete("small", None).await.unwrap();
}

/// The answers etcd 3.5.1 and 3.4.23 give on a cluster of one started member
/// (`tests/conformance/members.json` compares them call by call).
#[tokio::test]
async fn member_calls_answer_as_a_one_member_etcd() {
    let mut c = memory_client().await;
    let me = c.member_list().await.unwrap().members()[0].clone();
    let learner_options = Some(MemberAddOptions::new().with_is_learner());

    let added = c.member_add(["http://127.0.0.1:1"], learner_options).await.unwrap();
    let learner = added.member().unwrap().clone();
    assert!(learner.is_learner() && learner.name().is_empty() && learner.client_urls().is_empty());
    assert_eq!(added.member_list().len(), 2);
    assert_eq!(c.member_list().await.unwrap().members().len(), 2);
    assert_eq!(
        status(c.member_add(["http://127.0.0.1:2"], learner_options).await),
        (Code::FailedPrecondition, "etcdserver: too many learner members in cluster".into())
    );
    assert_eq!(
        status(c.member_add(["http://127.0.0.1:1", "http://127.0.0.1:9"], None).await),
        (Code::FailedPrecondition, "etcdserver: Peer URLs already exists".into())
    );
    assert_eq!(
        status(c.member_promote(learner.id()).await),
        (
            Code::FailedPrecondition,
            "etcdserver: can only promote a learner member which is in sync with leader".into()
        )
    );
    let updated = c.member_update(learner.id(), vec!["http://127.0.0.1:3".to_owned()]).await.unwrap();
    let listed = updated.members().iter().find(|m| m.id() == learner.id()).unwrap();
    assert_eq!((listed.peer_urls(), listed.is_learner()), (&["http://127.0.0.1:3".to_owned()][..], true));
    assert_eq!(c.member_remove(learner.id()).await.unwrap().members(), std::slice::from_ref(&me));
    assert_eq!(
        status(c.member_remove(learner.id()).await),
        (Code::NotFound, "etcdserver: member not found".into())
    );

    // A voter: etcd then has no quorum; etcdlite answers what etcd answers at once, and
    // goes on serving writes.
    let voter = c.member_add(["http://127.0.0.1:5"], None).await.unwrap().member().unwrap().clone();
    assert!(!voter.is_learner());
    let not_enough =
        (Code::Unknown, "etcdserver: re-configuration failed due to not enough started members".into());
    assert_eq!(status(c.member_add(["http://127.0.0.1:6"], None).await), not_enough);
    assert_eq!(
        status(c.member_add(["http://127.0.0.1:7"], learner_options).await),
        (Code::Unavailable, "etcdserver: unhealthy cluster".into())
    );
    assert_eq!(status(c.member_remove(me.id()).await), not_enough);
    c.put("still", "writable", None).await.unwrap();
    assert_eq!(c.member_remove(voter.id()).await.unwrap().members(), [me]);
}
