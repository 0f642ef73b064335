//! `multi` (atomic transactions, with the [`Transaction`] builder) and `multiRead`.

use std::future::Future;

use bytes::Bytes;
use zk_proto::records::{
    CheckVersionRequest, DeleteRequest, GetChildrenRequest, GetDataRequest, MultiOp, MultiReadOp,
    MultiReadRequest, MultiRequest, MultiResult, SetDataRequest, Stat,
};
use zk_proto::{Chroot, ErrorCode, OpCode, Request, Response};

use super::create::CreateOptions;
use crate::client::{Client, decode_reply, unexpected};
use crate::error::Error;

/// One operation of a transaction (paths as the client sees them).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Create a node.
    Create {
        /// The path (a prefix for sequential modes).
        path: String,
        /// The data.
        data: Bytes,
        /// Mode, ACL and TTL.
        options: CreateOptions,
    },
    /// Delete a node if its version matches (`None`: any).
    Delete {
        /// The path.
        path: String,
        /// The expected version.
        version: Option<i32>,
    },
    /// Set a node's data if its version matches (`None`: any).
    SetData {
        /// The path.
        path: String,
        /// The new data.
        data: Bytes,
        /// The expected version.
        version: Option<i32>,
    },
    /// Require a node to exist with this version (`None`: any version, i.e. it exists).
    Check {
        /// The path.
        path: String,
        /// The expected version.
        version: Option<i32>,
    },
}

/// The result of one operation of a successful transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpResult {
    /// A node was created: its actual path (chroot stripped) and stat.
    Create {
        /// The created path (with the sequence suffix for sequential modes).
        path: String,
        /// The new node's stat for container and TTL creates. For plain creates the server
        /// sends only the path (Apache turns every create inside a multi into a plain create),
        /// so this is `Stat::default()`; read the node if you need its stat.
        stat: Stat,
    },
    /// A node was deleted.
    Delete,
    /// Data was set: the new stat.
    SetData {
        /// The node's new stat.
        stat: Stat,
    },
    /// A check passed.
    Check,
}

/// One read of a [`multi_read`](Client::multi_read).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadOp {
    /// Read a node's data.
    GetData(String),
    /// List a node's children.
    GetChildren(String),
}

/// The result of one [`ReadOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadResult {
    /// The node's data and stat.
    Data {
        /// The data (empty if none).
        data: Bytes,
        /// The stat.
        stat: Stat,
    },
    /// The children's names.
    Children(Vec<String>),
}

/// Builds an atomic transaction: every op is applied, or none.
///
/// ```
/// use zk_client::{CreateMode, OpResult};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = zk_server_lite::Server::builder().start().await?;
/// # let client = zk_client::Client::connect(&server.connect_string()).await?;
/// # client.create("/config", b"", zk_client::CreateMode::Persistent).await?;
/// # client.set_data("/config", b"", None).await?;
/// # client.set_data("/config", b"", None).await?;
/// # client.set_data("/config", b"", None).await?;
/// # client.create("/config/v3", b"", zk_client::CreateMode::Persistent).await?;
/// let results = client
///     .transaction()
///     .check("/config", Some(3))
///     .create("/config/v4", b"new", CreateMode::Persistent)
///     .set_data("/config", b"v4", Some(3))
///     .delete("/config/v3", None)
///     .commit()
///     .await?;
/// assert!(matches!(results[1], OpResult::Create { .. }));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a transaction does nothing until `commit` is called"]
pub struct Transaction {
    client: Client,
    ops: Vec<Op>,
}

impl Transaction {
    /// Adds a create; `options` as for [`Client::create`] (a [`CreateMode`](crate::CreateMode)
    /// or [`CreateOptions`]).
    pub fn create(mut self, path: &str, data: &[u8], options: impl Into<CreateOptions>) -> Self {
        self.ops.push(Op::Create {
            path: path.to_owned(),
            data: Bytes::copy_from_slice(data),
            options: options.into(),
        });
        self
    }

    /// Adds a delete.
    pub fn delete(mut self, path: &str, version: Option<i32>) -> Self {
        self.ops.push(Op::Delete {
            path: path.to_owned(),
            version,
        });
        self
    }

