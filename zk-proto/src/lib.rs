//! The Apache ZooKeeper wire protocol.
