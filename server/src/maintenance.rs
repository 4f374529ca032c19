//! The Maintenance service: status, alarms, hashes, snapshots and defragmentation.

use std::io::{self, Read, Seek, SeekFrom};
use std::pin::Pin;
use std::sync::Arc;

use etcdlite::engine::snapshot_file;
use futures::Stream;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::node::Node;
use crate::pb::etcdserverpb as pb;
use crate::pb::etcdserverpb::alarm_request::AlarmAction;
use crate::pb::etcdserverpb::maintenance_server::Maintenance;
use crate::pb::etcdserverpb::AlarmType;
use crate::status::to_status;

/// Snapshot chunk size (etcd's send buffer).
const SNAPSHOT_CHUNK: usize = 32 * 1024;

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

    /// This member's status: what `Status` and the gateway's `/v3/maintenance/status`
    /// answer.
    pub fn status(&self) -> Result<pb::StatusResponse, Status> {
        let node = &self.node;
        let size = node.store.db_size().map_err(to_status)?;
        let index = node.store.current_revision() as u64;
        let errors = node
            .alarms()
            .into_iter()
            .map(|(member, alarm)| {
                let name = AlarmType::try_from(alarm).map_or("UNKNOWN", |a| a.as_str_name());
                format!("memberID:{member} alarm:{name} ")
            })
            .collect();
        Ok(pb::StatusResponse {
            header: node.header(None),
            version: node.version.clone(),
            db_size: size.total as i64,
            leader: node.identity.member_id,
            raft_index: index,
            raft_term: crate::node::RAFT_TERM,
            raft_applied_index: index,
            errors,
            db_size_in_use: size.in_use as i64,
            is_learner: false,
        })
    }
}

type SnapshotChunks = Pin<Box<dyn Stream<Item = Result<pb::SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(&self, request: Request<pb::AlarmRequest>) -> Result<Response<pb::AlarmResponse>, Status> {
        let req = request.into_inner();
        let alarm = AlarmType::try_from(req.alarm).unwrap_or(AlarmType::None);
        let member = |(member_id, alarm)| pb::AlarmMember { member_id, alarm };
        let alarms = match AlarmAction::try_from(req.action).unwrap_or(AlarmAction::Get) {
            AlarmAction::Get => self
                .node
                .alarms()
                .into_iter()
                .filter(|&(_, a)| alarm == AlarmType::None || a == alarm as i32)
                .map(member)
                .collect(),
            AlarmAction::Activate if alarm == AlarmType::None => Vec::new(),
            AlarmAction::Activate => {
                self.node.activate(req.member_id, alarm);
                vec![member((req.member_id, alarm as i32))]
            }
            AlarmAction::Deactivate => {
                if self.node.deactivate(req.member_id, alarm) {
                    vec![member((req.member_id, alarm as i32))]
                } else {
                    Vec::new()
                }
            }
        };
        Ok(Response::new(pb::AlarmResponse { header: self.node.header(None), alarms }))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        Ok(Response::new(MaintenanceService::status(self)?))
    }

    async fn defragment(
        &self,
        _request: Request<pb::DefragmentRequest>,
    ) -> Result<Response<pb::DefragmentResponse>, Status> {
        self.node.blocking(|store| store.defragment().map_err(to_status)).await?;
        self.node.space_changed();
        // etcd sends no header with this one.
        Ok(Response::new(pb::DefragmentResponse { header: None }))
    }

    async fn hash(&self, _request: Request<pb::HashRequest>) -> Result<Response<pb::HashResponse>, Status> {
        let header = self.node.header(None);
        let hash = self.node.blocking(|store| store.hash().map_err(to_status)).await?;
        Ok(Response::new(pb::HashResponse { header, hash }))
    }

    async fn hash_kv(
        &self,
        request: Request<pb::HashKvRequest>,
    ) -> Result<Response<pb::HashKvResponse>, Status> {
        let revision = request.into_inner().revision;
        let resp = self.node.blocking(move |store| store.hash_kv(revision).map_err(to_status)).await?;
        Ok(Response::new(pb::HashKvResponse {
            header: self.node.header(crate::convert::header(resp.header)),
            hash: resp.hash,
            compact_revision: resp.compact_revision,
        }))
    }

    type SnapshotStream = SnapshotChunks;

    /// A consistent copy of the store, in 32 KiB chunks with the bytes remaining after
    /// each, then (as etcd) a last message holding the SHA-256 of everything before it.
    async fn snapshot(
        &self,
        _request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        let file = self
            .node
            .blocking(|store| {
                let mut file =
                    tempfile::tempfile().map_err(|e| Status::internal(format!("etcdlite: snapshot: {e}")))?;
                store.snapshot(&mut file).map_err(to_status)?;
                file.seek(SeekFrom::Start(0))
                    .map_err(|e| Status::internal(format!("etcdlite: snapshot: {e}")))?;
                Ok(file)
            })
            .await?;
        let size = file.metadata().map_err(|e| Status::internal(format!("etcdlite: snapshot: {e}")))?.len();
        // etcd's clients take the payload to be whole bbolt pages before the hash, so it
        // is padded with zeros (which `Store::restore_snapshot` reads back).
        let total = size.next_multiple_of(snapshot_file::PAGE);
        let mut payload = file.take(size).chain(io::repeat(0).take(total - size));
        let (out, out_rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            let mut sha = Sha256::new();
            let mut sent = 0u64;
            let mut buf = vec![0u8; SNAPSHOT_CHUNK];
            while sent < total {
                let want = SNAPSHOT_CHUNK.min((total - sent) as usize);
                if let Err(e) = payload.read_exact(&mut buf[..want]) {
                    let _ = out.blocking_send(Err(Status::internal(format!("etcdlite: snapshot: {e}"))));
                    return;
                }
                sent += want as u64;
                sha.update(&buf[..want]);
                let chunk = pb::SnapshotResponse {
                    header: None,
                    remaining_bytes: total - sent,
                    blob: buf[..want].to_vec(),
                };
                if out.blocking_send(Ok(chunk)).is_err() {
                    return;
                }
            }
            let trailer =
                pb::SnapshotResponse { header: None, remaining_bytes: 0, blob: sha.finalize().to_vec() };
            let _ = out.blocking_send(Ok(trailer));
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    async fn move_leader(
        &self,
        request: Request<pb::MoveLeaderRequest>,
    ) -> Result<Response<pb::MoveLeaderResponse>, Status> {
        if request.into_inner().target_id != self.node.identity.member_id {
            return Err(Status::failed_precondition("etcdserver: bad leader transferee"));
        }
        Ok(Response::new(pb::MoveLeaderResponse { header: self.node.header(None) }))
    }

    async fn downgrade(
        &self,
        _request: Request<pb::DowngradeRequest>,
    ) -> Result<Response<pb::DowngradeResponse>, Status> {
        Err(Status::unimplemented("etcdlite: cluster downgrade is not supported"))
    }
}
