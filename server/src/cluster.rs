//! The Cluster service of a one-member cluster: the member list, and etcd's own answers
//! to the changes one member cannot make.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::node::Node;
use crate::pb::etcdserverpb as pb;
use crate::pb::etcdserverpb::cluster_server::Cluster;

/// etcd's `Cluster` service for this one member.
#[derive(Clone)]
pub struct ClusterService {
    node: Arc<Node>,
}

impl ClusterService {
    /// The service of `node`.
    pub fn new(node: Arc<Node>) -> Self {
        ClusterService { node }
    }

    fn members(&self) -> Vec<pb::Member> {
        let id = &self.node.identity;
        vec![pb::Member {
            id: id.member_id,
            name: id.name.clone(),
            peer_ur_ls: self.node.peer_urls(),
            client_ur_ls: id.client_urls.clone(),
            is_learner: false,
        }]
    }

    fn check_member(&self, id: u64) -> Result<(), Status> {
        if id == self.node.identity.member_id {
            Ok(())
        } else {
            Err(Status::not_found("etcdserver: member not found"))
        }
    }
}

/// etcd's answer when a change would leave the cluster without a quorum of started
/// members. etcd gives it for removing the only member; it accepts adding a second one
/// (which then never starts and costs the quorum), and etcdlite refuses that add with
/// this same error instead, as it cannot run a second member.
fn not_enough_started_members() -> Status {
    Status::failed_precondition("etcdserver: re-configuration failed due to not enough started members")
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        request: Request<pb::MemberAddRequest>,
    ) -> Result<Response<pb::MemberAddResponse>, Status> {
        let req = request.into_inner();
        if req.peer_ur_ls.is_empty() {
            return Err(Status::invalid_argument("etcdserver: given member URLs are invalid"));
        }
        if req.peer_ur_ls.iter().any(|url| self.node.peer_urls().contains(url)) {
            return Err(Status::failed_precondition("etcdserver: Peer URLs already exists"));
        }
        Err(not_enough_started_members())
    }

    async fn member_remove(
        &self,
        request: Request<pb::MemberRemoveRequest>,
    ) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        self.check_member(request.into_inner().id)?;
        Err(not_enough_started_members())
    }

    async fn member_update(
        &self,
        request: Request<pb::MemberUpdateRequest>,
    ) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        let req = request.into_inner();
        self.check_member(req.id)?;
        if req.peer_ur_ls.is_empty() {
            return Err(Status::invalid_argument("etcdserver: given member URLs are invalid"));
        }
        self.node.set_peer_urls(req.peer_ur_ls);
        Ok(Response::new(pb::MemberUpdateResponse {
            header: self.node.cluster_header(),
            members: self.members(),
        }))
    }

    async fn member_list(
        &self,
        _request: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        Ok(Response::new(pb::MemberListResponse {
            header: self.node.cluster_header(),
            members: self.members(),
        }))
    }

    async fn member_promote(
        &self,
        request: Request<pb::MemberPromoteRequest>,
    ) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        self.check_member(request.into_inner().id)?;
        Err(Status::failed_precondition("etcdserver: can only promote a learner member"))
    }
}
