//! The store as a one-member etcd cluster: the member's identity, its alarms and its space
//! quota, which etcd's Cluster and Maintenance services report and its writes are checked
//! against.
//!
//! A [`Store`](crate::Store) is always the leader of a cluster of one. Every face of it
//! (the sync [`Store`](crate::Store) calls, the async [`client`](crate::client), the
//! server) shares one [`Cluster`], so an alarm raised through one is seen through all.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::txn::request::ResponseHeader;

/// The raft term a single member reports: it won its one election and never lost it.
pub const RAFT_TERM: u64 = 2;

/// etcd's default space quota (`--quota-backend-bytes`): 2 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// The etcd version a store reports unless told otherwise.
pub const DEFAULT_ETCD_VERSION: &str = "3.5.0";

/// An alarm a member can raise (etcd's `AlarmType`; numbers are etcd's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlarmType {
    /// No alarm: in a request, "every alarm".
    #[default]
    None = 0,
    /// The space quota was exceeded: writes are refused until it is cleared.
    Nospace = 1,
    /// A data inconsistency was found.
    Corrupt = 2,
}

impl AlarmType {
    /// The alarm with etcd's number `number`, if it is one.
    pub fn from_i32(number: i32) -> Option<AlarmType> {
        match number {
            0 => Some(AlarmType::None),
            1 => Some(AlarmType::Nospace),
            2 => Some(AlarmType::Corrupt),
            _ => None,
        }
    }

    /// The name etcd gives the alarm (`NOSPACE`).
    pub fn as_str_name(&self) -> &'static str {
        match self {
            AlarmType::None => "NONE",
            AlarmType::Nospace => "NOSPACE",
            AlarmType::Corrupt => "CORRUPT",
        }
    }
}

/// What an alarm request does (etcd's `AlarmRequest.AlarmAction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AlarmAction {
    /// Lists the raised alarms (of one type, or all with [`AlarmType::None`]).
    #[default]
    Get = 0,
    /// Raises an alarm.
    Activate = 1,
    /// Clears an alarm.
    Deactivate = 2,
}

impl AlarmAction {
    /// The action with etcd's number `number`, if it is one.
    pub fn from_i32(number: i32) -> Option<AlarmAction> {
        match number {
            0 => Some(AlarmAction::Get),
            1 => Some(AlarmAction::Activate),
            2 => Some(AlarmAction::Deactivate),
            _ => None,
        }
    }
}

/// One raised alarm: which member raised it, and which alarm (etcd's `AlarmMember`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlarmMember {
    /// The member that raised it.
    pub member_id: u64,
    /// The alarm.
    pub alarm: AlarmType,
}

impl AlarmMember {
    /// The member that raised it.
    pub fn member_id(&self) -> u64 {
        self.member_id
    }

    /// The alarm.
    pub fn alarm(&self) -> AlarmType {
        self.alarm
    }
}

/// A cluster member as the Cluster service lists it (etcd's `Member`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Member {
    /// The member id.
    pub id: u64,
    /// The member's name (`--name`).
    pub name: String,
    /// The URLs its peers reach it on.
    pub peer_urls: Vec<String>,
    /// The URLs clients reach it on.
    pub client_urls: Vec<String>,
    /// True for a learner (never, for the one member a store is).
    pub is_learner: bool,
}

impl Member {
    /// The member id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The member's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URLs its peers reach it on.
    pub fn peer_urls(&self) -> &[String] {
        &self.peer_urls
    }

    /// The URLs clients reach it on.
    pub fn client_urls(&self) -> &[String] {
        &self.client_urls
    }

    /// True for a learner.
    pub fn is_learner(&self) -> bool {
        self.is_learner
    }
}

/// What a member reports of itself (etcd's `StatusResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusResponse {
    /// Header; `revision` is the current revision.
    pub header: ResponseHeader,
    /// The etcd version the member reports.
    pub version: String,
    /// Bytes the engine occupies.
    pub db_size: i64,
    /// Bytes live data holds.
    pub db_size_in_use: i64,
    /// The leader's member id: this member's.
    pub leader: u64,
    /// The raft index: the store's revision (etcd counts raft entries).
    pub raft_index: u64,
    /// The raft term ([`RAFT_TERM`]).
    pub raft_term: u64,
    /// The applied raft index: the same as `raft_index`.
    pub raft_applied_index: u64,
    /// One line per raised alarm, as etcd words it (`memberID:1 alarm:NOSPACE `).
    pub errors: Vec<String>,
    /// Never, for the one member a store is.
    pub is_learner: bool,
}

