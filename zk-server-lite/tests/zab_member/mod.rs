//! A small Zab member for the network tests: the real engine and peer sockets around an
//! in-memory "disk" (kept across a simulated crash) and an applied-txn list.

#![allow(dead_code, unreachable_pub)]

pub mod state;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use zk_server_lite::peer::wire::WireContext;
use zk_server_lite::peer::{PeerAddrs, PeerConfig, Peers};
use zk_server_lite::zab::{Action, Event, PeerState, Proposal, Restored, Sid, Zab, ZabConfig};

#[derive(Default)]
pub struct Disk {
    pub accepted: i64,
    pub current: i64,
    pub updating: bool,
    pub log: Vec<Proposal>,
    pub snapshot: Option<(i64, Vec<Proposal>)>,
}

#[derive(Default)]
pub struct Status {
    pub state: Option<PeerState>,
    pub serving: bool,
    pub applied: Vec<Proposal>,
}

pub struct Member {
    pub disk: Arc<Mutex<Disk>>,
    pub status: Arc<Mutex<Status>>,
    pub proposals: mpsc::UnboundedSender<Bytes>,
    pub task: tokio::task::JoinHandle<()>,
}

/// A member's two listening sockets, bound before anyone dials them (binding and releasing a
/// free port lets an outgoing connection take it first).
pub struct Listeners {
    pub election: std::net::TcpListener,
    pub quorum: std::net::TcpListener,
}

/// Binds `n` members' ports on loopback and keeps them.
pub fn reserve(n: Sid) -> (BTreeMap<Sid, PeerAddrs>, BTreeMap<Sid, Listeners>) {
    let mut addrs = BTreeMap::new();
    let mut listeners = BTreeMap::new();
    for id in 1..=n {
        let election = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let quorum = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        addrs.insert(
            id,
            PeerAddrs {
                quorum: quorum.local_addr().expect("addr"),
                election: election.local_addr().expect("addr"),
            },
        );
        listeners.insert(id, Listeners { election, quorum });
    }
    (addrs, listeners)
}

async fn bind(addr: std::net::SocketAddr) -> TcpListener {
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot bind {addr} again");
}

/// Starts member `id` of `addrs` (those in `observers` observe); `config` is the
/// configuration text it announces (Apache parses it).
pub async fn start_member(
    id: Sid,
    addrs: &BTreeMap<Sid, PeerAddrs>,
    listeners: Option<Listeners>,
    observers: &[Sid],
    config: &str,
    disk: Arc<Mutex<Disk>>,
    epoch0: Instant,
) -> Member {
    let me = addrs[&id];
    let (election, quorum) = match listeners {
        Some(l) => {
            l.election.set_nonblocking(true).expect("nonblocking");
            l.quorum.set_nonblocking(true).expect("nonblocking");
            (
                TcpListener::from_std(l.election).expect("election port"),
                TcpListener::from_std(l.quorum).expect("quorum port"),
            )
        }
        // A restart binds its ports again; an outgoing connection may hold one for a moment.
        None => (bind(me.election).await, bind(me.quorum).await),
    };
    let (etx, mut erx) = mpsc::unbounded_channel();
    let peers = Peers::start(
        PeerConfig {
            members: addrs.clone(),
            wire: WireContext {
                myid: id,
                config_version: 0,
                config: Some(Bytes::from(config.to_owned())),
            },
        },
        election,
        quorum,
        etx.clone(),
    );
    let mut cfg = ZabConfig::new(id, addrs.keys().copied().filter(|s| !observers.contains(s)));
    cfg.observers = observers.iter().copied().collect();
    // Generous limits for a loaded CI machine (a JVM leader may take seconds to sync us);
    // killed members close their sockets, so failover does not wait for them.
    cfg.tick_ms = 100;
    cfg.init_limit = 60;
    cfg.sync_limit = 30;
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
                        let state = state::decode(snapshot);
                        d.log.clear();
                        d.snapshot = Some((zxid, state.clone()));
                        s.applied = state;
                    }
                    Action::Apply(p) | Action::FastForward(p) => s.applied.push(p),
                    Action::SendSnapshot { to, zxid } => {
                        peers.send_snapshot(to, zxid, state::encode(&s.applied));
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
