//! `flightrec info`: one summary per dump, from its header, its end frame and what lies
//! between (without rendering the records).

use std::io::{self, Write};

use flightrec_core::DumpEnd;

use crate::decoder::{Cut, Header, Item};
use crate::render::json_str;
use crate::time::Time;
use flightrec_core::text::Escaped;

/// What one dump holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DumpInfo {
    /// Byte offset of its magic (or of its first frame, if the magic is lost).
    pub offset: u64,
    /// Its header, if whole.
    pub header: Option<Header>,
    /// Records decoded.
    pub decoded: u64,
    /// Its end frame, if it has one.
    pub end: Option<DumpEnd>,
    /// Why it has none.
    pub incomplete: Option<Cut>,
    /// Sequence numbers missing between its records.
    pub missing: u64,
    /// Damaged regions in it.
    pub damaged: u64,
    /// Frames of unknown types skipped.
    pub unknown_frames: u64,
    /// Set for a dump of a version this decoder does not know.
    pub unsupported: Option<u8>,
    /// Records whose payload does not decode as their kind says.
    pub malformed: u64,
    /// A ring region: it has no end frame by design.
    pub region: bool,
    /// Its magic and header are lost: its records were found without them.
    pub unknown: bool,
}

impl DumpInfo {
    /// Whether the end frame's record count differs from the records decoded.
    pub fn count_mismatch(&self) -> bool {
        self.end.is_some_and(|e| e.records != self.decoded)
    }

    /// Whether the dump is whole: the same rule as `decode`'s (damage, a cut, an unknown
    /// version, a count mismatch or a malformed payload make it not).
    pub fn damaged(&self) -> bool {
        self.damaged > 0
            || self.incomplete.is_some()
            || self.unsupported.is_some()
            || self.count_mismatch()
            || self.malformed > 0
            || self.unknown
    }
}

/// Turns [`Item`]s into [`DumpInfo`]s, one per dump, as each dump ends.
#[derive(Debug, Default)]
pub struct InfoCollector {
    current: Option<DumpInfo>,
}

impl InfoCollector {
    /// A collector with no dump open.
    pub fn new() -> Self {
        Self::default()
    }

    fn open(&mut self, offset: u64) -> &mut DumpInfo {
        self.current.get_or_insert_with(|| DumpInfo {
            offset,
            ..DumpInfo::default()
        })
    }

    /// Feeds one item; returns a dump's summary when that dump ends.
    pub fn feed(&mut self, item: &Item<'_>) -> Option<DumpInfo> {
        match item {
            Item::DumpStart { offset, header } => {
                let done = self.current.take();
                self.open(*offset).header = Some(header.clone());
                return done;
            }
            Item::Record {
                offset,
                head,
                payload,
            } => {
                let d = self.open(*offset);
                d.decoded += 1;
                let level = flightrec_core::Level::from_u8(head.level)
                    .unwrap_or(flightrec_core::Level::Trace);
                if flightrec_core::event::decode(head.kind, level, payload).is_err() {
                    d.malformed += 1;
                }
            }
            Item::UnknownDump { offset } => {
                let done = self.current.take();
                self.open(*offset).unknown = true;
                return done;
            }
            Item::RegionEnd { dump_offset, .. } => {
                self.open(*dump_offset).region = true;
                return self.current.take();
            }
            Item::Wrap { .. } | Item::RingHead { .. } => {}
            Item::Gap {
                offset, from, to, ..
            } => {
                let d = self.open(*offset);
                d.missing = d.missing.saturating_add(to.saturating_sub(*from));
            }
            Item::Damaged { offset, .. } => self.open(*offset).damaged += 1,
            Item::UnknownFrame { offset, .. } => self.open(*offset).unknown_frames += 1,
            Item::DumpEnd { offset, end, .. } => {
                self.open(*offset).end = Some(*end);
                return self.current.take();
            }
            Item::Incomplete {
                dump_offset, why, ..
            } => {
                self.open(*dump_offset).incomplete = Some(*why);
                return self.current.take();
            }
            Item::Unsupported { offset, version } => {
                let done = self.current.take();
                if done.is_some() {
                    return done; // cannot happen: a dump ends before another begins
                }
                return Some(DumpInfo {
                    offset: *offset,
                    unsupported: Some(*version),
                    ..DumpInfo::default()
                });
            }
            Item::Skipped { .. } => {}
        }
        None
    }

    /// The dump still open when the input ended, if any.
    pub fn finish(&mut self) -> Option<DumpInfo> {
        self.current.take()
    }
}

