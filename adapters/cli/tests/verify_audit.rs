//! Sealed audit logs (`core/SEALING.md` section 9): written by the real writer
//! (`flightrec_linux::AuditLog`, rotated by itself and by real logrotate), then checked by
//! `flightrec verify` against a mutation corpus: every mutation exits 1 and names the file
//! and the line or epoch; untouched files exit 0, and the lines are byte-identical to
//! unsealed ones.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use flightrec_cli::{run, Cli, Env};
use flightrec_core::event::{AuthFailure, Peer};
use flightrec_core::seal::{Seal, SealKey};
use flightrec_core::{Kind, Level};
use flightrec_decode::auditseal::{parse_sidecar, seal_line, segment_line, SegmentHash};
use flightrec_decode::sign::sign_seal;
use flightrec_decode::verify::parse_key_file;
use flightrec_linux::{AuditItem, AuditLog, AuditOptions};

fn cli(args: &[&str]) -> (u8, String) {
    let mut argv = vec!["flightrec"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&cli, &Env::default(), &mut out, &mut err);
    let mut text = String::from_utf8(out).unwrap();
    text.push_str(&String::from_utf8(err).unwrap());
    (code, text)
}

/// `flightrec keygen` into `dir`: the device's audit key, the verification and public keys.
struct Keys {
    audit: PathBuf,
    verify: PathBuf,
    public: PathBuf,
}

fn keygen(dir: &Path) -> Keys {
    let p = |n: &str| dir.join(n);
    let (code, out) = cli(&[
        "keygen",
        "--device",
        p("seal.key").to_str().unwrap(),
        "--verify",
        p("verify.key").to_str().unwrap(),
        "--public",
        p("verify.pub").to_str().unwrap(),
        "--audit",
        p("audit-seal.key").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    Keys {
        audit: p("audit-seal.key"),
        verify: p("verify.key"),
        public: p("verify.pub"),
    }
}

fn item(n: u64) -> AuditItem {
    let user = format!("user{n:04}");
    let e = AuthFailure {
        user: &user,
        host: "example.org",
        peer: Some(Peer::from(
            "10.0.0.9:4000".parse::<std::net::SocketAddr>().unwrap(),
        )),
        mechanism: "PLAIN",
        reason: "bad password",
    };
    AuditItem {
        time: (1_700_000_000 + n) * 1_000_000_000,
        kind: Kind::AUTH_FAILURE,
        level: Level::Warn,
        session: None,
        payload: {
            use flightrec_core::encode::Encode;
            let mut bytes = vec![0; e.encoded_len()];
            let len = flightrec_core::encode::to_slice(&e, &mut bytes).unwrap();
            bytes.truncate(len);
            bytes
        },
    }
}

fn options(log: &Path, key: Option<&Path>, max_bytes: u64) -> AuditOptions {
    AuditOptions {
        path: log.display().to_string(),
        max_bytes,
        max_files: 50,
        max_age: None,
        seal_key: key.map(Path::to_owned),
        ..AuditOptions::default()
    }
}

/// Lines `from..to`, each written (and sealed) on its own, or `batch` at a time.
fn write(log: &mut AuditLog, from: u64, to: u64, batch: u64) {
    for n in from..to {
        log.add(&item(n));
        if (n + 1 - from) % batch == 0 {
            log.flush().unwrap();
        }
    }
    log.flush().unwrap();
}

fn verify(key: &Path, path: &Path) -> (u8, String) {
    cli(&[
        "verify",
        "--key",
        key.to_str().unwrap(),
        path.to_str().unwrap(),
    ])
}

fn verify_pub(public: &Path, path: &Path) -> (u8, String) {
    cli(&[
        "verify",
        "--pubkey",
        public.to_str().unwrap(),
        path.to_str().unwrap(),
    ])
}

fn assert_ok((code, out): (u8, String), files: usize) {
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "{files} audit files sealed and intact, 0 failures"
        )),
        "{out}"
    );
}

/// Exit 1, and a failure naming what is given in `names` (all of them).
fn assert_fails(what: &str, (code, out): (u8, String), names: &[&str]) {
    assert_eq!(code, 1, "{what}: exit code, output:\n{out}");
    let fails: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        fails.iter().any(|l| names.iter().all(|n| l.contains(n))),
        "{what}: no failure naming {names:?}:\n{out}"
    );
}

