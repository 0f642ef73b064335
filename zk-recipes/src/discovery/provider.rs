//! [`ServiceCache`] (a watch-driven view of one service's instances) and
//! [`ServiceProvider`] (picks an instance: random, round-robin or sticky, skipping instances
//! marked down), as Curator's `ServiceCache` and `ServiceProvider`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use zk_client::{AddWatchMode, Client, EventType, SessionState};

use super::{ServiceDiscovery, ServiceInstance, read_instance, read_instances};
use crate::error::{Error, Result};
use crate::paths;

/// What a cache holds: instances by id, and whether it ended.
#[derive(Debug, Clone, Default)]
struct View {
    instances: Arc<BTreeMap<String, ServiceInstance>>,
    ended: bool,
}

/// Aborts the cache task when the last handle goes.
#[derive(Debug)]
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A live view of one service's instances, kept by a persistent recursive watch on the
/// service's node (Curator's `ServiceCache`). Cheap to clone; the watch goes when the last
/// clone is dropped.
///
/// The view is loaded before [`start`](Self::start) returns, then follows every create,
/// change and delete under the service; after a reconnect it is read again in full (events
/// that happened while disconnected are not replayed for persistent watches). When the
/// session ends the cache keeps its last view and reports [`is_ended`](Self::is_ended).
#[derive(Debug, Clone)]
pub struct ServiceCache {
    path: String,
    view: watch::Receiver<View>,
    _task: Arc<Task>,
}

impl ServiceCache {
    /// Starts a cache of the instances under `service_path` (`<base>/<name>`), creating that
    /// node (persistent) if it is missing, as Curator's cache does; returns once the first
    /// view is loaded.
    ///
    /// # Errors
    ///
    /// [`Error::SessionLost`]; other ZooKeeper errors (e.g. a server before 3.6, which has
    /// no persistent watches).
    pub async fn start(client: &Client, service_path: &str) -> Result<ServiceCache> {
        paths::ensure_persistent(client, service_path).await?;
        let events = client
            .add_watch(service_path, AddWatchMode::PersistentRecursive)
            .await
            .map_err(Error::from_session)?;
        let states = client.state_changes();
        let first = read_instances(client, service_path).await?;
        let (tx, view) = watch::channel(View {
            instances: Arc::new(first.into_iter().map(|i| (i.id.clone(), i)).collect()),
            ended: false,
        });
        let task = tokio::spawn(run_cache(
            client.clone(),
            service_path.to_owned(),
            tx,
            events,
            states,
        ));
        Ok(ServiceCache {
            path: service_path.to_owned(),
            view,
            _task: Arc::new(Task(task)),
        })
    }

    /// The service node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The instances now known, sorted by id.
    pub fn instances(&self) -> Vec<ServiceInstance> {
        self.view.borrow().instances.values().cloned().collect()
    }

    /// `true` once the cache stopped following changes (its session ended).
    pub fn is_ended(&self) -> bool {
        self.view.borrow().ended
    }

    /// Every change of the view from now on.
    pub fn changes(&self) -> CacheChanges {
        let mut view = self.view.clone();
        view.mark_unchanged();
        CacheChanges { view }
    }
}

/// The changes of a [`ServiceCache`]'s view (see [`ServiceCache::changes`]). Intermediate
/// views may be skipped; the latest one is never missed.
#[derive(Debug)]
pub struct CacheChanges {
    view: watch::Receiver<View>,
}

impl CacheChanges {
    /// The next view, sorted by id; `Err(Error::SessionLost)` once the cache ended.
    /// Cancellation-safe.
    ///
    /// # Errors
    ///
    /// [`Error::SessionLost`] when the session ended.
    pub async fn next(&mut self) -> Result<Vec<ServiceInstance>> {
        if self.view.changed().await.is_err() || self.view.borrow().ended {
            return Err(Error::SessionLost(zk_client::Error::SessionExpired));
        }
        Ok(self
            .view
            .borrow_and_update()
            .instances
            .values()
            .cloned()
            .collect())
    }
}

