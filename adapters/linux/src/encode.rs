//! Zero-allocation encoding of log payloads, straight from `tracing` and `log` callbacks.
//!
//! The bytes are core's encoding of an [`event::Log`], written by core's encoder: every
//! name, value, tag, length and cut marker goes through [`flightrec_core::encode::Writer`]
//! and the [`Encode`] impls of [`Field`] and [`Value`]; what this module adds is where the
//! pieces go, and text formatted in place. A test checks the bytes against core's `Encode
//! for Log`. Values given as `Debug` (including `tracing`'s message) are formatted straight
//! into place and cut by core's rule ([`cut_point`], [`CutMarker`]); plain values (`str`,
//! integers, floats, booleans) are encoded without formatting.
//!
//! Why one buffer: the payload is built in its final order in one per-thread buffer and
//! copied into the ring once. The message (usually the first field `tracing` visits) is
//! formatted at a fixed offset, `HEAD`; the fields follow it as they are visited; only when
//! the message is known are its length and the target written *in front of* it, right
//! aligned, so nothing has to move. A field visited before the message goes after the room
//! the longest message can take, and is moved down once at the end (the only extra copy,
//! and only for events whose message is not their first field).
//!
//! [`event::Log`]: flightrec_core::event::Log

use core::fmt::{self, Write as _};

use flightrec_core::bytes::copy;
use flightrec_core::encode::{cut_point, varint_len, CutMarker, Encode, Writer};
use flightrec_core::event::{
    Field, Value, FIELDS_MAX, MESSAGE_MAX, NAME_MAX, TARGET_MAX, VALUE_MAX,
};

/// Longest cut marker: `…[+N]`.
const MARKER_MAX: usize = CutMarker::MAX;
/// Bytes before the message: the target's encoding (its bound, a marker, its length) and
/// the message's length fit.
const HEAD: usize = varint_len((TARGET_MAX + MARKER_MAX) as u64)
    + TARGET_MAX
    + MARKER_MAX
    + varint_len((MESSAGE_MAX + MARKER_MAX) as u64);
/// The message's room: its bound and a marker.
const MESSAGE_ROOM: usize = MESSAGE_MAX + MARKER_MAX;
/// The field count's room: one byte, as no more than `FIELDS_MAX` and `…dropped` are kept.
const COUNT: usize = varint_len(FIELDS_MAX as u64 + 1);
const _: () = assert!(COUNT == 1);
/// Where fields visited before the message go: after the longest message and the count.
const LATE: usize = HEAD + MESSAGE_ROOM + COUNT;
/// Room for the fields: `FIELDS_MAX` at their bounds and the `…dropped` field.
const FIELDS_ROOM: usize = (FIELDS_MAX + 1) * FIELD_MAX;
/// The longest field: a name and a value (tag, length, bytes) at their bounds, cut markers
/// included.
const FIELD_MAX: usize = 2 * varint_len(VALUE_MAX as u64 + MARKER_MAX as u64)
    + NAME_MAX
    + 1
    + VALUE_MAX
    + 2 * MARKER_MAX;
/// The whole buffer.
const BUF: usize = LATE + FIELDS_ROOM;

/// Formats into a window of the buffer, keeping a prefix cut at a character boundary (of
/// the whole text: a piece that does not fit is cut at its own boundary and nothing after
/// it is kept) and counting every byte written, so a cut is reported exactly like core
/// reports it. What it keeps is valid UTF-8 by construction: no validation afterwards.
pub(crate) struct Window<'a> {
    buf: &'a mut [u8],
    len: usize,
    /// Bytes written but not kept (counted only once something was cut: the common case
    /// does no counting).
    cut: usize,
    /// Bytes that may be kept: the window's length, then, once something was cut, what
    /// was kept (nothing after a cut may follow it).
    limit: usize,
    /// Pieces written: a literal message (`format_args!` without arguments) comes as one.
    pieces: u32,
}

