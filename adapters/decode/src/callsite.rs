//! Callsite records resolved into log records: a dump's callsite table (frames of type
//! [`FRAME_CALLSITES`](flightrec_core::callsite::FRAME_CALLSITES)) is kept while its dump is
//! read, and each [`Kind::CALLSITE`] record is handed on as the [`Kind::LOG`] record it
//! stands for: its payload is rebuilt as the log line's encoding (target, message, names and
//! values), so everything after the decoder (the renderers, filters, counts) sees the same
//! log record as for the full form, and shows the same text and JSON.
//!
//! A record whose callsite is not in the table (the table is missing, damaged, or from
//! another writer) is shown as `callsite N`, target empty, with its raw values named by
//! their index (`#0`, `#1`, ...) and its message, if it carries one, as a field `message`.
//! The decoder reports it as damage.

use std::collections::HashMap;

use flightrec_core::callsite::{self, Callsite, Item};
use flightrec_core::encode::Writer;
use flightrec_core::event::{Field, Value};
use flightrec_core::Kind;

/// Most callsites kept per dump, and most bytes of names and texts: a table beyond them is
/// not believed (memory stays bounded whatever the input).
const ENTRIES_MAX: usize = 1 << 16;
const BYTES_MAX: usize = 16 << 20;

struct Entry {
    target: String,
    message: Option<String>,
    names: Vec<String>,
}

/// A dump's callsite table, as read so far.
#[derive(Default)]
pub(crate) struct Table {
    entries: HashMap<u32, Entry>,
    bytes: usize,
}

/// How a callsite record was resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// Its callsite is in the table and its items read.
    Whole,
    /// Its callsite is not in the table: shown as `callsite N`.
    UnknownCallsite(u32),
    /// Its items do not all read: those that do are shown.
    Malformed,
}

impl Table {
    /// Adds a table frame's callsites; false if some could not be read (those before them
    /// are kept).
    pub(crate) fn add_frame(&mut self, mut body: &[u8]) -> bool {
        while !body.is_empty() {
            let Ok((site, rest)) = Callsite::decode(body) else {
                return false;
            };
            body = rest;
            let size = site.target.len()
                + site.message.map_or(0, str::len)
                + site
                    .names
                    .iter()
                    .map(|n| n.map_or(0, str::len) + 8)
                    .sum::<usize>();
            if self.entries.len() >= ENTRIES_MAX || self.bytes + size > BYTES_MAX {
                return false;
            }
            let Ok(names) = site
                .names
                .iter()
                .map(|n| n.map(str::to_owned))
                .collect::<Result<Vec<_>, _>>()
            else {
                return false;
            };
            self.bytes += size;
            self.entries.insert(
                site.id,
                Entry {
                    target: site.target.to_owned(),
                    message: site.message.map(str::to_owned),
                    names,
                },
            );
        }
        true
    }

    /// Writes into `out` the payload of the [`Kind::LOG`] record a [`Kind::CALLSITE`]
    /// record's `payload` stands for.
    pub(crate) fn resolve(&self, payload: &[u8], out: &mut Vec<u8>) -> Resolved {
        out.clear();
        let Ok((id, items)) = callsite::record(payload) else {
            // Not even an id: an empty line saying so.
            put_str(out, "");
            put_str(out, "callsite ?");
            put_varint(out, 0);
            return Resolved::Malformed;
        };
        let entry = self.entries.get(&id);
        // First pass: the message (the last one given wins) and the number of fields.
        let (mut message, mut fields, mut dropped, mut malformed) = (None, 0u64, 0u64, false);
        for item in items.clone() {
            match item {
                Ok(Item::Message(m)) => {
                    if entry.is_none() && message.is_none() {
                        fields += 1; // shown as a field
                    }
                    message = Some(m);
                }
                Ok(Item::Field { .. }) => fields += 1,
                Ok(Item::Dropped(n)) => dropped = dropped.saturating_add(n),
                Err(_) => malformed = true,
            }
        }
        let unknown;
        let (target, message) = match entry {
            Some(e) => (
                e.target.as_str(),
                message.or(e.message.as_deref()).unwrap_or(""),
            ),
            None => {
                unknown = format!("callsite {id}");
                ("", unknown.as_str())
            }
        };
        put_str(out, target);
        put_str(out, message);
        put_varint(out, fields + u64::from(dropped > 0));
        if entry.is_none() {
            if let Some(m) = items
                .clone()
                .filter_map(|i| match i {
                    Ok(Item::Message(m)) => Some(m),
                    _ => None,
                })
                .last()
            {
                put_field(out, "message", &Value::Str(m));
            }
        }
        for item in items {
            if let Ok(Item::Field { index, value }) = item {
                match entry.and_then(|e| e.names.get(index as usize)) {
                    Some(name) => put_field(out, name, &value),
                    None => put_field(out, &format!("#{index}"), &value),
                }
            }
        }
        if dropped > 0 {
            let f = Field::dropped(dropped);
            put_field(out, f.name, &f.value);
        }
        match (entry, malformed) {
            (None, _) => Resolved::UnknownCallsite(id),
            (_, true) => Resolved::Malformed,
            _ => Resolved::Whole,
        }
    }
}

/// The kind a resolved record has.
pub(crate) const RESOLVED_KIND: Kind = Kind::LOG;

fn put_varint(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 10];
    let mut w = Writer::new(&mut buf, &mut []);
    w.varint(v);
    let n = w.len();
    out.extend_from_slice(buf.get(..n).unwrap_or(&[]));
}

/// A `str` as it was recorded (already cut by its writer: not cut again).
fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A field as the full form holds it: its name, its value's tag and body, texts as they
/// were recorded.
fn put_field(out: &mut Vec<u8>, name: &str, value: &Value<'_>) {
    put_str(out, name);
    out.push(value.tag());
    match *value {
        Value::Str(s) => put_str(out, s),
        Value::Bytes(b) => {
            put_varint(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        other => {
            let mut buf = [0u8; 10];
            let mut w = Writer::new(&mut buf, &mut []);
            other.encode_body(&mut w);
            let n = w.len();
            out.extend_from_slice(buf.get(..n).unwrap_or(&[]));
        }
    }
}
