//! The multi encoding, used by `multi` (14) and `multiRead` (22).
//!
//! A multi body is a list of (`MultiHeader`, record) pairs ended by the header
//! `{type: -1, done: true, err: -1}` with no record after it ([`MultiHeader::END`]). Decoding
//! stops at the first header with `done` set, as Java's does.
//!
//! * Request ops carry `err = -1` in their headers. `multi` allows create (1), create2 (15),
//!   createContainer (19), createTTL (21), delete (2), setData (5) and check (13);
//!   `multiRead` allows getChildren (8) and getData (4). Any other type is
//!   [`DecodeError::InvalidMultiOp`] (Java: "Invalid type of op", reported as
//!   MARSHALLINGERROR).
//! * Response results carry the result type and `err = 0`, except error results: type -1,
//!   `err` = the code, followed by an `ErrorResponse` repeating the code. Per Java's
//!   `MultiResponse`: a plain `create` (1) result carries only the path (`CreateResponse`);
//!   `create2`, `createContainer` and `createTTL` results are all type 15 with path and stat
//!   (`Create2Response`); delete and check results have no record.
//! * A failed write multi still has reply `err = 0`; every result is an error result: 0 for
//!   ops before the failing one, its code, then -2 (RUNTIMEINCONSISTENCY) for the rest
//!   ([`MultiResponse::aborted`]).

use bytes::{Buf, BufMut};

use crate::codec::{Decode, DecodeError, Encode, UnknownValue};
use crate::error_code::ErrorCode;
use crate::op_code::OpCode;
use crate::records::children::{GetChildrenRequest, GetChildrenResponse};
use crate::records::data::{
    CheckVersionRequest, Create2Response, CreateRequest, CreateResponse, CreateTtlRequest,
    DeleteRequest, ErrorResponse, GetDataRequest, GetDataResponse, SetDataRequest, SetDataResponse,
};

jute_record! {
    /// Precedes each op (or result) of a multi, and ends the list.
    #[derive(Copy)]
    pub struct MultiHeader {
        /// Raw op type (jute `type`): an opcode, or -1 for an error result / the end marker.
        pub op: i32,
        /// `true` only on the end marker.
        pub done: bool,
        /// -1 in requests; 0 or the error code in responses.
        pub err: i32,
    }
}

impl MultiHeader {
    /// The end-of-list marker `{-1, true, -1}`.
    pub const END: MultiHeader = MultiHeader {
        op: -1,
        done: true,
        err: -1,
    };

    /// The header of a request op: `{op, false, -1}`.
    pub fn request(op: OpCode) -> Self {
        MultiHeader {
            op: op.into(),
            done: false,
            err: -1,
        }
    }
}

/// One operation of a write `multi` (14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// `create` (1).
    Create(CreateRequest),
    /// `create2` (15).
    Create2(CreateRequest),
    /// `createContainer` (19).
    CreateContainer(CreateRequest),
    /// `createTTL` (21).
    CreateTtl(CreateTtlRequest),
    /// `delete` (2).
    Delete(DeleteRequest),
    /// `setData` (5).
    SetData(SetDataRequest),
    /// `check` (13).
    Check(CheckVersionRequest),
}

impl MultiOp {
    /// The opcode written in this op's header.
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiOp::Create(_) => OpCode::Create,
            MultiOp::Create2(_) => OpCode::Create2,
            MultiOp::CreateContainer(_) => OpCode::CreateContainer,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
        }
    }

    /// The znode path the op acts on.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => &r.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
        }
    }
}

impl MultiEntry for MultiOp {
    fn header(&self) -> MultiHeader {
        MultiHeader::request(self.op_code())
    }

