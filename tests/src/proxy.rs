//! A fault-injecting TCP proxy to put between a client and a server.
//!
//! ```no_run
//! # async fn demo(server: std::net::SocketAddr) -> std::io::Result<()> {
//! use std::time::Duration;
//! use zk_testkit::{Direction, FaultProxy};
//!
//! let proxy = FaultProxy::start(server).await?;
//! // connect the client under test to proxy.addr() instead of the server, then:
//! proxy.stall();                                   // silence, sockets stay open
//! proxy.unstall();                                 // held bytes flow again
//! proxy.set_delay(Duration::from_millis(200));     // every chunk arrives >= 200 ms later
//! proxy.drop_direction(Direction::ServerToClient); // replies vanish
//! proxy.restore();                                 // ... and no longer do
//! proxy.cut_all().await;                           // every connection closed, both sides
//! proxy.refuse_new(true);                          // new connections closed at once
//! # Ok(()) }
//! ```
//!
//! Each accepted connection is one tokio task that connects upstream and pumps both
//! directions; the fault settings live in a `tokio::sync::watch` channel so stalled pumps
//! wake as soon as they change. Per direction, a reader puts chunks (stamped with their
//! forwarding time) in a bounded queue and a writer forwards them in order: stalled or
//! delayed data is held (with TCP back-pressure once the queue is full), never dropped.
//! End of stream is forwarded as a half-close in order with the data.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Bound on connecting to the upstream server; on failure the client is disconnected.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Read buffer size per direction.
const CHUNK: usize = 16 * 1024;

/// Chunks queued per direction before the proxy stops reading (back-pressure).
const QUEUE: usize = 64;

/// A direction of traffic through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client (who connected to the proxy) to the upstream server.
    ClientToServer,
    /// From the upstream server to the client.
    ServerToClient,
}

/// The current faults; one value shared by all connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Faults {
    stalled: bool,
    delay: Duration,
    drop_client_to_server: bool,
    drop_server_to_client: bool,
    refuse_new: bool,
}

impl Faults {
    fn drops(&self, dir: Direction) -> bool {
        match dir {
            Direction::ClientToServer => self.drop_client_to_server,
            Direction::ServerToClient => self.drop_server_to_client,
        }
    }
}