impl<'a> Window<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        let limit = buf.len();
        Window {
            buf,
            len: 0,
            cut: 0,
            limit,
            pieces: 0,
        }
    }

    /// The kept bytes.
    pub(crate) fn kept(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Keeps what fits of `s`, cut at a character boundary, and nothing after it.
    #[cold]
    #[inline(never)]
    fn cut(&mut self, s: &str) {
        let take = cut_point(s, self.limit.saturating_sub(self.len));
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.len..self.len + take),
            s.as_bytes().get(..take),
        ) {
            copy(dst, src);
            self.len += take;
        }
        self.cut = self.cut.saturating_add(s.len() - take);
        self.limit = self.len;
    }
}

impl fmt::Write for Window<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.pieces = self.pieces.wrapping_add(1);
        let end = self.len + s.len();
        if end <= self.limit {
            if let Some(dst) = self.buf.get_mut(self.len..end) {
                copy(dst, s.as_bytes());
                self.len = end;
            }
        } else {
            self.cut(s);
        }
        Ok(()) // never fail: what is cut still has to be counted
    }
}

/// What [`format_at`] wrote.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Formatted {
    /// The text's length, cut marker included.
    pub(crate) len: usize,
    /// Whether the text is exactly what was formatted (not cut) and came in one piece:
    /// a literal message.
    pub(crate) whole_piece: bool,
}

