//! The Zab engine over real loopback TCP: three members, each a small driver (in-memory
//! log, epochs kept across a simulated crash) around `zab::Zab` and `peer::Peers`. They
//! elect a leader on Apache's election wire, sync and broadcast on its quorum wire; the
//! leader is killed and a new one takes over; the old one restarts and catches up.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use zk_server_lite::peer::wire::WireContext;
use zk_server_lite::peer::{PeerAddrs, PeerConfig, Peers};
use zk_server_lite::zab::{
    Action, Event, PeerState, Proposal, Restored, Sid, Zab, ZabConfig, zxid,
};

#[derive(Default)]
struct Disk {
    accepted: i64,
    current: i64,
    updating: bool,
    log: Vec<Proposal>,
    snapshot: Option<(i64, Vec<Proposal>)>,
}

#[derive(Default)]
struct Status {
    state: Option<PeerState>,
    serving: bool,
    applied: Vec<Proposal>,
}

struct Member {
    disk: Arc<Mutex<Disk>>,
    status: Arc<Mutex<Status>>,
    proposals: mpsc::UnboundedSender<Bytes>,
    task: tokio::task::JoinHandle<()>,
}

fn encode(state: &[Proposal]) -> Bytes {
    let mut b = BytesMut::new();
    for p in state {
        b.put_i64(p.zxid);
        b.put_u32(p.data.len() as u32);
        b.put_slice(&p.data);
    }
    b.freeze()
}

fn decode(mut b: Bytes) -> Vec<Proposal> {
    let mut out = Vec::new();
    while b.remaining() >= 12 {
        let zxid = b.get_i64();
        let len = b.get_u32() as usize;
        out.push(Proposal {
            zxid,
            data: b.split_to(len),
        });
    }
    out
}

async fn start_member(
    id: Sid,
    addrs: &BTreeMap<Sid, PeerAddrs>,
    disk: Arc<Mutex<Disk>>,
    epoch0: Instant,
) -> Member {
    let me = addrs[&id];
    let election = TcpListener::bind(me.election).await.expect("election port");
    let quorum = TcpListener::bind(me.quorum).await.expect("quorum port");
    let (etx, mut erx) = mpsc::unbounded_channel();
    let peers = Peers::start(
        PeerConfig {
            members: addrs.clone(),
            wire: WireContext {
                myid: id,
                config_version: 0,
                config: Some(Bytes::from_static(b"version=0")),
            },
        },
        election,
        quorum,
        etx.clone(),
    );
    let mut cfg = ZabConfig::new(id, addrs.keys().copied());
    cfg.tick_ms = 100;
    cfg.init_limit = 20;
    cfg.sync_limit = 10;
    let status = Arc::new(Mutex::new(Status::default()));
    let restored = {
        let d = disk.lock().unwrap();
        let mut state = d
            .snapshot
            .as_ref()
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        state.extend(d.log.iter().cloned());
        status.lock().unwrap().applied = state.clone();
        let last = state.last().map_or(0, |p| p.zxid);
        Restored {
            accepted_epoch: d.accepted,
            current_epoch: d.current,
            last_zxid: last,
            recent: d.log.clone(),
            recent_base: d.snapshot.as_ref().map_or(0, |(z, _)| *z),
            updating_epoch: d.updating,
        }
    };
    let now = move || epoch0.elapsed().as_millis() as u64;
    let (mut zab, first) = Zab::new(cfg, restored, now()).expect("start");
    let (ptx, mut prx) = mpsc::unbounded_channel::<Bytes>();
    let (d2, s2) = (disk.clone(), status.clone());
    let task = tokio::spawn(async move {
        let run = |actions: Vec<Action>, zab: &Zab| {
            for action in actions {
                let Some(action) = peers.handle(action) else {
                    continue;
                };
                let mut d = d2.lock().unwrap();
                let mut s = s2.lock().unwrap();
                match action {
                    Action::SaveAcceptedEpoch(e) => d.accepted = e,
                    Action::SaveCurrentEpoch(e) => {
                        d.current = e;
                        d.updating = false;
                    }
                    Action::MarkUpdatingEpoch => d.updating = true,
                    Action::Append(p) => {
                        let _ = etx.send(Event::Logged { zxid: p.zxid });
                        d.log.push(p);
                    }
                    Action::SyncLog => {}
                    Action::Truncate(z) => {
                        d.log.retain(|p| p.zxid <= z);
                        s.applied.retain(|p| p.zxid <= z);
                    }
                    Action::InstallSnapshot { zxid, snapshot } => {
                        let state = decode(snapshot);
                        d.log.clear();
                        d.snapshot = Some((zxid, state.clone()));
                        s.applied = state;
                    }
                    Action::Apply(p) | Action::FastForward(p) => s.applied.push(p),
                    Action::SendSnapshot { to, zxid } => {
                        peers.send_snapshot(to, zxid, encode(&s.applied));
                    }
                    Action::StateChanged { state, .. } => s.state = Some(state),
                    Action::StartServing => s.serving = true,
                    Action::StopServing => s.serving = false,
                    _ => {}
                }
                let _ = zab;
            }
        };
        run(first, &zab);
        loop {
            let wait = zab
                .poll_timeout()
                .map(|t| Duration::from_millis(t.saturating_sub(now())))
                .unwrap_or(Duration::from_secs(60));
            tokio::select! {
                ev = erx.recv() => {
                    let Some(ev) = ev else { return };
                    if std::env::var("ZAB_NET_DEBUG").is_ok() && !matches!(ev, Event::Logged { .. }) {
                        eprintln!("{} #{id} <- {ev:?}", now());
                    }
                    let actions = zab.step(now(), ev);
                    run(actions, &zab);
                }
                data = prx.recv() => {
                    let Some(data) = data else { return };
                    if let Some(z) = zab.next_zxid() {
                        let actions = zab.propose(now(), Proposal { zxid: z, data }).expect("propose");
                        run(actions, &zab);
                    }
                }
                _ = tokio::time::sleep(wait) => {
                    let actions = zab.step(now(), Event::Timeout);
                    run(actions, &zab);
                }
            }
        }
    });
    Member {
        disk,
        status,
        proposals: ptx,
        task,
    }
}

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
async fn three_members_elect_broadcast_fail_over_and_catch_up() {
    let epoch0 = Instant::now();
    let mut addrs = BTreeMap::new();
    for id in 1..=3 {
        // Free ports: bind and release (the members bind them again at once).
        let q = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        addrs.insert(
            id,
            PeerAddrs {
                quorum: q,
                election: e,
            },
        );
    }
    let mut members = BTreeMap::new();
    for id in 1..=3 {
        let disk = Arc::new(Mutex::new(Disk::default()));
        members.insert(id, start_member(id, &addrs, disk, epoch0).await);
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
    let restarted = start_member(leader, &addrs, old.disk.clone(), epoch0).await;
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
