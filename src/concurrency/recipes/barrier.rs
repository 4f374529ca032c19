//! A barrier: the Go package's `Barrier`, its key and its protocol.

use crate::client::{Client, DeleteOptions, GetOptions};

use super::super::{wait, Result};
use super::key::{check_name, put_new};

/// A barrier that holds everyone who waits on it until it is released: the key `key`
/// exists while the barrier is up, and waiters wait for its deletion. The key is on no
/// lease: a barrier stays up until someone releases it. Key and protocol are the Go
/// package's (`recipe.NewBarrier`).
#[derive(Clone, Debug)]
pub struct Barrier {
    client: Client,
    key: Vec<u8>,
}

impl Barrier {
    /// The barrier whose key is `key`. An empty key is refused by every call.
    pub fn new(client: &Client, key: impl Into<Vec<u8>>) -> Barrier {
        Barrier { client: client.clone(), key: key.into() }
    }

    /// Raises the barrier (creates its key): waiters wait from now on. Fails with
    /// [`Error::KeyExists`](super::super::Error::KeyExists) when it is up already.
    pub async fn hold(&self) -> Result<()> {
        check_name(&self.key, "a barrier")?;
        put_new(&mut self.client.clone(), &self.key, b"", 0).await?;
        Ok(())
    }

    /// Releases the barrier (deletes its key), letting every waiter through. Releasing a
    /// barrier that is not up does nothing.
    pub async fn release(&self) -> Result<()> {
        check_name(&self.key, "a barrier")?;
        self.client.clone().delete(self.key.clone(), None::<DeleteOptions>).await?;
        Ok(())
    }

    /// Waits until the barrier is released; returns at once when it is not up.
    pub async fn wait(&self) -> Result<()> {
        check_name(&self.key, "a barrier")?;
        let mut client = self.client.clone();
        // A watch cut short (its revision compacted) looks again rather than letting the
        // waiter through, as Go's does, while the barrier may still be up.
        loop {
            let up = client.get(self.key.clone(), Some(GetOptions::new().with_count_only())).await?;
            if up.count() == 0 {
                return Ok(());
            }
            let read_at = up.header().map_or(0, |h| h.revision());
            wait::wait_delete(&client, &self.key, read_at + 1).await?;
        }
    }

    /// The barrier's key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::super::Error;
    use super::super::tests::{client, count, WAIT};
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_barrier_stops_every_waiter_until_released() {
        let client = client().await;
        let barrier = Barrier::new(&client, "gate");
        tokio::time::timeout(WAIT, barrier.wait()).await.expect("no barrier, no wait").unwrap();
        barrier.hold().await.unwrap();
        assert!(matches!(barrier.hold().await, Err(Error::KeyExists)));
        assert_eq!(count(&client, "gate").await, 1);

        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let b = Barrier::new(&client, "gate");
                tokio::spawn(async move { b.wait().await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(waiters.iter().all(|w| !w.is_finished()), "a waiter passed a held barrier");

        barrier.release().await.unwrap();
        for waiter in waiters {
            tokio::time::timeout(WAIT, waiter).await.expect("released").unwrap().unwrap();
        }
        // Up again: it holds again.
        barrier.hold().await.unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(50), barrier.wait()).await.is_err());
        barrier.release().await.unwrap();
        barrier.release().await.unwrap();
    }

    #[tokio::test]
    async fn an_empty_key_is_refused() {
        let client = client().await;
        let b = Barrier::new(&client, "");
        assert!(matches!(b.hold().await, Err(Error::InvalidArgs(_))));
        assert!(matches!(b.wait().await, Err(Error::InvalidArgs(_))));
        assert!(matches!(b.release().await, Err(Error::InvalidArgs(_))));
    }
}