/// Lines in the corpus, and the size its files rotate at: 4 files of 5 lines.
const LINES: u64 = 20;
const ROTATE_AT: u64 = 600;

/// A directory of sealed audit files: `log/audit.log` and its rotations `.1` .. `.3`, each
/// line sealed on its own; and the keys.
struct Corpus {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    keys: Keys,
}

fn corpus() -> Corpus {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_owned();
    let keys = keygen(&root);
    let mut log = AuditLog::new(
        options(&root.join("log/audit.log"), Some(&keys.audit), ROTATE_AT),
        "gw",
    );
    write(&mut log, 0, LINES, 1);
    assert_eq!(log.errors(), 0);
    Corpus {
        _tmp: tmp,
        root,
        keys,
    }
}

/// A copy of the corpus's `log` directory, to mutate.
fn copy(c: &Corpus, name: &str) -> PathBuf {
    let to = c.root.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(c.root.join("log")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
    to
}

#[test]
fn lines_are_unchanged_and_sealed_files_verify() {
    let c = corpus();
    let dir = c.root.join("log");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "audit.log",
            "audit.log.1",
            "audit.log.2",
            "audit.log.3",
            "audit.log.seal",
            "audit.log.seal.1",
            "audit.log.seal.2",
            "audit.log.seal.3"
        ]
    );
    for n in &names {
        let mode = std::fs::metadata(dir.join(n)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{n}");
    }
    // The same lines, unsealed, are the same bytes.
    let plain = c.root.join("plain/audit.log");
    let mut log = AuditLog::new(options(&plain, None, ROTATE_AT), "gw");
    write(&mut log, 0, LINES, 1);
    for n in ["audit.log", "audit.log.1", "audit.log.2", "audit.log.3"] {
        assert_eq!(
            std::fs::read(dir.join(n)).unwrap(),
            std::fs::read(plain.with_file_name(n)).unwrap(),
            "{n}"
        );
    }
    assert_ok(verify(&c.keys.verify, &dir), 4);
    assert_ok(verify_pub(&c.keys.public, &dir), 4);
    // One file given: its family is found beside it.
    assert_ok(verify(&c.keys.verify, &dir.join("audit.log.2")), 4);
    // Another key: every seal fails.
    let other = keygen(&c.root.join("plain"));
    assert_fails(
        "another key",
        verify(&other.verify, &dir),
        &["audit.log", "MAC"],
    );
}

/// Every byte of a rotated file; in its sidecar, every byte of the first line, of the
/// segment line and of the first seal line (each kind of field; the other seal lines are
/// the same fields), and the last byte.
#[test]
fn every_changed_byte_of_a_rotated_file_and_of_its_sidecar_fails() {
    let c = corpus();
    let dir = copy(&c, "flip");
    for name in ["audit.log.2", "audit.log.seal.2"] {
        let path = dir.join(name);
        let orig = std::fs::read(&path).unwrap();
        let mut bytes_to_flip: Vec<usize> = (0..orig.len()).collect();
        if name.contains("seal") {
            let third_line_end = orig
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .nth(2)
                .unwrap()
                .0;
            bytes_to_flip = (0..=third_line_end).chain([orig.len() - 1]).collect();
        }
        for i in bytes_to_flip {
            let mut bytes = orig.clone();
            bytes[i] ^= 0x01;
            std::fs::write(&path, &bytes).unwrap();
            let what = format!("{name} byte {i}");
            let r = verify(&c.keys.verify, &dir);
            if name == "audit.log.2" {
                assert_fails(&what, r, &["audit.log", "line"]);
            } else {
                assert_fails(&what, r, &[""]);
            }
        }
        std::fs::write(&path, &orig).unwrap();
    }
    assert_ok(verify(&c.keys.verify, &dir), 4);
}

