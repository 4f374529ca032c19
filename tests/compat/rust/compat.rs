//! The `etcd-client` crate's compatibility scenario (see `tests/compat/README.md`): every
//! feature through the crate's own calls, unchanged, against the server at
//! `$ETCD_ENDPOINT`. Prints a `RESULT` line per feature; exits 1 if any failed.
//!
//! Built as the `compat-etcd-client` example of `etcdlite-server`, which has the crate as a
//! dev-dependency: `cargo run -p etcdlite-server --example compat-etcd-client`.

use std::future::Future;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, Error, EventType, GetOptions, LockOptions, Permission,
    PermissionType, ProclaimOptions, PutOptions, ResignOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
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
fn revision_of(put: &etcd_client::PutResponse) -> i64 {
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
async fn next_value(observed: &mut etcd_client::ObserveStream) -> Result<Vec<u8>, String> {
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

const ROOT_PASSWORD: &str = "compat-root-pw";

/// The gRPC status a failed call answered, as (code's name, message).
fn status_of<T>(result: Result<T, Error>) -> Result<(String, String), String> {
    match result {
        Err(Error::GRpcStatus(s)) => Ok((format!("{:?}", s.code()), s.message().to_string())),
        Err(other) => Err(format!("failed with {other}, want an error status")),
        Ok(_) => Err("succeeded, want an error status".into()),
    }
}

/// Users, roles and permissions through the crate's `auth_client()`, then auth on: a client
/// connected `with_user` works within its role's permissions and gets etcd's errors outside
/// them, and root turns auth off again. Whatever happens, the feature ends with auth off and
/// its users and role gone.
async fn auth(c: Client, endpoint: String) -> Outcome {
    let url = format!("http://{endpoint}");
    let outcome = auth_steps(c.clone(), &url).await;
    // Leave the server as found: auth off (root's client), the users and the role gone.
    if let Ok(mut root) =
        Client::connect([url.as_str()], Some(ConnectOptions::new().with_user("root", ROOT_PASSWORD))).await
    {
        let _ = root.auth_disable().await;
    }
    let mut auth = c.auth_client();
    let _ = auth.user_delete("compat-alice").await;
    let _ = auth.user_delete("root").await;
    let _ = auth.role_delete("compat-r").await;
    outcome
}

async fn auth_steps(mut c: Client, url: &str) -> Outcome {
    let mut auth = c.auth_client();
    auth.user_add("root", ROOT_PASSWORD, None).await.map_err(failed)?;
    auth.user_grant_role("root", "root").await.map_err(failed)?;
    auth.role_add("compat-r").await.map_err(failed)?;
    for perm in [
        Permission::read("/compat/auth/r/").with_prefix(),
        Permission::read_write("/compat/auth/rw"),
        Permission::write("/compat/auth/w").with_from_key(),
        Permission::read("/compat/auth/x"),
    ] {
        auth.role_grant_permission("compat-r", perm).await.map_err(failed)?;
    }
    auth.role_revoke_permission("compat-r", "/compat/auth/x", None).await.map_err(failed)?;
    let (code, message) = status_of(auth.role_revoke_permission("compat-r", "/compat/auth/x", None).await)?;
    check!(
        (code.as_str(), message.as_str())
            == ("FailedPrecondition", "etcdserver: permission is not granted to the role"),
        "revoking a permission twice: {code:?} {message}"
    );
    let perms: Vec<(i32, Vec<u8>, Vec<u8>)> = auth
        .role_get("compat-r")
        .await
        .map_err(failed)?
        .permissions()
        .iter()
        .map(|p| (p.get_type(), p.key().to_vec(), p.range_end().to_vec()))
        .collect();
    let want = vec![
        (PermissionType::Read as i32, b"/compat/auth/r/".to_vec(), b"/compat/auth/r0".to_vec()),
        (PermissionType::Readwrite as i32, b"/compat/auth/rw".to_vec(), Vec::new()),
        (PermissionType::Write as i32, b"/compat/auth/w".to_vec(), b"\0".to_vec()),
    ];
    check!(perms == want, "role get: {perms:?}, want {want:?}");
    let roles = auth.role_list().await.map_err(failed)?;
    check!(roles.roles() == ["compat-r"], "role list: {:?}", roles.roles());

    auth.user_add("compat-alice", "old-pw", None).await.map_err(failed)?;
    let (code, message) = status_of(auth.user_add("compat-alice", "old-pw", None).await)?;
    check!(
        (code.as_str(), message.as_str()) == ("FailedPrecondition", "etcdserver: user name already exists"),
        "adding a user twice: {code:?} {message}"
    );
    auth.user_grant_role("compat-alice", "compat-r").await.map_err(failed)?;
    let user = auth.user_get("compat-alice").await.map_err(failed)?;
    check!(user.roles() == ["compat-r"], "user get: roles {:?}", user.roles());
    let users = auth.user_list().await.map_err(failed)?;
    check!(users.users() == ["compat-alice", "root"], "user list: {:?}", users.users());
    auth.user_change_password("compat-alice", "alice-pw").await.map_err(failed)?;
    auth.user_revoke_role("compat-alice", "compat-r").await.map_err(failed)?;
    let user = auth.user_get("compat-alice").await.map_err(failed)?;
    check!(user.roles().is_empty(), "user get after the revoke: roles {:?}", user.roles());
    auth.user_grant_role("compat-alice", "compat-r").await.map_err(failed)?;
    c.put("/compat/auth/r/k", "before", None).await.map_err(failed)?;
    // Connecting as a user while auth is off fails: the crate authenticates when it connects.
    let off = Client::connect([url], Some(ConnectOptions::new().with_user("compat-alice", "alice-pw"))).await;
    let (code, message) = status_of(off)?;
    check!(
        (code.as_str(), message.as_str())
            == ("FailedPrecondition", "etcdserver: authentication is not enabled"),
        "connecting as a user with auth off: {code:?} {message}"
    );

    auth.auth_enable().await.map_err(failed)?;
    let mut alice = Client::connect([url], Some(ConnectOptions::new().with_user("compat-alice", "alice-pw")))
        .await
        .map_err(failed)?;
    alice.put("/compat/auth/rw", "v1", None).await.map_err(failed)?;
    let got = alice.get("/compat/auth/rw", None).await.map_err(failed)?;
    check!(got.kvs().first().map(|kv| kv.value()) == Some(&b"v1"[..]), "get within readwrite: {got:?}");
    let got = alice.get("/compat/auth/r/", Some(GetOptions::new().with_prefix())).await.map_err(failed)?;
    check!(got.kvs().len() == 1, "get within the read prefix: {got:?}");
    alice.put("/compat/auth/wz", "v2", None).await.map_err(failed)?;
    let denied = ("PermissionDenied".to_string(), "etcdserver: permission denied".to_string());
    let forbidden = [
        ("put under the read prefix", status_of(alice.put("/compat/auth/r/k", "after", None).await)?),
        ("get of a write-only key", status_of(alice.get("/compat/auth/wz", None).await)?),
        (
            "get of the whole prefix",
            status_of(alice.get("/compat/auth/", Some(GetOptions::new().with_prefix())).await)?,
        ),
        ("delete under the read prefix", status_of(alice.delete("/compat/auth/r/k", None).await)?),
        ("user list", status_of(alice.user_list().await)?),
        ("auth disable", status_of(alice.auth_disable().await)?),
    ];
    for (what, status) in forbidden {
        check!(status == denied, "{what} as a plain user: {status:?}");
    }
    let (code, message) = status_of(c.get("/compat/auth/rw", None).await)?;
    check!(
        (code.as_str(), message.as_str()) == ("InvalidArgument", "etcdserver: user name is empty"),
        "a get with no user: {code:?} {message}"
    );
    let wrong = Client::connect([url], Some(ConnectOptions::new().with_user("compat-alice", "old-pw"))).await;
    let (code, message) = status_of(wrong)?;
    check!(
        (code.as_str(), message.as_str())
            == ("InvalidArgument", "etcdserver: authentication failed, invalid user ID or password"),
        "connecting with the old password: {code:?} {message}"
    );

    let mut root = Client::connect([url], Some(ConnectOptions::new().with_user("root", ROOT_PASSWORD)))
        .await
        .map_err(failed)?;
    let got = root.get("/compat/auth/wz", None).await.map_err(failed)?;
    check!(got.kvs().first().map(|kv| kv.value()) == Some(&b"v2"[..]), "get as root: {got:?}");
    root.auth_disable().await.map_err(failed)?;
    let got = c.get("/compat/auth/r/k", None).await.map_err(failed)?;
    check!(
        got.kvs().first().map(|kv| kv.value()) == Some(&b"before"[..]),
        "a get with auth off again: {got:?}"
    );
    auth.user_delete("compat-alice").await.map_err(failed)?;
    auth.user_delete("root").await.map_err(failed)?;
    auth.role_delete("compat-r").await.map_err(failed)?;
    let users = auth.user_list().await.map_err(failed)?;
    check!(users.users().is_empty(), "users left: {:?}", users.users());
    Ok(())
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
        run("auth", &client, |c| auth(c, endpoint.clone())).await,
    ];
    if passed.contains(&false) {
        std::process::exit(1);
    }
}
