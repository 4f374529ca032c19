//! Leader election: clientv3's `concurrency.Election`, its keys and its protocol.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::mpsc;

use crate::client::{
    Client, Compare, CompareOp, EventType, GetResponse, KeyValue, PutOptions, ResponseHeader, Txn, TxnOp,
    TxnOpResponse, WatchOptions,
};

use super::wait::{self, Resumed};
use super::{first_created, go_hex, with_slash, Error, Result, Session, Withdraw};

/// How many leader changes an [`Observe`] stream holds for a slow reader before the
/// observer waits for it.
const OBSERVED_HELD: usize = 16;

/// An election among everyone who names the same prefix; a candidate campaigns for a
/// [`Session`].
///
/// Campaigning puts the key `prefix/<lease id in hex>`, holding the candidate's value, on
/// the session's lease; the leader is the key with the lowest create revision, and its
/// value is what the leader proclaims. A candidate waits for every key created before its
/// own to go. The session's end withdraws the candidacy, which is how a dead leader hands
/// over. Key layout and protocol are clientv3's: Go and Rust candidates share elections.
#[derive(Debug)]
pub struct Election {
    session: Session,
    client: Client,
    prefix: Vec<u8>,
    leader_key: Vec<u8>,
    leader_rev: i64,
    /// Whether this election's session leads (or campaigns), clientv3's `leaderSession`.
    leading: bool,
    header: Option<ResponseHeader>,
    checked: bool,
}

impl Election {
    /// The election named `prefix` (its keys go under `prefix/`), for `session`. An empty
    /// prefix is refused when campaigning.
    pub fn new(session: &Session, prefix: impl Into<Vec<u8>>) -> Election {
        Election {
            session: session.clone(),
            client: session.client().clone(),
            prefix: with_slash(&prefix.into()),
            leader_key: Vec::new(),
            leader_rev: -1,
            leading: false,
            header: None,
            checked: true,
        }
    }

    /// The election as etcd's Election service runs it: any name, the empty one included.
    pub(crate) fn unchecked(session: &Session, prefix: impl Into<Vec<u8>>) -> Election {
        Election { checked: false, ..Election::new(session, prefix) }
    }

    /// Takes up an election this session leads already, from its leader key and that key's
    /// create revision (after a restart, with a session adopting the old lease).
    pub fn resume(
        session: &Session,
        prefix: impl Into<Vec<u8>>,
        leader_key: impl Into<Vec<u8>>,
        leader_rev: i64,
    ) -> Election {
        Election {
            leader_key: leader_key.into(),
            leader_rev,
            leading: true,
            ..Election::new(session, prefix)
        }
    }

    pub(crate) fn resume_unchecked(
        session: &Session,
        prefix: impl Into<Vec<u8>>,
        leader_key: impl Into<Vec<u8>>,
        leader_rev: i64,
    ) -> Election {
        Election { checked: false, ..Election::resume(session, prefix, leader_key, leader_rev) }
    }

    /// Waits until this session leads, then leads with `value`. A session that
    /// campaigned before keeps its place (its value is updated). A campaign abandoned while
    /// waiting (its future dropped) or whose proclaim fails resigns; one whose wait fails
    /// leaves its key, and is no longer leading (clientv3's rules).
    pub async fn campaign(&mut self, value: impl Into<Vec<u8>>) -> Result<()> {
        if self.checked && self.prefix.len() == 1 {
            return Err(Error::InvalidArgs("an election's name must not be empty".into()));
        }
        let value = value.into();
        let lease = self.session.lease();
        let mut key = self.prefix.clone();
        key.extend_from_slice(go_hex(lease).as_bytes());

        let mut withdraw = Withdraw::new(&self.client);
        withdraw.arm_before_creating(key.clone());
        let put = TxnOp::put(key.clone(), value.clone(), Some(PutOptions::new().with_lease(lease)));
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([put])
            .or_else([TxnOp::get(key.clone(), None)]);
        let resp = self.client.txn(txn).await?;
        self.leader_key = key;
        self.leader_rev = resp.header().map_or(0, |h| h.revision());
        self.leading = true;
        // A session that campaigned before finds its key: its place, and maybe an old value.
        let existing = if resp.succeeded() {
            None
        } else {
            let kv = match resp.responses.first() {
                Some(TxnOpResponse::Get(get)) => get.kvs().first().cloned(),
                _ => None,
            };
            Some(kv.ok_or_else(|| {
                crate::client::Error::Internal("campaign key vanished inside its txn".into())
            })?)
        };
        if let Some(kv) = &existing {
            self.leader_rev = kv.create_revision();
        }
        // From here on, a campaign abandoned or whose proclaim fails resigns (deletes this
        // incarnation of the key only, as clientv3's Resign).
        withdraw.arm_created_at(self.leader_key.clone(), self.leader_rev);
        if existing.is_some_and(|kv| kv.value() != value.as_slice()) {
            self.proclaim(value).await?;
        }
        let mut client = self.client.clone();
        if let Err(e) = wait::wait_deletes(&mut client, &self.prefix, self.leader_rev - 1).await {
            withdraw.disarm();
            self.leading = false;
            return Err(e);
        }
        withdraw.disarm();
        self.header = resp.header().cloned();
        Ok(())
    }

    /// Sets the leader's value, while this session still leads; otherwise fails with
    /// [`Error::NotLeader`].
    pub async fn proclaim(&mut self, value: impl Into<Vec<u8>>) -> Result<()> {
        if !self.leading {
            return Err(Error::NotLeader);
        }
        let put = TxnOp::put(
            self.leader_key.clone(),
            value,
            Some(PutOptions::new().with_lease(self.session.lease())),
        );
        let txn = Txn::new().when([self.still_leading()]).and_then([put]);
        let resp = self.client.txn(txn).await?;
        if !resp.succeeded() {
            self.leader_key.clear();
            return Err(Error::NotLeader);
        }
        self.header = resp.header().cloned();
        Ok(())
    }

