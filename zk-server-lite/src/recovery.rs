//! Start-up: rebuild the state from the snapshot and log files, proving that nothing in
//! between is missing, or refuse to start.
//!
//! # The rule
//!
//! A *base* is a snapshot that reads back whole (magic, checksum, decode), or the empty tree.
//! From the newest base, the log records after it must follow one another with no gap
//! (each zxid is the previous one plus one, or the first of a later epoch) up to the end of
//! the log, and that end must reach every zxid the files prove existed (every snapshot's
//! zxid, even of a damaged snapshot, and the zxid before every segment's first). If the
//! newest base has no such chain, older ones are tried; the empty tree counts only if the
//! log starts at the first zxid. With no chain, start-up is refused with a [`Refusal`]
//! saying what is missing and what the operator can do.
//!
//! Damage at the very end of the log with nothing valid after it is a write a crash
//! interrupted (a torn tail): it is cut off with a warning giving the zxids around it.
//! Damage followed by valid records or by later segments is corruption: refused, unless
//! [`RecoveryOptions::repair`] is set, in which case everything from the damage (or gap)
//! on is copied to `<dataLogDir>/zk-lite/repair.<last kept zxid>/`, removed from the log,
//! and an ERROR names the zxid range dropped.
//!
//! Apache ZooKeeper (`FileTxnSnapLog.restore`) refuses to start when log entries exist but no
//! snapshot does, and truncates a log at a record that fails its checksum (logging an
//! ERROR) without checking what follows; it does not check that the replayed log starts
//! right after the snapshot.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::disk::Disk;
use crate::file_storage::{
    FileLog, at, claimed_zxid, decode_snapshot, log_dir, numbered, parse_record, segment_name,
    snapshot_dir,
};
use crate::storage::{Snapshot, StorageError};
use crate::txn::Txn;

/// How [`recover`] treats damage it cannot prove harmless.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryOptions {
    /// Instead of refusing to start over a damaged or incomplete log, drop everything from
    /// the first damage or gap on (keeping a copy), log an ERROR with the zxids dropped,
    /// and start from what precedes it. Off by default; `--repair` / `zklite.repair=true`.
    pub repair: bool,
}

/// Why start-up was refused: what is missing, and what the operator can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What is missing or damaged.
    pub problem: String,
    /// What the operator can do about it.
    pub advice: String,
    /// Whether [`RecoveryOptions::repair`] can start a server from these files (losing
    /// the txns named in `problem`).
    pub repairable: bool,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refusing to start: {} To go on: {}",
            self.problem, self.advice
        )
    }
}

/// A failed recovery. Neither kind goes away by retrying: the files need an operator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// The data directory could not be read or written.
    #[error("data directory: {0}")]
    Storage(#[from] StorageError),
    /// The files do not prove an unbroken history.
    #[error("{0}")]
    Refused(Refusal),
}

/// What recovery found and did, for the start-up log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoverySummary {
    /// The snapshot restored: its zxid and file.
    pub snapshot: Option<(i64, PathBuf)>,
    /// First and last zxid replayed from the log.
    pub replayed: Option<(i64, i64)>,
    /// Snapshots that could not be used, with the reason.
    pub skipped_snapshots: Vec<String>,
    /// The torn tail cut off, if any.
    pub truncated: Option<String>,
    /// What repair mode dropped, if it ran.
    pub repaired: Option<String>,
    /// Damage found where it does not matter (log wholly covered by the snapshot).
    pub notes: Vec<String>,
}

impl fmt::Display for RecoverySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.snapshot {
            Some((z, p)) => write!(f, "snapshot {} (zxid {z:#x})", p.display())?,
            None => write!(f, "no snapshot (empty tree)")?,
        }
        match self.replayed {
            Some((a, b)) => write!(f, ", replayed zxids {a:#x}..={b:#x}")?,
            None => write!(f, ", nothing to replay")?,
        }
        if let Some(t) = &self.truncated {
            write!(f, ", truncated: {t}")?;
        }
        if let Some(r) = &self.repaired {
            write!(f, ", REPAIRED: {r}")?;
        }
        Ok(())
    }
}

/// What [`recover`] restored.
#[derive(Debug)]
pub struct Recovered {
    /// The snapshot the state starts from.
    pub snapshot: Option<Snapshot>,
    /// Log txns after the snapshot, in order.
    pub txns: Vec<Txn>,
    /// The log, open for appending after the last txn.
    pub log: FileLog,
    /// What was found and done.
    pub summary: RecoverySummary,
}

