//! `flightrec verify` against a mutation corpus of sealed dumps (`core/SEALING.md`): every
//! mutation exits 1 and names the place; untouched files exit 0.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;
use flightrec_cli::{run, Cli, Env};
use flightrec_core::dump::{FRAME_RECORD, MAGIC};
use flightrec_core::seal::{SealKey, Sealer, FRAME_SEAL};
use flightrec_core::{Build, ClockInfo, DumpOrder, Level, Reason, Recorder, SessionId};
use flightrec_decode::verify::key_file_text;

const DEVICE_A: [u8; 32] = [0xA1; 32];
const DEVICE_B: [u8; 32] = [0xB2; 32];

/// `n` dumps of one device, sealed from epoch `key.epoch()` on, back to back.
fn sealed_dumps(key: &mut SealKey, n: usize) -> Vec<u8> {
    let rec: Recorder<2048> = Recorder::new();
    let build = Build {
        name: "gw",
        version: "1",
        id: &[7, 7],
    };
    let mut out = Vec::new();
    for i in 0..n as u64 {
        for j in 0..3 {
            let t = i * 10 + j;
            rec.log(
                t,
                Level::Info,
                Some(SessionId(j as u32)),
                "sshd",
                "login",
                &[],
            )
            .unwrap();
        }
        let order = DumpOrder {
            reason: Reason::Manual,
            time: i * 10 + 5,
            seq: None,
            session: None,
            suppressed: 0,
            index: i as u32,
        };
        let mut sealer = Sealer::new(&mut out);
        rec.dump(
            &order,
            ClockInfo::BOOT_MILLIS,
            &build,
            &mut sealer,
            &mut [0; 256],
        )
        .unwrap();
        sealer.finish(key).unwrap();
    }
    out
}

/// Frames of well-formed sealed dumps: (start, end, type), the magic+version as type 0.
fn frames(bytes: &[u8]) -> Vec<(usize, usize, u8)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at..].starts_with(&MAGIC) {
            out.push((at, at + 9, 0));
            at += 9;
            continue;
        }
        let len = u16::from_le_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
        out.push((at, at + 8 + len, bytes[at + 1]));
        at += 8 + len;
    }
    out
}

static FILES: AtomicUsize = AtomicUsize::new(0);

