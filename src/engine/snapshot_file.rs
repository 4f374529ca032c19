//! The snapshot file: every keyspace of an engine as one byte stream, and back.
//!
//! This is etcdlite's own format, not etcd's bbolt file: `etcdutl snapshot restore` cannot
//! read it. Format version 1, all integers big-endian:
//!
//! ```text
//! snapshot = header entry* end
//! header   = "ETCDLITE" (8 bytes) ++ format version (u32)
//! entry    = 0x01 ++ keyspace name length (u8) ++ keyspace name
//!                 ++ key length (u32) ++ key ++ value length (u32) ++ value
//! end      = 0x00 ++ number of entries (u64) ++ CRC-32C (u32) of every byte before it
//! ```
//!
//! Keyspaces are named as [`Keyspace::name`] names them (`key`, `meta`, `lease`, `auth`)
//! and come in [`Keyspace::ALL`] order, each in ascending key order. The end record makes a
//! truncated stream detectable, and its checksum a damaged one.
//!
//! [`load`] also reads a snapshot the way etcd's Snapshot RPC sends it and `etcdctl
//! snapshot save` stores it: followed by zero bytes up to a multiple of [`PAGE`] bytes, then
//! the 32-byte SHA-256 of everything before it. Both are optional; the hash, when present,
//! must match.
//!
//! ```
//! use etcdlite::engine::{snapshot_file, Engine, EngineRead, Keyspace, MemoryEngine, WriteBatch};
//!
//! let source = MemoryEngine::new();
//! let mut batch = WriteBatch::new();
//! batch.put(Keyspace::Meta, b"k".to_vec(), b"v".to_vec());
//! source.write(batch, false)?;
//!
//! let mut bytes = Vec::new();
//! let written = snapshot_file::write(&*source.snapshot()?, &mut bytes)?;
//! assert_eq!((written.bytes, written.entries), (bytes.len() as u64, 1));
//!
//! let copy = MemoryEngine::new();
//! snapshot_file::load(&copy, &mut bytes.as_slice(), false)?;
//! assert_eq!(copy.get(Keyspace::Meta, b"k")?, Some(b"v".to_vec()));
//! # Ok::<(), etcdlite::engine::EngineError>(())
//! ```

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::ops::ControlFlow;

use sha2::{Digest, Sha256};

use super::{
    try_scan, Bounds, Direction, Engine, EngineError, EngineErrorKind, EngineRead, Keyspace, WriteBatch,
};

/// The first bytes of every snapshot.
pub const MAGIC: [u8; 8] = *b"ETCDLITE";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

/// etcd's clients expect a snapshot's payload to fill whole pages of this many bytes
/// before its SHA-256 trailer (bbolt's page size).
pub const PAGE: u64 = 512;
/// The length of the SHA-256 trailer.
const SHA256_LEN: u64 = 32;

const ENTRY: u8 = 0x01;
const END: u8 = 0x00;
/// Loading writes a batch once it holds this many bytes of keys and values...
const LOAD_BATCH_BYTES: usize = 4 << 20;
/// ...or this many entries.
const LOAD_BATCH_ENTRIES: usize = 10_000;
/// [`clear`] deletes this many keys per batch.
const CLEAR_BATCH: usize = 1000;

/// What [`write`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// Bytes written, end record included.
    pub bytes: u64,
    /// Entries (key-value pairs) written.
    pub entries: u64,
    /// The checksum in the end record: the CRC-32C of everything before it.
    pub checksum: u32,
}

