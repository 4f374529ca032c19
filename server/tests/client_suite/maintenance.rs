//! Maintenance and Cluster: status, members, alarms, hashes, snapshots, defragmentation.

use sha2::{Digest, Sha256};

use etcdlite::client::{
    AlarmAction, AlarmOptions, AlarmType, Code, DeleteOptions, LeaseGrantOptions, PutOptions,
};

use crate::harness::{within, Place, Target};
use crate::status;

pub async fn status_and_members_name_one_leader(mut t: Target) {
    let mut c = t.client();
    c.put("k", "v", None).await.unwrap();
    let status = c.status().await.unwrap();
    assert!(status.leader() != 0);
    assert!(status.db_size() > 0);
    assert!(status.raft_term() >= 1);
    assert!(status.version().starts_with("3."), "version {}", status.version());
    assert!(status.errors().is_empty());
    let header = *status.header().unwrap();
    assert_eq!(header.revision(), 2);
    assert!(header.cluster_id() != 0 && header.member_id() != 0);

    t.midpoint().await;
    let members = c.member_list().await.unwrap();
    assert_eq!(members.header().unwrap().cluster_id(), header.cluster_id());
    let expected = if t.place == Place::EtcdCluster { 3 } else { 1 };
    assert_eq!(members.members().len(), expected);
    let member =
        members.members().iter().find(|m| m.id() == header.member_id()).expect("the member that answered");
    assert!(!member.is_learner());
    assert!(!member.client_urls().is_empty() && !member.peer_urls().is_empty());
    assert!(!member.name().is_empty());
    if t.place != Place::EtcdCluster {
        assert_eq!(status.leader(), header.member_id(), "a single member leads");
        assert_eq!(status.raft_index(), status.raft_applied_index());
        // etcd answers MoveLeader with an empty message, no header.
        assert_eq!(c.move_leader(header.member_id()).await.unwrap().header(), None);
        let (code, message) = status_of_member_calls(&mut c, header.member_id()).await;
        assert_eq!(code, Code::NotFound);
        assert_eq!(message, "etcdserver: member not found");
    }
}

/// What removing an unknown member answers.
async fn status_of_member_calls(c: &mut etcdlite::client::Client, own: u64) -> (Code, String) {
    status(c.member_remove(own.wrapping_add(1)).await)
}

pub async fn alarms_are_listed_raised_and_cleared(mut t: Target) {
    let mut c = t.client();
    let none = c.alarm(AlarmAction::Get, AlarmType::None, None).await.unwrap();
    assert!(none.alarms().is_empty());
    let member = c.status().await.unwrap().header().unwrap().member_id();
    let mut options = AlarmOptions::new();
    options.with_member(member);
    let raised = c.alarm(AlarmAction::Activate, AlarmType::Nospace, Some(options)).await.unwrap();
    assert_eq!(raised.alarms().len(), 1);
    assert_eq!((raised.alarms()[0].member_id(), raised.alarms()[0].alarm()), (member, AlarmType::Nospace));

    t.midpoint().await;
    assert_eq!(
        status(c.put("k", "v", None).await),
        (Code::ResourceExhausted, "etcdserver: mvcc: database space exceeded".into())
    );
    assert_eq!(c.status().await.unwrap().errors().len(), 1, "Status reports the alarm");
    assert_eq!(c.alarm(AlarmAction::Get, AlarmType::Nospace, None).await.unwrap().alarms().len(), 1);
    c.delete("k", None).await.unwrap(); // deletes free space: the quota lets them through
    let cleared = c.alarm(AlarmAction::Deactivate, AlarmType::Nospace, Some(options)).await.unwrap();
    assert_eq!(cleared.alarms().len(), 1);
    c.put("k", "v", None).await.unwrap();
    assert!(c.alarm(AlarmAction::Get, AlarmType::None, None).await.unwrap().alarms().is_empty());
}

/// HashKV of the history every place writes below: the value etcd 3.4.23 and 3.5.1
/// report for it, which an etcdlite store computes the same way.
const HISTORY_HASH: u32 = 0xf8fb_ad05;

pub async fn hash_kv_is_etcds_hash(mut t: Target) {
    let mut c = t.client();
    // A chosen lease id: the id is part of the hashed record, and servers choose alike only
    // when told to.
    let lease = c.lease_grant(600, Some(LeaseGrantOptions::new().with_id(0x1234))).await.unwrap().id();
    c.put("a", "1", None).await.unwrap();
    c.put("b", "2", Some(PutOptions::new().with_lease(lease))).await.unwrap();
    c.put("a", "3", None).await.unwrap();
    c.delete("", Some(DeleteOptions::new().with_from_key())).await.unwrap();
    c.put("c", "4", None).await.unwrap(); // revision 6
    let at_6 = c.hash_kv(0).await.unwrap();
    assert_eq!(at_6.header().unwrap().revision(), 6);
    assert_eq!(at_6.hash(), HISTORY_HASH, "etcd's hash of this history");
    t.midpoint().await;
    c.put("d", "5", None).await.unwrap();
    assert_eq!(c.hash_kv(6).await.unwrap().hash(), at_6.hash(), "later writes leave an old revision's hash");
    assert_ne!(c.hash_kv(0).await.unwrap().hash(), at_6.hash());
    c.compact(4, None).await.unwrap();
    assert!(c.hash_kv(4).await.unwrap_err().to_string().contains("compacted"));
    assert_eq!(c.hash_kv(0).await.unwrap().compact_version(), 4);
}

pub async fn snapshots_end_with_their_sha256(mut t: Target) {
    let mut c = t.client();
    for i in 0..100 {
        c.put(format!("s/{i:03}"), vec![b'x'; 1000], None).await.unwrap();
    }
    t.midpoint().await;
    let mut stream = within("a snapshot", c.snapshot()).await.unwrap();
    let mut chunks = Vec::new();
    while let Some(chunk) = within("a snapshot chunk", stream.message()).await.unwrap() {
        chunks.push((chunk.remaining_bytes(), chunk.blob().to_vec()));
    }
    let (last_remaining, trailer) = chunks.pop().expect("a trailer");
    assert_eq!(last_remaining, 0);
    let payload: Vec<u8> = chunks.iter().flat_map(|(_, blob)| blob.clone()).collect();
    assert!(payload.len() > 100 * 1000, "the snapshot holds the data");
    assert_eq!(payload.len() % 512, 0, "whole pages");
    assert_eq!(trailer, Sha256::digest(&payload).to_vec());
    let mut remaining = payload.len() as u64;
    for (left, blob) in &chunks {
        remaining -= blob.len() as u64;
        assert_eq!(*left, remaining, "each chunk counts the bytes still to come");
    }
}

pub async fn defragment_and_hash_answer(mut t: Target) {
    let mut c = t.client();
    for i in 0..50 {
        c.put(format!("k{i}"), "v", None).await.unwrap();
    }
    c.delete("k", Some(DeleteOptions::new().with_prefix())).await.unwrap();
    t.midpoint().await;
    let defragmented = within("defragment", c.defragment()).await.unwrap();
    assert!(defragmented.header().is_none(), "etcd sends a defragmentation no header");
    let first = c.hash().await.unwrap();
    assert_eq!(first.header().unwrap().revision(), 52);
    if !t.is_etcd() {
        // etcd's Hash hashes its bbolt file, which changes with no write; a store's is stable.
        assert_eq!(c.hash().await.unwrap().hash(), first.hash());
    }
}
