//! The in-memory index: every key's history, in key order.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use super::key_history::KeyHistory;
use super::{KeyRange, Revision};

/// Maps each key to its [`KeyHistory`]; answers "which revision of which keys is visible at
/// revision r". Rebuilt from the engine on open.
///
/// Keys are boxed slices (no capacity word); after a restore, [`shrink_to_fit`]
/// (Index::shrink_to_fit) rebuilds the map with full nodes.
#[derive(Default)]
pub(crate) struct Index {
    keys: BTreeMap<Box<[u8]>, KeyHistory>,
}

impl Index {
    /// Visits the histories of the keys in `range`, in key order.
    fn visit<'a>(&'a self, range: KeyRange<'_>, mut f: impl FnMut(&'a [u8], &'a KeyHistory)) {
        let (start, end) = match range {
            KeyRange::Key(key) => {
                if let Some((k, h)) = self.keys.get_key_value(key) {
                    f(k, h);
                }
                return;
            }
            KeyRange::Range(start, end) if end <= start => return,
            KeyRange::Range(start, end) => (start, Bound::Excluded(end)),
            KeyRange::From(start) => (start, Bound::Unbounded),
        };
        for (k, h) in self.keys.range::<[u8], _>((Bound::Included(start), end)) {
            f(k, h);
        }
    }

    /// The revisions visible at `at` in `range`, in key order, at most `limit` of them
    /// (0: no limit), and how many there are in all.
    pub fn revisions(&self, range: KeyRange<'_>, at: i64, limit: usize) -> (Vec<Revision>, usize) {
        let mut revs = Vec::new();
        let mut total = 0;
        self.visit(range, |_, h| {
            if let Some(rev) = h.visible(at) {
                if limit == 0 || revs.len() < limit {
                    revs.push(rev);
                }
                total += 1;
            }
        });
        (revs, total)
    }

    /// The revision of `key` visible at `at`: [`revisions`](Index::revisions) of one key,
    /// without building a list.
    pub fn visible(&self, key: &[u8], at: i64) -> Option<Revision> {
        self.keys.get(key)?.visible(at)
    }

    /// How many keys in `range` are visible at `at`.
    pub fn count(&self, range: KeyRange<'_>, at: i64) -> usize {
        let mut total = 0;
        self.visit(range, |_, h| total += usize::from(h.visible(at).is_some()));
        total
    }

    /// The keys in `range` visible at `at`, in key order.
    pub fn keys(&self, range: KeyRange<'_>, at: i64) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        self.visit(range, |k, h| {
            if h.visible(at).is_some() {
                keys.push(k.to_vec());
            }
        });
        keys
    }

    /// Records a write's put of `key` at `rev`, continuing the key's live generation or
    /// starting one; returns the `create_revision` and `version` the put gives the key.
    pub fn put_next(&mut self, key: &[u8], rev: Revision) -> (i64, i64) {
        self.with_history(key, |h| h.put_next(rev))
    }

    /// Records a put with the `created` and `version` it wrote (restoring from records).
    pub fn put(&mut self, key: &[u8], rev: Revision, created: i64, version: i64) {
        self.with_history(key, |h| h.put(rev, created, version))
    }

    /// Records a delete.
    pub fn tombstone(&mut self, key: &[u8], rev: Revision) {
        self.with_history(key, |h| h.tombstone(rev))
    }

    /// Runs `f` on `key`'s history, created empty if the key has none. One lookup for a
    /// known key; the key is copied only for a new one.
    fn with_history<R>(&mut self, key: &[u8], f: impl FnOnce(&mut KeyHistory) -> R) -> R {
        if let Some(h) = self.keys.get_mut(key) {
            return f(h);
        }
        f(self.keys.entry(key.into()).or_default())
    }

    /// Gives back the room the index grew into beyond what it holds: every history's
    /// vectors exact-sized, and the map rebuilt from its sorted entries, which fills its
    /// nodes (inserting in key order leaves them about half full, and a restore inserts
    /// each key's first change in revision order, often key order).
    pub fn shrink_to_fit(&mut self) {
        let keys = std::mem::take(&mut self.keys);
        self.keys = keys
            .into_iter()
            .map(|(key, mut h)| {
                h.shrink_to_fit();
                (key, h)
            })
            .collect();
    }

    /// Compacts every history at `at`; returns the revisions at or below `at` that remain.
    pub fn compact(&mut self, at: i64) -> HashSet<Revision> {
        let mut keep = HashSet::new();
        self.keys.retain(|_, h| {
            h.compact(at, &mut |rev| {
                keep.insert(rev);
            });
            !h.is_empty()
        });
        keep
    }

    /// etcd's `treeIndex.Keep`: the change of each key that HashKV at `at` counts (see
    /// [`KeyHistory::hash_keep`]).
    pub fn hash_keep(&self, at: i64) -> HashSet<Revision> {
        self.keys.values().filter_map(|h| h.hash_keep(at)).collect()
    }

    /// Every retained change at or below main revision `at`: after a compaction at `at`,
    /// the records it leaves in the engine once its deletions are done.
    pub fn retained_up_to(&self, at: i64) -> HashSet<Revision> {
        let mut retained = HashSet::new();
        for h in self.keys.values() {
            h.retained_up_to(at, &mut |rev| {
                retained.insert(rev);
            });
        }
        retained
    }

    /// Undoes the changes above main revision `main` to `keys`.
    pub fn rollback_after<'k>(&mut self, keys: impl IntoIterator<Item = &'k [u8]>, main: i64) {
        for key in keys {
            if let Some(h) = self.keys.get_mut(key) {
                h.rollback_after(main);
                if h.is_empty() {
                    self.keys.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        let mut index = Index::default();
        index.put(b"a", Revision::new(2, 0), 2, 1);
        index.put(b"b", Revision::new(3, 0), 3, 1);
        index.put(b"c", Revision::new(4, 0), 4, 1);
        index.tombstone(b"b", Revision::new(5, 0));
        index
    }

    #[test]
    fn revisions_count_every_visible_key_but_return_at_most_limit() {
        let index = index();
        let (revs, total) = index.revisions(KeyRange::From(b"a"), 4, 2);
        assert_eq!(revs, vec![Revision::new(2, 0), Revision::new(3, 0)]);
        assert_eq!(total, 3);
        let (revs, total) = index.revisions(KeyRange::From(b"a"), 5, 0);
        assert_eq!(revs.len(), 2);
        assert_eq!(total, 2);
        assert_eq!(index.count(KeyRange::Range(b"a", b"c"), 4), 2);
    }

    #[test]
    fn an_inverted_range_is_empty() {
        let index = index();
        assert_eq!(index.revisions(KeyRange::Range(b"c", b"a"), 4, 0), (vec![], 0));
        assert_eq!(index.keys(KeyRange::Range(b"b", b"b"), 4), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn compaction_forgets_keys_deleted_before_the_target() {
        let mut index = index();
        let keep = index.compact(6);
        assert_eq!(keep, HashSet::from([Revision::new(2, 0), Revision::new(4, 0)]));
        assert_eq!(index.keys(KeyRange::From(b"a"), 6), vec![b"a".to_vec(), b"c".to_vec()]);
        assert!(!index.keys.contains_key(b"b".as_slice()));
    }

    #[test]
    fn hash_keep_and_retained_after_a_compaction() {
        let mut index = index();
        index.compact(5);
        // b's tombstone at 5 is retained by compaction but not kept by HashKV.
        assert_eq!(
            index.retained_up_to(5),
            HashSet::from([Revision::new(2, 0), Revision::new(4, 0), Revision::new(5, 0)])
        );
        assert_eq!(index.hash_keep(5), HashSet::from([Revision::new(2, 0), Revision::new(4, 0)]));
    }

    #[test]
    fn rollback_removes_keys_created_by_the_failed_write() {
        let mut index = index();
        index.put(b"d", Revision::new(6, 0), 6, 1);
        index.rollback_after([b"d".as_slice()], 5);
        assert!(!index.keys.contains_key(b"d".as_slice()));
    }
}
