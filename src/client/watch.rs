//! The Watch service: watch streams, their requests and their responses.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::embedded::Embedded;
use super::kv::KeyValue;
use super::mailbox::{self, mailbox};
use super::{dispatch, header_accessors, Backend, Error, Result};
use crate::options::WatchOptions;
use crate::txn::request::ResponseHeader;
use crate::watch::{self as core, EventType, INVALID_WATCH_ID};
use crate::Store;

/// Failed creates an in-process stream holds for its reader before dropping the oldest.
const FAILURES_HELD: usize = 64;

/// One change to one key (etcd's `mvccpb.Event`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub(crate) event_type: EventType,
    pub(crate) kv: Option<KeyValue>,
    pub(crate) prev_kv: Option<KeyValue>,
}

impl Event {
    /// Put or delete.
    pub fn event_type(&self) -> EventType {
        self.event_type
    }

    /// The key-value after the change (for a delete: the key and the delete's revision).
    pub fn kv(&self) -> Option<&KeyValue> {
        self.kv.as_ref()
    }

    /// The key-value before the change, when the watch asked for it.
    pub fn prev_kv(&self) -> Option<&KeyValue> {
        self.prev_kv.as_ref()
    }

    fn from_core(e: core::Event) -> Self {
        // Copies a key-value only while another watcher of the key still holds it.
        let owned = |kv: Arc<crate::KeyValue>| KeyValue::from(Arc::unwrap_or_clone(kv));
        Event { event_type: e.event_type, kv: Some(owned(e.kv)), prev_kv: e.prev_kv.map(owned) }
    }
}

/// One message of a watch stream: a watch's creation or cancellation, a batch of its
/// events, or a progress notification (etcd's `WatchResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) watch_id: i64,
    pub(crate) created: bool,
    pub(crate) canceled: bool,
    pub(crate) compact_revision: i64,
    pub(crate) cancel_reason: String,
    pub(crate) fragment: bool,
    pub(crate) events: Vec<Event>,
}

impl WatchResponse {
    header_accessors!();

    /// The watch this message is about (-1 for a stream-wide progress notification and a
    /// failed create).
    pub fn watch_id(&self) -> i64 {
        self.watch_id
    }

    /// True on the answer to a create request.
    pub fn created(&self) -> bool {
        self.created
    }

    /// True when the watch is gone: cancelled by request, by compaction, or never created.
    pub fn canceled(&self) -> bool {
        self.canceled
    }

    /// On a cancel by compaction, the compacted revision.
    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }

    /// Why the watch was cancelled, when the server says.
    pub fn cancel_reason(&self) -> &str {
        &self.cancel_reason
    }

    /// True on every part but the last of a response split because of its size (only a
    /// server splits, and only for watches created with `with_fragment`).
    pub fn fragment(&self) -> bool {
        self.fragment
    }

    /// The events, in revision order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// True for a progress notification (clientv3's `IsProgressNotify`).
    pub fn is_progress_notify(&self) -> bool {
        self.events.is_empty()
            && !self.created
            && !self.canceled
            && self.compact_revision == 0
            && self.header.is_some_and(|h| h.revision != 0)
    }

    /// A store's response, with the member's header (its revision left as the watch gave
    /// it: 0 on a compaction cancel, as etcd sends it).
    fn from_core(r: core::WatchResponse, store: &Store) -> Self {
        WatchResponse {
            header: Some(store.cluster().header(r.header.revision)),
            watch_id: r.watch_id,
            created: r.created,
            canceled: r.canceled,
            compact_revision: r.compact_revision,
            cancel_reason: r.cancel_reason,
            fragment: false,
            events: r.events.into_iter().map(Event::from_core).collect(),
        }
    }
}

/// The Watch service of a [`Client`](super::Client).
#[derive(Clone, Debug)]
pub struct WatchClient {
    pub(crate) backend: Backend,
}

impl WatchClient {
    /// Opens a watch stream with one watch of `key` (or the range `options` describe);
    /// its first message answers the create.
    pub async fn watch(
        &mut self,
        key: impl Into<Vec<u8>>,
        options: Option<WatchOptions>,
    ) -> Result<WatchStream> {
        let key = key.into();
        dispatch!(&mut self.backend, e => Ok(Embedded::watch(e, key, options)), r => super::remote::watch(r, key, options).await)
    }
}

/// A watch stream: add watches, cancel them, ask for progress, and read every response
/// of every watch on it, as `etcd-client`'s `WatchStream`. Read it with
/// [`message`](WatchStream::message) or as a `Stream`. Dropping it cancels its watches.
pub struct WatchStream {
    sender: WatchRequestSender,
    responses: WatchResponseStream,
}

impl WatchStream {
    /// Adds a watch of `key`; its `created` response (or its failure) comes on the stream.
    pub async fn watch(&mut self, key: impl Into<Vec<u8>>, options: Option<WatchOptions>) -> Result<()> {
        self.sender.watch(key, options).await
    }

    /// Cancels watch `watch_id`; its `canceled` response comes on the stream. An unknown
    /// id is ignored, as etcd ignores it.
    pub async fn cancel(&mut self, watch_id: i64) -> Result<()> {
        self.sender.cancel(watch_id).await
    }

    /// Asks for a progress notification, sent once every watch of the stream has caught
    /// up.
    pub async fn request_progress(&mut self) -> Result<()> {
        self.sender.request_progress().await
    }

    /// The next response; `None` once the stream has ended.
    pub async fn message(&mut self) -> Result<Option<WatchResponse>> {
        self.responses.message().await
    }

    /// Splits the stream into its request and response ends.
    pub fn split(self) -> (WatchRequestSender, WatchResponseStream) {
        (self.sender, self.responses)
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchResponse>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().responses).poll_next(cx)
    }
}

