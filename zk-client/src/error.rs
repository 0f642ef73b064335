//! [`Error`]: every ZooKeeper result code a client can see, plus the client-side failures
//! (connection loss, timeouts, a closed client, protocol violations, bad arguments).
//!
//! Three classifiers answer the questions callers really ask:
//!
//! * [`Error::is_retryable`]: will the same call succeed if simply tried again (on this
//!   handle, after a reconnect)? True for connection loss, timeouts and throttling.
//! * [`Error::outcome_unknown`]: might the request have been applied although it failed?
//!   A write whose connection broke before its reply arrived may or may not have committed:
//!   re-check before repeating a non-idempotent write (a sequential create, a `set_data`
//!   with version `-1`, ...).
//! * [`Error::is_session_terminal`]: is this handle finished for good (session expired,
//!   authentication failed, client closed)? Then a new [`Client`](crate::Client) is needed.
//!
//! ```
//! use zk_client::Error;
//!
//! let lost = Error::ConnectionLoss { outcome_unknown: true };
//! assert!(lost.is_retryable() && lost.outcome_unknown());
//! assert!(Error::SessionExpired.is_session_terminal());
//! assert!(!Error::NoNode.is_retryable());
//! assert_eq!(Error::NoNode.code(), Some(zk_client::proto::ErrorCode::NoNode));
//! ```

use zk_proto::{DecodeError, ErrorCode, PathError};

