//! What the decoder says: each [`Item`] it finds in the input, why bytes could not be
//! decoded ([`Damage`]), why a dump stops without its end frame ([`Cut`]), and the counts it
//! keeps ([`Stats`]).

use std::fmt;

use flightrec_core::{ClockInfo, DumpEnd, DumpHeader, Reason, RecordHead, SessionId};

/// A dump's header, owned (the decoder's buffer moves on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Why the dump was taken.
    pub reason: Reason,
    /// Extra words on the reason; may be empty. Device-controlled: escape before printing.
    pub detail: String,
    /// When the trigger fired, in ticks.
    pub trigger_time: u64,
    /// The record that fired it.
    pub trigger_seq: Option<u64>,
    /// How to read ticks.
    pub clock: ClockInfo,
    /// Oldest record in the ring when the dump began.
    pub first_seq: u64,
    /// Sequence number the next record would have got.
    pub next_seq: u64,
    /// Records refused or dropped before they reached the ring.
    pub lost: u64,
    /// Triggers the rate limit refused since the previous dump.
    pub suppressed: u32,
    /// Session scope of the dump.
    pub scope: Option<SessionId>,
    /// Dumps taken before this one since the writer started.
    pub index: u32,
    /// Ring capacity in bytes.
    pub capacity: u32,
    /// Program name.
    pub build_name: String,
    /// Program version.
    pub build_version: String,
    /// Build identity (e.g. GNU build-id); may be empty.
    pub build_id: Vec<u8>,
}

impl From<&DumpHeader<'_>> for Header {
    fn from(h: &DumpHeader<'_>) -> Self {
        Header {
            reason: h.reason,
            detail: h.detail.to_owned(),
            trigger_time: h.trigger_time,
            trigger_seq: h.trigger_seq,
            clock: h.clock,
            first_seq: h.first_seq,
            next_seq: h.next_seq,
            lost: h.lost,
            suppressed: h.suppressed,
            scope: h.scope,
            index: h.index,
            capacity: h.capacity,
            build_name: h.build.name.to_owned(),
            build_version: h.build.version.to_owned(),
            build_id: h.build.id.to_vec(),
        }
    }
}

/// Why bytes could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// A frame's CRC does not match its bytes.
    BadCrc {
        /// Its type byte.
        ty: u8,
        /// The body length it claims.
        len: u16,
    },
    /// A frame's length runs past the end of the input.
    Truncated {
        /// Bytes the frame claims (whole frame).
        claimed: usize,
        /// Bytes the input still had.
        available: usize,
    },
    /// A byte other than `FE` where a frame should start.
    NotAFrame {
        /// The byte found.
        byte: u8,
    },
    /// The first frame of a dump is not a whole header frame.
    MissingHeader,
    /// A header frame with no magic before it (the magic is damaged).
    MissingMagic,
    /// A header frame that checks but does not decode.
    BadHeader,
    /// A record frame that checks but whose head does not decode.
    BadRecordHead,
    /// An end frame that checks but does not decode.
    BadEnd,
    /// A record whose sequence number is not above the previous one's.
    OutOfOrder {
        /// The lowest number expected.
        expected: u64,
        /// The number found.
        seq: u64,
    },
    /// A record with the same sequence number as the record before it.
    Duplicate {
        /// The number.
        seq: u64,
    },
    /// A record whose sequence number lies outside its dump header's
    /// `first_seq..next_seq`: it belongs to another dump (a splice) or its dump's header is
    /// wrong. It is shown, flagged.
    OutOfRange {
        /// The number found.
        seq: u64,
        /// The header's `first_seq`.
        first: u64,
        /// The header's `next_seq`.
        next: u64,
    },
    /// A callsite table frame that checks but whose callsites do not all decode (or go
    /// beyond what a decoder keeps of a table).
    BadCallsiteTable,
    /// A callsite record whose callsite is not in its dump's table: shown as `callsite N`
    /// with its raw values.
    UnknownCallsite {
        /// The callsite's id.
        id: u32,
    },
    /// A callsite record whose values do not all decode: those that do are shown.
    BadCallsiteRecord,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Damage::BadCrc { ty, len } => {
                write!(
                    f,
                    "CRC mismatch in frame type 0x{ty:02x} of {len} body bytes"
                )
            }
            Damage::Truncated { claimed, available } => write!(
                f,
                "frame of {claimed} bytes cut off: the input ends after {available}"
            ),
            Damage::NotAFrame { byte } => {
                write!(f, "byte 0x{byte:02x} where a frame should start")
            }
            Damage::MissingHeader => f.write_str("dump has no whole header frame"),
            Damage::MissingMagic => f.write_str("header frame without the dump magic before it"),
            Damage::BadHeader => f.write_str("header frame checks but does not decode"),
            Damage::BadRecordHead => {
                f.write_str("record frame checks but its head does not decode")
            }
            Damage::BadEnd => f.write_str("end frame checks but does not decode"),
            Damage::OutOfOrder { expected, seq } => write!(
                f,
                "record {seq} out of order (expected {expected} or later)"
            ),
            Damage::Duplicate { seq } => write!(f, "record {seq} appears twice"),
            Damage::BadCallsiteTable => {
                f.write_str("callsite table frame checks but does not decode")
            }
            Damage::UnknownCallsite { id } => write!(
                f,
                "record of callsite {id}, which is not in its dump's callsite table"
            ),
            Damage::BadCallsiteRecord => {
                f.write_str("callsite record checks but its values do not all decode")
            }
            Damage::OutOfRange { seq, first, next } => write!(
                f,
                "record {seq} lies outside its dump's range {first}..{next}: it belongs to another dump"
            ),
        }
    }
}

