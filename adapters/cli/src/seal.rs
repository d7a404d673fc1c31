//! `flightrec verify` and `flightrec keygen`: sealed dumps (`core/SEALING.md`).

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::Args;
use flightrec_audit::rfc5424;
use flightrec_core::seal::SealKey;
use flightrec_core::seal::SEAL_BODY_LEN;
use flightrec_decode::auditseal::{audit_key, AuditVerifier};
use flightrec_decode::sign::SIGNATURE_BODY_LEN;
use flightrec_decode::sign::{parse_audit_pub, parse_pub_file, pub_file_text};
use flightrec_decode::verify::{key_file_text, parse_hex, parse_key_file, DumpVerdict, Verifier};

use flightrec_core::dump::MAGIC;
use flightrec_decode::flash::FlashImage;

use crate::open::{kind, open_regular, read_key_text};
use crate::{sealed_audit, shown, EXIT_DAMAGED, EXIT_ERROR, EXIT_OK};

/// Arguments of `flightrec verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Files of dumps, flash-store images, audit logs with their sidecars (`<log>.seal`),
    /// directories (searched recursively; files there holding no dump are skipped, but an
    /// audit log, `*.log` or `*.log.N`, without a sidecar fails, and so does a link, FIFO,
    /// socket or device found there: neither followed nor read). Finding nothing to check
    /// fails too.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The verification key (`flightrec keygen`'s verify key): checks every seal's MAC.
    #[arg(long, value_name = "FILE", required_unless_present = "pubkey")]
    pub key: Option<PathBuf>,
    /// The public key (`flightrec keygen`'s verify.pub): checks every seal's signature
    /// (dumps written by hosts; microcontrollers do not sign). Cannot forge seals.
    #[arg(long, value_name = "FILE")]
    pub pubkey: Option<PathBuf>,
    /// The newest epoch known to have been sealed (from seals forwarded off the device):
    /// dumps missing up to it fail. Without it, deleting the newest dumps goes unseen.
    #[arg(long, value_name = "EPOCH")]
    pub last_epoch: Option<u64>,
    /// A collector's file of this device's forwarded RFC 5424 messages (repeatable; the
    /// collector's per-gateway file: another device's notices fail as forged): every dump
    /// notice carrying a seal must match a dump given, byte for byte, and every epoch up to
    /// the newest forwarded one must be there (`SEALING.md` section 7).
    #[arg(long, value_name = "FILE")]
    pub forwarded: Vec<PathBuf>,
}

/// The keys `decode` and `audit` take to show a seal status.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The verification key: show each file's seal status (as `flightrec verify`); damage
    /// or a missing seal makes the exit status 1.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The public key: as --key, checking signatures.
    #[arg(long, value_name = "FILE")]
    pub pubkey: Option<PathBuf>,
}

/// After `decode` or `audit` exited with `code`: with a key, verifies `files` (as `flightrec
/// verify`), says each line of its report on `err` after `seal: `, and returns the exit
/// status of both (the worse).
pub(crate) fn with_status(code: u8, keys: &KeyArgs, files: &[PathBuf], err: &mut dyn Write) -> u8 {
    if keys.key.is_none() && keys.pubkey.is_none() {
        return code;
    }
    if files.is_empty() {
        let _ = writeln!(
            err,
            "seal: no file given to check (standard input is not checked)"
        );
        return code.max(EXIT_DAMAGED);
    }
    let args = VerifyArgs {
        paths: files.to_vec(),
        key: keys.key.clone(),
        pubkey: keys.pubkey.clone(),
        last_epoch: None,
        forwarded: Vec::new(),
    };
    let mut report = Vec::new();
    let mut notes = Vec::new();
    let status = verify(&args, &mut report, &mut notes);
    for line in String::from_utf8_lossy(&report)
        .lines()
        .chain(String::from_utf8_lossy(&notes).lines())
    {
        let _ = writeln!(err, "seal: {line}");
    }
    code.max(status)
}

/// Arguments of `flightrec keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the device's sealing key (created 0600; an existing file is refused).
    #[arg(long, value_name = "FILE")]
    pub device: PathBuf,
    /// Where to write the auditor's verification key (created 0600; an existing file is
    /// refused). It can seal too: keep it off the device.
    #[arg(long, value_name = "FILE")]
    pub verify: PathBuf,
    /// Where to write the public key, for auditors who must not be able to forge (created
    /// 0600; an existing file is refused).
    #[arg(long, value_name = "FILE")]
    pub public: Option<PathBuf>,
    /// Where to write the device's audit sealing key (`[audit] seal_key`; its own stream of
    /// epochs, checked with the same verification and public keys; created 0600).
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
}

