//! The KV service: put, get, delete, compact and txn, and the key-value and responses
//! they answer with.

use super::embedded::Embedded;
use super::{dispatch, header_accessors, Backend, Result};
use crate::options::{CompactionOptions, DeleteOptions, GetOptions, PutOptions};
use crate::txn::request::{self as core, ResponseHeader, Txn};

/// A key's state at one revision (etcd's `mvccpb.KeyValue`), with `etcd-client`'s
/// accessors.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyValue(crate::KeyValue);

impl KeyValue {
    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.0.key
    }

    /// The key as UTF-8.
    pub fn key_str(&self) -> Result<&str> {
        Ok(std::str::from_utf8(&self.0.key)?)
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.0.value
    }

    /// The value as UTF-8.
    pub fn value_str(&self) -> Result<&str> {
        Ok(std::str::from_utf8(&self.0.value)?)
    }

    /// Takes the key and the value out.
    pub fn into_key_value(self) -> (Vec<u8>, Vec<u8>) {
        (self.0.key, self.0.value)
    }

    /// Revision of the put that created the key's current generation.
    pub fn create_revision(&self) -> i64 {
        self.0.create_revision
    }

    /// Revision of the last change to the key.
    pub fn mod_revision(&self) -> i64 {
        self.0.mod_revision
    }

    /// Number of puts since the key was created.
    pub fn version(&self) -> i64 {
        self.0.version
    }

    /// The attached lease, or 0.
    pub fn lease(&self) -> i64 {
        self.0.lease
    }

    /// The store's key-value.
    pub fn into_inner(self) -> crate::KeyValue {
        self.0
    }
}

impl From<crate::KeyValue> for KeyValue {
    fn from(kv: crate::KeyValue) -> Self {
        KeyValue(kv)
    }
}

impl From<KeyValue> for crate::KeyValue {
    fn from(kv: KeyValue) -> Self {
        kv.0
    }
}

pub(crate) fn kvs(kvs: Vec<crate::KeyValue>) -> Vec<KeyValue> {
    kvs.into_iter().map(KeyValue).collect()
}

/// The answer to a put.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) prev_kv: Option<KeyValue>,
}

impl PutResponse {
    header_accessors!();

    /// The key-value before the put, when asked for and the key existed.
    pub fn prev_key(&self) -> Option<&KeyValue> {
        self.prev_kv.as_ref()
    }

    /// Takes the previous key-value out.
    pub fn take_prev_key(&mut self) -> Option<KeyValue> {
        self.prev_kv.take()
    }

    pub(crate) fn from_core(r: core::PutResponse, header: Option<ResponseHeader>) -> Self {
        PutResponse { header, prev_kv: r.prev_kv.map(KeyValue) }
    }
}

/// The answer to a get (a range read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) kvs: Vec<KeyValue>,
    pub(crate) more: bool,
    pub(crate) count: i64,
}

impl GetResponse {
    header_accessors!();

    /// The key-values found, after filters, sorting and limit.
    pub fn kvs(&self) -> &[KeyValue] {
        &self.kvs
    }

    /// Takes the key-values out.
    pub fn take_kvs(&mut self) -> Vec<KeyValue> {
        std::mem::take(&mut self.kvs)
    }

    /// True when more keys matched than the limit let through.
    pub fn more(&self) -> bool {
        self.more
    }

    /// The number of keys in the range, regardless of limit.
    pub fn count(&self) -> i64 {
        self.count
    }

    pub(crate) fn from_core(r: core::GetResponse, header: Option<ResponseHeader>) -> Self {
        GetResponse { header, kvs: kvs(r.kvs), more: r.more, count: r.count }
    }
}

/// The answer to a delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) deleted: i64,
    pub(crate) prev_kvs: Vec<KeyValue>,
}

impl DeleteResponse {
    header_accessors!();

    /// How many keys were deleted.
    pub fn deleted(&self) -> i64 {
        self.deleted
    }

    /// The deleted key-values, when asked for.
    pub fn prev_kvs(&self) -> &[KeyValue] {
        &self.prev_kvs
    }

    /// Takes the deleted key-values out.
    pub fn take_prev_kvs(&mut self) -> Vec<KeyValue> {
        std::mem::take(&mut self.prev_kvs)
    }

    pub(crate) fn from_core(r: core::DeleteResponse, header: Option<ResponseHeader>) -> Self {
        DeleteResponse { header, deleted: r.deleted, prev_kvs: kvs(r.prev_kvs) }
    }
}

/// The answer to a compaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactionResponse {
    pub(crate) header: Option<ResponseHeader>,
}

impl CompactionResponse {
    header_accessors!();
}

/// The answer to one op of a txn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOpResponse {
    /// From a put.
    Put(PutResponse),
    /// From a get.
    Get(GetResponse),
    /// From a delete.
    Delete(DeleteResponse),
    /// From a nested txn.
    Txn(TxnResponse),
}

/// The answer to a txn.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) succeeded: bool,
    pub(crate) responses: Vec<TxnOpResponse>,
}

impl TxnResponse {
    header_accessors!();

    /// True when every compare held.
    pub fn succeeded(&self) -> bool {
        self.succeeded
    }

