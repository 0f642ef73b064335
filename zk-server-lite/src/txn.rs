//! Transactions: what the prep stage produces, the log stores and the apply stage executes.
//!
//! They mirror Apache's `TxnHeader` + txn records (`CreateTxn`, `DeleteTxn`, `SetDataTxn`,
//! `SetACLTxn`, `CheckVersionTxn`, `CreateSessionTxn`, `CloseSessionTxn`, `ErrorTxn`,
//! `MultiTxn`). A transaction carries every decision already made (final path with its
//! sequence suffix, fixed-up ACL, ephemeral owner, new parent create counter, time), so
//! applying it is deterministic: every replica that applies the same log reaches the same
//! tree.

use bytes::Bytes;
use zk_proto::records::Acl;
use zk_proto::{ErrorCode, OpCode};

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
}
