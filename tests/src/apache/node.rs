//! One server directory + process: shared by the standalone server and ensemble members.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::config::ApacheConfig;
use super::process::JvmProcess;
use super::{ApacheError, four_letter_word_timeout};

/// How long one `srvr` probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Marker written to the log before every start, so a failure reports only its own attempt.
const START_MARKER: &str = "=== zk-testkit: starting ";

/// What a `srvr` probe found.
#[derive(Debug)]
pub(crate) enum Probe {
    /// Serving, in this mode (`standalone`, `leader`, `follower`, `observer`, `read-only`).
    Serving(String),
    /// Not (yet) serving; the text explains (srvr answer or connect error).
    NotServing(String),
    /// The process is not running (never started, killed, or exited with this status).
    Exited(String),
}

/// Extracts the `Mode: <mode>` of a `srvr`/`stat` answer, unless it says it is not serving.
pub(crate) fn serving_mode(srvr: &str) -> Option<String> {
    if srvr.contains("not currently serving") {
        return None;
    }
    srvr.lines()
        .find_map(|l| l.strip_prefix("Mode:"))
        .map(|m| m.trim().to_owned())
}

#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) cfg_path: PathBuf,
    pub(crate) log_path: PathBuf,
    pub(crate) data_dir: PathBuf,
    pub(crate) client_port: u16,
    /// The TLS port (`secureClientPort`), when the config has TLS.
    pub(crate) secure_port: Option<u16>,
    /// Removed by the JVM wrapper if the test process dies abruptly.
    cleanup_dir: PathBuf,
    starts: u32,
    pub(crate) proc: Option<JvmProcess>,
}

impl Node {
    /// Creates `dir/data` and names the config and log files in `dir`. `cleanup_dir` (the
    /// temporary directory holding `dir`) is removed if the test process dies abruptly.
    pub(crate) fn new(name: String, dir: &Path, cleanup_dir: &Path) -> io::Result<Self> {
        let data_dir = dir.join("data");
        std::fs::create_dir_all(&data_dir)?;
        Ok(Self {
            name,
            cfg_path: dir.join("zoo.cfg"),
            log_path: dir.join("server.log"),
            data_dir,
            client_port: 0,
            secure_port: None,
            cleanup_dir: cleanup_dir.to_owned(),
            starts: 0,
            proc: None,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.client_port))
    }

    pub(crate) fn secure_addr(&self) -> Option<SocketAddr> {
        self.secure_port
            .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    }

    pub(crate) fn io_err(&self, what: &str, e: io::Error) -> ApacheError {
        ApacheError::Io {
            context: format!("{what} ({})", self.name),
            source: e,
        }
    }

    /// Writes `zoo.cfg` (plus the TLS key and trust stores beside it when `config` has TLS,
    /// and the JAAS file when it has SASL users).
    pub(crate) fn write_config(
        &self,
        text: &str,
        config: &ApacheConfig,
    ) -> Result<(), ApacheError> {
        if let (Some(tls), Some(dir)) = (&config.tls, self.cfg_path.parent()) {
            tls.write_files(dir)
                .map_err(|e| self.io_err("writing the TLS key and trust stores", e))?;
        }
        if let (Some(sasl), Some(dir)) = (&config.sasl, self.cfg_path.parent()) {
            sasl.write_files(dir)
                .map_err(|e| self.io_err("writing the JAAS file", e))?;
        }
        std::fs::write(&self.cfg_path, text).map_err(|e| self.io_err("writing zoo.cfg", e))
    }

    /// Whether the JVM is running (started and not exited).
    pub(crate) fn is_running(&mut self) -> bool {
        self.proc
            .as_mut()
            .is_some_and(|p| p.exit_status().is_none())
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(JvmProcess::pid)
    }

    /// Starts the JVM (the config must be written). Does not wait for it to serve.
    pub(crate) fn spawn(&mut self, config: &ApacheConfig) -> Result<(), ApacheError> {
        if self.is_running() {
            return Ok(());
        }
        // Reap a previous process that died by itself.
        self.proc = None;
        self.starts += 1;
        let marker = format!(
            "{START_MARKER}{} (start #{}, client port {}) ===\n",
            self.name, self.starts, self.client_port
        );
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log_path)
                .map_err(|e| self.io_err("opening the server log", e))?;
            f.write_all(marker.as_bytes())
                .map_err(|e| self.io_err("writing the server log", e))?;
        }
        let command = config.java_command(&self.cfg_path);
        tracing::debug!(node = %self.name, port = self.client_port, "starting ZooKeeper JVM");
        let proc = JvmProcess::spawn(&command, &self.log_path, &self.cleanup_dir)
            .map_err(|e| self.io_err("starting the JVM", e))?;
        self.proc = Some(proc);
        Ok(())
    }

    /// One `srvr` probe.
    pub(crate) async fn probe(&mut self) -> Probe {
        match self.proc.as_mut() {
            None => return Probe::Exited("not started".into()),
            Some(p) => {
                if let Some(status) = p.exit_status() {
                    return Probe::Exited(status.to_string());
                }
            }
        }
        match four_letter_word_timeout(self.addr(), "srvr", PROBE_TIMEOUT).await {
            Ok(text) => match serving_mode(&text) {
                Some(mode) => Probe::Serving(mode),
                None => Probe::NotServing(text.trim().to_owned()),
            },
            Err(e) => Probe::NotServing(e.to_string()),
        }
    }

    /// The log of the latest start attempt.
    pub(crate) fn current_log(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        match log.rfind(START_MARKER) {
            Some(i) => log[i..].to_owned(),
            None => log,
        }
    }

    /// Whether the latest start failed because a port was taken.
    pub(crate) fn port_clash(&self) -> bool {
        let log = self.current_log();
        log.contains("Address already in use") || log.contains("BindException")
    }

    /// The last `lines` lines of the server log.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(&self.log_path)
            .unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log_path.display()));
        let all: Vec<&str> = log.lines().collect();
        let from = all.len().saturating_sub(lines);
        all[from..].join("\n")
    }

    /// SIGKILL and reap. A no-op when not running.
    pub(crate) async fn kill(&mut self) -> Result<(), ApacheError> {
        if let Some(mut p) = self.proc.take() {
            p.kill()
                .await
                .map_err(|e| self.io_err("killing the JVM", e))?;
        }
        Ok(())
    }

    /// SIGTERM (escalating to SIGKILL after `timeout`) and reap. A no-op when not running.
    pub(crate) async fn stop(&mut self, timeout: Duration) -> Result<(), ApacheError> {
        if let Some(mut p) = self.proc.take() {
            p.stop(timeout)
                .await
                .map_err(|e| self.io_err("stopping the JVM", e))?;
        }
        Ok(())
    }
}
