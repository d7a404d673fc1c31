//! Audit log files: one per virtual host, lines from `flightrec-audit`'s renderers, rotated
//! by size and count, expired by age, reopened on `SIGHUP`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use flightrec_audit::LineFormat;
use flightrec_core::event::{decode, Decoded};

use crate::files::{open_append, safe_component};
use crate::recorder::AuditItem;

/// Where and how audit lines are written.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditOptions {
    /// File path; `@HOST@` (anywhere) is replaced by the event's virtual host (ejabberd).
    pub path: String,
    /// Line layout.
    pub format: LineFormat,
    /// Mode of created files.
    pub mode: u32,
    /// Rotate when a file would grow past this many bytes (0: never; leave rotation to
    /// logrotate). Open-Xchange's default: 2 MiB.
    pub max_bytes: u64,
    /// Rotated files kept (`file.1` newest .. `file.N`). Open-Xchange's default: 99.
    pub max_files: u32,
    /// Rotated files older than this are deleted (Prosody: 28 days).
    pub max_age: Option<Duration>,
    /// Most distinct hosts given their own file; events of further hosts go to the
    /// fallback host's file (a peer cannot make us open unbounded files).
    pub max_hosts: usize,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            path: "audit-@HOST@.log".into(),
            format: LineFormat::default(),
            mode: 0o600,
            max_bytes: 2 * 1024 * 1024,
            max_files: 99,
            max_age: Some(Duration::from_secs(28 * 86_400)),
            max_hosts: 64,
        }
    }
}

struct AuditFile {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    pending: Vec<u8>,
}

/// The audit log of one daemon: a file per host.
pub struct AuditLog {
    opts: AuditOptions,
    fallback: String,
    files: HashMap<String, AuditFile>,
    errors: u64,
    lines: u64,
    line: String,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.opts.path)
            .field("files", &self.files.len())
            .finish_non_exhaustive()
    }
}

fn event_host<'a>(e: &Decoded<'a>) -> &'a str {
    match e {
        Decoded::AuthFailure(e) => e.host,
        Decoded::AuthSuccess(e) => e.host,
        Decoded::Logout(e) => e.host,
        Decoded::SessionForbidden(e) => e.host,
        _ => "",
    }
}

impl AuditLog {
    /// An audit log; `fallback` names the host of events without one (and the file for
    /// hosts that are not path-safe).
    pub fn new(opts: AuditOptions, fallback: &str) -> Self {
        let fallback = safe_component(fallback).unwrap_or("localhost").to_owned();
        AuditLog {
            opts,
            fallback,
            files: HashMap::new(),
            errors: 0,
            lines: 0,
            line: String::new(),
        }
    }

    /// Lines written.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Write errors (lines lost).
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// The file events of `host` go to.
    pub fn path_for(&self, host: &str) -> PathBuf {
        PathBuf::from(self.opts.path.replace("@HOST@", host))
    }

    /// Renders `item` and queues it for its host's file; [`flush`](Self::flush) writes.
    pub fn add(&mut self, item: &AuditItem) {
        let Ok(event) = decode(item.kind, item.level, &item.payload) else {
            self.errors += 1;
            return;
        };
        self.line.clear();
        let time = i128::from(item.time);
        if self
            .opts
            .format
            .render(time, &self.fallback, &event, &mut self.line)
            .is_err()
        {
            self.errors += 1;
            return;
        }
        self.line.push('\n');
        let host = safe_component(event_host(&event))
            .filter(|h| self.files.contains_key(*h) || self.files.len() < self.opts.max_hosts)
            .unwrap_or(&self.fallback)
            .to_owned();
        let host = if self.opts.path.contains("@HOST@") {
            host
        } else {
            self.fallback.clone()
        };
        let path = self.path_for(&host);
        let entry = self.files.entry(host).or_insert_with(|| AuditFile {
            path,
            file: None,
            size: 0,
            pending: Vec::new(),
        });
        let line = std::mem::take(&mut self.line);
        if let Err(e) = push_line(entry, &self.opts, line.as_bytes()) {
            self.errors += 1;
            let _ = e;
        } else {
            self.lines += 1;
        }
        self.line = line;
    }

