//! Put, range and delete: etcd-semantics.md sections 0, 1.1, 1.2 and 1.3.

use etcdlite::{Code, DeleteOptions, Error, GetOptions, KeyValue, PutOptions, SortOrder, SortTarget, Store};

use crate::harness::{keys, kv, Harness};

pub fn an_empty_store_is_at_revision_1(h: &Harness) {
    let store = h.open();
    assert_eq!(store.current_revision(), 1);
    assert_eq!(store.compacted_revision(), -1);
    let resp = store.get("k", None).unwrap();
    assert_eq!(resp.header.revision, 1);
    assert!(resp.kvs.is_empty());
    assert_eq!(resp.count, 0);
}

pub fn the_first_put_creates_the_key_at_revision_2(h: &Harness) {
    let store = h.open();
    let resp = store.put("k", "v", None).unwrap();
    assert_eq!(resp.header.revision, 2);
    assert_eq!(resp.prev_kv, None);
    let want = KeyValue {
        key: b"k".to_vec(),
        create_revision: 2,
        mod_revision: 2,
        version: 1,
        value: b"v".to_vec(),
        lease: 0,
    };
    assert_eq!(kv(&store, "k"), Some(want));
}

pub fn later_puts_keep_create_revision_and_bump_version(h: &Harness) {
    let store = h.open();
    store.put("k", "v1", None).unwrap();
    store.put("k", "v2", None).unwrap();
    // The same value again is still a new revision.
    assert_eq!(store.put("k", "v2", None).unwrap().header.revision, 4);
    let kv = kv(&store, "k").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 4, 3));
}

pub fn put_prev_kv_returns_the_previous_key_value(h: &Harness) {
    let store = h.open();
    let with_prev = || Some(PutOptions::new().with_prev_key());
    assert_eq!(store.put("k", "v1", with_prev()).unwrap().prev_kv, None);
    let prev = store.put("k", "v2", with_prev()).unwrap().prev_kv.unwrap();
    assert_eq!((prev.value.as_slice(), prev.mod_revision, prev.version), (&b"v1"[..], 2, 1));
    // Without the option, no previous key-value comes back.
    assert_eq!(store.put("k", "v3", None).unwrap().prev_kv, None);
}

pub fn ignore_value_and_ignore_lease_keep_the_current_ones(h: &Harness) {
    let store = h.open();
    store.put("k", "v1", None).unwrap();
    let resp = store.put("k", "", Some(PutOptions::new().with_ignore_value())).unwrap();
    assert_eq!(resp.header.revision, 3);
    let kv1 = kv(&store, "k").unwrap();
    assert_eq!((kv1.value.as_slice(), kv1.version), (&b"v1"[..], 2));
    store.put("k", "v3", Some(PutOptions::new().with_ignore_lease())).unwrap();
    let kv2 = kv(&store, "k").unwrap();
    assert_eq!((kv2.value.as_slice(), kv2.lease, kv2.version), (&b"v3"[..], 0, 3));
}

pub fn ignore_flags_on_a_missing_key_fail_and_change_nothing(h: &Harness) {
    let store = h.open();
    for options in [PutOptions::new().with_ignore_value(), PutOptions::new().with_ignore_lease()] {
        let err = store.put("k", "", Some(options)).unwrap_err();
        assert_eq!(err, Error::KeyNotFound);
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(err.to_string(), "etcdserver: key not found");
    }
    assert_eq!(store.current_revision(), 1);
    assert_eq!(kv(&store, "k"), None);
}

pub fn ignore_flags_refuse_a_value_or_a_lease(h: &Harness) {
    let store = h.open();
    store.put("k", "v", None).unwrap();
    let err = store.put("k", "x", Some(PutOptions::new().with_ignore_value())).unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: value is provided");
    let lease_and_ignore = PutOptions::new().with_lease(5).with_ignore_lease();
    let err = store.put("k", "x", Some(lease_and_ignore)).unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: lease is provided");
    assert_eq!(store.current_revision(), 2);
}

pub fn a_put_with_an_unknown_lease_fails_and_writes_nothing(h: &Harness) {
    let store = h.open();
    let err = store.put("k", "v", Some(PutOptions::new().with_lease(42))).unwrap_err();
    assert_eq!(err, Error::LeaseNotFound);
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.to_string(), "etcdserver: requested lease not found");
    assert_eq!(store.current_revision(), 1);
    assert_eq!(kv(&store, "k"), None);
}

