//! etcd's Lock and Election services over the coordination types: what an in-process
//! client's `lock`, `campaign`... calls do, and what the etcdlite server runs for its
//! `v3lockpb` and `v3electionpb` RPCs, as etcd's own servers run clientv3's `concurrency`.
//!
//! Each request gets a session of the request's lease that nothing keeps alive (lease 0: a
//! new lease of 60 seconds, as etcd grants), and the answers and errors are etcd's servers':
//! every failure is relayed as Unknown with its message, as etcd's servers relay their
//! client's errors.

use crate::client::{
    self, CampaignResponse, Client, Code, LeaderKey, LeaderResponse, LockResponse, ObserveStream,
    ProclaimResponse, ResignResponse, Status, UnlockResponse,
};

use super::{Election, Error, Mutex, Session};

/// etcd's election server's answer to a Proclaim or Resign without a leader key.
const MISSING_LEADER_KEY: &str = "\"leader\" field must be provided";

/// An error as etcd's Lock and Election servers answer it: Unknown, with the message of
/// what failed (an unknown lease is Unknown "etcdserver: requested lease not found").
pub(crate) fn relayed(error: Error) -> client::Error {
    let message = match &error {
        Error::Client(client::Error::GRpcStatus(status)) => status.message().to_owned(),
        other => other.to_string(),
    };
    Status::new(Code::Unknown, message).into()
}

/// Takes the lock `name` for `lease`, waiting while others hold it.
pub(crate) async fn lock(client: &Client, name: Vec<u8>, lease: i64) -> client::Result<LockResponse> {
    let session = Session::orphaned(client, lease).await.map_err(relayed)?;
    let mut mutex = Mutex::unchecked(&session, name);
    mutex.lock().await.map_err(relayed)?;
    Ok(LockResponse { header: mutex.header().cloned(), key: mutex.key().to_vec() })
}

/// Releases the lock held by `key`: deletes it.
pub(crate) async fn unlock(client: &Client, key: Vec<u8>) -> client::Result<UnlockResponse> {
    let mut client = client.clone();
    let mut resp = client.delete(key, None).await.map_err(|e| relayed(e.into()))?;
    Ok(UnlockResponse { header: resp.take_header() })
}

/// Campaigns for `name` with `value` on `lease`, waiting to lead.
pub(crate) async fn campaign(
    client: &Client,
    name: Vec<u8>,
    value: Vec<u8>,
    lease: i64,
) -> client::Result<CampaignResponse> {
    let session = Session::orphaned(client, lease).await.map_err(relayed)?;
    let mut election = Election::unchecked(&session, name.clone());
    election.campaign(value).await.map_err(relayed)?;
    let leader =
        LeaderKey { name, key: election.key().to_vec(), rev: election.rev(), lease: session.lease() };
    Ok(CampaignResponse { header: election.header().cloned(), leader: Some(leader) })
}

/// Sets the value of the leader `leader`.
pub(crate) async fn proclaim(
    client: &Client,
    leader: Option<LeaderKey>,
    value: Vec<u8>,
) -> client::Result<ProclaimResponse> {
    let mut election = resumed(client, leader).await?;
    election.proclaim(value).await.map_err(relayed)?;
    Ok(ProclaimResponse { header: election.header().cloned() })
}

/// Gives up the leadership of `leader`.
pub(crate) async fn resign(client: &Client, leader: Option<LeaderKey>) -> client::Result<ResignResponse> {
    let mut election = resumed(client, leader).await?;
    election.resign().await.map_err(relayed)?;
    Ok(ResignResponse { header: election.header().cloned() })
}

/// The leader of `name`.
pub(crate) async fn leader(client: &Client, name: Vec<u8>) -> client::Result<LeaderResponse> {
    let mut resp = observer(client, name).await?.leader().await.map_err(relayed)?;
    Ok(LeaderResponse { header: resp.take_header(), kv: resp.take_kvs().into_iter().next() })
}

/// The leaders of `name`, as they change.
pub(crate) async fn observe(client: &Client, name: Vec<u8>) -> client::Result<ObserveStream> {
    Ok(ObserveStream::embedded(observer(client, name).await?.observe()))
}

/// The election of `leader`, resumed in a session of its lease (etcd's servers make one, a
/// new lease for lease 0).
async fn resumed(client: &Client, leader: Option<LeaderKey>) -> client::Result<Election> {
    let leader = leader.ok_or_else(|| client::Error::from(Status::new(Code::Unknown, MISSING_LEADER_KEY)))?;
    let session = Session::orphaned(client, leader.lease).await.map_err(relayed)?;
    Ok(Election::resume_unchecked(&session, leader.name, leader.key, leader.rev))
}

/// An election to read, in a session that grants nothing (etcd's servers use lease -1).
async fn observer(client: &Client, name: Vec<u8>) -> client::Result<Election> {
    let session = Session::orphaned(client, -1).await.map_err(relayed)?;
    Ok(Election::unchecked(&session, name))
}
