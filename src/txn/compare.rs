//! Compare evaluation (etcd's `applyCompare`).

use std::cmp::Ordering;

use super::request::{Compare, CompareOp, CompareTarget, TargetValue};
use crate::error::Result;
use crate::mvcc::{KeyRange, KeyValue, RangeOptions, ReadView};

/// True when every key `c` covers satisfies it, reading at the view's revision. A missing
/// key (or an empty range) compares as a key-value of zeros, except for a VALUE compare,
/// which then fails whatever its operator: there is no value to compare.
pub fn holds(view: &impl ReadView, c: &Compare) -> Result<bool> {
    let found = view.range(KeyRange::from_etcd(&c.key, &c.range_end), RangeOptions::default())?;
    if found.kvs.is_empty() {
        return Ok(c.target != CompareTarget::Value && satisfies(c, &KeyValue::default()));
    }
    Ok(found.kvs.iter().all(|kv| satisfies(c, kv)))
}

/// True when every compare holds (an empty list holds).
pub fn all_hold(view: &impl ReadView, compares: &[Compare]) -> Result<bool> {
    for c in compares {
        if !holds(view, c)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn satisfies(c: &Compare, kv: &KeyValue) -> bool {
    let ordering = match c.target {
        CompareTarget::Value => kv.value.as_slice().cmp(target_bytes(c)),
        CompareTarget::Version => kv.version.cmp(&target_int(c)),
        CompareTarget::Create => kv.create_revision.cmp(&target_int(c)),
        CompareTarget::Mod => kv.mod_revision.cmp(&target_int(c)),
        CompareTarget::Lease => kv.lease.cmp(&target_int(c)),
    };
    match c.result {
        CompareOp::Equal => ordering == Ordering::Equal,
        CompareOp::NotEqual => ordering != Ordering::Equal,
        CompareOp::Greater => ordering == Ordering::Greater,
        CompareOp::Less => ordering == Ordering::Less,
    }
}

/// The integer a compare tests against: etcd reads the `target_union` member matching the
/// target, and any other member (or none) counts as 0.
fn target_int(c: &Compare) -> i64 {
    match (c.target, &c.target_value) {
        (CompareTarget::Version, Some(TargetValue::Version(v)))
        | (CompareTarget::Create, Some(TargetValue::CreateRevision(v)))
        | (CompareTarget::Mod, Some(TargetValue::ModRevision(v)))
        | (CompareTarget::Lease, Some(TargetValue::Lease(v))) => *v,
        _ => 0,
    }
}

/// The bytes a VALUE compare tests against; empty unless the value member is set.
fn target_bytes(c: &Compare) -> &[u8] {
    match &c.target_value {
        Some(TargetValue::Value(v)) => v,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv() -> KeyValue {
        KeyValue {
            key: b"k".to_vec(),
            create_revision: 2,
            mod_revision: 4,
            version: 3,
            value: b"m".to_vec(),
            lease: 9,
        }
    }

    #[test]
    fn each_target_reads_its_field() {
        assert!(satisfies(&Compare::version("k", CompareOp::Equal, 3), &kv()));
        assert!(satisfies(&Compare::create_revision("k", CompareOp::Less, 3), &kv()));
        assert!(satisfies(&Compare::mod_revision("k", CompareOp::Greater, 3), &kv()));
        assert!(satisfies(&Compare::lease("k", CompareOp::NotEqual, 8), &kv()));
        assert!(satisfies(&Compare::value("k", CompareOp::Greater, "a"), &kv()));
        assert!(satisfies(&Compare::value("k", CompareOp::Less, "mm"), &kv()));
    }

    #[test]
    fn a_mismatched_target_value_counts_as_zero() {
        let mut c = Compare::version("k", CompareOp::Equal, 3);
        c.target_value = Some(TargetValue::ModRevision(3));
        assert!(!satisfies(&c, &kv()));
        c.result = CompareOp::Greater;
        assert!(satisfies(&c, &kv()));
        c.target_value = None;
        assert!(satisfies(&c, &kv()));
    }
}
