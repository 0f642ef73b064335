//! The session task: the only long-lived task of a client.
//!
//! ```text
//!            ┌────────────── connect loop ───────────────┐   handshake ok
//!  start ──▶ │ next host (resolved, shuffled; back-off    │──▶ SASL (if configured) ──▶ serve loop
//!            │ between full rounds) → TCP → ConnectRequest│      │ lost: next host     │
//!            └───────────────▲────────────────────────────┘◀─────┘                     │
//!                            └──────── connection lost (Suspended) ◀───────────────────┘
//!  terminal: server says expired, local expiry, auth failed, close(), last handle dropped
//! ```
//!
//! While disconnected, commands wait in a queue (each bounded by the request timeout) and are
//! sent after the next handshake, behind the auth packets and the `setWatches` batches. With
//! SASL configured, the exchange runs first on every connection (nothing else is written
//! before it completes; commands keep queueing meanwhile); a refused login ends the session
//! in `AuthFailed`.
//!
//! The serve loop is one `tokio::select!` over the socket, the command channel, a ping timer
//! (a third of the negotiated timeout, at most 10 s) and a read timeout (two thirds), and
//! delegates all protocol work to the sans-io [`core::Core`].

pub(crate) mod coalesce;
pub(crate) mod core;
pub(crate) mod pending;
pub(crate) mod state;
pub(crate) mod watches;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{Instant, sleep, sleep_until};
use tracing::Instrument;
use zk_proto::records::AuthPacket;
use zk_proto::{AddWatchMode, frame};

use self::coalesce::Coalescer;
use self::core::{
    Core, Fatal, FrameEvent, Negotiated, Outgoing, SaslReply, parse_connect_response, sasl_frame,
    sasl_reply,
};
pub use self::state::{LostReason, SessionState};
use self::state::{Transition, next_state};
use crate::builder::Config;
use crate::error::Error;
use crate::hosts::HostList;
use crate::sasl::{DigestMd5, MECHANISM, SaslError, random_cnonce};
use crate::transport::{Connector, Endpoint, Stream, tls_failure};

/// The most time between two pings (the Java client's `MAX_SEND_PING_INTERVAL`).
const MAX_PING_INTERVAL: Duration = Duration::from_secs(10);
/// The shortest per-server connect timeout.
const MIN_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);
/// A connection that lasted at least this long resets the reconnect back-off; a shorter
/// one counts as a failed attempt.
const STABLE_CONNECTION: Duration = Duration::from_secs(1);

/// Free space kept in the read buffer before each read: without it, `read_buf` on a full
/// `BytesMut` would only add 64 bytes at a time.
const READ_RESERVE: usize = 64 * 1024;

/// The most `sasl` round trips one login may take (`DIGEST-MD5` needs two).
const SASL_MAX_ROUNDS: usize = 4;

/// How many queued commands the serve loop takes in one go.
const COMMAND_BATCH: usize = 256;
/// First and longest pause between two read-write probes while on a read-only server.
const MIN_RW_PROBE_INTERVAL: Duration = Duration::from_millis(100);
const MAX_RW_PROBE_INTERVAL: Duration = Duration::from_secs(60);

type RwProbe = std::pin::Pin<Box<dyn Future<Output = Option<Endpoint>> + Send>>;

/// Asks each candidate `isro` (through the session's connector, so over TLS when the session
/// uses TLS); returns the first that answers `rw`.
async fn probe_read_write(
    connector: Connector,
    candidates: Vec<Endpoint>,
    limit: Duration,
) -> Option<Endpoint> {
    for endpoint in candidates {
        let ask = async {
            let mut stream = connector(endpoint.clone()).await.ok()?;
            stream.write_all(b"isro").await.ok()?;
            let mut answer = Vec::with_capacity(8);
            let mut buf = [0u8; 8];
            while answer.len() < 4 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                }
            }
            Some(answer.starts_with(b"rw"))
        };
        match tokio::time::timeout(limit, ask).await {
            Ok(Some(true)) => return Some(endpoint),
            _ => tracing::debug!(%endpoint, "not a read-write server"),
        }
    }
    None
}