/// Whether `next` may directly follow `prev` in a log: the next counter in the same epoch,
/// or the first txn of a later epoch.
pub fn follows(prev: i64, next: i64) -> bool {
    next == prev + 1 || ((next >> 32) > (prev >> 32) && next & 0xffff_ffff == 1)
}

#[derive(Debug)]
struct Rec {
    txn: Txn,
    offset: usize,
}

#[derive(Debug)]
struct Bad {
    offset: usize,
    bytes: usize,
    claimed: Option<i64>,
    /// The last zxid of valid records found after the damage in the same file.
    later: Option<i64>,
}

#[derive(Debug)]
struct Seg {
    start: i64,
    path: PathBuf,
    recs: Vec<Rec>,
    bad: Option<Bad>,
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn scan_segment(disk: &dyn Disk, start: i64, path: PathBuf) -> Result<Seg, StorageError> {
    let bytes = disk.read(&path).map_err(at(&path))?;
    let mut recs = Vec::new();
    let mut offset = 0;
    let mut last: Option<i64> = None;
    let mut bad = None;
    while offset < bytes.len() {
        match parse_record(&bytes[offset..]) {
            Some((txn, used)) if last.is_none_or(|l| txn.header.zxid > l) => {
                last = Some(txn.header.zxid);
                recs.push(Rec { txn, offset });
                offset += used;
            }
            _ => {
                bad = Some(Bad {
                    offset,
                    bytes: bytes.len() - offset,
                    claimed: claimed_zxid(&bytes[offset..]),
                    later: resync(&bytes, offset + 1, last),
                });
                break;
            }
        }
    }
    Ok(Seg {
        start,
        path,
        recs,
        bad,
    })
}

/// Looks for valid records after damage: the last zxid of the run found, if any.
fn resync(bytes: &[u8], from: usize, last: Option<i64>) -> Option<i64> {
    let plausible = |z: i64| z > 0 && last.is_none_or(|l| z > l && z - l < 1 << 40);
    for p in from..bytes.len() {
        if !claimed_zxid(&bytes[p..]).is_some_and(plausible) {
            continue;
        }
        let Some((txn, used)) = parse_record(&bytes[p..]) else {
            continue;
        };
        let mut z = txn.header.zxid;
        let mut q = p + used;
        while let Some((t, used)) = parse_record(&bytes[q..]) {
            if t.header.zxid <= z {
                break;
            }
            z = t.header.zxid;
            q += used;
        }
        return Some(z);
    }
    None
}

/// Why a base has no chain to the end of the log.
#[derive(Debug, Clone)]
enum Break {
    /// Records jump from `after` to `found` (first record at `seg`/`offset`).
    Gap {
        after: i64,
        found: i64,
        seg: usize,
        offset: usize,
    },
    /// Damage in `seg` at `offset` after zxid `after`, with valid txns after it up to `to`.
    Corrupt {
        after: i64,
        to: i64,
        seg: usize,
        offset: usize,
    },
    /// The log ends at `end` though `evidence` shows txns up to `needed`.
    Short {
        end: i64,
        needed: i64,
        evidence: String,
    },
    /// The log ends at `end`, and the segment the writer created before the newest
    /// snapshot (at zxid `snapshot`) is missing: txns after it may be lost.
    MissingSegment { end: i64, snapshot: i64 },
}

/// What the file names prove existed.
struct Required {
    /// The newest zxid the files prove existed…
    zxid: i64,
    /// …and which file proves it.
    evidence: String,
    /// The newest snapshot's zxid (from its name), 0 if none.
    newest_snapshot: i64,
}

struct Chain {
    txns: Vec<Txn>,
    end: i64,
    /// Torn tail: segment index, offset, description.
    torn: Option<(usize, usize, String)>,
    notes: Vec<String>,
}

/// Checks the log from base zxid `from`; `lenient` accepts a log that ends short.
fn chain(from: i64, segs: &[Seg], required: &Required, lenient: bool) -> Result<Chain, Break> {
    let mut txns = Vec::new();
    let mut expected = from;
    let mut torn = None;
    let mut notes = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        for rec in &seg.recs {
            let z = rec.txn.header.zxid;
            if z <= expected {
                continue;
            }
            if !follows(expected, z) {
                return Err(Break::Gap {
                    after: expected,
                    found: z,
                    seg: i,
                    offset: rec.offset,
                });
            }
            txns.push(rec.txn.clone());
            expected = z;
        }
        let Some(bad) = &seg.bad else { continue };
        let next_start = segs.get(i + 1).map(|s| s.start);
        if next_start.is_some_and(|n| n <= expected + 1) {
            notes.push(format!(
                "{} is damaged at offset {} but holds only txns up to {:#x}, which the state already has",
                name(&seg.path),
                bad.offset,
                expected
            ));
            continue;
        }
        let later_max = segs[i + 1..]
            .iter()
            .filter_map(|s| s.recs.last().map(|r| r.txn.header.zxid))
            .chain(bad.later)
            .max();
        if let Some(to) = later_max {
            return Err(Break::Corrupt {
                after: expected,
                to,
                seg: i,
                offset: bad.offset,
            });
        }
        let claimed = bad
            .claimed
            .filter(|z| follows(expected, *z))
            .map(|z| format!(" (it claims zxid {z:#x})"))
            .unwrap_or_default();
        torn = Some((
            i,
            bad.offset,
            format!(
                "{}: an incomplete record after zxid {expected:#x} at offset {}, {} bytes{claimed}",
                name(&seg.path),
                bad.offset,
                bad.bytes
            ),
        ));
    }
    if !lenient {
        if expected < required.zxid {
            return Err(Break::Short {
                end: expected,
                needed: required.zxid,
                evidence: required.evidence.clone(),
            });
        }
        // The writer makes `log.<S+1>` durable before it writes snapshot S.
        let s = required.newest_snapshot;
        if s > 0 && !segs.iter().any(|seg| seg.start > s) {
            return Err(Break::MissingSegment {
                end: expected,
                snapshot: s,
            });
        }
    }
    Ok(Chain {
        txns,
        end: expected,
        torn,
        notes,
    })
}

