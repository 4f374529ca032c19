//! The `etcd-client` crate's compatibility scenario (`tests/compat/rust/compat.rs`), compiled
//! against `etcdlite::client` instead: a copy in which only the paths change
//! (`etcd_client::` becomes `etcdlite::client::`), as a program moving from etcd-client to
//! etcdlite's client changes them. `server/tests/compat_copy.rs` checks that nothing else
//! differs. It runs against the server at `$ETCD_ENDPOINT` through `Client::connect`.
//!
//! Built as the `compat-etcdlite-client` example of `etcdlite-server`:
//! `cargo run -p etcdlite-server --example compat-etcdlite-client`.

use std::future::Future;
use std::time::{Duration, Instant};

use etcdlite::client::{
    Client, Compare, CompareOp, Error, EventType, GetOptions, LockOptions, ProclaimOptions, PutOptions,
    ResignOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::time::{sleep, timeout};

type Outcome = Result<(), String>;

/// Fails the feature with a message unless `$cond` holds.
macro_rules! check {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

/// Any client error as the feature's failure.
fn failed(e: Error) -> String {
    e.to_string()
}

/// The header revision of a put.
fn revision_of(put: &etcdlite::client::PutResponse) -> i64 {
    put.header().map_or(0, |h| h.revision())
}

async fn put_get(mut c: Client) -> Outcome {
    let key = "/compat/put_get/k";
    let first = revision_of(&c.put(key, "v1", None).await.map_err(failed)?);
    let got = c.get(key, None).await.map_err(failed)?;
    let kv = got.kvs().first().ok_or("get after put found nothing")?;
    check!(kv.value() == b"v1", "value {:?}, want v1", kv.value_str());
    check!(
        (kv.create_revision(), kv.mod_revision(), kv.version()) == (first, first, 1),
        "create/mod/version {}/{}/{}, want {first}/{first}/1",
        kv.create_revision(),
        kv.mod_revision(),
        kv.version()
    );
    let second = revision_of(&c.put(key, "v2", None).await.map_err(failed)?);
    check!(second == first + 1, "second put at revision {second}, want {}", first + 1);
    let got = c.get(key, None).await.map_err(failed)?;
    let kv = got.kvs().first().ok_or("get after the second put found nothing")?;
    check!(
        (kv.value(), kv.create_revision(), kv.mod_revision(), kv.version()) == (&b"v2"[..], first, second, 2),
        "after the second put: {kv:?}"
    );
    Ok(())
}

async fn range_prefix_limit(mut c: Client) -> Outcome {
    for name in ["a", "b", "c", "d", "e"] {
        c.put(format!("/compat/range/{name}"), name, None).await.map_err(failed)?;
    }
    c.put("/compat/range0", "outside", None).await.map_err(failed)?;
    let got =
        c.get("/compat/range/", Some(GetOptions::new().with_prefix().with_limit(2))).await.map_err(failed)?;
    let keys: Vec<&[u8]> = got.kvs().iter().map(|kv| kv.key()).collect();
    check!(keys == [&b"/compat/range/a"[..], b"/compat/range/b"], "keys {keys:?}");
    check!(got.more(), "more is false");
    check!(got.count() == 5, "count {}, want 5", got.count());
    Ok(())
}

async fn txn_cas(mut c: Client) -> Outcome {
    let key = "/compat/txn_cas/k";
    c.put(key, "old", None).await.map_err(failed)?;
    let cas = || {
        Txn::new()
            .when([Compare::value(key, CompareOp::Equal, "old")])
            .and_then([TxnOp::put(key, "new", None)])
            .or_else([TxnOp::get(key, None)])
    };
    let swapped = c.txn(cas()).await.map_err(failed)?;
    check!(swapped.succeeded(), "the first compare-and-swap did not succeed");
    check!(
        matches!(swapped.op_responses().as_slice(), [TxnOpResponse::Put(_)]),
        "then branch answered {:?}",
        swapped.op_responses()
    );
    let again = c.txn(cas()).await.map_err(failed)?;
    check!(!again.succeeded(), "the second compare-and-swap succeeded");
    match again.op_responses().as_slice() {
        [TxnOpResponse::Get(get)] => {
            let value = get.kvs().first().map(|kv| kv.value().to_vec());
            check!(value.as_deref() == Some(&b"new"[..]), "else branch read {value:?}, want new");
        }
        other => return Err(format!("else branch answered {other:?}")),
    }
    Ok(())
}

/// Polls `key` until it is gone, at most `limit`; whether it went.
async fn gone_within(c: &mut Client, key: &str, limit: Duration) -> Result<bool, String> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if c.get(key, None).await.map_err(failed)?.kvs().is_empty() {
            return Ok(true);
        }
        sleep(Duration::from_millis(250)).await;
    }
    Ok(false)
}

