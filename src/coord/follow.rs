//! Following a key or prefix from a revision on, as a `Stream` of what changed: the
//! registry's and the config center's watches.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::mpsc;

use crate::client::{Client, Event, WatchOptions};
use crate::concurrency::Resumed;

use super::{Error, Result};

/// How many changes a follower holds for a slow reader before it waits for it.
const HELD: usize = 64;

/// Changes of a key or prefix, each made into a `T`; ends with an error when the watch
/// can no longer follow (cut short by a compaction, or the cluster unreachable).
#[derive(Debug)]
pub(crate) struct Follow<T> {
    changes: mpsc::Receiver<Result<T>>,
}

impl<T: Send + 'static> Follow<T> {
    /// Follows `key` (with `options`: a prefix...) from `revision` on, on a task of the
    /// current tokio runtime; `each` makes an event, at the revision it happened, into what
    /// the stream yields (or nothing). Dropping the stream stops the task.
    pub(crate) fn start(
        client: &Client,
        key: Vec<u8>,
        options: WatchOptions,
        revision: i64,
        mut each: impl FnMut(&Event) -> Option<T> + Send + 'static,
    ) -> Result<Follow<T>> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::InvalidArgs("watching runs on a tokio runtime: call it inside one".into()))?;
        let (out, changes) = mpsc::channel(HELD);
        let mut watch = Resumed::new(client, &key, options, revision);
        runtime.spawn(async move {
            let followed = async {
                loop {
                    let Some(changed) = watch.next().await? else {
                        let why =
                            "the watch was cut short (its revision was compacted): read again and watch anew";
                        return Err(Error::Client(crate::client::Error::WatchError(why.into())));
                    };
                    for event in changed.events() {
                        if let Some(item) = each(event) {
                            if out.send(Ok(item)).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                }
            };
            tokio::select! {
                ended = followed => {
                    if let Err(e) = ended {
                        let _ = out.send(Err(e)).await;
                    }
                }
                _ = out.closed() => {}
            }
        });
        Ok(Follow { changes })
    }
}

impl<T> Follow<T> {
    /// The next change; `None` once following has ended.
    pub(crate) async fn next_change(&mut self) -> Option<Result<T>> {
        self.changes.recv().await
    }
}

impl<T> Stream for Follow<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().changes.poll_recv(cx)
    }
}
