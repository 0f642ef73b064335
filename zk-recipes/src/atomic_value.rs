//! [`AtomicValue`] and [`AtomicInteger`]: a value in one node updated atomically, node-
//! compatible with Curator's `DistributedAtomicValue` / `DistributedAtomicInteger`, with
//! Curator's two modes.
//!
//! * **Optimistic**: read the value and its version, write the new value with that version;
//!   on a conflict try again after a short random pause, up to
//!   [`max_attempts`](AtomicValue::max_attempts).
//! * **Promoted to a lock** ([`promoted_to_lock`](AtomicValue::promoted_to_lock), Curator's
//!   `PromotedToLock`): when the optimistic attempts ran out, take a [`Mutex`] at a lock path
//!   (Curator's `InterProcessMutex` layout, so Java participants promoting to the same path
//!   queue with us) and try again while holding it.
//!
//! The node is persistent with container parents (Curator's `creatingParentContainersIfNeeded`).
//! An [`AtomicInteger`] stores 4 bytes big-endian (Java's `ByteBuffer.putInt`); empty data
//! or no node reads as 0. Writes whose reply is lost are not repeated (see
//! [`AtomicLong`](crate::AtomicLong)).
//!
//! ```no_run
//! use std::time::Duration;
//! use zk_recipes::AtomicInteger;
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let hits = AtomicInteger::new(&client, "/app/counters/hits")?
//!     .promoted_to_lock("/app/counters/hits-lock", Duration::from_secs(5))?;
//! let now = hits.increment().await?;
//! # let _ = now;
//! # Ok(()) }
//! ```

use std::time::Duration;

use zk_client::{Client, CreateMode, CreateOptions};

use crate::error::{Error, Result};
use crate::lock::Mutex;
use crate::paths;

/// How many optimistic attempts an update makes by default.
pub const DEFAULT_ATTEMPTS: u32 = 100;

/// A byte value in one node, updated atomically (Curator's `DistributedAtomicValue`).
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct AtomicValue {
    client: Client,
    path: String,
    max_attempts: u32,
    promoted: Option<(Mutex, Duration)>,
}

/// An update's outcome: the value before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    /// The value it replaced (`None`: the node did not exist).
    pub pre: Option<Vec<u8>>,
    /// The value written.
    pub post: Vec<u8>,
}

impl AtomicValue {
    /// A value at `path` (created on the first write).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed path.
    pub fn new(client: &Client, path: &str) -> Result<AtomicValue> {
        paths::validate_recipe_path(path)?;
        Ok(AtomicValue {
            client: client.clone(),
            path: path.to_owned(),
            max_attempts: DEFAULT_ATTEMPTS,
            promoted: None,
        })
    }

    /// Sets how many optimistic attempts an update makes (per phase; at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> AtomicValue {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Promotes an update whose optimistic attempts ran out to a lock at `lock_path`,
    /// waiting at most `max_wait` for it (Curator's `PromotedToLock`). Under the lock the
    /// update gets [`DEFAULT_ATTEMPTS`] attempts of its own (participants that have not
    /// promoted may still write optimistically meanwhile).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed lock path.
    pub fn promoted_to_lock(mut self, lock_path: &str, max_wait: Duration) -> Result<AtomicValue> {
        self.promoted = Some((Mutex::new(&self.client, lock_path)?, max_wait));
        Ok(self)
    }

