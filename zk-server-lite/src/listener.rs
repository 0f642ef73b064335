//! The network edge: the tokio TCP accept loop and one task per client connection.
//!
//! * Every connection gets a [`ConnId`]; its task reads frames, decodes them and hands them to
//!   the [`Core`] under a short lock; the core's outputs are encoded and pushed to the
//!   connection queues they are addressed to.
//! * The first 4 bytes of a fresh connection may be a four-letter word (`ruok`, `srvr`, …):
//!   answered as text, then closed.
//! * The first frame must be a `ConnectRequest`; anything else closes the connection. Frames
//!   longer than `jute.maxbuffer` or negative lengths close it too; unknown opcodes get
//!   UNIMPLEMENTED and a close; bodies that do not decode get MARSHALLINGERROR.
//! * Output queues are bounded in bytes: a connection whose queue exceeds the limit (a client
//!   that never reads) is dropped instead of buffered forever.
//! * Caps: total connections, and connections per client IP (`maxClientCnxns`).
//! * The listen backlog (`clientPortListenBacklog`, default [`DEFAULT_LISTEN_BACKLOG`]) is set
//!   explicitly: `tokio::net::TcpListener::bind` uses 128, and a burst of more connects than
//!   that arriving while the accept loop is briefly descheduled overflows the kernel's
//!   accept queue; the dropped SYNs are retransmitted only after the client kernel's 1 s
//!   initial RTO, so those connects take ~1 s.
//! * Group commit (with a file log): outputs produced after a txn was appended are held until
//!   a background thread has fsynced the log past it; one fsync covers every txn appended
//!   before it started. Held outputs are released in order, so no client sees a reply or a
//!   notification (or a read of the new state) before the write behind it is durable.
//!   Every `snap_count` txns the log is synced and rolled and a snapshot of the state at
//!   that zxid is written by another thread.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;
use zk_proto::records::{ConnectRequest, RequestHeader};
use zk_proto::{Decode, DecodeError, Request, frame};

use crate::ConnId;
use crate::core::{Core, Now, Output, Outputs};
use crate::four_letter::{self, ServerInfo};
use crate::storage::Syncer;

/// The default listen backlog: room for this many connections that the kernel has
/// completed but the accept loop has not taken yet (Linux caps it at `net.core.somaxconn`).
pub const DEFAULT_LISTEN_BACKLOG: u32 = 1024;

/// Limits of the network edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request frame (`jute.maxbuffer`).
    pub max_frame_len: usize,
    /// Most connections at once (further ones are closed at accept).
    pub max_connections: usize,
    /// Most connections per client IP (`maxClientCnxns`, 0 = unlimited).
    pub max_client_cnxns: usize,
    /// Most bytes queued for one connection before it is dropped.
    pub max_queued_bytes: usize,
    /// How long a connection may stay without a session (no handshake yet) before it is
    /// closed (Apache's `zookeeper.nio.sessionlessCnxnTimeout`, 10 s).
    pub sessionless_timeout: Duration,
    /// Listen backlog of the client port (`clientPortListenBacklog`): how many connections
    /// may wait for the accept loop. When it is full the kernel drops new SYNs and those
    /// clients retry only after about a second. The kernel caps it at
    /// `net.core.somaxconn`.
    pub listen_backlog: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_len: zk_proto::codec::JUTE_MAX_BUFFER,
            max_connections: 10_000,
            max_client_cnxns: 60,
            max_queued_bytes: 16 << 20,
            sessionless_timeout: Duration::from_secs(10),
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
        }
    }
}

enum Out {
    Frame(Bytes),
    Close,
}

struct ConnHandle {
    tx: mpsc::UnboundedSender<Out>,
    kill: Arc<Notify>,
    killed: Arc<AtomicBool>,
    queued: Arc<AtomicUsize>,
    peer: IpAddr,
}

impl ConnHandle {
    fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.kill.notify_one();
    }
}

