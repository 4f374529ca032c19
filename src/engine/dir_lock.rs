//! The lock a persistent engine holds on its data directory, so that a second store
//! opened on the same directory, in this process or another, is refused at once with an
//! error that says so (rather than the engine's own lock message, or sled's wait).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use super::{EngineError, EngineErrorKind};

/// The lock file's name inside a data directory.
pub const LOCK_FILE: &str = "etcdlite.lock";

/// An exclusive lock on a data directory, held until dropped (and released by the
/// operating system if the process dies).
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Locks `dir` (creating it if needed), or fails when another store holds it.
    pub(crate) fn take(dir: &Path) -> Result<Self, EngineError> {
        std::fs::create_dir_all(dir).map_err(EngineError::io)?;
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(LOCK_FILE));
        let file = file.map_err(EngineError::io)?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(EngineError::new(
                EngineErrorKind::Io,
                format!("data directory {} is in use by another store", dir.display()),
            )),
            Err(TryLockError::Error(e)) => Err(EngineError::io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_locked_once_until_its_lock_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::take(dir.path()).unwrap();
        let refused = DirLock::take(dir.path()).unwrap_err();
        assert!(refused.to_string().contains("is in use by another store"), "{refused}");
        drop(first);
        DirLock::take(dir.path()).unwrap();
    }
}
