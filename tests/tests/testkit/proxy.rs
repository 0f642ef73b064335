//! The fault proxy, against a local echo server over raw TCP.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use zk_testkit::{Direction, FaultProxy, init_tracing, wait_until};

/// Bound for things that should be near-instant (generous for a loaded machine).
const WAIT: Duration = Duration::from_secs(30);

/// How long "nothing arrives" is observed. Only ever a lower bound on silence: a proxy that
/// holds bytes correctly can never fail this, however slow the machine.
const SILENCE: Duration = Duration::from_millis(300);

/// An echo server that also records everything it received.
struct Echo {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<u8>>>,
    task: JoinHandle<()>,
}

impl Echo {
    /// `tag` is prepended to each echoed chunk so tests can tell servers apart (empty = none).
    async fn start(tag: &'static [u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let rec = Arc::clone(&received);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let rec = Arc::clone(&rec);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                rec.lock().unwrap().extend_from_slice(&buf[..n]);
                                let mut out = tag.to_vec();
                                out.extend_from_slice(&buf[..n]);
                                if s.write_all(&out).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Self {
            addr,
            received,
            task,
        }
    }

    fn received(&self) -> Vec<u8> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads exactly `n` bytes, bounded.
async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(WAIT, s.read_exact(&mut buf))
        .await
        .expect("timed out reading from the proxy")
        .expect("read from the proxy failed");
    buf
}

/// Asserts nothing arrives for [`SILENCE`] (and the connection is not closed).
async fn assert_silent(s: &mut TcpStream) {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(SILENCE, s.read(&mut buf)).await {
        Err(_) => {}
        Ok(Ok(0)) => panic!("connection closed; expected silence"),
        Ok(Ok(n)) => panic!("received {:?}; expected silence", &buf[..n]),
        Ok(Err(e)) => panic!("read error {e}; expected silence"),
    }
}

/// Asserts the peer closed the connection (EOF or reset), bounded.
async fn assert_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 64];
    let r = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .expect("connection not closed in time");
    match r {
        Ok(0) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        other => panic!("expected a closed connection, got {other:?}"),
    }
}

async fn connected(proxy: &FaultProxy, count: usize) -> TcpStream {
    let s = TcpStream::connect(proxy.addr()).await.unwrap();
    wait_until(WAIT, format!("{count} proxied connection(s)"), || async {
        proxy.connection_count() == count
    })
    .await;
    s
}

#[tokio::test]
async fn bytes_pass_through_both_ways() {
    init_tracing();
    let echo = Echo::start(b"").await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let mut s = connected(&proxy, 1).await;
    s.write_all(b"hello").await.unwrap();
    assert_eq!(read_n(&mut s, 5).await, b"hello");
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = s.into_split();
    let writer = {
        let big = big.clone();
        tokio::spawn(async move { w.write_all(&big).await.map(|_| w) })
    };
    let mut back = vec![0u8; big.len()];
    tokio::time::timeout(WAIT, r.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, big);
    let mut w = writer.await.unwrap().unwrap();
    // A half-close travels through as well: the echo server then closes, and so do we.
    w.shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, r.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty());
    wait_until(WAIT, "the proxied connection to end", || async {
        proxy.connection_count() == 0
    })
    .await;
    assert_eq!(proxy.total_connections(), 1);
}

#[tokio::test]
async fn cut_all_closes_client_connections() {
    init_tracing();
    let echo = Echo::start(b"").await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let mut a = connected(&proxy, 1).await;
    let mut b = connected(&proxy, 2).await;
    a.write_all(b"x").await.unwrap();
    assert_eq!(read_n(&mut a, 1).await, b"x");
    proxy.cut_all().await;
    assert_eq!(proxy.connection_count(), 0);
    assert_closed(&mut a).await;
    assert_closed(&mut b).await;
    // New connections work after a cut.
    let mut c = connected(&proxy, 1).await;
    c.write_all(b"y").await.unwrap();
    assert_eq!(read_n(&mut c, 1).await, b"y");
}

#[tokio::test]
async fn stall_holds_bytes_until_unstall() {
    init_tracing();
    let echo = Echo::start(b"").await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let mut s = connected(&proxy, 1).await;
    proxy.stall();
    assert!(proxy.is_stalled());
    s.write_all(b"held").await.unwrap();
    assert_silent(&mut s).await;
    assert!(
        echo.received().is_empty(),
        "bytes leaked upstream while stalled"
    );

    // A connection made while stalled is accepted but silent too.
    let mut late = connected(&proxy, 2).await;
    late.write_all(b"late").await.unwrap();
    assert_silent(&mut late).await;

    proxy.unstall();
    assert_eq!(read_n(&mut s, 4).await, b"held");
    assert_eq!(read_n(&mut late, 4).await, b"late");
}

