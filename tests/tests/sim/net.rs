//! The simulated network: every client connection is a `tokio::io::duplex` pipe whose far end
//! is served by a relay task. The relay delays each chunk (per-connection latency, TCP order
//! kept), holds it while its direction is blocked (a one-way partition: TCP retransmits, so
//! nothing is lost unless the connection dies), drops everything when the connection is cut,
//! and hands whole frames to the [`Ensemble`] of the member it reached. Server outputs are
//! routed to the relays of their connections. All time is tokio's paused clock.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use zk_client::transport::{Connector, Endpoint, Stream};
use zk_server_lite::core::{Now, Output, Outputs};
use zk_server_lite::proto::Decode;
use zk_server_lite::proto::frame;
use zk_server_lite::proto::records::ConnectRequest;

use crate::ensemble::{ConnId, Ensemble, encode};
use crate::rng::SimRng;

/// The port every member listens on; member `i` is `10.0.0.{i+1}`.
pub const PORT: u16 = 2181;

pub fn member_addr(member: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, u8::try_from(member + 1).unwrap_or(255)], PORT))
}

fn member_of(addr: SocketAddr) -> Option<usize> {
    match addr.ip() {
        std::net::IpAddr::V4(ip) => usize::from(ip.octets()[3]).checked_sub(1),
        std::net::IpAddr::V6(_) => None,
    }
}

/// A (client, member) link's faults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Link {
    /// Client → server bytes are held.
    pub block_up: bool,
    /// Server → client bytes are held.
    pub block_down: bool,
}

#[derive(Debug, Default)]
pub struct MemberState {
    pub up: bool,
    /// Frames are neither read nor answered (a GC pause, a stuck disk).
    pub stalled: bool,
}

struct Conn {
    client: usize,
    member: usize,
    down: mpsc::UnboundedSender<Output>,
    kill: watch::Sender<bool>,
    handshaken: bool,
    /// The session this connection's handshake named (0: a new one) and got.
    session: Option<i64>,
}

/// Something that happened, for the invariants and the replay trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// A client's handshake (written at `sent`) reached a server: the session it asked for.
    Handshake {
        client: usize,
        asked: i64,
        sent: Instant,
    },
    /// A server answered a handshake with this session (0: refused/expired).
    Session { client: usize, session: i64 },
    /// A frame from a session reached the servers (its last bytes were written by the
    /// client at `sent`).
    Request {
        client: usize,
        session: i64,
        sent: Instant,
    },
}

pub struct World {
    pub ensemble: Box<dyn Ensemble + Send>,
    pub members: Vec<MemberState>,
    pub links: BTreeMap<(usize, usize), Link>,
    /// Per-connection latency range, ms.
    pub latency_ms: (u64, u64),
    conns: BTreeMap<ConnId, Conn>,
    next_conn: ConnId,
    pub rng: SimRng,
    epoch: Instant,
    /// Added to the servers' clock (clock-jump faults).
    pub server_clock_offset_ms: i64,
    pub events: Vec<(Instant, NetEvent)>,
    /// Per client: when it last got bytes from a server.
    pub last_heard: BTreeMap<usize, Instant>,
    /// A trace of what happened, compared between two runs of a seed.
    pub trace: Vec<String>,
    /// Wakes every relay when faults change.
    faults: watch::Sender<u64>,
}

pub type Shared = Arc<Mutex<World>>;

