//! The client's header blocks (HEADERS + CONTINUATION frames), read before h2 sees them, so
//! that an `:authority` grpc-go accepts is not refused.
//!
//! etcdctl 3.4 sends its endpoint URL (`http://127.0.0.1:2379`) as the `:authority` of some
//! calls. grpc-go (1.26 in etcd 3.4, 1.38 in 3.5) never parses `:authority`: it passes it on
//! as metadata, and its framer refuses only what it refuses in every header value (control
//! characters other than tab; bytes of 0x80 and up pass, UTF-8 or not). h2 parses it as an `http::uri::Authority` and resets the
//! stream when that fails. So each block is HPACK-decoded here and, when its one
//! `:authority` is no authority but a valid header value, the block is encoded again with
//! the authority part of the value (`127.0.0.1:2379`), or with no `:authority` at all when
//! the value has none.
//!
//! The invariant: h2's HPACK decoder and the client's encoder agree on every block h2
//! reads. Blocks go on exactly as received (h2's table then follows the client's, as this
//! decoder does) until the first one that needs a new authority; from then on every block
//! of the connection is decoded with the client's table and encoded again for h2 without
//! h2's dynamic table (static indices and literals, nothing indexed), since h2's table no
//! longer follows the client's. The HPACK itself is `hpack.rs`.
//!
//! What this cannot judge (a block h2 would refuse at the frame level, a block whose HPACK
//! does not decode, one too large) goes on as received while blocks still do, so h2 refuses
//! it exactly as before; once blocks are encoded again, such a block ends the connection.

use crate::hpack::{self, Decoder};

/// h2's largest frame payload from a client: the server's SETTINGS_MAX_FRAME_SIZE, set in
/// `dispatch.rs` (hyper's default, the HTTP/2 initial value).
pub(crate) const MAX_FRAME_SIZE: usize = 16_384;
/// The server's SETTINGS_MAX_HEADER_LIST_SIZE, set in `dispatch.rs` (hyper's default):
/// a block whose fields add up to this much or more (name + value + 32 each) is refused
/// by h2, which counts a list that reaches its limit as over it.
pub(crate) const MAX_HEADER_LIST_SIZE: usize = 16_384;
/// The server's SETTINGS_HEADER_TABLE_SIZE: the HTTP/2 initial value, which hyper keeps
/// (it sends no other); a client's table size update may not exceed it.
const HEADER_TABLE_SIZE: usize = 4_096;
/// h2 ends a connection whose block has more CONTINUATION frames without END_HEADERS than
/// this (its CONTINUATION-flood limit for the sizes above).
const MAX_CONTINUATIONS: usize = 5;

pub(crate) const HEADERS: u8 = 0x1;
pub(crate) const PUSH_PROMISE: u8 = 0x5;
pub(crate) const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The bytes of an HTTP/2 frame header: length (24 bits), type, flags, stream id.
pub(crate) const FRAME_HEADER: usize = 9;

/// The payload length a frame header (or the bytes that start with one) declares.
pub(crate) fn frame_length(header: &[u8]) -> usize {
    usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2])
}

/// The header of a frame of `kind` with `flags` on `stream`, its payload `length` bytes
/// (less than 2^24, as every frame's is).
pub(crate) fn frame_header(length: usize, kind: u8, flags: u8, stream: u32) -> [u8; FRAME_HEADER] {
    let [_, l1, l2, l3] = u32::try_from(length).expect("a frame's length fits 24 bits").to_be_bytes();
    let [s1, s2, s3, s4] = stream.to_be_bytes();
    [l1, l2, l3, kind, flags, s1, s2, s3, s4]
}

/// What becomes of a frame header the client sent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Take {
    /// Not part of a header block: it goes on to h2 as it is.
    Pass,
    /// Held here, with its payload, until its block is complete.
    Hold,
    /// Blocks can no longer be judged here. While blocks still went on as received, these
    /// bytes (the frames held so far, then this header) go on to h2, as does everything
    /// after them; h2 judges them as before.
    GiveUp(Vec<u8>),
}

