//! etcd's `--grpc-keepalive-min-time`: a client may ping at most that often. grpc-go's
//! server counts a ping that comes sooner than the minimum after the last one as a strike,
//! forgives the strikes once the connection carries calls again, and closes the connection
//! at the third strike. hyper's HTTP/2 server answers every ping and has no such policy, so
//! this reads along the bytes a client sends: it follows the HTTP/2 frames (9-byte headers,
//! payloads skipped) and ends the connection with an error once the policy is broken.
//! Connections that are not HTTP/2 (the gateway's HTTP/1) pass through untouched.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What every HTTP/2 connection starts with.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PING: u8 = 0x6;
const ACK: u8 = 0x1;
/// grpc-go's `maxPingStrikes`: the third early ping closes the connection.
const MAX_STRIKES: u32 = 2;

/// A connection's bytes, read through the ping policy.
pub(crate) struct PingPolicy<T> {
    inner: T,
    frames: Frames,
}

impl<T> PingPolicy<T> {
    /// `inner`, whose client may ping at most once per `min_time`.
    pub(crate) fn new(inner: T, min_time: Duration) -> Self {
        PingPolicy { inner, frames: Frames::new(min_time) }
    }
}

/// Where the reader is in the client's frames.
struct Frames {
    /// Preface bytes still to see; `None` once the connection turned out not to be HTTP/2.
    preface: Option<usize>,
    header: [u8; FRAME_HEADER],
    header_len: usize,
    payload_left: usize,
    min_time: Duration,
    last_ping: Option<Instant>,
    strikes: u32,
}

impl Frames {
    fn new(min_time: Duration) -> Self {
        Frames {
            preface: Some(0),
            header: [0; FRAME_HEADER],
            header_len: 0,
            payload_left: 0,
            min_time,
            last_ping: None,
            strikes: 0,
        }
    }

    /// Follows `bytes`, the next ones the client sent; fails once it has pinged too often.
    fn feed(&mut self, mut bytes: &[u8], now: Instant) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.preface {
                None => return Ok(()),
                Some(seen) if seen < PREFACE.len() => {
                    let take = bytes.len().min(PREFACE.len() - seen);
                    if bytes[..take] != PREFACE[seen..seen + take] {
                        self.preface = None;
                        return Ok(());
                    }
                    self.preface = Some(seen + take);
                    bytes = &bytes[take..];
                }
                Some(_) if self.payload_left > 0 => {
                    let take = bytes.len().min(self.payload_left);
                    self.payload_left -= take;
                    bytes = &bytes[take..];
                }
                Some(_) => {
                    let take = bytes.len().min(FRAME_HEADER - self.header_len);
                    self.header[self.header_len..self.header_len + take].copy_from_slice(&bytes[..take]);
                    self.header_len += take;
                    bytes = &bytes[take..];
                    if self.header_len == FRAME_HEADER {
                        self.header_len = 0;
                        let [l0, l1, l2, kind, flags, ..] = self.header;
                        self.payload_left = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
                        self.frame(kind, flags, now)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn frame(&mut self, kind: u8, flags: u8, now: Instant) -> io::Result<()> {
        match kind {
            // Calls on the connection: the pings so far are forgiven.
            DATA | HEADERS => self.strikes = 0,
            PING if flags & ACK == 0 => {
                if self.last_ping.is_some_and(|last| now.duration_since(last) < self.min_time) {
                    self.strikes += 1;
                }
                self.last_ping = Some(now);
                if self.strikes > MAX_STRIKES {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "too_many_pings: the client pings more often than --grpc-keepalive-min-time",
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for PingPolicy<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        Poll::Ready(this.frames.feed(&buf.filled()[before..], Instant::now()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for PingPolicy<T> {
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

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags, 0, 0, 0, 0];
        out.extend_from_slice(payload);
        out
    }

    fn ping() -> Vec<u8> {
        frame(PING, 0, &[0; 8])
    }

    #[test]
    fn the_third_early_ping_ends_the_connection_and_calls_forgive_the_earlier_ones() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut frames = Frames::new(Duration::from_secs(5));
        frames.feed(PREFACE, at(0)).unwrap();
        frames.feed(&ping(), at(0)).unwrap();
        frames.feed(&ping(), at(10)).unwrap();
        frames.feed(&ping(), at(20)).unwrap();
        // A call comes: the strikes are forgiven.
        frames.feed(&frame(HEADERS, 0x4, b"hdrs"), at(25)).unwrap();
        frames.feed(&ping(), at(30)).unwrap();
        frames.feed(&ping(), at(40)).unwrap();
        // Acknowledgements of the server's own pings are not pings.
        frames.feed(&frame(PING, ACK, &[0; 8]), at(45)).unwrap();
        assert_eq!(frames.feed(&ping(), at(50)).unwrap_err().kind(), io::ErrorKind::ConnectionAborted);
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
        for (i, chunk) in bytes.chunks(1).enumerate() {
            // Every ping five seconds after the last.
            frames.feed(chunk, start + Duration::from_secs(5 * i as u64)).unwrap();
        }
        assert_eq!(frames.strikes, 0);
    }

    #[test]
    fn http1_passes_through() {
        let mut frames = Frames::new(Duration::from_secs(5));
        frames.feed(b"POST /v3/kv/range HTTP/1.1\r\n", Instant::now()).unwrap();
        for _ in 0..10 {
            frames.feed(&ping(), Instant::now()).unwrap();
        }
        assert_eq!(frames.preface, None);
    }
}