    /// Adds a set-data.
    pub fn set_data(mut self, path: &str, data: &[u8], version: Option<i32>) -> Self {
        self.ops.push(Op::SetData {
            path: path.to_owned(),
            data: Bytes::copy_from_slice(data),
            version,
        });
        self
    }

    /// Adds a version check.
    pub fn check(mut self, path: &str, version: Option<i32>) -> Self {
        self.ops.push(Op::Check {
            path: path.to_owned(),
            version,
        });
        self
    }

    /// The ops so far.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Sends the transaction; see [`Client::multi`].
    pub fn commit(
        self,
    ) -> impl Future<Output = Result<Vec<OpResult>, Error>> + Send + 'static + use<> {
        self.client.multi(&self.ops)
    }
}

impl Client {
    /// Starts a [`Transaction`].
    pub fn transaction(&self) -> Transaction {
        Transaction {
            client: self.clone(),
            ops: Vec::new(),
        }
    }

    /// Applies `ops` atomically and returns one result per op. An empty list is not sent.
    ///
    /// # Errors
    ///
    /// [`Error::Transaction`] with the index and error of the first op that failed (then
    /// nothing was applied); a bad argument in any op fails the call before sending
    /// (also as [`Error::Transaction`]); and the connection errors.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/app", b"", zk_client::CreateMode::Persistent).await?;
    /// use zk_client::{CreateMode, CreateOptions, Op};
    /// let ops = [
    ///     Op::Check { path: "/app".into(), version: None },
    ///     Op::Create {
    ///         path: "/app/x".into(),
    ///         data: "x".into(),
    ///         options: CreateOptions::new(CreateMode::Persistent),
    ///     },
    /// ];
    /// let results = client.multi(&ops).await?;
    /// # Ok(()) }
    /// ```
    pub fn multi(
        &self,
        ops: &[Op],
    ) -> impl Future<Output = Result<Vec<OpResult>, Error>> + Send + 'static + use<> {
        let count = ops.len();
        let request = ops
            .iter()
            .enumerate()
            .map(|(index, op)| {
                self.multi_op(op).map_err(|e| Error::Transaction {
                    index,
                    source: Box::new(e),
                })
            })
            .collect::<Result<Vec<_>, Error>>()
            .map(|ops| Request::Multi(MultiRequest { ops }));
        let reply = (count > 0).then(|| self.submit(request, None));
        let chroot = self.chroot().clone();
        async move {
            let Some(reply) = reply else {
                return Ok(Vec::new());
            };
            let results = match decode_reply(reply.await?, OpCode::Multi)? {
                Response::Multi(r) => r.results,
                other => return Err(unexpected(&other)),
            };
            multi_results(results, count, &chroot)
        }
    }

    fn multi_op(&self, op: &Op) -> Result<MultiOp, Error> {
        Ok(match op {
            Op::Create {
                path,
                data,
                options,
            } => {
                let server_path = self.server_create_path(path, options.mode().is_sequential())?;
                match options.request(server_path, data.clone())? {
                    Request::Create2(r) => MultiOp::Create2(r),
                    Request::CreateContainer(r) => MultiOp::CreateContainer(r),
                    Request::CreateTtl(r) => MultiOp::CreateTtl(r),
                    other => return Err(Error::BadArguments(format!("{:?}", other.op_code()))),
                }
            }
            Op::Delete { path, version } => MultiOp::Delete(DeleteRequest {
                path: self.server_path(path)?,
                version: super::version(*version),
            }),
            Op::SetData {
                path,
                data,
                version,
            } => MultiOp::SetData(SetDataRequest {
                path: self.server_path(path)?,
                data: Some(data.clone()),
                version: super::version(*version),
            }),
            Op::Check { path, version } => MultiOp::Check(CheckVersionRequest {
                path: self.server_path(path)?,
                version: super::version(*version),
            }),
        })
    }

    /// Runs several reads in one round trip (`multiRead`, 3.6+). Each read succeeds or
    /// fails on its own; no watches are set.
    ///
    /// ```
    /// use zk_client::{ReadOp, ReadResult};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/a", b"a", zk_client::CreateMode::Persistent).await?;
    /// let results = client
    ///     .multi_read(&[ReadOp::GetData("/a".into()), ReadOp::GetChildren("/".into())])
    ///     .await?;
    /// if let Ok(ReadResult::Data { data, .. }) = &results[0] {
    ///     println!("{data:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn multi_read(
        &self,
        ops: &[ReadOp],
    ) -> impl Future<Output = Result<Vec<Result<ReadResult, Error>>, Error>> + Send + 'static + use<>
    {
        let count = ops.len();
        let request = ops
            .iter()
            .map(|op| {
                Ok(match op {
                    ReadOp::GetData(path) => MultiReadOp::GetData(GetDataRequest {
                        path: self.server_path(path)?,
                        watch: false,
                    }),
                    ReadOp::GetChildren(path) => MultiReadOp::GetChildren(GetChildrenRequest {
                        path: self.server_path(path)?,
                        watch: false,
                    }),
                })
            })
            .collect::<Result<Vec<_>, Error>>()
            .map(|ops| Request::MultiRead(MultiReadRequest { ops }));
        let reply = (count > 0).then(|| self.submit(request, None));
        async move {
            let Some(reply) = reply else {
                return Ok(Vec::new());
            };
            let results = match decode_reply(reply.await?, OpCode::MultiRead)? {
                Response::Multi(r) => r.results,
                other => return Err(unexpected(&other)),
            };
            if results.len() != count {
                return Err(Error::Protocol(format!(
                    "multiRead of {count} ops answered with {} results",
                    results.len()
                )));
            }
            Ok(results
                .into_iter()
                .map(|result| match result {
                    MultiResult::GetData(r) => Ok(ReadResult::Data {
                        data: r.data.unwrap_or_default(),
                        stat: r.stat,
                    }),
                    MultiResult::GetChildren(r) => Ok(ReadResult::Children(r.children)),
                    MultiResult::Error(code) => Err(Error::from_code(code)),
                    other => Err(Error::Protocol(format!(
                        "unexpected multiRead result {other:?}"
                    ))),
                })
                .collect())
        }
    }
}

