//! Discovery: the leader and a quorum agree on a new epoch (PROTOCOL.md 3.5).
//!
//! Leader: every connecting voter reports its acceptedEpoch (FOLLOWERINFO); the new epoch is
//! above all of them and the leader's own. Once voters that form a quorum (the leader
//! included) have reported, the leader stores acceptedEpoch = epoch and sends LEADERINFO.
//! Each learner promises the epoch (ACKEPOCH with its currentEpoch and last zxid); a learner
//! whose history is newer than the leader's is refused. Once a quorum has promised, the
//! leader stores currentEpoch = epoch and syncs every learner that has promised (see
//! [`sync`](super::sync)). Either wait is bounded by `initLimit` ticks; then the leader
//! gives up and a new election starts.
//!
//! Learner: FOLLOWERINFO / OBSERVERINFO carries acceptedEpoch; on LEADERINFO with a newer
//! epoch it stores acceptedEpoch **before** sending ACKEPOCH (with its currentEpoch); the
//! same epoch is acknowledged with -1 (it already promised); an older epoch is refused.

use std::collections::{BTreeMap, BTreeSet};

use super::broadcast::{Outstanding, SyncOrigin};
use super::message::{Message, PeerState, Proposal};
use super::sync::Learner;
use super::zxid::{self, Epoch, Zxid};
use super::{Action, Millis, Sid, State, Zab};

/// Where one learner's handler is (Apache's `LearnerHandler` thread, as data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// FOLLOWERINFO received; waiting for a quorum to fix the epoch.
    AwaitEpoch,
    /// LEADERINFO sent.
    AwaitAckEpoch,
    /// ACKEPOCH received; waiting for a quorum of promises.
    AwaitEpochQuorum {
        /// The learner's last zxid.
        last_zxid: Zxid,
    },
    /// Sync packets and NEWLEADER sent; the next packet must be the NEWLEADER ACK.
    AwaitNewLeaderAck,
    /// NEWLEADER acked; UPTODATE follows once the leader is established.
    AwaitUpToDate,
    /// UPTODATE sent: broadcast.
    Active,
}

/// The leader's view of one learner.
#[derive(Debug, Clone)]
pub(super) struct LearnerHandle {
    pub(super) observer: bool,
    pub(super) stage: Stage,
    /// Synced while `now <= deadline`; every packet from it moves the deadline.
    pub(super) deadline: Millis,
    /// Its sync point is fixed: it receives every new PROPOSAL/COMMIT (or INFORM).
    pub(super) forwarding: bool,
}

/// The leader's state.
#[derive(Debug)]
pub(super) struct Leader {
    /// (currentEpoch, last zxid) when it was elected: Apache's `leaderStateSummary`.
    summary: (Epoch, Zxid),
    pub(super) epoch: Epoch,
    pub(super) epoch_fixed: bool,
    /// Voters (the leader included) that reported their acceptedEpoch.
    connecting: BTreeSet<Sid>,
    /// Voters whose ACKEPOCH counts as a promise.
    promised: BTreeSet<Sid>,
    pub(super) epoch_acked: bool,
    pub(super) newleader_acks: BTreeSet<Sid>,
    pub(super) established: bool,
    /// Deadline of the current discovery/sync wait (`initLimit`).
    pub(super) phase_deadline: Millis,
    pub(super) learners: BTreeMap<Sid, LearnerHandle>,
    pub(super) outstanding: BTreeMap<Zxid, Outstanding>,
    pub(super) last_proposed: Zxid,
    pub(super) last_committed: Zxid,
    pub(super) pending_syncs: Vec<(Zxid, SyncOrigin)>,
    pub(super) next_ping: Millis,
    pub(super) tick_skip: bool,
}

impl Leader {
    pub(super) fn next_deadline(&self) -> Option<Millis> {
        let mut at = if self.established {
            self.next_ping
        } else {
            self.phase_deadline
        };
        for h in self.learners.values() {
            if h.stage != Stage::Active && h.stage != Stage::AwaitUpToDate {
                at = at.min(h.deadline);
            }
        }
        Some(at)
    }

    pub(super) fn learner_ids(&self) -> Vec<Sid> {
        self.learners.keys().copied().collect()
    }

    pub(super) fn has_learner(&self, sid: Sid) -> bool {
        self.learners.contains_key(&sid)
    }

