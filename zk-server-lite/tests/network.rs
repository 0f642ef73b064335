//! The server over real TCP, driven with raw zk-proto frames: handshake, replies and
//! notifications, bad input, fault controls, limits and four-letter words.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::{Raw, four_letter, get_data};
use tokio::io::AsyncWriteExt;
use zk_proto::records::*;
use zk_proto::{CreateMode, Decode, ErrorCode, EventType, OpCode, Request, Response};
use zk_server_lite::Server;
use zk_server_lite::listener::Limits;

#[tokio::test]
async fn handshake_requests_and_notifications_in_order() {
    let server = Server::builder().start().await.unwrap();
    let (mut a, rsp) = Raw::connect(server.addr()).await;
    assert_eq!(rsp.time_out, 6000);
    assert_eq!(rsp.read_only, Some(false));
    let (mut b, _) = Raw::connect(server.addr()).await;
    a.create("/n", CreateMode::Persistent).await.unwrap();
    let Ok(Response::GetData(d)) = b.call(get_data("/n", true)).await else {
        panic!()
    };
    assert_eq!(d.data.as_deref(), Some(&b"v"[..]));
    a.call(Request::SetData(SetDataRequest {
        path: "/n".into(),
        data: None,
        version: 0,
    }))
    .await
    .unwrap();
    // b's next reply comes after the notification, on the same socket.
    b.call(Request::Ping).await.unwrap();
    assert_eq!(
        b.events,
        vec![(EventType::NodeDataChanged, "/n".to_owned())]
    );
    assert_eq!(
        a.create("/n", CreateMode::Persistent).await,
        Err(ErrorCode::NodeExists)
    );
    // closeSession: reply, then EOF.
    let xid = a.send(&Request::CloseSession).await;
    assert!(a.reply(xid).await.unwrap().0.is_ok());
    assert!(a.recv().await.is_none());
    server.stop().await;
}

#[tokio::test]
async fn bad_input_closes_or_errors_never_panics() {
    let server = Server::builder().start().await.unwrap();
    let addr = server.addr();

    // Request before the handshake: closed.
    let mut r = Raw::open(addr).await;
    r.send_payload(&(&RequestHeader::ping(), &Request::Ping))
        .await;
    assert!(r.recv().await.is_none());

    // Oversized and negative frame lengths: closed without a reply.
    for prefix in [0x0010_0000_i32, -5] {
        let mut r = Raw::open(addr).await;
        r.stream.write_all(&prefix.to_be_bytes()).await.unwrap();
        assert!(r.recv().await.is_none());
    }

    // Unknown opcode: UNIMPLEMENTED with the xid echoed, then closed.
    let (mut r, _) = Raw::connect(addr).await;
    r.send_payload(&RequestHeader { xid: 77, op: 10 }).await;
    let p = r.recv().await.unwrap();
    let h = ReplyHeader::decode_exact(p).unwrap();
    assert_eq!((h.xid, h.err), (77, -6));
    assert!(r.recv().await.is_none());

    // check alone: the same.
    let (mut r, _) = Raw::connect(addr).await;
    let xid = r
        .send(&Request::Check(CheckVersionRequest {
            path: "/".into(),
            version: -1,
        }))
        .await;
    let p = r.recv().await.unwrap();
    let h = ReplyHeader::decode_exact(p).unwrap();
    assert_eq!((h.xid, h.err), (xid, -6));
    assert!(r.recv().await.is_none());

    // deleteContainer from a client: Apache 3.8 reads the path from the raw request
    // buffer, fails its validation, and answers BADARGUMENTS with an error txn (a new
    // zxid); the node stays and the connection stays open.
    let (mut r, _) = Raw::connect(addr).await;
    r.create("/c", CreateMode::Persistent).await.unwrap();
    let before = server.with_core(|c| c.last_zxid());
    let xid = r
        .send(&Request::DeleteContainer(DeleteContainerRequest {
            path: "/c".into(),
        }))
        .await;
    let (h, _) = r.reply(xid).await.unwrap();
    assert_eq!((h.xid, h.err), (xid, -8));
    assert_eq!(h.zxid, before + 1);
    assert!(server.with_core(|c| c.tree().stat("/c").is_some()));
    assert!(r.call(Request::Ping).await.is_ok());

    // A body that does not decode: MARSHALLINGERROR, connection stays usable.
    let (mut r, _) = Raw::connect(addr).await;
    r.send_payload(&(RequestHeader::new(5, OpCode::GetData), 3_i32))
        .await;
    let p = r.recv().await.unwrap();
    let h = ReplyHeader::decode_exact(p).unwrap();
    assert_eq!((h.xid, h.err), (5, -5));
    assert!(r.call(Request::Ping).await.is_ok());
    // Invalid paths: BADARGUMENTS.
    assert_eq!(
        r.call(get_data("no/slash", false)).await,
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        r.create("/a//b", CreateMode::Persistent).await,
        Err(ErrorCode::BadArguments)
    );

    // Garbage instead of a ConnectRequest: closed.
    let mut r = Raw::open(addr).await;
    r.send_payload(&Bytes::from_static(b"\x01\x02\x03")).await;
    assert!(r.recv().await.is_none());

    // The server still works.
    assert_eq!(four_letter(addr, "ruok").await, "imok");
    server.stop().await;
}

