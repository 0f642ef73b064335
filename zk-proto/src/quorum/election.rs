//! The leader-election port (`server.N=host:quorumPort:electionPort`, the second port).
//!
//! A connection starts with an [`InitialMessage`] from the dialling side (no length prefix),
//! then both sides exchange messages framed as `length:int` + `length` bytes with
//! `1 ≤ length ≤ 524288` ([`MAX_MESSAGE_LEN`], Apache's `QuorumCnxManager.PACKETMAXSIZE`).
//! The only message fast leader election sends is the [`Notification`].
//!
//! The sender's sid is not in a notification: the receiver knows it from the connection's
//! initial message.
//!
//! ```
//! use bytes::BytesMut;
//! use zk_proto::quorum::election::{self, InitialMessage, Notification, ServerState};
//!
//! let mut wire = BytesMut::new();
//! InitialMessage::v1(3, "127.0.0.1:3888").encode_to(&mut wire);
//! let vote = Notification::new(ServerState::Looking, 3, 0x1_0000_0002, 1, 1, b"version=0".to_vec().into());
//! election::encode_frame(&mut wire, &vote.to_message());
//!
//! let hello = InitialMessage::parse(&mut wire)?.expect("complete");
//! assert_eq!(hello.sid(), 3);
//! let message = election::parse_frame(&mut wire)?.expect("complete");
//! let received = Notification::from_message(&message)?;
//! assert_eq!(received.state(), Ok(ServerState::Looking));
//! assert_eq!(received.peer_epoch(), 1);
//! # Ok::<(), zk_proto::quorum::QuorumError>(())
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::codec::UnknownValue;

use super::QuorumError;
use super::packet::zxid_epoch;

/// First long of an initial message carrying one election address (`host:port`).
pub const PROTOCOL_VERSION_V1: i64 = -65536;
/// First long of an initial message carrying `|`-separated addresses (multi-address).
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// The sid observers may announce (Apache then assigns them a negative counter sid).
pub const OBSERVER_ID: i64 = i64::MAX;
/// Largest address text in an initial message (Apache's `QuorumCnxManager.maxBuffer`).
pub const MAX_ADDRESS_LEN: usize = 2048;
/// Largest election message (Apache's `QuorumCnxManager.PACKETMAXSIZE`, 512 KiB).
pub const MAX_MESSAGE_LEN: usize = 512 * 1024;
/// The notification format version Apache 3.5+ sends.
pub const NOTIFICATION_VERSION: i32 = 2;

code_enum! {
    /// A server's state as sent in notifications (Java `QuorumPeer.ServerState`).
    pub enum ServerState("server state") {
        /// Electing.
        Looking = 0 => "LOOKING",
        /// Following a leader.
        Following = 1 => "FOLLOWING",
        /// Leading.
        Leading = 2 => "LEADING",
        /// Observing a leader.
        Observing = 3 => "OBSERVING",
    }
}

/// The first bytes on an election connection, sent by the dialling server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitialMessage {
    /// Pre-3.5 form: only the sid (a first long ≥ 0).
    Bare {
        /// The sender's sid.
        sid: i64,
    },
    /// 3.5+ form: `protocolVersion:long, sid:long, len:int, address` (UTF-8, `host:port`,
    /// several joined by `|` for [`PROTOCOL_VERSION_V2`]). The receiver dials the address
    /// back when the sender's sid is smaller than its own.
    Addressed {
        /// [`PROTOCOL_VERSION_V1`] or [`PROTOCOL_VERSION_V2`].
        protocol_version: i64,
        /// The sender's sid ([`OBSERVER_ID`] for an observer that hides its sid).
        sid: i64,
        /// The sender's election address(es).
        address: String,
    },
}

impl InitialMessage {
    /// The [`PROTOCOL_VERSION_V1`] form Apache sends unless multi-address is enabled.
    pub fn v1(sid: i64, address: impl Into<String>) -> Self {
        InitialMessage::Addressed {
            protocol_version: PROTOCOL_VERSION_V1,
            sid,
            address: address.into(),
        }
    }

    /// The sender's sid.
    pub fn sid(&self) -> i64 {
        match self {
            InitialMessage::Bare { sid } | InitialMessage::Addressed { sid, .. } => *sid,
        }
    }

    /// The announced election addresses (`host:port` each), empty for the bare form.
    pub fn addresses(&self) -> Vec<&str> {
        match self {
            InitialMessage::Bare { .. } => Vec::new(),
            InitialMessage::Addressed { address, .. } => address.split('|').collect(),
        }
    }

