//! The lessor: every live lease, its deadline and its keys. Pure bookkeeping; the store
//! decides when to call it, under its writer lock for anything that changes state.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::mvcc::Change;

/// One live lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lease {
    /// The granted TTL in seconds (after raising it to the minimum).
    pub ttl: i64,
    pub expiry: Instant,
    /// The keys attached to it.
    pub keys: BTreeSet<Vec<u8>>,
}

impl Lease {
    /// Whole seconds left, rounded down as etcd rounds them; 0 once due.
    pub fn remaining(&self, now: Instant) -> i64 {
        self.expiry.saturating_duration_since(now).as_secs() as i64
    }
}

#[derive(Debug)]
pub(crate) struct Lessor {
    leases: HashMap<i64, Lease>,
    by_expiry: BTreeSet<(Instant, i64)>,
    /// The lease of each attached key.
    key_lease: HashMap<Vec<u8>, i64>,
    /// The low bits of the next id the store picks.
    next_id: i64,
}

impl Lessor {
    pub fn new() -> Self {
        // Ids the store picks start from the wall-clock time, as etcd's do, so ids from
        // before a restart are unlikely to be handed out again (they are skipped anyway).
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        Lessor {
            leases: HashMap::new(),
            by_expiry: BTreeSet::new(),
            key_lease: HashMap::new(),
            next_id: (millis & 0xff_ffff_ffff) << 20,
        }
    }

    pub fn get(&self, id: i64) -> Option<&Lease> {
        self.leases.get(&id)
    }

    pub fn contains(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }

    /// A positive id no live lease has.
    pub fn pick_id(&mut self) -> i64 {
        loop {
            self.next_id = (self.next_id + 1) & i64::MAX;
            if self.next_id != 0 && !self.leases.contains_key(&self.next_id) {
                return self.next_id;
            }
        }
    }

    /// Adds a lease due `ttl` seconds after `now`.
    pub fn grant(&mut self, id: i64, ttl: i64, now: Instant) {
        let expiry = deadline(now, ttl);
        self.by_expiry.insert((expiry, id));
        self.leases.insert(id, Lease { ttl, expiry, keys: BTreeSet::new() });
    }

    /// Pushes a lease's deadline to its full TTL from `now`; returns the TTL.
    pub fn renew(&mut self, id: i64, now: Instant) -> Option<i64> {
        let lease = self.leases.get_mut(&id)?;
        self.by_expiry.remove(&(lease.expiry, id));
        lease.expiry = deadline(now, lease.ttl);
        self.by_expiry.insert((lease.expiry, id));
        Some(lease.ttl)
    }

    /// Drops a lease; its keys, which the caller has deleted, are detached.
    pub fn remove(&mut self, id: i64) {
        if let Some(lease) = self.leases.remove(&id) {
            self.by_expiry.remove(&(lease.expiry, id));
            for key in lease.keys {
                self.key_lease.remove(&key);
            }
        }
    }

    /// The leases due at `now`, soonest first.
    pub fn expired(&self, now: Instant) -> Vec<i64> {
        self.by_expiry.iter().take_while(|(expiry, _)| *expiry <= now).map(|&(_, id)| id).collect()
    }

    /// Every key attached to a lease.
    pub fn attached_keys(&self) -> Vec<Vec<u8>> {
        self.key_lease.keys().cloned().collect()
    }

    /// Every lease id, soonest deadline first.
    pub fn ids_by_expiry(&self) -> Vec<i64> {
        self.by_expiry.iter().map(|&(_, id)| id).collect()
    }

    /// Tracks what a committed write did to attachments: a put attaches its key to the
    /// put's lease (detaching it from any other, or from all with lease 0); a delete
    /// detaches.
    pub fn apply(&mut self, changes: &[Change]) {
        for change in changes {
            let key = &change.kv.key;
            let lease = if change.tombstone { 0 } else { change.kv.lease };
            let old = self.key_lease.get(key).copied().unwrap_or(0);
            if old == lease {
                continue;
            }
            if let Some(l) = self.leases.get_mut(&old) {
                l.keys.remove(key);
            }
            self.key_lease.remove(key);
            self.attach(key.clone(), lease);
        }
    }

    /// Attaches `key` to `lease`, if the lease exists (lease 0 never does).
    pub fn attach(&mut self, key: Vec<u8>, lease: i64) {
        if let Some(l) = self.leases.get_mut(&lease) {
            l.keys.insert(key.clone());
            self.key_lease.insert(key, lease);
        }
    }
}

fn deadline(now: Instant, ttl: i64) -> Instant {
    // Grants refuse TTLs above MAX_TTL (about 285 years), which an `Instant` holds.
    now + Duration::from_secs(ttl.clamp(0, super::MAX_TTL) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::KeyValue;

    fn put(key: &str, lease: i64) -> Change {
        Change { kv: KeyValue { key: key.into(), lease, ..Default::default() }.into(), tombstone: false }
    }

    fn delete(key: &str) -> Change {
        Change { kv: KeyValue { key: key.into(), ..Default::default() }.into(), tombstone: true }
    }

    fn keys(lessor: &Lessor, id: i64) -> Vec<&[u8]> {
        lessor.get(id).unwrap().keys.iter().map(Vec::as_slice).collect()
    }

    #[test]
    fn attachments_follow_puts_and_deletes() {
        let now = Instant::now();
        let mut l = Lessor::new();
        l.grant(1, 10, now);
        l.grant(2, 10, now);
        l.apply(&[put("a", 1), put("b", 1), put("c", 2)]);
        assert_eq!(keys(&l, 1), [b"a".as_slice(), b"b"]);
        // Moving a key to another lease, to none, and deleting one.
        l.apply(&[put("a", 2), put("b", 0), delete("c")]);
        assert!(keys(&l, 1).is_empty());
        assert_eq!(keys(&l, 2), [b"a".as_slice()]);
        l.remove(2);
        l.grant(3, 10, now);
        // "a" is no longer attached to anything, so attaching it again works.
        l.apply(&[put("a", 3)]);
        assert_eq!(keys(&l, 3), [b"a".as_slice()]);
    }

    #[test]
    fn deadlines_order_expiry_and_renewal_moves_them() {
        let now = Instant::now();
        let mut l = Lessor::new();
        l.grant(7, 5, now);
        l.grant(8, 3, now);
        assert_eq!(l.ids_by_expiry(), [8, 7]);
        assert_eq!(l.expired(now + Duration::from_secs(3)), [8]);
        assert_eq!(l.renew(8, now + Duration::from_secs(3)), Some(3));
        assert_eq!(l.ids_by_expiry(), [7, 8]);
        assert_eq!(l.expired(now + Duration::from_secs(5)), [7]);
        assert_eq!(l.get(8).unwrap().remaining(now + Duration::from_millis(3500)), 2);
        assert_eq!(l.renew(9, now), None);
    }

    #[test]
    fn picked_ids_are_positive_and_unused() {
        let mut l = Lessor::new();
        let a = l.pick_id();
        l.grant(a + 1, 10, Instant::now());
        let b = l.pick_id();
        assert!(a > 0 && b > 0 && b != a + 1 && b != a);
    }
}
