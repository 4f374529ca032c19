//! The checks etcd makes on a request before it reads any state (etcd's `v3rpc/key.go`).

use std::collections::HashSet;

use super::request::{DeleteRangeRequest, PutRequest, RangeRequest, Txn, TxnOp};
use crate::error::{Error, Result};

/// A range needs a key.
pub fn check_range(req: &RangeRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    Ok(())
}

/// A put needs a key, and `ignore_value`/`ignore_lease` exclude a value/lease.
pub fn check_put(req: &PutRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(Error::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(Error::LeaseProvided);
    }
    Ok(())
}

/// A delete needs a key.
pub fn check_delete(req: &DeleteRangeRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    Ok(())
}

/// How deep txns may nest: a txn holding a txn is depth 2. etcd's default `max-txn-ops`
/// (128) allows this much, since each level takes one op from its parent's budget; a larger
/// `max_txn_ops` does not allow deeper nesting here, so that nothing recursing over a txn
/// can exhaust a thread's stack.
pub const MAX_TXN_DEPTH: usize = 128;

/// etcd's `checkTxnRequest` then `checkIntervals` on each branch: op counts (a nested txn
/// gets what its parent leaves of `max_ops`), empty keys, then duplicate writes. Nesting
/// deeper than [`MAX_TXN_DEPTH`] is refused as too many operations.
pub fn check_txn(txn: &Txn, max_ops: usize) -> Result<()> {
    check_txn_ops(txn, max_ops, 1)?;
    check_intervals(&txn.success)?;
    check_intervals(&txn.failure)?;
    Ok(())
}

fn check_txn_ops(txn: &Txn, max_ops: usize, depth: usize) -> Result<()> {
    let ops = txn.compare.len().max(txn.success.len()).max(txn.failure.len());
    if ops > max_ops || depth > MAX_TXN_DEPTH {
        return Err(Error::TooManyOps);
    }
    if txn.compare.iter().any(|c| c.key.is_empty()) {
        return Err(Error::EmptyKey);
    }
    for op in txn.success.iter().chain(&txn.failure) {
        match op {
            TxnOp::Get(req) => check_range(req)?,
            TxnOp::Put(req) => check_put(req)?,
            TxnOp::Delete(req) => check_delete(req)?,
            TxnOp::Txn(nested) => check_txn_ops(nested, max_ops - ops, depth + 1)?,
        }
    }
    Ok(())
}

/// The deletes of one op list, as etcd's interval tree holds them: a point for a single
/// key, else `[key, range_end)` compared as plain bytes. (So a from-key delete, whose end
/// is `"\0"`, collides with no put: etcd behaves the same way.)
#[derive(Default)]
struct Deletes<'a>(Vec<(&'a [u8], &'a [u8])>);

impl<'a> Deletes<'a> {
    fn covers(&self, key: &[u8]) -> bool {
        self.0.iter().any(
            |&(start, end)| {
                if end.is_empty() {
                    key == start
                } else {
                    start <= key && key < end
                }
            },
        )
    }
}

