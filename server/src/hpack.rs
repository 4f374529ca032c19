//! HPACK (RFC 7541), read as the server's HTTP/2 stack (h2) reads it, for the header-block
//! reader (`header_blocks.rs`); and the plainest encoding, which leaves the reader's
//! dynamic table alone.
//!
//! Written here rather than taken whole from an HPACK crate because every header block of
//! every connection goes through it, hostile ones included: the maintained crate
//! (loona-hpack) builds a hash map of the whole Huffman code for each Huffman-coded string,
//! so a block of tiny strings would cost the server a hundred times what it costs the
//! client. Huffman strings are decoded with httlib-huffman's table-driven decoder. The rules
//! h2 applies are applied here too: a table size update only before the block's first field
//! and never above the size the server allows, integers of at most five octets, no index 0
//! or past the table.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;

/// What makes a block undecodable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Error {
    /// An integer or string that runs past the block, or an integer over five octets.
    Truncated,
    /// A Huffman string that is not a valid code (EOS inside, or bad padding).
    Huffman,
    /// Index 0, or an index past the static and dynamic tables.
    Index,
    /// A table size update after a field, or above the allowed size.
    TableSize,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "an integer or string runs past the block",
            Error::Huffman => "an invalid Huffman string",
            Error::Index => "an index past the header tables",
            Error::TableSize => "a table size update out of place or over the limit",
        })
    }
}

/// The size HPACK counts for an entry (and h2 for a field of a header list).
pub(crate) fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

/// A decoded field: its name and value, borrowed from the block or a table where they can be.
type Field<'b> = (Cow<'b, [u8]>, Cow<'b, [u8]>);

/// One side of a connection's HPACK state: the dynamic table as the peer's encoder keeps it.
pub(crate) struct Decoder {
    /// Newest first: index 62 is `entries[0]`.
    entries: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// The entries' sizes added up; never above `max_size`.
    size: usize,
    max_size: usize,
    /// SETTINGS_HEADER_TABLE_SIZE: no size update may exceed it.
    allowed: usize,
}

impl Decoder {
    /// A decoder whose table starts at, and may never exceed, `allowed` bytes.
    pub(crate) fn new(allowed: usize) -> Self {
        Decoder { entries: VecDeque::new(), size: 0, max_size: allowed, allowed }
    }

    /// Decodes `block`, calling `field` with each field in order, and updates the table as
    /// the peer's encoder did. On an error the table is as far as the block got.
    pub(crate) fn decode(&mut self, block: &[u8], mut field: impl FnMut(&[u8], &[u8])) -> Result<(), Error> {
        let mut at = 0;
        let mut fields_seen = false;
        while at < block.len() {
            let first = block[at];
            if first & 0x80 != 0 {
                let index = integer(block, &mut at, 7)?;
                let (name, value) = self.get(index)?;
                field(name, value);
            } else if first & 0xc0 == 0x40 {
                let (name, value) = self.literal(block, &mut at, 6)?;
                let (name, value) = (name.into_owned(), value.into_owned());
                field(&name, &value);
                self.insert(name, value);
            } else if first & 0xe0 == 0x20 {
                let size = integer(block, &mut at, 5)?;
                if fields_seen || size > self.allowed {
                    return Err(Error::TableSize);
                }
                self.max_size = size;
                self.evict_to(size);
                continue;
            } else {
                // Without indexing (0000) or never indexed (0001).
                let (name, value) = self.literal(block, &mut at, 4)?;
                field(&name, &value);
            }
            fields_seen = true;
        }
        Ok(())
    }

    fn get(&self, index: usize) -> Result<(&[u8], &[u8]), Error> {
        match index {
            0 => Err(Error::Index),
            1..=61 => {
                let (name, value) = STATIC_TABLE[index - 1];
                Ok((name.as_bytes(), value.as_bytes()))
            }
            _ => self.entries.get(index - 62).map(|(n, v)| (n.as_slice(), v.as_slice())).ok_or(Error::Index),
        }
    }

