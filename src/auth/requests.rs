//! What each KV request needs permission for (etcd's `authApplierV3` and `checkTxnAuth`).

use std::collections::BTreeSet;

use super::store::Checker;
use crate::error::Result;
use crate::txn::request::{DeleteRangeRequest, PutRequest, Txn, TxnOp};
use crate::txn::LeaseLookup;

impl Checker<'_> {
    /// A put: write on the key; write on every key already attached to its lease (whoever
    /// can revoke the lease deletes them); read on the key when it asks for the previous
    /// value.
    pub(crate) fn put(&self, req: &PutRequest, leases: &dyn LeaseLookup) -> Result<()> {
        if self.is_open() {
            return Ok(());
        }
        self.write(&req.key, &[])?;
        if req.lease != 0 {
            self.lease_keys(&leases.lease_keys(req.lease))?;
        }
        if req.prev_kv {
            self.range(&req.key, &[])?;
        }
        Ok(())
    }

    /// A delete: write on its range, and read on it when it asks for the deleted values.
    pub(crate) fn delete(&self, req: &DeleteRangeRequest) -> Result<()> {
        if self.is_open() {
            return Ok(());
        }
        self.write(&req.key, &req.range_end)?;
        if req.prev_kv {
            self.range(&req.key, &req.range_end)?;
        }
        Ok(())
    }

    /// A txn: read on every compare's key or range, and what every op of both branches
    /// needs, nested txns included, whichever branch runs.
    pub(crate) fn txn(&self, txn: &Txn, leases: &dyn LeaseLookup) -> Result<()> {
        if self.is_open() {
            return Ok(());
        }
        for compare in &txn.compare {
            self.range(&compare.key, &compare.range_end)?;
        }
        for op in txn.success.iter().chain(&txn.failure) {
            match op {
                TxnOp::Get(req) => self.range(&req.key, &req.range_end)?,
                TxnOp::Put(req) => self.put(req, leases)?,
                // The read first, as etcd checks a delete inside a txn.
                TxnOp::Delete(req) => {
                    if req.prev_kv {
                        self.range(&req.key, &req.range_end)?;
                    }
                    self.write(&req.key, &req.range_end)?;
                }
                TxnOp::Txn(nested) => self.txn(nested, leases)?,
            }
        }
        Ok(())
    }

    /// Revoking a lease, or attaching a key to it: an administrator may; anyone else needs
    /// write on every key attached to it.
    pub(crate) fn lease_keys(&self, keys: &BTreeSet<Vec<u8>>) -> Result<()> {
        if self.is_open() || self.admin().is_ok() {
            return Ok(());
        }
        keys.iter().try_for_each(|key| self.write(key, &[]))
    }

    /// Reading a lease's keys (time-to-live with keys, the lease list): an administrator
    /// may; anyone else needs read on every one.
    pub(crate) fn lease_keys_readable<'k>(&self, keys: impl IntoIterator<Item = &'k Vec<u8>>) -> Result<()> {
        if self.is_open() || self.admin().is_ok() {
            return Ok(());
        }
        keys.into_iter().try_for_each(|key| self.range(key, &[]))
    }
}
