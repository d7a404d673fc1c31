//! Dump files: named from a template, appended to, each dump whole in the file or not there.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};

use flightrec_core::trigger::DumpOrder;

use crate::files::{
    append_whole, refusal, split, FilePolicy, Opened, SafeDir, Template, TemplateVars,
};
use crate::forward::{DumpNotice, ForwardedSeal, Forwarder};
use crate::recorder::FlightRecorder;
use crate::sealkey::KeyFile;
use crate::stats::{Counters, Source};

/// How dumps are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DumpFormat {
    /// The wire format (`core/WIRE-FORMAT.md`), for `flightrec decode`.
    #[default]
    Binary,
    /// Text: ProFTPD-style `-----BEGIN ... FORENSICS-----` blocks, rendered by
    /// `flightrec-decode` (peer-controlled text escaped).
    Forensic,
}

/// Where and how dumps go.
#[derive(Clone, Debug)]
pub struct DumpOptions {
    /// File name template (see [`Template`]); a file that exists is appended to.
    pub path: Template,
    /// Mode of created files and the rules of the path (see [`crate::files`]).
    pub file: FilePolicy,
    /// Format.
    pub format: DumpFormat,
    /// Make each dump durable before it is reported written (`[dump] durable`, on by
    /// default): the file's data is `fdatasync`ed and, when the file (or a directory on its
    /// path) was created for the dump, its directory `fsync`ed, so that a dump reported
    /// written, or forwarded, is still there after a power cut or a crash of the system.
    /// Off, a dump reported written is in the kernel's page cache, written back to disk
    /// within seconds, and lost if the system goes down before.
    pub durable: bool,
    /// Seal every binary dump with this key file (`[dump] seal_key`, `flightrec keygen`;
    /// `core/SEALING.md` section 5): opened by [`crate::Service::start`], which fails if it
    /// cannot be; the death dump of a run that died is sealed too. `None`: unsealed, unless
    /// [`DumpFiles::seal_with`] is given a key.
    pub seal_key: Option<PathBuf>,
}

/// Starts the next forensic dump in a file whose last dump was cut and could not be cut
/// back out: the fragment's line is ended and marked.
const CUT_MARKER: &[u8] =
    b"\n-----flightrec: the dump above is cut (a write failed and could not be undone)-----\n";

/// Files whose last dump is a fragment that could not be cut back (a forensic dump to one
/// of them starts with [`CUT_MARKER`]). Bounded: a fragment is rare, and a name template
/// with `{count}` or `{time}` never writes the same file again.
#[derive(Debug, Default)]
struct Cut(HashSet<PathBuf>);

const CUT_FILES_KEPT: usize = 64;

/// Writes dumps to files. Shared by the writer task and the panic hook; a lock makes sure
/// two dumps never interleave in one file.
///
/// A dump is either whole in its file or not there: the file's length is noted before the
/// dump is written, and if any write fails (a full disk), the file is cut back to that
/// length (`ftruncate`) and the dump counted as lost. If even the cut fails, the next
/// forensic dump to that file starts with a marker line; a binary dump's fragment is shown
/// by `flightrec decode` as an incomplete dump.
///
/// On a panicking thread (the panic hook, or a `Drop` during unwinding) nothing waits: if
/// another dump holds the lock, the dump goes to its own file, the template's name plus
/// `.panic-N`; the file is opened non-blocking, so a FIFO at the path is refused, not
/// waited on.
#[derive(Debug)]
pub struct DumpFiles {
    opts: DumpOptions,
    host: String,
    counters: Arc<Counters>,
    lock: Mutex<Cut>,
    panic_files: AtomicU64,
    /// Sealing key (`SEALING.md`): binary dumps are sealed when one is set.
    seal: OnceLock<Mutex<KeyFile>>,
    /// The forwarder every dump's notice goes to (with its seal), if any.
    forward: OnceLock<Arc<Forwarder>>,
}

/// Where a dump's bytes come from: streamed from the recorder's shards, or already built.
#[derive(Clone, Copy)]
enum Body<'a> {
    Streamed(&'a FlightRecorder, &'a DumpOrder),
    Wire(&'a [u8]),
}

