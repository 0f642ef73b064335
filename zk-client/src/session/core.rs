//! The sans-io heart of a session: "request in → bytes out", "bytes in → replies and watch
//! events out". No sockets, no clock, no `.await`: the session task moves bytes and time
//! around it, and the unit tests below drive it with plain byte buffers.
//!
//! ```text
//!  submit(Outgoing) ──▶ [xid assigned, frame appended to `out`, Pending queued]
//!  receive(bytes)   ──▶ ReplyHeader ─┬─ xid -1: notification → WatchRegistry::dispatch
//!                                    ├─ xid -2: ping reply   → nothing
//!                                    ├─ xid -4: auth reply   → auth waiter (or AuthFailed)
//!                                    └─ else : must match the oldest Pending
//!                                              → register its watch, hand the raw reply over
//!  prime()          ──▶ auth packets, then setWatches batches, before anything else
//!                       (SASL, when configured, ran before prime: sasl_frame/sasl_reply)
//!  connection_lost()──▶ every Pending fails with ConnectionLoss
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::oneshot;
use zk_proto::codec::ensure_consumed;
use zk_proto::frame;
use zk_proto::records::{
    AuthPacket, ConnectRequest, ConnectResponse, GetSaslRequest, PASSWORD_LEN,
    RemoveWatchesRequest, ReplyHeader, RequestHeader, SetSaslResponse, WatcherEvent, xid,
};
use zk_proto::{AddWatchMode, Chroot, Decode, ErrorCode, EventType, OpCode, Request, WatcherType};

use super::pending::{Pending, PendingQueue, RawReply, ReplySender, Waiter, WatchReg, XidGen};
use super::state::{Ended, SessionState};
use super::watches::{OneshotKind, WatchRegistry, set_watches_requests};
use crate::error::Error;

/// Offset of the xid inside a frame built by [`encode_request`].
const XID_OFFSET: usize = frame::LENGTH_PREFIX_LEN;

/// A user request on its way to the session task: the frame is fully encoded at call time
/// (with xid 0); the task patches in the xid when it sends it.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) frame: BytesMut,
    pub(crate) op: OpCode,
    pub(crate) reply: ReplySender,
    pub(crate) watch: Option<WatchReg>,
}

/// Encodes `request` as a frame with xid 0, refusing frames over `max_frame_len`.
pub(crate) fn encode_request(request: &Request, max_frame_len: usize) -> Result<BytesMut, Error> {
    let header = RequestHeader::new(0, request.op_code());
    let mut buf = BytesMut::new();
    frame::encode_frame(&mut buf, max_frame_len, &(&header, request))?;
    Ok(buf)
}

/// Takes the `ConnectResponse` off `inbuf` once it is complete.
pub(crate) fn parse_connect_response(
    inbuf: &mut BytesMut,
    max_frame_in: usize,
) -> Result<Option<Negotiated>, Error> {
    let Some(payload) = frame::parse(inbuf, max_frame_in)? else {
        return Ok(None);
    };
    let response = ConnectResponse::decode_exact(payload)?;
    Ok(Some(Negotiated {
        session_id: response.session_id,
        password: response.passwd,
        timeout_ms: response.time_out,
        read_only: response.read_only.unwrap_or(false),
    }))
}

/// A `sasl` (102) request frame carrying `token`, with `xid`: an ordinary request (the Java
/// client's `sendPacket` gives it the next xid), answered by the server before anything else.
pub(crate) fn sasl_frame(xid: i32, token: Vec<u8>) -> Result<BytesMut, Error> {
    let request = Request::Sasl(GetSaslRequest {
        token: Some(Bytes::from(token)),
    });
    let mut frame = encode_request(&request, usize::MAX >> 1)?;
    frame[XID_OFFSET..XID_OFFSET + 4].copy_from_slice(&xid.to_be_bytes());
    Ok(frame)
}

/// What a frame received during the SASL exchange says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SaslReply {
    /// A ping or notification reply: not the answer yet.
    Other,
    /// The server's next token (a null token is an empty one, as in Java).
    Token(Bytes),
    /// The server refused the login (`AUTHFAILED`, or `SESSIONCLOSEDREQUIRESASLAUTH`) and
    /// closes the connection.
    Refused(ErrorCode),
}

