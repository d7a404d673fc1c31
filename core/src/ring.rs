//! The byte ring: variable-length records, oldest whole records evicted first.
//!
//! Layout of one record inside the ring (little-endian, may wrap around the end):
//!
//! | bytes | field |
//! |---|---|
//! | 2 | payload length |
//! | 1 | kind |
//! | 1 | flags: bits 0-2 level, bit 3 "has session" |
//! | 8 | time in clock ticks |
//! | 0 or 4 | session id, when flagged |
//! | len | payload |
//!
//! Sequence numbers are not stored: records are contiguous and in order, so the ring keeps the
//! oldest record's sequence number and counts from there. A [`Cursor`] remembers a record's
//! sequence number and byte position; both stay valid until that record is evicted, which the
//! reader notices by comparing against the oldest sequence number, so it never yields a torn
//! record.

use crate::encode::{Encode, Writer};
pub use crate::error::RingError;
use crate::{Kind, Level, SessionId};

pub mod salvage;

/// Ring bytes taken by a record's header without / with a session id.
pub const HEADER_LEN: usize = 12;
const SESSION_LEN: usize = 4;
const FLAG_SESSION: u8 = 0x08;
const LEVEL_MASK: u8 = 0x07;

/// Largest payload one record can carry: a dump frame's body must hold it plus the
/// record's head (at most [`crate::frame::RECORD_HEAD_MAX`] bytes).
pub const MAX_PAYLOAD: usize = crate::frame::MAX_BODY - crate::frame::RECORD_HEAD_MAX;

/// Ring bytes of the record whose header starts with `word` (bytes 0-3, little-endian:
/// payload length in the low half, flags in the top byte).
#[inline(always)]
const fn record_size(word: u32) -> usize {
    let session = if (word >> 24) as u8 & FLAG_SESSION != 0 {
        SESSION_LEN
    } else {
        0
    };
    HEADER_LEN + session + (word & 0xffff) as usize
}

/// Everything about a record but its payload and sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RecordMeta {
    /// Clock ticks when it was recorded.
    pub time: u64,
    /// Severity.
    pub level: Level,
    /// What the payload is.
    pub kind: Kind,
    /// The session it belongs to, if any.
    pub session: Option<SessionId>,
}

impl RecordMeta {
    /// Ring bytes a record with this meta and `payload_len` bytes of payload takes.
    pub const fn ring_size(&self, payload_len: usize) -> usize {
        // Saturating: `push_with` takes any length, and a huge one must be refused, not
        // overflow.
        (HEADER_LEN
            + if self.session.is_some() {
                SESSION_LEN
            } else {
                0
            })
        .saturating_add(payload_len)
    }
}

/// A reader's place in the ring. Get one from [`Ring::oldest`]; it stays meaningful across
/// pushes and evictions (an evicted place is reported as lost records, never read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    seq: u64,
    pos: usize,
}

impl Cursor {
    /// Sequence number of the record this cursor reads next.
    pub const fn seq(&self) -> u64 {
        self.seq
    }

    /// A cursor at record `seq` of a [`Source`](crate::dump::Source) that numbers its
    /// records itself and keeps its own place (a merge of several rings). A ring reads only
    /// the cursors it made ([`Ring::oldest`], [`Ring::read`]): given this one, it reads from
    /// its first byte, which is not where record `seq` is.
    pub const fn at(seq: u64) -> Cursor {
        Cursor { seq, pos: 0 }
    }
}

/// What one read step found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// A whole record: its payload is the first `len` bytes of the output buffer.
    Record {
        /// Its sequence number.
        seq: u64,
        /// Its header.
        meta: RecordMeta,
        /// Payload bytes copied to the front of the output buffer.
        len: usize,
    },
    /// `n` records were evicted before they could be read; the cursor moved to the oldest.
    Lost(u64),
    /// The record `seq` has `len` payload bytes, more than the output buffer holds. The cursor
    /// moved past it.
    TooBig {
        /// Its sequence number.
        seq: u64,
        /// Its payload length.
        len: usize,
    },
    /// No record at or after the cursor yet.
    End,
}

