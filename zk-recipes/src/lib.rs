//! Curator-style recipes on top of [`zk_client`], node-compatible with
//! [Apache Curator](https://curator.apache.org) 5.x so Rust and Java services can share one
//! lock or one election.
//!
//! # Opinions
//!
//! * **Small structs around a [`Client`](zk_client::Client) clone.** A recipe never owns a
//!   session; it borrows the client's. Background work (a lock guard's loss monitor, a
//!   latch's election task) runs on the caller's tokio runtime.
//! * **Ownership is a value.** Holding a lock is holding a [`LockGuard`]: release it with an
//!   explicit `release().await`; dropping it only schedules the cleanup.
//! * **Loss is part of the API.** Each hold exposes when it can no longer be trusted, under
//!   Curator's two [`ErrorPolicy`] variants, and a [`FencingToken`] for downstream checks.
//! * **No orphans.** Contender nodes are created with Curator's protection prefix
//!   (`_c_<uuid>-`), found again after a lost reply, and removed when an acquire is
//!   cancelled.
//! * **One session per client.** zk-client never opens a new session under a handle, so after
//!   expiry a recipe reports the loss ([`Error::SessionLost`]) and ends; build a new client to
//!   take part again.
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | [`paths`] | protected names, Curator's ordering, parent creation, protected sequential create |
//! | [`lock`] | [`Mutex`] (Curator's `InterProcessMutex`), [`LockGuard`], [`FencingToken`] |
//! | [`multi_lock`] | [`MultiLock`] (Curator's `InterProcessMultiLock`: several locks, all or nothing) |
//! | [`rw_lock`] | [`ReadWriteLock`] (Curator's `InterProcessReadWriteLock`) |
//! | [`semaphore`] | [`Semaphore`], [`Lease`] (Curator's `InterProcessSemaphoreV2`) |
//! | [`leader_latch`] | [`LeaderLatch`] (Curator's `LeaderLatch`) |
//! | [`leader_selector`] | [`LeaderSelector`] (Curator's `LeaderSelector`: work that runs while leading) |
//! | [`atomic_long`] | [`AtomicLong`] (Curator's `DistributedAtomicLong`, optimistic mode) |
//! | [`atomic_value`] | [`AtomicValue`], [`AtomicInteger`] (Curator's `DistributedAtomicValue` / `DistributedAtomicInteger`, optimistic and promoted-to-lock) |
//! | [`shared_count`] | [`SharedCount`] (Curator's `SharedCount`) |
//! | [`persistent_node`] | [`PersistentNode`], [`PersistentTtlNode`] (Curator's: a node kept in place while the session lives) |
//! | [`group`] | [`GroupMember`] (Curator's `GroupMember`) |
//! | [`barrier`] | [`Barrier`] (Curator's `DistributedBarrier`) |
//! | `discovery` (feature `discovery`, default) | [`ServiceDiscovery`](discovery::ServiceDiscovery), [`ServiceCache`](discovery::ServiceCache), [`ServiceProvider`](discovery::ServiceProvider) (Curator's `curator-x-discovery`) |
//! | [`double_barrier`] | [`DoubleBarrier`] (Curator's `DistributedDoubleBarrier`) |
//! | [`queue`] | [`DistributedQueue`], [`DistributedPriorityQueue`], [`LeasedItem`] (Curator's queues, `lockPath` mode) |
//! | [`delay_queue`] | [`DistributedDelayQueue`] (Curator's, items due at a time) |
//! | [`id_queue`] | [`DistributedIdQueue`] (Curator's, items removable by id) |
//! | [`simple_queue`] | [`SimpleDistributedQueue`] (Curator's `SimpleDistributedQueue`, `qn-` items) |
//! | [`node_cache`] | [`NodeCache`] (one node's data and stat, on a persistent watch) |
//! | [`tree_cache`] | [`TreeCache`] (a subtree mirror, on a persistent recursive watch) |
//! | [`policy`] | [`ErrorPolicy`], [`LossReason`] |
//! | [`error`] | [`Error`] |
//!
//! The integration tests (`cargo test -p zk-testkit --test recipes`) run every recipe against
//! Apache ZooKeeper 3.8, and Curator 5.4 Java participants beside ours on the same paths.
//!
//! ```no_run
//! use zk_recipes::{LeaderLatch, Mutex};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = zk_client::Client::connect("127.0.0.1:2181").await?;
//!
//! let guard = Mutex::new(&client, "/locks/db")?.acquire().await?;
//! // ... use the resource, passing guard.fencing_token() along ...
//! guard.release().await?;
//!
//! let latch = LeaderLatch::join(&client, "/election/workers", "worker-1")?;
//! latch.await_leadership().await?;
//! latch.close().await;
//! # Ok(()) }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod atomic_long;
pub mod atomic_value;
pub mod barrier;
pub mod delay_queue;
#[cfg(feature = "discovery")]
pub mod discovery;
pub mod double_barrier;
pub mod error;
pub mod group;
pub mod id_queue;
pub mod leader_latch;
pub mod leader_selector;
pub mod lock;
pub mod multi_lock;
pub mod node_cache;
pub mod paths;
pub mod persistent_node;
pub mod policy;
pub mod queue;
pub mod rw_lock;
pub mod semaphore;
pub mod shared_count;
pub mod simple_queue;
pub mod tree_cache;

pub use atomic_long::AtomicLong;
pub use atomic_value::{AtomicInteger, AtomicValue};
pub use barrier::Barrier;
pub use delay_queue::DistributedDelayQueue;
pub use double_barrier::DoubleBarrier;
pub use error::{Error, Result};
pub use group::{GroupMember, MemberChanges, Members};
pub use id_queue::DistributedIdQueue;
pub use leader_latch::{LatchEnd, LatchStatus, LeaderLatch, LeadershipChanges, Participant};
pub use leader_selector::{LeaderSelector, RunningSelector};
pub use lock::{FencingToken, LockGuard, Mutex};
pub use multi_lock::{MultiLock, MultiLockGuard};
pub use node_cache::{NodeCache, NodeChanges, NodeData};
pub use persistent_node::{NodeEnd, NodeStatus, PersistentNode, PersistentTtlNode};
pub use policy::{ErrorPolicy, LossReason};
pub use queue::{DistributedPriorityQueue, DistributedQueue, LeasedItem};
pub use rw_lock::ReadWriteLock;
pub use semaphore::{Lease, Semaphore};
pub use shared_count::{SharedCount, SharedCountChanges, VersionedValue};
pub use simple_queue::SimpleDistributedQueue;
pub use tree_cache::{CuratorCache, Tree, TreeCache, TreeEvent, TreeEvents};
pub use zk_client as client;