fn temp(bytes: &[u8]) -> PathBuf {
    let n = FILES.fetch_add(1, Ordering::Relaxed);
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("flightrec-verify-{}-{n}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

fn key_file(key: [u8; 32]) -> PathBuf {
    temp(key_file_text(&SealKey::new(key, 0)).as_bytes())
}

/// Runs `flightrec verify --key KEY ARGS...`: exit code and output.
fn verify(key: &Path, args: &[&str]) -> (u8, String) {
    let mut argv = vec!["flightrec", "verify", "--key", key.to_str().unwrap()];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&cli, &Env::default(), &mut out, &mut err);
    let mut text = String::from_utf8(out).unwrap();
    text.push_str(&String::from_utf8(err).unwrap());
    (code, text)
}

fn verify_bytes(key: &Path, bytes: &[u8], args: &[&str]) -> (u8, String) {
    let p = temp(bytes);
    let mut all = args.to_vec();
    all.push(p.to_str().unwrap());
    let r = verify(key, &all);
    std::fs::remove_file(p).unwrap();
    r
}

/// Exit 1, and a failure line naming a dump (index and offset) or an epoch.
fn assert_fails_at_a_place(what: &str, (code, out): (u8, String)) {
    assert_eq!(code, 1, "{what}: exit code, output:\n{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("FAIL") && (l.contains(" at offset ") || l.contains("epoch"))),
        "{what}: no place named:\n{out}"
    );
}

fn corpus() -> (Vec<u8>, PathBuf) {
    (
        sealed_dumps(&mut SealKey::new(DEVICE_A, 0), 3),
        key_file(DEVICE_A),
    )
}

#[test]
fn untouched_dumps_verify() {
    let (dumps, key) = corpus();
    let (code, out) = verify_bytes(&key, &dumps, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("sealed and intact").count(), 4, "{out}");
    assert!(out.contains("epoch 2"), "{out}");
    assert!(
        out.contains("3 dumps sealed and intact, 0 failures"),
        "{out}"
    );
}

#[test]
fn every_bit_flip_fails() {
    let (dumps, key) = corpus();
    for byte in 0..dumps.len() {
        for bit in 0..8 {
            let mut m = dumps.clone();
            m[byte] ^= 1 << bit;
            assert_fails_at_a_place(&format!("flip {byte}.{bit}"), verify_bytes(&key, &m, &[]));
        }
    }
}

/// Truncation at every byte fails; at a dump boundary only with the last epoch known
/// (deleting the newest dumps is otherwise unseen: SEALING.md section 4).
#[test]
fn every_truncation_fails() {
    let (dumps, key) = corpus();
    let boundaries: Vec<usize> = frames(&dumps)
        .iter()
        .filter(|f| f.2 == FRAME_SEAL)
        .map(|f| f.1)
        .collect();
    for len in 0..dumps.len() {
        let cut = &dumps[..len];
        if len == 0 {
            let (code, out) = verify_bytes(&key, cut, &[]);
            assert_eq!(code, 1, "{out}");
            assert!(out.contains("no dump found"), "{out}");
            continue;
        }
        assert_fails_at_a_place(
            &format!("cut at {len}"),
            verify_bytes(&key, cut, &["--last-epoch", "2"]),
        );
        if !boundaries.contains(&len) {
            assert_fails_at_a_place(&format!("cut at {len}"), verify_bytes(&key, cut, &[]));
        } else {
            assert_eq!(verify_bytes(&key, cut, &[]).0, 0, "the known limit");
        }
    }
}

#[test]
fn removing_duplicating_reordering_records_fails() {
    let (dumps, key) = corpus();
    let fr = frames(&dumps);
    let records: Vec<usize> = (0..fr.len()).filter(|&i| fr[i].2 == FRAME_RECORD).collect();
    assert!(records.len() >= 15);
    for &i in &records {
        let (s, e, _) = fr[i];
        let removed = [&dumps[..s], &dumps[e..]].concat();
        assert_fails_at_a_place(&format!("remove {i}"), verify_bytes(&key, &removed, &[]));
        let duplicated = [&dumps[..e], &dumps[s..]].concat();
        assert_fails_at_a_place(&format!("dup {i}"), verify_bytes(&key, &duplicated, &[]));
        if fr[i + 1].2 == FRAME_RECORD {
            let (s2, e2, _) = fr[i + 1];
            let swapped = [&dumps[..s], &dumps[s2..e2], &dumps[s..e], &dumps[e2..]].concat();
            assert_fails_at_a_place(&format!("swap {i}"), verify_bytes(&key, &swapped, &[]));
        }
    }
}

/// The dumps of a file: (start, end) of each, seal included.
fn dump_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let fr = frames(bytes);
    let starts = fr.iter().filter(|f| f.2 == 0).map(|f| f.0);
    let ends = fr.iter().filter(|f| f.2 == FRAME_SEAL).map(|f| f.1);
    starts.zip(ends).collect()
}

#[test]
fn splices_fail() {
    let (a, key) = corpus();
    let b = sealed_dumps(&mut SealKey::new(DEVICE_B, 0), 3);
    let (sa, sb) = (dump_spans(&a), dump_spans(&b));
    // Another device's dump 1 in place of ours.
    let other = [&a[..sa[1].0], &b[sb[1].0..sb[1].1], &a[sa[2].0..]].concat();
    assert_fails_at_a_place("other device", verify_bytes(&key, &other, &[]));
    // Our dump 0's front (magic, header, records) with dump 1's end and seal.
    let fr = frames(&a);
    let end0 = fr
        .iter()
        .position(|f| f.2 == flightrec_core::dump::FRAME_END)
        .unwrap();
    let end1 = fr
        .iter()
        .enumerate()
        .filter(|(_, f)| f.2 == flightrec_core::dump::FRAME_END)
        .nth(1)
        .unwrap()
        .0;
    let spliced = [&a[..fr[end0].0], &a[fr[end1].0..]].concat();
    assert_fails_at_a_place("same device", verify_bytes(&key, &spliced, &[]));
    // Half of each of two dumps of the same device.
    let records = |lo: usize, hi: usize| {
        fr.iter()
            .filter(|f| f.2 == FRAME_RECORD && f.0 >= lo && f.1 <= hi)
            .map(|f| f.0)
            .nth(2)
            .unwrap()
    };
    let (cut0, cut1) = (records(sa[0].0, sa[0].1), records(sa[1].0, sa[1].1));
    let halves = [&a[..cut0], &a[cut1..]].concat();
    assert_fails_at_a_place("halves", verify_bytes(&key, &halves, &[]));
}

