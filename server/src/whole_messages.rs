//! A gRPC request body that hands on each length-prefixed message only once all of its
//! bytes have come. tonic's decoder reserves a message's declared length as soon as it has
//! read the 5-byte prefix, so a call that declares a message just under the limit and then
//! sends nothing more held that much memory: 2 MiB for 15 bytes sent, on each of as many
//! streams as the client opened. Held here instead, a message's start costs only the bytes
//! that have come.
//!
//! Messages that arrive whole in one DATA chunk (most do) pass through without a copy. A
//! message declared over the limit is passed on at once, prefix first, so that tonic
//! refuses it before any of its bytes come.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

/// The compressed flag and the 4-byte length in front of every gRPC message.
const PREFIX: usize = 5;

/// The body `inner`, passed on a whole message at a time.
pub(crate) struct WholeMessages<B> {
    inner: B,
    /// The largest message the service decodes.
    limit: usize,
    /// The bytes come so far of a message still coming.
    held: BytesMut,
    /// Whole messages to hand on before the next frame of `inner`.
    next: Option<Bytes>,
    /// The trailers of `inner`, once it ended with `held` still holding bytes.
    trailers: Option<Frame<Bytes>>,
    /// A message over the limit was seen: everything passes through from there on.
    passing: bool,
}

impl<B> WholeMessages<B> {
    pub(crate) fn new(inner: B, limit: usize) -> Self {
        WholeMessages { inner, limit, held: BytesMut::new(), next: None, trailers: None, passing: false }
    }

    /// Takes in `data`, the next bytes of the body; returns those that may be handed on.
    fn take(&mut self, mut data: Bytes) -> Bytes {
        if self.passing {
            return data;
        }
        if !self.held.is_empty() {
            let Some(whole) = self.complete_held(&mut data) else {
                return Bytes::new();
            };
            if self.passing {
                let mut all = BytesMut::from(whole);
                all.extend_from_slice(&data);
                return all.freeze();
            }
            if !data.is_empty() {
                let rest = self.take(data);
                if !rest.is_empty() {
                    self.next = Some(rest);
                }
            }
            return whole;
        }
        // The whole messages at the front go on as they are; a partial one is held.
        let mut at = 0;
        while data.len() - at >= PREFIX {
            let len = declared_len(&data[at..]);
            if len > self.limit {
                self.passing = true;
                return data;
            }
            if data.len() - at < PREFIX + len {
                break;
            }
            at += PREFIX + len;
        }
        self.held.extend_from_slice(&data[at..]);
        data.truncate(at);
        data
    }

    /// Moves bytes of `data` into `held`, as many as the held message still lacks; returns
    /// the message once whole, or once it turns out to be over the limit.
    fn complete_held(&mut self, data: &mut Bytes) -> Option<Bytes> {
        if self.held.len() < PREFIX {
            let take = data.len().min(PREFIX - self.held.len());
            self.held.extend_from_slice(&data[..take]);
            data.advance(take);
            if self.held.len() < PREFIX {
                return None;
            }
        }
        let len = declared_len(&self.held);
        if len > self.limit {
            self.passing = true;
            return Some(self.held.split().freeze());
        }
        let take = data.len().min(PREFIX + len - self.held.len());
        self.held.extend_from_slice(&data[..take]);
        data.advance(take);
        (self.held.len() == PREFIX + len).then(|| self.held.split().freeze())
    }
}

/// The length a message's prefix (at the start of `bytes`, all 5 bytes of it) declares.
fn declared_len(bytes: &[u8]) -> usize {
    let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    usize::try_from(len).unwrap_or(usize::MAX)
}

impl<B> Body for WholeMessages<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if let Some(next) = this.next.take() {
            return Poll::Ready(Some(Ok(Frame::data(next))));
        }
        if let Some(trailers) = this.trailers.take() {
            return Poll::Ready(Some(Ok(trailers)));
        }
        loop {
            let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                // A message cut short goes on as it is: the decoder reports it.
                None if !this.held.is_empty() => {
                    return Poll::Ready(Some(Ok(Frame::data(this.held.split().freeze()))));
                }
                None => return Poll::Ready(None),
            };
            match frame.into_data() {
                Ok(data) => {
                    let ready = this.take(data);
                    if !ready.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(ready))));
                    }
                }
                Err(trailers) if !this.held.is_empty() => {
                    this.trailers = Some(trailers);
                    return Poll::Ready(Some(Ok(Frame::data(this.held.split().freeze()))));
                }
                Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.next.is_none() && self.trailers.is_none() && self.held.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::convert::Infallible;

    use super::*;

    /// A body of the given chunks.
    struct Chunks(VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.get_mut().0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
        }
    }

    fn message(len: usize, fill: u8) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
        out.extend(std::iter::repeat_n(fill, len));
        out
    }

    /// The chunks `body` hands on, and how many bytes it held at most in between.
    fn handed_on(chunks: Vec<Vec<u8>>, limit: usize) -> (Vec<Vec<u8>>, usize) {
        let mut body = WholeMessages::new(Chunks(chunks.into_iter().map(Bytes::from).collect()), limit);
        let mut out = Vec::new();
        let mut held = 0;
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
            out.push(frame.unwrap().into_data().unwrap().to_vec());
            held = held.max(body.held.capacity());
        }
        (out, held)
    }

    #[test]
    fn whole_messages_in_one_chunk_pass_through_as_they_came() {
        let chunk = [message(3, 1), message(0, 0), message(4, 2)].concat();
        assert_eq!(handed_on(vec![chunk.clone()], 100).0, vec![chunk]);
    }

    #[test]
    fn a_message_split_across_chunks_is_handed_on_whole_and_whatever_follows_it_too() {
        let (a, b, c) = (message(10, 1), message(2, 2), message(6, 3));
        let stream = [a.clone(), b.clone(), c.clone()].concat();
        // Cut inside a's prefix, inside a's payload, and inside c.
        let cuts =
            vec![stream[..3].to_vec(), stream[3..9].to_vec(), stream[9..24].to_vec(), stream[24..].to_vec()];
        let (out, _) = handed_on(cuts, 100);
        assert_eq!(out, vec![a, b, c]);
    }

    #[test]
    fn a_declared_length_is_not_reserved_before_its_bytes_come() {
        let big = message(1 << 20, 7);
        let (out, held) = handed_on(vec![big[..15].to_vec()], 2 << 20);
        // The body ended with the message cut short: it goes on as it is, for the decoder.
        assert_eq!(out, vec![big[..15].to_vec()]);
        assert!(held < 64, "{held} bytes held for 15 that came");
    }

    #[test]
    fn a_message_over_the_limit_goes_on_at_once_from_its_prefix() {
        let prefix = [0, 0xff, 0xff, 0xff, 0xff];
        let (out, _) = handed_on(vec![prefix[..2].to_vec(), prefix[2..].to_vec(), vec![1, 2]], 100);
        assert_eq!(out, vec![prefix.to_vec(), vec![1, 2]]);
        let (out, _) = handed_on(vec![[message(1, 1), prefix.to_vec()].concat()], 100);
        assert_eq!(out, vec![[message(1, 1), prefix.to_vec()].concat()]);
    }
}
