//! The `data` of each quorum packet type, with constructors for whole packets.
//!
//! Apache builds most of these with `DataOutputStream` / `ByteBuffer` (plain big-endian
//! fields, no jute lengths); only [`LearnerInfo`] is a jute record. Each type has
//! `to_data()` (the bytes to put in [`QuorumPacket::data`]) and `from_data()` (which takes
//! `Option<&[u8]>` because the field may be null), and most have a `packet()` constructor.
//! `from_data` is strict about lengths: Apache always writes exactly these sizes, and a
//! wrong size is reported as [`QuorumError::Data`] instead of being half-read.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::UnknownValue;
use crate::codec::{Decode, Encode};
use crate::op_code::OpCode;
use crate::records::Id;

use super::QuorumError;
use super::packet::{PROTOCOL_VERSION, PacketType, QuorumPacket, make_zxid};
use super::txn::TxnEntry;

jute_record! {
    /// FOLLOWERINFO / OBSERVERINFO data (jute `LearnerInfo`, 20 bytes): who the learner is.
    #[derive(Copy, Hash)]
    pub struct LearnerInfo {
        /// The learner's sid (`myid`).
        pub server_id: i64,
        /// Zab protocol version: [`PROTOCOL_VERSION`] (0x10000) since 3.4.
        pub protocol_version: i32,
        /// Version of the learner's quorum config (0 without dynamic reconfig; the leader
        /// drops a learner whose version is newer than its own).
        pub config_version: i64,
    }
}

/// A [`LearnerInfo`] as Apache's `LearnerHandler` reads it: older learners sent fewer
/// fields (pre-3.4: sid only; 3.4: sid + protocol version), and the leader copes with each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedLearnerInfo {
    /// The sid; `None` when the data was null (the leader then assigns a negative counter
    /// sid) or shorter than 8 bytes (Java then keeps sid 0).
    pub server_id: Option<i64>,
    /// The protocol version; 1 when absent (Java's default). Below 0x10000 the leader skips
    /// LEADERINFO/ACKEPOCH and sends NEWLEADER without config.
    pub protocol_version: i32,
    /// The config version, when the data has 20 bytes or more.
    pub config_version: Option<i64>,
}

impl LearnerInfo {
    /// Info for sid `server_id` speaking [`PROTOCOL_VERSION`], as Apache 3.5+ sends it.
    pub fn new(server_id: i64, config_version: i64) -> Self {
        LearnerInfo {
            server_id,
            protocol_version: PROTOCOL_VERSION,
            config_version,
        }
    }

    /// Reads FOLLOWERINFO / OBSERVERINFO data the way `LearnerHandler.run` does: the sid if
    /// there are ≥ 8 bytes, the protocol version if ≥ 12, the config version if ≥ 20; extra
    /// bytes ignored. Never fails.
    pub fn from_data(data: Option<&[u8]>) -> ReceivedLearnerInfo {
        let mut info = ReceivedLearnerInfo {
            server_id: None,
            protocol_version: 1,
            config_version: None,
        };
        let Some(mut data) = data else {
            return info;
        };
        if data.len() < 8 {
            return info;
        }
        info.server_id = Some(data.get_i64());
        if data.len() < 4 {
            return info;
        }
        info.protocol_version = data.get_i32();
        if data.len() >= 8 {
            info.config_version = Some(data.get_i64());
        }
        info
    }

    /// FOLLOWERINFO with zxid `accepted_epoch << 32`.
    pub fn follower_info(&self, accepted_epoch: i64) -> QuorumPacket {
        QuorumPacket::new(
            PacketType::FollowerInfo,
            make_zxid(accepted_epoch, 0),
            Some(self.to_bytes()),
        )
    }

    /// OBSERVERINFO with zxid `accepted_epoch << 32`.
    pub fn observer_info(&self, accepted_epoch: i64) -> QuorumPacket {
        QuorumPacket::new(
            PacketType::ObserverInfo,
            make_zxid(accepted_epoch, 0),
            Some(self.to_bytes()),
        )
    }
}

/// Reads a fixed-size data buffer, failing with [`QuorumError::Data`] on null or a wrong
/// size.
fn exact<'a>(
    packet: &'static str,
    data: Option<&'a [u8]>,
    len: usize,
) -> Result<&'a [u8], QuorumError> {
    match data {
        None => Err(QuorumError::data(packet, "null, expected data")),
        Some(d) if d.len() != len => Err(QuorumError::data(
            packet,
            format!("{} bytes, expected {len}", d.len()),
        )),
        Some(d) => Ok(d),
    }
}

/// LEADERINFO data: the leader's protocol version (an int, 0x10000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderInfo {
    /// Protocol version, [`PROTOCOL_VERSION`].
    pub protocol_version: i32,
}

