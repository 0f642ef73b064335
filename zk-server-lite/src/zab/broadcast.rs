//! Broadcast: the established leader orders writes (PROTOCOL.md 3.7).
//!
//! The leader appends a proposal to its log and sends it to every forwarding voter; each
//! voter appends it and ACKs once it is durable (the leader acks itself the same way). A
//! proposal commits when a quorum acked it and every earlier one has committed: COMMIT to
//! voters, INFORM (the txn) to observers, apply. PING every half tick carries the last
//! proposed zxid; answers carry the sessions learners' clients touched. Each tick the leader
//! checks that a quorum of voters is still synced (heard from within `syncLimit` ticks) and
//! steps down otherwise; a learner that does not ACK an old proposal within `syncLimit` is
//! dropped. A learner that hears nothing for `syncLimit` ticks goes back to election (see
//! `Zab::on_timeout`).

use std::collections::BTreeSet;

use super::discovery::Stage;
use super::message::{Message, Proposal};
use super::zxid::{self, Zxid};
use super::{Action, Millis, Sid, State, Zab, ZabError};

/// A proposal waiting for its quorum.
#[derive(Debug, Clone)]
pub(super) struct Outstanding {
    pub(super) proposal: Proposal,
    pub(super) acks: BTreeSet<Sid>,
    pub(super) proposed_at: Millis,
}

/// Who asked for a `sync` on the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOrigin {
    /// A client of the leader itself; answered with [`Action::SyncDone`] carrying the token.
    Local(u64),
    /// A learner that forwarded a client's sync; answered with SYNC.
    Learner(Sid),
}

impl Zab {
    pub(super) fn leader_propose(&mut self, proposal: Proposal) -> Result<(), ZabError> {
        let now = self.now;
        let serving = self.serving;
        let State::Leading(l) = &mut self.state else {
            return Err(ZabError::NotLeader);
        };
        if !l.established || !serving {
            return Err(ZabError::NotLeader);
        }
        let expected = l.last_proposed + 1;
        if proposal.zxid != expected {
            return Err(ZabError::ZxidMismatch {
                got: proposal.zxid,
                expected,
            });
        }
        if zxid::counter(proposal.zxid) > zxid::MAX_COUNTER {
            let epoch = l.epoch;
            self.give_up("the zxid counter is exhausted (ZOOKEEPER-1277)");
            return Err(ZabError::CounterExhausted(epoch));
        }
        l.last_proposed = proposal.zxid;
        l.outstanding.insert(
            proposal.zxid,
            Outstanding {
                proposal: proposal.clone(),
                acks: BTreeSet::new(),
                proposed_at: now,
            },
        );
        let to: Vec<Sid> = l
            .learners
            .iter()
            .filter(|(_, h)| h.forwarding && !h.observer)
            .map(|(sid, _)| *sid)
            .collect();
        self.log.push(proposal.clone());
        self.emit(Action::Append(proposal.clone()));
        for sid in to {
            self.send(sid, Message::Proposal(proposal.clone()));
        }
        Ok(())
    }

    /// The leader's own log became durable: it acks its proposals.
    pub(super) fn leader_logged(&mut self) {
        let durable = self.log.last_durable;
        let me = self.cfg.myid;
        let State::Leading(l) = &mut self.state else {
            return;
        };
        let mine: Vec<Zxid> = l
            .outstanding
            .range(..=durable)
            .filter(|(_, o)| !o.acks.contains(&me))
            .map(|(z, _)| *z)
            .collect();
        for z in mine {
            self.process_ack(me, z);
        }
    }

    /// `Leader.processAck`.
    pub(super) fn process_ack(&mut self, from: Sid, ack: Zxid) {
        let State::Leading(l) = &mut self.state else {
            return;
        };
        if zxid::counter(ack) == 0 || ack <= l.last_committed {
            return;
        }
        let Some(o) = l.outstanding.get_mut(&ack) else {
            tracing::warn!(from, ack = %zxid::hex(ack), "ACK for an unknown proposal");
            return;
        };
        o.acks.insert(from);
        self.try_commit();
    }

    /// Commits, in zxid order, every leading proposal that has its quorum.
    fn try_commit(&mut self) {
        loop {
            let State::Leading(l) = &mut self.state else {
                return;
            };
            let Some((&z, o)) = l.outstanding.first_key_value() else {
                return;
            };
            if !self.cfg.voters.is_quorum(&o.acks) {
                return;
            }
            let Some(o) = l.outstanding.remove(&z) else {
                return;
            };
            l.last_committed = z;
            let mut voters = Vec::new();
            let mut observers = Vec::new();
            for (sid, h) in &l.learners {
                if h.forwarding {
                    if h.observer {
                        observers.push(*sid);
                    } else {
                        voters.push(*sid);
                    }
                }
            }
            let syncs: Vec<SyncOrigin> = {
                let (done, waiting): (Vec<_>, Vec<_>) =
                    l.pending_syncs.drain(..).partition(|(at, _)| *at <= z);
                l.pending_syncs = waiting;
                done.into_iter().map(|(_, origin)| origin).collect()
            };
            for sid in voters {
                self.send(sid, Message::Commit { zxid: z });
            }
            for sid in observers {
                self.send(sid, Message::Inform(o.proposal.clone()));
            }
            self.apply(o.proposal);
            self.log.trim(z);
            for origin in syncs {
                self.answer_sync(origin);
            }
        }
    }

