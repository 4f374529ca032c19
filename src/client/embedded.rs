//! The in-process backend: calls go straight to a [`Store`], answers come back as the
//! etcdlite server would send them (headers with the member's ids, etcd's errors).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use parking_lot::Mutex;

use super::{Result, Status};
use crate::auth::Caller;
use crate::error::{Code, Error};
use crate::txn::request::ResponseHeader;
use crate::Store;

/// Who an in-process client's calls are from.
pub(crate) enum Identity {
    /// The bearer of a token or, without one, the user a verified client certificate
    /// names (while auth is enabled), or else nobody: what a server relays for its caller.
    Relayed { token: Option<String>, certificate_name: Option<String> },
    /// A user, authenticated when the client connects and again whenever their token is
    /// refused (expired, or forgotten after an auth change), as clientv3 refreshes it.
    User { name: String, password: String, token: Mutex<Option<String>> },
}

/// A store, and how calls on it are bounded.
pub(crate) struct Embedded {
    pub(crate) store: Arc<Store>,
    timeout: Option<Duration>,
    identity: parking_lot::RwLock<Identity>,
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
    pub(crate) fn new(store: Arc<Store>, timeout: Option<Duration>, identity: Identity) -> Self {
        Embedded { store, timeout, identity: parking_lot::RwLock::new(identity) }
    }

    /// Fails unless the caller is an administrator or auth is disabled (maintenance and
    /// membership calls, as the server checks them).
    pub(crate) fn require_admin(&self) -> Result<()> {
        Ok(self.store.auth().check_admin(&self.caller()?)?)
    }

    /// [`require_admin`](Embedded::require_admin) as etcd's Defragment, Hash, HashKV and
    /// Snapshot answer it: the auth store's own error, code Unknown.
    pub(crate) fn require_admin_unmapped(&self) -> Result<()> {
        match self.store.auth().check_admin(&self.caller()?) {
            Ok(()) => Ok(()),
            Err(e) => match crate::auth::unmapped_message(&e) {
                Some(message) => Err(Status::new(Code::Unknown, message).into()),
                None => Err(e.into()),
            },
        }
    }

    /// Fails when auth is enabled and the caller names no one (Status, alarm lists).
    pub(crate) fn require_user(&self) -> Result<()> {
        Ok(self.store.auth().check_named(&self.caller()?)?)
    }

    /// Forgets the user's token, so that the next call authenticates again.
    pub(crate) fn refresh_token(&self) -> Result<()> {
        if let Identity::User { token, .. } = &*self.identity.read() {
            token.lock().take();
        }
        self.caller().map(|_| ())
    }

    /// From now on, calls are from `identity`.
    pub(crate) fn set_identity(&self, identity: Identity) {
        *self.identity.write() = identity;
    }

    /// Who the next call is from. A user's token is fetched (bcrypt runs on this thread)
    /// when there is none yet or the store refuses the one held; while auth is disabled a
    /// user's calls name no one, as clientv3's do when authenticating is refused so.
    pub(crate) fn caller(&self) -> Result<Caller> {
        let auth = self.store.auth();
        match &*self.identity.read() {
            Identity::Relayed { token: Some(token), .. } => Ok(auth.caller_from_token(token)),
            Identity::Relayed { token: None, certificate_name: Some(name) } if auth.is_enabled() => {
                Ok(auth.caller_from_certificate(name))
            }
            Identity::Relayed { .. } => Ok(Caller::anonymous()),
            Identity::User { name, password, token } => {
                let mut token = token.lock();
                if let Some(held) = token.as_deref() {
                    let caller = auth.caller_from_token(held);
                    if !matches!(caller, Caller::Refused(_)) {
                        return Ok(caller);
                    }
                }
                match auth.authenticate(name, password) {
                    Ok(fresh) => {
                        let caller = auth.caller_from_token(&fresh);
                        *token = Some(fresh);
                        Ok(caller)
                    }
                    Err(Error::AuthNotEnabled) => {
                        *token = None;
                        Ok(Caller::anonymous())
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
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
