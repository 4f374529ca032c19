//! A watch from the next revision sees a later put and delete (with the previous value).
//! Embedded first, then against the server with the `etcd-client` crate.
//!
//! `cargo run -p etcdlite-server --example watch [ENDPOINT]`

mod common;

use std::time::Duration;

use etcdlite::{Options, Store, WatchOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Embedded.
    let store = Store::open(Options::memory())?;
    let next = store.current_revision() + 1;
    let (_watcher, stream) =
        store.watch("job", Some(WatchOptions::new().with_start_revision(next).with_prev_key()))?;
    store.put("job", "queued", None)?;
    store.delete("job", None)?;
    let mut seen = 0;
    while seen < 2 {
        let resp = stream.recv_timeout(Duration::from_secs(5))?;
        for event in resp.events() {
            let prev = event.prev_kv().map(|kv| kv.value_str().unwrap_or("?").to_owned());
            println!("embedded: {:?} {} (previous: {prev:?})", event.event_type(), event.kv().key_str()?);
            seen += 1;
        }
    }

    // Over gRPC.
    let (endpoint, _server) = common::endpoint().await?;
    let mut client = etcd_client::Client::connect([endpoint], None).await?;
    let next = client.get("job", None).await?.header().unwrap().revision() + 1;
    let options = etcd_client::WatchOptions::new().with_start_revision(next).with_prev_key();
    let mut stream = client.watch("job", Some(options)).await?;
    client.put("job", "queued", None).await?;
    client.delete("job", None).await?;
    let mut seen = 0;
    while seen < 2 {
        let Some(resp) = tokio::time::timeout(Duration::from_secs(5), stream.message()).await?? else {
            return Err("the watch stream ended".into());
        };
        for event in resp.events() {
            let kv = event.kv().ok_or("an event without a key")?;
            let prev = event.prev_kv().map(|kv| kv.value_str().unwrap_or("?").to_owned());
            println!("server:   {:?} {} (previous: {prev:?})", event.event_type(), kv.key_str()?);
            seen += 1;
        }
    }
    Ok(())
}
