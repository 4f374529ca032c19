//! What the examples share: an endpoint to talk to. Given one (the first argument, e.g.
//! `127.0.0.1:2379`), the example uses that server, etcdlite or a real etcd alike;
//! otherwise it starts an etcdlite server in-process on a free loopback port.

use std::sync::Arc;

use etcdlite::{Options, Store};
use etcdlite_server::{Config, Server};

/// The endpoint to connect to, and the in-process server's shutdown switch if one was
/// started (send to stop it).
pub async fn endpoint(
) -> Result<(String, Option<tokio::sync::oneshot::Sender<()>>), Box<dyn std::error::Error>> {
    if let Some(endpoint) = std::env::args().nth(1) {
        return Ok((endpoint, None));
    }
    let store = Arc::new(Store::open(Options::memory())?);
    let config = Config { listen: vec!["127.0.0.1:0".parse()?], ..Config::default() };
    let server = Server::bind(config, store).await?;
    let addr = server.local_addrs()[0];
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    println!("(started an etcdlite server on {addr})");
    Ok((addr.to_string(), Some(stop)))
}
