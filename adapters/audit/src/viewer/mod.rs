//! `flightrec audit`: view audit logs the way Prosody's `prosodyctl mod_audit` does.
//!
//! Reads ejabberd-style and Open-Xchange-style lines (each line's style is recognised on
//! its own: ejabberd lines start with a digit) from plain or gzip-compressed files,
//! rotated sets (`audit.log`, `audit.log.1`, `audit.log.2.gz`), directories with their
//! subdirectories (the Linux adapter's per-host layout `audit/@HOST@/audit.log` is read
//! from `audit/`) and glob patterns, with no daemon running. Records are shown newest
//! first, followed by `N records displayed`; when that is 0, stderr says why (no file
//! found, which is an error; no record in the files; none for the host or account asked
//! for, with the hosts seen; all excluded by the other options).
//!
//! A host given as target matches its records whatever their ASCII case or trailing dot
//! (`example.org`, `EXAMPLE.ORG`, `example.org.`); the user name matches exactly.
//!
//! Nothing a peer controls reaches the terminal raw: table cells are escaped with
//! [`flightrec_core::text::Escaped`] (no control, Unicode whitespace other than the ASCII
//! space, bidi, format or invisible character; spaces at a cell's ends escaped too), and
//! `--output lines` prints only lines that parse, which the parser accepts only as the
//! renderer escapes them. The one raw control it may print is the tab of an Open-Xchange
//! layout whose configured delimiter is tab.
//!
//! A *global* event is one tied to no account (today: a connection, which comes before
//! any login), like Prosody's host-wide events. By default they are shown with the rest;
//! `--global` shows only them, `--no-global` hides them, and a `user@host` target never
//! matches them.
//!
//! Memory does not grow with the logs: lines are read in fixed-size blocks, and the
//! records to show are held up to a bound, beyond which they go to sorted runs in an
//! unnamed temporary file (mode 0600) merged when shown. With `--limit N` only the N
//! newest records are kept while reading (a heap of N).
//!
//! Asking for an account (`user@host`) parses only the lines that can be its own: those
//! holding the user name as the line's style escapes it (see `scan::Prefilter`). The
//! other lines are checked to be UTF-8 and not too long, not parsed, so a damaged line
//! that cannot be the account's is not counted. When no record of the account is found,
//! every line is read again in full, so the message saying why, the damaged lines counted
//! and the exit status are those of a full read.

use std::io::{self, Write};
use std::path::Path;

use chrono::{DateTime, NaiveDate};
use flightrec_core::text::Escaped;
use flightrec_core::Kind;

use crate::{AuditRecord, EjabberdFormat, OxFormat, UtcOffset};

mod collect;
mod files;
mod read;
mod scan;
mod table;

use files::{expand, has_glob_chars};
use read::{Read, Reading};
use scan::Prefilter;

/// Longest line read; longer ones are counted unreadable (and not kept in memory).
pub const MAX_LINE: usize = 64 * 1024;

/// View audit logs (ejabberd- or Open-Xchange-style lines; plain, .gz, rotated sets), newest
/// first, as `prosodyctl mod_audit` does. Works without the daemon.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct AuditArgs {
    /// `[HOST | USER@HOST] PATH...`: audit log files (plain or .gz), directories or glob
    /// patterns. A first argument followed by others that is no existing file and holds
    /// no `/` or glob character selects a host or an account, as in
    /// `prosodyctl mod_audit`; `--target` says it explicitly.
    #[arg(value_name = "PATH", required = true, num_args = 1..)]
    pub args: Vec<String>,
    /// Show only events of this host or account (`host` or `user@host`).
    #[arg(long, value_name = "HOST|USER@HOST")]
    pub target: Option<String>,
    /// Show only global events (tied to no account, e.g. connections).
    #[arg(long, conflicts_with = "no_global")]
    pub global: bool,
    /// Hide global events.
    #[arg(long)]
    pub no_global: bool,
    /// Show at most the N newest records.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Show records at or after this time (RFC 3339, or YYYY-MM-DD for that day's start, UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
    pub since: Option<TimeArg>,
    /// Show records at or before this time (RFC 3339, or YYYY-MM-DD for that whole day, UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
    pub until: Option<TimeArg>,
    /// Show only these kinds of event (repeat or separate with commas).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub kind: Vec<KindArg>,
    /// A table, or the matching lines as they are in the files.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Zone the files' timestamps were written in, when the line does not say it
    /// (ejabberd style; Open-Xchange patterns without an offset).
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub tz: UtcOffset,
    /// Delimiter of Open-Xchange-style lines.
    #[arg(long, value_name = "CHAR", default_value_t = '|')]
    pub delimiter: char,
    /// Date pattern of Open-Xchange-style lines (strftime-like).
    #[arg(long, value_name = "PATTERN", default_value = "%Y-%m-%dT%H:%M:%SZ")]
    pub date_pattern: String,
    /// Instead of the records: per (host, boot) of the forwarded RFC 5424 lines (a
    /// collector's files), every sequence number missing, duplicated or out of order.
    #[arg(long)]
    pub gaps: bool,
    /// SD-ID of forwarded lines' structured data (the gateways' `forward.sd_id`).
    #[arg(long, value_name = "SD-ID", default_value = crate::rfc5424::DEFAULT_SD_ID)]
    pub sd_id: String,
}

