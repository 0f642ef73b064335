//! Our Zab engine in an Apache ZooKeeper 3.8 ensemble (Debian's jars): member 1 is ours
//! (the engine and peer sockets with an in-memory log), members 2 and 3 are Apache. Ours
//! takes part in Apache's election, follows the Apache leader through discovery and sync,
//! logs and acks its proposals, and — once the other Apache follower is killed — is the
//! ACK that Apache's leader needs to commit a client's write.
//!
//! Skipped with a message when Java or the jar is missing, unless
//! `ZK_REQUIRE_FOREIGN_CLIENTS` is set (as in CI).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
mod zab_member;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zk_proto::CreateMode;
use zk_server_lite::peer::PeerAddrs;
use zk_server_lite::zab::PeerState;

const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";
const CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A JVM killed (SIGKILL) and reaped on drop.
struct Jvm(std::process::Child);

impl Drop for Jvm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn mode(client: SocketAddr) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let text = tokio::time::timeout(Duration::from_secs(2), async {
        let mut s = tokio::net::TcpStream::connect(client).await.ok()?;
        s.write_all(b"srvr").await.ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        Some(out)
    })
    .await
    .ok()??;
    text.lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_member_follows_an_apache_leader_and_counts_in_its_quorum() {
    let java = std::process::Command::new("java").arg("-version").output();
    if java.is_err() || !std::path::Path::new(ZK_JAR).exists() {
        assert!(
            std::env::var_os("ZK_REQUIRE_FOREIGN_CLIENTS").is_none(),
            "java or {ZK_JAR} missing"
        );
        eprintln!("SKIPPED: java or {ZK_JAR} missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Ours keeps its listeners bound; the JVMs bind theirs from the config.
    let (mut addrs, mut listeners) = zab_member::reserve(1);
    let mut client_ports = BTreeMap::new();
    for id in 1..=3 {
        if id > 1 {
            addrs.insert(
                id,
                PeerAddrs {
                    quorum: SocketAddr::from(([127, 0, 0, 1], free_port())),
                    election: SocketAddr::from(([127, 0, 0, 1], free_port())),
                },
            );
        }
        client_ports.insert(id, free_port());
    }
    let servers: String = addrs
        .iter()
        .map(|(id, a)| {
            format!(
                "server.{id}=127.0.0.1:{}:{}:participant;0.0.0.0:{}\n",
                a.quorum.port(),
                a.election.port(),
                client_ports[id]
            )
        })
        .collect();
    let config_text = format!("{servers}version=0");
    let mut jvms = BTreeMap::new();
    for id in 2..=3 {
        let data = dir.path().join(format!("node{id}"));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("myid"), format!("{id}\n")).unwrap();
        let cfg = data.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=200\ninitLimit=30\nsyncLimit=15\ndataDir={}\nclientPort={}\n\
                 4lw.commands.whitelist=*\nadmin.enableServer=false\n{servers}",
                data.display(),
                client_ports[&id]
            ),
        )
        .unwrap();
        let log = std::fs::File::create(data.join("server.log")).unwrap();
        let child = std::process::Command::new("java")
            .args(["-Xmx256m", "-cp", CLASSPATH])
            .arg("-Dzookeeper.admin.enableServer=false")
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&cfg)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("java");
        jvms.insert(id, Jvm(child));
    }
    let ours = zab_member::start_member(
        1,
        &addrs,
        listeners.remove(&1),
        &[],
        &config_text,
        Arc::new(Mutex::new(zab_member::Disk::default())),
        Instant::now(),
    )
    .await;
    let client = |id: i64| SocketAddr::from(([127, 0, 0, 1], client_ports[&id]));

    let mut leader = 0;
    wait_for(
        "an Apache leader, and our member following it",
        async || {
            for id in 2..=3 {
                if mode(client(id)).await.as_deref() == Some("leader") {
                    leader = id;
                }
            }
            let s = ours.status.lock().unwrap();
            leader != 0 && s.state == Some(PeerState::Following) && s.serving
        },
    )
    .await;
    let other = if leader == 2 { 3 } else { 2 };

    // Writes through Apache reach our member as proposals it logs and applies.
    let (mut raw, _) = common::Raw::connect(client(leader)).await;
    for i in 0..5 {
        raw.create(&format!("/zab-lite-{i}"), CreateMode::Persistent)
            .await
            .expect("create");
    }
    let applied_path = |path: &str| {
        let s = ours.status.lock().unwrap();
        s.applied
            .iter()
            .any(|p| p.data.windows(path.len()).any(|w| w == path.as_bytes()))
    };
    wait_for("our member applying the creates", async || {
        applied_path("/zab-lite-4")
    })
    .await;

    // Up to here, Apache logged nothing that says our packets were wrong. (Connections that
    // close — an EOF in a LearnerHandler — are normal while members start and elect.)
    let leader_log = dir.path().join(format!("node{leader}/server.log"));
    let log = std::fs::read_to_string(&leader_log).unwrap_or_default();
    let protocol_errors = [
        "nexpected packet",
        "igest mismatch",
        "is from a different epoch",
        "ahead of the leader",
        "was supposed to be an ACK",
        "First packet",
        "BufferUnderflow",
        "Unreasonable length",
        "Marshalling",
        "IllegalArgument",
    ];
    let complaints: Vec<&str> = log
        .lines()
        .filter(|l| protocol_errors.iter().any(|p| l.contains(p)))
        .collect();
    assert!(
        complaints.is_empty(),
        "the Apache leader complained about our member's packets:\n{}",
        complaints.join("\n")
    );

    // Without the other Apache follower, the leader needs our ACK to commit.
    drop(jvms.remove(&other));
    let create = tokio::time::timeout(
        Duration::from_secs(30),
        raw.create("/acked-by-zk-server-lite", CreateMode::Persistent),
    )
    .await;
    assert!(
        matches!(create, Ok(Ok(_))),
        "the write did not commit with our member as the quorum's second ACK: {create:?}"
    );
    wait_for("our member applying it", async || {
        applied_path("/acked-by-zk-server-lite")
    })
    .await;
    ours.task.abort();
}
