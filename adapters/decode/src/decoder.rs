//! The streaming decoder: bytes in, [`Item`]s out.
//!
//! It holds one buffer of [`BUFFER_LEN`] bytes (a chunk plus the largest frame), whatever
//! the input's size.
//!
//! Nothing is dropped without an item saying so: bytes outside dumps are [`Item::Skipped`]
//! (damage unless erased flash), record frames whose magic and header are lost are shown
//! after an [`Item::UnknownDump`], and every record's sequence number is checked against
//! its header's range and the record before it (a splice of another dump's records is
//! [`Damage::OutOfRange`]). A dump whose header leaves its range open (`next_seq` =
//! `u64::MAX`, as each region of the Linux ring file does) is read as a ring region: zero
//! padding is skipped, the one jump back where the ring wraps and the stretch at its write
//! head are notes ([`Item::Wrap`], [`Item::RingHead`]), and it ends with
//! [`Item::RegionEnd`] rather than as an incomplete dump. Every step consumes input or ends the stream, so it cannot loop
//! forever; nothing it allocates grows with the input (a header's strings are bounded by
//! one frame).

use std::collections::VecDeque;
use std::io::{self, Read};
use std::ops::Range;

use flightrec_core::callsite::{Callsite, FRAME_CALLSITES};
use flightrec_core::dump::{FRAME_END, FRAME_HEADER, FRAME_OVERHEAD, FRAME_RECORD, MAGIC, SYNC};
use flightrec_core::frame::{parse_with, Parsed};
use flightrec_core::{DumpEnd, DumpHeader, Kind, RecordHead};

use crate::callsite::Resolved;
use crate::window::Window;

/// Largest frame: sync, type, length, 65 535 body bytes, CRC.
pub const MAX_FRAME: usize = FRAME_OVERHEAD + u16::MAX as usize;
/// Bytes read from the input at a time.
pub const CHUNK: usize = 128 * 1024;
/// Memory the decoder holds for input, whatever the input's size.
pub const BUFFER_LEN: usize = CHUNK + MAX_FRAME;
/// A run of this many `FF` bytes where a frame should be is taken for erased flash.
pub const ERASED_RUN: usize = 32;
/// The format version this decoder knows.
pub const VERSION: u8 = flightrec_core::dump::VERSION;
/// An end frame longer than this is not believed while resynchronising (a newer writer may
/// append fields, but not kilobytes of them).
const END_PLAUSIBLE_MAX: usize = 1024;

pub use crate::item::{Cut, Damage, Header, Item, Stats};

struct DumpCtx {
    offset: u64,
    header: Option<Header>,
    /// Lowest sequence number the next record may have.
    expected: Option<u64>,
    /// The previous record's sequence number.
    last: Option<u64>,
    seen: u64,
    /// Set for a ring region.
    ring: Option<RingCtx>,
    /// The dump's callsite table, as read so far.
    callsites: crate::callsite::Table,
}

impl DumpCtx {
    fn new(offset: u64) -> Self {
        DumpCtx {
            offset,
            header: None,
            expected: None,
            last: None,
            seen: 0,
            ring: None,
            callsites: Default::default(),
        }
    }
}

/// What a ring region's decoding remembers: where its newest lap began, whether it wrapped,
/// and a damaged stretch held back until it is known whether it is the write head.
#[derive(Default)]
struct RingCtx {
    newest_first: Option<u64>,
    wrapped: bool,
    held: Option<(u64, u64, Damage)>,
}

/// Whether a header leaves its range open: a ring region, whose records are whatever the
/// circular area holds.
fn is_ring(h: &Header) -> bool {
    h.next_seq == flightrec_core::dump::OPEN_RANGE
}

#[derive(Clone, Copy)]
enum State {
    /// Outside a dump, looking for a magic.
    Scan,
    /// At a magic: version byte next.
    Version,
    /// After the version: header frame next.
    Header,
    /// Inside a dump: a frame next.
    Frames,
    /// Inside a dump, after damage that began at `from`: looking for a frame that checks.
    Resync { from: u64, why: Damage },
    /// Input exhausted (or failed).
    Done,
}

