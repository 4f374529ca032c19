//! The Maintenance service: alarms, status, defragmentation, hashes, snapshots and
//! leadership.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::embedded::Embedded;
use super::{dispatch, header_accessors, Backend, Result};
use crate::cluster::{AlarmAction, AlarmMember, AlarmType, DowngradeAction};
use crate::txn::request::ResponseHeader;

/// Options of an alarm call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlarmOptions {
    pub(crate) member: u64,
}

impl AlarmOptions {
    /// No member (0): for a get, every member's alarms.
    pub const fn new() -> Self {
        AlarmOptions { member: 0 }
    }

    /// The member whose alarm is raised or cleared.
    pub fn with_member(&mut self, member: u64) {
        self.member = member;
    }
}

/// The answer to an alarm call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlarmResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) alarms: Vec<AlarmMember>,
}

impl AlarmResponse {
    header_accessors!();

    /// The alarms listed, raised or cleared.
    pub fn alarms(&self) -> &[AlarmMember] {
        &self.alarms
    }
}

/// A downgrade's state (etcd 3.6).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DowngradeInfo {
    pub(crate) enabled: bool,
    pub(crate) target_version: String,
}

impl DowngradeInfo {
    /// True while a downgrade is under way.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The version being downgraded to.
    pub fn target_version(&self) -> &str {
        &self.target_version
    }
}

/// A member's status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) version: String,
    pub(crate) db_size: i64,
    pub(crate) leader: u64,
    pub(crate) raft_index: u64,
    pub(crate) raft_term: u64,
    pub(crate) raft_applied_index: u64,
    pub(crate) errors: Vec<String>,
    pub(crate) raft_used_db_size: i64,
    pub(crate) is_learner: bool,
    pub(crate) storage_version: String,
    pub(crate) db_size_quota: i64,
    pub(crate) downgrade_info: Option<DowngradeInfo>,
}

impl StatusResponse {
    header_accessors!();

    /// The etcd version the member reports.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Bytes the backend occupies.
    pub fn db_size(&self) -> i64 {
        self.db_size
    }

    /// The leader's member id.
    pub fn leader(&self) -> u64 {
        self.leader
    }

    /// The raft index (in-process: the store's revision).
    pub fn raft_index(&self) -> u64 {
        self.raft_index
    }

    /// The raft term.
    pub fn raft_term(&self) -> u64 {
        self.raft_term
    }

    /// The applied raft index.
    pub fn raft_applied_index(&self) -> u64 {
        self.raft_applied_index
    }

    /// One line per raised alarm.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Bytes live data holds (etcd's `dbSizeInUse`).
    pub fn raft_used_db_size(&self) -> i64 {
        self.raft_used_db_size
    }

    /// True for a learner.
    pub fn is_learner(&self) -> bool {
        self.is_learner
    }

    /// The storage version (etcd 3.6; empty from 3.5 and in-process).
    pub fn storage_version(&self) -> &str {
        &self.storage_version
    }

    /// The space quota (etcd 3.6; 0 from 3.5 and in-process).
    pub fn db_size_quota(&self) -> i64 {
        self.db_size_quota
    }

    /// A downgrade under way (etcd 3.6).
    pub fn downgrade_info(&self) -> Option<&DowngradeInfo> {
        self.downgrade_info.as_ref()
    }
}

/// The answer to a defragmentation (etcd sends no header).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DefragmentResponse {
    pub(crate) header: Option<ResponseHeader>,
}

impl DefragmentResponse {
    header_accessors!();
}

/// The answer to a Hash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) hash: u32,
}

impl HashResponse {
    header_accessors!();

    /// The hash of the whole backend (in-process and from an etcdlite server: a CRC-32C
    /// of the store, not etcd's value).
    pub fn hash(&self) -> u32 {
        self.hash
    }
}

/// The answer to a HashKV.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashKvResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) hash: u32,
    pub(crate) compact_revision: i64,
    pub(crate) hash_revision: i64,
}

impl HashKvResponse {
    header_accessors!();

    /// The hash of the history up to the revision asked for, as etcd computes it.
    pub fn hash(&self) -> u32 {
        self.hash
    }

    /// The compacted revision the hash was computed with (`etcd-client`'s name for it).
    pub fn compact_version(&self) -> i64 {
        self.compact_revision
    }

