//! [`TestServer`]: one standalone ZooKeeper server for a test — zk-server-lite in process
//! ([`TestServer::embedded`], feature `embedded`) or, with the `apache` feature, real Apache
//! ZooKeeper 3.8 from local jars (`ServerKind::Apache`) — behind one small interface, so
//! that a suite can run the same assertions against both.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use zk_testkit::{ServerOptions, TestServer};
//!
//! // zk-server-lite on 127.0.0.1:<free port>, on this tokio runtime; gone when dropped.
//! let server = TestServer::embedded_with(&ServerOptions::new().tick_time(Duration::from_millis(100)))
//!     .await?;
//! let client = zk_client::Client::connect(&server.connect_string()).await?;
//! # drop(client);
//! # Ok(())
//! # }
//! ```
//!
//! With the `apache` feature, the same test runs against both:
//!
//! ```no_run
//! # #[cfg(feature = "apache")]
//! # async fn demo() -> Result<(), zk_testkit::TestServerError> {
//! use zk_testkit::{ServerKind, ServerOptions, TestServer};
//!
//! for kind in ServerKind::ALL {
//!     let server = TestServer::start(kind, &ServerOptions::new().extended_types(true)).await?;
//!     let connect_string = server.connect_string(); // give this to a client
//!     // ... the same assertions for both ...
//!     server.stop().await?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! What only one of them offers stays reachable through `TestServer::as_apache` and
//! [`TestServer::as_lite`]; faults that both must survive go through a `FaultProxy`
//! (feature `proxy`) in front of either.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

#[cfg(feature = "apache")]
use crate::apache::{ApacheConfig, ApacheError, ApacheServer};

/// Which server a [`TestServer`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerKind {
    /// Apache ZooKeeper 3.8 from the Debian jars, in its own JVM (feature `apache`).
    #[cfg(feature = "apache")]
    Apache,
    /// zk-server-lite, in-process, on the test's tokio runtime.
    Lite,
}

#[cfg(feature = "apache")]
impl ServerKind {
    /// Both kinds, Apache first.
    pub const ALL: [ServerKind; 2] = [ServerKind::Apache, ServerKind::Lite];
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            #[cfg(feature = "apache")]
            ServerKind::Apache => "Apache ZooKeeper",
            ServerKind::Lite => "zk-server-lite",
        })
    }
}

/// The settings both servers understand, applied the same way to each.
///
/// The defaults (the same as `ApacheConfig::default` with the `apache` feature): a 250 ms tick (so expiry tests are fast),
/// the minimum session timeout left at 2 ticks, the maximum raised to 60 s, no extended
/// types, no super user.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `tickTime`.
    pub tick_time: Duration,
    /// `minSessionTimeout`; `None`: 2 ticks.
    pub min_session_timeout: Option<Duration>,
    /// `maxSessionTimeout`; `None`: 20 ticks.
    pub max_session_timeout: Option<Duration>,
    /// `zookeeper.extendedTypesEnabled` (TTL nodes).
    pub extended_types: bool,
    /// The super user's digest id, `super:<base64 sha1>`.
    pub super_digest: Option<String>,
    /// Keep zk-server-lite's data (log and snapshots, fsynced) in a temporary directory, so
    /// that [`TestServer::restart`] brings back the same znodes and sessions, as Apache
    /// does. Default off: in memory. Apache always keeps a data directory.
    pub durable: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            tick_time: Duration::from_millis(250),
            min_session_timeout: None,
            max_session_timeout: Some(Duration::from_secs(60)),
            extended_types: false,
            super_digest: None,
            durable: false,
        }
    }
}

impl ServerOptions {
    /// The defaults (see the type's docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`tick_time`](Self::tick_time).
    pub fn tick_time(mut self, tick: Duration) -> Self {
        self.tick_time = tick;
        self
    }

    /// Sets the session timeout bounds.
    pub fn session_timeouts(mut self, min: Option<Duration>, max: Option<Duration>) -> Self {
        self.min_session_timeout = min;
        self.max_session_timeout = max;
        self
    }

    /// Sets [`extended_types`](Self::extended_types).
    pub fn extended_types(mut self, on: bool) -> Self {
        self.extended_types = on;
        self
    }

    /// Sets [`super_digest`](Self::super_digest).
    pub fn super_digest(mut self, digest: impl Into<String>) -> Self {
        self.super_digest = Some(digest.into());
        self
    }

    /// Sets [`durable`](Self::durable).
    pub fn durable(mut self, on: bool) -> Self {
        self.durable = on;
        self
    }

    /// These settings as an Apache configuration (everything else at its default).
    #[cfg(feature = "apache")]
    pub fn apache_config(&self) -> ApacheConfig {
        let mut config = ApacheConfig::new()
            .tick_time(self.tick_time)
            .session_timeouts(self.min_session_timeout, self.max_session_timeout)
            .extended_types(self.extended_types);
        config.super_digest = self.super_digest.clone();
        config
    }

