//! Interop with the real `etcdctl` (Debian's etcd-client 3.4.23, API v3) against the
//! `etcdlite` binary, started as a child process on a free loopback port.
//!
//! The tests skip (pass, with a message on stderr) when etcdctl is not installed. Set
//! `ETCDCTL` to use another etcdctl binary. Endpoints are given as `127.0.0.1:PORT`, and as
//! `http://127.0.0.1:PORT` where that matters: etcdctl 3.4's endpoint status, hashkv,
//! defrag and snapshot commands then send the whole URL as the HTTP/2 `:authority`.
//!
//! Every wait is bounded: etcdctl runs with dial and command timeouts and is killed past
//! [`DEADLINE`]; the server's port is polled until a deadline.

#[path = "common/process.rs"]
mod process;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// The longest one etcdctl run (or the server's start) may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// The `etcdlite` binary running as a child on a free loopback port; killed on drop.
struct EtcdLite {
    server: process::EtcdLiteChild,
    _dir: TempDir,
    etcdctl: PathBuf,
    /// Whether etcdctl is given the endpoint as a URL (`http://127.0.0.1:PORT`).
    url: bool,
}

impl EtcdLite {
    /// Starts the server, or returns None when etcdctl is missing (the test then skips).
    fn start() -> Option<EtcdLite> {
        let etcdctl = process::etcdctl_binary()?;
        let dir = tempfile::tempdir().expect("temp dir");
        let server = process::EtcdLiteChild::start("http", &[], &dir.path().join("server.log"), DEADLINE)
            .unwrap_or_else(|log| panic!("etcdlite did not start; its log:\n{log}"));
        Some(EtcdLite { server, _dir: dir, etcdctl, url: false })
    }

    /// The same, with etcdctl given the endpoint as a URL.
    fn start_with_url_endpoint() -> Option<EtcdLite> {
        Some(EtcdLite { url: true, ..EtcdLite::start()? })
    }

