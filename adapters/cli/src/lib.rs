//! The flightrec host tool: decode dumps, show headers, view audit logs.
//!
//! The `flightrec` binary is a thin shell over [`main_with_args`]; everything it does is
//! reachable from tests through [`run`] with any output and error streams.
//!
//! Inputs are streamed, never read whole; their kind (dumps, ring file, flash image) is
//! decided by their first bytes, not by what records contain (see the `input` module).
//!
//! Exit codes, the same for `decode` and `info`: 0 all well; 1 data damaged or missing
//! (messages on standard error say where), but everything decodable was decoded; 2 usage
//! or I/O error (or an ELF refused).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use flightrec_core::text::Escaped;
use flightrec_core::Kind;
use flightrec_decode::info::{self, InfoCollector};
use flightrec_decode::{Filter, Format, Item, Options, Renderer, Summary, TimeBound};

#[cfg(feature = "defmt")]
pub mod elf;
mod input;
mod open;
pub mod seal;
mod sealed_audit;

use input::Stop;

/// Bytes of output buffered before a write to standard output.
const OUTPUT_BUFFER: usize = 256 << 10;

/// Exit code: all well.
pub const EXIT_OK: u8 = 0;
/// Exit code: data damaged, decoded what could be.
pub const EXIT_DAMAGED: u8 = 1;
/// Exit code: usage or I/O error, or a refused ELF.
pub const EXIT_ERROR: u8 = 2;

/// The `flightrec` command line.
#[derive(Debug, Parser)]
#[command(
    name = "flightrec",
    version,
    about = "Decode flightrec dumps, show their headers, view audit logs",
    after_help = "Exit status: 0 ok, 1 data damaged but decoded what it could, 2 usage or I/O error."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode dumps, raw flash images and ring files: one line (or object) per record.
    Decode(DecodeArgs),
    /// Show dump headers only: trigger, time, counts, lost, suppressed, build id.
    Info(InfoArgs),
    /// View audit logs (ejabberd / Open-Xchange style lines), escaped for a terminal.
    Audit(AuditCmd),
    /// Check sealed dumps (each sealed with its own epoch's key and intact, epochs
    /// consecutive) and sealed audit logs (every line, across rotated files, against the
    /// sidecars `<log>.seal*`). Exit 0 all sealed and intact, 1 anything tampered, missing,
    /// truncated or unsealed, 2 usage or I/O error.
    Verify(seal::VerifyArgs),
    /// Make a sealing key: the device's, and the auditor's verification key.
    Keygen(seal::KeygenArgs),
}

/// Output format of `decode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// One line per record: time, level, kind, session, message and fields.
    Text,
    /// NDJSON: one object per record (and per diagnostic), for jq, Vector, Loki.
    Json,
    /// ProFTPD-style blocks, one per dump: `-----BEGIN <TRIGGER> FORENSICS-----`.
    Forensic,
}

/// Output format of `info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InfoFormat {
    /// Indented text.
    Text,
    /// One JSON object per dump.
    Json,
}

/// When to colour the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// Only when standard output is a terminal and NO_COLOR is not set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Arguments of `flightrec audit`: the viewer's, and the keys for a seal status.
#[derive(Debug, Args)]
pub struct AuditCmd {
    /// The viewer's arguments.
    #[command(flatten)]
    pub view: flightrec_audit::viewer::AuditArgs,
    /// With a key, each file given (and each in a directory given) is also checked against
    /// its seals (as `flightrec verify` does), and the status said on standard error.
    #[command(flatten)]
    pub keys: seal::KeyArgs,
}

