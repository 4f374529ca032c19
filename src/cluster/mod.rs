//! The store as a one-member etcd cluster: the member's identity, its alarms and its space
//! quota, which etcd's Cluster and Maintenance services report and its writes are checked
//! against.
//!
//! A [`Store`](crate::Store) is always the leader of a cluster of one. Every face of it
//! (the sync [`Store`](crate::Store) calls, the async [`client`](crate::client), the
//! server) shares one [`Cluster`], so an alarm raised through one is seen through all.
//!
//! Members can be added (as etcd lets a cluster of one take a second member), but none of
//! them ever starts: [`membership`] keeps them and answers every change as etcd does.
//! Ids are etcd's ([`id`]).

mod downgrade;
mod id;
mod membership;

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Mutex, RwLock};

pub use self::downgrade::DowngradeAction;
use self::downgrade::{ClusterVersion, Downgrade};
pub use self::id::{cluster_id, member_id, parse_peer_urls, parse_urls, DEFAULT_CLUSTER_TOKEN};
use self::membership::Membership;
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
    /// True for a learner (never for this member; an added member may be one).
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

/// Who the member is: its name and URLs, and the ids etcd derives from them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `--name`.
    pub name: String,
    /// Derived from the peer URLs and the cluster token as etcd derives it
    /// ([`member_id`]), so it is etcd's and stable across restarts.
    pub member_id: u64,
    /// Derived from the member id as etcd derives a new cluster's ([`cluster_id`]).
    pub cluster_id: u64,
    /// `--advertise-client-urls`.
    pub client_urls: Vec<String>,
    /// `--initial-advertise-peer-urls` (reported only: a single member has no peers).
    pub peer_urls: Vec<String>,
}

impl Identity {
    /// The identity of member `name` advertising `client_urls` and `peer_urls`, bootstrapped
    /// alone in the cluster named by `cluster_token` (`--initial-cluster-token`).
    ///
    /// ```
    /// use etcdlite::cluster::{Identity, DEFAULT_CLUSTER_TOKEN};
    ///
    /// let urls = vec!["http://127.0.0.1:2380".to_owned()];
    /// let me = Identity::new("n1", vec![], urls, DEFAULT_CLUSTER_TOKEN);
    /// // What etcd 3.5.1 reports when started with these peer URLs.
    /// assert_eq!((me.member_id, me.cluster_id), (13195394291058371180, 2037210783374497686));
    /// ```
    pub fn new(
        name: &str,
        client_urls: Vec<String>,
        peer_urls: Vec<String>,
        cluster_token: &str,
    ) -> Identity {
        let member_id = member_id(&peer_urls, cluster_token, None);
        let cluster_id = cluster_id(&[member_id]);
        Identity { name: name.to_owned(), member_id, cluster_id, client_urls, peer_urls }
    }
}

