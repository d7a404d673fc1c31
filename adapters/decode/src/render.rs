//! Renderers of decoded items: text lines, NDJSON, ProFTPD-style forensic blocks.
//!
//! Every string a peer or device controls goes through [`Escaped`] in text and forensic
//! output (quoted values also escape `"`), and through [`json_str`] in JSON, so no output
//! line carries a raw control character, a terminal escape or a forged delimiter.

use std::collections::HashMap;
use std::fmt::{self, Display};
use std::io::{self, Write};

use flightrec_core::event::{self, Decoded, Fields, Peer, Value};
use flightrec_core::text::{is_dangerous, Escaped};
use flightrec_core::{ClockInfo, DumpEnd, Kind, Level, Reason, RecordHead, TimeBase};

use crate::decoder::{Header, Item};
use crate::time::{ticks_to_nanos, Time, TimeBound};

/// Delimiters escaped in a quoted value.
const QUOTED: &[char] = &['"'];
/// Delimiters escaped in a bare word (target, field name).
const BARE: &[char] = &[' ', '=', '"'];
/// Most bytes of a forensic block's records held before the block is written.
pub const FORENSIC_BODY_MAX: usize = 16 << 20;
/// Most sessions whose facts a forensic block remembers.
const FORENSIC_SESSIONS_MAX: usize = 1024;

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

/// Lower-case hex.
struct Hex<'a>(&'a [u8]);

impl Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A string escaped per JSON rules, quotes included. Besides what JSON requires, DEL, C1
/// controls, line/paragraph separators, bidi controls and BOM are written as `\uXXXX`, so
/// the output carries no raw control character.
pub struct JsonStr<'a>(pub &'a str);

impl Display for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        let s = self.0;
        let mut clean = 0;
        for (i, c) in s.char_indices() {
            let esc: Option<&str> = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '\n' => Some("\\n"),
                '\r' => Some("\\r"),
                '\t' => Some("\\t"),
                _ => None,
            };
            if esc.is_none() && !is_dangerous(c) {
                continue;
            }
            f.write_str(s.get(clean..i).unwrap_or(""))?;
            clean = i + c.len_utf8();
            match esc {
                Some(e) => f.write_str(e)?,
                None => write!(f, "\\u{:04x}", c as u32)?, // all dangerous chars are in the BMP
            }
        }
        f.write_str(s.get(clean..).unwrap_or(""))?;
        f.write_str("\"")
    }
}

/// Writes `s` as a JSON string.
pub fn json_str<W: Write + ?Sized>(w: &mut W, s: &str) -> io::Result<()> {
    write!(w, "{}", JsonStr(s))
}

/// Whether `s` is printable ASCII with nothing [`Escaped`] would change: then it is written
/// as is (a fast path only; everything else goes through `Escaped`).
fn clean(s: &str, delimiters: &[char]) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'\\' && !delimiters.contains(&char::from(b)))
}

struct Quoted<'a>(&'a str);

impl Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        if clean(self.0, QUOTED) {
            f.write_str(self.0)?;
        } else {
            Escaped::new(self.0, QUOTED).fmt(f)?;
        }
        f.write_str("\"")
    }
}

/// Appends `s` in quotes, escaped.
fn push_quoted(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    if clean(s, QUOTED) {
        out.extend_from_slice(s.as_bytes());
    } else {
        let _ = write!(out, "{}", Escaped::new(s, QUOTED));
    }
    out.push(b'"');
}

/// Appends `s` escaped, without quotes (a target, a field name).
fn push_bare(out: &mut Vec<u8>, s: &str) {
    if clean(s, BARE) {
        out.extend_from_slice(s.as_bytes());
    } else {
        let _ = write!(out, "{}", Escaped::new(s, BARE));
    }
}

/// Appends ` key="value"` pairs (no leading space for the first at the start of a body).
fn push_pairs(out: &mut Vec<u8>, pairs: &[(&str, &str)]) {
    for (k, v) in pairs {
        if out.last().is_some_and(|&b| b != b' ') {
            out.push(b' ');
        }
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        push_quoted(out, v);
    }
}

/// Appends ` peer=ADDR:PORT` (or `peer=-`).
fn push_peer(out: &mut Vec<u8>, peer: Option<Peer>) {
    let _ = write!(out, " peer={}", PeerText(peer));
}

/// Appends `n` in decimal.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or(&[]));
}

