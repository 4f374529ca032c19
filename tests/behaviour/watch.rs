//! Watches: etcd-semantics.md section 3, with the delete events of 1.3 and the compaction
//! rules of 1.4.
//!
//! Live events are handed to a watch's stream inside the write that makes them, so after
//! a write `try_recv` shows everything it sent. History is read by a background syncer
//! thread: history events are waited for with a bounded `recv_timeout`.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use etcdlite::watch::{RecvTimeoutError, TryRecvError, WatchCreateRequest};
use etcdlite::{
    CompactionOptions, DeleteOptions, Error, EventType, KeyValue, ManualClock, PutOptions, Store, Txn, TxnOp,
    WatchFilterType, WatchOptions, WatchResponse, WatchStream,
};
use futures::{Stream, StreamExt};

use crate::harness::Harness;

/// How long a test waits for a response it expects; it only matters when the test fails.
const WAIT: Duration = Duration::from_secs(10);

/// An event as (type, key, value, mod_revision).
type Ev = (EventType, String, String, i64);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn put_ev(key: &str, value: &str, revision: i64) -> Ev {
    (EventType::Put, key.to_owned(), value.to_owned(), revision)
}

fn del_ev(key: &str, revision: i64) -> Ev {
    (EventType::Delete, key.to_owned(), String::new(), revision)
}

fn events(resp: &WatchResponse) -> Vec<Ev> {
    resp.events
        .iter()
        .map(|e| (e.event_type, text(&e.kv.key), text(&e.kv.value), e.kv.mod_revision))
        .collect()
}

fn all_events(resps: &[WatchResponse]) -> Vec<Ev> {
    resps.iter().flat_map(events).collect()
}

/// The next response, waiting up to [`WAIT`] for it.
fn next(stream: &WatchStream) -> WatchResponse {
    match stream.recv_timeout(WAIT) {
        Ok(resp) => resp,
        Err(e) => panic!("no watch response within {WAIT:?}: {e:?}"),
    }
}

/// Asserts that no response is waiting on `stream`.
fn nothing_waiting(stream: &WatchStream) {
    match stream.try_recv() {
        Err(TryRecvError::Empty) => {}
        other => panic!("expected nothing waiting on the stream, got {other:?}"),
    }
}

/// Every response waiting on `stream` now.
fn drain(stream: &WatchStream) -> Vec<WatchResponse> {
    let mut out = Vec::new();
    loop {
        match stream.try_recv() {
            Ok(resp) => out.push(resp),
            Err(TryRecvError::Empty) => return out,
            Err(TryRecvError::Disconnected) => panic!("stream ended"),
        }
    }
}

/// Takes the created response a watch just sent (it is sent at once) and checks it.
fn expect_created(stream: &WatchStream, id: i64, revision: i64) {
    let resp = stream.try_recv().expect("a created response is sent at once");
    assert!(resp.created, "{resp:?}");
    assert!(!resp.canceled, "{resp:?}");
    assert_eq!(resp.watch_id, id, "{resp:?}");
    assert_eq!(resp.header.revision, revision, "{resp:?}");
    assert_eq!(resp.compact_revision, 0);
    assert!(resp.events.is_empty());
    assert!(!resp.is_progress_notify());
}

/// Reads event responses until `count` events have come; every response must be a plain
/// batch of events.
fn take_events(stream: &WatchStream, count: usize) -> Vec<WatchResponse> {
    let mut out = Vec::new();
    let mut n = 0;
    while n < count {
        let resp = next(stream);
        assert!(!resp.created && !resp.canceled && !resp.events.is_empty(), "not an event batch: {resp:?}");
        n += resp.events.len();
        out.push(resp);
    }
    assert_eq!(n, count, "more events than expected: {:?}", all_events(&out));
    out
}

/// Reads responses until one holds an event at `revision` or later.
fn until_revision(stream: &WatchStream, revision: i64) -> Vec<WatchResponse> {
    let mut out = Vec::new();
    loop {
        let resp = next(stream);
        let done = resp.events.iter().any(|e| e.kv.mod_revision >= revision);
        out.push(resp);
        if done {
            return out;
        }
    }
}

/// etcd's per-watch guarantees over `resps`: revisions never go down, a revision's events
/// are all in one response, a response's header is at least its last event's revision,
/// and a response holds at most 1000 revisions.
fn assert_well_batched(resps: &[WatchResponse]) {
    let mut seen_in: HashMap<i64, usize> = HashMap::new();
    let mut last = 0;
    for (i, resp) in resps.iter().enumerate() {
        let mut revisions = Vec::new();
        for e in &resp.events {
            let rev = e.kv.mod_revision;
            assert!(rev >= last, "revision {rev} after {last}");
            last = rev;
            if revisions.last() != Some(&rev) {
                revisions.push(rev);
            }
            let first = *seen_in.entry(rev).or_insert(i);
            assert_eq!(first, i, "revision {rev} split over responses {first} and {i}");
        }
        assert!(revisions.len() <= 1000, "{} revisions in one response", revisions.len());
        if let Some(&top) = revisions.last() {
            assert!(resp.header.revision >= top, "header {} below event {top}", resp.header.revision);
        }
    }
}

fn rev_of_put(store: &Store, key: &str, value: &str) -> i64 {
    store.put(key, value, None).unwrap().header.revision
}

fn opts() -> WatchOptions {
    WatchOptions::new()
}

fn from_rev(revision: i64) -> Option<WatchOptions> {
    Some(opts().with_start_revision(revision))
}