    /// The revision the hash covers (etcd 3.6; 0 from 3.5 and in-process).
    pub fn hash_revision(&self) -> i64 {
        self.hash_revision
    }
}

/// One chunk of a streamed snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) remaining_bytes: u64,
    pub(crate) blob: Vec<u8>,
    pub(crate) version: String,
}

impl SnapshotResponse {
    header_accessors!();

    /// Bytes still to come after this chunk.
    pub fn remaining_bytes(&self) -> u64 {
        self.remaining_bytes
    }

    /// The chunk's bytes.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// The storage version (etcd 3.6; empty from 3.5 and in-process).
    pub fn version(&self) -> &str {
        &self.version
    }
}

/// A streamed snapshot: the backend's bytes in chunks, then a last chunk holding their
/// SHA-256 (from a store in-process: etcdlite's snapshot format, which
/// [`Store::restore_snapshot`](crate::Store::restore_snapshot) reads).
pub struct SnapshotStreaming(SnapshotInner);

enum SnapshotInner {
    Embedded(crate::SnapshotChunks),
    #[cfg(feature = "remote")]
    Remote(Box<etcd_client::SnapshotStreaming>),
}

impl SnapshotStreaming {
    /// The next chunk; `None` after the last.
    pub async fn message(&mut self) -> Result<Option<SnapshotResponse>> {
        match &mut self.0 {
            SnapshotInner::Embedded(chunks) => {
                std::future::poll_fn(|cx| poll_chunk(chunks, cx)).await.transpose()
            }
            #[cfg(feature = "remote")]
            SnapshotInner::Remote(r) => Ok(r.message().await?.map(super::remote::snapshot_response)),
        }
    }
}

fn poll_chunk(
    chunks: &mut crate::SnapshotChunks,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<SnapshotResponse>>> {
    Pin::new(chunks).poll_next(cx).map(|chunk| {
        chunk.map(|chunk| {
            let chunk = chunk?;
            Ok(SnapshotResponse {
                header: None,
                remaining_bytes: chunk.remaining_bytes,
                blob: chunk.blob,
                version: String::new(),
            })
        })
    })
}

impl SnapshotStreaming {
    #[cfg(feature = "remote")]
    pub(crate) fn remote(stream: etcd_client::SnapshotStreaming) -> Self {
        SnapshotStreaming(SnapshotInner::Remote(Box::new(stream)))
    }
}

/// The answer to a leadership transfer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MoveLeaderResponse {
    pub(crate) header: Option<ResponseHeader>,
}

impl MoveLeaderResponse {
    header_accessors!();
}

/// What a downgrade call does (etcd 3.6).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DowngradeOptions {
    /// Checks whether the cluster can be downgraded to this version.
    Validate(String),
    /// Starts a downgrade to this version.
    Enable(String),
    /// Cancels a downgrade under way.
    Cancel,
}

/// The answer to a downgrade call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DowngradeResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) version: String,
}

impl DowngradeResponse {
    header_accessors!();

    /// The cluster's version.
    pub fn version(&self) -> &str {
        &self.version
    }
}

/// The Maintenance service of a [`Client`](super::Client).
#[derive(Clone, Debug)]
pub struct MaintenanceClient {
    pub(crate) backend: Backend,
}

impl MaintenanceClient {
    /// Lists (`Get`), raises (`Activate`) or clears (`Deactivate`) alarms.
    pub async fn alarm(
        &mut self,
        alarm_action: AlarmAction,
        alarm_type: AlarmType,
        options: Option<AlarmOptions>,
    ) -> Result<AlarmResponse> {
        let member = options.unwrap_or_default().member;
        dispatch!(
            &mut self.backend,
            e => {
                if alarm_action == AlarmAction::Get {
                    e.require_user()?;
                } else {
                    e.require_admin()?;
                }
                Ok(e.alarm(alarm_action, alarm_type, member))
            },
            r => super::remote::alarm(r, alarm_action, alarm_type, member).await
        )
    }

    /// The member's status.
    pub async fn status(&mut self) -> Result<StatusResponse> {
        dispatch!(&mut self.backend, e => e.require_user().and_then(|()| e.status()), r => super::remote::status(r).await)
    }

