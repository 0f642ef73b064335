//! What a Zab member asks its driver to do: outputs of [`Zab::step`](super::Zab::step).
//!
//! The driver runs actions **in order**, and every storage action except
//! [`Action::Append`] is complete (durable) before the next action runs. That is how the
//! engine states the orderings Zab's safety rests on (PROTOCOL.md 3.10): acceptedEpoch is
//! durable before ACKEPOCH is sent; the synced history is durable before currentEpoch, and
//! currentEpoch before the NEWLEADER ACK. Appends become durable in the background (group
//! commit) and the driver reports them with [`Event::Logged`](super::Event::Logged); ACKs
//! wait for that.

use bytes::Bytes;
use zk_proto::records::Id;

use super::Sid;
use super::message::{Message, Notification, PeerState, Proposal};
use super::zxid::{Epoch, Zxid};

/// One thing for the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an election notification to `to` (the peer layer keeps at most the latest one
    /// queued per peer, as Apache does).
    SendNotification {
        /// The receiver.
        to: Sid,
        /// The notification.
        notification: Notification,
    },
    /// Connect to the leader's quorum port, retrying until [`Event::LeaderConnected`] or
    /// until the engine gives up (it then sends [`Action::Disconnect`]).
    ///
    /// [`Event::LeaderConnected`]: super::Event::LeaderConnected
    ConnectToLeader {
        /// The leader.
        leader: Sid,
    },
    /// Send a packet on the quorum connection with `to`.
    Send {
        /// The receiver.
        to: Sid,
        /// The packet.
        message: Message,
    },
    /// Send SNAP with the state the member has applied (it is at `zxid`), then nothing else
    /// in between: the packets that follow continue from there.
    SendSnapshot {
        /// The learner.
        to: Sid,
        /// The zxid the applied state is at.
        zxid: Zxid,
    },
    /// Close the quorum connection with `sid` (or stop connecting to it).
    Disconnect {
        /// The other end.
        sid: Sid,
    },
    /// Durably store acceptedEpoch (temp file, fsync, rename, directory fsync).
    SaveAcceptedEpoch(Epoch),
    /// Durably store currentEpoch, then remove the updating-epoch mark if present.
    SaveCurrentEpoch(Epoch),
    /// Append a txn to the log (durable later: [`Event::Logged`](super::Event::Logged)).
    Append(Proposal),
    /// Make every appended txn durable now.
    SyncLog,
    /// Durably drop every logged txn after `zxid` and reload the state from storage. When
    /// the storage cannot (a snapshot newer than `zxid`), it changes nothing and reports
    /// [`Event::TruncateRefused`](super::Event::TruncateRefused) before the next event.
    Truncate(Zxid),
    /// Replace the state with a snapshot received from the leader and store it durably.
    InstallSnapshot {
        /// The snapshot's zxid.
        zxid: Zxid,
        /// The snapshot.
        snapshot: Bytes,
    },
    /// Apply a committed txn to the state (and answer the clients waiting for it).
    Apply(Proposal),
    /// Apply a txn this member logged but saw no commit for, as it leaves a role (Apache's
    /// fast-forward: when not serving, the state always equals the log; a new leader's
    /// TRUNC or SNAP removes it if it was never committed). No client waits for it.
    FastForward(Proposal),
    /// Durably mark "currentEpoch is being updated" before the NEWLEADER history is logged
    /// (Apache's `updatingEpoch` file); [`Action::SaveCurrentEpoch`] removes the mark. A
    /// member that restarts with the mark and a log whose last zxid is of a newer epoch
    /// than currentEpoch takes that epoch ([`Restored::updating_epoch`](super::Restored)).
    MarkUpdatingEpoch,
    /// Serve clients (after UPTODATE on a learner, after a quorum acked NEWLEADER on a
    /// leader).
    StartServing,
    /// Stop serving clients (close their connections: they reconnect and keep their
    /// sessions).
    StopServing,
    /// The member's state changed (for logs, `srvr` and tests).
    StateChanged {
        /// The new state.
        state: PeerState,
        /// The leader, when following or observing; the member itself when leading.
        leader: Option<Sid>,
        /// The epoch (the new epoch on a leader once fixed; otherwise currentEpoch).
        epoch: Epoch,
    },
    /// On the leader: a client request forwarded by learner `from` (REQUEST): the server
    /// preps it and proposes it like a local one.
    LearnerRequest {
        /// The learner.
        from: Sid,
        /// The request bytes.
        data: Bytes,
        /// The client connection's auth ids.
        auth: Vec<Id>,
    },
    /// On the leader: sessions touched on learner `from` (from its PING answer).
    TouchSessions {
        /// The learner.
        from: Sid,
        /// `(session, timeout)` pairs.
        touches: Vec<(i64, i32)>,
    },
    /// On the leader: learner `from` asks whether `session` is alive (a client moved there);
    /// answer with [`Zab::answer_revalidate`](super::Zab::answer_revalidate).
    RevalidateRequest {
        /// The learner.
        from: Sid,
        /// The session.
        session: i64,
        /// Its timeout.
        timeout: i32,
    },
    /// On a learner: the leader's answer to [`Zab::revalidate`](super::Zab::revalidate).
    Revalidated {
        /// The session.
        session: i64,
        /// Whether it is alive.
        valid: bool,
    },
    /// A `sync` is answered: on a learner, the oldest forwarded one; on the leader, the local
    /// one registered with `token`.
    SyncDone {
        /// The token given to [`Zab::sync`](super::Zab::sync) on the leader; 0 on a learner.
        token: u64,
    },
}
