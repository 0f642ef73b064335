//! [`LeaderLatch`]: leader election among participants, node-compatible with Curator's
//! `LeaderLatch`.
//!
//! # Layout (shared with Curator 5.x)
//!
//! Each participant creates an ephemeral sequential node `<path>/_c_<uuid>-latch-<seq>`
//! holding its id (UTF-8). Participants are ordered by the sequence digits after the last
//! `latch-`; the first is the leader. Every other participant watches the node just before
//! its own and re-checks when it goes away. A Java `LeaderLatch` on the same path takes part
//! in the same election.
//!
//! # Failure semantics
//!
//! * **Suspended connection.** Under [`ErrorPolicy::Standard`] (Curator's default) the
//!   leader reports the loss at once ([`has_leadership`](LeaderLatch::has_leadership) turns
//!   `false`); under [`ErrorPolicy::Session`] it keeps leadership while the session may live.
//! * **Reconnected.** The latch re-checks before claiming leadership again: our node must
//!   still be first *and* its `ephemeralOwner` must be the current session.
//! * **Our node deleted** (by an operator, say): the latch creates a new one and queues
//!   again, as Curator's `reset()` does.
//! * **Work tied to leadership.** [`run_while_leader`](LeaderLatch::run_while_leader) runs a
//!   future only while we lead and cancels it the moment leadership is lost (a leader
//!   selector on top of the latch; it is not Curator's `LeaderSelector` node layout).
//! * **Session expired.** A zk-client [`Client`] never opens a second session under the same
//!   handle, so the latch cannot re-enter by itself: it reports the loss and ends
//!   ([`LatchStatus::ended`] becomes [`LatchEnd::SessionLost`], waits end with
//!   [`Error::SessionLost`]). Build a new client and a new
//!   latch to take part again. (We chose this over accepting a client factory: one session
//!   per latch keeps "which session owns my node" unambiguous, and the application usually
//!   wants to rebuild its other session-bound state at the same moment anyway.)
//!
//! ```no_run
//! use zk_recipes::LeaderLatch;
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let latch = LeaderLatch::join(&client, "/app/leader", "worker-1")?;
//! latch.await_leadership().await?;
//! let mut changes = latch.leadership_changes();
//! // ... lead, until:
//! while let Some(leader) = changes.next().await {
//!     if !leader {
//!         break; // stop leading at once
//!     }
//! }
//! latch.close().await;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;
use zk_client::{Client, EventType, SessionState, Stat};

use crate::error::{Error, Result};
use crate::paths::{self, ProtectedId};
use crate::policy::ErrorPolicy;

/// How many leadership changes a slow [`LeadershipChanges`] reader may fall behind before it
/// skips to the current value.
const EVENT_CAPACITY: usize = 64;

/// The lock name in participant nodes (Curator's `LeaderLatch.LOCK_NAME`).
pub const LATCH_NAME: &str = "latch-";

/// Why a latch stopped taking part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LatchEnd {
    /// [`LeaderLatch::close`] was called or the latch was dropped.
    Closed,
    /// The session was lost (expired, closed, authentication failed); a new client is
    /// needed.
    SessionLost,
}

/// A latch's current status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LatchStatus {
    /// We are the leader, as far as we can tell under the latch's [`ErrorPolicy`].
    pub is_leader: bool,
    /// Our participant node, once created.
    pub node: Option<String>,
    /// Set once the latch no longer takes part.
    pub ended: Option<LatchEnd>,
}

/// One participant of an election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The participant's id (its node's data).
    pub id: String,
    /// Its node's name.
    pub node: String,
    /// `true` for the first participant.
    pub is_leader: bool,
}

/// A leader election participant. See the [module docs](self).
///
/// Cheap to clone: clones are the same participant (share it with the task that watches
/// it). It takes part until [`close`](Self::close) is called or the last clone is dropped.
#[derive(Debug, Clone)]
pub struct LeaderLatch {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    client: Client,
    path: String,
    id: String,
    policy: ErrorPolicy,
    status: watch::Receiver<LatchStatus>,
    /// Until started.
    start: StdMutex<Option<(watch::Sender<LatchStatus>, broadcast::Sender<bool>)>>,
    events: broadcast::Receiver<bool>,
    /// Dropped (with the last clone) or fired by `close`: the driver stops.
    close_tx: StdMutex<Option<oneshot::Sender<()>>>,
    task: StdMutex<Option<JoinHandle<()>>>,
}

