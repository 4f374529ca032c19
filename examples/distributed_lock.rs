//! A distributed lock with a TTL: four workers take turns at a job that must never run
//! twice at once; one of them dies holding the lock, and the lock is free again once its
//! TTL has run out. In-process on the memory engine:
//!
//!     cargo run --example distributed_lock
//!
//! To run the same code against a real etcd cluster, build with `--features remote` and
//! change the one `CoordinatorConfig` line to
//! `CoordinatorConfig::endpoints(["http://127.0.0.1:2379"])`.

use std::sync::Arc;
use std::time::Duration;

use etcdlite::coord::{Coordinator, CoordinatorConfig, Error};
use etcdlite::{ManualClock, Options, Store};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // A manual clock stands in for waiting out the TTL; against etcd, real time passes.
    let clock = ManualClock::new();
    let store = Store::open(Options::memory().clock(Arc::new(clock.clone())))?;
    let coordinator = Coordinator::connect(CoordinatorConfig::embedded(store)).await?;
    let locks = coordinator.lock();

    let mut workers = Vec::new();
    for worker in 0..4 {
        let locks = locks.clone();
        workers.push(tokio::spawn(async move {
            let held = locks.acquire("jobs/nightly-report", Duration::from_secs(10)).await?;
            println!("worker {worker} runs the job (lock key {})", String::from_utf8_lossy(held.owner_key()));
            held.unlock().await
        }));
    }
    for worker in workers {
        worker.await.expect("the worker ran")?;
    }

    // A holder that dies: nothing unlocks, its renewals stop.
    let dead = locks.acquire("jobs/nightly-report", Duration::from_secs(10)).await?;
    dead.session().orphan().await;
    std::mem::forget(dead);
    match locks.try_acquire("jobs/nightly-report", Duration::from_secs(10)).await {
        Err(Error::Locked) => println!("the dead holder still holds the lock: {}", Error::Locked),
        other => panic!("expected the lock to be held, got {other:?}"),
    }
    clock.advance(Duration::from_secs(10));
    let next = locks.try_acquire("jobs/nightly-report", Duration::from_secs(10)).await?;
    println!("after its TTL the lock is free again; {:?} left on the new holder's lease", next.ttl().await?);
    next.unlock().await
}
