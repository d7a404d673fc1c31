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

/// Bytes read at a time; more than twice [`super::MAX_LINE`] so that a line of the longest
/// allowed length fits with the rest of its block.
const BLOCK: usize = 256 * 1024;
/// The buffer's first size: it doubles up to [`BLOCK`] while reads fill it, so a small file
/// (most rotated logs of a quiet host) costs no whole block to allocate and clear.
const FIRST_BLOCK: usize = 16 * 1024;

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
    on_line: impl FnMut(u64, Line<'_>),
) -> Result<u64, (io::Error, u64)> {
    let limits = Limits {
        block: BLOCK,
        first: FIRST_BLOCK,
        max_line: super::MAX_LINE,
    };
    for_each_line_in(limits, reader, buf, prefilter, on_line)
}

/// The block size and the longest line (tests make them small).
#[derive(Clone, Copy)]
struct Limits {
    /// More than `max_line + 1`.
    block: usize,
    /// The buffer's first size (at least 1).
    first: usize,
    max_line: usize,
}

/// [`for_each_line`] with `limits`.
fn for_each_line_in(
    limits: Limits,
    reader: &mut dyn Read,
    buf: &mut Vec<u8>,
    prefilter: Option<&Prefilter>,
    mut on_line: impl FnMut(u64, Line<'_>),
) -> Result<u64, (io::Error, u64)> {
    let max_line = limits.max_line;
    let first = limits.first.clamp(1, limits.block);
    if buf.len() < first {
        buf.resize(first, 0);
    }
    let mut line_no = 0u64;
    // Bytes of a line not yet ended kept at the start of `buf`.
    let mut kept = 0usize;
    // Inside a line already known to be too long: its bytes are dropped.
    let mut skipping = false;
    // The last read filled the buffer: the input may be large, so the buffer grows.
    let mut filled_up = false;
    loop {
        if buf.len() < limits.block && (filled_up || kept == buf.len()) {
            // Doubling up to the block; a line kept whole always leaves room (a full
            // buffer of one unended line grows here before the next read).
            buf.resize(buf.len().saturating_mul(2).min(limits.block), 0);
        }
        let space = buf.get_mut(kept..).unwrap_or_default();
        let room = space.len();
        let read = match reader.read(space) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((e, line_no)),
        };
        filled_up = read == room;
        let filled = kept + read;
        let data = buf.get(..filled).unwrap_or_default();
        if read == 0 {
            // The end: a last line without newline still counts.
            if skipping {
                line_no += 1;
                on_line(line_no, Line::TooLong);
            } else if filled > 0 {
                last_line(data, &mut line_no, max_line, prefilter, &mut on_line);
            }
            return Ok(line_no);
        }
        let Some(last_newline) = memchr::memrchr(b'\n', data) else {
            if skipping || filled > max_line {
                skipping = true;
                kept = 0;
            } else {
                kept = filled;
            }
            continue;
        };
        let (whole, rest) = data
            .split_at_checked(last_newline + 1)
            .unwrap_or((data, &[]));
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
        lines_of_block(whole, &mut line_no, max_line, prefilter, &mut on_line);
        let rest_len = rest.len();
        if rest_len > max_line {
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
    max_line: usize,
    prefilter: Option<&Prefilter>,
    on_line: &mut impl FnMut(u64, Line<'_>),
) {
    let mut with_newline = Vec::with_capacity(line.len() + 1);
    with_newline.extend_from_slice(line);
    with_newline.push(b'\n');
    lines_of_block(&with_newline, line_no, max_line, prefilter, on_line);
}

/// Hands the lines of `block` (whole lines, ending with `\n`) to `on_line`; `line_no`
/// counts the lines handed over so far.
fn lines_of_block(
    block: &[u8],
    line_no: &mut u64,
    max_line: usize,
    prefilter: Option<&Prefilter>,
    on_line: &mut impl FnMut(u64, Line<'_>),
) {
    if let Some(prefilter) = prefilter {
        if std::str::from_utf8(block).is_ok() && !has_long_line(block, max_line) {
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
        let what = if line.len() > max_line {
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

/// Whether a line of `block` (whole lines) is longer than `max_line`: looks for
/// the last newline within the longest line's reach of each line start it jumps to.
fn has_long_line(block: &[u8], max_line: usize) -> bool {
    let mut start = 0;
    while start < block.len() {
        let reach = block.get(start..).unwrap_or_default();
        let window = reach.get(..max_line + 1).unwrap_or(reach);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Hands out `data` in pieces of the sizes given, in turn.
    struct Pieces<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        turn: usize,
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let size = self
                .sizes
                .get(self.turn % self.sizes.len())
                .copied()
                .unwrap_or(1);
            self.turn += 1;
            let n = size.max(1).min(out.len()).min(self.data.len());
            let (now, rest) = self.data.split_at(n);
            out[..n].copy_from_slice(now);
            self.data = rest;
            Ok(n)
        }
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Candidate(u64, Vec<u8>),
        NotUtf8(u64),
        TooLong(u64),
    }

    /// The model: split on `\n`, each line judged on its own.
    fn model(data: &[u8], max_line: usize, prefilter: Option<&Prefilter>) -> (Vec<Seen>, u64) {
        let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let mut seen = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let no = i as u64 + 1;
            if line.len() > max_line {
                seen.push(Seen::TooLong(no));
            } else if prefilter.is_none_or(|p| p.is_candidate(line)) {
                seen.push(Seen::Candidate(no, line.to_vec()));
            } else if std::str::from_utf8(line).is_err() {
                seen.push(Seen::NotUtf8(no));
            }
        }
        (seen, lines.len() as u64)
    }

    fn scanned(
        data: &[u8],
        limits: Limits,
        sizes: Vec<usize>,
        prefilter: Option<&Prefilter>,
    ) -> (Vec<Seen>, u64) {
        let mut reader = Pieces {
            data,
            sizes,
            turn: 0,
        };
        let mut seen = Vec::new();
        let n = for_each_line_in(limits, &mut reader, &mut Vec::new(), prefilter, |no, l| {
            seen.push(match l {
                Line::Candidate(b) => Seen::Candidate(no, b.to_vec()),
                Line::NotUtf8 => Seen::NotUtf8(no),
                Line::TooLong => Seen::TooLong(no),
            })
        })
        .unwrap();
        (seen, n)
    }

    proptest! {
        /// Blocks, pieces and the prefilter change nothing but which lines are handed
        /// over: every line holding a needle, every bad line, with its number.
        #[test]
        fn blocks_give_the_lines_one_by_one(
            bytes in proptest::collection::vec(
                proptest::sample::select(b"ab@|\n\n\r\xff\xc3\xa9x".to_vec()), 0..400),
            sizes in proptest::collection::vec(1usize..70, 1..5),
            block in 22usize..90,
            first in 1usize..100,
            filtered in any::<bool>(),
        ) {
            let limits = Limits { block, first, max_line: 20 };
            let prefilter = Prefilter::for_user("ab", '|');
            let prefilter = prefilter.as_ref().filter(|_| filtered);
            prop_assert_eq!(
                scanned(&bytes, limits, sizes, prefilter),
                model(&bytes, limits.max_line, prefilter)
            );
        }
    }

    proptest! {
        /// The model is the full parser: whatever line it reads as user `u`'s, in either
        /// style, any delimiter, with or without attribute names, forwarded or not, holds
        /// one of the prefilter's spellings of `u`.
        #[test]
        fn the_prefilter_keeps_every_line_of_the_user(
            user in proptest::collection::vec(proptest::sample::select(
                vec!['a', 'b', ' ', '@', '/', '|', '=', ';', ',', '\\', '\n', '\t', '\u{202e}', '\u{a0}', 'é', 'x']), 1..8),
            delimiter in proptest::sample::select(vec!['|', ';', ',', '\t', ' ', '/', '@']),
            style in 0u8..3,
            kind in 0u8..4,
            forwarded in any::<bool>(),
        ) {
            use flightrec_core::event::{AuthFailure, AuthSuccess, Decoded, Logout, SessionForbidden};
            let user: String = user.into_iter().collect();
            let format = match style {
                0 => crate::LineFormat::Ejabberd(crate::EjabberdFormat::default()),
                n => crate::LineFormat::OpenXchange(crate::OxFormat {
                    delimiter,
                    attribute_names: n == 1,
                    ..crate::OxFormat::default()
                }),
            };
            let peer = Some(flightrec_core::event::Peer {
                addr: flightrec_core::event::Addr::V4([192, 0, 2, 1]),
                port: 5222,
            });
            let event = match kind {
                0 => Decoded::AuthFailure(AuthFailure { user: &user, host: "h", peer, mechanism: "PLAIN", reason: "no" }),
                1 => Decoded::AuthSuccess(AuthSuccess { user: &user, host: "h", peer, mechanism: "PLAIN" }),
                2 => Decoded::Logout(Logout { user: &user, host: "h", peer }),
                _ => Decoded::SessionForbidden(SessionForbidden { user: &user, host: "h", resource: "r" }),
            };
            let mut line = String::new();
            if format.render(1_795_392_000_000_000_000, "", &event, &mut line).is_err() {
                // A delimiter the style refuses.
                return Ok(());
            }
            let parsed = format.parse(&line).unwrap();
            prop_assert_eq!(parsed.event.account().map(|(u, _)| u), Some(user.as_str()));
            if forwarded {
                line = format!("<38>1 2026-11-23T00:00:00Z gw flightrec - audit [flightrec@32473 host=\"gw\" boot=\"b\" seq=\"1\"] \u{feff}{line}");
                let msg = crate::rfc5424::forwarded(&line, crate::rfc5424::DEFAULT_SD_ID, &mut crate::rfc5424::SeqCheck::new()).unwrap();
                prop_assert_eq!(format.parse(&msg.unwrap()).unwrap(), parsed);
            }
            // The viewer's delimiter setting (the Open-Xchange style's own, when it is that).
            let prefilter = Prefilter::for_user(&user, delimiter).unwrap();
            prop_assert!(prefilter.is_candidate(line.as_bytes()), "{line:?}");
        }
    }

    #[test]
    fn long_lines_are_found_across_blocks() {
        let limits = Limits {
            block: 32,
            first: 32,
            max_line: 10,
        };
        let data = b"ab@1\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxab@\nab@2\nyyyyyyyyyyyy";
        let p = Prefilter::for_user("ab", '|');
        for prefilter in [None, p.as_ref()] {
            assert_eq!(
                scanned(data, limits, vec![7, 64], prefilter),
                model(data, limits.max_line, prefilter)
            );
        }
    }
}
