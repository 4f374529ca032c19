//! etcd's KV requests and responses as Rust types, field for field.

use crate::error::Error;
use crate::mvcc::KeyValue;

/// Generates `TryFrom<i32>` for an enum with etcd's wire numbers.
macro_rules! wire_enum {
    ($ty:ident, $err:expr, { $($variant:ident = $n:literal),+ $(,)? }) => {
        impl TryFrom<i32> for $ty {
            type Error = Error;
            fn try_from(value: i32) -> Result<Self, Error> {
                match value {
                    $($n => Ok($ty::$variant),)+
                    _ => Err($err),
                }
            }
        }
        impl From<$ty> for i32 {
            fn from(value: $ty) -> i32 {
                value as i32
            }
        }
    };
}

/// Order of a range's results (`RangeRequest.SortOrder`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SortOrder {
    /// Key order (or ascending, when the target is not the key).
    #[default]
    None = 0,
    /// Lowest first.
    Ascend = 1,
    /// Highest first.
    Descend = 2,
}
wire_enum!(SortOrder, Error::InvalidSortOption, { None = 0, Ascend = 1, Descend = 2 });

/// What a range sorts by (`RangeRequest.SortTarget`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SortTarget {
    /// The key bytes.
    #[default]
    Key = 0,
    /// `version`.
    Version = 1,
    /// `create_revision`.
    Create = 2,
    /// `mod_revision`.
    Mod = 3,
    /// The value bytes.
    Value = 4,
}
wire_enum!(SortTarget, Error::InvalidSortOption, { Key = 0, Version = 1, Create = 2, Mod = 3, Value = 4 });

/// etcd's `RangeRequest`. `range_end` follows etcd's convention: empty means `key` alone,
/// `"\0"` means every key from `key` on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeRequest {
    /// First key (or the only key).
    pub key: Vec<u8>,
    /// Exclusive end of the range.
    pub range_end: Vec<u8>,
    /// Maximum number of keys returned; 0 means no limit.
    pub limit: i64,
    /// Revision to read at; 0 or less means the current revision.
    pub revision: i64,
    /// Sort order.
    pub sort_order: SortOrder,
    /// Sort target.
    pub sort_target: SortTarget,
    /// Serializable read; has no effect on a single in-process store.
    pub serializable: bool,
    /// Return keys without values.
    pub keys_only: bool,
    /// Return only the count.
    pub count_only: bool,
    /// Drop keys modified before this revision (0: off).
    pub min_mod_revision: i64,
    /// Drop keys modified after this revision (0: off).
    pub max_mod_revision: i64,
    /// Drop keys created before this revision (0: off).
    pub min_create_revision: i64,
    /// Drop keys created after this revision (0: off).
    pub max_create_revision: i64,
}

/// etcd's `PutRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutRequest {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// Lease to attach the key to; 0 detaches it.
    pub lease: i64,
    /// Return the previous key-value.
    pub prev_kv: bool,
    /// Keep the current value (the key must exist).
    pub ignore_value: bool,
    /// Keep the current lease (the key must exist).
    pub ignore_lease: bool,
}

/// etcd's `DeleteRangeRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteRangeRequest {
    /// First key (or the only key).
    pub key: Vec<u8>,
    /// Exclusive end, in the same convention as [`RangeRequest::range_end`].
    pub range_end: Vec<u8>,
    /// Return the deleted key-values.
    pub prev_kv: bool,
}

/// etcd's `CompactionRequest`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionRequest {
    /// Compact history below this revision.
    pub revision: i64,
    /// Wait until the compacted records are removed from the engine.
    pub physical: bool,
}

/// How a compare relates the key's field to the given value (`Compare.CompareResult`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// Field == value.
    #[default]
    Equal = 0,
    /// Field > value.
    Greater = 1,
    /// Field < value.
    Less = 2,
    /// Field != value.
    NotEqual = 3,
}