fn physical() -> Option<CompactionOptions> {
    Some(CompactionOptions::new().with_physical())
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn open_on(h: &Harness, clock: &ManualClock) -> Store {
    h.open_with(|o| o.clock(Arc::new(clock.clone())))
}

// ---- Creation, ids and validation (3.2) ----

pub fn store_watch_takes_the_created_response_and_gives_the_first_id(h: &Harness) {
    let store = h.open();
    rev_of_put(&store, "k", "v0"); // 2
    let (watcher, stream) = store.watch("k", None).unwrap();
    assert_eq!(watcher.watch_id(), 0);
    // The created response is gone: nothing waits until the first event.
    nothing_waiting(&stream);
    assert_eq!(rev_of_put(&store, "k", "v1"), 3);
    let resp = next(&stream);
    assert_eq!(resp.watch_id, 0);
    assert!(!resp.created && !resp.canceled);
    assert_eq!(resp.header.revision, 3);
    assert_eq!(events(&resp), [put_ev("k", "v1", 3)]);
    // Ids are per stream: a second stream starts at 0 again.
    let (other, _other_stream) = store.watch("k", None).unwrap();
    assert_eq!(other.watch_id(), 0);
}

pub fn a_new_watch_sends_created_first_at_the_current_revision(h: &Harness) {
    let store = h.open();
    rev_of_put(&store, "a", "1"); // 2
    rev_of_put(&store, "b", "1"); // 3
    let (watcher, stream) = store.watch_stream();
    assert_eq!(watcher.watch_id(), -1);
    nothing_waiting(&stream);
    let id = watcher.watch("a", None).unwrap();
    assert_eq!(id, 0);
    expect_created(&stream, 0, 3);
    nothing_waiting(&stream);
    // A watch replaying history still sends its created response before any event.
    let past = watcher.watch("a", from_rev(2)).unwrap();
    assert_eq!(past, 1);
    expect_created(&stream, 1, 3);
    let replay = next(&stream);
    assert_eq!(replay.watch_id, 1);
    assert_eq!(events(&replay), [put_ev("a", "1", 2)]);
    assert!(replay.header.revision >= 2);
}

pub fn auto_watch_ids_start_at_0_increment_and_skip_ids_in_use(h: &Harness) {
    let store = h.open();
    let (watcher, stream) = store.watch_stream();
    assert_eq!(watcher.watch("a", Some(opts().with_watch_id(2))).unwrap(), 2);
    expect_created(&stream, 2, 1);
    let mut auto = Vec::new();
    for key in ["b", "c", "d"] {
        let id = watcher.watch(key, None).unwrap();
        expect_created(&stream, id, 1);
        auto.push(id);
    }
    assert_eq!(auto, [0, 1, 3]);
    // A cancelled id is not handed out again: the counter only moves on, as in etcd.
    watcher.cancel_by_id(0).unwrap();
    assert!(next(&stream).canceled);
    assert_eq!(watcher.watch("e", None).unwrap(), 4);
    expect_created(&stream, 4, 1);
    // Each watch's events carry its own id.
    for (key, id) in [("a", 2), ("c", 1), ("d", 3), ("e", 4)] {
        let rev = rev_of_put(&store, key, "v");
        let resp = next(&stream);
        assert_eq!((resp.watch_id, events(&resp)), (id, vec![put_ev(key, "v", rev)]));
    }
    rev_of_put(&store, "b", "v"); // its watch was cancelled
    nothing_waiting(&stream);
    // Another stream numbers its own watches.
    let (second, second_stream) = store.watch_stream();
    assert_eq!(second.watch("a", None).unwrap(), 0);
    expect_created(&second_stream, 0, store.current_revision());
}

pub fn a_chosen_watch_id_is_used_and_a_duplicate_is_refused_without_a_response(h: &Harness) {
    let store = h.open();
    let (watcher, stream) = store.watch_stream();
    assert_eq!(watcher.watch("k", Some(opts().with_watch_id(7))).unwrap(), 7);
    expect_created(&stream, 7, 1);
    let err = watcher.watch("other", Some(opts().with_watch_id(7))).unwrap_err();
    assert_eq!(err, Error::DuplicateWatchId);
    assert_eq!(err.to_string(), "mvcc: duplicate watch ID provided on the WatchStream");
    nothing_waiting(&stream);
    // No watch of "other" exists, and the failed request took no id.
    rev_of_put(&store, "other", "v");
    nothing_waiting(&stream);
    assert_eq!(watcher.watch("x", None).unwrap(), 0);
    expect_created(&stream, 0, 2);
    let rev = rev_of_put(&store, "k", "v");
    let resp = next(&stream);
    assert_eq!((resp.watch_id, events(&resp)), (7, vec![put_ev("k", "v", rev)]));
    // Store::watch honours a chosen id too.
    let (chosen, _s) = store.watch("k", Some(opts().with_watch_id(42))).unwrap();
    assert_eq!(chosen.watch_id(), 42);
}

pub fn a_watch_on_an_empty_range_is_refused(h: &Harness) {
    let store = h.open();
    let (watcher, stream) = store.watch_stream();
    for end in ["a", "b"] {
        let err = watcher.watch("b", Some(opts().with_range(end))).unwrap_err();
        assert_eq!(err, Error::WatchRangeEmpty, "range [b, {end})");
        assert_eq!(err.to_string(), "mvcc: watcher range is empty");
    }
    let req = WatchCreateRequest { key: b"z".to_vec(), range_end: b"y".to_vec(), ..Default::default() };
    assert_eq!(watcher.watch_request(req).unwrap_err(), Error::WatchRangeEmpty);
    assert_eq!(store.watch("b", Some(opts().with_range("a"))).err(), Some(Error::WatchRangeEmpty));
    nothing_waiting(&stream);
    // Nothing was created: the next watch gets the first id.
    assert_eq!(watcher.watch("b", Some(opts().with_range("c"))).unwrap(), 0);
    expect_created(&stream, 0, 1);
}

pub fn an_empty_key_watches_the_nul_key_and_with_a_nul_range_end_every_key(h: &Harness) {
    let store = h.open();
    let (_w, nul) = store.watch("", None).unwrap();
    let (_w, all) = store.watch("", Some(opts().with_all_keys())).unwrap();
    let (raw, raw_stream) = store.watch_stream();
    let req = WatchCreateRequest { key: Vec::new(), range_end: vec![0], ..Default::default() };
    assert_eq!(raw.watch_request(req).unwrap(), 0);
    expect_created(&raw_stream, 0, 1);
    let writes = ["a", "\0", "zz", "\0\0", "~"];
    let mut want = Vec::new();
    for key in writes {
        want.push(put_ev(key, "v", rev_of_put(&store, key, "v")));
    }
    assert_eq!(all_events(&drain(&nul)), [put_ev("\0", "v", 3)]);
    assert_eq!(all_events(&drain(&all)), want);
    assert_eq!(all_events(&drain(&raw_stream)), want);
}

pub fn a_watch_from_a_negative_start_revision_is_refused_as_compacted(h: &Harness) {
    let store = h.open();
    rev_of_put(&store, "k", "v");
    assert_eq!(store.watch("k", from_rev(-1)).err(), Some(Error::Compacted));
    let (watcher, stream) = store.watch_stream();
    assert_eq!(watcher.watch("k", from_rev(-5)).unwrap_err(), Error::Compacted);
    nothing_waiting(&stream);
    assert_eq!(watcher.watch("k", None).unwrap(), 0);
    expect_created(&stream, 0, 2);
}

// ---- Which events a watch sees (3.3, 3.4) ----

pub fn a_watch_from_now_sees_only_later_events(h: &Harness) {
    let store = h.open();
    rev_of_put(&store, "k", "old"); // 2
    store.delete("gone", None).unwrap();
    let (_w, stream) = store.watch("k", None).unwrap();
    nothing_waiting(&stream);
    assert_eq!(rev_of_put(&store, "k", "new"), 3);
    assert_eq!(all_events(&drain(&stream)), [put_ev("k", "new", 3)]);
}

pub fn key_range_prefix_and_from_key_watches_see_only_their_keys(h: &Harness) {
    let store = h.open();
    let (_w, single) = store.watch("b", None).unwrap();
    let (_w, range) = store.watch("b", Some(opts().with_range("d"))).unwrap();
    let (_w, prefix) = store.watch("foo", Some(opts().with_prefix())).unwrap();
    let (_w, from_key) = store.watch("m", Some(opts().with_from_key())).unwrap();
    let mut revs = HashMap::new();
    for key in ["a", "b", "ba", "c", "d", "fo", "foo", "foo/bar", "foob", "fop", "m", "zz"] {
        revs.insert(key, rev_of_put(&store, key, "v"));
    }
    let want = |keys: &[&str]| keys.iter().map(|k| put_ev(k, "v", revs[k])).collect::<Vec<_>>();
    assert_eq!(all_events(&drain(&single)), want(&["b"]));
    assert_eq!(all_events(&drain(&range)), want(&["b", "ba", "c"]));
    assert_eq!(all_events(&drain(&prefix)), want(&["foo", "foo/bar", "foob"]));
    assert_eq!(all_events(&drain(&from_key)), want(&["m", "zz"]));
    // Deletes follow the same ranges.
    let rev = store.delete("c", None).unwrap().header.revision;
    assert_eq!(all_events(&drain(&range)), [del_ev("c", rev)]);
    for stream in [&single, &prefix, &from_key] {
        nothing_waiting(stream);
    }
}

pub fn watched_put_events_carry_the_full_key_value_and_delete_events_only_key_and_revision(h: &Harness) {
    let store = h.open();
    let lease = store.lease_grant(600, None).unwrap().id;
    rev_of_put(&store, "k", "v1"); // 2
    let (_w, live) = store.watch("k", None).unwrap();
    store.put("k", "v2", Some(PutOptions::new().with_lease(lease))).unwrap(); // 3
    store.delete("k", None).unwrap(); // 4
    rev_of_put(&store, "k", "v3"); // 5
    let got: Vec<_> = take_events(&live, 3).iter().flat_map(|r| r.events.clone()).collect();
    let updated = KeyValue {
        key: b"k".to_vec(),
        create_revision: 2,
        mod_revision: 3,
        version: 2,
        value: b"v2".to_vec(),
        lease,
    };
    let deleted = KeyValue { key: b"k".to_vec(), mod_revision: 4, ..Default::default() };
    let recreated = KeyValue {
        key: b"k".to_vec(),
        create_revision: 5,
        mod_revision: 5,
        version: 1,
        value: b"v3".to_vec(),
        lease: 0,
    };
    let kinds: Vec<_> = got.iter().map(|e| e.event_type).collect();
    assert_eq!(kinds, [EventType::Put, EventType::Delete, EventType::Put]);
    assert_eq!(got.iter().map(|e| e.kv().clone()).collect::<Vec<_>>(), [updated, deleted, recreated]);
    assert!(got.iter().all(|e| e.prev_kv.is_none()), "prev_kv was not asked for");
    assert_eq!(got.iter().map(|e| e.is_create()).collect::<Vec<_>>(), [false, false, true]);
    // History gives the very same events.
    let (_w, past) = store.watch("k", from_rev(2)).unwrap();
    let replayed: Vec<_> = take_events(&past, 4).iter().flat_map(|r| r.events.clone()).collect();
    assert_eq!(replayed[0].kv.value, b"v1");
    assert!(replayed[0].is_create());
    assert_eq!(replayed[1..], got[..]);
}

pub fn a_txns_watch_events_arrive_in_one_response_in_op_order(h: &Harness) {
    let store = h.open();
    rev_of_put(&store, "c", "old"); // 2
    rev_of_put(&store, "x/1", "old"); // 3
    let (_w, stream) = store.watch("", Some(opts().with_all_keys())).unwrap();
    let txn = Txn::new().and_then([
        TxnOp::put("b", "1", None),
        TxnOp::put("a", "1", None),
        TxnOp::delete("c", None),
    ]);
    assert_eq!(store.txn(txn).unwrap().header.revision, 4);
    let resps = drain(&stream);
    assert_eq!(resps.len(), 1, "{resps:?}");
    assert_eq!(resps[0].header.revision, 4);
    assert_eq!(events(&resps[0]), [put_ev("b", "1", 4), put_ev("a", "1", 4), del_ev("c", 4)]);
    // A txn that ends a key's generation and starts the next: delete, then create.
    let txn = Txn::new().and_then([
        // etcd refuses a put inside a deleted range, except a from-key one.
        TxnOp::delete("x/", Some(DeleteOptions::new().with_from_key())),
        TxnOp::put("x/1", "new", None),
    ]);
    assert_eq!(store.txn(txn).unwrap().header.revision, 5);
    let resps = drain(&stream);
    assert_eq!(resps.len(), 1, "{resps:?}");
    assert_eq!(events(&resps[0]), [del_ev("x/1", 5), put_ev("x/1", "new", 5)]);
    assert!(resps[0].events[1].is_create());
    // Replayed from history, the revisions keep their events together and in order.
    let (_w, past) = store.watch("", Some(opts().with_all_keys().with_start_revision(4))).unwrap();
    let resps = take_events(&past, 5);
    assert_well_batched(&resps);
    assert_eq!(
        all_events(&resps),
        [put_ev("b", "1", 4), put_ev("a", "1", 4), del_ev("c", 4), del_ev("x/1", 5), put_ev("x/1", "new", 5)]
    );
}

pub fn deleting_a_prefix_sends_one_watch_response_with_every_delete_in_key_order(h: &Harness) {
    let store = h.open();
    for key in ["p/b", "p/a", "p/c", "q"] {
        rev_of_put(&store, key, "v"); // 2..=5
    }
    let (_w, prefix) = store.watch("p/", Some(opts().with_prefix())).unwrap();
    let (_w, single) = store.watch("p/b", None).unwrap();
    let resp = store.delete("p/", Some(DeleteOptions::new().with_prefix())).unwrap();
    assert_eq!((resp.deleted, resp.header.revision), (3, 6));
    let resps = drain(&prefix);
    assert_eq!(resps.len(), 1, "{resps:?}");
    assert_eq!(resps[0].header.revision, 6);
    assert_eq!(events(&resps[0]), [del_ev("p/a", 6), del_ev("p/b", 6), del_ev("p/c", 6)]);
    assert_eq!(all_events(&drain(&single)), [del_ev("p/b", 6)]);
}

pub fn lease_revoke_and_expiry_send_watch_delete_events(h: &Harness) {
    let clock = ManualClock::new();
    let store = open_on(h, &clock);
    let revoked = store.lease_grant(600, None).unwrap().id;
    let expiring = store.lease_grant(5, None).unwrap().id;
    // Revisions 2 and 3, then 4 and 5.
    for key in ["r/2", "r/1"] {
        store.put(key, "v", Some(PutOptions::new().with_lease(revoked))).unwrap();
    }
    for key in ["e/y", "e/x"] {
        store.put(key, "v", Some(PutOptions::new().with_lease(expiring))).unwrap();
    }
    let (_w, stream) = store.watch("", Some(opts().with_all_keys().with_prev_key())).unwrap();
    assert_eq!(store.lease_revoke(revoked).unwrap().header.revision, 6);
    let resp = next(&stream);
    assert_eq!(resp.header.revision, 6);
    assert_eq!(events(&resp), [del_ev("r/1", 6), del_ev("r/2", 6)]);
    let prev: Vec<_> = resp.events.iter().map(|e| e.prev_kv.clone().expect("prev_kv").lease).collect();
    assert_eq!(prev, [revoked, revoked]);
    // Expiry happens inside advance.
    clock.advance(secs(5));
    assert_eq!(store.current_revision(), 7);
    let resp = next(&stream);
    assert_eq!(resp.header.revision, 7);
    assert_eq!(events(&resp), [del_ev("e/x", 7), del_ev("e/y", 7)]);
    assert!(resp.events.iter().all(|e| e.kv.lease == 0 && e.kv.version == 0 && e.kv.create_revision == 0));
    nothing_waiting(&stream);
}

// ---- prev_kv (3.4) ----

pub fn watch_prev_kv_is_set_for_updates_and_deletes_but_not_creations(h: &Harness) {
    let store = h.open();
    let (_w, live) = store.watch("k", Some(opts().with_prev_key())).unwrap();
    rev_of_put(&store, "k", "v1"); // 2
    rev_of_put(&store, "k", "v2"); // 3
    store.delete("k", None).unwrap(); // 4
    rev_of_put(&store, "k", "v3"); // 5: a new generation
    let check = |resps: &[WatchResponse]| {
        let evs: Vec<_> = resps.iter().flat_map(|r| r.events.clone()).collect();
        assert_eq!(evs.len(), 4);
        assert_eq!(evs[0].prev_kv, None, "creation");
        let prev = evs[1].prev_kv.clone().expect("update has prev_kv");
        assert_eq!(
            *prev,
            KeyValue {
                key: b"k".to_vec(),
                create_revision: 2,
                mod_revision: 2,
                version: 1,
                value: b"v1".to_vec(),
                lease: 0
            }
        );
        let prev = evs[2].prev_kv.clone().expect("delete has prev_kv");
        assert_eq!((prev.value.as_slice(), prev.mod_revision, prev.version), (&b"v2"[..], 3, 2));
        assert_eq!(evs[3].prev_kv, None, "re-creation after a delete");
    };
    check(&take_events(&live, 4));
    let (_w, past) = store.watch("k", Some(opts().with_prev_key().with_start_revision(2))).unwrap();
    check(&take_events(&past, 4));
}

pub fn watch_prev_kv_is_left_out_when_the_previous_revision_is_compacted(h: &Harness) {
    let store = h.open();
    rev_of_put(&store, "k", "v1"); // 2
    rev_of_put(&store, "k", "v2"); // 3
    rev_of_put(&store, "k", "v3"); // 4
    store.compact(3, None).unwrap();
    let (_w, stream) = store.watch("k", Some(opts().with_prev_key().with_start_revision(3))).unwrap();
    let evs: Vec<_> = take_events(&stream, 2).iter().flat_map(|r| r.events.clone()).collect();
    assert_eq!((evs[0].kv.value.as_slice(), evs[0].kv.mod_revision), (&b"v2"[..], 3));
    // Its previous revision, 2, is below the compaction: no prev_kv.
    assert_eq!(evs[0].prev_kv, None);
    assert_eq!(evs[1].prev_kv.as_ref().map(|p| p.value.as_slice()), Some(&b"v2"[..]));
    rev_of_put(&store, "k", "v4"); // 5
    let live = next(&stream);
    assert_eq!(
        live.events[0].prev_kv.as_ref().map(|p| (p.value.as_slice(), p.mod_revision)),
        Some((&b"v3"[..], 4))
    );
}

pub fn a_watch_event_keeps_its_prev_kv_when_compaction_comes_before_the_read(h: &Harness) {
    // etcd's sendLoop looks prev_kv up as soon as the event leaves the watcher, whether or
    // not the client reads: a compaction after the event cannot take its prev_kv away.
    let store = h.open();
    let (_w, stream) = store.watch("k", Some(opts().with_prev_key())).unwrap();
    rev_of_put(&store, "k", "v1"); // 2
    rev_of_put(&store, "k", "v2"); // 3
    store.compact(3, None).unwrap();
    let evs: Vec<_> = take_events(&stream, 2).iter().flat_map(|r| r.events.clone()).collect();
    assert_eq!(evs[0].prev_kv, None, "creation");
    let prev = evs[1].prev_kv.as_ref().map(|p| (p.value.as_slice(), p.mod_revision));
    assert_eq!(prev, Some((&b"v1"[..], 2)), "prev_kv of the update at 3, sent before the compaction");
}

pub fn watch_events_read_after_the_store_drops_keep_their_prev_kv(h: &Harness) {
    let store = h.open();
    let (_w, stream) = store.watch("k", Some(opts().with_prev_key())).unwrap();
    rev_of_put(&store, "k", "v1"); // 2
    rev_of_put(&store, "k", "v2"); // 3
    drop(store);
    // Whatever still comes must be complete: an update without its prev_kv would read as
    // "previous revision compacted".
    for resp in stream.iter() {
        for e in resp.events.iter().filter(|e| !e.is_create()) {
            assert!(e.prev_kv.is_some(), "event at {} lost its prev_kv: {e:?}", e.kv.mod_revision);
        }
    }
}

// ---- Filters (3.4) ----

pub fn watch_filters_no_put_and_no_delete_send_no_response_for_filtered_events(h: &Harness) {
    let store = h.open();
    let (_w, no_put) = store.watch("k", Some(opts().with_filters([WatchFilterType::NoPut]))).unwrap();
    let (_w, no_delete) = store.watch("k", Some(opts().with_filters([WatchFilterType::NoDelete]))).unwrap();
    let rev = rev_of_put(&store, "k", "v1");
    nothing_waiting(&no_put);
    assert_eq!(all_events(&drain(&no_delete)), [put_ev("k", "v1", rev)]);
    let rev = store.delete("k", None).unwrap().header.revision;
    nothing_waiting(&no_delete);
    assert_eq!(all_events(&drain(&no_put)), [del_ev("k", rev)]);
    let rev = rev_of_put(&store, "k", "v2");
    nothing_waiting(&no_put);
    assert_eq!(all_events(&drain(&no_delete)), [put_ev("k", "v2", rev)]);
    // A revision with both kinds sends only what passes the filter.
    rev_of_put(&store, "j", "x");
    let (_w, range_no_delete) =
        store.watch("a", Some(opts().with_range("zz").with_filters([WatchFilterType::NoDelete]))).unwrap();
    let txn = Txn::new().and_then([TxnOp::delete("j", None), TxnOp::put("l", "x", None)]);
    let rev = store.txn(txn).unwrap().header.revision;
    assert_eq!(all_events(&drain(&range_no_delete)), [put_ev("l", "x", rev)]);
    // A revision with nothing that passes sends nothing; a later one that passes does.
    let txn = Txn::new().and_then([TxnOp::delete("l", None)]);
    store.txn(txn).unwrap();
    nothing_waiting(&range_no_delete);
    let rev = rev_of_put(&store, "m", "x");
    assert_eq!(all_events(&drain(&range_no_delete)), [put_ev("m", "x", rev)]);
}

pub fn watch_filters_apply_to_history_too(h: &Harness) {
    let store = h.open();
    rev_of_put(&store, "k", "v1"); // 2
    store.delete("k", None).unwrap(); // 3
    rev_of_put(&store, "k", "v2"); // 4
    store.delete("k", None).unwrap(); // 5
    let (_w, no_put) =
        store.watch("k", Some(opts().with_start_revision(2).with_filters([WatchFilterType::NoPut]))).unwrap();
    let (_w, no_delete) = store
        .watch("k", Some(opts().with_start_revision(2).with_filters([WatchFilterType::NoDelete])))
        .unwrap();
    assert_eq!(all_events(&until_revision(&no_put, 5)), [del_ev("k", 3), del_ev("k", 5)]);
    assert_eq!(all_events(&until_revision(&no_delete, 4)), [put_ev("k", "v1", 2), put_ev("k", "v2", 4)]);
    // Then live, with no trace of the filtered events in between.
    rev_of_put(&store, "k", "v3"); // 6
    store.delete("k", None).unwrap(); // 7
    assert_eq!(all_events(&until_revision(&no_put, 7)), [del_ev("k", 7)]);
    assert_eq!(all_events(&until_revision(&no_delete, 6)), [put_ev("k", "v3", 6)]);
    nothing_waiting(&no_put);
    nothing_waiting(&no_delete);
}

// ---- History (3.3) ----

pub fn a_watch_from_a_past_revision_replays_history_then_continues_live(h: &Harness) {
    let store = h.open();
    for i in 1..=5 {
        rev_of_put(&store, "k", &format!("v{i}")); // 2, 4, 6, 8, 10
        rev_of_put(&store, "other", "x"); // 3, 5, 7, 9, 11
    }
    let (watcher, stream) = store.watch_stream();
    watcher.watch("k", from_rev(4)).unwrap();
    watcher.watch("k", from_rev(7)).unwrap();
    // Each watch's created response comes before its own events (the first watch's history
    // may come before the second watch's created response).
    let mut by_id: HashMap<i64, Vec<Ev>> = HashMap::new();
    let mut resps = Vec::new();
    while by_id.values().map(Vec::len).sum::<usize>() < 6 {
        let resp = next(&stream);
        if resp.created {
            assert!(!by_id.contains_key(&resp.watch_id), "created after events: {resp:?}");
            assert_eq!(resp.header.revision, 11);
            by_id.insert(resp.watch_id, Vec::new());
            continue;
        }
        by_id.get_mut(&resp.watch_id).expect("events after created").extend(events(&resp));
        resps.push(resp);
    }
    assert_eq!(
        by_id[&0],
        [put_ev("k", "v2", 4), put_ev("k", "v3", 6), put_ev("k", "v4", 8), put_ev("k", "v5", 10)]
    );
    assert_eq!(by_id[&1], [put_ev("k", "v4", 8), put_ev("k", "v5", 10)]);
    for resp in &resps {
        assert!(resp.header.revision >= 10, "{resp:?}");
    }
    // Live from here, no gap and no repeat.
    assert_eq!(rev_of_put(&store, "k", "v6"), 12);
    let mut live = drain(&stream);
    // Watches of one stream are not ordered among themselves.
    live.sort_by_key(|r| r.watch_id);
    assert_eq!(
        live.iter().map(|r| (r.watch_id, events(r))).collect::<Vec<_>>(),
        [(0, vec![put_ev("k", "v6", 12)]), (1, vec![put_ev("k", "v6", 12)])]
    );
    assert!(live.iter().all(|r| r.header.revision == 12));
}

pub fn a_watch_catching_up_under_concurrent_writes_misses_and_repeats_nothing(h: &Harness) {
    let store = h.open();
    for i in 0..1200 {
        rev_of_put(&store, "k", &i.to_string()); // 2..=1201
    }
    let (_w, stream) = store.watch("k", from_rev(2)).unwrap();
    let resps = std::thread::scope(|s| {
        s.spawn(|| {
            for i in 1200..1500 {
                rev_of_put(&store, "other", "x");
                rev_of_put(&store, "k", &i.to_string());
            }
        });
        take_events(&stream, 1500)
    });
    assert_eq!(store.current_revision(), 1801);
    let mut want: Vec<Ev> = (0..1200).map(|i| put_ev("k", &i.to_string(), i + 2)).collect();
    want.extend((1200..1500).map(|i| put_ev("k", &i.to_string(), 1203 + 2 * (i - 1200))));
    let got = all_events(&resps);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    assert_well_batched(&resps);
    assert!(resps.len() >= 2, "1800 revisions cannot fit one batch");
    let rev = rev_of_put(&store, "k", "last");
    assert_eq!(all_events(&[next(&stream)]), [put_ev("k", "last", rev)]);
    nothing_waiting(&stream);
}

pub fn a_watch_from_a_future_revision_delivers_only_events_from_it_on(h: &Harness) {
    let store = h.open();
    rev_of_put(&store, "k", "v2"); // 2
    let (_w, stream) = store.watch("k", from_rev(5)).unwrap();
    rev_of_put(&store, "k", "v3"); // 3
    rev_of_put(&store, "k", "v4"); // 4
    nothing_waiting(&stream);
    rev_of_put(&store, "k", "v5"); // 5
    rev_of_put(&store, "k", "v6"); // 6
    let resps = drain(&stream);
    assert_eq!(all_events(&resps), [put_ev("k", "v5", 5), put_ev("k", "v6", 6)]);
    assert_eq!(resps.iter().map(|r| r.header.revision).collect::<Vec<_>>(), [5, 6]);
}

pub fn history_written_before_a_reopen_can_be_watched(h: &Harness) {
    let store = h.open();
    rev_of_put(&store, "k", "v1"); // 2
    rev_of_put(&store, "k", "v2"); // 3
    store.delete("k", None).unwrap(); // 4
    let store = h.reopen(store);
    let (_w, past) = store.watch("k", from_rev(2)).unwrap();
    let (_w, now) = store.watch("k", None).unwrap();
    assert_eq!(
        all_events(&take_events(&past, 3)),
        [put_ev("k", "v1", 2), put_ev("k", "v2", 3), del_ev("k", 4)]
    );
    assert_eq!(rev_of_put(&store, "k", "v3"), 5);
    assert_eq!(all_events(&[next(&past)]), [put_ev("k", "v3", 5)]);
    let resp = next(&now);
    assert_eq!((resp.header.revision, events(&resp)), (5, vec![put_ev("k", "v3", 5)]));
}

// ---- Compaction (3.3, 1.4) ----

fn assert_compaction_cancel(resp: &WatchResponse, id: i64, compacted: i64) {
    assert!(resp.canceled, "{resp:?}");
    assert!(!resp.created, "{resp:?}");
    assert_eq!(resp.watch_id, id);
    assert_eq!(resp.compact_revision, compacted);
    assert_eq!(resp.header.revision, 0);
    assert_eq!(resp.cancel_reason, "");
    assert!(resp.events.is_empty());
    assert!(!resp.is_progress_notify());
}

pub fn watch_from_compacted_revision_is_cancelled(h: &Harness) {
    let store = h.open();
    for v in ["v1", "v2", "v3"] {
        rev_of_put(&store, "k", v); // 2, 3, 4
    }
    store.compact(4, None).unwrap();
    let (watcher, stream) = store.watch("k", from_rev(3)).unwrap();
    assert_eq!(watcher.watch_id(), 0);
    assert_compaction_cancel(&next(&stream), 0, 4);
    // The watch is gone.
    rev_of_put(&store, "k", "v4"); // 5
    nothing_waiting(&stream);
    // On a stream: the created response, normal, then the cancel.
    let (watcher, stream) = store.watch_stream();
    assert_eq!(watcher.watch("k", Some(opts().with_start_revision(2).with_watch_id(9))).unwrap(), 9);
    expect_created(&stream, 9, 5);
    assert_compaction_cancel(&next(&stream), 9, 4);
    // No watch is left: a progress request gets no answer, a put no event.
    watcher.request_progress().unwrap();
    rev_of_put(&store, "k", "v5");
    nothing_waiting(&stream);
}

pub fn watch_from_exactly_the_compacted_revision_sees_its_events_including_a_delete(h: &Harness) {
    let store = h.open();
    rev_of_put(&store, "a", "v"); // 2
    rev_of_put(&store, "k", "v"); // 3
    store.delete("k", None).unwrap(); // 4
    store.compact(4, physical()).unwrap();
    let (_w, stream) = store.watch("", Some(opts().with_all_keys().with_start_revision(4))).unwrap();
    let first = next(&stream);
    assert!(!first.canceled, "{first:?}");
    assert_eq!(events(&first), [del_ev("k", 4)]);
    let rev = rev_of_put(&store, "b", "v");
    assert_eq!(all_events(&[next(&stream)]), [put_ev("b", "v", rev)]);
    nothing_waiting(&stream);
}

pub fn a_synced_watcher_is_never_cancelled_by_compaction(h: &Harness) {
    let store = h.open();
    let (watcher, stream) = store.watch("k", None).unwrap();
    for v in ["v1", "v2", "v3"] {
        rev_of_put(&store, "k", v); // 2, 3, 4: left unread
    }
    store.compact(4, physical()).unwrap();
    rev_of_put(&store, "k", "v4"); // 5
    store.compact(5, None).unwrap();
    rev_of_put(&store, "k", "v5"); // 6
    watcher.request_progress().unwrap();
    let resps: Vec<_> = (0..6).map(|_| next(&stream)).collect();
    assert!(resps.iter().all(|r| !r.canceled), "{resps:?}");
    assert_eq!(
        all_events(&resps),
        [
            put_ev("k", "v1", 2),
            put_ev("k", "v2", 3),
            put_ev("k", "v3", 4),
            put_ev("k", "v4", 5),
            put_ev("k", "v5", 6)
        ]
    );
    assert!(resps[5].is_progress_notify());
    nothing_waiting(&stream);
}

pub fn watches_from_the_past_racing_writes_and_compaction_are_complete_or_cancelled(h: &Harness) {
    let store = h.open();
    for i in 0..100 {
        rev_of_put(&store, &format!("k/{}", i % 10), "x"); // 2..=101
    }
    let writing = std::sync::atomic::AtomicBool::new(true);
    let (mut complete, mut cancelled) = (0, 0);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..1500 {
                rev_of_put(&store, &format!("k/{}", i % 10), "y");
            }
            writing.store(false, std::sync::atomic::Ordering::SeqCst);
        });
        s.spawn(|| {
            let mut compacted = 0;
            let mut physical_next = false;
            while writing.load(std::sync::atomic::Ordering::SeqCst) {
                let target = store.current_revision() - 40;
                if target > compacted {
                    let options = if physical_next { physical() } else { None };
                    store.compact(target, options).unwrap();
                    compacted = target;
                    physical_next = !physical_next;
                }
                std::thread::yield_now();
            }
        });
        for j in 0..40 {
            // Every revision from 2 on is a put under k/, so a watch of k/ from `start` must
            // see each revision from `start` on, until it is cancelled for a compacted one.
            let now = store.current_revision();
            let start = (now - 30 - (j % 30)).max(2);
            let (_w, stream) =
                store.watch("k/", Some(opts().with_prefix().with_start_revision(start))).unwrap();
            let mut expected = start;
            loop {
                let resp = next(&stream);
                if resp.canceled {
                    assert!(
                        expected < resp.compact_revision,
                        "cancelled at compact_revision {} though revision {expected} was still needed \
                         (watch from {start})",
                        resp.compact_revision
                    );
                    assert_eq!(resp.header.revision, 0);
                    cancelled += 1;
                    break;
                }
                for e in &resp.events {
                    assert_eq!(e.kv.mod_revision, expected, "watch from {start}: gap or repeat");
                    expected += 1;
                }
                if expected > now {
                    complete += 1;
                    break;
                }
            }
        }
    });
    assert_eq!(complete + cancelled, 40);
}

