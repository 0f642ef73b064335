//! `create` in every mode: persistent, ephemeral, sequential, container and TTL.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use zk_proto::records::{Acl, CreateRequest, CreateTtlRequest, OPEN_ACL_UNSAFE, Stat};
use zk_proto::types::MAX_TTL_MS;
use zk_proto::{Chroot, CreateMode, OpCode, Request, Response};

use crate::client::{Client, ReplyFuture, decode_reply, unexpected};
use crate::error::Error;

/// How to create a node: its mode, ACL and (for TTL modes) time to live.
///
/// [`Client::create`] takes anything that converts into options: a bare [`CreateMode`] (open
/// ACL, no TTL), `CreateOptions` or `&CreateOptions`.
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

impl From<CreateMode> for CreateOptions {
    /// Options for `mode` with the open ACL: `create(path, data, CreateMode::Ephemeral)`.
    fn from(mode: CreateMode) -> CreateOptions {
        CreateOptions::new(mode)
    }
}

impl From<&CreateOptions> for CreateOptions {
    fn from(options: &CreateOptions) -> CreateOptions {
        options.clone()
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
    /// `options` is a [`CreateMode`] or [`CreateOptions`] (by value or reference) for an
    /// ACL or a TTL.
    ///
    /// ```
    /// use zk_client::{CreateMode, CreateOptions};
    /// use zk_client::proto::records::CREATOR_ALL_ACL;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// client.create("/workers", b"", CreateMode::Persistent).await?;
    /// let (path, stat) = client.create("/workers/w-", b"", CreateMode::EphemeralSequential).await?;
    /// assert!(path.starts_with("/workers/w-"));
    /// assert_eq!(stat.ephemeral_owner, client.session_id());
    /// // Only the creator's authenticated ids get access (so authenticate first).
    /// client.add_auth("digest", b"bob:secret").await?;
    /// let private = CreateOptions::new(CreateMode::Persistent).acl(CREATOR_ALL_ACL.clone());
    /// client.create("/secret", b"", &private).await?;
    /// # Ok(()) }
    /// ```
    pub fn create(
        &self,
        path: &str,
        data: &[u8],
        options: impl Into<CreateOptions>,
    ) -> CreateFuture {
        let options = options.into();
        let request = self
            .server_create_path(path, options.mode().is_sequential())
            .and_then(|p| options.request(p, Bytes::copy_from_slice(data)));
        let op = request.as_ref().map_or(OpCode::Create2, Request::op_code);
        CreateFuture {
            reply: self.submit(request, None),
            op,
            chroot: self.chroot().clone(),
        }
    }
}

/// The reply to [`Client::create`]: the created path (chroot stripped) and its [`Stat`].
/// The request was queued when `create` was called; this only waits for the answer
/// (`Send`, `'static`, cancellation-safe: dropping it forgets the answer, not the request).
///
/// A named type rather than `impl Future`, because `create` is generic over its options and
/// the future must not borrow them.
#[derive(Debug)]
#[must_use = "the node is created whether or not this is awaited; await it for the result"]
pub struct CreateFuture {
    reply: ReplyFuture,
    op: OpCode,
    chroot: Chroot,
}

impl Future for CreateFuture {
    type Output = Result<(String, Stat), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let reply = match Pin::new(&mut self.reply).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(reply) => reply,
        };
        Poll::Ready(match reply.and_then(|reply| decode_reply(reply, self.op)) {
            Ok(Response::Create2(r)) => Ok((Client::client_path(&self.chroot, r.path), r.stat)),
            Ok(other) => Err(unexpected(&other)),
            Err(error) => Err(error),
        })
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
    fn a_mode_or_options_by_value_or_reference() {
        fn into(options: impl Into<CreateOptions>) -> CreateOptions {
            options.into()
        }
        let options = CreateOptions::new(CreateMode::Ephemeral);
        assert_eq!(into(CreateMode::Ephemeral), options);
        assert_eq!(into(&options), options);
        assert_eq!(into(options.clone()), options);
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
