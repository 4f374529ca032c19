//! Waiting for keys to go, and watches that survive a broken stream: how a lock waiter, a
//! candidate or an observer follows the keyspace.

use std::time::Duration;

use crate::client::{
    Client, EventType, GetOptions, ResponseHeader, SortOrder, SortTarget, WatchOptions, WatchResponse,
    WatchStream,
};

use super::{Error, Result};
use crate::Code;

/// How long a broken watch waits before it is opened again, at first and at most (the
/// wait doubles in between).
const REOPEN_DELAY: Duration = Duration::from_millis(100);
const REOPEN_DELAY_MAX: Duration = Duration::from_secs(2);

/// Waits until no key of `prefix` created at or before `max_create_revision` is left, one
/// key at a time: each round waits for the deletion of the newest such key only (clientv3's
/// `waitDeletes`), so a waiter wakes when the waiter just ahead of it goes, not on every
/// change of the prefix. Returns the header of the read that found none.
pub(crate) async fn wait_deletes(
    client: &mut Client,
    prefix: &[u8],
    max_create_revision: i64,
) -> Result<ResponseHeader> {
    let newest = GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Descend)
        .with_limit(1)
        .with_max_create_revision(max_create_revision);
    loop {
        let mut resp = client.get(prefix, Some(newest.clone())).await?;
        let header = resp.take_header().unwrap_or_default();
        let Some(last) = resp.kvs().first() else { return Ok(header) };
        wait_delete(client, last.key(), header.revision()).await?;
    }
}

/// Waits for the deletion of `key`, watching from `revision`. A watch cut short (its
/// revision compacted) ends the wait too: the caller looks again.
pub(crate) async fn wait_delete(client: &Client, key: &[u8], revision: i64) -> Result<()> {
    let mut watch = Resumed::new(client, key, WatchOptions::new(), revision);
    while let Some(resp) = watch.next().await? {
        if resp.events().iter().any(|e| e.event_type() == EventType::Delete) {
            return Ok(());
        }
    }
    Ok(())
}

/// A watch that outlives its stream: when the stream breaks (the member it was on stopped,
/// the connection failed), it is opened again, on whichever member the client reaches,
/// from the first revision not yet delivered, so no event is missed or repeated. clientv3's
/// watches do the same under the hood.
pub(crate) struct Resumed {
    client: Client,
    key: Vec<u8>,
    options: WatchOptions,
    next_revision: i64,
    stream: Option<WatchStream>,
}

impl Resumed {
    /// A watch of `key` with `options`, from `revision`; opened on the first
    /// [`next`](Resumed::next).
    pub(crate) fn new(client: &Client, key: &[u8], options: WatchOptions, revision: i64) -> Resumed {
        Resumed { client: client.clone(), key: key.to_vec(), options, next_revision: revision, stream: None }
    }

    /// The next response with events; `None` once the watch is cut short by a compaction
    /// (its revision is gone: the caller reads the present again); an error when the server
    /// cancels it for another reason or refuses to open it. A stream that breaks is opened
    /// again, with back-off, for as long as the caller waits.
    pub(crate) async fn next(&mut self) -> Result<Option<WatchResponse>> {
        let mut delay = REOPEN_DELAY;
        loop {
            let failed = match self.next_once().await {
                // Cut short by a compaction: the caller reads the present again.
                Ok(Some(resp)) if resp.canceled() && resp.compact_revision() > 0 => return Ok(None),
                // Refused or ended by the server for another reason: looking again would
                // only meet the same answer.
                Ok(Some(resp)) if resp.canceled() => {
                    return Err(crate::client::Error::WatchError(resp.cancel_reason().to_owned()).into())
                }
                Ok(Some(resp)) if resp.events().is_empty() => continue,
                Ok(Some(resp)) => {
                    if let Some(kv) = resp.events().last().and_then(|e| e.kv()) {
                        self.next_revision = kv.mod_revision() + 1;
                    }
                    return Ok(Some(resp));
                }
                Ok(None) => Error::LostWatcher,
                Err(e) => e,
            };
            // For as long as the caller waits (it bounds the wait by dropping it), as
            // clientv3's watches reconnect; an answer that will not change ends it.
            if !worth_reopening(&failed) {
                return Err(failed);
            }
            tracing::debug!("reopening a watch that broke: {failed}");
            self.stream = None;
            futures_timer::Delay::new(delay).await;
            delay = (delay * 2).min(REOPEN_DELAY_MAX);
        }
    }

    async fn next_once(&mut self) -> Result<Option<WatchResponse>> {
        if self.stream.is_none() {
            let from = self.options.clone().with_start_revision(self.next_revision);
            self.stream = Some(self.client.watch(self.key.clone(), Some(from)).await?);
        }
        let stream = self.stream.as_mut().expect("opened above");
        Ok(stream.message().await?)
    }
}

/// Whether a watch that failed with `error` may work when opened again: the stream ended or
/// broke, or the cluster could not serve it for now.
fn worth_reopening(error: &Error) -> bool {
    use crate::client::Error as ClientError;
    match error {
        Error::LostWatcher => true,
        Error::Client(ClientError::GRpcStatus(status)) => matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled | Code::DeadlineExceeded
        ),
        Error::Client(
            ClientError::TransportError(_) | ClientError::IoError(_) | ClientError::WatchError(_),
        ) => true,
        _ => false,
    }
}
