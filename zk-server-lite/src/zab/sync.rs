//! Synchronisation: a learner's log is made equal to the leader's before it serves
//! (PROTOCOL.md 3.6).
//!
//! Leader, per learner (`LearnerHandler.syncFollower`): with `peer` the learner's last zxid
//! and the leader's recent committed txns `(base, max]`:
//!
//! | condition | packets |
//! |---|---|
//! | `peer == max` | DIFF (empty) |
//! | `peer > max`, counter ≠ 0 | TRUNC(max) |
//! | `base ≤ peer ≤ max` | DIFF + (PROPOSAL, COMMIT)* after `peer` — or TRUNC to the txn before the first one the learner lacks, in the same epoch; across an epoch: SNAP |
//! | otherwise | SNAP + the state |
//!
//! then every outstanding proposal (to voters), from now on every new one (forwarding
//! starts here, TLA+ issue 1), then NEWLEADER. The first packet back must be the NEWLEADER
//! ACK; once a quorum (the leader included) acked, the leader serves and every acked learner
//! gets UPTODATE.
//!
//! Learner (`Learner.syncWithLeader`, with the fixes of ZOOKEEPER-3911/4646/4643/4394/4685):
//! DIFF keeps the log; TRUNC and SNAP are durable before anything else. Proposals are held,
//! then on NEWLEADER: every held proposal is appended and the log **synced**, then
//! currentEpoch stored, then the NEWLEADER ACK sent, and only then the ACKs of those
//! proposals. Commits seen before UPTODATE are applied at UPTODATE. A proposal the learner
//! already holds is ignored (TLA+ issue 2); one that leaves a gap ends the sync
//! (ZOOKEEPER-4925). The learner's last zxid moves only by logging txns, TRUNC or SNAP —
//! never to the DIFF marker (ZOOKEEPER-2355).

use std::collections::VecDeque;

use super::discovery::Stage;
use super::message::{Message, Proposal};
use super::zxid::{self, Epoch, Zxid};
use super::{Action, Millis, Sid, State, Zab};

/// Where a learner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Connecting to the leader.
    Connecting,
    /// FOLLOWERINFO sent.
    AwaitLeaderInfo,
    /// ACKEPOCH sent; DIFF, TRUNC or SNAP comes next.
    AwaitSyncMode,
    /// Receiving the leader's history.
    Syncing,
    /// NEWLEADER acked.
    AwaitUpToDate,
    /// Serving clients.
    Serving,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::AwaitLeaderInfo => "waiting for LEADERINFO",
            Phase::AwaitSyncMode => "waiting for DIFF/TRUNC/SNAP",
            Phase::Syncing => "syncing",
            Phase::AwaitUpToDate => "waiting for UPTODATE",
            Phase::Serving => "serving",
        }
    }
}

/// A learner's state (follower or observer).
#[derive(Debug)]
pub(super) struct Learner {
    pub(super) leader: Sid,
    pub(super) observer: bool,
    pub(super) phase: Phase,
    pub(super) new_epoch: Epoch,
    /// No packet from the leader by then → back to election.
    pub(super) deadline: Millis,
    /// The last proposal received (logged or held).
    last_queued: Zxid,
    /// Sync-phase proposals held until NEWLEADER.
    not_logged: VecDeque<Proposal>,
    /// Appended, waiting for COMMIT (in zxid order).
    uncommitted: VecDeque<Proposal>,
    /// Appended, not yet ACKed (voters only).
    unacked: VecDeque<Zxid>,
    /// COMMITs received before UPTODATE.
    early_commits: VecDeque<Zxid>,
}

impl Learner {
    pub(super) fn new(leader: Sid, observer: bool, deadline: Millis, last: Zxid) -> Learner {
        Learner {
            leader,
            observer,
            phase: Phase::Connecting,
            new_epoch: 0,
            deadline,
            last_queued: last,
            not_logged: VecDeque::new(),
            uncommitted: VecDeque::new(),
            unacked: VecDeque::new(),
            early_commits: VecDeque::new(),
        }
    }

    pub(super) fn phase_name(&self) -> &'static str {
        self.phase.name()
    }

    /// What was appended but not applied (to fast-forward on exit), in order.
    pub(super) fn into_unapplied(self) -> Vec<Proposal> {
        self.uncommitted.into_iter().collect()
    }

    fn after_newleader(&self) -> bool {
        matches!(self.phase, Phase::AwaitUpToDate | Phase::Serving)
    }
}

impl Zab {
    // ---------------------------------------------------------------- leader side