/// An item waiting to be handed out; records point into the buffer.
enum Pending {
    Item(Item<'static>),
    Record {
        offset: u64,
        head: RecordHead,
        start: usize,
        end: usize,
        /// The payload is the decoder's `resolved` buffer (a callsite record resolved into a
        /// log record), not `start..end` of the input buffer.
        resolved: bool,
    },
}

/// Checks a record's sequence number against its dump: inside the header's range, above
/// the previous record's (a gap between them is reported as lost records), and in a ring
/// region the one jump back of its wrap. Queues what it finds in `notes`.
fn check_seq(ctx: &mut DumpCtx, offset: u64, seq: u64, notes: &mut Vec<Item<'static>>) {
    let range = ctx
        .header
        .as_ref()
        .filter(|h| !is_ring(h))
        .map(|h| (h.first_seq, h.next_seq));
    if let Some((first, next)) = range.filter(|&(f, n)| seq < f || seq >= n) {
        // Not one of this dump's records: the dump's own sequence goes on without it.
        notes.push(Item::Damaged {
            offset,
            len: 0,
            why: Damage::OutOfRange { seq, first, next },
        });
        return;
    }
    let scoped = ctx.header.as_ref().is_some_and(|h| h.scope.is_some());
    let expected = ctx.expected.or(range.map(|r| r.0));
    if let Some(ring) = ctx.ring.as_mut() {
        let held = ring.held.take();
        if !ring.wrapped && ring.newest_first.is_some_and(|n| seq < n) {
            // The wrap (older than every record of the newer lap): what was held back is
            // the write head.
            ring.wrapped = true;
            if let Some((at, len, _)) = held {
                notes.push(Item::RingHead { offset: at, len });
            }
            notes.push(Item::Wrap {
                offset,
                newest: ctx.last.unwrap_or(0),
                oldest: seq,
            });
            ctx.expected = Some(seq.saturating_add(1));
            ctx.last = Some(seq);
            return;
        }
        match held {
            // Before the region's first record: the writer had just wrapped to the area's
            // start. What follows is one lap, the older one (the newer one is empty).
            Some((at, len, _)) if ctx.last.is_none() => {
                ring.wrapped = true;
                notes.push(Item::RingHead { offset: at, len });
            }
            Some((at, len, why)) => notes.push(Item::Damaged {
                offset: at,
                len,
                why,
            }),
            None => {}
        }
        if let Some(e) =
            expected.filter(|_| ring.wrapped && ring.newest_first.is_some_and(|n| seq >= n))
        {
            // The older lap reaches into the newer one: not a ring's order.
            notes.push(Item::Damaged {
                offset,
                len: 0,
                why: Damage::OutOfOrder { expected: e, seq },
            });
            return;
        }
        if !ring.wrapped {
            ring.newest_first.get_or_insert(seq);
        }
    }
    if let Some(expected) = expected {
        if seq > expected {
            notes.push(Item::Gap {
                offset,
                from: expected,
                to: seq,
                scoped,
            });
        } else if seq < expected {
            let why = if ctx.last == Some(seq) {
                Damage::Duplicate { seq }
            } else {
                Damage::OutOfOrder { expected, seq }
            };
            notes.push(Item::Damaged {
                offset,
                len: 0,
                why,
            });
        }
    }
    ctx.expected = Some(seq.saturating_add(1));
    ctx.last = Some(seq);
}

/// Streams [`Item`]s out of a reader. See the crate docs for an example.
pub struct Decoder<R> {
    win: Window<R>,
    state: State,
    dump: Option<DumpCtx>,
    /// Bytes outside dumps being skipped: (offset, len, erased).
    skip: Option<(u64, u64, u64)>,
    queue: VecDeque<Pending>,
    stats: Stats,
    /// Since a dump of an unknown version, until the next magic.
    after_unsupported: bool,
    /// A fresh CRC state, cloned for each frame (so the CPU's features are looked up once).
    crc: crc32fast::Hasher,
    /// The payload of the callsite record being handed out, resolved (at most one record
    /// is queued at a time: the state machine stops at the first).
    resolved: Vec<u8>,
    /// Scratch space for resolving it.
    resolving: Vec<u8>,
}

impl<R: Read> Decoder<R> {
    /// A decoder reading `input` from its current position (taken as offset 0).
    pub fn new(input: R) -> Self {
        Decoder {
            win: Window::new(input),
            state: State::Scan,
            dump: None,
            skip: None,
            queue: VecDeque::new(),
            stats: Stats::default(),
            after_unsupported: false,
            crc: crc32fast::Hasher::new(),
            resolved: Vec::new(),
            resolving: Vec::new(),
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.bytes = self.offset();
        s
    }

    /// Input offset of the next unread byte.
    fn offset(&self) -> u64 {
        self.win.offset()
    }

    fn avail(&self) -> usize {
        self.win.end - self.win.start
    }

    fn bytes(&self, from: usize, len: usize) -> &[u8] {
        self.win
            .buf
            .get(from..from.saturating_add(len))
            .unwrap_or(&[])
    }

    fn byte(&self, at: usize) -> Option<u8> {
        if at < self.win.end {
            self.win.buf.get(at).copied()
        } else {
            None
        }
    }

    /// Makes at least `need` (at most [`MAX_FRAME`]) bytes available unless the input ends;
    /// after an I/O error the decoder is finished.
    fn fill(&mut self, need: usize) -> io::Result<()> {
        self.win
            .fill(need)
            .inspect_err(|_| self.state = State::Done)
    }

    /// Next item, `Ok(None)` at the end of the input. After an I/O error the decoder is
    /// finished.
    #[allow(clippy::should_implement_trait)] // a lending iterator: items borrow the buffer
    pub fn next(&mut self) -> io::Result<Option<Item<'_>>> {
        if self.queue.is_empty() {
            self.step()?;
        }
        Ok(match self.queue.pop_front() {
            None => None,
            Some(Pending::Item(item)) => Some(item),
            Some(Pending::Record {
                offset,
                head,
                start,
                end,
                resolved,
            }) => Some(Item::Record {
                offset,
                head,
                payload: if resolved {
                    &self.resolved
                } else {
                    self.win.buf.get(start..end).unwrap_or(&[])
                },
            }),
        })
    }

