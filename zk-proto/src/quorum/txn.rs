//! Transactions as they travel in PROPOSAL, INFORM and INFORMANDACTIVATE data (and as Apache
//! writes them in its txn log): a [`TxnHeader`], the txn record chosen by the header's type,
//! and an optional [`TxnDigest`] — Apache 3.8's `Util.marshallTxnEntry` /
//! `SerializeUtils.deserializeTxn`.
//!
//! | header type (opcode) | record |
//! |---|---|
//! | createSession (-10) | [`CreateSessionTxn`] |
//! | closeSession (-11) | [`CloseSessionTxn`] (3.6+, `zookeeper.closeSessionTxn.enabled`, default on), or nothing |
//! | create (1), create2 (15) | [`CreateTxn`] |
//! | createTTL (21) | [`CreateTtlTxn`] |
//! | createContainer (19) | [`CreateContainerTxn`] |
//! | delete (2), deleteContainer (20) | [`DeleteTxn`] |
//! | setData (5), reconfig (16) | [`SetDataTxn`] |
//! | setACL (7) | [`SetAclTxn`] |
//! | check (13) | [`CheckVersionTxn`] (only inside a multi; Apache refuses it at top level, this crate accepts it) |
//! | error (-1) | [`ErrorTxn`] |
//! | multi (14) | [`MultiTxn`]: a vector of [`Txn`] `{type, data}`, `data` = the sub-record's bytes (no header, no digest) |
//!
//! The digest (`zookeeper.digest.enabled`, default on in 3.8) is the last 12 bytes when
//! present. The pre-3.3 `CreateTxnV0` form (no `parentCVersion`) is not accepted.

use bytes::{Buf, BufMut, Bytes};

use crate::UnknownValue;
use crate::codec::{Decode, DecodeError, Encode};
use crate::op_code::OpCode;
use crate::records::Acl;

use super::QuorumError;

jute_record! {
    /// The header of every transaction.
    #[derive(Copy, Hash)]
    pub struct TxnHeader {
        /// The session that issued the request (0 for server-internal ones).
        pub client_id: i64,
        /// The request's xid.
        pub cxid: i32,
        /// The transaction's zxid.
        pub zxid: i64,
        /// Leader wall-clock time in ms when the txn was prepared.
        pub time: i64,
        /// The raw opcode (jute field `type`), which decides the record; see
        /// [`TxnHeader::op_code`].
        pub ty: i32,
    }
}

impl TxnHeader {
    /// The opcode, if known.
    pub fn op_code(&self) -> Result<OpCode, UnknownValue> {
        OpCode::try_from(self.ty)
    }
}

jute_record! {
    /// create / create2: the final path (sequence suffix included) and fixed-up ACL.
    pub struct CreateTxn {
        /// The node's path.
        pub path: String,
        /// Its data (`None` = null).
        pub data: Option<Bytes>,
        /// Its ACL.
        pub acl: Vec<Acl>,
        /// Whether the node is ephemeral (owned by the header's session).
        pub ephemeral: bool,
        /// The parent's cversion after this create.
        pub parent_c_version: i32,
    }
}

jute_record! {
    /// createTTL.
    pub struct CreateTtlTxn {
        /// The node's path.
        pub path: String,
        /// Its data (`None` = null).
        pub data: Option<Bytes>,
        /// Its ACL.
        pub acl: Vec<Acl>,
        /// The parent's cversion after this create.
        pub parent_c_version: i32,
        /// The TTL in ms.
        pub ttl: i64,
    }
}

jute_record! {
    /// createContainer.
    pub struct CreateContainerTxn {
        /// The node's path.
        pub path: String,
        /// Its data (`None` = null).
        pub data: Option<Bytes>,
        /// Its ACL.
        pub acl: Vec<Acl>,
        /// The parent's cversion after this create.
        pub parent_c_version: i32,
    }
}

jute_record! {
    /// delete / deleteContainer.
    pub struct DeleteTxn {
        /// The node's path.
        pub path: String,
    }
}

jute_record! {
    /// setData (and reconfig, whose data is the new config text).
    pub struct SetDataTxn {
        /// The node's path.
        pub path: String,
        /// The new data (`None` = null).
        pub data: Option<Bytes>,
        /// The node's version after the change.
        pub version: i32,
    }
}

