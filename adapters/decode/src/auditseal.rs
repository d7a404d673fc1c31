//! Sealed audit logs (`core/SEALING.md` section 7): the sidecar that seals every line of an
//! audit log without changing the log, and its verifier.
//!
//! The log's bytes stay exactly as the line renderers made them (fail2ban reads them). Its
//! sidecar, `<log>.seal`, is a text file of *segments* (a run of bytes the writer appended
//! to one file, from an offset) and *seals* (after each write: the epoch, the file offset
//! sealed through, a running SHA-256 over the segment and the segments before it, an
//! HMAC-SHA-256 with the audit stream's key of that epoch, and on hosts an Ed25519
//! signature). The writer is `flightrec-linux`'s audit log; [`AuditVerifier`] checks a
//! family: the sidecars and log files of one log path, rotated ones included.

use std::collections::HashMap;
use std::io::{self, Read};

use flightrec_core::seal::{Seal, SealKey, HASH_LEN};
use sha2::{Digest, Sha256};

use crate::sign::SignatureBody;
use crate::verify::{hex, parse_hex, DumpVerdict, Fault, Place, Verifier};

/// First line of a sidecar.
pub const SIDECAR_TAG: &str = "flightrec-audit-seal 1";
/// What a log's name gets to name its sidecar.
pub const SIDECAR_SUFFIX: &str = ".seal";
/// Prefix of every segment hash: binds it to this format.
pub const CHAIN_DOMAIN: &[u8] = b"flightrec audit chain v1";
/// What is appended to the verification key to make the audit stream's first key.
pub const AUDIT_LABEL: &[u8] = b"audit";

/// The audit stream's key at the epoch of `key` (a verification key or `flightrec keygen`'s
/// first key): `SHA-256(k[e0] || "audit")`. Audit seals have their own epochs, apart from the
/// dumps', so that the dumps' epochs stay consecutive.
pub fn audit_key(key: &SealKey) -> SealKey {
    SealKey::new(key.derive(AUDIT_LABEL), key.epoch())
}

/// Whether `bytes` (a file's first bytes) begin a sidecar.
pub fn is_sidecar(bytes: &[u8]) -> bool {
    bytes.starts_with(SIDECAR_TAG.as_bytes())
}

/// The running hash of one segment: `SHA-256(CHAIN_DOMAIN || segment || start || prev ||
/// the segment's bytes so far)`, numbers as 8 bytes little-endian.
#[derive(Clone)]
pub struct SegmentHash(Sha256);

impl SegmentHash {
    /// The hash of segment `segment`, starting at byte `start` of its file, after the
    /// segment whose last seal's hash is `prev` (zeros for segment 0).
    pub fn new(segment: u64, start: u64, prev: &[u8; HASH_LEN]) -> Self {
        let mut h = Sha256::new();
        h.update(CHAIN_DOMAIN);
        h.update(segment.to_le_bytes());
        h.update(start.to_le_bytes());
        h.update(prev);
        SegmentHash(h)
    }

    /// Adds bytes appended to the segment.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The hash over everything so far (the hash goes on).
    pub fn head(&self) -> [u8; HASH_LEN] {
        self.0.clone().finalize().into()
    }
}

/// A segment line, with its line end.
pub fn segment_line(segment: u64, start: u64, prev: &[u8; HASH_LEN]) -> String {
    format!("segment {segment} {start} {}\n", hex(prev))
}

/// A seal line, with its line end: the seal (its `dump_len` is the file offset sealed
/// through, its `dump_hash` the segment hash) and its signature.
pub fn seal_line(seal: &Seal, sig: Option<&SignatureBody>) -> String {
    let mut s = format!(
        "seal {} {} {} {}",
        seal.epoch,
        seal.dump_len,
        hex(&seal.dump_hash),
        hex(&seal.mac)
    );
    if let Some(sig) = sig {
        s.push_str(&format!(" {} {}", hex(&sig.next_pub), hex(&sig.signature)));
    }
    s.push('\n');
    s
}

/// A seal line as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealEntry {
    /// The seal.
    pub seal: Seal,
    /// Its signature, if the line has one.
    pub sig: Option<SignatureBody>,
    /// Line number in the sidecar.
    pub line: u64,
}

/// A segment as read from a sidecar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Its number: one more than the segment before it.
    pub number: u64,
    /// Byte offset in its file where it starts (0: a new file).
    pub start: u64,
    /// The previous segment's last hash.
    pub prev: [u8; HASH_LEN],
    /// Its seals, in order.
    pub seals: Vec<SealEntry>,
    /// The sidecar it was read from.
    pub sidecar: String,
    /// Line number of its segment line there.
    pub line: u64,
}

impl Segment {
    /// The chain head after this segment: its last seal's hash (its `prev` if it has none).
    pub fn head(&self) -> [u8; HASH_LEN] {
        self.seals.last().map_or(self.prev, |s| s.seal.dump_hash)
    }
}

