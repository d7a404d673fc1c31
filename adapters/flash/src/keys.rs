//! The device's sealing key on flash (feature `seal`; the format is `core/SEALING.md`
//! section 8): two erase pages that take turns, and dumps sealed with the key before they
//! are committed.
//!
//! The key of epoch `e` sits in a 48-byte record at the start of one page of the key
//! region, the *current* page; the other page, the *spare*, is erased. Evolving the key
//! (one epoch per sealed dump) is committed power-fail safely:
//!
//! 1. the spare is erased (skipped when this boot erased it already),
//! 2. the record of `k[e+1]`, epoch `e+1`, is programmed into the spare and read back,
//! 3. the old page is erased: `k[e]` is gone from the flash;
//!
//! and only then is the seal frame written and the dump committed. A power cut in step 1
//! or 2 leaves `k[e]` (step 2's torn record fails its CRC); after step 2 both records may
//! be valid until step 3 completes, and [`KeySlots::mount`] takes the higher epoch and
//! erases the other page before anything else: an older key never comes back, and there
//! is always a usable one. A dump cut off before its seal frame was written is
//! incomplete (the decoder and the verifier report it) and consumed no epoch if the cut
//! came before step 2, one epoch if it came after.
//!
//! Record (little-endian): `"FLRK"` | epoch u64 | key (32 bytes) | CRC-32 of the 44 bytes
//! before; padded with `FF` to whole write words.
//!
//! ```
//! use flightrec_core::seal::SealKey;
//! use flightrec_flash::keys::KeySlots;
//! use flightrec_flash::RamFlash;
//!
//! let mut mem = [0xFFu8; 10 * 256];
//! let mut flash: RamFlash<'_, 256, 4> = RamFlash::new(&mut mem);
//! // Pages 8 and 9 hold the key; the dump store would take 0..8 * 256.
//! let mut keys = KeySlots::new(8 * 256..10 * 256);
//! keys.mount(&mut flash).unwrap();
//! assert!(keys.key().is_none());
//! keys.provision(&mut flash, &SealKey::new([7; 32], 0)).unwrap();
//! keys.evolve(&mut flash).unwrap();
//! let mut after_reset = KeySlots::new(8 * 256..10 * 256);
//! after_reset.mount(&mut flash).unwrap();
//! assert_eq!(after_reset.epoch(), Some(1));
//! ```

use core::marker::PhantomData;
use core::ops::Range;

use embedded_storage::nor_flash::NorFlash;
use flightrec_core::bytes;
use flightrec_core::crc::crc32;
use flightrec_core::dump::{self, Source};
use flightrec_core::seal::{SealKey, Sealer, KEY_LEN, SEAL_FRAME_LEN};
use flightrec_core::DumpHeader;
use zeroize::Zeroize;

use crate::store::{DumpInfo, DumpWriter, Error, FlashStore};

/// `FLRK`: first bytes of a key record.
pub const KEY_MAGIC: [u8; 4] = *b"FLRK";
/// Bytes of a key record before padding.
pub const KEY_RECORD_LEN: usize = 4 + 8 + KEY_LEN + 4;
/// A record padded to write words of up to 32 bytes.
const SLOT_MAX: usize = 64;
/// Bytes of a slot after the record.
const PAD: usize = SLOT_MAX - KEY_RECORD_LEN;

/// The bytes of the key record holding `key` (magic, epoch, key, CRC): what
/// [`KeySlots::provision`] writes, for a production tool that writes the key page itself.
pub fn key_record(key: &SealKey) -> [u8; KEY_RECORD_LEN] {
    let mut r = [0u8; KEY_RECORD_LEN];
    put_record(key, &mut r);
    r
}