/// Reads a key file.
pub fn read_key(path: &Path) -> Result<SealKey, String> {
    let text = read_key_text(path).map_err(|e| format!("{}: {e}", shown(path)))?;
    parse_key_file(&text).map_err(|e| format!("{}: {e}", shown(path)))
}

/// Creates `path` 0600 (never through a link, never over an existing file) holding `text`,
/// made durable.
pub fn write_new_file(path: &Path, text: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text)?;
    f.sync_all()
}

pub(crate) fn keygen(a: &KeygenArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let mut secret = [0u8; 32];
    if let Err(e) = getrandom::getrandom(&mut secret) {
        let _ = writeln!(err, "flightrec: no random bytes from the system: {e}");
        return EXIT_ERROR;
    }
    let key = SealKey::new(secret, 0);
    secret.fill(0);
    let text = key_file_text(&key);
    let public = pub_file_text(&key);
    let audit = key_file_text(&audit_key(&key));
    let files = [&a.device, &a.verify]
        .map(|p| (p, text.as_str()))
        .into_iter()
        .chain(a.public.as_ref().map(|p| (p, public.as_str())))
        .chain(a.audit.as_ref().map(|p| (p, audit.as_str())));
    for (path, text) in files {
        if let Err(e) = write_new_file(path, text.as_bytes()) {
            let _ = writeln!(err, "flightrec: cannot create {}: {e}", shown(path));
            return EXIT_ERROR;
        }
    }
    let _ = writeln!(
        out,
        "sealing key (epoch 0) written to {} for the device, and to {} for the auditor (keep it off the device)",
        shown(&a.device),
        shown(&a.verify)
    );
    EXIT_OK
}

/// Verifies the dumps of the file at `path`: a file of dumps as it is, a flash-store image
/// (paged layout) dump by dump. Returns the verdicts and whether the image itself is
/// damaged (reported on `err`).
fn verify_file(
    verifier: &mut Verifier,
    input: &Input,
    err: &mut dyn Write,
) -> io::Result<(Vec<DumpVerdict>, bool)> {
    let path = &input.path;
    let name = shown(path);
    let mut file = open_regular(path, !input.from_dir)?;
    let mut start = Vec::with_capacity(MAGIC.len());
    (&mut file)
        .take(MAGIC.len() as u64)
        .read_to_end(&mut start)?;
    file.rewind()?;
    if !start.starts_with(&MAGIC) {
        // The clone shares the file's offset: rewound again below when it is no image.
        if let Some(mut image) = FlashImage::open(file.try_clone()?)? {
            let (mut verdicts, mut damaged) = (Vec::new(), false);
            image.rewind();
            while let Some(d) = image.next_dump()? {
                let part = format!("{name} (flash page {})", d.first_page);
                for t in &d.trouble {
                    damaged |= t.is_damage();
                    let _ = writeln!(err, "flightrec: {part}: {t}");
                }
                let data = image.data(&d);
                verdicts.extend(verifier.verify_input(&part, data)?);
            }
            return Ok((verdicts, damaged));
        }
        file.rewind()?;
    }
    Ok((verifier.verify_input(&name, file)?, false))
}

/// Longest line of a collector's file looked at; longer ones are skipped (a dump notice is
/// well under it).
const MAX_NOTICE_LINE: u64 = 64 * 1024;

