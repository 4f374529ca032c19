//! Between the wire messages (`pb`) and the library's request and response types. The two
//! are field-for-field alike; this is where the wire's integers become enums and its
//! optional messages become options.

use std::sync::Arc;

use etcdlite::watch::WatchCreateRequest;
use etcdlite::{
    Compare, CompareOp, CompareTarget, DeleteRangeRequest, DeleteResponse, Error, Event, EventType,
    GetResponse, KeyValue, PutRequest, PutResponse, RangeRequest, ResponseHeader, SortOrder, SortTarget,
    TargetValue, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchFilterType, WatchResponse,
};
use tonic::Status;

use crate::pb::etcdserverpb as pb;
use crate::pb::etcdserverpb::{compare, request_op, response_op};
use crate::pb::mvccpb;

/// A range request; a sort order or target outside etcd's enums is refused (etcd 3.6's
/// check; 3.5 has none and may crash).
pub fn range_request(r: pb::RangeRequest) -> Result<RangeRequest, Error> {
    Ok(RangeRequest {
        key: r.key,
        range_end: r.range_end,
        limit: r.limit,
        revision: r.revision,
        sort_order: SortOrder::try_from(r.sort_order)?,
        sort_target: SortTarget::try_from(r.sort_target)?,
        serializable: r.serializable,
        keys_only: r.keys_only,
        count_only: r.count_only,
        min_mod_revision: r.min_mod_revision,
        max_mod_revision: r.max_mod_revision,
        min_create_revision: r.min_create_revision,
        max_create_revision: r.max_create_revision,
    })
}

/// A put request.
pub fn put_request(r: pb::PutRequest) -> PutRequest {
    PutRequest {
        key: r.key,
        value: r.value,
        lease: r.lease,
        prev_kv: r.prev_kv,
        ignore_value: r.ignore_value,
        ignore_lease: r.ignore_lease,
    }
}

/// A delete request.
pub fn delete_request(r: pb::DeleteRangeRequest) -> DeleteRangeRequest {
    DeleteRangeRequest { key: r.key, range_end: r.range_end, prev_kv: r.prev_kv }
}

/// A txn. An op with nothing set is etcd's "key not found"; a compare enum outside
/// etcd's is refused as invalid.
pub fn txn_request(r: pb::TxnRequest) -> Result<Txn, Status> {
    let compare = r.compare.into_iter().map(compare).collect::<Result<_, _>>()?;
    let ops = |ops: Vec<pb::RequestOp>| ops.into_iter().map(request_op).collect::<Result<Vec<_>, Status>>();
    Ok(Txn { compare, success: ops(r.success)?, failure: ops(r.failure)? })
}

fn request_op(op: pb::RequestOp) -> Result<TxnOp, Status> {
    Ok(match op.request {
        Some(request_op::Request::RequestRange(r)) => {
            TxnOp::Get(range_request(r).map_err(crate::status::to_status)?)
        }
        Some(request_op::Request::RequestPut(r)) => TxnOp::Put(put_request(r)),
        Some(request_op::Request::RequestDeleteRange(r)) => TxnOp::Delete(delete_request(r)),
        Some(request_op::Request::RequestTxn(r)) => TxnOp::Txn(txn_request(r)?),
        None => return Err(crate::status::to_status(Error::KeyNotFound)),
    })
}

fn compare(c: pb::Compare) -> Result<Compare, Status> {
    let result = match c.result {
        0 => CompareOp::Equal,
        1 => CompareOp::Greater,
        2 => CompareOp::Less,
        3 => CompareOp::NotEqual,
        n => return Err(Status::invalid_argument(format!("etcdlite: unknown compare result {n}"))),
    };
    let target = match c.target {
        0 => CompareTarget::Version,
        1 => CompareTarget::Create,
        2 => CompareTarget::Mod,
        3 => CompareTarget::Value,
        4 => CompareTarget::Lease,
        n => return Err(Status::invalid_argument(format!("etcdlite: unknown compare target {n}"))),
    };
    let target_value = c.target_union.map(|u| match u {
        compare::TargetUnion::Version(v) => TargetValue::Version(v),
        compare::TargetUnion::CreateRevision(v) => TargetValue::CreateRevision(v),
        compare::TargetUnion::ModRevision(v) => TargetValue::ModRevision(v),
        compare::TargetUnion::Value(v) => TargetValue::Value(v),
        compare::TargetUnion::Lease(v) => TargetValue::Lease(v),
    });
    Ok(Compare { result, target, key: c.key, target_value, range_end: c.range_end })
}

/// A key-value.
pub fn kv(kv: KeyValue) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value,
        lease: kv.lease,
    }
}

/// A key-value an event shares with the other watchers of its key: moved out when this
/// is the last holder, copied otherwise (each stream encodes its own message).
fn shared_kv(shared: Arc<KeyValue>) -> mvccpb::KeyValue {
    Arc::try_unwrap(shared).map_or_else(|shared| kv_ref(&shared), kv)
}