/// A failed ZooKeeper operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- server result codes -------------------------------------------------------------
    /// The node does not exist (NONODE, -101).
    #[error("node does not exist")]
    NoNode,
    /// Not authorised by the node's ACL (NOAUTH, -102).
    #[error("not authorised")]
    NoAuth,
    /// The expected version did not match (BADVERSION, -103).
    #[error("version conflict")]
    BadVersion,
    /// Ephemeral nodes may not have children (NOCHILDRENFOREPHEMERALS, -108).
    #[error("ephemeral nodes may not have children")]
    NoChildrenForEphemerals,
    /// The node already exists (NODEEXISTS, -110).
    #[error("node already exists")]
    NodeExists,
    /// The node has children (NOTEMPTY, -111).
    #[error("node has children")]
    NotEmpty,
    /// The session has expired (SESSIONEXPIRED, -112): reported by the server, or decided
    /// locally when no server could be reached for longer than the session timeout.
    /// Terminal for this client.
    #[error("session expired")]
    SessionExpired,
    /// Invalid callback (INVALIDCALLBACK, -113).
    #[error("invalid callback")]
    InvalidCallback,
    /// Invalid ACL (INVALIDACL, -114); also returned client-side for an empty ACL list.
    #[error("invalid ACL")]
    InvalidAcl,
    /// Authentication failed (AUTHFAILED, -115). Terminal for this client.
    #[error("authentication failed")]
    AuthFailed,
    /// The session moved to another server (SESSIONMOVED, -118).
    #[error("session moved to another server")]
    SessionMoved,
    /// A write was sent to a read-only server (NOTREADONLY, -119).
    #[error("server is read-only")]
    NotReadOnly,
    /// Ephemeral node on a local session (EPHEMERALONLOCALSESSION, -120).
    #[error("ephemeral node on a local session")]
    EphemeralOnLocalSession,
    /// No such watch (NOWATCHER, -121).
    #[error("no such watcher")]
    NoWatcher,
    /// The server did not complete the request in time (REQUESTTIMEOUT, -122).
    #[error("request timed out on the server")]
    RequestTimeout,
    /// Reconfiguration is disabled (RECONFIGDISABLED, -123).
    #[error("reconfiguration is disabled")]
    ReconfigDisabled,
    /// The session was closed because SASL authentication is required
    /// (SESSIONCLOSEDREQUIRESASLAUTH, -124). Terminal for this client.
    #[error("session closed: SASL authentication required")]
    SessionClosedRequireSaslAuth,
    /// A quota was exceeded (QUOTAEXCEEDED, -125).
    #[error("quota exceeded")]
    QuotaExceeded,
    /// The server throttled the operation (THROTTLEDOP, -127); retry with back-off.
    #[error("operation throttled by the server")]
    ThrottledOp,
    /// The server found a runtime inconsistency (RUNTIMEINCONSISTENCY, -2).
    #[error("runtime inconsistency")]
    RuntimeInconsistency,
    /// The server found a data inconsistency (DATAINCONSISTENCY, -3).
    #[error("data inconsistency")]
    DataInconsistency,
    /// The server could not decode the request (MARSHALLINGERROR, -5).
    #[error("marshalling error")]
    MarshallingError,
    /// The server does not implement the operation (UNIMPLEMENTED, -6), e.g. a TTL create on
    /// a server without extended types.
    #[error("operation not implemented by the server")]
    Unimplemented,
    /// The operation timed out on the server (OPERATIONTIMEOUT, -7).
    #[error("operation timed out on the server")]
    OperationTimeout,
    /// Invalid arguments (BADARGUMENTS, -8), from the server or found before sending.
    #[error("bad arguments: {0}")]
    BadArguments(String),
    /// Unknown session (UNKNOWNSESSION, -12).
    #[error("unknown session")]
    UnknownSession,
    /// No quorum of the new config (NEWCONFIGNOQUORUM, -13).
    #[error("no quorum of the new config is connected and up to date")]
    NewConfigNoQuorum,
    /// Another reconfiguration is in progress (RECONFIGINPROGRESS, -14).
    #[error("another reconfiguration is in progress")]
    ReconfigInProgress,
    /// A system error code not covered above (SYSTEMERROR range).
    #[error("system error")]
    SystemError,
    /// An API error code not covered above (APIERROR range).
    #[error("API error")]
    ApiError,
    /// A result code this client does not know.
    #[error("unknown server error code {0}")]
    UnknownCode(i32),

    // ---- client-side ---------------------------------------------------------------------
    /// The connection broke before the reply arrived. The session may still be alive; the
    /// client is reconnecting. `outcome_unknown` is true when the request was a write that
    /// may have been applied.
    #[error("connection lost{}", if *.outcome_unknown { " (the write may have been applied)" } else { "" })]
    ConnectionLoss {
        /// The request may have been applied by the server.
        outcome_unknown: bool,
    },
    /// The request waited longer than the configured request timeout for a connection, or
    /// the first connection could not be made in time. It was never sent.
    #[error("timed out waiting for a connection")]
    Timeout,
    /// The client was closed (by [`Client::close`](crate::Client::close) or by dropping every
    /// handle). Terminal.
    #[error("client closed")]
    Closed,
    /// The server sent something this client cannot make sense of; the connection was
    /// dropped.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A path was rejected before it was sent.
    #[error("invalid path {path:?}: {source}")]
    InvalidPath {
        /// The offending path.
        path: String,
        /// Which rule it breaks.
        source: PathError,
    },
    /// The request is larger than the server accepts (`jute.maxbuffer`); it was not sent and
    /// the session is unaffected.
    #[error("request of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The encoded size of the request.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A TLS failure: the handshake with a server failed (its certificate is not trusted or
    /// not valid for the host name, it rejected the client certificate, it does not speak
    /// TLS, ...), or a TLS setting could not be loaded (a PEM file without a certificate or
    /// key). The message names the server and the problem.
    ///
    /// The session treats a failed TLS handshake like any failed connection attempt: it goes
    /// on to the next server and keeps trying (one misconfigured member must not stop a
    /// session), and [`connect`](crate::ClientBuilder::connect) with
    /// [`fail_fast`](crate::ClientBuilder::fail_fast) returns this error after a round in
    /// which it was the last failure. Repeating the same call does not change a certificate,
    /// so [`is_retryable`](Self::is_retryable) is false.
    #[error("TLS: {0}")]
    Tls(String),
    /// The connect string could not be parsed, or no host in it could be resolved.
    #[error("invalid connect string: {0}")]
    InvalidConnectString(String),
    /// A transaction ([`multi`](crate::Client::multi)) failed: no op was applied; `index`
    /// is the first op that failed and `source` why.
    #[error("transaction failed at op {index}: {source}")]
    Transaction {
        /// Index of the first failing op.
        index: usize,
        /// Why it failed.
        source: Box<Error>,
    },
}