fn base_name(base: Option<&(i64, PathBuf)>) -> String {
    match base {
        Some((z, p)) => format!("snapshot {} (zxid {z:#x})", name(p)),
        None => "an empty tree".to_owned(),
    }
}

fn refusal(base: Option<&(i64, PathBuf)>, brk: &Break, skipped: &[String]) -> Refusal {
    let from = base_name(base);
    let skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!(" Unusable snapshots: {}.", skipped.join("; "))
    };
    let repair = "or start with --repair (zoo.cfg: zklite.repair=true)";
    match brk {
        Break::Gap {
            after: 0, found, ..
        } if base.is_none() => Refusal {
            problem: format!(
                "no snapshot can be read and the log starts at zxid {found:#x}, not at the first zxid: \
                 the txns before it are in no file.{skipped}"
            ),
            advice: "restore a snapshot (or the purged log segments) from a backup or another \
                     server; to start with an empty tree instead, move the data directories aside."
                .into(),
            repairable: false,
        },
        Break::Gap {
            after,
            found,
            seg: _,
            ..
        } => Refusal {
            problem: format!(
                "starting from {from}, the log has no txns between zxid {after:#x} and {found:#x} \
                 (a log segment is missing, probably {}).{skipped}",
                name(&segment_name(Path::new(""), after + 1))
            ),
            advice: format!(
                "restore the missing segment from a backup or another server's dataLogDir, \
                 {repair} to serve the data up to zxid {after:#x} and set the rest aside."
            ),
            repairable: true,
        },
        Break::Corrupt { after, to, .. } => Refusal {
            problem: format!(
                "starting from {from}, the log is damaged after zxid {after:#x} but valid txns \
                 follow up to {to:#x}: this is corruption, not a write cut short by a crash.{skipped}"
            ),
            advice: format!(
                "restore the log from a backup or another server, {repair} to serve the data up \
                 to zxid {after:#x} and set zxids {:#x}..={to:#x} aside (a copy is kept).",
                after + 1
            ),
            repairable: true,
        },
        Break::MissingSegment { end, snapshot } => Refusal {
            problem: format!(
                "the log segment {} is missing: it is created before {} is written, so the txns \
                 after zxid {snapshot:#x} it held may be lost (starting from {from}, the log ends \
                 at {end:#x}).{skipped}",
                name(&segment_name(Path::new(""), snapshot + 1)),
                name(&Path::new("").join(format!("snapshot.{:016x}", *snapshot as u64))),
            ),
            advice: format!(
                "restore the segment from a backup or another server's dataLogDir, {repair} to \
                 serve the data up to zxid {end:#x} and accept the loss."
            ),
            repairable: true,
        },
        Break::Short {
            end,
            needed,
            evidence,
        } => Refusal {
            problem: format!(
                "starting from {from}, the log ends at zxid {end:#x} but {evidence} shows txns up to \
                 {needed:#x} existed.{skipped}"
            ),
            advice: format!(
                "restore the missing log files from a backup or another server, {repair} to serve \
                 the data up to zxid {end:#x} and accept the loss."
            ),
            repairable: true,
        },
    }
}

