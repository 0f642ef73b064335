//! [`DistributedQueue`] and [`DistributedPriorityQueue`]: FIFO (and priority) queues,
//! node-compatible with Curator's `DistributedQueue` / `DistributedPriorityQueue`.
//!
//! # Layout
//!
//! * The queue node (and the lock path) are **persistent** nodes with container ancestors,
//!   as Curator's `start()` creates them ([`DistributedQueue::start`]; puts and takes create
//!   them the same way when missing). A container would be removed by the server once the
//!   queue runs empty, and a Curator consumer watching it would then never see new items.
//! * An item is a persistent sequential child of the queue node named `queue-<seq>`
//!   (Curator's `QUEUE_ITEM_NAME`). Its data is Curator's `ItemSerializer` envelope
//!   ([`encode_items`]): a 4-byte version `0x00010001`, then per payload `0x01`, a 4-byte
//!   big-endian length and the bytes, then `0x02`. One node may hold several payloads
//!   (Curator's `putMulti`, our [`put_multi`](DistributedQueue::put_multi)); data that is not
//!   such an envelope is taken as one raw payload.
//! * A priority item is named `queue-<p><seq>` where `<p>` is Curator's encoding of the
//!   32-bit priority: `1` then eight upper-case hex digits for `priority >= 0`, `0` then the
//!   eight hex digits of the two's complement for a negative one. Lower priorities come out
//!   first; equal priorities in put order.
//! * Consumers take the children in plain lexical order (Curator's `Collections.sort`),
//!   ignoring foreign children.
//! * In lease mode ([`DistributedQueue::with_lock_path`], Curator's `lockPath`) a consumer
//!   first creates the ephemeral node `<lock_path>/<item name>`; whoever creates it holds the
//!   item. Finishing deletes the item and the lock node in one transaction.
//!
//! # Delivery guarantees
//!
//! * [`take`](DistributedQueue::take) without a lock path is Curator's default, **at most
//!   once**: the item is read, then deleted (version-checked); the consumer whose delete
//!   succeeds owns it. A consumer that crashes (or is cancelled, or sees its delete reply
//!   lost) after the delete loses the item.
//! * [`take_leased`](DistributedQueue::take_leased) (lock path required) is **at least once,
//!   and exactly once while the holder's session lives**: the item stays in the queue while
//!   it is processed, guarded by the holder's ephemeral lock node. If the holder crashes or its
//!   session expires, the lock node vanishes and another consumer gets the item;
//!   [`LeasedItem::complete`] then fails with [`Error::NodeVanished`] so the old holder learns
//!   that its work may be repeated. Nobody else is given the item while the lock node exists.
//!
//! Waiting is event-driven: a blocked consumer holds a child watch on the queue node, and
//! looks again only when it fires. A blocked *leased* consumer waits in line (an ephemeral
//! `waiter-` node under the lock path, as a lock's contenders): only the first in line
//! watches the queue and the lock path, every other one the waiter before it, so N waiting
//! consumers are not all woken by every change (Curator's consumers are; they ignore our
//! waiter nodes, which never look like items or item locks).
//!
//! ```no_run
//! use zk_recipes::DistributedQueue;
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let queue = DistributedQueue::with_lock_path(&client, "/app/jobs", "/app/jobs-locks")?;
//! queue.put(b"resize image 42").await?;
//!
//! let item = queue.take_leased().await?;
//! println!("working on {:?}", item.data());
//! item.complete().await?; // removes the item; a crash before this hands it to someone else
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use tokio::time::Instant;
use zk_client::{Client, CreateMode, CreateOptions, Stat};

use crate::error::{Error, Result};
use crate::paths;

/// The name prefix of a queue item (Curator's `QUEUE_ITEM_NAME`).
pub const QUEUE_ITEM_PREFIX: &str = "queue-";

/// Curator's encoding of an item priority in the node name (`DistributedPriorityQueue`):
/// `1` + 8 hex digits for non-negative priorities, `0` + 8 hex digits of the two's
/// complement for negative ones, so that lexical order is numeric order.
///
/// ```
/// use zk_recipes::queue::priority_to_string;
/// assert_eq!(priority_to_string(5), "100000005");
/// assert_eq!(priority_to_string(-1), "0FFFFFFFF");
/// assert!(priority_to_string(-2) < priority_to_string(-1));
/// assert!(priority_to_string(-1) < priority_to_string(0));
/// ```
pub fn priority_to_string(priority: i32) -> String {
    let flag = if priority >= 0 { '1' } else { '0' };
    format!("{flag}{:08X}", priority as u32)
}

