//! Service discovery on the znodes of Curator's `curator-x-discovery`: Rust and Java services
//! register, list and pick each other's instances.
//!
//! # Layout (Curator's)
//!
//! * `<base>/<service name>/<instance id>` holds one [`ServiceInstance`] as Curator's JSON
//!   ([`instance`] module). A [`Dynamic`](ServiceType::Dynamic) instance is an ephemeral
//!   node (gone with its session); [`Static`](ServiceType::Static) and
//!   [`Permanent`](ServiceType::Permanent) ones are persistent;
//!   [`DynamicSequential`](ServiceType::DynamicSequential) is ephemeral sequential.
//! * Missing parents of an instance node are created as containers (Curator's
//!   `creatingParentContainersIfNeeded`); a [`ServiceCache`] creates the service's node as a
//!   persistent node if it is missing, as Curator's cache does.
//! * Registering over an existing node deletes it first, so that watchers see the change.
//!
//! # Session loss
//!
//! A dynamic instance lives as long as the registering session. zk-client keeps one session
//! per [`Client`]; when it ends, every call fails with [`Error::SessionLost`]. Build a new
//! client and hand it to [`ServiceDiscovery::reregister_on`], which registers every instance
//! this discovery registered again (what Curator does on its own after it reconnected with a
//! new session).
//!
//! ```no_run
//! use zk_recipes::discovery::{ProviderStrategy, ServiceDiscovery, ServiceInstance};
//!
//! # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::Error> {
//! let discovery = ServiceDiscovery::new(&client, "/services")?;
//! discovery
//!     .register(&ServiceInstance::new("orders").address("10.0.0.7").port(8080))
//!     .await?;
//!
//! let provider = discovery
//!     .provider("orders")
//!     .strategy(ProviderStrategy::RoundRobin)
//!     .start()
//!     .await?;
//! if let Some(instance) = provider.instance()? {
//!     println!("calling {:?}:{:?}", instance.address, instance.port);
//! }
//! # Ok(()) }
//! ```

pub mod instance;
pub mod provider;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex as StdMutex, PoisonError, RwLock};

use zk_client::{Client, CreateMode, CreateOptions};

/// The JSON crate of [`ServiceInstance::payload`], re-exported so that callers build payloads
/// with the same version.
pub use serde_json;

pub use instance::{ServiceInstance, ServiceType, UriPart, UriSpec};
pub use provider::{
    CacheChanges, DownInstancePolicy, ProviderBuilder, ProviderStrategy, ServiceCache,
    ServiceProvider,
};

use crate::error::{Error, Result};
use crate::paths;

/// How many times registration deletes an existing node and creates it again.
const REGISTER_ATTEMPTS: u32 = 3;

/// Registers, lists and finds service instances under a base path (Curator's
/// `ServiceDiscovery`). Cheap to clone; clones share the registrations.
#[derive(Debug, Clone)]
pub struct ServiceDiscovery {
    base_path: String,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    client: RwLock<Client>,
    /// What we registered: id → (instance, node path).
    registered: StdMutex<BTreeMap<String, (ServiceInstance, String)>>,
}

/// A service name or instance id: one path component.
fn check_component(what: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.contains('/') || value == "." || value == ".." {
        return Err(Error::InvalidPath(format!("{what} {value:?}")));
    }
    Ok(())
}

impl ServiceDiscovery {
    /// Discovery under `base_path` on `client`'s session.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a malformed path.
    pub fn new(client: &Client, base_path: &str) -> Result<ServiceDiscovery> {
        paths::validate_recipe_path(base_path)?;
        Ok(ServiceDiscovery {
            base_path: base_path.to_owned(),
            shared: Arc::new(Shared {
                client: RwLock::new(client.clone()),
                registered: StdMutex::default(),
            }),
        })
    }

