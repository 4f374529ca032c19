//! Coordination over the client: `etcdlite::concurrency`'s sessions, locks and elections,
//! the same code in-process, on a TestServer and on etcd.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcdlite::client::{Client, GetOptions, SortOrder, SortTarget, Txn, TxnOp};
use etcdlite::concurrency::recipes::{Barrier, Queue, Semaphore};
use etcdlite::concurrency::{
    run_stm, Election, Error, Isolation, Mutex, Session, SessionOptions, StmOptions,
};
use etcdlite::coord::{
    ConfigEvent, Coordinator, CoordinatorConfig, Error as CoordError, ServiceEvent, ServiceInfo,
};
use futures::StreamExt;

use crate::harness::{within, Target};

/// Tasks contending for one lock, and the rounds each takes it.
const TASKS: usize = 16;
const ROUNDS: usize = 200;

async fn session(client: &Client, ttl: i64) -> Session {
    within("a session", Session::new(client, Some(SessionOptions::new().with_ttl(ttl))))
        .await
        .expect("a session")
}

/// The key of `prefix` created first: who holds its lock or leads its election.
async fn first_of(client: &Client, prefix: &str) -> Option<Vec<u8>> {
    let first =
        GetOptions::new().with_prefix().with_sort(SortTarget::Create, SortOrder::Ascend).with_limit(1);
    let mut c = client.clone();
    let resp = c.get(prefix, Some(first)).await.expect("a read");
    resp.kvs().first().map(|kv| kv.key().to_vec())
}

pub async fn a_lock_excludes_under_contention_and_counts_exactly(mut t: Target) {
    let client = t.client();
    let inside = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (client, inside) = (client.clone(), inside.clone());
        tasks.push(tokio::spawn(async move {
            let session = session(&client, 60).await;
            let mut lock = Mutex::new(&session, "contended");
            let mut c = client.clone();
            for round in 0..ROUNDS {
                within("lock", lock.lock()).await.expect("lock");
                assert_eq!(
                    inside.fetch_add(1, Ordering::SeqCst),
                    0,
                    "task {task} round {round}: two holders"
                );
                let got = c.get("counter", None).await.expect("read the counter");
                let count: usize = got.kvs().first().map_or(0, |kv| kv.value_str().unwrap().parse().unwrap());
                // Written only while the lock is ours, as the lock's owner compare says.
                let write = Txn::new().when([lock.is_owner()]).and_then([TxnOp::put(
                    "counter",
                    (count + 1).to_string(),
                    None,
                )]);
                assert!(
                    c.txn(write).await.expect("write the counter").succeeded(),
                    "the owner compare holds"
                );
                inside.fetch_sub(1, Ordering::SeqCst);
                lock.unlock().await.expect("unlock");
            }
            session.close().await.expect("close the session");
        }));
        if task == TASKS / 2 {
            t.midpoint().await;
        }
    }
    // Every round is a handful of writes; on etcd each waits for a disk sync.
    let all = futures::future::join_all(tasks);
    let ended =
        tokio::time::timeout(Duration::from_secs(600), all).await.expect("the tasks end within 10 minutes");
    for task in ended {
        task.expect("the task ran to its end");
    }
    let mut c = client.clone();
    let counter = c.get("counter", None).await.unwrap();
    assert_eq!(counter.kvs()[0].value_str().unwrap(), (TASKS * ROUNDS).to_string());
    assert_eq!(
        c.get("contended/", Some(GetOptions::new().with_prefix())).await.unwrap().count(),
        0,
        "no key left"
    );
}

