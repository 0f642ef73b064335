//! The simulated cluster: members running the real Zab engine over a simulated network and
//! simulated disks, with one virtual clock. Everything is driven by one seeded RNG, so a
//! seed replays exactly.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use zk_server_lite::zab::{
    Action, Event, Message, PeerState, Proposal, Restored, Sid, Zab, ZabConfig, zxid,
};

use crate::invariants::Checker;

/// What a schedule may do.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    pub(crate) seed: u64,
    pub(crate) voters: usize,
    pub(crate) observers: usize,
    /// How long faults are injected (virtual ms).
    pub(crate) chaos_ms: u64,
    /// Mean gap between client writes (ms).
    pub(crate) write_every_ms: u64,
    pub(crate) crashes: bool,
    pub(crate) partitions: bool,
    pub(crate) pauses: bool,
    pub(crate) message_faults: bool,
}

impl Schedule {
    pub(crate) fn from_seed(seed: u64) -> Schedule {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        Schedule {
            seed,
            voters: if rng.random_bool(0.7) { 3 } else { 5 },
            observers: usize::from(rng.random_bool(0.3)),
            chaos_ms: rng.random_range(5_000..20_000),
            write_every_ms: rng.random_range(20..120),
            crashes: rng.random_bool(0.8),
            partitions: rng.random_bool(0.7),
            pauses: rng.random_bool(0.5),
            message_faults: rng.random_bool(0.7),
        }
    }
}

/// A member's disk: what survives a crash.
#[derive(Debug, Clone, Default)]
pub(crate) struct Disk {
    pub(crate) accepted: i64,
    pub(crate) current: i64,
    pub(crate) updating: bool,
    pub(crate) log: Vec<Proposal>,
    pub(crate) snapshot: Option<(i64, Vec<Proposal>)>,
}

impl Disk {
    pub(crate) fn holds(&self, z: i64) -> bool {
        self.log.iter().any(|p| p.zxid == z)
            || self
                .snapshot
                .as_ref()
                .is_some_and(|(_, s)| s.iter().any(|p| p.zxid == z))
    }

    fn last_zxid(&self) -> i64 {
        self.log
            .last()
            .map(|p| p.zxid)
            .or(self.snapshot.as_ref().map(|(z, _)| *z))
            .unwrap_or(0)
    }

    /// The state a restart loads: the snapshot, then every logged txn.
    fn load(&self) -> Vec<Proposal> {
        let mut state = self
            .snapshot
            .as_ref()
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        state.extend(self.log.iter().cloned());
        state
    }
}

pub(crate) struct Node {
    pub(crate) id: Sid,
    pub(crate) zab: Option<Zab>,
    pub(crate) disk: Disk,
    unsynced: Vec<Proposal>,
    fsync_at: Option<u64>,
    /// The applied state (volatile).
    pub(crate) state: Vec<Proposal>,
    leader_conn: Option<(Sid, u64)>,
    connecting: Option<Sid>,
    learner_conns: BTreeMap<Sid, u64>,
    paused_until: u64,
    down_until: Option<u64>,
}

#[derive(Debug)]
struct Conn {
    learner: Sid,
    leader: Sid,
    alive: bool,
    /// FIFO: the last delivery time per direction (to learner, to leader).
    last: [u64; 2],
}

#[derive(Debug, Clone)]
enum Payload {
    Notification(zk_server_lite::zab::Notification),
    Packet { conn: u64, message: Message },
    Connected { conn: u64 },
    Lost { conn: u64 },
    ConnectAttempt,
    Write,
}

#[derive(Debug, Clone)]
struct Envelope {
    from: Sid,
    to: Sid,
    payload: Payload,
}

