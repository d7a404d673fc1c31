//! The judge: from the pieces of a (mutated) file alone, what a decoder must report.
//!
//! It reads the file piece by piece as the wire format defines it (WIRE-FORMAT.md) and stops
//! at the first piece that breaks a rule needing no key: a frame that does not check, a
//! missing or undecodable header or end, records out of order or outside their header's
//! range, an end frame whose count differs from the records seen, a dump without an end, no
//! dump at all. Such a file must make the CLI exit 1 ([`Verdict::Damaged`]). A file that
//! breaks no rule must decode to exactly its records with exit 0 ([`Verdict::Clean`]). Where
//! a crafted piece could be read in more than one way (a frame whose length field changed,
//! inserted bytes starting with a sync byte, a modified record payload), the judge does not
//! guess ([`Verdict::Undecided`]).

use flightrec_core::dump::{FRAME_END, FRAME_HEADER, FRAME_RECORD, MAGIC, SYNC, VERSION};
use flightrec_core::{DumpEnd, DumpHeader, RecordHead};

use crate::pieces::{File, Piece, Role};

/// Why a file is damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// A frame whose CRC fails, cut by the end of the input, or not starting with `FE`.
    BrokenFrame,
    /// The dump's magic is damaged; its header frame checks (the decoder finds it).
    MagicDamaged,
    /// A version byte this decoder does not know.
    OtherVersion,
    /// The input ends inside a magic and version.
    MagicCut,
    /// The frame after a magic is not a header that checks and decodes.
    NoHeader,
    /// A record frame that checks but whose head does not decode.
    BadRecordHead,
    /// An end frame that checks but does not decode.
    BadEnd,
    /// A record whose sequence number is not above the previous one's (or below the
    /// header's first).
    OutOfOrder,
    /// An end frame whose record count differs from the records before it.
    CountMismatch,
    /// A header frame or a magic before the dump's end frame.
    DumpCut,
    /// The input ends inside a dump.
    NoEnd,
    /// No dump at all.
    NoDump,
    /// Issue 10: a record at or above its header's `next_seq` (a splice of two dumps).
    SeqPastHeader,
    /// Issue 10: bytes outside any dump that are not a dump's start (a dump whose magic and
    /// header are damaged, frames of a dump whose start was removed).
    SkippedOutside,
}

impl Why {
    /// Whether today's decoder is known not to report it (issue 10 asks it to): asserted
    /// only with the `issue10-damage` feature.
    pub fn pending_issue10(self) -> bool {
        matches!(self, Why::SeqPastHeader | Why::SkippedOutside)
    }
}

/// A record the decoder must report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected<'a> {
    /// Offset of its frame in the file.
    pub offset: u64,
    /// Its head.
    pub head: RecordHead,
    /// Its payload.
    pub payload: &'a [u8],
}

/// What the decoder must report of a file that breaks no rule.
#[derive(Clone, Debug, Default)]
pub struct Clean<'a> {
    /// Each dump's magic offset and header.
    pub dumps: Vec<(u64, flightrec_decode::Header)>,
    /// Every record, in file order.
    pub records: Vec<Expected<'a>>,
}

/// The judgement.
#[derive(Debug)]
pub enum Verdict<'a> {
    /// No rule broken: exactly these dumps and records, exit 0.
    Clean(Clean<'a>),
    /// A rule broken at this piece: exit 1.
    Damaged(Why, usize),
    /// Cannot tell without guessing how a crafted piece reads.
    Undecided(&'static str),
}

impl Verdict<'_> {
    /// One word for counting verdicts over a corpus.
    pub fn label(&self) -> String {
        match self {
            Verdict::Clean(c) => {
                format!("clean dumps={} records={}", c.dumps.len(), c.records.len())
            }
            Verdict::Damaged(why, _) => format!("damaged {why:?}"),
            Verdict::Undecided(why) => format!("undecided {why}"),
        }
    }
}

/// Prints `label` when the `verdict-log` feature is on.
pub fn log(label: impl FnOnce() -> String) {
    if cfg!(feature = "verdict-log") {
        eprintln!("verdict: {}", label());
    }
}

