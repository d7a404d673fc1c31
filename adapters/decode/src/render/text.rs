//! Text output: one line per record (`TIME LEVEL KIND SESSION fields`), one per diagnostic
//! (`==` dump boundaries, `!!` problems, `--` notes). The forensic blocks reuse its lines.

use std::io::{self, Write};

use flightrec_core::event::{self, Decoded, Fields, Peer, Value};
use flightrec_core::{DumpEnd, Level, RecordHead};

use super::escape::{push_bare, push_quoted, Quoted};
use super::push::{self, push_hex, push_i64, push_u64};
use super::{Hex, KindName, LevelName, Shared};
use crate::decoder::{Header, Item};
use crate::time::Time;

const RESET: &str = "\x1b[0m";
const ALERT: &str = "\x1b[1;31m";

fn level_color(level: u8) -> &'static str {
    match level {
        0 => "\x1b[2m",
        1 => "\x1b[34m",
        2 => "\x1b[32m",
        3 => "\x1b[33m",
        _ => "\x1b[1;31m",
    }
}

/// A known level's name in its five columns, as `{:<5}` shows it (a fixed-size copy).
fn level_column(l: Level) -> [u8; 5] {
    const COLUMNS: [[u8; 5]; 5] = [*b"TRACE", *b"DEBUG", *b"INFO ", *b"WARN ", *b"ERROR"];
    COLUMNS.get(l as usize).copied().unwrap_or(*b"?????")
}

/// The text renderer's state: a line buffer reused for each record.
#[derive(Default)]
pub(crate) struct Text {
    /// One write per line, formatting without dynamic dispatch.
    line: Vec<u8>,
}

impl Text {
    pub(crate) fn render<W: Write + ?Sized>(
        &mut self,
        sh: &mut Shared,
        item: &Item<'_>,
        out: &mut W,
    ) -> io::Result<()> {
        let color = sh.opts.color;
        match item {
            Item::Record { head, payload, .. } => {
                if sh.keep(head) {
                    let mut line = std::mem::take(&mut self.line);
                    line.clear();
                    let r = record(sh, head, payload, color, &mut line);
                    let r = r.and_then(|()| out.write_all(&line));
                    if line.capacity() <= 1 << 20 {
                        self.line = line; // (a huge record's buffer is dropped)
                    }
                    r?;
                }
                Ok(())
            }
            _ => diag_line(out, color, item),
        }
    }
}

/// Appends ` key="value"` pairs (no leading space for the first at the start of a body).
#[inline(always)] // the keys are literals: each copied as one piece
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
    out.extend_from_slice(b" peer=");
    push::push_peer(out, peer);
}

/// Appends one record's line.
pub(crate) fn record(
    sh: &mut Shared,
    head: &RecordHead,
    payload: &[u8],
    color: bool,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    // The line's fixed columns are pushed by hand: this is the hot path of `decode`.
    sh.push_time(out, head.time);
    out.push(b' ');
    if color {
        out.extend_from_slice(level_color(head.level).as_bytes());
    }
    match Level::from_u8(head.level) {
        Some(l) => out.extend_from_slice(&level_column(l)),
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
            sh.summary.malformed += 1;
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
            fields(sh, &l.fields, out)?;
        }
        Ok(Decoded::Frame(bytes)) => match sh.decode_frame(head, bytes) {
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
            None => {
                out.extend_from_slice(b"len=");
                push_u64(out, bytes.len() as u64);
                out.extend_from_slice(b" hex=");
                push_hex(out, bytes);
            }
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
            fields(sh, &c.attributes, out)?;
        }
        Ok(Decoded::Unknown { kind, len }) => write!(out, "unknown kind {}, {len} bytes", kind.0)?,
    }
    out.write_all(b"\n")
}

fn fields(sh: &mut Shared, fields: &Fields<'_>, out: &mut Vec<u8>) -> io::Result<()> {
    for f in fields.iter() {
        match f {
            Ok(f) => {
                out.push(b' ');
                push_bare(out, f.name);
                out.push(b'=');
                match f.value {
                    Value::Str(s) => push_quoted(out, s),
                    Value::Bytes(b) => {
                        out.extend_from_slice(b"0x");
                        push_hex(out, b);
                    }
                    Value::U64(n) => push_u64(out, n),
                    Value::I64(n) => push_i64(out, n),
                    v => write!(out, "{v}")?,
                }
            }
            Err(_) => {
                sh.summary.malformed += 1;
                out.write_all(b" !malformed-fields")?;
                break;
            }
        }
    }
    Ok(())
}

/// What an end frame says, against what was decoded.
pub(crate) fn end_text(end: &DumpEnd, seen: u64) -> String {
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

/// The one-line summary of a dump header (`== dump at offset ...`).
fn header_line<W: Write + ?Sized>(out: &mut W, offset: u64, header: &Header) -> io::Result<()> {
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
    Ok(())
}

/// One text line for an item that is not a record (`==` dump boundaries, `!!` problems,
/// `--` notes).
pub(crate) fn diag_line<W: Write + ?Sized>(
    out: &mut W,
    color: bool,
    item: &Item<'_>,
) -> io::Result<()> {
    let alert = |out: &mut W| -> io::Result<()> {
        if color {
            out.write_all(ALERT.as_bytes())?;
        }
        out.write_all(b"!! ")
    };
    match item {
        Item::Record { .. } => return Ok(()),
        Item::DumpStart { offset, header } => header_line(out, *offset, header)?,
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
        Item::UnknownDump { offset } => {
            alert(out)?;
            write!(
                out,
                "unknown dump at offset {offset}: its magic and header are lost; the records below belong to a dump that cannot be named"
            )?;
        }
        Item::Wrap {
            offset,
            newest,
            oldest,
        } => write!(
            out,
            "-- ring wraps at offset {offset}: the newer records end with seq {newest}, older ones follow from seq {oldest}"
        )?,
        Item::RingHead { offset, len } => write!(
            out,
            "-- {len} bytes at offset {offset} skipped: the ring's write head (a frame being written when the writer stopped, or the oldest one partly overwritten)"
        )?,
        Item::RegionEnd {
            dump_offset,
            offset,
            seen,
        } => write!(
            out,
            "== ring region at offset {dump_offset} ends at offset {offset}: {seen} records decoded (a ring region has no end frame)"
        )?,
        Item::Skipped {
            offset,
            len,
            erased,
        } => {
            if erased < len {
                alert(out)?;
            } else {
                out.write_all(b"-- ")?;
            }
            write!(out, "skipped {len} bytes at offset {offset} outside dumps")?;
            if erased == len {
                write!(out, " (erased flash)")?;
            } else if *erased > 0 {
                write!(out, " ({erased} erased, {} other)", len - erased)?;
            }
        }
    }
    if color {
        out.write_all(RESET.as_bytes())?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_columns_as_fmt() {
        for l in Level::ALL {
            assert_eq!(
                level_column(l).as_slice(),
                format!("{:<5}", l.as_str()).as_bytes()
            );
        }
    }
}