    /// The base path.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// The client now in use (the last one given to [`reregister_on`](Self::reregister_on)).
    pub fn client(&self) -> Client {
        self.shared
            .client
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn registered(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (ServiceInstance, String)>> {
        self.shared
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The path of service `name`'s node.
    pub fn service_path(&self, name: &str) -> String {
        paths::join(&self.base_path, name)
    }

    /// Registers `instance` (or registers it again: an existing node is replaced) and
    /// remembers it for [`reregister_on`](Self::reregister_on) and
    /// [`close`](Self::close). Returns the node's path.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for an empty name or id or one with a `/`;
    /// [`Error::SessionLost`] when the session is over; other ZooKeeper errors.
    pub async fn register(&self, instance: &ServiceInstance) -> Result<String> {
        check_component("service name", &instance.name)?;
        check_component("instance id", &instance.id)?;
        let path = create_instance(&self.client(), &self.base_path, instance).await?;
        tracing::info!(%path, "registered a service instance");
        self.registered()
            .insert(instance.id.clone(), (instance.clone(), path.clone()));
        Ok(path)
    }

    /// Replaces the data of a registered instance (Curator's `updateService`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] if this discovery did not register `instance.id`;
    /// [`Error::SessionLost`]; other ZooKeeper errors (`NoNode` if the node is gone).
    pub async fn update(&self, instance: &ServiceInstance) -> Result<()> {
        let path = match self.registered().get(&instance.id) {
            Some((_, path)) => path.clone(),
            None => return Err(Error::InvalidState("update of an unregistered instance")),
        };
        let client = self.client();
        paths::retrying(|| client.set_data(&path, instance.to_json().as_bytes(), None))
            .await
            .map_err(Error::from_session)?;
        if let Some(entry) = self.registered().get_mut(&instance.id) {
            entry.0 = instance.clone();
        }
        Ok(())
    }

    /// Removes a registered instance's node and forgets it. An instance this discovery did
    /// not register is removed by its path (`<base>/<name>/<id>`).
    ///
    /// # Errors
    ///
    /// ZooKeeper errors; a missing node is fine.
    pub async fn unregister(&self, instance: &ServiceInstance) -> Result<()> {
        let path = match self.registered().remove(&instance.id) {
            Some((_, path)) => path,
            None => paths::join(&self.service_path(&instance.name), &instance.id),
        };
        let client = self.client();
        match paths::retrying(|| client.delete(&path, None)).await {
            Ok(()) | Err(zk_client::Error::NoNode) => {
                tracing::info!(%path, "unregistered a service instance");
                Ok(())
            }
            Err(e) => Err(Error::from_session(e)),
        }
    }

    /// The instances this discovery has registered (and would register again).
    pub fn registrations(&self) -> Vec<ServiceInstance> {
        self.registered()
            .values()
            .map(|(instance, _)| instance.clone())
            .collect()
    }

    /// Moves to `client` (a new session, after the old one was lost) and registers every
    /// instance again; later calls use `client`.
    ///
    /// # Errors
    ///
    /// As [`register`](Self::register), for the first instance that fails (the others are
    /// still attempted; call again to retry).
    pub async fn reregister_on(&self, client: &Client) -> Result<()> {
        *self
            .shared
            .client
            .write()
            .unwrap_or_else(PoisonError::into_inner) = client.clone();
        let mut first_error = None;
        for instance in self.registrations() {
            match create_instance(client, &self.base_path, &instance).await {
                Ok(path) => {
                    tracing::info!(%path, "registered a service instance again");
                    if let Some(entry) = self.registered().get_mut(&instance.id) {
                        entry.1 = path;
                    }
                }
                Err(e) => {
                    tracing::warn!(id = %instance.id, error = %e, "could not register again");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The service names (sorted).
    ///
    /// # Errors
    ///
    /// [`Error::SessionLost`]; other ZooKeeper errors. No base node means no services.
    pub async fn names(&self) -> Result<Vec<String>> {
        let client = self.client();
        match paths::retrying(|| client.get_children(&self.base_path)).await {
            Ok(mut names) => {
                names.sort();
                Ok(names)
            }
            Err(zk_client::Error::NoNode) => Ok(Vec::new()),
            Err(e) => Err(Error::from_session(e)),
        }
    }

    /// The instances of service `name`, sorted by id. Nodes whose data is not an instance
    /// are skipped (and logged).
    ///
    /// # Errors
    ///
    /// [`Error::SessionLost`]; other ZooKeeper errors.
    pub async fn instances(&self, name: &str) -> Result<Vec<ServiceInstance>> {
        check_component("service name", name)?;
        read_instances(&self.client(), &self.service_path(name)).await
    }

    /// Instance `id` of service `name`, if registered.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] when its node does not hold an instance;
    /// [`Error::SessionLost`]; other ZooKeeper errors.
    pub async fn instance(&self, name: &str, id: &str) -> Result<Option<ServiceInstance>> {
        check_component("service name", name)?;
        check_component("instance id", id)?;
        let path = paths::join(&self.service_path(name), id);
        let client = self.client();
        match paths::retrying(|| client.get_data(&path)).await {
            Ok((data, _)) => ServiceInstance::from_json(&data).map(Some),
            Err(zk_client::Error::NoNode) => Ok(None),
            Err(e) => Err(Error::from_session(e)),
        }
    }

    /// A watch-driven cache of service `name`'s instances (see [`ServiceCache`]).
    ///
    /// # Errors
    ///
    /// As [`ServiceCache::start`].
    pub async fn cache(&self, name: &str) -> Result<ServiceCache> {
        check_component("service name", name)?;
        ServiceCache::start(&self.client(), &self.service_path(name)).await
    }

    /// A builder for a [`ServiceProvider`] of service `name` (round-robin by default, as
    /// Curator's).
    pub fn provider(&self, name: &str) -> ProviderBuilder {
        ProviderBuilder::new(self.clone(), name)
    }

    /// Unregisters everything this discovery registered (Curator's `close`). A lost session
    /// counts as done: its dynamic instances are gone with it.
    ///
    /// # Errors
    ///
    /// The first ZooKeeper error; the other instances are still attempted.
    pub async fn close(&self) -> Result<()> {
        let mut first_error = None;
        for instance in self.registrations() {
            match self.unregister(&instance).await {
                Ok(()) => {}
                Err(e) if e.is_session_lost() => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Creates `instance`'s node (Curator's `internalRegisterService`); returns its path.
async fn create_instance(
    client: &Client,
    base: &str,
    instance: &ServiceInstance,
) -> Result<String> {
    let parent = paths::join(base, &instance.name);
    let path = paths::join(&parent, &instance.id);
    let mode = match instance.service_type {
        ServiceType::Dynamic => CreateMode::Ephemeral,
        ServiceType::DynamicSequential => CreateMode::EphemeralSequential,
        ServiceType::Static | ServiceType::Permanent => CreateMode::Persistent,
    };
    let options = CreateOptions::new(mode);
    let data = instance.to_json();
    for _ in 0..REGISTER_ATTEMPTS {
        match paths::retrying(|| client.create(&path, data.as_bytes(), &options)).await {
            Ok((created, _)) => return Ok(created),
            Err(zk_client::Error::NoNode) => paths::ensure_path(client, &parent).await?,
            // Ours from a lost reply, or a stale registration: replace it, so that
            // watchers see a change (as Curator does).
            Err(zk_client::Error::NodeExists) => {
                match paths::retrying(|| client.delete(&path, None)).await {
                    Ok(()) | Err(zk_client::Error::NoNode) => {}
                    Err(e) => return Err(Error::from_session(e)),
                }
            }
            Err(e) => return Err(Error::from_session(e)),
        }
    }
    Err(Error::Contention(path))
}

/// Every instance under `service_path`, sorted by id; unreadable ones skipped.
pub(crate) async fn read_instances(
    client: &Client,
    service_path: &str,
) -> Result<Vec<ServiceInstance>> {
    let mut ids = match paths::retrying(|| client.get_children(service_path)).await {
        Ok(ids) => ids,
        Err(zk_client::Error::NoNode) => return Ok(Vec::new()),
        Err(e) => return Err(Error::from_session(e)),
    };
    ids.sort();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let path = paths::join(service_path, &id);
        if let Some(instance) = read_instance(client, &path).await? {
            out.push(instance);
        }
    }
    Ok(out)
}

/// The instance at `path`; `None` when it is gone or does not hold an instance (logged).
pub(crate) async fn read_instance(client: &Client, path: &str) -> Result<Option<ServiceInstance>> {
    match paths::retrying(|| client.get_data(path)).await {
        Ok((data, _)) => match ServiceInstance::from_json(&data) {
            Ok(instance) => Ok(Some(instance)),
            Err(e) => {
                tracing::warn!(%path, error = %e, "skipping a node that is not a service instance");
                Ok(None)
            }
        },
        Err(zk_client::Error::NoNode) => Ok(None),
        Err(e) => Err(Error::from_session(e)),
    }
}
