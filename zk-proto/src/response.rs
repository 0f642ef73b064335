//! [`Response`]: the body of a server→client frame, and [`decode_reply_frame`], the one
//! convenience for reading a server→client frame.
//!
//! # Decoding a conversation
//!
//! A reply does not say which operation it answers; the client knows from the xid. The full
//! flow for a recorded or live connection is:
//!
//! 1. First client frame: [`ConnectRequest`] (no header), decoded with
//!    [`Decode::decode_exact`].
//! 2. First server frame: [`ConnectResponse`] (no header), likewise.
//! 3. Later client frames: [`decode_request_frame`](crate::decode_request_frame) →
//!    `(RequestHeader, Request)`; remember `header.xid → opcode` for requests that get a reply.
//! 4. Later server frames: [`decode_reply_frame`] with a lookup from xid to the pending
//!    request's opcode. It reads the [`ReplyHeader`], then the body:
//!    * xid -1 (notification) → [`Response::Notification`] (`WatcherEvent`);
//!    * xid -2 (ping) and xid -4 (auth) → [`Response::Empty`];
//!    * `err != 0` → [`Response::Empty`] (no body follows an error, multi included);
//!    * otherwise → [`Response::decode_body`] with the opcode from the lookup (an xid the
//!      lookup does not know is [`DecodeError::UnknownXid`], except xid -8, the C client's
//!      `setWatches`, which is treated as `setWatches`).
//!
//! Every step consumes the payload exactly; re-encoding the decoded values (the header and
//! body as a pair) reproduces the payload byte for byte, except for the lossy cases described
//! in [`codec`](crate::codec) (nulls in non-`Option` fields, non-0/1 booleans, invalid UTF-8).
//!
//! ```
//! use zk_proto::records::{ReplyHeader, Stat, ExistsResponse};
//! use zk_proto::{decode_reply_frame, Encode, ErrorCode, OpCode, Response};
//!
//! // Success: the body is interpreted by the pending request's opcode.
//! let body = Response::Exists(ExistsResponse { stat: Stat::default() });
//! let payload = (ReplyHeader::new(7, 100, ErrorCode::Ok), &body).to_bytes();
//! let (header, response) = decode_reply_frame(payload.clone(), |xid| (xid == 7).then_some(OpCode::Exists))?;
//! assert_eq!(response, body);
//! assert_eq!((&header, &response).to_bytes(), payload);
//!
//! // Failure: no body, whatever the opcode.
//! let payload = ReplyHeader::new(8, 100, ErrorCode::NoNode).to_bytes();
//! let (header, response) = decode_reply_frame(payload, |_| Some(OpCode::Exists))?;
//! assert_eq!(header.error_code(), Ok(ErrorCode::NoNode));
//! assert_eq!(response, Response::Empty);
//! # Ok::<(), zk_proto::DecodeError>(())
//! ```

use bytes::{Buf, BufMut};

use crate::codec::{Decode, DecodeError, Encode, ensure_consumed};
use crate::op_code::OpCode;
#[allow(unused_imports)] // ConnectRequest / ConnectResponse are named in the docs above.
use crate::records::*;

/// The body of a server→client frame (after the `ReplyHeader`), by response record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// No body: error replies, pings, auth, and delete, check, closeSession, setWatches,
    /// setWatches2, checkWatches, removeWatches, deleteContainer.
    Empty,
    /// `create` (1).
    Create(CreateResponse),
    /// `create2`, `createContainer`, `createTTL`.
    Create2(Create2Response),
    /// `exists` (3).
    Exists(ExistsResponse),
    /// `getData` (4) and `reconfig` (16).
    GetData(GetDataResponse),
    /// `setData` (5).
    SetData(SetDataResponse),
    /// `getACL` (6).
    GetAcl(GetAclResponse),
    /// `setACL` (7).
    SetAcl(SetAclResponse),
    /// `getChildren` (8).
    GetChildren(GetChildrenResponse),
    /// `getChildren2` (12).
    GetChildren2(GetChildren2Response),
    /// `sync` (9).
    Sync(SyncResponse),
    /// `multi` (14) and `multiRead` (22).
    Multi(MultiResponse),
    /// `sasl` (102).
    Sasl(SetSaslResponse),
    /// `getEphemerals` (103).
    GetEphemerals(GetEphemeralsResponse),
    /// `getAllChildrenNumber` (104).
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    /// `addWatch` (106): the success body is `ErrorResponse { err: 0 }`.
    AddWatch(ErrorResponse),
    /// `whoAmI` (107).
    WhoAmI(WhoAmIResponse),
    /// A watch notification (xid -1, opcode `notification`).
    Notification(WatcherEvent),
}

