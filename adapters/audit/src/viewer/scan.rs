//! Reading a log's lines in large blocks, and the prefilter that lets a search for one
//! account parse only the lines that can be that account's.
//!
//! Lines are cut out of a fixed-size buffer (no copy per line), so reading a file holds
//! the same memory whatever its size. With a [`Prefilter`], a line holding none of its
//! needles is a *non-candidate*: it is checked for UTF-8 (a whole block at a time) and
//! length only, not parsed.

use std::io::{self, Read};

use flightrec_core::text::Escaped;
use memchr::memmem::Finder;

use crate::ejabberd::EJABBERD_DELIMITERS;

/// Bytes read at a time; more than [`super::MAX_LINE`] so that a line of the longest
/// allowed length fits with the rest of its block.
const BLOCK: usize = 256 * 1024;

/// The spellings a user name can have in a line that parses as that user's.
///
/// The parsers accept a field only if it is exactly what [`Escaped`] writes for its
/// value (they escape the value again and compare), and [`Escaped`] replaces each
/// character on its own, so a line parsed as user `u`'s holds `Escaped(u)` verbatim, with
/// the escape set of its style, followed by what follows the user in that style: in an
/// ejabberd-style line `E(u)@` (the account is `E(user)@E(host)`, escaping space, `@`
/// and `/`), in an Open-Xchange-style one `E(u)` and the delimiter (the login is never
/// the last attribute; escaping the delimiter and `=`). A collector's RFC 5424 line
/// holds its MSG, the audit line, verbatim. So a line holding neither spelling cannot be
/// `u`'s.
pub(super) struct Prefilter {
    needles: Vec<Finder<'static>>,
}

impl Prefilter {
    /// The prefilter for user `user` with Open-Xchange delimiter `delimiter`; `None` when
    /// every line is a candidate (an empty name is in every line).
    pub(super) fn for_user(user: &str, delimiter: char) -> Option<Prefilter> {
        if user.is_empty() {
            return None;
        }
        let ejabberd = format!("{}@", Escaped::new(user, EJABBERD_DELIMITERS));
        let ox = format!("{}{delimiter}", Escaped::new(user, &[delimiter, '=']));
        let mut spellings = vec![ejabberd];
        if !spellings.contains(&ox) {
            spellings.push(ox);
        }
        Some(Prefilter {
            needles: spellings
                .iter()
                .map(|s| Finder::new(s.as_bytes()).into_owned())
                .collect(),
        })
    }

    /// Whether `line` holds one of the spellings.
    #[cfg(test)]
    pub(super) fn is_candidate(&self, line: &[u8]) -> bool {
        self.needles.iter().any(|n| n.find(line).is_some())
    }
}

/// One line handed to the caller of [`for_each_line`].
pub(super) enum Line<'a> {
    /// A line (without its `\n`; a `\r` before it is kept) to parse.
    Candidate(&'a [u8]),
    /// A line the prefilter ruled out that is not UTF-8.
    NotUtf8,
    /// A line longer than [`super::MAX_LINE`] (never kept in memory).
    TooLong,
}

/// Reads `reader` to its end, calling `on_line` with each line's number (from 1) and
/// the line. Returns the number of lines read, or the error that stopped reading with
/// the number of lines read before it (a line cut by the error is not handed over).
pub(super) fn for_each_line(
    reader: &mut dyn Read,
    buf: &mut Vec<u8>,
    prefilter: Option<&Prefilter>,
    mut on_line: impl FnMut(u64, Line<'_>),
) -> Result<u64, (io::Error, u64)> {
    buf.resize(BLOCK, 0);
    let mut line_no = 0u64;
    // Bytes of a line not yet ended kept at the start of `buf`.
    let mut kept = 0usize;
    // Inside a line already known to be too long: its bytes are dropped.
    let mut skipping = false;
    loop {
        let read = match reader.read(buf.get_mut(kept..).unwrap_or_default()) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((e, line_no)),
        };
        let filled = kept + read;
        let data = buf.get(..filled).unwrap_or_default();
        if read == 0 {
            // The end: a last line without newline still counts.
            if skipping {
                line_no += 1;
                on_line(line_no, Line::TooLong);
            } else if filled > 0 {
                last_line(data, &mut line_no, prefilter, &mut on_line);
            }
            return Ok(line_no);
        }
        let Some(last_newline) = memchr::memrchr(b'\n', data) else {
            if skipping || filled > super::MAX_LINE {
                skipping = true;
                kept = 0;
            } else {
                kept = filled;
            }
            continue;
        };
        let (whole, rest) = data.split_at(last_newline + 1);
        let whole = if skipping {
            // The end of the long line is the first newline.
            skipping = false;
            line_no += 1;
            on_line(line_no, Line::TooLong);
            let first = memchr::memchr(b'\n', whole).unwrap_or(0);
            whole.get(first + 1..).unwrap_or_default()
        } else {
            whole
        };
        lines_of_block(whole, &mut line_no, prefilter, &mut on_line);
        let rest_len = rest.len();
        if rest_len > super::MAX_LINE {
            skipping = true;
            kept = 0;
        } else {
            buf.copy_within(last_newline + 1..filled, 0);
            kept = rest_len;
        }
    }
}

