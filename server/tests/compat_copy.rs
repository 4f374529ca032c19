//! The promise, checked: a program written against `etcd-client` compiles against
//! `etcdlite::client` once its paths change. `tests/compat/rust-etcdlite/compat.rs` is the
//! etcd-client scenario of `tests/compat/rust/` with `etcd_client::` replaced by
//! `etcdlite::client::` and nothing else (its module docs aside); this test keeps it so.
//! That it compiles is the example `compat-etcdlite-client`; that it behaves the same is
//! `tests/compat/run`, which runs both against the server.

use std::path::Path;

/// `source` without its leading `//!` lines.
fn body(source: &str) -> String {
    source.lines().skip_while(|line| line.starts_with("//!")).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_etcdlite_client_copy_differs_from_the_etcd_client_program_only_in_its_paths() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |path: &str| std::fs::read_to_string(root.join(path)).expect("read the scenario");
    let original = body(&read("tests/compat/rust/compat.rs"));
    let copy = body(&read("tests/compat/rust-etcdlite/compat.rs"));
    assert!(original.contains("use etcd_client::"), "the original is written against etcd-client");
    assert_eq!(copy, original.replace("etcd_client::", "etcdlite::client::"));
}