    /// Queues the sync packets for learner `sid` whose last zxid is `peer`, starts
    /// forwarding to it, and sends NEWLEADER.
    pub(super) fn sync_learner(&mut self, sid: Sid, peer: Zxid) {
        let State::Leading(l) = &mut self.state else {
            return;
        };
        let Some(h) = l.learners.get(&sid) else {
            return;
        };
        let observer = h.observer;
        let last_committed = l.last_committed;
        let epoch = l.epoch;
        let base = self.log.base;
        let committed: Vec<&Proposal> = self
            .log
            .recent
            .iter()
            .filter(|p| p.zxid <= last_committed)
            .collect();
        let plan = plan_sync(peer, base, last_committed, &committed);
        let (packets, synced_to) = match plan {
            Some(p) => p,
            None => (Vec::new(), last_committed),
        };
        let snap = packets.is_empty();
        tracing::info!(
            sid,
            peer = %zxid::hex(peer),
            mode = packets.first().map_or("SNAP", Message::name),
            "syncing learner"
        );
        let outstanding: Vec<Proposal> = if observer {
            Vec::new()
        } else {
            l.outstanding
                .values()
                .filter(|o| o.proposal.zxid > synced_to)
                .map(|o| o.proposal.clone())
                .collect()
        };
        if let Some(h) = l.learners.get_mut(&sid) {
            h.forwarding = true;
            h.stage = Stage::AwaitNewLeaderAck;
        }
        if snap {
            let zxid = self.applied;
            self.emit(Action::SendSnapshot { to: sid, zxid });
        }
        for m in packets {
            self.send(sid, m);
        }
        for p in outstanding {
            self.send(sid, Message::Proposal(p));
        }
        self.send(
            sid,
            Message::NewLeader {
                zxid: zxid::make(epoch, 0),
            },
        );
    }

    /// The first ACK after NEWLEADER, then broadcast ACKs.
    pub(super) fn leader_ack(&mut self, from: Sid, ack: Zxid) {
        let State::Leading(l) = &mut self.state else {
            return;
        };
        let Some(h) = l.learners.get_mut(&from) else {
            return;
        };
        match h.stage {
            Stage::AwaitNewLeaderAck => {
                h.stage = Stage::AwaitUpToDate;
                if ack != zxid::make(l.epoch, 0) {
                    // Apache logs "NEWLEADER ACK from sid is from a different epoch" and does
                    // not count it (ZOOKEEPER-4685 made learners send it first).
                    tracing::error!(
                        from,
                        ack = %zxid::hex(ack),
                        "the first ACK after NEWLEADER is not the NEWLEADER ACK"
                    );
                } else if !h.observer {
                    l.newleader_acks.insert(from);
                }
                if l.established {
                    h.stage = Stage::Active;
                    self.send(from, Message::UpToDate);
                } else {
                    self.maybe_establish();
                }
            }
            Stage::AwaitUpToDate | Stage::Active => {
                if !h.observer {
                    self.process_ack(from, ack);
                }
            }
            _ => self.drop_learner(from, "ACK before the sync"),
        }
    }

    /// Once a quorum acked NEWLEADER: serve, and send UPTODATE to every acked learner.
    pub(super) fn maybe_establish(&mut self) {
        let now = self.now;
        let half_tick = (self.cfg.tick_ms / 2).max(1);
        let State::Leading(l) = &mut self.state else {
            return;
        };
        if l.established || !l.epoch_acked || !self.cfg.voters.is_quorum(&l.newleader_acks) {
            return;
        }
        l.established = true;
        l.last_proposed = l.last_proposed.max(zxid::make(l.epoch, 0));
        l.next_ping = now + half_tick;
        let epoch = l.epoch;
        let ready: Vec<Sid> = l
            .learners
            .iter_mut()
            .filter(|(_, h)| h.stage == Stage::AwaitUpToDate)
            .map(|(sid, h)| {
                h.stage = Stage::Active;
                *sid
            })
            .collect();
        tracing::info!(myid = self.cfg.myid, epoch, "leader established: serving");
        // Apache's updateElectionVote: members report the epoch they now serve in, so that
        // a restarted member sees one (leader, epoch) from a quorum and joins.
        self.current_vote.0.peer_epoch = epoch;
        self.serving = true;
        self.emit(Action::StartServing);
        for sid in ready {
            self.send(sid, Message::UpToDate);
        }
    }

    // ---------------------------------------------------------------- learner side

    pub(super) fn learner_connected(&mut self) {
        let accepted_epoch = self.accepted_epoch;
        let deadline = self.now + self.cfg.init_ms();
        let State::Learning(l) = &mut self.state else {
            return;
        };
        if l.phase != Phase::Connecting {
            return;
        }
        l.phase = Phase::AwaitLeaderInfo;
        l.deadline = deadline;
        let leader = l.leader;
        let message = if l.observer {
            Message::ObserverInfo { accepted_epoch }
        } else {
            Message::FollowerInfo { accepted_epoch }
        };
        self.send(leader, message);
    }