    fn encode_record<B: BufMut>(&self, buf: &mut B) {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => r.encode(buf),
            MultiOp::CreateTtl(r) => r.encode(buf),
            MultiOp::Delete(r) => r.encode(buf),
            MultiOp::SetData(r) => r.encode(buf),
            MultiOp::Check(r) => r.encode(buf),
        }
    }

    fn record_len(&self) -> usize {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => {
                r.encoded_len()
            }
            MultiOp::CreateTtl(r) => r.encoded_len(),
            MultiOp::Delete(r) => r.encoded_len(),
            MultiOp::SetData(r) => r.encoded_len(),
            MultiOp::Check(r) => r.encoded_len(),
        }
    }

    fn decode_record<B: Buf>(op: i32, buf: &mut B) -> Result<Self, DecodeError> {
        let invalid = DecodeError::InvalidMultiOp {
            op,
            what: "multi request",
        };
        Ok(match OpCode::try_from(op).map_err(|_| invalid.clone())? {
            OpCode::Create => MultiOp::Create(Decode::decode(buf)?),
            OpCode::Create2 => MultiOp::Create2(Decode::decode(buf)?),
            OpCode::CreateContainer => MultiOp::CreateContainer(Decode::decode(buf)?),
            OpCode::CreateTtl => MultiOp::CreateTtl(Decode::decode(buf)?),
            OpCode::Delete => MultiOp::Delete(Decode::decode(buf)?),
            OpCode::SetData => MultiOp::SetData(Decode::decode(buf)?),
            OpCode::Check => MultiOp::Check(Decode::decode(buf)?),
            _ => return Err(invalid),
        })
    }
}

/// One operation of a `multiRead` (22). Java ignores the `watch` flag here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiReadOp {
    /// `getChildren` (8).
    GetChildren(GetChildrenRequest),
    /// `getData` (4).
    GetData(GetDataRequest),
}

impl MultiReadOp {
    /// The opcode written in this op's header.
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiReadOp::GetChildren(_) => OpCode::GetChildren,
            MultiReadOp::GetData(_) => OpCode::GetData,
        }
    }

    /// The znode path the op reads.
    pub fn path(&self) -> &str {
        match self {
            MultiReadOp::GetChildren(r) => &r.path,
            MultiReadOp::GetData(r) => &r.path,
        }
    }
}

impl MultiEntry for MultiReadOp {
    fn header(&self) -> MultiHeader {
        MultiHeader::request(self.op_code())
    }

    fn encode_record<B: BufMut>(&self, buf: &mut B) {
        match self {
            MultiReadOp::GetChildren(r) => r.encode(buf),
            MultiReadOp::GetData(r) => r.encode(buf),
        }
    }

    fn record_len(&self) -> usize {
        match self {
            MultiReadOp::GetChildren(r) => r.encoded_len(),
            MultiReadOp::GetData(r) => r.encoded_len(),
        }
    }

    fn decode_record<B: Buf>(op: i32, buf: &mut B) -> Result<Self, DecodeError> {
        match OpCode::try_from(op) {
            Ok(OpCode::GetChildren) => Ok(MultiReadOp::GetChildren(Decode::decode(buf)?)),
            Ok(OpCode::GetData) => Ok(MultiReadOp::GetData(Decode::decode(buf)?)),
            _ => Err(DecodeError::InvalidMultiOp {
                op,
                what: "multiRead request",
            }),
        }
    }
}

/// Request body of `multi` (14): write ops applied atomically.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest {
    /// The ops, in order.
    pub ops: Vec<MultiOp>,
}

impl Encode for MultiRequest {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        encode_list(&self.ops, buf);
    }
    fn encoded_len(&self) -> usize {
        list_len(&self.ops)
    }
}

impl Decode for MultiRequest {
    const MIN_LEN: usize = HEADER_LEN;
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        Ok(MultiRequest {
            ops: decode_list(buf)?,
        })
    }
}

/// Request body of `multiRead` (22): reads answered together, each succeeding or failing
/// on its own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiReadRequest {
    /// The ops, in order.
    pub ops: Vec<MultiReadOp>,
}

impl Encode for MultiReadRequest {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        encode_list(&self.ops, buf);
    }
    fn encoded_len(&self) -> usize {
        list_len(&self.ops)
    }
}

