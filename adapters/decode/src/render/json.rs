//! NDJSON output: one object per record and per diagnostic, told apart by `"type"`. The
//! header members are written by [`header`], which `flightrec info --format json` uses too.

use std::io::{self, Write};

use flightrec_core::event::{self, Decoded, Fields, Peer, Value};
use flightrec_core::{Level, RecordHead, TimeBase};

use super::escape::{json_str, push_json_str};
use super::push::{self, push_hex, push_i64, push_u64};
use super::{Hex, KindName, LevelName, Shared};
use crate::decoder::{Header, Item};
use crate::time::Time;

/// The JSON renderer's state: a line buffer reused for each object.
#[derive(Default)]
pub(crate) struct Json {
    /// One write per line.
    line: Vec<u8>,
}

impl Json {
    pub(crate) fn render<W: Write + ?Sized>(
        &mut self,
        sh: &mut Shared,
        item: &Item<'_>,
        out: &mut W,
    ) -> io::Result<()> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        let r = object(sh, item, &mut line).and_then(|()| out.write_all(&line));
        if line.capacity() <= 1 << 20 {
            self.line = line; // (a huge record's buffer is dropped)
        }
        r
    }
}

/// Appends the object of one item, and its line end.
fn object(sh: &mut Shared, item: &Item<'_>, line: &mut Vec<u8>) -> io::Result<()> {
    match item {
        Item::Record {
            offset,
            head,
            payload,
        } => {
            if !sh.keep(head) {
                return Ok(());
            }
            open(sh, line, "record", *offset)?;
            record(sh, head, payload, line)?;
        }
        Item::DumpStart { offset, header: h } => {
            open(sh, line, "dump", *offset)?;
            header(line, h)?;
        }
        Item::Gap {
            offset,
            from,
            to,
            scoped,
        } => {
            open(sh, line, "gap", *offset)?;
            write!(
                line,
                ",\"from\":{from},\"to\":{to},\"lost\":{},\"scoped\":{scoped}",
                to.saturating_sub(*from)
            )?;
        }
        Item::Damaged { offset, len, why } => {
            open(sh, line, "damaged", *offset)?;
            write!(line, ",\"len\":{len},\"why\":")?;
            json_str(line, &why.to_string())?;
        }
        Item::UnknownFrame { offset, ty, len } => {
            open(sh, line, "unknown_frame", *offset)?;
            write!(line, ",\"frame_type\":{ty},\"len\":{len}")?;
        }
        Item::DumpEnd { offset, end, seen } => {
            open(sh, line, "end", *offset)?;
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
            open(sh, line, "incomplete", *offset)?;
            write!(
                line,
                ",\"dump_offset\":{dump_offset},\"decoded\":{seen},\"why\":"
            )?;
            json_str(line, &why.to_string())?;
        }
        Item::Unsupported { offset, version } => {
            open(sh, line, "unsupported", *offset)?;
            write!(line, ",\"version\":{version}")?;
        }
        Item::UnknownDump { offset } => open(sh, line, "unknown_dump", *offset)?,
        Item::Wrap {
            offset,
            newest,
            oldest,
        } => {
            open(sh, line, "wrap", *offset)?;
            write!(line, ",\"newest\":{newest},\"oldest\":{oldest}")?;
        }
        Item::RingHead { offset, len } => {
            open(sh, line, "ring_head", *offset)?;
            write!(line, ",\"len\":{len}")?;
        }
        Item::RegionEnd {
            dump_offset,
            offset,
            seen,
        } => {
            open(sh, line, "region_end", *offset)?;
            write!(line, ",\"dump_offset\":{dump_offset},\"decoded\":{seen}")?;
        }
        Item::Skipped {
            offset,
            len,
            erased,
        } => {
            open(sh, line, "skipped", *offset)?;
            write!(line, ",\"len\":{len},\"erased\":{erased}")?;
        }
    }
    line.extend_from_slice(b"}\n");
    Ok(())
}

/// Appends a string member, `,"KEY":"VALUE"` (the key a literal, copied as one piece).
macro_rules! kv {
    ($line:expr, $key:literal, $value:expr) => {{
        $line.extend_from_slice(concat!(",\"", $key, "\":").as_bytes());
        push_json_str($line, $value);
    }};
}

/// Opens an object: `{"type":TY,"source":...,"offset":N`.
#[inline(always)] // the type is a literal: copied as one piece
fn open(sh: &Shared, line: &mut Vec<u8>, ty: &str, offset: u64) -> io::Result<()> {
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(ty.as_bytes());
    line.push(b'"');
    if let Some(s) = &sh.source {
        line.extend_from_slice(b",\"source\":");
        push_json_str(line, s);
    }
    line.extend_from_slice(b",\"offset\":");
    push_u64(line, offset);
    Ok(())
}