/// Counters and positions of a ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RingStats {
    /// Sequence number of the oldest record held (equals `next_seq` when empty).
    pub first_seq: u64,
    /// Sequence number the next record will get.
    pub next_seq: u64,
    /// Records held.
    pub records: usize,
    /// Bytes held.
    pub used: usize,
    /// Capacity in bytes.
    pub capacity: usize,
    /// Records refused: too large to ever fit, unencodable, or refused by a ring whose
    /// bookkeeping is corrupt.
    pub rejected: u64,
    /// Records evicted to make room (the normal life of a ring, not a loss).
    pub evicted: u64,
}

/// A fixed-size ring of `N` bytes holding variable-length records.
///
/// When a record does not fit, the oldest whole records are evicted; a record is never cut.
/// [`retain_last`](Self::retain_last) keeps at most the last N records (Prosody's "last N
/// lines").
///
/// Its bookkeeping beside the bytes is 24 bytes on a 32-bit MCU (checked by the footprint
/// probes): the bytes held follow from the positions and the count, and the records
/// evicted from the oldest sequence number, so neither is stored.
///
/// Guarantee for hosts that allocate rings on the heap without building them on the stack:
/// all-zero bytes are a valid empty ring, equal to `Ring::new()` (every field is an integer or
/// a byte array). Changing that is a breaking change.
///
/// ```
/// use flightrec_core::{Ring, RecordMeta, Kind, Level, Read};
/// let mut ring: Ring<64> = Ring::new();
/// let meta = RecordMeta { time: 1, level: Level::Info, kind: Kind::FRAME, session: None };
/// for i in 0..10u8 {
///     ring.push(&meta, &[i; 10]).unwrap(); // 22 bytes each: only the last two fit
/// }
/// let seqs: Vec<u64> = ring.iter().map(|r| r.seq).collect();
/// assert_eq!(seqs, [8, 9]);
/// ```
#[derive(Clone)]
// On bare metal in this order, the bytes last, so that the bookkeeping sits at small offsets
// that Thumb loads and stores reach in 2-byte instructions. Elsewhere the compiler's layout.
#[cfg_attr(target_os = "none", repr(C))]
pub struct Ring<const N: usize> {
    /// Position of the oldest record.
    tail: usize,
    /// Position the next record is written at.
    head: usize,
    /// Records held.
    count: usize,
    /// Records refused, saturating.
    rejected: u32,
    /// Sequence number of the oldest record held; also the number of records evicted since
    /// the start (sequence numbers start at 0 and move on only by eviction).
    first_seq: u64,
    buf: [u8; N],
}

impl<const N: usize> Default for Ring<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Ring<N> {
    /// An empty ring (usable in a `static`).
    pub const fn new() -> Self {
        Ring {
            buf: [0; N],
            tail: 0,
            head: 0,
            count: 0,
            rejected: 0,
            first_seq: 0,
        }
    }

    /// Bytes held: from the positions, `N` when they meet with records held.
    #[inline]
    const fn used(&self) -> usize {
        if self.head > self.tail {
            self.head - self.tail
        } else if self.head < self.tail {
            N - self.tail + self.head
        } else if self.count == 0 {
            0
        } else {
            N
        }
    }

    /// Evicts the oldest records until at most `n` are held.
    pub fn retain_last(&mut self, n: usize) {
        while self.count > n && self.evict_oldest(self.used()).is_ok() {}
    }

    /// Appends a record, evicting the oldest whole records as needed. Returns its sequence
    /// number.
    #[inline]
    pub fn push(&mut self, meta: &RecordMeta, payload: &[u8]) -> Result<u64, RingError> {
        self.push_with(meta, payload.len(), |a, b| {
            let (pa, pb) = payload
                .split_at_checked(a.len())
                .ok_or(RingError::Corrupt)?;
            if pb.len() != b.len() {
                return Err(RingError::Corrupt);
            }
            crate::bytes::copy(a, pa);
            crate::bytes::copy(b, pb);
            Ok(())
        })
    }

