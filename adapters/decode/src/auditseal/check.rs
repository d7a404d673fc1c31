//! The verifier of a family of sealed audit files (`core/SEALING.md` section 9, "Verifying").

use std::collections::HashMap;
use std::io::{self, Read};

use flightrec_core::seal::HASH_LEN;

use super::{parse_sidecar, parse_u64, Segment, SegmentHash};
use crate::verify::{DumpVerdict, Fault, Place, Verifier};

/// One line of a verification report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportLine {
    /// A failure (else: sealed and intact, or a note).
    pub failed: bool,
    /// What, and where.
    pub text: String,
}

/// A log file of a family, as checked.
struct FileReport {
    name: String,
    summary: String,
    fault: Option<String>,
}

/// Reads a file once, front to back, counting line ends.
struct Stream<R> {
    input: R,
    pos: u64,
    newlines: u64,
    buf: Vec<u8>,
}

impl<R: Read> Stream<R> {
    fn new(input: R) -> Self {
        Stream {
            input,
            pos: 0,
            newlines: 0,
            buf: vec![0; 64 * 1024],
        }
    }

    /// Reads up to byte `end`, into `hash` if given; whether `end` was reached.
    fn advance(&mut self, end: u64, mut hash: Option<&mut SegmentHash>) -> io::Result<bool> {
        while self.pos < end {
            let want = usize::try_from(end - self.pos)
                .unwrap_or(usize::MAX)
                .min(self.buf.len());
            let Some(space) = self.buf.get_mut(..want) else {
                return Ok(false);
            };
            let n = match self.input.read(space) {
                Ok(0) => return Ok(false),
                Ok(n) => n.min(want),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let got = space.get(..n).unwrap_or(&[]);
            self.newlines += memchr::memchr_iter(b'\n', got).count() as u64;
            if let Some(h) = hash.as_deref_mut() {
                h.update(got);
            }
            self.pos += n as u64;
        }
        Ok(true)
    }

    /// The line number of the byte at the current position.
    fn line(&self) -> u64 {
        self.newlines + 1
    }
}

/// Verifies sealed audit logs: families of sidecars and log files (see the module docs),
/// with the audit stream's verification key or public key.
pub struct AuditVerifier {
    verifier: Verifier,
    /// The audit stream's first epoch (the verification key's).
    first_epoch: u64,
    /// The newest first epoch of a family whose older segments are gone (rotated away):
    /// epochs missing below it may be theirs.
    rotated_below: Option<u64>,
    /// Epochs seen across families, with where.
    epochs: HashMap<u64, String>,
    /// Seals whose MAC (or contents, with a public key) checked, for the signature chain:
    /// the file report each belongs to.
    signed: Vec<(DumpVerdict, usize)>,
    files: Vec<FileReport>,
    lines: Vec<ReportLine>,
}

impl AuditVerifier {
    /// A verifier of audit seals with `verifier`, made for the audit stream's key
    /// ([`audit_key`](super::audit_key)) or its public key of epoch `first_epoch`.
    pub fn new(verifier: Verifier, first_epoch: u64) -> Self {
        AuditVerifier {
            verifier,
            first_epoch,
            rotated_below: None,
            epochs: HashMap::new(),
            signed: Vec::new(),
            files: Vec::new(),
            lines: Vec::new(),
        }
    }

    fn fail(&mut self, text: String) {
        self.lines.push(ReportLine { failed: true, text });
    }

