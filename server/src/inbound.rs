//! The bytes a client sends, read along before hyper gets them. On an HTTP/2 connection the
//! reader follows the frames (9-byte headers, then payloads): every frame is shown to the
//! ping policy (`ping_policy.rs`), and header blocks to `header_blocks.rs`, which holds
//! each until it is complete and hands on either the same bytes or the block encoded again
//! with an `:authority` h2 accepts. Everything else is handed on where it was read, in the
//! caller's buffer; only bytes that follow a held or rewritten block are copied once more.
//! Connections that are not HTTP/2 (the gateway's HTTP/1) pass through untouched.
//!
//! A client that pings too often gets grpc-go's farewell (`ping_policy.rs`) written here,
//! between two of hyper's frames, after hyper has written what it had buffered; then the
//! connection ends. The server's frames are followed for that alone ([`ServerFrames`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::header_blocks::{frame_length, HeaderBlocks, Take, FRAME_HEADER};
use crate::ping_policy::{PingPolicy, Verdict, PING_LENGTH};

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
    /// Where hyper is in the frames it writes.
    written: ServerFrames,
    /// Once the client has pinged too often: what to write before the connection ends.
    farewell: Option<Farewell>,
}

impl<T> Inbound<T> {
    /// `inner`, whose client may ping at most once per `min_time`.
    pub(crate) fn new(inner: T, min_time: Duration) -> Self {
        Inbound {
            inner,
            frames: Frames::new(min_time),
            out: Vec::new(),
            out_read: 0,
            ended: false,
            written: ServerFrames::default(),
            farewell: None,
        }
    }
}

/// The farewell owed to a client that pinged too often ([`PingPolicy::farewell`]).
struct Farewell {
    bytes: Vec<u8>,
    /// Whether hyper has had its turn to write out what it had buffered: h2 flushes its
    /// frames when a read is pending, so the first read after the verdict is made to wait
    /// once. grpc-go likewise writes what it queued before (the answers to earlier pings)
    /// ahead of its GOAWAY.
    hyper_flushed: bool,
}

/// Where the server is in the frames it writes: a frame of the client's may only go in
/// between two of them.
#[derive(Default)]
struct ServerFrames {
    /// Bytes of the next frame header written so far.
    header: [u8; FRAME_HEADER],
    header_len: usize,
    payload_left: usize,
}

