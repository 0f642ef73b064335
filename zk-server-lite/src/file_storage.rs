//! Durable storage in files: a checksummed transaction log and snapshots, on any
//! [`Disk`] (the real one, or a [`FaultDisk`](crate::fault_disk::FaultDisk) in tests).
//! Start-up (checking that the files form an unbroken history) is in [`crate::recovery`].
//!
//! Layout (our own format; not Apache's):
//!
//! * `<dataLogDir>/zk-lite/log.<first zxid, 16 hex digits>` — records
//!   `[len: u32 BE][crc32 of payload: u32 BE][payload: encoded Txn]`, appended in zxid order.
//!   A new segment starts (its name durable) before every snapshot, so a snapshot at zxid
//!   `S` always has a segment `log.<S+1>` beside it.
//! * `<dataDir>/zk-lite/snapshot.<zxid, 16 hex digits>` — `ZKLSNAP1`, the zxid, the sessions,
//!   every node, then a crc32 of everything before it. Written to a temporary file, fsynced,
//!   then renamed, so a crash never leaves a half snapshot under a real name.
//!
//! Retention: the [`RETAIN_SNAPSHOTS`] newest snapshots are kept (Apache's minimum
//! `autopurge.snapRetainCount`), and every log segment that may hold a txn after the oldest
//! of them, so each kept snapshot is a usable fallback.
//!
//! A snapshot is a copy of the tree taken under the server lock at a zxid, so it is
//! consistent with the log whatever is written after it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes};
use zk_proto::records::Acl;
use zk_proto::{Decode, DecodeError, Encode};

use crate::data_tree::{DataTree, Node};
use crate::disk::{Disk, DiskFile, write_atomic};
use crate::storage::{Snapshot, StorageError, Syncer, TxnLog};
use crate::txn::Txn;

/// Sub-directory of dataDir / dataLogDir holding our files.
pub const SUBDIR: &str = "zk-lite";
/// Snapshots kept by [`write_snapshot`] (each with the log segments it needs).
pub const RETAIN_SNAPSHOTS: usize = 3;
const SNAP_MAGIC: &[u8; 8] = b"ZKLSNAP1";
pub(crate) const RECORD_HEADER: usize = 8;
/// Records larger than this are corruption (a txn is at most ~1 MiB of data plus paths).
pub(crate) const MAX_RECORD: usize = 16 << 20;

fn corrupt(what: impl Into<String>) -> StorageError {
    StorageError::Io(io::Error::new(io::ErrorKind::InvalidData, what.into()))
}

/// Adds the path to an I/O error.
pub(crate) fn at(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |e| StorageError::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Files `<prefix>.<16 hex digits>` in `dir`, sorted by the number (missing dir: none).
pub(crate) fn numbered(
    disk: &dyn Disk,
    dir: &Path,
    prefix: &str,
) -> Result<Vec<(i64, PathBuf)>, StorageError> {
    let names = match disk.list(dir) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(at(dir)(e)),
    };
    let mut out = Vec::new();
    for name in names {
        let Some(hex) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        if hex.len() == 16
            && let Ok(n) = u64::from_str_radix(hex, 16)
        {
            out.push((n as i64, dir.join(&name)));
        }
    }
    out.sort();
    Ok(out)
}

/// The name of the log segment whose first txn is `zxid`.
pub(crate) fn segment_name(dir: &Path, zxid: i64) -> PathBuf {
    dir.join(format!("log.{:016x}", zxid as u64))
}

/// fsyncs the current log segment from any thread. An fsync error is final: after it the
/// kernel may have dropped the unwritten pages, so a later "successful" fsync proves
/// nothing and nothing appended since the last good fsync may ever be acknowledged.
#[derive(Debug)]
struct FileSyncer {
    file: Mutex<Arc<dyn DiskFile>>,
    failed: AtomicBool,
}

impl FileSyncer {
    fn sync(&self) -> io::Result<()> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(io::Error::other(
                "an earlier log fsync failed; no write is acknowledged until a restart",
            ));
        }
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.sync().inspect_err(|e| {
            self.failed.store(true, Ordering::SeqCst);
            tracing::error!(error = %e, "log fsync failed: writes are refused until the server restarts");
        })
    }
}

impl Syncer for FileSyncer {
    fn sync_to_disk(&self) -> io::Result<()> {
        self.sync()
    }
}

/// The file-backed transaction log.
#[derive(Debug)]
pub struct FileLog {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    file: Arc<dyn DiskFile>,
    /// Bytes of whole records in the current segment.
    len: u64,
    /// A write failed and its half record could not be cut off: appends are refused.
    broken: bool,
    last: Option<i64>,
    appended: u64,
    syncer: Arc<FileSyncer>,
    buf: Vec<u8>,
}

