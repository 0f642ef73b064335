//! Transactions: what the prep stage produces, the log stores and the apply stage executes.
//!
//! They mirror Apache's `TxnHeader` + txn records (`CreateTxn`, `DeleteTxn`, `SetDataTxn`,
//! `SetACLTxn`, `CheckVersionTxn`, `CreateSessionTxn`, `CloseSessionTxn`, `ErrorTxn`,
//! `MultiTxn`). A transaction carries every decision already made (final path with its
//! sequence suffix, fixed-up ACL, ephemeral owner, new parent create counter, time), so
//! applying it is deterministic: every replica that applies the same log reaches the same
//! tree.

use bytes::{Buf, BufMut, Bytes};
use zk_proto::records::Acl;
use zk_proto::{Decode, DecodeError, Encode, ErrorCode, OpCode, UnknownValue};

/// Who sent a transaction and when (Apache's `TxnHeader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnHeader {
    /// The session the request came from (0 for the server itself, e.g. the reaper).
    pub session_id: i64,
    /// The request's xid.
    pub cxid: i32,
    /// The transaction id.
    pub zxid: i64,
    /// Wall-clock ms at prep time (ctime/mtime of the changes).
    pub time: i64,
    /// The request's opcode (decides the shape of the reply).
    pub op: OpCode,
}

/// What kind of node a create makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A persistent node.
    Persistent,
    /// An ephemeral node owned by the session.
    Ephemeral(i64),
    /// A container node.
    Container,
    /// A TTL node with its TTL in ms.
    Ttl(i64),
}

/// Stored ephemeralOwner of container nodes.
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// Top byte of the stored ephemeralOwner of TTL nodes.
const TTL_MARK: i64 = 0xFF00_0000_0000_0000_u64 as i64;

impl NodeKind {
    /// The stored `ephemeralOwner` (Apache's `EphemeralType` encoding).
    pub fn stored_owner(self) -> i64 {
        match self {
            NodeKind::Persistent => 0,
            NodeKind::Ephemeral(session) => session,
            NodeKind::Container => CONTAINER_OWNER,
            NodeKind::Ttl(ttl) => TTL_MARK | (ttl & zk_proto::types::MAX_TTL_MS),
        }
    }

    /// Decodes a stored `ephemeralOwner` (extended types enabled).
    pub fn from_stored_owner(owner: i64) -> NodeKind {
        if owner == 0 {
            NodeKind::Persistent
        } else if owner == CONTAINER_OWNER {
            NodeKind::Container
        } else if owner & TTL_MARK == TTL_MARK {
            NodeKind::Ttl(owner & zk_proto::types::MAX_TTL_MS)
        } else {
            NodeKind::Ephemeral(owner)
        }
    }

    /// The `ephemeralOwner` clients see: 0 for containers and TTL nodes.
    pub fn client_owner(self) -> i64 {
        match self {
            NodeKind::Ephemeral(session) => session,
            _ => 0,
        }
    }
}

/// The body of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnBody {
    /// A new session with its negotiated timeout.
    CreateSession {
        /// Negotiated timeout, ms.
        timeout: i32,
    },
    /// The session ends; its ephemerals are deleted.
    CloseSession {
        /// The session's ephemeral nodes at prep time.
        paths_to_delete: Vec<String>,
    },
    /// Create a node.
    Create {
        /// Final path (sequence suffix included).
        path: String,
        /// Data (`None` = null).
        data: Option<Bytes>,
        /// Fixed-up ACL.
        acl: Vec<Acl>,
        /// Node kind.
        kind: NodeKind,
        /// The parent's new create counter.
        parent_cversion: i32,
    },
    /// Delete a node (also the reaper's `deleteContainer`).
    Delete {
        /// The node.
        path: String,
    },
    /// Replace a node's data.
    SetData {
        /// The node.
        path: String,
        /// The new data.
        data: Option<Bytes>,
        /// The node's new version.
        version: i32,
    },
    /// Replace a node's ACL.
    SetAcl {
        /// The node.
        path: String,
        /// The new (fixed-up) ACL.
        acl: Vec<Acl>,
        /// The node's new ACL version.
        version: i32,
    },
    /// A version check that passed (only inside a multi).
    Check {
        /// The node.
        path: String,
    },
    /// A request that failed in prep; applying it changes nothing.
    Error(ErrorCode),
    /// A multi: the sub-transactions with their request opcodes; a failed multi holds only
    /// `Error` entries.
    Multi(Vec<(OpCode, TxnBody)>),
}

