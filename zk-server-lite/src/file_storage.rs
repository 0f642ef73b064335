//! Durable storage in files: a checksummed transaction log and snapshots, and recovery.
//!
//! Layout (our own format; not Apache's):
//!
//! * `<logDir>/zk-lite/log.<first zxid, 16 hex digits>` — records
//!   `[len: u32 BE][crc32 of payload: u32 BE][payload: encoded Txn]`, appended in zxid order.
//!   A new segment starts after every snapshot.
//! * `<dataDir>/zk-lite/snapshot.<zxid, 16 hex digits>` — `ZKLSNAP1`, the zxid, the sessions,
//!   every node, then a crc32 of everything before it. Written to a temporary file, fsynced,
//!   then renamed, so a crash never leaves a half snapshot under a real name.
//!
//! Recovery ([`recover`]): the newest snapshot whose checksum holds, then every log record
//! after its zxid, in order. The first record that is short, fails its checksum, does not
//! decode or does not increase the zxid ends the log: the file is truncated there and later
//! segments are removed, so a torn tail is never replayed as garbage.
//!
//! A snapshot is a copy of the tree taken under the server lock at a zxid, so it is
//! consistent with the log whatever is written after it.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes};
use zk_proto::records::Acl;
use zk_proto::{Decode, DecodeError, Encode};

use crate::data_tree::{DataTree, Node};
use crate::storage::{Snapshot, StorageError, Syncer, TxnLog};
use crate::txn::Txn;

/// Sub-directory of dataDir / dataLogDir holding our files.
pub const SUBDIR: &str = "zk-lite";
const SNAP_MAGIC: &[u8; 8] = b"ZKLSNAP1";
const RECORD_HEADER: usize = 8;
/// Records larger than this are corruption (a txn is at most ~1 MiB of data plus paths).
const MAX_RECORD: usize = 16 << 20;

fn io_err(e: std::io::Error) -> StorageError {
    StorageError::Io(e)
}

fn corrupt(what: impl Into<String>) -> StorageError {
    StorageError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        what.into(),
    ))
}

