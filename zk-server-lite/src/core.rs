//! The server core: ties prep → log → apply together. Sans-io: inputs are decoded requests
//! tagged with a connection id plus the current time; outputs are frames (and closes) per
//! connection, in the order they must be sent.
//!
//! ```text
//!   connect / request / tick / disconnected  (+ Now)
//!                  │
//!        ┌─────────▼──────────┐  reads are answered here, from the tree
//!        │ Core               │
//!        │  prep  ─► TxnBody  │  writes: validation, ACL, versions, names → txn
//!        │  log   ─► TxnLog   │  append + sync (durability point)
//!        │  apply ─► DataTree │  tree change → result + TreeEvents
//!        │  watches ─► conns  │  events → notifications (before the writer's reply)
//!        └─────────┬──────────┘
//!                  ▼
//!        Vec<(ConnId, Output)>  Handshake / Reply / Close, in send order
//! ```
//!
//! Every write gets a zxid, failed ones too (as an `Error` txn, as Apache does), so reply
//! zxids match a real server's. Sessions are transactions: `createSession` on connect,
//! `closeSession` on close or expiry; applying the latter deletes the session's ephemerals
//! and closes its connection.
//!
//! Toward Zab: today prep, log append and apply run back to back under one lock, so prep's
//! overlay of pending changes ([`Prep`]) only spans one request (a multi). With a quorum the
//! log step becomes "propose, wait for commit": the overlay must then live across
//! outstanding proposals (Apache's `outstandingChanges`), and apply runs when the commit
//! arrives. Replies already flow through a "hold until position N is durable" queue in the
//! listener, which is the same shape as "hold until committed".

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;
use zk_proto::path::validate_path;
use zk_proto::records::*;
use zk_proto::{AddWatchMode, ErrorCode, EventType, OpCode, Perms, Request, Response};

use crate::ConnId;
use crate::acl::{self, AuthOutcome};
use crate::data_tree::{DataTree, TreeEvent, TxnResult};
use crate::prep::{Prep, PrepContext};
use crate::sessions::SessionTracker;
use crate::storage::{MemLog, Snapshot, TxnLog};
use crate::txn::{NodeKind, Txn, TxnBody, TxnHeader};
use crate::watches::WatchManager;

/// The current time, passed into the core: wall-clock ms (ctime/mtime, TTLs) and monotonic ms
/// (session expiry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Now {
    /// Milliseconds since the Unix epoch.
    pub wall_ms: i64,
    /// Milliseconds on a monotonic clock (any origin).
    pub mono_ms: i64,
}

impl Now {
    /// Both clocks at `ms` (handy in tests).
    pub fn at(ms: i64) -> Now {
        Now {
            wall_ms: ms,
            mono_ms: ms,
        }
    }
}

/// What to send on (or do with) a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The handshake reply (no ReplyHeader).
    Handshake(ConnectResponse),
    /// A reply or notification.
    Reply(ReplyHeader, Response),
    /// Flush what was queued, then close the connection.
    Close,
}

/// Outputs in send order.
pub type Outputs = Vec<(ConnId, Output)>;

/// Core settings (the subset of zoo.cfg the state machine uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreConfig {
    /// `tickTime`, ms.
    pub tick_ms: i64,
    /// `minSessionTimeout`, ms (default 2 × tick).
    pub min_session_timeout: i32,
    /// `maxSessionTimeout`, ms (default 20 × tick).
    pub max_session_timeout: i32,
    /// `zookeeper.extendedTypesEnabled`: TTL nodes.
    pub extended_types: bool,
    /// `super:<digest>` id of the super user, if any.
    pub super_digest: Option<String>,
    /// This server's id (top byte of session ids).
    pub myid: u8,
    /// `znode.container.checkIntervalMs`.
    pub container_check_interval_ms: i64,
    /// `znode.container.maxNeverUsedIntervalMs` (0 = never reap unused containers).
    pub container_max_never_used_ms: i64,
    /// Secret mixed into session passwords.
    pub password_secret: u64,
}

impl CoreConfig {
    /// Defaults for a tick time: timeouts 2..20 ticks, no extended types, no super digest.
    pub fn with_tick(tick_ms: i64) -> CoreConfig {
        let tick = i32::try_from(tick_ms).unwrap_or(i32::MAX / 20);
        CoreConfig {
            tick_ms,
            min_session_timeout: tick.saturating_mul(2),
            max_session_timeout: tick.saturating_mul(20),
            extended_types: false,
            super_digest: None,
            myid: 0,
            container_check_interval_ms: 60_000,
            container_max_never_used_ms: 0,
            password_secret: 0xB341_5C00,
        }
    }
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig::with_tick(2000)
    }
}

