//! The history of one key: its revisions, grouped in generations.
//!
//! One history per key, so its size is the index's size per key: the common key (one
//! generation, one put) lives in the map entry with no allocation of its own, and a key
//! with more puts costs one allocation for them (exact-sized after a restore).

use smallvec::SmallVec;

use super::Revision;

/// The `tombstone` of a generation no delete has ended: main revisions start at 1, so no
/// change is ever at 0.
const OPEN: Revision = Revision::new(0, 0);

/// Every retained change of one key, oldest first.
///
/// Invariant: changes are strictly increasing; a generation runs from a put that created
/// the key to the delete (tombstone) that removed it, and only the last one may be open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyHistory {
    /// Nearly always one: inline.
    generations: SmallVec<[Generation; 1]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Generation {
    /// `create_revision` of the key during this generation.
    created: i64,
    /// `version` of the latest put.
    version: i64,
    /// The puts, ascending; one of them inline. Empty only when compaction kept the
    /// tombstone alone.
    puts: SmallVec<[Revision; 1]>,
    /// The delete that ended the generation, or [`OPEN`].
    ended_by: Revision,
}

impl Generation {
    fn first(&self) -> Revision {
        self.puts.first().copied().or(self.tombstone()).expect("a generation is never empty")
    }

    /// The delete that ended the generation.
    fn tombstone(&self) -> Option<Revision> {
        (self.ended_by != OPEN).then_some(self.ended_by)
    }

    fn is_open(&self) -> bool {
        self.ended_by == OPEN
    }

    /// The retained changes, ascending: the puts, then the tombstone.
    fn changes(&self) -> impl Iterator<Item = Revision> + '_ {
        self.puts.iter().copied().chain(self.tombstone())
    }
}

/// The live state of a key, as a writer needs it to build the next put.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Latest {
    /// The revision of the key's latest put.
    pub revision: Revision,
    /// Its `create_revision`.
    pub created: i64,
    /// Its `version`.
    pub version: i64,
}

impl KeyHistory {
    /// True when nothing of the key is retained.
    pub fn is_empty(&self) -> bool {
        self.generations.is_empty()
    }

    /// The key's live state after every recorded change, if it exists.
    pub fn latest(&self) -> Option<Latest> {
        let g = self.generations.last()?;
        if !g.is_open() {
            return None;
        }
        let revision = *g.puts.last()?;
        Some(Latest { revision, created: g.created, version: g.version })
    }

    /// The put visible at main revision `at`: the key's last change at or before `at`, when
    /// that change is a put.
    pub fn visible(&self, at: i64) -> Option<Revision> {
        let g = self.generations.iter().rev().find(|g| g.first().main <= at)?;
        if g.tombstone().is_some_and(|t| t.main <= at) {
            return None;
        }
        g.puts.iter().rev().find(|r| r.main <= at).copied()
    }

    /// Records a new put at `rev`; returns the `create_revision` and `version` it writes.
    pub fn put_next(&mut self, rev: Revision) -> (i64, i64) {
        let (created, version) = match self.latest() {
            Some(latest) => (latest.created, latest.version + 1),
            None => (rev.main, 1),
        };
        self.put(rev, created, version);
        (created, version)
    }

    /// Records a put at `rev` with the `created` and `version` it wrote.
    pub fn put(&mut self, rev: Revision, created: i64, version: i64) {
        match self.generations.last_mut() {
            Some(g) if g.is_open() => {
                g.puts.push(rev);
                g.version = version;
            }
            _ => self.generations.push(Generation {
                created,
                version,
                puts: SmallVec::from_buf([rev]),
                ended_by: OPEN,
            }),
        }
    }

    /// Records a delete at `rev`. Without an open generation (a history rebuilt after an
    /// interrupted compaction) the tombstone stands alone.
    pub fn tombstone(&mut self, rev: Revision) {
        debug_assert!(rev.main > OPEN.main, "a delete at revision {rev}");
        match self.generations.last_mut() {
            Some(g) if g.is_open() => g.ended_by = rev,
            _ => self.generations.push(Generation {
                created: 0,
                version: 0,
                puts: SmallVec::new(),
                ended_by: rev,
            }),
        }
    }

