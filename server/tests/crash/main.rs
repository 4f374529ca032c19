//! Crash consistency through the server: the `etcdlite` binary on RocksDB and on sled is
//! killed with SIGKILL at a random moment while concurrent clients write (puts,
//! compare-and-swap txns, deletes, lease grants, lease puts, revokes, a compaction now and
//! then), restarted on the same data, and checked against every request the clients sent
//! and every answer they got (`check.rs` says what is checked and why it may be asserted).
//! The data directory is kept over all the cycles of an engine, so history accumulates and
//! each check also covers what the cycles before left.
//!
//! Each engine runs `ETCDLITE_CRASH_CYCLES` cycles (50 by default; `scripts/crash-long`
//! runs 1,000). The seed of the random choices (the kill's moment, the compaction, each
//! writer's requests) is printed, and `ETCDLITE_CRASH_SEED` sets it: the same seed makes the
//! same choices, though the interleaving of the writers, and so what each cycle finds, is
//! the scheduler's. The memory engine, which keeps nothing over a restart, is the negative
//! control: the same harness must report its lost writes.
//!
//! Every wait is bounded: each request and read by [`WAIT`], each start by [`START`], and
//! every loop by a count. Only loopback ports are used; temp dirs go when the test ends.

#[path = "../common/process.rs"]
#[allow(dead_code)] // the etcdctl helpers
mod process;

mod check;
mod check_reports;
mod journal;
mod workload;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions};
use tempfile::TempDir;

use check::{Baseline, Found, Violation};
use journal::Entry;
use process::EtcdLiteChild;
use workload::{PlannedCompaction, Shared, Writer};

/// The longest one request, read or connection may take.
pub const WAIT: Duration = Duration::from_secs(10);
/// The longest the server may take to listen after a start.
const START: Duration = Duration::from_secs(30);
/// Clients writing at once.
const WRITERS: usize = 4;
/// The kill comes between these many milliseconds after the writers start, once at least
/// one write is acknowledged; log-uniform, so a kill within 2 to 20 ms is as likely as one
/// within 40 to 400 ms.
const KILL_AFTER_MS: (f64, f64) = (2.0, 400.0);
/// How many of the server's last log lines a failure shows.
const LOG_END: usize = 40;
/// Cycles per engine unless `ETCDLITE_CRASH_CYCLES` says otherwise.
const DEFAULT_CYCLES: u64 = 50;

/// The number of cycles: `ETCDLITE_CRASH_CYCLES`, else [`DEFAULT_CYCLES`].
fn cycles() -> u64 {
    match std::env::var("ETCDLITE_CRASH_CYCLES") {
        Ok(n) => n.parse().expect("ETCDLITE_CRASH_CYCLES is a number"),
        Err(_) => DEFAULT_CYCLES,
    }
}

/// The seed: `ETCDLITE_CRASH_SEED`, else a new one.
fn seed() -> u64 {
    match std::env::var("ETCDLITE_CRASH_SEED") {
        Ok(n) => n.parse().expect("ETCDLITE_CRASH_SEED is a number"),
        Err(_) => fastrand::u64(..),
    }
}

/// A random source for one part (`part`) of one cycle, so each is the same for a seed
/// whatever the others drew.
fn rng(seed: u64, cycle: u64, part: u64) -> fastrand::Rng {
    fastrand::Rng::with_seed(
        seed ^ cycle.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ part.wrapping_mul(0xff51_afd7_ed55_8ccd),
    )
}

/// An etcd-client client of the server on `port`.
async fn connect(port: u16) -> Client {
    let options = ConnectOptions::new().with_connect_timeout(WAIT);
    let connecting = Client::connect([format!("127.0.0.1:{port}")], Some(options));
    tokio::time::timeout(WAIT, connecting).await.expect("a connection within WAIT").expect("a connection")
}

/// One engine's server and data over the cycles, and what the last check left.
struct Harness {
    seed: u64,
    args: Vec<String>,
    log: PathBuf,
    server: EtcdLiteChild,
    baseline: Baseline,
    dir: TempDir,
}

