//! Budgets for answers their clients have not taken yet. HTTP/2 lets a client open streams
//! and grant them no flow-control window, or grant windows and never read the socket: each
//! Range answer then waits in the server, whole, for as long as the client likes. A client
//! that asked for a 4 MiB range on 200 such streams held 800 MiB of the server's memory for
//! 20 KiB of requests (etcd's gRPC server holds them the same way).
//!
//! Here a Range answer's bytes are counted from the moment it is encoded until its last
//! byte has been written to the connection: the count travels with the bytes themselves
//! ([`AnswerChunk`]), and h2 drops a chunk only once it has written all of it. They count
//! against two budgets, the connection's and the server's (all connections together). A
//! Range whose answer would pass either is refused with etcd's "too many requests", before
//! it is even read from the store once its connection already holds answers over the
//! budget.
//!
//! Two exceptions keep a client that reads what it asks for from being refused for
//! another's sake, or for an answer's size alone: a connection holding no answers may
//! always have one, however large, if the server holds none either, and may always have
//! one of up to [`ALWAYS_ALLOWED`] bytes. The server's memory for unsent answers is then at
//! most its budget plus that much per connection.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};

/// The size of answer a connection holding none may always have, whatever the server's
/// other connections hold.
pub(crate) const ALWAYS_ALLOWED: usize = 64 << 10;

/// Bytes of answers held, against a maximum.
#[derive(Debug)]
struct Tally {
    bytes: AtomicUsize,
    max: usize,
}

impl Tally {
    fn new(max: usize) -> Arc<Tally> {
        Arc::new(Tally { bytes: AtomicUsize::new(0), max })
    }

    fn held(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Adds `size` if `allowed` says it may be added to what is held now.
    fn add_if(&self, size: usize, allowed: impl Fn(usize) -> bool) -> bool {
        self.bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| allowed(held).then(|| held + size))
            .is_ok()
    }

    fn remove(&self, size: usize) {
        self.bytes.fetch_sub(size, Ordering::Relaxed);
    }
}

/// The budgets one connection's answers count against: its own, if it has one, and the
/// server's.
#[derive(Clone, Debug)]
pub(crate) struct UnsentAnswers {
    server: Arc<Tally>,
    connection: Option<Arc<Tally>>,
}

impl UnsentAnswers {
    /// A server's budget of `max` bytes across its connections, with no connection's own.
    pub(crate) fn for_server(max: usize) -> Self {
        UnsentAnswers { server: Tally::new(max), connection: None }
    }

    /// These budgets, with a new one of `max` bytes for one connection.
    pub(crate) fn for_connection(&self, max: usize) -> Self {
        UnsentAnswers { server: self.server.clone(), connection: Some(Tally::new(max)) }
    }

    /// True if this connection's next answer would be refused whatever its size: it already
    /// holds answers, and they fill its budget or the server's. (Without a connection's own
    /// budget, a small answer always fits.)
    pub(crate) fn full(&self) -> bool {
        let Some(connection) = &self.connection else {
            return false;
        };
        let held = connection.held();
        held > 0 && (held >= connection.max || self.server.held() >= self.server.max)
    }

    /// Counts `size` more bytes until the charge is dropped; `None` if the answers already
    /// held leave no room for them.
    pub(crate) fn charge(&self, size: usize) -> Option<Charge> {
        let holds_none = self.connection.as_ref().is_none_or(|c| c.held() == 0);
        if let Some(connection) = &self.connection {
            if !connection.add_if(size, |held| held == 0 || held.saturating_add(size) <= connection.max) {
                return None;
            }
        }
        let server = &self.server;
        let small = holds_none && size <= ALWAYS_ALLOWED;
        if !server.add_if(size, |held| held == 0 || small || held.saturating_add(size) <= server.max) {
            if let Some(connection) = &self.connection {
                connection.remove(size);
            }
            return None;
        }
        Some(Charge { budgets: self.clone(), size })
    }

    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        (self.connection.as_ref().map_or(0, |c| c.held()), self.server.held())
    }
}

/// Bytes counted against a connection's and the server's budgets until dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    budgets: UnsentAnswers,
    size: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(connection) = &self.budgets.connection {
            connection.remove(self.size);
        }
        self.budgets.server.remove(self.size);
    }
}

/// A piece of an answer's body, and for a Range answer's message, its charge against the
/// budgets, which lasts as long as the piece: h2 keeps the piece until it has written its
/// last byte, however long the client's flow-control window holds it back.
#[derive(Debug)]
pub struct AnswerChunk {
    bytes: Bytes,
    _charge: Option<Charge>,
}

impl Buf for AnswerChunk {
    fn remaining(&self) -> usize {
        self.bytes.remaining()
    }

    fn chunk(&self) -> &[u8] {
        self.bytes.chunk()
    }

    fn advance(&mut self, cnt: usize) {
        self.bytes.advance(cnt);
    }
}

