//! The Lock service (`v3lockpb.Lock`): etcd's server-side mutex, run by the library's
//! `concurrency::Mutex` (clientv3's protocol) through an in-process client, as etcd's lock
//! server runs clientv3's.

use std::future::Future;
use std::sync::Arc;

use etcdlite::client::{self, Client, LockOptions};
use tonic::{Request, Response, Status};

use crate::convert;
use crate::node::Node;
use crate::pb::v3lockpb as pb;
use crate::pb::v3lockpb::lock_server::Lock;
use crate::status::{grpc_code, server_stopped};

/// etcd's `Lock` service over the node's store.
#[derive(Clone)]
pub struct LockService {
    node: Arc<Node>,
}

impl LockService {
    /// The service of `node`.
    pub fn new(node: Arc<Node>) -> Self {
        LockService { node }
    }
}

/// An in-process client of `node`'s store for the Lock and Election services, whose calls
/// carry `request`'s token: they are the caller's, checked as etcd checks the calls its
/// lock and election servers make with the caller's context.
pub(crate) async fn client_of<T>(node: &Node, request: &Request<T>) -> Result<Client, Status> {
    let credentials = crate::node::Credentials::of(request);
    let token = credentials.token.map(|t| String::from_utf8_lossy(&t).into_owned());
    Client::embedded_relaying(node.store.clone(), token, credentials.certificate_name)
        .await
        .map_err(from_client)
}

/// A client error as the server sends it: the status's code and etcd's message.
pub(crate) fn from_client(error: client::Error) -> Status {
    match error {
        client::Error::GRpcStatus(status) => Status::new(grpc_code(status.code()), status.message()),
        other => Status::unknown(other.to_string()),
    }
}

/// Runs `call` until it answers or the server stops: a stopping server cancels it (a
/// waiting Lock or Campaign withdraws its key) and answers "server stopped".
pub(crate) async fn unless_stopped<T>(
    node: &Node,
    call: impl Future<Output = Result<T, client::Error>>,
) -> Result<T, Status> {
    tokio::select! {
        answered = call => answered.map_err(from_client),
        _ = node.stopped() => Err(server_stopped()),
    }
}

#[tonic::async_trait]
impl Lock for LockService {
    async fn lock(&self, request: Request<pb::LockRequest>) -> Result<Response<pb::LockResponse>, Status> {
        let mut client = client_of(&self.node, &request).await?;
        let req = request.into_inner();
        let options = LockOptions::new().with_lease(req.lease);
        let resp = unless_stopped(&self.node, client.lock(req.name, Some(options))).await?;
        let header = self.node.header(resp.header().cloned().and_then(convert::header));
        Ok(Response::new(pb::LockResponse { header, key: resp.key().to_vec() }))
    }

    async fn unlock(
        &self,
        request: Request<pb::UnlockRequest>,
    ) -> Result<Response<pb::UnlockResponse>, Status> {
        let mut client = client_of(&self.node, &request).await?;
        let resp = client.unlock(request.into_inner().key).await.map_err(from_client)?;
        let header = self.node.header(resp.header().cloned().and_then(convert::header));
        Ok(Response::new(pb::UnlockResponse { header }))
    }
}
