//! [`QuorumPacket`], the one record exchanged on the leader↔learner ("quorum") port, its
//! [`PacketType`], constructors for every packet Apache sends, and the streaming
//! [`QuorumPacketDecoder`].
//!
//! On the quorum port jute `QuorumPacket` records follow each other **without a length
//! prefix**: a reader only knows a packet is complete by walking its fields. The decoder does
//! that without copying or allocating, so it can tell "need more bytes" (`Ok(None)`) from
//! "invalid" (`Err`) and refuse absurd sizes before they arrive.
//!
//! After a [`PacketType::Snap`] packet the leader streams a serialized snapshot followed by
//! the jute string [`SNAP_SIGNATURE`] (`"BenWasHere"`) — raw bytes, not quorum packets; stop
//! feeding this decoder until the snapshot has been consumed.
//!
//! | type | name | dir | zxid | data (helpers in [`learner`](super::learner) / [`txn`](super::txn)) |
//! |---:|---|---|---|---|
//! | 1 | REQUEST | L→Ldr | -1 | [`LearnerRequest`](super::learner::LearnerRequest); `authinfo` = the client's ids |
//! | 2 | PROPOSAL | Ldr→F | txn zxid | [`TxnEntry`] ([`QuorumPacket::proposal`], [`QuorumPacket::txn`]) |
//! | 3 | ACK | F→Ldr | acked zxid | null |
//! | 4 | COMMIT | Ldr→F | zxid | null |
//! | 5 | PING | both | leader's last zxid, echoed | Ldr→L null; L→Ldr [`SessionTouches`](super::learner::SessionTouches), `authinfo` echoed |
//! | 6 | REVALIDATE | both | -1 | [`RevalidateRequest`](super::learner::RevalidateRequest) / [`RevalidateReply`](super::learner::RevalidateReply) |
//! | 7 | SYNC | Ldr→L | 0 | null |
//! | 8 | INFORM | Ldr→Obs | txn zxid | [`TxnEntry`] ([`QuorumPacket::inform`]) |
//! | 9 | COMMITANDACTIVATE | Ldr→F | zxid | [`Activate`](super::learner::Activate) |
//! | 10 | NEWLEADER | Ldr→L | `epoch<<32` | quorum config text |
//! | 11 | FOLLOWERINFO | F→Ldr | `acceptedEpoch<<32` | [`LearnerInfo`](super::learner::LearnerInfo) |
//! | 12 | UPTODATE | Ldr→L | -1 | null |
//! | 13 | DIFF | Ldr→L | leader's last committed zxid | null |
//! | 14 | TRUNC | Ldr→L | truncate-to zxid | null |
//! | 15 | SNAP | Ldr→L | leader's last processed zxid | null, then the snapshot stream |
//! | 16 | OBSERVERINFO | Obs→Ldr | `acceptedEpoch<<32` | [`LearnerInfo`](super::learner::LearnerInfo) |
//! | 17 | LEADERINFO | Ldr→L | `newEpoch<<32` | [`LeaderInfo`](super::learner::LeaderInfo) (0x10000) |
//! | 18 | ACKEPOCH | L→Ldr | learner's last logged zxid | [`AckEpoch`](super::learner::AckEpoch) |
//! | 19 | INFORMANDACTIVATE | Ldr→Obs | zxid | [`Activate`](super::learner::Activate) + txn |
//!
//! "null" is a jute buffer of length -1, which Apache writes for packets without data (and
//! for `authinfo`, a vector count -1, on every packet but REQUEST and echoed PINGs).

use bytes::{Bytes, BytesMut};

use crate::codec::{Decode, Encode, MAX_FIELD_LEN, UnknownValue};
use crate::records::Id;

use super::QuorumError;
use super::txn::TxnEntry;

/// The string Apache writes after a snapshot sent with SNAP (as a jute `ustring`).
pub const SNAP_SIGNATURE: &str = "BenWasHere";

/// The Zab protocol version Apache 3.4+ announces in LearnerInfo and LEADERINFO: 0x10000.
pub const PROTOCOL_VERSION: i32 = 0x10000;

