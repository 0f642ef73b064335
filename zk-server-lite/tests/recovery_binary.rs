//! The binary over damaged data dirs, as an operator sees it: it refuses the state where
//! every snapshot is truncated (the log alone cannot rebuild the tree) with a message on
//! stderr, starts over a torn log tail with a warning, starts over damage mid-log only in
//! repair mode, and names the data dir when it cannot use it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Raw;
use zk_proto::CreateMode;
use zk_server_lite::Server;

/// Generous: a loaded CI machine.
const WAIT: Duration = Duration::from_secs(60);

/// Writes `n` znodes through a durable server with a snapshot every `snap_count` txns, and more
/// until the first log segments have been purged if `until_purged`.
async fn populate(dir: &Path, n: usize, until_purged: bool, snap_count: u64) {
    let server = Server::builder()
        .data_dir(dir)
        .snap_count(snap_count)
        .start()
        .await
        .unwrap();
    let (mut raw, _) = Raw::connect(server.addr()).await;
    let purged = || {
        files(dir, "log")
            .first()
            .is_some_and(|f| !f.ends_with("log.0000000000000001"))
    };
    let mut i = 0;
    // Snapshots are written in the background, skipped while one is being written: on a
    // loaded machine it takes more writes to see a purge.
    while i < n || (until_purged && !purged() && i < 20_000) {
        raw.create(&format!("/n{i:05}"), CreateMode::Persistent)
            .await
            .unwrap();
        i += 1;
    }
    drop(raw);
    server.stop().await;
}

fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("zk-lite"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{prefix}."))
        })
        .collect();
    v.sort();
    v
}

struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    _cfg: tempfile::NamedTempFile,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(data: &Path, extra_cfg: &str, args: &[&str]) -> Proc {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = tempfile::Builder::new().suffix(".cfg").tempfile().unwrap();
    std::fs::write(
        cfg.path(),
        format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n{extra_cfg}",
            data.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zk-server-lite"))
        .args(args)
        .arg(cfg.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Proc {
        child,
        lines,
        _cfg: cfg,
    }
}

impl Proc {
    /// Collects stderr until a line contains `until` (or stderr closes); the lines so far.
    fn read_until(&self, until: &str) -> (bool, String) {
        let mut all = String::new();
        loop {
            match self.lines.recv_timeout(WAIT) {
                Ok(line) => {
                    all.push_str(&line);
                    all.push('\n');
                    if line.contains(until) {
                        return (true, all);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return (false, all),
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("no output for {WAIT:?}: {all}"),
            }
        }
    }

    fn exit_code(&mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(std::time::Instant::now() < deadline, "did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[tokio::test]
async fn all_snapshots_truncated_is_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    populate(&data, 150, true, 20).await;
    let logs = files(&data, "log");
    assert!(
        !logs[0].ends_with("log.0000000000000001"),
        "the first segments were purged: {logs:?} {:?}",
        files(&data, "snapshot")
    );
    for snap in files(&data, "snapshot") {
        let b = std::fs::read(&snap).unwrap();
        std::fs::write(&snap, &b[..b.len() / 2]).unwrap();
    }
    let mut proc = run(&data, "", &[]);
    let (found, out) = proc.read_until("not started");
    assert!(found, "{out}");
    assert!(out.contains("refusing to start"), "{out}");
    assert!(out.contains("no snapshot can be read"), "{out}");
    assert!(out.contains("move the data directories aside"), "{out}");
    assert_ne!(proc.exit_code(), Some(0));
}

#[tokio::test]
async fn torn_tail_starts_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    populate(&data, 50, false, 1000).await;
    let seg = files(&data, "log").pop().unwrap();
    let b = std::fs::read(&seg).unwrap();
    assert!(b.len() > 10);
    std::fs::write(&seg, &b[..b.len() - 7]).unwrap();
    let proc = run(&data, "", &[]);
    let (found, out) = proc.read_until("serving clients");
    assert!(found, "{out}");
    assert!(
        out.contains("WARN") && out.contains("torn log tail cut off"),
        "{out}"
    );
    assert!(out.contains("an incomplete record after zxid"), "{out}");
    assert!(out.contains("recovered"), "{out}");
}

#[tokio::test]
async fn flipped_bytes_refuse_then_repair_mode_starts_and_says_what_it_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    populate(&data, 150, false, 20).await;
    let seg = files(&data, "log").into_iter().rev().nth(1).unwrap();
    let mut b = std::fs::read(&seg).unwrap();
    let mid = b.len() / 2;
    for x in &mut b[mid..mid + 16] {
        *x ^= 0xa5;
    }
    std::fs::write(&seg, &b).unwrap();
    // The newest snapshot still covers that segment: break it so the segment is needed.
    let newest = files(&data, "snapshot").pop().unwrap();
    std::fs::write(&newest, b"").unwrap();

    let mut proc = run(&data, "", &[]);
    let (found, out) = proc.read_until("not started");
    assert!(found, "{out}");
    assert!(out.contains("corruption"), "{out}");
    assert_ne!(proc.exit_code(), Some(0));
    drop(proc);

    for (cfg, args) in [("zklite.repair=true\n", &[][..]), ("", &["--repair"][..])] {
        let repaired = tempfile::tempdir().unwrap();
        let copy = repaired.path().join("data");
        copy_dir(&data, &copy);
        let proc = run(&copy, cfg, args);
        let (found, out) = proc.read_until("serving clients");
        assert!(found, "{out}");
        assert!(out.contains("ERROR") && out.contains("REPAIR"), "{out}");
        assert!(out.contains("dropped zxids"), "{out}");
        let kept = std::fs::read_dir(copy.join("zk-lite"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("repair.")
            })
            .count();
        assert_eq!(kept, 1);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[tokio::test]
async fn unusable_data_dir_is_named_in_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let mut proc = run(&file.join("data"), "", &["--log-format", "json"]);
    let (found, out) = proc.read_until("cannot start");
    assert!(found, "{out}");
    assert!(out.contains("data directory"), "{out}");
    assert!(!out.contains("cannot listen"), "{out}");
    // JSON lines.
    assert!(out.lines().all(|l| l.starts_with('{')), "{out}");
    assert_ne!(proc.exit_code(), Some(0));
}
