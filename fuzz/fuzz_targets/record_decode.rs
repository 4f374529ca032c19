//! Arbitrary bytes in the `kv` keyspace must be rejected as corruption, never panic.
#![no_main]

use etcdlite::mvcc::record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: (&[u8], &[u8])| {
    let (key, value) = data;
    if let Ok((rev, tombstone)) = record::decode_key(key) {
        assert_eq!(record::encode_key(rev, tombstone), key);
    }
    if let Ok(kv) = record::decode_value(value) {
        // What decodes re-encodes to something that decodes the same.
        assert_eq!(record::decode_value(&record::encode_value(&kv)).unwrap(), kv);
    }
});
