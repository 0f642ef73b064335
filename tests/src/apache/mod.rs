//! Boots Apache ZooKeeper 3.8 (the Debian `zookeeper` package jars) for integration tests.
//!
//! * [`ApacheServer`]: one standalone server.
//! * [`ApacheEnsemble`]: N servers forming a quorum (leader election, kill/restart members).
//! * [`four_letter_word`]: send a four-letter word (`srvr`, `ruok`, `mntr`, ...) and read
//!   the answer.
//!
//! Every server runs on free loopback ports, in its own temporary directory (`zoo.cfg`,
//! `data/`, `server.log`), and is configured by an [`ApacheConfig`].
//!
//! # No orphan JVMs
//!
//! Each JVM runs under a tiny `sh` wrapper holding a pipe from the test process: when the
//! pipe closes (the handle is dropped, the test panics and unwinds, or the test process dies
//! in any way including SIGKILL) the wrapper SIGKILLs the JVM. Dropping a server or ensemble
//! kills and *reaps* its JVMs before `drop` returns, so a test can check they are gone.
//!
//! # Readiness
//!
//! A start returns once `srvr` answers with a `Mode:` (and not "not currently serving"):
//! `standalone` for a server, `leader`/`follower` for every ensemble member with exactly one
//! leader. The wait is bounded by [`ApacheConfig::start_timeout`]; failures carry the tail of
//! the server log. A start that fails because a port was taken is retried on new ports.

mod config;
mod node;
mod process;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures::future::join_all;

pub use crate::util::host::process_alive;
pub use crate::util::{FOUR_LETTER_WORD_TIMEOUT, four_letter_word, four_letter_word_timeout};
pub use config::{
    ApacheClientAuth, ApacheConfig, ApacheSasl, ApacheTls, CLASSPATH_ENV, DEFAULT_CLASSPATH,
    DIGEST_LOGIN_MODULE, JAVA_ENV, MAIN_CLASS, NETTY_CLASSPATH, NETTY_FACTORY, SASL_AUTH_PROVIDER,
    X509_AUTH_PROVIDER, super_digest_of,
};

pub(crate) use crate::util::free_ports;
use node::{Node, Probe, serving_mode};

/// Lines of server log included in errors.
const LOG_TAIL_LINES: usize = 60;

/// Start attempts (new ports each time for a fresh start; same ports for a restart).
const MAX_START_ATTEMPTS: u32 = 5;

/// Why starting, stopping or waiting for Apache ZooKeeper failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApacheError {
    /// Creating files or processes failed.
    #[error("I/O error {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The JVM exited before it served.
    #[error("ZooKeeper {name} exited ({status}) before serving; server log tail:\n{log_tail}")]
    Exited {
        /// Which server.
        name: String,
        /// Its exit status.
        status: String,
        /// The end of its log.
        log_tail: String,
    },
    /// The server (or quorum) did not serve in time.
    #[error(
        "ZooKeeper {name} did not serve within {timeout:?} (last srvr probe: {last_probe}); \
         server log tail:\n{log_tail}"
    )]
    StartTimeout {
        /// Which server(s).
        name: String,
        /// The bound that passed.
        timeout: Duration,
        /// The last probe result(s).
        last_probe: String,
        /// The end of the log(s).
        log_tail: String,
    },
    /// Every start attempt hit a port already in use.
    #[error("ports kept clashing after {attempts} start attempts; server log tail:\n{log_tail}")]
    PortClash {
        /// Attempts made.
        attempts: u32,
        /// The end of the last attempt's log.
        log_tail: String,
    },
    /// Some other bounded wait (e.g. for a leader) passed.
    #[error("timed out after {timeout:?} waiting for {what}; {detail}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound that passed.
        timeout: Duration,
        /// The last observed state.
        detail: String,
    },
    /// An ensemble member index out of range.
    #[error("no ensemble member {index} (the ensemble has {len})")]
    NoSuchMember {
        /// The index asked for.
        index: usize,
        /// The ensemble size.
        len: usize,
    },
}