/// Rebuilds the state stored under `data_dir` / `data_log_dir` (each gets a `zk-lite`
/// sub-directory) on `disk`; see the [module docs](self) for the rule. A torn tail is cut
/// off; repairs happen only with [`RecoveryOptions::repair`]. Logs the outcome (`info`),
/// a torn tail (`warn`), unusable snapshots (`warn`), repairs and refusals (`error`).
pub fn recover(
    disk: Arc<dyn Disk>,
    data_dir: &Path,
    data_log_dir: &Path,
    opts: RecoveryOptions,
) -> Result<Recovered, RecoveryError> {
    let snap_dir = snapshot_dir(data_dir);
    let log_dir = log_dir(data_log_dir);
    for dir in [&snap_dir, &log_dir] {
        disk.create_dir_all(dir).map_err(at(dir))?;
    }
    // Leftovers of a snapshot write a crash interrupted.
    if let Ok(names) = disk.list(&snap_dir) {
        for n in names.iter().filter(|n| n.ends_with(".tmp")) {
            let _ = disk.remove(&snap_dir.join(n));
        }
    }
    let result = run(&disk, &snap_dir, &log_dir, opts);
    match &result {
        Ok(rec) => tracing::info!(summary = %rec.summary, "recovered"),
        Err(e) => tracing::error!("{e}"),
    }
    result
}

fn run(
    disk: &Arc<dyn Disk>,
    snap_dir: &Path,
    log_dir: &Path,
    opts: RecoveryOptions,
) -> Result<Recovered, RecoveryError> {
    let refused = match attempt(disk, snap_dir, log_dir, false) {
        Ok(rec) => return Ok(rec),
        Err(Failure::Storage(e)) => return Err(e.into()),
        Err(Failure::Refused(b)) => *b,
    };
    let (refusal, Some(plan)) = refused else {
        return Err(RecoveryError::Refused(refused.0));
    };
    if !opts.repair {
        return Err(RecoveryError::Refused(refusal));
    }
    let dropped = repair(disk.as_ref(), log_dir, &plan)?;
    tracing::error!(refusal = %refusal, "REPAIR: {dropped}");
    let mut rec = match attempt(disk, snap_dir, log_dir, true) {
        Ok(rec) => rec,
        Err(Failure::Refused(b)) => return Err(RecoveryError::Refused(b.0)),
        Err(Failure::Storage(e)) => return Err(e.into()),
    };
    rec.summary.repaired = Some(dropped);
    Ok(rec)
}

enum Failure {
    Storage(StorageError),
    Refused(Box<(Refusal, Option<Plan>)>),
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Self {
        Failure::Storage(e)
    }
}

/// What repair mode removes: `cut` truncates a segment at an offset, `remove` drops whole
/// segments; `keep_to` is the last zxid kept.
#[derive(Debug)]
struct Plan {
    cut: Option<(PathBuf, usize)>,
    remove: Vec<PathBuf>,
    /// Snapshots newer than what is kept (they cannot be read, or the chain would have
    /// used them).
    remove_snapshots: Vec<PathBuf>,
    keep_to: i64,
    drop_to: Option<i64>,
}

fn plan_for(brk: &Break, segs: &[Seg], snaps: &[(i64, PathBuf)]) -> Plan {
    let (keep_to, drop_to, first_removed) = match *brk {
        Break::Gap {
            after,
            found,
            seg,
            offset,
        } => (after, Some(found), (seg, offset)),
        Break::Corrupt {
            after,
            to,
            seg,
            offset,
        } => (after, Some(to), (seg, offset)),
        Break::Short { end, .. } | Break::MissingSegment { end, .. } => {
            (end, None, (segs.len(), 0))
        }
    };
    let drop_to = drop_to.map(|d| {
        segs.iter()
            .filter_map(|s| s.recs.last().map(|r| r.txn.header.zxid))
            .chain(
                segs.iter()
                    .filter_map(|s| s.bad.as_ref().and_then(|b| b.later)),
            )
            .fold(d, i64::max)
    });
    let (seg, offset) = first_removed;
    let mut cut = None;
    let mut remove = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        if i == seg && (offset > 0 || s.start <= keep_to + 1) {
            cut = Some((s.path.clone(), offset));
        } else if i >= seg || s.start > keep_to + 1 {
            remove.push(s.path.clone());
        }
    }
    Plan {
        cut,
        remove,
        remove_snapshots: snaps
            .iter()
            .filter(|(z, _)| *z > keep_to)
            .map(|(_, p)| p.clone())
            .collect(),
        keep_to,
        drop_to,
    }
}

