//! Connecting: rounds of hosts (resolved, shuffled; back-off between full rounds), one
//! attempt per endpoint (TCP or TLS, then the handshake), the SASL exchange when configured,
//! and the read-only servers' `isro` probe. Everything here runs while the session is
//! offline, under [`Task::idle`]: commands queue and the [`Machine`](super::machine::Machine)'s
//! timers run meanwhile (attempt limit, session expiry, queued requests' timeout).

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zk_proto::frame;

use super::core::{Negotiated, SaslReply, parse_connect_response, sasl_frame, sasl_reply};
use super::state::Ended;
use super::{READ_RESERVE, Task, now};
use crate::error::Error;
use crate::sasl::{DigestMd5, MECHANISM, random_cnonce};
use crate::transport::{Connector, Endpoint, Stream, tls_failure};

/// The most `sasl` round trips one login may take (`DIGEST-MD5` needs two).
const SASL_MAX_ROUNDS: usize = 4;

/// A connection that passed the handshake (and SASL): the stream, bytes already read past
/// the handshake, and whether the server is read-only.
pub(super) struct Connection {
    pub(super) stream: Stream,
    pub(super) inbuf: BytesMut,
    pub(super) read_only: bool,
}

impl Task {
    /// Resolves the hosts for a new round and shuffles them.
    pub(super) async fn start_round(&mut self) -> Result<(), Ended> {
        let config = self.config.clone();
        let mut endpoints = self
            .idle(crate::hosts::resolve(&config.hosts))
            .await?
            .unwrap_or_default();
        self.machine.shuffle(&mut endpoints);
        if endpoints.is_empty() {
            self.last_error = Some(Error::InvalidConnectString(
                "no host could be resolved".into(),
            ));
        }
        self.hosts.set_round(endpoints);
        Ok(())
    }

    /// Waits `delay` while offline.
    pub(super) async fn pause(&mut self, delay: Duration) -> Result<(), Ended> {
        self.machine.limit_step(Some(now() + delay));
        self.idle(std::future::pending::<()>()).await.map(|_| ())
    }