    fn push(&mut self, item: Item<'static>) {
        match &item {
            Item::Damaged { .. } => self.stats.damaged += 1,
            Item::Incomplete { .. } => self.stats.incomplete += 1,
            Item::Unsupported { .. } => self.stats.unsupported += 1,
            Item::Gap { from, to, .. } => {
                // Gaps of several dumps can sum past `u64` (the input states them).
                self.stats.missing = self.stats.missing.saturating_add(to.saturating_sub(*from))
            }
            Item::UnknownDump { .. } => self.stats.damaged += 1,
            Item::Skipped { len, erased, .. } => {
                self.stats.stray += len.saturating_sub(*erased);
            }
            _ => {}
        }
        self.queue.push_back(Pending::Item(item));
    }

    /// Runs the state machine until it has queued at least one item or the input is done.
    fn step(&mut self) -> io::Result<()> {
        while self.queue.is_empty() {
            match self.state {
                State::Done => return Ok(()),
                State::Scan => self.scan()?,
                State::Version => self.version()?,
                State::Header => self.header()?,
                State::Frames => self.frames()?,
                State::Resync { from, why } => self.resync(from, why)?,
            }
        }
        Ok(())
    }

    fn flush_skip(&mut self) {
        if let Some((offset, len, erased)) = self.skip.take() {
            if len > 0 {
                self.push(Item::Skipped {
                    offset,
                    len,
                    erased,
                });
            }
        }
    }

    fn note_skip(&mut self, from: usize, len: usize) {
        let offset = self.win.base + from as u64;
        let erased = self.bytes(from, len).iter().filter(|&&b| b == 0xFF).count() as u64;
        let s = self.skip.get_or_insert((offset, 0, 0));
        s.1 += len as u64;
        s.2 += erased;
    }

