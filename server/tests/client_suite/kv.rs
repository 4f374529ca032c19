//! KV: put, get, delete, compact; revisions, versions, ranges and etcd's errors.

use etcdlite::client::{Code, DeleteOptions, GetOptions, PutOptions, SortOrder, SortTarget};

use crate::harness::{within, Target};
use crate::status;

const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";
const FUTURE: &str = "etcdserver: mvcc: required revision is a future revision";

pub async fn put_and_get_report_revisions_and_versions(mut t: Target) {
    let mut c = t.client();
    let put = within("put", c.put("greeting", "hello", None)).await.unwrap();
    let first = put.header().unwrap().revision();
    assert_eq!(first, 2, "a fresh store's first write is revision 2");
    assert!(put.prev_key().is_none());

    let got = c.get("greeting", None).await.unwrap();
    assert_eq!(got.count(), 1);
    assert_eq!(got.header().unwrap().revision(), first);
    let kv = &got.kvs()[0];
    assert_eq!((kv.key(), kv.value_str().unwrap()), (&b"greeting"[..], "hello"));
    assert_eq!((kv.create_revision(), kv.mod_revision(), kv.version(), kv.lease()), (first, first, 1, 0));

    t.midpoint().await;
    let second = c.put("greeting", "bonjour", Some(PutOptions::new().with_prev_key())).await.unwrap();
    assert_eq!(second.header().unwrap().revision(), first + 1);
    assert_eq!(second.prev_key().unwrap().value(), b"hello");
    let kv = c.get("greeting", None).await.unwrap().take_kvs().remove(0);
    assert_eq!((kv.create_revision(), kv.mod_revision(), kv.version()), (first, first + 1, 2));

    let then = c.get("greeting", Some(GetOptions::new().with_revision(first))).await.unwrap();
    assert_eq!(then.kvs()[0].value(), b"hello");
    assert_eq!(then.header().unwrap().revision(), first + 1, "the header has the current revision");
    assert!(c.get("nothing", None).await.unwrap().kvs().is_empty());
}

pub async fn ranges_take_prefixes_limits_sorts_and_filters(mut t: Target) {
    let mut c = t.client();
    for name in ["c", "a", "e", "b", "d"] {
        c.put(format!("p/{name}"), name, None).await.unwrap();
    }
    c.put("p0", "outside", None).await.unwrap();
    c.put("o", "before", None).await.unwrap();

    let limited = c.get("p/", Some(GetOptions::new().with_prefix().with_limit(2))).await.unwrap();
    let keys: Vec<_> = limited.kvs().iter().map(|kv| kv.key_str().unwrap().to_owned()).collect();
    assert_eq!(keys, ["p/a", "p/b"]);
    assert!(limited.more());
    assert_eq!(limited.count(), 5);

    let newest = GetOptions::new().with_prefix().with_sort(SortTarget::Mod, SortOrder::Descend).with_limit(1);
    let newest = c.get("p/", Some(newest)).await.unwrap();
    assert_eq!(newest.kvs()[0].key(), b"p/d");

    t.midpoint().await;
    let keys_only = c.get("p/", Some(GetOptions::new().with_prefix().with_keys_only())).await.unwrap();
    assert!(keys_only.kvs().iter().all(|kv| kv.value().is_empty()));
    assert_eq!(keys_only.kvs().len(), 5);

    let counted = c.get("p/", Some(GetOptions::new().with_prefix().with_count_only())).await.unwrap();
    assert!(counted.kvs().is_empty());
    assert_eq!(counted.count(), 5);

    let range = c.get("p/b", Some(GetOptions::new().with_range("p/d"))).await.unwrap();
    assert_eq!(range.kvs().len(), 2);
    let from = c.get("p0", Some(GetOptions::new().with_from_key())).await.unwrap();
    assert_eq!(from.kvs().len(), 1);
    let all = c.get("", Some(GetOptions::new().with_all_keys())).await.unwrap();
    assert_eq!(all.count(), 7);

    // p/c was written at revision 2, p/a at 3 and so on.
    let late = c.get("p/", Some(GetOptions::new().with_prefix().with_min_mod_revision(4))).await.unwrap();
    let keys: Vec<_> = late.kvs().iter().map(|kv| kv.key().to_vec()).collect();
    assert_eq!(keys, [b"p/b".to_vec(), b"p/d".to_vec(), b"p/e".to_vec()]);
    let early = c.get("p/", Some(GetOptions::new().with_prefix().with_max_create_revision(3))).await.unwrap();
    assert_eq!(early.kvs().len(), 2);
}