/// Decodes the reply to the `sasl` request sent with `xid`.
pub(crate) fn sasl_reply(mut payload: Bytes, expected_xid: i32) -> Result<SaslReply, Error> {
    let header = ReplyHeader::decode(&mut payload).map_err(Error::protocol)?;
    if header.xid == xid::PING || header.xid == xid::NOTIFICATION {
        return Ok(SaslReply::Other);
    }
    if header.xid != expected_xid {
        return Err(Error::protocol(format!(
            "reply xid {} during the SASL exchange, {expected_xid} expected",
            header.xid
        )));
    }
    if header.err != 0 {
        return Ok(SaslReply::Refused(
            ErrorCode::try_from(header.err).unwrap_or(ErrorCode::AuthFailed),
        ));
    }
    let response = SetSaslResponse::decode_exact(payload).map_err(Error::protocol)?;
    Ok(SaslReply::Token(response.token.unwrap_or_default()))
}

/// What the server said in its `ConnectResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Negotiated {
    pub(crate) session_id: i64,
    pub(crate) password: Bytes,
    pub(crate) timeout_ms: i32,
    pub(crate) read_only: bool,
}

/// A server that broke the protocol: the connection is dropped (logged at warn).
fn protocol_violation(error: impl std::fmt::Display) -> Ended {
    tracing::warn!(%error, "protocol violation: dropping the connection");
    Ended::Lost(format!("protocol violation: {error}"))
}

#[derive(Debug)]
pub(crate) struct Core {
    xids: XidGen,
    last_zxid: i64,
    pending: PendingQueue,
    watches: WatchRegistry,
    auths: Vec<AuthPacket>,
    chroot: Chroot,
    max_frame_in: usize,
    /// Frames received so far (a pace estimate for reply coalescing).
    frames_received: u64,
    /// Bytes to write to the current connection.
    pub(crate) out: BytesMut,
}

impl Core {
    pub(crate) fn new(chroot: Chroot, max_frame_in: usize) -> Core {
        Core {
            xids: XidGen::default(),
            last_zxid: 0,
            pending: PendingQueue::default(),
            watches: WatchRegistry::default(),
            auths: Vec::new(),
            chroot,
            max_frame_in,
            frames_received: 0,
            out: BytesMut::with_capacity(64 * 1024),
        }
    }

    /// The highest zxid seen in a reply (not in a notification, ZOOKEEPER-4655).
    #[cfg(test)]
    pub(crate) fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// How many frames were received so far.
    pub(crate) fn frames_received(&self) -> u64 {
        self.frames_received
    }

    /// How many requests wait for their reply.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }

