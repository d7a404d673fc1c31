//! Dump files: named from a template, appended to, each dump whole in the file or not there.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};

use flightrec_core::trigger::DumpOrder;

use crate::files::{append_whole, open_append, refusal, FilePolicy, Template, TemplateVars};
use crate::forward::{DumpNotice, ForwardedSeal, Forwarder};
use crate::recorder::FlightRecorder;
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
    seal: OnceLock<Mutex<crate::sealkey::KeyFile>>,
    /// The forwarder every dump's notice goes to (with its seal), if any.
    forward: OnceLock<Arc<Forwarder>>,
}

/// Where a dump's bytes come from: streamed from the recorder's shards, or already built.
#[derive(Clone, Copy)]
enum Body<'a> {
    Streamed(&'a FlightRecorder, &'a DumpOrder),
    Wire(&'a [u8]),
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
    /// frames follow it; the key evolves on disk before the dump is written). `false` if a
    /// key was set already.
    pub fn seal_with(&self, key: crate::sealkey::KeyFile) -> bool {
        self.seal.set(Mutex::new(key)).is_ok()
    }

    /// The seal and signature frames of `dump`, the key evolved and durable; none without a
    /// key. On a panicking thread a key another thread is using is not waited for (that
    /// thread may be the one that panicked inside it): the dump fails.
    fn seal(&self, dump: &[u8]) -> io::Result<Vec<u8>> {
        let Some(key) = self.seal.get() else {
            return Ok(Vec::new());
        };
        let mut key = match key.try_lock() {
            Ok(k) => k,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) if std::thread::panicking() => {
                return Err(io::Error::other("sealing key in use by another thread"))
            }
            Err(TryLockError::WouldBlock) => key.lock().unwrap_or_else(|e| e.into_inner()),
        };
        key.seal(dump)
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

    /// Builds the dump `order` asks for and writes it. On an error the dump is abandoned
    /// (cut back out of the file, counted in [`errors`](Self::errors), said once per cause):
    /// never retried in a loop, never blocking the next one.
    ///
    /// With a forwarder ([`forward_to`](Self::forward_to)), the dump's notice (its facts
    /// read from the dump's own bytes, its seal and signature when sealed) is in the
    /// forwarder's spool when this returns: such a dump is built in memory, others stream
    /// from the shards. This holds on the panic hook's path too.
    pub fn write(&self, rec: &FlightRecorder, order: &DumpOrder) -> io::Result<PathBuf> {
        let Some(forward) = self.forward.get() else {
            return self
                .write_body(rec, Body::Streamed(rec, order))
                .map(|(path, _)| path);
        };
        let wire = rec.dump_bytes(order);
        let (path, seal) = self.write_body(rec, Body::Wire(&wire))?;
        let mut notice = DumpNotice::of_dump(order, &wire, &path.to_string_lossy());
        notice.seal = ForwardedSeal::of_frames(&seal);
        // The forwarder counts and says its own failures.
        let _ = forward.dump(&notice);
        Ok(path)
    }

    /// Writes the dump; its path and its seal and signature frames (empty if unsealed).
    fn write_body(&self, rec: &FlightRecorder, body: Body<'_>) -> io::Result<(PathBuf, Vec<u8>)> {
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
            Ok(()) => {
                self.counters.written(Source::Dump, 1);
                Ok((path, seal))
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

    /// Writes the dump to `path`, whole or not at all. `cut` is `None` for a `.panic-N`
    /// file (its own name: nobody else writes it). `seal` gets the seal and signature
    /// frames written after the dump.
    fn write_at(
        &self,
        path: &Path,
        body: &Body<'_>,
        cut: Option<&mut Cut>,
        seal: &mut Vec<u8>,
    ) -> io::Result<()> {
        let opened = open_append(path, &self.opts.file)?;
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
            (Ok(_), Some(cut)) => {
                if marked || self.opts.format == DumpFormat::Binary {
                    cut.0.remove(path);
                }
                Ok(())
            }
            (Ok(_), None) => Ok(()),
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

    /// Writes the dump to `out` in the configured format. A sealed dump is built in memory
    /// (its seal covers every byte); others stream from the shards.
    fn emit(&self, body: &Body<'_>, out: &mut dyn Write, seal: &mut Vec<u8>) -> io::Result<()> {
        match (*body, self.opts.format) {
            (Body::Streamed(rec, order), DumpFormat::Binary) if self.seal.get().is_some() => {
                self.emit_wire(&rec.dump_bytes(order), out, seal)
            }
            (Body::Streamed(rec, order), format) => rec.write_dump(order, format, out).map(drop),
            (Body::Wire(wire), _) => self.emit_wire(wire, out, seal),
        }
    }

    fn emit_wire(&self, wire: &[u8], out: &mut dyn Write, seal: &mut Vec<u8>) -> io::Result<()> {
        match self.opts.format {
            DumpFormat::Binary => {
                // Sealed (the key evolved on disk) before the dump is written.
                *seal = self.seal(wire)?;
                out.write_all(wire)?;
                out.write_all(seal)
            }
            DumpFormat::Forensic => forensic_to(wire, out),
        }
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
}
