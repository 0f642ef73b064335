//! [`GroupMember`]: group membership, node-compatible with Curator's `GroupMember`.
//!
//! Each member owns the ephemeral node `<path>/<id>` holding its payload, kept by a
//! [`PersistentNode`] as Curator's `GroupMember` does; the group is the set of children.
//! [`GroupMember::members`] reads it, [`GroupMember::changes`] follows members and
//! payloads (one persistent recursive watch, as Curator's `CuratorCache`). A member whose
//! node disappears while its session lives (deleted by someone) re-creates it; a member
//! whose session expired is gone for good (zk-client never opens a new session under a
//! handle: join again with a new client), which the member reports through
//! [`GroupMember::lost`].
//!
//! One difference from Curator: joining with an id whose node another live session owns
//! fails with `NodeExists` (Curator's `PersistentNode` would overwrite that member's
//! payload).
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
use zk_client::{AddWatchMode, Client, CreateMode};

use crate::error::{Error, Result};
use crate::paths;
use crate::persistent_node::PersistentNode;

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
    own: PersistentNode,
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
        match paths::retrying(|| client.exists(&node)).await? {
            Some(stat) if stat.ephemeral_owner != client.session_id() => {
                return Err(zk_client::Error::NodeExists.into());
            }
            _ => {}
        }
        let own = PersistentNode::start(client, &node, CreateMode::Ephemeral, payload).await?;
        let (members_tx, members) = watch::channel(None);
        let (lost_tx, lost) = watch::channel(false);
        let task = tokio::spawn(follow(
            client.clone(),
            path.to_owned(),
            own.status_watch(),
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
            own,
        })
    }

    /// Our id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Our node's path.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Changes our payload (Curator's `setThisData`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once the membership ended; ZooKeeper errors.
    pub async fn set_payload(&self, payload: &[u8]) -> Result<()> {
        self.own.set_data(payload).await
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

    /// Leaves the group: deletes our node (waits until done).
    ///
    /// # Errors
    ///
    /// None today (a node that cannot be deleted is logged; it goes with the session).
    pub async fn leave(self) -> Result<()> {
        self.task.abort();
        tracing::info!(path = %self.path, id = %self.id, "leaving group");
        self.own.close().await;
        Ok(())
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        // Dropping `own` deletes our node in the background.
        self.task.abort();
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

/// Follows the group (a persistent recursive watch: members and their payloads; a full
/// read after a reconnect) until our membership ends (our node keeper ended: the session is
/// over).
async fn follow(
    client: Client,
    path: String,
    mut own: watch::Receiver<crate::persistent_node::NodeStatus>,
    members_tx: watch::Sender<Option<Members>>,
    lost_tx: watch::Sender<bool>,
) {
    let mut states = client.state_changes();
    match client
        .add_watch(&path, AddWatchMode::PersistentRecursive)
        .await
    {
        Ok(mut events) => loop {
            match read_members(&client, &path).await {
                Ok(members) => {
                    members_tx.send_if_modified(|current| {
                        let changed = current.as_ref() != Some(&members);
                        *current = Some(members);
                        changed
                    });
                }
                Err(e) if e.is_session_lost() => break,
                Err(e) => {
                    tracing::warn!(error = %e, %path, "group read failed, retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
            tokio::select! {
                event = events.next() => match event {
                    Some(event) if !event.is_session_event() => {}
                    _ => break,
                },
                state = states.next() => match state {
                    Some(state) if state.is_terminal() => break,
                    None => break,
                    // Reconnected: read again (persistent watches do not replay).
                    Some(_) => {}
                },
                // Our node is no longer kept (session over, or closed): membership ended.
                _ = own.wait_for(|s| s.ended.is_some()) => break,
            }
        },
        Err(e) => tracing::warn!(error = %e, %path, "cannot watch the group"),
    }
    tracing::warn!(%path, "group membership lost with the session");
    let _ = lost_tx.send(true);
}
