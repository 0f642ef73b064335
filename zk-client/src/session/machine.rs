//! The sans-io session: the protocol [`Core`] plus every timer and the queue of requests
//! waiting for a connection. No sockets, no clock, no `.await`: the task hands it commands,
//! bytes and the current time, asks [`Machine::poll_timeout`] when to wake it next and calls
//! [`Machine::handle_timeout`] then (the model of quinn-proto's `Connection`).
//!
//! ```text
//!                  go_online(now)                              go_offline(now)
//!   Offline ───────────────────────────▶ Online ─────────────────────────────▶ Offline
//!   timers: session expiry (no server      timers: ping (a third of the timeout, ≤ 10 s),
//!   for the negotiated timeout), queued    read deadline (two thirds), close deadline,
//!   requests' timeout, one step deadline   read-write probe (read-only servers: 100 ms
//!   (an attempt's limit or a pause)        doubling to 60 s)
//! ```
//!
//! The online timer is lazy: reads and writes only note the time; the deadline returned by
//! `poll_timeout` moves when it fires, so a busy connection re-arms the runtime's timer about
//! once per ping interval.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::oneshot;
use zk_proto::AddWatchMode;
use zk_proto::records::AuthPacket;

use super::config::Config;
use super::core::{Core, Negotiated, Outgoing};
use super::rng::Rng;
use super::state::{Ended, SessionState};
use crate::error::Error;

/// The most time between two pings (the Java client's `MAX_SEND_PING_INTERVAL`).
pub(crate) const MAX_PING_INTERVAL: Duration = Duration::from_secs(10);
/// The shortest per-server connect timeout.
const MIN_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);
/// A connection that lasted at least this long resets the reconnect back-off; a shorter
/// one counts as a failed attempt.
const STABLE_CONNECTION: Duration = Duration::from_secs(1);
/// First and longest pause between two read-write probes while on a read-only server.
const MIN_RW_PROBE_INTERVAL: Duration = Duration::from_millis(100);
const MAX_RW_PROBE_INTERVAL: Duration = Duration::from_secs(60);

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

/// What a fired timer asks the task to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The step deadline set with [`Machine::limit_step`] passed (an attempt took too long,
    /// or a pause is over).
    StepDue,
    /// Time to ask the other servers whether one is read-write.
    ProbeReadWrite,
}

#[derive(Debug)]
enum Link {
    Offline { since: Instant },
    Online(Online),
}

#[derive(Debug)]
struct Online {
    read_timeout: Duration,
    ping_interval: Duration,
    last_recv: Instant,
    last_send: Instant,
    /// When the lazy timer next looks at the read deadline and the ping.
    next_check: Instant,
    /// The `closeSession` deadline, once closing.
    closing: Option<Instant>,
    connected_at: Instant,
    /// On a read-only server: the probe interval and the next probe (`None` while one
    /// runs).
    read_write_probe: Option<(Duration, Option<Instant>)>,
}

/// The exponential back-off between two rounds of failed hosts, with jitter.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new((min, max): (Duration, Duration)) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The next pause: between the current step and twice it (at most `max`); the step
    /// doubles.
    fn next(&mut self, rng: &mut Rng) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        (base + base.mul_f64(rng.fraction())).min(self.max)
    }

    fn reset(&mut self) {
        self.next = self.min;
    }
}

/// The session's state apart from the sockets.
#[derive(Debug)]
pub(crate) struct Machine {
    pub(crate) core: Core,
    /// What the first handshake established (`None` before).
    pub(crate) session: Option<Negotiated>,
    link: Link,
    /// Commands received while disconnected, with the time they arrived.
    waiting: VecDeque<(Instant, Command)>,
    /// The deadline of the current connecting step (attempt limit or pause).
    step: Option<Instant>,
    close_replies: Vec<oneshot::Sender<()>>,
    rng: Rng,
    backoff: Backoff,
    request_timeout: Duration,
    max_queued: usize,
    reconnect_delay: Duration,
    session_timeout: Duration,
    attempt_timeout: Option<Duration>,
}

