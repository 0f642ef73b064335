//! [`ZooKeeperEnsemble`]: N Apache ZooKeeper members on their own Docker network.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::future::try_join_all;
use testcontainers::ImageExt;
use testcontainers::bollard;
use testcontainers::bollard::models::{
    EndpointSettings, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};

use super::{ContainerError, LABEL, READY_TIMEOUT, ZkContainer, ZooKeeper, docker};
use crate::util::host::process_alive;
use crate::util::try_wait_until;

/// Prefix of every network (and container) name: `zk-testkit-<pid>-<n>`.
const NAME_PREFIX: &str = "zk-testkit-";

/// An Apache ZooKeeper ensemble in containers: members `1..=N` named
/// `zk-testkit-<pid>-<n>-<id>` on a user-defined Docker network of their own, each client
/// port published on the host. Faults per member: [`stop`](Self::stop),
/// [`start_member`](Self::start_member), [`kill`](Self::kill), [`pause`](Self::pause)/
/// [`unpause`](Self::unpause), and network partitions: [`disconnect`](Self::disconnect)/
/// [`connect`](Self::connect) a member (it loses its peers *and* its clients, as a host
/// whose link went down).
///
/// Dropping it removes the containers and the network.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use zk_testkit::containers::{ZooKeeper, ZooKeeperEnsemble};
///
/// let ensemble = ZooKeeperEnsemble::start(3, ZooKeeper::default()).await?;
/// let client = zk_client::Client::connect(&ensemble.connect_string()).await?;
/// let serving = client.connected_server().and_then(|server| ensemble.member_at(server.addr));
/// if let Some(index) = serving {
///     ensemble.disconnect(index).await?; // the client fails over, same session
/// }
/// # Ok(())
/// # }
/// ```
pub struct ZooKeeperEnsemble {
    // Declared before the network: the containers go first.
    members: Vec<ZkContainer<ZooKeeper>>,
    names: Vec<String>,
    network: NetworkGuard,
}

impl std::fmt::Debug for ZooKeeperEnsemble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZooKeeperEnsemble")
            .field("network", &self.network.name)
            .field("members", &self.members)
            .finish()
    }
}

