//! A lightweight ZooKeeper-compatible server for tests and development.
//!
//! Built the way Apache ZooKeeper is, ready for a Zab quorum: a **prep** stage turns each
//! write into a transaction with a zxid (validation, ACL checks, versions, sequential names,
//! ephemeral owner; session create/close are transactions too), a **log** stage stores it
//! (in memory, or in checksummed files with group-committed fsyncs, behind
//! [`storage::TxnLog`]), and a deterministic **apply** stage turns committed transactions
//! into tree changes, replies and watch notifications. The core has no sockets and reads no
//! clock: time is passed in, so it is unit tested (and later simulated) on its own.
//!
//! Standalone only for now: the `server.N` lines of a `zoo.cfg` are parsed, and the Zab
//! engine ([`zab`]) and its wire mapping ([`peer::wire`]) are in, but members do not yet
//! talk to each other over the network.
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | [`data_tree`] | znodes, Stat bookkeeping (cversion quirk included), apply a txn → result + events |
//! | [`txn`] | transaction types (Apache's `TxnHeader` + txn records) |
//! | [`prep`] | request → txn or error code, with Apache's check order |
//! | [`acl`] | world/auth/digest/ip schemes, super digest, checks, ACL fix-up |
//! | [`sessions`] | session table, ids, passwords, expiry on tick boundaries |
//! | [`watches`] | one-shot, persistent and recursive watch tables |
//! | [`storage`] | txn-log and snapshot traits with in-memory implementations |
//! | [`disk`] | the filesystem operations storage uses, behind a trait; the real disk |
//! | [`fault_disk`] | a simulated disk that loses, tears and reorders unsynced writes at a crash (tests) |
//! | [`file_storage`] | checksummed log segments and snapshots on a [`disk::Disk`], retention |
//! | [`recovery`] | start-up: prove an unbroken history from a snapshot to the log's end, or refuse |
//! | [`core`] | the state machine: connect/request/tick in, frames per connection out |
//! | [`listener`] | tokio TCP accept loop, one task per connection, bounded output queues |
//! | [`zab`] | the Zab engine, sans-io: election, discovery, sync, broadcast (one file each) |
//! | [`peer`] | the quorum and election ports: [`peer::wire`] maps Zab's messages to Apache's packets |
//! | [`four_letter`] | `ruok`, `srvr`, `stat`, `mntr`, `conf`, `cons`, `wchs`, `envi`, `isro`, … |
//! | [`config`] | `zoo.cfg` parsing |
//! | [`server`] | the embeddable [`Server`]: start on `127.0.0.1:0`, fault controls, stop |
//!
//! The binary `zk-server-lite <zoo.cfg>` runs a standalone server from a config file
//! (durable when `dataDir` is set).
//!
//! # Compatibility notes
//!
//! * Notifications carry the zxid of the triggering txn (3.9 behaviour; 3.8 sent -1);
//!   SetWatches-fired ones carry -1.
//! * `exists` checks no ACL (as Apache); reads validate paths and answer BADARGUMENTS.
//! * Containers are always available; TTL nodes need `extendedTypesEnabled`.
//! * Not implemented: SASL (`sasl` requests get UNIMPLEMENTED and a close), read-only
//!   mode, local sessions, reconfig (RECONFIGDISABLED, as a standalone Apache server),
//!   quotas.
//!
//! # Embedding
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let dir = std::env::temp_dir().join("zk-lite-demo");
//! let server = zk_server_lite::Server::builder().data_dir(&dir).start().await?;
//! println!("connect to {}", server.addr());
//! let server = server.restart().await?; // same port, same data
//! server.stop().await;
//! # Ok(())
//! # }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod acl;
pub mod config;
pub mod core;
pub mod data_tree;
pub mod disk;
pub mod fault_disk;
pub mod file_storage;
pub mod four_letter;
pub mod listener;
pub mod peer;
pub mod prep;
pub mod recovery;
pub mod server;
pub mod sessions;
pub mod storage;
pub mod txn;
pub mod watches;
pub mod zab;

pub use zk_proto as proto;

pub use crate::core::{Core, CoreConfig, Now, Output};
pub use crate::server::{Server, ServerBuilder};

/// Identifies one client connection inside the server.
pub type ConnId = u64;
