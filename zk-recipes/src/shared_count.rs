//! [`SharedCount`]: a 32-bit value every participant sees and may change, node-compatible
//! with Curator's `SharedCount`.
//!
//! The value is the node's data as 4 bytes, big-endian (Java's `ByteBuffer.putInt`). A
//! [`VersionedValue`] carries the node version it was read at, so
//! [`try_set`](SharedCount::try_set) only succeeds if nobody changed the value since: a
//! compare-and-set on versions, not on values. [`changes`](SharedCount::changes) follows
//! every change (re-armed data watches).
//!
//! ```no_run
//! use zk_recipes::SharedCount;
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let workers = SharedCount::start(&client, "/app/config/workers", 4).await?;
//! let current = workers.get().await?;
//! if !workers.try_set(current, current.value + 1).await? {
//!     println!("someone else changed it first");
//! }
//! let mut changes = workers.changes().await?;
//! let next = changes.next().await?;
//! println!("now {} (version {})", next.value, next.version);
//! # Ok(()) }
//! ```

use zk_client::{Client, CreateMode, CreateOptions, EventType, OneshotWatcher};

use crate::error::{Error, Result};
use crate::paths;

/// A value with the node version it was read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionedValue {
    /// The value.
    pub value: i32,
    /// The node's data version when it was read.
    pub version: i32,
}

/// A shared 32-bit value. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SharedCount {
    client: Client,
    path: String,
}

impl SharedCount {
    /// Opens the shared count at `path`, creating it (and its parents) with `seed` if it does
    /// not exist yet, as Curator's `SharedCount.start()` does.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed path; ZooKeeper errors.
    pub async fn start(client: &Client, path: &str, seed: i32) -> Result<SharedCount> {
        paths::validate_recipe_path(path)?;
        let count = SharedCount {
            client: client.clone(),
            path: path.to_owned(),
        };
        if client.exists(path).await?.is_none() {
            if let Some((parent, _)) = path.rsplit_once('/') {
                if !parent.is_empty() {
                    paths::ensure_path(client, parent).await?;
                }
            }
            let options = CreateOptions::new(CreateMode::Persistent);
            // A lost reply is harmless here: NodeExists on the retry means it is there.
            match paths::retrying(|| client.create(path, &seed.to_be_bytes(), &options)).await {
                Ok(_) | Err(zk_client::Error::NodeExists) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(count)
    }

    /// The count's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The current value and version.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] if the node does not hold 4 bytes; ZooKeeper errors
    /// ([`zk_client::Error::NoNode`] if someone deleted it).
    pub async fn get(&self) -> Result<VersionedValue> {
        let (data, stat) = paths::retrying(|| self.client.get_data(&self.path)).await?;
        Ok(VersionedValue {
            value: decode(&self.path, &data)?,
            version: stat.version,
        })
    }

    /// Sets the value unconditionally.
    pub async fn set(&self, value: i32) -> Result<()> {
        // Idempotent, so retrying after a lost reply is safe.
        paths::retrying(|| self.client.set_data(&self.path, &value.to_be_bytes(), None)).await?;
        Ok(())
    }

    /// Sets the value if the node is still at `previous.version`; `Ok(false)` if someone
    /// changed it since (read again and decide).
    ///
    /// # Errors
    ///
    /// ZooKeeper errors; if [`outcome_unknown`](zk_client::Error::outcome_unknown), the write
    /// may have been applied.
    pub async fn try_set(&self, previous: VersionedValue, value: i32) -> Result<bool> {
        match self
            .client
            .set_data(&self.path, &value.to_be_bytes(), Some(previous.version))
            .await
        {
            Ok(_) => Ok(true),
            Err(zk_client::Error::BadVersion) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// A stream of the value's changes from now on.
    pub async fn changes(&self) -> Result<SharedCountChanges> {
        let (data, stat, watcher) = self.client.get_data_watch(&self.path).await?;
        Ok(SharedCountChanges {
            count: self.clone(),
            last: VersionedValue {
                value: decode(&self.path, &data)?,
                version: stat.version,
            },
            watcher: Some(watcher),
        })
    }
}

/// Changes of a [`SharedCount`] (see [`SharedCount::changes`]).
#[derive(Debug)]
pub struct SharedCountChanges {
    count: SharedCount,
    last: VersionedValue,
    watcher: Option<OneshotWatcher>,
}

impl SharedCountChanges {
    /// The value as last reported.
    pub fn last(&self) -> VersionedValue {
        self.last
    }

    /// Waits for the next change and returns the new value. Several quick changes may be
    /// reported as one (the latest).
    ///
    /// # Errors
    ///
    /// [`zk_client::Error::NoNode`] if the node was deleted; the session's terminal error
    /// once it ends.
    pub async fn next(&mut self) -> Result<VersionedValue> {
        loop {
            if let Some(watcher) = self.watcher.take() {
                let event = watcher.await;
                if event.event_type == EventType::NodeDeleted {
                    return Err(zk_client::Error::NoNode.into());
                }
            }
            let client = &self.count.client;
            let (data, stat, watcher) =
                paths::retrying(|| client.get_data_watch(&self.count.path)).await?;
            self.watcher = Some(watcher);
            if stat.version != self.last.version {
                self.last = VersionedValue {
                    value: decode(&self.count.path, &data)?,
                    version: stat.version,
                };
                return Ok(self.last);
            }
        }
    }
}

/// Decodes Curator's representation: exactly 4 bytes big-endian.
fn decode(path: &str, data: &[u8]) -> Result<i32> {
    let bytes: [u8; 4] = data
        .try_into()
        .map_err(|_| Error::InvalidValue(format!("{path}: {} bytes, not 4", data.len())))?;
    Ok(i32::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curator_byte_layout() {
        assert_eq!(decode("/c", &[0, 0, 1, 2]).unwrap(), 258);
        assert_eq!(decode("/c", &(-7i32).to_be_bytes()).unwrap(), -7);
        assert!(matches!(decode("/c", &[]), Err(Error::InvalidValue(_))));
    }
}
