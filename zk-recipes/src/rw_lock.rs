//! [`ReadWriteLock`]: shared readers, exclusive writers, node-compatible with Curator's
//! `InterProcessReadWriteLock`.
//!
//! Readers create `<path>/_c_<uuid>-__READ__<seq>`, writers `<path>/_c_<uuid>-__WRIT__<seq>`,
//! all ordered by the sequence after either name. A writer holds the lock when it is first
//! and waits on the node just before it; a reader holds it while no writer is ahead of it
//! and otherwise waits on the first writer ahead. Both locks are [`Mutex`] values with the
//! same guards, loss futures, timeouts and cancellation safety. Not re-entrant (Curator lets
//! a thread holding the write lock take the read lock; here that second acquire waits).
//!
//! ```no_run
//! use zk_recipes::ReadWriteLock;
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let lock = ReadWriteLock::new(&client, "/app/locks/catalog")?;
//! let reading = lock.read_lock().acquire().await?; // many readers at once
//! reading.release().await?;
//! let writing = lock.write_lock().acquire().await?; // alone
//! writing.release().await?;
//! # Ok(()) }
//! ```

use zk_client::Client;

use crate::error::Result;
use crate::lock::{Kind, Mutex};
use crate::policy::ErrorPolicy;

/// A read/write lock on a path. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReadWriteLock {
    read: Mutex,
    write: Mutex,
}

impl ReadWriteLock {
    /// A read/write lock on `path`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`](crate::Error::InvalidPath) for a malformed path.
    pub fn new(client: &Client, path: &str) -> Result<ReadWriteLock> {
        Ok(ReadWriteLock {
            read: Mutex::with_kind(client, path, Kind::Read)?,
            write: Mutex::with_kind(client, path, Kind::Write)?,
        })
    }

    /// Sets the [`ErrorPolicy`] of both locks' guards.
    pub fn error_policy(self, policy: ErrorPolicy) -> ReadWriteLock {
        ReadWriteLock {
            read: self.read.error_policy(policy),
            write: self.write.error_policy(policy),
        }
    }

    /// The shared lock (each acquire is a separate reader).
    pub fn read_lock(&self) -> Mutex {
        self.read.clone()
    }

    /// The exclusive lock.
    pub fn write_lock(&self) -> Mutex {
        self.write.clone()
    }
}
