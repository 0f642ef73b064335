//! [`Error`]: why a recipe call failed.

/// A failed recipe operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A ZooKeeper operation failed; see [`zk_client::Error`] and its classifiers
    /// ([`is_retryable`](zk_client::Error::is_retryable)). Errors that end the session are
    /// reported as [`Error::SessionLost`] instead.
    #[error(transparent)]
    Client(zk_client::Error),
    /// A recipe path was rejected (it must be absolute, without a trailing `/`).
    #[error("invalid recipe path {0:?}")]
    InvalidPath(String),
    /// Our own contender node disappeared while we waited (deleted by someone else, or its
    /// session ended). The attempt is over; nothing of ours is left behind.
    #[error("our contender node {0} disappeared")]
    NodeVanished(String),
    /// An optimistic update met a concurrent update on every attempt.
    #[error("too much contention on {0}")]
    Contention(String),
    /// A node holds a value the recipe cannot read.
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// The recipe was closed (or its session was lost) before the call could complete.
    #[error("the recipe is closed")]
    Closed,
    /// The recipe was used in a state that does not allow the call (e.g. started twice).
    #[error("invalid state: {0}")]
    InvalidState(&'static str),
    /// The ZooKeeper session the recipe worked on is over (it expired, authentication
    /// failed, or the client was closed). ZooKeeper never gives a session back, and a
    /// [`Client`](zk_client::Client) keeps its one session: retrying cannot help; build a
    /// new `Client` (and recipe) to take part again.
    #[error("the ZooKeeper session is lost ({0}); build a new Client to take part again")]
    SessionLost(zk_client::Error),
}

impl From<zk_client::Error> for Error {
    /// [`Error::SessionLost`] for an error that ends the session
    /// ([`is_session_terminal`](zk_client::Error::is_session_terminal)), else
    /// [`Error::Client`].
    fn from(zk_error: zk_client::Error) -> Error {
        Error::from_session(zk_error)
    }
}

impl Error {
    /// `zk_error` as a recipe error: [`Error::SessionLost`] when it means the session is
    /// over, else [`Error::Client`].
    pub fn from_session(zk_error: zk_client::Error) -> Error {
        if zk_error.is_session_terminal() {
            Error::SessionLost(zk_error)
        } else {
            Error::Client(zk_error)
        }
    }

    /// `true` when this error means the session is over (a new `Client` is needed).
    pub fn is_session_lost(&self) -> bool {
        match self {
            Error::SessionLost(_) => true,
            Error::Client(e) => e.is_session_terminal(),
            _ => false,
        }
    }
}

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
