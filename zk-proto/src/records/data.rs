//! Records for single-znode operations: create (all four opcodes), delete, exists, getData,
//! setData, check, sync, getAllChildrenNumber, getEphemerals, deleteContainer and reconfig,
//! plus [`ErrorResponse`] (the `addWatch` success body and the multi error result).

use bytes::{Buf, BufMut, Bytes};

use crate::codec::{Decode, DecodeError, Encode, UnknownValue, lossy_utf8};
use crate::records::acl::Acl;
use crate::records::stat::Stat;
use crate::types::CreateMode;

jute_record! {
    /// Request body of `create` (1), `create2` (15) and `createContainer` (19).
    pub struct CreateRequest {
        /// Path of the new znode (for sequential modes, the prefix of the name).
        pub path: String,
        /// Initial data; `None` is a null buffer (distinct from empty).
        pub data: Option<Bytes>,
        /// The new znode's ACL.
        pub acl: Vec<Acl>,
        /// The raw create flags; see [`CreateRequest::create_mode`].
        pub flags: i32,
    }
}

impl CreateRequest {
    /// The create mode, if `flags` is a known value.
    pub fn create_mode(&self) -> Result<CreateMode, UnknownValue> {
        CreateMode::try_from(self.flags)
    }
}

jute_record! {
    /// Request body of `createTTL` (21).
    pub struct CreateTtlRequest {
        /// Path of the new znode.
        pub path: String,
        /// Initial data; `None` is a null buffer.
        pub data: Option<Bytes>,
        /// The new znode's ACL.
        pub acl: Vec<Acl>,
        /// The raw create flags (5 or 6 for TTL modes).
        pub flags: i32,
        /// Time to live, ms (1 ..= [`MAX_TTL_MS`](crate::types::MAX_TTL_MS)).
        pub ttl: i64,
    }
}

impl CreateTtlRequest {
    /// The create mode, if `flags` is a known value.
    pub fn create_mode(&self) -> Result<CreateMode, UnknownValue> {
        CreateMode::try_from(self.flags)
    }
}

jute_record! {
    /// Response body of `create` (1): the actual path (with any sequence suffix).
    pub struct CreateResponse {
        /// Path of the created znode.
        pub path: String,
    }
}

