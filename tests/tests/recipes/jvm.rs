//! Java participants for the cross-language tests (Curator 5.4 from the Debian jars): check
//! that the JDK and jars are there, compile `tests/recipes/java/*.java` once per source
//! version, spawn a participant and talk to it line by line.
//!
//! Compiled once: nextest runs every test in its own process, so the classes are cached on
//! disk under `CARGO_TARGET_TMPDIR`, keyed by a hash of the sources; the first test to need
//! them compiles into a private directory and renames it into place (a concurrent compile of
//! the same sources loses the rename and uses the winner's classes).
//!
//! Skipped (with a message) when javac/java or a jar is missing, unless
//! `ZK_REQUIRE_FOREIGN_CLIENTS` is set (as CI does): then a missing tool fails the test.

use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use tokio::sync::mpsc;

use crate::within;

/// The jars on every participant's class path (Debian's `/usr/share/java`).
const JARS: &[&str] = &[
    "curator-recipes.jar",
    "curator-framework.jar",
    "curator-client.jar",
    "curator-x-discovery.jar",
    "jackson-databind.jar",
    "jackson-core.jar",
    "jackson-annotations.jar",
    "zookeeper.jar",
    "zookeeper-jute.jar",
    "guava.jar",
    "slf4j-api.jar",
    "slf4j-nop.jar",
];

fn jar_path(jar: &str) -> PathBuf {
    Path::new("/usr/share/java").join(jar)
}

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// `true` if Java and the Curator jars are there; otherwise skips (or fails in CI).
pub(crate) fn java_ready() -> bool {
    let missing: Vec<String> = JARS
        .iter()
        .map(|j| jar_path(j))
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .chain(
            ["javac", "java"]
                .into_iter()
                .filter(|c| !have(c))
                .map(String::from),
        )
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!("Curator cross-language test: missing {missing:?}");
    if std::env::var_os("ZK_REQUIRE_FOREIGN_CLIENTS").is_some() {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    false
}

fn classpath(extra: &Path) -> String {
    std::iter::once(extra.to_path_buf())
        .chain(JARS.iter().map(|j| jar_path(j)))
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

fn sources_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/recipes/java")
}

/// The participants' sources, sorted.
fn sources() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(sources_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "java"))
        .collect();
    files.sort();
    files
}

/// Compiles every participant (once per source version) and returns the classes directory.
fn compile_once() -> PathBuf {
    let files = sources();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for file in &files {
        file.file_name().hash(&mut hasher);
        std::fs::read(file).unwrap().hash(&mut hasher);
    }
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("curator-participants");
    let classes = root.join(format!("{:016x}", hasher.finish()));
    if classes.exists() {
        return classes;
    }
    std::fs::create_dir_all(&root).unwrap();
    let scratch = tempfile::tempdir_in(&root).unwrap();
    let status = Command::new("javac")
        .args(["-nowarn", "-cp", &classpath(scratch.path()), "-d"])
        .arg(scratch.path())
        .args(&files)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "javac in {} failed",
        sources_dir().display()
    );
    // Another test may have won the race: its classes are the same.
    let staged = scratch.keep();
    if std::fs::rename(&staged, &classes).is_err() {
        let _ = std::fs::remove_dir_all(&staged);
        assert!(classes.exists(), "cannot store compiled participants");
    }
    classes
}

/// The compiled participants' directory (compiled on first use).
pub(crate) async fn compiled() -> PathBuf {
    tokio::task::spawn_blocking(compile_once).await.unwrap()
}

/// A running Java participant: its stdout lines arrive on a channel; killed on drop.
pub(crate) struct Participant {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    pub(crate) lines: mpsc::UnboundedReceiver<String>,
    pub(crate) seen: Vec<String>,
}

impl Participant {
    pub(crate) fn spawn(classes: &Path, class: &str, args: &[&str]) -> Participant {
        let mut child = Command::new("java")
            .args([
                "-Xmx128m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-cp",
            ])
            .arg(classpath(classes))
            .arg(class)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Participant {
            child: Some(child),
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the next line starting with `prefix`; returns the rest of it.
    pub(crate) async fn expect(&mut self, prefix: &str) -> String {
        within(
            &format!("the Java participant to print {prefix:?}"),
            async {
                loop {
                    match self.lines.recv().await {
                        Some(line) => {
                            self.seen.push(line.clone());
                            if let Some(rest) = line.strip_prefix(prefix) {
                                return rest.trim().to_owned();
                            }
                        }
                        None => panic!(
                            "the Java participant ended before {prefix:?}; it printed {:?}",
                            self.seen
                        ),
                    }
                }
            },
        )
        .await
    }

    /// Every line printed so far (including those [`expect`](Self::expect) skipped).
    pub(crate) fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Writes a line to its stdin.
    pub(crate) fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for a clean exit.
    pub(crate) async fn finish(mut self) {
        let mut child = self.child.take().unwrap();
        let status = within(
            "the Java participant to exit",
            tokio::task::spawn_blocking(move || child.wait()),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(
            status.success(),
            "Java participant failed: {status}; it printed {:?}",
            self.seen
        );
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