    /// Gives up leadership (deletes the leader's key, if it is still this campaign's).
    /// Nothing to do when not leading.
    pub async fn resign(&mut self) -> Result<()> {
        if !self.leading {
            return Ok(());
        }
        let txn =
            Txn::new().when([self.still_leading()]).and_then([TxnOp::delete(self.leader_key.clone(), None)]);
        let resigned = self.client.txn(txn).await;
        self.leader_key.clear();
        self.leading = false;
        self.header = resigned?.header().cloned();
        Ok(())
    }

    /// The current leader's key and value; [`Error::NoLeader`] when nobody campaigns.
    pub async fn leader(&mut self) -> Result<GetResponse> {
        let resp = self.client.get(self.prefix.clone(), Some(first_created())).await?;
        if resp.kvs().is_empty() {
            return Err(Error::NoLeader);
        }
        Ok(resp)
    }

    /// The leaders of the election as they come and go: the current one (or the first
    /// candidate, if none yet), then one item for each new leader and each value a leader
    /// proclaims. Observed on a task of the current tokio runtime; dropping the stream
    /// stops it. Like clientv3's, the stream ends when its watch is cut short (the server
    /// going away, a compaction past it).
    pub fn observe(&self) -> Observe {
        let (out, leaders) = mpsc::channel(OBSERVED_HELD);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(observe(self.client.clone(), self.prefix.clone(), out));
            }
            Err(_) => {
                let refused =
                    Error::InvalidArgs("observe runs on a tokio runtime: call it inside one".into());
                let _ = out.try_send(Err(refused));
            }
        }
        Observe { leaders }
    }

    /// The leader key of this campaign (`prefix/<lease id in hex>`); empty when not
    /// leading.
    pub fn key(&self) -> &[u8] {
        &self.leader_key
    }

    /// The leader key's create revision.
    pub fn rev(&self) -> i64 {
        self.leader_rev
    }

    /// The header of the last call that changed this campaign.
    pub fn header(&self) -> Option<&ResponseHeader> {
        self.header.as_ref()
    }

    /// The session campaigning.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Holds while the leader's key is still the one this campaign created.
    fn still_leading(&self) -> Compare {
        Compare::create_revision(self.leader_key.clone(), CompareOp::Equal, self.leader_rev)
    }
}

/// The leaders of an election, from [`Election::observe`]: a `Stream` of answers each
/// holding the leader's key-value and the header of the revision it was seen at.
#[derive(Debug)]
pub struct Observe {
    leaders: mpsc::Receiver<Result<GetResponse>>,
}

impl Observe {
    /// The next leader; `None` once observing has ended.
    pub async fn next_leader(&mut self) -> Option<Result<GetResponse>> {
        self.leaders.recv().await
    }
}

impl Stream for Observe {
    type Item = Result<GetResponse>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().leaders.poll_recv(cx)
    }
}

/// Sends the leaders of the election under `prefix` into `out` until `out` closes, a call
/// fails (the error is sent) or a watch is cut short (clientv3's `observe`).
async fn observe(mut client: Client, prefix: Vec<u8>, out: mpsc::Sender<Result<GetResponse>>) {
    let observed = async {
        loop {
            let Some((header, leader)) = current_or_first(&mut client, &prefix).await? else { return Ok(()) };
            let from = header.revision() + 1;
            let key = leader.key().to_vec();
            if out.send(Ok(answer(header, leader))).await.is_err() {
                return Ok(());
            }
            // Every value of this leader's key until it is deleted.
            let mut watch = Resumed::new(&client, &key, WatchOptions::new(), from);
            'leader: loop {
                let Some(changed) = watch.next().await? else { return Ok(()) };
                for event in changed.events() {
                    let Some(kv) = event.kv() else { continue };
                    if event.event_type() == EventType::Delete {
                        break 'leader;
                    }
                    let header = changed.header().cloned().unwrap_or_default();
                    if out.send(Ok(answer(header, kv.clone()))).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    };
    tokio::select! {
        ended = observed => {
            if let Err(e) = ended {
                let _ = out.send(Err(e)).await;
            }
        }
        _ = out.closed() => {}
    }
}

/// The leader now, or, when there is none, the first candidate to come (`None` when the
/// watch for it is cut short).
async fn current_or_first(client: &mut Client, prefix: &[u8]) -> Result<Option<(ResponseHeader, KeyValue)>> {
    let mut current = client.get(prefix, Some(first_created())).await?;
    let header = current.take_header().unwrap_or_default();
    if let Some(leader) = current.take_kvs().into_iter().next() {
        return Ok(Some((header, leader)));
    }
    let mut watch = Resumed::new(client, prefix, WatchOptions::new().with_prefix(), header.revision());
    while let Some(changed) = watch.next().await? {
        // Only a put makes a leader; a delete here would make the observer spin.
        let put = changed.events().iter().find(|e| e.event_type() == EventType::Put).and_then(|e| e.kv());
        if let Some(kv) = put {
            let mut header = changed.header().cloned().unwrap_or_default();
            header.revision = kv.mod_revision();
            return Ok(Some((header, kv.clone())));
        }
    }
    Ok(None)
}

/// A leader as clientv3 reports it: a range answer of one key.
fn answer(header: ResponseHeader, leader: KeyValue) -> GetResponse {
    GetResponse { header: Some(header), kvs: vec![leader], more: false, count: 1 }
}
