//! Leases: grant, revoke, keep-alive, time-to-live and expiry, with etcd's rules.
//!
//! A lease is a TTL that keys can be attached to (`put` with a lease id). When the lease is
//! revoked, or expires, every key attached to it is deleted in one revision. Time comes from
//! a [`Clock`]: [`SystemClock`] by default, or a [`ManualClock`] that tests move by hand.

mod clock;
mod lessor;
mod record;

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;

pub(crate) use clock::later;
pub use clock::{Clock, ManualClock, SystemClock, Wake};
use lessor::Lessor;

use crate::engine::Keyspace;
use crate::error::{Error, Result};
use crate::mvcc::{Change, KeyRange, KeyValue, MvccStore};
use crate::txn::request::ResponseHeader;
use crate::txn::{Deferred, LeaseLookup};

/// A lease's id: a positive number the store picks, or one the caller chooses (etcd's
/// `LeaseID`, an int64; 0 means "no lease").
pub type LeaseId = i64;

/// etcd's minimum TTL with default settings (1.5 x the 1 s election timeout, rounded up):
/// a grant asking for less, zero and negative TTLs included, gets this.
pub const MIN_TTL: i64 = 2;
/// What etcd's quota charges a lease grant: about a lease record's size.
pub const GRANT_QUOTA_COST: usize = 64;
/// etcd's largest TTL; a grant asking for more fails with `etcdserver: too large lease TTL`.
pub const MAX_TTL: i64 = 9_000_000_000;

/// Options of [`Store::lease_grant`](crate::Store::lease_grant).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaseGrantOptions {
    id: LeaseId,
}

impl LeaseGrantOptions {
    /// No options: the store picks the id.
    pub fn new() -> Self {
        Self::default()
    }

    /// Grants the lease under this id (0: the store picks one).
    pub fn with_id(mut self, id: LeaseId) -> Self {
        self.id = id;
        self
    }

    pub(crate) fn id(&self) -> LeaseId {
        self.id
    }
}

/// Options of [`Store::lease_time_to_live`](crate::Store::lease_time_to_live).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaseTimeToLiveOptions {
    keys: bool,
}

impl LeaseTimeToLiveOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also lists the keys attached to the lease.
    pub fn with_keys(mut self) -> Self {
        self.keys = true;
        self
    }

    pub(crate) fn keys(&self) -> bool {
        self.keys
    }
}

/// The answer to a grant (etcd's `LeaseGrantResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseGrantResponse {
    /// Header; a grant does not change the revision.
    pub header: ResponseHeader,
    /// The lease's id.
    pub id: LeaseId,
    /// The TTL granted, in seconds: the one asked for, raised to [`MIN_TTL`].
    pub ttl: i64,
}

impl LeaseGrantResponse {
    /// The header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The lease's id.
    pub fn id(&self) -> LeaseId {
        self.id
    }

    /// The TTL granted, in seconds.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }
}

/// The answer to a revoke (etcd's `LeaseRevokeResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseRevokeResponse {
    /// Header; its revision is the one that deleted the lease's keys, if it had any.
    pub header: ResponseHeader,
}

impl LeaseRevokeResponse {
    /// The header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

/// The answer to a keep-alive (etcd's `LeaseKeepAliveResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseKeepAliveResponse {
    /// Header, filled before the renewal.
    pub header: ResponseHeader,
    /// The lease's id.
    pub id: LeaseId,
    /// The lease's full TTL, which it now has left.
    pub ttl: i64,
}

impl LeaseKeepAliveResponse {
    /// The header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The lease's id.
    pub fn id(&self) -> LeaseId {
        self.id
    }

    /// The TTL the lease now has left: its full TTL.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }
}

/// The answer to a time-to-live query (etcd's `LeaseTimeToLiveResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseTimeToLiveResponse {
    /// Header.
    pub header: ResponseHeader,
    /// The lease's id.
    pub id: LeaseId,
    /// Whole seconds left (rounded down); -1 when the lease does not exist.
    pub ttl: i64,
    /// The TTL the lease was granted; 0 when it does not exist.
    pub granted_ttl: i64,
    /// The attached keys, in key order, when asked for.
    pub keys: Vec<Vec<u8>>,
}

impl LeaseTimeToLiveResponse {
    /// The header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The lease's id.
    pub fn id(&self) -> LeaseId {
        self.id
    }

    /// Whole seconds left; -1 when the lease does not exist.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// The TTL the lease was granted.
    pub fn granted_ttl(&self) -> i64 {
        self.granted_ttl
    }

    /// The attached keys, when asked for.
    pub fn keys(&self) -> &[Vec<u8>] {
        &self.keys
    }
}