#[test]
fn removed_duplicated_reordered_and_cut_lines_fail_and_are_named() {
    let c = corpus();
    let dir = copy(&c, "lines");
    for name in ["audit.log", "audit.log.3"] {
        let path = dir.join(name);
        let orig = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = orig.split_inclusive('\n').collect();
        for i in 0..lines.len() {
            let line_no = format!("line {}", i + 1);
            let mut removed = lines.clone();
            removed.remove(i);
            std::fs::write(&path, removed.concat()).unwrap();
            assert_fails(
                &format!("{name}: {line_no} removed"),
                verify(&c.keys.verify, &dir),
                &[name, "line"],
            );
            let mut doubled = lines.clone();
            doubled.insert(i, lines[i]);
            std::fs::write(&path, doubled.concat()).unwrap();
            assert_fails(
                &format!("{name}: {line_no} duplicated"),
                verify(&c.keys.verify, &dir),
                &[name, "line"],
            );
            if i + 1 < lines.len() {
                let mut swapped = lines.clone();
                swapped.swap(i, i + 1);
                std::fs::write(&path, swapped.concat()).unwrap();
                assert_fails(
                    &format!("{name}: {line_no} swapped with the next"),
                    verify(&c.keys.verify, &dir),
                    &[name, &line_no],
                );
            }
        }
        // Cut at every byte.
        for len in 0..orig.len() {
            std::fs::write(&path, &orig.as_bytes()[..len]).unwrap();
            assert_fails(
                &format!("{name} cut to {len} bytes"),
                verify(&c.keys.verify, &dir),
                &[""],
            );
        }
        std::fs::write(&path, &orig).unwrap();
    }
    // A line appended without a seal.
    let path = dir.join("audit.log");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("2023-11-14 22:13:20 Failed PLAIN authentication for x@example.org from 1.2.3.4 port 1: forged\n");
    std::fs::write(&path, text).unwrap();
    assert_fails(
        "appended",
        verify(&c.keys.verify, &dir),
        &["audit.log", "unsealed tail"],
    );
}

#[test]
fn deleted_swapped_and_stripped_files_fail() {
    let c = corpus();
    // A rotated file deleted, its sidecar kept.
    let dir = copy(&c, "deleted");
    std::fs::remove_file(dir.join("audit.log.2")).unwrap();
    assert_fails(
        "audit.log.2 deleted",
        verify(&c.keys.verify, &dir),
        &["audit.log.seal.2", "no file given holds them", "epochs"],
    );
    // ... with its sidecar: the chain has a hole.
    std::fs::remove_file(dir.join("audit.log.seal.2")).unwrap();
    assert_fails(
        "audit.log.2 and its sidecar deleted",
        verify(&c.keys.verify, &dir),
        &["missing", "audit.log.seal.1"],
    );
    // Two rotated files swapped.
    let dir = copy(&c, "swapped");
    std::fs::rename(dir.join("audit.log.1"), dir.join("x")).unwrap();
    std::fs::rename(dir.join("audit.log.2"), dir.join("audit.log.1")).unwrap();
    std::fs::rename(dir.join("x"), dir.join("audit.log.2")).unwrap();
    assert_fails(
        "audit.log.1 and .2 swapped",
        verify(&c.keys.verify, &dir),
        &["swapped"],
    );
    // Seals stripped (downgrade): unsealed audit logs fail.
    let dir = copy(&c, "stripped");
    for n in ["", ".1", ".2", ".3"] {
        std::fs::remove_file(dir.join(format!("audit.log.seal{n}"))).unwrap();
    }
    assert_fails(
        "sidecars removed",
        verify(&c.keys.verify, &dir),
        &["audit.log.2", "not sealed"],
    );
    // The oldest file and its sidecar deleted: what rotation does; said, not failed
    // (`SEALING.md` section 9, not detected).
    let dir = copy(&c, "oldest");
    std::fs::remove_file(dir.join("audit.log.3")).unwrap();
    std::fs::remove_file(dir.join("audit.log.seal.3")).unwrap();
    let (code, out) = verify(&c.keys.verify, &dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("rotated away"), "{out}");
}

