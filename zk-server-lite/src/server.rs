//! The embeddable server: [`Server::builder`] → [`ServerBuilder::start`] on `127.0.0.1:0`
//! (in memory, or durable in a directory with [`ServerBuilder::data_dir`]), then
//! [`Server::addr`], fault controls ([`Server::expire_session`],
//! [`Server::drop_connection`]), [`Server::stop`] and [`Server::restart`] (same port, same
//! data).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use zk_server_lite::Server;
//!
//! let server = Server::builder().tick_time(200).extended_types(true).start().await?;
//! let addr = server.addr(); // give this to a client
//! // ... later, simulate trouble:
//! for session in server.sessions() {
//!     server.expire_session(session);
//! }
//! server.stop().await;
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::core::{Core, CoreConfig};
use crate::disk::{Disk, RealDisk};
use crate::file_storage;
use crate::four_letter::{ServerInfo, Whitelist};
use crate::listener::{self, Limits, Shared, SnapshotPolicy};
use crate::recovery::{self, RecoveryError, RecoveryOptions, RecoverySummary};
use crate::storage::{MemLog, TxnLog};

/// Makes the transaction log of a server without a data dir (a storage seam for tests).
pub type LogFactory = Arc<dyn Fn() -> Box<dyn TxnLog> + Send + Sync>;

/// Builds a [`Server`].
#[derive(Clone)]
pub struct ServerBuilder {
    addr: SocketAddr,
    core: CoreConfig,
    limits: Limits,
    whitelist: Whitelist,
    conf: Vec<(String, String)>,
    data_dir: Option<PathBuf>,
    data_log_dir: Option<PathBuf>,
    snap_count: u64,
    log_factory: Option<LogFactory>,
    disk: Option<Arc<dyn Disk>>,
    recovery: RecoveryOptions,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("addr", &self.addr)
            .field("core", &self.core)
            .field("limits", &self.limits)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            core: CoreConfig::default(),
            limits: Limits::default(),
            whitelist: Whitelist::All,
            conf: Vec::new(),
            data_dir: None,
            data_log_dir: None,
            snap_count: 100_000,
            log_factory: None,
            disk: None,
            recovery: RecoveryOptions::default(),
        }
    }
}

impl ServerBuilder {
    /// Address to listen on (default `127.0.0.1:0`: a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// `tickTime` in ms (default 2000); session timeouts are clamped to 2..20 ticks unless
    /// set with [`session_timeouts`](Self::session_timeouts) afterwards.
    pub fn tick_time(mut self, ms: u32) -> Self {
        let ms = ms.max(1);
        let keep = CoreConfig {
            tick_ms: i64::from(ms),
            ..CoreConfig::with_tick(i64::from(ms))
        };
        self.core = CoreConfig {
            extended_types: self.core.extended_types,
            super_digest: self.core.super_digest.take(),
            myid: self.core.myid,
            container_check_interval_ms: self.core.container_check_interval_ms,
            container_max_never_used_ms: self.core.container_max_never_used_ms,
            password_secret: self.core.password_secret,
            ..keep
        };
        self
    }

    /// `minSessionTimeout` / `maxSessionTimeout`, ms.
    pub fn session_timeouts(mut self, min_ms: i32, max_ms: i32) -> Self {
        self.core.min_session_timeout = min_ms;
        self.core.max_session_timeout = max_ms;
        self
    }

    /// `zookeeper.extendedTypesEnabled` (TTL nodes).
    pub fn extended_types(mut self, enabled: bool) -> Self {
        self.core.extended_types = enabled;
        self
    }

    /// The super user's digest id, `super:<base64 sha1>` (see [`crate::acl::digest`]).
    pub fn super_digest(mut self, digest: impl Into<String>) -> Self {
        self.core.super_digest = Some(digest.into());
        self
    }

    /// Container/TTL reaper interval and the never-used-container age (0 = never), ms.
    pub fn container_reaping(mut self, check_interval_ms: i64, max_never_used_ms: i64) -> Self {
        self.core.container_check_interval_ms = check_interval_ms;
        self.core.container_max_never_used_ms = max_never_used_ms;
        self
    }

