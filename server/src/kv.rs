//! The KV service: Range, Put, DeleteRange, Txn and Compact.

use std::sync::Arc;

use etcdlite::CompactionOptions;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::node::Node;
use crate::pb::etcdserverpb as pb;
use crate::pb::etcdserverpb::kv_server::Kv;
use crate::status::to_status;

/// etcd's `KV` service over the node's store.
#[derive(Clone)]
pub struct KvService {
    node: Arc<Node>,
}

impl KvService {
    /// The service of `node`.
    pub fn new(node: Arc<Node>) -> Self {
        KvService { node }
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(&self, request: Request<pb::RangeRequest>) -> Result<Response<pb::RangeResponse>, Status> {
        let caller = self.node.caller(&request);
        let req = convert::range_request(request.into_inner()).map_err(to_status)?;
        let resp = self.node.store.as_caller(&caller).range(&req).map_err(to_status)?;
        let mut resp = convert::range_response(resp);
        resp.header = self.node.header(resp.header);
        Ok(Response::new(resp))
    }

    async fn put(&self, request: Request<pb::PutRequest>) -> Result<Response<pb::PutResponse>, Status> {
        let caller = self.node.caller(&request);
        let req = convert::put_request(request.into_inner());
        self.node.check_space(etcdlite::txn::put_cost(&req))?;
        let resp = self.node.store.as_caller(&caller).put_request_async(req).await.map_err(to_status)?;
        let mut resp = convert::put_response(resp);
        resp.header = self.node.header(resp.header);
        Ok(Response::new(resp))
    }

    async fn delete_range(
        &self,
        request: Request<pb::DeleteRangeRequest>,
    ) -> Result<Response<pb::DeleteRangeResponse>, Status> {
        let caller = self.node.caller(&request);
        let req = convert::delete_request(request.into_inner());
        let resp = self.node.store.as_caller(&caller).delete_range_async(&req).await.map_err(to_status)?;
        let mut resp = convert::delete_response(resp);
        resp.header = self.node.header(resp.header);
        Ok(Response::new(resp))
    }

    async fn txn(&self, request: Request<pb::TxnRequest>) -> Result<Response<pb::TxnResponse>, Status> {
        let caller = self.node.caller(&request);
        let txn = convert::txn_request(request.into_inner())?;
        if !txn.is_read_only() {
            self.node.check_space(etcdlite::txn::txn_cost(&txn))?;
        }
        let resp = self.node.store.as_caller(&caller).txn_async(txn).await.map_err(to_status)?;
        let mut resp = convert::txn_response(resp);
        resp.header = self.node.header(resp.header);
        Ok(Response::new(resp))
    }

    async fn compact(
        &self,
        request: Request<pb::CompactionRequest>,
    ) -> Result<Response<pb::CompactionResponse>, Status> {
        let caller = self.node.caller(&request);
        let req = request.into_inner();
        let options = req.physical.then(|| CompactionOptions::new().with_physical());
        let resp = self
            .node
            .store
            .as_caller(&caller)
            .compact_async(req.revision, options)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CompactionResponse { header: self.node.header(convert::header(resp.header)) }))
    }
}
