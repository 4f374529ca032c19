//! The Watch service: one bidirectional stream per client call, any number of watches on
//! it, as etcd's `watchServer` serves them.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use etcdlite::{WatchStream, Watcher};
use futures::{Stream, StreamExt};
use parking_lot::Mutex;
use prost::Message;
use tokio::sync::{mpsc, Notify};
use tonic::{Request, Response, Status, Streaming};

use crate::convert;
use crate::node::{Credentials, Node};
use crate::pb::etcdserverpb as pb;
use crate::pb::etcdserverpb::watch_request::RequestUnion;
use crate::pb::etcdserverpb::watch_server::Watch;
use crate::status::server_stopped;

/// In-band answers of the request side (a failed create) buffered for the transport.
const OUTGOING_BUFFER: usize = 64;

/// Unread answers a stream may hold before its requests wait: a client that sends creates
/// (or cancels, or progress requests) and never reads is not read from either, so its
/// answers cannot pile up without bound.
const MAX_BACKLOG: usize = 128;

/// Per watch id, whether its watches asked for fragmented responses, oldest first.
type Fragmenting = Arc<Mutex<HashMap<i64, VecDeque<bool>>>>;

/// etcd's `Watch` service over the node's store.
#[derive(Clone)]
pub struct WatchService {
    node: Arc<Node>,
    /// Responses larger than this are split when their watch asked for `fragment`.
    max_response_bytes: usize,
}

impl WatchService {
    /// The service of `node`; `max_response_bytes` is the fragment size, which etcd sets to
    /// its gRPC message limit (the request limit plus 512 KiB).
    pub fn new(node: Arc<Node>, max_response_bytes: usize) -> Self {
        WatchService { node, max_response_bytes }
    }

    /// Serves one watch stream: requests from `requests`, responses into the returned
    /// stream, every watch created as the sender of `credentials` (read permission on its
    /// key or range is checked at each create, as etcd checks it). Used by the gRPC service
    /// and by the JSON gateway.
    pub fn serve<S>(&self, requests: S, credentials: Credentials) -> Responses
    where
        S: Stream<Item = Result<pb::WatchRequest, Status>> + Send + Unpin + 'static,
    {
        let (watcher, store) = self.node.store.watch_stream();
        let (answers, answers_rx) = mpsc::channel(OUTGOING_BUFFER);
        // Told each time an answer leaves the store's stream for the transport.
        let drained = Arc::new(Notify::new());
        // Whether each watch asked for fragmented responses. An id can be cancelled and
        // created again before the old watch's last responses have gone out: each id keeps
        // the settings of its watches in creation order, and the front one is the watch
        // whose responses are going out now (until its canceled response).
        let fragmenting: Fragmenting = Arc::default();

        // Requests: create, cancel, progress. A failed create is answered in-band. When
        // the client closes its side the watches live on, as in etcd, until it goes.
        tokio::spawn(handle_requests(
            requests,
            watcher,
            answers,
            self.node.clone(),
            fragmenting.clone(),
            credentials,
            drained.clone(),
        ));

        Responses {
            store,
            answers: Some(answers_rx),
            stopped: Box::pin(self.node.stopped()),
            dropped: Box::pin(self.node.faults.watch_dropped()),
            node: self.node.clone(),
            fragmenting,
            limit: self.max_response_bytes,
            drained,
            parts: VecDeque::new(),
            ended: false,
            store_in_a_row: 0,
        }
    }
}

/// Responses of the store's stream taken in a row before an in-band answer of the request
/// side waiting meanwhile goes first.
const STORE_BURST: u32 = 32;

/// The responses of one watch stream, as the transport polls for them: the store's
/// responses (converted, split when asked) and the request side's in-band answers (a failed
/// create, the status that ends the stream). Polled by the task that writes the stream's
/// response, so a response goes from the store's stream to the transport without another
/// task or channel in between. Ends when the client goes (dropping it ends the stream's
/// watches), when the store does, or with "server stopped" when the server stops.
pub struct Responses {
    store: WatchStream,
    /// `None` once the request side has finished.
    answers: Option<mpsc::Receiver<Result<pb::WatchResponse, Status>>>,
    stopped: Pin<Box<dyn Future<Output = ()> + Send>>,
    dropped: Pin<Box<dyn Future<Output = ()> + Send>>,
    node: Arc<Node>,
    fragmenting: Fragmenting,
    /// Responses larger than this are split when their watch asked for `fragment`.
    limit: usize,
    drained: Arc<Notify>,
    /// The parts of a split response not yet sent.
    parts: VecDeque<pb::WatchResponse>,
    ended: bool,
    /// Store responses sent since the last look at the in-band answers.
    store_in_a_row: u32,
}

