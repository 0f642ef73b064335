//! [`PersistentNode`] and [`PersistentTtlNode`]: a node that stays in place while our
//! session lives (Curator's `PersistentNode` / `PersistentTtlNode`).
//!
//! # Behaviour (Curator's)
//!
//! * The node is created with its missing ancestors as containers, in any [`CreateMode`];
//!   with protection its name gets Curator's `_c_<uuid>-` prefix, so a create whose reply
//!   was lost is found again instead of duplicated.
//! * If the node already exists (a non-sequential path), our data is written into it.
//! * A watch follows the node: when it is deleted (by an operator, or a TTL), it is created
//!   again — a sequential node under the same name it first got, so its sequence number
//!   stays. After a reconnect the node is checked again.
//! * [`close`](PersistentNode::close) (or dropping the node) deletes it.
//!
//! # Session loss
//!
//! An ephemeral node goes with its session, and a zk-client [`Client`] keeps one session:
//! the node then reports [`NodeEnd::SessionLost`]; start a new one on a new client.
//!
//! ```no_run
//! use zk_client::CreateMode;
//! use zk_recipes::PersistentNode;
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let node = PersistentNode::builder(&client, "/app/instances/worker", CreateMode::EphemeralSequential)
//!     .data(b"10.0.0.7:8080")
//!     .protection(true)
//!     .start()
//!     .await?;
//! println!("registered as {:?}", node.actual_path());
//! node.set_data(b"10.0.0.7:8081").await?;
//! node.close().await;
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use zk_client::{Client, CreateMode, CreateOptions, EventType};

use crate::error::{Error, Result};
use crate::paths::{self, ProtectedId};

/// Why a [`PersistentNode`] stopped keeping its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeEnd {
    /// Closed or dropped: the node was deleted.
    Closed,
    /// The session is over (a new client is needed).
    SessionLost,
}

/// A [`PersistentNode`]'s status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct NodeStatus {
    /// The node's path (with the sequence number and protection prefix, if any).
    pub path: Option<String>,
    /// Set once the node is no longer kept.
    pub ended: Option<NodeEnd>,
}

/// Builds a [`PersistentNode`] (see [`PersistentNode::builder`]).
#[derive(Debug, Clone)]
pub struct PersistentNodeBuilder {
    client: Client,
    path: String,
    mode: CreateMode,
    data: Vec<u8>,
    protection: bool,
    ttl: Option<Duration>,
}

impl PersistentNodeBuilder {
    /// The node's data (default empty).
    pub fn data(mut self, data: &[u8]) -> Self {
        self.data = data.to_vec();
        self
    }

    /// Curator's protection: the node's name gets a `_c_<uuid>-` prefix (default off).
    pub fn protection(mut self, on: bool) -> Self {
        self.protection = on;
        self
    }