pub(crate) struct Cluster {
    pub(crate) schedule: Schedule,
    rng: StdRng,
    pub(crate) now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Envelope>,
    pub(crate) nodes: BTreeMap<Sid, Node>,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    blocked: BTreeSet<(Sid, Sid)>,
    pub(crate) voters: Vec<Sid>,
    pub(crate) checker: Checker,
    pub(crate) trace: VecDeque<String>,
    next_write: u64,
    /// Write id → (origin member, zxid once proposed).
    writes: BTreeMap<u64, (Sid, Option<i64>)>,
    pub(crate) faults_on: bool,
    pub(crate) stats: Stats,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Stats {
    pub(crate) events: u64,
    pub(crate) crashes: u64,
    pub(crate) partitions: u64,
    pub(crate) pauses: u64,
    pub(crate) writes_acked: u64,
    pub(crate) elections_decided: u64,
}

const TRACE_LINES: usize = 4000;

impl Cluster {
    pub(crate) fn new(schedule: Schedule) -> Cluster {
        let rng = StdRng::seed_from_u64(schedule.seed);
        let voters: Vec<Sid> = (1..=schedule.voters as Sid).collect();
        let observers: Vec<Sid> =
            (schedule.voters as Sid + 1..=(schedule.voters + schedule.observers) as Sid).collect();
        let mut c = Cluster {
            rng,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes: BTreeMap::new(),
            conns: BTreeMap::new(),
            next_conn: 1,
            blocked: BTreeSet::new(),
            checker: Checker::new(voters.clone()),
            voters: voters.clone(),
            trace: VecDeque::new(),
            next_write: 1,
            writes: BTreeMap::new(),
            faults_on: true,
            stats: Stats::default(),
            schedule,
        };
        for &id in voters.iter().chain(&observers) {
            c.nodes.insert(
                id,
                Node {
                    id,
                    zab: None,
                    disk: Disk::default(),
                    unsynced: Vec::new(),
                    fsync_at: None,
                    state: Vec::new(),
                    leader_conn: None,
                    connecting: None,
                    learner_conns: BTreeMap::new(),
                    paused_until: 0,
                    down_until: None,
                },
            );
        }
        let ids: Vec<Sid> = c.nodes.keys().copied().collect();
        for id in ids {
            c.start(id);
        }
        let gap = c.schedule.write_every_ms;
        c.push(gap, 0, 0, Payload::Write);
        c
    }

    fn config(&self, id: Sid) -> ZabConfig {
        let mut cfg = ZabConfig::new(id, self.voters.iter().copied());
        cfg.observers = self
            .nodes
            .keys()
            .copied()
            .filter(|s| !self.voters.contains(s))
            .collect();
        cfg.tick_ms = 100;
        cfg.init_limit = 10;
        cfg.sync_limit = 5;
        cfg.commit_log_count = 20;
        cfg
    }

    pub(crate) fn log(&mut self, line: String) {
        if self.trace.len() == TRACE_LINES {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("{:>7} {line}", self.now));
    }

    fn push(&mut self, delay: u64, from: Sid, to: Sid, payload: Payload) {
        self.seq += 1;
        self.queue
            .insert((self.now + delay, self.seq), Envelope { from, to, payload });
    }

    fn delay(&mut self) -> u64 {
        if self.schedule.message_faults && self.faults_on && self.rng.random_bool(0.05) {
            self.rng.random_range(50..400)
        } else {
            self.rng.random_range(1..8)
        }
    }

    fn reachable(&self, from: Sid, to: Sid) -> bool {
        !self.blocked.contains(&(from, to))
    }

    // ------------------------------------------------------------- lifecycle

    fn start(&mut self, id: Sid) {
        let cfg = self.config(id);
        let node = self.nodes.get_mut(&id).expect("node");
        let disk = &node.disk;
        let last = disk.last_zxid();
        let keep = cfg.commit_log_count;
        let from = disk.log.len().saturating_sub(keep);
        let recent: Vec<Proposal> = disk.log[from..].to_vec();
        let recent_base = if from > 0 {
            disk.log[from - 1].zxid
        } else {
            disk.snapshot.as_ref().map_or(0, |(z, _)| *z)
        };
        let restored = Restored {
            accepted_epoch: disk.accepted,
            current_epoch: disk.current,
            last_zxid: last,
            recent_base: if recent.is_empty() { last } else { recent_base },
            recent,
            updating_epoch: disk.updating,
        };
        node.state = disk.load();
        node.unsynced.clear();
        node.fsync_at = None;
        node.leader_conn = None;
        node.connecting = None;
        node.learner_conns.clear();
        node.down_until = None;
        match Zab::new(cfg, restored, self.now) {
            Ok((zab, actions)) => {
                node.zab = Some(zab);
                self.log(format!("#{id} started at {}", zxid::hex(last)));
                self.run_actions(id, actions);
            }
            Err(e) => {
                self.checker
                    .fail(format!("#{id} refuses to start: {e}"), self.now);
            }
        }
    }

