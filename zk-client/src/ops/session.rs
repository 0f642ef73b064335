//! Session-level operations: `sync`, `auth`, `whoAmI`, and reading the ensemble config.

use std::future::Future;

use bytes::Bytes;
use tokio::sync::oneshot;
use zk_proto::records::{AuthPacket, ClientInfo, GetDataRequest, Stat, SyncRequest};
use zk_proto::{OpCode, Request, Response};

use crate::client::{Client, decode_reply, unexpected};
use crate::error::Error;
use crate::session::pending::WatchReg;
use crate::watcher::OneshotWatcher;

/// The node holding the dynamic ensemble configuration (never chrooted).
pub const CONFIG_NODE: &str = "/zookeeper/config";

impl Client {
    /// Waits until the server this client is connected to has caught up with the leader
    /// as of the moment the sync reached it, so that later reads see every write committed
    /// before. (Not linearizable across a leader change; see the ZooKeeper docs.)
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/config", b"", zk_client::CreateMode::Persistent).await?;
    /// client.sync("/").await?;
    /// let fresh = client.get_data("/config").await?;
    /// # Ok(()) }
    /// ```
    pub fn sync(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static + use<> {
        let request = self
            .server_path(path)
            .map(|path| Request::Sync(SyncRequest { path }));
        let reply = self.submit(request, None);
        async move {
            match decode_reply(reply.await?, OpCode::Sync)? {
                Response::Sync(_) => Ok(()),
                other => Err(unexpected(&other)),
            }
        }
    }

    /// Adds credentials to the connection, e.g. `add_auth("digest", b"user:password")`.
    /// They are kept and sent again, before anything else, on every reconnect.
    ///
    /// # Errors
    ///
    /// [`Error::AuthFailed`] if the server rejects them (the session then ends in
    /// [`SessionState::AuthFailed`](crate::SessionState::AuthFailed)); connection errors
    /// (the credentials are still re-sent on the next connection).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// client.add_auth("digest", b"alice:secret").await?;
    /// # Ok(()) }
    /// ```
    pub fn add_auth(
        &self,
        scheme: &str,
        auth: &[u8],
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static + use<> {
        self.submit_auth(AuthPacket::new(scheme, Bytes::copy_from_slice(auth)))
    }

    /// The identities the server associates with this connection (`whoAmI`, 3.7+).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// for id in client.who_am_i().await? {
    ///     println!("{}:{}", id.auth_scheme, id.user);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn who_am_i(
        &self,
    ) -> impl Future<Output = Result<Vec<ClientInfo>, Error>> + Send + 'static + use<> {
        let reply = self.submit(Ok(Request::WhoAmI), None);
        async move {
            match decode_reply(reply.await?, OpCode::WhoAmI)? {
                Response::WhoAmI(r) => Ok(r.client_info),
                other => Err(unexpected(&other)),
            }
        }
    }

    /// The ensemble configuration (the data of `/zookeeper/config`, whatever the chroot).
    ///
    /// ```no_run
    /// # async fn demo(client: zk_client::Client) -> Result<(), zk_client::Error> {
    /// let (config, stat) = client.get_config().await?;
    /// println!("version {:#x}: {}", stat.mzxid, String::from_utf8_lossy(&config));
    /// # Ok(()) }
    /// ```
    pub fn get_config(
        &self,
    ) -> impl Future<Output = Result<(Bytes, Stat), Error>> + Send + 'static + use<> {
        let request = Request::GetData(GetDataRequest {
            path: CONFIG_NODE.to_owned(),
            watch: false,
        });
        let reply = self.submit(Ok(request), None);
        async move { super::data::get_data_result(reply.await?) }
    }

    /// Like [`get_config`](Self::get_config), with a one-shot watch on the configuration.
    ///
    /// ```no_run
    /// # async fn demo(client: zk_client::Client) -> Result<(), zk_client::Error> {
    /// let (_config, _stat, watcher) = client.get_config_watch().await?;
    /// let event = watcher.await; // the membership changed
    /// # Ok(()) }
    /// ```
    pub fn get_config_watch(
        &self,
    ) -> impl Future<Output = Result<(Bytes, Stat, OneshotWatcher), Error>> + Send + 'static + use<>
    {
        let (tx, rx) = oneshot::channel();
        let request = Request::GetData(GetDataRequest {
            path: CONFIG_NODE.to_owned(),
            watch: true,
        });
        let watch = WatchReg::Data {
            path: CONFIG_NODE.to_owned(),
            tx,
        };
        let reply = self.submit(Ok(request), Some(watch));
        let watcher = OneshotWatcher::new(rx, CONFIG_NODE.to_owned());
        async move {
            let (data, stat) = super::data::get_data_result(reply.await?)?;
            Ok((data, stat, watcher))
        }
    }
}

/// A dynamic reconfiguration request ([`Client::reconfig`]). Server strings use the
/// `server.<id>=<host>:<quorum port>:<election port>[:role];<client address>` syntax.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconfig {
    /// Servers to add (comma-separated specs), incremental mode.
    pub joining: Option<String>,
    /// Server ids to remove (comma-separated), incremental mode.
    pub leaving: Option<String>,
    /// The whole new membership (non-incremental mode).
    pub new_members: Option<String>,
    /// Apply only if the current config version is this (`None`: any).
    pub from_config: Option<i64>,
}

impl Client {
    /// Changes the ensemble membership (`reconfig`, 3.5+; the servers need
    /// `reconfigEnabled=true` and the caller WRITE on `/zookeeper/config`, in practice the
    /// super user). Returns the new configuration and its stat.
    ///
    /// # Errors
    ///
    /// [`Error::ReconfigDisabled`], [`Error::NoAuth`], [`Error::BadVersion`] (config version
    /// mismatch), [`Error::NewConfigNoQuorum`], [`Error::ReconfigInProgress`],
    /// [`Error::BadArguments`], and the connection errors.
    ///
    /// ```no_run
    /// use zk_client::Reconfig;
    /// # async fn demo(client: zk_client::Client) -> Result<(), zk_client::Error> {
    /// let change = Reconfig { leaving: Some("3".into()), ..Default::default() };
    /// let (config, _stat) = client.reconfig(&change).await?;
    /// # Ok(()) }
    /// ```
    pub fn reconfig(
        &self,
        change: &Reconfig,
    ) -> impl Future<Output = Result<(Bytes, Stat), Error>> + Send + 'static + use<> {
        let request = Request::Reconfig(zk_proto::records::ReconfigRequest {
            joining_servers: change.joining.clone(),
            leaving_servers: change.leaving.clone(),
            new_members: change.new_members.clone(),
            cur_config_id: change.from_config.unwrap_or(-1),
        });
        let reply = self.submit(Ok(request), None);
        async move {
            match decode_reply(reply.await?, OpCode::Reconfig)? {
                Response::GetData(r) => Ok((r.data.unwrap_or_default(), r.stat)),
                other => Err(unexpected(&other)),
            }
        }
    }
}
