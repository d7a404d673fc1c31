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

/// Ids below this are kept in a vector indexed by id (writers number callsites from 0 as
/// they first see them): no hashing per record. Others, in a map.
const DENSE_MAX: u32 = 4096;

/// A dump's callsite table, as read so far.
#[derive(Default)]
pub(crate) struct Table {
    dense: Vec<Option<Entry>>,
    sparse: HashMap<u32, Entry>,
    count: usize,
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
            if self.count >= ENTRIES_MAX || self.bytes + size > BYTES_MAX {
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
            self.insert(
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

    fn insert(&mut self, id: u32, entry: Entry) {
        self.count += 1;
        if id < DENSE_MAX {
            let i = id as usize;
            if self.dense.len() <= i {
                self.dense.resize_with(i + 1, || None);
            }
            if let Some(slot) = self.dense.get_mut(i) {
                *slot = Some(entry);
            }
        } else {
            self.sparse.insert(id, entry);
        }
    }

    fn get(&self, id: u32) -> Option<&Entry> {
        if id < DENSE_MAX {
            self.dense.get(id as usize).and_then(Option::as_ref)
        } else {
            self.sparse.get(&id)
        }
    }

    /// Writes into `out` the payload of the [`Kind::LOG`] record a [`Kind::CALLSITE`]
    /// record's `payload` stands for; `fields` is scratch space. The items are read once:
    /// the fields are written to `fields` as they come, the message (the last one given
    /// wins) and the counts noted, then the line is put together.
    pub(crate) fn resolve(
        &self,
        payload: &[u8],
        out: &mut Vec<u8>,
        fields: &mut Vec<u8>,
    ) -> Resolved {
        out.clear();
        fields.clear();
        let Ok((id, items)) = callsite::record(payload) else {
            // Not even an id: an empty line saying so.
            put_str(out, "");
            put_str(out, "callsite ?");
            put_varint(out, 0);
            return Resolved::Malformed;
        };
        let entry = self.get(id);
        let (mut message, mut count, mut dropped, mut malformed) = (None, 0u64, 0u64, false);
        for item in items {
            match item {
                Ok(Item::Message(m)) => message = Some(m),
                Ok(Item::Field { index, value }) => {
                    count += 1;
                    match entry.and_then(|e| e.names.get(index as usize)) {
                        Some(name) => put_field(fields, name, &value),
                        None => put_field(fields, &format!("#{index}"), &value),
                    }
                }
                Ok(Item::Dropped(n)) => dropped = dropped.saturating_add(n),
                Err(_) => malformed = true,
            }
        }
        let unknown;
        let (target, text) = match entry {
            Some(e) => (
                e.target.as_str(),
                message.or(e.message.as_deref()).unwrap_or(""),
            ),
            None => {
                unknown = format!("callsite {id}");
                ("", unknown.as_str())
            }
        };
        // Unknown callsite: its message, if it carries one, is shown as the first field.
        let message_field = message.filter(|_| entry.is_none());
        count += u64::from(message_field.is_some()) + u64::from(dropped > 0);
        put_str(out, target);
        put_str(out, text);
        put_varint(out, count);
        if let Some(m) = message_field {
            put_field(out, "message", &Value::Str(m));
        }
        out.extend_from_slice(fields);
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

#[cfg(test)]
mod tests {
    use super::*;
    use flightrec_core::callsite::Names;
    use flightrec_core::event::{decode, Decoded};
    use flightrec_core::Level;

    fn table_frame(ids: &[u32]) -> Vec<u8> {
        let mut body = Vec::new();
        for &id in ids {
            let target = format!("t{id}");
            let site = Callsite {
                id,
                level: Level::Info,
                target: &target,
                message: Some("hello"),
                file: "f.rs",
                line: 1,
                names: Names::Slice(&["n"]),
            };
            let mut buf = [0u8; 256];
            let n = flightrec_core::encode::to_slice(&site, &mut buf).unwrap();
            body.extend_from_slice(&buf[..n]);
        }
        body
    }

    fn record(id: u32, value: u64) -> Vec<u8> {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf, &mut []);
        w.varint(u64::from(id));
        callsite::write_value(&mut w, 0, &Value::U64(value));
        let n = w.len();
        buf[..n].to_vec()
    }

    /// Ids in the dense part, past it, at the top of the range; one given twice (the later
    /// wins); one missing.
    #[test]
    fn any_id_resolves_to_its_entry() {
        let mut t = Table::default();
        assert!(t.add_frame(&table_frame(&[
            0,
            3,
            DENSE_MAX - 1,
            DENSE_MAX,
            5000,
            u32::MAX
        ])));
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        for id in [0, 3, DENSE_MAX - 1, DENSE_MAX, 5000, u32::MAX] {
            assert_eq!(
                t.resolve(&record(id, 7), &mut out, &mut scratch),
                Resolved::Whole
            );
            let Decoded::Log(l) = decode(Kind::LOG, Level::Info, &out).unwrap() else {
                panic!()
            };
            assert_eq!((l.target, l.message), (format!("t{id}").as_str(), "hello"));
            let fields: Vec<_> = l.fields.iter().map(Result::unwrap).collect();
            assert_eq!(fields.len(), 1);
            assert_eq!((fields[0].name, fields[0].value), ("n", Value::U64(7)));
        }
        assert_eq!(
            t.resolve(&record(1, 7), &mut out, &mut scratch),
            Resolved::UnknownCallsite(1)
        );
        assert_eq!(
            t.resolve(&record(DENSE_MAX + 1, 7), &mut out, &mut scratch),
            Resolved::UnknownCallsite(DENSE_MAX + 1)
        );
        // Given again, the later entry wins, in either part.
        let frame = table_frame(&[3]);
        let mut again = Callsite::decode(&frame).unwrap().0;
        again.target = "again";
        let mut buf = [0u8; 256];
        let n = flightrec_core::encode::to_slice(&again, &mut buf).unwrap();
        assert!(t.add_frame(&buf[..n]));
        assert_eq!(
            t.resolve(&record(3, 1), &mut out, &mut scratch),
            Resolved::Whole
        );
        let Decoded::Log(l) = decode(Kind::LOG, Level::Info, &out).unwrap() else {
            panic!()
        };
        assert_eq!(l.target, "again");
    }
}
