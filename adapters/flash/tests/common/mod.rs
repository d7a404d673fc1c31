//! A simulated NOR flash that can lose power at any operation, and a dump scenario.
#![allow(dead_code)]

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use flightrec_core::{
    Build, ClockInfo, DumpHeader, Kind, Level, Reason, RecordMeta, Ring, SessionId,
};

/// xorshift64*: deterministic, no dependency.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimError {
    PowerLost,
    Misaligned,
    OutOfBounds,
}

impl NorFlashError for SimError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            SimError::Misaligned => NorFlashErrorKind::NotAligned,
            SimError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            SimError::PowerLost => NorFlashErrorKind::Other,
        }
    }
}

/// NOR flash with strict checks (a word is written at most once between erases, writes only
/// clear bits, alignment) that loses power at operation number `cut_at`: that operation is
/// left half done (a word with a random subset of its bits programmed; a page with random
/// bytes erased, kept or half set) and every later operation fails.
///
/// Operations are counted per written word and per erased page.
pub struct CutFlash<const E: usize, const W: usize, const R: usize> {
    pub mem: Vec<u8>,
    /// Per word: written since the last erase.
    written: Vec<bool>,
    pub ops: u64,
    pub cut_at: Option<u64>,
    pub dead: bool,
    pub rng: Rng,
    pub erases: u64,
}

impl<const E: usize, const W: usize, const R: usize> CutFlash<E, W, R> {
    /// A new device: every page erased.
    pub fn new(size: usize, seed: u64) -> Self {
        CutFlash {
            mem: vec![0xFF; size],
            written: vec![false; size / W],
            ops: 0,
            cut_at: None,
            dead: false,
            rng: Rng(seed | 1),
            erases: 0,
        }
    }

    /// A device filled with random bits, as if never formatted (pages not erased).
    pub fn garbage(size: usize, seed: u64) -> Self {
        let mut f = Self::new(size, seed);
        for b in f.mem.iter_mut() {
            *b = f.rng.next() as u8;
        }
        f.written.fill(true);
        f
    }

    /// Power comes back: operations work again.
    pub fn power_on(&mut self) {
        self.dead = false;
        self.cut_at = None;
    }

    /// Counts an operation; `true` if power is lost at it.
    fn tick(&mut self) -> Result<bool, SimError> {
        if self.dead {
            return Err(SimError::PowerLost);
        }
        let now = self.ops;
        self.ops += 1;
        Ok(self.cut_at == Some(now))
    }
}

impl<const E: usize, const W: usize, const R: usize> ErrorType for CutFlash<E, W, R> {
    type Error = SimError;
}

impl<const E: usize, const W: usize, const R: usize> ReadNorFlash for CutFlash<E, W, R> {
    const READ_SIZE: usize = R;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimError> {
        let o = offset as usize;
        assert!(
            o % R == 0 && bytes.len() % R == 0,
            "misaligned read {o} +{}",
            bytes.len()
        );
        if self.dead {
            return Err(SimError::PowerLost);
        }
        let src = self
            .mem
            .get(o..o + bytes.len())
            .ok_or(SimError::OutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl<const E: usize, const W: usize, const R: usize> NorFlash for CutFlash<E, W, R> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        let (from, to) = (from as usize, to as usize);
        assert!(
            from % E == 0 && to % E == 0 && from <= to,
            "misaligned erase"
        );
        if to > self.mem.len() {
            return Err(SimError::OutOfBounds);
        }
        for page in (from..to).step_by(E) {
            let cut = self.tick()?;
            let range = page..page + E;
            if cut {
                let mode = self.rng.below(6);
                for i in range.clone() {
                    let r = self.rng.next() as u8;
                    self.mem[i] = match mode {
                        0 => self.mem[i],     // not started
                        1 => self.mem[i] | r, // bits half set
                        2 => {
                            if r & 1 == 0 {
                                0xFF
                            } else {
                                self.mem[i]
                            }
                        } // patchy
                        3 => {
                            if i < page + E / 2 {
                                0xFF
                            } else {
                                self.mem[i] | r
                            }
                        }
                        // Headers untouched, data half erased: only a CRC can tell.
                        4 => {
                            if i >= page + E / 2 {
                                0xFF
                            } else {
                                self.mem[i]
                            }
                        }
                        _ => {
                            if i >= page + 64 {
                                self.mem[i] | (r & 0x11)
                            } else {
                                self.mem[i]
                            }
                        }
                    };
                }
                // A half-erased page must be erased again before it is written.
                self.written[page / W..(page + E) / W].fill(true);
                self.dead = true;
                return Err(SimError::PowerLost);
            }
            self.mem[range].fill(0xFF);
            self.written[page / W..(page + E) / W].fill(false);
            self.erases += 1;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        let o = offset as usize;
        assert!(
            o % W == 0 && bytes.len() % W == 0,
            "misaligned write {o} +{}",
            bytes.len()
        );
        if o + bytes.len() > self.mem.len() {
            return Err(SimError::OutOfBounds);
        }
        for (k, word) in bytes.chunks(W).enumerate() {
            let at = o + k * W;
            assert!(
                !self.written[at / W],
                "word at {at:#x} written twice without an erase (NOR semantics)"
            );
            let cut = self.tick()?;
            self.written[at / W] = true;
            for (j, &b) in word.iter().enumerate() {
                let programmed = if cut {
                    // Some of the bits that should clear did.
                    b | (self.rng.next() as u8)
                } else {
                    b
                };
                self.mem[at + j] &= programmed;
            }
            if cut {
                self.dead = true;
                return Err(SimError::PowerLost);
            }
        }
        Ok(())
    }
}

pub const BUILD: Build<'static> = Build {
    name: "power-cut-test",
    version: "0.1",
    id: &[1, 2, 3, 4],
};

/// A ring filled with `records` records of pseudo-random sizes (seeded by `seed`).
pub fn ring_for(seed: u64, records: usize) -> Ring<2048> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut ring = Ring::new();
    for i in 0..records {
        let len = rng.below(120) as usize;
        let payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let meta = RecordMeta {
            time: i as u64 * 10,
            level: Level::ALL[i % 5],
            kind: Kind((i % 8) as u8),
            session: (i % 3 == 0).then_some(SessionId(i as u32)),
        };
        ring.push(&meta, &payload).unwrap();
    }
    ring
}