impl FileLog {
    /// Opens `path` (created if missing, its name made durable) for appending after `last`.
    pub(crate) fn open_segment(
        disk: Arc<dyn Disk>,
        dir: &Path,
        path: &Path,
        last: Option<i64>,
    ) -> Result<FileLog, StorageError> {
        let file = disk.open_append(path).map_err(at(path))?;
        disk.sync_dir(dir).map_err(at(dir))?;
        let len = file.size().map_err(at(path))?;
        Ok(FileLog {
            disk,
            dir: dir.to_owned(),
            file: file.clone(),
            len,
            broken: false,
            last,
            appended: 0,
            syncer: Arc::new(FileSyncer {
                file: Mutex::new(file),
                failed: AtomicBool::new(false),
            }),
            buf: Vec::new(),
        })
    }

    /// The directory holding the segments.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl TxnLog for FileLog {
    fn append(&mut self, txn: &Txn) -> Result<(), StorageError> {
        if let Some(last) = self.last
            && txn.header.zxid <= last
        {
            return Err(StorageError::OutOfOrder {
                zxid: txn.header.zxid,
                last,
            });
        }
        if self.broken || self.syncer.failed.load(Ordering::SeqCst) {
            return Err(corrupt(
                "the log refuses writes after a failed write or fsync",
            ));
        }
        self.buf.clear();
        self.buf.put_u32(0);
        self.buf.put_u32(0);
        txn.encode(&mut self.buf);
        let len = self.buf.len() - RECORD_HEADER;
        let crc = crc32fast::hash(&self.buf[RECORD_HEADER..]);
        let len = u32::try_from(len).map_err(|_| corrupt("txn too large"))?;
        self.buf[..4].copy_from_slice(&len.to_be_bytes());
        self.buf[4..8].copy_from_slice(&crc.to_be_bytes());
        if let Err(e) = self.file.append(&self.buf) {
            // Cut a half-written record off so later records are not hidden behind it; if
            // even that fails, refuse all further appends.
            if self.file.truncate(self.len).is_err() {
                self.broken = true;
            }
            return Err(StorageError::Io(e));
        }
        self.len += self.buf.len() as u64;
        self.last = Some(txn.header.zxid);
        self.appended += 1;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.syncer.sync().map_err(StorageError::Io)
    }

    fn last_zxid(&self) -> Option<i64> {
        self.last
    }

    fn read_after(&self, zxid: i64) -> Vec<Txn> {
        let segments = match numbered(self.disk.as_ref(), &self.dir, "log") {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "listing the log failed");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (_, path) in segments {
            let bytes = match self.disk.read(&path) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "reading the log failed");
                    return out;
                }
            };
            let mut offset = 0;
            while let Some((txn, used)) = parse_record(&bytes[offset..]) {
                offset += used;
                if txn.header.zxid > zxid {
                    out.push(txn);
                }
            }
            if offset < bytes.len() {
                break;
            }
        }
        out
    }

    fn appended(&self) -> u64 {
        self.appended
    }

    fn syncer(&self) -> Option<Arc<dyn Syncer>> {
        Some(self.syncer.clone())
    }

    fn roll(&mut self) -> Result<(), StorageError> {
        self.sync()?;
        let path = segment_name(&self.dir, self.last.unwrap_or(0) + 1);
        let file = self.disk.open_append(&path).map_err(at(&path))?;
        self.disk.sync_dir(&self.dir).map_err(at(&self.dir))?;
        *self.syncer.file.lock().unwrap_or_else(|e| e.into_inner()) = file.clone();
        self.file = file;
        self.len = 0;
        Ok(())
    }
}

/// One record at the front of `bytes`: the txn and the bytes it used; `None` if short,
/// oversized, failing its checksum or not decoding.
pub(crate) fn parse_record(bytes: &[u8]) -> Option<(Txn, usize)> {
    let header = bytes.get(..RECORD_HEADER)?;
    let len = u32::from_be_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_be_bytes(header[4..8].try_into().ok()?);
    if len > MAX_RECORD {
        return None;
    }
    let payload = bytes.get(RECORD_HEADER..RECORD_HEADER + len)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let txn = Txn::decode_exact(payload).ok()?;
    Some((txn, RECORD_HEADER + len))
}

/// The zxid a (possibly torn or damaged) record at the front of `bytes` claims, if its
/// header got that far. Unverified: for messages only.
pub(crate) fn claimed_zxid(bytes: &[u8]) -> Option<i64> {
    let z = bytes.get(RECORD_HEADER + 12..RECORD_HEADER + 20)?;
    Some(i64::from_be_bytes(z.try_into().ok()?))
}

