//! The coordination types in-process: sessions keep and lose their leases, locks and
//! elections withdraw when abandoned, and bad input is refused. (The client suite in the
//! server crate runs locks and elections in every place the client runs.)

use std::sync::Arc;
use std::time::Duration;

use etcdlite::client::{AlarmAction, AlarmType, Client, GetOptions, PutOptions, Txn, TxnOp};
use etcdlite::concurrency::{Election, Error, Mutex, Session, SessionOptions};
use etcdlite::{ManualClock, Options, Store};
use futures::FutureExt;

/// A bound on waits that must end; nothing here takes it unless broken.
const WAIT: Duration = Duration::from_secs(10);

async fn manual() -> (Client, ManualClock) {
    let clock = ManualClock::new();
    let store = Store::open(Options::memory().clock(Arc::new(clock.clone()))).unwrap();
    (Client::embedded(store, None).await.unwrap(), clock)
}

async fn session(client: &Client, ttl: i64) -> Session {
    Session::new(client, Some(SessionOptions::new().with_ttl(ttl))).await.unwrap()
}

async fn count(client: &Client, prefix: &str) -> i64 {
    let mut c = client.clone();
    c.get(prefix, Some(GetOptions::new().with_prefix().with_count_only())).await.unwrap().count()
}

#[tokio::test]
async fn a_session_renews_its_lease_until_dropped() {
    let (client, clock) = manual().await;
    let s = session(&client, 3).await;
    let mut c = client.clone();
    clock.advance(Duration::from_secs(2));
    // Within a third of the TTL (one real second) the keep-alive renews it to 3 again.
    tokio::time::timeout(WAIT, async {
        while c.lease_time_to_live(s.lease(), None).await.unwrap().ttl() < 3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the session renews its lease");
    assert!(!s.is_done());

    let lease = s.lease();
    c.put("mine", "v", Some(PutOptions::new().with_lease(lease))).await.unwrap();
    drop(s);
    clock.advance(Duration::from_secs(3));
    assert_eq!(
        c.lease_time_to_live(lease, None).await.unwrap().ttl(),
        -1,
        "nothing renews a dropped session"
    );
    assert_eq!(count(&client, "mine").await, 0);
}

#[tokio::test]
async fn close_revokes_and_done_resolves_when_the_lease_is_lost() {
    let (client, _clock) = manual().await;
    let closed = session(&client, 60).await;
    let mut c = client.clone();
    c.put("k", "v", Some(PutOptions::new().with_lease(closed.lease()))).await.unwrap();
    closed.close().await.unwrap();
    assert!(closed.is_done());
    assert_eq!(count(&client, "k").await, 0, "closing revokes the lease and its keys");

    // Someone else revokes the lease: the next keep-alive (a third of the TTL later)
    // learns it, and the session is done.
    let lost = session(&client, 3).await;
    c.lease_revoke(lost.lease()).await.unwrap();
    tokio::time::timeout(WAIT, lost.done()).await.expect("done once the lease is gone");
}

#[tokio::test]
async fn a_session_adopts_an_existing_lease_and_refuses_bad_ttls() {
    let (client, _clock) = manual().await;
    let mut c = client.clone();
    let lease = c.lease_grant(30, None).await.unwrap().id();
    let adopted = Session::new(&client, Some(SessionOptions::new().with_lease(lease))).await.unwrap();
    assert_eq!(adopted.lease(), lease);
    assert_eq!(adopted.ttl(), 30, "an adopted lease keeps its own TTL");
    assert_eq!(c.leases().await.unwrap().leases().len(), 1, "no second lease");
    for ttl in [0, -5] {
        let refused = Session::new(&client, Some(SessionOptions::new().with_ttl(ttl))).await;
        assert!(matches!(refused, Err(Error::InvalidArgs(_))), "TTL {ttl}: {refused:?}");
    }
    let too_long = Session::new(&client, Some(SessionOptions::new().with_ttl(9_000_000_001))).await;
    assert_eq!(too_long.unwrap_err().to_string(), "grpc request error: code: 'Operation was attempted past the valid range', message: \"etcdserver: too large lease TTL\"");
    assert_eq!(c.leases().await.unwrap().leases().len(), 1, "a refused session leaves no lease");
}

#[tokio::test]
async fn an_abandoned_lock_withdraws_and_the_next_waiter_is_not_stuck_behind_it() {
    let (client, _clock) = manual().await;
    let (a, b, c) = (session(&client, 60).await, session(&client, 60).await, session(&client, 60).await);
    let mut held = Mutex::new(&a, "m");
    held.lock().await.unwrap();
    // b queues, then gives up (its future dropped): its key goes.
    let mut abandoned = Mutex::new(&b, "m");
    assert!(abandoned.lock().now_or_never().is_none(), "b waits");
    assert_eq!(count(&client, "m/").await, 1, "b's key is withdrawn when its wait is dropped");
    // c queues behind a only, and gets the lock when a unlocks.
    let waiting = {
        let c = c.clone();
        tokio::spawn(async move {
            let mut m = Mutex::new(&c, "m");
            m.lock().await.map(|()| m.key().to_vec())
        })
    };
    tokio::time::timeout(WAIT, async {
        while count(&client, "m/").await < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    held.unlock().await.unwrap();
    let key = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap().unwrap();
    assert_eq!(key, format!("m/{:x}", c.lease()).into_bytes());
}

#[tokio::test]
async fn locking_again_with_the_same_session_keeps_the_place() {
    let (client, _clock) = manual().await;
    let s = session(&client, 60).await;
    let mut first = Mutex::new(&s, "same");
    first.lock().await.unwrap();
    let mut second = Mutex::new(&s, "same");
    second.lock().await.expect("the session's own key: already the owner");
    assert_eq!(first.key(), second.key());
    assert_eq!(count(&client, "same/").await, 1);
}

#[tokio::test]
async fn a_waiter_whose_session_expires_is_told_so() {
    let (client, clock) = manual().await;
    let (holder, waiter) = (session(&client, 60).await, session(&client, 3).await);
    let mut held = Mutex::new(&holder, "x");
    held.lock().await.unwrap();
    waiter.orphan().await;
    let waiting = {
        let waiter = waiter.clone();
        tokio::spawn(async move { Mutex::new(&waiter, "x").lock().await })
    };
    tokio::time::timeout(WAIT, async {
        while count(&client, "x/").await < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    clock.advance(Duration::from_secs(3));
    held.unlock().await.unwrap();
    let refused = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap();
    assert!(matches!(refused, Err(Error::SessionExpired)), "{refused:?}");
    assert_eq!(Error::SessionExpired.to_string(), "mutex: session is expired");
}

#[tokio::test]
async fn a_campaign_resumes_updates_its_value_and_an_abandoned_one_withdraws() {
    let (client, _clock) = manual().await;
    let (a, b) = (session(&client, 60).await, session(&client, 60).await);
    let mut leader = Election::new(&a, "e");
    leader.campaign("one").await.unwrap();
    let rev = leader.rev();
    // The same session campaigning again keeps its place and takes the new value.
    let mut again = Election::new(&a, "e");
    again.campaign("two").await.unwrap();
    assert_eq!(again.rev(), rev);
    let got = leader.leader().await.unwrap();
    assert_eq!(got.kvs()[0].value_str().unwrap(), "two");

    let mut abandoned = Election::new(&b, "e");
    assert!(abandoned.campaign("b").now_or_never().is_none(), "b waits behind a");
    assert_eq!(count(&client, "e/").await, 1, "an abandoned campaign withdraws");

    // A resumed election (after a restart, with the lease adopted) proclaims and resigns.
    let resumed_session =
        Session::new(&client, Some(SessionOptions::new().with_lease(a.lease()))).await.unwrap();
    let mut resumed = Election::resume(&resumed_session, "e", leader.key(), rev);
    resumed.proclaim("three").await.unwrap();
    assert_eq!(leader.leader().await.unwrap().kvs()[0].value_str().unwrap(), "three");
    resumed.resign().await.unwrap();
    assert!(matches!(leader.leader().await, Err(Error::NoLeader)));
    // The old handle's key is gone: proclaiming through it fails.
    assert!(matches!(leader.proclaim("four").await, Err(Error::NotLeader)));
    assert!(matches!(Election::new(&a, "").campaign("v").await, Err(Error::InvalidArgs(_))));
}

#[tokio::test]
async fn lock_and_election_calls_of_the_client_run_in_process() {
    let (client, _clock) = manual().await;
    let mut c = client.clone();
    let lease = c.lease_grant(60, None).await.unwrap().id();
    let locked = c.lock("svc", Some(etcdlite::client::LockOptions::new().with_lease(lease))).await.unwrap();
    assert_eq!(locked.key(), format!("svc/{lease:x}").as_bytes());
    c.unlock(locked.key()).await.unwrap();
    let unknown =
        c.lock("svc", Some(etcdlite::client::LockOptions::new().with_lease(12345))).await.unwrap_err();
    let status = unknown.status().expect("a status");
    assert_eq!(
        (status.code(), status.message()),
        (etcdlite::Code::Unknown, "etcdserver: requested lease not found")
    );

    let campaign = c.campaign("vote", "me", lease).await.unwrap();
    let leader = campaign.leader().unwrap().clone();
    assert_eq!(c.leader("vote").await.unwrap().kv().unwrap().value(), b"me");
    let options = etcdlite::client::ProclaimOptions::new().with_leader(leader.clone());
    c.proclaim("again", Some(options)).await.unwrap();
    let mut observed = c.observe("vote").await.unwrap();
    assert_eq!(observed.message().await.unwrap().unwrap().kv().unwrap().value(), b"again");
    c.resign(Some(etcdlite::client::ResignOptions::new().with_leader(leader))).await.unwrap();
    let none = c.leader("vote").await.unwrap_err();
    assert_eq!(none.status().unwrap().message(), "election: no leader");
}

async fn raise_nospace(client: &mut Client) {
    let member = client.status().await.unwrap().header().unwrap().member_id();
    let mut options = etcdlite::client::AlarmOptions::new();
    options.with_member(member);
    client.alarm(AlarmAction::Activate, AlarmType::Nospace, Some(options)).await.unwrap();
}

#[tokio::test]
async fn a_failed_second_lock_or_campaign_of_the_same_session_leaves_the_held_key_alone() {
    let (mut client, _clock) = manual().await;
    let s = session(&client, 60).await;
    let mut holder = Mutex::new(&s, "l");
    holder.lock().await.unwrap();
    let mut leader = Election::new(&s, "e");
    leader.campaign("v1").await.unwrap();
    let lease = client.lease_grant(60, None).await.unwrap().id();
    let rpc_held =
        client.lock("r", Some(etcdlite::client::LockOptions::new().with_lease(lease))).await.unwrap();

    // Every write now fails with "database space exceeded"; the failures must not touch
    // the keys the same leases already hold.
    raise_nospace(&mut client).await;
    assert!(Mutex::new(&s, "l").lock().await.is_err());
    assert!(Election::new(&s, "e").campaign("v2").await.is_err());
    assert!(client.lock("r", Some(etcdlite::client::LockOptions::new().with_lease(lease))).await.is_err());
    tokio::task::yield_now().await;
    for key in [holder.key().to_vec(), leader.key().to_vec(), rpc_held.key().to_vec()] {
        assert_eq!(client.get(key.clone(), None).await.unwrap().count(), 1, "{key:?} still held");
    }
}

#[tokio::test]
async fn is_owner_fails_once_the_lock_key_is_gone() {
    let (mut client, _clock) = manual().await;
    let s = session(&client, 60).await;
    let mut lock = Mutex::new(&s, "fenced");
    lock.lock().await.unwrap();
    let fenced =
        |lock: &Mutex| Txn::new().when([lock.is_owner()]).and_then([TxnOp::put("guarded", "x", None)]);
    assert!(client.txn(fenced(&lock)).await.unwrap().succeeded(), "the owner writes");
    client.delete(lock.key(), None).await.unwrap();
    assert!(!client.txn(fenced(&lock)).await.unwrap().succeeded(), "a lost lock fences its holder out");
}