impl Response {
    /// Decodes the body of a successful (`err == 0`) reply to a request with opcode `op`.
    ///
    /// `createSession` and `error` have no client-visible response
    /// ([`DecodeError::UnsupportedOp`]). Trailing bytes are left in `buf`.
    pub fn decode_body<B: Buf>(op: OpCode, buf: &mut B) -> Result<Response, DecodeError> {
        Ok(match op {
            OpCode::Create => Response::Create(Decode::decode(buf)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Response::Create2(Decode::decode(buf)?)
            }
            OpCode::Exists => Response::Exists(Decode::decode(buf)?),
            OpCode::GetData | OpCode::Reconfig => Response::GetData(Decode::decode(buf)?),
            OpCode::SetData => Response::SetData(Decode::decode(buf)?),
            OpCode::GetAcl => Response::GetAcl(Decode::decode(buf)?),
            OpCode::SetAcl => Response::SetAcl(Decode::decode(buf)?),
            OpCode::GetChildren => Response::GetChildren(Decode::decode(buf)?),
            OpCode::GetChildren2 => Response::GetChildren2(Decode::decode(buf)?),
            OpCode::Sync => Response::Sync(Decode::decode(buf)?),
            OpCode::Multi | OpCode::MultiRead => Response::Multi(Decode::decode(buf)?),
            OpCode::Sasl => Response::Sasl(Decode::decode(buf)?),
            OpCode::GetEphemerals => Response::GetEphemerals(Decode::decode(buf)?),
            OpCode::GetAllChildrenNumber => Response::GetAllChildrenNumber(Decode::decode(buf)?),
            OpCode::AddWatch => Response::AddWatch(Decode::decode(buf)?),
            OpCode::WhoAmI => Response::WhoAmI(Decode::decode(buf)?),
            OpCode::Notification => Response::Notification(Decode::decode(buf)?),
            OpCode::Delete
            | OpCode::Check
            | OpCode::Ping
            | OpCode::CloseSession
            | OpCode::CheckWatches
            | OpCode::RemoveWatches
            | OpCode::Auth
            | OpCode::SetWatches
            | OpCode::SetWatches2
            | OpCode::DeleteContainer => Response::Empty,
            OpCode::CreateSession | OpCode::Error => {
                return Err(DecodeError::UnsupportedOp {
                    op,
                    what: "response",
                });
            }
        })
    }
}

macro_rules! for_each_body {
    ($self:expr, $body:ident => $some:expr, empty => $none:expr) => {
        match $self {
            Response::Empty => $none,
            Response::Create($body) => $some,
            Response::Create2($body) => $some,
            Response::Exists($body) => $some,
            Response::GetData($body) => $some,
            Response::SetData($body) => $some,
            Response::GetAcl($body) => $some,
            Response::SetAcl($body) => $some,
            Response::GetChildren($body) => $some,
            Response::GetChildren2($body) => $some,
            Response::Sync($body) => $some,
            Response::Multi($body) => $some,
            Response::Sasl($body) => $some,
            Response::GetEphemerals($body) => $some,
            Response::GetAllChildrenNumber($body) => $some,
            Response::AddWatch($body) => $some,
            Response::WhoAmI($body) => $some,
            Response::Notification($body) => $some,
        }
    };
}

/// Encodes the body only (no header); [`Response::Empty`] writes nothing.
impl Encode for Response {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        for_each_body!(self, body => body.encode(buf), empty => {})
    }

    fn encoded_len(&self) -> usize {
        for_each_body!(self, body => body.encoded_len(), empty => 0)
    }
}

