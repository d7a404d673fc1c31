//! The frame codec: the constants of a dump's container, the one frame writer and the one
//! frame parser (`WIRE-FORMAT.md` sections 2 and 3). Below both the ring (which sizes its
//! records so that a record frame's length field holds them) and the dump writer; the
//! adapters that write frames themselves (the Linux ring file) or read them (the decoder,
//! the flash store's header) call it too.
//!
//! ```text
//! dump  = MAGIC (8 bytes) VERSION (1 byte) frame*
//! frame = SYNC type len:u16le body[len] crc32le(type len body)
//! ```
//!
//! ```
//! use flightrec_core::frame::{self, FrameWriter, Parsed, FRAME_RECORD};
//!
//! let mut out = Vec::new();
//! let mut w = FrameWriter::new(&mut out);
//! w.frame_bytes(FRAME_RECORD, b"head", b"payload").unwrap();
//! match frame::parse(&out) {
//!     Parsed::Whole { ty, body, len } => {
//!         assert_eq!((ty, &out[body], len), (FRAME_RECORD, &b"headpayload"[..], out.len()));
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

use core::ops::Range;

use embedded_io::Write;

use crate::crc::{crc32, Crc32};
use crate::encode::{self, Encode};
use crate::error::DumpError;

/// First bytes of every dump (PNG-style: a non-ASCII byte, a name, CR LF, Ctrl-Z, LF, so that
/// text-mode mangling is detectable).
pub const MAGIC: [u8; 8] = [0x89, b'F', b'L', b'R', b'\r', b'\n', 0x1A, b'\n'];
/// Format version written after the magic. A decoder refuses versions it does not know.
pub const VERSION: u8 = 1;
/// First byte of every frame.
pub const SYNC: u8 = 0xFE;
/// Frame type of the header.
pub const FRAME_HEADER: u8 = b'H';
/// Frame type of a record.
pub const FRAME_RECORD: u8 = b'R';
/// Frame type of the end frame.
pub const FRAME_END: u8 = b'E';
/// Bytes a frame adds around its body: sync, type, length, CRC.
pub const FRAME_OVERHEAD: usize = 8;
/// Largest body a frame carries (its length field is 16 bits).
pub const MAX_BODY: usize = u16::MAX as usize;
/// Largest encoding of a [`crate::RecordHead`].
pub const RECORD_HEAD_MAX: usize = 28;

/// Writes frames to any [`embedded_io::Write`]: a UART or a flash store's writer, a byte
/// slice (a memory-mapped region: `&mut [u8]`), a `Vec<u8>` on hosts (embedded-io's `std`
/// implementations). One encoder for every sink, in the manner of postcard's flavours.
///
/// Every byte it writes, the ones no CRC covers included, goes through one routine, which
/// keeps the running CRC and the byte count: a further observer of the stream (a hash over
/// every frame) belongs there, beside the CRC, not in a second writer.
#[derive(Debug)]
pub struct FrameWriter<W> {
    w: W,
    bytes: usize,
    /// Of every byte written; a frame starts it afresh after its sync byte. Running it over
    /// the bytes no CRC covers too (the magic, each sync byte and CRC) keeps one write
    /// routine, smaller on a Cortex-M than a second, checked one.
    crc: Crc32,
}

impl<W: Write> FrameWriter<W> {
    /// A writer to `w`, nothing written yet.
    pub const fn new(w: W) -> Self {
        FrameWriter {
            w,
            bytes: 0,
            crc: Crc32::new(),
        }
    }

    /// Bytes written so far.
    pub const fn bytes(&self) -> usize {
        self.bytes
    }

    /// The sink back.
    pub fn into_inner(self) -> W {
        self.w
    }

    /// Flushes the sink.
    pub fn flush(&mut self) -> Result<(), DumpError<W::Error>> {
        self.w.flush().map_err(DumpError::Io)
    }

    /// The start of a dump: [`MAGIC`] and [`VERSION`].
    pub fn preamble(&mut self) -> Result<(), DumpError<W::Error>> {
        self.raw(&MAGIC)?;
        self.raw(&[VERSION])
    }

    fn raw(&mut self, mut b: &[u8]) -> Result<(), DumpError<W::Error>> {
        self.crc.update(b);
        // Our own loop rather than `write_all`, which panics on a writer that accepts nothing.
        while !b.is_empty() {
            match self.w.write(b).map_err(DumpError::Io)? {
                0 => return Err(DumpError::WriteZero),
                n => {
                    self.bytes += n;
                    b = b.get(n..).unwrap_or(&[]);
                }
            }
        }
        Ok(())
    }

    /// Writes one frame whose body is `head`'s encoding, made in `buf`, then `tail`. One
    /// routine for every kind of frame (`head` through `dyn`: one copy of the code).
    pub fn frame(
        &mut self,
        ty: u8,
        head: &dyn Encode,
        buf: &mut [u8],
        tail: &[u8],
    ) -> Result<(), DumpError<W::Error>> {
        let head_len = encode::to_slice(head, buf).ok_or(DumpError::ScratchTooSmall)?;
        let head = buf.get(..head_len).unwrap_or(&[]);
        self.frame_bytes(ty, head, tail)
    }

    /// Writes one frame whose body is `head` then `tail` (bytes already encoded).
    pub fn frame_bytes(
        &mut self,
        ty: u8,
        head: &[u8],
        tail: &[u8],
    ) -> Result<(), DumpError<W::Error>> {
        let len = u16::try_from(head.len() + tail.len()).map_err(|_| DumpError::FrameTooLong)?;
        let [l0, l1] = len.to_le_bytes();
        self.raw(&[SYNC])?;
        self.crc = Crc32::new();
        self.raw(&[ty, l0, l1])?;
        self.raw(head)?;
        self.raw(tail)?;
        let crc = self.crc.finish();
        self.raw(&crc.to_le_bytes())
    }
}

