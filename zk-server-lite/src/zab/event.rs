//! What happens to a Zab member: inputs to [`Zab::step`](super::Zab::step). Requests from
//! the member's own server (propose, forward, revalidate, …) are methods on
//! [`Zab`](super::Zab) instead, because they answer at once.

use super::Sid;
use super::message::{Message, Notification};
use super::zxid::Zxid;

/// An input from the network, the storage or the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The time given to `step` has reached [`Zab::poll_timeout`](super::Zab::poll_timeout).
    Timeout,
    /// An election notification from `from` (over the election port).
    Notification {
        /// The sender.
        from: Sid,
        /// What it says.
        notification: Notification,
    },
    /// A learner's connection to the leader it asked for (`Action::ConnectToLeader`) is up.
    LeaderConnected,
    /// A packet on a quorum connection: from the leader (on a learner) or from the learner
    /// `from` (on the leader). A leader learns a learner's sid from its FOLLOWERINFO /
    /// OBSERVERINFO; the peer layer tags every later packet of that connection with it.
    Packet {
        /// The sender.
        from: Sid,
        /// The packet.
        message: Message,
    },
    /// The quorum connection with `sid` closed (on a learner: with the leader). A peer layer
    /// that replaces a learner's connection reports the old one lost before the new one's
    /// first packet.
    PeerLost {
        /// The other end.
        sid: Sid,
    },
    /// Every txn appended up to `zxid` is durable (a log fsync completed).
    Logged {
        /// The last durable zxid.
        zxid: Zxid,
    },
    /// The storage could not run `Action::Truncate` (a snapshot newer than the target:
    /// a snapshot cannot be cut) and kept everything; `last_zxid` is what it holds. The
    /// learner leaves the leader and elects again; it rejoins by SNAP once the leader's
    /// history has moved past it.
    TruncateRefused {
        /// The last zxid the storage holds.
        last_zxid: Zxid,
    },
}
