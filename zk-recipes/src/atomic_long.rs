//! [`AtomicLong`]: a 64-bit counter in one node, node-compatible with Curator's
//! `DistributedAtomicLong` (optimistic mode).
//!
//! The value is the node's data as 8 bytes, big-endian (Java's `ByteBuffer.putLong`); a
//! missing node or empty data reads as 0. Updates are optimistic: read the value and its
//! version, write the new value with that version, and on a version conflict try again after
//! a short random pause. A Java service using `DistributedAtomicLong` on the same path shares
//! the counter.
//!
//! **Lost replies.** A write whose reply is lost may or may not have been applied, and
//! repeating it could apply it twice. Such a write is not retried: the call fails with an
//! error whose [`outcome_unknown`](zk_client::Error::outcome_unknown) is true, and the caller
//! decides (Curator's own retry loop would repeat it).
//!
//! ```no_run
//! use zk_recipes::AtomicLong;
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let jobs = AtomicLong::new(&client, "/app/counters/jobs")?;
//! let now = jobs.increment().await?;
//! assert!(jobs.compare_and_set(now, 100).await? || jobs.get().await? != now);
//! # Ok(()) }
//! ```

use std::time::Duration;

use zk_client::{Client, CreateMode, CreateOptions};

use crate::error::{Error, Result};
use crate::paths;

/// How many optimistic attempts an update makes before giving up with
/// [`Error::Contention`].
pub const DEFAULT_MAX_ATTEMPTS: u32 = 1000;

/// A distributed 64-bit counter. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AtomicLong {
    client: Client,
    path: String,
    max_attempts: u32,
}

/// The node's value and version as last read.
struct Current {
    /// `None`: the node does not exist.
    version: Option<i32>,
    value: i64,
}

impl AtomicLong {
    /// A counter at `path` (the node and its parents are created on the first write).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed path.
    pub fn new(client: &Client, path: &str) -> Result<AtomicLong> {
        paths::validate_recipe_path(path)?;
        Ok(AtomicLong {
            client: client.clone(),
            path: path.to_owned(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        })
    }

    /// Sets how many optimistic attempts an update makes (default
    /// [`DEFAULT_MAX_ATTEMPTS`], at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> AtomicLong {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The counter's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The current value (0 if the node does not exist).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] if the node holds something other than 0 or 8 bytes.
    pub async fn get(&self) -> Result<i64> {
        Ok(self.current().await?.value)
    }

    /// Sets the value unconditionally (creating the node if needed).
    pub async fn force_set(&self, value: i64) -> Result<()> {
        let bytes = value.to_be_bytes();
        loop {
            match self.client.set_data(&self.path, &bytes, None).await {
                Ok(_) => return Ok(()),
                Err(zk_client::Error::NoNode) => match self.create(value).await {
                    Ok(true) => return Ok(()),
                    Ok(false) => continue,
                    Err(e) => return Err(e),
                },
                // Writing the same value again is harmless.
                Err(e) if e.is_retryable() => self.pause().await,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sets the value to `new` if it is `expected`; `Ok(false)` if it is not (or the node
    /// does not exist, as in Curator) or someone changed it meanwhile.
    pub async fn compare_and_set(&self, expected: i64, new: i64) -> Result<bool> {
        let current = self.current().await?;
        let Some(version) = current.version else {
            return Ok(false);
        };
        if current.value != expected {
            return Ok(false);
        }
        match self
            .client
            .set_data(&self.path, &new.to_be_bytes(), Some(version))
            .await
        {
            Ok(_) => Ok(true),
            Err(zk_client::Error::BadVersion | zk_client::Error::NoNode) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds `delta` (wrapping on overflow, like Java) and returns the new value.
    ///
    /// # Errors
    ///
    /// [`Error::Contention`] when every attempt met a concurrent update; a ZooKeeper error
    /// (check [`outcome_unknown`](zk_client::Error::outcome_unknown): the addition may have
    /// been applied).
    pub async fn add(&self, delta: i64) -> Result<i64> {
        for _ in 0..self.max_attempts {
            let current = self.current().await?;
            let new = current.value.wrapping_add(delta);
            let written = match current.version {
                None => self.create(new).await?,
                Some(version) => match self
                    .client
                    .set_data(&self.path, &new.to_be_bytes(), Some(version))
                    .await
                {
                    Ok(_) => true,
                    Err(zk_client::Error::BadVersion | zk_client::Error::NoNode) => false,
                    Err(e) if e.is_retryable() && !e.outcome_unknown() => false,
                    Err(e) => return Err(e.into()),
                },
            };
            if written {
                return Ok(new);
            }
            self.pause().await;
        }
        Err(Error::Contention(self.path.clone()))
    }

    /// Adds 1 and returns the new value.
    pub async fn increment(&self) -> Result<i64> {
        self.add(1).await
    }

    /// Subtracts 1 and returns the new value.
    pub async fn decrement(&self) -> Result<i64> {
        self.add(-1).await
    }

    async fn current(&self) -> Result<Current> {
        match paths::retrying(|| self.client.get_data(&self.path)).await {
            Ok((data, stat)) => Ok(Current {
                version: Some(stat.version),
                value: decode(&self.path, &data)?,
            }),
            Err(zk_client::Error::NoNode) => Ok(Current {
                version: None,
                value: 0,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the node with `value`: `Ok(false)` if someone else created it first.
    async fn create(&self, value: i64) -> Result<bool> {
        let options = CreateOptions::new(CreateMode::Persistent);
        for _ in 0..2 {
            match self
                .client
                .create(&self.path, &value.to_be_bytes(), &options)
                .await
            {
                Ok(_) => return Ok(true),
                Err(zk_client::Error::NodeExists) => return Ok(false),
                Err(zk_client::Error::NoNode) => {
                    if let Some((parent, _)) = self.path.rsplit_once('/') {
                        if !parent.is_empty() {
                            paths::ensure_path(&self.client, parent).await?;
                        }
                    }
                }
                Err(e) if e.is_retryable() && !e.outcome_unknown() => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(false)
    }

    async fn pause(&self) {
        let millis = paths::random_pause_ms(20);
        tokio::time::sleep(Duration::from_millis(millis)).await;
    }
}

/// Decodes Curator's representation: empty → 0, else exactly 8 bytes big-endian.
fn decode(path: &str, data: &[u8]) -> Result<i64> {
    if data.is_empty() {
        return Ok(0);
    }
    let bytes: [u8; 8] = data
        .try_into()
        .map_err(|_| Error::InvalidValue(format!("{path}: {} bytes, not 8", data.len())))?;
    Ok(i64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curator_byte_layout() {
        assert_eq!(decode("/c", &[]).unwrap(), 0);
        assert_eq!(decode("/c", &[0, 0, 0, 0, 0, 0, 1, 2]).unwrap(), 258);
        assert_eq!(decode("/c", &(-5i64).to_be_bytes()).unwrap(), -5);
        assert!(matches!(
            decode("/c", &[1, 2, 3]),
            Err(Error::InvalidValue(_))
        ));
    }
}
