//! The Lock service (etcd's server-side mutex). In-process, the library's
//! [`concurrency::Mutex`](crate::concurrency::Mutex) runs it, as etcd's server runs
//! clientv3's.

use super::{dispatch, header_accessors, Backend, Client, Result};
use crate::concurrency::service;
use crate::txn::request::ResponseHeader;

/// Options of a lock call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LockOptions {
    pub(crate) lease: i64,
}

impl LockOptions {
    /// No lease: the server grants one nothing keeps alive.
    pub const fn new() -> Self {
        LockOptions { lease: 0 }
    }

    /// Holds the lock on this lease: it is released when the lease ends.
    pub const fn with_lease(mut self, lease: i64) -> Self {
        self.lease = lease;
        self
    }
}

/// The answer to a lock call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockResponse {
    pub(crate) header: Option<ResponseHeader>,
    pub(crate) key: Vec<u8>,
}

impl LockResponse {
    header_accessors!();

    /// The key that holds the lock: pass it to [`unlock`](LockClient::unlock).
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

/// The answer to an unlock call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnlockResponse {
    pub(crate) header: Option<ResponseHeader>,
}

impl UnlockResponse {
    header_accessors!();
}

/// The Lock service of a [`Client`](super::Client).
#[derive(Clone, Debug)]
pub struct LockClient {
    pub(crate) backend: Backend,
}

impl LockClient {
    /// Waits for and acquires the lock `name`.
    pub async fn lock(
        &mut self,
        name: impl Into<Vec<u8>>,
        options: Option<LockOptions>,
    ) -> Result<LockResponse> {
        let name = name.into();
        let client = Client::over(self.backend.clone());
        dispatch!(&mut self.backend, e => {
            e.call(service::lock(&client, name, options.unwrap_or_default().lease)).await
        }, r => super::remote::lock(r, name, options.unwrap_or_default()).await)
    }

    /// Releases the lock held by `key`.
    pub async fn unlock(&mut self, key: impl Into<Vec<u8>>) -> Result<UnlockResponse> {
        let key = key.into();
        let client = Client::over(self.backend.clone());
        dispatch!(&mut self.backend, e => e.call(service::unlock(&client, key)).await, r => super::remote::unlock(r, key).await)
    }
}