    /// Appends `value`'s encoding as a record's payload, written straight into the ring
    /// (one pass to size it, one to write it): no intermediate buffer. If the encoding
    /// writes other bytes than it counted, nothing is appended (records evicted to make room
    /// stay evicted) and the record is counted as rejected.
    ///
    /// One routine whether or not the record wraps around the ring's end: header and
    /// payload go through one [`Writer`] over the slot's two pieces. A firmware's recorder
    /// has one instance (it encodes through `dyn`), so this is its whole append path.
    pub fn push_event<T: Encode + ?Sized>(
        &mut self,
        meta: &RecordMeta,
        value: &T,
    ) -> Result<u64, RingError> {
        let result = self.push_encoded(meta, value);
        self.count_rejected(result)
    }

    /// Counts a refused push in [`RingStats::rejected`].
    #[inline(always)]
    fn count_rejected(&mut self, result: Result<u64, RingError>) -> Result<u64, RingError> {
        if result.is_err() {
            self.rejected = self.rejected.saturating_add(1);
        }
        result
    }

    #[inline(always)]
    fn push_encoded<T: Encode + ?Sized>(
        &mut self,
        meta: &RecordMeta,
        value: &T,
    ) -> Result<u64, RingError> {
        let len = value.encoded_len();
        let needed = meta.ring_size(len);
        if needed > N || len > MAX_PAYLOAD {
            return Err(RingError::TooLarge);
        }
        self.make_room(needed)?;
        let (a, b) = self.slices_at_mut(self.head, needed)?;
        let mut w = Writer::new(a, b);
        Self::write_header(&mut w, meta, len);
        value.encode(&mut w);
        // The slot holds exactly `needed` bytes: any other length (more is an overflow) is
        // an encoding that counted differently than it wrote.
        if w.len() != needed {
            return Err(RingError::Encode);
        }
        Ok(self.commit(needed))
    }

    /// Writes a record's header (12 bytes, 16 with a session) for `len` payload bytes.
    #[inline(always)]
    fn write_header(w: &mut Writer<'_>, meta: &RecordMeta, len: usize) {
        w.bytes(&Self::header_word(meta, len).to_le_bytes());
        w.bytes(&meta.time.to_le_bytes());
        if let Some(id) = meta.session {
            w.bytes(&id.0.to_le_bytes());
        }
    }

    /// Header bytes 0-3 as one little-endian word: length, kind, flags.
    #[inline(always)]
    fn header_word(meta: &RecordMeta, len: usize) -> u32 {
        let flags = (meta.level as u8)
            | if meta.session.is_some() {
                FLAG_SESSION
            } else {
                0
            };
        u32::from(len as u16) | (u32::from(meta.kind.0) << 16) | (u32::from(flags) << 24)
    }

    /// Evicts the oldest records until `needed` bytes are free.
    #[inline(always)]
    fn make_room(&mut self, needed: usize) -> Result<(), RingError> {
        let mut used = self.used();
        while N - used < needed {
            used -= self.evict_oldest(used)?;
        }
        Ok(())
    }

    /// Takes the `needed` bytes written at the head as the newest record; its sequence
    /// number.
    #[inline(always)]
    fn commit(&mut self, needed: usize) -> u64 {
        self.head = self.wrap(self.head + needed);
        self.count += 1;
        self.first_seq + self.count as u64 - 1
    }

    /// Appends a record of `len` payload bytes that `fill` writes into the ring's two pieces
    /// (the second is empty unless the payload wraps). If `fill` fails, nothing is appended
    /// (records evicted to make room stay evicted) and the record is counted as rejected.
    #[inline]
    pub fn push_with(
        &mut self,
        meta: &RecordMeta,
        len: usize,
        fill: impl FnOnce(&mut [u8], &mut [u8]) -> Result<(), RingError>,
    ) -> Result<u64, RingError> {
        let result = self.push_inner(meta, len, fill);
        self.count_rejected(result)
    }

