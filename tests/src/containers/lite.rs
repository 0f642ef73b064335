//! [`ZkServerLite`]: zk-server-lite in a container.

use std::collections::BTreeMap;
use std::time::Duration;

use testcontainers::Image;
use testcontainers::core::{ContainerPort, CopyToContainer, WaitFor};

use super::{CLIENT_PORT, ServerImage};

/// The image `tests/container/build-lite-image.sh` builds.
pub const LITE_IMAGE: (&str, &str) = ("zk-rs/zk-server-lite", "local");

/// zk-server-lite in a container: a `FROM scratch` image holding one statically linked
/// `zk-server-lite` binary, which reads `/conf/zoo.cfg` (written here from the settings).
///
/// Same API as Apache's [`ZooKeeper`](super::ZooKeeper) image: start it with
/// [`ZkContainer::start`](super::ZkContainer::start). Zab quorum: not yet (standalone only).
///
/// ```
/// use std::time::Duration;
/// use zk_testkit::containers::ZkServerLite;
///
/// let lite = ZkServerLite::default().tick_time(Duration::from_millis(100)).extended_types(true);
/// assert!(lite.zoo_cfg().contains("tickTime=100\n"));
/// ```
#[derive(Debug, Clone)]
pub struct ZkServerLite {
    name: String,
    tag: String,
    cfg: BTreeMap<String, String>,
    copy: Vec<CopyToContainer>,
}

impl Default for ZkServerLite {
    fn default() -> Self {
        let cfg = BTreeMap::from([
            ("clientPort".to_owned(), CLIENT_PORT.to_string()),
            ("tickTime".to_owned(), "2000".to_owned()),
            ("dataDir".to_owned(), "/tmp/zk-data".to_owned()),
            ("4lw.commands.whitelist".to_owned(), "*".to_owned()),
        ]);
        ZkServerLite {
            name: LITE_IMAGE.0.to_owned(),
            tag: LITE_IMAGE.1.to_owned(),
            cfg,
            copy: Vec::new(),
        }
        .render()
    }
}

impl ZkServerLite {
    /// Another image with the same contract (`ENTRYPOINT ["/zk-server-lite"]`, reads
    /// `/conf/zoo.cfg`), e.g. the image pushed to your registry.
    pub fn with_image(mut self, name: impl Into<String>, tag: impl Into<String>) -> Self {
        self.name = name.into();
        self.tag = tag.into();
        self
    }

    /// Sets a `zoo.cfg` line (the keys zk-server-lite reads: `tickTime`,
    /// `minSessionTimeout`, `maxSessionTimeout`, `extendedTypesEnabled`, `maxClientCnxns`, …).
    pub fn cfg(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.cfg.insert(key.into(), value.into());
        self.render()
    }

    /// `tickTime`.
    pub fn tick_time(self, tick: Duration) -> Self {
        let millis = tick.as_millis().max(1);
        self.cfg("tickTime", millis.to_string())
    }

    /// Extended types (TTL nodes).
    pub fn extended_types(self, on: bool) -> Self {
        self.cfg("extendedTypesEnabled", on.to_string())
    }

    /// `minSessionTimeout` / `maxSessionTimeout` (`None`: the server's default).
    pub fn session_timeouts(mut self, min: Option<Duration>, max: Option<Duration>) -> Self {
        for (key, value) in [("minSessionTimeout", min), ("maxSessionTimeout", max)] {
            match value {
                Some(d) => {
                    self.cfg.insert(key.to_owned(), d.as_millis().to_string());
                }
                None => {
                    self.cfg.remove(key);
                }
            }
        }
        self.render()
    }

    /// The `zoo.cfg` the container will read.
    pub fn zoo_cfg(&self) -> String {
        self.cfg.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }

    fn render(mut self) -> Self {
        self.copy = vec![CopyToContainer::new(
            self.zoo_cfg().into_bytes(),
            "/conf/zoo.cfg",
        )];
        self
    }
}

impl Image for ZkServerLite {
    fn name(&self) -> &str {
        &self.name
    }

    fn tag(&self) -> &str {
        &self.tag
    }

    /// Empty: readiness is `srvr` reporting a mode (see [`ZkContainer::start`](super::ZkContainer::start)).
    fn ready_conditions(&self) -> Vec<WaitFor> {
        Vec::new()
    }

    fn copy_to_sources(&self) -> impl IntoIterator<Item = &CopyToContainer> {
        &self.copy
    }

    fn expose_ports(&self) -> &[ContainerPort] {
        &[ContainerPort::Tcp(CLIENT_PORT)]
    }
}

impl ServerImage for ZkServerLite {
    fn how_to_get(&self) -> String {
        format!(
            "build it with `bash tests/container/build-lite-image.sh` in the zk-rs repository \
             (a static zk-server-lite in a FROM scratch image, no registry needed), or push \
             that image to your registry and use ZkServerLite::with_image (wanted: {}:{})",
            self.name, self.tag
        )
    }
}