    /// Drops what compaction at `at` removes and reports the retained change at or below
    /// `at` to `keep`. The last change at or below `at` survives when it is a put, or a
    /// tombstone exactly at `at` (etcd 3.5.16+, so a watch from `at` still sees that delete);
    /// everything older goes.
    pub fn compact(&mut self, at: i64, keep: &mut impl FnMut(Revision)) {
        let Some(first_live) =
            self.generations.iter().position(|g| g.tombstone().is_none_or(|t| t.main >= at))
        else {
            self.generations.clear();
            return;
        };
        self.generations.drain(..first_live);
        let g = &mut self.generations[0];
        if g.tombstone().is_some_and(|t| t.main <= at) {
            g.puts.clear();
        } else if let Some(i) = g.puts.iter().rposition(|r| r.main <= at) {
            g.puts.drain(..i);
        }
        // Compaction usually leaves one put of many: give back the room of the others.
        g.puts.shrink_to_fit();
        self.generations.shrink_to_fit();
        // Every change still retained survives in the engine. Past the first generation there
        // can be some at `at` itself: one txn may delete a key (from-key delete) and put it
        // again, ending a generation at `at.0` and starting the next at `at.1`.
        for g in &self.generations {
            g.changes().filter(|r| r.main <= at).for_each(&mut *keep);
        }
    }

    /// The change HashKV at `at` counts for this key (etcd 3.5's `keyIndex.keep`): in the
    /// first generation not ended before `at`, the last put at or before `at`. Unlike
    /// [`compact`](Self::compact), a generation ending exactly at `at` gives none, so
    /// etcd versions that delete such a tombstone and versions that keep it hash alike.
    pub fn hash_keep(&self, at: i64) -> Option<Revision> {
        let g = self.generations.iter().find(|g| g.tombstone().is_none_or(|t| t.main >= at))?;
        if g.tombstone().is_some_and(|t| t.main <= at) {
            return None;
        }
        g.puts.iter().rev().find(|r| r.main <= at).copied()
    }

    /// Reports every retained change with a main revision at or below `at` to `f`.
    pub fn retained_up_to(&self, at: i64, f: &mut impl FnMut(Revision)) {
        for g in &self.generations {
            g.changes().filter(|r| r.main <= at).for_each(&mut *f);
        }
    }

    /// Gives back the room vectors grew into beyond what they hold (after a restore, whose
    /// pushes leave up to half of each spilled vector unused).
    pub fn shrink_to_fit(&mut self) {
        for g in &mut self.generations {
            g.puts.shrink_to_fit();
        }
        self.generations.shrink_to_fit();
    }