/// The intruder reads the current key (epoch 3, after three dumps), edits dump 1 and
/// re-seals it: as epoch 1 (wrong key), or as epoch 3 (epoch 1 then missing).
#[test]
fn resealing_with_the_stolen_key_fails() {
    let mut device = SealKey::new(DEVICE_A, 0);
    let dumps = sealed_dumps(&mut device, 3);
    let key = key_file(DEVICE_A);
    assert_eq!(device.epoch(), 3);
    let spans = dump_spans(&dumps);
    let (s, e) = spans[1];
    // The dump's bytes without its seal, one payload byte changed (and its CRC fixed).
    let mut body = dumps[s..e - flightrec_core::seal::SEAL_FRAME_LEN].to_vec();
    let fr = frames(&body);
    let (rs, re, _) = *fr.iter().find(|f| f.2 == FRAME_RECORD).unwrap();
    body[re - 5] ^= 0x20;
    let crc = flightrec_core::crc::crc32(&body[rs + 1..re - 4]);
    body[re - 4..re].copy_from_slice(&crc.to_le_bytes());
    for epoch in [1, 3] {
        // What a forger holding k[3] can do: seal anything as any epoch with k[3].
        let mut stolen = SealKey::new(*device.secret(), 3);
        let mut forged = Vec::new();
        let mut sealer = Sealer::new(&mut forged);
        embedded_io::Write::write_all(&mut sealer, &body).unwrap();
        let mut seal = sealer.take_seal(&stolen);
        seal.epoch = epoch;
        if epoch == 3 {
            sealer.finish(&mut stolen).unwrap();
        } else {
            forged.extend_from_slice(&seal.frame());
        }
        let tampered = [&dumps[..s], &forged, &dumps[e..]].concat();
        assert_fails_at_a_place(
            &format!("re-sealed as {epoch}"),
            verify_bytes(&key, &tampered, &[]),
        );
    }
}

#[test]
fn stripping_seals_fails() {
    let (dumps, key) = corpus();
    let fr = frames(&dumps);
    let stripped: Vec<u8> = fr
        .iter()
        .filter(|f| f.2 != FRAME_SEAL)
        .flat_map(|f| dumps[f.0..f.1].to_vec())
        .collect();
    let (code, out) = verify_bytes(&key, &stripped, &[]);
    assert_fails_at_a_place("all stripped", (code, out.clone()));
    assert_eq!(out.matches("not sealed").count(), 3, "{out}");
    // One seal stripped: that dump fails, and so does its epoch.
    let seal1 = fr.iter().filter(|f| f.2 == FRAME_SEAL).nth(1).unwrap();
    let one = [&dumps[..seal1.0], &dumps[seal1.1..]].concat();
    let (code, out) = verify_bytes(&key, &one, &[]);
    assert_fails_at_a_place("one stripped", (code, out.clone()));
    assert!(out.contains("epoch 1 missing"), "{out}");
}

#[test]
fn swapping_epochs_fails() {
    let (dumps, key) = corpus();
    let sp = dump_spans(&dumps);
    // Dumps 0 and 1 swapped in the file.
    let swapped = [
        &dumps[sp[1].0..sp[1].1],
        &dumps[sp[0].0..sp[0].1],
        &dumps[sp[2].0..],
    ]
    .concat();
    let (code, out) = verify_bytes(&key, &swapped, &[]);
    assert_fails_at_a_place("dumps swapped", (code, out.clone()));
    assert!(out.contains("epoch 0 after epoch 1"), "{out}");
    // Their seal frames swapped.
    let seal = |i: usize| (sp[i].1 - flightrec_core::seal::SEAL_FRAME_LEN, sp[i].1);
    let (a, b) = (seal(0), seal(1));
    let seals = [
        &dumps[..a.0],
        &dumps[b.0..b.1],
        &dumps[a.1..b.0],
        &dumps[a.0..a.1],
        &dumps[b.1..],
    ]
    .concat();
    assert_fails_at_a_place("seals swapped", verify_bytes(&key, &seals, &[]));
}