/// A message from a client handle to the session task.
#[derive(Debug)]
pub(crate) enum Command {
    Request(Outgoing),
    AddAuth {
        packet: AuthPacket,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
    /// A persistent watcher was dropped.
    WatcherDropped {
        server_path: String,
        mode: AddWatchMode,
    },
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
    let mut core = Core::new(config.chroot.clone(), config.max_frame_in);
    for (scheme, auth) in &config.auths {
        core.remember_auth(AuthPacket::new(scheme.clone(), auth.clone()));
    }
    let task = Task {
        hosts: HostList::new(config.hosts.clone()),
        config,
        core,
        rx,
        waiting: VecDeque::new(),
        state: None,
        state_tx,
        server_tx,
        changes_tx: changes.clone(),
        session: None,
        established: Some(established_tx),
        close_replies: Vec::new(),
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

/// How the session ended.
#[derive(Debug)]
enum End {
    Expired,
    Closed,
    AuthFailed,
    /// No session could be established (fail-fast).
    ConnectFailed(Error),
}

/// Why the SASL exchange on a connection did not succeed.
#[derive(Debug)]
enum SaslFailure {
    /// The server refused the login, or the mechanism refused the server: terminal.
    Rejected(String),
    /// The connection broke (or the server broke the protocol): try the next server.
    Lost(Error),
}

impl From<SaslError> for SaslFailure {
    fn from(e: SaslError) -> Self {
        SaslFailure::Rejected(e.0)
    }
}

/// The SASL `DIGEST-MD5` exchange on a fresh connection, one `sasl` request at a time with
/// the reserved `xids`; hands the connection back once the server proved itself.
async fn sasl_exchange(
    mut stream: Stream,
    mut inbuf: BytesMut,
    mut mechanism: DigestMd5,
    xids: Vec<i32>,
    max_frame_in: usize,
) -> Result<(Stream, BytesMut), SaslFailure> {
    let lost = |e: std::io::Error| {
        tracing::debug!(error = %e, "connection failed during the SASL exchange");
        SaslFailure::Lost(Error::ConnectionLoss {
            outcome_unknown: false,
        })
    };
    let mut token = Some(mechanism.initial_token());
    for xid in xids {
        let Some(out) = token.take() else { break };
        let frame = sasl_frame(xid, out).map_err(SaslFailure::Lost)?;
        stream.write_all(&frame).await.map_err(lost)?;
        let server_token = loop {
            let Some(payload) = frame::parse(&mut inbuf, max_frame_in)
                .map_err(|e| SaslFailure::Lost(Error::protocol(e)))?
            else {
                inbuf.reserve(READ_RESERVE);
                if stream.read_buf(&mut inbuf).await.map_err(lost)? == 0 {
                    return Err(SaslFailure::Lost(Error::ConnectionLoss {
                        outcome_unknown: false,
                    }));
                }
                continue;
            };
            match sasl_reply(payload, xid).map_err(SaslFailure::Lost)? {
                SaslReply::Other => {}
                SaslReply::Token(token) => break token,
                SaslReply::Refused(code) => {
                    return Err(SaslFailure::Rejected(format!(
                        "the server refused the login ({code:?})"
                    )));
                }
            }
        };
        token = mechanism.evaluate(&server_token)?;
        if mechanism.is_complete() {
            return Ok((stream, inbuf));
        }
    }
    Err(SaslFailure::Rejected(format!(
        "the exchange did not complete in {SASL_MAX_ROUNDS} rounds"
    )))
}

/// Why a connection did not get past the SASL exchange.
#[derive(Debug)]
enum AuthStop {
    /// The session ends (refused login, or closed meanwhile).
    End(End),
    /// The connection broke: try the next server.
    Lost(Error),
}

/// How one connection ended.
#[derive(Debug)]
enum ServeEnd {
    Lost(String),
    End(End),
}

struct Task {
    config: Arc<Config>,
    core: Core,
    hosts: HostList,
    rx: mpsc::UnboundedReceiver<Command>,
    /// Commands received while disconnected, with the time they arrived.
    waiting: VecDeque<(Instant, Command)>,
    state: Option<SessionState>,
    state_tx: watch::Sender<SessionState>,
    /// The server of the current connection (`None` while disconnected).
    server_tx: watch::Sender<Option<Endpoint>>,
    changes_tx: broadcast::Sender<SessionState>,
    session: Option<Negotiated>,
    established: Option<oneshot::Sender<Result<Established, Error>>>,
    close_replies: Vec<oneshot::Sender<()>>,
    /// Why the current round's attempts failed: the last error, except that a TLS error
    /// (which names the problem) is not replaced by a bare connection loss or timeout.
    last_error: Option<Error>,
}

fn ms(timeout_ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0))
}

async fn resolve_round(hosts: &mut HostList) {
    hosts.start_round().await;
}

/// The error for a failed connection attempt: [`Error::Tls`] naming the problem for a TLS
/// failure (logged at warn: it will not go away by itself), else a connection loss.
fn attempt_error(addr: &Endpoint, e: &std::io::Error) -> Error {
    if let Some(problem) = tls_failure(e) {
        tracing::warn!(%addr, %problem, "TLS connection attempt failed");
        return Error::Tls(format!("{addr}: {problem}"));
    }
    tracing::debug!(%addr, error = %e, "connection attempt failed");
    Error::ConnectionLoss {
        outcome_unknown: false,
    }
}

/// Connect (TCP, TLS if configured) plus handshake, bounded by `limit`.
async fn handshake(
    connector: Connector,
    addr: Endpoint,
    request: BytesMut,
    limit: Duration,
    max_frame_in: usize,
) -> Result<(Stream, BytesMut, Negotiated), Error> {
    let target = addr.clone();
    let attempt = async move {
        let lost = |e: std::io::Error| attempt_error(&addr, &e);
        let mut stream = connector(addr.clone()).await.map_err(lost)?;
        stream.write_all(&request).await.map_err(lost)?;
        let mut inbuf = BytesMut::with_capacity(8 * 1024);
        loop {
            if let Some(negotiated) = parse_connect_response(&mut inbuf, max_frame_in)? {
                return Ok((stream, inbuf, negotiated));
            }
            inbuf.reserve(READ_RESERVE);
            if stream.read_buf(&mut inbuf).await.map_err(lost)? == 0 {
                tracing::debug!(%addr, "server closed the connection during the handshake");
                return Err(Error::ConnectionLoss {
                    outcome_unknown: false,
                });
            }
        }
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => {
            tracing::info!(addr = %target, ?limit, "no handshake answer in time");
            Err(Error::Timeout)
        }
    }
}

impl Task {
    async fn run(mut self) {
        let end = self.main_loop().await;
        let (transition, state, error) = match end {
            End::Expired => (
                Transition::Expired,
                SessionState::Lost(LostReason::Expired),
                Error::SessionExpired,
            ),
            End::Closed => (
                Transition::Closed,
                SessionState::Lost(LostReason::Closed),
                Error::Closed,
            ),
            End::AuthFailed => (
                Transition::AuthFailed,
                SessionState::AuthFailed,
                Error::AuthFailed,
            ),
            End::ConnectFailed(e) => (
                Transition::Closed,
                SessionState::Lost(LostReason::Closed),
                e,
            ),
        };
        match end_kind(&state) {
            "expired" => tracing::warn!("session expired"),
            kind => tracing::info!(end = kind, "session ended"),
        }
        self.transition(transition);
        self.core.terminate(state);
        if let Some(established) = self.established.take() {
            let _ = established.send(Err(error));
        }
        self.rx.close();
        let waiting: Vec<Command> = self.waiting.drain(..).map(|(_, c)| c).collect();
        let queued = std::iter::from_fn(|| self.rx.try_recv().ok());
        for command in waiting.into_iter().chain(queued.collect::<Vec<_>>()) {
            fail_command(command, state.terminal_error(), &mut self.close_replies);
        }
        for reply in self.close_replies.drain(..) {
            let _ = reply.send(());
        }
    }