    fn crash(&mut self, id: Sid, down_ms: u64) {
        let keep = {
            let node = &self.nodes[&id];
            if node.zab.is_none() {
                return;
            }
            self.rng.random_range(0..=node.unsynced.len())
        };
        self.stats.crashes += 1;
        let node = self.nodes.get_mut(&id).expect("node");
        let unsynced = std::mem::take(&mut node.unsynced);
        // The OS wrote some of the unsynced appends before the crash; a torn last one is
        // detected by its checksum and dropped, which is the same as not written.
        node.disk.log.extend(unsynced.into_iter().take(keep));
        node.zab = None;
        node.fsync_at = None;
        node.state.clear();
        node.down_until = Some(self.now + down_ms);
        let conns: Vec<u64> = node
            .learner_conns
            .values()
            .copied()
            .chain(node.leader_conn.map(|(_, c)| c))
            .collect();
        node.learner_conns.clear();
        node.leader_conn = None;
        node.connecting = None;
        self.log(format!(
            "#{id} CRASH ({keep} unsynced appends survive), down {down_ms} ms"
        ));
        for conn in conns {
            self.close_conn(conn, Some(id));
        }
    }

    /// Closes a connection; the other end learns it (RST) after a delay.
    fn close_conn(&mut self, conn: u64, closer: Option<Sid>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.alive {
            return;
        }
        c.alive = false;
        let (learner, leader) = (c.learner, c.leader);
        for (me, other) in [(learner, leader), (leader, learner)] {
            if Some(me) != closer {
                let d = self.delay();
                self.push(d, other, me, Payload::Lost { conn });
            }
        }
    }

    // ------------------------------------------------------------- faults

    fn inject_faults(&mut self) {
        if !self.faults_on {
            return;
        }
        let ids: Vec<Sid> = self.nodes.keys().copied().collect();
        let s = self.schedule.clone();
        if s.crashes && self.rng.random_bool(0.002) {
            let id = ids[self.rng.random_range(0..ids.len())];
            let down = self.rng.random_range(0..3_000);
            self.crash(id, down);
        }
        if s.partitions && self.rng.random_bool(0.002) {
            self.stats.partitions += 1;
            let a = ids[self.rng.random_range(0..ids.len())];
            let one_way = self.rng.random_bool(0.3);
            for &b in &ids {
                if b != a {
                    self.blocked.insert((a, b));
                    if !one_way {
                        self.blocked.insert((b, a));
                    }
                }
            }
            self.log(format!(
                "PARTITION #{a} isolated{}",
                if one_way { " (outgoing only)" } else { "" }
            ));
        }
        if s.partitions && !self.blocked.is_empty() && self.rng.random_bool(0.003) {
            self.blocked.clear();
            self.log("HEAL".into());
        }
        if s.pauses && self.rng.random_bool(0.001) {
            self.stats.pauses += 1;
            let id = ids[self.rng.random_range(0..ids.len())];
            let ms = self.rng.random_range(100..2_500);
            let node = self.nodes.get_mut(&id).expect("node");
            node.paused_until = self.now + ms;
            self.log(format!("#{id} PAUSE {ms} ms"));
        }
        if s.message_faults && self.rng.random_bool(0.001) {
            let live: Vec<u64> = self
                .conns
                .iter()
                .filter(|(_, c)| c.alive)
                .map(|(k, _)| *k)
                .collect();
            if !live.is_empty() {
                let conn = live[self.rng.random_range(0..live.len())];
                self.log(format!("CUT connection {conn}"));
                self.close_conn(conn, None);
            }
        }
    }

    /// Ends the faults: heal, resume, restart everything.
    pub(crate) fn calm(&mut self) {
        self.faults_on = false;
        self.blocked.clear();
        let ids: Vec<Sid> = self.nodes.keys().copied().collect();
        for id in ids {
            let node = self.nodes.get_mut(&id).expect("node");
            // Pauses end by themselves (clearing one would let later packets overtake the
            // ones held for the paused member: TCP never reorders).
            if node.zab.is_none() {
                node.down_until = Some(self.now);
            }
        }
        self.log("CALM: faults end".into());
    }