/// The intruder holds the device's audit key (its current epoch E): re-sealing an edited
/// file needs seals of epochs below E, which it cannot make; seals of E on leave the old
/// epochs missing.
#[test]
fn resealing_with_the_stolen_current_key_fails() {
    let c = corpus();
    let dir = copy(&c, "resealed");
    let stolen = parse_key_file(&std::fs::read_to_string(&c.keys.audit).unwrap()).unwrap();
    assert!(stolen.epoch() >= LINES);
    // Edit a line of audit.log.1, then rebuild every sidecar from scratch.
    let edited = dir.join("audit.log.1");
    let text = std::fs::read_to_string(&edited)
        .unwrap()
        .replacen("user", "USER", 1);
    std::fs::write(&edited, text).unwrap();
    let mut key = SealKey::new(*stolen.secret(), stolen.epoch());
    let mut prev = [0u8; 32];
    for (side, log) in [
        ("audit.log.seal.3", "audit.log.3"),
        ("audit.log.seal.2", "audit.log.2"),
        ("audit.log.seal.1", "audit.log.1"),
        ("audit.log.seal", "audit.log"),
    ] {
        let old = std::fs::read(dir.join(side)).unwrap();
        let (segments, fault) = parse_sidecar(side, &old);
        assert!(fault.is_none());
        let bytes = std::fs::read(dir.join(log)).unwrap();
        let mut out = String::from("flightrec-audit-seal 1\n");
        for s in segments {
            out.push_str(&segment_line(s.number, s.start, &prev));
            let mut hash = SegmentHash::new(s.number, s.start, &prev);
            let mut at = s.start as usize;
            for e in &s.seals {
                let end = (e.seal.dump_len as usize).min(bytes.len());
                hash.update(&bytes[at..end]);
                at = end;
                let seal = Seal::new(&key, end as u64, hash.head());
                out.push_str(&seal_line(&seal, Some(&sign_seal(&key, &seal))));
                key.evolve();
                prev = hash.head();
            }
        }
        std::fs::write(dir.join(side), out).unwrap();
    }
    assert_fails(
        "re-sealed",
        verify(&c.keys.verify, &dir),
        &["audit epochs 0..=", "missing"],
    );
    assert_fails(
        "re-sealed, public key",
        verify_pub(&c.keys.public, &dir),
        &["signature"],
    );
}

#[test]
fn a_restarted_writer_continues_the_chain() {
    let c = corpus();
    let log_path = c.root.join("log/audit.log");
    let mut log = AuditLog::new(options(&log_path, Some(&c.keys.audit), ROTATE_AT), "gw");
    write(&mut log, LINES, LINES + 6, 3);
    drop(log);
    let logs = std::fs::read_dir(c.root.join("log"))
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .contains(".seal")
        })
        .count();
    assert!(logs >= 5, "the restarted writer rotated");
    assert_ok(verify(&c.keys.verify, &c.root.join("log")), logs);
    assert_ok(verify_pub(&c.keys.public, &c.root.join("log")), logs);
}

fn logrotate(dir: &Path, config: &str) {
    let conf = dir.join("logrotate.conf");
    std::fs::write(&conf, config).unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = std::process::Command::new("logrotate")
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg("-f")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "logrotate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn have_logrotate() -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", "command -v logrotate"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "logrotate missing in CI");
        eprintln!("logrotate not installed: skipped");
    }
    found
}

