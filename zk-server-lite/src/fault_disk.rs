//! A simulated disk for crash and fault tests, in the spirit of LazyFS: it keeps what a
//! real disk would have made durable apart from what only sits in the page cache, and a
//! simulated [`crash`](FaultDisk::crash) keeps the first and loses (or tears) the second.
//!
//! * Bytes appended but not fsynced survive a crash in part: none, all, or a prefix torn at
//!   any byte, chosen per file, so a later write to one file can survive while an earlier
//!   write to another is lost (writes are reordered between files).
//! * Creations, renames and removals not yet made durable by [`Disk::sync_dir`] of their
//!   directory survive in part too: a random prefix of them, plus those a directory fsync
//!   committed.
//! * With [`Faults`], a file or directory fsync can fail (and then, as on Linux, the bytes
//!   it should have written are lost at the next crash even if a later fsync succeeds), a
//!   rename can fail, and the disk can fill up (an append then writes what fits and fails
//!   with [`std::io::ErrorKind::StorageFull`]).
//! * A crash invalidates every open [`DiskFile`]: a process that goes on writing after
//!   its "crash" (a server thread not yet stopped) changes nothing.
//!
//! Everything random comes from one generator seeded by [`FaultDisk::new`]: the same seed
//! and the same sequence of calls give the same disk. There is no clock and no async
//! runtime inside. A `FaultDisk` is a handle: clones share one disk (give one clone to the
//! server, keep one to crash it); make one disk per simulated node with its own seed.
//!
//! ```
//! use std::path::Path;
//! use zk_server_lite::disk::Disk;
//! use zk_server_lite::fault_disk::FaultDisk;
//!
//! let disk = FaultDisk::new(7);
//! disk.create_dir_all(Path::new("/data")).unwrap();
//! let f = disk.open_append(Path::new("/data/log")).unwrap();
//! f.append(b"durable").unwrap();
//! f.sync().unwrap();
//! disk.sync_dir(Path::new("/data")).unwrap();
//! f.append(b" maybe").unwrap();
//! disk.crash();
//! let after = disk.read(Path::new("/data/log")).unwrap();
//! assert!(after.starts_with(b"durable") && after.len() <= b"durable maybe".len());
//! assert!(f.append(b"x").is_err()); // handles from before the crash are dead
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::disk::{Disk, DiskFile};

/// Which faults a [`FaultDisk`] injects besides crashes (default: none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// One file or directory fsync in this many fails (0: never).
    pub fsync_fail_one_in: u32,
    /// One rename in this many fails (0: never).
    pub rename_fail_one_in: u32,
    /// Bytes the disk holds in all its files (`None`: unlimited).
    pub capacity: Option<u64>,
}

/// What a [`FaultDisk::crash`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Unsynced bytes that did not survive.
    pub bytes_lost: u64,
    /// Files whose unsynced tail survived only in part (torn).
    pub files_torn: usize,
    /// Name changes (creations, renames, removals) that did not survive.
    pub name_changes_lost: usize,
}

/// A simulated disk (see the [module docs](self)). Clones share the disk.
#[derive(Clone)]
pub struct FaultDisk {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FaultDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        let files: BTreeMap<&PathBuf, usize> = s
            .names
            .iter()
            .map(|(p, ino)| (p, s.inodes.get(ino).map_or(0, |i| i.data.len())))
            .collect();
        f.debug_struct("FaultDisk")
            .field("generation", &s.generation)
            .field("files", &files)
            .finish()
    }
}

/// splitmix64: small, fast, good enough for fault choices, and stable across versions.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max`.
    fn upto(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            return self.next();
        }
        self.next() % (max + 1)
    }

    fn one_in(&mut self, n: u32) -> bool {
        n != 0 && self.next() % u64::from(n) == 0
    }
}

#[derive(Debug, Clone, Default)]
struct Inode {
    /// What readers see.
    data: Vec<u8>,
    /// What survives a crash for sure.
    durable: Vec<u8>,
    /// Byte ranges whose fsync failed: lost at a crash whatever happens later.
    holes: Vec<(usize, usize)>,
}

impl Inode {
    fn with_holes_zeroed(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        for &(from, to) in &self.holes {
            let to = to.min(bytes.len());
            if from < to {
                bytes[from..to].fill(0);
            }
        }
        bytes
    }
}

#[derive(Debug, Clone)]
enum Meta {
    Link(PathBuf, u64),
    Unlink(PathBuf),
    Rename(PathBuf, PathBuf),
}

