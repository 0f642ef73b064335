//! How recipes read the session state (Curator's `ConnectionStateErrorPolicy`), and why a
//! holder stopped being sure it holds something.

use zk_client::SessionState;

/// Which session states end a lock or a leadership.
///
/// ```
/// use zk_client::SessionState;
/// use zk_recipes::ErrorPolicy;
///
/// assert!(ErrorPolicy::Standard.is_error_state(SessionState::Suspended));
/// assert!(!ErrorPolicy::Session.is_error_state(SessionState::Suspended));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ErrorPolicy {
    /// Curator's default (`StandardConnectionStateErrorPolicy`): a suspended connection
    /// already means "you may no longer hold it". Safe: while disconnected nobody can tell
    /// whether the session is still alive on the servers.
    #[default]
    Standard,
    /// Curator's `SessionConnectionStateErrorPolicy`: only a lost session (expiry, close,
    /// authentication failure) ends it. Fewer false alarms during short disconnections, but
    /// while suspended the holder may already have been replaced.
    Session,
}

impl ErrorPolicy {
    /// `true` if `state` ends a hold under this policy.
    pub fn is_error_state(self, state: SessionState) -> bool {
        match state {
            SessionState::Suspended => self == ErrorPolicy::Standard,
            s => s.is_terminal(),
        }
    }
}

/// Why a holder can no longer be sure it holds a lock or a leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LossReason {
    /// The connection was suspended ([`ErrorPolicy::Standard`] only).
    Suspended,
    /// The session expired, was closed, or failed authentication.
    SessionLost,
    /// The holder's node was deleted by someone else.
    NodeDeleted,
    /// The holder released it (or dropped its guard) before anything went wrong.
    Released,
}

impl LossReason {
    /// The loss reason for an error state.
    pub(crate) fn from_state(state: SessionState) -> LossReason {
        if state == SessionState::Suspended {
            LossReason::Suspended
        } else {
            LossReason::SessionLost
        }
    }
}
