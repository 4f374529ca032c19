//! The space quota: a write that would take the database past `--quota-backend-bytes`
//! raises NOSPACE and fails as etcd fails it; reads, deletes and compactions go on; once
//! space is reclaimed and the alarm disarmed, writes work again.

use etcd_client::{AlarmAction, AlarmOptions, AlarmType, Client, CompactionOptions, DeleteOptions};
use etcdlite_server::{Config, TestServer};

const NO_SPACE: &str = "etcdserver: mvcc: database space exceeded";

/// A server whose space quota is `quota_bytes`, and a client of it; the server stops when
/// it is dropped.
async fn start(quota_bytes: u64) -> (Client, TestServer) {
    let config = Config { quota_bytes, ..Config::default() };
    let server = TestServer::builder().config(config).start().unwrap();
    (Client::connect([server.endpoint()], None).await.unwrap(), server)
}

fn assert_no_space(result: Result<impl std::fmt::Debug, etcd_client::Error>) {
    match result {
        Err(etcd_client::Error::GRpcStatus(status)) => {
            assert_eq!(status.code(), tonic::Code::ResourceExhausted);
            assert_eq!(status.message(), NO_SPACE);
        }
        other => panic!("expected {NO_SPACE:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_past_the_quota_raise_nospace_and_fail_until_space_is_reclaimed_and_disarmed() {
    let (mut client, _server) = start(32 * 1024).await;
    let value = vec![b'v'; 1024];

    // Fill until the quota refuses a put (bounded: 32 KiB of 1 KiB values).
    let mut stored = 0;
    let refused = loop {
        assert!(stored < 1000, "the quota never refused a put");
        match client.put(format!("k{stored:04}"), value.clone(), None).await {
            Ok(_) => stored += 1,
            Err(e) => break Err::<(), _>(e),
        }
    };
    assert!(stored > 0, "the first put was refused");
    assert_no_space(refused);
    let revision = client.get("k", None).await.unwrap().header().unwrap().revision();

    // NOSPACE is raised on this member, and shows in Status.
    let member = client.status().await.unwrap().header().unwrap().member_id();
    let alarms = client.alarm(AlarmAction::Get, AlarmType::None, None).await.unwrap();
    let raised: Vec<_> = alarms.alarms().iter().map(|a| (a.member_id(), a.alarm())).collect();
    assert_eq!(raised, vec![(member, AlarmType::Nospace)]);
    assert_eq!(client.status().await.unwrap().errors().len(), 1);

    // While it is raised: puts, txns with puts and lease grants fail; nothing changes.
    assert_no_space(client.put("small", "x", None).await);
    assert_no_space(client.lease_grant(10, None).await);
    let txn = etcd_client::Txn::new().and_then([etcd_client::TxnOp::put("small", "x", None)]);
    assert_no_space(client.txn(txn).await);
    let got = client.get("k", Some(etcd_client::GetOptions::new().with_prefix())).await.unwrap();
    assert_eq!(got.count(), stored);
    assert_eq!(got.header().unwrap().revision(), revision);

    // Reads, deletes and compactions still work: reclaim the space.
    let deleted = client.delete("k", Some(DeleteOptions::new().with_prefix())).await.unwrap();
    assert_eq!(deleted.deleted(), stored);
    let now = deleted.header().unwrap().revision();
    client.compact(now, Some(CompactionOptions::new().with_physical())).await.unwrap();
    client.defragment().await.unwrap();

    // Still refused until disarmed, then accepted.
    assert_no_space(client.put("small", "x", None).await);
    let mut options = AlarmOptions::new();
    options.with_member(member);
    let disarmed = client.alarm(AlarmAction::Deactivate, AlarmType::Nospace, Some(options)).await.unwrap();
    assert_eq!(disarmed.alarms().len(), 1);
    assert!(client.alarm(AlarmAction::Get, AlarmType::None, None).await.unwrap().alarms().is_empty());
    client.put("small", "x", None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_can_be_raised_and_cleared_by_hand() {
    let (mut client, _server) = start(etcdlite_server::DEFAULT_QUOTA_BYTES).await;
    let member = client.status().await.unwrap().header().unwrap().member_id();
    let mut options = AlarmOptions::new();
    options.with_member(member);
    let raised =
        client.alarm(AlarmAction::Activate, AlarmType::Nospace, Some(options.clone())).await.unwrap();
    assert_eq!(raised.alarms().len(), 1);
    assert_no_space(client.put("k", "v", None).await);
    // Deletes are free.
    client.delete("k", None).await.unwrap();
    client.alarm(AlarmAction::Deactivate, AlarmType::Nospace, Some(options)).await.unwrap();
    client.put("k", "v", None).await.unwrap();
    // Activating NONE does nothing.
    let none = client.alarm(AlarmAction::Activate, AlarmType::None, None).await.unwrap();
    assert!(none.alarms().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_can_resign_and_unlock_while_nospace_is_raised() {
    let (mut client, _server) = start(etcdlite_server::DEFAULT_QUOTA_BYTES).await;
    let lease = client.lease_grant(60, None).await.unwrap().id();
    let leader = client.campaign("election", "me", lease).await.unwrap().take_leader().unwrap();
    let lock = client.lock("lock", Some(etcd_client::LockOptions::new().with_lease(lease))).await.unwrap();
    client.alarm(AlarmAction::Activate, AlarmType::Nospace, None).await.unwrap();
    assert_no_space(client.put("k", "v", None).await);
    // Giving up takes no space: etcd lets both through (a txn that only deletes).
    client.resign(Some(etcd_client::ResignOptions::new().with_leader(leader))).await.unwrap();
    client.unlock(lock.key()).await.unwrap();
    let left = client.get("election", Some(etcd_client::GetOptions::new().with_prefix())).await.unwrap();
    assert_eq!(left.count(), 0);
    assert_eq!(
        client.get("lock", Some(etcd_client::GetOptions::new().with_prefix())).await.unwrap().count(),
        0
    );
}