    // ------------------------------------------------------------- the loop

    /// Runs until `until` (virtual ms) or a violation.
    pub(crate) fn run_until(&mut self, until: u64) {
        let mut same_time = 0u32;
        let mut last_now = self.now;
        while self.now < until && self.checker.failure.is_none() {
            if self.now == last_now {
                same_time += 1;
                if same_time > 200_000 {
                    let now = self.now;
                    self.checker
                        .fail("the simulation is stuck: time does not advance".into(), now);
                    return;
                }
            } else {
                same_time = 0;
                last_now = self.now;
            }
            let next_event = self.queue.keys().next().map(|(t, _)| *t);
            let mut next_timer: Option<(u64, Sid)> = None;
            for (id, n) in &self.nodes {
                let t = match (&n.zab, n.down_until) {
                    (Some(z), _) => z.poll_timeout().map(|t| t.max(n.paused_until)),
                    (None, Some(up)) => Some(up),
                    (None, None) => None,
                };
                let t = match (t, n.fsync_at) {
                    (Some(a), Some(b)) => Some(a.min(b.max(n.paused_until))),
                    (a, None) => a,
                    (None, Some(b)) => Some(b.max(n.paused_until)),
                };
                if let Some(t) = t
                    && next_timer.is_none_or(|(nt, _)| t < nt)
                {
                    next_timer = Some((t, *id));
                }
            }
            let step_timer = match (next_event, next_timer) {
                (Some(e), Some((t, _))) => t < e,
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (None, None) => return,
            };
            self.stats.events += 1;
            if step_timer {
                let Some((t, id)) = next_timer else { return };
                self.now = self.now.max(t).min(until.max(self.now));
                if t > until {
                    self.now = until;
                    return;
                }
                self.timer(id);
            } else {
                let Some((&(t, seq), _)) = self.queue.iter().next() else {
                    return;
                };
                if t > until {
                    self.now = until;
                    return;
                }
                let env = self.queue.remove(&(t, seq)).expect("event");
                self.now = self.now.max(t);
                self.deliver(env, seq);
            }
            self.inject_faults();
        }
    }

    fn timer(&mut self, id: Sid) {
        let now = self.now;
        let node = self.nodes.get_mut(&id).expect("node");
        if node.zab.is_none() {
            if node.down_until.is_some_and(|t| t <= now) {
                self.start(id);
            }
            return;
        }
        if node.paused_until > now {
            return;
        }
        if node.fsync_at.is_some_and(|t| t <= now) {
            node.fsync_at = None;
            self.fsync(id);
            return;
        }
        let node = self.nodes.get_mut(&id).expect("node");
        if let Some(zab) = node.zab.as_mut()
            && zab.poll_timeout().is_some_and(|t| t <= now)
        {
            let actions = zab.step(now, Event::Timeout);
            self.run_actions(id, actions);
        }
    }

    fn fsync(&mut self, id: Sid) {
        let node = self.nodes.get_mut(&id).expect("node");
        if node.unsynced.is_empty() {
            return;
        }
        let last = node.unsynced.last().map(|p| p.zxid).unwrap_or(0);
        let moved = std::mem::take(&mut node.unsynced);
        node.disk.log.extend(moved);
        if let Some(zab) = node.zab.as_mut() {
            let actions = zab.step(self.now, Event::Logged { zxid: last });
            self.run_actions(id, actions);
        }
    }

