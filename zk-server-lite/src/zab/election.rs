//! Fast leader election (Apache's `FastLeaderElection`, PROTOCOL.md 3.3).
//!
//! A LOOKING member starts a round (its logical clock), votes for itself (its last logged
//! zxid and currentEpoch) and tells every voter. It adopts a better vote (epoch, then zxid,
//! then sid), or a later round, and re-broadcasts. When a quorum of the round's votes equal
//! its own it waits `finalizeWait` for anything better and then decides. Members that are
//! already FOLLOWING or LEADING answer a LOOKING member with their current vote; a quorum of
//! those, with the leader itself reporting LEADING, lets a restarted member join a running
//! ensemble without an election. Notifications are re-sent after a silence that doubles
//! from `finalizeWait` up to `maxNotificationInterval`.

use std::collections::BTreeMap;

use super::message::{Notification, PeerState, Vote};
use super::{Millis, Sid, State, Zab};

/// A received vote as Apache's `Vote` compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ballot {
    vote: Vote,
    round: i64,
    state: PeerState,
}

impl Ballot {
    /// Apache's `Vote.equals`: when either side is LOOKING, everything must match (leader,
    /// zxid, round, epoch); between FOLLOWING/LEADING reports, the leader and its epoch.
    fn same_as(&self, other: &Ballot) -> bool {
        if self.state == PeerState::Looking || other.state == PeerState::Looking {
            self.vote == other.vote && self.round == other.round
        } else {
            self.vote.leader == other.vote.leader && self.vote.peer_epoch == other.vote.peer_epoch
        }
    }
}

/// One election in progress.
#[derive(Debug)]
pub(super) struct Election {
    proposal: Vote,
    /// Votes of this round (`recvset`).
    received: BTreeMap<Sid, Ballot>,
    /// Reports of members already following or leading (`outofelection`).
    out_of_election: BTreeMap<Sid, Ballot>,
    interval: u64,
    next_send: Millis,
    finalize_at: Option<Millis>,
}