pub fn lock(world: &Shared) -> MutexGuard<'_, World> {
    world
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl World {
    pub fn new(ensemble: Box<dyn Ensemble + Send>, members: usize, seed: u64) -> Shared {
        let (faults, _) = watch::channel(0);
        Arc::new(Mutex::new(World {
            ensemble,
            members: (0..members)
                .map(|_| MemberState {
                    up: true,
                    stalled: false,
                })
                .collect(),
            links: BTreeMap::new(),
            latency_ms: (1, 20),
            conns: BTreeMap::new(),
            next_conn: 1,
            rng: SimRng::new(seed ^ 0x5EED_F00D),
            epoch: Instant::now(),
            server_clock_offset_ms: 0,
            events: Vec::new(),
            last_heard: BTreeMap::new(),
            trace: Vec::new(),
            faults,
        }))
    }

    /// The servers' clock when a run starts.
    pub fn now_at_start() -> Now {
        Now {
            wall_ms: 1_700_000_000_000,
            mono_ms: 0,
        }
    }

    /// The servers' clock.
    pub fn now(&self) -> Now {
        let ms = i64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(i64::MAX)
            + self.server_clock_offset_ms;
        Now {
            wall_ms: 1_700_000_000_000 + ms,
            mono_ms: ms,
        }
    }

    pub fn link(&self, client: usize, member: usize) -> Link {
        self.links
            .get(&(client, member))
            .copied()
            .unwrap_or_default()
    }

    /// Tells every relay to look at the faults again.
    pub fn faults_changed(&self) {
        self.faults.send_modify(|n| *n += 1);
    }

    pub fn note(&mut self, line: String) {
        let at = self.epoch.elapsed().as_millis();
        self.trace.push(format!("{at:>7} {line}"));
    }

    /// Routes server outputs to their connections.
    pub fn route(&mut self, outputs: Outputs) {
        for (conn, output) in outputs {
            if let Some(c) = self.conns.get_mut(&conn) {
                if let Output::Handshake(response) = &output {
                    let client = c.client;
                    c.session = Some(response.session_id);
                    let event = NetEvent::Session {
                        client,
                        session: if response.time_out > 0 {
                            response.session_id
                        } else {
                            0
                        },
                    };
                    self.events.push((Instant::now(), event));
                }
                let _ = c.down.send(output);
            }
        }
    }

    /// Cuts a connection (both ends see it close).
    pub fn cut(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn) {
            let _ = c.kill.send(true);
        }
    }

    /// Every open connection: (id, client, member).
    pub fn connections(&self) -> Vec<(ConnId, usize, usize)> {
        self.conns
            .iter()
            .map(|(id, c)| (*id, c.client, c.member))
            .collect()
    }

    /// Crashes a member: its connections die, it refuses new ones.
    pub fn crash(&mut self, member: usize) {
        let now = self.now();
        self.members[member].up = false;
        for (id, _, m) in self.connections() {
            if m == member {
                self.cut(id);
            }
        }
        self.ensemble.crash(member, now);
        self.faults_changed();
    }

    pub fn restart(&mut self, member: usize) {
        let now = self.now();
        self.members[member].up = true;
        self.members[member].stalled = false;
        self.ensemble.restart(member, now);
        self.faults_changed();
    }

    fn frame_in(&mut self, conn: ConnId, payload: Bytes, sent: Instant) {
        let now = self.now();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let (client, member) = (c.client, c.member);
        let outputs = if c.handshaken {
            let session = c.session.unwrap_or(0);
            self.events.push((
                Instant::now(),
                NetEvent::Request {
                    client,
                    session,
                    sent,
                },
            ));
            self.ensemble.request(member, conn, payload, now)
        } else {
            c.handshaken = true;
            match ConnectRequest::decode_exact(payload) {
                Ok(request) => {
                    self.events.push((
                        Instant::now(),
                        NetEvent::Handshake {
                            client,
                            asked: request.session_id,
                            sent,
                        },
                    ));
                    self.note(format!(
                        "handshake c{client} m{member} session {:#x} zxid {}",
                        request.session_id, request.last_zxid_seen
                    ));
                    self.ensemble.connect(member, conn, &request, now)
                }
                Err(_) => vec![(conn, Output::Close)],
            }
        };
        self.route(outputs);
    }
}

/// A connector for `client` into the simulated network.
pub fn connector(world: Shared, client: usize) -> Connector {
    Arc::new(move |endpoint: Endpoint| {
        let world = world.clone();
        Box::pin(async move {
            let refused = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
            let member = member_of(endpoint.addr).ok_or_else(refused)?;
            let (latency, link, up) = {
                let mut w = lock(&world);
                let (lo, hi) = w.latency_ms;
                let latency = w.rng.range(lo, hi);
                let up = w.members.get(member).is_some_and(|m| m.up);
                (latency, w.link(client, member), up)
            };
            if link.block_up || link.block_down {
                // SYNs or SYN-ACKs lost: the attempt hangs until the client gives up.
                tokio::time::sleep(Duration::from_secs(30)).await;
                return Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
            }
            tokio::time::sleep(Duration::from_millis(2 * latency)).await;
            if !up || !lock(&world).members[member].up {
                return Err(refused());
            }
            let (client_end, net_end) = tokio::io::duplex(1 << 20);
            let (down_tx, down_rx) = mpsc::unbounded_channel();
            let (kill, kill_rx) = watch::channel(false);
            let (conn, faults, seed) = {
                let mut w = lock(&world);
                let conn = w.next_conn;
                w.next_conn += 1;
                w.conns.insert(
                    conn,
                    Conn {
                        client,
                        member,
                        down: down_tx,
                        kill,
                        handshaken: false,
                        session: None,
                    },
                );
                w.note(format!("connect c{client} m{member} conn {conn}"));
                let seed = w.rng.next_u64();
                (conn, w.faults.subscribe(), seed)
            };
            tokio::spawn(relay(
                world.clone(),
                conn,
                client,
                member,
                net_end,
                down_rx,
                kill_rx,
                faults,
                SimRng::new(seed),
            ));
            Ok(Box::new(client_end) as Stream)
        })
    })
}