    /// Appends the encoding.
    pub fn encode_to(&self, buf: &mut BytesMut) {
        match self {
            InitialMessage::Bare { sid } => buf.put_i64(*sid),
            InitialMessage::Addressed {
                protocol_version,
                sid,
                address,
            } => {
                buf.put_i64(*protocol_version);
                buf.put_i64(*sid);
                buf.put_i32(i32::try_from(address.len()).unwrap_or(i32::MAX));
                buf.put_slice(address.as_bytes());
            }
        }
    }

    /// The encoding.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::new();
        self.encode_to(&mut buf);
        buf.freeze()
    }

    /// Checks whether `buf` starts with a whole initial message: its length, `Ok(None)`
    /// while incomplete, `Err` for an unknown protocol version or an address length outside
    /// `1..=2048` (checked before the address arrives).
    pub fn check(buf: &[u8]) -> Result<Option<usize>, QuorumError> {
        let Some(first) = buf.first_chunk::<8>() else {
            return Ok(None);
        };
        let first = i64::from_be_bytes(*first);
        if first >= 0 {
            return Ok(Some(8));
        }
        if first != PROTOCOL_VERSION_V1 && first != PROTOCOL_VERSION_V2 {
            return Err(QuorumError::ProtocolVersion(first));
        }
        let Some(len) = buf.get(16..20) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        let ok = usize::try_from(len)
            .ok()
            .filter(|l| (1..=MAX_ADDRESS_LEN).contains(l));
        let Some(len) = ok else {
            return Err(QuorumError::AddressLength(len));
        };
        Ok((buf.len() >= 20 + len).then_some(20 + len))
    }

    /// Splits a whole initial message off the front of `buf`; `Ok(None)` (nothing consumed)
    /// while incomplete. The address is decoded as UTF-8, invalid sequences replaced.
    pub fn parse(buf: &mut BytesMut) -> Result<Option<Self>, QuorumError> {
        let Some(len) = Self::check(buf)? else {
            return Ok(None);
        };
        let mut bytes = buf.split_to(len);
        let first = bytes.get_i64();
        if first >= 0 {
            return Ok(Some(InitialMessage::Bare { sid: first }));
        }
        let sid = bytes.get_i64();
        bytes.advance(4);
        Ok(Some(InitialMessage::Addressed {
            protocol_version: first,
            sid,
            address: String::from_utf8_lossy(&bytes).into_owned(),
        }))
    }
}

/// Checks whether `buf` starts with a whole election message: its total length (prefix
/// included), `Ok(None)` while incomplete, [`QuorumError::MessageLength`] for a length
/// outside `1..=524288` (checked as soon as the 4 length bytes are there).
pub fn check_frame(buf: &[u8]) -> Result<Option<usize>, QuorumError> {
    let Some(prefix) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = i32::from_be_bytes(*prefix);
    let ok = usize::try_from(len)
        .ok()
        .filter(|l| (1..=MAX_MESSAGE_LEN).contains(l));
    let Some(len) = ok else {
        return Err(QuorumError::MessageLength(len));
    };
    Ok((buf.len() >= 4 + len).then_some(4 + len))
}

/// Splits the next election message off the front of `buf` and returns its body (without
/// the length); `Ok(None)` (nothing consumed) while incomplete.
pub fn parse_frame(buf: &mut BytesMut) -> Result<Option<Bytes>, QuorumError> {
    let Some(total) = check_frame(buf)? else {
        return Ok(None);
    };
    let mut frame = buf.split_to(total);
    frame.advance(4);
    Ok(Some(frame.freeze()))
}

/// Appends `message` with its length prefix.
pub fn encode_frame(buf: &mut BytesMut, message: &[u8]) {
    buf.put_i32(i32::try_from(message.len()).unwrap_or(i32::MAX));
    buf.put_slice(message);
}

/// A fast-leader-election notification: the sender's state and current vote.
///
/// Wire layout (big-endian): `state:int, leader:long, zxid:long, electionEpoch:long`
/// (28 bytes), then `peerEpoch:long` (36), then `version:int` (40), then for version > 1
/// `configLength:int` + config text. Apache reads three forms, by message length:
///
/// * exactly 28 bytes: no peerEpoch (derived from the zxid's epoch);
/// * exactly 40 bytes: peerEpoch; the last 4 bytes are ignored (Java's `buildMsg` without
///   config writes version 1 there);
/// * anything else ≥ 44 (41 with version ≤ 1): peerEpoch and version; config only if
///   version > 1. Bytes after what was read are ignored.
///
/// Other lengths are skipped by Apache and refused here. The fields below keep which parts
/// were present (and the ignored bytes) so re-encoding reproduces the message exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The sender's raw state; see [`Notification::state`].
    pub state: i32,
    /// The proposed leader's sid.
    pub leader: i64,
    /// The proposed leader's last logged zxid.
    pub zxid: i64,
    /// The sender's election round (logical clock).
    pub election_epoch: i64,
    /// The proposed leader's currentEpoch; `None` in the 28-byte form (see
    /// [`Notification::peer_epoch`]).
    pub peer_epoch_field: Option<i64>,
    /// The format version; `None` in the 28- and 40-byte forms.
    pub version: Option<i32>,
    /// The sender's quorum config text; present when `version > 1`.
    pub config: Option<Bytes>,
    /// Bytes the receiver does not interpret: the last 4 of the 40-byte form, anything after
    /// the config. Normally empty.
    pub ignored: Bytes,
}

