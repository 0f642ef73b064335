//! An async [tokio](https://tokio.rs) client for [Apache ZooKeeper](https://zookeeper.apache.org)
//! 3.5–3.9: sessions that survive server failures, every operation of a 3.9 server, typed
//! watches, transactions and Curator-like retries.
//!
//! # Opinions
//!
//! * **No callbacks.** Operations return futures; a watch is a value the caller owns: a
//!   [`OneshotWatcher`] future from the `*_watch` calls, a [`PersistentWatcher`] stream from
//!   [`Client::add_watch`]. Session state is a current value ([`Client::state`]) and a stream
//!   ([`Client::state_changes`]) with Curator's model ([`SessionState`]).
//! * **Ordering at call time.** A request is validated, encoded and queued when the method is
//!   *called*; the returned future only waits for the reply. Requests are pipelined on one
//!   connection and the server answers them in order. There is no built-in back-pressure:
//!   bound the number of requests you keep in flight (a few thousand is plenty).
//! * **Watches you own.** [`Client::watch_changes`] turns a path into a continuous stream
//!   (a persistent watch, or re-armed one-shot watches on pre-3.6 servers).
//! * **`Clone` shares the session.** A [`Client`] is a cheap handle (an `Arc`) on one session
//!   task; clones share it. The session ends with [`Client::close`] or when the last handle
//!   is dropped.
//! * **One session per handle, for its whole life.** After a disconnection the client
//!   re-attaches the *same* session on the next server (watches restored, credentials
//!   re-sent); if the session expired it reports [`SessionState::Lost`] once and every later
//!   call fails with [`Error::SessionExpired`]. It never opens a new session silently.
//!
//! # Session and failover, in a few lines
//!
//! * In-flight requests fail with [`Error::ConnectionLoss`] when the connection breaks; for a
//!   write, [`Error::outcome_unknown`] is then true. Requests issued while disconnected wait
//!   for the reconnect, at most the request timeout ([`ClientBuilder::request_timeout`]).
//! * Pings go out every third of the negotiated timeout (at most 10 s); no bytes for two
//!   thirds of it means the connection is dead. Unreachable servers for longer than the
//!   session timeout means the session is considered expired locally (as Curator does).
//! * `lastZxidSeen` travels in every handshake, so the client never sees the tree go back in
//!   time when it moves to another server.
//!
//! ```no_run
//! use zk_client::{Client, CreateMode};
//!
//! # async fn demo() -> Result<(), zk_client::Error> {
//! let client = Client::connect("127.0.0.1:2181/app").await?;
//! client.create("/config", b"v1", CreateMode::Persistent).await?;
//! let (data, stat, watcher) = client.get_data_watch("/config").await?;
//! client.set_data("/config", b"v2", Some(stat.version)).await?;
//! let event = watcher.await;
//! println!("{:?} on {} (was {data:?})", event.event_type, event.path);
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! # TLS
//!
//! With the cargo feature `tls` (off by default), `ClientBuilder::tls(TlsConfig)` connects to
//! Apache ZooKeeper's `secureClientPort` over TLS (rustls with the *ring* provider): trust
//! roots and an optional client certificate from PEM, host names verified against the
//! connect string (optionally not), `rustls` re-exported for hand-built configurations.
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | `client.rs` | [`Client`]: the handle, request hand-off |
//! | `builder.rs` | [`ClientBuilder`]: hosts, timeouts, read-only, back-off, credentials; [`Client::connect`] |
//! | `ops/` | the operations, one file per family |
//! | `session/` | the session task: connecting (`connect.rs`) and serving (`serve.rs`) around a sans-io machine (`machine.rs`: timers, queue; `core.rs`: bytes), the state model (`state.rs`), the in-flight book (`pending.rs`) and the watch registry (`watches.rs`). It imports none of the files above |
//! | [`hosts`] | the connect string and the host list |
//! | [`transport`] | opening connections (the only file naming `tokio::net`) |
//! | `tls.rs` | `TlsConfig` and the TLS connector (feature `tls`) |
//! | [`watcher`] | watcher types |
//! | [`retry`] | retry policies |
//! | [`error`] | [`Error`] and its classifiers |

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod builder;
mod client;
pub mod error;
pub mod hosts;
mod ops;
pub mod retry;
mod sasl;
mod session;
#[cfg(feature = "tls")]
mod tls;
pub mod transport;
pub mod watcher;

pub use builder::{ClientBuilder, DEFAULT_SESSION_TIMEOUT};
pub use client::Client;
pub use error::{Error, Result};
pub use hosts::ConnectString;
pub use ops::{
    CONFIG_NODE, ChangeStream, CreateFuture, CreateOptions, Op, OpResult, ReadOp, ReadResult,
    Reconfig, Transaction,
};
/// The rustls this crate uses (feature `tls`), for hand-built
/// [`ClientConfig`](rustls::ClientConfig)s given to [`TlsConfig::new`].
#[cfg(feature = "tls")]
pub use rustls;
pub use session::{LostReason, SessionState};
#[cfg(feature = "tls")]
pub use tls::{TlsConfig, TlsConfigBuilder};
pub use watcher::{OneshotWatcher, PersistentWatcher, StateChanges, WatchedEvent};
pub use zk_proto as proto;
pub use zk_proto::records::{Acl, ClientInfo, Id, Stat};
pub use zk_proto::{AddWatchMode, CreateMode, EventType, KeeperState, Perms, WatcherType};

#[cfg(test)]
mod tests {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    #[test]
    fn public_types_cross_threads() {
        send_sync::<crate::Client>();
        send_sync::<crate::Error>();
        send_sync::<crate::ClientBuilder>();
        send_sync::<crate::Transaction>();
        send::<crate::OneshotWatcher>();
        send::<crate::PersistentWatcher>();
        send::<crate::ChangeStream>();
        send::<crate::StateChanges>();
    }
}