/// Appends a record's time as [`Time`] shows it, by hand for the common boot clock.
fn push_time(out: &mut Vec<u8>, ticks: u64, clock: Option<ClockInfo>) {
    if let Some(ClockInfo {
        rate_hz: rate @ 1..,
        base: TimeBase::Boot,
    }) = clock
    {
        if let Some(scaled) = (ticks % rate).checked_mul(1000) {
            let ms = scaled / rate;
            out.push(b'+');
            push_u64(out, ticks / rate);
            out.extend_from_slice(&[
                b'.',
                b'0' + (ms / 100 % 10) as u8,
                b'0' + (ms / 10 % 10) as u8,
                b'0' + (ms % 10) as u8,
                b's',
            ]);
            return;
        }
    }
    let _ = write!(out, "{}", Time { ticks, clock });
}

struct PeerText(Option<Peer>);

impl Display for PeerText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("-"),
            Some(p) => std::net::SocketAddr::new(p.addr.into(), p.port).fmt(f),
        }
    }
}

struct LevelName(u8);

impl Display for LevelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Level::from_u8(self.0) {
            Some(l) => f.pad(l.as_str()),
            None => f.pad(&format!("L{}", self.0)),
        }
    }
}

struct KindName(Kind);

impl Display for KindName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "kind{}", self.0 .0),
        }
    }
}

fn level_color(level: u8) -> &'static str {
    match level {
        0 => "\x1b[2m",
        1 => "\x1b[34m",
        2 => "\x1b[32m",
        3 => "\x1b[33m",
        _ => "\x1b[1;31m",
    }
}
const RESET: &str = "\x1b[0m";
const ALERT: &str = "\x1b[1;31m";

fn clock_of(h: Option<&Header>) -> Option<ClockInfo> {
    h.map(|h| h.clock)
}

/// Facts for a forensic block's header fields, gathered from its records.
#[derive(Default)]
struct Facts {
    user: Option<String>,
    host: Option<String>,
    peer: Option<Peer>,
    protocol: Option<String>,
    session: Option<u32>,
    trigger_seen: bool,
    first_time: Option<u64>,
    /// Per session: first record's time and the protocol of its connect record.
    sessions: HashMap<u32, (u64, Option<String>)>,
}

/// A forensic block being gathered.
struct Block {
    offset: Option<u64>,
    header: Option<Header>,
    body: Vec<u8>,
    hidden: u64,
    decoded: u64,
    facts: Facts,
    close: Option<String>,
}

/// Renders [`Item`]s in one [`Format`]. See the crate docs for an example.
pub struct Renderer {
    opts: Options,
    header: Option<Header>,
    frames: Option<Box<dyn FrameDecoder>>,
    block: Option<Block>,
    source: Option<String>,
    summary: Summary,
    /// Reused for each text line: one write per line, formatting without dynamic dispatch.
    line: Vec<u8>,
}

impl Renderer {
    /// A renderer with these options.
    pub fn new(opts: Options) -> Self {
        Renderer {
            opts,
            header: None,
            frames: None,
            block: None,
            source: None,
            summary: Summary::default(),
            line: Vec::with_capacity(512),
        }
    }

    /// Decodes [`Kind::FRAME`] payloads with `frames` instead of showing their bytes.
    pub fn with_frame_decoder(mut self, frames: Box<dyn FrameDecoder>) -> Self {
        self.frames = Some(frames);
        self
    }

    /// Names the input the next items come from (JSON objects get a `"source"` member);
    /// also forgets the previous input's dump.
    pub fn set_source(&mut self, source: Option<String>) {
        self.source = source;
        self.header = None;
    }

    /// What rendering found so far.
    pub fn summary(&self) -> Summary {
        self.summary
    }

    /// Writes what `item` shows.
    pub fn render<W: Write + ?Sized>(&mut self, item: &Item<'_>, out: &mut W) -> io::Result<()> {
        if let Item::DumpStart { header, .. } = item {
            self.header = Some(header.clone());
        }
        match self.opts.format {
            Format::Text => self.text(item, out),
            Format::Json => self.json(item, out),
            Format::Forensic => self.forensic(item, out),
        }?;
        if matches!(item, Item::DumpEnd { .. } | Item::Incomplete { .. }) {
            self.header = None;
        }
        Ok(())
    }

    /// Writes whatever is still held (an open forensic block).
    pub fn finish<W: Write + ?Sized>(&mut self, out: &mut W) -> io::Result<()> {
        self.close_block(out)
    }

    fn keep(&mut self, head: &RecordHead) -> bool {
        let keep = self
            .opts
            .filter
            .matches(head, clock_of(self.header.as_ref()));
        if keep {
            self.summary.shown += 1;
        } else {
            self.summary.filtered += 1;
        }
        keep
    }

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

    // ---- text ----