impl Notification {
    /// A current-format (version 2) notification, as Apache 3.5+ sends.
    pub fn new(
        state: ServerState,
        leader: i64,
        zxid: i64,
        election_epoch: i64,
        peer_epoch: i64,
        config: Bytes,
    ) -> Self {
        Notification {
            state: state.into(),
            leader,
            zxid,
            election_epoch,
            peer_epoch_field: Some(peer_epoch),
            version: Some(NOTIFICATION_VERSION),
            config: Some(config),
            ignored: Bytes::new(),
        }
    }

    /// The sender's state, if known.
    pub fn state(&self) -> Result<ServerState, UnknownValue> {
        ServerState::try_from(self.state)
    }

    /// The proposed leader's epoch: the field, or the zxid's epoch in the 28-byte form.
    pub fn peer_epoch(&self) -> i64 {
        self.peer_epoch_field.unwrap_or(zxid_epoch(self.zxid))
    }

    /// The format version as Apache interprets it (0 when absent).
    pub fn format_version(&self) -> i32 {
        self.version.unwrap_or(0)
    }

    /// The config text (lossy UTF-8), when present.
    pub fn config_text(&self) -> Option<String> {
        self.config
            .as_deref()
            .map(|c| String::from_utf8_lossy(c).into_owned())
    }

    /// Parses a whole message body (as returned by [`parse_frame`]).
    pub fn from_message(message: &[u8]) -> Result<Self, QuorumError> {
        let len = message.len();
        let malformed = |why| QuorumError::Notification { len, why };
        if len < 28 {
            return Err(malformed("shorter than 28 bytes"));
        }
        let mut buf = message;
        let mut n = Notification {
            state: buf.get_i32(),
            leader: buf.get_i64(),
            zxid: buf.get_i64(),
            election_epoch: buf.get_i64(),
            peer_epoch_field: None,
            version: None,
            config: None,
            ignored: Bytes::new(),
        };
        if len == 28 {
            return Ok(n);
        }
        if len < 40 {
            return Err(malformed("cut inside peerEpoch/version"));
        }
        n.peer_epoch_field = Some(buf.get_i64());
        if len > 40 {
            let version = buf.get_i32();
            n.version = Some(version);
            if version > 1 {
                if buf.remaining() < 4 {
                    return Err(malformed("no configLength"));
                }
                let config_len = buf.get_i32();
                let fits = usize::try_from(config_len)
                    .ok()
                    .filter(|l| *l <= buf.remaining());
                let Some(config_len) = fits else {
                    return Err(malformed("configLength does not fit the message"));
                };
                n.config = Some(Bytes::copy_from_slice(&buf[..config_len]));
                buf.advance(config_len);
            }
        }
        n.ignored = Bytes::copy_from_slice(buf);
        Ok(n)
    }

