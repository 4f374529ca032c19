//! The Maintenance service: Status, Alarm, Defragment, Hash, HashKV, Snapshot, MoveLeader
//! and Downgrade, each a thin mapping of the store's own call (the store answers as a
//! one-member etcd cluster).

use std::pin::Pin;
use std::sync::Arc;

use etcdlite::cluster::{AlarmAction, AlarmType, DowngradeAction};
use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::node::Node;
use crate::pb::etcdserverpb as pb;
use crate::pb::etcdserverpb::maintenance_server::Maintenance;
use crate::status::to_status;

/// What a server presenting itself as etcd 3.4 answers a Downgrade with: grpc-go's words
/// for a method its service does not have (etcd 3.4.23 answers exactly this, code
/// Unimplemented).
const NO_DOWNGRADE: &str = "unknown method Downgrade for service etcdserverpb.Maintenance";

/// etcd's `Maintenance` service over the node's store.
#[derive(Clone)]
pub struct MaintenanceService {
    node: Arc<Node>,
}

impl MaintenanceService {
    /// The service of `node`.
    pub fn new(node: Arc<Node>) -> Self {
        MaintenanceService { node }
    }

    /// Whether the etcd version this server presents has the Downgrade call (3.5 and later;
    /// see [`Cluster::has_downgrade`](etcdlite::cluster::Cluster::has_downgrade)).
    pub fn has_downgrade(&self) -> bool {
        self.node.store.cluster().has_downgrade()
    }

    /// The Status answer (also served by the gateway).
    pub fn status(&self) -> Result<pb::StatusResponse, Status> {
        let status = self.node.store.status().map_err(to_status)?;
        Ok(pb::StatusResponse {
            header: self.node.header(None),
            version: status.version,
            db_size: status.db_size,
            leader: status.leader,
            raft_index: status.raft_index,
            raft_term: status.raft_term,
            raft_applied_index: status.raft_applied_index,
            errors: status.errors,
            db_size_in_use: status.db_size_in_use,
            is_learner: status.is_learner,
        })
    }
}

type SnapshotChunks = Pin<Box<dyn Stream<Item = Result<pb::SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(&self, request: Request<pb::AlarmRequest>) -> Result<Response<pb::AlarmResponse>, Status> {
        if request.get_ref().action == AlarmAction::Get as i32 {
            self.node.require_user(&request)?;
        } else {
            self.node.require_admin(&request)?;
        }
        let req = request.into_inner();
        let action = AlarmAction::from_i32(req.action).unwrap_or_default();
        let alarm = AlarmType::from_i32(req.alarm).unwrap_or_default();
        let alarms = self
            .node
            .store
            .alarm(action, req.member_id, alarm)
            .into_iter()
            .map(|a| pb::AlarmMember { member_id: a.member_id, alarm: a.alarm as i32 })
            .collect();
        Ok(Response::new(pb::AlarmResponse { header: self.node.header(None), alarms }))
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        self.node.require_user(&request)?;
        Ok(Response::new(MaintenanceService::status(self)?))
    }

    async fn defragment(
        &self,
        request: Request<pb::DefragmentRequest>,
    ) -> Result<Response<pb::DefragmentResponse>, Status> {
        self.node.require_admin_unmapped(&request)?;
        self.node.store.defragment_async().await.map_err(to_status)?;
        self.node.store.cluster().space_changed();
        Ok(Response::new(pb::DefragmentResponse { header: None }))
    }

    async fn hash(&self, request: Request<pb::HashRequest>) -> Result<Response<pb::HashResponse>, Status> {
        self.node.require_admin_unmapped(&request)?;
        let header = self.node.header(None);
        let hash = self.node.store.hash_async().await.map_err(to_status)?;
        Ok(Response::new(pb::HashResponse { header, hash }))
    }

    async fn hash_kv(
        &self,
        request: Request<pb::HashKvRequest>,
    ) -> Result<Response<pb::HashKvResponse>, Status> {
        self.node.require_admin_unmapped(&request)?;
        let revision = request.into_inner().revision;
        let resp = self.node.store.hash_kv_async(revision).await.map_err(to_status)?;
        Ok(Response::new(pb::HashKvResponse {
            header: self.node.header(crate::convert::header(resp.header)),
            hash: resp.hash,
            compact_revision: resp.compact_revision,
        }))
    }

    type SnapshotStream = SnapshotChunks;

    /// etcd's chunks of the snapshot, then its SHA-256 (see
    /// [`Store::snapshot_chunks`](etcdlite::Store::snapshot_chunks)).
    async fn snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        self.node.require_admin_unmapped(&request)?;
        let chunks = self.node.store.snapshot_chunks().map(|chunk| {
            chunk
                .map(|c| pb::SnapshotResponse {
                    header: None,
                    remaining_bytes: c.remaining_bytes,
                    blob: c.blob,
                })
                .map_err(to_status)
        });
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn move_leader(
        &self,
        request: Request<pb::MoveLeaderRequest>,
    ) -> Result<Response<pb::MoveLeaderResponse>, Status> {
        self.node.require_admin(&request)?;
        self.node.store.move_leader(request.into_inner().target_id).map_err(to_status)?;
        // etcd answers an empty message: no header.
        Ok(Response::new(pb::MoveLeaderResponse { header: None }))
    }

    async fn downgrade(
        &self,
        request: Request<pb::DowngradeRequest>,
    ) -> Result<Response<pb::DowngradeResponse>, Status> {
        if !self.has_downgrade() {
            // etcd 3.4's Maintenance service has no Downgrade: its grpc-go answers the call
            // as any unknown method, before any interceptor (so before auth) sees it.
            return Err(Status::unimplemented(NO_DOWNGRADE));
        }
        self.node.require_admin(&request)?;
        let req = request.into_inner();
        // etcd answers an action it does not know with its `ErrUnknownMethod`, code Unknown.
        let action = DowngradeAction::from_i32(req.action)
            .ok_or_else(|| Status::unknown("etcdserver: unknown method"))?;
        let version = self.node.store.cluster().downgrade(action, &req.version).map_err(to_status)?;
        Ok(Response::new(pb::DowngradeResponse { header: self.node.header(None), version }))
    }
}
