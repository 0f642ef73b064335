//! [`SimpleDistributedQueue`]: the plain queue of ZooKeeper's recipe page, node-compatible
//! with Curator's `SimpleDistributedQueue`.
//!
//! # Layout (Curator's)
//!
//! * The queue node and its missing ancestors are containers (Curator's `EnsureContainers`):
//!   an empty queue may be removed by the server and is created again on the next call.
//! * An item is a persistent sequential child `qn-<seq>` holding the raw bytes (no
//!   envelope, unlike [`DistributedQueue`](crate::DistributedQueue)).
//! * Consumers take the children in lexical order, ignoring foreign children; whoever
//!   deletes an item owns it (**at most once**: a consumer that crashes after the delete
//!   loses the item).
//!
//! ```no_run
//! use zk_recipes::SimpleDistributedQueue;
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let queue = SimpleDistributedQueue::new(&client, "/app/simple")?;
//! queue.offer(b"job 1").await?;
//! assert_eq!(queue.take().await?, b"job 1");
//! assert_eq!(queue.poll().await?, None);
//! # Ok(()) }
//! ```

use std::time::Duration;

use tokio::time::Instant;
use zk_client::{Client, CreateMode, CreateOptions};

use crate::error::Result;
use crate::paths;

/// The name prefix of an item (Curator's `SimpleDistributedQueue.PREFIX`).
pub const SIMPLE_ITEM_PREFIX: &str = "qn-";

/// A FIFO queue of raw byte items (Curator's `SimpleDistributedQueue`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct SimpleDistributedQueue {
    client: Client,
    path: String,
}

impl SimpleDistributedQueue {
    /// The queue at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`](crate::Error::InvalidPath) for a malformed path.
    pub fn new(client: &Client, path: &str) -> Result<SimpleDistributedQueue> {
        paths::validate_recipe_path(path)?;
        Ok(SimpleDistributedQueue {
            client: client.clone(),
            path: path.to_owned(),
        })
    }

    /// The queue node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Adds an item (Curator's `offer`); returns its node's path.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors ([`Error::SessionLost`](crate::Error::SessionLost) once the session
    /// is over). When the error's [`outcome_unknown`](zk_client::Error::outcome_unknown) is
    /// `true` the item may have been added anyway; it is not retried so that it is never
    /// added twice.
    pub async fn offer(&self, data: &[u8]) -> Result<String> {
        let item = paths::join(&self.path, SIMPLE_ITEM_PREFIX);
        let options = CreateOptions::new(CreateMode::PersistentSequential);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            match self.client.create(&item, data, &options).await {
                Ok((path, _)) => return Ok(path),
                Err(zk_client::Error::NoNode) if attempt < 5 => {
                    paths::ensure_path(&self.client, &self.path).await?;
                }
                Err(e) if e.is_retryable() && !e.outcome_unknown() && attempt < 10 => {
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The first item without removing it (Curator's `peek`), or `None` if empty.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors.
    pub async fn peek(&self) -> Result<Option<Vec<u8>>> {
        self.first(false, false).await.map(|(item, _)| item)
    }

    /// Removes and returns the first item (Curator's `poll()`), or `None` if empty.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors.
    pub async fn poll(&self) -> Result<Option<Vec<u8>>> {
        self.first(true, false).await.map(|(item, _)| item)
    }

    /// Removes and returns the first item, waiting for one (Curator's `take`).
    /// Cancellation: dropping the future while it waits is harmless; dropping it after the
    /// delete was sent may lose that one item (at most once).
    ///
    /// # Errors
    ///
    /// ZooKeeper errors, e.g. [`Error::SessionLost`](crate::Error::SessionLost) when the
    /// session ends while waiting.
    pub async fn take(&self) -> Result<Vec<u8>> {
        loop {
            if let Some(item) = self.wait_until(None).await? {
                return Ok(item);
            }
        }
    }

    /// Like [`take`](Self::take), waiting at most `timeout` (Curator's `poll(timeout)`):
    /// `Ok(None)` if no item came.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors.
    pub async fn poll_timeout(&self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        self.wait_until(Some(Instant::now() + timeout)).await
    }

    async fn wait_until(&self, deadline: Option<Instant>) -> Result<Option<Vec<u8>>> {
        loop {
            let (item, watcher) = self.first(true, true).await?;
            if item.is_some() {
                return Ok(item);
            }
            let Some(watcher) = watcher else {
                // The queue node was gone (an empty container reaped): look again.
                continue;
            };
            let fired = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, watcher).await.ok(),
                None => Some(watcher.await),
            };
            match fired {
                None => return Ok(None),
                Some(event) if event.is_session_event() => {
                    // The session ended: the next look reports it.
                }
                Some(_) => {}
            }
        }
    }

    /// The first item (removed if `remove`); with `watch`, also a child watch armed by the
    /// same listing.
    async fn first(
        &self,
        remove: bool,
        watch: bool,
    ) -> Result<(Option<Vec<u8>>, Option<zk_client::OneshotWatcher>)> {
        paths::ensure_path(&self.client, &self.path).await?;
        let (children, watcher) = if watch {
            match paths::retrying(|| self.client.get_children_watch(&self.path)).await {
                Ok((children, _, watcher)) => (children, Some(watcher)),
                Err(zk_client::Error::NoNode) => return Ok((None, None)),
                Err(e) => return Err(e.into()),
            }
        } else {
            match paths::retrying(|| self.client.get_children(&self.path)).await {
                Ok(children) => (children, None),
                Err(zk_client::Error::NoNode) => return Ok((None, None)),
                Err(e) => return Err(e.into()),
            }
        };
        let mut items: Vec<String> = children
            .into_iter()
            .filter(|c| c.starts_with(SIMPLE_ITEM_PREFIX))
            .collect();
        items.sort();
        for name in items {
            let item = paths::join(&self.path, &name);
            let data = match paths::retrying(|| self.client.get_data(&item)).await {
                Ok((data, _)) => data,
                Err(zk_client::Error::NoNode) => continue,
                Err(e) => return Err(e.into()),
            };
            if !remove {
                return Ok((Some(data.to_vec()), watcher));
            }
            match self.client.delete(&item, None).await {
                Ok(()) => {
                    tracing::debug!(%item, "took a simple queue item");
                    return Ok((Some(data.to_vec()), watcher));
                }
                // Another consumer won it.
                Err(zk_client::Error::NoNode) => continue,
                Err(e) if e.is_retryable() => {
                    tracing::warn!(%item, error = %e, "delete of a taken item unanswered; \
                        the item may be lost (at-most-once take)");
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok((None, watcher))
    }
}
