//! The members added to the one-member cluster, and etcd's checks on membership changes.
//!
//! Invariant: this member is the one started voter; every added member is unstarted (no
//! name, no client URLs) and stays so, since no process ever joins. The checks are those a
//! one-member etcd 3.5 makes (`mayAddMember`, `mayRemoveMember`, `isLearnerReady`,
//! `ValidateConfigurationChange`), so every call answers as etcd answers it.

use std::collections::{BTreeMap, BTreeSet};

use super::id::member_id;
use super::Member;
use crate::error::{Error, Result};

/// etcd's `maxLearners`: at most one learner at a time.
const MAX_LEARNERS: usize = 1;

/// The added members by id, and the ids removed (etcd refuses to reuse one).
#[derive(Debug, Default)]
pub(crate) struct Membership {
    added: BTreeMap<u64, Member>,
    removed: BTreeSet<u64>,
}

impl Membership {
    /// Every member, `me` (this member) included, by id as etcd lists them.
    pub(crate) fn list(&self, me: Member) -> Vec<Member> {
        let mut all: Vec<Member> = std::iter::once(me).chain(self.added.values().cloned()).collect();
        all.sort_by_key(|m| m.id);
        all
    }

    fn added_voters(&self) -> usize {
        self.added.values().filter(|m| !m.is_learner).count()
    }

    /// Adds an unstarted member with `peer_urls` (already read by
    /// [`parse_peer_urls`](super::parse_peer_urls)) at Unix second `now`.
    pub(crate) fn add(
        &mut self,
        me: &Member,
        peer_urls: Vec<String>,
        is_learner: bool,
        now: u64,
    ) -> Result<Member> {
        // etcd's strict reconfiguration check: a voter may join a cluster of one started
        // voter only (no quorum is left to lose), and nothing joins while a voter added
        // before has never connected.
        if self.added_voters() > 0 {
            return Err(if is_learner { Error::Unhealthy } else { Error::NotEnoughStartedMembers });
        }
        let id = member_id(&peer_urls, "", Some(now));
        if self.removed.contains(&id) {
            return Err(Error::MemberNotFound);
        }
        if id == me.id || self.added.contains_key(&id) {
            return Err(Error::MemberExist);
        }
        if self.peer_url_taken(me, None, &peer_urls) {
            return Err(Error::PeerUrlsExist);
        }
        if is_learner && self.added.values().filter(|m| m.is_learner).count() >= MAX_LEARNERS {
            return Err(Error::TooManyLearners);
        }
        let member = Member { id, name: String::new(), peer_urls, client_urls: Vec::new(), is_learner };
        self.added.insert(id, member.clone());
        Ok(member)
    }

    /// Whether a member other than `except` has one of `urls`.
    fn peer_url_taken(&self, me: &Member, except: Option<u64>, urls: &[String]) -> bool {
        std::iter::once(me)
            .chain(self.added.values())
            .filter(|m| Some(m.id) != except)
            .any(|m| m.peer_urls.iter().any(|u| urls.contains(u)))
    }

    /// Removes member `id`. A learner goes at once; a voter only if the started voters left
    /// keep a quorum, which this member alone does only when no other voter is left.
    pub(crate) fn remove(&mut self, me: &Member, id: u64) -> Result<()> {
        let learner = self.added.get(&id).is_some_and(|m| m.is_learner);
        if !learner {
            let (voters_left, started_left) = if id == me.id {
                (self.added_voters(), 0)
            } else {
                (1 + self.added.values().filter(|m| !m.is_learner && m.id != id).count(), 1)
            };
            if started_left < voters_left / 2 + 1 {
                return Err(Error::NotEnoughStartedMembers);
            }
        }
        self.added.remove(&id).ok_or(Error::MemberNotFound)?;
        self.removed.insert(id);
        Ok(())
    }

    /// Checks that member `id` may take `urls` (etcd takes them as given, unread): it must
    /// be a member, and no other member may have one of them.
    pub(crate) fn check_update(&self, me: &Member, id: u64, urls: &[String]) -> Result<()> {
        if id != me.id && !self.added.contains_key(&id) {
            return Err(Error::MemberNotFound);
        }
        if self.peer_url_taken(me, Some(id), urls) {
            return Err(Error::PeerUrlsExist);
        }
        Ok(())
    }

