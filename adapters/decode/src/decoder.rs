//! The streaming decoder: bytes in, [`Item`]s out.
//!
//! It holds one buffer of [`BUFFER_LEN`] bytes (a chunk plus the largest frame), whatever
//! the input's size. Every step consumes input or ends the stream, so it cannot loop
//! forever; nothing it allocates grows with the input (a header's strings are bounded by
//! one frame).

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};

use flightrec_core::dump::{FRAME_END, FRAME_HEADER, FRAME_OVERHEAD, FRAME_RECORD, MAGIC, SYNC};
use flightrec_core::{ClockInfo, DumpEnd, DumpHeader, Reason, RecordHead, SessionId};

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
    /// Bytes outside any dump (before, between or after dumps).
    Skipped {
        /// Byte offset of the first.
        offset: u64,
        /// How many.
        len: u64,
        /// How many of them are `FF` (erased flash).
        erased: u64,
    },
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
}

impl Stats {
    /// Whether anything was damaged, cut off or not understood.
    pub fn damaged(&self) -> bool {
        self.damaged + self.incomplete + self.unsupported > 0
    }
}

struct DumpCtx {
    offset: u64,
    header: Option<Header>,
    expected: Option<u64>,
    seen: u64,
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
    },
}

/// What is at a position that should start a frame.
enum Frame {
    /// A frame that checks: type, body range in the buffer, whole length.
    Whole {
        ty: u8,
        body: (usize, usize),
        len: usize,
    },
    Truncated {
        claimed: usize,
        available: usize,
    },
    BadCrc {
        ty: u8,
        len: u16,
    },
}

/// Streams [`Item`]s out of a reader. See the crate docs for an example.
pub struct Decoder<R> {
    input: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Input offset of `buf[0]`.
    base: u64,
    eof: bool,
    state: State,
    dump: Option<DumpCtx>,
    /// Bytes outside dumps being skipped: (offset, len, erased).
    skip: Option<(u64, u64, u64)>,
    queue: VecDeque<Pending>,
    stats: Stats,
    /// Since a dump of an unknown version, until the next magic.
    after_unsupported: bool,
}

