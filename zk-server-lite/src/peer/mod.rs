//! The quorum and election ports: the sockets that carry the Zab engine's messages
//! between members, on Apache's wire ([`wire`]).
//!
//! * **Election port**: at most one connection per pair, and only one dialled by the larger
//!   sid survives (Apache's `QuorumCnxManager`): a member that needs to reach a larger sid
//!   dials it, sends its initial message and hangs up (the larger one dials back); a member
//!   accepting a connection from a smaller sid hangs up and dials that sid itself. Each
//!   peer keeps only the latest notification queued while no connection is up.
//! * **Quorum port**: a learner dials its leader (retrying until the engine gives up) and
//!   the leader learns the learner's sid from its FOLLOWERINFO/OBSERVERINFO. Connections
//!   are accepted only while this member leads. A new connection from a learner replaces
//!   its old one (reported lost first).
//!
//! Everything arrives as [`zab::Event`](crate::zab::Event)s on one channel; the driver
//! hands the network [`Action`]s to [`Peers::handle`].
//!
//! SNAP: the snapshot that follows a SNAP packet is written as `length:int` + the bytes
//! the driver produced. Apache streams its own snapshot serialisation instead; members
//! that join Apache ensembles will need that format (a later issue).

pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zk_proto::Encode;
use zk_proto::quorum::election::{self, InitialMessage};
use zk_proto::quorum::{PacketType, QuorumPacket, QuorumPacketDecoder};

use self::wire::{Outgoing, Sender, WireContext};
use crate::zab::{Action, Event, Message, PeerState, Sid};

/// Longest snapshot accepted after SNAP.
const MAX_SNAPSHOT: usize = 1 << 30;
/// How often a learner retries its connection to the leader.
const CONNECT_RETRY: Duration = Duration::from_millis(200);
/// Longest wait for a TCP connect or an initial message.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a member listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddrs {
    /// The quorum (learner ↔ leader) port.
    pub quorum: SocketAddr,
    /// The election port.
    pub election: SocketAddr,
}

/// The members and this member's identity on the wire.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Every member, this one included.
    pub members: BTreeMap<Sid, PeerAddrs>,
    /// Identity and configuration text for the packets that carry them.
    pub wire: WireContext,
}

enum Command {
    Action(Action),
    Snapshot { to: Sid, zxid: i64, snapshot: Bytes },
    Leading(bool),
}

enum Internal {
    ElectionUp {
        sid: Sid,
        stream: TcpStream,
        leftover: BytesMut,
    },
    ElectionDown {
        sid: Sid,
        generation: u64,
    },
    DialDone {
        sid: Sid,
    },
    DialBack {
        sid: Sid,
    },
    LeaderUp {
        leader: Sid,
        stream: TcpStream,
        attempt: u64,
    },
    LearnerUp {
        sid: Sid,
        message: Message,
        writer: OwnedWriteHalf,
        reader: Reader,
    },
    QuorumDown {
        sid: Sid,
        generation: u64,
    },
}

