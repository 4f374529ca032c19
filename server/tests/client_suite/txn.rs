//! Txn: compares, branches, nesting, and the txns etcd refuses.

use etcdlite::client::{Code, Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse};

use crate::harness::Target;
use crate::status;

pub async fn compare_and_swap_takes_one_branch(mut t: Target) {
    let mut c = t.client();
    c.put("k", "old", None).await.unwrap();
    let cas = || {
        Txn::new()
            .when([Compare::value("k", CompareOp::Equal, "old")])
            .and_then([TxnOp::put("k", "new", None)])
            .or_else([TxnOp::get("k", None)])
    };
    let swapped = c.txn(cas()).await.unwrap();
    assert!(swapped.succeeded());
    assert_eq!(swapped.header().unwrap().revision(), 3);
    match swapped.op_responses().as_slice() {
        [TxnOpResponse::Put(put)] => assert_eq!(put.header().unwrap().revision(), 3),
        other => panic!("the then branch answered {other:?}"),
    }
    t.midpoint().await;
    let again = c.txn(cas()).await.unwrap();
    assert!(!again.succeeded());
    assert_eq!(again.header().unwrap().revision(), 3, "a txn that only reads takes no revision");
    match again.op_responses().as_slice() {
        [TxnOpResponse::Get(get)] => assert_eq!(get.kvs()[0].value(), b"new"),
        other => panic!("the else branch answered {other:?}"),
    }
}

pub async fn nested_txns_and_every_compare_target(mut t: Target) {
    let mut c = t.client();
    let lease = c.lease_grant(60, None).await.unwrap().id();
    c.put("a", "1", Some(PutOptions::new().with_lease(lease))).await.unwrap(); // revision 2
    c.put("a", "2", Some(PutOptions::new().with_lease(lease))).await.unwrap(); // 3
    c.put("b/1", "x", None).await.unwrap(); // 4
    c.put("b/2", "y", None).await.unwrap(); // 5
    let compares = [
        Compare::version("a", CompareOp::Equal, 2),
        Compare::create_revision("a", CompareOp::Equal, 2),
        Compare::mod_revision("a", CompareOp::Greater, 2),
        Compare::value("a", CompareOp::NotEqual, "1"),
        Compare::lease("a", CompareOp::Equal, lease),
        Compare::version("b/", CompareOp::Equal, 1).with_prefix(),
        Compare::create_revision("missing", CompareOp::Equal, 0),
        Compare::value("b/1", CompareOp::Less, "y"),
    ];
    let nested = Txn::new()
        .when([Compare::version("b/1", CompareOp::Equal, 5)])
        .and_then([TxnOp::delete("b/1", None)])
        .or_else([
            TxnOp::put("c", "from the nested else", None),
            TxnOp::get("b/", Some(GetOptions::new().with_prefix())),
        ]);
    t.midpoint().await;
    let resp =
        c.txn(Txn::new().when(compares).and_then([TxnOp::txn(nested), TxnOp::get("c", None)])).await.unwrap();
    assert!(resp.succeeded(), "every compare holds");
    assert_eq!(resp.header().unwrap().revision(), 6, "the whole txn is one revision");
    let responses = resp.op_responses();
    let TxnOpResponse::Txn(inner) = &responses[0] else { panic!("first: {responses:?}") };
    assert!(!inner.succeeded());
    match inner.op_responses().as_slice() {
        [TxnOpResponse::Put(_), TxnOpResponse::Get(get)] => assert_eq!(get.count(), 2),
        other => panic!("the nested else branch answered {other:?}"),
    }
    let TxnOpResponse::Get(get) = &responses[1] else { panic!("second: {responses:?}") };
    assert_eq!(get.kvs()[0].value(), b"from the nested else", "later ops see earlier ones");

    let failing =
        c.txn(Txn::new().when([Compare::version("b/", CompareOp::Equal, 1).with_range("b0")])).await;
    assert!(failing.unwrap().succeeded(), "both keys under b/ are at version 1");
    let failing = c.txn(Txn::new().when([Compare::lease("a", CompareOp::Equal, 0)])).await;
    assert!(!failing.unwrap().succeeded());
}

pub async fn txns_etcd_refuses(mut t: Target) {
    let mut c = t.client();
    let twice = Txn::new().and_then([TxnOp::put("k", "1", None), TxnOp::put("k", "2", None)]);
    assert_eq!(
        status(c.txn(twice).await),
        (Code::InvalidArgument, "etcdserver: duplicate key given in txn request".into())
    );
    let put_and_delete = Txn::new().and_then([TxnOp::put("k", "1", None), TxnOp::delete("k", None)]);
    assert_eq!(status(c.txn(put_and_delete).await).0, Code::InvalidArgument);
    t.midpoint().await;
    let many: Vec<_> = (0..129).map(|i| TxnOp::put(format!("k{i}"), "v", None)).collect();
    assert_eq!(
        status(c.txn(Txn::new().and_then(many)).await),
        (Code::InvalidArgument, "etcdserver: too many operations in txn request".into())
    );
    let empty_key = Txn::new().and_then([TxnOp::put("", "v", None)]);
    assert_eq!(
        status(c.txn(empty_key).await),
        (Code::InvalidArgument, "etcdserver: key is not provided".into())
    );
    let unknown_lease = Txn::new().and_then([TxnOp::put("k", "v", Some(PutOptions::new().with_lease(77)))]);
    assert_eq!(
        status(c.txn(unknown_lease).await),
        (Code::NotFound, "etcdserver: requested lease not found".into())
    );
    assert_eq!(c.get("k", None).await.unwrap().header().unwrap().revision(), 1, "nothing was written");
}