    /// [`push_with`](Self::push_with) but for the count of rejections: the daemon's hot path,
    /// inlined into each caller, with fixed-size header stores for a record that does not
    /// wrap. (A firmware's recorder appends through [`push_event`](Self::push_event).)
    #[inline(always)]
    fn push_inner(
        &mut self,
        meta: &RecordMeta,
        len: usize,
        fill: impl FnOnce(&mut [u8], &mut [u8]) -> Result<(), RingError>,
    ) -> Result<u64, RingError> {
        let needed = meta.ring_size(len);
        if needed > N || len > MAX_PAYLOAD {
            return Err(RingError::TooLarge);
        }
        self.make_room(needed)?;
        // Header bytes 0-3 (length, kind, flags) as one word and bytes 4-11 (time) as another:
        // two plain stores, where bytes assembled on the stack and copied would cost a
        // failed store-to-load forward.
        let word = Self::header_word(meta, len);
        match self
            .buf
            .get_mut(self.head..)
            .and_then(|s| s.get_mut(..needed))
        {
            // Fast path, the record does not wrap: fixed-size header stores (no memcpy call)
            // and one payload piece.
            Some(slot) => {
                let (first, rest) = slot
                    .split_first_chunk_mut::<4>()
                    .ok_or(RingError::Corrupt)?;
                *first = word.to_le_bytes();
                let (time, rest) = rest
                    .split_first_chunk_mut::<8>()
                    .ok_or(RingError::Corrupt)?;
                *time = meta.time.to_le_bytes();
                let payload = match meta.session {
                    Some(id) => {
                        let (session, payload) = rest
                            .split_first_chunk_mut::<SESSION_LEN>()
                            .ok_or(RingError::Corrupt)?;
                        *session = id.0.to_le_bytes();
                        payload
                    }
                    None => rest,
                };
                fill(payload, &mut [])?;
            }
            None => self.write_wrapped(meta, len, fill)?,
        }
        Ok(self.commit(needed))
    }

    /// The rest of [`push_with`](Self::push_with) for a record that wraps around the ring's
    /// end: kept out of line so that the common case stays short.
    #[cold]
    #[inline(never)]
    fn write_wrapped(
        &mut self,
        meta: &RecordMeta,
        len: usize,
        fill: impl FnOnce(&mut [u8], &mut [u8]) -> Result<(), RingError>,
    ) -> Result<(), RingError> {
        let header_len = meta.ring_size(0);
        let (a, b) = self.slices_at_mut(self.head, header_len)?;
        Self::write_header(&mut Writer::new(a, b), meta, len);
        let (a, b) = self.slices_at_mut(self.wrap(self.head + header_len), len)?;
        fill(a, b)
    }

    /// Removes the oldest record (if any). Returns whether one was removed.
    pub fn pop_oldest(&mut self) -> bool {
        self.count > 0 && self.evict_oldest(self.used()).is_ok()
    }

    /// Drops every record. Sequence numbers go on from where they were, so cursors held by
    /// readers see the dropped records as lost.
    pub fn clear(&mut self) {
        self.first_seq += self.count as u64;
        self.tail = self.head;
        self.count = 0;
    }

    /// Counters and positions.
    pub fn stats(&self) -> RingStats {
        RingStats {
            first_seq: self.first_seq,
            next_seq: self.first_seq + self.count as u64,
            records: self.count,
            used: self.used(),
            capacity: N,
            rejected: u64::from(self.rejected),
            evicted: self.first_seq,
        }
    }

    /// Number of records held.
    pub const fn len(&self) -> usize {
        self.count
    }

    /// Whether the ring holds no record.
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// A cursor at the oldest record held.
    pub const fn oldest(&self) -> Cursor {
        Cursor {
            seq: self.first_seq,
            pos: self.tail,
        }
    }