/// The running socket layer of one member. Dropping it closes every connection.
#[derive(Debug)]
pub struct Peers {
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Peers {
    /// Starts serving the two listeners (already bound, so that callers can use port 0);
    /// events go to `events`.
    pub fn start(
        cfg: PeerConfig,
        election: TcpListener,
        quorum: TcpListener,
        events: mpsc::UnboundedSender<Event>,
    ) -> Peers {
        let (commands, rx) = mpsc::unbounded_channel();
        let manager = Manager {
            cfg,
            events,
            elections: HashMap::new(),
            pending: HashMap::new(),
            dialing: HashMap::new(),
            leader: None,
            connect_attempt: 0,
            learners: HashMap::new(),
            leading: false,
            next_gen: 1,
            tasks: Vec::new(),
        };
        let task = tokio::spawn(manager.run(rx, election, quorum));
        Peers { commands, task }
    }

    /// Runs a network action (`SendNotification`, `ConnectToLeader`, `Send`, `Disconnect`);
    /// returns the action back when it is not a network one.
    pub fn handle(&self, action: Action) -> Option<Action> {
        match action {
            Action::SendNotification { .. }
            | Action::ConnectToLeader { .. }
            | Action::Send { .. }
            | Action::Disconnect { .. } => {
                let _ = self.commands.send(Command::Action(action));
                None
            }
            Action::StateChanged { state, .. } => {
                let _ = self
                    .commands
                    .send(Command::Leading(state == PeerState::Leading));
                Some(action)
            }
            other => Some(other),
        }
    }

    /// Sends SNAP and the snapshot (the driver's answer to `Action::SendSnapshot`).
    pub fn send_snapshot(&self, to: Sid, zxid: i64, snapshot: Bytes) {
        let _ = self.commands.send(Command::Snapshot { to, zxid, snapshot });
    }
}

struct Conn {
    generation: u64,
    tx: mpsc::UnboundedSender<Bytes>,
    reader: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

struct Manager {
    cfg: PeerConfig,
    events: mpsc::UnboundedSender<Event>,
    elections: HashMap<Sid, Conn>,
    /// The latest notification for a peer without a connection.
    pending: HashMap<Sid, Bytes>,
    dialing: HashMap<Sid, JoinHandle<()>>,
    /// The leader this learner is connected or connecting to, and the connection.
    leader: Option<(Sid, Option<Conn>)>,
    connect_attempt: u64,
    learners: HashMap<Sid, Conn>,
    leading: bool,
    next_gen: u64,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Manager {
    fn drop(&mut self) {
        for t in self.dialing.values().chain(self.tasks.iter()) {
            t.abort();
        }
    }
}

impl Manager {
    fn myid(&self) -> Sid {
        self.cfg.wire.myid
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        election: TcpListener,
        quorum: TcpListener,
    ) {
        let (itx, mut irx) = mpsc::unbounded_channel::<Internal>();
        loop {
            self.tasks.retain(|t| !t.is_finished());
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(Command::Action(a)) => self.action(a, &itx),
                    Some(Command::Snapshot { to, zxid, snapshot }) => {
                        let mut trailer = BytesMut::with_capacity(4 + snapshot.len());
                        trailer.put_i32(i32::try_from(snapshot.len()).unwrap_or(i32::MAX));
                        trailer.put_slice(&snapshot);
                        let out = Outgoing { packet: QuorumPacket::snap(zxid), trailer: Some(trailer.freeze()) };
                        self.write_quorum(to, out);
                    }
                    Some(Command::Leading(on)) => {
                        self.leading = on;
                        if !on {
                            self.learners.clear();
                        }
                    }
                    None => return,
                },
                accepted = election.accept() => {
                    if let Ok((stream, _)) = accepted {
                        let itx = itx.clone();
                        let myid = self.myid();
                        self.tasks.push(tokio::spawn(accept_election(stream, myid, itx)));
                    }
                }
                accepted = quorum.accept() => {
                    if let Ok((stream, _)) = accepted && self.leading {
                        let itx = itx.clone();
                        self.tasks.push(tokio::spawn(accept_learner(stream, itx)));
                    }
                }
                Some(internal) = irx.recv() => self.internal(internal, &itx),
            }
        }
    }