// ---- Cancel (3.2) ----

pub fn cancelling_a_watch_sends_a_canceled_response_and_stops_its_events(h: &Harness) {
    let store = h.open();
    let (watcher, stream) = store.watch("k", None).unwrap();
    rev_of_put(&store, "k", "v1"); // 2
    rev_of_put(&store, "other", "x"); // 3
    watcher.cancel().unwrap();
    let resps = drain(&stream);
    assert_eq!(resps.len(), 2, "{resps:?}");
    assert_eq!(events(&resps[0]), [put_ev("k", "v1", 2)]);
    let cancel = &resps[1];
    assert!(cancel.canceled && !cancel.created, "{cancel:?}");
    assert_eq!((cancel.watch_id, cancel.header.revision, cancel.compact_revision), (0, 3, 0));
    assert!(cancel.events.is_empty());
    assert_eq!(cancel.cancel_reason, "");
    rev_of_put(&store, "k", "v2");
    nothing_waiting(&stream);
    // Cancelling it again: an unknown id by now.
    watcher.cancel().unwrap();
    nothing_waiting(&stream);
    // One watch of several: the others go on.
    let (watcher, stream) = store.watch_stream();
    watcher.watch("k", None).unwrap();
    watcher.watch("k", None).unwrap();
    drain(&stream);
    watcher.cancel_by_id(1).unwrap();
    let cancel = next(&stream);
    assert_eq!((cancel.watch_id, cancel.canceled), (1, true));
    let rev = rev_of_put(&store, "k", "v3");
    let resps = drain(&stream);
    assert_eq!(
        resps.iter().map(|r| (r.watch_id, events(r))).collect::<Vec<_>>(),
        [(0, vec![put_ev("k", "v3", rev)])]
    );
}