/// Per-connection state and counters.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The peer's address, if known.
    pub peer: Option<SocketAddr>,
    /// The session bound to this connection.
    pub session: Option<i64>,
    /// Authenticated ids (starts with `ip:<peer>`).
    pub auth: Vec<Id>,
    /// Packets received.
    pub received: u64,
    /// Packets sent.
    pub sent: u64,
    /// Last client xid.
    pub last_cxid: i32,
    /// Last zxid replied.
    pub last_zxid: i64,
    /// Last opcode name.
    pub last_op: &'static str,
    /// When the connection was accepted (wall ms).
    pub established: i64,
}

/// Server-wide counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets received.
    pub received: u64,
    /// Packets sent.
    pub sent: u64,
}

/// The state machine.
pub struct Core {
    cfg: CoreConfig,
    tree: DataTree,
    sessions: SessionTracker,
    watches: WatchManager,
    log: Box<dyn TxnLog>,
    last_zxid: i64,
    conns: HashMap<ConnId, ConnInfo>,
    session_conn: HashMap<i64, ConnId>,
    next_reap: i64,
    counters: Counters,
    since_snapshot: u64,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("last_zxid", &self.last_zxid)
            .field("nodes", &self.tree.node_count())
            .field("sessions", &self.sessions.len())
            .field("connections", &self.conns.len())
            .finish()
    }
}

fn reply(xid: i32, zxid: i64, result: Result<Response, ErrorCode>) -> Output {
    match result {
        Ok(body) => Output::Reply(ReplyHeader::new(xid, zxid, ErrorCode::Ok), body),
        Err(err) => Output::Reply(ReplyHeader::new(xid, zxid, err), Response::Empty),
    }
}

fn validate(path: &str) -> Result<(), ErrorCode> {
    validate_path(path).map_err(|_| ErrorCode::BadArguments)
}

/// Maps an applied write's result to the reply body for the request opcode.
fn write_response(op: OpCode, body: &TxnBody, result: TxnResult) -> Result<Response, ErrorCode> {
    match result {
        TxnResult::Created { path, stat } => Ok(if op == OpCode::Create {
            Response::Create(CreateResponse { path })
        } else {
            Response::Create2(Create2Response { path, stat })
        }),
        TxnResult::Deleted | TxnResult::Check => Ok(Response::Empty),
        TxnResult::SetData(stat) => Ok(Response::SetData(SetDataResponse { stat })),
        TxnResult::SetAcl(stat) => Ok(Response::SetAcl(SetAclResponse { stat })),
        TxnResult::Error(err) => Err(err),
        TxnResult::SessionCreated | TxnResult::SessionClosed => Ok(Response::Empty),
        TxnResult::Multi(results) => {
            let ops: &[(OpCode, TxnBody)] = match body {
                TxnBody::Multi(ops) => ops,
                _ => &[],
            };
            let results = results
                .into_iter()
                .zip(ops.iter())
                .map(|(r, (op, _))| match r {
                    TxnResult::Created { path, stat } => {
                        // Apache's MultiOperationRecord reads create and create2 alike
                        // as `Op.create`, whose type is create unless the mode is a
                        // container or TTL: inside a multi a create2 is answered like a
                        // create, with the path only (3.8 and 3.9 alike).
                        if matches!(*op, OpCode::Create | OpCode::Create2) {
                            MultiResult::Create(CreateResponse { path })
                        } else {
                            MultiResult::Create2(Create2Response { path, stat })
                        }
                    }
                    TxnResult::Deleted => MultiResult::Delete,
                    TxnResult::SetData(stat) => MultiResult::SetData(SetDataResponse { stat }),
                    TxnResult::Check => MultiResult::Check,
                    TxnResult::Error(e) => MultiResult::Error(e.into()),
                    _ => MultiResult::Error(ErrorCode::RuntimeInconsistency.into()),
                })
                .collect();
            Ok(Response::Multi(MultiResponse { results }))
        }
    }
}

impl Core {
    /// A fresh server with an in-memory log.
    pub fn new(cfg: CoreConfig, now: Now) -> Core {
        Core::with_log(cfg, Box::new(MemLog::default()), now)
    }

