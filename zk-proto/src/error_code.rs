//! [`ErrorCode`]: the `err` field of a `ReplyHeader` (and of multi error results).
//!
//! Every value of Java's `KeeperException.Code`. A reply header keeps the raw number; convert
//! with `ErrorCode::try_from(n)`, which returns an [`UnknownValue`](crate::UnknownValue)
//! carrying `n` for numbers this crate does not know.
//!
//! ```
//! use zk_proto::ErrorCode;
//!
//! let code = ErrorCode::try_from(-101)?;
//! assert_eq!(code, ErrorCode::NoNode);
//! assert_eq!(code.name(), "NONODE");
//! assert_eq!(code.to_string(), "NoNode");
//! assert!(ErrorCode::try_from(-9).is_err());
//! # Ok::<(), zk_proto::UnknownValue>(())
//! ```

use std::fmt;

code_enum! {
    /// A ZooKeeper result code (`KeeperException.Code`).
    pub enum ErrorCode("error code") {
        /// 0: success.
        Ok = 0 => "OK",
        /// -1: range marker for system errors; never sent as such by the server.
        SystemError = -1 => "SYSTEMERROR",
        /// -2: a runtime inconsistency was found (also: multi ops after the failing one).
        RuntimeInconsistency = -2 => "RUNTIMEINCONSISTENCY",
        /// -3: a data inconsistency was found.
        DataInconsistency = -3 => "DATAINCONSISTENCY",
        /// -4: the connection to the server was lost (client-side).
        ConnectionLoss = -4 => "CONNECTIONLOSS",
        /// -5: error while marshalling or unmarshalling data.
        MarshallingError = -5 => "MARSHALLINGERROR",
        /// -6: operation is unimplemented.
        Unimplemented = -6 => "UNIMPLEMENTED",
        /// -7: operation timeout.
        OperationTimeout = -7 => "OPERATIONTIMEOUT",
        /// -8: invalid arguments (bad path, flags, TTL, ...).
        BadArguments = -8 => "BADARGUMENTS",
        /// -12: unknown session (server-internal).
        UnknownSession = -12 => "UNKNOWNSESSION",
        /// -13: no quorum of the new config is connected and up to date.
        NewConfigNoQuorum = -13 => "NEWCONFIGNOQUORUM",
        /// -14: another reconfiguration is in progress.
        ReconfigInProgress = -14 => "RECONFIGINPROGRESS",
        /// -100: range marker for API errors; never sent.
        ApiError = -100 => "APIERROR",
        /// -101: the node does not exist.
        NoNode = -101 => "NONODE",
        /// -102: not authorised.
        NoAuth = -102 => "NOAUTH",
        /// -103: version conflict.
        BadVersion = -103 => "BADVERSION",
        /// -108: ephemeral nodes may not have children.
        NoChildrenForEphemerals = -108 => "NOCHILDRENFOREPHEMERALS",
        /// -110: the node already exists.
        NodeExists = -110 => "NODEEXISTS",
        /// -111: the node has children.
        NotEmpty = -111 => "NOTEMPTY",
        /// -112: the session has been expired by the server.
        SessionExpired = -112 => "SESSIONEXPIRED",
        /// -113: invalid callback specified.
        InvalidCallback = -113 => "INVALIDCALLBACK",
        /// -114: invalid ACL specified.
        InvalidAcl = -114 => "INVALIDACL",
        /// -115: client authentication failed.
        AuthFailed = -115 => "AUTHFAILED",
        /// -118: session moved to another server, so the operation is ignored.
        SessionMoved = -118 => "SESSIONMOVED",
        /// -119: state-changing request sent to a read-only server.
        NotReadOnly = -119 => "NOTREADONLY",
        /// -120: attempt to create an ephemeral node on a local session.
        EphemeralOnLocalSession = -120 => "EPHEMERALONLOCALSESSION",
        /// -121: attempt to remove or check a watch that does not exist.
        NoWatcher = -121 => "NOWATCHER",
        /// -122: request not completed within the allowed time (client-side).
        RequestTimeout = -122 => "REQUESTTIMEOUT",
        /// -123: reconfiguration is disabled.
        ReconfigDisabled = -123 => "RECONFIGDISABLED",
        /// -124: session closed because the client failed to authenticate as required.
        SessionClosedRequireSaslAuth = -124 => "SESSIONCLOSEDREQUIRESASLAUTH",
        /// -125: the quota set on the path was exceeded.
        QuotaExceeded = -125 => "QUOTAEXCEEDED",
        /// -127: the operation was throttled and not executed; retry with back-off.
        ThrottledOp = -127 => "THROTTLEDOP",
    }
}

