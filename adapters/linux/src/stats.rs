//! What became of the audit lines and dumps the writer was given: written, lost, refused.
//!
//! The writer task and the panic hook count here as things happen; a failure is also said
//! once per cause (on stderr, and as an ERROR record in the ring), so a disk that stays full
//! does not flood either. [`crate::Service::flush`] makes the counts current and reports
//! what was lost since the previous flush.

use std::fmt;
use std::io::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::files::{refusal, Refusal};

/// Refusals (see [`crate::files`]), by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refusals {
    /// A symbolic link on the path (directory or file).
    pub symlink: u64,
    /// A path component that should be a directory is not one.
    pub not_directory: u64,
    /// A FIFO, socket, device or directory where a file should be.
    pub not_regular: u64,
    /// A directory writable by others than its owner and root.
    pub unsafe_directory: u64,
    /// A file or directory owned by another user.
    pub foreign_owner: u64,
    /// A file with more than one hard link.
    pub hard_linked: u64,
    /// A file whose mode is looser than configured (with `loose_mode = "refuse"`).
    pub loose_mode: u64,
}

impl Refusals {
    /// The count of one cause.
    pub fn get(&self, cause: Refusal) -> u64 {
        match cause {
            Refusal::Symlink => self.symlink,
            Refusal::NotDirectory => self.not_directory,
            Refusal::NotRegular => self.not_regular,
            Refusal::UnsafeDirectory => self.unsafe_directory,
            Refusal::ForeignOwner => self.foreign_owner,
            Refusal::HardLinked => self.hard_linked,
            Refusal::LooseMode => self.loose_mode,
        }
    }

    /// All causes together.
    pub fn total(&self) -> u64 {
        Refusal::ALL.iter().map(|c| self.get(*c)).sum()
    }

    fn set(&mut self, cause: Refusal, n: u64) {
        let slot = match cause {
            Refusal::Symlink => &mut self.symlink,
            Refusal::NotDirectory => &mut self.not_directory,
            Refusal::NotRegular => &mut self.not_regular,
            Refusal::UnsafeDirectory => &mut self.unsafe_directory,
            Refusal::ForeignOwner => &mut self.foreign_owner,
            Refusal::HardLinked => &mut self.hard_linked,
            Refusal::LooseMode => &mut self.loose_mode,
        };
        *slot = n;
    }
}

/// The writer's counters ([`crate::Service::stats`]). Every audit line the service was given
/// ends up in `audit_lines_written` or `audit_lines_lost`, every dump ordered in
/// `dumps_written` or `dumps_lost`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Audit lines whole in their file.
    pub audit_lines_written: u64,
    /// Audit lines not in their file: a refused file, a write error (a line cut by a full
    /// disk is cut back out of the file and counted here), an event that did not render, or
    /// the writer's queue full (also in [`crate::Stats::audit_dropped`]).
    pub audit_lines_lost: u64,
    /// Dumps whole in their file.
    pub dumps_written: u64,
    /// Dumps not written: a refused file, a write error (what was written of it is cut back
    /// out), or the writer's queue full (also in [`crate::Stats::dumps_dropped`]).
    pub dumps_lost: u64,
    /// Files refused, by cause (each refused open counts once).
    pub refusals: Refusals,
    /// Existing files whose loose mode was tightened.
    pub modes_tightened: u64,
    /// I/O errors other than refusals: failed writes, opens, rotations, and cuts that could
    /// not be made (then the next write starts with a marker).
    pub errors: u64,
}

impl ServiceStats {
    /// Lines and dumps lost.
    pub fn lost(&self) -> u64 {
        self.audit_lines_lost + self.dumps_lost
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &ServiceStats) -> ServiceStats {
        let mut refusals = Refusals::default();
        for c in Refusal::ALL {
            refusals.set(
                c,
                self.refusals.get(c).saturating_sub(earlier.refusals.get(c)),
            );
        }
        ServiceStats {
            audit_lines_written: self
                .audit_lines_written
                .saturating_sub(earlier.audit_lines_written),
            audit_lines_lost: self
                .audit_lines_lost
                .saturating_sub(earlier.audit_lines_lost),
            dumps_written: self.dumps_written.saturating_sub(earlier.dumps_written),
            dumps_lost: self.dumps_lost.saturating_sub(earlier.dumps_lost),
            refusals,
            modes_tightened: self.modes_tightened.saturating_sub(earlier.modes_tightened),
            errors: self.errors.saturating_sub(earlier.errors),
        }
    }
}