jute_record! {
    /// setACL.
    pub struct SetAclTxn {
        /// The node's path.
        pub path: String,
        /// The new ACL.
        pub acl: Vec<Acl>,
        /// The node's ACL version after the change.
        pub version: i32,
    }
}

jute_record! {
    /// A passed version check inside a multi.
    pub struct CheckVersionTxn {
        /// The node's path.
        pub path: String,
        /// The version checked.
        pub version: i32,
    }
}

jute_record! {
    /// createSession: the negotiated timeout.
    pub struct CreateSessionTxn {
        /// Session timeout in ms.
        pub time_out: i32,
    }
}

jute_record! {
    /// closeSession: the session's ephemeral nodes at prep time.
    pub struct CloseSessionTxn {
        /// Paths to delete.
        pub paths2_delete: Vec<String>,
    }
}

jute_record! {
    /// A request that failed in prep (also every entry of a failed multi).
    pub struct ErrorTxn {
        /// The raw error code.
        pub err: i32,
    }
}

jute_record! {
    /// One sub-transaction of a multi: its type and the bytes of its record.
    pub struct Txn {
        /// The raw opcode of the sub-record.
        pub ty: i32,
        /// The sub-record's encoding (see [`Txn::record`]).
        pub data: Bytes,
    }
}

jute_record! {
    /// multi: the sub-transactions in order.
    pub struct MultiTxn {
        /// The sub-transactions.
        pub txns: Vec<Txn>,
    }
}

jute_record! {
    /// The data-tree digest after the txn (3.6+).
    #[derive(Copy, Hash)]
    pub struct TxnDigest {
        /// Digest format version (2 in 3.8).
        pub version: i32,
        /// The digest.
        pub tree_digest: i64,
    }
}

impl Txn {
    /// Wraps a record (its opcode and encoding).
    pub fn new(ty: i32, record: &TxnRecord) -> Self {
        Txn {
            ty,
            data: record.to_bytes(),
        }
    }

    /// Decodes the sub-record by the sub-type; the bytes must be used up exactly.
    pub fn record(&self) -> Result<TxnRecord, QuorumError> {
        let mut d = &self.data[..];
        let record = TxnRecord::decode_for(self.ty, &mut d)?;
        match d.remaining() {
            0 => Ok(record),
            n => Err(DecodeError::TrailingBytes(n).into()),
        }
    }
}

/// A txn record, by the opcode in its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnRecord {
    /// createSession.
    CreateSession(CreateSessionTxn),
    /// closeSession; `None` when no record was written (closeSessionTxn disabled, or
    /// before 3.6).
    CloseSession(Option<CloseSessionTxn>),
    /// create / create2.
    Create(CreateTxn),
    /// createTTL.
    CreateTtl(CreateTtlTxn),
    /// createContainer.
    CreateContainer(CreateContainerTxn),
    /// delete / deleteContainer.
    Delete(DeleteTxn),
    /// setData / reconfig.
    SetData(SetDataTxn),
    /// setACL.
    SetAcl(SetAclTxn),
    /// check (inside a multi).
    CheckVersion(CheckVersionTxn),
    /// error.
    Error(ErrorTxn),
    /// multi.
    Multi(MultiTxn),
}

impl TxnRecord {
    /// Decodes the record for opcode `ty` from the front of `buf`.
    ///
    /// `closeSession` always reads a [`CloseSessionTxn`] here; [`TxnEntry::from_bytes`]
    /// handles the record-less form.
    pub fn decode_for<B: Buf>(ty: i32, buf: &mut B) -> Result<TxnRecord, QuorumError> {
        let op = OpCode::try_from(ty).map_err(|_| QuorumError::TxnType(ty))?;
        Ok(match op {
            OpCode::CreateSession => TxnRecord::CreateSession(Decode::decode(buf)?),
            OpCode::CloseSession => TxnRecord::CloseSession(Some(Decode::decode(buf)?)),
            OpCode::Create | OpCode::Create2 => TxnRecord::Create(Decode::decode(buf)?),
            OpCode::CreateTtl => TxnRecord::CreateTtl(Decode::decode(buf)?),
            OpCode::CreateContainer => TxnRecord::CreateContainer(Decode::decode(buf)?),
            OpCode::Delete | OpCode::DeleteContainer => TxnRecord::Delete(Decode::decode(buf)?),
            OpCode::SetData | OpCode::Reconfig => TxnRecord::SetData(Decode::decode(buf)?),
            OpCode::SetAcl => TxnRecord::SetAcl(Decode::decode(buf)?),
            OpCode::Check => TxnRecord::CheckVersion(Decode::decode(buf)?),
            OpCode::Error => TxnRecord::Error(Decode::decode(buf)?),
            OpCode::Multi => TxnRecord::Multi(Decode::decode(buf)?),
            _ => return Err(QuorumError::TxnType(ty)),
        })
    }
}

