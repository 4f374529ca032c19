//! Put then get, twice: embedded (an `etcdlite::Store` in this process) and over the
//! network with the `etcd-client` crate against the etcdlite server. The call shapes are
//! the same.
//!
//! `cargo run -p etcdlite-server --example put_get [ENDPOINT]`

mod common;

use etcdlite::{GetOptions, Options, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Embedded.
    let store = Store::open(Options::memory())?;
    let put = store.put("greeting", "hello", None)?;
    store.put("greeting/fr", "bonjour", None)?;
    let got = store.get("greeting", Some(GetOptions::new().with_prefix()))?;
    println!("embedded: put at revision {}, {} keys under greeting:", put.header().revision(), got.count());
    for kv in got.kvs() {
        println!("  {} = {}", kv.key_str()?, kv.value_str()?);
    }

    // Over gRPC, with the etcd-client crate.
    let (endpoint, _server) = common::endpoint().await?;
    let mut client = etcd_client::Client::connect([endpoint], None).await?;
    let put = client.put("greeting", "hello", None).await?;
    client.put("greeting/fr", "bonjour", None).await?;
    let got = client.get("greeting", Some(etcd_client::GetOptions::new().with_prefix())).await?;
    println!(
        "server:   put at revision {}, {} keys under greeting:",
        put.header().unwrap().revision(),
        got.count()
    );
    for kv in got.kvs() {
        println!("  {} = {}", kv.key_str()?, kv.value_str()?);
    }
    Ok(())
}