    /// The message body (without the length prefix).
    pub fn to_message(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.message_len());
        buf.put_i32(self.state);
        buf.put_i64(self.leader);
        buf.put_i64(self.zxid);
        buf.put_i64(self.election_epoch);
        if let Some(e) = self.peer_epoch_field {
            buf.put_i64(e);
        }
        if let Some(v) = self.version {
            buf.put_i32(v);
        }
        if let Some(c) = &self.config {
            buf.put_i32(i32::try_from(c.len()).unwrap_or(i32::MAX));
            buf.put_slice(c);
        }
        buf.put_slice(&self.ignored);
        buf.freeze()
    }

    /// Length of [`to_message`](Self::to_message).
    pub fn message_len(&self) -> usize {
        28 + self.peer_epoch_field.map_or(0, |_| 8)
            + self.version.map_or(0, |_| 4)
            + self.config.as_ref().map_or(0, |c| 4 + c.len())
            + self.ignored.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::hex;

    #[test]
    fn server_states() {
        assert_eq!(ServerState::try_from(2), Ok(ServerState::Leading));
        assert_eq!(ServerState::Observing.as_i32(), 3);
        assert!(ServerState::try_from(4).is_err());
    }

    #[test]
    fn initial_message_forms() {
        let m = InitialMessage::v1(1, "127.0.0.1:3888");
        let bytes = m.to_bytes();
        assert_eq!(
            &bytes[..20],
            &hex("ffffffffffff0000 0000000000000001 0000000e")[..]
        );
        for cut in 0..bytes.len() {
            let mut b = BytesMut::from(&bytes[..cut]);
            assert_eq!(InitialMessage::parse(&mut b), Ok(None), "cut {cut}");
            assert_eq!(b.len(), cut);
        }
        let mut b = BytesMut::from(&bytes[..]);
        b.put_u8(9);
        assert_eq!(InitialMessage::parse(&mut b), Ok(Some(m)));
        assert_eq!(&b[..], &[9]);

        let mut bare = BytesMut::from(&hex("0000000000000005")[..]);
        let m = InitialMessage::parse(&mut bare).unwrap().unwrap();
        assert_eq!((m.sid(), m.addresses().len()), (5, 0));

        let v2 = InitialMessage::Addressed {
            protocol_version: PROTOCOL_VERSION_V2,
            sid: 2,
            address: "a:1|b:2".into(),
        };
        assert_eq!(v2.addresses(), vec!["a:1", "b:2"]);

        let mut bad = BytesMut::from(&hex("ffffffffffff0002")[..]);
        assert_eq!(
            InitialMessage::parse(&mut bad),
            Err(QuorumError::ProtocolVersion(-65535 + 1))
        );
        for len in ["00000000", "00000801", "ffffffff"] {
            let mut bad =
                BytesMut::from(&hex(&format!("ffffffffffff0000 0000000000000001 {len}"))[..]);
            assert!(matches!(
                InitialMessage::parse(&mut bad),
                Err(QuorumError::AddressLength(_))
            ));
        }
    }

    #[test]
    fn frames() {
        let mut b = BytesMut::new();
        encode_frame(&mut b, b"abc");
        assert_eq!(check_frame(&b[..3]), Ok(None));
        assert_eq!(check_frame(&b[..6]), Ok(None));
        assert_eq!(parse_frame(&mut b), Ok(Some(Bytes::from_static(b"abc"))));
        for bad in [0i32, -1, 524_289] {
            assert_eq!(
                check_frame(&bad.to_be_bytes()),
                Err(QuorumError::MessageLength(bad))
            );
        }
        let mut max = BytesMut::new();
        max.put_i32(524_288);
        assert_eq!(check_frame(&max), Ok(None));
    }

    #[test]
    fn notification_forms() {
        let current = Notification::new(
            ServerState::Looking,
            3,
            0x2_0000_0001,
            5,
            2,
            Bytes::from_static(b"server.1=x\nversion=0"),
        );
        let msg = current.to_message();
        assert_eq!(msg.len(), 44 + 20);
        assert_eq!(Notification::from_message(&msg), Ok(current.clone()));
        assert_eq!(
            current.config_text().as_deref(),
            Some("server.1=x\nversion=0")
        );

        // 28 bytes: peer epoch derived from the zxid.
        let short = Notification::from_message(&msg[..28]).unwrap();
        assert_eq!(short.peer_epoch(), 2);
        assert_eq!(short.peer_epoch_field, None);
        assert_eq!(&short.to_message()[..], &msg[..28]);

        // 40 bytes: the "version" slot is ignored.
        let forty = Notification::from_message(&msg[..40]).unwrap();
        assert_eq!((forty.version, forty.ignored.len()), (None, 4));
        assert_eq!(forty.format_version(), 0);
        assert_eq!(&forty.to_message()[..], &msg[..40]);

        // Cut inside the config, or inside peerEpoch: malformed.
        for cut in (0..28).chain(29..40).chain(41..msg.len()) {
            assert!(
                Notification::from_message(&msg[..cut]).is_err(),
                "cut {cut}"
            );
        }
        assert!(Notification::from_message(&msg[..50]).is_err());
        assert!(Notification::from_message(&msg[..27]).is_err());
        assert!(Notification::from_message(&msg[..39]).is_err());

        // Version 1 with extra bytes: nothing read after the version.
        let mut v1 = msg[..40].to_vec();
        v1[36..40].copy_from_slice(&1i32.to_be_bytes());
        v1.extend_from_slice(b"zz");
        let n = Notification::from_message(&v1).unwrap();
        assert_eq!(
            (n.version, n.config.is_none(), &n.ignored[..]),
            (Some(1), true, &b"zz"[..])
        );
        assert_eq!(&n.to_message()[..], &v1[..]);

        // Trailing bytes after the config are kept.
        let mut extra = msg.to_vec();
        extra.push(7);
        let n = Notification::from_message(&extra).unwrap();
        assert_eq!(&n.ignored[..], &[7]);
        assert_eq!(&n.to_message()[..], &extra[..]);
        assert_eq!(n.message_len(), extra.len());
    }
}
