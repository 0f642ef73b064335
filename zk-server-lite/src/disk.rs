//! The few filesystem operations durable storage needs, behind a trait, so the same storage
//! code runs on the real disk ([`RealDisk`]) and on a simulated one that loses, tears and
//! reorders unsynced writes at a simulated crash ([`FaultDisk`](crate::fault_disk::FaultDisk)).
//!
//! The contract is POSIX's, as careful storage code must assume it:
//!
//! * bytes written with [`DiskFile::append`] are readable at once but durable only after
//!   [`DiskFile::sync`] on that file returns `Ok`;
//! * a new name (from [`Disk::create`], [`Disk::open_append`] on a missing file,
//!   [`Disk::rename`] or [`Disk::remove`]) is durable only after [`Disk::sync_dir`] of its
//!   directory returns `Ok` — a file fsync does not make its name durable;
//! * an `Err` from `sync` means the bytes written since the last good sync may be lost
//!   even if a later `sync` succeeds: treat it as fatal for that file.
//!
//! Writing a small file durably (a snapshot, an epoch file) is therefore: [`Disk::create`] a
//! temporary name, append, `sync`, [`Disk::rename`] to the real name, `sync_dir`; the helper
//! [`write_atomic`] does exactly that.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

/// A filesystem as durable storage sees it. Implementations are cheap to share
/// (`Arc<dyn Disk>`).
pub trait Disk: Send + Sync + fmt::Debug {
    /// Creates `dir` and its parents (idempotent).
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names of the files in `dir` (not sorted). `NotFound` if `dir` does not exist.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// The whole content of a file as a reader sees it now (synced or not).
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Opens a file for appending, creating it empty if missing.
    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn DiskFile>>;
    /// Creates a new empty file at `path`, replacing any file of that name.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn DiskFile>>;
    /// Renames a file, replacing `to` if it exists (atomic, durable after `sync_dir`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the names in `dir` durable (creations, renames, removals).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// An open file: append-only writes, fsync, truncation. Shared between threads (one may
/// append while another fsyncs).
pub trait DiskFile: Send + Sync + fmt::Debug {
    /// Appends `bytes`. On `Err` a prefix of them may have been written (the disk filled up).
    fn append(&self, bytes: &[u8]) -> io::Result<()>;
    /// Makes everything appended so far durable (fsync).
    fn sync(&self) -> io::Result<()>;
    /// Cuts the file to `len` bytes (durable after `sync`).
    fn truncate(&self, len: u64) -> io::Result<()>;
    /// The current length in bytes.
    fn size(&self) -> io::Result<u64>;
}

/// Writes `bytes` durably under `path`: a temporary file beside it, fsync, rename, directory
/// fsync. A crash leaves either the old file or the new one, never a mix.
pub fn write_atomic(disk: &dyn Disk, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let file = disk.create(&tmp)?;
    file.append(bytes)?;
    file.sync()?;
    drop(file);
    disk.rename(&tmp, path)?;
    disk.sync_dir(dir)
}

/// The operating system's filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealDisk;

impl RealDisk {
    /// The real disk, shared.
    pub fn shared() -> Arc<dyn Disk> {
        Arc::new(RealDisk)
    }
}

#[derive(Debug)]
struct RealFile(File);

impl DiskFile for RealFile {
    fn append(&self, bytes: &[u8]) -> io::Result<()> {
        (&self.0).write_all(bytes)
    }

    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

impl Disk for RealDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                out.push(name.to_owned());
            }
        }
        Ok(out)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn DiskFile>> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Arc::new(RealFile(file)))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn DiskFile>> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        Ok(Arc::new(RealFile(file)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        // Directories can be opened and fsynced on Unix; elsewhere this is best effort.
        match File::open(dir) {
            Ok(d) => d
                .sync_all()
                .or_else(|e| if cfg!(unix) { Err(e) } else { Ok(()) }),
            Err(e) if cfg!(unix) => Err(e),
            Err(_) => Ok(()),
        }
    }
}
