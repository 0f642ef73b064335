//! Zab's messages on Apache's wire (PROTOCOL.md 3.2–3.4): the engine's typed
//! [`Message`]s ↔ jute [`QuorumPacket`]s, and its [`Notification`]s ↔ FLE notifications
//! (format version 2), using the records of [`zk_proto::quorum`]. Pure functions: the
//! peer sockets call them; the golden test maps every packet a real Apache 3.8 ensemble
//! sent through them and back to the same bytes.

use bytes::Bytes;
use zk_proto::UnknownValue;
use zk_proto::quorum::election::{self, ServerState};
use zk_proto::quorum::learner::{
    AckEpoch, LeaderInfo, LearnerInfo, RevalidateReply, RevalidateRequest, SessionTouch,
    SessionTouches,
};
use zk_proto::quorum::{PacketType, QuorumError, QuorumPacket};

use crate::zab::{Message, Notification, PeerState, Proposal, Sid, Vote, zxid};

/// A packet or notification that does not make sense here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// An unknown packet type or server state.
    #[error("{0}")]
    Unknown(#[from] UnknownValue),
    /// A record that does not decode.
    #[error("malformed: {0}")]
    Malformed(#[from] QuorumError),
    /// A packet's data did not decode.
    #[error("bad {packet} data: {source}")]
    Data {
        /// The packet type.
        packet: &'static str,
        /// Why.
        source: QuorumError,
    },
    /// A packet that this side never receives (e.g. PROPOSAL from a learner).
    #[error("{packet} is not expected from a {from}")]
    Unexpected {
        /// The packet type.
        packet: &'static str,
        /// "leader" or "learner".
        from: &'static str,
    },
}

impl WireError {
    /// Always false: a peer that sends nonsense is disconnected; it reconnects and syncs.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Who sent a quorum packet: PING and REVALIDATE have one layout per direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// The leader (the packet arrived on a learner).
    Leader,
    /// A learner (the packet arrived on the leader).
    Learner,
}

impl Sender {
    fn name(self) -> &'static str {
        match self {
            Sender::Leader => "leader",
            Sender::Learner => "learner",
        }
    }
}

/// What a member puts in the packets that carry its identity or configuration.
#[derive(Debug, Clone, Default)]
pub struct WireContext {
    /// This member's id (FOLLOWERINFO / OBSERVERINFO).
    pub myid: Sid,
    /// The version of its quorum configuration (LearnerInfo).
    pub config_version: i64,
    /// Its configuration text (NEWLEADER data).
    pub config: Option<Bytes>,
}

/// A message on the wire: the packet, and for SNAP the snapshot stream that follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The packet.
    pub packet: QuorumPacket,
    /// Bytes written right after the packet (SNAP's snapshot + `BenWasHere`).
    pub trailer: Option<Bytes>,
}

/// An engine message as Apache writes it, sent by `sender`.
pub fn encode(message: &Message, sender: Sender, ctx: &WireContext) -> Outgoing {
    let packet = match message {
        Message::FollowerInfo { accepted_epoch } => {
            LearnerInfo::new(ctx.myid, ctx.config_version).follower_info(*accepted_epoch)
        }
        Message::ObserverInfo { accepted_epoch } => {
            LearnerInfo::new(ctx.myid, ctx.config_version).observer_info(*accepted_epoch)
        }
        Message::LeaderInfo { epoch } => LeaderInfo::packet(*epoch),
        Message::AckEpoch {
            current_epoch,
            last_zxid,
        } => AckEpoch {
            // Apache writes currentEpoch as an int.
            current_epoch: i32::try_from(*current_epoch).unwrap_or(-1),
        }
        .packet(*last_zxid),
        Message::Diff { zxid } => QuorumPacket::diff(*zxid),
        Message::Trunc { zxid } => QuorumPacket::trunc(*zxid),
        Message::Snap { zxid, snapshot } => {
            return Outgoing {
                packet: QuorumPacket::snap(*zxid),
                trailer: Some(snapshot.clone()),
            };
        }
        Message::Proposal(p) => {
            QuorumPacket::new(PacketType::Proposal, p.zxid, Some(p.data.clone()))
        }
        Message::Inform(p) => QuorumPacket::new(PacketType::Inform, p.zxid, Some(p.data.clone())),
        Message::Commit { zxid } => QuorumPacket::commit(*zxid),
        Message::NewLeader { zxid: z } => {
            QuorumPacket::new_leader(zxid::epoch(*z), ctx.config.clone())
        }
        Message::Ack { zxid } => QuorumPacket::ack(*zxid),
        Message::UpToDate => QuorumPacket::up_to_date(),
        Message::Ping { zxid, .. } if sender == Sender::Leader => QuorumPacket::ping(*zxid),
        Message::Ping { zxid, touches } => {
            // A learner's answer always has data, empty when no session was touched.
            let touches = SessionTouches(
                touches
                    .iter()
                    .map(|&(session_id, timeout)| SessionTouch {
                        session_id,
                        timeout,
                    })
                    .collect(),
            );
            touches.reply_to(&QuorumPacket::ping(*zxid))
        }
        Message::Request { data, auth } => {
            let mut p = QuorumPacket::new(PacketType::Request, -1, Some(data.clone()));
            // Apache writes a null list when the connection has no ids.
            p.authinfo = (!auth.is_empty()).then(|| auth.clone());
            p
        }
        Message::Revalidate { session, timeout } => RevalidateRequest {
            session_id: *session,
            timeout: *timeout,
        }
        .packet(),
        Message::RevalidateReply { session, valid } => QuorumPacket::new(
            PacketType::Revalidate,
            -1,
            Some(
                RevalidateReply {
                    session_id: *session,
                    valid: *valid,
                }
                .to_data(),
            ),
        ),
        Message::Sync => QuorumPacket::sync(),
    };
    Outgoing {
        packet,
        trailer: None,
    }
}

