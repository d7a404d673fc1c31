//! The verifier of sealed dumps (`core/SEALING.md` section 3).
//!
//! Unlike the [`Decoder`](crate::Decoder), which shows what it can of damaged input, the
//! verifier is strict: the first fault in a dump fails it, and is named (input, dump index,
//! byte offset, the last good record's sequence number, the epoch when its seal is
//! readable). It streams each input through one bounded buffer, hashes every dump, checks
//! each seal's MAC with the key of the seal's own epoch, and, once every input is read,
//! checks that the epochs seen are consecutive and unrepeated ([`Verifier::finish`]).
//!
//! It never panics, never loops forever (every step consumes input or ends it) and holds at
//! most [`BUFFER_LEN`](crate::decoder::BUFFER_LEN) bytes of input, on any bytes.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};

use ed25519_dalek::VerifyingKey;
use flightrec_core::dump::{FRAME_END, FRAME_HEADER, FRAME_OVERHEAD, FRAME_RECORD, MAGIC, SYNC};
use flightrec_core::seal::{Seal, SealKey, FRAME_SEAL, FRAME_SIGNATURE, KEY_LEN, SEAL_BODY_LEN};
use flightrec_core::{DumpEnd, DumpHeader, RecordHead};
use sha2::{Digest, Sha256};

use crate::sign::SignatureBody;

use crate::decoder::{CHUNK, MAX_FRAME, VERSION};
use crate::window::Window;

/// First line of a key file (`SEALING.md` section 1).
pub const KEY_FILE_TAG: &str = "flightrec-seal-key 1";

/// Reads a key file: `(k[e], e)`.
pub fn parse_key_file(text: &str) -> Result<SealKey, String> {
    let mut lines = text.lines();
    if lines.next() != Some(KEY_FILE_TAG) {
        return Err(format!(
            "not a sealing key file (first line is not {KEY_FILE_TAG:?})"
        ));
    }
    let mut epoch = None;
    let mut key = None;
    for line in lines {
        match line.split_once(' ') {
            Some(("epoch", n)) => {
                epoch = Some(n.parse::<u64>().map_err(|_| "bad epoch line".to_owned())?)
            }
            Some(("key", hex)) => key = Some(parse_hex::<KEY_LEN>(hex).ok_or("bad key line")?),
            _ if line.is_empty() => {}
            _ => return Err("unknown line in key file".to_owned()),
        }
    }
    match (key, epoch) {
        (Some(k), Some(e)) => Ok(SealKey::new(k, e)),
        _ => Err("key file lacks its epoch or key line".to_owned()),
    }
}

/// Writes a key file's text for `key`.
pub fn key_file_text(key: &SealKey) -> String {
    format!(
        "{KEY_FILE_TAG}\nepoch {}\nkey {}\n",
        key.epoch(),
        hex(key.secret())
    )
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `N` bytes from exactly `2 * N` hex digits.
pub fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.trim();
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        *o = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// Where a dump is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The input's name as given.
    pub input: String,
    /// Dumps before this one in the input.
    pub dump: usize,
    /// Byte offset of its magic (or of the fault, for bytes outside dumps).
    pub offset: u64,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: dump {} at offset {}",
            self.input, self.dump, self.offset
        )
    }
}