    /// The value's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The current value; `None` if the node does not exist.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors.
    pub async fn get(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.read().await?.map(|(data, _)| data))
    }

    /// Sets the value unconditionally (Curator's `forceSet`).
    ///
    /// # Errors
    ///
    /// ZooKeeper errors.
    pub async fn force_set(&self, value: &[u8]) -> Result<()> {
        for _ in 0..self.max_attempts {
            match paths::retrying(|| self.client.set_data(&self.path, value, None)).await {
                Ok(_) => return Ok(()),
                Err(zk_client::Error::NoNode) => {
                    if self.create(value).await? {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Contention(self.path.clone()))
    }

    /// Sets the value to `new` if it is `expected` (Curator's `compareAndSet`, one attempt):
    /// `Ok(false)` if it is not, if the node does not exist, or if someone changed it meanwhile.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors.
    pub async fn compare_and_set(&self, expected: &[u8], new: &[u8]) -> Result<bool> {
        let Some((current, version)) = self.read().await? else {
            return Ok(false);
        };
        if current != expected {
            return Ok(false);
        }
        match self.client.set_data(&self.path, new, Some(version)).await {
            Ok(_) => Ok(true),
            Err(zk_client::Error::BadVersion | zk_client::Error::NoNode) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets the value to `new`, optimistically and then (if configured) under the lock
    /// (Curator's `trySet`).
    ///
    /// # Errors
    ///
    /// As [`update`](Self::update).
    pub async fn try_set(&self, new: &[u8]) -> Result<Updated> {
        self.update(|_| new.to_vec()).await
    }

    /// Replaces the value with `f(current)` atomically (`current` is `None` when the node
    /// does not exist): optimistic attempts, then the promoted lock if configured. `f` may
    /// run several times.
    ///
    /// # Errors
    ///
    /// [`Error::Contention`] when every attempt met a concurrent update (and the lock, if
    /// any, could not be had in time); ZooKeeper errors (check
    /// [`outcome_unknown`](zk_client::Error::outcome_unknown): the write may have been
    /// applied).
    pub async fn update<F>(&self, mut f: F) -> Result<Updated>
    where
        F: FnMut(Option<&[u8]>) -> Vec<u8>,
    {
        self.try_update(|current| Ok(f(current))).await
    }

    /// [`update`](Self::update) with a function that may refuse (its error is returned,
    /// nothing is written).
    async fn try_update<F>(&self, mut f: F) -> Result<Updated>
    where
        F: FnMut(Option<&[u8]>) -> Result<Vec<u8>>,
    {
        if let Some(done) = self.attempts(&mut f, self.max_attempts).await? {
            return Ok(done);
        }
        let Some((lock, max_wait)) = &self.promoted else {
            return Err(Error::Contention(self.path.clone()));
        };
        tracing::debug!(path = %self.path, lock = %lock.path(), "atomic value promoted to a lock");
        let Some(guard) = lock.try_acquire(*max_wait).await? else {
            return Err(Error::Contention(self.path.clone()));
        };
        let result = self.attempts(&mut f, DEFAULT_ATTEMPTS).await;
        if let Err(e) = guard.release().await {
            tracing::warn!(error = %e, "could not release an atomic value's lock");
        }
        result?.ok_or_else(|| Error::Contention(self.path.clone()))
    }

    /// Up to `count` optimistic attempts; `None` when they all met a conflict.
    async fn attempts<F>(&self, f: &mut F, count: u32) -> Result<Option<Updated>>
    where
        F: FnMut(Option<&[u8]>) -> Result<Vec<u8>>,
    {
        for attempt in 0..count {
            if attempt > 0 {
                let millis = paths::random_pause_ms(20);
                tokio::time::sleep(Duration::from_millis(millis)).await;
            }
            let current = self.read().await?;
            let post = f(current.as_ref().map(|(data, _)| data.as_slice()))?;
            let written = match &current {
                None => self.create(&post).await?,
                Some((_, version)) => {
                    match self
                        .client
                        .set_data(&self.path, &post, Some(*version))
                        .await
                    {
                        Ok(_) => true,
                        Err(zk_client::Error::BadVersion | zk_client::Error::NoNode) => false,
                        Err(e) if e.is_retryable() && !e.outcome_unknown() => false,
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            if written {
                return Ok(Some(Updated {
                    pre: current.map(|(data, _)| data),
                    post,
                }));
            }
        }
        Ok(None)
    }

    async fn read(&self) -> Result<Option<(Vec<u8>, i32)>> {
        match paths::retrying(|| self.client.get_data(&self.path)).await {
            Ok((data, stat)) => Ok(Some((data.to_vec(), stat.version))),
            Err(zk_client::Error::NoNode) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the node with `value`: `Ok(false)` if someone else created it first.
    async fn create(&self, value: &[u8]) -> Result<bool> {
        let options = CreateOptions::new(CreateMode::Persistent);
        for _ in 0..3 {
            match self.client.create(&self.path, value, &options).await {
                Ok(_) => return Ok(true),
                Err(zk_client::Error::NodeExists) => return Ok(false),
                Err(zk_client::Error::NoNode) => {
                    if let Some(parent) = paths::parent(&self.path) {
                        paths::ensure_path(&self.client, parent).await?;
                    }
                }
                Err(e) if e.is_retryable() && !e.outcome_unknown() => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(false)
    }
}

/// A 32-bit counter in one node (Curator's `DistributedAtomicInteger`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct AtomicInteger {
    value: AtomicValue,
}

/// Decodes Curator's integer: empty → 0, else exactly 4 bytes big-endian.
fn decode_i32(path: &str, data: Option<&[u8]>) -> Result<i32> {
    match data {
        None | Some([]) => Ok(0),
        Some(bytes) => bytes.try_into().map(i32::from_be_bytes).map_err(|_| {
            Error::InvalidValue(format!(
                "{path}: {} bytes, not a 4-byte integer",
                bytes.len()
            ))
        }),
    }
}

impl AtomicInteger {
    /// A counter at `path` (created on the first write).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed path.
    pub fn new(client: &Client, path: &str) -> Result<AtomicInteger> {
        Ok(AtomicInteger {
            value: AtomicValue::new(client, path)?,
        })
    }

    /// See [`AtomicValue::max_attempts`].
    pub fn max_attempts(self, attempts: u32) -> AtomicInteger {
        AtomicInteger {
            value: self.value.max_attempts(attempts),
        }
    }

    /// See [`AtomicValue::promoted_to_lock`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed lock path.
    pub fn promoted_to_lock(self, lock_path: &str, max_wait: Duration) -> Result<AtomicInteger> {
        Ok(AtomicInteger {
            value: self.value.promoted_to_lock(lock_path, max_wait)?,
        })
    }

    /// The current value (0 if the node does not exist).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] if the node holds something other than 0 or 4 bytes.
    pub async fn get(&self) -> Result<i32> {
        decode_i32(self.value.path(), self.value.get().await?.as_deref())
    }

    /// Sets the value unconditionally.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors.
    pub async fn force_set(&self, value: i32) -> Result<()> {
        self.value.force_set(&value.to_be_bytes()).await
    }

    /// Sets the value to `new` if it is `expected` (one attempt; `Ok(false)` otherwise).
    ///
    /// # Errors
    ///
    /// ZooKeeper errors.
    pub async fn compare_and_set(&self, expected: i32, new: i32) -> Result<bool> {
        self.value
            .compare_and_set(&expected.to_be_bytes(), &new.to_be_bytes())
            .await
    }

    /// Adds `delta` (wrapping on overflow, like Java) and returns the new value.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] for a node that does not hold an integer; as
    /// [`AtomicValue::update`].
    pub async fn add(&self, delta: i32) -> Result<i32> {
        let path = self.value.path().to_owned();
        let updated = self
            .value
            .try_update(|current| {
                decode_i32(&path, current)
                    .map(|value| value.wrapping_add(delta).to_be_bytes().to_vec())
            })
            .await?;
        decode_i32(&path, Some(&updated.post))
    }

    /// Adds 1 and returns the new value.
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add).
    pub async fn increment(&self) -> Result<i32> {
        self.add(1).await
    }

    /// Subtracts 1 and returns the new value.
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add).
    pub async fn decrement(&self) -> Result<i32> {
        self.add(-1).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_decode_as_curators() {
        assert_eq!(decode_i32("/p", None).unwrap(), 0);
        assert_eq!(decode_i32("/p", Some(&[])).unwrap(), 0);
        assert_eq!(decode_i32("/p", Some(&[0, 0, 1, 2])).unwrap(), 258);
        assert_eq!(decode_i32("/p", Some(&[0xFF; 4])).unwrap(), -1);
        assert!(decode_i32("/p", Some(&[1, 2])).is_err());
        assert!(decode_i32("/p", Some(&[0; 8])).is_err());
    }
}
