//! The `etcdlite` binary: flags, a persistent data dir, and a clean stop on SIGTERM or
//! SIGINT that keeps every acknowledged write.

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use etcd_client::Client;

/// A running `etcdlite`; killed if the test ends without stopping it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let child = Command::new(env!("CARGO_BIN_EXE_etcdlite"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcdlite");
        Running(child)
    }

    /// Sends `signal` and waits (at most 30 s) for the process to exit.
    fn stop(mut self, signal: &str) -> ExitStatus {
        let pid = self.0.id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "etcdlite did not stop after {signal}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Connects once the server answers (at most 30 s).
async fn connect(port: u16) -> Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut client) = Client::connect([format!("127.0.0.1:{port}")], None).await {
            if client.status().await.is_ok() {
                return client;
            }
        }
        assert!(Instant::now() < deadline, "etcdlite did not start on port {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The persistent engines this build has.
fn engines() -> Vec<&'static str> {
    let mut engines = Vec::new();
    if cfg!(feature = "rocksdb") {
        engines.push("rocksdb");
    }
    if cfg!(feature = "sled") {
        engines.push("sled");
    }
    engines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_stop_by_signal_and_a_restart() {
    for engine in engines() {
        for signal in ["-TERM", "-INT"] {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let url = format!("http://127.0.0.1:{port}");
            let args = [
                "--engine",
                engine,
                "--data-dir",
                dir.path().to_str().unwrap(),
                "--listen-client-urls",
                &url,
            ];

            let server = Running::start(&args);
            let mut client = connect(port).await;
            let mut last = 0;
            for i in 0..50 {
                last = client
                    .put(format!("k{i}"), format!("v{i}"), None)
                    .await
                    .unwrap()
                    .header()
                    .unwrap()
                    .revision();
            }
            client.compact(10, None).await.unwrap();
            drop(client);
            let status = server.stop(signal);
            assert!(status.success(), "{engine}: etcdlite exited with {status} after {signal}");

            let _server = Running::start(&args);
            let mut client = connect(port).await;
            let got = client.get("k", Some(etcd_client::GetOptions::new().with_prefix())).await.unwrap();
            assert_eq!(got.count(), 50, "{engine} after {signal}");
            assert_eq!(got.header().unwrap().revision(), last, "{engine} after {signal}");
            let compacted = client.get("k1", Some(etcd_client::GetOptions::new().with_revision(5))).await;
            assert!(
                matches!(&compacted, Err(etcd_client::Error::GRpcStatus(s)) if s.code() == tonic::Code::OutOfRange),
                "{engine}: {compacted:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_flags_but_the_address_it_serves_from_memory() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let server =
        Running::start(&["--listen-client-urls", &url, "--etcd-version", "3.5.17", "--name", "solo"]);
    let mut client = connect(port).await;
    assert_eq!(client.status().await.unwrap().version(), "3.5.17");
    let members = client.member_list().await.unwrap();
    assert_eq!(members.members().len(), 1);
    assert_eq!(members.members()[0].name(), "solo");
    assert_eq!(members.members()[0].client_urls(), std::slice::from_ref(&url));
    client.put("k", "v", None).await.unwrap();
    drop(client);
    assert!(server.stop("-TERM").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_flags_give_etcds_ids() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let peer = "http://127.0.0.1:2380";
    let cluster = format!("n1={peer}");
    let flags = ["--name", "n1", "--initial-advertise-peer-urls", peer, "--initial-cluster", &cluster];
    let server = Running::start(&[&["--listen-client-urls", url.as_str()][..], &flags[..]].concat());
    let mut client = connect(port).await;
    let members = client.member_list().await.unwrap();
    // etcd 3.5.1 and 3.4.23 started with the same flags report these ids.
    let header = members.header().unwrap();
    assert_eq!((header.member_id(), header.cluster_id()), (13195394291058371180, 2037210783374497686));
    assert_eq!(members.members()[0].peer_urls(), [peer]);
    drop(client);
    assert!(server.stop("-TERM").success());
}

#[test]
fn an_initial_cluster_that_is_not_this_one_member_is_refused() {
    let peer = "http://127.0.0.1:2380";
    for (args, says) in [
        (
            &["--name", "x", "--initial-cluster", "y=http://127.0.0.1:2380"][..],
            r#"couldn't find local name "x" in the initial cluster configuration"#,
        ),
        (
            &["--name", "x", "--initial-advertise-peer-urls", peer, "--initial-cluster", "x=http://127.0.0.1:2381"][..],
            "--initial-cluster has x=http://127.0.0.1:2381 but missing from --initial-advertise-peer-urls=http://127.0.0.1:2380",
        ),
        (
            &["--name", "x", "--initial-advertise-peer-urls", peer, "--initial-cluster", "x=http://127.0.0.1:2380,y=http://127.0.0.1:2480"][..],
            "--initial-cluster names 2 members (x, y)",
        ),
        (&["--initial-cluster-state", "bogus"][..], "bogus"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_etcdlite"))
            .args(["--listen-client-urls", "http://127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: expected {says:?} in:\n{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_open_watch_and_keep_alive_streams_with_server_stopped() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let server = Running::start(&["--listen-client-urls", &url]);
    let mut client = connect(port).await;
    let mut watch = client.watch("k", None).await.unwrap();
    assert!(watch.message().await.unwrap().unwrap().created());
    let lease = client.lease_grant(60, None).await.unwrap().id();
    let (mut keeper, mut keep_alive) = client.lease_keep_alive(lease).await.unwrap();
    keeper.keep_alive().await.unwrap();
    assert_eq!(keep_alive.message().await.unwrap().unwrap().ttl(), 60);

    // Clients that never hang up must not hold the shutdown.
    let stopped = tokio::task::spawn_blocking(move || server.stop("-TERM"));
    let watch_end = watch.message().await.unwrap_err();
    let keep_alive_end = keep_alive.message().await.unwrap_err();
    for end in [watch_end, keep_alive_end] {
        match end {
            etcd_client::Error::GRpcStatus(status) => {
                assert_eq!(status.code(), tonic::Code::Unavailable);
                assert_eq!(status.message(), "etcdserver: server stopped");
            }
            other => panic!("expected etcd's server-stopped status, got {other:?}"),
        }
    }
    assert!(stopped.await.unwrap().success());
}

#[test]
fn bad_flags_are_refused_with_a_message() {
    for args in [
        &["--listen-client-urls", "https://127.0.0.1:1"][..],
        &["--auto-compaction-mode", "daily", "--auto-compaction-retention", "1"][..],
        &["--engine", "rocksdb"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_etcdlite")).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(!out.stderr.is_empty(), "{args:?} failed silently");
    }
}

#[test]
fn tls_flags_that_cannot_serve_are_refused_with_a_clear_message() {
    for (args, says) in [
        (
            &["--listen-client-urls", "https://127.0.0.1:0"][..],
            "--cert-file, --key-file) must be provided for client url https://127.0.0.1:0",
        ),
        (
            &["--listen-client-urls", "https://127.0.0.1:0", "--cert-file", "cert.pem"][..],
            "--cert-file and --key-file must be given together",
        ),
        (
            &[
                "--listen-client-urls",
                "https://127.0.0.1:0",
                "--cert-file",
                "/nonexistent/cert.pem",
                "--key-file",
                "/nonexistent/key.pem",
            ][..],
            "the certificate: reading /nonexistent/cert.pem",
        ),
        (&["--listen-client-urls", "ftp://127.0.0.1:0"][..], "only http:// and https:// client URLs"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_etcdlite")).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: expected {says:?} in:\n{stderr}");
    }
}
