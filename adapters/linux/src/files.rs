//! Opening the files that hold dumps, audit lines and the ring file: the whole path without
//! following a link, every directory checked, only regular files written. Also host names as
//! path components, and file name templates.
//!
//! # The rules
//!
//! [`SafeDir::open`] walks a directory path one component at a time, from `/` (absolute
//! paths) or the working directory (relative ones), each with
//! `openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)`:
//!
//! - a component that is a **symbolic link** is refused (wherever it points, even to a good
//!   directory), as is one that is not a directory;
//! - a missing directory is created with `mkdirat` at [`FilePolicy::dir_mode`] (default
//!   0700, narrowed by the umask), then entered like the others;
//! - every directory entered (the start, `/` or `.`, included) must be **owned by root or by
//!   the process's effective user**, and **writable by nobody else**: not world-writable, and
//!   not group-writable unless its group is root's (gid 0) or listed in
//!   [`FilePolicy::trusted_gids`]. A directory with the sticky bit (`/tmp`) is accepted
//!   although others may write it: they cannot rename or delete our entries there, and what
//!   they create in it is checked when we enter or open it. This is OpenSSH's `StrictModes`
//!   walk plus logrotate's "group other than root" exception and `/tmp`'s sticky bit.
//!
//! The file itself ([`SafeDir::open_append`]) is looked at first with `O_PATH | O_NOFOLLOW`
//! (nothing is opened for writing yet), then opened with `O_WRONLY | O_APPEND | O_CREAT |
//! O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC` at [`FilePolicy::mode`], and `fstat`ed:
//!
//! - anything but a **regular file** (FIFO, socket, device, directory) is refused, and never
//!   waited on (`O_NONBLOCK`; a FIFO or a device is not even opened for writing);
//! - a symbolic link is refused; so is a file with **more than one hard link** (a link made
//!   in a directory we share would point our writes at another file);
//! - the file must be owned by root or by the process's effective user;
//! - an existing file whose mode allows more than [`FilePolicy::mode`] (0644 when 0600 is
//!   configured) is **tightened** to the bits both allow (`fchmod`), or refused when
//!   [`FilePolicy::loose`] says [`LooseMode::Refuse`]. The caller is told
//!   ([`Opened::tightened`]) so it can say so and count it.
//!
//! A refusal is an [`io::Error`] of kind `PermissionDenied` carrying a [`Refused`] (read its
//! cause with [`refusal`]), naming the offending component. Nothing here logs: callers count
//! and report (the service does, once per cause).
//!
//! Writing: [`append_whole`] appends a record (a dump, a batch) whole or cuts the file back
//! to where it was ([`cut_back`], `ftruncate`), so a full disk never leaves a torn record
//! that the next one is glued to.
//!
//! For a new kind of file: [`open_append`] (or [`SafeDir::open`] then
//! [`SafeDir::open_append`] / [`SafeDir::open_read`] / [`SafeDir::open_rw`] /
//! [`SafeDir::create_new`], renames and removals in that directory), with a [`FilePolicy`],
//! then [`append_whole`]. The forwarder's spool opens every file this way.

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

mod names;
mod template;

pub use names::{host_file_name, hostname, safe_component};
pub use template::{civil, Template, TemplateVars};

/// What to do with an existing file whose mode allows more than the configured one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LooseMode {
    /// Remove the extra bits (`fchmod`) and go on.
    #[default]
    Tighten,
    /// Refuse the file ([`Refusal::LooseMode`]).
    Refuse,
}

/// How a file and the directories on its path are created and checked (see the
/// [module docs](self) for the rules).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePolicy {
    /// Mode of a created file; an existing file may not allow more (see `loose`).
    pub mode: u32,
    /// Mode of a created directory.
    pub dir_mode: u32,
    /// What to do with an existing file whose mode is looser than `mode`.
    pub loose: LooseMode,
    /// Groups besides root's (gid 0) that may have write access to a directory on the path
    /// (Ubuntu's `/var/log` is `root:syslog`, mode 0775).
    pub trusted_gids: Vec<u32>,
}