/// The cache's task: applies each event, reloads after a reconnect, ends with the session.
async fn run_cache(
    client: Client,
    path: String,
    tx: watch::Sender<View>,
    mut events: zk_client::PersistentWatcher,
    mut states: zk_client::StateChanges,
) {
    let prefix = format!("{path}/");
    loop {
        let result = tokio::select! {
            event = events.next() => match event {
                Some(event) if !event.is_session_event() => {
                    apply_event(&client, &path, &prefix, &tx, event.event_type, &event.path).await
                }
                _ => break,
            },
            state = states.next() => match state {
                Some(SessionState::Reconnected) => reload(&client, &path, &tx).await,
                Some(state) if state.is_terminal() => break,
                Some(_) => Ok(()),
                None => break,
            },
        };
        match result {
            Ok(()) => {}
            Err(e) if e.is_session_lost() => break,
            Err(e) => {
                tracing::warn!(%path, error = %e, "service cache could not read; reloading");
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Err(e) = reload(&client, &path, &tx).await {
                    if e.is_session_lost() {
                        break;
                    }
                }
            }
        }
    }
    tracing::info!(%path, "service cache ended with its session");
    tx.send_modify(|view| view.ended = true);
}

async fn reload(client: &Client, path: &str, tx: &watch::Sender<View>) -> Result<()> {
    let instances = read_instances(client, path).await?;
    tx.send_modify(|view| {
        view.instances = Arc::new(instances.into_iter().map(|i| (i.id.clone(), i)).collect());
    });
    Ok(())
}

async fn apply_event(
    client: &Client,
    path: &str,
    prefix: &str,
    tx: &watch::Sender<View>,
    kind: EventType,
    changed: &str,
) -> Result<()> {
    if changed == path {
        if kind == EventType::NodeDeleted {
            tx.send_modify(|view| view.instances = Arc::default());
        }
        return Ok(());
    }
    // Only direct children are instances.
    let Some(id) = changed.strip_prefix(prefix).filter(|id| !id.contains('/')) else {
        return Ok(());
    };
    let instance = match kind {
        EventType::NodeDeleted => None,
        _ => read_instance(client, changed).await?,
    };
    tx.send_if_modified(|view| {
        let current = view.instances.get(id);
        if current == instance.as_ref() {
            return false;
        }
        let mut instances = (*view.instances).clone();
        match &instance {
            Some(instance) => instances.insert(id.to_owned(), instance.clone()),
            None => instances.remove(id),
        };
        view.instances = Arc::new(instances);
        true
    });
    Ok(())
}

/// How a [`ServiceProvider`] picks among the instances that are up (Curator's
/// `ProviderStrategy` implementations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderStrategy {
    /// Any, uniformly at random.
    Random,
    /// In turn, in id order (Curator's default).
    RoundRobin,
    /// The same instance as long as it is there (and up); then a new one chosen by the
    /// inner strategy.
    Sticky(Box<ProviderStrategy>),
}

impl ProviderStrategy {
    /// [`Sticky`](Self::Sticky) over `inner`.
    pub fn sticky(inner: ProviderStrategy) -> ProviderStrategy {
        ProviderStrategy::Sticky(Box::new(inner))
    }
}

/// When an instance counts as down (Curator's `DownInstancePolicy`): after `error_threshold`
/// errors reported with [`ServiceProvider::note_error`], for `timeout` from the first one.
/// Default: 2 errors, 30 s (Curator's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownInstancePolicy {
    /// How long an instance stays down (counted from its first reported error).
    pub timeout: Duration,
    /// How many errors make an instance down.
    pub error_threshold: u32,
}

impl Default for DownInstancePolicy {
    fn default() -> Self {
        DownInstancePolicy {
            timeout: Duration::from_secs(30),
            error_threshold: 2,
        }
    }
}

/// Builds a [`ServiceProvider`] (from [`ServiceDiscovery::provider`]).
#[derive(Debug, Clone)]
pub struct ProviderBuilder {
    discovery: ServiceDiscovery,
    name: String,
    strategy: ProviderStrategy,
    down_policy: DownInstancePolicy,
}

impl ProviderBuilder {
    pub(super) fn new(discovery: ServiceDiscovery, name: &str) -> ProviderBuilder {
        ProviderBuilder {
            discovery,
            name: name.to_owned(),
            strategy: ProviderStrategy::RoundRobin,
            down_policy: DownInstancePolicy::default(),
        }
    }

