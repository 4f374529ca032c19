//! Leader election: three candidates campaign, one leads and proclaims its state, an
//! observer follows the leadership, and when the leader resigns the next candidate leads.
//! In-process on the memory engine:
//!
//!     cargo run --example election
//!
//! To run the same code against a real etcd cluster, build with `--features remote` and
//! change the one `Client` line to
//! `Client::connect(["http://127.0.0.1:2379"], None).await?`.

use std::time::Duration;

use etcdlite::client::Client;
use etcdlite::concurrency::{Election, Error, Session, SessionOptions};
use etcdlite::{Options, Store};
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let client = Client::embedded(Store::open(Options::memory())?, None).await?;

    let observer = Session::new(&client, None).await?;
    let mut leaders = Election::new(&observer, "services/scheduler").observe();

    let mut candidates = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        let session = Session::new(&client, Some(SessionOptions::new().with_ttl(10))).await?;
        candidates.push(tokio::spawn(async move {
            let mut election = Election::new(&session, "services/scheduler");
            election.campaign(format!("{name}: starting")).await?;
            election.proclaim(format!("{name}: leading")).await?;
            // Lead for a moment, then hand over.
            tokio::time::sleep(Duration::from_millis(50)).await;
            election.resign().await?;
            session.close().await
        }));
    }

    // Each leader shows up as it wins and again with what it proclaims (a change quicker
    // than the observer may show up as its latest value only); each leads for a moment.
    let mut leading = 0;
    while leading < 3 {
        let Some(leader) = leaders.next().await else { break };
        let value = leader?.kvs()[0].value_str()?.to_owned();
        println!("leader: {value}");
        leading += usize::from(value.ends_with("leading"));
    }
    for candidate in candidates {
        candidate.await.expect("the candidate ran")?;
    }
    observer.close().await
}
