//! The check fails when it should: each test writes to a memory server, hands the check a
//! journal or a baseline that the store contradicts in one way, and expects that way
//! reported. (The memory engine's restart, in `main.rs`, is the end-to-end control.)

use etcd_client::Client;
use tempfile::TempDir;

use crate::check::{self, Baseline, Kv, State, Violation};
use crate::journal::{Entry, Op, Outcome};
use crate::process::EtcdLiteChild;
use crate::{connect, START, WAIT};

/// A memory server, its log's directory, and a client of it.
async fn memory_server() -> (EtcdLiteChild, TempDir, Client) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = EtcdLiteChild::start("http", &["--engine", "memory"], &dir.path().join("server.log"), START)
        .unwrap_or_else(|log| panic!("the memory server did not start:\n{log}"));
    let client = connect(server.port()).await;
    (server, dir, client)
}

/// Puts `value` at `key` and answers the revision.
async fn put(client: &mut Client, key: &str, value: &str) -> i64 {
    let put = tokio::time::timeout(WAIT, client.put(key, value, None)).await.expect("an answer");
    put.expect("a put").header().expect("a header").revision()
}

/// `op`, acknowledged at `revision`.
fn acked(op: Op, revision: i64, wrote: bool) -> Entry {
    Entry { writer: 0, op, outcome: Outcome::Acked { revision, wrote } }
}

fn put_op(key: &str, value: &str) -> Op {
    Op::Put { key: key.into(), value: value.into(), lease: 0 }
}

/// The check's violations; panics if it passes.
async fn violations(client: &mut Client, before: &Baseline, entries: &[Entry]) -> Vec<Violation> {
    match check::check(client, before, entries).await {
        Ok(found) => panic!("the check passed: {found:?}"),
        Err(violations) => violations,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_no_one_sent() {
    let (_server, _dir, mut client) = memory_server().await;
    let revision = put(&mut client, "k/00", "c0.w0.0").await;
    put(&mut client, "k/01", "stray").await;
    let found =
        violations(&mut client, &Baseline::empty(), &[acked(put_op("k/00", "c0.w0.0"), revision, true)])
            .await;
    assert!(
        found.iter().any(|v| matches!(v, Violation::NeverSent(what) if what.contains("stray"))),
        "{found:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_no_one_sent() {
    let (_server, _dir, mut client) = memory_server().await;
    let revision = put(&mut client, "k/00", "c0.w0.0").await;
    tokio::time::timeout(WAIT, client.delete("k/00", None)).await.expect("an answer").expect("a delete");
    // A delete of the key was sent, but acknowledged as deleting nothing, earlier.
    let journal = [
        acked(Op::Delete { key: "k/00".into() }, revision - 1, false),
        acked(put_op("k/00", "c0.w0.0"), revision, true),
    ];
    let found = violations(&mut client, &Baseline::empty(), &journal).await;
    assert!(
        found.iter().any(|v| matches!(v, Violation::NeverSent(what) if what.contains("Delete"))),
        "{found:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_not_at_its_acknowledged_revision() {
    let (_server, _dir, mut client) = memory_server().await;
    let first = put(&mut client, "k/00", "c0.w0.0").await;
    let second = put(&mut client, "k/00", "c0.w0.1").await;
    // The answers swapped: each put claims the other's revision.
    let journal =
        [acked(put_op("k/00", "c0.w0.0"), second, true), acked(put_op("k/00", "c0.w0.1"), first, true)];
    let found = violations(&mut client, &Baseline::empty(), &journal).await;
    assert!(found.iter().any(|v| matches!(v, Violation::Lost(_))), "{found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_compare_and_swap_whose_compare_held() {
    let (_server, _dir, mut client) = memory_server().await;
    let revision = put(&mut client, "k/00", "c0.w0.0").await;
    let cas = Op::Cas { key: "k/00".into(), expected: revision, value: "c0.w0.1".into() };
    let journal = [acked(put_op("k/00", "c0.w0.0"), revision, true), acked(cas, revision, false)];
    let found = violations(&mut client, &Baseline::empty(), &journal).await;
    assert!(found.iter().any(|v| matches!(v, Violation::Lost(what) if what.contains("Cas"))), "{found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_acknowledged_but_not_in_effect() {
    let (_server, _dir, mut client) = memory_server().await;
    let first = put(&mut client, "k/00", "c0.w0.0").await;
    let second = put(&mut client, "k/00", "c0.w0.1").await;
    let journal = [
        acked(put_op("k/00", "c0.w0.0"), first, true),
        acked(put_op("k/00", "c0.w0.1"), second, true),
        acked(Op::Compact { revision: second, physical: false }, second, false),
    ];
    let found = violations(&mut client, &Baseline::empty(), &journal).await;
    assert_eq!(
        found,
        [Violation::WentBack(format!(
            "revision {first} is readable, but compaction at {second} was acknowledged or found before"
        ))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_grant_acknowledged_but_not_alive() {
    let (_server, _dir, mut client) = memory_server().await;
    let journal = [acked(Op::Grant { lease: 7, ttl: 60 }, 1, false)];
    let found = violations(&mut client, &Baseline::empty(), &journal).await;
    assert_eq!(found, [Violation::Lost("acknowledged grant of lease 7".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_before_the_cycle_that_changed() {
    let (_server, _dir, mut client) = memory_server().await;
    let revision = put(&mut client, "k/00", "c0.w0.0").await;
    let kv = Kv {
        key: "k/00".into(),
        value: "c0.w0.9".into(),
        create_revision: revision,
        mod_revision: revision,
        version: 1,
        lease: 0,
    };
    let before = Baseline { revision, state: State::from([(kv.key.clone(), kv)]), compacted: 0 };
    let found = violations(&mut client, &before, &[]).await;
    assert!(
        found.iter().any(|v| matches!(v, Violation::Lost(what) if what.contains("changed"))),
        "{found:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_behind_the_previous_check() {
    let (_server, _dir, mut client) = memory_server().await;
    let revision = put(&mut client, "k/00", "c0.w0.0").await;
    let before = Baseline { revision: revision + 5, state: State::new(), compacted: 0 };
    let found = violations(&mut client, &before, &[acked(put_op("k/00", "c0.w0.0"), revision, true)]).await;
    assert!(found.iter().any(|v| matches!(v, Violation::WentBack(_))), "{found:?}");
}