    fn scan(&mut self) -> io::Result<()> {
        self.fill(MAX_FRAME)?;
        let hay = self.bytes(self.win.start, self.avail());
        let magic = memchr::memmem::find(hay, &MAGIC);
        // A header frame that checks but follows no magic: a dump whose magic is damaged.
        // Positions whose longest possible frame is buffered are searched (all, at the end).
        let limit = if self.win.eof {
            hay.len()
        } else {
            hay.len().saturating_sub(MAX_FRAME - 1)
        };
        // A magic past the limit waits for the header frames before it to be checked.
        let magic = magic.filter(|&m| m <= limit);
        // A header or record frame that checks but follows no magic: a dump whose magic (and
        // header) are damaged. Its records are shown, under an unknown dump.
        let frame = if self.after_unsupported {
            None // frames of a dump of an unknown version: do not guess
        } else {
            let upto = magic.unwrap_or(limit).min(limit);
            memchr::memchr_iter(SYNC, hay.get(..upto).unwrap_or(&[])).find(|&i| {
                matches!(
                    self.byte(self.win.start + i + 1),
                    Some(FRAME_HEADER | FRAME_RECORD)
                ) && self.candidate(self.win.start + i)
            })
        };
        match (magic, frame) {
            (_, Some(i)) => {
                self.note_skip(self.win.start, i);
                self.win.start += i;
                self.flush_skip();
                let offset = self.offset();
                self.stats.dumps += 1;
                self.dump = Some(DumpCtx::new(offset));
                if self.byte(self.win.start + 1) == Some(FRAME_HEADER) {
                    self.push(Item::Damaged {
                        offset,
                        len: 0,
                        why: Damage::MissingMagic,
                    });
                    self.state = State::Header;
                } else {
                    self.push(Item::UnknownDump { offset });
                    self.state = State::Frames;
                }
            }
            (Some(i), None) => {
                self.note_skip(self.win.start, i);
                self.win.start += i;
                self.flush_skip();
                self.after_unsupported = false;
                self.state = State::Version;
            }
            (None, None) => {
                // The last bytes may be the front of a magic or header frame that the next
                // read completes.
                let used = if self.win.eof {
                    hay.len()
                } else {
                    limit.min(hay.len().saturating_sub(MAGIC.len() - 1))
                };
                self.note_skip(self.win.start, used);
                self.win.start += used;
                if self.win.eof {
                    self.flush_skip();
                    self.state = State::Done;
                }
            }
        }
        Ok(())
    }

    fn version(&mut self) -> io::Result<()> {
        self.fill(MAGIC.len() + 1)?;
        let offset = self.offset();
        match self.byte(self.win.start + MAGIC.len()) {
            None => {
                self.win.start = self.win.end;
                self.stats.dumps += 1;
                self.push(Item::Incomplete {
                    dump_offset: offset,
                    offset: self.offset(),
                    seen: 0,
                    why: Cut::InputEnded,
                });
                self.state = State::Scan;
            }
            Some(VERSION) => {
                self.win.start += MAGIC.len() + 1;
                self.stats.dumps += 1;
                self.stats.framed += MAGIC.len() as u64 + 1;
                self.dump = Some(DumpCtx::new(offset));
                self.state = State::Header;
            }
            Some(version) => {
                self.win.start += MAGIC.len() + 1;
                self.after_unsupported = true;
                self.push(Item::Unsupported { offset, version });
                self.state = State::Scan;
            }
        }
        Ok(())
    }

    /// Looks at a frame starting at buffer index `at` (whose first byte is `SYNC`). The
    /// caller has filled [`MAX_FRAME`] bytes from `at`, or the input ends sooner.
    /// Core's frame parser on the buffered bytes at `at` (a sync byte), with the faster
    /// CRC; a whole frame's body range is in the buffer.
    fn frame_at(&self, at: usize) -> Parsed {
        let bytes = self.win.buf.get(at..self.win.end).unwrap_or(&[]);
        let crc = |b: &[u8]| {
            let mut h = self.crc.clone();
            h.update(b);
            h.finalize()
        };
        match parse_with(bytes, crc) {
            Parsed::Whole { ty, body, len } => Parsed::Whole {
                ty,
                body: at + body.start..at + body.end,
                len,
            },
            // The caller found a sync byte at `at`: a frame that does not check.
            Parsed::NotAFrame => Parsed::BadCrc { ty: 0, len: 0 },
            other => other,
        }
    }

    /// Sealing (`core/SEALING.md`): the seal frame and the signature frame after a dump's
    /// end frame belong to that dump. `flightrec verify` checks them; here they are passed
    /// over, not shown as bytes outside dumps. (Buffered with the end frame, as a frame
    /// is read with up to [`MAX_FRAME`] bytes after it.)
    fn skip_seal_frames(&mut self) {
        use flightrec_core::seal::{FRAME_SEAL, FRAME_SIGNATURE};
        for want in [FRAME_SEAL, FRAME_SIGNATURE] {
            if self.byte(self.win.start) != Some(SYNC) {
                return;
            }
            match self.frame_at(self.win.start) {
                Parsed::Whole { ty, len, .. } if ty == want => self.win.start += len,
                _ => return,
            }
        }
    }

