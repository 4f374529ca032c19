//! Which keys a user may read and write: the union of their roles' permissions, checked as
//! etcd's interval tree checks it (`server/auth/range_perm_cache.go`).
//!
//! Bounds compare "affinely", as etcd's `BytesAffineComparable`: the empty byte string is
//! greater than every other, so an empty end means "to the end of the keyspace". A
//! permission over one key covers `[key, key + "\0")`; a permission whose range end is
//! `"\0"` covers every key from its key on.

use std::cmp::Ordering;

use super::{KeyPermission, PermissionType};

/// Compares two bounds, the empty one being the greatest.
fn affine_cmp(a: &[u8], b: &[u8]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.cmp(b),
    }
}

/// `[begin, end)` with affine bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Interval {
    begin: Vec<u8>,
    end: Vec<u8>,
}

impl Interval {
    /// The interval of one key.
    fn point(key: &[u8]) -> Interval {
        let mut end = key.to_vec();
        end.push(0);
        Interval { begin: key.to_vec(), end }
    }

    /// The interval a request's key and range end name: one key without an end, every key
    /// from `key` on with the end `"\0"`.
    fn of_request(key: &[u8], range_end: &[u8]) -> Interval {
        let end = if range_end == [0] { Vec::new() } else { range_end.to_vec() };
        Interval { begin: key.to_vec(), end }
    }

    fn overlaps(&self, other: &Interval) -> bool {
        affine_cmp(&self.begin, &other.end) == Ordering::Less
            && affine_cmp(&other.begin, &self.end) == Ordering::Less
    }
}

/// One user's merged permissions.
#[derive(Clone, Debug, Default)]
pub(crate) struct UserPerms {
    /// Sorted by begin.
    read: Vec<Interval>,
    /// Sorted by begin.
    write: Vec<Interval>,
}

impl UserPerms {
    /// The permissions of every role in `roles`.
    pub(crate) fn merge<'a>(roles: impl IntoIterator<Item = &'a [KeyPermission]>) -> UserPerms {
        let mut perms = UserPerms::default();
        for role in roles {
            for perm in role {
                let interval = if perm.range_end.is_empty() {
                    Interval::point(&perm.key)
                } else {
                    Interval::of_request(&perm.key, &perm.range_end)
                };
                if matches!(perm.perm_type, PermissionType::Read | PermissionType::Readwrite) {
                    perms.read.push(interval.clone());
                }
                if matches!(perm.perm_type, PermissionType::Write | PermissionType::Readwrite) {
                    perms.write.push(interval);
                }
            }
        }
        perms.read.sort_by(|a, b| affine_cmp(&a.begin, &b.begin));
        perms.write.sort_by(|a, b| affine_cmp(&a.begin, &b.begin));
        perms
    }

    /// True when the permissions of `kind` (read or write) allow `key` alone (an empty
    /// `range_end`) or every key of `[key, range_end)`.
    pub(crate) fn allows(&self, key: &[u8], range_end: &[u8], kind: PermissionType) -> bool {
        let intervals = match kind {
            PermissionType::Write => &self.write,
            _ => &self.read,
        };
        if range_end.is_empty() {
            let point = Interval::point(key);
            return intervals.iter().any(|i| i.overlaps(&point));
        }
        covers(intervals, &Interval::of_request(key, range_end))
    }
}

/// True when the intervals overlapping `wanted`, taken in order, leave no gap between them
/// and reach from its begin to its end (etcd's `IntervalTree.Contains`).
fn covers(intervals: &[Interval], wanted: &Interval) -> bool {
    let mut overlapping = intervals.iter().filter(|i| i.overlaps(wanted));
    let Some(first) = overlapping.next() else { return false };
    let mut end = &first.end;
    for next in overlapping {
        if affine_cmp(end, &next.begin) == Ordering::Less {
            return false;
        }
        if affine_cmp(&next.end, end) == Ordering::Greater {
            end = &next.end;
        }
    }
    affine_cmp(&first.begin, &wanted.begin) != Ordering::Greater
        && affine_cmp(end, &wanted.end) != Ordering::Less
}