/// A `--since`/`--until` value: the first and last second it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeArg {
    /// First second (Unix time, UTC).
    pub start: i64,
    /// Last second.
    pub end: i64,
}

/// Parses RFC 3339 (`2026-11-23T18:00:00Z`, `2026-11-23T19:00:00+01:00`) or a date
/// (`2026-11-23`, the whole day in UTC).
pub fn parse_time_arg(s: &str) -> Result<TimeArg, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        let t = t.timestamp();
        return Ok(TimeArg { start: t, end: t });
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let start = d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp())
            .ok_or_else(|| format!("date out of range: {s}"))?;
        return Ok(TimeArg {
            start,
            end: start + 86_399,
        });
    }
    Err(format!(
        "bad time \"{}\": expected RFC 3339 (2026-11-23T18:00:00Z) or a date (2026-11-23)",
        Escaped::new(s, &['"'])
    ))
}

/// Kinds of audit event, as `--kind` names them.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindArg {
    /// Failed logins.
    AuthFailure,
    /// Successful logins.
    AuthSuccess,
    /// Logouts.
    Logout,
    /// Sessions refused by policy.
    SessionForbidden,
    /// Connections.
    Connect,
}

impl KindArg {
    /// The record kind.
    pub fn kind(self) -> Kind {
        match self {
            KindArg::AuthFailure => Kind::AUTH_FAILURE,
            KindArg::AuthSuccess => Kind::AUTH_SUCCESS,
            KindArg::Logout => Kind::LOGOUT,
            KindArg::SessionForbidden => Kind::SESSION_FORBIDDEN,
            KindArg::Connect => Kind::CONNECT,
        }
    }
}

/// How records are shown.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Aligned columns: date, event, account, peer, details.
    Table,
    /// The lines as written (only lines that parsed, so known to be escaped).
    Lines,
}

/// Exit codes of [`run`].
pub mod exit {
    /// Everything read and shown.
    pub const OK: u8 = 0;
    /// Some lines could not be read; the rest was shown.
    pub const UNREADABLE_LINES: u8 = 1;
    /// Bad arguments, a file could not be opened or read, or no file was found.
    pub const USAGE_OR_IO: u8 = 2;
    /// `--gaps`: some sequence numbers are missing, duplicated or out of order.
    pub const GAPS: u8 = 3;
}

/// Which records to show.
struct Filter {
    user: Option<String>,
    host: Option<String>,
    global_only: bool,
    no_global: bool,
    kinds: Vec<Kind>,
    since: Option<i64>,
    until: Option<i64>,
}

impl Filter {
    /// Whether `r` concerns the host or account asked for (any record when none was).
    /// Global events belong to every host, to no account.
    fn is_of_target(&self, r: &AuditRecord) -> bool {
        match r.event.account() {
            None => self.user.is_none(),
            Some((user, host)) => {
                self.host.as_deref().is_none_or(|h| same_host(h, host))
                    && self.user.as_deref().is_none_or(|u| u == user)
            }
        }
    }

