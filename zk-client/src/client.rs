//! [`Client`]: a cheap, cloneable handle on one ZooKeeper session.
//!
//! A handle holds a command sender, the session state receiver and fixed session facts.
//! Every operation validates its arguments, applies the chroot and encodes its request
//! *when called*, hands it to the session task, and returns a future for the reply: two
//! calls made one after the other reach the server in that order, even if their futures are
//! awaited in another order (or concurrently).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use zk_proto::codec::ensure_consumed;
use zk_proto::path::{validate_create_path, validate_path};
use zk_proto::{Chroot, OpCode, Request, Response};

use crate::error::Error;
use crate::session::core::{Outgoing, encode_request};
use crate::session::pending::{RawReply, WatchReg};
use crate::session::{self, Command, Config, SessionState};
use crate::transport::Endpoint;
use crate::watcher::StateChanges;

/// A handle on a ZooKeeper session. Clones share the session; the session ends when
/// [`close`](Client::close) is called or the last handle is dropped (then the client tries
/// to close the session on the server, bounded in time).
///
/// Every operation method queues its request before it returns, so requests reach the
/// server in call order. The returned futures are `'static`, `Send` and cancellation-safe
/// in the sense that dropping one only discards the reply: the request was already sent
/// and may still be applied.
///
/// ```no_run
/// use zk_client::{Client, CreateMode, CreateOptions};
///
/// # async fn demo() -> Result<(), zk_client::Error> {
/// let client = Client::connect("127.0.0.1:2181").await?;
/// let (path, _stat) = client
///     .create("/hello", b"world", &CreateOptions::new(CreateMode::Ephemeral))
///     .await?;
/// let (data, _stat) = client.get_data(&path).await?;
/// assert_eq!(&data[..], b"world");
/// client.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::UnboundedSender<Command>,
    state: watch::Receiver<SessionState>,
    changes: broadcast::Sender<SessionState>,
    config: Arc<Config>,
    session_id: i64,
    session_timeout: Duration,
    server: watch::Receiver<Option<Endpoint>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &format_args!("{:#x}", self.inner.session_id))
            .field("state", &*self.inner.state.borrow())
            .finish_non_exhaustive()
    }
}

/// A reply on its way: resolves to the raw reply or the error that prevented it. (A plain
/// struct rather than a boxed future: one allocation less per request.)
#[derive(Debug)]
pub(crate) struct ReplyFuture {
    state: Result<oneshot::Receiver<Result<RawReply, Error>>, Option<Error>>,
}

impl Future for ReplyFuture {
    type Output = Result<RawReply, Error>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match &mut self.state {
            Ok(rx) => std::pin::Pin::new(rx)
                .poll(cx)
                .map(|received| match received {
                    Ok(result) => result,
                    // The session task answers every request it takes (with an error if need
                    // be); a dropped sender means the task itself is gone.
                    Err(_) => Err(Error::Closed),
                }),
            Err(error) => std::task::Poll::Ready(Err(error.take().unwrap_or(Error::Closed))),
        }
    }
}

impl Client {
    pub(crate) async fn start(
        config: Arc<Config>,
        connect_timeout: Duration,
    ) -> Result<Client, Error> {
        let handles = session::spawn(config.clone());
        let established = match tokio::time::timeout(connect_timeout, handles.established).await {
            Ok(Ok(Ok(established))) => established,
            Ok(Ok(Err(error))) => return Err(error),
            Ok(Err(_)) => return Err(Error::Closed),
            // Dropping the command sender below ends the session task.
            Err(_) => return Err(Error::Timeout),
        };
        Ok(Client {
            inner: Arc::new(Inner {
                commands: handles.commands,
                state: handles.state,
                changes: handles.changes,
                server: handles.server,
                config,
                session_id: established.session_id,
                session_timeout: established.timeout,
            }),
        })
    }