    fn deliver(&mut self, env: Envelope, seq: u64) {
        let to = env.to;
        if let Payload::Write = env.payload {
            self.client_write();
            return;
        }
        let now = self.now;
        let node = self.nodes.get_mut(&to).expect("node");
        if node.zab.is_none() {
            return;
        }
        if node.paused_until > now {
            // Delivered when it resumes, keeping its place: a connection stays FIFO.
            let at = node.paused_until;
            self.queue.insert((at, seq), env);
            return;
        }
        let event = match env.payload {
            Payload::Notification(notification) => Event::Notification {
                from: env.from,
                notification,
            },
            Payload::Packet { conn, message } => {
                if !self.conns.get(&conn).is_some_and(|c| c.alive) {
                    return;
                }
                Event::Packet {
                    from: env.from,
                    message,
                }
            }
            Payload::Connected { conn } => {
                let node = &self.nodes[&to];
                if node.leader_conn.map(|(_, c)| c) != Some(conn)
                    || !self.conns.get(&conn).is_some_and(|c| c.alive)
                {
                    return;
                }
                Event::LeaderConnected
            }
            Payload::Lost { conn } => {
                let node = self.nodes.get_mut(&to).expect("node");
                let current = node.leader_conn.map(|(_, c)| c) == Some(conn)
                    || node.learner_conns.get(&env.from) == Some(&conn);
                if !current {
                    return;
                }
                if node.leader_conn.map(|(_, c)| c) == Some(conn) {
                    node.leader_conn = None;
                }
                if node.learner_conns.get(&env.from) == Some(&conn) {
                    node.learner_conns.remove(&env.from);
                }
                Event::PeerLost { sid: env.from }
            }
            Payload::ConnectAttempt => {
                self.connect_attempt(to);
                return;
            }
            Payload::Write => return,
        };
        if std::env::var_os("ZAB_SIM_VERBOSE").is_some() {
            let what = match &event {
                Event::Packet { from, message } => match message {
                    Message::Proposal(p) | Message::Inform(p) => {
                        format!("{} {} from #{from}", message.name(), zxid::hex(p.zxid))
                    }
                    Message::Commit { zxid: z }
                    | Message::Diff { zxid: z }
                    | Message::Trunc { zxid: z }
                    | Message::Snap { zxid: z, .. } => {
                        format!("{} {} from #{from}", message.name(), zxid::hex(*z))
                    }
                    _ => format!("{} from #{from}", message.name()),
                },
                Event::PeerLost { sid } => format!("lost #{sid}"),
                Event::Notification { from, notification } => {
                    format!("notification from #{from} {notification:?}")
                }
                other => format!("{other:?}"),
            };
            self.log(format!("#{to} <- {what}"));
        }
        let node = self.nodes.get_mut(&to).expect("node");
        let Some(zab) = node.zab.as_mut() else {
            return;
        };
        let actions = zab.step(now, event);
        self.run_actions(to, actions);
    }

    fn connect_attempt(&mut self, learner: Sid) {
        let Some(leader) = self.nodes[&learner].connecting else {
            return;
        };
        let leader_up = self.nodes[&leader]
            .zab
            .as_ref()
            .is_some_and(|z| z.state() == PeerState::Leading);
        if !leader_up || !self.reachable(learner, leader) || !self.reachable(leader, learner) {
            self.push(200, learner, learner, Payload::ConnectAttempt);
            return;
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            conn,
            Conn {
                learner,
                leader,
                alive: true,
                last: [self.now; 2],
            },
        );
        // A learner's new connection replaces its old one on the leader.
        if let Some(old) = self
            .nodes
            .get_mut(&leader)
            .and_then(|n| n.learner_conns.insert(learner, conn))
            && let Some(c) = self.conns.get_mut(&old)
            && c.alive
        {
            c.alive = false;
            let node = self.nodes.get_mut(&leader).expect("leader");
            if let Some(zab) = node.zab.as_mut() {
                let actions = zab.step(self.now, Event::PeerLost { sid: learner });
                node.learner_conns.insert(learner, conn);
                self.run_actions(leader, actions);
            }
        }
        let node = self.nodes.get_mut(&learner).expect("learner");
        node.connecting = None;
        node.leader_conn = Some((leader, conn));
        let d = self.delay();
        self.push(d, leader, learner, Payload::Connected { conn });
    }

    fn send_packet(&mut self, from: Sid, to: Sid, message: Message) {
        let node = &self.nodes[&from];
        let conn = match node.leader_conn {
            Some((leader, conn)) if leader == to => Some(conn),
            _ => node.learner_conns.get(&to).copied(),
        };
        let Some(conn) = conn else {
            return;
        };
        if !self.reachable(from, to) {
            // The partition resets the connection.
            self.close_conn(conn, None);
            return;
        }
        let d = self.delay();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.alive {
            return;
        }
        let dir = usize::from(to == c.leader);
        let at = (self.now + d).max(c.last[dir]);
        c.last[dir] = at;
        self.seq += 1;
        self.queue.insert(
            (at, self.seq),
            Envelope {
                from,
                to,
                payload: Payload::Packet { conn, message },
            },
        );
    }

