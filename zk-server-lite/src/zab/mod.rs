//! Zab, the ZooKeeper atomic broadcast protocol, as Apache ZooKeeper implements it
//! (PROTOCOL.md section 3), as a **sans-io** state machine: no sockets, no clock, no
//! randomness. [`Zab::step`] takes an [`Event`] (a packet, a notification, a connection
//! loss, a finished fsync, a timeout) and the current time in milliseconds and returns the
//! [`Action`]s to run, in order; [`Zab::poll_timeout`] says when to call it with
//! [`Event::Timeout`]. The driver (the server's node task, or the deterministic simulator
//! in the tests) owns the sockets, the storage and the clock.
//!
//! # Phases, one file each
//!
//! | file | phase |
//! |---|---|
//! | [`election`] | fast leader election: notifications, vote order, finalize wait, joining a running ensemble |
//! | [`discovery`] | FOLLOWERINFO → LEADERINFO → ACKEPOCH: a new epoch above every accepted one |
//! | [`sync`] | DIFF / TRUNC / SNAP as `LearnerHandler.syncFollower` chooses, NEWLEADER, UPTODATE |
//! | [`broadcast`] | PROPOSAL, ACK after fsync, COMMIT in zxid order, INFORM, PING, REQUEST, REVALIDATE, SYNC |
//! | [`quorum`] | majority counting |
//! | [`zxid`] | epoch and counter halves |
//! | [`message`], [`event`], [`action`] | what goes in and out |
//!
//! # Durability orderings
//!
//! Storage actions run in order and complete before the next action (see [`action`]), so the
//! orderings of PROTOCOL.md 3.10 are visible in the action lists the unit tests assert:
//! `SaveAcceptedEpoch` before ACKEPOCH; on NEWLEADER, `Append`s, `SyncLog`, then
//! `SaveCurrentEpoch`, then the ACK; a proposal's ACK only after [`Event::Logged`] covers it.
//!
//! # State
//!
//! The state machine the server applies txns to is outside: Zab hands over committed txns
//! with [`Action::Apply`] and keeps only what the protocol needs: the epochs, the last
//! logged zxid, a window of recent txns for DIFF syncs (`commit_log_count`, Apache's
//! `commitLogCount`), and the in-flight proposals.

pub mod action;
pub mod broadcast;
pub mod discovery;
pub mod election;
pub mod event;
pub mod message;
pub mod quorum;
pub mod sync;
pub mod zxid;

use std::collections::{BTreeSet, VecDeque};

use bytes::Bytes;
use zk_proto::records::Id;

pub use self::action::Action;
pub use self::event::Event;
pub use self::message::{Message, Notification, PeerState, Proposal, Vote};
pub use self::quorum::Voters;
pub use self::zxid::{Epoch, Zxid};

use self::broadcast::SyncOrigin;
use self::discovery::Leader;
use self::election::Election;
use self::sync::Learner;

/// A server id (`myid`; Apache's `long sid`).
pub type Sid = i64;

/// Milliseconds on the driver's monotonic clock.
pub type Millis = u64;

/// Static settings of one member.
#[derive(Debug, Clone)]
pub struct ZabConfig {
    /// This member's id.
    pub myid: Sid,
    /// The voting members (this one included unless it is an observer).
    pub voters: Voters,
    /// The observers.
    pub observers: BTreeSet<Sid>,
    /// `tickTime` in ms.
    pub tick_ms: u64,
    /// `initLimit` in ticks: discovery and sync waits.
    pub init_limit: u64,
    /// `syncLimit` in ticks: how long a learner may stay silent or lag once synced.
    pub sync_limit: u64,
    /// FLE's `finalizeWait` (200 ms).
    pub finalize_wait_ms: u64,
    /// FLE's longest notification interval (60 000 ms).
    pub max_notification_interval_ms: u64,
    /// Committed txns kept in memory for DIFF syncs (`commitLogCount`, 500).
    pub commit_log_count: usize,
}