/// Why a dump has no end frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The input ended.
    InputEnded,
    /// Erased flash (`FF` bytes) follows: the writer lost power or stopped.
    Erased,
    /// Another dump begins.
    NextDump,
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cut::InputEnded => "the input ends before its end frame",
            Cut::Erased => "erased flash follows (writer cut off, e.g. power loss)",
            Cut::NextDump => "another dump begins before its end frame",
        })
    }
}

/// One thing found in the input, in input order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A dump's header frame (offset of its magic).
    DumpStart {
        /// Byte offset of the dump's magic.
        offset: u64,
        /// Its header.
        header: Header,
    },
    /// A whole record.
    Record {
        /// Byte offset of its frame.
        offset: u64,
        /// Its head.
        head: RecordHead,
        /// Its payload (decode with [`flightrec_core::event::decode`]).
        payload: &'a [u8],
    },
    /// Sequence numbers `from..to` are missing between two records (or at the start or end
    /// of a dump).
    Gap {
        /// Byte offset where it was noticed (the next record's or the end frame's).
        offset: u64,
        /// First missing sequence number.
        from: u64,
        /// First present one after the hole.
        to: u64,
        /// The dump is scoped to a session: some of the missing records may just belong to
        /// other sessions.
        scoped: bool,
    },
    /// Bytes inside a dump that could not be decoded; decoding went on after them.
    Damaged {
        /// Byte offset where the damage begins.
        offset: u64,
        /// Bytes skipped.
        len: u64,
        /// Why.
        why: Damage,
    },
    /// A whole frame of a type this decoder does not know, skipped.
    UnknownFrame {
        /// Byte offset of the frame.
        offset: u64,
        /// Its type byte.
        ty: u8,
        /// Its body length.
        len: u16,
    },
    /// A dump's end frame.
    DumpEnd {
        /// Byte offset of the end frame.
        offset: u64,
        /// What the writer says it wrote.
        end: DumpEnd,
        /// Record frames this decoder decoded in the dump.
        seen: u64,
    },
    /// A dump without an end frame.
    Incomplete {
        /// Byte offset of the dump's magic.
        dump_offset: u64,
        /// Byte offset where it stops.
        offset: u64,
        /// Records decoded in it.
        seen: u64,
        /// Why it stops there.
        why: Cut,
    },
    /// A dump of a format version this decoder does not know; skipped without guessing.
    Unsupported {
        /// Byte offset of its magic.
        offset: u64,
        /// Its version byte.
        version: u8,
    },
    /// A whole record frame with no dump magic and header before it (they are lost): the
    /// records from here to the next dump boundary belong to a dump that cannot be named.
    UnknownDump {
        /// Byte offset of the first record frame.
        offset: u64,
    },
    /// A ring region (a dump whose header leaves its range open, `next_seq` = `u64::MAX`:
    /// the circular area of a ring file) wraps here: the newest records came first, older
    /// ones follow. Not damage.
    Wrap {
        /// Byte offset of the first record of the older lap.
        offset: u64,
        /// Sequence number of the last record of the newer lap.
        newest: u64,
        /// Sequence number of the first record of the older lap.
        oldest: u64,
    },
    /// Bytes at a ring region's write head that are no whole frame: the frame being
    /// written when the writer stopped, or the oldest frame, partly overwritten by a newer
    /// one. Expected in a ring, not damage.
    RingHead {
        /// Byte offset of the first.
        offset: u64,
        /// How many.
        len: u64,
    },
    /// A ring region ends: it has no end frame by design.
    RegionEnd {
        /// Byte offset of the region's magic.
        dump_offset: u64,
        /// Byte offset where it ends.
        offset: u64,
        /// Records decoded in it.
        seen: u64,
    },
    /// Bytes outside any dump (before, between or after dumps). Bytes other than erased
    /// flash (`FF`) count as damage ([`Stats::stray`]).
    Skipped {
        /// Byte offset of the first.
        offset: u64,
        /// How many.
        len: u64,
        /// How many of them are `FF` (erased flash).
        erased: u64,
    },
}