/// Arguments of `flightrec decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Dumps, raw flash images or ring files ("-" for standard input).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
    /// Only records of this session id.
    #[arg(long, value_name = "ID")]
    pub session: Option<u32>,
    /// Only records at or above this level (trace, debug, info, warn, error, or a number).
    #[arg(long, value_parser = parse_level)]
    pub level: Option<u8>,
    /// Only records of these kinds (log, frame, auth-failure, auth-success, logout,
    /// session-forbidden, connect, custom, or a number); repeat or separate with commas.
    #[arg(long, value_parser = parse_kind, value_delimiter = ',')]
    pub kind: Vec<Kind>,
    /// Only records at or after this time: RFC 3339 (2026-11-23T18:00:00Z) for Unix
    /// clocks, seconds since boot (12.5s) for boot clocks, or tick:N.
    #[arg(long, value_parser = TimeBound::parse, value_name = "TIME")]
    pub since: Option<TimeBound>,
    /// Only records at or before this time (same forms as --since).
    #[arg(long, value_parser = TimeBound::parse, value_name = "TIME")]
    pub until: Option<TimeBound>,
    /// The firmware's ELF, to decode defmt frames. Refused if its build identity differs
    /// from the dump's.
    #[arg(long, value_name = "ELF")]
    pub elf: Option<PathBuf>,
    /// Decode with --elf even if its build identity differs from the dump's (or the dump
    /// records none). A wrong ELF prints wrong logs.
    #[arg(long, requires = "elf")]
    pub force_elf: bool,
    /// Colour the text output.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
    /// With a key, each file given is also checked against its seals (as `flightrec
    /// verify` does), and the status said on standard error.
    #[command(flatten)]
    pub keys: seal::KeyArgs,
}

/// Arguments of `flightrec info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Dumps, raw flash images or ring files ("-" for standard input).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = InfoFormat::Text)]
    pub format: InfoFormat,
}

fn parse_level(s: &str) -> Result<u8, String> {
    let lower = s.to_ascii_lowercase();
    flightrec_core::Level::ALL
        .iter()
        .find(|l| l.as_str().eq_ignore_ascii_case(&lower))
        .map(|l| *l as u8)
        .or_else(|| s.parse().ok())
        .ok_or_else(|| format!("unknown level {s:?} (trace, debug, info, warn, error or 0-255)"))
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    (0..=u8::MAX)
        .map(Kind)
        .find(|k| k.name() == Some(s))
        .or_else(|| s.parse().ok().map(Kind))
        .ok_or_else(|| {
            format!("unknown kind {s:?} (log, frame, auth-failure, auth-success, logout, session-forbidden, connect, custom or 0-255)")
        })
}

/// Parses `args` (program name first) and runs, on the process's standard streams.
pub fn main_with_args<I: IntoIterator<Item = OsString>>(args: I) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(EXIT_ERROR);
        }
    };
    let stdout = io::stdout();
    let tty = stdout.is_terminal();
    let progress = io::stderr().is_terminal();
    let mut out = BufWriter::with_capacity(OUTPUT_BUFFER, stdout_sink(&stdout));
    let mut err = io::stderr();
    let env = Env {
        color_ok: tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        progress,
    };
    let code = run(&cli, &env, &mut out, &mut err);
    match out.flush() {
        Ok(()) => code,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            let _ = writeln!(err, "flightrec: cannot write output: {e}");
            EXIT_ERROR
        }
    }
}

/// Where the output goes: standard output's file descriptor itself (a duplicate), as std's
/// own stdout passes every write through its line writer (a search for the last newline,
/// and a copy of what follows it).
#[cfg(unix)]
fn stdout_sink(stdout: &io::Stdout) -> Box<dyn Write + '_> {
    use std::os::fd::AsFd;
    match stdout.as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(stdout.lock()),
    }
}

/// Where the output goes: standard output.
#[cfg(not(unix))]
fn stdout_sink(stdout: &io::Stdout) -> Box<dyn Write + '_> {
    Box::new(stdout.lock())
}

/// What the process's surroundings allow.
#[derive(Clone, Copy, Debug, Default)]
pub struct Env {
    /// `--color auto` colours (standard output is a terminal, NO_COLOR unset).
    pub color_ok: bool,
    /// A progress indicator may be drawn on standard error (it is a terminal).
    pub progress: bool,
}

