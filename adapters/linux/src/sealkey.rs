//! The gateway's sealing key file (`core/SEALING.md`): seals each dump before it is
//! released, and evolves the key on disk first.
//!
//! The file is made by `flightrec keygen` (0600). It is opened without following links and
//! refused if it is not a regular file or if group or others may read or write it. Each
//! [`KeyFile::seal`] hashes a whole dump, makes its seal and signature frames with `k[e]`,
//! then writes `k[e+1]` over the file in place and `fsync`s it; only then does the caller
//! write the dump (and the frames) out. If the key cannot be made durable, the dump is not
//! sealed and the error is returned (the caller counts it): a sealed dump whose key could
//! come back after a crash would let its epoch repeat.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use flightrec_core::seal::{Seal, SealKey, Sealer};
use flightrec_decode::sign::{sign_seal, signature_frame, SignatureBody};
use flightrec_decode::verify::{key_file_text, parse_key_file};

/// An open sealing key file and the key it holds.
pub struct KeyFile {
    file: File,
    key: SealKey,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyFile {{ epoch: {} }}", self.key.epoch())
    }
}

/// Hashes, keeps nothing.
struct Discard;

impl embedded_io::ErrorType for Discard {
    type Error = core::convert::Infallible;
}

impl embedded_io::Write for Discard {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

fn refused(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("sealing key {}: {why}", path.display()),
    )
}

impl KeyFile {
    /// Opens the key file at `path` (never through a link; a regular file that only its
    /// owner may read and write).
    pub fn open(path: &Path) -> io::Result<KeyFile> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => refused(path, "is a symbolic link: refused"),
                _ => io::Error::new(e.kind(), format!("sealing key {}: {e}", path.display())),
            })?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(refused(path, "not a regular file: refused"));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(refused(path, "group or others have access: chmod 600 it"));
        }
        let mut text = String::new();
        Read::by_ref(&mut file)
            .take(4096)
            .read_to_string(&mut text)?;
        let key = parse_key_file(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        });
        wipe(text.into_bytes());
        Ok(KeyFile { file, key: key? })
    }

    /// The epoch the next dump gets.
    pub fn epoch(&self) -> u64 {
        self.key.epoch()
    }

    /// Seals the whole dump `dump`: returns its seal and signature frames, to be written
    /// right after it. The key has evolved and the evolved key is durable when this
    /// returns; on an error nothing is sealed and the key is unchanged.
    pub fn seal(&mut self, dump: &[u8]) -> io::Result<Vec<u8>> {
        let mut sealer = Sealer::new(Discard);
        let Ok(()) = embedded_io::Write::write_all(&mut sealer, dump);
        let seal = sealer.take_seal(&self.key);
        let mut frames = seal.frame().to_vec();
        frames.extend_from_slice(&signature_frame(&self.key, &seal));
        self.evolve()?;
        Ok(frames)
    }

    /// Seals `len` bytes whose hash the caller made (an audit log's segment hash,
    /// `SEALING.md` section 9): the seal and its signature. As [`seal`](Self::seal), the key
    /// has evolved and is durable when this returns; on an error nothing is sealed.
    pub fn seal_hash(&mut self, len: u64, hash: [u8; 32]) -> io::Result<(Seal, SignatureBody)> {
        let seal = Seal::new(&self.key, len, hash);
        let sig = sign_seal(&self.key, &seal);
        self.evolve()?;
        Ok((seal, sig))
    }

    /// Moves to the next epoch, the new key durable on disk first.
    fn evolve(&mut self) -> io::Result<()> {
        let next = self
            .key
            .at_epoch(self.key.epoch().saturating_add(1))
            .ok_or_else(|| io::Error::other("sealing key epoch exhausted"))?;
        self.persist(&next)?;
        // The old key is erased when it is dropped here.
        self.key = next;
        Ok(())
    }

    /// Writes `key` over the file in place and makes it durable.
    fn persist(&mut self, key: &SealKey) -> io::Result<()> {
        let text = key_file_text(key).into_bytes();
        let result = self
            .file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.write_all(&text))
            .and_then(|()| self.file.set_len(text.len() as u64))
            .and_then(|()| self.file.sync_all());
        wipe(text);
        result
    }
}

/// Overwrites a buffer that held key text before it is freed (best effort: a copy the
/// allocator or the kernel made is out of reach).
fn wipe(mut bytes: Vec<u8>) {
    bytes.fill(0);
    std::hint::black_box(&bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightrec_decode::verify::Verifier;

    fn key_at(dir: &Path, mode: u32) -> std::path::PathBuf {
        let p = dir.join("seal.key");
        std::fs::write(&p, key_file_text(&SealKey::new([6; 32], 0))).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn dump() -> Vec<u8> {
        use flightrec_core::{write_dump, Build, ClockInfo, DumpHeader, DumpOrder, Reason, Ring};
        let ring: Ring<256> = Ring::new();
        let order = DumpOrder {
            reason: Reason::Manual,
            time: 1,
            seq: None,
            session: None,
            suppressed: 0,
            index: 0,
        };
        let build = Build {
            name: "t",
            version: "1",
            id: &[],
        };
        let header = DumpHeader::for_order(&order, &[], 0, ClockInfo::BOOT_MILLIS, build);
        let mut out = Vec::new();
        write_dump(&mut out, &ring, header, &mut [0; 64]).unwrap();
        out
    }

    #[test]
    fn seals_evolve_on_disk_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_at(dir.path(), 0o600);
        let mut kf = KeyFile::open(&path).unwrap();
        let mut file = Vec::new();
        for _ in 0..3 {
            let d = dump();
            let frames = kf.seal(&d).unwrap();
            file.extend_from_slice(&d);
            file.extend_from_slice(&frames);
        }
        // The file holds k[3] only: reopened, it continues.
        assert_eq!(KeyFile::open(&path).unwrap().epoch(), 3);
        let on_disk = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            on_disk,
            key_file_text(&SealKey::new([6; 32], 0).at_epoch(3).unwrap())
        );
        for verifier in [
            Verifier::new(SealKey::new([6; 32], 0)),
            Verifier::with_public_key(
                0,
                flightrec_decode::sign::public_key(&SealKey::new([6; 32], 0)),
            ),
        ] {
            let mut v = verifier;
            let mut verdicts = v.verify_input("f", &file[..]).unwrap();
            assert!(v.finish(&mut verdicts).is_empty());
            assert_eq!(verdicts.len(), 3);
            assert!(verdicts.iter().all(|d| d.fault.is_none()), "{verdicts:?}");
        }
    }

    #[test]
    fn refuses_links_shared_files_and_non_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_at(dir.path(), 0o640);
        let e = KeyFile::open(&path).unwrap_err();
        assert!(e.to_string().contains("group or others"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let e = KeyFile::open(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo has no other preconditions.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = KeyFile::open(&fifo).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