impl Decode for MultiReadRequest {
    const MIN_LEN: usize = HEADER_LEN;
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        Ok(MultiReadRequest {
            ops: decode_list(buf)?,
        })
    }
}

/// Encoded size of a [`MultiHeader`].
const HEADER_LEN: usize = 9;

/// One entry of a multi list (an op or a result): written after its [`MultiHeader`] and
/// read back by the header's op type. The list ends with [`MultiHeader::END`].
trait MultiEntry: Sized {
    fn header(&self) -> MultiHeader;
    fn encode_record<B: BufMut>(&self, buf: &mut B);
    fn record_len(&self) -> usize;
    fn decode_record<B: Buf>(op: i32, buf: &mut B) -> Result<Self, DecodeError>;
}

fn encode_list<T: MultiEntry, B: BufMut>(entries: &[T], buf: &mut B) {
    for entry in entries {
        entry.header().encode(buf);
        entry.encode_record(buf);
    }
    MultiHeader::END.encode(buf);
}

fn list_len<T: MultiEntry>(entries: &[T]) -> usize {
    entries
        .iter()
        .map(|entry| HEADER_LEN + entry.record_len())
        .sum::<usize>()
        + HEADER_LEN
}

fn decode_list<T: MultiEntry, B: Buf>(buf: &mut B) -> Result<Vec<T>, DecodeError> {
    let mut entries = Vec::new();
    loop {
        let header = MultiHeader::decode(buf)?;
        if header.done {
            return Ok(entries);
        }
        entries.push(T::decode_record(header.op, buf)?);
    }
}

/// The result of one op in a multi / multiRead response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// Type 1: result of a plain `create`.
    Create(CreateResponse),
    /// Type 15: result of `create2`, `createContainer` or `createTTL`.
    Create2(Create2Response),
    /// Type 2: result of `delete` (no record).
    Delete,
    /// Type 5: result of `setData`.
    SetData(SetDataResponse),
    /// Type 13: result of `check` (no record).
    Check,
    /// Type 8: result of `getChildren` (multiRead).
    GetChildren(GetChildrenResponse),
    /// Type 4: result of `getData` (multiRead).
    GetData(GetDataResponse),
    /// Type -1: the op failed (or, in a failed write multi, was rolled back: code 0 or -2).
    Error(i32),
}

impl MultiResult {
    /// The type written in the result's header.
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiResult::Create(_) => OpCode::Create,
            MultiResult::Create2(_) => OpCode::Create2,
            MultiResult::Delete => OpCode::Delete,
            MultiResult::SetData(_) => OpCode::SetData,
            MultiResult::Check => OpCode::Check,
            MultiResult::GetChildren(_) => OpCode::GetChildren,
            MultiResult::GetData(_) => OpCode::GetData,
            MultiResult::Error(_) => OpCode::Error,
        }
    }

    /// For an error result, its code (`Ok(ErrorCode::Ok)` for rolled-back ops); `None` for
    /// successful results.
    pub fn error_code(&self) -> Option<Result<ErrorCode, UnknownValue>> {
        match self {
            MultiResult::Error(err) => Some(ErrorCode::try_from(*err)),
            _ => None,
        }
    }
}

impl MultiEntry for MultiResult {
    fn header(&self) -> MultiHeader {
        let err = match self {
            MultiResult::Error(err) => *err,
            _ => 0,
        };
        MultiHeader {
            op: self.op_code().into(),
            done: false,
            err,
        }
    }

    fn encode_record<B: BufMut>(&self, buf: &mut B) {
        match self {
            MultiResult::Create(r) => r.encode(buf),
            MultiResult::Create2(r) => r.encode(buf),
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData(r) => r.encode(buf),
            MultiResult::GetChildren(r) => r.encode(buf),
            MultiResult::GetData(r) => r.encode(buf),
            MultiResult::Error(err) => ErrorResponse { err: *err }.encode(buf),
        }
    }