    /// A literal field whose first octet has a `prefix`-bit name index (0: a literal name).
    fn literal<'b>(&'b self, block: &'b [u8], at: &mut usize, prefix: u8) -> Result<Field<'b>, Error> {
        let index = integer(block, at, prefix)?;
        let name = if index == 0 { string(block, at)? } else { Cow::Borrowed(self.get(index)?.0) };
        let value = string(block, at)?;
        Ok((name, value))
    }

    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let size = entry_size(&name, &value);
        if size > self.max_size {
            // An entry larger than the table empties it and is not kept (RFC 7541, 4.4).
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        self.entries.push_front((name, value));
    }

    fn evict_to(&mut self, size: usize) {
        while self.size > size {
            let (name, value) = self.entries.pop_back().expect("a table with a size holds entries");
            self.size -= entry_size(&name, &value);
        }
    }
}

/// The integer at `block[*at]` with a `prefix`-bit prefix (RFC 7541, 5.1); advances `at`.
fn integer(block: &[u8], at: &mut usize, prefix: u8) -> Result<usize, Error> {
    let mask = (1u16 << prefix) as usize - 1;
    let first = *block.get(*at).ok_or(Error::Truncated)?;
    *at += 1;
    let mut value = usize::from(first) & mask;
    if value < mask {
        return Ok(value);
    }
    // At most four octets follow the prefix, as h2 allows: the value stays under 2^28 + 2^8.
    for shift in [0, 7, 14, 21] {
        let octet = *block.get(*at).ok_or(Error::Truncated)?;
        *at += 1;
        value += usize::from(octet & 0x7f) << shift;
        if octet & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Error::Truncated)
}

/// The string at `block[*at]` (RFC 7541, 5.2), Huffman-decoded if so marked; advances `at`.
fn string<'b>(block: &'b [u8], at: &mut usize) -> Result<Cow<'b, [u8]>, Error> {
    let huffman = block.get(*at).ok_or(Error::Truncated)? & 0x80 != 0;
    let length = integer(block, at, 7)?;
    let end = at.checked_add(length).filter(|&end| end <= block.len()).ok_or(Error::Truncated)?;
    let raw = &block[*at..end];
    *at = end;
    if !huffman {
        return Ok(Cow::Borrowed(raw));
    }
    let mut decoded = Vec::with_capacity(raw.len() * 8 / 5);
    httlib_huffman::decode(raw, &mut decoded, httlib_huffman::DecoderSpeed::FiveBits)
        .map_err(|_| Error::Huffman)?;
    Ok(Cow::Owned(decoded))
}

/// Appends `fields` to `out` encoded without touching the dynamic table: a whole static
/// entry by its index, a static name by its index with a literal value, anything else as
/// literals, none indexed and none Huffman-coded.
pub(crate) fn encode_plain<'f>(fields: impl IntoIterator<Item = (&'f [u8], &'f [u8])>, out: &mut Vec<u8>) {
    for (name, value) in fields {
        let mut name_index = 0;
        let mut whole = None;
        for (i, (static_name, static_value)) in STATIC_TABLE.iter().enumerate() {
            if static_name.as_bytes() == name {
                if static_value.as_bytes() == value {
                    whole = Some(i + 1);
                    break;
                }
                if name_index == 0 {
                    name_index = i + 1;
                }
            }
        }
        if let Some(index) = whole {
            put_integer(out, 0x80, 7, index);
            continue;
        }
        put_integer(out, 0x00, 4, name_index);
        if name_index == 0 {
            put_integer(out, 0x00, 7, name.len());
            out.extend_from_slice(name);
        }
        put_integer(out, 0x00, 7, value.len());
        out.extend_from_slice(value);
    }
}