/// Decodes a whole server→client frame payload (after the handshake): the [`ReplyHeader`]
/// and the body it implies, following the rules in the [module docs](self).
///
/// `op_for_xid` maps the reply's xid to the opcode of the pending request it answers; it is
/// called at most once, and only for replies that carry a body (not for notifications, pings,
/// auth replies or errors). The payload must be consumed exactly.
pub fn decode_reply_frame<B, F>(
    mut payload: B,
    op_for_xid: F,
) -> Result<(ReplyHeader, Response), DecodeError>
where
    B: Buf,
    F: FnOnce(i32) -> Option<OpCode>,
{
    let header = ReplyHeader::decode(&mut payload)?;
    let response = match header.xid {
        xid::NOTIFICATION => Response::Notification(WatcherEvent::decode(&mut payload)?),
        xid::PING | xid::AUTH => Response::Empty,
        _ if header.err != 0 => Response::Empty,
        id => {
            let op = op_for_xid(id)
                .or((id == xid::SET_WATCHES).then_some(OpCode::SetWatches))
                .ok_or(DecodeError::UnknownXid(id))?;
            Response::decode_body(op, &mut payload)?
        }
    };
    ensure_consumed(&payload)?;
    Ok((header, response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_code::ErrorCode;
    use crate::records::testing::hex;
    use crate::types::EventType;

    #[test]
    fn notification_frame() {
        let header = ReplyHeader {
            xid: xid::NOTIFICATION,
            zxid: 0x10,
            err: 0,
        };
        let event = WatcherEvent::new(EventType::NodeDeleted, "/a");
        let payload = (&header, &event).to_bytes();
        let expected = hex("ffffffff 0000000000000010 00000000 00000002 00000003 00000002 2f61");
        assert_eq!(&payload[..], &expected[..]);
        let decoded = decode_reply_frame(payload, |_| None);
        assert_eq!(decoded, Ok((header, Response::Notification(event))));
    }

    #[test]
    fn ping_and_auth_replies_are_empty() {
        for xid in [xid::PING, xid::AUTH] {
            let header = ReplyHeader {
                xid,
                zxid: 5,
                err: 0,
            };
            let decoded = decode_reply_frame(header.to_bytes(), |_| None);
            assert_eq!(decoded, Ok((header, Response::Empty)));
        }
        let failed = ReplyHeader::new(xid::AUTH, 0, ErrorCode::AuthFailed);
        assert_eq!(
            decode_reply_frame(failed.to_bytes(), |_| None),
            Ok((failed, Response::Empty))
        );
    }

    #[test]
    fn errors_have_no_body_even_for_multi() {
        let header = ReplyHeader::new(3, 9, ErrorCode::MarshallingError);
        let decoded = decode_reply_frame(header.to_bytes(), |_| Some(OpCode::Multi));
        assert_eq!(decoded, Ok((header, Response::Empty)));
    }

    #[test]
    fn add_watch_success_body_is_int_zero() {
        let header = ReplyHeader::new(4, 9, ErrorCode::Ok);
        let body = Response::AddWatch(ErrorResponse { err: 0 });
        let payload = (&header, &body).to_bytes();
        assert_eq!(&payload[16..], &[0, 0, 0, 0]);
        assert_eq!(
            decode_reply_frame(payload, |_| Some(OpCode::AddWatch)),
            Ok((header, body))
        );
    }

    #[test]
    fn unknown_xid() {
        let header = ReplyHeader::new(42, 9, ErrorCode::Ok);
        assert_eq!(
            decode_reply_frame(header.to_bytes(), |_| None),
            Err(DecodeError::UnknownXid(42))
        );
        let c_set_watches = ReplyHeader::new(xid::SET_WATCHES, 9, ErrorCode::Ok);
        let decoded = decode_reply_frame(c_set_watches.to_bytes(), |_| None);
        assert_eq!(decoded, Ok((c_set_watches, Response::Empty)));
    }

    #[test]
    fn reconfig_answers_with_get_data() {
        let body = Response::decode_body(OpCode::Reconfig, &mut &hex("ffffffff")[..]);
        // Truncated stat after a null buffer.
        assert!(body.is_err_and(|e| e.is_incomplete()));
    }

    #[test]
    fn opcodes_without_responses() {
        for op in [OpCode::CreateSession, OpCode::Error] {
            assert_eq!(
                Response::decode_body(op, &mut &[][..]),
                Err(DecodeError::UnsupportedOp {
                    op,
                    what: "response"
                })
            );
        }
    }
}
