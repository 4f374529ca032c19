//! The checks after a restart: what the store holds must be explained by what the writers
//! sent, and must hold everything they were told is done.
//!
//! A request answered is done; a request with no answer (in flight at the kill, or failed
//! with the connection) may or may not have been applied, so it may explain what is found
//! but is never required. Values are unique, so a value names the request that wrote it.
//! History before the cycle is the previous check's [`Baseline`], which must read back the
//! same; history in the cycle is read back event by event with a watch from just after it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use etcd_client::{Client, EventType, GetOptions, LeaseTimeToLiveOptions, WatchOptions};
use futures::stream::{self, StreamExt};

use crate::journal::{Entry, Op, Outcome};
use crate::workload::PREFIX;
use crate::WAIT;

/// etcd's answer to a read below the compact revision.
const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";

/// A way in which the store after a restart is not what the acknowledged writes promised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// The server did not start on the data after the kill.
    DidNotOpen(String),
    /// An acknowledged write, grant, revoke or compaction is not there.
    Lost(String),
    /// Something is there that no request sent could have put there.
    NeverSent(String),
    /// The revision or the compact revision went back.
    WentBack(String),
    /// History, state and leases disagree with each other or with an answer given, or the
    /// server refused a request before the kill.
    Inconsistent(String),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::DidNotOpen(log) => write!(f, "the store did not open after the kill; its log:\n{log}"),
            Violation::Lost(what) => write!(f, "lost: {what}"),
            Violation::NeverSent(what) => write!(f, "never sent: {what}"),
            Violation::WentBack(what) => write!(f, "went back: {what}"),
            Violation::Inconsistent(what) => write!(f, "inconsistent: {what}"),
        }
    }
}

/// A key's value as a range returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kv {
    pub key: String,
    pub value: String,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
}

impl From<&etcd_client::KeyValue> for Kv {
    fn from(kv: &etcd_client::KeyValue) -> Kv {
        Kv {
            key: String::from_utf8_lossy(kv.key()).into_owned(),
            value: String::from_utf8_lossy(kv.value()).into_owned(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
            lease: kv.lease(),
        }
    }
}

/// Every key under [`PREFIX`] at one revision.
pub type State = BTreeMap<String, Kv>;

/// What the previous check left: the store at `revision` (with no lease alive), and the
/// compact revision it found.
#[derive(Clone, Debug)]
pub struct Baseline {
    pub revision: i64,
    pub state: State,
    pub compacted: i64,
}

impl Baseline {
    /// A new, empty store: etcd starts at revision 1, with nothing compacted.
    pub fn empty() -> Baseline {
        Baseline { revision: 1, state: State::new(), compacted: 0 }
    }
}

/// What a passing check found: the store's revision and compact revision, the leases
/// alive, and the number of events the cycle left.
#[derive(Debug)]
pub struct Found {
    pub revision: i64,
    pub compacted: i64,
    pub leases: Vec<i64>,
    pub events: usize,
    /// Revisions of the cycle written by requests that got no answer: the kill came after
    /// their write reached the engine and before their acknowledgement.
    pub unanswered_applied: usize,
}

/// One event of the cycle's history.
#[derive(Clone, Debug)]
enum Event {
    Put(Kv),
    /// A delete of `key`, whose previous value was attached to `prev_lease` (0: none).
    Delete {
        key: String,
        prev_lease: i64,
    },
}

/// Reads `f`, or fails the check naming `what` if it errs or takes longer than [`WAIT`].
async fn read<T>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, Violation> {
    match tokio::time::timeout(WAIT, f).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(Violation::Inconsistent(format!("{what} failed: {e}"))),
        Err(_) => Err(Violation::Inconsistent(format!("{what}: no answer within {WAIT:?}"))),
    }
}