impl LeaderInfo {
    /// The 4-byte data.
    pub fn to_data(&self) -> Bytes {
        self.protocol_version.to_bytes()
    }

    /// Parses exactly 4 bytes.
    pub fn from_data(data: Option<&[u8]>) -> Result<Self, QuorumError> {
        let mut d = exact("LEADERINFO", data, 4)?;
        Ok(LeaderInfo {
            protocol_version: d.get_i32(),
        })
    }

    /// LEADERINFO proposing `new_epoch` (zxid `new_epoch << 32`) with
    /// [`PROTOCOL_VERSION`].
    pub fn packet(new_epoch: i64) -> QuorumPacket {
        let info = LeaderInfo {
            protocol_version: PROTOCOL_VERSION,
        };
        QuorumPacket::new(
            PacketType::LeaderInfo,
            make_zxid(new_epoch, 0),
            Some(info.to_data()),
        )
    }
}

/// ACKEPOCH data: the learner's currentEpoch as a 4-byte int, or -1 when the learner had
/// already accepted the proposed epoch (then it is no vote for it, only a report of the
/// learner's last zxid, which travels in the packet's zxid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckEpoch {
    /// `currentEpoch` truncated to an int (Java casts), or [`AckEpoch::ALREADY_ACCEPTED`].
    pub current_epoch: i32,
}

impl AckEpoch {
    /// The value sent when the new epoch equals the learner's acceptedEpoch.
    pub const ALREADY_ACCEPTED: i32 = -1;

    /// Whether this ACKEPOCH counts as an acknowledgement of the new epoch.
    pub fn is_ack(&self) -> bool {
        self.current_epoch != Self::ALREADY_ACCEPTED
    }

    /// The 4-byte data.
    pub fn to_data(&self) -> Bytes {
        self.current_epoch.to_bytes()
    }

    /// Parses exactly 4 bytes.
    pub fn from_data(data: Option<&[u8]>) -> Result<Self, QuorumError> {
        let mut d = exact("ACKEPOCH", data, 4)?;
        Ok(AckEpoch {
            current_epoch: d.get_i32(),
        })
    }

    /// ACKEPOCH with zxid = the learner's last logged zxid.
    pub fn packet(&self, last_logged_zxid: i64) -> QuorumPacket {
        QuorumPacket::new(PacketType::AckEpoch, last_logged_zxid, Some(self.to_data()))
    }
}

/// REQUEST data: a client request a learner forwards to the leader —
/// `sessionId:long, cxid:int, type:int` and the raw request body (the client frame's
/// payload after its RequestHeader, possibly empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerRequest {
    /// The client's session.
    pub session_id: i64,
    /// The client's xid.
    pub cxid: i32,
    /// The raw opcode; see [`LearnerRequest::op_code`].
    pub op: i32,
    /// The request body as the client sent it (decode with [`crate::Request`] by opcode).
    pub body: Bytes,
}

impl LearnerRequest {
    /// The opcode, if known.
    pub fn op_code(&self) -> Result<OpCode, UnknownValue> {
        OpCode::try_from(self.op)
    }

    /// The data bytes.
    pub fn to_data(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(16 + self.body.len());
        buf.put_i64(self.session_id);
        buf.put_i32(self.cxid);
        buf.put_i32(self.op);
        buf.put_slice(&self.body);
        buf.freeze()
    }

    /// Parses at least 16 bytes; the rest is the body.
    pub fn from_data(data: Option<&[u8]>) -> Result<Self, QuorumError> {
        let Some(d) = data else {
            return Err(QuorumError::data("REQUEST", "null, expected data"));
        };
        if d.len() < 16 {
            return Err(QuorumError::data(
                "REQUEST",
                format!("{} bytes, expected at least 16", d.len()),
            ));
        }
        let mut head = &d[..16];
        Ok(LearnerRequest {
            session_id: head.get_i64(),
            cxid: head.get_i32(),
            op: head.get_i32(),
            body: Bytes::copy_from_slice(&d[16..]),
        })
    }

    /// REQUEST (zxid -1) with the client connection's auth ids (`None` = null, which Apache
    /// never sends for a client request but accepts).
    pub fn packet(&self, authinfo: Option<Vec<Id>>) -> QuorumPacket {
        let mut p = QuorumPacket::new(PacketType::Request, -1, Some(self.to_data()));
        p.authinfo = authinfo;
        p
    }
}

/// One session touch in a learner's PING reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTouch {
    /// The session.
    pub session_id: i64,
    /// Its timeout in ms.
    pub timeout: i32,
}

/// Learner→leader PING data: the sessions the learner saw activity on since its last PING,
/// as repeated `sessionId:long, timeout:int` (12 bytes each; empty when none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionTouches(pub Vec<SessionTouch>);