/// Writes every keyspace of `view` to `out` as a snapshot. Pass an engine's
/// [`snapshot`](super::Engine::snapshot) so that writes made meanwhile do not tear it.
pub fn write(view: &dyn EngineRead, out: &mut dyn Write) -> Result<Written, EngineError> {
    let mut out = Out { out: BufWriter::new(out), crc: 0, bytes: 0 };
    let failed = |e: io::Error| EngineError::io(format!("writing the snapshot: {e}"));
    out.put(&MAGIC).map_err(failed)?;
    out.put(&VERSION.to_be_bytes()).map_err(failed)?;
    let mut entries = 0u64;
    for keyspace in Keyspace::ALL {
        try_scan(view, keyspace, Bounds::all(), Direction::Forward, &mut |key, value| {
            out.entry(keyspace, key, value)?;
            entries += 1;
            Ok(())
        })?;
    }
    out.put(&[END]).map_err(failed)?;
    out.put(&entries.to_be_bytes()).map_err(failed)?;
    let checksum = out.crc;
    out.put(&checksum.to_be_bytes()).map_err(failed)?;
    out.out.flush().map_err(failed)?;
    Ok(Written { bytes: out.bytes, entries, checksum })
}

/// Loads the snapshot read from `input` into `engine`, which should be empty ([`is_empty`]);
/// returns the number of entries loaded. Entries are written in batches as they are read,
/// the `meta` keyspace's last, in the final batch, only once the end record has checked
/// out (synced when `sync` is set). A truncated or damaged snapshot fails with a
/// [`Corruption`](EngineErrorKind::Corruption) error; the entries written before the damage
/// was found stay in the engine, and [`clear`] removes them.
pub fn load(engine: &dyn Engine, input: &mut dyn Read, sync: bool) -> Result<u64, EngineError> {
    let mut input = In { input: BufReader::new(input), crc: 0, sha: Sha256::new(), read: 0 };
    let magic: [u8; 8] = input.array()?;
    if magic != MAGIC {
        return Err(corrupt("not an etcdlite snapshot (bad magic bytes)".to_string()));
    }
    let version = u32::from_be_bytes(input.array()?);
    if version != VERSION {
        return Err(corrupt(format!(
            "unsupported snapshot format version {version}; this build reads version {VERSION}"
        )));
    }
    let (mut batch, mut batch_bytes, mut meta, mut entries) = (WriteBatch::new(), 0, Vec::new(), 0u64);
    loop {
        match input.array::<1>()?[0] {
            ENTRY => {}
            END => break,
            tag => return Err(corrupt(format!("snapshot record {entries} has an unknown tag {tag:#04x}"))),
        }
        let (keyspace, key, value) = input.entry()?;
        entries += 1;
        if keyspace == Keyspace::Meta {
            meta.push((key, value));
            continue;
        }
        batch_bytes += key.len() + value.len();
        batch.put(keyspace, key, value);
        if batch_bytes >= LOAD_BATCH_BYTES || batch.len() >= LOAD_BATCH_ENTRIES {
            engine.write(std::mem::take(&mut batch), false)?;
            batch_bytes = 0;
        }
    }
    let count = u64::from_be_bytes(input.array()?);
    let expected = input.crc;
    let checksum = u32::from_be_bytes(input.array()?);
    if checksum != expected {
        return Err(corrupt(format!(
            "snapshot checksum mismatch: stored {checksum:#010x}, computed {expected:#010x}"
        )));
    }
    if count != entries {
        return Err(corrupt(format!(
            "the snapshot's end record counts {count} entries, but it holds {entries}"
        )));
    }
    input.trailer()?;
    for (key, value) in meta {
        batch.put(Keyspace::Meta, key, value);
    }
    engine.write(batch, sync)?;
    Ok(entries)
}