/// Who the member is: its name and URLs, and the ids derived from them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `--name`.
    pub name: String,
    /// Derived from the name and peer URLs, so it is stable across restarts.
    pub member_id: u64,
    /// Derived from the member id (a one-member cluster).
    pub cluster_id: u64,
    /// `--advertise-client-urls`.
    pub client_urls: Vec<String>,
    /// The peer URLs reported (a single member talks to no peers).
    pub peer_urls: Vec<String>,
}

impl Identity {
    /// The identity of member `name` advertising `client_urls` and `peer_urls`.
    pub fn new(name: &str, client_urls: Vec<String>, peer_urls: Vec<String>) -> Identity {
        let mut digest = Sha256::new();
        digest.update(name.as_bytes());
        for url in &peer_urls {
            digest.update(b"\0");
            digest.update(url.as_bytes());
        }
        let member = digest.finalize();
        let member_id = u64::from_be_bytes(member[..8].try_into().expect("8 bytes"));
        let cluster = Sha256::new().chain_update(b"etcdlite-cluster\0").chain_update(member).finalize();
        let cluster_id = u64::from_be_bytes(cluster[..8].try_into().expect("8 bytes"));
        Identity { name: name.to_owned(), member_id, cluster_id, client_urls, peer_urls }
    }
}

impl Default for Identity {
    /// etcd's defaults: member `default` on `http://localhost:2379`, peers on
    /// `http://localhost:2380`.
    fn default() -> Self {
        Identity::new("default", vec!["http://localhost:2379".into()], vec!["http://localhost:2380".into()])
    }
}

/// How long a measured database size serves the quota guard: etcd's backend batch
/// interval, by which etcd's own size figure lags behind its writes.
const SIZE_REFRESH: Duration = Duration::from_millis(100);

/// The database size the quota guard compares with. Measuring it reads the engine's size
/// statistics (for RocksDB, three properties of each column family), a few percent of a
/// put's cost, so a measurement serves for [`SIZE_REFRESH`], with the cost of every write
/// admitted since added to it, so the estimate follows growth between measurements.
#[derive(Default)]
struct SpaceGauge {
    measured_at: Option<Instant>,
    size: u64,
}

/// The cluster state of one store: identity, version, alarms and quota (see the module
/// docs). Reach it with [`Store::cluster`](crate::Store::cluster).
pub struct Cluster {
    identity: RwLock<Identity>,
    version: RwLock<String>,
    quota_bytes: Mutex<u64>,
    alarms: Mutex<BTreeSet<AlarmMember>>,
    space: Mutex<SpaceGauge>,
}

impl Cluster {
    pub(crate) fn new(quota_bytes: u64) -> Cluster {
        Cluster {
            identity: RwLock::new(Identity::default()),
            version: RwLock::new(DEFAULT_ETCD_VERSION.to_owned()),
            quota_bytes: Mutex::new(quota_bytes),
            alarms: Mutex::new(BTreeSet::new()),
            space: Mutex::new(SpaceGauge::default()),
        }
    }

    /// This member's identity.
    pub fn identity(&self) -> Identity {
        self.identity.read().clone()
    }

    /// This member's id.
    pub fn member_id(&self) -> u64 {
        self.identity.read().member_id
    }

    /// Makes the member `identity` (a server sets its name and URLs when it binds).
    pub fn set_identity(&self, identity: Identity) {
        *self.identity.write() = identity;
    }

    /// The etcd version Status reports.
    pub fn version(&self) -> String {
        self.version.read().clone()
    }

    /// Sets the etcd version Status reports (clients such as Kubernetes check it).
    pub fn set_version(&self, version: impl Into<String>) {
        *self.version.write() = version.into();
    }

    /// The space quota in bytes.
    pub fn quota_bytes(&self) -> u64 {
        *self.quota_bytes.lock()
    }

    /// Sets the space quota (etcd's `--quota-backend-bytes`).
    pub fn set_quota_bytes(&self, bytes: u64) {
        *self.quota_bytes.lock() = bytes;
        self.space_changed();
    }

