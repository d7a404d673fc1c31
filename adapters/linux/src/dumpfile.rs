//! Dump files: named from a template, appended to, each dump written whole.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use flightrec_core::trigger::DumpOrder;

use crate::files::{open_append, Template, TemplateVars};
use crate::recorder::FlightRecorder;

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
    /// Mode of created files.
    pub mode: u32,
    /// Format.
    pub format: DumpFormat,
}

/// Writes dumps to files. Shared by the writer task and the panic hook; a lock makes sure
/// two dumps never interleave, and each dump goes out in one `write_all` on an `O_APPEND`
/// descriptor.
#[derive(Debug)]
pub struct DumpFiles {
    opts: DumpOptions,
    host: String,
    written: AtomicU64,
    errors: AtomicU64,
    lock: Mutex<()>,
    /// Sealing key (`SEALING.md`): binary dumps are sealed when one is set.
    seal: OnceLock<Mutex<crate::sealkey::KeyFile>>,
}

impl DumpFiles {
    /// Dump files for `opts`; `host` fills `{host}`.
    pub fn new(opts: DumpOptions, host: &str) -> Self {
        DumpFiles {
            opts,
            host: host.to_owned(),
            written: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            lock: Mutex::new(()),
            seal: OnceLock::new(),
        }
    }

    /// Seals every binary dump from now on with `key` (each dump's seal and signature
    /// frames follow it; the key evolves on disk before the dump is written). `false` if a
    /// key was set already.
    pub fn seal_with(&self, key: crate::sealkey::KeyFile) -> bool {
        self.seal.set(Mutex::new(key)).is_ok()
    }

    /// Dumps written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Dumps that failed (open or write error).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Builds the dump `order` asks for and writes it. On an error the dump is abandoned
    /// (counted in [`errors`](Self::errors)): never retried in a loop, never blocking the
    /// next one.
    pub fn write(&self, rec: &FlightRecorder, order: &DumpOrder) -> io::Result<PathBuf> {
        let mut bytes = match self.opts.format {
            DumpFormat::Binary => rec.dump_bytes(order),
            DumpFormat::Forensic => forensic(&rec.dump_bytes(order))?,
        };
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        // Sealed under the dump lock: epochs follow the order dumps are written in.
        if let (Some(key), DumpFormat::Binary) = (self.seal.get(), self.opts.format) {
            let sealed = key.lock().unwrap_or_else(|e| e.into_inner()).seal(&bytes);
            match sealed {
                Ok(frames) => bytes.extend_from_slice(&frames),
                Err(e) => {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        let count = self.written.load(Ordering::Relaxed);
        let path = PathBuf::from(self.opts.path.expand(&TemplateVars {
            pid: std::process::id(),
            count,
            unix_secs: rec.wall().as_secs(),
            host: &self.host,
        }));
        let result = open_append(&path, self.opts.mode)
            .and_then(|mut f| write_whole(&mut f, &bytes))
            .map_err(|e| io::Error::new(e.kind(), format!("dump to {}: {e}", path.display())));
        match result {
            Ok(()) => {
                self.written.fetch_add(1, Ordering::Relaxed);
                Ok(path)
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}

/// Renders wire-format bytes as forensic text blocks.
pub fn forensic(dump: &[u8]) -> io::Result<Vec<u8>> {
    use flightrec_decode::{Format, Options, Renderer};
    let mut renderer = Renderer::new(Options {
        format: Format::Forensic,
        ..Options::default()
    });
    let mut out = Vec::new();
    flightrec_decode::decode_to(dump, &mut renderer, &mut out)?;
    Ok(out)
}

/// Writes `bytes` whole or fails: `write_all` returns the first error (ProFTPD's forensic
/// log retries a failing write forever; we give up on that dump).
fn write_whole<W: Write>(w: &mut W, bytes: &[u8]) -> io::Result<()> {
    w.write_all(bytes)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broken {
        calls: usize,
    }
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_error_gives_up_at_once() {
        let mut w = Broken { calls: 0 };
        assert!(write_whole(&mut w, &[1; 100]).is_err());
        assert_eq!(w.calls, 1);
    }
}