impl SessionTouches {
    /// The data bytes.
    pub fn to_data(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(12 * self.0.len());
        for t in &self.0 {
            buf.put_i64(t.session_id);
            buf.put_i32(t.timeout);
        }
        buf.freeze()
    }

    /// Parses a multiple of 12 bytes (null reads as no touches).
    pub fn from_data(data: Option<&[u8]>) -> Result<Self, QuorumError> {
        let d = data.unwrap_or_default();
        if d.len() % 12 != 0 {
            return Err(QuorumError::data(
                "PING",
                format!("{} bytes, expected a multiple of 12", d.len()),
            ));
        }
        Ok(SessionTouches(
            d.chunks_exact(12)
                .map(|mut c| SessionTouch {
                    session_id: c.get_i64(),
                    timeout: c.get_i32(),
                })
                .collect(),
        ))
    }

    /// The learner's answer to `ping`: same type and zxid, these touches as data, and the
    /// ping's `authinfo` echoed (as Apache's `Learner.ping` does).
    pub fn reply_to(&self, ping: &QuorumPacket) -> QuorumPacket {
        QuorumPacket {
            ty: ping.ty,
            zxid: ping.zxid,
            data: Some(self.to_data()),
            authinfo: ping.authinfo.clone(),
        }
    }
}

/// Learner→leader REVALIDATE data: `sessionId:long, timeout:int`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevalidateRequest {
    /// The session the client reconnected with.
    pub session_id: i64,
    /// Its timeout in ms.
    pub timeout: i32,
}

impl RevalidateRequest {
    /// The 12-byte data.
    pub fn to_data(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(12);
        buf.put_i64(self.session_id);
        buf.put_i32(self.timeout);
        buf.freeze()
    }

    /// Parses exactly 12 bytes.
    pub fn from_data(data: Option<&[u8]>) -> Result<Self, QuorumError> {
        let mut d = exact("REVALIDATE request", data, 12)?;
        Ok(RevalidateRequest {
            session_id: d.get_i64(),
            timeout: d.get_i32(),
        })
    }

    /// REVALIDATE (zxid -1).
    pub fn packet(&self) -> QuorumPacket {
        QuorumPacket::new(PacketType::Revalidate, -1, Some(self.to_data()))
    }
}

/// Leader→learner REVALIDATE data: `sessionId:long, valid:boolean` (9 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevalidateReply {
    /// The session.
    pub session_id: i64,
    /// Whether it is still alive (the leader then makes this learner its owner).
    pub valid: bool,
}

impl RevalidateReply {
    /// The 9-byte data.
    pub fn to_data(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(9);
        buf.put_i64(self.session_id);
        buf.put_u8(u8::from(self.valid));
        buf.freeze()
    }

    /// Parses exactly 9 bytes (any non-zero byte is `true`, as Java reads it).
    pub fn from_data(data: Option<&[u8]>) -> Result<Self, QuorumError> {
        let mut d = exact("REVALIDATE reply", data, 9)?;
        Ok(RevalidateReply {
            session_id: d.get_i64(),
            valid: d.get_u8() != 0,
        })
    }

    /// The leader's answer: Apache sends the learner's packet back with only the data
    /// replaced (same type, zxid and authinfo).
    pub fn reply_to(&self, request: &QuorumPacket) -> QuorumPacket {
        QuorumPacket {
            data: Some(self.to_data()),
            ..request.clone()
        }
    }
}

/// COMMITANDACTIVATE data (`designatedLeader:long`) and the head of INFORMANDACTIVATE data
/// (`designatedLeader:long` followed by the proposal bytes: a [`TxnEntry`] whose record is
/// the reconfig's `SetDataTxn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activate {
    /// The sid the reconfiguration designates as leader.
    pub designated_leader: i64,
    /// The proposal (INFORMANDACTIVATE only).
    pub txn: Option<TxnEntry>,
}

impl Activate {
    /// The data bytes (8, or 8 + the txn).
    pub fn to_data(&self) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i64(self.designated_leader);
        if let Some(txn) = &self.txn {
            txn.encode(&mut buf);
        }
        buf.freeze()
    }

    /// Parses COMMITANDACTIVATE data (exactly 8 bytes).
    pub fn from_commit_data(data: Option<&[u8]>) -> Result<Self, QuorumError> {
        let mut d = exact("COMMITANDACTIVATE", data, 8)?;
        Ok(Activate {
            designated_leader: d.get_i64(),
            txn: None,
        })
    }

    /// Parses INFORMANDACTIVATE data (8 bytes + a txn entry).
    pub fn from_inform_data(data: Option<&[u8]>) -> Result<Self, QuorumError> {
        let Some(d) = data else {
            return Err(QuorumError::data(
                "INFORMANDACTIVATE",
                "null, expected data",
            ));
        };
        let mut d = d;
        let designated_leader = i64::decode(&mut d)?;
        Ok(Activate {
            designated_leader,
            txn: Some(TxnEntry::from_bytes(d)?),
        })
    }

    /// COMMITANDACTIVATE of `zxid`, or INFORMANDACTIVATE when a txn is present.
    pub fn packet(&self, zxid: i64) -> QuorumPacket {
        let ty = if self.txn.is_some() {
            PacketType::InformAndActivate
        } else {
            PacketType::CommitAndActivate
        };
        QuorumPacket::new(ty, zxid, Some(self.to_data()))
    }
}