    /// Copies the record at `cursor` into `out` and advances the cursor. See [`Read`].
    pub fn read(&self, cursor: &mut Cursor, out: &mut [u8]) -> Result<Read, RingError> {
        if cursor.seq < self.first_seq {
            let lost = self.first_seq - cursor.seq;
            *cursor = self.oldest();
            return Ok(Read::Lost(lost));
        }
        if cursor.seq >= self.first_seq + self.count as u64 {
            return Ok(Read::End);
        }
        let (meta, header_len, len) = self.header_at(cursor.pos)?;
        let seq = cursor.seq;
        let payload_pos = self.wrap(cursor.pos + header_len);
        cursor.seq += 1;
        cursor.pos = self.wrap(payload_pos + len);
        let Some(dst) = out.get_mut(..len) else {
            return Ok(Read::TooBig { seq, len });
        };
        self.read_at(payload_pos, dst)?;
        Ok(Read::Record { seq, meta, len })
    }

    /// Iterates the records held, oldest first, without copying payloads.
    pub fn iter(&self) -> Iter<'_, N> {
        Iter {
            ring: self,
            cursor: self.oldest(),
            left: self.count,
        }
    }

    /// Parses the record header at `pos`: (meta, header length, payload length).
    fn header_at(&self, pos: usize) -> Result<(RecordMeta, usize, usize), RingError> {
        // All 16 bytes a header can take, whether or not this one has a session id: one loop.
        let h: [u8; HEADER_LEN + SESSION_LEN] = self.bytes_at(pos);
        let [l0, l1, kind, flags, t0, t1, t2, t3, t4, t5, t6, t7, s0, s1, s2, s3] = h;
        let len = u16::from_le_bytes([l0, l1]) as usize;
        let level = Level::from_u8(flags & LEVEL_MASK).ok_or(RingError::Corrupt)?;
        let (session, header_len) = if flags & FLAG_SESSION != 0 {
            (
                Some(SessionId(u32::from_le_bytes([s0, s1, s2, s3]))),
                HEADER_LEN + SESSION_LEN,
            )
        } else {
            (None, HEADER_LEN)
        };
        if header_len + len > self.used() {
            return Err(RingError::Corrupt);
        }
        let meta = RecordMeta {
            time: u64::from_le_bytes([t0, t1, t2, t3, t4, t5, t6, t7]),
            level,
            kind: Kind(kind),
            session,
        };
        Ok((meta, header_len, len))
    }

    /// The `K` ring bytes from `pos` (below `N`) on, wrapping around the end: a byte loop,
    /// which for a header's few bytes is smaller than two copies and never fails.
    fn bytes_at<const K: usize>(&self, mut pos: usize) -> [u8; K] {
        let mut out = [0u8; K];
        for b in out.iter_mut() {
            pos = self.wrap(pos);
            *b = self.buf.get(pos).copied().unwrap_or(0);
            pos += 1;
        }
        out
    }

    /// Evicts the oldest record of a ring holding `used` bytes; returns its size in ring
    /// bytes. On bare metal out of line: one copy for the push and the trim (less code on a
    /// Cortex-M), and a leaf whose frame is off the stack before the payload is encoded.
    /// Elsewhere inlined into the push, the daemon's hot path.
    #[cfg_attr(target_os = "none", inline(never))]
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn evict_oldest(&mut self, used: usize) -> Result<usize, RingError> {
        if self.count == 0 {
            return Err(RingError::Corrupt);
        }
        // Fast path: the first header bytes do not wrap (a fixed-size load, no memcpy call).
        let h = match self.buf.get(self.tail..).and_then(|s| s.first_chunk::<4>()) {
            Some(h) => *h,
            None => self.bytes_at::<4>(self.tail),
        };
        // One 32-bit load rather than byte loads: length in the low half, flags on top.
        let size = record_size(u32::from_le_bytes(h));
        // Bytes and count must run out together: a ring they disagree on was not validated.
        if size > used || (size == used && self.count != 1) {
            return Err(RingError::Corrupt);
        }
        self.tail = self.wrap(self.tail + size);
        self.count -= 1;
        self.first_seq += 1;
        Ok(size)
    }

    /// Maps a position in `0..2N` into `0..N`.
    #[inline(always)]
    const fn wrap(&self, pos: usize) -> usize {
        if pos >= N {
            pos - N
        } else {
            pos
        }
    }

    /// The `len` ring bytes at `pos`, mutable, as two slices.
    #[inline(always)]
    fn slices_at_mut(
        &mut self,
        pos: usize,
        len: usize,
    ) -> Result<(&mut [u8], &mut [u8]), RingError> {
        let first = len.min(N.saturating_sub(pos));
        let (lo, hi) = self
            .buf
            .split_at_mut_checked(pos)
            .ok_or(RingError::Corrupt)?;
        let a = hi.get_mut(..first).ok_or(RingError::Corrupt)?;
        let b = lo.get_mut(..len - first).ok_or(RingError::Corrupt)?;
        Ok((a, b))
    }

    /// Copies ring bytes at `pos` into `dst`, wrapping around the end.
    #[inline(always)]
    fn read_at(&self, pos: usize, dst: &mut [u8]) -> Result<(), RingError> {
        let (a, b) = self.slices_at(pos, dst.len())?;
        let (da, db) = dst.split_at_mut(a.len());
        crate::bytes::copy(da, a);
        crate::bytes::copy(db, b);
        Ok(())
    }

    /// The `len` ring bytes at `pos` as two slices (the second is empty unless they wrap).
    fn slices_at(&self, pos: usize, len: usize) -> Result<(&[u8], &[u8]), RingError> {
        let first = len.min(N.saturating_sub(pos));
        let a = self.buf.get(pos..pos + first).ok_or(RingError::Corrupt)?;
        let b = self.buf.get(..len - first).ok_or(RingError::Corrupt)?;
        Ok((a, b))
    }
}

