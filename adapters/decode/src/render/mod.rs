//! Renderers of decoded items: text lines (`text.rs`), NDJSON ([`json`]), ProFTPD-style
//! forensic blocks (`forensic.rs`), in the way of tracing-subscriber's `fmt::format`: one
//! file per output, the shared [`Renderer`] here.
//!
//! Every string a peer or device controls goes through [`escape`]: core's `Escaped` in text
//! and forensic output (quoted values also escape `"`), [`json_str`] in JSON, so no output
//! line carries a raw control character, a terminal escape, an invisible character or a
//! forged delimiter.

use std::fmt::{self, Display};
use std::io::{self, Write};

use flightrec_core::event::Peer;
use flightrec_core::{ClockInfo, Kind, Level, RecordHead};

use crate::decoder::{Header, Item};
use crate::time::{TimeBound, TimeText};

pub mod escape;
mod forensic;
pub mod json;
pub(crate) mod push;
mod text;

pub use escape::{json_str, JsonStr};
pub use forensic::FORENSIC_BODY_MAX;

/// Decodes [`Kind::FRAME`] payloads (e.g. defmt frames with the firmware's ELF).
pub trait FrameDecoder {
    /// The frame's text, or why it cannot be decoded. The text is escaped by the renderer.
    fn decode(&mut self, head: &RecordHead, payload: &[u8]) -> Result<String, String>;
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// One line per record.
    #[default]
    Text,
    /// One JSON object per line (records and diagnostics, told apart by `"type"`).
    Json,
    /// One ProFTPD-style block per dump.
    Forensic,
}

/// Which records are shown. Diagnostics (gaps, damage) are always shown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only records of this session.
    pub session: Option<u32>,
    /// Only records at or above this level code.
    pub min_level: Option<u8>,
    /// Only records of these kinds (empty: all).
    pub kinds: Vec<Kind>,
    /// Only records at or after this time.
    pub since: Option<TimeBound>,
    /// Only records at or before this time.
    pub until: Option<TimeBound>,
}

impl Filter {
    /// Whether a record passes. A time bound that cannot be compared with the record's clock
    /// (a Unix time against a boot clock) lets nothing through.
    pub fn matches(&self, head: &RecordHead, clock: Option<ClockInfo>) -> bool {
        if self
            .session
            .is_some_and(|s| head.session.map(|x| x.0) != Some(s))
        {
            return false;
        }
        if self.min_level.is_some_and(|l| head.level < l) {
            return false;
        }
        if !self.kinds.is_empty() && !self.kinds.contains(&head.kind) {
            return false;
        }
        if let Some(b) = self.since {
            if b.cmp_ticks(head.time, clock).is_none_or(|o| o.is_lt()) {
                return false;
            }
        }
        if let Some(b) = self.until {
            if b.cmp_ticks(head.time, clock).is_none_or(|o| o.is_gt()) {
                return false;
            }
        }
        true
    }

    /// Whether a time bound cannot be compared with records of this clock (worth a warning).
    pub fn time_incompatible(&self, clock: ClockInfo) -> bool {
        [self.since, self.until]
            .iter()
            .flatten()
            .any(|b| b.cmp_ticks(0, Some(clock)).is_none())
    }
}

/// How to render.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Output format.
    pub format: Format,
    /// ANSI colour (text only; the caller decides, e.g. only on a terminal).
    pub color: bool,
    /// Which records to show.
    pub filter: Filter,
}

/// What rendering found, beyond what the decoder counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records shown.
    pub shown: u64,
    /// Records left out by the filter.
    pub filtered: u64,
    /// Records whose payload does not decode as their kind says (or frames the frame
    /// decoder rejected).
    pub malformed: u64,
    /// End frames whose record count differs from the records decoded.
    pub count_mismatch: u64,
}

impl Summary {
    /// Whether rendering met damaged data.
    pub fn damaged(&self) -> bool {
        self.malformed + self.count_mismatch > 0
    }
}

/// What every format shares: the options, the dump being rendered, the frame decoder, the
/// input's name and the counts.
pub(crate) struct Shared {
    opts: Options,
    header: Option<Header>,
    frames: Option<Box<dyn FrameDecoder>>,
    source: Option<String>,
    summary: Summary,
    /// Record times, written as [`crate::time::Time`] shows them.
    time: TimeText,
}