/// What is wrong, and where inside the dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Bytes that are neither a dump nor erased flash.
    Outside {
        /// How many.
        len: u64,
    },
    /// A dump whose version is not the one this verifier knows.
    Version(u8),
    /// A frame that is not whole (bad sync, length past the input, CRC).
    Frame {
        /// Offset of the frame.
        at: u64,
        /// Why.
        why: &'static str,
    },
    /// A whole frame where the format has no place for it, or whose body does not decode.
    Structure {
        /// Offset of the frame.
        at: u64,
        /// Why.
        why: String,
    },
    /// The input ends, or another dump begins, before the seal.
    Unsealed {
        /// Where the dump stops.
        at: u64,
        /// Why.
        why: &'static str,
    },
    /// The seal frame is not a version-1 seal.
    BadSeal {
        /// Offset of the seal frame.
        at: u64,
    },
    /// The dump's bytes are not the ones sealed.
    Contents {
        /// Bytes sealed.
        sealed_len: u64,
        /// Bytes found.
        len: u64,
    },
    /// The MAC is not the one of the seal's epoch.
    Mac,
    /// The signature over the seal is missing or not the epoch's public key's.
    Signature(&'static str),
    /// The seal's epoch is below the verification key's: its key cannot be derived.
    EpochBeforeKey {
        /// The key's epoch.
        key: u64,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Outside { len } => write!(f, "{len} bytes outside any dump (not erased flash)"),
            Fault::Version(v) => write!(f, "dump format version {v} unknown"),
            Fault::Frame { at, why } => write!(f, "frame at offset {at}: {why}"),
            Fault::Structure { at, why } => write!(f, "frame at offset {at}: {why}"),
            Fault::Unsealed { at, why } => write!(f, "not sealed: {why} (offset {at})"),
            Fault::BadSeal { at } => write!(f, "seal frame at offset {at} is not a version-1 seal"),
            Fault::Contents { sealed_len, len } if sealed_len != len => write!(
                f,
                "contents are not the ones sealed: {len} bytes where {sealed_len} were sealed (records removed, added or cut)"
            ),
            Fault::Contents { .. } => f.write_str(
                "contents are not the ones sealed: bytes changed (CRCs recomputed: a deliberate edit)",
            ),
            Fault::Mac => f.write_str(
                "seal's MAC is not its epoch's (sealed with another key, another epoch's key, or edited)",
            ),
            Fault::Signature(why) => write!(f, "signature: {why}"),
            Fault::EpochBeforeKey { key } => write!(
                f,
                "sealed for an epoch before the verification key's ({key}): cannot be checked"
            ),
        }
    }
}

/// The verdict on one dump (or on bytes outside dumps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpVerdict {
    /// Where.
    pub place: Place,
    /// The epoch of its seal, when the seal frame was readable.
    pub epoch: Option<u64>,
    /// The sequence range of its header, when readable.
    pub seqs: Option<(u64, u64)>,
    /// Record frames checked.
    pub records: u64,
    /// The last good record's sequence number.
    pub last_seq: Option<u64>,
    /// `None`: sealed and intact.
    pub fault: Option<Fault>,
}

impl DumpVerdict {
    /// Whether this is a dump (perhaps damaged) rather than foreign bytes only.
    pub fn is_dump(&self) -> bool {
        self.epoch.is_some() || !matches!(self.fault, Some(Fault::Outside { .. }))
    }
}

impl fmt::Display for DumpVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.place)?;
        if let Some(e) = self.epoch {
            write!(f, ", epoch {e}")?;
        }
        if let Some((a, b)) = self.seqs {
            write!(f, ", records {a}..{b}")?;
        }
        match &self.fault {
            None => write!(f, ": {} records, sealed and intact", self.records),
            Some(fault) => {
                if let Some(s) = self.last_seq {
                    write!(f, ", after record {s}")?;
                } else if self
                    .fault
                    .as_ref()
                    .is_some_and(|f| !matches!(f, Fault::Outside { .. }))
                {
                    write!(f, ", before any record")?;
                }
                write!(f, ": FAILED: {fault}")
            }
        }
    }
}

/// A problem across dumps, found when every input has been read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EpochProblem {
    /// Epochs `from..=to` are sealed by no dump given (deleted, or never released).
    Missing {
        /// First missing epoch.
        from: u64,
        /// Last missing epoch.
        to: u64,
        /// The dump of the epoch before, if any.
        after: Option<Place>,
        /// The dump of the epoch after; `None` when the epochs missing are the newest, known
        /// from [`Verifier::expect_last`].
        before: Option<Place>,
    },
    /// One epoch sealed twice.
    Repeated {
        /// The epoch.
        epoch: u64,
        /// Its first dump.
        first: Place,
        /// The other.
        again: Place,
    },
    /// A seal forwarded off the device (a collector's dump notice, `SEALING.md` section 7)
    /// whose dump is not among the dumps given: deleted.
    ForwardedWithoutDump {
        /// The seal's epoch.
        epoch: u64,
        /// Where the notice is.
        notice: String,
    },
    /// A dump whose seal is not the one forwarded for its epoch: replaced or re-sealed.
    ForwardedDiffers {
        /// The epoch.
        epoch: u64,
        /// Where the notice is.
        notice: String,
        /// The dump.
        place: Place,
    },
    /// A forwarded seal whose MAC does not check with the verification key: the notice is
    /// forged (or of another device).
    ForwardedForged {
        /// The epoch it claims.
        epoch: u64,
        /// Where the notice is.
        notice: String,
    },
    /// A dump whose epoch is below the previous dump's in the same input.
    OutOfOrder {
        /// The dump.
        place: Place,
        /// Its epoch.
        epoch: u64,
        /// The epoch before it in the input.
        previous: u64,
    },
}

