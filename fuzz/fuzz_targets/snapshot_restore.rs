//! Snapshot files given to `Store::restore_snapshot` over a memory engine: arbitrary bytes
//! as they are, and well-framed snapshots (right magic, lengths and CRC-32C) of arbitrarily
//! changed records, with or without etcd's page padding and SHA-256 trailer, so that the
//! fuzzer gets past the checksum to the records. Each gives an error, after which the
//! engine is empty again, or a store that passes [`check_store`]; never a panic.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use etcdlite::engine::{snapshot_file, Keyspace, MemoryEngine};
use etcdlite::Store;
use etcdlite_fuzz::{changed_records, check_store, engine_options, records, Change};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

#[derive(Arbitrary, Debug)]
enum Trailer {
    None,
    /// Zero bytes up to a whole page.
    Padded,
    /// Padded, then the SHA-256 of what precedes it.
    Hashed,
    /// Padded, then a hash that is not the right one.
    WrongHash([u8; 32]),
}

#[derive(Arbitrary, Debug)]
enum Input {
    Raw(Vec<u8>),
    Framed {
        changes: Vec<Change>,
        /// The records in this order instead of keyspace then key order.
        shuffle: Option<Vec<u16>>,
        /// A keyspace name of the input's own for the n-th record.
        rename: Option<(u16, Vec<u8>)>,
        /// A wrong entry count in the end record.
        count: Option<u64>,
        version: Option<u32>,
        trailer: Trailer,
        /// Bytes after it all.
        extra: Vec<u8>,
    },
}

fn framed(
    records: &[(Keyspace, Vec<u8>, Vec<u8>)],
    rename: &Option<(u16, Vec<u8>)>,
    count: Option<u64>,
    version: Option<u32>,
) -> Vec<u8> {
    let mut out = snapshot_file::MAGIC.to_vec();
    out.extend_from_slice(&version.unwrap_or(snapshot_file::VERSION).to_be_bytes());
    for (i, (keyspace, key, value)) in records.iter().enumerate() {
        let name = match rename {
            Some((n, name)) if *n as usize % records.len() == i => &name[..name.len().min(255)],
            _ => keyspace.name().as_bytes(),
        };
        out.push(1);
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
    }
    out.push(0);
    out.extend_from_slice(&count.unwrap_or(records.len() as u64).to_be_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn bytes(input: &Input) -> Vec<u8> {
    let Input::Framed { changes, shuffle, rename, count, version, trailer, extra } = input else {
        let Input::Raw(raw) = input else { unreachable!("two variants") };
        return raw.clone();
    };
    let mut records = changed_records(changes);
    if let Some(order) = shuffle {
        let n = records.len().max(1);
        for (i, j) in order.iter().enumerate().take(records.len()) {
            records.swap(i, *j as usize % n);
        }
    }
    let mut out = framed(&records, rename, *count, *version);
    if !matches!(trailer, Trailer::None) {
        let page = snapshot_file::PAGE as usize;
        out.resize(out.len().div_ceil(page) * page, 0);
    }
    match trailer {
        Trailer::Hashed => {
            let hash = Sha256::digest(&out);
            out.extend_from_slice(&hash);
        }
        Trailer::WrongHash(hash) => out.extend_from_slice(hash),
        Trailer::None | Trailer::Padded => {}
    }
    out.extend_from_slice(extra);
    out
}

fuzz_target!(|input: Input| {
    let snapshot = bytes(&input);
    let engine = Arc::new(MemoryEngine::new());
    match Store::restore_snapshot(engine_options(engine.clone()), &mut snapshot.as_slice()) {
        Ok(store) => check_store(&store),
        Err(error) => {
            assert!(!error.to_string().is_empty());
            assert!(records(&*engine).is_empty(), "a failed restore left records behind: {error}");
        }
    }
});