    fn header(&mut self) -> io::Result<()> {
        self.fill(MAX_FRAME)?;
        let offset = self.offset();
        if self.byte(self.win.start) == Some(SYNC) {
            if let Parsed::Whole {
                ty: FRAME_HEADER,
                body,
                len,
            } = self.frame_at(self.win.start)
            {
                let body = self.bytes(body.start, body.len());
                let header = postcard::take_from_bytes::<DumpHeader<'_>>(body)
                    .ok()
                    .map(|(h, _)| Header::from(&h));
                self.win.start += len;
                self.stats.framed += len as u64;
                self.state = State::Frames;
                let Some(ctx) = self.dump.as_mut() else {
                    return Ok(());
                };
                match header {
                    Some(header) => {
                        if is_ring(&header) {
                            ctx.ring = Some(RingCtx::default());
                        }
                        ctx.header = Some(header.clone());
                        let dump_offset = ctx.offset;
                        self.push(Item::DumpStart {
                            offset: dump_offset,
                            header,
                        });
                    }
                    None => self.push(Item::Damaged {
                        offset,
                        len: len as u64,
                        why: Damage::BadHeader,
                    }),
                }
                return Ok(());
            }
        }
        // Go on without a header: records still decode (with raw ticks).
        self.push(Item::Damaged {
            offset,
            len: 0,
            why: Damage::MissingHeader,
        });
        self.state = State::Frames;
        Ok(())
    }

    fn end_dump(&mut self, why: Cut) {
        self.close_dump(self.offset(), why);
        self.state = State::Scan;
    }

    /// Closes the open dump, which has no end frame, at `offset`. A ring region has none by
    /// design: it ends with [`Item::RegionEnd`] if it holds its whole capacity, and the true
    /// loss (records between its older lap's end and its newer lap's start) is a gap.
    fn close_dump(&mut self, offset: u64, why: Cut) {
        let Some(mut ctx) = self.dump.take() else {
            return;
        };
        let Some(ring) = ctx.ring.take() else {
            self.push(Item::Incomplete {
                dump_offset: ctx.offset,
                offset,
                seen: ctx.seen,
                why,
            });
            return;
        };
        if let Some((at, len, _)) = ring.held {
            // Damage held back is never after the wrap: it is the write head.
            self.push(Item::RingHead { offset: at, len });
        }
        if let (true, Some(from), Some(to)) = (ring.wrapped, ctx.expected, ring.newest_first) {
            if from < to {
                self.push(Item::Gap {
                    offset,
                    from,
                    to,
                    scoped: ctx.header.as_ref().is_some_and(|h| h.scope.is_some()),
                });
            }
        }
        let capacity = ctx.header.as_ref().map_or(0, |h| u64::from(h.capacity));
        if offset.saturating_sub(ctx.offset) >= capacity {
            self.push(Item::RegionEnd {
                dump_offset: ctx.offset,
                offset,
                seen: ctx.seen,
            });
        } else {
            // Shorter than its area: the region is cut.
            self.push(Item::Incomplete {
                dump_offset: ctx.offset,
                offset,
                seen: ctx.seen,
                why,
            });
        }
    }

    /// Reports bytes that could not be decoded. In a ring region before its wrap, the
    /// report waits: a stretch followed by the wrap (or by the region's end) is the write
    /// head, not damage.
    fn damage(&mut self, offset: u64, len: u64, why: Damage) {
        let ring = self.dump.as_mut().and_then(|d| d.ring.as_mut());
        if let Some(ring) = ring.filter(|r| !r.wrapped) {
            // Two stretches with only padding between are one (a torn frame holding zeros).
            let held = match ring.held {
                Some((at, _, first)) => (at, (offset + len).saturating_sub(at), first),
                None => (offset, len, why),
            };
            ring.held = Some(held);
            return;
        }
        self.push(Item::Damaged { offset, len, why });
    }

    /// Whether a run of `fill` bytes (erased flash `FF`, or padding `00`) starts at buffer
    /// index `at` (filled by the caller).
    fn run_at(&self, at: usize, fill: u8) -> bool {
        let run = self.bytes(at, ERASED_RUN);
        !run.is_empty()
            && (run.len() == ERASED_RUN || self.win.eof)
            && run.iter().all(|&b| b == fill)
    }

    /// Whether erased flash starts at buffer index `at` (filled by the caller).
    fn erased_at(&self, at: usize) -> bool {
        self.run_at(at, 0xFF)
    }

    fn in_ring(&self) -> bool {
        self.dump.as_ref().is_some_and(|d| d.ring.is_some())
    }