impl Encode for TxnRecord {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        match self {
            TxnRecord::CreateSession(r) => r.encode(buf),
            TxnRecord::CloseSession(r) => {
                if let Some(r) = r {
                    r.encode(buf);
                }
            }
            TxnRecord::Create(r) => r.encode(buf),
            TxnRecord::CreateTtl(r) => r.encode(buf),
            TxnRecord::CreateContainer(r) => r.encode(buf),
            TxnRecord::Delete(r) => r.encode(buf),
            TxnRecord::SetData(r) => r.encode(buf),
            TxnRecord::SetAcl(r) => r.encode(buf),
            TxnRecord::CheckVersion(r) => r.encode(buf),
            TxnRecord::Error(r) => r.encode(buf),
            TxnRecord::Multi(r) => r.encode(buf),
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            TxnRecord::CreateSession(r) => r.encoded_len(),
            TxnRecord::CloseSession(r) => r.as_ref().map_or(0, Encode::encoded_len),
            TxnRecord::Create(r) => r.encoded_len(),
            TxnRecord::CreateTtl(r) => r.encoded_len(),
            TxnRecord::CreateContainer(r) => r.encoded_len(),
            TxnRecord::Delete(r) => r.encoded_len(),
            TxnRecord::SetData(r) => r.encoded_len(),
            TxnRecord::SetAcl(r) => r.encoded_len(),
            TxnRecord::CheckVersion(r) => r.encoded_len(),
            TxnRecord::Error(r) => r.encoded_len(),
            TxnRecord::Multi(r) => r.encoded_len(),
        }
    }
}

/// Size of an encoded [`TxnDigest`].
const DIGEST_LEN: usize = 12;

/// A whole transaction: the data of PROPOSAL and INFORM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnEntry {
    /// The header.
    pub header: TxnHeader,
    /// The record for `header.ty`.
    pub record: TxnRecord,
    /// The digest, when the leader has digests enabled (Apache 3.8 default).
    pub digest: Option<TxnDigest>,
}

impl TxnEntry {
    /// Decodes header, record and optional digest; `bytes` must be used up exactly.
    ///
    /// After the record, 0 remaining bytes = no digest, 12 = a digest, anything else is
    /// [`QuorumError::TxnTrailing`]. A closeSession record is tried first (as Apache does
    /// when closeSessionTxn is enabled); if that does not leave 0 or 12 bytes, the entry is
    /// read as a record-less closeSession. (A record-less closeSession followed by a digest
    /// whose bytes also parse as a `CloseSessionTxn` is ambiguous; Apache 3.8 resolves it
    /// the same way, and writes the record by default anyway.)
    pub fn from_bytes(bytes: &[u8]) -> Result<TxnEntry, QuorumError> {
        let mut buf = bytes;
        let header = TxnHeader::decode(&mut buf)?;
        let after_header = buf;
        let record = match TxnRecord::decode_for(header.ty, &mut buf) {
            Ok(record) => record,
            Err(_) if header.ty == i32::from(OpCode::CloseSession) => {
                buf = after_header;
                TxnRecord::CloseSession(None)
            }
            Err(e) => return Err(e),
        };
        let (record, mut buf) = match (record, buf.remaining()) {
            (record, 0 | DIGEST_LEN) => (record, buf),
            (TxnRecord::CloseSession(_), _) if after_header.remaining() == DIGEST_LEN => {
                (TxnRecord::CloseSession(None), after_header)
            }
            (_, n) => return Err(QuorumError::TxnTrailing(n)),
        };
        let digest = if buf.has_remaining() {
            Some(TxnDigest::decode(&mut buf)?)
        } else {
            None
        };
        Ok(TxnEntry {
            header,
            record,
            digest,
        })
    }
}

