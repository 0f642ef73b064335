//! Public watcher types: [`WatchedEvent`], the one-shot [`OneshotWatcher`] (a future), the
//! [`PersistentWatcher`] (a stream) and [`StateChanges`] (the session state stream).
//!
//! Dropping a watcher unregisters it locally: it is no longer notified and is not restored
//! after a reconnect. (The server may still hold its side of a one-shot watch until it
//! fires; that costs one ignored notification.) A dropped persistent watcher is also removed
//! on the server when it was the last of its mode on its path.
//!
//! A one-shot watcher resolves exactly once: with the node event that fired it, or with a
//! session event (`EventType::None` and state `Expired`, `AuthFailed` or `Closed`) when the
//! session ends first. Disconnections do not resolve it: the watch is restored on the next
//! server, and changes made while the client was away fire it then.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::{broadcast, oneshot, watch};
use zk_proto::KeeperState;

use crate::session::SessionState;
use crate::session::stream::StreamRx;

pub use crate::session::WatchedEvent;

/// A one-shot watch: a future that resolves with the event that fired it.
///
/// Returned by the `*_watch` operations, e.g.
/// [`Client::get_data_watch`](crate::Client::get_data_watch). Cancellation-safe: dropping it
/// unregisters the watch locally.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = zk_server_lite::Server::builder().start().await?;
/// # let client = zk_client::Client::connect(&server.connect_string()).await?;
/// # client.create("/config", b"", zk_client::CreateMode::Persistent).await?;
/// let (data, _stat, watcher) = client.get_data_watch("/config").await?;
/// # client.set_data("/config", b"v2", None).await?;
/// println!("now {data:?}");
/// let event = watcher.await;
/// println!("{:?} on {}", event.event_type, event.path);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a watcher does nothing unless awaited"]
pub struct OneshotWatcher {
    rx: oneshot::Receiver<WatchedEvent>,
    path: String,
}

impl OneshotWatcher {
    pub(crate) fn new(rx: oneshot::Receiver<WatchedEvent>, path: String) -> OneshotWatcher {
        OneshotWatcher { rx, path }
    }

    /// The watched path (client view).
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Future for OneshotWatcher {
    type Output = WatchedEvent;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WatchedEvent> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(Ok(event)) => Poll::Ready(event),
            // The session task is gone without a final event: the client was closed.
            Poll::Ready(Err(_)) => Poll::Ready(WatchedEvent::session(
                KeeperState::Closed,
                self.path.clone(),
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A persistent (or persistent recursive) watch: a stream of events that stays registered
/// until dropped or removed.
///
/// Returned by [`Client::add_watch`](crate::Client::add_watch). The stream ends after a
/// final session event when the session ends, or after a `PersistentWatchRemoved` event when
/// the watch is removed with [`Client::remove_watches`](crate::Client::remove_watches).
///
/// Dropping it removes the watch: locally at once, and on the server too when it was the last
/// watcher of its mode on that path (see [`Client::add_watch`](crate::Client::add_watch)).
#[derive(Debug)]
#[must_use = "a watcher does nothing unless polled"]
pub struct PersistentWatcher {
    /// The queue, which also holds the path and the drop notice: one allocation per watcher.
    rx: StreamRx,
}

impl PersistentWatcher {
    pub(crate) fn new(rx: StreamRx) -> Self {
        PersistentWatcher { rx }
    }

    /// The watched path (client view).
    pub fn path(&self) -> &str {
        self.rx.path()
    }

    /// Forgets the drop notice (the watch was never registered).
    pub(crate) fn disarm(&mut self) {
        self.rx.disarm();
    }

    /// The next event, or `None` once the watch has ended. Cancellation-safe.
    pub async fn next(&mut self) -> Option<WatchedEvent> {
        std::future::poll_fn(|cx| self.rx.poll_next(cx)).await
    }
}

impl Stream for PersistentWatcher {
    type Item = WatchedEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchedEvent>> {
        self.rx.poll_next(cx)
    }
}

/// Every session state change, in order, from the moment it was created
/// ([`Client::state_changes`](crate::Client::state_changes)). Ends after the terminal state.
///
/// If the receiver falls far behind (more than 64 changes), the oldest are skipped.
#[derive(Debug)]
pub struct StateChanges {
    rx: broadcast::Receiver<SessionState>,
    current: watch::Receiver<SessionState>,
    done: bool,
}

impl StateChanges {
    pub(crate) fn new(
        rx: broadcast::Receiver<SessionState>,
        current: watch::Receiver<SessionState>,
    ) -> StateChanges {
        StateChanges {
            rx,
            current,
            done: false,
        }
    }

    /// The next state change, or `None` after the terminal state was delivered.
    /// Cancellation-safe.
    pub async fn next(&mut self) -> Option<SessionState> {
        if self.done {
            return None;
        }
        let state = loop {
            tokio::select! {
                biased;
                received = self.rx.recv() => match received {
                    Ok(state) => break state,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => {
                        break *self.current.borrow();
                    }
                },
                // The session ended before (or while) this stream was created.
                terminal = async {
                    self.current.wait_for(|s| s.is_terminal()).await.map(|s| *s)
                } => match terminal {
                    Ok(state) => break state,
                    Err(_) => break *self.current.borrow(),
                },
            }
        };
        if state.is_terminal() {
            self.done = true;
        }
        Some(state)
    }
}