    fn frames(&mut self) -> io::Result<()> {
        self.fill(MAX_FRAME)?;
        let offset = self.offset();
        let Some(first) = self.byte(self.win.start) else {
            self.end_dump(Cut::InputEnded);
            return Ok(());
        };
        if first == 0 && self.in_ring() {
            // A ring region's padding (after its header, or the tail zeroed at a wrap).
            let run = self.bytes(self.win.start, self.avail());
            let n = run.iter().position(|&b| b != 0).unwrap_or(run.len());
            self.win.start += n.max(1);
            return Ok(());
        }
        if first != SYNC {
            if self.bytes(self.win.start, MAGIC.len()) == MAGIC {
                self.end_dump(Cut::NextDump);
            } else if self.erased_at(self.win.start) {
                self.end_dump(Cut::Erased);
            } else {
                self.win.start += 1;
                self.state = State::Resync {
                    from: offset,
                    why: Damage::NotAFrame { byte: first },
                };
            }
            return Ok(());
        }
        match self.frame_at(self.win.start) {
            Parsed::Truncated { claimed, available } => {
                self.win.start += 1;
                self.state = State::Resync {
                    from: offset,
                    why: Damage::Truncated { claimed, available },
                };
            }
            Parsed::BadCrc { ty, len } => {
                self.win.start += 1;
                self.state = State::Resync {
                    from: offset,
                    why: Damage::BadCrc { ty, len },
                };
            }
            Parsed::Whole { ty, body, len } => self.whole_frame(offset, ty, body, len),
            // `frame_at` gives none (it is called at a sync byte).
            Parsed::NotAFrame => self.win.start += 1,
        }
        Ok(())
    }

    fn whole_frame(&mut self, offset: u64, ty: u8, body: Range<usize>, len: usize) {
        let (b0, b1) = (body.start, body.end);
        self.stats.framed += len as u64;
        match ty {
            FRAME_RECORD => {
                let body = self.bytes(b0, b1 - b0);
                let parsed = postcard::take_from_bytes::<RecordHead>(body)
                    .ok()
                    .map(|(head, rest)| (head, b1 - rest.len()));
                self.win.start += len;
                match parsed {
                    Some((head, payload_start)) => self.record(offset, head, payload_start, b1),
                    None => self.push(Item::Damaged {
                        offset,
                        len: len as u64,
                        why: Damage::BadRecordHead,
                    }),
                }
            }
            FRAME_END => {
                let body = self.bytes(b0, b1 - b0);
                let end = postcard::take_from_bytes::<DumpEnd>(body)
                    .ok()
                    .map(|(e, _)| e);
                self.win.start += len;
                self.skip_seal_frames();
                self.state = State::Scan;
                let Some(mut ctx) = self.dump.take() else {
                    return;
                };
                if let Some((at, len, why)) = ctx.ring.as_mut().and_then(|r| r.held.take()) {
                    self.push(Item::Damaged {
                        offset: at,
                        len,
                        why,
                    });
                }
                match end {
                    Some(end) => {
                        if let Some(h) = ctx.header.as_ref().filter(|h| !is_ring(h)) {
                            let next = ctx.expected.unwrap_or(h.first_seq);
                            if next < h.next_seq {
                                self.push(Item::Gap {
                                    offset,
                                    from: next,
                                    to: h.next_seq,
                                    scoped: h.scope.is_some(),
                                });
                            }
                        }
                        self.push(Item::DumpEnd {
                            offset,
                            end,
                            seen: ctx.seen,
                        });
                    }
                    None => self.push(Item::Damaged {
                        offset,
                        len: len as u64,
                        why: Damage::BadEnd,
                    }),
                }
            }
            FRAME_CALLSITES => {
                self.win.start += len;
                let body = self.win.buf.get(b0..b1).unwrap_or(&[]);
                let read = self.dump.as_mut().map(|d| d.callsites.add_frame(body));
                if read == Some(false) {
                    self.push(Item::Damaged {
                        offset,
                        len: len as u64,
                        why: Damage::BadCallsiteTable,
                    });
                }
            }
            FRAME_HEADER => {
                // A header that checks but follows no magic: the previous dump was cut off
                // and this one's magic is damaged. Start a dump here.
                self.stats.framed -= len as u64; // counted again as the header
                self.close_dump(offset, Cut::NextDump);
                self.stats.dumps += 1;
                self.dump = Some(DumpCtx::new(offset));
                self.state = State::Header;
            }
            _ => {
                self.win.start += len;
                self.push(Item::UnknownFrame {
                    offset,
                    ty,
                    len: u16::try_from(len - FRAME_OVERHEAD).unwrap_or(u16::MAX),
                });
            }
        }
    }

