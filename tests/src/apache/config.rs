//! [`ApacheConfig`]: how to run the Apache ZooKeeper JVMs.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// Default class path: the Debian `zookeeper` package jar (its manifest names its
/// dependencies) plus `slf4j-simple` so the server logs (to its log file).
pub const DEFAULT_CLASSPATH: &str =
    "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";

/// Netty jars the TLS server needs beyond those the zookeeper jar's manifest names
/// (`netty-handler` needs `netty-codec`, `netty-transport` needs `netty-resolver`, the epoll
/// transport needs `netty-transport-native-unix-common`). Appended to the class path when
/// [`ApacheConfig::tls`] is set.
pub const NETTY_CLASSPATH: &str = "/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar:/usr/share/java/netty-transport-native-unix-common.jar";

/// The server connection factory that serves TLS (the default NIO one cannot).
pub const NETTY_FACTORY: &str = "org.apache.zookeeper.server.NettyServerCnxnFactory";

/// Apache's x509 authentication provider: a client certificate authenticates the session as
/// scheme `x509`, id the certificate's subject DN.
pub const X509_AUTH_PROVIDER: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";

/// Whether a TLS server asks for client certificates (`ssl.clientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApacheClientAuth {
    /// No client certificate asked for.
    None,
    /// Asked for, not required.
    Want,
    /// Required: a handshake without a trusted client certificate fails.
    Need,
}

impl ApacheClientAuth {
    fn as_str(self) -> &'static str {
        match self {
            ApacheClientAuth::None => "none",
            ApacheClientAuth::Want => "want",
            ApacheClientAuth::Need => "need",
        }
    }
}

/// TLS on Apache's `secureClientPort`, with PEM key and trust stores
/// (`ssl.keyStore.type=PEM`). The server keeps its plain `clientPort` as well (readiness
/// and four-letter words use it); its TLS port is
/// [`ApacheServer::secure_addr`](super::ApacheServer::secure_addr).
///
/// ```no_run
/// use zk_testkit::tls::TestCa;
/// use zk_testkit::{ApacheClientAuth, ApacheConfig, ApacheServer, ApacheTls};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let ca = TestCa::new("test CA")?;
/// let server_id = ca.issue_server(&["localhost", "127.0.0.1"])?;
/// let tls = ApacheTls::new(ca.cert_pem(), &server_id).client_auth(ApacheClientAuth::Need);
/// let server = ApacheServer::start_with(ApacheConfig::new().tls(tls)).await?;
/// println!("TLS on {:?}", server.secure_addr());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ApacheTls {
    /// The server certificate (chain) and key, in one PEM document.
    pub server_pem: String,
    /// The CA certificates the server trusts for client certificates, PEM.
    pub trust_pem: String,
    /// `ssl.clientAuth`. Default [`ApacheClientAuth::None`] (Apache's own default is
    /// `need`).
    pub client_auth: ApacheClientAuth,
    /// Registers the x509 authentication provider (`authProvider.x509`), needed when client
    /// certificates are asked for: without it the server closes such connections. Default
    /// true.
    pub x509_auth: bool,
}

impl ApacheTls {
    /// Serves `server` (its certificate and key), trusting `trust_pem` for clients.
    pub fn new(trust_pem: &str, server: &crate::tls::Identity) -> ApacheTls {
        ApacheTls {
            server_pem: server.combined_pem(),
            trust_pem: trust_pem.to_owned(),
            client_auth: ApacheClientAuth::None,
            x509_auth: true,
        }
    }

    /// Sets [`client_auth`](Self::client_auth).
    pub fn client_auth(mut self, client_auth: ApacheClientAuth) -> Self {
        self.client_auth = client_auth;
        self
    }

    /// The key and trust store files, in a server's directory.
    fn paths(dir: &std::path::Path) -> (PathBuf, PathBuf) {
        (dir.join("tls-server.pem"), dir.join("tls-trust.pem"))
    }

    /// Writes the key and trust stores into `dir` (the directory of the server's `zoo.cfg`).
    pub(crate) fn write_files(&self, dir: &std::path::Path) -> std::io::Result<()> {
        let (key_store, trust_store) = Self::paths(dir);
        std::fs::write(key_store, &self.server_pem)?;
        std::fs::write(trust_store, &self.trust_pem)
    }

    fn java_properties(&self, dir: &std::path::Path) -> Vec<(String, String)> {
        let (key_store, trust_store) = Self::paths(dir);
        let mut props: Vec<(String, String)> = vec![
            ("zookeeper.serverCnxnFactory".into(), NETTY_FACTORY.into()),
            (
                "zookeeper.ssl.keyStore.location".into(),
                key_store.display().to_string(),
            ),
            ("zookeeper.ssl.keyStore.type".into(), "PEM".into()),
            (
                "zookeeper.ssl.trustStore.location".into(),
                trust_store.display().to_string(),
            ),
            ("zookeeper.ssl.trustStore.type".into(), "PEM".into()),
            (
                "zookeeper.ssl.clientAuth".into(),
                self.client_auth.as_str().into(),
            ),
        ];
        if self.x509_auth {
            props.push((
                "zookeeper.authProvider.x509".into(),
                X509_AUTH_PROVIDER.into(),
            ));
        }
        props
    }
}