pub fn cancelling_an_unknown_watch_id_sends_nothing(h: &Harness) {
    let store = h.open();
    let (watcher, stream) = store.watch_stream();
    watcher.cancel_by_id(0).unwrap();
    watcher.cancel_by_id(42).unwrap();
    nothing_waiting(&stream);
    watcher.watch("k", None).unwrap();
    expect_created(&stream, 0, 1);
    watcher.cancel_by_id(42).unwrap();
    watcher.cancel_by_id(-1).unwrap();
    nothing_waiting(&stream);
    // The real watch is untouched.
    let rev = rev_of_put(&store, "k", "v");
    assert_eq!(all_events(&drain(&stream)), [put_ev("k", "v", rev)]);
}

// ---- Progress (3.5) ----

fn assert_progress(resp: &WatchResponse, id: i64, revision: i64) {
    assert!(resp.is_progress_notify(), "{resp:?}");
    assert_eq!(resp.watch_id, id, "{resp:?}");
    assert_eq!(resp.header.revision, revision, "{resp:?}");
    assert!(resp.events.is_empty() && !resp.created && !resp.canceled);
}

pub fn a_watch_progress_request_is_answered_once_after_every_earlier_event(h: &Harness) {
    let store = h.open();
    let (watcher, stream) = store.watch_stream();
    watcher.watch("a", None).unwrap();
    watcher.watch("b", None).unwrap();
    drain(&stream);
    rev_of_put(&store, "a", "1"); // 2
    rev_of_put(&store, "b", "1"); // 3
    rev_of_put(&store, "c", "1"); // 4: nobody watches it
    watcher.request_progress().unwrap();
    let resps = drain(&stream);
    assert_eq!(resps.len(), 3, "{resps:?}");
    assert_eq!((resps[0].watch_id, events(&resps[0])), (0, vec![put_ev("a", "1", 2)]));
    assert_eq!((resps[1].watch_id, events(&resps[1])), (1, vec![put_ev("b", "1", 3)]));
    assert!(!resps[0].is_progress_notify() && !resps[1].is_progress_notify());
    assert_progress(&resps[2], -1, 4);
    // The Watcher of Store::watch asks for its stream, and every later event is above it.
    let (single, single_stream) = store.watch("a", None).unwrap();
    single.request_progress().unwrap();
    assert_progress(&next(&single_stream), -1, 4);
    let rev = rev_of_put(&store, "a", "2");
    assert!(rev > 4);
    assert_eq!(all_events(&drain(&single_stream)), [put_ev("a", "2", rev)]);
}

