//! ZooKeeper in Docker containers for integration tests, on [`testcontainers`] (re-exported
//! as [`crate::testcontainers`]: use that one and versions never clash). Feature `containers`.
//!
//! * [`ZooKeeper`]: Apache ZooKeeper from the Docker official `zookeeper` image (tag of your
//!   choice, 3.5 to 3.9), configured through the image's `ZOO_*` variables;
//!   [`ZooKeeper::with_image`] for a mirror or private registry.
//! * [`ZkServerLite`]: zk-server-lite in a `FROM scratch` image holding one static binary
//!   (a few MB, serving in well under a second).
//! * [`ZkContainer`]: one running server of either image: its connect string, readiness,
//!   and faults (`stop`/`start_again`, `kill`, `pause`/`unpause`).
//! * [`ZooKeeperEnsemble`]: N Apache members on their own Docker network, addressed by
//!   container name, with per-member faults and network partitions
//!   ([`disconnect`](ZooKeeperEnsemble::disconnect)/[`connect`](ZooKeeperEnsemble::connect)).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use zk_testkit::containers::{ZkContainer, ZooKeeper};
//!
//! let zk = ZkContainer::start(ZooKeeper::default()).await?; // zookeeper:3.8, ready to serve
//! let client = zk_client::Client::connect(&zk.connect_string()).await?;
//! zk.pause().await?; // the server freezes: the client goes Suspended
//! zk.unpause().await?; // ... and resumes the same session
//! # drop(client);
//! # Ok(())
//! # }
//! ```
//!
//! # Readiness
//!
//! [`ZkContainer::start`] returns once the server's `srvr` answer reports a `Mode:` (not on a
//! log line: images log differently, and a server that listens is not yet serving). The
//! images' own [`ready_conditions`](testcontainers::Image::ready_conditions) are empty, so a
//! plain `AsyncRunner::start` returns when the container runs; call
//! [`ZkContainer::wait_ready`] (or use [`ZkContainer::start`]) before using it.
//!
//! # Clean-up
//!
//! A container is removed when its handle is dropped, and on SIGINT, SIGTERM or SIGQUIT
//! (testcontainers' `watchdog`, enabled here). A test process killed with SIGKILL cannot clean
//! up: every container and network started here is labelled [`LABEL`] with the owning process
//! id, and every start first removes those whose process is gone ([`remove_orphans`]).
//!
//! # Errors
//!
//! No Docker engine, or an image that is neither present nor pullable, is a
//! [`ContainerError`] saying how to get one. This crate never turns that into a skipped test;
//! the zk-rs suites do, off CI only, through [`start_or_skip`].

mod ensemble;
mod lite;
mod zookeeper;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testcontainers::bollard;
use testcontainers::core::ContainerPort;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ContainerRequest, Image, ImageExt, TestcontainersError};

pub use ensemble::ZooKeeperEnsemble;
pub use lite::{LITE_IMAGE, ZkServerLite};
pub use zookeeper::{DEFAULT_TAG, OFFICIAL_IMAGE, ZooKeeper};

use crate::util::host::process_alive;
use crate::util::{four_letter_word, four_letter_word_timeout, try_wait_until};