/// Apache's SASL authentication provider: a session that passed SASL authentication is
/// `sasl:<user>` for ACLs.
pub const SASL_AUTH_PROVIDER: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

/// The JAAS login module holding `DIGEST-MD5` users (`user_<name>="<password>"`).
pub const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";

/// SASL `DIGEST-MD5` users: a JAAS file with a `Server` section of
/// [`DIGEST_LOGIN_MODULE`] beside `zoo.cfg`, named by `-Djava.security.auth.login.config`,
/// and the `sasl` authentication provider (`-Dzookeeper.authProvider.sasl`, so ACLs like
/// `sasl:bob:cdrwa` are accepted). Clients without SASL are still served (no
/// `sessionRequireClientSASLAuth`).
///
/// ```no_run
/// use zk_testkit::{ApacheConfig, ApacheSasl, ApacheServer};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let sasl = ApacheSasl::new().user("bob", "bobsecret");
/// let server = ApacheServer::start_with(ApacheConfig::new().sasl(sasl)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ApacheSasl {
    /// The users and their passwords.
    pub users: Vec<(String, String)>,
}

impl ApacheSasl {
    /// No users yet.
    pub fn new() -> ApacheSasl {
        ApacheSasl::default()
    }

    /// Adds a user (names and passwords must not contain `"` or white space).
    pub fn user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.users.push((name.into(), password.into()));
        self
    }

    fn jaas_path(dir: &std::path::Path) -> PathBuf {
        dir.join("jaas.conf")
    }

    /// The JAAS configuration text.
    pub fn jaas(&self) -> String {
        let mut s = format!("Server {{\n    {DIGEST_LOGIN_MODULE} required");
        for (name, password) in &self.users {
            let _ = write!(s, "\n    user_{name}=\"{password}\"");
        }
        s.push_str(";\n};\n");
        s
    }

    /// Writes the JAAS file into `dir` (the directory of the server's `zoo.cfg`).
    pub(crate) fn write_files(&self, dir: &std::path::Path) -> std::io::Result<()> {
        std::fs::write(Self::jaas_path(dir), self.jaas())
    }

    fn java_properties(&self, dir: &std::path::Path) -> Vec<(String, String)> {
        vec![
            (
                "java.security.auth.login.config".into(),
                Self::jaas_path(dir).display().to_string(),
            ),
            (
                "zookeeper.authProvider.sasl".into(),
                SASL_AUTH_PROVIDER.into(),
            ),
        ]
    }
}

/// Environment variable overriding the `java` executable.
pub const JAVA_ENV: &str = "ZK_TESTKIT_JAVA";

/// Environment variable overriding [`DEFAULT_CLASSPATH`].
pub const CLASSPATH_ENV: &str = "ZK_TESTKIT_CLASSPATH";

