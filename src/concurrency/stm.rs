//! Software transactional memory over etcd: clientv3's `concurrency.STM`, with its four
//! isolation levels and their read and commit rules.
//!
//! An STM transaction reads keys into a read set and buffers its writes in a write set;
//! its commit is one etcd txn whose compares are the conflicts the isolation level checks
//! and whose success branch is the write set. A commit that conflicts writes nothing, and
//! the transaction is run again from a fresh state.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::client::{
    Client, Compare, CompareOp, GetOptions, KeyValue, PutOptions, Txn, TxnOp, TxnOpResponse, TxnResponse,
};

use super::{Error, Result};

/// How an STM transaction's reads see other writers, and what its commit checks
/// (clientv3's `Isolation`, with its rules).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Isolation {
    /// Serializable, and write conflicts are conflicts too: as [`Serializable`], and the
    /// commit also fails when a key the attempt writes, read or not, was changed after the
    /// attempt's first read. The attempt behaves as if it ran entirely at that revision.
    /// The default.
    ///
    /// [`Serializable`]: Isolation::Serializable
    #[default]
    SerializableSnapshot,
    /// Every read of an attempt is taken at the revision of its first read, so the
    /// attempt sees one snapshot; the commit fails when a key read changed since (its mod
    /// revision differs). A key only written is not checked: the commit overwrites whatever
    /// it holds. A commit that conflicts brings back the current values of the keys read,
    /// and the next attempt starts from them without reading them again.
    Serializable,
    /// A key is read at the latest revision when the attempt first reads it, and reads
    /// again return that same value; the commit fails when a key read changed since. Keys
    /// read at different times may come from different revisions, which the commit's
    /// checks still make consistent.
    RepeatableReads,
    /// A key is read at the latest revision when the attempt first reads it (later reads of
    /// it in the same attempt return that value), and the commit checks nothing: it never
    /// conflicts and writes the write set over whatever the keys hold.
    ///
    /// It therefore does not keep invariants under concurrency: two transactions that
    /// read, modify and write the same keys at the same time can both commit, and one's
    /// update is lost (concurrent transfers between accounts can change their total). Use
    /// it for a single writer, or for writes that do not depend on what was read.
    ReadCommitted,
}

impl Isolation {
    /// The levels whose reads are pinned to the revision of the attempt's first read.
    fn pins_reads(self) -> bool {
        matches!(self, Isolation::SerializableSnapshot | Isolation::Serializable)
    }
}

/// The options of an STM transaction: its [`Isolation`], the keys to prefetch, and a bound
/// on its conflicts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StmOptions {
    isolation: Isolation,
    prefetch: Vec<Vec<u8>>,
    max_conflicts: Option<usize>,
}

impl StmOptions {
    /// Defaults: [`Isolation::SerializableSnapshot`], no prefetch, retried until it
    /// commits (as clientv3 does).
    pub fn new() -> Self {
        Self::default()
    }

    /// The isolation level.
    pub fn with_isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Keys every attempt reads first, all in one request, before the transaction's own
    /// reads: for the keys it reads anyway, this saves a round trip per key. Adds to the
    /// keys given before.
    pub fn with_prefetch<K: Into<Vec<u8>>>(mut self, keys: impl IntoIterator<Item = K>) -> Self {
        self.prefetch.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Gives up with [`Error::Conflict`] once `conflicts` attempts have conflicted,
    /// instead of retrying for as long as it takes. Zero is refused when committing.
    pub fn with_max_conflicts(mut self, conflicts: usize) -> Self {
        self.max_conflicts = Some(conflicts);
        self
    }

    /// The isolation level.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }
}

/// What [`Stm::commit`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Commit {
    /// The write set is written: the answer to the commit's txn.
    Committed(TxnResponse),
    /// Another writer changed what the attempt depends on; nothing was written, and the
    /// [`Stm`] is ready for the next attempt.
    Conflict,
}