    fn answer_sync(&mut self, origin: SyncOrigin) {
        match origin {
            SyncOrigin::Local(token) => self.emit(Action::SyncDone { token }),
            SyncOrigin::Learner(sid) => {
                if let State::Leading(l) = &self.state
                    && l.has_learner(sid)
                {
                    self.send(sid, Message::Sync);
                }
            }
        }
    }

    pub(super) fn leader_sync(&mut self, origin: SyncOrigin) -> Result<(), ZabError> {
        let State::Leading(l) = &mut self.state else {
            return Err(ZabError::NotLeader);
        };
        if !l.established {
            return Err(ZabError::NotLeader);
        }
        if l.outstanding.is_empty() {
            self.answer_sync(origin);
        } else {
            l.pending_syncs.push((l.last_proposed, origin));
        }
        Ok(())
    }

    /// Phase deadlines before the leader is established; pings and the synced-quorum check
    /// after.
    pub(super) fn leader_timeout(&mut self) {
        let now = self.now;
        let half_tick = (self.cfg.tick_ms / 2).max(1);
        let sync_ms = self.cfg.sync_ms();
        let me = self.cfg.myid;
        let State::Leading(l) = &mut self.state else {
            return;
        };
        // Learners stuck before their sync is done.
        let stuck: Vec<Sid> = l
            .learners
            .iter()
            .filter(|(_, h)| {
                !matches!(h.stage, Stage::Active | Stage::AwaitUpToDate) && now >= h.deadline
            })
            .map(|(sid, _)| *sid)
            .collect();
        if !l.established {
            if now >= l.phase_deadline {
                let why = if !l.epoch_fixed {
                    "timeout while waiting for epoch from quorum"
                } else if !l.epoch_acked {
                    "timeout while waiting for epoch to be acked by quorum"
                } else {
                    "timeout while waiting for NEWLEADER to be acked by quorum"
                };
                self.give_up(why);
                return;
            }
            for sid in stuck {
                self.drop_learner(sid, "no progress within initLimit");
            }
            return;
        }
        for sid in stuck {
            self.drop_learner(sid, "no progress within initLimit");
        }
        let State::Leading(l) = &mut self.state else {
            return;
        };
        if now < l.next_ping {
            return;
        }
        l.next_ping = now + half_tick;
        // Every other half tick: is a quorum still synced?
        if !l.tick_skip {
            let mut synced = vec![me];
            synced.extend(
                l.learners
                    .iter()
                    .filter(|(_, h)| !h.observer && now <= h.deadline)
                    .map(|(sid, _)| *sid),
            );
            if !self.cfg.voters.is_quorum(&synced) {
                let why = format!("not sufficient followers synced, only synced with {synced:?}");
                self.give_up(&why);
                return;
            }
        }
        let State::Leading(l) = &mut self.state else {
            return;
        };
        l.tick_skip = !l.tick_skip;
        // A voter that has not acked an old proposal within syncLimit is dropped.
        let lagging: Vec<Sid> = l
            .learners
            .iter()
            .filter(|(sid, h)| {
                !h.observer
                    && h.stage == Stage::Active
                    && l.outstanding
                        .values()
                        .next()
                        .is_some_and(|o| !o.acks.contains(sid) && o.proposed_at + sync_ms < now)
            })
            .map(|(sid, _)| *sid)
            .collect();
        let zxid = l.last_proposed;
        let everyone: Vec<Sid> = l.learners.keys().copied().collect();
        for sid in lagging {
            self.drop_learner(sid, "transaction timeout: no ACK within syncLimit");
        }
        for sid in everyone {
            if let State::Leading(l) = &self.state
                && l.has_learner(sid)
            {
                self.send(
                    sid,
                    Message::Ping {
                        zxid,
                        touches: Vec::new(),
                    },
                );
            }
        }
    }