/// The keys under [`PREFIX`] at `revision` (0: the current one), and the revision the
/// header reports.
pub async fn scan(client: &mut Client, revision: i64) -> Result<(i64, State), Violation> {
    let options = GetOptions::new().with_prefix().with_revision(revision);
    let got = read(&format!("a range at revision {revision}"), client.get(PREFIX, Some(options))).await?;
    let header = got.header().expect("etcd answers a header").revision();
    let state = got.kvs().iter().map(Kv::from).map(|kv| (kv.key.clone(), kv)).collect();
    Ok((header, state))
}

/// `key` at `revision`, if it is there.
async fn get_at(client: &mut Client, key: &str, revision: i64) -> Result<Option<Kv>, Violation> {
    let options = GetOptions::new().with_revision(revision);
    let got = read(&format!("{key} at revision {revision}"), client.get(key, Some(options))).await?;
    Ok(got.kvs().first().map(Kv::from))
}

/// Checks the store `client` reaches against `before` and the requests the writers sent
/// (`entries`), and answers what it found, or every violation.
pub async fn check(
    client: &mut Client,
    before: &Baseline,
    entries: &[Entry],
) -> Result<Found, Vec<Violation>> {
    let mut violations = refused_before_the_kill(entries);
    let (revision, state) = scan(client, 0).await.map_err(|v| vec![v])?;
    violations.extend(revision_holds(before, entries, revision));
    if !violations.is_empty() {
        // With the revision behind, the reads below would only repeat it.
        return Err(violations);
    }
    let mut checker = Checker { client, before, entries, revision, violations };
    let compacted = checker.compaction_holds().await;
    checker.history_before_holds().await;
    let events = checker.history_of_the_cycle().await;
    if let Some(events) = &events {
        checker.history_explains_state(events, &state);
    }
    checker.acknowledged_reads_hold().await;
    let leases = checker.leases_hold(&state).await;
    let violations = checker.violations;
    if !violations.is_empty() {
        return Err(violations);
    }
    let events = events.unwrap_or_default();
    Ok(Found {
        revision,
        compacted,
        leases,
        events: events.values().map(Vec::len).sum(),
        unanswered_applied: unanswered_applied(&events, entries),
    })
}

/// How many of the revisions in `events` no acknowledged request wrote.
fn unanswered_applied(events: &BTreeMap<i64, Vec<Event>>, entries: &[Entry]) -> usize {
    let answered: HashSet<i64> = entries
        .iter()
        .filter_map(|e| match (&e.op, e.ack()) {
            (_, Some((revision, true))) => Some(revision),
            (Op::Revoke { lease }, Some((revision, false))) => {
                let revoked = HashMap::from([(*lease, e)]);
                events.get(&revision).filter(|found| revoked_at(found, revision, &revoked)).map(|_| revision)
            }
            _ => None,
        })
        .collect();
    events.keys().filter(|revision| !answered.contains(revision)).count()
}

/// Requests the server refused while it was up: none should be.
fn refused_before_the_kill(entries: &[Entry]) -> Vec<Violation> {
    entries
        .iter()
        .filter_map(|e| match &e.outcome {
            Outcome::Failed { error, before_kill: true } => Some(Violation::Inconsistent(format!(
                "writer {} got an error before the kill for {:?}: {error}",
                e.writer, e.op
            ))),
            _ => None,
        })
        .collect()
}

/// The store's revision is at least the previous check's and every acknowledged write's.
fn revision_holds(before: &Baseline, entries: &[Entry], revision: i64) -> Vec<Violation> {
    let mut violations = Vec::new();
    if revision < before.revision {
        violations.push(Violation::WentBack(format!(
            "the store is at revision {revision}, the previous check found {}",
            before.revision
        )));
    }
    for e in entries {
        if let Some((acked, _)) = e.ack() {
            if acked > revision {
                violations.push(Violation::Lost(format!(
                    "{:?} was acknowledged at revision {acked}, the store is at {revision}",
                    e.op
                )));
            }
        }
    }
    violations
}