    fn action(&mut self, action: Action, itx: &mpsc::UnboundedSender<Internal>) {
        match action {
            Action::SendNotification { to, notification } => {
                let config = self.cfg.wire.config.clone().unwrap_or_default();
                let message = wire::encode_notification(&notification, config).to_message();
                let mut frame = BytesMut::new();
                election::encode_frame(&mut frame, &message);
                let frame = frame.freeze();
                if let Some(c) = self.elections.get(&to)
                    && c.tx.send(frame.clone()).is_ok()
                {
                    return;
                }
                self.pending.insert(to, frame);
                self.dial_election(to, itx);
            }
            Action::ConnectToLeader { leader } => {
                self.connect_attempt += 1;
                self.leader = Some((leader, None));
                let Some(addr) = self.cfg.members.get(&leader).map(|a| a.quorum) else {
                    return;
                };
                let attempt = self.connect_attempt;
                let itx = itx.clone();
                self.tasks.push(tokio::spawn(async move {
                    loop {
                        if let Ok(Ok(stream)) =
                            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
                        {
                            let _ = stream.set_nodelay(true);
                            let _ = itx.send(Internal::LeaderUp {
                                leader,
                                stream,
                                attempt,
                            });
                            return;
                        }
                        tokio::time::sleep(CONNECT_RETRY).await;
                        if itx.is_closed() {
                            return;
                        }
                    }
                }));
            }
            Action::Send { to, message } => {
                let sender = if matches!(&self.leader, Some((l, _)) if *l == to) {
                    Sender::Learner
                } else {
                    Sender::Leader
                };
                let out = wire::encode(&message, sender, &self.cfg.wire);
                self.write_quorum(to, out);
            }
            Action::Disconnect { sid } => {
                if matches!(&self.leader, Some((l, _)) if *l == sid) {
                    self.leader = None;
                    self.connect_attempt += 1;
                }
                self.learners.remove(&sid);
            }
            _ => {}
        }
    }

    fn write_quorum(&mut self, to: Sid, out: Outgoing) {
        let conn = match &self.leader {
            Some((l, Some(c))) if *l == to => Some(c),
            _ => self.learners.get(&to),
        };
        let Some(conn) = conn else {
            tracing::debug!(to, packet = ?out.packet.packet_type(), "no quorum connection: dropped");
            return;
        };
        let mut buf = BytesMut::with_capacity(out.packet.encoded_len());
        out.packet.encode(&mut buf);
        if let Some(t) = out.trailer {
            buf.put_slice(&t);
        }
        let _ = conn.tx.send(buf.freeze());
    }

    fn dial_election(&mut self, to: Sid, itx: &mpsc::UnboundedSender<Internal>) {
        if self.dialing.get(&to).is_some_and(|t| !t.is_finished()) {
            return;
        }
        let Some(addr) = self.cfg.members.get(&to).map(|a| a.election) else {
            return;
        };
        let me = self.myid();
        let my_addr = self
            .cfg
            .members
            .get(&me)
            .map(|a| a.election.to_string())
            .unwrap_or_default();
        let itx = itx.clone();
        let task = tokio::spawn(async move {
            let Ok(Ok(mut stream)) =
                tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
            else {
                let _ = itx.send(Internal::DialDone { sid: to });
                return;
            };
            let _ = stream.set_nodelay(true);
            let hello = InitialMessage::v1(me, my_addr).to_bytes();
            if stream.write_all(&hello).await.is_err() {
                let _ = itx.send(Internal::DialDone { sid: to });
                return;
            }
            if to > me {
                // Only connections dialled by the larger sid survive: it dials back.
                let _ = stream.shutdown().await;
                let _ = itx.send(Internal::DialDone { sid: to });
            } else {
                let _ = itx.send(Internal::ElectionUp {
                    sid: to,
                    stream,
                    leftover: BytesMut::new(),
                });
            }
        });
        self.dialing.insert(to, task);
    }