/// etcd's `isValidPermissionRange`: a permission needs a key, and a range end that is
/// none, `"\0"`, or above the key.
pub(crate) fn is_valid_range(key: &[u8], range_end: &[u8]) -> bool {
    !key.is_empty() && (range_end.is_empty() || range_end == [0] || key < range_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(perm_type: PermissionType, key: &str, range_end: &[u8]) -> KeyPermission {
        KeyPermission { perm_type, key: key.as_bytes().to_vec(), range_end: range_end.to_vec() }
    }

    fn user(perms: &[KeyPermission]) -> UserPerms {
        UserPerms::merge([perms])
    }

    #[test]
    fn a_key_permission_allows_that_key_only() {
        let u = user(&[perm(PermissionType::Read, "a", b"")]);
        assert!(u.allows(b"a", b"", PermissionType::Read));
        assert!(!u.allows(b"a\0", b"", PermissionType::Read));
        assert!(!u.allows(b"b", b"", PermissionType::Read));
        assert!(!u.allows(b"a", b"", PermissionType::Write));
        // The range [a, a\0) is exactly the key.
        assert!(u.allows(b"a", b"a\0", PermissionType::Read));
        assert!(!u.allows(b"a", b"b", PermissionType::Read));
    }

    #[test]
    fn a_range_permission_allows_ranges_inside_it() {
        let u = user(&[perm(PermissionType::Readwrite, "b", b"d")]);
        assert!(u.allows(b"b", b"d", PermissionType::Write));
        assert!(u.allows(b"c", b"", PermissionType::Read));
        assert!(u.allows(b"bb", b"cc", PermissionType::Read));
        assert!(!u.allows(b"a", b"c", PermissionType::Read));
        assert!(!u.allows(b"c", b"e", PermissionType::Read));
        assert!(!u.allows(b"d", b"", PermissionType::Read));
        assert!(!u.allows(b"b", &[0], PermissionType::Read));
    }

    #[test]
    fn adjacent_permissions_join_and_gaps_do_not() {
        let joined = user(&[perm(PermissionType::Read, "a", b"c"), perm(PermissionType::Read, "c", b"e")]);
        assert!(joined.allows(b"a", b"e", PermissionType::Read));
        let gap = user(&[perm(PermissionType::Read, "a", b"c"), perm(PermissionType::Read, "d", b"e")]);
        assert!(!gap.allows(b"a", b"e", PermissionType::Read));
        assert!(gap.allows(b"d", b"e", PermissionType::Read));
    }

    #[test]
    fn from_key_permissions_reach_the_end() {
        let u = user(&[perm(PermissionType::Write, "k", &[0])]);
        assert!(u.allows(b"k", &[0], PermissionType::Write));
        assert!(u.allows(b"zzz", b"", PermissionType::Write));
        assert!(!u.allows(b"j", &[0], PermissionType::Write));
        let all = user(&[perm(PermissionType::Read, "\0", &[0])]);
        assert!(all.allows(b"\0", &[0], PermissionType::Read));
        assert!(all.allows(b"anything", b"", PermissionType::Read));
    }

    #[test]
    fn inverted_request_ranges_are_judged_as_etcds_tree_judges_them() {
        // Only intervals overlapping [begin, end) count, as in etcd: [c, b) overlaps [a, z)
        // and is inside it; [b, a) overlaps nothing.
        let u = user(&[perm(PermissionType::Read, "a", b"z")]);
        assert!(u.allows(b"c", b"b", PermissionType::Read));
        assert!(!u.allows(b"b", b"a", PermissionType::Read));
    }

    #[test]
    fn valid_ranges_are_etcds() {
        assert!(is_valid_range(b"a", b""));
        assert!(is_valid_range(b"a", b"b"));
        assert!(is_valid_range(b"a", &[0]));
        assert!(!is_valid_range(b"", b""));
        assert!(!is_valid_range(b"b", b"a"));
        assert!(!is_valid_range(b"a", b"a"));
    }
}
