//! Zero-allocation encoding of log payloads, straight from `tracing` and `log` callbacks.
//!
//! The bytes are exactly what `flightrec_core` writes for an [`event::Log`] (postcard, strings
//! bounded and visibly cut as `WIRE-FORMAT.md` section 6 says); a test checks them against
//! core's serialiser. Everything lives in fixed buffers on the stack: no heap allocation per
//! event. Values given as `Debug` (including `tracing`'s message) are formatted into a fixed
//! buffer; plain values (`str`, integers, floats, booleans) are encoded without formatting.

use core::fmt::{self, Write as _};

use flightrec_core::event::{FIELDS_MAX, MESSAGE_MAX, NAME_MAX, TARGET_MAX, VALUE_MAX};

/// Bytes of the encoded fields section (16 fields at their bounds plus the dropped counter fit).
const FIELDS_BYTES: usize = 4096;

/// A byte buffer of bounded size: its memory is reserved once and reused for every event
/// (no zeroing, no moves of big arrays per event). Writes past the bound are refused (the
/// caller sized it so that bounded data always fits).
pub(crate) struct FixedBuf {
    buf: Vec<u8>,
    cap: usize,
}

impl FixedBuf {
    pub(crate) fn new(cap: usize) -> Self {
        FixedBuf {
            buf: Vec::with_capacity(cap),
            cap,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// Appends `b` whole, or nothing.
    fn put(&mut self, b: &[u8]) -> bool {
        if self.buf.len() + b.len() > self.cap {
            return false;
        }
        self.buf.extend_from_slice(b);
        true
    }

    fn varint(&mut self, mut v: u64) -> bool {
        let mut tmp = [0u8; 10];
        let mut n = 0;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if let Some(slot) = tmp.get_mut(n) {
                *slot = if v == 0 { byte } else { byte | 0x80 };
            }
            n += 1;
            if v == 0 || n >= tmp.len() {
                break;
            }
        }
        self.put(tmp.get(..n).unwrap_or(&[]))
    }

    /// A postcard `str` cut to `max` bytes at a character boundary, with core's marker
    /// `…[+N]` when cut. `extra_cut` counts bytes already lost before `s` reached us.
    fn str_bounded(&mut self, s: &str, max: usize, extra_cut: usize) -> bool {
        let (kept, cut) = if s.len() <= max {
            (s, extra_cut)
        } else {
            let mut end = max;
            while !s.is_char_boundary(end) {
                end -= 1; // terminates: 0 is a char boundary
            }
            (s.get(..end).unwrap_or(""), s.len() - end + extra_cut)
        };
        if cut == 0 {
            return self.varint(kept.len() as u64) && self.put(kept.as_bytes());
        }
        // "…[+N]": at most 3 + 2 + 20 + 1 bytes, on the stack.
        let mut marker = Marker([0; 32], 0);
        let _ = write!(marker, "…[+{cut}]");
        let marker = marker.0.get(..marker.1).unwrap_or(&[]);
        let len = kept.len() + marker.len();
        self.varint(len as u64) && self.put(kept.as_bytes()) && self.put(marker)
    }
}

/// A cut marker's bytes.
struct Marker([u8; 32], usize);

impl fmt::Write for Marker {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let dst = self.0.get_mut(self.1..self.1 + s.len()).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.1 += s.len();
        Ok(())
    }
}

/// Formats into at most `cap` bytes, keeping the first bytes and counting everything
/// written, so a cut can be reported exactly like core reports it. Reused across events.
pub(crate) struct Truncating {
    buf: Vec<u8>,
    cap: usize,
    total: usize,
}

