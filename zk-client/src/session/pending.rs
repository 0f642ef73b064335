//! Xid allocation and the book of requests in flight on the current connection.
//!
//! The server answers a session's requests in order, so a FIFO queue suffices: each reply
//! must carry the xid at the head of the queue, anything else is a protocol violation (the
//! Java client drops the connection then, and so do we). Auth packets are answered outside
//! that order by the Java server, so they have their own queue.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::sync::oneshot;
use zk_proto::records::ReplyHeader;
use zk_proto::{AddWatchMode, OpCode, WatcherType};

use super::event::WatchedEvent;
use crate::error::Error;

/// A reply as handed to the caller: the header and the undecoded body (the caller decodes
/// it, off the session task).
#[derive(Debug)]
pub(crate) struct RawReply {
    pub(crate) header: ReplyHeader,
    pub(crate) body: Bytes,
}

pub(crate) type ReplySender = oneshot::Sender<Result<RawReply, Error>>;

/// What to register locally when the reply arrives.
#[derive(Debug)]
pub(crate) enum WatchReg {
    /// `exists` with a watch: a data watch if the node exists, an exist watch if not.
    Exists {
        path: String,
        tx: oneshot::Sender<WatchedEvent>,
    },
    /// `getData` with a watch: only on success.
    Data {
        path: String,
        tx: oneshot::Sender<WatchedEvent>,
    },
    /// `getChildren` with a watch: only on success.
    Child {
        path: String,
        tx: oneshot::Sender<WatchedEvent>,
    },
    /// `addWatch`: only on success.
    Persistent {
        path: String,
        mode: AddWatchMode,
        tx: super::stream::StreamTx,
    },
    /// `removeWatches`: on success, remove the local watchers too.
    Remove { path: String, kind: WatcherType },
}

impl WatchReg {
    /// The server path the registration is about.
    pub(crate) fn path(&self) -> &str {
        match self {
            WatchReg::Exists { path, .. }
            | WatchReg::Data { path, .. }
            | WatchReg::Child { path, .. }
            | WatchReg::Persistent { path, .. }
            | WatchReg::Remove { path, .. } => path,
        }
    }
}

/// What waits for a pending reply.
#[derive(Debug)]
pub(crate) enum Waiter {
    /// A user request.
    User {
        reply: ReplySender,
        watch: Option<WatchReg>,
    },
    /// A `setWatches`/`setWatches2` batch sent while priming a connection.
    SetWatches,
    /// The `closeSession` request.
    Close,
    /// A request the client sends on its own (e.g. `removeWatches` for a dropped
    /// persistent watcher); its reply is only logged.
    Internal,
}

#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) xid: i32,
    pub(crate) op: OpCode,
    pub(crate) waiter: Waiter,
}

/// The next xid: 1, 2, ..., `i32::MAX`, then 1 again (as the Java client).
#[derive(Debug)]
pub(crate) struct XidGen(i32);

impl Default for XidGen {
    fn default() -> Self {
        XidGen(1)
    }
}

impl XidGen {
    pub(crate) fn next_xid(&mut self) -> i32 {
        let xid = self.0;
        self.0 = if xid == i32::MAX { 1 } else { xid + 1 };
        xid
    }
}

/// `true` for opcodes that change the tree: if such a request was in flight when the
/// connection broke, it may have been applied.
pub(crate) fn is_write(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::Create
            | OpCode::Create2
            | OpCode::CreateContainer
            | OpCode::CreateTtl
            | OpCode::Delete
            | OpCode::SetData
            | OpCode::SetAcl
            | OpCode::Multi
            | OpCode::Reconfig
            | OpCode::CloseSession
            | OpCode::DeleteContainer
            | OpCode::Check
    )
}

/// The in-flight book of one connection.
#[derive(Debug, Default)]
pub(crate) struct PendingQueue {
    queue: VecDeque<Pending>,
    /// Waiters for auth replies (`None`: a re-sent auth nobody waits for).
    auth: VecDeque<Option<oneshot::Sender<Result<(), Error>>>>,
}

impl PendingQueue {
    pub(crate) fn push(&mut self, pending: Pending) {
        self.queue.push_back(pending);
    }

    pub(crate) fn push_auth(&mut self, waiter: Option<oneshot::Sender<Result<(), Error>>>) {
        self.auth.push_back(waiter);
    }

    /// Takes the request answered by a reply with `xid`: it must be the oldest one.
    pub(crate) fn take(&mut self, xid: i32) -> Result<Pending, Error> {
        match self.queue.front() {
            Some(head) if head.xid == xid => self.queue.pop_front().ok_or(Error::Closed),
            Some(head) => Err(Error::Protocol(format!(
                "reply for xid {xid} while xid {} is the oldest request",
                head.xid
            ))),
            None => Err(Error::Protocol(format!(
                "reply for xid {xid} with no request pending"
            ))),
        }
    }

    pub(crate) fn take_auth(&mut self) -> Option<Option<oneshot::Sender<Result<(), Error>>>> {
        self.auth.pop_front()
    }

    /// How many requests wait for their reply (auth packets not counted).
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.auth.is_empty()
    }

    /// Whether a request in flight will register a watch on `server_path` when answered.
    pub(crate) fn registers_watch_on(&self, server_path: &str) -> bool {
        self.queue.iter().any(|pending| match &pending.waiter {
            Waiter::User {
                watch: Some(watch), ..
            } => watch.path() == server_path,
            _ => false,
        })
    }

    /// Fails everything in flight: the connection is gone. `error` decides the error;
    /// returns whether a `closeSession` was among them.
    pub(crate) fn fail_all(&mut self, error: impl Fn(OpCode) -> Error) -> bool {
        let mut close_pending = false;
        for pending in self.queue.drain(..) {
            match pending.waiter {
                Waiter::User { reply, .. } => {
                    let _ = reply.send(Err(error(pending.op)));
                }
                Waiter::SetWatches | Waiter::Internal => {}
                Waiter::Close => close_pending = true,
            }
        }
        for waiter in self.auth.drain(..).flatten() {
            let _ = waiter.send(Err(error(OpCode::Auth)));
        }
        close_pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xids_wrap_to_one() {
        let mut xids = XidGen::default();
        assert_eq!(xids.next_xid(), 1);
        assert_eq!(xids.next_xid(), 2);
        let mut xids = XidGen(i32::MAX);
        assert_eq!(xids.next_xid(), i32::MAX);
        assert_eq!(xids.next_xid(), 1);
    }

    #[test]
    fn replies_must_match_the_head() {
        let mut q = PendingQueue::default();
        let (tx, mut rx) = oneshot::channel();
        q.push(Pending {
            xid: 1,
            op: OpCode::GetData,
            waiter: Waiter::SetWatches,
        });
        q.push(Pending {
            xid: 2,
            op: OpCode::Create2,
            waiter: Waiter::User {
                reply: tx,
                watch: None,
            },
        });
        assert!(matches!(q.take(2), Err(Error::Protocol(_))));
        assert_eq!(q.take(1).map(|p| p.xid).ok(), Some(1));
        assert_eq!(q.len(), 1);
        let close = q.fail_all(|op| Error::ConnectionLoss {
            outcome_unknown: is_write(op),
        });
        assert!(!close);
        assert!(matches!(
            rx.try_recv(),
            Ok(Err(Error::ConnectionLoss {
                outcome_unknown: true
            }))
        ));
        assert!(q.is_empty());
        assert!(matches!(q.take(3), Err(Error::Protocol(_))));
    }
}
