//! etcd's HashKV: a CRC-32C (Castagnoli) of the history, computed as etcd 3.5 computes it
//! over its bbolt `key` bucket (`server/mvcc/hash.go`), so that the same history gives the
//! same hash here and on an etcd member.
//!
//! The hash covers the bucket name `key`, then each record of the `kv` keyspace in revision
//! order whose main revision is at or below the target, as its key in etcd's form (main,
//! `_`, sub, plus `t` for a tombstone: etcdlite stores it without the `_`) followed by its
//! value (the same `mvccpb.KeyValue` bytes etcd stores). Two kinds of records are left out:
//! - Records at or below the compacted revision that etcd's `Keep(target)` does not keep
//!   ([`Index::hash_keep`](super::index::Index::hash_keep)). When it keeps nothing at all,
//!   etcd skips nothing, and here every record the compaction retained counts. Records
//!   that an unfinished compaction has not deleted yet never count, so the hash does not
//!   depend on how far physical compaction has got.
//! - A tombstone exactly at the compacted revision: etcd 3.5.16+ keeps it where older
//!   versions delete it, and skips it in the hash so that both versions agree.

use std::collections::HashSet;

use super::record;
use super::Revision;
use crate::engine::{try_scan, Bounds, Direction, EngineError, EngineRead, Keyspace};

/// etcd's name of the bucket holding the history; the hash starts with it.
const KEY_BUCKET: &[u8] = b"key";

/// The result of a HashKV: etcd's `KeyValueHash`, plus the current revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvHash {
    /// The CRC-32C of the history up to `revision`.
    pub hash: u32,
    /// The compacted revision the hash was computed with (-1 before any compaction).
    pub compact_revision: i64,
    /// The revision the hash covers history up to (etcd 3.6's `hash_revision`).
    pub revision: i64,
    /// The store's revision when the hash was computed.
    pub current_revision: i64,
}

/// Hashes the `kv` keyspace of `view` up to main revision `target`. `kept` holds the
/// records at or below `compacted` that count: etcd's `Keep(target)`, or when that is
/// empty, every record the compaction retained.
pub(super) fn hash_records(
    view: &dyn EngineRead,
    target: i64,
    compacted: i64,
    kept: &HashSet<Revision>,
) -> Result<u32, EngineError> {
    let mut crc = crc32c::crc32c(KEY_BUCKET);
    if target < 1 {
        // No record can be at or below it; etcd hashes the bucket name alone.
        return Ok(crc);
    }
    let end = record::revision_start(target.saturating_add(1));
    try_scan(view, Keyspace::Kv, Bounds::new(&[], &end), Direction::Forward, &mut |key, value| {
        let (rev, tombstone) = record::decode_key(key)?;
        if counts(rev, tombstone, compacted, kept) {
            crc = crc32c::crc32c_append(crc, &etcd_revision_key(rev, tombstone));
            crc = crc32c::crc32c_append(crc, value);
        }
        Ok(())
    })?;
    Ok(crc)
}

/// etcd's `kvHasher.WriteKeyValue` filter, for a record already known to be at or below
/// the target.
fn counts(rev: Revision, tombstone: bool, compacted: i64, kept: &HashSet<Revision>) -> bool {
    if rev.main <= compacted && !kept.contains(&rev) {
        return false;
    }
    !(tombstone && rev.main == compacted)
}

