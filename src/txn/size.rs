//! The size etcd measures a write request by: its protobuf encoding, wrapped in the
//! `InternalRaftRequest` that etcd proposes to raft. etcd refuses a write whose wrapped
//! encoding exceeds `--max-request-bytes` ("etcdserver: request is too large").

use prost::encoding::{encoded_len_varint, key_len};

use super::request::{Compare, DeleteRangeRequest, PutRequest, RangeRequest, TargetValue, Txn, TxnOp};

/// `InternalRaftRequest` field numbers of the wrapped requests.
const RAFT_PUT: u32 = 4;
const RAFT_DELETE_RANGE: u32 = 5;
const RAFT_TXN: u32 = 6;
/// The `InternalRaftRequest.header` field (a `RequestHeader` holding the request id).
const RAFT_HEADER: u32 = 100;
/// Encoded size of a request id: etcd puts the low 16 bits of the member id in the top
/// bits, so the varint is 7 to 10 bytes depending on the member; 10 is the common case.
const REQUEST_ID_LEN: usize = 10;

fn int(tag: u32, value: i64) -> usize {
    if value == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(value as u64)
    }
}

fn flag(tag: u32, value: bool) -> usize {
    if value {
        key_len(tag) + 1
    } else {
        0
    }
}

fn bytes(tag: u32, value: &[u8]) -> usize {
    if value.is_empty() {
        0
    } else {
        message(tag, value.len())
    }
}

/// A length-delimited field that is always encoded (a set message or oneof member).
fn message(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn range(req: &RangeRequest) -> usize {
    bytes(1, &req.key)
        + bytes(2, &req.range_end)
        + int(3, req.limit)
        + int(4, req.revision)
        + int(5, req.sort_order as i64)
        + int(6, req.sort_target as i64)
        + flag(7, req.serializable)
        + flag(8, req.keys_only)
        + flag(9, req.count_only)
        + int(10, req.min_mod_revision)
        + int(11, req.max_mod_revision)
        + int(12, req.min_create_revision)
        + int(13, req.max_create_revision)
}

fn put(req: &PutRequest) -> usize {
    bytes(1, &req.key)
        + bytes(2, &req.value)
        + int(3, req.lease)
        + flag(4, req.prev_kv)
        + flag(5, req.ignore_value)
        + flag(6, req.ignore_lease)
}

fn delete_range(req: &DeleteRangeRequest) -> usize {
    bytes(1, &req.key) + bytes(2, &req.range_end) + flag(3, req.prev_kv)
}

fn compare(c: &Compare) -> usize {
    let target = match &c.target_value {
        None => 0,
        Some(TargetValue::Version(v)) => key_len(4) + encoded_len_varint(*v as u64),
        Some(TargetValue::CreateRevision(v)) => key_len(5) + encoded_len_varint(*v as u64),
        Some(TargetValue::ModRevision(v)) => key_len(6) + encoded_len_varint(*v as u64),
        Some(TargetValue::Value(v)) => message(7, v.len()),
        Some(TargetValue::Lease(v)) => key_len(8) + encoded_len_varint(*v as u64),
    };
    int(1, c.result as i64) + int(2, c.target as i64) + bytes(3, &c.key) + target + bytes(64, &c.range_end)
}

fn op(op: &TxnOp) -> usize {
    match op {
        TxnOp::Get(req) => message(1, range(req)),
        TxnOp::Put(req) => message(2, put(req)),
        TxnOp::Delete(req) => message(3, delete_range(req)),
        TxnOp::Txn(txn) => message(4, txn_len(txn)),
    }
}

fn txn_len(txn: &Txn) -> usize {
    txn.compare.iter().map(|c| message(1, compare(c))).sum::<usize>()
        + txn.success.iter().map(|o| message(2, op(o))).sum::<usize>()
        + txn.failure.iter().map(|o| message(3, op(o))).sum::<usize>()
}

fn wrapped(field: u32, len: usize) -> usize {
    let header = key_len(1) + REQUEST_ID_LEN;
    message(RAFT_HEADER, header) + message(field, len)
}

/// The raft-wrapped size of a put.
pub fn put_request_size(req: &PutRequest) -> usize {
    wrapped(RAFT_PUT, put(req))
}

/// The raft-wrapped size of a delete.
pub fn delete_request_size(req: &DeleteRangeRequest) -> usize {
    wrapped(RAFT_DELETE_RANGE, delete_range(req))
}

/// The raft-wrapped size of a txn.
pub fn txn_request_size(txn: &Txn) -> usize {
    wrapped(RAFT_TXN, txn_len(txn))
}

/// What etcd's quota charges a put: its encoded request.
pub fn put_cost(req: &PutRequest) -> usize {
    put(req)
}

/// What etcd's quota charges a txn: its encoded request when some op, at any depth, is a
/// put; nothing otherwise (a txn that only reads or deletes adds no data).
pub fn txn_cost(txn: &Txn) -> usize {
    fn puts(txn: &Txn) -> bool {
        txn.success.iter().chain(&txn.failure).any(|op| match op {
            TxnOp::Put(_) => true,
            TxnOp::Txn(inner) => puts(inner),
            _ => false,
        })
    }
    if puts(txn) {
        txn_len(txn)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_put_is_measured_like_protobuf() {
        let req = PutRequest { key: b"foo".to_vec(), value: b"bar".to_vec(), ..Default::default() };
        // PutRequest: 2 + 3 + 2 + 3 = 10; header field: 2 + 1 + (1 + 10) = 14; put field 1 + 1 + 10.
        assert_eq!(put_request_size(&req), 14 + 12);
    }

    #[test]
    fn large_values_grow_the_length_prefix() {
        let req = PutRequest { key: b"k".to_vec(), value: vec![0; 1 << 20], ..Default::default() };
        let body = 3 + 1 + 3 + (1 << 20);
        assert_eq!(put_request_size(&req), 14 + 1 + encoded_len_varint(body as u64) + body);
    }

    #[test]
    fn only_txns_that_put_are_charged_by_the_quota() {
        let put =
            || TxnOp::Put(PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..Default::default() });
        let get = || TxnOp::Get(RangeRequest { key: b"k".to_vec(), ..Default::default() });
        assert_eq!(txn_cost(&Txn::new().and_then([get()])), 0);
        assert!(txn_cost(&Txn::new().or_else([TxnOp::txn(Txn::new().and_then([put()]))])) > 0);
        assert_eq!(
            put_cost(&PutRequest { key: b"foo".to_vec(), value: b"bar".to_vec(), ..Default::default() }),
            10
        );
    }
}