/// The request end of a watch stream.
pub struct WatchRequestSender(SenderInner);

enum SenderInner {
    Embedded {
        /// Whose watches they are: each create is checked as its caller's.
        client: Arc<Embedded>,
        watcher: core::Watcher,
        /// Failed creates, answered in-band as etcd answers them.
        failures: mailbox::Sender<WatchResponse>,
    },
    #[cfg(feature = "remote")]
    Remote(etcd_client::WatchRequestSender),
}

impl WatchRequestSender {
    /// Adds a watch of `key`; its `created` response (or its failure) comes on the stream.
    pub async fn watch(&mut self, key: impl Into<Vec<u8>>, options: Option<WatchOptions>) -> Result<()> {
        match &mut self.0 {
            SenderInner::Embedded { client, watcher, failures } => {
                create(client, watcher, failures, key.into(), options);
                Ok(())
            }
            #[cfg(feature = "remote")]
            SenderInner::Remote(r) => {
                let (key, options) = super::remote::watch_args(key.into(), options);
                Ok(r.watch(key, Some(options)).await?)
            }
        }
    }

    /// Cancels watch `watch_id`.
    pub async fn cancel(&mut self, watch_id: i64) -> Result<()> {
        match &mut self.0 {
            SenderInner::Embedded { watcher, .. } => {
                watcher.cancel_by_id(watch_id).map_err(|e| Error::WatchError(e.to_string()))
            }
            #[cfg(feature = "remote")]
            SenderInner::Remote(r) => Ok(r.cancel(watch_id).await?),
        }
    }

    /// Asks for a progress notification.
    pub async fn request_progress(&mut self) -> Result<()> {
        match &mut self.0 {
            SenderInner::Embedded { watcher, .. } => {
                watcher.request_progress().map_err(|e| Error::WatchError(e.to_string()))
            }
            #[cfg(feature = "remote")]
            SenderInner::Remote(r) => Ok(r.request_progress().await?),
        }
    }
}

/// The response end of a watch stream.
pub struct WatchResponseStream(StreamInner);

enum StreamInner {
    Embedded {
        store: Arc<Store>,
        responses: core::WatchStream,
        failures: mailbox::Receiver<WatchResponse>,
    },
    #[cfg(feature = "remote")]
    Remote(etcd_client::WatchResponseStream),
}

impl WatchResponseStream {
    /// The next response; `None` once the stream has ended.
    pub async fn message(&mut self) -> Result<Option<WatchResponse>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await.transpose()
    }
}

impl Stream for WatchResponseStream {
    type Item = Result<WatchResponse>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut self.get_mut().0 {
            StreamInner::Embedded { store, responses, failures } => {
                if let Poll::Ready(Some(failure)) = failures.poll_recv(cx) {
                    return Poll::Ready(Some(Ok(failure)));
                }
                Pin::new(responses).poll_next(cx).map(|r| r.map(|r| Ok(WatchResponse::from_core(r, store))))
            }
            #[cfg(feature = "remote")]
            StreamInner::Remote(r) => Pin::new(r)
                .poll_next(cx)
                .map(|r| r.map(|r| r.map(super::remote::watch_response).map_err(Error::from))),
        }
    }
}

impl WatchStream {
    pub(crate) fn new(sender: WatchRequestSender, responses: WatchResponseStream) -> Self {
        WatchStream { sender, responses }
    }

    #[cfg(feature = "remote")]
    pub(crate) fn remote(stream: etcd_client::WatchStream) -> Self {
        let (sender, responses) = stream.split();
        WatchStream::new(
            WatchRequestSender(SenderInner::Remote(sender)),
            WatchResponseStream(StreamInner::Remote(responses)),
        )
    }
}

/// Creates a watch on an in-process stream; a failure is answered on the stream, as etcd
/// answers it: `created` and `canceled`, watch id -1, the reason in `cancel_reason`.
fn create(
    client: &Embedded,
    watcher: &core::Watcher,
    failures: &mailbox::Sender<WatchResponse>,
    key: Vec<u8>,
    options: Option<WatchOptions>,
) {
    let store = &client.store;
    let req = options.unwrap_or_default().into_request(key);
    // Read permission is checked as the server checks it.
    let permitted = match client.caller() {
        Ok(caller) => store.auth().check_watch(&caller, &req),
        Err(_) if req.start_revision >= 0 => {
            Err(crate::auth::watch_cancel_reason(&crate::Error::InvalidAuthToken))
        }
        Err(_) => Ok(()),
    };
    let failed = match permitted {
        Err(reason) => Some(reason),
        Ok(()) => watcher.watch_request(req).err().map(|e| e.to_string()),
    };
    if let Some(cancel_reason) = failed {
        failures.send(WatchResponse {
            header: Some(store.cluster().header(store.current_revision())),
            watch_id: INVALID_WATCH_ID,
            created: true,
            canceled: true,
            cancel_reason,
            ..Default::default()
        });
    }
}

impl Embedded {
    fn watch(self: &Arc<Self>, key: Vec<u8>, options: Option<WatchOptions>) -> WatchStream {
        let (watcher, responses) = self.store.watch_stream();
        let (failures, failed) = mailbox(FAILURES_HELD);
        create(self, &watcher, &failures, key, options);
        let store = self.store.clone();
        WatchStream::new(
            WatchRequestSender(SenderInner::Embedded { client: self.clone(), watcher, failures }),
            WatchResponseStream(StreamInner::Embedded { store, responses, failures: failed }),
        )
    }
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WatchRequestSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchRequestSender").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WatchResponseStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchResponseStream").finish_non_exhaustive()
    }
}
