//! What a watch asks for: etcd's `WatchCreateRequest`.

/// Events a watch leaves out (etcd's `WatchCreateRequest.FilterType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WatchFilterType {
    /// Leave out puts (wire value 0).
    NoPut = 0,
    /// Leave out deletes (wire value 1).
    NoDelete = 1,
}

/// A request to create a watch, field for field etcd's `WatchCreateRequest` (its
/// `fragment` flag aside: splitting large responses is the transport's business).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchCreateRequest {
    /// The key, or the first key of the range. Empty means `"\0"`, as in etcd.
    pub key: Vec<u8>,
    /// Empty: `key` alone; `"\0"`: every key from `key` on; otherwise the exclusive end.
    pub range_end: Vec<u8>,
    /// First revision to deliver; 0 means the revision after the current one. Past
    /// revisions are replayed from history.
    pub start_revision: i64,
    /// Send a progress notification each progress interval in which no event was sent.
    pub progress_notify: bool,
    /// Events to leave out.
    pub filters: Vec<WatchFilterType>,
    /// Attach each event's previous key-value.
    pub prev_kv: bool,
    /// The id to give the watch; 0 lets the stream pick the lowest free one.
    pub watch_id: i64,
}