/// Turns a multi response into per-op results, or the first error.
fn multi_results(
    results: Vec<MultiResult>,
    count: usize,
    chroot: &Chroot,
) -> Result<Vec<OpResult>, Error> {
    if let Some((index, code)) = results.iter().enumerate().find_map(|(i, r)| match r {
        MultiResult::Error(code) if *code != ErrorCode::Ok.as_i32() => Some((i, *code)),
        _ => None,
    }) {
        return Err(Error::Transaction {
            index,
            source: Box::new(Error::from_code(code)),
        });
    }
    if results.len() != count {
        return Err(Error::Protocol(format!(
            "multi of {count} ops answered with {} results",
            results.len()
        )));
    }
    results
        .into_iter()
        .map(|result| {
            Ok(match result {
                MultiResult::Create2(r) => OpResult::Create {
                    path: Client::client_path(chroot, r.path),
                    stat: r.stat,
                },
                MultiResult::Create(r) => OpResult::Create {
                    path: Client::client_path(chroot, r.path),
                    stat: Stat::default(),
                },
                MultiResult::Delete => OpResult::Delete,
                MultiResult::SetData(r) => OpResult::SetData { stat: r.stat },
                MultiResult::Check => OpResult::Check,
                other => {
                    return Err(Error::Protocol(format!(
                        "unexpected multi result {other:?}"
                    )));
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use zk_proto::records::Create2Response;

    use super::*;

    #[test]
    fn first_error_wins() {
        let results = vec![
            MultiResult::Error(0),
            MultiResult::Error(-110),
            MultiResult::Error(-2),
        ];
        assert_eq!(
            multi_results(results, 3, &Chroot::none()),
            Err(Error::Transaction {
                index: 1,
                source: Box::new(Error::NodeExists)
            })
        );
    }

    #[test]
    fn created_paths_lose_the_chroot() {
        let chroot = Chroot::parse("/app").unwrap_or_else(|e| panic!("{e}"));
        let results = vec![
            MultiResult::Create2(Create2Response {
                path: "/app/x".into(),
                stat: Stat::default(),
            }),
            MultiResult::Check,
        ];
        assert_eq!(
            multi_results(results, 2, &chroot),
            Ok(vec![
                OpResult::Create {
                    path: "/x".into(),
                    stat: Stat::default()
                },
                OpResult::Check
            ])
        );
    }
}