/// The future an STM's apply function returns: it borrows the [`Stm`] it works on.
pub type StmFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Runs `apply` as a software transaction until it commits, and returns its value with the
/// answer to the commit's txn: clientv3's `NewSTM`.
///
/// Each attempt starts from a fresh state (empty read and write sets, after the prefetch
/// of [`StmOptions::with_prefetch`]), runs `apply`, then commits; a commit that conflicts
/// starts another attempt, so `apply` must be safe to run again (its effects outside the
/// [`Stm`] happen once per attempt). An error from `apply` ends the transaction with that
/// error and nothing written. To abandon it (clientv3's `WithAbortContext`), drop the
/// future, for instance with a timeout.
///
/// The future `apply` returns may borrow the [`Stm`] but not the caller's locals: move
/// what it needs into it (clones, or an `Arc`), as with a spawned task.
///
/// ```
/// use etcdlite::client::Client;
/// use etcdlite::concurrency::{run_stm, StmOptions};
/// use etcdlite::{Options, Store};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), etcdlite::concurrency::Error> {
/// let mut client = Client::embedded(Store::open(Options::memory())?, None).await?;
/// client.put("accounts/alice", "100", None).await?;
/// client.put("accounts/bob", "100", None).await?;
///
/// // Moves 30 from alice to bob, retried until no other writer got in the way.
/// let (moved, resp) = run_stm(&client, StmOptions::new(), |stm| {
///     Box::pin(async move {
///         let balance = |value: Option<Vec<u8>>| {
///             value.and_then(|v| String::from_utf8(v).ok()?.parse::<i64>().ok()).unwrap_or(0)
///         };
///         let alice = balance(stm.get("accounts/alice").await?);
///         let bob = balance(stm.get("accounts/bob").await?);
///         let amount = alice.min(30);
///         stm.put("accounts/alice", (alice - amount).to_string());
///         stm.put("accounts/bob", (bob + amount).to_string());
///         Ok(amount)
///     })
/// })
/// .await?;
/// assert_eq!(moved, 30);
/// assert!(resp.succeeded());
///
/// let bob = client.get("accounts/bob", None).await?;
/// assert_eq!(bob.kvs()[0].value(), b"130");
/// # Ok(()) }
/// ```
pub async fn run_stm<T, F>(client: &Client, options: StmOptions, mut apply: F) -> Result<(T, TxnResponse)>
where
    F: for<'a> FnMut(&'a mut Stm) -> StmFuture<'a, T>,
{
    check_bound(&options)?;
    let mut stm = Stm::new(client, options);
    loop {
        let value = apply(&mut stm).await?;
        if let Commit::Committed(resp) = stm.commit().await? {
            return Ok((value, resp));
        }
    }
}

/// A key as the attempt read it: what it held, and the store's revision at the read.
#[derive(Clone, Debug)]
struct Read {
    kv: Option<KeyValue>,
    revision: i64,
}

impl Read {
    /// The key's mod revision, 0 when it did not exist (what a compare sees for a missing
    /// key).
    fn mod_revision(&self) -> i64 {
        self.kv.as_ref().map_or(0, KeyValue::mod_revision)
    }
}

/// A buffered write.
#[derive(Clone, Debug)]
enum Write {
    Put { value: Vec<u8>, options: Option<PutOptions> },
    Delete,
}

/// A software transaction, attempt by attempt: reads through [`get`](Stm::get) and
/// [`rev`](Stm::rev), buffers writes through [`put`](Stm::put) and [`del`](Stm::del), and
/// [`commit`](Stm::commit)s them in one txn if the [`Isolation`] level finds no conflict.
/// [`run_stm`] drives it with a closure; the manual form is a loop:
///
/// ```
/// use etcdlite::client::Client;
/// use etcdlite::concurrency::{Commit, Isolation, Stm, StmOptions};
/// use etcdlite::{Options, Store};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), etcdlite::concurrency::Error> {
/// let client = Client::embedded(Store::open(Options::memory())?, None).await?;
/// let options = StmOptions::new().with_isolation(Isolation::RepeatableReads);
/// let mut stm = Stm::new(&client, options);
/// let resp = loop {
///     let visits = stm.get("visits").await?;
///     let count = visits.and_then(|v| String::from_utf8(v).ok()?.parse::<u64>().ok()).unwrap_or(0);
///     stm.put("visits", (count + 1).to_string());
///     match stm.commit().await? {
///         Commit::Committed(resp) => break resp,
///         // Nothing was written and the state is reset: run the attempt again.
///         Commit::Conflict => continue,
///     }
/// };
/// assert!(resp.succeeded());
/// # Ok(()) }
/// ```
///
/// A dropped `commit` future may or may not have written; the attempt's state is left as
/// it was, and [`reset`](Stm::reset) starts the transaction over.
#[derive(Debug)]
pub struct Stm {
    client: Client,
    options: StmOptions,
    reads: BTreeMap<Vec<u8>, Read>,
    writes: BTreeMap<Vec<u8>, Write>,
    /// For the pinned levels: the read set as a conflicting commit read it again, taken
    /// into the next attempt's read set key by key as it asks for them, so a retry costs
    /// no reads of those keys.
    stash: BTreeMap<Vec<u8>, Read>,
    /// For the pinned levels: the revision of the attempt's first read, where its other
    /// reads are taken.
    pinned: Option<i64>,
    prefetched: bool,
    conflicts: usize,
}

