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

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use zk_client::{Client, SessionState, StateChanges};
use zk_testkit::{ServerKind, ServerOptions, TestServer, init_tracing};

/// Generous bound for anything on a slow, loaded 2-core machine.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

// `zk_testkit::for_each_server!`, in every module.
#[macro_use]
extern crate zk_testkit;

mod failover;
mod fake_server;
mod ops;
mod watches;

/// Starts a standalone server of `kind` with `options`.
pub(crate) async fn start_server(kind: ServerKind, options: ServerOptions) -> TestServer {
    init_tracing();
    match TestServer::start(kind, &options).await {
        Ok(server) => server,
        Err(e) => panic!("cannot start {kind}: {e}"),
    }
}

/// Connects with a 10 s session timeout.
pub(crate) async fn connect(connect_string: &str) -> Client {
    connect_with(connect_string, Duration::from_secs(10)).await
}

/// Connects with the given session timeout.
pub(crate) async fn connect_with(connect_string: &str, session_timeout: Duration) -> Client {
    match Client::builder(connect_string)
        .session_timeout(session_timeout)
        .connect_timeout(WAIT)
        .connect()
        .await
    {
        Ok(client) => client,
        Err(e) => panic!("cannot connect to {connect_string}: {e}"),
    }
}

/// Awaits `fut`, failing the test after [`WAIT`].
pub(crate) async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

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
