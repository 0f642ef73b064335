//! Tests of the test kit itself: Apache ZooKeeper boot (standalone and ensemble), the
//! no-orphan guarantees, and the fault proxy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apache;
mod proxy;