/// Which field of a key a compare reads (`Compare.CompareTarget`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CompareTarget {
    /// `version`.
    #[default]
    Version = 0,
    /// `create_revision`.
    Create = 1,
    /// `mod_revision`.
    Mod = 2,
    /// The value bytes.
    Value = 3,
    /// The attached lease.
    Lease = 4,
}

/// The value a compare tests against (`Compare.target_union`). etcd reads the member that
/// matches the compare's target; any other member counts as 0 (or empty bytes).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TargetValue {
    /// For [`CompareTarget::Version`].
    Version(i64),
    /// For [`CompareTarget::Create`].
    CreateRevision(i64),
    /// For [`CompareTarget::Mod`].
    ModRevision(i64),
    /// For [`CompareTarget::Value`].
    Value(Vec<u8>),
    /// For [`CompareTarget::Lease`].
    Lease(i64),
}

/// etcd's `Compare`: a condition of a [`Txn`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Compare {
    /// The relation tested.
    pub result: CompareOp,
    /// The field tested.
    pub target: CompareTarget,
    /// The key (or first key of the range).
    pub key: Vec<u8>,
    /// The value tested against; `None` tests against 0 / empty bytes.
    pub target_value: Option<TargetValue>,
    /// With a range end, every key in `[key, range_end)` must satisfy the compare.
    pub range_end: Vec<u8>,
}

impl Compare {
    fn new(key: impl Into<Vec<u8>>, target: CompareTarget, result: CompareOp, value: TargetValue) -> Self {
        Compare { result, target, key: key.into(), target_value: Some(value), range_end: Vec::new() }
    }

    /// Compares the key's value bytes.
    pub fn value(key: impl Into<Vec<u8>>, op: CompareOp, value: impl Into<Vec<u8>>) -> Self {
        Self::new(key, CompareTarget::Value, op, TargetValue::Value(value.into()))
    }

    /// Compares the key's version (0 when the key is absent).
    pub fn version(key: impl Into<Vec<u8>>, op: CompareOp, version: i64) -> Self {
        Self::new(key, CompareTarget::Version, op, TargetValue::Version(version))
    }

    /// Compares the key's create revision (0 when the key is absent).
    pub fn create_revision(key: impl Into<Vec<u8>>, op: CompareOp, revision: i64) -> Self {
        Self::new(key, CompareTarget::Create, op, TargetValue::CreateRevision(revision))
    }

    /// Compares the key's mod revision (0 when the key is absent).
    pub fn mod_revision(key: impl Into<Vec<u8>>, op: CompareOp, revision: i64) -> Self {
        Self::new(key, CompareTarget::Mod, op, TargetValue::ModRevision(revision))
    }

    /// Compares the key's lease (0 when the key is absent or has none).
    pub fn lease(key: impl Into<Vec<u8>>, op: CompareOp, lease: i64) -> Self {
        Self::new(key, CompareTarget::Lease, op, TargetValue::Lease(lease))
    }

    /// Applies the compare to every key in `[key, end)`.
    pub fn with_range(mut self, end: impl Into<Vec<u8>>) -> Self {
        self.range_end = end.into();
        self
    }

    /// Applies the compare to every key with `key` as prefix.
    pub fn with_prefix(mut self) -> Self {
        let (key, end) = crate::options::prefix_range(std::mem::take(&mut self.key));
        self.key = key;
        self.range_end = end;
        self
    }
}

/// One operation of a [`Txn`] (etcd's `RequestOp`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOp {
    /// A range read.
    Get(RangeRequest),
    /// A put.
    Put(PutRequest),
    /// A delete.
    Delete(DeleteRangeRequest),
    /// A nested transaction.
    Txn(Txn),
}

impl TxnOp {
    /// A range read of `key` with `options`.
    pub fn get(key: impl Into<Vec<u8>>, options: Option<crate::GetOptions>) -> Self {
        TxnOp::Get(options.unwrap_or_default().into_request(key.into()))
    }

