//! [`Mutex`]: a distributed lock, node-compatible with Curator's `InterProcessMutex`.
//!
//! # Layout (shared with Curator 5.x)
//!
//! Each contender creates an ephemeral sequential node `<path>/_c_<uuid>-lock-<seq>`
//! (protected, see [`paths`]). Contenders are ordered by the ten sequence
//! digits after the last `lock-`; the first one holds the lock. Every other contender puts a
//! data watch on the node *just before* its own (never on the parent, so a release wakes one
//! waiter, not the herd), and re-checks when it fires. A Java service using
//! `new InterProcessMutex(client, path)` on the same path takes turns with ours.
//!
//! # Guarantees and limits
//!
//! * **Cancellation-safe acquire.** Dropping an [`acquire`](Mutex::acquire) future at any
//!   point removes its contender node in the background (even when the create's reply has
//!   not arrived yet: the cleanup lists the parent for our protection prefix, and requests of
//!   one session are applied in order). [`try_acquire`](Mutex::try_acquire) removes it
//!   before returning.
//! * **Loss is part of the API.** A [`LockGuard`] exposes [`lost`](LockGuard::lost), a
//!   future that resolves when the holder can no longer be sure it holds the lock, according
//!   to the [`ErrorPolicy`], and a [`FencingToken`] to hand to downstream resources.
//!   [`guarded_transaction`](LockGuard::guarded_transaction) starts a multi that only commits
//!   while our lock node exists.
//! * **Not re-entrant.** Unlike Curator's `InterProcessMutex`, acquiring the same [`Mutex`]
//!   twice from one process makes the second call wait for the first guard (it is a second
//!   contender). Keep the guard and pass it around instead.
//! * **Session expiry ends the hold.** zk-client never opens a new session under the same
//!   handle: after expiry the guard reports [`LossReason::SessionLost`] and a new
//!   [`Client`] is needed to contend again.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::AbortHandle;
use zk_client::{Client, EventType, StateChanges, Transaction};

use crate::error::{Error, Result};
use crate::paths::{self, ProtectedId};
use crate::policy::{ErrorPolicy, LossReason};

/// The lock name in contender nodes (Curator's `InterProcessMutex.LOCK_NAME`).
pub const LOCK_NAME: &str = "lock-";

/// The lock name of read-lock contenders (Curator's `InterProcessReadWriteLock`).
pub const READ_LOCK_NAME: &str = "__READ__";

/// The lock name of write-lock contenders (Curator's `InterProcessReadWriteLock`).
pub const WRITE_LOCK_NAME: &str = "__WRIT__";

/// Which contenders a lock node competes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `lock-` nodes; the first holds the lock.
    Mutex,
    /// `__READ__` nodes of a read/write lock: held while no writer is ahead.
    Read,
    /// `__WRIT__` nodes of a read/write lock: held when first.
    Write,
}

impl Kind {
    fn lock_name(self) -> &'static str {
        match self {
            Kind::Mutex => LOCK_NAME,
            Kind::Read => READ_LOCK_NAME,
            Kind::Write => WRITE_LOCK_NAME,
        }
    }

    /// Sorts contenders as Curator does for this kind.
    fn sort(self, children: &mut [String]) {
        match self {
            Kind::Mutex => paths::sort_children(children, LOCK_NAME),
            Kind::Read | Kind::Write => children.sort_by(|a, b| rw_key(a).cmp(rw_key(b))),
        }
    }

    /// `None` if the contender at `index` of the sorted `children` holds the lock, else the
    /// index of the node it must watch: the one just before it (mutex, writer) or the first
    /// writer before it (reader).
    fn must_watch(self, children: &[String], index: usize) -> Option<usize> {
        match self {
            Kind::Mutex | Kind::Write => index.checked_sub(1),
            Kind::Read => children[..index]
                .iter()
                .position(|c| c.contains(WRITE_LOCK_NAME)),
        }
    }
}

/// Curator's read/write sort key: the sequence after either lock name.
fn rw_key(node: &str) -> &str {
    paths::sort_key(paths::sort_key(node, READ_LOCK_NAME), WRITE_LOCK_NAME)
}

/// A distributed mutual-exclusion lock on a path, compatible with Curator's
/// `InterProcessMutex`. Cheap to clone; clones are independent contenders.
///
/// ```no_run
/// use std::time::Duration;
/// use zk_recipes::Mutex;
///
/// # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
/// let mutex = Mutex::new(&client, "/app/locks/db")?;
/// let guard = mutex.acquire().await?;
/// println!("holding {} with token {:?}", guard.path(), guard.fencing_token());
/// tokio::select! {
///     reason = guard.lost() => println!("lost the lock: {reason:?}"),
///     _ = tokio::time::sleep(Duration::from_secs(1)) => {}
/// }
/// guard.release().await?;
///
/// if let Some(guard) = mutex.try_acquire(Duration::from_secs(5)).await? {
///     guard.release().await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Mutex {
    client: Client,
    path: String,
    policy: ErrorPolicy,
    data: Vec<u8>,
    kind: Kind,
}