/// The client port inside every container.
pub const CLIENT_PORT: u16 = 2181;
/// Label on every container and network started here; its value is the owning process id.
pub const LABEL: &str = "zk-rs.testkit";
/// When set (the zk-rs CI sets it), [`start_or_skip`] fails instead of skipping.
pub const REQUIRE_ENV: &str = "ZK_REQUIRE_CONTAINERS";
/// The image `tests/container/build-image.sh` builds in the zk-rs repository: Apache
/// ZooKeeper from the host's Debian packages with the official image's contract, for machines
/// without a registry ([`ZooKeeper::local_build`]).
pub const LOCAL_ZOOKEEPER_IMAGE: (&str, &str) = ("zk-rs/zookeeper", "3.8-local");
/// Bound on a start and on the readiness check after a restart.
pub const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a container could not be started or controlled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// No Docker engine answers. Retrying does not help until one runs.
    #[error(
        "no Docker engine answers ({0}): start one (e.g. `sudo systemctl start docker`, Docker Desktop, \
         or colima) or point DOCKER_HOST at one"
    )]
    NoDocker(String),
    /// The image is not present locally and could not be pulled. Retrying does not help
    /// until the image is pulled, built or loaded.
    #[error("image {image} is not available ({cause}); {how_to_get}")]
    ImageUnavailable {
        /// `name:tag`.
        image: String,
        /// What Docker said.
        cause: String,
        /// How to get it.
        how_to_get: String,
    },
    /// A Docker operation failed (through testcontainers).
    #[error("docker: {0}")]
    Docker(#[from] TestcontainersError),
    /// A Docker API call failed (networks, kill, clean-up).
    #[error("docker API: {0}")]
    Api(#[from] bollard::errors::Error),
    /// The server did not report a mode in its `srvr` answer in time. A slow machine may
    /// need a retry; the last answer says more.
    #[error("ZooKeeper in container {id} not serving after {timeout:?}; last srvr probe: {last}")]
    NotReady {
        /// The container id.
        id: String,
        /// How long we waited.
        timeout: Duration,
        /// The last probe's answer or error.
        last: String,
    },
    /// An ensemble member index out of range (a bug in the test).
    #[error("no ensemble member {index} (the ensemble has {len})")]
    NoSuchMember {
        /// The index asked for.
        index: usize,
        /// The ensemble size.
        len: usize,
    },
    /// A local I/O error (choosing a port).
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// An image of a ZooKeeper server for [`ZkContainer`]: serves clients on [`CLIENT_PORT`]
/// and answers `srvr`.
pub trait ServerImage: Image + Send + Sync + 'static {
    /// What to tell a user who does not have the image (how to pull or build it).
    fn how_to_get(&self) -> String;
}

/// The Docker client testcontainers uses, after checking the engine answers.
pub async fn docker() -> Result<bollard::Docker, ContainerError> {
    let docker = testcontainers::core::client::docker_client_instance()
        .await
        .map_err(|e| ContainerError::NoDocker(e.to_string()))?;
    docker
        .ping()
        .await
        .map_err(|e| ContainerError::NoDocker(e.to_string()))?;
    Ok(docker)
}

/// One ZooKeeper server in a container, its client port published on a host port chosen at
/// start and kept across [`stop`](Self::stop)/[`start_again`](Self::start_again) (like a restarted
/// server). Dropping it removes the container.
pub struct ZkContainer<I: Image> {
    container: ContainerAsync<I>,
    host: String,
    addr: SocketAddr,
}

impl<I: Image> fmt::Debug for ZkContainer<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkContainer")
            .field("id", &self.id())
            .field("addr", &self.addr)
            .finish()
    }
}

impl<I: ServerImage> ZkContainer<I> {
    /// Starts `image` (an image or a [`ContainerRequest`] built with
    /// [`ImageExt`]) and waits until the server serves.
    pub async fn start(image: impl Into<ContainerRequest<I>>) -> Result<Self, ContainerError> {
        let request: ContainerRequest<I> = image.into();
        let docker = docker().await?;
        remove_orphans().await;
        let started = Instant::now();
        let descriptor = request.descriptor();
        let how_to_get = request.image().how_to_get();
        // A fixed host port (not Docker's random one) so a stopped and started container is
        // reachable at the same address, like a restarted server.
        let host_port = crate::util::free_ports(1)?
            .first()
            .copied()
            .ok_or_else(|| io::Error::other("no free port"))?;
        let started_container = request
            .with_mapped_port(host_port, ContainerPort::Tcp(CLIENT_PORT))
            .with_label(LABEL, std::process::id().to_string())
            .with_startup_timeout(READY_TIMEOUT)
            .start()
            .await;
        let container = match started_container {
            Ok(container) => container,
            Err(e) => return Err(unavailable_or(e, &descriptor, &how_to_get, &docker).await),
        };
        let container = Self::attach(container, host_port).await?;
        container.wait_ready().await?;
        tracing::info!(id = container.id(), image = %descriptor, addr = %container.addr, elapsed = ?started.elapsed(), "ZooKeeper container serving");
        Ok(container)
    }
}