    fn record_len(&self) -> usize {
        match self {
            MultiResult::Create(r) => r.encoded_len(),
            MultiResult::Create2(r) => r.encoded_len(),
            MultiResult::Delete | MultiResult::Check => 0,
            MultiResult::SetData(r) => r.encoded_len(),
            MultiResult::GetChildren(r) => r.encoded_len(),
            MultiResult::GetData(r) => r.encoded_len(),
            MultiResult::Error(_) => 4,
        }
    }

    fn decode_record<B: Buf>(op: i32, buf: &mut B) -> Result<Self, DecodeError> {
        Ok(match OpCode::try_from(op) {
            Ok(OpCode::Create) => MultiResult::Create(Decode::decode(buf)?),
            Ok(OpCode::Create2) => MultiResult::Create2(Decode::decode(buf)?),
            Ok(OpCode::Delete) => MultiResult::Delete,
            Ok(OpCode::SetData) => MultiResult::SetData(Decode::decode(buf)?),
            Ok(OpCode::Check) => MultiResult::Check,
            Ok(OpCode::GetChildren) => MultiResult::GetChildren(Decode::decode(buf)?),
            Ok(OpCode::GetData) => MultiResult::GetData(Decode::decode(buf)?),
            // Like Java, the code is taken from the ErrorResponse, not the header.
            Ok(OpCode::Error) => MultiResult::Error(ErrorResponse::decode(buf)?.err),
            _ => {
                return Err(DecodeError::InvalidMultiOp {
                    op,
                    what: "multi response",
                });
            }
        })
    }
}

/// Response body of `multi` (14) and `multiRead` (22): one result per op.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    /// The results, in op order.
    pub results: Vec<MultiResult>,
}

impl MultiResponse {
    /// The results of a write multi that failed at op `failed` with `err`: error results
    /// everywhere, 0 before `failed`, `err` at it, -2 (RUNTIMEINCONSISTENCY) after it.
    pub fn aborted(op_count: usize, failed: usize, err: ErrorCode) -> Self {
        let results = (0..op_count)
            .map(|i| {
                MultiResult::Error(match i.cmp(&failed) {
                    std::cmp::Ordering::Less => 0,
                    std::cmp::Ordering::Equal => err.into(),
                    std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency.into(),
                })
            })
            .collect();
        MultiResponse { results }
    }

    /// The first error result with a non-zero code, with its index: what the Java client
    /// throws for a failed multi.
    pub fn first_error(&self) -> Option<(usize, i32)> {
        self.results.iter().enumerate().find_map(|(i, r)| match r {
            MultiResult::Error(err) if *err != 0 => Some((i, *err)),
            _ => None,
        })
    }
}

impl Encode for MultiResponse {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        encode_list(&self.results, buf);
    }
    fn encoded_len(&self) -> usize {
        list_len(&self.results)
    }
}