#[allow(clippy::too_many_arguments)]
async fn relay(
    world: Shared,
    conn: ConnId,
    client: usize,
    member: usize,
    net_end: DuplexStream,
    mut down_rx: mpsc::UnboundedReceiver<Output>,
    mut kill: watch::Receiver<bool>,
    mut faults: watch::Receiver<u64>,
    mut rng: SimRng,
) {
    let (mut reader, mut writer) = tokio::io::split(net_end);
    // (deliver at, written at, bytes); an empty chunk is the client's close.
    let mut up: VecDeque<(Instant, Instant, Bytes)> = VecDeque::new();
    let mut down: VecDeque<(Instant, Output)> = VecDeque::new();
    let mut last_up = Instant::now();
    let mut last_down = Instant::now();
    let mut inbuf = BytesMut::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut reading = true;
    let far = || Instant::now() + Duration::from_secs(86_400);
    loop {
        let (latency, link, member_ok, down_ok) = {
            let w = lock(&world);
            let (lo, hi) = w.latency_ms;
            let m = &w.members[member];
            ((lo, hi), w.link(client, member), m.up && !m.stalled, m.up)
        };
        let mut delay = || Duration::from_millis(rng.range(latency.0, latency.1));
        let up_due = up
            .front()
            .map(|(at, _, _)| *at)
            .filter(|_| !link.block_up && member_ok);
        let down_due = down
            .front()
            .map(|(at, _)| *at)
            .filter(|_| !link.block_down && down_ok && member_ok);
        tokio::select! {
            biased;
            _ = kill.changed() => break,
            _ = faults.changed() => {}
            output = down_rx.recv() => match output {
                Some(output) => {
                    last_down = last_down.max(Instant::now() + delay());
                    down.push_back((last_down, output));
                }
                None => break,
            },
            read = reader.read(&mut chunk), if reading => match read {
                Ok(0) | Err(_) => {
                    // The client closed its end: the server sees it after the queued bytes.
                    reading = false;
                    last_up = last_up.max(Instant::now() + delay());
                    up.push_back((last_up, Instant::now(), Bytes::new()));
                }
                Ok(n) => {
                    last_up = last_up.max(Instant::now() + delay());
                    up.push_back((last_up, Instant::now(), Bytes::copy_from_slice(&chunk[..n])));
                }
            },
            () = sleep_until(up_due.unwrap_or_else(far)), if up_due.is_some() => {
                let Some((_, sent, bytes)) = up.pop_front() else { continue };
                if bytes.is_empty() {
                    break;
                }
                inbuf.extend_from_slice(&bytes);
                let mut w = lock(&world);
                loop {
                    match frame::parse(&mut inbuf, 1 << 22) {
                        Ok(Some(payload)) => w.frame_in(conn, payload, sent),
                        Ok(None) => break,
                        Err(_) => {
                            w.cut(conn);
                            break;
                        }
                    }
                }
            }
            () = sleep_until(down_due.unwrap_or_else(far)), if down_due.is_some() => {
                let Some((_, output)) = down.pop_front() else { continue };
                match encode(&output) {
                    Some(bytes) => {
                        if writer.write_all(&bytes).await.is_err() {
                            break;
                        }
                        lock(&world).last_heard.insert(client, Instant::now());
                    }
                    None => break,
                }
            }
        }
    }
    {
        let mut w = lock(&world);
        if let Some(c) = w.conns.remove(&conn) {
            w.note(format!("closed c{} m{} conn {conn}", c.client, c.member));
            w.ensemble.disconnected(member, conn);
        }
    }
    let _ = writer.shutdown().await;
}