    // ------------------------------------------------------------- actions

    fn run_actions(&mut self, id: Sid, actions: Vec<Action>) {
        for action in actions {
            if self.checker.failure.is_some() || self.nodes[&id].zab.is_none() {
                return;
            }
            let storage = matches!(
                action,
                Action::SaveAcceptedEpoch(_)
                    | Action::SaveCurrentEpoch(_)
                    | Action::MarkUpdatingEpoch
                    | Action::Append(_)
                    | Action::SyncLog
                    | Action::Truncate(_)
                    | Action::InstallSnapshot { .. }
            );
            self.run_action(id, action);
            let node = &self.nodes[&id];
            self.checker.after_action(node, self.now);
            // A crash between two storage steps of one event: the orderings the engine
            // promises (PROTOCOL.md 3.10) are only tested if the rest can be lost.
            if storage && self.faults_on && self.schedule.crashes && self.rng.random_bool(0.01) {
                let down = self.rng.random_range(0..2_000);
                self.log(format!("#{id} crashes in the middle of its actions"));
                self.crash(id, down);
                return;
            }
        }
        self.check_recent(id);
    }

    /// The engine's recent txns are the tail of what this member wrote.
    fn check_recent(&mut self, id: Sid) {
        let node = &self.nodes[&id];
        let Some(zab) = &node.zab else {
            return;
        };
        let (base, recent) = zab.recent();
        let recent: Vec<i64> = recent.map(|p| p.zxid).collect();
        let written: Vec<i64> = node
            .disk
            .log
            .iter()
            .chain(&node.unsynced)
            .map(|p| p.zxid)
            .collect();
        let tail = &written[written.len().saturating_sub(recent.len())..];
        if recent.first().is_some_and(|&z| z <= base) || tail != recent.as_slice() {
            let msg = format!(
                "#{id}: the engine's recent txns (after {}) {} are not the tail of its log {}",
                zxid::hex(base),
                recent
                    .iter()
                    .map(|z| zxid::hex(*z))
                    .collect::<Vec<_>>()
                    .join(","),
                ranges(&node.disk.log)
            );
            self.checker.fail(msg, self.now);
        }
    }