    /// Forgets a learner; whether it was known. Its ACKs of outstanding proposals are
    /// forgotten too: a reconnecting learner may be truncated below them, and it acks them
    /// again when they are forwarded on its new connection (found by the simulator: a stale
    /// ACK made a commit durable on a minority).
    pub(super) fn remove_learner(&mut self, sid: Sid) -> bool {
        self.connecting.remove(&sid);
        for o in self.outstanding.values_mut() {
            o.acks.remove(&sid);
        }
        self.learners.remove(&sid).is_some()
    }

    pub(super) fn learner_summary(&self) -> Vec<(Sid, bool)> {
        self.learners
            .iter()
            .map(|(sid, h)| (*sid, h.stage == Stage::Active))
            .collect()
    }

    /// The proposals still waiting for a quorum, in zxid order (to fast-forward on exit).
    pub(super) fn into_outstanding(self) -> Vec<Proposal> {
        self.outstanding.into_values().map(|o| o.proposal).collect()
    }
}

impl Zab {
    /// The election chose this member.
    pub(super) fn become_leader(&mut self) {
        let me = self.cfg.myid;
        let last = self.log.last_appended;
        let mut leader = Leader {
            summary: (self.current_epoch, self.log.last_durable),
            // Apache's getEpochToPropose starts from the leader's own acceptedEpoch.
            epoch: self.accepted_epoch + 1,
            epoch_fixed: false,
            connecting: BTreeSet::from([me]),
            promised: BTreeSet::new(),
            epoch_acked: false,
            newleader_acks: BTreeSet::new(),
            established: false,
            phase_deadline: self.now + self.cfg.init_ms(),
            learners: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            last_proposed: last,
            last_committed: last,
            pending_syncs: Vec::new(),
            next_ping: Millis::MAX,
            tick_skip: false,
        };
        leader.promised.insert(me);
        self.state = State::Leading(Box::new(leader));
        let epoch = self.current_epoch;
        self.state_changed(PeerState::Leading, Some(me), epoch);
        self.maybe_fix_epoch();
    }

    /// The election chose another member: connect to it.
    pub(super) fn become_learner(&mut self, leader: Sid) {
        let observer = !self.cfg.is_participant();
        let deadline = self.now + self.cfg.init_ms();
        let last = self.log.last_appended;
        self.state = State::Learning(Box::new(Learner::new(leader, observer, deadline, last)));
        let state = if observer {
            PeerState::Observing
        } else {
            PeerState::Following
        };
        let epoch = self.current_epoch;
        self.state_changed(state, Some(leader), epoch);
        self.emit(Action::ConnectToLeader { leader });
    }

    /// Routes a packet from learner `from` by the stage of its handler.
    pub(super) fn leader_packet(&mut self, from: Sid, message: Message) {
        let now = self.now;
        let sync_ms = self.cfg.sync_ms();
        let State::Leading(l) = &mut self.state else {
            return;
        };
        if let Some(h) = l.learners.get_mut(&from) {
            // Apache's tickOfNextAckDeadline: every packet from the learner moves it.
            h.deadline = now + sync_ms;
        }
        match message {
            Message::FollowerInfo { accepted_epoch } => {
                self.on_learner_info(from, accepted_epoch, false)
            }
            Message::ObserverInfo { accepted_epoch } => {
                self.on_learner_info(from, accepted_epoch, true)
            }
            Message::AckEpoch {
                current_epoch,
                last_zxid,
            } => self.on_ack_epoch(from, current_epoch, last_zxid),
            Message::Ack { zxid } => self.leader_ack(from, zxid),
            Message::Ping { touches, .. } => {
                if !touches.is_empty() {
                    self.emit(Action::TouchSessions { from, touches });
                }
            }
            Message::Request { data, auth } => {
                if self.leader_is_active(from) {
                    self.emit(Action::LearnerRequest { from, data, auth });
                }
            }
            Message::Revalidate { session, timeout } => {
                if self.leader_is_active(from) {
                    self.emit(Action::RevalidateRequest {
                        from,
                        session,
                        timeout,
                    });
                }
            }
            other => {
                tracing::warn!(
                    from,
                    packet = other.name(),
                    "unexpected packet from a learner"
                );
                self.drop_learner(from, "unexpected packet");
            }
        }
    }

