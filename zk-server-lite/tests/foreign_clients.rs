//! Real foreign clients against zk-server-lite:
//!
//! * the official Java client (Debian's `/usr/share/java/zookeeper.jar`) runs
//!   `tests/java/SmokeClient.java`;
//! * zk-proto's `GoldenSession.java` (every client opcode) runs through its recording proxy,
//!   which cuts the connection to exercise reconnects and SetWatches;
//! * kazoo runs `tests/python/kazoo_smoke.py` (basic ops, watch, transactions, Lock,
//!   Election) with the Python named by `ZK_KAZOO_PYTHON` (default `python3`).
//!
//! Each test is skipped, with a message, when its client (javac and the jar, python3, the
//! kazoo module) is missing — unless `ZK_REQUIRE_FOREIGN_CLIENTS` is set (as `.ci/test`
//! does), in which case a missing client fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zk_server_lite::Server;

const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";
const SLF4J_SIMPLE: &str = "/usr/share/java/slf4j-simple.jar";

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Reports a missing foreign client: a skip on a developer machine, a failure where
/// `ZK_REQUIRE_FOREIGN_CLIENTS` is set (CI must run these tests, not skip them).
fn skip(why: std::fmt::Arguments<'_>) {
    if std::env::var_os("ZK_REQUIRE_FOREIGN_CLIENTS").is_some() {
        panic!("ZK_REQUIRE_FOREIGN_CLIENTS is set but {why}");
    }
    eprintln!("SKIPPED: {why}");
}

fn java_ready() -> bool {
    if !have("javac") || !have("java") || !Path::new(ZK_JAR).exists() {
        skip(format_args!("javac/java or {ZK_JAR} not available"));
        return false;
    }
    true
}

fn classpath(extra: &Path) -> String {
    let mut cp = format!("{}:{ZK_JAR}", extra.display());
    if Path::new(SLF4J_SIMPLE).exists() {
        cp.push(':');
        cp.push_str(SLF4J_SIMPLE);
    }
    cp
}

fn javac(source: &Path, out: &Path) {
    let status = Command::new("javac")
        .args(["-nowarn", "-cp", ZK_JAR, "-d"])
        .arg(out)
        .arg(source)
        .status()
        .unwrap();
    assert!(status.success(), "javac {} failed", source.display());
}

/// Waits for a child process with a deadline; kills it when the deadline passes.
fn wait_with_deadline(mut child: Child, limit: Duration) -> (bool, String) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            return (status.success(), text);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            return (false, format!("TIMED OUT\n{text}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn official_java_client_smoke() {
    if !java_ready() {
        return;
    }
    let rt = runtime();
    let server = rt.block_on(Server::builder().start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/java/SmokeClient.java");
    javac(&source, dir.path());
    let child = Command::new("java")
        .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
        .arg("-cp")
        .arg(classpath(dir.path()))
        .arg("SmokeClient")
        .arg(server.connect_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, text) = wait_with_deadline(child, Duration::from_secs(180));
    assert!(ok && text.contains("java-client: OK"), "{text}");
    rt.block_on(server.stop());
}

#[test]
fn golden_session_through_the_recording_proxy() {
    if !java_ready() {
        return;
    }
    if !have("python3") {
        skip(format_args!(
            "python3 not available for the recording proxy"
        ));
        return;
    }
    let capture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../zk-proto/tests/golden/capture");
    let source = capture.join("GoldenSession.java");
    if !source.exists() {
        skip(format_args!("{} not found", source.display()));
        return;
    }
    let rt = runtime();
    let server = rt
        .block_on(
            Server::builder()
                .tick_time(500)
                .extended_types(true)
                .start(),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    javac(&source, dir.path());
    let port_file = dir.path().join("proxy.port");
    let go_file = dir.path().join("go");
    let proxy = Command::new("python3")
        .arg(capture.join("recording_proxy.py"))
        .args(["--upstream-port", &server.addr().port().to_string()])
        .arg("--port-file")
        .arg(&port_file)
        .arg("--out")
        .arg(dir.path().join("session.txt"))
        .arg("--go-file")
        .arg(&go_file)
        .args(["--cut-prefix", "/golden/cut-now"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut proxy = scopeguard(proxy);
    let deadline = Instant::now() + Duration::from_secs(30);
    let proxy_port = loop {
        if let Ok(text) = std::fs::read_to_string(&port_file)
            && let Ok(port) = text.trim().parse::<u16>()
        {
            break port;
        }
        assert!(
            Instant::now() < deadline,
            "the recording proxy did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let child = Command::new("java")
        .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
        .arg("-cp")
        .arg(classpath(dir.path()))
        .arg("GoldenSession")
        .arg(format!("127.0.0.1:{proxy_port}"))
        .arg(server.connect_string())
        .arg(&go_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, text) = wait_with_deadline(child, Duration::from_secs(240));
    let _ = proxy.0.kill();
    let _ = proxy.0.wait();
    assert!(ok && text.contains("[golden] done"), "{text}");
    rt.block_on(server.stop());
}

#[test]
fn kazoo_smoke() {
    let python = std::env::var("ZK_KAZOO_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = Command::new(&python)
        .args(["-c", "import kazoo"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        skip(format_args!(
            "{python} cannot import kazoo (set ZK_KAZOO_PYTHON)"
        ));
        return;
    }
    let rt = runtime();
    let server = rt.block_on(Server::builder().start()).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/kazoo_smoke.py");
    let child = Command::new(&python)
        .arg(script)
        .arg(server.connect_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, text) = wait_with_deadline(child, Duration::from_secs(120));
    assert!(ok && text.contains("kazoo: OK"), "{text}");
    rt.block_on(server.stop());
}

/// Kills the wrapped process when dropped (e.g. when an assertion fails).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scopeguard(child: Child) -> Guard {
    Guard(child)
}
