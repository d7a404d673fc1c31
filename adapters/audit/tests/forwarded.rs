//! `flightrec audit` on a collector's RFC 5424 files (what flightrec gateways forward):
//! the records as from our own audit files, and `--gaps` per (host, boot).

use clap::Parser;
use flightrec_audit::viewer::{self, exit, AuditArgs};
use flightrec_audit::{EjabberdFormat, LineFormat};
use flightrec_core::event::{AuthFailure, Decoded, Peer};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    audit: AuditArgs,
}

fn run(list: &[&str]) -> (u8, String, String) {
    let mut all = vec!["flightrec-audit"];
    all.extend_from_slice(list);
    let args = Cli::try_parse_from(all).unwrap().audit;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = viewer::run(&args, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

/// A forwarded failed login as rsyslog's RSYSLOG_SyslogProtocol23Format writes it.
fn forwarded(host: &str, boot: &str, seq: u64, user: &str) -> String {
    let peer: std::net::SocketAddr = "192.0.2.7:40000".parse().unwrap();
    let e = Decoded::AuthFailure(AuthFailure {
        user,
        host: "example.org",
        peer: Some(Peer::from(peer)),
        mechanism: "PLAIN",
        reason: "",
    });
    let mut msg = String::new();
    let secs = 1_795_392_000 + seq as i128;
    LineFormat::Ejabberd(EjabberdFormat::default())
        .render(secs * 1_000_000_000, "gw", &e, &mut msg)
        .unwrap();
    format!(
        "<84>1 2026-11-23T00:00:00.000000+00:00 {host} flightrec 42 auth-failure \
         [flightrec@32473 host=\"{host}\" boot=\"{boot}\" seq=\"{seq}\" user=\"{user}\"] {msg}"
    )
}

fn notice(host: &str, boot: &str, seq: u64) -> String {
    format!(
        "<84>1 2026-11-23T00:00:00.000000+00:00 {host} flightrec 42 dump \
         [flightrec@32473 host=\"{host}\" boot=\"{boot}\" seq=\"{seq}\" reason=\"failed login\"] dump written: d.flr"
    )
}

#[test]
fn collector_files_read_like_audit_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw1.log");
    let lines = [
        forwarded("gw1", "b1", 0, "alice"),
        notice("gw1", "b1", 1),
        forwarded("gw1", "b1", 2, "bob"),
    ];
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let p = path.to_str().unwrap();
    let (code, out, err) = run(&[p]);
    assert_eq!(code, exit::OK, "{err}");
    assert!(
        out.contains("bob@example.org") && out.contains("alice@example.org"),
        "{out}"
    );
    assert!(out.ends_with("2 records displayed\n"), "{out}");
    // --output lines shows the lines as received.
    let (_, out, _) = run(&["--output", "lines", p]);
    assert!(out.starts_with(&lines[2]), "{out}");
    let (code, out, _) = run(&["--gaps", p]);
    assert_eq!(code, exit::OK);
    assert_eq!(
        out,
        "gw1 boot b1: seq 0..=2, 3 records: complete\n1 (host, boot) streams checked\n"
    );
}

#[test]
fn gaps_lists_missing_duplicated_and_out_of_order_per_host_and_boot() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    for seq in [0, 1, 2, 5, 6, 3, 6, 9] {
        lines.push(forwarded("gw1", "b1", seq, "u"));
    }
    // Another boot and another host, complete.
    for seq in 0..3 {
        lines.push(forwarded("gw1", "b2", seq, "u"));
        lines.push(forwarded("gw2", "b1", seq, "u"));
    }
    let path = dir.path().join("all.log");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let (code, out, _) = run(&["--gaps", path.to_str().unwrap()]);
    assert_eq!(code, exit::GAPS, "{out}");
    assert_eq!(
        out,
        "gw1 boot b1: seq 0..=9, 8 records: NOT complete\n\
         \x20 missing 4\n\
         \x20 missing 7..=8 (2)\n\
         \x20 duplicated 6 (1 extra)\n\
         \x20 out of order 3 (after 6)\n\
         gw1 boot b2: seq 0..=2, 3 records: complete\n\
         gw2 boot b1: seq 0..=2, 3 records: complete\n\
         3 (host, boot) streams checked\n"
    );
}

#[test]
fn hostile_host_in_a_forwarded_line_is_escaped_and_bad_lines_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    let evil = forwarded("gw1", "b1", 0, "u").replace("host=\"gw1\"", "host=\"gw\\\\x1b[2J x\"");
    let lines = [
        evil,
        "<84>1 - - - - - [other@1 a=\"b\"] not ours".to_owned(),
        "<84>1 broken".to_owned(),
    ];
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let (code, out, err) = run(&["--gaps", path.to_str().unwrap()]);
    assert_eq!(code, exit::UNREADABLE_LINES, "{err}");
    assert!(
        !out.contains('\x1b') && out.contains("gw\\\\x1b[2J\\x20x boot b1"),
        "{out}"
    );
    assert!(err.contains("2 unreadable line(s)"), "{err}");
}