pub fn empty_keys_are_refused(h: &Harness) {
    let store = h.open();
    let message = "etcdserver: key is not provided";
    assert_eq!(store.put("", "v", None).unwrap_err().to_string(), message);
    assert_eq!(store.get("", None).unwrap_err().to_string(), message);
    assert_eq!(store.delete("", None).unwrap_err().to_string(), message);
    assert_eq!(store.get("", None).unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(store.current_revision(), 1);
}

pub fn range_end_follows_etcds_conventions(h: &Harness) {
    let store = h.open();
    for key in ["a", "ab", "b", "c"] {
        store.put(key, "v", None).unwrap();
    }
    store.put(b"\xff".to_vec(), "v", None).unwrap();
    store.put(b"\xff\xff".to_vec(), "v", None).unwrap();
    let get = |key: &[u8], options: GetOptions| keys(&store.get(key, Some(options)).unwrap().kvs);
    assert_eq!(get(b"a", GetOptions::new()), ["a"]);
    assert_eq!(get(b"a", GetOptions::new().with_range("b")), ["a", "ab"]);
    assert_eq!(get(b"b", GetOptions::new().with_from_key()), ["b", "c", "\u{fffd}", "\u{fffd}\u{fffd}"]);
    assert_eq!(get(b"a", GetOptions::new().with_prefix()), ["a", "ab"]);
    // The prefix of "\xff" has no end: it runs to the last key.
    assert_eq!(get(b"\xff", GetOptions::new().with_prefix()).len(), 2);
    assert_eq!(get(b"", GetOptions::new().with_all_keys()).len(), 6);
    assert_eq!(get(b"", GetOptions::new().with_prefix()).len(), 6);
    // A range whose end is not after its key is empty, not an error.
    let inverted = store.get("c", Some(GetOptions::new().with_range("a"))).unwrap();
    assert_eq!((inverted.kvs.len(), inverted.count), (0, 0));
    assert!(store.get("b", Some(GetOptions::new().with_range("b"))).unwrap().kvs.is_empty());
}

fn five_keys(store: &Store) {
    for i in 1..=5 {
        store.put(format!("k{i}"), format!("v{i}"), None).unwrap();
    }
}

pub fn limit_cuts_kvs_but_not_count(h: &Harness) {
    let store = h.open();
    five_keys(&store);
    let get = |limit| store.get("k", Some(GetOptions::new().with_prefix().with_limit(limit))).unwrap();
    let two = get(2);
    assert_eq!((keys(&two.kvs), two.more, two.count), (vec!["k1".to_string(), "k2".to_string()], true, 5));
    for (limit, len) in [(5, 5), (10, 5), (0, 5), (-1, 5)] {
        let resp = get(limit);
        assert_eq!((resp.kvs.len(), resp.more, resp.count), (len, false, 5), "limit {limit}");
    }
}

pub fn count_only_returns_the_count_alone(h: &Harness) {
    let store = h.open();
    five_keys(&store);
    let resp = store.get("k", Some(GetOptions::new().with_prefix().with_count_only().with_limit(2))).unwrap();
    assert_eq!((resp.kvs.len(), resp.count, resp.more), (0, 5, false));
    assert_eq!(resp.header.revision, 6);
}

pub fn keys_only_drops_values_and_keeps_the_rest(h: &Harness) {
    let store = h.open();
    five_keys(&store);
    let resp = store.get("k3", Some(GetOptions::new().with_keys_only())).unwrap();
    let kv = &resp.kvs[0];
    assert_eq!((kv.key.as_slice(), kv.value.as_slice()), (&b"k3"[..], &b""[..]));
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (4, 4, 1));
}

/// a: create 3, mod 7, version 2, value "x"; b: create 4, mod 4, version 1, value "y";
/// c: create 2, mod 6, version 3, value "z".
fn sort_fixture(store: &Store) {
    store.put("c", "z", None).unwrap();
    store.put("a", "x", None).unwrap();
    store.put("b", "y", None).unwrap();
    store.put("c", "z", None).unwrap();
    store.put("c", "z", None).unwrap();
    store.put("a", "x", None).unwrap();
}

fn sorted(store: &Store, options: GetOptions) -> Vec<String> {
    keys(&store.get("a", Some(options.with_range("d"))).unwrap().kvs)
}

