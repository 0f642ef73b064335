//! `addWatch` (persistent and persistent recursive), `removeWatches`, `checkWatches`.

use std::future::Future;

use tokio::sync::mpsc;
use zk_proto::records::{AddWatchRequest, CheckWatchesRequest, RemoveWatchesRequest};
use zk_proto::{AddWatchMode, OpCode, Request, WatcherType};

use crate::client::{Client, decode_reply};
use crate::error::Error;
use crate::session::pending::WatchReg;
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
    /// The watch is restored after a reconnect (with `setWatches2`).
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// use zk_client::AddWatchMode;
    /// # async fn demo(client: zk_client::Client) -> Result<(), zk_client::Error> {
    /// let mut events = client.add_watch("/app", AddWatchMode::PersistentRecursive).await?;
    /// while let Some(event) = events.next().await {
    ///     println!("{:?} {}", event.event_type, event.path);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn add_watch(
        &self,
        path: &str,
        mode: AddWatchMode,
    ) -> impl Future<Output = Result<PersistentWatcher, Error>> + Send + 'static + use<> {
        let (tx, rx) = mpsc::unbounded_channel();
        let server_path = self.server_path(path);
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
        let watcher = PersistentWatcher::new(rx, path.to_owned());
        async move {
            decode_reply(reply.await?, OpCode::AddWatch)?;
            Ok(watcher)
        }
    }

    /// Removes this client's watches of `kind` on `path`, on the server and locally; local
    /// watchers receive a `DataWatchRemoved`, `ChildWatchRemoved` or
    /// `PersistentWatchRemoved` event (and persistent streams end).
    ///
    /// # Errors
    ///
    /// [`Error::NoWatcher`] if the server has no such watch for this session.
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
