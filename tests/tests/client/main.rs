//! zk-client against a real server, through the fault proxy where a test needs faults, plus
//! in-process fake servers for protocol abuse.
//!
//! One suite, parameterised by server: each test body is an `async fn name(kind: ServerKind)`
//! and `for_each_server!` instantiates it twice, as `<file>::apache::name` (Apache
//! ZooKeeper 3.8 from the Debian jars) and `<file>::lite::name` (zk-server-lite, in-process),
//! so the same assertions run against both. `cargo test -p zk-testkit --test client lite::`
//! runs the zk-server-lite half. The few tests that need what only Apache offers here (a
//! three-member ensemble) are plain Apache tests and say so.
//!
//! Every wait is bounded and event-driven: a state change, a watch event, or a condition
//! polled with [`zk_testkit::wait_until`]; nothing sleeps to let things settle.
//!
//! `tls.rs` runs zk-client over TLS against Apache only (zk-server-lite has no TLS), and
//! `sasl.rs` SASL `DIGEST-MD5` logins against Apache only (zk-server-lite has no SASL).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use zk_client::{SessionState, StateChanges};
pub(crate) use zk_testkit::harness::{WAIT, connect, connect_with, start_server, within};

// `zk_testkit::for_each_server!`, in every module.
#[macro_use]
extern crate zk_testkit;

mod container;
mod failover;
mod fake_server;
mod ops;
mod sasl;
mod tls;
mod watches;

/// Waits for the next state in `changes` that satisfies `pred`.
pub(crate) async fn wait_state(
    changes: &mut StateChanges,
    what: &str,
    pred: impl Fn(SessionState) -> bool,
) -> SessionState {
    within(what, async {
        loop {
            match changes.next().await {
                Some(state) if pred(state) => return state,
                Some(_) => continue,
                None => panic!("state stream ended while waiting for {what}"),
            }
        }
    })
    .await
}