impl Encode for TxnEntry {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        self.header.encode(buf);
        self.record.encode(buf);
        if let Some(d) = &self.digest {
            d.encode(buf);
        }
    }

    fn encoded_len(&self) -> usize {
        self.header.encoded_len()
            + self.record.encoded_len()
            + self.digest.as_ref().map_or(0, Encode::encoded_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::OPEN_ACL_UNSAFE;
    use crate::records::testing::{hex, roundtrip};

    fn header(op: OpCode) -> TxnHeader {
        TxnHeader {
            client_id: 0x1000_0000_0000_0001,
            cxid: 4,
            zxid: 0x1_0000_0003,
            time: 1_700_000_000_000,
            ty: op.into(),
        }
    }

    fn entry_roundtrip(entry: &TxnEntry) -> Bytes {
        let bytes = entry.to_bytes();
        assert_eq!(bytes.len(), entry.encoded_len());
        assert_eq!(TxnEntry::from_bytes(&bytes).as_ref(), Ok(entry));
        bytes
    }

    #[test]
    fn records_roundtrip() {
        roundtrip(&header(OpCode::Create));
        roundtrip(&CreateTxn {
            path: "/a".into(),
            data: None,
            acl: OPEN_ACL_UNSAFE.clone(),
            ephemeral: true,
            parent_c_version: 3,
        });
        roundtrip(&CreateTtlTxn {
            path: "/t".into(),
            data: Some(Bytes::new()),
            acl: OPEN_ACL_UNSAFE.clone(),
            parent_c_version: 1,
            ttl: 60_000,
        });
        roundtrip(&CloseSessionTxn {
            paths2_delete: vec!["/e".into()],
        });
        roundtrip(&TxnDigest {
            version: 2,
            tree_digest: -5,
        });
    }

    #[test]
    fn create_entry_bytes() {
        let entry = TxnEntry {
            header: header(OpCode::Create),
            record: TxnRecord::Create(CreateTxn {
                path: "/a".into(),
                data: Some(Bytes::from_static(b"x")),
                acl: OPEN_ACL_UNSAFE.clone(),
                ephemeral: false,
                parent_c_version: 1,
            }),
            digest: Some(TxnDigest {
                version: 2,
                tree_digest: 0x1234,
            }),
        };
        let bytes = entry_roundtrip(&entry);
        let expected = hex(
            "1000000000000001 00000004 0000000100000003 0000018bcfe56800 00000001
             00000002 2f61 00000001 78
             00000001 0000001f 00000005 776f726c64 00000006 616e796f6e65
             00 00000001
             00000002 0000000000001234",
        );
        assert_eq!(&bytes[..], &expected[..]);
        // Without digest.
        entry_roundtrip(&TxnEntry {
            digest: None,
            ..entry
        });
    }

    #[test]
    fn close_session_with_and_without_record() {
        let digest = Some(TxnDigest {
            version: 2,
            tree_digest: 7,
        });
        for record in [
            None,
            Some(CloseSessionTxn::default()),
            Some(CloseSessionTxn {
                paths2_delete: vec!["/eph".into()],
            }),
        ] {
            for digest in [None, digest] {
                entry_roundtrip(&TxnEntry {
                    header: header(OpCode::CloseSession),
                    record: TxnRecord::CloseSession(record.clone()),
                    digest,
                });
            }
        }
    }

    #[test]
    fn multi_and_errors() {
        let sub = TxnRecord::Delete(DeleteTxn { path: "/d".into() });
        let err = TxnRecord::Error(ErrorTxn { err: -101 });
        let multi = MultiTxn {
            txns: vec![
                Txn::new(OpCode::Delete.into(), &sub),
                Txn::new(OpCode::Error.into(), &err),
            ],
        };
        assert_eq!(multi.txns[0].record(), Ok(sub));
        assert_eq!(multi.txns[1].record(), Ok(err));
        entry_roundtrip(&TxnEntry {
            header: header(OpCode::Multi),
            record: TxnRecord::Multi(multi),
            digest: None,
        });
        // Unknown / record-less types.
        let mut bad = header(OpCode::GetData).to_bytes().to_vec();
        bad.extend_from_slice(&[0; 4]);
        assert_eq!(TxnEntry::from_bytes(&bad), Err(QuorumError::TxnType(4)));
        // Bytes after the record that are not a digest.
        let mut extra = TxnEntry {
            header: header(OpCode::Delete),
            record: TxnRecord::Delete(DeleteTxn { path: "/d".into() }),
            digest: None,
        }
        .to_bytes()
        .to_vec();
        extra.push(0);
        assert_eq!(
            TxnEntry::from_bytes(&extra),
            Err(QuorumError::TxnTrailing(1))
        );
    }
}