/// Writes `key`'s record to the front of `out` (at least [`KEY_RECORD_LEN`] bytes).
fn put_record(key: &SealKey, out: &mut [u8]) {
    // Copied piece by piece (`bytes::copy`): no `memcpy` linked on bare metal.
    let at = |out: &mut [u8], from: usize, src: &[u8]| {
        bytes::copy(out.get_mut(from..).unwrap_or(&mut []), src);
    };
    at(out, 0, &KEY_MAGIC);
    at(out, 4, &key.epoch().to_le_bytes());
    at(out, 12, key.secret());
    let crc = crc32(out.get(..KEY_RECORD_LEN - 4).unwrap_or(&[]));
    at(out, KEY_RECORD_LEN - 4, &crc.to_le_bytes());
}

/// Loads the key in a record (the front of `r`) into `key`, if its magic and CRC check.
fn parse_record(r: &[u8], key: &mut SealKey) -> bool {
    let (Some(head), Some(crc)) = (
        r.get(..KEY_RECORD_LEN - 4),
        r.get(KEY_RECORD_LEN - 4..KEY_RECORD_LEN),
    ) else {
        return false;
    };
    let (Some(magic), Some(epoch), Some(secret)) = (
        head.first_chunk::<4>(),
        head.get(4..12).and_then(|e| e.first_chunk::<8>()),
        head.get(12..).and_then(|k| k.first_chunk::<KEY_LEN>()),
    ) else {
        return false;
    };
    let ok = *magic == KEY_MAGIC && crc32(head).to_le_bytes() == *crc;
    if ok {
        key.load(secret, u64::from_le_bytes(*epoch));
    }
    ok
}

/// A key record's slot in RAM, word-aligned: clearing and wiping it then take the
/// compiler's word-wise routine that the rest of a firmware links anyway
/// (`__aeabi_memclr4`), where a byte array took the byte-wise ones (`__aeabi_memclr`, and
/// `__aeabi_memset4` for a slot filled with `FF`), linked for this alone.
#[repr(C, align(4))]
struct Slot([u8; SLOT_MAX]);

impl Slot {
    /// All zeros (what a read overwrites).
    #[inline(always)]
    const fn new() -> Self {
        Slot([0; SLOT_MAX])
    }
}

/// Overwrites `slot` with zeros (key material), in writes the compiler keeps; one copy of
/// the loop.
#[inline(never)]
fn wipe(slot: &mut Slot) {
    slot.0.zeroize();
}

/// The sealing key held in two erase pages of a flash; see the module docs. Its methods
/// take the flash driver (the one the dump store uses, or a handle of it); each checks
/// that the driver has the geometry it was mounted with.
pub struct KeySlots {
    /// The key region (two pages).
    base: u32,
    end: u32,
    /// Erase page size of the flash it was mounted on (0: not mounted).
    page: u32,
    /// The current key (a copy of the current page's), if `present`; zeros if not.
    key: SealKey,
    present: bool,
    /// The current page: 0 or 1.
    current: u32,
    /// Whether this boot erased the spare page (a page that only reads blank may be half
    /// erased: it is erased before it is written).
    spare_erased: bool,
}

/// The geometry of a flash driver, as the key pages use it.
struct Geometry<F>(PhantomData<fn(F)>);

impl<F: NorFlash> Geometry<F> {
    const PAGE: u32 = F::ERASE_SIZE as u32;
    /// A record padded to whole write words (`mount` checks it fits [`SLOT_MAX`]).
    const SLOT: usize =
        KEY_RECORD_LEN.next_multiple_of(if F::WRITE_SIZE == 0 { 1 } else { F::WRITE_SIZE });
    const OK: bool = F::ERASE_SIZE.is_power_of_two()
        && F::ERASE_SIZE >= SLOT_MAX
        && F::ERASE_SIZE <= 1 << 30
        && F::WRITE_SIZE.is_power_of_two()
        && Self::SLOT <= SLOT_MAX
        && F::READ_SIZE.is_power_of_two()
        && crate::CHUNK % F::READ_SIZE == 0;
}

impl KeySlots {
    /// The key pages at `region` (two whole erase pages of the flash), not read yet:
    /// [`Self::mount`] them before use. (Two steps, so that the value is built where it
    /// stays: moving it costs a `memcpy` call on bare metal.)
    pub const fn new(region: Range<u32>) -> Self {
        KeySlots {
            base: region.start,
            end: region.end,
            page: 0,
            key: SealKey::new([0; KEY_LEN], 0),
            present: false,
            current: 0,
            spare_erased: false,
        }
    }