/// The connection's header blocks: their HPACK state, and the block being received.
pub(crate) struct HeaderBlocks {
    /// The client's HPACK table, as the client's encoder keeps it.
    decoder: Decoder,
    /// Set once a block had to be encoded again: every later block is too.
    translating: bool,
    /// Set once blocks could not be judged here: every frame then goes on as received.
    off: bool,
    /// The frames of the block being received, as received (headers included).
    held: Vec<u8>,
    /// The frame headers in `held`: the block's first frame and its CONTINUATIONs.
    frames: usize,
    /// CONTINUATION frames without END_HEADERS so far in this block.
    continuations: usize,
    /// The flags of the frame whose payload is being held.
    last_flags: u8,
}

impl HeaderBlocks {
    pub(crate) fn new() -> Self {
        HeaderBlocks {
            decoder: Decoder::new(HEADER_TABLE_SIZE),
            translating: false,
            off: false,
            held: Vec::new(),
            frames: 0,
            continuations: 0,
            last_flags: 0,
        }
    }

    /// Whether blocks are encoded again for h2 (some block of this connection was rewritten).
    pub(crate) fn translating(&self) -> bool {
        self.translating
    }

    /// Takes the 9-byte `header` of the client's next frame: holds it if it starts or
    /// continues a header block.
    pub(crate) fn frame_header(&mut self, header: &[u8; FRAME_HEADER]) -> Take {
        if self.off {
            return Take::Pass;
        }
        let kind = header[3];
        let open = self.frames > 0;
        if !open && !matches!(kind, HEADERS | CONTINUATION | PUSH_PROMISE) {
            return Take::Pass;
        }
        let length = frame_length(header);
        let flags = header[4];
        let fits = length <= MAX_FRAME_SIZE;
        let acceptable = if open {
            // A block goes on only with CONTINUATIONs of its own stream.
            kind == CONTINUATION
                && header[5..9] == self.held[5..9]
                && (flags & END_HEADERS != 0 || self.continuations < MAX_CONTINUATIONS)
        } else {
            // A client never sends PUSH_PROMISE, nor a CONTINUATION outside a block.
            kind == HEADERS
        };
        if !(fits && acceptable) {
            return self.give_up(header);
        }
        if open && flags & END_HEADERS == 0 {
            self.continuations += 1;
        }
        self.held.extend_from_slice(header);
        self.frames += 1;
        self.last_flags = flags;
        Take::Hold
    }

    /// The next bytes of the payload of the frame being held.
    pub(crate) fn payload(&mut self, bytes: &[u8]) {
        self.held.extend_from_slice(bytes);
    }

    /// The held frame's payload is complete: once its block is complete too, the bytes that
    /// go on to h2 in its place; `Err` with the bytes to pass on when the block cannot be
    /// judged here.
    pub(crate) fn frame_done(&mut self) -> Result<Option<Vec<u8>>, Vec<u8>> {
        if self.last_flags & END_HEADERS == 0 {
            return Ok(None);
        }
        let held = std::mem::take(&mut self.held);
        self.frames = 0;
        self.continuations = 0;
        match self.block(&held) {
            Some(Some(bytes)) => Ok(Some(bytes)),
            Some(None) => Ok(Some(held)),
            None => {
                self.off = true;
                Err(held)
            }
        }
    }

    /// What is held when the client's bytes end: it goes on as received.
    pub(crate) fn take_held(&mut self) -> Vec<u8> {
        self.frames = 0;
        std::mem::take(&mut self.held)
    }

    fn give_up(&mut self, header: &[u8; FRAME_HEADER]) -> Take {
        self.off = true;
        let mut bytes = std::mem::take(&mut self.held);
        bytes.extend_from_slice(header);
        self.frames = 0;
        Take::GiveUp(bytes)
    }