/// True when no keyspace of `view` holds a key.
pub fn is_empty(view: &dyn EngineRead) -> Result<bool, EngineError> {
    for keyspace in Keyspace::ALL {
        let mut found = false;
        view.scan(keyspace, Bounds::all(), Direction::Forward, &mut |_, _| {
            found = true;
            ControlFlow::Break(())
        })?;
        if found {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Deletes every key of every keyspace: undoes a [`load`] that failed.
pub fn clear(engine: &dyn Engine) -> Result<(), EngineError> {
    for keyspace in Keyspace::ALL {
        let mut start = Vec::new();
        loop {
            let mut keys = Vec::new();
            engine.scan(keyspace, Bounds::from(&start), Direction::Forward, &mut |key, _| {
                keys.push(key.to_vec());
                if keys.len() == CLEAR_BATCH {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })?;
            let Some(last) = keys.last() else { break };
            start = [last.as_slice(), &[0]].concat();
            let mut batch = WriteBatch::with_capacity(keys.len());
            for key in keys {
                batch.delete(keyspace, key);
            }
            engine.write(batch, false)?;
        }
    }
    Ok(())
}

/// The writing end: counts the bytes and checksums them on the way out.
struct Out<'a> {
    out: BufWriter<&'a mut dyn Write>,
    crc: u32,
    bytes: u64,
}

impl Out<'_> {
    fn put(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)?;
        self.crc = crc32c::crc32c_append(self.crc, data);
        self.bytes += data.len() as u64;
        Ok(())
    }

    fn entry(&mut self, keyspace: Keyspace, key: &[u8], value: &[u8]) -> Result<(), EngineError> {
        let name = keyspace.name().as_bytes();
        let too_large = |what: &str, len: usize| {
            EngineError::io(format!("cannot write a snapshot entry with a {len}-byte {what} (at most 4 GiB)"))
        };
        let key_len = u32::try_from(key.len()).map_err(|_| too_large("key", key.len()))?;
        let value_len = u32::try_from(value.len()).map_err(|_| too_large("value", value.len()))?;
        let name_len = u8::try_from(name.len()).expect("keyspace names are short");
        let mut put = || -> io::Result<()> {
            self.put(&[ENTRY, name_len])?;
            self.put(name)?;
            self.put(&key_len.to_be_bytes())?;
            self.put(key)?;
            self.put(&value_len.to_be_bytes())?;
            self.put(value)
        };
        put().map_err(|e| EngineError::io(format!("writing the snapshot: {e}")))
    }
}

/// The reading end: checksums what it reads.
struct In<'a> {
    input: BufReader<&'a mut dyn Read>,
    crc: u32,
    /// The SHA-256 of every byte read, for an etcd-style trailer.
    sha: Sha256,
    read: u64,
}

impl In<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], EngineError> {
        let mut buf = [0; N];
        self.input.read_exact(&mut buf).map_err(read_failed)?;
        self.consumed(&buf);
        Ok(buf)
    }

    fn consumed(&mut self, data: &[u8]) {
        self.crc = crc32c::crc32c_append(self.crc, data);
        self.sha.update(data);
        self.read += data.len() as u64;
    }

    /// What may follow the end record: zero padding up to a whole [`PAGE`], then the
    /// SHA-256 of everything before it, as etcd's Snapshot stream ends.
    fn trailer(mut self) -> Result<(), EngineError> {
        let padding = (PAGE - self.read % PAGE) % PAGE;
        let mut rest = Vec::new();
        (&mut self.input).take(padding + SHA256_LEN + 1).read_to_end(&mut rest).map_err(read_failed)?;
        let unexpected = || corrupt("unexpected bytes after the snapshot's end record".to_string());
        if rest.is_empty() {
            return Ok(());
        }
        let padding = padding as usize;
        if rest.len() < padding || rest[..padding].iter().any(|&b| b != 0) {
            return Err(unexpected());
        }
        match rest.len() - padding {
            0 => Ok(()),
            len if len as u64 == SHA256_LEN => {
                self.sha.update(&rest[..padding]);
                let expected = self.sha.finalize();
                if rest[padding..] != expected[..] {
                    return Err(corrupt(
                        "the snapshot's SHA-256 trailer does not match its contents".to_string(),
                    ));
                }
                Ok(())
            }
            _ => Err(unexpected()),
        }
    }

    /// `len` bytes. Read in pieces rather than into a buffer of `len` allocated up front,
    /// so a damaged length fails as a truncation instead of allocating gigabytes.
    fn bytes(&mut self, len: usize) -> Result<Vec<u8>, EngineError> {
        let mut buf = Vec::new();
        (&mut self.input).take(len as u64).read_to_end(&mut buf).map_err(read_failed)?;
        if buf.len() < len {
            return Err(truncated());
        }
        self.consumed(&buf);
        Ok(buf)
    }

    /// The rest of an entry, after its tag.
    fn entry(&mut self) -> Result<(Keyspace, Vec<u8>, Vec<u8>), EngineError> {
        let name_len = self.array::<1>()?[0];
        let name = self.bytes(usize::from(name_len))?;
        let keyspace =
            Keyspace::ALL.into_iter().find(|ks| ks.name().as_bytes() == name).ok_or_else(|| {
                corrupt(format!(
                    "the snapshot names an unknown keyspace {:?}",
                    String::from_utf8_lossy(&name)
                ))
            })?;
        let key_len = u32::from_be_bytes(self.array()?);
        let key = self.bytes(key_len as usize)?;
        let value_len = u32::from_be_bytes(self.array()?);
        let value = self.bytes(value_len as usize)?;
        Ok((keyspace, key, value))
    }
}