fn locked<T>(mutex: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LeaderLatch {
    /// A latch on `path` for the participant `id` (stored in its node; Curator shows it as the
    /// participant id), taking part at once: the one-call form of [`new`](Self::new) +
    /// [`start`](Self::start). Must be called within a tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
    /// let latch = zk_recipes::LeaderLatch::join(&client, "/app/leader", "worker-1")?;
    /// latch.await_leadership().await?;
    /// // ... lead ...
    /// latch.close().await;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed path.
    pub fn join(client: &Client, path: &str, id: &str) -> Result<LeaderLatch> {
        LeaderLatch::new(client, path, id)?.started()
    }

    /// A latch on `path` for the participant `id`, not yet taking part: set options, then
    /// [`started`](Self::started) (or [`start`](Self::start)). [`join`](Self::join) does
    /// both in one call.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed path.
    pub fn new(client: &Client, path: &str, id: &str) -> Result<LeaderLatch> {
        paths::validate_recipe_path(path)?;
        let (events_tx, events) = broadcast::channel(EVENT_CAPACITY);
        let (status_tx, status) = watch::channel(LatchStatus {
            is_leader: false,
            node: None,
            ended: None,
        });
        Ok(LeaderLatch {
            shared: Arc::new(Shared {
                client: client.clone(),
                path: path.to_owned(),
                id: id.to_owned(),
                policy: ErrorPolicy::default(),
                status,
                start: StdMutex::new(Some((status_tx, events_tx))),
                events,
                close_tx: StdMutex::new(None),
                task: StdMutex::new(None),
            }),
        })
    }

    /// Sets the [`ErrorPolicy`] (default [`ErrorPolicy::Standard`]). Before starting, on a
    /// latch that has no clones (otherwise it has no effect and a warning is logged).
    pub fn error_policy(mut self, policy: ErrorPolicy) -> LeaderLatch {
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.policy = policy,
            None => tracing::warn!("LeaderLatch::error_policy on a shared latch is ignored"),
        }
        self
    }

    /// The election's path.
    pub fn path(&self) -> &str {
        &self.shared.path
    }

    /// Our participant id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Starts taking part and returns the running latch (see [`join`](Self::join)).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] if already started.
    pub fn started(self) -> Result<LeaderLatch> {
        self.start_shared()?;
        Ok(self)
    }

    /// Starts taking part: a background task creates our node and follows the election.
    /// (Kept for existing callers; [`join`](Self::join) and [`started`](Self::started) do
    /// not need a mutable latch.)
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] if already started.
    pub fn start(&mut self) -> Result<()> {
        self.start_shared()
    }

    fn start_shared(&self) -> Result<()> {
        let shared = &self.shared;
        let Some((status_tx, events_tx)) = locked(&shared.start).take() else {
            return Err(Error::InvalidState("the latch was already started"));
        };
        let (close_tx, close_rx) = oneshot::channel();
        let driver = Driver {
            client: shared.client.clone(),
            path: shared.path.clone(),
            id: shared.id.clone(),
            protection: ProtectedId::new(),
            policy: shared.policy,
            status: status_tx,
            events: events_tx,
        };
        *locked(&shared.close_tx) = Some(close_tx);
        *locked(&shared.task) = Some(tokio::spawn(driver.run(close_rx)));
        Ok(())
    }

    /// `true` while we are the leader.
    pub fn has_leadership(&self) -> bool {
        self.shared.status.borrow().is_leader
    }

    /// The current status.
    pub fn status(&self) -> LatchStatus {
        self.shared.status.borrow().clone()
    }

    /// The error for a latch that ended: why.
    fn ended_error(&self, end: LatchEnd) -> Error {
        match end {
            LatchEnd::Closed => Error::Closed,
            LatchEnd::SessionLost => Error::SessionLost(match self.shared.client.state() {
                SessionState::Lost(zk_client::LostReason::Closed) => zk_client::Error::Closed,
                SessionState::AuthFailed => zk_client::Error::AuthFailed,
                _ => zk_client::Error::SessionExpired,
            }),
        }
    }

    /// Waits until we are the leader.
    ///
    /// # Errors
    ///
    /// [`Error::SessionLost`] if the session ends first (a new `Client` and latch are
    /// needed), [`Error::Closed`] if the latch is closed first, [`Error::InvalidState`] if it
    /// was not started.
    pub async fn await_leadership(&self) -> Result<()> {
        if locked(&self.shared.start).is_some() {
            return Err(Error::InvalidState("the latch was not started"));
        }
        let mut status = self.shared.status.clone();
        let result = status
            .wait_for(|s| s.is_leader || s.ended.is_some())
            .await
            .map(|s| (s.is_leader, s.ended));
        match result {
            Ok((true, _)) => Ok(()),
            Ok((false, Some(end))) => Err(self.ended_error(end)),
            _ => Err(Error::Closed),
        }
    }

    /// Like [`await_leadership`](Self::await_leadership), for at most `timeout`: `Ok(true)`
    /// when we became the leader, `Ok(false)` when the time ran out.
    ///
    /// # Errors
    ///
    /// As [`await_leadership`](Self::await_leadership).
    pub async fn await_leadership_timeout(&self, timeout: Duration) -> Result<bool> {
        match tokio::time::timeout(timeout, self.await_leadership()).await {
            Ok(result) => result.map(|()| true),
            Err(_) => Ok(false),
        }
    }

    /// Leader-selector style: waits for leadership, then runs `work` while we lead. Returns
    /// `Ok(Some(output))` if `work` finished while we were still the leader, `Ok(None)` if
    /// leadership was lost first: then `work` is dropped (cancelled) at once. Call it in a
    /// loop to lead again whenever elected; the loop ends with [`Error::SessionLost`] when
    /// the session is over (a lost session never gives leadership back).
    ///
    /// # Errors
    ///
    /// As [`await_leadership`](Self::await_leadership).
    ///
    /// ```no_run
    /// # async fn demo(latch: zk_recipes::LeaderLatch) -> Result<(), zk_recipes::Error> {
    /// loop {
    ///     match latch.run_while_leader(schedule_jobs()).await {
    ///         Ok(Some(())) => break,
    ///         Ok(None) => eprintln!("lost leadership, waiting to be elected again"),
    ///         Err(e) if e.is_session_lost() => return Err(e), // build a new Client
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # Ok(()) }
    /// # async fn schedule_jobs() {}
    /// ```
    pub async fn run_while_leader<F: Future>(&self, work: F) -> Result<Option<F::Output>> {
        self.await_leadership().await?;
        let mut status = self.shared.status.clone();
        tokio::select! {
            biased;
            _ = status.wait_for(|s| !s.is_leader) => {
                tracing::info!(path = %self.path(), id = %self.id(), "leadership lost, work cancelled");
                Ok(None)
            }
            output = work => Ok(Some(output)),
        }
    }

    /// Every leadership change from now on (`true`: gained, `false`: lost), in order: a
    /// loss followed quickly by a regain is reported as both. It starts with `true` if we
    /// already lead, so subscribing after [`join`](Self::join) misses nothing that still
    /// holds. A reader more than 64 changes behind skips to the current value.
    pub fn leadership_changes(&self) -> LeadershipChanges {
        // Subscribe first, then read the current value: a change in between shows up in
        // both and is reported once.
        let events = self.shared.events.resubscribe();
        let current = self.shared.status.borrow().is_leader;
        LeadershipChanges {
            events,
            status: self.shared.status.clone(),
            last: false,
            pending: current.then_some(true),
        }
    }

    /// Curator's `LeaderLatchListener`: calls `listener(true)` when we gain leadership and
    /// `listener(false)` when we lose it, on a task of its own, until the latch ends (it
    /// is called with `true` at once if we already lead). Returns the task's handle (abort
    /// it to stop listening).
    ///
    /// ```no_run
    /// # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
    /// let latch = zk_recipes::LeaderLatch::join(&client, "/app/leader", "worker-1")?;
    /// latch.listen(|leader| println!("leader now: {leader}"));
    /// # Ok(()) }
    /// ```
    pub fn listen<F>(&self, mut listener: F) -> JoinHandle<()>
    where
        F: FnMut(bool) + Send + 'static,
    {
        let mut changes = self.leadership_changes();
        tokio::spawn(async move {
            while let Some(leader) = changes.next().await {
                listener(leader);
            }
        })
    }

    /// The participants, leader first, with their ids.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors.
    pub async fn participants(&self) -> Result<Vec<Participant>> {
        participants(&self.shared.client, self.path(), LATCH_NAME).await
    }

    /// The current leader, if any. Reads the election's nodes: works on a latch that was
    /// never started too (an observer), as [`participants`](Self::participants) does.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors.
    pub async fn leader(&self) -> Result<Option<Participant>> {
        Ok(self.participants().await?.into_iter().next())
    }

    /// Stops taking part (every clone): gives up leadership, deletes our node and waits for
    /// the background task to end. Idempotent. (Dropping the last clone does the same in
    /// the background.)
    pub async fn close(&self) {
        if let Some(close_tx) = locked(&self.shared.close_tx).take() {
            let _ = close_tx.send(());
        }
        let task = locked(&self.shared.task).take();
        match task {
            Some(task) => {
                let _ = task.await;
            }
            None => {
                // Closed by another clone (or never started).
                let mut status = self.shared.status.clone();
                if locked(&self.shared.start).is_none() {
                    let _ = status.wait_for(|s| s.ended.is_some()).await;
                }
            }
        }
        if let Some((status_tx, _)) = locked(&self.shared.start).take() {
            status_tx.send_modify(|s| s.ended = Some(LatchEnd::Closed));
        }
    }
}