    /// These settings as a zk-server-lite builder (on `127.0.0.1:0`, in memory: the caller
    /// adds a data dir for [`durable`](Self::durable)).
    pub fn lite_builder(&self) -> zk_server_lite::ServerBuilder {
        let tick = millis(self.tick_time).max(1);
        let min = self.min_session_timeout.map_or(2 * tick, millis);
        let max = self.max_session_timeout.map_or(20 * tick, millis);
        let mut builder = zk_server_lite::Server::builder()
            .tick_time(u32::try_from(tick).unwrap_or(u32::MAX))
            .session_timeouts(min, max)
            .extended_types(self.extended_types);
        if let Some(digest) = &self.super_digest {
            builder = builder.super_digest(digest.clone());
        }
        builder
    }
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// Why a [`TestServer`] could not start, stop or restart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestServerError {
    /// From the Apache server.
    #[cfg(feature = "apache")]
    #[error(transparent)]
    Apache(#[from] ApacheError),
    /// From zk-server-lite.
    #[error("zk-server-lite: {0}")]
    Lite(#[from] io::Error),
}

enum Inner {
    #[cfg(feature = "apache")]
    Apache(ApacheServer),
    Lite {
        // `None` while stopped.
        server: Option<zk_server_lite::Server>,
        // Declared after the server: removed once it has stopped.
        data_dir: Option<tempfile::TempDir>,
    },
}

/// One standalone server of either [`ServerKind`]; stopped (the JVM killed, the in-process
/// server shut down) when dropped.
pub struct TestServer {
    kind: ServerKind,
    addr: SocketAddr,
    options: ServerOptions,
    inner: Inner,
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("kind", &self.kind)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts zk-server-lite in process with the default [`ServerOptions`] (a 250 ms tick,
    /// sessions of up to 60 s, in memory) and waits until it serves.
    pub async fn embedded() -> Result<Self, TestServerError> {
        Self::start(ServerKind::Lite, &ServerOptions::default()).await
    }

    /// Starts zk-server-lite in process with `options`.
    pub async fn embedded_with(options: &ServerOptions) -> Result<Self, TestServerError> {
        Self::start(ServerKind::Lite, options).await
    }

    /// Starts a server of `kind` with `options` and waits until it serves.
    ///
    /// zk-server-lite runs on the current tokio runtime, in memory.
    pub async fn start(kind: ServerKind, options: &ServerOptions) -> Result<Self, TestServerError> {
        let (addr, inner) = match kind {
            #[cfg(feature = "apache")]
            ServerKind::Apache => {
                let server = ApacheServer::start_with(options.apache_config()).await?;
                (server.addr(), Inner::Apache(server))
            }
            ServerKind::Lite => {
                let data_dir = if options.durable {
                    Some(
                        tempfile::Builder::new()
                            .prefix("zk-testkit-lite-")
                            .tempdir()?,
                    )
                } else {
                    None
                };
                let server = lite_builder(options, data_dir.as_ref()).start().await?;
                let addr = server.addr();
                let server = Some(server);
                (addr, Inner::Lite { server, data_dir })
            }
        };
        Ok(TestServer {
            kind,
            addr,
            options: options.clone(),
            inner,
        })
    }

    /// Which server this is.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// The options it was started with.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// The client address (`127.0.0.1:<port>`); the same after [`restart`](Self::restart).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The connect string (`127.0.0.1:<port>`).
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// Sends a four-letter word (both servers answer `ruok`, `srvr`, `stat`, `mntr`, …).
    pub async fn four_letter_word(&self, word: &str) -> io::Result<String> {
        crate::four_letter_word(self.addr, word).await
    }

    /// Stops the server and waits until it is gone. A no-op when stopped.
    pub async fn stop(mut self) -> Result<(), TestServerError> {
        self.shut_down().await
    }

    async fn shut_down(&mut self) -> Result<(), TestServerError> {
        match &mut self.inner {
            #[cfg(feature = "apache")]
            Inner::Apache(server) => server.stop().await?,
            Inner::Lite { server, .. } => {
                if let Some(server) = server.take() {
                    server.stop().await;
                }
            }
        }
        Ok(())
    }

    /// Stops the server if running, then starts it again on the same address.
    ///
    /// Apache keeps its data directory (sessions and znodes survive), and so does a
    /// [`durable`](ServerOptions::durable) zk-server-lite; an in-memory one comes back empty.
    pub async fn restart(&mut self) -> Result<(), TestServerError> {
        match &mut self.inner {
            #[cfg(feature = "apache")]
            Inner::Apache(server) => server.restart().await?,
            Inner::Lite { server, data_dir } => {
                let builder = lite_builder(&self.options, data_dir.as_ref()).listen(self.addr);
                if let Some(old) = server.take() {
                    old.stop().await;
                }
                *server = Some(builder.start().await?);
            }
        }
        Ok(())
    }

    /// The Apache server, if this is one.
    #[cfg(feature = "apache")]
    pub fn as_apache(&self) -> Option<&ApacheServer> {
        match &self.inner {
            Inner::Apache(server) => Some(server),
            Inner::Lite { .. } => None,
        }
    }

    /// The zk-server-lite server (with its fault controls), if this is one and it runs.
    pub fn as_lite(&self) -> Option<&zk_server_lite::Server> {
        match &self.inner {
            Inner::Lite { server, .. } => server.as_ref(),
            #[cfg(feature = "apache")]
            Inner::Apache(_) => None,
        }
    }
}

fn lite_builder(
    options: &ServerOptions,
    data_dir: Option<&tempfile::TempDir>,
) -> zk_server_lite::ServerBuilder {
    let builder = options.lite_builder();
    match data_dir {
        Some(dir) => builder.data_dir(dir.path()),
        None => builder,
    }
}
