//! Zero-allocation encoding of a record in the callsite form (core's
//! [`flightrec_core::callsite`]): the callsite's id, then its values as items, in the order
//! `tracing` visits them, written by core's encoder ([`callsite::write_value`]) into one
//! per-thread buffer and copied into the ring once.
//!
//! The id is known before the values, but the message is compared with the callsite's
//! literal only at the end: the items start at a fixed offset, [`ID_ROOM`], and the id is
//! written right-aligned in front of the first item kept (a message that is the literal, and
//! the first item, as `tracing` gives it, is left out by starting after it).

use flightrec_core::callsite::{self, TAG_MESSAGE};
use flightrec_core::encode::{varint_len, CutMarker, Writer};
use flightrec_core::event::{Value, FIELDS_MAX, MESSAGE_MAX, VALUE_MAX};

use crate::callsite::Site;
use crate::encode::{format_at, FormatSink, Window};

/// Room for the id (a `u32` varint).
const ID_ROOM: usize = 5;
const MARKER_MAX: usize = CutMarker::MAX;
/// A message item at its bound: head, length, text, marker.
const MESSAGE_ITEM: usize = 1 + 2 + MESSAGE_MAX + MARKER_MAX;
/// A field item at its bound: head (index below `tracing`'s 32 fields), length, value,
/// marker.
const FIELD_ITEM: usize = 2 + 2 + VALUE_MAX + MARKER_MAX;
/// Two messages (the last one wins), the kept fields and the dropped count.
const BUF: usize = ID_ROOM + 2 * MESSAGE_ITEM + (FIELDS_MAX + 1) * FIELD_ITEM;

/// Builds one callsite record. One per thread, reused.
pub(crate) struct SiteEncoder {
    buf: Box<[u8]>,
    end: usize,
    count: usize,
    dropped: u64,
    /// The last message item: its start, its text's start, its end.
    message: Option<(usize, usize, usize)>,
    messages: u8,
}

impl SiteEncoder {
    #[cold]
    #[inline(never)]
    pub(crate) fn new() -> Self {
        SiteEncoder {
            buf: vec![0u8; BUF].into_boxed_slice(),
            end: ID_ROOM,
            count: 0,
            dropped: 0,
            message: None,
            messages: 0,
        }
    }

    /// Empties it for the next record.
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.end = ID_ROOM;
        self.count = 0;
        self.dropped = 0;
        self.message = None;
        self.messages = 0;
    }

    /// Whether one more field is kept (if not, it is counted as dropped).
    #[inline(always)]
    fn field_room(&mut self) -> bool {
        if self.count >= FIELDS_MAX {
            self.dropped += 1;
            return false;
        }
        true
    }

    /// Field `index` with a plain value.
    #[inline(always)]
    pub(crate) fn field(&mut self, index: usize, value: Value<'_>) {
        if !self.field_room() {
            return;
        }
        let Some(room) = self.buf.get_mut(self.end..) else {
            self.dropped += 1;
            return;
        };
        let mut w = Writer::new(room, &mut []);
        callsite::write_value(&mut w, index as u32, &value);
        if w.overflowed() {
            self.dropped += 1;
        } else {
            self.end += w.len();
            self.count += 1;
        }
    }

    /// Writes an item head and a text formatted in place, cut to `max` (and marked); the
    /// text's start and whether it was one piece, not cut. `None` (nothing kept) if it did
    /// not fit.
    fn text_item(
        &mut self,
        head: u64,
        max: usize,
        value: impl FnOnce(&mut Window<'_>),
    ) -> Option<(usize, bool)> {
        let start = self.end;
        let head_len = if head < 0x80 {
            // Nearly always (field indices below 16): one byte, stored directly.
            *self.buf.get_mut(start)? = head as u8;
            1
        } else {
            let mut w = Writer::new(self.buf.get_mut(start..)?, &mut []);
            w.varint(head);
            if w.overflowed() {
                return None;
            }
            w.len()
        };
        // Room for a one-byte length; moved on in the rare case it takes more.
        let at = start + head_len + 1;
        let f = format_at(&mut self.buf, at, max, value)?;
        if f.len < 0x80 {
            *self.buf.get_mut(at - 1)? = f.len as u8;
            self.end = at + f.len;
            return Some((at, f.whole_piece));
        }
        let more = varint_len(f.len as u64) - 1;
        self.buf.get(at + f.len + more..)?;
        self.buf.copy_within(at..at + f.len, at + more);
        let mut w = Writer::new(self.buf.get_mut(at - 1..at + more)?, &mut []);
        w.varint(f.len as u64);
        if w.overflowed() {
            return None;
        }
        self.end = at + more + f.len;
        Some((at + more, f.whole_piece))
    }

    /// Field `index` as text formatted in place (a `Debug` or `Display` value).
    /// Ends the record of `site`: the dropped count, the message left out if it is the
    /// literal, the id in front; the payload (`None` only if a bound was broken).
    #[inline]
    pub(crate) fn finish(&mut self, site: Site) -> Option<&[u8]> {
        if self.dropped > 0 {
            let mut w = Writer::new(self.buf.get_mut(self.end..)?, &mut []);
            callsite::write_dropped(&mut w, self.dropped);
            if w.overflowed() {
                return None;
            }
            self.end += w.len();
        }
        let mut start = ID_ROOM;
        if let (1, Some((m0, text, m1)), Some(literal)) =
            (self.messages, self.message, site.literal)
        {
            if self.buf.get(text..m1) == Some(literal.as_bytes()) {
                if m0 == ID_ROOM {
                    start = m1;
                } else {
                    // Not the first item: the items after it move down.
                    self.buf.copy_within(m1..self.end, m0);
                    self.end -= m1 - m0;
                }
            }
        }
        let id = u64::from(site.id);
        start = start.checked_sub(varint_len(id))?;
        let mut w = Writer::new(self.buf.get_mut(start..)?, &mut []);
        w.varint(id);
        self.buf.get(start..self.end)
    }
}

impl FormatSink for SiteEncoder {
    type Key<'k> = usize;

    fn message_with(&mut self, value: impl FnOnce(&mut Window<'_>)) {
        if self.messages >= 2 {
            // `tracing` gives one; should a third come, the room is for two.
            return;
        }
        let start = self.end;
        if let Some((text, _)) = self.text_item(callsite::head(0, TAG_MESSAGE), MESSAGE_MAX, value)
        {
            self.message = Some((start, text, self.end));
            self.messages += 1;
        }
    }

    fn formatted(&mut self, index: usize, value: impl FnOnce(&mut Window<'_>)) {
        if !self.field_room() {
            return;
        }
        let head = callsite::head(index as u32, Value::Str("").tag());
        match self.text_item(head, VALUE_MAX, value) {
            Some(_) => self.count += 1,
            None => self.dropped += 1,
        }
    }
}
