//! A dump reader written from `WIRE-FORMAT.md` alone (own varints, own bitwise CRC-32), shared
//! by the test crates that check dumps.
#![allow(dead_code)] // each test crate uses part of it

pub const MAGIC: [u8; 8] = [0x89, 0x46, 0x4C, 0x52, 0x0D, 0x0A, 0x1A, 0x0A];

/// CRC-32, reflected polynomial EDB88320, bit by bit.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

struct In<'a>(&'a [u8]);

impl<'a> In<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let (&b, rest) = self.0.split_first().ok_or("unexpected end")?;
        self.0 = rest;
        Ok(b)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.0.len() {
            return Err(format!("{n} bytes wanted, {} left", self.0.len()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    /// Unsigned LEB128 of at most `max_bytes` bytes, value below 2^bits.
    fn varint(&mut self, max_bytes: u32, bits: u32) -> Result<u64, String> {
        let mut v: u64 = 0;
        for i in 0..max_bytes {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            let shift = 7 * i;
            if shift >= 64 || (shift > 0 && part >> (64 - shift) != 0) {
                return Err("varint overflows u64".into());
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                if bits < 64 && v >> bits != 0 {
                    return Err(format!("varint {v} overflows u{bits}"));
                }
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }
    fn u64(&mut self) -> Result<u64, String> {
        self.varint(10, 64)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(self.varint(5, 32)? as u32)
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u64()?;
        self.take(usize::try_from(n).map_err(|_| "length")?)
    }
    fn str(&mut self) -> Result<String, String> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|e| e.to_string())
    }
    fn option<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        match self.byte()? {
            0 => Ok(None),
            1 => Ok(Some(f(self)?)),
            b => Err(format!("option tag {b}")),
        }
    }
}

#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Header {
    pub reason_code: u8,
    pub reason_arg: u32,
    pub detail: String,
    pub trigger_time: u64,
    pub trigger_seq: Option<u64>,
    pub rate_hz: u64,
    pub base: u8,
    pub first_seq: u64,
    pub next_seq: u64,
    pub lost: u64,
    pub suppressed: u32,
    pub scope: Option<u32>,
    pub index: u32,
    pub capacity: u32,
    pub name: String,
    pub version: String,
    pub id: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Record {
    pub seq: u64,
    pub time: u64,
    pub kind: u8,
    pub level: u8,
    pub session: Option<u32>,
    pub payload: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct End {
    pub records: u64,
    pub lost: u64,
    pub out_of_scope: u64,
}

#[derive(Debug)]
pub struct Parsed {
    pub header: Header,
    pub records: Vec<Record>,
    pub end: End,
}

/// Parses exactly one whole dump (nothing after it).
pub fn parse(dump: &[u8]) -> Result<Parsed, String> {
    let mut input = In(dump);
    if input.take(8)? != MAGIC {
        return Err("bad magic".into());
    }
    if input.byte()? != 1 {
        return Err("unknown version".into());
    }
    let mut header = None;
    let mut records = Vec::new();
    let mut end = None;
    while !input.0.is_empty() {
        if end.is_some() {
            return Err("bytes after the end frame".into());
        }
        if input.byte()? != 0xFE {
            return Err("no sync".into());
        }
        let ty = input.byte()?;
        let len_bytes = input.take(2)?;
        let len = u16::from_le_bytes([len_bytes[0], len_bytes[1]]) as usize;
        let body = input.take(len)?;
        let crc = u32::from_le_bytes(input.take(4)?.try_into().unwrap());
        let mut checked = vec![ty];
        checked.extend_from_slice(len_bytes);
        checked.extend_from_slice(body);
        if crc32(&checked) != crc {
            return Err(format!("bad CRC on frame {}", ty as char));
        }
        let mut b = In(body);
        match ty {
            b'H' => {
                if header.is_some() {
                    return Err("second header".into());
                }
                header = Some(Header {
                    reason_code: b.byte()?,
                    reason_arg: b.u32()?,
                    detail: b.str()?,
                    trigger_time: b.u64()?,
                    trigger_seq: b.option(In::u64)?,
                    rate_hz: b.u64()?,
                    base: b.byte()?,
                    first_seq: b.u64()?,
                    next_seq: b.u64()?,
                    lost: b.u64()?,
                    suppressed: b.u32()?,
                    scope: b.option(In::u32)?,
                    index: b.u32()?,
                    capacity: b.u32()?,
                    name: b.str()?,
                    version: b.str()?,
                    id: b.bytes()?.to_vec(),
                });
                if !b.0.is_empty() {
                    return Err("header longer than its fields".into());
                }
            }
            b'R' => {
                if header.is_none() {
                    return Err("record before header".into());
                }
                let before = b.0.len();
                let rec = Record {
                    seq: b.u64()?,
                    time: b.u64()?,
                    kind: b.byte()?,
                    level: b.byte()?,
                    session: b.option(In::u32)?,
                    payload: Vec::new(),
                };
                if before - b.0.len() > 28 {
                    return Err("record head over 28 bytes".into());
                }
                records.push(Record {
                    payload: b.0.to_vec(),
                    ..rec
                });
            }
            b'E' => {
                end = Some(End {
                    records: b.u64()?,
                    lost: b.u64()?,
                    out_of_scope: b.u64()?,
                });
                if !b.0.is_empty() {
                    return Err("end frame longer than its fields".into());
                }
            }
            t => return Err(format!("unknown frame type {t}")),
        }
    }
    Ok(Parsed {
        header: header.ok_or("no header")?,
        records,
        end: end.ok_or("no end frame")?,
    })
}