impl Default for FilePolicy {
    fn default() -> Self {
        FilePolicy {
            mode: 0o600,
            dir_mode: 0o700,
            loose: LooseMode::Tighten,
            trusted_gids: Vec::new(),
        }
    }
}

impl FilePolicy {
    /// The default rules with files created at `mode`.
    pub fn with_mode(mode: u32) -> Self {
        FilePolicy {
            mode,
            ..FilePolicy::default()
        }
    }
}

/// Why a file or directory was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// A component of the path (directory or file) is a symbolic link.
    Symlink,
    /// A component that should be a directory is something else.
    NotDirectory,
    /// The file is not a regular file (FIFO, socket, device, directory).
    NotRegular,
    /// A directory others than its owner and root can write (world- or group-writable, no
    /// sticky bit).
    UnsafeDirectory,
    /// A directory or file owned by someone other than root or this process's user.
    ForeignOwner,
    /// The file has more than one hard link.
    HardLinked,
    /// The file's mode is looser than configured and the policy says refuse.
    LooseMode,
}

impl Refusal {
    /// Every cause, in a fixed order (for counters).
    pub const ALL: [Refusal; 7] = [
        Refusal::Symlink,
        Refusal::NotDirectory,
        Refusal::NotRegular,
        Refusal::UnsafeDirectory,
        Refusal::ForeignOwner,
        Refusal::HardLinked,
        Refusal::LooseMode,
    ];

    /// Position in [`ALL`](Self::ALL).
    pub fn index(self) -> usize {
        self as usize
    }

    fn says(self) -> &'static str {
        match self {
            Refusal::Symlink => "is a symbolic link",
            Refusal::NotDirectory => "is not a directory",
            Refusal::NotRegular => "is not a regular file",
            Refusal::UnsafeDirectory => "is writable by others than its owner and root",
            Refusal::ForeignOwner => "is owned by another user",
            Refusal::HardLinked => "has more than one hard link",
            Refusal::LooseMode => "has a mode looser than configured",
        }
    }
}

/// The error inside a refusal's [`io::Error`]: what was refused, where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The cause.
    pub cause: Refusal,
    /// The component refused (the path up to it).
    pub path: PathBuf,
    /// Details (modes, owners, file type).
    pub detail: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: refused ({})",
            self.path.display(),
            self.cause.says(),
            self.detail
        )
    }
}

impl std::error::Error for Refused {}

fn refused(cause: Refusal, path: &Path, detail: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        Refused {
            cause,
            path: path.to_owned(),
            detail: detail.into(),
        },
    )
}

/// The cause of `e` if it is a refusal made here.
pub fn refusal(e: &io::Error) -> Option<Refusal> {
    e.get_ref()?.downcast_ref::<Refused>().map(|r| r.cause)
}

/// An I/O error naming `path`.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a file name holds a NUL byte"))
}