    /// The TTL of a `PersistentWithTtl` / `PersistentSequentialWithTtl` node (servers with
    /// `zookeeper.extendedTypesEnabled`).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Creates the node, waits for it to exist (Curator's `start` +
    /// `waitForInitialCreate`), and keeps it from then on. Must be called within a tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed path; [`Error::SessionLost`]; ZooKeeper
    /// errors of the first create (e.g. `NoAuth`, or `Unimplemented` for a TTL mode on a
    /// server without extended types).
    pub async fn start(self) -> Result<PersistentNode> {
        paths::validate_recipe_path(&self.path)?;
        let data = Arc::new(StdMutex::new(self.data));
        let (status_tx, status) = watch::channel(NodeStatus::default());
        let (close_tx, close_rx) = oneshot::channel();
        let (first_tx, first_rx) = oneshot::channel();
        let keeper = Keeper {
            client: self.client.clone(),
            path: self.path.clone(),
            mode: self.mode,
            ttl: self.ttl,
            protection: self.protection.then(ProtectedId::new),
            data: data.clone(),
            status: status_tx,
        };
        let task = tokio::spawn(keeper.run(first_tx, close_rx));
        match first_rx.await {
            Ok(Ok(_)) => Ok(PersistentNode {
                client: self.client,
                data,
                status,
                close_tx: StdMutex::new(Some(close_tx)),
                task: StdMutex::new(Some(task)),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Closed),
        }
    }
}

/// A node kept in place (Curator's `PersistentNode`). See the [module docs](self).
#[derive(Debug)]
pub struct PersistentNode {
    client: Client,
    data: Arc<StdMutex<Vec<u8>>>,
    status: watch::Receiver<NodeStatus>,
    close_tx: StdMutex<Option<oneshot::Sender<()>>>,
    task: StdMutex<Option<JoinHandle<()>>>,
}

fn locked<T>(mutex: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PersistentNode {
    /// A builder for a node at `path` created in `mode`.
    pub fn builder(client: &Client, path: &str, mode: CreateMode) -> PersistentNodeBuilder {
        PersistentNodeBuilder {
            client: client.clone(),
            path: path.to_owned(),
            mode,
            data: Vec::new(),
            protection: false,
            ttl: None,
        }
    }

    /// Starts keeping the node at `path` in `mode` with `data` (no protection, no TTL).
    ///
    /// # Errors
    ///
    /// As [`PersistentNodeBuilder::start`].
    pub async fn start(
        client: &Client,
        path: &str,
        mode: CreateMode,
        data: &[u8],
    ) -> Result<PersistentNode> {
        PersistentNode::builder(client, path, mode)
            .data(data)
            .start()
            .await
    }

    /// The node's actual path (Curator's `getActualPath`); `None` once it ended.
    pub fn actual_path(&self) -> Option<String> {
        self.status.borrow().path.clone()
    }

    /// The current status.
    pub fn status(&self) -> NodeStatus {
        self.status.borrow().clone()
    }

    /// A receiver of the status (the path changes when the node is re-created under a new
    /// name; `ended` is set when it is no longer kept).
    pub fn status_watch(&self) -> watch::Receiver<NodeStatus> {
        self.status.clone()
    }

    /// The data we keep in the node.
    pub fn data(&self) -> Vec<u8> {
        locked(&self.data).clone()
    }

    /// Changes the node's data (kept for re-creations too).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once the node ended; ZooKeeper errors (a missing node is fine:
    /// it is being re-created with the new data).
    pub async fn set_data(&self, data: &[u8]) -> Result<()> {
        *locked(&self.data) = data.to_vec();
        let Some(path) = self.actual_path() else {
            return Err(Error::Closed);
        };
        match paths::retrying(|| self.client.set_data(&path, data, None)).await {
            Ok(_) | Err(zk_client::Error::NoNode) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Stops keeping the node and deletes it; waits until done. Idempotent.
    pub async fn close(&self) {
        if let Some(close_tx) = locked(&self.close_tx).take() {
            let _ = close_tx.send(());
        }
        let task = locked(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// The background task keeping the node.
struct Keeper {
    client: Client,
    path: String,
    mode: CreateMode,
    ttl: Option<Duration>,
    protection: Option<ProtectedId>,
    data: Arc<StdMutex<Vec<u8>>>,
    status: watch::Sender<NodeStatus>,
}

/// The mode that re-creates a node first created in `mode`, under the name it got.
fn fixed_name_mode(mode: CreateMode) -> CreateMode {
    match mode {
        CreateMode::EphemeralSequential => CreateMode::Ephemeral,
        CreateMode::PersistentSequential => CreateMode::Persistent,
        CreateMode::PersistentSequentialWithTtl => CreateMode::PersistentWithTtl,
        other => other,
    }
}

fn is_sequential(mode: CreateMode) -> bool {
    fixed_name_mode(mode) != mode
}

impl Keeper {
    async fn run(self, first: oneshot::Sender<Result<String>>, mut close: oneshot::Receiver<()>) {
        let mut first = Some(first);
        let mut states = self.client.state_changes();
        let mut actual: Option<String> = None;
        let mut need_create = true;
        let end = loop {
            if need_create {
                let created = tokio::select! {
                    biased;
                    _ = &mut close => break NodeEnd::Closed,
                    created = self.create(actual.as_deref()) => created,
                };
                match created {
                    Ok(path) => {
                        tracing::debug!(%path, "persistent node in place");
                        self.status.send_modify(|s| s.path = Some(path.clone()));
                        if let Some(first) = first.take() {
                            let _ = first.send(Ok(path.clone()));
                        }
                        actual = Some(path);
                        need_create = false;
                    }
                    Err(e) if e.is_session_lost() || first.is_some() => {
                        if let Some(first) = first.take() {
                            let _ = first.send(Err(e));
                            return;
                        }
                        break NodeEnd::SessionLost;
                    }
                    Err(e) => {
                        tracing::warn!(path = %self.path, error = %e, "cannot re-create a persistent node, retrying");
                        tokio::select! {
                            biased;
                            _ = &mut close => break NodeEnd::Closed,
                            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        }
                        continue;
                    }
                }
            }
            let Some(path) = actual.clone() else {
                need_create = true;
                continue;
            };
            let watched = paths::retrying(|| self.client.exists_watch(&path)).await;
            let watcher = match watched {
                Ok((None, _)) => {
                    tracing::info!(%path, "persistent node gone, re-creating it");
                    need_create = true;
                    continue;
                }
                Ok((Some(_), watcher)) => watcher,
                Err(e) if e.is_session_terminal() => break NodeEnd::SessionLost,
                Err(e) => {
                    tracing::warn!(%path, error = %e, "cannot watch a persistent node, retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            tokio::select! {
                biased;
                _ = &mut close => break NodeEnd::Closed,
                state = states.next() => match state {
                    Some(state) if state.is_terminal() => break NodeEnd::SessionLost,
                    None => break NodeEnd::SessionLost,
                    // Reconnected (or another state): look again, as Curator does.
                    Some(_) => {}
                },
                event = watcher => {
                    if event.event_type == EventType::NodeDeleted {
                        tracing::info!(%path, "persistent node deleted, re-creating it");
                        need_create = true;
                    } else if event.is_session_event() && self.client.state().is_terminal() {
                        break NodeEnd::SessionLost;
                    }
                }
            }
        };
        if end == NodeEnd::Closed {
            if let Some(path) = &actual {
                let cleanup = paths::delete_quietly(&self.client, path);
                match tokio::time::timeout(self.client.session_timeout(), cleanup).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(%path, error = %e, "could not delete a persistent node")
                    }
                    Err(_) => tracing::warn!(%path, "timed out deleting a persistent node"),
                }
            }
        } else {
            tracing::warn!(path = %self.path, "persistent node lost with the session");
        }
        self.status.send_modify(|s| {
            s.path = None;
            s.ended = Some(end);
        });
    }

    /// Creates the node (at `existing` if it was created before); returns its path.
    async fn create(&self, existing: Option<&str>) -> Result<String> {
        let (mode, target) = match existing {
            Some(path) => (fixed_name_mode(self.mode), path.to_owned()),
            None => {
                let target = match (&self.protection, paths::parent(&self.path)) {
                    (Some(id), Some(parent)) => {
                        paths::join(parent, &id.name(paths::node_name(&self.path)))
                    }
                    (Some(id), None) => format!("/{}", id.name(paths::node_name(&self.path))),
                    (None, _) => self.path.clone(),
                };
                (self.mode, target)
            }
        };
        let mut options = CreateOptions::new(mode);
        if let Some(ttl) = self.ttl {
            options = options.ttl(ttl);
        }
        let parent = paths::parent(&target).map(str::to_owned);
        let mut pause = Duration::from_millis(20);
        for attempt in 1..=10u32 {
            let data = locked(&self.data).clone();
            match self.client.create(&target, &data, &options).await {
                Ok((path, _)) => return Ok(path),
                Err(zk_client::Error::NodeExists) if !is_sequential(mode) => {
                    // Ours after a lost reply, or someone else's: ours from now on (Curator
                    // writes its data into it).
                    match paths::retrying(|| self.client.set_data(&target, &data, None)).await {
                        Ok(_) => return Ok(target),
                        Err(zk_client::Error::NoNode) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(zk_client::Error::NoNode) => {
                    if let Some(parent) = &parent {
                        paths::ensure_path(&self.client, parent).await?;
                    }
                }
                Err(e) if e.is_retryable() && attempt < 10 => {
                    if is_sequential(mode) {
                        if let (Some(id), Some(parent)) = (&self.protection, &parent) {
                            if let Some((found, _)) =
                                paths::find_protected(&self.client, parent, id).await?
                            {
                                return Ok(found);
                            }
                        }
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Contention(target))
    }
}

/// The name of the TTL child a [`PersistentTtlNode`] touches (Curator's default).
pub const TTL_CHILD_NAME: &str = "touch";

/// A container node kept alive by a TTL child (Curator's `PersistentTtlNode`): while this
/// runs, the child `touch` is touched every `ttl / 2`; once it stops (process gone), the
/// child expires after `ttl` and then the server removes the empty container. Needs a
/// server with `zookeeper.extendedTypesEnabled` (TTL nodes).
#[derive(Debug)]
pub struct PersistentTtlNode {
    node: PersistentNode,
    touch: JoinHandle<()>,
}

impl PersistentTtlNode {
    /// Starts keeping the container at `path` with `data`, touching its TTL child now and
    /// every `ttl / 2` (Curator's first touch comes after `ttl / 2`).
    ///
    /// # Errors
    ///
    /// As [`PersistentNodeBuilder::start`], and the first touch's errors (e.g.
    /// `Unimplemented` when the server has no TTL nodes).
    pub async fn start(
        client: &Client,
        path: &str,
        ttl: Duration,
        data: &[u8],
    ) -> Result<PersistentTtlNode> {
        let node = PersistentNode::start(client, path, CreateMode::Container, data).await?;
        let child = paths::join(path, TTL_CHILD_NAME);
        if let Err(e) = touch(client, &child, ttl).await {
            node.close().await;
            return Err(e);
        }
        let touch = tokio::spawn({
            let (client, child) = (client.clone(), child.clone());
            async move {
                let period = (ttl / 2).max(Duration::from_millis(1));
                loop {
                    tokio::time::sleep(period).await;
                    match touch(&client, &child, ttl).await {
                        Ok(()) => {}
                        Err(e) if e.is_session_lost() => return,
                        Err(e) => tracing::debug!(%child, error = %e, "could not touch a TTL node"),
                    }
                }
            }
        });
        Ok(PersistentTtlNode { node, touch })
    }

    /// The container node.
    pub fn node(&self) -> &PersistentNode {
        &self.node
    }

    /// Stops touching and deletes the TTL child and the container.
    pub async fn close(&self) {
        self.touch.abort();
        if let Some(path) = self.node.actual_path() {
            let child = paths::join(&path, TTL_CHILD_NAME);
            if let Err(e) = paths::delete_quietly(&self.node.client, &child).await {
                tracing::warn!(%child, error = %e, "could not delete a TTL child");
            }
        }
        self.node.close().await;
    }
}

impl Drop for PersistentTtlNode {
    fn drop(&mut self) {
        self.touch.abort();
    }
}

/// Curator's touch: set the child's data, creating it with the TTL when missing.
async fn touch(client: &Client, child: &str, ttl: Duration) -> Result<()> {
    match paths::retrying(|| client.set_data(child, b"", None)).await {
        Ok(_) => Ok(()),
        Err(zk_client::Error::NoNode) => {
            let options = CreateOptions::new(CreateMode::PersistentWithTtl).ttl(ttl);
            match paths::retrying(|| client.create(child, b"", &options)).await {
                // A missing parent: the container is being re-created; touch next time.
                Ok(_) | Err(zk_client::Error::NodeExists | zk_client::Error::NoNode) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}