impl fmt::Display for ServiceStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "audit lines: {} written, {} lost; dumps: {} written, {} lost; {} refused",
            self.audit_lines_written,
            self.audit_lines_lost,
            self.dumps_written,
            self.dumps_lost,
            self.refusals.total()
        )?;
        let causes: Vec<String> = Refusal::ALL
            .iter()
            .filter(|c| self.refusals.get(**c) > 0)
            .map(|c| format!("{c:?}: {}", self.refusals.get(*c)))
            .collect();
        if !causes.is_empty() {
            write!(f, " ({})", causes.join(", "))?;
        }
        write!(
            f,
            "; {} I/O errors; {} modes tightened",
            self.errors, self.modes_tightened
        )
    }
}

/// The error of [`crate::Service::flush`]: something was lost since the previous flush.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lost {
    /// What happened since the previous flush.
    pub since_last: ServiceStats,
    /// The totals.
    pub total: ServiceStats,
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} audit lines and {} dumps lost since the last flush ({})",
            self.since_last.audit_lines_lost, self.since_last.dumps_lost, self.since_last
        )
    }
}

impl std::error::Error for Lost {}

/// Whose file it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Audit,
    Dump,
}

/// Causes said once: a refusal's cause, or the class of an I/O error.
const IO_CLASSES: usize = 5;
fn cause_bit(source: Source, e: &io::Error) -> u32 {
    let cause = match refusal(e) {
        Some(r) => r.index(),
        None => {
            Refusal::ALL.len()
                + match e.raw_os_error() {
                    Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => 0,
                    Some(libc::EACCES | libc::EPERM | libc::EROFS) => 1,
                    Some(libc::ENOENT | libc::ENOTDIR) => 2,
                    Some(libc::EIO) => 3,
                    _ => 4,
                }
        }
    };
    let per_source = (Refusal::ALL.len() + IO_CLASSES) as u32;
    let base = match source {
        Source::Audit => 0,
        Source::Dump => per_source,
    };
    base + cause as u32
}

/// The live counters, shared by the writer task, the dump files and the panic hook.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    audit_written: AtomicU64,
    audit_lost: AtomicU64,
    dumps_written: AtomicU64,
    dumps_lost: AtomicU64,
    refusals: [AtomicU64; 7],
    tightened: AtomicU64,
    errors: AtomicU64,
    /// Bit `cause_bit`: that cause was said.
    said: AtomicU64,
    /// What was said, for the writer task to record in the ring.
    notes: Mutex<Vec<(&'static str, String)>>,
}

impl Counters {
    pub(crate) fn written(&self, source: Source, n: u64) {
        match source {
            Source::Audit => &self.audit_written,
            Source::Dump => &self.dumps_written,
        }
        .fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn lost(&self, source: Source, n: u64) {
        match source {
            Source::Audit => &self.audit_lost,
            Source::Dump => &self.dumps_lost,
        }
        .fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `e` (a refusal by its cause, else an I/O error) and says it if its cause was
    /// not said before. `what` says what failed (`"audit write failed"`).
    pub(crate) fn failed(&self, source: Source, what: &'static str, e: &io::Error) {
        match refusal(e) {
            Some(r) => self.refusals.get(r.index()),
            None => Some(&self.errors),
        }
        .map(|c| c.fetch_add(1, Ordering::Relaxed));
        let bit = 1u64 << cause_bit(source, e);
        if self.said.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
            self.say(what, e.to_string());
        }
    }

    /// Counts and says a tightened mode (each is a different event: said every time).
    pub(crate) fn tightened(&self, path: &std::path::Path, (old, new): (u32, u32)) {
        self.tightened.fetch_add(1, Ordering::Relaxed);
        self.say(
            "file mode tightened",
            format!(
                "{}: mode 0{old:o} was looser than configured: now 0{new:o}",
                path.display()
            ),
        );
    }

    /// Stderr (never waiting on the lock a writer may hold: the panic hook calls this), and
    /// the notes the writer task records.
    pub(crate) fn say(&self, what: &'static str, text: String) {
        let _ = writeln!(io::stderr(), "flightrec: {what}: {text}");
        match self.notes.try_lock() {
            Ok(mut n) => n.push((what, text)),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().push((what, text)),
            Err(std::sync::TryLockError::WouldBlock) => {}
        }
    }

    /// The notes said since the last call.
    pub(crate) fn take_notes(&self) -> Vec<(&'static str, String)> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The counts now (without the queue's drops: the service adds them).
    pub(crate) fn snapshot(&self) -> ServiceStats {
        let mut refusals = Refusals::default();
        for c in Refusal::ALL {
            if let Some(n) = self.refusals.get(c.index()) {
                refusals.set(c, n.load(Ordering::Relaxed));
            }
        }
        ServiceStats {
            audit_lines_written: self.audit_written.load(Ordering::Relaxed),
            audit_lines_lost: self.audit_lost.load(Ordering::Relaxed),
            dumps_written: self.dumps_written.load(Ordering::Relaxed),
            dumps_lost: self.dumps_lost.load(Ordering::Relaxed),
            refusals,
            modes_tightened: self.tightened.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}
