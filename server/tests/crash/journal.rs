//! What the writers sent and what came back: every write request is entered before it is
//! sent, and its answer (or the lack of one) after, so the checker knows which requests
//! were acknowledged, at which revision, and which may or may not have been applied.

/// A write request as sent. Every value a put carries is unique over the whole run, so a
/// value in the store names the one request that wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A put, attached to `lease` unless it is 0.
    Put { key: String, value: String, lease: i64 },
    /// A compare-and-swap txn: put `value` if `key`'s mod revision is `expected` (0: absent).
    Cas { key: String, expected: i64, value: String },
    /// A delete of one key.
    Delete { key: String },
    /// A lease grant with an ID the writer chose.
    Grant { lease: i64, ttl: i64 },
    /// A lease revoke.
    Revoke { lease: i64 },
    /// A compaction.
    Compact { revision: i64, physical: bool },
}

/// What became of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Sent, no answer yet: once the server is killed, the same as [`Outcome::Unknown`].
    Pending,
    /// Acknowledged with this response header revision. `wrote` is whether the answer says
    /// the request changed the keyspace: always for a put; for a txn, that it took its
    /// success branch; for a delete, that it deleted the key; never for a grant, a
    /// revoke (its answer does not say) or a compaction.
    Acked { revision: i64, wrote: bool },
    /// Answered with an error: it may or may not have been applied. `before_kill` is
    /// whether the error came before the harness killed the server (no error should).
    Failed { error: String, before_kill: bool },
}

/// One request and its outcome.
#[derive(Clone, Debug)]
pub struct Entry {
    pub writer: usize,
    pub op: Op,
    pub outcome: Outcome,
}

impl Entry {
    /// The acknowledgement's revision and whether it wrote, if acknowledged.
    pub fn ack(&self) -> Option<(i64, bool)> {
        match self.outcome {
            Outcome::Acked { revision, wrote } => Some((revision, wrote)),
            _ => None,
        }
    }

    /// Whether it may have been applied without an acknowledgement.
    pub fn maybe_applied(&self) -> bool {
        !matches!(self.outcome, Outcome::Acked { .. })
    }
}

/// One writer's requests in the order it sent them.
#[derive(Debug, Default)]
pub struct Journal {
    pub entries: Vec<Entry>,
}

impl Journal {
    /// Enters `op` as sent by `writer` and answers its index.
    pub fn sent(&mut self, writer: usize, op: Op) -> usize {
        self.entries.push(Entry { writer, op, outcome: Outcome::Pending });
        self.entries.len() - 1
    }

    /// Records what became of entry `index`.
    pub fn answered(&mut self, index: usize, outcome: Outcome) {
        self.entries[index].outcome = outcome;
    }
}