/// The last line of a file, without newline.
fn last_line(
    line: &[u8],
    line_no: &mut u64,
    prefilter: Option<&Prefilter>,
    on_line: &mut impl FnMut(u64, Line<'_>),
) {
    let mut with_newline = Vec::with_capacity(line.len() + 1);
    with_newline.extend_from_slice(line);
    with_newline.push(b'\n');
    lines_of_block(&with_newline, line_no, prefilter, on_line);
}

/// Hands the lines of `block` (whole lines, ending with `\n`) to `on_line`; `line_no`
/// counts the lines handed over so far.
fn lines_of_block(
    block: &[u8],
    line_no: &mut u64,
    prefilter: Option<&Prefilter>,
    on_line: &mut impl FnMut(u64, Line<'_>),
) {
    if let Some(prefilter) = prefilter {
        if std::str::from_utf8(block).is_ok() && !has_long_line(block) {
            return candidates_of_block(block, line_no, prefilter, on_line);
        }
    }
    // Per needle, the first place at or after the current line where it occurs.
    let mut next: Vec<Option<usize>> = prefilter
        .map(|p| p.needles.iter().map(|n| n.find(block)).collect())
        .unwrap_or_default();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', block) {
        let line = block.get(start..end).unwrap_or_default();
        *line_no += 1;
        let what = if line.len() > super::MAX_LINE {
            Line::TooLong
        } else if let Some(prefilter) = prefilter {
            let mut candidate = false;
            for (hit, needle) in next.iter_mut().zip(&prefilter.needles) {
                if hit.is_some_and(|h| h < start) {
                    *hit = block
                        .get(start..)
                        .and_then(|rest| needle.find(rest))
                        .map(|h| h + start);
                }
                candidate |= hit.is_some_and(|h| h < end);
            }
            if candidate {
                Line::Candidate(line)
            } else if std::str::from_utf8(line).is_ok() {
                start = end + 1;
                continue;
            } else {
                Line::NotUtf8
            }
        } else {
            Line::Candidate(line)
        };
        on_line(*line_no, what);
        start = end + 1;
    }
}

/// Whether a line of `block` (whole lines) is longer than [`super::MAX_LINE`]: looks for
/// the last newline within the longest line's reach of each line start it jumps to.
fn has_long_line(block: &[u8]) -> bool {
    let mut start = 0;
    while start < block.len() {
        let reach = block.get(start..).unwrap_or_default();
        let window = reach.get(..super::MAX_LINE + 1).unwrap_or(reach);
        match memchr::memrchr(b'\n', window) {
            Some(i) => start += i + 1,
            None => return true,
        }
    }
    false
}

/// The candidates of `block` (whole lines, UTF-8, none too long), found by searching the
/// block for the needles and counting the newlines skipped.
fn candidates_of_block(
    block: &[u8],
    line_no: &mut u64,
    prefilter: &Prefilter,
    on_line: &mut impl FnMut(u64, Line<'_>),
) {
    // Where the lines not yet numbered start.
    let mut counted = 0;
    // Per needle, its first place at or after `counted` (`None`: not in the rest).
    let mut next: Vec<Option<usize>> = prefilter.needles.iter().map(|n| n.find(block)).collect();
    loop {
        let rest = block.get(counted..).unwrap_or_default();
        for (hit, needle) in next.iter_mut().zip(&prefilter.needles) {
            if hit.is_some_and(|h| h < counted) {
                *hit = needle.find(rest).map(|h| h + counted);
            }
        }
        let Some(hit) = next.iter().flatten().min().copied() else {
            *line_no += memchr::memchr_iter(b'\n', rest).count() as u64;
            return;
        };
        let before = block.get(..hit).unwrap_or_default();
        let start = memchr::memrchr(b'\n', before)
            .map_or(0, |i| i + 1)
            .max(counted);
        let end = memchr::memchr(b'\n', block.get(hit..).unwrap_or_default())
            .map_or(block.len(), |i| hit + i);
        *line_no += memchr::memchr_iter(b'\n', block.get(counted..start).unwrap_or_default())
            .count() as u64
            + 1;
        on_line(
            *line_no,
            Line::Candidate(block.get(start..end).unwrap_or_default()),
        );
        counted = end + 1;
    }
}