    #[cfg(test)]
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The `ConnectRequest` frame: a new session (`session = None`) or the one to resume.
    pub(crate) fn connect_frame(
        &self,
        session: Option<(i64, Bytes)>,
        timeout_ms: i32,
        read_only: bool,
    ) -> BytesMut {
        let (session_id, passwd) = session.unwrap_or((0, Bytes::from_static(&[0; PASSWORD_LEN])));
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            time_out: timeout_ms,
            session_id,
            passwd,
            read_only: Some(read_only),
        };
        let mut buf = BytesMut::with_capacity(64);
        // 45 bytes plus the password: cannot exceed any frame limit.
        let _ = frame::encode_frame(&mut buf, usize::MAX >> 1, &request);
        buf
    }

    /// Starts a new connection: drops unsent bytes, then queues the auth packets and the
    /// watch-restoring `setWatches` batches, which must precede every user request.
    pub(crate) fn prime(&mut self) {
        self.out.clear();
        for packet in self.auths.clone() {
            self.write_auth(&packet);
            self.pending.push_auth(None);
        }
        let lists = self.watches.lists();
        if !lists.is_empty() {
            for request in set_watches_requests(self.last_zxid, lists) {
                let op = request.op_code();
                match encode_request(&request, usize::MAX >> 1) {
                    Ok(frame) => self.push_frame(frame, op, Waiter::SetWatches),
                    Err(error) => tracing::warn!(%error, "cannot encode setWatches"),
                }
            }
        }
    }

    /// Takes `n` xids for requests sent outside the core (the SASL exchange).
    pub(crate) fn reserve_xids(&mut self, n: usize) -> Vec<i32> {
        (0..n).map(|_| self.xids.next_xid()).collect()
    }

    fn push_frame(&mut self, frame: BytesMut, op: OpCode, waiter: Waiter) {
        let xid = self.xids.next_xid();
        let start = self.out.len();
        self.out.extend_from_slice(&frame);
        self.out[start + XID_OFFSET..start + XID_OFFSET + 4].copy_from_slice(&xid.to_be_bytes());
        self.pending.push(Pending { xid, op, waiter });
    }

    /// Sends a user request on the current connection.
    pub(crate) fn submit(&mut self, outgoing: Outgoing) {
        let Outgoing {
            frame,
            op,
            reply,
            watch,
        } = outgoing;
        tracing::trace!(?op, "request");
        self.push_frame(frame, op, Waiter::User { reply, watch });
    }

    fn write_auth(&mut self, packet: &AuthPacket) {
        let header = RequestHeader::new(xid::AUTH, OpCode::Auth);
        let request = Request::Auth(packet.clone());
        if let Err(error) =
            frame::encode_frame(&mut self.out, usize::MAX >> 1, &(&header, &request))
        {
            tracing::warn!(%error, "cannot encode auth packet");
        }
    }

    /// Remembers credentials to send first on every connection (builder-level auth).
    pub(crate) fn remember_auth(&mut self, packet: AuthPacket) {
        self.auths.push(packet);
    }

    /// Adds credentials: sent now and again after every reconnect.
    pub(crate) fn submit_auth(
        &mut self,
        packet: AuthPacket,
        reply: oneshot::Sender<Result<(), Error>>,
    ) {
        self.write_auth(&packet);
        self.pending.push_auth(Some(reply));
        self.auths.push(packet);
    }

    /// A persistent watcher on `server_path` was dropped. When it was the last of its mode
    /// there, the server is asked to stop sending its events: `removeWatches` of type `Any`
    /// when nothing else is watched on that path (every server since 3.6 understands it),
    /// else of the persistent type (3.9+; older servers refuse it and the watch stays on the
    /// server until the next reconnect, costing ignored notifications). Nothing is sent while
    /// a request that registers a watch on the path is in flight, as the removal could
    /// overtake it on the server.
    pub(crate) fn watcher_dropped(&mut self, server_path: String, mode: AddWatchMode) {
        if self.watches.has_stream(mode, &server_path)
            || self.pending.registers_watch_on(&server_path)
        {
            return;
        }
        let kind = if self.watches.watches_path(&server_path) {
            match mode {
                AddWatchMode::Persistent => WatcherType::Persistent,
                AddWatchMode::PersistentRecursive => WatcherType::PersistentRecursive,
            }
        } else {
            WatcherType::Any
        };
        tracing::debug!(path = %server_path, ?kind, "last persistent watcher dropped: removing the watch");
        let request = Request::RemoveWatches(RemoveWatchesRequest {
            path: server_path,
            watcher_type: kind.into(),
        });
        match encode_request(&request, usize::MAX >> 1) {
            Ok(frame) => self.push_frame(frame, OpCode::RemoveWatches, Waiter::Internal),
            Err(error) => tracing::warn!(%error, "cannot encode removeWatches"),
        }
    }

    /// Sends `closeSession`.
    pub(crate) fn submit_close(&mut self) {
        let mut frame = BytesMut::with_capacity(12);
        frame.put_i32(8);
        frame.put_i32(0);
        frame.put_i32(OpCode::CloseSession.into());
        self.push_frame(frame, OpCode::CloseSession, Waiter::Close);
    }

    /// Queues a ping (xid -2).
    pub(crate) fn push_ping(&mut self) {
        self.out.put_i32(8);
        self.out.put_i32(xid::PING);
        self.out.put_i32(OpCode::Ping.into());
    }

    /// Handles every complete frame in `inbuf`. The connection ends with
    /// [`Ended::Closed`] once `closeSession` is answered, [`Ended::AuthFailed`] when an auth
    /// packet is refused, [`Ended::Lost`] when the server breaks the protocol.
    pub(crate) fn receive(&mut self, inbuf: &mut BytesMut) -> Result<(), Ended> {
        loop {
            let payload = match frame::parse(inbuf, self.max_frame_in) {
                Ok(Some(payload)) => payload,
                Ok(None) => return Ok(()),
                Err(e) => return Err(protocol_violation(e)),
            };
            self.frames_received += 1;
            self.handle_frame(payload)?;
        }
    }

    /// Handles one frame payload.
    pub(crate) fn handle_frame(&mut self, mut payload: Bytes) -> Result<(), Ended> {
        let header = ReplyHeader::decode(&mut payload).map_err(protocol_violation)?;
        tracing::trace!(
            xid = header.xid,
            zxid = header.zxid,
            err = header.err,
            "reply"
        );
        match header.xid {
            xid::NOTIFICATION => {
                let event = WatcherEvent::decode(&mut payload)
                    .and_then(|event| ensure_consumed(&payload).map(|()| event))
                    .map_err(protocol_violation)?;
                match EventType::try_from(event.event_type) {
                    Ok(event_type) => self.watches.dispatch(event_type, &event.path, &self.chroot),
                    Err(e) => tracing::debug!(%e, "notification of unknown type ignored"),
                }
                Ok(())
            }
            xid::PING => Ok(()),
            xid::AUTH => {
                let failed = header.err == ErrorCode::AuthFailed.as_i32();
                let result = match header.err {
                    0 => Ok(()),
                    err => Err(Error::from_code(err)),
                };
                if let Some(Some(waiter)) = self.pending.take_auth() {
                    let _ = waiter.send(result);
                }
                if failed {
                    tracing::warn!("authentication failed");
                    Err(Ended::AuthFailed)
                } else {
                    Ok(())
                }
            }
            xid => {
                let pending = self.pending.take(xid).map_err(protocol_violation)?;
                if header.zxid > 0 {
                    self.last_zxid = header.zxid;
                }
                match pending.waiter {
                    Waiter::User { reply, watch } => {
                        if let Some(watch) = watch {
                            self.register(watch, header.err);
                        }
                        let _ = reply.send(Ok(RawReply {
                            header,
                            body: payload,
                        }));
                        Ok(())
                    }
                    Waiter::SetWatches => {
                        if header.err != 0 {
                            tracing::warn!(err = header.err, "setWatches failed");
                        }
                        Ok(())
                    }
                    Waiter::Close => Err(Ended::Closed),
                    Waiter::Internal => {
                        if header.err != 0 {
                            tracing::debug!(op = ?pending.op, err = header.err, "internal request failed");
                        }
                        Ok(())
                    }
                }
            }
        }
    }

    fn register(&mut self, watch: WatchReg, err: i32) {
        let ok = err == 0;
        match watch {
            WatchReg::Exists { path, tx } if ok => {
                self.watches.add_oneshot(OneshotKind::Data, path, tx);
            }
            WatchReg::Exists { path, tx } if err == ErrorCode::NoNode.as_i32() => {
                self.watches.add_oneshot(OneshotKind::Exist, path, tx);
            }
            WatchReg::Data { path, tx } if ok => {
                self.watches.add_oneshot(OneshotKind::Data, path, tx);
            }
            WatchReg::Child { path, tx } if ok => {
                self.watches.add_oneshot(OneshotKind::Child, path, tx);
            }
            WatchReg::Persistent { path, mode, tx } if ok => {
                self.watches.add_persistent(mode, path, tx);
            }
            WatchReg::Remove { path, kind } if ok => {
                self.watches.remove(kind, &path, &self.chroot);
            }
            _ => {}
        }
    }

    /// The connection broke: everything in flight fails with connection loss. Returns
    /// whether a `closeSession` was in flight.
    pub(crate) fn connection_lost(&mut self) -> bool {
        self.out.clear();
        self.pending.fail_all(|op| Error::ConnectionLoss {
            outcome_unknown: super::pending::is_write(op),
        })
    }

    /// The session ended in `state`: everything in flight fails and every watcher gets its
    /// final event.
    pub(crate) fn terminate(&mut self, state: SessionState) {
        self.out.clear();
        let error = state.terminal_error();
        self.pending.fail_all(|_| error.clone());
        self.watches.terminate(state.keeper_state(), &self.chroot);
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;
    use zk_proto::records::{GetDataRequest, GetDataResponse, Stat};
    use zk_proto::{AddWatchMode, KeeperState, Response};

    use super::*;
    use crate::session::event::WatchedEvent;
    use crate::session::state::LostReason;

    fn core() -> Core {
        Core::new(Chroot::none(), frame::DEFAULT_MAX_FRAME_LEN)
    }

    fn reply_frame(xid: i32, zxid: i64, err: i32, body: &Response) -> BytesMut {
        let mut buf = BytesMut::new();
        let header = ReplyHeader { xid, zxid, err };
        frame::encode_frame(&mut buf, usize::MAX >> 1, &(&header, body))
            .unwrap_or_else(|e| panic!("{e}"));
        buf
    }

    fn get_data(path: &str) -> (Outgoing, oneshot::Receiver<Result<RawReply, Error>>) {
        let request = Request::GetData(GetDataRequest {
            path: path.into(),
            watch: false,
        });
        let (reply, rx) = oneshot::channel();
        let frame = encode_request(&request, frame::DEFAULT_MAX_FRAME_LEN)
            .unwrap_or_else(|e| panic!("{e}"));
        (
            Outgoing {
                frame,
                op: OpCode::GetData,
                reply,
                watch: None,
            },
            rx,
        )
    }

    /// Decodes every frame the core wrote: (xid, opcode).
    fn sent(core: &mut Core) -> Vec<(i32, i32)> {
        let mut out = core.out.split();
        let mut frames = Vec::new();
        while let Some(mut payload) =
            frame::parse(&mut out, usize::MAX >> 1).unwrap_or_else(|e| panic!("{e}"))
        {
            let header = RequestHeader::decode(&mut payload).unwrap_or_else(|e| panic!("{e}"));
            frames.push((header.xid, header.op));
        }
        frames
    }

    #[test]
    fn requests_get_increasing_xids_and_replies_in_order() {
        let mut core = core();
        let (a, mut ra) = get_data("/a");
        let (b, mut rb) = get_data("/b");
        core.submit(a);
        core.submit(b);
        assert_eq!(sent(&mut core), [(1, 4), (2, 4)]);

        let body = Response::GetData(GetDataResponse {
            data: Some(Bytes::from_static(b"x")),
            stat: Stat::default(),
        });
        let mut input = reply_frame(1, 10, 0, &body);
        input.extend_from_slice(&reply_frame(2, 11, -101, &Response::Empty));
        // Feed byte by byte: frames are only handled once complete.
        let mut inbuf = BytesMut::new();
        for byte in input.iter() {
            inbuf.put_u8(*byte);
            assert_eq!(core.receive(&mut inbuf), Ok(()));
        }
        let a = ra.try_recv().unwrap_or_else(|e| panic!("{e}"));
        let a = a.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.header.zxid, 10);
        assert_eq!(
            Response::decode_body(OpCode::GetData, &mut a.body.clone()).ok(),
            Some(body)
        );
        let b = rb.try_recv().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.map(|r| r.header.err).ok(), Some(-101));
        assert_eq!(core.last_zxid(), 11);
        assert!(!core.has_pending());
    }

    /// Decodes every `removeWatches` the core wrote: (path, watcher type).
    fn removals(core: &mut Core) -> Vec<(String, i32)> {
        let mut out = core.out.split();
        let mut found = Vec::new();
        while let Some(mut payload) =
            frame::parse(&mut out, usize::MAX >> 1).unwrap_or_else(|e| panic!("{e}"))
        {
            let header = RequestHeader::decode(&mut payload).unwrap_or_else(|e| panic!("{e}"));
            if header.op == i32::from(OpCode::RemoveWatches) {
                let request =
                    RemoveWatchesRequest::decode(&mut payload).unwrap_or_else(|e| panic!("{e}"));
                found.push((request.path, request.watcher_type));
            }
        }
        found
    }

    #[test]
    fn a_dropped_persistent_watcher_is_removed_on_the_server_when_it_was_the_last() {
        let mut core = core();
        let (tx1, rx1) = crate::session::stream::channel(None);
        let (tx2, rx2) = crate::session::stream::channel(None);
        core.watches
            .add_persistent(AddWatchMode::Persistent, "/p".into(), tx1);
        core.watches
            .add_persistent(AddWatchMode::Persistent, "/p".into(), tx2);
        drop(rx1);
        core.watcher_dropped("/p".into(), AddWatchMode::Persistent);
        assert_eq!(removals(&mut core), [], "another stream still watches /p");
        drop(rx2);
        core.watcher_dropped("/p".into(), AddWatchMode::Persistent);
        assert_eq!(removals(&mut core), [("/p".to_owned(), 3)], "type Any");

        // Something else still watches the path: only the persistent type is removed.
        let (otx, _orx) = oneshot::channel();
        core.watches
            .add_oneshot(OneshotKind::Child, "/q".into(), otx);
        let (tx3, rx3) = crate::session::stream::channel(None);
        core.watches
            .add_persistent(AddWatchMode::PersistentRecursive, "/q".into(), tx3);
        drop(rx3);
        core.watcher_dropped("/q".into(), AddWatchMode::PersistentRecursive);
        assert_eq!(removals(&mut core), [("/q".to_owned(), 5)]);

        // A registration on the path is in flight: nothing is sent (it could be overtaken).
        let (reply, _r) = oneshot::channel();
        let (tx4, _rx4) = crate::session::stream::channel(None);
        core.submit(Outgoing {
            frame: BytesMut::from(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 106][..]),
            op: OpCode::AddWatch,
            reply,
            watch: Some(WatchReg::Persistent {
                path: "/r".into(),
                mode: AddWatchMode::Persistent,
                tx: tx4,
            }),
        });
        core.watcher_dropped("/r".into(), AddWatchMode::Persistent);
        assert_eq!(removals(&mut core), []);
    }

    #[test]
    fn out_of_order_reply_is_fatal() {
        let mut core = core();
        let (a, _ra) = get_data("/a");
        core.submit(a);
        let mut input = reply_frame(7, 1, 0, &Response::Empty);
        assert!(matches!(core.receive(&mut input), Err(Ended::Lost(_))));
        let mut garbage = BytesMut::from(&[0xff, 0xff, 0xff, 0xf0][..]);
        assert!(matches!(core.receive(&mut garbage), Err(Ended::Lost(_))));
        let mut short = BytesMut::from(&[0, 0, 0, 3, 1, 2, 3][..]);
        assert!(matches!(core.receive(&mut short), Err(Ended::Lost(_))));
    }

    #[test]
    fn notifications_and_pings_do_not_touch_the_queue_or_zxid() {
        let mut core = core();
        let (tx, mut rx) = oneshot::channel();
        let (reply, _r) = oneshot::channel();
        let request = Request::GetData(GetDataRequest {
            path: "/w".into(),
            watch: true,
        });
        core.submit(Outgoing {
            frame: encode_request(&request, 1 << 20).unwrap_or_else(|e| panic!("{e}")),
            op: OpCode::GetData,
            reply,
            watch: Some(WatchReg::Data {
                path: "/w".into(),
                tx,
            }),
        });
        let body = Response::GetData(GetDataResponse::default());
        let mut input = reply_frame(1, 5, 0, &body);
        input.extend_from_slice(&reply_frame(xid::PING, 99, 0, &Response::Empty));
        let event = Response::Notification(WatcherEvent::new(EventType::NodeDeleted, "/w"));
        input.extend_from_slice(&reply_frame(xid::NOTIFICATION, 100, 0, &event));
        assert_eq!(core.receive(&mut input), Ok(()));
        assert_eq!(core.last_zxid(), 5);
        assert_eq!(
            rx.try_recv(),
            Ok(WatchedEvent::node(EventType::NodeDeleted, "/w"))
        );
    }

    #[test]
    fn watch_registration_follows_the_result() {
        let mut core = core();
        let mut receivers = Vec::new();
        for (watch_kind, err) in [("exists", -101), ("data", -101), ("child", 0)] {
            let (tx, rx) = oneshot::channel();
            let (reply, _r) = oneshot::channel();
            let path = format!("/{watch_kind}");
            let watch = match watch_kind {
                "exists" => WatchReg::Exists { path, tx },
                "data" => WatchReg::Data { path, tx },
                _ => WatchReg::Child { path, tx },
            };
            let (dummy, _) = get_data("/");
            core.submit(Outgoing {
                watch: Some(watch),
                reply,
                ..dummy
            });
            receivers.push((watch_kind, err, rx));
        }
        let mut input = BytesMut::new();
        for (i, (kind, err, _)) in receivers.iter().enumerate() {
            let body = match (*kind, *err) {
                ("child", 0) => Response::GetChildren(Default::default()),
                _ => Response::Empty,
            };
            input.extend_from_slice(&reply_frame(i as i32 + 1, 1, *err, &body));
        }
        assert_eq!(core.receive(&mut input), Ok(()));
        let lists = core.watches.lists();
        assert_eq!(lists.exist, ["/exists"]);
        assert!(
            lists.data.is_empty(),
            "getData on a missing node registers nothing"
        );
        assert_eq!(lists.child, ["/child"]);
        drop(receivers);
    }

    #[test]
    fn prime_sends_auth_then_set_watches_with_the_reply_zxid() {
        let mut core = core();
        let (reply, mut auth_rx) = oneshot::channel();
        core.submit_auth(AuthPacket::new("digest", Bytes::from_static(b"u:p")), reply);
        let mut ok = reply_frame(xid::AUTH, 0, 0, &Response::Empty);
        assert_eq!(core.receive(&mut ok), Ok(()));
        assert_eq!(auth_rx.try_recv(), Ok(Ok(())));

        let (stx, _srx) = crate::session::stream::channel(None);
        core.watches
            .add_persistent(AddWatchMode::Persistent, "/p".into(), stx);
        core.last_zxid = 42;
        core.out.clear();
        core.prime();
        let mut out = core.out.split();
        let mut frames = Vec::new();
        while let Some(payload) = frame::parse(&mut out, usize::MAX >> 1).unwrap_or_default() {
            frames.push(zk_proto::decode_request_frame(payload).unwrap_or_else(|e| panic!("{e}")));
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].0.xid, xid::AUTH);
        match &frames[1].1 {
            Request::SetWatches2(sw) => {
                assert_eq!(sw.relative_zxid, 42);
                assert_eq!(sw.persistent_watches, ["/p"]);
            }
            other => panic!("expected setWatches2, got {other:?}"),
        }
        // The setWatches reply is consumed internally.
        let mut input = reply_frame(xid::AUTH, 0, 0, &Response::Empty);
        input.extend_from_slice(&reply_frame(frames[1].0.xid, 43, 0, &Response::Empty));
        assert_eq!(core.receive(&mut input), Ok(()));
        assert!(!core.has_pending());
    }

    #[test]
    fn sasl_frames_and_replies() {
        let mut core = core();
        let xids = core.reserve_xids(2);
        assert_eq!(xids, [1, 2]);
        let (a, _ra) = get_data("/a");
        core.submit(a);
        assert_eq!(
            sent(&mut core),
            [(3, 4)],
            "user requests continue after them"
        );

        let mut frame = sasl_frame(7, Vec::new()).unwrap_or_else(|e| panic!("{e}"));
        let payload = frame::parse(&mut frame, 1 << 20)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_default();
        let (header, request) =
            zk_proto::decode_request_frame(payload).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((header.xid, header.op), (7, 102));
        assert_eq!(
            request,
            Request::Sasl(GetSaslRequest {
                token: Some(Bytes::new())
            })
        );

        let payload = |xid: i32, err: i32, token: Option<&'static [u8]>| {
            let body = Response::Sasl(SetSaslResponse {
                token: token.map(Bytes::from_static),
            });
            let mut buf = reply_frame(xid, 0, err, &body);
            frame::parse(&mut buf, 1 << 20)
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_default()
        };
        assert_eq!(
            sasl_reply(payload(7, 0, Some(b"nonce")), 7),
            Ok(SaslReply::Token(Bytes::from_static(b"nonce")))
        );
        assert_eq!(
            sasl_reply(payload(7, 0, None), 7),
            Ok(SaslReply::Token(Bytes::new()))
        );
        assert_eq!(
            sasl_reply(payload(7, -115, None), 7),
            Ok(SaslReply::Refused(ErrorCode::AuthFailed))
        );
        assert_eq!(
            sasl_reply(payload(xid::PING, 0, None), 7),
            Ok(SaslReply::Other)
        );
        assert!(sasl_reply(payload(8, 0, None), 7).is_err());
        assert!(sasl_reply(Bytes::from_static(&[0, 0]), 7).is_err());
    }

    #[test]
    fn auth_failure_is_fatal() {
        let mut core = core();
        let (reply, mut rx) = oneshot::channel();
        core.submit_auth(AuthPacket::new("digest", Bytes::from_static(b"u:p")), reply);
        let mut failed = reply_frame(xid::AUTH, 0, -115, &Response::Empty);
        assert_eq!(core.receive(&mut failed), Err(Ended::AuthFailed));
        assert_eq!(rx.try_recv(), Ok(Err(Error::AuthFailed)));
    }

    #[test]
    fn loss_and_termination() {
        let mut core = core();
        let (a, mut ra) = get_data("/a");
        core.submit(a);
        core.submit_close();
        assert!(core.connection_lost());
        assert!(matches!(
            ra.try_recv(),
            Ok(Err(Error::ConnectionLoss {
                outcome_unknown: false
            }))
        ));
        assert!(core.out.is_empty());

        let (tx, mut rx) = oneshot::channel();
        core.watches.add_oneshot(OneshotKind::Data, "/x".into(), tx);
        let (b, mut rb) = get_data("/b");
        core.submit(b);
        core.terminate(SessionState::Lost(LostReason::Expired));
        assert!(matches!(rb.try_recv(), Ok(Err(Error::SessionExpired))));
        assert_eq!(
            rx.try_recv(),
            Ok(WatchedEvent::session(KeeperState::Expired, "/x"))
        );
    }

    #[test]
    fn close_is_acknowledged() {
        let mut core = core();
        core.submit_close();
        assert_eq!(sent(&mut core), [(1, -11)]);
        let mut input = reply_frame(1, 3, 0, &Response::Empty);
        assert_eq!(core.receive(&mut input), Err(Ended::Closed));
    }

    #[test]
    fn random_bytes_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..2000 {
            let mut core = core();
            let (a, _ra) = get_data("/a");
            core.submit(a);
            let (tx, _rx) = oneshot::channel();
            core.watches.add_oneshot(OneshotKind::Data, "/a".into(), tx);
            let len = rng.random_range(0..64);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            // Often a plausible length prefix, so the body decoders get exercised too.
            if round % 2 == 0 && bytes.len() >= 4 {
                let body = u32::try_from(bytes.len() - 4).unwrap_or(0);
                bytes[..4].copy_from_slice(&body.to_be_bytes());
                if round % 4 == 0 && bytes.len() >= 8 {
                    bytes[4..8].copy_from_slice(&(-1i32).to_be_bytes());
                }
            }
            let mut input = BytesMut::from(&bytes[..]);
            let _ = core.receive(&mut input);
            let _ = parse_connect_response(&mut BytesMut::from(&bytes[..]), 1 << 20);
        }
    }

    #[test]
    fn connect_frames() {
        let mut core = core();
        core.last_zxid = 77;
        let mut frame = core.connect_frame(Some((5, Bytes::from_static(&[1; 16]))), 4000, true);
        let payload = frame::parse(&mut frame, 1 << 20)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_default();
        let request = ConnectRequest::decode_exact(payload).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request.last_zxid_seen, 77);
        assert_eq!(request.session_id, 5);
        assert_eq!(request.time_out, 4000);
        assert_eq!(request.read_only, Some(true));

        let response = ConnectResponse {
            protocol_version: 0,
            time_out: 6000,
            session_id: 9,
            passwd: Bytes::from_static(&[2; 16]),
            read_only: None,
        };
        let mut inbuf = BytesMut::new();
        frame::encode_frame(&mut inbuf, 1 << 20, &response).unwrap_or_else(|e| panic!("{e}"));
        let mut partial = inbuf.split_to(10);
        assert_eq!(parse_connect_response(&mut partial, 1 << 20), Ok(None));
        partial.unsplit(inbuf);
        let negotiated =
            parse_connect_response(&mut partial, 1 << 20).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            negotiated,
            Some(Negotiated {
                session_id: 9,
                password: Bytes::from_static(&[2; 16]),
                timeout_ms: 6000,
                read_only: false,
            })
        );
    }
}
