//! The Election service (`v3electionpb.Election`): etcd's server-side leader election, the
//! same protocol as clientv3's `concurrency.Election`, run on the server over the store.
//!
//! Campaigning for `name` with a lease puts the key `name/<lease id in hex>` (the
//! candidate's value, on the lease) unless it exists already; the leader is the key of the
//! prefix `name/` with the lowest create revision. A candidate waits for every key created
//! before its own to be deleted. Proclaim rewrites the leader's value and Resign deletes its
//! key, both only while the key is still the one created at the leader's revision. Observe
//! streams the leader's key-value each time the leader or its value changes.

use std::future::Future;
use std::sync::Arc;

use etcdlite::{
    Compare, CompareOp, EventType, GetOptions, KeyValue, PutOptions, ResponseHeader, SortOrder, SortTarget,
    Txn, TxnOp, TxnOpResponse, WatchOptions, WatchStream,
};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::lease::LEASE_COST;
use crate::lock::{go_hex, put_guarded, relayed, session_lease, wait_deletes};
use crate::node::Node;
use crate::pb::v3electionpb as pb;
use crate::pb::v3electionpb::election_server::Election;
use crate::status::server_stopped;

/// clientv3's `concurrency.ErrElectionNotLeader`.
const NOT_LEADER: &str = "election: not leader";
/// clientv3's `concurrency.ErrElectionNoLeader`.
const NO_LEADER: &str = "election: no leader";
/// etcd's election server's answer to a Proclaim or Resign without a leader key.
const MISSING_LEADER_KEY: &str = "\"leader\" field must be provided";

/// etcd's `Election` service over the node's store.
#[derive(Clone)]
pub struct ElectionService {
    node: Arc<Node>,
}

/// `name` followed by `/`: where an election's candidates put their keys.
fn candidates(name: &[u8]) -> Vec<u8> {
    let mut prefix = name.to_vec();
    prefix.push(b'/');
    prefix
}

/// The first candidate of `prefix` by create revision: the leader.
fn first_created() -> GetOptions {
    GetOptions::new().with_prefix().with_sort(SortTarget::Create, SortOrder::Ascend).with_limit(1)
}

/// True while the key is still the one created at `rev`.
fn still_created_at(key: &[u8], rev: i64) -> Compare {
    Compare::create_revision(key.to_vec(), CompareOp::Equal, rev)
}

impl ElectionService {
    /// The service of `node`.
    pub fn new(node: Arc<Node>) -> Self {
        ElectionService { node }
    }

    fn header(&self, header: ResponseHeader) -> Option<crate::pb::etcdserverpb::ResponseHeader> {
        self.node.header(convert::header(header))
    }

    /// A txn through the quota (as etcd's election server writes through its quota-checked
    /// client), errors relayed as Unknown.
    async fn txn(&self, txn: Txn, cost: usize) -> Result<etcdlite::TxnResponse, Status> {
        self.node.check_space(cost).map_err(|s| Status::unknown(s.message()))?;
        self.node.store.txn_async(txn).await.map_err(relayed)
    }

    async fn campaign(&self, req: pb::CampaignRequest) -> Result<pb::CampaignResponse, Status> {
        let lease = session_lease(&self.node, req.lease).await?;
        let prefix = candidates(&req.name);
        let mut key = prefix.clone();
        key.extend_from_slice(go_hex(lease).as_bytes());

        let put = TxnOp::put(key.clone(), req.value.clone(), Some(PutOptions::new().with_lease(lease)));
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([put])
            .or_else([TxnOp::get(key.clone(), None)]);
        self.node
            .check_space(key.len() + req.value.len() + LEASE_COST)
            .map_err(|s| Status::unknown(s.message()))?;
        // A cancelled campaign resigns (deletes its key), as clientv3's does.
        let (resp, mut candidate) = put_guarded(&self.node, &key, txn).await?;
        let mut rev = resp.header.revision;
        if !resp.succeeded {
            // This lease campaigned before: keep its place, and its value up to date.
            let existing = match resp.responses.first() {
                Some(TxnOpResponse::Get(get)) => get.kvs.first().cloned(),
                _ => None,
            };
            let existing =
                existing.ok_or_else(|| Status::internal("etcdlite: campaign key vanished inside its txn"))?;
            rev = existing.create_revision;
            if existing.value != req.value {
                // A failed proclaim resigns (the drop deletes the key).
                self.proclaim_as(&key, rev, lease, req.value.clone()).await?;
            }
        }
        if let Err(status) = wait_deletes(&self.node, &prefix, rev - 1).await {
            // clientv3 resigns only when the campaign was cancelled (a stopping server
            // cancels it); after another failure the key stays.
            if status.code() != server_stopped().code() {
                candidate.key = None;
            }
            return Err(status);
        }
        candidate.key = None;
        Ok(pb::CampaignResponse {
            header: self.header(resp.header),
            leader: Some(pb::LeaderKey { name: req.name, key, rev, lease }),
        })
    }

    /// Sets the leader's value, if `key` is still the one created at `rev`.
    async fn proclaim_as(
        &self,
        key: &[u8],
        rev: i64,
        lease: i64,
        value: Vec<u8>,
    ) -> Result<ResponseHeader, Status> {
        let cost = key.len() + value.len();
        let put = TxnOp::put(key.to_vec(), value, Some(PutOptions::new().with_lease(lease)));
        let resp = self.txn(Txn::new().when([still_created_at(key, rev)]).and_then([put]), cost).await?;
        if !resp.succeeded {
            return Err(Status::unknown(NOT_LEADER));
        }
        Ok(resp.header)
    }

