//! A lightweight ZooKeeper-compatible server for tests and development.
//!
//! Work in progress: the standalone server arrives with the server issue.

pub use zk_proto as proto;
