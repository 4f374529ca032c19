//! The Cluster service: the member list and membership changes, answered in-process as a
//! one-member etcd cluster answers them.

use super::embedded::Embedded;
use super::{dispatch, header_accessors, Backend, Result};
use crate::txn::request::ResponseHeader;

pub use crate::cluster::Member;

/// Options of a member add.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberAddOptions {
    pub(crate) is_learner: bool,
}

impl MemberAddOptions {
    /// A voting member.
    pub const fn new() -> Self {
        MemberAddOptions { is_learner: false }
    }

    /// Adds the member as a learner.
    pub const fn with_is_learner(mut self) -> Self {
        self.is_learner = true;
        self
    }
}

/// The answer to a member add.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberAddResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) member: Option<Member>,
    pub(crate) members: Vec<Member>,
}

impl MemberAddResponse {
    header_accessors!();

    /// The member added.
    pub fn member(&self) -> Option<&Member> {
        self.member.as_ref()
    }

    /// Every member after the add.
    pub fn member_list(&self) -> &[Member] {
        &self.members
    }
}

/// Declares a Cluster response that carries the member list.
macro_rules! members_response {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            pub(crate) header: Option<ResponseHeader>,
            pub(crate) members: Vec<Member>,
        }

        impl $name {
            header_accessors!();

            /// Every member.
            pub fn members(&self) -> &[Member] {
                &self.members
            }
        }
    };
}

members_response!(
    /// The answer to a member remove.
    MemberRemoveResponse
);
members_response!(
    /// The answer to a member update.
    MemberUpdateResponse
);
members_response!(
    /// The member list.
    MemberListResponse
);
members_response!(
    /// The answer to a member promotion.
    MemberPromoteResponse
);

/// The Cluster service of a [`Client`](super::Client).
#[derive(Clone, Debug)]
pub struct ClusterClient {
    pub(crate) backend: Backend,
}

impl ClusterClient {
    /// Adds a member with peer `urls` (a learner with [`MemberAddOptions::with_is_learner`]).
    /// In-process, as a one-member etcd: the member is added but never starts (see
    /// [`Cluster::add_member`](crate::cluster::Cluster::add_member)).
    pub async fn member_add(
        &mut self,
        urls: impl Into<Vec<String>>,
        options: Option<MemberAddOptions>,
    ) -> Result<MemberAddResponse> {
        let urls = urls.into();
        let options = options.unwrap_or_default();
        dispatch!(&mut self.backend, e => {
            // etcd reads the URLs before it checks the caller.
            crate::cluster::parse_peer_urls(&urls)?;
            e.require_admin()?;
            let (member, members) = e.store.member_add(&urls, options.is_learner)?;
            Ok(MemberAddResponse { header: e.cluster_header(), member: Some(member), members })
        }, r => super::remote::member_add(r, urls, options).await)
    }

    /// Removes member `id`.
    pub async fn member_remove(&mut self, id: u64) -> Result<MemberRemoveResponse> {
        dispatch!(&mut self.backend, e => {
            e.require_admin()?;
            let members = e.store.member_remove(id)?;
            Ok(MemberRemoveResponse { header: e.cluster_header(), members })
        }, r => super::remote::member_remove(r, id).await)
    }

    /// Replaces member `id`'s peer URLs.
    pub async fn member_update(
        &mut self,
        id: u64,
        url: impl Into<Vec<String>>,
    ) -> Result<MemberUpdateResponse> {
        let urls = url.into();
        dispatch!(&mut self.backend, e => {
            e.require_admin()?;
            let members = e.store.member_update(id, urls)?;
            Ok(MemberUpdateResponse { header: e.cluster_header(), members })
        }, r => super::remote::member_update(r, id, urls).await)
    }

    /// Every member.
    pub async fn member_list(&mut self) -> Result<MemberListResponse> {
        dispatch!(
            &mut self.backend,
            e => Ok(MemberListResponse { header: e.cluster_header(), members: e.store.member_list() }),
            r => super::remote::member_list(r).await
        )
    }

    /// Promotes learner `id`.
    pub async fn member_promote(&mut self, id: u64) -> Result<MemberPromoteResponse> {
        dispatch!(&mut self.backend, e => {
            e.require_admin()?;
            let members = e.store.member_promote(id)?;
            Ok(MemberPromoteResponse { header: e.cluster_header(), members })
        }, r => super::remote::member_promote(r, id).await)
    }
}

impl Embedded {
    /// The header of a Cluster response: revision 0, as etcd sends it.
    fn cluster_header(&self) -> Option<ResponseHeader> {
        Some(self.store.cluster().header(0))
    }
}
