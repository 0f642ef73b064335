//! [`LeaderSelector`]: leadership as a task that runs while it leads (Curator's
//! `LeaderSelector`), on Curator's node layout so Java and Rust selectors share an election.
//!
//! # Layout (Curator's)
//!
//! A selector is an `InterProcessMutex` on the election path: each contender is an
//! ephemeral sequential node `_c_<uuid>-lock-<seq>` whose data is the participant id, and
//! the lowest sequence leads. So a Curator selector and ours on one path take turns, and
//! [`participants`](LeaderSelector::participants) lists both kinds with their ids.
//!
//! # Leading
//!
//! [`take_leadership`](LeaderSelector::take_leadership) waits for the lock, runs the work
//! and releases the lock when the work returns. If leadership is lost first (connection
//! suspended under [`ErrorPolicy::Standard`], session lost, our node deleted), the work
//! future is **dropped** at its next await point — Curator interrupts `takeLeadership` the
//! same way — and the outcome says why. [`start`](LeaderSelector::start) runs rounds in a
//! task, re-queueing after each round when asked to (Curator's `autoRequeue`) or on
//! [`requeue`](RunningSelector::requeue).
//!
//! ```no_run
//! use zk_recipes::LeaderSelector;
//! use zk_recipes::leader_selector::Leadership;
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let selector = LeaderSelector::new(&client, "/app/election", "worker-1")?;
//! match selector.take_leadership(|| async { "did the leader's job" }).await? {
//!     Leadership::Completed(report) => println!("{report}"),
//!     Leadership::Lost(reason) => println!("leadership lost mid-way: {reason:?}"),
//! }
//! # Ok(()) }
//! ```

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Notify, watch};
use zk_client::Client;

use crate::error::{Error, Result};
use crate::leader_latch::{Participant, participants};
use crate::lock::{FencingToken, Mutex};
use crate::policy::{ErrorPolicy, LossReason};

/// The lock name in contender nodes (Curator's mutex, which its `LeaderSelector` uses).
pub const SELECTOR_LOCK_NAME: &str = "lock-";

/// How one round of leadership ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership<T> {
    /// The work finished while we led; leadership was then given up.
    Completed(T),
    /// Leadership was lost before the work finished; the work was dropped (cancelled).
    Lost(LossReason),
}

/// A contender in a leader election that runs work while it leads (Curator's
/// `LeaderSelector`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct LeaderSelector {
    client: Client,
    mutex: Mutex,
    id: String,
}

impl LeaderSelector {
    /// A selector on `path` whose contender nodes carry `id`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed path.
    pub fn new(client: &Client, path: &str, id: &str) -> Result<LeaderSelector> {
        Ok(LeaderSelector {
            client: client.clone(),
            mutex: Mutex::new(client, path)?.node_data(id.as_bytes().to_vec()),
            id: id.to_owned(),
        })
    }

    /// Sets when leadership counts as lost (default [`ErrorPolicy::Standard`]: as soon as
    /// the connection is suspended, as Curator's selector).
    pub fn error_policy(mut self, policy: ErrorPolicy) -> LeaderSelector {
        self.mutex = self.mutex.error_policy(policy);
        self
    }

    /// The election path.
    pub fn path(&self) -> &str {
        self.mutex.path()
    }

    /// Our participant id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits for leadership, runs `work` while leading, then gives leadership up.
    /// `work` is dropped at its next await point if leadership is lost first.
    ///
    /// Cancellation-safe: dropping the returned future withdraws (our node is removed).
    ///
    /// # Errors
    ///
    /// [`Error::SessionLost`] when the session is over before we lead (a new `Client` is
    /// needed); other errors from acquiring the lock.
    pub async fn take_leadership<F, Fut>(&self, work: F) -> Result<Leadership<Fut::Output>>
    where
        F: FnOnce() -> Fut,
        Fut: Future,
    {
        self.take_leadership_with_token(|_| work()).await
    }

    /// Like [`take_leadership`](Self::take_leadership), handing `work` the
    /// [`FencingToken`] of this term (larger for every later leader).
    ///
    /// # Errors
    ///
    /// As [`take_leadership`](Self::take_leadership).
    pub async fn take_leadership_with_token<F, Fut>(
        &self,
        work: F,
    ) -> Result<Leadership<Fut::Output>>
    where
        F: FnOnce(FencingToken) -> Fut,
        Fut: Future,
    {
        let guard = self.mutex.acquire().await?;
        tracing::info!(path = %self.path(), id = %self.id, "took leadership");
        let lost = guard.lost();
        let outcome = tokio::select! {
            output = work(guard.fencing_token()) => Leadership::Completed(output),
            reason = lost => Leadership::Lost(reason),
        };
        if let Leadership::Lost(reason) = &outcome {
            tracing::warn!(path = %self.path(), id = %self.id, ?reason, "leadership lost, work cancelled");
        }
        // Give leadership up (a lost session already removed our node).
        if let Err(e) = guard.release().await {
            tracing::warn!(path = %self.path(), error = %e, "could not release leadership; it ends with the session");
        }
        Ok(outcome)
    }