    fn transition(&mut self, transition: Transition) {
        if let Some(next) = next_state(self.state, transition) {
            tracing::info!(state = ?next, "session state changed");
            self.state = Some(next);
            self.state_tx.send_replace(next);
            let _ = self.changes_tx.send(next);
        }
    }

    fn remember_error(&mut self, error: Error) {
        let vaguer = matches!(error, Error::ConnectionLoss { .. } | Error::Timeout);
        if !(vaguer && matches!(self.last_error, Some(Error::Tls(_)))) {
            self.last_error = Some(error);
        }
    }

    fn attempt_timeout(&self) -> Duration {
        if let Some(limit) = self.config.attempt_timeout {
            return limit;
        }
        let timeout = self
            .session
            .as_ref()
            .map_or(self.config.session_timeout, |s| ms(s.timeout_ms));
        let hosts = u32::try_from(self.hosts.len().max(1)).unwrap_or(u32::MAX);
        // Never more than a third of the session timeout, even with one or two hosts: one
        // attempt that hangs (a connection accepted but never answered, e.g. by a server
        // that is restarting) must leave time for more attempts before the session expires.
        (timeout / hosts).min(timeout / 3).max(MIN_ATTEMPT_TIMEOUT)
    }

    async fn main_loop(&mut self) -> End {
        let mut backoff = self.config.reconnect_backoff.build();
        // Whether a round of hosts already started (the first one starts at once).
        let mut started = false;
        // Whether the current round connected somewhere (then its end needs no back-off).
        let mut connected_this_round = false;
        let mut disconnected_at = Instant::now();
        loop {
            let Some(addr) = self.hosts.next() else {
                if started && !connected_this_round {
                    tracing::warn!(error = ?self.last_error, "no server could be reached in a full round");
                    if self.session.is_none() && self.config.fail_fast {
                        let error = self.last_error.take().unwrap_or(Error::ConnectionLoss {
                            outcome_unknown: false,
                        });
                        return End::ConnectFailed(error);
                    }
                    let delay = backoff.next().unwrap_or(Duration::from_secs(1));
                    if let Err(end) = self.idle(sleep(delay), disconnected_at).await {
                        return end;
                    }
                }
                started = true;
                connected_this_round = false;
                self.last_error = None;
                let mut hosts = std::mem::replace(&mut self.hosts, HostList::new(Vec::new()));
                let resolved = self.idle(resolve_round(&mut hosts), disconnected_at).await;
                self.hosts = hosts;
                if let Err(end) = resolved {
                    return end;
                }
                if self.hosts.addresses().is_empty() {
                    self.last_error = Some(Error::InvalidConnectString(
                        "no host could be resolved".into(),
                    ));
                }
                continue;
            };
            started = true;
            let session = self
                .session
                .as_ref()
                .map(|s| (s.session_id, s.password.clone()));
            let timeout_ms =
                i32::try_from(self.config.session_timeout.as_millis()).unwrap_or(i32::MAX);
            let request = self
                .core
                .connect_frame(session, timeout_ms, self.config.read_only);
            let attempt = handshake(
                self.config.connector.clone(),
                addr.clone(),
                request,
                self.attempt_timeout(),
                self.config.max_frame_in,
            );
            let (stream, inbuf, negotiated) = match self.idle(attempt, disconnected_at).await {
                Err(end) => return end,
                Ok(Err(error)) => {
                    tracing::debug!(%addr, %error, "cannot connect");
                    self.remember_error(error);
                    continue;
                }
                Ok(Ok(connected)) => connected,
            };
            if negotiated.timeout_ms <= 0 {
                if self.session.is_some() {
                    tracing::warn!(%addr, "server reports the session expired");
                    return End::Expired;
                }
                tracing::debug!(%addr, "server refused to create a session");
                self.last_error = Some(Error::Protocol("server refused the session".into()));
                continue;
            }
            if let Some(old) = &self.session {
                if old.session_id != negotiated.session_id {
                    tracing::warn!(%addr, "server answered with another session id");
                    return End::Expired;
                }
            } else {
                tracing::Span::current().record(
                    "session_id",
                    tracing::field::display(format_args!("{:#x}", negotiated.session_id)),
                );
            }
            tracing::info!(
                %addr,
                timeout_ms = negotiated.timeout_ms,
                read_only = negotiated.read_only,
                "connected"
            );
            let read_only = negotiated.read_only;
            let timeout = ms(negotiated.timeout_ms);
            self.session = Some(negotiated);
            let (stream, inbuf) = match self.authenticate(stream, inbuf, &addr, timeout).await {
                Ok(connection) => connection,
                Err(AuthStop::End(end)) => return end,
                Err(AuthStop::Lost(error)) => {
                    tracing::debug!(%addr, %error, "connection lost during the SASL exchange");
                    self.remember_error(error);
                    continue;
                }
            };
            connected_this_round = true;
            let connected_at = Instant::now();
            self.server_tx.send_replace(Some(addr.clone()));
            self.transition(Transition::Connected { read_only });
            if let (Some(established), Some(session)) = (self.established.take(), &self.session) {
                let _ = established.send(Ok(Established {
                    session_id: session.session_id,
                    timeout,
                }));
            }
            let served = self.serve(stream, inbuf, timeout, &addr, read_only).await;
            self.server_tx.send_replace(None);
            match served {
                ServeEnd::End(end) => return end,
                ServeEnd::Lost(reason) => {
                    tracing::info!(%addr, reason, "connection lost");
                    if self.core.connection_lost() {
                        return End::Closed;
                    }
                    if connected_at.elapsed() >= STABLE_CONNECTION {
                        backoff = self.config.reconnect_backoff.build();
                    } else {
                        // A server that accepts sessions and drops them at once must not
                        // make the client spin: treat it like a failed attempt.
                        connected_this_round = false;
                    }
                    disconnected_at = Instant::now();
                    self.transition(Transition::Disconnected);
                    let delay = reconnect_delay(self.config.reconnect_delay, timeout);
                    if !delay.is_zero() {
                        tracing::debug!(?delay, "waiting before reconnecting");
                        if let Err(end) = self.idle(sleep(delay), disconnected_at).await {
                            return end;
                        }
                    }
                }
            }
        }
    }