    /// Gives back the space deleted data held.
    pub async fn defragment(&mut self) -> Result<DefragmentResponse> {
        dispatch!(&mut self.backend, e => {
            e.require_admin_unmapped()?;
            e.defragment().await
        }, r => super::remote::defragment(r).await)
    }

    /// A hash of the whole backend.
    pub async fn hash(&mut self) -> Result<HashResponse> {
        dispatch!(&mut self.backend, e => {
            e.require_admin_unmapped()?;
            e.hash().await
        }, r => super::remote::hash(r).await)
    }

    /// A hash of the history up to `revision` (0: the current revision).
    pub async fn hash_kv(&mut self, revision: i64) -> Result<HashKvResponse> {
        dispatch!(&mut self.backend, e => {
            e.require_admin_unmapped()?;
            e.hash_kv(revision).await
        }, r => super::remote::hash_kv(r, revision).await)
    }

    /// Streams a snapshot of the backend.
    pub async fn snapshot(&mut self) -> Result<SnapshotStreaming> {
        dispatch!(
            &mut self.backend,
            e => {
                e.require_admin_unmapped()?;
                Ok(SnapshotStreaming(SnapshotInner::Embedded(e.store.snapshot_chunks())))
            },
            r => super::remote::snapshot(r).await
        )
    }

    /// Hands leadership to member `target_id` (in-process: only to itself).
    pub async fn move_leader(&mut self, target_id: u64) -> Result<MoveLeaderResponse> {
        dispatch!(
            &mut self.backend,
            e => {
                e.require_admin()?;
                e.store.move_leader(target_id)?;
                // etcd answers an empty message: no header.
                Ok(MoveLeaderResponse { header: None })
            },
            r => super::remote::move_leader(r, target_id).await
        )
    }

    /// Validates, starts or cancels a downgrade of the cluster (in-process: see
    /// [`Cluster::downgrade`](crate::cluster::Cluster::downgrade)).
    pub async fn downgrade(&mut self, options: DowngradeOptions) -> Result<DowngradeResponse> {
        dispatch!(
            &mut self.backend,
            e => {
                e.require_admin()?;
                let (action, version) = match &options {
                    DowngradeOptions::Validate(version) => (DowngradeAction::Validate, version.as_str()),
                    DowngradeOptions::Enable(version) => (DowngradeAction::Enable, version.as_str()),
                    DowngradeOptions::Cancel => (DowngradeAction::Cancel, ""),
                };
                let version = e.store.cluster().downgrade(action, version)?;
                Ok(DowngradeResponse { header: e.header(0), version })
            },
            r => super::remote::downgrade(r, options).await
        )
    }
}

impl Embedded {
    fn alarm(&self, action: AlarmAction, alarm: AlarmType, member: u64) -> AlarmResponse {
        let alarms = self.store.alarm(action, member, alarm);
        AlarmResponse { header: self.header(0), alarms }
    }

    fn status(&self) -> Result<StatusResponse> {
        let s = self.store.status()?;
        Ok(StatusResponse {
            header: Some(s.header),
            version: s.version,
            db_size: s.db_size,
            leader: s.leader,
            raft_index: s.raft_index,
            raft_term: s.raft_term,
            raft_applied_index: s.raft_applied_index,
            errors: s.errors,
            raft_used_db_size: s.db_size_in_use,
            is_learner: s.is_learner,
            storage_version: String::new(),
            db_size_quota: 0,
            downgrade_info: None,
        })
    }

    async fn defragment(&self) -> Result<DefragmentResponse> {
        self.call(async {
            self.store.defragment_async().await?;
            self.store.cluster().space_changed();
            Ok(DefragmentResponse { header: None })
        })
        .await
    }

    async fn hash(&self) -> Result<HashResponse> {
        self.call(async {
            let header = self.header(0);
            let hash = self.store.hash_async().await?;
            Ok(HashResponse { header, hash })
        })
        .await
    }

    async fn hash_kv(&self, revision: i64) -> Result<HashKvResponse> {
        self.call(async {
            let resp = self.store.hash_kv_async(revision).await?;
            Ok(HashKvResponse {
                header: self.header(resp.header.revision),
                hash: resp.hash,
                compact_revision: resp.compact_revision,
                hash_revision: 0,
            })
        })
        .await
    }
}

impl std::fmt::Debug for SnapshotStreaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStreaming").finish_non_exhaustive()
    }
}