    fn text<W: Write + ?Sized>(&mut self, item: &Item<'_>, out: &mut W) -> io::Result<()> {
        let color = self.opts.color;
        match item {
            Item::Record { head, payload, .. } => {
                if self.keep(head) {
                    let mut line = std::mem::take(&mut self.line);
                    line.clear();
                    let r = self.text_record(head, payload, color, &mut line);
                    let r = r.and_then(|()| out.write_all(&line));
                    if line.capacity() <= 1 << 20 {
                        self.line = line; // (a huge record's buffer is dropped)
                    }
                    r?;
                }
                Ok(())
            }
            Item::DumpEnd { end, seen, .. } if end.records != *seen => {
                self.summary.count_mismatch += 1;
                diag_line(out, color, item, self.header.as_ref())
            }
            _ => diag_line(out, color, item, self.header.as_ref()),
        }
    }

    fn text_record(
        &mut self,
        head: &RecordHead,
        payload: &[u8],
        color: bool,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        // The line's fixed columns are pushed by hand: this is the hot path of `decode`.
        push_time(out, head.time, clock_of(self.header.as_ref()));
        out.push(b' ');
        if color {
            out.extend_from_slice(level_color(head.level).as_bytes());
        }
        match Level::from_u8(head.level) {
            Some(l) => {
                out.extend_from_slice(l.as_str().as_bytes());
                out.extend_from_slice(&b"     "[l.as_str().len().min(5)..]);
            }
            None => write!(out, "{:<5}", LevelName(head.level))?,
        }
        if color {
            out.extend_from_slice(RESET.as_bytes());
        }
        out.push(b' ');
        match head.kind.name() {
            Some(n) => out.extend_from_slice(n.as_bytes()),
            None => write!(out, "{}", KindName(head.kind))?,
        }
        match head.session {
            Some(s) => {
                out.extend_from_slice(b" s=");
                push_u64(out, u64::from(s.0));
                out.push(b' ');
            }
            None => out.extend_from_slice(b" - "),
        }
        let level = Level::from_u8(head.level).unwrap_or(Level::Trace);
        match event::decode(head.kind, level, payload) {
            Err(_) => {
                self.summary.malformed += 1;
                let shown = payload.get(..64).unwrap_or(payload);
                write!(
                    out,
                    "malformed payload, {} bytes: {}{}",
                    payload.len(),
                    Hex(shown),
                    if shown.len() < payload.len() {
                        "…"
                    } else {
                        ""
                    }
                )?;
            }
            Ok(Decoded::Log(l)) => {
                out.extend_from_slice(b"target=");
                push_bare(out, l.target);
                out.extend_from_slice(b" msg=");
                push_quoted(out, l.message);
                self.text_fields(&l.fields, out)?;
            }
            Ok(Decoded::Frame(bytes)) => match self.decode_frame(head, bytes) {
                Some(Ok(text)) => {
                    out.extend_from_slice(b"msg=");
                    push_quoted(out, &text);
                }
                Some(Err(e)) => write!(
                    out,
                    "len={} hex={} undecodable={}",
                    bytes.len(),
                    Hex(bytes),
                    Quoted(&e)
                )?,
                None => write!(out, "len={} hex={}", bytes.len(), Hex(bytes))?,
            },
            Ok(Decoded::AuthFailure(e)) => {
                push_pairs(out, &[("user", e.user), ("host", e.host)]);
                push_peer(out, e.peer);
                push_pairs(out, &[("mechanism", e.mechanism), ("reason", e.reason)]);
            }
            Ok(Decoded::AuthSuccess(e)) => {
                push_pairs(out, &[("user", e.user), ("host", e.host)]);
                push_peer(out, e.peer);
                push_pairs(out, &[("mechanism", e.mechanism)]);
            }
            Ok(Decoded::Logout(e)) => {
                push_pairs(out, &[("user", e.user), ("host", e.host)]);
                push_peer(out, e.peer);
            }
            Ok(Decoded::SessionForbidden(e)) => push_pairs(
                out,
                &[("user", e.user), ("host", e.host), ("resource", e.resource)],
            ),
            Ok(Decoded::Connect(e)) => {
                push_pairs(out, &[("protocol", e.protocol)]);
                push_peer(out, e.peer);
            }
            Ok(Decoded::Custom(c)) => {
                out.extend_from_slice(b"name=");
                push_quoted(out, c.name);
                self.text_fields(&c.attributes, out)?;
            }
            Ok(Decoded::Unknown { kind, len }) => {
                write!(out, "unknown kind {}, {len} bytes", kind.0)?
            }
        }
        out.write_all(b"\n")
    }

