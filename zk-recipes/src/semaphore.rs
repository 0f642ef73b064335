//! [`Semaphore`]: at most N holders at once, node-compatible with Curator's
//! `InterProcessSemaphoreV2`.
//!
//! Layout: `<path>/locks` is a [`Mutex`] that serialises acquirers; `<path>/leases` holds one
//! protected ephemeral sequential node per lease, `_c_<uuid>-lease-<seq>`. An acquirer takes
//! the internal lock, creates its lease node, and waits (children watch on `leases`) until
//! there are at most N lease nodes, then releases the internal lock. A lease ends when it is
//! returned, its guard dropped, or its session ends. A Java service using
//! `InterProcessSemaphoreV2` with the same path and N shares the leases.
//!
//! ```no_run
//! use zk_recipes::Semaphore;
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let slots = Semaphore::new(&client, "/app/semaphores/gpu", 4)?;
//! let lease = slots.acquire().await?;
//! // ... use one of the 4 slots ...
//! lease.release().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use zk_client::Client;

use crate::error::{Error, Result};
use crate::lock::{Contender, LockGuard, Mutex};
use crate::paths;

/// The internal lock's child (Curator's `LOCK_PARENT`).
pub const LOCK_PARENT: &str = "locks";
/// The leases' parent (Curator's `LEASE_PARENT`).
pub const LEASE_PARENT: &str = "leases";
/// The lease node name (Curator's `LEASE_BASE_NAME`).
pub const LEASE_NAME: &str = "lease-";

/// A counting semaphore. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Semaphore {
    client: Client,
    lock: Mutex,
    leases: String,
    max_leases: usize,
    data: Vec<u8>,
}

impl Semaphore {
    /// A semaphore at `path` with `max_leases` leases (every participant must use the same
    /// number).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed path; [`Error::InvalidState`] for 0 leases.
    pub fn new(client: &Client, path: &str, max_leases: usize) -> Result<Semaphore> {
        paths::validate_recipe_path(path)?;
        if max_leases == 0 {
            return Err(Error::InvalidState("a semaphore needs at least one lease"));
        }
        Ok(Semaphore {
            client: client.clone(),
            lock: Mutex::new(client, &paths::join(path, LOCK_PARENT))?,
            leases: paths::join(path, LEASE_PARENT),
            max_leases,
            data: Vec::new(),
        })
    }

    /// Sets the data stored in our lease nodes.
    pub fn node_data(mut self, data: impl Into<Vec<u8>>) -> Semaphore {
        self.data = data.into();
        self
    }