pub fn a_progress_request_on_a_stream_without_watches_gets_no_answer(h: &Harness) {
    let store = h.open();
    rev_of_put(&store, "k", "v");
    let (watcher, stream) = store.watch_stream();
    watcher.request_progress().unwrap();
    nothing_waiting(&stream);
    // Nor once its only watch is cancelled.
    watcher.watch("k", None).unwrap();
    watcher.cancel_by_id(0).unwrap();
    drain(&stream);
    watcher.request_progress().unwrap();
    nothing_waiting(&stream);
}

pub fn a_watch_progress_request_is_dropped_until_a_future_start_revision_is_reached(h: &Harness) {
    let store = h.open();
    rev_of_put(&store, "k", "v"); // 2
    let (watcher, stream) = store.watch("k", from_rev(4)).unwrap();
    watcher.request_progress().unwrap();
    nothing_waiting(&stream);
    rev_of_put(&store, "x", "v"); // 3
    watcher.request_progress().unwrap();
    nothing_waiting(&stream);
    // A second, synced watch on the stream does not make the stream ready.
    watcher.watch("y", None).unwrap();
    expect_created(&stream, 1, 3);
    watcher.request_progress().unwrap();
    nothing_waiting(&stream);
    rev_of_put(&store, "x", "v"); // 4: the start revision is reached
    watcher.request_progress().unwrap();
    assert_progress(&next(&stream), -1, 4);
    nothing_waiting(&stream);
}