impl Machine {
    pub(crate) fn new(config: &Config, now: Instant) -> Machine {
        let mut core = Core::new(config.chroot.clone(), config.max_frame_in);
        for (scheme, auth) in &config.auths {
            core.remember_auth(AuthPacket::new(scheme.clone(), auth.clone()));
        }
        Machine {
            core,
            session: None,
            link: Link::Offline { since: now },
            waiting: VecDeque::new(),
            step: None,
            close_replies: Vec::new(),
            rng: Rng::new(config.seed),
            backoff: Backoff::new(config.reconnect_backoff),
            request_timeout: config.request_timeout,
            max_queued: config.max_queued,
            reconnect_delay: config.reconnect_delay,
            session_timeout: config.session_timeout,
            attempt_timeout: config.attempt_timeout,
        }
    }

    /// The negotiated session timeout (the requested one before the first handshake).
    pub(crate) fn timeout(&self) -> Duration {
        self.session
            .as_ref()
            .map_or(self.session_timeout, |s| ms(s.timeout_ms))
    }

    /// Whether `closeSession` was sent (the connection then only waits for its answer).
    pub(crate) fn is_closing(&self) -> bool {
        matches!(&self.link, Link::Online(o) if o.closing.is_some())
    }

    /// A command from a client handle (`None`: every handle is gone).
    pub(crate) fn command(&mut self, now: Instant, command: Option<Command>) -> Result<(), Ended> {
        match (&self.link, command) {
            (Link::Offline { .. }, None) => Err(Ended::Closed),
            (Link::Offline { .. }, Some(Command::Close { reply })) => {
                self.close_replies.push(reply);
                Err(Ended::Closed)
            }
            // Nothing to tell the server: the watcher is not restored on the next one.
            (Link::Offline { .. }, Some(Command::WatcherDropped { .. })) => Ok(()),
            (Link::Offline { .. }, Some(command)) => {
                if self.waiting.len() >= self.max_queued {
                    tracing::debug!(
                        queued = self.waiting.len(),
                        "queue of requests waiting for a connection is full"
                    );
                    self.fail(
                        command,
                        Error::ConnectionLoss {
                            outcome_unknown: false,
                        },
                    );
                } else {
                    self.waiting.push_back((now, command));
                }
                Ok(())
            }
            (Link::Online(_), None) => {
                self.begin_close(now);
                Ok(())
            }
            (Link::Online(_), Some(command)) => {
                self.dispatch(now, command);
                Ok(())
            }
        }
    }

    fn dispatch(&mut self, now: Instant, command: Command) {
        match command {
            Command::Request(outgoing) => self.core.submit(outgoing),
            Command::AddAuth { packet, reply } => self.core.submit_auth(packet, reply),
            Command::Close { reply } => {
                self.close_replies.push(reply);
                self.begin_close(now);
            }
            Command::WatcherDropped { server_path, mode } => {
                self.core.watcher_dropped(server_path, mode);
            }
        }
    }

    fn begin_close(&mut self, now: Instant) {
        if let Link::Online(online) = &mut self.link
            && online.closing.is_none()
        {
            tracing::debug!("closing the session");
            self.core.submit_close();
            online.closing = Some(now + online.read_timeout);
        }
    }

