//! Opens stores on one engine kind, and reopens them over the same data.

use std::ops::ControlFlow;
use std::sync::Arc;

use etcdlite::engine::{snapshot_file, Bounds, Direction, Engine, EngineRead, Keyspace, MemoryEngine};
use etcdlite::{KeyValue, Options, Store};

/// One engine kind, with the data it keeps between stores.
pub enum Harness {
    Memory(Arc<MemoryEngine>),
    /// A RocksDB directory, and whether stores over it sync.
    #[cfg(feature = "rocksdb")]
    RocksDb(tempfile::TempDir, bool),
    /// A sled directory, and whether stores over it sync.
    #[cfg(feature = "sled")]
    Sled(tempfile::TempDir, bool),
}

impl Harness {
    pub fn memory() -> Self {
        Harness::Memory(Arc::new(MemoryEngine::new()))
    }

    #[cfg(feature = "rocksdb")]
    pub fn rocksdb() -> Self {
        Harness::RocksDb(tempfile::tempdir().expect("temp dir"), false)
    }

    #[cfg(feature = "rocksdb")]
    pub fn rocksdb_synced() -> Self {
        Harness::RocksDb(tempfile::tempdir().expect("temp dir"), true)
    }

    #[cfg(feature = "sled")]
    pub fn sled() -> Self {
        Harness::Sled(tempfile::tempdir().expect("temp dir"), false)
    }

    #[cfg(feature = "sled")]
    pub fn sled_synced() -> Self {
        Harness::Sled(tempfile::tempdir().expect("temp dir"), true)
    }

    /// Another harness of the same engine kind, with no data: a target to restore into.
    pub fn fresh(&self) -> Self {
        match self {
            Harness::Memory(_) => Harness::memory(),
            #[cfg(feature = "rocksdb")]
            Harness::RocksDb(_, synced) => Harness::RocksDb(tempfile::tempdir().expect("temp dir"), *synced),
            #[cfg(feature = "sled")]
            Harness::Sled(_, synced) => Harness::Sled(tempfile::tempdir().expect("temp dir"), *synced),
        }
    }

    /// The engine holding this harness's data. A persistent engine is opened afresh, so
    /// every store opened over it must be dropped first.
    pub fn engine(&self) -> Arc<dyn Engine> {
        match self {
            Harness::Memory(engine) => engine.clone(),
            #[cfg(feature = "rocksdb")]
            Harness::RocksDb(dir, _) => {
                Arc::new(etcdlite::engine::RocksEngine::open(dir.path()).expect("open rocksdb"))
            }
            #[cfg(feature = "sled")]
            Harness::Sled(dir, _) => {
                Arc::new(etcdlite::engine::SledEngine::open(dir.path()).expect("open sled"))
            }
        }
    }

    /// Options over this harness's engine. The suite runs on each persistent engine twice,
    /// with sync off and on; on the memory engine, where a sync costs nothing, sync is on,
    /// so the whole suite also runs through group commit there.
    pub fn options(&self) -> Options {
        let sync = match self {
            Harness::Memory(_) => true,
            #[cfg(feature = "rocksdb")]
            Harness::RocksDb(_, synced) => *synced,
            #[cfg(feature = "sled")]
            Harness::Sled(_, synced) => *synced,
        };
        Options::engine(self.engine()).sync(sync)
    }

    pub fn open(&self) -> Store {
        Store::open(self.options()).expect("open store")
    }

    pub fn open_with(&self, tune: impl FnOnce(Options) -> Options) -> Store {
        Store::open(tune(self.options())).expect("open store")
    }

    /// Closes `store` and opens its data again.
    pub fn reopen(&self, store: Store) -> Store {
        drop(store);
        self.open()
    }
}

/// The key-value of `key` at the current revision.
pub fn kv(store: &Store, key: &str) -> Option<KeyValue> {
    store.get(key, None).expect("get").kvs.pop()
}

/// The keys of `kvs`, as strings.
pub fn keys(kvs: &[KeyValue]) -> Vec<String> {
    kvs.iter().map(|kv| String::from_utf8_lossy(&kv.key).into_owned()).collect()
}

/// How many records the engine holds in the MVCC keyspace, counted in a snapshot of it.
pub fn record_count(store: &Store) -> usize {
    let mut bytes = Vec::new();
    store.snapshot(&mut bytes).expect("snapshot");
    let copy = MemoryEngine::new();
    snapshot_file::load(&copy, &mut bytes.as_slice(), false).expect("load the snapshot");
    let mut n = 0;
    copy.scan(Keyspace::Kv, Bounds::all(), Direction::Forward, &mut |_, _| {
        n += 1;
        ControlFlow::Continue(())
    })
    .expect("scan");
    n
}