    fn internal(&mut self, internal: Internal, itx: &mpsc::UnboundedSender<Internal>) {
        match internal {
            Internal::ElectionUp {
                sid,
                stream,
                leftover,
            } => {
                if sid == self.myid() || !self.cfg.members.contains_key(&sid) {
                    return;
                }
                let generation = self.next_gen;
                self.next_gen += 1;
                let (read, write) = stream.into_split();
                let (tx, rx) = mpsc::unbounded_channel();
                self.tasks.push(tokio::spawn(writer(write, rx)));
                let events = self.events.clone();
                let itx2 = itx.clone();
                let reader = tokio::spawn(async move {
                    let _ = read_notifications(read, leftover, sid, events).await;
                    let _ = itx2.send(Internal::ElectionDown { sid, generation });
                });
                if let Some(frame) = self.pending.remove(&sid) {
                    let _ = tx.send(frame);
                }
                self.elections.insert(
                    sid,
                    Conn {
                        generation,
                        tx,
                        reader,
                    },
                );
            }
            Internal::ElectionDown { sid, generation } => {
                if self
                    .elections
                    .get(&sid)
                    .is_some_and(|c| c.generation == generation)
                {
                    self.elections.remove(&sid);
                }
            }
            Internal::DialDone { sid } => {
                self.dialing.remove(&sid);
            }
            Internal::DialBack { sid } => {
                if self.cfg.members.contains_key(&sid) && !self.elections.contains_key(&sid) {
                    self.dial_election(sid, itx);
                }
            }
            Internal::LeaderUp {
                leader,
                stream,
                attempt,
            } => {
                if attempt != self.connect_attempt
                    || !matches!(&self.leader, Some((l, None)) if *l == leader)
                {
                    return;
                }
                let generation = self.next_gen;
                self.next_gen += 1;
                let (read, write) = stream.into_split();
                let (tx, rx) = mpsc::unbounded_channel();
                self.tasks.push(tokio::spawn(writer(write, rx)));
                let events = self.events.clone();
                let reader = tokio::spawn(read_quorum(
                    Reader::new(read),
                    Sender::Leader,
                    leader,
                    generation,
                    events,
                    itx.clone(),
                ));
                self.leader = Some((
                    leader,
                    Some(Conn {
                        generation,
                        tx,
                        reader,
                    }),
                ));
                let _ = self.events.send(Event::LeaderConnected);
            }
            Internal::LearnerUp {
                sid,
                message,
                writer: write,
                reader: r,
            } => {
                if !self.leading || !self.cfg.members.contains_key(&sid) {
                    return;
                }
                if self.learners.remove(&sid).is_some() {
                    let _ = self.events.send(Event::PeerLost { sid });
                }
                let generation = self.next_gen;
                self.next_gen += 1;
                let (tx, rx) = mpsc::unbounded_channel();
                self.tasks.push(tokio::spawn(writer(write, rx)));
                let events = self.events.clone();
                let _ = events.send(Event::Packet { from: sid, message });
                let reader = tokio::spawn(read_quorum(
                    r,
                    Sender::Learner,
                    sid,
                    generation,
                    events,
                    itx.clone(),
                ));
                self.learners.insert(
                    sid,
                    Conn {
                        generation,
                        tx,
                        reader,
                    },
                );
            }
            Internal::QuorumDown { sid, generation } => {
                let lost_leader = matches!(&self.leader, Some((l, Some(c))) if *l == sid && c.generation == generation);
                if lost_leader {
                    self.leader = None;
                    let _ = self.events.send(Event::PeerLost { sid });
                }
                if self
                    .learners
                    .get(&sid)
                    .is_some_and(|c| c.generation == generation)
                {
                    self.learners.remove(&sid);
                    let _ = self.events.send(Event::PeerLost { sid });
                }
            }
        }
    }
}

async fn writer(mut w: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    while let Some(bytes) = rx.recv().await {
        if w.write_all(&bytes).await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

/// An accepted election connection: the initial message says who dialled.
async fn accept_election(mut stream: TcpStream, myid: Sid, itx: mpsc::UnboundedSender<Internal>) {
    let mut buf = BytesMut::new();
    let hello = loop {
        match InitialMessage::parse(&mut buf) {
            Ok(Some(m)) => break m,
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(error = %e, "bad initial message on the election port");
                return;
            }
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, stream.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    };
    let sid = hello.sid();
    let _ = stream.set_nodelay(true);
    if sid < myid {
        // The larger sid keeps the connection it dials: hang up, dial back.
        drop(stream);
        let _ = itx.send(Internal::DialBack { sid });
        return;
    }
    // Bytes read after the initial message are the first notifications.
    let _ = itx.send(Internal::ElectionUp {
        sid,
        stream,
        leftover: buf,
    });
}

async fn read_notifications(
    mut read: OwnedReadHalf,
    mut buf: BytesMut,
    from: Sid,
    events: mpsc::UnboundedSender<Event>,
) -> io::Result<()> {
    loop {
        while let Some(message) = election::parse_frame(&mut buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        {
            match election::Notification::from_message(&message)
                .map_err(wire::WireError::from)
                .and_then(|n| wire::decode_notification(&n))
            {
                Ok(notification) => {
                    let _ = events.send(Event::Notification { from, notification });
                }
                Err(e) => tracing::debug!(from, error = %e, "notification dropped"),
            }
        }
        if read.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// Reads quorum packets (and SNAP's snapshot) from a connection.
struct Reader {
    read: OwnedReadHalf,
    buf: BytesMut,
    decoder: QuorumPacketDecoder,
}

impl Reader {
    fn new(read: OwnedReadHalf) -> Reader {
        Reader {
            read,
            buf: BytesMut::new(),
            decoder: QuorumPacketDecoder::default(),
        }
    }

    async fn fill(&mut self) -> io::Result<bool> {
        Ok(self.read.read_buf(&mut self.buf).await? > 0)
    }

    /// The next packet, with the snapshot after a SNAP from the leader.
    async fn next(&mut self, sender: Sender) -> io::Result<Option<(QuorumPacket, Option<Bytes>)>> {
        let packet = loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(p)) => break p,
                Ok(None) => {
                    if !self.fill().await? {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        };
        if sender == Sender::Leader && packet.packet_type().ok() == Some(PacketType::Snap) {
            while self.buf.len() < 4 {
                if !self.fill().await? {
                    return Ok(None);
                }
            }
            let len = usize::try_from((&self.buf[..4]).get_i32()).unwrap_or(usize::MAX);
            if len > MAX_SNAPSHOT {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "snapshot too large",
                ));
            }
            while self.buf.len() < 4 + len {
                if !self.fill().await? {
                    return Ok(None);
                }
            }
            self.buf.advance(4);
            let snapshot = self.buf.split_to(len).freeze();
            return Ok(Some((packet, Some(snapshot))));
        }
        Ok(Some((packet, None)))
    }
}

/// Passes a quorum connection's packets to the engine until it closes or sends nonsense,
/// then reports it down.
async fn read_quorum(
    mut r: Reader,
    sender: Sender,
    from: Sid,
    generation: u64,
    events: mpsc::UnboundedSender<Event>,
    itx: mpsc::UnboundedSender<Internal>,
) {
    while let Ok(Some((packet, snapshot))) = r.next(sender).await {
        match wire::decode(&packet, sender, snapshot) {
            Ok(message) => {
                let _ = events.send(Event::Packet { from, message });
            }
            Err(e) => {
                tracing::warn!(from, ?sender, error = %e, "bad quorum packet: closing");
                break;
            }
        }
    }
    let _ = itx.send(Internal::QuorumDown {
        sid: from,
        generation,
    });
}

/// An accepted quorum connection: the first packet names the learner.
async fn accept_learner(stream: TcpStream, itx: mpsc::UnboundedSender<Internal>) {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let mut r = Reader::new(read);
    let first = tokio::time::timeout(CONNECT_TIMEOUT, r.next(Sender::Learner)).await;
    let Ok(Ok(Some((packet, _)))) = first else {
        return;
    };
    let ty = packet.packet_type().ok();
    if !matches!(
        ty,
        Some(PacketType::FollowerInfo | PacketType::ObserverInfo)
    ) {
        tracing::warn!(packet = ?ty, "a learner's first packet must be FOLLOWERINFO or OBSERVERINFO");
        return;
    }
    let Some(sid) = wire::learner_sid(&packet) else {
        return;
    };
    let Ok(message) = wire::decode(&packet, Sender::Learner, None) else {
        return;
    };
    let _ = itx.send(Internal::LearnerUp {
        sid,
        message,
        writer: write,
        reader: r,
    });
}