    /// Reads the key: the record of the highest epoch. If the other page still holds an
    /// older record or any other bytes (a power cut during an evolution), it is erased
    /// now, so the older key is gone before anything is sealed. No key (a new device):
    /// [`Self::provision`] installs one. Until the pages are mounted, sealing, evolving
    /// and provisioning fail with [`Error::Geometry`].
    pub fn mount<F: NorFlash>(&mut self, flash: &mut F) -> Result<(), Error<F::Error>> {
        let page = Geometry::<F>::PAGE;
        if !Geometry::<F>::OK
            || self.base % page != 0
            || self.end.checked_sub(self.base) != Some(2 * page)
            || self.end as usize > flash.capacity()
        {
            return Err(Error::Geometry);
        }
        self.page = page;
        self.present = false;
        self.spare_erased = false;
        self.find_key(flash)
    }

    /// Loads the key of the higher epoch, and erases the other page if it holds anything.
    fn find_key<F: NorFlash>(&mut self, flash: &mut F) -> Result<(), Error<F::Error>> {
        // Each page's record is loaded in turn; the current one last. No key moves.
        let a = self.load(flash, 0)?.then(|| self.key.epoch());
        let b = self.load(flash, 1)?.then(|| self.key.epoch());
        let current = match (a, b) {
            (Some(a), Some(b)) if b > a => 1,
            (Some(_), _) => 0,
            (None, _) => 1,
        };
        self.current = current;
        self.present = self.load(flash, current)?;
        if self.present && !self.blank(flash, 1 - current)? {
            self.erase(flash, 1 - current)?;
            self.spare_erased = true;
        }
        Ok(())
    }

    /// The key region's bytes in the flash.
    pub fn region(&self) -> Range<u32> {
        self.base..self.end
    }

    /// The key the next dump is sealed with, if there is one.
    pub fn key(&self) -> Option<&SealKey> {
        self.present.then_some(&self.key)
    }

    /// The epoch of the next sealed dump, if there is a key.
    pub fn epoch(&self) -> Option<u64> {
        self.present.then(|| self.key.epoch())
    }

    /// Installs the device's first key (`epoch` and `key` of the device key file that
    /// `flightrec keygen` writes; see [`parse_key_file`]). Refused with
    /// [`Error::KeyPresent`] if the device has a key: an installed key is only ever
    /// evolved, so an older one cannot be put back. A power cut while provisioning leaves
    /// no key (provision again) or the new one.
    pub fn provision<F: NorFlash>(
        &mut self,
        flash: &mut F,
        key: &SealKey,
    ) -> Result<(), Error<F::Error>> {
        self.check::<F>()?;
        if self.present {
            return Err(Error::KeyPresent);
        }
        self.erase(flash, 0)?;
        self.erase(flash, 1)?;
        self.write_key(flash, 0, key)?;
        self.current = 0;
        self.key.load(key.secret(), key.epoch());
        self.present = true;
        self.spare_erased = true;
        Ok(())
    }

    /// Moves to the next epoch (`k[e+1] = SHA-256(k[e] || "evolve")`), committed on flash
    /// in the three steps of the module docs; `k[e]` is erased from RAM and flash when it
    /// returns `Ok`. On an error the key in RAM is the newest one on flash, or there is
    /// none until the next mount (dumps are then stored unsealed, which a verifier
    /// reports).
    pub fn evolve<F: NorFlash>(&mut self, flash: &mut F) -> Result<(), Error<F::Error>> {
        self.check::<F>()?;
        if !self.present {
            return Err(Error::NoKey);
        }
        let (old, spare) = (self.current, 1 - self.current);
        if !self.spare_erased {
            self.erase(flash, spare)?;
        }
        self.spare_erased = false;
        // In place: `k[e]` is overwritten in RAM (the flash still holds it).
        self.key.evolve();
        if let Err(e) = self.write_key(flash, spare, &self.key) {
            // Not durable: back to the key on flash, or none (never seal with a key that
            // is not on the flash).
            self.present = self.load(flash, old).unwrap_or(false);
            return Err(e);
        }
        // `k[e+1]` is durable: from here on it is the key, and `k[e]` leaves the flash.
        self.current = spare;
        self.erase(flash, old)?;
        self.spare_erased = true;
        Ok(())
    }

