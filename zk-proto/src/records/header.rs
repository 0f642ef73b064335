//! [`RequestHeader`] and [`ReplyHeader`], which start every frame after the handshake, and the
//! special xids in [`xid`].

use crate::codec::UnknownValue;
use crate::error_code::ErrorCode;
use crate::op_code::OpCode;

/// Special xids. Normal requests use xids ≥ 1.
pub mod xid {
    /// Watch notification (server→client; body `WatcherEvent`).
    pub const NOTIFICATION: i32 = -1;
    /// Ping, both directions, opcode `ping`, no body.
    pub const PING: i32 = -2;
    /// Authentication packet, opcode `auth`.
    pub const AUTH: i32 = -4;
    /// `setWatches` as the C client sends it (the Java client uses a normal xid).
    pub const SET_WATCHES: i32 = -8;
}

jute_record! {
    /// Starts every client→server frame after the `ConnectRequest`.
    pub struct RequestHeader {
        /// Request id echoed in the reply (see [`xid`] for the special values).
        pub xid: i32,
        /// The raw opcode (jute field `type`); see [`RequestHeader::op_code`].
        pub op: i32,
    }
}

impl RequestHeader {
    /// A header for `op` with the given xid.
    pub fn new(xid: i32, op: OpCode) -> Self {
        RequestHeader { xid, op: op.into() }
    }

    /// The ping header: xid -2, opcode `ping`.
    pub fn ping() -> Self {
        RequestHeader::new(xid::PING, OpCode::Ping)
    }

    /// The opcode, if known.
    pub fn op_code(&self) -> Result<OpCode, UnknownValue> {
        OpCode::try_from(self.op)
    }
}

jute_record! {
    /// Starts every server→client frame after the `ConnectResponse`.
    pub struct ReplyHeader {
        /// The xid of the request answered, or a special xid.
        pub xid: i32,
        /// The server's last processed zxid at reply time.
        pub zxid: i64,
        /// The raw result code; see [`ReplyHeader::error_code`]. No body follows when non-zero.
        pub err: i32,
    }
}

impl ReplyHeader {
    /// A reply header with the given result.
    pub fn new(xid: i32, zxid: i64, err: ErrorCode) -> Self {
        ReplyHeader {
            xid,
            zxid,
            err: err.into(),
        }
    }

    /// The result code, if known.
    pub fn error_code(&self) -> Result<ErrorCode, UnknownValue> {
        ErrorCode::try_from(self.err)
    }

    /// `true` when `err` is 0.
    pub fn is_ok(&self) -> bool {
        self.err == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{hex, roundtrip};

    #[test]
    fn request_header_bytes() {
        let h = RequestHeader::new(1, OpCode::GetData);
        assert_eq!(&roundtrip(&h)[..], &hex("00000001 00000004")[..]);
        assert_eq!(
            &roundtrip(&RequestHeader::ping())[..],
            &hex("fffffffe 0000000b")[..]
        );
        let auth = RequestHeader::new(xid::AUTH, OpCode::Auth);
        assert_eq!(&roundtrip(&auth)[..], &hex("fffffffc 00000064")[..]);
        let close = RequestHeader::new(7, OpCode::CloseSession);
        assert_eq!(&roundtrip(&close)[..], &hex("00000007 fffffff5")[..]);
    }

    #[test]
    fn reply_header_bytes() {
        let h = ReplyHeader::new(3, 0x1_0000_0002, ErrorCode::NoNode);
        assert_eq!(
            &roundtrip(&h)[..],
            &hex("00000003 0000000100000002 ffffff9b")[..]
        );
        assert_eq!(h.error_code(), Ok(ErrorCode::NoNode));
        assert!(!h.is_ok());
        let notification = ReplyHeader {
            xid: xid::NOTIFICATION,
            zxid: -1,
            err: 0,
        };
        assert_eq!(
            &roundtrip(&notification)[..],
            &hex("ffffffff ffffffffffffffff 00000000")[..]
        );
    }

    #[test]
    fn unknown_codes_are_values() {
        let h = RequestHeader { xid: 1, op: 999 };
        assert_eq!(h.op_code().map_err(|e| e.value), Err(999));
        let r = ReplyHeader {
            xid: 1,
            zxid: 0,
            err: -9,
        };
        assert_eq!(r.error_code().map_err(|e| e.value), Err(-9));
    }
}