impl Truncating {
    pub(crate) fn new(cap: usize) -> Self {
        Truncating {
            buf: Vec::with_capacity(cap),
            cap,
            total: 0,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.total = 0;
    }

    /// Formats `value` with `Debug` (for `fmt::Arguments`, the same as `Display`),
    /// replacing what was there.
    pub(crate) fn debug(&mut self, value: &dyn fmt::Debug) {
        self.clear();
        let _ = write!(self, "{value:?}");
    }

    /// Formats `value` with `Display`, replacing what was there.
    pub(crate) fn display(&mut self, value: &dyn fmt::Display) {
        self.clear();
        let _ = write!(self, "{value}");
    }

    /// Sets plain text, replacing what was there.
    pub(crate) fn text(&mut self, value: &str) {
        self.clear();
        let _ = self.write_str(value);
    }

    /// The kept text (whole characters only) and how many bytes were cut after it.
    pub(crate) fn parts(&self) -> (&str, usize) {
        let bytes = &self.buf[..];
        let kept = match core::str::from_utf8(bytes) {
            Ok(s) => s,
            // A character cut by the buffer's end: keep what precedes it.
            Err(e) => {
                core::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or(&[])).unwrap_or("")
            }
        };
        (kept, self.total - kept.len())
    }
}

impl fmt::Write for Truncating {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.total += s.len();
        let room = self.cap.saturating_sub(self.buf.len());
        let take = s.len().min(room);
        self.buf
            .extend_from_slice(s.as_bytes().get(..take).unwrap_or(&[]));
        Ok(()) // never fail: the total still has to be counted
    }
}

/// Collects a record's fields in their wire encoding.
pub(crate) struct FieldsBuf {
    bytes: FixedBuf,
    count: usize,
    dropped: u64,
    /// Where `Debug` values are formatted before they are encoded.
    value: Truncating,
}

impl FieldsBuf {
    pub(crate) fn new() -> Self {
        FieldsBuf {
            bytes: FixedBuf::new(FIELDS_BYTES),
            count: 0,
            dropped: 0,
            value: Truncating::new(VALUE_MAX),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.count = 0;
        self.dropped = 0;
    }

    /// Number of fields kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Appends one field, or nothing if it does not fit (only possible past the bounds).
    fn add(&mut self, name: &str, value: impl FnOnce(&mut FixedBuf) -> bool) {
        if self.count >= FIELDS_MAX {
            self.dropped += 1;
            return;
        }
        let mark = self.bytes.len();
        if self.bytes.str_bounded(name, NAME_MAX, 0) && value(&mut self.bytes) {
            self.count += 1;
        } else {
            self.bytes.truncate(mark);
            self.dropped += 1;
        }
    }

    pub(crate) fn bool(&mut self, name: &str, v: bool) {
        self.add(name, |b| b.varint(0) && b.put(&[u8::from(v)]));
    }

    pub(crate) fn i64(&mut self, name: &str, v: i64) {
        let zigzag = ((v << 1) ^ (v >> 63)) as u64;
        self.add(name, |b| b.varint(1) && b.varint(zigzag));
    }

    pub(crate) fn u64(&mut self, name: &str, v: u64) {
        self.add(name, |b| b.varint(2) && b.varint(v));
    }

    pub(crate) fn f64(&mut self, name: &str, v: f64) {
        self.add(name, |b| b.varint(3) && b.put(&v.to_le_bytes()));
    }

    pub(crate) fn str(&mut self, name: &str, v: &str) {
        self.add(name, |b| b.varint(4) && b.str_bounded(v, VALUE_MAX, 0));
    }

    /// A string given in pieces: kept text and bytes cut before it reached us.
    pub(crate) fn str_cut(&mut self, name: &str, kept: &str, cut: usize) {
        self.add(name, |b| b.varint(4) && b.str_bounded(kept, VALUE_MAX, cut));
    }

    pub(crate) fn bytes(&mut self, name: &str, v: &[u8]) {
        let v = v.get(..VALUE_MAX).unwrap_or(v);
        self.add(name, |b| {
            b.varint(5) && b.varint(v.len() as u64) && b.put(v)
        });
    }

    /// A value given as `Debug`: formatted into a bounded buffer.
    pub(crate) fn debug(&mut self, name: &str, v: &dyn fmt::Debug) {
        if self.count >= FIELDS_MAX {
            self.dropped += 1;
            return;
        }
        let mut text = std::mem::replace(&mut self.value, Truncating::new(0));
        text.debug(v);
        let (kept, cut) = text.parts();
        self.str_cut(name, kept, cut);
        self.value = text;
    }

    /// A value given as `Display` (errors): formatted into a bounded buffer.
    pub(crate) fn display(&mut self, name: &str, v: &dyn fmt::Display) {
        if self.count >= FIELDS_MAX {
            self.dropped += 1;
            return;
        }
        let mut text = std::mem::replace(&mut self.value, Truncating::new(0));
        text.display(v);
        let (kept, cut) = text.parts();
        self.str_cut(name, kept, cut);
        self.value = text;
    }
}

/// Reusable buffers for encoding one log record (one set per thread).
pub(crate) struct Scratch {
    pub(crate) message: Truncating,
    pub(crate) fields: FieldsBuf,
    head: FixedBuf,
    tail: FixedBuf,
}

/// Target (64 + marker), message (256 + marker), count: well under this.
const HEAD_BYTES: usize = 512;

impl Scratch {
    pub(crate) fn new() -> Self {
        Scratch {
            message: Truncating::new(MESSAGE_MAX),
            fields: FieldsBuf::new(),
            head: FixedBuf::new(HEAD_BYTES),
            tail: FixedBuf::new(64),
        }
    }