/// Formats `value` into the `max` bytes of `buf` at `at`, followed by core's cut marker if
/// it was cut (`None` if the buffer cannot hold them).
#[inline]
pub(crate) fn format_at(
    buf: &mut [u8],
    at: usize,
    max: usize,
    value: impl FnOnce(&mut Window<'_>),
) -> Option<Formatted> {
    let room = buf.get_mut(at..at + max)?;
    let mut w = Window::new(room);
    value(&mut w);
    let (kept, cut, pieces) = (w.len, w.cut, w.pieces);
    if cut == 0 {
        return Some(Formatted {
            len: kept,
            whole_piece: pieces == 1,
        });
    }
    let mark = CutMarker::new(cut);
    let dst = buf.get_mut(at + kept..)?.get_mut(..mark.as_bytes().len())?;
    copy(dst, mark.as_bytes());
    Some(Formatted {
        len: kept + mark.as_bytes().len(),
        whole_piece: false,
    })
}

/// Builds one log payload (see the module's documentation for the layout). One per
/// thread, reused: its buffer is reserved once.
pub(crate) struct Encoder {
    buf: Box<[u8]>,
    /// Encoded length of the message at `HEAD` (text and marker), if one was given.
    message: Option<usize>,
    /// Where the fields start (0: no field yet).
    fields_at: usize,
    /// End of the fields.
    end: usize,
    count: usize,
    dropped: u64,
    /// Messages given, and whether the last one was literal (see [`Formatted`]).
    messages: u8,
    literal: bool,
}

impl Encoder {
    #[cold]
    #[inline(never)]
    pub(crate) fn new() -> Self {
        Encoder {
            buf: vec![0u8; BUF].into_boxed_slice(),
            message: None,
            fields_at: 0,
            end: 0,
            count: 0,
            dropped: 0,
            messages: 0,
            literal: false,
        }
    }

    /// Empties it for the next record.
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.message = None;
        self.fields_at = 0;
        self.end = 0;
        self.count = 0;
        self.dropped = 0;
        self.messages = 0;
        self.literal = false;
    }

    /// The message, if the record had exactly one and it was a literal (one piece, not
    /// cut): what its callsite's records say when they carry no message.
    pub(crate) fn literal_message(&self) -> Option<&str> {
        let len = self
            .message
            .filter(|_| self.messages == 1 && self.literal)?;
        std::str::from_utf8(self.buf.get(HEAD..HEAD + len)?).ok()
    }

    /// Appends what `f` writes through core's [`Writer`]; false if it does not fit (then
    /// the end does not move).
    #[inline(always)]
    fn encode(&mut self, f: impl FnOnce(&mut Writer<'_>)) -> bool {
        let Some(room) = self.buf.get_mut(self.end..) else {
            return false;
        };
        let mut w = Writer::new(room, &mut []);
        f(&mut w);
        let ok = !w.overflowed();
        if ok {
            self.end += w.len();
        }
        ok
    }

    /// Formats `value` as a `str` at the end, cut to `max` bytes (and marked).
    fn str_formatted(&mut self, max: usize, value: impl FnOnce(&mut Window<'_>)) -> bool {
        // Room for a one-byte length; moved on in the rare case it takes more.
        let at = self.end + 1;
        let Some(len) = self.format_at(at, max, value) else {
            return false;
        };
        let more = varint_len(len as u64) - 1;
        if more > 0 {
            if at + len + more > self.buf.len() {
                return false;
            }
            self.buf.copy_within(at..at + len, at + more);
        }
        // The text is in place: the length goes in front of it (`end` skips the text).
        self.encode(|w| w.varint(len as u64)) && {
            self.end += len;
            true
        }
    }

    /// Moves the fields (`fields_at..end`) to `to`; false if they would not fit.
    fn move_fields(&mut self, to: usize) -> bool {
        let (from, n) = (self.fields_at, self.end - self.fields_at);
        if to + n > self.buf.len() {
            return false;
        }
        self.buf.copy_within(from..from + n, to);
        self.fields_at = to;
        self.end = to + n;
        true
    }

    /// Formats `value` into the `max` bytes at `at` ([`format_at`]).
    #[inline]
    fn format_at(
        &mut self,
        at: usize,
        max: usize,
        value: impl FnOnce(&mut Window<'_>),
    ) -> Option<usize> {
        format_at(&mut self.buf, at, max, value).map(|f| f.len)
    }

    /// Whether one more field is kept (if not, it is counted as dropped); places the
    /// fields on the first.
    #[inline]
    fn field_room(&mut self) -> bool {
        if self.count >= FIELDS_MAX {
            self.dropped += 1;
            return false;
        }
        if self.fields_at == 0 {
            // Right after the message and the count if the message came first.
            self.fields_at = match self.message {
                Some(len) => HEAD + len + COUNT,
                None => LATE,
            };
            self.end = self.fields_at;
        }
        true
    }

    /// Counts a field written, or dropped (then what it wrote is taken back to `mark`).
    #[inline]
    fn field_end(&mut self, mark: usize, ok: bool) {
        if ok {
            self.count += 1;
        } else {
            self.end = mark;
            self.dropped += 1;
        }
    }

    /// A field with a plain value: core's encoding of it (inlined, so that each value type
    /// has its own copy with its tag and encoding known).
    #[inline(always)]
    fn field(&mut self, field: Field<'_>) {
        if !self.field_room() {
            return;
        }
        // Not through `encode`'s closure: the compiler keeps a closure out of line, shared
        // by every value type.
        let Some(room) = self.buf.get_mut(self.end..) else {
            self.dropped += 1;
            return;
        };
        let mut w = Writer::new(room, &mut []);
        field.encode(&mut w);
        if w.overflowed() {
            self.dropped += 1;
        } else {
            self.end += w.len();
            self.count += 1;
        }
    }

    #[inline]
    pub(crate) fn bool(&mut self, name: &str, v: bool) {
        self.field(Field {
            name,
            value: Value::Bool(v),
        });
    }

    #[inline]
    pub(crate) fn i64(&mut self, name: &str, v: i64) {
        self.field(Field {
            name,
            value: Value::I64(v),
        });
    }

    #[inline]
    pub(crate) fn u64(&mut self, name: &str, v: u64) {
        self.field(Field {
            name,
            value: Value::U64(v),
        });
    }

    #[inline]
    pub(crate) fn f64(&mut self, name: &str, v: f64) {
        self.field(Field {
            name,
            value: Value::F64(v),
        });
    }

    #[inline]
    pub(crate) fn str(&mut self, name: &str, v: &str) {
        self.field(Field {
            name,
            value: Value::Str(v),
        });
    }

    #[inline]
    pub(crate) fn bytes(&mut self, name: &str, v: &[u8]) {
        self.field(Field {
            name,
            value: Value::Bytes(v),
        });
    }

    /// Ends the record: writes the count (and core's `…dropped` field), the message's
    /// length and the target in front of the message, and gives the payload. `None` only
    /// if a bound was broken (cannot happen with core's bounds).
    pub(crate) fn finish(&mut self, target: &str) -> Option<&[u8]> {
        let message = self.message.unwrap_or(0);
        let count_at = HEAD + message;
        let fields = count_at + COUNT;
        if self.fields_at == 0 {
            self.end = fields;
        } else if self.fields_at != fields {
            // Fields visited before the message (at `LATE`): move them down behind it.
            if self.fields_at < fields || !self.move_fields(fields) {
                return None;
            }
        }
        let dropped = self.dropped;
        if dropped > 0 && !self.encode(|w| Field::dropped(dropped).encode(w)) {
            return None;
        }
        let count = self.count + usize::from(dropped > 0);
        let mut w = Writer::new(self.buf.get_mut(count_at..fields)?, &mut []);
        w.varint(count as u64);
        if w.overflowed() {
            return None;
        }

        // In front of the message: its length, and before that the target.
        let start = self.front(message, target)?;
        self.buf.get(start..self.end)
    }

    /// Writes the target and the message's length in front of the message at `HEAD`;
    /// gives where the payload starts.
    #[inline]
    fn front(&mut self, message: usize, target: &str) -> Option<usize> {
        let t = target.len();
        let len = if t <= TARGET_MAX {
            // Not cut: a `str` is its length and its bytes.
            varint_len(t as u64) + t + varint_len(message as u64)
        } else {
            Self::front_cut_len(message, target)
        };
        let start = HEAD.checked_sub(len)?;
        let mut w = Writer::new(self.buf.get_mut(start..HEAD)?, &mut []);
        w.str_bounded(target, TARGET_MAX);
        w.varint(message as u64);
        (w.len() == len && !w.overflowed()).then_some(start)
    }

    /// What [`front`](Self::front) writes for a target that is cut, counted by core's
    /// writer.
    #[cold]
    #[inline(never)]
    fn front_cut_len(message: usize, target: &str) -> usize {
        let mut count = Writer::counter();
        count.str_bounded(target, TARGET_MAX);
        count.varint(message as u64);
        count.len()
    }
}

/// An encoder that formats text in place: the message, and fields given as `Debug` or
/// `Display`. [`Encoder`] (fields by name) and `SiteEncoder` (fields by index) say where the
/// text goes; the ways `tracing` and `log` hand text over are written here, once.
pub(crate) trait FormatSink {
    /// How a field is named: its name, or its index in the callsite's names.
    type Key<'k>;

    /// Sets the message, written by `value` (the last message given wins).
    fn message_with(&mut self, value: impl FnOnce(&mut Window<'_>));

    /// A text field written by `value`, formatted in place and bounded.
    fn formatted(&mut self, key: Self::Key<'_>, value: impl FnOnce(&mut Window<'_>));

    /// Sets the message, given as text.
    #[inline]
    fn message_str(&mut self, text: &str) {
        self.message_with(|w| {
            let _ = w.write_str(text);
        });
    }

    /// Sets the message, formatted with `Debug` (for `fmt::Arguments`, the same as `Display`).
    #[inline]
    fn message_debug(&mut self, value: &dyn fmt::Debug) {
        self.message_with(|w| {
            let _ = write!(w, "{value:?}");
        });
    }

    /// Sets the message, formatted with `Display`.
    #[inline]
    fn message_display(&mut self, value: &dyn fmt::Display) {
        self.message_with(|w| {
            let _ = write!(w, "{value}");
        });
    }

    /// A field given as `Debug`.
    fn debug(&mut self, key: Self::Key<'_>, v: &dyn fmt::Debug) {
        self.formatted(key, |w| {
            let _ = write!(w, "{v:?}");
        });
    }

    /// A field given as `Display` (errors).
    fn display(&mut self, key: Self::Key<'_>, v: &dyn fmt::Display) {
        self.formatted(key, |w| {
            let _ = write!(w, "{v}");
        });
    }
}

impl FormatSink for Encoder {
    type Key<'k> = &'k str;

    fn message_with(&mut self, value: impl FnOnce(&mut Window<'_>)) {
        if self.fields_at != 0 && self.fields_at != LATE {
            // A second message, after fields that follow the first: move them out of its
            // way (the last message given wins).
            if !self.move_fields(LATE) {
                return;
            }
        }
        if let Some(f) = format_at(&mut self.buf, HEAD, MESSAGE_MAX, value) {
            self.message = Some(f.len);
            self.messages = self.messages.saturating_add(1);
            self.literal = f.whole_piece;
        }
    }

    /// A text value formatted in place: core's encoding of a [`Value::Str`] field, the
    /// text written by `value`.
    fn formatted(&mut self, name: &str, value: impl FnOnce(&mut Window<'_>)) {
        if self.field_room() {
            let mark = self.end;
            let ok = self.encode(|w| {
                w.str_bounded(name, NAME_MAX);
                w.u8(Value::Str("").tag());
            }) && self.str_formatted(VALUE_MAX, value);
            self.field_end(mark, ok);
        }
    }
}

/// A thread's encoders: the full form, the callsite form and its callsite cache.
pub(crate) struct Encoders {
    /// The full form (target, message, names).
    pub(crate) full: Encoder,
    /// The callsite form.
    pub(crate) site: crate::callsite_encode::SiteEncoder,
    /// This thread's view of the callsite table.
    pub(crate) cache: crate::callsite::SiteCache,
}

impl Encoders {
    #[cold]
    #[inline(never)]
    fn new() -> Box<Self> {
        Box::new(Encoders {
            full: Encoder::new(),
            site: crate::callsite_encode::SiteEncoder::new(),
            cache: crate::callsite::SiteCache::new(),
        })
    }
}

thread_local! {
    static ENCODERS: std::cell::RefCell<Option<Box<Encoders>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with this thread's encoders. Allocates them on a thread's first record only; a
/// re-entrant record (a `Debug` impl that logs) or one during thread exit gets fresh ones
/// instead.
#[inline]
pub(crate) fn with_encoders(f: impl FnOnce(&mut Encoders)) {
    let mut f = Some(f);
    let _ = ENCODERS.try_with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            if let Some(f) = f.take() {
                f(slot.get_or_insert_with(Encoders::new));
            }
        }
    });
    if let Some(f) = f {
        with_fresh_encoders(f);
    }
}

/// [`with_encoders`] for a re-entrant record or one during thread exit: out of line, so
/// that the common case stays short.
#[cold]
#[inline(never)]
fn with_fresh_encoders(f: impl FnOnce(&mut Encoders)) {
    f(&mut Encoders::new());
}

/// Runs `f` with this thread's full-form encoder, emptied.
#[inline]
pub(crate) fn with_encoder(f: impl FnOnce(&mut Encoder)) {
    with_encoders(|e| {
        e.full.clear();
        f(&mut e.full)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightrec_core::encode::to_slice;
    use flightrec_core::event::{Field, Fields, Log, Value};
    use flightrec_core::Level;
    use proptest::prelude::*;

    /// How a test gives a value to the encoder.
    #[derive(Clone, Copy, Debug)]
    enum Given {
        Plain,
        /// Through `Debug` of `format_args!` (strings only; others go plain).
        Formatted,
    }

    /// Where the message goes among the fields.
    #[derive(Clone, Copy, Debug)]
    enum MessageAt {
        First,
        After(usize),
        Twice(usize),
        Absent,
    }

    fn give(enc: &mut Encoder, f: &Field<'_>, how: Given) {
        match (f.value, how) {
            (Value::Str(v), Given::Formatted) => enc.debug(f.name, &format_args!("{v}")),
            (Value::Bool(v), _) => enc.bool(f.name, v),
            (Value::I64(v), _) => enc.i64(f.name, v),
            (Value::U64(v), _) => enc.u64(f.name, v),
            (Value::F64(v), _) => enc.f64(f.name, v),
            (Value::Str(v), _) => enc.str(f.name, v),
            (Value::Bytes(v), _) => enc.bytes(f.name, v),
        }
    }

    fn ours(
        target: &str,
        message: &str,
        fields: &[(Field<'_>, Given)],
        at: MessageAt,
        formatted: bool,
    ) -> Vec<u8> {
        let mut enc = Encoder::new();
        // Reuse must not leak the previous record's bytes.
        enc.str("stale", "x");
        enc.message_str("stale message");
        enc.clear();
        let set_message = |enc: &mut Encoder, text: &str| {
            if formatted {
                enc.message_debug(&format_args!("{text}"));
            } else {
                enc.message_str(text);
            }
        };
        for (i, (f, how)) in fields.iter().enumerate() {
            match at {
                MessageAt::First if i == 0 => set_message(&mut enc, message),
                MessageAt::After(n) if n == i => set_message(&mut enc, message),
                MessageAt::Twice(_) if i == 0 => set_message(&mut enc, "first, replaced"),
                MessageAt::Twice(n) if n == i => set_message(&mut enc, message),
                _ => {}
            }
            give(&mut enc, f, *how);
        }
        match at {
            MessageAt::First if fields.is_empty() => set_message(&mut enc, message),
            MessageAt::After(n) | MessageAt::Twice(n) if n >= fields.len() => {
                set_message(&mut enc, message)
            }
            _ => {}
        }
        enc.finish(target).unwrap().to_vec()
    }

    /// Core's encoding of the same log line: `Encode for Log`.
    fn cores(target: &str, message: &str, fields: &[Field<'_>]) -> Vec<u8> {
        let log = Log {
            level: Level::Info,
            target,
            message,
            fields: Fields::Slice(fields),
        };
        let mut out = vec![0u8; log.encoded_len()];
        assert_eq!(to_slice(&log, &mut out), Some(out.len()));
        out
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

    fn given() -> impl Strategy<Value = Given> {
        prop_oneof![Just(Given::Plain), Just(Given::Formatted)]
    }

    fn message_at() -> impl Strategy<Value = MessageAt> {
        prop_oneof![
            4 => Just(MessageAt::First),
            2 => (0..22usize).prop_map(MessageAt::After),
            1 => (1..22usize).prop_map(MessageAt::Twice),
            1 => Just(MessageAt::Absent),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 10 } else { 1000 }))]
        /// Our encoder writes the very bytes core's `Encode for Log` writes, whatever the order
        /// in which the message and the fields come, and however they are given.
        #[test]
        fn same_bytes_as_core(
            target in ".{0,100}",
            message in ".{0,400}",
            formatted in any::<bool>(),
            at in message_at(),
            fields in proptest::collection::vec(("[a-z_…é]{1,40}", value(), given()), 0..20),
        ) {
            let given: Vec<(Field<'_>, Given)> = fields
                .iter()
                .map(|(n, v, g)| (Field { name: n.as_str(), value: *v }, *g))
                .collect();
            let plain: Vec<Field<'_>> = given.iter().map(|(f, _)| *f).collect();
            let expected = match at {
                MessageAt::Absent => "",
                _ => message.as_str(),
            };
            prop_assert_eq!(
                ours(&target, &message, &given, at, formatted),
                cores(&target, expected, &plain)
            );
        }
    }

    #[test]
    fn long_debug_value_is_cut_like_core() {
        let long = "é".repeat(300);
        let mut enc = Encoder::new();
        enc.message_str("m");
        enc.debug("v", &format_args!("{long}"));
        let field = [Field {
            name: "v",
            value: Value::Str(&long),
        }];
        assert_eq!(enc.finish("t").unwrap(), cores("t", "m", &field).as_slice());
    }

    /// A formatted text written in pieces keeps whole characters when it is cut in the
    /// middle of one, and nothing after the cut (as cutting the whole text would).
    #[test]
    fn window_cuts_at_a_character_boundary() {
        let mut room = [0u8; 5];
        let mut w = Window::new(&mut room);
        for piece in ["ab", "cé", "d"] {
            let _ = w.write_str(piece); // "abcé" is 5 bytes: é fits
        }
        assert_eq!(w.kept(), "abcé".as_bytes());
        let mut room = [0u8; 4];
        let mut w = Window::new(&mut room);
        for piece in ["ab", "cé", "d"] {
            let _ = w.write_str(piece); // é does not fit; "d" must not follow
        }
        assert_eq!(w.kept(), b"abc");
        assert_eq!(w.len + w.cut, 6);
    }
}