impl ServerFrames {
    /// hyper wrote `bytes`.
    fn wrote(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let take = bytes.len().min(self.payload_left);
                self.payload_left -= take;
                bytes = &bytes[take..];
                continue;
            }
            let take = bytes.len().min(FRAME_HEADER - self.header_len);
            self.header[self.header_len..self.header_len + take].copy_from_slice(&bytes[..take]);
            self.header_len += take;
            bytes = &bytes[take..];
            if self.header_len == FRAME_HEADER {
                self.header_len = 0;
                self.payload_left = frame_length(&self.header);
            }
        }
    }

    /// hyper wrote the first `n` bytes of `bufs`.
    fn wrote_vectored(&mut self, bufs: &[io::IoSlice<'_>], mut n: usize) {
        for buf in bufs {
            let take = buf.len().min(n);
            self.wrote(&buf[..take]);
            n -= take;
            if n == 0 {
                return;
            }
        }
    }

    /// Whether the last frame hyper started is written whole.
    fn between_frames(&self) -> bool {
        self.header_len == 0 && self.payload_left == 0
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
    /// Where the client stands with the ping policy.
    standing: Standing,
}

/// A client's standing with the ping policy.
enum Standing {
    Fine,
    /// Its ping broke the policy; the ping's opaque data so far (it is not handed on).
    Broken(Vec<u8>),
    /// The ping is read: what to write before the connection ends. Nothing more is read.
    Farewell(Vec<u8>),
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
            standing: Standing::Fine,
        }
    }

    /// Once the client has pinged too often and the ping is read: the farewell to write.
    fn take_farewell(&mut self) -> Option<Vec<u8>> {
        match std::mem::replace(&mut self.standing, Standing::Fine) {
            Standing::Farewell(bytes) => Some(bytes),
            other => {
                self.standing = other;
                None
            }
        }
    }

    /// Follows `input`, the next bytes the client sent. Answers how many of its first bytes
    /// go on where they are; the bytes after those that go on are appended to `out`. Stops
    /// at the end of a ping that broke the ping policy (nothing after it goes on; see
    /// [`take_farewell`](Frames::take_farewell)). Fails once the client has sent what can
    /// no longer be judged once its blocks are encoded again.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, now: Instant) -> io::Result<usize> {
        let mut sink = Sink { keep: 0, diverted: false, out };
        let mut at = 0;
        while at < input.len() && !matches!(self.standing, Standing::Farewell(_)) {
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
                    if let Standing::Broken(opaque) = &mut self.standing {
                        opaque.extend_from_slice(&rest[..take]);
                        sink.hold();
                        self.payload_left -= take;
                        at += take;
                        self.ping_read();
                        continue;
                    }
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
        self.payload_left = frame_length(header);
        self.holding = false;
        if self.pings.frame(header, now) == Verdict::TooManyPings {
            // The ping is answered with the farewell, not by h2.
            self.standing = Standing::Broken(Vec::with_capacity(PING_LENGTH));
            sink.hold();
            self.ping_read();
            return Ok(());
        }
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

    /// Once the whole of the ping that broke the policy is read, the farewell is due.
    fn ping_read(&mut self) {
        let Standing::Broken(opaque) = &self.standing else { return };
        if self.payload_left == 0 {
            let opaque: &[u8; PING_LENGTH] = opaque.as_slice().try_into().expect("a ping's eight bytes");
            self.standing = Standing::Farewell(self.pings.farewell(opaque));
        }
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

// Reading may write: the farewell to a client that pinged too often.
impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Inbound<T> {
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
            if let Some(bytes) = this.frames.take_farewell() {
                this.farewell = Some(Farewell { bytes, hyper_flushed: false });
            }
            if this.farewell.is_some() {
                return this.say_farewell(cx);
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

impl<T: AsyncWrite + Unpin> Inbound<T> {
    /// The client pinged too often and everything it sent before is handed on: writes the
    /// farewell between two of hyper's frames and ends the connection. The farewell goes
    /// as far as the socket takes it at once: a client that leaves the server's frames
    /// unread (hyper stuck in the middle of one, or the socket full) is not waited for.
    fn say_farewell(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let farewell = self.farewell.as_mut().expect("a farewell is due");
        if !farewell.hyper_flushed {
            farewell.hyper_flushed = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        // Taken, so that it is written once however often the connection is read from now.
        let bytes = std::mem::take(&mut farewell.bytes);
        if self.written.between_frames() {
            let mut rest = bytes.as_slice();
            while !rest.is_empty() {
                match Pin::new(&mut self.inner).poll_write(cx, rest) {
                    Poll::Ready(Ok(n)) if n > 0 => rest = &rest[n..],
                    _ => break,
                }
            }
            // Nothing else can go wrong for this connection now: it ends either way.
            let _ = Pin::new(&mut self.inner).poll_flush(cx);
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "too_many_pings: the client pings more often than --grpc-keepalive-min-time",
        )))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Inbound<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = std::task::ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.written.wrote(&buf[..written]);
        Poll::Ready(Ok(written))
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
        let this = self.get_mut();
        let written = std::task::ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        this.written.wrote_vectored(bufs, written);
        Poll::Ready(Ok(written))
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
        let mut out = crate::header_blocks::frame_header(payload.len(), kind, flags, 1).to_vec();
        out.extend_from_slice(payload);
        out
    }

    /// A ping with `opaque` as its data, on stream 0 as a ping must be.
    fn ping_of(opaque: u8) -> Vec<u8> {
        let mut ping = frame(PING, 0, &[opaque; 8]);
        ping[5..9].copy_from_slice(&[0; 4]);
        ping
    }

    fn ping() -> Vec<u8> {
        ping_of(0)
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

    /// What grpc-go sends a client that opened `last_stream` and whose ping with `opaque`
    /// broke the policy: that ping answered, then GOAWAY ENHANCE_YOUR_CALM
    /// `too_many_pings`.
    fn farewell(last_stream: u32, opaque: u8) -> Vec<u8> {
        let mut bytes = vec![0, 0, 8, PING, ACK, 0, 0, 0, 0];
        bytes.extend([opaque; 8]);
        bytes.extend([0, 0, 22, 0x7, 0, 0, 0, 0, 0]);
        bytes.extend(last_stream.to_be_bytes());
        bytes.extend(0xbu32.to_be_bytes());
        bytes.extend(b"too_many_pings");
        bytes
    }

    #[test]
    fn the_third_early_ping_is_answered_by_the_farewell_and_calls_forgive_the_earlier_ones() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut frames = Frames::new(Duration::from_secs(5));
        let mut out = Vec::new();
        frames.feed(PREFACE, &mut out, at(0)).unwrap();
        frames.feed(&ping(), &mut out, at(0)).unwrap();
        frames.feed(&ping(), &mut out, at(10)).unwrap();
        frames.feed(&ping(), &mut out, at(20)).unwrap();
        // A call comes (on stream 1, the test frames' stream): the strikes are forgiven.
        frames.feed(&frame(HEADERS, 0x4, &[0x83]), &mut out, at(25)).unwrap();
        frames.feed(&frame(0x0, 0x1, b"data"), &mut out, at(25)).unwrap();
        frames.feed(&ping(), &mut out, at(30)).unwrap();
        frames.feed(&ping(), &mut out, at(40)).unwrap();
        // Acknowledgements of the server's own pings are not pings.
        frames.feed(&frame(PING, ACK, &[0; 8]), &mut out, at(45)).unwrap();
        assert_eq!(frames.take_farewell(), None);
        out.clear();
        // The third strike: the ping is not handed on, nor what follows it.
        let mut bytes = ping_of(3);
        bytes.extend(frame(0x0, 0x1, b"after"));
        assert_eq!(frames.feed(&bytes, &mut out, at(50)).unwrap(), 0);
        assert!(out.is_empty());
        assert_eq!(frames.take_farewell(), Some(farewell(1, 3)));
        assert_eq!(frames.take_farewell(), None);
    }

    #[test]
    fn what_comes_before_the_ping_that_breaks_the_policy_goes_on_whatever_the_reads() {
        let mut bytes = PREFACE.to_vec();
        let before_ping = [frame(HEADERS, 0x4, &[0x83]), ping(), ping(), ping()].concat();
        bytes.extend(&before_ping);
        let at_ping = bytes.len();
        bytes.extend(ping_of(9));
        bytes.extend(frame(0x0, 0x1, b"after"));
        for chunk in [1, 3, 9, 17, 1000] {
            let now = Instant::now();
            let mut frames = Frames::new(Duration::from_secs(5));
            let (mut handed, mut out, mut farewell_due) = (Vec::new(), Vec::new(), None);
            for piece in bytes.chunks(chunk) {
                let keep = frames.feed(piece, &mut out, now).unwrap();
                handed.extend_from_slice(&piece[..keep]);
                handed.append(&mut out);
                farewell_due = frames.take_farewell();
                if farewell_due.is_some() {
                    break;
                }
            }
            assert_eq!(handed, bytes[..at_ping], "reads of {chunk} bytes");
            assert_eq!(farewell_due, Some(farewell(1, 9)), "reads of {chunk} bytes");
        }
    }

    /// A client of `inbound` that has pinged too often: its pings, read through `inbound`.
    async fn ping_too_often(
        inbound: &mut Inbound<tokio::io::DuplexStream>,
        client: &mut tokio::io::DuplexStream,
    ) {
        use tokio::io::AsyncWriteExt;
        let mut bytes = PREFACE.to_vec();
        for opaque in 0..4 {
            bytes.extend(ping_of(opaque));
        }
        client.write_all(&bytes).await.unwrap();
        drop(client.shutdown().await);
        let mut handed = Vec::new();
        let error = tokio::io::AsyncReadExt::read_to_end(inbound, &mut handed).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionAborted);
        assert_eq!(handed, bytes[..PREFACE.len() + 3 * 17], "the three pings before the fourth go on");
    }

    #[tokio::test]
    async fn the_farewell_goes_between_two_of_the_servers_frames_and_never_inside_one() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let server_frame = frame(0x0, 0, &[5; 30]);

        // hyper wrote a whole frame: the farewell follows it.
        let (mut client, socket) = tokio::io::duplex(4096);
        let mut inbound = Inbound::new(socket, Duration::from_secs(5));
        inbound.write_all(&server_frame).await.unwrap();
        ping_too_often(&mut inbound, &mut client).await;
        drop(inbound);
        let mut seen = Vec::new();
        client.read_to_end(&mut seen).await.unwrap();
        assert_eq!(seen, [server_frame.clone(), farewell(0, 3)].concat());

        // hyper is in the middle of a frame: nothing goes inside it.
        let (mut client, socket) = tokio::io::duplex(4096);
        let mut inbound = Inbound::new(socket, Duration::from_secs(5));
        inbound.write_all(&server_frame[..12]).await.unwrap();
        ping_too_often(&mut inbound, &mut client).await;
        drop(inbound);
        let mut seen = Vec::new();
        client.read_to_end(&mut seen).await.unwrap();
        assert_eq!(seen, server_frame[..12]);
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
