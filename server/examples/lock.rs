//! A distributed lock held on a lease. Embedded first (the lock recipe over a txn: take the
//! key only if no one has created it, on a lease so that a dead holder lets go), then the
//! server's Lock service with the `etcd-client` crate, where a second client waits.
//!
//! `cargo run -p etcdlite-server --example lock [ENDPOINT]`

mod common;

use std::time::Duration;

use etcdlite::{Compare, CompareOp, Options, PutOptions, Store, Txn, TxnOp};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Embedded.
    let store = Store::open(Options::memory())?;
    for worker in ["worker-1", "worker-2"] {
        let lease = store.lease_grant(10, None)?.id();
        let taken = store.txn(
            Txn::new()
                .when([Compare::create_revision("locks/report", CompareOp::Equal, 0)])
                .and_then([TxnOp::put("locks/report", worker, Some(PutOptions::new().with_lease(lease)))]),
        )?;
        println!(
            "embedded: {worker} {}",
            if taken.succeeded() { "holds the lock" } else { "finds it taken" }
        );
    }

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
