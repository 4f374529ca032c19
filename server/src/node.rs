//! What every service shares: the store, this member's identity (for response headers),
//! the alarms and the space quota.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcdlite::Store;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tonic::Status;

use crate::pb::etcdserverpb::{AlarmType, ResponseHeader};
use crate::status::{join_error, no_space};

/// The raft term a single member reports: it won its one election and never lost it.
pub const RAFT_TERM: u64 = 2;

/// Who this member is: what response headers and the Cluster service report.
#[derive(Clone, Debug)]
pub struct Identity {
    /// `--name`.
    pub name: String,
    /// Derived from the name and advertised URLs, so it is stable across restarts.
    pub member_id: u64,
    /// Derived from the member id (a one-member cluster).
    pub cluster_id: u64,
    /// `--advertise-client-urls`.
    pub client_urls: Vec<String>,
    /// The peer URLs reported (a single node talks to no peers).
    pub peer_urls: Vec<String>,
}

impl Identity {
    /// The identity of member `name` advertising `client_urls` and `peer_urls`.
    pub fn new(name: &str, client_urls: Vec<String>, peer_urls: Vec<String>) -> Identity {
        let mut digest = Sha256::new();
        digest.update(name.as_bytes());
        for url in &peer_urls {
            digest.update(b"\0");
            digest.update(url.as_bytes());
        }
        let member = digest.finalize();
        let member_id = u64::from_be_bytes(member[..8].try_into().expect("8 bytes"));
        let cluster = Sha256::new().chain_update(b"etcdlite-cluster\0").chain_update(member).finalize();
        let cluster_id = u64::from_be_bytes(cluster[..8].try_into().expect("8 bytes"));
        Identity { name: name.to_owned(), member_id, cluster_id, client_urls, peer_urls }
    }
}

/// How long a measured database size serves the quota guard: etcd's backend batch
/// interval, by which etcd's own size figure lags behind its writes.
const SIZE_REFRESH: Duration = Duration::from_millis(100);

/// The database size the quota guard compares with. Measuring it reads the engine's size
/// statistics (for RocksDB, three properties of each column family), a few percent of a
/// put's cost, so a measurement serves for [`SIZE_REFRESH`], with the cost of every write
/// admitted since added to it, so the estimate follows growth between measurements.
#[derive(Default)]
struct SpaceGauge {
    measured_at: Option<Instant>,
    size: u64,
}

/// The state every service holds an `Arc` of.
pub struct Node {
    /// The one store every service (gRPC and gateway) reads and writes.
    pub store: Arc<Store>,
    /// This member.
    pub identity: Identity,
    /// The etcd version `Status` reports.
    pub version: String,
    /// The space quota in bytes: a write that would grow the database past it raises
    /// NOSPACE.
    pub quota_bytes: u64,
    alarms: Mutex<BTreeSet<(u64, i32)>>,
    space: Mutex<SpaceGauge>,
    peer_urls: Mutex<Vec<String>>,
    /// Set once the server is stopping: open streams end.
    stop: tokio::sync::watch::Sender<bool>,
}

impl Node {
    /// A node serving `store`.
    pub fn new(store: Arc<Store>, identity: Identity, version: String, quota_bytes: u64) -> Node {
        let peer_urls = Mutex::new(identity.peer_urls.clone());
        Node {
            store,
            identity,
            version,
            quota_bytes,
            alarms: Mutex::new(BTreeSet::new()),
            space: Mutex::new(SpaceGauge::default()),
            peer_urls,
            stop: tokio::sync::watch::channel(false).0,
        }
    }

