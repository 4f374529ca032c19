//! The gRPC health service (`grpc.health.v1.Health`): SERVING while the node can serve
//! every request, NOT_SERVING while an alarm is raised, after the store's writes have
//! stopped on a failed sync, and once the server is stopping.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::Health;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::node::Node;

/// How often a health watch looks at the node again.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// The health of one node, for the one service name etcd registers (`""`).
#[derive(Clone)]
pub struct HealthService {
    node: Arc<Node>,
}

impl HealthService {
    /// The health service of `node`.
    pub fn new(node: Arc<Node>) -> Self {
        HealthService { node }
    }

    fn status(&self) -> ServingStatus {
        if self.node.unhealthy().is_some() {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        }
    }
}

/// grpc-go's answer for a service name its health server does not know.
fn unknown_service() -> Status {
    Status::not_found("unknown service")
}

type HealthStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        if !request.get_ref().service.is_empty() {
            return Err(unknown_service());
        }
        Ok(Response::new(HealthCheckResponse { status: self.status() as i32 }))
    }

    type WatchStream = HealthStream;

    /// The current status, then each change, until the client goes or the server stops.
    /// An unknown service is SERVICE_UNKNOWN, and stays so.
    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let known = request.get_ref().service.is_empty();
        let (out, answers) = mpsc::channel(1);
        let service = self.clone();
        tokio::spawn(async move {
            let stopped = service.node.stopped();
            tokio::pin!(stopped);
            let mut last = None;
            loop {
                let status = if known { service.status() } else { ServingStatus::ServiceUnknown };
                if last != Some(status) {
                    if out.send(Ok(HealthCheckResponse { status: status as i32 })).await.is_err() {
                        return;
                    }
                    last = Some(status);
                }
                tokio::select! {
                    () = tokio::time::sleep(WATCH_INTERVAL) => {}
                    () = &mut stopped => {
                        if known {
                            let _ = out.send(Ok(HealthCheckResponse { status: ServingStatus::NotServing as i32 })).await;
                        }
                        return;
                    }
                    () = out.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(answers))))
    }
}