/// Why one boot attempt failed.
enum BootFail {
    /// A port was taken: retry (on new ports if possible).
    Clash(String),
    /// Anything else: give up.
    Fatal(ApacheError),
}

fn temp_dir(prefix: &str) -> Result<tempfile::TempDir, ApacheError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| ApacheError::Io {
            context: "creating a temporary directory".into(),
            source: e,
        })
}

/// Growing pause between polls of a bounded wait.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Self(Duration::from_millis(10))
    }

    async fn pause(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_millis(200));
    }
}

/// Spawns `nodes[i]` for each `i` in `targets` and waits until `ready` holds for the modes of
/// the targets (`None` = not serving). On failure every target is killed.
async fn boot(
    nodes: &mut [Node],
    targets: &[usize],
    config: &ApacheConfig,
    ready: impl Fn(&[Option<String>]) -> bool,
) -> Result<(), BootFail> {
    for &i in targets {
        if let Err(e) = nodes[i].spawn(config) {
            for &j in targets {
                let _ = nodes[j].kill().await;
            }
            return Err(BootFail::Fatal(e));
        }
    }
    let result = wait_serving(nodes, targets, config.start_timeout, ready).await;
    if result.is_err() {
        for &j in targets {
            let _ = nodes[j].kill().await;
        }
    }
    result
}