/// Encodes a snapshot (with its trailing checksum).
pub fn encode_snapshot(snap: &Snapshot) -> Vec<u8> {
    let mut buf = Vec::new();
    buf.extend_from_slice(SNAP_MAGIC);
    snap.zxid.encode(&mut buf);
    i32::try_from(snap.sessions.len())
        .unwrap_or(i32::MAX)
        .encode(&mut buf);
    for (id, timeout) in &snap.sessions {
        id.encode(&mut buf);
        timeout.encode(&mut buf);
    }
    i32::try_from(snap.tree.node_count())
        .unwrap_or(i32::MAX)
        .encode(&mut buf);
    let mut nodes: Vec<(&String, &Node)> = snap.tree.iter().collect();
    nodes.sort_by(|a, b| a.0.cmp(b.0));
    for (path, n) in nodes {
        path.encode(&mut buf);
        n.data.encode(&mut buf);
        n.acl.encode(&mut buf);
        for v in [n.czxid, n.mzxid, n.ctime, n.mtime] {
            v.encode(&mut buf);
        }
        for v in [n.version, n.cversion, n.aversion] {
            v.encode(&mut buf);
        }
        n.owner.encode(&mut buf);
        n.pzxid.encode(&mut buf);
    }
    let crc = crc32fast::hash(&buf);
    buf.put_u32(crc);
    buf
}

fn count<B: Buf>(buf: &mut B, min_each: usize) -> Result<usize, DecodeError> {
    let n = i32::decode(buf)?;
    let n = usize::try_from(n).map_err(|_| DecodeError::NegativeLength(n))?;
    if n > buf.remaining() / min_each.max(1) {
        return Err(DecodeError::UnexpectedEof { needed: n });
    }
    Ok(n)
}