/// Retries a libc call returning -1/errno on `EINTR`.
fn retry(mut call: impl FnMut() -> libc::c_int) -> io::Result<libc::c_int> {
    loop {
        let r = call();
        if r >= 0 {
            return Ok(r);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn open_at(dir: RawFd, name: &CString, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a NUL-terminated string; `dir` is an open descriptor (or AT_FDCWD).
    let fd = retry(|| unsafe { libc::openat(dir, name.as_ptr(), flags, mode as libc::c_uint) })?;
    // SAFETY: `fd` was just returned by openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value (plain integers), filled by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer for the duration of the call.
    retry(|| unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

/// `fstatat` without following a link; `None` if there is nothing at `name`.
fn stat_at(dir: RawFd, name: &CString) -> io::Result<Option<libc::stat>> {
    // SAFETY: as in `fstat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated, `st` a valid out-pointer.
    match retry(|| unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })
    {
        Ok(_) => Ok(Some(st)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn file_type(mode: u32) -> u32 {
    mode & libc::S_IFMT
}

fn type_name(mode: u32) -> &'static str {
    match file_type(mode) {
        libc::S_IFREG => "regular file",
        libc::S_IFDIR => "directory",
        libc::S_IFLNK => "symbolic link",
        libc::S_IFIFO => "FIFO",
        libc::S_IFSOCK => "socket",
        libc::S_IFCHR => "character device",
        libc::S_IFBLK => "block device",
        _ => "unknown file type",
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Owned by root or by us.
fn check_owner(st: &libc::stat, path: &Path) -> io::Result<()> {
    let me = euid();
    if st.st_uid == 0 || st.st_uid == me {
        return Ok(());
    }
    Err(refused(
        Refusal::ForeignOwner,
        path,
        format!("owner uid {}, not root or uid {me}", st.st_uid),
    ))
}

/// The directory rule of the module docs.
fn check_dir(st: &libc::stat, path: &Path, policy: &FilePolicy) -> io::Result<()> {
    if file_type(st.st_mode) != libc::S_IFDIR {
        return Err(refused(Refusal::NotDirectory, path, type_name(st.st_mode)));
    }
    check_owner(st, path)?;
    let mode = st.st_mode & 0o7777;
    if mode & libc::S_ISVTX != 0 {
        return Ok(());
    }
    if mode & 0o002 != 0 {
        return Err(refused(
            Refusal::UnsafeDirectory,
            path,
            format!("world-writable, mode 0{mode:o}, no sticky bit"),
        ));
    }
    if mode & 0o020 != 0 && st.st_gid != 0 && !policy.trusted_gids.contains(&st.st_gid) {
        return Err(refused(
            Refusal::UnsafeDirectory,
            path,
            format!(
                "group-writable, mode 0{mode:o}, group gid {} is not root's nor trusted",
                st.st_gid
            ),
        ));
    }
    Ok(())
}

/// An open directory reached by [`SafeDir::open`]'s checked walk: files are opened, renamed
/// and removed relative to it, so nothing done through it follows a link or is redirected
/// by a directory renamed afterwards.
#[derive(Debug)]
pub struct SafeDir {
    fd: OwnedFd,
    path: PathBuf,
    /// Directories on the path in which [`open`](Self::open) created the next one: their
    /// entries are made durable by [`sync_created`](Self::sync_created).
    made_in: Vec<OwnedFd>,
}

/// A file opened by [`SafeDir::open_append`], [`SafeDir::open_read`] or [`SafeDir::open_rw`].
#[derive(Debug)]
pub struct Opened {
    /// The file, open for appending.
    pub file: File,
    /// The file did not exist and was created by this open: its directory entry is made
    /// durable by [`SafeDir::sync_created`].
    pub created: bool,
    /// `Some((old, new))` when an existing file's mode was looser than configured and was
    /// tightened.
    pub tightened: Option<(u32, u32)>,
}

impl SafeDir {
    /// Opens directory `path` by the rules of the [module docs](self), creating missing
    /// directories at `policy.dir_mode`.
    pub fn open(path: &Path, policy: &FilePolicy) -> io::Result<SafeDir> {
        let start = if path.is_absolute() { "/" } else { "." };
        let mut walked = PathBuf::from(start);
        let mut fd = open_at(
            libc::AT_FDCWD,
            &c_name(OsStr::new(start))?,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
        )
        .map_err(|e| at(&walked, e))?;
        check_dir(
            &fstat(fd.as_raw_fd()).map_err(|e| at(&walked, e))?,
            &walked,
            policy,
        )?;
        let mut made_in = Vec::new();
        for part in path.components() {
            let name = match part {
                Component::Normal(n) => n,
                Component::ParentDir => OsStr::new(".."),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
            };
            walked.push(name);
            let (next, made) = enter(&fd, name, &walked, policy)?;
            if made {
                made_in.push(fd);
            }
            fd = next;
        }
        Ok(SafeDir {
            fd,
            path: walked,
            made_in,
        })
    }

    /// Makes durable (`fsync`) the directory entries this directory's [`open`](Self::open)
    /// created on the way and, if `file_created`, the one of a file created in it: after a
    /// power cut, a file whose data was `fsync`ed is then found under its name.
    pub fn sync_created(&self, file_created: bool) -> io::Result<()> {
        let this = file_created.then_some(&self.fd);
        for dir in self.made_in.iter().chain(this) {
            sync_dir(dir).map_err(|e| at(&self.path, e))?;
        }
        Ok(())
    }

    /// The path this directory was opened by (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens (creating if missing) the file `name` in this directory for appending, by the
    /// rules of the [module docs](self). Never blocks: a FIFO, socket or device is refused.
    pub fn open_append(&self, name: &OsStr, policy: &FilePolicy) -> io::Result<Opened> {
        self.open_checked(
            name,
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT,
            policy,
        )
    }

    /// As [`open_append`](Self::open_append), and readable too (a file the writer reads
    /// back when it starts: an audit log's seal sidecar).
    pub fn open_read_append(&self, name: &OsStr, policy: &FilePolicy) -> io::Result<Opened> {
        self.open_checked(name, libc::O_RDWR | libc::O_APPEND | libc::O_CREAT, policy)
    }

    /// Opens the existing file `name` in this directory for reading, by the rules of the
    /// [module docs](self) (no link, only a regular file, never blocking; the mode is
    /// tightened to `policy`'s).
    pub fn open_read(&self, name: &OsStr, policy: &FilePolicy) -> io::Result<Opened> {
        self.open_checked(name, libc::O_RDONLY, policy)
    }

    /// Opens the file `name` in this directory for reading and writing (in place, not
    /// appending), creating it if `create`, by the rules of the [module docs](self).
    pub fn open_rw(&self, name: &OsStr, policy: &FilePolicy, create: bool) -> io::Result<Opened> {
        let create = if create { libc::O_CREAT } else { 0 };
        self.open_checked(name, libc::O_RDWR | create, policy)
    }

    /// Looks at `name` first (a FIFO or a device is never opened), opens it with `access`
    /// and the safe flags, checks and tightens it.
    fn open_checked(
        &self,
        name: &OsStr,
        access: libc::c_int,
        policy: &FilePolicy,
    ) -> io::Result<Opened> {
        let path = self.path.join(name);
        let c = self.leaf(name)?;
        let existed = stat_at(self.fd.as_raw_fd(), &c).map_err(|e| at(&path, e))?;
        if let Some(st) = &existed {
            check_kind(st, &path)?;
        }
        let fd = open_at(
            self.fd.as_raw_fd(),
            &c,
            access | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
            policy.mode & 0o777,
        )
        .map_err(|e| self.classify(&c, &path, e))?;
        let st = fstat(fd.as_raw_fd()).map_err(|e| at(&path, e))?;
        check_file(&st, &path)?;
        let tightened = tighten(&fd, &st, &path, policy)?;
        Ok(Opened {
            file: File::from(fd),
            created: existed.is_none() && access & libc::O_CREAT != 0,
            tightened,
        })
    }

    /// Creates the file `name`, which must not exist (`O_EXCL`), for reading and writing.
    pub fn create_new(&self, name: &OsStr, policy: &FilePolicy) -> io::Result<File> {
        let path = self.path.join(name);
        let c = self.leaf(name)?;
        let fd = open_at(
            self.fd.as_raw_fd(),
            &c,
            libc::O_RDWR
                | libc::O_CREAT
                | libc::O_EXCL
                | libc::O_NOFOLLOW
                | libc::O_NONBLOCK
                | libc::O_NOCTTY
                | libc::O_CLOEXEC,
            policy.mode & 0o777,
        )
        .map_err(|e| self.classify(&c, &path, e))?;
        let st = fstat(fd.as_raw_fd()).map_err(|e| at(&path, e))?;
        check_file(&st, &path)?;
        Ok(File::from(fd))
    }

    /// What is at `name` (not following a link): `None` if nothing, otherwise whether it is
    /// a regular file and its last modification time.
    pub fn entry(&self, name: &OsStr) -> io::Result<Option<Entry>> {
        let c = self.leaf(name)?;
        let st = stat_at(self.fd.as_raw_fd(), &c).map_err(|e| at(&self.path.join(name), e))?;
        Ok(st.map(|st| Entry {
            regular: file_type(st.st_mode) == libc::S_IFREG,
            modified: SystemTime::UNIX_EPOCH
                + Duration::new(
                    u64::try_from(st.st_mtime).unwrap_or(0),
                    u32::try_from(st.st_mtime_nsec).unwrap_or(0),
                ),
        }))
    }

    /// Refuses what is at `name` unless it is a regular file (or nothing).
    pub fn check_regular(&self, name: &OsStr) -> io::Result<()> {
        let path = self.path.join(name);
        let c = self.leaf(name)?;
        match stat_at(self.fd.as_raw_fd(), &c).map_err(|e| at(&path, e))? {
            Some(st) => check_kind(&st, &path),
            None => Ok(()),
        }
    }

    /// Renames `from` to `to`, both in this directory (`renameat`; links are renamed, not
    /// followed).
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        let (f, t) = (self.leaf(from)?, self.leaf(to)?);
        let dir = self.fd.as_raw_fd();
        // SAFETY: both names are NUL-terminated, `dir` is open.
        retry(|| unsafe { libc::renameat(dir, f.as_ptr(), dir, t.as_ptr()) })
            .map(drop)
            .map_err(|e| at(&self.path.join(from), e))
    }

    /// Removes the file `name` from this directory (`unlinkat`).
    pub fn remove(&self, name: &OsStr) -> io::Result<()> {
        let c = self.leaf(name)?;
        // SAFETY: `c` is NUL-terminated, the descriptor is open.
        retry(|| unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) })
            .map(drop)
            .map_err(|e| at(&self.path.join(name), e))
    }

    /// The names in this directory (read through `/proc/self/fd`, i.e. the directory this
    /// value holds, wherever its path now leads).
    pub fn names(&self) -> io::Result<Vec<OsString>> {
        let proc = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        std::fs::read_dir(proc)
            .map_err(|e| at(&self.path, e))?
            .map(|e| e.map(|e| e.file_name()).map_err(|e| at(&self.path, e)))
            .collect()
    }

    /// `name` as one path component: not empty, no `/`, not `.` or `..`.
    fn leaf(&self, name: &OsStr) -> io::Result<CString> {
        let b = name.as_bytes();
        if b.is_empty() || b.contains(&b'/') || b == b"." || b == b".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: {:?} is not a file name", self.path.display(), name),
            ));
        }
        c_name(name)
    }

    /// An `openat` error on `name`: a refusal when a link or a special file is in the way.
    fn classify(&self, name: &CString, path: &Path, e: io::Error) -> io::Error {
        match e.raw_os_error() {
            Some(libc::ELOOP | libc::ENXIO | libc::EEXIST | libc::ENODEV | libc::EWOULDBLOCK) => {
                match stat_at(self.fd.as_raw_fd(), name) {
                    Ok(Some(st)) => check_kind(&st, path).err().unwrap_or_else(|| at(path, e)),
                    _ => at(path, e),
                }
            }
            _ => at(path, e),
        }
    }
}

/// What [`SafeDir::entry`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// A regular file (not a link, directory or special file).
    pub regular: bool,
    /// Last modification.
    pub modified: SystemTime,
}