/// A dump just written.
struct Written {
    path: PathBuf,
    /// Its seal and signature frames (empty if unsealed).
    seal: Vec<u8>,
    /// Its file (readable when a forwarder is set) and the bytes the dump took in it.
    file: File,
    at: Range<u64>,
}

/// Reads a range of a file (a dump read back for its notice).
struct ReadAt<'a> {
    file: &'a File,
    at: Range<u64>,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.at.end.saturating_sub(self.at.start)).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        let n = self
            .file
            .read_at(buf.get_mut(..want).unwrap_or(&mut []), self.at.start)?;
        self.at.start += n as u64;
        Ok(n)
    }
}

impl DumpFiles {
    /// Dump files for `opts`; `host` fills `{host}`.
    pub fn new(opts: DumpOptions, host: &str) -> Self {
        Self::with_counters(opts, host, Arc::default())
    }

    pub(crate) fn with_counters(opts: DumpOptions, host: &str, counters: Arc<Counters>) -> Self {
        DumpFiles {
            opts,
            host: host.to_owned(),
            counters,
            lock: Mutex::new(Cut::default()),
            panic_files: AtomicU64::new(0),
            seal: OnceLock::new(),
            forward: OnceLock::new(),
        }
    }

    /// Seals every binary dump from now on with `key` (each dump's seal and signature
    /// frames follow it; the key evolves on disk, durably, before they are written). `false`
    /// if a key was set already.
    pub fn seal_with(&self, key: KeyFile) -> bool {
        self.seal.set(Mutex::new(key)).is_ok()
    }