    fn fail(&mut self, command: Command, error: Error) {
        match command {
            Command::Request(outgoing) => {
                let _ = outgoing.reply.send(Err(error));
            }
            Command::AddAuth { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Command::Close { reply } => self.close_replies.push(reply),
            Command::WatcherDropped { .. } => {}
        }
    }

    /// Bounds the current connecting step: [`Wake::StepDue`] at `deadline` (`None` clears).
    pub(crate) fn limit_step(&mut self, deadline: Option<Instant>) {
        self.step = deadline;
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run next (`None`: no timer).
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match &self.link {
            Link::Offline { since } => {
                let expiry = self.session.as_ref().map(|s| *since + ms(s.timeout_ms));
                let queued = self
                    .waiting
                    .front()
                    .map(|(queued, _)| *queued + self.request_timeout);
                [expiry, queued, self.step].into_iter().flatten().min()
            }
            Link::Online(online) => {
                let probe = online.read_write_probe.and_then(|(_, next)| next);
                [Some(online.next_check), online.closing, probe]
                    .into_iter()
                    .flatten()
                    .min()
            }
        }
    }

    /// Runs the timers due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Result<Option<Wake>, Ended> {
        match &mut self.link {
            Link::Offline { since } => {
                if let Some(session) = &self.session
                    && now >= *since + ms(session.timeout_ms)
                {
                    tracing::warn!(
                        "no server reachable within the session timeout: expiring locally"
                    );
                    return Err(Ended::Expired);
                }
                while let Some((queued, _)) = self.waiting.front() {
                    if *queued + self.request_timeout > now {
                        break;
                    }
                    if let Some((_, command)) = self.waiting.pop_front() {
                        self.fail(command, Error::Timeout);
                    }
                }
                if self.step.is_some_and(|deadline| now >= deadline) {
                    self.step = None;
                    return Ok(Some(Wake::StepDue));
                }
                Ok(None)
            }
            Link::Online(online) => {
                if online.closing.is_some_and(|deadline| now >= deadline) {
                    tracing::debug!("no reply to closeSession in time");
                    return Err(Ended::Closed);
                }
                if now >= online.last_recv + online.read_timeout {
                    if online.closing.is_some() {
                        return Err(Ended::Closed);
                    }
                    return Err(Ended::Lost(format!(
                        "nothing received for {:?}",
                        online.read_timeout
                    )));
                }
                if now >= online.next_check {
                    let mut next_ping = online.last_send + online.ping_interval;
                    if now >= next_ping {
                        // With bytes still queued, a write is under way: no ping needed.
                        if self.core.out.is_empty() {
                            tracing::trace!("ping");
                            self.core.push_ping();
                        }
                        online.last_send = now;
                        next_ping = now + online.ping_interval;
                    }
                    online.next_check = (online.last_recv + online.read_timeout).min(next_ping);
                }
                if online.closing.is_none()
                    && let Some((_, next)) = &mut online.read_write_probe
                    && next.is_some_and(|at| now >= at)
                {
                    *next = None;
                    return Ok(Some(Wake::ProbeReadWrite));
                }
                Ok(None)
            }
        }
    }

    /// The handshake on a new connection succeeded (and SASL, when configured): queue the
    /// auth packets, the watch restoration and the requests that waited, and start the
    /// connection's timers.
    pub(crate) fn go_online(&mut self, now: Instant, read_only: bool) {
        let timeout = self.timeout();
        let read_timeout = timeout * 2 / 3;
        let ping_interval = (timeout / 3).min(MAX_PING_INTERVAL);
        self.step = None;
        self.link = Link::Online(Online {
            read_timeout,
            ping_interval,
            last_recv: now,
            last_send: now,
            next_check: now + ping_interval.min(read_timeout),
            closing: None,
            connected_at: now,
            read_write_probe: read_only
                .then_some((MIN_RW_PROBE_INTERVAL, Some(now + MIN_RW_PROBE_INTERVAL))),
        });
        self.core.prime();
        while let Some((_, command)) = self.waiting.pop_front() {
            self.dispatch(now, command);
        }
    }

    /// `inbuf` got bytes at `now`: handle the complete frames.
    pub(crate) fn received(&mut self, now: Instant, inbuf: &mut BytesMut) -> Result<(), Ended> {
        if let Link::Online(online) = &mut self.link {
            online.last_recv = now;
        }
        self.core.receive(inbuf)
    }

    /// Bytes of [`Core::out`] were written at `now`.
    pub(crate) fn sent(&mut self, now: Instant) {
        if let Link::Online(online) = &mut self.link {
            online.last_send = now;
        }
    }

    /// How a connection that broke (`reason`) ends: the session is over if it was closing.
    pub(crate) fn broken(&self, reason: String) -> Ended {
        if self.is_closing() {
            tracing::debug!(reason, "connection ended while closing");
            Ended::Closed
        } else {
            Ended::Lost(reason)
        }
    }

    /// A read-write probe found nothing: the next one after twice the pause (at most 60 s).
    pub(crate) fn read_write_probe_failed(&mut self, now: Instant) {
        if let Link::Online(online) = &mut self.link
            && let Some((interval, next)) = &mut online.read_write_probe
        {
            *interval = (*interval * 2).min(MAX_RW_PROBE_INTERVAL);
            *next = Some(now + *interval);
        }
    }

    /// The connection is gone at `now`: requests in flight fail with connection loss and
    /// the offline timers start. Returns whether the connection was stable (lasted long
    /// enough to reset the back-off), or the end of the session if it was closing.
    pub(crate) fn go_offline(&mut self, now: Instant) -> Result<bool, Ended> {
        let stable = match &self.link {
            Link::Online(online) => now.duration_since(online.connected_at) >= STABLE_CONNECTION,
            Link::Offline { .. } => false,
        };
        self.link = Link::Offline { since: now };
        self.step = None;
        if self.core.connection_lost() {
            return Err(Ended::Closed);
        }
        if stable {
            self.backoff.reset();
        }
        Ok(stable)
    }