    /// Sets the strategy (default [`ProviderStrategy::RoundRobin`]).
    pub fn strategy(mut self, strategy: ProviderStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Sets the down-instance policy (default [`DownInstancePolicy::default`]).
    pub fn down_instance_policy(mut self, policy: DownInstancePolicy) -> Self {
        self.down_policy = policy;
        self
    }

    /// Starts the provider's [`ServiceCache`].
    ///
    /// # Errors
    ///
    /// As [`ServiceCache::start`].
    pub async fn start(self) -> Result<ServiceProvider> {
        let cache = self.discovery.cache(&self.name).await?;
        Ok(ServiceProvider {
            cache,
            strategy: self.strategy,
            down_policy: self.down_policy,
            next: Arc::new(AtomicUsize::new(0)),
            sticky: Arc::default(),
            errors: Arc::default(),
        })
    }
}

/// Picks an instance of one service from a [`ServiceCache`] (Curator's
/// `ServiceProvider`). Cheap to clone; clones share the strategy's state and the down
/// marks.
///
/// ```no_run
/// # async fn demo(discovery: zk_recipes::discovery::ServiceDiscovery) -> Result<(), zk_recipes::Error> {
/// let provider = discovery.provider("orders").start().await?;
/// let Some(instance) = provider.instance()? else { return Ok(()) };
/// if call(&instance).await.is_err() {
///     provider.note_error(&instance); // twice in 30 s: skipped for the rest of the 30 s
/// }
/// # Ok(()) }
/// # async fn call(_: &zk_recipes::discovery::ServiceInstance) -> Result<(), ()> { Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ServiceProvider {
    cache: ServiceCache,
    strategy: ProviderStrategy,
    down_policy: DownInstancePolicy,
    next: Arc<AtomicUsize>,
    sticky: Arc<StdMutex<Option<String>>>,
    errors: Arc<StdMutex<HashMap<String, (Instant, u32)>>>,
}

impl ServiceProvider {
    /// An instance chosen by the strategy among those up, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// [`Error::SessionLost`] once the cache's session ended (its view may be stale).
    pub fn instance(&self) -> Result<Option<ServiceInstance>> {
        let up = self.all_instances()?;
        Ok(self.pick(&self.strategy, &up))
    }

    /// Every instance that is up (not marked down, not disabled), sorted by id.
    ///
    /// # Errors
    ///
    /// [`Error::SessionLost`] once the cache's session ended.
    pub fn all_instances(&self) -> Result<Vec<ServiceInstance>> {
        if self.cache.is_ended() {
            return Err(Error::SessionLost(zk_client::Error::SessionExpired));
        }
        let now = Instant::now();
        let mut errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        errors.retain(|_, (since, _)| now.duration_since(*since) < self.down_policy.timeout);
        Ok(self
            .cache
            .instances()
            .into_iter()
            .filter(|i| i.is_enabled())
            .filter(|i| {
                errors
                    .get(&i.id)
                    .is_none_or(|(_, count)| *count < self.down_policy.error_threshold)
            })
            .collect())
    }

    /// Reports that `instance` failed a call (Curator's `noteError`): after the policy's
    /// threshold it is skipped until the policy's timeout has passed since its first error.
    pub fn note_error(&self, instance: &ServiceInstance) {
        let now = Instant::now();
        let mut errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = errors.entry(instance.id.clone()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.down_policy.timeout {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 == self.down_policy.error_threshold {
            tracing::info!(id = %instance.id, "service instance marked down");
        }
    }

    /// The cache behind this provider.
    pub fn cache(&self) -> &ServiceCache {
        &self.cache
    }

    fn pick(&self, strategy: &ProviderStrategy, up: &[ServiceInstance]) -> Option<ServiceInstance> {
        if up.is_empty() {
            return None;
        }
        match strategy {
            ProviderStrategy::Random => {
                let index = paths::random_index(up.len());
                up.get(index).cloned()
            }
            ProviderStrategy::RoundRobin => {
                let index = self.next.fetch_add(1, Ordering::Relaxed) % up.len();
                up.get(index).cloned()
            }
            ProviderStrategy::Sticky(inner) => {
                // Sticky over sticky is sticky over the innermost strategy.
                let mut inner = &**inner;
                while let ProviderStrategy::Sticky(deeper) = inner {
                    inner = deeper;
                }
                let mut sticky = self.sticky.lock().unwrap_or_else(PoisonError::into_inner);
                let kept = sticky
                    .as_ref()
                    .and_then(|id| up.iter().find(|i| &i.id == id));
                if let Some(found) = kept {
                    return Some(found.clone());
                }
                let chosen = self.pick(inner, up);
                *sticky = chosen.as_ref().map(|i| i.id.clone());
                chosen
            }
        }
    }
}
