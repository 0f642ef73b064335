//! [`Error`]: why a recipe call failed.

/// A failed recipe operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A ZooKeeper operation failed; see [`zk_client::Error`] and its classifiers
    /// ([`is_session_terminal`](zk_client::Error::is_session_terminal) means a new client is
    /// needed).
    #[error(transparent)]
    Client(#[from] zk_client::Error),
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
}

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