/// Curator's `ItemSerializer` version word.
const ENVELOPE_VERSION: u32 = 0x0001_0001;
const ITEM_OPCODE: u8 = 0x01;
const EOF_OPCODE: u8 = 0x02;

/// Curator's `ItemSerializer` envelope around `payloads` (the data of one queue node).
///
/// ```
/// use zk_recipes::queue::{decode_items, encode_items};
/// let bytes = encode_items(&[b"a", b"bc"]);
/// assert_eq!(bytes, [0, 1, 0, 1, 1, 0, 0, 0, 1, b'a', 1, 0, 0, 0, 2, b'b', b'c', 2]);
/// assert_eq!(decode_items(&bytes), Some(vec![b"a".to_vec(), b"bc".to_vec()]));
/// ```
pub fn encode_items(payloads: &[&[u8]]) -> Vec<u8> {
    let size = 5 + payloads.iter().map(|p| 5 + p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&ENVELOPE_VERSION.to_be_bytes());
    for payload in payloads {
        out.push(ITEM_OPCODE);
        // A ZooKeeper node holds far less than 2 GiB; saturate rather than wrap.
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(payload);
    }
    out.push(EOF_OPCODE);
    out
}

/// The payloads of a Curator `ItemSerializer` envelope; `None` if `bytes` is not one.
pub fn decode_items(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let (version, mut rest) = bytes.split_first_chunk::<4>()?;
    if u32::from_be_bytes(*version) != ENVELOPE_VERSION {
        return None;
    }
    let mut items = Vec::new();
    loop {
        let (opcode, after) = rest.split_first()?;
        match *opcode {
            EOF_OPCODE => return after.is_empty().then_some(items),
            ITEM_OPCODE => {
                let (len, after) = after.split_first_chunk::<4>()?;
                let len = usize::try_from(i32::from_be_bytes(*len)).ok()?;
                if after.len() < len {
                    return None;
                }
                let (item, after) = after.split_at(len);
                items.push(item.to_vec());
                rest = after;
            }
            _ => return None,
        }
    }
}

/// The payloads of a queue node: the envelope's, or the raw data as one payload.
fn payloads(bytes: &[u8]) -> Vec<Vec<u8>> {
    decode_items(bytes).unwrap_or_else(|| vec![bytes.to_vec()])
}

/// A distributed FIFO queue. Cheap to clone (clones share the payloads already taken from
/// multi-payload nodes and not yet returned); every call works on the client's session.
#[derive(Debug, Clone)]
pub struct DistributedQueue {
    client: Client,
    path: String,
    lock_path: Option<String>,
    /// Payloads of a taken multi-payload node, returned by the next takes.
    buffered: Arc<StdMutex<VecDeque<Vec<u8>>>>,
    /// How items are ordered (and when they are due).
    order: Order,
}

/// The item order of a queue flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Lexical (FIFO; priority items sort by their priority prefix).
    Lexical,
    /// Curator's delay queue: by the due time in the name; items not yet due wait.
    Delay,
    /// Curator's id queue: by the name without its `|id|` part (put order).
    Id,
}

impl DistributedQueue {
    /// The queue at `path`, at-most-once takes (Curator's default).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed path.
    pub fn new(client: &Client, path: &str) -> Result<DistributedQueue> {
        paths::validate_recipe_path(path)?;
        Ok(DistributedQueue {
            client: client.clone(),
            path: path.to_owned(),
            lock_path: None,
            buffered: Arc::default(),
            order: Order::Lexical,
        })
    }

    /// The queue at `path` with item locks under `lock_path` (Curator's `lockPath`): takes
    /// lock the item with an ephemeral node first, so a crashed consumer loses nothing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed path.
    pub fn with_lock_path(
        client: &Client,
        path: &str,
        lock_path: &str,
    ) -> Result<DistributedQueue> {
        paths::validate_recipe_path(lock_path)?;
        let mut queue = DistributedQueue::new(client, path)?;
        queue.lock_path = Some(lock_path.to_owned());
        Ok(queue)
    }

    /// The queue node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// This queue with another item order (for the delay and id queues).
    pub(crate) fn ordered(mut self, order: Order) -> DistributedQueue {
        self.order = order;
        self
    }