    /// Runs the SASL exchange on a new connection when configured, before anything else is
    /// written to it; commands arriving meanwhile are queued as while disconnected. Bounded
    /// by the read timeout (two thirds of the session timeout).
    async fn authenticate(
        &mut self,
        stream: Stream,
        inbuf: BytesMut,
        addr: &Endpoint,
        timeout: Duration,
    ) -> Result<(Stream, BytesMut), AuthStop> {
        let Some(credentials) = self.config.sasl.clone() else {
            return Ok((stream, inbuf));
        };
        let user = credentials.username.clone();
        let mechanism = DigestMd5::new(credentials, random_cnonce());
        let xids = self.core.reserve_xids(SASL_MAX_ROUNDS);
        let exchange = sasl_exchange(stream, inbuf, mechanism, xids, self.config.max_frame_in);
        let limit = timeout * 2 / 3;
        // The server just accepted the session: its timeout counts from now.
        match self
            .idle(tokio::time::timeout(limit, exchange), Instant::now())
            .await
        {
            Err(end) => Err(AuthStop::End(end)),
            Ok(Ok(Ok(connection))) => {
                tracing::info!(%addr, mechanism = MECHANISM, user, "SASL authentication succeeded");
                Ok(connection)
            }
            Ok(Ok(Err(SaslFailure::Rejected(reason)))) => {
                tracing::warn!(%addr, mechanism = MECHANISM, user, reason, "SASL authentication failed");
                Err(AuthStop::End(End::AuthFailed))
            }
            Ok(Ok(Err(SaslFailure::Lost(error)))) => Err(AuthStop::Lost(error)),
            Ok(Err(_)) => {
                tracing::debug!(%addr, ?limit, "SASL exchange timed out");
                Err(AuthStop::Lost(Error::Timeout))
            }
        }
    }

