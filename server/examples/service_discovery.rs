//! Service discovery with a balanced gRPC channel: two instances of a service (here two
//! etcd-compatible TestServers, standing in for any gRPC servers) register with a TTL; a
//! client's channel spreads its calls over them and follows them as they come and go.
//! The registry runs in-process on the memory engine:
//!
//!     cargo run -p etcdlite-server --example service_discovery
//!
//! To keep the registry in a real etcd cluster instead, change the one
//! `CoordinatorConfig` line to `CoordinatorConfig::endpoints(["http://127.0.0.1:2379"])`.

use std::time::Duration;

use etcdlite::coord::{Coordinator, CoordinatorConfig, ServiceInfo};
use etcdlite::{Options, Store};
use etcdlite_server::pb::etcdserverpb::kv_client::KvClient;
use etcdlite_server::pb::etcdserverpb::PutRequest;
use etcdlite_server::TestServer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let coordinator =
        Coordinator::connect(CoordinatorConfig::embedded(Store::open(Options::memory())?)).await?;
    let registry = coordinator.registry();

    let instances = [TestServer::start()?, TestServer::start()?];
    for (i, server) in instances.iter().enumerate() {
        let info =
            ServiceInfo::new(format!("kv-{i}"), "kv", server.addr().ip().to_string(), server.addr().port())
                .with_metadata("zone", if i == 0 { "a" } else { "b" });
        registry.register(info, Duration::from_secs(10)).await?;
    }
    for info in registry.discover("kv").await? {
        println!("discovered {} at {} (zone {})", info.id, info.uri(), info.metadata["zone"]);
    }

    let mut kv = KvClient::new(registry.channel("kv").await?);
    for i in 0..20 {
        let put =
            PutRequest { key: format!("k{i}").into_bytes(), value: b"v".to_vec(), ..Default::default() };
        kv.put(put).await?;
    }
    for (i, server) in instances.iter().enumerate() {
        println!("kv-{i} served {} of 20 puts", server.store().current_revision() - 1);
    }
    coordinator.close().await?;
    Ok(())
}