pub fn periodic_progress_carries_the_watch_id_and_skips_ticks_with_events(h: &Harness) {
    let clock = ManualClock::new();
    let store = h.open_with(|o| o.clock(Arc::new(clock.clone())).watch_progress_interval(secs(10)));
    rev_of_put(&store, "k", "v0"); // 2
    let (_w, notified) = store.watch("k", Some(opts().with_progress_notify().with_watch_id(5))).unwrap();
    let (_w, plain) = store.watch("k", None).unwrap();
    let (_w, future) =
        store.watch("k", Some(opts().with_progress_notify().with_start_revision(100))).unwrap();
    clock.advance(secs(5));
    nothing_waiting(&notified);
    clock.advance(secs(5));
    assert_progress(&notified.recv_timeout(secs(5)).expect("progress notification"), 5, 2);
    nothing_waiting(&notified);
    nothing_waiting(&plain);
    // Not before its start revision.
    nothing_waiting(&future);
    // A tick in which the watch got an event sends no notification; the next one does.
    rev_of_put(&store, "k", "v1"); // 3
    assert_eq!(all_events(&drain(&notified)), [put_ev("k", "v1", 3)]);
    drain(&plain);
    clock.advance(secs(10));
    nothing_waiting(&notified);
    clock.advance(secs(10));
    assert_progress(&notified.recv_timeout(secs(5)).expect("progress notification"), 5, 3);
    nothing_waiting(&notified);
    nothing_waiting(&plain);
    nothing_waiting(&future);
}