    /// Verifies one family: its sidecars (`(name, bytes)`) and the log files `logs` (names;
    /// `open(i)` reads `logs[i]`). Rotated files are matched to the segments they hold by
    /// their contents, whatever their names; their names must keep the segments' order
    /// (`log`, `log.1`, `log.2`, ... newest first).
    pub fn verify_family<R: Read>(
        &mut self,
        sidecars: &[(String, Vec<u8>)],
        logs: &[String],
        mut open: impl FnMut(usize) -> io::Result<R>,
    ) -> io::Result<()> {
        let mut segments = Vec::new();
        for (name, text) in sidecars {
            let (mut s, fault) = parse_sidecar(name, text);
            segments.append(&mut s);
            if let Some(f) = fault {
                self.fail(format!("sidecar {f}"));
            }
        }
        segments.sort_by_key(|s| s.number);
        self.check_links(&segments);
        let first = segments.first().filter(|s| s.number > 0);
        if let Some(e) = first.and_then(|s| s.seals.first()).map(|e| e.seal.epoch) {
            self.rotated_below = self.rotated_below.max(Some(e));
        }
        // Runs of segments in one file: a run begins at a segment starting at byte 0 (or at
        // the first segment given).
        let mut runs: Vec<Vec<&Segment>> = Vec::new();
        for s in segments.iter().filter(|s| !s.seals.is_empty()) {
            match runs.last_mut() {
                Some(run) if s.start > 0 => run.push(s),
                _ => runs.push(vec![s]),
            }
        }
        let mut taken = vec![false; logs.len()];
        let mut order: Vec<(usize, usize)> = Vec::new(); // (run, log)
        let mut unmatched = Vec::new();
        for (r, run) in runs.iter().enumerate() {
            let mut found = None;
            for (i, _) in logs.iter().enumerate() {
                if taken.get(i) == Some(&false) && holds_first_seal(open(i)?, run)? {
                    found = Some(i);
                    break;
                }
            }
            match found {
                Some(i) => {
                    if let Some(t) = taken.get_mut(i) {
                        *t = true;
                    }
                    order.push((r, i));
                }
                None => unmatched.push(r),
            }
        }
        // As many runs as files left unmatched: files edited in their first lines. Paired
        // oldest first, each is checked, to name the line.
        let mut left: Vec<usize> = (0..logs.len())
            .filter(|&i| taken.get(i) == Some(&false))
            .collect();
        if !unmatched.is_empty() && left.len() == unmatched.len() {
            let base = logs
                .iter()
                .min_by_key(|n| n.len())
                .cloned()
                .unwrap_or_default();
            left.sort_by_key(|&i| std::cmp::Reverse(logs.get(i).and_then(|n| age(n, &base))));
            for (&r, &i) in unmatched.iter().zip(&left) {
                if let Some(t) = taken.get_mut(i) {
                    *t = true;
                }
                order.push((r, i));
            }
            unmatched.clear();
        }
        order.sort_unstable();
        for &(r, i) in &order {
            if let (Some(run), Some(name)) = (runs.get(r), logs.get(i)) {
                self.check_file(name, open(i)?, run)?;
            }
        }
        for r in unmatched {
            if let Some(run) = runs.get(r) {
                self.fail(describe_missing(run));
            }
        }
        for (i, name) in logs.iter().enumerate() {
            if taken.get(i) == Some(&false) {
                let mut s = Stream::new(open(i)?);
                s.advance(u64::MAX, None)?;
                if s.pos == 0 {
                    self.lines.push(ReportLine {
                        failed: false,
                        text: format!("ok   {name}: empty"),
                    });
                } else {
                    self.fail(format!(
                        "{name}: {} bytes ({} lines) that no seal covers: unsealed, or edited in its first lines",
                        s.pos, s.newlines
                    ));
                }
            }
        }
        self.check_names(&order, logs);
        Ok(())
    }

    /// Segment numbers consecutive and each `prev` the head before it.
    fn check_links(&mut self, segments: &[Segment]) {
        let mut before: Option<&Segment> = None;
        for s in segments {
            match before {
                None if s.number == 0 && s.prev != [0; HASH_LEN] => self.fail(format!(
                    "{} line {}: segment 0 does not start the chain (its previous hash is not zero)",
                    s.sidecar, s.line
                )),
                None if s.number > 0 => self.lines.push(ReportLine {
                    failed: false,
                    text: format!(
                        "note {}: the chain given starts at segment {} (older ones rotated away, or not given)",
                        s.sidecar, s.number
                    ),
                }),
                Some(b) if b.number == s.number => self.fail(format!(
                    "segment {} twice: {} line {} and {} line {} (a sidecar copied or replayed)",
                    s.number, b.sidecar, b.line, s.sidecar, s.line
                )),
                Some(b) if b.number + 1 != s.number => self.fail(format!(
                    "segments {}..={} missing between {} line {} and {} line {} (a rotated sidecar deleted)",
                    b.number + 1,
                    s.number - 1,
                    b.sidecar,
                    b.line,
                    s.sidecar,
                    s.line
                )),
                Some(b) if b.head() != s.prev => self.fail(format!(
                    "{} line {}: segment {} does not follow segment {} ({} line {}): the chain is broken",
                    s.sidecar, s.line, s.number, b.number, b.sidecar, b.line
                )),
                _ => {}
            }
            before = Some(s);
        }
    }

