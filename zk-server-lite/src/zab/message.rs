//! What Zab members say to each other, as typed values: election notifications and the
//! leader ↔ learner packets. The byte layouts (Apache's `QuorumPacket`, the FLE notification)
//! are the peer layer's business; each variant names the Apache packet it becomes.

use bytes::Bytes;
use zk_proto::records::Id;

use super::Sid;
use super::zxid::{Epoch, Zxid};

/// A transaction on its way through Zab: its zxid and its bytes (`TxnHeader` + txn record, as
/// the log stores them). Zab never looks inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The transaction's zxid.
    pub zxid: Zxid,
    /// The encoded transaction.
    pub data: Bytes,
}

/// A member's state as FLE reports it (wire numbers 0–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// Electing a leader.
    Looking,
    /// Following a leader.
    Following,
    /// Leading.
    Leading,
    /// Observing a leader (does not vote).
    Observing,
}

impl PeerState {
    /// The wire number.
    pub fn code(self) -> i32 {
        match self {
            PeerState::Looking => 0,
            PeerState::Following => 1,
            PeerState::Leading => 2,
            PeerState::Observing => 3,
        }
    }

    /// From the wire number.
    pub fn from_code(code: i32) -> Option<PeerState> {
        Some(match code {
            0 => PeerState::Looking,
            1 => PeerState::Following,
            2 => PeerState::Leading,
            3 => PeerState::Observing,
            _ => return None,
        })
    }

    /// Apache's name (`srvr`'s `Mode:` uses the lower-case role name).
    pub fn name(self) -> &'static str {
        match self {
            PeerState::Looking => "LOOKING",
            PeerState::Following => "FOLLOWING",
            PeerState::Leading => "LEADING",
            PeerState::Observing => "OBSERVING",
        }
    }
}

/// A vote: who should lead, and that candidate's last logged zxid and current epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    /// The proposed leader.
    pub leader: Sid,
    /// The proposed leader's last logged zxid.
    pub zxid: Zxid,
    /// The proposed leader's currentEpoch.
    pub peer_epoch: Epoch,
}

impl Vote {
    /// Apache's `totalOrderPredicate`: whether `self` beats `other` — higher epoch, then
    /// higher zxid, then higher sid. A candidate that is not a voter never wins (the caller
    /// checks that).
    pub fn beats(&self, other: &Vote) -> bool {
        (self.peer_epoch, self.zxid, self.leader) > (other.peer_epoch, other.zxid, other.leader)
    }
}

/// An FLE notification (format version 2). The sender's sid comes from the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    /// The sender's state.
    pub state: PeerState,
    /// The sender's vote.
    pub vote: Vote,
    /// The sender's election round (`logicalclock`; `electionEpoch` on the wire).
    pub round: i64,
}

