//! Audit log files: one per virtual host, lines from `flightrec-audit`'s renderers, rotated
//! by size and count, expired by age, reopened on `SIGHUP`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use flightrec_audit::LineFormat;
use flightrec_core::event::{decode, Decoded};

use crate::auditseal::{sidecar_name, FileSeal};
use crate::files::{cut_back, host_file_name, split, FilePolicy, SafeDir};
use crate::recorder::AuditItem;
use crate::sealkey::KeyFile;
use crate::stats::{Counters, Source};

/// Where and how audit lines are written.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditOptions {
    /// File path; `@HOST@` (anywhere) is replaced by the event's virtual host (ejabberd),
    /// spelt one way ([`host_file_name`]: `EXAMPLE.ORG.` is `example.org`).
    pub path: String,
    /// Line layout.
    pub format: LineFormat,
    /// Mode of created files and the rules of the path (see [`crate::files`]).
    pub file: FilePolicy,
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
    /// The audit stream's sealing key file (`flightrec keygen --audit`): every write is
    /// sealed in a sidecar `<file>.seal` (`core/SEALING.md` section 9). None: not sealed.
    pub seal_key: Option<PathBuf>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            path: "audit-@HOST@.log".into(),
            format: LineFormat::default(),
            file: FilePolicy::default(),
            max_bytes: 2 * 1024 * 1024,
            max_files: 99,
            max_age: Some(Duration::from_secs(28 * 86_400)),
            max_hosts: 64,
            seal_key: None,
        }
    }
}

const CUT_MARKER: &str = AuditLog::CUT_MARKER;

struct AuditFile {
    path: PathBuf,
    dir: Option<SafeDir>,
    file: Option<File>,
    size: u64,
    /// Whole lines waiting for the next write.
    pending: Vec<u8>,
    pending_lines: u64,
    /// The file ends with a fragment of a line (a failed write could not be cut back).
    fragment: bool,
    /// Its seals, when a sealing key is configured.
    seal: Option<FileSeal>,
}

/// The audit log of one daemon: a file per host.
///
/// Lines are written in batches, one `write` per file and flush. A line is either whole in
/// its file or counted as lost: when a write fails part way (a full disk), the file is cut
/// back (`ftruncate`) to the end of the last whole line written, the lines after it are
/// counted as lost, and the error is said once per cause. If the cut fails too, the next
/// write starts with [`CUT_MARKER`](Self::CUT_MARKER), which ends the fragment's line.
pub struct AuditLog {
    opts: AuditOptions,
    fallback: String,
    files: HashMap<String, AuditFile>,
    counters: Arc<Counters>,
    line: String,
    /// The audit stream's sealing key, one for every file.
    key: Option<KeyFile>,
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
    /// Ends a line cut by a failed write that could not be cut back out of the file: the
    /// fragment's line gets this tail (so no filter reads it as a whole line), and the next
    /// line starts on a fresh line.
    pub const CUT_MARKER: &'static str = " <flightrec: line cut by a write error>\n";

    /// An audit log; `fallback` names the host of events without one (and the file for
    /// hosts that are not DNS names, see [`host_file_name`]).
    pub fn new(opts: AuditOptions, fallback: &str) -> Self {
        Self::with_counters(opts, fallback, Arc::default())
    }

    pub(crate) fn with_counters(
        opts: AuditOptions,
        fallback: &str,
        counters: Arc<Counters>,
    ) -> Self {
        let fallback = host_file_name(fallback).unwrap_or_else(|| "localhost".into());
        let key = opts.seal_key.as_deref().and_then(|path| {
            KeyFile::open(path)
                .map_err(|e| {
                    // Lines are still written (unsealed: the verifier says so).
                    counters.failed(Source::Audit, "audit sealing key unusable", &e)
                })
                .ok()
        });
        AuditLog {
            opts,
            fallback,
            files: HashMap::new(),
            counters,
            line: String::new(),
            key,
        }
    }

    /// Lines written (whole in their file).
    pub fn lines(&self) -> u64 {
        self.counters.snapshot().audit_lines_written
    }

    /// Lines lost (refused file, write error, event that did not render).
    pub fn errors(&self) -> u64 {
        let now = self.counters.snapshot();
        now.audit_lines_lost
    }

    /// The file events of `host` go to (if it is not beyond `max_hosts`).
    pub fn path_for(&self, host: &str) -> PathBuf {
        PathBuf::from(self.opts.path.replace("@HOST@", &self.file_key(host, true)))
    }

