//! A double barrier: the Go package's `DoubleBarrier`, its keys and its protocol.

use crate::client::{Client, EventType, GetOptions, SortOrder, SortTarget, WatchOptions};

use super::super::Withdraw;
use super::super::{wait, Error, Result, Session};
use super::key::{check_name, join, put_unique, wait_event};

/// A barrier for a fixed number of clients, crossed twice: [`enter`](DoubleBarrier::enter)
/// returns once `count` clients have entered, [`leave`](DoubleBarrier::leave) once all of
/// them have left. For `count` workers to start a round together and finish it together.
///
/// Entering puts a unique key `key/waiters/<ns>` on the session's lease; the client whose
/// key is the `count`th by create revision puts `key/ready`, which lets everyone in, and a
/// client beyond `count` is refused ([`Error::TooManyClients`]). Leaving deletes the
/// waiter keys: the lowest (by mod revision) waits for all others to go, the others
/// delete theirs and wait for the lowest, and the last one out deletes `key/ready`. A
/// client that dies is taken out by its lease. Keys and protocol are the Go package's
/// (`recipe.NewDoubleBarrier`).
#[derive(Debug)]
pub struct DoubleBarrier {
    session: Session,
    client: Client,
    key: Vec<u8>,
    count: usize,
    /// This client's waiter key while it is in the barrier.
    mine: Option<Vec<u8>>,
}

impl DoubleBarrier {
    /// The double barrier `key` for `count` clients, this one entering for `session`. An
    /// empty key or a count of 0 is refused when entering.
    pub fn new(session: &Session, key: impl Into<Vec<u8>>, count: usize) -> DoubleBarrier {
        DoubleBarrier {
            session: session.clone(),
            client: session.client().clone(),
            key: key.into(),
            count,
            mine: None,
        }
    }

    /// Enters, then waits until `count` clients have entered. Fails with
    /// [`Error::TooManyClients`] (leaving no key) when `count` clients are in already. An
    /// enter abandoned while waiting (its future dropped) or whose wait fails withdraws.
    pub async fn enter(&mut self) -> Result<()> {
        check_name(&self.key, "a double barrier")?;
        if self.count == 0 {
            return Err(Error::InvalidArgs("a double barrier is for at least one client".into()));
        }
        if self.mine.is_some() {
            return Err(Error::InvalidArgs("this client is in the barrier already: leave it first".into()));
        }
        let mut client = self.client.clone();
        let waiters = self.waiters();
        let limit = i64::try_from(self.count).unwrap_or(i64::MAX);
        // Each client needs only the first `count` entrants, not all of them.
        let entered = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Create, SortOrder::Ascend)
            .with_limit(limit);
        if client.get(waiters.clone(), Some(entered.clone().with_count_only())).await?.count() >= limit {
            return Err(Error::TooManyClients);
        }