impl Mutex {
    /// A lock on `path` (absolute, created with its parents as containers on first use).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed path.
    pub fn new(client: &Client, path: &str) -> Result<Mutex> {
        paths::validate_recipe_path(path)?;
        Ok(Mutex {
            client: client.clone(),
            path: path.to_owned(),
            policy: ErrorPolicy::default(),
            data: Vec::new(),
            kind: Kind::Mutex,
        })
    }

    /// A lock of `kind` on `path` (for the read/write lock).
    pub(crate) fn with_kind(client: &Client, path: &str, kind: Kind) -> Result<Mutex> {
        let mut mutex = Mutex::new(client, path)?;
        mutex.kind = kind;
        Ok(mutex)
    }

    /// Sets the [`ErrorPolicy`] of the guards this lock hands out (default
    /// [`ErrorPolicy::Standard`]).
    pub fn error_policy(mut self, policy: ErrorPolicy) -> Mutex {
        self.policy = policy;
        self
    }

    /// Sets the data stored in our contender nodes (default: empty; Curator stores the
    /// host's address there unless told otherwise).
    pub fn node_data(mut self, data: impl Into<Vec<u8>>) -> Mutex {
        self.data = data.into();
        self
    }

    /// The lock's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Waits until the lock is ours. Dropping the future removes our contender node.
    ///
    /// # Errors
    ///
    /// [`Error::SessionLost`] when the session is over (a new `Client` is needed),
    /// [`Error::Client`] when ZooKeeper fails in a way retries do not fix,
    /// [`Error::NodeVanished`] when our contender node was deleted while we waited.
    /// Our node is removed before the error is returned.
    pub async fn acquire(&self) -> Result<LockGuard> {
        let mut contender = self.contender();
        let result = self.acquire_with(&mut contender).await;
        if result.is_err() {
            contender.cleanup().await;
        }
        result
    }

    /// Like [`acquire`](Self::acquire), giving up after `timeout`: then `Ok(None)`, and our
    /// contender node has been removed.
    pub async fn try_acquire(&self, timeout: Duration) -> Result<Option<LockGuard>> {
        let mut contender = self.contender();
        let result = tokio::time::timeout(timeout, self.acquire_with(&mut contender)).await;
        match result {
            Ok(Ok(guard)) => Ok(Some(guard)),
            Ok(Err(e)) => {
                contender.cleanup().await;
                Err(e)
            }
            Err(_) => {
                tracing::debug!(path = %self.path, "lock acquire timed out");
                contender.cleanup().await;
                Ok(None)
            }
        }
    }

