//! The only file that names `tokio::net`: opening a connection to one server.
//!
//! The session works on any [`Stream`] (a boxed `AsyncRead + AsyncWrite`), so tests and
//! simulations can hand it other transports through a [`Connector`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream to one server.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncStream for T {}

/// A boxed connection to one server.
pub type Stream = Box<dyn AsyncStream>;

/// The future a [`Connector`] returns.
pub type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<Stream>> + Send>>;

/// Opens a connection to an address; the default one uses TCP with `TCP_NODELAY`.
pub type Connector = Arc<dyn Fn(SocketAddr) -> ConnectFuture + Send + Sync>;

/// The default connector: plain TCP, Nagle off.
pub fn tcp_connector() -> Connector {
    Arc::new(|addr| {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as Stream)
        })
    })
}