    /// Packets from the leader after NEWLEADER.
    pub(super) fn learner_broadcast(&mut self, message: Message) {
        match message {
            Message::Proposal(p) => self.learner_append(p, false),
            Message::Inform(p) => self.learner_append(p, true),
            Message::Commit { zxid } => self.learner_commit_packet(zxid),
            Message::Ping { zxid, .. } => {
                let touches = std::mem::take(&mut self.touches);
                if let Some(leader) = self.leader() {
                    self.send(leader, Message::Ping { zxid, touches });
                }
            }
            Message::RevalidateReply { session, valid } => {
                self.emit(Action::Revalidated { session, valid })
            }
            Message::Sync => self.emit(Action::SyncDone { token: 0 }),
            other => {
                let why = format!("unexpected {} from the leader", other.name());
                self.give_up(&why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use super::SyncOrigin;

    #[test]
    fn commit_needs_a_quorum_including_the_leaders_own_durable_ack() {
        let (mut zab, _) = established_leader(1, &[1, 2, 3], &[2, 3]);
        let p = proposal(zab.next_zxid().unwrap());
        let actions = zab.propose(100, p.clone()).unwrap();
        assert_eq!(
            actions,
            vec![
                Action::Append(p.clone()),
                Action::Send {
                    to: 2,
                    message: Message::Proposal(p.clone())
                },
                Action::Send {
                    to: 3,
                    message: Message::Proposal(p.clone())
                },
            ]
        );
        // A follower's ACK alone is not a quorum: the leader has not fsynced.
        let actions = zab.step(
            101,
            Event::Packet {
                from: 2,
                message: Message::Ack { zxid: p.zxid },
            },
        );
        assert!(actions.is_empty());
        // The leader's own fsync completes the quorum.
        let actions = zab.step(102, Event::Logged { zxid: p.zxid });
        assert_eq!(
            actions,
            vec![
                Action::Send {
                    to: 2,
                    message: Message::Commit { zxid: p.zxid }
                },
                Action::Send {
                    to: 3,
                    message: Message::Commit { zxid: p.zxid }
                },
                Action::Apply(p),
            ]
        );
    }

    #[test]
    fn commits_happen_in_zxid_order() {
        let (mut zab, _) = established_leader(1, &[1, 2, 3], &[2, 3]);
        let p1 = proposal(zab.next_zxid().unwrap());
        zab.propose(1, p1.clone()).unwrap();
        let p2 = proposal(zab.next_zxid().unwrap());
        zab.propose(2, p2.clone()).unwrap();
        // p2 gets a quorum first (a broken learner acking out of order): no commit.
        zab.step(
            3,
            Event::Packet {
                from: 2,
                message: Message::Ack { zxid: p2.zxid },
            },
        );
        let actions = zab.step(
            4,
            Event::Packet {
                from: 3,
                message: Message::Ack { zxid: p2.zxid },
            },
        );
        assert!(actions.is_empty(), "{actions:?}");
        // p1's quorum commits both, p1 first.
        zab.step(
            5,
            Event::Packet {
                from: 2,
                message: Message::Ack { zxid: p1.zxid },
            },
        );
        let actions = zab.step(
            6,
            Event::Packet {
                from: 3,
                message: Message::Ack { zxid: p1.zxid },
            },
        );
        let applied: Vec<Zxid> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Apply(p) => Some(p.zxid),
                _ => None,
            })
            .collect();
        assert_eq!(applied, vec![p1.zxid, p2.zxid]);
    }

    #[test]
    fn a_follower_acks_only_after_its_log_is_durable() {
        let mut zab = serving_follower(2, 1, &[1, 2, 3]);
        let p = proposal(zxid::make(2, 1));
        let actions = zab.step(
            10,
            Event::Packet {
                from: 1,
                message: Message::Proposal(p.clone()),
            },
        );
        assert_eq!(actions, vec![Action::Append(p.clone())]);
        let actions = zab.step(11, Event::Logged { zxid: p.zxid });
        assert_eq!(
            actions,
            vec![Action::Send {
                to: 1,
                message: Message::Ack { zxid: p.zxid }
            }]
        );
        assert_eq!(zab.last_logged(), p.zxid);
    }

    #[test]
    fn a_commit_for_another_txn_than_the_next_pending_one_ends_following() {
        // Apache exits here; we leave the role. ZOOKEEPER-4712: the log is drained (SyncLog)
        // before the state is brought up to it and a new election starts.
        let mut zab = serving_follower(2, 1, &[1, 2, 3]);
        zab.step(
            10,
            Event::Packet {
                from: 1,
                message: Message::Proposal(proposal(zxid::make(2, 1))),
            },
        );
        let actions = zab.step(
            11,
            Event::Packet {
                from: 1,
                message: Message::Commit {
                    zxid: zxid::make(2, 2),
                },
            },
        );
        assert_eq!(zab.state(), PeerState::Looking);
        // It drained its log and brought the state up to it before electing (ZK-4712).
        let sync_at = actions.iter().position(|a| *a == Action::SyncLog).unwrap();
        let apply_at = actions
            .iter()
            .position(|a| matches!(a, Action::FastForward(_)))
            .unwrap();
        assert!(sync_at < apply_at);
    }

    #[test]
    fn observers_get_inform_and_never_count() {
        let mut cfg = ZabConfig::new(1, [1, 2, 3]);
        cfg.observers.insert(4);
        let (mut zab, _) = established_leader_with(cfg, &[2, 4]);
        let p = proposal(zab.next_zxid().unwrap());
        let actions = zab.propose(1, p.clone()).unwrap();
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::Send { to: 4, .. }))
        );
        zab.step(2, Event::Logged { zxid: p.zxid });
        let actions = zab.step(
            3,
            Event::Packet {
                from: 4,
                message: Message::Ack { zxid: p.zxid },
            },
        );
        assert!(actions.is_empty(), "an observer's ACK never counts");
        let actions = zab.step(
            4,
            Event::Packet {
                from: 2,
                message: Message::Ack { zxid: p.zxid },
            },
        );
        assert!(actions.contains(&Action::Send {
            to: 4,
            message: Message::Inform(p.clone())
        }));
    }

    #[test]
    fn the_leader_steps_down_without_a_synced_quorum() {
        let (mut zab, _) = established_leader(1, &[1, 2, 3], &[2, 3]);
        // Pings every half tick (1 s); learners answer until syncLimit (10 s) passes.
        let mut now = 0;
        let mut pings = 0;
        while zab.state() == PeerState::Leading {
            now = zab.poll_timeout().unwrap();
            let actions = zab.step(now, Event::Timeout);
            pings += actions
                .iter()
                .filter(|a| {
                    matches!(
                        a,
                        Action::Send {
                            message: Message::Ping { .. },
                            ..
                        }
                    )
                })
                .count();
            assert!(now < 60_000, "never stepped down");
        }
        assert!(pings >= 2);
        assert!(now > 10_000 && now <= 13_000, "stepped down at {now}");
    }

    #[test]
    fn sync_waits_for_the_proposals_made_before_it() {
        let (mut zab, _) = established_leader(1, &[1, 2, 3], &[2, 3]);
        let actions = zab.sync(SyncOrigin::Local(7)).unwrap();
        assert_eq!(actions, vec![Action::SyncDone { token: 7 }]);
        let p = proposal(zab.next_zxid().unwrap());
        zab.propose(1, p.clone()).unwrap();
        assert!(zab.sync(SyncOrigin::Learner(2)).unwrap().is_empty());
        zab.step(2, Event::Logged { zxid: p.zxid });
        let actions = zab.step(
            3,
            Event::Packet {
                from: 3,
                message: Message::Ack { zxid: p.zxid },
            },
        );
        assert_eq!(
            actions.last(),
            Some(&Action::Send {
                to: 2,
                message: Message::Sync
            })
        );
    }

    #[test]
    fn members_report_the_epoch_they_serve_in() {
        // Apache's updateElectionVote (found by the simulator, seed 226): a restarted member
        // must see one (leader, epoch) from a quorum.
        let mut zab = serving_follower(2, 1, &[1, 2, 3]);
        let actions = zab.step(
            5,
            Event::Notification {
                from: 3,
                notification: Notification {
                    state: PeerState::Looking,
                    vote: Vote {
                        leader: 3,
                        zxid: 0,
                        peer_epoch: 0,
                    },
                    round: 9,
                },
            },
        );
        let sent = notifications(&actions);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1.vote.leader, 1);
        assert_eq!(
            sent[0].1.vote.peer_epoch, 2,
            "the new epoch, not the election's"
        );
    }

    #[test]
    fn learner_pings_carry_touched_sessions() {
        let mut zab = serving_follower(2, 1, &[1, 2, 3]);
        zab.touch_session(0x55, 30_000);
        zab.touch_session(0x66, 10_000);
        zab.touch_session(0x55, 30_000);
        let actions = zab.step(
            5,
            Event::Packet {
                from: 1,
                message: Message::Ping {
                    zxid: 9,
                    touches: vec![],
                },
            },
        );
        assert_eq!(
            actions,
            vec![Action::Send {
                to: 1,
                message: Message::Ping {
                    zxid: 9,
                    touches: vec![(0x55, 30_000), (0x66, 10_000)]
                }
            }]
        );
    }

    #[test]
    fn proposals_stop_before_the_counter_wraps() {
        // ZOOKEEPER-1277.
        let (mut zab, _) = established_leader(1, &[1, 2, 3], &[2, 3]);
        let epoch = zxid::epoch(zab.next_zxid().unwrap());
        zab.force_last_proposed(zxid::make(epoch, zxid::MAX_COUNTER));
        let z = zab.next_zxid().unwrap();
        let err = zab.propose(1, proposal(z)).unwrap_err();
        assert_eq!(err, ZabError::CounterExhausted(epoch));
        assert_eq!(zab.state(), PeerState::Looking);
    }
}
