//! The Cluster service: the member list and membership changes, answered by the store as
//! a one-member etcd cluster answers them (added members never start).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::node::Node;
use crate::pb::etcdserverpb as pb;
use crate::pb::etcdserverpb::cluster_server::Cluster;
use crate::status::to_status;

/// etcd's `Cluster` service over the node's store.
#[derive(Clone)]
pub struct ClusterService {
    node: Arc<Node>,
}

impl ClusterService {
    /// The service of `node`.
    pub fn new(node: Arc<Node>) -> Self {
        ClusterService { node }
    }
}

fn member(m: etcdlite::cluster::Member) -> pb::Member {
    pb::Member {
        id: m.id,
        name: m.name,
        peer_ur_ls: m.peer_urls,
        client_ur_ls: m.client_urls,
        is_learner: m.is_learner,
    }
}

fn members(list: Vec<etcdlite::cluster::Member>) -> Vec<pb::Member> {
    list.into_iter().map(member).collect()
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        request: Request<pb::MemberAddRequest>,
    ) -> Result<Response<pb::MemberAddResponse>, Status> {
        // etcd reads the URLs before it checks the caller.
        etcdlite::cluster::parse_peer_urls(&request.get_ref().peer_ur_ls).map_err(to_status)?;
        self.node.require_admin(&request)?;
        let req = request.into_inner();
        let (added, list) = self.node.store.member_add(&req.peer_ur_ls, req.is_learner).map_err(to_status)?;
        Ok(Response::new(pb::MemberAddResponse {
            header: self.node.cluster_header(),
            member: Some(member(added)),
            members: members(list),
        }))
    }

    async fn member_remove(
        &self,
        request: Request<pb::MemberRemoveRequest>,
    ) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        self.node.require_admin(&request)?;
        let list = self.node.store.member_remove(request.into_inner().id).map_err(to_status)?;
        Ok(Response::new(pb::MemberRemoveResponse {
            header: self.node.cluster_header(),
            members: members(list),
        }))
    }

    async fn member_update(
        &self,
        request: Request<pb::MemberUpdateRequest>,
    ) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        self.node.require_admin(&request)?;
        let req = request.into_inner();
        let list = self.node.store.member_update(req.id, req.peer_ur_ls).map_err(to_status)?;
        Ok(Response::new(pb::MemberUpdateResponse {
            header: self.node.cluster_header(),
            members: members(list),
        }))
    }

    async fn member_list(
        &self,
        _request: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        Ok(Response::new(pb::MemberListResponse {
            header: self.node.cluster_header(),
            members: members(self.node.store.member_list()),
        }))
    }

    async fn member_promote(
        &self,
        request: Request<pb::MemberPromoteRequest>,
    ) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        self.node.require_admin(&request)?;
        let list = self.node.store.member_promote(request.into_inner().id).map_err(to_status)?;
        Ok(Response::new(pb::MemberPromoteResponse {
            header: self.node.cluster_header(),
            members: members(list),
        }))
    }
}
