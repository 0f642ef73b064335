//! [`TreeCache`]: an in-memory mirror of a subtree, kept up to date with one persistent
//! recursive watch (Curator's `TreeCache` / `CuratorCache`; [`CuratorCache`] is an alias).
//!
//! Start: add a [`PersistentRecursive`](zk_client::AddWatchMode::PersistentRecursive) watch
//! on the root, then read the whole subtree (every node's data and children), reporting
//! each node as [`TreeEvent::NodeAdded`] and then [`TreeEvent::Initialized`]. After that,
//! every event re-reads the node it names: [`TreeEvent::NodeAdded`],
//! [`TreeEvent::NodeUpdated`] and [`TreeEvent::NodeRemoved`] follow. After a reconnect the
//! cache reads the whole subtree again and reports the differences, because Apache
//! ZooKeeper 3.8 restores a persistent watch without replaying the changes made while the
//! client was away. The cache ends when the session ends (it keeps its last contents).
//!
//! ```no_run
//! use zk_recipes::{TreeCache, TreeEvent};
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let cache = TreeCache::start(&client, "/app/services").await?;
//! let mut events = cache.events();
//! for (path, node) in cache.snapshot() {
//!     println!("{path}: {} bytes", node.data.len());
//! }
//! while let Some(event) = events.next().await {
//!     match event {
//!         TreeEvent::NodeAdded { path, .. } => println!("+ {path}"),
//!         TreeEvent::NodeUpdated { path, .. } => println!("~ {path}"),
//!         TreeEvent::NodeRemoved { path, .. } => println!("- {path}"),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex as StdMutex, MutexGuard};

use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use zk_client::{AddWatchMode, Client, EventType, SessionState};

use crate::error::Result;
use crate::node_cache::{NodeData, is_terminal, read_node};
use crate::paths;

/// A change of the mirrored subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TreeEvent {
    /// A node appeared (or was found by the initial load or a re-sync).
    NodeAdded {
        /// The node's path.
        path: String,
        /// Its data and stat.
        node: NodeData,
    },
    /// A node's data (or stat) changed.
    NodeUpdated {
        /// The node's path.
        path: String,
        /// Its new data and stat.
        node: NodeData,
    },
    /// A node went away.
    NodeRemoved {
        /// The node's path.
        path: String,
        /// Its last known data and stat.
        node: NodeData,
    },
    /// The initial load is done: the events before this one describe the whole subtree.
    Initialized,
    /// A full re-read after a reconnect is done: the cache matches the server again.
    Resynced,
}

/// The mirrored subtree: path → node, in path order.
pub type Tree = BTreeMap<String, NodeData>;

#[derive(Debug, Default)]
struct Shared {
    tree: Tree,
    subscribers: Vec<mpsc::UnboundedSender<TreeEvent>>,
}

impl Shared {
    fn emit(&mut self, event: TreeEvent) {
        self.subscribers.retain(|s| s.send(event.clone()).is_ok());
    }

    /// Puts `node` at `path`, reporting an add or an update (nothing if unchanged).
    fn upsert(&mut self, path: &str, node: NodeData) {
        let event = match self.tree.get(path) {
            Some(old) if old.same_version(&node) => return,
            Some(_) => TreeEvent::NodeUpdated {
                path: path.to_owned(),
                node: node.clone(),
            },
            None => TreeEvent::NodeAdded {
                path: path.to_owned(),
                node: node.clone(),
            },
        };
        self.tree.insert(path.to_owned(), node);
        self.emit(event);
    }

    /// Removes `path` and everything below it, deepest first.
    fn remove(&mut self, path: &str) {
        let below = format!("{}/", path.trim_end_matches('/'));
        let mut gone: Vec<String> = self
            .tree
            .keys()
            .filter(|p| p.as_str() == path || p.starts_with(&below))
            .cloned()
            .collect();
        gone.reverse();
        for path in gone {
            if let Some(node) = self.tree.remove(&path) {
                self.emit(TreeEvent::NodeRemoved { path, node });
            }
        }
    }

    /// Replaces the whole tree with `fresh`, reporting the differences.
    fn replace(&mut self, fresh: Tree) {
        let gone: Vec<String> = self
            .tree
            .keys()
            .filter(|p| !fresh.contains_key(*p))
            .rev()
            .cloned()
            .collect();
        for path in gone {
            if let Some(node) = self.tree.remove(&path) {
                self.emit(TreeEvent::NodeRemoved { path, node });
            }
        }
        for (path, node) in fresh {
            self.upsert(&path, node);
        }
    }
}

/// Curator 5's name for the same cache.
pub type CuratorCache = TreeCache;

/// A mirror of the subtree at a root. Dropping it stops the background task.
#[derive(Debug)]
pub struct TreeCache {
    root: String,
    shared: Arc<StdMutex<Shared>>,
    ended: watch::Receiver<bool>,
    task: AbortHandle,
}

impl TreeCache {
    /// Starts mirroring the subtree at `root` (which need not exist); returns once the
    /// initial load is done.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`](crate::Error::InvalidPath); ZooKeeper errors, e.g.
    /// [`zk_client::Error::Unimplemented`] from a server without persistent watches (< 3.6).
    pub async fn start(client: &Client, root: &str) -> Result<TreeCache> {
        TreeCache::start_with(client, root, None).await
    }