impl Error {
    /// The error for a non-zero server result code.
    pub fn from_code(code: i32) -> Error {
        let Ok(code) = ErrorCode::try_from(code) else {
            return Error::UnknownCode(code);
        };
        match code {
            ErrorCode::Ok => Error::UnknownCode(0),
            ErrorCode::SystemError => Error::SystemError,
            ErrorCode::RuntimeInconsistency => Error::RuntimeInconsistency,
            ErrorCode::DataInconsistency => Error::DataInconsistency,
            ErrorCode::ConnectionLoss => Error::ConnectionLoss {
                outcome_unknown: true,
            },
            ErrorCode::MarshallingError => Error::MarshallingError,
            ErrorCode::Unimplemented => Error::Unimplemented,
            ErrorCode::OperationTimeout => Error::OperationTimeout,
            ErrorCode::BadArguments => Error::BadArguments("rejected by the server".into()),
            ErrorCode::UnknownSession => Error::UnknownSession,
            ErrorCode::NewConfigNoQuorum => Error::NewConfigNoQuorum,
            ErrorCode::ReconfigInProgress => Error::ReconfigInProgress,
            ErrorCode::ApiError => Error::ApiError,
            ErrorCode::NoNode => Error::NoNode,
            ErrorCode::NoAuth => Error::NoAuth,
            ErrorCode::BadVersion => Error::BadVersion,
            ErrorCode::NoChildrenForEphemerals => Error::NoChildrenForEphemerals,
            ErrorCode::NodeExists => Error::NodeExists,
            ErrorCode::NotEmpty => Error::NotEmpty,
            ErrorCode::SessionExpired => Error::SessionExpired,
            ErrorCode::InvalidCallback => Error::InvalidCallback,
            ErrorCode::InvalidAcl => Error::InvalidAcl,
            ErrorCode::AuthFailed => Error::AuthFailed,
            ErrorCode::SessionMoved => Error::SessionMoved,
            ErrorCode::NotReadOnly => Error::NotReadOnly,
            ErrorCode::EphemeralOnLocalSession => Error::EphemeralOnLocalSession,
            ErrorCode::NoWatcher => Error::NoWatcher,
            ErrorCode::RequestTimeout => Error::RequestTimeout,
            ErrorCode::ReconfigDisabled => Error::ReconfigDisabled,
            ErrorCode::SessionClosedRequireSaslAuth => Error::SessionClosedRequireSaslAuth,
            ErrorCode::QuotaExceeded => Error::QuotaExceeded,
            ErrorCode::ThrottledOp => Error::ThrottledOp,
        }
    }

    /// The ZooKeeper result code this error corresponds to, if any (client-only failures
    /// such as [`Error::Timeout`] or [`Error::InvalidPath`] have none; connection loss maps
    /// to CONNECTIONLOSS and a failed transaction to its first error).
    pub fn code(&self) -> Option<ErrorCode> {
        Some(match self {
            Error::NoNode => ErrorCode::NoNode,
            Error::NoAuth => ErrorCode::NoAuth,
            Error::BadVersion => ErrorCode::BadVersion,
            Error::NoChildrenForEphemerals => ErrorCode::NoChildrenForEphemerals,
            Error::NodeExists => ErrorCode::NodeExists,
            Error::NotEmpty => ErrorCode::NotEmpty,
            Error::SessionExpired => ErrorCode::SessionExpired,
            Error::InvalidCallback => ErrorCode::InvalidCallback,
            Error::InvalidAcl => ErrorCode::InvalidAcl,
            Error::AuthFailed => ErrorCode::AuthFailed,
            Error::SessionMoved => ErrorCode::SessionMoved,
            Error::NotReadOnly => ErrorCode::NotReadOnly,
            Error::EphemeralOnLocalSession => ErrorCode::EphemeralOnLocalSession,
            Error::NoWatcher => ErrorCode::NoWatcher,
            Error::RequestTimeout => ErrorCode::RequestTimeout,
            Error::ReconfigDisabled => ErrorCode::ReconfigDisabled,
            Error::SessionClosedRequireSaslAuth => ErrorCode::SessionClosedRequireSaslAuth,
            Error::QuotaExceeded => ErrorCode::QuotaExceeded,
            Error::ThrottledOp => ErrorCode::ThrottledOp,
            Error::RuntimeInconsistency => ErrorCode::RuntimeInconsistency,
            Error::DataInconsistency => ErrorCode::DataInconsistency,
            Error::MarshallingError => ErrorCode::MarshallingError,
            Error::Unimplemented => ErrorCode::Unimplemented,
            Error::OperationTimeout => ErrorCode::OperationTimeout,
            Error::BadArguments(_) => ErrorCode::BadArguments,
            Error::UnknownSession => ErrorCode::UnknownSession,
            Error::NewConfigNoQuorum => ErrorCode::NewConfigNoQuorum,
            Error::ReconfigInProgress => ErrorCode::ReconfigInProgress,
            Error::SystemError => ErrorCode::SystemError,
            Error::ApiError => ErrorCode::ApiError,
            Error::ConnectionLoss { .. } => ErrorCode::ConnectionLoss,
            Error::Transaction { source, .. } => return source.code(),
            Error::UnknownCode(_)
            | Error::Timeout
            | Error::Closed
            | Error::Protocol(_)
            | Error::InvalidPath { .. }
            | Error::TooLarge { .. }
            | Error::Tls(_)
            | Error::InvalidConnectString(_) => return None,
        })
    }