async fn lease(mut c: Client) -> Outcome {
    let (a, b) = ("/compat/lease/a", "/compat/lease/b");
    let expiring = c.lease_grant(5, None).await.map_err(failed)?.id();
    let kept = c.lease_grant(5, None).await.map_err(failed)?.id();
    c.put(a, "1", Some(PutOptions::new().with_lease(expiring))).await.map_err(failed)?;
    c.put(b, "1", Some(PutOptions::new().with_lease(kept))).await.map_err(failed)?;
    check!(!c.get(a, None).await.map_err(failed)?.kvs().is_empty(), "the first key is missing at once");
    // Keep the second lease alive once a second, as clients do, until this feature ends.
    let (mut keeper, mut answers) = c.lease_keep_alive(kept).await.map_err(failed)?;
    let keeping = tokio::spawn(async move {
        loop {
            if keeper.keep_alive().await.is_err() || !matches!(answers.message().await, Ok(Some(_))) {
                return;
            }
            sleep(Duration::from_secs(1)).await;
        }
    });
    let outcome = async {
        check!(
            gone_within(&mut c, a, Duration::from_secs(20)).await?,
            "the first key outlived its lease by 15 s"
        );
        // A full TTL after the first lease expired, the kept one still holds its key.
        sleep(Duration::from_secs(6)).await;
        check!(!c.get(b, None).await.map_err(failed)?.kvs().is_empty(), "the kept-alive key expired");
        c.lease_revoke(kept).await.map_err(failed)?;
        check!(c.get(b, None).await.map_err(failed)?.kvs().is_empty(), "revoking the lease left its key");
        Ok(())
    }
    .await;
    keeping.abort();
    outcome
}

/// An event as the watch feature checks it: type, mod revision, value, previous value.
type SeenEvent = (EventType, i64, Option<Vec<u8>>, Option<Vec<u8>>);

async fn watch(mut c: Client) -> Outcome {
    let key = "/compat/watch/k";
    let start = revision_of(&c.put(key, "0", None).await.map_err(failed)?);
    let options = WatchOptions::new().with_start_revision(start + 1).with_prev_key();
    let mut stream = c.watch(key, Some(options)).await.map_err(failed)?;
    c.put(key, "1", None).await.map_err(failed)?;
    c.delete(key, None).await.map_err(failed)?;
    let mut events = Vec::new();
    while events.len() < 2 {
        let resp = timeout(Duration::from_secs(10), stream.message())
            .await
            .map_err(|_| format!("{} of 2 events after 10 s", events.len()))?
            .map_err(failed)?
            .ok_or("the watch stream ended")?;
        check!(!resp.canceled(), "the watch was cancelled: {}", resp.cancel_reason());
        events.extend(resp.events().iter().cloned());
    }
    let seen: Vec<SeenEvent> = events
        .iter()
        .map(|e| {
            let kv = e.kv();
            (
                e.event_type(),
                kv.map_or(0, |kv| kv.mod_revision()),
                kv.map(|kv| kv.value().to_vec()),
                e.prev_kv().map(|p| p.value().to_vec()),
            )
        })
        .collect();
    let want = vec![
        (EventType::Put, start + 1, Some(b"1".to_vec()), Some(b"0".to_vec())),
        (EventType::Delete, start + 2, Some(Vec::new()), Some(b"1".to_vec())),
    ];
    check!(seen == want, "events {seen:?}, want {want:?}");
    Ok(())
}

async fn compaction(mut c: Client) -> Outcome {
    let key = "/compat/compaction/k";
    let r1 = revision_of(&c.put(key, "1", None).await.map_err(failed)?);
    let r2 = revision_of(&c.put(key, "2", None).await.map_err(failed)?);
    c.put(key, "3", None).await.map_err(failed)?;
    c.compact(r2, None).await.map_err(failed)?;
    const COMPACTED: &str = "mvcc: required revision has been compacted";
    match c.get(key, Some(GetOptions::new().with_revision(r1))).await {
        Err(Error::GRpcStatus(s)) if s.message().contains(COMPACTED) => {}
        other => return Err(format!("a get at the compacted-away revision {r1} answered {other:?}")),
    }
    let at_r2 = c.get(key, Some(GetOptions::new().with_revision(r2))).await.map_err(failed)?;
    let value = at_r2.kvs().first().map(|kv| kv.value().to_vec());
    check!(value.as_deref() == Some(&b"2"[..]), "a get at {r2} read {value:?}, want 2");
    match c.compact(r2, None).await {
        Err(Error::GRpcStatus(s)) if s.message().contains(COMPACTED) => Ok(()),
        other => Err(format!("compacting {r2} again answered {other:?}")),
    }
}

