//! The synced range watchers, by their range: an interval tree over byte-string keys, so
//! that a commit finds the watchers whose range holds a key in O(log n) per watcher found
//! instead of scanning every range watcher.
//!
//! A treap (a binary search tree balanced by random priorities) ordered by each interval's
//! start, then end, then value, each node holding the node of its subtree that ends last.
//! A search for a key descends only into subtrees that end after the key and, right of a
//! node, only while starts are at or below the key. An interval's end is exclusive, or
//! absent for etcd's "from key" range (`range_end` = `"\0"`), which holds every key from
//! its start on.
//!
//! Written here because no maintained crate fits: `unbounded-interval-tree` does not
//! rebalance (prefixes inserted in key order would make it a list), `iset` wants `Copy`
//! bounds (keys are `Vec<u8>`), and `store-interval-tree` holds its nodes in `Rc`, so it
//! is not `Send`.

use std::cmp::Ordering;

/// A node's place in [`Intervals::nodes`].
type Link = Option<usize>;

struct Node<T> {
    start: Vec<u8>,
    /// Exclusive; `None` holds every key from `start` on.
    end: Option<Vec<u8>>,
    value: T,
    priority: u64,
    left: Link,
    right: Link,
    /// The node of this subtree with the greatest end.
    last: usize,
}

/// Orders ends, an absent one (unbounded) above every other.
fn cmp_end(a: Option<&[u8]>, b: Option<&[u8]>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => a.cmp(b),
    }
}

/// True when an interval ending at `end` still holds keys above `key`'s position, i.e.
/// `key` is below `end`.
fn ends_after(end: Option<&[u8]>, key: &[u8]) -> bool {
    end.is_none_or(|end| key < end)
}

/// Intervals `[start, end)` of byte strings, each with a value; the same interval may
/// appear with several values. Values must be unique per interval.
pub(crate) struct Intervals<T> {
    nodes: Vec<Option<Node<T>>>,
    free: Vec<usize>,
    root: Link,
    len: usize,
    /// State of the priority generator (xorshift64*).
    seed: u64,
}

impl<T: Copy + Ord> Intervals<T> {
    pub(crate) fn new() -> Self {
        Intervals { nodes: Vec::new(), free: Vec::new(), root: None, len: 0, seed: 0x9e37_79b9_7f4a_7c15 }
    }

