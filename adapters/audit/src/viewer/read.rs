//! Reading the files: each line parsed (or, with a prefilter, each candidate line), its
//! record tallied and kept if it is to be shown.

use std::io;
use std::path::Path;

use super::collect::{Collector, Entry};
use super::files::open;
use super::scan::{for_each_line, Line, Prefilter};
use super::{shown_path, AuditArgs, Filter, Problems, Tally};
use crate::{EjabberdFormat, OxFormat};

/// What [`super::run`] reads with: the arguments, formats and filter.
pub(super) struct Reading<'a> {
    pub(super) args: &'a AuditArgs,
    pub(super) ejabberd: &'a EjabberdFormat,
    pub(super) ox: &'a OxFormat,
    pub(super) filter: &'a Filter,
}

/// What reading the files gave.
pub(super) struct Read {
    pub(super) tally: Tally,
    pub(super) collector: Collector,
    pub(super) forwarded: crate::rfc5424::SeqCheck,
    /// Whether the temporary file failed (said once).
    spill_failed: bool,
}

impl Reading<'_> {
    /// Reads `files` in order, parsing the lines `prefilter` lets through (every line
    /// without one), and collects the records to show.
    pub(super) fn read(
        &self,
        files: &[std::path::PathBuf],
        prefilter: Option<&Prefilter>,
        problems: &mut Problems<'_>,
    ) -> Read {
        let mut read = Read {
            tally: Tally::default(),
            collector: Collector::new(self.args.limit, self.args.output),
            forwarded: crate::rfc5424::SeqCheck::new(),
            spill_failed: false,
        };
        let mut seq = 0u64;
        let mut buf = Vec::new();
        for path in files {
            let mut reader = match open(path) {
                Ok(r) => r,
                Err(e) => {
                    problems.io(format_args!("{}: {e}", shown_path(path)));
                    continue;
                }
            };
            let result = for_each_line(&mut *reader, &mut buf, prefilter, |line_no, line| {
                let bytes = match line {
                    Line::Candidate(bytes) => bytes,
                    Line::NotUtf8 => return problems.bad_line(path, line_no, "not UTF-8"),
                    Line::TooLong => return problems.bad_line(path, line_no, "longer than 64 KiB"),
                };
                self.line(bytes, path, line_no, &mut seq, &mut read, problems);
            });
            if let Err((e, line_no)) = result {
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidData
                        | io::ErrorKind::InvalidInput
                        | io::ErrorKind::UnexpectedEof
                ) {
                    // A cut or corrupt .gz: what came before was shown.
                    problems.bad_line(path, line_no + 1, &format!("corrupt data: {e}"));
                } else {
                    problems.io(format_args!(
                        "{}: read error after line {line_no}: {e}",
                        shown_path(path)
                    ));
                }
            }
        }
        read
    }

    /// Parses one line (without its `\n`) and collects its record if it is to be shown.
    fn line(
        &self,
        bytes: &[u8],
        path: &Path,
        line_no: u64,
        seq: &mut u64,
        read: &mut Read,
        problems: &mut Problems<'_>,
    ) {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if bytes.is_empty() {
            return;
        }
        let Ok(line) = std::str::from_utf8(bytes) else {
            return problems.bad_line(path, line_no, "not UTF-8");
        };
        // A collector's RFC 5424 line: its MSG is the audit line; notices are skipped.
        let msg;
        let text = if line.starts_with('<') {
            match crate::rfc5424::forwarded(line, &self.args.sd_id, &mut read.forwarded) {
                Ok(Some(m)) => {
                    msg = m;
                    msg.as_str()
                }
                Ok(None) => return,
                Err(e) => return problems.bad_line(path, line_no, e.reason),
            }
        } else {
            line
        };
        if self.args.gaps {
            return;
        }
        let parsed = if text.starts_with(|c: char| c.is_ascii_digit()) {
            self.ejabberd.parse(text)
        } else {
            self.ox.parse(text)
        };
        let record = match parsed {
            Ok(record) => record,
            Err(e) => return problems.bad_line(path, line_no, e.reason),
        };
        let tally = &mut read.tally;
        tally.records += 1;
        if !self.filter.is_of_target(&record) {
            if let Some((_, host)) = record.event.account() {
                if tally.hosts.len() < 8 {
                    tally.hosts.insert(host.to_owned());
                }
            }
            return;
        }
        tally.of_target += 1;
        if self.filter.passes_options(&record) {
            tally.matching += 1;
            *seq += 1;
            let kept = read.collector.push(Entry {
                unix_secs: record.unix_secs,
                seq: *seq,
                record,
                line: line.to_owned(),
            });
            if let Err(e) = kept {
                if !read.spill_failed {
                    read.spill_failed = true;
                    problems.note(format_args!(
                        "temporary file for the records to show: {e}; holding them in memory"
                    ));
                }
            }
        }
    }
}