    /// One attempt on `addr`: connect, handshake, SASL. `Ok(None)`: this server did not
    /// work out (the reason is remembered for fail-fast); `Err`: the session is over.
    pub(super) async fn connect_to(
        &mut self,
        addr: &Endpoint,
    ) -> Result<Option<Connection>, Ended> {
        let session = self
            .machine
            .session
            .as_ref()
            .map(|s| (s.session_id, s.password.clone()));
        let resuming = session.is_some();
        let timeout_ms = i32::try_from(self.config.session_timeout.as_millis()).unwrap_or(i32::MAX);
        let request = self
            .machine
            .core
            .connect_frame(session, timeout_ms, self.config.read_only);
        let limit = self.machine.attempt_timeout(self.hosts.len());
        self.machine.limit_step(Some(now() + limit));
        let attempt = handshake(
            self.config.connector.clone(),
            addr.clone(),
            request,
            self.config.max_frame_in,
        );
        let (stream, inbuf, negotiated) = match self.idle(attempt).await? {
            None => {
                tracing::info!(%addr, ?limit, "no handshake answer in time");
                self.remember_error(Error::Timeout);
                return Ok(None);
            }
            Some(Err(error)) => {
                tracing::debug!(%addr, %error, "cannot connect");
                self.remember_error(error);
                return Ok(None);
            }
            Some(Ok(connected)) => connected,
        };
        self.machine.limit_step(None);
        if negotiated.timeout_ms <= 0 {
            if resuming {
                tracing::warn!(%addr, "server reports the session expired");
                return Err(Ended::Expired);
            }
            tracing::debug!(%addr, "server refused to create a session");
            self.last_error = Some(Error::Protocol("server refused the session".into()));
            return Ok(None);
        }
        if let Some(old) = &self.machine.session {
            if old.session_id != negotiated.session_id {
                tracing::warn!(%addr, "server answered with another session id");
                return Err(Ended::Expired);
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
        self.machine.session = Some(negotiated);
        // The server just accepted the session: its timeout counts from now.
        self.machine.accepted(now());
        let Some((stream, inbuf)) = self.authenticate(stream, inbuf, addr).await? else {
            return Ok(None);
        };
        Ok(Some(Connection {
            stream,
            inbuf,
            read_only,
        }))
    }

    /// Runs the SASL exchange on a new connection when configured, before anything else is
    /// written to it; commands arriving meanwhile are queued as while disconnected. Bounded
    /// by the read timeout (two thirds of the session timeout).
    async fn authenticate(
        &mut self,
        stream: Stream,
        inbuf: BytesMut,
        addr: &Endpoint,
    ) -> Result<Option<(Stream, BytesMut)>, Ended> {
        let Some(credentials) = self.config.sasl.clone() else {
            return Ok(Some((stream, inbuf)));
        };
        let user = credentials.username.clone();
        let mechanism = DigestMd5::new(credentials, random_cnonce());
        let xids = self.machine.core.reserve_xids(SASL_MAX_ROUNDS);
        let exchange = sasl_exchange(stream, inbuf, mechanism, xids, self.config.max_frame_in);
        let limit = self.machine.timeout() * 2 / 3;
        self.machine.limit_step(Some(now() + limit));
        let outcome = self.idle(exchange).await?;
        self.machine.limit_step(None);
        match outcome {
            Some(Ok(connection)) => {
                tracing::info!(%addr, mechanism = MECHANISM, user, "SASL authentication succeeded");
                Ok(Some(connection))
            }
            Some(Err(Ended::Lost(reason))) => {
                tracing::debug!(%addr, reason, "connection lost during the SASL exchange");
                self.remember_error(Error::ConnectionLoss {
                    outcome_unknown: false,
                });
                Ok(None)
            }
            Some(Err(end)) => {
                tracing::warn!(%addr, mechanism = MECHANISM, user, "SASL authentication failed");
                Err(end)
            }
            None => {
                tracing::debug!(%addr, ?limit, "SASL exchange timed out");
                self.remember_error(Error::Timeout);
                Ok(None)
            }
        }
    }

    /// Why the current round's attempts failed: the last error, except that a TLS error
    /// (which names the problem) is not replaced by a bare connection loss or timeout.
    fn remember_error(&mut self, error: Error) {
        let vaguer = matches!(error, Error::ConnectionLoss { .. } | Error::Timeout);
        if !(vaguer && matches!(self.last_error, Some(Error::Tls(_)))) {
            self.last_error = Some(error);
        }
    }
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

/// Connect (TCP, TLS if configured) plus handshake; the caller bounds it in time.
async fn handshake(
    connector: Connector,
    addr: Endpoint,
    request: BytesMut,
    max_frame_in: usize,
) -> Result<(Stream, BytesMut, Negotiated), Error> {
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
}

/// The SASL `DIGEST-MD5` exchange on a fresh connection, one `sasl` request at a time with
/// the reserved `xids`; hands the connection back once the server proved itself. Ends with
/// [`Ended::AuthFailed`] when the server refuses the login (or the mechanism refuses the
/// server), [`Ended::Lost`] when the connection breaks.
async fn sasl_exchange(
    mut stream: Stream,
    mut inbuf: BytesMut,
    mut mechanism: DigestMd5,
    xids: Vec<i32>,
    max_frame_in: usize,
) -> Result<(Stream, BytesMut), Ended> {
    let lost = |e: std::io::Error| Ended::Lost(format!("I/O error: {e}"));
    let broken = |e: Error| Ended::Lost(e.to_string());
    let rejected = |reason: String| {
        tracing::warn!(reason, "SASL login refused");
        Ended::AuthFailed
    };
    let mut token = Some(mechanism.initial_token());
    for xid in xids {
        let Some(out) = token.take() else { break };
        let frame = sasl_frame(xid, out).map_err(broken)?;
        stream.write_all(&frame).await.map_err(lost)?;
        let server_token = loop {
            let Some(payload) =
                frame::parse(&mut inbuf, max_frame_in).map_err(|e| broken(Error::protocol(e)))?
            else {
                inbuf.reserve(READ_RESERVE);
                if stream.read_buf(&mut inbuf).await.map_err(lost)? == 0 {
                    return Err(Ended::Lost("server closed the connection".into()));
                }
                continue;
            };
            match sasl_reply(payload, xid).map_err(broken)? {
                SaslReply::Other => {}
                SaslReply::Token(token) => break token,
                SaslReply::Refused(code) => {
                    return Err(rejected(format!("the server refused the login ({code:?})")));
                }
            }
        };
        token = mechanism
            .evaluate(&server_token)
            .map_err(|e| rejected(e.0))?;
        if mechanism.is_complete() {
            return Ok((stream, inbuf));
        }
    }
    Err(rejected(format!(
        "the exchange did not complete in {SASL_MAX_ROUNDS} rounds"
    )))
}

/// Asks each candidate `isro` (through the session's connector, so over TLS when the session
/// uses TLS); returns the first that answers `rw`.
pub(super) async fn probe_read_write(
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
