//! `create` in every mode: persistent, ephemeral, sequential, container and TTL.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use zk_proto::records::{Acl, CreateRequest, CreateTtlRequest, OPEN_ACL_UNSAFE, Stat};
use zk_proto::types::MAX_TTL_MS;
use zk_proto::{CreateMode, OpCode, Request, Response};

use crate::client::{Client, decode_reply, unexpected};
use crate::error::Error;

/// How to create a node: its mode, ACL and (for TTL modes) time to live.
///
/// ```
/// use std::time::Duration;
/// use zk_client::{CreateMode, CreateOptions};
/// use zk_client::proto::records::CREATOR_ALL_ACL;
///
/// let ephemeral = CreateOptions::new(CreateMode::EphemeralSequential);
/// let private = CreateOptions::new(CreateMode::Persistent).acl(CREATOR_ALL_ACL.clone());
/// let ttl = CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::from_secs(60));
/// assert_eq!(ttl.mode(), CreateMode::PersistentWithTtl);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    mode: CreateMode,
    acl: Vec<Acl>,
    ttl: Option<Duration>,
}

impl CreateOptions {
    /// Options for `mode`, with the open ACL (`world:anyone` may do anything).
    pub fn new(mode: CreateMode) -> CreateOptions {
        CreateOptions {
            mode,
            acl: OPEN_ACL_UNSAFE.clone(),
            ttl: None,
        }
    }

    /// Sets the ACL (must not be empty).
    pub fn acl(mut self, acl: Vec<Acl>) -> CreateOptions {
        self.acl = acl;
        self
    }

    /// Sets the time to live of a TTL node (1 ms to 2^40 − 1 ms). The server must run with
    /// `zookeeper.extendedTypesEnabled=true`, else the create fails with
    /// [`Error::Unimplemented`].
    pub fn ttl(mut self, ttl: Duration) -> CreateOptions {
        self.ttl = Some(ttl);
        self
    }

    /// The create mode.
    pub fn mode(&self) -> CreateMode {
        self.mode
    }

    /// Builds the request for `server_path` (already validated and chrooted).
    pub(crate) fn request(&self, server_path: String, data: Bytes) -> Result<Request, Error> {
        if self.acl.is_empty() {
            return Err(Error::InvalidAcl);
        }
        let flags = self.mode.into();
        let acl = self.acl.clone();
        let data = Some(data);
        if self.mode.is_ttl() {
            let ttl = self
                .ttl
                .and_then(|ttl| i64::try_from(ttl.as_millis()).ok())
                .filter(|ttl| (1..=MAX_TTL_MS).contains(ttl))
                .ok_or_else(|| {
                    Error::BadArguments("a TTL mode needs a TTL of 1 ms to 2^40-1 ms".into())
                })?;
            return Ok(Request::CreateTtl(CreateTtlRequest {
                path: server_path,
                data,
                acl,
                flags,
                ttl,
            }));
        }
        if self.ttl.is_some() {
            return Err(Error::BadArguments(format!(
                "a TTL is only valid with a TTL mode, not {}",
                self.mode
            )));
        }
        let request = CreateRequest {
            path: server_path,
            data,
            acl,
            flags,
        };
        Ok(if self.mode.is_container() {
            Request::CreateContainer(request)
        } else {
            Request::Create2(request)
        })
    }
}

impl Client {
    /// Creates a node and returns its path (with the sequence suffix for sequential modes,
    /// chroot stripped) and its [`Stat`]. Uses `create2`, `createContainer` or `createTTL`
    /// as the mode requires.
    ///
    /// # Errors
    ///
    /// [`Error::NodeExists`], [`Error::NoNode`] (no parent), [`Error::NoChildrenForEphemerals`],
    /// [`Error::NoAuth`], [`Error::InvalidAcl`], [`Error::Unimplemented`] (TTL disabled),
    /// [`Error::InvalidPath`], [`Error::TooLarge`], and the connection errors.
    ///
    /// ```no_run
    /// use zk_client::{CreateMode, CreateOptions};
    /// # async fn demo(client: zk_client::Client) -> Result<(), zk_client::Error> {
    /// let opts = CreateOptions::new(CreateMode::EphemeralSequential);
    /// let (path, stat) = client.create("/workers/w-", b"", &opts).await?;
    /// assert!(path.starts_with("/workers/w-"));
    /// assert_eq!(stat.ephemeral_owner, client.session_id());
    /// # Ok(()) }
    /// ```
    pub fn create(
        &self,
        path: &str,
        data: &[u8],
        options: &CreateOptions,
    ) -> impl Future<Output = Result<(String, Stat), Error>> + Send + 'static + use<> {
        let request = self
            .server_create_path(path, options.mode().is_sequential())
            .and_then(|p| options.request(p, Bytes::copy_from_slice(data)));
        let op = request.as_ref().map_or(OpCode::Create2, Request::op_code);
        let reply = self.submit(request, None);
        let chroot = self.chroot().clone();
        async move {
            match decode_reply(reply.await?, op)? {
                Response::Create2(r) => Ok((Client::client_path(&chroot, r.path), r.stat)),
                other => Err(unexpected(&other)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_per_mode() {
        let cases = [
            (CreateMode::Persistent, None, OpCode::Create2),
            (CreateMode::EphemeralSequential, None, OpCode::Create2),
            (CreateMode::Container, None, OpCode::CreateContainer),
            (
                CreateMode::PersistentWithTtl,
                Some(Duration::from_secs(1)),
                OpCode::CreateTtl,
            ),
        ];
        for (mode, ttl, op) in cases {
            let mut opts = CreateOptions::new(mode);
            if let Some(ttl) = ttl {
                opts = opts.ttl(ttl);
            }
            let request = opts.request("/a".into(), Bytes::new());
            assert_eq!(request.map(|r| r.op_code()).ok(), Some(op), "{mode:?}");
        }
    }

    #[test]
    fn bad_options_are_refused_locally() {
        let no_ttl = CreateOptions::new(CreateMode::PersistentWithTtl);
        assert!(matches!(
            no_ttl.request("/a".into(), Bytes::new()),
            Err(Error::BadArguments(_))
        ));
        let stray_ttl = CreateOptions::new(CreateMode::Persistent).ttl(Duration::from_secs(1));
        assert!(matches!(
            stray_ttl.request("/a".into(), Bytes::new()),
            Err(Error::BadArguments(_))
        ));
        let no_acl = CreateOptions::new(CreateMode::Persistent).acl(Vec::new());
        assert_eq!(
            no_acl.request("/a".into(), Bytes::new()),
            Err(Error::InvalidAcl)
        );
    }
}