    /// Trying the same call again on this client may succeed: the connection was lost (the
    /// client reconnects by itself), the request timed out waiting for a connection, or the
    /// server asked to back off. Note that a retried write whose first attempt's
    /// [outcome is unknown](Self::outcome_unknown) may find its own effect (e.g.
    /// [`Error::NodeExists`]).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::ConnectionLoss { .. }
            | Error::Timeout
            | Error::OperationTimeout
            | Error::RequestTimeout
            | Error::ThrottledOp
            | Error::SessionMoved => true,
            Error::Transaction { source, .. } => source.is_retryable(),
            _ => false,
        }
    }

    /// The request may have been applied even though it failed: a request in flight when
    /// the connection broke, or one the server gave up on.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Error::ConnectionLoss { outcome_unknown } => *outcome_unknown,
            Error::OperationTimeout | Error::RequestTimeout => true,
            Error::Transaction { source, .. } => source.outcome_unknown(),
            _ => false,
        }
    }

    /// This client handle is finished: its session expired, authentication failed, or it was
    /// closed. Every later call fails the same way; build a new client to go on.
    pub fn is_session_terminal(&self) -> bool {
        matches!(
            self,
            Error::SessionExpired
                | Error::AuthFailed
                | Error::Closed
                | Error::SessionClosedRequireSaslAuth
        )
    }

    pub(crate) fn invalid_path(path: &str, source: PathError) -> Error {
        Error::InvalidPath {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn protocol(e: impl std::fmt::Display) -> Error {
        Error::Protocol(e.to_string())
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Error {
        match e {
            DecodeError::TooLong { len, max } => Error::TooLarge { len, max },
            other => Error::protocol(other),
        }
    }
}

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_code_maps_and_back() {
        for &code in ErrorCode::ALL {
            if code == ErrorCode::Ok {
                continue;
            }
            let err = Error::from_code(code.as_i32());
            assert_eq!(err.code(), Some(code), "{code:?} -> {err:?}");
        }
        assert_eq!(Error::from_code(-9), Error::UnknownCode(-9));
        assert_eq!(Error::from_code(-9).code(), None);
    }

    #[test]
    fn classifiers() {
        let unknown = Error::ConnectionLoss {
            outcome_unknown: true,
        };
        let safe = Error::ConnectionLoss {
            outcome_unknown: false,
        };
        assert!(unknown.is_retryable() && unknown.outcome_unknown());
        assert!(safe.is_retryable() && !safe.outcome_unknown());
        assert!(Error::Timeout.is_retryable() && !Error::Timeout.outcome_unknown());
        for terminal in [Error::SessionExpired, Error::AuthFailed, Error::Closed] {
            assert!(terminal.is_session_terminal());
            assert!(!terminal.is_retryable());
        }
        let tx = Error::Transaction {
            index: 2,
            source: Box::new(Error::NodeExists),
        };
        assert_eq!(tx.code(), Some(ErrorCode::NodeExists));
        assert!(!tx.is_retryable());
        assert!(unknown.to_string().contains("may have been applied"));
    }

    #[test]
    fn decode_errors() {
        let too_long: Error = DecodeError::TooLong { len: 10, max: 5 }.into();
        assert_eq!(too_long, Error::TooLarge { len: 10, max: 5 });
        let bad: Error = DecodeError::TrailingBytes(3).into();
        assert!(matches!(bad, Error::Protocol(_)));
    }
}
