//! Jute records, one file per family.
//!
//! Field names and order follow `zookeeper.jute`; Rust names are snake_case
//! (`timeOut` → `time_out`). Fields that hold a code (opcode, error code, create flags, event
//! type, ...) keep the **raw `i32`** so decoding never fails on an unknown number and
//! re-encoding reproduces the input; each such record has a typed accessor that does the
//! checked conversion.
//!
//! | file | records |
//! |---|---|
//! | [`connect`] | `ConnectRequest`, `ConnectResponse` (handshake, optional `readOnly` byte) |
//! | [`header`] | `RequestHeader`, `ReplyHeader`, the special xids |
//! | [`stat`] | `Stat`, `StatPersisted` |
//! | [`acl`] | `Id`, `Acl`, the predefined ACL lists, `GetAclRequest/Response`, `SetAclRequest/Response` |
//! | [`data`] | create, delete, exists, getData, setData, check, sync, reconfig, ... and `ErrorResponse` |
//! | [`children`] | `GetChildrenRequest/Response`, `GetChildren2Request/Response` |
//! | [`multi`] | `MultiHeader`, multi / multiRead requests and the multi response |
//! | [`watch`] | `WatcherEvent`, `SetWatches`, `SetWatches2`, `AddWatchRequest`, check/remove watches |
//! | [`auth`] | `AuthPacket`, SASL records, `WhoAmIResponse` / `ClientInfo` |

pub mod acl;
pub mod auth;
pub mod children;
pub mod connect;
pub mod data;
pub mod header;
pub mod multi;
pub mod stat;
pub mod watch;

pub use acl::*;
pub use auth::*;
pub use children::*;
pub use connect::*;
pub use data::*;
pub use header::*;
pub use multi::*;
pub use stat::*;
pub use watch::*;

#[cfg(test)]
pub(crate) mod testing {
    //! Round-trip and truncation checks shared by the record tests.

    use bytes::Bytes;

    use crate::codec::{Decode, DecodeError, Encode};

    /// Encodes `value`, checks `encoded_len`, decodes it back, and checks that every strict
    /// prefix of the encoding is reported as incomplete. Returns the encoding.
    pub(crate) fn roundtrip<T>(value: &T) -> Bytes
    where
        T: Encode + Decode + PartialEq + std::fmt::Debug,
    {
        let bytes = roundtrip_no_cuts(value);
        for cut in 0..bytes.len() {
            let result = T::decode(&mut &bytes[..cut]);
            assert!(
                matches!(result, Err(DecodeError::UnexpectedEof { .. })),
                "prefix of {cut}/{} bytes of {value:?} gave {result:?}",
                bytes.len()
            );
        }
        bytes
    }

    /// Like [`roundtrip`] without the truncation check (for records whose tail is optional).
    pub(crate) fn roundtrip_no_cuts<T>(value: &T) -> Bytes
    where
        T: Encode + Decode + PartialEq + std::fmt::Debug,
    {
        let bytes = value.to_bytes();
        assert_eq!(bytes.len(), value.encoded_len(), "encoded_len of {value:?}");
        assert_eq!(T::decode_exact(bytes.clone()).as_ref(), Ok(value));
        bytes
    }

    /// A Stat with distinct, recognisable values.
    pub(crate) fn sample_stat() -> crate::records::Stat {
        crate::records::Stat {
            czxid: 0x1_0000_0002,
            mzxid: 0x1_0000_0003,
            ctime: 1_700_000_000_000,
            mtime: 1_700_000_000_123,
            version: 1,
            cversion: 2,
            aversion: 0,
            ephemeral_owner: 0x0100_0123_4567_0000,
            data_length: 5,
            num_children: 0,
            pzxid: 0x1_0000_0002,
        }
    }

    /// Parses hex with optional whitespace.
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let clean: String = s.split_whitespace().collect();
        match hex::decode(clean) {
            Ok(bytes) => bytes,
            Err(e) => panic!("bad hex in test: {e}"),
        }
    }
}
