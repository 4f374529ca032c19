//! etcd's multi-version keyspace over an [`Engine`](crate::engine::Engine).
//!
//! Every write request gets one main revision; each change in it a sub revision
//! ([`Revision`]). Changes are stored in the engine's `kv` keyspace under their revision
//! ([`record`] documents the format), and an in-memory index maps every key to its history,
//! so a read at any retained revision is an index lookup plus point reads.
//!
//! [`MvccStore::read`] gives a [`ReadTxn`] pinned at the current revision; [`MvccStore::write`]
//! a [`WriteTxn`] that stages changes under one new revision and publishes them atomically on
//! [`WriteTxn::commit`]. Both implement [`ReadView`]. [`MvccStore::compact`] drops history;
//! [`MvccStore::hash_kv`] hashes it as etcd's HashKV does.
//!
//! This layer knows etcd's storage model but not its request rules: validation, compares,
//! sorting and the rest of a request's meaning live in [`crate::txn`].

mod compaction;
mod group_commit;
mod hash;
mod index;
mod key_history;
mod kv;
pub mod record;
mod revision;
mod store;

pub use compaction::{CompactionDone, DEFAULT_COMPACTION_BATCH_LIMIT};
pub use group_commit::Durable;
pub use hash::KvHash;
pub use kv::KeyValue;
pub use revision::Revision;
pub use store::{Change, CommitObserver, MvccStore, ReadTxn, WriteTxn, MAX_REVISION};

use crate::error::Result;

/// The keys a request covers, decoded from etcd's `(key, range_end)` convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRange<'a> {
    /// Exactly this key (`range_end` empty).
    Key(&'a [u8]),
    /// Keys in `[start, end)`; empty when `end <= start`.
    Range(&'a [u8], &'a [u8]),
    /// Every key `>= start` (`range_end` is `"\0"`).
    From(&'a [u8]),
}

impl<'a> KeyRange<'a> {
    /// Decodes etcd's convention: an empty `range_end` means the key alone, `"\0"` means
    /// every key from `key` on, anything else is the exclusive end.
    pub fn from_etcd(key: &'a [u8], range_end: &'a [u8]) -> Self {
        match range_end {
            [] => KeyRange::Key(key),
            [0] => KeyRange::From(key),
            end => KeyRange::Range(key, end),
        }
    }

    /// True when `key` is inside the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        match *self {
            KeyRange::Key(k) => key == k,
            KeyRange::Range(start, end) => key >= start && key < end,
            KeyRange::From(start) => key >= start,
        }
    }
}

/// What to read: etcd's `mvcc.RangeOptions`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeOptions {
    /// Return at most this many key-values; 0 or less means all.
    pub limit: i64,
    /// Read at this revision; 0 or less means the view's revision.
    pub revision: i64,
    /// Count the keys without returning them.
    pub count_only: bool,
}

/// What a range read found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResult {
    /// The key-values, in key order.
    pub kvs: Vec<KeyValue>,
    /// How many keys the range holds at the read revision, regardless of `limit`.
    pub count: usize,
    /// The view's revision (not the read revision).
    pub revision: i64,
}

/// A consistent view of the keyspace: etcd's `mvcc.ReadView`.
pub trait ReadView {
    /// The revision the view reads at: the current revision, or for a write txn that has
    /// already changed something, the revision it will commit.
    fn revision(&self) -> i64;

    /// The compacted revision when the view was opened (-1 before any compaction).
    fn first_revision(&self) -> i64;

    /// Reads the keys in `range` at `options.revision`.
    fn range(&self, range: KeyRange<'_>, options: RangeOptions) -> Result<RangeResult>;
}
