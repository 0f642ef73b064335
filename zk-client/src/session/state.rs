//! The session state seen by users (Curator's connection-state model) and its transition
//! function. Pure: no I/O, no clock.
//!
//! ```text
//!              connect ok                disconnect              reconnect ok
//!   (start) ─────────────▶ Connected ───────────────▶ Suspended ─────────────▶ Reconnected
//!              (read-only server: ReadOnly)    ▲                                 │
//!                                              └──────────── disconnect ─────────┘
//!   any non-terminal state ── expired / closed ──▶ Lost(reason)      (terminal)
//!   any non-terminal state ── auth failed ───────▶ AuthFailed        (terminal)
//! ```

use zk_proto::KeeperState;

/// The state of a client's session, as [Curator](https://curator.apache.org) models it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// The first connection of the session is up.
    Connected,
    /// The connection is gone; the session may still be alive and the client is trying
    /// other servers. Requests wait (bounded by the request timeout); in-flight requests
    /// failed with [`Error::ConnectionLoss`](crate::Error::ConnectionLoss).
    Suspended,
    /// Connected again, to the same session, after [`Suspended`](Self::Suspended). Watches
    /// were restored.
    Reconnected,
    /// Connected to a read-only server (only with
    /// [`ClientBuilder::read_only`](crate::ClientBuilder::read_only)): reads work, writes fail
    /// with [`Error::NotReadOnly`](crate::Error::NotReadOnly).
    ReadOnly,
    /// The session is over: it expired or the client was closed. Terminal.
    Lost(LostReason),
    /// Authentication failed; the server dropped the connection. Terminal.
    AuthFailed,
}

/// Why a session was [`Lost`](SessionState::Lost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LostReason {
    /// The server expired the session, or no server could be reached for longer than the
    /// negotiated session timeout (decided locally, like Curator and Java 3.9.3+).
    Expired,
    /// The client was closed.
    Closed,
}

impl SessionState {
    /// `true` for [`Lost`](Self::Lost) and [`AuthFailed`](Self::AuthFailed): the client will
    /// never connect again.
    pub fn is_terminal(self) -> bool {
        matches!(self, SessionState::Lost(_) | SessionState::AuthFailed)
    }

    /// `true` while a server is connected ([`Connected`](Self::Connected),
    /// [`Reconnected`](Self::Reconnected) or [`ReadOnly`](Self::ReadOnly)).
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            SessionState::Connected | SessionState::Reconnected | SessionState::ReadOnly
        )
    }

    /// The error a request gets once the client is in this terminal state.
    pub(crate) fn terminal_error(self) -> crate::Error {
        match self {
            SessionState::Lost(LostReason::Expired) => crate::Error::SessionExpired,
            SessionState::AuthFailed => crate::Error::AuthFailed,
            _ => crate::Error::Closed,
        }
    }

    /// The `KeeperState` carried by the final watch event of a terminal state.
    pub(crate) fn keeper_state(self) -> KeeperState {
        match self {
            SessionState::Connected | SessionState::Reconnected => KeeperState::SyncConnected,
            SessionState::Suspended => KeeperState::Disconnected,
            SessionState::ReadOnly => KeeperState::ConnectedReadOnly,
            SessionState::Lost(LostReason::Expired) => KeeperState::Expired,
            SessionState::Lost(LostReason::Closed) => KeeperState::Closed,
            SessionState::AuthFailed => KeeperState::AuthFailed,
        }
    }
}

/// How a connection (and maybe the session with it) ended: the one answer of every step of
/// the session task (handshake, SASL, serving, timers, commands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The connection is gone, the session may live: try the next server. The text says
    /// why (for the logs).
    Lost(String),
    /// The session expired: the server said so, or no server answered within the
    /// negotiated timeout.
    Expired,
    /// The client was closed (`close()`, or the last handle dropped).
    Closed,
    /// A login was refused.
    AuthFailed,
    /// No session could be established (fail-fast): the error names the last problem.
    ConnectFailed(crate::Error),
}

