//! The two ends of a watch stream: [`Watcher`] sends requests, [`WatchStream`] receives.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use futures_core::Stream;

use super::hub::{Signal, StreamId, WatchHub, WatchId};
use super::request::WatchCreateRequest;
use super::response::{WatchResponse, INVALID_WATCH_ID};
use crate::error::{Error, Result};
use crate::options::WatchOptions;

/// What both ends know of their stream.
struct Link {
    hub: Weak<WatchHub>,
    stream: StreamId,
}

impl Link {
    fn hub(&self) -> Result<Arc<WatchHub>> {
        self.hub.upgrade().ok_or(Error::WatchCanceled)
    }
}

/// Opens a stream on `hub`: its request end and its receiving end.
pub(crate) fn open(hub: &Arc<WatchHub>) -> (Watcher, WatchStream) {
    let (stream, receiver, signal) = hub.open_stream();
    let link = Arc::new(Link { hub: Arc::downgrade(hub), stream });
    (Watcher { watch_id: INVALID_WATCH_ID, link: link.clone() }, WatchStream { receiver, signal, link })
}

/// The request end of a watch stream: creates, cancels and asks for progress, as the
/// `etcd-client` crate's `Watcher` does. Answers arrive on the stream's [`WatchStream`].
///
/// Dropping a `Watcher` leaves its watches running; dropping the [`WatchStream`] ends them.
#[derive(Clone)]
pub struct Watcher {
    watch_id: WatchId,
    link: Arc<Link>,
}

impl Watcher {
    /// The id of the watch [`Store::watch`](crate::Store::watch) created (-1 on a stream
    /// opened by [`Store::watch_stream`](crate::Store::watch_stream)).
    pub fn watch_id(&self) -> WatchId {
        self.watch_id
    }

    /// Adds a watch of `key` to this stream; returns its id. Its `created` response, then
    /// its events, arrive on the stream.
    pub fn watch(&self, key: impl Into<Vec<u8>>, options: Option<WatchOptions>) -> Result<WatchId> {
        self.watch_request(options.unwrap_or_default().into_request(key.into()))
    }

    /// Adds a watch described by etcd's create request; returns its id.
    ///
    /// Fails, creating nothing and sending nothing, with [`Error::WatchRangeEmpty`] when
    /// `range_end` is not above `key`, [`Error::DuplicateWatchId`] when the id is taken on
    /// this stream, [`Error::Compacted`] for a negative start revision (as etcd 3.5.33
    /// does), [`Error::TooManyRequests`] when the stream holds
    /// [`Options::max_watches_per_stream`](crate::Options::max_watches_per_stream) watches
    /// already, and [`Error::WatchCanceled`] once the stream is closed. (etcd's server
    /// reports these as a response with `created` and `canceled` set and the message as
    /// `cancel_reason`.)
    ///
    /// A start revision that has been compacted is not an error here: the watch is created,
    /// then cancelled on the stream with `compact_revision` set, as in etcd.
    pub fn watch_request(&self, req: WatchCreateRequest) -> Result<WatchId> {
        self.link.hub()?.watch(self.link.stream, req, true)
    }

    /// Answers `req` as if its start revision had been compacted at the current revision:
    /// its `created` response, then its cancel with `compact_revision` set, and no watch
    /// left. For tests of a client's resync path (a `TestServer` injects it as a fault).
    /// Fails as [`watch_request`](Watcher::watch_request) fails on a duplicate id or a
    /// closed stream.
    pub fn watch_request_compacted(&self, req: &WatchCreateRequest) -> Result<WatchId> {
        self.link.hub()?.watch_compacted(self.link.stream, req)
    }

    /// [`watch_request`](Watcher::watch_request) without the `created` response, for
    /// [`Store::watch`](crate::Store::watch), which answers with the id instead (as
    /// `etcd-client` does). Keeping that message off the channel spares an idle stream
    /// its buffer.
    pub(crate) fn watch_unannounced(&mut self, req: WatchCreateRequest) -> Result<WatchId> {
        let id = self.link.hub()?.watch(self.link.stream, req, false)?;
        self.watch_id = id;
        Ok(id)
    }