jute_record! {
    /// Response body of `create2`, `createContainer` and `createTTL`.
    pub struct Create2Response {
        /// Path of the created znode.
        pub path: String,
        /// Its stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// Request body of `delete` (2).
    pub struct DeleteRequest {
        /// Znode path.
        pub path: String,
        /// Expected data version, or -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// Request body of `exists` (3).
    pub struct ExistsRequest {
        /// Znode path.
        pub path: String,
        /// Leave a watch (fires on create, delete or data change).
        pub watch: bool,
    }
}

jute_record! {
    /// Response body of `exists` (3). A missing node is reply error -101 with no body.
    pub struct ExistsResponse {
        /// The znode's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// Request body of `getData` (4).
    pub struct GetDataRequest {
        /// Znode path.
        pub path: String,
        /// Leave a data watch.
        pub watch: bool,
    }
}

jute_record! {
    /// Response body of `getData` (4) and `reconfig` (16).
    pub struct GetDataResponse {
        /// The data; `None` if the znode was created with null data.
        pub data: Option<Bytes>,
        /// The znode's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// Request body of `setData` (5).
    pub struct SetDataRequest {
        /// Znode path.
        pub path: String,
        /// The new data; `None` is a null buffer.
        pub data: Option<Bytes>,
        /// Expected data version, or -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// Response body of `setData` (5).
    pub struct SetDataResponse {
        /// The znode's stat after the write.
        pub stat: Stat,
    }
}

jute_record! {
    /// Request body of `check` (13), only meaningful inside a multi.
    pub struct CheckVersionRequest {
        /// Znode path.
        pub path: String,
        /// Required data version, or -1 for "exists".
        pub version: i32,
    }
}

jute_record! {
    /// Request body of `sync` (9).
    pub struct SyncRequest {
        /// Znode path.
        pub path: String,
    }
}

jute_record! {
    /// Response body of `sync` (9).
    pub struct SyncResponse {
        /// The path from the request.
        pub path: String,
    }
}

jute_record! {
    /// Request body of `getAllChildrenNumber` (104).
    pub struct GetAllChildrenNumberRequest {
        /// Znode path.
        pub path: String,
    }
}

jute_record! {
    /// Response body of `getAllChildrenNumber` (104).
    pub struct GetAllChildrenNumberResponse {
        /// Number of descendants.
        pub total_number: i32,
    }
}

jute_record! {
    /// Request body of `getEphemerals` (103).
    pub struct GetEphemeralsRequest {
        /// Only ephemerals whose path starts with this prefix (`/` for all).
        pub prefix_path: String,
    }
}

jute_record! {
    /// Response body of `getEphemerals` (103).
    pub struct GetEphemeralsResponse {
        /// Full paths of the session's ephemeral znodes.
        pub ephemerals: Vec<String>,
    }
}

jute_record! {
    /// Request body of `reconfig` (16). Unused arguments are sent as null strings.
    pub struct ReconfigRequest {
        /// Servers to add (comma-separated), or `None`.
        pub joining_servers: Option<String>,
        /// Server ids to remove (comma-separated), or `None`.
        pub leaving_servers: Option<String>,
        /// The full new membership (non-incremental reconfig), or `None`.
        pub new_members: Option<String>,
        /// Expected current config version, or -1.
        pub cur_config_id: i64,
    }
}

jute_record! {
    /// A bare result code: the success body of `addWatch` (always 0) and the record after an
    /// error `MultiHeader`.
    pub struct ErrorResponse {
        /// The result code.
        pub err: i32,
    }
}

/// Request body of `deleteContainer` (20), which the Java server only builds internally (its
/// container reaper).
///
/// Unlike every other record it is **not** jute: the body is the path's UTF-8 bytes with no
/// length prefix (Java: `ByteBuffer.wrap(path.getBytes())`, read back with
/// `new String(request.array())`). Decoding therefore consumes the whole buffer; invalid
/// UTF-8 becomes U+FFFD.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteContainerRequest {
    /// Path of the container to delete.
    pub path: String,
}

impl Encode for DeleteContainerRequest {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_slice(self.path.as_bytes());
    }
    fn encoded_len(&self) -> usize {
        self.path.len()
    }
}

impl Decode for DeleteContainerRequest {
    const MIN_LEN: usize = 0;
    /// Consumes every remaining byte of `buf`.
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        let mut bytes = vec![0; buf.remaining()];
        buf.copy_to_slice(&mut bytes);
        Ok(DeleteContainerRequest {
            path: lossy_utf8(bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::acl::OPEN_ACL_UNSAFE;
    use crate::records::testing::{hex, roundtrip, roundtrip_no_cuts, sample_stat};

    #[test]
    fn create_request_bytes() {
        let req = CreateRequest {
            path: "/a".into(),
            data: Some(Bytes::from_static(b"hi")),
            acl: OPEN_ACL_UNSAFE.clone(),
            flags: 3,
        };
        let expected = hex("00000002 2f61 00000002 6869
             00000001 0000001f 00000005 776f726c64 00000006 616e796f6e65
             00000003");
        assert_eq!(&roundtrip(&req)[..], &expected[..]);
        assert_eq!(req.create_mode(), Ok(CreateMode::EphemeralSequential));
    }

    #[test]
    fn null_data_is_kept_distinct_from_empty() {
        let null = SetDataRequest {
            path: "/a".into(),
            data: None,
            version: -1,
        };
        let empty = SetDataRequest {
            data: Some(Bytes::new()),
            ..null.clone()
        };
        assert_eq!(&roundtrip(&null)[6..10], &[0xff; 4]);
        assert_eq!(&roundtrip(&empty)[6..10], &[0; 4]);
    }

    #[test]
    fn records_roundtrip() {
        let stat = sample_stat();
        roundtrip(&CreateTtlRequest {
            path: "/t".into(),
            data: None,
            acl: vec![],
            flags: 5,
            ttl: 60_000,
        });
        roundtrip(&CreateResponse {
            path: "/q/x0000000001".into(),
        });
        roundtrip(&Create2Response {
            path: "/a".into(),
            stat,
        });
        roundtrip(&DeleteRequest {
            path: "/a".into(),
            version: 3,
        });
        roundtrip(&ExistsRequest {
            path: "/a".into(),
            watch: true,
        });
        roundtrip(&ExistsResponse { stat });
        roundtrip(&GetDataRequest {
            path: "/a".into(),
            watch: false,
        });
        roundtrip(&GetDataResponse {
            data: Some(Bytes::from_static(b"xyz")),
            stat,
        });
        roundtrip(&SetDataResponse { stat });
        roundtrip(&CheckVersionRequest {
            path: "/a".into(),
            version: 0,
        });
        roundtrip(&SyncRequest { path: "/".into() });
        roundtrip(&SyncResponse { path: "/".into() });
        roundtrip(&GetAllChildrenNumberRequest { path: "/".into() });
        roundtrip(&GetAllChildrenNumberResponse { total_number: 42 });
        roundtrip(&GetEphemeralsRequest {
            prefix_path: "/".into(),
        });
        roundtrip(&GetEphemeralsResponse {
            ephemerals: vec!["/e1".into(), "/a/e2".into()],
        });
        roundtrip(&ReconfigRequest {
            joining_servers: None,
            leaving_servers: Some("3".into()),
            new_members: None,
            cur_config_id: -1,
        });
        roundtrip(&ErrorResponse { err: 0 });
    }

    #[test]
    fn delete_container_is_raw_path_bytes() {
        let req = DeleteContainerRequest { path: "/c".into() };
        assert_eq!(&roundtrip_no_cuts(&req)[..], b"/c");
    }
}
