//! Advisory locking of disk images (`flock`, through `File::try_lock`):
//! exclusive for read-write use, shared for read-only use, never waiting.

use std::fs::{File, TryLockError};
use std::io;

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds a conflicting lock.
    #[error("the image is in use by another process (locked)")]
    Busy,
    /// The lock call failed.
    #[error("cannot lock the image: {0}")]
    Io(io::Error),
}

/// Takes an exclusive (`read_only == false`) or shared lock on `file`
/// without blocking. The lock lasts until the file is closed.
pub fn lock(file: &File, read_only: bool) -> Result<(), LockError> {
    let r = if read_only {
        file.try_lock_shared()
    } else {
        file.try_lock()
    };
    r.map_err(|e| match e {
        TryLockError::WouldBlock => LockError::Busy,
        TryLockError::Error(e) => LockError::Io(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_shared_shares() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let a = File::open(f.path()).unwrap();
        let b = File::open(f.path()).unwrap();
        let c = File::open(f.path()).unwrap();
        lock(&a, true).unwrap();
        lock(&b, true).unwrap();
        assert!(matches!(lock(&c, false), Err(LockError::Busy)));
        drop(a);
        drop(b);
        lock(&c, false).unwrap();
        let d = File::open(f.path()).unwrap();
        assert!(matches!(lock(&d, true), Err(LockError::Busy)));
    }
}
