//! `zoo.cfg` parsing (Apache's `QuorumPeerConfig`): `key=value` lines, `#` comments.
//!
//! Known keys: `dataDir`, `dataLogDir`, `clientPort`, `clientPortAddress`,
//! `clientPortListenBacklog`, `tickTime`,
//! `initLimit`, `syncLimit`, `minSessionTimeout`, `maxSessionTimeout`, `maxClientCnxns`,
//! `4lw.commands.whitelist`, `extendedTypesEnabled` (also as
//! `zookeeper.extendedTypesEnabled`), `DigestAuthenticationProvider.superDigest`,
//! `jute.maxbuffer`, `snapCount`, `znode.container.checkIntervalMs`,
//! `znode.container.maxNeverUsedIntervalMs`, our own `zklite.repair` and `zklite.logFormat`,
//! and `server.N=host:quorumPort:electionPort[:role][;[clientAddr:]clientPort]`.
//! `myid` is read from `<dataDir>/myid` by [`Config::load`]. Other keys are kept in
//! [`Config::other`] (Apache turns them into `zookeeper.*` system properties).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::core::CoreConfig;
use crate::four_letter::Whitelist;

/// A config error, with the offending line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A value did not parse.
    #[error("bad value for {key}: {value:?}")]
    BadValue {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Settings that do not fit together.
    #[error("{0}")]
    Invalid(String),
}

/// The binary's log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per event.
    Json,
}

impl LogFormat {
    /// `text` or `json` (any case).
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Role of a quorum member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Votes.
    Participant,
    /// Does not vote.
    Observer,
}

/// One `server.N` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLine {
    /// Host name or address.
    pub host: String,
    /// Quorum (follower ↔ leader) port.
    pub quorum_port: u16,
    /// Leader election port.
    pub election_port: u16,
    /// Participant or observer.
    pub role: Role,
    /// Client address, if given after `;`.
    pub client: Option<String>,
}

/// A parsed `zoo.cfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `dataDir`.
    pub data_dir: Option<String>,
    /// `dataLogDir` (defaults to `dataDir`).
    pub data_log_dir: Option<String>,
    /// `clientPort`.
    pub client_port: Option<u16>,
    /// `clientPortAddress`.
    pub client_port_address: Option<IpAddr>,
    /// `clientPortListenBacklog`: the client port's listen backlog. `None` (unset, or
    /// Apache's "unset" value -1, or 0) means
    /// [`DEFAULT_LISTEN_BACKLOG`](crate::listener::DEFAULT_LISTEN_BACKLOG), not Apache's
    /// platform default of 50, which a burst of connects overflows.
    pub client_port_listen_backlog: Option<u32>,
    /// `tickTime`, ms (default 3000).
    pub tick_time: u32,
    /// `initLimit`, ticks.
    pub init_limit: u32,
    /// `syncLimit`, ticks.
    pub sync_limit: u32,
    /// `minSessionTimeout`, ms (default 2 × tickTime).
    pub min_session_timeout: Option<i32>,
    /// `maxSessionTimeout`, ms (default 20 × tickTime).
    pub max_session_timeout: Option<i32>,
    /// `maxClientCnxns` per IP (default 60; 0 = unlimited).
    pub max_client_cnxns: usize,
    /// `4lw.commands.whitelist` (default `srvr`).
    pub four_letter_whitelist: Whitelist,
    /// `extendedTypesEnabled`.
    pub extended_types: bool,
    /// `DigestAuthenticationProvider.superDigest`.
    pub super_digest: Option<String>,
    /// `jute.maxbuffer`.
    pub jute_max_buffer: usize,
    /// `snapCount`: txns between snapshots (default 100 000).
    pub snap_count: u64,
    /// `znode.container.checkIntervalMs`.
    pub container_check_interval_ms: i64,
    /// `znode.container.maxNeverUsedIntervalMs`.
    pub container_max_never_used_ms: i64,
    /// `zklite.repair`: start over a damaged log by dropping what follows the damage (see
    /// [`crate::recovery::RecoveryOptions::repair`]; default false).
    pub repair: bool,
    /// `zklite.logFormat`: how the binary writes its log (`text` or `json`; default text).
    pub log_format: LogFormat,
    /// `server.N` lines.
    pub servers: BTreeMap<u64, ServerLine>,
    /// This server's id (from `<dataDir>/myid`).
    pub myid: Option<u64>,
    /// Keys not understood here, in file order of first appearance.
    pub other: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: None,
            data_log_dir: None,
            client_port: None,
            client_port_address: None,
            client_port_listen_backlog: None,
            tick_time: 3000,
            init_limit: 10,
            sync_limit: 5,
            min_session_timeout: None,
            max_session_timeout: None,
            max_client_cnxns: 60,
            four_letter_whitelist: Whitelist::apache_default(),
            extended_types: false,
            super_digest: None,
            jute_max_buffer: zk_proto::codec::JUTE_MAX_BUFFER,
            snap_count: 100_000,
            container_check_interval_ms: 60_000,
            container_max_never_used_ms: 0,
            repair: false,
            log_format: LogFormat::Text,
            servers: BTreeMap::new(),
            myid: None,
            other: BTreeMap::new(),
        }
    }
}