impl ZabConfig {
    /// Apache's defaults around the given membership: tickTime 2000 ms, initLimit 10,
    /// syncLimit 5 (the sample `zoo.cfg`).
    pub fn new(myid: Sid, voters: impl IntoIterator<Item = Sid>) -> ZabConfig {
        ZabConfig {
            myid,
            voters: Voters::new(voters),
            observers: BTreeSet::new(),
            tick_ms: 2000,
            init_limit: 10,
            sync_limit: 5,
            finalize_wait_ms: 200,
            max_notification_interval_ms: 60_000,
            commit_log_count: 500,
        }
    }

    /// Whether this member votes.
    pub fn is_participant(&self) -> bool {
        self.voters.contains(self.myid)
    }

    fn init_ms(&self) -> u64 {
        self.tick_ms * self.init_limit
    }

    fn sync_ms(&self) -> u64 {
        self.tick_ms * self.sync_limit
    }

    fn is_member(&self, sid: Sid) -> bool {
        self.voters.contains(sid) || self.observers.contains(&sid)
    }
}

/// What a member recovered from its storage at start.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    /// acceptedEpoch (0 when the file does not exist yet).
    pub accepted_epoch: Epoch,
    /// currentEpoch (0 when the file does not exist yet).
    pub current_epoch: Epoch,
    /// The last zxid in the log or snapshot (0 when empty). The state the driver loaded is
    /// at this zxid: every logged txn applied, as Apache loads it.
    pub last_zxid: Zxid,
    /// The most recent logged txns, contiguous, ending at `last_zxid` (may be empty).
    pub recent: Vec<Proposal>,
    /// The zxid just before `recent` (`last_zxid` when `recent` is empty).
    pub recent_base: Zxid,
    /// The updating-epoch mark ([`Action::MarkUpdatingEpoch`]) was found: the member
    /// crashed between logging a NEWLEADER history and storing currentEpoch.
    pub updating_epoch: bool,
}

/// Why Zab refused a request from its own server, or refused to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZabError {
    /// Only an established leader proposes.
    #[error("not the established leader")]
    NotLeader,
    /// This member is not serving (electing, or syncing with a leader): retry elsewhere or
    /// later.
    #[error("not serving: the member is {0}")]
    NotServing(&'static str),
    /// A proposal did not carry the next zxid.
    #[error("proposal zxid {got:#x}, expected {expected:#x}")]
    ZxidMismatch {
        /// The zxid given.
        got: Zxid,
        /// The zxid expected.
        expected: Zxid,
    },
    /// The epoch's counter is used up: the leader steps down so that a new epoch begins.
    #[error("zxid counter exhausted in epoch {0}; a new election starts")]
    CounterExhausted(Epoch),
    /// The stored epochs contradict each other or the log (PROTOCOL.md 3.9 start-up checks).
    #[error("inconsistent durable state: {0}")]
    Inconsistent(String),
}

impl ZabError {
    /// Whether retrying (later, or on another member) can help.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            ZabError::Inconsistent(_) | ZabError::ZxidMismatch { .. }
        )
    }
}

/// The engine's view of the member's log: the last appended and the last durable zxid, and
/// a window of recent txns (contiguous) for DIFF syncs.
#[derive(Debug, Clone)]
struct LogView {
    /// Every txn after `base` up to `last_appended` is in `recent`.
    base: Zxid,
    recent: VecDeque<Proposal>,
    last_appended: Zxid,
    last_durable: Zxid,
    keep: usize,
}

impl LogView {
    fn push(&mut self, p: Proposal) {
        self.last_appended = p.zxid;
        self.recent.push_back(p);
    }

    /// Drops old txns beyond the window, but never any after `keep_after` (uncommitted).
    fn trim(&mut self, keep_after: Zxid) {
        while self.recent.len() > self.keep {
            match self.recent.front() {
                Some(p) if p.zxid <= keep_after => {
                    self.base = p.zxid;
                    self.recent.pop_front();
                }
                _ => break,
            }
        }
    }