impl fmt::Display for EpochProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EpochProblem::Missing {
                from,
                to,
                after,
                before,
            } => {
                if from == to {
                    write!(f, "epoch {from} missing")?;
                } else {
                    write!(f, "epochs {from}..={to} missing")?;
                }
                write!(f, " (dumps deleted or never released): ")?;
                match (after, before) {
                    (Some(a), Some(b)) => write!(f, "between {a} and {b}"),
                    (None, Some(b)) => write!(f, "before {b}"),
                    (Some(a), None) => write!(f, "after {a}, the last dump given"),
                    (None, None) => write!(f, "no sealed dump given"),
                }
            }
            EpochProblem::Repeated {
                epoch,
                first,
                again,
            } => write!(
                f,
                "epoch {epoch} sealed twice (duplicated or re-sealed dump): {first} and {again}"
            ),
            EpochProblem::ForwardedWithoutDump { epoch, notice } => write!(
                f,
                "epoch {epoch}: its seal was forwarded ({notice}) but no dump given carries it (dump deleted)"
            ),
            EpochProblem::ForwardedDiffers {
                epoch,
                notice,
                place,
            } => write!(
                f,
                "{place}: epoch {epoch}: its seal differs from the one forwarded ({notice}): dump replaced or re-sealed"
            ),
            EpochProblem::ForwardedForged { epoch, notice } => write!(
                f,
                "{notice}: the forwarded seal of epoch {epoch} was not made by this key (forged notice, or another device's)"
            ),
            EpochProblem::OutOfOrder {
                place,
                epoch,
                previous,
            } => write!(
                f,
                "{place}: epoch {epoch} after epoch {previous} in the same input (dumps reordered)"
            ),
        }
    }
}

/// Verifies inputs with a verification key; see the module docs.
pub struct Verifier {
    /// The verification key `(k[e0], e0)`, if given: every MAC is checked.
    base: Option<SealKey>,
    /// The epoch the verification starts at (`e0`).
    first_epoch: u64,
    /// The public key of `e0`, if given: every signature is checked.
    public: Option<VerifyingKey>,
    /// Dumps whose contents match their seals, for the signature chain.
    signed: Vec<(Seal, Option<SignatureBody>, Place)>,
    /// Keys derived so far, every [`CHECKPOINT`] epochs, so that a key is never derived
    /// from scratch twice.
    checkpoints: BTreeMap<u64, SealKey>,
    /// The key derived last: seals mostly come in epoch order, each a step after it.
    recent: Option<SealKey>,
    /// Epochs seen, with where.
    epochs: Vec<(u64, Place)>,
    /// Dumps whose epoch is not above the one before in their input.
    out_of_order: Vec<EpochProblem>,
    /// The newest epoch the auditor knows was sealed.
    last: Option<u64>,
    /// Every readable seal of the dumps given (intact or not), with where.
    seals: Vec<(Seal, Option<SignatureBody>, Place)>,
    /// Seals forwarded off the device, with where their notice is.
    forwarded: Vec<(Seal, Option<SignatureBody>, String)>,
}

/// Distance between remembered derived keys.
const CHECKPOINT: u64 = 1024;

impl Verifier {
    /// A verifier for the key `(k[e0], e0)`.
    pub fn new(key: SealKey) -> Self {
        let mut v = Self::empty(key.epoch());
        v.base = Some(key);
        v
    }

    /// A verifier for the public key of epoch `e0`: checks signatures and contents (not
    /// MACs: that needs the verification key).
    pub fn with_public_key(epoch: u64, key: VerifyingKey) -> Self {
        let mut v = Self::empty(epoch);
        v.public = Some(key);
        v
    }

    /// Checks MACs with `key` as well (its epoch must be the public key's).
    pub fn add_key(&mut self, key: SealKey) {
        self.first_epoch = self.first_epoch.min(key.epoch());
        self.base = Some(key);
    }

    fn empty(first_epoch: u64) -> Self {
        Verifier {
            base: None,
            first_epoch,
            public: None,
            signed: Vec::new(),
            checkpoints: BTreeMap::new(),
            recent: None,
            epochs: Vec::new(),
            out_of_order: Vec::new(),
            last: None,
            seals: Vec::new(),
            forwarded: Vec::new(),
        }
    }