    /// Checks every seal of `run` against the file `name`, front to back.
    fn check_file<R: Read>(&mut self, name: &str, input: R, run: &[&Segment]) -> io::Result<()> {
        let mut s = Stream::new(input);
        let report = self.files.len();
        self.files.push(FileReport {
            name: name.to_owned(),
            summary: String::new(),
            fault: None,
        });
        let mut fault = None;
        let mut last_epoch: Option<u64> = None;
        let mut epochs = (None, None);
        'run: for seg in run {
            if seg.start < s.pos {
                fault = Some(format!(
                    "segment {} ({} line {}) starts at byte {} inside what the segment before sealed (through byte {})",
                    seg.number, seg.sidecar, seg.line, seg.start, s.pos
                ));
                break;
            }
            if seg.start > s.pos {
                let (from, line) = (s.pos, s.line());
                let reached = s.advance(seg.start, None)?;
                fault = Some(if reached {
                    format!(
                        "bytes {from}..{} (lines {line}..{}) are not sealed (written while sealing was off, or by another writer)",
                        seg.start,
                        s.line().saturating_sub(1).max(line)
                    )
                } else {
                    format!(
                        "file ends at byte {} (line {}) before segment {} starts at byte {}: lines cut",
                        s.pos,
                        s.line(),
                        seg.number,
                        seg.start
                    )
                });
                break;
            }
            let mut hash = SegmentHash::new(seg.number, seg.start, &seg.prev);
            for entry in &seg.seals {
                let seal = &entry.seal;
                let (from, line) = (s.pos, s.line());
                if let Some(p) = last_epoch.filter(|&p| p >= seal.epoch) {
                    fault = Some(format!(
                        "seal of epoch {} ({} line {}) after epoch {p}: seals reordered or re-sealed",
                        seal.epoch, seg.sidecar, entry.line
                    ));
                    break 'run;
                }
                last_epoch = Some(seal.epoch);
                if seal.dump_len < s.pos {
                    fault = Some(format!(
                        "seal of epoch {} ({} line {}) ends at byte {}, before the seal before it",
                        seal.epoch, seg.sidecar, entry.line, seal.dump_len
                    ));
                    break 'run;
                }
                if !s.advance(seal.dump_len, Some(&mut hash))? {
                    fault = Some(format!(
                        "file ends at byte {} (line {}) where the seal of epoch {} covers through byte {} ({} line {}): lines cut or removed",
                        s.pos, s.line(), seal.epoch, seal.dump_len, seg.sidecar, entry.line
                    ));
                    break 'run;
                }
                let place = Place {
                    input: name.to_owned(),
                    dump: usize::try_from(entry.line).unwrap_or(usize::MAX),
                    offset: seal.dump_len,
                };
                let last = s.line().saturating_sub(1).max(line);
                let what = if last == line {
                    format!(
                        "line {line} (bytes {from}..{}), epoch {}",
                        seal.dump_len, seal.epoch
                    )
                } else {
                    format!(
                        "lines {line}..{last} (bytes {from}..{}), epoch {}",
                        seal.dump_len, seal.epoch
                    )
                };
                let checked = self.verifier.check_detached(
                    seal,
                    seal.dump_len,
                    &hash.head(),
                    entry.sig,
                    place.clone(),
                );
                if let Some(f) = checked {
                    let why = match f {
                        Fault::Contents { .. } => {
                            "not the lines sealed (a line changed, removed, inserted or moved)"
                                .to_owned()
                        }
                        other => other.to_string(),
                    };
                    fault = Some(format!(
                        "{what}: {why} ({} line {})",
                        seg.sidecar, entry.line
                    ));
                    break 'run;
                }
                if let Some(first) = self.epochs.insert(seal.epoch, format!("{name} {what}")) {
                    fault = Some(format!(
                        "{what}: epoch {} sealed twice, also {first} (duplicated or re-sealed)",
                        seal.epoch
                    ));
                    break 'run;
                }
                epochs = (epochs.0.or(Some(seal.epoch)), Some(seal.epoch));
                self.signed.push((
                    DumpVerdict {
                        place,
                        epoch: Some(seal.epoch),
                        seqs: None,
                        records: 0,
                        last_seq: None,
                        fault: None,
                    },
                    report,
                ));
            }
        }
        if fault.is_none() {
            let (from, line) = (s.pos, s.line());
            s.advance(u64::MAX, None)?;
            if s.pos > from {
                fault = Some(format!(
                    "unsealed tail: bytes {from}..{} (lines {line}..{}) after the last seal (appended later, or the writer stopped before sealing)",
                    s.pos,
                    s.newlines.max(line)
                ));
            }
        }
        let segs = match (run.first(), run.last()) {
            (Some(a), Some(b)) if a.number != b.number => {
                format!("segments {}..={}", a.number, b.number)
            }
            (Some(a), _) => format!("segment {}", a.number),
            _ => String::new(),
        };
        let eps = match epochs {
            (Some(a), Some(b)) if a != b => format!(", epochs {a}..={b}"),
            (Some(a), _) => format!(", epoch {a}"),
            _ => String::new(),
        };
        if let Some(r) = self.files.get_mut(report) {
            r.summary = format!("{} lines, {segs}{eps}", s.newlines);
            r.fault = fault;
        }
        Ok(())
    }

    /// Files named `log.N` hold older segments the larger `N`; `log` the newest.
    fn check_names(&mut self, order: &[(usize, usize)], logs: &[String]) {
        let Some(base) = logs.iter().min_by_key(|n| n.len()) else {
            return;
        };
        let mut before: Option<(&str, u64)> = None;
        for &(_, i) in order {
            let Some(name) = logs.get(i) else { continue };
            let Some(a) = age(name, base) else { continue };
            if let Some((older, oa)) = before {
                if oa <= a {
                    self.fail(format!(
                        "{older} holds older lines than {name} but its name says newer: files swapped or renamed"
                    ));
                }
            }
            before = Some((name, a));
        }
    }