    /// The responses of the branch that ran, one per op (a copy, as `etcd-client` gives
    /// them).
    pub fn op_responses(&self) -> Vec<TxnOpResponse> {
        self.responses.clone()
    }

    /// Takes the responses of the branch that ran out.
    pub fn take_op_responses(&mut self) -> Vec<TxnOpResponse> {
        std::mem::take(&mut self.responses)
    }

    /// A txn answer from the store: the top header from the member; nested answers keep
    /// the headers the store gave them, as the etcdlite server sends them.
    pub(crate) fn from_core(r: core::TxnResponse, header: Option<ResponseHeader>) -> Self {
        let responses = r
            .responses
            .into_iter()
            .map(|op| match op {
                core::TxnOpResponse::Get(r) => {
                    let header = Some(r.header);
                    TxnOpResponse::Get(GetResponse::from_core(r, header))
                }
                core::TxnOpResponse::Put(r) => {
                    let header = Some(r.header);
                    TxnOpResponse::Put(PutResponse::from_core(r, header))
                }
                core::TxnOpResponse::Delete(r) => {
                    let header = Some(r.header);
                    TxnOpResponse::Delete(DeleteResponse::from_core(r, header))
                }
                core::TxnOpResponse::Txn(r) => {
                    let header = Some(r.header);
                    TxnOpResponse::Txn(TxnResponse::from_core(r, header))
                }
            })
            .collect();
        TxnResponse { header, succeeded: r.succeeded, responses }
    }
}

/// The KV service of a [`Client`](super::Client).
#[derive(Clone, Debug)]
pub struct KvClient {
    pub(crate) backend: Backend,
}

impl KvClient {
    /// Puts `key` = `value`.
    pub async fn put(
        &mut self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        options: Option<PutOptions>,
    ) -> Result<PutResponse> {
        let req = options.unwrap_or_default().into_request(key.into(), value.into());
        dispatch!(&mut self.backend, e => e.put(req).await, r => super::remote::put(r, req).await)
    }

    /// Reads `key`, or the range `options` describe.
    pub async fn get(&mut self, key: impl Into<Vec<u8>>, options: Option<GetOptions>) -> Result<GetResponse> {
        let req = options.unwrap_or_default().into_request(key.into());
        dispatch!(&mut self.backend, e => e.get(req).await, r => super::remote::get(r, req).await)
    }

    /// Deletes `key`, or the range `options` describe.
    pub async fn delete(
        &mut self,
        key: impl Into<Vec<u8>>,
        options: Option<DeleteOptions>,
    ) -> Result<DeleteResponse> {
        let req = options.unwrap_or_default().into_request(key.into());
        dispatch!(&mut self.backend, e => e.delete(req).await, r => super::remote::delete(r, req).await)
    }

    /// Compacts history below `revision`.
    pub async fn compact(
        &mut self,
        revision: i64,
        options: Option<CompactionOptions>,
    ) -> Result<CompactionResponse> {
        dispatch!(
            &mut self.backend,
            e => e.compact(revision, options).await,
            r => super::remote::compact(r, revision, options).await
        )
    }

    /// Runs a transaction.
    pub async fn txn(&mut self, txn: Txn) -> Result<TxnResponse> {
        dispatch!(&mut self.backend, e => e.txn(txn).await, r => super::remote::txn(r, txn).await)
    }
}

impl Embedded {
    async fn put(&self, req: core::PutRequest) -> Result<PutResponse> {
        self.call(async {
            self.store.check_quota(crate::txn::put_cost(&req))?;
            let caller = self.caller()?;
            let resp = self.store.as_caller(&caller).put_request_async(req).await?;
            let header = self.header(resp.header.revision);
            Ok(PutResponse::from_core(resp, header))
        })
        .await
    }

    async fn get(&self, req: core::RangeRequest) -> Result<GetResponse> {
        let caller = self.caller()?;
        let resp = self.store.as_caller(&caller).range(&req)?;
        let header = self.header(resp.header.revision);
        Ok(GetResponse::from_core(resp, header))
    }

    async fn delete(&self, req: core::DeleteRangeRequest) -> Result<DeleteResponse> {
        self.call(async {
            let caller = self.caller()?;
            let resp = self.store.as_caller(&caller).delete_range_async(&req).await?;
            let header = self.header(resp.header.revision);
            Ok(DeleteResponse::from_core(resp, header))
        })
        .await
    }

    async fn compact(&self, revision: i64, options: Option<CompactionOptions>) -> Result<CompactionResponse> {
        self.call(async {
            let caller = self.caller()?;
            let resp = self.store.as_caller(&caller).compact_async(revision, options).await?;
            Ok(CompactionResponse { header: self.header(resp.header.revision) })
        })
        .await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.call(async {
            if !txn.is_read_only() {
                self.store.check_quota(crate::txn::txn_cost(&txn))?;
            }
            let caller = self.caller()?;
            let resp = self.store.as_caller(&caller).txn_async(txn).await?;
            let header = self.header(resp.header.revision);
            Ok(TxnResponse::from_core(resp, header))
        })
        .await
    }
}
