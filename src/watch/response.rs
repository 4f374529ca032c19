//! What a watch stream delivers: etcd's `WatchResponse` and `mvccpb.Event`.

use std::sync::Arc;

use crate::mvcc::KeyValue;
use crate::txn::request::ResponseHeader;

/// The watch id etcd puts on progress responses that speak for a whole stream, and on a
/// failed creation (clientv3's `InvalidWatchID`).
pub const INVALID_WATCH_ID: i64 = -1;

/// What happened to a key (etcd's `mvccpb.Event.EventType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A put (wire value 0).
    Put = 0,
    /// A delete, by a delete request, a txn, or a lease's revoke or expiry (wire value 1).
    Delete = 1,
}

/// One change to one key (etcd's `mvccpb.Event`).
///
/// Its key-values are shared, not copied: every watcher of a key gets the same
/// [`Arc<KeyValue>`] for one change (and one `prev_kv` allocation between the watchers that
/// asked for it), so a large value costs one allocation however many watchers it reaches.
/// Cloning an `Event` clones two `Arc`s. Use [`Arc::unwrap_or_clone`] to take a key-value
/// out, which copies it only while another watcher still holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub event_type: EventType,
    /// For a put, the key-value after it; for a delete, the key and the delete's revision
    /// as `mod_revision`, everything else zero.
    pub kv: Arc<KeyValue>,
    /// The key-value before this change, when the watch asked for it, the change is not
    /// a key's creation, and that revision is not compacted yet.
    pub prev_kv: Option<Arc<KeyValue>>,
}

impl Event {
    /// Put or delete.
    pub fn event_type(&self) -> EventType {
        self.event_type
    }

    /// The key-value after the change (for a delete: the key and the delete's revision).
    pub fn kv(&self) -> &KeyValue {
        &self.kv
    }

    /// The key-value before the change, if it was asked for and is known.
    pub fn prev_kv(&self) -> Option<&KeyValue> {
        self.prev_kv.as_deref()
    }

    /// True for the put that created the key (etcd's `IsCreate`).
    pub fn is_create(&self) -> bool {
        self.event_type == EventType::Put && self.kv.create_revision == self.kv.mod_revision
    }
}

/// One message of a watch stream (etcd's `WatchResponse`): a watch's creation or
/// cancellation, a batch of its events, or a progress notification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchResponse {
    /// `revision`: for events from the live stream, their revision; for a catch-up batch,
    /// the store's revision when it was sent (more batches may follow, as in etcd); for a
    /// progress notification, a revision every event up to which has been delivered; 0 on
    /// a compaction cancel.
    pub header: ResponseHeader,
    /// The watch this message is about, or -1 for a stream-wide progress notification.
    pub watch_id: i64,
    /// True on the answer to a create request.
    pub created: bool,
    /// True when the watch is gone: cancelled by request or by compaction.
    pub canceled: bool,
    /// On a cancel by compaction, the compacted revision: the watch needed events
    /// from before it.
    pub compact_revision: i64,
    /// Why a watch was cancelled, when the server says (etcd leaves it empty for
    /// compaction and cancel requests).
    pub cancel_reason: String,
    /// The events, in revision order; all of one revision's events arrive in one response.
    pub events: Vec<Event>,
}

impl WatchResponse {
    /// The header.
    pub fn header(&self) -> &ResponseHeader {
        &self.header
    }

    /// The watch this message is about.
    pub fn watch_id(&self) -> i64 {
        self.watch_id
    }

    /// True on the answer to a create request.
    pub fn created(&self) -> bool {
        self.created
    }

    /// True when the watch is gone.
    pub fn canceled(&self) -> bool {
        self.canceled
    }

    /// The compacted revision, on a cancel by compaction.
    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }

    /// Why the watch was cancelled, if given.
    pub fn cancel_reason(&self) -> &str {
        &self.cancel_reason
    }

    /// The events.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// True for a progress notification: no events, not a create or cancel, and a
    /// revision (clientv3's `IsProgressNotify`).
    pub fn is_progress_notify(&self) -> bool {
        self.events.is_empty()
            && !self.created
            && !self.canceled
            && self.compact_revision == 0
            && self.header.revision != 0
    }
}