    fn text_fields(&mut self, fields: &Fields<'_>, out: &mut Vec<u8>) -> io::Result<()> {
        for f in fields.iter() {
            match f {
                Ok(f) => {
                    out.push(b' ');
                    push_bare(out, f.name);
                    out.push(b'=');
                    match f.value {
                        Value::Str(s) => push_quoted(out, s),
                        Value::Bytes(b) => write!(out, "0x{}", Hex(b))?,
                        Value::U64(n) => push_u64(out, n),
                        Value::I64(n) => {
                            if n < 0 {
                                out.push(b'-');
                            }
                            push_u64(out, n.unsigned_abs());
                        }
                        v => write!(out, "{v}")?,
                    }
                }
                Err(_) => {
                    self.summary.malformed += 1;
                    out.write_all(b" !malformed-fields")?;
                    break;
                }
            }
        }
        Ok(())
    }

    // ---- JSON ----

    fn json<W: Write + ?Sized>(&mut self, item: &Item<'_>, out: &mut W) -> io::Result<()> {
        let mut line = Vec::with_capacity(256);
        match item {
            Item::Record {
                offset,
                head,
                payload,
            } => {
                if !self.keep(head) {
                    return Ok(());
                }
                self.json_open(&mut line, "record", *offset)?;
                self.json_record(head, payload, &mut line)?;
            }
            Item::DumpStart { offset, header } => {
                self.json_open(&mut line, "dump", *offset)?;
                json_header(&mut line, header)?;
            }
            Item::Gap {
                offset,
                from,
                to,
                scoped,
            } => {
                self.json_open(&mut line, "gap", *offset)?;
                write!(
                    line,
                    ",\"from\":{from},\"to\":{to},\"lost\":{},\"scoped\":{scoped}",
                    to.saturating_sub(*from)
                )?;
            }
            Item::Damaged { offset, len, why } => {
                self.json_open(&mut line, "damaged", *offset)?;
                write!(line, ",\"len\":{len},\"why\":")?;
                json_str(&mut line, &why.to_string())?;
            }
            Item::UnknownFrame { offset, ty, len } => {
                self.json_open(&mut line, "unknown_frame", *offset)?;
                write!(line, ",\"frame_type\":{ty},\"len\":{len}")?;
            }
            Item::DumpEnd { offset, end, seen } => {
                if end.records != *seen {
                    self.summary.count_mismatch += 1;
                }
                self.json_open(&mut line, "end", *offset)?;
                write!(
                    line,
                    ",\"records\":{},\"lost\":{},\"out_of_scope\":{},\"decoded\":{seen}",
                    end.records, end.lost, end.out_of_scope
                )?;
            }
            Item::Incomplete {
                dump_offset,
                offset,
                seen,
                why,
            } => {
                self.json_open(&mut line, "incomplete", *offset)?;
                write!(
                    line,
                    ",\"dump_offset\":{dump_offset},\"decoded\":{seen},\"why\":"
                )?;
                json_str(&mut line, &why.to_string())?;
            }
            Item::Unsupported { offset, version } => {
                self.json_open(&mut line, "unsupported", *offset)?;
                write!(line, ",\"version\":{version}")?;
            }
            Item::Skipped {
                offset,
                len,
                erased,
            } => {
                self.json_open(&mut line, "skipped", *offset)?;
                write!(line, ",\"len\":{len},\"erased\":{erased}")?;
            }
        }
        line.extend_from_slice(b"}\n");
        out.write_all(&line)
    }

    fn json_open(&self, line: &mut Vec<u8>, ty: &str, offset: u64) -> io::Result<()> {
        write!(line, "{{\"type\":\"{ty}\"")?;
        if let Some(s) = &self.source {
            line.extend_from_slice(b",\"source\":");
            json_str(line, s)?;
        }
        write!(line, ",\"offset\":{offset}")
    }

