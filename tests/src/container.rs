//! Apache ZooKeeper in a Docker container, started with [`testcontainers`], for tests that
//! want the real server isolated from the host: its own network namespace, its own
//! filesystem, and faults a process on the host cannot suffer (`docker pause` freezes the
//! whole server; stop and start keep its data).
//!
//! The image (default [`DEFAULT_IMAGE`], or `$ZK_TESTKIT_IMAGE`) is built locally, without a
//! registry, by `tests/container/build-image.sh` (`.ci/setup` runs it): a root filesystem
//! packed from the host's Debian ZooKeeper jars and Java runtime, whose entrypoint runs
//! `ZooKeeperServerMain <clientPort> <dataDir>` with every four-letter word allowed and the
//! admin server off.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use zk_testkit::container::ZooKeeperContainer;
//!
//! let zk = ZooKeeperContainer::start().await?;
//! let client = zk_client::Client::connect(&zk.connect_string()).await?;
//! zk.pause().await?; // the server freezes: the client goes Suspended
//! zk.unpause().await?; // ... and reconnects to the same session
//! # drop(client);
//! # Ok(())
//! # }
//! ```
//!
//! Clean-up: a [`ZooKeeperContainer`] removes its container when dropped (testcontainers'
//! `Drop`), and testcontainers' `watchdog` feature (enabled here) stops and removes it on
//! SIGINT, SIGTERM or SIGQUIT (Ctrl-C, a nextest timeout). testcontainers-rs has no reaper
//! container (Ryuk is testcontainers-java's; there is no knob to turn off), so a test process
//! killed with SIGKILL leaks its container: every container is labelled [`LABEL`] with the
//! owning process id, and [`ZooKeeperContainer::start`] (and `build-image.sh`) first remove
//! labelled containers whose process is gone.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use crate::apache::{four_letter_word, four_letter_word_timeout, process_alive};
use crate::util::try_wait_until;

/// The image `tests/container/build-image.sh` builds.
pub const DEFAULT_IMAGE: &str = "zk-rs/zookeeper:3.8-local";
/// Environment variable naming another image (`name:tag`) with the same entrypoint.
pub const IMAGE_ENV: &str = "ZK_TESTKIT_IMAGE";
/// When set (CI sets it), [`start_or_skip`] fails instead of skipping without Docker or
/// without the image.
pub const REQUIRE_ENV: &str = "ZK_REQUIRE_CONTAINERS";
/// Label on every container started here; its value is the owning process id.
pub const LABEL: &str = "zk-rs.testkit";

