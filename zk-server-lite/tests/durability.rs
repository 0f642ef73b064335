//! Durable servers: restart on the same data (in-process and the binary), snapshots with
//! log rolling, and a crash (SIGKILL) in the middle of a pipelined write stream after which
//! every acknowledged write must be there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Raw, four_letter, get_data};
use zk_proto::records::*;
use zk_proto::{CreateMode, ErrorCode, Request, Response};
use zk_server_lite::Server;

async fn exists(raw: &mut Raw, path: &str) -> bool {
    match raw
        .call(Request::Exists(ExistsRequest {
            path: path.into(),
            watch: false,
        }))
        .await
    {
        Ok(_) => true,
        Err(ErrorCode::NoNode) => false,
        Err(e) => panic!("exists {path}: {e:?}"),
    }
}

#[tokio::test]
async fn restart_keeps_data_sessions_and_zxids() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::builder()
        .data_dir(dir.path())
        .start()
        .await
        .unwrap();
    let (mut a, rsp) = Raw::connect(server.addr()).await;
    a.create("/p", CreateMode::Persistent).await.unwrap();
    a.create("/p/e", CreateMode::Ephemeral).await.unwrap();
    let Ok(Response::Create(seq)) = a.create("/p/s-", CreateMode::PersistentSequential).await
    else {
        panic!()
    };
    assert_eq!(seq.path, "/p/s-0000000001");
    a.call(Request::SetData(SetDataRequest {
        path: "/p".into(),
        data: Some(Bytes::from_static(b"v2")),
        version: 0,
    }))
    .await
    .unwrap();
    let Ok(Response::GetData(before)) = a.call(get_data("/p", false)).await else {
        panic!()
    };
    let zxid_before = server.with_core(|c| c.last_zxid());

    let server = server.restart().await.unwrap();
    assert_eq!(server.with_core(|c| c.last_zxid()), zxid_before);
    // The old connection is gone; the session is not: re-attach with id and password.
    assert!(a.recv().await.is_none());
    let mut again = ConnectRequest::new_session(6000, zxid_before, false);
    again.session_id = rsp.session_id;
    again.passwd = rsp.passwd.clone();
    let mut a2 = Raw::open(server.addr()).await;
    let r2 = a2.handshake(again).await.unwrap();
    assert_eq!(r2.session_id, rsp.session_id);
    let Ok(Response::GetData(after)) = a2.call(get_data("/p", false)).await else {
        panic!()
    };
    assert_eq!(after, before);
    assert!(exists(&mut a2, "/p/e").await);
    // Sequence numbers and zxids continue where they were.
    let Ok(Response::Create(seq)) = a2.create("/p/s-", CreateMode::PersistentSequential).await
    else {
        panic!()
    };
    assert_eq!(seq.path, "/p/s-0000000002");
    assert!(server.with_core(|c| c.last_zxid()) > zxid_before);
    // Closing the session deletes its ephemeral, durably.
    let xid = a2.send(&Request::CloseSession).await;
    a2.reply(xid).await.unwrap();
    let server = server.restart().await.unwrap();
    let (mut b, _) = Raw::connect(server.addr()).await;
    assert!(!exists(&mut b, "/p/e").await);
    assert!(exists(&mut b, "/p/s-0000000002").await);
    server.stop().await;
}