    fn json_record(
        &mut self,
        head: &RecordHead,
        payload: &[u8],
        line: &mut Vec<u8>,
    ) -> io::Result<()> {
        let time = Time {
            ticks: head.time,
            clock: clock_of(self.header.as_ref()),
        };
        write!(
            line,
            ",\"seq\":{},\"time\":\"{time}\",\"ticks\":{},\"level\":\"{}\",\"kind\":\"{}\"",
            head.seq,
            head.time,
            LevelName(head.level),
            KindName(head.kind)
        )?;
        match head.session {
            Some(s) => write!(line, ",\"session\":{}", s.0)?,
            None => line.extend_from_slice(b",\"session\":null"),
        }
        let level = Level::from_u8(head.level).unwrap_or(Level::Trace);
        let kv = |line: &mut Vec<u8>, k: &str, v: &str| -> io::Result<()> {
            write!(line, ",\"{k}\":{}", JsonStr(v))
        };
        match event::decode(head.kind, level, payload) {
            Err(_) => {
                self.summary.malformed += 1;
                write!(
                    line,
                    ",\"error\":\"malformed payload\",\"len\":{},\"hex\":\"{}\"",
                    payload.len(),
                    Hex(payload)
                )?;
            }
            Ok(Decoded::Log(l)) => {
                kv(line, "target", l.target)?;
                kv(line, "message", l.message)?;
                line.extend_from_slice(b",\"fields\":");
                self.json_fields(&l.fields, line)?;
            }
            Ok(Decoded::Frame(bytes)) => {
                write!(line, ",\"len\":{},\"hex\":\"{}\"", bytes.len(), Hex(bytes))?;
                match self.decode_frame(head, bytes) {
                    Some(Ok(text)) => kv(line, "message", &text)?,
                    Some(Err(e)) => kv(line, "undecodable", &e)?,
                    None => {}
                }
            }
            Ok(Decoded::AuthFailure(e)) => {
                kv(line, "user", e.user)?;
                kv(line, "host", e.host)?;
                json_peer(line, e.peer)?;
                kv(line, "mechanism", e.mechanism)?;
                kv(line, "reason", e.reason)?;
            }
            Ok(Decoded::AuthSuccess(e)) => {
                kv(line, "user", e.user)?;
                kv(line, "host", e.host)?;
                json_peer(line, e.peer)?;
                kv(line, "mechanism", e.mechanism)?;
            }
            Ok(Decoded::Logout(e)) => {
                kv(line, "user", e.user)?;
                kv(line, "host", e.host)?;
                json_peer(line, e.peer)?;
            }
            Ok(Decoded::SessionForbidden(e)) => {
                kv(line, "user", e.user)?;
                kv(line, "host", e.host)?;
                kv(line, "resource", e.resource)?;
            }
            Ok(Decoded::Connect(e)) => {
                kv(line, "protocol", e.protocol)?;
                json_peer(line, e.peer)?;
            }
            Ok(Decoded::Custom(c)) => {
                kv(line, "name", c.name)?;
                line.extend_from_slice(b",\"attributes\":");
                self.json_fields(&c.attributes, line)?;
            }
            Ok(Decoded::Unknown { kind, len }) => {
                write!(line, ",\"kind_code\":{},\"len\":{len}", kind.0)?
            }
        }
        Ok(())
    }

    fn json_fields(&mut self, fields: &Fields<'_>, line: &mut Vec<u8>) -> io::Result<()> {
        line.push(b'{');
        let mut first = true;
        for f in fields.iter() {
            let Ok(f) = f else {
                self.summary.malformed += 1;
                if !first {
                    line.push(b',');
                }
                line.extend_from_slice(b"\"!malformed\":true");
                break;
            };
            if !first {
                line.push(b',');
            }
            first = false;
            json_str(line, f.name)?;
            line.push(b':');
            match f.value {
                Value::Bool(b) => write!(line, "{b}")?,
                Value::I64(n) => write!(line, "{n}")?,
                Value::U64(n) => write!(line, "{n}")?,
                Value::F64(x) if x.is_finite() => write!(line, "{x}")?,
                Value::F64(x) => write!(line, "\"{x}\"")?,
                Value::Str(s) => json_str(line, s)?,
                Value::Bytes(b) => write!(line, "\"0x{}\"", Hex(b))?,
            }
        }
        line.push(b'}');
        Ok(())
    }

    // ---- forensic ----

    fn forensic<W: Write + ?Sized>(&mut self, item: &Item<'_>, out: &mut W) -> io::Result<()> {
        match item {
            Item::DumpStart { offset, header } => {
                self.close_block(out)?;
                self.block = Some(Block {
                    offset: Some(*offset),
                    header: Some(header.clone()),
                    body: Vec::new(),
                    hidden: 0,
                    decoded: 0,
                    facts: Facts::default(),
                    close: None,
                });
                Ok(())
            }
            Item::Record { head, payload, .. } => {
                let mut block = self.block.take().unwrap_or_else(|| Block {
                    offset: None,
                    header: None,
                    body: Vec::new(),
                    hidden: 0,
                    decoded: 0,
                    facts: Facts::default(),
                    close: None,
                });
                block.decoded += 1;
                gather(&mut block.facts, block.header.as_ref(), head, payload);
                if self.keep(head) {
                    if block.body.len() < FORENSIC_BODY_MAX {
                        self.text_record(head, payload, false, &mut block.body)?;
                    } else {
                        block.hidden += 1;
                    }
                }
                self.block = Some(block);
                Ok(())
            }
            Item::DumpEnd { end, seen, .. } => {
                if end.records != *seen {
                    self.summary.count_mismatch += 1;
                }
                if let Some(b) = self.block.as_mut() {
                    b.close = Some(end_text(end, *seen));
                }
                self.close_block(out)
            }
            Item::Incomplete { why, seen, .. } => {
                if let Some(b) = self.block.as_mut() {
                    b.close = Some(format!("no: {why}; {seen} records decoded"));
                    self.close_block(out)
                } else {
                    diag_line(out, false, item, None)
                }
            }
            Item::Gap { .. } | Item::Damaged { .. } | Item::UnknownFrame { .. } => {
                match self.block.as_mut() {
                    Some(b) if b.body.len() < FORENSIC_BODY_MAX => {
                        diag_line(&mut b.body, false, item, None)
                    }
                    Some(b) => {
                        b.hidden += 1;
                        Ok(())
                    }
                    None => diag_line(out, false, item, None),
                }
            }
            Item::Unsupported { .. } | Item::Skipped { .. } => {
                self.close_block(out)?;
                diag_line(out, false, item, None)
            }
        }
    }