    fn truncate(&mut self, zxid: Zxid) {
        while self.recent.back().is_some_and(|p| p.zxid > zxid) {
            self.recent.pop_back();
        }
        if self.base > zxid {
            self.base = zxid;
            self.recent.clear();
        }
        self.last_appended = zxid;
        self.last_durable = zxid;
    }

    fn reset(&mut self, zxid: Zxid) {
        self.recent.clear();
        self.base = zxid;
        self.last_appended = zxid;
        self.last_durable = zxid;
    }
}

/// Where a member is.
#[derive(Debug)]
enum State {
    Looking(Election),
    Leading(Box<Leader>),
    Learning(Box<Learner>),
}

/// One Zab member's protocol state. See the [module docs](self).
#[derive(Debug)]
pub struct Zab {
    cfg: ZabConfig,
    accepted_epoch: Epoch,
    current_epoch: Epoch,
    log: LogView,
    /// The zxid of the last txn applied to the state.
    applied: Zxid,
    /// FLE's logical clock.
    round: i64,
    /// The vote of the last decided election, and its round (answered to LOOKING peers).
    current_vote: (Vote, i64),
    state: State,
    serving: bool,
    /// Sessions touched by this member's clients since the last PING (learners).
    touches: Vec<(i64, i32)>,
    now: Millis,
    out: Vec<Action>,
}

impl Zab {
    /// A member starting from what it recovered; it begins by looking for a leader (the
    /// returned actions hold its first notifications).
    pub fn new(
        cfg: ZabConfig,
        restored: Restored,
        now: Millis,
    ) -> Result<(Zab, Vec<Action>), ZabError> {
        let mut restored = restored;
        let mut save_current = None;
        let log_epoch = zxid::epoch(restored.last_zxid);
        if restored.updating_epoch && log_epoch > restored.current_epoch {
            tracing::info!(
                current_epoch = restored.current_epoch,
                log_epoch,
                "updating-epoch mark found: the member stopped after logging a NEWLEADER \
                 history and before storing currentEpoch; taking the log's epoch"
            );
            restored.current_epoch = log_epoch;
            save_current = Some(log_epoch);
        }
        if restored.accepted_epoch < restored.current_epoch {
            return Err(ZabError::Inconsistent(format!(
                "acceptedEpoch {} is below currentEpoch {}",
                restored.accepted_epoch, restored.current_epoch
            )));
        }
        if zxid::epoch(restored.last_zxid) > restored.current_epoch {
            return Err(ZabError::Inconsistent(format!(
                "the last zxid {:#x} is of epoch {}, above currentEpoch {}",
                restored.last_zxid,
                zxid::epoch(restored.last_zxid),
                restored.current_epoch
            )));
        }
        if !restored.recent.is_empty()
            && restored.recent.last().map(|p| p.zxid) != Some(restored.last_zxid)
        {
            return Err(ZabError::Inconsistent(
                "the recent txns do not end at the last zxid".into(),
            ));
        }
        let mut prev = restored.recent_base;
        for p in &restored.recent {
            if !zxid::follows(prev, p.zxid) {
                return Err(ZabError::Inconsistent(format!(
                    "the log is not contiguous: {:#x} after {:#x}",
                    p.zxid, prev
                )));
            }
            prev = p.zxid;
        }
        if cfg.voters.is_empty() {
            return Err(ZabError::Inconsistent("no voting members".into()));
        }
        let base = if restored.recent.is_empty() {
            restored.last_zxid
        } else {
            restored.recent_base
        };
        let log = LogView {
            base,
            recent: restored.recent.into_iter().collect(),
            last_appended: restored.last_zxid,
            last_durable: restored.last_zxid,
            keep: cfg.commit_log_count.max(1),
        };
        let me = cfg.myid;
        let mut zab = Zab {
            accepted_epoch: restored.accepted_epoch,
            current_epoch: restored.current_epoch,
            applied: restored.last_zxid,
            round: 0,
            current_vote: (
                Vote {
                    leader: me,
                    zxid: restored.last_zxid,
                    peer_epoch: restored.current_epoch,
                },
                0,
            ),
            state: State::Looking(Election::idle()),
            serving: false,
            touches: Vec::new(),
            now,
            out: Vec::new(),
            log,
            cfg,
        };
        if let Some(epoch) = save_current {
            zab.emit(Action::SaveCurrentEpoch(epoch));
        }
        zab.start_election();
        let actions = std::mem::take(&mut zab.out);
        Ok((zab, actions))
    }