/// Adds the seals of the dump notices in the collector's file at `path` to `verifier`:
/// how many, and the notices whose seal is unreadable (failures).
fn add_forwarded(verifier: &mut Verifier, path: &Path) -> io::Result<(u64, Vec<String>)> {
    let mut input = io::BufReader::new(open_regular(path, true)?);
    let (mut found, mut bad) = (0u64, Vec::new());
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = (&mut input)
            .take(MAX_NOTICE_LINE)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        number += 1;
        if !line.ends_with(b"\n") && n as u64 == MAX_NOTICE_LINE {
            // Too long for a notice: skip the rest of it, within the same bound.
            while !line.ends_with(b"\n") {
                line.clear();
                if (&mut input)
                    .take(MAX_NOTICE_LINE)
                    .read_until(b'\n', &mut line)?
                    == 0
                {
                    break;
                }
            }
            continue;
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            continue;
        };
        let Ok(m) = rfc5424::parse(text.trim_end_matches(['\n', '\r'])) else {
            continue;
        };
        let Some(sd) = m.sd.iter().find(|e| e.param("seal").is_some()) else {
            continue;
        };
        if m.msgid.as_deref() != Some("dump") {
            continue;
        }
        let place = format!("{} line {number}", shown(path));
        let seal = sd.param("seal").and_then(parse_hex::<SEAL_BODY_LEN>);
        let sig = sd.param("sig").map(parse_hex::<SIGNATURE_BODY_LEN>);
        let added = match (seal, sig) {
            (Some(seal), None) => verifier.add_forwarded(place.clone(), &seal, None),
            (Some(seal), Some(Some(sig))) => {
                verifier.add_forwarded(place.clone(), &seal, Some(&sig))
            }
            _ => Err("seal or sig is not hex of a version-1 body".to_owned()),
        };
        match added {
            Ok(()) => found += 1,
            Err(e) => bad.push(format!("{place}: forwarded seal unreadable: {e}")),
        }
    }
    Ok((found, bad))
}

/// One input to verify: a path given, or a file found in a directory given.
struct Input {
    path: PathBuf,
    /// Found in a directory: opened without following a link.
    from_dir: bool,
    /// Not a regular file (what it is): not read, a failure.
    refused: Option<&'static str>,
}

/// Files under `dir`, sorted, recursively. Whatever is neither a directory nor a regular
/// file (a link, a FIFO, a socket, a device) is listed as refused: not followed nor read,
/// and a failure, as evidence replaced by a link or a FIFO must not pass unseen.
fn walk(dir: &Path, found: &mut Vec<Input>) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let ty = e.file_type()?;
        if ty.is_dir() {
            walk(&path, found)?;
        } else {
            found.push(Input {
                path,
                from_dir: true,
                refused: (!ty.is_file()).then(|| kind(ty)),
            });
        }
    }
    Ok(())
}

/// The verifiers for the keys given: of dumps, and of audit seals (their own stream of
/// epochs, `SEALING.md` section 9; `None` with a public key file that has no `audit-pub`).
fn verifier(a: &VerifyArgs) -> Result<(Verifier, Option<AuditVerifier>), String> {
    let key = a.key.as_deref().map(read_key).transpose()?;
    let public = match &a.pubkey {
        Some(p) => {
            let text = read_key_text(p).map_err(|e| format!("{}: {e}", shown(p)))?;
            let dumps = parse_pub_file(&text).map_err(|e| format!("{}: {e}", shown(p)))?;
            let audit = parse_audit_pub(&text).map_err(|e| format!("{}: {e}", shown(p)))?;
            Some((dumps, audit))
        }
        None => None,
    };
    Ok(match (key, public) {
        (Some(k), None) => {
            let audit = AuditVerifier::new(Verifier::new(audit_key(&k)), k.epoch());
            (Verifier::new(k), Some(audit))
        }
        (key, Some(((epoch, public), audit_pub))) => {
            let mut v = Verifier::with_public_key(epoch, public);
            let mut audit = audit_pub.map(|p| Verifier::with_public_key(epoch, p));
            let mut first = epoch;
            if let Some(k) = key {
                match audit.as_mut() {
                    Some(av) => av.add_key(audit_key(&k)),
                    None => audit = Some(Verifier::new(audit_key(&k))),
                }
                first = first.min(k.epoch());
                v.add_key(k);
            }
            (v, audit.map(|a| AuditVerifier::new(a, first)))
        }
        (None, None) => return Err("give --key or --pubkey".to_owned()),
    })
}

/// A file name an audit log has (`*.log`, `*.log.N`): found in a directory without a dump
/// in it nor a sidecar beside it, it is an unsealed audit log.
fn looks_like_log(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".log")
        || name
            .rsplit_once(".log.")
            .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