    fn endpoint(&self) -> String {
        let scheme = if self.url { "http://" } else { "" };
        format!("{scheme}127.0.0.1:{}", self.server.port())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.etcdctl);
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .arg("--dial-timeout=5s")
            .arg("--command-timeout=10s")
            .args(args);
        cmd
    }

    /// Runs etcdctl with `args` (and `stdin`), bounded by [`DEADLINE`].
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn etcdctl");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("etcdctl stdin");
        }
        drop(input);
        process::output_within(child, &format!("etcdctl {args:?}"), DEADLINE)
    }

    /// etcdctl's stdout; panics (with both outputs) unless it succeeds.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        self.ok_with_stdin(args, None)
    }

    #[track_caller]
    fn ok_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed ({}):\n{stdout}\n{stderr}\nserver log:\n{}",
            out.status,
            self.server.log()
        );
        stdout
    }

    /// etcdctl's stderr; panics unless it fails.
    #[track_caller]
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(!out.status.success(), "etcdctl {args:?} should have failed:\n{stdout}\n{stderr}");
        stderr
    }

    /// etcdctl's output as JSON (`-w json` is added).
    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-w", "json"]);
        let out = self.ok(&args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("etcdctl {args:?}: not JSON ({e}): {out}"))
    }

    /// Runs a never-ending command (watch) until it has printed `n` lines, then kills it.
    fn first_lines(&self, args: &[&str], n: usize) -> Vec<String> {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = process::read_all_in_background(child.stderr.take().unwrap());
        let (tx, rx) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        thread::spawn(move || {
            for line in stdout.lines() {
                if tx.send(line.expect("etcdctl output")).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + DEADLINE;
        let mut lines = Vec::new();
        while lines.len() < n {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => lines.push(line),
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let stderr = text(&stderr.join().unwrap());
        assert_eq!(
            lines.len(),
            n,
            "etcdctl {args:?} printed only {lines:?} within {DEADLINE:?}; stderr:\n{stderr}"
        );
        lines
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Standard base64, as etcdctl's JSON prints bytes.
fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or_else(|| panic!("no number at {pointer} in {v}"))
}

fn i64_at(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or_else(|| panic!("no number at {pointer} in {v}"))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}

/// The lease id (hex, as etcdctl prints it) from "lease <id> granted with TTL(<n>s)".
fn granted_lease(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(
        words.len() == 5 && words[0] == "lease" && words[2] == "granted",
        "unexpected grant output: {line:?}"
    );
    words[1].to_owned()
}

#[test]
fn base64_matches_etcdctl() {
    assert_eq!(b64(b"foo"), "Zm9v");
    assert_eq!(b64(b"bar"), "YmFy");
    assert_eq!(b64(b"k1"), "azE=");
    assert_eq!(b64(b"a"), "YQ==");
    assert_eq!(b64(b""), "");
}

#[test]
fn put_and_get_report_revisions_in_json() {
    let Some(server) = EtcdLite::start() else { return };

    let put = server.json(&["put", "foo", "bar"]);
    assert_eq!(i64_at(&put, "/header/revision"), 2);
    assert_eq!(u64_at(&put, "/header/raft_term"), 2);
    let member = u64_at(&put, "/header/member_id");
    assert_ne!(member, 0);
    assert_ne!(u64_at(&put, "/header/cluster_id"), 0);

    let get = server.json(&["get", "foo"]);
    assert_eq!(i64_at(&get, "/header/revision"), 2);
    assert_eq!(u64_at(&get, "/header/member_id"), member);
    assert_eq!(i64_at(&get, "/count"), 1);
    assert_eq!(str_at(&get, "/kvs/0/key"), b64(b"foo"));
    assert_eq!(str_at(&get, "/kvs/0/value"), b64(b"bar"));
    assert_eq!((i64_at(&get, "/kvs/0/create_revision"), i64_at(&get, "/kvs/0/mod_revision")), (2, 2));
    assert_eq!(i64_at(&get, "/kvs/0/version"), 1);

    assert_eq!(server.ok(&["put", "foo", "baz"]), "OK\n");
    let get = server.json(&["get", "foo"]);
    assert_eq!(i64_at(&get, "/header/revision"), 3);
    assert_eq!((i64_at(&get, "/kvs/0/create_revision"), i64_at(&get, "/kvs/0/mod_revision")), (2, 3));
    assert_eq!(i64_at(&get, "/kvs/0/version"), 2);

    // Simple output, and a read at a past revision.
    assert_eq!(server.ok(&["get", "foo"]), "foo\nbaz\n");
    assert_eq!(server.ok(&["get", "foo", "--rev=2"]), "foo\nbar\n");
    assert_eq!(server.ok(&["get", "missing"]), "");
    let missing = server.json(&["get", "missing"]);
    assert!(missing.get("kvs").is_none() && missing.get("count").is_none(), "zero values omitted: {missing}");
    let future = server.fails(&["get", "foo", "--rev=10"]);
    assert!(future.contains("etcdserver: mvcc: required revision is a future revision"), "{future}");
}

#[test]
fn get_prefix_limit_and_delete() {
    let Some(server) = EtcdLite::start() else { return };
    for (k, v) in [("foo/2", "b"), ("foo/1", "a"), ("foo/3", "c"), ("fop", "x"), ("foo", "z")] {
        assert_eq!(server.ok(&["put", k, v]), "OK\n");
    }

    assert_eq!(server.ok(&["get", "--prefix", "foo/"]), "foo/1\na\nfoo/2\nb\nfoo/3\nc\n");
    assert_eq!(server.ok(&["get", "--prefix", "foo/", "--keys-only"]), "foo/1\n\nfoo/2\n\nfoo/3\n\n");
    assert_eq!(server.ok(&["get", "--prefix", "foo/", "--limit=2"]), "foo/1\na\nfoo/2\nb\n");
    let limited = server.json(&["get", "--prefix", "foo/", "--limit=2"]);
    assert_eq!(limited["more"], Value::Bool(true));
    assert_eq!(i64_at(&limited, "/count"), 3);
    assert_eq!(
        server.ok(&["get", "--prefix", "foo/", "--order=DESCEND", "--keys-only"]),
        "foo/3\n\nfoo/2\n\nfoo/1\n\n"
    );
    assert_eq!(server.ok(&["get", "foo/3", "--from-key", "--keys-only"]), "foo/3\n\nfop\n\n");

    assert_eq!(server.ok(&["del", "--prev-kv", "foo/1"]), "1\nfoo/1\na\n");
    assert_eq!(server.ok(&["del", "--prefix", "foo/"]), "2\n");
    assert_eq!(server.ok(&["del", "foo/1"]), "0\n");
    assert_eq!(server.ok(&["get", "--prefix", "fo", "--keys-only"]), "foo\n\nfop\n\n");
}

#[test]
fn txn_from_stdin_takes_either_branch() {
    let Some(server) = EtcdLite::start() else { return };
    server.ok(&["put", "k", "v1"]);

    // Compares, blank line, success ops, blank line, failure ops, blank line.
    let cas = "value(\"k\") = \"v1\"\n\nput k v2\nget k\n\nget k\n\n";
    assert_eq!(server.ok_with_stdin(&["txn", "-w", "simple"], Some(cas)), "SUCCESS\n\nOK\n\nk\nv2\n");
    assert_eq!(server.ok_with_stdin(&["txn", "-w", "simple"], Some(cas)), "FAILURE\n\nk\nv2\n");

    let create = "create(\"new\") = \"0\"\n\nput new first\n\nget new\n\n";
    assert_eq!(server.ok_with_stdin(&["txn"], Some(create)), "SUCCESS\n\nOK\n");
    assert_eq!(server.ok_with_stdin(&["txn"], Some(create)), "FAILURE\n\nnew\nfirst\n");

    let mod_rev = "mod(\"k\") = \"3\"\nversion(\"k\") = \"2\"\n\ndel k\n\n\n";
    assert_eq!(server.ok_with_stdin(&["txn"], Some(mod_rev)), "SUCCESS\n\n1\n");
    assert_eq!(server.ok(&["get", "k"]), "");

    // JSON: the header of a txn that changed something carries the new revision.
    let json = server.ok_with_stdin(&["txn", "-w", "json"], Some("\nput j 1\n\n\n"));
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["succeeded"], Value::Bool(true));
    assert_eq!(i64_at(&json, "/header/revision"), 6);

    // Two puts of one key: etcd's duplicate-key error.
    let out = server.run(&["txn"], Some("\nput d 1\nput d 2\n\n\n"));
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("etcdserver: duplicate key given in txn request"), "{stderr}");
}

#[test]
fn lease_grant_keep_alive_time_to_live_and_revoke() {
    let Some(server) = EtcdLite::start() else { return };

    let granted = server.ok(&["lease", "grant", "60"]);
    let id = granted_lease(granted.trim_end());
    assert_eq!(granted, format!("lease {id} granted with TTL(60s)\n"));
    assert_eq!(server.ok(&["put", "--lease", &id, "k1", "v"]), "OK\n");
    assert_eq!(server.ok(&["put", &format!("--lease={id}"), "k2", "v"]), "OK\n");
    let lease_field = server.json(&["get", "k1"]);
    assert_eq!(u64_at(&lease_field, "/kvs/0/lease"), u64::from_str_radix(&id, 16).unwrap());

    assert_eq!(
        server.ok(&["lease", "keep-alive", "--once", &id]),
        format!("lease {id} keepalived with TTL(60)\n")
    );

    // "lease <id> granted with TTL(60s), remaining(<n>s), attached keys([k1 k2])"
    let ttl = server.ok(&["lease", "timetolive", &id, "--keys"]);
    let prefix = format!("lease {id} granted with TTL(60s), remaining(");
    let rest = ttl.strip_prefix(&prefix).unwrap_or_else(|| panic!("unexpected timetolive output: {ttl:?}"));
    let (remaining, keys) = rest.split_once("s), attached keys(").expect("timetolive output");
    let remaining: i64 = remaining.parse().unwrap();
    assert!((50..=60).contains(&remaining), "remaining {remaining}");
    assert_eq!(keys, "[k1 k2])\n");
    let json = server.json(&["lease", "timetolive", &id, "--keys"]);
    assert_eq!(i64_at(&json, "/granted-ttl"), 60);
    let mut keys: Vec<&str> = json["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    keys.sort();
    assert_eq!(keys, [b64(b"k1"), b64(b"k2")]);

    let list = server.ok(&["lease", "list"]);
    assert_eq!(list, format!("found 1 leases\n{id}\n"));

    assert_eq!(server.ok(&["lease", "revoke", &id]), format!("lease {id} revoked\n"));
    assert_eq!(server.ok(&["get", "--prefix", "k"]), "");
    assert_eq!(server.ok(&["lease", "timetolive", &id]), format!("lease {id} already expired\n"));

    // The lease is gone: errors with etcd's message.
    let revoke = server.fails(&["lease", "revoke", &id]);
    assert!(
        revoke.contains("Error: failed to revoke lease (etcdserver: requested lease not found)"),
        "{revoke}"
    );
    let keep = server.fails(&["lease", "keep-alive", "--once", &id]);
    assert!(keep.contains("etcdserver: requested lease not found"), "{keep}");
    let put = server.fails(&["put", "--lease=1234", "k", "v"]);
    assert!(put.contains("etcdserver: requested lease not found"), "{put}");
    let huge = server.fails(&["lease", "grant", "9000000001"]);
    assert!(huge.contains("etcdserver: too large lease TTL"), "{huge}");
}

#[test]
fn watch_from_a_past_revision_replays_history() {
    let Some(server) = EtcdLite::start() else { return };
    server.ok(&["put", "w/a", "1"]); // 2
    server.ok(&["put", "other", "x"]); // 3
    server.ok(&["put", "w/b", "2"]); // 4
    server.ok(&["del", "w/a"]); // 5

    let lines = server.first_lines(&["watch", "--prefix", "w/", "--rev=2"], 9);
    assert_eq!(lines, ["PUT", "w/a", "1", "PUT", "w/b", "2", "DELETE", "w/a", ""]);

    let lines = server.first_lines(&["watch", "other", "--rev=1", "-w", "json"], 1);
    let resp: Value = serde_json::from_str(&lines[0]).expect("a JSON watch response");
    assert_eq!(str_at(&resp, "/Events/0/kv/key"), b64(b"other"));
    assert_eq!(i64_at(&resp, "/Events/0/kv/mod_revision"), 3);
}

#[test]
fn compaction_then_reading_a_compacted_revision_fails() {
    let Some(server) = EtcdLite::start() else { return };
    for v in ["1", "2", "3", "4"] {
        server.ok(&["put", "k", v]); // revisions 2..=5
    }
    assert_eq!(server.ok(&["compaction", "3"]), "compacted revision 3\n");
    let err = server.fails(&["get", "k", "--rev=2"]);
    assert!(err.contains("Error: etcdserver: mvcc: required revision has been compacted"), "{err}");
    assert_eq!(server.ok(&["get", "k", "--rev=3"]), "k\n2\n");
    let again = server.fails(&["compaction", "3"]);
    assert!(again.contains("etcdserver: mvcc: required revision has been compacted"), "{again}");
    assert_eq!(server.ok(&["compaction", "--physical", "5"]), "compacted revision 5\n");
    assert_eq!(server.ok(&["get", "k"]), "k\n4\n");
}

#[test]
fn endpoint_status_in_json() {
    let Some(server) = EtcdLite::start() else { return };
    server.ok(&["put", "k", "v"]);

    let status = server.json(&["endpoint", "status"]);
    let entry = &status[0];
    assert_eq!(str_at(entry, "/Endpoint"), server.endpoint());
    assert_eq!(str_at(entry, "/Status/version"), etcdlite_server::DEFAULT_ETCD_VERSION);
    let member = u64_at(entry, "/Status/header/member_id");
    assert_eq!(u64_at(entry, "/Status/leader"), member, "a single member leads itself");
    assert_eq!(i64_at(entry, "/Status/header/revision"), 2);
    assert_eq!(u64_at(entry, "/Status/raftTerm"), 2);
    assert!(u64_at(entry, "/Status/raftIndex") >= 1);

    // The table form works too.
    let table = server.ok(&["endpoint", "status"]);
    assert!(
        table.starts_with(&format!(
            "{}, {member:x}, {}, ",
            server.endpoint(),
            etcdlite_server::DEFAULT_ETCD_VERSION
        )),
        "{table}"
    );
    // etcdctl 3.4 prints the health line on stderr.
    let health = server.run(&["endpoint", "health"], None);
    assert!(health.status.success(), "{health:?}");
    let health = text(&health.stderr);
    assert!(health.starts_with(&format!("{} is healthy: ", server.endpoint())), "{health}");
}

#[test]
fn member_list_shows_this_member() {
    let Some(server) = EtcdLite::start() else { return };
    let status = server.json(&["endpoint", "status"]);
    let member = u64_at(&status[0], "/Status/header/member_id");

    let list = server.json(&["member", "list"]);
    let members = list["members"].as_array().expect("members");
    assert_eq!(members.len(), 1);
    assert_eq!(u64_at(&members[0], "/ID"), member);
    assert_eq!(str_at(&members[0], "/name"), "default");
    assert_eq!(members[0]["clientURLs"], serde_json::json!([format!("http://{}", server.endpoint())]));
    assert!(list["header"].get("revision").is_none(), "cluster responses carry revision 0: {list}");

    let simple = server.ok(&["member", "list"]);
    let peer = str_at(&members[0], "/peerURLs/0");
    assert_eq!(
        simple,
        format!("{member:x}, started, default, {peer}, http://{}, false\n", server.endpoint())
    );
}

#[test]
fn snapshot_save_writes_the_stream_with_its_sha256_trailer() {
    let Some(server) = EtcdLite::start() else { return };
    server.ok(&["put", "k", "v"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap.db");
    let out = server.ok(&["snapshot", "save", path.to_str().unwrap()]);
    assert_eq!(out, format!("Snapshot saved at {}\n", path.display()));
    check_snapshot_file(&path);

    // The saved file, padding and trailer included, restores into a new store.
    let mut file = File::open(&path).unwrap();
    let restored = etcdlite::Store::restore_snapshot(etcdlite::Options::memory(), &mut file).unwrap();
    let got = restored.get("k", None).unwrap();
    assert_eq!(got.kvs[0].value, b"v");
    assert_eq!(got.header.revision, 2);
}

/// etcd's snapshot stream ends with the SHA-256 of everything before it; etcdctl 3.4
/// writes the whole stream, trailer included.
fn check_snapshot_file(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() > 32, "the snapshot holds no data, only {} bytes", bytes.len());
    let (data, trailer) = bytes.split_at(bytes.len() - 32);
    assert_eq!(Sha256::digest(data).as_slice(), trailer, "the trailer is not the SHA-256 of the data");
}

#[test]
fn endpoint_hashkv_is_stable_for_a_revision() {
    let Some(server) = EtcdLite::start() else { return };
    server.ok(&["put", "a", "1"]); // 2
    server.ok(&["put", "b", "2"]); // 3

    let hash = |args: &[&str]| {
        let mut all = vec!["endpoint", "hashkv"];
        all.extend_from_slice(args);
        let v = server.json(&all);
        assert_eq!(str_at(&v[0], "/Endpoint"), server.endpoint());
        u64_at(&v[0], "/HashKV/hash")
    };
    let at3 = hash(&[]);
    assert_eq!(hash(&[]), at3, "hash of an unchanged store changed");
    server.ok(&["put", "c", "3"]); // 4
    assert_ne!(hash(&[]), at3, "a put did not change the hash");
    assert_eq!(hash(&["--rev=3"]), at3, "the hash at a past revision changed");
}

#[test]
fn alarm_list_is_empty() {
    let Some(server) = EtcdLite::start() else { return };
    assert_eq!(server.ok(&["alarm", "list"]), "");
}

/// etcdctl 3.4 dials these commands' endpoint with the URL itself as the gRPC target, so the
/// HTTP/2 `:authority` is `http://127.0.0.1:PORT`; etcd (grpc-go) serves them all the same.
#[test]
fn endpoints_given_as_urls_serve_status_hashkv_defrag_and_snapshot() {
    let Some(server) = EtcdLite::start_with_url_endpoint() else { return };
    server.ok(&["put", "k", "v"]);

    let status = server.json(&["endpoint", "status"]);
    assert_eq!(str_at(&status[0], "/Endpoint"), server.endpoint());
    assert_eq!(i64_at(&status[0], "/Status/header/revision"), 2);

    let hash = server.json(&["endpoint", "hashkv"]);
    assert_eq!(str_at(&hash[0], "/Endpoint"), server.endpoint());
    let plain = EtcdLite { url: false, ..server };
    let same = plain.json(&["endpoint", "hashkv"]);
    assert_eq!(u64_at(&hash[0], "/HashKV/hash"), u64_at(&same[0], "/HashKV/hash"));
    let server = EtcdLite { url: true, ..plain };

    let out = server.ok(&["defrag"]);
    assert_eq!(out, format!("Finished defragmenting etcd member[{}]\n", server.endpoint()));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap.db");
    let out = server.ok(&["snapshot", "save", path.to_str().unwrap()]);
    assert_eq!(out, format!("Snapshot saved at {}\n", path.display()));
    check_snapshot_file(&path);
}