/// NEWLEADER data: the leader's quorum config as text (`server.N=...` lines and
/// `version=<hex>`), UTF-8. `None` when null (pre-0x10000 learners).
pub fn new_leader_config(data: Option<&[u8]>) -> Option<String> {
    data.map(|d| String::from_utf8_lossy(d).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{hex, roundtrip};

    #[test]
    fn learner_info_bytes_and_short_forms() {
        let info = LearnerInfo::new(2, 0);
        let bytes = roundtrip(&info);
        assert_eq!(
            &bytes[..],
            &hex("0000000000000002 00010000 0000000000000000")[..]
        );
        let full = LearnerInfo::from_data(Some(&bytes));
        assert_eq!(full.server_id, Some(2));
        assert_eq!(full.protocol_version, 0x10000);
        assert_eq!(full.config_version, Some(0));
        let v34 = LearnerInfo::from_data(Some(&bytes[..12]));
        assert_eq!((v34.server_id, v34.config_version), (Some(2), None));
        let old = LearnerInfo::from_data(Some(&bytes[..8]));
        assert_eq!((old.server_id, old.protocol_version), (Some(2), 1));
        assert_eq!(LearnerInfo::from_data(None).server_id, None);
        assert_eq!(LearnerInfo::from_data(Some(&bytes[..5])).server_id, None);
        let p = info.follower_info(3);
        assert_eq!(
            (p.packet_type(), p.zxid),
            (Ok(PacketType::FollowerInfo), 3 << 32)
        );
    }

    #[test]
    fn epoch_packets() {
        let li = LeaderInfo::packet(4);
        assert_eq!(li.zxid, 0x4_0000_0000);
        assert_eq!(
            LeaderInfo::from_data(li.data()),
            Ok(LeaderInfo {
                protocol_version: 0x10000
            })
        );
        let ack = AckEpoch { current_epoch: -1 };
        assert!(!ack.is_ack());
        assert_eq!(&ack.to_data()[..], &[0xff; 4]);
        assert_eq!(AckEpoch::from_data(ack.packet(7).data()), Ok(ack));
        assert!(AckEpoch::from_data(Some(&[0, 0, 1])).is_err());
        assert!(AckEpoch::from_data(None).is_err());
    }

    #[test]
    fn request_touches_revalidate() {
        let r = LearnerRequest {
            session_id: 0x100,
            cxid: 3,
            op: OpCode::Create.into(),
            body: Bytes::from_static(b"body"),
        };
        let p = r.packet(Some(vec![Id::new("ip", "127.0.0.1")]));
        assert_eq!(LearnerRequest::from_data(p.data()), Ok(r.clone()));
        assert_eq!(r.op_code(), Ok(OpCode::Create));
        assert!(LearnerRequest::from_data(Some(&[0; 15])).is_err());

        let t = SessionTouches(vec![SessionTouch {
            session_id: 9,
            timeout: 4000,
        }]);
        let reply = t.reply_to(&QuorumPacket::ping(0x1_0000_0005));
        assert_eq!(reply.zxid, 0x1_0000_0005);
        assert_eq!(SessionTouches::from_data(reply.data()), Ok(t));
        assert_eq!(
            SessionTouches::from_data(None),
            Ok(SessionTouches::default())
        );
        assert!(SessionTouches::from_data(Some(&[0; 13])).is_err());

        let rq = RevalidateRequest {
            session_id: 5,
            timeout: 6000,
        };
        let p = rq.packet();
        assert_eq!(RevalidateRequest::from_data(p.data()), Ok(rq));
        let ans = RevalidateReply {
            session_id: 5,
            valid: true,
        }
        .reply_to(&p);
        assert_eq!((ans.ty, ans.zxid), (6, -1));
        assert_eq!(
            RevalidateReply::from_data(ans.data()).map(|r| r.valid),
            Ok(true)
        );
    }

    #[test]
    fn commit_and_activate() {
        let a = Activate {
            designated_leader: 3,
            txn: None,
        };
        let p = a.packet(0x1_0000_0009);
        assert_eq!(p.packet_type(), Ok(PacketType::CommitAndActivate));
        assert_eq!(Activate::from_commit_data(p.data()), Ok(a));
    }
}
