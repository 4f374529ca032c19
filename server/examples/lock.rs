//! A distributed lock held on a lease. Embedded first (the library's
//! `concurrency::Mutex`, clientv3's protocol, on a session whose lease is kept alive), then
//! the server's Lock service with the `etcd-client` crate, where a second client waits.
//!
//! `cargo run -p etcdlite-server --example lock [ENDPOINT]`

mod common;

use std::time::Duration;

use etcdlite::concurrency::{Error, Mutex, Session};
use etcdlite::{Options, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Embedded.
    let client = etcdlite::client::Client::embedded(Store::open(Options::memory())?, None).await?;
    let (first_session, second_session) =
        (Session::new(&client, None).await?, Session::new(&client, None).await?);
    let mut held = Mutex::new(&first_session, "locks/report");
    held.lock().await?;
    println!("embedded: worker 1 holds {}", String::from_utf8_lossy(held.key()));
    match Mutex::new(&second_session, "locks/report").try_lock().await {
        Err(Error::Locked) => println!("embedded: worker 2 finds it taken ({})", Error::Locked),
        other => println!("embedded: worker 2 unexpectedly got {other:?}"),
    }
    held.unlock().await?;

    // Over gRPC: the Lock service queues waiters in order and hands the lock on.
    use etcd_client::{Client, LockOptions};
    let (endpoint, _server) = common::endpoint().await?;
    let mut first = Client::connect([endpoint.clone()], None).await?;
    let mut second = Client::connect([endpoint], None).await?;
    let lease = first.lease_grant(10, None).await?.id();
    let held = first.lock("report", Some(LockOptions::new().with_lease(lease))).await?;
    println!("server:   client 1 holds {}", String::from_utf8_lossy(held.key()));

    let other_lease = second.lease_grant(10, None).await?.id();
    let waiter =
        tokio::spawn(
            async move { second.lock("report", Some(LockOptions::new().with_lease(other_lease))).await },
        );
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!("server:   client 2 is waiting: {}", !waiter.is_finished());
    first.unlock(held.key()).await?;
    let got = waiter.await??;
    println!("server:   client 1 unlocked; client 2 holds {}", String::from_utf8_lossy(got.key()));
    Ok(())
}