/// Main class started for every server, standalone or ensemble member.
pub const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// Configuration of Apache ZooKeeper servers started by
/// [`ApacheServer`](super::ApacheServer) and [`ApacheEnsemble`](super::ApacheEnsemble).
///
/// All fields are public; the chained setters are a convenience:
///
/// ```no_run
/// # use std::time::Duration;
/// # use zk_testkit::ApacheConfig;
/// let config = ApacheConfig::new()
///     .tick_time(Duration::from_millis(200))
///     .extended_types(true)
///     .java_property("zookeeper.maxCnxns", "100");
/// ```
#[derive(Debug, Clone)]
pub struct ApacheConfig {
    /// `tickTime`. Default 250 ms: session expiry is checked once per tick and the default
    /// minimum session timeout is 2 ticks, so expiry tests are fast.
    pub tick_time: Duration,
    /// `initLimit` in ticks (ensembles only). Default 40 (10 s at the default tick).
    pub init_limit: u32,
    /// `syncLimit` in ticks (ensembles only). Default 20 (5 s at the default tick), generous
    /// so a slow, loaded machine does not drop followers.
    pub sync_limit: u32,
    /// `minSessionTimeout`; `None` keeps the server default (2 × tick).
    pub min_session_timeout: Option<Duration>,
    /// `maxSessionTimeout`; default 60 s so clients asking for long sessions are not clamped
    /// to the server default (20 × tick). `None` keeps the server default.
    pub max_session_timeout: Option<Duration>,
    /// `-Dzookeeper.extendedTypesEnabled=true` (needed for TTL nodes). Default off.
    pub extended_types: bool,
    /// `-Dreadonlymode.enabled=true` (a member cut off from its quorum serves reads). Default off.
    pub read_only: bool,
    /// `-Dzookeeper.DigestAuthenticationProvider.superDigest=<value>`, e.g.
    /// `super:D/InIHSb7yEEbrWz8b9l71RjZJU=` (see [`ApacheConfig::super_user`]).
    pub super_digest: Option<String>,
    /// Extra Java system properties, passed as `-Dkey=value`.
    pub java_properties: Vec<(String, String)>,
    /// JVM options placed before the system properties. Default: small heap, serial GC,
    /// C1 only, class-data sharing: fast start, small footprint.
    pub jvm_options: Vec<String>,
    /// Extra `zoo.cfg` lines, appended verbatim.
    pub extra_config: Vec<String>,
    /// slf4j-simple log level of the server (`trace`, `debug`, `info`, `warn`, `error`).
    /// Default `info`; the log goes to a file in the server's temporary directory.
    pub log_level: String,
    /// Bound on waiting for a server (or the quorum) to serve. Default 90 s: generous,
    /// it costs nothing when the server comes up in one second.
    pub start_timeout: Duration,
    /// Bound on a graceful stop (SIGTERM) before it escalates to SIGKILL. Default 20 s.
    pub stop_timeout: Duration,
    /// The `java` executable. Default `$ZK_TESTKIT_JAVA` or `java`.
    pub java: PathBuf,
    /// The class path. Default `$ZK_TESTKIT_CLASSPATH` or [`DEFAULT_CLASSPATH`]
    /// ([`NETTY_CLASSPATH`] is added when [`tls`](Self::tls) is set).
    pub classpath: String,
    /// TLS on a `secureClientPort` besides the plain client port. Default none.
    pub tls: Option<ApacheTls>,
    /// SASL `DIGEST-MD5` users (JAAS). Default none.
    pub sasl: Option<ApacheSasl>,
}

impl Default for ApacheConfig {
    fn default() -> Self {
        Self {
            tick_time: Duration::from_millis(250),
            init_limit: 40,
            sync_limit: 20,
            min_session_timeout: None,
            max_session_timeout: Some(Duration::from_secs(60)),
            extended_types: false,
            read_only: false,
            super_digest: None,
            java_properties: Vec::new(),
            jvm_options: [
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Xshare:auto",
                "-XX:-UsePerfData",
                "-Djava.net.preferIPv4Stack=true",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
            extra_config: Vec::new(),
            log_level: "info".to_owned(),
            start_timeout: Duration::from_secs(90),
            stop_timeout: Duration::from_secs(20),
            java: std::env::var_os(JAVA_ENV)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("java")),
            classpath: std::env::var(CLASSPATH_ENV)
                .unwrap_or_else(|_| DEFAULT_CLASSPATH.to_owned()),
            tls: None,
            sasl: None,
        }
    }
}

impl ApacheConfig {
    /// The defaults (see the field docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`tick_time`](Self::tick_time).
    pub fn tick_time(mut self, tick: Duration) -> Self {
        self.tick_time = tick;
        self
    }

    /// Sets [`init_limit`](Self::init_limit) and [`sync_limit`](Self::sync_limit), in ticks.
    pub fn limits(mut self, init_limit: u32, sync_limit: u32) -> Self {
        self.init_limit = init_limit;
        self.sync_limit = sync_limit;
        self
    }

    /// Sets the session timeout bounds (`None` = server default).
    pub fn session_timeouts(mut self, min: Option<Duration>, max: Option<Duration>) -> Self {
        self.min_session_timeout = min;
        self.max_session_timeout = max;
        self
    }

    /// Turns extended types (TTL nodes) on or off.
    pub fn extended_types(mut self, on: bool) -> Self {
        self.extended_types = on;
        self
    }