impl Responses {
    /// `resp`, taken off the store's stream, as its protobuf parts.
    fn convert(&mut self, resp: etcdlite::watch::WatchResponse) -> pb::WatchResponse {
        self.drained.notify_waiters();
        let fragment = {
            let mut fragmenting = self.fragmenting.lock();
            let settings = fragmenting.get_mut(&resp.watch_id);
            let fragment = settings.as_ref().and_then(|s| s.front().copied()).unwrap_or(false);
            if resp.canceled {
                if let Some(settings) = settings {
                    settings.pop_front();
                    if settings.is_empty() {
                        fragmenting.remove(&resp.watch_id);
                    }
                }
            }
            fragment
        };
        let mut resp = convert::watch_response(resp);
        resp.header = self.node.watch_header(resp.header);
        if !fragment {
            return resp;
        }
        let mut parts = split(resp, fragment, self.limit).into_iter();
        let first = parts.next().expect("a split response has a part");
        self.parts.extend(parts);
        first
    }

    /// Polls the request side's in-band answers.
    fn poll_answers(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<pb::WatchResponse, Status>>> {
        let Some(answers) = self.answers.as_mut() else { return Poll::Pending };
        match answers.poll_recv(cx) {
            Poll::Ready(Some(answer)) => {
                if answer.is_err() {
                    self.ended = true;
                }
                Poll::Ready(Some(answer))
            }
            // The client closed its side: its watches live on.
            Poll::Ready(None) => {
                self.answers = None;
                Poll::Pending
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Stream for Responses {
    type Item = Result<pb::WatchResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(part) = this.parts.pop_front() {
            return Poll::Ready(Some(Ok(part)));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        // The stop and the injected drop are looked at when the last poll found the store's
        // stream empty (this task then slept, and either may be what woke it) and after
        // each burst, not between the responses of a burst: polling their futures again
        // locks their waiter lists, 4 % of the server's instructions per delivered event.
        if this.store_in_a_row == 0 || this.store_in_a_row >= STORE_BURST {
            if this.stopped.as_mut().poll(cx).is_ready() {
                this.ended = true;
                return Poll::Ready(Some(Err(server_stopped())));
            }
            if this.dropped.as_mut().poll(cx).is_ready() {
                this.ended = true;
                return Poll::Ready(Some(Err(Status::unavailable(crate::faults::INJECTED_WATCH_DROP))));
            }
        }
        // The store's responses first: a failed create's answer then follows the responses
        // of the creates before it. After a burst, an answer waiting goes first.
        if this.store_in_a_row >= STORE_BURST {
            this.store_in_a_row = 0;
            if let Poll::Ready(answer) = this.poll_answers(cx) {
                return Poll::Ready(answer);
            }
        }
        match Pin::new(&mut this.store).poll_next(cx) {
            Poll::Ready(Some(resp)) => {
                this.store_in_a_row += 1;
                let resp = this.convert(resp);
                return Poll::Ready(Some(Ok(resp)));
            }
            Poll::Ready(None) => {
                this.ended = true;
                return Poll::Ready(None);
            }
            Poll::Pending => this.store_in_a_row = 0,
        }
        this.poll_answers(cx)
    }
}

async fn handle_requests<S>(
    mut requests: S,
    watcher: Watcher,
    out: mpsc::Sender<Result<pb::WatchResponse, Status>>,
    node: Arc<Node>,
    fragmenting: Fragmenting,
    credentials: Credentials,
    drained: Arc<Notify>,
) where
    S: Stream<Item = Result<pb::WatchRequest, Status>> + Unpin,
{
    let stopped = node.stopped();
    tokio::pin!(stopped);
    loop {
        // Wait, without reading the next request, while the client leaves its answers unread.
        loop {
            let notified = drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if watcher.backlog() < MAX_BACKLOG {
                break;
            }
            tokio::select! {
                () = &mut notified => {}
                _ = &mut stopped => return,
                () = out.closed() => return,
            }
        }
        let request = tokio::select! {
            request = requests.next() => request,
            _ = &mut stopped => return,
        };
        let request = match request {
            Some(Ok(request)) => request,
            // A request the transport refused (too large, say) ends the stream with its
            // status, as gRPC ends etcd's.
            Some(Err(status)) => {
                let _ = out.send(Err(status)).await;
                return;
            }
            None => return,
        };
        match request.request_union {
            Some(RequestUnion::CreateRequest(create)) => {
                let fragment = create.fragment;
                let req = convert::watch_create(create);
                let refusal = node.store.auth().check_watch(&node.caller_for(&credentials), &req);
                // Held across the create so the first response of the new watch finds
                // its fragment setting.
                let mut fragments = fragmenting.lock();
                let created = if let Err(reason) = refusal {
                    Err(reason)
                } else if node.faults.take_compact_next_watch() {
                    watcher.watch_request_compacted(&req).map_err(|e| e.to_string())
                } else {
                    watcher.watch_request(req).map_err(|e| e.to_string())
                };
                match created {
                    Ok(id) => fragments.entry(id).or_default().push_back(fragment),
                    Err(cancel_reason) => {
                        drop(fragments);
                        // etcd answers a failed create in-band: created and canceled, no id.
                        let resp = pb::WatchResponse {
                            header: node.watch_header(Some(pb::ResponseHeader {
                                revision: node.store.current_revision(),
                                ..Default::default()
                            })),
                            watch_id: etcdlite::watch::INVALID_WATCH_ID,
                            created: true,
                            canceled: true,
                            cancel_reason,
                            ..Default::default()
                        };
                        if out.send(Ok(resp)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            // Cancelling an id the stream does not have is ignored, as in etcd.
            Some(RequestUnion::CancelRequest(cancel)) => {
                let _ = watcher.cancel_by_id(cancel.watch_id);
            }
            Some(RequestUnion::ProgressRequest(_)) => {
                let _ = watcher.request_progress();
            }
            None => {}
        }
    }
}

/// `resp`, split as etcd splits a large response of a watch that asked for `fragment`:
/// parts of at least one event each, every part but the last flagged `fragment`.
fn split(resp: pb::WatchResponse, fragment: bool, limit: usize) -> Vec<pb::WatchResponse> {
    if !fragment || resp.encoded_len() < limit || resp.events.len() < 2 {
        return vec![resp];
    }
    let mut parts = Vec::new();
    let mut template = resp.clone();
    template.events.clear();
    template.fragment = true;
    let mut current = template.clone();
    for event in resp.events {
        current.events.push(event);
        if current.events.len() > 1 && current.encoded_len() >= limit {
            let last = current.events.pop().expect("more than one event");
            parts.push(std::mem::replace(&mut current, template.clone()));
            current.events.push(last);
        }
    }
    current.fragment = false;
    parts.push(current);
    parts
}

type WatchResponses = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = WatchResponses;

    async fn watch(
        &self,
        request: Request<Streaming<pb::WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let credentials = Credentials::of(&request);
        Ok(Response::new(Box::pin(self.serve(request.into_inner(), credentials))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::mvccpb;

    fn response(events: usize, value_len: usize) -> pb::WatchResponse {
        let kv = |i: usize| mvccpb::KeyValue {
            key: format!("k{i}").into_bytes(),
            value: vec![b'v'; value_len],
            ..Default::default()
        };
        pb::WatchResponse {
            watch_id: 3,
            events: (0..events).map(|i| mvccpb::Event { kv: Some(kv(i)), ..Default::default() }).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn small_or_unfragmented_responses_go_whole() {
        assert_eq!(split(response(10, 100), true, 1 << 20).len(), 1);
        assert_eq!(split(response(10, 1000), false, 100).len(), 1);
        assert_eq!(split(response(1, 1000), true, 100).len(), 1);
    }

    #[test]
    fn large_responses_split_into_flagged_parts_that_keep_every_event_in_order() {
        let whole = response(10, 1000);
        let parts = split(whole.clone(), true, 2500);
        assert!(parts.len() > 1);
        for part in &parts[..parts.len() - 1] {
            assert!(part.fragment);
            assert!(part.encoded_len() < 2500 || part.events.len() == 1);
        }
        assert!(!parts.last().unwrap().fragment);
        let events: Vec<_> = parts.iter().flat_map(|p| p.events.clone()).collect();
        assert_eq!(events, whole.events);
        assert!(parts.iter().all(|p| p.watch_id == 3));
    }
}