/// Leadership changes of a [`LeaderLatch`] (see [`LeaderLatch::leadership_changes`]).
#[derive(Debug)]
pub struct LeadershipChanges {
    events: broadcast::Receiver<bool>,
    status: watch::Receiver<LatchStatus>,
    last: bool,
    pending: Option<bool>,
}

impl LeadershipChanges {
    /// The next change: `Some(true)` when leadership was gained, `Some(false)` when lost;
    /// `None` once the latch has ended (after reporting the loss). Cancellation-safe.
    pub async fn next(&mut self) -> Option<bool> {
        if let Some(leader) = self.pending.take() {
            self.last = leader;
            return Some(leader);
        }
        loop {
            let leader = match self.events.recv().await {
                Ok(leader) => leader,
                Err(broadcast::error::RecvError::Lagged(_)) => self.status.borrow().is_leader,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            if leader != self.last {
                self.last = leader;
                return Some(leader);
            }
        }
    }
}

/// The participants under `path` in Curator's order for `lock_name`, with their ids.
pub(crate) async fn participants(
    client: &Client,
    path: &str,
    lock_name: &str,
) -> Result<Vec<Participant>> {
    let mut children = match paths::retrying(|| client.get_children(path)).await {
        Ok(children) => children,
        Err(zk_client::Error::NoNode) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    paths::sort_children(&mut children, lock_name);
    let mut out = Vec::with_capacity(children.len());
    for node in children {
        let node_path = paths::join(path, &node);
        match paths::retrying(|| client.get_data(&node_path)).await {
            Ok((data, _)) => out.push(Participant {
                id: String::from_utf8_lossy(&data).into_owned(),
                is_leader: out.is_empty(),
                node,
            }),
            Err(zk_client::Error::NoNode) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// The background task of a started latch.
struct Driver {
    client: Client,
    path: String,
    id: String,
    protection: ProtectedId,
    policy: ErrorPolicy,
    status: watch::Sender<LatchStatus>,
    events: broadcast::Sender<bool>,
}

/// What woke the driver.
enum Wake {
    Close,
    State(Option<SessionState>),
    Checked(Result<Checked>),
}

/// The outcome of one check-and-wait round.
enum Checked {
    /// Something changed: look again.
    Again,
    /// Our node is gone (or is not ours any more): create a new one.
    Vanished,
}

impl Driver {
    async fn run(self, mut close: oneshot::Receiver<()>) {
        let mut states = self.client.state_changes();
        let mut node: Option<(String, Stat)> = None;
        let end = loop {
            let step = match &node {
                None => {
                    let create = paths::create_protected_sequential(
                        &self.client,
                        &self.path,
                        LATCH_NAME,
                        self.id.as_bytes(),
                        &self.protection,
                    );
                    tokio::select! {
                        biased;
                        _ = &mut close => Wake::Close,
                        created = create => match created {
                            Ok(created) => {
                                tracing::debug!(path = %created.0, "latch node created");
                                self.status.send_modify(|s| s.node = Some(created.0.clone()));
                                node = Some(created);
                                continue;
                            }
                            Err(e) => Wake::Checked(Err(e)),
                        },
                    }
                }
                Some((path, _)) => tokio::select! {
                    biased;
                    _ = &mut close => Wake::Close,
                    state = states.next() => Wake::State(state),
                    checked = self.check_and_wait(path) => Wake::Checked(checked),
                },
            };
            match step {
                Wake::Close => break LatchEnd::Closed,
                Wake::State(None) => break LatchEnd::SessionLost,
                Wake::State(Some(state)) => {
                    if state.is_terminal() {
                        break LatchEnd::SessionLost;
                    }
                    if self.policy.is_error_state(state) {
                        self.set_leader(false, "connection suspended");
                    }
                    // Connected again: the loop re-checks before claiming anything.
                }
                Wake::Checked(Ok(Checked::Again)) => {}
                Wake::Checked(Ok(Checked::Vanished)) => {
                    self.set_leader(false, "our node is gone");
                    node = None;
                    self.status.send_modify(|s| s.node = None);
                }
                Wake::Checked(Err(e)) if e.is_session_lost() => {
                    break LatchEnd::SessionLost;
                }
                Wake::Checked(Err(e)) => {
                    tracing::warn!(error = %e, path = %self.path, "leader latch check failed, retrying");
                    tokio::select! {
                        biased;
                        _ = &mut close => break LatchEnd::Closed,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            }
        };
        self.set_leader(false, "latch ended");
        if end == LatchEnd::Closed {
            let cleanup = async {
                match &node {
                    Some((path, _)) => paths::delete_quietly(&self.client, path).await,
                    None => {
                        paths::delete_protected(&self.client, &self.path, &self.protection).await
                    }
                }
            };
            match tokio::time::timeout(self.client.session_timeout(), cleanup).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not delete our latch node"),
                Err(_) => tracing::warn!("timed out deleting our latch node"),
            }
        }
        tracing::info!(path = %self.path, id = %self.id, reason = ?end, "leader latch ended");
        self.status.send_modify(|s| {
            s.ended = Some(end);
            s.node = None;
        });
    }

    /// One round: find our place; lead (and wait for our node to change) or watch the
    /// previous participant (and wait for it to change).
    async fn check_and_wait(&self, our_path: &str) -> Result<Checked> {
        let client = &self.client;
        let our_name = paths::node_name(our_path);
        let mut children = match paths::retrying(|| client.get_children(&self.path)).await {
            Ok(children) => children,
            Err(zk_client::Error::NoNode) => return Ok(Checked::Vanished),
            Err(e) => return Err(e.into()),
        };
        paths::sort_children(&mut children, LATCH_NAME);
        let Some(index) = children.iter().position(|c| c == our_name) else {
            return Ok(Checked::Vanished);
        };
        if index == 0 {
            // First; but is the node still ours (our session's)? Watch it at the same time.
            let (stat, watcher) = paths::retrying(|| client.exists_watch(our_path)).await?;
            match stat {
                Some(stat) if stat.ephemeral_owner == client.session_id() => {}
                _ => return Ok(Checked::Vanished),
            }
            self.set_leader(true, "first in line");
            let event = watcher.await;
            return Ok(match event.event_type {
                EventType::NodeDeleted => Checked::Vanished,
                _ => Checked::Again,
            });
        }
        self.set_leader(false, "not first in line");
        let previous = paths::join(&self.path, &children[index - 1]);
        match paths::retrying(|| client.get_data_watch(&previous)).await {
            Ok((_, _, watcher)) => {
                tracing::debug!(%previous, "watching the previous participant");
                let _event = watcher.await;
            }
            Err(zk_client::Error::NoNode) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Checked::Again)
    }

    fn set_leader(&self, leader: bool, why: &'static str) {
        let changed = self.status.send_if_modified(|s| {
            let changed = s.is_leader != leader;
            s.is_leader = leader;
            changed
        });
        if changed {
            // No receiver is fine.
            let _ = self.events.send(leader);
            if leader {
                tracing::info!(path = %self.path, id = %self.id, why, "leadership gained");
            } else {
                tracing::info!(path = %self.path, id = %self.id, why, "leadership lost");
            }
        }
    }
}
