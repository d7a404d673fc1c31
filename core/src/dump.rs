//! The dump stream: a header, the records, an end frame, each checked by CRC-32.
//!
//! The format is specified in `WIRE-FORMAT.md` beside this crate; this module is its writer
//! and holds the structures both sides share. In short:
//!
//! ```text
//! dump   = MAGIC (8 bytes) VERSION (1 byte) frame(H) frame(R)* frame(E)
//! frame  = 0xFE type len:u16le body[len] crc32le(type len body)
//! H body = postcard(DumpHeader)          R body = postcard(RecordHead) payload
//! E body = postcard(DumpEnd)
//! ```

use embedded_io::Write;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::encode::{Encode, Writer};
pub use crate::error::DumpError;
use crate::frame::FrameWriter;
use crate::ring::{Cursor, Read, RecordMeta, Ring, RingError, RingStats};
use crate::trigger::{DumpOrder, Reason};
use crate::{Kind, SessionId, SharedRing};

pub use crate::frame::{
    FRAME_END, FRAME_HEADER, FRAME_OVERHEAD, FRAME_RECORD, MAGIC, RECORD_HEAD_MAX, SYNC, VERSION,
};

/// What the clock's ticks mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TimeBase {
    /// Ticks since boot (or process start).
    Boot,
    /// Ticks since 1970-01-01T00:00:00Z.
    Unix,
    /// A base this version does not know.
    Unknown(u8),
}

impl Serialize for TimeBase {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let code = match *self {
            TimeBase::Boot => 0,
            TimeBase::Unix => 1,
            TimeBase::Unknown(c) => c,
        };
        ser.serialize_u8(code)
    }
}

impl<'de> Deserialize<'de> for TimeBase {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        Ok(match u8::deserialize(de)? {
            0 => TimeBase::Boot,
            1 => TimeBase::Unix,
            c => TimeBase::Unknown(c),
        })
    }
}

/// How to read a dump's tick values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClockInfo {
    /// Ticks per second.
    pub rate_hz: u64,
    /// What tick 0 is.
    pub base: TimeBase,
}

impl ClockInfo {
    /// Milliseconds since boot.
    pub const BOOT_MILLIS: ClockInfo = ClockInfo {
        rate_hz: 1_000,
        base: TimeBase::Boot,
    };
    /// Nanoseconds since the Unix epoch.
    pub const UNIX_NANOS: ClockInfo = ClockInfo {
        rate_hz: 1_000_000_000,
        base: TimeBase::Unix,
    };
}

/// Identity of the program that wrote a dump. A decoder uses `id` to refuse an ELF that does
/// not belong to the firmware (defmt frames decoded with the wrong ELF print wrong logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build<'a> {
    /// Program name.
    pub name: &'a str,
    /// Version string.
    pub version: &'a str,
    /// Build identity (e.g. a GNU build-id or a hash of the image); may be empty.
    pub id: &'a [u8],
}

/// The `next_seq` of a header that leaves its range open: a ring region (each region of
/// the Linux ring file), whose records are whatever its circular area holds when it is
/// read, in any order, and which is never sealed.
pub const OPEN_RANGE: u64 = u64::MAX;

/// A dump's header frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpHeader<'a> {
    /// Why the dump was taken.
    pub reason: Reason,
    /// Extra words on the reason (a named event's name, a signal's name); may be empty.
    pub detail: &'a str,
    /// When the trigger fired, in ticks.
    pub trigger_time: u64,
    /// The record that fired it, if any.
    pub trigger_seq: Option<u64>,
    /// How to read ticks.
    pub clock: ClockInfo,
    /// Oldest record held when the dump began.
    pub first_seq: u64,
    /// Sequence number the next record would have got when the dump began: the dump holds
    /// at most `first_seq..next_seq`. [`OPEN_RANGE`] in a ring region's header.
    pub next_seq: u64,
    /// Records refused or dropped before they reached the ring, since start (too large,
    /// unencodable, dropped by a full queue in an adapter).
    pub lost: u64,
    /// Triggers the rate limit refused since the previous dump.
    pub suppressed: u32,
    /// Only records of this session (and records with no session) are in the dump.
    pub scope: Option<SessionId>,
    /// Dumps ordered before this one since start.
    pub index: u32,
    /// Ring capacity in bytes.
    pub capacity: u32,
    /// Who wrote it.
    pub build: Build<'a>,
}