impl Meta {
    fn touches(&self, dir: &Path) -> bool {
        let parent = |p: &PathBuf| p.parent() == Some(dir);
        match self {
            Meta::Link(p, _) | Meta::Unlink(p) => parent(p),
            Meta::Rename(a, b) => parent(a) || parent(b),
        }
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, u64>) {
        match self {
            Meta::Link(p, ino) => {
                names.insert(p.clone(), *ino);
            }
            Meta::Unlink(p) => {
                names.remove(p);
            }
            Meta::Rename(a, b) => {
                if let Some(ino) = names.remove(a) {
                    names.insert(b.clone(), ino);
                }
            }
        }
    }
}

#[derive(Debug)]
struct State {
    rng: Rng,
    generation: u64,
    next_ino: u64,
    inodes: BTreeMap<u64, Inode>,
    /// Names as processes see them.
    names: BTreeMap<PathBuf, u64>,
    /// Names that survive a crash for sure.
    durable_names: BTreeMap<PathBuf, u64>,
    /// Name changes since the durable state, in order, with "committed by a dir fsync".
    pending: Vec<(Meta, bool)>,
    dirs: BTreeSet<PathBuf>,
    faults: Faults,
}

impl State {
    fn used(&self) -> u64 {
        let live: BTreeSet<u64> = self.names.values().copied().collect();
        live.iter()
            .filter_map(|i| self.inodes.get(i))
            .map(|i| i.data.len() as u64)
            .sum()
    }

    fn check_parent(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(dir) if self.dirs.contains(dir) => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no directory for {}", path.display()),
            )),
        }
    }

    fn link_new(&mut self, path: &Path) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, Inode::default());
        self.names.insert(path.to_owned(), ino);
        self.pending.push((Meta::Link(path.to_owned(), ino), false));
        ino
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no file {}", path.display()),
    )
}

impl FaultDisk {
    /// An empty disk (no directories) whose random choices all come from `seed`.
    pub fn new(seed: u64) -> FaultDisk {
        FaultDisk {
            state: Arc::new(Mutex::new(State {
                rng: Rng(seed),
                generation: 0,
                next_ino: 1,
                inodes: BTreeMap::new(),
                names: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                pending: Vec::new(),
                dirs: BTreeSet::new(),
                faults: Faults::default(),
            })),
        }
    }

    /// This disk as a shared [`Disk`] (a clone of the handle).
    pub fn shared(&self) -> Arc<dyn Disk> {
        Arc::new(self.clone())
    }

    /// Sets the faults injected from now on.
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Bytes in all files now.
    pub fn used(&self) -> u64 {
        self.lock().used()
    }