/// A piece as the decoder will see it when it reaches it at a frame boundary.
enum Seen<'a> {
    Magic,
    MagicOnly,
    OtherVersion,
    MagicPrefix,
    MagicBroken,
    Header(Option<DumpHeader<'a>>),
    Record(Option<(RecordHead, &'a [u8])>),
    End(Option<DumpEnd>),
    /// A callsite table frame: read by the decoder (and damage when its body does not
    /// decode), checked by the `callsites` target.
    Table,
    /// A seal or signature frame: passed over by `decode` right after a dump's end, checked
    /// by `flightrec verify` (and the sealing tests).
    Seal,
    Unknown,
    /// A frame the decoder must reject at this place.
    Broken,
    /// A frame whose extent changed, or inserted bytes: could read several ways.
    Unsure,
}

fn see<'a>(bytes: &'a [u8], role: Role, last: bool) -> Seen<'a> {
    match role {
        Role::Raw => Seen::Unsure,
        Role::Magic => {
            if bytes.len() == MAGIC.len() + 1 && bytes[..MAGIC.len()] == MAGIC {
                if bytes[MAGIC.len()] == VERSION {
                    Seen::Magic
                } else {
                    Seen::OtherVersion
                }
            } else if bytes == MAGIC {
                Seen::MagicOnly
            } else if MAGIC.starts_with(bytes) {
                Seen::MagicPrefix
            } else {
                Seen::MagicBroken
            }
        }
        Role::Frame => {
            let Some((&[sync, ty, l0, l1], _)) = bytes.split_first_chunk::<4>() else {
                // Shorter than a frame head: only a cut leaves that.
                return if bytes.first() == Some(&SYNC) && !last {
                    Seen::Unsure
                } else {
                    Seen::Broken
                };
            };
            if sync != SYNC {
                return Seen::Broken;
            }
            let claimed = 8 + usize::from(u16::from_le_bytes([l0, l1]));
            if claimed != bytes.len() {
                // Cut by the end of the input: the decoder sees a truncated frame.
                return if last && claimed > bytes.len() {
                    Seen::Broken
                } else {
                    Seen::Unsure
                };
            }
            let Some(body) = crate::pieces::whole_frame(bytes, ty) else {
                return Seen::Broken;
            };
            match ty {
                FRAME_HEADER => Seen::Header(
                    postcard::take_from_bytes::<DumpHeader<'_>>(body)
                        .ok()
                        .map(|(h, _)| h),
                ),
                FRAME_RECORD => Seen::Record(postcard::take_from_bytes::<RecordHead>(body).ok()),
                FRAME_END => Seen::End(
                    postcard::take_from_bytes::<DumpEnd>(body)
                        .ok()
                        .map(|(e, _)| e),
                ),
                flightrec_core::callsite::FRAME_CALLSITES => Seen::Table,
                flightrec_core::seal::FRAME_SEAL | flightrec_core::seal::FRAME_SIGNATURE => {
                    Seen::Seal
                }
                _ => Seen::Unknown,
            }
        }
    }
}

enum State<'a> {
    Outside,
    AfterMagic(u64),
    InDump {
        header: DumpHeader<'a>,
        last: Option<RecordHead>,
        count: u64,
    },
}