    /// Keep the data in `dir` (log and snapshots; recovered at start). Without it the server
    /// keeps everything in memory.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Put the transaction log in `dir` instead of the data dir (`dataLogDir`).
    pub fn data_log_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_log_dir = Some(dir.into());
        self
    }

    /// Take a snapshot every `n` txns (Apache's `snapCount`, default 100 000).
    pub fn snap_count(mut self, n: u64) -> Self {
        self.snap_count = n.max(1);
        self
    }

    /// Use the log `factory` makes (when there is no data dir): a seam for fault injection,
    /// e.g. a slow or failing disk. A log with a [`Syncer`](crate::storage::Syncer) gets
    /// group commit like the file log.
    pub fn txn_log(mut self, factory: LogFactory) -> Self {
        self.log_factory = Some(factory);
        self
    }

    /// Keep the data dir on `disk` instead of the real filesystem (the data dir paths are
    /// then paths on that disk): a seam for crash and fault tests with a
    /// [`FaultDisk`](crate::fault_disk::FaultDisk).
    pub fn disk(mut self, disk: Arc<dyn Disk>) -> Self {
        self.disk = Some(disk);
        self
    }

    /// How start-up treats a damaged or incomplete data dir (default: refuse; see
    /// [`crate::recovery`]).
    pub fn recovery(mut self, options: RecoveryOptions) -> Self {
        self.recovery = options;
        self
    }

    /// Network limits (frame size, connection caps, output queue bound, listen backlog).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Four-letter-word whitelist (default for embedded servers: all).
    pub fn four_letter_words(mut self, whitelist: Whitelist) -> Self {
        self.whitelist = whitelist;
        self
    }

    /// Settings from a parsed `zoo.cfg`.
    pub fn config(mut self, cfg: &Config) -> Self {
        self.addr = cfg.client_addr();
        self.core = cfg.core_config();
        self.limits.max_client_cnxns = cfg.max_client_cnxns;
        self.limits.max_frame_len = cfg.jute_max_buffer;
        self.limits.listen_backlog = cfg
            .client_port_listen_backlog
            .unwrap_or(listener::DEFAULT_LISTEN_BACKLOG);
        self.whitelist = cfg.four_letter_whitelist.clone();
        self.conf = cfg.conf_lines();
        self.data_dir = cfg.data_dir.as_ref().map(PathBuf::from);
        self.data_log_dir = cfg.data_log_dir.as_ref().map(PathBuf::from);
        self.snap_count = cfg.snap_count;
        self.recovery.repair = cfg.repair;
        self
    }

    /// Binds and starts serving on the current tokio runtime (after recovering the data
    /// dir, if any).
    ///
    /// Errors say what failed: `cannot listen on <addr>: …`, `data directory <dir>: …`, or
    /// a refusal to start over damaged data (its [`std::io::Error::get_ref`] is then a
    /// [`RecoveryError`], see [`crate::recovery`]). None of them goes away by retrying.
    pub async fn start(self) -> std::io::Result<Server> {
        let builder = self.clone();
        let listener = listener::bind(self.addr, self.limits.listen_backlog).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", self.addr))
        })?;
        let addr = listener.local_addr()?;
        let mut conf = self.conf;
        if conf.is_empty() {
            conf = vec![
                ("clientPort".into(), addr.port().to_string()),
                ("clientPortAddress".into(), addr.ip().to_string()),
                (
                    "dataDir".into(),
                    self.data_dir
                        .as_ref()
                        .map(|d| d.display().to_string())
                        .unwrap_or_default(),
                ),
                ("tickTime".into(), self.core.tick_ms.to_string()),
                (
                    "minSessionTimeout".into(),
                    self.core.min_session_timeout.to_string(),
                ),
                (
                    "maxSessionTimeout".into(),
                    self.core.max_session_timeout.to_string(),
                ),
                ("serverId".into(), self.core.myid.to_string()),
            ];
        }
        let info = ServerInfo {
            whitelist: self.whitelist,
            tick_ms: self.core.tick_ms,
            conf,
            data_dir: self
                .data_dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        };
        let core_cfg = self.core;
        let log_factory = self.log_factory.clone();
        let (shared, recovered) = match &self.data_dir {
            None => (
                Shared::new(self.limits, info, None, |now| match log_factory {
                    Some(make) => Core::with_log(core_cfg, make(), now),
                    // Nothing reads old txns back in memory: keep none.
                    None => Core::with_log(core_cfg, Box::new(MemLog::new(0)), now),
                }),
                None,
            ),
            Some(dir) => {
                let log_dir = self.data_log_dir.clone().unwrap_or_else(|| dir.clone());
                let data_dir = dir.clone();
                let disk = self.disk.clone().unwrap_or_else(RealDisk::shared);
                let recover_disk = Arc::clone(&disk);
                let options = self.recovery;
                let recovered = tokio::task::spawn_blocking(move || {
                    recovery::recover(recover_disk, &data_dir, &log_dir, options)
                })
                .await
                .map_err(std::io::Error::other)?
                .map_err(|e| start_error(e, dir))?;
                let policy = SnapshotPolicy {
                    disk,
                    snap_dir: file_storage::snapshot_dir(dir),
                    log_dir: file_storage::log_dir(self.data_log_dir.as_ref().unwrap_or(dir)),
                    every: self.snap_count,
                };
                let recovery::Recovered {
                    snapshot,
                    txns,
                    log,
                    summary,
                } = recovered;
                let shared = Shared::new(self.limits, info, Some(policy), |now| {
                    Core::restore(core_cfg, Box::new(log), snapshot, txns, now)
                });
                (shared, Some(summary))
            }
        };
        let shared = Arc::new(shared);
        let sync_thread = if shared.is_durable() {
            let s = Arc::clone(&shared);
            Some(
                std::thread::Builder::new()
                    .name("zk-lite-sync".into())
                    .spawn(move || listener::sync_loop(s))?,
            )
        } else {
            None
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(listener::run(Arc::clone(&shared), listener, stop_rx));
        let zxid = shared.lock().core.last_zxid();
        tracing::info!(%addr, zxid = format_args!("{zxid:#x}"), "zk-server-lite listening");
        Ok(Server {
            addr,
            recovered,
            shared,
            stop_tx,
            task: Some(task),
            sync_thread,
            builder,
        })
    }
}