/// Maps a failed start to [`ContainerError::ImageUnavailable`] when the image is (still)
/// absent locally: testcontainers pulls a missing image first, and that pull failed.
async fn unavailable_or(
    e: TestcontainersError,
    descriptor: &str,
    how_to_get: &str,
    docker: &bollard::Docker,
) -> ContainerError {
    if docker.inspect_image(descriptor).await.is_err() {
        ContainerError::ImageUnavailable {
            image: descriptor.to_owned(),
            cause: e.to_string(),
            how_to_get: how_to_get.to_owned(),
        }
    } else {
        ContainerError::Docker(e)
    }
}

impl<I: Image> ZkContainer<I> {
    /// Wraps a started container whose [`CLIENT_PORT`] is published on `host_port`.
    async fn attach(container: ContainerAsync<I>, host_port: u16) -> Result<Self, ContainerError> {
        let host = container.get_host().await?.to_string();
        let addr = resolve(&host, host_port).await?;
        Ok(Self {
            container,
            host,
            addr,
        })
    }

    /// The container id.
    pub fn id(&self) -> &str {
        self.container.id()
    }

    /// The testcontainers handle (logs, exec, inspect).
    pub fn container(&self) -> &ContainerAsync<I> {
        &self.container
    }

    /// The published client address (e.g. `127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The connect string for a client on the host, e.g. `localhost:32771`.
    pub fn connect_string(&self) -> String {
        format!("{}:{}", self.host, self.addr.port())
    }

    /// Sends a four-letter word through the published port.
    pub async fn four_letter_word(&self, word: &str) -> io::Result<String> {
        four_letter_word(self.addr, word).await
    }

    /// The server's mode from `srvr` (`standalone`, `leader`, `follower`, …), `None` while
    /// it does not serve or does not answer within a second.
    pub async fn mode(&self) -> Option<String> {
        serving_mode(self.addr).await.ok()
    }

    /// Waits (bounded by [`READY_TIMEOUT`]) until `srvr` reports a mode. (`ruok` is no
    /// proof: a server answers `imok` as soon as it listens, before it serves.)
    pub async fn wait_ready(&self) -> Result<(), ContainerError> {
        let addr = self.addr;
        let last = std::sync::Mutex::new(String::from("none yet"));
        let waited = try_wait_until(READY_TIMEOUT, "srvr reports a mode", || async {
            let probe = serving_mode(addr).await;
            let ok = probe.is_ok();
            if let Err(e) = probe
                && let Ok(mut last) = last.lock()
            {
                *last = e;
            }
            ok
        })
        .await;
        waited.map_err(|_| ContainerError::NotReady {
            id: self.id().to_owned(),
            timeout: READY_TIMEOUT,
            last: last.lock().map(|s| s.clone()).unwrap_or_default(),
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
        Ok(self.container.stop_with_timeout(Some(10)).await?)
    }

    /// `docker kill` (SIGKILL: no clean shutdown). The container and its data stay.
    pub async fn kill(&self) -> Result<(), ContainerError> {
        let docker = docker().await?;
        docker
            .kill_container(
                self.id(),
                Some(bollard::query_parameters::KillContainerOptions {
                    signal: "KILL".to_owned(),
                }),
            )
            .await?;
        Ok(())
    }

    /// `docker start` after [`stop`](Self::stop) or [`kill`](Self::kill), then waits until
    /// the server serves again (an ensemble member: until it rejoined a quorum). The data
    /// directory is the container's own, so the data survives.
    pub async fn start_again(&self) -> Result<(), ContainerError> {
        self.container.start().await?;
        self.wait_ready().await
    }

    /// Whether the container is running (paused counts as running).
    pub async fn is_running(&self) -> Result<bool, ContainerError> {
        Ok(self.container.is_running().await?)
    }
}

/// `srvr`'s `Mode:` value, or why there is none (a one-second probe).
async fn serving_mode(addr: SocketAddr) -> Result<String, String> {
    match four_letter_word_timeout(addr, "srvr", Duration::from_secs(1)).await {
        Ok(answer) => answer
            .lines()
            .find_map(|line| line.strip_prefix("Mode: "))
            .map(|mode| mode.trim().to_owned())
            .ok_or_else(|| {
                if answer.is_empty() {
                    "empty answer".to_owned()
                } else {
                    answer.trim().to_owned()
                }
            }),
        Err(e) => Err(e.to_string()),
    }
}

/// The first address of `host:port`, IPv4 preferred (Docker publishes on both).
async fn resolve(host: &str, port: u16) -> Result<SocketAddr, ContainerError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| io::Error::other(format!("{host} resolves to no address")).into())
}

