//! Watches: every change to a key, a range or a prefix, delivered once and in order, from
//! the next revision or from any revision history still holds.
//!
//! A watch lives on a stream, as in etcd's gRPC API: [`Store::watch`](crate::Store::watch)
//! opens a stream with one watch and returns its two ends, a [`Watcher`] to add, cancel
//! and ask for progress, and a [`WatchStream`] that delivers [`WatchResponse`]s, blocking
//! or as an async `Stream`.
//!
//! Guarantees, etcd's own: events of a watch come in revision order, none twice and none
//! missed between the first and the last; all of a revision's events come in one
//! response; a progress notification at revision R comes after every event up to R. A
//! reader that falls behind never slows writers or other streams: once its stream holds
//! [`Options::watch_stream_capacity`](crate::Options::watch_stream_capacity) responses,
//! its watches stop taking live events and later catch up from history, or are cancelled
//! with `compact_revision` if that history has been compacted meanwhile.

mod hub;
mod intervals;
mod request;
mod response;
mod stream;

pub use crossbeam_channel::{RecvTimeoutError, TryRecvError};
pub(crate) use hub::WatchHub;
pub use hub::{WatchConfig, WatchCounts, WatchId, DEFAULT_MAX_WATCHES_PER_STREAM};
pub use request::{WatchCreateRequest, WatchFilterType};
pub use response::{Event, EventType, WatchResponse, INVALID_WATCH_ID};
pub(crate) use stream::open;
pub use stream::{WatchStream, Watcher};