    /// The current lease node names.
    pub async fn participants(&self) -> Result<Vec<String>> {
        match paths::retrying(|| self.client.get_children(&self.leases)).await {
            Ok(mut children) => {
                paths::sort_children(&mut children, LEASE_NAME);
                Ok(children)
            }
            Err(zk_client::Error::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits for a lease. Dropping the future removes whatever it created.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors (e.g. the session expired), [`Error::NodeVanished`] if our lease
    /// node disappeared while we waited. Nothing of ours is left behind.
    pub async fn acquire(&self) -> Result<Lease> {
        let mut contender = Contender::new(&self.client, &self.leases);
        let mut internal = None;
        let result = self.acquire_with(&mut contender, &mut internal).await;
        if result.is_err() {
            give_up(&mut contender, internal).await;
        }
        result
    }

    /// Like [`acquire`](Self::acquire), giving up after `timeout` with `Ok(None)`: our lease
    /// node is gone and the internal lock released when it returns (a contender for the
    /// internal lock that was still queued is removed in the background).
    pub async fn try_acquire(&self, timeout: Duration) -> Result<Option<Lease>> {
        let mut contender = Contender::new(&self.client, &self.leases);
        let mut internal = None;
        let result =
            tokio::time::timeout(timeout, self.acquire_with(&mut contender, &mut internal)).await;
        match result {
            Ok(Ok(lease)) => Ok(Some(lease)),
            Ok(Err(e)) => {
                give_up(&mut contender, internal).await;
                Err(e)
            }
            Err(_) => {
                give_up(&mut contender, internal).await;
                Ok(None)
            }
        }
    }

    /// Waits for `qty` leases, one after the other as Curator's `acquire(qty)` does; if one
    /// fails, the leases already taken are returned first. Dropping the future returns
    /// whatever it took (in the background).
    ///
    /// Two callers each holding some leases while waiting for more can block each other
    /// (as with Curator); use [`try_acquire_many`](Self::try_acquire_many) when several
    /// callers take more than one lease.
    ///
    /// ```no_run
    /// # async fn demo(slots: zk_recipes::Semaphore) -> Result<(), zk_recipes::Error> {
    /// let leases = slots.acquire_many(2).await?;
    /// // ... use two slots ...
    /// for lease in leases {
    ///     lease.release().await?;
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] for 0 or more than the semaphore's leases; as
    /// [`acquire`](Self::acquire).
    pub async fn acquire_many(&self, qty: usize) -> Result<Vec<Lease>> {
        self.check_qty(qty)?;
        let mut leases = Vec::with_capacity(qty);
        for _ in 0..qty {
            match self.acquire().await {
                Ok(lease) => leases.push(lease),
                Err(e) => {
                    return_all(leases).await;
                    return Err(e);
                }
            }
        }
        Ok(leases)
    }

    /// Like [`acquire_many`](Self::acquire_many), giving up after `timeout` (for all of
    /// them) with `Ok(None)`: then every lease taken so far has been returned.
    ///
    /// # Errors
    ///
    /// As [`acquire_many`](Self::acquire_many).
    pub async fn try_acquire_many(
        &self,
        qty: usize,
        timeout: Duration,
    ) -> Result<Option<Vec<Lease>>> {
        self.check_qty(qty)?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut leases = Vec::with_capacity(qty);
        for _ in 0..qty {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.try_acquire(left).await {
                Ok(Some(lease)) => leases.push(lease),
                Ok(None) => {
                    return_all(leases).await;
                    return Ok(None);
                }
                Err(e) => {
                    return_all(leases).await;
                    return Err(e);
                }
            }
        }
        Ok(Some(leases))
    }

    fn check_qty(&self, qty: usize) -> Result<()> {
        if qty == 0 || qty > self.max_leases {
            return Err(Error::InvalidState(
                "lease count must be between 1 and the semaphore's maximum",
            ));
        }
        Ok(())
    }

    /// Takes the internal lock (kept in `internal` so that the caller can release it if
    /// this future is abandoned), then a lease.
    async fn acquire_with(
        &self,
        contender: &mut Contender,
        internal: &mut Option<LockGuard>,
    ) -> Result<Lease> {
        let client = &self.client;
        *internal = Some(self.lock.acquire().await?);
        let (path, _) = paths::create_protected_sequential(
            client,
            &self.leases,
            LEASE_NAME,
            &self.data,
            &contender.id,
        )
        .await?;
        contender.node = Some(path.clone());
        let name = paths::node_name(&path).to_owned();
        loop {
            let (children, _, watcher) =
                paths::retrying(|| client.get_children_watch(&self.leases)).await?;
            if !children.contains(&name) {
                return Err(Error::NodeVanished(path));
            }
            if children.len() <= self.max_leases {
                break;
            }
            // A lease came or went (or the session ended: the next call says so).
            let _event = watcher.await;
        }
        contender.armed = false;
        if let Some(internal) = internal.take() {
            internal.release().await?;
        }
        tracing::info!(%path, "semaphore lease acquired");
        Ok(Lease {
            client: client.clone(),
            path,
            released: false,
        })
    }
}

/// Returns every lease (logging failures: a lease that cannot be deleted ends with the
/// session).
async fn return_all(leases: Vec<Lease>) {
    for lease in leases {
        if let Err(e) = lease.release().await {
            tracing::warn!(error = %e, "could not return a semaphore lease");
        }
    }
}

/// Removes our lease node and releases the internal lock, waiting for both.
async fn give_up(contender: &mut Contender, internal: Option<LockGuard>) {
    contender.cleanup().await;
    if let Some(internal) = internal {
        if let Err(e) = internal.release().await {
            tracing::warn!(error = %e, "could not release the semaphore's internal lock");
        }
    }
}

/// A held lease of a [`Semaphore`]: return it with [`release`](Lease::release); dropping it
/// returns it in the background.
#[derive(Debug)]
#[must_use = "dropping the lease returns it"]
pub struct Lease {
    client: Client,
    path: String,
    released: bool,
}

impl Lease {
    /// Our lease node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Returns the lease (deletes our node).
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        tracing::info!(path = %self.path, "semaphore lease returned");
        paths::delete_quietly(&self.client, &self.path).await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.released {
            let client = self.client.clone();
            let path = self.path.clone();
            paths::spawn_cleanup("semaphore lease", async move {
                paths::delete_quietly(&client, &path).await
            });
        }
    }
}