    /// Writes every queued line: one `write` per file (whole lines only).
    pub fn flush(&mut self) -> io::Result<()> {
        let mut first_err = None;
        for f in self.files.values_mut() {
            if let Err(e) = write_pending(f, &self.opts) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Closes every file; the next line reopens (or creates) it. For `SIGHUP` after an
    /// external logrotate.
    pub fn reopen(&mut self) -> io::Result<()> {
        let result = self.flush();
        for f in self.files.values_mut() {
            f.file = None;
        }
        result
    }

    /// Deletes rotated files older than the configured age.
    pub fn expire(&mut self) {
        let Some(age) = self.opts.max_age else { return };
        let now = SystemTime::now();
        for f in self.files.values() {
            expire_rotations(&f.path, age, now);
        }
    }
}

fn open(f: &mut AuditFile, opts: &AuditOptions) -> io::Result<()> {
    if f.file.is_none() {
        let file = open_append(&f.path, opts.mode)?;
        f.size = file.metadata()?.len();
        f.file = Some(file);
    }
    Ok(())
}

fn push_line(f: &mut AuditFile, opts: &AuditOptions, line: &[u8]) -> io::Result<()> {
    if opts.max_bytes > 0 {
        open(f, opts)?;
        let after = f.size + f.pending.len() as u64 + line.len() as u64;
        if after > opts.max_bytes && f.size + f.pending.len() as u64 > 0 {
            write_pending(f, opts)?;
            rotate(f, opts)?;
        }
    }
    f.pending.extend_from_slice(line);
    if f.pending.len() >= 64 * 1024 {
        write_pending(f, opts)?;
    }
    Ok(())
}

fn write_pending(f: &mut AuditFile, opts: &AuditOptions) -> io::Result<()> {
    if f.pending.is_empty() {
        return Ok(());
    }
    let result = open(f, opts).and_then(|()| match f.file.as_mut() {
        Some(file) => file.write_all(&f.pending),
        None => Ok(()),
    });
    if result.is_ok() {
        f.size += f.pending.len() as u64;
    } else {
        // The file is closed so the next write reopens it; these lines are lost.
        f.file = None;
    }
    f.pending.clear();
    result
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// `file` → `file.1` → ... → `file.N`; the oldest beyond N is deleted.
fn rotate(f: &mut AuditFile, opts: &AuditOptions) -> io::Result<()> {
    f.file = None;
    if opts.max_files == 0 {
        std::fs::remove_file(&f.path)?;
    } else {
        let _ = std::fs::remove_file(rotated(&f.path, opts.max_files));
        for n in (1..opts.max_files).rev() {
            let from = rotated(&f.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&f.path, n + 1))?;
            }
        }
        std::fs::rename(&f.path, rotated(&f.path, 1))?;
    }
    f.size = 0;
    if let Some(age) = opts.max_age {
        expire_rotations(&f.path, age, SystemTime::now());
    }
    open(f, opts)
}

/// Deletes `path.N` (and logrotate's `path.N.gz`) last modified more than `age` ago.
fn expire_rotations(path: &Path, age: Duration, now: SystemTime) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(name))
            .and_then(|r| r.strip_prefix('.'))
        else {
            continue;
        };
        let digits = rest.strip_suffix(".gz").unwrap_or(rest);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|d| d > age);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightrec_core::event::{AuthFailure, Peer};
    use flightrec_core::{Kind, Level};

    fn item(user: &str, host: &str, secs: u64) -> AuditItem {
        let e = AuthFailure {
            user,
            host,
            peer: Some(Peer::from(
                "10.0.0.9:4000".parse::<std::net::SocketAddr>().unwrap(),
            )),
            mechanism: "PLAIN",
            reason: "bad password",
        };
        AuditItem {
            time: secs * 1_000_000_000,
            kind: Kind::AUTH_FAILURE,
            level: Level::Warn,
            session: None,
            payload: postcard::to_allocvec(&e).unwrap(),
        }
    }

    #[test]
    fn per_host_files_and_escaping() {
        let dir = tempfile::tempdir().unwrap();
        let opts = AuditOptions {
            path: dir.path().join("@HOST@/audit.log").display().to_string(),
            ..AuditOptions::default()
        };
        let mut log = AuditLog::new(opts, "gw");
        log.add(&item("alice", "a.example", 1_270_228_897));
        log.add(&item(
            "bob\nFailed PLAIN authentication for x@y from 1.2.3.4 port 1",
            "b.example",
            1_270_228_898,
        ));
        log.add(&item("eve", "../../etc", 1_270_228_899));
        log.flush().unwrap();
        let a = std::fs::read_to_string(dir.path().join("a.example/audit.log")).unwrap();
        assert_eq!(
            a,
            "2010-04-02 17:21:37 Failed PLAIN authentication for alice@a.example from 10.0.0.9 port 4000: bad\\x20password\n"
        );
        let b = std::fs::read_to_string(dir.path().join("b.example/audit.log")).unwrap();
        assert_eq!(b.lines().count(), 1);
        assert!(!b.contains("1.2.3.4 port 1@"), "{b}");
        // A host that is not path-safe goes to the fallback host's file.
        let gw = std::fs::read_to_string(dir.path().join("gw/audit.log")).unwrap();
        assert!(gw.contains("eve@"), "{gw}");
        use std::os::unix::fs::MetadataExt;
        let mode = std::fs::metadata(dir.path().join("gw/audit.log"))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn rotation_by_size_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let opts = AuditOptions {
            path: path.display().to_string(),
            max_bytes: 300,
            max_files: 3,
            ..AuditOptions::default()
        };
        let mut log = AuditLog::new(opts, "gw");
        for i in 0..40 {
            log.add(&item(&format!("user{i:02}"), "h", 1_000_000_000 + i));
            log.flush().unwrap();
        }
        let mut all = Vec::new();
        for p in [
            rotated(&path, 3),
            rotated(&path, 2),
            rotated(&path, 1),
            path.clone(),
        ] {
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.len() <= 300, "{} is {} bytes", p.display(), text.len());
            all.extend(text.lines().map(str::to_owned));
        }
        assert!(!rotated(&path, 4).exists());
        // The newest lines are kept, in order, none torn.
        let n = all.len();
        assert!(n >= 8);
        for (k, line) in all.iter().enumerate() {
            let want = format!("user{:02}@h ", 40 - n + k);
            assert!(line.contains(&want), "{line} lacks {want}");
        }
    }

    #[test]
    fn expiry_deletes_only_old_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        for n in ["audit.log.1", "audit.log.2.gz", "audit.log.x", "audit.log"] {
            std::fs::write(dir.path().join(n), b"x\n").unwrap();
        }
        let later = SystemTime::now() + Duration::from_secs(30 * 86_400);
        expire_rotations(&path, Duration::from_secs(28 * 86_400), later);
        assert!(!dir.path().join("audit.log.1").exists());
        assert!(!dir.path().join("audit.log.2.gz").exists());
        assert!(dir.path().join("audit.log.x").exists());
        assert!(dir.path().join("audit.log").exists());
    }
}