/// A running server. Dropping it stops accepting and closes connections (use
/// [`stop`](Server::stop) to wait for that).
pub struct Server {
    addr: SocketAddr,
    recovered: Option<RecoverySummary>,
    shared: Arc<Shared>,
    stop_tx: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    sync_thread: Option<std::thread::JoinHandle<()>>,
    builder: ServerBuilder,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl Server {
    /// A builder with defaults: `127.0.0.1:0`, tickTime 2000, in memory, all 4lw allowed.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What start-up recovery found and did (`None` for an in-memory server).
    pub fn recovery_summary(&self) -> Option<&RecoverySummary> {
        self.recovered.as_ref()
    }

    /// `host:port`, ready for a client's connect string.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// Ids of the live sessions.
    pub fn sessions(&self) -> Vec<i64> {
        self.shared
            .lock()
            .core
            .sessions()
            .iter()
            .map(|s| s.id)
            .collect()
    }

    /// Runs `f` on the server's core (inspection in tests).
    pub fn with_core<R>(&self, f: impl FnOnce(&Core) -> R) -> R {
        f(&self.shared.lock().core)
    }

    /// Expires a session now, as if its timeout passed: its ephemerals are deleted (watches
    /// fire) and its connection is closed. `false` if there is no such live session.
    pub fn expire_session(&self, session: i64) -> bool {
        let now = self.shared.now();
        let mut state = self.shared.lock();
        let (found, out) = state.core.expire_session(session, now);
        self.shared.emit(&mut state, out);
        found
    }

    /// Drops the TCP connection of a session without a goodbye (the session lives on; the
    /// client reconnects). `false` if the session has no connection here.
    pub fn drop_connection(&self, session: i64) -> bool {
        let conn = self.shared.lock().core.connection_of(session);
        conn.is_some_and(|c| self.shared.kill(c))
    }

    /// Stops accepting, closes every connection and waits for the tasks to end.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        let _ = self.stop_tx.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.shared.stop_sync();
        let sync_thread = self.sync_thread.take();
        let shared = Arc::clone(&self.shared);
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(thread) = sync_thread {
                let _ = thread.join();
            }
            shared.wait_for_snapshot();
        })
        .await;
    }

    /// Stops, then starts again on the same address with the same settings and data (a
    /// process restart, for tests). In-memory servers come back empty.
    pub async fn restart(mut self) -> std::io::Result<Server> {
        self.shutdown().await;
        let builder = self.builder.clone().listen(self.addr);
        builder.start().await
    }
}

/// A recovery failure as an `io::Error` that names the data dir (and keeps the
/// [`RecoveryError`] inside for [`std::io::Error::get_ref`]).
fn start_error(e: RecoveryError, dir: &std::path::Path) -> std::io::Error {
    match e {
        RecoveryError::Storage(crate::storage::StorageError::Io(io)) => {
            let hint = match io.kind() {
                std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                    " (the server needs to write there: check the mount and the owner)"
                }
                std::io::ErrorKind::NotFound => " (create it, or fix dataDir/dataLogDir)",
                _ => "",
            };
            std::io::Error::new(
                io.kind(),
                format!("data directory {}: {io}{hint}", dir.display()),
            )
        }
        other => std::io::Error::other(other),
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop_tx.send(true);
        self.shared.stop_sync();
    }
}