    async fn resign(&self, leader: pb::LeaderKey) -> Result<ResponseHeader, Status> {
        let delete = TxnOp::delete(leader.key.clone(), None);
        let txn = Txn::new().when([still_created_at(&leader.key, leader.rev)]).and_then([delete]);
        Ok(self.txn(txn, leader.key.len()).await?.header)
    }

    /// Sends `name`'s leader into `out` each time it or its value changes, until the client
    /// goes, the server stops (an error), or a watch of it is cut short (the end).
    async fn observe(node: Arc<Node>, name: Vec<u8>, out: mpsc::Sender<Result<pb::LeaderResponse, Status>>) {
        let prefix = candidates(&name);
        let stopped = node.stopped();
        tokio::pin!(stopped);
        let send = |header: ResponseHeader, kv: KeyValue| {
            let resp = pb::LeaderResponse {
                header: node.header(convert::header(header)),
                kv: Some(convert::kv(kv)),
            };
            out.send(Ok(resp))
        };
        loop {
            let current = match node.store.get(prefix.clone(), Some(first_created())) {
                Ok(current) => current,
                Err(e) => {
                    let _ = out.send(Err(relayed(e))).await;
                    return;
                }
            };
            let (header, leader) = match current.kvs.into_iter().next() {
                Some(kv) => (current.header, kv),
                None => {
                    // No candidate: the first put under the prefix is the leader.
                    let from = WatchOptions::new().with_prefix().with_start_revision(current.header.revision);
                    let Ok((_watcher, mut events)) = node.store.watch(prefix.clone(), Some(from)) else {
                        return;
                    };
                    loop {
                        let Some(watched) = next_watched(&mut events, &mut stopped, &out).await else {
                            return;
                        };
                        let put = watched.events.into_iter().find(|e| e.event_type == EventType::Put);
                        if let Some(put) = put {
                            let mut header = watched.header;
                            header.revision = put.kv.mod_revision;
                            break (header, put.kv);
                        }
                    }
                }
            };
            let key = leader.key.clone();
            let from = header.revision + 1;
            if send(header, leader).await.is_err() {
                return;
            }
            // Every change of the leader's key until it is deleted.
            let options = WatchOptions::new().with_start_revision(from);
            let Ok((_watcher, mut events)) = node.store.watch(key, Some(options)) else { return };
            'leader: loop {
                let Some(watched) = next_watched(&mut events, &mut stopped, &out).await else { return };
                for event in watched.events {
                    if event.event_type == EventType::Delete {
                        break 'leader;
                    }
                    if send(watched.header, event.kv).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The next response of a watch Observe follows, or `None` when Observe ends: the client
/// went, the server is stopping (the client is told so), or the watch ended or was cut short.
async fn next_watched(
    events: &mut WatchStream,
    stopped: &mut (impl Future<Output = ()> + Unpin),
    out: &mpsc::Sender<Result<pb::LeaderResponse, Status>>,
) -> Option<etcdlite::WatchResponse> {
    let watched = tokio::select! {
        watched = events.next() => watched,
        _ = stopped => {
            let _ = out.send(Err(server_stopped())).await;
            return None;
        }
        _ = out.closed() => return None,
    };
    watched.filter(|w| !w.canceled)
}

type LeaderResponses = std::pin::Pin<Box<dyn Stream<Item = Result<pb::LeaderResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Election for ElectionService {
    async fn campaign(
        &self,
        request: Request<pb::CampaignRequest>,
    ) -> Result<Response<pb::CampaignResponse>, Status> {
        Ok(Response::new(ElectionService::campaign(self, request.into_inner()).await?))
    }

    async fn proclaim(
        &self,
        request: Request<pb::ProclaimRequest>,
    ) -> Result<Response<pb::ProclaimResponse>, Status> {
        let req = request.into_inner();
        let leader = req.leader.ok_or_else(|| Status::unknown(MISSING_LEADER_KEY))?;
        // etcd resumes the election in a session of the leader key's lease (0: a new one).
        let lease = session_lease(&self.node, leader.lease).await?;
        let header = self.proclaim_as(&leader.key, leader.rev, lease, req.value).await?;
        Ok(Response::new(pb::ProclaimResponse { header: self.header(header) }))
    }

    async fn leader(
        &self,
        request: Request<pb::LeaderRequest>,
    ) -> Result<Response<pb::LeaderResponse>, Status> {
        let prefix = candidates(&request.into_inner().name);
        let resp = self.node.store.get(prefix, Some(first_created())).map_err(relayed)?;
        let kv = resp.kvs.into_iter().next().ok_or_else(|| Status::unknown(NO_LEADER))?;
        Ok(Response::new(pb::LeaderResponse { header: self.header(resp.header), kv: Some(convert::kv(kv)) }))
    }

    type ObserveStream = LeaderResponses;

    async fn observe(
        &self,
        request: Request<pb::LeaderRequest>,
    ) -> Result<Response<Self::ObserveStream>, Status> {
        let (out, responses) = mpsc::channel(16);
        tokio::spawn(ElectionService::observe(self.node.clone(), request.into_inner().name, out));
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(responses))))
    }

    async fn resign(
        &self,
        request: Request<pb::ResignRequest>,
    ) -> Result<Response<pb::ResignResponse>, Status> {
        let leader = request.into_inner().leader.ok_or_else(|| Status::unknown(MISSING_LEADER_KEY))?;
        let header = ElectionService::resign(self, leader).await?;
        Ok(Response::new(pb::ResignResponse { header: self.header(header) }))
    }
}
