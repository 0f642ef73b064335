//! [`DistributedDelayQueue`]: items that come out only once their time has come,
//! node-compatible with Curator's `DistributedDelayQueue`.
//!
//! An item is named `queue-|<due time>|<seq>`, the due time in milliseconds since the Unix
//! epoch as (at least eight) upper-case hex digits; data and delivery as in
//! [`DistributedQueue`] (Curator's envelope, at-most-once or leased takes). Consumers take
//! the due items earliest first and, when none is due, wait for a change or for the next due
//! time, whichever comes first.
//!
//! ```no_run
//! use std::time::Duration;
//! use zk_recipes::DistributedDelayQueue;
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let reminders = DistributedDelayQueue::new(&client, "/app/reminders")?;
//! reminders.put_after(b"follow up", Duration::from_secs(60)).await?;
//! let due = reminders.queue().take().await?; // about a minute later
//! # let _ = due;
//! # Ok(()) }
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zk_client::Client;

use crate::error::Result;
use crate::queue::{
    DistributedQueue, Order, QUEUE_ITEM_PREFIX, SEPARATOR, encode_items, now_millis,
};

/// A delay queue (Curator's `DistributedDelayQueue`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct DistributedDelayQueue {
    queue: DistributedQueue,
}

/// Curator's `epochToString`: `|<%08X>|`.
pub fn delay_name(due_millis: u64) -> String {
    format!("{QUEUE_ITEM_PREFIX}{SEPARATOR}{due_millis:08X}{SEPARATOR}")
}

impl DistributedDelayQueue {
    /// The delay queue at `path`, at-most-once takes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`](crate::Error::InvalidPath) for a malformed path.
    pub fn new(client: &Client, path: &str) -> Result<DistributedDelayQueue> {
        Ok(DistributedDelayQueue {
            queue: DistributedQueue::new(client, path)?.ordered(Order::Delay),
        })
    }

    /// The delay queue at `path` with item locks under `lock_path` (leased takes).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`](crate::Error::InvalidPath) for a malformed path.
    pub fn with_lock_path(
        client: &Client,
        path: &str,
        lock_path: &str,
    ) -> Result<DistributedDelayQueue> {
        Ok(DistributedDelayQueue {
            queue: DistributedQueue::with_lock_path(client, path, lock_path)?.ordered(Order::Delay),
        })
    }

    /// Adds an item due at `due` (Curator's `put(item, delayUntilEpoch)`); returns its
    /// node's path. A time in the past is due at once.
    ///
    /// # Errors
    ///
    /// As [`DistributedQueue::put`].
    pub async fn put(&self, data: &[u8], due: SystemTime) -> Result<String> {
        let millis = due
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.queue
            .put_named(&delay_name(millis), &encode_items(&[data]))
            .await
    }

    /// Adds an item due `delay` from now.
    ///
    /// # Errors
    ///
    /// As [`DistributedQueue::put`].
    pub async fn put_after(&self, data: &[u8], delay: Duration) -> Result<String> {
        let millis =
            now_millis().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        self.queue
            .put_named(&delay_name(millis), &encode_items(&[data]))
            .await
    }

    /// The underlying queue, to take from (only due items come out, earliest first).
    pub fn queue(&self) -> &DistributedQueue {
        &self.queue
    }
}