    /// Runs `fut` while disconnected: commands are queued, queued requests time out, and the
    /// session expires locally once no server was reachable for the negotiated timeout.
    async fn idle<F: Future>(
        &mut self,
        fut: F,
        disconnected_at: Instant,
    ) -> Result<F::Output, End> {
        tokio::pin!(fut);
        loop {
            let expiry = self
                .session
                .as_ref()
                .map(|s| disconnected_at + ms(s.timeout_ms));
            let request_deadline = self
                .waiting
                .front()
                .map(|(queued, _)| *queued + self.config.request_timeout);
            let far = Instant::now() + Duration::from_secs(86_400);
            tokio::select! {
                output = &mut fut => return Ok(output),
                command = self.rx.recv() => match command {
                    None => return Err(End::Closed),
                    Some(Command::Close { reply }) => {
                        self.close_replies.push(reply);
                        return Err(End::Closed);
                    }
                    // Nothing to tell the server: the watcher is not restored on the next one.
                    Some(Command::WatcherDropped { .. }) => {}
                    Some(command) if self.waiting.len() >= self.config.max_queued => {
                        tracing::debug!(queued = self.waiting.len(), "queue of requests waiting for a connection is full");
                        fail_command(command, Error::ConnectionLoss { outcome_unknown: false }, &mut self.close_replies);
                    }
                    Some(command) => self.waiting.push_back((Instant::now(), command)),
                },
                () = sleep_until(expiry.unwrap_or(far)), if expiry.is_some() => {
                    tracing::warn!("no server reachable within the session timeout: expiring locally");
                    return Err(End::Expired);
                }
                () = sleep_until(request_deadline.unwrap_or(far)), if request_deadline.is_some() => {
                    let now = Instant::now();
                    while let Some((queued, _)) = self.waiting.front() {
                        if *queued + self.config.request_timeout > now {
                            break;
                        }
                        if let Some((_, command)) = self.waiting.pop_front() {
                            fail_command(command, Error::Timeout, &mut self.close_replies);
                        }
                    }
                }
            }
        }
    }

