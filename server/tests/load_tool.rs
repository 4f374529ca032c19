//! The `etcdlite-load` tool against a server in this process: every workload's requests
//! reach the store (the revision counts them), a refused request is counted as an error
//! with the server's status, and `--json` reports what happened.

use std::net::SocketAddr;
use std::process::Command;

use etcdlite_server::TestServer;

/// Runs the tool with `args` against `addr` and returns its JSON report; the tool exits
/// with failure when no request succeeded.
fn load(addr: SocketAddr, args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_etcdlite-load"))
        .args(args)
        .args(["--endpoints", &addr.to_string(), "--json"])
        .output()
        .expect("run etcdlite-load");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(output.status.success(), report["ok"].as_u64() > Some(0));
    report
}

#[test]
fn every_request_of_every_workload_reaches_the_store() {
    let server = TestServer::start().unwrap();
    let (addr, store) = (server.addr(), server.store());

    let put = load(addr, &["put", "--clients", "4", "--conns", "2", "--total", "300"]);
    assert_eq!((put["ok"].as_u64(), put["errors"].as_u64()), (Some(300), Some(0)));
    assert!(put["throughput"].as_f64().unwrap() > 0.0);
    assert_eq!(store.current_revision(), 1 + 300);

    // Each txn client first puts its own key (untimed), then swaps it 50 times in all.
    let txn = load(addr, &["txn", "--clients", "2", "--total", "50"]);
    assert_eq!((txn["ok"].as_u64(), txn["cas_failures"].as_u64()), (Some(50), Some(0)));
    assert_eq!(store.current_revision(), 301 + 2 + 50);

    // Reading writes the key space first: 250 keys, 100 to a txn.
    let get = load(addr, &["get", "--clients", "3", "--total", "90", "--key-space", "250"]);
    assert_eq!((get["ok"].as_u64(), get["errors"].as_u64()), (Some(90), Some(0)));
    assert_eq!(store.current_revision(), 353 + 3);

    let watch = load(addr, &["watch", "--watchers", "5", "--total", "20"]);
    assert_eq!((watch["ok"].as_u64(), watch["errors"].as_u64()), (Some(5 * 20), Some(0)));
    assert_eq!(store.current_revision(), 356 + 20);
}

#[test]
fn refused_requests_are_errors_with_the_servers_status() {
    let server = TestServer::start().unwrap();
    let (addr, store) = (server.addr(), server.store());
    // Over etcd's request limit (1.5 MiB), under what gRPC decodes.
    let put = load(addr, &["put", "--clients", "2", "--total", "4", "--val-size", "1700000"]);
    assert_eq!((put["ok"].as_u64(), put["errors"].as_u64()), (Some(0), Some(4)));
    let error = put["first_error"].as_str().unwrap();
    assert!(error.contains("etcdserver: request is too large"), "{error}");
    assert_eq!(store.current_revision(), 1);
}
