//! `flightrec audit` on temporary files: plain, gzip, rotated sets, filters, limits.

use std::io::Write as _;
use std::path::Path;

use clap::Parser;
use flate2::write::GzEncoder;
use flightrec_audit::viewer::{self, AuditArgs};
use flightrec_audit::{EjabberdFormat, LineFormat, OxFormat};
use flightrec_core::event::{
    Addr, AuthFailure, AuthSuccess, Connect, Decoded, Logout, Peer, SessionForbidden,
};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    audit: AuditArgs,
}

fn args(list: &[&str]) -> AuditArgs {
    let mut all = vec!["flightrec-audit"];
    all.extend_from_slice(list);
    Cli::try_parse_from(all).unwrap().audit
}

struct Run {
    code: u8,
    out: String,
    err: String,
}

fn run(list: &[&str]) -> Run {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = viewer::run(&args(list), &mut out, &mut err);
    Run {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

/// 2026-11-23 00:00:00 UTC.
const DAY: i64 = 1_795_392_000;

fn peer(last: u8) -> Option<Peer> {
    Some(Peer {
        addr: Addr::V4([192, 0, 2, last]),
        port: 40000 + u16::from(last),
    })
}

fn line(format: &LineFormat, secs: i64, e: &Decoded<'_>) -> String {
    let mut s = String::new();
    format
        .render(i128::from(secs) * 1_000_000_000, "", e, &mut s)
        .unwrap();
    s
}

fn ej() -> LineFormat {
    LineFormat::Ejabberd(EjabberdFormat::default())
}

fn ox() -> LineFormat {
    LineFormat::OpenXchange(OxFormat::default())
}

fn fail<'a>(user: &'a str, host: &'a str, last: u8) -> Decoded<'a> {
    Decoded::AuthFailure(AuthFailure {
        user,
        host,
        peer: peer(last),
        mechanism: "PLAIN",
        reason: "bad password",
    })
}

fn write_plain(path: &Path, lines: &[String]) {
    let mut f = std::fs::File::create(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn write_gz(path: &Path, lines: &[String]) {
    let f = std::fs::File::create(path).unwrap();
    let mut gz = GzEncoder::new(f, flate2::Compression::default());
    for l in lines {
        writeln!(gz, "{l}").unwrap();
    }
    gz.finish().unwrap();
}

/// A rotated set: audit.log.2.gz (oldest), audit.log.1, audit.log (newest), mixing styles.
fn rotated_set(dir: &Path) {
    write_gz(
        &dir.join("audit.log.2.gz"),
        &[
            line(&ej(), DAY + 10, &fail("alice", "example.org", 1)),
            line(
                &ox(),
                DAY + 20,
                &Decoded::Connect(Connect {
                    protocol: "xmpp-c2s",
                    peer: peer(2),
                }),
            ),
        ],
    );
    write_plain(
        &dir.join("audit.log.1"),
        &[
            line(&ej(), DAY + 3600, &fail("bob", "example.org", 3)),
            line(
                &ej(),
                DAY + 3700,
                &Decoded::AuthSuccess(AuthSuccess {
                    user: "alice",
                    host: "example.org",
                    peer: peer(1),
                    mechanism: "SCRAM-SHA-1",
                }),
            ),
        ],
    );
    write_plain(
        &dir.join("audit.log"),
        &[
            line(&ox(), DAY + 86_400 + 5, &fail("carol", "other.net", 4)),
            line(
                &ej(),
                DAY + 86_400 + 6,
                &Decoded::SessionForbidden(SessionForbidden {
                    user: "tron",
                    host: "example.org",
                    resource: "teeest",
                }),
            ),
            line(
                &ej(),
                DAY + 86_400 + 7,
                &Decoded::Logout(Logout {
                    user: "alice",
                    host: "example.org",
                    peer: peer(1),
                }),
            ),
        ],
    );
}

/// Table rows (without header and closing line).
fn rows(out: &str) -> Vec<&str> {
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 2, "{out}");
    assert!(lines[0].starts_with("Date (UTC)"), "{out}");
    lines[1..lines.len() - 1].to_vec()
}

fn closing(out: &str) -> &str {
    out.lines().last().unwrap()
}

#[test]
fn rotated_set_newest_first_across_plain_and_gz() {
    let dir = tempfile::tempdir().unwrap();
    rotated_set(dir.path());
    let d = dir.path().to_str().unwrap();
    let r = run(&[d]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.err, "");
    let rows = rows(&r.out);
    let dates: Vec<&str> = rows.iter().map(|r| &r[..19]).collect();
    assert_eq!(
        dates,
        [
            "2026-11-24 00:00:07",
            "2026-11-24 00:00:06",
            "2026-11-24 00:00:05",
            "2026-11-23 01:01:40",
            "2026-11-23 01:00:00",
            "2026-11-23 00:00:20",
            "2026-11-23 00:00:10",
        ]
    );
    assert!(rows[0].contains("logout") && rows[0].contains("alice@example.org"));
    assert!(rows[1].contains("session-forbidden") && rows[1].contains("tron@example.org/teeest"));
    assert!(rows[2].contains("carol@other.net") && rows[2].contains("192.0.2.4:40004"));
    assert!(rows[2].contains("PLAIN: bad password"));
    assert!(rows[5].contains("connect") && rows[5].contains("xmpp-c2s"));
    assert_eq!(closing(&r.out), "7 records displayed");

    // The same files given one by one, and as a glob, give the same output.
    let files = ["audit.log", "audit.log.1", "audit.log.2.gz"].map(|f| format!("{d}/{f}"));
    let by_files = run(&files.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(by_files.out, r.out);
    let by_glob = run(&[&format!("{d}/audit.log*")]);
    assert_eq!(by_glob.out, r.out);
    // A file given twice (directory and name) is read once.
    let twice = run(&[d, &files[0]]);
    assert_eq!(twice.out, r.out);
}

#[test]
fn equal_times_keep_file_order_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let older = dir.path().join("a.log.1");
    let newer = dir.path().join("a.log");
    write_plain(&older, &[line(&ej(), DAY, &fail("first", "h", 1))]);
    write_plain(
        &newer,
        &[
            line(&ej(), DAY, &fail("second", "h", 1)),
            line(&ej(), DAY, &fail("third", "h", 1)),
        ],
    );
    let r = run(&[dir.path().to_str().unwrap()]);
    let rows = rows(&r.out);
    assert!(rows[0].contains("third@h"));
    assert!(rows[1].contains("second@h"));
    assert!(rows[2].contains("first@h"));
}

#[test]
fn filters_by_host_account_global_kind_and_time() {
    let dir = tempfile::tempdir().unwrap();
    rotated_set(dir.path());
    let d = dir.path().to_str().unwrap();
    let count = |list: &[&str]| {
        let r = run(list);
        assert_eq!(r.code, 0, "{list:?}: {}", r.err);
        closing(&r.out).to_owned()
    };
    // Host: its 5 events plus the global connect.
    assert_eq!(count(&["example.org", d]), "6 records displayed");
    assert_eq!(count(&["EXAMPLE.org", d]), "6 records displayed");
    assert_eq!(
        count(&["--target", "example.org", d]),
        "6 records displayed"
    );
    assert_eq!(
        count(&["example.org", "--no-global", d]),
        "5 records displayed"
    );
    assert_eq!(count(&["other.net", d]), "2 records displayed");
    // Account: never global events.
    assert_eq!(count(&["alice@example.org", d]), "3 records displayed");
    assert_eq!(count(&["alice@other.net", d]), "0 records displayed");
    assert_eq!(count(&["--global", d]), "1 records displayed");
    assert_eq!(count(&["--no-global", d]), "6 records displayed");
    assert_eq!(count(&["--kind", "auth-failure", d]), "3 records displayed");
    assert_eq!(
        count(&["--kind", "auth-failure,logout", d]),
        "4 records displayed"
    );
    assert_eq!(
        count(&["--kind", "connect", "--kind", "logout", d]),
        "2 records displayed"
    );
    assert_eq!(count(&["--since", "2026-11-24", d]), "3 records displayed");
    assert_eq!(count(&["--until", "2026-11-23", d]), "4 records displayed");
    assert_eq!(
        count(&[
            "--since",
            "2026-11-23T00:00:20Z",
            "--until",
            "2026-11-23T03:00:00+01:00",
            d
        ]),
        "3 records displayed"
    );
    assert_eq!(count(&["--since", "2026-11-25", d]), "0 records displayed");
}

#[test]
fn limit_keeps_the_newest_like_the_full_listing() {
    let dir = tempfile::tempdir().unwrap();
    // Out-of-order times (a clock step) across files, to exercise the heap.
    let times = [50, 10, 40, 40, 30, 90, 20, 60, 60, 0, 70, 80];
    let mut lines = Vec::new();
    for (i, t) in times.iter().enumerate() {
        let user = format!("u{i}");
        lines.push(line(&ej(), DAY + t, &fail(&user, "h", 1)));
    }
    write_plain(&dir.path().join("x.log.1"), &lines[..6]);
    write_plain(&dir.path().join("x.log"), &lines[6..]);
    let d = dir.path().to_str().unwrap();
    let full = run(&[d]);
    let full_rows = rows(&full.out);
    assert_eq!(full_rows.len(), times.len());
    for n in 0..=times.len() + 1 {
        let limited = run(&["--limit", &n.to_string(), d]);
        assert_eq!(limited.code, 0);
        let expected = &full_rows[..n.min(times.len())];
        let got = rows(&limited.out);
        // Column widths may differ; compare the cells.
        let cells = |r: &&str| r.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            got.iter().map(cells).collect::<Vec<_>>(),
            expected.iter().map(cells).collect::<Vec<_>>(),
            "limit {n}"
        );
        assert_eq!(
            closing(&limited.out),
            format!("{} records displayed", expected.len())
        );
    }
}

#[test]
fn lines_output_shows_the_lines_as_written() {
    let dir = tempfile::tempdir().unwrap();
    rotated_set(dir.path());
    let r = run(&[
        "--output",
        "lines",
        "--limit",
        "2",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(
        r.out,
        "2026-11-24 00:00:07 Closed session for alice@example.org from 192.0.2.1 port 40001\n\
         2026-11-24 00:00:06 Forbidden session for tron@example.org/teeest\n\
         2 records displayed\n"
    );
}

#[test]
fn garbage_lines_are_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let good = line(&ej(), DAY, &fail("alice", "h", 1));
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"garbage\n");
    bytes.extend_from_slice(good.as_bytes());
    bytes.extend_from_slice(b"\r\n\n");
    bytes.extend_from_slice(b"2026-11-23 00:00:00 Failed PLAIN authentication for a\x1b[2J@h\n");
    bytes.extend_from_slice(b"\xff\xfe not utf-8\n");
    bytes.extend(std::iter::repeat_n(b'x', viewer::MAX_LINE + 10));
    bytes.push(b'\n');
    // A last line without newline (the daemon is writing it) still counts.
    bytes.extend_from_slice(good.as_bytes());
    std::fs::write(&path, bytes).unwrap();
    let r = run(&[path.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert_eq!(closing(&r.out), "2 records displayed");
    assert!(r.err.contains("audit.log:1: unreadable line"), "{}", r.err);
    assert!(r.err.contains(":4: unreadable line"), "{}", r.err);
    assert!(
        r.err.contains(":5: unreadable line: not UTF-8"),
        "{}",
        r.err
    );
    assert!(
        r.err.contains(":6: unreadable line: longer than 64 KiB"),
        "{}",
        r.err
    );
    assert!(r.err.contains("4 unreadable line(s) skipped"), "{}", r.err);
    assert!(!r.err.contains('\x1b') && !r.out.contains('\x1b'));
}

#[test]
fn truncated_gz_shows_what_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.gz");
    let lines: Vec<String> = (0..2000)
        .map(|i| line(&ej(), DAY + i, &fail(&format!("user{i}"), "h", 1)))
        .collect();
    write_gz(&full, &lines);
    let bytes = std::fs::read(&full).unwrap();
    let cut = dir.path().join("audit.log.3.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::remove_file(&full).unwrap();
    let r = run(&[cut.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(r.err.contains("corrupt data"), "{}", r.err);
    let shown: usize = closing(&r.out).split(' ').next().unwrap().parse().unwrap();
    assert!(shown > 100 && shown < 2000, "{shown}");
}

#[test]
fn hostile_fields_are_escaped_in_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let hostile = "x\x1b]0;pwned\x07 from 6.6.6.6\u{202e}";
    write_plain(
        &path,
        &[
            line(&ej(), DAY, &fail(hostile, "h", 1)),
            line(
                &ox(),
                DAY,
                &Decoded::AuthFailure(AuthFailure {
                    user: "u",
                    host: "h",
                    peer: None,
                    mechanism: hostile,
                    reason: hostile,
                }),
            ),
        ],
    );
    let r = run(&[path.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.err);
    for c in ['\x1b', '\x07', '\u{202e}'] {
        assert!(!r.out.contains(c), "{:?}", r.out);
    }
    assert!(
        r.out
            .contains("x\\x1b]0;pwned\\x07\\x20from\\x206.6.6.6\\u{202e}@h"),
        "{}",
        r.out
    );
}

#[test]
fn other_settings_read_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ox.log");
    let f = LineFormat::OpenXchange(OxFormat {
        delimiter: ';',
        attribute_names: false,
        date_pattern: "%d.%m.%Y %H:%M:%S".into(),
        time_zone: "+01:00".parse().unwrap(),
    });
    let e = LineFormat::Ejabberd(EjabberdFormat {
        time_zone: "+01:00".parse().unwrap(),
    });
    write_plain(
        &path,
        &[
            line(&f, DAY, &fail("a", "h", 1)),
            line(&e, DAY, &fail("b", "h", 1)),
        ],
    );
    let p = path.to_str().unwrap();
    let r = run(&[
        "--delimiter",
        ";",
        "--date-pattern",
        "%d.%m.%Y %H:%M:%S",
        "--tz",
        "+01:00",
        p,
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        rows(&r.out)
            .iter()
            .filter(|r| r.starts_with("2026-11-23 00:00:00"))
            .count(),
        2
    );
    // Default settings cannot read the Open-Xchange line and misplace the ejabberd one.
    let r = run(&[p]);
    assert_eq!(r.code, 1);
    assert!(rows(&r.out)[0].starts_with("2026-11-23 01:00:00"));
}

#[test]
fn usage_and_io_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    rotated_set(dir.path());
    let d = dir.path().to_str().unwrap();
    let missing = format!("{d}/nope.log");
    let r = run(&[&missing]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("nope.log"), "{}", r.err);
    // Missing file beside a good one: the good one is still shown.
    let r = run(&[d, &missing]);
    assert_eq!(r.code, 2);
    assert_eq!(closing(&r.out), "7 records displayed");
    let r = run(&[&format!("{d}/*.nothing")]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("matches no file"), "{}", r.err);
    let r = run(&["--global", "alice@example.org", d]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("--global"), "{}", r.err);
    let r = run(&["--target", "h", "example.org", d]);
    assert_eq!(r.code, 2);
    let r = run(&["user@", d]);
    assert_eq!(r.code, 2);
    let r = run(&["--delimiter", "a", d]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("delimiter"), "{}", r.err);
    // Argument errors are clap's.
    let cli = |list: &[&str]| {
        let mut all = vec!["x"];
        all.extend_from_slice(list);
        Cli::try_parse_from(all).is_err()
    };
    assert!(cli(&[]));
    assert!(cli(&["--global", "--no-global", d]));
    assert!(cli(&["--since", "yesterday", d]));
    assert!(cli(&["--kind", "log", d]));
    assert!(cli(&["--tz", "CET", d]));
    assert!(cli(&["--limit", "-1", d]));
}

#[test]
fn works_on_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    std::fs::write(&path, b"").unwrap();
    let r = run(&[path.to_str().unwrap()]);
    assert_eq!(
        (r.code, r.out.as_str()),
        (
            0,
            "Date (UTC)  Event  Account  Peer  Details\n0 records displayed\n"
        )
    );
}

/// The layout the Linux adapter writes with `path = "audit/@HOST@/audit.log"`: a
/// directory per host, each with its rotated set.
fn per_host_layout(root: &Path) {
    let a = root.join("a.example");
    let b = root.join("b.example");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    write_gz(
        &a.join("audit.log.2.gz"),
        &[line(&ej(), DAY + 1, &fail("alice", "a.example", 1))],
    );
    write_plain(
        &a.join("audit.log.1"),
        &[line(&ej(), DAY + 2, &fail("alice", "a.example", 1))],
    );
    write_plain(
        &a.join("audit.log"),
        &[line(&ox(), DAY + 3, &fail("bob", "a.example", 2))],
    );
    write_plain(
        &b.join("audit.log"),
        &[line(&ej(), DAY + 4, &fail("alice", "b.example", 3))],
    );
}

#[test]
fn reads_the_per_host_layout_of_the_linux_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit");
    per_host_layout(&audit);
    let d = audit.to_str().unwrap();
    let r = run(&[d]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    let rows = rows(&r.out);
    let accounts: Vec<&str> = rows
        .iter()
        .map(|r| r.split_whitespace().nth(3).unwrap())
        .collect();
    assert_eq!(
        accounts,
        [
            "alice@b.example",
            "bob@a.example",
            "alice@a.example",
            "alice@a.example"
        ]
    );
    assert_eq!(closing(&r.out), "4 records displayed");
    // The README's usage: an account and the audit directory.
    let r = run(&["alice@a.example", d]);
    assert_eq!(
        (r.code, closing(&r.out)),
        (0, "2 records displayed"),
        "{}",
        r.err
    );
    // The parent directory and a glob over the host directories read the same.
    let r = run(&[dir.path().to_str().unwrap()]);
    assert_eq!(closing(&r.out), "4 records displayed");
    let r = run(&[&format!("{d}/*")]);
    assert_eq!(
        (r.code, closing(&r.out)),
        (0, "4 records displayed"),
        "{}",
        r.err
    );
}

#[cfg(unix)]
#[test]
fn links_to_directories_and_fifos_are_not_followed_or_opened() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit");
    per_host_layout(&audit);
    // A link back up would loop; it is reported, not followed.
    std::os::unix::fs::symlink(&audit, audit.join("loop")).unwrap();
    let d = audit.to_str().unwrap();
    let r = run(&[d]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(closing(&r.out), "4 records displayed");
    assert!(
        r.err.contains("link to a directory, not followed"),
        "{}",
        r.err
    );
    // A FIFO would block the reader: skipped in a directory, refused when named.
    let fifo = audit.join("a.example").join("audit.log.3");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: mkfifo did not run");
        return;
    }
    let r = run(&[d]);
    assert_eq!(
        (r.code, closing(&r.out)),
        (0, "4 records displayed"),
        "{}",
        r.err
    );
    assert!(
        r.err.contains("audit.log.3: not a regular file: skipped"),
        "{}",
        r.err
    );
    let r = run(&[fifo.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("not a regular file"), "{}", r.err);
}

#[test]
fn host_target_matches_every_spelling_of_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    write_plain(
        &path,
        &[
            line(&ej(), DAY + 1, &fail("alice", "example.org", 1)),
            line(&ej(), DAY + 2, &fail("alice", "EXAMPLE.ORG", 1)),
            line(&ox(), DAY + 3, &fail("alice", "Example.Org.", 1)),
            line(&ej(), DAY + 4, &fail("alice", "example.org.evil", 1)),
            line(&ej(), DAY + 5, &fail("Alice", "example.org", 1)),
        ],
    );
    let p = path.to_str().unwrap();
    for target in [
        "alice@example.org",
        "alice@EXAMPLE.org.",
        "alice@example.org.",
    ] {
        let r = run(&[target, p]);
        assert_eq!(closing(&r.out), "3 records displayed", "{target}");
        // The lines keep the name as it was sent.
        assert!(r.out.contains("alice@Example.Org."), "{}", r.out);
    }
    let r = run(&["example.org.", p]);
    assert_eq!(closing(&r.out), "4 records displayed");
}

#[test]
fn says_why_nothing_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    // No file: an error, not an empty answer.
    let r = run(&[empty.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_eq!(closing(&r.out), "0 records displayed");
    assert!(r.err.contains("no audit log file found"), "{}", r.err);
    // Files without records.
    std::fs::write(empty.join("audit.log"), b"").unwrap();
    let r = run(&[empty.to_str().unwrap()]);
    assert_eq!(r.code, 0);
    assert!(
        r.err.contains("1 file(s) read, no audit record in them"),
        "{}",
        r.err
    );
    // Records, none for the account: the hosts seen are listed.
    let audit = dir.path().join("audit");
    per_host_layout(&audit);
    let d = audit.to_str().unwrap();
    let r = run(&["carol@a.example", d]);
    assert_eq!((r.code, closing(&r.out)), (0, "0 records displayed"));
    assert!(
        r.err.contains(
            "4 record(s) in 4 file(s), none for carol@a.example (hosts seen: a.example, b.example)"
        ),
        "{}",
        r.err
    );
    // Records for the account, all excluded by the options.
    let r = run(&[
        "alice@a.example",
        "--kind",
        "logout",
        "--since",
        "2026-11-23",
        d,
    ]);
    assert_eq!((r.code, closing(&r.out)), (0, "0 records displayed"));
    assert!(
        r.err.contains(
            "2 record(s) for alice@a.example in 4 file(s), all excluded by --kind, --since"
        ),
        "{}",
        r.err
    );
    let r = run(&["--limit", "0", d]);
    assert!(r.err.contains("--limit 0 shows none of the 4"), "{}", r.err);
    // A hostile target is escaped in the message.
    let r = run(&["--target", "x\u{202e}\u{a0}@a.example", d]);
    assert!(
        r.err.contains("none for x\\u{202e}\\u{00a0}@a.example"),
        "{}",
        r.err
    );
    let r = run(&["--target", "x\u{202e}\u{a0}@", d]);
    assert_eq!(r.code, 2);
    assert!(
        r.err.contains("bad account x\\u{202e}\\u{00a0}@"),
        "{}",
        r.err
    );
    // Something shown: nothing said.
    let r = run(&["alice@a.example", d]);
    assert_eq!(r.err, "");
}

#[test]
fn table_shows_spaces_at_the_ends_of_a_field_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let e = Decoded::AuthFailure(AuthFailure {
        user: "alice",
        host: "h",
        peer: None,
        mechanism: "PLAIN",
        reason: " wrong password  ",
    });
    write_plain(&path, &[line(&ej(), DAY, &e), line(&ox(), DAY, &e)]);
    let r = run(&[path.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.err);
    for row in rows(&r.out) {
        assert!(
            row.ends_with("PLAIN: \\x20wrong password\\x20\\x20"),
            "{row:?}"
        );
    }
}

/// `--output lines` lines (without the closing line).
fn listed(out: &str) -> Vec<&str> {
    let lines: Vec<&str> = out.lines().collect();
    lines[..lines.len() - 1].to_vec()
}

/// The model is the viewer reading every line: asking for an account (which parses only
/// the lines that can be its own) shows exactly the lines of the full listing that parse
/// as that account's, in the same order, whatever look-alike, hostile or case-varied
/// names the file holds, in both styles.
#[test]
fn an_account_shows_what_the_full_listing_shows_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let users = [
        "alice",
        "alicex",
        "xalice",
        "Alice",
        "al ice",
        "alice@evil",
        "alice\u{202e}",
        "a|b=c",
        "a/b",
        "\\",
        "x",
    ];
    let hosts = [
        "example.org",
        "EXAMPLE.org",
        "example.org.",
        "other.example",
    ];
    let ox_semicolon = LineFormat::OpenXchange(OxFormat {
        delimiter: ';',
        ..OxFormat::default()
    });
    let mut lines = Vec::new();
    let mut n = 0i64;
    for user in users {
        for host in hosts {
            for format in [ej(), ox(), ox_semicolon.clone()] {
                n += 1;
                // Times not in file order: the newest-first sort is exercised too.
                let secs = DAY + (n * 7919) % 500;
                lines.push(line(&format, secs, &fail(user, host, (n % 200) as u8)));
            }
        }
    }
    write_plain(&path, &lines);
    let p = path.to_str().unwrap();
    let mut found = 0;
    for delimiter in ["|", ";"] {
        let all = run(&["--output", "lines", "--delimiter", delimiter, p]);
        assert_eq!(all.code, 1, "the other delimiter's lines do not parse");
        for user in users {
            for host in ["example.org", "EXAMPLE.ORG", "other.example."] {
                let target = format!("{user}@{host}");
                // As the viewer splits a target: at the first `@`.
                let (user, host) = target.split_once('@').unwrap();
                let want: Vec<&str> = listed(&all.out)
                    .into_iter()
                    .filter(|l| {
                        let parsed = if l.starts_with(|c: char| c.is_ascii_digit()) {
                            ej().parse(l)
                        } else if delimiter == "|" {
                            ox().parse(l)
                        } else {
                            ox_semicolon.parse(l)
                        };
                        parsed.unwrap().event.account().is_some_and(|(u, h)| {
                            u == user
                                && h.trim_end_matches('.')
                                    .eq_ignore_ascii_case(host.trim_end_matches('.'))
                        })
                    })
                    .collect();
                found += want.len();
                let one = run(&[
                    "--target",
                    &target,
                    "--output",
                    "lines",
                    "--delimiter",
                    delimiter,
                    p,
                ]);
                assert_eq!(listed(&one.out), want, "{target} with {delimiter}");
                assert_eq!(
                    closing(&one.out),
                    format!("{} records displayed", want.len())
                );
            }
        }
    }
    assert!(found > 100, "{found} lines compared");
}

/// With an account asked for, only lines that can be its own are parsed: a damaged line
/// that cannot be its own (it does not hold the user's name) is not looked at, but one
/// that holds it, a line that is not UTF-8 or too long is counted as ever; when nothing
/// is found, every line is read to say why, and every damaged one counted.
#[test]
fn an_account_counts_the_damaged_lines_that_can_be_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"garbage\n");
    bytes.extend_from_slice(line(&ej(), DAY, &fail("alice", "h", 1)).as_bytes());
    bytes.extend_from_slice(
        b"\n2026-11-23 00:00:00 Failed PLAIN authentication for alice@h from 1.2.3.04 port 1\n",
    );
    bytes.extend_from_slice(b"\xff\xfe not utf-8\n");
    std::fs::write(&path, bytes).unwrap();
    let p = path.to_str().unwrap();
    let r = run(&["alice@h", p]);
    assert_eq!((r.code, closing(&r.out)), (1, "1 records displayed"));
    assert!(!r.err.contains(":1: unreadable line"), "{}", r.err);
    assert!(r.err.contains(":3: unreadable line"), "{}", r.err);
    assert!(
        r.err.contains(":4: unreadable line: not UTF-8"),
        "{}",
        r.err
    );
    assert!(r.err.contains("2 unreadable line(s) skipped"), "{}", r.err);
    let r = run(&["bob@h", p]);
    assert_eq!((r.code, closing(&r.out)), (1, "0 records displayed"));
    assert!(r.err.contains(":1: unreadable line"), "{}", r.err);
    assert!(r.err.contains("3 unreadable line(s) skipped"), "{}", r.err);
    assert!(
        r.err.contains("1 record(s) in 1 file(s), none for bob@h"),
        "{}",
        r.err
    );
}
