//! The session task driven through in-memory streams with paused time: timers, reconnects,
//! priming order and expiry, without sockets or a server.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use zk_proto::records::{ConnectRequest, ConnectResponse, ReplyHeader, WatcherEvent, xid};
use zk_proto::{Chroot, Decode, Encode, EventType, KeeperState, Request, Response, frame};

use crate::hosts::HostSpec;
use crate::session::Config;
use crate::transport::{Connector, Endpoint, Stream};
use crate::{Client, Error, LostReason, SessionState};

struct Harness {
    servers: mpsc::UnboundedReceiver<(SocketAddr, DuplexStream)>,
    refuse: Arc<AtomicBool>,
    /// Every connection attempt: when, and to which address.
    attempts: Arc<Mutex<Vec<(Instant, SocketAddr)>>>,
}

fn config(connector: Connector, timeout: Duration) -> Arc<Config> {
    config_with(connector, timeout, &["127.0.0.1"], false)
}

fn config_with(
    connector: Connector,
    timeout: Duration,
    hosts: &[&str],
    read_only: bool,
) -> Arc<Config> {
    Arc::new(Config {
        coalesce: None,
        reconnect_delay: Duration::ZERO,
        max_queued: 100_000,
        hosts: hosts
            .iter()
            .map(|host| HostSpec {
                host: (*host).into(),
                port: 2181,
            })
            .collect(),
        chroot: Chroot::none(),
        session_timeout: timeout,
        attempt_timeout: Some(Duration::from_millis(500)),
        request_timeout: Duration::from_secs(1),
        read_only,
        fail_fast: false,
        max_frame_out: 1 << 20,
        max_frame_in: 1 << 21,
        reconnect_backoff: (Duration::from_millis(100), Duration::from_millis(100)),
        seed: Some(1),
        auths: Vec::new(),
        sasl: None,
        connector,
    })
}

fn harness() -> (Connector, Harness) {
    let (tx, servers) = mpsc::unbounded_channel();
    let refuse = Arc::new(AtomicBool::new(false));
    let refused = refuse.clone();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let log = attempts.clone();
    let connector: Connector = Arc::new(move |endpoint: Endpoint| {
        let addr = endpoint.addr;
        let tx = tx.clone();
        if let Ok(mut log) = log.lock() {
            log.push((Instant::now(), addr));
        }
        let refused = refused.load(Ordering::SeqCst);
        Box::pin(async move {
            if refused {
                return Err(io::Error::from(io::ErrorKind::ConnectionRefused));
            }
            let (client, server) = tokio::io::duplex(1 << 16);
            tx.send((addr, server))
                .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
            Ok(Box::new(client) as Stream)
        })
    });
    (
        connector,
        Harness {
            servers,
            refuse,
            attempts,
        },
    )
}

async fn read_frame(stream: &mut DuplexStream) -> Bytes {
    let len = stream.read_i32().await.unwrap();
    let mut buf = BytesMut::zeroed(usize::try_from(len).unwrap());
    stream.read_exact(&mut buf).await.unwrap();
    buf.freeze()
}

async fn write_payload(stream: &mut DuplexStream, payload: &impl Encode) {
    let mut buf = BytesMut::new();
    frame::encode_frame(&mut buf, 1 << 21, payload).unwrap();
    stream.write_all(&buf).await.unwrap();
}

/// Accepts the next connection and answers its handshake.
async fn accept(
    harness: &mut Harness,
    session_id: i64,
    timeout_ms: i32,
) -> (DuplexStream, ConnectRequest) {
    let (stream, request, _) = accept_at(harness, session_id, timeout_ms, false).await;
    (stream, request)
}

/// [`accept`] with the server's read-only flag; also returns the address dialled.
async fn accept_at(
    harness: &mut Harness,
    session_id: i64,
    timeout_ms: i32,
    read_only: bool,
) -> (DuplexStream, ConnectRequest, SocketAddr) {
    let (addr, mut stream) = harness.servers.recv().await.unwrap();
    let request = ConnectRequest::decode_exact(read_frame(&mut stream).await).unwrap();
    let response = ConnectResponse {
        protocol_version: 0,
        time_out: timeout_ms,
        session_id: if timeout_ms > 0 { session_id } else { 0 },
        passwd: Bytes::from_static(&[7; 16]),
        read_only: Some(read_only),
    };
    write_payload(&mut stream, &response).await;
    (stream, request, addr)
}