    fn record(&mut self, offset: u64, mut head: RecordHead, start: usize, end: usize) {
        let mut notes = Vec::new();
        if let Some(ctx) = self.dump.as_mut() {
            ctx.seen += 1;
            check_seq(ctx, offset, head.seq, &mut notes);
        }
        let resolved = head.kind == Kind::CALLSITE;
        if resolved {
            let payload = self.win.buf.get(start..end).unwrap_or(&[]);
            let empty = crate::callsite::Table::default();
            let table = self.dump.as_ref().map_or(&empty, |d| &d.callsites);
            let why = match table.resolve(payload, &mut self.resolved, &mut self.resolving) {
                Resolved::Whole => None,
                Resolved::UnknownCallsite(id) => Some(Damage::UnknownCallsite { id }),
                Resolved::Malformed => Some(Damage::BadCallsiteRecord),
            };
            if let Some(why) = why {
                notes.push(Item::Damaged {
                    offset,
                    len: 0,
                    why,
                });
            }
            head.kind = crate::callsite::RESOLVED_KIND;
        }
        for n in notes {
            self.push(n);
        }
        self.stats.records += 1;
        self.queue.push_back(Pending::Record {
            offset,
            head,
            start,
            end,
            resolved,
        });
    }

    /// Whether a frame of a known type that checks starts at buffer index `at`, and is
    /// believable beyond its CRC. Used while searching (resynchronising, or for a header
    /// whose magic is lost): the cheap checks run first, so garbage that looks like frame
    /// after frame of maximal length costs little CRC work.
    fn candidate(&self, at: usize) -> bool {
        let (ty, len) = match *self.bytes(at, 4) {
            [SYNC, ty, l0, l1] => (ty, usize::from(u16::from_le_bytes([l0, l1]))),
            _ => return false,
        };
        if self.win.end.saturating_sub(at) < FRAME_OVERHEAD + len {
            return false;
        }
        let body = self.bytes(at + 4, len);
        let plausible = match ty {
            FRAME_RECORD => match postcard::take_from_bytes::<RecordHead>(body) {
                Ok((head, _)) => match self.dump.as_ref().and_then(|d| d.header.as_ref()) {
                    Some(h) => h.first_seq <= head.seq && head.seq < h.next_seq,
                    None => true,
                },
                Err(_) => false,
            },
            FRAME_END => len <= END_PLAUSIBLE_MAX,
            FRAME_CALLSITES => Callsite::decode(body).is_ok(),
            FRAME_HEADER => postcard::take_from_bytes::<DumpHeader<'_>>(body).is_ok(),
            _ => false,
        };
        plausible && matches!(self.frame_at(at), Parsed::Whole { .. })
    }

    fn resync(&mut self, from: u64, why: Damage) -> io::Result<()> {
        loop {
            self.fill(MAX_FRAME)?;
            let mut i = self.win.start;
            // Positions whose longest possible frame is in the buffer (all, at the end).
            let limit = if self.win.eof {
                self.win.end
            } else {
                self.win.end.saturating_sub(MAX_FRAME - 1)
            };
            let mut found: Option<Result<(), Cut>> = None;
            while i < limit {
                let Some(b) = self.byte(i) else { break };
                match b {
                    SYNC if self.candidate(i) => {
                        found = Some(Ok(()));
                        break;
                    }
                    0x89 if self.bytes(i, MAGIC.len()) == MAGIC => {
                        found = Some(Err(Cut::NextDump));
                        break;
                    }
                    0xFF if self.erased_at(i) => {
                        found = Some(Err(Cut::Erased));
                        break;
                    }
                    0x00 if self.in_ring() && self.run_at(i, 0) => {
                        found = Some(Ok(())); // padding: skipped in `frames`
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
            self.win.start = i;
            if found.is_none() && self.win.eof && self.win.start >= self.win.end {
                found = Some(Err(Cut::InputEnded));
            }
            let Some(found) = found else {
                continue; // refill and scan on: `start` moved, so this progresses
            };
            let here = self.offset();
            self.damage(from, here.saturating_sub(from), why);
            match found {
                Ok(()) => self.state = State::Frames,
                Err(cut) => self.end_dump(cut),
            }
            return Ok(());
        }
    }
}