/// Files `<prefix>.<hex>` in `dir`, sorted by the number.
fn numbered(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(hex) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        if let Ok(n) = u64::from_str_radix(hex, 16) {
            out.push((n as i64, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    // Directories can be opened and fsynced on Unix; elsewhere this is best effort.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// fsyncs the current log segment from any thread.
#[derive(Debug)]
struct FileSyncer {
    file: Mutex<File>,
}

impl Syncer for FileSyncer {
    fn sync_to_disk(&self) -> std::io::Result<()> {
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.sync_data()
    }
}

/// The file-backed transaction log.
#[derive(Debug)]
pub struct FileLog {
    dir: PathBuf,
    file: File,
    /// Bytes of whole records in the current segment.
    len: u64,
    /// A write failed: the log refuses appends (a half record may sit at its end).
    broken: bool,
    last: Option<i64>,
    appended: u64,
    syncer: Arc<FileSyncer>,
    buf: Vec<u8>,
}

impl FileLog {
    fn open_segment(dir: &Path, path: &Path, last: Option<i64>) -> Result<FileLog, StorageError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_err)?;
        sync_dir(dir)?;
        let clone = file.try_clone().map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        Ok(FileLog {
            dir: dir.to_owned(),
            file,
            len,
            broken: false,
            last,
            appended: 0,
            syncer: Arc::new(FileSyncer {
                file: Mutex::new(clone),
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
        self.buf.clear();
        self.buf.put_u32(0);
        self.buf.put_u32(0);
        txn.encode(&mut self.buf);
        let len = self.buf.len() - RECORD_HEADER;
        let crc = crc32fast::hash(&self.buf[RECORD_HEADER..]);
        let len = u32::try_from(len).map_err(|_| corrupt("txn too large"))?;
        self.buf[..4].copy_from_slice(&len.to_be_bytes());
        self.buf[4..8].copy_from_slice(&crc.to_be_bytes());
        if self.broken {
            return Err(corrupt("the log is broken after a failed write"));
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            // Cut a half-written record off so later records are not hidden behind it; if
            // even that fails, refuse all further appends.
            if self.file.set_len(self.len).is_err() {
                self.broken = true;
            }
            return Err(io_err(e));
        }
        self.len += self.buf.len() as u64;
        self.last = Some(txn.header.zxid);
        self.appended += 1;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.file.sync_data().map_err(io_err)
    }

    fn last_zxid(&self) -> Option<i64> {
        self.last
    }

    fn read_after(&self, zxid: i64) -> Vec<Txn> {
        match scan_logs(&self.dir, zxid, false) {
            Ok(txns) => txns,
            Err(e) => {
                tracing::warn!(error = %e, "reading the log failed");
                Vec::new()
            }
        }
    }

    fn appended(&self) -> u64 {
        self.appended
    }

    fn syncer(&self) -> Option<Arc<dyn Syncer>> {
        Some(self.syncer.clone())
    }

    fn roll(&mut self) -> Result<(), StorageError> {
        self.file.sync_data().map_err(io_err)?;
        let next = self.last.unwrap_or(0) + 1;
        let path = self.dir.join(format!("log.{:016x}", next as u64));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err)?;
        sync_dir(&self.dir)?;
        let clone = file.try_clone().map_err(io_err)?;
        *self.syncer.file.lock().unwrap_or_else(|e| e.into_inner()) = clone;
        self.file = file;
        self.len = 0;
        Ok(())
    }
}

/// Reads every valid record of the log segments in `dir` with zxid > `after`. With
/// `repair`, the first invalid record truncates its file and later segments are removed.
fn scan_logs(dir: &Path, after: i64, repair: bool) -> Result<Vec<Txn>, StorageError> {
    let segments = numbered(dir, "log")?;
    let mut out = Vec::new();
    let mut last: Option<i64> = None;
    for (i, (_, path)) in segments.iter().enumerate() {
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(io_err)?;
        let mut offset = 0usize;
        let mut bad = false;
        while offset < bytes.len() {
            match parse_record(&bytes[offset..]) {
                Some((txn, used)) if last.is_none_or(|l| txn.header.zxid > l) => {
                    last = Some(txn.header.zxid);
                    if txn.header.zxid > after {
                        out.push(txn);
                    }
                    offset += used;
                }
                _ => {
                    bad = true;
                    break;
                }
            }
        }
        if bad {
            tracing::warn!(
                file = %path.display(),
                offset,
                "invalid log record; the log ends here"
            );
            if repair {
                let f = OpenOptions::new().write(true).open(path).map_err(io_err)?;
                f.set_len(offset as u64).map_err(io_err)?;
                f.sync_all().map_err(io_err)?;
                for (_, later) in &segments[i + 1..] {
                    fs::remove_file(later).map_err(io_err)?;
                }
                sync_dir(dir)?;
            }
            break;
        }
    }
    Ok(out)
}

/// One record at the front of `bytes`: the txn and the bytes it used; `None` if short,
/// oversized, failing its checksum or not decoding.
fn parse_record(bytes: &[u8]) -> Option<(Txn, usize)> {
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
        return Err(corrupt("not a snapshot"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != crc {
        return Err(corrupt("snapshot checksum mismatch"));
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
/// makes unnecessary: all but the two newest snapshots, and log segments wholly covered by
/// the older one kept.
pub fn write_snapshot(
    snap_dir: &Path,
    log_dir: &Path,
    snap: &Snapshot,
) -> Result<(), StorageError> {
    fs::create_dir_all(snap_dir).map_err(io_err)?;
    let bytes = encode_snapshot(snap);
    let tmp = snap_dir.join("snapshot.tmp");
    {
        let mut f = File::create(&tmp).map_err(io_err)?;
        f.write_all(&bytes).map_err(io_err)?;
        f.sync_all().map_err(io_err)?;
    }
    let name = snap_dir.join(format!("snapshot.{:016x}", snap.zxid as u64));
    fs::rename(&tmp, &name).map_err(io_err)?;
    sync_dir(snap_dir)?;
    purge(snap_dir, log_dir)
}

fn purge(snap_dir: &Path, log_dir: &Path) -> Result<(), StorageError> {
    let snaps = numbered(snap_dir, "snapshot")?;
    if snaps.len() < 2 {
        return Ok(());
    }
    let keep_from = snaps.len() - 2;
    for (_, path) in &snaps[..keep_from] {
        let _ = fs::remove_file(path);
    }
    // Every txn <= the older kept snapshot is no longer needed.
    let oldest_kept = snaps[keep_from].0;
    let logs = numbered(log_dir, "log")?;
    for pair in logs.windows(2) {
        let (next_start, _) = pair[1];
        if next_start <= oldest_kept + 1 {
            let _ = fs::remove_file(&pair[0].1);
        }
    }
    Ok(())
}

/// What [`recover`] found.
#[derive(Debug)]
pub struct Recovered {
    /// The newest valid snapshot.
    pub snapshot: Option<Snapshot>,
    /// Log txns after the snapshot, in order.
    pub txns: Vec<Txn>,
    /// The log, open for appending after the last valid record.
    pub log: FileLog,
}

/// Opens the storage under `snap_dir` / `log_dir` (each gets a `zk-lite` sub-directory),
/// repairing a torn log tail.
pub fn recover(data_dir: &Path, data_log_dir: &Path) -> Result<Recovered, StorageError> {
    let snap_dir = data_dir.join(SUBDIR);
    let log_dir = data_log_dir.join(SUBDIR);
    fs::create_dir_all(&snap_dir).map_err(io_err)?;
    fs::create_dir_all(&log_dir).map_err(io_err)?;
    let mut snapshot = None;
    for (_, path) in numbered(&snap_dir, "snapshot")?.into_iter().rev() {
        match fs::read(&path)
            .map_err(io_err)
            .and_then(|b| decode_snapshot(&b))
        {
            Ok(s) => {
                snapshot = Some(s);
                break;
            }
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "skipping snapshot"),
        }
    }
    let snap_zxid = snapshot.as_ref().map_or(0, |s: &Snapshot| s.zxid);
    let txns = scan_logs(&log_dir, snap_zxid, true)?;
    let last = txns.last().map_or(snap_zxid, |t| t.header.zxid);
    let segment = match numbered(&log_dir, "log")?.pop() {
        Some((_, path)) => path,
        None => log_dir.join(format!("log.{:016x}", (snap_zxid + 1) as u64)),
    };
    let log = FileLog::open_segment(&log_dir, &segment, (last > 0).then_some(last))?;
    Ok(Recovered {
        snapshot,
        txns,
        log,
    })
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

    #[test]
    fn file_log_suite_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = recover(dir.path(), dir.path()).unwrap();
        assert!(r.snapshot.is_none() && r.txns.is_empty());
        log_suite(&mut r.log);
        drop(r);
        let r = recover(dir.path(), dir.path()).unwrap();
        assert_eq!(r.txns, vec![txn(1), txn(2), txn(3)]);
        assert_eq!(r.log.last_zxid(), Some(3));
    }

    #[test]
    fn torn_and_corrupt_tails_are_truncated() {
        for damage in ["cut", "flip", "garbage"] {
            let dir = tempfile::tempdir().unwrap();
            let mut r = recover(dir.path(), dir.path()).unwrap();
            for z in 1..=3 {
                r.log.append(&create(z, &format!("/n{z}"))).unwrap();
            }
            r.log.sync().unwrap();
            drop(r);
            let seg = numbered(&log_dir(dir.path()), "log").unwrap()[0].1.clone();
            let mut bytes = fs::read(&seg).unwrap();
            let n = bytes.len();
            match damage {
                "cut" => bytes.truncate(n - 3),
                "flip" => bytes[n - 2] ^= 0xff,
                _ => bytes.extend_from_slice(&[0, 0, 0, 9, 1, 2, 3]),
            }
            fs::write(&seg, &bytes).unwrap();
            let mut r = recover(dir.path(), dir.path()).unwrap();
            let expect = if damage == "garbage" { 3 } else { 2 };
            assert_eq!(r.txns.len(), expect, "{damage}");
            // Appending continues after the last good record.
            r.log.append(&create(expect as i64 + 1, "/next")).unwrap();
            drop(r);
            let r = recover(dir.path(), dir.path()).unwrap();
            assert_eq!(r.txns.len(), expect + 1, "{damage}");
        }
    }

    #[test]
    fn snapshots_roundtrip_and_purge() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = recover(dir.path(), dir.path()).unwrap();
        let mut tree = DataTree::new();
        let mut ev = Vec::new();
        for z in 1..=3 {
            let t = create(z, &format!("/n{z}"));
            r.log.append(&t).unwrap();
            tree.apply(&t, &mut ev);
        }
        let snap = Snapshot {
            zxid: 3,
            tree: tree.clone(),
            sessions: vec![(9, 4000)],
        };
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

        r.log.roll().unwrap();
        write_snapshot(&snapshot_dir(dir.path()), &log_dir(dir.path()), &snap).unwrap();
        let t4 = create(4, "/n4");
        r.log.append(&t4).unwrap();
        r.log.sync().unwrap();
        drop(r);
        let r = recover(dir.path(), dir.path()).unwrap();
        assert_eq!(r.snapshot.as_ref().map(|s| s.zxid), Some(3));
        assert_eq!(r.txns, vec![t4]);
        // A broken newest snapshot falls back to the log from the start.
        let snap_file = numbered(&snapshot_dir(dir.path()), "snapshot").unwrap()[0]
            .1
            .clone();
        fs::write(&snap_file, b"ZKLSNAP1 broken").unwrap();
        drop(r);
        let r = recover(dir.path(), dir.path()).unwrap();
        assert!(r.snapshot.is_none());
        assert_eq!(r.txns.len(), 4);
        let _ = ErrorCode::Ok;
    }
}