/// Enters directory `name` of `parent`, creating it if missing, and checks it.
/// Opens the directory `name` in `parent`, creating it if missing; whether it was created
/// here.
fn enter(
    parent: &OwnedFd,
    name: &OsStr,
    walked: &Path,
    policy: &FilePolicy,
) -> io::Result<(OwnedFd, bool)> {
    let c = c_name(name)?;
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let mut made = false;
    let fd = match open_at(parent.as_raw_fd(), &c, flags, 0) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            let mode = policy.dir_mode & 0o777;
            // SAFETY: `c` is NUL-terminated, `parent` is open.
            match retry(|| unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), mode) }) {
                Ok(_) => made = true,
                // Made by someone else meanwhile: checked like any other below.
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(at(walked, e)),
            }
            open_at(parent.as_raw_fd(), &c, flags, 0)
                .map_err(|e| not_a_dir(parent, &c, walked, e))?
        }
        Err(e) => return Err(not_a_dir(parent, &c, walked, e)),
    };
    let st = fstat(fd.as_raw_fd()).map_err(|e| at(walked, e))?;
    check_dir(&st, walked, policy)?;
    Ok((fd, made))
}

/// `fsync` of a directory held by an `O_PATH` descriptor (which cannot be synced itself):
/// through a read-only descriptor of the same directory.
fn sync_dir(dir: &OwnedFd) -> io::Result<()> {
    let dot = c_name(OsStr::new("."))?;
    let fd = open_at(
        dir.as_raw_fd(),
        &dot,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )?;
    File::from(fd).sync_all()
}