    /// A packet from the leader.
    pub(super) fn learner_packet(&mut self, message: Message) {
        let now = self.now;
        let limit = {
            let State::Learning(l) = &self.state else {
                return;
            };
            if l.after_newleader() {
                self.cfg.sync_ms()
            } else {
                self.cfg.init_ms()
            }
        };
        let State::Learning(l) = &mut self.state else {
            return;
        };
        l.deadline = now + limit;
        let phase = l.phase;
        match (phase, message) {
            (Phase::AwaitLeaderInfo, Message::LeaderInfo { epoch }) => {
                self.learner_leader_info(epoch)
            }
            (Phase::AwaitSyncMode, Message::Diff { .. }) => {
                // The DIFF zxid is the leader's; the learner's last zxid stays what it logged.
                l.last_queued = self.log.last_appended;
                l.phase = Phase::Syncing;
            }
            (Phase::AwaitSyncMode, Message::Trunc { zxid }) => {
                self.log.truncate(zxid);
                self.applied = zxid;
                l.last_queued = zxid;
                l.phase = Phase::Syncing;
                self.emit(Action::Truncate(zxid));
            }
            (Phase::AwaitSyncMode, Message::Snap { zxid, snapshot }) => {
                self.log.reset(zxid);
                self.applied = zxid;
                l.last_queued = zxid;
                l.phase = Phase::Syncing;
                // The snapshot may be of a newer epoch than currentEpoch until NEWLEADER:
                // mark it first, as Apache does before its sync snapshot (ZOOKEEPER-1653;
                // found by the simulator: a crash right after SNAP could not restart).
                self.emit(Action::MarkUpdatingEpoch);
                self.emit(Action::InstallSnapshot { zxid, snapshot });
            }
            (Phase::Syncing, Message::Proposal(p)) => self.learner_hold(p, false),
            (Phase::Syncing, Message::Inform(p)) => self.learner_hold(p, true),
            (Phase::Syncing, Message::Commit { zxid }) => {
                // A COMMIT names a proposal this learner holds, in order.
                let held = l.not_logged.iter().any(|p| p.zxid == zxid);
                let in_order = l.early_commits.back().is_none_or(|&c| c < zxid);
                if held && in_order {
                    l.early_commits.push_back(zxid);
                } else if zxid > self.applied {
                    let why = format!("COMMIT {zxid:#x} for a proposal not held in order");
                    self.give_up(&why);
                }
            }
            (Phase::Syncing, Message::NewLeader { zxid }) => self.learner_newleader(zxid),
            (Phase::AwaitUpToDate, Message::UpToDate) => self.learner_uptodate(),
            (Phase::AwaitUpToDate | Phase::Serving, message) => self.learner_broadcast(message),
            (phase, message) => {
                let why = format!(
                    "unexpected {} from the leader while {}",
                    message.name(),
                    phase.name()
                );
                self.give_up(&why);
            }
        }
    }

    /// Checks that `p` continues the history; `Ok(false)` for a duplicate to ignore.
    pub(super) fn learner_accepts(&mut self, p: &Proposal) -> bool {
        let State::Learning(l) = &self.state else {
            return false;
        };
        if p.zxid <= l.last_queued {
            tracing::debug!(zxid = %zxid::hex(p.zxid), "proposal already held: ignored");
            return false;
        }
        if !zxid::follows(l.last_queued, p.zxid) {
            let why = format!(
                "proposal {:#x} does not follow {:#x}: a gap in the leader's history",
                p.zxid, l.last_queued
            );
            self.give_up(&why);
            return false;
        }
        true
    }

    fn learner_hold(&mut self, p: Proposal, committed: bool) {
        if !self.learner_accepts(&p) {
            return;
        }
        let State::Learning(l) = &mut self.state else {
            return;
        };
        l.last_queued = p.zxid;
        if committed {
            l.early_commits.push_back(p.zxid);
        }
        l.not_logged.push_back(p);
    }

