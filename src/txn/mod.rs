//! etcd's KV requests and the rules that give them meaning.
//!
//! [`request`] holds the request and response types, shaped like etcd's messages so a
//! server maps them one to one. [`Kv`] applies them to an [`MvccStore`](crate::mvcc::MvccStore)
//! the way etcd's applier does: validation before any state is read, compares evaluated up
//! front against the state before the txn, checks on the chosen branch, then every op under
//! one write and one revision.

mod apply;
mod compare;
mod gosort;
pub mod request;
mod size;
mod validate;

pub use apply::{Deferred, Kv, LeaseLookup, Limits};
pub use size::{put_cost, txn_cost};