/// Copies what the plan removes to `repair.<keep_to>/`, then removes it. Returns what was
/// dropped, for the log.
fn repair(disk: &dyn Disk, log_dir: &Path, plan: &Plan) -> Result<String, StorageError> {
    let keep = log_dir.join(format!("repair.{:016x}", plan.keep_to as u64));
    disk.create_dir_all(&keep).map_err(at(&keep))?;
    let copy = |dest: PathBuf, bytes: &[u8]| -> Result<(), StorageError> {
        let f = disk.create(&dest).map_err(at(&dest))?;
        f.append(bytes).map_err(at(&dest))?;
        f.sync().map_err(at(&dest))
    };
    let mut bytes_kept = 0;
    if let Some((path, offset)) = &plan.cut {
        let bytes = disk.read(path).map_err(at(path))?;
        let tail = bytes.get(*offset..).unwrap_or_default();
        bytes_kept += tail.len();
        copy(keep.join(format!("{}.from-{offset}", name(path))), tail)?;
    }
    for path in plan.remove.iter().chain(&plan.remove_snapshots) {
        let bytes = disk.read(path).map_err(at(path))?;
        bytes_kept += bytes.len();
        copy(keep.join(name(path)), &bytes)?;
    }
    disk.sync_dir(&keep).map_err(at(&keep))?;
    if let Some((path, offset)) = &plan.cut {
        let f = disk.open_append(path).map_err(at(path))?;
        f.truncate(*offset as u64).map_err(at(path))?;
        f.sync().map_err(at(path))?;
    }
    for path in plan.remove.iter().chain(&plan.remove_snapshots) {
        disk.remove(path).map_err(at(path))?;
    }
    disk.sync_dir(log_dir).map_err(at(log_dir))?;
    if let Some(dir) = plan.remove_snapshots.first().and_then(|p| p.parent()) {
        disk.sync_dir(dir).map_err(at(dir))?;
    }
    let range = match plan.drop_to {
        Some(to) => format!("dropped zxids {:#x}..={to:#x}", plan.keep_to + 1),
        None => "accepted the loss of the txns the missing files held".to_owned(),
    };
    Ok(format!(
        "{range}; the state ends at zxid {:#x}; {bytes_kept} bytes removed from the log were copied to {}",
        plan.keep_to,
        keep.display()
    ))
}