/// Builds a zxid from an epoch and a counter (`epoch << 32 | counter`), as Java's
/// `ZxidUtils.makeZxid`.
pub const fn make_zxid(epoch: i64, counter: i64) -> i64 {
    (epoch << 32) | (counter & 0xffff_ffff)
}

/// The epoch of a zxid (its high 32 bits, sign-extended as Java's `zxid >> 32`).
pub const fn zxid_epoch(zxid: i64) -> i64 {
    zxid >> 32
}

/// The counter of a zxid (its low 32 bits).
pub const fn zxid_counter(zxid: i64) -> i64 {
    zxid & 0xffff_ffff
}

code_enum! {
    /// The type of a [`QuorumPacket`] (Java: the constants in `Leader`).
    pub enum PacketType("quorum packet type") {
        /// A write forwarded by a learner.
        Request = 1 => "REQUEST",
        /// A transaction proposed by the leader.
        Proposal = 2 => "PROPOSAL",
        /// A learner acknowledges a zxid.
        Ack = 3 => "ACK",
        /// The leader commits a zxid.
        Commit = 4 => "COMMIT",
        /// Liveness, both directions (learners piggyback session touches).
        Ping = 5 => "PING",
        /// Session revalidation after a client reconnected to a learner.
        Revalidate = 6 => "REVALIDATE",
        /// Answer to a forwarded `sync`.
        Sync = 7 => "SYNC",
        /// A committed transaction sent to observers.
        Inform = 8 => "INFORM",
        /// Commit of a reconfiguration.
        CommitAndActivate = 9 => "COMMITANDACTIVATE",
        /// End of synchronisation: the leader's config; ACKed with `epoch<<32`.
        NewLeader = 10 => "NEWLEADER",
        /// A follower's first packet.
        FollowerInfo = 11 => "FOLLOWERINFO",
        /// The learner may serve clients.
        UpToDate = 12 => "UPTODATE",
        /// Sync by sending the missing transactions.
        Diff = 13 => "DIFF",
        /// Sync by truncating the learner's log.
        Trunc = 14 => "TRUNC",
        /// Sync by a full snapshot (raw snapshot bytes follow).
        Snap = 15 => "SNAP",
        /// An observer's first packet.
        ObserverInfo = 16 => "OBSERVERINFO",
        /// The leader proposes a new epoch.
        LeaderInfo = 17 => "LEADERINFO",
        /// A learner accepts the new epoch.
        AckEpoch = 18 => "ACKEPOCH",
        /// INFORM of a reconfiguration.
        InformAndActivate = 19 => "INFORMANDACTIVATE",
    }
}

jute_record! {
    /// The jute record of the quorum port: `{type:int, zxid:long, data:buffer,
    /// authinfo:vector<Id>}`.
    ///
    /// `data` and `authinfo` are `Option` because Apache writes null (length -1) for most
    /// packets and a few readers distinguish null from empty (a null LearnerInfo makes the
    /// leader invent a sid).
    pub struct QuorumPacket {
        /// The raw packet type (jute field `type`); see [`QuorumPacket::packet_type`].
        pub ty: i32,
        /// The zxid (meaning depends on the type; see the [module table](self)).
        pub zxid: i64,
        /// The payload; `None` = null.
        pub data: Option<Bytes>,
        /// Auth ids of the client a REQUEST came from; `None` = null.
        pub authinfo: Option<Vec<Id>>,
    }
}

impl QuorumPacket {
    /// A packet with null `authinfo`, as Apache builds every packet except REQUEST.
    pub fn new(ty: PacketType, zxid: i64, data: Option<Bytes>) -> Self {
        QuorumPacket {
            ty: ty.into(),
            zxid,
            data,
            authinfo: None,
        }
    }

    /// The packet type, if known.
    pub fn packet_type(&self) -> Result<PacketType, UnknownValue> {
        PacketType::try_from(self.ty)
    }

    /// The data as a slice (`None` for null).
    pub fn data(&self) -> Option<&[u8]> {
        self.data.as_deref()
    }