    /// Simulates a power loss: every file keeps its durable content plus none, all, or a
    /// torn prefix of what was appended since (chosen per file), name changes keep those a
    /// directory fsync committed plus a random prefix of the others, and every open
    /// [`DiskFile`] stops working. The disk is then as a rebooted machine finds it.
    pub fn crash(&self) -> CrashReport {
        let mut guard = self.lock();
        let s = &mut *guard;
        let mut report = CrashReport::default();
        let keep_prefix = s.rng.upto(s.pending.len() as u64) as usize;
        let mut names = std::mem::take(&mut s.durable_names);
        for (i, (op, committed)) in s.pending.drain(..).enumerate() {
            if committed || i < keep_prefix {
                op.apply(&mut names);
            } else {
                report.name_changes_lost += 1;
            }
        }
        let live: BTreeSet<u64> = names.values().copied().collect();
        let mut inodes = BTreeMap::new();
        for (ino, inode) in std::mem::take(&mut s.inodes) {
            if !live.contains(&ino) {
                continue;
            }
            let dl = inode.durable.len();
            let appended_only = inode.data.len() >= dl && inode.data[..dl] == inode.durable[..];
            let survived = if appended_only {
                let pending = (inode.data.len() - dl) as u64;
                let keep = match s.rng.upto(2) {
                    0 => 0,
                    1 => pending,
                    _ => s.rng.upto(pending),
                };
                if keep != 0 && keep != pending {
                    report.files_torn += 1;
                }
                report.bytes_lost += pending - keep;
                let end = dl + keep as usize;
                inode.with_holes_zeroed(inode.data[..end].to_vec())
            } else if s.rng.upto(1) == 0 {
                inode.with_holes_zeroed(inode.durable.clone())
            } else {
                inode.with_holes_zeroed(inode.data.clone())
            };
            inodes.insert(
                ino,
                Inode {
                    data: survived.clone(),
                    durable: survived,
                    holes: Vec::new(),
                },
            );
        }
        s.inodes = inodes;
        s.names = names.clone();
        s.durable_names = names;
        s.generation += 1;
        report
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn file(&self, ino: u64, generation: u64) -> Arc<dyn DiskFile> {
        Arc::new(FaultFile {
            disk: self.clone(),
            ino,
            generation,
        })
    }
}

impl Disk for FaultDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        for d in dir.ancestors() {
            if !d.as_os_str().is_empty() {
                s.dirs.insert(d.to_owned());
            }
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.lock();
        if !s.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        Ok(s.names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.lock();
        let ino = s.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(s.inodes
            .get(ino)
            .map(|i| i.data.clone())
            .unwrap_or_default())
    }

    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn DiskFile>> {
        let mut s = self.lock();
        s.check_parent(path)?;
        let ino = match s.names.get(path) {
            Some(ino) => *ino,
            None => s.link_new(path),
        };
        let generation = s.generation;
        drop(s);
        Ok(self.file(ino, generation))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn DiskFile>> {
        let mut s = self.lock();
        s.check_parent(path)?;
        let ino = s.link_new(path);
        let generation = s.generation;
        drop(s);
        Ok(self.file(ino, generation))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.check_parent(to)?;
        if !s.names.contains_key(from) {
            return Err(not_found(from));
        }
        let one_in = s.faults.rename_fail_one_in;
        if s.rng.one_in(one_in) {
            return Err(io::Error::other("simulated rename failure"));
        }
        if let Some(ino) = s.names.remove(from) {
            s.names.insert(to.to_owned(), ino);
        }
        s.pending
            .push((Meta::Rename(from.to_owned(), to.to_owned()), false));
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        if s.names.remove(path).is_none() {
            return Err(not_found(path));
        }
        s.pending.push((Meta::Unlink(path.to_owned()), false));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        if !s.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let one_in = s.faults.fsync_fail_one_in;
        if s.rng.one_in(one_in) {
            return Err(io::Error::other("simulated directory fsync failure"));
        }
        for (op, committed) in &mut s.pending {
            if op.touches(dir) {
                *committed = true;
            }
        }
        Ok(())
    }
}

/// An open file on a [`FaultDisk`].
struct FaultFile {
    disk: FaultDisk,
    ino: u64,
    generation: u64,
}

impl fmt::Debug for FaultFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultFile")
            .field("ino", &self.ino)
            .field("generation", &self.generation)
            .finish()
    }
}

impl FaultFile {
    fn with<R>(&self, f: impl FnOnce(&mut State, u64) -> io::Result<R>) -> io::Result<R> {
        let mut s = self.disk.lock();
        if s.generation != self.generation {
            return Err(io::Error::other(
                "the disk crashed since this file was opened",
            ));
        }
        if !s.inodes.contains_key(&self.ino) {
            return Err(io::Error::other("file no longer exists"));
        }
        f(&mut s, self.ino)
    }
}

impl DiskFile for FaultFile {
    fn append(&self, bytes: &[u8]) -> io::Result<()> {
        self.with(|s, ino| {
            let fits = match s.faults.capacity {
                Some(cap) => {
                    let free = cap.saturating_sub(s.used());
                    usize::try_from(free).unwrap_or(usize::MAX).min(bytes.len())
                }
                None => bytes.len(),
            };
            if let Some(inode) = s.inodes.get_mut(&ino) {
                inode.data.extend_from_slice(&bytes[..fits]);
            }
            if fits < bytes.len() {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "simulated disk full",
                ));
            }
            Ok(())
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.with(|s, ino| {
            let one_in = s.faults.fsync_fail_one_in;
            let fail = s.rng.one_in(one_in);
            let Some(inode) = s.inodes.get_mut(&ino) else {
                return Ok(());
            };
            if fail {
                let from = inode.durable.len().min(inode.data.len());
                inode.holes.push((from, inode.data.len()));
                return Err(io::Error::other("simulated fsync failure"));
            }
            inode.durable = inode.with_holes_zeroed(inode.data.clone());
            inode.holes.clear();
            Ok(())
        })
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.with(|s, ino| {
            if let Some(inode) = s.inodes.get_mut(&ino) {
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                inode.data.truncate(len);
            }
            Ok(())
        })
    }