    /// NEWLEADER: log and sync the held proposals, store currentEpoch, ACK NEWLEADER, then
    /// ACK the proposals.
    fn learner_newleader(&mut self, newleader: Zxid) {
        let State::Learning(l) = &mut self.state else {
            return;
        };
        if newleader != zxid::make(l.new_epoch, 0) {
            let why = format!(
                "NEWLEADER {:#x} is not of the epoch {} the leader announced",
                newleader, l.new_epoch
            );
            self.give_up(&why);
            return;
        }
        let held: Vec<Proposal> = l.not_logged.drain(..).collect();
        let observer = l.observer;
        let new_epoch = l.new_epoch;
        let leader = l.leader;
        for p in &held {
            l.uncommitted.push_back(p.clone());
            if !observer {
                l.unacked.push_back(p.zxid);
            }
        }
        l.phase = Phase::AwaitUpToDate;
        self.emit(Action::MarkUpdatingEpoch);
        for p in held {
            self.log.push(p.clone());
            self.emit(Action::Append(p));
        }
        self.emit(Action::SyncLog);
        self.log.last_durable = self.log.last_appended;
        self.current_epoch = new_epoch;
        self.emit(Action::SaveCurrentEpoch(new_epoch));
        self.send(leader, Message::Ack { zxid: newleader });
        self.learner_send_acks();
    }

    fn learner_uptodate(&mut self) {
        let State::Learning(l) = &mut self.state else {
            return;
        };
        let leader = l.leader;
        let ack = zxid::make(l.new_epoch, 0);
        let commits: Vec<Zxid> = l.early_commits.drain(..).collect();
        l.phase = Phase::Serving;
        self.current_vote.0.peer_epoch = l.new_epoch;
        self.send(leader, Message::Ack { zxid: ack });
        for zxid in commits {
            if !self.learner_commit(zxid) {
                return;
            }
        }
        self.serving = true;
        self.emit(Action::StartServing);
        tracing::info!(
            myid = self.cfg.myid,
            leader,
            "synced with the leader: serving"
        );
    }

    /// Applies the COMMIT of `zxid`, which must be the oldest uncommitted proposal; `false`
    /// (and back to election) otherwise.
    pub(super) fn learner_commit(&mut self, zxid: Zxid) -> bool {
        let applied = self.applied;
        let State::Learning(l) = &mut self.state else {
            return false;
        };
        match l.uncommitted.front() {
            Some(p) if p.zxid == zxid => {
                if let Some(p) = l.uncommitted.pop_front() {
                    self.apply(p);
                }
                true
            }
            _ if zxid <= applied => {
                // Already applied (a repeated COMMIT).
                true
            }
            other => {
                let why = format!(
                    "COMMIT {:#x} but the next pending proposal is {}",
                    zxid,
                    other.map_or("none".to_owned(), |p| zxid::hex(p.zxid))
                );
                self.give_up(&why);
                false
            }
        }
    }

    /// Sends the ACKs of durable proposals (voters, after the NEWLEADER ACK).
    pub(super) fn learner_send_acks(&mut self) {
        let durable = self.log.last_durable;
        let State::Learning(l) = &mut self.state else {
            return;
        };
        if l.observer || !l.after_newleader() {
            return;
        }
        let leader = l.leader;
        let mut acks = Vec::new();
        while let Some(&z) = l.unacked.front() {
            if z > durable {
                break;
            }
            l.unacked.pop_front();
            acks.push(z);
        }
        for zxid in acks {
            self.send(leader, Message::Ack { zxid });
        }
    }

    pub(super) fn learner_logged(&mut self) {
        self.learner_send_acks();
    }

    /// Appends a proposal during broadcast (or after NEWLEADER).
    pub(super) fn learner_append(&mut self, p: Proposal, committed: bool) {
        if !self.learner_accepts(&p) {
            return;
        }
        let State::Learning(l) = &mut self.state else {
            return;
        };
        l.last_queued = p.zxid;
        let serving = l.phase == Phase::Serving;
        if committed {
            // INFORM (observers): committed already.
            self.log.push(p.clone());
            self.emit(Action::Append(p.clone()));
            if serving {
                self.apply(p);
            } else if let State::Learning(l) = &mut self.state {
                l.uncommitted.push_back(p.clone());
                l.early_commits.push_back(p.zxid);
            }
            return;
        }
        l.uncommitted.push_back(p.clone());
        if !l.observer {
            l.unacked.push_back(p.zxid);
        }
        self.log.push(p.clone());
        self.emit(Action::Append(p));
    }

    /// A COMMIT after NEWLEADER.
    pub(super) fn learner_commit_packet(&mut self, zxid: Zxid) {
        let State::Learning(l) = &mut self.state else {
            return;
        };
        if l.phase == Phase::Serving {
            self.learner_commit(zxid);
        } else {
            l.early_commits.push_back(zxid);
        }
    }
}