    /// Adds a seal forwarded off the device: a dump notice's `seal` and `sig` bodies
    /// (`SEALING.md` section 7), `notice` saying where it was read. [`finish`](Self::finish)
    /// then fails unless a dump given carries exactly this seal (and signature), and
    /// expects every epoch up to the newest forwarded one (as
    /// [`expect_last`](Self::expect_last)). With the verification key, the forwarded
    /// seal's own MAC is checked too. `Err` if the bodies are not version-1 bodies.
    pub fn add_forwarded(
        &mut self,
        notice: String,
        seal: &[u8],
        signature: Option<&[u8]>,
    ) -> Result<(), String> {
        let parsed = Seal::parse(seal).ok_or("not a version-1 seal body")?;
        let sig = match signature {
            Some(b) => Some(SignatureBody::parse(b).ok_or("not a version-1 signature body")?),
            None => None,
        };
        self.last = self.last.max(Some(parsed.epoch));
        self.forwarded.push((parsed, sig, notice));
        Ok(())
    }

    /// The problems of the forwarded seals (see [`add_forwarded`](Self::add_forwarded)).
    fn check_forwarded(&mut self) -> Vec<EpochProblem> {
        let mut problems = Vec::new();
        for (seal, sig, notice) in std::mem::take(&mut self.forwarded) {
            let epoch = seal.epoch;
            // Without the verification key a forwarded seal is judged by the dump's (whose
            // signature chain is checked) being the same bytes.
            let forged = self.base.is_some() && !self.key(epoch).is_some_and(|k| seal.check(&k));
            if forged {
                problems.push(EpochProblem::ForwardedForged { epoch, notice });
                continue;
            }
            let mut found = false;
            for (s, dump_sig, place) in self.seals.iter().filter(|(s, _, _)| s.epoch == epoch) {
                found = true;
                // A signature is compared where both have one (a stripped one fails the
                // signature check, with a public key).
                if *s != seal || (sig.is_some() && dump_sig.is_some() && *dump_sig != sig) {
                    problems.push(EpochProblem::ForwardedDiffers {
                        epoch,
                        notice: notice.clone(),
                        place: place.clone(),
                    });
                }
            }
            if !found {
                problems.push(EpochProblem::ForwardedWithoutDump { epoch, notice });
            }
        }
        problems
    }

    /// Tells the verifier that epoch `last` was sealed (the auditor saw its seal elsewhere,
    /// e.g. forwarded off the device): fewer epochs given is a failure. Without it, deleting
    /// the newest dumps cannot be seen (`SEALING.md` section 4).
    pub fn expect_last(&mut self, last: u64) {
        self.last = Some(last);
    }

    /// The key of `epoch`, `None` if it is before the verification key's.
    fn key(&mut self, epoch: u64) -> Option<SealKey> {
        let base = self.base.as_ref()?;
        let (&from, start) = self
            .checkpoints
            .range(..=epoch)
            .next_back()
            .unwrap_or((&base.epoch(), base));
        if epoch < from {
            return None;
        }
        let mut k = match &self.recent {
            Some(r) if (from..=epoch).contains(&r.epoch()) => SealKey::new(*r.secret(), r.epoch()),
            _ => SealKey::new(*start.secret(), from),
        };
        while k.epoch() < epoch {
            k.evolve();
            if k.epoch() % CHECKPOINT == 0 {
                self.checkpoints
                    .insert(k.epoch(), SealKey::new(*k.secret(), k.epoch()));
            }
        }
        self.recent = Some(SealKey::new(*k.secret(), k.epoch()));
        Some(k)
    }