        let mut pending = Withdraw::new(&client);
        let dir = join(&self.key, b"/waiters");
        let (key, rev) = put_unique(&mut client, &dir, b"", self.session.lease(), Some(&mut pending)).await?;
        let now = client.get(waiters, Some(entered)).await?;
        if now.count() >= limit {
            let last = now.kvs().last().map_or(0, |kv| kv.create_revision());
            if rev > last {
                // Withdrawn at once, not left counted until its lease expires.
                client.delete(key, None).await?;
                pending.disarm();
                return Err(Error::TooManyClients);
            }
            if rev == last {
                client.put(self.ready(), "", None).await?;
                pending.disarm();
                self.mine = Some(key);
                return Ok(());
            }
        }
        let mut from = rev;
        loop {
            if wait_event(&client, &self.ready(), WatchOptions::new(), from, EventType::Put).await?.is_some()
            {
                break;
            }
            // The watch was cut short (its revision compacted): the barrier may have opened
            // meanwhile; if not, watch on from what was just read.
            let ready = client.get(self.ready(), None).await?;
            if ready.kvs().first().is_some_and(|kv| kv.mod_revision() > rev) {
                break;
            }
            from = ready.header().map_or(rev, |h| h.revision()) + 1;
        }
        pending.disarm();
        self.mine = Some(key);
        Ok(())
    }

    /// Leaves, then waits until every client that entered has left. An error when this
    /// client has not entered. A leave abandoned while this client waits for the others
    /// (its future dropped) withdraws its key, as if it had left.
    pub async fn leave(&mut self) -> Result<()> {
        let Some(mine) = self.mine.clone() else {
            return Err(Error::InvalidArgs("leave before enter: this client is not in the barrier".into()));
        };
        let mut client = self.client.clone();
        let mut pending = Withdraw::new(&client);
        pending.arm(mine.clone());
        loop {
            let left = client.get(self.waiters(), Some(GetOptions::new().with_prefix())).await?;
            let read_at = left.header().map_or(0, |h| h.revision());
            let by_mod = |kv: &&crate::client::KeyValue| kv.mod_revision();
            let (Some(lowest), Some(highest)) =
                (left.kvs().iter().min_by_key(by_mod), left.kvs().iter().max_by_key(by_mod))
            else {
                break;
            };
            let is_lowest = lowest.key() == mine.as_slice();
            if is_lowest && left.kvs().len() == 1 {
                // The last one out takes the barrier down for the next round.
                client.delete(self.ready(), None).await?;
                client.delete(mine.clone(), None).await?;
                break;
            }
            if is_lowest {
                wait::wait_delete(&client, highest.key(), read_at + 1).await?;
            } else {
                client.delete(mine.clone(), None).await?;
                wait::wait_delete(&client, lowest.key(), read_at + 1).await?;
            }
        }
        pending.disarm();
        self.mine = None;
        Ok(())
    }

    /// The barrier's key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The session this client entered for.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// `key/waiters/`: the entrants' keys. (Go reads `key/waiters` as a prefix; the slash
    /// keeps a barrier named `key/waitersX` out.)
    fn waiters(&self) -> Vec<u8> {
        join(&self.key, b"/waiters/")
    }

    fn ready(&self) -> Vec<u8> {
        join(&self.key, b"/ready")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::{mpsc, oneshot};

    use super::super::tests::{client, count, session, WAIT};
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn n_clients_enter_together_and_leave_together() {
        let client = client().await;
        let arrived = Arc::new(AtomicUsize::new(0));
        let leaving = Arc::new(AtomicUsize::new(0));
        let (entered_tx, mut entered) = mpsc::channel(3);
        let mut go = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let (client, arrived, leaving, entered_tx) =
                (client.clone(), arrived.clone(), leaving.clone(), entered_tx.clone());
            let (go_tx, go_rx) = oneshot::channel::<()>();
            go.push(go_tx);
            tasks.push(tokio::spawn(async move {
                let s = session(&client, 60).await;
                let mut b = DoubleBarrier::new(&s, "db", 3);
                arrived.fetch_add(1, Ordering::SeqCst);
                b.enter().await.unwrap();
                assert_eq!(arrived.load(Ordering::SeqCst), 3, "entered before everyone arrived");
                entered_tx.send(()).await.unwrap();
                go_rx.await.unwrap();
                leaving.fetch_add(1, Ordering::SeqCst);
                b.leave().await.unwrap();
                assert_eq!(leaving.load(Ordering::SeqCst), 3, "left before everyone was leaving");
            }));
        }
        for _ in 0..3 {
            tokio::time::timeout(WAIT, entered.recv()).await.expect("all three enter").unwrap();
        }
        assert_eq!(count(&client, "db/waiters/").await, 3);
        assert_eq!(count(&client, "db/ready").await, 1);

        // A fourth is one too many, and leaves nothing behind.
        let s = session(&client, 60).await;
        let mut fourth = DoubleBarrier::new(&s, "db", 3);
        assert!(matches!(fourth.enter().await, Err(Error::TooManyClients)));
        assert_eq!(count(&client, "db/waiters/").await, 3);
        assert!(matches!(fourth.leave().await, Err(Error::InvalidArgs(_))));

        // They leave one by one; none gets out before the last one is leaving.
        for (i, go) in go.into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            go.send(()).unwrap();
        }
        for task in tasks {
            tokio::time::timeout(WAIT, task).await.expect("all leave").unwrap();
        }
        assert_eq!(count(&client, "db/").await, 0, "waiters and ready are gone");
    }

    #[tokio::test]
    async fn an_abandoned_enter_withdraws_and_bad_input_is_refused() {
        let client = client().await;
        let s = session(&client, 60).await;
        let mut b = DoubleBarrier::new(&s, "db", 2);
        assert!(tokio::time::timeout(Duration::from_millis(50), b.enter()).await.is_err());
        assert_eq!(count(&client, "db/").await, 0, "the abandoned entrant withdrew");

        // A barrier of one lets its client straight through, twice.
        let mut one = DoubleBarrier::new(&s, "solo", 1);
        for _ in 0..2 {
            tokio::time::timeout(WAIT, one.enter()).await.unwrap().unwrap();
            tokio::time::timeout(WAIT, one.leave()).await.unwrap().unwrap();
        }
        assert_eq!(count(&client, "solo/").await, 0);

        assert!(matches!(DoubleBarrier::new(&s, "", 2).enter().await, Err(Error::InvalidArgs(_))));
        assert!(matches!(DoubleBarrier::new(&s, "db", 0).enter().await, Err(Error::InvalidArgs(_))));
    }
}