    /// Undoes every change with a main revision above `main` (a write that failed to commit).
    pub fn rollback_after(&mut self, main: i64) {
        while let Some(g) = self.generations.last_mut() {
            let before = g.puts.len();
            while g.puts.last().is_some_and(|r| r.main > main) {
                g.puts.pop();
            }
            g.version -= (before - g.puts.len()) as i64;
            if g.tombstone().is_some_and(|t| t.main > main) {
                g.ended_by = OPEN;
            }
            if !g.puts.is_empty() || !g.is_open() {
                return;
            }
            self.generations.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(main: i64) -> Revision {
        Revision::new(main, 0)
    }

    /// put@2 put@4 del@6 | put@8 put@10 del@12 | put@14
    fn sample() -> KeyHistory {
        let mut h = KeyHistory::default();
        h.put(rev(2), 2, 1);
        h.put(rev(4), 2, 2);
        h.tombstone(rev(6));
        h.put(rev(8), 8, 1);
        h.put(rev(10), 8, 2);
        h.tombstone(rev(12));
        h.put(rev(14), 14, 1);
        h
    }

    fn kept(h: &mut KeyHistory, at: i64) -> Vec<i64> {
        let mut keep = Vec::new();
        h.compact(at, &mut |r| keep.push(r.main));
        keep
    }

    #[test]
    fn visible_follows_generations() {
        let h = sample();
        let seen: Vec<_> = (1..=15).map(|at| h.visible(at).map(|r| r.main)).collect();
        let want = [
            None,
            Some(2),
            Some(2),
            Some(4),
            Some(4),
            None,
            None,
            Some(8),
            Some(8),
            Some(10),
            Some(10),
            None,
            None,
            Some(14),
            Some(14),
        ];
        assert_eq!(seen, want);
        assert_eq!(h.latest().unwrap().version, 1);
    }

    #[test]
    fn compact_keeps_the_last_put_at_or_below_the_target() {
        let mut h = sample();
        assert_eq!(kept(&mut h, 5), vec![4]);
        assert_eq!(h.visible(5).map(|r| r.main), Some(4));
        assert_eq!(h.visible(14).map(|r| r.main), Some(14));
    }

    #[test]
    fn compact_drops_tombstones_below_the_target() {
        let mut h = sample();
        assert_eq!(kept(&mut h, 7), Vec::<i64>::new());
        assert_eq!(h.visible(7), None);
        assert_eq!(h.visible(8).map(|r| r.main), Some(8));
    }

    #[test]
    fn compact_keeps_a_tombstone_exactly_at_the_target() {
        let mut h = sample();
        assert_eq!(kept(&mut h, 12), vec![12]);
        assert_eq!(h.visible(12), None);
        // The next compaction past it removes it.
        assert_eq!(kept(&mut h, 13), Vec::<i64>::new());
        assert_eq!(h.visible(14).map(|r| r.main), Some(14));
    }

    #[test]
    fn compact_past_a_final_tombstone_empties_the_history() {
        let mut h = KeyHistory::default();
        h.put(rev(2), 2, 1);
        h.tombstone(rev(3));
        kept(&mut h, 4);
        assert!(h.is_empty());
    }

    #[test]
    fn compact_keeps_a_put_that_shares_the_target_with_a_tombstone() {
        // put@2, then one txn at 3: delete (3.0) and put again (3.1).
        let mut h = KeyHistory::default();
        h.put(rev(2), 2, 1);
        h.tombstone(Revision::new(3, 0));
        h.put(Revision::new(3, 1), 3, 1);
        let mut keep = Vec::new();
        h.compact(3, &mut |r| keep.push(r));
        assert_eq!(keep, vec![Revision::new(3, 0), Revision::new(3, 1)]);
        assert_eq!(h.visible(3), Some(Revision::new(3, 1)));
    }

    #[test]
    fn hash_keep_is_the_last_put_at_or_before_the_target_in_its_generation() {
        let h = sample();
        let kept: Vec<_> = (1..=15).map(|at| h.hash_keep(at).map(|r| r.main)).collect();
        // A generation that ends exactly at the target (6, 12) keeps nothing; one that
        // ended before it is passed over (7 finds the next generation, not yet begun).
        let want = [
            None,
            Some(2),
            Some(2),
            Some(4),
            Some(4),
            None,
            None,
            Some(8),
            Some(8),
            Some(10),
            Some(10),
            None,
            None,
            Some(14),
            Some(14),
        ];
        assert_eq!(kept, want);
    }

    #[test]
    fn hash_keep_skips_a_delete_and_put_sharing_the_target() {
        // etcd 3.5 stops at the generation whose tombstone is at the target, so the put
        // that re-created the key in the same txn is not kept either.
        let mut h = KeyHistory::default();
        h.put(rev(2), 2, 1);
        h.tombstone(Revision::new(3, 0));
        h.put(Revision::new(3, 1), 3, 1);
        assert_eq!(h.hash_keep(3), None);
        assert_eq!(h.hash_keep(4), Some(Revision::new(3, 1)));
    }

    #[test]
    fn hash_keep_of_a_lone_tombstone_is_none() {
        let mut h = KeyHistory::default();
        h.tombstone(rev(5));
        assert_eq!(h.hash_keep(5), None);
        assert_eq!(h.hash_keep(6), None);
    }

    #[test]
    fn retained_up_to_lists_puts_and_tombstones_at_or_below() {
        let h = sample();
        let mut seen = Vec::new();
        h.retained_up_to(8, &mut |r| seen.push(r.main));
        assert_eq!(seen, vec![2, 4, 6, 8]);
    }

    #[test]
    fn rollback_restores_the_previous_state() {
        let mut h = sample();
        let before = h.clone();
        h.tombstone(Revision::new(15, 0));
        h.put(Revision::new(15, 1), 15, 1);
        h.rollback_after(14);
        assert_eq!(h, before);

        let mut h = KeyHistory::default();
        h.put(rev(2), 2, 1);
        h.put(rev(3), 2, 2);
        h.rollback_after(2);
        assert_eq!(h.latest().unwrap(), Latest { revision: rev(2), created: 2, version: 1 });
        h.rollback_after(1);
        assert!(h.is_empty());
    }

    #[test]
    fn a_lone_tombstone_from_an_interrupted_compaction_hides_the_key() {
        let mut h = KeyHistory::default();
        h.tombstone(rev(5));
        assert_eq!(h.visible(6), None);
        assert_eq!(h.latest(), None);
        h.put(rev(7), 7, 1);
        assert_eq!(h.visible(7).map(|r| r.main), Some(7));
    }
}

/// The compact history against the plain one it replaced (a `Vec` of generations, each with
/// a `Vec` of puts and an `Option` tombstone): the same answers to every question after any
/// sequence of changes, compactions, rollbacks and shrinks.
#[cfg(test)]
mod reference {
    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug, Default)]
    struct Plain {
        generations: Vec<PlainGeneration>,
    }