    /// The client.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Sets the queue up as Curator's `DistributedQueue.start()` does: creates the queue node
    /// (and the lock path, if any) as **persistent** nodes, missing ancestors as containers.
    /// Optional (puts and takes create what is missing), but a queue set up this way never
    /// disappears when it runs empty, so Curator consumers that watch it keep working.
    ///
    /// ```no_run
    /// # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
    /// let queue = zk_recipes::DistributedQueue::new(&client, "/app/jobs")?;
    /// queue.start().await?;
    /// assert!(client.exists("/app/jobs").await?.is_some());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// ZooKeeper errors (retryable ones were retried a few times first).
    pub async fn start(&self) -> Result<()> {
        paths::ensure_persistent(&self.client, &self.path).await?;
        if let Some(lock_path) = &self.lock_path {
            paths::ensure_persistent(&self.client, lock_path).await?;
        }
        Ok(())
    }

    /// Adds an item; returns its node's path.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors. When the error's
    /// [`outcome_unknown`](zk_client::Error::outcome_unknown) is `true` the item may have
    /// been added anyway; it is not retried so that it is never added twice.
    pub async fn put(&self, data: &[u8]) -> Result<String> {
        self.put_named(QUEUE_ITEM_PREFIX, &encode_items(&[data]))
            .await
    }

