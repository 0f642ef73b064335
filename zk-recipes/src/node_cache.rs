//! [`NodeCache`]: the current data and stat of one node, kept up to date with a persistent
//! watch (Curator's `NodeCache` / `CuratorCache` for a single node).
//!
//! The cache adds a [`Persistent`](zk_client::AddWatchMode::Persistent) watch on the node
//! (which need not exist), then reads it, and reads it again on every event: creation, data
//! change and deletion are all seen. After a reconnect it reads the node again, because a
//! restored persistent watch does not replay the changes made while the client was away
//! (Apache ZooKeeper 3.8). The cache ends when the session ends (it keeps its last value).
//!
//! ```no_run
//! use zk_recipes::NodeCache;
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let cache = NodeCache::start(&client, "/app/config").await?;
//! println!("now: {:?}", cache.current().map(|n| n.data));
//! let mut changes = cache.changes();
//! while let Some(node) = changes.next().await {
//!     match node {
//!         Some(node) => println!("config v{}: {:?}", node.stat.version, node.data),
//!         None => println!("config deleted"),
//!     }
//! }
//! # Ok(()) }
//! ```

use tokio::sync::watch;
use tokio::task::AbortHandle;
use zk_client::{AddWatchMode, Client, EventType, SessionState, Stat};

use crate::error::Result;
use crate::paths;

/// A node's data and stat as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeData {
    /// The node's data.
    pub data: Vec<u8>,
    /// The node's stat.
    pub stat: Stat,
}

impl NodeData {
    /// `true` if `other` is the same version of the same node (same creation and
    /// modification zxids).
    pub(crate) fn same_version(&self, other: &NodeData) -> bool {
        self.stat.czxid == other.stat.czxid && self.stat.mzxid == other.stat.mzxid
    }
}

/// Reads `path`: `None` if it does not exist.
pub(crate) async fn read_node(client: &Client, path: &str) -> Result<Option<NodeData>> {
    match paths::retrying(|| client.get_data(path)).await {
        Ok((data, stat)) => Ok(Some(NodeData {
            data: data.to_vec(),
            stat,
        })),
        Err(zk_client::Error::NoNode) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A cache of one node. Dropping it stops the background task.
#[derive(Debug)]
pub struct NodeCache {
    path: String,
    state: watch::Receiver<Option<NodeData>>,
    ended: watch::Receiver<bool>,
    task: AbortHandle,
}

impl NodeCache {
    /// Starts caching `path` (which need not exist); returns once the first read is done.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`](crate::Error::InvalidPath); ZooKeeper errors, e.g.
    /// [`zk_client::Error::Unimplemented`] from a server without persistent watches (< 3.6).
    pub async fn start(client: &Client, path: &str) -> Result<NodeCache> {
        paths::validate_recipe_path(path)?;
        let states = client.state_changes();
        let watcher = paths::retrying(|| client.add_watch(path, AddWatchMode::Persistent)).await?;
        let first = read_node(client, path).await?;
        let (state_tx, state) = watch::channel(first);
        let (ended_tx, ended) = watch::channel(false);
        let task = tokio::spawn(follow(
            client.clone(),
            path.to_owned(),
            watcher,
            states,
            state_tx,
            ended_tx,
        ));
        tracing::debug!(%path, "node cache started");
        Ok(NodeCache {
            path: path.to_owned(),
            state,
            ended,
            task: task.abort_handle(),
        })
    }

    /// The cached node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The node as last read; `None` if it does not exist.
    pub fn current(&self) -> Option<NodeData> {
        self.state.borrow().clone()
    }

    /// `true` once the cache stopped following the node (the session ended).
    pub fn is_ended(&self) -> bool {
        *self.ended.borrow()
    }

    /// The node's states from now on (starting with the current one). Quick successive
    /// changes may be reported as one; the last state is always reported.
    pub fn changes(&self) -> NodeChanges {
        let mut state = self.state.clone();
        state.mark_changed();
        NodeChanges { state }
    }
}

impl Drop for NodeCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// States of a cached node (see [`NodeCache::changes`]).
#[derive(Debug)]
pub struct NodeChanges {
    state: watch::Receiver<Option<NodeData>>,
}

impl NodeChanges {
    /// The next state (`Some(None)`: the node does not exist); `None` once the cache ended.
    /// Cancellation-safe.
    pub async fn next(&mut self) -> Option<Option<NodeData>> {
        self.state.changed().await.ok()?;
        Some(self.state.borrow_and_update().clone())
    }
}

async fn follow(
    client: Client,
    path: String,
    mut watcher: zk_client::PersistentWatcher,
    mut states: zk_client::StateChanges,
    state_tx: watch::Sender<Option<NodeData>>,
    ended_tx: watch::Sender<bool>,
) {
    loop {
        tokio::select! {
            event = watcher.next() => match event {
                Some(event) if event.is_session_event() => break,
                Some(event) if event.event_type == EventType::NodeChildrenChanged => continue,
                Some(_) => {}
                None => break,
            },
            state = states.next() => match state {
                Some(SessionState::Reconnected) => {
                    tracing::debug!(%path, "node cache re-reads after a reconnect");
                }
                Some(state) if state.is_terminal() => break,
                Some(_) => continue,
                None => break,
            },
        }
        match read_node(&client, &path).await {
            Ok(node) => {
                state_tx.send_if_modified(|current| {
                    let changed = match (&*current, &node) {
                        (Some(a), Some(b)) => !a.same_version(b),
                        (None, None) => false,
                        _ => true,
                    };
                    if changed {
                        tracing::debug!(%path, exists = node.is_some(), "node cache updated");
                        *current = node;
                    }
                    changed
                });
            }
            Err(e) if is_terminal(&e) => break,
            Err(e) => {
                tracing::warn!(%path, error = %e, "node cache read failed; waiting for the next event")
            }
        }
    }
    tracing::info!(%path, "node cache ended (session over)");
    ended_tx.send_replace(true);
}

pub(crate) fn is_terminal(e: &crate::Error) -> bool {
    e.is_session_lost()
}