    fn run_action(&mut self, id: Sid, action: Action) {
        match action {
            Action::SendNotification { to, notification } => {
                if !self.reachable(id, to) {
                    return;
                }
                if self.schedule.message_faults && self.faults_on && self.rng.random_bool(0.05) {
                    return;
                }
                let d = self.delay();
                self.push(d, id, to, Payload::Notification(notification));
                if self.schedule.message_faults && self.faults_on && self.rng.random_bool(0.02) {
                    let d = self.delay();
                    self.push(d, id, to, Payload::Notification(notification));
                }
            }
            Action::ConnectToLeader { leader } => {
                let node = self.nodes.get_mut(&id).expect("node");
                node.connecting = Some(leader);
                if let Some((_, old)) = node.leader_conn.take() {
                    self.close_conn(old, Some(id));
                }
                let d = self.delay();
                self.push(d, id, id, Payload::ConnectAttempt);
            }
            Action::Send { to, message } => {
                if std::env::var_os("ZAB_SIM_VERBOSE").is_some()
                    && matches!(message, Message::Diff { .. } | Message::Trunc { .. })
                {
                    let n = &self.nodes[&id];
                    let line = format!(
                        "#{id} syncs #{to} with {}: disk log {}, snapshot {:?}, state {}",
                        message.name(),
                        ranges(&n.disk.log),
                        n.disk.snapshot.as_ref().map(|(z, _)| zxid::hex(*z)),
                        ranges(&n.state)
                    );
                    self.log(line);
                }
                self.send_packet(id, to, message)
            }
            Action::SendSnapshot { to, zxid: at } => {
                let node = &self.nodes[&id];
                let last = node.state.last().map_or(0, |p| p.zxid);
                if last != at {
                    self.checker.fail(
                        format!(
                            "#{id} SendSnapshot at {} but its state is at {}",
                            zxid::hex(at),
                            zxid::hex(last)
                        ),
                        self.now,
                    );
                    return;
                }
                let snapshot = crate::state::encode(&node.state);
                self.send_packet(id, to, Message::Snap { zxid: at, snapshot });
            }
            Action::Disconnect { sid } => {
                let node = self.nodes.get_mut(&id).expect("node");
                let mut conns = Vec::new();
                if let Some((leader, conn)) = node.leader_conn
                    && leader == sid
                {
                    node.leader_conn = None;
                    conns.push(conn);
                }
                if node.connecting == Some(sid) {
                    node.connecting = None;
                }
                if let Some(conn) = node.learner_conns.remove(&sid) {
                    conns.push(conn);
                }
                for conn in conns {
                    self.close_conn(conn, Some(id));
                }
            }
            Action::SaveAcceptedEpoch(e) => {
                self.nodes.get_mut(&id).expect("node").disk.accepted = e;
            }
            Action::SaveCurrentEpoch(e) => {
                let node = self.nodes.get_mut(&id).expect("node");
                node.disk.current = e;
                node.disk.updating = false;
                let leading = node
                    .zab
                    .as_ref()
                    .is_some_and(|z| z.state() == PeerState::Leading);
                if leading {
                    self.checker.epoch_leader(e, id, self.now);
                }
            }
            Action::MarkUpdatingEpoch => {
                self.nodes.get_mut(&id).expect("node").disk.updating = true;
            }
            Action::Append(p) => {
                // Group commit; now and then a slow disk.
                let gap = if self.rng.random_bool(0.1) {
                    self.rng.random_range(20..=80)
                } else {
                    self.rng.random_range(1..=4)
                };
                let node = self.nodes.get_mut(&id).expect("node");
                node.unsynced.push(p);
                if node.fsync_at.is_none() {
                    node.fsync_at = Some(self.now + gap);
                }
            }
            Action::SyncLog => {
                let node = self.nodes.get_mut(&id).expect("node");
                let moved = std::mem::take(&mut node.unsynced);
                node.disk.log.extend(moved);
                node.fsync_at = None;
            }
            Action::Truncate(z) => {
                let node = self.nodes.get_mut(&id).expect("node");
                node.unsynced.clear();
                if node.disk.snapshot.as_ref().is_some_and(|(s, _)| *s > z) {
                    // A snapshot cannot be cut: refuse, keep everything, tell the engine.
                    let last = node.disk.last_zxid();
                    let actions = node
                        .zab
                        .as_mut()
                        .map(|zab| zab.step(self.now, Event::TruncateRefused { last_zxid: last }));
                    self.log(format!(
                        "#{id} cannot TRUNC to {} below its snapshot",
                        zxid::hex(z)
                    ));
                    if let Some(actions) = actions {
                        self.run_actions(id, actions);
                    }
                    return;
                }
                node.disk.log.retain(|p| p.zxid <= z);
                node.state = node.disk.load();
                self.log(format!("#{id} TRUNC to {}", zxid::hex(z)));
            }
            Action::InstallSnapshot { zxid: z, snapshot } => {
                let state = crate::state::decode(snapshot);
                let node = self.nodes.get_mut(&id).expect("node");
                node.unsynced.clear();
                node.disk.log.clear();
                node.disk.snapshot = Some((z, state.clone()));
                node.state = state;
                self.log(format!("#{id} SNAP at {}", zxid::hex(z)));
            }
            Action::Apply(p) => {
                let node = &self.nodes[&id];
                let leading = node
                    .zab
                    .as_ref()
                    .is_some_and(|z| z.state() == PeerState::Leading);
                self.checker.apply(node, &p, leading, &self.nodes, self.now);
                let z = p.zxid;
                self.nodes.get_mut(&id).expect("node").state.push(p);
                self.ack_writes(id, z);
            }
            Action::FastForward(p) => {
                let node = self.nodes.get_mut(&id).expect("node");
                if node.state.last().is_some_and(|l| l.zxid >= p.zxid) {
                    let msg = format!("#{id} fast-forward out of order at {}", zxid::hex(p.zxid));
                    self.checker.fail(msg, self.now);
                    return;
                }
                node.state.push(p);
            }
            Action::StartServing => {
                let node = &self.nodes[&id];
                let z = node.zab.as_ref().map(|z| (z.state(), z.current_epoch()));
                if let Some((PeerState::Leading, epoch)) = z {
                    self.checker.established(node, epoch, &self.nodes, self.now);
                    self.stats.elections_decided += 1;
                }
                self.log(format!("#{id} serving ({:?})", z.map(|z| z.0)));
            }
            Action::StopServing => self.log(format!("#{id} stops serving")),
            Action::StateChanged {
                state,
                leader,
                epoch,
            } => {
                self.log(format!(
                    "#{id} {} leader={leader:?} epoch={epoch}",
                    state.name()
                ));
            }
            Action::LearnerRequest { from, data, .. } => {
                self.propose_write(id, data, from);
            }
            Action::TouchSessions { .. }
            | Action::RevalidateRequest { .. }
            | Action::Revalidated { .. }
            | Action::SyncDone { .. } => {}
        }
    }