impl Stm {
    /// A transaction over `client` (cloned: the clone is cheap), with nothing read or
    /// written yet.
    pub fn new(client: &Client, options: StmOptions) -> Stm {
        Stm {
            client: client.clone(),
            options,
            reads: BTreeMap::new(),
            writes: BTreeMap::new(),
            stash: BTreeMap::new(),
            pinned: None,
            prefetched: false,
            conflicts: 0,
        }
    }

    /// The value of `key`, `None` when it does not exist. A key this attempt wrote reads
    /// as written (`None` once deleted); otherwise the first read of a key adds it to the
    /// read set, at the revision the [`Isolation`] level says, and later reads return the
    /// same value. Where clientv3's `Get` gives `""` for a missing key, this gives `None`.
    pub async fn get(&mut self, key: impl Into<Vec<u8>>) -> Result<Option<Vec<u8>>> {
        let key = key.into();
        self.prefetch().await?;
        if let Some(write) = self.writes.get(&key) {
            return Ok(match write {
                Write::Put { value, .. } => Some(value.clone()),
                Write::Delete => None,
            });
        }
        let read = self.read(key).await?;
        Ok(read.kv.as_ref().map(|kv| kv.value().to_vec()))
    }

    /// The mod revision of `key` as the read set has it (reading the key into it if
    /// needed), 0 when it does not exist. Writes of this attempt do not change it: it is
    /// the revision the commit compares against.
    pub async fn rev(&mut self, key: impl Into<Vec<u8>>) -> Result<i64> {
        self.prefetch().await?;
        Ok(self.read(key.into()).await?.mod_revision())
    }