pub fn every_sort_target_and_order(h: &Harness) {
    let store = h.open();
    sort_fixture(&store);
    use SortOrder::*;
    use SortTarget::*;
    let cases = [
        (Key, None, "abc"),
        (Key, Ascend, "abc"),
        (Key, Descend, "cba"),
        (Version, None, "bac"),
        (Version, Ascend, "bac"),
        (Version, Descend, "cab"),
        (Create, Ascend, "cab"),
        (Create, Descend, "bac"),
        (Mod, Ascend, "bca"),
        (Mod, Descend, "acb"),
        (Value, Ascend, "abc"),
        (Value, Descend, "cba"),
    ];
    for (target, order, want) in cases {
        let got = sorted(&store, GetOptions::new().with_sort(target, order)).concat();
        assert_eq!(got, want, "{target:?} {order:?}");
    }
}

pub fn sorting_with_a_limit_sorts_before_truncating(h: &Harness) {
    let store = h.open();
    sort_fixture(&store);
    let options = GetOptions::new().with_sort(SortTarget::Create, SortOrder::Ascend).with_limit(1);
    let resp = store.get("a", Some(options.with_range("d"))).unwrap();
    assert_eq!((keys(&resp.kvs), resp.more, resp.count), (vec!["c".to_string()], true, 3));
}

/// etcd fetches `limit + 1` keys in key order when the order is NONE and sorts only those,
/// so the smallest create revision overall (c) is not found. Checked against etcd 3.4.23
/// and 3.5.1.
pub fn sort_order_none_with_a_limit_sorts_only_the_first_limit_plus_one_keys(h: &Harness) {
    let store = h.open();
    sort_fixture(&store);
    let options = GetOptions::new().with_sort(SortTarget::Create, SortOrder::None).with_limit(1);
    let resp = store.get("a", Some(options.with_range("d"))).unwrap();
    assert_eq!((keys(&resp.kvs), resp.more), (vec!["a".to_string()], true));
}

pub fn mod_and_create_revision_filters_do_not_change_count(h: &Harness) {
    let store = h.open();
    sort_fixture(&store);
    let check = |options: GetOptions, want: &str, more: bool| {
        let resp = store.get("a", Some(options.with_range("d"))).unwrap();
        assert_eq!((keys(&resp.kvs).concat(), resp.more, resp.count), (want.to_string(), more, 3));
    };
    check(GetOptions::new().with_min_mod_revision(5), "ac", false);
    check(GetOptions::new().with_max_mod_revision(6), "bc", false);
    check(GetOptions::new().with_min_create_revision(3), "ab", false);
    check(GetOptions::new().with_max_create_revision(3), "ac", false);
    check(GetOptions::new().with_min_mod_revision(5).with_limit(1), "a", true);
}

pub fn reads_at_past_revisions_see_history(h: &Harness) {
    let store = h.open();
    store.put("k", "v1", None).unwrap();
    store.put("k", "v2", None).unwrap();
    store.delete("k", None).unwrap();
    store.put("k", "v3", None).unwrap();
    let at = |rev| store.get("k", Some(GetOptions::new().with_revision(rev))).unwrap();
    let values: Vec<_> = (1..=5).map(|rev| at(rev).kvs.pop().map(|kv| (kv.value, kv.version))).collect();
    let want = [None, Some((b"v1".to_vec(), 1)), Some((b"v2".to_vec(), 2)), None, Some((b"v3".to_vec(), 1))];
    assert_eq!(values, want);
    // The header always carries the current revision.
    assert!((1..=5).all(|rev| at(rev).header.revision == 5));
    // A negative revision reads the latest.
    assert_eq!(at(-1).kvs[0].value, b"v3");
    let err = store.get("k", Some(GetOptions::new().with_revision(6))).unwrap_err();
    assert_eq!(err, Error::FutureRevision);
    assert_eq!(err.code(), Code::OutOfRange);
    assert_eq!(err.to_string(), "etcdserver: mvcc: required revision is a future revision");
}

pub fn delete_reports_what_it_removed_in_key_order(h: &Harness) {
    let store = h.open();
    for key in ["b", "a", "c"] {
        store.put(key, key, None).unwrap();
    }
    let resp = store.delete("a", Some(DeleteOptions::new().with_range("c").with_prev_key())).unwrap();
    assert_eq!((resp.deleted, resp.header.revision), (2, 5));
    assert_eq!(keys(&resp.prev_kvs), ["a", "b"]);
    assert_eq!(resp.prev_kvs[0].mod_revision, 3);
    assert_eq!(keys(&store.get("", Some(GetOptions::new().with_all_keys())).unwrap().kvs), ["c"]);
    // Without the option, no previous key-values.
    assert!(store.delete("c", None).unwrap().prev_kvs.is_empty());
}

