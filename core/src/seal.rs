//! Forward-secure sealing of dumps (feature `seal`), specified in `SEALING.md` beside this
//! crate.
//!
//! A [`Sealer`] wraps the writer a dump is streamed to and hashes (SHA-256) every byte that
//! writer accepts, from the magic to the end frame's CRC. [`Sealer::finish`] then appends a
//! seal frame (type `S`, which readers of the dump format skip): the epoch, the dump's length
//! and hash, and an HMAC-SHA-256 of those under the epoch's key `k[e]`. It then evolves the
//! key one way, `k[e+1] = SHA-256(k[e] || "evolve")`, erasing `k[e]`: a key read off the
//! device later cannot seal, or re-seal, any dump written before.
//!
//! The caller persists the evolved key (flash slot, key file) *before* it releases the dump
//! (commits it to the flash store, renames or closes the file): see `SEALING.md`.
//!
//! ```
//! use flightrec_core::seal::{SealKey, Sealer, SEAL_FRAME_LEN};
//! use flightrec_core::{write_dump, Build, ClockInfo, DumpHeader, DumpOrder, Reason, Ring};
//!
//! let ring: Ring<1024> = Ring::new();
//! let order = DumpOrder { reason: Reason::Manual, time: 2, seq: None, session: None,
//!                         suppressed: 0, index: 0 };
//! let build = Build { name: "demo", version: "1", id: &[] };
//! let header = DumpHeader::for_order(&order, &[], 0, ClockInfo::BOOT_MILLIS, build);
//! let mut key = SealKey::new([7; 32], 0);
//! let mut file = Vec::new();
//! let mut sealer = Sealer::new(&mut file);
//! let summary = write_dump(&mut sealer, &ring, header, &mut [0; 256]).unwrap();
//! sealer.finish(&mut key).unwrap();
//! assert_eq!(file.len(), summary.bytes + SEAL_FRAME_LEN);
//! // Now persist `key` (epoch 1), then release `file`.
//! assert_eq!(key.epoch(), 1);
//! ```

use embedded_io::Write;
use zeroize::Zeroize;

use self::sha256::{hash2, hmac, same, Sha256};

use crate::crc::Crc32;
use crate::dump::SYNC;

mod sha256;

/// Frame type of a seal (`S`), written right after a dump's end frame.
pub const FRAME_SEAL: u8 = b'S';
/// Frame type of a signature over a seal (`G`), written after the seal by hosts that sign
/// (see `SEALING.md`; the core does not sign).
pub const FRAME_SIGNATURE: u8 = b'G';
/// Version of the seal body this module writes.
pub const SEAL_VERSION: u8 = 1;
/// Bytes of a sealing key.
pub const KEY_LEN: usize = 32;
/// Bytes of a SHA-256 hash and of an HMAC-SHA-256 tag.
pub const HASH_LEN: usize = 32;
/// Bytes of a version-1 seal body: version, epoch, dump length, dump hash, MAC.
pub const SEAL_BODY_LEN: usize = 1 + 8 + 8 + HASH_LEN + HASH_LEN;
/// Bytes of the seal body the MAC covers (all but the MAC).
pub const SEAL_SIGNED_LEN: usize = SEAL_BODY_LEN - HASH_LEN;
/// Bytes of a whole seal frame: sync, type, length, body, CRC.
pub const SEAL_FRAME_LEN: usize = 4 + SEAL_BODY_LEN + 4;
/// Prefix of every MAC input: binds the tag to this format and version.
pub const MAC_DOMAIN: &[u8] = b"flightrec seal v1";
/// What is appended to a key to evolve it.
pub const EVOLVE_LABEL: &[u8] = b"evolve";

/// The sealing key of one epoch. Erased (overwritten with zeros, in writes the compiler
/// keeps) when it evolves and when it is dropped.
pub struct SealKey {
    key: [u8; KEY_LEN],
    epoch: u64,
}

impl SealKey {
    /// The key `key` of epoch `epoch`.
    pub const fn new(key: [u8; KEY_LEN], epoch: u64) -> Self {
        SealKey { key, epoch }
    }

    /// Replaces this key with `key` of `epoch`, in place (copied by the core's byte loop:
    /// no `memcpy` on bare metal, no copy of the old key left behind).
    pub fn load(&mut self, key: &[u8; KEY_LEN], epoch: u64) {
        crate::bytes::copy(&mut self.key, key);
        self.epoch = epoch;
    }