/// An error entering a directory: a refusal if a link or a non-directory is in the way.
fn not_a_dir(parent: &OwnedFd, name: &CString, walked: &Path, e: io::Error) -> io::Error {
    if !matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) {
        return at(walked, e);
    }
    match stat_at(parent.as_raw_fd(), name) {
        Ok(Some(st)) if file_type(st.st_mode) == libc::S_IFLNK => {
            refused(Refusal::Symlink, walked, "a directory on the path")
        }
        Ok(Some(st)) => refused(Refusal::NotDirectory, walked, type_name(st.st_mode)),
        _ => at(walked, e),
    }
}

/// A link or a special file is refused.
fn check_kind(st: &libc::stat, path: &Path) -> io::Result<()> {
    match file_type(st.st_mode) {
        libc::S_IFREG => Ok(()),
        libc::S_IFLNK => Err(refused(Refusal::Symlink, path, "the file itself")),
        _ => Err(refused(Refusal::NotRegular, path, type_name(st.st_mode))),
    }
}

/// The file rules of the module docs, but the mode.
fn check_file(st: &libc::stat, path: &Path) -> io::Result<()> {
    check_kind(st, path)?;
    check_owner(st, path)?;
    if st.st_nlink > 1 {
        return Err(refused(
            Refusal::HardLinked,
            path,
            format!("{} links", st.st_nlink),
        ));
    }
    Ok(())
}

