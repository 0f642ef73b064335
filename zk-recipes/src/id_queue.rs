//! [`DistributedIdQueue`]: a FIFO queue whose items carry an id, so that queued items can be
//! removed by id, node-compatible with Curator's `DistributedIdQueue`.
//!
//! An item is named `queue-|<id>|<seq>` (`/` and `|` in the id become `_`); data and
//! delivery as in [`DistributedQueue`]; items come out in put order.
//!
//! ```no_run
//! use zk_recipes::DistributedIdQueue;
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let jobs = DistributedIdQueue::new(&client, "/app/jobs")?;
//! jobs.put(b"render", "order-17").await?;
//! assert_eq!(jobs.remove("order-17").await?, 1); // cancelled before anyone took it
//! # Ok(()) }
//! ```

use zk_client::Client;

use crate::error::Result;
use crate::paths;
use crate::queue::{DistributedQueue, Order, QUEUE_ITEM_PREFIX, SEPARATOR, encode_items, item_id};

/// An id queue (Curator's `DistributedIdQueue`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct DistributedIdQueue {
    queue: DistributedQueue,
}

/// Curator's `fixId`: `/` and `|` become `_`.
fn fix_id(id: &str) -> String {
    id.replace(['/', SEPARATOR], "_")
}

impl DistributedIdQueue {
    /// The id queue at `path`, at-most-once takes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`](crate::Error::InvalidPath) for a malformed path.
    pub fn new(client: &Client, path: &str) -> Result<DistributedIdQueue> {
        Ok(DistributedIdQueue {
            queue: DistributedQueue::new(client, path)?.ordered(Order::Id),
        })
    }

    /// The id queue at `path` with item locks under `lock_path` (leased takes).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`](crate::Error::InvalidPath) for a malformed path.
    pub fn with_lock_path(
        client: &Client,
        path: &str,
        lock_path: &str,
    ) -> Result<DistributedIdQueue> {
        Ok(DistributedIdQueue {
            queue: DistributedQueue::with_lock_path(client, path, lock_path)?.ordered(Order::Id),
        })
    }

    /// Adds an item with `id` (several items may share one); returns its node's path.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`](crate::Error::InvalidValue) for an empty id; as
    /// [`DistributedQueue::put`].
    pub async fn put(&self, data: &[u8], id: &str) -> Result<String> {
        if id.is_empty() {
            return Err(crate::Error::InvalidValue(
                "an empty queue item id".to_owned(),
            ));
        }
        let name = format!("{QUEUE_ITEM_PREFIX}{SEPARATOR}{}{SEPARATOR}", fix_id(id));
        self.queue.put_named(&name, &encode_items(&[data])).await
    }

    /// Removes every queued item with `id` (Curator's `remove`); returns how many were
    /// removed (items already taken are not counted).
    ///
    /// # Errors
    ///
    /// ZooKeeper errors.
    pub async fn remove(&self, id: &str) -> Result<usize> {
        let id = fix_id(id);
        let client = self.queue.client();
        let mut removed = 0;
        for name in self.queue.items().await? {
            if item_id(&name).0 == id {
                let path = paths::join(self.queue.path(), &name);
                match paths::retrying(|| client.delete(&path, None)).await {
                    Ok(()) => removed += 1,
                    Err(zk_client::Error::NoNode) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(removed)
    }

    /// The underlying queue, to take from (put order).
    pub fn queue(&self) -> &DistributedQueue {
        &self.queue
    }
}
