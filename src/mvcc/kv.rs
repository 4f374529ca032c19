//! The key-value as clients see it.

use std::str::Utf8Error;

/// A key's state at one revision: etcd's `mvccpb.KeyValue`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// Revision of the put that created the key's current generation.
    pub create_revision: i64,
    /// Revision of the last change to the key.
    pub mod_revision: i64,
    /// Number of puts since the key was created (1 for a new key).
    pub version: i64,
    /// The value.
    pub value: Vec<u8>,
    /// The lease the key is attached to, or 0.
    pub lease: i64,
}

impl KeyValue {
    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The key as UTF-8.
    pub fn key_str(&self) -> Result<&str, Utf8Error> {
        std::str::from_utf8(&self.key)
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The value as UTF-8.
    pub fn value_str(&self) -> Result<&str, Utf8Error> {
        std::str::from_utf8(&self.value)
    }

    /// Revision of the put that created the key's current generation.
    pub fn create_revision(&self) -> i64 {
        self.create_revision
    }

    /// Revision of the last change to the key.
    pub fn mod_revision(&self) -> i64 {
        self.mod_revision
    }

    /// Number of puts since the key was created.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The attached lease, or 0.
    pub fn lease(&self) -> i64 {
        self.lease
    }
}
