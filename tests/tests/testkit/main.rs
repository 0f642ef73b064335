//! Tests of the test kit itself: Apache ZooKeeper boot (standalone and ensemble), the
//! no-orphan guarantees, the fault proxy, and the container images and ensemble.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apache;
mod containers;
mod proxy;
