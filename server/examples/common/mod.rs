//! What the examples share: an endpoint to talk to. Given one (the first argument, e.g.
//! `127.0.0.1:2379`), the example uses that server, etcdlite or a real etcd alike;
//! otherwise it starts an etcdlite server in-process on a free loopback port.

use etcdlite_server::TestServer;

/// The endpoint to connect to, and the in-process server if one was started (dropping it
/// stops it).
pub async fn endpoint() -> Result<(String, Option<TestServer>), Box<dyn std::error::Error>> {
    if let Some(endpoint) = std::env::args().nth(1) {
        return Ok((endpoint, None));
    }
    let server = TestServer::start()?;
    println!("(started an etcdlite server on {})", server.addr());
    Ok((server.endpoint(), Some(server)))
}