/// Runs a parsed command line; returns the exit code.
pub fn run(cli: &Cli, env: &Env, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match &cli.command {
        Command::Decode(a) => {
            let code = decode(a, env, out, err);
            let files: Vec<PathBuf> = a
                .files
                .iter()
                .filter(|f| f.as_os_str() != "-")
                .cloned()
                .collect();
            seal::with_status(code, &a.keys, &files, err)
        }
        Command::Info(a) => info_cmd(a, env, out, err),
        Command::Audit(a) => {
            let code = flightrec_audit::viewer::run(&a.view, out, err);
            // Host or account selectors and glob patterns are not paths to check.
            let files: Vec<PathBuf> = a
                .view
                .args
                .iter()
                .map(PathBuf::from)
                .filter(|p| p.exists())
                .collect();
            seal::with_status(code, &a.keys, &files, err)
        }
        Command::Verify(a) => seal::verify(a, out, err),
        Command::Keygen(a) => seal::keygen(a, out, err),
    }
}

pub(crate) fn shown(p: &Path) -> String {
    Escaped::new(&p.to_string_lossy(), &[]).to_string()
}

/// Exit code for an input: damaged or missing data is 1.
fn damage_code(damaged: bool) -> u8 {
    if damaged {
        EXIT_DAMAGED
    } else {
        EXIT_OK
    }
}

fn decode(a: &DecodeArgs, env: &Env, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let format = match a.format {
        FormatArg::Text => Format::Text,
        FormatArg::Json => Format::Json,
        FormatArg::Forensic => Format::Forensic,
    };
    let color = format == Format::Text
        && match a.color {
            ColorArg::Auto => env.color_ok,
            ColorArg::Always => true,
            ColorArg::Never => false,
        };
    let filter = Filter {
        session: a.session,
        min_level: a.level,
        kinds: a.kind.clone(),
        since: a.since,
        until: a.until,
    };
    let mut renderer = Renderer::new(Options {
        format,
        color,
        filter: filter.clone(),
    });
    let elf_id: Option<Vec<u8>> = match &a.elf {
        None => None,
        Some(path) => match load_elf(path) {
            Ok((frames, id)) => {
                renderer = renderer.with_frame_decoder(frames);
                Some(id)
            }
            Err(e) => {
                let _ = writeln!(err, "flightrec: {e}");
                return EXIT_ERROR;
            }
        },
    };
    let mut code = EXIT_OK;
    let many = a.files.len() > 1;
    for path in &a.files {
        if many {
            match format {
                Format::Json => renderer.set_source(Some(path.to_string_lossy().into_owned())),
                _ => {
                    renderer.set_source(None);
                    if let Err(e) = writeln!(out, "==> {} <==", shown(path)) {
                        return output_error(e, err, code);
                    }
                }
            }
        }
        let before = renderer.summary();
        let mut on_item = |item: &Item<'_>, err: &mut dyn Write| -> Result<(), Stop> {
            if let Item::DumpStart { offset, header } = item {
                if filter.time_incompatible(header.clock) {
                    let _ = out.flush();
                    let _ = writeln!(
                        err,
                        "flightrec: {}: dump at offset {offset}: --since/--until cannot be compared with its clock ({} Hz, {:?}); no record of it passes",
                        shown(path),
                        header.clock.rate_hz,
                        header.clock.base
                    );
                }
                if let Some(id) = &elf_id {
                    if let Err(why) = check_elf(header, *offset, id, a.force_elf) {
                        let _ = out.flush();
                        let _ = writeln!(err, "flightrec: {}: {why}", shown(path));
                        return Err(Stop::Refused);
                    }
                }
            }
            renderer.render(item, out).map_err(Stop::Output)
        };
        let outcome = match input::read(path, env, err, &mut on_item) {
            Ok(Ok(o)) => o,
            Ok(Err(Stop::Refused)) => return EXIT_ERROR,
            Ok(Err(Stop::Output(e))) => return output_error(e, err, code),
            Err(e) => {
                let _ = writeln!(err, "flightrec: cannot open {}: {e}", shown(path));
                code = EXIT_ERROR;
                continue;
            }
        };
        if let Err(e) = renderer.finish(out) {
            return output_error(e, err, code);
        }
        let rendered = since(renderer.summary(), before);
        // The file's output first, so that with both streams on one terminal or file the
        // summary follows what it sums up.
        let _ = out.flush();
        code = code.max(outcome_code(path, &outcome, &rendered, err));
    }
    code
}

