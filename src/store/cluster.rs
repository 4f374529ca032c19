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

    /// etcd's MemberList: this member and those added, by id.
    pub fn member_list(&self) -> Vec<Member> {
        self.cluster().members()
    }

    /// etcd's MemberAdd (see [`Cluster::add_member`]): answers the unstarted member added
    /// and every member after the add.
    ///
    /// ```
    /// use etcdlite::{Error, Options, Store};
    ///
    /// let store = Store::open(Options::memory())?;
    /// let (learner, members) = store.member_add(&["http://127.0.0.1:2390".to_owned()], true)?;
    /// assert!(learner.is_learner && learner.name.is_empty());
    /// assert_eq!(members.len(), 2);
    /// assert_eq!(store.member_promote(learner.id), Err(Error::LearnerNotReady));
    /// assert_eq!(store.member_remove(learner.id)?.len(), 1);
    /// # Ok::<(), etcdlite::Error>(())
    /// ```
    pub fn member_add(&self, peer_urls: &[String], is_learner: bool) -> Result<(Member, Vec<Member>)> {
        self.cluster().add_member(peer_urls, is_learner)
    }

    /// etcd's MemberRemove (see [`Cluster::remove_member`]): answers the members left.
    pub fn member_remove(&self, id: u64) -> Result<Vec<Member>> {
        self.cluster().remove_member(id)
    }

    /// etcd's MemberUpdate (see [`Cluster::update_member`]): answers every member.
    pub fn member_update(&self, id: u64, peer_urls: Vec<String>) -> Result<Vec<Member>> {
        self.cluster().update_member(id, peer_urls)
    }

    /// etcd's MemberPromote (see [`Cluster::promote_member`]), which a cluster of one
    /// started member always refuses.
    pub fn member_promote(&self, id: u64) -> Result<Vec<Member>> {
        self.cluster().promote_member(id)
    }

    /// etcd's MoveLeader: to this member it is done already; to any other id it is
    /// [`Error::BadLeaderTransferee`].
    pub fn move_leader(&self, target_id: u64) -> Result<()> {
        if target_id != self.cluster().member_id() {
            return Err(Error::BadLeaderTransferee);
        }
        Ok(())
    }
}
