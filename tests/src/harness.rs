//! What every integration suite needs around a server: start one (panicking with the reason
//! if it cannot), connect a client with bounded timeouts, and await anything with a generous
//! limit that names what was awaited.

use std::future::Future;
use std::time::Duration;

use zk_client::Client;

#[cfg(feature = "embedded")]
use crate::server::{ServerKind, ServerOptions, TestServer};
#[cfg(feature = "embedded")]
use crate::util::init_tracing;

/// Generous bound for anything on a slow, loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(60);

/// Starts a standalone server of `kind` with `options`; panics with the reason if it cannot.
#[cfg(feature = "embedded")]
pub async fn start_server(kind: ServerKind, options: ServerOptions) -> TestServer {
    init_tracing();
    match TestServer::start(kind, &options).await {
        Ok(server) => server,
        Err(e) => panic!("cannot start {kind}: {e}"),
    }
}

/// Connects with a 10 s session timeout.
pub async fn connect(connect_string: &str) -> Client {
    connect_with(connect_string, Duration::from_secs(10)).await
}

/// Connects with the given session timeout, waiting at most [`WAIT`] for a server.
pub async fn connect_with(connect_string: &str, session_timeout: Duration) -> Client {
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
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}