    /// Gives added member `id` the peer URLs `urls` (checked by
    /// [`check_update`](Membership::check_update)).
    pub(crate) fn update(&mut self, id: u64, urls: Vec<String>) {
        if let Some(member) = self.added.get_mut(&id) {
            member.peer_urls = urls;
        }
    }

    /// Why member `id` cannot be promoted: an added member never catches up with this one
    /// (it never starts), and this member is no learner.
    pub(crate) fn promote_refusal(&self, me: &Member, id: u64) -> Error {
        if id == me.id {
            Error::NotLearner
        } else if self.added.contains_key(&id) {
            Error::LearnerNotReady
        } else {
            Error::MemberNotFound
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Member {
        Member {
            id: 1,
            name: "default".into(),
            peer_urls: vec!["http://127.0.0.1:2380".into()],
            client_urls: vec!["http://127.0.0.1:2379".into()],
            is_learner: false,
        }
    }

    fn url(u: &str) -> Vec<String> {
        vec![u.to_owned()]
    }

    #[test]
    fn one_learner_may_join_and_leave() {
        let (me, mut m) = (me(), Membership::default());
        let learner = m.add(&me, url("http://127.0.0.1:1"), true, 10).unwrap();
        assert_eq!((learner.name.as_str(), learner.client_urls.len(), learner.is_learner), ("", 0, true));
        assert_eq!(m.list(me.clone()).len(), 2);
        assert_eq!(m.add(&me, url("http://127.0.0.1:2"), true, 10), Err(Error::TooManyLearners));
        let overlapping = vec!["http://127.0.0.1:1".to_owned(), "http://127.0.0.1:9".to_owned()];
        assert_eq!(m.add(&me, overlapping, true, 10), Err(Error::PeerUrlsExist));
        assert_eq!(m.promote_refusal(&me, learner.id), Error::LearnerNotReady);
        assert_eq!(m.remove(&me, learner.id), Ok(()));
        assert_eq!(m.remove(&me, learner.id), Err(Error::MemberNotFound));
        assert_eq!(m.promote_refusal(&me, learner.id), Error::MemberNotFound);
        // The same URLs in the same second make the same id, which etcd never reuses.
        assert_eq!(m.add(&me, url("http://127.0.0.1:1"), true, 10), Err(Error::MemberNotFound));
        assert!(m.add(&me, url("http://127.0.0.1:1"), true, 11).is_ok());
    }

    #[test]
    fn an_added_voter_blocks_every_later_change_but_its_own_removal() {
        let (me, mut m) = (me(), Membership::default());
        let voter = m.add(&me, url("http://127.0.0.1:5"), false, 10).unwrap();
        assert_eq!(m.add(&me, url("http://127.0.0.1:6"), false, 10), Err(Error::NotEnoughStartedMembers));
        assert_eq!(m.add(&me, url("http://127.0.0.1:7"), true, 10), Err(Error::Unhealthy));
        assert_eq!(m.remove(&me, me.id), Err(Error::NotEnoughStartedMembers));
        assert_eq!(m.remove(&me, 12345), Err(Error::NotEnoughStartedMembers));
        assert_eq!(m.promote_refusal(&me, voter.id), Error::LearnerNotReady);
        assert_eq!(m.remove(&me, voter.id), Ok(()));
        assert_eq!(m.remove(&me, 12345), Err(Error::MemberNotFound));
    }

    #[test]
    fn updates_check_the_member_and_the_other_members_urls() {
        let (me, mut m) = (me(), Membership::default());
        let learner = m.add(&me, url("http://127.0.0.1:1"), true, 10).unwrap();
        assert_eq!(m.check_update(&me, learner.id, &url("http://127.0.0.1:2380")), Err(Error::PeerUrlsExist));
        assert_eq!(m.check_update(&me, me.id, &url("http://127.0.0.1:1")), Err(Error::PeerUrlsExist));
        assert_eq!(m.check_update(&me, learner.id, &url("http://127.0.0.1:1")), Ok(()));
        assert_eq!(m.check_update(&me, 12345, &url("http://127.0.0.1:3")), Err(Error::MemberNotFound));
        m.update(learner.id, url("http://127.0.0.1:3"));
        let list = m.list(me.clone());
        let updated = list.iter().find(|member| member.id == learner.id).unwrap();
        assert_eq!(updated.peer_urls, url("http://127.0.0.1:3"));
    }
}