impl<'a> DumpHeader<'a> {
    /// The header of the dump `order` asks for: its reason (a named event's name taken from
    /// `named`, the trigger configuration's list), trigger, scope, index and suppressed
    /// count, with `lost`, `clock` and `build`. [`write_dump`] fills in the ring's positions
    /// and capacity.
    pub fn for_order(
        order: &DumpOrder,
        named: &[&'a str],
        lost: u64,
        clock: ClockInfo,
        build: Build<'a>,
    ) -> Self {
        let detail = match order.reason {
            Reason::Named(i) => named.get(usize::from(i)).copied(),
            _ => None,
        };
        DumpHeader {
            reason: order.reason,
            detail: detail.unwrap_or(""),
            trigger_time: order.time,
            trigger_seq: order.seq,
            clock,
            first_seq: 0,
            next_seq: 0,
            lost,
            suppressed: order.suppressed,
            scope: order.session,
            index: order.index,
            capacity: 0,
            build,
        }
    }
}

/// Head of a record frame's body; the payload follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordHead {
    /// Sequence number.
    pub seq: u64,
    /// Ticks.
    pub time: u64,
    /// Payload kind.
    pub kind: Kind,
    /// Level code ([`crate::Level`]; a decoder shows unknown codes as numbers).
    pub level: u8,
    /// Session.
    pub session: Option<SessionId>,
}

impl RecordHead {
    /// The head of record `seq` with header `meta`.
    pub const fn of(seq: u64, meta: &RecordMeta) -> Self {
        RecordHead {
            seq,
            time: meta.time,
            kind: meta.kind,
            level: meta.level as u8,
            session: meta.session,
        }
    }
}

/// A dump's end frame: present only if the writer finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpEnd {
    /// Record frames written.
    pub records: u64,
    /// Records evicted while the dump was being read out, or too large for the writer's
    /// buffer: missing from this dump although they were in the ring when it began.
    pub lost: u64,
    /// Records left out because they belong to another session than the dump's scope.
    pub out_of_scope: u64,
}

impl Encode for Reason {
    fn encode(&self, w: &mut Writer<'_>) {
        let (code, arg) = self.to_wire();
        w.u8(code);
        w.varint(u64::from(arg));
    }
}

impl Encode for SessionId {
    fn encode(&self, w: &mut Writer<'_>) {
        w.varint(u64::from(self.0));
    }
}

impl Encode for u64 {
    fn encode(&self, w: &mut Writer<'_>) {
        w.varint(*self);
    }
}

impl Encode for DumpHeader<'_> {
    fn encode(&self, w: &mut Writer<'_>) {
        self.reason.encode(w);
        w.str(self.detail);
        w.varint(self.trigger_time);
        self.trigger_seq.encode(w);
        w.varint(self.clock.rate_hz);
        w.u8(match self.clock.base {
            TimeBase::Boot => 0,
            TimeBase::Unix => 1,
            TimeBase::Unknown(c) => c,
        });
        w.varint(self.first_seq);
        w.varint(self.next_seq);
        w.varint(self.lost);
        w.varint(u64::from(self.suppressed));
        self.scope.encode(w);
        w.varint(u64::from(self.index));
        w.varint(u64::from(self.capacity));
        w.str(self.build.name);
        w.str(self.build.version);
        w.prefixed(self.build.id);
    }
}

impl Encode for RecordHead {
    fn encode(&self, w: &mut Writer<'_>) {
        w.varint(self.seq);
        w.varint(self.time);
        w.u8(self.kind.0);
        w.u8(self.level);
        self.session.encode(w);
    }
}

impl Encode for DumpEnd {
    fn encode(&self, w: &mut Writer<'_>) {
        w.varint(self.records);
        w.varint(self.lost);
        w.varint(self.out_of_scope);
    }
}

/// What a written dump holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpSummary {
    /// Record frames written.
    pub records: u64,
    /// Records lost during read-out (see [`DumpEnd::lost`]).
    pub lost: u64,
    /// Records left out by the session scope.
    pub out_of_scope: u64,
    /// Bytes written.
    pub bytes: usize,
}

/// Something a dump can be read from, one record at a time.
pub trait Source {
    /// Positions and counters now.
    fn stats(&self) -> Result<RingStats, RingError>;
    /// A cursor at the oldest record.
    fn oldest(&self) -> Result<Cursor, RingError>;
    /// Copies one record out; see [`Ring::read`].
    fn read(&self, cursor: &mut Cursor, out: &mut [u8]) -> Result<Read, RingError>;
}

impl<const N: usize> Source for Ring<N> {
    fn stats(&self) -> Result<RingStats, RingError> {
        Ok(Ring::stats(self))
    }
    fn oldest(&self) -> Result<Cursor, RingError> {
        Ok(Ring::oldest(self))
    }
    fn read(&self, cursor: &mut Cursor, out: &mut [u8]) -> Result<Read, RingError> {
        Ring::read(self, cursor, out)
    }
}

impl<const N: usize> Source for SharedRing<N> {
    fn stats(&self) -> Result<RingStats, RingError> {
        SharedRing::stats(self)
    }
    fn oldest(&self) -> Result<Cursor, RingError> {
        SharedRing::oldest(self)
    }
    fn read(&self, cursor: &mut Cursor, out: &mut [u8]) -> Result<Read, RingError> {
        SharedRing::read(self, cursor, out)
    }
}