    /// Handles one event at `now` (ms, monotonic, never going back).
    pub fn step(&mut self, now: Millis, event: Event) -> Vec<Action> {
        self.now = self.now.max(now);
        match event {
            Event::Timeout => self.on_timeout(),
            Event::Notification { from, notification } => self.on_notification(from, notification),
            Event::LeaderConnected => self.learner_connected(),
            Event::Packet { from, message } => match &self.state {
                State::Leading(_) => self.leader_packet(from, message),
                State::Learning(l) if l.leader == from => self.learner_packet(message),
                State::Learning(_) | State::Looking(_) => {
                    tracing::debug!(from, packet = message.name(), "stale quorum packet dropped");
                }
            },
            Event::PeerLost { sid } => self.on_peer_lost(sid),
            Event::Logged { zxid } => self.on_logged(zxid),
            Event::TruncateRefused { last_zxid } => {
                self.log.reset(last_zxid);
                self.applied = last_zxid;
                if matches!(self.state, State::Learning(_)) {
                    self.give_up("the storage cannot truncate below its snapshot");
                }
            }
        }
        std::mem::take(&mut self.out)
    }

    /// When to call [`step`](Self::step) with [`Event::Timeout`] next.
    pub fn poll_timeout(&self) -> Option<Millis> {
        match &self.state {
            State::Looking(e) => e.next_deadline(),
            State::Leading(l) => l.next_deadline(),
            State::Learning(l) => Some(l.deadline),
        }
    }

    /// This member's state as FLE names it.
    pub fn state(&self) -> PeerState {
        match &self.state {
            State::Looking(_) => PeerState::Looking,
            State::Leading(_) => PeerState::Leading,
            State::Learning(l) if l.observer => PeerState::Observing,
            State::Learning(_) => PeerState::Following,
        }
    }

    /// The leader this member leads or follows (once an election decided).
    pub fn leader(&self) -> Option<Sid> {
        match &self.state {
            State::Looking(_) => None,
            State::Leading(_) => Some(self.cfg.myid),
            State::Learning(l) => Some(l.leader),
        }
    }

    /// Whether this member serves clients (a leader whose NEWLEADER a quorum acked; a
    /// learner after UPTODATE).
    pub fn is_serving(&self) -> bool {
        self.serving
    }

    /// This member's id.
    pub fn myid(&self) -> Sid {
        self.cfg.myid
    }

    /// The settings.
    pub fn config(&self) -> &ZabConfig {
        &self.cfg
    }

    /// acceptedEpoch.
    pub fn accepted_epoch(&self) -> Epoch {
        self.accepted_epoch
    }

    /// currentEpoch.
    pub fn current_epoch(&self) -> Epoch {
        self.current_epoch
    }

    /// The last durably logged zxid (what this member votes with).
    pub fn last_logged(&self) -> Zxid {
        self.log.last_durable
    }

    /// The zxid of the last txn handed over with [`Action::Apply`] (or restored).
    pub fn last_applied(&self) -> Zxid {
        self.applied
    }

    /// The recent txns kept for DIFF syncs (contiguous, ending at the last appended zxid),
    /// and the zxid just before them.
    pub fn recent(&self) -> (Zxid, impl Iterator<Item = &Proposal>) {
        (self.log.base, self.log.recent.iter())
    }

    /// The election round (FLE's logical clock).
    pub fn round(&self) -> i64 {
        self.round
    }

