//! Curator-style recipes on top of [`zk_client`].
//!
//! Work in progress: the recipes arrive with the recipes issue.

pub use zk_client as client;