/// etcd's `checkIntervals`: no key is put twice on any path through `ops`, and no put falls
/// inside a delete of the same list or an enclosing one. Puts in the two branches of one
/// nested txn may share keys, since only one branch runs.
fn check_intervals(ops: &[TxnOp]) -> Result<(HashSet<&[u8]>, Deletes<'_>)> {
    let mut deletes = Deletes::default();
    for op in ops {
        if let TxnOp::Delete(req) = op {
            deletes.0.push((&req.key, &req.range_end));
        }
    }
    let mut puts = HashSet::new();
    for op in ops {
        let TxnOp::Txn(nested) = op else { continue };
        let (puts_then, deletes_then) = check_intervals(&nested.success)?;
        let (puts_else, deletes_else) = check_intervals(&nested.failure)?;
        for &key in &puts_then {
            if puts.contains(key) || deletes.covers(key) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(key);
        }
        for &key in &puts_else {
            if puts.contains(key) && !puts_then.contains(key) || deletes.covers(key) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(key);
        }
        deletes.0.extend(deletes_then.0);
        deletes.0.extend(deletes_else.0);
    }
    for op in ops {
        let TxnOp::Put(req) = op else { continue };
        if puts.contains(req.key.as_slice()) || deletes.covers(&req.key) {
            return Err(Error::DuplicateKey);
        }
        puts.insert(&req.key);
    }
    Ok((puts, deletes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Compare, CompareOp, DeleteOptions};

    fn put(key: &str) -> TxnOp {
        TxnOp::put(key, "v", None)
    }

    fn check(success: Vec<TxnOp>) -> Result<()> {
        check_txn(&Txn::new().and_then(success), 128)
    }

    /// A txn of `depth` levels, each holding the next as its one success op.
    fn nested(depth: usize) -> Txn {
        (1..depth).fold(Txn::new().and_then([put("k")]), |inner, _| Txn::new().and_then([TxnOp::txn(inner)]))
    }

    #[test]
    fn nesting_is_bounded_even_when_the_op_budget_allows_more() {
        assert_eq!(check_txn(&nested(MAX_TXN_DEPTH), usize::MAX), Ok(()));
        assert_eq!(check_txn(&nested(MAX_TXN_DEPTH + 1), usize::MAX), Err(Error::TooManyOps));
        // etcd's default budget reaches the same depth.
        assert_eq!(check_txn(&nested(MAX_TXN_DEPTH), 128), Ok(()));
        assert_eq!(check_txn(&nested(MAX_TXN_DEPTH), 127), Err(Error::TooManyOps));
    }

    #[test]
    fn two_puts_of_one_key_are_duplicates() {
        assert_eq!(check(vec![put("a"), put("a")]), Err(Error::DuplicateKey));
    }

    #[test]
    fn a_put_inside_a_deleted_range_is_a_duplicate_in_either_order() {
        let delete = TxnOp::delete("a", Some(DeleteOptions::new().with_range("c")));
        assert_eq!(check(vec![delete.clone(), put("b")]), Err(Error::DuplicateKey));
        assert_eq!(check(vec![put("b"), delete]), Err(Error::DuplicateKey));
        assert_eq!(check(vec![TxnOp::delete("a", None), put("a")]), Err(Error::DuplicateKey));
    }

    #[test]
    fn a_from_key_delete_collides_with_no_put() {
        let delete = TxnOp::delete("a", Some(DeleteOptions::new().with_from_key()));
        assert_eq!(check(vec![delete, put("b")]), Ok(()));
    }

    #[test]
    fn overlapping_deletes_and_reads_are_allowed() {
        let d1 = TxnOp::delete("a", Some(DeleteOptions::new().with_range("c")));
        let d2 = TxnOp::delete("b", Some(DeleteOptions::new().with_range("d")));
        assert_eq!(check(vec![d1, d2, TxnOp::get("b", None), TxnOp::get("b", None)]), Ok(()));
    }

    #[test]
    fn nested_branches_may_put_the_same_key() {
        let nested = Txn::new().and_then([put("a")]).or_else([put("a")]);
        assert_eq!(check(vec![TxnOp::txn(nested)]), Ok(()));
    }

    #[test]
    fn a_nested_put_collides_with_an_outer_put_or_delete() {
        let nested = || TxnOp::txn(Txn::new().and_then([put("a")]));
        assert_eq!(check(vec![put("a"), nested()]), Err(Error::DuplicateKey));
        assert_eq!(check(vec![TxnOp::delete("a", None), nested()]), Err(Error::DuplicateKey));
        assert_eq!(check(vec![nested(), nested()]), Err(Error::DuplicateKey));
    }

    #[test]
    fn the_top_level_branches_are_checked_apart() {
        let txn = Txn::new().and_then([put("a")]).or_else([put("a")]);
        assert_eq!(check_txn(&txn, 128), Ok(()));
    }

    #[test]
    fn op_count_is_the_longest_list_and_nested_txns_share_the_budget() {
        let ops = |n: usize| (0..n).map(|i| TxnOp::get(format!("k{i}"), None)).collect::<Vec<_>>();
        assert_eq!(check_txn(&Txn::new().and_then(ops(4)), 4), Ok(()));
        assert_eq!(check_txn(&Txn::new().or_else(ops(5)), 4), Err(Error::TooManyOps));
        let compares: Vec<_> =
            (0..5).map(|i| Compare::version(format!("k{i}"), CompareOp::Equal, 0)).collect();
        assert_eq!(check_txn(&Txn::new().when(compares), 4), Err(Error::TooManyOps));
        let nested = Txn::new().and_then(ops(2));
        let outer = Txn::new().and_then([TxnOp::txn(nested), TxnOp::get("x", None)]);
        assert_eq!(check_txn(&outer, 3), Err(Error::TooManyOps));
        assert_eq!(check_txn(&outer, 4), Ok(()));
    }

    #[test]
    fn empty_keys_are_refused_in_compares_and_ops() {
        let txn = Txn::new().when([Compare::version("", CompareOp::Equal, 0)]);
        assert_eq!(check_txn(&txn, 128), Err(Error::EmptyKey));
        assert_eq!(check(vec![TxnOp::get("", None)]), Err(Error::EmptyKey));
        assert_eq!(check(vec![TxnOp::put("", "v", None)]), Err(Error::EmptyKey));
    }
}