impl Shared {
    /// The current dump's clock, if its header is known.
    fn clock(&self) -> Option<ClockInfo> {
        self.header.as_ref().map(|h| h.clock)
    }

    /// Appends a record's time as [`crate::time::Time`] shows it in this dump's clock.
    fn push_time(&mut self, out: &mut Vec<u8>, ticks: u64) {
        let clock = self.clock();
        self.time.push(out, ticks, clock);
    }

    /// Whether the filter lets `head` through; counts it either way.
    fn keep(&mut self, head: &RecordHead) -> bool {
        let keep = self.opts.filter.matches(head, self.clock());
        if keep {
            self.summary.shown += 1;
        } else {
            self.summary.filtered += 1;
        }
        keep
    }

    /// The frame decoder's reading of a frame payload, if there is a frame decoder.
    fn decode_frame(
        &mut self,
        head: &RecordHead,
        payload: &[u8],
    ) -> Option<Result<String, String>> {
        let r = self.frames.as_mut()?.decode(head, payload);
        if r.is_err() {
            self.summary.malformed += 1;
        }
        Some(r)
    }

    /// Counts an end frame whose count differs from the records decoded.
    fn check_end(&mut self, item: &Item<'_>) {
        if let Item::DumpEnd { end, seen, .. } = item {
            if end.records != *seen {
                self.summary.count_mismatch += 1;
            }
        }
    }
}

/// The state one format keeps between items.
enum Style {
    Text(text::Text),
    Json(json::Json),
    Forensic(Box<forensic::Forensic>),
}

/// Renders [`Item`]s in one [`Format`]. See the crate docs for an example.
pub struct Renderer {
    shared: Shared,
    style: Style,
}

impl Renderer {
    /// A renderer with these options.
    pub fn new(opts: Options) -> Self {
        let style = match opts.format {
            Format::Text => Style::Text(text::Text::default()),
            Format::Json => Style::Json(json::Json::default()),
            Format::Forensic => Style::Forensic(Box::default()),
        };
        Renderer {
            shared: Shared {
                opts,
                header: None,
                frames: None,
                source: None,
                summary: Summary::default(),
                time: TimeText::default(),
            },
            style,
        }
    }

    /// Decodes [`Kind::FRAME`] payloads with `frames` instead of showing their bytes.
    pub fn with_frame_decoder(mut self, frames: Box<dyn FrameDecoder>) -> Self {
        self.shared.frames = Some(frames);
        self
    }

    /// Names the input the next items come from (JSON objects get a `"source"` member);
    /// also forgets the previous input's dump.
    pub fn set_source(&mut self, source: Option<String>) {
        self.shared.source = source;
        self.shared.header = None;
    }

    /// What rendering found so far.
    pub fn summary(&self) -> Summary {
        self.shared.summary
    }

    /// Writes what `item` shows.
    pub fn render<W: Write + ?Sized>(&mut self, item: &Item<'_>, out: &mut W) -> io::Result<()> {
        if let Item::DumpStart { header, .. } = item {
            self.shared.header = Some(header.clone());
        }
        self.shared.check_end(item);
        match &mut self.style {
            Style::Text(t) => t.render(&mut self.shared, item, out),
            Style::Json(j) => j.render(&mut self.shared, item, out),
            Style::Forensic(f) => f.render(&mut self.shared, item, out),
        }?;
        if item.ends_dump() {
            self.shared.header = None;
        }
        Ok(())
    }

    /// Writes whatever is still held (an open forensic block).
    pub fn finish<W: Write + ?Sized>(&mut self, out: &mut W) -> io::Result<()> {
        match &mut self.style {
            Style::Forensic(f) => f.close(out),
            _ => Ok(()),
        }
    }
}

/// Lower-case hex.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A peer as `ADDR:PORT`, or `-`.
pub(crate) struct PeerText(pub(crate) Option<Peer>);

impl Display for PeerText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("-"),
            Some(p) => std::net::SocketAddr::new(p.addr.into(), p.port).fmt(f),
        }
    }
}

/// A level's name, or `L<code>` for a code this version does not know.
pub(crate) struct LevelName(pub(crate) u8);

impl Display for LevelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Level::from_u8(self.0) {
            Some(l) => f.pad(l.as_str()),
            None => f.pad(&format!("L{}", self.0)),
        }
    }
}

/// A kind's name, or `kind<code>`.
pub(crate) struct KindName(pub(crate) Kind);

impl Display for KindName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "kind{}", self.0 .0),
        }
    }
}