    /// Verifies every dump of `input`, named `name` in the verdicts. I/O errors end it.
    pub fn verify_input<R: Read>(&mut self, name: &str, input: R) -> io::Result<Vec<DumpVerdict>> {
        let mut scan = Scan::new(input);
        let mut verdicts = Vec::new();
        let mut index = 0;
        let mut last_epoch: Option<u64> = None;
        while let Some(found) = scan.next_dump()? {
            match found {
                Found::Outside { offset, len, seal } => {
                    let place = Place {
                        input: name.to_owned(),
                        dump: index,
                        offset,
                    };
                    let epoch = seal.map(|s| s.epoch);
                    if let Some(s) = seal {
                        self.seals.push((s, None, place.clone()));
                    }
                    if let Some(e) = epoch {
                        // A dump whose magic is damaged: its epoch is not missing.
                        self.epochs.push((e, place.clone()));
                        index += 1;
                    }
                    verdicts.push(DumpVerdict {
                        place,
                        epoch,
                        seqs: None,
                        records: 0,
                        last_seq: None,
                        fault: Some(Fault::Outside { len }),
                    });
                }
                Found::Dump(mut d) => {
                    let place = Place {
                        input: name.to_owned(),
                        dump: index,
                        offset: d.offset,
                    };
                    index += 1;
                    if d.fault.is_none() {
                        if let Some(seal) = &d.seal {
                            d.fault = self.check_seal(seal, d.len, &d.hash);
                            if d.fault.is_none() {
                                self.signed.push((*seal, d.sig, place.clone()));
                            }
                        }
                    }
                    if let Some(seal) = d.seal {
                        self.seals.push((seal, d.sig, place.clone()));
                    }
                    if let Some(epoch) = d.seal.as_ref().map(|s| s.epoch) {
                        // Reported by `finish`, with the problems across inputs.
                        if let Some(previous) = last_epoch.filter(|&p| p >= epoch) {
                            self.out_of_order.push(EpochProblem::OutOfOrder {
                                place: place.clone(),
                                epoch,
                                previous,
                            });
                        }
                        self.epochs.push((epoch, place.clone()));
                        last_epoch = Some(epoch);
                    }
                    verdicts.push(DumpVerdict {
                        place,
                        epoch: d.seal.map(|s| s.epoch),
                        seqs: d.seqs,
                        records: d.records,
                        last_seq: d.last_seq,
                        fault: d.fault,
                    });
                }
            }
        }
        Ok(verdicts)
    }

    /// Checks a seal kept apart from what it seals (an audit log's sidecar, `SEALING.md`
    /// section 9): `len` and `hash` are the sealed bytes' as the caller found them. A seal
    /// that checks joins the signature chain that [`finish`](Self::finish) walks (named by
    /// `place`); its epoch is not counted among the dumps'.
    pub fn check_detached(
        &mut self,
        seal: &Seal,
        len: u64,
        hash: &[u8; 32],
        sig: Option<SignatureBody>,
        place: Place,
    ) -> Option<Fault> {
        let mut fault = self.check_seal(seal, len, hash);
        if let (None, Some(sig), true) = (&fault, &sig, self.base.is_some()) {
            // With the key, each signature is checked on its own (its public keys derived):
            // no chain through the seals of other files is needed.
            let this = self.key(seal.epoch);
            let next = self.key(seal.epoch.saturating_add(1));
            let good = match (this, next) {
                (Some(k), Some(n)) => {
                    sig.check(&crate::sign::public_key(&k), seal)
                        && sig.next_pub == crate::sign::public_key(&n).to_bytes()
                }
                _ => false,
            };
            if !good {
                fault = Some(Fault::Signature(
                    "not made by this epoch's key, or its next public key is not the next epoch's",
                ));
            }
        }
        if fault.is_none() {
            self.signed.push((*seal, sig, place));
        }
        fault
    }

    fn check_seal(&mut self, seal: &Seal, len: u64, hash: &[u8; 32]) -> Option<Fault> {
        if seal.dump_len != len || &seal.dump_hash != hash {
            return Some(Fault::Contents {
                sealed_len: seal.dump_len,
                len,
            });
        }
        if self.base.is_none() {
            return (seal.epoch < self.first_epoch).then_some(Fault::EpochBeforeKey {
                key: self.first_epoch,
            });
        }
        match self.key(seal.epoch) {
            None => Some(Fault::EpochBeforeKey {
                key: self.first_epoch,
            }),
            Some(k) if seal.check(&k) => None,
            Some(_) => Some(Fault::Mac),
        }
    }

    /// With a public key, checks the signature chain from the first epoch on, and fails
    /// the dumps in `verdicts` whose signature fails or cannot be checked.
    fn check_signatures(&mut self, verdicts: &mut [DumpVerdict]) {
        let Some(first) = self.public else {
            return;
        };
        let mut signed = std::mem::take(&mut self.signed);
        signed.sort_by_key(|(seal, _, _)| seal.epoch);
        // The public key of the epoch expected next; `None` once the chain is broken.
        let mut expected = Some((self.first_epoch, first));
        for (seal, sig, place) in signed {
            let fault = match (sig, expected) {
                (None, _) => {
                    expected = None;
                    Some("no signature frame after the seal")
                }
                (Some(sig), Some((epoch, public))) if epoch == seal.epoch => {
                    if sig.check(&public, &seal) {
                        expected = VerifyingKey::from_bytes(&sig.next_pub)
                            .ok()
                            .map(|k| (epoch.saturating_add(1), k));
                        None
                    } else {
                        expected = None;
                        Some("not made by this epoch's key (forged, or another device's)")
                    }
                }
                (Some(_), _) => {
                    expected = None;
                    Some("cannot be checked: the chain of public keys is broken before this epoch (a dump missing, repeated or failed)")
                }
            };
            if let Some(why) = fault {
                if let Some(v) = verdicts.iter_mut().find(|v| v.place == place) {
                    v.fault.get_or_insert(Fault::Signature(why));
                }
            }
        }
    }

