//! A connection's budget of answers its client has not taken yet. HTTP/2 lets a client
//! open streams and grant them no flow-control window: each Range answer then waits in the
//! server, whole, for as long as the client likes. A client that asks for a 4 MiB range on
//! 200 such streams held 800 MiB of the server's memory for 20 KiB of requests (etcd's
//! gRPC server holds them the same way). Here the answers of one connection still waiting
//! are counted, and once they pass the budget the next large answer is dropped and the
//! call fails with etcd's "too many requests" instead. One answer is always allowed, however
//! large, so a client that reads what it asks for is never refused for its size alone.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The bytes of answers a connection holds, not yet taken by its client.
#[derive(Debug)]
pub(crate) struct UnsentAnswers {
    bytes: AtomicUsize,
    max: usize,
}

impl UnsentAnswers {
    /// A budget of `max` bytes.
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(UnsentAnswers { bytes: AtomicUsize::new(0), max })
    }

    /// Counts `size` more bytes until the charge is dropped; `None` if the answers already
    /// waiting leave no room for them.
    pub(crate) fn charge(self: &Arc<Self>, size: usize) -> Option<Charge> {
        let mut now = self.bytes.load(Ordering::Relaxed);
        loop {
            if now > 0 && now.saturating_add(size) > self.max {
                return None;
            }
            match self.bytes.compare_exchange_weak(now, now + size, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(Charge { budget: self.clone(), size }),
                Err(actual) => now = actual,
            }
        }
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Bytes counted against a connection's budget until dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    budget: Arc<UnsentAnswers>,
    size: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.bytes.fetch_sub(self.size, Ordering::Relaxed);
    }
}

/// An answer's body whose first frame was already taken (and counted): that frame, then the
/// rest, the charge held until the body is dropped, which hyper does once it has handed the
/// whole answer to the connection and the client's window has taken it.
pub(crate) struct Charged<B: Body> {
    first: Option<Result<Frame<Bytes>, B::Error>>,
    rest: B,
    _charge: Option<Charge>,
}

impl<B: Body> Charged<B> {
    pub(crate) fn new(
        first: Option<Result<Frame<Bytes>, B::Error>>,
        rest: B,
        charge: Option<Charge>,
    ) -> Self {
        Charged { first, rest, _charge: charge }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Charged<B>
where
    B::Error: Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(first));
        }
        Pin::new(&mut this.rest).poll_frame(cx)
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
            let extra = first.len() as u64;
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
    fn one_answer_of_any_size_fits_and_more_only_within_the_budget() {
        let budget = UnsentAnswers::new(100);
        let huge = budget.charge(1_000).expect("the first answer, whatever its size");
        assert!(budget.charge(1).is_none());
        drop(huge);
        let a = budget.charge(60).unwrap();
        let b = budget.charge(40).unwrap();
        assert!(budget.charge(1).is_none());
        drop(a);
        let c = budget.charge(50).unwrap();
        assert_eq!(budget.waiting(), 90);
        drop((b, c));
        assert_eq!(budget.waiting(), 0);
    }
}