    fn close_block<W: Write + ?Sized>(&mut self, out: &mut W) -> io::Result<()> {
        let Some(b) = self.block.take() else {
            return Ok(());
        };
        let h = b.header.as_ref();
        let marker = h.map_or(Reason::Unknown { code: 0, arg: 0 }.marker(), |h| {
            h.reason.marker()
        });
        let clock = clock_of(h);
        let f = &b.facts;
        let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".to_owned());
        writeln!(out, "-----BEGIN {marker} FORENSICS-----")?;
        match f.peer {
            Some(p) => {
                let ip: std::net::IpAddr = p.addr.into();
                writeln!(out, "Client-Address: {ip}\nClient-Port: {}", p.port)?;
            }
            None => writeln!(out, "Client-Address: -")?,
        }
        writeln!(out, "Server-Address: {}", Escaped::new(&dash(&f.host), &[]))?;
        let start = f
            .session
            .and_then(|s| f.sessions.get(&s).map(|x| x.0))
            .or(f.first_time);
        match (h, start) {
            (Some(h), Some(t0)) => {
                let ticks = h.trigger_time.saturating_sub(t0);
                match ticks_to_nanos(ticks, h.clock.rate_hz) {
                    Some(n) => writeln!(
                        out,
                        "Elapsed: {}.{:03}s",
                        n / 1_000_000_000,
                        n % 1_000_000_000 / 1_000_000
                    )?,
                    None => writeln!(out, "Elapsed: {ticks} ticks")?,
                }
            }
            _ => writeln!(out, "Elapsed: -")?,
        }
        let protocol = f
            .session
            .and_then(|s| f.sessions.get(&s).and_then(|x| x.1.clone()))
            .or_else(|| f.protocol.clone());
        writeln!(out, "Protocol: {}", Escaped::new(&dash(&protocol), &[]))?;
        writeln!(out, "User: {}", Escaped::new(&dash(&f.user), &[]))?;
        match f.session.or(h.and_then(|h| h.scope.map(|s| s.0))) {
            Some(s) => writeln!(out, "Session: {s}")?,
            None => writeln!(out, "Session: -")?,
        }
        match h {
            Some(h) => {
                write!(out, "Reason: {}", h.reason)?;
                if !h.detail.is_empty() {
                    write!(out, " {}", Quoted(&h.detail))?;
                }
                writeln!(out)?;
                writeln!(
                    out,
                    "Trigger-Time: {}",
                    Time {
                        ticks: h.trigger_time,
                        clock
                    }
                )?;
                match h.trigger_seq {
                    Some(s) => writeln!(out, "Trigger-Record: {s}")?,
                    None => writeln!(out, "Trigger-Record: -")?,
                }
                writeln!(
                    out,
                    "Build: {} {}",
                    Escaped::new(&h.build_name, &[]),
                    Escaped::new(&h.build_version, &[])
                )?;
                if h.build_id.is_empty() {
                    writeln!(out, "Build-Id: -")?;
                } else {
                    writeln!(out, "Build-Id: {}", Hex(&h.build_id))?;
                }
                writeln!(out, "Dump-Index: {}", h.index)?;
                writeln!(
                    out,
                    "Records: {} decoded of seq {}..{}",
                    b.decoded, h.first_seq, h.next_seq
                )?;
                writeln!(out, "Lost-Before-Ring: {}", h.lost)?;
                writeln!(out, "Suppressed: {}", h.suppressed)?;
            }
            None => {
                writeln!(out, "Reason: unknown (header damaged)")?;
                writeln!(out, "Records: {} decoded", b.decoded)?;
            }
        }
        match b.offset {
            Some(o) => writeln!(out, "Dump-Offset: {o}")?,
            None => writeln!(out, "Dump-Offset: -")?,
        }
        writeln!(
            out,
            "Complete: {}",
            b.close.as_deref().unwrap_or("no: input ended")
        )?;
        writeln!(out)?;
        out.write_all(&b.body)?;
        if b.hidden > 0 {
            writeln!(
                out,
                "... {} more lines not shown (block limit {} MiB; use --format text)",
                b.hidden,
                FORENSIC_BODY_MAX >> 20
            )?;
        }
        writeln!(out, "-----END {marker} FORENSICS-----")
    }
}

