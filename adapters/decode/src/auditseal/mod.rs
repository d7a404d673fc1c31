//! Sealed audit logs (`core/SEALING.md` section 9): the sidecar that seals every line of an
//! audit log without changing the log, and its verifier.
//!
//! The log's bytes stay exactly as the line renderers made them (fail2ban reads them). Its
//! sidecar, `<log>.seal`, is a text file of *segments* (a run of bytes the writer appended
//! to one file, from an offset) and *seals* (after each write: the epoch, the file offset
//! sealed through, a running SHA-256 over the segment and the segments before it, an
//! HMAC-SHA-256 with the audit stream's key of that epoch, and on hosts an Ed25519
//! signature). The writer is `flightrec-linux`'s audit log; [`AuditVerifier`] checks a
//! family: the sidecars and log files of one log path, rotated ones included.

use flightrec_core::seal::{Seal, SealKey, HASH_LEN};
use sha2::{Digest, Sha256};

use crate::sign::SignatureBody;
use crate::verify::{hex, parse_hex};

mod check;

pub use check::{AuditVerifier, ReportLine};

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

pub(crate) fn parse_u64(s: Option<&str>) -> Option<u64> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Verifier;

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
