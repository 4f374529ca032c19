//! The keys the recipes create (new, unique, sequential), their claims, and their waits:
//! the helpers every recipe shares, in the shape of the Go package's `key.go`,
//! `client.go` and `watch.go`.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::client::{Client, Compare, CompareOp, Event, EventType, GetOptions, KeyValue, PutOptions};
use crate::client::{SortOrder, SortTarget, Txn, TxnOp, WatchOptions};

use super::super::wait::Resumed;
use super::super::Withdraw;
use super::super::{Error, Result};

/// Refuses an empty name before anything is sent.
pub(super) fn check_name(name: &[u8], what: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidArgs(format!("{what}'s name must not be empty")));
    }
    Ok(())
}

/// `a` followed by `b`.
pub(super) fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut joined = Vec::with_capacity(a.len() + b.len());
    joined.extend_from_slice(a);
    joined.extend_from_slice(b);
    joined
}

/// Puts `key` only if it does not exist (its version is 0); [`Error::KeyExists`] otherwise.
/// Returns the revision that created it. `lease` 0 is no lease.
pub(super) async fn put_new(client: &mut Client, key: &[u8], value: &[u8], lease: i64) -> Result<i64> {
    let put =
        TxnOp::put(key.to_vec(), value.to_vec(), (lease != 0).then(|| PutOptions::new().with_lease(lease)));
    let txn = Txn::new().when([Compare::version(key.to_vec(), CompareOp::Equal, 0)]).and_then([put]);
    let resp = client.txn(txn).await?;
    if !resp.succeeded() {
        return Err(Error::KeyExists);
    }
    Ok(resp.header().map_or(0, |h| h.revision()))
}

/// Creates a new key `prefix/<nanoseconds since the epoch>`, trying the next instant while
/// the name is taken (the Go package's unique keys, so Go and Rust name them alike).
/// Returns the key and the revision that created it.
///
/// `pending` (when given) names each key tried while its put is in flight, so a call
/// abandoned there, or a put whose outcome is unknown, withdraws it; a name found taken is
/// someone else's and is never withdrawn.
pub(super) async fn put_unique(
    client: &mut Client,
    prefix: &[u8],
    value: &[u8],
    lease: i64,
    mut pending: Option<&mut Withdraw>,
) -> Result<(Vec<u8>, i64)> {
    loop {
        let key = join(prefix, format!("/{}", now_nanos()).as_bytes());
        if let Some(pending) = pending.as_deref_mut() {
            pending.arm(key.clone());
        }
        match put_new(client, &key, value, lease).await {
            Ok(rev) => {
                // Ours from this revision on: a late withdraw leaves any later key of the
                // same name alone.
                if let Some(pending) = pending.as_deref_mut() {
                    pending.arm_created_at(key.clone(), rev);
                }
                return Ok((key, rev));
            }
            Err(Error::KeyExists) => {
                if let Some(pending) = pending.as_deref_mut() {
                    pending.disarm();
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Go's `time.Now().UnixNano()`: the nanoseconds since the Unix epoch.
fn now_nanos() -> i128 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_nanos() as i128,
        // A clock set before 1970: Go gives a negative number too.
        Err(before) => -(before.duration().as_nanos() as i128),
    }
}

/// Creates the next key `prefix/<16-digit sequence number>`: one more than the last key
/// under `prefix/`, or 0. The bookkeeping key `__<prefix>` is rewritten in the same txn,
/// which only commits if nobody wrote it since the last key was read: two writers reading
/// the same last key cannot both take the number after it.
pub(super) async fn put_sequential(client: &mut Client, prefix: &[u8], value: &[u8]) -> Result<Vec<u8>> {
    let dir = join(prefix, b"/");
    let base = join(b"__", prefix);
    let last_key =
        GetOptions::new().with_prefix().with_sort(SortTarget::Key, SortOrder::Descend).with_limit(1);
    loop {
        let last = client.get(dir.clone(), Some(last_key.clone())).await?;
        let read_at = last.header().map_or(0, |h| h.revision());
        let next = match last.kvs().first() {
            Some(kv) => sequence_number(kv.key())? + 1,
            None => 0,
        };
        let key = join(&dir, format!("{next:016}").as_bytes());
        let txn = Txn::new()
            .when([Compare::mod_revision(base.clone(), CompareOp::Less, read_at + 1)])
            .and_then([TxnOp::put(base.clone(), "", None), TxnOp::put(key.clone(), value.to_vec(), None)]);
        if client.txn(txn).await?.succeeded() {
            return Ok(key);
        }
    }
}

/// The number a sequential key ends with (its last path segment, read as Go's `%d` reads
/// it: an optional sign, then digits).
fn sequence_number(key: &[u8]) -> Result<i64> {
    let segment = key.rsplit(|&b| b == b'/').next().unwrap_or_default();
    let signed = segment.first().is_some_and(|&b| b == b'-' || b == b'+');
    let digits = segment.iter().skip(usize::from(signed)).take_while(|b| b.is_ascii_digit()).count();
    let number =
        std::str::from_utf8(&segment[..digits + usize::from(signed)]).ok().and_then(|n| n.parse().ok());
    number.ok_or_else(|| {
        let key = String::from_utf8_lossy(key);
        crate::client::Error::Internal(format!("sequential key {key} does not end in a number")).into()
    })
}

/// Deletes `key` if it is still at `mod_revision`: a claim that only one of many
/// consumers wins. False when someone else got there first.
pub(super) async fn delete_at(client: &mut Client, key: &[u8], mod_revision: i64) -> Result<bool> {
    let txn = Txn::new()
        .when([Compare::mod_revision(key.to_vec(), CompareOp::Equal, mod_revision)])
        .and_then([TxnOp::delete(key.to_vec(), None)]);
    Ok(client.txn(txn).await?.succeeded())
}

/// Claims the first of `kvs` still unclaimed (deletes it at its revision).
pub(super) async fn claim_first(client: &mut Client, kvs: &[KeyValue]) -> Result<Option<KeyValue>> {
    for kv in kvs {
        if delete_at(client, kv.key(), kv.mod_revision()).await? {
            return Ok(Some(kv.clone()));
        }
    }
    Ok(None)
}

/// The first event of `kind` on `key` (or under it, with `options` asking for a prefix)
/// from `revision` on; `None` when the watch is cut short (its revision compacted), for
/// the caller to look again.
pub(super) async fn wait_event(
    client: &Client,
    key: &[u8],
    options: WatchOptions,
    revision: i64,
    kind: EventType,
) -> Result<Option<Event>> {
    let mut watch = Resumed::new(client, key, options, revision);
    while let Some(resp) = watch.next().await? {
        if let Some(event) = resp.events().iter().find(|e| e.event_type() == kind) {
            return Ok(Some(event.clone()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_are_read_as_go_reads_them() {
        assert_eq!(sequence_number(b"q/00001/0000000000000042").unwrap(), 42);
        assert_eq!(sequence_number(b"q/00001/-3").unwrap(), -3);
        assert_eq!(sequence_number(b"q/00001/7abc").unwrap(), 7);
        assert!(sequence_number(b"q/00001/abc").is_err());
        assert!(sequence_number(b"q/00001/").is_err());
    }

    #[test]
    fn unique_keys_are_nanoseconds() {
        let a = now_nanos();
        assert!(a > 1_500_000_000_000_000_000, "{a} is not nanoseconds since 1970");
    }
}