// ---- Slow readers (3.4) ----

pub fn a_slow_watch_reader_blocks_no_writer_and_catches_up_without_gap_or_repeat(h: &Harness) {
    let store = h.open_with(|o| o.watch_stream_capacity(2));
    let (slow_watcher, slow) = store.watch("k", None).unwrap();
    let (_w, fast) = store.watch("k", None).unwrap();
    let mut want = Vec::new();
    for i in 0..50 {
        let rev = rev_of_put(&store, "k", &i.to_string());
        want.push(put_ev("k", &i.to_string(), rev));
        // The prompt reader gets each event while the slow one reads nothing.
        assert_eq!(all_events(&[next(&fast)]), [put_ev("k", &i.to_string(), rev)]);
    }
    let resps = take_events(&slow, 50);
    assert_eq!(all_events(&resps), want);
    assert_well_batched(&resps);
    // Caught up: a progress request is answered, at the last revision.
    slow_watcher.request_progress().unwrap();
    assert_progress(&next(&slow), -1, 51);
    // Caught up: live again.
    let rev = rev_of_put(&store, "k", "after");
    assert_eq!(all_events(&[next(&slow)]), [put_ev("k", "after", rev)]);
    nothing_waiting(&slow);
    assert_eq!(all_events(&drain(&fast)), [put_ev("k", "after", rev)]);
}

pub fn a_slow_watcher_whose_history_is_compacted_is_cancelled(h: &Harness) {
    let store = h.open_with(|o| o.watch_stream_capacity(2));
    let (_w, slow) = store.watch("k", Some(opts().with_watch_id(3))).unwrap();
    for i in 0..10 {
        rev_of_put(&store, "k", &i.to_string()); // 2..=11
    }
    store.compact(11, None).unwrap();
    let resps: Vec<_> = (0..3).map(|_| next(&slow)).collect();
    assert_eq!(all_events(&resps[..2]), [put_ev("k", "0", 2), put_ev("k", "1", 3)]);
    assert_compaction_cancel(&resps[2], 3, 11);
    rev_of_put(&store, "k", "later");
    nothing_waiting(&slow);
}

pub fn a_watch_replaying_long_history_into_a_one_response_stream_gets_every_event(h: &Harness) {
    let store = h.open_with(|o| o.watch_stream_capacity(1));
    for i in 0..2500 {
        rev_of_put(&store, "k", &i.to_string()); // 2..=2501
    }
    let (_w, stream) = store.watch("k", from_rev(2)).unwrap();
    let resps = take_events(&stream, 2500);
    let want: Vec<Ev> = (0..2500).map(|i| put_ev("k", &i.to_string(), i + 2)).collect();
    assert_eq!(all_events(&resps), want);
    assert_well_batched(&resps);
    assert!(resps.len() >= 3, "2500 revisions need three batches");
    let rev = rev_of_put(&store, "k", "live");
    assert_eq!(all_events(&[next(&stream)]), [put_ev("k", "live", rev)]);
}

pub fn a_watch_reader_racing_writers_on_a_small_stream_misses_and_repeats_nothing(h: &Harness) {
    let store = h.open_with(|o| o.watch_stream_capacity(2));
    let (watcher, stream) = store.watch_stream();
    watcher.watch("a", None).unwrap();
    watcher.watch("b", Some(opts().with_prev_key())).unwrap();
    drain(&stream);
    const N: i64 = 1000;
    let resps = std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..N {
                rev_of_put(&store, "a", &i.to_string()); // 2 + 2i
                rev_of_put(&store, "b", &i.to_string()); // 3 + 2i
            }
        });
        let mut resps: HashMap<i64, Vec<WatchResponse>> = HashMap::new();
        let mut n = 0;
        while n < 2 * N as usize {
            let resp = next(&stream);
            assert!(!resp.created && !resp.canceled && !resp.events.is_empty(), "{resp:?}");
            n += resp.events.len();
            resps.entry(resp.watch_id).or_default().push(resp);
        }
        resps
    });
    for (id, key, first) in [(0, "a", 2), (1, "b", 3)] {
        let want: Vec<Ev> = (0..N).map(|i| put_ev(key, &i.to_string(), first + 2 * i)).collect();
        assert_eq!(all_events(&resps[&id]), want, "watch {id}");
        assert_well_batched(&resps[&id]);
    }
    for (i, e) in resps[&1].iter().flat_map(|r| &r.events).enumerate().skip(1) {
        let prev = e.prev_kv.as_ref().expect("prev_kv of an update");
        assert_eq!(prev.value, (i - 1).to_string().into_bytes());
    }
    nothing_waiting(&stream);
}