    /// Puts `key` = `value` at commit; reads of `key` in this attempt see `value`.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.writes.insert(key.into(), Write::Put { value: value.into(), options: None });
    }

    /// Puts `key` = `value` with `options` (a lease, say) at commit; reads of `key` in
    /// this attempt see `value`.
    pub fn put_with_options(
        &mut self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        options: PutOptions,
    ) {
        self.writes.insert(key.into(), Write::Put { value: value.into(), options: Some(options) });
    }

    /// Deletes `key` at commit; reads of `key` in this attempt see it missing.
    pub fn del(&mut self, key: impl Into<Vec<u8>>) {
        self.writes.insert(key.into(), Write::Delete);
    }

    /// Commits the attempt: one txn that writes the write set if the compares of the
    /// [`Isolation`] level hold. On [`Commit::Conflict`] nothing was written and the state
    /// is reset for the next attempt; with [`StmOptions::with_max_conflicts`], the
    /// conflict that reaches the bound is [`Error::Conflict`] instead.
    pub async fn commit(&mut self) -> Result<Commit> {
        check_bound(&self.options)?;
        self.prefetch().await?;
        let pinned = self.options.isolation.pins_reads();
        let writes = self.writes.iter().map(|(key, write)| match write {
            Write::Put { value, options } => TxnOp::put(key.clone(), value.clone(), options.clone()),
            Write::Delete => TxnOp::delete(key.clone(), None),
        });
        let mut txn = Txn::new().when(self.conflict_checks()).and_then(writes.collect::<Vec<_>>());
        // The pinned levels read their read set again in the failure branch: a retry then
        // starts with current values, and the conflict costs no extra round trip.
        let rereads: Vec<Vec<u8>> = if pinned { self.reads.keys().cloned().collect() } else { Vec::new() };
        if pinned {
            txn = txn.or_else(rereads.iter().map(|key| TxnOp::get(key.clone(), None)).collect::<Vec<_>>());
        }
        let mut resp = self.client.txn(txn).await?;
        if resp.succeeded() {
            self.reset();
            return Ok(Commit::Committed(resp));
        }
        self.conflicts += 1;
        if pinned {
            self.stash = reads_of(rereads, &mut resp)?;
        }
        self.next_attempt();
        match self.options.max_conflicts {
            Some(max) if self.conflicts >= max => {
                let conflicts = self.conflicts;
                self.reset();
                Err(Error::Conflict(conflicts))
            }
            _ => Ok(Commit::Conflict),
        }
    }

    /// Abandons the transaction: forgets its reads, writes and conflicts, so the next call
    /// starts a new one.
    pub fn reset(&mut self) {
        self.next_attempt();
        self.stash.clear();
        self.conflicts = 0;
    }

    /// How many attempts of the current transaction have conflicted.
    pub fn conflicts(&self) -> usize {
        self.conflicts
    }

    /// The transaction's options.
    pub fn options(&self) -> &StmOptions {
        &self.options
    }

    /// Empties the read and write sets; for the pinned levels, the next first read pins
    /// the reads again.
    fn next_attempt(&mut self) {
        self.reads.clear();
        self.writes.clear();
        self.pinned = None;
        self.prefetched = false;
    }

    /// Reads the prefetch keys, once per attempt, before anything else is read or
    /// committed: clientv3 reads them before running the apply function.
    async fn prefetch(&mut self) -> Result<()> {
        if self.prefetched || self.options.prefetch.is_empty() {
            return Ok(());
        }
        let keys = self.options.prefetch.clone();
        self.read_all(keys).await?;
        self.prefetched = true;
        Ok(())
    }

    /// `key` as the read set has it, read into it first if needed.
    async fn read(&mut self, key: Vec<u8>) -> Result<&Read> {
        self.read_all(vec![key.clone()]).await?;
        self.reads.get(&key).ok_or_else(|| {
            crate::client::Error::Internal("an STM read came back without its key".into()).into()
        })
    }

    /// Adds `keys` to the read set, those it lacks read in one txn.
    async fn read_all(&mut self, keys: Vec<Vec<u8>>) -> Result<()> {
        let pinned = self.options.isolation.pins_reads();
        let first_read = self.reads.is_empty();
        if pinned {
            for key in &keys {
                if !self.reads.contains_key(key) {
                    if let Some(read) = self.stash.remove(key) {
                        self.reads.insert(key.clone(), read);
                    }
                }
            }
        }
        let mut missing = keys.clone();
        missing.retain(|key| !self.reads.contains_key(key));
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            let options = self.read_options();
            let gets: Vec<TxnOp> =
                missing.iter().map(|key| TxnOp::get(key.clone(), Some(options.clone()))).collect();
            let mut resp = self.client.txn(Txn::new().and_then(gets)).await?;
            self.reads.extend(reads_of(missing, &mut resp)?);
        }
        if pinned && first_read {
            // The attempt's snapshot is where its first read was taken (a stashed read is
            // older than a fresh one, and the commit checks both anyway).
            self.pinned = keys.iter().filter_map(|key| self.reads.get(key)).map(|read| read.revision).min();
        }
        Ok(())
    }

    /// How reads are sent: the pinned levels read at the pinned revision (the first read
    /// at the latest one, linearizable); the others read the member's latest revision.
    fn read_options(&self) -> GetOptions {
        match (self.options.isolation.pins_reads(), self.pinned) {
            (true, Some(revision)) => GetOptions::new().with_revision(revision).with_serializable(),
            (true, None) => GetOptions::new(),
            (false, _) => GetOptions::new().with_serializable(),
        }
    }

    /// The compares of the commit: every key read is unchanged since its read (all levels
    /// but ReadCommitted) and, for SerializableSnapshot, no key written changed after the
    /// attempt's earliest read.
    fn conflict_checks(&self) -> Vec<Compare> {
        if self.options.isolation == Isolation::ReadCommitted {
            return Vec::new();
        }
        let mut compares: Vec<Compare> = self
            .reads
            .iter()
            .map(|(key, read)| Compare::mod_revision(key.clone(), CompareOp::Equal, read.mod_revision()))
            .collect();
        if self.options.isolation == Isolation::SerializableSnapshot {
            // With nothing read, any write stands (clientv3's bound is the same).
            let first = self.reads.values().map(|read| read.revision).min().unwrap_or(i64::MAX - 1);
            compares.extend(
                self.writes.keys().map(|key| Compare::mod_revision(key.clone(), CompareOp::Less, first + 1)),
            );
        }
        compares
    }
}