    // ---- internals ----

    /// The pages are mounted, and `F` has the geometry they were mounted with.
    pub(crate) fn check<F: NorFlash>(&self) -> Result<(), Error<F::Error>> {
        if Geometry::<F>::OK && Geometry::<F>::PAGE == self.page {
            Ok(())
        } else {
            Err(Error::Geometry)
        }
    }

    fn page_addr(&self, page: u32) -> u32 {
        self.base + page * self.page
    }

    fn erase<F: NorFlash>(&self, flash: &mut F, page: u32) -> Result<(), Error<F::Error>> {
        let at = self.page_addr(page);
        flash.erase(at, at + self.page).map_err(Error::Flash)
    }

    /// Reads the record slot of `page` into the front of `slot`.
    fn read_slot<F: NorFlash>(
        &self,
        flash: &mut F,
        page: u32,
        slot: &mut Slot,
    ) -> Result<(), Error<F::Error>> {
        let dst = slot
            .0
            .get_mut(..Geometry::<F>::SLOT)
            .ok_or(Error::Geometry)?;
        FlashStore::<F>::read_from(flash, self.page_addr(page), dst)
    }

    /// Loads the key of `page` into `self.key`; `false` if the page holds none (the key
    /// is then unchanged).
    fn load<F: NorFlash>(&mut self, flash: &mut F, page: u32) -> Result<bool, Error<F::Error>> {
        let mut slot = Slot::new();
        let read = self.read_slot(flash, page, &mut slot);
        let found = read.is_ok() && parse_record(&slot.0, &mut self.key);
        wipe(&mut slot);
        read.map(|()| found)
    }

    fn blank<F: NorFlash>(&self, flash: &mut F, page: u32) -> Result<bool, Error<F::Error>> {
        let mut slot = Slot::new();
        let read = self.read_slot(flash, page, &mut slot);
        let blank = slot.0.iter().take(Geometry::<F>::SLOT).all(|&b| b == 0xFF);
        wipe(&mut slot);
        read.map(|()| blank)
    }

    /// Programs `key`'s record into erased `page` and reads it back.
    fn write_key<F: NorFlash>(
        &self,
        flash: &mut F,
        page: u32,
        key: &SealKey,
    ) -> Result<(), Error<F::Error>> {
        let mut slot = Slot::new();
        put_record(key, &mut slot.0);
        // The padding after the record, to the slot's end, is erased flash's `FF`: a fixed,
        // word-aligned run, stored inline.
        if let Some(pad) = slot
            .0
            .get_mut(KEY_RECORD_LEN..)
            .and_then(|p| p.first_chunk_mut::<PAD>())
        {
            *pad = [0xFF; PAD];
        }
        let written = match slot.0.get(..Geometry::<F>::SLOT) {
            Some(s) => flash.write(self.page_addr(page), s).map_err(Error::Flash),
            None => Err(Error::Geometry),
        };
        let mut back = Slot::new();
        let read = written.and_then(|()| self.read_slot(flash, page, &mut back));
        // Compared without early exit (no `memcmp` linked, no timing on key bytes).
        let diff = slot
            .0
            .iter()
            .zip(&back.0)
            .take(Geometry::<F>::SLOT)
            .fold(0, |d, (a, b)| d | (a ^ b));
        wipe(&mut slot);
        wipe(&mut back);
        read?;
        if diff == 0 {
            Ok(())
        } else {
            // Did not program as written (a worn or half-erased page).
            Err(Error::Corrupt)
        }
    }
}