/// `syncFollower` + `queueCommittedProposals` on the leader's recent committed txns
/// `(base, max]`: the packets (DIFF or TRUNC first) and the zxid the learner is synced to,
/// or `None` for SNAP.
pub(super) fn plan_sync(
    peer: Zxid,
    base: Zxid,
    max: Zxid,
    committed: &[&Proposal],
) -> Option<(Vec<Message>, Zxid)> {
    let new_epoch_start = zxid::counter(peer) == 0;
    if peer == max {
        return Some((vec![Message::Diff { zxid: max }], max));
    }
    if peer > max && !new_epoch_start {
        return Some((vec![Message::Trunc { zxid: max }], max));
    }
    if peer < base || peer > max {
        return None;
    }
    let mut packets = Vec::new();
    let mut queued = peer;
    let mut prev = base;
    let mut need_op = true;
    if peer == base {
        packets.push(Message::Diff { zxid: max });
        need_op = false;
    }
    for p in committed {
        let z = p.zxid;
        if z < peer {
            prev = z;
            continue;
        }
        if need_op {
            if z == peer {
                packets.push(Message::Diff { zxid: max });
                need_op = false;
                continue;
            }
            if new_epoch_start {
                packets.push(Message::Diff { zxid: max });
                need_op = false;
            } else if z > peer {
                if zxid::epoch(z) != zxid::epoch(peer) {
                    // A TRUNC may not cross an epoch boundary: SNAP.
                    return None;
                }
                packets.push(Message::Trunc { zxid: prev });
                need_op = false;
            }
        }
        if z <= queued {
            continue;
        }
        packets.push(Message::Proposal((*p).clone()));
        packets.push(Message::Commit { zxid: z });
        queued = z;
    }
    if need_op && new_epoch_start {
        packets.push(Message::Diff { zxid: max });
        need_op = false;
    }
    if need_op {
        return None;
    }
    Some((packets, queued.max(peer)))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use super::plan_sync;
    use bytes::Bytes;

    fn modes(packets: &[Message]) -> Vec<String> {
        packets
            .iter()
            .map(|m| match m {
                Message::Proposal(p) => format!("P{:x}", p.zxid),
                Message::Commit { zxid } => format!("C{zxid:x}"),
                Message::Diff { zxid } => format!("DIFF{zxid:x}"),
                Message::Trunc { zxid } => format!("TRUNC{zxid:x}"),
                other => other.name().to_owned(),
            })
            .collect()
    }

    #[test]
    fn sync_mode_table() {
        let z = zxid::make;
        let log: Vec<Proposal> = [z(1, 1), z(1, 2), z(1, 3), z(2, 1), z(2, 2)]
            .into_iter()
            .map(proposal)
            .collect();
        let refs: Vec<&Proposal> = log.iter().collect();
        let max = z(2, 2);
        // Up to date: empty DIFF.
        let (p, to) = plan_sync(max, 0, max, &refs).unwrap();
        assert_eq!(modes(&p), vec!["DIFF200000002"]);
        assert_eq!(to, max);
        // Behind inside the window: DIFF and the missing txns, each with its COMMIT.
        let (p, _) = plan_sync(z(1, 2), 0, max, &refs).unwrap();
        assert_eq!(
            modes(&p),
            vec![
                "DIFF200000002",
                "P100000003",
                "C100000003",
                "P200000001",
                "C200000001",
                "P200000002",
                "C200000002"
            ]
        );
        // Ahead of the leader (uncommitted txns of its own): TRUNC to the leader's last.
        let (p, to) = plan_sync(z(2, 5), 0, max, &refs).unwrap();
        assert_eq!(modes(&p), vec!["TRUNC200000002"]);
        assert_eq!(to, max);
        // A txn of epoch 1 the leader never had, followed in the leader's log by epoch 2:
        // TRUNC would cross an epoch, so SNAP.
        assert!(plan_sync(z(1, 4), 0, max, &refs).is_none());
        // Older than the window: SNAP.
        assert!(plan_sync(z(1, 1), z(1, 1) + 1, max, &refs[1..]).is_none());
        // Exactly at the window's base: DIFF with everything.
        let (p, _) = plan_sync(z(1, 1), z(1, 1), max, &refs[1..]).unwrap();
        assert_eq!(modes(&p).len(), 9);
        // A learner at a new epoch's start (counter 0) is never truncated.
        let (p, _) = plan_sync(z(2, 0), 0, max, &refs).unwrap();
        assert_eq!(modes(&p)[0], "DIFF200000002");
        assert!(plan_sync(z(3, 0), 0, max, &refs).is_none());
        // An empty leader and a learner with txns: TRUNC to 0.
        let (p, _) = plan_sync(z(1, 2), 0, 0, &[]).unwrap();
        assert_eq!(modes(&p), vec!["TRUNC0"]);
    }

    #[test]
    fn leader_sends_snap_when_the_learner_is_too_far_behind() {
        let mut cfg = ZabConfig::new(1, [1, 2, 3]);
        cfg.commit_log_count = 2;
        let recent: Vec<Proposal> = (4..=5).map(|c| proposal(zxid::make(1, c))).collect();
        let r = Restored {
            accepted_epoch: 1,
            current_epoch: 1,
            last_zxid: zxid::make(1, 5),
            recent,
            recent_base: zxid::make(1, 3),
            updating_epoch: false,
        };
        let mut zab = leader_with(cfg, r);
        zab.step(
            1,
            Event::Packet {
                from: 2,
                message: Message::FollowerInfo { accepted_epoch: 1 },
            },
        );
        let actions = zab.step(
            2,
            Event::Packet {
                from: 2,
                message: Message::AckEpoch {
                    current_epoch: 1,
                    last_zxid: zxid::make(1, 1),
                },
            },
        );
        assert_eq!(
            actions[1..],
            [
                Action::SendSnapshot {
                    to: 2,
                    zxid: zxid::make(1, 5)
                },
                Action::Send {
                    to: 2,
                    message: Message::NewLeader {
                        zxid: zxid::make(2, 0)
                    }
                },
            ]
        );
    }

    /// Drives a learner (2, leader 1) up to the sync phase with a DIFF.
    fn syncing_learner() -> Zab {
        let mut zab = learner_of(2, 1, &[1, 2, 3], restored(1, 1, zxid::make(1, 2)));
        zab.step(1, Event::LeaderConnected);
        zab.step(
            2,
            Event::Packet {
                from: 1,
                message: Message::LeaderInfo { epoch: 2 },
            },
        );
        zab.step(
            3,
            Event::Packet {
                from: 1,
                message: Message::Diff {
                    zxid: zxid::make(1, 4),
                },
            },
        );
        zab
    }

    fn from_leader(zab: &mut Zab, now: Millis, message: Message) -> Vec<Action> {
        zab.step(now, Event::Packet { from: 1, message })
    }

    #[test]
    fn newleader_logs_and_syncs_before_current_epoch_before_the_ack() {
        // ZOOKEEPER-3911, -4646, -4785, -4643, -4685 in one ordering.
        let mut zab = syncing_learner();
        let p3 = proposal(zxid::make(1, 3));
        let p4 = proposal(zxid::make(1, 4));
        assert!(from_leader(&mut zab, 4, Message::Proposal(p3.clone())).is_empty());
        assert!(from_leader(&mut zab, 5, Message::Commit { zxid: p3.zxid }).is_empty());
        assert!(from_leader(&mut zab, 6, Message::Proposal(p4.clone())).is_empty());
        assert_eq!(zab.last_logged(), zxid::make(1, 2), "DIFF moves nothing");
        let actions = from_leader(
            &mut zab,
            7,
            Message::NewLeader {
                zxid: zxid::make(2, 0),
            },
        );
        assert_eq!(
            actions,
            vec![
                Action::MarkUpdatingEpoch,
                Action::Append(p3.clone()),
                Action::Append(p4.clone()),
                Action::SyncLog,
                Action::SaveCurrentEpoch(2),
                Action::Send {
                    to: 1,
                    message: Message::Ack {
                        zxid: zxid::make(2, 0)
                    }
                },
                Action::Send {
                    to: 1,
                    message: Message::Ack { zxid: p3.zxid }
                },
                Action::Send {
                    to: 1,
                    message: Message::Ack { zxid: p4.zxid }
                },
            ]
        );
        assert_eq!(zab.last_logged(), p4.zxid);
        // UPTODATE: ack, apply what was committed, serve.
        let actions = from_leader(&mut zab, 8, Message::UpToDate);
        assert_eq!(
            actions,
            vec![
                Action::Send {
                    to: 1,
                    message: Message::Ack {
                        zxid: zxid::make(2, 0)
                    }
                },
                Action::Apply(p3),
                Action::StartServing,
            ]
        );
        assert!(zab.is_serving());
        // p4's COMMIT after UPTODATE applies it.
        let actions = from_leader(&mut zab, 9, Message::Commit { zxid: p4.zxid });
        assert_eq!(actions, vec![Action::Apply(p4)]);
    }

    #[test]
    fn a_duplicate_proposal_is_ignored_and_a_gap_ends_the_sync() {
        // TLA+ issue 2 and ZOOKEEPER-4925.
        let mut zab = syncing_learner();
        let p3 = proposal(zxid::make(1, 3));
        from_leader(&mut zab, 4, Message::Proposal(p3.clone()));
        assert!(from_leader(&mut zab, 5, Message::Proposal(p3)).is_empty());
        assert_eq!(zab.state(), PeerState::Following);
        let actions = from_leader(&mut zab, 6, Message::Proposal(proposal(zxid::make(1, 5))));
        assert_eq!(zab.state(), PeerState::Looking);
        assert!(actions.contains(&Action::Disconnect { sid: 1 }));
    }

    #[test]
    fn trunc_and_snap_are_durable_first_and_set_the_last_zxid() {
        let mut zab = learner_of(2, 1, &[1, 2, 3], restored(1, 1, zxid::make(1, 9)));
        zab.step(1, Event::LeaderConnected);
        zab.step(
            2,
            Event::Packet {
                from: 1,
                message: Message::LeaderInfo { epoch: 2 },
            },
        );
        let actions = from_leader(
            &mut zab,
            3,
            Message::Trunc {
                zxid: zxid::make(1, 7),
            },
        );
        assert_eq!(actions, vec![Action::Truncate(zxid::make(1, 7))]);
        assert_eq!(zab.last_logged(), zxid::make(1, 7));

        let mut zab = learner_of(2, 1, &[1, 2, 3], restored(1, 1, zxid::make(1, 9)));
        zab.step(1, Event::LeaderConnected);
        zab.step(
            2,
            Event::Packet {
                from: 1,
                message: Message::LeaderInfo { epoch: 2 },
            },
        );
        let snapshot = Bytes::from_static(b"state");
        let actions = from_leader(
            &mut zab,
            3,
            Message::Snap {
                zxid: zxid::make(1, 20),
                snapshot: snapshot.clone(),
            },
        );
        assert_eq!(
            actions,
            vec![
                Action::MarkUpdatingEpoch,
                Action::InstallSnapshot {
                    zxid: zxid::make(1, 20),
                    snapshot
                }
            ]
        );
        assert_eq!(zab.last_logged(), zxid::make(1, 20));
    }

    #[test]
    fn the_leader_counts_only_a_newleader_ack_as_first_ack() {
        // ZOOKEEPER-4685: an ACK of a proposal arriving first is not the NEWLEADER ACK.
        let mut zab = leader_of(1, &[1, 2, 3], restored(1, 1, zxid::make(1, 3)));
        for (now, message) in [
            (1, Message::FollowerInfo { accepted_epoch: 1 }),
            (
                2,
                Message::AckEpoch {
                    current_epoch: 1,
                    last_zxid: zxid::make(1, 3),
                },
            ),
        ] {
            zab.step(now, Event::Packet { from: 2, message });
        }
        let actions = zab.step(
            3,
            Event::Packet {
                from: 2,
                message: Message::Ack {
                    zxid: zxid::make(1, 3),
                },
            },
        );
        assert!(actions.is_empty());
        assert!(!zab.is_serving());
        // With a correct NEWLEADER ACK from 3 the leader is established.
        for (now, message) in [
            (4, Message::FollowerInfo { accepted_epoch: 1 }),
            (
                5,
                Message::AckEpoch {
                    current_epoch: 1,
                    last_zxid: zxid::make(1, 3),
                },
            ),
        ] {
            zab.step(now, Event::Packet { from: 3, message });
        }
        let actions = zab.step(
            6,
            Event::Packet {
                from: 3,
                message: Message::Ack {
                    zxid: zxid::make(2, 0),
                },
            },
        );
        assert!(zab.is_serving());
        assert_eq!(
            actions,
            vec![
                Action::StartServing,
                Action::Send {
                    to: 2,
                    message: Message::UpToDate
                },
                Action::Send {
                    to: 3,
                    message: Message::UpToDate
                },
            ]
        );
    }

    #[test]
    fn a_commit_after_newleader_for_a_proposal_before_it_applies_at_uptodate() {
        // ZOOKEEPER-4394: PROPOSAL before NEWLEADER, its COMMIT after NEWLEADER and before
        // UPTODATE must find the pending txn.
        let mut zab = syncing_learner();
        let p3 = proposal(zxid::make(1, 3));
        from_leader(&mut zab, 4, Message::Proposal(p3.clone()));
        from_leader(
            &mut zab,
            5,
            Message::NewLeader {
                zxid: zxid::make(2, 0),
            },
        );
        assert!(from_leader(&mut zab, 6, Message::Commit { zxid: p3.zxid }).is_empty());
        let actions = from_leader(&mut zab, 7, Message::UpToDate);
        assert!(actions.contains(&Action::Apply(p3)), "{actions:?}");
        assert_eq!(zab.state(), PeerState::Following);
    }

    #[test]
    fn uptodate_implies_everything_committed_so_far() {
        // TLA+ protocol-spec issue 3: every commit the leader sent before UPTODATE is applied
        // when serving starts, not just the last acked one.
        let mut zab = syncing_learner();
        let ps: Vec<Proposal> = (3..=5).map(|c| proposal(zxid::make(1, c))).collect();
        for (i, p) in ps.iter().enumerate() {
            from_leader(&mut zab, 10 + i as u64, Message::Proposal(p.clone()));
            from_leader(&mut zab, 20 + i as u64, Message::Commit { zxid: p.zxid });
        }
        from_leader(
            &mut zab,
            30,
            Message::NewLeader {
                zxid: zxid::make(2, 0),
            },
        );
        let actions = from_leader(&mut zab, 31, Message::UpToDate);
        let applied: Vec<Zxid> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Apply(p) => Some(p.zxid),
                _ => None,
            })
            .collect();
        assert_eq!(applied, ps.iter().map(|p| p.zxid).collect::<Vec<_>>());
    }

    #[test]
    fn a_snapshot_is_durable_before_the_newleader_ack() {
        // ZOOKEEPER-3642: SNAP state must be on disk before NEWLEADER is acked.
        let mut zab = learner_of(2, 1, &[1, 2, 3], restored(1, 1, zxid::make(1, 1)));
        zab.step(1, Event::LeaderConnected);
        let mut all = zab.step(
            2,
            Event::Packet {
                from: 1,
                message: Message::LeaderInfo { epoch: 2 },
            },
        );
        all.extend(from_leader(
            &mut zab,
            3,
            Message::Snap {
                zxid: zxid::make(1, 9),
                snapshot: Bytes::from_static(b"state"),
            },
        ));
        all.extend(from_leader(
            &mut zab,
            4,
            Message::NewLeader {
                zxid: zxid::make(2, 0),
            },
        ));
        let snap = all
            .iter()
            .position(|a| matches!(a, Action::InstallSnapshot { .. }))
            .unwrap();
        let ack = all
            .iter()
            .position(|a| {
                *a == Action::Send {
                    to: 1,
                    message: Message::Ack {
                        zxid: zxid::make(2, 0),
                    },
                }
            })
            .unwrap();
        assert!(snap < ack);
        assert_eq!(zab.last_logged(), zxid::make(1, 9));
    }

    #[test]
    fn forwarding_starts_at_the_sync_point_before_the_newleader_ack() {
        // TLA+ protocol-spec issue 1: a learner that joins while the leader broadcasts gets
        // every proposal made after its sync point, even before it acks NEWLEADER.
        let (mut zab, _) = established_leader(1, &[1, 2, 3], &[2]);
        for message in [
            Message::FollowerInfo { accepted_epoch: 1 },
            Message::AckEpoch {
                current_epoch: 1,
                last_zxid: zxid::make(1, 3),
            },
        ] {
            zab.step(300, Event::Packet { from: 3, message });
        }
        let p = proposal(zab.next_zxid().unwrap());
        let actions = zab.propose(301, p.clone()).unwrap();
        assert!(
            actions.contains(&Action::Send {
                to: 3,
                message: Message::Proposal(p)
            }),
            "{actions:?}"
        );
    }

    #[test]
    fn a_refused_truncate_keeps_the_state_and_leaves_the_leader() {
        let mut zab = learner_of(2, 1, &[1, 2, 3], restored(1, 1, zxid::make(1, 9)));
        zab.step(1, Event::LeaderConnected);
        zab.step(
            2,
            Event::Packet {
                from: 1,
                message: Message::LeaderInfo { epoch: 2 },
            },
        );
        from_leader(
            &mut zab,
            3,
            Message::Trunc {
                zxid: zxid::make(1, 4),
            },
        );
        let actions = zab.step(
            4,
            Event::TruncateRefused {
                last_zxid: zxid::make(1, 9),
            },
        );
        assert_eq!(zab.state(), PeerState::Looking);
        assert_eq!(zab.last_logged(), zxid::make(1, 9));
        assert!(actions.contains(&Action::Disconnect { sid: 1 }));
    }

    #[test]
    fn a_commit_for_a_proposal_not_held_ends_the_sync() {
        // Found with a simulator that broke TCP's order (seed 56685): a learner must never
        // record a COMMIT it cannot match, or it serves a state with a hole.
        let mut zab = syncing_learner();
        from_leader(&mut zab, 4, Message::Proposal(proposal(zxid::make(1, 3))));
        let actions = from_leader(
            &mut zab,
            5,
            Message::Commit {
                zxid: zxid::make(1, 4),
            },
        );
        assert_eq!(zab.state(), PeerState::Looking);
        assert!(actions.contains(&Action::Disconnect { sid: 1 }));
    }
}
