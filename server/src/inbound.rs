//! The bytes a client sends, read along before hyper gets them. On an HTTP/2 connection the
//! reader follows the frames (9-byte headers, then payloads): every frame is shown to the
//! ping policy (`ping_policy.rs`), and header blocks to `header_blocks.rs`, which holds
//! each until it is complete and hands on either the same bytes or the block encoded again
//! with an `:authority` h2 accepts. Everything else is handed on where it was read, in the
//! caller's buffer; only bytes that follow a held or rewritten block are copied once more.
//! Connections that are not HTTP/2 (the gateway's HTTP/1) pass through untouched.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::header_blocks::{frame_length, HeaderBlocks, Take, FRAME_HEADER};
use crate::ping_policy::PingPolicy;

/// What every HTTP/2 connection starts with.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection's bytes, read through the ping policy and the header-block reader.
pub(crate) struct Inbound<T> {
    inner: T,
    frames: Frames,
    /// Bytes to hand on before any more are read: those after a held block, in order.
    out: Vec<u8>,
    out_read: usize,
    /// The client has closed its side; `out` is all that is left.
    ended: bool,
}

impl<T> Inbound<T> {
    /// `inner`, whose client may ping at most once per `min_time`.
    pub(crate) fn new(inner: T, min_time: Duration) -> Self {
        Inbound { inner, frames: Frames::new(min_time), out: Vec::new(), out_read: 0, ended: false }
    }
}

/// Where the reader is in the client's frames.
struct Frames {
    /// Preface bytes still to see; `None` once the connection turned out not to be HTTP/2.
    preface: Option<usize>,
    header: [u8; FRAME_HEADER],
    header_len: usize,
    payload_left: usize,
    /// Whether the current frame's payload is held by `blocks`.
    holding: bool,
    pings: PingPolicy,
    blocks: HeaderBlocks,
}

/// Where the bytes of one read go: a prefix of the read stays where it is, in the caller's
/// buffer, until a byte is held or inserted; every byte after that is appended to `out`.
struct Sink<'a> {
    keep: usize,
    diverted: bool,
    out: &'a mut Vec<u8>,
}

impl Sink<'_> {
    fn pass(&mut self, input: &[u8], from: usize, to: usize) {
        if self.diverted {
            self.out.extend_from_slice(&input[from..to]);
        } else {
            debug_assert_eq!(self.keep, from, "bytes pass in place only while none were held");
            self.keep = to;
        }
    }

    fn hold(&mut self) {
        self.diverted = true;
    }

    fn insert(&mut self, bytes: &[u8]) {
        self.diverted = true;
        self.out.extend_from_slice(bytes);
    }
}

impl Frames {
    fn new(min_time: Duration) -> Self {
        Frames {
            preface: Some(0),
            header: [0; FRAME_HEADER],
            header_len: 0,
            payload_left: 0,
            holding: false,
            pings: PingPolicy::new(min_time),
            blocks: HeaderBlocks::new(),
        }
    }

