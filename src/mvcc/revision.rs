//! Revisions: the position of a change in the store's history.

use std::fmt;

/// A change's place in history: `main` is the revision of the write request (one per
/// mutating request), `sub` its index among that request's changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision {
    /// The store revision the change belongs to.
    pub main: i64,
    /// The change's position inside that revision, from 0.
    pub sub: i64,
}

impl Revision {
    /// `Revision { main, sub }`.
    pub const fn new(main: i64, sub: i64) -> Self {
        Revision { main, sub }
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.main, self.sub)
    }
}
