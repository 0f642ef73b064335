//! [`Request`]: the body of a client→server frame, one variant per client opcode.
//!
//! A request frame after the handshake is a [`RequestHeader`] followed by the body for the
//! header's opcode. To decode one:
//!
//! * all at once: [`decode_request_frame`] (header, opcode lookup, body, no trailing bytes);
//! * step by step (what a server wants, so it can still answer with the header's xid when the
//!   opcode is unknown or the body is bad): [`RequestHeader`]`::decode`, then
//!   [`RequestHeader::op_code`], then [`Request::decode_body`].
//!
//! Encoding is `(header, request)` through [`Encode`], e.g. with
//! [`encode_frame`](crate::frame::encode_frame).
//!
//! ```
//! use zk_proto::records::{GetDataRequest, RequestHeader};
//! use zk_proto::{decode_request_frame, Encode, OpCode, Request};
//!
//! let request = Request::GetData(GetDataRequest { path: "/a".into(), watch: true });
//! let header = RequestHeader::new(1, request.op_code());
//! let payload = (&header, &request).to_bytes();
//!
//! let (h, r) = decode_request_frame(payload)?;
//! assert_eq!(h.op_code(), Ok(OpCode::GetData));
//! assert_eq!(r, request);
//! # Ok::<(), zk_proto::DecodeError>(())
//! ```

use bytes::{Buf, BufMut};

use crate::codec::{Decode, DecodeError, Encode, ensure_consumed};
use crate::op_code::OpCode;
use crate::records::*;