    /// The sealing key, locked. On a panicking thread a key another thread is using is not
    /// waited for (that thread may be the one that panicked inside it): the dump fails.
    fn key<'k>(&self, key: &'k Mutex<KeyFile>) -> io::Result<MutexGuard<'k, KeyFile>> {
        match key.try_lock() {
            Ok(k) => Ok(k),
            Err(TryLockError::Poisoned(e)) => Ok(e.into_inner()),
            Err(TryLockError::WouldBlock) if std::thread::panicking() => {
                Err(io::Error::other("sealing key in use by another thread"))
            }
            Err(TryLockError::WouldBlock) => Ok(key.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }

    /// Dumps written so far.
    pub fn written(&self) -> u64 {
        self.counters.snapshot().dumps_written
    }

    /// Dumps that failed (refused file, open or write error).
    pub fn errors(&self) -> u64 {
        let now = self.counters.snapshot();
        now.dumps_lost
    }

    /// Sends every dump's notice to `forward` from now on (see [`write`](Self::write)).
    /// `false` if a forwarder was set already.
    pub fn forward_to(&self, forward: Arc<Forwarder>) -> bool {
        self.forward.set(forward).is_ok()
    }

    /// Builds the dump `order` asks for and writes it; when this returns `Ok`, the dump is
    /// whole in its file, sealed if a key is set, and durable if
    /// [`DumpOptions::durable`]. On an error the dump is abandoned (cut back out of the
    /// file, counted in [`errors`](Self::errors), said once per cause): never retried in a
    /// loop, never blocking the next one. (If only making it durable failed, its bytes stay
    /// in the file: cutting them back would make nothing more durable.)
    ///
    /// With a forwarder ([`forward_to`](Self::forward_to)), the dump's notice (its facts
    /// read from the dump's own bytes, its seal and signature when sealed) is in the
    /// forwarder's spool when this returns, the panic hook's path included. A binary dump
    /// streams from the shards to its file and is read back from there for its notice; a
    /// forensic dump is built in memory first (its text is not the wire format the notice
    /// is read from).
    pub fn write(&self, rec: &FlightRecorder, order: &DumpOrder) -> io::Result<PathBuf> {
        let wire;
        let body = match (self.forward.get(), self.opts.format) {
            (Some(_), DumpFormat::Forensic) => {
                wire = rec.dump_bytes(order);
                Body::Wire(&wire)
            }
            _ => Body::Streamed(rec, order),
        };
        self.write_and_notify(rec, order, body)
    }

    /// Writes a dump built already (`wire`, wire format: a death dump), as
    /// [`write`](Self::write) does: sealed, durable, forwarded.
    pub(crate) fn write_wire(
        &self,
        rec: &FlightRecorder,
        order: &DumpOrder,
        wire: &[u8],
    ) -> io::Result<PathBuf> {
        self.write_and_notify(rec, order, Body::Wire(wire))
    }

    fn write_and_notify(
        &self,
        rec: &FlightRecorder,
        order: &DumpOrder,
        body: Body<'_>,
    ) -> io::Result<PathBuf> {
        let forward = self.forward.get();
        let written = self.write_body(rec, body)?;
        let Some(forward) = forward else {
            return Ok(written.path);
        };
        let name = written.path.to_string_lossy();
        let mut notice = match body {
            Body::Wire(wire) => DumpNotice::of_dump(order, wire, &name),
            Body::Streamed(..) => DumpNotice::of_dump(
                order,
                ReadAt {
                    file: &written.file,
                    at: written.at.clone(),
                },
                &name,
            ),
        };
        notice.seal = ForwardedSeal::of_frames(&written.seal);
        // The forwarder counts and says its own failures.
        let _ = forward.dump(&notice);
        Ok(written.path)
    }

    /// Writes the dump.
    fn write_body(&self, rec: &FlightRecorder, body: Body<'_>) -> io::Result<Written> {
        let mut guard = self.guard();
        let mut path = PathBuf::from(self.opts.path.expand(&TemplateVars {
            pid: std::process::id(),
            count: self.written(),
            unix_secs: rec.wall().as_secs(),
            host: &self.host,
        }));
        if guard.is_none() {
            let n = self.panic_files.fetch_add(1, Ordering::Relaxed);
            let mut name = OsString::from(path);
            name.push(format!(".panic-{n}"));
            path = PathBuf::from(name);
        }
        let mut seal = Vec::new();
        let result = self
            .write_at(&path, &body, guard.as_deref_mut(), &mut seal)
            .map_err(|e| {
                // A refusal names the path and keeps its cause; other errors get the path.
                if refusal(&e).is_some() {
                    e
                } else {
                    io::Error::new(e.kind(), format!("dump to {}: {e}", path.display()))
                }
            });
        match result {
            Ok((file, at)) => {
                self.counters.written(Source::Dump, 1);
                Ok(Written {
                    path,
                    seal,
                    file,
                    at,
                })
            }
            Err(e) => {
                self.counters.lost(Source::Dump, 1);
                self.counters.failed(Source::Dump, "dump failed", &e);
                Err(e)
            }
        }
    }

    /// The lock; on a panicking thread only if it is free.
    fn guard(&self) -> Option<MutexGuard<'_, Cut>> {
        if !std::thread::panicking() {
            return Some(self.lock.lock().unwrap_or_else(|e| e.into_inner()));
        }
        match self.lock.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Writes the dump to `path`, whole or not at all, and durable if the options say so.
    /// `cut` is `None` for a `.panic-N` file (its own name: nobody else writes it). `seal`
    /// gets the seal and signature frames written after the dump. Returns the file (open
    /// for reading too when a forwarder is set) and where the dump is in it.
    fn write_at(
        &self,
        path: &Path,
        body: &Body<'_>,
        cut: Option<&mut Cut>,
        seal: &mut Vec<u8>,
    ) -> io::Result<(File, Range<u64>)> {
        let (dir, name) = split(path)?;
        let dir = SafeDir::open(dir, &self.opts.file)?;
        let opened = if self.forward.get().is_some() {
            dir.open_read_append(name, &self.opts.file)?
        } else {
            dir.open_append(name, &self.opts.file)?
        };
        if let Some(t) = opened.tightened {
            self.counters.tightened(path, t);
        }
        let marked = cut.as_ref().is_some_and(|c| c.0.contains(path))
            && self.opts.format == DumpFormat::Forensic;
        let result = append_whole(&opened.file, |out| {
            if marked {
                out.write_all(CUT_MARKER)?;
            }
            self.emit(body, out, seal)
        });
        match (result, cut) {
            (Ok(appended), cut) => {
                if let Some(cut) = cut {
                    if marked || self.opts.format == DumpFormat::Binary {
                        cut.0.remove(path);
                    }
                }
                self.make_durable(&dir, &opened)?;
                let end = opened.file.metadata()?.len();
                Ok((opened.file, end.saturating_sub(appended)..end))
            }
            (Err(failed), cut) => {
                if failed.fragment_left {
                    self.counters
                        .failed(Source::Dump, "dump cut back failed", &failed.error);
                    if let Some(cut) = cut {
                        if cut.0.len() >= CUT_FILES_KEPT {
                            cut.0.clear();
                        }
                        cut.0.insert(path.to_owned());
                    }
                }
                Err(failed.error)
            }
        }
    }

    /// With [`DumpOptions::durable`], makes the dump just appended to `opened` durable: its
    /// data, and the directory entries made for it.
    fn make_durable(&self, dir: &SafeDir, opened: &Opened) -> io::Result<()> {
        if !self.opts.durable {
            return Ok(());
        }
        opened.file.sync_data()?;
        dir.sync_created(opened.created)
    }

    /// Writes the dump to `out` in the configured format, streamed from the shards unless
    /// it was built already; a binary dump is sealed when a key is set.
    fn emit(&self, body: &Body<'_>, out: &mut dyn Write, seal: &mut Vec<u8>) -> io::Result<()> {
        if let (Some(key), DumpFormat::Binary) = (self.seal.get(), self.opts.format) {
            return self.emit_sealed(key, body, out, seal);
        }
        match *body {
            Body::Streamed(rec, order) => rec.write_dump(order, self.opts.format, out).map(drop),
            Body::Wire(wire) => match self.opts.format {
                DumpFormat::Binary => out.write_all(wire),
                DumpFormat::Forensic => forensic_to(wire, out),
            },
        }
    }

    /// Writes a sealed dump (`core/SEALING.md`, section 5 for the order): see
    /// [`crate::dumpseal`].
    fn emit_sealed(
        &self,
        key: &Mutex<KeyFile>,
        body: &Body<'_>,
        out: &mut dyn Write,
        seal: &mut Vec<u8>,
    ) -> io::Result<()> {
        let mut key = self.key(key)?;
        *seal = crate::dumpseal::write_sealed(&mut key, out, |hashed| match *body {
            Body::Streamed(rec, order) => {
                rec.write_dump(order, DumpFormat::Binary, hashed).map(drop)
            }
            Body::Wire(wire) => hashed.write_all(wire),
        })?;
        Ok(())
    }
}