    /// The host whose file events of `host` go to.
    fn file_key(&self, host: &str, room: bool) -> String {
        if !self.opts.path.contains("@HOST@") {
            return self.fallback.clone();
        }
        host_file_name(host)
            .filter(|h| room || self.files.contains_key(h))
            .unwrap_or_else(|| self.fallback.clone())
    }

    /// Renders `item` and queues it for its host's file; [`flush`](Self::flush) writes.
    pub fn add(&mut self, item: &AuditItem) {
        let Ok(event) = decode(item.kind, item.level, &item.payload) else {
            self.unrendered();
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
            self.unrendered();
            return;
        }
        self.line.push('\n');
        let room = self.files.len() < self.opts.max_hosts;
        let host = self.file_key(event_host(&event), room);
        let path = PathBuf::from(self.opts.path.replace("@HOST@", &host));
        let entry = self.files.entry(host).or_insert_with(|| AuditFile {
            path,
            dir: None,
            file: None,
            size: 0,
            pending: Vec::new(),
            pending_lines: 0,
            fragment: false,
            seal: self.opts.seal_key.is_some().then(FileSeal::default),
        });
        push_line(
            entry,
            &self.opts,
            &self.counters,
            &mut self.key,
            self.line.as_bytes(),
        );
    }

    fn unrendered(&self) {
        self.counters.lost(Source::Audit, 1);
        self.counters.failed(
            Source::Audit,
            "audit line lost",
            &io::Error::new(
                io::ErrorKind::InvalidData,
                "a security event did not decode or render",
            ),
        );
    }