    /// The epoch this key seals: the next sealed dump gets this number.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The secret bytes, to persist them.
    pub fn secret(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// `SHA-256(key || label)`: the next key (`label` = [`EVOLVE_LABEL`]) or a key derived
    /// for another use (a host's signing key).
    pub fn derive(&self, label: &[u8]) -> [u8; KEY_LEN] {
        let mut out = [0; KEY_LEN];
        hash2(&self.key, label, &mut out);
        out
    }

    /// Moves to the next epoch: `k[e+1] = SHA-256(k[e] || "evolve")`; `k[e]` is erased.
    /// At epoch `u64::MAX` the key still evolves and the epoch stays (unreachable: one
    /// evolution a dump).
    pub fn evolve(&mut self) {
        let mut next = [0u8; KEY_LEN];
        hash2(&self.key, EVOLVE_LABEL, &mut next);
        // In place, with the compiler's-copy-free loop: `k[e]` is overwritten.
        crate::bytes::copy(&mut self.key, &next);
        next.zeroize();
        self.epoch = self.epoch.saturating_add(1);
    }

    /// The key of a later epoch, `self` evolved `epoch - self.epoch()` times (a verifier
    /// deriving `k[e]` from `k[0]`); `None` for an earlier epoch, which cannot be derived.
    pub fn at_epoch(&self, epoch: u64) -> Option<SealKey> {
        let mut k = SealKey::new(self.key, self.epoch);
        while k.epoch < epoch {
            k.evolve();
        }
        (k.epoch == epoch).then_some(k)
    }

    /// HMAC-SHA-256 under this key of [`MAC_DOMAIN`] and `msg`, into `out`.
    fn mac_into(&self, msg: &[u8], out: &mut [u8]) {
        hmac(&self.key, &[MAC_DOMAIN, msg], out);
    }
}

impl Drop for SealKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// A seal: the body of a seal frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seal {
    /// Epoch whose key made the MAC.
    pub epoch: u64,
    /// Bytes of the dump sealed, from its magic through its end frame's CRC.
    pub dump_len: u64,
    /// SHA-256 of those bytes.
    pub dump_hash: [u8; HASH_LEN],
    /// HMAC-SHA-256 under `k[epoch]` of [`MAC_DOMAIN`] and the body's first
    /// [`SEAL_SIGNED_LEN`] bytes.
    pub mac: [u8; HASH_LEN],
}

impl Seal {
    /// Seals `dump_len` bytes hashing to `dump_hash` with `key`.
    pub fn new(key: &SealKey, dump_len: u64, dump_hash: [u8; HASH_LEN]) -> Self {
        let mut seal = Seal {
            epoch: key.epoch,
            dump_len,
            dump_hash,
            mac: [0; HASH_LEN],
        };
        key.mac_into(&seal.signed_part(), &mut seal.mac);
        seal
    }

    /// The body's bytes before the MAC: version, epoch, length, hash.
    pub fn signed_part(&self) -> [u8; SEAL_SIGNED_LEN] {
        let mut out = [0u8; SEAL_SIGNED_LEN];
        signed_part_into(self.epoch, self.dump_len, &self.dump_hash, &mut out);
        out
    }

    /// The seal frame's body.
    pub fn body(&self) -> [u8; SEAL_BODY_LEN] {
        let mut out = [0u8; SEAL_BODY_LEN];
        let mut w = Put(&mut out, 0);
        w.put(&self.signed_part());
        w.put(&self.mac);
        out
    }

    /// The whole seal frame: sync, type, length, body, CRC.
    pub fn frame(&self) -> [u8; SEAL_FRAME_LEN] {
        let mut out = [0u8; SEAL_FRAME_LEN];
        if let Some(body) = out.get_mut(4..4 + SEAL_BODY_LEN) {
            crate::bytes::copy(body, &self.body());
        }
        close_frame(&mut out);
        out
    }

    /// Reads a seal frame's body; `None` if it is not a version-1 body of the right length.
    pub fn parse(body: &[u8]) -> Option<Seal> {
        let body: &[u8; SEAL_BODY_LEN] = body.try_into().ok()?;
        let (version, rest) = body.split_first()?;
        if *version != SEAL_VERSION {
            return None;
        }
        let (epoch, rest) = rest.split_first_chunk::<8>()?;
        let (dump_len, rest) = rest.split_first_chunk::<8>()?;
        let (dump_hash, rest) = rest.split_first_chunk::<HASH_LEN>()?;
        let mac: &[u8; HASH_LEN] = rest.try_into().ok()?;
        Some(Seal {
            epoch: u64::from_le_bytes(*epoch),
            dump_len: u64::from_le_bytes(*dump_len),
            dump_hash: *dump_hash,
            mac: *mac,
        })
    }

    /// Whether the MAC is `key`'s over this seal (compared in constant time). `key` must be
    /// the key of this seal's epoch: a verifier derives it with [`SealKey::at_epoch`].
    pub fn check(&self, key: &SealKey) -> bool {
        let mut mac = [0u8; HASH_LEN];
        key.mac_into(&self.signed_part(), &mut mac);
        key.epoch == self.epoch && same(&mac, &self.mac)
    }
}

/// Writes a seal body's signed part (version, epoch, length, hash) to the front of `out`.
fn signed_part_into(epoch: u64, dump_len: u64, dump_hash: &[u8], out: &mut [u8]) {
    let mut w = Put(out, 0);
    w.put(&[SEAL_VERSION]);
    w.put(&epoch.to_le_bytes());
    w.put(&dump_len.to_le_bytes());
    w.put(dump_hash);
}