async fn wait_serving(
    nodes: &mut [Node],
    targets: &[usize],
    timeout: Duration,
    ready: impl Fn(&[Option<String>]) -> bool,
) -> Result<(), BootFail> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut backoff = Backoff::new();
    loop {
        let mut modes = Vec::with_capacity(targets.len());
        let mut last = Vec::with_capacity(targets.len());
        for &i in targets {
            match nodes[i].probe().await {
                Probe::Serving(mode) => {
                    last.push(format!("{}: Mode {mode}", nodes[i].name));
                    modes.push(Some(mode));
                }
                Probe::NotServing(why) => {
                    last.push(format!("{}: {why}", nodes[i].name));
                    modes.push(None);
                }
                Probe::Exited(status) => {
                    let node = &nodes[i];
                    let log_tail = node.log_tail(LOG_TAIL_LINES);
                    return Err(if node.port_clash() {
                        BootFail::Clash(log_tail)
                    } else {
                        BootFail::Fatal(ApacheError::Exited {
                            name: node.name.clone(),
                            status,
                            log_tail,
                        })
                    });
                }
            }
        }
        if ready(&modes) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let names: Vec<&str> = targets.iter().map(|&i| nodes[i].name.as_str()).collect();
            let log_tail = targets
                .iter()
                .map(|&i| {
                    format!(
                        "--- {} ({}) ---\n{}",
                        nodes[i].name,
                        nodes[i].log_path.display(),
                        nodes[i].log_tail(LOG_TAIL_LINES)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            return Err(BootFail::Fatal(ApacheError::StartTimeout {
                name: names.join(", "),
                timeout,
                last_probe: last.join("; "),
                log_tail,
            }));
        }
        backoff.pause().await;
    }
}

fn is_quorum_mode(mode: &str) -> bool {
    mode == "leader" || mode == "follower"
}

/// One standalone Apache ZooKeeper server.
///
/// Killed (SIGKILL) and reaped on drop; see the [module docs](self) for how it cannot be
/// orphaned.
#[derive(Debug)]
pub struct ApacheServer {
    config: ApacheConfig,
    node: Node,
    // Last field: the directory is removed after the JVM is dead.
    dir: tempfile::TempDir,
}

impl ApacheServer {
    /// Starts a server with [`ApacheConfig::default`] and waits until it serves.
    pub async fn start() -> Result<Self, ApacheError> {
        Self::start_with(ApacheConfig::default()).await
    }

    /// Starts a server with `config` and waits until it serves (`Mode: standalone`).
    pub async fn start_with(config: ApacheConfig) -> Result<Self, ApacheError> {
        let dir = temp_dir("zk-testkit-standalone-")?;
        let node = Node::new("standalone server".into(), dir.path(), dir.path()).map_err(|e| {
            ApacheError::Io {
                context: "creating the data directory".into(),
                source: e,
            }
        })?;
        let mut nodes = [node];
        let mut last_tail = String::new();
        for _ in 0..MAX_START_ATTEMPTS {
            let wanted = if config.tls.is_some() { 2 } else { 1 };
            let ports =
                free_ports(wanted).map_err(|e| nodes[0].io_err("picking a free port", e))?;
            let port = ports[0];
            nodes[0].client_port = port;
            nodes[0].secure_port = ports.get(1).copied();
            let cfg = format!(
                "{}{}{}",
                config.common_cfg(&nodes[0].data_dir, port),
                config.secure_cfg(nodes[0].secure_port),
                extra_lines(&config)
            );
            nodes[0].write_config(&cfg, &config)?;
            match boot(&mut nodes, &[0], &config, |m| m[0].is_some()).await {
                Ok(()) => {
                    let [node] = nodes;
                    tracing::info!(addr = %node.addr(), "Apache ZooKeeper standalone server serving");
                    return Ok(Self { config, node, dir });
                }
                Err(BootFail::Clash(tail)) => {
                    tracing::warn!(port, "port clash starting ZooKeeper; retrying on new ports");
                    last_tail = tail;
                }
                Err(BootFail::Fatal(e)) => return Err(e),
            }
        }
        Err(ApacheError::PortClash {
            attempts: MAX_START_ATTEMPTS,
            log_tail: last_tail,
        })
    }

    /// The client address (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.node.addr()
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.node.client_port
    }

    /// The TLS client address (`127.0.0.1:<secureClientPort>`), when started with
    /// [`ApacheConfig::tls`].
    pub fn secure_addr(&self) -> Option<SocketAddr> {
        self.node.secure_addr()
    }

    /// The TLS connect string for `host` (e.g. `localhost` or `127.0.0.1`, the name the
    /// client checks the certificate against), when started with [`ApacheConfig::tls`].
    pub fn secure_connect_string(&self, host: &str) -> Option<String> {
        self.node.secure_port.map(|port| format!("{host}:{port}"))
    }

    /// The connect string (`127.0.0.1:<port>`).
    pub fn connect_string(&self) -> String {
        self.addr().to_string()
    }

    /// The configuration the server was started with.
    pub fn config(&self) -> &ApacheConfig {
        &self.config
    }

    /// The temporary directory holding `zoo.cfg`, `data/` and `server.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's data directory (kept across [`restart`](Self::restart)).
    pub fn data_dir(&self) -> &Path {
        &self.node.data_dir
    }

    /// The server log file (appended to across restarts).
    pub fn log_path(&self) -> &Path {
        &self.node.log_path
    }

    /// The last `lines` lines of the server log (handy in a failing test's message).
    pub fn log_tail(&self, lines: usize) -> String {
        self.node.log_tail(lines)
    }

    /// The JVM's pid, while started (also after it died by itself, until stopped/restarted).
    pub fn pid(&self) -> Option<u32> {
        self.node.pid()
    }

    /// Whether the JVM is running.
    pub fn is_running(&mut self) -> bool {
        self.node.is_running()
    }

    /// Sends a four-letter word to this server.
    pub async fn four_letter_word(&self, word: &str) -> io::Result<String> {
        four_letter_word(self.addr(), word).await
    }

    /// Stops the server gracefully (SIGTERM; SIGKILL after [`ApacheConfig::stop_timeout`])
    /// and waits until the JVM is gone. A no-op when not running.
    pub async fn stop(&mut self) -> Result<(), ApacheError> {
        self.node.stop(self.config.stop_timeout).await
    }

    /// Kills the server (SIGKILL) and waits until the JVM is gone. A no-op when not running.
    pub async fn kill(&mut self) -> Result<(), ApacheError> {
        self.node.kill().await
    }

    /// Stops the server if running, then starts it again on the same ports and data
    /// directory and waits until it serves.
    pub async fn restart(&mut self) -> Result<(), ApacheError> {
        self.stop().await?;
        let config = self.config.clone();
        restart_nodes(std::slice::from_mut(&mut self.node), &[0], &config, |m| {
            m[0].is_some()
        })
        .await
    }
}