/// Everything behind the lock: the core plus the connection queues.
pub(crate) struct State {
    pub(crate) core: Core,
    conns: HashMap<ConnId, ConnHandle>,
    per_ip: HashMap<IpAddr, usize>,
    next_conn: ConnId,
    /// Outputs waiting for the log to be durable up to their position.
    held: VecDeque<(u64, Outputs)>,
    /// Log position known to be durable.
    synced: u64,
}

/// Where and how often snapshots are written.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotPolicy {
    pub(crate) disk: Arc<dyn crate::disk::Disk>,
    pub(crate) snap_dir: PathBuf,
    pub(crate) log_dir: PathBuf,
    pub(crate) every: u64,
}

/// The group-commit machinery of a durable server.
struct Durable {
    syncer: Arc<dyn Syncer>,
    wake: Mutex<bool>,
    cv: Condvar,
    stop: AtomicBool,
    snapshots: Option<SnapshotPolicy>,
    snapshot_busy: Arc<AtomicBool>,
    snapshot_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Durable {
    fn wake(&self) {
        *self.wake.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_one();
    }
}

/// State shared by the accept loop, the connection tasks and the [`Server`](crate::Server)
/// handle.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) limits: Limits,
    pub(crate) info: ServerInfo,
    clock_origin: Instant,
    durable: Option<Durable>,
}

impl Shared {
    pub(crate) fn new(
        limits: Limits,
        info: ServerInfo,
        snapshots: Option<SnapshotPolicy>,
        make_core: impl FnOnce(Now) -> Core,
    ) -> Shared {
        let clock_origin = Instant::now();
        let core = make_core(Now {
            wall_ms: wall_ms(),
            mono_ms: 0,
        });
        let durable = core.log().syncer().map(|syncer| Durable {
            syncer,
            wake: Mutex::new(false),
            cv: Condvar::new(),
            stop: AtomicBool::new(false),
            snapshots,
            snapshot_busy: Arc::new(AtomicBool::new(false)),
            snapshot_thread: Mutex::new(None),
        });
        let synced = core.log().appended();
        Shared {
            state: Mutex::new(State {
                core,
                conns: HashMap::new(),
                per_ip: HashMap::new(),
                next_conn: 1,
                held: VecDeque::new(),
                synced,
            }),
            limits,
            info,
            clock_origin,
            durable,
        }
    }

    /// Whether a sync thread is needed ([`sync_loop`]).
    pub(crate) fn is_durable(&self) -> bool {
        self.durable.is_some()
    }

    /// Sends outputs now, or holds them until the log is durable past the txns before them.
    pub(crate) fn emit(&self, state: &mut State, out: Outputs) {
        let Some(durable) = &self.durable else {
            self.dispatch(state, out);
            return;
        };
        let pos = state.core.log().appended();
        if pos <= state.synced && state.held.is_empty() {
            self.dispatch(state, out);
        } else {
            if !out.is_empty() {
                state.held.push_back((pos, out));
            }
            durable.wake();
        }
        self.maybe_snapshot(state);
    }

    fn release(&self, state: &mut State) {
        while state
            .held
            .front()
            .is_some_and(|(pos, _)| *pos <= state.synced)
        {
            if let Some((_, out)) = state.held.pop_front() {
                self.dispatch(state, out);
            }
        }
    }