/// Removes the bits of an existing file's mode that the policy does not allow, or refuses.
fn tighten(
    fd: &OwnedFd,
    st: &libc::stat,
    path: &Path,
    policy: &FilePolicy,
) -> io::Result<Option<(u32, u32)>> {
    let mode = st.st_mode & 0o7777;
    let allowed = policy.mode & 0o777;
    if mode & !allowed == 0 {
        return Ok(None);
    }
    if policy.loose == LooseMode::Refuse {
        return Err(refused(
            Refusal::LooseMode,
            path,
            format!("mode 0{mode:o}, configured 0{allowed:o}"),
        ));
    }
    let new = mode & allowed;
    // SAFETY: `fd` is an open descriptor of the file.
    retry(|| unsafe { libc::fchmod(fd.as_raw_fd(), new) }).map_err(|e| at(path, e))?;
    Ok(Some((mode, new)))
}

/// Opens `path` for appending by the rules of the [module docs](self): its directory with
/// [`SafeDir::open`], the file with [`SafeDir::open_append`].
pub fn open_append(path: &Path, policy: &FilePolicy) -> io::Result<Opened> {
    let (dir, name) = split(path)?;
    SafeDir::open(dir, policy)?.open_append(name, policy)
}

/// A file path's directory (`.` if none) and name.
pub fn split(path: &Path) -> io::Result<(&Path, &OsStr)> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((dir, name))
}

/// Cuts `file` back to `len` bytes: after a failed append, what was written of the failed
/// part goes (`ftruncate`), so the file ends with a whole line or dump.
pub fn cut_back(file: &File, len: u64) -> io::Result<()> {
    file.set_len(len)
}

/// A failed [`append_whole`].
#[derive(Debug)]
pub struct AppendFailed {
    /// What failed (the write's error; if the cut failed too, both).
    pub error: io::Error,
    /// The cut failed too: the file ends with a fragment of what was being appended.
    pub fragment_left: bool,
}

