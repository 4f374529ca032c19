//! A store's records, changed arbitrarily in a memory engine (records added, removed,
//! rewritten or with bytes flipped, in every keyspace), then a store opened over them: it
//! refuses with an error, or opens and passes [`check_store`]; never a panic or a hang.
//! The records start from those of a real store (puts, deletes, a txn, a compaction, a
//! lease with keys, auth users and roles), so that most inputs are nearly valid.
#![no_main]

use std::sync::Arc;

use etcdlite::engine::{Engine, MemoryEngine, WriteBatch};
use etcdlite::Store;
use etcdlite_fuzz::{changed_records, check_store, engine_options, Change};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|changes: Vec<Change>| {
    let records = changed_records(&changes);
    let engine = Arc::new(MemoryEngine::new());
    let mut batch = WriteBatch::new();
    for (keyspace, key, value) in records {
        batch.put(keyspace, key, value);
    }
    engine.write(batch, false).expect("memory engine write");
    let Ok(store) = Store::open(engine_options(engine.clone())) else {
        return;
    };
    check_store(&store);
    // Opened again (as after a restart), it holds what it held.
    let (revision, hash) = (store.current_revision(), store.hash_kv(0).expect("HashKV").hash);
    drop(store);
    let again = Store::open(engine_options(engine)).expect("a store that opened once opens again");
    assert_eq!(again.current_revision(), revision);
    assert_eq!(again.hash_kv(0).expect("HashKV after reopening").hash, hash);
});