    /// Follows `input`, the next bytes the client sent. Answers how many of its first bytes
    /// go on where they are; the bytes after those that go on are appended to `out`. Fails
    /// once the client has pinged too often, or sent what can no longer be judged once its
    /// blocks are encoded again.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, now: Instant) -> io::Result<usize> {
        let mut sink = Sink { keep: 0, diverted: false, out };
        let mut at = 0;
        while at < input.len() {
            let rest = &input[at..];
            match self.preface {
                None => {
                    sink.pass(input, at, input.len());
                    at = input.len();
                }
                Some(seen) if seen < PREFACE.len() => {
                    let take = rest.len().min(PREFACE.len() - seen);
                    if rest[..take] != PREFACE[seen..seen + take] {
                        self.preface = None;
                        continue;
                    }
                    self.preface = Some(seen + take);
                    sink.pass(input, at, at + take);
                    at += take;
                }
                Some(_) if self.payload_left > 0 => {
                    let take = rest.len().min(self.payload_left);
                    if self.holding {
                        self.blocks.payload(&rest[..take]);
                        sink.hold();
                    } else {
                        sink.pass(input, at, at + take);
                    }
                    self.payload_left -= take;
                    at += take;
                    if self.payload_left == 0 && self.holding {
                        self.held_frame_done(&mut sink)?;
                    }
                }
                Some(_) if self.header_len == 0 && rest.len() >= FRAME_HEADER => {
                    let header: [u8; FRAME_HEADER] = rest[..FRAME_HEADER].try_into().expect("nine bytes");
                    at += FRAME_HEADER;
                    self.frame_header(&header, Some((input, at - FRAME_HEADER)), &mut sink, now)?;
                }
                Some(_) => {
                    // A frame header split between reads: held until it is whole.
                    let take = rest.len().min(FRAME_HEADER - self.header_len);
                    self.header[self.header_len..self.header_len + take].copy_from_slice(&rest[..take]);
                    self.header_len += take;
                    at += take;
                    sink.hold();
                    if self.header_len == FRAME_HEADER {
                        self.header_len = 0;
                        let header = self.header;
                        self.frame_header(&header, None, &mut sink, now)?;
                    }
                }
            }
        }
        Ok(sink.keep)
    }

    /// The client's next frame starts with `header`; `in_place` says where it lies in this
    /// read when it is there whole.
    fn frame_header(
        &mut self,
        header: &[u8; FRAME_HEADER],
        in_place: Option<(&[u8], usize)>,
        sink: &mut Sink<'_>,
        now: Instant,
    ) -> io::Result<()> {
        let [.., kind, flags, _, _, _, _] = *header;
        self.pings.frame(kind, flags, now)?;
        self.payload_left = frame_length(header);
        self.holding = false;
        match self.blocks.frame_header(header) {
            Take::Pass => match in_place {
                Some((input, from)) => sink.pass(input, from, from + FRAME_HEADER),
                None => sink.insert(header),
            },
            Take::Hold => {
                sink.hold();
                self.holding = true;
                if self.payload_left == 0 {
                    self.held_frame_done(sink)?;
                }
            }
            Take::GiveUp(bytes) => {
                self.give_up()?;
                sink.insert(&bytes);
            }
        }
        Ok(())
    }

    fn held_frame_done(&mut self, sink: &mut Sink<'_>) -> io::Result<()> {
        self.holding = false;
        match self.blocks.frame_done() {
            Ok(None) => {}
            Ok(Some(bytes)) => sink.insert(&bytes),
            Err(bytes) => {
                self.give_up()?;
                sink.insert(&bytes);
            }
        }
        Ok(())
    }

    /// Blocks can no longer be judged here: fine while h2's table still follows the
    /// client's (h2 reads the bytes as received), fatal once blocks are encoded again.
    fn give_up(&self) -> io::Result<()> {
        if self.blocks.translating() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a header block that cannot be read on a connection whose blocks are encoded again",
            ));
        }
        Ok(())
    }

    /// The client closed its side: a block or frame header still held goes on as received.
    fn end(&mut self, out: &mut Vec<u8>) {
        out.extend(self.blocks.take_held());
        out.extend_from_slice(&self.header[..self.header_len]);
        self.header_len = 0;
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Inbound<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.out_read < this.out.len() {
                let take = buf.remaining().min(this.out.len() - this.out_read);
                buf.put_slice(&this.out[this.out_read..this.out_read + take]);
                this.out_read += take;
                if this.out_read == this.out.len() {
                    this.out.clear();
                    this.out_read = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            if buf.filled().len() == before {
                this.frames.end(&mut this.out);
                this.ended = true;
                continue;
            }
            let keep = this.frames.feed(&buf.filled()[before..], &mut this.out, Instant::now())?;
            buf.set_filled(before + keep);
            if keep > 0 {
                return Poll::Ready(Ok(()));
            }
            // Everything read was held or moved to `out`: hand that on, or read on.
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Inbound<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header_blocks::{CONTINUATION, HEADERS};
    use crate::ping_policy::{ACK, PING};

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags, 0, 0, 0, 1];
        out.extend_from_slice(payload);
        out
    }

    fn ping() -> Vec<u8> {
        frame(PING, 0, &[0; 8])
    }

    /// What `frames` hands on when the bytes arrive in `chunk`-sized reads.
    fn handed_on(frames: &mut Frames, bytes: &[u8], chunk: usize) -> Vec<u8> {
        let mut handed = Vec::new();
        let mut out = Vec::new();
        for piece in bytes.chunks(chunk) {
            let keep = frames.feed(piece, &mut out, Instant::now()).unwrap();
            handed.extend_from_slice(&piece[..keep]);
            handed.append(&mut out);
        }
        frames.end(&mut out);
        handed.append(&mut out);
        handed
    }

    #[test]
    fn the_third_early_ping_ends_the_connection_and_calls_forgive_the_earlier_ones() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut frames = Frames::new(Duration::from_secs(5));
        let mut out = Vec::new();
        frames.feed(PREFACE, &mut out, at(0)).unwrap();
        frames.feed(&ping(), &mut out, at(0)).unwrap();
        frames.feed(&ping(), &mut out, at(10)).unwrap();
        frames.feed(&ping(), &mut out, at(20)).unwrap();
        // A call comes: the strikes are forgiven.
        frames.feed(&frame(0x0, 0x1, b"data"), &mut out, at(25)).unwrap();
        frames.feed(&ping(), &mut out, at(30)).unwrap();
        frames.feed(&ping(), &mut out, at(40)).unwrap();
        // Acknowledgements of the server's own pings are not pings.
        frames.feed(&frame(PING, ACK, &[0; 8]), &mut out, at(45)).unwrap();
        assert_eq!(
            frames.feed(&ping(), &mut out, at(50)).unwrap_err().kind(),
            io::ErrorKind::ConnectionAborted
        );
    }

    #[test]
    fn pings_at_the_minimum_interval_are_fine_even_byte_by_byte() {
        let start = Instant::now();
        let mut frames = Frames::new(Duration::from_secs(5));
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(0x4, 0, &[0; 12])); // SETTINGS
        for _ in 0..10 {
            bytes.extend(ping());
        }
        let (mut handed, mut out) = (Vec::new(), Vec::new());
        for (i, chunk) in bytes.chunks(1).enumerate() {
            // Every ping five seconds after the last.
            let keep = frames.feed(chunk, &mut out, start + Duration::from_secs(5 * i as u64)).unwrap();
            handed.extend_from_slice(&chunk[..keep]);
            handed.append(&mut out);
        }
        assert_eq!(frames.pings.strikes(), 0);
        // Frame headers split between reads are handed on once whole.
        assert_eq!(handed, bytes);
    }

    #[test]
    fn http1_passes_through() {
        let mut frames = Frames::new(Duration::from_secs(5));
        let mut bytes = b"POST /v3/kv/range HTTP/1.1\r\n".to_vec();
        for _ in 0..10 {
            bytes.extend(ping());
        }
        assert_eq!(handed_on(&mut frames, &bytes, 7), bytes);
        assert_eq!(frames.preface, None);
    }

    #[test]
    fn every_frame_goes_on_in_order_whatever_the_reads_and_blocks_are_whole_for_h2() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(0x4, 0, &[0; 6]));
        // Literal, not indexed: `:method: POST` then a custom field, split over a CONTINUATION.
        let hpack = [0x83u8, 0x00, 0x01, b'x', 0x01, b'y'];
        bytes.extend(frame(HEADERS, 0, &hpack[..2]));
        bytes.extend(frame(CONTINUATION, 0x4, &hpack[2..]));
        bytes.extend(frame(0x0, 0x1, &[7; 40]));
        bytes.extend(ping());
        for chunk in [1, 2, 5, 9, 10, 17, 1000] {
            let mut frames = Frames::new(Duration::from_secs(5));
            assert_eq!(handed_on(&mut frames, &bytes, chunk), bytes, "reads of {chunk} bytes");
        }
    }

    #[test]
    fn a_block_cut_short_by_the_end_of_the_connection_goes_on_as_received() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(HEADERS, 0, &[0x83]));
        bytes.extend_from_slice(&frame(CONTINUATION, 0x4, &[0x86])[..5]);
        let mut frames = Frames::new(Duration::from_secs(5));
        assert_eq!(handed_on(&mut frames, &bytes, 4), bytes);
    }

    /// `:method: POST`, `:scheme: http`, `:path: /p` and `:authority: authority`, with no
    /// reference to the dynamic table.
    fn request_block(authority: &[u8]) -> Vec<u8> {
        let mut block = vec![0x83, 0x86, 0x04, 2, b'/', b'p', 0x01, authority.len() as u8];
        block.extend_from_slice(authority);
        block
    }

    #[test]
    fn once_blocks_are_encoded_again_one_that_cannot_be_read_ends_the_connection() {
        let mut frames = Frames::new(Duration::from_secs(5));
        let mut out = Vec::new();
        frames.feed(PREFACE, &mut out, Instant::now()).unwrap();
        // Before any URL authority, an undecodable block goes on for h2 to refuse.
        let mut verbatim = Frames::new(Duration::from_secs(5));
        verbatim.feed(PREFACE, &mut out, Instant::now()).unwrap();
        let bad = frame(HEADERS, 0x4, &[0x80]);
        assert_eq!(handed_on(&mut verbatim, &bad, 100), bad);

        let keep = frames
            .feed(&frame(HEADERS, 0x4, &request_block(b"http://h:1")), &mut out, Instant::now())
            .unwrap();
        assert_eq!(keep, 0);
        assert!(!out.is_empty() && frames.blocks.translating());
        let err = frames.feed(&bad, &mut out, Instant::now()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