    /// A put of `key` = `value` with `options`.
    pub fn put(
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        options: Option<crate::PutOptions>,
    ) -> Self {
        TxnOp::Put(options.unwrap_or_default().into_request(key.into(), value.into()))
    }

    /// A delete of `key` with `options`.
    pub fn delete(key: impl Into<Vec<u8>>, options: Option<crate::DeleteOptions>) -> Self {
        TxnOp::Delete(options.unwrap_or_default().into_request(key.into()))
    }

    /// A nested transaction.
    pub fn txn(txn: Txn) -> Self {
        TxnOp::Txn(txn)
    }
}

/// etcd's `TxnRequest`: if every compare holds, run `success`, else run `failure`; all of it
/// atomically, under one revision.
///
/// ```
/// use etcdlite::{Compare, CompareOp, Options, Store, Txn, TxnOp};
///
/// let store = Store::open(Options::memory())?;
/// store.put("k", "old", None)?;
/// let swapped = store.txn(
///     Txn::new()
///         .when([Compare::value("k", CompareOp::Equal, "old")])
///         .and_then([TxnOp::put("k", "new", None)])
///         .or_else([TxnOp::get("k", None)]),
/// )?;
/// assert!(swapped.succeeded());
/// # Ok::<(), etcdlite::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Txn {
    /// The conditions.
    pub compare: Vec<Compare>,
    /// Ops run when every condition holds.
    pub success: Vec<TxnOp>,
    /// Ops run otherwise.
    pub failure: Vec<TxnOp>,
}

impl Txn {
    /// An empty transaction (it succeeds and does nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the conditions (an array, a `Vec` or a slice, as in `etcd-client`).
    pub fn when(mut self, compares: impl Into<Vec<Compare>>) -> Self {
        self.compare = compares.into();
        self
    }

    /// Sets the ops run when the conditions hold.
    pub fn and_then(mut self, ops: impl Into<Vec<TxnOp>>) -> Self {
        self.success = ops.into();
        self
    }

    /// Sets the ops run when a condition fails.
    pub fn or_else(mut self, ops: impl Into<Vec<TxnOp>>) -> Self {
        self.failure = ops.into();
        self
    }

    /// True when no op of either branch writes: etcd serves such a txn as a read.
    pub fn is_read_only(&self) -> bool {
        self.success.iter().chain(&self.failure).all(|op| matches!(op, TxnOp::Get(_)))
    }
}

/// etcd's `ResponseHeader`. An embedded store fills only `revision`; the server fills the
/// cluster fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResponseHeader {
    /// Cluster id.
    pub cluster_id: u64,
    /// Member id.
    pub member_id: u64,
    /// The store revision when the request was applied.
    pub revision: i64,
    /// Raft term.
    pub raft_term: u64,
}

impl ResponseHeader {
    pub(crate) fn at(revision: i64) -> Self {
        ResponseHeader { revision, ..Default::default() }
    }

    /// The cluster id (0 from the sync [`Store`](crate::Store) calls).
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// The id of the member that answered (0 from the sync [`Store`](crate::Store) calls).
    pub fn member_id(&self) -> u64 {
        self.member_id
    }

    /// The store revision when the request was applied.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The raft term (0 from the sync [`Store`](crate::Store) calls).
    pub fn raft_term(&self) -> u64 {
        self.raft_term
    }
}

/// The answer to a range read (etcd's `RangeResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetResponse {
    /// Header; `revision` is the current revision, even for a read at a past revision.
    pub header: ResponseHeader,
    /// The key-values found, after filters, sorting and limit.
    pub kvs: Vec<KeyValue>,
    /// True when `limit` cut off more matching keys.
    pub more: bool,
    /// The number of keys in the range at the read revision, regardless of limit and filters.
    pub count: i64,
}