#[derive(Debug)]
struct Shared {
    faults: watch::Sender<Faults>,
    upstream: Mutex<SocketAddr>,
    conns: Mutex<HashMap<u64, JoinHandle<()>>>,
    next_id: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    dropped: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A TCP proxy on `127.0.0.1:<ephemeral>` forwarding to an upstream address, with faults
/// switchable at any time. Dropping it stops the listener and closes every connection.
#[derive(Debug)]
pub struct FaultProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept_task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy listening on `127.0.0.1:0` that forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            faults: watch::Sender::new(Faults::default()),
            upstream: Mutex::new(upstream),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        tracing::debug!(%addr, %upstream, "fault proxy started");
        Ok(Self {
            shared,
            addr,
            accept_task,
        })
    }

    /// The address clients should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The current upstream address.
    pub fn upstream(&self) -> SocketAddr {
        *lock(&self.shared.upstream)
    }

    /// Makes *later* connections go to `upstream`; current ones are untouched.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *lock(&self.shared.upstream) = upstream;
    }

    /// Currently open proxied connections (accepted and not yet closed).
    ///
    /// A client's `connect` completes before the proxy accepts, so poll this with
    /// [`wait_until`](crate::wait_until) rather than asserting it right after connecting.
    pub fn connection_count(&self) -> usize {
        lock(&self.shared.conns).len()
    }

    /// Connections accepted and proxied since start (refused ones not included).
    pub fn total_connections(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections refused since start (see [`refuse_new`](Self::refuse_new)).
    pub fn refused_connections(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Bytes discarded so far by [`drop_direction`](Self::drop_direction), both directions.
    /// Lets a test wait until the proxy has really seen (and dropped) what it sent.
    pub fn dropped_bytes(&self) -> u64 {
        self.shared.dropped.load(Ordering::SeqCst)
    }

    /// Closes every current connection, client and server side, and returns once the
    /// sockets are closed. Later connections are proxied as usual.
    pub async fn cut_all(&self) {
        let handles: Vec<JoinHandle<()>> =
            lock(&self.shared.conns).drain().map(|(_, h)| h).collect();
        tracing::debug!(proxy = %self.addr, n = handles.len(), "cutting all connections");
        for h in &handles {
            h.abort();
        }
        for h in handles {
            // Completes once the task (and so its sockets) is dropped.
            let _ = h.await;
        }
    }

    /// Stops forwarding in both directions; sockets stay open, bytes are held (not dropped)
    /// and flow again on [`unstall`](Self::unstall). New connections are accepted but
    /// stalled too (they connect upstream only when unstalled).
    pub fn stall(&self) {
        self.shared.faults.send_modify(|f| f.stalled = true);
    }

    /// Resumes forwarding after [`stall`](Self::stall); held bytes are delivered in order.
    pub fn unstall(&self) {
        self.shared.faults.send_modify(|f| f.stalled = false);
    }

    /// Whether the proxy is stalled.
    pub fn is_stalled(&self) -> bool {
        self.shared.faults.borrow().stalled
    }

    /// Forwards each chunk read from now on only after `delay` (order preserved, chunks
    /// pipelined: a burst is delayed by about `delay`, not `delay` per chunk).
    /// `Duration::ZERO` turns the delay off.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.faults.send_modify(|f| f.delay = delay);
    }

    /// Silently discards bytes read from now on in `direction` (the connection stays open).
    /// Call once per direction to drop both.
    pub fn drop_direction(&self, direction: Direction) {
        self.shared.faults.send_modify(|f| match direction {
            Direction::ClientToServer => f.drop_client_to_server = true,
            Direction::ServerToClient => f.drop_server_to_client = true,
        });
    }

    /// Stops discarding bytes (undoes [`drop_direction`](Self::drop_direction) for both
    /// directions). Bytes discarded meanwhile are gone for good.
    pub fn restore(&self) {
        self.shared.faults.send_modify(|f| {
            f.drop_client_to_server = false;
            f.drop_server_to_client = false;
        });
    }

    /// When `true`, new connections are accepted and closed at once; current ones are kept.
    pub fn refuse_new(&self, refuse: bool) {
        self.shared.faults.send_modify(|f| f.refuse_new = refuse);
    }

    /// Clears every fault: unstalled, no delay, nothing dropped, new connections accepted.
    pub fn heal(&self) {
        self.shared.faults.send_replace(Faults::default());
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        for (_, h) in lock(&self.shared.conns).drain() {
            h.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // E.g. out of file descriptors: do not spin.
                tracing::warn!(error = %e, "fault proxy accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if shared.faults.borrow().refuse_new {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            tracing::debug!(%peer, "fault proxy refused a connection");
            drop(client);
            continue;
        }
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        // Hold the lock across spawn + insert so the task cannot deregister before it is
        // registered.
        let mut conns = lock(&shared.conns);
        let task = tokio::spawn(connection(Arc::clone(&shared), id, client));
        conns.insert(id, task);
    }
}

async fn connection(shared: Arc<Shared>, id: u64, client: TcpStream) {
    if let Err(e) = proxy_connection(&shared, client).await {
        tracing::debug!(id, error = %e, "proxied connection ended with an error");
    }
    lock(&shared.conns).remove(&id);
}

async fn proxy_connection(shared: &Shared, client: TcpStream) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    let mut faults = shared.faults.subscribe();
    // A connection made while stalled is accepted but stays silent until unstalled.
    if faults.wait_for(|f| !f.stalled).await.is_err() {
        return Ok(());
    }
    let upstream = *lock(&shared.upstream);
    let server = tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(upstream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "upstream connect timed out"))??;
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::try_join!(
        pump(Direction::ClientToServer, client_read, server_write, shared),
        pump(Direction::ServerToClient, server_read, client_write, shared),
    )?;
    Ok(())
}

enum Chunk {
    Data { forward_at: Instant, bytes: Vec<u8> },
    Eof,
}

/// Forwards one direction until end of stream (then half-closes the other side).
async fn pump(
    direction: Direction,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    shared: &Shared,
) -> io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<Chunk>(QUEUE);
    let reader = {
        let faults = shared.faults.subscribe();
        async move {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = from.read(&mut buf).await?;
                let now = Instant::now();
                if n == 0 {
                    let _ = tx.send(Chunk::Eof).await;
                    return Ok::<_, io::Error>(());
                }
                let (drop_it, delay) = {
                    let f = faults.borrow();
                    (f.drops(direction), f.delay)
                };
                if drop_it {
                    shared.dropped.fetch_add(n as u64, Ordering::SeqCst);
                    tracing::trace!(?direction, n, "fault proxy dropped bytes");
                    continue;
                }
                let chunk = Chunk::Data {
                    forward_at: now + delay,
                    bytes: buf[..n].to_vec(),
                };
                if tx.send(chunk).await.is_err() {
                    return Ok(());
                }
            }
        }
    };
    let writer = {
        let mut faults = shared.faults.subscribe();
        async move {
            while let Some(chunk) = rx.recv().await {
                if let Chunk::Data { forward_at, .. } = &chunk {
                    if *forward_at > Instant::now() {
                        tokio::time::sleep_until(*forward_at).await;
                    }
                }
                if faults.wait_for(|f| !f.stalled).await.is_err() {
                    return Ok(());
                }
                match chunk {
                    Chunk::Data { bytes, .. } => to.write_all(&bytes).await?,
                    Chunk::Eof => {
                        // The peer may be gone already; the other direction decides.
                        let _ = to.shutdown().await;
                        return Ok(());
                    }
                }
            }
            Ok::<_, io::Error>(())
        }
    };
    tokio::try_join!(reader, writer)?;
    Ok(())
}