/// Fills in a seal frame's sync, type, length and CRC around the body already in `frame`.
fn close_frame(frame: &mut [u8; SEAL_FRAME_LEN]) {
    let [l0, l1] = (SEAL_BODY_LEN as u16).to_le_bytes();
    Put(frame, 0).put(&[SYNC, FRAME_SEAL, l0, l1]);
    let mut crc = Crc32::new();
    crc.update(frame.get(1..4 + SEAL_BODY_LEN).unwrap_or(&[]));
    Put(frame, 4 + SEAL_BODY_LEN).put(&crc.finish().to_le_bytes());
}

/// Writes into a fixed buffer from a position; bytes past its end are dropped (the callers'
/// sizes are constants that fit).
struct Put<'a>(&'a mut [u8], usize);

impl Put<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.1.saturating_add(bytes.len());
        if let Some(dst) = self.0.get_mut(self.1..end) {
            crate::bytes::copy(dst, bytes);
        }
        self.1 = end;
    }
}

/// Why a seal could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealError<E> {
    /// The writer failed; the seal frame may be cut short (a verifier reports the dump as
    /// unsealed) and the key has not evolved.
    Io(E),
    /// The writer accepted no bytes.
    WriteZero,
}

/// A writer that hashes every byte it passes on; see the module docs. One sealer can seal
/// several dumps written through it one after the other (a file in append mode): each seal
/// covers the bytes written since the previous one.
pub struct Sealer<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Sealer<W> {
    /// Starts sealing what is written to `inner` from now on: one dump, from its magic.
    pub fn new(inner: W) -> Self {
        Sealer {
            inner,
            hash: Sha256::new(),
        }
    }

    /// The seal of the bytes written since the previous seal, under `key`; hashing starts
    /// afresh, nothing is written, the key is unchanged. [`finish`](Self::finish) is this,
    /// the frame written, and the key evolved; a host that also signs (`SEALING.md`) takes
    /// these steps itself.
    pub fn take_seal(&mut self, key: &SealKey) -> Seal {
        let mut frame = [0u8; SEAL_FRAME_LEN];
        self.seal_frame(key, &mut frame);
        Seal::parse(frame.get(4..4 + SEAL_BODY_LEN).unwrap_or(&[])).unwrap_or(Seal {
            epoch: key.epoch,
            dump_len: 0,
            dump_hash: [0; HASH_LEN],
            mac: [0; HASH_LEN],
        })
    }

    /// The seal frame of the bytes written since the previous seal, under `key`, built in
    /// place (no `Seal` moved around: each copy of it is a `memcpy` on bare metal); hashing
    /// starts afresh, nothing is written, the key is unchanged. For a writer that must make
    /// the evolved key durable before the frame goes out (a flash store).
    pub fn seal_frame(&mut self, key: &SealKey, frame: &mut [u8; SEAL_FRAME_LEN]) {
        let (_, rest) = frame.split_at_mut(4);
        let (signed, rest) = rest.split_at_mut(SEAL_SIGNED_LEN);
        let (mac, _) = rest.split_at_mut(HASH_LEN);
        let len = self.hash.len();
        // The hash goes where the signed part wants it: after version, epoch and length.
        if let Some(hash) = signed.get_mut(17..) {
            self.hash.finish_into(hash);
        }
        let mut hash = [0u8; HASH_LEN];
        crate::bytes::copy(&mut hash, signed.get(17..).unwrap_or(&[]));
        signed_part_into(key.epoch, len, &hash, signed);
        key.mac_into(signed, mac);
        close_frame(frame);
    }

    /// Appends the seal frame to the dump written so far, flushes, and evolves `key` (erasing
    /// the old one). The caller persists `key` before it releases the dump. On an error the
    /// key has not evolved (and the dump is not sealed).
    pub fn finish(&mut self, key: &mut SealKey) -> Result<(), SealError<W::Error>> {
        let mut frame = [0u8; SEAL_FRAME_LEN];
        self.seal_frame(key, &mut frame);
        write_all(&mut self.inner, &frame)?;
        self.inner.flush().map_err(SealError::Io)?;
        key.evolve();
        scrub_stack();
        Ok(())
    }

    /// The inner writer, to write what the seal does not cover (a signature frame).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The inner writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// Writes all of `b`: our own loop rather than `write_all`, which panics on a writer that
/// accepts nothing.
pub fn write_all<W: Write>(w: &mut W, mut b: &[u8]) -> Result<(), SealError<W::Error>> {
    while !b.is_empty() {
        match w.write(b).map_err(SealError::Io)? {
            0 => return Err(SealError::WriteZero),
            n => b = b.get(n..).unwrap_or(&[]),
        }
    }
    Ok(())
}

/// Overwrites the stack just below the caller, where the MAC and hash computations left
/// key-derived states (HMAC's padded-key hash states, copies the compiler made).
#[inline(never)]
fn scrub_stack() {
    let mut area = [0u8; 512];
    area.zeroize();
}

impl<W: Write> embedded_io::ErrorType for Sealer<W> {
    type Error = W::Error;
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let n = self.inner.write(buf)?;
        // Only what the inner writer took is part of the dump.
        let taken = buf.get(..n).unwrap_or(buf);
        self.hash.update(taken);
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()
    }
}
