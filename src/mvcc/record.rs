//! The on-disk format of the MVCC layer (schema version 1).
//!
//! Keyspace `kv`: key = `main` (8 bytes, big-endian) ++ `sub` (8 bytes, big-endian), plus one
//! byte `t` for a tombstone; value = a protobuf `KeyValue` message with etcd's `mvccpb`
//! field numbers (key=1, create_revision=2, mod_revision=3, version=4, value=5, lease=6).
//! A tombstone's value holds only the key. Big-endian revisions make the keyspace's byte
//! order the history's order.
//!
//! Keyspace `meta`: [`SCHEMA_VERSION_KEY`], [`SCHEDULED_COMPACT_KEY`] and
//! [`FINISHED_COMPACT_KEY`], each an 8-byte big-endian integer.

use prost::Message;

use super::{KeyValue, Revision};
use crate::engine::EngineError;
use crate::engine::EngineErrorKind;

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u64 = 1;
/// Meta key of the schema version.
pub const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";
/// Meta key of the revision the last compaction was asked for.
pub const SCHEDULED_COMPACT_KEY: &[u8] = b"scheduled_compact_revision";
/// Meta key of the revision the last finished compaction removed history below.
pub const FINISHED_COMPACT_KEY: &[u8] = b"finished_compact_revision";

const REVISION_KEY_LEN: usize = 16;
const TOMBSTONE_MARK: u8 = b't';

/// Encodes the `kv` keyspace key of a change.
pub fn encode_key(rev: Revision, tombstone: bool) -> Vec<u8> {
    let mut key = Vec::with_capacity(REVISION_KEY_LEN + 1);
    key.extend_from_slice(&rev.main.to_be_bytes());
    key.extend_from_slice(&rev.sub.to_be_bytes());
    if tombstone {
        key.push(TOMBSTONE_MARK);
    }
    key
}

/// The first `kv` keyspace key of revision `main` (its sub revision 0, not a tombstone).
pub fn revision_start(main: i64) -> Vec<u8> {
    encode_key(Revision::new(main, 0), false)
}

/// Decodes a `kv` keyspace key into its revision and tombstone mark.
pub fn decode_key(key: &[u8]) -> Result<(Revision, bool), EngineError> {
    let tombstone = match key.len() {
        REVISION_KEY_LEN => false,
        17 if key[REVISION_KEY_LEN] == TOMBSTONE_MARK => true,
        _ => return Err(corrupt(format!("bad revision key {key:?}"))),
    };
    let main = i64::from_be_bytes(key[..8].try_into().expect("length checked above"));
    let sub = i64::from_be_bytes(key[8..16].try_into().expect("length checked above"));
    Ok((Revision::new(main, sub), tombstone))
}

/// The stored form of a key-value: etcd's `mvccpb.KeyValue`.
#[derive(Clone, PartialEq, Message)]
struct KeyValueRecord {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(int64, tag = "2")]
    create_revision: i64,
    #[prost(int64, tag = "3")]
    mod_revision: i64,
    #[prost(int64, tag = "4")]
    version: i64,
    #[prost(bytes = "vec", tag = "5")]
    value: Vec<u8>,
    #[prost(int64, tag = "6")]
    lease: i64,
}

/// Encodes the record of a put.
pub fn encode_value(kv: &KeyValue) -> Vec<u8> {
    // Field-by-field, so the public type needs no prost derive and no clone is made.
    use prost::encoding::{bytes, int64};
    let mut buf = Vec::with_capacity(
        bytes::encoded_len(1, &kv.key)
            + int64::encoded_len(2, &kv.create_revision)
            + int64::encoded_len(3, &kv.mod_revision)
            + int64::encoded_len(4, &kv.version)
            + bytes::encoded_len(5, &kv.value)
            + int64::encoded_len(6, &kv.lease),
    );
    if !kv.key.is_empty() {
        bytes::encode(1, &kv.key, &mut buf);
    }
    for (tag, field) in [(2, kv.create_revision), (3, kv.mod_revision), (4, kv.version)] {
        if field != 0 {
            int64::encode(tag, &field, &mut buf);
        }
    }
    if !kv.value.is_empty() {
        bytes::encode(5, &kv.value, &mut buf);
    }
    if kv.lease != 0 {
        int64::encode(6, &kv.lease, &mut buf);
    }
    buf
}

/// Encodes the record of a tombstone: the key alone.
pub fn encode_tombstone(key: &[u8]) -> Vec<u8> {
    KeyValueRecord { key: key.to_vec(), ..Default::default() }.encode_to_vec()
}

/// Decodes a stored record.
pub fn decode_value(bytes: &[u8]) -> Result<KeyValue, EngineError> {
    let r = KeyValueRecord::decode(bytes).map_err(|e| corrupt(format!("bad record: {e}")))?;
    Ok(KeyValue {
        key: r.key,
        create_revision: r.create_revision,
        mod_revision: r.mod_revision,
        version: r.version,
        value: r.value,
        lease: r.lease,
    })
}

/// Encodes a meta integer.
pub fn encode_i64(value: i64) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

/// Decodes a meta integer.
pub fn decode_i64(bytes: &[u8]) -> Result<i64, EngineError> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| corrupt(format!("bad meta value {bytes:?}")))?;
    Ok(i64::from_be_bytes(array))
}

fn corrupt(message: String) -> EngineError {
    EngineError::new(EngineErrorKind::Corruption, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_in_revision_order() {
        let a = encode_key(Revision::new(2, 9), true);
        let b = encode_key(Revision::new(3, 0), false);
        let c = encode_key(Revision::new(256, 0), false);
        assert!(a < b && b < c);
        assert_eq!(decode_key(&a).unwrap(), (Revision::new(2, 9), true));
        assert_eq!(decode_key(&c).unwrap(), (Revision::new(256, 0), false));
        assert!(decode_key(b"short").is_err());
    }

    #[test]
    fn value_encoding_matches_the_prost_message() {
        let kv = KeyValue {
            key: b"k".to_vec(),
            create_revision: 2,
            mod_revision: 5,
            version: 3,
            value: b"v".to_vec(),
            lease: 7,
        };
        let bytes = encode_value(&kv);
        let via_prost = KeyValueRecord {
            key: kv.key.clone(),
            create_revision: 2,
            mod_revision: 5,
            version: 3,
            value: kv.value.clone(),
            lease: 7,
        }
        .encode_to_vec();
        assert_eq!(bytes, via_prost);
        assert_eq!(decode_value(&bytes).unwrap(), kv);
    }

    #[test]
    fn tombstone_keeps_only_the_key() {
        let kv = decode_value(&encode_tombstone(b"gone")).unwrap();
        assert_eq!(kv, KeyValue { key: b"gone".to_vec(), ..Default::default() });
    }
}