pub async fn deletes_report_what_they_removed(mut t: Target) {
    let mut c = t.client();
    for key in ["d/1", "d/2", "d/3", "e"] {
        c.put(key, "v", None).await.unwrap();
    }
    let missing = c.delete("nothing", None).await.unwrap();
    assert_eq!(missing.deleted(), 0);
    assert_eq!(missing.header().unwrap().revision(), 5, "deleting nothing takes no revision");

    t.midpoint().await;
    let mut gone = c.delete("d/", Some(DeleteOptions::new().with_prefix().with_prev_key())).await.unwrap();
    assert_eq!(gone.deleted(), 3);
    assert_eq!(gone.header().unwrap().revision(), 6, "one delete of three keys is one revision");
    let keys: Vec<_> = gone.take_prev_kvs().into_iter().map(|kv| kv.into_key_value().0).collect();
    assert_eq!(keys, [b"d/1".to_vec(), b"d/2".to_vec(), b"d/3".to_vec()]);
    assert_eq!(c.get("", Some(GetOptions::new().with_all_keys())).await.unwrap().count(), 1);

    c.put("d/1", "again", None).await.unwrap();
    let kv = c.get("d/1", None).await.unwrap().take_kvs().remove(0);
    assert_eq!((kv.create_revision(), kv.version()), (7, 1), "a deleted key starts a new generation");
}

pub async fn bad_requests_fail_as_etcd_fails_them(mut t: Target) {
    let mut c = t.client();
    c.put("k", "v", None).await.unwrap();
    assert_eq!(
        status(c.put("", "v", None).await),
        (Code::InvalidArgument, "etcdserver: key is not provided".into())
    );
    assert_eq!(
        status(c.get("k", Some(GetOptions::new().with_revision(100))).await),
        (Code::OutOfRange, FUTURE.into())
    );
    assert_eq!(
        status(c.put("k", "v", Some(PutOptions::new().with_lease(0x1234_5678))).await),
        (Code::NotFound, "etcdserver: requested lease not found".into())
    );
    t.midpoint().await;
    assert_eq!(
        status(c.put("missing", "", Some(PutOptions::new().with_ignore_value())).await),
        (Code::InvalidArgument, "etcdserver: key not found".into())
    );
    assert_eq!(
        status(c.put("k", "v", Some(PutOptions::new().with_ignore_value())).await),
        (Code::InvalidArgument, "etcdserver: value is provided".into())
    );
    assert_eq!(status(c.compact(100, None).await), (Code::OutOfRange, FUTURE.into()));
    assert_eq!(
        c.get("k", None).await.unwrap().header().unwrap().revision(),
        2,
        "nothing bad changed anything"
    );
}

pub async fn compaction_keeps_the_latest_values_only(mut t: Target) {
    let mut c = t.client();
    for value in ["1", "2", "3"] {
        c.put("k", value, None).await.unwrap();
    }
    let compacted = c.compact(3, None).await.unwrap();
    assert_eq!(compacted.header().unwrap().revision(), 4);
    t.midpoint().await;
    assert_eq!(
        status(c.get("k", Some(GetOptions::new().with_revision(2))).await),
        (Code::OutOfRange, COMPACTED.into())
    );
    assert_eq!(c.get("k", Some(GetOptions::new().with_revision(3))).await.unwrap().kvs()[0].value(), b"2");
    assert_eq!(c.get("k", None).await.unwrap().kvs()[0].value(), b"3");
    assert_eq!(status(c.compact(3, None).await), (Code::OutOfRange, COMPACTED.into()));
    assert_eq!(status(c.compact(2, None).await), (Code::OutOfRange, COMPACTED.into()));
    c.compact(4, Some(etcdlite::client::CompactionOptions::new().with_physical())).await.unwrap();
    assert_eq!(c.get("k", None).await.unwrap().kvs()[0].version(), 3);
}