    /// The server this client is connected to right now, as dialled (address and the host
    /// name from the connect string); `None` while disconnected or after the session ended.
    /// Useful in logs and to tell which member of an ensemble serves the session.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// if let Some(server) = client.connected_server() {
    ///     println!("served by {server}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn connected_server(&self) -> Option<Endpoint> {
        self.inner.server.borrow().clone()
    }

    /// The session id (as the server shows it, e.g. in `cons`).
    pub fn session_id(&self) -> i64 {
        self.inner.session_id
    }

    /// The session timeout negotiated with the first server.
    pub fn session_timeout(&self) -> Duration {
        self.inner.session_timeout
    }

    /// The current session state.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// if client.state().is_connected() {
    ///     println!("session {:#x} is up", client.session_id());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn state(&self) -> SessionState {
        *self.inner.state.borrow()
    }

    /// A `watch` receiver of the session state: always the latest value (intermediate
    /// states may be skipped); use [`state_changes`](Self::state_changes) to see each one.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// let mut state = client.state_watch();
    /// # client.close().await;
    /// let _ = state.wait_for(|s| s.is_terminal()).await;
    /// # Ok(()) }
    /// ```
    pub fn state_watch(&self) -> watch::Receiver<SessionState> {
        self.inner.state.clone()
    }

    /// Every state change from now on, in order.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// let mut changes = client.state_changes();
    /// # client.close().await;
    /// while let Some(state) = changes.next().await {
    ///     println!("session is now {state:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn state_changes(&self) -> StateChanges {
        StateChanges::new(self.inner.changes.subscribe(), self.inner.state.clone())
    }

    /// The chroot this client works under (none when the connect string had none).
    pub fn chroot(&self) -> &Chroot {
        &self.inner.config.chroot
    }

    /// Closes the session: sends `closeSession` (its ephemeral nodes go away at once) after
    /// the requests already issued, waits for the reply at most two thirds of the session
    /// timeout, and ends the session task. Never fails and never hangs; idempotent. Other
    /// handles then fail with [`Error::Closed`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = zk_server_lite::Server::builder().start().await?;
    /// # let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// client.close().await;
    /// assert!(client.state().is_terminal());
    /// # Ok(()) }
    /// ```
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.inner.commands.send(Command::Close { reply }).is_ok() {
            let _ = done.await;
        }
    }

    // ---- plumbing for the ops --------------------------------------------------------------

    /// The server path for a client path, validated.
    pub(crate) fn server_path(&self, path: &str) -> Result<String, Error> {
        validate_path(path).map_err(|e| Error::invalid_path(path, e))?;
        Ok(self.inner.config.chroot.prefix(path))
    }

    /// The server path for a create, validated with the sequential rule if needed.
    pub(crate) fn server_create_path(&self, path: &str, sequential: bool) -> Result<String, Error> {
        validate_create_path(path, sequential).map_err(|e| Error::invalid_path(path, e))?;
        Ok(self.inner.config.chroot.prefix(path))
    }

    /// The client path for a server path.
    pub(crate) fn client_path(chroot: &Chroot, server_path: String) -> String {
        match chroot.strip(&server_path) {
            Some(stripped) if stripped.len() != server_path.len() => stripped.to_owned(),
            _ => server_path,
        }
    }

    /// Encodes and enqueues `request` now; the returned future waits for the reply.
    pub(crate) fn submit(
        &self,
        request: Result<Request, Error>,
        watch: Option<WatchReg>,
    ) -> ReplyFuture {
        let sent = request.and_then(|request| {
            let op = request.op_code();
            let frame = encode_request(&request, self.inner.config.max_frame_out)?;
            let (reply, rx) = oneshot::channel();
            let outgoing = Outgoing {
                frame,
                op,
                reply,
                watch,
            };
            self.inner
                .commands
                .send(Command::Request(outgoing))
                .map_err(|_| self.inner.state.borrow().terminal_error())?;
            Ok(rx)
        });
        ReplyFuture {
            state: sent.map_err(Some),
        }
    }

    /// A sender to the session task that does not keep it alive.
    pub(crate) fn weak_commands(&self) -> mpsc::WeakUnboundedSender<Command> {
        self.inner.commands.downgrade()
    }

    /// Enqueues an auth packet.
    pub(crate) fn submit_auth(
        &self,
        packet: zk_proto::records::AuthPacket,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static + use<> {
        let state = self.inner.state.clone();
        let (reply, rx) = oneshot::channel();
        let sent = self
            .inner
            .commands
            .send(Command::AddAuth { packet, reply })
            .map_err(|_| state.borrow().terminal_error());
        async move {
            sent?;
            match rx.await {
                Ok(result) => result,
                Err(_) => Err(state.borrow().terminal_error()),
            }
        }
    }
}

/// Checks a reply's error code and decodes its body as the answer to `op`.
pub(crate) fn decode_reply(reply: RawReply, op: OpCode) -> Result<Response, Error> {
    if reply.header.err != 0 {
        return Err(Error::from_code(reply.header.err));
    }
    let mut body = reply.body;
    let response = Response::decode_body(op, &mut body)?;
    ensure_consumed(&body)?;
    Ok(response)
}

/// The error for a reply body of the wrong kind.
pub(crate) fn unexpected(response: &Response) -> Error {
    Error::Protocol(format!("unexpected response {response:?}"))
}
