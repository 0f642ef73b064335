//! Test support for the zk-rs workspace.
//!
//! * [`apache`] boots real Apache ZooKeeper 3.8 servers (standalone or a small ensemble) from
//!   the Debian jars, on free loopback ports, in temporary directories, and makes sure no JVM
//!   outlives the test (not even when the test process dies abruptly).
//! * [`server`] puts Apache ZooKeeper and zk-server-lite behind one [`TestServer`], so one
//!   suite runs the same assertions against both; [`for_each_server!`] turns one
//!   `async fn name(kind: ServerKind)` into an `apache::name` and a `lite::name` test.
//! * [`container`] starts Apache ZooKeeper in a Docker container with `testcontainers` (a
//!   locally built image, see `tests/container/build-image.sh`): pause, stop and start the
//!   whole server for fault injection.
//! * [`proxy`] is a fault-injecting TCP proxy to put between a client and a server: cut
//!   connections, stall them, delay or drop bytes, refuse new connections.
//! * [`tls`] makes throwaway certificates (a CA, server and client certificates) and
//!   [`ApacheTls`] serves TLS on Apache's `secureClientPort` with them.
//! * [`init_tracing`] and [`wait_until`] are small helpers every integration test wants.
//!
//! Everything is async (tokio) and every wait is bounded.

pub mod apache;
pub mod container;
pub mod harness;
pub mod proxy;
pub mod server;
pub mod tls;
mod util;

pub use apache::{
    ApacheClientAuth, ApacheConfig, ApacheEnsemble, ApacheError, ApacheSasl, ApacheServer,
    ApacheTls, four_letter_word, four_letter_word_timeout,
};
pub use container::ZooKeeperContainer;
pub use proxy::{Direction, FaultProxy};
pub use server::{ServerKind, ServerOptions, TestServer, TestServerError};
pub use util::{TimedOut, init_tracing, try_wait_until, wait_until};

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
