//! Moving a program from the `etcd-client` crate to `etcdlite::client`: a service registry
//! written the way etcd-client programs are written (a lease kept alive, a registration on
//! it, a watch on the prefix, a compare-and-swap), in which only two things changed:
//!
//! ```text
//! - use etcd_client::{Client, EventType, GetOptions, PutOptions, WatchOptions, ...};
//! + use etcdlite::client::{Client, EventType, GetOptions, PutOptions, WatchOptions, ...};
//!
//! - let client = Client::connect(["http://127.0.0.1:2379"], None).await?;
//! + let client = Client::embedded(Store::open(Options::memory())?, None).await?;
//! ```
//!
//! Everything else (the calls, the options, the responses, the streams, the errors) is as it
//! was. To run the same code on an etcd cluster again, build with the `remote` feature and
//! go back to `Client::connect`, which takes the same endpoints as etcd-client's.
//!
//! Run with `cargo run --example migrate_from_etcd_client`.

use etcdlite::client::{
    Client, Compare, CompareOp, Error, EventType, GetOptions, PutOptions, Txn, TxnOp, WatchOptions,
};
use etcdlite::{Options, Store};

/// Registers `name` at `address` under `services/`, on a lease of `ttl` seconds kept alive.
async fn register(client: &mut Client, name: &str, address: &str, ttl: i64) -> Result<i64, Error> {
    let lease = client.lease_grant(ttl, None).await?.id();
    client.put(format!("services/{name}"), address, Some(PutOptions::new().with_lease(lease))).await?;
    Ok(lease)
}

/// Every registered service, as (name, address).
async fn services(client: &mut Client) -> Result<Vec<(String, String)>, Error> {
    let resp = client.get("services/", Some(GetOptions::new().with_prefix())).await?;
    let mut found = Vec::new();
    for kv in resp.kvs() {
        found.push((kv.key_str()?.trim_start_matches("services/").to_owned(), kv.value_str()?.to_owned()));
    }
    Ok(found)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // The one line that chose etcd: now a store in this process.
    let mut client = Client::embedded(Store::open(Options::memory())?, None).await?;

    let mut changes = client.watch("services/", Some(WatchOptions::new().with_prefix())).await?;
    let created = changes.message().await?.expect("the watch answers its create");
    println!("watching services/ as watch {}", created.watch_id());

    let lease = register(&mut client, "billing", "10.0.0.7:8080", 10).await?;
    register(&mut client, "search", "10.0.0.9:8080", 10).await?;
    println!("registered: {:?}", services(&mut client).await?);

    // Keep the billing lease alive, as a registered service does.
    let (mut keeper, mut answers) = client.lease_keep_alive(lease).await?;
    keeper.keep_alive().await?;
    let renewed = answers.message().await?.expect("an answer per keep-alive");
    println!("lease {:x} renewed for {} s", renewed.id(), renewed.ttl());

    // Move billing only if nobody else changed it meanwhile.
    let current = client.get("services/billing", None).await?;
    let seen = current.kvs()[0].mod_revision();
    let moved = client
        .txn(Txn::new().when([Compare::mod_revision("services/billing", CompareOp::Equal, seen)]).and_then([
            TxnOp::put("services/billing", "10.0.0.8:8080", Some(PutOptions::new().with_lease(lease))),
        ]))
        .await?;
    println!("billing moved: {}", moved.succeeded());

    // Deregistering is revoking the lease: its key goes with it.
    client.lease_revoke(lease).await?;
    let mut seen_events = 0;
    while seen_events < 4 {
        let resp = changes.message().await?.expect("the watch stays open");
        for event in resp.events() {
            let kv = event.kv().expect("events carry their key");
            let what = if event.event_type() == EventType::Put { "put" } else { "delete" };
            println!("event: {what} {} at revision {}", kv.key_str()?, kv.mod_revision());
            seen_events += 1;
        }
    }
    println!("still registered: {:?}", services(&mut client).await?);
    Ok(())
}