/// Declares `Request` from a table of (variant, body type, opcode), plus body-less variants.
macro_rules! request_enum {
    (
        with_body { $( $(#[$doc:meta])* $variant:ident($ty:ty) = $op:ident, )* }
        no_body { $( $(#[$udoc:meta])* $unit:ident = $uop:ident, )* }
    ) => {
        /// The body of a client→server frame (after the `RequestHeader`).
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Request {
            $( $(#[$doc])* $variant($ty), )*
            $( $(#[$udoc])* $unit, )*
        }

        impl Request {
            /// The opcode to put in the `RequestHeader`.
            pub fn op_code(&self) -> OpCode {
                match self {
                    $( Request::$variant(_) => OpCode::$op, )*
                    $( Request::$unit => OpCode::$uop, )*
                }
            }

            /// Decodes the body of a request with opcode `op`.
            ///
            /// Opcodes clients never send (`notification`, `createSession`, `error`) are
            /// [`DecodeError::UnsupportedOp`]. Trailing bytes are left in `buf`.
            pub fn decode_body<B: Buf>(op: OpCode, buf: &mut B) -> Result<Request, DecodeError> {
                Ok(match op {
                    $( OpCode::$op => Request::$variant(<$ty>::decode(buf)?), )*
                    $( OpCode::$uop => Request::$unit, )*
                    _ => return Err(DecodeError::UnsupportedOp { op, what: "request" }),
                })
            }
        }

        /// Encodes the body only (no header).
        impl Encode for Request {
            fn encode<BM: BufMut>(&self, buf: &mut BM) {
                match self {
                    $( Request::$variant(body) => body.encode(buf), )*
                    $( Request::$unit => {} )*
                }
            }

            fn encoded_len(&self) -> usize {
                match self {
                    $( Request::$variant(body) => body.encoded_len(), )*
                    $( Request::$unit => 0, )*
                }
            }
        }
    };
}

request_enum! {
    with_body {
        /// `create` (1).
        Create(CreateRequest) = Create,
        /// `create2` (15): create and return the stat.
        Create2(CreateRequest) = Create2,
        /// `createContainer` (19).
        CreateContainer(CreateRequest) = CreateContainer,
        /// `createTTL` (21).
        CreateTtl(CreateTtlRequest) = CreateTtl,
        /// `delete` (2).
        Delete(DeleteRequest) = Delete,
        /// `exists` (3).
        Exists(ExistsRequest) = Exists,
        /// `getData` (4).
        GetData(GetDataRequest) = GetData,
        /// `setData` (5).
        SetData(SetDataRequest) = SetData,
        /// `getACL` (6).
        GetAcl(GetAclRequest) = GetAcl,
        /// `setACL` (7).
        SetAcl(SetAclRequest) = SetAcl,
        /// `getChildren` (8).
        GetChildren(GetChildrenRequest) = GetChildren,
        /// `getChildren2` (12).
        GetChildren2(GetChildren2Request) = GetChildren2,
        /// `getAllChildrenNumber` (104).
        GetAllChildrenNumber(GetAllChildrenNumberRequest) = GetAllChildrenNumber,
        /// `getEphemerals` (103).
        GetEphemerals(GetEphemeralsRequest) = GetEphemerals,
        /// `sync` (9).
        Sync(SyncRequest) = Sync,
        /// `check` (13); the Java server only accepts it inside a multi.
        Check(CheckVersionRequest) = Check,
        /// `multi` (14).
        Multi(MultiRequest) = Multi,
        /// `multiRead` (22).
        MultiRead(MultiReadRequest) = MultiRead,
        /// `reconfig` (16).
        Reconfig(ReconfigRequest) = Reconfig,
        /// `checkWatches` (17).
        CheckWatches(CheckWatchesRequest) = CheckWatches,
        /// `removeWatches` (18).
        RemoveWatches(RemoveWatchesRequest) = RemoveWatches,
        /// `auth` (100), sent with xid -4.
        Auth(AuthPacket) = Auth,
        /// `sasl` (102).
        Sasl(GetSaslRequest) = Sasl,
        /// `setWatches` (101).
        SetWatches(SetWatches) = SetWatches,
        /// `setWatches2` (105).
        SetWatches2(SetWatches2) = SetWatches2,
        /// `addWatch` (106).
        AddWatch(AddWatchRequest) = AddWatch,
        /// `deleteContainer` (20); server-internal, body is the raw path bytes.
        DeleteContainer(DeleteContainerRequest) = DeleteContainer,
    }
    no_body {
        /// `whoAmI` (107).
        WhoAmI = WhoAmI,
        /// `ping` (11), sent with xid -2.
        Ping = Ping,
        /// `closeSession` (-11).
        CloseSession = CloseSession,
    }
}

/// Decodes a whole client→server frame payload (after the handshake) into its header and
/// body. The payload must be consumed exactly ([`DecodeError::TrailingBytes`] otherwise);
/// an unknown opcode is [`DecodeError::Unknown`].
pub fn decode_request_frame<B: Buf>(
    mut payload: B,
) -> Result<(RequestHeader, Request), DecodeError> {
    let header = RequestHeader::decode(&mut payload)?;
    let op = header.op_code()?;
    let request = Request::decode_body(op, &mut payload)?;
    ensure_consumed(&payload)?;
    Ok((header, request))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::records::testing::hex;

    #[test]
    fn ping_frame_payload() {
        let payload = (RequestHeader::ping(), Request::Ping).to_bytes();
        assert_eq!(&payload[..], &hex("fffffffe 0000000b")[..]);
        assert_eq!(
            decode_request_frame(payload),
            Ok((RequestHeader::ping(), Request::Ping))
        );
    }

    #[test]
    fn close_session_and_whoami_have_no_body() {
        for req in [Request::CloseSession, Request::WhoAmI] {
            assert_eq!(req.encoded_len(), 0);
            let header = RequestHeader::new(5, req.op_code());
            let payload = (&header, &req).to_bytes();
            assert_eq!(payload.len(), 8);
            assert_eq!(decode_request_frame(payload), Ok((header, req)));
        }
    }

    #[test]
    fn opcodes_without_requests() {
        for op in [OpCode::Notification, OpCode::CreateSession, OpCode::Error] {
            assert_eq!(
                Request::decode_body(op, &mut &[][..]),
                Err(DecodeError::UnsupportedOp {
                    op,
                    what: "request"
                })
            );
        }
    }

    #[test]
    fn every_client_opcode_has_a_request() {
        let supported = OpCode::ALL
            .iter()
            .filter(|op| {
                !matches!(
                    op,
                    OpCode::Notification | OpCode::CreateSession | OpCode::Error
                )
            })
            .count();
        assert_eq!(supported, 30);
    }

    #[test]
    fn unknown_opcode_and_trailing_bytes() {
        let payload = hex("00000001 0000000a");
        assert_eq!(
            decode_request_frame(&payload[..]),
            Err(DecodeError::Unknown(crate::UnknownValue {
                kind: "opcode",
                value: 10
            }))
        );
        let payload = hex("00000001 0000000b 00");
        assert_eq!(
            decode_request_frame(&payload[..]),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    #[test]
    fn auth_frame_payload() {
        let req = Request::Auth(AuthPacket::new("digest", Bytes::from_static(b"u:p")));
        let header = RequestHeader::new(xid::AUTH, req.op_code());
        let payload = (&header, &req).to_bytes();
        let expected = hex("fffffffc 00000064 00000000 00000006 646967657374 00000003 753a70");
        assert_eq!(&payload[..], &expected[..]);
    }
}
