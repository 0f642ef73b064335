//! `delete`.

use std::future::Future;

use zk_proto::records::DeleteRequest;
use zk_proto::{OpCode, Request};

use crate::client::{Client, decode_reply};
use crate::error::Error;

impl Client {
    /// Deletes a node if its version matches (`None`: any version).
    ///
    /// # Errors
    ///
    /// [`Error::NoNode`], [`Error::BadVersion`], [`Error::NotEmpty`], [`Error::NoAuth`],
    /// [`Error::InvalidPath`], and the connection errors.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/jobs", b"", zk_client::CreateMode::Persistent).await?;
    /// # client.create("/jobs/done", b"", zk_client::CreateMode::Persistent).await?;
    /// client.delete("/jobs/done", None).await?;
    /// # Ok(()) }
    /// ```
    pub fn delete(
        &self,
        path: &str,
        version: Option<i32>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static + use<> {
        let request = self.server_path(path).map(|path| {
            Request::Delete(DeleteRequest {
                path,
                version: super::version(version),
            })
        });
        let reply = self.submit(request, None);
        async move {
            decode_reply(reply.await?, OpCode::Delete)?;
            Ok(())
        }
    }
}