pub fn periodic_watch_progress_is_not_sent_to_a_watcher_that_fell_behind(h: &Harness) {
    let clock = ManualClock::new();
    let store = h.open_with(|o| {
        o.clock(Arc::new(clock.clone())).watch_progress_interval(secs(10)).watch_stream_capacity(2)
    });
    let (_w, stream) = store.watch("k", Some(opts().with_progress_notify())).unwrap();
    for v in ["v1", "v2", "v3"] {
        rev_of_put(&store, "k", v); // 2, 3: in the stream; 4: the watcher falls behind
    }
    clock.advance(secs(10)); // events went out in this interval: no notification
    clock.advance(secs(10)); // quiet, but behind: no notification
    let resps = take_events(&stream, 3);
    assert_eq!(all_events(&resps), [put_ev("k", "v1", 2), put_ev("k", "v2", 3), put_ev("k", "v3", 4)]);
    clock.advance(secs(10)); // the catch-up sent events in this interval
    nothing_waiting(&stream);
    clock.advance(secs(10));
    assert_progress(&next(&stream), 0, 4);
    nothing_waiting(&stream);
}

pub fn cancelling_a_watch_that_fell_behind_ends_its_catch_up(h: &Harness) {
    let store = h.open_with(|o| o.watch_stream_capacity(2));
    let (watcher, stream) = store.watch("k", None).unwrap();
    for i in 0..5 {
        rev_of_put(&store, "k", &i.to_string()); // 2, 3 in the stream; 4..=6 left behind
    }
    watcher.cancel().unwrap();
    let resps: Vec<_> = (0..3).map(|_| next(&stream)).collect();
    assert_eq!(all_events(&resps[..2]), [put_ev("k", "0", 2), put_ev("k", "1", 3)]);
    assert!(resps[2].canceled, "{:?}", resps[2]);
    assert_eq!((resps[2].watch_id, resps[2].header.revision), (0, 6));
    // No watch is left behind: a new one makes the stream ready for a progress request,
    // and nothing of the cancelled watch comes before or after it.
    assert_eq!(watcher.watch("fence", None).unwrap(), 1);
    expect_created(&stream, 1, 6);
    watcher.request_progress().unwrap();
    assert_progress(&next(&stream), -1, 6);
    rev_of_put(&store, "k", "late");
    nothing_waiting(&stream);
}

// ---- Ends of streams ----

pub fn dropping_the_stream_cancels_its_watches(h: &Harness) {
    let store = h.open();
    let (watcher, stream) = store.watch("k", None).unwrap();
    let (_other, other_stream) = store.watch("k", None).unwrap();
    drop(stream);
    assert_eq!(watcher.watch("x", None).unwrap_err(), Error::WatchCanceled);
    assert_eq!(watcher.cancel().unwrap_err(), Error::WatchCanceled);
    assert_eq!(watcher.request_progress().unwrap_err(), Error::WatchCanceled);
    // Writers and other streams go on.
    let rev = rev_of_put(&store, "k", "v");
    assert_eq!(all_events(&drain(&other_stream)), [put_ev("k", "v", rev)]);
    // So they do when the stream goes while its watch is still catching up.
    for i in 0..300 {
        rev_of_put(&store, "h", &i.to_string());
    }
    for _ in 0..20 {
        let (_w, catching_up) = store.watch("h", from_rev(2)).unwrap();
        drop(catching_up);
    }
    let rev = rev_of_put(&store, "k", "v2");
    assert_eq!(all_events(&drain(&other_stream)), [put_ev("k", "v2", rev)]);
}

pub fn dropping_the_store_ends_its_watch_streams(h: &Harness) {
    let store = h.open();
    let (watcher, stream) = store.watch("k", None).unwrap();
    rev_of_put(&store, "k", "v"); // 2
    drop(store);
    // What was sent is still read, then the stream ends.
    assert_eq!(all_events(&[next(&stream)]), [put_ev("k", "v", 2)]);
    assert_eq!(stream.recv_timeout(WAIT).unwrap_err(), RecvTimeoutError::Disconnected);
    assert_eq!(stream.recv(), None);
    assert_eq!(stream.iter().count(), 0);
    assert_eq!(watcher.watch("k", None).unwrap_err(), Error::WatchCanceled);
}

// ---- Async ----

/// Awaits the next response, reporting on `pending` the first time the stream has nothing
/// yet (so the caller knows its waker is registered).
async fn next_reporting_pending(
    stream: &mut WatchStream,
    pending: &mpsc::Sender<()>,
) -> Option<WatchResponse> {
    let mut reported = false;
    std::future::poll_fn(|cx| {
        let poll = Pin::new(&mut *stream).poll_next(cx);
        if poll.is_pending() && !reported {
            reported = true;
            let _ = pending.send(());
        }
        poll
    })
    .await
}

pub fn an_async_watch_reader_is_woken_by_each_event(h: &Harness) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = h.open();
    let (_w, mut stream) = store.watch("k", None).unwrap();
    let (pending_tx, pending_rx) = mpsc::channel();
    let reader = runtime.spawn(async move {
        let mut got = Vec::new();
        for _ in 0..3 {
            let resp = next_reporting_pending(&mut stream, &pending_tx).await.expect("stream open");
            got.extend(events(&resp));
        }
        let by_next = stream.next().await.expect("stream open");
        let by_message = stream.message().await.expect("stream open");
        got.extend(events(&by_next));
        got.extend(events(&by_message));
        got
    });
    let mut want = Vec::new();
    for i in 0..3 {
        // Each put comes while the reader waits on an empty stream: the put must wake it.
        pending_rx.recv_timeout(WAIT).expect("the reader waits for an event");
        let value = format!("v{i}");
        want.push(put_ev("k", &value, rev_of_put(&store, "k", &value)));
    }
    for value in ["x", "y"] {
        want.push(put_ev("k", value, rev_of_put(&store, "k", value)));
    }
    let got =
        runtime.block_on(async { tokio::time::timeout(WAIT, reader).await }).expect("reader done").unwrap();
    assert_eq!(got, want);
}

pub fn an_async_watch_reader_sees_the_stream_end_when_the_store_drops(h: &Harness) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = h.open();
    let (_w, mut stream) = store.watch("k", None).unwrap();
    let rev = rev_of_put(&store, "k", "v");
    let (pending_tx, pending_rx) = mpsc::channel();
    let reader = runtime.spawn(async move {
        let first = stream.next().await.map(|r| events(&r));
        let end = next_reporting_pending(&mut stream, &pending_tx).await;
        (first, end)
    });
    pending_rx.recv_timeout(WAIT).expect("the reader waits after the first event");
    drop(store);
    let (first, end) =
        runtime.block_on(async { tokio::time::timeout(WAIT, reader).await }).expect("reader done").unwrap();
    assert_eq!(first, Some(vec![put_ev("k", "v", rev)]));
    assert_eq!(end, None);
}