    /// Restarts the session-expiry clock at `now` (the server just accepted the session; it
    /// counts its timeout from there).
    pub(crate) fn accepted(&mut self, now: Instant) {
        if let Link::Offline { since } = &mut self.link {
            *since = now;
        }
    }

    /// The pause after a full round of hosts failed.
    pub(crate) fn round_backoff(&mut self) -> Duration {
        self.backoff.next(&mut self.rng)
    }

    /// A random pause before reconnecting after a lost connection, at most the configured
    /// maximum and a tenth of the session timeout: the clients of a server that died spread
    /// out over the survivors instead of all arriving at once (the Java client waits up to
    /// 1 s too).
    pub(crate) fn reconnect_delay(&mut self) -> Duration {
        let limit = self.reconnect_delay.min(self.timeout() / 10);
        if limit.is_zero() {
            return Duration::ZERO;
        }
        limit.mul_f64(self.rng.fraction())
    }

    /// Shuffles a round of endpoints.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        self.rng.shuffle(items);
    }

    /// How long one server may take to connect and answer the handshake.
    pub(crate) fn attempt_timeout(&self, hosts: usize) -> Duration {
        if let Some(limit) = self.attempt_timeout {
            return limit;
        }
        let timeout = self.timeout();
        let hosts = u32::try_from(hosts.max(1)).unwrap_or(u32::MAX);
        // Never more than a third of the session timeout, even with one or two hosts: one
        // attempt that hangs (a connection accepted but never answered, e.g. by a server
        // that is restarting) must leave time for more attempts before the session expires.
        (timeout / hosts).min(timeout / 3).max(MIN_ATTEMPT_TIMEOUT)
    }

    /// The session ended in `state`: everything waiting fails with the state's error, every
    /// watcher gets its final event, `close()` callers are released. `late` are the commands
    /// still in the channel.
    pub(crate) fn terminate(
        &mut self,
        state: SessionState,
        late: impl IntoIterator<Item = Command>,
    ) {
        self.core.terminate(state);
        let error = state.terminal_error();
        let waiting: Vec<Command> = self.waiting.drain(..).map(|(_, c)| c).collect();
        for command in waiting.into_iter().chain(late) {
            self.fail(command, error.clone());
        }
        for reply in self.close_replies.drain(..) {
            let _ = reply.send(());
        }
    }
}