/// Writes a dump's summary as indented text.
pub fn write_text<W: Write + ?Sized>(out: &mut W, d: &DumpInfo) -> io::Result<()> {
    if d.unknown {
        writeln!(
            out,
            "unknown dump at offset {} (its magic and header are lost)",
            d.offset
        )?;
    } else {
        writeln!(out, "dump at offset {}", d.offset)?;
    }
    if let Some(v) = d.unsupported {
        return writeln!(
            out,
            "  format version {v}: not supported (this decoder knows version {})",
            crate::decoder::VERSION
        );
    }
    match &d.header {
        Some(h) => {
            write!(out, "  trigger:    {}", h.reason)?;
            if !h.detail.is_empty() {
                write!(out, " \"{}\"", Escaped::new(&h.detail, &['"']))?;
            }
            writeln!(out, " ({})", h.reason.marker())?;
            let t = Time {
                ticks: h.trigger_time,
                clock: Some(h.clock),
            };
            match h.trigger_seq {
                Some(s) => writeln!(out, "  time:       {t} (record {s})")?,
                None => writeln!(out, "  time:       {t}")?,
            }
            writeln!(
                out,
                "  clock:      {} Hz, {}",
                h.clock.rate_hz,
                match h.clock.base {
                    flightrec_core::TimeBase::Boot => "since boot".to_owned(),
                    flightrec_core::TimeBase::Unix => "Unix time".to_owned(),
                    flightrec_core::TimeBase::Unknown(c) => format!("unknown base {c}"),
                }
            )?;
            writeln!(
                out,
                "  build:      {} {} id {}",
                Escaped::new(&h.build_name, &[]),
                Escaped::new(&h.build_version, &[]),
                if h.build_id.is_empty() {
                    "-".to_owned()
                } else {
                    h.build_id.iter().map(|b| format!("{b:02x}")).collect()
                }
            )?;
            writeln!(
                out,
                "  ring:       {} bytes, records {}..{}, dump #{}",
                h.capacity, h.first_seq, h.next_seq, h.index
            )?;
            if let Some(s) = h.scope {
                writeln!(out, "  scope:      session {}", s.0)?;
            }
            writeln!(out, "  lost:       {} before the ring", h.lost)?;
            writeln!(out, "  suppressed: {} triggers", h.suppressed)?;
        }
        None => writeln!(out, "  header:     missing or damaged")?,
    }
    write!(out, "  records:    {} decoded", d.decoded)?;
    if let Some(e) = &d.end {
        write!(
            out,
            ", {} written, {} lost during read-out, {} outside scope",
            e.records, e.lost, e.out_of_scope
        )?;
    }
    writeln!(out)?;
    if d.missing > 0 {
        writeln!(out, "  gaps:       {} sequence numbers missing", d.missing)?;
    }
    if d.damaged > 0 {
        writeln!(out, "  damaged:    {} regions", d.damaged)?;
    }
    if d.unknown_frames > 0 {
        writeln!(out, "  unknown:    {} frames skipped", d.unknown_frames)?;
    }
    if d.malformed > 0 {
        writeln!(out, "  malformed:  {} payloads", d.malformed)?;
    }
    if let Some(e) = d.end.filter(|_| d.count_mismatch()) {
        writeln!(
            out,
            "  COUNT MISMATCH: {} written but {} decoded",
            e.records, d.decoded
        )?;
    }
    match d.incomplete {
        Some(why) => writeln!(out, "  complete:   no ({why})"),
        None if d.region => writeln!(out, "  complete:   ring region (no end frame by design)"),
        None if d.end.is_none() => writeln!(out, "  complete:   no"),
        None => writeln!(out, "  complete:   yes"),
    }
}

/// Writes a dump's summary as one JSON object line.
pub fn write_json<W: Write + ?Sized>(
    out: &mut W,
    d: &DumpInfo,
    source: Option<&str>,
) -> io::Result<()> {
    let mut line = Vec::new();
    line.extend_from_slice(b"{\"type\":\"info\"");
    if let Some(s) = source {
        line.extend_from_slice(b",\"source\":");
        json_str(&mut line, s)?;
    }
    write!(line, ",\"offset\":{}", d.offset)?;
    if let Some(v) = d.unsupported {
        write!(line, ",\"unsupported_version\":{v}")?;
    }
    if let Some(h) = &d.header {
        crate::render::json::header(&mut line, h)?;
    }
    write!(line, ",\"decoded\":{}", d.decoded)?;
    if let Some(e) = &d.end {
        write!(
            line,
            ",\"written\":{},\"lost_during_readout\":{},\"out_of_scope\":{}",
            e.records, e.lost, e.out_of_scope
        )?;
    }
    write!(
        line,
        ",\"missing\":{},\"damaged\":{},\"unknown_frames\":{},\"malformed\":{},\"count_mismatch\":{},\"ring_region\":{},\"unknown_dump\":{},\"complete\":{},\"whole\":{}",
        d.missing,
        d.damaged,
        d.unknown_frames,
        d.malformed,
        d.count_mismatch(),
        d.region,
        d.unknown,
        d.incomplete.is_none() && d.unsupported.is_none(),
        !d.damaged()
    )?;
    if let Some(why) = d.incomplete {
        line.extend_from_slice(b",\"incomplete\":");
        json_str(&mut line, &why.to_string())?;
    }
    line.extend_from_slice(b"}\n");
    out.write_all(&line)
}