    /// Turns read-only mode on or off.
    pub fn read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }

    /// Sets the raw super digest (`user:base64(sha1("user:password"))`).
    pub fn super_digest(mut self, digest: impl Into<String>) -> Self {
        self.super_digest = Some(digest.into());
        self
    }

    /// Makes `user` with `password` the super user (computes the digest ZooKeeper expects).
    pub fn super_user(self, user: &str, password: &str) -> Self {
        let digest = super_digest_of(user, password);
        self.super_digest(digest)
    }

    /// Adds a Java system property (`-Dkey=value`).
    pub fn java_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.java_properties.push((key.into(), value.into()));
        self
    }

    /// Adds a verbatim `zoo.cfg` line (e.g. `"snapCount=10"`).
    pub fn config_line(mut self, line: impl Into<String>) -> Self {
        self.extra_config.push(line.into());
        self
    }

    /// Sets the server log level (slf4j-simple).
    pub fn log_level(mut self, level: impl Into<String>) -> Self {
        self.log_level = level.into();
        self
    }

    /// Serves TLS too (see [`ApacheTls`]).
    pub fn tls(mut self, tls: ApacheTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Accepts SASL `DIGEST-MD5` logins (see [`ApacheSasl`]).
    pub fn sasl(mut self, sasl: ApacheSasl) -> Self {
        self.sasl = Some(sasl);
        self
    }

    /// Sets the bound on waiting for the server(s) to serve.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Sets the bound on a graceful stop before it escalates to SIGKILL.
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// The `zoo.cfg` lines common to standalone servers and ensemble members.
    pub(crate) fn common_cfg(&self, data_dir: &std::path::Path, client_port: u16) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "tickTime={}", self.tick_time.as_millis().max(1));
        let _ = writeln!(s, "dataDir={}", data_dir.display());
        let _ = writeln!(s, "clientPort={client_port}");
        let _ = writeln!(s, "clientPortAddress=127.0.0.1");
        let _ = writeln!(s, "clientPortListenBacklog=1024");
        let _ = writeln!(s, "admin.enableServer=false");
        let _ = writeln!(s, "4lw.commands.whitelist=*");
        if let Some(t) = self.min_session_timeout {
            let _ = writeln!(s, "minSessionTimeout={}", t.as_millis());
        }
        if let Some(t) = self.max_session_timeout {
            let _ = writeln!(s, "maxSessionTimeout={}", t.as_millis());
        }
        s
    }

    /// The `zoo.cfg` lines for the TLS port (none without [`tls`](Self::tls)).
    pub(crate) fn secure_cfg(&self, secure_port: Option<u16>) -> String {
        match (&self.tls, secure_port) {
            (Some(_), Some(port)) => {
                format!("secureClientPort={port}\nsecureClientPortAddress=127.0.0.1\n")
            }
            _ => String::new(),
        }
    }

    /// The JVM command line (without the config file argument).
    pub(crate) fn java_command(&self, cfg_path: &std::path::Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![self.java.clone().into_os_string()];
        args.extend(self.jvm_options.iter().map(OsString::from));
        let mut props: Vec<(String, String)> = vec![
            ("zookeeper.admin.enableServer".into(), "false".into()),
            // Tests need no fsync durability against power loss, only against process death.
            ("zookeeper.forceSync".into(), "no".into()),
            // Do not preallocate 64 MiB per transaction log.
            ("zookeeper.preAllocSize".into(), "1024".into()),
            (
                "org.slf4j.simpleLogger.defaultLogLevel".into(),
                self.log_level.clone(),
            ),
            ("org.slf4j.simpleLogger.showDateTime".into(), "true".into()),
            (
                "org.slf4j.simpleLogger.dateTimeFormat".into(),
                "HH:mm:ss.SSS".into(),
            ),
        ];
        if self.extended_types {
            props.push(("zookeeper.extendedTypesEnabled".into(), "true".into()));
        }
        if self.read_only {
            props.push(("readonlymode.enabled".into(), "true".into()));
        }
        if let Some(d) = &self.super_digest {
            props.push((
                "zookeeper.DigestAuthenticationProvider.superDigest".into(),
                d.clone(),
            ));
        }
        if let Some(tls) = &self.tls {
            let dir = cfg_path.parent().unwrap_or(std::path::Path::new("."));
            props.extend(tls.java_properties(dir));
        }
        if let Some(sasl) = &self.sasl {
            let dir = cfg_path.parent().unwrap_or(std::path::Path::new("."));
            props.extend(sasl.java_properties(dir));
        }
        props.extend(self.java_properties.iter().cloned());
        args.extend(
            props
                .into_iter()
                .map(|(k, v)| OsString::from(format!("-D{k}={v}"))),
        );
        args.push("-cp".into());
        if self.tls.is_some() {
            args.push(format!("{}:{NETTY_CLASSPATH}", self.classpath).into());
        } else {
            args.push(self.classpath.clone().into());
        }
        args.push(MAIN_CLASS.into());
        args.push(cfg_path.as_os_str().to_owned());
        args
    }
}

/// The digest ZooKeeper's `DigestAuthenticationProvider` stores for `user`/`password`:
/// `user:base64(sha1("user:password"))`.
pub fn super_digest_of(user: &str, password: &str) -> String {
    let hash = sha1(format!("{user}:{password}").as_bytes());
    format!("{user}:{}", base64(&hash))
}

fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hv, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hv = hv.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, v) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&v.to_be_bytes());
    }
    out
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_known_vectors() {
        let hex = |b: [u8; 20]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    #[test]
    fn base64_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    #[test]
    fn zookeeper_super_digest() {
        // Value printed by `DigestAuthenticationProvider super:test` (ZooKeeper docs).
        assert_eq!(
            super_digest_of("super", "test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
    }
}
