//! [`Barrier`]: a gate that holds everyone until it is removed, node-compatible with
//! Curator's `DistributedBarrier`: the barrier is up while the node at its path exists.
//!
//! ```no_run
//! use zk_recipes::Barrier;
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let gate = Barrier::new(&client, "/app/barriers/deploy")?;
//! gate.set().await?;
//! // elsewhere: gate.wait().await? returns once someone calls gate.remove()
//! gate.remove().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use zk_client::{Client, CreateMode, CreateOptions};

use crate::error::Result;
use crate::paths;

/// A distributed barrier. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    path: String,
}

impl Barrier {
    /// The barrier at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`](crate::Error::InvalidPath) for a malformed path.
    pub fn new(client: &Client, path: &str) -> Result<Barrier> {
        paths::validate_recipe_path(path)?;
        Ok(Barrier {
            client: client.clone(),
            path: path.to_owned(),
        })
    }

    /// Puts the barrier up (creates its node, and missing parents as containers); already up
    /// is fine.
    pub async fn set(&self) -> Result<()> {
        if let Some((parent, _)) = self.path.rsplit_once('/') {
            if !parent.is_empty() {
                paths::ensure_path(&self.client, parent).await?;
            }
        }
        let options = CreateOptions::new(CreateMode::Persistent);
        match paths::retrying(|| self.client.create(&self.path, b"", &options)).await {
            Ok(_) | Err(zk_client::Error::NodeExists) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes the barrier down, releasing every waiter; already down is fine.
    pub async fn remove(&self) -> Result<()> {
        match paths::retrying(|| self.client.delete(&self.path, None)).await {
            Ok(()) | Err(zk_client::Error::NoNode) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// `true` while the barrier is up.
    pub async fn is_set(&self) -> Result<bool> {
        Ok(paths::retrying(|| self.client.exists(&self.path))
            .await?
            .is_some())
    }

    /// Waits until the barrier is down (at once if it is not up).
    ///
    /// # Errors
    ///
    /// ZooKeeper errors, e.g. when the session ends while waiting.
    pub async fn wait(&self) -> Result<()> {
        loop {
            let (stat, watcher) = paths::retrying(|| self.client.exists_watch(&self.path)).await?;
            if stat.is_none() {
                return Ok(());
            }
            // A node event: look again. A session event: the next call reports it.
            let _event = watcher.await;
        }
    }

    /// Like [`wait`](Self::wait), for at most `timeout`: `Ok(false)` if still up.
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        match tokio::time::timeout(timeout, self.wait()).await {
            Ok(result) => result.map(|()| true),
            Err(_) => Ok(false),
        }
    }
}