    /// Whether `r` passes the other filters: kinds, times, global or not.
    fn passes_options(&self, r: &AuditRecord) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&r.event.kind()) {
            return false;
        }
        if self.since.is_some_and(|s| r.unix_secs < s)
            || self.until.is_some_and(|u| r.unix_secs > u)
        {
            return false;
        }
        if r.event.is_global() {
            !self.no_global
        } else {
            !self.global_only
        }
    }

    /// The options in force besides the target, as typed, for messages.
    fn options(&self) -> String {
        let mut given = Vec::new();
        if !self.kinds.is_empty() {
            given.push("--kind");
        }
        if self.since.is_some() {
            given.push("--since");
        }
        if self.until.is_some() {
            given.push("--until");
        }
        if self.global_only {
            given.push("--global");
        }
        if self.no_global {
            given.push("--no-global");
        }
        given.join(", ")
    }
}

/// Host names compare as DNS names do: ASCII case and one trailing dot (the root) do not
/// matter, so `example.org`, `EXAMPLE.ORG` and `example.org.` are one host.
fn same_host(a: &str, b: &str) -> bool {
    let bare = |h: &str| h.strip_suffix('.').unwrap_or(h).to_owned();
    bare(a).eq_ignore_ascii_case(&bare(b))
}

/// What was read, to say why nothing is shown.
#[derive(Default)]
struct Tally {
    /// Lines that parsed.
    records: u64,
    /// Of those, records of the target.
    of_target: u64,
    /// Of those, records passing every filter.
    matching: u64,
    /// A few host names seen, for "none for HOST" messages.
    hosts: std::collections::BTreeSet<String>,
}

/// Counts and reports what went wrong, without stopping.
struct Problems<'w> {
    err: &'w mut dyn Write,
    unreadable: u64,
    io_errors: u64,
}

impl Problems<'_> {
    /// Reports the first few bad lines in detail, counts all.
    fn bad_line(&mut self, path: &Path, line_no: u64, why: &str) {
        self.unreadable += 1;
        if self.unreadable <= 5 {
            let _ = writeln!(
                self.err,
                "flightrec audit: {}:{line_no}: unreadable line: {why}",
                shown_path(path)
            );
        }
    }

    fn io(&mut self, message: std::fmt::Arguments<'_>) {
        self.io_errors += 1;
        self.note(message);
    }

    /// Says something on stderr that is not a failure.
    fn note(&mut self, message: std::fmt::Arguments<'_>) {
        let _ = writeln!(self.err, "flightrec audit: {message}");
    }
}

/// A path printed to a terminal: escaped like any text that is not ours.
fn shown_path(path: &Path) -> String {
    Escaped::new(&path.to_string_lossy(), &[]).to_string()
}