/// Reads one request frame: (xid, request).
async fn read_request(stream: &mut DuplexStream) -> (i32, Request) {
    let (header, request) = zk_proto::decode_request_frame(read_frame(stream).await).unwrap();
    (header.xid, request)
}

async fn reply(stream: &mut DuplexStream, xid: i32, zxid: i64, err: i32, body: &Response) {
    write_payload(stream, &(&ReplyHeader { xid, zxid, err }, body)).await;
}

async fn start(connector: Connector, timeout: Duration) -> Client {
    Client::start(config(connector, timeout), Duration::from_secs(30))
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn pings_then_read_timeout_then_reattach_with_last_zxid() {
    let (connector, mut h) = harness();
    let client_task = tokio::spawn(start(connector, Duration::from_secs(3)));
    let (mut conn, request) = accept(&mut h, 0x42, 3000).await;
    assert_eq!((request.session_id, request.last_zxid_seen), (0, 0));
    let client = client_task.await.unwrap();
    assert_eq!(client.session_id(), 0x42);
    assert_eq!(client.state(), SessionState::Connected);
    let mut changes = client.state_changes();

    // A reply carries zxid 77; a notification's zxid must not count.
    let exists = client.exists("/x");
    let (xid, request) = read_request(&mut conn).await;
    assert!(matches!(request, Request::Exists(_)));
    reply(&mut conn, xid, 77, -101, &Response::Empty).await;
    assert_eq!(exists.await, Ok(None));
    let event = Response::Notification(WatcherEvent::new(EventType::NodeCreated, "/y"));
    reply(&mut conn, xid::NOTIFICATION, 1000, 0, &event).await;

    // Idle: a ping after a third of the timeout.
    let idle_since = Instant::now();
    let (ping_xid, ping) = read_request(&mut conn).await;
    assert_eq!((ping_xid, ping), (xid::PING, Request::Ping));
    let waited = idle_since.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited <= Duration::from_millis(1100),
        "{waited:?}"
    );
    reply(&mut conn, xid::PING, 78, 0, &Response::Empty).await;

    // Silence: after two thirds of the timeout the connection is declared lost.
    assert_eq!(changes.next().await, Some(SessionState::Suspended));
    let (_conn2, request) = accept(&mut h, 0x42, 3000).await;
    assert_eq!(request.session_id, 0x42);
    assert_eq!(&request.passwd[..], &[7; 16]);
    assert_eq!(
        request.last_zxid_seen, 77,
        "pings and notifications do not count"
    );
    assert_eq!(changes.next().await, Some(SessionState::Reconnected));
    drop(conn);
}

#[tokio::test(start_paused = true)]
async fn reconnect_primes_auth_then_set_watches_then_queued_requests() {
    let (connector, mut h) = harness();
    let client_task = tokio::spawn(start(connector, Duration::from_secs(30)));
    let (mut conn, _) = accept(&mut h, 0x42, 30_000).await;
    let client = client_task.await.unwrap();
    let mut changes = client.state_changes();

    let auth = client.add_auth("digest", b"u:p");
    let (auth_xid, _) = read_request(&mut conn).await;
    assert_eq!(auth_xid, xid::AUTH);
    reply(&mut conn, xid::AUTH, 0, 0, &Response::Empty).await;
    auth.await.unwrap();

    let watch = client.get_data_watch("/w");
    let (xid, _) = read_request(&mut conn).await;
    let body = Response::GetData(Default::default());
    reply(&mut conn, xid, 500, 0, &body).await;
    let (_, _, watcher) = watch.await.unwrap();

    // The server goes away; a request made meanwhile waits.
    drop(conn);
    assert_eq!(changes.next().await, Some(SessionState::Suspended));
    let queued = client.exists("/q");

    let (mut conn, request) = accept(&mut h, 0x42, 30_000).await;
    assert_eq!(request.last_zxid_seen, 500);
    let (first, _) = read_request(&mut conn).await;
    assert_eq!(first, xid::AUTH);
    let (sw_xid, set_watches) = read_request(&mut conn).await;
    match set_watches {
        Request::SetWatches(sw) => {
            assert_eq!(sw.relative_zxid, 500);
            assert_eq!(sw.data_watches, ["/w"]);
        }
        other => panic!("expected setWatches, got {other:?}"),
    }
    let (q_xid, q) = read_request(&mut conn).await;
    assert!(matches!(q, Request::Exists(_)));
    assert!(q_xid > sw_xid);
    reply(&mut conn, xid::AUTH, 0, 0, &Response::Empty).await;
    // SetWatches fires the watch for a change made while away, before its own reply.
    let event = Response::Notification(WatcherEvent::new(EventType::NodeDataChanged, "/w"));
    reply(&mut conn, xid::NOTIFICATION, -1, 0, &event).await;
    reply(&mut conn, sw_xid, 501, 0, &Response::Empty).await;
    reply(&mut conn, q_xid, 501, -101, &Response::Empty).await;
    assert_eq!(queued.await, Ok(None));
    let event = watcher.await;
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(changes.next().await, Some(SessionState::Reconnected));
}

