//! etcd's `--grpc-keepalive-min-time`: a client may ping at most that often. grpc-go's
//! server counts a ping that comes sooner than the minimum after the last one as a strike,
//! forgives the strikes once the connection carries calls again, and at the third strike
//! answers that ping, sends GOAWAY ENHANCE_YOUR_CALM with the debug data `too_many_pings`
//! and closes the connection (`http2Server.handlePing`, then `outgoingGoAwayHandler`).
//! hyper's HTTP/2 server answers every ping and has no such policy, so the inbound frame
//! reader (`inbound.rs`) shows each frame the client sends to this policy, and once it is
//! broken writes [`PingPolicy::farewell`] itself and ends the connection.

use std::time::{Duration, Instant};

use crate::header_blocks::{frame_header, frame_length, FRAME_HEADER, HEADERS};

const DATA: u8 = 0x0;
pub(crate) const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
pub(crate) const ACK: u8 = 0x1;
/// A PING's payload: its opaque data, always eight bytes.
pub(crate) const PING_LENGTH: usize = 8;
/// grpc-go's `maxPingStrikes`: the third early ping closes the connection.
const MAX_STRIKES: u32 = 2;
/// The HTTP/2 error code grpc-go's GOAWAY carries, and the debug data with it.
const ENHANCE_YOUR_CALM: u32 = 0xb;
const TOO_MANY_PINGS: &[u8] = b"too_many_pings";

/// What the policy makes of a frame the client sent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Fine,
    /// This ping broke the policy: the connection ends once its opaque data is read.
    TooManyPings,
}

/// The pings of one connection so far, and the last stream it opened (which the GOAWAY
/// names).
pub(crate) struct PingPolicy {
    min_time: Duration,
    last_ping: Option<Instant>,
    strikes: u32,
    /// grpc-go's `maxStreamID`: the highest stream id a HEADERS frame opened.
    last_stream: u32,
}

impl PingPolicy {
    /// A client that may ping at most once per `min_time`.
    pub(crate) fn new(min_time: Duration) -> Self {
        PingPolicy { min_time, last_ping: None, strikes: 0, last_stream: 0 }
    }

    /// The client sent a frame starting with `header` at `now`.
    pub(crate) fn frame(&mut self, header: &[u8; FRAME_HEADER], now: Instant) -> Verdict {
        let (kind, flags) = (header[3], header[4]);
        let stream = u32::from_be_bytes(header[5..9].try_into().expect("four bytes")) & 0x7fff_ffff;
        match kind {
            // Calls on the connection: the pings so far are forgiven.
            DATA => self.strikes = 0,
            HEADERS => {
                self.strikes = 0;
                // A new stream: odd and above every earlier one (grpc-go ignores others).
                if stream % 2 == 1 && stream > self.last_stream {
                    self.last_stream = stream;
                }
            }
            // Only a well-formed ping is one: grpc-go's framer (and h2) end the connection
            // over a PING of another length or on a stream, before any policy sees it.
            PING if flags & ACK == 0 && stream == 0 && frame_length(header) == PING_LENGTH => {
                if self.last_ping.is_some_and(|last| now.duration_since(last) < self.min_time) {
                    self.strikes += 1;
                }
                self.last_ping = Some(now);
                if self.strikes > MAX_STRIKES {
                    return Verdict::TooManyPings;
                }
            }
            _ => {}
        }
        Verdict::Fine
    }

    /// What grpc-go writes before it closes the connection of a client that pinged too
    /// often: the answer to the ping that broke the policy (whose opaque data is `opaque`),
    /// then GOAWAY ENHANCE_YOUR_CALM `too_many_pings` naming the last stream the client
    /// opened.
    pub(crate) fn farewell(&self, opaque: &[u8; PING_LENGTH]) -> Vec<u8> {
        let mut bytes = frame(PING, ACK, opaque);
        let mut goaway = self.last_stream.to_be_bytes().to_vec();
        goaway.extend_from_slice(&ENHANCE_YOUR_CALM.to_be_bytes());
        goaway.extend_from_slice(TOO_MANY_PINGS);
        bytes.extend(frame(GOAWAY, 0, &goaway));
        bytes
    }

    #[cfg(test)]
    pub(crate) fn strikes(&self) -> u32 {
        self.strikes
    }
}

/// A frame on the connection's stream 0: its header, then `payload`.
fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = frame_header(payload.len(), kind, flags, 0).to_vec();
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_farewell_is_the_pings_answer_then_grpc_gos_goaway_naming_the_last_stream_opened() {
        let now = Instant::now();
        let mut policy = PingPolicy::new(Duration::from_secs(5));
        for stream in [1, 5, 3, 2] {
            policy.frame(&frame_header(10, HEADERS, 0x4, stream), now);
        }
        let farewell = policy.farewell(&[9, 8, 7, 6, 5, 4, 3, 2]);
        let mut expected = vec![0, 0, 8, PING, ACK, 0, 0, 0, 0, 9, 8, 7, 6, 5, 4, 3, 2];
        expected.extend([0, 0, 22, GOAWAY, 0, 0, 0, 0, 0]);
        expected.extend([0, 0, 0, 5, 0, 0, 0, 0xb]);
        expected.extend(b"too_many_pings");
        assert_eq!(farewell, expected);
        // A connection that opened no stream names stream 0.
        assert_eq!(PingPolicy::new(Duration::from_secs(5)).farewell(&[0; 8])[26..30], [0, 0, 0, 0]);
    }

    #[test]
    fn only_well_formed_pings_count() {
        let now = Instant::now();
        let mut policy = PingPolicy::new(Duration::from_secs(5));
        for _ in 0..10 {
            assert_eq!(policy.frame(&frame_header(9, PING, 0, 0), now), Verdict::Fine);
            assert_eq!(policy.frame(&frame_header(8, PING, 0, 1), now), Verdict::Fine);
            assert_eq!(policy.frame(&frame_header(8, PING, ACK, 0), now), Verdict::Fine);
        }
        let verdicts: Vec<Verdict> =
            (0..4).map(|_| policy.frame(&frame_header(8, PING, 0, 0), now)).collect();
        assert_eq!(verdicts, [Verdict::Fine, Verdict::Fine, Verdict::Fine, Verdict::TooManyPings]);
    }
}