    /// Adds several payloads as one node (Curator's `putMulti`): they are taken together,
    /// in order. Returns the node's path.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    pub async fn put_multi(&self, payloads: &[&[u8]]) -> Result<String> {
        self.put_named(QUEUE_ITEM_PREFIX, &encode_items(payloads))
            .await
    }

    pub(crate) async fn put_named(&self, name: &str, data: &[u8]) -> Result<String> {
        let item = paths::join(&self.path, name);
        let options = CreateOptions::new(CreateMode::PersistentSequential);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            match self.client.create(&item, data, &options).await {
                Ok((path, _)) => {
                    tracing::debug!(%path, "queued an item");
                    return Ok(path);
                }
                Err(zk_client::Error::NoNode) if attempt < 5 => {
                    paths::ensure_persistent(&self.client, &self.path).await?;
                }
                Err(e) if e.is_retryable() && !e.outcome_unknown() && attempt < 10 => {
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The items now in the queue, in take order (node names).
    pub async fn items(&self) -> Result<Vec<String>> {
        match paths::retrying(|| self.client.get_children(&self.path)).await {
            Ok(children) => Ok(self.order.arrange(children).0),
            Err(zk_client::Error::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes and returns the first item, waiting for one if the queue is empty.
    ///
    /// Without a lock path this is **at most once** (see the [module docs](self)): the item
    /// is gone from ZooKeeper before it is returned. With a lock path, locked items (being
    /// processed by others) are skipped and the item is removed together with our lock.
    ///
    /// Cancellation: dropping the future while it waits is harmless; dropping it after the
    /// delete was sent may lose that one item (at most once).
    ///
    /// # Errors
    ///
    /// ZooKeeper errors, e.g. when the session ends while waiting.
    pub async fn take(&self) -> Result<Vec<u8>> {
        self.take_until(None)
            .await
            .map(|item| item.unwrap_or_default())
    }

    /// Like [`take`](Self::take), waiting at most `timeout`: `Ok(None)` if no item came.
    /// The timeout only cuts the wait, never a delete in flight.
    pub async fn take_timeout(&self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        self.take_until(Some(Instant::now() + timeout)).await
    }

    /// The next payload of a multi-payload node taken earlier, if any.
    fn next_buffered(&self) -> Option<Vec<u8>> {
        self.buffered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front()
    }

    /// Returns the first payload and keeps the others for the next takes.
    fn deliver(&self, mut items: Vec<Vec<u8>>) -> Option<Vec<u8>> {
        if items.is_empty() {
            return None;
        }
        let first = items.remove(0);
        self.buffered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(items);
        Some(first)
    }

    async fn take_until(&self, deadline: Option<Instant>) -> Result<Option<Vec<u8>>> {
        if let Some(payload) = self.next_buffered() {
            return Ok(Some(payload));
        }
        if self.lock_path.is_some() {
            loop {
                let Some(item) = self.take_leased_until(deadline).await? else {
                    return Ok(None);
                };
                let items = item.items.clone();
                item.complete().await?;
                // An empty envelope (a putMulti of nothing) is consumed and skipped.
                if let Some(first) = self.deliver(items) {
                    return Ok(Some(first));
                }
            }
        }
        loop {
            let (children, watcher) = self.children_watch(&self.path).await?;
            let (ready, due) = self.order.arrange(children);
            for name in ready {
                let item = paths::join(&self.path, &name);
                let (data, stat) = match paths::retrying(|| self.client.get_data(&item)).await {
                    Ok(found) => found,
                    Err(zk_client::Error::NoNode) => continue,
                    Err(e) => return Err(e.into()),
                };
                match self.client.delete(&item, Some(stat.version)).await {
                    Ok(()) => {
                        tracing::debug!(%item, "took an item (at most once)");
                        if let Some(first) = self.deliver(payloads(&data)) {
                            return Ok(Some(first));
                        }
                    }
                    // Another consumer won it.
                    Err(zk_client::Error::NoNode | zk_client::Error::BadVersion) => continue,
                    // Ours or not, we cannot tell: at most once means we do not retry.
                    Err(e) if e.is_retryable() => {
                        tracing::warn!(%item, error = %e, "delete of a taken item unanswered; \
                            the item may be lost (at-most-once take)");
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if !wait_event(earliest(deadline, due), watcher, None).await && expired(deadline) {
                return Ok(None);
            }
        }
    }

    /// Locks the first unlocked item and returns it without removing it: finish with
    /// [`LeasedItem::complete`] (removes it) or [`LeasedItem::abandon`] (puts it back for
    /// anyone). Waits for an item if there is none free.
    ///
    /// A consumer that crashes, or whose session expires, while holding an item loses
    /// nothing: its lock node vanishes with the session and the item goes to another
    /// consumer. Cancellation-safe: a lock made by a cancelled call is deleted in the
    /// background.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] if the queue has no lock path; ZooKeeper errors.
    pub async fn take_leased(&self) -> Result<LeasedItem> {
        match self.take_leased_until(None).await? {
            Some(item) => Ok(item),
            None => Err(Error::InvalidState("a wait without deadline ended")),
        }
    }

    /// Like [`take_leased`](Self::take_leased), waiting at most `timeout`: `Ok(None)` if
    /// no item could be locked in time.
    pub async fn take_leased_timeout(&self, timeout: Duration) -> Result<Option<LeasedItem>> {
        self.take_leased_until(Some(Instant::now() + timeout)).await
    }

    async fn take_leased_until(&self, deadline: Option<Instant>) -> Result<Option<LeasedItem>> {
        let Some(lock_dir) = self.lock_path.clone() else {
            return Err(Error::InvalidState("leased takes need a queue lock path"));
        };
        paths::ensure_persistent(&self.client, &lock_dir).await?;
        // Anything free now is taken without waiting in line.
        let children = match paths::retrying(|| self.client.get_children(&self.path)).await {
            Ok(children) => children,
            Err(zk_client::Error::NoNode) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        for name in self.order.arrange(children).0 {
            if let Some(item) = self.try_lock(&lock_dir, &name).await? {
                return Ok(Some(item));
            }
        }
        // Nothing free: wait in line, so that one change wakes one waiter, not all of them.
        let id = paths::ProtectedId::new();
        let mut guard = WaiterGuard {
            client: self.client.clone(),
            lock_dir: lock_dir.clone(),
            id,
            armed: true,
        };
        let (me, _) =
            paths::create_protected_sequential(&self.client, &lock_dir, WAITER_PREFIX, b"", &id)
                .await?;
        let result = self.wait_in_line(&lock_dir, &me, deadline).await;
        // Leave the line; if that fails, the guard retries in the background.
        if paths::delete_quietly(&self.client, &me).await.is_ok() {
            guard.armed = false;
        }
        result
    }

    /// Waits in the line of waiting leased consumers (`waiter-` nodes under the lock path,
    /// like a lock's contenders) until an item could be locked. Only the first waiter watches
    /// the queue and the lock path; every other one watches just the waiter before it, so a
    /// new item or a freed lock wakes one consumer, and each hand-over wakes the next one —
    /// wake-ups grow with the items, not with items × waiting consumers.
    async fn wait_in_line(
        &self,
        lock_dir: &str,
        me: &str,
        deadline: Option<Instant>,
    ) -> Result<Option<LeasedItem>> {
        let my_seq = paths::sequence_number(paths::node_name(me));
        loop {
            let waiters = paths::retrying(|| self.client.get_children(lock_dir)).await?;
            let before = waiters
                .iter()
                .filter(|c| paths::normalize(c).starts_with(WAITER_PREFIX))
                .filter_map(|c| Some((paths::sequence_number(c)?, c)))
                .filter(|(seq, _)| Some(*seq) < my_seq)
                .max_by_key(|(seq, _)| *seq);
            if let Some((_, predecessor)) = before {
                let predecessor = paths::join(lock_dir, predecessor);
                let (stat, watcher) =
                    paths::retrying(|| self.client.exists_watch(&predecessor)).await?;
                if stat.is_some() && !wait_event(deadline, watcher, None).await && expired(deadline)
                {
                    return Ok(None);
                }
                continue;
            }
            // First in line: watch both directories before looking, so that nothing that
            // happens after the look goes unnoticed: a new item, or a lock that vanished.
            let (children, items_watcher) = self.children_watch(&self.path).await?;
            let (_, locks_watcher) = self.children_watch(lock_dir).await?;
            let (ready, due) = self.order.arrange(children);
            for name in ready {
                if let Some(item) = self.try_lock(lock_dir, &name).await? {
                    return Ok(Some(item));
                }
            }
            tracing::trace!(
                lock_dir,
                "first waiting leased consumer, watching the queue"
            );
            if !wait_event(earliest(deadline, due), items_watcher, Some(locks_watcher)).await
                && expired(deadline)
            {
                return Ok(None);
            }
        }
    }

    /// Tries to lock and read item `name`; `None` if someone else holds or took it.
    async fn try_lock(&self, lock_dir: &str, name: &str) -> Result<Option<LeasedItem>> {
        let lock = paths::join(lock_dir, name);
        let item = paths::join(&self.path, name);
        // A token in the lock node tells our lock from any other, even one made by another
        // take on this same session.
        let token = uuid::Uuid::new_v4().hyphenated().to_string();
        let options = CreateOptions::new(CreateMode::Ephemeral);
        // Until we know the outcome, a cancellation must not leave our lock behind (the create
        // may be in flight): the guard removes it in the background if it is ours.
        let mut pending = PendingLock {
            client: self.client.clone(),
            lock: lock.clone(),
            token: token.clone(),
            armed: true,
        };
        let created = paths::retrying(|| {
            let client = self.client.clone();
            let lock = lock.clone();
            let options = options.clone();
            let token = token.clone();
            async move {
                match client.create(&lock, token.as_bytes(), &options).await {
                    Ok((_, stat)) => Ok(Some(stat)),
                    Err(zk_client::Error::NodeExists) => {
                        // Ours after a lost reply, or someone else's.
                        match client.get_data(&lock).await {
                            Ok((data, stat)) if data.as_ref() == token.as_bytes() => Ok(Some(stat)),
                            Ok(_) | Err(zk_client::Error::NoNode) => Ok(None),
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
        })
        .await;
        let lock_stat = match created {
            Ok(Some(stat)) => stat,
            Ok(None) => {
                pending.armed = false;
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        pending.armed = false;
        // From here on the lock is ours: make sure a cancellation or an error removes it.
        let mut held = LeasedItem {
            client: self.client.clone(),
            item,
            lock,
            token,
            lock_stat,
            items: Vec::new(),
            finished: false,
        };
        match paths::retrying(|| self.client.get_data(&held.item)).await {
            Ok((data, _)) => {
                held.items = payloads(&data);
                tracing::debug!(item = %held.item, lock = %held.lock, "leased an item");
                Ok(Some(held))
            }
            Err(zk_client::Error::NoNode) => {
                // Finished by someone just before we locked it.
                held.abandon().await?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn children_watch(&self, path: &str) -> Result<(Vec<String>, zk_client::OneshotWatcher)> {
        for _ in 0..5 {
            match paths::retrying(|| self.client.get_children_watch(path)).await {
                Ok((children, _, watcher)) => return Ok((children, watcher)),
                Err(zk_client::Error::NoNode) => {
                    paths::ensure_persistent(&self.client, path).await?
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::NodeVanished(path.to_owned()))
    }
}

/// The name of a waiting leased consumer's node under the lock path (protected, ephemeral
/// sequential). Curator never lists the lock path, and items are named `queue-`, so the two
/// never mix.
const WAITER_PREFIX: &str = "waiter-";

/// Our place in the line of waiting consumers; removed in the background if dropped while
/// armed (a cancelled wait, or a create whose reply never came).
struct WaiterGuard {
    client: Client,
    lock_dir: String,
    id: paths::ProtectedId,
    armed: bool,
}

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        if self.armed {
            let (client, lock_dir, id) = (self.client.clone(), self.lock_dir.clone(), self.id);
            paths::spawn_cleanup("cancelled queue wait", async move {
                paths::delete_protected(&client, &lock_dir, &id).await
            });
        }
    }
}

/// A lock node being created; removed in the background if dropped while armed.
struct PendingLock {
    client: Client,
    lock: String,
    token: String,
    armed: bool,
}

impl Drop for PendingLock {
    fn drop(&mut self) {
        if self.armed {
            let (client, lock, token) =
                (self.client.clone(), self.lock.clone(), self.token.clone());
            // Sent after the create on the same session, so the server sees the create first.
            paths::spawn_cleanup("cancelled queue lease", async move {
                delete_if_ours(&client, &lock, &token).await
            });
        }
    }
}

/// Deletes the lock node if it holds our token (and has not changed since we read it); a
/// missing node or an ended session counts as done.
async fn delete_if_ours(client: &Client, lock: &str, token: &str) -> Result<()> {
    let stat = match paths::retrying(|| client.get_data(lock)).await {
        Ok((data, stat)) if data.as_ref() == token.as_bytes() => stat,
        Ok(_) | Err(zk_client::Error::NoNode) => return Ok(()),
        Err(e) if e.is_session_terminal() => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    match paths::retrying(|| client.delete(lock, Some(stat.version))).await {
        Ok(()) | Err(zk_client::Error::NoNode | zk_client::Error::BadVersion) => Ok(()),
        Err(e) if e.is_session_terminal() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Waits for one of the watchers to fire; `false` at the deadline.
async fn wait_event(
    deadline: Option<Instant>,
    first: zk_client::OneshotWatcher,
    second: Option<zk_client::OneshotWatcher>,
) -> bool {
    let either = async move {
        match second {
            Some(second) => {
                tokio::select! {
                    _ = first => {}
                    _ = second => {}
                }
            }
            None => {
                let _ = first.await;
            }
        }
    };
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, either).await.is_ok(),
        None => {
            either.await;
            true
        }
    }
}

/// The earlier of a caller's deadline and the time the next delayed item is due.
fn earliest(deadline: Option<Instant>, due: Option<Instant>) -> Option<Instant> {
    match (deadline, due) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `true` once the caller's deadline (if any) has passed.
fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Curator's separator in delay and id item names.
pub(crate) const SEPARATOR: char = '|';

/// The due time (ms since the epoch) in a delay item's name (Curator's `getEpoch`: the hex
/// between the last two separators; 0 when there is none).
pub(crate) fn item_epoch(name: &str) -> u64 {
    let Some(second) = name.rfind(SEPARATOR) else {
        return 0;
    };
    let Some(first) = name[..second].rfind(SEPARATOR) else {
        return 0;
    };
    u64::from_str_radix(&name[first + 1..second], 16).unwrap_or(0)
}

/// An id item's id and its name without the `|id|` part (Curator's `parseId`).
pub(crate) fn item_id(name: &str) -> (&str, String) {
    let Some(first) = name.find(SEPARATOR) else {
        return (name, name.to_owned());
    };
    let Some(second) = name[first + 1..].find(SEPARATOR).map(|i| i + first + 1) else {
        return (name, name.to_owned());
    };
    (
        &name[first + 1..second],
        format!("{}{}", &name[..first], &name[second + 1..]),
    )
}

/// Milliseconds since the Unix epoch now.
pub(crate) fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Order {
    /// The items among `children` that can be taken now, in take order, and when the next
    /// one that is not due yet will be.
    fn arrange(self, children: Vec<String>) -> (Vec<String>, Option<Instant>) {
        let mut items = sorted_items(children);
        match self {
            Order::Lexical => (items, None),
            Order::Id => {
                items.sort_by_cached_key(|name| item_id(name).1);
                (items, None)
            }
            Order::Delay => {
                items.sort_by_key(|name| item_epoch(name));
                let now = now_millis();
                let due = items
                    .iter()
                    .map(|name| item_epoch(name))
                    .find(|epoch| *epoch > now)
                    // A due time too far away to represent: wait for changes only.
                    .and_then(|epoch| {
                        Instant::now().checked_add(Duration::from_millis(epoch - now))
                    });
                items.retain(|name| item_epoch(name) <= now);
                (items, due)
            }
        }
    }
}

/// The queue items among `children`, in take order.
fn sorted_items(children: Vec<String>) -> Vec<String> {
    let mut items: Vec<String> = children
        .into_iter()
        .filter(|c| c.starts_with(QUEUE_ITEM_PREFIX))
        .collect();
    items.sort();
    items
}

/// An item locked by us (see [`DistributedQueue::take_leased`]). Dropping it without
/// finishing abandons it in the background (the item goes back to the queue).
#[derive(Debug)]
pub struct LeasedItem {
    client: Client,
    item: String,
    lock: String,
    token: String,
    lock_stat: Stat,
    items: Vec<Vec<u8>>,
    finished: bool,
}

impl LeasedItem {
    /// The item's payload (the first one of a multi-payload node; see
    /// [`items`](Self::items)).
    pub fn data(&self) -> &[u8] {
        self.items.first().map_or(&[], Vec::as_slice)
    }

    /// Every payload of the item's node (one, unless it was put with
    /// [`put_multi`](DistributedQueue::put_multi) or Curator's `putMulti`).
    pub fn items(&self) -> &[Vec<u8>] {
        &self.items
    }

    /// The item's node path.
    pub fn path(&self) -> &str {
        &self.item
    }

    /// Our lock node's path.
    pub fn lock_path(&self) -> &str {
        &self.lock
    }

    /// Our lock node's creation zxid: a fencing token for downstream writes (a later holder
    /// of the same item always has a larger one).
    pub fn fencing_token(&self) -> i64 {
        self.lock_stat.czxid
    }

    /// Resolves when our hold on the item has ended without us: our lock node is gone (our
    /// session ended, or someone deleted it) or holds another take's token, or the session
    /// is over — from then on the item may be given to another consumer. Also resolves if
    /// the lock can no longer be observed (retries exhausted). Does not borrow the item.
    ///
    /// This is the session error policy: a mere disconnection does not resolve it (the
    /// lock survives as long as the session does).
    ///
    /// ```no_run
    /// # async fn demo(queue: zk_recipes::DistributedQueue) -> Result<(), zk_recipes::Error> {
    /// let item = queue.take_leased().await?;
    /// tokio::select! {
    ///     _ = item.lost() => eprintln!("lease lost; someone else will do it"),
    ///     _ = process(item.data()) => item.complete().await?,
    /// }
    /// # Ok(()) }
    /// # async fn process(_: &[u8]) {}
    /// ```
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static + use<> {
        let (client, lock, token) = (self.client.clone(), self.lock.clone(), self.token.clone());
        async move {
            loop {
                match paths::retrying(|| client.get_data_watch(&lock)).await {
                    Ok((data, _, watcher)) if data.as_ref() == token.as_bytes() => {
                        if watcher.await.is_session_event() {
                            break;
                        }
                    }
                    Ok(_) | Err(_) => break,
                }
            }
            tracing::info!(%lock, "lease on a queue item lost");
        }
    }

    /// Done: deletes the item and our lock in one transaction.
    ///
    /// # Errors
    ///
    /// [`Error::NodeVanished`] when our lock is gone (our session ended, or someone deleted
    /// it): the item may be given to another consumer, so the work may be repeated.
    /// Other ZooKeeper errors leave the lease in place (dropping it abandons the item).
    pub async fn complete(mut self) -> Result<()> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transaction()
                .delete(&self.lock, None)
                .delete(&self.item, None)
                .commit()
                .await;
            match result {
                Ok(_) => {
                    self.finished = true;
                    tracing::debug!(item = %self.item, "completed a leased item");
                    return Ok(());
                }
                Err(e) if e.is_retryable() && attempt < 10 => {
                    if e.outcome_unknown() {
                        // Both nodes go together: our lock gone while our session lives
                        // means the transaction was applied.
                        match paths::retrying(|| self.client.exists(&self.lock)).await {
                            Ok(None) => {
                                self.finished = true;
                                return Ok(());
                            }
                            Ok(Some(_)) => {}
                            Err(e) => return Err(self.lost_or(e)),
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                }
                Err(e) => return Err(self.lost_or(e)),
            }
        }
    }

    fn lost_or(&mut self, e: zk_client::Error) -> Error {
        let lost = e.is_session_terminal()
            || matches!(
                &e,
                zk_client::Error::Transaction { index: 0, source }
                    if matches!(**source, zk_client::Error::NoNode)
            );
        if lost {
            self.finished = true;
            tracing::warn!(item = %self.item, error = %e, "lease on a queue item lost");
            Error::NodeVanished(self.lock.clone())
        } else {
            e.into()
        }
    }

    /// Gives the item back: deletes our lock, leaving the item for any consumer.
    pub async fn abandon(mut self) -> Result<()> {
        self.finished = true;
        tracing::debug!(item = %self.item, "abandoned a leased item");
        delete_if_ours(&self.client, &self.lock, &self.token).await
    }
}

impl Drop for LeasedItem {
    fn drop(&mut self) {
        if !self.finished {
            let (client, lock, token) =
                (self.client.clone(), self.lock.clone(), self.token.clone());
            paths::spawn_cleanup("queue lease", async move {
                delete_if_ours(&client, &lock, &token).await
            });
        }
    }
}

/// A distributed priority queue: lower priorities first, equal ones in put order. Takes
/// work as in [`DistributedQueue`] (same delivery guarantees).
#[derive(Debug, Clone)]
pub struct DistributedPriorityQueue {
    queue: DistributedQueue,
}

impl DistributedPriorityQueue {
    /// The priority queue at `path`, at-most-once takes.
    ///
    /// ```no_run
    /// # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
    /// let queue = zk_recipes::DistributedPriorityQueue::new(&client, "/app/urgent")?;
    /// queue.put(b"later", 10).await?;
    /// queue.put(b"first", -5).await?;
    /// assert_eq!(queue.queue().take().await?, b"first");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed path.
    pub fn new(client: &Client, path: &str) -> Result<DistributedPriorityQueue> {
        Ok(DistributedPriorityQueue {
            queue: DistributedQueue::new(client, path)?,
        })
    }

    /// The priority queue at `path` with item locks under `lock_path`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed path.
    pub fn with_lock_path(
        client: &Client,
        path: &str,
        lock_path: &str,
    ) -> Result<DistributedPriorityQueue> {
        Ok(DistributedPriorityQueue {
            queue: DistributedQueue::with_lock_path(client, path, lock_path)?,
        })
    }

    /// Adds an item with `priority` (lower comes out first); returns its node's path.
    ///
    /// # Errors
    ///
    /// As [`DistributedQueue::put`].
    pub async fn put(&self, data: &[u8], priority: i32) -> Result<String> {
        let name = format!("{QUEUE_ITEM_PREFIX}{}", priority_to_string(priority));
        self.queue.put_named(&name, &encode_items(&[data])).await
    }

    /// The underlying queue, to take from (its order is the priority order).
    pub fn queue(&self) -> &DistributedQueue {
        &self.queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_sort_like_numbers() {
        let mut names: Vec<String> = [7, -3, 0, i32::MAX, i32::MIN, -1, 1]
            .iter()
            .map(|p| format!("queue-{}0000000001", priority_to_string(*p)))
            .collect();
        names.sort();
        let expect: Vec<String> = [i32::MIN, -3, -1, 0, 1, 7, i32::MAX]
            .iter()
            .map(|p| format!("queue-{}0000000001", priority_to_string(*p)))
            .collect();
        assert_eq!(names, expect);
        assert_eq!(priority_to_string(i32::MIN), "080000000");
    }

    #[test]
    fn envelopes_round_trip_and_raw_data_is_one_payload() {
        let empty: &[&[u8]] = &[];
        assert_eq!(decode_items(&encode_items(empty)), Some(Vec::new()));
        let big = vec![7u8; 300];
        assert_eq!(
            decode_items(&encode_items(&[&big, b""])),
            Some(vec![big.clone(), Vec::new()])
        );
        assert_eq!(decode_items(b"raw"), None);
        assert_eq!(payloads(b"raw"), vec![b"raw".to_vec()]);
        // Truncated or trailing bytes are not an envelope.
        let good = encode_items(&[b"abc"]);
        assert_eq!(decode_items(&good[..good.len() - 1]), None);
        assert_eq!(decode_items(&[good.as_slice(), b"x"].concat()), None);
    }

    #[test]
    fn delay_and_id_names_parse_as_curators() {
        let name = format!(
            "{}0000000003",
            crate::delay_queue::delay_name(0x19A_BCDE_F012)
        );
        assert_eq!(name, "queue-|19ABCDEF012|0000000003");
        assert_eq!(item_epoch(&name), 0x19A_BCDE_F012);
        assert_eq!(item_epoch("queue-0000000001"), 0);
        assert_eq!(item_epoch("queue-|zz|0000000001"), 0);
        assert_eq!(
            item_id("queue-|job_1|0000000007"),
            ("job_1", "queue-0000000007".to_owned())
        );
        assert_eq!(item_id("queue-0000000007").0, "queue-0000000007");
        let (ready, due) = Order::Delay.arrange(vec![
            format!("{}0000000002", crate::delay_queue::delay_name(u64::MAX / 2)),
            format!("{}0000000001", crate::delay_queue::delay_name(5)),
        ]);
        assert_eq!(ready.len(), 1);
        assert!(ready[0].ends_with("0000000001"));
        assert!(due.is_some());
    }

    #[test]
    fn foreign_children_are_ignored() {
        let items = sorted_items(vec![
            "queue-0000000002".into(),
            "lock".into(),
            "queue-0000000001".into(),
        ]);
        assert_eq!(items, ["queue-0000000001", "queue-0000000002"]);
    }
}
