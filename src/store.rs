//! The public facade.

use std::sync::Arc;

use crate::engine::{Engine, MemoryEngine};
use crate::error::Result;
use crate::mvcc::MvccStore;
use crate::options::{CompactionOptions, DeleteOptions, EngineChoice, GetOptions, Options, PutOptions};
use crate::txn::request::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteResponse, GetResponse, PutRequest,
    PutResponse, RangeRequest, Txn, TxnResponse,
};
use crate::txn::{Kv, LeaseLookup, Limits};

/// An etcd v3 keyspace in your process: revisions, history reads, transactions and
/// compaction over a memory, RocksDB or sled engine.
///
/// Calls are synchronous, and a store is `Send + Sync`: share it as `Arc<Store>`. Reads
/// never wait for writers; writes are applied one at a time, each under one new revision.
///
/// ```
/// use etcdlite::{GetOptions, Options, Store};
///
/// let store = Store::open(Options::memory())?;
/// let first = store.put("greeting", "hello", None)?.header().revision();
/// store.put("greeting", "bonjour", None)?;
///
/// let now = store.get("greeting", None)?;
/// assert_eq!(now.kvs()[0].value(), b"bonjour");
/// assert_eq!(now.kvs()[0].version(), 2);
///
/// let then = store.get("greeting", Some(GetOptions::new().with_revision(first)))?;
/// assert_eq!(then.kvs()[0].value(), b"hello");
/// # Ok::<(), etcdlite::Error>(())
/// ```
pub struct Store {
    mvcc: MvccStore,
    limits: Limits,
}

/// The store's answer to "does this lease exist?" until leases are part of it: no lease
/// can be granted, so none exists, and a put naming one fails as etcd fails it.
struct NoLeases;

impl LeaseLookup for NoLeases {
    fn lease_exists(&self, _id: i64) -> bool {
        false
    }
}

impl Store {
    /// Opens a store; on a persistent engine, everything committed before is back,
    /// history and compaction state included.
    pub fn open(options: Options) -> Result<Store> {
        let engine: Arc<dyn Engine> = match options.engine {
            EngineChoice::Memory => Arc::new(MemoryEngine::new()),
            #[cfg(feature = "rocksdb")]
            EngineChoice::RocksDb(path) => Arc::new(crate::engine::RocksEngine::open(path)?),
            #[cfg(feature = "sled")]
            EngineChoice::Sled(path) => Arc::new(crate::engine::SledEngine::open(path)?),
            EngineChoice::Custom(engine) => engine,
        };
        let mvcc = MvccStore::open(engine, options.sync, options.compaction_batch_limit)?;
        Ok(Store { mvcc, limits: options.limits })
    }

    /// The KV service: etcd's requests, field for field.
    pub fn kv(&self) -> Kv<'_> {
        Kv::new(&self.mvcc, self.limits, &NoLeases)
    }

    /// The MVCC layer under this store.
    pub fn mvcc(&self) -> &MvccStore {
        &self.mvcc
    }

    /// The current revision (1 for an empty store).
    pub fn current_revision(&self) -> i64 {
        self.mvcc.current_revision()
    }

    /// The compacted revision (-1 before any compaction).
    pub fn compacted_revision(&self) -> i64 {
        self.mvcc.compacted_revision()
    }

    /// Puts `key` = `value`.
    pub fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        options: Option<PutOptions>,
    ) -> Result<PutResponse> {
        self.put_request(options.unwrap_or_default().into_request(key.into(), value.into()))
    }

    /// Applies a put request.
    pub fn put_request(&self, req: PutRequest) -> Result<PutResponse> {
        self.kv().put(req)
    }

    /// Reads `key` (or the range `options` describe).
    pub fn get(&self, key: impl Into<Vec<u8>>, options: Option<GetOptions>) -> Result<GetResponse> {
        self.range(&options.unwrap_or_default().into_request(key.into()))
    }

    /// Applies a range request.
    pub fn range(&self, req: &RangeRequest) -> Result<GetResponse> {
        self.kv().range(req)
    }

    /// Deletes `key` (or the range `options` describe).
    pub fn delete(&self, key: impl Into<Vec<u8>>, options: Option<DeleteOptions>) -> Result<DeleteResponse> {
        self.delete_range(&options.unwrap_or_default().into_request(key.into()))
    }

    /// Applies a delete request.
    pub fn delete_range(&self, req: &DeleteRangeRequest) -> Result<DeleteResponse> {
        self.kv().delete_range(req)
    }

    /// Runs a transaction.
    pub fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.kv().txn(txn)
    }

    /// Compacts history below `revision`.
    pub fn compact(&self, revision: i64, options: Option<CompactionOptions>) -> Result<CompactionResponse> {
        let physical = options.unwrap_or_default().physical();
        self.kv().compact(CompactionRequest { revision, physical })
    }
}