/// The random choices of one cycle.
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// How long after the writers start the kill comes (once a write is acknowledged).
    kill_after: Duration,
    compaction: Option<PlannedCompaction>,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kill after {:.1?}, ", self.kill_after)?;
        match self.compaction {
            None => write!(f, "no compaction"),
            Some(PlannedCompaction { after, revision, physical }) => {
                let physical = if physical { " (physical)" } else { "" };
                write!(f, "compaction at {revision}{physical} sent after {after:.1?}")
            }
        }
    }
}

/// What one cycle did and found.
struct Report {
    cycle: u64,
    plan: Plan,
    acked: usize,
    unanswered: usize,
    found: Found,
    took: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Report { cycle, plan, acked, unanswered, found, took } = self;
        write!(
            f,
            "cycle {cycle} ({plan}): {acked} requests acknowledged, {unanswered} not; found revision {}, \
             compacted at {}, {} events in the cycle ({} revisions by unanswered requests), {} leases alive; \
             {took:.2?}",
            found.revision,
            found.compacted,
            found.events,
            found.unanswered_applied,
            found.leases.len(),
        )
    }
}

/// A cycle whose check found violations.
struct Failure {
    plan: Plan,
    violations: Vec<Violation>,
}

impl Harness {
    /// Starts `engine` on a new data directory (none for memory).
    fn start(engine: &str, seed: u64) -> Harness {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut args = vec!["--engine".to_owned(), engine.to_owned()];
        if engine != "memory" {
            args.extend(["--data-dir".to_owned(), dir.path().join("data").display().to_string()]);
        }
        let log = dir.path().join("server.log");
        let server = EtcdLiteChild::start("http", &arg_refs(&args), &log, START)
            .unwrap_or_else(|log| panic!("{engine} did not start; its log:\n{log}"));
        Harness { seed, args, log, server, baseline: Baseline::empty(), dir }
    }

    /// Writes until a kill at a random moment, restarts and checks. On success the
    /// restarted server, with its leases revoked, is the next cycle's.
    async fn cycle(&mut self, cycle: u64) -> Result<Report, Failure> {
        let started = Instant::now();
        let mut choices = rng(self.seed, cycle, 0);
        let (lo, hi) = KILL_AFTER_MS;
        let kill_after = Duration::from_secs_f64((lo.ln() + choices.f64() * (hi / lo).ln()).exp() / 1000.0);
        let plan = Plan { kill_after, compaction: self.plan_compaction(&mut choices, kill_after) };
        let fail = |violations| Failure { plan, violations };

        let entries = self.write_until_killed(cycle, plan).await;
        let acked = entries.iter().filter(|e| e.ack().is_some()).count();

        self.server = EtcdLiteChild::start("http", &arg_refs(&self.args), &self.log, START)
            .map_err(|log| fail(vec![Violation::DidNotOpen(log)]))?;
        let mut client = connect(self.server.port()).await;
        let found = check::check(&mut client, &self.baseline, &entries).await.map_err(fail)?;
        self.baseline = settle(&mut client, &found).await.map_err(fail)?;
        Ok(Report { cycle, plan, acked, unanswered: entries.len() - acked, found, took: started.elapsed() })
    }

    /// Half the cycles compact at a revision the previous check read (so the cycle's own
    /// revisions stay readable), sent while the writers write.
    fn plan_compaction(
        &self,
        choices: &mut fastrand::Rng,
        kill_after: Duration,
    ) -> Option<PlannedCompaction> {
        let Baseline { revision, compacted, .. } = self.baseline;
        (choices.bool() && revision > compacted).then(|| PlannedCompaction {
            after: kill_after.mul_f64(choices.f64()),
            revision: choices.i64(compacted + 1..=revision),
            physical: choices.bool(),
        })
    }

