//! Transactions: etcd-semantics.md sections 1.1 and 2.

use etcdlite::{
    Code, Compare, CompareOp, DeleteOptions, Error, GetOptions, PutOptions, ResponseHeader, Store, Txn,
    TxnOp, TxnOpResponse,
};

use crate::harness::{keys, kv, Harness};

fn succeeds(store: &Store, compare: Compare) -> bool {
    store.txn(Txn::new().when([compare])).unwrap().succeeded
}

pub fn compare_and_swap_takes_the_matching_branch(h: &Harness) {
    let store = h.open();
    store.put("k", "v1", None).unwrap();
    let cas = || {
        Txn::new()
            .when([Compare::value("k", CompareOp::Equal, "v1")])
            .and_then([TxnOp::put("k", "v2", None)])
            .or_else([TxnOp::get("k", None)])
    };
    let swapped = store.txn(cas()).unwrap();
    assert!(swapped.succeeded);
    assert_eq!(swapped.header.revision, 3);
    match swapped.responses.as_slice() {
        [TxnOpResponse::Put(put)] => assert_eq!(put.header.revision, 3),
        other => panic!("unexpected responses {other:?}"),
    }
    let lost = store.txn(cas()).unwrap();
    assert!(!lost.succeeded);
    assert_eq!(lost.header.revision, 3);
    match lost.responses.as_slice() {
        [TxnOpResponse::Get(get)] => {
            assert_eq!(get.kvs[0].value, b"v2");
            assert_eq!(get.header.revision, 3);
        }
        other => panic!("unexpected responses {other:?}"),
    }
}

pub fn compares_read_each_target(h: &Harness) {
    let store = h.open();
    store.put("k", "m", None).unwrap();
    store.put("k", "m", None).unwrap();
    // version 2, create 2, mod 3, value "m", lease 0
    let cases = [
        (Compare::version("k", CompareOp::Equal, 2), true),
        (Compare::version("k", CompareOp::Greater, 1), true),
        (Compare::version("k", CompareOp::Less, 2), false),
        (Compare::version("k", CompareOp::NotEqual, 2), false),
        (Compare::create_revision("k", CompareOp::Equal, 2), true),
        (Compare::create_revision("k", CompareOp::Less, 3), true),
        (Compare::mod_revision("k", CompareOp::Equal, 3), true),
        (Compare::mod_revision("k", CompareOp::Greater, 3), false),
        (Compare::value("k", CompareOp::Equal, "m"), true),
        (Compare::value("k", CompareOp::Greater, "a"), true),
        (Compare::value("k", CompareOp::Less, "mm"), true),
        (Compare::value("k", CompareOp::NotEqual, "m"), false),
        (Compare::lease("k", CompareOp::Equal, 0), true),
        (Compare::lease("k", CompareOp::Greater, 0), false),
    ];
    for (compare, want) in cases {
        assert_eq!(succeeds(&store, compare.clone()), want, "{compare:?}");
    }
}

pub fn a_missing_key_compares_as_zeros_except_for_value(h: &Harness) {
    let store = h.open();
    assert!(succeeds(&store, Compare::create_revision("k", CompareOp::Equal, 0)));
    assert!(succeeds(&store, Compare::version("k", CompareOp::Less, 1)));
    assert!(succeeds(&store, Compare::mod_revision("k", CompareOp::Equal, 0)));
    assert!(succeeds(&store, Compare::lease("k", CompareOp::Equal, 0)));
    // There is no value to compare: even NOT_EQUAL fails.
    assert!(!succeeds(&store, Compare::value("k", CompareOp::Equal, "")));
    assert!(!succeeds(&store, Compare::value("k", CompareOp::NotEqual, "x")));
}

pub fn range_compares_must_hold_for_every_key(h: &Harness) {
    let store = h.open();
    store.put("a", "v", None).unwrap();
    store.put("b", "v", None).unwrap();
    store.put("c", "w", None).unwrap();
    assert!(succeeds(&store, Compare::value("a", CompareOp::Equal, "v").with_range("c")));
    assert!(!succeeds(&store, Compare::value("a", CompareOp::Equal, "v").with_range("d")));
    assert!(succeeds(&store, Compare::version("a", CompareOp::Equal, 1).with_range("\0")));
    assert!(succeeds(&store, Compare::value("a", CompareOp::Less, "x").with_prefix()));
    // An empty range compares as one zero key-value, except for VALUE.
    assert!(succeeds(&store, Compare::create_revision("x", CompareOp::Equal, 0).with_range("z")));
    assert!(!succeeds(&store, Compare::value("x", CompareOp::Equal, "").with_range("z")));
}