/// One lease in a [`LeaseLeasesResponse`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaseStatus {
    /// The lease's id.
    pub id: LeaseId,
}

impl LeaseStatus {
    /// The lease's id.
    pub fn id(&self) -> LeaseId {
        self.id
    }
}

/// The answer to a lease listing (etcd's `LeaseLeasesResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseLeasesResponse {
    /// Header.
    pub header: ResponseHeader,
    /// Every live lease, soonest to expire first.
    pub leases: Vec<LeaseStatus>,
}

impl LeaseLeasesResponse {
    /// The header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// Every live lease, soonest to expire first.
    pub fn leases(&self) -> &[LeaseStatus] {
        &self.leases
    }
}

/// The lease service over one MVCC store.
///
/// Lock order: the MVCC writer lock first, then the lessor's. Everything that changes
/// leases or attachments (grant, revoke, expiry, and every KV write through
/// [`LeaseLookup`]) holds the writer lock, so a put can never attach a key to a lease
/// that a revoke is removing. Keep-alive and the read-only queries take the lessor's lock
/// alone.
pub(crate) struct Leases {
    lessor: Mutex<Lessor>,
}

/// Which live key carries which lease, gathered from the changes the MVCC store shows while
/// it restores its index ([`MvccStore::open_visiting`]), so opening reads the data once.
#[derive(Default)]
pub(crate) struct Attachments {
    by_key: HashMap<Vec<u8>, LeaseId>,
}

impl Attachments {
    /// Takes in one stored change; changes come in revision order.
    pub(crate) fn visit(&mut self, kv: &KeyValue, tombstone: bool) {
        if tombstone || kv.lease == 0 {
            self.by_key.remove(&kv.key);
        } else {
            self.by_key.insert(kv.key.clone(), kv.lease);
        }
    }
}

impl Leases {
    /// Restores the leases stored in `mvcc`'s engine, each due its full TTL from `now` (as
    /// etcd does after a restart), with the live keys' attachments in `attached`.
    pub fn open(mvcc: &MvccStore, now: Instant, attached: Attachments) -> Result<Self> {
        let mut lessor = Lessor::new();
        let mut records = Vec::new();
        mvcc.engine().scan(
            Keyspace::Lease,
            crate::engine::Bounds::all(),
            crate::engine::Direction::Forward,
            &mut |_, value| {
                records.push(value.to_vec());
                std::ops::ControlFlow::Continue(())
            },
        )?;
        for value in records {
            let (id, ttl) = record::decode(&value)?;
            lessor.grant(id, ttl, now);
        }
        for (key, lease) in attached.by_key {
            lessor.attach(key, lease);
        }
        Ok(Leases { lessor: Mutex::new(lessor) })
    }

    /// Grants a lease; the answer is final once its [`Durable`](crate::mvcc::Durable) is.
    pub fn grant(
        &self,
        mvcc: &MvccStore,
        ttl: i64,
        id: LeaseId,
        now: Instant,
    ) -> Deferred<LeaseGrantResponse> {
        if ttl > MAX_TTL {
            return Deferred::new(Err(Error::LeaseTtlTooLarge), mvcc.settled());
        }
        let ttl = ttl.max(MIN_TTL);
        let mut write = mvcc.write();
        let id = {
            let mut lessor = self.lessor.lock();
            match id {
                0 => Some(lessor.pick_id()),
                id if lessor.contains(id) => None,
                id => Some(id),
            }
        };
        let Some(id) = id else {
            // The lease seen may be a grant not yet durable: answer once it is.
            return Deferred::new(Err(Error::LeaseExists), write.abandon());
        };
        write.stage(Keyspace::Lease, record::key(id), Some(record::encode(id, ttl)));
        match write.commit_deferred_with(|_| self.lessor.lock().grant(id, ttl, now)) {
            Ok((revision, durable)) => Deferred::new(
                Ok(LeaseGrantResponse { header: ResponseHeader::at(revision), id, ttl }),
                durable,
            ),
            Err(e) => Deferred::new(Err(e), mvcc.settled()),
        }
    }

    /// Revokes lease `id`: deletes its keys in one revision and its record in the same
    /// engine batch. With `due_at`, only if the lease is due by then (expiry, which a
    /// keep-alive may have raced); returns `None` when it was not.
    pub fn revoke(&self, mvcc: &MvccStore, id: LeaseId, due_at: Option<Instant>) -> Deferred<Option<i64>> {
        self.revoke_checked(mvcc, id, due_at, &|_| Ok(()))
    }