/// A packet between a leader and a learner (Apache's `QuorumPacket` types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// FOLLOWERINFO (11): a follower announces itself (zxid `acceptedEpoch << 32`).
    FollowerInfo {
        /// The learner's acceptedEpoch.
        accepted_epoch: Epoch,
    },
    /// OBSERVERINFO (16): the same from an observer.
    ObserverInfo {
        /// The learner's acceptedEpoch.
        accepted_epoch: Epoch,
    },
    /// LEADERINFO (17): the epoch the leader proposes.
    LeaderInfo {
        /// The new epoch.
        epoch: Epoch,
    },
    /// ACKEPOCH (18): the learner promised the epoch (or had already: `current_epoch` -1).
    AckEpoch {
        /// The learner's currentEpoch, or -1 when it had already accepted this epoch.
        current_epoch: Epoch,
        /// The learner's last logged zxid.
        last_zxid: Zxid,
    },
    /// DIFF (13): the learner's log is a prefix of the leader's; missing txns follow.
    Diff {
        /// The leader's last committed zxid (informative only: never the learner's last zxid).
        zxid: Zxid,
    },
    /// TRUNC (14): drop logged txns after `zxid`.
    Trunc {
        /// The zxid to truncate to.
        zxid: Zxid,
    },
    /// SNAP (15) followed by the leader's state at `zxid`.
    Snap {
        /// The zxid of the snapshot.
        zxid: Zxid,
        /// The serialized state (opaque to Zab).
        snapshot: Bytes,
    },
    /// PROPOSAL (2).
    Proposal(Proposal),
    /// COMMIT (4).
    Commit {
        /// The committed zxid.
        zxid: Zxid,
    },
    /// INFORM (8): a committed txn, to an observer.
    Inform(Proposal),
    /// NEWLEADER (10): the end of the sync history (zxid `epoch << 32`).
    NewLeader {
        /// `epoch << 32`.
        zxid: Zxid,
    },
    /// ACK (3).
    Ack {
        /// The acked zxid (`epoch << 32` for NEWLEADER and UPTODATE).
        zxid: Zxid,
    },
    /// UPTODATE (12): start serving.
    UpToDate,
    /// PING (5): leader → learner with the last proposed zxid; the learner's answer carries
    /// the sessions its clients touched since the last one.
    Ping {
        /// The leader's last proposed zxid (echoed back).
        zxid: Zxid,
        /// `(session id, timeout)` pairs (learner → leader).
        touches: Vec<(i64, i32)>,
    },
    /// REQUEST (1): a client write (or sync) forwarded by a learner: opaque bytes
    /// (`sessionId`, `cxid`, `type`, body) and the client connection's auth ids.
    Request {
        /// The request.
        data: Bytes,
        /// The client connection's auth ids (the leader checks ACLs with them).
        auth: Vec<Id>,
    },
    /// REVALIDATE (6) learner → leader: is this session alive (a client moved here)?
    Revalidate {
        /// The session.
        session: i64,
        /// Its timeout.
        timeout: i32,
    },
    /// REVALIDATE (6) leader → learner: the answer.
    RevalidateReply {
        /// The session.
        session: i64,
        /// Whether it is alive (and now owned by the asking learner).
        valid: bool,
    },
    /// SYNC (7): the answer to a forwarded `sync`.
    Sync,
}

impl Message {
    /// Apache's packet name (for logs).
    pub fn name(&self) -> &'static str {
        match self {
            Message::FollowerInfo { .. } => "FOLLOWERINFO",
            Message::ObserverInfo { .. } => "OBSERVERINFO",
            Message::LeaderInfo { .. } => "LEADERINFO",
            Message::AckEpoch { .. } => "ACKEPOCH",
            Message::Diff { .. } => "DIFF",
            Message::Trunc { .. } => "TRUNC",
            Message::Snap { .. } => "SNAP",
            Message::Proposal(_) => "PROPOSAL",
            Message::Commit { .. } => "COMMIT",
            Message::Inform(_) => "INFORM",
            Message::NewLeader { .. } => "NEWLEADER",
            Message::Ack { .. } => "ACK",
            Message::UpToDate => "UPTODATE",
            Message::Ping { .. } => "PING",
            Message::Request { .. } => "REQUEST",
            Message::Revalidate { .. } | Message::RevalidateReply { .. } => "REVALIDATE",
            Message::Sync => "SYNC",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_order_is_epoch_then_zxid_then_sid() {
        let v = |leader, zxid, peer_epoch| Vote {
            leader,
            zxid,
            peer_epoch,
        };
        assert!(v(1, 5, 2).beats(&v(3, 9, 1)), "epoch first");
        assert!(v(1, 9, 1).beats(&v(3, 5, 1)), "then zxid");
        assert!(v(3, 5, 1).beats(&v(1, 5, 1)), "then sid");
        assert!(!v(1, 5, 1).beats(&v(1, 5, 1)));
    }

    #[test]
    fn state_codes() {
        for s in [
            PeerState::Looking,
            PeerState::Following,
            PeerState::Leading,
            PeerState::Observing,
        ] {
            assert_eq!(PeerState::from_code(s.code()), Some(s));
        }
        assert_eq!(PeerState::from_code(7), None);
    }
}