/// logrotate's rename and `create` (with the reopen its `postrotate` asks for), of the log
/// and its sidecar or of the log alone, and its `copytruncate` (no reopen): the chain
/// carries across the files, and a deleted rotated file is found.
#[test]
fn real_logrotate_rename_create_and_copytruncate() {
    if !have_logrotate() {
        return;
    }
    for (mode, stanza_files, reopen) in [
        ("create-both", "audit.log audit.log.seal", true),
        ("create-log-only", "audit.log", true),
        ("copytruncate", "audit.log audit.log.seal", false),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let keys = keygen(root);
        let dir = root.join("log");
        let mut log = AuditLog::new(options(&dir.join("audit.log"), Some(&keys.audit), 0), "gw");
        let how = if reopen {
            "create 0600"
        } else {
            "copytruncate"
        };
        let files: Vec<String> = stanza_files
            .split(' ')
            .map(|f| dir.join(f).display().to_string())
            .collect();
        let config = format!(
            "{} {{\n  rotate 10\n  {how}\n  missingok\n  nocompress\n}}\n",
            files.join(" ")
        );
        let mut n = 0;
        for _ in 0..3 {
            write(&mut log, n, n + 8, 3);
            n += 8;
            logrotate(root, &config);
            if reopen {
                log.reopen().unwrap();
            }
        }
        write(&mut log, n, n + 5, 2);
        assert_eq!(log.errors(), 0, "{mode}");
        drop(log);
        let r = verify(&keys.verify, &dir);
        assert_eq!(r.0, 0, "{mode}: {}", r.1);
        assert!(
            r.1.contains("4 audit files sealed and intact"),
            "{mode}: {}",
            r.1
        );
        assert_ok(verify_pub(&keys.public, &dir), 4);
        // Every line is in exactly one file.
        let mut all = String::new();
        for f in ["audit.log.3", "audit.log.2", "audit.log.1", "audit.log"] {
            all.push_str(&std::fs::read_to_string(dir.join(f)).unwrap());
        }
        assert_eq!(all.lines().count() as u64, n + 5, "{mode}");
        std::fs::remove_file(dir.join("audit.log.2")).unwrap();
        assert_fails(
            &format!("{mode}: audit.log.2 deleted"),
            verify(&keys.verify, &dir),
            &["no file given holds them"],
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `flightrec audit` and `flightrec decode` with a key say each file's seal status on
/// standard error, and damage makes their exit status 1.
#[test]
fn audit_and_decode_show_the_seal_status() {
    let c = corpus();
    let dir = copy(&c, "status");
    let key = c.keys.verify.to_str().unwrap();
    let live = dir.join("audit.log");
    let (code, out) = cli(&["audit", "--key", key, live.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("user0019"), "the viewer ran: {out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("seal: ok") && l.contains("audit.log:")),
        "{out}"
    );
    // A directory: the viewer reads the logs and skips the sidecars.
    assert_eq!(
        flightrec_audit::SEAL_SIDECAR_TAG,
        flightrec_decode::auditseal::SIDECAR_TAG
    );
    let (code, out) = cli(&["audit", "--key", key, dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("{LINES} records displayed")), "{out}");
    assert!(!out.contains("unreadable"), "{out}");
    let (code, out) = cli(&[
        "audit",
        "--pubkey",
        c.keys.public.to_str().unwrap(),
        live.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    // Without a key: no status, as before.
    let (code, out) = cli(&["audit", live.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("seal:"), "{out}");
    // A changed byte: the viewer still shows the lines; the status names the line.
    let mut text = std::fs::read(dir.join("audit.log.1")).unwrap();
    text[30] ^= 0x20;
    std::fs::write(dir.join("audit.log.1"), text).unwrap();
    let (code, out) = cli(&["audit", "--key", key, dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("seal: FAIL")
            && l.contains("audit.log.1")
            && l.contains("line 1")),
        "{out}"
    );

    // decode: a sealed dump written by the gateway's dump writer.
    let dumps = c.root.join("dumps");
    let files = flightrec_linux::DumpFiles::new(
        flightrec_linux::DumpOptions {
            path: flightrec_linux::files::Template::parse(&format!("{}/d.flr", dumps.display()))
                .unwrap(),
            file: flightrec_linux::files::FilePolicy::default(),
            format: flightrec_linux::DumpFormat::Binary,
            durable: true,
            seal_key: None,
        },
        "gw",
    );
    assert!(
        files.seal_with(flightrec_linux::sealkey::KeyFile::open(&c.root.join("seal.key")).unwrap())
    );
    let rec =
        flightrec_linux::FlightRecorder::new(flightrec_linux::RecorderOptions::default()).unwrap();
    rec.log(Level::Warn, None, "t", "sealed record", &[]);
    let path = files.write(&rec, &rec.manual_order()).unwrap();
    let p = path.to_str().unwrap();
    let (code, out) = cli(&["decode", "--key", key, p]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("sealed record"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("seal: ok") && l.contains("epoch 0")),
        "{out}"
    );
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let (code, out) = cli(&["decode", "--key", key, p]);
    assert_eq!(code, 1, "{out}");
    assert!(out.lines().any(|l| l.starts_with("seal: FAIL")), "{out}");
}