impl ErrorCode {
    /// The short message Java prints after `KeeperErrorCode = ` (e.g. `NoNode`).
    ///
    /// Java has no message for `UNKNOWNSESSION` and `REQUESTTIMEOUT`; these return
    /// `UnknownSession` and `RequestTimeout`.
    pub const fn message(self) -> &'static str {
        match self {
            ErrorCode::Ok => "ok",
            ErrorCode::SystemError => "SystemError",
            ErrorCode::RuntimeInconsistency => "RuntimeInconsistency",
            ErrorCode::DataInconsistency => "DataInconsistency",
            ErrorCode::ConnectionLoss => "ConnectionLoss",
            ErrorCode::MarshallingError => "MarshallingError",
            ErrorCode::Unimplemented => "Unimplemented",
            ErrorCode::OperationTimeout => "OperationTimeout",
            ErrorCode::BadArguments => "BadArguments",
            ErrorCode::UnknownSession => "UnknownSession",
            ErrorCode::NewConfigNoQuorum => "NewConfigNoQuorum",
            ErrorCode::ReconfigInProgress => "ReconfigInProgress",
            ErrorCode::ApiError => "APIError",
            ErrorCode::NoNode => "NoNode",
            ErrorCode::NoAuth => "NoAuth",
            ErrorCode::BadVersion => "BadVersion",
            ErrorCode::NoChildrenForEphemerals => "NoChildrenForEphemerals",
            ErrorCode::NodeExists => "NodeExists",
            ErrorCode::NotEmpty => "Directory not empty",
            ErrorCode::SessionExpired => "Session expired",
            ErrorCode::InvalidCallback => "Invalid callback",
            ErrorCode::InvalidAcl => "InvalidACL",
            ErrorCode::AuthFailed => "AuthFailed",
            ErrorCode::SessionMoved => "Session moved",
            ErrorCode::NotReadOnly => "Not a read-only call",
            ErrorCode::EphemeralOnLocalSession => "Ephemeral node on local session",
            ErrorCode::NoWatcher => "No such watcher",
            ErrorCode::RequestTimeout => "RequestTimeout",
            ErrorCode::ReconfigDisabled => "Reconfig is disabled",
            ErrorCode::SessionClosedRequireSaslAuth => {
                "Session closed because client failed to authenticate"
            }
            ErrorCode::QuotaExceeded => "Quota has exceeded",
            ErrorCode::ThrottledOp => "Op throttled due to high load",
        }
    }

    /// `true` for [`ErrorCode::Ok`].
    pub const fn is_ok(self) -> bool {
        matches!(self, ErrorCode::Ok)
    }

    /// System errors (-1 down to -99): server or connection trouble rather than a rejected
    /// request.
    pub const fn is_system_error(self) -> bool {
        let n = self as i32;
        n < 0 && n > ErrorCode::ApiError as i32
    }

    /// API errors (-101 and below): the server refused this request.
    pub const fn is_api_error(self) -> bool {
        (self as i32) < ErrorCode::ApiError as i32
    }
}

/// Java's message, e.g. `NoNode`; use [`ErrorCode::name`] for `NONODE`.
impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_roundtrips() {
        assert_eq!(ErrorCode::ALL.len(), 32);
        for &code in ErrorCode::ALL {
            assert_eq!(ErrorCode::try_from(code.as_i32()), Ok(code));
            assert!(!code.message().is_empty());
        }
    }

    #[test]
    fn gaps_are_unknown() {
        let undefined = [
            -9, -10, -11, -15, -50, -99, -104, -105, -106, -107, -109, -116, -117, -126, -128, 1,
        ];
        for n in undefined {
            assert_eq!(ErrorCode::try_from(n).map_err(|e| e.value), Err(n));
        }
    }

    #[test]
    fn classification() {
        assert!(ErrorCode::Ok.is_ok());
        assert!(ErrorCode::ConnectionLoss.is_system_error());
        assert!(!ErrorCode::ApiError.is_system_error());
        assert!(ErrorCode::NoNode.is_api_error());
        assert!(!ErrorCode::ApiError.is_api_error());
        assert_eq!(ErrorCode::NotEmpty.to_string(), "Directory not empty");
    }
}
