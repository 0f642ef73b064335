//! Naming helpers shared by the recipes, compatible with Apache Curator.
//!
//! * **Protected names.** Curator's `withProtection()` puts `_c_<uuid>-` in front of a
//!   sequential node's name (`_c_3f1c…-lock-0000000007`). After a create whose reply was lost,
//!   the creator lists the parent and looks for a child starting with its own prefix instead
//!   of creating a second node: [`create_protected_sequential`] does exactly that, so a lost
//!   reply never leaves an orphan contender that blocks everyone.
//! * **Ordering.** Curator sorts contenders by the part of the name after the *last*
//!   occurrence of the recipe's lock name (`lock-`, `latch-`), i.e. by the ten sequence
//!   digits, ignoring the random prefix: [`sort_key`] and [`sort_children`].
//! * **Parents.** Like Curator's `creatingParentContainersIfNeeded()`, missing parents are
//!   created as container nodes (persistent on servers without containers): [`ensure_path`].
//!
//! ```
//! use zk_recipes::paths::{ProtectedId, sort_children, sort_key};
//!
//! let id = ProtectedId::new();
//! let name = id.name("lock-");
//! assert!(name.starts_with("_c_") && name.ends_with("-lock-") && name.len() == 3 + 36 + 1 + 5);
//! assert_eq!(sort_key("_c_0f0e-lock-0000000042", "lock-"), "0000000042");
//!
//! let mut children = vec![
//!     "_c_ffff-lock-0000000002".to_owned(),
//!     "_c_0000-lock-0000000003".to_owned(),
//!     "_c_aaaa-lock-0000000001".to_owned(),
//! ];
//! sort_children(&mut children, "lock-");
//! assert_eq!(children[0], "_c_aaaa-lock-0000000001");
//! ```

use std::future::Future;
use std::time::Duration;

use zk_client::{Client, CreateMode, CreateOptions, Stat};

use crate::error::{Error, Result};

/// The first characters of a protected node name.
pub const PROTECTED_PREFIX: &str = "_c_";

/// Length of `_c_<uuid>-`.
const PROTECTED_PREFIX_LEN: usize = PROTECTED_PREFIX.len() + 36 + 1;

/// How many times a retryable ZooKeeper error is retried by the helpers here.
const MAX_ATTEMPTS: u32 = 10;

/// A protection id: a random (v4) UUID that marks the nodes one creator made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtectedId(uuid::Uuid);

impl ProtectedId {
    /// A fresh random id.
    pub fn new() -> ProtectedId {
        ProtectedId(uuid::Uuid::new_v4())
    }

    /// The prefix `_c_<uuid>-` that starts every node protected with this id.
    pub fn prefix(&self) -> String {
        format!("{PROTECTED_PREFIX}{}-", self.0.hyphenated())
    }

    /// The protected node name for `name`: `_c_<uuid>-<name>`.
    pub fn name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix())
    }

    /// `true` if `node_name` was created with this id.
    pub fn owns(&self, node_name: &str) -> bool {
        node_name.starts_with(&self.prefix())
    }
}

impl Default for ProtectedId {
    fn default() -> Self {
        ProtectedId::new()
    }
}

/// `true` if `node_name` starts with a protection prefix (`_c_`, a canonical UUID, `-`).
pub fn is_protected(node_name: &str) -> bool {
    node_name.len() > PROTECTED_PREFIX_LEN
        && node_name.starts_with(PROTECTED_PREFIX)
        && node_name.as_bytes().get(PROTECTED_PREFIX_LEN - 1) == Some(&b'-')
        && node_name
            .get(PROTECTED_PREFIX.len()..PROTECTED_PREFIX_LEN - 1)
            .is_some_and(|id| uuid::Uuid::try_parse(id).is_ok())
}