/// Streams a dump of `source` to `w`.
///
/// `header` supplies the reason, clock, build and counters; its `first_seq`, `next_seq` and
/// `capacity` are filled in from the source. Records are copied out one at a time through
/// `scratch` (which must hold the encoded header and the largest payload worth dumping;
/// larger records are counted as lost), so producers are held up for one record copy at a
/// time and there is no second copy of the ring in RAM. Records added after the dump began
/// are left for the next one. With `header.scope` set, records of other sessions are left
/// out.
pub fn write_dump<W: Write, S: Source + ?Sized>(
    w: &mut W,
    source: &S,
    header: DumpHeader<'_>,
    scratch: &mut [u8],
) -> Result<DumpSummary, DumpError<W::Error>> {
    let stats = source.stats()?;
    let cursor = source.oldest()?;
    write_dump_from(w, source, header, stats, cursor, scratch)
}

/// [`write_dump`] from `stats` and `cursor` taken beforehand: a recorder takes them in the
/// critical section that takes the dump's order and lost count, so that the header's
/// counters and positions agree.
pub fn write_dump_from<W: Write, S: Source + ?Sized>(
    w: &mut W,
    source: &S,
    header: DumpHeader<'_>,
    stats: RingStats,
    cursor: Cursor,
    scratch: &mut [u8],
) -> Result<DumpSummary, DumpError<W::Error>> {
    write_dump_impl::<W, S, false>(w, source, header, stats, cursor, scratch, &[])
}

/// [`write_dump_from`] for a writer of callsite records: `callsites` are the bodies of the
/// dump's callsite table frames ([`crate::callsite`]), written after the header.
pub fn write_dump_with_callsites<W: Write, S: Source + ?Sized>(
    w: &mut W,
    source: &S,
    header: DumpHeader<'_>,
    stats: RingStats,
    cursor: Cursor,
    scratch: &mut [u8],
    callsites: &[&[u8]],
) -> Result<DumpSummary, DumpError<W::Error>> {
    write_dump_impl::<W, S, true>(w, source, header, stats, cursor, scratch, callsites)
}

/// The dump writer; `TABLES` false leaves the callsite table's code out of a build that
/// writes none (a microcontroller's).
fn write_dump_impl<W: Write, S: Source + ?Sized, const TABLES: bool>(
    w: &mut W,
    source: &S,
    mut header: DumpHeader<'_>,
    stats: RingStats,
    mut cursor: Cursor,
    scratch: &mut [u8],
    callsites: &[&[u8]],
) -> Result<DumpSummary, DumpError<W::Error>> {
    header.first_seq = stats.first_seq;
    header.next_seq = stats.next_seq;
    header.capacity = u32::try_from(stats.capacity).unwrap_or(u32::MAX);
    let mut out = FrameWriter::new(w);
    out.preamble()?;
    out.frame(FRAME_HEADER, &header, scratch, &[])?;
    if TABLES {
        for body in callsites {
            out.frame_bytes(crate::callsite::FRAME_CALLSITES, body, &[])?;
        }
    }

    // Counted in locals, the end frame built from them last: a `DumpEnd` zeroed up front
    // would live on the stack the whole time (and be cleared through `memclr8`).
    let (mut records, mut lost, mut out_of_scope) = (0, 0, 0);
    // Holds a record head, then the end frame's body (at most 30 bytes).
    let mut head_buf = [0u8; 32];
    while cursor.seq() < stats.next_seq {
        let unread = stats.next_seq - cursor.seq();
        match source.read(&mut cursor, scratch)? {
            Read::Record { seq, meta, len } => {
                let in_scope = match (header.scope, meta.session) {
                    (Some(scope), Some(s)) => scope == s,
                    _ => true,
                };
                if !in_scope {
                    out_of_scope += 1;
                    continue;
                }
                let head = RecordHead::of(seq, &meta);
                let payload = scratch.get(..len).ok_or(RingError::Corrupt)?;
                out.frame(FRAME_RECORD, &head, &mut head_buf, payload)?;
                records += 1;
            }
            // Records pushed after the dump began may be gone too: not this dump's loss.
            Read::Lost(n) => lost += n.min(unread),
            Read::TooBig { .. } => lost += 1,
            Read::End => break,
        }
    }
    let end = DumpEnd {
        records,
        lost,
        out_of_scope,
    };
    out.frame(FRAME_END, &end, &mut head_buf, &[])?;
    out.flush()?;
    Ok(DumpSummary {
        records: end.records,
        lost: end.lost,
        out_of_scope: end.out_of_scope,
        bytes: out.bytes(),
    })
}