impl ZooKeeperEnsemble {
    /// Starts `size` members of `image` (its settings apply to each; `ZOO_MY_ID` and
    /// `ZOO_SERVERS` are set here) and waits until every member serves, one as leader.
    pub async fn start(size: usize, image: ZooKeeper) -> Result<Self, ContainerError> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let docker = docker().await?;
        super::remove_orphans().await;
        let pid = std::process::id();
        let network = format!("{NAME_PREFIX}{pid}-{}", SEQ.fetch_add(1, Ordering::Relaxed));
        docker
            .create_network(NetworkCreateRequest {
                name: network.clone(),
                labels: Some(HashMap::from([(LABEL.to_owned(), pid.to_string())])),
                ..Default::default()
            })
            .await?;
        let network = NetworkGuard { name: network };
        let names: Vec<String> = (1..=size)
            .map(|id| format!("{}-{id}", network.name))
            .collect();
        let servers: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, name)| format!("server.{}={name}:2888:3888;2181", i + 1))
            .collect();
        let servers = servers.join(" ");
        let starts = names.iter().enumerate().map(|(i, name)| {
            let id = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let request = image
                .clone()
                .ensemble_member(id, servers.clone())
                .with_container_name(name.clone())
                .with_hostname(name.clone())
                .with_network(network.name.clone());
            ZkContainer::start(request)
        });
        let members = try_join_all(starts).await?;
        let ensemble = Self {
            members,
            names,
            network,
        };
        ensemble.wait_for_leader(READY_TIMEOUT).await?;
        Ok(ensemble)
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members (never, once started).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Member `index` (0-based; its `ZOO_MY_ID` is `index + 1`).
    pub fn member(&self, index: usize) -> Result<&ZkContainer<ZooKeeper>, ContainerError> {
        self.members.get(index).ok_or(ContainerError::NoSuchMember {
            index,
            len: self.members.len(),
        })
    }

    /// The container (and host) name of member `index` on the ensemble's network.
    pub fn name(&self, index: usize) -> Option<&str> {
        self.names.get(index).map(String::as_str)
    }

    /// The Docker network's name.
    pub fn network(&self) -> &str {
        &self.network.name
    }

    /// The connect string of every member for a client on the host.
    pub fn connect_string(&self) -> String {
        let members: Vec<String> = self.members.iter().map(|m| m.connect_string()).collect();
        members.join(",")
    }

    /// The member whose published address is `addr` (e.g. a client's
    /// `connected_server()`).
    pub fn member_at(&self, addr: SocketAddr) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.addr().port() == addr.port())
    }

    /// Every member's mode (`None`: not serving or not answering).
    pub async fn modes(&self) -> Vec<Option<String>> {
        futures::future::join_all(self.members.iter().map(|m| m.mode())).await
    }

    /// The member that reports `leader` now, if exactly one does.
    pub async fn leader(&self) -> Option<usize> {
        let modes = self.modes().await;
        let mut leaders = modes
            .iter()
            .enumerate()
            .filter(|(_, m)| m.as_deref() == Some("leader"));
        match (leaders.next(), leaders.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// Waits (bounded) until exactly one member leads and every other running, connected
    /// member follows; returns the leader.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<usize, ContainerError> {
        let last = std::sync::Mutex::new(Vec::new());
        let waited = try_wait_until(timeout, "a leader with every member serving", || async {
            let modes = self.modes().await;
            let leaders = modes
                .iter()
                .filter(|m| m.as_deref() == Some("leader"))
                .count();
            let serving = modes.iter().all(Option::is_some);
            if let Ok(mut last) = last.lock() {
                *last = modes;
            }
            leaders == 1 && serving
        })
        .await;
        let last = last.lock().map(|l| l.clone()).unwrap_or_default();
        match waited {
            Ok(()) => self.leader().await.ok_or_else(|| ContainerError::NotReady {
                id: self.network.name.clone(),
                timeout,
                last: "the leader changed".to_owned(),
            }),
            Err(_) => Err(ContainerError::NotReady {
                id: self.network.name.clone(),
                timeout,
                last: format!("modes {last:?}"),
            }),
        }
    }

    /// `docker stop` member `index` (SIGTERM; its data stays).
    pub async fn stop(&self, index: usize) -> Result<(), ContainerError> {
        self.member(index)?.stop().await
    }

    /// `docker start` member `index` again and wait until it serves (rejoined a quorum).
    pub async fn start_member(&self, index: usize) -> Result<(), ContainerError> {
        self.member(index)?.start_again().await
    }

    /// Alias of [`start_member`](Self::start_member).
    pub async fn start_again(&self, index: usize) -> Result<(), ContainerError> {
        self.start_member(index).await
    }

    /// `docker kill` member `index` (SIGKILL).
    pub async fn kill(&self, index: usize) -> Result<(), ContainerError> {
        self.member(index)?.kill().await
    }

    /// `docker pause` member `index`: frozen, its connections open but silent.
    pub async fn pause(&self, index: usize) -> Result<(), ContainerError> {
        self.member(index)?.pause().await
    }

    /// `docker unpause` member `index`.
    pub async fn unpause(&self, index: usize) -> Result<(), ContainerError> {
        self.member(index)?.unpause().await
    }

    /// Partitions member `index` away: disconnects it from the ensemble's network. It loses
    /// its peers and its published port (clients on the host lose it too).
    pub async fn disconnect(&self, index: usize) -> Result<(), ContainerError> {
        let member = self.member(index)?;
        docker()
            .await?
            .disconnect_network(
                &self.network.name,
                NetworkDisconnectRequest {
                    container: member.id().to_owned(),
                    force: Some(true),
                },
            )
            .await?;
        tracing::info!(index, network = %self.network.name, "member disconnected");
        Ok(())
    }

    /// Heals [`disconnect`](Self::disconnect): connects member `index` to the network again
    /// under its name.
    pub async fn connect(&self, index: usize) -> Result<(), ContainerError> {
        let member = self.member(index)?;
        let name = self.names.get(index).cloned().unwrap_or_default();
        docker()
            .await?
            .connect_network(
                &self.network.name,
                NetworkConnectRequest {
                    container: member.id().to_owned(),
                    endpoint_config: Some(EndpointSettings {
                        aliases: Some(vec![name]),
                        ..Default::default()
                    }),
                },
            )
            .await?;
        tracing::info!(index, network = %self.network.name, "member connected");
        Ok(())
    }

    /// Partitions every member in `indices` away (see [`disconnect`](Self::disconnect)).
    pub async fn isolate(&self, indices: &[usize]) -> Result<(), ContainerError> {
        for &index in indices {
            self.disconnect(index).await?;
        }
        Ok(())
    }
}

/// Removes the ensemble's network on drop (after the containers, declared before it).
struct NetworkGuard {
    name: String,
}

impl Drop for NetworkGuard {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop cannot await and may run on any runtime flavour: a short-lived thread with its
        // own runtime and Docker client.
        let removal = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let Ok(runtime) = runtime else { return };
            runtime.block_on(async {
                let Ok(docker) = bollard::Docker::connect_with_local_defaults() else {
                    return;
                };
                // The containers' removal may still be in flight: retry briefly.
                for _ in 0..20 {
                    match docker.remove_network(&name).await {
                        Ok(()) => return,
                        Err(bollard::errors::Error::DockerResponseServerError {
                            status_code: 404,
                            ..
                        }) => return,
                        Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                    }
                }
                tracing::warn!(network = %name, "could not remove the ensemble's network");
            });
        });
        let _ = removal.join();
    }
}

/// Removes networks labelled [`LABEL`] whose owning process is gone.
pub(super) async fn remove_orphan_networks(
    docker: &bollard::Docker,
    filters: HashMap<String, Vec<String>>,
) {
    let networks = docker
        .list_networks(Some(bollard::query_parameters::ListNetworksOptions {
            filters: Some(filters),
        }))
        .await
        .unwrap_or_default();
    for network in networks {
        let Some(name) = network.name else { continue };
        let owner = name
            .strip_prefix(NAME_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = owner else { continue };
        if process_alive(pid) {
            continue;
        }
        tracing::warn!(%name, pid, "removing a network of a test process that died");
        if let Err(e) = docker.remove_network(&name).await {
            tracing::warn!(%name, err = %e, "could not remove a leaked network");
        }
    }
}
