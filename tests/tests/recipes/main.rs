//! zk-recipes against real Apache ZooKeeper 3.8 (booted by the test kit) and zk-server-lite,
//! through the fault proxy where a test needs faults.
//!
//! One suite, parameterised by server, as the client suite: a test body is an
//! `async fn name(kind: ServerKind)` and `for_each_server!` instantiates it twice, as
//! `<file>::apache::name` and `<file>::lite::name`, so the same assertions run against both.
//! `cargo test -p zk-testkit --test recipes lite::` runs the zk-server-lite half. Tests that
//! need what only Apache offers here (a three-member ensemble) are plain Apache tests, and
//! the two that use what only zk-server-lite offers (`expire_session`) plain zk-server-lite
//! tests; each says so.
//!
//! Every wait is bounded and event-driven: a recipe's own future or status, or a condition
//! polled with [`zk_testkit::wait_until`]; nothing sleeps to let things settle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// `zk_testkit::for_each_server!`, in every module.
#[macro_use]
extern crate zk_testkit;

mod atomic_long;
mod cache;
mod curator;
mod discovery;
mod double_barrier;
mod ensemble;
mod group;
mod jvm;
mod leader_latch;
mod lock;
mod persistent_node;
mod protected;
mod queue;
mod rw_lock;
mod selector;
mod semaphore;
mod shared_count;

use std::collections::HashMap;

pub(crate) use zk_testkit::harness::{WAIT, connect, connect_with, within};
use zk_testkit::{ServerKind, ServerOptions, TestServer};

/// Starts a standalone server of `kind` with the default options.
pub(crate) async fn start(kind: ServerKind) -> TestServer {
    zk_testkit::harness::start_server(kind, ServerOptions::new()).await
}

/// The server's watches by session (`wchc`): session id → watched paths, sorted.
pub(crate) async fn watches_by_session(server: &TestServer) -> HashMap<i64, Vec<String>> {
    let text = server.four_letter_word("wchc").await.unwrap();
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(hex) = line.strip_prefix("0x") {
            let id = u64::from_str_radix(hex.trim(), 16).unwrap() as i64;
            out.entry(id).or_default();
            current = Some(id);
        } else if let (Some(id), path) = (current, line.trim()) {
            if path.starts_with('/') {
                out.entry(id).or_default().push(path.to_owned());
            }
        }
    }
    for paths in out.values_mut() {
        paths.sort();
    }
    out
}