impl Default for Identity {
    /// etcd's defaults: member `default` on `http://localhost:2379`, peers on
    /// `http://localhost:2380`, cluster token `etcd-cluster`; so etcd's ids.
    fn default() -> Self {
        Identity::new(
            "default",
            vec!["http://localhost:2379".into()],
            vec!["http://localhost:2380".into()],
            DEFAULT_CLUSTER_TOKEN,
        )
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
    /// Taken before `identity` where both are.
    membership: Mutex<Membership>,
    version: RwLock<String>,
    quota_bytes: Mutex<u64>,
    alarms: Mutex<BTreeSet<AlarmMember>>,
    space: Mutex<SpaceGauge>,
    downgrade: Mutex<Downgrade>,
}

impl Cluster {
    pub(crate) fn new(quota_bytes: u64) -> Cluster {
        Cluster {
            identity: RwLock::new(Identity::default()),
            membership: Mutex::new(Membership::default()),
            version: RwLock::new(DEFAULT_ETCD_VERSION.to_owned()),
            quota_bytes: Mutex::new(quota_bytes),
            alarms: Mutex::new(BTreeSet::new()),
            space: Mutex::new(SpaceGauge::default()),
            downgrade: Mutex::new(Downgrade::default()),
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

    /// Every member, this one and those added, by id (etcd's MemberList).
    pub fn members(&self) -> Vec<Member> {
        self.membership.lock().list(self.member())
    }

    /// etcd's MemberAdd: an unstarted member (no name, no client URLs) with `peer_urls`, its
    /// id derived from them and the current second as etcd derives it. Answers the member
    /// and every member after the add. Refused as a one-member etcd refuses it: unreadable
    /// URLs [`Error::InvalidPeerUrls`], URLs a member has [`Error::PeerUrlsExist`], a second
    /// learner [`Error::TooManyLearners`], anything after a voter was added
    /// [`Error::NotEnoughStartedMembers`] (a voter) or [`Error::Unhealthy`] (a learner).
    pub fn add_member(&self, peer_urls: &[String], is_learner: bool) -> Result<(Member, Vec<Member>)> {
        let urls = parse_peer_urls(peer_urls)?;
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut membership = self.membership.lock();
        let me = self.member();
        let added = membership.add(&me, urls, is_learner, now)?;
        tracing::info!(id = %format!("{:016x}", added.id), is_learner, "added a member, which never starts");
        Ok((added, membership.list(me)))
    }

    /// etcd's MemberRemove: answers the members left. An added learner goes; an added
    /// voter too (where etcd, having lost its quorum to it, never answers). This member
    /// cannot go ([`Error::NotEnoughStartedMembers`]); an unknown id is
    /// [`Error::MemberNotFound`].
    pub fn remove_member(&self, id: u64) -> Result<Vec<Member>> {
        let mut membership = self.membership.lock();
        let me = self.member();
        membership.remove(&me, id)?;
        Ok(membership.list(me))
    }

    /// etcd's MemberUpdate: gives member `id` the peer URLs `urls`, taken as given (as etcd
    /// takes them), and answers every member. This member's ids stay. URLs another member
    /// has are [`Error::PeerUrlsExist`]; an unknown id is [`Error::MemberNotFound`].
    pub fn update_member(&self, id: u64, urls: Vec<String>) -> Result<Vec<Member>> {
        let mut membership = self.membership.lock();
        let me = self.member();
        membership.check_update(&me, id, &urls)?;
        if id == me.id {
            self.identity.write().peer_urls = urls;
        } else {
            membership.update(id, urls);
        }
        Ok(membership.list(self.member()))
    }

    /// etcd's MemberPromote, which never succeeds here: this member is no learner
    /// ([`Error::NotLearner`]), an added member never catches up ([`Error::LearnerNotReady`]),
    /// any other id is [`Error::MemberNotFound`].
    pub fn promote_member(&self, id: u64) -> Result<Vec<Member>> {
        Err(self.membership.lock().promote_refusal(&self.member(), id))
    }

    /// Whether the etcd version this member presents ([`version`](Cluster::version)) has
    /// the Downgrade call: 3.5 and later do, 3.4 and earlier do not. A version that is none
    /// (not `major.minor.patch`) is taken as one that does, so that Downgrade answers it as
    /// etcd 3.5 does ([`Error::ClusterVersionUnavailable`]).
    ///
    /// ```
    /// use etcdlite::{Options, Store};
    ///
    /// let store = Store::open(Options::memory())?;
    /// let cluster = store.cluster();
    /// assert!(cluster.has_downgrade());
    /// cluster.set_version("3.4.23");
    /// assert!(!cluster.has_downgrade());
    /// # Ok::<(), etcdlite::Error>(())
    /// ```
    pub fn has_downgrade(&self) -> bool {
        ClusterVersion::of_server(&self.version()).is_none_or(ClusterVersion::has_downgrade)
    }

    /// etcd 3.5's Downgrade: validates a downgrade to `version` (only the minor version
    /// below the cluster's, `3.4` for 3.5, and none under way), starts one or cancels the
    /// one under way; answers the cluster version (`3.5.0`). A downgrade started stays under
    /// way until cancelled, as in a one-member etcd, whose member never runs the target
    /// version.
    ///
    /// ```
    /// use etcdlite::cluster::DowngradeAction;
    /// use etcdlite::{Error, Options, Store};
    ///
    /// let store = Store::open(Options::memory())?;
    /// let cluster = store.cluster();
    /// assert_eq!(cluster.downgrade(DowngradeAction::Validate, "3.4")?, "3.5.0");
    /// assert_eq!(cluster.downgrade(DowngradeAction::Validate, "3.3"), Err(Error::InvalidDowngradeTargetVersion));
    /// cluster.downgrade(DowngradeAction::Enable, "3.4")?;
    /// assert_eq!(cluster.downgrade(DowngradeAction::Enable, "3.4"), Err(Error::DowngradeInProcess));
    /// cluster.downgrade(DowngradeAction::Cancel, "")?;
    /// # Ok::<(), etcdlite::Error>(())
    /// ```
    pub fn downgrade(&self, action: DowngradeAction, version: &str) -> Result<String> {
        let cluster = ClusterVersion::of_server(&self.version());
        self.downgrade.lock().apply(action, version, cluster)
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
    fn the_default_identity_has_the_ids_of_a_default_etcd() {
        // etcd 3.5.1 and 3.4.23 with default peer URLs and token: member 8e9e05c52164694d,
        // cluster cdf818194e3a8c32 (read from their member list headers).
        let me = Identity::default();
        assert_eq!((me.member_id, me.cluster_id), (0x8e9e05c52164694d, 0xcdf818194e3a8c32));
        // The name plays no part, as in etcd.
        let peers = vec!["http://localhost:2380".to_owned()];
        assert_eq!(Identity::new("other", vec![], peers, DEFAULT_CLUSTER_TOKEN).member_id, me.member_id);
    }

    #[test]
    fn added_members_are_listed_updated_and_removed() {
        let cluster = Cluster::new(DEFAULT_QUOTA_BYTES);
        let me = cluster.member_id();
        let (learner, list) = cluster.add_member(&["http://127.0.0.1:1".into()], true).unwrap();
        assert_eq!(list.iter().map(|m| m.id).collect::<BTreeSet<_>>(), BTreeSet::from([me, learner.id]));
        let updated = cluster.update_member(me, vec!["http://127.0.0.1:9".into()]).unwrap();
        assert!(updated.iter().any(|m| m.id == me && m.peer_urls == ["http://127.0.0.1:9"]));
        assert_eq!(cluster.member_id(), me, "ids stay when peer URLs change");
        assert_eq!(cluster.promote_member(learner.id), Err(Error::LearnerNotReady));
        assert_eq!(cluster.remove_member(learner.id).unwrap(), [cluster.member()]);
        assert_eq!(cluster.add_member(&[], false), Err(Error::InvalidPeerUrls));
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