    /// [`revoke`](Leases::revoke), if `permit` allows deleting the lease's keys: it is asked
    /// under the writer lock, so no write comes between the check and the revoke.
    pub(crate) fn revoke_checked(
        &self,
        mvcc: &MvccStore,
        id: LeaseId,
        due_at: Option<Instant>,
        permit: &dyn Fn(&std::collections::BTreeSet<Vec<u8>>) -> Result<()>,
    ) -> Deferred<Option<i64>> {
        let mut write = mvcc.write();
        let keys = {
            let lessor = self.lessor.lock();
            match lessor.get(id) {
                Some(lease) if due_at.is_some_and(|now| lease.expiry > now) => {
                    return Deferred::new(Ok(None), mvcc.settled());
                }
                Some(lease) => Some(lease.keys.clone()),
                None => None,
            }
        };
        let Some(keys) = keys else {
            // The revoke that removed it may not be durable yet: answer once it is (expiry,
            // which ignores the answer, need not wait).
            let pending = write.abandon();
            let pending = if due_at.is_none() { pending } else { mvcc.settled() };
            return Deferred::new(Err(Error::LeaseNotFound), pending);
        };
        if let Err(e) = permit(&keys) {
            return Deferred::new(Err(e), write.abandon());
        }
        for key in &keys {
            write.delete_range(KeyRange::Key(key));
        }
        write.stage(Keyspace::Lease, record::key(id), None);
        let committed = write.commit_deferred_with(|changes| {
            let mut lessor = self.lessor.lock();
            lessor.apply(changes);
            lessor.remove(id);
        });
        match committed {
            Ok((revision, durable)) => Deferred::new(Ok(Some(revision)), durable),
            Err(e) => Deferred::new(Err(e), mvcc.settled()),
        }
    }

    /// Revokes every lease due at `now`; returns how many.
    pub fn expire(&self, mvcc: &MvccStore, now: Instant) -> Result<usize> {
        let due = self.lessor.lock().expired(now);
        // Every revoke is staged before any is waited on, so that one sync (group commit)
        // covers them all instead of one sync per lease.
        let staged: Vec<_> = due.into_iter().map(|id| self.revoke(mvcc, id, Some(now))).collect();
        let mut revoked = 0;
        for revoke in staged {
            match revoke.wait() {
                Ok(Some(_)) => revoked += 1,
                // Renewed or revoked meanwhile.
                Ok(None) | Err(Error::LeaseNotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(revoked)
    }

    /// Renews lease `id`. An unknown lease, or one that is due but not revoked yet, is
    /// `LeaseNotFound`, as etcd's lessor answers (its keep-alive stream sends that as TTL 0,
    /// which clientv3 turns back into the error).
    pub fn keep_alive(&self, mvcc: &MvccStore, id: LeaseId, now: Instant) -> Result<LeaseKeepAliveResponse> {
        let header = ResponseHeader::at(mvcc.current_revision());
        let mut lessor = self.lessor.lock();
        match lessor.get(id) {
            Some(lease) if lease.expiry > now => {
                let ttl = lessor.renew(id, now).expect("the lease was just found");
                Ok(LeaseKeepAliveResponse { header, id, ttl })
            }
            _ => Err(Error::LeaseNotFound),
        }
    }

    pub fn time_to_live(
        &self,
        mvcc: &MvccStore,
        id: LeaseId,
        keys: bool,
        now: Instant,
    ) -> LeaseTimeToLiveResponse {
        let header = ResponseHeader::at(mvcc.current_revision());
        let lessor = self.lessor.lock();
        match lessor.get(id) {
            Some(lease) => LeaseTimeToLiveResponse {
                header,
                id,
                ttl: lease.remaining(now),
                granted_ttl: lease.ttl,
                keys: if keys { lease.keys.iter().cloned().collect() } else { Vec::new() },
            },
            None => LeaseTimeToLiveResponse { header, id, ttl: -1, granted_ttl: 0, keys: Vec::new() },
        }
    }

    /// Every key attached to a live lease.
    pub(crate) fn attached_keys(&self) -> Vec<Vec<u8>> {
        self.lessor.lock().attached_keys()
    }

    pub fn leases(&self, mvcc: &MvccStore) -> LeaseLeasesResponse {
        let header = ResponseHeader::at(mvcc.current_revision());
        let ids = self.lessor.lock().ids_by_expiry();
        LeaseLeasesResponse { header, leases: ids.into_iter().map(|id| LeaseStatus { id }).collect() }
    }
}

impl LeaseLookup for Leases {
    fn lease_exists(&self, id: i64) -> bool {
        self.lessor.lock().contains(id)
    }

    fn lease_keys(&self, id: i64) -> std::collections::BTreeSet<Vec<u8>> {
        self.lessor.lock().get(id).map(|lease| lease.keys.clone()).unwrap_or_default()
    }

    fn committed(&self, changes: &[Change]) {
        self.lessor.lock().apply(changes);
    }
}
