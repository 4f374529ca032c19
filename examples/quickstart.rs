//! etcdlite in a few lines: put, get, history, a compare-and-swap and compaction, on the
//! memory engine. Run with `cargo run --example quickstart`.

use etcdlite::{Compare, CompareOp, GetOptions, Options, Store, Txn, TxnOp};

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

    store.compact(store.current_revision(), None)?;
    if let Err(error) = store.get("config/mode", Some(GetOptions::new().with_revision(first))) {
        println!("after compaction, reading revision {first}: {error}");
    }
    Ok(())
}
