//! Leases: grant, attach, time-to-live, revoke, keep-alive keepers and streams, expiry.

use std::time::Duration;

use etcdlite::client::{Code, Error, LeaseGrantOptions, LeaseTimeToLiveOptions, PutOptions};

use crate::harness::{within, Target};
use crate::status;

const NOT_FOUND: &str = "etcdserver: requested lease not found";

pub async fn grant_attach_inspect_and_revoke(mut t: Target) {
    let mut c = t.client();
    let grant = c.lease_grant(30, None).await.unwrap();
    assert_eq!(grant.ttl(), 30);
    assert!(grant.id() > 0);
    assert_eq!(grant.header().unwrap().revision(), 1, "a grant takes no revision");
    let lease = grant.id();
    for key in ["l/b", "l/a"] {
        c.put(key, "v", Some(PutOptions::new().with_lease(lease))).await.unwrap();
    }
    let ttl = c.lease_time_to_live(lease, Some(LeaseTimeToLiveOptions::new().with_keys())).await.unwrap();
    assert_eq!((ttl.id(), ttl.granted_ttl()), (lease, 30));
    assert!((29..=30).contains(&ttl.ttl()), "ttl {}", ttl.ttl());
    let mut keys = ttl.keys().to_vec();
    keys.sort();
    assert_eq!(keys, [b"l/a".to_vec(), b"l/b".to_vec()]);
    assert!(c.leases().await.unwrap().leases().iter().any(|l| l.id() == lease));

    t.midpoint().await;
    let revoked = c.lease_revoke(lease).await.unwrap();
    assert_eq!(revoked.header().unwrap().revision(), 4, "the revoke deleted both keys in one revision");
    assert_eq!(c.get("l/a", None).await.unwrap().count(), 0);
    let gone = c.lease_time_to_live(lease, None).await.unwrap();
    assert_eq!((gone.ttl(), gone.granted_ttl()), (-1, 0), "an unknown lease is no error");
    assert_eq!(status(c.lease_revoke(lease).await), (Code::NotFound, NOT_FOUND.into()));
    assert!(!c.leases().await.unwrap().leases().iter().any(|l| l.id() == lease));
}

pub async fn keepers_renew_and_their_stream_answers(mut t: Target) {
    let mut c = t.client();
    let lease = c.lease_grant(20, None).await.unwrap().id();
    t.midpoint().await;
    let (mut keeper, mut answers) = within("keep-alive", c.lease_keep_alive(lease)).await.unwrap();
    assert_eq!(keeper.id(), lease);
    if let Some(clock) = t.clock() {
        clock.advance(Duration::from_secs(15));
    }
    keeper.keep_alive().await.unwrap();
    let answer = within("a keep-alive answer", answers.message()).await.unwrap().expect("an answer");
    assert_eq!((answer.id(), answer.ttl()), (lease, 20), "renewed to the full TTL");
    let left = c.lease_time_to_live(lease, None).await.unwrap().ttl();
    assert!((19..=20).contains(&left), "{left} s left after the renewal");

    c.lease_revoke(lease).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let answer = within("a keep-alive answer", answers.message()).await.unwrap().expect("an answer");
    assert_eq!(answer.ttl(), 0, "a revoked lease is answered with TTL 0, not an error");

    match c.lease_keep_alive(lease).await {
        Err(Error::LeaseKeepAliveError(reason)) => assert_eq!(reason, "lease not found"),
        other => panic!("keep-alive of a revoked lease: {:?}", other.map(|(k, _)| k.id())),
    }
    drop(keeper);
    assert!(
        within("the stream's end", answers.message()).await.unwrap().is_none(),
        "dropping the keeper ends the stream"
    );
}

pub async fn leases_expire_with_their_keys(mut t: Target) {
    let mut c = t.client();
    let lease = c.lease_grant(2, None).await.unwrap().id();
    let kept = c.lease_grant(60, None).await.unwrap().id();
    c.put("short", "v", Some(PutOptions::new().with_lease(lease))).await.unwrap();
    c.put("long", "v", Some(PutOptions::new().with_lease(kept))).await.unwrap();
    t.midpoint().await;
    let probe = t.client();
    t.after_time(Duration::from_secs(2), || {
        let mut c = probe.clone();
        async move { c.get("short", None).await.unwrap().count() == 0 }
    })
    .await;
    assert_eq!(c.lease_time_to_live(lease, None).await.unwrap().ttl(), -1);
    assert_eq!(c.get("long", None).await.unwrap().count(), 1, "the other lease's key stays");
    assert_eq!(
        c.get("long", None).await.unwrap().header().unwrap().revision(),
        4,
        "the expiry was one delete"
    );
}

pub async fn chosen_ids_and_their_errors(mut t: Target) {
    let mut c = t.client();
    let chosen = c.lease_grant(10, Some(LeaseGrantOptions::new().with_id(0x7e57))).await.unwrap();
    assert_eq!(chosen.id(), 0x7e57);
    assert_eq!(
        status(c.lease_grant(10, Some(LeaseGrantOptions::new().with_id(0x7e57))).await),
        (Code::FailedPrecondition, "etcdserver: lease already exists".into())
    );
    t.midpoint().await;
    assert_eq!(c.lease_grant(1, None).await.unwrap().ttl(), 2, "TTLs below etcd's minimum are raised");
    assert_eq!(
        status(c.lease_grant(9_000_000_001, None).await),
        (Code::OutOfRange, "etcdserver: too large lease TTL".into())
    );
    assert_eq!(status(c.lease_revoke(0x5eed).await), (Code::NotFound, NOT_FOUND.into()));
}