    /// Checks the signature chain (with a public key; failing dumps in `verdicts`) and the
    /// epochs of every dump seen: each from the key's epoch to the highest seen, once, in
    /// increasing order within each input.
    pub fn finish(mut self, verdicts: &mut [DumpVerdict]) -> Vec<EpochProblem> {
        self.check_signatures(verdicts);
        let mut problems = std::mem::take(&mut self.out_of_order);
        problems.extend(self.check_forwarded());
        let mut by_epoch: Vec<(u64, Place)> = std::mem::take(&mut self.epochs);
        by_epoch.sort_by_key(|(e, _)| *e);
        let mut expected = self.first_epoch;
        let mut prev: Option<(u64, Place)> = None;
        for (epoch, place) in by_epoch {
            if let Some((pe, pp)) = prev.as_ref().filter(|(pe, _)| *pe == epoch) {
                problems.push(EpochProblem::Repeated {
                    epoch: *pe,
                    first: pp.clone(),
                    again: place,
                });
                continue;
            }
            if epoch > expected {
                problems.push(EpochProblem::Missing {
                    from: expected,
                    to: epoch - 1,
                    after: prev.as_ref().map(|(_, p)| p.clone()),
                    before: Some(place.clone()),
                });
            }
            expected = epoch.saturating_add(1);
            prev = Some((epoch, place));
        }
        if let Some(last) = self.last.filter(|&l| l >= expected) {
            problems.push(EpochProblem::Missing {
                from: expected,
                to: last,
                after: prev.map(|(_, p)| p),
                before: None,
            });
        }
        problems
    }
}

/// One thing found in an input.
enum Found {
    /// Bytes outside dumps that are not erased flash (with a seal frame found among them:
    /// a dump whose magic is damaged).
    Outside {
        offset: u64,
        len: u64,
        seal: Option<Seal>,
    },
    /// A dump, checked as far as its first fault.
    Dump(Box<Scanned>),
}

/// A dump as read: its hash and seal, and its first structural fault.
struct Scanned {
    offset: u64,
    /// Bytes from the magic through the end frame's CRC.
    len: u64,
    hash: [u8; 32],
    /// Its seal frame, when readable (for a damaged dump: found while skipping it).
    seal: Option<Seal>,
    /// The signature frame after the seal, if any.
    sig: Option<SignatureBody>,
    seqs: Option<(u64, u64)>,
    records: u64,
    last_seq: Option<u64>,
    fault: Option<Fault>,
}

/// Where in a dump the scan is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Header,
    Records,
    Seal,
}

/// The input through the decoder's bounded window.
struct Scan<R> {
    win: Window<R>,
}

/// The first bytes of a version-1 seal frame: sync, type, body length.
const SEAL_HEAD: [u8; 4] = [SYNC, FRAME_SEAL, SEAL_BODY_LEN as u8, 0];

impl<R: Read> Scan<R> {
    fn new(input: R) -> Self {
        Scan {
            win: Window::new(input),
        }
    }

    fn offset(&self) -> u64 {
        self.win.offset()
    }

    fn avail(&self) -> &[u8] {
        self.win.avail()
    }

    /// Makes at least `need` (at most [`MAX_FRAME`]) bytes available unless the input ends.
    fn fill(&mut self, need: usize) -> io::Result<()> {
        self.win.fill(need)
    }

    /// The next dump or run of foreign bytes; `None` at the end of the input.
    fn next_dump(&mut self) -> io::Result<Option<Found>> {
        loop {
            self.fill(MAGIC.len())?;
            let avail = self.avail();
            if avail.is_empty() {
                return Ok(None);
            }
            let erased = avail.iter().take_while(|&&b| b == 0xFF).count();
            if erased > 0 {
                self.win.start += erased;
                continue;
            }
            if avail.starts_with(&MAGIC) {
                return self.dump().map(|d| Some(Found::Dump(Box::new(d))));
            }
            let offset = self.offset();
            let mut seal = None;
            self.skip_to_magic(Some(&mut seal))?;
            let len = self.offset() - offset;
            return Ok(Some(Found::Outside { offset, len, seal }));
        }
    }

