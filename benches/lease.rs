//! Lease costs on the memory engine: a grant and its revoke, a keep-alive, and expiring
//! 10,000 leases that hold one key each (the target: under 1 s); and the same expiry
//! on the persistent engines with sync on, where the revokes share group-commit syncs.
//! BENCHMARKS.md has the figures.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use etcdlite::{ManualClock, Options, PutOptions, Store};

const EXPIRING: usize = 10_000;

fn manual_store() -> (Store, ManualClock) {
    let clock = ManualClock::new();
    let store = Store::open(Options::memory().clock(Arc::new(clock.clone()))).unwrap();
    (store, clock)
}

fn grant_and_revoke(c: &mut Criterion) {
    let (store, _clock) = manual_store();
    c.bench_function("lease/grant_revoke", |b| {
        b.iter(|| {
            let id = store.lease_grant(60, None).unwrap().id();
            black_box(store.lease_revoke(id).unwrap())
        })
    });
}

fn keep_alive(c: &mut Criterion) {
    let (store, _clock) = manual_store();
    let ids: Vec<i64> = (0..1_000).map(|_| store.lease_grant(60, None).unwrap().id()).collect();
    let mut i = 0;
    c.bench_function("lease/keep_alive", |b| {
        b.iter(|| {
            i = (i + 1) % ids.len();
            black_box(store.lease_keep_alive(ids[i]).unwrap())
        })
    });
}

fn expire_many(c: &mut Criterion) {
    let mut group = c.benchmark_group("lease");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.bench_function("expire_10000_leases_with_one_key_each", |b| {
        b.iter_batched(
            || {
                let (store, clock) = manual_store();
                for i in 0..EXPIRING {
                    let id = store.lease_grant(5, None).unwrap().id();
                    store
                        .put(format!("session/{i:05}"), "alive", Some(PutOptions::new().with_lease(id)))
                        .unwrap();
                }
                (store, clock)
            },
            |(store, clock)| {
                clock.advance(Duration::from_secs(5));
                debug_assert_eq!(store.current_revision(), 1 + 2 * EXPIRING as i64);
                store
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Expiring 10,000 leases on a persistent engine with sync on. The leases and their keys are
/// written with sync off (a setup, not what is measured), the store is reopened with sync on
/// and a fresh `ManualClock` (leases come back with their whole TTL, as in etcd), and one
/// advance expires them all: every revoke is its own revision, and the syncs are shared.
#[cfg(any(feature = "rocksdb", feature = "sled"))]
fn expire_many_synced(c: &mut Criterion) {
    type OpenAt = fn(&std::path::Path) -> Options;
    let engines: Vec<(&str, OpenAt)> = vec![
        #[cfg(feature = "rocksdb")]
        ("rocksdb", |path| Options::rocksdb(path)),
        #[cfg(feature = "sled")]
        ("sled", |path| Options::sled(path)),
    ];

    let mut group = c.benchmark_group("lease_synced");
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    for (name, open_at) in engines {
        group.bench_function(format!("expire_10000_leases_with_one_key_each/{name}"), |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::TempDir::new().unwrap();
                    // A clock of its own that never moves, so no lease expires during the
                    // setup however long it takes.
                    let still = Arc::new(ManualClock::new());
                    let store = Store::open(open_at(dir.path()).sync(false).clock(still)).unwrap();
                    for i in 0..EXPIRING {
                        let id = store.lease_grant(5, None).unwrap().id();
                        let with_lease = PutOptions::new().with_lease(id);
                        store.put(format!("session/{i:05}"), "alive", Some(with_lease)).unwrap();
                    }
                    drop(store);
                    let clock = ManualClock::new();
                    let options = open_at(dir.path()).sync(true).clock(Arc::new(clock.clone()));
                    (Store::open(options).unwrap(), clock, dir)
                },
                |(store, clock, dir)| {
                    clock.advance(Duration::from_secs(5));
                    assert_eq!(store.current_revision(), 1 + 2 * EXPIRING as i64);
                    (store, dir)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

#[cfg(not(any(feature = "rocksdb", feature = "sled")))]
fn expire_many_synced(_: &mut Criterion) {}

criterion_group!(benches, grant_and_revoke, keep_alive, expire_many, expire_many_synced);
criterion_main!(benches);