impl Election {
    /// A placeholder, replaced by `start_election` at once.
    pub(super) fn idle() -> Election {
        Election {
            proposal: Vote {
                leader: i64::MIN,
                zxid: i64::MIN,
                peer_epoch: i64::MIN,
            },
            received: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            interval: 0,
            next_send: Millis::MAX,
            finalize_at: None,
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Millis> {
        Some(match self.finalize_at {
            Some(at) => at.min(self.next_send),
            None => self.next_send,
        })
    }
}

impl Zab {
    /// Apache's initial vote: itself, or for an observer a vote nobody accepts.
    fn initial_vote(&self) -> Vote {
        if self.cfg.is_participant() {
            Vote {
                leader: self.cfg.myid,
                zxid: self.log.last_durable,
                peer_epoch: self.current_epoch,
            }
        } else {
            Vote {
                leader: i64::MIN,
                zxid: i64::MIN,
                peer_epoch: i64::MIN,
            }
        }
    }

    /// Whether `candidate` beats `current` and may lead at all (a voter).
    fn better(&self, candidate: &Vote, current: &Vote) -> bool {
        self.cfg.voters.contains(candidate.leader) && candidate.beats(current)
    }

    /// Starts a new round (`lookForLeader`).
    pub(super) fn start_election(&mut self) {
        self.round += 1;
        let proposal = self.initial_vote();
        let interval = self.cfg.finalize_wait_ms.max(1);
        self.state = State::Looking(Election {
            proposal,
            received: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            interval,
            next_send: self.now + interval,
            finalize_at: None,
        });
        let epoch = self.current_epoch;
        self.state_changed(PeerState::Looking, None, epoch);
        self.send_notifications();
    }

    /// Tells every other voter the current proposal, and counts it as this member's own.
    fn send_notifications(&mut self) {
        let State::Looking(e) = &self.state else {
            return;
        };
        let n = Notification {
            state: PeerState::Looking,
            vote: e.proposal,
            round: self.round,
        };
        let me = self.cfg.myid;
        let others: Vec<Sid> = self.cfg.voters.iter().filter(|&s| s != me).collect();
        for to in others {
            self.emit(super::Action::SendNotification {
                to,
                notification: n,
            });
        }
        if self.cfg.voters.contains(me) {
            // Apache delivers its own notification through the loopback queue.
            self.looking_notification(me, n);
        }
    }

    pub(super) fn election_timeout(&mut self) {
        let now = self.now;
        let State::Looking(e) = &mut self.state else {
            return;
        };
        if let Some(at) = e.finalize_at
            && now >= at
        {
            let vote = e.proposal;
            self.decide(vote, self.round);
            return;
        }
        if now >= e.next_send {
            e.interval = (e.interval * 2).min(self.cfg.max_notification_interval_ms.max(1));
            e.next_send = now + e.interval;
            tracing::debug!(
                myid = self.cfg.myid,
                round = self.round,
                interval_ms = e.interval,
                "no notification: sending the vote again"
            );
            self.send_notifications();
        }
    }

    /// A notification arrives (the receiver thread and the election loop together).
    pub(super) fn on_notification(&mut self, from: Sid, n: Notification) {
        let looking = matches!(self.state, State::Looking(_));
        if !looking {
            // A member that has a leader answers LOOKING members (and non-voters) with its
            // current vote: that is how a restarted member joins without an election.
            if n.state == PeerState::Looking || !self.cfg.voters.contains(from) {
                let (vote, round) = self.current_vote;
                let state = self.state();
                self.emit(super::Action::SendNotification {
                    to: from,
                    notification: Notification { state, vote, round },
                });
            }
            return;
        }
        if !self.cfg.voters.contains(from) {
            // Observers' notifications are answered, never counted.
            let notification = self.looking_reply();
            self.emit(super::Action::SendNotification {
                to: from,
                notification,
            });
            return;
        }
        if n.state == PeerState::Looking && n.round < self.round {
            let notification = self.looking_reply();
            self.emit(super::Action::SendNotification {
                to: from,
                notification,
            });
        }
        if let State::Looking(e) = &mut self.state {
            e.next_send = self.now + e.interval;
        }
        self.looking_notification(from, n);
    }

    fn looking_reply(&self) -> Notification {
        let vote = match &self.state {
            State::Looking(e) => e.proposal,
            _ => self.current_vote.0,
        };
        Notification {
            state: PeerState::Looking,
            vote,
            round: self.round,
        }
    }

    /// The election loop's handling of one notification from a voter.
    fn looking_notification(&mut self, from: Sid, n: Notification) {
        if !self.cfg.voters.contains(n.vote.leader) {
            return;
        }
        let State::Looking(e) = &mut self.state else {
            return;
        };
        if e.finalize_at.is_some() {
            // Draining for finalizeWait: something better reopens the election; anything
            // else is dropped and the wait starts again.
            if self.cfg.voters.contains(n.vote.leader) && n.vote.beats(&e.proposal) {
                e.finalize_at = None;
            } else {
                e.finalize_at = Some(self.now + self.cfg.finalize_wait_ms);
                return;
            }
        }
        let ballot = Ballot {
            vote: n.vote,
            round: n.round,
            state: n.state,
        };
        match n.state {
            PeerState::Looking => {
                if n.round > self.round {
                    self.round = n.round;
                    let init = self.initial_vote();
                    let adopt = if self.better(&n.vote, &init) {
                        n.vote
                    } else {
                        init
                    };
                    if let State::Looking(e) = &mut self.state {
                        e.received.clear();
                        e.proposal = adopt;
                    }
                    self.send_notifications();
                } else if n.round < self.round {
                    return;
                } else {
                    let current = match &self.state {
                        State::Looking(e) => e.proposal,
                        _ => return,
                    };
                    if self.better(&n.vote, &current) {
                        if let State::Looking(e) = &mut self.state {
                            e.proposal = n.vote;
                        }
                        self.send_notifications();
                    }
                }
                let round = self.round;
                let now = self.now;
                let finalize_wait = self.cfg.finalize_wait_ms;
                let State::Looking(e) = &mut self.state else {
                    return;
                };
                e.received.insert(from, ballot);
                let target = Ballot {
                    vote: e.proposal,
                    round,
                    state: PeerState::Looking,
                };
                let agreeing: Vec<Sid> = e
                    .received
                    .iter()
                    .filter(|(_, b)| b.same_as(&target))
                    .map(|(s, _)| *s)
                    .collect();
                if self.cfg.voters.is_quorum(&agreeing) && e.finalize_at.is_none() {
                    e.finalize_at = Some(now + finalize_wait);
                }
            }
            PeerState::Observing => {}
            PeerState::Following | PeerState::Leading => {
                let me = self.cfg.myid;
                if n.round == self.round {
                    e.received.insert(from, ballot);
                    if decided_by(&e.received, &ballot, &self.cfg.voters, me, self.round) {
                        self.decide(n.vote, n.round);
                        return;
                    }
                }
                e.out_of_election.insert(from, ballot);
                if decided_by(
                    &e.out_of_election,
                    &ballot,
                    &self.cfg.voters,
                    me,
                    self.round,
                ) {
                    self.round = n.round;
                    self.decide(n.vote, n.round);
                }
            }
        }
    }

    /// The election is over: lead, follow or observe.
    fn decide(&mut self, vote: Vote, round: i64) {
        tracing::info!(
            myid = self.cfg.myid,
            leader = vote.leader,
            zxid = %super::zxid::hex(vote.zxid),
            peer_epoch = vote.peer_epoch,
            round,
            "election decided"
        );
        self.current_vote = (vote, round);
        if vote.leader == self.cfg.myid {
            self.become_leader();
        } else {
            self.become_learner(vote.leader);
        }
    }
}

/// Whether `votes` decide for `target`'s leader: a quorum reports the same vote, and the
/// leader itself reports LEADING (or is this member, in the same round) — Apache's
/// `checkLeader`.
fn decided_by(
    votes: &BTreeMap<Sid, Ballot>,
    target: &Ballot,
    voters: &super::Voters,
    me: Sid,
    round: i64,
) -> bool {
    let agreeing: Vec<Sid> = votes
        .iter()
        .filter(|(_, b)| b.same_as(target))
        .map(|(s, _)| *s)
        .collect();
    if !voters.is_quorum(&agreeing) {
        return false;
    }
    let leader = target.vote.leader;
    if leader == me {
        round == target.round
    } else {
        votes
            .get(&leader)
            .is_some_and(|b| b.state == PeerState::Leading)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;

    fn looking(leader: Sid, zxid: Zxid, peer_epoch: Epoch, round: i64) -> Notification {
        Notification {
            state: PeerState::Looking,
            vote: Vote {
                leader,
                zxid,
                peer_epoch,
            },
            round,
        }
    }

    #[test]
    fn starts_by_voting_for_itself_to_every_other_voter() {
        let (zab, actions) = member(2, &[1, 2, 3], restored(1, 1, zxid::make(1, 4)));
        assert_eq!(zab.state(), PeerState::Looking);
        assert_eq!(zab.round(), 1);
        let sent = notifications(&actions);
        assert_eq!(
            sent,
            vec![
                (1, looking(2, zxid::make(1, 4), 1, 1)),
                (3, looking(2, zxid::make(1, 4), 1, 1)),
            ]
        );
        assert_eq!(zab.poll_timeout(), Some(200));
    }

    #[test]
    fn adopts_a_better_vote_and_rebroadcasts() {
        let (mut zab, _) = member(1, &[1, 2, 3], restored(1, 1, zxid::make(1, 4)));
        let better = looking(3, zxid::make(1, 9), 1, 1);
        let actions = zab.step(
            10,
            Event::Notification {
                from: 3,
                notification: better,
            },
        );
        assert_eq!(notifications(&actions), vec![(2, better), (3, better)]);
        // A worse one changes nothing and is not answered (same round).
        let worse = looking(2, zxid::make(1, 1), 1, 1);
        let actions = zab.step(
            20,
            Event::Notification {
                from: 2,
                notification: worse,
            },
        );
        assert!(notifications(&actions).is_empty());
    }

    #[test]
    fn epoch_beats_a_longer_log() {
        // ZOOKEEPER-335/4643: a stale server with a long log of an old epoch must lose.
        let (mut zab, _) = member(1, &[1, 2, 3], restored(1, 1, zxid::make(1, 900)));
        let newer_epoch = looking(2, zxid::make(2, 3), 2, 1);
        let actions = zab.step(
            5,
            Event::Notification {
                from: 2,
                notification: newer_epoch,
            },
        );
        assert_eq!(notifications(&actions)[0].1.vote.leader, 2);
    }

    #[test]
    fn a_later_round_resets_the_votes_and_is_adopted() {
        let (mut zab, _) = member(1, &[1, 2, 3], restored(1, 1, zxid::make(1, 4)));
        let later = looking(2, zxid::make(1, 1), 1, 5);
        let actions = zab.step(
            5,
            Event::Notification {
                from: 2,
                notification: later,
            },
        );
        assert_eq!(zab.round(), 5);
        // Its own vote (1, 0x100000004) beats 2's: it keeps it, in round 5.
        assert_eq!(
            notifications(&actions),
            vec![
                (2, looking(1, zxid::make(1, 4), 1, 5)),
                (3, looking(1, zxid::make(1, 4), 1, 5)),
            ]
        );
    }

    #[test]
    fn an_older_round_is_answered_with_the_current_vote() {
        let (mut zab, _) = member(1, &[1, 2, 3], restored(1, 1, zxid::make(1, 4)));
        let _ = zab.step(
            1,
            Event::Notification {
                from: 2,
                notification: looking(2, 0, 0, 3),
            },
        );
        let actions = zab.step(
            2,
            Event::Notification {
                from: 3,
                notification: looking(3, 0, 0, 1),
            },
        );
        assert_eq!(
            notifications(&actions),
            vec![(3, looking(1, zxid::make(1, 4), 1, 3))]
        );
    }

    #[test]
    fn decides_after_finalize_wait_with_a_quorum() {
        let (mut zab, _) = member(3, &[1, 2, 3], restored(1, 1, zxid::make(1, 4)));
        // 1 agrees that 3 should lead: {1, 3} is a quorum.
        let actions = zab.step(
            50,
            Event::Notification {
                from: 1,
                notification: looking(3, zxid::make(1, 4), 1, 1),
            },
        );
        assert!(notifications(&actions).is_empty());
        assert_eq!(
            zab.poll_timeout(),
            Some(250),
            "finalizeWait after the quorum"
        );
        assert_eq!(zab.state(), PeerState::Looking);
        let actions = zab.step(250, Event::Timeout);
        assert_eq!(zab.state(), PeerState::Leading);
        assert!(actions.iter().any(|a| matches!(
            a,
            Action::StateChanged {
                state: PeerState::Leading,
                ..
            }
        )));
    }

    #[test]
    fn something_better_during_finalize_wait_reopens_the_election() {
        let (mut zab, _) = member(2, &[1, 2, 3], restored(1, 1, zxid::make(1, 4)));
        zab.step(
            10,
            Event::Notification {
                from: 1,
                notification: looking(2, zxid::make(1, 4), 1, 1),
            },
        );
        assert_eq!(zab.poll_timeout(), Some(210));
        let better = looking(3, zxid::make(1, 8), 1, 1);
        let actions = zab.step(
            100,
            Event::Notification {
                from: 3,
                notification: better,
            },
        );
        assert_eq!(notifications(&actions), vec![(1, better), (3, better)]);
        // Now 3 and 2 (itself) vote for 3: a quorum again, new finalize wait.
        assert_eq!(zab.poll_timeout(), Some(300));
        zab.step(300, Event::Timeout);
        assert_eq!(zab.state(), PeerState::Following);
        assert_eq!(zab.leader(), Some(3));
    }

    #[test]
    fn the_notification_interval_doubles_up_to_the_maximum() {
        let (mut zab, _) = member(1, &[1, 2, 3], restored(0, 0, 0));
        let mut at = zab.poll_timeout().unwrap();
        let mut intervals = Vec::new();
        for _ in 0..12 {
            let actions = zab.step(at, Event::Timeout);
            assert_eq!(notifications(&actions).len(), 2, "re-sent to both peers");
            let next = zab.poll_timeout().unwrap();
            intervals.push(next - at);
            at = next;
        }
        assert_eq!(&intervals[..4], &[400, 800, 1600, 3200]);
        assert_eq!(*intervals.last().unwrap(), 60_000);
    }

    #[test]
    fn a_restarted_member_joins_a_running_ensemble_without_an_election() {
        let (mut zab, _) = member(3, &[1, 2, 3], restored(2, 2, zxid::make(2, 1)));
        let following = Notification {
            state: PeerState::Following,
            vote: Vote {
                leader: 1,
                zxid: zxid::make(2, 5),
                peer_epoch: 2,
            },
            round: 7,
        };
        let leading = Notification {
            state: PeerState::Leading,
            ..following
        };
        // A follower alone is not enough, nor is a quorum without the leader's own report.
        zab.step(
            1,
            Event::Notification {
                from: 2,
                notification: following,
            },
        );
        assert_eq!(zab.state(), PeerState::Looking);
        let actions = zab.step(
            2,
            Event::Notification {
                from: 1,
                notification: leading,
            },
        );
        assert_eq!(zab.state(), PeerState::Following);
        assert_eq!(zab.leader(), Some(1));
        assert_eq!(zab.round(), 7, "adopts the ensemble's round");
        assert!(actions.contains(&Action::ConnectToLeader { leader: 1 }));
    }

    #[test]
    fn a_member_with_a_leader_answers_looking_members_with_its_vote() {
        let (mut zab, _) = member(3, &[1, 2, 3], restored(2, 2, zxid::make(2, 1)));
        zab.step(
            1,
            Event::Notification {
                from: 1,
                notification: Notification {
                    state: PeerState::Leading,
                    vote: Vote {
                        leader: 1,
                        zxid: zxid::make(2, 5),
                        peer_epoch: 2,
                    },
                    round: 4,
                },
            },
        );
        zab.step(
            2,
            Event::Notification {
                from: 2,
                notification: Notification {
                    state: PeerState::Following,
                    vote: Vote {
                        leader: 1,
                        zxid: zxid::make(2, 5),
                        peer_epoch: 2,
                    },
                    round: 4,
                },
            },
        );
        assert_eq!(zab.state(), PeerState::Following);
        let actions = zab.step(
            3,
            Event::Notification {
                from: 2,
                notification: looking(2, 0, 0, 9),
            },
        );
        let sent = notifications(&actions);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, 2);
        assert_eq!(sent[0].1.state, PeerState::Following);
        assert_eq!(sent[0].1.vote.leader, 1);
        assert_eq!(sent[0].1.round, 4);
    }

    #[test]
    fn observers_vote_for_nobody_and_are_never_counted() {
        let mut cfg = ZabConfig::new(4, [1, 2, 3]);
        cfg.observers.insert(4);
        let (mut obs, actions) = Zab::new(cfg, restored(1, 1, zxid::make(1, 2)), 0).unwrap();
        // It tells the voters it is looking, with a vote nobody takes.
        let sent = notifications(&actions);
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[0].1.vote.leader, i64::MIN);
        // A voter ignores the observer's vote and answers it.
        let (mut voter, _) = member(1, &[1, 2, 3], restored(1, 1, zxid::make(1, 2)));
        let actions = voter.step(
            1,
            Event::Notification {
                from: 4,
                notification: sent[0].1,
            },
        );
        assert_eq!(notifications(&actions)[0].0, 4);
        assert_eq!(voter.state(), PeerState::Looking);
        // The observer follows a quorum of voters that agree.
        for from in [1, 2] {
            obs.step(
                5,
                Event::Notification {
                    from,
                    notification: looking(2, zxid::make(1, 2), 1, 1),
                },
            );
        }
        obs.step(500, Event::Timeout);
        assert_eq!(obs.state(), PeerState::Observing);
        assert_eq!(obs.leader(), Some(2));
    }
}