pub(crate) fn verify(a: &VerifyArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let (mut verifier, audit_verifier) = match verifier(a) {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(err, "flightrec: {e}");
            return EXIT_ERROR;
        }
    };
    let mut inputs = Vec::new();
    for p in &a.paths {
        let walked = match fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut inputs),
            Ok(m) => {
                inputs.push(Input {
                    path: p.clone(),
                    from_dir: false,
                    refused: (!m.is_file()).then(|| kind(m.file_type())),
                });
                Ok(())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = walked {
            let _ = writeln!(err, "flightrec: {}: {e}", shown(p));
            return EXIT_ERROR;
        }
    }
    if let Some(last) = a.last_epoch {
        verifier.expect_last(last);
    }
    let mut bad = 0u64;
    for path in &a.forwarded {
        match add_forwarded(&mut verifier, path) {
            Ok((found, unreadable)) => {
                let _ = writeln!(out, "{found} forwarded seals read from {}", shown(path));
                for u in unreadable {
                    bad += 1;
                    let _ = writeln!(out, "FAIL {u}");
                }
            }
            Err(e) => {
                let _ = writeln!(err, "flightrec: {}: {e}", shown(path));
                return EXIT_ERROR;
            }
        }
    }
    for input in inputs.iter().filter(|i| i.refused.is_some()) {
        bad += 1;
        let _ = writeln!(
            out,
            "FAIL {}: {}, not a regular file: not checked",
            shown(&input.path),
            input.refused.unwrap_or_default()
        );
    }
    inputs.retain(|i| i.refused.is_none());
    // Audit logs with their sidecars first: what they take is not read as dumps.
    let paths: Vec<PathBuf> = inputs.iter().map(|i| i.path.clone()).collect();
    let (families, taken) = match sealed_audit::families(&paths) {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(err, "flightrec: {e}");
            return EXIT_ERROR;
        }
    };
    inputs.retain(|i| !taken.contains(&i.path));
    let audit_lines = match (audit_verifier, families.is_empty()) {
        (_, true) => Vec::new(),
        (Some(av), false) => match sealed_audit::verify(av, &families) {
            Ok(lines) => lines,
            Err(e) => {
                let _ = writeln!(err, "flightrec: {e}");
                return EXIT_ERROR;
            }
        },
        (None, false) => {
            let _ = writeln!(
                err,
                "flightrec: the public key file has no audit-pub line: audit seals cannot be checked with it"
            );
            return EXIT_ERROR;
        }
    };
    let mut all = Vec::new();
    for input in &inputs {
        let name = shown(&input.path);
        let (verdicts, damaged) = match verify_file(&mut verifier, input, err) {
            Ok(v) => v,
            Err(e) => {
                let _ = writeln!(err, "flightrec: {name}: {e}");
                return EXIT_ERROR;
            }
        };
        if !verdicts.iter().any(DumpVerdict::is_dump) && !damaged {
            if looks_like_log(&input.path) {
                bad += 1;
                let _ = writeln!(
                    out,
                    "FAIL {name}: not sealed: an audit log without its seal sidecar ({name}.seal)"
                );
            } else if input.from_dir {
                let _ = writeln!(err, "flightrec: {name}: holds no dump: not checked");
            } else {
                bad += 1;
                let len = fs::metadata(&input.path).map_or(0, |m| m.len());
                let _ = writeln!(
                    out,
                    "FAIL {name}: no dump found at offset 0 in its {len} bytes (truncated, or not a dump file)"
                );
            }
            continue;
        }
        if damaged {
            bad += 1;
        }
        all.extend(verdicts);
    }
    // Printed once the signature chain (which spans inputs) is checked.
    let problems = verifier.finish(&mut all);
    let mut good = 0u64;
    for v in all {
        if v.fault.is_none() {
            good += 1;
            let _ = writeln!(out, "ok   {v}");
        } else {
            bad += 1;
            let _ = writeln!(out, "FAIL {v}");
        }
    }
    for problem in problems {
        bad += 1;
        let _ = writeln!(out, "FAIL {problem}");
    }
    let mut audit_good = 0u64;
    for line in &audit_lines {
        if line.failed {
            bad += 1;
        } else if line.text.starts_with("ok") {
            audit_good += 1;
        }
        let _ = writeln!(out, "{}", line.text);
    }
    // Audit files are counted when there are any (dump-only runs read as before).
    if good == 0 && bad == 0 && audit_lines.is_empty() {
        // A verifier that checked nothing must not report success: evidence deleted
        // whole (or a wrong path) would pass.
        bad += 1;
        let _ = writeln!(
            out,
            "FAIL nothing checked: no dump, flash image or sealed audit log found in what was given"
        );
    }
    let audit_count = if audit_lines.is_empty() {
        String::new()
    } else {
        format!("{audit_good} audit files sealed and intact, ")
    };
    let _ = writeln!(
        out,
        "{good} dumps sealed and intact, {audit_count}{bad} failures{}",
        if bad == 0 { "" } else { ": NOT INTACT" }
    );
    if bad == 0 {
        EXIT_OK
    } else {
        EXIT_DAMAGED
    }
}