fn put_integer(out: &mut Vec<u8>, flags: u8, prefix: u8, value: usize) {
    let mask = (1usize << prefix) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// RFC 7541, Appendix A.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

#[cfg(test)]
mod tests {
    use super::*;

    type Fields = Vec<(Vec<u8>, Vec<u8>)>;

    fn decode_all(decoder: &mut Decoder, block: &[u8]) -> Result<Fields, Error> {
        let mut fields = Vec::new();
        decoder.decode(block, |n, v| fields.push((n.to_vec(), v.to_vec())))?;
        Ok(fields)
    }

    #[test]
    fn blocks_from_another_encoder_decode_to_its_fields_with_the_same_table() {
        // loona-hpack's encoder indexes every new name and refers to its dynamic table after.
        let mut encoder = loona_hpack::Encoder::new();
        let mut decoder = Decoder::new(4096);
        for round in 0..20 {
            let mut fields: Vec<(Vec<u8>, Vec<u8>)> =
                STATIC_TABLE.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
            fields.push((b":path".to_vec(), format!("/p/{}", round % 3).into_bytes()));
            fields.push((format!("x-{round}").into_bytes(), vec![b'v'; 700]));
            fields.push((b"te".to_vec(), b"trailers".to_vec()));
            let block = encoder.encode(fields.iter().map(|(n, v)| (n.as_slice(), v.as_slice())));
            assert_eq!(decode_all(&mut decoder, &block).unwrap(), fields, "round {round}");
        }
    }

    #[test]
    fn huffman_strings_and_large_integers_decode() {
        let mut value = Vec::new();
        httlib_huffman::encode(b"http://127.0.0.1:2379", &mut value).unwrap();
        let mut block = vec![0x41, 0x80 | value.len() as u8];
        block.extend(&value);
        // A name of 300 bytes: its length takes two more octets.
        block.extend([0x00, 0x7f, 0x80 | 45, 1]); // 127 + 45 + 128
        block.extend([b'n'; 300]);
        block.extend([0x01, b'v']);
        let mut decoder = Decoder::new(4096);
        let fields = decode_all(&mut decoder, &block).unwrap();
        assert_eq!(fields[0], (b":authority".to_vec(), b"http://127.0.0.1:2379".to_vec()));
        assert_eq!(fields[1], (vec![b'n'; 300], b"v".to_vec()));
        // The first was indexed: 62 is it now.
        assert_eq!(decode_all(&mut decoder, &[0x80 | 62]).unwrap(), fields[..1]);
    }

    #[test]
    fn what_h2_refuses_does_not_decode() {
        let refused: [(&[u8], Error); 8] = [
            (&[0x80], Error::Index),
            (&[0x80 | 62], Error::Index),
            (&[0x82, 0x3f, 0xe1, 0x1f], Error::TableSize), // an update after a field
            (&[0x3f, 0xe2, 0x1f], Error::TableSize),       // 4,097 > 4,096
            (&[0x7f, 0xff, 0xff, 0xff, 0xff, 0x01], Error::Truncated), // six octets
            (&[0x00, 0x05, b'a'], Error::Truncated),
            (&[0x00, 0x81, 0xff, 0x00], Error::Huffman), // padding of eight bits
            (&[0x00, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00], Error::Huffman), // EOS in the string
        ];
        for (block, error) in refused {
            assert_eq!(decode_all(&mut Decoder::new(4096), block), Err(error), "{block:x?}");
        }
        // A size update first is fine, and evicts.
        let mut decoder = Decoder::new(4096);
        decode_all(&mut decoder, &[0x40, 0x01, b'a', 0x01, b'b']).unwrap();
        assert_eq!(decode_all(&mut decoder, &[0x20, 0x80 | 62]), Err(Error::Index));
    }

    #[test]
    fn an_entry_larger_than_the_table_empties_it() {
        let mut decoder = Decoder::new(64);
        decode_all(&mut decoder, &[0x40, 0x01, b'a', 0x01, b'b']).unwrap();
        let mut big = vec![0x40, 0x01, b'c', 0x20];
        big.extend([b'x'; 32]);
        decode_all(&mut decoder, &big).unwrap();
        assert!(decoder.entries.is_empty() && decoder.size == 0);
    }

    #[test]
    fn plain_encoding_round_trips_and_indexes_nothing() {
        let fields: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"POST"),
            (b":authority", b"127.0.0.1:2379"),
            (b"content-type", b"application/grpc"),
            (b"x-long", &[b'z'; 200]),
        ];
        let mut block = Vec::new();
        encode_plain(fields.iter().copied(), &mut block);
        let mut decoder = Decoder::new(4096);
        let decoded = decode_all(&mut decoder, &block).unwrap();
        let expected: Vec<(Vec<u8>, Vec<u8>)> =
            fields.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        assert_eq!(decoded, expected);
        assert!(decoder.entries.is_empty());
        assert_eq!(block[0], 0x83);
    }
}