impl Ended {
    /// The terminal state, the transition to it and the error later calls get; `None` for
    /// [`Ended::Lost`].
    pub(crate) fn outcome(self) -> Option<(Transition, SessionState, crate::Error)> {
        Some(match self {
            Ended::Lost(_) => return None,
            Ended::Expired => (
                Transition::Expired,
                SessionState::Lost(LostReason::Expired),
                crate::Error::SessionExpired,
            ),
            Ended::Closed => (
                Transition::Closed,
                SessionState::Lost(LostReason::Closed),
                crate::Error::Closed,
            ),
            Ended::AuthFailed => (
                Transition::AuthFailed,
                SessionState::AuthFailed,
                crate::Error::AuthFailed,
            ),
            Ended::ConnectFailed(error) => (
                Transition::Closed,
                SessionState::Lost(LostReason::Closed),
                error,
            ),
        })
    }
}

/// What happened to the session, as the session task sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// A handshake succeeded.
    Connected { read_only: bool },
    /// The connection broke (the session may live).
    Disconnected,
    /// The session expired (server said so, or local expiry).
    Expired,
    /// The client was closed.
    Closed,
    /// Authentication failed.
    AuthFailed,
}

/// The next state after `transition` from `current` (`None`: never connected yet), or `None`
/// when the state does not change (duplicates, or anything after a terminal state).
pub(crate) fn next_state(
    current: Option<SessionState>,
    transition: Transition,
) -> Option<SessionState> {
    if current.is_some_and(SessionState::is_terminal) {
        return None;
    }
    let next = match (current, transition) {
        (_, Transition::Expired) => SessionState::Lost(LostReason::Expired),
        (_, Transition::Closed) => SessionState::Lost(LostReason::Closed),
        (_, Transition::AuthFailed) => SessionState::AuthFailed,
        (_, Transition::Connected { read_only: true }) => SessionState::ReadOnly,
        (None, Transition::Connected { read_only: false }) => SessionState::Connected,
        (Some(_), Transition::Connected { read_only: false }) => SessionState::Reconnected,
        (None, Transition::Disconnected) => return None,
        (Some(_), Transition::Disconnected) => SessionState::Suspended,
    };
    (current != Some(next)).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    use SessionState::*;
    use Transition as T;

    #[test]
    fn curator_model() {
        let connected = T::Connected { read_only: false };
        assert_eq!(next_state(None, connected), Some(Connected));
        assert_eq!(
            next_state(Some(Connected), T::Disconnected),
            Some(Suspended)
        );
        assert_eq!(next_state(Some(Suspended), T::Disconnected), None);
        assert_eq!(next_state(Some(Suspended), connected), Some(Reconnected));
        assert_eq!(
            next_state(Some(Reconnected), T::Disconnected),
            Some(Suspended)
        );
        assert_eq!(
            next_state(Some(Suspended), T::Connected { read_only: true }),
            Some(ReadOnly)
        );
        assert_eq!(
            next_state(None, T::Connected { read_only: true }),
            Some(ReadOnly)
        );
        assert_eq!(next_state(None, T::Disconnected), None);
        assert_eq!(
            next_state(Some(Suspended), T::Expired),
            Some(Lost(LostReason::Expired))
        );
        assert_eq!(
            next_state(Some(Connected), T::Closed),
            Some(Lost(LostReason::Closed))
        );
        assert_eq!(next_state(Some(Connected), T::AuthFailed), Some(AuthFailed));
    }

    #[test]
    fn terminal_states_absorb() {
        for terminal in [
            Lost(LostReason::Expired),
            Lost(LostReason::Closed),
            AuthFailed,
        ] {
            assert!(terminal.is_terminal());
            assert!(!terminal.is_connected());
            for t in [
                T::Connected { read_only: false },
                T::Disconnected,
                T::Expired,
                T::Closed,
                T::AuthFailed,
            ] {
                assert_eq!(next_state(Some(terminal), t), None);
            }
        }
        assert_eq!(
            Lost(LostReason::Expired).terminal_error(),
            crate::Error::SessionExpired
        );
        assert_eq!(AuthFailed.terminal_error(), crate::Error::AuthFailed);
        assert_eq!(
            Lost(LostReason::Closed).terminal_error(),
            crate::Error::Closed
        );
    }
}