/// A transaction: header and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// Header.
    pub header: TxnHeader,
    /// Body.
    pub body: TxnBody,
}

/// Encodes a body: a tag (0 createSession, 1 closeSession, 2 create, 3 delete, 4 setData,
/// 5 setACL, 6 check, 7 error, 8 multi) and its fields, jute style.
fn encode_body<B: BufMut>(body: &TxnBody, buf: &mut B) {
    match body {
        TxnBody::CreateSession { timeout } => {
            0i32.encode(buf);
            timeout.encode(buf);
        }
        TxnBody::CloseSession { paths_to_delete } => {
            1i32.encode(buf);
            paths_to_delete.encode(buf);
        }
        TxnBody::Create {
            path,
            data,
            acl,
            kind,
            parent_cversion,
        } => {
            2i32.encode(buf);
            path.encode(buf);
            data.encode(buf);
            acl.encode(buf);
            kind.stored_owner().encode(buf);
            parent_cversion.encode(buf);
        }
        TxnBody::Delete { path } => {
            3i32.encode(buf);
            path.encode(buf);
        }
        TxnBody::SetData {
            path,
            data,
            version,
        } => {
            4i32.encode(buf);
            path.encode(buf);
            data.encode(buf);
            version.encode(buf);
        }
        TxnBody::SetAcl { path, acl, version } => {
            5i32.encode(buf);
            path.encode(buf);
            acl.encode(buf);
            version.encode(buf);
        }
        TxnBody::Check { path } => {
            6i32.encode(buf);
            path.encode(buf);
        }
        TxnBody::Error(err) => {
            7i32.encode(buf);
            i32::from(*err).encode(buf);
        }
        TxnBody::Multi(ops) => {
            8i32.encode(buf);
            i32::try_from(ops.len()).unwrap_or(i32::MAX).encode(buf);
            for (op, sub) in ops {
                i32::from(*op).encode(buf);
                encode_body(sub, buf);
            }
        }
    }
}

fn unknown(kind: &'static str, value: i32) -> DecodeError {
    DecodeError::Unknown(UnknownValue { kind, value })
}

fn decode_body<B: Buf>(buf: &mut B, depth: u8) -> Result<TxnBody, DecodeError> {
    let tag = i32::decode(buf)?;
    Ok(match tag {
        0 => TxnBody::CreateSession {
            timeout: i32::decode(buf)?,
        },
        1 => TxnBody::CloseSession {
            paths_to_delete: Vec::<String>::decode(buf)?,
        },
        2 => TxnBody::Create {
            path: String::decode(buf)?,
            data: Option::<Bytes>::decode(buf)?,
            acl: Vec::<Acl>::decode(buf)?,
            kind: NodeKind::from_stored_owner(i64::decode(buf)?),
            parent_cversion: i32::decode(buf)?,
        },
        3 => TxnBody::Delete {
            path: String::decode(buf)?,
        },
        4 => TxnBody::SetData {
            path: String::decode(buf)?,
            data: Option::<Bytes>::decode(buf)?,
            version: i32::decode(buf)?,
        },
        5 => TxnBody::SetAcl {
            path: String::decode(buf)?,
            acl: Vec::<Acl>::decode(buf)?,
            version: i32::decode(buf)?,
        },
        6 => TxnBody::Check {
            path: String::decode(buf)?,
        },
        7 => TxnBody::Error(ErrorCode::try_from(i32::decode(buf)?)?),
        8 if depth == 0 => {
            let count = i32::decode(buf)?;
            let count = usize::try_from(count).map_err(|_| DecodeError::NegativeLength(count))?;
            // Each op takes at least 8 bytes: refuse counts the input cannot hold.
            if count > buf.remaining() / 8 {
                return Err(DecodeError::UnexpectedEof {
                    needed: count * 8 - buf.remaining(),
                });
            }
            let mut ops = Vec::with_capacity(count);
            for _ in 0..count {
                let op = OpCode::try_from(i32::decode(buf)?)?;
                ops.push((op, decode_body(buf, depth + 1)?));
            }
            TxnBody::Multi(ops)
        }
        other => return Err(unknown("txn type", other)),
    })
}