fn attempt(
    disk: &Arc<dyn Disk>,
    snap_dir: &Path,
    log_dir: &Path,
    lenient: bool,
) -> Result<Recovered, Failure> {
    let snaps = numbered(disk.as_ref(), snap_dir, "snapshot")?;
    let mut segs = Vec::new();
    for (start, path) in numbered(disk.as_ref(), log_dir, "log")? {
        segs.push(scan_segment(disk.as_ref(), start, path)?);
    }
    let mut required = Required {
        zxid: 0,
        evidence: String::new(),
        newest_snapshot: snaps.last().map_or(0, |s| s.0),
    };
    for (z, p) in &snaps {
        if *z > required.zxid {
            required.zxid = *z;
            required.evidence = format!("the snapshot file {}", name(p));
        }
    }
    for s in &segs {
        if s.start - 1 > required.zxid {
            required.zxid = s.start - 1;
            required.evidence = format!("the segment name {}", name(&s.path));
        }
    }

    let mut skipped = Vec::new();
    let mut first_break: Option<(Option<(i64, PathBuf)>, Break)> = None;
    let mut chosen = None;
    for (z, path) in snaps.iter().rev() {
        let snap = match disk
            .read(path)
            .map_err(at(path))
            .and_then(|b| decode_snapshot(&b))
        {
            Ok(s) if s.zxid == *z => s,
            Ok(s) => {
                skipped.push(format!("{}: holds zxid {:#x}", name(path), s.zxid));
                continue;
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "snapshot unusable");
                skipped.push(format!("{}: {e}", name(path)));
                continue;
            }
        };
        match chain(snap.zxid, &segs, &required, lenient) {
            Ok(c) => {
                chosen = Some((Some((snap, path.clone())), c));
                break;
            }
            Err(b) => {
                let why = refusal(Some(&(*z, path.clone())), &b, &[]).problem;
                tracing::warn!(snapshot = %path.display(), "no unbroken log after this snapshot: {why}");
                if first_break.is_none() {
                    first_break = Some((Some((*z, path.clone())), b));
                }
                if lenient {
                    break;
                }
            }
        }
    }
    if chosen.is_none() && first_break.is_none() {
        match chain(0, &segs, &required, lenient) {
            Ok(c) => chosen = Some((None, c)),
            Err(b) => first_break = Some((None, b)),
        }
    }
    let Some((base, chain)) = chosen else {
        let (base, brk) = first_break.unwrap_or((
            None,
            Break::Short {
                end: 0,
                needed: required.zxid,
                evidence: required.evidence.clone(),
            },
        ));
        let r = refusal(base.as_ref(), &brk, &skipped);
        let plan = r.repairable.then(|| plan_for(&brk, &segs, &snaps));
        return Err(Failure::Refused(Box::new((r, plan))));
    };

    let mut summary = RecoverySummary {
        skipped_snapshots: skipped,
        notes: chain.notes,
        ..RecoverySummary::default()
    };
    for note in &summary.notes {
        tracing::warn!("{note}");
    }
    if let Some((i, offset, what)) = &chain.torn {
        let path = &segs[*i].path;
        let f = disk.open_append(path).map_err(at(path))?;
        f.truncate(*offset as u64).map_err(at(path))?;
        f.sync().map_err(at(path))?;
        tracing::warn!("torn log tail cut off: {what}");
        summary.truncated = Some(what.clone());
    }
    let end = chain.end;
    if let (Some(first), Some(last)) = (chain.txns.first(), chain.txns.last()) {
        summary.replayed = Some((first.header.zxid, last.header.zxid));
    }
    // Append to the last segment, unless it precedes the newest snapshot (the writer always
    // starts a segment after it: keep that true after a repair).
    let segment = match segs.last() {
        Some(s)
            if s.start <= end + 1 && (s.start > required.newest_snapshot || s.start == end + 1) =>
        {
            s.path.clone()
        }
        _ => segment_name(log_dir, end + 1),
    };
    let log = FileLog::open_segment(
        Arc::clone(disk),
        log_dir,
        &segment,
        (end > 0).then_some(end),
    )?;
    let snapshot = base.map(|(snap, path)| {
        summary.snapshot = Some((snap.zxid, path));
        snap
    });
    Ok(Recovered {
        snapshot,
        txns: chain.txns,
        log,
        summary,
    })
}

impl From<io::Error> for RecoveryError {
    fn from(e: io::Error) -> Self {
        RecoveryError::Storage(StorageError::Io(e))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use zk_proto::OpCode;
    use zk_proto::records::OPEN_ACL_UNSAFE;

    use super::*;
    use crate::data_tree::DataTree;
    use crate::disk::RealDisk;
    use crate::file_storage::{snapshot_dir, write_snapshot};
    use crate::storage::TxnLog;
    use crate::txn::{NodeKind, TxnBody, TxnHeader};

    fn create(zxid: i64) -> Txn {
        Txn {
            header: TxnHeader {
                session_id: 1,
                cxid: 1,
                zxid,
                time: 5,
                op: OpCode::Create,
            },
            body: TxnBody::Create {
                path: format!("/n{zxid}"),
                data: Some(Bytes::from(vec![b'x'; 50])),
                acl: OPEN_ACL_UNSAFE.clone(),
                kind: NodeKind::Persistent,
                parent_cversion: i32::try_from(zxid).unwrap(),
            },
        }
    }

    fn open(dir: &Path, repair: bool) -> Result<Recovered, RecoveryError> {
        recover(RealDisk::shared(), dir, dir, RecoveryOptions { repair })
    }

    /// Writes txns 1..=n as the server does: a roll and a snapshot every `every` txns.
    fn history(dir: &Path, n: i64, every: i64) {
        let mut r = open(dir, false).unwrap();
        let mut tree = DataTree::new();
        let mut ev = Vec::new();
        for z in 1..=n {
            let t = create(z);
            r.log.append(&t).unwrap();
            tree.apply(&t, &mut ev);
            if z % every == 0 {
                r.log.sync().unwrap();
                r.log.roll().unwrap();
                let snap = Snapshot {
                    zxid: z,
                    tree: tree.clone(),
                    sessions: Vec::new(),
                };
                write_snapshot(&RealDisk, &snapshot_dir(dir), &log_dir(dir), &snap).unwrap();
            }
        }
        r.log.sync().unwrap();
    }

    fn files(dir: &Path, prefix: &str) -> Vec<(i64, PathBuf)> {
        numbered(&RealDisk, &dir.join("zk-lite"), prefix).unwrap()
    }

    fn last_zxid(r: &Recovered) -> i64 {
        r.txns
            .last()
            .map(|t| t.header.zxid)
            .or(r.snapshot.as_ref().map(|s| s.zxid))
            .unwrap_or(0)
    }

    fn refused(r: Result<Recovered, RecoveryError>) -> Refusal {
        match r {
            Err(RecoveryError::Refused(r)) => r,
            Err(e) => panic!("unexpected error {e}"),
            Ok(r) => panic!("started: {}", r.summary),
        }
    }

    #[test]
    fn follows_counts_and_epochs() {
        assert!(follows(0, 1));
        assert!(follows(5, 6));
        assert!(!follows(5, 7));
        assert!(follows(0x1_0000_0005, 0x2_0000_0001));
        assert!(follows(0, 0x1_0000_0001));
        assert!(!follows(0x1_0000_0005, 0x2_0000_0002));
    }

    #[test]
    fn intact_history_starts_from_the_newest_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        history(dir.path(), 250, 100);
        let r = open(dir.path(), false).unwrap();
        assert_eq!(r.summary.snapshot.as_ref().map(|s| s.0), Some(200));
        assert_eq!(r.summary.replayed, Some((201, 250)));
        assert_eq!(last_zxid(&r), 250);
        assert!(r.summary.truncated.is_none() && r.summary.repaired.is_none());
    }