    /// On a leader: the connected learners and whether each is synced (for `mntr`/`srvr`).
    pub fn learners(&self) -> Vec<(Sid, bool)> {
        match &self.state {
            State::Leading(l) => l.learner_summary(),
            _ => Vec::new(),
        }
    }

    // ---- shared helpers ----

    fn emit(&mut self, action: Action) {
        self.out.push(action);
    }

    fn send(&mut self, to: Sid, message: Message) {
        self.out.push(Action::Send { to, message });
    }

    fn apply(&mut self, p: Proposal) {
        self.applied = p.zxid;
        self.out.push(Action::Apply(p));
    }

    fn on_timeout(&mut self) {
        match &self.state {
            State::Looking(_) => self.election_timeout(),
            State::Leading(_) => self.leader_timeout(),
            State::Learning(l) => {
                if self.now >= l.deadline {
                    let what = l.phase_name();
                    self.give_up(&format!("no word from the leader while {what}"));
                }
            }
        }
    }

    fn on_peer_lost(&mut self, sid: Sid) {
        match &mut self.state {
            State::Leading(l) => {
                let known = l.remove_learner(sid);
                tracing::info!(sid, known, "learner disconnected");
            }
            State::Learning(l) if l.leader == sid => {
                self.give_up("lost the connection to the leader");
            }
            _ => {}
        }
    }

    fn on_logged(&mut self, zxid: Zxid) {
        let durable = zxid.min(self.log.last_appended);
        if durable > self.log.last_durable {
            self.log.last_durable = durable;
        }
        match &self.state {
            State::Leading(_) => self.leader_logged(),
            State::Learning(_) => self.learner_logged(),
            State::Looking(_) => {}
        }
    }

    /// Leaves the current role: stop serving, close quorum connections, make the log
    /// durable and bring the state up to the log (fast-forward), then elect again.
    fn give_up(&mut self, reason: &str) {
        let old = std::mem::replace(&mut self.state, State::Looking(Election::idle()));
        tracing::warn!(
            myid = self.cfg.myid,
            reason,
            last_zxid = %zxid::hex(self.log.last_appended),
            "leaving {} state",
            match &old {
                State::Looking(_) => "LOOKING",
                State::Leading(_) => "LEADING",
                State::Learning(_) => "LEARNER",
            }
        );
        if self.serving {
            self.serving = false;
            self.emit(Action::StopServing);
        }
        let pending: Vec<Proposal> = match old {
            State::Looking(_) => Vec::new(),
            State::Leading(l) => {
                for sid in l.learner_ids() {
                    self.emit(Action::Disconnect { sid });
                }
                l.into_outstanding()
            }
            State::Learning(l) => {
                self.emit(Action::Disconnect { sid: l.leader });
                l.into_unapplied()
            }
        };
        if self.log.last_appended > self.log.last_durable {
            self.emit(Action::SyncLog);
            self.log.last_durable = self.log.last_appended;
        }
        for p in pending {
            if p.zxid > self.applied {
                self.applied = p.zxid;
                self.emit(Action::FastForward(p));
            }
        }
        self.start_election();
    }

    fn state_changed(&mut self, state: PeerState, leader: Option<Sid>, epoch: Epoch) {
        tracing::info!(
            myid = self.cfg.myid,
            state = state.name(),
            leader,
            epoch,
            "zab state"
        );
        self.emit(Action::StateChanged {
            state,
            leader,
            epoch,
        });
    }

    // ---- requests from this member's own server ----

    /// The zxid the next proposal must carry, when this member is the established leader.
    pub fn next_zxid(&self) -> Option<Zxid> {
        match &self.state {
            State::Leading(l) if l.established && self.serving => Some(l.last_proposed + 1),
            _ => None,
        }
    }