fn record(
    sh: &mut Shared,
    head: &RecordHead,
    payload: &[u8],
    line: &mut Vec<u8>,
) -> io::Result<()> {
    // The fixed members are pushed by hand: this is the hot path of `decode`.
    line.extend_from_slice(b",\"seq\":");
    push_u64(line, head.seq);
    line.extend_from_slice(b",\"time\":\"");
    sh.push_time(line, head.time);
    line.extend_from_slice(b"\",\"ticks\":");
    push_u64(line, head.time);
    line.extend_from_slice(b",\"level\":\"");
    match Level::from_u8(head.level) {
        Some(l) => line.extend_from_slice(l.as_str().as_bytes()),
        None => write!(line, "{}", LevelName(head.level))?,
    }
    line.extend_from_slice(b"\",\"kind\":\"");
    match head.kind.name() {
        Some(n) => line.extend_from_slice(n.as_bytes()),
        None => write!(line, "{}", KindName(head.kind))?,
    }
    line.push(b'"');
    match head.session {
        Some(s) => {
            line.extend_from_slice(b",\"session\":");
            push_u64(line, u64::from(s.0));
        }
        None => line.extend_from_slice(b",\"session\":null"),
    }
    let level = Level::from_u8(head.level).unwrap_or(Level::Trace);
    match event::decode(head.kind, level, payload) {
        Err(_) => {
            sh.summary.malformed += 1;
            write!(
                line,
                ",\"error\":\"malformed payload\",\"len\":{},\"hex\":\"{}\"",
                payload.len(),
                Hex(payload)
            )?;
        }
        Ok(Decoded::Log(l)) => {
            kv!(line, "target", l.target);
            kv!(line, "message", l.message);
            line.extend_from_slice(b",\"fields\":");
            fields(sh, &l.fields, line)?;
        }
        Ok(Decoded::Frame(bytes)) => {
            write!(line, ",\"len\":{},\"hex\":\"{}\"", bytes.len(), Hex(bytes))?;
            match sh.decode_frame(head, bytes) {
                Some(Ok(text)) => kv!(line, "message", &text),
                Some(Err(e)) => kv!(line, "undecodable", &e),
                None => {}
            }
        }
        Ok(Decoded::AuthFailure(e)) => {
            kv!(line, "user", e.user);
            kv!(line, "host", e.host);
            peer(line, e.peer)?;
            kv!(line, "mechanism", e.mechanism);
            kv!(line, "reason", e.reason);
        }
        Ok(Decoded::AuthSuccess(e)) => {
            kv!(line, "user", e.user);
            kv!(line, "host", e.host);
            peer(line, e.peer)?;
            kv!(line, "mechanism", e.mechanism);
        }
        Ok(Decoded::Logout(e)) => {
            kv!(line, "user", e.user);
            kv!(line, "host", e.host);
            peer(line, e.peer)?;
        }
        Ok(Decoded::SessionForbidden(e)) => {
            kv!(line, "user", e.user);
            kv!(line, "host", e.host);
            kv!(line, "resource", e.resource);
        }
        Ok(Decoded::Connect(e)) => {
            kv!(line, "protocol", e.protocol);
            peer(line, e.peer)?;
        }
        Ok(Decoded::Custom(c)) => {
            kv!(line, "name", c.name);
            line.extend_from_slice(b",\"attributes\":");
            fields(sh, &c.attributes, line)?;
        }
        Ok(Decoded::Unknown { kind, len }) => {
            write!(line, ",\"kind_code\":{},\"len\":{len}", kind.0)?
        }
    }
    Ok(())
}

fn fields(sh: &mut Shared, fields: &Fields<'_>, line: &mut Vec<u8>) -> io::Result<()> {
    line.push(b'{');
    let mut first = true;
    for f in fields.iter() {
        let Ok(f) = f else {
            sh.summary.malformed += 1;
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
        push_json_str(line, f.name);
        line.push(b':');
        match f.value {
            Value::Bool(b) => line.extend_from_slice(if b { b"true" } else { b"false" }),
            Value::I64(n) => push_i64(line, n),
            Value::U64(n) => push_u64(line, n),
            Value::F64(x) if x.is_finite() => write!(line, "{x}")?,
            Value::F64(x) => write!(line, "\"{x}\"")?,
            Value::Str(s) => push_json_str(line, s),
            Value::Bytes(b) => {
                line.extend_from_slice(b"\"0x");
                push_hex(line, b);
                line.push(b'"');
            }
        }
    }
    line.push(b'}');
    Ok(())
}

fn peer(line: &mut Vec<u8>, peer: Option<Peer>) -> io::Result<()> {
    match peer {
        Some(p) => {
            line.extend_from_slice(b",\"peer\":\"");
            push::push_peer(line, Some(p));
            line.push(b'"');
        }
        None => line.extend_from_slice(b",\"peer\":null"),
    }
    Ok(())
}

/// Appends a dump header's members (`,"reason":...,"build":{...}`) to an open object.
pub fn header(line: &mut Vec<u8>, h: &Header) -> io::Result<()> {
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
