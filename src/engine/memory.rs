//! The in-memory engine: one `BTreeMap` per keyspace.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::RwLock;

use super::{
    Bounds, Direction, Engine, EngineError, EngineRead, EngineStats, Keyspace, Visitor, WriteBatch, WriteOp,
};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// An engine that keeps every keyspace in memory; nothing survives the process.
///
/// Snapshots are copy-on-write: taking one is O(1), and the first write to a keyspace while
/// a snapshot of it is alive copies that keyspace once. A delete frees its memory at once,
/// so [`Engine::defragment`] has nothing to reclaim.
#[derive(Default)]
pub struct MemoryEngine {
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    maps: [Arc<Map>; 4],
    /// Sum of key and value lengths over every keyspace.
    bytes: u64,
}

impl MemoryEngine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }
}

impl EngineRead for MemoryEngine {
    fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.state.read().maps[keyspace.index()].get(key).cloned())
    }

    fn get_with(
        &self,
        keyspace: Keyspace,
        key: &[u8],
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, EngineError> {
        Ok(self.state.read().maps[keyspace.index()].get(key).map(|value| read(value)).is_some())
    }

    fn scan(
        &self,
        keyspace: Keyspace,
        bounds: Bounds<'_>,
        direction: Direction,
        visit: &mut Visitor<'_>,
    ) -> Result<(), EngineError> {
        let state = self.state.read();
        scan_map(&state.maps[keyspace.index()], bounds, direction, visit);
        Ok(())
    }
}

impl Engine for MemoryEngine {
    /// Nothing to sync: the data lives and dies with the process.
    fn sync(&self) -> Result<(), EngineError> {
        Ok(())
    }

    fn write(&self, batch: WriteBatch, _sync: bool) -> Result<(), EngineError> {
        let mut state = self.state.write();
        let State { maps, bytes } = &mut *state;
        for op in batch.into_ops() {
            match op {
                WriteOp::Put { keyspace, key, value } => {
                    let key_len = key.len() as u64;
                    *bytes += key_len + value.len() as u64;
                    let map = Arc::make_mut(&mut maps[keyspace.index()]);
                    if let Some(old) = map.insert(key, value) {
                        *bytes -= key_len + old.len() as u64;
                    }
                }
                WriteOp::Delete { keyspace, key } => {
                    // Only copy a snapshotted map when the delete changes it.
                    if !maps[keyspace.index()].contains_key(&key) {
                        continue;
                    }
                    let map = Arc::make_mut(&mut maps[keyspace.index()]);
                    if let Some(old) = map.remove(&key) {
                        *bytes -= (key.len() + old.len()) as u64;
                    }
                }
            }
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Box<dyn EngineRead + Send + Sync + '_>, EngineError> {
        Ok(Box::new(MemorySnapshot { maps: self.state.read().maps.clone() }))
    }

    fn stats(&self) -> Result<EngineStats, EngineError> {
        let bytes = self.state.read().bytes;
        Ok(EngineStats { size_bytes: bytes, size_in_use_bytes: bytes })
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

/// A frozen copy of the maps; shares their nodes with the engine until the engine writes.
struct MemorySnapshot {
    maps: [Arc<Map>; 4],
}

impl EngineRead for MemorySnapshot {
    fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.maps[keyspace.index()].get(key).cloned())
    }

    fn scan(
        &self,
        keyspace: Keyspace,
        bounds: Bounds<'_>,
        direction: Direction,
        visit: &mut Visitor<'_>,
    ) -> Result<(), EngineError> {
        scan_map(&self.maps[keyspace.index()], bounds, direction, visit);
        Ok(())
    }
}

fn scan_map(map: &Map, bounds: Bounds<'_>, direction: Direction, visit: &mut Visitor<'_>) {
    if bounds.is_empty() {
        return;
    }
    let end = bounds.end.map_or(Bound::Unbounded, Bound::Excluded);
    let range = map.range::<[u8], _>((Bound::Included(bounds.start), end));
    match direction {
        Direction::Forward => visit_each(range, visit),
        Direction::Reverse => visit_each(range.rev(), visit),
    }
}

fn visit_each<'m>(entries: impl Iterator<Item = (&'m Vec<u8>, &'m Vec<u8>)>, visit: &mut Visitor<'_>) {
    for (key, value) in entries {
        if visit(key, value).is_break() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::ControlFlow;

    #[test]
    fn size_accounts_for_overwrites_and_deletes() {
        let engine = MemoryEngine::new();
        let mut batch = WriteBatch::new();
        batch.put(Keyspace::Kv, b"k".to_vec(), b"vvvv".to_vec());
        batch.put(Keyspace::Kv, b"k".to_vec(), b"vv".to_vec());
        engine.write(batch, false).unwrap();
        assert_eq!(engine.stats().unwrap().size_bytes, 3);
        let mut batch = WriteBatch::new();
        batch.delete(Keyspace::Kv, b"k".to_vec());
        batch.delete(Keyspace::Kv, b"absent".to_vec());
        engine.write(batch, false).unwrap();
        assert_eq!(engine.stats().unwrap().size_bytes, 0);
    }

    #[test]
    fn snapshot_does_not_see_later_writes() {
        let engine = MemoryEngine::new();
        let mut batch = WriteBatch::new();
        batch.put(Keyspace::Kv, b"a".to_vec(), b"1".to_vec());
        engine.write(batch, false).unwrap();
        let snapshot = engine.snapshot().unwrap();
        let mut batch = WriteBatch::new();
        batch.put(Keyspace::Kv, b"a".to_vec(), b"2".to_vec());
        batch.put(Keyspace::Kv, b"b".to_vec(), b"3".to_vec());
        engine.write(batch, false).unwrap();
        assert_eq!(snapshot.get(Keyspace::Kv, b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(snapshot.get(Keyspace::Kv, b"b").unwrap(), None);
        assert_eq!(engine.get(Keyspace::Kv, b"a").unwrap(), Some(b"2".to_vec()));
    }

    #[test]
    fn scan_stops_when_the_visitor_breaks() {
        let engine = MemoryEngine::new();
        let mut batch = WriteBatch::new();
        for k in [b"a", b"b", b"c"] {
            batch.put(Keyspace::Kv, k.to_vec(), vec![]);
        }
        engine.write(batch, false).unwrap();
        let mut seen = Vec::new();
        engine
            .scan(Keyspace::Kv, Bounds::all(), Direction::Forward, &mut |k, _| {
                seen.push(k.to_vec());
                if seen.len() == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .unwrap();
        assert_eq!(seen, vec![b"a".to_vec(), b"b".to_vec()]);
    }
}