#[tokio::test(start_paused = true)]
async fn unreachable_servers_expire_the_session_locally() {
    let (connector, mut h) = harness();
    let client_task = tokio::spawn(start(connector, Duration::from_secs(4)));
    let (conn, _) = accept(&mut h, 0x42, 4000).await;
    let client = client_task.await.unwrap();
    let mut changes = client.state_changes();

    h.refuse.store(true, Ordering::SeqCst);
    drop(conn);
    assert_eq!(changes.next().await, Some(SessionState::Suspended));
    let lost_at = Instant::now();
    // A request waits at most the request timeout (1 s here), and is never sent.
    assert_eq!(client.get_data("/a").await, Err(Error::Timeout));
    assert_eq!(
        changes.next().await,
        Some(SessionState::Lost(LostReason::Expired))
    );
    let waited = lost_at.elapsed();
    assert!(waited >= Duration::from_secs(4), "{waited:?}");
    assert_eq!(changes.next().await, None);
    assert_eq!(client.get_data("/a").await, Err(Error::SessionExpired));
}

#[tokio::test(start_paused = true)]
async fn server_reported_expiry_is_terminal_and_tells_watchers() {
    let (connector, mut h) = harness();
    let client_task = tokio::spawn(start(connector, Duration::from_secs(30)));
    let (mut conn, _) = accept(&mut h, 0x42, 30_000).await;
    let client = client_task.await.unwrap();
    let watch = client.exists_watch("/w");
    let (xid, _) = read_request(&mut conn).await;
    reply(&mut conn, xid, 5, -101, &Response::Empty).await;
    let (_, watcher) = watch.await.unwrap();
    let mut persistent = {
        let add = client.add_watch("/p", zk_proto::AddWatchMode::PersistentRecursive);
        let (xid, _) = read_request(&mut conn).await;
        let body = Response::AddWatch(zk_proto::records::ErrorResponse { err: 0 });
        reply(&mut conn, xid, 6, 0, &body).await;
        add.await.unwrap()
    };
    let pending = client.get_data("/slow");
    let _ = read_request(&mut conn).await;
    drop(conn);
    assert_eq!(
        pending.await,
        Err(Error::ConnectionLoss {
            outcome_unknown: false
        })
    );
    let (_conn, _) = accept(&mut h, 0x42, 0).await;
    let mut state = client.state_watch();
    let state = *state.wait_for(|s| s.is_terminal()).await.unwrap();
    assert_eq!(state, SessionState::Lost(LostReason::Expired));
    let event = watcher.await;
    assert_eq!(event.state, KeeperState::Expired);
    let event = persistent.next().await.unwrap();
    assert_eq!(
        (event.state, event.path.as_str()),
        (KeeperState::Expired, "/p")
    );
    assert_eq!(persistent.next().await, None);
    assert_eq!(client.exists("/").await, Err(Error::SessionExpired));
}