    /// ACK of `zxid` (`newEpoch<<32` for the NEWLEADER and UPTODATE acks).
    pub fn ack(zxid: i64) -> Self {
        Self::new(PacketType::Ack, zxid, None)
    }

    /// COMMIT of `zxid`.
    pub fn commit(zxid: i64) -> Self {
        Self::new(PacketType::Commit, zxid, None)
    }

    /// Leader→learner PING carrying the leader's last proposed zxid.
    pub fn ping(zxid: i64) -> Self {
        Self::new(PacketType::Ping, zxid, None)
    }

    /// UPTODATE (zxid -1).
    pub fn up_to_date() -> Self {
        Self::new(PacketType::UpToDate, -1, None)
    }

    /// SYNC (zxid 0): a forwarded `sync` is done.
    pub fn sync() -> Self {
        Self::new(PacketType::Sync, 0, None)
    }

    /// DIFF: the leader will send the missing transactions up to `last_committed`.
    pub fn diff(last_committed: i64) -> Self {
        Self::new(PacketType::Diff, last_committed, None)
    }

    /// TRUNC: the learner must truncate its log to `zxid`.
    pub fn trunc(zxid: i64) -> Self {
        Self::new(PacketType::Trunc, zxid, None)
    }

    /// SNAP: a snapshot up to `last_processed` follows (raw, then [`SNAP_SIGNATURE`]).
    pub fn snap(last_processed: i64) -> Self {
        Self::new(PacketType::Snap, last_processed, None)
    }

    /// PROPOSAL of `txn` (zxid taken from its header).
    pub fn proposal(txn: &TxnEntry) -> Self {
        Self::new(PacketType::Proposal, txn.header.zxid, Some(txn.to_bytes()))
    }

    /// INFORM of `txn` to observers (same data as the PROPOSAL).
    pub fn inform(txn: &TxnEntry) -> Self {
        Self::new(PacketType::Inform, txn.header.zxid, Some(txn.to_bytes()))
    }

    /// Decodes the data of a PROPOSAL / INFORM as a transaction (null data is invalid).
    pub fn txn(&self) -> Result<TxnEntry, QuorumError> {
        match self.data() {
            Some(d) => TxnEntry::from_bytes(d),
            None => Err(crate::DecodeError::UnexpectedEof { needed: 32 }.into()),
        }
    }

    /// NEWLEADER for `new_epoch` with the leader's quorum config text (Apache 3.5+ sends
    /// the text with its `version=` line; pre-0x10000 learners get null).
    pub fn new_leader(new_epoch: i64, config: Option<Bytes>) -> Self {
        Self::new(PacketType::NewLeader, make_zxid(new_epoch, 0), config)
    }
}

/// `QuorumAuth.QUORUM_AUTH_MAGIC_NUMBER`, the first long of a [`QuorumAuthPacket`]. Java
/// writes it as `-0xa0dbcafecafe1234L`, where the hex literal is already a negative long, so
/// the value is positive: 0x5f24_3501_3501_edcc.
pub const QUORUM_AUTH_MAGIC: i64 = 0x5f24_3501_3501_edcc;

jute_record! {
    /// The SASL handshake record that starts quorum and election connections when
    /// `quorum.auth.enableSasl` is on (Apache's `QuorumAuth`); not used otherwise.
    pub struct QuorumAuthPacket {
        /// [`QUORUM_AUTH_MAGIC`].
        pub magic: i64,
        /// `QuorumAuth.Status`: 0 IN_PROGRESS, 1 SUCCESS, -1 ERROR.
        pub status: i32,
        /// The SASL token (`None` = null).
        pub token: Option<Bytes>,
    }
}

/// Splits [`QuorumPacket`]s off the front of a buffer filled from the quorum port.
///
/// Limits are checked as soon as a length or count is read, before its bytes arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumPacketDecoder {
    /// Largest `data` accepted. Default [`MAX_FIELD_LEN`] (2 × `jute.maxbuffer`), the limit
    /// Apache's `BinaryInputArchive` applies to the same field.
    pub max_data_len: usize,
    /// Most `authinfo` ids accepted. Default [`QuorumPacketDecoder::DEFAULT_MAX_AUTH_IDS`].
    /// (Java has no count limit; a client connection holds a handful of ids.)
    pub max_auth_ids: usize,
}