pub fn a_txn_is_one_revision_and_its_reads_see_its_writes(h: &Harness) {
    let store = h.open();
    store.put("a", "1", None).unwrap();
    let resp = store
        .txn(Txn::new().and_then([
            TxnOp::get("a", None),
            TxnOp::put("a", "2", Some(PutOptions::new().with_prev_key())),
            TxnOp::get("a", None),
            TxnOp::delete("zz", None),
            TxnOp::put("b", "3", None),
            TxnOp::get("b", None),
        ]))
        .unwrap();
    assert_eq!(resp.header.revision, 3);
    let [TxnOpResponse::Get(before), TxnOpResponse::Put(put), TxnOpResponse::Get(after), TxnOpResponse::Delete(nothing), TxnOpResponse::Put(put_b), TxnOpResponse::Get(b)] =
        resp.responses.as_slice()
    else {
        panic!("unexpected responses {:?}", resp.responses);
    };
    // Inner headers carry only the revision: before the first change, the txn's start.
    assert_eq!(before.header, ResponseHeader { revision: 2, ..Default::default() });
    assert_eq!(before.kvs[0].value, b"1");
    assert_eq!(put.header.revision, 3);
    assert_eq!(put.prev_kv.as_ref().unwrap().value, b"1");
    assert_eq!(after.header.revision, 3);
    assert_eq!(
        (after.kvs[0].value.as_slice(), after.kvs[0].mod_revision, after.kvs[0].version),
        (&b"2"[..], 3, 2)
    );
    assert_eq!((nothing.deleted, nothing.header.revision), (0, 3));
    assert_eq!(put_b.header.revision, 3);
    assert_eq!((b.kvs[0].create_revision, b.kvs[0].mod_revision), (3, 3));
    assert_eq!(store.current_revision(), 3);
    assert_eq!(kv(&store, "a").unwrap().mod_revision, kv(&store, "b").unwrap().mod_revision);
}

pub fn a_txn_that_writes_nothing_keeps_the_revision(h: &Harness) {
    let store = h.open();
    store.put("a", "1", None).unwrap();
    let empty = store.txn(Txn::new()).unwrap();
    assert!(empty.succeeded);
    assert_eq!(empty.header.revision, 2);
    let read = store.txn(Txn::new().and_then([TxnOp::get("a", None)])).unwrap();
    assert_eq!(read.header.revision, 2);
    let noop_delete = store.txn(Txn::new().and_then([TxnOp::delete("zz", None)])).unwrap();
    assert_eq!(noop_delete.header.revision, 2);
    let failed = store
        .txn(
            Txn::new()
                .when([Compare::version("a", CompareOp::Equal, 9)])
                .and_then([TxnOp::put("a", "x", None)]),
        )
        .unwrap();
    assert_eq!((failed.succeeded, failed.header.revision), (false, 2));
    assert_eq!(store.current_revision(), 2);
}

pub fn nested_txns_decide_from_the_state_before_the_outer_txn(h: &Harness) {
    let store = h.open();
    store.put("a", "1", None).unwrap();
    let nested = Txn::new()
        .when([Compare::value("a", CompareOp::Equal, "1")])
        .and_then([TxnOp::put("b", "saw-old-a", None)])
        .or_else([TxnOp::put("b", "saw-new-a", None)]);
    let resp = store.txn(Txn::new().and_then([TxnOp::put("a", "2", None), TxnOp::txn(nested)])).unwrap();
    assert_eq!(resp.header.revision, 3);
    let TxnOpResponse::Txn(inner) = &resp.responses[1] else { panic!("{:?}", resp.responses) };
    assert!(inner.succeeded);
    // etcd leaves a nested txn's header empty.
    assert_eq!(inner.header, ResponseHeader::default());
    let [TxnOpResponse::Put(put)] = inner.responses.as_slice() else { panic!("{inner:?}") };
    assert_eq!(put.header.revision, 3);
    assert_eq!(kv(&store, "b").unwrap().value, b"saw-old-a");
}