#[tokio::test]
async fn expire_drop_and_reattach() {
    let server = Server::builder().tick_time(100).start().await.unwrap();
    let addr = server.addr();
    let (mut a, rsp) = Raw::connect(addr).await;
    let (mut w, _) = Raw::connect(addr).await;
    a.create("/eph", CreateMode::Ephemeral).await.unwrap();
    w.call(Request::Exists(ExistsRequest {
        path: "/eph".into(),
        watch: true,
    }))
    .await
    .unwrap();

    // Dropped connection: the session lives on; re-attach with id + password.
    assert!(server.drop_connection(rsp.session_id));
    assert!(a.recv().await.is_none());
    let mut again = ConnectRequest::new_session(6000, 0, false);
    again.session_id = rsp.session_id;
    again.passwd = rsp.passwd.clone();
    let mut a2 = Raw::open(addr).await;
    let r2 = a2.handshake(again.clone()).await.unwrap();
    assert_eq!(r2.session_id, rsp.session_id);
    assert!(a2.call(get_data("/eph", false)).await.is_ok());

    // Wrong password: expired answer, then closed.
    let mut bad = again.clone();
    bad.passwd = Bytes::from_static(&[7; 16]);
    let mut a3 = Raw::open(addr).await;
    let r3 = a3.handshake(bad).await.unwrap();
    assert!(r3.is_expired());
    assert_eq!(r3.session_id, 0);
    assert!(a3.recv().await.is_none());

    // Expiry: ephemerals go (watchers hear it), the connection closes, re-attach fails.
    assert!(server.expire_session(rsp.session_id));
    assert!(!server.expire_session(rsp.session_id));
    assert!(a2.recv().await.is_none());
    w.call(Request::Ping).await.unwrap();
    assert_eq!(w.events, vec![(EventType::NodeDeleted, "/eph".to_owned())]);
    let mut a4 = Raw::open(addr).await;
    assert!(a4.handshake(again).await.unwrap().is_expired());
    server.stop().await;
}