/// The exit code of one input's reading, the same for `decode` and `info`: 2 if reading
/// failed, 1 if anything was damaged or no dump was found, else 0. Damage is summed up on
/// `err` (where it is, the output's `!!` lines and objects say), so a filtered or piped
/// output cannot hide it.
fn outcome_code(path: &Path, o: &input::Outcome, rendered: &Summary, err: &mut dyn Write) -> u8 {
    if o.read_error {
        return EXIT_ERROR;
    }
    let s = &o.stats;
    if s.dumps == 0 && s.unsupported == 0 && !o.flash_damaged {
        let _ = writeln!(err, "flightrec: {}: no dump found", shown(path));
        return EXIT_DAMAGED;
    }
    let stray = if s.dumps > 0 { s.stray } else { 0 };
    let parts: Vec<String> = [
        (s.damaged, "damaged region", "damaged regions"),
        (s.incomplete, "incomplete dump", "incomplete dumps"),
        (
            s.unsupported,
            "dump of an unknown version",
            "dumps of an unknown version",
        ),
        (
            stray,
            "stray byte outside dumps",
            "stray bytes outside dumps",
        ),
        (
            rendered.count_mismatch,
            "record count mismatch",
            "record count mismatches",
        ),
        (
            rendered.malformed,
            "malformed payload",
            "malformed payloads",
        ),
    ]
    .iter()
    .filter(|(n, ..)| *n > 0)
    .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
    .collect();
    if !parts.is_empty() {
        let _ = writeln!(err, "flightrec: {}: {}", shown(path), parts.join(", "));
    }
    damage_code(!parts.is_empty() || o.flash_damaged || s.damaged() || rendered.damaged())
}

/// What rendering found in one input: the renderer's counts since `before`.
fn since(now: Summary, before: Summary) -> Summary {
    Summary {
        shown: now.shown - before.shown,
        filtered: now.filtered - before.filtered,
        malformed: now.malformed - before.malformed,
        count_mismatch: now.count_mismatch - before.count_mismatch,
    }
}

/// Whether defmt frames of the dump with `header` (at `offset`) may be decoded with an ELF
/// of identity `elf_id`: only if the identities match, or if forced.
pub fn check_elf(
    header: &flightrec_decode::Header,
    offset: u64,
    elf_id: &[u8],
    force: bool,
) -> Result<(), String> {
    if force || header.build_id == elf_id {
        return Ok(());
    }
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    Err(if header.build_id.is_empty() {
        format!(
            "dump at offset {offset} records no build identity, so the ELF cannot be checked against it; refusing to decode defmt frames with an unchecked ELF (a wrong ELF prints wrong logs). Use --force-elf to decode anyway."
        )
    } else {
        format!(
            "the ELF's build identity {} differs from the dump's {} (dump at offset {offset}, written by {} {}); refusing to decode with it: a wrong ELF prints wrong logs. Use --force-elf to override.",
            hex(elf_id),
            hex(&header.build_id),
            Escaped::new(&header.build_name, &[]),
            Escaped::new(&header.build_version, &[])
        )
    })
}