/// The crate's `lock` (etcd's Lock service): a second contender gets the lock only once
/// the first unlocks it.
async fn lock(mut c: Client) -> Outcome {
    let first_lease = c.lease_grant(30, None).await.map_err(failed)?.id();
    let second_lease = c.lease_grant(30, None).await.map_err(failed)?.id();
    let first =
        c.lock("/compat/lock/m", Some(LockOptions::new().with_lease(first_lease))).await.map_err(failed)?;
    let mut other = c.clone();
    let mut second = tokio::spawn(async move {
        other.lock("/compat/lock/m", Some(LockOptions::new().with_lease(second_lease))).await
    });
    check!(
        timeout(Duration::from_secs(1), &mut second).await.is_err(),
        "the second contender got the lock while the first held it"
    );
    c.unlock(first.key()).await.map_err(failed)?;
    let got = timeout(Duration::from_secs(10), second)
        .await
        .map_err(|_| "the second contender waited 10 s after the unlock".to_string())?
        .map_err(|e| e.to_string())?
        .map_err(failed)?;
    check!(got.key() != first.key(), "both contenders got the same lock key");
    c.unlock(got.key()).await.map_err(failed)?;
    Ok(())
}

/// The value of the next leader `observed` reports.
async fn next_value(observed: &mut etcdlite::client::ObserveStream) -> Result<Vec<u8>, String> {
    let resp = timeout(Duration::from_secs(10), observed.message())
        .await
        .map_err(|_| "observe sent nothing for 10 s".to_string())?
        .map_err(failed)?
        .ok_or("observe ended")?;
    Ok(resp.kv().map(|kv| kv.value().to_vec()).unwrap_or_default())
}

/// The crate's election calls (etcd's Election service): campaign, observe the leader, a
/// second candidate waits, proclaim a new value, resign hands leadership over.
async fn election(mut c: Client) -> Outcome {
    let name = "/compat/election/e";
    let first_lease = c.lease_grant(30, None).await.map_err(failed)?.id();
    let second_lease = c.lease_grant(30, None).await.map_err(failed)?.id();
    let first = c.campaign(name, "a", first_lease).await.map_err(failed)?;
    let first = first.leader().cloned().ok_or("campaign answered no leader key")?;
    check!(first.lease() == first_lease, "leader key lease {}, want {first_lease}", first.lease());
    let leader = c.leader(name).await.map_err(failed)?;
    let value = leader.kv().map(|kv| kv.value().to_vec());
    check!(value.as_deref() == Some(&b"a"[..]), "leader value {value:?}, want a");

    let mut observed = c.observe(name).await.map_err(failed)?;
    check!(next_value(&mut observed).await? == b"a", "observe did not start with a");

    let mut other = c.clone();
    let mut second = tokio::spawn(async move { other.campaign(name, "b", second_lease).await });
    check!(
        timeout(Duration::from_secs(1), &mut second).await.is_err(),
        "the second candidate was elected while the first led"
    );
    c.proclaim("a2", Some(ProclaimOptions::new().with_leader(first.clone()))).await.map_err(failed)?;
    check!(next_value(&mut observed).await? == b"a2", "observe missed the proclaimed a2");
    c.resign(Some(ResignOptions::new().with_leader(first))).await.map_err(failed)?;
    let elected = timeout(Duration::from_secs(10), second)
        .await
        .map_err(|_| "the second candidate waited 10 s after the resign".to_string())?
        .map_err(|e| e.to_string())?
        .map_err(failed)?;
    check!(next_value(&mut observed).await? == b"b", "observe missed the hand-over to b");
    let leader = c.leader(name).await.map_err(failed)?;
    let value = leader.kv().map(|kv| kv.value().to_vec());
    check!(value.as_deref() == Some(&b"b"[..]), "leader value after the resign {value:?}, want b");
    let second = elected.leader().cloned().ok_or("the second campaign answered no leader key")?;
    c.resign(Some(ResignOptions::new().with_leader(second))).await.map_err(failed)?;
    match c.leader(name).await {
        Err(Error::GRpcStatus(s)) if s.message() == "election: no leader" => Ok(()),
        other => Err(format!("leader with no candidate answered {other:?}")),
    }
}

/// Runs one feature (at most 60 s) and prints its line; whether it passed.
async fn run<F, Fut>(name: &str, client: &Client, feature: F) -> bool
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let outcome = match timeout(Duration::from_secs(60), feature(client.clone())).await {
        Ok(outcome) => outcome,
        Err(_) => Err("no end after 60 s".into()),
    };
    match &outcome {
        Ok(()) => println!("RESULT {name} PASS"),
        Err(why) => println!("RESULT {name} FAIL {}", why.replace('\n', " ")),
    }
    outcome.is_ok()
}

#[tokio::main]
async fn main() {
    let endpoint = std::env::var("ETCD_ENDPOINT").unwrap_or_else(|_| "127.0.0.1:2379".into());
    let client = match Client::connect([format!("http://{endpoint}")], None).await {
        Ok(client) => client,
        Err(e) => {
            println!("RESULT connect FAIL {e}");
            std::process::exit(1);
        }
    };
    let passed = [
        run("put_get", &client, put_get).await,
        run("range_prefix_limit", &client, range_prefix_limit).await,
        run("txn_cas", &client, txn_cas).await,
        run("lease", &client, lease).await,
        run("watch", &client, watch).await,
        run("compaction", &client, compaction).await,
        run("lock", &client, lock).await,
        run("election", &client, election).await,
    ];
    if passed.contains(&false) {
        std::process::exit(1);
    }
}
