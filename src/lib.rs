//! etcd's v3 semantics in your process: an MVCC keyspace with revisions, history reads,
//! transactions and compaction over a pluggable storage engine.
//!
//! A [`Store`] behaves like an etcd server's KV API — the same revisions, the same errors,
//! the same edge cases — with no network hop. Its call shapes follow the `etcd-client`
//! crate, so code moves between the two with small changes.
//!
//! ```
//! use etcdlite::{Compare, CompareOp, GetOptions, Options, Store, Txn, TxnOp};
//!
//! let store = Store::open(Options::memory())?;
//! store.put("config/a", "1", None)?;
//! store.put("config/b", "2", None)?;
//!
//! let all = store.get("config/", Some(GetOptions::new().with_prefix()))?;
//! assert_eq!(all.count(), 2);
//!
//! // Compare-and-swap: one txn, one revision.
//! let resp = store.txn(
//!     Txn::new()
//!         .when([Compare::value("config/a", CompareOp::Equal, "1")])
//!         .and_then([TxnOp::put("config/a", "10", None), TxnOp::delete("config/b", None)]),
//! )?;
//! assert!(resp.succeeded());
//! assert_eq!(resp.header().revision(), 4);
//! # Ok::<(), etcdlite::Error>(())
//! ```
//!
//! The layers, bottom up, each usable on its own:
//! - [`engine`]: an ordered byte store (memory; RocksDB and sled behind the `rocksdb` and
//!   `sled` features).
//! - [`mvcc`]: revisions, the key index, read and write views, compaction.
//! - [`txn`]: etcd's requests and the rules that give them meaning.
//! - [`lease`]: leases, their expiry, and the [`Clock`] it follows ([`ManualClock`] for
//!   tests).
//! - [`watch`]: watches, delivered blocking or as an async `Stream`.
//! - [`Store`]: the facade, with [`Options`] and one [`Error`] type, and etcd's
//!   maintenance calls: [`Store::hash_kv`], [`Store::snapshot`] and
//!   [`Store::restore_snapshot`], [`Store::defragment`], [`Store::db_size`].

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod cluster;
pub mod concurrency;
pub mod coord;
pub mod engine;
mod error;
pub mod lease;
pub mod mvcc;
mod options;
mod store;
pub mod txn;
pub mod watch;
mod worker;

pub use error::{Code, Error, Result};
pub use lease::{
    Clock, LeaseGrantOptions, LeaseGrantResponse, LeaseId, LeaseKeepAliveResponse, LeaseLeasesResponse,
    LeaseRevokeResponse, LeaseStatus, LeaseTimeToLiveOptions, LeaseTimeToLiveResponse, ManualClock,
    SystemClock,
};
pub use mvcc::KeyValue;
pub use options::{CompactionOptions, DeleteOptions, GetOptions, Options, PutOptions, WatchOptions};
pub use store::{
    Access, DbSize, HashKvResponse, SnapshotChunk, SnapshotChunks, Store, DEFAULT_MAX_CONCURRENT_SNAPSHOTS,
    SNAPSHOT_CHUNK_BYTES,
};
pub use txn::request::{
    CompactionRequest, CompactionResponse, Compare, CompareOp, CompareTarget, DeleteRangeRequest,
    DeleteResponse, GetResponse, PutRequest, PutResponse, RangeRequest, ResponseHeader, SortOrder,
    SortTarget, TargetValue, Txn, TxnOp, TxnOpResponse, TxnResponse,
};
pub use watch::{Event, EventType, WatchFilterType, WatchResponse, WatchStream, Watcher};

// The README's examples are compiled and run as doc tests of the server crate, which has
// every crate they use (the TestServer and etcd-client ones included).
