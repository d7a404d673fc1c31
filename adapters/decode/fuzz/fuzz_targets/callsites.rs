//! Dumps of callsite records (`WIRE-FORMAT.md` section 8) built from `arbitrary` input:
//! callsite tables (hostile texts, ids that repeat or are missing, tables split over frames,
//! garbage after a table's callsites) and callsite records (values of every tag, messages,
//! dropped counts, field indices past the names, garbage items), then bit flips.
//!
//! Checks, beyond no panic: bounded items, no raw control character in any output; a dump
//! whose table holds every callsite its records name decodes without damage, each record
//! shown exactly as the full form of the same log line (target, message, fields) renders
//! it; a record whose callsite is missing is damage (exit 1).
#![no_main]

use arbitrary::Arbitrary;
use flightrec_core::callsite::{self, Callsite, Names, FRAME_CALLSITES};
use flightrec_core::encode::{to_slice, Encode, Writer};
use flightrec_core::event::{Field, Fields, Log, Value};
use flightrec_core::frame::{FrameWriter, FRAME_END, FRAME_HEADER, FRAME_RECORD};
use flightrec_core::{Build, ClockInfo, DumpEnd, DumpHeader, Kind, Level, Reason, RecordHead};
use flightrec_decode::{Format, Options, Renderer};
use flightrec_decode_fuzz::gen::{FieldValue, Hostile};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Site {
    id: u8,
    level: u8,
    target: Hostile,
    message: Option<Hostile>,
    file: Hostile,
    line: u32,
    names: Vec<Hostile>,
}

#[derive(Arbitrary, Debug)]
enum RecItem {
    Field { index: u8, value: FieldValue },
    Message(Hostile),
    Dropped(u8),
    Garbage(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Rec {
    id: u8,
    items: Vec<RecItem>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    sites: Vec<Site>,
    /// Callsites per table frame (0: all in one).
    per_frame: u8,
    /// Bytes after the last table frame's callsites.
    table_garbage: Vec<u8>,
    records: Vec<Rec>,
    flips: Vec<(u16, u8)>,
}

fn value(v: &FieldValue) -> Value<'_> {
    match v {
        FieldValue::Bool(b) => Value::Bool(*b),
        FieldValue::I64(n) => Value::I64(*n),
        FieldValue::U64(n) => Value::U64(*n),
        FieldValue::F64(f) => Value::F64(*f),
        FieldValue::Str(s) => Value::Str(&s.0),
        FieldValue::Bytes(b) => Value::Bytes(b),
    }
}

fn header() -> DumpHeader<'static> {
    DumpHeader {
        reason: Reason::Manual,
        detail: "",
        trigger_time: 0,
        trigger_seq: None,
        clock: ClockInfo::BOOT_MILLIS,
        first_seq: 0,
        next_seq: 0,
        lost: 0,
        suppressed: 0,
        scope: None,
        index: 0,
        capacity: 4096,
        build: Build {
            name: "fuzz",
            version: "1",
            id: &[],
        },
    }
}

/// A dump: the header, `tables` as table frames, then each record (kind, payload).
fn dump(tables: &[Vec<u8>], records: &[(Kind, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = FrameWriter::new(&mut out);
    let mut scratch = [0u8; 256];
    let h = DumpHeader {
        next_seq: records.len() as u64,
        ..header()
    };
    w.preamble().unwrap();
    w.frame(FRAME_HEADER, &h, &mut scratch, &[]).unwrap();
    for t in tables {
        if w.frame_bytes(FRAME_CALLSITES, t, &[]).is_err() {
            break;
        }
    }
    for (seq, (kind, payload)) in records.iter().enumerate() {
        let head = RecordHead {
            seq: seq as u64,
            time: seq as u64,
            kind: *kind,
            level: 2,
            session: None,
        };
        let mut hb = [0u8; 32];
        let n = to_slice(&head, &mut hb).unwrap();
        if w.frame_bytes(FRAME_RECORD, &hb[..n], payload).is_err() {
            break;
        }
    }
    let end = DumpEnd {
        records: records.len() as u64,
        lost: 0,
        out_of_scope: 0,
    };
    w.frame(FRAME_END, &end, &mut scratch, &[]).unwrap();
    drop(w);
    out
}

fn render(bytes: &[u8], format: Format) -> (String, flightrec_decode::Stats) {
    let mut r = Renderer::new(Options {
        format,
        ..Options::default()
    });
    let mut out = Vec::new();
    let (stats, _) = flightrec_decode::decode_to(bytes, &mut r, &mut out).unwrap();
    flightrec_decode_fuzz::check::check_text(&out);
    let text = String::from_utf8(out).expect("output is UTF-8");
    (text, stats)
}

/// Offsets masked (the two forms' records have other sizes).
fn mask(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("offset") {
        out.push_str(&rest[..i + 6]);
        rest = &rest[i + 6..];
        let skip = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_digit() || *c == '"' || *c == ':' || *c == ' '))
            .map_or(rest.len(), |(i, _)| i);
        rest = &rest[skip..];
    }
    out.push_str(rest);
    out
}