/// Renders wire-format bytes as forensic text blocks.
pub fn forensic(dump: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    forensic_to(dump, &mut out)?;
    Ok(out)
}

fn forensic_to(dump: &[u8], out: &mut dyn Write) -> io::Result<()> {
    use flightrec_decode::{Format, Options, Renderer};
    let mut renderer = Renderer::new(Options {
        format: Format::Forensic,
        ..Options::default()
    });
    flightrec_decode::decode_to(dump, &mut renderer, out).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::RecorderOptions;
    use std::time::Duration;

    /// Writes a dump from `Drop` while its thread unwinds (as the panic hook does).
    struct DumpWhileDying {
        files: Arc<DumpFiles>,
        rec: Arc<FlightRecorder>,
        done: std::sync::mpsc::Sender<io::Result<PathBuf>>,
    }

    impl Drop for DumpWhileDying {
        fn drop(&mut self) {
            assert!(std::thread::panicking());
            let _ = self
                .done
                .send(self.files.write(&self.rec, &self.rec.manual_order()));
        }
    }

    #[test]
    fn a_dying_thread_never_waits_for_the_writers_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.flr");
        let files = Arc::new(DumpFiles::new(
            DumpOptions {
                path: Template::parse(&path.display().to_string()).unwrap(),
                file: FilePolicy::default(),
                format: DumpFormat::Binary,
                durable: true,
                seal_key: None,
            },
            "gw",
        ));
        let rec = FlightRecorder::new(RecorderOptions::default()).unwrap();
        rec.log(
            flightrec_core::Level::Info,
            None,
            "t",
            "before the panic",
            &[],
        );
        // The writer is busy with a dump: it holds the lock.
        let held = files.lock.lock().unwrap();
        let (done, wait) = std::sync::mpsc::channel();
        let dying = DumpWhileDying {
            files: files.clone(),
            rec: rec.clone(),
            done,
        };
        let thread = std::thread::spawn(move || {
            let _dying = dying;
            panic!("deliberate panic: the dump is written while unwinding");
        });
        // Bounded only so the old behaviour (waiting for the lock) fails instead of hanging.
        let written = wait.recv_timeout(Duration::from_secs(60));
        drop(held);
        assert!(thread.join().is_err());
        let written = written
            .expect("the dying thread waited for the lock")
            .unwrap();
        assert_eq!(written, dir.path().join("d.flr.panic-0"));
        let bytes = std::fs::read(&written).unwrap();
        assert!(bytes.starts_with(&flightrec_core::dump::MAGIC));
        assert!(!path.exists());
        assert_eq!(files.written(), 1);
    }

    /// Records, at each write, whether the key file on disk had already moved past the
    /// epoch that seals the dump.
    struct Watch<'a> {
        key_path: &'a Path,
        epoch: u64,
        bytes: Vec<u8>,
        /// Bytes written while the key file still held the sealing epoch's key.
        before_evolved: usize,
    }

    impl Write for Watch<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let on_disk = std::fs::read_to_string(self.key_path).unwrap();
            if on_disk.contains(&format!("epoch {}\n", self.epoch)) {
                self.before_evolved = self.bytes.len() + buf.len();
            }
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn sealed_dumps_stream_and_their_frames_follow_the_evolved_key() {
        use flightrec_core::seal::{SealKey, SEAL_FRAME_LEN};
        use flightrec_decode::verify::{key_file_text, Verifier};
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("seal.key");
        std::fs::write(&key_path, key_file_text(&SealKey::new([5; 32], 0))).unwrap();
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = dir.path().join("new/d.flr");
        let files = DumpFiles::new(
            DumpOptions {
                path: Template::parse(&path.display().to_string()).unwrap(),
                file: FilePolicy::default(),
                format: DumpFormat::Binary,
                durable: true,
                seal_key: None,
            },
            "gw",
        );
        assert!(files.seal_with(KeyFile::open(&key_path).unwrap()));
        let rec = FlightRecorder::new(RecorderOptions::default()).unwrap();
        for i in 0..500 {
            rec.log(
                flightrec_core::Level::Info,
                None,
                "t",
                &format!("line {i}"),
                &[],
            );
        }
        // Streamed from the shards into a file (created, with its directory), three times.
        for _ in 0..3 {
            files.write(&rec, &rec.manual_order()).unwrap();
        }
        assert_eq!(KeyFile::open(&key_path).unwrap().epoch(), 3);
        // Built already (the forwarder's path), to a writer that looks at the key file: not
        // one byte of the seal frame goes out while the file still holds the key sealing it.
        let wire = rec.dump_bytes(&rec.manual_order());
        let mut out = Watch {
            key_path: &key_path,
            epoch: 3,
            bytes: Vec::new(),
            before_evolved: 0,
        };
        let mut frames = Vec::new();
        files
            .emit_sealed(
                files.seal.get().unwrap(),
                &Body::Wire(&wire),
                &mut out,
                &mut frames,
            )
            .unwrap();
        assert!(
            out.before_evolved <= wire.len(),
            "{} > {}",
            out.before_evolved,
            wire.len()
        );
        assert_eq!(out.bytes.len(), wire.len() + frames.len());
        assert!(frames.len() > SEAL_FRAME_LEN);
        let mut all = std::fs::read(&path).unwrap();
        all.extend_from_slice(&out.bytes);
        for verifier in [
            Verifier::new(SealKey::new([5; 32], 0)),
            Verifier::with_public_key(
                0,
                flightrec_decode::sign::public_key(&SealKey::new([5; 32], 0)),
            ),
        ] {
            let mut v = verifier;
            let mut verdicts = v.verify_input("f", &all[..]).unwrap();
            assert!(v.finish(&mut verdicts).is_empty());
            assert_eq!(verdicts.len(), 4);
            assert!(verdicts.iter().all(|d| d.fault.is_none()), "{verdicts:?}");
        }
    }
}