/// etcd's `revToBytes` (plus its tombstone mark): main, `_`, sub, and `t` for a delete.
fn etcd_revision_key(rev: Revision, tombstone: bool) -> Vec<u8> {
    let mut key = Vec::with_capacity(18);
    key.extend_from_slice(&rev.main.to_be_bytes());
    key.push(b'_');
    key.extend_from_slice(&rev.sub.to_be_bytes());
    if tombstone {
        key.push(b't');
    }
    key
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::MemoryEngine;
    use crate::error::Error;
    use crate::mvcc::{KeyRange, MvccStore};

    fn store() -> MvccStore {
        MvccStore::open(Arc::new(MemoryEngine::new()), false, 1000).unwrap()
    }

    fn put(store: &MvccStore, key: &str, value: &str) {
        let mut txn = store.write();
        txn.put(key.as_bytes(), value.as_bytes().to_vec(), 0);
        txn.commit().unwrap();
    }

    fn delete(store: &MvccStore, range: KeyRange<'_>) {
        let mut txn = store.write();
        txn.delete_range(range);
        txn.commit().unwrap();
    }

    fn hash_at(store: &MvccStore, rev: i64) -> u32 {
        store.hash_kv(rev).unwrap().hash
    }

    /// The history of the etcd session below (etcd 3.4.23; `e` is
    /// `ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:23799`, hashes from
    /// `e endpoint hashkv --rev=R -w json`):
    ///
    /// ```text
    /// e put a 1; e put b 2; e put a 3; e del b          # revisions 2, 3, 4, 5
    /// printf '\nput c 4\nput d 5\n\n\n' | e txn          # 6 (c at 6.0, d at 6.1)
    /// e del a; e put a 6                                 # 7, 8
    /// ```
    fn etcd_history() -> MvccStore {
        let store = store();
        put(&store, "a", "1");
        put(&store, "b", "2");
        put(&store, "a", "3");
        delete(&store, KeyRange::Key(b"b"));
        let mut txn = store.write();
        txn.put(b"c", b"4".to_vec(), 0);
        txn.put(b"d", b"5".to_vec(), 0);
        txn.commit().unwrap();
        delete(&store, KeyRange::Key(b"a"));
        put(&store, "a", "6");
        store
    }

    #[test]
    fn an_empty_store_hashes_the_bucket_name_alone() {
        // etcd 3.4.23, fresh member: `e endpoint hashkv` gives 1084519789.
        let store = store();
        let hash = store.hash_kv(0).unwrap();
        assert_eq!(
            hash,
            KvHash { hash: 1_084_519_789, compact_revision: -1, revision: 1, current_revision: 1 }
        );
        assert_eq!(hash.hash, crc32c::crc32c(b"key"));
    }

    #[test]
    fn hashes_match_etcd_at_every_revision_of_an_uncompacted_history() {
        let store = etcd_history();
        let etcd = [
            (0, 1_029_331_830),
            (2, 2_587_454_935),
            (4, 2_069_675_932),
            (5, 1_125_682_900),
            (6, 3_853_268_819),
            (7, 2_469_517_322),
            (8, 1_029_331_830),
            // A negative revision passes etcd's checks and hashes no record.
            (-1, 1_084_519_789),
        ];
        for (rev, want) in etcd {
            assert_eq!(hash_at(&store, rev), want, "revision {rev}");
        }
        let hash = store.hash_kv(4).unwrap();
        assert_eq!((hash.revision, hash.current_revision, hash.compact_revision), (4, 8, -1));
    }

    #[test]
    fn hashes_match_etcd_after_compactions_at_tombstones() {
        let store = etcd_history();
        // `e compact 5 --physical`: b's tombstone is at 5.
        store.compact(5).unwrap().wait().unwrap();
        for (rev, want) in [(0, 2_595_435_283), (6, 4_290_631_835), (7, 4_033_764_365), (8, 2_595_435_283)] {
            assert_eq!(hash_at(&store, rev), want, "revision {rev} after compacting at 5");
        }
        // `e compact 7 --physical`: a's tombstone is at 7.
        store.compact(7).unwrap().wait().unwrap();
        assert_eq!(hash_at(&store, 0), 3_566_796_612);
        assert_eq!(hash_at(&store, 8), 3_566_796_612);
        assert_eq!(store.hash_kv(0).unwrap().compact_revision, 7);
    }

    #[test]
    fn when_keep_is_empty_every_retained_record_counts_as_in_etcd() {
        let store = etcd_history();
        store.compact(7).unwrap().wait().unwrap();
        // `e del "" --from-key` (revision 9): no key is live at 9, so etcd's Keep(9) is
        // empty and c and d's puts at 6, below the compacted revision, count again.
        delete(&store, KeyRange::From(b""));
        assert_eq!(hash_at(&store, 0), 309_006_777);
        assert_eq!(hash_at(&store, 8), 3_566_796_612);
        // `e compact 9 --physical`: only tombstones at 9 remain, which do not count.
        store.compact(9).unwrap().wait().unwrap();
        assert_eq!(hash_at(&store, 0), 1_084_519_789);
    }

    #[test]
    fn leased_keys_and_empty_values_hash_as_in_etcd() {
        let store = etcd_history();
        store.compact(7).unwrap().wait().unwrap();
        delete(&store, KeyRange::From(b""));
        store.compact(9).unwrap().wait().unwrap();
        // `e lease grant 600` (etcd picked 5773a207fac70611); `e put --lease=5773a207fac70611
        // e v` (10); `e put f ""` (11).
        let mut txn = store.write();
        txn.put(b"e", b"v".to_vec(), 0x5773_a207_fac7_0611);
        txn.commit().unwrap();
        put(&store, "f", "");
        assert_eq!(hash_at(&store, 0), 3_884_437_372);
        assert_eq!(hash_at(&store, 10), 1_990_728_005);
    }

    #[test]
    fn the_hash_does_not_depend_on_physical_compaction_progress() {
        let store = etcd_history();
        let done = store.compact(6).unwrap();
        let early = store.hash_kv(0).unwrap();
        done.wait().unwrap();
        assert_eq!(store.hash_kv(0).unwrap(), early);
    }

    #[test]
    fn future_and_compacted_revisions_are_refused() {
        let store = etcd_history();
        assert_eq!(store.hash_kv(9), Err(Error::FutureRevision));
        store.compact(5).unwrap().wait().unwrap();
        assert_eq!(store.hash_kv(4), Err(Error::Compacted));
        // etcd 3.4.23 and 3.5.1 refuse exactly the compacted revision too (checked with
        // scripts/conformance; later releases hash it).
        assert_eq!(store.hash_kv(5), Err(Error::Compacted));
        assert!(store.hash_kv(6).is_ok());
    }

    #[test]
    fn revision_keys_take_etcds_form() {
        let key = etcd_revision_key(Revision::new(258, 1), true);
        assert_eq!(key, b"\0\0\0\0\0\0\x01\x02_\0\0\0\0\0\0\0\x01t");
        assert_eq!(etcd_revision_key(Revision::new(2, 0), false).len(), 17);
    }
}
