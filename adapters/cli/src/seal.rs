//! `flightrec verify` and `flightrec keygen`: sealed dumps (`core/SEALING.md`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::Args;
use flightrec_audit::rfc5424;
use flightrec_core::seal::SealKey;
use flightrec_core::seal::SEAL_BODY_LEN;
use flightrec_decode::sign::SIGNATURE_BODY_LEN;
use flightrec_decode::sign::{parse_pub_file, pub_file_text};
use flightrec_decode::verify::{key_file_text, parse_hex, parse_key_file, DumpVerdict, Verifier};

use flightrec_core::dump::MAGIC;
use flightrec_decode::flash::FlashImage;

use crate::{shown, EXIT_DAMAGED, EXIT_ERROR, EXIT_OK};

/// Arguments of `flightrec verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Files of dumps, flash-store images, directories (searched recursively; files there
    /// holding no dump are skipped).
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
}

/// Reads a key file.
pub fn read_key(path: &Path) -> Result<SealKey, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", shown(path)))?;
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
    let files = [&a.device, &a.verify]
        .map(|p| (p, text.as_str()))
        .into_iter()
        .chain(a.public.as_ref().map(|p| (p, public.as_str())));
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
    path: &Path,
    err: &mut dyn Write,
) -> io::Result<(Vec<DumpVerdict>, bool)> {
    let name = shown(path);
    let mut start = Vec::with_capacity(MAGIC.len());
    File::open(path)?
        .take(MAGIC.len() as u64)
        .read_to_end(&mut start)?;
    if !start.starts_with(&MAGIC) {
        if let Some(mut image) = FlashImage::open(File::open(path)?)? {
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
    }
    Ok((verifier.verify_input(&name, File::open(path)?)?, false))
}

/// Longest line of a collector's file looked at; longer ones are skipped (a dump notice is
/// well under it).
const MAX_NOTICE_LINE: u64 = 64 * 1024;

/// Adds the seals of the dump notices in the collector's file at `path` to `verifier`:
/// how many, and the notices whose seal is unreadable (failures).
fn add_forwarded(verifier: &mut Verifier, path: &Path) -> io::Result<(u64, Vec<String>)> {
    let mut input = io::BufReader::new(File::open(path)?);
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
    from_dir: bool,
}

/// Files under `dir`, sorted, recursively; links are not followed (reported).
fn walk(dir: &Path, found: &mut Vec<Input>, err: &mut dyn Write) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let ty = e.file_type()?;
        if ty.is_dir() {
            walk(&path, found, err)?;
        } else if ty.is_file() {
            found.push(Input {
                path,
                from_dir: true,
            });
        } else {
            let _ = writeln!(
                err,
                "flightrec: {}: not a regular file: not checked",
                shown(&path)
            );
        }
    }
    Ok(())
}

/// The verifier for the keys given.
fn verifier(a: &VerifyArgs) -> Result<Verifier, String> {
    let key = a.key.as_deref().map(read_key).transpose()?;
    let public = match &a.pubkey {
        Some(p) => {
            let text = fs::read_to_string(p).map_err(|e| format!("{}: {e}", shown(p)))?;
            Some(parse_pub_file(&text).map_err(|e| format!("{}: {e}", shown(p)))?)
        }
        None => None,
    };
    Ok(match (key, public) {
        (Some(k), None) => Verifier::new(k),
        (key, Some((epoch, public))) => {
            let mut v = Verifier::with_public_key(epoch, public);
            if let Some(k) = key {
                v.add_key(k);
            }
            v
        }
        (None, None) => return Err("give --key or --pubkey".to_owned()),
    })
}

pub(crate) fn verify(a: &VerifyArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let mut verifier = match verifier(a) {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(err, "flightrec: {e}");
            return EXIT_ERROR;
        }
    };
    let mut inputs = Vec::new();
    for p in &a.paths {
        let walked = match fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut inputs, err),
            Ok(_) => {
                inputs.push(Input {
                    path: p.clone(),
                    from_dir: false,
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
    let mut all = Vec::new();
    for input in &inputs {
        let name = shown(&input.path);
        let (verdicts, damaged) = match verify_file(&mut verifier, &input.path, err) {
            Ok(v) => v,
            Err(e) => {
                let _ = writeln!(err, "flightrec: {name}: {e}");
                return EXIT_ERROR;
            }
        };
        if !verdicts.iter().any(DumpVerdict::is_dump) && !damaged {
            if input.from_dir {
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
    let _ = writeln!(
        out,
        "{good} dumps sealed and intact, {bad} failures{}",
        if bad == 0 { "" } else { ": NOT INTACT" }
    );
    if bad == 0 {
        EXIT_OK
    } else {
        EXIT_DAMAGED
    }
}