#[tokio::test]
async fn idle_sessions_expire_on_their_own() {
    // Ticks of 50 ms, timeout clamped to 2 ticks: the session is gone soon after the client
    // goes quiet. We wait on the state (EOF), not on a clock.
    let server = Server::builder().tick_time(50).start().await.unwrap();
    let mut raw = Raw::open(server.addr()).await;
    let rsp = raw
        .handshake(ConnectRequest::new_session(1, 0, false))
        .await
        .unwrap();
    assert_eq!(rsp.time_out, 100);
    assert!(raw.recv().await.is_none());
    assert!(server.sessions().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped() {
    let limits = Limits {
        max_queued_bytes: 256 << 10,
        ..Limits::default()
    };
    let server = Server::builder().limits(limits).start().await.unwrap();
    let (mut writer, _) = Raw::connect(server.addr()).await;
    let (mut lazy, _) = Raw::connect(server.addr()).await;
    // Long paths make large notifications.
    let path = format!("/{}", "x".repeat(100_000));
    writer.create(&path, CreateMode::Persistent).await.unwrap();
    lazy.call(Request::AddWatch(AddWatchRequest {
        path: path.clone(),
        mode: 0,
    }))
    .await
    .unwrap();
    // 40 MB of notifications: more than any socket buffers plus the queue bound.
    let sent = 400;
    for _ in 0..sent {
        writer
            .call(Request::SetData(SetDataRequest {
                path: path.clone(),
                data: None,
                version: -1,
            }))
            .await
            .unwrap();
    }
    // The lazy client finds its connection closed after what the buffers held.
    let got = lazy.drain().await;
    assert!(got < sent, "got {got} of {sent}");
    // The writer is unaffected.
    assert!(writer.call(Request::Ping).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn connection_caps() {
    let limits = Limits {
        max_client_cnxns: 2,
        ..Limits::default()
    };
    let server = Server::builder().limits(limits).start().await.unwrap();
    let (_a, _) = Raw::connect(server.addr()).await;
    let (_b, _) = Raw::connect(server.addr()).await;
    let mut c = Raw::open(server.addr()).await;
    c.send_payload(&ConnectRequest::new_session(6000, 0, false))
        .await;
    assert!(c.recv().await.is_none());
    server.stop().await;
}

#[tokio::test]
async fn four_letter_words_over_tcp() {
    let server = Server::builder()
        .four_letter_words(zk_server_lite::four_letter::Whitelist::parse(
            "ruok,srvr,isro",
        ))
        .start()
        .await
        .unwrap();
    let addr = server.addr();
    assert_eq!(four_letter(addr, "ruok").await, "imok");
    assert_eq!(four_letter(addr, "isro").await, "rw");
    let srvr = four_letter(addr, "srvr").await;
    assert!(srvr.starts_with("Zookeeper version: "), "{srvr}");
    assert!(srvr.contains("Mode: standalone"));
    assert_eq!(
        four_letter(addr, "mntr").await,
        "mntr is not executed because it is not in the whitelist.\n"
    );
    server.stop().await;
}

#[tokio::test]
async fn hundreds_of_connections_and_the_total_cap() {
    let limits = Limits {
        max_client_cnxns: 0,
        max_connections: 300,
        ..Limits::default()
    };
    let server = Server::builder().limits(limits).start().await.unwrap();
    let addr = server.addr();
    let mut clients = Vec::new();
    for i in 0..300 {
        let (mut c, _) = Raw::connect(addr).await;
        c.create(&format!("/c{i}"), CreateMode::Ephemeral)
            .await
            .unwrap();
        clients.push(c);
    }
    // Over the cap: accepted, then closed at once.
    let mut extra = Raw::open(addr).await;
    extra
        .send_payload(&ConnectRequest::new_session(6000, 0, false))
        .await;
    assert!(extra.recv().await.is_none());
    let Ok(Response::GetAllChildrenNumber(n)) = clients[0]
        .call(Request::GetAllChildrenNumber(GetAllChildrenNumberRequest {
            path: "/".into(),
        }))
        .await
    else {
        panic!()
    };
    assert_eq!(n.total_number, 303);
    // Closing sessions removes their ephemerals; a closed slot can be reused.
    for c in clients.iter_mut().take(10) {
        let xid = c.send(&Request::CloseSession).await;
        c.reply(xid).await.unwrap();
        assert!(c.recv().await.is_none());
    }
    // Wait (on state) until the server has dropped them.
    let deadline = std::time::Instant::now() + common::WAIT;
    while server.with_core(|c| c.connection_count()) > 290 {
        assert!(
            std::time::Instant::now() < deadline,
            "connections not released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let (mut late, _) = Raw::connect(addr).await;
    assert!(late.call(Request::Ping).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn random_bytes_never_panic_the_server() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    let server = Server::builder().start().await.unwrap();
    let addr = server.addr();
    // A fixed-seed xorshift: the same inputs on every run.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let opcodes = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 100, 101, 102,
        103, 104, 105, 106, 107, -11, 0, 99,
    ];
    for round in 0..300i32 {
        let len = (next() % 64) as usize;
        let body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 3 == 0 {
            // Garbage instead of a handshake.
            let mut r = Raw::open(addr).await;
            r.send_payload(&Bytes::from(body)).await;
            let _ = r.drain().await;
        } else {
            // A valid handshake, then a header with some opcode and a random body.
            let (mut r, _) = Raw::connect(addr).await;
            let op: i32 = opcodes[(next() % opcodes.len() as u64) as usize];
            let mut payload = Vec::new();
            payload.extend_from_slice(&round.to_be_bytes());
            payload.extend_from_slice(&op.to_be_bytes());
            payload.extend_from_slice(&body);
            r.send_payload(&Bytes::from(payload)).await;
            // Whatever happens, a ping afterwards gets an answer or the connection closed.
            let xid = r.send(&Request::Ping).await;
            while let Some(p) = r.recv().await {
                let h = ReplyHeader::decode(&mut &p[..]).unwrap();
                if h.xid == xid {
                    break;
                }
            }
        }
    }
    assert_eq!(four_letter(addr, "ruok").await, "imok");
    let (mut c, _) = Raw::connect(addr).await;
    assert!(c.call(Request::Ping).await.is_ok());
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "the server panicked");
    server.stop().await;
}

#[tokio::test]
async fn connections_without_a_handshake_are_closed() {
    let limits = Limits {
        sessionless_timeout: std::time::Duration::from_millis(200),
        ..Limits::default()
    };
    let server = Server::builder().limits(limits).start().await.unwrap();
    let (mut c, _) = Raw::connect(server.addr()).await;
    let mut idle = Raw::open(server.addr()).await;
    // Nothing sent: the server gives up on us.
    assert!(idle.recv().await.is_none());
    // The handshaken connection, older than the timeout, is not affected.
    assert!(c.call(Request::Ping).await.is_ok());
    server.stop().await;
}

/// Opens `n` connections with blocking connects, each given `limit` to complete. On this
/// current-thread runtime the server's accept loop cannot run meanwhile, so every connection
/// waits in the kernel's accept queue: the connects that complete are those the listen
/// backlog has room for (a full queue drops the SYN). Stops at the first one that does not
/// complete.
#[cfg(target_os = "linux")]
fn blocking_connects(
    addr: std::net::SocketAddr,
    n: usize,
    limit: std::time::Duration,
) -> Vec<std::net::TcpStream> {
    let mut streams = Vec::new();
    for _ in 0..n {
        match std::net::TcpStream::connect_timeout(&addr, limit) {
            Ok(stream) => streams.push(stream),
            Err(_) => break,
        }
    }
    streams
}

#[cfg(target_os = "linux")]
fn somaxconn() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// A burst of connects larger than tokio's default backlog (128) while the accept loop is
/// not running: with the default backlog (1024) none is dropped, and all are served once the
/// loop runs. (With 128, connects past the 129th had their SYN dropped and took the client
/// kernel's 1 s retransmit: the ~1 s p99 of 200 concurrent connects.)
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "current_thread")]
async fn a_burst_of_connects_fits_in_the_listen_backlog() {
    let burst = 300;
    if somaxconn() < 300 {
        eprintln!("net.core.somaxconn < 300 caps every backlog; skipping");
        return;
    }
    let limits = Limits {
        max_client_cnxns: 0,
        ..Limits::default()
    };
    let server = Server::builder().limits(limits).start().await.unwrap();
    let mut streams = blocking_connects(server.addr(), burst, common::WAIT);
    assert_eq!(
        streams.len(),
        burst,
        "connects dropped by a full accept queue"
    );
    // The accept loop runs from here on: the last connection queued is served.
    let last = streams.pop().unwrap();
    last.set_nonblocking(true).unwrap();
    let mut raw = Raw::from_stream(tokio::net::TcpStream::from_std(last).unwrap());
    let rsp = raw
        .handshake(ConnectRequest::new_session(6000, 0, false))
        .await
        .expect("handshake");
    assert!(rsp.time_out > 0);
    server.stop().await;
}

/// `clientPortListenBacklog` from a zoo.cfg reaches the listener: with a backlog of 8, a
/// burst stops fitting after about that many connections.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "current_thread")]
async fn the_listen_backlog_comes_from_zoo_cfg() {
    let cfg = zk_server_lite::config::Config::parse(
        "clientPortAddress=127.0.0.1\nclientPort=0\nmaxClientCnxns=0\nclientPortListenBacklog=8",
    )
    .unwrap();
    let server = Server::builder().config(&cfg).start().await.unwrap();
    let limit = std::time::Duration::from_millis(300);
    let streams = blocking_connects(server.addr(), 64, limit);
    // Linux queues backlog + 1; neither tokio's 128 nor the default 1024.
    assert!(
        (8..=16).contains(&streams.len()),
        "{} connections fitted a backlog of 8",
        streams.len()
    );
    server.stop().await;
}