/// What [`parse`] found at the start of its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A frame whose CRC checks.
    Whole {
        /// Its type.
        ty: u8,
        /// Where its body is in the bytes given.
        body: Range<usize>,
        /// Bytes the whole frame takes.
        len: usize,
    },
    /// The bytes end before the frame does (the claimed length may also be garbage).
    Truncated {
        /// Bytes the frame claims to take (its length field plus [`FRAME_OVERHEAD`]), or
        /// [`FRAME_OVERHEAD`] when not even the length is there.
        claimed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// A frame of the length it claims, whose CRC does not check.
    BadCrc {
        /// Its type byte (not to be trusted).
        ty: u8,
        /// Its length field (not to be trusted).
        len: u16,
    },
    /// The first byte is not [`SYNC`] (or there is none).
    NotAFrame,
}

/// Looks for a frame at the start of `bytes`, checked with the core's CRC-32.
pub fn parse(bytes: &[u8]) -> Parsed {
    parse_with(bytes, crc32)
}

/// [`parse`] with another implementation of the same CRC-32 (a host decoder's faster one).
/// Reads at most one frame ([`FRAME_OVERHEAD`] + [`MAX_BODY`] bytes), whatever `bytes` holds.
pub fn parse_with(bytes: &[u8], crc: impl FnOnce(&[u8]) -> u32) -> Parsed {
    let available = bytes.len();
    let (ty, len) = match bytes.first_chunk::<4>() {
        Some(&[SYNC, ty, l0, l1]) => (ty, u16::from_le_bytes([l0, l1])),
        Some(_) => return Parsed::NotAFrame,
        None if bytes.first() != Some(&SYNC) => return Parsed::NotAFrame,
        None => {
            return Parsed::Truncated {
                claimed: FRAME_OVERHEAD,
                available,
            }
        }
    };
    let body = 4..4 + usize::from(len);
    let whole = FRAME_OVERHEAD + usize::from(len);
    let (Some(checked), Some(&stored)) = (
        bytes.get(1..body.end),
        bytes.get(body.end..).and_then(|b| b.first_chunk::<4>()),
    ) else {
        return Parsed::Truncated {
            claimed: whole,
            available,
        };
    };
    if crc(checked) != u32::from_le_bytes(stored) {
        return Parsed::BadCrc { ty, len };
    }
    Parsed::Whole {
        ty,
        body,
        len: whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn written(ty: u8, head: &[u8], tail: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        FrameWriter::new(&mut out)
            .frame_bytes(ty, head, tail)
            .unwrap();
        out
    }

    #[test]
    fn a_written_frame_parses_whole_and_every_cut_is_truncated() {
        let f = written(FRAME_RECORD, b"ab", b"cde");
        assert_eq!(f.len(), FRAME_OVERHEAD + 5);
        assert_eq!(
            parse(&f),
            Parsed::Whole {
                ty: FRAME_RECORD,
                body: 4..9,
                len: f.len()
            }
        );
        let mut trailing = f.clone();
        trailing.extend_from_slice(&[SYNC, 0, 0]);
        assert!(matches!(parse(&trailing), Parsed::Whole { len, .. } if len == f.len()));
        assert_eq!(parse(&[]), Parsed::NotAFrame);
        for cut in 1..f.len() {
            let claimed = if cut < 4 { FRAME_OVERHEAD } else { f.len() };
            assert_eq!(
                parse(&f[..cut]),
                Parsed::Truncated {
                    claimed,
                    available: cut
                },
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let f = written(FRAME_END, b"\x01\x02", b"");
        for i in 0..f.len() * 8 {
            let mut g = f.clone();
            g[i / 8] ^= 1 << (i % 8);
            match parse(&g) {
                Parsed::Whole { .. } => panic!("bit {i} not caught"),
                Parsed::NotAFrame => assert_eq!(i / 8, 0),
                Parsed::Truncated { .. } => assert!((16..32).contains(&i), "bit {i}"),
                Parsed::BadCrc { .. } => {}
            }
        }
    }

    #[test]
    fn the_caller_s_crc_is_the_one_used() {
        let f = written(FRAME_HEADER, b"x", b"");
        assert!(matches!(parse_with(&f, |_| 0), Parsed::BadCrc { .. }));
        assert!(matches!(parse_with(&f, crc32), Parsed::Whole { .. }));
    }

    #[test]
    fn sinks_get_the_same_bytes_and_refusals_are_errors() {
        let f = written(FRAME_RECORD, b"head", b"tail");
        let mut slot = [0u8; 16];
        FrameWriter::new(&mut slot[..])
            .frame_bytes(FRAME_RECORD, b"head", b"tail")
            .unwrap();
        assert_eq!(&slot[..], &f[..]);
        let mut short = [0u8; 15];
        assert!(matches!(
            FrameWriter::new(&mut short[..]).frame_bytes(FRAME_RECORD, b"head", b"tail"),
            Err(DumpError::Io(_))
        ));
        let big = std::vec![0u8; MAX_BODY + 1];
        let mut out = Vec::new();
        let mut w = FrameWriter::new(&mut out);
        assert_eq!(
            w.frame_bytes(FRAME_RECORD, &big, b""),
            Err(DumpError::FrameTooLong)
        );
        assert_eq!(w.bytes(), 0);
        assert_eq!(
            w.frame(FRAME_END, &crate::encode::Raw(b"abc"), &mut [0; 2], b""),
            Err(DumpError::ScratchTooSmall)
        );
        assert!(out.is_empty());
    }
}
