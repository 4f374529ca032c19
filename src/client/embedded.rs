//! The in-process backend: calls go straight to a [`Store`], answers come back as the
//! etcdlite server would send them (headers with the member's ids, etcd's errors).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use super::{Result, Status};
use crate::error::Code;
use crate::txn::request::ResponseHeader;
use crate::Store;

/// A store, and how calls on it are bounded.
pub(crate) struct Embedded {
    pub(crate) store: Arc<Store>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("revision", &self.store.current_revision())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Embedded {
    pub(crate) fn new(store: Arc<Store>, timeout: Option<Duration>) -> Self {
        Embedded { store, timeout }
    }

    /// A top-level response header: the member's ids and term, and `revision` (the
    /// current revision when the store gave none), as the server's v3rpc layer fills it.
    pub(crate) fn header(&self, revision: i64) -> Option<ResponseHeader> {
        let revision = if revision == 0 { self.store.current_revision() } else { revision };
        Some(self.store.cluster().header(revision))
    }

    /// Runs `call`, bounded by the client's timeout: past it, the call fails with
    /// Cancelled `Timeout expired` (tonic's answer). A write already applied stays applied,
    /// as it would on a server.
    pub(crate) async fn call<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        let Some(timeout) = self.timeout else { return call.await };
        let mut call = pin!(call);
        let mut expired = futures_timer::Delay::new(timeout);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(result) = call.as_mut().poll(cx) {
                return Poll::Ready(result);
            }
            match std::pin::Pin::new(&mut expired).poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(Status::new(Code::Cancelled, "Timeout expired").into())),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

/// What an in-process client answers every Auth call, and a connection with a user.
pub(crate) fn no_auth() -> Status {
    Status::unimplemented(
        "etcdlite: auth is not built into the library yet; the Auth service is unavailable in-process",
    )
}