    fn maybe_snapshot(&self, state: &mut State) {
        let Some(durable) = &self.durable else { return };
        let Some(policy) = &durable.snapshots else {
            return;
        };
        if state.core.txns_since_snapshot() < policy.every
            || durable.snapshot_busy.load(Ordering::SeqCst)
        {
            return;
        }
        // Everything so far becomes durable, then a new log segment starts at zxid + 1.
        if let Err(e) = state.core.log_mut().sync() {
            tracing::error!(error = %e, "log sync before snapshot failed");
            return;
        }
        state.synced = state.core.log().appended();
        self.release(state);
        if let Err(e) = state.core.log_mut().roll() {
            tracing::error!(error = %e, "log roll failed");
            return;
        }
        let snapshot = state.core.snapshot();
        durable.snapshot_busy.store(true, Ordering::SeqCst);
        let busy = durable.snapshot_busy.clone();
        let policy = policy.clone();
        let spawned = std::thread::Builder::new()
            .name("zk-lite-snapshot".into())
            .spawn(move || {
                let zxid = snapshot.zxid;
                match crate::file_storage::write_snapshot(
                    policy.disk.as_ref(),
                    &policy.snap_dir,
                    &policy.log_dir,
                    &snapshot,
                ) {
                    Ok(()) => tracing::info!(zxid = format_args!("{zxid:#x}"), "snapshot written"),
                    Err(e) => tracing::error!(error = %e, "snapshot failed"),
                }
                busy.store(false, Ordering::SeqCst);
            });
        match spawned {
            Ok(handle) => {
                *durable
                    .snapshot_thread
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(handle);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start the snapshot thread");
                durable.snapshot_busy.store(false, Ordering::SeqCst);
            }
        }
    }

    /// Stops the sync thread (after it has synced what is pending).
    pub(crate) fn stop_sync(&self) {
        if let Some(d) = &self.durable {
            d.stop.store(true, Ordering::SeqCst);
            d.wake();
        }
    }

    /// Waits for a snapshot being written (blocking).
    pub(crate) fn wait_for_snapshot(&self) {
        let handle = self.durable.as_ref().and_then(|d| {
            d.snapshot_thread
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
        });
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// The lock (a poisoned lock is still usable: the core never panics mid-update by
    /// design, and refusing service would be worse).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn now(&self) -> Now {
        let wall_ms = wall_ms();
        let mono_ms = i64::try_from(self.clock_origin.elapsed().as_millis()).unwrap_or(i64::MAX);
        Now { wall_ms, mono_ms }
    }

    /// Encodes outputs and queues them on their connections.
    pub(crate) fn dispatch(&self, state: &mut State, outputs: Outputs) {
        for (conn, output) in outputs {
            let Some(handle) = state.conns.get(&conn) else {
                continue;
            };
            let item = match output {
                Output::Close => Out::Close,
                Output::Handshake(rsp) => match encode(&rsp) {
                    Some(b) => Out::Frame(b),
                    None => Out::Close,
                },
                Output::Reply(header, body) => match encode(&(&header, &body)) {
                    Some(b) => Out::Frame(b),
                    None => Out::Close,
                },
            };
            if let Out::Frame(b) = &item {
                let queued = handle.queued.fetch_add(b.len(), Ordering::SeqCst) + b.len();
                if queued > self.limits.max_queued_bytes {
                    tracing::info!(conn, queued, "output queue full; dropping connection");
                    handle.kill();
                    continue;
                }
                state.core.note_sent(conn);
            }
            if handle.tx.send(item).is_err() {
                handle.kill();
            }
        }
    }

    /// Drops a connection abruptly (no more frames are sent).
    pub(crate) fn kill(&self, conn: ConnId) -> bool {
        let state = self.lock();
        match state.conns.get(&conn) {
            Some(h) => {
                h.kill();
                true
            }
            None => false,
        }
    }

    /// Drops every connection.
    pub(crate) fn kill_all(&self) {
        let state = self.lock();
        for h in state.conns.values() {
            h.kill();
        }
    }
}

/// The group-commit thread: fsyncs the log whenever outputs wait for it, then releases them.
pub(crate) fn sync_loop(shared: Arc<Shared>) {
    let Some(durable) = &shared.durable else {
        return;
    };
    loop {
        {
            let mut pending = durable.wake.lock().unwrap_or_else(|e| e.into_inner());
            while !*pending && !durable.stop.load(Ordering::SeqCst) {
                pending = durable.cv.wait(pending).unwrap_or_else(|e| e.into_inner());
            }
            if !*pending {
                return;
            }
            *pending = false;
        }
        let target = shared.lock().core.log().appended();
        if let Err(e) = durable.syncer.sync_to_disk() {
            tracing::error!(error = %e, "log fsync failed; replies stay held");
            if durable.stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
            durable.wake();
            continue;
        }
        let mut state = shared.lock();
        if target > state.synced {
            state.synced = target;
        }
        shared.release(&mut state);
    }
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn encode<T: zk_proto::Encode + ?Sized>(payload: &T) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    match frame::encode_frame(&mut buf, i32::MAX as usize, payload) {
        Ok(_) => Some(buf.freeze()),
        Err(e) => {
            tracing::warn!(error = %e, "reply too large to encode");
            None
        }
    }
}