#[tokio::test]
async fn snapshots_roll_the_log_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::builder()
        .data_dir(dir.path())
        .snap_count(10)
        .start()
        .await
        .unwrap();
    let (mut a, _) = Raw::connect(server.addr()).await;
    for i in 0..45 {
        a.create(&format!("/n{i}"), CreateMode::Persistent)
            .await
            .unwrap();
    }
    let server = server.restart().await.unwrap();
    let (mut b, _) = Raw::connect(server.addr()).await;
    for i in 0..45 {
        assert!(exists(&mut b, &format!("/n{i}")).await, "/n{i}");
    }
    let files: Vec<String> = std::fs::read_dir(dir.path().join("zk-lite"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let snaps = files.iter().filter(|f| f.starts_with("snapshot.")).count();
    assert!(
        (1..=zk_server_lite::file_storage::RETAIN_SNAPSHOTS).contains(&snaps),
        "{files:?}"
    );
    assert!(files.iter().any(|f| f.starts_with("log.")), "{files:?}");
    server.stop().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary on `port` with `data` as dataDir; waits until it answers `ruok`.
async fn start_binary(data: &Path, port: u16) -> Proc {
    let cfg = data.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\nsnapCount=200\n",
            data.display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_zk-server-lite"))
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok()
            && four_letter(addr, "ruok").await == "imok"
        {
            return proc;
        }
        assert!(Instant::now() < deadline, "the binary did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_acknowledged_write_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut proc = start_binary(dir.path(), port).await;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let (mut raw, _) = Raw::connect(addr).await;
    // Pipelined creates, 32 in flight; kill -9 after a few hundred acknowledgements.
    let mut acked = BTreeSet::new();
    let mut in_flight = std::collections::VecDeque::new();
    let mut next = 0;
    let mut killed = false;
    loop {
        while !killed && in_flight.len() < 32 {
            let path = format!("/w{next:06}");
            next += 1;
            let xid = raw
                .send(&Request::Create(CreateRequest {
                    path: path.clone(),
                    data: Some(Bytes::from(vec![b'x'; 100])),
                    acl: OPEN_ACL_UNSAFE.clone(),
                    flags: 0,
                }))
                .await;
            in_flight.push_back((xid, path));
        }
        let Some((xid, path)) = in_flight.pop_front() else {
            break;
        };
        match raw.reply(xid).await {
            Some((h, _)) => {
                assert!(h.is_ok(), "{h:?}");
                acked.insert(path);
            }
            None => break,
        }
        if !killed && acked.len() >= 300 {
            proc.0.kill().unwrap();
            killed = true;
        }
    }
    proc.0.wait().unwrap();
    drop(proc);
    assert!(acked.len() >= 300);

    let _proc = start_binary(dir.path(), port).await;
    let (mut check, _) = Raw::connect(addr).await;
    for path in &acked {
        assert!(exists(&mut check, path).await, "acknowledged {path} lost");
    }
    // Numbering is gap-free up to the last acknowledged write.
    let last = acked.iter().next_back().unwrap().clone();
    let n: usize = last[2..].parse().unwrap();
    assert_eq!(acked.len(), n + 1);
}

/// A log on a slow fake disk: `sync_to_disk` takes a while, then records how many txns it
/// made durable.
mod slow_disk {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use zk_server_lite::storage::{MemLog, StorageError, Syncer, TxnLog};
    use zk_server_lite::txn::Txn;

    #[derive(Default)]
    pub(crate) struct Counters {
        pub(crate) appended: AtomicU64,
        pub(crate) synced: AtomicU64,
        pub(crate) fsyncs: AtomicU64,
    }

    pub(crate) struct SlowLog {
        pub(crate) inner: MemLog,
        pub(crate) counters: Arc<Counters>,
    }

    struct SlowSyncer(Arc<Counters>);

    impl Syncer for SlowSyncer {
        fn sync_to_disk(&self) -> std::io::Result<()> {
            let upto = self.0.appended.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            self.0.synced.fetch_max(upto, Ordering::SeqCst);
            self.0.fsyncs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    impl TxnLog for SlowLog {
        fn append(&mut self, txn: &Txn) -> Result<(), StorageError> {
            self.inner.append(txn)?;
            self.counters.appended.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn sync(&mut self) -> Result<(), StorageError> {
            self.counters.synced.store(
                self.counters.appended.load(Ordering::SeqCst),
                Ordering::SeqCst,
            );
            Ok(())
        }
        fn last_zxid(&self) -> Option<i64> {
            self.inner.last_zxid()
        }
        fn read_after(&self, zxid: i64) -> Vec<Txn> {
            self.inner.read_after(zxid)
        }
        fn appended(&self) -> u64 {
            self.inner.appended()
        }
        fn syncer(&self) -> Option<Arc<dyn Syncer>> {
            Some(Arc::new(SlowSyncer(self.counters.clone())))
        }
    }
}

#[tokio::test]
async fn replies_wait_for_the_fsync_and_fsyncs_are_batched() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    let counters = Arc::new(slow_disk::Counters::default());
    let c = counters.clone();
    let server = Server::builder()
        .txn_log(Arc::new(move || {
            Box::new(slow_disk::SlowLog {
                inner: Default::default(),
                counters: c.clone(),
            })
        }))
        .start()
        .await
        .unwrap();
    let (mut raw, _) = Raw::connect(server.addr()).await;
    // The handshake itself waited for the createSession txn.
    assert!(counters.synced.load(Ordering::SeqCst) >= 1);
    let mut xids = Vec::new();
    for i in 0..50 {
        let req = Request::Create(CreateRequest {
            path: format!("/s{i}"),
            data: None,
            acl: OPEN_ACL_UNSAFE.clone(),
            flags: 0,
        });
        xids.push(raw.send(&req).await);
    }
    for (k, xid) in xids.into_iter().enumerate() {
        let (h, _) = raw.reply(xid).await.unwrap();
        assert!(h.is_ok());
        // txn 1 is the createSession; create k is txn k + 2.
        let synced = counters.synced.load(Ordering::SeqCst);
        assert!(
            synced >= k as u64 + 2,
            "reply {k} before its fsync ({synced})"
        );
    }
    let fsyncs = counters.fsyncs.load(Ordering::SeqCst);
    assert!(fsyncs < 50, "{fsyncs} fsyncs for 51 txns: no batching");
    server.stop().await;
}

#[tokio::test]
async fn snapshots_taken_during_concurrent_writes_restore_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::builder()
        .data_dir(dir.path())
        .snap_count(25)
        .start()
        .await
        .unwrap();
    let addr = server.addr();
    let mut writers = Vec::new();
    for w in 0..4 {
        writers.push(tokio::spawn(async move {
            let (mut raw, _) = Raw::connect(addr).await;
            raw.create(&format!("/w{w}"), CreateMode::Persistent)
                .await
                .unwrap();
            for i in 0..100 {
                raw.create(&format!("/w{w}/n{i}"), CreateMode::PersistentSequential)
                    .await
                    .unwrap();
                raw.call(Request::SetData(SetDataRequest {
                    path: format!("/w{w}"),
                    data: Some(Bytes::from(format!("{i}"))),
                    version: -1,
                }))
                .await
                .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let before = server.with_core(|c| (c.tree().clone(), c.last_zxid()));
    let server = server.restart().await.unwrap();
    let after = server.with_core(|c| (c.tree().clone(), c.last_zxid()));
    assert_eq!(after.1, before.1);
    assert!(after.0 == before.0, "the restored tree differs");
    server.stop().await;
}
