//! Test support for services that use ZooKeeper, and for the zk-rs workspace itself.
//!
//! Add it with `cargo add --dev zk-testkit`; cargo features choose what you pull in:
//!
//! | feature | what | needs |
//! |---|---|---|
//! | `embedded` (default) | [`TestServer`]: zk-server-lite in process, started in milliseconds | nothing |
//! | `containers` | `containers`: testcontainers images of Apache ZooKeeper (the Docker official `zookeeper` image) and zk-server-lite, single servers and ensembles with network partitions; `testcontainers` re-exported | a Docker engine |
//! | `proxy` | `FaultProxy`: a TCP proxy that cuts, stalls, delays or drops | nothing |
//! | `apache` | `apache`, `tls`, `for_each_server!`: Apache ZooKeeper from local jars in a JVM (the zk-rs suites) | Java and the Debian `zookeeper` package |
//!
//! A test against the embedded server:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = zk_testkit::TestServer::embedded().await?;
//! let client = zk_client::Client::connect(&server.connect_string()).await?;
//! let persistent = zk_client::CreateOptions::new(zk_client::CreateMode::Persistent);
//! client.create("/job", b"queued", &persistent).await?;
//! assert_eq!(&client.get_data("/job").await?.0[..], b"queued");
//! # Ok(())
//! # }
//! ```
//!
//! Always available: [`harness`] (connect with bounded timeouts, [`harness::within`]),
//! [`wait_until`], [`init_tracing`] and [`four_letter_word`].
//!
//! Everything is async (tokio) and every wait is bounded.

#[cfg(feature = "apache")]
pub mod apache;
#[cfg(feature = "containers")]
pub mod containers;
pub mod harness;
#[cfg(feature = "proxy")]
pub mod proxy;
#[cfg(feature = "embedded")]
pub mod server;
#[cfg(feature = "apache")]
pub mod tls;
mod util;

#[cfg(feature = "apache")]
pub use apache::{
    ApacheClientAuth, ApacheConfig, ApacheEnsemble, ApacheError, ApacheSasl, ApacheServer,
    ApacheTls,
};
#[cfg(feature = "proxy")]
pub use proxy::{Direction, FaultProxy};
#[cfg(feature = "embedded")]
pub use server::{ServerKind, ServerOptions, TestServer, TestServerError};
/// The testcontainers release this crate's images are built for: use this one (`use
/// zk_testkit::testcontainers::...`) rather than a direct dependency, and versions never clash.
#[cfg(feature = "containers")]
pub use testcontainers;
pub use util::{
    FOUR_LETTER_WORD_TIMEOUT, TimedOut, four_letter_word, four_letter_word_timeout, init_tracing,
    try_wait_until, wait_until,
};

/// Instantiates each listed `async fn name(kind: ServerKind)` once per server, as
/// `apache::name` and `lite::name` (multi-threaded tokio tests; the calling crate needs
/// `tokio` with its `macros` feature), so one suite runs the same assertions against Apache
/// ZooKeeper and zk-server-lite. Attributes written as `#[lite(...)]` before a name apply to
/// the zk-server-lite instance only (e.g. an `ignore` naming a known server bug).
///
/// ```ignore
/// zk_testkit::for_each_server!(creates_a_node, #[lite(ignore = "zk-server-lite: ...")] other);
///
/// async fn creates_a_node(kind: zk_testkit::ServerKind) { /* ... */ }
/// ```
#[cfg(feature = "apache")]
#[macro_export]
macro_rules! for_each_server {
    ($( $(#[lite($lite_attr:meta)])* $name:ident ),* $(,)?) => {
        /// The tests against Apache ZooKeeper 3.8.
        mod apache {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::ServerKind::Apache).await;
                }
            )*
        }

        /// The same tests against zk-server-lite.
        mod lite {
            $(
                $(#[$lite_attr])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::ServerKind::Lite).await;
                }
            )*
        }
    };
}

/// The README's code blocks, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
