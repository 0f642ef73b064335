//! `addWatch` (persistent and persistent recursive), `removeWatches`, `checkWatches`.

use std::future::Future;

use zk_proto::records::{AddWatchRequest, CheckWatchesRequest, RemoveWatchesRequest};
use zk_proto::{AddWatchMode, OpCode, Request, WatcherType};

use crate::client::{Client, decode_reply};
use crate::error::Error;
use crate::session::pending::WatchReg;
use crate::session::stream::{self, Meta};
use crate::watcher::PersistentWatcher;

impl Client {
    /// Adds a persistent watch on `path` (3.6+ servers), which need not exist. The returned
    /// stream yields every event until it is dropped or removed:
    ///
    /// * [`AddWatchMode::Persistent`]: `NodeCreated`, `NodeDataChanged`, `NodeDeleted` on the
    ///   node and `NodeChildrenChanged` for its children;
    /// * [`AddWatchMode::PersistentRecursive`]: `NodeCreated`, `NodeDataChanged`,
    ///   `NodeDeleted` on the node and every descendant (never `NodeChildrenChanged`).
    ///
    /// The watch is restored after a reconnect (with `setWatches2`). Dropping the stream
    /// removes the watch: locally, and on the server once no stream of this mode is left on
    /// the path (with `removeWatches`; on servers before 3.9 only when nothing else is
    /// watched on the path, else the server keeps sending events that are ignored until the
    /// next reconnect). Apache servers before
    /// 3.9 keep one persistent mode per path and session (ZOOKEEPER-4466): adding both kinds
    /// on one path there keeps only the last one on the server.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use zk_client::{AddWatchMode, CreateMode};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/app", b"", zk_client::CreateMode::Persistent).await?;
    /// let mut events = client.add_watch("/app", AddWatchMode::PersistentRecursive).await?;
    /// client.create("/app/x", b"", CreateMode::Persistent).await?;
    /// if let Some(event) = events.next().await {
    ///     println!("{:?} {}", event.event_type, event.path);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn add_watch(
        &self,
        path: &str,
        mode: AddWatchMode,
    ) -> impl Future<Output = Result<PersistentWatcher, Error>> + Send + 'static + use<> {
        let server_path = self.server_path(path);
        let meta = server_path.as_ref().ok().map(|server_path| Meta {
            server_path: std::sync::Arc::from(server_path.as_str()),
            chroot_len: u32::try_from(match path {
                "/" => server_path.len(),
                _ if server_path.ends_with(path) => server_path.len() - path.len(),
                _ => 0,
            })
            .unwrap_or(0),
            mode,
            commands: self.weak_commands(),
        });
        let (tx, rx) = stream::channel(meta);
        let watch = server_path.as_ref().ok().map(|p| WatchReg::Persistent {
            path: p.clone(),
            mode,
            tx,
        });

        let request = server_path.map(|path| {
            Request::AddWatch(AddWatchRequest {
                path,
                mode: mode.into(),
            })
        });
        let reply = self.submit(request, watch);
        let watcher = PersistentWatcher::new(rx);
        async move {
            let mut watcher = watcher;
            match reply
                .await
                .and_then(|reply| decode_reply(reply, OpCode::AddWatch))
            {
                Ok(_) => Ok(watcher),
                Err(error) => {
                    // Never registered: nothing to remove on the server.
                    watcher.disarm();
                    Err(error)
                }
            }
        }
    }

    /// Removes this client's watches of `kind` on `path`, on the server and locally; local
    /// watchers receive a `DataWatchRemoved`, `ChildWatchRemoved` or
    /// `PersistentWatchRemoved` event (and persistent streams end).
    ///
    /// Servers before 3.9 only accept [`WatcherType::Children`], [`WatcherType::Data`] and
    /// [`WatcherType::Any`] here (the persistent types fail with
    /// [`Error::MarshallingError`]); use `Any` to remove a persistent watch from them.
    ///
    /// # Errors
    ///
    /// [`Error::NoWatcher`] if the server has no such watch for this session.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/app", b"", zk_client::CreateMode::Persistent).await?;
    /// # let _watch = client.add_watch("/app", zk_client::AddWatchMode::Persistent).await?;
    /// use zk_client::WatcherType;
    /// client.remove_watches("/app", WatcherType::Any).await?;
    /// # Ok(()) }
    /// ```
    pub fn remove_watches(
        &self,
        path: &str,
        kind: WatcherType,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static + use<> {
        let server_path = self.server_path(path);
        let watch = server_path.as_ref().ok().map(|p| WatchReg::Remove {
            path: p.clone(),
            kind,
        });
        let request = server_path.map(|path| {
            Request::RemoveWatches(RemoveWatchesRequest {
                path,
                watcher_type: kind.into(),
            })
        });
        let reply = self.submit(request, watch);
        async move {
            decode_reply(reply.await?, OpCode::RemoveWatches)?;
            Ok(())
        }
    }

    /// Checks that the server holds a watch of `kind` on `path` for this session.
    ///
    /// # Errors
    ///
    /// [`Error::NoWatcher`] if it does not.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// use zk_client::WatcherType;
    /// let watched = client.check_watches("/app", WatcherType::Data).await.is_ok();
    /// # Ok(()) }
    /// ```
    pub fn check_watches(
        &self,
        path: &str,
        kind: WatcherType,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static + use<> {
        let request = self.server_path(path).map(|path| {
            Request::CheckWatches(CheckWatchesRequest {
                path,
                watcher_type: kind.into(),
            })
        });
        let reply = self.submit(request, None);
        async move {
            decode_reply(reply.await?, OpCode::CheckWatches)?;
            Ok(())
        }
    }
}

/// A continuous stream of changes to one node (and its children), from
/// [`Client::watch_changes`].
///
/// On 3.6+ servers it is a persistent watch; on older ones it re-registers one-shot watches
/// after each event, so changes that happen between an event and the re-registration are
/// missed there (re-read the node after each event). The stream ends after a session
/// event (expiry, close) or when the session ends.
pub struct ChangeStream {
    inner: std::pin::Pin<Box<dyn futures::Stream<Item = crate::WatchedEvent> + Send>>,
}

impl std::fmt::Debug for ChangeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeStream").finish_non_exhaustive()
    }
}

