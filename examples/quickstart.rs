//! etcdlite in a few lines: put, get, history, a compare-and-swap, a watch and compaction,
//! on the memory engine. Run with `cargo run --example quickstart`.

use etcdlite::{Compare, CompareOp, GetOptions, Options, Store, Txn, TxnOp, WatchOptions};

fn main() -> Result<(), etcdlite::Error> {
    let store = Store::open(Options::memory())?;

    let first = store.put("config/mode", "blue", None)?.header().revision();
    store.put("config/mode", "green", None)?;
    store.put("config/size", "3", None)?;

    let all = store.get("config/", Some(GetOptions::new().with_prefix()))?;
    for kv in all.kvs() {
        println!(
            "{} = {} (version {})",
            kv.key_str().unwrap_or("?"),
            kv.value_str().unwrap_or("?"),
            kv.version()
        );
    }

    let then = store.get("config/mode", Some(GetOptions::new().with_revision(first)))?;
    println!("at revision {first}, config/mode was {:?}", then.kvs()[0].value_str());

    // Compare-and-swap: the whole txn is one revision.
    let cas = store.txn(
        Txn::new()
            .when([Compare::value("config/mode", CompareOp::Equal, "green")])
            .and_then([TxnOp::put("config/mode", "red", None)])
            .or_else([TxnOp::get("config/mode", None)]),
    )?;
    println!("swap succeeded: {}, now at revision {}", cas.succeeded(), cas.header().revision());

    // Every change under config/ since the first put, replayed from history.
    let (_watcher, stream) =
        store.watch("config/", Some(WatchOptions::new().with_prefix().with_start_revision(first)))?;
    let history = stream.recv().expect("the store is open");
    for event in history.events() {
        let kv = event.kv();
        println!(
            "watched: {:?} {} at revision {}",
            event.event_type(),
            kv.key_str().unwrap_or("?"),
            kv.mod_revision()
        );
    }

    store.compact(store.current_revision(), None)?;
    if let Err(error) = store.get("config/mode", Some(GetOptions::new().with_revision(first))) {
        println!("after compaction, reading revision {first}: {error}");
    }
    Ok(())
}
