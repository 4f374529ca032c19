//! Go's `sort.Sort`, comparison for comparison and swap for swap, so that a sorted range
//! orders ties the way etcd does.
//!
//! etcd sorts a range's kvs with `sort.Sort(sorter)`, or `sort.Sort(sort.Reverse(sorter))`
//! for a descending order, where the sorter compares the sort target alone
//! (`server/etcdserver/apply.go`, `Range`). Go's sort is not stable, so kvs equal on the
//! target come out in whatever order its swaps leave them, and a client sees that order.
//! Up to 12 kvs Go runs an insertion sort, which a stable sort matches (descending too, if it
//! keeps ties in key order rather than reversing an ascending sort); beyond that nothing but
//! Go's own algorithm gives its order. So this module runs it: pattern-defeating quicksort
//! as Go has sorted since 1.19 (`pdqsort` in `sort/zsortinterface.go`) with its deterministic
//! choices: insertion sort up to 12 elements, a pivot from a median of three (Tukey's ninther
//! from 50 elements on) whose comparisons also hint at a sorted or reversed run,
//! `partialInsertionSort` on a run that looks sorted, `partitionEqual` when the pivot equals
//! the element just before the run, `breakPatterns` after an unbalanced partition (swaps
//! drawn from a xorshift seeded with the run's length), and heapsort after too many of those.
//!
//! Indexes are the whole slice's throughout, as in Go, which matters in one place: shifting
//! left in `partial_insertion_sort` stops at index 1, not at the run's start.
//!
//! Go before 1.19 (etcd 3.5.1 is built with go1.16) sorted with another quicksort and orders
//! ties otherwise. Go 1.24 changed the xorshift's shifts, which moves ties only where
//! `breakPatterns` runs: [`Xorshift::GO_1_24`] is what current etcd 3.5 releases are built
//! with (go1.25), [`Xorshift::GO_1_19`] what etcd 3.4.23 (go1.19) orders ties with.
//! docs/limitations.md lists which etcd build orders ties how.

/// The shifts of the generator `breakPatterns` draws its swaps from: `state ^= state << a;
/// state ^= state >> b; state ^= state << c`, seeded with the run's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Xorshift {
    shifts: [u32; 3],
}

impl Xorshift {
    /// Go 1.19 to 1.23 (the 32-bit generator's shifts on a 64-bit state).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) const GO_1_19: Xorshift = Xorshift { shifts: [13, 17, 5] };
    /// Go 1.24 on, and so current etcd 3.5 releases (built with go1.25).
    pub(crate) const GO_1_24: Xorshift = Xorshift { shifts: [13, 7, 17] };
}

/// Sorts `data` as Go's `sort.Sort` sorts a collection whose `Less(i, j)` is
/// `less(&data[i], &data[j])`. For Go's `sort.Reverse`, pass `|a, b| less(b, a)`.
pub(crate) fn sort_by<T>(data: &mut [T], less: impl Fn(&T, &T) -> bool) {
    sort_with(data, less, Xorshift::GO_1_24);
}

/// [`sort_by`] with the xorshift of a given Go release.
pub(crate) fn sort_with<T>(data: &mut [T], less: impl Fn(&T, &T) -> bool, xorshift: Xorshift) {
    let n = data.len();
    if n <= 1 {
        return;
    }
    // Go's `bits.Len(uint(n))`: how many bad pivots are allowed before heapsort.
    let limit = bit_length(n);
    let mut sorter = Sorter { data, less, xorshift };
    sorter.pdqsort(0, n, limit);
}

/// Runs shorter than this are insertion sorted (Go's `maxInsertion` is 12, compared with `<=`).
const MAX_INSERTION: usize = 12;
/// From this length on the pivot is Tukey's ninther rather than a median of three.
const SHORTEST_NINTHER: usize = 50;
/// Runs shorter than this are never shifted by `partial_insertion_sort`.
const SHORTEST_SHIFTING: usize = 50;
/// How many out-of-order neighbours `partial_insertion_sort` fixes before giving up.
const MAX_STEPS: usize = 5;
/// The comparisons `choose_pivot` makes on 50 elements or more: all of them swapping means
/// the run looks reversed.
const MAX_SWAPS: usize = 4 * 3;

