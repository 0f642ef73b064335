//! The Apache ZooKeeper client wire protocol: jute records, opcodes, error codes, znode paths
//! and framing — bytes in, bytes out. No I/O, no clock, no randomness; the client and the
//! server build on it and tests use it to read and write raw traffic.
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | [`codec`] | the [`Encode`] / [`Decode`] traits, jute primitives (int, long, bool, buffer, ustring, vector, nulls), the [`DecodeError`] type and size limits |
//! | [`frame`] | the 4-byte length prefix: sans-io [`frame::check`] / [`frame::parse`], [`frame::encode_frame`], and the `tokio_util` [`frame::FrameCodec`] (feature `codec`) |
//! | [`op_code`] | [`OpCode`]: every request type number |
//! | [`error_code`] | [`ErrorCode`]: every `KeeperException` code |
//! | [`types`] | small enums and flags: [`EventType`], [`KeeperState`], [`WatcherType`], [`AddWatchMode`], [`CreateMode`], [`Perms`] |
//! | [`path`] | znode path validation (Java's rules) and [`path::Chroot`] |
//! | [`quorum`] | server-to-server formats: quorum packets and their data, election messages and notifications, transactions in proposals |
//! | [`records`] | the jute records, one file per family (handshake, headers, stat, ACL, data, children, multi, watches, auth) |
//! | [`request`] | [`Request`]: a client→server body by opcode, and [`decode_request_frame`] |
//! | [`response`] | [`Response`]: a server→client body by the answered opcode, and [`decode_reply_frame`]; its docs describe how to decode a whole conversation |
//!
//! Two private macros (`macros.rs`) generate the record structs and the numeric enums.
//!
//! # Reading and writing a request
//!
//! ```
//! use bytes::BytesMut;
//! use zk_proto::frame::{self, DEFAULT_MAX_FRAME_LEN};
//! use zk_proto::records::{CreateRequest, RequestHeader, OPEN_ACL_UNSAFE};
//! use zk_proto::{decode_request_frame, CreateMode, Request};
//!
//! let mode = CreateMode::Ephemeral;
//! let request = Request::Create2(CreateRequest {
//!     path: "/workers/w1".into(),
//!     data: Some("busy".into()),
//!     acl: OPEN_ACL_UNSAFE.clone(),
//!     flags: mode.into(),
//! });
//! assert_eq!(request.op_code(), mode.op_code(true));
//!
//! // Client side: header + body, length-prefixed.
//! let mut wire = BytesMut::new();
//! let header = RequestHeader::new(1, request.op_code());
//! frame::encode_frame(&mut wire, DEFAULT_MAX_FRAME_LEN, &(&header, &request))?;
//!
//! // Server side: split the frame off, decode header and body.
//! let payload = frame::parse(&mut wire, DEFAULT_MAX_FRAME_LEN)?.unwrap_or_default();
//! let (h, r) = decode_request_frame(payload)?;
//! assert_eq!((h, r), (header, request));
//! # Ok::<(), zk_proto::DecodeError>(())
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

#[macro_use]
mod macros;

pub mod codec;
pub mod error_code;
pub mod frame;
pub mod op_code;
pub mod path;
pub mod quorum;
pub mod records;
pub mod request;
pub mod response;
pub mod types;

#[cfg(test)]
mod proptests;

pub use codec::{Decode, DecodeError, Encode, UnknownValue};
pub use error_code::ErrorCode;
pub use op_code::OpCode;
pub use path::{Chroot, PathError};
pub use request::{Request, decode_request_frame};
pub use response::{Response, decode_reply_frame};
pub use types::{AddWatchMode, CreateMode, EventType, KeeperState, Perms, WatcherType};
