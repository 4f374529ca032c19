//! The writers of one cycle: concurrent clients sending puts, compare-and-swap txns,
//! deletes, lease grants, lease puts and revokes over a small shared keyspace, and one
//! compaction now and then, each entering every request in its [`Journal`] until the
//! harness kills the server.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, CompactionOptions, Compare, CompareOp, LeaseGrantOptions, PutOptions, Txn, TxnOp};

use crate::journal::{Journal, Op, Outcome};
use crate::WAIT;

/// The keys every writer picks from: few, so that writers overwrite each other's keys and
/// compare-and-swaps fail as well as succeed.
pub const KEYS: usize = 16;
/// The prefix of every key the writers touch.
pub const PREFIX: &str = "k/";
/// The TTL of every lease: far longer than any run, so that none expires.
pub const LEASE_TTL: i64 = 24 * 3600;
/// At most this many requests per writer per cycle (the kill comes long before).
const MAX_REQUESTS: usize = 60_000;

/// The `n`th of [`KEYS`] keys.
pub fn key(n: usize) -> String {
    format!("{PREFIX}{n:02}")
}

/// What the writers and the harness share during a cycle.
#[derive(Default)]
pub struct Shared {
    /// Set just before the server is killed: errors after it are expected.
    pub killed: AtomicBool,
    /// Acknowledged requests that wrote (changed the keyspace) so far, over all writers.
    pub writes_acked: AtomicUsize,
}

/// Sends `call`, entered in `journal` as `op` by `writer`, and records its answer: `ack`
/// reads the revision and whether it wrote from a success. Answers the success, if any.
async fn record<T>(
    journal: &mut Journal,
    shared: &Shared,
    writer: usize,
    op: Op,
    call: impl Future<Output = Result<T, etcd_client::Error>>,
    ack: impl FnOnce(&T) -> (i64, bool),
) -> Option<T> {
    let index = journal.sent(writer, op);
    let answer = tokio::time::timeout(WAIT, call).await;
    let before_kill = !shared.killed.load(Ordering::SeqCst);
    let (outcome, answer) = match answer {
        Ok(Ok(answer)) => {
            let (revision, wrote) = ack(&answer);
            if wrote {
                shared.writes_acked.fetch_add(1, Ordering::SeqCst);
            }
            (Outcome::Acked { revision, wrote }, Some(answer))
        }
        Ok(Err(e)) => (Outcome::Failed { error: e.to_string(), before_kill }, None),
        Err(_) => (Outcome::Failed { error: format!("no answer within {WAIT:?}"), before_kill }, None),
    };
    journal.answered(index, outcome);
    answer
}

/// A response header's revision.
fn revision(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.expect("etcd answers a header").revision()
}

/// One writer's cycle: what it needs to make requests no other writer makes.
pub struct Writer {
    pub client: Client,
    pub index: usize,
    pub cycle: u64,
    pub rng: fastrand::Rng,
    pub shared: Arc<Shared>,
}

impl Writer {
    /// Sends requests one after another until the server is killed (or one fails), and
    /// answers what it sent.
    pub async fn run(mut self) -> Journal {
        let mut journal = Journal::default();
        // Leases this writer was granted and has not sent a revoke for: only these get
        // keys attached or revoked, so no request fails for a reason of the workload's own.
        let mut leases: Vec<i64> = Vec::new();
        for n in 0..MAX_REQUESTS {
            if self.shared.killed.load(Ordering::SeqCst) {
                break;
            }
            let key = key(self.rng.usize(0..KEYS));
            let value = format!("c{}.w{}.{n}", self.cycle, self.index);
            let answered = match self.rng.u32(0..100) {
                0..40 => self.put(&mut journal, key, value, 0).await,
                40..50 if !leases.is_empty() => {
                    let lease = leases[self.rng.usize(0..leases.len())];
                    self.put(&mut journal, key, value, lease).await
                }
                40..70 => self.compare_and_swap(&mut journal, key, value).await,
                70..80 => self.delete(&mut journal, key).await,
                80..92 => {
                    // Unique over the run: the cycle, the writer and the request number.
                    let lease = ((self.cycle as i64 + 1) << 24) | ((self.index as i64) << 16) | n as i64;
                    let granted = self.grant(&mut journal, lease).await;
                    if granted {
                        leases.push(lease);
                    }
                    granted
                }
                _ if !leases.is_empty() => {
                    let lease = leases.swap_remove(self.rng.usize(0..leases.len()));
                    self.revoke(&mut journal, lease).await
                }
                _ => self.put(&mut journal, key, value, 0).await,
            };
            if !answered {
                break;
            }
        }
        journal
    }