/// The client port inside the container.
const CLIENT_PORT: u16 = 2181;
/// Bound on start-up and on the readiness check after a restart.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a container could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// Docker or the image is not available on this machine (see [`start_or_skip`]).
    #[error("containers unavailable: {0}")]
    Unavailable(String),
    /// A Docker operation failed.
    #[error("docker: {0}")]
    Docker(#[from] testcontainers::TestcontainersError),
    /// The server did not report a mode in its `srvr` answer in time.
    #[error("ZooKeeper in container {id} not ready after {timeout:?}")]
    NotReady {
        /// The container id.
        id: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// A local I/O error (choosing a port, running the `docker` CLI).
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The image to start: `$ZK_TESTKIT_IMAGE` or [`DEFAULT_IMAGE`].
pub fn image() -> String {
    std::env::var(IMAGE_ENV).unwrap_or_else(|_| DEFAULT_IMAGE.to_owned())
}

/// Checks (with the `docker` CLI) that the daemon answers and the image exists locally;
/// `Err` says what is missing and how to fix it.
pub async fn check_available() -> Result<(), ContainerError> {
    let image = image();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Id}}", &image])
            .output()
    })
    .await
    .map_err(io::Error::other)?;
    match out {
        Err(e) => Err(ContainerError::Unavailable(format!(
            "cannot run the docker CLI: {e}"
        ))),
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(ContainerError::Unavailable(format!(
            "image {} not usable ({}); build it with `bash tests/container/build-image.sh`",
            self::image(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// Starts a container, or returns `None` after printing why it cannot (no Docker, no
/// image) — unless `$ZK_REQUIRE_CONTAINERS` is set, then it panics. Any other failure
/// panics too: a test should only skip for a missing tool, never for a broken one.
pub async fn start_or_skip(test: &str) -> Option<ZooKeeperContainer> {
    crate::init_tracing();
    match check_available().await {
        Ok(()) => {}
        Err(e) if std::env::var_os(REQUIRE_ENV).is_some() => {
            panic!("{REQUIRE_ENV} is set but {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: {test}: {e} (set {REQUIRE_ENV}=1 to make this a failure)");
            return None;
        }
    }
    match ZooKeeperContainer::start().await {
        Ok(zk) => Some(zk),
        Err(e) => panic!("cannot start ZooKeeper in a container: {e}"),
    }
}

/// A standalone Apache ZooKeeper server in a container, its client port published on a
/// host port chosen at start (kept across [`stop`](Self::stop)/[`start_again`](Self::start_again)).
/// Dropping it removes the container.
pub struct ZooKeeperContainer {
    container: ContainerAsync<GenericImage>,
    addr: SocketAddr,
}

impl fmt::Debug for ZooKeeperContainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZooKeeperContainer")
            .field("id", &self.id())
            .field("addr", &self.addr)
            .finish()
    }
}

impl ZooKeeperContainer {
    /// Starts the image (see [`image`]) and waits until the server serves.
    pub async fn start() -> Result<Self, ContainerError> {
        remove_orphans().await;
        let started = std::time::Instant::now();
        let image = image();
        let (name, tag) = image.rsplit_once(':').unwrap_or((image.as_str(), "latest"));
        // A fixed host port (not Docker's random one) so a stopped and started container is
        // reachable at the same address, like a restarted server.
        let host_port = crate::apache::free_ports(1)?
            .first()
            .copied()
            .ok_or_else(|| io::Error::other("no free port"))?;
        let container = GenericImage::new(name, tag)
            .with_exposed_port(ContainerPort::Tcp(CLIENT_PORT))
            .with_wait_for(WaitFor::message_on_stderr("binding to port"))
            .with_mapped_port(host_port, ContainerPort::Tcp(CLIENT_PORT))
            .with_label(LABEL, std::process::id().to_string())
            .with_startup_timeout(READY_TIMEOUT)
            .start()
            .await?;
        let zk = Self {
            container,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, host_port)),
        };
        zk.wait_ready().await?;
        tracing::info!(id = zk.id(), addr = %zk.addr, elapsed = ?started.elapsed(), "ZooKeeper container ready");
        Ok(zk)
    }

    /// The container id.
    pub fn id(&self) -> &str {
        self.container.id()
    }

    /// The published client address on the host (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The connect string for [`zk_client::Client::connect`].
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// Sends a four-letter word (all are allowed) through the published port.
    pub async fn four_letter_word(&self, word: &str) -> io::Result<String> {
        four_letter_word(self.addr, word).await
    }

    /// Waits (bounded) until the server serves: `srvr` reports a mode. (`ruok` is no
    /// proof: the server answers `imok` as soon as it listens, before it serves.)
    pub async fn wait_ready(&self) -> Result<(), ContainerError> {
        let addr = self.addr;
        try_wait_until(READY_TIMEOUT, "srvr reports a mode", || async move {
            // Short probes: one that hangs (the server half up) must not eat the bound.
            let probe = four_letter_word_timeout(addr, "srvr", Duration::from_secs(1)).await;
            matches!(probe, Ok(ref s) if s.contains("Mode: "))
        })
        .await
        .map_err(|_| ContainerError::NotReady {
            id: self.id().to_owned(),
            timeout: READY_TIMEOUT,
        })
    }

    /// `docker pause`: every process of the server is frozen; connections stay open but
    /// nothing answers.
    pub async fn pause(&self) -> Result<(), ContainerError> {
        Ok(self.container.pause().await?)
    }

    /// `docker unpause`.
    pub async fn unpause(&self) -> Result<(), ContainerError> {
        Ok(self.container.unpause().await?)
    }

    /// `docker stop` (SIGTERM, then SIGKILL after 10 s). The container and its data stay.
    pub async fn stop(&self) -> Result<(), ContainerError> {
        Ok(self.container.stop().await?)
    }

    /// `docker start` after [`stop`](Self::stop), then waits until the server is ready. The
    /// data directory is the container's own, so the data survives.
    pub async fn start_again(&self) -> Result<(), ContainerError> {
        self.container.start().await?;
        self.wait_ready().await
    }

    /// Whether the container is running (paused counts as running).
    pub async fn is_running(&self) -> Result<bool, ContainerError> {
        Ok(self.container.is_running().await?)
    }
}

/// Removes containers labelled [`LABEL`] whose owning process no longer exists (a test
/// process killed before its `Drop` ran). Best effort: failures are logged only.
pub async fn remove_orphans() {
    let listed = tokio::task::spawn_blocking(|| {
        Command::new("docker")
            .args([
                "ps",
                "-a",
                "--filter",
                &format!("label={LABEL}"),
                "--format",
                &format!("{{{{.ID}}}} {{{{.Label \"{LABEL}\"}}}}"),
            ])
            .output()
    })
    .await;
    let Ok(Ok(out)) = listed else { return };
    let stale: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (id, pid) = line.split_once(' ')?;
            let pid: u32 = pid.trim().parse().ok()?;
            (!process_alive(pid)).then(|| id.to_owned())
        })
        .collect();
    if stale.is_empty() {
        return;
    }
    tracing::warn!(?stale, "removing containers of test processes that died");
    let removed = tokio::task::spawn_blocking(move || {
        Command::new("docker")
            .args(["rm", "-f"])
            .args(&stale)
            .output()
    })
    .await;
    if let Ok(Ok(out)) = removed
        && !out.status.success()
    {
        tracing::warn!(err = %String::from_utf8_lossy(&out.stderr), "docker rm failed");
    }
}
