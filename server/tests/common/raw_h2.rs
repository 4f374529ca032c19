//! HTTP/2 frames and gRPC messages written by hand, for the tests and benches that send
//! what no client library would: the floods of `tests/floods.rs` and
//! `benches/under_attack.rs`.

/// What every HTTP/2 connection starts with.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// HTTP/2 frame types, flags, settings and error codes (RFC 9113 sections 6, 7).
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const CANCEL: u32 = 0x8;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// One frame: its 9-byte header, then `payload`.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    assert!(len < 1 << 24);
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A settings frame holding `settings`.
pub fn settings(settings: &[(u16, u32)]) -> Vec<u8> {
    let payload: Vec<u8> = settings
        .iter()
        .flat_map(|(id, value)| [id.to_be_bytes().as_slice(), &value.to_be_bytes()].concat())
        .collect();
    frame(SETTINGS, 0, 0, &payload)
}

/// An HPACK string literal, not Huffman-coded (all ours are shorter than 127 bytes).
pub fn hpack_string(out: &mut Vec<u8>, s: &str) {
    out.push(u8::try_from(s.len()).expect("a short string"));
    out.extend_from_slice(s.as_bytes());
}

/// The header block of a gRPC call to `path`, in HPACK with no dynamic table: indexed
/// `:method POST` and `:scheme http`, then literals.
pub fn grpc_headers(path: &str) -> Vec<u8> {
    let mut block = vec![0x83, 0x86];
    // `:path` and `:authority` by their static names (4 and 1), not indexed.
    block.push(0x04);
    hpack_string(&mut block, path);
    block.push(0x01);
    hpack_string(&mut block, "localhost");
    // content-type is static name 31: 15 in the 4-bit prefix, then 16.
    block.extend_from_slice(&[0x0f, 0x10]);
    hpack_string(&mut block, "application/grpc");
    block.push(0x00);
    hpack_string(&mut block, "te");
    hpack_string(&mut block, "trailers");
    block
}

/// `message` framed as gRPC does: uncompressed, its length, then its bytes.
pub fn grpc_message(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// A RangeRequest for the keys under `prefix`, encoded.
pub fn range_prefix(prefix: &[u8]) -> Vec<u8> {
    use etcdlite_server::pb::etcdserverpb::RangeRequest;
    use prost::Message;
    let mut end = prefix.to_vec();
    *end.last_mut().unwrap() += 1;
    RangeRequest { key: prefix.to_vec(), range_end: end, ..Default::default() }.encode_to_vec()
}

/// `count` calls to KV Range on streams `first`, `first + 2`, ..., each opened (HEADERS)
/// and at once reset (RST_STREAM CANCEL): the rapid reset of CVE-2023-44487.
pub fn reset_streams(first: u32, count: u32) -> Vec<u8> {
    let headers = grpc_headers("/etcdserverpb.KV/Range");
    let mut out = Vec::new();
    for stream in (0..count).map(|i| first + 2 * i) {
        out.extend(frame(HEADERS, END_HEADERS, stream, &headers));
        out.extend(frame(RST_STREAM, 0, stream, &CANCEL.to_be_bytes()));
    }
    out
}

/// A WINDOW_UPDATE granting `increment` more bytes on `stream` (0: the connection).
pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

/// `count` SETTINGS frames, each asking for the default initial window again.
pub fn settings_frames(count: usize) -> Vec<u8> {
    (0..count).flat_map(|_| settings(&[(SETTINGS_INITIAL_WINDOW_SIZE, 65_535)])).collect()
}

/// `count` PING frames (not acknowledgements).
pub fn pings(count: usize) -> Vec<u8> {
    (0..count).flat_map(|_| frame(PING, 0, 0, &[7; 8])).collect()
}

/// 100 header fields `x-pad-N` of 100 bytes each (about 11 KiB of header block).
pub fn header_pad() -> Vec<u8> {
    let mut pad = Vec::new();
    for i in 0..100 {
        pad.push(0x00);
        hpack_string(&mut pad, &format!("x-pad-{i}"));
        hpack_string(&mut pad, &"p".repeat(100));
    }
    pad
}

/// The start of a header block that never ends: a call to KV Range on stream 1 whose
/// HEADERS frame has no END_HEADERS; CONTINUATION frames of [`header_pad`] are to follow.
pub fn unfinished_headers() -> Vec<u8> {
    let mut block = grpc_headers("/etcdserverpb.KV/Range");
    block.extend(header_pad());
    frame(HEADERS, 0, 1, &block)
}

/// `count` calls to KV Range over the keys under `prefix` on streams `first`,
/// `first + 2`, ..., each sent whole.
pub fn range_calls(first: u32, count: u32, prefix: &[u8]) -> Vec<u8> {
    let headers = grpc_headers("/etcdserverpb.KV/Range");
    let request = grpc_message(&range_prefix(prefix));
    let mut out = Vec::new();
    for stream in (0..count).map(|i| first + 2 * i) {
        out.extend(frame(HEADERS, END_HEADERS, stream, &headers));
        out.extend(frame(DATA, END_STREAM, stream, &request));
    }
    out
}

/// `count` calls to KV Put on streams `first`, `first + 2`, ..., each declaring a message of
/// `declared` bytes, then sending ten bytes of it and no more (the stream left open).
pub fn declared_calls(first: u32, count: u32, declared: u32) -> Vec<u8> {
    let headers = grpc_headers("/etcdserverpb.KV/Put");
    let mut start = vec![0];
    start.extend_from_slice(&declared.to_be_bytes());
    start.extend_from_slice(&[0x0a; 10]);
    let mut out = Vec::new();
    for stream in (0..count).map(|i| first + 2 * i) {
        out.extend(frame(HEADERS, END_HEADERS, stream, &headers));
        out.extend(frame(DATA, 0, stream, &start));
    }
    out
}