fn end_text(end: &DumpEnd, seen: u64) -> String {
    let mut s = format!(
        "yes; {} records written, {seen} decoded, {} lost during read-out, {} outside scope",
        end.records, end.lost, end.out_of_scope
    );
    if end.records != seen {
        s.push_str(&format!(
            "; COUNT MISMATCH: {} written but {seen} decoded",
            end.records
        ));
    }
    s
}

/// Collects a forensic block's facts from one record.
fn gather(f: &mut Facts, h: Option<&Header>, head: &RecordHead, payload: &[u8]) {
    f.first_time.get_or_insert(head.time);
    let level = Level::from_u8(head.level).unwrap_or(Level::Trace);
    let decoded = event::decode(head.kind, level, payload).ok();
    if let Some(s) = head.session {
        if f.sessions.len() < FORENSIC_SESSIONS_MAX || f.sessions.contains_key(&s.0) {
            let e = f.sessions.entry(s.0).or_insert((head.time, None));
            if let Some(Decoded::Connect(c)) = decoded {
                e.1.get_or_insert_with(|| c.protocol.to_owned());
            }
        }
    }
    if let Some(Decoded::Connect(c)) = decoded {
        f.protocol.get_or_insert_with(|| c.protocol.to_owned());
    }
    let is_trigger = h.and_then(|h| h.trigger_seq) == Some(head.seq);
    // The trigger record wins; before it is seen, the latest security event stands in.
    if f.trigger_seen {
        return;
    }
    let (user, host, peer) = match decoded {
        Some(Decoded::AuthFailure(e)) => (Some(e.user), Some(e.host), e.peer),
        Some(Decoded::AuthSuccess(e)) => (Some(e.user), Some(e.host), e.peer),
        Some(Decoded::Logout(e)) => (Some(e.user), Some(e.host), e.peer),
        Some(Decoded::SessionForbidden(e)) => (Some(e.user), Some(e.host), None),
        Some(Decoded::Connect(e)) => (None, None, e.peer),
        _ => (None, None, None),
    };
    if is_trigger || user.is_some() || peer.is_some() {
        if is_trigger {
            f.trigger_seen = true;
            f.session = head.session.map(|s| s.0);
        }
        if user.is_some() || is_trigger {
            f.user = user.map(str::to_owned);
            f.host = host.map(str::to_owned);
        }
        if peer.is_some() || is_trigger {
            f.peer = peer.or(f.peer.filter(|_| !is_trigger));
        }
        if !is_trigger && f.session.is_none() {
            f.session = head.session.map(|s| s.0);
        }
    }
}

fn json_peer(line: &mut Vec<u8>, peer: Option<Peer>) -> io::Result<()> {
    match peer {
        Some(p) => write!(line, ",\"peer\":\"{}\"", PeerText(Some(p))),
        None => {
            line.extend_from_slice(b",\"peer\":null");
            Ok(())
        }
    }
}

fn json_header(line: &mut Vec<u8>, h: &Header) -> io::Result<()> {
    let (code, arg) = h.reason.to_wire();
    write!(
        line,
        ",\"reason\":\"{}\",\"marker\":\"{}\"",
        h.reason,
        h.reason.marker()
    )?;
    write!(
        line,
        ",\"reason_code\":{code},\"reason_arg\":{arg},\"detail\":"
    )?;
    json_str(line, &h.detail)?;
    write!(
        line,
        ",\"trigger_time\":\"{}\",\"trigger_ticks\":{}",
        Time {
            ticks: h.trigger_time,
            clock: Some(h.clock)
        },
        h.trigger_time
    )?;
    match h.trigger_seq {
        Some(s) => write!(line, ",\"trigger_seq\":{s}")?,
        None => line.extend_from_slice(b",\"trigger_seq\":null"),
    }
    let base = match h.clock.base {
        TimeBase::Boot => "boot".to_owned(),
        TimeBase::Unix => "unix".to_owned(),
        TimeBase::Unknown(c) => format!("unknown{c}"),
    };
    write!(
        line,
        ",\"clock_hz\":{},\"clock_base\":\"{base}\",\"first_seq\":{},\"next_seq\":{},\"lost\":{},\"suppressed\":{}",
        h.clock.rate_hz, h.first_seq, h.next_seq, h.lost, h.suppressed
    )?;
    match h.scope {
        Some(s) => write!(line, ",\"scope\":{}", s.0)?,
        None => line.extend_from_slice(b",\"scope\":null"),
    }
    write!(
        line,
        ",\"index\":{},\"capacity\":{},\"build\":{{\"name\":",
        h.index, h.capacity
    )?;
    json_str(line, &h.build_name)?;
    line.extend_from_slice(b",\"version\":");
    json_str(line, &h.build_version)?;
    write!(line, ",\"id\":\"{}\"}}", Hex(&h.build_id))
}

