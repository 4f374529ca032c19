//! Watch: history and live events on one stream, cancels, compaction, filters, progress
//! and failed creates, as etcd sends them.

use etcdlite::client::{EventType, WatchFilterType, WatchOptions, WatchResponse, WatchStream};

use crate::harness::{within, Target};

/// The next response of `stream`, which must come.
async fn next(stream: &mut WatchStream) -> WatchResponse {
    within("a watch response", stream.message()).await.expect("a watch response").expect("the stream is open")
}

/// Responses of `stream` until `count` events have come, as (type, key, value, prev value).
async fn events(stream: &mut WatchStream, count: usize) -> Vec<(EventType, String, String, Option<String>)> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let resp = next(stream).await;
        assert!(!resp.canceled(), "the watch was cancelled: {resp:?}");
        for e in resp.events() {
            let kv = e.kv().expect("an event has a key-value");
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            seen.push((
                e.event_type(),
                text(kv.key()),
                text(kv.value()),
                e.prev_kv().map(|p| text(p.value())),
            ));
        }
    }
    seen
}

pub async fn history_then_live_events_in_order(mut t: Target) {
    let mut c = t.client();
    t.midpoint().await;
    c.put("w/a", "1", None).await.unwrap(); // revision 2
    c.put("w/b", "2", None).await.unwrap(); // 3
    c.put("x", "outside", None).await.unwrap(); // 4
    let options = WatchOptions::new().with_prefix().with_start_revision(2).with_prev_key();
    let mut stream = c.watch("w/", Some(options)).await.unwrap();
    let created = next(&mut stream).await;
    assert!(created.created());
    assert_eq!(created.watch_id(), 0, "a stream's first watch is watch 0");
    assert_eq!(created.header().unwrap().revision(), 4);

    c.put("w/a", "3", None).await.unwrap(); // 5
    c.delete("w/b", None).await.unwrap(); // 6
    let seen = events(&mut stream, 4).await;
    let s = |v: &str| v.to_owned();
    assert_eq!(
        seen,
        [
            (EventType::Put, s("w/a"), s("1"), None),
            (EventType::Put, s("w/b"), s("2"), None),
            (EventType::Put, s("w/a"), s("3"), Some(s("1"))),
            (EventType::Delete, s("w/b"), s(""), Some(s("2"))),
        ]
    );
}

pub async fn cancel_ends_a_watch(mut t: Target) {
    let mut c = t.client();
    t.midpoint().await;
    let mut stream = c.watch("k", None).await.unwrap();
    let id = next(&mut stream).await.watch_id();
    c.put("k", "1", None).await.unwrap();
    let resp = next(&mut stream).await;
    assert_eq!((resp.watch_id(), resp.events().len()), (id, 1));
    let kv = resp.events()[0].kv().unwrap();
    assert_eq!((kv.mod_revision(), kv.create_revision(), kv.version()), (2, 2, 1));

    stream.cancel(id).await.unwrap();
    let canceled = next(&mut stream).await;
    assert!(canceled.canceled());
    assert_eq!(canceled.watch_id(), id);
    assert_eq!(canceled.compact_revision(), 0);
    c.put("k", "2", None).await.unwrap();
    stream.cancel(12345).await.unwrap(); // an unknown id is ignored
    stream.watch("other", None).await.unwrap();
    let created = next(&mut stream).await;
    assert!(created.created(), "after the cancel nothing else came first: {created:?}");
}

pub async fn a_watch_from_a_compacted_revision_is_cancelled(mut t: Target) {
    let mut c = t.client();
    for value in ["1", "2", "3"] {
        c.put("k", value, None).await.unwrap(); // revisions 2, 3, 4
    }
    c.compact(3, None).await.unwrap();
    t.midpoint().await;
    let mut stream = c.watch("k", Some(WatchOptions::new().with_start_revision(2))).await.unwrap();
    assert!(next(&mut stream).await.created());
    let canceled = next(&mut stream).await;
    assert!(canceled.canceled());
    assert_eq!(canceled.compact_revision(), 3);
    assert!(canceled.events().is_empty());

    // From the compacted revision itself, history is still there.
    let mut stream = c.watch("k", Some(WatchOptions::new().with_start_revision(3))).await.unwrap();
    assert!(next(&mut stream).await.created());
    let values: Vec<_> = events(&mut stream, 2).await.into_iter().map(|e| e.2).collect();
    assert_eq!(values, ["2", "3"]);
}

pub async fn streams_carry_many_watches_with_filters(mut t: Target) {
    let mut c = t.client();
    t.midpoint().await;
    let no_puts = WatchOptions::new().with_prefix().with_filters([WatchFilterType::NoPut]);
    let mut stream = c.watch("f/", Some(no_puts)).await.unwrap();
    let deletes = next(&mut stream).await.watch_id();
    stream.watch("f/", Some(WatchOptions::new().with_prefix().with_watch_id(7))).await.unwrap();
    let all = next(&mut stream).await;
    assert!(all.created());
    assert_eq!(all.watch_id(), 7);

    c.put("f/1", "v", None).await.unwrap();
    c.delete("f/1", None).await.unwrap();
    let mut by_watch = Vec::new();
    while by_watch.iter().map(|(_, n)| n).sum::<usize>() < 3 {
        let resp = next(&mut stream).await;
        by_watch.push((resp.watch_id(), resp.events().len()));
    }
    by_watch.sort();
    assert_eq!(by_watch, [(deletes, 1), (7, 1), (7, 1)], "the filtered watch saw the delete only");
}

pub async fn progress_is_reported_on_request(mut t: Target) {
    let mut c = t.client();
    t.midpoint().await;
    c.put("p", "1", None).await.unwrap();
    let mut stream = c.watch("elsewhere", None).await.unwrap();
    assert!(next(&mut stream).await.created());
    stream.request_progress().await.unwrap();
    let progress = next(&mut stream).await;
    assert!(progress.is_progress_notify(), "{progress:?}");
    assert_eq!(progress.watch_id(), -1, "a progress answer speaks for the whole stream");
    assert_eq!(progress.header().unwrap().revision(), 2);
}

pub async fn failed_creates_are_answered_in_band(mut t: Target) {
    let mut c = t.client();
    t.midpoint().await;
    let mut stream = c.watch("b", Some(WatchOptions::new().with_range("a"))).await.unwrap();
    let failed = next(&mut stream).await;
    assert!(failed.created() && failed.canceled(), "{failed:?}");
    assert_eq!(failed.watch_id(), -1);
    stream.watch("k", Some(WatchOptions::new().with_watch_id(3))).await.unwrap();
    assert_eq!(next(&mut stream).await.watch_id(), 3);
    stream.watch("k", Some(WatchOptions::new().with_watch_id(3))).await.unwrap();
    let duplicate = next(&mut stream).await;
    assert!(duplicate.created() && duplicate.canceled(), "{duplicate:?}");
    assert_eq!(duplicate.cancel_reason(), "mvcc: duplicate watch ID provided on the WatchStream");
}