fn num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::BadValue {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(ConfigError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
        }),
    }
}

fn parse_server_line(key: &str, value: &str) -> Result<ServerLine, ConfigError> {
    let bad = || ConfigError::BadValue {
        key: key.to_owned(),
        value: value.to_owned(),
    };
    let (addr, client) = match value.split_once(';') {
        Some((a, c)) => (a.trim(), Some(c.trim().to_owned())),
        None => (value.trim(), None),
    };
    let parts: Vec<&str> = addr.split(':').collect();
    if parts.len() < 3 || parts.len() > 4 {
        return Err(bad());
    }
    let role = match parts.get(3).copied() {
        None | Some("participant") => Role::Participant,
        Some("observer") => Role::Observer,
        Some(_) => return Err(bad()),
    };
    Ok(ServerLine {
        host: parts[0].to_owned(),
        quorum_port: parts[1].parse().map_err(|_| bad())?,
        election_port: parts[2].parse().map_err(|_| bad())?,
        role,
        client,
    })
}

impl Config {
    /// Parses the text of a `zoo.cfg`.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(ConfigError::Invalid(format!("not key=value: {line:?}")));
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "dataDir" => cfg.data_dir = Some(value.to_owned()),
                "dataLogDir" => cfg.data_log_dir = Some(value.to_owned()),
                "clientPort" => cfg.client_port = Some(num(key, value)?),
                "clientPortAddress" => cfg.client_port_address = Some(num(key, value)?),
                "clientPortListenBacklog" => {
                    let backlog: i64 = num(key, value)?;
                    cfg.client_port_listen_backlog =
                        (backlog > 0).then(|| u32::try_from(backlog).unwrap_or(u32::MAX));
                }
                "tickTime" => cfg.tick_time = num(key, value)?,
                "initLimit" => cfg.init_limit = num(key, value)?,
                "syncLimit" => cfg.sync_limit = num(key, value)?,
                "minSessionTimeout" => cfg.min_session_timeout = Some(num(key, value)?),
                "maxSessionTimeout" => cfg.max_session_timeout = Some(num(key, value)?),
                "maxClientCnxns" => cfg.max_client_cnxns = num(key, value)?,
                "4lw.commands.whitelist" => cfg.four_letter_whitelist = Whitelist::parse(value),
                "extendedTypesEnabled" | "zookeeper.extendedTypesEnabled" => {
                    cfg.extended_types = parse_bool(key, value)?;
                }
                "DigestAuthenticationProvider.superDigest"
                | "zookeeper.DigestAuthenticationProvider.superDigest" => {
                    cfg.super_digest = Some(value.to_owned());
                }
                "jute.maxbuffer" => cfg.jute_max_buffer = num(key, value)?,
                "snapCount" | "zookeeper.snapCount" => cfg.snap_count = num(key, value)?,
                "znode.container.checkIntervalMs" => {
                    cfg.container_check_interval_ms = num(key, value)?;
                }
                "znode.container.maxNeverUsedIntervalMs" => {
                    cfg.container_max_never_used_ms = num(key, value)?;
                }
                "zklite.repair" => cfg.repair = parse_bool(key, value)?,
                "zklite.logFormat" => {
                    cfg.log_format =
                        LogFormat::parse(value).ok_or_else(|| ConfigError::BadValue {
                            key: key.to_owned(),
                            value: value.to_owned(),
                        })?;
                }
                _ if key.starts_with("server.") => {
                    let id: u64 = num(key, &key["server.".len()..])?;
                    cfg.servers.insert(id, parse_server_line(key, value)?);
                }
                _ => {
                    cfg.other.insert(key.to_owned(), value.to_owned());
                }
            }
        }
        if cfg.tick_time == 0 {
            return Err(ConfigError::Invalid("tickTime must be positive".into()));
        }
        if let (Some(min), Some(max)) = (cfg.min_session_timeout, cfg.max_session_timeout)
            && min > max
        {
            return Err(ConfigError::Invalid(
                "minSessionTimeout must not be larger than maxSessionTimeout".into(),
            ));
        }
        Ok(cfg)
    }

    /// Reads and parses a `zoo.cfg`, plus `<dataDir>/myid` when present.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut cfg = Config::parse(&text)?;
        if let Some(dir) = &cfg.data_dir {
            let myid = Path::new(dir).join("myid");
            if let Ok(text) = std::fs::read_to_string(&myid) {
                cfg.myid = Some(num("myid", &text)?);
            }
        }
        if cfg.extended_types && cfg.myid.unwrap_or(0) > 254 {
            return Err(ConfigError::Invalid(
                "extendedTypesEnabled needs myid <= 254".into(),
            ));
        }
        Ok(cfg)
    }

    /// The client listening address (`clientPortAddress`, default all interfaces;
    /// `clientPort`, default 2181).
    pub fn client_addr(&self) -> SocketAddr {
        let ip = self
            .client_port_address
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        SocketAddr::new(ip, self.client_port.unwrap_or(2181))
    }

    /// The core settings these values imply.
    pub fn core_config(&self) -> CoreConfig {
        let mut core = CoreConfig::with_tick(i64::from(self.tick_time));
        if let Some(min) = self.min_session_timeout {
            core.min_session_timeout = min;
        }
        if let Some(max) = self.max_session_timeout {
            core.max_session_timeout = max;
        }
        core.extended_types = self.extended_types;
        core.super_digest = self.super_digest.clone();
        core.myid = u8::try_from(self.myid.unwrap_or(0)).unwrap_or(u8::MAX);
        core.container_check_interval_ms = self.container_check_interval_ms;
        core.container_max_never_used_ms = self.container_max_never_used_ms;
        core
    }

    /// `key=value` pairs for the `conf` four-letter word.
    pub fn conf_lines(&self) -> Vec<(String, String)> {
        let core = self.core_config();
        let mut out = vec![
            (
                "clientPort".to_owned(),
                self.client_addr().port().to_string(),
            ),
            (
                "clientPortAddress".to_owned(),
                self.client_addr().ip().to_string(),
            ),
            (
                "dataDir".to_owned(),
                self.data_dir.clone().unwrap_or_default(),
            ),
            (
                "dataLogDir".to_owned(),
                self.data_log_dir
                    .clone()
                    .or_else(|| self.data_dir.clone())
                    .unwrap_or_default(),
            ),
            ("tickTime".to_owned(), self.tick_time.to_string()),
            (
                "maxClientCnxns".to_owned(),
                self.max_client_cnxns.to_string(),
            ),
            (
                "minSessionTimeout".to_owned(),
                core.min_session_timeout.to_string(),
            ),
            (
                "maxSessionTimeout".to_owned(),
                core.max_session_timeout.to_string(),
            ),
            ("serverId".to_owned(), self.myid.unwrap_or(0).to_string()),
        ];
        if !self.servers.is_empty() {
            out.push(("initLimit".to_owned(), self.init_limit.to_string()));
            out.push(("syncLimit".to_owned(), self.sync_limit.to_string()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "
# a comment
tickTime=500
dataDir=/var/lib/zk
dataLogDir=/var/log/zk
clientPort=2191
clientPortAddress=127.0.0.1
initLimit=5
syncLimit=2
maxSessionTimeout=9000
maxClientCnxns=0
clientPortListenBacklog=2048
4lw.commands.whitelist=ruok, srvr
extendedTypesEnabled=true
admin.enableServer=false
server.1=zk1:2888:3888
server.2=zk2:2888:3888:observer;127.0.0.1:2182
";

    #[test]
    fn parses_sample() {
        let cfg = Config::parse(SAMPLE).unwrap();
        assert_eq!(cfg.tick_time, 500);
        assert_eq!(cfg.client_addr(), "127.0.0.1:2191".parse().unwrap());
        assert_eq!(cfg.data_log_dir.as_deref(), Some("/var/log/zk"));
        assert_eq!((cfg.init_limit, cfg.sync_limit), (5, 2));
        assert_eq!(cfg.max_client_cnxns, 0);
        assert_eq!(cfg.client_port_listen_backlog, Some(2048));
        assert!(cfg.four_letter_whitelist.allows("ruok"));
        assert!(!cfg.four_letter_whitelist.allows("mntr"));
        assert!(cfg.extended_types);
        assert_eq!(
            cfg.other.get("admin.enableServer").map(String::as_str),
            Some("false")
        );
        assert_eq!(cfg.servers.len(), 2);
        assert_eq!(cfg.servers[&2].role, Role::Observer);
        assert_eq!(cfg.servers[&2].client.as_deref(), Some("127.0.0.1:2182"));
        let core = cfg.core_config();
        assert_eq!(
            (core.min_session_timeout, core.max_session_timeout),
            (1000, 9000)
        );
    }

    #[test]
    fn rejects_bad_values() {
        assert!(Config::parse("tickTime=abc").is_err());
        assert!(Config::parse("tickTime=0").is_err());
        assert!(Config::parse("justtext").is_err());
        assert!(Config::parse("server.1=host:1").is_err());
        assert!(Config::parse("minSessionTimeout=10\nmaxSessionTimeout=5").is_err());
        assert!(Config::parse("clientPortListenBacklog=many").is_err());
        // Apache's "unset" (-1) and 0 mean the default backlog.
        for unset in ["-1", "0"] {
            let cfg = Config::parse(&format!("clientPortListenBacklog={unset}")).unwrap();
            assert_eq!(cfg.client_port_listen_backlog, None);
        }
        let d = Config::parse("").unwrap();
        assert_eq!(d.client_addr().port(), 2181);
        assert_eq!(d.client_port_listen_backlog, None);
        assert!(d.four_letter_whitelist.allows("srvr"));
    }

    #[test]
    fn loads_myid() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("myid"), "3\n").unwrap();
        let cfg_path = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg_path,
            format!("dataDir={}\nclientPort=0\n", dir.path().display()),
        )
        .unwrap();
        let cfg = Config::load(&cfg_path).unwrap();
        assert_eq!(cfg.myid, Some(3));
        assert_eq!(cfg.core_config().myid, 3);
        assert!(Config::load(&dir.path().join("missing.cfg")).is_err());
    }
}