impl ChangeStream {
    /// The next change, or `None` once the stream ended. Cancellation-safe.
    pub async fn next(&mut self) -> Option<crate::WatchedEvent> {
        futures::StreamExt::next(&mut self.inner).await
    }
}

impl futures::Stream for ChangeStream {
    type Item = crate::WatchedEvent;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<crate::WatchedEvent>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// State of the one-shot fallback of [`ChangeStream`].
struct Legacy {
    client: Client,
    path: String,
    data: Option<crate::OneshotWatcher>,
    children: Option<crate::OneshotWatcher>,
    ended: bool,
}

impl Legacy {
    /// Re-registers the missing watches; `Err` when the stream must end.
    async fn arm(&mut self) -> Result<(), Error> {
        loop {
            let result = async {
                if self.data.is_none() {
                    let (stat, watcher) = self.client.exists_watch(&self.path).await?;
                    self.data = Some(watcher);
                    if stat.is_none() {
                        return Ok(());
                    }
                }
                if self.children.is_none() {
                    match self.client.get_children_watch(&self.path).await {
                        Ok((_, _, watcher)) => self.children = Some(watcher),
                        // Deleted in between: the data watch reports it.
                        Err(Error::NoNode) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            .await;
            match result {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retryable() => {
                    // Requests wait for the reconnection; this only paces throttling.
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn next_event(&mut self) -> Option<crate::WatchedEvent> {
        if self.ended {
            return None;
        }
        let event = match (&mut self.data, &mut self.children) {
            (Some(data), Some(children)) => match futures::future::select(data, children).await {
                futures::future::Either::Left((event, _)) => {
                    self.data = None;
                    event
                }
                futures::future::Either::Right((event, _)) => {
                    self.children = None;
                    event
                }
            },
            (Some(data), None) => {
                let event = data.await;
                self.data = None;
                event
            }
            (None, Some(children)) => {
                let event = children.await;
                self.children = None;
                event
            }
            (None, None) => return None,
        };
        if event.is_session_event() {
            self.ended = true;
            return Some(event);
        }
        // A deleted node fires both watches; the child one is no longer needed.
        if event.event_type == zk_proto::EventType::NodeDeleted {
            self.children = None;
        }
        // Re-arm before handing the event out, so that whatever the caller does next is
        // seen.
        if self.arm().await.is_err() {
            self.ended = true;
        }
        Some(event)
    }
}

impl Client {
    /// Every change to `path` (created, data changed, deleted, children changed) as one
    /// stream: a persistent watch on 3.6+ servers, re-registered one-shot watches on older
    /// ones (see [`ChangeStream`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/config", b"", zk_client::CreateMode::Persistent).await?;
    /// let mut changes = client.watch_changes("/config").await?;
    /// # client.set_data("/config", b"v2", None).await?;
    /// if let Some(event) = changes.next().await {
    ///     let (data, _) = client.get_data("/config").await?;
    ///     println!("{:?}: now {data:?}", event.event_type);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn watch_changes(&self, path: &str) -> Result<ChangeStream, Error> {
        match self.add_watch(path, AddWatchMode::Persistent).await {
            Ok(watcher) => Ok(ChangeStream {
                inner: Box::pin(watcher),
            }),
            Err(Error::Unimplemented) | Err(Error::MarshallingError) => {
                tracing::debug!(
                    path,
                    "no persistent watches on this server: one-shot fallback"
                );
                self.watch_changes_legacy(path).await
            }
            Err(e) => Err(e),
        }
    }

    /// [`watch_changes`](Self::watch_changes) with one-shot watches only, as it does on
    /// servers older than 3.6.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// # client.create("/config", b"", zk_client::CreateMode::Persistent).await?;
    /// let mut changes = client.watch_changes_legacy("/config").await?;
    /// # client.set_data("/config", b"v2", None).await?;
    /// let first = changes.next().await;
    /// # Ok(()) }
    /// ```
    pub async fn watch_changes_legacy(&self, path: &str) -> Result<ChangeStream, Error> {
        let mut legacy = Legacy {
            client: self.clone(),
            path: path.to_owned(),
            data: None,
            children: None,
            ended: false,
        };
        legacy.arm().await?;
        let stream = futures::stream::unfold(legacy, |mut legacy| async move {
            let event = legacy.next_event().await?;
            Some((event, legacy))
        });
        Ok(ChangeStream {
            inner: Box::pin(stream),
        })
    }
}
