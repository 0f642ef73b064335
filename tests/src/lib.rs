//! Test support for the zk-rs workspace.
//!
//! * [`apache`] boots real Apache ZooKeeper 3.8 servers (standalone or a small ensemble) from
//!   the Debian jars, on free loopback ports, in temporary directories, and makes sure no JVM
//!   outlives the test (not even when the test process dies abruptly).
//! * [`server`] puts Apache ZooKeeper and zk-server-lite behind one [`TestServer`], so one
//!   suite runs the same assertions against both.
//! * [`proxy`] is a fault-injecting TCP proxy to put between a client and a server: cut
//!   connections, stall them, delay or drop bytes, refuse new connections.
//! * [`init_tracing`] and [`wait_until`] are small helpers every integration test wants.
//!
//! Everything is async (tokio) and every wait is bounded.

pub mod apache;
pub mod proxy;
pub mod server;
mod util;

pub use apache::{
    ApacheConfig, ApacheEnsemble, ApacheError, ApacheServer, four_letter_word,
    four_letter_word_timeout,
};
pub use proxy::{Direction, FaultProxy};
pub use server::{ServerKind, ServerOptions, TestServer, TestServerError};
pub use util::{TimedOut, init_tracing, try_wait_until, wait_until};

/// The README's code blocks, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