    /// The contender node names in Curator's order (for a mutex: the holder first).
    pub async fn contenders(&self) -> Result<Vec<String>> {
        match paths::retrying(|| self.client.get_children(&self.path)).await {
            Ok(mut children) => {
                self.kind.sort(&mut children);
                Ok(children)
            }
            Err(zk_client::Error::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    fn contender(&self) -> Contender {
        Contender {
            client: self.client.clone(),
            parent: self.path.clone(),
            id: ProtectedId::new(),
            node: None,
            armed: true,
        }
    }

    async fn acquire_with(&self, contender: &mut Contender) -> Result<LockGuard> {
        let client = &self.client;
        let (path, stat) = paths::create_protected_sequential(
            client,
            &self.path,
            self.kind.lock_name(),
            &self.data,
            &contender.id,
        )
        .await?;
        contender.node = Some(path.clone());
        let name = paths::node_name(&path).to_owned();
        tracing::debug!(%path, "lock contender created");
        loop {
            // Subscribed before the check, so the guard sees every state change after it.
            let states = client.state_changes();
            let mut children = match paths::retrying(|| client.get_children(&self.path)).await {
                Ok(children) => children,
                Err(zk_client::Error::NoNode) => return Err(Error::NodeVanished(path)),
                Err(e) => return Err(e.into()),
            };
            self.kind.sort(&mut children);
            let Some(index) = children.iter().position(|c| *c == name) else {
                return Err(Error::NodeVanished(path));
            };
            let Some(watch) = self.kind.must_watch(&children, index) else {
                contender.armed = false;
                return Ok(LockGuard::new(
                    client.clone(),
                    path,
                    FencingToken {
                        czxid: stat.czxid,
                        sequence: paths::sequence_number(&name).unwrap_or(-1),
                    },
                    self.policy,
                    states,
                ));
            };
            let previous = paths::join(&self.path, &children[watch]);
            tracing::debug!(%path, %previous, "waiting for the previous contender");
            match paths::retrying(|| client.get_data_watch(&previous)).await {
                Ok((_, _, watcher)) => {
                    // A node event means: look again. A session event means the session
                    // ended: the next call reports why.
                    let _event = watcher.await;
                }
                Err(zk_client::Error::NoNode) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A contender node in the making; removes itself unless disarmed.
pub(crate) struct Contender {
    pub(crate) client: Client,
    pub(crate) parent: String,
    pub(crate) id: ProtectedId,
    /// Our node, once the create's reply arrived.
    pub(crate) node: Option<String>,
    pub(crate) armed: bool,
}

impl Contender {
    fn cleanup_future(&self) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        let client = self.client.clone();
        let parent = self.parent.clone();
        let id = self.id;
        let node = self.node.clone();
        async move {
            match node {
                Some(node) => paths::delete_quietly(&client, &node).await,
                // The create may be in flight: a listing issued now is applied after it.
                None => paths::delete_protected(&client, &parent, &id).await,
            }
        }
    }

    /// A contender under `parent` with a fresh protection id.
    pub(crate) fn new(client: &Client, parent: &str) -> Contender {
        Contender {
            client: client.clone(),
            parent: parent.to_owned(),
            id: ProtectedId::new(),
            node: None,
            armed: true,
        }
    }

    pub(crate) async fn cleanup(&mut self) {
        self.armed = false;
        if let Err(e) = self.cleanup_future().await {
            tracing::warn!(error = %e, parent = %self.parent, "could not remove our lock contender");
        }
    }
}

impl Drop for Contender {
    fn drop(&mut self) {
        if self.armed {
            tracing::debug!(parent = %self.parent, "lock acquire abandoned, removing our contender");
            paths::spawn_cleanup("lock contender", self.cleanup_future());
        }
    }
}

/// A token that orders lock holders: a later holder always has a larger one.
///
/// Hand it to a downstream resource with every write; the resource remembers the largest
/// token it has seen and rejects smaller ones, so a holder that lost the lock without
/// noticing (a long pause, a partition) cannot overwrite its successor's work. Ordered by
/// `czxid` first (unique and increasing across the whole ensemble), then `sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken {
    /// The zxid that created our lock node.
    pub czxid: i64,
    /// The sequence number of our lock node (increasing per lock path while the path
    /// exists).
    pub sequence: i64,
}

impl FencingToken {
    /// The token as one integer: the `czxid`. Zxids are unique and increase across the
    /// whole ensemble, so the creation zxid alone orders holders; `sequence` only breaks
    /// ties that cannot happen within one ensemble.
    pub fn value(&self) -> i64 {
        self.czxid
    }
}

/// `<czxid>:<sequence>`, e.g. `4294967302:7`; [`FromStr`](std::str::FromStr) reads it back.
///
/// ```
/// use zk_recipes::FencingToken;
/// let token = FencingToken { czxid: 4_294_967_302, sequence: 7 };
/// assert_eq!(token.to_string(), "4294967302:7");
/// assert_eq!("4294967302:7".parse::<FencingToken>()?, token);
/// assert!("4294967302".parse::<FencingToken>().is_err());
/// # Ok::<(), zk_recipes::Error>(())
/// ```
impl std::fmt::Display for FencingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.czxid, self.sequence)
    }
}

impl std::str::FromStr for FencingToken {
    type Err = Error;

    fn from_str(s: &str) -> Result<FencingToken> {
        let invalid =
            || Error::InvalidValue(format!("fencing token {s:?}: expected <czxid>:<sequence>"));
        let (czxid, sequence) = s.split_once(':').ok_or_else(invalid)?;
        Ok(FencingToken {
            czxid: czxid.trim().parse().map_err(|_| invalid())?,
            sequence: sequence.trim().parse().map_err(|_| invalid())?,
        })
    }
}

/// Proof of holding a [`Mutex`]: release it with [`release`](LockGuard::release); dropping
/// it schedules the release in the background (never blocks).
#[derive(Debug)]
#[must_use = "dropping the guard releases the lock"]
pub struct LockGuard {
    client: Client,
    path: String,
    token: FencingToken,
    lost: watch::Receiver<Option<LossReason>>,
    monitor: AbortHandle,
    released: bool,
}

impl LockGuard {
    fn new(
        client: Client,
        path: String,
        token: FencingToken,
        policy: ErrorPolicy,
        states: StateChanges,
    ) -> LockGuard {
        let (tx, lost) = watch::channel(None);
        let monitor = tokio::spawn(monitor(client.clone(), path.clone(), policy, states, tx));
        tracing::info!(%path, czxid = token.czxid, sequence = token.sequence, "lock acquired");
        LockGuard {
            client,
            path,
            token,
            lost,
            monitor: monitor.abort_handle(),
            released: false,
        }
    }

    /// Our lock node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The [`FencingToken`] of this hold.
    pub fn fencing_token(&self) -> FencingToken {
        self.token
    }

    /// `true` once the hold can no longer be trusted (see [`lost`](Self::lost)).
    pub fn is_lost(&self) -> bool {
        self.lost.borrow().is_some()
    }

    /// Resolves when the holder can no longer be sure it holds the lock: the connection was
    /// suspended (under [`ErrorPolicy::Standard`]), the session was lost, or our node was
    /// deleted. Resolves with [`LossReason::Released`] if the guard is released first. The
    /// future does not borrow the guard.
    ///
    /// ```no_run
    /// # async fn demo(guard: zk_recipes::LockGuard) {
    /// let lost = guard.lost();
    /// tokio::select! {
    ///     reason = lost => eprintln!("stop writing: {reason:?}"),
    ///     _ = do_the_work() => {}
    /// }
    /// # }
    /// # async fn do_the_work() {}
    /// ```
    pub fn lost(&self) -> impl Future<Output = LossReason> + Send + 'static + use<> {
        let mut lost = self.lost.clone();
        async move {
            if let Ok(reason) = lost.wait_for(Option::is_some).await {
                if let Some(reason) = *reason {
                    return reason;
                }
            }
            let current = *lost.borrow();
            current.unwrap_or(LossReason::Released)
        }
    }

    /// A transaction that starts with a check that our lock node exists: it commits only
    /// while we hold the lock (add the writes, then [`commit`](Transaction::commit)).
    ///
    /// ```no_run
    /// # async fn demo(guard: zk_recipes::LockGuard) -> Result<(), zk_client::Error> {
    /// guard.guarded_transaction().set_data("/app/config", b"v2", None).commit().await?;
    /// # Ok(()) }
    /// ```
    pub fn guarded_transaction(&self) -> Transaction {
        self.client.transaction().check(&self.path, None)
    }

    /// Releases the lock: deletes our node (retrying through short disconnections).
    ///
    /// # Errors
    ///
    /// [`Error::Client`] if the node could not be deleted; it then stays until our session
    /// ends (a lost session already removed it: that is not an error).
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        self.monitor.abort();
        let result = paths::delete_quietly(&self.client, &self.path).await;
        tracing::info!(path = %self.path, ok = result.is_ok(), "lock released");
        result
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if !self.released {
            self.monitor.abort();
            tracing::info!(path = %self.path, "lock guard dropped, releasing in the background");
            let client = self.client.clone();
            let path = self.path.clone();
            paths::spawn_cleanup("lock release", async move {
                paths::delete_quietly(&client, &path).await
            });
        }
    }
}