    /// Tells every open stream (watch, lease keep-alive) that the server is stopping: each
    /// ends with etcd's "server stopped", so a graceful shutdown does not wait for clients
    /// that never hang up.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Resolves once [`stop`](Node::stop) has been called.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.subscribe();
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
        }
    }

    /// A top-level response header: cluster, member and term filled in, and the store's
    /// current revision when the response carries none (as etcd's v3rpc layer does).
    pub fn header(&self, header: Option<ResponseHeader>) -> Option<ResponseHeader> {
        let mut header = header.unwrap_or_default();
        header.cluster_id = self.identity.cluster_id;
        header.member_id = self.identity.member_id;
        header.raft_term = RAFT_TERM;
        if header.revision == 0 {
            header.revision = self.store.current_revision();
        }
        Some(header)
    }

    /// A watch response's header: cluster, member and term filled in, the revision left
    /// as the watch gave it (0 on a compaction cancel, as etcd sends it).
    pub fn watch_header(&self, header: Option<ResponseHeader>) -> Option<ResponseHeader> {
        let revision = header.map_or(0, |h| h.revision);
        Some(ResponseHeader { revision, ..self.cluster_header().unwrap_or_default() })
    }

    /// The header of a Cluster service response: revision 0, as etcd sends it.
    pub fn cluster_header(&self) -> Option<ResponseHeader> {
        Some(ResponseHeader {
            cluster_id: self.identity.cluster_id,
            member_id: self.identity.member_id,
            revision: 0,
            raft_term: RAFT_TERM,
        })
    }

    /// The alarms raised, as (member id, `AlarmType` number), in order.
    pub fn alarms(&self) -> Vec<(u64, i32)> {
        self.alarms.lock().iter().copied().collect()
    }

    /// Raises `alarm` on `member`; false if it was already raised.
    pub fn activate(&self, member: u64, alarm: AlarmType) -> bool {
        self.alarms.lock().insert((member, alarm as i32))
    }

    /// Clears `alarm` on `member`; false if it was not raised. The database size is
    /// measured afresh for the next write, as space is usually reclaimed before NOSPACE is
    /// disarmed.
    pub fn deactivate(&self, member: u64, alarm: AlarmType) -> bool {
        self.space_changed();
        self.alarms.lock().remove(&(member, alarm as i32))
    }

    /// Makes the quota guard measure the database size afresh: space was given back.
    pub fn space_changed(&self) {
        self.space.lock().measured_at = None;
    }

    /// The peer URLs this member reports (MemberUpdate may change them).
    pub fn peer_urls(&self) -> Vec<String> {
        self.peer_urls.lock().clone()
    }

    /// Replaces the peer URLs this member reports.
    pub fn set_peer_urls(&self, urls: Vec<String>) {
        *self.peer_urls.lock() = urls;
    }

    /// etcd's quota guard for a write adding about `cost` bytes: refused while NOSPACE is
    /// raised, and refused (raising NOSPACE) when it would take the database past the
    /// quota. Writes that add nothing (deletes, revokes, compactions) always pass.
    pub fn check_space(&self, cost: usize) -> Result<(), Status> {
        if cost == 0 {
            return Ok(());
        }
        if self.alarms.lock().iter().any(|&(_, alarm)| alarm == AlarmType::Nospace as i32) {
            return Err(no_space());
        }
        let mut space = self.space.lock();
        if space.measured_at.is_none_or(|at| at.elapsed() >= SIZE_REFRESH) {
            space.size = self.store.db_size().map(|s| s.total).unwrap_or(0);
            space.measured_at = Some(Instant::now());
        }
        let size = space.size;
        if size.saturating_add(cost as u64) >= self.quota_bytes {
            drop(space);
            if self.activate(self.identity.member_id, AlarmType::Nospace) {
                tracing::warn!(
                    size,
                    quota = self.quota_bytes,
                    "database space exceeded; NOSPACE alarm raised"
                );
            }
            return Err(no_space());
        }
        space.size += cost as u64;
        Ok(())
    }

    /// Runs a store call that may wait on the disk (a synced write) off the async
    /// workers.
    pub async fn blocking<T, F>(self: &Arc<Self>, call: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, Status> + Send + 'static,
    {
        let node = self.clone();
        tokio::task::spawn_blocking(move || call(&node.store)).await.map_err(join_error)?
    }
}