    /// The complete block `frames`: `Some(None)` when it goes on as received,
    /// `Some(Some(bytes))` when these frames go in its place, `None` when it cannot be
    /// judged here.
    fn block(&mut self, frames: &[u8]) -> Option<Option<Vec<u8>>> {
        let block = Block::parse(frames)?;
        let fields = self.decode(&block.fragment)?;
        let new_authority = match fields {
            Fields::Listed(ref fields) => authority_to_send(fields),
            // h2 refuses a list this long, whatever its authority.
            Fields::TooLong => None,
        };
        if !self.translating {
            let Some(authority) = new_authority else { return Some(None) };
            let Fields::Listed(fields) = fields else { return Some(None) };
            tracing::debug!("a client sent an :authority that is no URI authority; its header blocks are encoded again from here on");
            self.translating = true;
            return Some(Some(block.encode(&fields, authority, MAX_FRAME_SIZE)));
        }
        // Once blocks are encoded again, a list too long to hold cannot go on as received.
        let Fields::Listed(fields) = fields else { return None };
        let authority = new_authority.unwrap_or(Authority::Keep);
        Some(Some(block.encode(&fields, authority, MAX_FRAME_SIZE)))
    }

    /// The fields of `fragment`, decoded with the client's table (which they update).
    fn decode(&mut self, fragment: &[u8]) -> Option<Fields> {
        let mut fields = Vec::new();
        let mut size = 0usize;
        let decoded = self.decoder.decode(fragment, |name, value| {
            // Counted as h2 counts; once at the limit nothing more is kept (indexed fields
            // could otherwise expand a small block into a huge list).
            size = size.saturating_add(hpack::entry_size(name, value));
            if fits_h2s_list(size) {
                fields.push((name.to_vec(), value.to_vec()));
            }
        });
        match decoded {
            Ok(()) if fits_h2s_list(size) => Some(Fields::Listed(fields)),
            Ok(()) => Some(Fields::TooLong),
            Err(e) => {
                tracing::debug!("a header block that does not decode: {e}");
                None
            }
        }
    }
}

/// Whether h2 takes a header list of `size` (counted as [`hpack::entry_size`] counts each
/// field): h2's `HeaderBlock::load` marks a list over size once its running size is at
/// least the limit, so a list of exactly [`MAX_HEADER_LIST_SIZE`] is refused too.
fn fits_h2s_list(size: usize) -> bool {
    size < MAX_HEADER_LIST_SIZE
}

/// A decoded header list.
enum Fields {
    Listed(Vec<(Vec<u8>, Vec<u8>)>),
    /// [`MAX_HEADER_LIST_SIZE`] or longer: h2 refuses it.
    TooLong,
}

/// What the `:authority` of a block that is encoded again becomes.
#[derive(Debug, PartialEq, Eq)]
enum Authority {
    Keep,
    Replace(Vec<u8>),
    Drop,
}

/// The `:authority` to send in place of the block's, when h2 would refuse it and grpc-go
/// would not: the authority part of a URL, or none.
fn authority_to_send(fields: &[(Vec<u8>, Vec<u8>)]) -> Option<Authority> {
    let mut authorities = fields.iter().filter(|(name, _)| name == b":authority");
    let (_, value) = authorities.next()?;
    if authorities.next().is_some() {
        // Two are malformed for h2 and grpc-go alike.
        return None;
    }
    if http::uri::Authority::try_from(value.as_slice()).is_ok() {
        return None;
    }
    // What grpc-go's framer refuses in any header value.
    if value.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f) {
        return None;
    }
    // Bytes of 0x80 and up pass that framer whether or not they are UTF-8, and etcd serves
    // the call; h2 refuses them in an authority. Such a value is no URL: it is dropped.
    let from_url = std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse::<http::Uri>().ok())
        .and_then(|url| url.authority().map(|a| a.as_str().as_bytes().to_vec()));
    Some(from_url.map_or(Authority::Drop, Authority::Replace))
}

/// A complete header block as the client framed it.
struct Block {
    /// The first frame's header bytes: its stream id (bytes 5..9) and flags.
    first: [u8; FRAME_HEADER],
    /// The HEADERS frame's priority fields, when it had them.
    priority: Option<[u8; 5]>,
    /// The HPACK bytes of all its frames, padding removed.
    fragment: Vec<u8>,
}

