//! The on-disk form of a lease, in the engine's `lease` keyspace: key = the id as 8 bytes
//! big-endian; value = etcd's `leasepb.Lease` (ID=1, TTL=2, RemainingTTL=3), with
//! RemainingTTL always 0 (etcd writes it only when lease checkpointing is on).

use prost::Message;

use crate::engine::{EngineError, EngineErrorKind};

#[derive(Clone, PartialEq, Message)]
struct LeaseRecord {
    #[prost(int64, tag = "1")]
    id: i64,
    #[prost(int64, tag = "2")]
    ttl: i64,
    #[prost(int64, tag = "3")]
    remaining_ttl: i64,
}

/// The `lease` keyspace key of lease `id`.
pub fn key(id: i64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

/// The stored record of a lease granted with `ttl`.
pub fn encode(id: i64, ttl: i64) -> Vec<u8> {
    LeaseRecord { id, ttl, remaining_ttl: 0 }.encode_to_vec()
}

/// Decodes a stored lease into its id and TTL.
pub fn decode(bytes: &[u8]) -> Result<(i64, i64), EngineError> {
    let r = LeaseRecord::decode(bytes)
        .map_err(|e| EngineError::new(EngineErrorKind::Corruption, format!("bad lease record: {e}")))?;
    Ok((r.id, r.ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_keys_sort_by_id() {
        assert_eq!(decode(&encode(0x694d_8b1e_0c2e_4d04, 60)).unwrap(), (0x694d_8b1e_0c2e_4d04, 60));
        assert!(key(1) < key(256));
        assert!(decode(b"\xff").is_err());
    }
}
