//! Sealing one audit file (`core/SEALING.md` section 9): the lines stay byte for byte as
//! rendered; each write is followed by a seal line in the sidecar `<file>.seal` beside it.
//!
//! The sidecar holds *segments* (bytes this writer appended to one file from an offset, in a
//! hash chained to the segment before) and *seals* (after every write: the offset sealed
//! through, the segment hash, the MAC of the epoch, a signature). A new segment starts
//! whenever the file is not the one, or not as long as, the writer left it: a new file after
//! a rotation (ours, or logrotate's rename and `create`), a file cut by logrotate's
//! `copytruncate`, a restart (the chain is read back from the sidecar). The order on every
//! write is: lines, key evolved and `fsync`ed, seal line: a crash leaves at most the last
//! write unsealed, and the verifier says so.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;

use flightrec_decode::auditseal::{
    is_sidecar, parse_sidecar, seal_line, segment_line, SegmentHash, SIDECAR_SUFFIX, SIDECAR_TAG,
};

use crate::files::{append_whole, cut_back, FilePolicy, SafeDir};
use crate::sealkey::KeyFile;

/// The sidecar's name for the audit file `name`.
pub(crate) fn sidecar_name(name: &OsStr) -> OsString {
    let mut s = name.to_owned();
    s.push(SIDECAR_SUFFIX);
    s
}

/// Device and inode: which file an open descriptor is.
type FileId = (u64, u64);

fn identify(file: &File) -> io::Result<(FileId, u64)> {
    let m = file.metadata()?;
    Ok(((m.dev(), m.ino()), m.len()))
}

/// The segment being written.
struct Current {
    number: u64,
    hash: SegmentHash,
    start: u64,
    prev: [u8; 32],
    /// Offset of the audit file hashed through.
    end: u64,
    file: FileId,
    /// Its segment line is in the sidecar open now.
    announced: bool,
}

/// The sealing state of one audit file.
#[derive(Default)]
pub(crate) struct FileSeal {
    sidecar: Option<File>,
    sidecar_id: Option<FileId>,
    /// The last segment in a sidecar (number, chain head), if any.
    last: Option<(u64, [u8; 32])>,
    /// The sidecars were read back (once per process).
    recovered: bool,
    /// The sidecar open now is not the one the current segment was announced in (rotated,
    /// or cut to nothing by `copytruncate`).
    other_sidecar: bool,
    current: Option<Current>,
}

impl FileSeal {
    /// Closes the sidecar: the next write opens it again by its path (after a rotation).
    pub(crate) fn close(&mut self) {
        self.sidecar = None;
    }

    /// Gets ready to seal what is appended to `log` (the audit file `name` in `dir`, open
    /// now): opens the sidecar, and starts a new segment if `log` is not the file, or not
    /// the length, the writer left. Call right before appending.
    pub(crate) fn prepare(
        &mut self,
        dir: &SafeDir,
        name: &OsStr,
        policy: &FilePolicy,
        log: &File,
    ) -> io::Result<()> {
        self.open_sidecar(dir, name, policy)?;
        let other_sidecar = std::mem::take(&mut self.other_sidecar);
        let (file, len) = identify(log)?;
        let keep = self
            .current
            .as_ref()
            .is_some_and(|c| c.file == file && c.end == len && !(other_sidecar && c.announced));
        if !keep {
            let number = match &self.current {
                Some(c) if !c.announced => c.number,
                _ => self.last.map_or(0, |(n, _)| n.saturating_add(1)),
            };
            let prev = self.last.map_or([0; 32], |(_, head)| head);
            self.current = Some(Current {
                number,
                hash: SegmentHash::new(number, len, &prev),
                start: len,
                prev,
                end: len,
                file,
                announced: false,
            });
        }
        Ok(())
    }

    /// Opens the sidecar if it is not open (reading back the chain the first time) and
    /// writes its first line if it is empty; notes whether it is another file than the one
    /// the current segment was announced in.
    pub(crate) fn open_sidecar(
        &mut self,
        dir: &SafeDir,
        name: &OsStr,
        policy: &FilePolicy,
    ) -> io::Result<()> {
        if self.sidecar.is_none() {
            let opened = dir.open_read_append(&sidecar_name(name), policy)?;
            let (id, _) = identify(&opened.file)?;
            if !self.recovered {
                self.recover(&opened.file, &dir.path().join(sidecar_name(name)))?;
                self.recovered = true;
            }
            self.other_sidecar |= self.sidecar_id != Some(id);
            self.sidecar = Some(opened.file);
            self.sidecar_id = Some(id);
        }
        let Some(sidecar) = self.sidecar.as_ref() else {
            return Err(io::Error::other("sidecar not open"));
        };
        if sidecar.metadata()?.len() > 0 {
            return Ok(());
        }
        append_whole(sidecar, |out| writeln!(out, "{SIDECAR_TAG}")).map_err(|f| f.error)?;
        self.other_sidecar = true;
        Ok(())
    }

    /// Reads the chain back from the sidecar (a restart continues it); a line cut by a crash
    /// is cut back out.
    fn recover(&mut self, file: &File, path: &std::path::Path) -> io::Result<()> {
        let mut text = Vec::new();
        let mut reader = file;
        reader.seek(SeekFrom::Start(0))?;
        reader.read_to_end(&mut text)?;
        if text.is_empty() {
            return Ok(());
        }
        if !is_sidecar(&text) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: not a seal sidecar ({SIDECAR_TAG:?} missing): refused",
                    path.display()
                ),
            ));
        }
        if !text.ends_with(b"\n") {
            let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            cut_back(file, whole as u64)?;
            text.truncate(whole);
        }
        let (segments, _) = parse_sidecar(&path.display().to_string(), &text);
        self.last = segments.last().map(|s| (s.number, s.head()));
        Ok(())
    }

    /// Seals `written`, the bytes just appended to the audit file (as they are in it):
    /// the key evolves (durably), then the seal line is appended to the sidecar. On an
    /// error these bytes stay unsealed until the next seal, which covers them.
    pub(crate) fn seal(&mut self, written: &[u8], key: &mut KeyFile) -> io::Result<()> {
        let (Some(c), Some(sidecar)) = (self.current.as_mut(), self.sidecar.as_ref()) else {
            return Err(io::Error::other("audit seal: no segment open"));
        };
        c.hash.update(written);
        c.end = c.end.saturating_add(written.len() as u64);
        let head = c.hash.head();
        let (seal, sig) = key.seal_hash(c.end, head)?;
        let mut text = String::new();
        if !c.announced {
            text.push_str(&segment_line(c.number, c.start, &c.prev));
        }
        text.push_str(&seal_line(&seal, Some(&sig)));
        append_whole(sidecar, |out| out.write_all(text.as_bytes())).map_err(|f| f.error)?;
        c.announced = true;
        self.last = Some((c.number, head));
        Ok(())
    }

    /// The audit file's offset the chain has reached (where the next append starts).
    pub(crate) fn end(&self) -> Option<u64> {
        self.current.as_ref().map(|c| c.end)
    }
}
