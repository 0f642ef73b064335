//! The session handshake: [`ConnectRequest`] (first client frame) and [`ConnectResponse`]
//! (first server frame). Neither has a request/reply header.
//!
//! Both end with an **optional** `readOnly` boolean that is not in `zookeeper.jute`: old
//! clients omit it, and a server answers with it only if the request had it. Decoding records
//! whether it was present (`Option<bool>`), so re-encoding reproduces the input bytes. Because
//! "present" means "there is one more byte", these two records must be decoded from a buffer
//! that ends where the frame ends.

use bytes::{Buf, BufMut, Bytes};

use crate::codec::{Decode, DecodeError, Encode};

/// Length of a session password.
pub const PASSWORD_LEN: usize = 16;

/// First frame client→server: open a new session (`session_id` 0) or resume one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    /// Protocol version; always 0.
    pub protocol_version: i32,
    /// Highest zxid the client has seen (0 for a new client).
    pub last_zxid_seen: i64,
    /// Requested session timeout, ms.
    pub time_out: i32,
    /// 0 for a new session, else the session to resume.
    pub session_id: i64,
    /// 16 zero bytes for a new session, else the password from the `ConnectResponse`.
    pub passwd: Bytes,
    /// Trailing `readOnly` byte: `Some(true)` if the client accepts a read-only server,
    /// `None` if the byte was absent.
    pub read_only: Option<bool>,
}

impl ConnectRequest {
    /// A request for a brand-new session the way the Java client sends it (16 zero password
    /// bytes, `readOnly` byte present).
    pub fn new_session(time_out_ms: i32, last_zxid_seen: i64, read_only: bool) -> Self {
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen,
            time_out: time_out_ms,
            session_id: 0,
            passwd: Bytes::from_static(&[0; PASSWORD_LEN]),
            read_only: Some(read_only),
        }
    }
}

impl Encode for ConnectRequest {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        self.protocol_version.encode(buf);
        self.last_zxid_seen.encode(buf);
        self.time_out.encode(buf);
        self.session_id.encode(buf);
        self.passwd.encode(buf);
        if let Some(read_only) = self.read_only {
            read_only.encode(buf);
        }
    }
    fn encoded_len(&self) -> usize {
        4 + 8 + 4 + 8 + self.passwd.encoded_len() + usize::from(self.read_only.is_some())
    }
}

impl Decode for ConnectRequest {
    const MIN_LEN: usize = 28;
    /// Reads the trailing `readOnly` byte only if one remains in `buf`.
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: i32::decode(buf)?,
            last_zxid_seen: i64::decode(buf)?,
            time_out: i32::decode(buf)?,
            session_id: i64::decode(buf)?,
            passwd: Bytes::decode(buf)?,
            read_only: optional_bool(buf)?,
        })
    }
}

/// First frame server→client: the negotiated session, or `time_out <= 0` for an expired one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    /// Protocol version; always 0.
    pub protocol_version: i32,
    /// Negotiated session timeout, ms; `<= 0` means the session expired.
    pub time_out: i32,
    /// The session id (0 when expired).
    pub session_id: i64,
    /// The session password (16 bytes; zeros when expired).
    pub passwd: Bytes,
    /// Trailing `readOnly` byte: `Some(true)` if the server is read-only, `None` if absent.
    pub read_only: Option<bool>,
}

impl ConnectResponse {
    /// `true` if the server refused to resume the session (`time_out <= 0`).
    pub fn is_expired(&self) -> bool {
        self.time_out <= 0
    }
}

impl Encode for ConnectResponse {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        self.protocol_version.encode(buf);
        self.time_out.encode(buf);
        self.session_id.encode(buf);
        self.passwd.encode(buf);
        if let Some(read_only) = self.read_only {
            read_only.encode(buf);
        }
    }
    fn encoded_len(&self) -> usize {
        4 + 4 + 8 + self.passwd.encoded_len() + usize::from(self.read_only.is_some())
    }
}

impl Decode for ConnectResponse {
    const MIN_LEN: usize = 20;
    /// Reads the trailing `readOnly` byte only if one remains in `buf`.
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: i32::decode(buf)?,
            time_out: i32::decode(buf)?,
            session_id: i64::decode(buf)?,
            passwd: Bytes::decode(buf)?,
            read_only: optional_bool(buf)?,
        })
    }
}

fn optional_bool<B: Buf>(buf: &mut B) -> Result<Option<bool>, DecodeError> {
    if buf.has_remaining() {
        bool::decode(buf).map(Some)
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{hex, roundtrip_no_cuts};

    fn java_new_session() -> ConnectRequest {
        ConnectRequest::new_session(30_000, 0, false)
    }

    #[test]
    fn request_bytes_match_the_spec() {
        // protocolVersion 0, lastZxidSeen 0, timeOut 30000 (0x7530), sessionId 0,
        // passwd = len 16 + 16 zeros, readOnly false.
        let expected = hex("00000000 0000000000000000 00007530 0000000000000000
             00000010 00000000000000000000000000000000 00");
        let bytes = roundtrip_no_cuts(&java_new_session());
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(bytes.len(), 45);
    }

    #[test]
    fn response_bytes_match_the_spec() {
        let rsp = ConnectResponse {
            protocol_version: 0,
            time_out: 30_000,
            session_id: 0x0100_0123_4567_0000,
            passwd: Bytes::from(vec![0xab; 16]),
            read_only: Some(true),
        };
        let expected = hex("00000000 00007530 0100012345670000
             00000010 abababababababababababababababab 01");
        assert_eq!(&roundtrip_no_cuts(&rsp)[..], &expected[..]);
        assert!(!rsp.is_expired());
    }

    #[test]
    fn read_only_byte_is_optional_and_remembered() {
        let mut old = java_new_session();
        old.read_only = None;
        let bytes = roundtrip_no_cuts(&old);
        assert_eq!(bytes.len(), 44);

        let rsp = ConnectResponse {
            read_only: None,
            ..Default::default()
        };
        assert_eq!(roundtrip_no_cuts(&rsp).len(), 20);

        // Any non-zero readOnly byte reads as true.
        let mut with_two = java_new_session().to_bytes().to_vec();
        if let Some(last) = with_two.last_mut() {
            *last = 2;
        }
        let decoded = ConnectRequest::decode_exact(&with_two[..]);
        assert_eq!(decoded.map(|r| r.read_only), Ok(Some(true)));
    }

    #[test]
    fn truncation_before_the_optional_byte_is_incomplete() {
        let bytes = java_new_session().to_bytes();
        // Cutting exactly the readOnly byte gives a valid old-style request; every shorter
        // prefix is incomplete.
        for cut in 0..bytes.len() - 1 {
            let result = ConnectRequest::decode(&mut &bytes[..cut]);
            assert!(
                result.as_ref().is_err_and(DecodeError::is_incomplete),
                "{cut}: {result:?}"
            );
        }
        let expired = ConnectResponse {
            time_out: 0,
            ..Default::default()
        }
        .to_bytes();
        for cut in 0..expired.len() {
            let result = ConnectResponse::decode(&mut &expired[..cut]);
            assert!(
                result.as_ref().is_err_and(DecodeError::is_incomplete),
                "{cut}: {result:?}"
            );
        }
    }

    #[test]
    fn trailing_garbage_after_read_only_is_reported() {
        let mut bytes = java_new_session().to_bytes().to_vec();
        bytes.push(7);
        assert_eq!(
            ConnectRequest::decode_exact(&bytes[..]),
            Err(DecodeError::TrailingBytes(1))
        );
    }
}