/// Dumps spread over files and directories: all are checked together, so a file deleted
/// from the middle is a missing epoch; a duplicate file repeats epochs.
#[test]
fn directories_and_missing_files() {
    let (dumps, key) = corpus();
    let more = {
        let mut k = SealKey::new(DEVICE_A, 0);
        let all = sealed_dumps(&mut k, 5);
        all[dump_spans(&all)[3].0..].to_vec()
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("flightrec-verify-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("a.flr"), &dumps).unwrap();
    std::fs::write(dir.join("sub/b.flr"), &more).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a dump").unwrap();
    let d = dir.to_str().unwrap();
    let (code, out) = verify(&key, &[d]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("5 dumps sealed and intact"), "{out}");
    assert!(
        out.contains("notes.txt: holds no dump: not checked"),
        "{out}"
    );
    // The file with epochs 0..=2 gone: 3 and 4 follow nothing.
    std::fs::remove_file(dir.join("a.flr")).unwrap();
    let (code, out) = verify(&key, &[d]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("epochs 0..=2 missing"), "{out}");
    // A copy: every epoch twice.
    std::fs::write(dir.join("a.flr"), &dumps).unwrap();
    std::fs::write(dir.join("copy.flr"), &dumps).unwrap();
    let (code, out) = verify(&key, &[d]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("epoch 1 sealed twice"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `verify` on another thread: a FIFO must never make it wait.
fn verify_within(key: &Path, args: &[&str]) -> (u8, String) {
    let key = key.to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let _ = tx.send(verify(&key, &args));
    });
    rx.recv_timeout(std::time::Duration::from_secs(30))
        .expect("verify waited on a FIFO")
}

fn mkfifo(p: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .unwrap();
    assert!(ok.success(), "mkfifo {}", p.display());
}

/// Evidence replaced by a link or a FIFO, or nothing there at all, fails (exit 1) and names
/// the file; nothing is waited on or followed; a key that is a FIFO is a usage error.
#[test]
fn links_fifos_and_nothing_fail_without_waiting() {
    let (dumps, key) = corpus();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("flightrec-verify-odd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    std::fs::create_dir_all(dir.join("dumps")).unwrap();
    std::fs::write(dir.join("elsewhere.flr"), &dumps).unwrap();
    std::fs::write(dir.join("dumps/a.flr"), &dumps).unwrap();
    std::os::unix::fs::symlink(dir.join("elsewhere.flr"), dir.join("dumps/b.flr")).unwrap();
    mkfifo(&dir.join("dumps/c.flr"));
    let d = dir.join("dumps");
    let (code, out) = verify_within(&key, &[d.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("b.flr: a symbolic link, not a regular file: not checked"),
        "{out}"
    );
    assert!(
        out.contains("c.flr: a FIFO, not a regular file: not checked"),
        "{out}"
    );
    assert!(
        out.contains("3 dumps sealed and intact, 2 failures"),
        "{out}"
    );
    // Given by name: a link is followed (the user named it), a FIFO is refused.
    let link = dir.join("dumps/b.flr");
    let (code, out) = verify_within(&key, &[link.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let fifo = dir.join("dumps/c.flr");
    let (code, out) = verify_within(&key, &[fifo.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL "), "{out}");
    // Nothing to check is not success.
    let empty = dir.join("empty");
    let (code, out) = verify_within(&key, &[empty.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL nothing checked"), "{out}");
    // A key, a public key or a collector's file that is a FIFO: refused, exit 2.
    let a = dir.join("dumps/a.flr");
    let a = a.to_str().unwrap();
    let f = fifo.to_str().unwrap();
    for (key, args) in [
        (fifo.as_path(), vec![a]),
        (key.as_path(), vec!["--pubkey", f, a]),
        (key.as_path(), vec!["--forwarded", f, a]),
    ] {
        let (code, out) = verify_within(key, &args);
        assert_eq!(code, 2, "{args:?}: {out}");
        assert!(
            out.contains("a FIFO, not a regular file"),
            "{args:?}: {out}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wrong_key_and_usage() {
    let (dumps, _) = corpus();
    let other = key_file(DEVICE_B);
    assert_fails_at_a_place("device B's key", verify_bytes(&other, &dumps, &[]));
    let bad = temp(b"not a key");
    let (code, out) = verify_bytes(&bad, &dumps, &[]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = verify(&other, &["/nonexistent/flightrec"]);
    assert_eq!(code, 2, "{out}");
    // A key from a later epoch cannot check earlier dumps.
    let later = temp(key_file_text(&SealKey::new(DEVICE_A, 0).at_epoch(1).unwrap()).as_bytes());
    assert_fails_at_a_place("later key", verify_bytes(&later, &dumps, &[]));
}

#[test]
fn keygen_makes_a_working_pair() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("flightrec-keygen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (dev, ver) = (dir.join("device.key"), dir.join("verify.key"));
    let argv = [
        "flightrec",
        "keygen",
        "--device",
        dev.to_str().unwrap(),
        "--verify",
        ver.to_str().unwrap(),
    ];
    let cli = Cli::try_parse_from(argv).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(run(&cli, &Env::default(), &mut out, &mut err), 0);
    use std::os::unix::fs::PermissionsExt;
    for p in [&dev, &ver] {
        assert_eq!(
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let mut device = flightrec_cli::seal::read_key(&dev).unwrap();
    let dumps = sealed_dumps(&mut device, 2);
    assert_eq!(verify_bytes(&ver, &dumps, &[]).0, 0);
    // Never over an existing key.
    let cli = Cli::try_parse_from(argv).unwrap();
    assert_eq!(run(&cli, &Env::default(), &mut out, &mut err), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// As `sealed_dumps`, each seal signed as a host signs it (SEALING.md section 6).
fn signed_dumps(key: &mut SealKey, n: usize) -> Vec<u8> {
    let plain = sealed_dumps(&mut SealKey::new(*key.secret(), key.epoch()), n);
    let mut out = Vec::new();
    for (s, e) in dump_spans(&plain) {
        let body = &plain[s..e - flightrec_core::seal::SEAL_FRAME_LEN];
        let mut sealer = Sealer::new(&mut out);
        embedded_io::Write::write_all(&mut sealer, body).unwrap();
        let seal = sealer.take_seal(key);
        out.extend_from_slice(&seal.frame());
        out.extend_from_slice(&flightrec_decode::sign::signature_frame(key, &seal));
        key.evolve();
    }
    out
}

fn pub_file(key: [u8; 32]) -> PathBuf {
    temp(flightrec_decode::sign::pub_file_text(&SealKey::new(key, 0)).as_bytes())
}

fn verify_pub(public: &Path, bytes: &[u8]) -> (u8, String) {
    let p = temp(bytes);
    let argv = [
        "flightrec",
        "verify",
        "--pubkey",
        public.to_str().unwrap(),
        p.to_str().unwrap(),
    ];
    let cli = Cli::try_parse_from(argv).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&cli, &Env::default(), &mut out, &mut err);
    std::fs::remove_file(p).unwrap();
    let mut text = String::from_utf8(out).unwrap();
    text.push_str(&String::from_utf8(err).unwrap());
    (code, text)
}

#[test]
fn public_key_verification() {
    let mut device = SealKey::new(DEVICE_A, 0);
    let dumps = signed_dumps(&mut device, 3);
    let public = pub_file(DEVICE_A);
    let (code, out) = verify_pub(&public, &dumps);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 dumps sealed and intact"), "{out}");
    // The verification key still checks the MACs of signed dumps.
    assert_eq!(verify_bytes(&key_file(DEVICE_A), &dumps, &[]).0, 0);
    // Unsigned dumps (a microcontroller's) cannot be checked with the public key.
    let (code, out) = verify_pub(&public, &sealed_dumps(&mut SealKey::new(DEVICE_A, 0), 3));
    assert_fails_at_a_place("unsigned", (code, out.clone()));
    assert!(out.contains("no signature frame"), "{out}");
    // Another device's public key.
    assert_fails_at_a_place("other pub", verify_pub(&pub_file(DEVICE_B), &dumps));
    // Bit flips and truncations, sampled: Ed25519 in a debug build takes tens of
    // milliseconds a run (every flip and cut is checked with the verification key above).
    for bit in (0..dumps.len() * 8).step_by(97) {
        let mut m = dumps.clone();
        m[bit / 8] ^= 1 << (bit % 8);
        assert_fails_at_a_place(&format!("flip {bit}"), verify_pub(&public, &m));
    }
    let last_seal_end = dumps.len();
    for len in (1..last_seal_end).step_by(61) {
        assert_fails_at_a_place(&format!("cut {len}"), verify_pub(&public, &dumps[..len]));
    }
}

/// The intruder holds k[3] (so the signing key of epoch 3 on): an edited dump 1, re-sealed
/// and re-signed with it as epoch 1, breaks the chain of public keys that dump 0 signed.
#[test]
fn public_key_resealing_with_the_stolen_key_fails() {
    let mut device = SealKey::new(DEVICE_A, 0);
    let dumps = signed_dumps(&mut device, 3);
    let public = pub_file(DEVICE_A);
    let spans: Vec<(usize, usize)> = {
        let fr = frames(&dumps);
        let starts = fr.iter().filter(|f| f.2 == 0).map(|f| f.0);
        let ends = fr
            .iter()
            .filter(|f| f.2 == flightrec_core::seal::FRAME_SIGNATURE)
            .map(|f| f.1);
        starts.zip(ends).collect()
    };
    let (s, e) = spans[1];
    let sig_len = 8 + flightrec_decode::sign::SIGNATURE_BODY_LEN;
    let mut body = dumps[s..e - sig_len - flightrec_core::seal::SEAL_FRAME_LEN].to_vec();
    let last = body.len() - 20;
    body[last] ^= 1; // inside the end frame's neighbourhood: the hash changes
    let stolen = SealKey::new(*device.secret(), 3);
    let mut forged = Vec::new();
    let mut sealer = Sealer::new(&mut forged);
    embedded_io::Write::write_all(&mut sealer, &body).unwrap();
    let mut seal = sealer.take_seal(&stolen);
    seal.epoch = 1;
    forged.extend_from_slice(&seal.frame());
    let mut sig = flightrec_decode::sign::signature_frame(&stolen, &seal);
    sig[4 + 1..4 + 9].copy_from_slice(&1u64.to_le_bytes());
    let crc = flightrec_core::crc::crc32(&sig[1..sig.len() - 4]);
    let n = sig.len();
    sig[n - 4..].copy_from_slice(&crc.to_le_bytes());
    forged.extend_from_slice(&sig);
    let tampered = [&dumps[..s], &forged, &dumps[e..]].concat();
    let (code, out) = verify_pub(&public, &tampered);
    assert_fails_at_a_place("re-signed", (code, out.clone()));
    assert!(out.contains("signature"), "{out}");
}

/// Sealed dumps in a flash-store image (pages with headers between the wire bytes) verify;
/// one changed byte inside a dump's data fails.
#[test]
fn flash_store_image() {
    use flightrec_flash::{FlashStore, RamFlash};
    let rec: Recorder<4096> = Recorder::new();
    let mut key = SealKey::new(DEVICE_A, 0);
    let mut mem = vec![0xFF; 32 * 256];
    let mut store = FlashStore::mount(RamFlash::<256, 4>::new(&mut mem), 0..32 * 256).unwrap();
    let build = Build {
        name: "fw",
        version: "1",
        id: &[],
    };
    for i in 0..3u64 {
        for j in 0..20 {
            rec.log(
                i * 100 + j,
                Level::Debug,
                None,
                "pair",
                "handshake step",
                &[],
            )
            .unwrap();
        }
        let order = DumpOrder {
            reason: Reason::Manual,
            time: i,
            seq: None,
            session: None,
            suppressed: 0,
            index: i as u32,
        };
        let mut w = store.begin().unwrap();
        let mut sealer = Sealer::new(&mut w);
        rec.dump(
            &order,
            ClockInfo::BOOT_MILLIS,
            &build,
            &mut sealer,
            &mut [0; 256],
        )
        .unwrap();
        sealer.finish(&mut key).unwrap();
        w.commit().unwrap();
    }
    let _ = store.release();
    let verify_key = key_file(DEVICE_A);
    let (code, out) = verify_bytes(&verify_key, &mem, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 dumps sealed and intact"), "{out}");
    // A byte of the second dump's data (after its page header): found and named.
    let at = mem
        .windows(6)
        .enumerate()
        .filter(|(_, w)| w == b"handsh")
        .nth(25)
        .unwrap()
        .0;
    let mut m = mem.clone();
    m[at] ^= 0x01;
    assert_fails_at_a_place("flash byte", verify_bytes(&verify_key, &m, &[]));
}

/// A collector's file (rsyslog's RFC 5424 lines) of the dump notices the forwarder sent
/// for the sealed dumps of `dumps`, each seal body passed through `edit` first.
fn notices(dumps: &[u8], edit: impl Fn(usize, &mut Vec<u8>)) -> String {
    let mut text = String::from("<13>1 2026-12-07T12:00:00+00:00 gw other 1 - - not a notice\n");
    for (i, &(s, e, _)) in frames(dumps)
        .iter()
        .filter(|f| f.2 == FRAME_SEAL)
        .enumerate()
    {
        let mut body = dumps[s + 4..e - 4].to_vec();
        edit(i, &mut body);
        text.push_str(&format!(
            "<84>1 2026-12-07T12:00:0{i}.000000+00:00 gw flightrec 42 dump [flightrec@32473 \
             host=\"gw\" boot=\"b\" seq=\"{i}\" reason=\"manual\" records=\"3\" epoch=\"{i}\" \
             seal=\"{}\"] dump written: d.flr (manual, 3 records), sealed epoch {i}\n",
            flightrec_decode::verify::hex(&body)
        ));
    }
    text
}

/// `SEALING.md` section 7: forwarded seals close the "newest dumps deleted" gap and tell a
/// re-sealed dump from the one the device wrote.
#[test]
fn forwarded_seals_are_checked_against_the_dumps() {
    let (dumps, key) = corpus();
    let notes = temp(notices(&dumps, |_, _| {}).as_bytes());
    let notes = notes.to_str().unwrap();
    let (code, out) = verify_bytes(&key, &dumps, &["--forwarded", notes]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 forwarded seals read from"), "{out}");
    // The newest dump deleted: unseen without the notices, a failure with them.
    let spans = dump_spans(&dumps);
    let without_newest = &dumps[..spans[2].0];
    assert_eq!(verify_bytes(&key, without_newest, &[]).0, 0);
    let (code, out) = verify_bytes(&key, without_newest, &["--forwarded", notes]);
    assert_fails_at_a_place("newest deleted", (code, out.clone()));
    assert!(
        out.contains("epoch 2: its seal was forwarded") && out.contains("line 4"),
        "{out}"
    );
    // The dump of epoch 2 replaced by another sealed with k[2] (stolen after epoch 1):
    // its MAC checks, but it is not the dump the device forwarded the seal of.
    let other = sealed_dumps(&mut SealKey::new(DEVICE_A, 0).at_epoch(2).unwrap(), 1);
    let replaced = [without_newest, &other[..]].concat();
    assert_eq!(
        verify_bytes(&key, &replaced, &[]).0,
        0,
        "undetectable alone"
    );
    let (code, out) = verify_bytes(&key, &replaced, &["--forwarded", notes]);
    assert_fails_at_a_place("replaced", (code, out.clone()));
    assert!(out.contains("differs from the one forwarded"), "{out}");
    // A notice whose seal this key did not make.
    let forged = temp(
        notices(&dumps, |i, b| {
            if i == 1 {
                b[80] ^= 1
            }
        })
        .as_bytes(),
    );
    let (code, out) = verify_bytes(&key, &dumps, &["--forwarded", forged.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("forged notice"), "{out}");
    // A notice whose seal is not a seal body.
    let cut = temp(
        notices(&dumps, |i, b| {
            if i == 0 {
                b.pop();
            }
        })
        .as_bytes(),
    );
    let (code, out) = verify_bytes(&key, &dumps, &["--forwarded", cut.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line 2: forwarded seal unreadable"), "{out}");
}
