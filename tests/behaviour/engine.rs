//! The `Engine` contract, which every engine must meet for the store above it to be right.

use std::ops::ControlFlow;

use etcdlite::engine::{Bounds, Direction, Engine, EngineRead, Keyspace, WriteBatch};

use crate::harness::Harness;

fn write(engine: &dyn Engine, ops: &[(Keyspace, &str, Option<&str>)]) {
    let mut batch = WriteBatch::new();
    for &(keyspace, key, value) in ops {
        match value {
            Some(value) => batch.put(keyspace, key.into(), value.into()),
            None => batch.delete(keyspace, key.into()),
        }
    }
    engine.write(batch, true).unwrap();
}

fn scan(read: &dyn EngineRead, keyspace: Keyspace, bounds: Bounds<'_>, direction: Direction) -> Vec<String> {
    let mut keys = Vec::new();
    read.scan(keyspace, bounds, direction, &mut |k, _| {
        keys.push(String::from_utf8(k.to_vec()).unwrap());
        ControlFlow::Continue(())
    })
    .unwrap();
    keys
}

fn abcd(engine: &dyn Engine) {
    let puts: Vec<_> = ["b", "d", "a", "c"].iter().map(|k| (Keyspace::Kv, *k, Some("v"))).collect();
    write(engine, &puts);
}

pub fn engine_scans_respect_bounds_in_both_directions(h: &Harness) {
    let engine = h.engine();
    abcd(&*engine);
    use Direction::*;
    assert_eq!(scan(&*engine, Keyspace::Kv, Bounds::all(), Forward), ["a", "b", "c", "d"]);
    assert_eq!(scan(&*engine, Keyspace::Kv, Bounds::all(), Reverse), ["d", "c", "b", "a"]);
    assert_eq!(scan(&*engine, Keyspace::Kv, Bounds::new(b"b", b"d"), Forward), ["b", "c"]);
    assert_eq!(scan(&*engine, Keyspace::Kv, Bounds::new(b"b", b"d"), Reverse), ["c", "b"]);
    assert_eq!(scan(&*engine, Keyspace::Kv, Bounds::from(b"bb"), Reverse), ["d", "c"]);
    assert_eq!(scan(&*engine, Keyspace::Kv, Bounds::new(b"d", b"b"), Forward), Vec::<String>::new());
    assert_eq!(scan(&*engine, Keyspace::Kv, Bounds::new(b"c", b"c"), Reverse), Vec::<String>::new());
}

pub fn engine_scans_stop_when_the_visitor_breaks(h: &Harness) {
    let engine = h.engine();
    abcd(&*engine);
    for (direction, want) in [(Direction::Forward, ["a", "b"]), (Direction::Reverse, ["d", "c"])] {
        let mut seen = Vec::new();
        engine
            .scan(Keyspace::Kv, Bounds::all(), direction, &mut |k, _| {
                seen.push(String::from_utf8(k.to_vec()).unwrap());
                if seen.len() == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .unwrap();
        assert_eq!(seen, want);
    }
}

pub fn engine_keyspaces_are_independent_and_batches_span_them(h: &Harness) {
    let engine = h.engine();
    write(
        &*engine,
        &[
            (Keyspace::Kv, "k", Some("1")),
            (Keyspace::Meta, "k", Some("2")),
            (Keyspace::Lease, "l", Some("3")),
        ],
    );
    assert_eq!(engine.get(Keyspace::Kv, b"k").unwrap(), Some(b"1".to_vec()));
    assert_eq!(engine.get(Keyspace::Meta, b"k").unwrap(), Some(b"2".to_vec()));
    assert_eq!(engine.get(Keyspace::Lease, b"l").unwrap(), Some(b"3".to_vec()));
    assert_eq!(engine.get(Keyspace::Auth, b"k").unwrap(), None);
    // Later operations in a batch win; deleting an absent key is a no-op.
    write(
        &*engine,
        &[(Keyspace::Kv, "k", None), (Keyspace::Kv, "k", Some("4")), (Keyspace::Auth, "x", None)],
    );
    assert_eq!(engine.get(Keyspace::Kv, b"k").unwrap(), Some(b"4".to_vec()));
    write(&*engine, &[(Keyspace::Kv, "k", None), (Keyspace::Meta, "k", None)]);
    assert_eq!(engine.get(Keyspace::Kv, b"k").unwrap(), None);
    assert_eq!(engine.get(Keyspace::Meta, b"k").unwrap(), None);
}

pub fn engine_snapshots_do_not_see_later_writes(h: &Harness) {
    let engine = h.engine();
    abcd(&*engine);
    let snapshot = engine.snapshot().unwrap();
    write(
        &*engine,
        &[(Keyspace::Kv, "a", None), (Keyspace::Kv, "e", Some("v")), (Keyspace::Meta, "m", Some("v"))],
    );
    assert_eq!(scan(&*snapshot, Keyspace::Kv, Bounds::all(), Direction::Forward), ["a", "b", "c", "d"]);
    assert_eq!(snapshot.get(Keyspace::Meta, b"m").unwrap(), None);
    assert_eq!(scan(&*engine, Keyspace::Kv, Bounds::all(), Direction::Forward), ["b", "c", "d", "e"]);
}

pub fn engine_stats_grow_with_data(h: &Harness) {
    let engine = h.engine();
    let empty = engine.stats().unwrap();
    let value = "x".repeat(4096);
    let puts: Vec<_> = (0..64).map(|i| format!("key{i:03}")).collect();
    let ops: Vec<_> = puts.iter().map(|k| (Keyspace::Kv, k.as_str(), Some(value.as_str()))).collect();
    write(&*engine, &ops);
    let full = engine.stats().unwrap();
    assert!(full.size_bytes > empty.size_bytes, "{empty:?} -> {full:?}");
    assert!(full.size_in_use_bytes <= full.size_bytes);
}

pub fn engine_data_survives_reopening(h: &Harness) {
    let engine = h.engine();
    write(&*engine, &[(Keyspace::Kv, "k", Some("v")), (Keyspace::Meta, "m", Some("w"))]);
    drop(engine);
    let engine = h.engine();
    assert_eq!(engine.get(Keyspace::Kv, b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(engine.get(Keyspace::Meta, b"m").unwrap(), Some(b"w".to_vec()));
}