fn output_error(e: io::Error, err: &mut dyn Write, code: u8) -> u8 {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return code;
    }
    let _ = writeln!(err, "flightrec: cannot write output: {e}");
    EXIT_ERROR
}

#[cfg(feature = "defmt")]
fn load_elf(path: &Path) -> Result<(Box<dyn flightrec_decode::FrameDecoder>, Vec<u8>), String> {
    let (frames, id) = elf::DefmtFrames::load(path)?;
    Ok((Box::new(frames), id))
}

#[cfg(not(feature = "defmt"))]
fn load_elf(_: &Path) -> Result<(Box<dyn flightrec_decode::FrameDecoder>, Vec<u8>), String> {
    Err("this flightrec was built without defmt support (cargo feature \"defmt\"); --elf is not available".to_owned())
}

fn info_cmd(a: &InfoArgs, env: &Env, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let mut code = EXIT_OK;
    let many = a.files.len() > 1;
    for path in &a.files {
        let source = path.to_string_lossy().into_owned();
        let mut collector = InfoCollector::new();
        let mut found = Summary::default();
        let mut emit = |d: &info::DumpInfo, out: &mut dyn Write| -> io::Result<()> {
            found.malformed += d.malformed;
            found.count_mismatch += u64::from(d.count_mismatch());
            match a.format {
                InfoFormat::Text => {
                    if many {
                        write!(out, "{}: ", shown(path))?;
                    }
                    info::write_text(out, d)
                }
                InfoFormat::Json => info::write_json(out, d, many.then_some(source.as_str())),
            }
        };
        let mut on_item = |item: &Item<'_>, _: &mut dyn Write| -> Result<(), Stop> {
            match collector.feed(item) {
                Some(d) => emit(&d, out).map_err(Stop::Output),
                None => Ok(()),
            }
        };
        let outcome = match input::read(path, env, err, &mut on_item) {
            Ok(Ok(o)) => o,
            Ok(Err(Stop::Refused)) => return EXIT_ERROR,
            Ok(Err(Stop::Output(e))) => return output_error(e, err, code),
            Err(e) => {
                let _ = writeln!(err, "flightrec: cannot open {}: {e}", shown(path));
                code = EXIT_ERROR;
                continue;
            }
        };
        if let Some(d) = collector.finish() {
            if let Err(e) = emit(&d, out) {
                return output_error(e, err, code);
            }
        }
        let _ = out.flush();
        code = code.max(outcome_code(path, &outcome, &found, err));
    }
    code
}

/// Counts bytes read and, after the first second, draws a progress line on standard error.
struct Progress<R> {
    inner: R,
    name: String,
    total: Option<u64>,
    read: u64,
    start: Instant,
    last: Option<Instant>,
}

impl<R> Progress<R> {
    fn new(inner: R, name: String, total: Option<u64>) -> Self {
        Progress {
            inner,
            name,
            total,
            read: 0,
            start: Instant::now(),
            last: None,
        }
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        let now = Instant::now();
        let due = match self.last {
            None => now.duration_since(self.start) >= Duration::from_secs(1),
            Some(t) => now.duration_since(t) >= Duration::from_millis(250),
        };
        if n == 0 {
            if self.last.is_some() {
                let _ = write!(io::stderr(), "\r\x1b[K");
            }
        } else if due {
            self.last = Some(now);
            let mib = self.read >> 20;
            let _ = match self.total.filter(|&t| t > 0) {
                Some(t) => write!(
                    io::stderr(),
                    "\r\x1b[Kflightrec: {}: {mib} MiB ({}%)",
                    self.name,
                    self.read.saturating_mul(100) / t
                ),
                None => write!(io::stderr(), "\r\x1b[Kflightrec: {}: {mib} MiB", self.name),
            };
        }
        Ok(n)
    }
}

impl<R> Drop for Progress<R> {
    fn drop(&mut self) {
        if self.last.is_some() {
            let _ = write!(io::stderr(), "\r\x1b[K");
        }
    }
}