impl Block {
    /// `frames` (a HEADERS frame and its CONTINUATIONs, whole); `None` when the padding or
    /// priority fields do not fit in the frame.
    fn parse(frames: &[u8]) -> Option<Block> {
        let mut first = [0; FRAME_HEADER];
        first.copy_from_slice(frames.get(..FRAME_HEADER)?);
        let mut block = Block { first, priority: None, fragment: Vec::new() };
        let mut rest = frames;
        while !rest.is_empty() {
            let header = rest.get(..FRAME_HEADER)?;
            let length = frame_length(header);
            let (kind, flags) = (header[3], header[4]);
            let mut payload = rest.get(FRAME_HEADER..FRAME_HEADER + length)?;
            rest = &rest[FRAME_HEADER + length..];
            if kind == HEADERS {
                let mut padding = 0;
                if flags & PADDED != 0 {
                    let (&pad, after) = payload.split_first()?;
                    padding = usize::from(pad);
                    payload = after;
                }
                if flags & PRIORITY != 0 {
                    let fields = payload.get(..5)?;
                    block.priority = Some(fields.try_into().expect("five bytes"));
                    payload = &payload[5..];
                }
                payload = payload.get(..payload.len().checked_sub(padding)?)?;
            }
            block.fragment.extend_from_slice(payload);
        }
        Some(block)
    }