impl<R: Read> Decoder<R> {
    /// A decoder reading `input` from its current position (taken as offset 0).
    pub fn new(input: R) -> Self {
        Decoder {
            input,
            buf: Vec::new(),
            start: 0,
            end: 0,
            base: 0,
            eof: false,
            state: State::Scan,
            dump: None,
            skip: None,
            queue: VecDeque::new(),
            stats: Stats::default(),
            after_unsupported: false,
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
        self.base + self.start as u64
    }

    fn avail(&self) -> usize {
        self.end - self.start
    }

    fn bytes(&self, from: usize, len: usize) -> &[u8] {
        self.buf.get(from..from.saturating_add(len)).unwrap_or(&[])
    }

    fn byte(&self, at: usize) -> Option<u8> {
        if at < self.end {
            self.buf.get(at).copied()
        } else {
            None
        }
    }

    /// Makes at least `need` (at most [`MAX_FRAME`]) bytes available unless the input ends.
    /// The buffer grows to [`BUFFER_LEN`] only as the input needs it (small inputs stay
    /// cheap) and never beyond.
    fn fill(&mut self, need: usize) -> io::Result<()> {
        if self.avail() >= need || self.eof {
            return Ok(());
        }
        if BUFFER_LEN - self.start < need {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        while self.avail() < need && !self.eof {
            if self.end >= self.buf.len() {
                if self.buf.len() >= BUFFER_LEN {
                    break;
                }
                let grown = (self.buf.len() * 2).clamp(4096, BUFFER_LEN);
                self.buf.resize(grown, 0);
            }
            let Some(space) = self.buf.get_mut(self.end..) else {
                break;
            };
            match self.input.read(space) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n.min(space.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.state = State::Done;
                    self.eof = true;
                    return Err(e);
                }
            }
        }
        Ok(())
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
            }) => Some(Item::Record {
                offset,
                head,
                payload: self.buf.get(start..end).unwrap_or(&[]),
            }),
        })
    }

    fn push(&mut self, item: Item<'static>) {
        match &item {
            Item::Damaged { .. } => self.stats.damaged += 1,
            Item::Incomplete { .. } => self.stats.incomplete += 1,
            Item::Unsupported { .. } => self.stats.unsupported += 1,
            Item::Gap { from, to, .. } => self.stats.missing += to.saturating_sub(*from),
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
        let offset = self.base + from as u64;
        let erased = self.bytes(from, len).iter().filter(|&&b| b == 0xFF).count() as u64;
        let s = self.skip.get_or_insert((offset, 0, 0));
        s.1 += len as u64;
        s.2 += erased;
    }

    fn scan(&mut self) -> io::Result<()> {
        self.fill(MAX_FRAME)?;
        let hay = self.bytes(self.start, self.avail());
        let magic = memchr::memmem::find(hay, &MAGIC);
        // A header frame that checks but follows no magic: a dump whose magic is damaged.
        // Positions whose longest possible frame is buffered are searched (all, at the end).
        let limit = if self.eof {
            hay.len()
        } else {
            hay.len().saturating_sub(MAX_FRAME - 1)
        };
        // A magic past the limit waits for the header frames before it to be checked.
        let magic = magic.filter(|&m| m <= limit);
        let header = if self.after_unsupported {
            None // frames of a dump of an unknown version: do not guess
        } else {
            let upto = magic.unwrap_or(limit).min(limit);
            memchr::memmem::find_iter(hay.get(..upto).unwrap_or(&[]), &[SYNC, FRAME_HEADER])
                .find(|&i| self.candidate(self.start + i))
        };
        match (magic, header) {
            (_, Some(i)) => {
                self.note_skip(self.start, i);
                self.start += i;
                self.flush_skip();
                let offset = self.offset();
                self.push(Item::Damaged {
                    offset,
                    len: 0,
                    why: Damage::MissingMagic,
                });
                self.stats.dumps += 1;
                self.dump = Some(DumpCtx {
                    offset,
                    header: None,
                    expected: None,
                    seen: 0,
                });
                self.state = State::Header;
            }
            (Some(i), None) => {
                self.note_skip(self.start, i);
                self.start += i;
                self.flush_skip();
                self.after_unsupported = false;
                self.state = State::Version;
            }
            (None, None) => {
                // The last bytes may be the front of a magic or header frame that the next
                // read completes.
                let used = if self.eof {
                    hay.len()
                } else {
                    limit.min(hay.len().saturating_sub(MAGIC.len() - 1))
                };
                self.note_skip(self.start, used);
                self.start += used;
                if self.eof {
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
        match self.byte(self.start + MAGIC.len()) {
            None => {
                self.start = self.end;
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
                self.start += MAGIC.len() + 1;
                self.stats.dumps += 1;
                self.dump = Some(DumpCtx {
                    offset,
                    header: None,
                    expected: None,
                    seen: 0,
                });
                self.state = State::Header;
            }
            Some(version) => {
                self.start += MAGIC.len() + 1;
                self.after_unsupported = true;
                self.push(Item::Unsupported { offset, version });
                self.state = State::Scan;
            }
        }
        Ok(())
    }

    /// Looks at a frame starting at buffer index `at` (whose first byte is `SYNC`). The
    /// caller has filled [`MAX_FRAME`] bytes from `at`, or the input ends sooner.
    fn frame_at(&self, at: usize) -> Frame {
        use flightrec_core::frame::{parse_with, Parsed};
        let bytes = self.buf.get(at..self.end).unwrap_or(&[]);
        match parse_with(bytes, crc32fast::hash) {
            Parsed::Whole { ty, body, len } => Frame::Whole {
                ty,
                body: (at + body.start, at + body.end),
                len,
            },
            Parsed::Truncated { claimed, available } => Frame::Truncated { claimed, available },
            Parsed::BadCrc { ty, len } => Frame::BadCrc { ty, len },
            // The caller found a sync byte at `at`: a frame that does not check.
            Parsed::NotAFrame => Frame::BadCrc { ty: 0, len: 0 },
        }
    }

    fn header(&mut self) -> io::Result<()> {
        self.fill(MAX_FRAME)?;
        let offset = self.offset();
        if self.byte(self.start) == Some(SYNC) {
            if let Frame::Whole {
                ty: FRAME_HEADER,
                body: (b0, b1),
                len,
            } = self.frame_at(self.start)
            {
                let body = self.bytes(b0, b1 - b0);
                let header = postcard::take_from_bytes::<DumpHeader<'_>>(body)
                    .ok()
                    .map(|(h, _)| Header::from(&h));
                self.start += len;
                self.state = State::Frames;
                let Some(ctx) = self.dump.as_mut() else {
                    return Ok(());
                };
                match header {
                    Some(header) => {
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
        if let Some(ctx) = self.dump.take() {
            self.push(Item::Incomplete {
                dump_offset: ctx.offset,
                offset: self.offset(),
                seen: ctx.seen,
                why,
            });
        }
        self.state = State::Scan;
    }

    /// Whether erased flash starts at buffer index `at` (filled by the caller).
    fn erased_at(&self, at: usize) -> bool {
        let run = self.bytes(at, ERASED_RUN);
        !run.is_empty() && (run.len() == ERASED_RUN || self.eof) && run.iter().all(|&b| b == 0xFF)
    }

    fn frames(&mut self) -> io::Result<()> {
        self.fill(MAX_FRAME)?;
        let offset = self.offset();
        let Some(first) = self.byte(self.start) else {
            self.end_dump(Cut::InputEnded);
            return Ok(());
        };
        if first != SYNC {
            if self.bytes(self.start, MAGIC.len()) == MAGIC {
                self.end_dump(Cut::NextDump);
            } else if self.erased_at(self.start) {
                self.end_dump(Cut::Erased);
            } else {
                self.start += 1;
                self.state = State::Resync {
                    from: offset,
                    why: Damage::NotAFrame { byte: first },
                };
            }
            return Ok(());
        }
        match self.frame_at(self.start) {
            Frame::Truncated { claimed, available } => {
                self.start += 1;
                self.state = State::Resync {
                    from: offset,
                    why: Damage::Truncated { claimed, available },
                };
            }
            Frame::BadCrc { ty, len } => {
                self.start += 1;
                self.state = State::Resync {
                    from: offset,
                    why: Damage::BadCrc { ty, len },
                };
            }
            Frame::Whole { ty, body, len } => self.whole_frame(offset, ty, body, len),
        }
        Ok(())
    }

    fn whole_frame(&mut self, offset: u64, ty: u8, (b0, b1): (usize, usize), len: usize) {
        match ty {
            FRAME_RECORD => {
                let body = self.bytes(b0, b1 - b0);
                let parsed = postcard::take_from_bytes::<RecordHead>(body)
                    .ok()
                    .map(|(head, rest)| (head, b1 - rest.len()));
                self.start += len;
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
                self.start += len;
                self.state = State::Scan;
                let Some(ctx) = self.dump.take() else {
                    return;
                };
                match end {
                    Some(end) => {
                        if let Some(h) = &ctx.header {
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
            FRAME_HEADER => {
                // A header that checks but follows no magic: the previous dump was cut off
                // and this one's magic is damaged. Start a dump here.
                if let Some(ctx) = self.dump.take() {
                    self.push(Item::Incomplete {
                        dump_offset: ctx.offset,
                        offset,
                        seen: ctx.seen,
                        why: Cut::NextDump,
                    });
                }
                self.stats.dumps += 1;
                self.dump = Some(DumpCtx {
                    offset,
                    header: None,
                    expected: None,
                    seen: 0,
                });
                self.state = State::Header;
            }
            _ => {
                self.start += len;
                self.push(Item::UnknownFrame {
                    offset,
                    ty,
                    len: u16::try_from(len - FRAME_OVERHEAD).unwrap_or(u16::MAX),
                });
            }
        }
    }

    fn record(&mut self, offset: u64, head: RecordHead, start: usize, end: usize) {
        let mut notes = Vec::new();
        if let Some(ctx) = self.dump.as_mut() {
            ctx.seen += 1;
            let expected = ctx
                .expected
                .or_else(|| ctx.header.as_ref().map(|h| h.first_seq));
            if let Some(expected) = expected {
                if head.seq > expected {
                    notes.push(Item::Gap {
                        offset,
                        from: expected,
                        to: head.seq,
                        scoped: ctx.header.as_ref().is_some_and(|h| h.scope.is_some()),
                    });
                } else if head.seq < expected {
                    notes.push(Item::Damaged {
                        offset,
                        len: 0,
                        why: Damage::OutOfOrder {
                            expected,
                            seq: head.seq,
                        },
                    });
                }
            }
            ctx.expected = Some(head.seq.saturating_add(1));
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
        if self.end.saturating_sub(at) < FRAME_OVERHEAD + len {
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
            FRAME_HEADER => postcard::take_from_bytes::<DumpHeader<'_>>(body).is_ok(),
            _ => false,
        };
        plausible && matches!(self.frame_at(at), Frame::Whole { .. })
    }

    fn resync(&mut self, from: u64, why: Damage) -> io::Result<()> {
        loop {
            self.fill(MAX_FRAME)?;
            let mut i = self.start;
            // Positions whose longest possible frame is in the buffer (all, at the end).
            let limit = if self.eof {
                self.end
            } else {
                self.end.saturating_sub(MAX_FRAME - 1)
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
                    _ => {}
                }
                i += 1;
            }
            self.start = i;
            if found.is_none() && self.eof && self.start >= self.end {
                found = Some(Err(Cut::InputEnded));
            }
            let Some(found) = found else {
                continue; // refill and scan on: `start` moved, so this progresses
            };
            let here = self.offset();
            self.push(Item::Damaged {
                offset: from,
                len: here.saturating_sub(from),
                why,
            });
            match found {
                Ok(()) => self.state = State::Frames,
                Err(cut) => self.end_dump(cut),
            }
            return Ok(());
        }
    }
}
