//! The shipped fail2ban filters, run by the real `fail2ban-regex` (Python, as fail2ban
//! is), against failures whose user or host differ by one character of every class the
//! escaping covers: each character core's `is_dangerous` flags (Unicode whitespace,
//! controls, format and invisible characters; checked against Python's own `\s` and
//! categories in core) and the ASCII space. Every failure must match and count against
//! the real peer, or an attacker who varies that character is never banned.
//!
//! Skipped with a note when fail2ban is not installed; a failure under `CI`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use flightrec_audit::{EjabberdFormat, LineFormat, OxFormat};
use flightrec_core::event::{Addr, AuthFailure, Decoded, Peer};
use flightrec_core::text::is_dangerous;

mod common;

fn have_fail2ban() -> bool {
    let found = Command::new("fail2ban-regex")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "fail2ban-regex is not installed (CI must run: apt-get install -y fail2ban)"
        );
        eprintln!("SKIPPED: fail2ban-regex is not installed (apt-get install -y fail2ban)");
    }
    found
}

fn filter(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fail2ban")
        .join(name)
}

fn peer(last: u8) -> Option<Peer> {
    Some(Peer {
        addr: Addr::V4([192, 0, 2, last]),
        port: 50_000,
    })
}

/// The characters to vary by: the tests' model (`common`: Python's `\s` and Zs, Zl, Zp,
/// Cc, Cf; the invisible characters; Rust's controls and whitespace), every one
/// `is_dangerous` flags, and the ASCII space. Plane 14's default-ignorable block is
/// escaped whole, but only its tags and variation selectors are assigned: the other 3,700
/// would only slow the test down.
fn hostile_chars() -> Vec<char> {
    let mut chars: Vec<char> = common::model_chars().to_vec();
    chars.extend(
        (0..=0x10_ffffu32)
            .filter_map(char::from_u32)
            .filter(|&c| is_dangerous(c)),
    );
    chars.push(' ');
    chars.sort_unstable();
    chars.dedup();
    let unassigned = |c: &char| {
        let c = u32::from(*c);
        (0xe0080..0xe0100).contains(&c) || (0xe01f0..0xe1000).contains(&c)
    };
    chars.retain(|c| !unassigned(c));
    chars
}

/// Three failures per character: in the user, in the host, and in every peer-controlled
/// field at once with a planted address (203.0.113.1) around it. Returns the lines and the
/// count expected per real peer.
fn corpus(format: &LineFormat) -> (String, usize) {
    let chars = hostile_chars();
    let mut log = String::new();
    let t = 1_795_428_000_000_000_000; // 2026-11-23 10:00:00 UTC
    for &c in &chars {
        let user = format!("al{c}ice");
        let host = format!("example{c}org");
        let planted = format!("x{c}from{c}203.0.113.1{c}port{c}1{c}ip={c}203.0.113.1{c}|;");
        for (user, host, mechanism, reason, last) in [
            (user.as_str(), "example.org", "PLAIN", "", 1),
            ("alice", host.as_str(), "PLAIN", "not-authorized", 2),
            (&planted, &planted, &planted, &planted, 3),
        ] {
            let e = Decoded::AuthFailure(AuthFailure {
                user,
                host,
                peer: peer(last),
                mechanism,
                reason,
            });
            format.render(t, "gw", &e, &mut log).unwrap();
            log.push('\n');
        }
    }
    (log, chars.len())
}

/// Runs `fail2ban-regex -o <ip>` and counts the matches per extracted address.
fn matches_per_address(log: &str, filter: &str) -> BTreeMap<String, usize> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    std::fs::write(&path, log).unwrap();
    let out = Command::new("fail2ban-regex")
        .args(["-o", "<ip>"])
        .arg(&path)
        .arg(filter)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fail2ban-regex failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut counts = BTreeMap::new();
    for ip in String::from_utf8(out.stdout).unwrap().lines() {
        *counts.entry(ip.to_owned()).or_default() += 1;
    }
    counts
}

fn check(format: LineFormat, filter: &str) {
    let (log, n) = corpus(&format);
    let counts = matches_per_address(&log, filter);
    let expected: BTreeMap<String, usize> = (1..=3).map(|i| (format!("192.0.2.{i}"), n)).collect();
    assert_eq!(
        counts, expected,
        "{filter}: every failure, counted against its real peer only ({n} characters)"
    );
}

#[test]
fn ejabberd_filter_bans_every_spelling() {
    if !have_fail2ban() {
        return;
    }
    check(
        LineFormat::Ejabberd(EjabberdFormat::default()),
        filter("flightrec-ejabberd.conf").to_str().unwrap(),
    );
}

#[test]
fn open_xchange_filter_bans_every_spelling() {
    if !have_fail2ban() {
        return;
    }
    let conf = filter("flightrec-ox.conf");
    let conf = conf.to_str().unwrap();
    for (delimiter, attribute_names, filter) in [
        ('|', true, conf.to_owned()),
        (';', false, format!("{conf}[delimiter=;]")),
        ('\t', true, format!("{conf}[delimiter=\\t]")),
        (' ', false, format!("{conf}[delimiter=\\x20]")),
    ] {
        let format = LineFormat::OpenXchange(OxFormat {
            delimiter,
            attribute_names,
            ..OxFormat::default()
        });
        check(format, &filter);
    }
}