    /// A fresh server writing to `log`.
    pub fn with_log(cfg: CoreConfig, log: Box<dyn TxnLog>, now: Now) -> Core {
        // Seeded from the wall clock so ids differ across restarts (Apache uses its
        // elapsed-time clock, which has the same effect).
        let sessions = SessionTracker::new(cfg.myid, now.wall_ms, cfg.tick_ms, cfg.password_secret);
        let next_reap = now.mono_ms + cfg.container_check_interval_ms;
        Core {
            cfg,
            tree: DataTree::new(),
            sessions,
            watches: WatchManager::new(),
            log,
            last_zxid: 0,
            conns: HashMap::new(),
            session_conn: HashMap::new(),
            next_reap,
            counters: Counters::default(),
            since_snapshot: 0,
        }
    }

    /// A server restored from a snapshot and the log txns after it (recovery). Restored
    /// sessions get a fresh timeout from `now`; clients that come back in time keep them.
    pub fn restore(
        cfg: CoreConfig,
        log: Box<dyn TxnLog>,
        snapshot: Option<Snapshot>,
        txns: Vec<Txn>,
        now: Now,
    ) -> Core {
        let mut core = Core::with_log(cfg, log, now);
        if let Some(snap) = snapshot {
            core.tree = snap.tree;
            core.last_zxid = snap.zxid;
            for (id, timeout) in snap.sessions {
                core.sessions.add(id, timeout, now.mono_ms);
            }
        }
        let mut discard = Vec::new();
        for txn in &txns {
            core.apply(txn, now, &mut discard);
            discard.clear();
        }
        core.since_snapshot = txns.len() as u64;
        let max_id = core.sessions.iter().map(|s| s.id).max();
        if let Some(max_id) = max_id {
            core.sessions.ensure_next_above(max_id);
        }
        core
    }

    /// A consistent copy of the state at [`last_zxid`](Self::last_zxid), and resets the
    /// txns-since-snapshot count.
    pub fn snapshot(&mut self) -> Snapshot {
        self.since_snapshot = 0;
        Snapshot {
            zxid: self.last_zxid,
            tree: self.tree.clone(),
            sessions: self.sessions.iter().map(|s| (s.id, s.timeout)).collect(),
        }
    }

    /// Txns logged since the last [`snapshot`](Self::snapshot).
    pub fn txns_since_snapshot(&self) -> u64 {
        self.since_snapshot
    }

    /// The transaction log.
    pub fn log(&self) -> &dyn TxnLog {
        self.log.as_ref()
    }

    /// The transaction log, mutably (sync, roll).
    pub fn log_mut(&mut self) -> &mut dyn TxnLog {
        self.log.as_mut()
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// The tree.
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// The session table.
    pub fn sessions(&self) -> &SessionTracker {
        &self.sessions
    }

    /// The watch tables.
    pub fn watches(&self) -> &WatchManager {
        &self.watches
    }

    /// The last zxid applied.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Live connections.
    pub fn connections(&self) -> impl Iterator<Item = (&ConnId, &ConnInfo)> {
        self.conns.iter()
    }

    /// Number of live connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// The connection bound to a session.
    pub fn connection_of(&self, session: i64) -> Option<ConnId> {
        self.session_conn.get(&session).copied()
    }

    /// Server-wide packet counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Counts an outgoing frame (the listener calls this as it sends).
    pub fn note_sent(&mut self, conn: ConnId) {
        self.counters.sent += 1;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.sent += 1;
        }
    }

    /// Registers a new connection (before its handshake).
    pub fn open(&mut self, conn: ConnId, peer: Option<SocketAddr>, now: Now) {
        let auth = peer
            .map(|addr| vec![Id::new("ip", addr.ip().to_string())])
            .unwrap_or_default();
        self.conns.insert(
            conn,
            ConnInfo {
                peer,
                session: None,
                auth,
                received: 0,
                sent: 0,
                last_cxid: 0,
                last_zxid: 0,
                last_op: "NA",
                established: now.wall_ms,
            },
        );
    }

    /// Forgets a connection that closed: its watches go; its session lives on until it
    /// expires or is re-attached.
    pub fn disconnected(&mut self, conn: ConnId) {
        self.watches.remove_connection(conn);
        if let Some(info) = self.conns.remove(&conn)
            && let Some(session) = info.session
            && self.session_conn.get(&session) == Some(&conn)
        {
            self.session_conn.remove(&session);
        }
    }

    fn negotiate(&self, requested: i32) -> i32 {
        requested.clamp(
            self.cfg.min_session_timeout,
            self.cfg
                .max_session_timeout
                .max(self.cfg.min_session_timeout),
        )
    }

