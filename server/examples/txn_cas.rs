//! Compare-and-swap with a transaction: change a value only if it is still the one read.
//! Embedded first, then against the server with the `etcd-client` crate.
//!
//! `cargo run -p etcdlite-server --example txn_cas [ENDPOINT]`

mod common;

use etcdlite::{Compare, CompareOp, Options, Store, Txn, TxnOp};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Embedded.
    let store = Store::open(Options::memory())?;
    store.put("config/version", "1", None)?;
    for expected in ["1", "1"] {
        let resp = store.txn(
            Txn::new()
                .when([Compare::value("config/version", CompareOp::Equal, expected)])
                .and_then([TxnOp::put("config/version", "2", None)])
                .or_else([TxnOp::get("config/version", None)]),
        )?;
        println!(
            "embedded: swap 1 -> 2 {}",
            if resp.succeeded() { "succeeded" } else { "failed: value changed" }
        );
    }

    // Over gRPC.
    use etcd_client::{Compare as C, CompareOp as Op, Txn as T, TxnOp as O, TxnOpResponse};
    let (endpoint, _server) = common::endpoint().await?;
    let mut client = etcd_client::Client::connect([endpoint], None).await?;
    client.put("config/version", "1", None).await?;
    for _ in 0..2 {
        let resp = client
            .txn(
                T::new()
                    .when([C::value("config/version", Op::Equal, "1")])
                    .and_then([O::put("config/version", "2", None)])
                    .or_else([O::get("config/version", None)]),
            )
            .await?;
        if resp.succeeded() {
            println!("server:   swap 1 -> 2 succeeded at revision {}", resp.header().unwrap().revision());
        } else if let Some(TxnOpResponse::Get(get)) = resp.op_responses().first() {
            println!("server:   swap 1 -> 2 failed: the value is now {}", get.kvs()[0].value_str()?);
        }
    }
    Ok(())
}