/// A received packet as an engine message. SNAP's snapshot is read by the caller from
/// the stream after it and passed in `snapshot`.
pub fn decode(
    packet: &QuorumPacket,
    sender: Sender,
    snapshot: Option<Bytes>,
) -> Result<Message, WireError> {
    let ty = packet.packet_type()?;
    let name = ty.name();
    let data = packet.data();
    let bad = |source| WireError::Data {
        packet: name,
        source,
    };
    let unexpected = || WireError::Unexpected {
        packet: name,
        from: sender.name(),
    };
    let z = packet.zxid;
    Ok(match (sender, ty) {
        (Sender::Learner, PacketType::FollowerInfo) => Message::FollowerInfo {
            accepted_epoch: zxid::epoch(z),
        },
        (Sender::Learner, PacketType::ObserverInfo) => Message::ObserverInfo {
            accepted_epoch: zxid::epoch(z),
        },
        (Sender::Leader, PacketType::LeaderInfo) => {
            LeaderInfo::from_data(data).map_err(bad)?;
            Message::LeaderInfo {
                epoch: zxid::epoch(z),
            }
        }
        (Sender::Learner, PacketType::AckEpoch) => {
            let a = AckEpoch::from_data(data).map_err(bad)?;
            Message::AckEpoch {
                current_epoch: i64::from(a.current_epoch),
                last_zxid: z,
            }
        }
        (Sender::Leader, PacketType::Diff) => Message::Diff { zxid: z },
        (Sender::Leader, PacketType::Trunc) => Message::Trunc { zxid: z },
        (Sender::Leader, PacketType::Snap) => Message::Snap {
            zxid: z,
            snapshot: snapshot.unwrap_or_default(),
        },
        (Sender::Leader, PacketType::Proposal) => Message::Proposal(Proposal {
            zxid: z,
            data: data.map(Bytes::copy_from_slice).unwrap_or_default(),
        }),
        (Sender::Leader, PacketType::Inform) => Message::Inform(Proposal {
            zxid: z,
            data: data.map(Bytes::copy_from_slice).unwrap_or_default(),
        }),
        (Sender::Leader, PacketType::Commit) => Message::Commit { zxid: z },
        (Sender::Leader, PacketType::NewLeader) => Message::NewLeader { zxid: z },
        (Sender::Learner, PacketType::Ack) => Message::Ack { zxid: z },
        (Sender::Leader, PacketType::UpToDate) => Message::UpToDate,
        (Sender::Leader, PacketType::Ping) => Message::Ping {
            zxid: z,
            touches: Vec::new(),
        },
        (Sender::Learner, PacketType::Ping) => Message::Ping {
            zxid: z,
            touches: SessionTouches::from_data(data)
                .map_err(bad)?
                .0
                .into_iter()
                .map(|t| (t.session_id, t.timeout))
                .collect(),
        },
        (Sender::Learner, PacketType::Request) => Message::Request {
            data: data.map(Bytes::copy_from_slice).unwrap_or_default(),
            auth: packet.authinfo.clone().unwrap_or_default(),
        },
        (Sender::Learner, PacketType::Revalidate) => {
            let r = RevalidateRequest::from_data(data).map_err(bad)?;
            Message::Revalidate {
                session: r.session_id,
                timeout: r.timeout,
            }
        }
        (Sender::Leader, PacketType::Revalidate) => {
            let r = RevalidateReply::from_data(data).map_err(bad)?;
            Message::RevalidateReply {
                session: r.session_id,
                valid: r.valid,
            }
        }
        (Sender::Leader, PacketType::Sync) => Message::Sync,
        _ => return Err(unexpected()),
    })
}

/// The sid a FOLLOWERINFO / OBSERVERINFO announces.
pub fn learner_sid(packet: &QuorumPacket) -> Option<Sid> {
    LearnerInfo::from_data(packet.data()).server_id
}

fn server_state(s: PeerState) -> ServerState {
    match s {
        PeerState::Looking => ServerState::Looking,
        PeerState::Following => ServerState::Following,
        PeerState::Leading => ServerState::Leading,
        PeerState::Observing => ServerState::Observing,
    }
}

/// An engine notification as Apache's FLE writes it (version 2, with the config text).
pub fn encode_notification(n: &Notification, config: Bytes) -> election::Notification {
    election::Notification::new(
        server_state(n.state),
        n.vote.leader,
        n.vote.zxid,
        n.round,
        n.vote.peer_epoch,
        config,
    )
}

/// A received FLE notification (any of the 28-byte, 40-byte or full forms).
pub fn decode_notification(n: &election::Notification) -> Result<Notification, WireError> {
    let state = match n.state()? {
        ServerState::Looking => PeerState::Looking,
        ServerState::Following => PeerState::Following,
        ServerState::Leading => PeerState::Leading,
        ServerState::Observing => PeerState::Observing,
    };
    Ok(Notification {
        state,
        vote: Vote {
            leader: n.leader,
            zxid: n.zxid,
            peer_epoch: n.peer_epoch(),
        },
        round: n.election_epoch,
    })
}