/// A key-value, by reference.
pub fn kv_ref(kv: &KeyValue) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key.clone(),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value.clone(),
        lease: kv.lease,
    }
}

/// A header as the library filled it (revision only); top-level responses get the
/// cluster fields from [`Node::header`](crate::node::Node::header).
pub fn header(h: ResponseHeader) -> Option<pb::ResponseHeader> {
    Some(pb::ResponseHeader {
        cluster_id: h.cluster_id,
        member_id: h.member_id,
        revision: h.revision,
        raft_term: h.raft_term,
    })
}

/// A range response.
pub fn range_response(r: GetResponse) -> pb::RangeResponse {
    pb::RangeResponse {
        header: header(r.header),
        kvs: r.kvs.into_iter().map(kv).collect(),
        more: r.more,
        count: r.count,
    }
}

/// A put response.
pub fn put_response(r: PutResponse) -> pb::PutResponse {
    pb::PutResponse { header: header(r.header), prev_kv: r.prev_kv.map(kv) }
}

/// A delete response.
pub fn delete_response(r: DeleteResponse) -> pb::DeleteRangeResponse {
    pb::DeleteRangeResponse {
        header: header(r.header),
        deleted: r.deleted,
        prev_kvs: r.prev_kvs.into_iter().map(kv).collect(),
    }
}

/// A txn response, nested responses with the headers the library gave them.
pub fn txn_response(r: TxnResponse) -> pb::TxnResponse {
    let responses = r
        .responses
        .into_iter()
        .map(|op| pb::ResponseOp {
            response: Some(match op {
                TxnOpResponse::Get(r) => response_op::Response::ResponseRange(range_response(r)),
                TxnOpResponse::Put(r) => response_op::Response::ResponsePut(put_response(r)),
                TxnOpResponse::Delete(r) => response_op::Response::ResponseDeleteRange(delete_response(r)),
                TxnOpResponse::Txn(r) => response_op::Response::ResponseTxn(txn_response(r)),
            }),
        })
        .collect();
    pb::TxnResponse { header: header(r.header), succeeded: r.succeeded, responses }
}

/// A watch create request; unknown filter numbers are ignored, as etcd ignores them.
pub fn watch_create(r: pb::WatchCreateRequest) -> WatchCreateRequest {
    let filters = r
        .filters
        .iter()
        .filter_map(|f| match f {
            0 => Some(WatchFilterType::NoPut),
            1 => Some(WatchFilterType::NoDelete),
            _ => None,
        })
        .collect();
    WatchCreateRequest {
        key: r.key,
        range_end: r.range_end,
        start_revision: r.start_revision,
        progress_notify: r.progress_notify,
        filters,
        prev_kv: r.prev_kv,
        watch_id: r.watch_id,
    }
}

/// An event.
pub fn event(e: Event) -> mvccpb::Event {
    let kind = match e.event_type {
        EventType::Put => mvccpb::event::EventType::Put,
        EventType::Delete => mvccpb::event::EventType::Delete,
    };
    mvccpb::Event { r#type: kind as i32, kv: Some(shared_kv(e.kv)), prev_kv: e.prev_kv.map(shared_kv) }
}

/// A watch response, without the cluster fields of its header.
pub fn watch_response(r: WatchResponse) -> pb::WatchResponse {
    pb::WatchResponse {
        header: header(r.header),
        watch_id: r.watch_id,
        created: r.created,
        canceled: r.canceled,
        compact_revision: r.compact_revision,
        cancel_reason: r.cancel_reason,
        fragment: false,
        events: r.events.into_iter().map(event).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn compare_numbers_outside_etcds_enums_are_refused() {
        let unknown_result = compare(pb::Compare { result: 9, key: b"a".to_vec(), ..Default::default() });
        let status = unknown_result.expect_err("result 9 is no compare result");
        assert_eq!(
            (status.code(), status.message()),
            (Code::InvalidArgument, "etcdlite: unknown compare result 9")
        );
        let unknown_target = compare(pb::Compare { target: 7, key: b"a".to_vec(), ..Default::default() });
        let status = unknown_target.expect_err("target 7 is no compare target");
        assert_eq!(
            (status.code(), status.message()),
            (Code::InvalidArgument, "etcdlite: unknown compare target 7")
        );
        let known = compare(pb::Compare { result: 3, target: 4, key: b"a".to_vec(), ..Default::default() });
        let known = known.expect("NOT_EQUAL on LEASE");
        assert_eq!((known.result, known.target), (CompareOp::NotEqual, CompareTarget::Lease));
    }

    #[test]
    fn sort_numbers_outside_etcds_enums_are_refused() {
        for (order, target) in [(7, 0), (0, 9)] {
            let request = pb::RangeRequest {
                key: b"a".to_vec(),
                sort_order: order,
                sort_target: target,
                ..Default::default()
            };
            let status = crate::status::to_status(range_request(request).expect_err("unknown sort option"));
            assert_eq!(
                (status.code(), status.message()),
                (Code::InvalidArgument, "etcdserver: invalid sort option")
            );
        }
    }
}