/// Judges `file`, whose pieces start at `offsets` in its bytes.
pub fn judge<'a>(file: &'a File, offsets: &[u64]) -> Verdict<'a> {
    let mut state = State::Outside;
    let mut clean = Clean::default();
    let mut unclean: Option<&'static str> = None;
    let n = file.pieces.len();
    for (i, p) in file.pieces.iter().enumerate() {
        let seen = see(file.bytes(p), p.role, i + 1 == n);
        let damaged = |why| Verdict::Damaged(why, i);
        // Erased flash between dumps is skipped without a word, as it should be.
        let erased = !file.bytes(p).is_empty() && file.bytes(p).iter().all(|&b| b == 0xFF);
        state = match state {
            State::Outside if erased => State::Outside,
            State::Outside => match seen {
                Seen::Magic => State::AfterMagic(offsets[i]),
                Seen::MagicOnly if i + 1 == n => return damaged(Why::MagicCut),
                Seen::OtherVersion => return damaged(Why::OtherVersion),
                Seen::Header(Some(_)) => return damaged(Why::MagicDamaged),
                Seen::MagicBroken if next_is_header(file, i) => return damaged(Why::MagicDamaged),
                Seen::Unsure => return Verdict::Undecided("crafted bytes outside a dump"),
                Seen::Seal => {
                    unclean = unclean.or(Some("a seal frame"));
                    State::Outside
                }
                _ => return damaged(Why::SkippedOutside),
            },
            State::AfterMagic(offset) => match seen {
                Seen::Header(Some(header)) => {
                    clean
                        .dumps
                        .push((offset, flightrec_decode::Header::from(&header)));
                    State::InDump {
                        header,
                        last: None,
                        count: 0,
                    }
                }
                Seen::Unsure => return Verdict::Undecided("crafted bytes after a magic"),
                _ => return damaged(Why::NoHeader),
            },
            State::InDump {
                header,
                last,
                count,
            } => match seen {
                Seen::Record(None) => return damaged(Why::BadRecordHead),
                Seen::Record(Some((head, payload))) => {
                    let min = last.map_or(header.first_seq, |l| l.seq.saturating_add(1));
                    if head.seq < min {
                        return damaged(Why::OutOfOrder);
                    }
                    if head.seq >= header.next_seq {
                        return damaged(Why::SeqPastHeader);
                    }
                    if let (Some(scope), Some(s)) = (header.scope, head.session) {
                        if s != scope {
                            unclean = unclean.or(Some("a record of another session"));
                        }
                    }
                    if last.is_some_and(|l| head.time < l.time) {
                        unclean = unclean.or(Some("a record older than the one before"));
                    }
                    if p.touched {
                        unclean = unclean.or(Some("a modified record"));
                    }
                    if head.kind == flightrec_core::Kind::CALLSITE {
                        // Shown resolved (or as `callsite N`, damage, without its table):
                        // the `callsites` target checks those.
                        unclean = unclean.or(Some("a callsite record"));
                    }
                    clean.records.push(Expected {
                        offset: offsets[i],
                        head,
                        payload,
                    });
                    State::InDump {
                        header,
                        last: Some(head),
                        count: count + 1,
                    }
                }
                Seen::End(None) => return damaged(Why::BadEnd),
                Seen::End(Some(end)) if end.records != count => return damaged(Why::CountMismatch),
                Seen::End(Some(_)) => State::Outside,
                Seen::Table => {
                    unclean = unclean.or(Some("a callsite table"));
                    State::InDump {
                        header,
                        last,
                        count,
                    }
                }
                Seen::Seal | Seen::Unknown => State::InDump {
                    header,
                    last,
                    count,
                },
                Seen::Header(_) => return damaged(Why::DumpCut),
                Seen::Broken => return damaged(Why::BrokenFrame),
                Seen::Magic | Seen::MagicOnly | Seen::OtherVersion => return damaged(Why::DumpCut),
                Seen::MagicPrefix | Seen::MagicBroken | Seen::Unsure => {
                    if file.bytes(p).first() == Some(&SYNC) {
                        return Verdict::Undecided("crafted bytes inside a dump");
                    }
                    return damaged(Why::BrokenFrame);
                }
            },
        };
    }
    match state {
        State::Outside if clean.dumps.is_empty() => Verdict::Damaged(Why::NoDump, n),
        State::Outside => match unclean {
            Some(why) => Verdict::Undecided(why),
            None => Verdict::Clean(clean),
        },
        State::AfterMagic(_) => Verdict::Damaged(Why::NoHeader, n),
        State::InDump { .. } => Verdict::Damaged(Why::NoEnd, n),
    }
}

fn next_is_header(file: &File, i: usize) -> bool {
    file.pieces.get(i + 1).is_some_and(|p: &Piece| {
        let last = i + 2 == file.pieces.len();
        matches!(see(file.bytes(p), p.role, last), Seen::Header(Some(_)))
    })
}
