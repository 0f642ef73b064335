//! An async tokio client for Apache ZooKeeper.
//!
//! Work in progress: the session, operations and watches arrive with the client issue.
//! The wire protocol lives in [`zk_proto`], re-exported here as [`proto`].

pub use zk_proto as proto;