    /// On the established leader: proposes a txn carrying [`next_zxid`](Self::next_zxid).
    pub fn propose(&mut self, now: Millis, proposal: Proposal) -> Result<Vec<Action>, ZabError> {
        self.now = self.now.max(now);
        self.leader_propose(proposal)?;
        Ok(std::mem::take(&mut self.out))
    }

    /// On a serving learner: forwards a client request (and its connection's auth ids) to
    /// the leader (REQUEST).
    pub fn forward(&mut self, data: Bytes, auth: Vec<Id>) -> Result<Vec<Action>, ZabError> {
        let leader = self.serving_leader()?;
        self.send(leader, Message::Request { data, auth });
        Ok(std::mem::take(&mut self.out))
    }

    /// On a learner: a client of this member touched `session` (reported to the leader with
    /// the next PING answer).
    pub fn touch_session(&mut self, session: i64, timeout: i32) {
        if let Some(t) = self.touches.iter_mut().find(|(s, _)| *s == session) {
            t.1 = timeout;
        } else {
            self.touches.push((session, timeout));
        }
    }

    /// On a serving learner: asks the leader whether `session` is alive (a client
    /// reconnected here); the answer comes as [`Action::Revalidated`].
    pub fn revalidate(&mut self, session: i64, timeout: i32) -> Result<Vec<Action>, ZabError> {
        let leader = self.serving_leader()?;
        self.send(leader, Message::Revalidate { session, timeout });
        Ok(std::mem::take(&mut self.out))
    }

    /// On the leader: the answer to an [`Action::RevalidateRequest`].
    pub fn answer_revalidate(&mut self, to: Sid, session: i64, valid: bool) -> Vec<Action> {
        if let State::Leading(l) = &self.state
            && l.has_learner(to)
        {
            self.send(to, Message::RevalidateReply { session, valid });
        }
        std::mem::take(&mut self.out)
    }

    /// `sync`: on the leader, answered ([`Action::SyncDone`] with `token`, or SYNC to the
    /// learner that forwarded it) once every proposal made before it has committed. On a
    /// learner, a client's sync is forwarded as a REQUEST with [`forward`](Self::forward) and
    /// answered by [`Action::SyncDone`] when the leader's SYNC arrives.
    pub fn sync(&mut self, origin: SyncOrigin) -> Result<Vec<Action>, ZabError> {
        self.leader_sync(origin)?;
        Ok(std::mem::take(&mut self.out))
    }

    fn serving_leader(&self) -> Result<Sid, ZabError> {
        match &self.state {
            State::Learning(l) if self.serving => Ok(l.leader),
            State::Leading(_) => Err(ZabError::NotServing("the leader")),
            State::Learning(_) => Err(ZabError::NotServing("syncing with the leader")),
            State::Looking(_) => Err(ZabError::NotServing("looking for a leader")),
        }
    }
}

#[cfg(test)]
mod test_util;

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    #[test]
    fn start_refuses_inconsistent_epochs() {
        // ZOOKEEPER-2307: acceptedEpoch below currentEpoch.
        let err = Zab::new(ZabConfig::new(1, [1, 2, 3]), restored(1, 2, 0), 0).unwrap_err();
        assert!(matches!(err, ZabError::Inconsistent(_)), "{err}");
        // A log of a newer epoch than currentEpoch, without the updating mark.
        let err = Zab::new(
            ZabConfig::new(1, [1, 2, 3]),
            restored(3, 2, zxid::make(3, 1)),
            0,
        )
        .unwrap_err();
        assert!(err.to_string().contains("above currentEpoch"), "{err}");
    }

    #[test]
    fn the_updating_epoch_mark_recovers_a_crash_between_the_sync_log_and_current_epoch() {
        // ZOOKEEPER-1653.
        let mut r = restored(3, 2, zxid::make(3, 1));
        r.updating_epoch = true;
        let (zab, actions) = Zab::new(ZabConfig::new(1, [1, 2, 3]), r, 0).unwrap();
        assert_eq!(zab.current_epoch(), 3);
        assert_eq!(actions[0], Action::SaveCurrentEpoch(3));
    }
}