    /// Runs the writers (and the compaction), kills the server as `plan` says, and answers
    /// every request they sent.
    async fn write_until_killed(&mut self, cycle: u64, plan: Plan) -> Vec<Entry> {
        let shared = Arc::new(Shared::default());
        let port = self.server.port();
        let mut tasks = Vec::new();
        for index in 0..WRITERS {
            let writer = Writer {
                client: connect(port).await,
                index,
                cycle,
                rng: rng(self.seed, cycle, 1 + index as u64),
                shared: shared.clone(),
            };
            tasks.push(tokio::spawn(writer.run()));
        }
        if let Some(planned) = plan.compaction {
            let client = connect(port).await;
            tasks.push(tokio::spawn(workload::compact(client, WRITERS, planned, shared.clone())));
        }
        tokio::time::sleep(plan.kill_after).await;
        let first_ack = Instant::now();
        while shared.writes_acked.load(Ordering::SeqCst) == 0 {
            assert!(
                first_ack.elapsed() < WAIT,
                "no write was acknowledged within {WAIT:?}:\n{}",
                self.server.log()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        shared.killed.store(true, Ordering::SeqCst);
        self.server.kill();
        let mut entries = Vec::new();
        for task in tasks {
            let journal =
                tokio::time::timeout(2 * WAIT, task).await.expect("writers stop").expect("a writer");
            entries.extend(journal.entries);
        }
        entries
    }
}

impl Harness {
    /// With `ETCDLITE_CRASH_KEEP` set, keeps the data and the server's log past the test
    /// for a post-mortem; answers where, or how to keep them.
    fn keep_on_failure(&mut self) -> String {
        if std::env::var_os("ETCDLITE_CRASH_KEEP").is_none() {
            return "(set ETCDLITE_CRASH_KEEP=1 to keep the data dir and log of a failure)".into();
        }
        self.server.kill();
        self.dir.disable_cleanup(true);
        format!("the data dir and log are kept in {}", self.dir.path().display())
    }
}

/// Revokes the leases `found` alive (so none piles up over the cycles) and reads the
/// store as the next cycle's baseline.
async fn settle(client: &mut Client, found: &Found) -> Result<Baseline, Vec<Violation>> {
    for &lease in &found.leases {
        tokio::time::timeout(WAIT, client.lease_revoke(lease)).await.expect("a revoke within WAIT").map_err(
            |e| vec![Violation::Inconsistent(format!("revoking lease {lease} after the check: {e}"))],
        )?;
    }
    let (revision, state) = check::scan(client, 0).await.map_err(|v| vec![v])?;
    Ok(Baseline { revision, state, compacted: found.compacted })
}

fn arg_refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Runs the cycles on `engine`, failing with the seed, the cycle and every violation at
/// the first cycle that finds any.
async fn every_acknowledged_write_survives_kills(engine: &str) {
    let (cycles, seed) = (cycles(), seed());
    eprintln!("{engine}: {cycles} cycles, seed {seed} (ETCDLITE_CRASH_SEED={seed} makes the same choices)");
    let started = Instant::now();
    let mut harness = Harness::start(engine, seed);
    for cycle in 0..cycles {
        match harness.cycle(cycle).await {
            Ok(report) => eprintln!("{engine} {report}"),
            Err(Failure { plan, violations }) => {
                let list: Vec<String> = violations.iter().take(20).map(|v| format!("- {v}")).collect();
                let log = harness.server.log();
                let lines: Vec<&str> = log.lines().collect();
                let log_end = lines[lines.len().saturating_sub(LOG_END)..].join("\n");
                panic!(
                    "{engine}, seed {seed}, cycle {cycle} ({plan}): {} violation(s):\n{}\n{}\nthe end of the \
                     server's log:\n{}",
                    violations.len(),
                    list.join("\n"),
                    harness.keep_on_failure(),
                    log_end,
                );
            }
        }
    }
    let took = started.elapsed();
    eprintln!("{engine}: {cycles} cycles passed in {took:.1?} ({:.2?} a cycle)", took / cycles.max(1) as u32);
}

#[cfg(feature = "rocksdb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocksdb_keeps_every_acknowledged_write_through_kills_mid_write() {
    every_acknowledged_write_survives_kills("rocksdb").await;
}

#[cfg(feature = "sled")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_keeps_every_acknowledged_write_through_kills_mid_write() {
    every_acknowledged_write_survives_kills("sled").await;
}

/// The negative control: a memory store restarts empty, so the check must report
/// acknowledged writes lost (the kill waits for one, so there is always one to lose); a
/// check that passed it would prove nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_engine_loses_acknowledged_writes_and_the_check_says_so() {
    let seed = seed();
    let mut harness = Harness::start("memory", seed);
    let violations = match harness.cycle(0).await {
        Ok(report) => panic!("seed {seed}: the check passed a restarted memory store: {report}"),
        Err(failure) => failure.violations,
    };
    assert!(
        violations.iter().any(|v| matches!(v, Violation::Lost(_))),
        "seed {seed}: expected acknowledged writes reported lost, got {violations:?}"
    );
}