#[tokio::test(start_paused = true)]
async fn close_sends_close_session_after_earlier_requests() {
    let (connector, mut h) = harness();
    let client_task = tokio::spawn(start(connector, Duration::from_secs(30)));
    let (mut conn, _) = accept(&mut h, 0x42, 30_000).await;
    let client = client_task.await.unwrap();
    let earlier = client.sync("/");
    let closing = tokio::spawn({
        let client = client.clone();
        async move { client.close().await }
    });
    let (sync_xid, sync) = read_request(&mut conn).await;
    assert!(matches!(sync, Request::Sync(_)));
    let (close_xid, close) = read_request(&mut conn).await;
    assert_eq!(close, Request::CloseSession);
    assert_eq!(close_xid, sync_xid + 1);
    let body = Response::Sync(zk_proto::records::SyncResponse { path: "/".into() });
    reply(&mut conn, sync_xid, 9, 0, &body).await;
    reply(&mut conn, close_xid, 10, 0, &Response::Empty).await;
    earlier.await.unwrap();
    closing.await.unwrap();
    assert_eq!(client.state(), SessionState::Lost(LostReason::Closed));
    assert_eq!(client.sync("/").await, Err(Error::Closed));
    // Closing again is a no-op.
    client.close().await;
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_closes_without_panicking() {
    let (connector, mut h) = harness();
    let client_task = tokio::spawn(start(connector, Duration::from_secs(30)));
    let (mut conn, _) = accept(&mut h, 0x42, 30_000).await;
    let client = client_task.await.unwrap();
    let state = client.state_watch();
    drop(client);
    let (_, close) = read_request(&mut conn).await;
    assert_eq!(close, Request::CloseSession);
    // No reply: the close is bounded by two thirds of the session timeout.
    let mut state = state;
    let state = *state.wait_for(|s| s.is_terminal()).await.unwrap();
    assert_eq!(state, SessionState::Lost(LostReason::Closed));
}

#[tokio::test(start_paused = true)]
async fn read_only_session_moves_to_a_read_write_server() {
    let (connector, mut h) = harness();
    let config = config_with(
        connector,
        Duration::from_secs(30),
        &["127.0.0.1", "127.0.0.2"],
        true,
    );
    let client_task = tokio::spawn(Client::start(config, Duration::from_secs(30)));
    let (ro_conn, request, ro_addr) = accept_at(&mut h, 0x42, 30_000, true).await;
    assert_eq!(request.read_only, Some(true));
    let client = client_task.await.unwrap().unwrap();
    assert_eq!(client.state(), SessionState::ReadOnly);
    let mut changes = client.state_changes();

    // The client asks the other server whether it is read-write.
    let (probe_addr, mut probe) = h.servers.recv().await.unwrap();
    assert_ne!(probe_addr, ro_addr);
    let mut word = [0u8; 4];
    probe.read_exact(&mut word).await.unwrap();
    assert_eq!(&word, b"isro");
    probe.write_all(b"rw").await.unwrap();
    drop(probe);

    assert_eq!(changes.next().await, Some(SessionState::Suspended));
    let (_rw_conn, request, rw_addr) = accept_at(&mut h, 0x42, 30_000, false).await;
    assert_eq!(rw_addr, probe_addr);
    assert_eq!(request.session_id, 0x42);
    assert_eq!(changes.next().await, Some(SessionState::Reconnected));
    drop(ro_conn);
}

#[tokio::test(start_paused = true)]
async fn back_off_only_between_full_rounds_and_fail_fast() {
    let hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
    let (connector, h) = harness();
    h.refuse.store(true, Ordering::SeqCst);
    let mut config = Arc::unwrap_or_clone(config_with(
        connector.clone(),
        Duration::from_secs(30),
        &hosts,
        false,
    ));
    config.fail_fast = true;
    let err = Client::start(Arc::new(config), Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::ConnectionLoss {
            outcome_unknown: false
        }
    );
    let attempts = h.attempts.lock().unwrap().clone();
    assert_eq!(
        attempts.len(),
        3,
        "one round, every host once: {attempts:?}"
    );
    let mut addrs: Vec<SocketAddr> = attempts.iter().map(|(_, a)| *a).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 3);

    // Without fail-fast: each round tries every host at once, then backs off (100 ms here).
    let (connector, h) = harness();
    h.refuse.store(true, Ordering::SeqCst);
    let config = config_with(connector, Duration::from_secs(30), &hosts, false);
    let result = Client::start(config, Duration::from_millis(350)).await;
    assert_eq!(result.unwrap_err(), Error::Timeout);
    let attempts = h.attempts.lock().unwrap().clone();
    let start = attempts[0].0;
    let rounds: Vec<Vec<Duration>> = attempts
        .chunks(3)
        .map(|round| round.iter().map(|(t, _)| *t - start).collect())
        .collect();
    assert!(rounds.len() >= 3, "{rounds:?}");
    for (i, round) in rounds.iter().enumerate() {
        if round.len() < 3 {
            continue;
        }
        assert!(round.iter().all(|t| *t == round[0]), "round {i}: {round:?}");
        if i > 0 {
            assert!(round[0] >= rounds[i - 1][0] + Duration::from_millis(100));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_server_that_drops_every_session_at_once_is_backed_off() {
    let (connector, mut h) = harness();
    let attempts = h.attempts.clone();
    let client_task = tokio::spawn(start(connector, Duration::from_secs(30)));
    // Every connection: handshake, then hang up.
    let server = tokio::spawn(async move {
        loop {
            let (conn, _) = accept(&mut h, 0x42, 30_000).await;
            drop(conn);
        }
    });
    let client = client_task.await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let count = attempts.lock().unwrap().len();
    server.abort();
    // Back-off is 100 ms in these tests: about 20 attempts in 2 s, not a spin.
    assert!((2..=40).contains(&count), "{count} attempts");
    assert!(!client.state().is_terminal());
}

#[tokio::test(start_paused = true)]
async fn an_idle_session_keeps_pinging() {
    let (connector, mut h) = harness();
    let client_task = tokio::spawn(start(connector, Duration::from_secs(3)));
    let (mut conn, _) = accept(&mut h, 0x42, 3000).await;
    let client = client_task.await.unwrap();
    let begin = Instant::now();
    let mut pings = 0;
    while begin.elapsed() < Duration::from_secs(10) {
        let (xid, request) = read_request(&mut conn).await;
        assert_eq!((xid, request), (xid::PING, Request::Ping));
        reply(&mut conn, xid::PING, 1, 0, &Response::Empty).await;
        pings += 1;
    }
    // One ping per second (a third of 3 s), never a disconnection.
    assert!((9..=11).contains(&pings), "{pings} pings");
    assert_eq!(client.state(), SessionState::Connected);
}

#[tokio::test(start_paused = true)]
async fn builder_credentials_go_first_and_later_ones_are_answered() {
    let (connector, mut h) = harness();
    let mut config = Arc::unwrap_or_clone(config(connector, Duration::from_secs(30)));
    config.auths = vec![("digest".into(), Bytes::from_static(b"a:b"))];
    let client_task = tokio::spawn(Client::start(Arc::new(config), Duration::from_secs(30)));
    let (mut conn, _) = accept(&mut h, 0x42, 30_000).await;
    let client = client_task.await.unwrap().unwrap();
    let (xid, first) = read_request(&mut conn).await;
    assert_eq!(xid, xid::AUTH);
    assert!(matches!(first, Request::Auth(ref a) if &a.auth[..] == b"a:b"));
    reply(&mut conn, xid::AUTH, 0, 0, &Response::Empty).await;

    let added = client.add_auth("digest", b"c:d");
    let (xid, second) = read_request(&mut conn).await;
    assert_eq!(xid, xid::AUTH);
    assert!(matches!(second, Request::Auth(ref a) if &a.auth[..] == b"c:d"));
    reply(&mut conn, xid::AUTH, 0, 0, &Response::Empty).await;
    added.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn reconnect_waits_a_random_delay_and_the_queue_is_bounded() {
    let (connector, mut h) = harness();
    let mut config = (*config(connector, Duration::from_secs(30))).clone();
    config.reconnect_delay = Duration::from_secs(1);
    config.max_queued = 2;
    config.request_timeout = Duration::from_secs(10);
    let client_task = tokio::spawn(Client::start(Arc::new(config), Duration::from_secs(30)));
    let (conn, _) = accept(&mut h, 0x42, 30_000).await;
    let client = client_task.await.unwrap().unwrap();
    let mut changes = client.state_changes();

    // (Paused clock.) A connection that lasted over a second is stable: losing it adds no
    // reconnect back-off, so only the random delay is between the loss and the next attempt.
    tokio::time::advance(Duration::from_secs(2)).await;
    drop(conn);
    assert_eq!(changes.next().await, Some(SessionState::Suspended));
    let lost_at = Instant::now();
    // Two requests wait for the connection; a third is refused at once, retryably.
    let first = client.exists("/a");
    let second = client.exists("/b");
    let third = client.exists("/c");
    assert_eq!(
        third.await,
        Err(Error::ConnectionLoss {
            outcome_unknown: false
        })
    );

    let (mut conn, _) = accept(&mut h, 0x42, 30_000).await;
    let waited = lost_at.elapsed();
    // At most the 1 s random delay (plus the timer's rounding to whole milliseconds).
    assert!(waited <= Duration::from_millis(1_010), "{waited:?}");
    for _ in 0..2 {
        let (xid, _) = read_request(&mut conn).await;
        reply(&mut conn, xid, 5, -101, &Response::Empty).await;
    }
    assert_eq!(first.await, Ok(None));
    assert_eq!(second.await, Ok(None));
}

#[tokio::test(start_paused = true)]
async fn a_tls_failure_is_a_failed_attempt_and_fail_fast_names_it() {
    // One host fails its TLS handshake, the others refuse the connection: whatever order the
    // round takes, fail-fast reports the TLS problem (not the vaguer connection loss), and
    // without fail-fast the client keeps trying every host.
    let hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let log = attempts.clone();
    let connector: Connector = Arc::new(move |endpoint: Endpoint| {
        if let Ok(mut log) = log.lock() {
            log.push(endpoint.clone());
        }
        Box::pin(async move {
            if endpoint.host == "127.0.0.2" {
                let failure = crate::transport::TlsFailure("certificate not trusted".into());
                return Err(io::Error::new(io::ErrorKind::InvalidData, failure));
            }
            Err(io::Error::from(io::ErrorKind::ConnectionRefused))
        })
    });
    for _ in 0..5 {
        let mut config = Arc::unwrap_or_clone(config_with(
            connector.clone(),
            Duration::from_secs(30),
            &hosts,
            false,
        ));
        config.fail_fast = true;
        let err = Client::start(Arc::new(config), Duration::from_secs(30))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            Error::Tls("127.0.0.2:2181: certificate not trusted".into())
        );
        assert!(!err.is_retryable());
    }
    attempts.lock().unwrap().clear();
    let config = config_with(connector, Duration::from_secs(30), &hosts, false);
    let result = Client::start(config, Duration::from_millis(350)).await;
    assert_eq!(result.unwrap_err(), Error::Timeout);
    let tried = attempts.lock().unwrap().clone();
    assert!(tried.len() >= 6, "several rounds: {tried:?}");
    assert!(tried.iter().filter(|e| e.host == "127.0.0.2").count() >= 2);
}

const SASL_CHALLENGE: &[u8] =
    b"realm=\"zk-sasl-md5\",nonce=\"n0nce\",charset=utf-8,algorithm=md5-sess";

/// Plays the server's side of a DIGEST-MD5 login for `password` on `conn`: the client's
/// first frames must be the `sasl` exchange. Returns whether the client's digest matched
/// (a match is answered with rspauth, a mismatch with AUTHFAILED).
async fn serve_sasl(conn: &mut DuplexStream, password: &str) -> bool {
    let (first, request) = read_request(conn).await;
    assert!(first > 0, "an ordinary xid, as in Java");
    assert_eq!(
        request,
        Request::Sasl(zk_proto::records::GetSaslRequest {
            token: Some(Bytes::new())
        }),
        "an empty initial token before anything else"
    );
    let challenge = Response::Sasl(zk_proto::records::SetSaslResponse {
        token: Some(Bytes::from_static(SASL_CHALLENGE)),
    });
    reply(conn, first, 0, 0, &challenge).await;
    let (second, request) = read_request(conn).await;
    assert_eq!(second, first + 1);
    let Request::Sasl(zk_proto::records::GetSaslRequest { token: Some(token) }) = request else {
        panic!("expected the digest-response, got {request:?}");
    };
    match crate::sasl::server_verify(&token, password) {
        Some(rspauth) => {
            let done = Response::Sasl(zk_proto::records::SetSaslResponse {
                token: Some(Bytes::from(rspauth)),
            });
            reply(conn, second, 0, 0, &done).await;
            true
        }
        None => {
            reply(conn, second, 0, -115, &Response::Empty).await;
            false
        }
    }
}

fn sasl_config(connector: Connector, password: &str) -> Arc<Config> {
    let mut config = Arc::unwrap_or_clone(config(connector, Duration::from_secs(30)));
    config.auths = vec![("digest".into(), Bytes::from_static(b"u:p"))];
    config.sasl = Some(crate::sasl::DigestCredentials::new(
        "bob".into(),
        password.into(),
    ));
    Arc::new(config)
}

#[tokio::test(start_paused = true)]
async fn sasl_runs_first_on_every_connection_and_holds_other_requests() {
    let (connector, mut h) = harness();
    let client_task = tokio::spawn(Client::start(
        sasl_config(connector, "bobsecret"),
        Duration::from_secs(30),
    ));
    let (mut conn, _) = accept(&mut h, 0x42, 30_000).await;
    assert!(serve_sasl(&mut conn, "bobsecret").await);
    // Then the builder's auth packet.
    let (auth, _) = read_request(&mut conn).await;
    assert_eq!(auth, xid::AUTH);
    reply(&mut conn, xid::AUTH, 0, 0, &Response::Empty).await;
    let client = client_task.await.unwrap().unwrap();
    let mut changes = client.state_changes();

    drop(conn);
    assert_eq!(changes.next().await, Some(SessionState::Suspended));
    let queued = client.exists("/q");
    let (mut conn, _) = accept(&mut h, 0x42, 30_000).await;
    // The queued request is not written before the login completed.
    assert!(serve_sasl(&mut conn, "bobsecret").await);
    let (auth, _) = read_request(&mut conn).await;
    assert_eq!(auth, xid::AUTH);
    let (q_xid, q) = read_request(&mut conn).await;
    assert!(matches!(q, Request::Exists(_)));
    reply(&mut conn, xid::AUTH, 0, 0, &Response::Empty).await;
    reply(&mut conn, q_xid, 9, -101, &Response::Empty).await;
    assert_eq!(queued.await, Ok(None));
    assert_eq!(changes.next().await, Some(SessionState::Reconnected));
}

#[tokio::test(start_paused = true)]
async fn a_refused_sasl_login_fails_connect_with_auth_failed() {
    let (connector, mut h) = harness();
    let client_task = tokio::spawn(Client::start(
        sasl_config(connector, "wrong"),
        Duration::from_secs(30),
    ));
    let (mut conn, _) = accept(&mut h, 0x42, 30_000).await;
    assert!(!serve_sasl(&mut conn, "bobsecret").await);
    let result = client_task.await.unwrap();
    assert!(matches!(result, Err(Error::AuthFailed)), "{result:?}");
}

#[tokio::test(start_paused = true)]
async fn a_server_without_the_password_is_refused_by_its_rspauth() {
    let (connector, mut h) = harness();
    let client_task = tokio::spawn(Client::start(
        sasl_config(connector, "bobsecret"),
        Duration::from_secs(30),
    ));
    let (mut conn, _) = accept(&mut h, 0x42, 30_000).await;
    let (first, _) = read_request(&mut conn).await;
    let challenge = Response::Sasl(zk_proto::records::SetSaslResponse {
        token: Some(Bytes::from_static(SASL_CHALLENGE)),
    });
    reply(&mut conn, first, 0, 0, &challenge).await;
    let (second, _) = read_request(&mut conn).await;
    let forged = Response::Sasl(zk_proto::records::SetSaslResponse {
        token: Some(Bytes::from_static(
            b"rspauth=0123456789abcdef0123456789abcdef",
        )),
    });
    reply(&mut conn, second, 0, 0, &forged).await;
    let result = client_task.await.unwrap();
    assert!(matches!(result, Err(Error::AuthFailed)), "{result:?}");
}