fn extra_lines(config: &ApacheConfig) -> String {
    config
        .extra_config
        .iter()
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Boots `targets` again on their existing ports, retrying on a port clash.
async fn restart_nodes(
    nodes: &mut [Node],
    targets: &[usize],
    config: &ApacheConfig,
    ready: impl Fn(&[Option<String>]) -> bool,
) -> Result<(), ApacheError> {
    let mut last_tail = String::new();
    for attempt in 1..=MAX_START_ATTEMPTS {
        match boot(nodes, targets, config, &ready).await {
            Ok(()) => return Ok(()),
            Err(BootFail::Clash(tail)) => {
                tracing::warn!(attempt, "port still in use restarting ZooKeeper; retrying");
                last_tail = tail;
                // A retry back-off, not synchronisation: the other owner must let go.
                tokio::time::sleep(Duration::from_millis(250) * attempt).await;
            }
            Err(BootFail::Fatal(e)) => return Err(e),
        }
    }
    Err(ApacheError::PortClash {
        attempts: MAX_START_ATTEMPTS,
        log_tail: last_tail,
    })
}

/// An ensemble of Apache ZooKeeper servers on loopback (members indexed from 0; member `i`
/// has `myid` `i + 1`).
///
/// All members are killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct ApacheEnsemble {
    config: ApacheConfig,
    nodes: Vec<Node>,
    // Last field: the directory is removed after the JVMs are dead.
    dir: tempfile::TempDir,
}

impl ApacheEnsemble {
    /// Starts `size` members with [`ApacheConfig::default`] and waits for the quorum.
    pub async fn start(size: usize) -> Result<Self, ApacheError> {
        Self::start_with(size, ApacheConfig::default()).await
    }

    /// Starts `size` members with `config` and waits until every member serves as leader or
    /// follower, with exactly one leader.
    pub async fn start_with(size: usize, config: ApacheConfig) -> Result<Self, ApacheError> {
        if size == 0 {
            return Err(ApacheError::NoSuchMember { index: 0, len: 0 });
        }
        let dir = temp_dir("zk-testkit-ensemble-")?;
        let mut nodes = Vec::with_capacity(size);
        for i in 0..size {
            let node = Node::new(
                format!("member {i} (myid {})", i + 1),
                &dir.path().join(format!("node{}", i + 1)),
                dir.path(),
            )
            .map_err(|e| ApacheError::Io {
                context: "creating a member directory".into(),
                source: e,
            })?;
            nodes.push(node);
        }
        let targets: Vec<usize> = (0..size).collect();
        let mut last_tail = String::new();
        for _ in 0..MAX_START_ATTEMPTS {
            let per_node = if config.tls.is_some() { 4 } else { 3 };
            let ports = free_ports(per_node * size).map_err(|e| ApacheError::Io {
                context: "picking free ports".into(),
                source: e,
            })?;
            let servers: String = (0..size)
                .map(|i| {
                    format!(
                        "server.{}=127.0.0.1:{}:{}\n",
                        i + 1,
                        ports[per_node * i + 1],
                        ports[per_node * i + 2]
                    )
                })
                .collect();
            for (i, node) in nodes.iter_mut().enumerate() {
                node.client_port = ports[per_node * i];
                node.secure_port = (per_node == 4).then(|| ports[per_node * i + 3]);
                let cfg = format!(
                    "{}{}initLimit={}\nsyncLimit={}\n{servers}{}",
                    config.common_cfg(&node.data_dir, node.client_port),
                    config.secure_cfg(node.secure_port),
                    config.init_limit,
                    config.sync_limit,
                    extra_lines(&config)
                );
                node.write_config(&cfg, &config)?;
                std::fs::write(node.data_dir.join("myid"), format!("{}\n", i + 1))
                    .map_err(|e| node.io_err("writing myid", e))?;
            }
            match boot(&mut nodes, &targets, &config, quorum_ready).await {
                Ok(()) => {
                    let ensemble = Self { config, nodes, dir };
                    tracing::info!(connect = %ensemble.connect_string(), "Apache ZooKeeper ensemble serving");
                    return Ok(ensemble);
                }
                Err(BootFail::Clash(tail)) => {
                    tracing::warn!("port clash starting the ensemble; retrying on new ports");
                    last_tail = tail;
                }
                Err(BootFail::Fatal(e)) => return Err(e),
            }
        }
        Err(ApacheError::PortClash {
            attempts: MAX_START_ATTEMPTS,
            log_tail: last_tail,
        })
    }