pub fn header(index: u32) -> DumpHeader<'static> {
    DumpHeader {
        reason: if index % 2 == 0 {
            Reason::FailedLogin
        } else {
            Reason::UntimelyDeath
        },
        detail: "",
        trigger_time: u64::from(index) * 1000,
        trigger_seq: Some(u64::from(index)),
        clock: ClockInfo::BOOT_MILLIS,
        first_seq: 0,
        next_seq: 0,
        lost: 0,
        suppressed: 0,
        scope: None,
        index,
        capacity: 0,
        build: BUILD,
    }
}

/// The wire-format bytes `write_dump` produces for dump number `index` of the scenario.
pub fn dump_bytes(index: u32) -> Vec<u8> {
    let ring = ring_for(u64::from(index), records_for(index));
    let mut out = Vec::new();
    let mut scratch = [0u8; 256];
    flightrec_core::write_dump(&mut out, &ring, header(index), &mut scratch).unwrap();
    out
}

/// Record counts vary so that dumps take from under one page to several.
pub fn records_for(index: u32) -> usize {
    [3, 12, 1, 25, 6, 0, 18, 9, 2, 14][index as usize % 10]
}

/// One dump parsed from the wire format (for assertions; stops at the first bad frame).
#[derive(Debug)]
pub struct Parsed {
    pub reason: Reason,
    pub detail: String,
    pub records: Vec<ParsedRecord>,
    pub complete: bool,
    pub len: usize,
}

#[derive(Debug)]
pub struct ParsedRecord {
    pub seq: u64,
    pub kind: Kind,
    pub level: u8,
    pub payload: Vec<u8>,
}

/// Parses one dump at the start of `b`.
pub fn parse_dump(b: &[u8]) -> Parsed {
    use flightrec_core::dump::{DumpEnd, RecordHead, MAGIC, SYNC};
    assert_eq!(&b[..8], &MAGIC, "dump magic");
    assert_eq!(b[8], 1, "version");
    let mut at = 9;
    let mut frame = || -> Option<(u8, Vec<u8>)> {
        let f = b.get(at..at + 4)?;
        if f[0] != SYNC {
            return None;
        }
        let len = u16::from_le_bytes([f[2], f[3]]) as usize;
        let body = b.get(at + 4..at + 4 + len)?.to_vec();
        let crc = b.get(at + 4 + len..at + 8 + len)?;
        let mut c = flightrec_core::crc::Crc32::new();
        c.update(&b[at + 1..at + 4 + len]);
        assert_eq!(c.finish().to_le_bytes(), crc, "frame CRC at {at}");
        let ty = f[1];
        at += 8 + len;
        Some((ty, body))
    };
    let (ty, body) = frame().expect("header frame");
    assert_eq!(ty, b'H');
    let (h, _): (DumpHeader<'_>, _) = postcard::take_from_bytes(&body).expect("header decodes");
    let mut parsed = Parsed {
        reason: h.reason,
        detail: h.detail.to_string(),
        records: Vec::new(),
        complete: false,
        len: 0,
    };
    while let Some((ty, body)) = frame() {
        match ty {
            b'R' => {
                let (head, payload): (RecordHead, _) =
                    postcard::take_from_bytes(&body).expect("record head");
                parsed.records.push(ParsedRecord {
                    seq: head.seq,
                    kind: head.kind,
                    level: head.level,
                    payload: payload.to_vec(),
                });
            }
            b'E' => {
                let _: (DumpEnd, _) = postcard::take_from_bytes(&body).expect("end frame");
                parsed.complete = true;
                break;
            }
            other => panic!("unexpected frame type {other}"),
        }
    }
    parsed.len = at;
    parsed
}

/// The epoch of a sealed dump (`bytes`: the dump and its seal frame, as read out of the
/// store) if its seal is the one `k0` (the provisioned key, epoch 0) derives for that
/// epoch over exactly the bytes before it; `None` if unsealed or the seal does not check.
pub fn sealed_epoch(bytes: &[u8], k0: &flightrec_core::seal::SealKey) -> Option<u64> {
    use flightrec_core::seal::{Seal, Sealer, SEAL_BODY_LEN, SEAL_FRAME_LEN};
    let (dump, frame) = bytes.split_at(bytes.len().checked_sub(SEAL_FRAME_LEN)?);
    let seal = Seal::parse(&frame[4..4 + SEAL_BODY_LEN])?;
    let key = k0.at_epoch(seal.epoch)?;
    let mut sealer = Sealer::new(Vec::new());
    embedded_io::Write::write_all(&mut sealer, dump).ok()?;
    let expected = sealer.take_seal(&key);
    (expected == seal && expected.frame()[..] == *frame).then_some(seal.epoch)
}

/// The key pages at `region`, mounted.
pub fn mount_keys<F: embedded_storage::nor_flash::NorFlash>(
    flash: &mut F,
    region: std::ops::Range<u32>,
) -> Result<flightrec_flash::keys::KeySlots, flightrec_flash::Error<F::Error>> {
    let mut keys = flightrec_flash::keys::KeySlots::new(region);
    keys.mount(flash)?;
    Ok(keys)
}
