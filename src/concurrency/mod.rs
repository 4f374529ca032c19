//! Coordination over an etcd keyspace: sessions, locks, elections, software transactional
//! memory and the recipes of etcd's `concurrency` and `experimental/recipes` Go packages,
//! with their protocols and key layouts, written only against [`client::Client`].
//!
//! Because they see only the client, the same code runs in-process over a [`Store`], against
//! an etcdlite server or `TestServer`, and on a real etcd cluster; and because the keys and
//! the protocol are etcd's, a Go program using clientv3's `concurrency.Mutex` and a Rust
//! program using [`Mutex`] contend correctly for the same lock on the same server.
//!
//! ```
//! use etcdlite::client::Client;
//! use etcdlite::concurrency::{Mutex, Session};
//! use etcdlite::{Options, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), etcdlite::concurrency::Error> {
//! let client = Client::embedded(Store::open(Options::memory())?, None).await?;
//! let session = Session::new(&client, None).await?;
//! let mut lock = Mutex::new(&session, "locks/orders");
//! lock.lock().await?;
//! // ... the critical section ...
//! lock.unlock().await?;
//! session.close().await?;
//! # Ok(()) }
//! ```
//!
//! A [`Session`] keeps its lease alive on a task of the tokio runtime it was created in; a
//! session, lock or election therefore needs a tokio runtime, as `etcd-client` does.
//!
//! [`client::Client`]: crate::client::Client
//! [`Store`]: crate::Store

mod election;
mod error;
mod mutex;
pub mod recipes;
pub(crate) mod service;
mod session;
mod stm;
mod wait;

pub use election::{Election, Observe};
pub use error::{Error, Result};
pub use mutex::Mutex;
pub use session::{Session, SessionOptions};
pub use stm::*;
pub(crate) use wait::Resumed;

use crate::client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, SortOrder, SortTarget, Txn, TxnOp,
};
use crate::DeleteRangeRequest;

/// A lease id as Go's `%x` writes it (a sign, then the magnitude): how clientv3 names the
/// keys of locks and elections, `prefix/<lease id in hex>`.
pub(crate) fn go_hex(lease: i64) -> String {
    if lease < 0 {
        format!("-{:x}", lease.unsigned_abs())
    } else {
        format!("{lease:x}")
    }
}

/// `prefix` followed by `/`, where a lock's or election's keys live (clientv3's layout).
pub(crate) fn with_slash(prefix: &[u8]) -> Vec<u8> {
    let mut dir = prefix.to_vec();
    dir.push(b'/');
    dir
}

/// clientv3's `WithFirstCreate`: the key of a prefix with the lowest create revision.
pub(crate) fn first_created() -> GetOptions {
    GetOptions::new().with_prefix().with_sort(SortTarget::Create, SortOrder::Ascend).with_limit(1)
}

/// Deletes `key` without waiting, for a call abandoned half-way (its future dropped), if
/// `only_if` holds (none: at once): in-process the delete is applied before this returns;
/// over the network it is sent from a task of the current tokio runtime (with none, the
/// key is left to its lease). The condition keeps a late delete off a key that has since
/// been created again: a stale withdraw must not free someone's lock.
pub(crate) fn delete_abandoned(client: &Client, key: Vec<u8>, only_if: Option<Compare>) {
    let delete = TxnOp::delete(key.clone(), None);
    let txn = only_if.map(|compare| Txn::new().when([compare]).and_then([delete]));
    if let Some(store) = client.store() {
        // Applied at once; nobody waits for its durability.
        match txn {
            Some(txn) => drop(store.txn_async(txn)),
            None => drop(store.delete_range_async(&DeleteRangeRequest { key, ..Default::default() })),
        }
        return;
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let mut client = client.clone();
        runtime.spawn(async move {
            let deleted = match txn {
                Some(txn) => client.txn(txn).await.map(drop),
                None => client.delete(key, None::<DeleteOptions>).await.map(drop),
            };
            if let Err(e) = deleted {
                tracing::warn!("could not delete an abandoned key: {e}");
            }
        });
    }
}

/// Deletes a key when dropped while armed: a call that put a key and then fails or is
/// abandoned (its future dropped) withdraws it, as clientv3 unlocks or resigns on a failed
/// or cancelled wait, so nobody queues behind a key whose owner went.
pub(crate) struct Withdraw {
    client: Client,
    key: Option<Vec<u8>>,
    only_if: Option<Compare>,
}

impl Withdraw {
    /// A guard over `client`, not armed.
    pub(crate) fn new(client: &Client) -> Withdraw {
        Withdraw { client: client.clone(), key: None, only_if: None }
    }

    /// Deletes `key` on drop.
    pub(crate) fn arm(&mut self, key: Vec<u8>) {
        self.key = Some(key);
        self.only_if = None;
    }

    /// Deletes `key` on drop if `only_if` holds then.
    pub(crate) fn arm_if(&mut self, key: Vec<u8>, only_if: Compare) {
        self.key = Some(key);
        self.only_if = Some(only_if);
    }

    /// Deletes `key` on drop if it is still the incarnation created at `revision`.
    pub(crate) fn arm_created_at(&mut self, key: Vec<u8>, revision: i64) {
        let only_if = Compare::create_revision(key.clone(), CompareOp::Equal, revision);
        self.arm_if(key, only_if);
    }

    /// Keeps the key.
    pub(crate) fn disarm(&mut self) {
        self.key = None;
    }

    /// In-process, before a txn that may create `key`: a call abandoned while the txn is
    /// in flight deletes the key only if the txn created it (its create revision is past
    /// the present one), never a key that was there before. Over the network the outcome
    /// of an abandoned txn is unknown, and, as with clientv3, the key is left to its lease.
    pub(crate) fn arm_before_creating(&mut self, key: Vec<u8>) {
        if let Some(store) = self.client.store() {
            let now = store.current_revision();
            self.arm_if(key.clone(), Compare::create_revision(key, CompareOp::Greater, now));
        }
    }
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            delete_abandoned(&self.client, key, self.only_if.take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::go_hex;

    #[test]
    fn lease_ids_are_written_as_go_writes_them() {
        assert_eq!(go_hex(42), "2a");
        assert_eq!(go_hex(-42), "-2a");
        assert_eq!(go_hex(i64::MIN), "-8000000000000000");
    }
}