pub fn duplicate_writes_are_refused_before_anything_runs(h: &Harness) {
    let store = h.open();
    store.put("a", "1", None).unwrap();
    let refused = [
        vec![TxnOp::put("x", "1", None), TxnOp::put("x", "2", None)],
        vec![TxnOp::delete("a", Some(DeleteOptions::new().with_range("c"))), TxnOp::put("b", "1", None)],
        vec![TxnOp::put("a", "1", None), TxnOp::delete("a", None)],
    ];
    for ops in refused {
        let err = store.txn(Txn::new().and_then(ops)).unwrap_err();
        assert_eq!(err, Error::DuplicateKey);
        assert_eq!(err.to_string(), "etcdserver: duplicate key given in txn request");
    }
    assert_eq!(store.current_revision(), 2);
    // A from-key delete does not collide with puts (etcd 3.4 and 3.5 accept this).
    let ok = Txn::new().and_then([
        TxnOp::delete("x", Some(DeleteOptions::new().with_from_key())),
        TxnOp::put("y", "1", None),
    ]);
    assert_eq!(store.txn(ok).unwrap().header.revision, 3);
    assert_eq!(kv(&store, "y").unwrap().value, b"1");
}

pub fn too_many_ops_are_refused(h: &Harness) {
    let store = h.open();
    let gets = |n: usize| (0..n).map(|i| TxnOp::get(format!("k{i}"), None)).collect::<Vec<_>>();
    let puts = |n: usize| (0..n).map(|i| TxnOp::put(format!("k{i}"), "v", None)).collect::<Vec<_>>();
    let err = store.txn(Txn::new().and_then(puts(129))).unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: too many operations in txn request");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(store.txn(Txn::new().and_then(puts(128))).unwrap().header.revision, 2);
    drop(store);

    let store = h.open_with(|o| o.max_txn_ops(3));
    assert_eq!(store.txn(Txn::new().or_else(gets(4))).unwrap_err(), Error::TooManyOps);
    assert!(store.txn(Txn::new().or_else(gets(3))).is_ok());
    let compares: Vec<_> = (0..4).map(|i| Compare::version(format!("k{i}"), CompareOp::Equal, 1)).collect();
    assert_eq!(store.txn(Txn::new().when(compares)).unwrap_err(), Error::TooManyOps);
    assert_eq!(store.current_revision(), 2);
}

pub fn only_the_chosen_branch_is_checked(h: &Harness) {
    let store = h.open();
    store.put("a", "1", None).unwrap();
    let bad_lease = || TxnOp::put("x", "v", Some(PutOptions::new().with_lease(99)));
    let untaken = Txn::new()
        .when([Compare::value("a", CompareOp::Equal, "other")])
        .and_then([bad_lease()])
        .or_else([TxnOp::get("a", None)]);
    assert!(!store.txn(untaken).unwrap().succeeded);

    let taken = Txn::new().and_then([TxnOp::put("c", "1", None), bad_lease()]);
    assert_eq!(store.txn(taken).unwrap_err(), Error::LeaseNotFound);
    let missing = Txn::new().and_then([
        TxnOp::put("c", "1", None),
        TxnOp::put("b", "", Some(PutOptions::new().with_ignore_value())),
    ]);
    assert_eq!(store.txn(missing).unwrap_err(), Error::KeyNotFound);
    let future = Txn::new()
        .and_then([TxnOp::put("c", "1", None), TxnOp::get("a", Some(GetOptions::new().with_revision(99)))]);
    assert_eq!(store.txn(future).unwrap_err(), Error::FutureRevision);
    // None of them applied anything.
    assert_eq!(store.current_revision(), 2);
    assert_eq!(kv(&store, "c"), None);
    assert_eq!(keys(&store.get("", Some(GetOptions::new().with_all_keys())).unwrap().kvs), ["a"]);
}

/// A standalone range reads the latest revision for any negative revision; inside a txn,
/// etcd compares it with the compacted revision (-1 before any compaction), so -2 is
/// "compacted" (etcd issue 13871; checked against etcd 3.4.23 and 3.5.1).
pub fn a_negative_revision_in_a_txn_range_reads_as_compacted(h: &Harness) {
    let store = h.open();
    store.put("a", "1", None).unwrap();
    let at = |rev| Txn::new().and_then([TxnOp::get("a", Some(GetOptions::new().with_revision(rev)))]);
    assert!(store.txn(at(-1)).is_ok());
    assert_eq!(store.txn(at(-2)).unwrap_err(), Error::Compacted);
    assert!(store.get("a", Some(GetOptions::new().with_revision(-2))).is_ok());
    store.compact(2, None).unwrap();
    assert_eq!(store.txn(at(-1)).unwrap_err(), Error::Compacted);
}
