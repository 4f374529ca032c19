//! Auth's costs, each against etcd in the same run. BENCHMARKS.md has the commands and
//! numbers.
//!
//! Places (the function names): `etcdlite` is a [`TestServer`] (memory engine, auth as
//! configured), `etcd` a one-member etcd started here as a child process (the binary
//! `tests/common/etcd.rs` picks, printed). The client is the `etcd-client` crate, on a tokio
//! current_thread runtime, over loopback.
//!
//! Cases (the group names):
//!
//! - `put_auth_off` / `put_auth_on`: one put of a 256-byte value to one of 1,000 keys,
//!   auth disabled / enabled with the client logged in as a user whose role may write the
//!   keys' prefix (a simple token in every request's metadata, checked against a prefix
//!   permission). The ratio of the two is what auth costs a put.
//! - `authenticate`: one Authenticate call (bcrypt, cost 10 on both servers) for a user
//!   with a password: the price of a login.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use etcd_client::{Client, ConnectOptions, Permission};
use etcdlite_server::TestServer;
use tokio::runtime::Runtime;

#[path = "../tests/common/etcd.rs"]
mod etcd;
use etcd::{etcd_binary, EtcdMember};

const KEYS: u64 = 1_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Sets up users on the server at `endpoint` (auth still off): root, and `bench` with
/// readwrite on `bench/`.
async fn add_users(endpoint: &str) {
    let mut c = Client::connect([endpoint], None).await.unwrap();
    c.user_add("root", "rootpw", None).await.unwrap();
    c.user_grant_role("root", "root").await.unwrap();
    c.role_add("bench").await.unwrap();
    c.role_grant_permission("bench", Permission::read_write("bench/").with_prefix()).await.unwrap();
    c.user_add("bench", "benchpw", None).await.unwrap();
    c.user_grant_role("bench", "bench").await.unwrap();
}

async fn enable(endpoint: &str) {
    let options = ConnectOptions::new().with_user("root", "rootpw");
    let mut c = Client::connect([endpoint], None).await.unwrap();
    c.auth_enable().await.unwrap();
    drop(Client::connect([endpoint], Some(options)).await.unwrap());
}

/// The three cases against one server at `endpoint`, named `place`.
fn cases(c: &mut Criterion, place: &str, endpoint: &str) {
    let rt = runtime();
    rt.block_on(add_users(endpoint));
    let value = vec![b'v'; 256];
    let mut put_group = |name: &str, client: &mut Client| {
        let mut group = c.benchmark_group(name);
        group.bench_function(place, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for i in 0..iters {
                        let key = format!("bench/{:04}", i % KEYS);
                        black_box(client.put(key, value.clone(), None).await.unwrap());
                    }
                    start.elapsed()
                })
            })
        });
        group.finish();
    };
    let mut open = rt.block_on(Client::connect([endpoint], None)).unwrap();
    put_group("put_auth_off", &mut open);
    rt.block_on(enable(endpoint));
    let options = ConnectOptions::new().with_user("bench", "benchpw");
    let mut user = rt.block_on(Client::connect([endpoint], Some(options))).unwrap();
    put_group("put_auth_on", &mut user);

    let mut group = c.benchmark_group("authenticate");
    group.sample_size(20).measurement_time(Duration::from_secs(10));
    group.bench_function(place, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut auth = user.auth_client();
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(auth.authenticate("bench".into(), "benchpw".into()).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn etcdlite(c: &mut Criterion) {
    let server = TestServer::start().expect("start a TestServer");
    cases(c, "etcdlite", &server.endpoint());
}

fn etcd(c: &mut Criterion) {
    eprintln!("etcd: {}", etcd_binary().display());
    let member = EtcdMember::cluster(1, &[]).pop().expect("one member");
    assert!(runtime().block_on(member.answers_within(Duration::from_secs(20))), "etcd did not start");
    cases(c, "etcd", &member.endpoint());
}

criterion_group!(benches, etcdlite, etcd);
criterion_main!(benches);
