//! The cross-process refresh lock: an exclusive `flock` per connection.

use crate::deadline::Deadline;
use crate::error::{Error, Result};
use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::store::LOCK_WAIT;

/// An exclusive lock on one connection's refresh, released on drop.
pub(super) struct RefreshLock(File);

impl RefreshLock {
    /// Waits for the lock until the deadline (and at most [`LOCK_WAIT`]).
    pub(super) fn acquire(path: PathBuf, deadline: &Deadline) -> Result<Self> {
        if let Some(dir) = path.parent() {
            crate::private::ensure_dir(dir)?;
        }
        let file = crate::private::open_lock_file(&path)?;
        let give_up = Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self(file)),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < give_up => {
                    deadline.check(Some(&"another process is refreshing this grant"))?;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::Invalid(
                        "another Grantkeeper process has been refreshing this connection for 2 minutes; try again".into(),
                    ))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
    }
}

impl Drop for RefreshLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}