    /// Moves past at least one byte, to the next magic or the end of the input. A whole
    /// version-1 seal frame passed on the way is kept in `seal` (the damaged dump's epoch).
    fn skip_to_magic(&mut self, mut seal: Option<&mut Option<Seal>>) -> io::Result<()> {
        let mut first = true;
        loop {
            self.fill(CHUNK)?;
            let avail = self.avail();
            if avail.is_empty() {
                return Ok(());
            }
            let from = usize::from(first);
            first = false;
            let hay = avail.get(from..).unwrap_or(&[]);
            let found = memchr::memmem::find(hay, &MAGIC).map(|i| i + from);
            // Without a magic, keep what may be the front of one (or of a seal frame).
            let upto = match found {
                Some(i) => i,
                None if self.win.eof => avail.len(),
                None => avail.len().saturating_sub(MAX_FRAME).max(from),
            };
            if let Some(seal) = seal.as_deref_mut() {
                let region = avail.get(..upto.saturating_add(MAX_FRAME).min(avail.len()));
                for i in memchr::memmem::find_iter(region.unwrap_or(&[]), &SEAL_HEAD) {
                    if i >= upto {
                        break;
                    }
                    if let Some(found) = whole_seal(avail.get(i..).unwrap_or(&[])) {
                        *seal = Some(found);
                    }
                }
            }
            self.win.start += upto;
            if found.is_some() || self.win.eof && self.avail().is_empty() {
                return Ok(());
            }
        }
    }

    /// Reads the dump at the magic the caller found.
    fn dump(&mut self) -> io::Result<Scanned> {
        let mut d = Scanned {
            offset: self.offset(),
            len: 0,
            hash: [0; 32],
            seal: None,
            sig: None,
            seqs: None,
            records: 0,
            last_seq: None,
            fault: None,
        };
        let mut hasher = Sha256::new();
        self.fill(MAGIC.len() + 1)?;
        match self.avail().get(MAGIC.len()) {
            None => {
                self.win.start = self.win.end;
                d.fault = Some(Fault::Unsealed {
                    at: d.offset,
                    why: "the input ends inside the magic",
                });
                return Ok(d);
            }
            Some(&v) if v != VERSION => {
                d.fault = Some(Fault::Version(v));
                self.skip_to_magic(Some(&mut d.seal))?;
                return Ok(d);
            }
            Some(_) => {}
        }
        hasher.update(self.avail().get(..MAGIC.len() + 1).unwrap_or(&[]));
        self.win.start += MAGIC.len() + 1;
        d.len = MAGIC.len() as u64 + 1;
        let mut expect = Expect::Header;
        loop {
            self.fill(MAX_FRAME)?;
            let at = self.offset();
            let avail = self.avail();
            if avail.is_empty() || avail.starts_with(&MAGIC) {
                d.fault = Some(Fault::Unsealed {
                    at,
                    why: match (avail.is_empty(), expect) {
                        (true, Expect::Seal) => "the input ends after the end frame",
                        (true, _) => "the input ends before the end frame (truncated)",
                        (false, Expect::Seal) => "another dump begins after the end frame",
                        (false, _) => "another dump begins before the end frame (truncated)",
                    },
                });
                return Ok(d);
            }
            let parsed = match frame(avail) {
                Ok(f) => f,
                Err(why) => {
                    d.fault = Some(Fault::Frame { at, why });
                    self.skip_to_magic(Some(&mut d.seal))?;
                    return Ok(d);
                }
            };
            let (ty, body, whole) = parsed;
            match (expect, ty) {
                (Expect::Seal, FRAME_SEAL) => {
                    d.seal = Seal::parse(body);
                    if d.seal.is_none() {
                        d.fault = Some(Fault::BadSeal { at });
                    }
                    self.win.start += whole;
                    d.hash = hasher.finalize().into();
                    // A signature frame may follow (hosts, SEALING.md section 6).
                    self.fill(MAX_FRAME)?;
                    if let Ok((FRAME_SIGNATURE, body, whole)) = frame(self.avail()) {
                        d.sig = SignatureBody::parse(body);
                        self.win.start += whole;
                    }
                    return Ok(d);
                }
                (Expect::Seal, _) => {
                    d.fault = Some(Fault::Unsealed {
                        at,
                        why: "the end frame is followed by no seal frame",
                    });
                    self.skip_to_magic(Some(&mut d.seal))?;
                    return Ok(d);
                }
                (Expect::Header, FRAME_HEADER) => {
                    match postcard::take_from_bytes::<DumpHeader<'_>>(body) {
                        // A header that leaves its range open: a ring file's region.
                        Ok((h, _)) if h.next_seq == flightrec_core::dump::OPEN_RANGE => {
                            d.fault = Some(Fault::Unsealed {
                                at,
                                why: "a ring file's region, rewritten in place and never \
                                      sealed (the run after a crash seals its records in a \
                                      death dump: core/SEALING.md section 10)",
                            })
                        }
                        Ok((h, _)) => d.seqs = Some((h.first_seq, h.next_seq)),
                        Err(_) => {
                            d.fault = Some(Fault::Structure {
                                at,
                                why: "header frame does not decode".to_owned(),
                            })
                        }
                    }
                    expect = Expect::Records;
                }
                (Expect::Header, _) => {
                    d.fault = Some(Fault::Structure {
                        at,
                        why: "the first frame is not a header frame".to_owned(),
                    })
                }
                (Expect::Records, FRAME_RECORD) => {
                    d.fault = record_fault(&mut d, body).map(|why| Fault::Structure { at, why });
                }
                (Expect::Records, FRAME_END) => {
                    d.fault = match postcard::take_from_bytes::<DumpEnd>(body) {
                        Ok((end, _)) if end.records == d.records => None,
                        Ok((end, _)) => Some(format!(
                            "the end frame counts {} records, {} are here (records removed or added)",
                            end.records, d.records
                        )),
                        Err(_) => Some("end frame does not decode".to_owned()),
                    }
                    .map(|why| Fault::Structure { at, why });
                    expect = Expect::Seal;
                }
                (Expect::Records, FRAME_SEAL | FRAME_HEADER) => {
                    d.fault = Some(Fault::Unsealed {
                        at,
                        why: "a seal or header frame before the end frame (truncated)",
                    })
                }
                // Frames of types this version does not know are part of the sealed bytes.
                (Expect::Records, _) => {}
            }
            if d.fault.is_some() {
                self.skip_to_magic(Some(&mut d.seal))?;
                return Ok(d);
            }
            hasher.update(self.avail().get(..whole).unwrap_or(&[]));
            d.len += whole as u64;
            self.win.start += whole;
        }
    }
}

