//! `getACL` and `setACL`.

use std::future::Future;

use zk_proto::records::{Acl, GetAclRequest, SetAclRequest, Stat};
use zk_proto::{OpCode, Request, Response};

use crate::client::{Client, decode_reply, unexpected};
use crate::error::Error;

impl Client {
    /// The node's ACL and [`Stat`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/secure", b"", zk_client::CreateMode::Persistent).await?;
    /// let (acl, _stat) = client.get_acl("/secure").await?;
    /// for entry in acl {
    ///     println!("{}:{} {:?}", entry.id.scheme, entry.id.id, entry.perms);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn get_acl(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<Acl>, Stat), Error>> + Send + 'static + use<> {
        let request = self
            .server_path(path)
            .map(|path| Request::GetAcl(GetAclRequest { path }));
        let reply = self.submit(request, None);
        async move {
            match decode_reply(reply.await?, OpCode::GetAcl)? {
                Response::GetAcl(r) => Ok((r.acl, r.stat)),
                other => Err(unexpected(&other)),
            }
        }
    }

    /// Replaces the node's ACL if its ACL version (`aversion`) matches (`None`: any) and
    /// returns the new [`Stat`].
    ///
    /// # Errors
    ///
    /// [`Error::NoNode`], [`Error::BadVersion`], [`Error::NoAuth`] (needs ADMIN),
    /// [`Error::InvalidAcl`] (also for an empty list, checked locally), and the connection
    /// errors.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/secure", b"", zk_client::CreateMode::Persistent).await?;
    /// use zk_client::{Acl, Id, Perms};
    /// let acl = [Acl::new(Perms::ALL, Id::new("digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="))];
    /// client.set_acl("/secure", &acl, None).await?;
    /// # Ok(()) }
    /// ```
    pub fn set_acl(
        &self,
        path: &str,
        acl: &[Acl],
        version: Option<i32>,
    ) -> impl Future<Output = Result<Stat, Error>> + Send + 'static + use<> {
        let request = if acl.is_empty() {
            Err(Error::InvalidAcl)
        } else {
            self.server_path(path).map(|path| {
                Request::SetAcl(SetAclRequest {
                    path,
                    acl: acl.to_vec(),
                    version: super::version(version),
                })
            })
        };
        let reply = self.submit(request, None);
        async move {
            match decode_reply(reply.await?, OpCode::SetAcl)? {
                Response::SetAcl(r) => Ok(r.stat),
                other => Err(unexpected(&other)),
            }
        }
    }
}