    fn leader_is_active(&self, sid: Sid) -> bool {
        matches!(&self.state, State::Leading(l)
            if l.learners.get(&sid).is_some_and(|h| matches!(h.stage, Stage::Active | Stage::AwaitUpToDate)))
    }

    pub(super) fn drop_learner(&mut self, sid: Sid, why: &str) {
        if let State::Leading(l) = &mut self.state
            && l.remove_learner(sid)
        {
            tracing::warn!(sid, why, "closing the connection to a learner");
            self.emit(Action::Disconnect { sid });
        }
    }

    fn on_learner_info(&mut self, from: Sid, accepted_epoch: Epoch, observer_info: bool) {
        let now = self.now;
        let deadline = now + self.cfg.init_ms() + self.cfg.sync_ms();
        let is_voter = self.cfg.voters.contains(from);
        if !self.cfg.is_member(from) || from == self.cfg.myid || (is_voter && observer_info) {
            tracing::warn!(
                from,
                observer_info,
                "a learner that is not in the configuration (or in another role) connected"
            );
            self.emit(Action::Disconnect { sid: from });
            return;
        }
        let State::Leading(l) = &mut self.state else {
            return;
        };
        // A new connection from a known learner replaces the old one.
        l.remove_learner(from);
        l.learners.insert(
            from,
            LearnerHandle {
                observer: !is_voter,
                stage: Stage::AwaitEpoch,
                deadline,
                forwarding: false,
            },
        );
        if l.epoch_fixed {
            let epoch = l.epoch;
            if let Some(h) = l.learners.get_mut(&from) {
                h.stage = Stage::AwaitAckEpoch;
            }
            self.send(from, Message::LeaderInfo { epoch });
            return;
        }
        if accepted_epoch >= l.epoch {
            l.epoch = accepted_epoch + 1;
        }
        if is_voter {
            l.connecting.insert(from);
        }
        self.maybe_fix_epoch();
    }

    /// Fixes the epoch once a quorum of voters reported: acceptedEpoch is stored, then
    /// LEADERINFO goes to every waiting learner.
    fn maybe_fix_epoch(&mut self) {
        let State::Leading(l) = &mut self.state else {
            return;
        };
        if l.epoch_fixed || !self.cfg.voters.is_quorum(&l.connecting) {
            return;
        }
        l.epoch_fixed = true;
        let epoch = l.epoch;
        let waiting: Vec<Sid> = l
            .learners
            .iter_mut()
            .filter(|(_, h)| h.stage == Stage::AwaitEpoch)
            .map(|(sid, h)| {
                h.stage = Stage::AwaitAckEpoch;
                *sid
            })
            .collect();
        self.accepted_epoch = epoch;
        self.emit(Action::SaveAcceptedEpoch(epoch));
        tracing::info!(myid = self.cfg.myid, epoch, "leader: new epoch fixed");
        for sid in waiting {
            self.send(sid, Message::LeaderInfo { epoch });
        }
        self.maybe_finish_discovery();
    }

    fn on_ack_epoch(&mut self, from: Sid, current_epoch: Epoch, last_zxid: Zxid) {
        let State::Leading(l) = &mut self.state else {
            return;
        };
        // Compared with the leader's state when elected, and only until a quorum promised
        // (Apache's waitForEpochAck returns at once after that).
        let mine = l.summary;
        let checked = !l.epoch_acked;
        let Some(h) = l.learners.get_mut(&from) else {
            return;
        };
        if h.stage != Stage::AwaitAckEpoch {
            self.drop_learner(from, "ACKEPOCH out of order");
            return;
        }
        if checked && current_epoch != -1 && (current_epoch, last_zxid) > mine {
            // waitForEpochAck: "Follower is ahead of the leader".
            tracing::warn!(
                from,
                current_epoch,
                last_zxid = %zxid::hex(last_zxid),
                "learner is ahead of the leader"
            );
            self.drop_learner(from, "learner is ahead of the leader");
            return;
        }
        h.stage = Stage::AwaitEpochQuorum { last_zxid };
        let observer = h.observer;
        if current_epoch != -1 && !observer {
            l.promised.insert(from);
        }
        if l.epoch_acked {
            self.sync_learner(from, last_zxid);
        } else {
            self.maybe_finish_discovery();
        }
    }

