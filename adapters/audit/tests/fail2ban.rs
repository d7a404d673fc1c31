//! The shipped fail2ban filters, run by the real `fail2ban-regex` (Python, as fail2ban
//! is), against failures whose user or host differ by one character of every class the
//! escaping covers: each character core's `is_dangerous` flags (Unicode whitespace,
//! controls, format and invisible characters; checked against Python's own `\s` and
//! categories in core) and the ASCII space. Every failure must match and count against
//! the real peer, or an attacker who varies that character is never banned.
//!
//! A real fail2ban server then bans attackers who spell every failure differently.
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

/// Runs a real fail2ban server (no actions: a ban only lists the address) with one jail per
/// layout and stops it when dropped.
struct Server {
    conf: PathBuf,
    child: std::process::Child,
}

impl Server {
    /// `jails`: name, filter (with parameters), log file.
    fn start(dir: &Path, jails: &[(&str, &str, &Path)], maxretry: usize) -> Server {
        let conf = dir.join("conf");
        std::fs::create_dir_all(conf.join("filter.d")).unwrap();
        std::fs::create_dir_all(conf.join("action.d")).unwrap();
        for f in ["flightrec-ejabberd.conf", "flightrec-ox.conf"] {
            std::fs::copy(filter(f), conf.join("filter.d").join(f)).unwrap();
        }
        let d = dir.display();
        std::fs::write(
            conf.join("fail2ban.conf"),
            format!(
                "[Definition]\nloglevel = INFO\nlogtarget = {d}/server.log\nsyslogsocket = auto\n\
                 socket = {d}/sock\npidfile = {d}/pid\ndbfile = :memory:\n"
            ),
        )
        .unwrap();
        let mut jail = format!(
            "[DEFAULT]\nbackend = polling\nmaxretry = {maxretry}\nfindtime = 1d\nbantime = 1d\n\
             logtimezone = UTC\naction =\n"
        );
        for (name, filter, log) in jails {
            jail += &format!(
                "[{name}]\nenabled = true\nfilter = {filter}\nlogpath = {}\n",
                log.display()
            );
        }
        std::fs::write(conf.join("jail.conf"), jail).unwrap();
        let child = Command::new("fail2ban-server")
            .args(["-f", "-x", "-c"])
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Server { conf, child }
    }

    /// `fail2ban-client status JAIL`, or `None` while the server is not up.
    fn status(&self, jail: &str) -> Option<String> {
        let out = Command::new("fail2ban-client")
            .arg("-c")
            .arg(&self.conf)
            .args(["status", jail])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("fail2ban-client")
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .output();
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The value after `key:` in a `fail2ban-client status` answer.
fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.split_once(&format!("{key}:")).map(|(_, v)| v.trim()))
        .unwrap_or("")
}

/// A real fail2ban server bans each attacker whose every failed login is spelled
/// differently (one character of every class in the user or the host): the jail's
/// `maxretry` is the number of spellings, so the ban comes only if every one of them
/// counted. Addresses planted in fields are never banned.
#[test]
fn fail2ban_server_bans_attackers_who_vary_the_spelling() {
    if !have_fail2ban() {
        return;
    }
    let chars = hostile_chars();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let t = i128::from(now) * 1_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let ox = |delimiter, attribute_names| {
        LineFormat::OpenXchange(OxFormat {
            delimiter,
            attribute_names,
            ..OxFormat::default()
        })
    };
    let ox_conf = "flightrec-ox";
    let ox_semicolon = format!("{ox_conf}[delimiter=\";\"]");
    let layouts = [
        (
            "ejabberd",
            LineFormat::Ejabberd(EjabberdFormat::default()),
            "flightrec-ejabberd",
        ),
        ("ox", ox('|', true), ox_conf),
        ("oxsemicolon", ox(';', false), ox_semicolon.as_str()),
    ];
    let mut jails = Vec::new();
    for (i, (name, format, _)) in layouts.iter().enumerate() {
        // Attacker .1x varies the user, .2x the host; the planted address is 203.0.113.1.
        let mut log = String::new();
        for &c in &chars {
            let user = format!("al{c}ice{c}from{c}203.0.113.1{c}ip={c}203.0.113.1");
            let host = format!("example{c}org");
            for (user, host, last) in [(user.as_str(), "example.org", 10), ("alice", &host, 20)] {
                let e = Decoded::AuthFailure(AuthFailure {
                    user,
                    host,
                    peer: peer(last + u8::try_from(i).unwrap()),
                    mechanism: "PLAIN",
                    reason: "",
                });
                format.render(t, "gw", &e, &mut log).unwrap();
                log.push('\n');
            }
        }
        let path = dir.path().join(format!("{name}.log"));
        std::fs::write(&path, log).unwrap();
        jails.push((*name, path));
    }
    let jail_list: Vec<(&str, &str, &Path)> = layouts
        .iter()
        .zip(&jails)
        .map(|((name, _, filter), (_, path))| (*name, *filter, path.as_path()))
        .collect();
    let server = Server::start(dir.path(), &jail_list, chars.len());
    // The server reads the logs on its own time: wait for the verdict, with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    for (i, (name, _, _)) in layouts.iter().enumerate() {
        let expected = format!("192.0.2.{} 192.0.2.{}", 10 + i, 20 + i);
        let total = (2 * chars.len()).to_string();
        loop {
            let status = server.status(name).unwrap_or_default();
            let banned = status_field(&status, "Banned IP list");
            let mut banned: Vec<&str> = banned.split_whitespace().collect();
            banned.sort_unstable();
            if banned.join(" ") == expected && status_field(&status, "Total failed") == total {
                break;
            }
            if std::time::Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                panic!(
                    "jail {name}: expected {expected} banned after {total} failures, status:\n{status}\nserver log (last lines, newest first):\n{}",
                    tail.join("\n")
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}
