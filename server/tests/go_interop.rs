//! Interop: a Go program's clientv3 `concurrency.Mutex` and etcdlite's
//! `concurrency::Mutex` contend for the same lock at the same time, on an etcdlite server
//! and on a real etcd. Both sides run the same critical section (enter only if nobody is
//! inside, add one to a shared counter as the lock's owner, leave); no side ever finds
//! another inside, and the counter ends at the number of rounds taken by both: the two
//! implementations exclude each other both ways.
//!
//! The Go side is `tests/compat/go/contend`, built by `tests/compat/go/prepare` (which
//! installs Debian's Go toolchain and etcd's Go sources when they are missing).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use etcdlite::client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use etcdlite::concurrency::{Mutex, Session, SessionOptions};
use etcdlite_server::TestServer;

#[path = "common/etcd.rs"]
mod etcd;

/// Rounds each worker takes the lock, and workers on each side.
const ROUNDS: usize = 40;
const GO_WORKERS: usize = 2;
const RUST_WORKERS: usize = 2;

/// The Go contender, built once per test run.
fn go_contender() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            let prepared = Command::new(root.join("tests/compat/go/prepare"))
                .status()
                .expect("run the Go prepare script");
            assert!(prepared.success(), "tests/compat/go/prepare failed");
            let work = std::env::var("COMPAT_WORK").unwrap_or_else(|_| "/var/tmp/etcdlite-compat".into());
            PathBuf::from(work).join("go/contend")
        })
        .clone()
}

/// Runs the Go contender and `RUST_WORKERS` etcdlite contenders on `endpoint` at once,
/// under `prefix`, and checks that they excluded each other.
async fn contend(endpoint: &str, prefix: &str) {
    let go = go_contender();
    let options = ConnectOptions::new().with_timeout(Duration::from_secs(60));
    let client = Client::connect([endpoint], Some(options)).await.expect("connect");
    let start = client.clone().get("any", None).await.unwrap().header().unwrap().revision();
    let host_port = endpoint.trim_start_matches("http://").to_owned();
    let go_prefix = prefix.to_owned();
    let go_side = tokio::task::spawn_blocking(move || {
        Command::new(go)
            .env("ETCD_ENDPOINT", host_port)
            .env("INTEROP_PREFIX", go_prefix)
            .env("ROUNDS", ROUNDS.to_string())
            .env("WORKERS", GO_WORKERS.to_string())
            .output()
            .expect("run the Go contender")
    });
    let mut rust_side = Vec::new();
    for worker in 0..RUST_WORKERS {
        let (client, prefix) = (client.clone(), prefix.to_owned());
        rust_side.push(tokio::spawn(async move {
            let session = Session::new(&client, Some(SessionOptions::new().with_ttl(30))).await.unwrap();
            let mut lock = Mutex::new(&session, format!("{prefix}lock"));
            for _ in 0..ROUNDS {
                lock.lock().await.expect("lock");
                critical_section(&client, &lock, &prefix, &format!("rust-{worker}")).await;
                lock.unlock().await.expect("unlock");
            }
            session.close().await.unwrap();
        }));
    }
    for worker in rust_side {
        tokio::time::timeout(Duration::from_secs(300), worker)
            .await
            .expect("the etcdlite side ends")
            .unwrap();
    }
    let go = go_side.await.unwrap();
    let said = String::from_utf8_lossy(&go.stdout);
    assert!(go.status.success() && said.contains("DONE"), "the Go side failed: {said}");

    let mut c = client.clone();
    let counter = c.get(format!("{prefix}counter"), None).await.unwrap();
    let total = (GO_WORKERS + RUST_WORKERS) * ROUNDS;
    assert_eq!(counter.kvs()[0].value_str().unwrap(), total.to_string(), "every round counted once");

    // Who held the lock, in order, from the history of the holder key: the lock passed
    // from Go to etcdlite and back, so each side waited for the other.
    let holders = holders_since(&client, &format!("{prefix}holder"), start + 1, total).await;
    let handovers = |from: &str, to: &str| {
        holders.windows(2).filter(|w| w[0].starts_with(from) && w[1].starts_with(to)).count()
    };
    assert!(handovers("go-", "rust-") > 0 && handovers("rust-", "go-") > 0, "no contention: {holders:?}");
}

/// The first `count` values put on `key` from `revision` on, in order.
async fn holders_since(client: &Client, key: &str, revision: i64, count: usize) -> Vec<String> {
    let mut c = client.clone();
    let mut watch = c.watch(key, Some(WatchOptions::new().with_start_revision(revision))).await.unwrap();
    let mut holders = Vec::new();
    while holders.len() < count {
        let resp =
            tokio::time::timeout(Duration::from_secs(20), watch.message()).await.expect("history").unwrap();
        let puts = resp
            .unwrap()
            .events()
            .iter()
            .filter(|e| e.event_type() == EventType::Put)
            .cloned()
            .collect::<Vec<_>>();
        holders.extend(puts.iter().map(|e| e.kv().unwrap().value_str().unwrap().to_owned()));
    }
    holders
}

/// What the Go side does with the lock held: enter only if nobody is inside, count as the
/// owner, leave.
async fn critical_section(client: &Client, lock: &Mutex, prefix: &str, me: &str) {
    let mut c = client.clone();
    let (holder, counter) = (format!("{prefix}holder"), format!("{prefix}counter"));
    let enter = Txn::new()
        .when([Compare::version(holder.clone(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(holder.clone(), me, None)])
        .or_else([TxnOp::get(holder.clone(), None)]);
    let entered = c.txn(enter).await.unwrap();
    if !entered.succeeded() {
        let inside = match &entered.op_responses()[0] {
            TxnOpResponse::Get(got) => got.kvs()[0].value_str().unwrap().to_owned(),
            other => format!("{other:?}"),
        };
        panic!("two holders: {me} found {inside} inside");
    }
    let got = c.get(counter.clone(), None).await.unwrap();
    let count: usize = got.kvs().first().map_or(0, |kv| kv.value_str().unwrap().parse().unwrap());
    let write = Txn::new()
        .when([lock.is_owner()])
        .and_then([TxnOp::put(counter, (count + 1).to_string(), None), TxnOp::delete(holder, None)]);
    assert!(c.txn(write).await.unwrap().succeeded(), "the owner compare holds inside the critical section");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_and_etcdlite_mutexes_exclude_each_other_on_an_etcdlite_server() {
    let server = TestServer::start().expect("a TestServer");
    contend(&server.endpoint(), "interop/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_and_etcdlite_mutexes_exclude_each_other_on_etcd() {
    // A member that does not come up (its port taken meanwhile) is started again.
    for _ in 0..3 {
        let members = etcd::EtcdMember::cluster(1, &[]);
        if members[0].answers_within(Duration::from_secs(20)).await {
            let endpoint = members[0].endpoint();
            contend(&endpoint, "interop/").await;
            return;
        }
    }
    panic!("no etcd came up in 3 tries");
}
