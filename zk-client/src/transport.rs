//! The only file that names `tokio::net`: opening a connection to one server.
//!
//! The session works on any [`Stream`] (a boxed `AsyncRead + AsyncWrite`), so tests and
//! simulations can hand it other transports through a [`Connector`]. A connector is given an
//! [`Endpoint`]: the resolved address to dial and the host name of the connect string it came
//! from (what a TLS connector checks the server's certificate against).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

#[cfg(feature = "tls")]
pub use crate::tls::tls_connector;

/// A byte stream to one server.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncStream for T {}

/// A boxed connection to one server.
pub type Stream = Box<dyn AsyncStream>;

/// The future a [`Connector`] returns.
pub type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<Stream>> + Send>>;

/// Opens a connection to an [`Endpoint`]; the default one uses TCP with `TCP_NODELAY`.
///
/// ```
/// use std::sync::Arc;
/// use zk_client::transport::{Connector, Endpoint, Stream};
///
/// // Plain TCP, logging where each attempt goes.
/// let connector: Connector = Arc::new(|endpoint: Endpoint| {
///     Box::pin(async move {
///         println!("connecting to {endpoint}");
///         let stream = tokio::net::TcpStream::connect(endpoint.addr).await?;
///         Ok(Box::new(stream) as Stream)
///     })
/// });
/// let builder = zk_client::Client::builder("zk1:2181").connector(connector);
/// ```
pub type Connector = Arc<dyn Fn(Endpoint) -> ConnectFuture + Send + Sync>;

/// Where one connection attempt goes: a resolved address and the connect-string host it was
/// resolved from (a name, or the IP literal itself).
///
/// ```
/// use zk_client::transport::Endpoint;
///
/// let endpoint = Endpoint::new(([127, 0, 0, 1], 2181).into(), "localhost");
/// assert_eq!(endpoint.to_string(), "localhost/127.0.0.1:2181");
/// assert_eq!(Endpoint::from(endpoint.addr).host, "127.0.0.1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Endpoint {
    /// The address to dial.
    pub addr: SocketAddr,
    /// The host as written in the connect string (IPv6 without brackets). A TLS connector
    /// verifies the server certificate against it.
    pub host: String,
}

impl Endpoint {
    /// An endpoint for `addr`, resolved from `host`.
    pub fn new(addr: SocketAddr, host: impl Into<String>) -> Endpoint {
        Endpoint {
            addr,
            host: host.into(),
        }
    }
}

impl From<SocketAddr> for Endpoint {
    /// An endpoint whose host is the address's IP.
    fn from(addr: SocketAddr) -> Endpoint {
        Endpoint::new(addr, addr.ip().to_string())
    }
}

impl fmt::Display for Endpoint {
    /// `host/ip:port` (like the Java client), or `ip:port` when the host is the IP itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.parse::<std::net::IpAddr>().ok() == Some(self.addr.ip()) {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.host, self.addr)
        }
    }
}

/// The default connector: plain TCP, Nagle off.
pub fn tcp_connector() -> Connector {
    Arc::new(|endpoint: Endpoint| {
        Box::pin(async move {
            let stream = tcp_connect(endpoint.addr).await?;
            Ok(Box::new(stream) as Stream)
        })
    })
}

/// A TCP connection with Nagle off.
pub(crate) async fn tcp_connect(addr: SocketAddr) -> io::Result<tokio::net::TcpStream> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Marks an I/O error as a TLS failure (handshake, certificate), so that the session reports
/// it as [`Error::Tls`](crate::Error::Tls) with its message instead of a bare connection loss.
#[derive(Debug)]
pub(crate) struct TlsFailure(pub(crate) String);

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsFailure {}

/// The TLS problem behind an I/O error of a connection, if it is one: a failure marked by the
/// TLS connector, or a rustls error met later on the stream (e.g. an alert from a server that
/// rejected the client certificate after the handshake).
pub(crate) fn tls_failure(error: &io::Error) -> Option<String> {
    let inner = error.get_ref()?;
    if let Some(failure) = inner.downcast_ref::<TlsFailure>() {
        return Some(failure.0.clone());
    }
    #[cfg(feature = "tls")]
    if let Some(rustls_error) = inner.downcast_ref::<rustls::Error>() {
        return Some(crate::tls::describe(rustls_error));
    }
    None
}