/// Decodes a snapshot, checking magic and checksum.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, StorageError> {
    if bytes.len() < SNAP_MAGIC.len() + 4 || &bytes[..SNAP_MAGIC.len()] != SNAP_MAGIC {
        return Err(corrupt("not a snapshot (too short or wrong magic)"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != crc {
        return Err(corrupt("checksum mismatch (truncated or damaged)"));
    }
    let decode = || -> Result<Snapshot, DecodeError> {
        let mut buf = &body[SNAP_MAGIC.len()..];
        let zxid = i64::decode(&mut buf)?;
        let n = count(&mut buf, 12)?;
        let mut sessions = Vec::with_capacity(n);
        for _ in 0..n {
            sessions.push((i64::decode(&mut buf)?, i32::decode(&mut buf)?));
        }
        let n = count(&mut buf, 60)?;
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n {
            let path = String::decode(&mut buf)?;
            let data = Option::<Bytes>::decode(&mut buf)?;
            let acl = Vec::<Acl>::decode(&mut buf)?;
            let node = Node {
                data,
                acl,
                czxid: i64::decode(&mut buf)?,
                mzxid: i64::decode(&mut buf)?,
                ctime: i64::decode(&mut buf)?,
                mtime: i64::decode(&mut buf)?,
                version: i32::decode(&mut buf)?,
                cversion: i32::decode(&mut buf)?,
                aversion: i32::decode(&mut buf)?,
                owner: i64::decode(&mut buf)?,
                pzxid: i64::decode(&mut buf)?,
                children: Default::default(),
            };
            nodes.push((path, node));
        }
        zk_proto::codec::ensure_consumed(&buf)?;
        let tree = DataTree::from_nodes(nodes).ok_or(DecodeError::TrailingBytes(0))?;
        Ok(Snapshot {
            zxid,
            tree,
            sessions,
        })
    };
    decode().map_err(|e| corrupt(format!("bad snapshot: {e}")))
}

/// Writes a snapshot durably (temp file, fsync, rename, fsync dir) and removes what it
/// makes unnecessary: all but the [`RETAIN_SNAPSHOTS`] newest snapshots, and the log
/// segments that hold only txns the oldest kept snapshot already has.
pub fn write_snapshot(
    disk: &dyn Disk,
    snap_dir: &Path,
    log_dir: &Path,
    snap: &Snapshot,
) -> Result<(), StorageError> {
    disk.create_dir_all(snap_dir).map_err(at(snap_dir))?;
    let bytes = encode_snapshot(snap);
    let name = snap_dir.join(format!("snapshot.{:016x}", snap.zxid as u64));
    write_atomic(disk, &name, &bytes).map_err(at(&name))?;
    purge(disk, snap_dir, log_dir)
}

fn purge(disk: &dyn Disk, snap_dir: &Path, log_dir: &Path) -> Result<(), StorageError> {
    let snaps = numbered(disk, snap_dir, "snapshot")?;
    if snaps.len() <= RETAIN_SNAPSHOTS {
        return Ok(());
    }
    let keep_from = snaps.len() - RETAIN_SNAPSHOTS;
    // Logs first: a crash in between leaves an extra snapshot, never a snapshot without
    // its log.
    let oldest_kept = snaps[keep_from].0;
    let logs = numbered(disk, log_dir, "log")?;
    let mut removed = false;
    for pair in logs.windows(2) {
        // Segment 0 holds txns < the next segment's first zxid: all in the snapshot.
        if pair[1].0 <= oldest_kept + 1 {
            removed |= disk.remove(&pair[0].1).is_ok();
        }
    }
    if removed {
        disk.sync_dir(log_dir).map_err(at(log_dir))?;
    }
    for (_, path) in &snaps[..keep_from] {
        let _ = disk.remove(path);
    }
    disk.sync_dir(snap_dir).map_err(at(snap_dir))?;
    Ok(())
}

/// The snapshot directory for a data dir.
pub fn snapshot_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(SUBDIR)
}

/// The log directory for a data log dir.
pub fn log_dir(data_log_dir: &Path) -> PathBuf {
    data_log_dir.join(SUBDIR)
}

#[cfg(test)]
mod tests {
    use zk_proto::records::OPEN_ACL_UNSAFE;
    use zk_proto::{ErrorCode, OpCode};

    use super::*;
    use crate::disk::RealDisk;
    use crate::recovery::{RecoveryOptions, recover};
    use crate::storage::tests::{log_suite, txn};
    use crate::txn::{NodeKind, TxnBody, TxnHeader};

    fn create(zxid: i64, path: &str) -> Txn {
        Txn {
            header: TxnHeader {
                session_id: 1,
                cxid: 1,
                zxid,
                time: 5,
                op: OpCode::Create,
            },
            body: TxnBody::Create {
                path: path.into(),
                data: Some(Bytes::from_static(b"d")),
                acl: OPEN_ACL_UNSAFE.clone(),
                kind: NodeKind::Persistent,
                parent_cversion: i32::try_from(zxid).unwrap(),
            },
        }
    }

    fn open(dir: &Path) -> crate::recovery::Recovered {
        recover(RealDisk::shared(), dir, dir, RecoveryOptions::default()).unwrap()
    }

    #[test]
    fn file_log_suite_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = open(dir.path());
        assert!(r.snapshot.is_none() && r.txns.is_empty());
        log_suite(&mut r.log);
        drop(r);
        let r = open(dir.path());
        assert_eq!(r.txns, vec![txn(1), txn(2), txn(3)]);
        assert_eq!(r.log.last_zxid(), Some(3));
    }

    #[test]
    fn snapshots_roundtrip_and_purge_keeps_fallbacks() {
        let dir = tempfile::tempdir().unwrap();
        let disk = RealDisk;
        let mut r = open(dir.path());
        let mut tree = DataTree::new();
        let mut ev = Vec::new();
        let mut z = 0;
        for round in 0..5 {
            for _ in 0..3 {
                z += 1;
                let t = create(z, &format!("/n{z}"));
                r.log.append(&t).unwrap();
                tree.apply(&t, &mut ev);
            }
            let snap = Snapshot {
                zxid: z,
                tree: tree.clone(),
                sessions: vec![(9, 4000)],
            };
            if round == 0 {
                let bytes = encode_snapshot(&snap);
                let back = decode_snapshot(&bytes).unwrap();
                assert_eq!(back.zxid, 3);
                assert_eq!(back.sessions, vec![(9, 4000)]);
                assert_eq!(back.tree.stat("/n2"), tree.stat("/n2"));
                assert_eq!(back.tree.stat("/"), tree.stat("/"));
                let mut bad = bytes.clone();
                bad[20] ^= 1;
                assert!(decode_snapshot(&bad).is_err());
                assert!(decode_snapshot(&bytes[..bytes.len() - 1]).is_err());
            }
            r.log.roll().unwrap();
            write_snapshot(
                &disk,
                &snapshot_dir(dir.path()),
                &log_dir(dir.path()),
                &snap,
            )
            .unwrap();
        }
        r.log.append(&create(z + 1, "/last")).unwrap();
        r.log.sync().unwrap();
        drop(r);
        let snaps = numbered(&disk, &snapshot_dir(dir.path()), "snapshot").unwrap();
        assert_eq!(
            snaps.iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![9, 12, 15]
        );
        let r = open(dir.path());
        assert_eq!(r.snapshot.as_ref().map(|s| s.zxid), Some(15));
        assert_eq!(r.txns.len(), 1);
        // Every kept snapshot but the oldest is broken: the oldest still has its log.
        drop(r);
        for (_, p) in &snaps[1..] {
            std::fs::write(p, b"ZKLSNAP1 broken").unwrap();
        }
        let r = open(dir.path());
        assert_eq!(r.snapshot.as_ref().map(|s| s.zxid), Some(9));
        assert_eq!(r.txns.len(), 7);
        let _ = ErrorCode::Ok;
    }
}