/// Binds the client port with an explicit listen `backlog` (and `SO_REUSEADDR`, as
/// `TcpListener::bind` sets it, so a restarted server gets its port back at once).
pub(crate) fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog.max(1))
}

/// Accepts connections until `shutdown` turns true; also drives the core's ticks.
pub(crate) async fn run(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let tick = Duration::from_millis(u64::try_from(shared.info.tick_ms.max(1)).unwrap_or(1000));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = ticker.tick() => {
                let now = shared.now();
                let mut state = shared.lock();
                let out = state.core.tick(now);
                shared.emit(&mut state, out);
            }
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        // E.g. out of file descriptors: back off a little.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let registered = register(&shared, peer);
                if let Some((conn, handle_parts)) = registered {
                    let shared = Arc::clone(&shared);
                    let shutdown = shutdown.clone();
                    let span = tracing::debug_span!("conn", conn, %peer);
                    tasks.spawn(
                        async move {
                            serve(shared.clone(), stream, peer, conn, handle_parts, shutdown).await;
                            unregister(&shared, conn);
                        }
                        .instrument(span),
                    );
                } else {
                    tracing::debug!(%peer, "connection limit reached; closing");
                    drop(stream);
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    shared.kill_all();
    while tasks.join_next().await.is_some() {}
}

struct ConnParts {
    rx: mpsc::UnboundedReceiver<Out>,
    kill: Arc<Notify>,
    killed: Arc<AtomicBool>,
    queued: Arc<AtomicUsize>,
}

fn register(shared: &Shared, peer: SocketAddr) -> Option<(ConnId, ConnParts)> {
    let now = shared.now();
    let mut state = shared.lock();
    if state.conns.len() >= shared.limits.max_connections {
        return None;
    }
    let ip = peer.ip();
    let per_ip = state.per_ip.get(&ip).copied().unwrap_or(0);
    if shared.limits.max_client_cnxns > 0 && per_ip >= shared.limits.max_client_cnxns {
        return None;
    }
    let conn = state.next_conn;
    state.next_conn += 1;
    let (tx, rx) = mpsc::unbounded_channel();
    let kill = Arc::new(Notify::new());
    let killed = Arc::new(AtomicBool::new(false));
    let queued = Arc::new(AtomicUsize::new(0));
    state.conns.insert(
        conn,
        ConnHandle {
            tx,
            kill: kill.clone(),
            killed: killed.clone(),
            queued: queued.clone(),
            peer: ip,
        },
    );
    *state.per_ip.entry(ip).or_insert(0) += 1;
    state.core.open(conn, Some(peer), now);
    Some((
        conn,
        ConnParts {
            rx,
            kill,
            killed,
            queued,
        },
    ))
}

fn unregister(shared: &Shared, conn: ConnId) {
    let mut state = shared.lock();
    if let Some(h) = state.conns.remove(&conn) {
        if let Some(n) = state.per_ip.get_mut(&h.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.per_ip.remove(&h.peer);
            }
        }
    }
    state.core.disconnected(conn);
}

enum Step {
    Continue,
    Stop,
}