    #[test]
    fn torn_tail_is_cut_with_a_warning() {
        for cut in [1, 3, 9, 40] {
            let dir = tempfile::tempdir().unwrap();
            history(dir.path(), 250, 100);
            let (_, seg) = files(dir.path(), "log").pop().unwrap();
            let bytes = std::fs::read(&seg).unwrap();
            std::fs::write(&seg, &bytes[..bytes.len() - cut]).unwrap();
            let r = open(dir.path(), false).unwrap();
            assert_eq!(last_zxid(&r), 249, "cut {cut}");
            let t = r.summary.truncated.clone().unwrap();
            assert!(t.contains("after zxid 0xf9"), "{t}");
            drop(r);
            // The cut is durable and appending goes on after it.
            let mut r = open(dir.path(), false).unwrap();
            assert!(r.summary.truncated.is_none());
            r.log.append(&create(250)).unwrap();
            r.log.sync().unwrap();
            drop(r);
            assert_eq!(last_zxid(&open(dir.path(), false).unwrap()), 250);
        }
    }

    #[test]
    fn all_snapshots_truncated_after_purge_refuses() {
        let dir = tempfile::tempdir().unwrap();
        history(dir.path(), 1200, 200);
        assert!(
            files(dir.path(), "log")[0].0 > 1,
            "the first segments were purged"
        );
        for (_, p) in files(dir.path(), "snapshot") {
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() / 2]).unwrap();
        }
        let r = refused(open(dir.path(), false));
        assert!(r.problem.contains("no snapshot can be read"), "{r}");
        assert!(r.problem.contains("checksum"), "{r}");
        assert!(!r.repairable);
        // Repair mode cannot invent the missing state either.
        let r = refused(open(dir.path(), true));
        assert!(r.advice.contains("move the data directories aside"), "{r}");
    }

    #[test]
    fn newest_snapshot_damaged_falls_back_to_an_older_one() {
        let dir = tempfile::tempdir().unwrap();
        history(dir.path(), 650, 200);
        let (_, newest) = files(dir.path(), "snapshot").pop().unwrap();
        std::fs::write(&newest, b"ZKLSNAP1 garbage").unwrap();
        let r = open(dir.path(), false).unwrap();
        assert_eq!(r.summary.snapshot.as_ref().map(|s| s.0), Some(400));
        assert_eq!(last_zxid(&r), 650);
        assert_eq!(r.summary.skipped_snapshots.len(), 1);
    }

    fn flip_middle(path: &Path) {
        let mut b = std::fs::read(path).unwrap();
        let mid = b.len() / 2;
        for x in &mut b[mid..mid + 16] {
            *x ^= 0x5a;
        }
        std::fs::write(path, &b).unwrap();
    }

    #[test]
    fn bytes_flipped_mid_log_refuse_and_repair_keeps_a_copy() {
        let dir = tempfile::tempdir().unwrap();
        history(dir.path(), 700, 200);
        let (_, seg) = files(dir.path(), "log").pop().unwrap();
        let before = std::fs::read(&seg).unwrap();
        flip_middle(&seg);
        let r = refused(open(dir.path(), false));
        assert!(r.problem.contains("corruption"), "{r}");
        assert!(r.repairable && r.advice.contains("--repair"), "{r}");
        // Refusing changed nothing.
        assert_eq!(std::fs::read(&seg).unwrap().len(), before.len());

        let r = open(dir.path(), true).unwrap();
        let kept = last_zxid(&r);
        assert!((600..700).contains(&kept), "{kept}");
        let repaired = r.summary.repaired.clone().unwrap();
        assert!(
            repaired.contains(&format!("dropped zxids {:#x}..=0x2bc", kept + 1)),
            "{repaired}"
        );
        drop(r);
        let copy_dir = dir
            .path()
            .join(format!("zk-lite/repair.{:016x}", kept as u64));
        let copies: Vec<_> = std::fs::read_dir(&copy_dir).unwrap().collect();
        assert_eq!(copies.len(), 1);
        let copy = std::fs::read(copies[0].as_ref().unwrap().path()).unwrap();
        let now = std::fs::read(&seg).unwrap();
        assert_eq!(now.len() + copy.len(), before.len());
        // The repaired state starts cleanly without repair mode.
        let r = open(dir.path(), false).unwrap();
        assert_eq!(last_zxid(&r), kept);
        assert!(r.summary.repaired.is_none());
    }

    #[test]
    fn damage_before_later_segments_is_corruption_not_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        history(dir.path(), 450, 200);
        // Newest snapshot unusable, so the segment after 200 is needed; cut its end.
        let snaps = files(dir.path(), "snapshot");
        std::fs::write(&snaps.last().unwrap().1, b"x").unwrap();
        let seg = files(dir.path(), "log")
            .into_iter()
            .find(|s| s.0 == 201)
            .unwrap()
            .1;
        let b = std::fs::read(&seg).unwrap();
        std::fs::write(&seg, &b[..b.len() - 5]).unwrap();
        let r = refused(open(dir.path(), false));
        assert!(r.problem.contains("corruption"), "{r}");
    }

    #[test]
    fn missing_segment_after_the_fallback_snapshot_refuses() {
        let dir = tempfile::tempdir().unwrap();
        history(dir.path(), 650, 200);
        let (_, newest) = files(dir.path(), "snapshot").pop().unwrap();
        std::fs::write(&newest, b"").unwrap();
        let seg = files(dir.path(), "log")
            .into_iter()
            .find(|s| s.0 == 401)
            .unwrap()
            .1;
        std::fs::remove_file(&seg).unwrap();
        let r = refused(open(dir.path(), false));
        assert!(
            r.problem.contains("no txns between zxid 0x190 and 0x259"),
            "{r}"
        );
        assert!(r.problem.contains("log.0000000000000191"), "{r}");
        let r = open(dir.path(), true).unwrap();
        assert_eq!(last_zxid(&r), 400);
        drop(r);
        assert_eq!(last_zxid(&open(dir.path(), false).unwrap()), 400);
    }

    #[test]
    fn missing_newest_segment_refuses() {
        let dir = tempfile::tempdir().unwrap();
        history(dir.path(), 650, 200);
        let (_, seg) = files(dir.path(), "log").pop().unwrap();
        std::fs::remove_file(&seg).unwrap();
        let r = refused(open(dir.path(), false));
        assert!(r.problem.contains("log.0000000000000259"), "{r}");
        let r = open(dir.path(), true).unwrap();
        assert_eq!(last_zxid(&r), 600);
        drop(r);
        // Repaired: the next start needs no repair mode.
        assert_eq!(last_zxid(&open(dir.path(), false).unwrap()), 600);
    }

    #[test]
    fn damage_in_a_segment_the_snapshot_covers_is_only_noted() {
        let dir = tempfile::tempdir().unwrap();
        history(dir.path(), 450, 200);
        let seg = files(dir.path(), "log")
            .into_iter()
            .find(|s| s.0 == 201)
            .unwrap()
            .1;
        flip_middle(&seg);
        let r = open(dir.path(), false).unwrap();
        assert_eq!(r.summary.snapshot.as_ref().map(|s| s.0), Some(400));
        assert_eq!(last_zxid(&r), 450);
        assert_eq!(r.summary.notes.len(), 1, "{:?}", r.summary.notes);
    }

    #[test]
    fn no_snapshot_and_a_full_log_replays_from_empty() {
        let dir = tempfile::tempdir().unwrap();
        history(dir.path(), 150, 1000);
        let r = open(dir.path(), false).unwrap();
        assert!(r.snapshot.is_none());
        assert_eq!(r.summary.replayed, Some((1, 150)));
    }
}