/// Refuses a bound of zero conflicts, which would give up before trying.
fn check_bound(options: &StmOptions) -> Result<()> {
    if options.max_conflicts == Some(0) {
        return Err(Error::InvalidArgs("an STM's conflict bound must be positive".into()));
    }
    Ok(())
}

/// The reads of `keys` from the responses of `resp`'s branch, one get per key, in order.
fn reads_of(keys: Vec<Vec<u8>>, resp: &mut TxnResponse) -> Result<BTreeMap<Vec<u8>, Read>> {
    let revision = resp.header().map_or(0, |header| header.revision());
    let responses = resp.take_op_responses();
    if responses.len() != keys.len() {
        return Err(crate::client::Error::Internal(format!(
            "an STM read of {} keys got {} answers",
            keys.len(),
            responses.len()
        ))
        .into());
    }
    keys.into_iter()
        .zip(responses)
        .map(|(key, response)| match response {
            TxnOpResponse::Get(mut get) => {
                let kv = get.take_kvs().into_iter().next();
                Ok((key, Read { kv, revision }))
            }
            _ => {
                Err(crate::client::Error::Internal("an STM read got an answer that is not a get".into())
                    .into())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex as StdMutex};

    use super::*;

    async fn memory_client() -> Client {
        let store = Arc::new(crate::Store::open(crate::Options::memory()).unwrap());
        Client::embedded(store, None).await.unwrap()
    }

    async fn value(client: &Client, key: &str) -> Option<String> {
        let resp = client.clone().get(key, None).await.unwrap();
        resp.kvs().first().map(|kv| kv.value_str().unwrap().to_owned())
    }

    fn text(value: Option<Vec<u8>>) -> Option<String> {
        value.map(|v| String::from_utf8(v).unwrap())
    }

    fn number(value: Option<Vec<u8>>) -> i64 {
        text(value).map_or(0, |v| v.parse().unwrap())
    }

    /// A small deterministic generator (an LCG), enough to spread transfers.
    fn next(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *seed >> 33
    }

    const ACCOUNTS: usize = 5;

    async fn open_accounts(client: &Client) -> Vec<String> {
        let accounts: Vec<String> = (0..ACCOUNTS).map(|i| format!("accts/{i}")).collect();
        for account in &accounts {
            client.clone().put(account.clone(), "100", None).await.unwrap();
        }
        accounts
    }

    async fn total(client: &Client, accounts: &[String]) -> i64 {
        let mut sum = 0;
        for account in accounts {
            sum += value(client, account).await.map_or(0, |v| v.parse::<i64>().unwrap());
        }
        sum
    }

    /// Moves `percent` of `from`'s balance to `to`.
    async fn transfer(stm: &mut Stm, from: String, to: String, percent: i64) -> Result<()> {
        let a = number(stm.get(from.as_str()).await?);
        let b = number(stm.get(to.as_str()).await?);
        let amount = a * percent / 100;
        stm.put(from, (a - amount).to_string());
        stm.put(to, (b + amount).to_string());
        Ok(())
    }

    /// 8 tasks × 50 random transfers between 5 accounts of 100.
    async fn concurrent_transfers(isolation: Isolation) -> (Client, Vec<String>) {
        let client = memory_client().await;
        let accounts = open_accounts(&client).await;
        let tasks: Vec<_> = (0..8u64)
            .map(|task| {
                let (client, accounts) = (client.clone(), accounts.clone());
                tokio::spawn(async move {
                    let mut seed = task + 1;
                    for _ in 0..50 {
                        let from = next(&mut seed) as usize % ACCOUNTS;
                        let to = (from + 1 + next(&mut seed) as usize % (ACCOUNTS - 1)) % ACCOUNTS;
                        let percent = (next(&mut seed) % 100) as i64;
                        let (from, to) = (&accounts[from], &accounts[to]);
                        let options = StmOptions::new().with_isolation(isolation);
                        run_stm(&client, options, |stm| {
                            Box::pin(transfer(stm, from.clone(), to.clone(), percent))
                        })
                        .await
                        .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        (client, accounts)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_transfers_keep_the_total_serializable_snapshot() {
        let (client, accounts) = concurrent_transfers(Isolation::SerializableSnapshot).await;
        assert_eq!(total(&client, &accounts).await, 100 * ACCOUNTS as i64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_transfers_keep_the_total_serializable() {
        let (client, accounts) = concurrent_transfers(Isolation::Serializable).await;
        assert_eq!(total(&client, &accounts).await, 100 * ACCOUNTS as i64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_transfers_keep_the_total_repeatable_reads() {
        let (client, accounts) = concurrent_transfers(Isolation::RepeatableReads).await;
        assert_eq!(total(&client, &accounts).await, 100 * ACCOUNTS as i64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_committed_single_writer_keeps_the_total() {
        let client = memory_client().await;
        let accounts = open_accounts(&client).await;
        let mut seed = 7;
        for _ in 0..50 {
            let from = next(&mut seed) as usize % ACCOUNTS;
            let to = (from + 1 + next(&mut seed) as usize % (ACCOUNTS - 1)) % ACCOUNTS;
            let percent = (next(&mut seed) % 100) as i64;
            let (from, to) = (&accounts[from], &accounts[to]);
            let options = StmOptions::new().with_isolation(Isolation::ReadCommitted);
            run_stm(&client, options, |stm| Box::pin(transfer(stm, from.clone(), to.clone(), percent)))
                .await
                .unwrap();
        }
        assert_eq!(total(&client, &accounts).await, 100 * ACCOUNTS as i64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_committed_reads_the_latest_values_and_never_conflicts() {
        let client = memory_client().await;
        let mut writer = client.clone();
        writer.put("a", "1", None).await.unwrap();
        writer.put("b", "1", None).await.unwrap();
        let mut stm = Stm::new(&client, StmOptions::new().with_isolation(Isolation::ReadCommitted));
        assert_eq!(text(stm.get("a").await.unwrap()).as_deref(), Some("1"));
        writer.put("b", "2", None).await.unwrap();
        // Not pinned to the first read: b is read as it is now.
        assert_eq!(text(stm.get("b").await.unwrap()).as_deref(), Some("2"));
        writer.put("a", "3", None).await.unwrap();
        // A key read once reads the same within the attempt.
        assert_eq!(text(stm.get("a").await.unwrap()).as_deref(), Some("1"));
        stm.put("a", "10");
        // a changed after it was read, and the commit still writes over it.
        match stm.commit().await.unwrap() {
            Commit::Committed(resp) => assert!(resp.succeeded()),
            Commit::Conflict => panic!("ReadCommitted never conflicts"),
        }
        assert_eq!(stm.conflicts(), 0);
        assert_eq!(value(&client, "a").await.as_deref(), Some("10"));
    }

    /// Runs an STM that reads `a` and writes `b`, with another writer's put of `a` between
    /// the read and the commit of its first attempt; returns the attempts and the result.
    async fn interleaved(isolation: Isolation) -> (usize, Client, Vec<String>) {
        let client = memory_client().await;
        client.clone().put("a", "1", None).await.unwrap();
        let attempts = AtomicUsize::new(0);
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let options = StmOptions::new().with_isolation(isolation);
        let ((), resp) = run_stm(&client, options, |stm| {
            let first = attempts.fetch_add(1, Ordering::SeqCst) == 0;
            let mut writer = client.clone();
            let seen = seen.clone();
            Box::pin(async move {
                let a = text(stm.get("a").await?).unwrap_or_default();
                if first {
                    writer.put("a", "2", None).await?;
                }
                seen.lock().unwrap().push(a.clone());
                stm.put("b", format!("from {a}"));
                Ok(())
            })
        })
        .await
        .unwrap();
        assert!(resp.succeeded());
        let seen = seen.lock().unwrap().clone();
        (attempts.into_inner(), client, seen)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_conflict_is_retried_from_a_fresh_state() {
        for isolation in
            [Isolation::SerializableSnapshot, Isolation::Serializable, Isolation::RepeatableReads]
        {
            let (attempts, client, seen) = interleaved(isolation).await;
            assert_eq!(attempts, 2, "{isolation:?}");
            assert_eq!(seen, ["1", "2"], "{isolation:?}");
            assert_eq!(value(&client, "b").await.as_deref(), Some("from 2"), "{isolation:?}");
        }
        let (attempts, client, seen) = interleaved(Isolation::ReadCommitted).await;
        assert_eq!(attempts, 1);
        assert_eq!(seen, ["1"]);
        assert_eq!(value(&client, "b").await.as_deref(), Some("from 1"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_manual_form_reports_conflicts_and_resets() {
        let client = memory_client().await;
        let mut writer = client.clone();
        writer.put("n", "1", None).await.unwrap();
        let mut stm = Stm::new(&client, StmOptions::new());
        let mut attempts = 0;
        let resp = loop {
            attempts += 1;
            let n = number(stm.get("n").await.unwrap());
            if attempts == 1 {
                writer.put("n", "5", None).await.unwrap();
            }
            stm.put("n", (n + 1).to_string());
            match stm.commit().await.unwrap() {
                Commit::Committed(resp) => break resp,
                Commit::Conflict => {
                    assert_eq!(stm.conflicts(), 1);
                    continue;
                }
            }
        };
        assert_eq!(attempts, 2);
        assert_eq!(stm.conflicts(), 0, "a commit starts the next transaction afresh");
        assert!(matches!(resp.op_responses()[..], [TxnOpResponse::Put(_)]));
        assert_eq!(value(&client, "n").await.as_deref(), Some("6"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_conflict_bound_gives_up_with_conflict() {
        let client = memory_client().await;
        let options = StmOptions::new().with_max_conflicts(3);
        let attempts = AtomicUsize::new(0);
        let result = run_stm(&client, options, |stm| {
            attempts.fetch_add(1, Ordering::SeqCst);
            let mut writer = client.clone();
            Box::pin(async move {
                stm.get("k").await?;
                writer.put("k", "changed", None).await?;
                stm.put("k", "mine");
                Ok(())
            })
        })
        .await;
        assert!(matches!(result, Err(Error::Conflict(3))), "{result:?}");
        assert_eq!(attempts.into_inner(), 3);
        assert_eq!(value(&client, "k").await.as_deref(), Some("changed"));

        let refused =
            run_stm(&client, StmOptions::new().with_max_conflicts(0), |_| Box::pin(async { Ok(()) })).await;
        assert!(matches!(refused, Err(Error::InvalidArgs(_))), "{refused:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_error_from_apply_writes_nothing() {
        let client = memory_client().await;
        let result: Result<((), TxnResponse)> = run_stm(&client, StmOptions::new(), |stm| {
            Box::pin(async move {
                stm.put("k", "v");
                Err(Error::InvalidArgs("insufficient funds".into()))
            })
        })
        .await;
        assert!(matches!(result, Err(Error::InvalidArgs(_))));
        assert_eq!(value(&client, "k").await, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn prefetch_reads_the_keys_in_one_go_and_pins_the_snapshot() {
        let client = memory_client().await;
        for key in ["a", "b", "c"] {
            client.clone().put(key, "1", None).await.unwrap();
        }
        let attempts = AtomicUsize::new(0);
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let options = StmOptions::new().with_prefetch(["a", "b"]);
        run_stm(&client, options, |stm| {
            let first = attempts.fetch_add(1, Ordering::SeqCst) == 0;
            let mut writer = client.clone();
            let seen = seen.clone();
            Box::pin(async move {
                let a = text(stm.get("a").await?).unwrap_or_default();
                if first {
                    // After the prefetch: b was read with a, and c is read at their
                    // revision, so neither write is seen in this attempt.
                    writer.put("b", "2", None).await?;
                    writer.put("c", "2", None).await?;
                }
                let b = text(stm.get("b").await?).unwrap_or_default();
                let c = text(stm.get("c").await?).unwrap_or_default();
                seen.lock().unwrap().push(format!("{a}{b}{c}"));
                stm.put("d", format!("{a}{b}{c}"));
                Ok(())
            })
        })
        .await
        .unwrap();
        assert_eq!(attempts.into_inner(), 2, "the stale reads conflicted");
        assert_eq!(*seen.lock().unwrap(), ["111", "122"]);
        assert_eq!(value(&client, "d").await.as_deref(), Some("122"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn prefetch_reads_before_the_first_operation_at_every_level() {
        for isolation in [Isolation::RepeatableReads, Isolation::ReadCommitted, Isolation::Serializable] {
            let client = memory_client().await;
            let mut writer = client.clone();
            writer.put("a", "1", None).await.unwrap();
            writer.put("b", "1", None).await.unwrap();
            let options = StmOptions::new().with_isolation(isolation).with_prefetch(["a", "b"]);
            let mut stm = Stm::new(&client, options);
            assert_eq!(text(stm.get("a").await.unwrap()).as_deref(), Some("1"));
            writer.put("b", "2", None).await.unwrap();
            assert_eq!(text(stm.get("b").await.unwrap()).as_deref(), Some("1"), "{isolation:?}");
            stm.reset();
        }
    }

    /// Reads `a`, then another writer puts `b`, then the STM puts `b` (only written).
    async fn write_only_conflict(isolation: Isolation) -> (usize, Option<String>) {
        let client = memory_client().await;
        client.clone().put("a", "1", None).await.unwrap();
        client.clone().put("b", "1", None).await.unwrap();
        let attempts = AtomicUsize::new(0);
        let options = StmOptions::new().with_isolation(isolation);
        run_stm(&client, options, |stm| {
            let first = attempts.fetch_add(1, Ordering::SeqCst) == 0;
            let mut writer = client.clone();
            Box::pin(async move {
                stm.get("a").await?;
                if first {
                    writer.put("b", "theirs", None).await?;
                }
                stm.put("b", "mine");
                Ok(())
            })
        })
        .await
        .unwrap();
        (attempts.into_inner(), value(&client, "b").await)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serializable_snapshot_aborts_on_write_only_conflicts_and_serializable_does_not() {
        assert_eq!(write_only_conflict(Isolation::SerializableSnapshot).await, (2, Some("mine".into())));
        assert_eq!(write_only_conflict(Isolation::Serializable).await, (1, Some("mine".into())));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serializable_snapshot_writes_a_key_written_before_its_read() {
        // clientv3's TestSTMSerializableSnapshotPut: the second run's write of b, which
        // the first run wrote before the second's read, is not a conflict.
        let client = memory_client().await;
        client.clone().put("a", "0", None).await.unwrap();
        for _ in 0..2 {
            let attempts = AtomicUsize::new(0);
            run_stm(&client, StmOptions::new(), |stm| {
                attempts.fetch_add(1, Ordering::SeqCst);
                Box::pin(async move {
                    stm.get("a").await?;
                    stm.put("b", "1");
                    Ok(())
                })
            })
            .await
            .unwrap();
            assert_eq!(attempts.into_inner(), 1);
        }
        let b = client.clone().get("b", None).await.unwrap();
        assert_eq!(b.kvs()[0].version(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rev_and_del_behave_as_clientv3s() {
        let client = memory_client().await;
        let put = client.clone().put("k", "v", None).await.unwrap();
        let created = put.header().unwrap().revision();
        for isolation in [
            Isolation::SerializableSnapshot,
            Isolation::Serializable,
            Isolation::RepeatableReads,
            Isolation::ReadCommitted,
        ] {
            let mut stm = Stm::new(&client, StmOptions::new().with_isolation(isolation));
            assert_eq!(stm.rev("k").await.unwrap(), created, "{isolation:?}");
            assert_eq!(stm.rev("missing").await.unwrap(), 0, "{isolation:?}");
            assert_eq!(stm.get("missing").await.unwrap(), None, "{isolation:?}");
            stm.del("k");
            assert_eq!(stm.get("k").await.unwrap(), None, "{isolation:?}");
            // The read set's revision, not the write set's.
            assert_eq!(stm.rev("k").await.unwrap(), created, "{isolation:?}");
            stm.put("k", "");
            assert_eq!(stm.get("k").await.unwrap(), Some(Vec::new()), "{isolation:?}");
            stm.reset();
        }

        let ((), resp) = run_stm(&client, StmOptions::new(), |stm| {
            Box::pin(async move {
                stm.put("other", "x");
                stm.del("k");
                Ok(())
            })
        })
        .await
        .unwrap();
        assert!(resp.succeeded());
        assert_eq!(resp.op_responses().len(), 2);
        let deleted =
            resp.op_responses().iter().any(|op| matches!(op, TxnOpResponse::Delete(d) if d.deleted() == 1));
        assert!(deleted, "{resp:?}");
        assert_eq!(value(&client, "k").await, None);
        assert_eq!(value(&client, "other").await.as_deref(), Some("x"));

        let mut stm = Stm::new(&client, StmOptions::new());
        assert_eq!(stm.rev("k").await.unwrap(), 0, "a deleted key has no revision");
    }
}