impl Default for QuorumPacketDecoder {
    fn default() -> Self {
        QuorumPacketDecoder {
            max_data_len: MAX_FIELD_LEN,
            max_auth_ids: Self::DEFAULT_MAX_AUTH_IDS,
        }
    }
}

/// Fixed part of a packet: type, zxid, data length.
const HEADER_LEN: usize = 4 + 8 + 4;

fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// A length field: `Ok(None)` when not yet buffered, `Ok(Some(len))` with -1 read as 0.
fn read_len(buf: &[u8], at: usize, max: usize) -> Result<Option<usize>, QuorumError> {
    let Some(len) = read_i32(buf, at) else {
        return Ok(None);
    };
    if len == -1 {
        return Ok(Some(0));
    }
    let len = usize::try_from(len).map_err(|_| crate::DecodeError::NegativeLength(len))?;
    if len > max {
        return Err(crate::DecodeError::TooLong { len, max }.into());
    }
    Ok(Some(len))
}

impl QuorumPacketDecoder {
    /// Default of [`max_auth_ids`](Self::max_auth_ids): 64.
    pub const DEFAULT_MAX_AUTH_IDS: usize = 64;

    /// Checks whether `buf` starts with a whole packet: `Ok(Some(len))` with its length,
    /// `Ok(None)` when more bytes are needed, `Err` as soon as a field is invalid or over a
    /// limit. Consumes and allocates nothing.
    pub fn check(&self, buf: &[u8]) -> Result<Option<usize>, QuorumError> {
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let data_len = match read_len(buf, 12, usize::MAX)? {
            Some(len) if len > self.max_data_len => {
                return Err(QuorumError::DataTooLong {
                    len,
                    max: self.max_data_len,
                });
            }
            Some(len) => len,
            None => return Ok(None),
        };
        let mut at = HEADER_LEN.saturating_add(data_len);
        let Some(count) = read_i32(buf, at) else {
            return Ok(None);
        };
        at = at.saturating_add(4);
        if count != -1 {
            let count =
                usize::try_from(count).map_err(|_| crate::DecodeError::NegativeLength(count))?;
            if count > self.max_auth_ids {
                return Err(QuorumError::TooManyAuthIds {
                    count,
                    max: self.max_auth_ids,
                });
            }
            // Each Id is two ustrings (scheme, id).
            for _ in 0..count * 2 {
                let Some(len) = read_len(buf, at, MAX_FIELD_LEN)? else {
                    return Ok(None);
                };
                at = at.saturating_add(4 + len);
            }
        }
        Ok((buf.len() >= at).then_some(at))
    }

