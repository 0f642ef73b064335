//! Server-to-server wire formats of Apache ZooKeeper (3.5 – 3.9): the leader↔learner
//! "quorum port" packets, the leader-election port messages, and the transactions carried
//! inside proposals. Records and decoders only — no I/O, no clock.
//!
//! | file | what |
//! |---|---|
//! | [`packet`] | [`QuorumPacket`] `{type, zxid, data, authinfo}`, [`PacketType`] (REQUEST 1 … INFORMANDACTIVATE 19), the streaming [`QuorumPacketDecoder`] for the quorum port (records back to back, no length prefix) |
//! | [`learner`] | the `data` of each packet type: [`LearnerInfo`] (FOLLOWERINFO / OBSERVERINFO), LEADERINFO, ACKEPOCH, REQUEST, PING, REVALIDATE, NEWLEADER, COMMITANDACTIVATE / INFORMANDACTIVATE |
//! | [`election`] | the election port: [`InitialMessage`], the `int length` framing ([`election::parse_frame`]), the FLE [`Notification`], [`ServerState`] |
//! | [`snapshot`] | the snapshot stream after SNAP ([`Snapshot`]: sessions, ACL cache, nodes, `BenWasHere`) and its incremental [`SnapshotDecoder`] |
//! | [`txn`] | [`TxnHeader`], the txn records (`CreateTxn` … `MultiTxn`), [`TxnDigest`] and [`TxnEntry`] = header + record + optional digest, the bytes of PROPOSAL / INFORM |
//!
//! Layouts follow `zookeeper.jute` and the Java code of the 3.8 branch (`Leader`,
//! `LearnerHandler`, `Learner`, `QuorumCnxManager`, `FastLeaderElection`,
//! `SerializeUtils`); golden tests replay traffic recorded between the members of a real
//! Apache 3.8 ensemble (`zk-proto/tests/quorum_golden.rs`).
//!
//! **Exactness.** Every decoder keeps what it needs to re-encode its input byte for byte:
//! null and empty buffers/vectors stay distinct (`Option`), codes stay raw `i32` with checked
//! accessors, and the legacy forms Apache still accepts (28- and 40-byte notifications,
//! short LearnerInfo) are remembered.
//!
//! **Errors.** Streaming decoders ([`QuorumPacketDecoder`], [`election::parse_frame`],
//! [`InitialMessage::parse`]) return `Ok(None)` while bytes are missing and consume nothing;
//! an `Err` always means the peer sent invalid bytes — retrying on the same connection cannot
//! help, close it (Apache does). Functions that take a complete `data` buffer report a short
//! buffer as [`QuorumError::Decode`] with [`DecodeError::UnexpectedEof`]: the packet was
//! complete, so this is also invalid input.
//!
//! ```
//! use bytes::BytesMut;
//! use zk_proto::quorum::{LearnerInfo, PacketType, QuorumPacket, QuorumPacketDecoder};
//! use zk_proto::Encode;
//!
//! // A follower announces itself (acceptedEpoch 1).
//! let info = LearnerInfo::new(2, 0);
//! let packet = QuorumPacket::new(PacketType::FollowerInfo, 1 << 32, Some(info.to_bytes()));
//! let mut wire = BytesMut::from(&packet.to_bytes()[..]);
//!
//! // The leader reads it off its socket buffer.
//! let decoder = QuorumPacketDecoder::default();
//! let received = decoder.decode(&mut wire)?.expect("a whole packet is buffered");
//! assert_eq!(received.packet_type(), Ok(PacketType::FollowerInfo));
//! assert_eq!(LearnerInfo::from_data(received.data()).server_id, Some(2));
//! assert!(wire.is_empty());
//! # Ok::<(), zk_proto::quorum::QuorumError>(())
//! ```

pub mod election;
pub mod learner;
pub mod packet;
pub mod snapshot;
pub mod txn;

#[cfg(test)]
mod proptests;

pub use election::{InitialMessage, Notification, ServerState};
pub use learner::{LearnerInfo, ReceivedLearnerInfo};
pub use packet::{PacketType, QuorumPacket, QuorumPacketDecoder};
pub use snapshot::{Snapshot, SnapshotDecoder};
pub use txn::{TxnDigest, TxnEntry, TxnHeader, TxnRecord};

use crate::codec::DecodeError;

/// Why bytes from a quorum or election connection are invalid.
///
/// Every variant means the peer sent something Apache would also refuse (or could not
/// interpret); waiting for more bytes will not help. Close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuorumError {
    /// A jute field is invalid (negative length, over-long string, unknown code), or a
    /// complete `data` buffer ended early ([`DecodeError::UnexpectedEof`]).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A quorum packet's `data` buffer is longer than the decoder accepts.
    #[error("quorum packet data of {len} bytes exceeds the limit of {max}")]
    DataTooLong {
        /// The length announced.
        len: usize,
        /// The limit in force ([`QuorumPacketDecoder::max_data_len`]).
        max: usize,
    },
    /// A quorum packet carries more `authinfo` ids than the decoder accepts.
    #[error("quorum packet with {count} authinfo ids exceeds the limit of {max}")]
    TooManyAuthIds {
        /// The count announced.
        count: usize,
        /// The limit in force ([`QuorumPacketDecoder::max_auth_ids`]).
        max: usize,
    },
    /// An election message length outside `1..=524288` (Apache's `PACKETMAXSIZE`).
    #[error("election message length {0} is outside 1..=524288")]
    MessageLength(i32),
    /// The first long of an election connection is negative but neither protocol version.
    #[error("unknown election protocol version {0}")]
    ProtocolVersion(i64),
    /// The address length of an initial message is outside `1..=2048`.
    #[error("initial message address length {0} is outside 1..=2048")]
    AddressLength(i32),
    /// A notification Apache's `FastLeaderElection` would skip: shorter than 28 bytes, or
    /// cut inside its fixed fields, or with a config length that does not fit.
    #[error("malformed notification of {len} bytes: {why}")]
    Notification {
        /// The message length.
        len: usize,
        /// What is wrong.
        why: &'static str,
    },
    /// A transaction header names a type with no txn record (Apache's `SerializeUtils`
    /// refuses it too).
    #[error("transaction type {0} has no txn record")]
    TxnType(i32),
    /// Bytes after a txn record that are not a 12-byte `TxnDigest`.
    #[error("{0} unexpected byte(s) after the txn record")]
    TxnTrailing(usize),
    /// A packet's `data` does not have the shape its type requires.
    #[error("{packet} data: {why}")]
    Data {
        /// The packet (or data) kind, e.g. `"ACKEPOCH"`.
        packet: &'static str,
        /// What is wrong.
        why: String,
    },
}

impl QuorumError {
    pub(crate) fn data(packet: &'static str, why: impl Into<String>) -> Self {
        QuorumError::Data {
            packet,
            why: why.into(),
        }
    }
}
