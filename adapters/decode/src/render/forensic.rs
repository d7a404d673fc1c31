//! Forensic output: one ProFTPD-style block per dump (`-----BEGIN <TRIGGER> FORENSICS-----`),
//! its header fields gathered from the dump's records, then the records as text lines.
//! A block is held until its dump ends, so it is bounded ([`FORENSIC_BODY_MAX`]).

use std::collections::HashMap;
use std::io::{self, Write};

use flightrec_core::event::{self, Decoded, Peer};
use flightrec_core::{Level, Reason, RecordHead};

use super::escape::{plain, Quoted};
use super::text::{self, diag_line, end_text};
use super::{Hex, Shared};
use crate::decoder::{Header, Item};
use crate::time::{ticks_to_nanos, Time};

/// Most bytes of a forensic block's records held before the block is written.
pub const FORENSIC_BODY_MAX: usize = 16 << 20;
/// Most sessions whose facts a forensic block remembers.
const FORENSIC_SESSIONS_MAX: usize = 1024;

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
#[derive(Default)]
struct Block {
    offset: Option<u64>,
    header: Option<Header>,
    body: Vec<u8>,
    hidden: u64,
    decoded: u64,
    facts: Facts,
    close: Option<String>,
}

/// The forensic renderer's state: the block of the dump being read.
#[derive(Default)]
pub(crate) struct Forensic {
    block: Option<Block>,
}

impl Forensic {
    pub(crate) fn render<W: Write + ?Sized>(
        &mut self,
        sh: &mut Shared,
        item: &Item<'_>,
        out: &mut W,
    ) -> io::Result<()> {
        match item {
            Item::DumpStart { offset, header } => {
                self.close(out)?;
                self.block = Some(Block {
                    offset: Some(*offset),
                    header: Some(header.clone()),
                    ..Block::default()
                });
                Ok(())
            }
            Item::Record { head, payload, .. } => {
                let mut block = self.block.take().unwrap_or_default();
                block.decoded += 1;
                gather(&mut block.facts, block.header.as_ref(), head, payload);
                if sh.keep(head) {
                    if block.body.len() < FORENSIC_BODY_MAX {
                        text::record(sh, head, payload, false, &mut block.body)?;
                    } else {
                        block.hidden += 1;
                    }
                }
                self.block = Some(block);
                Ok(())
            }
            Item::DumpEnd { end, seen, .. } => {
                if let Some(b) = self.block.as_mut() {
                    b.close = Some(end_text(end, *seen));
                }
                self.close(out)
            }
            Item::UnknownDump { offset } => {
                self.close(out)?;
                self.block = Some(Block {
                    offset: Some(*offset),
                    ..Block::default()
                });
                Ok(())
            }
            Item::RegionEnd { seen, .. } => {
                if let Some(b) = self.block.as_mut() {
                    b.close = Some(format!(
                        "ring region (no end frame by design); {seen} records decoded"
                    ));
                }
                self.close(out)
            }
            Item::Incomplete { why, seen, .. } => {
                if let Some(b) = self.block.as_mut() {
                    b.close = Some(format!("no: {why}; {seen} records decoded"));
                    self.close(out)
                } else {
                    diag_line(out, false, item)
                }
            }
            Item::Gap { .. }
            | Item::Damaged { .. }
            | Item::UnknownFrame { .. }
            | Item::Wrap { .. }
            | Item::RingHead { .. } => match self.block.as_mut() {
                Some(b) if b.body.len() < FORENSIC_BODY_MAX => diag_line(&mut b.body, false, item),
                Some(b) => {
                    b.hidden += 1;
                    Ok(())
                }
                None => diag_line(out, false, item),
            },
            Item::Unsupported { .. } | Item::Skipped { .. } => {
                self.close(out)?;
                diag_line(out, false, item)
            }
        }
    }

    /// Writes the open block, if any.
    pub(crate) fn close<W: Write + ?Sized>(&mut self, out: &mut W) -> io::Result<()> {
        let Some(b) = self.block.take() else {
            return Ok(());
        };
        let h = b.header.as_ref();
        let marker = h.map_or(Reason::Unknown { code: 0, arg: 0 }.marker(), |h| {
            h.reason.marker()
        });
        let clock = h.map(|h| h.clock);
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
        writeln!(out, "Server-Address: {}", plain(&dash(&f.host)))?;
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
        writeln!(out, "Protocol: {}", plain(&dash(&protocol)))?;
        writeln!(out, "User: {}", plain(&dash(&f.user)))?;
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
                    plain(&h.build_name),
                    plain(&h.build_version)
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
                writeln!(out, "Reason: unknown (magic or header damaged)")?;
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
            keep(&mut f.user, user);
            keep(&mut f.host, host);
        }
        if peer.is_some() || is_trigger {
            f.peer = peer.or(f.peer.filter(|_| !is_trigger));
        }
        if !is_trigger && f.session.is_none() {
            f.session = head.session.map(|s| s.0);
        }
    }
}

/// Sets `slot` to `value`, allocating only when it changes (the same user fails again and
/// again).
fn keep(slot: &mut Option<String>, value: Option<&str>) {
    if slot.as_deref() != value {
        *slot = value.map(str::to_owned);
    }
}
