//! [`MultiLock`]: several locks held as one, all or nothing (Curator's
//! `InterProcessMultiLock`).
//!
//! Each lock keeps its own layout (a [`Mutex`] per path: Curator's `InterProcessMutex`), so a
//! Java `InterProcessMultiLock` or `InterProcessMutex` on any of the paths excludes us and
//! we exclude it. The locks are taken in the given order and released in reverse; if one
//! cannot be taken, those already held are released before the call returns. Every
//! participant should list shared paths in the same order, or two multi-locks can wait for
//! each other (use [`try_acquire`](MultiLock::try_acquire) otherwise).
//!
//! ```no_run
//! use zk_recipes::{MultiLock, Mutex};
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let both = MultiLock::new(vec![
//!     Mutex::new(&client, "/locks/account-1")?,
//!     Mutex::new(&client, "/locks/account-2")?,
//! ])?;
//! let guard = both.acquire().await?;
//! // ... move money between the two accounts ...
//! guard.release().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::lock::{FencingToken, LockGuard, Mutex};
use crate::policy::LossReason;

/// Several [`Mutex`]es taken and released as one. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MultiLock {
    locks: Vec<Mutex>,
}

impl MultiLock {
    /// A multi-lock over `locks`, taken in this order.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] for no locks.
    pub fn new(locks: Vec<Mutex>) -> Result<MultiLock> {
        if locks.is_empty() {
            return Err(Error::InvalidState("a multi-lock needs at least one lock"));
        }
        Ok(MultiLock { locks })
    }

    /// The locks' paths, in acquisition order.
    pub fn paths(&self) -> Vec<&str> {
        self.locks.iter().map(Mutex::path).collect()
    }

    /// Waits until every lock is ours. On an error, the locks already held are released
    /// first; dropping the future releases them in the background.
    ///
    /// # Errors
    ///
    /// As [`Mutex::acquire`].
    pub async fn acquire(&self) -> Result<MultiLockGuard> {
        let mut guards = Vec::with_capacity(self.locks.len());
        for lock in &self.locks {
            match lock.acquire().await {
                Ok(guard) => guards.push(guard),
                Err(e) => {
                    release_all(guards).await;
                    return Err(e);
                }
            }
        }
        Ok(MultiLockGuard { guards })
    }

    /// Like [`acquire`](Self::acquire), giving up after `timeout` (for all of them) with
    /// `Ok(None)`; then nothing is held.
    ///
    /// # Errors
    ///
    /// As [`Mutex::acquire`].
    pub async fn try_acquire(&self, timeout: Duration) -> Result<Option<MultiLockGuard>> {
        let deadline = Instant::now() + timeout;
        let mut guards = Vec::with_capacity(self.locks.len());
        for lock in &self.locks {
            let left = deadline.saturating_duration_since(Instant::now());
            match lock.try_acquire(left).await {
                Ok(Some(guard)) => guards.push(guard),
                Ok(None) => {
                    release_all(guards).await;
                    return Ok(None);
                }
                Err(e) => {
                    release_all(guards).await;
                    return Err(e);
                }
            }
        }
        Ok(Some(MultiLockGuard { guards }))
    }
}

/// Releases in reverse order, logging failures (such a node goes with the session).
async fn release_all(guards: Vec<LockGuard>) {
    for guard in guards.into_iter().rev() {
        if let Err(e) = guard.release().await {
            tracing::warn!(error = %e, "could not release a lock of a multi-lock");
        }
    }
}

/// Proof of holding every lock of a [`MultiLock`]; dropping it releases them in the
/// background.
#[derive(Debug)]
#[must_use = "dropping the guard releases the locks"]
pub struct MultiLockGuard {
    guards: Vec<LockGuard>,
}

impl MultiLockGuard {
    /// The guard of each lock, in acquisition order.
    pub fn guards(&self) -> &[LockGuard] {
        &self.guards
    }

    /// Each lock's [`FencingToken`], in acquisition order.
    pub fn fencing_tokens(&self) -> Vec<FencingToken> {
        self.guards.iter().map(LockGuard::fencing_token).collect()
    }

    /// `true` once any of the holds can no longer be trusted.
    pub fn is_lost(&self) -> bool {
        self.guards.iter().any(LockGuard::is_lost)
    }

    /// Resolves when any of the holds can no longer be trusted (see [`LockGuard::lost`]),
    /// with that lock's reason. Does not borrow the guard.
    pub fn lost(&self) -> impl Future<Output = LossReason> + Send + 'static + use<> {
        let losses: Vec<_> = self.guards.iter().map(|g| Box::pin(g.lost())).collect();
        async move { futures_select_first(losses).await }
    }

    /// Releases every lock, in reverse order.
    ///
    /// # Errors
    ///
    /// The first error (the other locks are still released).
    pub async fn release(self) -> Result<()> {
        let mut first = None;
        for guard in self.guards.into_iter().rev() {
            if let Err(e) = guard.release().await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// The first of `futures` to finish.
async fn futures_select_first<F>(futures: Vec<std::pin::Pin<Box<F>>>) -> LossReason
where
    F: Future<Output = LossReason>,
{
    let mut futures = futures;
    std::future::poll_fn(move |cx| {
        for future in futures.iter_mut() {
            if let std::task::Poll::Ready(reason) = future.as_mut().poll(cx) {
                return std::task::Poll::Ready(reason);
            }
        }
        std::task::Poll::Pending
    })
    .await
}