    /// Empties everything for the next record.
    pub(crate) fn clear(&mut self) {
        self.message.clear();
        self.fields.clear();
    }

    /// Encodes `target`, the message and the fields as a payload in three pieces; `None`
    /// only if a bound was broken (cannot happen with core's bounds).
    pub(crate) fn encode(&mut self, target: &str) -> Option<LogParts<'_>> {
        let fields = &self.fields;
        let dropped = fields.dropped > 0;
        let (text, cut) = self.message.parts();
        self.head.clear();
        let ok = self.head.str_bounded(target, TARGET_MAX, 0)
            && self.head.str_bounded(text, MESSAGE_MAX, cut)
            && self
                .head
                .varint((fields.count + usize::from(dropped)) as u64);
        self.tail.clear();
        // Same shape as core: a last field named `…dropped` holding the count.
        let ok = ok
            && (!dropped
                || (self.tail.str_bounded("…dropped", NAME_MAX, 0)
                    && self.tail.varint(2)
                    && self.tail.varint(fields.dropped)));
        ok.then_some(LogParts {
            head: self.head.as_slice(),
            fields: fields.bytes.as_slice(),
            tail: self.tail.as_slice(),
        })
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Option<Scratch>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with this thread's scratch buffers, emptied. Allocates them on a thread's first
/// record only; a re-entrant record (a `Debug` impl that logs) or one during thread exit
/// gets fresh buffers instead.
pub(crate) fn with_scratch(f: impl FnOnce(&mut Scratch)) {
    let mut f = Some(f);
    let _ = SCRATCH.try_with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            if let Some(f) = f.take() {
                let scratch = slot.get_or_insert_with(Scratch::new);
                scratch.clear();
                f(scratch);
            }
        }
    });
    if let Some(f) = f {
        f(&mut Scratch::new());
    }
}

/// A log payload in three pieces (head, fields, tail), copied straight into the ring.
pub(crate) struct LogParts<'s> {
    head: &'s [u8],
    fields: &'s [u8],
    tail: &'s [u8],
}

impl LogParts<'_> {
    /// Payload length.
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.fields.len() + self.tail.len()
    }

    /// The payload's pieces, in order.
    pub(crate) fn pieces(&self) -> [&[u8]; 3] {
        [self.head, self.fields, self.tail]
    }

    /// Copies the payload into the ring's two pieces (`a` then `b`), whose lengths add up to
    /// [`len`](Self::len).
    pub(crate) fn copy_to(&self, a: &mut [u8], b: &mut [u8]) -> bool {
        let mut out = Scatter { a, b, at: 0 };
        out.put(self.head) && out.put(self.fields) && out.put(self.tail)
    }
}