pub fn a_delete_that_matches_nothing_keeps_the_revision(h: &Harness) {
    let store = h.open();
    store.put("a", "v", None).unwrap();
    for options in
        [None, Some(DeleteOptions::new().with_prefix()), Some(DeleteOptions::new().with_from_key())]
    {
        let resp = store.delete("zz", options).unwrap();
        assert_eq!((resp.deleted, resp.header.revision), (0, 2));
    }
    assert_eq!(store.current_revision(), 2);
}

pub fn a_key_put_after_a_delete_starts_a_new_generation(h: &Harness) {
    let store = h.open();
    store.put("k", "1", None).unwrap();
    store.put("k", "2", None).unwrap();
    assert_eq!(store.delete("k", None).unwrap().deleted, 1);
    assert_eq!(kv(&store, "k"), None);
    store.put("k", "3", None).unwrap();
    let kv = kv(&store, "k").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
}

pub fn oversized_writes_are_refused_and_change_nothing(h: &Harness) {
    let store = h.open();
    // etcd measures the raft-wrapped request: with a 1.5 MiB limit, the largest value put
    // under a one-byte key is 1,572,839 bytes (measured on etcd 3.4.23).
    assert!(store.put("k", vec![b'x'; 1_572_839], None).is_ok());
    let err = store.put("k", vec![b'x'; 1_572_840], None).unwrap_err();
    assert_eq!(err, Error::RequestTooLarge);
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(store.current_revision(), 2);
    drop(store);

    let store = h.open_with(|o| o.max_request_bytes(100));
    let err = store.put("k", vec![b'x'; 200], None).unwrap_err();
    assert_eq!(err, Error::RequestTooLarge);
    let big_txn = etcdlite::Txn::new().and_then([etcdlite::TxnOp::put("k", vec![b'x'; 200], None)]);
    assert_eq!(store.txn(big_txn).unwrap_err(), Error::RequestTooLarge);
    // Reads are not measured.
    let long_key = vec![b'k'; 500];
    assert!(store.get(long_key.clone(), None).is_ok());
    let read_txn = etcdlite::Txn::new().and_then([etcdlite::TxnOp::get(long_key, None)]);
    assert!(store.txn(read_txn).is_ok());
    assert_eq!(store.current_revision(), 2);
}

pub fn async_writes_apply_as_blocking_ones_and_are_visible_once_resolved(h: &Harness) {
    use etcdlite::{Compare, CompareOp, DeleteRangeRequest, PutRequest, Txn, TxnOp};
    use futures::executor::block_on;

    let store = h.open();
    let put = PutRequest { key: b"k".to_vec(), value: b"v1".to_vec(), prev_kv: true, ..Default::default() };
    let resp = block_on(store.put_request_async(put)).unwrap();
    assert_eq!(resp.header.revision, 2);
    assert_eq!(kv(&store, "k").unwrap().value, b"v1");

    let txn = Txn::new()
        .when([Compare::value("k", CompareOp::Equal, "v1")])
        .and_then([TxnOp::put("k", "v2", None)]);
    let resp = block_on(store.txn_async(txn)).unwrap();
    assert!(resp.succeeded);
    assert_eq!(resp.header.revision, 3);
    assert_eq!(kv(&store, "k").unwrap().version, 2);

    // A read-only txn resolves at once, at the current revision.
    let read = block_on(store.txn_async(Txn::new().and_then([TxnOp::get("k", None)]))).unwrap();
    assert_eq!(read.header.revision, 3);

    let delete = DeleteRangeRequest { key: b"k".to_vec(), ..Default::default() };
    let resp = block_on(store.delete_range_async(&delete)).unwrap();
    assert_eq!((resp.deleted, resp.header.revision), (1, 4));
    assert!(kv(&store, "k").is_none());

    // Refused requests fail at once and change nothing.
    let empty = PutRequest { key: Vec::new(), value: b"v".to_vec(), ..Default::default() };
    assert!(matches!(block_on(store.put_request_async(empty)), Err(Error::EmptyKey)));
    assert_eq!(store.current_revision(), 4);

    // Durable across a reopen like any write.
    block_on(store.put_request_async(PutRequest { key: b"a".to_vec(), ..Default::default() })).unwrap();
    let store = h.reopen(store);
    assert_eq!(kv(&store, "a").unwrap().mod_revision, 5);
}
