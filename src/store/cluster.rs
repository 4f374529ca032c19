//! etcd's Cluster service and the Maintenance calls about the member (Status, Alarm,
//! MoveLeader), answered as a one-member etcd cluster answers them.

use super::Store;
use crate::cluster::{AlarmAction, AlarmMember, AlarmType, Cluster, Member, StatusResponse, RAFT_TERM};
use crate::error::{Error, Result};

impl Store {
    /// The store as a one-member cluster: identity, alarms, quota.
    pub fn cluster(&self) -> &Cluster {
        &self.shared.cluster
    }

    /// etcd's Status: the version, database size, this member as leader, the raft index
    /// (the store's revision) and one line per raised alarm.
    ///
    /// ```
    /// use etcdlite::{Options, Store};
    ///
    /// let store = Store::open(Options::memory())?;
    /// let status = store.status()?;
    /// assert_eq!(status.leader, store.cluster().member_id());
    /// assert_eq!(status.raft_index, 1);
    /// # Ok::<(), etcdlite::Error>(())
    /// ```
    pub fn status(&self) -> Result<StatusResponse> {
        let cluster = self.cluster();
        let size = self.db_size()?;
        let revision = self.current_revision();
        let errors = cluster
            .alarms()
            .into_iter()
            .map(|a| format!("memberID:{} alarm:{} ", a.member_id, a.alarm.as_str_name()))
            .collect();
        Ok(StatusResponse {
            header: cluster.header(revision),
            version: cluster.version(),
            db_size: size.total as i64,
            db_size_in_use: size.in_use as i64,
            leader: cluster.member_id(),
            raft_index: revision as u64,
            raft_term: RAFT_TERM,
            raft_applied_index: revision as u64,
            errors,
            is_learner: false,
        })
    }

    /// etcd's Alarm: lists the raised alarms (of `alarm`'s type, or all with
    /// [`AlarmType::None`]), raises `alarm` on `member_id`, or clears it. Answers the alarms
    /// listed, raised, or cleared (none when the alarm was not raised), as etcd does.
    pub fn alarm(&self, action: AlarmAction, member_id: u64, alarm: AlarmType) -> Vec<AlarmMember> {
        let cluster = self.cluster();
        match action {
            AlarmAction::Get => cluster
                .alarms()
                .into_iter()
                .filter(|a| alarm == AlarmType::None || a.alarm == alarm)
                .collect(),
            AlarmAction::Activate if alarm == AlarmType::None => Vec::new(),
            AlarmAction::Activate => {
                cluster.activate(member_id, alarm);
                vec![AlarmMember { member_id, alarm }]
            }
            AlarmAction::Deactivate if cluster.deactivate(member_id, alarm) => {
                vec![AlarmMember { member_id, alarm }]
            }
            AlarmAction::Deactivate => Vec::new(),
        }
    }

    /// etcd's MemberList: this one member.
    pub fn member_list(&self) -> Vec<Member> {
        vec![self.cluster().member()]
    }

    /// etcd's MemberAdd, as a one-member cluster answers it: no peer URLs is
    /// [`Error::InvalidPeerUrls`], this member's own URLs [`Error::PeerUrlsExist`], anything
    /// else [`Error::NotEnoughStartedMembers`] (a new member could never start).
    pub fn member_add(&self, peer_urls: &[String]) -> Result<Member> {
        if peer_urls.is_empty() {
            return Err(Error::InvalidPeerUrls);
        }
        let own = self.cluster().member().peer_urls;
        if peer_urls.iter().any(|url| own.contains(url)) {
            return Err(Error::PeerUrlsExist);
        }
        Err(Error::NotEnoughStartedMembers)
    }

    /// etcd's MemberRemove: removing the only member fails with
    /// [`Error::NotEnoughStartedMembers`], any other id with [`Error::MemberNotFound`].
    pub fn member_remove(&self, id: u64) -> Result<Vec<Member>> {
        self.check_member(id)?;
        Err(Error::NotEnoughStartedMembers)
    }

    /// etcd's MemberUpdate: replaces this member's peer URLs; answers the member list.
    pub fn member_update(&self, id: u64, peer_urls: Vec<String>) -> Result<Vec<Member>> {
        self.check_member(id)?;
        if peer_urls.is_empty() {
            return Err(Error::InvalidPeerUrls);
        }
        self.cluster().set_peer_urls(peer_urls);
        Ok(self.member_list())
    }

    /// etcd's MemberPromote: the only member is no learner ([`Error::NotLearner`]); any
    /// other id is [`Error::MemberNotFound`].
    pub fn member_promote(&self, id: u64) -> Result<Vec<Member>> {
        self.check_member(id)?;
        Err(Error::NotLearner)
    }

    /// etcd's MoveLeader: to this member it is done already; to any other id it is
    /// [`Error::BadLeaderTransferee`].
    pub fn move_leader(&self, target_id: u64) -> Result<()> {
        if target_id != self.cluster().member_id() {
            return Err(Error::BadLeaderTransferee);
        }
        Ok(())
    }

    fn check_member(&self, id: u64) -> Result<()> {
        if id == self.cluster().member_id() {
            Ok(())
        } else {
            Err(Error::MemberNotFound)
        }
    }
}