    /// How many intervals it holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `[start, end)` with `value` (`end` None: unbounded). The same (interval, value)
    /// must not be added twice.
    pub(crate) fn insert(&mut self, start: Vec<u8>, end: Option<Vec<u8>>, value: T) {
        let (left, right) = self.split(self.root, &start, end.as_deref(), value);
        let priority = self.next_priority();
        let node = Node { start, end, value, priority, left: None, right: None, last: 0 };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i] = Some(node);
                i
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        };
        self.node_mut(i).last = i;
        let left = self.merge(left, Some(i));
        self.root = self.merge(left, right);
        self.len += 1;
    }

    /// Removes `[start, end)` with `value`; returns false when it was not there.
    pub(crate) fn remove(&mut self, start: &[u8], end: Option<&[u8]>, value: T) -> bool {
        let (root, found) = self.remove_from(self.root, start, end, value);
        self.root = root;
        if found {
            self.len -= 1;
        }
        found
    }

    /// Appends to `into` the value of every interval that holds `key`, in interval order.
    pub(crate) fn stab(&self, key: &[u8], into: &mut Vec<T>) {
        self.stab_from(self.root, key, into);
    }

    fn next_priority(&mut self) -> u64 {
        self.seed ^= self.seed >> 12;
        self.seed ^= self.seed << 25;
        self.seed ^= self.seed >> 27;
        self.seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn node(&self, i: usize) -> &Node<T> {
        self.nodes[i].as_ref().expect("a linked node is live")
    }

    fn node_mut(&mut self, i: usize) -> &mut Node<T> {
        self.nodes[i].as_mut().expect("a linked node is live")
    }

    /// Where (`start`, `end`, `value`) sorts against node `i`.
    fn cmp_at(&self, i: usize, start: &[u8], end: Option<&[u8]>, value: T) -> Ordering {
        let n = self.node(i);
        start.cmp(&n.start).then_with(|| cmp_end(end, n.end.as_deref())).then_with(|| value.cmp(&n.value))
    }

    /// Recomputes node `i`'s `last` from its children.
    fn update(&mut self, i: usize) {
        let n = self.node(i);
        let mut last = i;
        for child in [n.left, n.right].into_iter().flatten() {
            let candidate = self.node(child).last;
            if cmp_end(self.node(candidate).end.as_deref(), self.node(last).end.as_deref())
                == Ordering::Greater
            {
                last = candidate;
            }
        }
        self.node_mut(i).last = last;
    }

    /// Splits subtree `t` into the nodes below (`start`, `end`, `value`) and the rest.
    fn split(&mut self, t: Link, start: &[u8], end: Option<&[u8]>, value: T) -> (Link, Link) {
        let Some(i) = t else { return (None, None) };
        if self.cmp_at(i, start, end, value) == Ordering::Greater {
            // Node i sorts below the split point: it and its left subtree go left.
            let (low, high) = self.split(self.node(i).right, start, end, value);
            self.node_mut(i).right = low;
            self.update(i);
            (Some(i), high)
        } else {
            let (low, high) = self.split(self.node(i).left, start, end, value);
            self.node_mut(i).left = high;
            self.update(i);
            (low, Some(i))
        }
    }

    /// Joins two subtrees, every node of `a` sorting below every node of `b`.
    fn merge(&mut self, a: Link, b: Link) -> Link {
        let (a, b) = match (a, b) {
            (None, t) | (t, None) => return t,
            (Some(a), Some(b)) => (a, b),
        };
        if self.node(a).priority > self.node(b).priority {
            let right = self.merge(self.node(a).right, Some(b));
            self.node_mut(a).right = right;
            self.update(a);
            Some(a)
        } else {
            let left = self.merge(Some(a), self.node(b).left);
            self.node_mut(b).left = left;
            self.update(b);
            Some(b)
        }
    }

    fn remove_from(&mut self, t: Link, start: &[u8], end: Option<&[u8]>, value: T) -> (Link, bool) {
        let Some(i) = t else { return (None, false) };
        let found = match self.cmp_at(i, start, end, value) {
            Ordering::Equal => {
                let n = self.nodes[i].take().expect("a linked node is live");
                self.free.push(i);
                return (self.merge(n.left, n.right), true);
            }
            Ordering::Less => {
                let (left, found) = self.remove_from(self.node(i).left, start, end, value);
                self.node_mut(i).left = left;
                found
            }
            Ordering::Greater => {
                let (right, found) = self.remove_from(self.node(i).right, start, end, value);
                self.node_mut(i).right = right;
                found
            }
        };
        self.update(i);
        (Some(i), found)
    }

    fn stab_from(&self, t: Link, key: &[u8], into: &mut Vec<T>) {
        let Some(i) = t else { return };
        let n = self.node(i);
        if !ends_after(self.node(n.last).end.as_deref(), key) {
            // Nothing in this subtree reaches `key`.
            return;
        }
        self.stab_from(n.left, key, into);
        if n.start.as_slice() <= key {
            if ends_after(n.end.as_deref(), key) {
                into.push(n.value);
            }
            // Right of a node that starts above `key`, every start is above it too.
            self.stab_from(n.right, key, into);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    /// Keys from a small alphabet, so that intervals overlap, nest and share bounds.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        vec(0u8..4, 0..4)
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Adds an interval: start, end (None: from start on).
        Insert(Vec<u8>, Option<Vec<u8>>),
        /// Removes the n-th interval held (modulo how many), or, with none, a missing one.
        Remove(usize),
        /// Looks a key up.
        Stab(Vec<u8>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (key(), proptest::option::weighted(0.8, key())).prop_map(|(s, e)| Op::Insert(s, e)),
            2 => any::<usize>().prop_map(Op::Remove),
            4 => key().prop_map(Op::Stab),
        ]
    }

    proptest! {
        /// Whatever was inserted and removed, a lookup finds exactly what a linear scan of
        /// the intervals held finds, and `len` counts them.
        #[test]
        fn stabbing_matches_a_linear_scan(ops in vec(op(), 1..200)) {
            let mut tree = Intervals::new();
            let mut held: Vec<(Vec<u8>, Option<Vec<u8>>, u32)> = Vec::new();
            let mut next_value = 0u32;
            for op in ops {
                match op {
                    Op::Insert(start, end) => {
                        tree.insert(start.clone(), end.clone(), next_value);
                        held.push((start, end, next_value));
                        next_value += 1;
                    }
                    Op::Remove(n) if !held.is_empty() => {
                        let (start, end, value) = held.swap_remove(n % held.len());
                        prop_assert!(tree.remove(&start, end.as_deref(), value));
                        prop_assert!(!tree.remove(&start, end.as_deref(), value), "removed twice");
                    }
                    Op::Remove(_) => prop_assert!(!tree.remove(b"x", None, 0)),
                    Op::Stab(key) => {
                        let mut found = Vec::new();
                        tree.stab(&key, &mut found);
                        found.sort_unstable();
                        let mut want: Vec<u32> = held
                            .iter()
                            .filter(|(s, e, _)| key >= *s && e.as_ref().is_none_or(|e| key < *e))
                            .map(|&(_, _, v)| v)
                            .collect();
                        want.sort_unstable();
                        prop_assert_eq!(found, want, "key {:?}", key);
                    }
                }
                prop_assert_eq!(tree.len(), held.len());
                prop_assert_eq!(tree.is_empty(), held.is_empty());
            }
        }
    }

    #[test]
    fn prefixes_added_in_key_order_stay_shallow() {
        // A put's lookup must not degrade to a scan when watchers are created in key order.
        let mut tree = Intervals::new();
        for i in 0u32..100_000 {
            let start = format!("/p/{i:06}/").into_bytes();
            let mut end = start.clone();
            *end.last_mut().expect("non-empty") += 1;
            tree.insert(start, Some(end), i);
        }
        fn depth<T: Copy + Ord>(tree: &Intervals<T>, t: Link) -> usize {
            t.map_or(0, |i| 1 + depth(tree, tree.node(i).left).max(depth(tree, tree.node(i).right)))
        }
        let depth = depth(&tree, tree.root);
        assert!(depth < 60, "depth {depth} for 100,000 intervals");
        let mut found = Vec::new();
        tree.stab(b"/p/004242/x", &mut found);
        assert_eq!(found, vec![4242]);
        found.clear();
        tree.stab(b"/q", &mut found);
        assert!(found.is_empty());
    }
}