    fn dispatch(&mut self, command: Command, closing: &mut Option<Instant>, close_limit: Duration) {
        match command {
            Command::Request(outgoing) => self.core.submit(outgoing),
            Command::AddAuth { packet, reply } => self.core.submit_auth(packet, reply),
            Command::Close { reply } => {
                self.close_replies.push(reply);
                self.begin_close(closing, close_limit);
            }
            Command::WatcherDropped { server_path, mode } => {
                self.core.watcher_dropped(server_path, mode);
            }
        }
    }

    fn begin_close(&mut self, closing: &mut Option<Instant>, close_limit: Duration) {
        if closing.is_none() {
            tracing::debug!("closing the session");
            self.core.submit_close();
            *closing = Some(Instant::now() + close_limit);
        }
    }

    /// Serves one connection until it breaks or the session ends. On a read-only server it
    /// also probes the other servers (`isro`, 100 ms doubling to 60 s, like Java) and leaves
    /// for the first read-write one.
    async fn serve(
        &mut self,
        stream: Stream,
        mut inbuf: BytesMut,
        timeout: Duration,
        addr: &Endpoint,
        read_only: bool,
    ) -> ServeEnd {
        let read_timeout = timeout * 2 / 3;
        let ping_interval = (timeout / 3).min(MAX_PING_INTERVAL);
        let close_limit = read_timeout;
        let (mut reader, mut writer) = tokio::io::split(stream);
        self.core.prime();
        let mut closing = None;
        while let Some((_, command)) = self.waiting.pop_front() {
            self.dispatch(command, &mut closing, close_limit);
        }
        let mut last_recv = Instant::now();
        let mut last_send = Instant::now();
        if !inbuf.is_empty() {
            match self.core.receive(&mut inbuf) {
                Ok(FrameEvent::Nothing) => {}
                Ok(FrameEvent::CloseAcknowledged) => return ServeEnd::End(End::Closed),
                Err(fatal) => return fatal_end(fatal),
            }
        }
        let mut rw_interval = MIN_RW_PROBE_INTERVAL;
        let mut next_rw_probe = Instant::now() + rw_interval;
        let mut rw_probe: Option<RwProbe> = None;
        // One lazy timer for pings, the read timeout, the close bound and read-write probes:
        // it is not moved on every read or write, only re-armed when it fires (so a busy
        // connection touches the timer wheel about once per ping interval).
        let first = (last_recv + read_timeout).min(last_send + ping_interval);
        let timer = sleep_until(if read_only {
            first.min(next_rw_probe)
        } else {
            first
        });
        tokio::pin!(timer);
        // Reply coalescing (see coalesce.rs): a paused read resumes when this timer fires.
        let mut coalescer = self.config.coalesce.map(Coalescer::new);
        let coalesce = sleep_until(Instant::now());
        tokio::pin!(coalesce);
        let mut paused = false;
        loop {
            if inbuf.capacity() - inbuf.len() < READ_RESERVE / 4 {
                inbuf.reserve(READ_RESERVE);
            }
            tokio::select! {
                () = &mut coalesce, if paused => paused = false,
                read = reader.read_buf(&mut inbuf), if !paused => match read {
                    Ok(0) if closing.is_some() => return ServeEnd::End(End::Closed),
                    Ok(0) => return ServeEnd::Lost("server closed the connection".into()),
                    Err(e) if closing.is_some() => {
                        tracing::debug!(error = %e, "read failed while closing");
                        return ServeEnd::End(End::Closed);
                    }
                    Err(e) => return ServeEnd::Lost(format!("read failed: {e}")),
                    Ok(n) => {
                        last_recv = Instant::now();
                        let frames_before = self.core.frames_received();
                        let in_flight_before = self.core.in_flight();
                        match self.core.receive(&mut inbuf) {
                            Ok(FrameEvent::Nothing) => {}
                            Ok(FrameEvent::CloseAcknowledged) => return ServeEnd::End(End::Closed),
                            Err(fatal) => return fatal_end(fatal),
                        }
                        if let Some(coalescer) = coalescer.as_mut() {
                            let frames = self.core.frames_received() - frames_before;
                            let in_flight = self.core.in_flight();
                            if let Some(pause) = coalescer.after_read(last_recv, n, frames, in_flight_before, in_flight) {
                                paused = true;
                                coalesce.as_mut().reset(last_recv + pause);
                            }
                        }
                    }
                },
                written = writer.write_buf(&mut self.core.out), if !self.core.out.is_empty() => match written {
                    Ok(_) => last_send = Instant::now(),
                    Err(e) if closing.is_some() => {
                        tracing::debug!(error = %e, "write failed while closing");
                        return ServeEnd::End(End::Closed);
                    }
                    Err(e) => return ServeEnd::Lost(format!("write failed: {e}")),
                },
                command = self.rx.recv(), if closing.is_none() => match command {
                    None => self.begin_close(&mut closing, close_limit),
                    Some(command) => {
                        self.dispatch(command, &mut closing, close_limit);
                        for _ in 0..COMMAND_BATCH {
                            if closing.is_some() {
                                break;
                            }
                            match self.rx.try_recv() {
                                Ok(command) => self.dispatch(command, &mut closing, close_limit),
                                Err(_) => break,
                            }
                        }
                    }
                },
                () = &mut timer => {
                    let now = Instant::now();
                    if closing.is_some_and(|deadline| now >= deadline) {
                        tracing::debug!("no reply to closeSession in time");
                        return ServeEnd::End(End::Closed);
                    }
                    if now >= last_recv + read_timeout {
                        if closing.is_some() {
                            return ServeEnd::End(End::Closed);
                        }
                        return ServeEnd::Lost(format!("nothing received for {read_timeout:?}"));
                    }
                    let mut next_ping = last_send + ping_interval;
                    if now >= next_ping {
                        if self.core.out.is_empty() {
                            tracing::trace!("ping");
                            self.core.push_ping();
                        }
                        // With bytes still queued, a write is under way: no ping needed.
                        last_send = now;
                        next_ping = now + ping_interval;
                    }
                    if read_only && rw_probe.is_none() && closing.is_none() && now >= next_rw_probe {
                        let candidates: Vec<Endpoint> = self
                            .hosts
                            .addresses()
                            .iter()
                            .filter(|a| a.addr != addr.addr)
                            .cloned()
                            .collect();
                        rw_probe = Some(Box::pin(probe_read_write(
                            self.config.connector.clone(),
                            candidates,
                            self.attempt_timeout(),
                        )));
                    }
                    let mut next = (last_recv + read_timeout).min(next_ping);
                    if let Some(deadline) = closing {
                        next = next.min(deadline);
                    }
                    if read_only && rw_probe.is_none() {
                        next = next.min(next_rw_probe);
                    }
                    timer.as_mut().reset(next);
                }
                found = async {
                    match rw_probe.as_mut() {
                        Some(probe) => probe.await,
                        None => std::future::pending().await,
                    }
                }, if rw_probe.is_some() => {
                    rw_probe = None;
                    if let Some(rw) = found {
                        tracing::info!(%rw, "read-write server reachable: leaving the read-only one");
                        self.hosts.prefer(rw);
                        return ServeEnd::Lost("moving to a read-write server".into());
                    }
                    rw_interval = (rw_interval * 2).min(MAX_RW_PROBE_INTERVAL);
                    next_rw_probe = Instant::now() + rw_interval;
                    let next = timer.deadline().min(next_rw_probe);
                    timer.as_mut().reset(next);
                }
            }
        }
    }
}

/// A random pause before reconnecting after a lost connection, at most `max` and a tenth of
/// the session timeout: the clients of a server that died spread out over the survivors
/// instead of all arriving at once (the Java client waits up to 1 s too).
fn reconnect_delay(max: Duration, session_timeout: Duration) -> Duration {
    let limit = max.min(session_timeout / 10);
    if limit.is_zero() {
        return Duration::ZERO;
    }
    limit.mul_f64(rand::random::<f64>())
}

fn end_kind(state: &SessionState) -> &'static str {
    match state {
        SessionState::Lost(LostReason::Expired) => "expired",
        SessionState::AuthFailed => "auth failed",
        _ => "closed",
    }
}

fn fatal_end(fatal: Fatal) -> ServeEnd {
    match fatal {
        Fatal::AuthFailed => {
            tracing::warn!("authentication failed");
            ServeEnd::End(End::AuthFailed)
        }
        Fatal::Protocol(error) => {
            tracing::warn!(%error, "protocol violation: dropping the connection");
            ServeEnd::Lost(error.to_string())
        }
    }
}

fn fail_command(command: Command, error: Error, close_replies: &mut Vec<oneshot::Sender<()>>) {
    match command {
        Command::Request(outgoing) => {
            let _ = outgoing.reply.send(Err(error));
        }
        Command::AddAuth { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::Close { reply } => close_replies.push(reply),
        Command::WatcherDropped { .. } => {}
    }
}