/// What the pivot's comparisons suggest about the run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hint {
    Unknown,
    Increasing,
    Decreasing,
}

/// The number of bits needed to write `n` (Go's `bits.Len`).
fn bit_length(n: usize) -> u32 {
    usize::BITS - n.leading_zeros()
}

/// The data and its order: Go's `sort.Interface`, with `less(i, j)` and `swap(i, j)`.
struct Sorter<'a, T, F> {
    data: &'a mut [T],
    less: F,
    xorshift: Xorshift,
}

impl<T, F: Fn(&T, &T) -> bool> Sorter<'_, T, F> {
    fn less(&self, i: usize, j: usize) -> bool {
        (self.less)(&self.data[i], &self.data[j])
    }

    fn swap(&mut self, i: usize, j: usize) {
        self.data.swap(i, j);
    }

    /// Sorts `[a, b)`; `limit` is how many unbalanced partitions are still allowed.
    fn pdqsort(&mut self, mut a: usize, mut b: usize, mut limit: u32) {
        let mut was_balanced = true;
        let mut was_partitioned = true;
        loop {
            let length = b - a;
            if length <= MAX_INSERTION {
                self.insertion_sort(a, b);
                return;
            }
            if limit == 0 {
                self.heap_sort(a, b);
                return;
            }
            if !was_balanced {
                self.break_patterns(a, b);
                limit -= 1;
            }

            let (mut pivot, mut hint) = self.choose_pivot(a, b);
            if hint == Hint::Decreasing {
                self.reverse_range(a, b);
                // The pivot keeps its distance from the run's other end.
                pivot = (b - 1) - (pivot - a);
                hint = Hint::Increasing;
            }
            if was_balanced
                && was_partitioned
                && hint == Hint::Increasing
                && self.partial_insertion_sort(a, b)
            {
                return;
            }
            // Nothing in the run is below the element before it, which is at most the pivot:
            // split off the elements equal to the pivot and go on with the greater ones.
            if a > 0 && !self.less(a - 1, pivot) {
                a = self.partition_equal(a, b, pivot);
                continue;
            }

            let (mid, already_partitioned) = self.partition(a, b, pivot);
            was_partitioned = already_partitioned;
            let (left, right) = (mid - a, b - mid);
            let balance_threshold = length / 8;
            if left < right {
                was_balanced = left >= balance_threshold;
                self.pdqsort(a, mid, limit);
                a = mid + 1;
            } else {
                was_balanced = right >= balance_threshold;
                self.pdqsort(mid + 1, b, limit);
                b = mid;
            }
        }
    }

    fn insertion_sort(&mut self, a: usize, b: usize) {
        for i in a + 1..b {
            let mut j = i;
            while j > a && self.less(j, j - 1) {
                self.swap(j, j - 1);
                j -= 1;
            }
        }
    }

    /// Restores the max-heap below `root` in the heap of `[first, first + hi)`.
    fn sift_down(&mut self, mut root: usize, hi: usize, first: usize) {
        loop {
            let mut child = 2 * root + 1;
            if child >= hi {
                return;
            }
            if child + 1 < hi && self.less(first + child, first + child + 1) {
                child += 1;
            }
            if !self.less(first + root, first + child) {
                return;
            }
            self.swap(first + root, first + child);
            root = child;
        }
    }

    fn heap_sort(&mut self, a: usize, b: usize) {
        let hi = b - a;
        for i in (0..=(hi - 1) / 2).rev() {
            self.sift_down(i, hi, a);
        }
        for i in (0..hi).rev() {
            self.swap(a, a + i);
            self.sift_down(0, i, a);
        }
    }

    /// Moves the pivot to `a`, then what is below it to its left and the rest to its right;
    /// returns where the pivot ends and whether nothing had to move.
    fn partition(&mut self, a: usize, b: usize, pivot: usize) -> (usize, bool) {
        self.swap(a, pivot);
        // `[i, j]` is what is left to partition.
        let (mut i, mut j) = (a + 1, b - 1);
        while i <= j && self.less(i, a) {
            i += 1;
        }
        while i <= j && !self.less(j, a) {
            j -= 1;
        }
        if i > j {
            self.swap(j, a);
            return (j, true);
        }
        self.swap(i, j);
        i += 1;
        j -= 1;
        loop {
            while i <= j && self.less(i, a) {
                i += 1;
            }
            while i <= j && !self.less(j, a) {
                j -= 1;
            }
            if i > j {
                break;
            }
            self.swap(i, j);
            i += 1;
            j -= 1;
        }
        self.swap(j, a);
        (j, false)
    }

    /// With nothing in `[a, b)` below the pivot: moves the pivot to `a`, the elements equal
    /// to it after it, the greater ones last; returns where the greater ones start.
    fn partition_equal(&mut self, a: usize, b: usize, pivot: usize) -> usize {
        self.swap(a, pivot);
        let (mut i, mut j) = (a + 1, b - 1);
        loop {
            while i <= j && !self.less(a, i) {
                i += 1;
            }
            while i <= j && self.less(a, j) {
                j -= 1;
            }
            if i > j {
                return i;
            }
            self.swap(i, j);
            i += 1;
            j -= 1;
        }
    }

    /// Fixes up to [`MAX_STEPS`] out-of-order neighbours in a run that looks sorted; true
    /// when the run is sorted at the end.
    fn partial_insertion_sort(&mut self, a: usize, b: usize) -> bool {
        let mut i = a + 1;
        for _ in 0..MAX_STEPS {
            while i < b && !self.less(i, i - 1) {
                i += 1;
            }
            if i == b {
                return true;
            }
            if b - a < SHORTEST_SHIFTING {
                return false;
            }
            self.swap(i, i - 1);
            // The smaller one goes left: down to index 1 of the whole slice, as Go does,
            // not to the run's start.
            if i - a >= 2 {
                for j in (1..i).rev() {
                    if !self.less(j, j - 1) {
                        break;
                    }
                    self.swap(j, j - 1);
                }
            }
            // The greater one goes right.
            if b - i >= 2 {
                for j in i + 1..b {
                    if !self.less(j, j - 1) {
                        break;
                    }
                    self.swap(j, j - 1);
                }
            }
        }
        false
    }

    /// Swaps the three middle elements of the run with others drawn from a xorshift seeded
    /// with the run's length.
    fn break_patterns(&mut self, a: usize, b: usize) {
        let length = b - a;
        if length < 8 {
            return;
        }
        let mut random = length as u64;
        let [s1, s2, s3] = self.xorshift.shifts;
        // The smallest power of two above the length (Go's `1 << bits.Len(length)`).
        let modulus = 1usize << bit_length(length);
        let middle = a + (length / 4) * 2;
        for idx in middle - 1..=middle + 1 {
            random ^= random << s1;
            random ^= random >> s2;
            random ^= random << s3;
            // Go converts to a 64-bit `uint`; usize is as wide on every target etcdlite
            // builds for, and the mask keeps the bits that matter on any width.
            let mut other = (random as usize) & (modulus - 1);
            if other >= length {
                other -= length;
            }
            self.swap(idx, a + other);
        }
    }

    /// The pivot of `[a, b)` and what the comparisons made choosing it suggest.
    fn choose_pivot(&mut self, a: usize, b: usize) -> (usize, Hint) {
        let l = b - a;
        let mut swaps = 0;
        let mut i = a + l / 4;
        let mut j = a + l / 4 * 2;
        let mut k = a + l / 4 * 3;
        if l >= 8 {
            if l >= SHORTEST_NINTHER {
                i = self.median_adjacent(i, &mut swaps);
                j = self.median_adjacent(j, &mut swaps);
                k = self.median_adjacent(k, &mut swaps);
            }
            j = self.median(i, j, k, &mut swaps);
        }
        let hint = match swaps {
            0 => Hint::Increasing,
            MAX_SWAPS => Hint::Decreasing,
            _ => Hint::Unknown,
        };
        (j, hint)
    }

    /// `(a, b)` ordered so that the first is not greater, counting a swap when they were not.
    fn order2(&self, a: usize, b: usize, swaps: &mut usize) -> (usize, usize) {
        if self.less(b, a) {
            *swaps += 1;
            return (b, a);
        }
        (a, b)
    }

    /// The index among `a`, `b`, `c` whose element is the median.
    fn median(&self, a: usize, b: usize, c: usize, swaps: &mut usize) -> usize {
        let (a, b) = self.order2(a, b, swaps);
        let (b, _) = self.order2(b, c, swaps);
        let (_, b) = self.order2(a, b, swaps);
        b
    }

    fn median_adjacent(&self, a: usize, swaps: &mut usize) -> usize {
        self.median(a - 1, a, a + 1, swaps)
    }

    fn reverse_range(&mut self, a: usize, b: usize) {
        self.data[a..b].reverse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Sorts `(target, key)` pairs by target as Go would, returning the keys in order.
    fn keys_after(pairs: &[(u32, u32)], descending: bool, xorshift: Xorshift) -> Vec<u32> {
        let mut data = pairs.to_vec();
        if descending {
            sort_with(&mut data, |a, b| b.0 < a.0, xorshift);
        } else {
            sort_with(&mut data, |a, b| a.0 < b.0, xorshift);
        }
        data.iter().map(|p| p.1).collect()
    }

    /// Elements numbered in input order, with these targets.
    fn numbered(targets: &[u32]) -> Vec<(u32, u32)> {
        targets.iter().enumerate().map(|(i, &t)| (t, i as u32)).collect()
    }

    #[test]
    fn up_to_twelve_elements_ties_keep_their_input_order_both_ways() {
        // Insertion sort moves an element only past strictly greater ones (strictly
        // smaller for sort.Reverse), so ties stay in input (key) order in both orders:
        // reversing an ascending sort, as etcdlite once did, gets descending ties backwards.
        let pairs = numbered(&[1, 2, 1, 2, 1]);
        assert_eq!(keys_after(&pairs, false, Xorshift::GO_1_24), [0, 2, 4, 1, 3]);
        assert_eq!(keys_after(&pairs, true, Xorshift::GO_1_24), [1, 3, 0, 2, 4]);
        let twelve = numbered(&[5; 12]);
        assert_eq!(keys_after(&twelve, true, Xorshift::GO_1_24), (0..12).collect::<Vec<_>>());
    }

    #[test]
    fn thirteen_equal_elements_are_left_as_they_are() {
        // All equal: the pivot's comparisons swap nothing (an increasing hint) and
        // partialInsertionSort finds the run sorted.
        let pairs = numbered(&[7; 13]);
        assert_eq!(keys_after(&pairs, false, Xorshift::GO_1_24), (0..13).collect::<Vec<_>>());
        assert_eq!(keys_after(&pairs, true, Xorshift::GO_1_24), (0..13).collect::<Vec<_>>());
    }

    #[test]
    fn a_run_that_looks_reversed_is_reversed_ties_and_all() {
        // 50 decreasing elements, equal in pairs only away from the nine the ninther looks
        // at: its twelve comparisons all swap, the run is reversed in place (each pair of
        // ties with it) and then found sorted.
        let mut targets: Vec<u32> = (0..50).rev().collect();
        targets[1] = targets[0];
        targets[49] = targets[48];
        let pairs = numbered(&targets);
        assert_eq!(keys_after(&pairs, false, Xorshift::GO_1_24), (0..50).rev().collect::<Vec<_>>());
    }

    /// The values of keys 0 to 39 in the conformance scenario "40 keys with ties on value":
    /// mostly `a`, `b` at every 11th from 4, `c` at every 17th from 9 (as 0, 1, 2).
    fn forty_values() -> Vec<u32> {
        (0..40)
            .map(|i| {
                if i % 11 == 4 {
                    1
                } else if i % 17 == 9 {
                    2
                } else {
                    0
                }
            })
            .collect()
    }

    #[test]
    fn forty_ties_ascending_order_as_etcd_3_4_23_with_go_1_19_s_xorshift() {
        // The first partition is unbalanced (most values equal the pivot), so the next
        // round breaks patterns with swaps from the xorshift. With Go 1.19's shifts the
        // keys come out exactly as etcd 3.4.23 (go1.19.8) answered this sorted range.
        let pairs = numbered(&forty_values());
        let etcd_3_4_23 = [
            20, 34, 2, 3, 39, 5, 18, 7, 8, 38, 10, 11, 12, 13, 14, 36, 16, 0, 6, 1, 17, 21, 22, 23, 24, 25,
            35, 27, 28, 29, 30, 31, 32, 33, 19, 26, 15, 37, 4, 9,
        ];
        assert_eq!(keys_after(&pairs, false, Xorshift::GO_1_19), etcd_3_4_23);
        // Go 1.24's shifts draw other swaps: the order etcdlite answers.
        let go_1_24 = [
            20, 14, 2, 3, 39, 5, 6, 7, 8, 38, 10, 11, 12, 13, 19, 36, 16, 17, 1, 18, 25, 21, 22, 23, 24, 0,
            35, 27, 28, 29, 30, 31, 32, 33, 34, 26, 15, 37, 4, 9,
        ];
        assert_eq!(keys_after(&pairs, false, Xorshift::GO_1_24), go_1_24);
    }

    #[test]
    fn forty_ties_descending_need_no_break_patterns() {
        // Descending, no partition is unbalanced: both generators give etcd 3.4.23's order.
        let pairs = numbered(&forty_values());
        let etcd_3_4_23 = [
            9, 37, 26, 15, 4, 20, 22, 7, 8, 5, 10, 11, 12, 13, 14, 3, 16, 17, 18, 19, 0, 21, 6, 23, 24, 25,
            2, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 1, 38, 39,
        ];
        assert_eq!(keys_after(&pairs, true, Xorshift::GO_1_19), etcd_3_4_23);
        assert_eq!(keys_after(&pairs, true, Xorshift::GO_1_24), etcd_3_4_23);
    }

    fn is_sorted_permutation(input: &[(u32, u32)], output: &[u32], descending: bool) -> bool {
        let target: std::collections::HashMap<u32, u32> = input.iter().map(|&(t, k)| (k, t)).collect();
        let mut seen: Vec<u32> = output.to_vec();
        seen.sort_unstable();
        let keys: Vec<u32> = (0..input.len() as u32).collect();
        let in_order = output.windows(2).all(|w| {
            let (x, y) = (target[&w[0]], target[&w[1]]);
            if descending {
                x >= y
            } else {
                x <= y
            }
        });
        seen == keys && in_order
    }

    proptest! {
        #[test]
        fn sorts_by_the_target_and_keeps_every_element(
            targets in proptest::collection::vec(0u32..6, 0..400),
            descending in proptest::bool::ANY,
            old in proptest::bool::ANY,
        ) {
            let pairs = numbered(&targets);
            let xorshift = if old { Xorshift::GO_1_19 } else { Xorshift::GO_1_24 };
            let keys = keys_after(&pairs, descending, xorshift);
            prop_assert!(is_sorted_permutation(&pairs, &keys, descending));
        }

        #[test]
        fn distinct_targets_sort_as_any_sort_does(
            targets in proptest::collection::hash_set(0u32..100_000, 0..600),
        ) {
            let targets: Vec<u32> = targets.into_iter().collect();
            let mut data = targets.clone();
            sort_by(&mut data, |a, b| a < b);
            let mut expect = targets;
            expect.sort_unstable();
            prop_assert_eq!(data, expect);
        }
    }
}
