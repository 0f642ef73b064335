//! [`ClientBuilder`]: every connection setting, with [`Client::connect`] as the shortcut for
//! the defaults.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use zk_proto::codec::JUTE_MAX_BUFFER;
use zk_proto::frame::DEFAULT_MAX_FRAME_LEN;

use crate::client::Client;
use crate::error::Error;
use crate::hosts::ConnectString;
use crate::sasl::DigestCredentials;
use crate::session::Config;
use crate::transport::{Connector, tcp_connector};

/// The default requested session timeout.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(30);

/// The default pause of [`ClientBuilder::coalesce_replies`].
const DEFAULT_COALESCE: Duration = Duration::from_millis(1);

/// Builds a [`Client`].
///
/// ```no_run
/// use std::time::Duration;
/// use zk_client::Client;
///
/// # async fn demo() -> Result<(), zk_client::Error> {
/// let client = Client::builder("zk1:2181,zk2:2181,zk3:2181/app")
///     .session_timeout(Duration::from_secs(10))
///     .request_timeout(Duration::from_secs(5))
///     .auth("digest", "user:secret")
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `connect` is called"]
pub struct ClientBuilder {
    connect_string: String,
    session_timeout: Duration,
    connect_timeout: Option<Duration>,
    attempt_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    read_only: bool,
    fail_fast: bool,
    max_request_size: usize,
    max_reply_size: usize,
    backoff: (Duration, Duration),
    auths: Vec<(String, Bytes)>,
    sasl: Option<DigestCredentials>,
    sasl_service: Option<(String, String)>,
    connector: Connector,
    coalesce: Option<Duration>,
    reconnect_delay: Duration,
    max_queued: usize,
    seed: Option<u64>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("connect_string", &self.connect_string)
            .field("session_timeout", &self.session_timeout)
            .field("read_only", &self.read_only)
            .field("fail_fast", &self.fail_fast)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// A builder for the connect string `h1:p1,h2:p2/chroot` (see
    /// [`ConnectString`]).
    pub fn new(connect_string: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            connect_string: connect_string.into(),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            connect_timeout: None,
            attempt_timeout: None,
            request_timeout: None,
            read_only: false,
            fail_fast: false,
            max_request_size: JUTE_MAX_BUFFER,
            max_reply_size: DEFAULT_MAX_FRAME_LEN,
            backoff: (Duration::from_millis(50), Duration::from_secs(2)),
            auths: Vec::new(),
            sasl: None,
            sasl_service: None,
            connector: tcp_connector(),
            coalesce: Some(DEFAULT_COALESCE),
            reconnect_delay: Duration::from_secs(1),
            max_queued: 100_000,
            seed: None,
        }
    }

    /// The session timeout to ask for (default 30 s). The server clamps it to its
    /// `[minSessionTimeout, maxSessionTimeout]`; [`Client::session_timeout`] tells the
    /// negotiated value.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// How long [`connect`](Self::connect) waits for the first session (default: the
    /// session timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long one server may take to accept the TCP connection and answer the handshake
    /// (default: the session timeout divided by the number of hosts, at most a third of it
    /// and at least 500 ms; the Java client allows the whole session timeout with one host,
    /// so one hung attempt can cost the session).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// How long a request issued while disconnected waits for a connection before failing
    /// with [`Error::Timeout`] (default: the session timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Accept read-only servers (`canBeReadOnly`): when only a partitioned server is
    /// reachable, reads keep working and the state is
    /// [`SessionState::ReadOnly`](crate::SessionState::ReadOnly). While read-only, the client
    /// asks the other servers (`isro`, 100 ms doubling to 60 s) and moves to the first
    /// read-write one.
    ///
    /// Apache ZooKeeper only lets a session *start* on a read-only server (it refuses to move
    /// an existing session there), and needs `localSessionsEnabled=true` for it. Such a
    /// session is local to that server, so it cannot follow the client to a read-write
    /// server: the client then reports it [expired](crate::LostReason::Expired), where the
    /// Java client would open a new session silently.
    pub fn read_only(mut self, allow: bool) -> Self {
        self.read_only = allow;
        self
    }

    /// Fail [`connect`](Self::connect) as soon as one full round of hosts failed, instead
    /// of retrying until the connect timeout.
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// The largest request frame sent (default `jute.maxbuffer`, 1 048 575 bytes, what the
    /// server accepts by default). Larger requests fail with [`Error::TooLarge`] without
    /// being sent.
    pub fn max_request_size(mut self, bytes: usize) -> Self {
        self.max_request_size = bytes;
        self
    }

    /// The largest reply frame accepted (default 2 × `jute.maxbuffer`); a larger one drops
    /// the connection.
    pub fn max_reply_size(mut self, bytes: usize) -> Self {
        self.max_reply_size = bytes;
        self
    }

    /// Back-off between two full rounds of failed hosts: exponential with jitter from `min`
    /// up to `max` (default 50 ms to 2 s).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = (min, max.max(min));
        self
    }

    /// Before reconnecting after a lost connection, wait a random time up to `max` (default
    /// 1 s, and never more than a tenth of the negotiated session timeout), so that the
    /// clients of a server that died spread out over the others instead of arriving all at
    /// once, as the Java client does. `Duration::ZERO` reconnects at once.
    pub fn reconnect_delay(mut self, max: Duration) -> Self {
        self.reconnect_delay = max;
        self
    }

    /// How many requests may wait for a connection while disconnected (default 100 000).
    /// Beyond that, new requests fail at once with a retryable
    /// [`Error::ConnectionLoss`] instead of growing the queue without bound.
    pub fn max_queued_requests(mut self, requests: usize) -> Self {
        self.max_queued = requests;
        self
    }

    /// Seeds the session's random choices: the order in which the hosts of each round are
    /// tried, the back-off jitter and the delay before reconnecting. Two clients with the
    /// same seed, under the same (simulated) network and clock, make the same choices; the
    /// simulation tests replay failures this way. By default the seed comes from the
    /// process's hash randomness (`std`'s `RandomState`). SASL nonces never use it.
    ///
    /// ```
    /// let builder = zk_client::Client::builder("zk1:2181,zk2:2181").random_seed(7);
    /// ```
    pub fn random_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Credentials sent on every connection before anything else, e.g.
    /// `auth("digest", "user:password")`.
    pub fn auth(mut self, scheme: impl Into<String>, auth: impl Into<Bytes>) -> Self {
        self.auths.push((scheme.into(), auth.into()));
        self
    }

    /// Authenticates every connection with SASL `DIGEST-MD5` as `username`, like the Java
    /// client with a JAAS `Client` section of `DigestLoginModule` (and kazoo's
    /// `sasl_options`). Servers with JAAS `DigestLoginModule` users (e.g. Kafka's ensembles)
    /// then know the session as `sasl:<username>`, for ACLs such as `sasl:bob:cdrwa`.
    ///
    /// On each connection, the first and every reconnect, the exchange runs right after the
    /// handshake, before the `auth` packets, the watch restoration and any request; requests
    /// issued meanwhile wait. The server's proof (`rspauth`) is checked too. A rejected login
    /// ends the session in [`SessionState::AuthFailed`](crate::SessionState::AuthFailed):
    /// [`connect`](Self::connect) and every request fail with [`Error::AuthFailed`].
    ///
    /// The digest-uri is `zookeeper/zk-sasl-md5` as with the Java client and server; see
    /// [`sasl_digest_service`](Self::sasl_digest_service) to change it. Only authentication
    /// (`qop=auth`) is negotiated, no integrity or privacy layer: combine with TLS where the
    /// network is not trusted.
    ///
    /// ```no_run
    /// use zk_client::Client;
    ///
    /// # async fn demo() -> Result<(), zk_client::Error> {
    /// let client = Client::builder("zk1:2181").sasl_digest("bob", "bobsecret").connect().await?;
    /// let ids = client.who_am_i().await?;
    /// assert!(ids.iter().any(|id| id.auth_scheme == "sasl" && id.user == "bob"));
    /// # Ok(()) }
    /// ```
    pub fn sasl_digest(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.sasl = Some(DigestCredentials::new(username.into(), password.into()));
        self
    }

    /// The digest-uri `protocol/server_name` of [`sasl_digest`](Self::sasl_digest) (default
    /// `zookeeper` and `zk-sasl-md5`, what the Java server expects; only a server started
    /// with other names needs this).
    pub fn sasl_digest_service(
        mut self,
        protocol: impl Into<String>,
        server_name: impl Into<String>,
    ) -> Self {
        self.sasl_service = Some((protocol.into(), server_name.into()));
        self
    }

    /// Reply coalescing under heavy pipelining (default: on, 1 ms).
    ///
    /// With at least 128 requests in flight the server is the bottleneck and its replies
    /// arrive a few at a time; reading each handful as it comes costs a wake-up and two
    /// system calls. With coalescing on, after a short read while that many requests wait,
    /// the client lets replies accumulate for `pause` (the runtime's timer rounds it up to
    /// whole milliseconds) before reading again. Throughput stays the same (the server still
    /// has a full queue) and the client's CPU per request drops several-fold; the replies
    /// of such a burst arrive up to `pause` later. With fewer requests in flight nothing
    /// changes, so a request issued alone is never delayed. `None` turns it off.
    pub fn coalesce_replies(mut self, pause: Option<Duration>) -> Self {
        self.coalesce = pause.filter(|p| !p.is_zero());
        self
    }

    /// Replaces how connections are opened (default: TCP), e.g. to go through a test
    /// network. The connector is given each [`Endpoint`](crate::transport::Endpoint): the
    /// address to dial and the connect-string host it was resolved from.
    pub fn connector(mut self, connector: Connector) -> Self {
        self.connector = connector;
        self
    }

    /// Speaks TLS to every server (feature `tls`): installs
    /// [`tls_connector`](crate::transport::tls_connector) with `config`, replacing the
    /// [`connector`](Self::connector) (the last of the two calls wins). Point the connect
    /// string at the servers' `secureClientPort`; the server certificates are checked against
    /// its host names. Read-only probes (`isro`) go through TLS too.
    ///
    /// ```no_run
    /// use zk_client::{Client, TlsConfig};
    ///
    /// # async fn demo() -> Result<(), zk_client::Error> {
    /// let tls = TlsConfig::from_ca_pem_file("/etc/zookeeper/ca.pem")?;
    /// let client = Client::builder("zk1.example.com:2281").tls(tls).connect().await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::TlsConfig) -> Self {
        self.connector = crate::transport::tls_connector(config);
        self
    }

    /// Connects: resolves the hosts, opens a session and returns once it is established.
    ///
    /// # Errors
    ///
    /// A bad connect string ([`Error::InvalidConnectString`], [`Error::InvalidPath`]);
    /// [`Error::Timeout`] if no session was established within the connect timeout; with
    /// [`fail_fast`](Self::fail_fast), the last connection error after one round (e.g.
    /// [`Error::Tls`] naming the certificate problem).
    pub async fn connect(self) -> Result<Client, Error> {
        let parsed = ConnectString::parse(&self.connect_string)?;
        let sasl = self.sasl.map(|mut credentials| {
            if let Some((protocol, server_name)) = self.sasl_service {
                credentials.protocol = protocol;
                credentials.server_name = server_name;
            }
            credentials
        });
        let config = Config {
            hosts: parsed.hosts().to_vec(),
            chroot: parsed.chroot().clone(),
            session_timeout: self.session_timeout,
            attempt_timeout: self.attempt_timeout,
            request_timeout: self.request_timeout.unwrap_or(self.session_timeout),
            read_only: self.read_only,
            fail_fast: self.fail_fast,
            max_frame_out: self.max_request_size,
            max_frame_in: self.max_reply_size,
            reconnect_backoff: self.backoff,
            auths: self.auths,
            sasl,
            connector: self.connector,
            coalesce: self.coalesce,
            reconnect_delay: self.reconnect_delay,
            max_queued: self.max_queued,
            seed: self.seed,
        };
        let connect_timeout = self.connect_timeout.unwrap_or(self.session_timeout);
        Client::start(Arc::new(config), connect_timeout).await
    }
}

impl Client {
    /// Connects with default settings to `connect_string` (`h1:p1,h2:p2/chroot`); see
    /// [`ClientBuilder::connect`].
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), zk_client::Error> {
    /// let client = zk_client::Client::connect("127.0.0.1:2181/app").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(connect_string: &str) -> Result<Client, Error> {
        ClientBuilder::new(connect_string).connect().await
    }

    /// A [`ClientBuilder`] for `connect_string`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let builder = zk_client::Client::builder("zk1:2181,zk2:2181/app")
    ///     .session_timeout(Duration::from_secs(10));
    /// ```
    pub fn builder(connect_string: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(connect_string)
    }
}