    #[derive(Clone, Debug)]
    struct PlainGeneration {
        created: i64,
        version: i64,
        puts: Vec<Revision>,
        tombstone: Option<Revision>,
    }

    impl PlainGeneration {
        fn first(&self) -> Revision {
            self.puts.first().copied().or(self.tombstone).unwrap()
        }
    }

    impl Plain {
        fn latest(&self) -> Option<Latest> {
            let g = self.generations.last()?;
            if g.tombstone.is_some() {
                return None;
            }
            Some(Latest { revision: *g.puts.last()?, created: g.created, version: g.version })
        }

        fn visible(&self, at: i64) -> Option<Revision> {
            let g = self.generations.iter().rev().find(|g| g.first().main <= at)?;
            if g.tombstone.is_some_and(|t| t.main <= at) {
                return None;
            }
            g.puts.iter().rev().find(|r| r.main <= at).copied()
        }

        fn put_next(&mut self, rev: Revision) -> (i64, i64) {
            let (created, version) = match self.latest() {
                Some(l) => (l.created, l.version + 1),
                None => (rev.main, 1),
            };
            match self.generations.last_mut() {
                Some(g) if g.tombstone.is_none() => {
                    g.puts.push(rev);
                    g.version = version;
                }
                _ => self.generations.push(PlainGeneration {
                    created,
                    version,
                    puts: vec![rev],
                    tombstone: None,
                }),
            }
            (created, version)
        }

        fn tombstone(&mut self, rev: Revision) {
            match self.generations.last_mut() {
                Some(g) if g.tombstone.is_none() => g.tombstone = Some(rev),
                _ => self.generations.push(PlainGeneration {
                    created: 0,
                    version: 0,
                    puts: Vec::new(),
                    tombstone: Some(rev),
                }),
            }
        }

        fn compact(&mut self, at: i64) -> Vec<Revision> {
            let mut keep = Vec::new();
            let Some(first_live) =
                self.generations.iter().position(|g| g.tombstone.is_none_or(|t| t.main >= at))
            else {
                self.generations.clear();
                return keep;
            };
            self.generations.drain(..first_live);
            let g = &mut self.generations[0];
            if g.tombstone.is_some_and(|t| t.main <= at) {
                g.puts.clear();
            } else if let Some(i) = g.puts.iter().rposition(|r| r.main <= at) {
                g.puts.drain(..i);
            }
            for g in &self.generations {
                keep.extend(g.puts.iter().chain(&g.tombstone).filter(|r| r.main <= at));
            }
            keep
        }