impl Item<'_> {
    /// The byte offset the item is at (for a dump's end or cut: where it ends).
    pub fn offset(&self) -> u64 {
        match *self {
            Item::DumpStart { offset, .. }
            | Item::Record { offset, .. }
            | Item::Gap { offset, .. }
            | Item::Damaged { offset, .. }
            | Item::UnknownFrame { offset, .. }
            | Item::DumpEnd { offset, .. }
            | Item::Incomplete { offset, .. }
            | Item::Unsupported { offset, .. }
            | Item::UnknownDump { offset }
            | Item::Wrap { offset, .. }
            | Item::RingHead { offset, .. }
            | Item::RegionEnd { offset, .. }
            | Item::Skipped { offset, .. } => offset,
        }
    }

    /// Whether this item closes a dump (its end frame, or where an incomplete one stops).
    pub fn ends_dump(&self) -> bool {
        matches!(
            self,
            Item::DumpEnd { .. } | Item::Incomplete { .. } | Item::RegionEnd { .. }
        )
    }
}

/// Counts kept while decoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Input bytes consumed.
    pub bytes: u64,
    /// Dumps found (magic and known version).
    pub dumps: u64,
    /// Whole records.
    pub records: u64,
    /// Damaged regions.
    pub damaged: u64,
    /// Dumps without an end frame.
    pub incomplete: u64,
    /// Dumps of unknown versions.
    pub unsupported: u64,
    /// Missing sequence numbers, summed over gaps.
    pub missing: u64,
    /// Bytes skipped outside dumps that are not erased flash: damage when the input holds
    /// dumps (a dump's lost magic and header, or foreign data).
    pub stray: u64,
    /// Bytes the format explains: magics, version bytes and whole frames.
    pub framed: u64,
}

impl Stats {
    /// Whether anything was damaged, cut off or not understood.
    pub fn damaged(&self) -> bool {
        self.damaged + self.incomplete + self.unsupported > 0 || (self.stray > 0 && self.dumps > 0)
    }

    /// Adds the counts of another input (or another part of one). Saturating: `missing`
    /// sums gaps between sequence numbers that the input states, so it can be anything.
    pub fn add(&mut self, o: &Stats) {
        let sum = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        sum(&mut self.bytes, o.bytes);
        sum(&mut self.dumps, o.dumps);
        sum(&mut self.records, o.records);
        sum(&mut self.damaged, o.damaged);
        sum(&mut self.incomplete, o.incomplete);
        sum(&mut self.unsupported, o.unsupported);
        sum(&mut self.missing, o.missing);
        sum(&mut self.stray, o.stray);
        sum(&mut self.framed, o.framed);
    }
}
