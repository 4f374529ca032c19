//! A config center: typed settings stored as JSON, listed, and watched as they change; a
//! value that does not decode is reported, not dropped. In-process on the memory engine:
//!
//!     cargo run --example config_center
//!
//! To run the same code against a real etcd cluster, build with `--features remote` and
//! change the one `CoordinatorConfig` line to
//! `CoordinatorConfig::endpoints(["http://127.0.0.1:2379"])`.

use etcdlite::coord::{ConfigEvent, Coordinator, CoordinatorConfig, Error};
use etcdlite::{Options, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct RateLimit {
    requests_per_second: u32,
    burst: u32,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let coordinator =
        Coordinator::connect(CoordinatorConfig::embedded(Store::open(Options::memory())?)).await?;
    let config = coordinator.config();
    let mut changes = config.watch_prefix::<RateLimit>("limits/").await?;

    config.set("limits/api", &RateLimit { requests_per_second: 100, burst: 20 }).await?;
    config.set("limits/admin", &RateLimit { requests_per_second: 5, burst: 1 }).await?;
    // Someone writes a value by hand, and gets it wrong.
    coordinator.client().clone().put("limits/batch", "{\"requests_per_second\": \"lots\"}", None).await?;
    config.delete("limits/admin").await?;

    for _ in 0..4 {
        match changes.next_event().await.expect("the watch goes on")? {
            ConfigEvent::Put { key, value, revision } => println!("r{revision} {key} = {value:?}"),
            ConfigEvent::Delete { key, revision } => println!("r{revision} {key} deleted"),
            ConfigEvent::Invalid { key, error, revision } => {
                println!("r{revision} {key} is invalid: {error}")
            }
        }
    }
    let api: Option<RateLimit> = config.get("limits/api").await?;
    println!("limits/api now: {api:?}");
    Ok(())
}