impl Encode for Txn {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        let h = &self.header;
        h.session_id.encode(buf);
        h.cxid.encode(buf);
        h.zxid.encode(buf);
        h.time.encode(buf);
        i32::from(h.op).encode(buf);
        encode_body(&self.body, buf);
    }

    fn encoded_len(&self) -> usize {
        let mut buf = Vec::new();
        self.encode(&mut buf);
        buf.len()
    }
}

impl Decode for Txn {
    const MIN_LEN: usize = 36;

    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        let session_id = i64::decode(buf)?;
        let cxid = i32::decode(buf)?;
        let zxid = i64::decode(buf)?;
        let time = i64::decode(buf)?;
        let op = OpCode::try_from(i32::decode(buf)?)?;
        let body = decode_body(buf, 0)?;
        Ok(Txn {
            header: TxnHeader {
                session_id,
                cxid,
                zxid,
                time,
                op,
            },
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_encoding() {
        for kind in [
            NodeKind::Persistent,
            NodeKind::Ephemeral(0x0100_0000_0000_0001),
            NodeKind::Container,
            NodeKind::Ttl(60_000),
        ] {
            assert_eq!(NodeKind::from_stored_owner(kind.stored_owner()), kind);
        }
        assert_eq!(
            NodeKind::Ttl(1).stored_owner() as u64,
            0xFF00_0000_0000_0001
        );
        assert_eq!(NodeKind::Container.client_owner(), 0);
    }

    #[test]
    fn txn_codec_roundtrip() {
        use zk_proto::records::OPEN_ACL_UNSAFE;
        let header = |op| TxnHeader {
            session_id: 7,
            cxid: 3,
            zxid: 0x1_0000_0005,
            time: 1_700_000_000_000,
            op,
        };
        let bodies = vec![
            (
                OpCode::CreateSession,
                TxnBody::CreateSession { timeout: 6000 },
            ),
            (
                OpCode::CloseSession,
                TxnBody::CloseSession {
                    paths_to_delete: vec!["/a".into(), "/b".into()],
                },
            ),
            (
                OpCode::Create2,
                TxnBody::Create {
                    path: "/a".into(),
                    data: None,
                    acl: OPEN_ACL_UNSAFE.clone(),
                    kind: NodeKind::Ttl(500),
                    parent_cversion: 4,
                },
            ),
            (OpCode::Delete, TxnBody::Delete { path: "/a".into() }),
            (
                OpCode::SetData,
                TxnBody::SetData {
                    path: "/a".into(),
                    data: Some(Bytes::from_static(b"xyz")),
                    version: 2,
                },
            ),
            (
                OpCode::SetAcl,
                TxnBody::SetAcl {
                    path: "/a".into(),
                    acl: vec![],
                    version: 1,
                },
            ),
            (OpCode::SetData, TxnBody::Error(ErrorCode::BadVersion)),
            (
                OpCode::Multi,
                TxnBody::Multi(vec![
                    (OpCode::Check, TxnBody::Check { path: "/a".into() }),
                    (OpCode::Delete, TxnBody::Delete { path: "/b".into() }),
                ]),
            ),
        ];
        for (op, body) in bodies {
            let txn = Txn {
                header: header(op),
                body,
            };
            let bytes = txn.to_bytes();
            assert_eq!(bytes.len(), txn.encoded_len());
            assert_eq!(Txn::decode_exact(bytes.clone()), Ok(txn.clone()));
            for cut in 0..bytes.len() {
                assert!(Txn::decode_exact(&bytes[..cut]).is_err());
            }
        }
        // A nested multi or an unknown tag is invalid, not a panic.
        let mut bad = header(OpCode::Multi);
        bad.op = OpCode::Multi;
        let mut buf = Txn {
            header: bad,
            body: TxnBody::Error(ErrorCode::Ok),
        }
        .to_bytes()
        .to_vec();
        let n = buf.len();
        buf[n - 8..n - 4].copy_from_slice(&99i32.to_be_bytes());
        assert!(Txn::decode_exact(&buf[..]).is_err());
    }
}