fn read_failed(e: io::Error) -> EngineError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return truncated();
    }
    EngineError::io(format!("reading the snapshot: {e}"))
}

fn truncated() -> EngineError {
    corrupt("the snapshot is truncated".to_string())
}

fn corrupt(message: String) -> EngineError {
    EngineError::new(EngineErrorKind::Corruption, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::MemoryEngine;

    fn sample() -> MemoryEngine {
        let engine = MemoryEngine::new();
        let mut batch = WriteBatch::new();
        batch.put(Keyspace::Kv, b"k1".to_vec(), b"v1".to_vec());
        batch.put(Keyspace::Kv, b"k2".to_vec(), Vec::new());
        batch.put(Keyspace::Meta, b"m".to_vec(), b"1".to_vec());
        batch.put(Keyspace::Lease, b"l".to_vec(), b"lease".to_vec());
        engine.write(batch, false).unwrap();
        engine
    }

    fn bytes_of(engine: &MemoryEngine) -> Vec<u8> {
        let mut bytes = Vec::new();
        write(&*engine.snapshot().unwrap(), &mut bytes).unwrap();
        bytes
    }

    fn contents(engine: &MemoryEngine) -> Vec<(Keyspace, Vec<u8>, Vec<u8>)> {
        let mut all = Vec::new();
        for ks in Keyspace::ALL {
            engine
                .scan(ks, Bounds::all(), Direction::Forward, &mut |k, v| {
                    all.push((ks, k.to_vec(), v.to_vec()));
                    ControlFlow::Continue(())
                })
                .unwrap();
        }
        all
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let engine = MemoryEngine::new();
        let mut batch = WriteBatch::new();
        batch.put(Keyspace::Lease, b"k".to_vec(), b"vv".to_vec());
        engine.write(batch, false).unwrap();
        let bytes = bytes_of(&engine);
        let mut want = b"ETCDLITE\0\0\0\x01".to_vec();
        want.extend_from_slice(b"\x01\x05lease\0\0\0\x01k\0\0\0\x02vv");
        want.extend_from_slice(b"\0\0\0\0\0\0\0\0\x01");
        want.extend_from_slice(&crc32c::crc32c(&want).to_be_bytes());
        assert_eq!(bytes, want);
    }

    #[test]
    fn a_snapshot_loads_back_into_the_same_contents() {
        let source = sample();
        let bytes = bytes_of(&source);
        let copy = MemoryEngine::new();
        assert!(is_empty(&copy).unwrap());
        assert_eq!(load(&copy, &mut bytes.as_slice(), true).unwrap(), 4);
        assert_eq!(contents(&copy), contents(&source));
        assert!(!is_empty(&copy).unwrap());
    }

    #[test]
    fn every_truncation_is_refused_and_meta_is_never_loaded() {
        let bytes = bytes_of(&sample());
        for cut in 0..bytes.len() {
            let copy = MemoryEngine::new();
            let err = load(&copy, &mut &bytes[..cut], false).unwrap_err();
            assert_eq!(err.kind(), EngineErrorKind::Corruption, "cut at {cut}: {err}");
            assert_eq!(copy.get(Keyspace::Meta, b"m").unwrap(), None, "cut at {cut}");
            clear(&copy).unwrap();
            assert!(is_empty(&copy).unwrap());
        }
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let bytes = bytes_of(&sample());
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            let err = load(&MemoryEngine::new(), &mut damaged.as_slice(), false).unwrap_err();
            assert_eq!(err.kind(), EngineErrorKind::Corruption, "flip at {at}: {err}");
        }
    }

    /// `bytes` as etcd's Snapshot stream carries them: padded with zeros to whole pages,
    /// then their SHA-256.
    fn as_etcd_sends(mut bytes: Vec<u8>) -> Vec<u8> {
        bytes.resize((bytes.len() as u64).next_multiple_of(PAGE) as usize, 0);
        let sha = Sha256::digest(&bytes);
        bytes.extend_from_slice(&sha);
        bytes
    }

    #[test]
    fn page_padding_and_a_matching_sha256_trailer_are_accepted() {
        let source = sample();
        let plain = bytes_of(&source);
        let sent = as_etcd_sends(plain.clone());
        assert_eq!(sent.len() as u64 % PAGE, SHA256_LEN);
        let copy = MemoryEngine::new();
        load(&copy, &mut sent.as_slice(), false).unwrap();
        assert_eq!(contents(&copy), contents(&source));
        // Padding alone, without the hash, is accepted too.
        let padded = &sent[..sent.len() - SHA256_LEN as usize];
        load(&MemoryEngine::new(), &mut &padded[..], false).unwrap();
    }

    #[test]
    fn a_damaged_trailer_or_padding_is_refused() {
        let sent = as_etcd_sends(bytes_of(&sample()));
        let mut bad_sha = sent.clone();
        *bad_sha.last_mut().unwrap() ^= 1;
        let err = load(&MemoryEngine::new(), &mut bad_sha.as_slice(), false).unwrap_err();
        assert!(err.message().contains("SHA-256 trailer does not match"), "{err}");
        let mut bad_padding = sent.clone();
        let first_pad = bytes_of(&sample()).len();
        bad_padding[first_pad] = 1;
        let err = load(&MemoryEngine::new(), &mut bad_padding.as_slice(), false).unwrap_err();
        assert!(err.message().contains("after the snapshot's end"), "{err}");
        let mut longer = sent.clone();
        longer.push(0);
        let err = load(&MemoryEngine::new(), &mut longer.as_slice(), false).unwrap_err();
        assert!(err.message().contains("after the snapshot's end"), "{err}");
    }

    #[test]
    fn trailing_bytes_and_other_versions_are_refused() {
        let mut bytes = bytes_of(&sample());
        bytes.push(7);
        let err = load(&MemoryEngine::new(), &mut bytes.as_slice(), false).unwrap_err();
        assert!(err.message().contains("after the snapshot's end"), "{err}");
        let mut v2 = bytes_of(&MemoryEngine::new());
        v2[11] = 2;
        let err = load(&MemoryEngine::new(), &mut v2.as_slice(), false).unwrap_err();
        assert!(err.message().contains("unsupported snapshot format version 2"), "{err}");
    }

    #[test]
    fn clear_empties_keyspaces_larger_than_one_batch() {
        let engine = MemoryEngine::new();
        let mut batch = WriteBatch::new();
        for i in 0..(CLEAR_BATCH * 2 + 7) {
            batch.put(Keyspace::Kv, format!("{i:05}").into_bytes(), Vec::new());
        }
        engine.write(batch, false).unwrap();
        clear(&engine).unwrap();
        assert!(is_empty(&engine).unwrap());
    }
}
