//! The Zab engine over real loopback TCP: three members, each a small driver (in-memory
//! log, epochs kept across a simulated crash) around `zab::Zab` and `peer::Peers`. They
//! elect a leader on Apache's election wire, sync and broadcast on its quorum wire; the
//! leader is killed and a new one takes over; the old one restarts and catches up.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_server_lite::zab::{PeerState, Sid, zxid};

mod zab_member;
use zab_member::{Disk, Member, start_member};

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn leader_of(members: &BTreeMap<Sid, Member>) -> Option<Sid> {
    let leaders: Vec<Sid> = members
        .iter()
        .filter(|(_, m)| {
            let s = m.status.lock().unwrap();
            s.state == Some(PeerState::Leading) && s.serving
        })
        .map(|(id, _)| *id)
        .collect();
    (leaders.len() == 1).then(|| leaders[0])
}

fn applied(m: &Member) -> Vec<i64> {
    m.status
        .lock()
        .unwrap()
        .applied
        .iter()
        .map(|p| p.zxid)
        .collect()
}

fn all_serving_with(members: &BTreeMap<Sid, Member>, n: usize) -> bool {
    let states: Vec<Vec<i64>> = members.values().map(applied).collect();
    members.values().all(|m| m.status.lock().unwrap().serving)
        && states.iter().all(|s| s.len() == n && *s == states[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_voters_and_an_observer_survive_two_losses() {
    let epoch0 = Instant::now();
    let (addrs, mut listeners) = zab_member::reserve(6);
    let mut members = BTreeMap::new();
    for id in 1..=6 {
        let disk = Arc::new(Mutex::new(Disk::default()));
        let l = listeners.remove(&id);
        members.insert(
            id,
            start_member(id, &addrs, l, &[6], "version=0", disk, epoch0).await,
        );
    }
    wait_for("a leader and everyone serving", || {
        leader_of(&members).is_some() && members.values().all(|m| m.status.lock().unwrap().serving)
    })
    .await;
    assert_eq!(
        members[&6].status.lock().unwrap().state,
        Some(PeerState::Observing)
    );
    let leader = leader_of(&members).unwrap();
    for i in 0..10 {
        members[&leader]
            .proposals
            .send(Bytes::from(format!("a{i}")))
            .unwrap();
    }
    wait_for("10 txns everywhere, the observer included", || {
        all_serving_with(&members, 10)
    })
    .await;
    // Two voters go (the leader among them): three of five still form a quorum.
    let other = if leader == 1 { 2 } else { 1 };
    for id in [leader, other] {
        let m = members.remove(&id).unwrap();
        m.task.abort();
        let _ = m.task.await;
    }
    wait_for("a new leader", || leader_of(&members).is_some()).await;
    let new_leader = leader_of(&members).unwrap();
    assert_ne!(new_leader, 6, "an observer never leads");
    for i in 0..10 {
        members[&new_leader]
            .proposals
            .send(Bytes::from(format!("b{i}")))
            .unwrap();
    }
    wait_for("20 txns on the survivors and the observer", || {
        all_serving_with(&members, 20)
    })
    .await;
    for m in members.values() {
        m.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_elect_broadcast_fail_over_and_catch_up() {
    let epoch0 = Instant::now();
    let (addrs, mut listeners) = zab_member::reserve(3);
    let mut members = BTreeMap::new();
    for id in 1..=3 {
        let disk = Arc::new(Mutex::new(Disk::default()));
        members.insert(
            id,
            start_member(
                id,
                &addrs,
                listeners.remove(&id),
                &[],
                "version=0",
                disk,
                epoch0,
            )
            .await,
        );
    }
    wait_for("a leader and everyone serving", || {
        leader_of(&members).is_some() && members.values().all(|m| m.status.lock().unwrap().serving)
    })
    .await;
    let leader = leader_of(&members).unwrap();
    for i in 0..20 {
        members[&leader]
            .proposals
            .send(Bytes::from(format!("a{i}")))
            .unwrap();
    }
    wait_for("20 txns on every member", || all_serving_with(&members, 20)).await;

    // Kill the leader: the other two elect a new one and go on.
    let old = members.remove(&leader).unwrap();
    old.task.abort();
    let _ = old.task.await;
    wait_for("a new leader", || {
        leader_of(&members).is_some_and(|l| l != leader)
    })
    .await;
    let new_leader = leader_of(&members).unwrap();
    let epochs: Vec<i64> = members
        .values()
        .map(|m| m.disk.lock().unwrap().current)
        .collect();
    assert!(epochs.iter().all(|e| *e >= 2), "a new epoch: {epochs:?}");
    for i in 0..10 {
        members[&new_leader]
            .proposals
            .send(Bytes::from(format!("b{i}")))
            .unwrap();
    }
    wait_for("30 txns on the two members", || {
        all_serving_with(&members, 30)
    })
    .await;

    // The old leader restarts from its disk and catches up.
    let restarted = start_member(
        leader,
        &addrs,
        None,
        &[],
        "version=0",
        old.disk.clone(),
        epoch0,
    )
    .await;
    members.insert(leader, restarted);
    let ok = tokio::time::timeout(Duration::from_secs(60), async {
        while !all_serving_with(&members, 30) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if ok.is_err() {
        for (id, m) in &members {
            let s = m.status.lock().unwrap();
            let d = m.disk.lock().unwrap();
            eprintln!(
                "#{id}: {:?} serving={} applied={} log={} epochs={}/{}",
                s.state,
                s.serving,
                s.applied.len(),
                d.log.len(),
                d.accepted,
                d.current
            );
        }
        panic!("the old leader did not catch up");
    }
    assert_eq!(
        leader_of(&members),
        Some(new_leader),
        "it joined without taking over"
    );
    let last = applied(&members[&leader]).last().copied().unwrap();
    assert_eq!(
        zxid::epoch(last),
        members[&new_leader].disk.lock().unwrap().current
    );
    for m in members.values() {
        m.task.abort();
    }
}
