//! The gateway's sealing key file (`core/SEALING.md`): seals each dump, and evolves the key
//! on disk before the dump is released.
//!
//! The file is made by `flightrec keygen` (0600). It is opened without following links and
//! refused if it is not a regular file or if group or others may read or write it.
//!
//! Sealing a dump takes two steps, so that the key's `fsync` can run while the dump is
//! written: [`KeyFile::evolve_on_disk`] writes `k[e+1]` over the file in place and
//! `fdatasync`s it (the key in use stays `k[e]`); [`KeyFile::seal_with`] then seals the
//! dump's hash with `k[e]`, signs the seal, and puts `k[e+1]` in use, erasing `k[e]`. The
//! caller writes the seal and signature frames, which release the dump, only after both.
//! If the key cannot be made durable, the dump is not sealed and the error is returned (the
//! caller counts it): a sealed dump whose key could come back after a crash would let its
//! epoch repeat.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ed25519_dalek::SigningKey;
use flightrec_core::seal::{Seal, SealKey, HASH_LEN};
use flightrec_decode::sign::{sign_seal_by, signing_key, SignatureBody};
use flightrec_decode::verify::{key_file_text, parse_key_file};
use sha2::{Digest, Sha256};

/// An open sealing key file and the key it holds.
pub struct KeyFile {
    file: File,
    key: SealKey,
    /// The Ed25519 signing key of `key`'s epoch (`SEALING.md` section 6): derived when the
    /// file is opened, then once per epoch, by the evolution that announces its public key.
    signing: SigningKey,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyFile {{ epoch: {} }}", self.key.epoch())
    }
}

/// The next epoch's key, written over the key file and durable, not yet in use: made by
/// [`KeyFile::evolve_on_disk`], put in use by [`KeyFile::seal_with`]. Dropped unused (the
/// dump failed), it is erased and the key in use stays: no dump of its epoch was released,
/// and the next evolution writes the same key over the file again.
pub struct NextKey {
    key: SealKey,
    signing: SigningKey,
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
        let key = key?;
        Ok(KeyFile {
            file,
            signing: signing_key(&key),
            key,
        })
    }

    /// The epoch the next dump gets.
    pub fn epoch(&self) -> u64 {
        self.key.epoch()
    }

    /// Seals the whole dump `dump`: returns its seal and signature frames, to be written
    /// right after it. The key has evolved and the evolved key is durable when this
    /// returns; on an error nothing is sealed and the key in use is unchanged.
    pub fn seal(&mut self, dump: &[u8]) -> io::Result<Vec<u8>> {
        let hash: [u8; HASH_LEN] = Sha256::digest(dump).into();
        let (seal, sig) = self.seal_hash(dump.len() as u64, hash)?;
        Ok(frames(&seal, &sig))
    }

    /// Seals `len` bytes whose hash the caller made (an audit log's segment hash,
    /// `SEALING.md` section 9): the seal and its signature. As [`seal`](Self::seal), the key
    /// has evolved and is durable when this returns; on an error nothing is sealed.
    pub fn seal_hash(&mut self, len: u64, hash: [u8; 32]) -> io::Result<(Seal, SignatureBody)> {
        let next = self.evolve_on_disk()?;
        self.seal_with(next, len, hash)
    }

    /// Writes the next epoch's key over the file in place and makes it durable; the key in
    /// use does not change (see [`NextKey`]). [`evolution`](Self::evolution) and
    /// [`Evolution::run`] in one.
    pub fn evolve_on_disk(&self) -> io::Result<NextKey> {
        self.evolution()?.run()
    }

    /// The next epoch's key with a descriptor of the key file: [`Evolution::run`] makes it
    /// durable, on any thread, while the dump it will seal is written.
    pub fn evolution(&self) -> io::Result<Evolution> {
        let epoch = self
            .key
            .epoch()
            .checked_add(1)
            .ok_or_else(|| io::Error::other("sealing key epoch exhausted"))?;
        let key = self
            .key
            .at_epoch(epoch)
            .ok_or_else(|| io::Error::other("sealing key epoch exhausted"))?;
        Ok(Evolution {
            file: self.file.try_clone()?,
            key,
        })
    }

    /// Seals `len` bytes hashing to `hash` with the key in use, signs the seal (announcing
    /// `next`'s public key), and puts `next` in use: the old key and its signing key are
    /// erased. `next` must be the evolution of the key in use, made durable by
    /// [`evolve_on_disk`](Self::evolve_on_disk).
    pub fn seal_with(
        &mut self,
        next: NextKey,
        len: u64,
        hash: [u8; HASH_LEN],
    ) -> io::Result<(Seal, SignatureBody)> {
        if Some(next.key.epoch()) != self.key.epoch().checked_add(1) {
            return Err(io::Error::other(
                "sealing key: the next key is not this one's",
            ));
        }
        let seal = Seal::new(&self.key, len, hash);
        let next_pub = next.signing.verifying_key().to_bytes();
        let sig = sign_seal_by(&self.signing, self.key.epoch(), next_pub, &seal);
        // The old key and signing key are erased as they are dropped here.
        self.key = next.key;
        self.signing = next.signing;
        Ok((seal, sig))
    }
}

/// The next epoch's key, to be written over the key file ([`KeyFile::evolution`]).
pub struct Evolution {
    file: File,
    key: SealKey,
}

impl Evolution {
    /// Writes the key over the file in place and makes it durable (`fdatasync`: the text
    /// only grows, by its epoch's digits, so the file's length is mostly unchanged and only
    /// its data block is written), then derives the key's signing key.
    pub fn run(self) -> io::Result<NextKey> {
        let text = key_file_text(&self.key).into_bytes();
        let result = self
            .file
            .write_all_at(&text, 0)
            .and_then(|()| self.file.set_len(text.len() as u64))
            .and_then(|()| self.file.sync_data());
        wipe(text);
        result?;
        Ok(NextKey {
            signing: signing_key(&self.key),
            key: self.key,
        })
    }
}

/// A seal's frame and its signature frame, as written after the dump.
pub fn frames(seal: &Seal, sig: &SignatureBody) -> Vec<u8> {
    let mut out = seal.frame().to_vec();
    out.extend_from_slice(&sig.frame());
    out
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
    fn an_evolution_left_unused_gives_its_epoch_to_the_next_dump() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_at(dir.path(), 0o600);
        let mut kf = KeyFile::open(&path).unwrap();
        let d = dump();
        let mut file = d.clone();
        file.extend_from_slice(&kf.seal(&d).unwrap());
        // A dump that failed while the key evolved: the file holds k[2] already, the key in
        // use stays k[1], and nothing older than k[2] is on disk.
        drop(kf.evolve_on_disk().unwrap());
        assert_eq!(kf.epoch(), 1);
        assert_eq!(KeyFile::open(&path).unwrap().epoch(), 2);
        // A next key from another epoch is refused.
        let stale = kf.evolve_on_disk().unwrap();
        file.extend_from_slice(&d);
        file.extend_from_slice(&kf.seal(&d).unwrap());
        assert!(kf.seal_with(stale, 0, [0; 32]).is_err());
        assert_eq!(kf.epoch(), 2);
        let mut v = Verifier::new(SealKey::new([6; 32], 0));
        let mut verdicts = v.verify_input("f", &file[..]).unwrap();
        assert!(v.finish(&mut verdicts).is_empty());
        assert_eq!(verdicts.len(), 2);
        assert!(verdicts.iter().all(|d| d.fault.is_none()), "{verdicts:?}");
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