fn parse_u64(s: Option<&str>) -> Option<u64> {
    let s = s?;
    // Decimal digits only: no sign, no spaces (`u64::from_str` takes a `+`).
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn parse_seal_line(fields: &[&str], line: u64) -> Option<SealEntry> {
    let (epoch, end, hash, mac) = match fields {
        [_, e, n, h, m] | [_, e, n, h, m, _, _] => (*e, *n, *h, *m),
        _ => return None,
    };
    let seal = Seal {
        epoch: parse_u64(Some(epoch))?,
        dump_len: parse_u64(Some(end))?,
        dump_hash: parse_hex::<HASH_LEN>(hash)?,
        mac: parse_hex::<HASH_LEN>(mac)?,
    };
    let sig = match fields {
        [.., next, sig] if fields.len() == 7 => Some(SignatureBody {
            epoch: seal.epoch,
            next_pub: parse_hex::<32>(next)?,
            signature: parse_hex::<64>(sig)?,
        }),
        _ => None,
    };
    Some(SealEntry { seal, sig, line })
}

/// Reads the sidecar `name` (its bytes `text`): its segments, and the first fault (the
/// sidecar is read no further), named by line number.
pub fn parse_sidecar(name: &str, text: &[u8]) -> (Vec<Segment>, Option<String>) {
    let mut segments: Vec<Segment> = Vec::new();
    let mut lines = text.split(|&b| b == b'\n');
    let cut = !text.is_empty() && !text.ends_with(b"\n");
    let mut number = 0u64;
    let fault = loop {
        let Some(raw) = lines.next() else { break None };
        number += 1;
        let last = lines.clone().next().is_none();
        if last && raw.is_empty() {
            break None;
        }
        if last && cut {
            break Some(format!("{name} line {number}: cut off (no line end)"));
        }
        let Ok(line) = std::str::from_utf8(raw) else {
            break Some(format!("{name} line {number}: not text"));
        };
        if number == 1 {
            if line != SIDECAR_TAG {
                break Some(format!("{name} line 1: not {SIDECAR_TAG:?}"));
            }
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.first().copied() {
            Some("segment") if fields.len() == 4 => {
                let (Some(n), Some(start), Some(prev)) = (
                    parse_u64(fields.get(1).copied()),
                    parse_u64(fields.get(2).copied()),
                    fields.get(3).and_then(|h| parse_hex::<HASH_LEN>(h)),
                ) else {
                    break Some(format!("{name} line {number}: bad segment line"));
                };
                segments.push(Segment {
                    number: n,
                    start,
                    prev,
                    seals: Vec::new(),
                    sidecar: name.to_owned(),
                    line: number,
                });
            }
            Some("seal") => {
                let Some(entry) = parse_seal_line(&fields, number) else {
                    break Some(format!("{name} line {number}: bad seal line"));
                };
                let Some(segment) = segments.last_mut() else {
                    break Some(format!("{name} line {number}: seal before any segment"));
                };
                segment.seals.push(entry);
            }
            _ => break Some(format!("{name} line {number}: unknown line")),
        }
    };
    (segments, fault)
}

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
    /// ([`audit_key`]) or its public key of epoch `first_epoch`.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sidecar(key: &mut SealKey, file: &[u8], batches: &[usize]) -> Vec<u8> {
        let mut out = format!("{SIDECAR_TAG}\n{}", segment_line(0, 0, &[0; 32]));
        let mut hash = SegmentHash::new(0, 0, &[0; 32]);
        let mut at = 0;
        for &n in batches {
            hash.update(&file[at..at + n]);
            at += n;
            let seal = Seal::new(key, at as u64, hash.head());
            out.push_str(&seal_line(&seal, None));
            key.evolve();
        }
        out.into_bytes()
    }

    fn run(file: &[u8], side: &[u8]) -> Vec<ReportLine> {
        let mut v = AuditVerifier::new(Verifier::new(SealKey::new([1; 32], 0)), 0);
        v.verify_family(
            &[("a.log.seal".into(), side.to_vec())],
            &["a.log".into()],
            |_| Ok(file),
        )
        .unwrap();
        v.finish()
    }

    #[test]
    fn intact_and_edited() {
        let file = b"one\ntwo\nthree\n";
        let side = sidecar(&mut SealKey::new([1; 32], 0), file, &[4, 4, 6]);
        let r = run(file, &side);
        assert!(r.iter().all(|l| !l.failed), "{r:?}");
        let mut edited = file.to_vec();
        edited[5] = b'X';
        let r = run(&edited, &side);
        assert!(
            r.iter().any(|l| l.failed && l.text.contains("line 2 ")),
            "{r:?}"
        );
        let r = run(&file[..8], &side);
        assert!(
            r.iter().any(|l| l.failed && l.text.contains("epoch 2")),
            "{r:?}"
        );
        let r = run(b"one\ntwo\nthree\nfour\n", &side);
        assert!(
            r.iter()
                .any(|l| l.failed && l.text.contains("unsealed tail")),
            "{r:?}"
        );
    }

    #[test]
    fn sidecar_parser_names_bad_lines() {
        let (_, f) = parse_sidecar("s", b"flightrec-audit-seal 1\nseal 1 2\n");
        assert!(f.unwrap().contains("line 2"));
        let (_, f) = parse_sidecar("s", b"flightrec-audit-seal 1\nsegment 0 0 00");
        assert!(f.unwrap().contains("cut off"));
    }
}