    /// Once a quorum promised: currentEpoch is stored and every promised learner is synced.
    fn maybe_finish_discovery(&mut self) {
        let now = self.now;
        let init_ms = self.cfg.init_ms();
        let me = self.cfg.myid;
        let State::Leading(l) = &mut self.state else {
            return;
        };
        if !l.epoch_fixed || l.epoch_acked || !self.cfg.voters.is_quorum(&l.promised) {
            return;
        }
        l.epoch_acked = true;
        l.phase_deadline = now + init_ms;
        l.newleader_acks.insert(me);
        let epoch = l.epoch;
        let ready: Vec<(Sid, Zxid)> = l
            .learners
            .iter()
            .filter_map(|(sid, h)| match h.stage {
                Stage::AwaitEpochQuorum { last_zxid } => Some((*sid, last_zxid)),
                _ => None,
            })
            .collect();
        self.current_epoch = epoch;
        self.emit(Action::SaveCurrentEpoch(epoch));
        tracing::info!(myid = me, epoch, "leader: a quorum promised the epoch");
        for (sid, last_zxid) in ready {
            self.sync_learner(sid, last_zxid);
        }
        self.maybe_establish();
    }

    /// Learner side: LEADERINFO.
    pub(super) fn learner_leader_info(&mut self, epoch: Epoch) {
        let accepted = self.accepted_epoch;
        let current = self.current_epoch;
        let last = self.log.last_durable;
        let State::Learning(l) = &mut self.state else {
            return;
        };
        let leader = l.leader;
        if epoch < accepted {
            let why = format!("the leader's epoch {epoch} is below the accepted epoch {accepted}");
            self.give_up(&why);
            return;
        }
        l.new_epoch = epoch;
        l.phase = super::sync::Phase::AwaitSyncMode;
        let reported = if epoch > accepted {
            self.accepted_epoch = epoch;
            self.emit(Action::SaveAcceptedEpoch(epoch));
            current
        } else {
            -1
        };
        self.send(
            leader,
            Message::AckEpoch {
                current_epoch: reported,
                last_zxid: last,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;

    #[test]
    fn the_new_epoch_is_above_every_accepted_epoch_of_the_quorum() {
        let mut zab = leader_of(1, &[1, 2, 3], restored(3, 3, zxid::make(3, 5)));
        // The leader alone is not a quorum: nothing stored yet.
        let actions = zab.step(
            10,
            Event::Packet {
                from: 2,
                message: Message::FollowerInfo { accepted_epoch: 6 },
            },
        );
        assert_eq!(
            actions,
            vec![
                Action::SaveAcceptedEpoch(7),
                Action::Send {
                    to: 2,
                    message: Message::LeaderInfo { epoch: 7 }
                },
            ],
            "acceptedEpoch is stored before LEADERINFO leaves"
        );
        assert_eq!(zab.accepted_epoch(), 7);
        // A late learner gets the fixed epoch at once.
        let actions = zab.step(
            11,
            Event::Packet {
                from: 3,
                message: Message::FollowerInfo { accepted_epoch: 9 },
            },
        );
        assert_eq!(
            actions,
            vec![Action::Send {
                to: 3,
                message: Message::LeaderInfo { epoch: 7 }
            }]
        );
    }

    #[test]
    fn current_epoch_is_stored_once_a_quorum_promised_and_then_learners_sync() {
        let mut zab = leader_of(1, &[1, 2, 3], restored(1, 1, zxid::make(1, 3)));
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
                    last_zxid: zxid::make(1, 3),
                },
            },
        );
        assert_eq!(
            actions,
            vec![
                Action::SaveCurrentEpoch(2),
                Action::Send {
                    to: 2,
                    message: Message::Diff {
                        zxid: zxid::make(1, 3)
                    }
                },
                Action::Send {
                    to: 2,
                    message: Message::NewLeader {
                        zxid: zxid::make(2, 0)
                    }
                },
            ]
        );
        assert_eq!(zab.current_epoch(), 2);
    }