impl GetResponse {
    /// The header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }
    /// The key-values found.
    pub fn kvs(&self) -> &[KeyValue] {
        &self.kvs
    }
    /// Takes the key-values out.
    pub fn take_kvs(&mut self) -> Vec<KeyValue> {
        std::mem::take(&mut self.kvs)
    }
    /// True when more keys matched than `limit` let through.
    pub fn more(&self) -> bool {
        self.more
    }
    /// The number of keys in the range.
    pub fn count(&self) -> i64 {
        self.count
    }
}

/// The answer to a put (etcd's `PutResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutResponse {
    /// Header; `revision` is the put's revision.
    pub header: ResponseHeader,
    /// The key-value before the put, when asked for and the key existed.
    pub prev_kv: Option<KeyValue>,
}

impl PutResponse {
    /// The header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }
    /// The previous key-value.
    pub fn prev_key(&self) -> Option<&KeyValue> {
        self.prev_kv.as_ref()
    }
}

/// The answer to a delete (etcd's `DeleteRangeResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteResponse {
    /// Header; `revision` is the delete's revision, or the current one when nothing matched.
    pub header: ResponseHeader,
    /// How many keys were deleted.
    pub deleted: i64,
    /// The deleted key-values, in key order, when asked for.
    pub prev_kvs: Vec<KeyValue>,
}

impl DeleteResponse {
    /// The header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }
    /// How many keys were deleted.
    pub fn deleted(&self) -> i64 {
        self.deleted
    }
    /// The deleted key-values.
    pub fn prev_kvs(&self) -> &[KeyValue] {
        &self.prev_kvs
    }
}

/// The answer to one op of a txn (etcd's `ResponseOp`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOpResponse {
    /// From a [`TxnOp::Get`].
    Get(GetResponse),
    /// From a [`TxnOp::Put`].
    Put(PutResponse),
    /// From a [`TxnOp::Delete`].
    Delete(DeleteResponse),
    /// From a [`TxnOp::Txn`].
    Txn(TxnResponse),
}

/// The answer to a txn (etcd's `TxnResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnResponse {
    /// Header; `revision` is the txn's revision, or the current one when it changed
    /// nothing. The header of a nested txn's response is empty, as in etcd.
    pub header: ResponseHeader,
    /// True when every compare held.
    pub succeeded: bool,
    /// One response per op of the branch that ran.
    pub responses: Vec<TxnOpResponse>,
}

impl TxnResponse {
    /// The header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }
    /// True when every compare held.
    pub fn succeeded(&self) -> bool {
        self.succeeded
    }
    /// The responses of the branch that ran.
    pub fn op_responses(&self) -> &[TxnOpResponse] {
        &self.responses
    }
}

/// The answer to a compaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionResponse {
    /// Header; `revision` is the current revision.
    pub header: ResponseHeader,
}

impl CompactionResponse {
    /// The header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_options_outside_etcds_enums_are_refused() {
        assert_eq!(SortTarget::try_from(4), Ok(SortTarget::Value));
        assert_eq!(SortOrder::try_from(2), Ok(SortOrder::Descend));
        assert_eq!(SortTarget::try_from(5), Err(Error::InvalidSortOption));
        assert_eq!(SortOrder::try_from(-1), Err(Error::InvalidSortOption));
        assert_eq!(Error::InvalidSortOption.to_string(), "etcdserver: invalid sort option");
        assert_eq!(i32::from(SortTarget::Mod), 3);
    }

    #[test]
    fn a_txn_is_read_only_when_both_branches_only_read() {
        assert!(Txn::new().and_then([TxnOp::get("a", None)]).or_else([TxnOp::get("b", None)]).is_read_only());
        assert!(!Txn::new().or_else([TxnOp::delete("a", None)]).is_read_only());
        assert!(!Txn::new().and_then([TxnOp::txn(Txn::new())]).is_read_only());
    }
}