        fn hash_keep(&self, at: i64) -> Option<Revision> {
            let g = self.generations.iter().find(|g| g.tombstone.is_none_or(|t| t.main >= at))?;
            if g.tombstone.is_some_and(|t| t.main <= at) {
                return None;
            }
            g.puts.iter().rev().find(|r| r.main <= at).copied()
        }

        fn retained_up_to(&self, at: i64) -> Vec<Revision> {
            let all = self.generations.iter().flat_map(|g| g.puts.iter().chain(&g.tombstone));
            all.filter(|r| r.main <= at).copied().collect()
        }

        fn rollback_after(&mut self, main: i64) {
            while let Some(g) = self.generations.last_mut() {
                let before = g.puts.len();
                while g.puts.last().is_some_and(|r| r.main > main) {
                    g.puts.pop();
                }
                g.version -= (before - g.puts.len()) as i64;
                if g.tombstone.is_some_and(|t| t.main > main) {
                    g.tombstone = None;
                }
                if !g.puts.is_empty() || g.tombstone.is_some() {
                    return;
                }
                self.generations.pop();
            }
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// A put in the next revision, or (true) in the same revision as the last change.
        Put(bool),
        Delete(bool),
        /// Compaction at the current revision minus this much.
        Compact(i64),
        /// A failed write: the changes of the last `n` revisions undone.
        Rollback(i64),
        Shrink,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<bool>().prop_map(Op::Put),
            2 => any::<bool>().prop_map(Op::Delete),
            1 => (0..4i64).prop_map(Op::Compact),
            1 => (0..3i64).prop_map(Op::Rollback),
            1 => Just(Op::Shrink),
        ]
    }

    fn same_answers(compact: &KeyHistory, plain: &Plain, last: i64) {
        assert_eq!(compact.is_empty(), plain.generations.is_empty());
        assert_eq!(compact.latest(), plain.latest());
        for at in 0..=last + 1 {
            assert_eq!(compact.visible(at), plain.visible(at), "visible at {at}");
            assert_eq!(compact.hash_keep(at), plain.hash_keep(at), "hash_keep at {at}");
            let mut retained = Vec::new();
            compact.retained_up_to(at, &mut |r| retained.push(r));
            assert_eq!(retained, plain.retained_up_to(at), "retained up to {at}");
        }
    }

    proptest! {
        #[test]
        fn the_compact_history_answers_as_the_plain_one(ops in proptest::collection::vec(op(), 0..60)) {
            let (mut compact, mut plain) = (KeyHistory::default(), Plain::default());
            // The last change's revision, and the compacted revision.
            let (mut last, mut compacted) = (Revision::new(1, 0), 0);
            for op in ops {
                match op {
                    Op::Put(same) | Op::Delete(same) => {
                        last = if same { Revision::new(last.main, last.sub + 1) } else { Revision::new(last.main + 1, 0) };
                        if matches!(op, Op::Put(_)) {
                            prop_assert_eq!(compact.put_next(last), plain.put_next(last));
                        } else {
                            compact.tombstone(last);
                            plain.tombstone(last);
                        }
                    }
                    Op::Compact(back) => {
                        let at = (last.main - back).max(compacted + 1);
                        if at <= last.main {
                            compacted = at;
                            let mut kept = Vec::new();
                            compact.compact(at, &mut |r| kept.push(r));
                            prop_assert_eq!(kept, plain.compact(at));
                        }
                    }
                    Op::Rollback(back) => {
                        // Only uncompacted history is ever rolled back, and revision 1 holds no change.
                        let main = (last.main - back).max(compacted).max(1);
                        compact.rollback_after(main);
                        plain.rollback_after(main);
                        if main < last.main {
                            // Past any change left at `main`.
                            last = Revision::new(main, 1_000);
                        }
                    }
                    Op::Shrink => compact.shrink_to_fit(),
                }
                same_answers(&compact, &plain, last.main);
            }
        }
    }
}
