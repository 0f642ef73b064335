//! [`DoubleBarrier`]: N members enter together and leave together, node-compatible with
//! Curator's `DistributedDoubleBarrier`.
//!
//! Layout: each member owns the ephemeral node `<path>/<uuid>`; the member that sees at least
//! N members creates the persistent node `<path>/ready`, which releases everyone waiting in
//! [`enter`](DoubleBarrier::enter) (they watch it). [`leave`](DoubleBarrier::leave) deletes
//! our node and waits until no member node is left (watching the highest one, as Curator
//! does), then removes `ready`. A member that dies is removed with its session, so the others
//! still get out.
//!
//! Differences from Curator: a timed-out or cancelled `enter` removes our node (Curator
//! leaves it in place), so an abandoned attempt never counts as a member.
//!
//! ```no_run
//! use zk_recipes::DoubleBarrier;
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let barrier = DoubleBarrier::new(&client, "/app/barriers/batch-7", 3)?;
//! barrier.enter().await?; // returns once 3 members are in
//! // ... compute ...
//! barrier.leave().await?; // returns once everyone is out
//! # Ok(()) }
//! ```

use std::time::Duration;

use zk_client::{Client, CreateMode, CreateOptions};

use crate::error::{Error, Result};
use crate::paths;

/// The name of the node that opens the barrier (Curator's `READY_NODE`).
pub const READY_NODE: &str = "ready";

/// One member of a double barrier. Create one per attempt.
#[derive(Debug, Clone)]
pub struct DoubleBarrier {
    client: Client,
    path: String,
    members: usize,
    node: String,
    ready: String,
}

impl DoubleBarrier {
    /// A member of the double barrier at `path` that opens when `members` (at least 1) have
    /// entered.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed path; [`Error::InvalidState`] for 0 members.
    pub fn new(client: &Client, path: &str, members: usize) -> Result<DoubleBarrier> {
        paths::validate_recipe_path(path)?;
        if members == 0 {
            return Err(Error::InvalidState(
                "a double barrier needs at least one member",
            ));
        }
        Ok(DoubleBarrier {
            client: client.clone(),
            path: path.to_owned(),
            members,
            node: paths::join(path, &uuid::Uuid::new_v4().hyphenated().to_string()),
            ready: paths::join(path, READY_NODE),
        })
    }

    /// Our member node's path.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Enters and waits until enough members have entered. If the future is dropped before
    /// it completes, our node is removed in the background.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors (e.g. the session expired); our node is removed first.
    pub async fn enter(&self) -> Result<()> {
        let mut cleanup = NodeCleanup {
            client: self.client.clone(),
            node: Some(self.node.clone()),
        };
        let result = self.enter_inner().await;
        if result.is_ok() {
            cleanup.node = None;
        } else {
            cleanup.remove().await;
        }
        result
    }

    /// Like [`enter`](Self::enter), for at most `timeout`: `Ok(false)` if the barrier did
    /// not open in time (our node has been removed).
    pub async fn enter_timeout(&self, timeout: Duration) -> Result<bool> {
        match tokio::time::timeout(timeout, self.enter()).await {
            Ok(result) => result.map(|()| true),
            Err(_) => {
                paths::delete_quietly(&self.client, &self.node).await?;
                Ok(false)
            }
        }
    }

    async fn enter_inner(&self) -> Result<()> {
        let client = &self.client;
        let ephemeral = CreateOptions::new(CreateMode::Ephemeral);
        loop {
            match client.create(&self.node, b"", &ephemeral).await {
                Ok(_) => break,
                Err(zk_client::Error::NoNode) => paths::ensure_path(client, &self.path).await?,
                // Our own create whose reply was lost.
                Err(zk_client::Error::NodeExists) => break,
                Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => return Err(e.into()),
            }
        }
        loop {
            let (ready, watcher) = paths::retrying(|| client.exists_watch(&self.ready)).await?;
            if ready.is_some() {
                tracing::info!(path = %self.path, "double barrier entered");
                return Ok(());
            }
            let children = paths::retrying(|| client.get_children(&self.path)).await?;
            let count = children.iter().filter(|c| *c != READY_NODE).count();
            if count >= self.members {
                let persistent = CreateOptions::new(CreateMode::Persistent);
                match paths::retrying(|| client.create(&self.ready, b"", &persistent)).await {
                    Ok(_) | Err(zk_client::Error::NodeExists) => {}
                    Err(e) => return Err(e.into()),
                }
                tracing::info!(path = %self.path, count, "double barrier entered (opened it)");
                return Ok(());
            }
            // Woken when `ready` appears (or the session ends: the next call says so).
            let _event = watcher.await;
        }
    }

    /// Leaves: deletes our node and waits until every member has left.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors (e.g. the session expired).
    pub async fn leave(&self) -> Result<()> {
        let client = &self.client;
        paths::delete_quietly(client, &self.node).await?;
        loop {
            let mut children = match paths::retrying(|| client.get_children(&self.path)).await {
                Ok(children) => children,
                Err(zk_client::Error::NoNode) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            children.retain(|c| c != READY_NODE);
            children.sort();
            let Some(highest) = children.last() else {
                break;
            };
            let highest = paths::join(&self.path, highest);
            let (stat, watcher) = paths::retrying(|| client.exists_watch(&highest)).await?;
            if stat.is_some() {
                let event = watcher.await;
                if event.is_session_event() {
                    // The next call reports the session's end.
                    client.exists(&self.path).await?;
                }
            }
        }
        match paths::retrying(|| client.delete(&self.ready, None)).await {
            Ok(()) | Err(zk_client::Error::NoNode) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(path = %self.path, "double barrier left");
        Ok(())
    }

    /// Like [`leave`](Self::leave), for at most `timeout`: `Ok(false)` if others were still
    /// in when the time ran out (our node is gone either way).
    pub async fn leave_timeout(&self, timeout: Duration) -> Result<bool> {
        match tokio::time::timeout(timeout, self.leave()).await {
            Ok(result) => result.map(|()| true),
            Err(_) => Ok(false),
        }
    }
}

/// Removes a member node unless disarmed (`node` taken).
struct NodeCleanup {
    client: Client,
    node: Option<String>,
}

impl NodeCleanup {
    async fn remove(&mut self) {
        if let Some(node) = self.node.take() {
            if let Err(e) = paths::delete_quietly(&self.client, &node).await {
                tracing::warn!(error = %e, %node, "could not remove our barrier node");
            }
        }
    }
}

impl Drop for NodeCleanup {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            let client = self.client.clone();
            paths::spawn_cleanup("double barrier enter", async move {
                paths::delete_quietly(&client, &node).await
            });
        }
    }
}
