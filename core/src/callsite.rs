//! The callsite form of a log line (`WIRE-FORMAT.md` sections 6 and 9): what every record of
//! one `tracing` or `log` callsite shares (target, level, literal message, file, line, field
//! names) is stored once, as a [`Callsite`] in a dump's callsite table (frames of type
//! [`FRAME_CALLSITES`]); each record ([`Kind::CALLSITE`](crate::Kind::CALLSITE)) holds the
//! callsite's id and its raw values only.
//!
//! A record's payload is the id, then items to the end of the payload. An item is a varint
//! head, `index << 3 | tag`, then a body: tags `0..=5` are [`Value`]'s own tags
//! ([`Value::tag`]) and the body is the value's (field `index` of the callsite's names); tag
//! [`TAG_MESSAGE`] is the message text (when it is not the callsite's literal message), tag
//! [`TAG_DROPPED`] the number of fields not kept. One set of tags: a field value is written
//! by [`Value::encode_body`], as in a [`Log`](crate::event::Log)'s fields.
//!
//! ```
//! use flightrec_core::callsite::{self, Callsite, Item, Names};
//! use flightrec_core::encode::{to_slice, Writer};
//! use flightrec_core::event::Value;
//! use flightrec_core::Level;
//!
//! let site = Callsite { id: 3, level: Level::Debug, target: "gw", message: Some("login attempt"),
//!                       file: "src/gw.rs", line: 7, names: Names::Slice(&["user", "message"]) };
//! let mut table = [0u8; 64];
//! let n = to_slice(&site, &mut table).unwrap();
//! let (back, _) = Callsite::decode(&table[..n]).unwrap();
//! assert_eq!(back.target, "gw");
//!
//! let mut payload = [0u8; 16];
//! let mut w = Writer::new(&mut payload, &mut []);
//! w.varint(3);
//! callsite::write_value(&mut w, 0, &Value::Str("alice"));
//! let len = w.len();
//! let (id, mut items) = callsite::record(&payload[..len]).unwrap();
//! assert_eq!(id, 3);
//! assert_eq!(items.next(), Some(Ok(Item::Field { index: 0, value: Value::Str("alice") })));
//! assert_eq!(items.next(), None);
//! ```

use crate::encode::{Encode, Writer};
use crate::event::{DecodeError, Value, MESSAGE_MAX, NAME_MAX, TARGET_MAX, TEXT_MAX};
use crate::{Kind, Level};

/// Frame type of a callsite table frame: [`Callsite`]s back to back, to the end of the body.
pub const FRAME_CALLSITES: u8 = b'C';
/// Item tag of a message text.
pub const TAG_MESSAGE: u8 = 6;
/// Item tag of the number of fields not kept.
pub const TAG_DROPPED: u8 = 7;
/// Most field names a callsite keeps (`tracing`'s own limit).
pub const NAMES_MAX: usize = 32;
/// Longest source file name kept.
pub const FILE_MAX: usize = TEXT_MAX;

/// What all records of one callsite share.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Callsite<'a> {
    /// Its id, unique within the writer's table.
    pub id: u32,
    /// The level its records have.
    pub level: Level,
    /// Module or component (cut to [`TARGET_MAX`]).
    pub target: &'a str,
    /// The literal message of its records that carry none (cut to [`MESSAGE_MAX`]).
    pub message: Option<&'a str>,
    /// Source file (cut to [`FILE_MAX`]); may be empty.
    pub file: &'a str,
    /// Source line; 0 when unknown.
    pub line: u32,
    /// Its field names, by index.
    pub names: Names<'a>,
}

/// A callsite's field names: a slice when writing, the encoded bytes when decoding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Names<'a> {
    /// Names given by the writer.
    Slice(&'a [&'a str]),
    /// Names as recorded: a count and their encoding.
    Encoded {
        /// How many.
        count: u64,
        /// Their bytes.
        bytes: &'a [u8],
    },
}

impl<'a> Names<'a> {
    /// Iterates the names; a malformed one ends the iteration with an error item.
    pub fn iter(&self) -> NameIter<'a> {
        match *self {
            Names::Slice(s) => NameIter::Slice(s.iter()),
            Names::Encoded { count, bytes } => NameIter::Encoded { left: count, bytes },
        }
    }
}

/// Iterator over [`Names`].
#[derive(Clone, Debug)]
pub enum NameIter<'a> {
    /// Over a slice.
    Slice(core::slice::Iter<'a, &'a str>),
    /// Over encoded bytes.
    Encoded {
        /// Names still to read.
        left: u64,
        /// Their bytes.
        bytes: &'a [u8],
    },
}

impl<'a> Iterator for NameIter<'a> {
    type Item = Result<&'a str, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            NameIter::Slice(it) => it.next().copied().map(Ok),
            NameIter::Encoded { left, bytes } => {
                if *left == 0 {
                    return None;
                }
                match postcard::take_from_bytes::<&str>(bytes) {
                    Ok((name, rest)) => {
                        *left -= 1;
                        *bytes = rest;
                        Some(Ok(name))
                    }
                    Err(_) => {
                        *left = 0;
                        Some(Err(ERR))
                    }
                }
            }
        }
    }
}

const ERR: DecodeError = DecodeError {
    kind: Kind::CALLSITE,
};