/// One text line for an item that is not a record (`==` dump boundaries, `!!` problems,
/// `--` notes).
fn diag_line<W: Write + ?Sized>(
    out: &mut W,
    color: bool,
    item: &Item<'_>,
    header: Option<&Header>,
) -> io::Result<()> {
    let alert = |out: &mut W| -> io::Result<()> {
        if color {
            out.write_all(ALERT.as_bytes())?;
        }
        out.write_all(b"!! ")
    };
    match item {
        Item::Record { .. } => return Ok(()),
        Item::DumpStart { offset, header } => {
            write!(out, "== dump at offset {offset}: {}", header.reason)?;
            if !header.detail.is_empty() {
                write!(out, " {}", Quoted(&header.detail))?;
            }
            write!(
                out,
                " at {}",
                Time {
                    ticks: header.trigger_time,
                    clock: Some(header.clock)
                }
            )?;
            if let Some(s) = header.trigger_seq {
                write!(out, " by record {s}")?;
            }
            write!(
                out,
                "; build {} {} id {}; records {}..{}; lost {}; suppressed {}",
                Quoted(&header.build_name),
                Quoted(&header.build_version),
                if header.build_id.is_empty() {
                    "-".to_owned()
                } else {
                    Hex(&header.build_id).to_string()
                },
                header.first_seq,
                header.next_seq,
                header.lost,
                header.suppressed
            )?;
            if let Some(s) = header.scope {
                write!(out, "; scope s={}", s.0)?;
            }
        }
        Item::Gap {
            from, to, scoped, ..
        } => {
            alert(out)?;
            let n = to.saturating_sub(*from);
            let what = if *scoped {
                "missing (lost, or of another session than the dump's scope)"
            } else {
                "lost"
            };
            let plural = if n == 1 { "record" } else { "records" };
            write!(out, "{n} {plural} {what} here (seq {from}..{to})")?;
        }
        Item::Damaged { offset, len, why } => {
            alert(out)?;
            write!(
                out,
                "damaged at offset {offset}, {len} bytes skipped: {why}"
            )?;
        }
        Item::UnknownFrame { offset, ty, len } => {
            write!(
                out,
                "-- frame of unknown type 0x{ty:02x} at offset {offset}, {len} bytes, skipped"
            )?;
        }
        Item::DumpEnd { offset, end, seen } => {
            if end.records != *seen {
                alert(out)?;
            }
            write!(
                out,
                "== end of dump at offset {offset}: {}",
                end_text(end, *seen)
            )?;
        }
        Item::Incomplete {
            dump_offset,
            offset,
            seen,
            why,
        } => {
            alert(out)?;
            write!(
                out,
                "dump at offset {dump_offset} incomplete at offset {offset}: {why}; {seen} records decoded"
            )?;
        }
        Item::Unsupported { offset, version } => {
            alert(out)?;
            write!(
                out,
                "dump at offset {offset} has format version {version}; this decoder knows version {} only, skipped",
                crate::decoder::VERSION
            )?;
        }
        Item::Skipped {
            offset,
            len,
            erased,
        } => {
            write!(
                out,
                "-- skipped {len} bytes at offset {offset} outside dumps"
            )?;
            if erased == len {
                write!(out, " (erased flash)")?;
            } else if *erased > 0 {
                write!(out, " ({erased} erased, {} other)", len - erased)?;
            }
        }
    }
    let _ = header;
    if color {
        out.write_all(RESET.as_bytes())?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings() {
        assert_eq!(
            JsonStr("a\"b\\c\n\u{1b}\u{85}\u{2028}é").to_string(),
            "\"a\\\"b\\\\c\\n\\u001b\\u0085\\u2028é\""
        );
    }
}