/// Starts `image` for one of the zk-rs suites, or returns `None` after printing a `SKIPPED`
/// line saying why it cannot (no Docker, no image) — unless `$ZK_REQUIRE_CONTAINERS` is set
/// (CI), then it panics. Any other failure panics too: a test skips only for a missing tool,
/// never for a broken one. Library users should call [`ZkContainer::start`] and fail.
pub async fn start_or_skip<I: ServerImage>(
    test: &str,
    image: impl Into<ContainerRequest<I>>,
) -> Option<ZkContainer<I>> {
    crate::init_tracing();
    match ZkContainer::start(image).await {
        Ok(zk) => Some(zk),
        Err(e) => skip_or_panic(test, e),
    }
}

/// The skip policy of [`start_or_skip`] for any start.
pub fn skip_or_panic<T>(test: &str, e: ContainerError) -> Option<T> {
    let missing_tool = matches!(
        e,
        ContainerError::NoDocker(_) | ContainerError::ImageUnavailable { .. }
    );
    if !missing_tool || std::env::var_os(REQUIRE_ENV).is_some() {
        panic!("{test}: {e}");
    }
    // Written to the stderr handle, not with `eprintln!`: libtest captures only the print
    // macros, so `cargo test` shows the line even for a passing test (nextest shows it with
    // `--success-output immediate`).
    use io::Write as _;
    let line = format!("SKIPPED: {test}: {e} (set {REQUIRE_ENV}=1 to make this a failure)\n");
    let _ = io::stderr().write_all(line.as_bytes());
    tracing::warn!(test, err = %e, "container test skipped");
    None
}

/// Removes containers and networks labelled [`LABEL`] whose owning process no longer exists
/// (a test process killed before its `Drop` ran). Best effort: failures are logged only.
pub async fn remove_orphans() {
    let Ok(docker) = docker().await else { return };
    let filters = HashMap::from([("label".to_owned(), vec![LABEL.to_owned()])]);
    let containers = docker
        .list_containers(Some(bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .unwrap_or_default();
    for summary in containers {
        let owner = summary
            .labels
            .as_ref()
            .and_then(|labels| labels.get(LABEL))
            .and_then(|pid| pid.parse::<u32>().ok());
        let (Some(id), Some(pid)) = (summary.id, owner) else {
            continue;
        };
        if process_alive(pid) {
            continue;
        }
        tracing::warn!(%id, pid, "removing a container of a test process that died");
        let removed = docker
            .remove_container(
                &id,
                Some(bollard::query_parameters::RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await;
        if let Err(e) = removed {
            tracing::warn!(%id, err = %e, "could not remove a leaked container");
        }
    }
    ensemble::remove_orphan_networks(&docker, filters).await;
}