/// A record seen in place by [`Ring::iter`].
#[derive(Clone, Copy, Debug)]
pub struct RecordRef<'a> {
    /// Its sequence number.
    pub seq: u64,
    /// Its header.
    pub meta: RecordMeta,
    /// The payload, as two pieces when it wraps around the ring's end.
    pub payload: (&'a [u8], &'a [u8]),
}

impl RecordRef<'_> {
    /// Payload length.
    pub fn len(&self) -> usize {
        self.payload.0.len() + self.payload.1.len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the payload to the front of `out`, returning the copied part (`None` if `out`
    /// is too small).
    pub fn copy_to<'o>(&self, out: &'o mut [u8]) -> Option<&'o [u8]> {
        let (a, b) = self.payload;
        let dst = out.get_mut(..a.len() + b.len())?;
        let (da, db) = dst.split_at_mut(a.len());
        crate::bytes::copy(da, a);
        crate::bytes::copy(db, b);
        Some(dst)
    }
}

/// Iterator over a ring's records, oldest first. A ring whose bookkeeping is inconsistent
/// ends the iteration early rather than yield garbage.
pub struct Iter<'a, const N: usize> {
    ring: &'a Ring<N>,
    cursor: Cursor,
    left: usize,
}

impl<'a, const N: usize> Iterator for Iter<'a, N> {
    type Item = RecordRef<'a>;

    fn next(&mut self) -> Option<RecordRef<'a>> {
        if self.left == 0 {
            return None;
        }
        let (meta, header_len, len) = self.ring.header_at(self.cursor.pos).ok()?;
        let payload = self
            .ring
            .slices_at(self.ring.wrap(self.cursor.pos + header_len), len)
            .ok()?;
        let seq = self.cursor.seq;
        self.cursor.seq += 1;
        self.cursor.pos = self.ring.wrap(self.cursor.pos + header_len + len);
        self.left -= 1;
        Some(RecordRef { seq, meta, payload })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}