/// Writes consecutive bytes across two slices.
struct Scatter<'a> {
    a: &'a mut [u8],
    b: &'a mut [u8],
    at: usize,
}

impl Scatter<'_> {
    fn put(&mut self, src: &[u8]) -> bool {
        let (mut src, alen) = (src, self.a.len());
        if self.at < alen {
            let n = src.len().min(alen - self.at);
            let (now, rest) = src.split_at(n);
            match self.a.get_mut(self.at..self.at + n) {
                Some(dst) => dst.copy_from_slice(now),
                None => return false,
            }
            self.at += n;
            src = rest;
        }
        if src.is_empty() {
            return true;
        }
        let from = self.at - alen;
        match self.b.get_mut(from..from + src.len()) {
            Some(dst) => dst.copy_from_slice(src),
            None => return false,
        }
        self.at += src.len();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightrec_core::event::{Field, Fields, Log, Value};
    use flightrec_core::Level;
    use proptest::prelude::*;

    fn ours(target: &str, message: &str, fields: &[Field<'_>]) -> Vec<u8> {
        let mut scratch = Scratch::new();
        // Reuse must not leak the previous record's bytes.
        scratch.fields.str("stale", "x");
        scratch.message.text("stale");
        scratch.clear();
        let fb = &mut scratch.fields;
        for f in fields {
            match f.value {
                Value::Bool(v) => fb.bool(f.name, v),
                Value::I64(v) => fb.i64(f.name, v),
                Value::U64(v) => fb.u64(f.name, v),
                Value::F64(v) => fb.f64(f.name, v),
                Value::Str(v) => fb.str(f.name, v),
                Value::Bytes(v) => fb.bytes(f.name, v),
            }
        }
        scratch.message.text(message);
        let parts = scratch.encode(target).unwrap();
        // Split at an arbitrary place, as a ring's wrap would.
        let mut buf = vec![0u8; parts.len()];
        let (a, b) = buf.split_at_mut(parts.len() / 3);
        assert!(parts.copy_to(a, b));
        buf
    }

    fn cores(target: &str, message: &str, fields: &[Field<'_>]) -> Vec<u8> {
        let log = Log {
            level: Level::Info,
            target,
            message,
            fields: Fields::Slice(fields),
        };
        postcard::to_allocvec(&log).unwrap()
    }

    fn value() -> impl Strategy<Value = Value<'static>> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::I64),
            any::<u64>().prop_map(Value::U64),
            any::<f64>().prop_map(Value::F64),
            ".{0,200}".prop_map(|s| Value::Str(Box::leak(s.into_boxed_str()))),
            proptest::collection::vec(any::<u8>(), 0..200)
                .prop_map(|b| Value::Bytes(Box::leak(b.into_boxed_slice()))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Our stack encoder writes the very bytes core's serialiser writes.
        #[test]
        fn same_bytes_as_core(
            target in ".{0,100}",
            message in ".{0,400}",
            fields in proptest::collection::vec(("[a-z_…é]{1,40}", value()), 0..20),
        ) {
            let fields: Vec<Field<'_>> =
                fields.iter().map(|(n, v)| Field { name: n.as_str(), value: *v }).collect();
            prop_assert_eq!(ours(&target, &message, &fields), cores(&target, &message, &fields));
        }
    }

    #[test]
    fn long_debug_value_is_cut_like_core() {
        let long = "é".repeat(300);
        let mut scratch = Scratch::new();
        scratch.fields.debug("v", &format_args!("{long}"));
        assert_eq!(scratch.fields.len(), 1);
        scratch.message.text("m");
        let parts = scratch.encode("t").unwrap();
        let mut buf = vec![0u8; parts.len()];
        assert!(parts.copy_to(&mut buf, &mut []));
        let field = [Field {
            name: "v",
            value: Value::Str(&long),
        }];
        assert_eq!(buf, cores("t", "m", &field).as_slice());
    }
}
