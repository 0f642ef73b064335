//! `getChildren` (plain, with stat, with a watch), `getAllChildrenNumber`, `getEphemerals`.

use std::future::Future;

use tokio::sync::oneshot;
use zk_proto::records::{
    GetAllChildrenNumberRequest, GetChildren2Request, GetChildrenRequest, GetEphemeralsRequest,
    Stat,
};
use zk_proto::{OpCode, Request, Response};

use crate::client::{Client, decode_reply, unexpected};
use crate::error::Error;
use crate::session::pending::WatchReg;
use crate::watcher::OneshotWatcher;

impl Client {
    /// The names of the node's children, in no particular order.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/workers", b"", zk_client::CreateMode::Persistent).await?;
    /// let mut workers = client.get_children("/workers").await?;
    /// workers.sort();
    /// # Ok(()) }
    /// ```
    pub fn get_children(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send + 'static + use<> {
        let request = self
            .server_path(path)
            .map(|path| Request::GetChildren(GetChildrenRequest { path, watch: false }));
        let reply = self.submit(request, None);
        async move {
            match decode_reply(reply.await?, OpCode::GetChildren)? {
                Response::GetChildren(r) => Ok(r.children),
                other => Err(unexpected(&other)),
            }
        }
    }

    /// The children's names and the node's [`Stat`] (`getChildren2`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/workers", b"", zk_client::CreateMode::Persistent).await?;
    /// let (children, stat) = client.get_children_with_stat("/workers").await?;
    /// assert_eq!(children.len(), stat.num_children as usize);
    /// # Ok(()) }
    /// ```
    pub fn get_children_with_stat(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<String>, Stat), Error>> + Send + 'static + use<> {
        let request = self
            .server_path(path)
            .map(|path| Request::GetChildren2(GetChildren2Request { path, watch: false }));
        let reply = self.submit(request, None);
        async move { children2_result(reply.await?) }
    }

    /// Like [`get_children_with_stat`](Self::get_children_with_stat), and leaves a one-shot
    /// watch that fires with `NodeChildrenChanged` or `NodeDeleted`. On a missing node it
    /// fails with [`Error::NoNode`] and leaves no watch.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/workers", b"", zk_client::CreateMode::Persistent).await?;
    /// let (children, _stat, watcher) = client.get_children_watch("/workers").await?;
    /// # client.create("/workers/w1", b"", zk_client::CreateMode::Persistent).await?;
    /// let event = watcher.await; // NodeChildrenChanged
    /// # Ok(()) }
    /// ```
    pub fn get_children_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<String>, Stat, OneshotWatcher), Error>> + Send + 'static + use<>
    {
        let (tx, rx) = oneshot::channel();
        let server_path = self.server_path(path);
        let watch = server_path.as_ref().ok().map(|p| WatchReg::Child {
            path: p.clone(),
            tx,
        });
        let request = server_path
            .map(|path| Request::GetChildren2(GetChildren2Request { path, watch: true }));
        let reply = self.submit(request, watch);
        let watcher = OneshotWatcher::new(rx, path.to_owned());
        async move {
            let (children, stat) = children2_result(reply.await?)?;
            Ok((children, stat, watcher))
        }
    }

    /// The number of all descendants of the node (not counting the node itself).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/app", b"", zk_client::CreateMode::Persistent).await?;
    /// let descendants = client.get_all_children_number("/app").await?;
    /// # Ok(()) }
    /// ```
    pub fn get_all_children_number(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<i32, Error>> + Send + 'static + use<> {
        let request = self
            .server_path(path)
            .map(|path| Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path }));
        let reply = self.submit(request, None);
        async move {
            match decode_reply(reply.await?, OpCode::GetAllChildrenNumber)? {
                Response::GetAllChildrenNumber(r) => Ok(r.total_number),
                other => Err(unexpected(&other)),
            }
        }
    }

    /// The paths of this session's ephemeral nodes whose path starts with `prefix` (a
    /// string prefix; `/` for all), chroot stripped.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// let mine = client.get_ephemerals("/").await?;
    /// # Ok(()) }
    /// ```
    pub fn get_ephemerals(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send + 'static + use<> {
        let request = self
            .server_path(prefix)
            .map(|prefix_path| Request::GetEphemerals(GetEphemeralsRequest { prefix_path }));
        let reply = self.submit(request, None);
        let chroot = self.chroot().clone();
        async move {
            match decode_reply(reply.await?, OpCode::GetEphemerals)? {
                Response::GetEphemerals(r) => Ok(r
                    .ephemerals
                    .into_iter()
                    .filter_map(|p| chroot.strip(&p).map(str::to_owned))
                    .collect()),
                other => Err(unexpected(&other)),
            }
        }
    }
}

fn children2_result(
    reply: crate::session::pending::RawReply,
) -> Result<(Vec<String>, Stat), Error> {
    match decode_reply(reply, OpCode::GetChildren2)? {
        Response::GetChildren2(r) => Ok((r.children, r.stat)),
        other => Err(unexpected(&other)),
    }
}
