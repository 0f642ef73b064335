//! A JVM wrapped so that it can never outlive the test process.
//!
//! The JVM is started by a small `sh` wrapper whose standard input is a pipe from us:
//!
//! * the wrapper forks the JVM (stdin `/dev/null`, output appended to the log file) and prints
//!   its pid on stdout;
//! * a watcher sub-shell reads command lines from the pipe: `term` sends SIGTERM to the JVM,
//!   `kill` sends SIGKILL; at end of file (we closed the pipe: dropped the handle, or our
//!   process died in any way, even SIGKILL) it sends SIGKILL;
//! * the wrapper waits for the JVM, stops the watcher and exits with the JVM's status, so
//!   when *we* have reaped the wrapper, the JVM is gone and reaped too.
//!
//! We never signal the wrapper itself (that would orphan the JVM). No `unsafe` is needed.
//!
//! When the wrapper finds, after the JVM is gone, that its parent (the test process) has
//! died, it also removes the server's temporary directory, which the test process could not
//! (only paths containing `zk-testkit-` are ever removed).

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

// fd 3 duplicates the pipe from us so the watcher can read it: the shell redirects the
// standard input of background jobs to /dev/null.
const WRAPPER: &str = r#"
exec 3<&0
log=$1
cleanup=$2
shift 2
"$@" </dev/null 3<&- >>"$log" 2>&1 &
child=$!
(
  while read -r cmd; do
    case "$cmd" in
      term) kill -TERM "$child" 2>/dev/null ;;
      kill) kill -KILL "$child" 2>/dev/null ;;
    esac
  done
  kill -KILL "$child" 2>/dev/null
) <&3 >/dev/null 2>&1 &
watcher=$!
exec 3<&- 0</dev/null
echo "$child"
wait "$child"
status=$?
kill "$watcher" 2>/dev/null
# Field 4 of /proc/self/stat is the current parent: it changes when the test process dies.
parent=$(cut -d' ' -f4 "/proc/$$/stat" 2>/dev/null)
if [ -n "$parent" ] && [ "$parent" != "$PPID" ]; then
  case "$cleanup" in
    *zk-testkit-*) rm -rf "$cleanup" 2>/dev/null ;;
  esac
fi
exit "$status"
"#;

/// A running (or exited but not yet reaped) wrapped JVM.
#[derive(Debug)]
pub(crate) struct JvmProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    jvm_pid: u32,
    status: Option<ExitStatus>,
}

impl JvmProcess {
    /// Starts `command` (program and arguments) with stdout/stderr appended to `log_path`.
    /// `cleanup` is removed by the wrapper if the test process dies before the JVM.
    pub(crate) fn spawn(command: &[OsString], log_path: &Path, cleanup: &Path) -> io::Result<Self> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg("zk-testkit-jvm")
            .arg(log_path)
            .arg(cleanup)
            .args(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()?;
        let stdin = child.stdin.take();
        let mut line = String::new();
        let read = match child.stdout.take() {
            Some(out) => BufReader::new(out).read_line(&mut line),
            None => Ok(0),
        };
        let pid = read.ok().and_then(|_| line.trim().parse::<u32>().ok());
        match pid {
            Some(jvm_pid) => Ok(Self {
                child,
                stdin,
                jvm_pid,
                status: None,
            }),
            None => {
                drop(stdin);
                let _ = child.wait();
                Err(io::Error::other(format!(
                    "the JVM wrapper did not report a pid (got {line:?})"
                )))
            }
        }
    }

    /// The JVM's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.jvm_pid
    }

    /// The exit status, if the JVM (and its wrapper) exited.
    pub(crate) fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    fn send(&mut self, command: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            // A failed write means the wrapper is already gone.
            let _ = stdin.write_all(format!("{command}\n").as_bytes());
            let _ = stdin.flush();
        }
    }

    /// Waits (async, bounded) for the JVM to exit.
    async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            if let Some(s) = self.exit_status() {
                return Some(s);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// SIGKILL, then wait (bounded) until the JVM is reaped.
    pub(crate) async fn kill(&mut self) -> io::Result<ExitStatus> {
        self.send("kill");
        match self.wait_exit(Duration::from_secs(30)).await {
            Some(s) => Ok(s),
            None => {
                self.kill_blocking();
                self.exit_status().ok_or_else(|| {
                    io::Error::other(format!("JVM {} did not die after SIGKILL", self.jvm_pid))
                })
            }
        }
    }

    /// SIGTERM, wait up to `timeout`, then SIGKILL.
    pub(crate) async fn stop(&mut self, timeout: Duration) -> io::Result<ExitStatus> {
        self.send("term");
        match self.wait_exit(timeout).await {
            Some(s) => Ok(s),
            None => {
                tracing::warn!(pid = self.jvm_pid, "JVM ignored SIGTERM; sending SIGKILL");
                self.kill().await
            }
        }
    }

    /// Synchronous SIGKILL and bounded reap; used by `Drop`.
    fn kill_blocking(&mut self) {
        if self.exit_status().is_some() {
            return;
        }
        self.send("kill");
        // Closing the pipe makes the watcher kill the JVM even if the line was lost.
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.exit_status().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // Last resort (should never happen): kill the JVM by pid, then the wrapper.
        tracing::error!(
            pid = self.jvm_pid,
            "JVM wrapper did not exit; killing by pid"
        );
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(self.jvm_pid.to_string())
            .status();
        let _ = self.child.kill();
        self.status = self.child.wait().ok();
    }
}

impl Drop for JvmProcess {
    fn drop(&mut self) {
        self.kill_blocking();
    }
}
