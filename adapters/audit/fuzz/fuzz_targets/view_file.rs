//! `flightrec audit` on a file of any bytes: never panics, and asking for an account
//! (which parses only the lines that can be its own) shows exactly the lines of the full
//! listing that parse as that account's, in the same order.
#![no_main]

use flightrec_audit::viewer::{run, AuditArgs, Output};
use flightrec_audit::{rfc5424, EjabberdFormat, LineFormat, OxFormat, UtcOffset};
use libfuzzer_sys::fuzz_target;

const ACCOUNTS: [(&str, &str); 4] = [("alice", "h"), ("a", "H."), ("a b", "h"), ("x|y=z", "h")];

fn args(target: Option<String>, path: &str) -> AuditArgs {
    AuditArgs {
        args: vec![path.to_owned()],
        target,
        global: false,
        no_global: false,
        limit: None,
        since: None,
        until: None,
        kind: Vec::new(),
        output: Output::Lines,
        tz: UtcOffset::UTC,
        delimiter: '|',
        date_pattern: "%Y-%m-%dT%H:%M:%SZ".to_owned(),
        gaps: false,
        sd_id: rfc5424::DEFAULT_SD_ID.to_owned(),
    }
}

/// The lines printed (the closing count left out).
fn shown(args: &AuditArgs) -> (u8, Vec<String>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(args, &mut out, &mut err);
    let text = String::from_utf8(out).expect("output is UTF-8");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.pop();
    (code, lines)
}

/// The account a listed line is about, as the viewer parses it.
fn account(line: &str) -> Option<(String, String)> {
    let text = if line.starts_with('<') {
        rfc5424::forwarded(line, rfc5424::DEFAULT_SD_ID, &mut rfc5424::SeqCheck::new()).ok()??
    } else {
        line.to_owned()
    };
    let format = if text.starts_with(|c: char| c.is_ascii_digit()) {
        LineFormat::Ejabberd(EjabberdFormat::default())
    } else {
        LineFormat::OpenXchange(OxFormat::default())
    };
    let record = format.parse(&text).expect("a listed line parses");
    record
        .event
        .account()
        .map(|(u, h)| (u.to_owned(), h.to_owned()))
}

/// Where the input is written for the viewer to read: a tmpfs where there is one (a disk
/// would take a write per execution).
fn scratch() -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let (user, host) = ACCOUNTS[usize::from(pick) % ACCOUNTS.len()];
    let path = scratch().join(format!("flightrec-fuzz-view-{}", std::process::id()));
    if std::fs::write(&path, content).is_err() {
        return;
    }
    let p = path.to_str().unwrap_or_default();
    let (_, all) = shown(&args(None, p));
    let (_, one) = shown(&args(Some(format!("{user}@{host}")), p));
    let bare = |h: &str| h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase();
    let want: Vec<String> = all
        .into_iter()
        .filter(|l| account(l).is_some_and(|(u, h)| u == user && bare(&h) == bare(host)))
        .collect();
    assert_eq!(one, want);
});