pub async fn try_lock_fails_at_once_and_leaves_nothing_behind(mut t: Target) {
    let client = t.client();
    let (a, b) = (session(&client, 60).await, session(&client, 60).await);
    let mut held = Mutex::new(&a, "try");
    held.try_lock().await.expect("a free lock is taken at once");
    assert_eq!(held.key(), format!("try/{:x}", a.lease()).as_bytes(), "clientv3's key layout");
    t.midpoint().await;
    let mut other = Mutex::new(&b, "try");
    let refused = other.try_lock().await.expect_err("a held lock is refused");
    assert!(matches!(refused, Error::Locked), "{refused:?}");
    assert_eq!(refused.to_string(), "mutex: Locked by another session");
    let mut c = client.clone();
    assert_eq!(
        c.get("try/", Some(GetOptions::new().with_prefix())).await.unwrap().count(),
        1,
        "no key of b's"
    );
    assert!(matches!(other.unlock().await, Err(Error::LockReleased)));
    held.unlock().await.unwrap();
    other.try_lock().await.expect("free again");
    assert!(
        matches!(Mutex::new(&a, "").lock().await, Err(Error::InvalidArgs(_))),
        "an empty name is refused"
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
}

pub async fn a_dead_holders_lock_passes_to_the_next_waiter(mut t: Target) {
    let client = t.client();
    // The holder's lease is short, the waiter's long: time that ends one spares the other.
    let (holder, waiter) = (session(&client, 3).await, session(&client, 60).await);
    let mut held = Mutex::new(&holder, "handover");
    held.lock().await.unwrap();
    let waiter_key = format!("handover/{:x}", waiter.lease()).into_bytes();
    let waiting = {
        let waiter = waiter.clone();
        tokio::spawn(async move {
            let mut lock = Mutex::new(&waiter, "handover");
            lock.lock().await.map(|()| lock.key().to_vec())
        })
    };
    // The waiter queues behind the holder.
    let mut c = client.clone();
    let queued = GetOptions::new().with_prefix().with_count_only();
    within("the waiter queues", async {
        while c.get("handover/", Some(queued.clone())).await.unwrap().count() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(!waiting.is_finished(), "the lock is held");
    t.midpoint().await;
    // The holder dies: nothing renews its lease any more.
    holder.orphan().await;
    assert!(holder.is_done());
    let probe = client.clone();
    t.after_time(Duration::from_secs(3), || {
        let probe = probe.clone();
        let waiter_key = waiter_key.clone();
        async move { first_of(&probe, "handover/").await == Some(waiter_key) }
    })
    .await;
    let key = within("the waiter takes the lock", waiting).await.unwrap().expect("the waiter locks");
    assert_eq!(key, waiter_key);
    waiter.close().await.unwrap();
}

pub async fn an_election_hands_over_and_observe_sees_every_leader(mut t: Target) {
    let client = t.client();
    let (first, second) = (session(&client, 3).await, session(&client, 60).await);
    let observer = session(&client, 60).await;
    let mut watching = Election::new(&observer, "leaders");
    assert!(matches!(watching.leader().await, Err(Error::NoLeader)));
    let mut observed = watching.observe();

    let mut a = Election::new(&first, "leaders");
    within("a campaign", a.campaign("a1")).await.unwrap();
    assert_eq!(a.key(), format!("leaders/{:x}", first.lease()).as_bytes());
    // Observing starts from whoever leads when its task first looks: wait for that.
    let leader = within("the first leader observed", observed.next()).await.unwrap().unwrap();
    let mut seen = vec![leader.kvs()[0].value_str().unwrap().to_owned()];
    let campaigning = {
        let second = second.clone();
        tokio::spawn(async move {
            let mut b = Election::new(&second, "leaders");
            b.campaign("b1").await.map(|()| b)
        })
    };
    a.proclaim("a2").await.unwrap();
    let leader = watching.leader().await.unwrap();
    assert_eq!(leader.kvs()[0].value_str().unwrap(), "a2");
    let mut idle = Election::new(&observer, "leaders");
    assert!(matches!(idle.proclaim("x").await, Err(Error::NotLeader)));
    assert_eq!(Error::NotLeader.to_string(), "election: not leader");
    t.midpoint().await;

    // The leader dies; the next candidate leads once its lease is gone.
    first.orphan().await;
    let probe = client.clone();
    let second_key = format!("leaders/{:x}", second.lease()).into_bytes();
    t.after_time(Duration::from_secs(3), || {
        let (probe, second_key) = (probe.clone(), second_key.clone());
        async move { first_of(&probe, "leaders/").await == Some(second_key) }
    })
    .await;
    let mut b = within("the next leader", campaigning).await.unwrap().expect("the campaign succeeds");
    let mut observe_until = async |value: &str| {
        while seen.last().map(String::as_str) != Some(value) {
            let leader =
                within("a leader observed", observed.next()).await.expect("observing goes on").unwrap();
            seen.push(leader.kvs()[0].value_str().unwrap().to_owned());
        }
    };
    // A new leader is observed by reading who leads once the old one's key is gone, as
    // etcd's Observe does: a value proclaimed before that read would be the first seen of
    // it, so b2 waits until b1 is observed.
    observe_until("b1").await;
    b.proclaim("b2").await.unwrap();
    observe_until("b2").await;
    assert_eq!(seen, ["a1", "a2", "b1", "b2"], "every leader and every value, in order");

    b.resign().await.unwrap();
    assert!(matches!(watching.leader().await, Err(Error::NoLeader)));
    for session in [second, observer] {
        session.close().await.unwrap();
    }
}

pub async fn a_distributed_lock_passes_on_when_its_holder_dies(mut t: Target) {
    let coordinator = Coordinator::connect(CoordinatorConfig::client(t.client())).await.unwrap();
    let locks = coordinator.lock();
    let holder = locks.acquire("nightly", Duration::from_secs(3)).await.unwrap();
    assert!(matches!(locks.try_acquire("nightly", Duration::from_secs(3)).await, Err(CoordError::Locked)));
    let waiting = {
        let locks = locks.clone();
        tokio::spawn(async move { locks.acquire("nightly", Duration::from_secs(60)).await })
    };
    let client = t.client();
    let queued = GetOptions::new().with_prefix().with_count_only();
    within("the waiter queues", async {
        while client.clone().get("nightly/", Some(queued.clone())).await.unwrap().count() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    t.midpoint().await;
    // The holder's process dies: its renewals stop, nothing releases the lock.
    holder.session().orphan().await;
    let dead_key = holder.owner_key().to_vec();
    std::mem::forget(holder);
    let probe = client.clone();
    t.after_time(Duration::from_secs(3), || {
        let (probe, dead_key) = (probe.clone(), dead_key.clone());
        async move { first_of(&probe, "nightly/").await.is_some_and(|first| first != dead_key) }
    })
    .await;
    let next = within("the waiter takes the lock", waiting).await.unwrap().expect("the lock passes on");
    assert!(next.ttl().await.unwrap() > Duration::from_secs(3));
    next.unlock().await.unwrap();
}

pub async fn registered_instances_vanish_within_their_ttl(mut t: Target) {
    let coordinator = Coordinator::connect(CoordinatorConfig::client(t.client())).await.unwrap();
    let registry = coordinator.registry();
    let mut watch = registry.watch("web").await.unwrap();
    let short = ServiceInfo::new("web-1", "web", "127.0.0.1", 8001);
    let long = ServiceInfo::new("web-2", "web", "127.0.0.1", 8002).with_metadata("version", "2");
    let dying = registry.register(short.clone(), Duration::from_secs(3)).await.unwrap();
    registry.register(long.clone(), Duration::from_secs(60)).await.unwrap();
    for expected in [&short, &long] {
        let event = within("a registration seen", watch.next_event()).await.unwrap().unwrap();
        assert_eq!(event, ServiceEvent::Put(expected.clone()));
    }
    t.midpoint().await;
    dying.session().orphan().await;
    let probe = registry.clone();
    t.after_time(Duration::from_secs(3), || {
        let probe = probe.clone();
        async move { probe.discover("web").await.unwrap().len() == 1 }
    })
    .await;
    assert_eq!(registry.discover("web").await.unwrap(), [long]);
    let gone = within("the expiry seen", watch.next_event()).await.unwrap().unwrap();
    assert_eq!(gone, ServiceEvent::Delete { id: "web-1".into() });
    coordinator.close().await.unwrap();
    assert!(registry.discover("web").await.unwrap().is_empty());
}

pub async fn config_values_round_trip_and_prefix_watches_keep_order(mut t: Target) {
    let coordinator = Coordinator::connect(CoordinatorConfig::client(t.client())).await.unwrap();
    let config = coordinator.config();
    let mut changes = config.watch_prefix::<Vec<u32>>("cfg/").await.unwrap();
    for i in 0..5u32 {
        config.set(&format!("cfg/{}", i % 2), &vec![i; i as usize]).await.unwrap();
        if i == 2 {
            t.midpoint().await;
        }
    }
    t.client().put("cfg/bad", "[1,", None).await.unwrap();
    config.delete("cfg/0").await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..7 {
        seen.push(within("a change", changes.next_event()).await.unwrap().unwrap());
    }
    for (i, event) in seen[..5].iter().enumerate() {
        let ConfigEvent::Put { key, value, .. } = event else { panic!("{event:?}") };
        assert_eq!((key.as_str(), value.len()), (["cfg/0", "cfg/1"][i % 2], i), "in order");
    }
    assert!(matches!(&seen[5], ConfigEvent::Invalid { key, .. } if key == "cfg/bad"));
    assert!(matches!(&seen[6], ConfigEvent::Delete { key, .. } if key == "cfg/0"));
    assert_eq!(config.get::<Vec<u32>>("cfg/1").await.unwrap(), Some(vec![3, 3, 3]));
}

pub async fn stm_transfers_keep_the_total_at_every_serializable_level(mut t: Target) {
    const ACCOUNTS: usize = 4;
    const TASKS: usize = 4;
    const TRANSFERS: usize = 15;
    let client = t.client();
    for (round, isolation) in
        [Isolation::SerializableSnapshot, Isolation::Serializable, Isolation::RepeatableReads]
            .into_iter()
            .enumerate()
    {
        let prefix = format!("bank{round}/");
        let mut c = client.clone();
        for account in 0..ACCOUNTS {
            c.put(format!("{prefix}{account}"), "100", None).await.unwrap();
        }
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let (client, prefix) = (client.clone(), prefix.clone());
            tasks.push(tokio::spawn(async move {
                for n in 0..TRANSFERS {
                    let (from, to) = ((task + n) % ACCOUNTS, (task + n + 1) % ACCOUNTS);
                    let (from, to) = (format!("{prefix}{from}"), format!("{prefix}{to}"));
                    let options = StmOptions::new().with_isolation(isolation);
                    run_stm(&client, options, move |stm| {
                        let (from, to) = (from.clone(), to.clone());
                        Box::pin(async move {
                            let balance = |v: Option<Vec<u8>>| -> i64 {
                                String::from_utf8(v.expect("an account")).unwrap().parse().unwrap()
                            };
                            let (a, b) =
                                (balance(stm.get(from.clone()).await?), balance(stm.get(to.clone()).await?));
                            let amount = a.min(7);
                            stm.put(from, (a - amount).to_string());
                            stm.put(to, (b + amount).to_string());
                            Ok(())
                        })
                    })
                    .await
                    .expect("the transfer commits");
                }
            }));
        }
        if round == 1 {
            t.midpoint().await;
        }
        for task in tasks {
            within("transfers", task).await.unwrap();
        }
        let all = c.get(prefix.as_str(), Some(GetOptions::new().with_prefix())).await.unwrap();
        let total: i64 = all.kvs().iter().map(|kv| kv.value_str().unwrap().parse::<i64>().unwrap()).sum();
        assert_eq!(total, 100 * ACCOUNTS as i64, "{isolation:?} keeps the total");
    }
}

pub async fn recipes_queue_barrier_and_semaphore(mut t: Target) {
    let client = t.client();
    let queue = Queue::new(&client, "jobs");
    for job in ["a", "b", "c"] {
        queue.enqueue(job).await.unwrap();
    }
    let mut taken = Vec::new();
    for _ in 0..3 {
        taken.push(String::from_utf8(within("dequeue", queue.dequeue()).await.unwrap()).unwrap());
    }
    assert_eq!(taken, ["a", "b", "c"], "first in, first out");

    let barrier = Barrier::new(&client, "gate");
    barrier.hold().await.unwrap();
    let waiting = {
        let barrier = barrier.clone();
        tokio::spawn(async move { barrier.wait().await })
    };
    t.midpoint().await;
    barrier.release().await.unwrap();
    within("the barrier opens", waiting).await.unwrap().unwrap();

    let sessions = [session(&client, 60).await, session(&client, 60).await, session(&client, 60).await];
    let mut first = Semaphore::new(&sessions[0], "pool", 2);
    let mut second = Semaphore::new(&sessions[1], "pool", 2);
    let mut third = Semaphore::new(&sessions[2], "pool", 2);
    first.acquire().await.unwrap();
    second.acquire().await.unwrap();
    assert!(third.try_acquire().await.is_err(), "two slots, both held");
    first.release().await.unwrap();
    within("a freed slot", third.acquire()).await.unwrap();
    for session in sessions {
        session.close().await.unwrap();
    }
}