/// Appends what `write` writes to `file` (through a buffer) whole, or not at all: on an error
/// of `write` or of the file, nothing still buffered is written and the file is cut back to
/// its length before ([`cut_back`]). The file must be opened for appending and written by
/// nobody else meanwhile. Returns the bytes appended. For records that must never be torn:
/// a dump, a batch of spooled records.
pub fn append_whole(
    file: &File,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<u64, AppendFailed> {
    let start = file.metadata().map_err(|error| AppendFailed {
        error,
        fragment_left: false,
    })?;
    let start = start.len();
    let mut out = io::BufWriter::with_capacity(64 * 1024, file);
    let result = write(&mut out).and_then(|()| out.flush());
    let Err(error) = result else {
        return Ok(file.metadata().map_or(0, |m| m.len().saturating_sub(start)));
    };
    // Drop what is still buffered rather than let `BufWriter`'s drop write it.
    let _ = out.into_parts();
    match cut_back(file, start) {
        Ok(()) => Err(AppendFailed {
            error,
            fragment_left: false,
        }),
        Err(cut) => Err(AppendFailed {
            error: io::Error::new(
                error.kind(),
                format!("{error}; cutting the partial write back out failed too: {cut}"),
            ),
            fragment_left: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn files_and_directories_made_are_said_and_synced() {
        let dir = tempfile::tempdir().unwrap();
        let policy = FilePolicy::default();
        let made = SafeDir::open(&dir.path().join("a/b"), &policy).unwrap();
        assert_eq!(made.made_in.len(), 2);
        let first = made.open_append(OsStr::new("d.flr"), &policy).unwrap();
        assert!(first.created);
        made.sync_created(first.created).unwrap();
        let again = SafeDir::open(&dir.path().join("a/b"), &policy).unwrap();
        assert!(again.made_in.is_empty());
        let second = again.open_append(OsStr::new("d.flr"), &policy).unwrap();
        assert!(!second.created);
        assert!(
            !again
                .open_read(OsStr::new("d.flr"), &policy)
                .unwrap()
                .created
        );
        again.sync_created(second.created).unwrap();
    }

    #[test]
    fn secure_open() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/dir/f.log");
        let policy = FilePolicy::default();
        let f = open_append(&p, &policy).unwrap().file;
        assert_eq!(f.metadata().unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(dir.path().join("sub")).unwrap().mode() & 0o777,
            0o700
        );
        // A symlink is refused, and its target is untouched.
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("link.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open_append(&link, &policy).unwrap_err();
        assert_eq!(refusal(&e), Some(Refusal::Symlink), "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        // A world-writable directory is refused.
        let ww = dir.path().join("ww");
        std::fs::create_dir(&ww).unwrap();
        std::fs::set_permissions(&ww, PermissionsExt::from_mode(0o777)).unwrap();
        let e = open_append(&ww.join("f"), &policy).unwrap_err();
        assert_eq!(refusal(&e), Some(Refusal::UnsafeDirectory), "{e}");
        assert!(e.to_string().contains("world-writable"), "{e}");
        // A directory or device is not a regular file.
        let e = open_append(Path::new("/dev/null"), &policy).unwrap_err();
        assert_eq!(refusal(&e), Some(Refusal::NotRegular), "{e}");
    }

    #[test]
    fn append_whole_cuts_a_failed_append_back_and_writes_nothing_after() {
        let dir = tempfile::tempdir().unwrap();
        let opened = open_append(&dir.path().join("f"), &FilePolicy::default()).unwrap();
        let f = &opened.file;
        assert_eq!(append_whole(f, |out| out.write_all(b"first\n")).unwrap(), 6);
        let mut calls = 0;
        let failed = append_whole(f, |out| {
            // More than the buffer: part of it reaches the file before the error.
            out.write_all(&[b'x'; 100_000])?;
            calls += 1;
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        })
        .unwrap_err();
        assert_eq!(failed.error.kind(), io::ErrorKind::StorageFull);
        assert!(!failed.fragment_left);
        assert_eq!(calls, 1);
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"first\n");
    }
}
