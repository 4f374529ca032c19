//! The Election service (`v3electionpb.Election`): etcd's server-side leader election, run
//! by the library's `concurrency::Election` (clientv3's protocol) through an in-process
//! client, as etcd's election server runs clientv3's.

use std::pin::Pin;
use std::sync::Arc;

use etcdlite::client::{LeaderKey, ProclaimOptions, ResignOptions};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::lock::{client_of, from_client, unless_stopped};
use crate::node::Node;
use crate::pb::v3electionpb as pb;
use crate::pb::v3electionpb::election_server::Election;
use crate::status::send_server_stopped;

/// How many leaders an Observe stream holds for a slow client.
const OBSERVED_HELD: usize = 16;

/// etcd's `Election` service over the node's store.
#[derive(Clone)]
pub struct ElectionService {
    node: Arc<Node>,
}

impl ElectionService {
    /// The service of `node`.
    pub fn new(node: Arc<Node>) -> Self {
        ElectionService { node }
    }

    fn header(
        &self,
        header: Option<&etcdlite::ResponseHeader>,
    ) -> Option<crate::pb::etcdserverpb::ResponseHeader> {
        self.node.header(header.cloned().and_then(convert::header))
    }
}

fn leader_key(leader: pb::LeaderKey) -> LeaderKey {
    LeaderKey::new().with_name(leader.name).with_key(leader.key).with_rev(leader.rev).with_lease(leader.lease)
}

fn leader_key_pb(leader: &LeaderKey) -> pb::LeaderKey {
    pb::LeaderKey {
        name: leader.name().to_vec(),
        key: leader.key().to_vec(),
        rev: leader.rev(),
        lease: leader.lease(),
    }
}

type LeaderResponses = Pin<Box<dyn Stream<Item = Result<pb::LeaderResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Election for ElectionService {
    async fn campaign(
        &self,
        request: Request<pb::CampaignRequest>,
    ) -> Result<Response<pb::CampaignResponse>, Status> {
        let mut client = client_of(&self.node, &request).await?;
        let req = request.into_inner();
        let resp = unless_stopped(&self.node, client.campaign(req.name, req.value, req.lease)).await?;
        Ok(Response::new(pb::CampaignResponse {
            header: self.header(resp.header()),
            leader: resp.leader().map(leader_key_pb),
        }))
    }

    async fn proclaim(
        &self,
        request: Request<pb::ProclaimRequest>,
    ) -> Result<Response<pb::ProclaimResponse>, Status> {
        let mut client = client_of(&self.node, &request).await?;
        let req = request.into_inner();
        let options = req.leader.map(|l| ProclaimOptions::new().with_leader(leader_key(l)));
        let resp = client.proclaim(req.value, options).await.map_err(from_client)?;
        Ok(Response::new(pb::ProclaimResponse { header: self.header(resp.header()) }))
    }

    async fn leader(
        &self,
        request: Request<pb::LeaderRequest>,
    ) -> Result<Response<pb::LeaderResponse>, Status> {
        let mut client = client_of(&self.node, &request).await?;
        let resp = client.leader(request.into_inner().name).await.map_err(from_client)?;
        Ok(Response::new(pb::LeaderResponse {
            header: self.header(resp.header()),
            kv: resp.kv().map(|kv| convert::kv(kv.clone().into_inner())),
        }))
    }

    type ObserveStream = LeaderResponses;

    async fn observe(
        &self,
        request: Request<pb::LeaderRequest>,
    ) -> Result<Response<Self::ObserveStream>, Status> {
        let mut client = client_of(&self.node, &request).await?;
        let mut leaders = client.observe(request.into_inner().name).await.map_err(from_client)?;
        let (out, responses) = mpsc::channel(OBSERVED_HELD);
        let node = self.node.clone();
        let service = self.clone();
        tokio::spawn(async move {
            let stopped = node.stopped();
            tokio::pin!(stopped);
            loop {
                let leader = tokio::select! {
                    leader = leaders.next() => leader,
                    _ = &mut stopped => {
                        send_server_stopped(&out).await;
                        return;
                    }
                    _ = out.closed() => return,
                };
                let Some(leader) = leader else { return };
                let sent = leader.map_err(from_client).map(|leader| pb::LeaderResponse {
                    header: service.header(leader.header()),
                    kv: leader.kv().map(|kv| convert::kv(kv.clone().into_inner())),
                });
                if out.send(sent).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(responses))))
    }

    async fn resign(
        &self,
        request: Request<pb::ResignRequest>,
    ) -> Result<Response<pb::ResignResponse>, Status> {
        let mut client = client_of(&self.node, &request).await?;
        let req = request.into_inner();
        let options = req.leader.map(|l| ResignOptions::new().with_leader(leader_key(l)));
        let resp = client.resign(options).await.map_err(from_client)?;
        Ok(Response::new(pb::ResignResponse { header: self.header(resp.header()) }))
    }
}