/// `node_name` without its protection prefix (unchanged if it has none).
///
/// ```
/// use zk_recipes::paths::normalize;
/// assert_eq!(normalize("_c_53345f98-9423-4e0c-a7b5-9f819e3ec2e1-lock-0000000001"), "lock-0000000001");
/// assert_eq!(normalize("lock-0000000001"), "lock-0000000001");
/// ```
pub fn normalize(node_name: &str) -> &str {
    if is_protected(node_name) {
        &node_name[PROTECTED_PREFIX_LEN..]
    } else {
        node_name
    }
}

/// Curator's sort key (`StandardLockInternalsDriver.fixForSorting`): the part of `node_name`
/// after the last occurrence of `lock_name`, or the whole name if it does not contain it.
pub fn sort_key<'a>(node_name: &'a str, lock_name: &str) -> &'a str {
    match node_name.rfind(lock_name) {
        Some(index) => &node_name[index + lock_name.len()..],
        None => node_name,
    }
}

/// Sorts contender names as Curator does (`LockInternals.getSortedChildren`): by
/// [`sort_key`], stable.
pub fn sort_children(children: &mut [String], lock_name: &str) {
    children.sort_by(|a, b| sort_key(a, lock_name).cmp(sort_key(b, lock_name)));
}

/// The sequence number ZooKeeper appended to a sequential node (its last ten digits), or
/// `None` if `node_name` does not end with one.
///
/// ```
/// assert_eq!(zk_recipes::paths::sequence_number("_c_x-lock-0000000042"), Some(42));
/// assert_eq!(zk_recipes::paths::sequence_number("lock-"), None);
/// ```
pub fn sequence_number(node_name: &str) -> Option<i64> {
    let digits = node_name.get(node_name.len().checked_sub(10)?..)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok()
}

/// `parent` and `child` joined with one `/`.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// The last component of `path`.
pub fn node_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Checks a recipe's base path: absolute, no trailing `/`, no empty component, not `/`.
pub fn validate_recipe_path(path: &str) -> Result<()> {
    let ok = path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && !path[1..]
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidPath(path.to_owned()))
    }
}

