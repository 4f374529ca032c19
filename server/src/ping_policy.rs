//! etcd's `--grpc-keepalive-min-time`: a client may ping at most that often. grpc-go's
//! server counts a ping that comes sooner than the minimum after the last one as a strike,
//! forgives the strikes once the connection carries calls again, and closes the connection
//! at the third strike. hyper's HTTP/2 server answers every ping and has no such policy, so
//! the inbound frame reader (`inbound.rs`) shows each frame the client sends to this
//! policy, and ends the connection with an error once it is broken.

use std::io;
use std::time::{Duration, Instant};

use crate::header_blocks::HEADERS;

const DATA: u8 = 0x0;
pub(crate) const PING: u8 = 0x6;
pub(crate) const ACK: u8 = 0x1;
/// grpc-go's `maxPingStrikes`: the third early ping closes the connection.
const MAX_STRIKES: u32 = 2;

/// The pings of one connection so far.
pub(crate) struct PingPolicy {
    min_time: Duration,
    last_ping: Option<Instant>,
    strikes: u32,
}

impl PingPolicy {
    /// A client that may ping at most once per `min_time`.
    pub(crate) fn new(min_time: Duration) -> Self {
        PingPolicy { min_time, last_ping: None, strikes: 0 }
    }

    /// The client sent a frame of `kind` with `flags` at `now`; fails once it has pinged
    /// too often.
    pub(crate) fn frame(&mut self, kind: u8, flags: u8, now: Instant) -> io::Result<()> {
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

    #[cfg(test)]
    pub(crate) fn strikes(&self) -> u32 {
        self.strikes
    }
}
