//! The Lease service: grant, revoke, the keep-alive stream, time-to-live and the list.

use std::pin::Pin;
use std::sync::Arc;

use etcdlite::{Error, LeaseGrantOptions, LeaseTimeToLiveOptions};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::convert;
use crate::node::{Credentials, Node};
use crate::pb::etcdserverpb as pb;
use crate::pb::etcdserverpb::lease_server::Lease;
use crate::status::{send_server_stopped, to_status};

/// What etcd's quota charges a lease grant (a lease record's size, about).
pub(crate) const LEASE_COST: usize = etcdlite::lease::GRANT_QUOTA_COST;

/// etcd's `Lease` service over the node's store.
#[derive(Clone)]
pub struct LeaseService {
    node: Arc<Node>,
}

impl LeaseService {
    /// The service of `node`.
    pub fn new(node: Arc<Node>) -> Self {
        LeaseService { node }
    }

    /// One keep-alive: the lease renewed to its full TTL, or TTL 0 for a lease that is
    /// unknown or expired (etcd answers those on the stream, not with an error). The
    /// header is taken before the renewal, as etcd takes it.
    pub async fn keep_alive_once(
        &self,
        id: i64,
        credentials: &Credentials,
    ) -> Result<pb::LeaseKeepAliveResponse, Status> {
        let header = self.node.header(None);
        let caller = self.node.caller_for(credentials);
        self.node.store.as_caller(&caller).check_lease_renew(id).map_err(to_status)?;
        let ttl = match self.node.store.lease_keep_alive_async(id).await {
            Ok(resp) => resp.ttl,
            Err(Error::LeaseNotFound) => 0,
            Err(e) => return Err(to_status(e)),
        };
        Ok(pb::LeaseKeepAliveResponse { header, id, ttl })
    }

    /// Serves one keep-alive stream: a response per request, in order, each renewal checked
    /// as the sender of `credentials`. Used by the gRPC service and by the JSON gateway.
    pub fn serve<S>(
        &self,
        mut requests: S,
        credentials: Credentials,
    ) -> ReceiverStream<Result<pb::LeaseKeepAliveResponse, Status>>
    where
        S: Stream<Item = Result<pb::LeaseKeepAliveRequest, Status>> + Send + Unpin + 'static,
    {
        let (out, out_rx) = mpsc::channel(16);
        let service = self.clone();
        tokio::spawn(async move {
            let stopped = service.node.stopped();
            tokio::pin!(stopped);
            loop {
                let request = tokio::select! {
                    request = requests.next() => request,
                    _ = &mut stopped => {
                        send_server_stopped(&out).await;
                        return;
                    }
                };
                let Some(request) = request else { return };
                if service.node.faults.keep_alives_ignored() {
                    continue;
                }
                let resp = match request {
                    Ok(request) => service.keep_alive_once(request.id, &credentials).await,
                    Err(status) => Err(status),
                };
                let failed = resp.is_err();
                if out.send(resp).await.is_err() || failed {
                    return;
                }
            }
        });
        ReceiverStream::new(out_rx)
    }
}

type KeepAliveResponses = Pin<Box<dyn Stream<Item = Result<pb::LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        request: Request<pb::LeaseGrantRequest>,
    ) -> Result<Response<pb::LeaseGrantResponse>, Status> {
        let caller = self.node.caller(&request);
        let req = request.into_inner();
        self.node.check_space(LEASE_COST)?;
        // A grant asks for no permission, but a bad token still fails it, as in etcd.
        self.node.store.auth().check_credentials(&caller).map_err(to_status)?;
        let options = (req.id != 0).then(|| LeaseGrantOptions::new().with_id(req.id));
        let resp = self.node.store.lease_grant_async(req.ttl, options).await.map_err(to_status)?;
        Ok(Response::new(pb::LeaseGrantResponse {
            header: self.node.header(convert::header(resp.header)),
            id: resp.id,
            ttl: resp.ttl,
            error: String::new(),
        }))
    }

    async fn lease_revoke(
        &self,
        request: Request<pb::LeaseRevokeRequest>,
    ) -> Result<Response<pb::LeaseRevokeResponse>, Status> {
        let caller = self.node.caller(&request);
        let id = request.into_inner().id;
        let resp = self.node.store.as_caller(&caller).lease_revoke_async(id).await.map_err(to_status)?;
        Ok(Response::new(pb::LeaseRevokeResponse { header: self.node.header(convert::header(resp.header)) }))
    }

    type LeaseKeepAliveStream = KeepAliveResponses;

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<pb::LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let credentials = Credentials::of(&request);
        Ok(Response::new(Box::pin(self.serve(request.into_inner(), credentials))))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<pb::LeaseTimeToLiveRequest>,
    ) -> Result<Response<pb::LeaseTimeToLiveResponse>, Status> {
        let caller = self.node.caller(&request);
        let req = request.into_inner();
        let options = req.keys.then(|| LeaseTimeToLiveOptions::new().with_keys());
        let resp = self
            .node
            .store
            .as_caller(&caller)
            .lease_time_to_live_async(req.id, options)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::LeaseTimeToLiveResponse {
            header: self.node.header(convert::header(resp.header)),
            id: resp.id,
            ttl: resp.ttl,
            granted_ttl: resp.granted_ttl,
            keys: resp.keys,
        }))
    }

    async fn lease_leases(
        &self,
        request: Request<pb::LeaseLeasesRequest>,
    ) -> Result<Response<pb::LeaseLeasesResponse>, Status> {
        let caller = self.node.caller(&request);
        let resp = self.node.store.as_caller(&caller).lease_leases_async().await.map_err(to_status)?;
        Ok(Response::new(pb::LeaseLeasesResponse {
            header: self.node.header(convert::header(resp.header)),
            leases: resp.leases.iter().map(|l| pb::LeaseStatus { id: l.id }).collect(),
        }))
    }
}