/// One connection: reads and handles frames, writes queued output, until closed.
async fn serve(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    peer: SocketAddr,
    conn: ConnId,
    mut parts: ConnParts,
    mut shutdown: watch::Receiver<bool>,
) {
    let (mut rd, mut wr) = stream.split();
    let mut buf = BytesMut::with_capacity(4096);
    let mut handshaken = false;
    let mut fresh = true;
    let mut reading = true;
    let sessionless_deadline = tokio::time::sleep(shared.limits.sessionless_timeout);
    tokio::pin!(sessionless_deadline);
    loop {
        tokio::select! {
            biased;
            _ = parts.kill.notified() => return,
            _ = shutdown.changed() => return,
            () = &mut sessionless_deadline, if !handshaken => {
                tracing::debug!(conn, %peer, "no handshake in time; closing");
                return;
            }
            out = parts.rx.recv() => match out {
                Some(Out::Frame(bytes)) => {
                    let len = bytes.len();
                    tokio::select! {
                        r = wr.write_all(&bytes) => {
                            if r.is_err() {
                                return;
                            }
                        }
                        _ = parts.kill.notified() => return,
                    }
                    parts.queued.fetch_sub(len, Ordering::SeqCst);
                }
                Some(Out::Close) | None => {
                    let _ = wr.flush().await;
                    let _ = wr.shutdown().await;
                    return;
                }
            },
            n = rd.read_buf(&mut buf), if reading => {
                match n {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if fresh && buf.len() >= 4 {
                    fresh = false;
                    if let Some(cmd) = four_letter::command(&buf[..4]) {
                        let captured = {
                            let state = shared.lock();
                            four_letter::capture(cmd, &state.core, &shared.info)
                        };
                        // Built outside the lock, off the async workers: long listings
                        // stall neither requests nor other connections' tasks.
                        let text = tokio::task::spawn_blocking(move || captured.render())
                            .await
                            .unwrap_or_default();
                        let _ = wr.write_all(text.as_bytes()).await;
                        let _ = wr.shutdown().await;
                        return;
                    }
                }
                if fresh {
                    continue;
                }
                match handle_frames(&shared, conn, peer, &mut buf, &mut handshaken) {
                    Step::Continue => {}
                    // Stop reading; the queued replies (and a Close) are still written.
                    Step::Stop => reading = false,
                }
            }
        }
        if parts.killed.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// Handles every whole frame in `buf`.
fn handle_frames(
    shared: &Shared,
    conn: ConnId,
    peer: SocketAddr,
    buf: &mut BytesMut,
    handshaken: &mut bool,
) -> Step {
    loop {
        let payload = match frame::parse(buf, shared.limits.max_frame_len) {
            Ok(Some(p)) => p,
            Ok(None) => return Step::Continue,
            Err(e) => {
                tracing::debug!(conn, %peer, error = %e, "bad frame length; closing");
                close_now(shared, conn);
                return Step::Stop;
            }
        };
        let now = shared.now();
        let mut state = shared.lock();
        let out = if !*handshaken {
            match ConnectRequest::decode_exact(payload) {
                Ok(req) => {
                    *handshaken = true;
                    state.core.connect(conn, &req, now)
                }
                Err(e) => {
                    tracing::debug!(conn, %peer, error = %e, "bad ConnectRequest; closing");
                    vec![(conn, Output::Close)]
                }
            }
        } else {
            decode_and_handle(&mut state.core, conn, payload, now)
        };
        let stop = out
            .iter()
            .any(|(c, o)| *c == conn && matches!(o, Output::Close));
        shared.emit(&mut state, out);
        if stop {
            return Step::Stop;
        }
    }
}

fn close_now(shared: &Shared, conn: ConnId) {
    let mut state = shared.lock();
    shared.emit(&mut state, vec![(conn, Output::Close)]);
}

fn decode_and_handle(core: &mut Core, conn: ConnId, payload: Bytes, now: Now) -> Outputs {
    let mut body = payload;
    let header = match RequestHeader::decode(&mut body) {
        Ok(h) => h,
        Err(_) => return vec![(conn, Output::Close)],
    };
    let Ok(op) = header.op_code() else {
        return core.unimplemented(conn, header.xid);
    };
    match Request::decode_body(op, &mut body) {
        Ok(req) if body.is_empty() => core.request(conn, header, req, now),
        Ok(_) => core.malformed(conn, header.xid, op, now),
        Err(DecodeError::UnsupportedOp { .. }) => core.unimplemented(conn, header.xid),
        Err(_) => core.malformed(conn, header.xid, op, now),
    }
}