/// Watches the session state and our node until the hold is lost.
async fn monitor(
    client: Client,
    path: String,
    policy: ErrorPolicy,
    mut states: StateChanges,
    tx: watch::Sender<Option<LossReason>>,
) {
    let reason = loop {
        let node_gone = async {
            match client.exists_watch(&path).await {
                Ok((None, _)) => Some(LossReason::NodeDeleted),
                Ok((Some(_), watcher)) => {
                    let event = watcher.await;
                    match event.event_type {
                        EventType::NodeDeleted => Some(LossReason::NodeDeleted),
                        EventType::None => Some(LossReason::SessionLost),
                        _ => None,
                    }
                }
                Err(e) if e.is_session_terminal() => Some(LossReason::SessionLost),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    None
                }
            }
        };
        tokio::select! {
            biased;
            state = states.next() => match state {
                Some(state) if policy.is_error_state(state) => break LossReason::from_state(state),
                Some(_) => {}
                None => break LossReason::SessionLost,
            },
            gone = node_gone => if let Some(reason) = gone {
                break reason;
            },
        }
    };
    tracing::warn!(%path, ?reason, "lock lost");
    let _ = tx.send(Some(reason));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn predecessor_rules() {
        let mut rw = names(&[
            "_c_b-__WRIT__0000000003",
            "_c_a-__READ__0000000001",
            "_c_c-__READ__0000000004",
            "_c_d-__READ__0000000002",
        ]);
        Kind::Read.sort(&mut rw);
        assert_eq!(rw[0], "_c_a-__READ__0000000001");
        assert_eq!(rw[2], "_c_b-__WRIT__0000000003");
        // Readers before the first writer hold the lock; a reader after it watches it.
        assert_eq!(Kind::Read.must_watch(&rw, 0), None);
        assert_eq!(Kind::Read.must_watch(&rw, 1), None);
        assert_eq!(Kind::Read.must_watch(&rw, 3), Some(2));
        // A writer watches whatever is just before it.
        assert_eq!(Kind::Write.must_watch(&rw, 2), Some(1));
        assert_eq!(Kind::Mutex.must_watch(&rw, 0), None);
        assert_eq!(Kind::Mutex.must_watch(&rw, 3), Some(2));
    }
}