    // ------------------------------------------------------------- the workload

    fn client_write(&mut self) {
        let gap = self.rng.random_range(1..=2 * self.schedule.write_every_ms);
        self.push(gap, 0, 0, Payload::Write);
        let serving: Vec<Sid> = self
            .nodes
            .iter()
            .filter(|(_, n)| {
                n.paused_until <= self.now && n.zab.as_ref().is_some_and(|z| z.is_serving())
            })
            .map(|(id, _)| *id)
            .collect();
        if serving.is_empty() {
            return;
        }
        let origin = serving[self.rng.random_range(0..serving.len())];
        let id = self.next_write;
        self.next_write += 1;
        let data = Bytes::from(format!("w{id}"));
        self.writes.insert(id, (origin, None));
        let node = self.nodes.get_mut(&origin).expect("node");
        let Some(zab) = node.zab.as_mut() else {
            return;
        };
        if zab.state() == PeerState::Leading {
            self.propose_write(origin, data, origin);
        } else if let Ok(actions) = zab.forward(data, Vec::new()) {
            self.run_actions(origin, actions);
        }
    }

    fn propose_write(&mut self, leader: Sid, data: Bytes, _origin: Sid) {
        let id: u64 = std::str::from_utf8(&data[1..])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let node = self.nodes.get_mut(&leader).expect("node");
        let Some(zab) = node.zab.as_mut() else {
            return;
        };
        let Some(z) = zab.next_zxid() else {
            return;
        };
        match zab.propose(self.now, Proposal { zxid: z, data }) {
            Ok(actions) => {
                if let Some(w) = self.writes.get_mut(&id) {
                    w.1 = Some(z);
                }
                self.run_actions(leader, actions);
            }
            Err(e) => self.log(format!("#{leader} propose refused: {e}")),
        }
    }

    fn ack_writes(&mut self, id: Sid, z: i64) {
        let acked: Vec<u64> = self
            .writes
            .iter()
            .filter(|(_, (origin, zx))| *origin == id && *zx == Some(z))
            .map(|(w, _)| *w)
            .collect();
        for w in acked {
            self.writes.remove(&w);
            self.stats.writes_acked += 1;
            self.checker.acked(z);
        }
    }

    /// Whether every member is up, serving, and applied the same state.
    pub(crate) fn converged(&self) -> bool {
        let mut last = None;
        for n in self.nodes.values() {
            let Some(z) = &n.zab else { return false };
            if !z.is_serving() {
                return false;
            }
            let l = n.state.last().map(|p| p.zxid);
            if last.is_some() && last != Some(l) {
                return false;
            }
            last = Some(l);
        }
        true
    }
}

/// `0x100000001-0x100000009 0x200000001-…` for traces.
fn ranges(ps: &[Proposal]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < ps.len() {
        let mut j = i;
        while j + 1 < ps.len() && ps[j + 1].zxid == ps[j].zxid + 1 {
            j += 1;
        }
        out.push(format!(
            "{}-{}",
            zxid::hex(ps[i].zxid),
            zxid::hex(ps[j].zxid)
        ));
        i = j + 1;
    }
    out.join(" ")
}
