//! The log stage's storage: a small trait for the transaction log and one for snapshots, with
//! in-memory implementations. A file-backed log (checksums, fsync before acknowledging,
//! batched fsyncs, torn-tail truncation) and file snapshots come next; the core only talks
//! to these traits.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::data_tree::DataTree;
use crate::txn::Txn;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An I/O error.
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A txn whose zxid is not above the last one.
    #[error("zxid {zxid:#x} does not follow {last:#x}")]
    OutOfOrder {
        /// The rejected zxid.
        zxid: i64,
        /// The last zxid in the log.
        last: i64,
    },
}

/// The transaction log: txns are appended in zxid order and become durable at
/// [`sync`](TxnLog::sync) (or through the [`Syncer`]), before their replies are sent.
pub trait TxnLog: Send {
    /// Appends a txn (handed to the OS, not yet durable).
    fn append(&mut self, txn: &Txn) -> Result<(), StorageError>;
    /// Makes every appended txn durable (blocking).
    fn sync(&mut self) -> Result<(), StorageError>;
    /// The zxid of the last appended txn, if any.
    fn last_zxid(&self) -> Option<i64>;
    /// The txns with zxid > `zxid` still held, in order (for recovery and follower sync).
    fn read_after(&self, zxid: i64) -> Vec<Txn>;
    /// How many txns were appended since the log was opened: the position that
    /// [`Syncer::sync_to_disk`] makes durable.
    fn appended(&self) -> u64;
    /// A handle that makes appended txns durable without holding the log (group commit:
    /// one fsync for every txn appended before it started). `None` when appends need no
    /// sync (memory).
    fn syncer(&self) -> Option<Arc<dyn Syncer>> {
        None
    }
    /// Starts a new log segment (after a snapshot), syncing the current one first.
    fn roll(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// Makes a log's appended txns durable, from any thread.
pub trait Syncer: Send + Sync {
    /// fsyncs what was appended so far.
    fn sync_to_disk(&self) -> std::io::Result<()>;
}

/// A log in memory that keeps the most recent `retain` txns.
#[derive(Debug)]
pub struct MemLog {
    txns: VecDeque<Txn>,
    retain: usize,
    last: Option<i64>,
    appended: u64,
}

impl MemLog {
    /// A log keeping the last `retain` txns.
    pub fn new(retain: usize) -> MemLog {
        MemLog {
            txns: VecDeque::new(),
            retain,
            last: None,
            appended: 0,
        }
    }
}

impl Default for MemLog {
    fn default() -> Self {
        MemLog::new(1024)
    }
}

impl TxnLog for MemLog {
    fn append(&mut self, txn: &Txn) -> Result<(), StorageError> {
        if let Some(last) = self.last
            && txn.header.zxid <= last
        {
            return Err(StorageError::OutOfOrder {
                zxid: txn.header.zxid,
                last,
            });
        }
        self.last = Some(txn.header.zxid);
        self.appended += 1;
        if self.retain > 0 {
            if self.txns.len() == self.retain {
                self.txns.pop_front();
            }
            self.txns.push_back(txn.clone());
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    fn last_zxid(&self) -> Option<i64> {
        self.last
    }

    fn read_after(&self, zxid: i64) -> Vec<Txn> {
        self.txns
            .iter()
            .filter(|t| t.header.zxid > zxid)
            .cloned()
            .collect()
    }

    fn appended(&self) -> u64 {
        self.appended
    }
}

/// A point-in-time copy of the server state.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Last zxid applied to the tree.
    pub zxid: i64,
    /// The tree.
    pub tree: DataTree,
    /// Sessions: (id, timeout ms).
    pub sessions: Vec<(i64, i32)>,
}

/// Where snapshots go.
pub trait SnapshotStore: Send {
    /// Stores a snapshot.
    fn save(&mut self, snapshot: Snapshot) -> Result<(), StorageError>;
    /// The newest snapshot, if any.
    fn latest(&self) -> Option<Snapshot>;
}

/// Keeps the newest snapshot in memory.
#[derive(Debug, Default)]
pub struct MemSnapshots {
    latest: Option<Snapshot>,
}

impl SnapshotStore for MemSnapshots {
    fn save(&mut self, snapshot: Snapshot) -> Result<(), StorageError> {
        self.latest = Some(snapshot);
        Ok(())
    }

    fn latest(&self) -> Option<Snapshot> {
        self.latest.clone()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use zk_proto::{ErrorCode, OpCode};

    use super::*;
    use crate::txn::{TxnBody, TxnHeader};

    pub(crate) fn txn(zxid: i64) -> Txn {
        Txn {
            header: TxnHeader {
                session_id: 1,
                cxid: 1,
                zxid,
                time: 0,
                op: OpCode::SetData,
            },
            body: TxnBody::Error(ErrorCode::NoNode),
        }
    }

    /// The conformance checks every [`TxnLog`] must pass.
    pub(crate) fn log_suite(log: &mut dyn TxnLog) {
        assert_eq!(log.last_zxid(), None);
        log.append(&txn(1)).unwrap();
        log.append(&txn(2)).unwrap();
        assert!(matches!(
            log.append(&txn(2)),
            Err(StorageError::OutOfOrder { .. })
        ));
        log.sync().unwrap();
        assert_eq!(log.last_zxid(), Some(2));
        assert_eq!(log.appended(), 2);
        assert_eq!(log.read_after(1), vec![txn(2)]);
        log.roll().unwrap();
        log.append(&txn(3)).unwrap();
        if let Some(syncer) = log.syncer() {
            syncer.sync_to_disk().unwrap();
        }
        assert_eq!(log.last_zxid(), Some(3));
        assert_eq!(log.read_after(1), vec![txn(2), txn(3)]);
    }

    #[test]
    fn mem_log_suite() {
        log_suite(&mut MemLog::default());
    }

    #[test]
    fn mem_log_retains_bounded() {
        let mut log = MemLog::new(2);
        for z in 1..=5 {
            log.append(&txn(z)).unwrap();
        }
        assert_eq!(log.read_after(0).len(), 2);
        assert_eq!(log.appended(), 5);
    }

    #[test]
    fn mem_snapshots() {
        let mut s = MemSnapshots::default();
        assert!(s.latest().is_none());
        s.save(Snapshot {
            zxid: 3,
            tree: DataTree::new(),
            sessions: vec![(1, 4000)],
        })
        .unwrap();
        assert_eq!(s.latest().map(|s| s.zxid), Some(3));
    }
}
