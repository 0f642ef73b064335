//! Helpers for the phase tests: members brought to a given point by feeding them the
//! events a real ensemble would.

use bytes::Bytes;

use super::*;

pub(super) fn restored(accepted: Epoch, current: Epoch, last: Zxid) -> Restored {
    Restored {
        accepted_epoch: accepted,
        current_epoch: current,
        last_zxid: last,
        recent: Vec::new(),
        recent_base: last,
        updating_epoch: false,
    }
}

pub(super) fn proposal(zxid: Zxid) -> Proposal {
    Proposal {
        zxid,
        data: Bytes::from(format!("txn-{zxid:x}")),
    }
}

pub(super) fn member(me: Sid, voters: &[Sid], r: Restored) -> (Zab, Vec<Action>) {
    Zab::new(ZabConfig::new(me, voters.iter().copied()), r, 0).unwrap()
}

pub(super) fn notifications(actions: &[Action]) -> Vec<(Sid, Notification)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendNotification { to, notification } => Some((*to, *notification)),
            _ => None,
        })
        .collect()
}

/// A member that just won an election (at t = 200 ms).
pub(super) fn leader_of(me: Sid, voters: &[Sid], r: Restored) -> Zab {
    leader_with(ZabConfig::new(me, voters.iter().copied()), r)
}

pub(super) fn leader_with(cfg: ZabConfig, r: Restored) -> Zab {
    let me = cfg.myid;
    let others: Vec<Sid> = cfg.voters.iter().filter(|&s| s != me).collect();
    let (mut zab, _) = Zab::new(cfg, r, 0).unwrap();
    let vote = Vote {
        leader: me,
        zxid: zab.last_logged(),
        peer_epoch: zab.current_epoch(),
    };
    for from in others {
        zab.step(
            0,
            Event::Notification {
                from,
                notification: Notification {
                    state: PeerState::Looking,
                    vote,
                    round: 1,
                },
            },
        );
        if zab.poll_timeout() == Some(200) {
            break;
        }
    }
    zab.step(200, Event::Timeout);
    assert_eq!(zab.state(), PeerState::Leading);
    zab
}

/// A member that joined a running ensemble led by `leader` (at t = 0).
pub(super) fn learner_of(me: Sid, leader: Sid, voters: &[Sid], r: Restored) -> Zab {
    let cfg = ZabConfig::new(me, voters.iter().copied());
    let (mut zab, _) = Zab::new(cfg, r, 0).unwrap();
    let vote = Vote {
        leader,
        zxid: 0,
        peer_epoch: zab.current_epoch(),
    };
    for &from in voters {
        if from == me {
            continue;
        }
        let state = if from == leader {
            PeerState::Leading
        } else {
            PeerState::Following
        };
        zab.step(
            0,
            Event::Notification {
                from,
                notification: Notification {
                    state,
                    vote,
                    round: 1,
                },
            },
        );
        if zab.state() != PeerState::Looking {
            break;
        }
    }
    assert_ne!(zab.state(), PeerState::Looking);
    zab
}

/// A leader of epoch 2 (everyone at 0x100000003 before), with `learners` synced.
pub(super) fn established_leader(me: Sid, voters: &[Sid], learners: &[Sid]) -> (Zab, Vec<Action>) {
    established_leader_with(ZabConfig::new(me, voters.iter().copied()), learners)
}

pub(super) fn established_leader_with(cfg: ZabConfig, learners: &[Sid]) -> (Zab, Vec<Action>) {
    let observers = cfg.observers.clone();
    let mut zab = leader_with(cfg, restored(1, 1, zxid::make(1, 3)));
    let mut all = Vec::new();
    for &sid in learners {
        let info = if observers.contains(&sid) {
            Message::ObserverInfo { accepted_epoch: 1 }
        } else {
            Message::FollowerInfo { accepted_epoch: 1 }
        };
        for message in [
            info,
            Message::AckEpoch {
                current_epoch: 1,
                last_zxid: zxid::make(1, 3),
            },
        ] {
            all.extend(zab.step(200, Event::Packet { from: sid, message }));
        }
    }
    for &sid in learners {
        all.extend(zab.step(
            200,
            Event::Packet {
                from: sid,
                message: Message::Ack {
                    zxid: zxid::make(2, 0),
                },
            },
        ));
    }
    assert!(zab.is_serving(), "{all:?}");
    (zab, all)
}

/// A follower of `leader` in epoch 2 that is serving (log at 0x100000002).
pub(super) fn serving_follower(me: Sid, leader: Sid, voters: &[Sid]) -> Zab {
    let mut zab = learner_of(me, leader, voters, restored(1, 1, zxid::make(1, 2)));
    zab.step(1, Event::LeaderConnected);
    for message in [
        Message::LeaderInfo { epoch: 2 },
        Message::Diff {
            zxid: zxid::make(1, 2),
        },
        Message::NewLeader {
            zxid: zxid::make(2, 0),
        },
        Message::UpToDate,
    ] {
        zab.step(
            2,
            Event::Packet {
                from: leader,
                message,
            },
        );
    }
    assert!(zab.is_serving());
    zab
}

impl Zab {
    pub(super) fn force_last_proposed(&mut self, zxid: Zxid) {
        if let State::Leading(l) = &mut self.state {
            l.last_proposed = zxid;
        }
    }
}
