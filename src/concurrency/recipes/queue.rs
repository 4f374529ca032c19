//! A FIFO queue: the Go package's `Queue`, its keys and its protocol.

use crate::client::{Client, EventType, GetOptions, KeyValue, SortOrder, SortTarget, WatchOptions};

use super::super::Result;
use super::key::{check_name, claim_first, delete_at, join, put_unique, wait_event};

/// A queue with any number of producers and consumers, first in, first out.
///
/// Enqueueing puts a unique key `prefix/<ns>` holding the item, on no lease: items outlive
/// their producer. Dequeueing claims the oldest key (by revision) by deleting it at its
/// revision, so each item goes to exactly one consumer; on an empty queue it waits for the
/// next put. Keys and protocol are the Go package's (`recipe.NewQueue`).
#[derive(Clone, Debug)]
pub struct Queue {
    client: Client,
    prefix: Vec<u8>,
}

impl Queue {
    /// The queue under `prefix`. An empty prefix is refused by every call.
    pub fn new(client: &Client, prefix: impl Into<Vec<u8>>) -> Queue {
        Queue { client: client.clone(), prefix: prefix.into() }
    }

    /// Adds `value` at the tail.
    pub async fn enqueue(&self, value: impl Into<Vec<u8>>) -> Result<()> {
        check_name(&self.prefix, "a queue")?;
        put_unique(&mut self.client.clone(), &self.prefix, &value.into(), 0, None).await?;
        Ok(())
    }

    /// Takes the item at the head, waiting for one while the queue is empty. A dequeue
    /// abandoned (its future dropped) after its claim was sent may lose the item it
    /// claimed: the claim is the delete.
    pub async fn dequeue(&self) -> Result<Vec<u8>> {
        check_name(&self.prefix, "a queue")?;
        let oldest =
            GetOptions::new().with_prefix().with_sort(SortTarget::Mod, SortOrder::Ascend).with_limit(1);
        take(&self.client, &join(&self.prefix, b"/"), oldest).await
    }

    /// The queue's prefix.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }
}

/// Claims the first key under `dir` in the order of `first` (a limit-1 read), waiting for
/// the next put while there is none; returns its value. Shared with the priority queue.
pub(super) async fn take(client: &Client, dir: &[u8], first: GetOptions) -> Result<Vec<u8>> {
    let mut client = client.clone();
    loop {
        let head = client.get(dir.to_vec(), Some(first.clone())).await?;
        if let Some(kv) = claim_first(&mut client, head.kvs()).await? {
            return Ok(KeyValue::into_key_value(kv).1);
        }
        if head.more() {
            // Someone else took the head; there are more behind it.
            continue;
        }
        let read_at = head.header().map_or(0, |h| h.revision());
        let puts = WatchOptions::new().with_prefix();
        // A watch cut short, or an item someone else claimed first: look again.
        let Some(put) = wait_event(&client, dir, puts, read_at + 1, EventType::Put).await? else { continue };
        let Some(kv) = put.kv() else { continue };
        if delete_at(&mut client, kv.key(), kv.mod_revision()).await? {
            return Ok(kv.value().to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::super::super::Error;
    use super::super::tests::{client, count, WAIT};
    use super::*;

    #[tokio::test]
    async fn items_come_out_in_the_order_they_went_in() {
        let client = client().await;
        let q = Queue::new(&client, "jobs");
        for item in ["a", "b", "c"] {
            q.enqueue(item).await.unwrap();
        }
        let mut c = client.clone();
        let keys = c.get("jobs/", Some(GetOptions::new().with_prefix())).await.unwrap();
        assert!(keys.kvs().iter().all(|kv| kv.key()[5..].iter().all(u8::is_ascii_digit)), "jobs/<ns> keys");
        for item in ["a", "b", "c"] {
            assert_eq!(q.dequeue().await.unwrap(), item.as_bytes());
        }
        assert_eq!(count(&client, "jobs/").await, 0);

        // An empty queue: the consumer waits for the next item.
        let consumer = {
            let q = q.clone();
            tokio::spawn(async move { q.dequeue().await })
        };
        tokio::task::yield_now().await;
        q.enqueue("late").await.unwrap();
        assert_eq!(tokio::time::timeout(WAIT, consumer).await.expect("woken").unwrap().unwrap(), b"late");
        assert!(matches!(Queue::new(&client, "").enqueue("x").await, Err(Error::InvalidArgs(_))));
        assert!(matches!(Queue::new(&client, "").dequeue().await, Err(Error::InvalidArgs(_))));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_producers_and_consumers_see_each_item_once_in_order() {
        const PRODUCERS: usize = 3;
        const ITEMS: usize = 15;
        let client = client().await;
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let q = Queue::new(&client, "work");
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    loop {
                        let item = String::from_utf8(q.dequeue().await.unwrap()).unwrap();
                        if item == "stop" {
                            return got;
                        }
                        got.push(item);
                    }
                })
            })
            .collect();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let q = Queue::new(&client, "work");
                tokio::spawn(async move {
                    for i in 0..ITEMS {
                        q.enqueue(format!("{p}-{i:03}")).await.unwrap();
                    }
                })
            })
            .collect();
        for producer in producers {
            tokio::time::timeout(WAIT, producer).await.unwrap().unwrap();
        }
        let q = Queue::new(&client, "work");
        q.enqueue("stop").await.unwrap();
        q.enqueue("stop").await.unwrap();

        let mut all = HashSet::new();
        for consumer in consumers {
            let got = tokio::time::timeout(WAIT, consumer).await.expect("consumers finish").unwrap();
            // Each consumer takes heads one after another, so it sees every producer's
            // items in the order they were produced.
            for p in 0..PRODUCERS {
                let mine: Vec<_> = got.iter().filter(|i| i.starts_with(&format!("{p}-"))).collect();
                assert!(mine.windows(2).all(|w| w[0] < w[1]), "out of order: {mine:?}");
            }
            for item in got {
                assert!(all.insert(item), "an item was dequeued twice");
            }
        }
        assert_eq!(all.len(), PRODUCERS * ITEMS, "every item was dequeued");
        assert_eq!(count(&client, "work/").await, 0);
    }
}