    /// Handles the handshake of `conn` (Apache's `processConnectRequest`).
    pub fn connect(&mut self, conn: ConnId, req: &ConnectRequest, now: Now) -> Outputs {
        let mut out = Vec::new();
        if !self.conns.contains_key(&conn) {
            self.open(conn, None, now);
        }
        self.counters.received += 1;
        if req.last_zxid_seen > self.last_zxid {
            tracing::info!(
                client_zxid = req.last_zxid_seen,
                our_zxid = self.last_zxid,
                "client has seen a newer zxid; refusing"
            );
            out.push((conn, Output::Close));
            return out;
        }
        let timeout = self.negotiate(req.time_out);
        let read_only = req.read_only.map(|_| false);
        let session = if req.session_id == 0 {
            let id = self.sessions.next_session_id();
            self.submit(
                id,
                0,
                OpCode::CreateSession,
                TxnBody::CreateSession { timeout },
                now,
                &mut out,
            );
            tracing::debug!(session = format_args!("{id:#x}"), timeout, "new session");
            id
        } else {
            let id = req.session_id;
            let password_ok = req.passwd[..] == self.sessions.password(id)[..];
            if !self.sessions.is_live(id) || !password_ok {
                tracing::debug!(
                    session = format_args!("{id:#x}"),
                    password_ok,
                    "re-attach refused"
                );
                out.push((
                    conn,
                    Output::Handshake(ConnectResponse {
                        protocol_version: 0,
                        time_out: 0,
                        session_id: 0,
                        passwd: Bytes::from_static(&[0; PASSWORD_LEN]),
                        read_only,
                    }),
                ));
                out.push((conn, Output::Close));
                return out;
            }
            self.sessions.set_timeout(id, timeout, now.mono_ms);
            id
        };
        if let Some(old) = self.session_conn.insert(session, conn)
            && old != conn
        {
            if let Some(info) = self.conns.get_mut(&old) {
                info.session = None;
            }
            out.push((old, Output::Close));
        }
        if let Some(info) = self.conns.get_mut(&conn) {
            info.session = Some(session);
        }
        out.push((
            conn,
            Output::Handshake(ConnectResponse {
                protocol_version: 0,
                time_out: timeout,
                session_id: session,
                passwd: Bytes::copy_from_slice(&self.sessions.password(session)),
                read_only,
            }),
        ));
        out
    }

    /// Allocates a zxid, logs and applies a txn; notifications go to `out`.
    fn submit(
        &mut self,
        session_id: i64,
        cxid: i32,
        op: OpCode,
        body: TxnBody,
        now: Now,
        out: &mut Outputs,
    ) -> (TxnResult, TxnBody) {
        let zxid = self.last_zxid + 1;
        let txn = Txn {
            header: TxnHeader {
                session_id,
                cxid,
                zxid,
                time: now.wall_ms,
                op,
            },
            body,
        };
        // Appended only: the server makes it durable (one fsync for many txns) before it
        // releases the outputs that follow (see `listener`).
        if let Err(e) = self.log.append(&txn) {
            tracing::error!(error = %e, zxid, "transaction log failed");
            return (TxnResult::Error(ErrorCode::SystemError), txn.body);
        }
        self.since_snapshot += 1;
        let result = self.apply(&txn, now, out);
        (result, txn.body)
    }

    /// Applies a committed txn: sessions, tree, watches.
    pub fn apply(&mut self, txn: &Txn, now: Now, out: &mut Outputs) -> TxnResult {
        let zxid = txn.header.zxid;
        self.last_zxid = self.last_zxid.max(zxid);
        match &txn.body {
            TxnBody::CreateSession { timeout } => {
                self.sessions
                    .add(txn.header.session_id, *timeout, now.mono_ms);
            }
            TxnBody::CloseSession { .. } => {
                self.sessions.remove(txn.header.session_id);
            }
            _ => {}
        }
        let mut events = Vec::new();
        let result = self.tree.apply(txn, &mut events);
        self.notify(&events, zxid, out);
        result
    }

    fn notify(&mut self, events: &[TreeEvent], zxid: i64, out: &mut Outputs) {
        for event in events {
            for conn in self.watches.trigger(event) {
                let allowed = self
                    .conns
                    .get(&conn)
                    .is_some_and(|c| acl::check(&event.acl, Perms::READ, &c.auth));
                if allowed {
                    out.push((conn, notification(zxid, event.event, &event.path)));
                }
            }
        }
    }

