//! Booting Apache ZooKeeper and making sure no JVM survives.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zk_testkit::apache::process_alive;
use zk_testkit::{
    ApacheConfig, ApacheEnsemble, ApacheError, ApacheServer, FaultProxy, four_letter_word,
    init_tracing, wait_until,
};

/// Generous bound for anything involving a JVM on a slow, loaded machine.
const JVM_WAIT: Duration = Duration::from_secs(90);

/// Waits until none of `pids` is alive (a reaped or zombie process counts as gone).
async fn wait_gone(pids: &[u32]) {
    let pids = pids.to_vec();
    wait_until(JVM_WAIT, format!("JVMs {pids:?} to be gone"), || {
        let pids = pids.clone();
        async move { pids.iter().all(|&p| !process_alive(p)) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_server_answers_four_letter_words_and_restarts() {
    init_tracing();
    let started = Instant::now();
    let mut server = ApacheServer::start().await.unwrap();
    tracing::info!(elapsed = ?started.elapsed(), addr = %server.addr(), "standalone up");

    assert_eq!(
        server.connect_string(),
        format!("127.0.0.1:{}", server.port())
    );
    assert_eq!(server.four_letter_word("ruok").await.unwrap(), "imok");
    let srvr = four_letter_word(server.addr(), "srvr").await.unwrap();
    assert!(srvr.contains("Mode: standalone"), "srvr said: {srvr}");
    let conf = server.four_letter_word("conf").await.unwrap();
    assert!(conf.contains("tickTime=250"), "conf said: {conf}");
    assert!(
        conf.contains("maxSessionTimeout=60000"),
        "conf said: {conf}"
    );

    // Four-letter words pass through the fault proxy too.
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    assert_eq!(
        four_letter_word(proxy.addr(), "ruok").await.unwrap(),
        "imok"
    );

    // Restart on the same port and data directory.
    let first_pid = server.pid().unwrap();
    server.restart().await.unwrap();
    let second_pid = server.pid().unwrap();
    assert_ne!(first_pid, second_pid);
    assert!(!process_alive(first_pid), "old JVM {first_pid} still alive");
    assert_eq!(server.four_letter_word("ruok").await.unwrap(), "imok");

    // Kill: the JVM is gone when kill returns, and the port stops answering.
    server.kill().await.unwrap();
    assert!(!process_alive(second_pid));
    assert!(!server.is_running());
    assert!(server.four_letter_word("ruok").await.is_err());

    // Start again after a kill, then drop: the JVM is gone when drop returns.
    server.restart().await.unwrap();
    let third_pid = server.pid().unwrap();
    assert!(server.log_tail(200).contains("start #3"));
    let dir = server.dir().to_path_buf();
    drop(server);
    assert!(!process_alive(third_pid), "JVM {third_pid} survived drop");
    assert!(
        !dir.exists(),
        "temporary directory {} not removed",
        dir.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensemble_elects_a_new_leader_after_the_leader_is_killed() {
    init_tracing();
    let started = Instant::now();
    let mut ensemble = ApacheEnsemble::start_with(3, ApacheConfig::new().extended_types(true))
        .await
        .unwrap();
    tracing::info!(elapsed = ?started.elapsed(), connect = %ensemble.connect_string(), "ensemble up");
    assert_eq!(ensemble.len(), 3);
    let addrs = ensemble.addrs();
    assert_eq!(
        ensemble.connect_string(),
        addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut all_pids = ensemble.pids();
    assert_eq!(all_pids.len(), 3);

    let leader = ensemble.wait_for_leader(JVM_WAIT).await.unwrap();
    assert_eq!(ensemble.leader().await, Some(leader));
    let modes = ensemble.modes().await;
    let followers = modes
        .iter()
        .filter(|m| m.as_deref() == Some("follower"))
        .count();
    assert_eq!(followers, 2, "modes: {modes:?}");

    // Kill the leader: one of the two others takes over.
    let old_leader_pid = ensemble.pid(leader).unwrap();
    ensemble.kill(leader).await.unwrap();
    assert!(!process_alive(old_leader_pid));
    assert!(!ensemble.is_running(leader));
    let new_leader = ensemble.wait_for_leader(JVM_WAIT).await.unwrap();
    assert_ne!(new_leader, leader);
    tracing::info!(old = leader, new = new_leader, "leader changed");

    // The killed member comes back as a follower (or whatever; the quorum must be whole).
    ensemble.restart(leader).await.unwrap();
    all_pids.extend(ensemble.pid(leader));
    let quorum_leader = ensemble.wait_for_quorum(JVM_WAIT).await.unwrap();
    assert_ne!(
        quorum_leader, leader,
        "a fresh member should not win against the quorum"
    );
    let srvr = ensemble.four_letter_word(leader, "srvr").await.unwrap();
    assert!(
        srvr.contains("Mode: follower"),
        "restarted member says: {srvr}"
    );

    drop(ensemble);
    let alive: Vec<u32> = all_pids
        .iter()
        .copied()
        .filter(|&p| process_alive(p))
        .collect();
    assert!(alive.is_empty(), "JVMs survived drop: {alive:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_failure_reports_the_server_log() {
    init_tracing();
    let config = ApacheConfig::new().config_line("initLimit=not-a-number");
    // A standalone server ignores initLimit, so break something it reads.
    let config = config.config_line("tickTime=not-a-number");
    match ApacheServer::start_with(config).await {
        Err(e @ ApacheError::Exited { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("tickTime") || text.contains("NumberFormatException"),
                "{text}"
            );
        }
        other => panic!("expected ApacheError::Exited, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_options_reach_the_server() {
    init_tracing();
    let config = ApacheConfig::new()
        .tick_time(Duration::from_millis(200))
        .session_timeouts(
            Some(Duration::from_millis(400)),
            Some(Duration::from_secs(30)),
        )
        .extended_types(true)
        .read_only(true)
        .super_user("super", "test")
        .java_property("zookeeper.maxCnxns", "500")
        .config_line("snapCount=1000")
        .log_level("warn");
    let server = ApacheServer::start_with(config).await.unwrap();
    let conf = server.four_letter_word("conf").await.unwrap();
    for expected in [
        "tickTime=200",
        "minSessionTimeout=400",
        "maxSessionTimeout=30000",
    ] {
        assert!(
            conf.contains(expected),
            "{expected} missing from conf:\n{conf}"
        );
    }
    // Read-only mode enables `isro`, which a read-write standalone server answers with rw.
    assert_eq!(server.four_letter_word("isro").await.unwrap(), "rw");
    let zoo_cfg = std::fs::read_to_string(server.dir().join("zoo.cfg")).unwrap();
    assert!(zoo_cfg.contains("snapCount=1000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_retries_while_the_port_is_taken() {
    init_tracing();
    let mut server = ApacheServer::start().await.unwrap();
    server.kill().await.unwrap();
    // Someone else takes the port; release it only once the server has tripped over it.
    let squatter = std::net::TcpListener::bind(server.addr()).unwrap();
    let log_path = server.log_path().to_path_buf();
    let release = tokio::spawn(async move {
        wait_until(JVM_WAIT, "the server to report the port clash", || async {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let current = log.rsplit("=== zk-testkit: starting").next().unwrap_or("");
            current.contains("Address already in use")
        })
        .await;
        drop(squatter);
    });
    server.restart().await.unwrap();
    release.await.unwrap();
    assert_eq!(server.four_letter_word("ruok").await.unwrap(), "imok");
    let log = server.log_tail(10_000);
    assert!(
        log.contains("Address already in use"),
        "no clash in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_test_does_not_leave_its_jvm_behind() {
    init_tracing();
    let (pid_tx, pid_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let server = ApacheServer::start().await.unwrap();
        pid_tx.send(server.pid().unwrap()).unwrap();
        panic!("deliberate panic while holding a server");
    });
    let outcome = task.await;
    assert!(outcome.unwrap_err().is_panic());
    let pid = pid_rx.await.unwrap();
    // Unwinding dropped the server, and drop kills and reaps synchronously.
    assert!(!process_alive(pid), "JVM {pid} survived the panic");
}

/// Environment variable telling [`child_process_holding_a_server`] to run.
const CHILD_ENV: &str = "ZK_TESTKIT_ORPHAN_CHILD";

/// Not a test on its own: run (by the test below) as a separate process that starts a
/// server, prints the JVM pid and waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper process for test_process_killed_by_sigkill_leaves_no_jvm"]
async fn child_process_holding_a_server() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let server = ApacheServer::start().await.unwrap();
    println!(
        "JVM_PID={} DIR={}",
        server.pid().unwrap(),
        server.dir().display()
    );
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_process_killed_by_sigkill_leaves_no_jvm() {
    init_tracing();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "apache::child_process_holding_a_server",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Blocking read in a blocking task; the line may follow libtest's "test ... " prefix.
    let pid = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                let (_, rest) = l.split_once("JVM_PID=")?;
                let (pid, dir) = rest.split_once(" DIR=")?;
                Some((
                    pid.parse::<u32>().ok()?,
                    std::path::PathBuf::from(dir.trim()),
                ))
            })
    });
    let pid = match tokio::time::timeout(JVM_WAIT + Duration::from_secs(30), pid).await {
        Ok(pid) => pid.unwrap(),
        // Killing the child ends the blocking read, so the runtime can shut down.
        Err(_) => None,
    };
    let Some((pid, dir)) = pid else {
        let _ = child.kill();
        let status = child.wait();
        panic!("child did not report a JVM pid in time (child status: {status:?})");
    };
    assert!(process_alive(pid));
    // SIGKILL: no destructor runs in the child.
    child.kill().unwrap();
    child.wait().unwrap();
    wait_gone(&[pid]).await;
    // The wrapper also removes the temporary directory the dead process could not.
    wait_until(
        JVM_WAIT,
        format!("{} to be removed", dir.display()),
        || async { !dir.exists() },
    )
    .await;
}