    /// Like [`start`](Self::start), with an event stream subscribed before the initial
    /// load: it begins with a [`TreeEvent::NodeAdded`] per node found, then
    /// [`TreeEvent::Initialized`], then every change (Curator's `CuratorCache` listener with
    /// its `initialized()` call). Nothing is missed between starting and listening.
    ///
    /// ```no_run
    /// use zk_recipes::{TreeCache, TreeEvent};
    ///
    /// # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
    /// let (cache, mut events) = TreeCache::start_with_events(&client, "/app/config").await?;
    /// while let Some(event) = events.next().await {
    ///     if event == TreeEvent::Initialized {
    ///         println!("loaded {} nodes", cache.snapshot().len());
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub async fn start_with_events(client: &Client, root: &str) -> Result<(TreeCache, TreeEvents)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let cache = TreeCache::start_with(client, root, Some(tx)).await?;
        Ok((cache, TreeEvents { rx }))
    }

    async fn start_with(
        client: &Client,
        root: &str,
        subscriber: Option<mpsc::UnboundedSender<TreeEvent>>,
    ) -> Result<TreeCache> {
        if root != "/" {
            paths::validate_recipe_path(root)?;
        }
        let states = client.state_changes();
        let watcher =
            paths::retrying(|| client.add_watch(root, AddWatchMode::PersistentRecursive)).await?;
        let shared = Arc::new(StdMutex::new(Shared::default()));
        lock(&shared).subscribers.extend(subscriber);
        let fresh = load(client, root).await?;
        {
            let mut shared = lock(&shared);
            shared.replace(fresh);
            shared.emit(TreeEvent::Initialized);
        }
        let (ended_tx, ended) = watch::channel(false);
        let task = tokio::spawn(follow(
            client.clone(),
            root.to_owned(),
            watcher,
            states,
            shared.clone(),
            ended_tx,
        ));
        tracing::debug!(%root, "tree cache started");
        Ok(TreeCache {
            root: root.to_owned(),
            shared,
            ended,
            task: task.abort_handle(),
        })
    }

    /// The mirrored root.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// A copy of the whole mirror.
    pub fn snapshot(&self) -> Tree {
        lock(&self.shared).tree.clone()
    }

    /// One node of the mirror.
    pub fn get(&self, path: &str) -> Option<NodeData> {
        lock(&self.shared).tree.get(path).cloned()
    }

    /// `true` once the cache stopped following the subtree (the session ended).
    pub fn is_ended(&self) -> bool {
        *self.ended.borrow()
    }

    /// The events from now on (take a [`snapshot`](Self::snapshot) for the state before).
    /// Unbounded: a subscriber that does not read keeps its events in memory until dropped.
    pub fn events(&self) -> TreeEvents {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.shared).subscribers.push(tx);
        TreeEvents { rx }
    }
}

impl Drop for TreeCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Events of a [`TreeCache`] (see [`TreeCache::events`]).
#[derive(Debug)]
pub struct TreeEvents {
    rx: mpsc::UnboundedReceiver<TreeEvent>,
}

impl TreeEvents {
    /// The next event; `None` once the cache ended. Cancellation-safe.
    pub async fn next(&mut self) -> Option<TreeEvent> {
        self.rx.recv().await
    }
}

fn lock(shared: &StdMutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads the subtree at `root` (breadth first).
async fn load(client: &Client, root: &str) -> Result<Tree> {
    let mut tree = Tree::new();
    let mut pending = vec![root.to_owned()];
    while let Some(path) = pending.pop() {
        let Some(node) = read_node(client, &path).await? else {
            continue;
        };
        let children = match paths::retrying(|| client.get_children(&path)).await {
            Ok(children) => children,
            Err(zk_client::Error::NoNode) => continue,
            Err(e) => return Err(e.into()),
        };
        for child in children {
            pending.push(if path == "/" {
                format!("/{child}")
            } else {
                paths::join(&path, &child)
            });
        }
        tree.insert(path, node);
    }
    Ok(tree)
}

async fn follow(
    client: Client,
    root: String,
    mut watcher: zk_client::PersistentWatcher,
    mut states: zk_client::StateChanges,
    shared: Arc<StdMutex<Shared>>,
    ended_tx: watch::Sender<bool>,
) {
    loop {
        let result = tokio::select! {
            event = watcher.next() => match event {
                Some(event) if event.is_session_event() => break,
                Some(event) => on_event(&client, &shared, event.event_type, &event.path).await,
                None => break,
            },
            state = states.next() => match state {
                Some(SessionState::Reconnected) => {
                    tracing::debug!(%root, "tree cache re-syncs after a reconnect");
                    match load(&client, &root).await {
                        Ok(fresh) => {
                            let mut shared = lock(&shared);
                            shared.replace(fresh);
                            shared.emit(TreeEvent::Resynced);
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
                Some(state) if state.is_terminal() => break,
                Some(_) => continue,
                None => break,
            },
        };
        match result {
            Ok(()) => {}
            Err(e) if is_terminal(&e) => break,
            Err(e) => {
                tracing::warn!(%root, error = %e, "tree cache read failed; waiting for the next event")
            }
        }
    }
    tracing::info!(%root, "tree cache ended (session over)");
    ended_tx.send_replace(true);
    lock(&shared).subscribers.clear();
}

async fn on_event(
    client: &Client,
    shared: &StdMutex<Shared>,
    event_type: EventType,
    path: &str,
) -> Result<()> {
    match event_type {
        EventType::NodeDeleted => {
            lock(shared).remove(path);
            Ok(())
        }
        EventType::NodeCreated | EventType::NodeDataChanged => {
            match read_node(client, path).await? {
                Some(node) => lock(shared).upsert(path, node),
                // Gone again: its NodeDeleted event follows (or came first).
                None => lock(shared).remove(path),
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