#[tokio::test]
async fn stall_holds_replies_too() {
    init_tracing();
    let echo = Echo::start(b"").await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let mut s = connected(&proxy, 1).await;
    s.write_all(b"ping").await.unwrap();
    wait_until(WAIT, "the echo server to receive the request", || async {
        echo.received() == b"ping"
    })
    .await;
    // The reply may already be in flight; stalling now holds whatever has not been written.
    proxy.stall();
    s.write_all(b"pong").await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8];
    while let Ok(Ok(n)) = tokio::time::timeout(SILENCE, s.read(&mut buf)).await {
        assert!(n > 0, "connection closed while stalled");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.is_empty() || got == b"ping",
        "only the first reply may have passed before the stall, got {got:?}"
    );
    assert_eq!(echo.received(), b"ping", "stalled request leaked upstream");
    proxy.unstall();
    let rest = read_n(&mut s, 8 - got.len()).await;
    got.extend_from_slice(&rest);
    assert_eq!(got, b"pingpong");
}

#[tokio::test]
async fn drop_direction_discards_bytes() {
    init_tracing();
    let echo = Echo::start(b"").await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let mut s = connected(&proxy, 1).await;

    proxy.drop_direction(Direction::ClientToServer);
    s.write_all(b"lost").await.unwrap();
    wait_until(WAIT, "the proxy to drop 4 bytes", || async {
        proxy.dropped_bytes() == 4
    })
    .await;
    assert_silent(&mut s).await;
    proxy.restore();
    s.write_all(b"kept").await.unwrap();
    assert_eq!(read_n(&mut s, 4).await, b"kept");
    assert_eq!(echo.received(), b"kept");

    proxy.drop_direction(Direction::ServerToClient);
    s.write_all(b"gone").await.unwrap();
    wait_until(WAIT, "the proxy to drop the echoed 4 bytes", || async {
        proxy.dropped_bytes() == 8
    })
    .await;
    assert_eq!(echo.received(), b"keptgone");
    assert_silent(&mut s).await;
    proxy.restore();
    s.write_all(b"back").await.unwrap();
    assert_eq!(read_n(&mut s, 4).await, b"back");
}

#[tokio::test]
async fn refuse_new_closes_new_connections_only() {
    init_tracing();
    let echo = Echo::start(b"").await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let mut old = connected(&proxy, 1).await;
    proxy.refuse_new(true);
    let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_closed(&mut refused).await;
    assert_eq!(proxy.refused_connections(), 1);
    // The existing connection is untouched.
    old.write_all(b"ok").await.unwrap();
    assert_eq!(read_n(&mut old, 2).await, b"ok");
    proxy.refuse_new(false);
    let mut new = connected(&proxy, 2).await;
    new.write_all(b"in").await.unwrap();
    assert_eq!(read_n(&mut new, 2).await, b"in");
    assert_eq!(proxy.total_connections(), 2);
}

#[tokio::test]
async fn delay_delays_each_chunk_and_keeps_order() {
    init_tracing();
    let echo = Echo::start(b"").await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let mut s = connected(&proxy, 1).await;
    let delay = Duration::from_millis(200);
    proxy.set_delay(delay);

    let t0 = Instant::now();
    s.write_all(b"a").await.unwrap();
    assert_eq!(read_n(&mut s, 1).await, b"a");
    // Delayed once on the way in and once on the way back.
    let rtt = t0.elapsed();
    assert!(
        rtt >= 2 * delay,
        "round trip took {rtt:?}, expected >= {:?}",
        2 * delay
    );

    // Order is preserved across several chunks.
    let t0 = Instant::now();
    for chunk in [&b"1"[..], b"22", b"333", b"4444"] {
        s.write_all(chunk).await.unwrap();
    }
    assert_eq!(read_n(&mut s, 10).await, b"1223334444");
    assert!(t0.elapsed() >= 2 * delay);

    proxy.set_delay(Duration::ZERO);
    s.write_all(b"z").await.unwrap();
    assert_eq!(read_n(&mut s, 1).await, b"z");
}

#[tokio::test]
async fn set_upstream_affects_later_connections() {
    init_tracing();
    let one = Echo::start(b"1:").await;
    let two = Echo::start(b"2:").await;
    let proxy = FaultProxy::start(one.addr).await.unwrap();
    let mut a = connected(&proxy, 1).await;
    proxy.set_upstream(two.addr);
    assert_eq!(proxy.upstream(), two.addr);
    let mut b = connected(&proxy, 2).await;
    a.write_all(b"x").await.unwrap();
    b.write_all(b"y").await.unwrap();
    assert_eq!(read_n(&mut a, 3).await, b"1:x");
    assert_eq!(read_n(&mut b, 3).await, b"2:y");
}

#[tokio::test]
async fn heal_and_drop_stop_everything() {
    init_tracing();
    let echo = Echo::start(b"").await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let mut s = connected(&proxy, 1).await;
    proxy.stall();
    proxy.set_delay(Duration::from_secs(3600));
    proxy.drop_direction(Direction::ServerToClient);
    proxy.refuse_new(true);
    proxy.heal();
    s.write_all(b"fine").await.unwrap();
    assert_eq!(read_n(&mut s, 4).await, b"fine");

    let addr = proxy.addr();
    drop(proxy);
    assert_closed(&mut s).await;
    // The listener is gone: connecting is refused (or, at worst, closed at once).
    wait_until(WAIT, "the proxy listener to close", || async {
        match TcpStream::connect(addr).await {
            Err(_) => true,
            Ok(mut c) => {
                let mut buf = [0u8; 1];
                matches!(
                    tokio::time::timeout(SILENCE, c.read(&mut buf)).await,
                    Ok(Ok(0) | Err(_))
                )
            }
        }
    })
    .await;
}