/// Runs `op` until it succeeds, fails with a non-retryable error, or [`MAX_ATTEMPTS`] ran
/// out, pausing a little (growing) between attempts.
pub(crate) async fn retrying<T, F, Fut>(mut op: F) -> std::result::Result<T, zk_client::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, zk_client::Error>>,
{
    let mut pause = Duration::from_millis(20);
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "retrying a ZooKeeper call");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Creates `path` and its missing ancestors as container nodes (persistent nodes on a
/// server that does not implement containers); existing nodes are fine.
///
/// ```no_run
/// # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
/// zk_recipes::paths::ensure_path(&client, "/app/locks/db").await?;
/// # Ok(()) }
/// ```
pub async fn ensure_path(client: &Client, path: &str) -> Result<()> {
    validate_recipe_path(path)?;
    if client.exists(path).await?.is_some() {
        return Ok(());
    }
    let mut current = String::new();
    for component in path[1..].split('/') {
        current.push('/');
        current.push_str(component);
        let result = retrying(|| async {
            match client
                .create(&current, b"", &CreateOptions::new(CreateMode::Container))
                .await
            {
                Err(zk_client::Error::Unimplemented) => client
                    .create(&current, b"", &CreateOptions::new(CreateMode::Persistent))
                    .await
                    .map(|_| ()),
                other => other.map(|_| ()),
            }
        })
        .await;
        match result {
            Ok(()) | Err(zk_client::Error::NodeExists) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Creates `path` as a **persistent** node (empty data) whose missing ancestors are created
/// as containers: Curator's `create().creatingParentContainersIfNeeded().forPath(path)`, which
/// its queues and barriers use for their own node. Unlike [`ensure_path`] the node itself is
/// never a container, so the server does not remove it when its last child goes (a watcher
/// on an empty queue keeps watching a node that exists). An existing node is left as it is.
///
/// ```no_run
/// # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
/// zk_recipes::paths::ensure_persistent(&client, "/app/queues/jobs").await?;
/// # Ok(()) }
/// ```
pub async fn ensure_persistent(client: &Client, path: &str) -> Result<()> {
    validate_recipe_path(path)?;
    let options = CreateOptions::new(CreateMode::Persistent);
    for _ in 0..MAX_ATTEMPTS {
        match retrying(|| client.create(path, b"", &options)).await {
            Ok(_) | Err(zk_client::Error::NodeExists) => return Ok(()),
            Err(zk_client::Error::NoNode) => {
                if let Some(parent) = parent(path) {
                    ensure_path(client, parent).await?;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    // The parent kept vanishing (an empty container reaped between our creates).
    Err(Error::NodeVanished(path.to_owned()))
}

/// The parent of `path`, or `None` for a node directly under the root.
pub(crate) fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) | None => None,
        Some(index) => Some(&path[..index]),
    }
}

/// Looks for the child of `parent` created with `id`; returns its path and [`Stat`].
pub async fn find_protected(
    client: &Client,
    parent: &str,
    id: &ProtectedId,
) -> Result<Option<(String, Stat)>> {
    let children = match retrying(|| client.get_children(parent)).await {
        Ok(children) => children,
        Err(zk_client::Error::NoNode) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    for child in children.into_iter().filter(|c| id.owns(c)) {
        let path = join(parent, &child);
        if let Some(stat) = retrying(|| client.exists(&path)).await? {
            return Ok(Some((path, stat)));
        }
    }
    Ok(None)
}

/// Creates the ephemeral sequential node `parent/_c_<id>-<name><seq>` with `data` and returns
/// its path and [`Stat`]. Missing parents are created ([`ensure_path`]).
///
/// When an attempt fails with a retryable error (the connection broke, so the create may or
/// may not have happened), the parent is listed first and a child carrying `id` is taken as
/// the result (Curator's protected mode); only if there is none is the create repeated. So a
/// lost reply never leaves a second, orphaned node.
///
/// ```no_run
/// use zk_recipes::paths::{ProtectedId, create_protected_sequential};
/// # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
/// let id = ProtectedId::new();
/// let (path, stat) = create_protected_sequential(&client, "/app/lock", "lock-", b"", &id).await?;
/// assert!(path.starts_with("/app/lock/_c_"));
/// assert_eq!(stat.ephemeral_owner, client.session_id());
/// # Ok(()) }
/// ```
pub async fn create_protected_sequential(
    client: &Client,
    parent: &str,
    name: &str,
    data: &[u8],
    id: &ProtectedId,
) -> Result<(String, Stat)> {
    validate_recipe_path(parent)?;
    let path = join(parent, &id.name(name));
    let options = CreateOptions::new(CreateMode::EphemeralSequential);
    let mut pause = Duration::from_millis(20);
    let mut attempt = 1;
    let mut first = true;
    loop {
        if !first {
            // The previous attempt may have created our node: look before creating again.
            if let Some(found) = find_protected(client, parent, id).await? {
                tracing::debug!(path = %found.0, "found our protected node after a lost reply");
                return Ok(found);
            }
        }
        first = false;
        match client.create(&path, data, &options).await {
            Ok(created) => return Ok(created),
            Err(zk_client::Error::NoNode) if attempt < MAX_ATTEMPTS => {
                // No parent (never created, or an empty container the server removed).
                ensure_path(client, parent).await?;
            }
            Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "protected create failed, will look for our node");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Err(e.into()),
        }
        attempt += 1;
    }
}

/// Deletes `path` (any version), retrying retryable errors; a missing node, or a session
/// that is gone (its ephemeral nodes are gone with it), counts as done.
pub(crate) async fn delete_quietly(client: &Client, path: &str) -> Result<()> {
    match retrying(|| client.delete(path, None)).await {
        Ok(()) | Err(zk_client::Error::NoNode) => Ok(()),
        Err(e) if e.is_session_terminal() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes every child of `parent` created with `id` (see [`delete_quietly`]).
pub(crate) async fn delete_protected(
    client: &Client,
    parent: &str,
    id: &ProtectedId,
) -> Result<()> {
    let children = match retrying(|| client.get_children(parent)).await {
        Ok(children) => children,
        Err(zk_client::Error::NoNode) => return Ok(()),
        Err(e) if e.is_session_terminal() => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for child in children.into_iter().filter(|c| id.owns(c)) {
        delete_quietly(client, &join(parent, &child)).await?;
    }
    Ok(())
}

/// Spawns `cleanup` on the current tokio runtime, if there is one (used from `Drop`, which
/// must never block). Without a runtime nothing happens: the nodes are ephemeral and go away
/// with the session.
pub(crate) fn spawn_cleanup<F>(what: &'static str, cleanup: F)
where
    F: Future<Output = Result<()>> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(async move {
                if let Err(e) = cleanup.await {
                    tracing::warn!(error = %e, what, "background cleanup failed");
                }
            });
        }
        Err(_) => tracing::debug!(
            what,
            "no tokio runtime to clean up on; relying on the session end"
        ),
    }
}

/// A random pause of 1..=`max` ms (retry jitter), from the same OS randomness as the
/// protection ids (no `rand` needed).
pub(crate) fn random_pause_ms(max: u64) -> u64 {
    let r = uuid::Uuid::new_v4().as_u128();
    1 + (r % u128::from(max.max(1))) as u64
}

/// A random index below `len` (0 when `len` is 0).
pub(crate) fn random_index(len: usize) -> usize {
    let r = uuid::Uuid::new_v4().as_u128();
    (r % (len.max(1) as u128)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_names_look_like_curators() {
        let id = ProtectedId::new();
        let name = id.name("lock-");
        assert_eq!(name.len(), 3 + 36 + 1 + 5);
        assert!(is_protected(&format!("{name}0000000001")));
        assert_eq!(normalize(&format!("{name}0000000001")), "lock-0000000001");
        assert!(id.owns(&format!("{name}0000000001")));
        assert!(!ProtectedId::new().owns(&format!("{name}0000000001")));
        assert!(!is_protected("_c_not-a-uuid-lock-0000000001"));
        // Multi-byte characters where the uuid would end must not panic.
        assert!(!is_protected(
            "_c_ééééééééééééééééééééééééééééééé-lock-0000000001"
        ));
        assert_eq!(sequence_number("ééééééé"), None);
    }

    #[test]
    fn ordering_follows_the_sequence_after_the_last_lock_name() {
        // A uuid may contain the lock name's letters; only the part after the LAST occurrence
        // counts.
        assert_eq!(sort_key("_c_lock-1-lock-0000000003", "lock-"), "0000000003");
        assert_eq!(sort_key("other", "lock-"), "other");
        let mut children = vec![
            "_c_b-latch-0000000010".to_owned(),
            "_c_a-latch-0000000009".to_owned(),
            "_c_c-latch-0000000011".to_owned(),
        ];
        sort_children(&mut children, "latch-");
        assert_eq!(
            children,
            [
                "_c_a-latch-0000000009",
                "_c_b-latch-0000000010",
                "_c_c-latch-0000000011"
            ]
        );
    }

    #[test]
    fn sequence_numbers_and_paths() {
        assert_eq!(sequence_number("lock-0000000000"), Some(0));
        assert_eq!(
            sequence_number("lock-2147483647"),
            Some(i64::from(i32::MAX))
        );
        assert_eq!(sequence_number("lock-000000000x"), None);
        assert_eq!(sequence_number("lock-9999999999"), Some(9_999_999_999));
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(node_name("/a/b"), "b");
        assert!(validate_recipe_path("/a/b").is_ok());
        for bad in ["", "/", "a", "/a/", "/a//b", "/a/./b"] {
            assert!(validate_recipe_path(bad).is_err(), "{bad}");
        }
    }
}