    fn close_session(&mut self, session: i64, cxid: i32, now: Now, out: &mut Outputs) -> i64 {
        let paths = self.tree.ephemerals(session);
        self.submit(
            session,
            cxid,
            OpCode::CloseSession,
            TxnBody::CloseSession {
                paths_to_delete: paths,
            },
            now,
            out,
        );
        self.last_zxid
    }

    /// Expires a session now (fault injection; also what a tick does for late sessions).
    /// Returns `false` if the session is unknown or already closing.
    pub fn expire_session(&mut self, session: i64, now: Now) -> (bool, Outputs) {
        let mut out = Vec::new();
        if !self.sessions.set_closing(session) {
            return (false, out);
        }
        self.expire(session, now, &mut out);
        (true, out)
    }

    fn expire(&mut self, session: i64, now: Now, out: &mut Outputs) {
        tracing::info!(session = format_args!("{session:#x}"), "session expired");
        self.close_session(session, 0, now, out);
        if let Some(conn) = self.session_conn.remove(&session) {
            if let Some(info) = self.conns.get_mut(&conn) {
                info.session = None;
            }
            out.push((conn, Output::Close));
        }
    }

    /// Periodic work at `now`: expire late sessions, reap containers and TTL nodes.
    pub fn tick(&mut self, now: Now) -> Outputs {
        let mut out = Vec::new();
        for session in self.sessions.expired(now.mono_ms) {
            self.expire(session, now, &mut out);
        }
        if now.mono_ms >= self.next_reap {
            self.next_reap = now.mono_ms + self.cfg.container_check_interval_ms.max(1);
            self.reap(now, &mut out);
        }
        out
    }

    /// Deletes empty used containers, never-used containers past
    /// `container_max_never_used_ms`, and empty TTL nodes whose TTL has passed since their
    /// last setData (Apache's `ContainerManager`).
    pub fn reap(&mut self, now: Now, out: &mut Outputs) {
        let mut candidates = Vec::new();
        for path in self.tree.containers().chain(self.tree.ttl_nodes()) {
            let Some(node) = self.tree.get(path) else {
                continue;
            };
            if !node.children.is_empty() {
                continue;
            }
            let elapsed = now.wall_ms - node.mtime;
            let due = match node.kind() {
                NodeKind::Container => {
                    node.cversion > 0
                        || (self.cfg.container_max_never_used_ms > 0
                            && elapsed > self.cfg.container_max_never_used_ms)
                }
                NodeKind::Ttl(ttl) => ttl > 0 && elapsed > ttl,
                _ => false,
            };
            if due {
                candidates.push(path.clone());
            }
        }
        for path in candidates {
            let body = match Prep::new(&self.tree).delete_container(&path) {
                Ok(body) => body,
                Err(_) => continue,
            };
            tracing::debug!(path, "reaping");
            self.submit(0, 0, OpCode::DeleteContainer, body, now, out);
        }
    }

    /// A request whose opcode is unknown or not allowed from clients: UNIMPLEMENTED, then
    /// close (Apache).
    pub fn unimplemented(&mut self, conn: ConnId, xid: i32) -> Outputs {
        let header = ReplyHeader::new(xid, self.last_zxid, ErrorCode::Unimplemented);
        vec![
            (conn, Output::Reply(header, Response::Empty)),
            (conn, Output::Close),
        ]
    }

    /// A request whose body did not decode: MARSHALLINGERROR. A write still consumes a zxid
    /// (an error txn), as in Apache.
    pub fn malformed(&mut self, conn: ConnId, xid: i32, op: OpCode, now: Now) -> Outputs {
        let mut out = Vec::new();
        if op.is_write()
            && let Some(session) = self.conns.get(&conn).and_then(|c| c.session)
        {
            self.submit(
                session,
                xid,
                op,
                TxnBody::Error(ErrorCode::MarshallingError),
                now,
                &mut out,
            );
        }
        out.push((
            conn,
            reply(xid, self.last_zxid, Err(ErrorCode::MarshallingError)),
        ));
        out
    }