/// Runs `flightrec audit`, writing records to `out` and problems to `err`; returns the
/// exit code ([`exit`]).
pub fn run(args: &AuditArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let usage = |err: &mut dyn Write, message: &str| {
        let _ = writeln!(err, "flightrec audit: {message}");
        exit::USAGE_OR_IO
    };
    // A leading target, as in `prosodyctl mod_audit user@host`.
    let mut paths: &[String] = &args.args;
    let mut target = args.target.clone();
    if let [first, rest @ ..] = paths {
        if !rest.is_empty() && looks_like_target(first) {
            if target.is_some() {
                return usage(
                    err,
                    "give the host or account either as --target or first, not both",
                );
            }
            target = Some(first.clone());
            paths = rest;
        }
    }
    let (user, host) = match target.as_deref() {
        None => (None, None),
        Some(t) => match t.split_once('@') {
            Some((_, "")) => {
                return usage(
                    err,
                    &format!("bad account {}: empty host", Escaped::new(t, &[])),
                )
            }
            Some((u, h)) => (Some(u.to_owned()), Some(h.to_owned())),
            None if t.is_empty() => return usage(err, "empty host"),
            None => (None, Some(t.to_owned())),
        },
    };
    if args.global && user.is_some() {
        return usage(
            err,
            "--global shows events tied to no account; it cannot be combined with user@host",
        );
    }
    let ox = OxFormat {
        delimiter: args.delimiter,
        date_pattern: args.date_pattern.clone(),
        time_zone: args.tz,
        ..OxFormat::default()
    };
    if let Err(e) = ox.validate() {
        return usage(err, &format!("bad Open-Xchange settings: {e}"));
    }
    let ejabberd = EjabberdFormat { time_zone: args.tz };
    let filter = Filter {
        user,
        host,
        global_only: args.global,
        no_global: args.no_global,
        kinds: args.kind.iter().map(|k| k.kind()).collect(),
        since: args.since.map(|t| t.start),
        until: args.until.map(|t| t.end),
    };

    let mut problems = Problems {
        err,
        unreadable: 0,
        io_errors: 0,
    };
    let files = expand(paths, &mut problems);
    let reading = Reading {
        args,
        ejabberd: &ejabberd,
        ox: &ox,
        filter: &filter,
    };
    // With an account asked for (and not `--gaps`, which needs every forwarded line), only
    // the lines that can be its own are parsed. When none is found, the files are read
    // again in full, so that the message saying why tells the records and hosts seen.
    let prefilter = match (&filter.user, args.gaps) {
        (Some(user), false) => Prefilter::for_user(user, args.delimiter),
        _ => None,
    };
    let read = match prefilter {
        Some(prefilter) => {
            let mut said = Vec::new();
            let mut first = Problems {
                err: &mut said,
                unreadable: 0,
                io_errors: 0,
            };
            let read = reading.read(&files, Some(&prefilter), &mut first);
            if read.tally.of_target > 0 {
                problems.unreadable += first.unreadable;
                problems.io_errors += first.io_errors;
                let _ = problems.err.write_all(&said);
                read
            } else {
                drop(read);
                reading.read(&files, None, &mut problems)
            }
        }
        None => reading.read(&files, None, &mut problems),
    };
    let Read {
        tally,
        collector,
        forwarded,
        ..
    } = read;

    // The records kept: the newest `--limit` of those matching.
    let shown = args
        .limit
        .map_or(tally.matching, |l| tally.matching.min(l as u64));
    let mut gaps_found = false;
    let written = if args.gaps {
        crate::rfc5424::write_gaps(out, &forwarded).map(|clean| {
            gaps_found = !clean;
        })
    } else {
        collector
            .write(out, args.output)
            .and_then(|n| writeln!(out, "{n} records displayed"))
    }
    .and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() != io::ErrorKind::BrokenPipe {
            problems.io(format_args!("writing output: {e}"));
        }
    }
    if problems.unreadable > 0 {
        let _ = writeln!(
            problems.err,
            "flightrec audit: {} unreadable line(s) skipped",
            problems.unreadable
        );
    }
    if shown == 0 && !args.gaps {
        explain_nothing_shown(
            &mut problems,
            &files,
            &tally,
            &filter,
            target.as_deref(),
            args.limit,
        );
    }
    if problems.io_errors > 0 {
        exit::USAGE_OR_IO
    } else if problems.unreadable > 0 {
        exit::UNREADABLE_LINES
    } else if gaps_found {
        exit::GAPS
    } else {
        exit::OK
    }
}

/// Says on stderr why no record is shown; no file at all is an error.
fn explain_nothing_shown(
    problems: &mut Problems<'_>,
    files: &[std::path::PathBuf],
    tally: &Tally,
    filter: &Filter,
    target: Option<&str>,
    limit: Option<usize>,
) {
    let n = files.len();
    if n == 0 {
        problems.io(format_args!(
            "no audit log file found (directories are searched with their subdirectories)"
        ));
    } else if tally.records == 0 {
        problems.note(format_args!("{n} file(s) read, no audit record in them"));
    } else if tally.of_target == 0 {
        let target = Escaped::new(target.unwrap_or_default(), &[]);
        let seen: Vec<String> = tally
            .hosts
            .iter()
            .map(|h| Escaped::new(h, &[',', ' ']).to_string())
            .collect();
        let seen = match seen.len() {
            0 => "only events tied to no account".to_owned(),
            8 => format!("hosts seen: {}, ...", seen.join(", ")),
            _ => format!("hosts seen: {}", seen.join(", ")),
        };
        problems.note(format_args!(
            "{} record(s) in {n} file(s), none for {target} ({seen})",
            tally.records,
        ));
    } else if tally.matching == 0 {
        let of = match target {
            Some(t) => format!(" for {}", Escaped::new(t, &[])),
            None => String::new(),
        };
        problems.note(format_args!(
            "{} record(s){of} in {n} file(s), all excluded by {}",
            tally.of_target,
            filter.options()
        ));
    } else if limit == Some(0) {
        problems.note(format_args!(
            "--limit 0 shows none of the {} matching record(s)",
            tally.matching
        ));
    }
}

/// A first positional that names a host or account rather than a file.
fn looks_like_target(s: &str) -> bool {
    !s.is_empty() && !s.contains('/') && !has_glob_chars(s) && std::fs::symlink_metadata(s).is_err()
}