impl<F: NorFlash> FlashStore<F> {
    /// As [`FlashStore::store`], and sealed with `keys`' key if there is one
    /// (`core/SEALING.md`): see [`DumpWriter::commit_sealed`]. Without a key the dump is
    /// stored unsealed.
    pub fn store_sealed<S: Source + ?Sized>(
        &mut self,
        source: &S,
        header: DumpHeader<'_>,
        scratch: &mut [u8],
        keys: &mut KeySlots,
    ) -> Result<DumpInfo, Error<F::Error>> {
        self.write_sealed(keys, |w| {
            dump::write_dump(w, source, header, scratch).map(|_| ())
        })
    }

    /// Begins a dump, has `write` write it (a recorder's `dump` or `dump_with_header`, or
    /// [`dump::write_dump`], into the writer given), seals it if `keys` holds a key, and
    /// commits it ([`DumpWriter::commit_sealed`]).
    pub fn write_sealed(
        &mut self,
        keys: &mut KeySlots,
        write: impl FnOnce(
            &mut Sealer<&mut DumpWriter<'_, F>>,
        ) -> Result<(), dump::DumpError<Error<F::Error>>>,
    ) -> Result<DumpInfo, Error<F::Error>> {
        // Key pages never mounted: not silently unsealed.
        keys.check::<F>()?;
        let mut w = self.begin()?;
        let mut sealer = Sealer::new(&mut w);
        write(&mut sealer)?;
        match keys.key() {
            Some(key) => {
                let mut frame = [0u8; SEAL_FRAME_LEN];
                sealer.seal_frame(key, &mut frame);
                w.commit_sealed(&frame, keys)
            }
            None => w.commit(),
        }
    }
}

impl<F: NorFlash> DumpWriter<'_, F> {
    /// Seals the dump and commits it: `keys` evolve to the next epoch on flash (the old
    /// key erased), then the seal frame is written and the dump committed. `frame` is
    /// [`Sealer::seal_frame`] of the bytes written, under `keys`' current key; a frame of
    /// another epoch is refused ([`Error::NoKey`]). A power cut anywhere leaves the dump
    /// incomplete (never committed with a seal whose key is still on the flash).
    pub fn commit_sealed(
        mut self,
        frame: &[u8; SEAL_FRAME_LEN],
        keys: &mut KeySlots,
    ) -> Result<DumpInfo, Error<F::Error>> {
        // Sync, type, length, version, then the epoch.
        let epoch = frame.get(5..13).and_then(|b| b.try_into().ok());
        if keys.epoch().map(u64::to_le_bytes) != epoch {
            return Err(Error::NoKey);
        }
        let (ours, theirs) = (self.region(), keys.region());
        if ours.start < theirs.end && theirs.start < ours.end {
            return Err(Error::Geometry);
        }
        keys.evolve(self.flash())?;
        self.push(frame)?;
        self.commit()
    }
}

/// The `(k[e], e)` of a key file as `flightrec keygen` writes it (`core/SEALING.md`
/// section 1: the lines `flightrec-seal-key 1`, `epoch <decimal>`, `key <64 hex digits>`),
/// for a device that receives its key file (over a UART, from a host file); `None` if it
/// is not one.
pub fn parse_key_file(text: &[u8]) -> Option<SealKey> {
    let mut lines = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    if lines.next()? != b"flightrec-seal-key 1" {
        return None;
    }
    let (mut epoch, mut key) = (None, None);
    for line in lines {
        if let Some(n) = line.strip_prefix(b"epoch ") {
            epoch = Some(decimal(n)?);
        } else if let Some(h) = line.strip_prefix(b"key ") {
            key = Some(hex32(h)?);
        } else if !line.is_empty() {
            return None;
        }
    }
    let mut secret = key?;
    let k = SealKey::new(secret, epoch?);
    secret.zeroize();
    Some(k)
}

fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let d = u64::from(d.checked_sub(b'0').filter(|d| *d < 10)?);
        n.checked_mul(10)?.checked_add(d)
    })
}

fn hex32(digits: &[u8]) -> Option<[u8; KEY_LEN]> {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    if digits.len() != 2 * KEY_LEN {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *o = nibble(*hi)? << 4 | nibble(*lo)?;
    }
    Some(out)
}
