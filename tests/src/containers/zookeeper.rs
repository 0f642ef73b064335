//! [`ZooKeeper`]: Apache ZooKeeper from the Docker official `zookeeper` image.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use testcontainers::Image;
use testcontainers::core::{ContainerPort, WaitFor};

use super::{CLIENT_PORT, ServerImage};

/// The Docker official image's name.
pub const OFFICIAL_IMAGE: &str = "zookeeper";
/// The default tag: the 3.8 line, what most production ensembles run.
pub const DEFAULT_TAG: &str = "3.8";

/// Apache ZooKeeper from the Docker official `zookeeper` image (any tag from 3.5 to 3.9, or
/// any image with the same contract via [`with_image`](Self::with_image)), configured
/// through the image's `ZOO_*` environment variables.
///
/// Defaults differ from the image's in two test-friendly ways: every four-letter word is
/// allowed (`ZOO_4LW_COMMANDS_WHITELIST=*`) and the admin server is off.
///
/// ```
/// use std::time::Duration;
/// use zk_testkit::containers::ZooKeeper;
/// use zk_testkit::testcontainers::Image;
///
/// let zk = ZooKeeper::default()
///     .with_image("registry.example.com/mirror/zookeeper", "3.9")
///     .tick_time(Duration::from_millis(500))
///     .extended_types(true);
/// assert_eq!(zk.name(), "registry.example.com/mirror/zookeeper");
/// assert_eq!(zk.env("ZOO_TICK_TIME"), Some("500"));
/// ```
#[derive(Debug, Clone)]
pub struct ZooKeeper {
    name: String,
    tag: String,
    env: BTreeMap<String, String>,
    cfg_extra: BTreeMap<String, String>,
}

impl Default for ZooKeeper {
    fn default() -> Self {
        let env = BTreeMap::from([
            ("ZOO_4LW_COMMANDS_WHITELIST".to_owned(), "*".to_owned()),
            ("ZOO_ADMINSERVER_ENABLED".to_owned(), "false".to_owned()),
        ]);
        ZooKeeper {
            name: OFFICIAL_IMAGE.to_owned(),
            tag: DEFAULT_TAG.to_owned(),
            env,
            cfg_extra: BTreeMap::new(),
        }
    }
}

impl ZooKeeper {
    /// The official image with `tag` (e.g. `"3.9"`, `"3.8.4"`, `"3.5"`).
    pub fn official(tag: impl Into<String>) -> Self {
        Self::default().with_image(OFFICIAL_IMAGE, tag)
    }

    /// [`LOCAL_ZOOKEEPER_IMAGE`](super::LOCAL_ZOOKEEPER_IMAGE): the image the zk-rs
    /// repository builds without a registry (`tests/container/build-image.sh`).
    pub fn local_build() -> Self {
        let (name, tag) = super::LOCAL_ZOOKEEPER_IMAGE;
        Self::default().with_image(name, tag)
    }

    /// Another image with the official image's contract (a mirror, a private registry, a
    /// locally built copy).
    pub fn with_image(mut self, name: impl Into<String>, tag: impl Into<String>) -> Self {
        self.name = name.into();
        self.tag = tag.into();
        self
    }

    /// Sets an environment variable of the container (e.g. `JVMFLAGS`).
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// An environment variable as it will be set.
    pub fn env(&self, key: &str) -> Option<&str> {
        self.env.get(key).map(String::as_str)
    }

    /// `tickTime` (`ZOO_TICK_TIME`; the image's default is 2 s).
    pub fn tick_time(self, tick: Duration) -> Self {
        let millis = tick.as_millis().max(1);
        self.with_env("ZOO_TICK_TIME", millis.to_string())
    }

    /// The four-letter words to allow (`ZOO_4LW_COMMANDS_WHITELIST`, e.g. `"srvr,ruok"`;
    /// `srvr` must stay allowed: readiness uses it).
    pub fn four_letter_words(self, whitelist: impl Into<String>) -> Self {
        self.with_env("ZOO_4LW_COMMANDS_WHITELIST", whitelist)
    }

    /// Adds a `zoo.cfg` line (`ZOO_CFG_EXTRA`). Keys the server does not know become
    /// `zookeeper.<key>` system properties, as in any `zoo.cfg`.
    pub fn cfg(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.cfg_extra.insert(key.into(), value.into());
        self
    }

    /// Extended types (TTL nodes): `extendedTypesEnabled=true` in `zoo.cfg`.
    pub fn extended_types(self, on: bool) -> Self {
        self.cfg("extendedTypesEnabled", on.to_string())
    }

    /// `minSessionTimeout` / `maxSessionTimeout`.
    pub fn session_timeouts(mut self, min: Option<Duration>, max: Option<Duration>) -> Self {
        for (key, value) in [("minSessionTimeout", min), ("maxSessionTimeout", max)] {
            match value {
                Some(d) => {
                    self.cfg_extra
                        .insert(key.to_owned(), d.as_millis().to_string());
                }
                None => {
                    self.cfg_extra.remove(key);
                }
            }
        }
        self
    }

    /// Makes this server member `my_id` of an ensemble (`ZOO_MY_ID`) whose members are
    /// `servers` (`ZOO_SERVERS`, e.g. `server.1=zk1:2888:3888;2181 server.2=...`).
    /// [`ZooKeeperEnsemble`](super::ZooKeeperEnsemble) does this for you.
    pub fn ensemble_member(self, my_id: u32, servers: impl Into<String>) -> Self {
        self.with_env("ZOO_MY_ID", my_id.to_string())
            .with_env("ZOO_SERVERS", servers)
    }
}

impl Image for ZooKeeper {
    fn name(&self) -> &str {
        &self.name
    }

    fn tag(&self) -> &str {
        &self.tag
    }

    /// Empty: readiness is `srvr` reporting a mode, which [`ZkContainer::start`](super::ZkContainer::start)
    /// awaits (testcontainers has no wait strategy for it).
    fn ready_conditions(&self) -> Vec<WaitFor> {
        Vec::new()
    }

    fn env_vars(
        &self,
    ) -> impl IntoIterator<Item = (impl Into<Cow<'_, str>>, impl Into<Cow<'_, str>>)> {
        let mut vars: Vec<(String, String)> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !self.cfg_extra.is_empty() {
            let extra: Vec<String> = self
                .cfg_extra
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            vars.push(("ZOO_CFG_EXTRA".to_owned(), extra.join(" ")));
        }
        vars
    }

    fn expose_ports(&self) -> &[ContainerPort] {
        &[ContainerPort::Tcp(CLIENT_PORT)]
    }
}

impl ServerImage for ZooKeeper {
    fn how_to_get(&self) -> String {
        if self.name == crate::containers::LOCAL_ZOOKEEPER_IMAGE.0 {
            "build it from this machine's Debian ZooKeeper and Java with `bash tests/container/build-image.sh` (zk-rs repository)".to_owned()
        } else {
            format!(
                "pull it with `docker pull {}:{}` (needs access to its registry), or use \
                 ZooKeeper::with_image for a mirror or a locally built image",
                self.name, self.tag
            )
        }
    }
}
