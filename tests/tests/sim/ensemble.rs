//! The simulated servers, behind one trait so that the Zab quorum can replace today's model.
//!
//! [`Standalone`] is zk-server-lite's sans-io [`Core`] behind every member: a perfectly
//! replicated ensemble (every member answers from the same state, as if replication were
//! instant). A member can crash (its connections die, it refuses new ones) or stall without
//! losing the state while another member is up; when every member is down at once the state
//! is restored from a snapshot taken at the crash (every acknowledged write is durable, as
//! the core syncs before replying). A quorum will implement [`Ensemble`] with one replica per
//! member, which adds lagging members (and makes the lastZxidSeen check bite harder).

use bytes::{Bytes, BytesMut};
use zk_server_lite::core::{Core, CoreConfig, Now, Output, Outputs};
use zk_server_lite::proto::records::{ConnectRequest, RequestHeader, Stat};
use zk_server_lite::proto::{Decode, DecodeError, Request, frame};
use zk_server_lite::storage::{MemLog, Snapshot};

/// Connection ids, as zk-server-lite numbers them.
pub type ConnId = u64;

/// What the simulation needs from the servers.
pub trait Ensemble {
    /// A connection's first frame (the handshake) reached `member`.
    fn connect(
        &mut self,
        member: usize,
        conn: ConnId,
        request: &ConnectRequest,
        now: Now,
    ) -> Outputs;
    /// A later frame of `conn` reached `member`.
    fn request(&mut self, member: usize, conn: ConnId, payload: Bytes, now: Now) -> Outputs;
    /// `conn` closed.
    fn disconnected(&mut self, member: usize, conn: ConnId);
    /// Periodic work (session expiry).
    fn tick(&mut self, now: Now) -> Outputs;
    /// `member` crashed (its connections are dropped by the network).
    fn crash(&mut self, member: usize, now: Now);
    /// `member` is back.
    fn restart(&mut self, member: usize, now: Now);
    /// Expires `session` now, as the leader would (fault injection).
    fn expire(&mut self, session: i64, now: Now) -> Outputs;
    /// The session's expiry deadline (ms on the servers' monotonic clock), if it is live.
    fn session_deadline(&self, session: i64) -> Option<i64>;
    /// The node's stat as the most up-to-date member has it.
    fn stat(&self, path: &str) -> Option<Stat>;
}

/// One zk-server-lite core behind every member.
pub struct Standalone {
    cfg: CoreConfig,
    core: Core,
    up: Vec<bool>,
    /// The state at the moment the last member went down.
    frozen: Option<Snapshot>,
}

impl Standalone {
    pub fn new(members: usize, cfg: CoreConfig, now: Now) -> Standalone {
        Standalone {
            core: Core::new(cfg.clone(), now),
            cfg,
            up: vec![true; members],
            frozen: None,
        }
    }
}

impl Ensemble for Standalone {
    fn connect(
        &mut self,
        _member: usize,
        conn: ConnId,
        request: &ConnectRequest,
        now: Now,
    ) -> Outputs {
        self.core.connect(conn, request, now)
    }

    fn request(&mut self, _member: usize, conn: ConnId, payload: Bytes, now: Now) -> Outputs {
        // As zk-server-lite's listener does.
        let mut body = payload;
        let Ok(header) = RequestHeader::decode(&mut body) else {
            return vec![(conn, Output::Close)];
        };
        let Ok(op) = header.op_code() else {
            return self.core.unimplemented(conn, header.xid);
        };
        match Request::decode_body(op, &mut body) {
            Ok(request) if body.is_empty() => self.core.request(conn, header, request, now),
            Ok(_) => self.core.malformed(conn, header.xid, op, now),
            Err(DecodeError::UnsupportedOp { .. }) => self.core.unimplemented(conn, header.xid),
            Err(_) => self.core.malformed(conn, header.xid, op, now),
        }
    }

    fn disconnected(&mut self, _member: usize, conn: ConnId) {
        self.core.disconnected(conn);
    }

    fn tick(&mut self, now: Now) -> Outputs {
        if self.up.iter().any(|up| *up) {
            self.core.tick(now)
        } else {
            Vec::new()
        }
    }

    fn crash(&mut self, member: usize, _now: Now) {
        self.up[member] = false;
        if self.up.iter().all(|up| !up) {
            self.frozen = Some(self.core.snapshot());
        }
    }

    fn restart(&mut self, member: usize, now: Now) {
        if let Some(snapshot) = self.frozen.take() {
            // The whole ensemble was down: recover from disk. Sessions get a fresh timeout.
            self.core = Core::restore(
                self.cfg.clone(),
                Box::new(MemLog::default()),
                Some(snapshot),
                Vec::new(),
                now,
            );
        }
        self.up[member] = true;
    }

    fn expire(&mut self, session: i64, now: Now) -> Outputs {
        self.core.expire_session(session, now).1
    }

    fn session_deadline(&self, session: i64) -> Option<i64> {
        self.core
            .sessions()
            .get(session)
            .filter(|s| !s.closing)
            .map(|s| s.expire_at)
    }

    fn stat(&self, path: &str) -> Option<Stat> {
        match &self.frozen {
            Some(snapshot) => snapshot.tree.stat(path),
            None => self.core.tree().stat(path),
        }
    }
}

/// Encodes an output for the wire (`None` for a close).
pub fn encode(output: &Output) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    let encoded = match output {
        Output::Handshake(response) => frame::encode_frame(&mut buf, usize::MAX >> 1, response),
        Output::Reply(header, body) => {
            frame::encode_frame(&mut buf, usize::MAX >> 1, &(header, body))
        }
        Output::Close => return None,
    };
    encoded.ok()?;
    Some(buf.freeze())
}