impl Encode for Callsite<'_> {
    fn encode(&self, w: &mut Writer<'_>) {
        w.varint(u64::from(self.id));
        w.u8(self.level as u8);
        w.str_bounded(self.target, TARGET_MAX);
        w.option(self.message, |w, m| w.str_bounded(m, MESSAGE_MAX));
        w.str_bounded(self.file, FILE_MAX);
        w.varint(u64::from(self.line));
        match self.names {
            Names::Slice(names) => {
                let kept = names.get(..NAMES_MAX).unwrap_or(names);
                w.varint(kept.len() as u64);
                for n in kept {
                    w.str_bounded(n, NAME_MAX);
                }
            }
            Names::Encoded { count, bytes } => {
                w.varint(count);
                w.bytes(bytes);
            }
        }
    }
}

impl<'a> Callsite<'a> {
    /// Decodes one callsite from the front of `bytes` (a table frame's body holds them back
    /// to back); the callsite and the bytes after it.
    pub fn decode(bytes: &'a [u8]) -> Result<(Callsite<'a>, &'a [u8]), DecodeError> {
        let e = |_| ERR;
        let (id, b) = postcard::take_from_bytes::<u32>(bytes).map_err(e)?;
        let (level, b) = postcard::take_from_bytes::<u8>(b).map_err(e)?;
        let level = Level::from_u8(level).ok_or(ERR)?;
        let (target, b) = postcard::take_from_bytes::<&str>(b).map_err(e)?;
        let (message, b) = postcard::take_from_bytes::<Option<&str>>(b).map_err(e)?;
        let (file, b) = postcard::take_from_bytes::<&str>(b).map_err(e)?;
        let (line, b) = postcard::take_from_bytes::<u32>(b).map_err(e)?;
        let (count, b) = postcard::take_from_bytes::<u64>(b).map_err(e)?;
        // The names' extent: walked once here, so that the next callsite can be found.
        let mut rest = b;
        for _ in 0..count {
            let (_, r) = postcard::take_from_bytes::<&str>(rest).map_err(e)?;
            rest = r;
        }
        let names = Names::Encoded {
            count,
            bytes: b.get(..b.len() - rest.len()).unwrap_or(&[]),
        };
        Ok((
            Callsite {
                id,
                level,
                target,
                message,
                file,
                line,
                names,
            },
            rest,
        ))
    }
}

/// An item's head: `index << 3 | tag`.
#[inline(always)]
pub const fn head(index: u32, tag: u8) -> u64 {
    ((index as u64) << 3) | (tag as u64 & 7)
}

/// Writes field `index`'s value as an item of a callsite record.
#[cfg_attr(not(target_os = "none"), inline(always))]
pub fn write_value(w: &mut Writer<'_>, index: u32, value: &Value<'_>) {
    w.varint(head(index, value.tag()));
    value.encode_body(w);
}

/// Writes a message item (a message that is not the callsite's literal one).
pub fn write_message(w: &mut Writer<'_>, text: &str) {
    w.varint(head(0, TAG_MESSAGE));
    w.str_bounded(text, MESSAGE_MAX);
}

/// Writes the item counting fields not kept.
pub fn write_dropped(w: &mut Writer<'_>, dropped: u64) {
    w.varint(head(0, TAG_DROPPED));
    w.varint(dropped);
}

/// One item of a callsite record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Item<'a> {
    /// Field `index`'s value.
    Field {
        /// Index into the callsite's names.
        index: u32,
        /// The value.
        value: Value<'a>,
    },
    /// The message text, instead of the callsite's literal one.
    Message(&'a str),
    /// How many fields were not kept.
    Dropped(u64),
}

/// A callsite record's id and an iterator over its items.
pub fn record(payload: &[u8]) -> Result<(u32, Items<'_>), DecodeError> {
    let (id, rest) = postcard::take_from_bytes::<u32>(payload).map_err(|_| ERR)?;
    Ok((
        id,
        Items {
            bytes: rest,
            failed: false,
        },
    ))
}

/// Iterator over a callsite record's items; a malformed item ends it with an error item.
#[derive(Clone, Debug)]
pub struct Items<'a> {
    bytes: &'a [u8],
    failed: bool,
}

impl<'a> Items<'a> {
    /// Bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    fn item(bytes: &'a [u8]) -> Result<(Item<'a>, &'a [u8]), postcard::Error> {
        use postcard::take_from_bytes as take;
        let (h, b) = take::<u64>(bytes)?;
        let index = u32::try_from(h >> 3).map_err(|_| postcard::Error::DeserializeBadVarint)?;
        Ok(match h & 7 {
            0 => take::<bool>(b).map(|(v, r)| (Value::Bool(v), r))?,
            1 => take::<i64>(b).map(|(v, r)| (Value::I64(v), r))?,
            2 => take::<u64>(b).map(|(v, r)| (Value::U64(v), r))?,
            3 => take::<f64>(b).map(|(v, r)| (Value::F64(v), r))?,
            4 => take::<&str>(b).map(|(v, r)| (Value::Str(v), r))?,
            5 => take::<&[u8]>(b).map(|(v, r)| (Value::Bytes(v), r))?,
            6 => {
                let (text, r) = take::<&str>(b)?;
                return Ok((Item::Message(text), r));
            }
            _ => {
                let (n, r) = take::<u64>(b)?;
                return Ok((Item::Dropped(n), r));
            }
        })
        .map(|(value, r)| (Item::Field { index, value }, r))
    }
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<Item<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.bytes.is_empty() || self.failed {
            return None;
        }
        match Self::item(self.bytes) {
            Ok((item, rest)) => {
                self.bytes = rest;
                Some(Ok(item))
            }
            Err(_) => {
                // Stop here: `rest` keeps what could not be read.
                self.failed = true;
                Some(Err(ERR))
            }
        }
    }
}