    /// Writes every queued line: one `write` per file (whole lines only). Returns the first
    /// error; every line not written is counted as lost.
    pub fn flush(&mut self) -> io::Result<()> {
        let mut first_err = None;
        for f in self.files.values_mut() {
            if let Err(e) = write_pending(f, &self.opts, &self.counters, &mut self.key) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Closes every file; the next line reopens (or creates) it, walking its path again.
    /// For `SIGHUP` after an external logrotate.
    pub fn reopen(&mut self) -> io::Result<()> {
        let result = self.flush();
        for f in self.files.values_mut() {
            f.file = None;
            f.dir = None;
            if let Some(s) = f.seal.as_mut() {
                s.close();
            }
        }
        result
    }

    /// Deletes rotated files older than the configured age.
    pub fn expire(&mut self) {
        let Some(age) = self.opts.max_age else { return };
        let now = SystemTime::now();
        for f in self.files.values_mut() {
            let result = open_dir(f, &self.opts).map(|(dir, name)| {
                expire_rotations(dir, &name, age, now);
                expire_rotations(dir, &sidecar_name(&name), age, now);
            });
            if let Err(e) = result {
                self.counters
                    .failed(Source::Audit, "audit expiry failed", &e);
            }
        }
    }
}

/// The file's directory (walked by the rules of [`crate::files`]) and name.
fn open_dir<'a>(f: &'a mut AuditFile, opts: &AuditOptions) -> io::Result<(&'a SafeDir, OsString)> {
    let (dir, name) = split(&f.path)?;
    let name = name.to_owned();
    if f.dir.is_none() {
        f.dir = Some(SafeDir::open(dir, &opts.file)?);
    }
    match f.dir.as_ref() {
        Some(d) => Ok((d, name)),
        None => Err(io::Error::other("directory not open")),
    }
}

fn open(f: &mut AuditFile, opts: &AuditOptions, counters: &Counters) -> io::Result<()> {
    if f.file.is_none() {
        let (dir, name) = open_dir(f, opts)?;
        let opened = dir.open_append(&name, &opts.file)?;
        if let Some(t) = opened.tightened {
            counters.tightened(&f.path, t);
        }
        f.size = opened.file.metadata()?.len();
        f.file = Some(opened.file);
        // The sidecar with its log: the chain is read back before anything (a rotation
        // included) moves it.
        if let Some(seal) = f.seal.as_mut() {
            if let Some(dir) = f.dir.as_ref() {
                if let Err(e) = seal.open_sidecar(dir, &name, &opts.file) {
                    counters.failed(Source::Audit, "audit sealing failed", &e);
                }
            }
        }
    }
    Ok(())
}

fn push_line(
    f: &mut AuditFile,
    opts: &AuditOptions,
    counters: &Counters,
    key: &mut Option<KeyFile>,
    line: &[u8],
) {
    // An open that fails here fails again at the write, which counts and says it.
    if opts.max_bytes > 0 && open(f, opts, counters).is_ok() {
        let queued = f.size + f.pending.len() as u64;
        if queued + line.len() as u64 > opts.max_bytes && queued > 0 {
            let _ = write_pending(f, opts, counters, key);
            if let Err(e) = rotate(f, opts) {
                // Lines go on to the current file (past max_bytes) rather than be lost.
                counters.failed(Source::Audit, "audit rotation failed", &e);
            }
        }
    }
    f.pending.extend_from_slice(line);
    f.pending_lines += 1;
    if f.pending.len() >= 64 * 1024 {
        let _ = write_pending(f, opts, counters, key);
    }
}

/// Writes the pending lines, then seals them (when a key is configured); see [`AuditLog`]
/// for what happens when the write fails part way. A seal that fails is counted and said:
/// the lines stay in the file, and the next seal covers them.
fn write_pending(
    f: &mut AuditFile,
    opts: &AuditOptions,
    counters: &Counters,
    key: &mut Option<KeyFile>,
) -> io::Result<()> {
    if f.pending.is_empty() {
        return Ok(());
    }
    let lines = std::mem::take(&mut f.pending_lines);
    let mut pending = std::mem::take(&mut f.pending);
    let mut sealing = Ok(());
    let result = open(f, opts, counters).map_err(|e| (0, e)).and_then(|()| {
        sealing = prepare_seal(f, opts);
        append_lines(f, &mut pending)
    });
    if let Err(e) = sealing.and_then(|()| seal_written(f, &pending, key)) {
        counters.failed(Source::Audit, "audit sealing failed", &e);
    }
    pending.clear();
    f.pending = pending; // keep the buffer's capacity
    let written = match &result {
        Ok(n) => *n,
        Err((n, _)) => *n,
    };
    counters.written(Source::Audit, written);
    counters.lost(Source::Audit, lines.saturating_sub(written));
    result.map(drop).map_err(|(_, e)| {
        // Closed: the next write reopens it, walking the path again.
        f.file = None;
        f.dir = None;
        counters.failed(Source::Audit, "audit write failed", &e);
        e
    })
}

/// Opens the sidecar of the open audit file and starts a segment if needed.
fn prepare_seal(f: &mut AuditFile, opts: &AuditOptions) -> io::Result<()> {
    let (Some(seal), Some(dir), Some(file)) = (f.seal.as_mut(), f.dir.as_ref(), f.file.as_ref())
    else {
        return Ok(());
    };
    let (_, name) = split(&f.path)?;
    seal.prepare(dir, name, &opts.file, file)
}

/// Seals what the last append left in the file: the front of `appended` up to the file's
/// length now.
fn seal_written(f: &mut AuditFile, appended: &[u8], key: &mut Option<KeyFile>) -> io::Result<()> {
    let Some(seal) = f.seal.as_mut() else {
        return Ok(());
    };
    let Some(key) = key.as_mut() else {
        return Err(io::Error::other(
            "no usable sealing key: lines written unsealed",
        ));
    };
    let Some(from) = seal.end() else {
        return Ok(());
    };
    let n = usize::try_from(f.size.saturating_sub(from)).unwrap_or(usize::MAX);
    match appended.get(..n) {
        Some(b) if !b.is_empty() => seal.seal(b, key),
        _ => Ok(()),
    }
}

/// Appends `lines` (whole lines) to the open file, after [`CUT_MARKER`] if the file ends
/// with a fragment. Returns the lines now whole in the file; on an error, also the error,
/// with the file cut back to its last whole line.
fn append_lines(f: &mut AuditFile, lines: &mut Vec<u8>) -> Result<u64, (u64, io::Error)> {
    let Some(file) = f.file.as_ref() else {
        return Err((0, io::Error::other("audit file not open")));
    };
    let start = file.metadata().map_err(|e| (0, e))?.len();
    let marker = if f.fragment { CUT_MARKER.len() } else { 0 };
    if f.fragment {
        lines.splice(0..0, CUT_MARKER.bytes());
    }
    let (done, error) = write_some(file, lines);
    let whole_in = |end: usize| {
        lines
            .get(marker.min(end)..end)
            .map_or(0, |l| l.iter().filter(|b| **b == b'\n').count() as u64)
    };
    let Some(e) = error else {
        f.size = start + done as u64;
        f.fragment = false;
        return Ok(whole_in(done));
    };
    // The end of the last whole line (or of the marker) written.
    let keep = lines
        .get(..done)
        .and_then(|w| w.iter().rposition(|b| *b == b'\n'))
        .map_or(0, |i| i + 1);
    let mut end = keep;
    let mut e = e;
    if done > keep {
        if let Err(cut) = cut_back(file, start + keep as u64) {
            e = io::Error::new(
                e.kind(),
                format!("{e}; cutting the partial line back out failed too: {cut}"),
            );
            end = done;
        }
    }
    f.size = start + end as u64;
    f.fragment = if end > keep {
        true
    } else {
        keep == 0 && f.fragment
    };
    let e = io::Error::new(e.kind(), format!("{}: {e}", f.path.display()));
    Err((whole_in(keep), e))
}

/// Writes as much of `bytes` as goes: the count written, and the error that stopped it.
fn write_some(mut file: &File, bytes: &[u8]) -> (usize, Option<io::Error>) {
    let mut done = 0;
    while let Some(rest) = bytes.get(done..).filter(|r| !r.is_empty()) {
        match file.write(rest) {
            Ok(0) => return (done, Some(io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}

fn rotated(name: &std::ffi::OsStr, n: u32) -> OsString {
    let mut s = name.to_owned();
    s.push(format!(".{n}"));
    s
}

/// `file` → `file.1` → ... → `file.N`; the oldest beyond N is deleted. Renames are made in
/// the file's directory as opened ([`SafeDir`]), never through a link.
fn rotate(f: &mut AuditFile, opts: &AuditOptions) -> io::Result<()> {
    f.file = None;
    let sealed = f.seal.is_some();
    if let Some(s) = f.seal.as_mut() {
        s.close();
    }
    let (dir, name) = open_dir(f, opts)?;
    shift(dir, &name, opts.max_files)?;
    // The sidecar the same way (`file.seal.N` beside `file.N`, as logrotate names them).
    let side = sidecar_name(&name);
    if sealed && dir.entry(&side)?.is_some() {
        shift(dir, &side, opts.max_files)?;
    }
    if let Some(age) = opts.max_age {
        expire_rotations(dir, &name, age, SystemTime::now());
        expire_rotations(dir, &side, age, SystemTime::now());
    }
    f.size = 0;
    f.fragment = false;
    Ok(())
}

/// `name` → `name.1` → ... → `name.N` in `dir`; the oldest beyond N is deleted (with N = 0,
/// `name` itself).
fn shift(dir: &SafeDir, name: &std::ffi::OsStr, max_files: u32) -> io::Result<()> {
    if max_files == 0 {
        return dir.remove(name);
    }
    let _ = dir.remove(&rotated(name, max_files));
    for n in (1..max_files).rev() {
        let from = rotated(name, n);
        if dir.entry(&from)?.is_some() {
            dir.rename(&from, &rotated(name, n + 1))?;
        }
    }
    dir.rename(name, &rotated(name, 1))
}

/// Deletes `name.N` (and logrotate's `name.N.gz`) in `dir`, regular files last modified
/// more than `age` ago.
fn expire_rotations(dir: &SafeDir, name: &std::ffi::OsStr, age: Duration, now: SystemTime) {
    let (Ok(entries), Some(name)) = (dir.names(), name.to_str()) else {
        return;
    };
    for file_name in entries {
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
        let old =
            dir.entry(&file_name).ok().flatten().is_some_and(|e| {
                e.regular && now.duration_since(e.modified).is_ok_and(|d| d > age)
            });
        if old {
            let _ = dir.remove(&file_name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightrec_core::event::{AuthFailure, Peer};
    use flightrec_core::{Kind, Level};
    use std::path::Path;

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
            payload: crate::recorder::encode_vec(&e).unwrap(),
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
    fn host_spellings_share_one_file_and_each_line_keeps_its_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let opts = AuditOptions {
            path: dir.path().join("@HOST@/audit.log").display().to_string(),
            ..AuditOptions::default()
        };
        let mut log = AuditLog::new(opts, "GW.");
        for (i, host) in ["example.org", "EXAMPLE.ORG", "example.org.", "Example.Org"]
            .iter()
            .enumerate()
        {
            log.add(&item(&format!("u{i}"), host, 1_000_000_000));
        }
        log.add(&item("v", "", 1_000_000_000));
        log.add(&item("w", "gw", 1_000_000_000));
        log.flush().unwrap();
        let mut dirs: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        dirs.sort();
        assert_eq!(dirs, ["example.org", "gw"]);
        let text = std::fs::read_to_string(dir.path().join("example.org/audit.log")).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        for (line, want) in lines.iter().zip([
            "u0@example.org ",
            "u1@EXAMPLE.ORG ",
            "u2@example.org. ",
            "u3@Example.Org ",
        ]) {
            assert!(line.contains(want), "{line} lacks {want}");
        }
        let gw = std::fs::read_to_string(dir.path().join("gw/audit.log")).unwrap();
        assert_eq!(gw.lines().count(), 2, "{gw}");
        assert_eq!(log.lines(), 6);
    }

    proptest::proptest! {
        /// Whatever a peer sends as host, its file is `DIR/<one safe component>/audit.log`.
        #[test]
        fn no_host_selects_a_path_outside_the_audit_directory(
            host in proptest::prop_oneof![
                proptest::prelude::any::<String>(),
                "[./a-zA-Z\\x00-\\x1f\\u{80}-\\u{10ffff}]{0,80}",
                proptest::sample::select(vec![
                    "..".to_owned(), "/".to_owned(), String::new(), ".".to_owned(),
                    "../..".to_owned(), "a/../../b".to_owned(), "x".repeat(300),
                    "\u{202e}gro.elpmaxe".to_owned(), "exa\u{0}mple".to_owned(),
                ]),
            ]
        ) {
            let dir = Path::new("/srv/audit");
            let opts = AuditOptions {
                path: "/srv/audit/@HOST@/audit.log".into(),
                ..AuditOptions::default()
            };
            let log = AuditLog::new(opts, "gw");
            let path = log.path_for(&host);
            let rest = path.strip_prefix(dir).unwrap();
            let parts: Vec<_> = rest.components().collect();
            proptest::prop_assert_eq!(parts.len(), 2, "{:?}", path);
            let name = parts[0].as_os_str().to_str().unwrap();
            proptest::prop_assert!(crate::files::safe_component(name).is_some(), "{:?}", path);
            proptest::prop_assert_eq!(parts[1].as_os_str(), "audit.log");
        }
    }

    /// Reads what is in a non-blocking pipe now.
    fn drain(mut r: &File) -> Vec<u8> {
        use std::io::Read;
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    #[test]
    fn a_cut_that_cannot_be_made_is_marked_and_the_next_line_starts_fresh() {
        use std::os::fd::FromRawFd;
        // A non-blocking pipe: a write stops at its capacity, and it cannot be truncated.
        let mut fds = [0; 2];
        assert_eq!(
            unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) },
            0
        );
        let (r, w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        let mut f = AuditFile {
            path: "pipe".into(),
            dir: None,
            file: Some(w),
            size: 0,
            pending: Vec::new(),
            pending_lines: 0,
            fragment: false,
            seal: None,
        };
        let line = |i: usize| format!("line {i:05} {}\n", "x".repeat(53));
        let mut lines: Vec<u8> = (0..2000).flat_map(|i| line(i).into_bytes()).collect();
        let (whole, e) = append_lines(&mut f, &mut lines).unwrap_err();
        assert!(
            e.to_string()
                .contains("cutting the partial line back out failed"),
            "{e}"
        );
        assert!(f.fragment);
        let mut got = drain(&r);
        assert_eq!(got.iter().filter(|b| **b == b'\n').count() as u64, whole);
        assert!(!got.ends_with(b"\n"), "the write stopped inside a line");
        let mut next = line(9999).into_bytes();
        assert_eq!(append_lines(&mut f, &mut next).unwrap(), 1);
        assert!(!f.fragment);
        got.extend(drain(&r));
        let text = String::from_utf8(got).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let n = lines.len();
        assert_eq!(n as u64, whole + 2);
        // The fragment's line ends with the marker; the next line is whole on its own.
        assert!(
            lines[n - 2].ends_with(CUT_MARKER.trim_end()),
            "{}",
            lines[n - 2]
        );
        assert!(
            line(whole as usize).starts_with(lines[n - 2].trim_end_matches(CUT_MARKER.trim_end()))
        );
        assert_eq!(format!("{}\n", lines[n - 1]), line(9999));
        for (i, l) in lines[..n - 2].iter().enumerate() {
            assert_eq!(format!("{l}\n"), line(i));
        }
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
        let rotated = |n: u32| dir.path().join(format!("audit.log.{n}"));
        for p in [rotated(3), rotated(2), rotated(1), path.clone()] {
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.len() <= 300, "{} is {} bytes", p.display(), text.len());
            all.extend(text.lines().map(str::to_owned));
        }
        assert!(!rotated(4).exists());
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
        for n in ["audit.log.1", "audit.log.2.gz", "audit.log.x", "audit.log"] {
            std::fs::write(dir.path().join(n), b"x\n").unwrap();
        }
        let later = SystemTime::now() + Duration::from_secs(30 * 86_400);
        let safe = SafeDir::open(dir.path(), &FilePolicy::default()).unwrap();
        expire_rotations(
            &safe,
            "audit.log".as_ref(),
            Duration::from_secs(28 * 86_400),
            later,
        );
        assert!(!dir.path().join("audit.log.1").exists());
        assert!(!dir.path().join("audit.log.2.gz").exists());
        assert!(dir.path().join("audit.log.x").exists());
        assert!(dir.path().join("audit.log").exists());
    }
}