/// The checks that need the store, gathering violations as they go.
struct Checker<'a> {
    client: &'a mut Client,
    before: &'a Baseline,
    entries: &'a [Entry],
    /// The store's revision after the restart.
    revision: i64,
    violations: Vec<Violation>,
}

impl Checker<'_> {
    fn fail(&mut self, violation: Violation) {
        self.violations.push(violation);
    }

    /// Records `result`'s violation, if any, and answers its value.
    fn note<T>(&mut self, result: Result<T, Violation>) -> Option<T> {
        result.map_err(|v| self.fail(v)).ok()
    }

    /// Every acknowledged compaction (and the one the previous check found) holds: a read
    /// just below it is refused as compacted. Answers the compact revision now, which is
    /// the highest of those, or a compaction sent without an answer if that took effect.
    async fn compaction_holds(&mut self) -> i64 {
        let mut known = self.before.compacted;
        let mut unanswered = Vec::new();
        for e in self.entries {
            if let Op::Compact { revision, .. } = e.op {
                match e.outcome {
                    Outcome::Acked { .. } => known = known.max(revision),
                    _ => unanswered.push(revision),
                }
            }
        }
        if known >= 2 && !self.is_compacted(known - 1).await {
            self.fail(Violation::WentBack(format!(
                "revision {} is readable, but compaction at {known} was acknowledged or found before",
                known - 1
            )));
        }
        let mut now = known;
        for revision in unanswered.into_iter().filter(|&r| r > known) {
            if self.is_compacted(revision - 1).await {
                now = now.max(revision);
            }
        }
        now
    }

    /// Whether a read at `revision` is refused as compacted, with etcd's message (a
    /// different error is a violation).
    async fn is_compacted(&mut self, revision: i64) -> bool {
        let options = GetOptions::new().with_revision(revision);
        match tokio::time::timeout(WAIT, self.client.get(PREFIX, Some(options))).await {
            Ok(Ok(_)) => false,
            Ok(Err(etcd_client::Error::GRpcStatus(status)))
                if status.code() == tonic::Code::OutOfRange && status.message() == COMPACTED =>
            {
                true
            }
            Ok(Err(e)) => {
                self.fail(Violation::Inconsistent(format!(
                    "a read at revision {revision} failed other than as compacted: {e}"
                )));
                false
            }
            Err(_) => {
                self.fail(Violation::Inconsistent(format!(
                    "a read at {revision}: no answer within {WAIT:?}"
                )));
                false
            }
        }
    }

    /// The store at the previous check's revision reads back as that check found it.
    async fn history_before_holds(&mut self) {
        let read_back = scan(self.client, self.before.revision).await;
        let Some((_, state)) = self.note(read_back) else { return };
        if state != self.before.state {
            let revision = self.before.revision;
            let diff = differences(&self.before.state, &state);
            self.fail(Violation::Lost(format!("the store at revision {revision} changed: {diff}")));
        }
    }

    /// Reads the events of every revision after the previous check's with a watch, and
    /// checks that each revision has events, that each revision's events are what exactly
    /// one request sent would write, and that each acknowledged write is at its revision.
    /// Answers the events by revision, unless the watch failed.
    async fn history_of_the_cycle(&mut self) -> Option<BTreeMap<i64, Vec<Event>>> {
        let from = self.before.revision + 1;
        let events = if from > self.revision {
            BTreeMap::new()
        } else {
            let watched = watch_events(self.client, from, self.revision).await;
            self.note(watched)?
        };
        for revision in from..=self.revision {
            if !events.contains_key(&revision) {
                self.fail(Violation::Lost(format!("revision {revision} has no event")));
            }
        }
        if let Some((&last, _)) = events.last_key_value().filter(|(&r, _)| r > self.revision) {
            self.fail(Violation::Inconsistent(format!(
                "an event at {last}, past the store's {}",
                self.revision
            )));
        }
        self.acknowledged_writes_are_in_history(&events);
        self.history_was_sent(&events);
        Some(events)
    }

    /// Each acknowledged write's revision holds exactly its event.
    fn acknowledged_writes_are_in_history(&mut self, events: &BTreeMap<i64, Vec<Event>>) {
        let mut by_revision: HashMap<i64, &Op> = HashMap::new();
        for e in self.entries {
            let Some((revision, true)) = e.ack() else { continue };
            if let Some(other) = by_revision.insert(revision, &e.op) {
                self.fail(Violation::Inconsistent(format!(
                    "{other:?} and {:?} were both acknowledged as writing revision {revision}",
                    e.op
                )));
            }
            if revision <= self.before.revision {
                self.fail(Violation::Inconsistent(format!(
                    "{:?} was acknowledged at {revision}, not after the previous check's {}",
                    e.op, self.before.revision
                )));
                continue;
            }
            let Some(found) = events.get(&revision) else {
                continue; // already reported as a revision with no event
            };
            if !event_is(found, &e.op, revision) {
                self.fail(Violation::Lost(format!(
                    "{:?} was acknowledged at revision {revision}, which holds {found:?}",
                    e.op
                )));
            }
        }
    }

    /// Every revision's events were written by one request sent: a put or txn whose value
    /// they hold (once only, at its acknowledged revision if it has one), a delete of the
    /// key, or a revoke of the lease the deleted keys were attached to (each unanswered, or
    /// acknowledged at that revision).
    fn history_was_sent(&mut self, events: &BTreeMap<i64, Vec<Event>>) {
        let mut puts: HashMap<(&str, &str), &Entry> = HashMap::new();
        let mut deletes: HashMap<&str, Vec<&Entry>> = HashMap::new();
        let mut revokes: HashMap<i64, &Entry> = HashMap::new();
        for e in self.entries {
            match &e.op {
                Op::Put { key, value, .. } | Op::Cas { key, value, .. } => {
                    puts.insert((key, value), e);
                }
                Op::Delete { key } => deletes.entry(key).or_default().push(e),
                Op::Revoke { lease } => {
                    revokes.insert(*lease, e);
                }
                _ => {}
            }
        }
        let mut seen: HashSet<&str> = HashSet::new();
        for (&revision, found) in events {
            match found.as_slice() {
                [Event::Put(kv)] => {
                    let Some(e) = puts.get(&(kv.key.as_str(), kv.value.as_str())) else {
                        self.fail(Violation::NeverSent(format!("{kv:?} at revision {revision}")));
                        continue;
                    };
                    if !seen.insert(kv.value.as_str()) {
                        self.fail(Violation::Inconsistent(format!("{:?} applied twice", e.op)));
                    }
                    match e.ack() {
                        Some((acked, wrote)) if acked != revision || !wrote => {
                            self.fail(Violation::Inconsistent(format!(
                                "{:?} was answered (revision {acked}, wrote: {wrote}) but wrote revision {revision}",
                                e.op
                            )));
                        }
                        _ if !event_is(found, &e.op, revision) => {
                            self.fail(Violation::Inconsistent(format!(
                                "{:?} wrote {found:?} at revision {revision}",
                                e.op
                            )));
                        }
                        _ => {}
                    }
                }
                [Event::Delete { key, .. }]
                    if deletes
                        .get(key.as_str())
                        .is_some_and(|sent| sent.iter().any(|e| wrote_at(e, revision))) => {}
                deleted if !deleted.is_empty() && revoked_at(deleted, revision, &revokes) => {}
                other => {
                    self.fail(Violation::NeverSent(format!(
                        "no request sent writes {other:?} (revision {revision})"
                    )));
                }
            }
        }
    }

    /// The previous check's state with the cycle's events applied in order is the state now.
    fn history_explains_state(&mut self, events: &BTreeMap<i64, Vec<Event>>, now: &State) {
        let mut state = self.before.state.clone();
        for event in events.values().flatten() {
            match event {
                Event::Put(kv) => {
                    state.insert(kv.key.clone(), kv.clone());
                }
                Event::Delete { key, .. } => {
                    state.remove(key);
                }
            }
        }
        if &state != now {
            let diff = differences(&state, now);
            self.fail(Violation::Inconsistent(format!(
                "the state at revision {} is not the history's: {diff}",
                self.revision
            )));
        }
    }

    /// Reading each acknowledged request's key at its revision shows what its answer said:
    /// a put's value (with its lease), a txn's put and the mod revision it compared (or,
    /// for a txn that took its failure branch, another mod revision), a delete's absence.
    async fn acknowledged_reads_hold(&mut self) {
        let mut reads: Vec<(&str, i64, &Entry)> = Vec::new();
        for e in self.entries {
            let Some((revision, wrote)) = e.ack() else { continue };
            match &e.op {
                Op::Cas { key, .. } if wrote => {
                    reads.push((key, revision - 1, e));
                    reads.push((key, revision, e));
                }
                Op::Put { key, .. } | Op::Cas { key, .. } | Op::Delete { key } => {
                    reads.push((key, revision, e))
                }
                _ => {}
            }
        }
        let client = self.client.clone();
        let results: Vec<_> = stream::iter(reads)
            .map(|(key, revision, e)| {
                let mut client = client.clone();
                async move { (get_at(&mut client, key, revision).await, revision, e) }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for (got, revision, e) in results {
            let Some(got) = self.note(got) else { continue };
            if let Some(problem) = read_contradicts(&e.op, e.ack(), revision, got.as_ref()) {
                self.fail(problem);
            }
        }
    }

    /// Every acknowledged grant not revoked is alive with its TTL, every acknowledged revoke
    /// holds, every lease alive was granted in the cycle, and the keys each lease lists are
    /// the keys attached to it; no key is attached to a lease at the revision its revoke
    /// was acknowledged at. Answers the leases alive.
    async fn leases_hold(&mut self, state: &State) -> Vec<i64> {
        let listed = read("the lease list", self.client.leases()).await;
        let Some(listed) = self.note(listed) else {
            return Vec::new();
        };
        let alive: BTreeSet<i64> = listed.leases().iter().map(|l| l.id()).collect();
        let mut granted: HashMap<i64, &Entry> = HashMap::new();
        let mut revoked: HashMap<i64, &Entry> = HashMap::new();
        for e in self.entries {
            match e.op {
                Op::Grant { lease, .. } => {
                    granted.insert(lease, e);
                }
                Op::Revoke { lease } => {
                    revoked.insert(lease, e);
                }
                _ => {}
            }
        }
        for &lease in &alive {
            if !granted.contains_key(&lease) {
                self.fail(Violation::NeverSent(format!("lease {lease} is alive but was not granted")));
            }
        }
        for (&lease, e) in &granted {
            let acked = e.ack().is_some();
            match revoked.get(&lease).map(|r| r.ack()) {
                None if acked && !alive.contains(&lease) => {
                    self.fail(Violation::Lost(format!("acknowledged grant of lease {lease}")));
                }
                Some(Some(_)) if alive.contains(&lease) => {
                    self.fail(Violation::Lost(format!("acknowledged revoke of lease {lease}")));
                }
                _ => {}
            }
        }
        for &lease in &alive {
            self.lease_is_whole(lease, granted.get(&lease).copied(), state).await;
        }
        for kv in state.values().filter(|kv| kv.lease != 0 && !alive.contains(&kv.lease)) {
            self.fail(Violation::Inconsistent(format!("{kv:?} is attached to a lease that is not alive")));
        }
        for (&lease, e) in &revoked {
            if let Some((revision, _)) = e.ack() {
                self.revoke_left_no_key(lease, revision).await;
            }
        }
        alive.into_iter().collect()
    }

    /// Lease `lease`, alive, has its granted TTL, time left, and lists the keys attached to
    /// it in `state`.
    async fn lease_is_whole(&mut self, lease: i64, grant: Option<&Entry>, state: &State) {
        let options = LeaseTimeToLiveOptions::new().with_keys();
        let what = format!("lease {lease}'s TTL");
        let ttl = read(&what, self.client.lease_time_to_live(lease, Some(options))).await;
        let Some(ttl) = self.note(ttl) else { return };
        if let Some(Op::Grant { ttl: granted, .. }) = grant.map(|e| &e.op) {
            if ttl.granted_ttl() != *granted || ttl.ttl() <= 0 {
                self.fail(Violation::Inconsistent(format!(
                    "lease {lease} was granted {granted} s and has {} s of {} s",
                    ttl.ttl(),
                    ttl.granted_ttl()
                )));
            }
        }
        let listed: BTreeSet<String> =
            ttl.keys().iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
        let attached: BTreeSet<String> =
            state.values().filter(|kv| kv.lease == lease).map(|kv| kv.key.clone()).collect();
        if listed != attached {
            self.fail(Violation::Inconsistent(format!(
                "lease {lease} lists keys {listed:?}, the keys attached to it are {attached:?}"
            )));
        }
    }

    /// A revoke of `lease` acknowledged at `revision` left no key attached to it there:
    /// it deleted them at that revision, or there were none.
    async fn revoke_left_no_key(&mut self, lease: i64, revision: i64) {
        let read_back = scan(self.client, revision).await;
        let Some((_, state)) = self.note(read_back) else { return };
        if let Some(kv) = state.values().find(|kv| kv.lease == lease) {
            self.fail(Violation::Lost(format!(
                "lease {lease}'s revoke was acknowledged at revision {revision}, where {kv:?} still carries it"
            )));
        }
    }
}

/// Whether `found`, the events of `revision`, are exactly what `op` writes.
fn event_is(found: &[Event], op: &Op, revision: i64) -> bool {
    match (found, op) {
        ([Event::Put(kv)], Op::Put { key, value, lease }) => {
            (&kv.key, &kv.value, kv.lease, kv.mod_revision) == (key, value, *lease, revision)
        }
        ([Event::Put(kv)], Op::Cas { key, value, .. }) => {
            (&kv.key, &kv.value, kv.lease, kv.mod_revision) == (key, value, 0, revision)
        }
        ([Event::Delete { key: deleted, .. }], Op::Delete { key }) => deleted == key,
        _ => false,
    }
}

/// Whether `deleted`, the events of `revision`, are a revoke's: deletes of keys attached
/// to one lease, whose revoke was sent without an answer or acknowledged at `revision`.
fn revoked_at(deleted: &[Event], revision: i64, revokes: &HashMap<i64, &Entry>) -> bool {
    let mut leases = deleted.iter().map(|e| match e {
        Event::Delete { prev_lease, .. } => Some(*prev_lease),
        Event::Put(_) => None,
    });
    let Some(Some(lease)) = leases.next() else { return false };
    lease != 0
        && leases.all(|l| l == Some(lease))
        && revokes
            .get(&lease)
            .is_some_and(|e| e.maybe_applied() || e.ack().is_some_and(|(r, _)| r == revision))
}

/// Whether `e` may have written `revision`: it got no answer, or was acknowledged as
/// writing that revision.
fn wrote_at(e: &Entry, revision: i64) -> bool {
    e.maybe_applied() || e.ack() == Some((revision, true))
}

/// What a read of an acknowledged request's key at `revision` contradicts, if anything.
/// `ack` is the request's acknowledgement; a successful txn is read twice, at its revision
/// and just before (where its key had the mod revision it compared).
fn read_contradicts(op: &Op, ack: Option<(i64, bool)>, revision: i64, got: Option<&Kv>) -> Option<Violation> {
    let (acked, wrote) = ack?;
    let mod_revision = got.map_or(0, |kv| kv.mod_revision);
    let ok = match op {
        Op::Put { value, lease, .. } => {
            got.is_some_and(|kv| (&kv.value, kv.lease, kv.mod_revision) == (value, *lease, acked))
        }
        Op::Cas { expected, .. } if wrote && revision < acked => mod_revision == *expected,
        Op::Cas { value, .. } if wrote => {
            got.is_some_and(|kv| (&kv.value, kv.mod_revision) == (value, acked))
        }
        Op::Cas { expected, .. } => mod_revision != *expected,
        Op::Delete { .. } => got.is_none(),
        _ => true,
    };
    (!ok).then(|| {
        Violation::Lost(format!(
            "{op:?} was acknowledged at {acked} (wrote: {wrote}); at revision {revision} the key is {got:?}"
        ))
    })
}

/// Keys whose values differ between `a` and `b`, for a message.
fn differences(a: &State, b: &State) -> String {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let diff: Vec<String> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .take(8)
        .map(|k| format!("{k}: {:?} / {:?}", a.get(k), b.get(k)))
        .collect();
    diff.join("; ")
}

/// Every event under [`PREFIX`] from revision `from` to `to` (the store's revision), by
/// revision, read with a watch (with previous values) until a progress answer says it has
/// caught up. A progress request is answered only then, in order with the events, and
/// dropped before; so it is sent once the events reach `to`, and again after each quiet
/// [`PATIENCE`] until answered.
async fn watch_events(
    client: &mut Client,
    from: i64,
    to: i64,
) -> Result<BTreeMap<i64, Vec<Event>>, Violation> {
    const PATIENCE: std::time::Duration = std::time::Duration::from_millis(200);
    const ATTEMPTS: usize = 50;
    const MAX_MESSAGES: usize = 1_000_000;
    let fail = |what: String| Violation::Inconsistent(format!("watching from revision {from}: {what}"));
    let options = WatchOptions::new().with_prefix().with_start_revision(from).with_prev_key();
    let mut stream = read("a watch", client.watch(PREFIX, Some(options))).await?;
    let mut events: BTreeMap<i64, Vec<Event>> = BTreeMap::new();
    let mut asked = 0;
    for _ in 0..MAX_MESSAGES {
        let message = match tokio::time::timeout(PATIENCE, stream.message()).await {
            Ok(Ok(Some(message))) => message,
            Ok(Ok(None)) => return Err(fail("the stream ended".into())),
            Ok(Err(e)) => return Err(fail(e.to_string())),
            Err(_) if asked < ATTEMPTS => {
                stream.request_progress().await.map_err(|e| fail(format!("progress request: {e}")))?;
                asked += 1;
                continue;
            }
            Err(_) => return Err(fail(format!("no progress answer to {ATTEMPTS} requests"))),
        };
        if message.canceled() {
            return Err(fail(format!(
                "cancelled ({}), compact revision {}",
                message.cancel_reason(),
                message.compact_revision()
            )));
        }
        if message.created() {
            continue;
        }
        if message.events().is_empty() {
            return Ok(events);
        }
        for event in message.events() {
            let kv = event.kv().expect("an event has its key");
            events.entry(kv.mod_revision()).or_default().push(match event.event_type() {
                EventType::Put => Event::Put(Kv::from(kv)),
                EventType::Delete => Event::Delete {
                    key: String::from_utf8_lossy(kv.key()).into_owned(),
                    prev_lease: event.prev_kv().map_or(0, |prev| prev.lease()),
                },
            });
        }
        if events.last_key_value().is_some_and(|(&last, _)| last >= to) {
            stream.request_progress().await.map_err(|e| fail(format!("progress request: {e}")))?;
            asked += 1;
        }
    }
    Err(fail(format!("more than {MAX_MESSAGES} messages")))
}