    /// The participants, leader first, with their ids (Java and Rust alike).
    ///
    /// # Errors
    ///
    /// ZooKeeper errors.
    pub async fn participants(&self) -> Result<Vec<Participant>> {
        participants(&self.client, self.path(), SELECTOR_LOCK_NAME).await
    }

    /// The current leader, if any.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors.
    pub async fn leader(&self) -> Result<Option<Participant>> {
        Ok(self.participants().await?.into_iter().next())
    }

    /// Runs rounds of [`take_leadership`](Self::take_leadership) in a task: one round now,
    /// then one more per [`requeue`](RunningSelector::requeue), or after every round when
    /// `auto_requeue` is set (Curator's `autoRequeue()`). `work` is called once per round.
    ///
    /// Must be called within a tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
    /// let selector = zk_recipes::LeaderSelector::new(&client, "/app/election", "worker-1")?;
    /// let running = selector.start(true, |token| async move {
    ///     println!("leading with token {token}");
    ///     tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    /// });
    /// // ...
    /// let ended = running.close().await; // Ok(()) unless the session was lost
    /// # Ok(()) }
    /// ```
    pub fn start<F, Fut>(self, auto_requeue: bool, mut work: F) -> RunningSelector
    where
        F: FnMut(FencingToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let queued = Arc::new(Notify::new());
        queued.notify_one();
        let (leading_tx, leading) = watch::channel(false);
        let (end_tx, end) = watch::channel(None);
        let notify = queued.clone();
        let selector = self.clone();
        let task = tokio::spawn(async move {
            loop {
                notify.notified().await;
                let round = selector
                    .take_leadership_with_token(|token| {
                        leading_tx.send_replace(true);
                        work(token)
                    })
                    .await;
                leading_tx.send_replace(false);
                match round {
                    Ok(Leadership::Lost(LossReason::SessionLost)) => {
                        end_tx.send_replace(Some(Error::SessionLost(
                            zk_client::Error::SessionExpired,
                        )));
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "leader selector stopped");
                        end_tx.send_replace(Some(e));
                        return;
                    }
                }
                if auto_requeue {
                    notify.notify_one();
                }
            }
        });
        RunningSelector {
            selector: self,
            queued,
            leading,
            end,
            task,
        }
    }
}

/// A [`LeaderSelector`] running rounds in a task (see [`LeaderSelector::start`]). Dropping
/// it stops the task (a round in progress is cancelled and our node removed in the
/// background).
#[derive(Debug)]
pub struct RunningSelector {
    selector: LeaderSelector,
    queued: Arc<Notify>,
    leading: watch::Receiver<bool>,
    end: watch::Receiver<Option<Error>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSelector {
    /// Queues one more round (Curator's `requeue`); several calls before the next round
    /// count once.
    pub fn requeue(&self) {
        self.queued.notify_one();
    }

    /// `true` while our work runs as leader.
    pub fn has_leadership(&self) -> bool {
        *self.leading.borrow()
    }

    /// Resolves when we become leader (immediately if we are).
    ///
    /// # Errors
    ///
    /// Why the selector stopped, if it stops first (e.g. [`Error::SessionLost`]).
    pub async fn await_leadership(&self) -> Result<()> {
        let mut leading = self.leading.clone();
        let mut end = self.end.clone();
        loop {
            if *leading.borrow_and_update() {
                return Ok(());
            }
            if let Some(e) = end.borrow_and_update().clone() {
                return Err(e);
            }
            tokio::select! {
                changed = leading.changed() => if changed.is_err() { return Err(self.ended()) },
                changed = end.changed() => if changed.is_err() { return Err(self.ended()) },
            }
        }
    }

    fn ended(&self) -> Error {
        self.end.borrow().clone().unwrap_or(Error::Closed)
    }

    /// The selector.
    pub fn selector(&self) -> &LeaderSelector {
        &self.selector
    }

    /// Stops: cancels a round in progress (its node is removed in the background, as when a
    /// [`LockGuard`](crate::LockGuard) is dropped), and says how the selector ended.
    ///
    /// # Errors
    ///
    /// Why the selector had stopped on its own before (e.g. [`Error::SessionLost`]).
    pub async fn close(mut self) -> Result<()> {
        self.task.abort();
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        let _ = task.await;
        let ended = self.end.borrow().clone();
        ended.map_or(Ok(()), Err)
    }
}

impl Drop for RunningSelector {
    fn drop(&mut self) {
        self.task.abort();
    }
}