impl Decode for MultiResponse {
    const MIN_LEN: usize = HEADER_LEN;
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        Ok(MultiResponse {
            results: decode_list(buf)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::records::testing::{hex, roundtrip, sample_stat};

    const END_HEX: &str = "ffffffff 01 ffffffff";

    #[test]
    fn empty_multi_is_just_the_end_marker() {
        assert_eq!(&roundtrip(&MultiRequest::default())[..], &hex(END_HEX)[..]);
        assert_eq!(&roundtrip(&MultiResponse::default())[..], &hex(END_HEX)[..]);
    }

    #[test]
    fn multi_request_bytes() {
        let req = MultiRequest {
            ops: vec![
                MultiOp::Check(CheckVersionRequest {
                    path: "/a".into(),
                    version: 1,
                }),
                MultiOp::Delete(DeleteRequest {
                    path: "/a".into(),
                    version: -1,
                }),
            ],
        };
        let expected = hex(&format!(
            "0000000d 00 ffffffff  00000002 2f61 00000001
             00000002 00 ffffffff  00000002 2f61 ffffffff
             {END_HEX}"
        ));
        assert_eq!(&roundtrip(&req)[..], &expected[..]);
    }

    #[test]
    fn multi_response_bytes() {
        let rsp = MultiResponse {
            results: vec![
                MultiResult::Create(CreateResponse { path: "/a".into() }),
                MultiResult::Delete,
                MultiResult::Error(-101),
            ],
        };
        let expected = hex(&format!(
            "00000001 00 00000000  00000002 2f61
             00000002 00 00000000
             ffffffff 00 ffffff9b  ffffff9b
             {END_HEX}"
        ));
        assert_eq!(&roundtrip(&rsp)[..], &expected[..]);
    }

    #[test]
    fn all_op_kinds_roundtrip() {
        let create = CreateRequest {
            path: "/c".into(),
            data: None,
            acl: vec![],
            flags: 0,
        };
        roundtrip(&MultiRequest {
            ops: vec![
                MultiOp::Create(create.clone()),
                MultiOp::Create2(create.clone()),
                MultiOp::CreateContainer(CreateRequest { flags: 4, ..create }),
                MultiOp::CreateTtl(CreateTtlRequest {
                    path: "/t".into(),
                    data: Some(Bytes::new()),
                    acl: vec![],
                    flags: 5,
                    ttl: 1,
                }),
                MultiOp::SetData(SetDataRequest {
                    path: "/s".into(),
                    data: None,
                    version: 2,
                }),
            ],
        });
        roundtrip(&MultiReadRequest {
            ops: vec![
                MultiReadOp::GetChildren(GetChildrenRequest {
                    path: "/".into(),
                    watch: false,
                }),
                MultiReadOp::GetData(GetDataRequest {
                    path: "/d".into(),
                    watch: false,
                }),
            ],
        });
        let stat = sample_stat();
        roundtrip(&MultiResponse {
            results: vec![
                MultiResult::Create2(Create2Response {
                    path: "/c".into(),
                    stat,
                }),
                MultiResult::SetData(SetDataResponse { stat }),
                MultiResult::Check,
                MultiResult::GetChildren(GetChildrenResponse {
                    children: vec!["x".into()],
                }),
                MultiResult::GetData(GetDataResponse { data: None, stat }),
            ],
        });
    }

    #[test]
    fn read_and_write_ops_do_not_mix() {
        let read = MultiReadRequest {
            ops: vec![MultiReadOp::GetData(GetDataRequest {
                path: "/d".into(),
                watch: false,
            })],
        };
        let bytes = read.to_bytes();
        assert_eq!(
            MultiRequest::decode_exact(bytes),
            Err(DecodeError::InvalidMultiOp {
                op: 4,
                what: "multi request"
            })
        );
        let write = MultiRequest {
            ops: vec![MultiOp::Check(CheckVersionRequest {
                path: "/a".into(),
                version: 1,
            })],
        };
        let bytes = write.to_bytes();
        assert_eq!(
            MultiReadRequest::decode_exact(bytes),
            Err(DecodeError::InvalidMultiOp {
                op: 13,
                what: "multiRead request"
            })
        );
    }

    #[test]
    fn unknown_result_type_is_an_error_value() {
        let bytes = hex(&format!("00000063 00 00000000 {END_HEX}"));
        assert_eq!(
            MultiResponse::decode_exact(&bytes[..]),
            Err(DecodeError::InvalidMultiOp {
                op: 99,
                what: "multi response"
            })
        );
    }

    #[test]
    fn aborted_multi() {
        let rsp = MultiResponse::aborted(3, 1, ErrorCode::BadVersion);
        assert_eq!(
            rsp.results,
            vec![
                MultiResult::Error(0),
                MultiResult::Error(-103),
                MultiResult::Error(-2)
            ]
        );
        assert_eq!(rsp.first_error(), Some((1, -103)));
        assert_eq!(rsp.results[0].error_code(), Some(Ok(ErrorCode::Ok)));
        roundtrip(&rsp);
    }

    #[test]
    fn any_done_header_ends_the_list() {
        // Java stops at done = true whatever the type and err.
        let bytes = hex("00000005 02 00000007");
        assert_eq!(
            MultiResponse::decode_exact(&bytes[..]),
            Ok(MultiResponse::default())
        );
    }
}