/// The body of every answer the server sends: a service's body, its message counted if it
/// is a Range answer's.
pub struct AnswerBody {
    /// A Range answer's message, taken (and counted) before the answer was passed on.
    first: Option<Result<Frame<AnswerChunk>, tonic::Status>>,
    rest: tonic::body::Body,
}

impl AnswerBody {
    /// `body`, counted against nothing.
    pub(crate) fn uncounted(body: tonic::body::Body) -> Self {
        AnswerBody { first: None, rest: body }
    }

    /// A body whose first frame, `first`, was already taken from `rest`, its data counted by
    /// `charge`.
    pub(crate) fn counted(
        first: Option<Result<Frame<Bytes>, tonic::Status>>,
        rest: tonic::body::Body,
        charge: Option<Charge>,
    ) -> Self {
        let mut charge = charge;
        let first = first.map(|frame| {
            frame.map(|frame| frame.map_data(|bytes| AnswerChunk { bytes, _charge: charge.take() }))
        });
        AnswerBody { first, rest }
    }
}

impl From<tonic::body::Body> for AnswerBody {
    fn from(body: tonic::body::Body) -> Self {
        AnswerBody::uncounted(body)
    }
}

impl Body for AnswerBody {
    type Data = AnswerChunk;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<AnswerChunk>, tonic::Status>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(first));
        }
        Pin::new(&mut this.rest).poll_frame(cx).map(|frame| {
            frame.map(|frame| frame.map(|frame| frame.map_data(|bytes| AnswerChunk { bytes, _charge: None })))
        })
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.rest.size_hint();
        if let Some(Ok(first)) = &self.first {
            let Some(first) = first.data_ref() else {
                return hint;
            };
            let extra = first.remaining() as u64;
            hint.set_lower(hint.lower() + extra);
            if let Some(upper) = hint.upper() {
                hint.set_upper(upper + extra);
            }
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_answer_of_any_size_fits_and_more_only_within_the_connections_budget() {
        let server = UnsentAnswers::for_server(usize::MAX);
        let budget = server.for_connection(100);
        let huge = budget.charge(1_000).expect("the first answer, whatever its size");
        assert!(budget.full());
        assert!(budget.charge(1).is_none());
        drop(huge);
        assert!(!budget.full());
        let a = budget.charge(60).unwrap();
        let b = budget.charge(40).unwrap();
        assert!(budget.charge(1).is_none());
        drop(a);
        let c = budget.charge(50).unwrap();
        assert_eq!(budget.held(), (90, 90));
        drop((b, c));
        assert_eq!(budget.held(), (0, 0));
    }

    #[test]
    fn the_servers_budget_bounds_every_connection_together() {
        let server = UnsentAnswers::for_server(1_000_000);
        let (one, two, three) =
            (server.for_connection(800_000), server.for_connection(800_000), server.for_connection(800_000));
        let a = one.charge(700_000).unwrap();
        // Within its connection's budget but past the server's: refused, and not counted.
        assert!(two.charge(400_000).is_none());
        assert_eq!(two.held(), (0, 700_000));
        let b = two.charge(300_000).unwrap();
        assert!(two.full() && one.full(), "both hold answers and the server is full");
        // A connection holding nothing may still have a small answer.
        assert!(!three.full());
        assert!(three.charge(ALWAYS_ALLOWED + 1).is_none());
        let c = three.charge(ALWAYS_ALLOWED).unwrap();
        assert!(three.charge(1).is_none(), "the small answer was its one");
        drop((a, b, c));
        assert_eq!(server.held(), (0, 0));
        // With nothing held anywhere, one answer of any size.
        let d = three.charge(5_000_000).unwrap();
        assert!(one.charge(ALWAYS_ALLOWED + 1).is_none());
        drop(d);
        // Without a connection's own budget, only the server's counts, small answers go on.
        let direct = UnsentAnswers::for_server(100);
        let big = direct.charge(200).unwrap();
        assert!(!direct.full());
        assert!(direct.charge(ALWAYS_ALLOWED + 1).is_none());
        let small = direct.charge(10).unwrap();
        drop((big, small));
    }

    #[test]
    fn a_charge_lasts_as_long_as_the_bytes_it_was_made_for() {
        let budget = UnsentAnswers::for_server(10).for_connection(10);
        let charge = budget.charge(6);
        let first = Some(Ok(Frame::data(Bytes::from_static(b"sixsix"))));
        let body = AnswerBody::counted(first, tonic::body::Body::empty(), charge);
        let Some(Ok(frame)) = body.first else { panic!("the first frame") };
        let mut chunk = frame.into_data().expect("data");
        assert_eq!(budget.held(), (6, 6));
        chunk.advance(5);
        assert_eq!(budget.held(), (6, 6), "one byte not written yet");
        drop(chunk);
        assert_eq!(budget.held(), (0, 0));
    }
}
