//! The session layer: one long-lived task per client, and the sans-io machine it drives.
//!
//! ```text
//!            ┌──────────── connecting (connect.rs) ──────────────┐   handshake ok
//!  start ──▶ │ next host (resolved, shuffled; back-off between    │──▶ SASL (if configured) ──▶ serving (serve.rs)
//!            │ full rounds) → TCP/TLS → ConnectRequest            │      │ lost: next host      │
//!            └───────────────▲────────────────────────────────────┘◀─────┘                      │
//!                            └──────── connection lost (Suspended), random delay ◀──────────────┘
//!  terminal: server says expired, local expiry, auth failed, close(), last handle dropped
//! ```
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | spawning the task, the connect/serve alternation, [`Task::idle`], the end |
//! | `connect.rs` | host rounds, handshake, SASL exchange, `isro` probe (I/O) |
//! | `serve.rs` | the serve loop of one connection (I/O) |
//! | `machine.rs` | sans-io: every timer (`poll_timeout`/`handle_timeout`), the queue of requests waiting for a connection, back-off and jitter |
//! | `core.rs` | sans-io: requests → bytes, bytes → replies and watch events |
//! | `state.rs` | the public state model, its transitions, [`Ended`] (how a connection ended) |
//! | `pending.rs`, `watches.rs`, `event.rs`, `stream.rs` | requests in flight, the watch registry, [`WatchedEvent`], a persistent watcher's event queue |
//! | `config.rs`, `rng.rs`, `coalesce.rs` | settings, the seedable generator, reply coalescing |
//!
//! While disconnected, commands wait in a queue (each bounded by the request timeout) and are
//! sent after the next handshake, behind the auth packets and the `setWatches` batches. With
//! SASL configured, the exchange runs first on every connection (nothing else is written
//! before it completes; commands keep queueing meanwhile); a refused login ends the session
//! in `AuthFailed`.
//!
//! Imports go one way: the public API files (`client.rs`, `builder.rs`, `watcher.rs`, `ops/`)
//! use this module; it uses only the leaves (`error.rs`, `hosts.rs`, `transport.rs`,
//! `sasl.rs`). Every `select!` here is `biased`, and all randomness comes from the seed in
//! the config, so that under a paused single-threaded runtime a run replays exactly.

pub(crate) mod coalesce;
pub(crate) mod config;
mod connect;
pub(crate) mod core;
pub(crate) mod event;
pub(crate) mod machine;
pub(crate) mod pending;
mod rng;
mod serve;
pub(crate) mod state;
pub(crate) mod stream;
pub(crate) mod watches;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::sleep_until;
use tracing::Instrument;

pub(crate) use self::config::Config;
pub use self::event::WatchedEvent;
pub(crate) use self::machine::Command;
use self::machine::{Machine, Wake};
pub(crate) use self::state::Ended;
pub use self::state::{LostReason, SessionState};
use self::state::{Transition, next_state};
use crate::error::Error;
use crate::hosts::HostList;
use crate::transport::Endpoint;

/// Free space kept in the read buffer before each read: without it, `read_buf` on a full
/// `BytesMut` would only add 64 bytes at a time.
const READ_RESERVE: usize = 64 * 1024;

/// The runtime's clock (tokio's: paused and advanced in tests and simulations).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A runtime deadline for a machine deadline (`None`: a day from now, never reached in
/// practice; the branches using it are disabled then).
fn at(deadline: Option<Instant>) -> tokio::time::Instant {
    match deadline {
        Some(deadline) => tokio::time::Instant::from_std(deadline),
        None => tokio::time::Instant::now() + Duration::from_secs(86_400),
    }
}

/// What the first handshake established.
#[derive(Debug, Clone)]
pub(crate) struct Established {
    pub(crate) session_id: i64,
    pub(crate) timeout: Duration,
}

/// The channels a client handle keeps.
pub(crate) struct Handles {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) state: watch::Receiver<SessionState>,
    pub(crate) changes: broadcast::Sender<SessionState>,
    pub(crate) established: oneshot::Receiver<Result<Established, Error>>,
    pub(crate) server: watch::Receiver<Option<Endpoint>>,
}

/// Starts the session task.
pub(crate) fn spawn(config: Arc<Config>) -> Handles {
    let (commands, rx) = mpsc::unbounded_channel();
    let (state_tx, state) = watch::channel(SessionState::Suspended);
    let (changes, _) = broadcast::channel(64);
    let (established_tx, established) = oneshot::channel();
    let (server_tx, server) = watch::channel(None);
    let task = Task {
        hosts: HostList::new(config.hosts.clone()),
        machine: Machine::new(&config, now()),
        config,
        rx,
        state: None,
        state_tx,
        server_tx,
        changes_tx: changes.clone(),
        established: Some(established_tx),
        last_error: None,
    };
    let span = tracing::info_span!("zk_session", session_id = tracing::field::Empty);
    tokio::spawn(task.run().instrument(span));
    Handles {
        commands,
        state,
        changes,
        established,
        server,
    }
}