fuzz_target!(|input: Input| {
    let sites: Vec<&Site> = input.sites.iter().take(16).collect();
    let names: Vec<Vec<&str>> = sites
        .iter()
        .map(|s| s.names.iter().take(8).map(|n| n.0.as_str()).collect())
        .collect();
    let mut encoded = Vec::new();
    for (s, names) in sites.iter().zip(&names) {
        let c = Callsite {
            id: u32::from(s.id),
            level: Level::from_u8(s.level % 5).unwrap_or(Level::Info),
            target: &s.target.0,
            message: s.message.as_ref().map(|m| m.0.as_str()),
            file: &s.file.0,
            line: s.line,
            names: Names::Slice(names),
        };
        let mut b = vec![0u8; c.encoded_len()];
        to_slice(&c, &mut b).unwrap();
        encoded.push(b);
    }
    let per = usize::from(input.per_frame).max(1);
    let mut tables: Vec<Vec<u8>> = encoded.chunks(per).map(|c| c.concat()).collect();
    let damaged_table = !input.table_garbage.is_empty();
    if let Some(last) = tables.last_mut() {
        last.extend_from_slice(&input.table_garbage);
    } else if damaged_table {
        tables.push(input.table_garbage.clone());
    }

    // Each record in the callsite form, and, when its callsite is known and its items are
    // well formed, the full form of the same line.
    let known = |id: u8| sites.iter().rposition(|s| s.id == id);
    let mut compact = Vec::new();
    let mut full = Vec::new();
    let mut exact = !damaged_table;
    for r in input.records.iter().take(32) {
        let mut p = vec![0u8; 4096];
        let mut w = Writer::new(&mut p, &mut []);
        w.varint(u64::from(r.id));
        let mut message = None;
        let mut fields = Vec::new();
        let mut dropped = 0u64;
        let site = known(r.id);
        for item in r.items.iter().take(20) {
            match item {
                RecItem::Field { index, value: v } => {
                    let v = value(v);
                    callsite::write_value(&mut w, u32::from(*index), &v);
                    match site.and_then(|i| names[i].get(usize::from(*index))) {
                        Some(name) => fields.push(Field { name, value: v }),
                        None => exact = false,
                    }
                }
                RecItem::Message(m) => {
                    callsite::write_message(&mut w, &m.0);
                    message = Some(m.0.as_str());
                }
                RecItem::Dropped(n) => {
                    callsite::write_dropped(&mut w, u64::from(*n));
                    dropped += u64::from(*n);
                    exact = false; // the full form has one `…dropped` field
                }
                RecItem::Garbage(g) => {
                    w.bytes(g);
                    exact = false;
                }
            }
        }
        if w.overflowed() {
            return;
        }
        let n = w.len();
        p.truncate(n);
        compact.push((Kind::CALLSITE, p));
        let Some(i) = site else {
            exact = false;
            continue;
        };
        let _ = dropped;
        // Texts within their bounds only: the full form would cut them on the way in.
        let site = sites[i];
        let message = message
            .or(site.message.as_ref().map(|m| m.0.as_str()))
            .unwrap_or("");
        let within = site.target.0.len() <= 64
            && message.len() <= 256
            && fields.len() <= 16
            && fields.iter().all(|f| {
                f.name.len() <= 32
                    && match f.value {
                        Value::Str(s) => s.len() <= 128,
                        Value::Bytes(b) => b.len() <= 128,
                        _ => true,
                    }
            })
            && site.message.as_ref().is_none_or(|m| m.0.len() <= 256);
        exact &= within;
        let log = Log {
            level: Level::Info,
            target: &site.target.0,
            message,
            fields: Fields::Slice(&fields),
        };
        let mut b = vec![0u8; log.encoded_len()];
        to_slice(&log, &mut b).unwrap();
        full.push((Kind::LOG, b));
    }
    let mut bytes = dump(&tables, &compact);
    for (at, bit) in input.flips.iter().take(2) {
        let len = bytes.len();
        if let Some(b) = bytes.get_mut(usize::from(*at) % len.max(1)) {
            *b ^= 1 << (bit % 8);
            exact = false;
        }
    }
    // Every id distinct, or the last one wins: the model takes the last (`rposition`), as
    // the decoder does.
    for format in [Format::Text, Format::Json, Format::Forensic] {
        let (text, stats) = render(&bytes, format);
        if exact && full.len() == compact.len() {
            assert!(!stats.damaged(), "{stats:?}\n{text}");
            let (want, _) = render(&dump(&[], &full), format);
            assert_eq!(mask(&text), mask(&want), "{format:?}");
        }
        if compact.len() > full.len() && !damaged_table && input.flips.is_empty() {
            assert!(stats.damaged(), "a record of a missing callsite is damage");
        }
    }
});