    /// Splits the next whole packet off the front of `buf` and decodes it; `Ok(None)` (and
    /// `buf` untouched) while it is incomplete.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<QuorumPacket>, QuorumError> {
        let Some(len) = self.check(buf)? else {
            return Ok(None);
        };
        let bytes = buf.split_to(len).freeze();
        Ok(Some(QuorumPacket::decode_exact(bytes)?))
    }

    /// Decodes a buffer that holds only whole packets (e.g. a recorded stream).
    ///
    /// A trailing partial packet is reported as [`crate::DecodeError::UnexpectedEof`].
    pub fn decode_all(&self, bytes: &[u8]) -> Result<Vec<QuorumPacket>, QuorumError> {
        let mut buf = BytesMut::from(bytes);
        let mut packets = Vec::new();
        while !buf.is_empty() {
            match self.decode(&mut buf)? {
                Some(packet) => packets.push(packet),
                None => {
                    return Err(crate::DecodeError::UnexpectedEof { needed: 1 }.into());
                }
            }
        }
        Ok(packets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{hex, roundtrip};

    #[test]
    fn packet_types_are_checked() {
        for ty in PacketType::ALL {
            assert_eq!(PacketType::try_from(ty.as_i32()), Ok(*ty));
        }
        assert_eq!(PacketType::ALL.len(), 19);
        assert_eq!(PacketType::InformAndActivate.as_i32(), 19);
        assert_eq!(PacketType::LeaderInfo.name(), "LEADERINFO");
        let p = QuorumPacket {
            ty: 42,
            zxid: 0,
            data: None,
            authinfo: None,
        };
        assert_eq!(p.packet_type().map_err(|e| e.value), Err(42));
        assert!(PacketType::try_from(0).is_err());
    }

    #[test]
    fn uptodate_bytes() {
        let bytes = roundtrip(&QuorumPacket::up_to_date());
        assert_eq!(
            &bytes[..],
            &hex("0000000c ffffffffffffffff ffffffff ffffffff")[..]
        );
    }

    #[test]
    fn quorum_auth_packet_roundtrips() {
        roundtrip(&QuorumAuthPacket {
            magic: 0x1234,
            status: 1,
            token: None,
        });
    }

    #[test]
    fn zxid_helpers() {
        assert_eq!(make_zxid(3, 7), 0x3_0000_0007);
        assert_eq!(zxid_epoch(0x3_0000_0007), 3);
        assert_eq!(zxid_counter(0x3_0000_0007), 7);
        assert_eq!(zxid_epoch(-1), -1);
        assert_eq!(QuorumPacket::new_leader(2, None).zxid, 0x2_0000_0000);
    }

    #[test]
    fn decoder_needs_more_then_splits() {
        let mut p = QuorumPacket::new(PacketType::Request, -1, Some(Bytes::from_static(b"xy")));
        p.authinfo = Some(vec![Id::new("ip", "127.0.0.1")]);
        let mut wire = p.to_bytes().to_vec();
        wire.extend_from_slice(&QuorumPacket::commit(5).to_bytes());
        let d = QuorumPacketDecoder::default();
        let first_len = p.encoded_len();
        for cut in 0..first_len {
            let mut buf = BytesMut::from(&wire[..cut]);
            assert_eq!(d.decode(&mut buf), Ok(None), "cut {cut}");
            assert_eq!(buf.len(), cut);
        }
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(d.decode(&mut buf), Ok(Some(p)));
        assert_eq!(d.decode(&mut buf), Ok(Some(QuorumPacket::commit(5))));
        assert_eq!(d.decode(&mut buf), Ok(None));
    }

    #[test]
    fn decoder_limits() {
        let d = QuorumPacketDecoder {
            max_data_len: 10,
            max_auth_ids: 1,
        };
        // data length 11, nothing of it buffered yet: refused at once.
        let wire = hex("00000002 0000000000000001 0000000b");
        assert_eq!(
            d.check(&wire),
            Err(QuorumError::DataTooLong { len: 11, max: 10 })
        );
        let wire = hex("00000002 0000000000000001 fffffffe");
        assert_eq!(
            d.check(&wire),
            Err(crate::DecodeError::NegativeLength(-2).into())
        );
        let wire = hex("00000001 ffffffffffffffff ffffffff 00000002");
        assert_eq!(
            d.check(&wire),
            Err(QuorumError::TooManyAuthIds { count: 2, max: 1 })
        );
        let wire = hex("00000001 ffffffffffffffff ffffffff 80000000");
        assert!(d.check(&wire).is_err());
        // An id string claiming 2^31-1 bytes.
        let wire = hex("00000001 ffffffffffffffff ffffffff 00000001 7fffffff");
        assert!(matches!(
            d.check(&wire),
            Err(QuorumError::Decode(crate::DecodeError::TooLong { .. }))
        ));
    }

    #[test]
    fn decode_all_reports_a_partial_tail() {
        let d = QuorumPacketDecoder::default();
        let mut wire = QuorumPacket::ping(1).to_bytes().to_vec();
        assert_eq!(d.decode_all(&wire).map(|v| v.len()), Ok(1));
        wire.push(0);
        assert!(matches!(
            d.decode_all(&wire),
            Err(QuorumError::Decode(
                crate::DecodeError::UnexpectedEof { .. }
            ))
        ));
    }
}
