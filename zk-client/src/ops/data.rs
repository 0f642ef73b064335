//! `exists`, `getData`, `setData`, and their watching forms.

use std::future::Future;

use bytes::Bytes;
use tokio::sync::oneshot;
use zk_proto::records::{ExistsRequest, GetDataRequest, SetDataRequest, Stat};
use zk_proto::{OpCode, Request, Response};

use crate::client::{Client, decode_reply, unexpected};
use crate::error::Error;
use crate::session::pending::WatchReg;
use crate::watcher::OneshotWatcher;

impl Client {
    /// The node's [`Stat`], or `None` if it does not exist.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// if client.exists("/ready").await?.is_some() {
    ///     println!("ready");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn exists(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<Option<Stat>, Error>> + Send + 'static + use<> {
        let request = self
            .server_path(path)
            .map(|path| Request::Exists(ExistsRequest { path, watch: false }));
        let reply = self.submit(request, None);
        async move { exists_result(reply.await?) }
    }

    /// Like [`exists`](Self::exists), and leaves a one-shot watch whether or not the node
    /// exists: it fires with `NodeCreated` (if missing), `NodeDataChanged` or `NodeDeleted`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// let (stat, watcher) = client.exists_watch("/leader").await?;
    /// # client.create("/leader", b"", zk_client::CreateMode::Persistent).await?;
    /// if stat.is_none() {
    ///     let event = watcher.await; // NodeCreated
    /// }
    /// # Ok(()) }
    /// ```
    pub fn exists_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Option<Stat>, OneshotWatcher), Error>> + Send + 'static + use<>
    {
        let (tx, rx) = oneshot::channel();
        let server_path = self.server_path(path);
        let watch = server_path.as_ref().ok().map(|p| WatchReg::Exists {
            path: p.clone(),
            tx,
        });
        let request = server_path.map(|path| Request::Exists(ExistsRequest { path, watch: true }));
        let reply = self.submit(request, watch);
        let watcher = OneshotWatcher::new(rx, path.to_owned());
        async move {
            let stat = exists_result(reply.await?)?;
            Ok((stat, watcher))
        }
    }

    /// The node's data (empty if it has none) and [`Stat`].
    ///
    /// # Errors
    ///
    /// [`Error::NoNode`], [`Error::NoAuth`], [`Error::InvalidPath`], and the connection
    /// errors.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/config", b"", zk_client::CreateMode::Persistent).await?;
    /// let (data, stat) = client.get_data("/config").await?;
    /// println!("{} bytes, version {}", data.len(), stat.version);
    /// # Ok(()) }
    /// ```
    pub fn get_data(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Bytes, Stat), Error>> + Send + 'static + use<> {
        let request = self
            .server_path(path)
            .map(|path| Request::GetData(GetDataRequest { path, watch: false }));
        let reply = self.submit(request, None);
        async move { get_data_result(reply.await?) }
    }

    /// Like [`get_data`](Self::get_data), and leaves a one-shot watch that fires with
    /// `NodeDataChanged` or `NodeDeleted`. On a missing node it fails with
    /// [`Error::NoNode`] and leaves no watch (as in Apache ZooKeeper); use
    /// [`exists_watch`](Self::exists_watch) to wait for a creation.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/config", b"", zk_client::CreateMode::Persistent).await?;
    /// let (data, _stat, watcher) = client.get_data_watch("/config").await?;
    /// # client.set_data("/config", b"v2", None).await?;
    /// let event = watcher.await; // NodeDataChanged or NodeDeleted
    /// # Ok(()) }
    /// ```
    pub fn get_data_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Bytes, Stat, OneshotWatcher), Error>> + Send + 'static + use<>
    {
        let (tx, rx) = oneshot::channel();
        let server_path = self.server_path(path);
        let watch = server_path.as_ref().ok().map(|p| WatchReg::Data {
            path: p.clone(),
            tx,
        });
        let request =
            server_path.map(|path| Request::GetData(GetDataRequest { path, watch: true }));
        let reply = self.submit(request, watch);
        let watcher = OneshotWatcher::new(rx, path.to_owned());
        async move {
            let (data, stat) = get_data_result(reply.await?)?;
            Ok((data, stat, watcher))
        }
    }

    /// Replaces the node's data if its version matches (`None`: any version) and returns
    /// the new [`Stat`].
    ///
    /// # Errors
    ///
    /// [`Error::NoNode`], [`Error::BadVersion`], [`Error::NoAuth`], [`Error::TooLarge`]
    /// (over `jute.maxbuffer`; nothing is sent), and the connection errors.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/counter", b"1", zk_client::CreateMode::Persistent).await?;
    /// let (_, stat) = client.get_data("/counter").await?;
    /// client.set_data("/counter", b"2", Some(stat.version)).await?;
    /// # Ok(()) }
    /// ```
    pub fn set_data(
        &self,
        path: &str,
        data: &[u8],
        version: Option<i32>,
    ) -> impl Future<Output = Result<Stat, Error>> + Send + 'static + use<> {
        let request = self.server_path(path).map(|path| {
            Request::SetData(SetDataRequest {
                path,
                data: Some(Bytes::copy_from_slice(data)),
                version: super::version(version),
            })
        });
        let reply = self.submit(request, None);
        async move {
            match decode_reply(reply.await?, OpCode::SetData)? {
                Response::SetData(r) => Ok(r.stat),
                other => Err(unexpected(&other)),
            }
        }
    }
}

fn exists_result(reply: crate::session::pending::RawReply) -> Result<Option<Stat>, Error> {
    match decode_reply(reply, OpCode::Exists) {
        Ok(Response::Exists(r)) => Ok(Some(r.stat)),
        Ok(other) => Err(unexpected(&other)),
        Err(Error::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn get_data_result(
    reply: crate::session::pending::RawReply,
) -> Result<(Bytes, Stat), Error> {
    match decode_reply(reply, OpCode::GetData)? {
        Response::GetData(r) => Ok((r.data.unwrap_or_default(), r.stat)),
        other => Err(unexpected(&other)),
    }
}