    /// Checks the signature chain (with a public key) and returns the report: one line per
    /// log file, then every failure across files.
    pub fn finish(mut self) -> Vec<ReportLine> {
        self.check_epochs();
        let mut verdicts: Vec<DumpVerdict> = self.signed.iter().map(|(v, _)| v.clone()).collect();
        let _ = self.verifier.finish(&mut verdicts);
        for (v, (_, report)) in verdicts.iter().zip(&self.signed) {
            let Some(Fault::Signature(why)) = &v.fault else {
                continue;
            };
            if let Some(r) = self.files.get_mut(*report) {
                r.fault.get_or_insert_with(|| {
                    format!(
                        "seal of epoch {} (through byte {}): signature: {why}",
                        v.epoch.unwrap_or(0),
                        v.place.offset
                    )
                });
            }
        }
        let mut out: Vec<ReportLine> = self
            .files
            .iter()
            .map(|f| match &f.fault {
                None => ReportLine {
                    failed: false,
                    text: format!("ok   {}: {}, sealed and intact", f.name, f.summary),
                },
                Some(why) => ReportLine {
                    failed: true,
                    text: format!("FAIL {}: {}: {why}", f.name, f.summary),
                },
            })
            .collect();
        out.extend(self.lines.into_iter().map(|mut l| {
            if l.failed {
                l.text = format!("FAIL {}", l.text);
            }
            l
        }));
        out
    }
}

impl AuditVerifier {
    /// Every epoch of the audit stream, from the key's first to the newest seen, is in some
    /// file given: the writer consumes one per seal, whatever the file. A gap is a seal
    /// deleted, or seals replaced by ones made with a stolen later key; below the first
    /// epoch of a family whose older segments are gone, it may be theirs (a note).
    fn check_epochs(&mut self) {
        let mut epochs: Vec<u64> = self.epochs.keys().copied().collect();
        epochs.sort_unstable();
        let mut expected = self.first_epoch;
        let mut gaps = Vec::new();
        for e in epochs {
            if e > expected {
                gaps.push((expected, e - 1, e));
            }
            expected = expected.max(e.saturating_add(1));
        }
        for (from, to, next) in gaps {
            let rotated = self.rotated_below.is_some_and(|r| to < r);
            let where_ = self
                .epochs
                .get(&next)
                .map(|w| format!(" (before {w})"))
                .unwrap_or_default();
            let text = if rotated {
                format!("note audit epochs {from}..={to} not given: sealed lines rotated away with their sidecars{where_}")
            } else {
                format!("audit epochs {from}..={to} missing{where_}: seals deleted or replaced by seals of a later (stolen) key, or an audit file of another host not given")
            };
            self.lines.push(ReportLine {
                failed: !rotated,
                text,
            });
        }
    }
}

/// How many rotations old the file `name` of the log `base` is by its name: 0 for `base`,
/// `N` for `base.N`; `None` for other names.
fn age(name: &str, base: &str) -> Option<u64> {
    if name == base {
        return Some(0);
    }
    parse_u64(name.strip_prefix(base)?.strip_prefix('.'))
}

/// Whether the file `input` holds the first seal of `run`.
fn holds_first_seal<R: Read>(input: R, run: &[&Segment]) -> io::Result<bool> {
    let Some((seg, entry)) = run.first().and_then(|s| Some((s, s.seals.first()?))) else {
        return Ok(false);
    };
    let mut s = Stream::new(input);
    s.advance(seg.start, None)?;
    let mut hash = SegmentHash::new(seg.number, seg.start, &seg.prev);
    Ok(s.advance(entry.seal.dump_len, Some(&mut hash))? && hash.head() == entry.seal.dump_hash)
}

fn describe_missing(run: &[&Segment]) -> String {
    let seals = run.iter().flat_map(|s| &s.seals);
    let first = seals.clone().next().map(|e| e.seal.epoch);
    let last = seals.clone().last().map(|e| e.seal.epoch);
    let bytes = seals.last().map_or(0, |e| e.seal.dump_len);
    let (a, b) = (
        run.first().map_or(0, |s| s.number),
        run.last().map_or(0, |s| s.number),
    );
    let where_ = run
        .first()
        .map(|s| format!("{} line {}", s.sidecar, s.line))
        .unwrap_or_default();
    format!(
        "segments {a}..={b} ({where_}; epochs {}..={}, {bytes} bytes sealed): no file given holds them: a rotated file deleted, or its first lines edited",
        first.unwrap_or(0),
        last.unwrap_or(0)
    )
}