    async fn put(&mut self, journal: &mut Journal, key: String, value: String, lease: i64) -> bool {
        let options = (lease != 0).then(|| PutOptions::new().with_lease(lease));
        let call = self.client.put(key.clone(), value.clone(), options);
        let op = Op::Put { key, value, lease };
        record(journal, &self.shared, self.index, op, call, |r| (revision(r.header()), true)).await.is_some()
    }

    /// Reads `key`'s mod revision, then puts `value` if it is still that.
    async fn compare_and_swap(&mut self, journal: &mut Journal, key: String, value: String) -> bool {
        let Ok(Ok(read)) = tokio::time::timeout(WAIT, self.client.get(key.clone(), None)).await else {
            return false;
        };
        let expected = read.kvs().first().map_or(0, |kv| kv.mod_revision());
        let txn = Txn::new()
            .when([Compare::mod_revision(key.clone(), CompareOp::Equal, expected)])
            .and_then([TxnOp::put(key.clone(), value.clone(), None)]);
        let call = self.client.txn(txn);
        let op = Op::Cas { key, expected, value };
        record(journal, &self.shared, self.index, op, call, |r| (revision(r.header()), r.succeeded()))
            .await
            .is_some()
    }

    async fn delete(&mut self, journal: &mut Journal, key: String) -> bool {
        let call = self.client.delete(key.clone(), None);
        let op = Op::Delete { key };
        record(journal, &self.shared, self.index, op, call, |r| (revision(r.header()), r.deleted() > 0))
            .await
            .is_some()
    }

    async fn grant(&mut self, journal: &mut Journal, lease: i64) -> bool {
        let call = self.client.lease_grant(LEASE_TTL, Some(LeaseGrantOptions::new().with_id(lease)));
        let op = Op::Grant { lease, ttl: LEASE_TTL };
        record(journal, &self.shared, self.index, op, call, |r| (revision(r.header()), false)).await.is_some()
    }

    async fn revoke(&mut self, journal: &mut Journal, lease: i64) -> bool {
        let call = self.client.lease_revoke(lease);
        let op = Op::Revoke { lease };
        record(journal, &self.shared, self.index, op, call, |r| (revision(r.header()), false)).await.is_some()
    }
}

/// A compaction to send `after` the writers start, unless the server is killed first.
#[derive(Clone, Copy, Debug)]
pub struct PlannedCompaction {
    pub after: Duration,
    pub revision: i64,
    pub physical: bool,
}

/// Sends `planned` (as writer `index`) unless the kill comes first.
pub async fn compact(
    mut client: Client,
    index: usize,
    planned: PlannedCompaction,
    shared: Arc<Shared>,
) -> Journal {
    let mut journal = Journal::default();
    tokio::time::sleep(planned.after).await;
    if shared.killed.load(Ordering::SeqCst) {
        return journal;
    }
    let options = planned.physical.then(|| CompactionOptions::new().with_physical());
    let call = client.compact(planned.revision, options);
    let op = Op::Compact { revision: planned.revision, physical: planned.physical };
    record(&mut journal, &shared, index, op, call, |r| (revision(r.header()), false)).await;
    journal
}