pub(crate) fn ms(timeout_ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use zk_proto::frame;
    use zk_proto::records::RequestHeader;
    use zk_proto::{Chroot, Decode, OpCode};

    use super::*;
    use crate::transport::tcp_connector;

    fn config() -> Config {
        Config {
            hosts: Vec::new(),
            chroot: Chroot::none(),
            session_timeout: Duration::from_secs(30),
            attempt_timeout: None,
            request_timeout: Duration::from_secs(5),
            read_only: false,
            fail_fast: false,
            max_frame_out: 1 << 20,
            max_frame_in: 1 << 20,
            reconnect_backoff: (Duration::from_millis(50), Duration::from_secs(2)),
            auths: Vec::new(),
            sasl: None,
            connector: tcp_connector(),
            coalesce: None,
            reconnect_delay: Duration::from_secs(1),
            max_queued: 2,
            seed: Some(3),
        }
    }

    fn negotiated(timeout_ms: i32) -> Negotiated {
        Negotiated {
            session_id: 7,
            password: Bytes::from_static(&[0; 16]),
            timeout_ms,
            read_only: false,
        }
    }

    fn ops(machine: &mut Machine) -> Vec<i32> {
        let mut out = machine.core.out.split();
        let mut found = Vec::new();
        while let Ok(Some(mut payload)) = frame::parse(&mut out, 1 << 20) {
            if let Ok(header) = RequestHeader::decode(&mut payload) {
                found.push(header.op);
            }
        }
        found
    }

    fn request() -> (
        Command,
        oneshot::Receiver<Result<super::super::pending::RawReply, Error>>,
    ) {
        let (reply, rx) = oneshot::channel();
        let mut frame = BytesMut::new();
        frame.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 11]);
        (
            Command::Request(Outgoing {
                frame,
                op: OpCode::Ping,
                reply,
                watch: None,
            }),
            rx,
        )
    }

    #[test]
    fn online_pings_a_third_in_and_gives_up_two_thirds_in() {
        let t0 = Instant::now();
        let mut m = Machine::new(&config(), t0);
        m.session = Some(negotiated(3000));
        m.go_online(t0, false);
        assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(m.handle_timeout(t0 + Duration::from_secs(1)), Ok(None));
        assert_eq!(ops(&mut m), [i32::from(OpCode::Ping)]);
        // A reply at 1.5 s pushes the read deadline to 3.5 s; the next ping is due at 2 s.
        m.received(t0 + Duration::from_millis(1500), &mut BytesMut::new())
            .unwrap();
        assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(m.handle_timeout(t0 + Duration::from_secs(2)), Ok(None));
        assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(3)));
        assert_eq!(m.handle_timeout(t0 + Duration::from_secs(3)), Ok(None));
        assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_millis(3500)));
        assert!(matches!(
            m.handle_timeout(t0 + Duration::from_millis(3500)),
            Err(Ended::Lost(_))
        ));
    }

    #[test]
    fn closing_ends_at_its_deadline_and_a_break_while_closing_is_the_end() {
        let t0 = Instant::now();
        let mut m = Machine::new(&config(), t0);
        m.session = Some(negotiated(30_000));
        m.go_online(t0, false);
        let (reply, _rx) = oneshot::channel();
        m.command(t0, Some(Command::Close { reply })).unwrap();
        assert!(m.is_closing());
        assert_eq!(m.broken("gone".into()), Ended::Closed);
        assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(10)));
        assert_eq!(
            m.handle_timeout(t0 + Duration::from_secs(20)),
            Err(Ended::Closed)
        );
    }

    #[test]
    fn offline_requests_time_out_the_queue_is_bounded_and_the_session_expires() {
        let t0 = Instant::now();
        let mut m = Machine::new(&config(), t0);
        // Before the first session: no expiry, only the queued requests' deadline.
        let (a, mut ra) = request();
        m.command(t0, Some(a)).unwrap();
        let (b, _rb) = request();
        m.command(t0 + Duration::from_secs(1), Some(b)).unwrap();
        let (c, mut rc) = request();
        m.command(t0 + Duration::from_secs(1), Some(c)).unwrap();
        assert!(
            matches!(rc.try_recv(), Ok(Err(Error::ConnectionLoss { .. }))),
            "queue full"
        );
        assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(m.handle_timeout(t0 + Duration::from_secs(5)), Ok(None));
        assert!(matches!(ra.try_recv(), Ok(Err(Error::Timeout))));

        // With a session: it expires a session timeout after the connection was lost.
        m.session = Some(negotiated(4000));
        m.go_online(t0 + Duration::from_secs(2), false);
        assert_eq!(
            m.go_offline(t0 + Duration::from_secs(4)),
            Ok(true),
            "stable"
        );
        assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(8)));
        assert_eq!(
            m.handle_timeout(t0 + Duration::from_secs(8)),
            Err(Ended::Expired)
        );
    }

    #[test]
    fn the_step_deadline_wakes_and_the_jitter_replays_from_the_seed() {
        let t0 = Instant::now();
        let mut m = Machine::new(&config(), t0);
        m.limit_step(Some(t0 + Duration::from_millis(300)));
        assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_millis(300)));
        assert_eq!(
            m.handle_timeout(t0 + Duration::from_millis(300)),
            Ok(Some(Wake::StepDue))
        );
        assert_eq!(m.poll_timeout(), None);

        let mut other = Machine::new(&config(), t0);
        let delays: Vec<Duration> = (0..8).map(|_| m.round_backoff()).collect();
        let again: Vec<Duration> = (0..8).map(|_| other.round_backoff()).collect();
        assert_eq!(delays, again);
        assert!(delays[0] >= Duration::from_millis(50) && delays[0] < Duration::from_millis(100));
        assert_eq!(delays[7], Duration::from_secs(2), "capped");
        m.session = Some(negotiated(4000));
        assert!(
            m.reconnect_delay() < Duration::from_millis(400),
            "a tenth of the timeout"
        );
    }
}
