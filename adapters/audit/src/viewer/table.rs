//! The `--output table` layout.

use std::fmt::Write as _;
use std::io::{self, Write};

use chrono::DateTime;
use flightrec_core::text::Escaped;

use super::collect::Entry;
use crate::ejabberd::EJABBERD_DELIMITERS;
use crate::AuditEvent;

/// The table's cells for one record; peer-controlled text is escaped.
pub(super) fn cells(e: &Entry) -> [String; 5] {
    let date = DateTime::from_timestamp(e.unix_secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| e.unix_secs.to_string());
    let event = &e.record.event;
    let kind = event.kind().name().unwrap_or("?").to_owned();
    let name = |s: &str| Escaped::new(s, EJABBERD_DELIMITERS).to_string();
    let account = match event {
        AuditEvent::SessionForbidden {
            user,
            host,
            resource,
        } => format!("{}@{}/{}", name(user), name(host), name(resource)),
        _ => match event.account() {
            Some((user, host)) => format!("{}@{}", name(user), name(host)),
            None => "-".to_owned(),
        },
    };
    let peer = event
        .peer()
        .map(|p| std::net::SocketAddr::new(p.addr.into(), p.port).to_string())
        .unwrap_or_else(|| "-".to_owned());
    let mut details = String::new();
    match event {
        AuditEvent::AuthFailure {
            mechanism, reason, ..
        } => {
            let _ = write!(details, "{}", Escaped::new(mechanism, &[' ']));
            if !reason.is_empty() {
                // Spaces inside stay readable; at the ends they would not be seen.
                let reason = Escaped::new(reason, &[]).to_string();
                let _ = write!(details, ": {}", visible_edges(&reason));
            }
        }
        AuditEvent::AuthSuccess { mechanism, .. } => {
            let _ = write!(details, "{}", Escaped::new(mechanism, &[' ']));
        }
        AuditEvent::Connect { protocol, .. } => {
            let _ = write!(details, "{}", Escaped::new(protocol, &[' ']));
        }
        AuditEvent::Logout { .. } | AuditEvent::SessionForbidden { .. } => {}
    }
    [date, kind, account, peer, details]
}

/// `escaped` (an [`Escaped`] text) with its leading and trailing spaces escaped too, so
/// that none is lost to the eye or to the table's layout; it still unescapes to the
/// original.
fn visible_edges(escaped: &str) -> String {
    let inner = escaped.trim_matches(' ');
    let start = escaped.len() - escaped.trim_start_matches(' ').len();
    let end = escaped.len() - escaped.trim_end_matches(' ').len();
    if inner.is_empty() {
        return "\\x20".repeat(escaped.len());
    }
    format!("{}{inner}{}", "\\x20".repeat(start), "\\x20".repeat(end))
}

/// The header row.
pub(super) const HEADERS: [&str; 5] = ["Date (UTC)", "Event", "Account", "Peer", "Details"];

/// Widest cell of a column counted (in characters).
const MAX_WIDTH: usize = 48;

/// The columns' widths: the widest cell of each (headers included), at most
/// [`MAX_WIDTH`].
pub(super) struct Widths([usize; 5]);

impl Default for Widths {
    fn default() -> Self {
        Widths(HEADERS.map(|h| h.chars().count()))
    }
}

impl Widths {
    /// Widens the columns for `row`.
    pub(super) fn measure(&mut self, row: &[&str; 5]) {
        for (w, cell) in self.0.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count().min(MAX_WIDTH));
        }
    }

    /// Writes `cells` padded with spaces to the widths, the last one not padded;
    /// nothing of a cell is trimmed.
    pub(super) fn write_row(&self, out: &mut dyn Write, cells: &[&str; 5]) -> io::Result<()> {
        let mut line = String::new();
        // Trailing empty cells are left out rather than padded.
        let used = cells
            .iter()
            .rposition(|c| !c.is_empty())
            .map_or(0, |i| i + 1);
        for (i, (cell, w)) in cells.iter().zip(self.0).take(used).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < used {
                let pad = w.saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{line}")
    }
}

/// Writes the header and a row per entry.
pub(super) fn write_table(out: &mut dyn Write, entries: &[Entry]) -> io::Result<()> {
    let rows: Vec<[String; 5]> = entries.iter().map(cells).collect();
    let mut widths = Widths::default();
    for row in &rows {
        widths.measure(&row.each_ref().map(String::as_str));
    }
    widths.write_row(out, &HEADERS)?;
    for row in &rows {
        widths.write_row(out, &row.each_ref().map(String::as_str))?;
    }
    Ok(())
}