    /// Cancels the watch [`Store::watch`](crate::Store::watch) created.
    pub fn cancel(&self) -> Result<()> {
        self.cancel_by_id(self.watch_id)
    }

    /// Cancels watch `id`; its `canceled` response arrives on the stream, after its last
    /// event. An unknown id is ignored, as etcd ignores it.
    pub fn cancel_by_id(&self, id: WatchId) -> Result<()> {
        self.link.hub()?.cancel(self.link.stream, id)
    }

    /// How many responses wait on this stream, unread. Events stop coming once the stream
    /// holds its capacity (the watches fall behind and catch up later), but every create,
    /// cancel and progress request adds its answer whatever the backlog: a server relaying
    /// requests from a client checks this before taking the next one, so that a client that
    /// sends requests and never reads cannot grow the stream without bound.
    pub fn backlog(&self) -> usize {
        self.link.hub().map_or(0, |hub| hub.backlog(self.link.stream))
    }

    /// Asks for a progress notification: a response with watch id -1 and no events, sent
    /// after every event up to its revision. As in etcd, it is sent only when every watch
    /// of the stream has caught up (and reached its start revision); otherwise the request
    /// is dropped, and can be repeated.
    pub fn request_progress(&self) -> Result<()> {
        self.link.hub()?.request_progress(self.link.stream)
    }
}

/// The receiving end of a watch stream: every response of every watch on it, in order.
///
/// Use it blocking ([`recv`](WatchStream::recv), [`recv_timeout`](WatchStream::recv_timeout),
/// [`try_recv`](WatchStream::try_recv), [`iter`](WatchStream::iter)) or as an async
/// [`Stream`] (or [`message`](WatchStream::message), as in `etcd-client`). It ends when
/// the store is dropped. Dropping it cancels the stream's watches and frees them.
pub struct WatchStream {
    receiver: Receiver<WatchResponse>,
    signal: Arc<Signal>,
    link: Arc<Link>,
}

impl WatchStream {
    /// Waits for the next response; `None` once the stream has ended.
    pub fn recv(&self) -> Option<WatchResponse> {
        let response = self.receiver.recv().ok()?;
        Some(self.received(response))
    }

    /// Waits up to `timeout` for the next response.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<WatchResponse, RecvTimeoutError> {
        let response = self.receiver.recv_timeout(timeout)?;
        Ok(self.received(response))
    }

    /// The next response, if one is waiting.
    pub fn try_recv(&self) -> Result<WatchResponse, TryRecvError> {
        let response = self.receiver.try_recv()?;
        Ok(self.received(response))
    }

    /// A blocking iterator over the responses, until the stream ends.
    pub fn iter(&self) -> impl Iterator<Item = WatchResponse> + '_ {
        std::iter::from_fn(|| self.recv())
    }

    /// The next response, asynchronously; `None` once the stream has ended.
    pub async fn message(&mut self) -> Option<WatchResponse> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Passes on a response taken off the channel, first telling the syncer when a stream
    /// that held watchers back has been drained.
    fn received(&self, response: WatchResponse) -> WatchResponse {
        if self.receiver.is_empty() && self.signal.blocked.swap(false, Ordering::SeqCst) {
            if let Some(hub) = self.link.hub.upgrade() {
                hub.wake_syncer();
            }
        }
        response
    }
}

impl Stream for WatchStream {
    type Item = WatchResponse;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchResponse>> {
        let this = self.get_mut();
        let attempt = || match this.receiver.try_recv() {
            Ok(response) => Poll::Ready(Some(this.received(response))),
            Err(TryRecvError::Disconnected) => Poll::Ready(None),
            Err(TryRecvError::Empty) => Poll::Pending,
        };
        if let Poll::Ready(item) = attempt() {
            return Poll::Ready(item);
        }
        // Register, then look again: a response sent in between wakes the new waker.
        this.signal.waker.register(cx.waker());
        attempt()
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        if let Some(hub) = self.link.hub.upgrade() {
            hub.close_stream(self.link.stream);
        }
    }
}
