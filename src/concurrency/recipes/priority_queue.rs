//! A priority queue: the Go package's `PriorityQueue`, its keys and its protocol.

use crate::client::{Client, GetOptions, SortOrder, SortTarget};

use super::super::Result;
use super::key::{check_name, join, put_sequential};
use super::queue::take;

/// A queue whose items come out by priority, lowest number first, and in the order they
/// went in within a priority; any number of producers and consumers.
///
/// An item of priority `p` is the key `key/<p, five digits>/<sequence, 16 digits>`, next
/// in sequence after the last key of its priority; the bookkeeping key `__key/<p>` makes
/// two producers of one priority take different numbers. Dequeueing claims the first key
/// in key order by deleting it at its revision; on an empty queue it waits for the next
/// put. Keys and protocol are the Go package's (`recipe.NewPriorityQueue`).
///
/// Priorities are written at least five digits wide, so above 99999 (only
/// [`enqueue_u64`](PriorityQueue::enqueue_u64) reaches there) key order is no longer
/// priority order, as with Go's `EnqueueUint64`.
#[derive(Clone, Debug)]
pub struct PriorityQueue {
    client: Client,
    key: Vec<u8>,
}

impl PriorityQueue {
    /// The priority queue under `key` (its items go under `key/`). An empty key is refused
    /// by every call.
    pub fn new(client: &Client, key: impl Into<Vec<u8>>) -> PriorityQueue {
        PriorityQueue { client: client.clone(), key: key.into() }
    }

    /// Adds `value` with `priority` (0 comes out first).
    pub async fn enqueue(&self, value: impl Into<Vec<u8>>, priority: u16) -> Result<()> {
        self.enqueue_u64(value, u64::from(priority)).await
    }

    /// Adds `value` with a 64-bit `priority`; see the type's note on priorities above
    /// 99999.
    pub async fn enqueue_u64(&self, value: impl Into<Vec<u8>>, priority: u64) -> Result<()> {
        check_name(&self.key, "a priority queue")?;
        let level = join(&self.key, format!("/{priority:05}").as_bytes());
        put_sequential(&mut self.client.clone(), &level, &value.into()).await?;
        Ok(())
    }

    /// Takes the first item (the lowest priority number, the oldest within it), waiting for
    /// one while the queue is empty. While it waits, the first item put is taken, whatever
    /// its priority. A dequeue abandoned after its claim was sent may lose the item.
    pub async fn dequeue(&self) -> Result<Vec<u8>> {
        check_name(&self.key, "a priority queue")?;
        let first =
            GetOptions::new().with_prefix().with_sort(SortTarget::Key, SortOrder::Ascend).with_limit(1);
        take(&self.client, &join(&self.key, b"/"), first).await
    }

    /// The queue's key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::Error;
    use super::super::tests::{client, count, WAIT};
    use super::*;

    #[tokio::test]
    async fn items_come_out_by_priority_then_in_order() {
        let client = client().await;
        let q = PriorityQueue::new(&client, "pq");
        for (value, priority) in [("c1", 3), ("a1", 1), ("b1", 2), ("a2", 1), ("z", 0), ("a3", 1)] {
            q.enqueue(value, priority).await.unwrap();
        }
        let mut c = client.clone();
        let a = c.get("pq/00001/", Some(GetOptions::new().with_prefix().with_keys_only())).await.unwrap();
        let keys: Vec<_> = a.kvs().iter().map(|kv| kv.key_str().unwrap().to_owned()).collect();
        assert_eq!(
            keys,
            ["pq/00001/0000000000000000", "pq/00001/0000000000000001", "pq/00001/0000000000000002"]
        );
        assert_eq!(count(&client, "__pq/00001").await, 1, "the bookkeeping key");

        let mut out = Vec::new();
        for _ in 0..6 {
            out.push(String::from_utf8(q.dequeue().await.unwrap()).unwrap());
        }
        assert_eq!(out, ["z", "a1", "a2", "a3", "b1", "c1"]);
        assert_eq!(count(&client, "pq/").await, 0);

        // Sequence numbers go on after the last key left, not from 0.
        q.enqueue("x", 7).await.unwrap();
        q.enqueue("y", 7).await.unwrap();
        assert_eq!(q.dequeue().await.unwrap(), b"x");
        let left = c.get("pq/", Some(GetOptions::new().with_prefix().with_keys_only())).await.unwrap();
        assert_eq!(left.kvs()[0].key(), b"pq/00007/0000000000000001");

        let consumer = {
            let q = q.clone();
            tokio::spawn(async move { (q.dequeue().await, q.dequeue().await) })
        };
        q.enqueue("w", 9).await.unwrap();
        let (first, second) = tokio::time::timeout(WAIT, consumer).await.expect("woken").unwrap();
        assert_eq!((first.unwrap(), second.unwrap()), (b"y".to_vec(), b"w".to_vec()));

        assert!(matches!(PriorityQueue::new(&client, "").enqueue("x", 1).await, Err(Error::InvalidArgs(_))));
        assert!(matches!(PriorityQueue::new(&client, "").dequeue().await, Err(Error::InvalidArgs(_))));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_producers_of_one_priority_take_distinct_numbers() {
        let client = client().await;
        let producers: Vec<_> = (0..3)
            .map(|p| {
                let q = PriorityQueue::new(&client, "pq");
                tokio::spawn(async move {
                    for i in 0..10 {
                        q.enqueue(format!("{p}-{i}"), 5).await.unwrap();
                    }
                })
            })
            .collect();
        for producer in producers {
            tokio::time::timeout(WAIT, producer).await.unwrap().unwrap();
        }
        assert_eq!(count(&client, "pq/00005/").await, 30, "no item overwrote another");
        let q = PriorityQueue::new(&client, "pq");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..30 {
            assert!(seen.insert(q.dequeue().await.unwrap()));
        }
    }
}