/// Checks a record frame's head against the dump so far; counts it.
fn record_fault(d: &mut Scanned, body: &[u8]) -> Option<String> {
    let Ok((head, _)) = postcard::take_from_bytes::<RecordHead>(body) else {
        return Some("record head does not decode".to_owned());
    };
    if let Some(last) = d.last_seq.filter(|&l| head.seq <= l) {
        return Some(format!(
            "record {} after record {last} (records duplicated or reordered)",
            head.seq
        ));
    }
    if let Some((first, next)) = d.seqs.filter(|&(f, n)| head.seq < f || head.seq >= n) {
        return Some(format!(
            "record {} outside the header's range {first}..{next}",
            head.seq
        ));
    }
    d.records += 1;
    d.last_seq = Some(head.seq);
    None
}

/// The frame at the front of `avail`: type, body, whole length; or why it is not whole.
fn frame(avail: &[u8]) -> Result<(u8, &[u8], usize), &'static str> {
    let Some(&[sync, ty, l0, l1]) = avail.first_chunk::<4>() else {
        return Err("cut off: the input ends inside it");
    };
    if sync != SYNC {
        return Err("no frame starts here (sync byte is not FE)");
    }
    let len = usize::from(u16::from_le_bytes([l0, l1]));
    let whole = FRAME_OVERHEAD + len;
    let Some(frame) = avail.get(..whole) else {
        return Err("cut off: its length runs past the end of the input");
    };
    let checked = frame.get(1..4 + len).unwrap_or(&[]);
    let stored = frame.get(4 + len..).and_then(|c| c.try_into().ok());
    if stored.map(u32::from_le_bytes) != Some(crc32fast::hash(checked)) {
        return Err("CRC mismatch");
    }
    Ok((ty, frame.get(4..4 + len).unwrap_or(&[]), whole))
}

/// A whole version-1 seal frame at the front of `bytes`.
fn whole_seal(bytes: &[u8]) -> Option<Seal> {
    match frame(bytes) {
        Ok((FRAME_SEAL, body, _)) => Seal::parse(body),
        _ => None,
    }
}