    /// Replaces the peer URLs this member reports (its ids stay).
    pub(crate) fn set_peer_urls(&self, urls: Vec<String>) {
        self.identity.write().peer_urls = urls;
    }

    /// The member this is, as the Cluster service lists it.
    pub fn member(&self) -> Member {
        let identity = self.identity.read();
        Member {
            id: identity.member_id,
            name: identity.name.clone(),
            peer_urls: identity.peer_urls.clone(),
            client_urls: identity.client_urls.clone(),
            is_learner: false,
        }
    }

    /// A response header from this member: cluster, member and term filled in, and
    /// `revision` when the response carries none (as etcd's v3rpc layer does).
    pub fn header(&self, revision: i64) -> ResponseHeader {
        let identity = self.identity.read();
        ResponseHeader {
            cluster_id: identity.cluster_id,
            member_id: identity.member_id,
            revision,
            raft_term: RAFT_TERM,
        }
    }

    /// The alarms raised, in order.
    pub fn alarms(&self) -> Vec<AlarmMember> {
        self.alarms.lock().iter().copied().collect()
    }

    /// Raises `alarm` on `member_id`; false if it was already raised.
    pub fn activate(&self, member_id: u64, alarm: AlarmType) -> bool {
        self.alarms.lock().insert(AlarmMember { member_id, alarm })
    }

    /// Clears `alarm` on `member_id`; false if it was not raised. The database size is
    /// measured afresh for the next write, as space is usually reclaimed before NOSPACE is
    /// disarmed.
    pub fn deactivate(&self, member_id: u64, alarm: AlarmType) -> bool {
        self.space_changed();
        self.alarms.lock().remove(&AlarmMember { member_id, alarm })
    }

    /// Makes the quota guard measure the database size afresh: space was given back.
    pub fn space_changed(&self) {
        self.space.lock().measured_at = None;
    }

    /// etcd's quota guard for a write adding about `cost` bytes to a database whose size
    /// `measure` reads: refused with [`Error::NoSpace`] while NOSPACE is raised, and
    /// refused (raising NOSPACE) when it would take the database past the quota. Writes
    /// that add nothing (deletes, revokes, compactions) always pass.
    pub(crate) fn check_space(&self, cost: usize, measure: impl FnOnce() -> u64) -> Result<()> {
        if cost == 0 {
            return Ok(());
        }
        if self.alarms.lock().iter().any(|a| a.alarm == AlarmType::Nospace) {
            return Err(Error::NoSpace);
        }
        let quota = self.quota_bytes();
        let mut space = self.space.lock();
        if space.measured_at.is_none_or(|at| at.elapsed() >= SIZE_REFRESH) {
            space.size = measure();
            space.measured_at = Some(Instant::now());
        }
        let size = space.size;
        if size.saturating_add(cost as u64) >= quota {
            drop(space);
            if self.activate(self.member_id(), AlarmType::Nospace) {
                tracing::warn!(size, quota, "database space exceeded; NOSPACE alarm raised");
            }
            return Err(Error::NoSpace);
        }
        space.size += cost as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_derived_from_the_name_and_peer_urls() {
        let a = Identity::new("a", vec![], vec!["http://127.0.0.1:2380".into()]);
        assert_eq!(a, Identity::new("a", vec![], vec!["http://127.0.0.1:2380".into()]));
        assert_ne!(a.member_id, Identity::new("b", vec![], vec!["http://127.0.0.1:2380".into()]).member_id);
        assert_ne!(a.member_id, a.cluster_id);
    }

    #[test]
    fn the_quota_guard_raises_nospace_once_and_refuses_until_cleared() {
        let cluster = Cluster::new(1000);
        assert_eq!(cluster.check_space(100, || 800), Ok(()));
        assert_eq!(cluster.check_space(100, || 800), Err(Error::NoSpace));
        let member = cluster.member_id();
        assert_eq!(cluster.alarms(), [AlarmMember { member_id: member, alarm: AlarmType::Nospace }]);
        assert_eq!(cluster.check_space(1, || 0), Err(Error::NoSpace));
        assert_eq!(cluster.check_space(0, || 0), Ok(()));
        assert!(cluster.deactivate(member, AlarmType::Nospace));
        assert_eq!(cluster.check_space(1, || 0), Ok(()));
    }
}