    fn size(&self) -> io::Result<u64> {
        self.with(|s, ino| Ok(s.inodes.get(&ino).map_or(0, |i| i.data.len() as u64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::write_atomic;

    fn dir() -> &'static Path {
        Path::new("/d")
    }

    #[test]
    fn synced_data_and_names_survive_every_crash() {
        for seed in 0..200 {
            let disk = FaultDisk::new(seed);
            disk.create_dir_all(dir()).unwrap();
            let f = disk.open_append(&dir().join("a")).unwrap();
            f.append(b"0123").unwrap();
            f.sync().unwrap();
            disk.sync_dir(dir()).unwrap();
            f.append(b"4567").unwrap();
            let g = disk.create(&dir().join("b")).unwrap();
            g.append(b"xy").unwrap();
            g.sync().unwrap(); // data synced, name not
            disk.crash();
            let a = disk.read(&dir().join("a")).unwrap();
            assert!(
                a.starts_with(b"0123") && b"01234567".starts_with(&a),
                "{seed}"
            );
            if let Ok(b) = disk.read(&dir().join("b")) {
                assert_eq!(b, b"xy");
            }
            assert!(f.append(b"z").is_err());
        }
    }

    #[test]
    fn crashes_lose_tear_and_reorder() {
        let mut lost_a_kept_b = false;
        let mut torn = false;
        let mut name_lost = false;
        for seed in 0..200 {
            let disk = FaultDisk::new(seed);
            disk.create_dir_all(dir()).unwrap();
            let a = disk.open_append(&dir().join("a")).unwrap();
            let b = disk.open_append(&dir().join("b")).unwrap();
            disk.sync_dir(dir()).unwrap();
            a.append(b"first").unwrap();
            b.append(b"second").unwrap();
            disk.create(&dir().join("c")).unwrap();
            let r = disk.crash();
            let a = disk.read(&dir().join("a")).unwrap();
            let b = disk.read(&dir().join("b")).unwrap();
            lost_a_kept_b |= a.is_empty() && b == b"second";
            torn |= r.files_torn > 0;
            name_lost |= disk.read(&dir().join("c")).is_err();
        }
        assert!(lost_a_kept_b && torn && name_lost);
    }

    #[test]
    fn same_seed_same_disk() {
        let run = |seed| {
            let disk = FaultDisk::new(seed);
            disk.create_dir_all(dir()).unwrap();
            let f = disk.open_append(&dir().join("a")).unwrap();
            f.append(&[7; 1000]).unwrap();
            disk.crash();
            disk.read(&dir().join("a")).map(|d| d.len()).ok()
        };
        for seed in 0..20 {
            assert_eq!(run(seed), run(seed));
        }
    }

    #[test]
    fn atomic_write_is_old_or_new() {
        for seed in 0..200 {
            let disk = FaultDisk::new(seed);
            disk.create_dir_all(dir()).unwrap();
            let p = dir().join("epoch");
            write_atomic(&disk, &p, b"old").unwrap();
            let _ = disk.crash();
            assert_eq!(disk.read(&p).unwrap(), b"old");
            disk.set_faults(Faults {
                fsync_fail_one_in: 3,
                rename_fail_one_in: 3,
                capacity: None,
            });
            let ok = write_atomic(&disk, &p, b"new!").is_ok();
            disk.crash();
            let got = disk.read(&p).unwrap();
            if ok {
                assert_eq!(got, b"new!", "{seed}");
            } else {
                assert!(got == b"old" || got == b"new!", "{seed}: {got:?}");
            }
        }
    }

    #[test]
    fn failed_fsync_loses_data_even_after_a_good_one() {
        let disk = FaultDisk::new(1);
        disk.create_dir_all(dir()).unwrap();
        let f = disk.open_append(&dir().join("a")).unwrap();
        disk.sync_dir(dir()).unwrap();
        disk.set_faults(Faults {
            fsync_fail_one_in: 1,
            ..Faults::default()
        });
        f.append(b"abc").unwrap();
        assert!(f.sync().is_err());
        disk.set_faults(Faults::default());
        f.append(b"def").unwrap();
        f.sync().unwrap();
        assert_eq!(disk.read(&dir().join("a")).unwrap(), b"abcdef");
        disk.crash();
        assert_eq!(disk.read(&dir().join("a")).unwrap(), b"\0\0\0def");
    }

    #[test]
    fn disk_fills_up() {
        let disk = FaultDisk::new(1);
        disk.create_dir_all(dir()).unwrap();
        disk.set_faults(Faults {
            capacity: Some(10),
            ..Faults::default()
        });
        let f = disk.open_append(&dir().join("a")).unwrap();
        f.append(b"12345678").unwrap();
        let e = f.append(b"abcd").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(f.size().unwrap(), 10);
        f.truncate(8).unwrap();
        assert_eq!(disk.used(), 8);
        assert!(disk.open_append(Path::new("/nodir/x")).is_err());
    }
}