    fn check(&self, index: usize) -> Result<(), ApacheError> {
        if index < self.nodes.len() {
            Ok(())
        } else {
            Err(ApacheError::NoSuchMember {
                index,
                len: self.nodes.len(),
            })
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the ensemble has no members (never true for a started ensemble).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Client address of member `index`. Panics if out of range.
    pub fn addr(&self, index: usize) -> SocketAddr {
        self.nodes[index].addr()
    }

    /// Client addresses of all members, by index.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(Node::addr).collect()
    }

    /// TLS client addresses of all members, by index (empty without [`ApacheConfig::tls`]).
    pub fn secure_addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().filter_map(Node::secure_addr).collect()
    }

    /// The TLS connect string `host:s1,host:s2,...` in member order (empty without
    /// [`ApacheConfig::tls`]); `host` is the name the client checks certificates against.
    pub fn secure_connect_string(&self, host: &str) -> String {
        self.secure_addrs()
            .iter()
            .map(|a| format!("{host}:{}", a.port()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `127.0.0.1:p1,127.0.0.1:p2,...` in member order.
    pub fn connect_string(&self) -> String {
        self.addrs()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The configuration the ensemble was started with.
    pub fn config(&self) -> &ApacheConfig {
        &self.config
    }

    /// The temporary directory holding one `node<myid>/` directory per member.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// JVM pid of member `index` while started. Panics if out of range.
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.nodes[index].pid()
    }

    /// JVM pids of all started members.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(Node::pid).collect()
    }

    /// Whether member `index`'s JVM is running. Panics if out of range.
    pub fn is_running(&mut self, index: usize) -> bool {
        self.nodes[index].is_running()
    }

    /// The last `lines` lines of member `index`'s log. Panics if out of range.
    pub fn log_tail(&self, index: usize, lines: usize) -> String {
        self.nodes[index].log_tail(lines)
    }

    /// Sends a four-letter word to member `index`.
    pub async fn four_letter_word(&self, index: usize, word: &str) -> io::Result<String> {
        if index >= self.nodes.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no ensemble member {index}"),
            ));
        }
        four_letter_word(self.addr(index), word).await
    }

    /// The serving mode of member `index` per `srvr` (`leader`, `follower`, `read-only`, ...),
    /// or `None` when it does not answer or is not serving.
    pub async fn mode(&self, index: usize) -> Option<String> {
        let addr = self.nodes.get(index)?.addr();
        let answer = four_letter_word_timeout(addr, "srvr", Duration::from_secs(5))
            .await
            .ok()?;
        serving_mode(&answer)
    }

    /// The modes of all members (queried concurrently).
    pub async fn modes(&self) -> Vec<Option<String>> {
        join_all((0..self.nodes.len()).map(|i| self.mode(i))).await
    }

    /// The member that currently says `Mode: leader`, if any.
    pub async fn leader(&self) -> Option<usize> {
        self.modes()
            .await
            .iter()
            .position(|m| m.as_deref() == Some("leader"))
    }

    /// Waits (bounded) until some member serves as leader; returns its index.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<usize, ApacheError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut backoff = Backoff::new();
        loop {
            let modes = self.modes().await;
            if let Some(i) = modes.iter().position(|m| m.as_deref() == Some("leader")) {
                return Ok(i);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApacheError::Timeout {
                    what: "a leader".into(),
                    timeout,
                    detail: format!("member modes: {modes:?}"),
                });
            }
            backoff.pause().await;
        }
    }

    /// Waits (bounded) until member `index` serves in a mode accepted by `accept` (e.g.
    /// `|m| m == "read-only"`); returns that mode.
    pub async fn wait_for_mode(
        &self,
        index: usize,
        timeout: Duration,
        accept: impl Fn(&str) -> bool,
    ) -> Result<String, ApacheError> {
        self.check(index)?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut backoff = Backoff::new();
        loop {
            let mode = self.mode(index).await;
            if let Some(m) = mode.as_deref().filter(|m| accept(m)) {
                return Ok(m.to_owned());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApacheError::Timeout {
                    what: format!("member {index} to serve in the expected mode"),
                    timeout,
                    detail: format!("last mode: {mode:?}"),
                });
            }
            backoff.pause().await;
        }
    }

    /// Waits (bounded) until every running member serves as leader or follower, with
    /// exactly one leader, and returns the leader's index.
    pub async fn wait_for_quorum(&mut self, timeout: Duration) -> Result<usize, ApacheError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut backoff = Backoff::new();
        loop {
            let running: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].is_running())
                .collect();
            let modes = self.modes().await;
            let live: Vec<Option<String>> = running.iter().map(|&i| modes[i].clone()).collect();
            if !running.is_empty() && quorum_ready(&live) {
                if let Some(i) = modes.iter().position(|m| m.as_deref() == Some("leader")) {
                    return Ok(i);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApacheError::Timeout {
                    what: "every running member to serve with one leader".into(),
                    timeout,
                    detail: format!("running members: {running:?}, modes: {modes:?}"),
                });
            }
            backoff.pause().await;
        }
    }

    /// Kills member `index` (SIGKILL) and waits until its JVM is gone.
    pub async fn kill(&mut self, index: usize) -> Result<(), ApacheError> {
        self.check(index)?;
        self.nodes[index].kill().await
    }

    /// Stops member `index` gracefully (SIGTERM, then SIGKILL after
    /// [`ApacheConfig::stop_timeout`]) and waits until its JVM is gone.
    pub async fn stop(&mut self, index: usize) -> Result<(), ApacheError> {
        self.check(index)?;
        self.nodes[index].stop(self.config.stop_timeout).await
    }

    /// Starts member `index` (same ports and data) without waiting for it to serve; a no-op
    /// when it is running. Use [`mode`](Self::mode) to watch it, e.g. for read-only mode.
    pub async fn start_member(&mut self, index: usize) -> Result<(), ApacheError> {
        self.check(index)?;
        self.nodes[index].spawn(&self.config)
    }

    /// Stops member `index` if running, starts it again on the same ports and data, and
    /// waits until it serves as leader or follower (so a quorum must be reachable).
    pub async fn restart(&mut self, index: usize) -> Result<(), ApacheError> {
        self.check(index)?;
        self.stop(index).await?;
        let config = self.config.clone();
        restart_nodes(&mut self.nodes, &[index], &config, |m| {
            m[0].as_deref().is_some_and(is_quorum_mode)
        })
        .await
    }

    /// Stops every member gracefully and waits until all JVMs are gone.
    pub async fn stop_all(&mut self) -> Result<(), ApacheError> {
        let timeout = self.config.stop_timeout;
        let mut first_error = None;
        for node in &mut self.nodes {
            if let Err(e) = node.stop(timeout).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Kills every member (SIGKILL) and waits until all JVMs are gone.
    pub async fn kill_all(&mut self) -> Result<(), ApacheError> {
        let mut first_error = None;
        for node in &mut self.nodes {
            if let Err(e) = node.kill().await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Every given member serves as leader or follower, and exactly one is the leader.
fn quorum_ready(modes: &[Option<String>]) -> bool {
    modes
        .iter()
        .all(|m| m.as_deref().is_some_and(is_quorum_mode))
        && modes
            .iter()
            .filter(|m| m.as_deref() == Some("leader"))
            .count()
            == 1
}