    /// Handles one request from an established connection.
    pub fn request(
        &mut self,
        conn: ConnId,
        header: RequestHeader,
        req: Request,
        now: Now,
    ) -> Outputs {
        let mut out = Vec::new();
        let xid = header.xid;
        self.counters.received += 1;
        let Some(info) = self.conns.get_mut(&conn) else {
            out.push((conn, Output::Close));
            return out;
        };
        info.received += 1;
        info.last_cxid = xid;
        info.last_op = req.op_code().name();
        let Some(session) = info.session else {
            // No handshake on this connection (or its session moved away): close.
            out.push((conn, Output::Close));
            return out;
        };
        let auth = info.auth.clone();
        if !self.sessions.touch(session, now.mono_ms) {
            out.push((
                conn,
                reply(xid, self.last_zxid, Err(ErrorCode::SessionExpired)),
            ));
            return out;
        }
        let ctx = PrepContext {
            session_id: session,
            auth: &auth,
            extended_types: self.cfg.extended_types,
        };
        let op = req.op_code();
        let write = match req {
            Request::Create(r) => Some(MultiOp::Create(r)),
            Request::Create2(r) => Some(MultiOp::Create2(r)),
            Request::CreateContainer(r) => Some(MultiOp::CreateContainer(r)),
            Request::CreateTtl(r) => Some(MultiOp::CreateTtl(r)),
            Request::Delete(r) => Some(MultiOp::Delete(r)),
            Request::SetData(r) => Some(MultiOp::SetData(r)),
            Request::SetAcl(r) => {
                let body = Prep::new(&self.tree)
                    .set_acl(&ctx, &r.path, &r.acl, r.version)
                    .unwrap_or_else(TxnBody::Error);
                self.write(conn, session, xid, op, body, now, &mut out);
                return out;
            }
            Request::Multi(r) => {
                let body = Prep::new(&self.tree).multi(&ctx, &r.ops);
                self.write(conn, session, xid, op, body, now, &mut out);
                return out;
            }
            Request::CloseSession => {
                self.sessions.set_closing(session);
                self.close_session(session, xid, now, &mut out);
                self.session_conn.remove(&session);
                if let Some(info) = self.conns.get_mut(&conn) {
                    info.session = None;
                }
                out.push((conn, reply(xid, self.last_zxid, Ok(Response::Empty))));
                out.push((conn, Output::Close));
                return out;
            }
            Request::Reconfig(_) => {
                // Standalone: reconfig is disabled. Apache fails it in prep, so it still
                // consumes a zxid (an error txn).
                let body = TxnBody::Error(ErrorCode::ReconfigDisabled);
                self.write(conn, session, xid, op, body, now, &mut out);
                return out;
            }
            Request::DeleteContainer(_) => {
                // Apache 3.8 preps a client's deleteContainer like its reaper's, but takes the
                // path from the raw request buffer (header included); its NUL bytes fail path
                // validation: BADARGUMENTS as an error txn (a zxid is used), connection kept.
                let body = TxnBody::Error(ErrorCode::BadArguments);
                self.write(conn, session, xid, op, body, now, &mut out);
                return out;
            }
            Request::Check(_) | Request::Sasl(_) => {
                return self.unimplemented(conn, xid);
            }
            other => {
                let result = self.read(conn, session, &auth, other, &mut out);
                let zxid = if xid == xid::AUTH { 0 } else { self.last_zxid };
                match result {
                    ReadResult::Reply(r) => out.push((conn, reply(xid, zxid, r))),
                    ReadResult::ReplyAndClose(r) => {
                        out.push((conn, reply(xid, zxid, r)));
                        out.push((conn, Output::Close));
                    }
                }
                if let Some(info) = self.conns.get_mut(&conn) {
                    info.last_zxid = self.last_zxid;
                }
                return out;
            }
        };
        if let Some(write_op) = write {
            let body = Prep::new(&self.tree)
                .op(&ctx, &write_op)
                .unwrap_or_else(TxnBody::Error);
            self.write(conn, session, xid, op, body, now, &mut out);
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        conn: ConnId,
        session: i64,
        xid: i32,
        op: OpCode,
        body: TxnBody,
        now: Now,
        out: &mut Outputs,
    ) {
        let (result, body) = self.submit(session, xid, op, body, now, out);
        let response = write_response(op, &body, result);
        out.push((conn, reply(xid, self.last_zxid, response)));
        if let Some(info) = self.conns.get_mut(&conn) {
            info.last_zxid = self.last_zxid;
        }
    }

    fn read(
        &mut self,
        conn: ConnId,
        session: i64,
        auth: &[Id],
        req: Request,
        out: &mut Outputs,
    ) -> ReadResult {
        use ReadResult::Reply as R;
        let readable = |node: &crate::data_tree::Node| acl::check(&node.acl, Perms::READ, auth);
        match req {
            Request::Ping => R(Ok(Response::Empty)),
            Request::Exists(r) => R((|| {
                validate(&r.path)?;
                if r.watch {
                    self.watches.add_data_watch(&r.path, conn);
                }
                let stat = self.tree.stat(&r.path).ok_or(ErrorCode::NoNode)?;
                Ok(Response::Exists(ExistsResponse { stat }))
            })()),
            Request::GetData(r) => R((|| {
                validate(&r.path)?;
                let node = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
                if !readable(node) {
                    return Err(ErrorCode::NoAuth);
                }
                let body = GetDataResponse {
                    data: node.data.clone(),
                    stat: node.stat(),
                };
                if r.watch {
                    self.watches.add_data_watch(&r.path, conn);
                }
                Ok(Response::GetData(body))
            })()),
            Request::GetChildren(r) => R(self.children(conn, auth, &r.path, r.watch, false)),
            Request::GetChildren2(r) => R(self.children(conn, auth, &r.path, r.watch, true)),
            Request::GetAcl(r) => R((|| {
                validate(&r.path)?;
                let node = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
                let acl = if acl::check(&node.acl, Perms::ADMIN, auth) {
                    node.acl.clone()
                } else if readable(node) {
                    acl::mask_digests(&node.acl)
                } else {
                    return Err(ErrorCode::NoAuth);
                };
                Ok(Response::GetAcl(GetAclResponse {
                    acl,
                    stat: node.stat(),
                }))
            })()),
            Request::GetAllChildrenNumber(r) => R((|| {
                validate(&r.path)?;
                let node = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
                if !readable(node) {
                    return Err(ErrorCode::NoAuth);
                }
                let n = self.tree.all_children_number(&r.path);
                Ok(Response::GetAllChildrenNumber(
                    GetAllChildrenNumberResponse {
                        total_number: i32::try_from(n).unwrap_or(i32::MAX),
                    },
                ))
            })()),
            Request::GetEphemerals(r) => {
                let prefix = r.prefix_path.trim();
                let all = self.tree.ephemerals(session);
                let ephemerals = if prefix.is_empty() || prefix == "/" {
                    all
                } else {
                    all.into_iter()
                        .filter(|p| p.starts_with(&r.prefix_path))
                        .collect()
                };
                R(Ok(Response::GetEphemerals(GetEphemeralsResponse {
                    ephemerals,
                })))
            }
            Request::Sync(r) => R(Ok(Response::Sync(SyncResponse { path: r.path }))),
            Request::WhoAmI => {
                let mut ids: Vec<&Id> = auth.iter().filter(|i| i.scheme != "ip").collect();
                ids.extend(auth.iter().filter(|i| i.scheme == "ip"));
                let client_info = ids
                    .into_iter()
                    .map(|id| ClientInfo {
                        auth_scheme: id.scheme.clone(),
                        user: acl::user_name(id),
                    })
                    .collect();
                R(Ok(Response::WhoAmI(WhoAmIResponse { client_info })))
            }
            Request::MultiRead(r) => {
                let results = r
                    .ops
                    .iter()
                    .map(|op| {
                        let path = op.path();
                        let node = match validate(path)
                            .and_then(|()| self.tree.get(path).ok_or(ErrorCode::NoNode))
                        {
                            Ok(node) => node,
                            Err(e) => return MultiResult::Error(e.into()),
                        };
                        if !readable(node) {
                            return MultiResult::Error(ErrorCode::NoAuth.into());
                        }
                        match op {
                            MultiReadOp::GetData(_) => MultiResult::GetData(GetDataResponse {
                                data: node.data.clone(),
                                stat: node.stat(),
                            }),
                            MultiReadOp::GetChildren(_) => {
                                MultiResult::GetChildren(GetChildrenResponse {
                                    children: node.children.iter().cloned().collect(),
                                })
                            }
                        }
                    })
                    .collect();
                R(Ok(Response::Multi(MultiResponse { results })))
            }
            Request::CheckWatches(r) => R((|| {
                let kind = r.watcher_type().map_err(|_| ErrorCode::BadArguments)?;
                validate(&r.path)?;
                if self.watches.contains(&r.path, kind, conn) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            })()),
            Request::RemoveWatches(r) => R((|| {
                let kind = r.watcher_type().map_err(|_| ErrorCode::BadArguments)?;
                validate(&r.path)?;
                if self.watches.remove(&r.path, kind, conn) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            })()),
            Request::AddWatch(r) => R((|| {
                let mode = r.add_watch_mode().map_err(|_| ErrorCode::BadArguments)?;
                validate(&r.path)?;
                self.watches.add_persistent(
                    &r.path,
                    conn,
                    mode == AddWatchMode::PersistentRecursive,
                );
                Ok(Response::AddWatch(ErrorResponse { err: 0 }))
            })()),
            Request::SetWatches(r) => {
                let sw = SetWatches2 {
                    relative_zxid: r.relative_zxid,
                    data_watches: r.data_watches,
                    exist_watches: r.exist_watches,
                    child_watches: r.child_watches,
                    persistent_watches: Vec::new(),
                    persistent_recursive_watches: Vec::new(),
                };
                self.set_watches(conn, &sw, out);
                R(Ok(Response::Empty))
            }
            Request::SetWatches2(r) => {
                self.set_watches(conn, &r, out);
                R(Ok(Response::Empty))
            }
            Request::Auth(packet) => {
                let peer = self.conns.get(&conn).and_then(|c| c.peer).map(|a| a.ip());
                match acl::authenticate(
                    &packet.scheme,
                    &packet.auth,
                    peer,
                    self.cfg.super_digest.as_deref(),
                ) {
                    AuthOutcome::Added(ids) => {
                        if let Some(info) = self.conns.get_mut(&conn) {
                            for id in ids {
                                if !info.auth.contains(&id) {
                                    info.auth.push(id);
                                }
                            }
                        }
                        R(Ok(Response::Empty))
                    }
                    AuthOutcome::Failed => ReadResult::ReplyAndClose(Err(ErrorCode::AuthFailed)),
                }
            }
            // Writes and the rest are dispatched before reaching here.
            _ => ReadResult::ReplyAndClose(Err(ErrorCode::Unimplemented)),
        }
    }

    fn children(
        &mut self,
        conn: ConnId,
        auth: &[Id],
        path: &str,
        watch: bool,
        with_stat: bool,
    ) -> Result<Response, ErrorCode> {
        validate(path)?;
        let node = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(&node.acl, Perms::READ, auth) {
            return Err(ErrorCode::NoAuth);
        }
        let children: Vec<String> = node.children.iter().cloned().collect();
        let stat = node.stat();
        if watch {
            self.watches.add_child_watch(path, conn);
        }
        Ok(if with_stat {
            Response::GetChildren2(GetChildren2Response { children, stat })
        } else {
            Response::GetChildren(GetChildrenResponse { children })
        })
    }

    /// Apache's `DataTree.setWatches`: fire what changed after `relative_zxid`, register the
    /// rest. Fired events carry zxid -1 and skip the ACL filter.
    fn set_watches(&mut self, conn: ConnId, sw: &SetWatches2, out: &mut Outputs) {
        let rel = sw.relative_zxid;
        for path in &sw.data_watches {
            match self.tree.get(path) {
                None => out.push((conn, notification(-1, EventType::NodeDeleted, path))),
                Some(n) if n.mzxid > rel => {
                    out.push((conn, notification(-1, EventType::NodeDataChanged, path)));
                }
                Some(_) => self.watches.add_data_watch(path, conn),
            }
        }
        for path in &sw.exist_watches {
            if self.tree.get(path).is_some() {
                out.push((conn, notification(-1, EventType::NodeCreated, path)));
            } else {
                self.watches.add_data_watch(path, conn);
            }
        }
        for path in &sw.child_watches {
            match self.tree.get(path) {
                None => out.push((conn, notification(-1, EventType::NodeDeleted, path))),
                Some(n) if n.pzxid > rel => {
                    out.push((conn, notification(-1, EventType::NodeChildrenChanged, path)));
                }
                Some(_) => self.watches.add_child_watch(path, conn),
            }
        }
        for path in &sw.persistent_watches {
            self.watches.add_persistent(path, conn, false);
        }
        for path in &sw.persistent_recursive_watches {
            self.watches.add_persistent(path, conn, true);
        }
    }
}

enum ReadResult {
    Reply(Result<Response, ErrorCode>),
    ReplyAndClose(Result<Response, ErrorCode>),
}

fn notification(zxid: i64, event: EventType, path: &str) -> Output {
    Output::Reply(
        ReplyHeader {
            xid: xid::NOTIFICATION,
            zxid,
            err: 0,
        },
        Response::Notification(WatcherEvent::new(event, path)),
    )
}

#[cfg(test)]
#[path = "core_test.rs"]
mod core_test;