    /// The block's frames again, its fields encoded plainly with `authority` for
    /// `:authority`, unpadded, in frames of at most `max_frame` payload bytes. (Under the
    /// server's settings a list h2 accepts always fits in one: literals are shorter than
    /// the 32 bytes h2 counts for each field.)
    fn encode(&self, fields: &[(Vec<u8>, Vec<u8>)], authority: Authority, max_frame: usize) -> Vec<u8> {
        let fields = fields.iter().filter_map(|(name, value)| {
            let value = match (&authority, name.as_slice()) {
                (Authority::Drop, b":authority") => return None,
                (Authority::Replace(new), b":authority") => new,
                _ => value,
            };
            Some((name.as_slice(), value.as_slice()))
        });
        let mut hpack = Vec::new();
        hpack::encode_plain(fields, &mut hpack);
        let end_stream = self.first[4] & END_STREAM;
        let stream = u32::from_be_bytes(self.first[5..9].try_into().expect("four bytes"));
        let mut out = Vec::with_capacity(hpack.len() + 2 * FRAME_HEADER + 5);
        let mut kind = HEADERS;
        let mut rest = hpack.as_slice();
        loop {
            let mut flags = 0;
            let mut prefix: &[u8] = &[];
            if kind == HEADERS {
                flags |= end_stream;
                if let Some(priority) = &self.priority {
                    flags |= PRIORITY;
                    prefix = priority;
                }
            }
            let take = rest.len().min(max_frame - prefix.len());
            if take == rest.len() {
                flags |= END_HEADERS;
            }
            out.extend_from_slice(&frame_header(prefix.len() + take, kind, flags, stream));
            out.extend_from_slice(prefix);
            out.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if flags & END_HEADERS != 0 {
                return out;
            }
            kind = CONTINUATION;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loona_hpack::Encoder;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = frame_header(payload.len(), kind, flags, stream).to_vec();
        out.extend_from_slice(payload);
        out
    }

    /// Feeds whole `frames` to `blocks` and returns what goes on to h2.
    fn feed(blocks: &mut HeaderBlocks, frames: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = frames;
        while !rest.is_empty() {
            let header: [u8; 9] = rest[..9].try_into().unwrap();
            let length = frame_length(&header);
            let payload = &rest[9..9 + length];
            rest = &rest[9 + length..];
            match blocks.frame_header(&header) {
                Take::Pass => {
                    out.extend_from_slice(&header);
                    out.extend_from_slice(payload);
                }
                Take::GiveUp(bytes) => {
                    out.extend(bytes);
                    out.extend_from_slice(payload);
                }
                Take::Hold => {
                    blocks.payload(payload);
                    match blocks.frame_done() {
                        Ok(Some(bytes)) | Err(bytes) => out.extend(bytes),
                        Ok(None) => {}
                    }
                }
            }
        }
        out
    }

    /// The header lists in `frames`, decoded as h2 would with its own table (by another
    /// HPACK implementation, loona-hpack's).
    fn h2_reads(decoder: &mut loona_hpack::Decoder<'static>, frames: &[u8]) -> Vec<Vec<(String, String)>> {
        let mut lists = Vec::new();
        let mut fragment = Vec::new();
        let mut rest = frames;
        while !rest.is_empty() {
            let length = frame_length(rest);
            let block = Block::parse(&rest[..9 + length]).unwrap();
            fragment.extend(block.fragment);
            let flags = rest[4];
            rest = &rest[9 + length..];
            if flags & END_HEADERS != 0 {
                let fields = decoder.decode(&std::mem::take(&mut fragment)).unwrap();
                lists.push(
                    fields
                        .into_iter()
                        .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
                        .collect(),
                );
            }
        }
        lists
    }

    fn request(authority: &str) -> Vec<(&'static [u8], Vec<u8>)> {
        vec![
            (b":method".as_slice(), b"POST".to_vec()),
            (b":scheme", b"http".to_vec()),
            (b":path", b"/etcdserverpb.KV/Range".to_vec()),
            (b":authority", authority.as_bytes().to_vec()),
            (b"content-type", b"application/grpc".to_vec()),
            (b"te", b"trailers".to_vec()),
        ]
    }

    fn encode(encoder: &mut Encoder<'static>, fields: &[(&'static [u8], Vec<u8>)]) -> Vec<u8> {
        encoder.encode(fields.iter().map(|(n, v)| (*n, v.as_slice())))
    }

    #[test]
    fn a_url_as_authority_becomes_its_host_and_port_and_later_blocks_decode_alike() {
        // The client's encoder indexes every new field, so later blocks refer to its table.
        let mut client = Encoder::new();
        let mut blocks = HeaderBlocks::new();
        let mut h2 = loona_hpack::Decoder::new();
        let authorities =
            ["127.0.0.1:2379", "http://127.0.0.1:2379", "http://127.0.0.1:2379", "127.0.0.1:2379"];
        let mut wire = Vec::new();
        for (i, authority) in authorities.iter().enumerate() {
            let stream = 1 + 2 * i as u32;
            wire.extend(frame(HEADERS, END_HEADERS, stream, &encode(&mut client, &request(authority))));
        }
        let sent = feed(&mut blocks, &wire);
        assert!(blocks.translating());
        let lists = h2_reads(&mut h2, &sent);
        assert_eq!(lists.len(), 4);
        for list in &lists {
            let authority = list.iter().find(|(n, _)| n == ":authority").map(|(_, v)| v.as_str());
            assert_eq!(authority, Some("127.0.0.1:2379"), "{list:?}");
            assert_eq!(list[2], (":path".to_string(), "/etcdserverpb.KV/Range".to_string()));
        }
    }

    #[test]
    fn blocks_with_a_valid_authority_go_on_byte_for_byte() {
        let mut client = Encoder::new();
        let mut blocks = HeaderBlocks::new();
        let mut wire =
            frame(HEADERS, END_HEADERS | END_STREAM, 1, &encode(&mut client, &request("localhost:2379")));
        wire.extend(frame(0x0, 0, 1, b"data"));
        assert_eq!(feed(&mut blocks, &wire), wire);
        assert!(!blocks.translating());
    }

    #[test]
    fn an_authority_with_no_url_in_it_is_dropped_and_one_with_control_bytes_is_left_to_h2() {
        let fields = |v: &[u8]| vec![(b":authority".to_vec(), v.to_vec())];
        assert_eq!(authority_to_send(&fields(b"not a url")), Some(Authority::Drop));
        assert_eq!(authority_to_send(&fields(b"")), Some(Authority::Drop));
        assert_eq!(
            authority_to_send(&fields(b"http://user@host:1/x")),
            Some(Authority::Replace(b"user@host:1".to_vec()))
        );
        // Not UTF-8, or UTF-8 that is no URL: served without it, as etcd serves it.
        assert_eq!(authority_to_send(&fields(b"127.0.0.1:1\xff")), Some(Authority::Drop));
        assert_eq!(authority_to_send(&fields(b"http://h\xff:1")), Some(Authority::Drop));
        assert_eq!(authority_to_send(&fields("h\u{e9}llo:1".as_bytes())), Some(Authority::Drop));
        assert_eq!(authority_to_send(&fields(b"http://a\r\nb")), None);
        assert_eq!(authority_to_send(&fields(b"host:1")), None);
        let two = vec![
            (b":authority".to_vec(), b"http://a".to_vec()),
            (b":authority".to_vec(), b"http://a".to_vec()),
        ];
        assert_eq!(authority_to_send(&two), None);
    }

    #[test]
    fn padding_priority_and_continuations_are_undone_and_a_large_block_is_split() {
        let mut client = Encoder::new();
        let mut fields = request("http://h:1");
        fields.push((b"x-big", vec![b'v'; 20_000]));
        let hpack = encode(&mut client, &fields);
        // HEADERS (padded, with priority) carrying the first 100 bytes, the rest in CONTINUATIONs.
        let mut first = vec![3u8];
        first.extend([0, 0, 0, 0, 15]);
        first.extend(&hpack[..100]);
        first.extend([0, 0, 0]);
        let mut wire = frame(HEADERS, PADDED | PRIORITY | END_STREAM, 3, &first);
        wire.extend(frame(CONTINUATION, 0, 3, &hpack[100..10_000]));
        wire.extend(frame(CONTINUATION, END_HEADERS, 3, &hpack[10_000..]));
        let mut blocks = HeaderBlocks::new();
        // Over the list size h2 allows: it goes on as received, for h2 to refuse.
        assert_eq!(feed(&mut blocks, &wire), wire);
        assert!(!blocks.translating());

        // Within the limit, the same shape is encoded again, priority kept, padding gone.
        let mut client = Encoder::new();
        let mut fields = request("http://h:1");
        fields.push((b"x-big", vec![b'v'; 15_000]));
        let hpack = encode(&mut client, &fields);
        let mut first = vec![0u8, 0, 0, 0, 15];
        first.extend(&hpack[..100]);
        let mut wire = frame(HEADERS, PRIORITY, 3, &first);
        wire.extend(frame(CONTINUATION, END_HEADERS, 3, &hpack[100..]));
        let mut blocks = HeaderBlocks::new();
        let sent = feed(&mut blocks, &wire);
        assert!(blocks.translating());
        assert_eq!(sent[3..9], [HEADERS, PRIORITY | END_HEADERS, 0, 0, 0, 3]);
        assert_eq!(sent[9..14], [0, 0, 0, 0, 15]);
        let lists = h2_reads(&mut loona_hpack::Decoder::new(), &sent);
        assert_eq!(lists.len(), 1);
        assert!(lists[0].contains(&(":authority".to_string(), "h:1".to_string())));
        assert_eq!(lists[0].len(), 7);

        // A block larger than a frame is split into CONTINUATIONs.
        let block = Block::parse(&wire).unwrap();
        let fields: Vec<(Vec<u8>, Vec<u8>)> = fields.into_iter().map(|(n, v)| (n.to_vec(), v)).collect();
        let sent = block.encode(&fields, Authority::Drop, 4_000);
        let kinds: Vec<(u8, u8)> = {
            let mut kinds = Vec::new();
            let mut rest = sent.as_slice();
            while !rest.is_empty() {
                let length = frame_length(rest);
                assert!(length <= 4_000);
                kinds.push((rest[3], rest[4]));
                rest = &rest[9 + length..];
            }
            kinds
        };
        assert_eq!(kinds[0], (HEADERS, PRIORITY));
        assert_eq!(kinds.len(), 4);
        assert_eq!(kinds[3], (CONTINUATION, END_HEADERS));
        let lists = h2_reads(&mut loona_hpack::Decoder::new(), &sent);
        assert_eq!(lists[0].len(), 6);
        assert!(lists[0].iter().all(|(n, _)| n != ":authority"));
    }

    /// `hpack` as one header block on stream 1: a HEADERS frame and as many CONTINUATIONs
    /// as frames of the largest size take.
    fn block_frames(hpack: &[u8]) -> Vec<u8> {
        let mut wire = Vec::new();
        let pieces: Vec<&[u8]> = hpack.chunks(MAX_FRAME_SIZE).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let kind = if i == 0 { HEADERS } else { CONTINUATION };
            let flags = if i + 1 == pieces.len() { END_HEADERS } else { 0 };
            wire.extend(frame(kind, flags, 1, piece));
        }
        wire
    }

    #[test]
    fn a_header_list_is_too_long_from_exactly_the_size_h2_refuses() {
        let base = request("http://h:1");
        let base_size: usize = base.iter().map(|(name, value)| hpack::entry_size(name, value)).sum();
        let pad_name: &'static [u8] = b"x-pad";
        let list_of_size = |size: usize| {
            let mut fields = base.clone();
            fields.push((pad_name, vec![b'v'; size - base_size - hpack::entry_size(pad_name, b"")]));
            fields
        };
        for size in [MAX_HEADER_LIST_SIZE - 1, MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST_SIZE + 1] {
            let fields = list_of_size(size);
            let listed: usize = fields.iter().map(|(name, value)| hpack::entry_size(name, value)).sum();
            assert_eq!(listed, size);
            let wire = block_frames(&encode(&mut Encoder::new(), &fields));
            let mut blocks = HeaderBlocks::new();
            let sent = feed(&mut blocks, &wire);
            if size < MAX_HEADER_LIST_SIZE {
                // h2 takes it: its URL authority is made one h2 accepts.
                assert!(blocks.translating(), "a list of {size}");
                let lists = h2_reads(&mut loona_hpack::Decoder::new(), &sent);
                assert!(lists[0].contains(&(":authority".to_string(), "h:1".to_string())));
            } else {
                // h2 refuses it whatever its authority: it goes on as received.
                assert!(!blocks.translating(), "a list of {size}");
                assert_eq!(sent, wire, "a list of {size}");
            }
        }
    }

    #[test]
    fn what_h2_refuses_at_the_frame_level_goes_on_as_received() {
        let mut client = Encoder::new();
        let hpack = encode(&mut client, &request("http://h:1"));
        // A block interrupted by a DATA frame.
        let mut wire = frame(HEADERS, 0, 1, &hpack[..10]);
        wire.extend(frame(0x0, 0, 1, b"x"));
        wire.extend(frame(CONTINUATION, END_HEADERS, 1, &hpack[10..]));
        let mut blocks = HeaderBlocks::new();
        assert_eq!(feed(&mut blocks, &wire), wire);
        // Too many CONTINUATIONs.
        let mut wire = frame(HEADERS, 0, 1, &hpack[..1]);
        for i in 1..8 {
            wire.extend(frame(CONTINUATION, 0, 1, &hpack[i..i + 1]));
        }
        let mut blocks = HeaderBlocks::new();
        assert_eq!(feed(&mut blocks, &wire), wire);
        // Padding longer than the frame.
        let mut padded = vec![200u8];
        padded.extend(&hpack);
        let wire = frame(HEADERS, PADDED | END_HEADERS, 1, &padded);
        let mut blocks = HeaderBlocks::new();
        assert_eq!(feed(&mut blocks, &wire), wire);
        // HPACK that does not decode (index 0).
        let wire = frame(HEADERS, END_HEADERS, 1, &[0x80]);
        let mut blocks = HeaderBlocks::new();
        assert_eq!(feed(&mut blocks, &wire), wire);
        assert!(blocks.off);
    }
}