struct Task {
    config: Arc<Config>,
    machine: Machine,
    hosts: HostList,
    rx: mpsc::UnboundedReceiver<Command>,
    state: Option<SessionState>,
    state_tx: watch::Sender<SessionState>,
    /// The server of the current connection (`None` while disconnected).
    server_tx: watch::Sender<Option<Endpoint>>,
    changes_tx: broadcast::Sender<SessionState>,
    established: Option<oneshot::Sender<Result<Established, Error>>>,
    /// Why the current round's attempts failed (see `remember_error`).
    last_error: Option<Error>,
}

impl Task {
    async fn run(mut self) {
        let end = match self.main_loop().await {
            Ended::Lost(_) => Ended::Closed,
            end => end,
        };
        let Some((transition, state, error)) = end.outcome() else {
            return;
        };
        match state {
            SessionState::Lost(LostReason::Expired) => tracing::warn!("session expired"),
            SessionState::AuthFailed => tracing::info!(end = "auth failed", "session ended"),
            _ => tracing::info!(end = "closed", "session ended"),
        }
        self.transition(transition);
        if let Some(established) = self.established.take() {
            let _ = established.send(Err(error));
        }
        self.rx.close();
        let late: Vec<Command> = std::iter::from_fn(|| self.rx.try_recv().ok()).collect();
        self.machine.terminate(state, late);
    }

    fn transition(&mut self, transition: Transition) {
        if let Some(next) = next_state(self.state, transition) {
            tracing::info!(state = ?next, "session state changed");
            self.state = Some(next);
            self.state_tx.send_replace(next);
            let _ = self.changes_tx.send(next);
        }
    }

    /// Connecting and serving, until the session ends (never [`Ended::Lost`]).
    async fn main_loop(&mut self) -> Ended {
        // Whether a round of hosts already started (the first one starts at once).
        let mut started = false;
        // Whether the current round connected somewhere (then its end needs no back-off).
        let mut connected_this_round = false;
        loop {
            let Some(addr) = self.hosts.next() else {
                if started && !connected_this_round {
                    tracing::warn!(error = ?self.last_error, "no server could be reached in a full round");
                    if self.machine.session.is_none() && self.config.fail_fast {
                        let error = self.last_error.take().unwrap_or(Error::ConnectionLoss {
                            outcome_unknown: false,
                        });
                        return Ended::ConnectFailed(error);
                    }
                    let delay = self.machine.round_backoff();
                    if let Err(end) = self.pause(delay).await {
                        return end;
                    }
                }
                started = true;
                connected_this_round = false;
                self.last_error = None;
                if let Err(end) = self.start_round().await {
                    return end;
                }
                continue;
            };
            started = true;
            let connection = match self.connect_to(&addr).await {
                Err(end) => return end,
                Ok(None) => continue,
                Ok(Some(connection)) => connection,
            };
            connected_this_round = true;
            self.server_tx.send_replace(Some(addr.clone()));
            let read_only = connection.read_only;
            self.transition(Transition::Connected { read_only });
            if let (Some(established), Some(session)) =
                (self.established.take(), &self.machine.session)
            {
                let _ = established.send(Ok(Established {
                    session_id: session.session_id,
                    timeout: self.machine.timeout(),
                }));
            }
            let ended = self
                .serve(connection.stream, connection.inbuf, &addr, read_only)
                .await;
            self.server_tx.send_replace(None);
            let Ended::Lost(reason) = ended else {
                return ended;
            };
            tracing::info!(%addr, reason, "connection lost");
            match self.machine.go_offline(now()) {
                Err(end) => return end,
                // A server that accepts sessions and drops them at once must not make the
                // client spin: treat it like a failed attempt.
                Ok(stable) => connected_this_round &= stable,
            }
            self.transition(Transition::Disconnected);
            let delay = self.machine.reconnect_delay();
            if !delay.is_zero() {
                tracing::debug!(?delay, "waiting before reconnecting");
                if let Err(end) = self.pause(delay).await {
                    return end;
                }
            }
        }
    }

    /// Runs `fut` while offline: commands are queued, the machine's timers run (queued
    /// requests time out, the session expires locally once no server was reachable for the
    /// negotiated timeout). `Ok(None)`: the step deadline passed before `fut` finished.
    async fn idle<F: Future>(&mut self, fut: F) -> Result<Option<F::Output>, Ended> {
        tokio::pin!(fut);
        loop {
            let deadline = self.machine.poll_timeout();
            tokio::select! {
                biased;
                output = &mut fut => return Ok(Some(output)),
                command = self.rx.recv() => self.machine.command(now(), command)?,
                () = sleep_until(at(deadline)), if deadline.is_some() => {
                    if self.machine.handle_timeout(now())? == Some(Wake::StepDue) {
                        return Ok(None);
                    }
                }
            }
        }
    }
}