    #[test]
    fn a_promise_of_an_epoch_already_accepted_does_not_count() {
        let mut zab = leader_of(1, &[1, 2, 3], restored(1, 1, zxid::make(1, 3)));
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
                    current_epoch: -1,
                    last_zxid: zxid::make(1, 3),
                },
            },
        );
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(zab.current_epoch(), 1);
    }

    #[test]
    fn a_learner_ahead_of_the_leader_is_refused() {
        let mut zab = leader_of(1, &[1, 2, 3], restored(1, 1, zxid::make(1, 3)));
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
                    last_zxid: zxid::make(1, 9),
                },
            },
        );
        assert_eq!(actions, vec![Action::Disconnect { sid: 2 }]);
    }

    #[test]
    fn the_leader_gives_up_without_a_quorum_within_init_limit() {
        let mut zab = leader_of(1, &[1, 2, 3], restored(1, 1, zxid::make(1, 3)));
        assert_eq!(zab.poll_timeout(), Some(20_200));
        let actions = zab.step(20_200, Event::Timeout);
        assert_eq!(zab.state(), PeerState::Looking);
        assert!(!notifications(&actions).is_empty());
    }

    #[test]
    fn learner_stores_accepted_epoch_before_ackepoch() {
        let mut zab = learner_of(2, 1, &[1, 2, 3], restored(4, 3, zxid::make(3, 7)));
        let actions = zab.step(1, Event::LeaderConnected);
        assert_eq!(
            actions,
            vec![Action::Send {
                to: 1,
                message: Message::FollowerInfo { accepted_epoch: 4 }
            }]
        );
        let actions = zab.step(
            2,
            Event::Packet {
                from: 1,
                message: Message::LeaderInfo { epoch: 5 },
            },
        );
        assert_eq!(
            actions,
            vec![
                Action::SaveAcceptedEpoch(5),
                Action::Send {
                    to: 1,
                    message: Message::AckEpoch {
                        current_epoch: 3,
                        last_zxid: zxid::make(3, 7)
                    }
                },
            ]
        );
    }

    #[test]
    fn learner_acks_an_already_accepted_epoch_with_minus_one_and_refuses_an_older_one() {
        let mut zab = learner_of(2, 1, &[1, 2, 3], restored(4, 3, zxid::make(3, 7)));
        zab.step(1, Event::LeaderConnected);
        let actions = zab.step(
            2,
            Event::Packet {
                from: 1,
                message: Message::LeaderInfo { epoch: 4 },
            },
        );
        assert_eq!(
            actions,
            vec![Action::Send {
                to: 1,
                message: Message::AckEpoch {
                    current_epoch: -1,
                    last_zxid: zxid::make(3, 7)
                }
            }]
        );
        let mut zab = learner_of(2, 1, &[1, 2, 3], restored(4, 3, zxid::make(3, 7)));
        zab.step(1, Event::LeaderConnected);
        let actions = zab.step(
            2,
            Event::Packet {
                from: 1,
                message: Message::LeaderInfo { epoch: 3 },
            },
        );
        assert_eq!(zab.state(), PeerState::Looking);
        assert!(actions.contains(&Action::Disconnect { sid: 1 }));
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::SaveAcceptedEpoch(_)))
        );
    }

    #[test]
    fn after_the_epoch_quorum_a_late_learner_is_not_compared_with_the_new_epoch() {
        // Apache compares ACKEPOCH with the leader's state when elected (leaderStateSummary)
        // and only until a quorum promised; comparing with the new currentEpoch let a
        // learner holding an unestablished epoch's history in (simulator, seed 12271).
        let mut zab = leader_of(1, &[1, 2, 3], restored(1, 1, zxid::make(1, 3)));
        for message in [
            Message::FollowerInfo { accepted_epoch: 1 },
            Message::AckEpoch {
                current_epoch: 1,
                last_zxid: zxid::make(1, 3),
            },
        ] {
            zab.step(1, Event::Packet { from: 2, message });
        }
        assert_eq!(zab.current_epoch(), 2);
        zab.step(
            2,
            Event::Packet {
                from: 3,
                message: Message::FollowerInfo { accepted_epoch: 2 },
            },
        );
        // 3 acked an epoch-2 NEWLEADER of a leader that never got a quorum: it is synced
        // (TRUNC), not compared with this leader's new currentEpoch.
        let actions = zab.step(
            3,
            Event::Packet {
                from: 3,
                message: Message::AckEpoch {
                    current_epoch: 2,
                    last_zxid: zxid::make(1, 5),
                },
            },
        );
        assert_eq!(
            actions[0],
            Action::Send {
                to: 3,
                message: Message::Trunc {
                    zxid: zxid::make(1, 3)
                }
            }
        );
    }
}
