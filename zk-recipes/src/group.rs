//! [`GroupMember`]: group membership, node-compatible with Curator's `GroupMember`.
//!
//! Each member owns the ephemeral node `<path>/<id>` holding its payload; the group is the
//! set of children. [`GroupMember::members`] reads it, [`GroupMember::changes`] follows it.
//! A member whose node disappears while its session lives (deleted by someone) re-creates
//! it; a member whose session expired is gone for good (zk-client never opens a new
//! session under a handle: join again with a new client), which the member reports through
//! [`GroupMember::lost`].
//!
//! ```no_run
//! use zk_recipes::GroupMember;
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let me = GroupMember::join(&client, "/app/workers", "worker-1", b"10.0.0.7:8080").await?;
//! let mut changes = me.changes();
//! while let Some(members) = changes.next().await {
//!     println!("workers now: {:?}", members.keys().collect::<Vec<_>>());
//! }
//! me.leave().await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::AbortHandle;
use zk_client::{Client, CreateMode, CreateOptions, EventType};

use crate::error::{Error, Result};
use crate::paths;

/// The members of a group: id → payload.
pub type Members = BTreeMap<String, Vec<u8>>;

/// One member of a group; leaves on [`leave`](GroupMember::leave) or (in the background)
/// on drop.
#[derive(Debug)]
pub struct GroupMember {
    client: Client,
    path: String,
    id: String,
    node: String,
    members: watch::Receiver<Option<Members>>,
    lost: watch::Receiver<bool>,
    task: AbortHandle,
    left: bool,
}

impl GroupMember {
    /// Joins the group at `path` as `id` with `payload`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a bad path or an id with a `/`;
    /// [`zk_client::Error::NodeExists`] (as [`Error::Client`]) if another session is a member
    /// with the same id.
    pub async fn join(client: &Client, path: &str, id: &str, payload: &[u8]) -> Result<Self> {
        paths::validate_recipe_path(path)?;
        let node = paths::join(path, id);
        if id.contains('/') {
            return Err(Error::InvalidPath(node));
        }
        paths::validate_recipe_path(&node)?;
        create_own(client, path, &node, payload).await?;
        let (members_tx, members) = watch::channel(None);
        let (lost_tx, lost) = watch::channel(false);
        let task = tokio::spawn(follow(
            client.clone(),
            path.to_owned(),
            node.clone(),
            payload.to_vec(),
            members_tx,
            lost_tx,
        ));
        tracing::info!(%path, %id, "joined group");
        Ok(GroupMember {
            client: client.clone(),
            path: path.to_owned(),
            id: id.to_owned(),
            node,
            members,
            lost,
            task: task.abort_handle(),
            left: false,
        })
    }

    /// Our id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The group's current members, read from ZooKeeper now.
    pub async fn members(&self) -> Result<Members> {
        read_members(&self.client, &self.path).await
    }

    /// Every member set from now on (the current one first, as soon as it is known).
    /// Quick successive changes may be reported as one.
    pub fn changes(&self) -> MemberChanges {
        let mut members = self.members.clone();
        members.mark_changed();
        MemberChanges { members }
    }

    /// Resolves when our membership ends: the session was lost (or we left, or dropped the
    /// member). The future does not borrow the member.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static + use<> {
        let mut lost = self.lost.clone();
        async move {
            let _ = lost.wait_for(|l| *l).await;
        }
    }

    /// Leaves the group: deletes our node.
    pub async fn leave(mut self) -> Result<()> {
        self.left = true;
        self.task.abort();
        tracing::info!(path = %self.path, id = %self.id, "leaving group");
        paths::delete_quietly(&self.client, &self.node).await
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        if !self.left {
            self.task.abort();
            let client = self.client.clone();
            let node = self.node.clone();
            paths::spawn_cleanup("group leave", async move {
                paths::delete_quietly(&client, &node).await
            });
        }
    }
}

/// Member sets of a group (see [`GroupMember::changes`]).
#[derive(Debug)]
pub struct MemberChanges {
    members: watch::Receiver<Option<Members>>,
}

impl MemberChanges {
    /// The next member set; `None` once the member has left or lost its session.
    pub async fn next(&mut self) -> Option<Members> {
        loop {
            self.members.changed().await.ok()?;
            if let Some(members) = self.members.borrow_and_update().clone() {
                return Some(members);
            }
        }
    }
}

/// Creates our node, accepting one our session already owns (a lost reply).
async fn create_own(client: &Client, path: &str, node: &str, payload: &[u8]) -> Result<()> {
    let options = CreateOptions::new(CreateMode::Ephemeral);
    for _ in 0..3 {
        match client.create(node, payload, &options).await {
            Ok(_) => return Ok(()),
            Err(zk_client::Error::NoNode) => paths::ensure_path(client, path).await?,
            Err(zk_client::Error::NodeExists) => {
                return match client.exists(node).await? {
                    Some(stat) if stat.ephemeral_owner == client.session_id() => Ok(()),
                    Some(_) => Err(zk_client::Error::NodeExists.into()),
                    None => continue,
                };
            }
            Err(e) if e.is_retryable() => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(zk_client::Error::NodeExists.into())
}

async fn read_members(client: &Client, path: &str) -> Result<Members> {
    let children = match paths::retrying(|| client.get_children(path)).await {
        Ok(children) => children,
        Err(zk_client::Error::NoNode) => return Ok(Members::new()),
        Err(e) => return Err(e.into()),
    };
    let mut members = Members::new();
    for child in children {
        let child_path = paths::join(path, &child);
        match paths::retrying(|| client.get_data(&child_path)).await {
            Ok((data, _)) => {
                members.insert(child, data.to_vec());
            }
            Err(zk_client::Error::NoNode) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(members)
}

/// Follows the group (children watch) and keeps our node in place.
async fn follow(
    client: Client,
    path: String,
    node: String,
    payload: Vec<u8>,
    members_tx: watch::Sender<Option<Members>>,
    lost_tx: watch::Sender<bool>,
) {
    loop {
        let watched = paths::retrying(|| client.get_children_watch(&path)).await;
        let watcher = match watched {
            Ok((children, _, watcher)) => {
                if !children.iter().any(|c| paths::join(&path, c) == node) {
                    tracing::info!(%node, "our group node is gone, re-creating it");
                    if let Err(e) = create_own(&client, &path, &node, &payload).await {
                        tracing::warn!(error = %e, %node, "cannot re-create our group node");
                    }
                    continue;
                }
                watcher
            }
            Err(zk_client::Error::NoNode) => {
                if let Err(e) = create_own(&client, &path, &node, &payload).await {
                    tracing::warn!(error = %e, %node, "cannot re-create our group node");
                }
                continue;
            }
            Err(e) if e.is_session_terminal() => break,
            Err(e) => {
                tracing::warn!(error = %e, %path, "group read failed, retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        match read_members(&client, &path).await {
            Ok(members) => {
                members_tx.send_if_modified(|current| {
                    let changed = current.as_ref() != Some(&members);
                    *current = Some(members);
                    changed
                });
            }
            Err(e) if e.is_session_lost() => break,
            Err(e) => tracing::warn!(error = %e, %path, "group read failed"),
        }
        let event = watcher.await;
        if event.event_type == EventType::None {
            break;
        }
    }
    tracing::warn!(%node, "group membership lost with the session");
    let _ = lost_tx.send(true);
}
