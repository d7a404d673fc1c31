//! Configuration from a TOML file (or built in code): every error names its key.
//!
//! ```toml
//! host = "gw1"                 # {host} in dump names, audit fallback host
//! program = "my-gateway"
//! queue = 4096                 # writer queue: items beyond are dropped and counted
//!
//! [ring]
//! shards = 8                   # 64 KiB rings; threads are spread over them
//! file = "/var/lib/gw/ring"    # crash-survivable copy (memory-mapped), optional; what a run
//!                              # that died left there is the next run's first dump
//! file_mode = "0600"
//!
//! [files]                      # how every dump, audit and ring file is opened
//! dir_mode = "0700"            # mode of directories created on the way
//! loose_mode = "tighten"       # existing file looser than its mode: "tighten" or "refuse"
//! trusted_groups = ["syslog"]  # groups (besides root's) that may write a directory on a path
//!
//! [capture]                    # what the tracing layer records
//! level = "trace"
//! targets = { "hyper" = "info" }
//! session_field = "session"
//!
//! [trigger]
//! failed_login = true
//! level = "error"              # records at or above dump too
//! named = ["config-reload"]
//! threshold = { kind = "auth-failure", count = 5, window_secs = 10, per_peer = true }
//! rate = { dumps = 4, window_secs = 3600, cooldown_secs = 1 }
//! post_ms = 100
//! scope_session = true
//!
//! [dump]
//! path = "/var/log/gw/dump-{pid}-{count}-{time|yyyymmdd}.flr"
//! mode = "0600"
//! signal = "SIGUSR2"
//! durable = true               # fsync each dump before it counts as written (default)
//! seal_key = "/etc/gw/seal.key" # optional: seal every binary dump, death dumps included
//!                               # (core/SEALING.md)
//!
//! [audit]
//! path = "/var/log/gw/@HOST@/audit.log"
//! format = { style = "ejabberd" }
//! max_bytes = 2097152
//! max_files = 99
//! max_age_days = 28
//! seal_key = "/etc/gw/audit-seal.key"   # optional: seal every line (sidecar <file>.seal)
//! ```
//!
//! Every file is opened by the rules of [`crate::files`]: the whole path without following
//! a link; every directory on it owned by root or this process's user and writable by
//! nobody else (unless sticky, like `/tmp`; group write allowed for root's group and
//! `files.trusted_groups`); missing directories created at `files.dir_mode`; only regular
//! files, never a FIFO or device, never waited on; an existing file whose mode is looser than
//! `dump.mode`/`audit.mode` tightened or refused (`files.loose_mode`). Refusals are counted
//! and said (see [`crate::Service::stats`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flightrec_audit::LineFormat;
use flightrec_core::trigger::{RateLimit, Threshold, TriggerConfig};
use flightrec_core::{Kind, Level};
use serde::Deserialize;
use tracing_subscriber::filter::Targets;

use crate::auditlog::AuditOptions;
use crate::dumpfile::{DumpFormat, DumpOptions};
use crate::files::{FilePolicy, LooseMode, Template};
use crate::recorder::RecorderOptions;
use crate::service::ServiceOptions;

/// A configuration error: which key, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key (`dump.path`), or empty when the file as a whole is at fault.
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.problem)
        } else {
            write!(f, "{}: {}", self.key, self.problem)
        }
    }
}

impl std::error::Error for ConfigError {}

fn err(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        problem: problem.into(),
    }
}

/// A level name: `trace`, `debug`, `info`, `warn`, `error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LevelName {
    /// TRACE.
    Trace,
    /// DEBUG.
    Debug,
    /// INFO.
    Info,
    /// WARN.
    Warn,
    /// ERROR.
    Error,
}

impl LevelName {
    fn core(self) -> Level {
        match self {
            LevelName::Trace => Level::Trace,
            LevelName::Debug => Level::Debug,
            LevelName::Info => Level::Info,
            LevelName::Warn => Level::Warn,
            LevelName::Error => Level::Error,
        }
    }
    fn tracing(self) -> tracing::Level {
        match self {
            LevelName::Trace => tracing::Level::TRACE,
            LevelName::Debug => tracing::Level::DEBUG,
            LevelName::Info => tracing::Level::INFO,
            LevelName::Warn => tracing::Level::WARN,
            LevelName::Error => tracing::Level::ERROR,
        }
    }
}

/// A file mode: a string of octal digits (`"0600"`) or a TOML integer (`0o600`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Mode {
    /// `0o600`.
    Number(u32),
    /// `"0600"`.
    Text(ModeText),
}

/// Octal digits as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeText(u32);

impl<'de> Deserialize<'de> for ModeText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        u32::from_str_radix(s.trim_start_matches("0o"), 8)
            .map(ModeText)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an octal file mode")))
    }
}

impl Mode {
    pub(crate) fn check(self, key: &str) -> Result<u32, ConfigError> {
        let m = match self {
            Mode::Number(m) | Mode::Text(ModeText(m)) => m,
        };
        if m > 0o777 {
            return Err(err(key, format!("{m:o} is not a file mode (at most 0777)")));
        }
        if m & 0o002 != 0 {
            return Err(err(key, format!("0{m:o} is world-writable: refused")));
        }
        if m & 0o600 != 0o600 {
            return Err(err(
                key,
                format!("0{m:o} does not let the owner read and write"),
            ));
        }
        Ok(m)
    }
}

impl Mode {
    /// A directory's mode: the owner may enter and write it, nobody else may write it.
    fn check_dir(self, key: &str) -> Result<u32, ConfigError> {
        let m = match self {
            Mode::Number(m) | Mode::Text(ModeText(m)) => m,
        };
        if m > 0o777 {
            return Err(err(
                key,
                format!("{m:o} is not a directory mode (at most 0777)"),
            ));
        }
        if m & 0o022 != 0 {
            return Err(err(
                key,
                format!("0{m:o} lets others write the directory: refused"),
            ));
        }
        if m & 0o700 != 0o700 {
            return Err(err(
                key,
                format!("0{m:o} does not let the owner enter and write"),
            ));
        }
        Ok(m)
    }
}

impl Default for Mode {
    fn default() -> Self {
        Mode::Number(0o600)
    }
}

/// A group: its name (`"adm"`) or number.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Group {
    /// A gid.
    Id(u32),
    /// A name, looked up in the group database.
    Name(String),
}

impl Group {
    fn gid(&self, key: &str) -> Result<u32, ConfigError> {
        match self {
            Group::Id(g) => Ok(*g),
            Group::Name(name) => {
                gid_of(name).ok_or_else(|| err(key, format!("no group named {name:?}")))
            }
        }
    }
}

/// The gid of group `name` (`getgrnam_r`).
fn gid_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut len = 1024;
    while len <= 1 << 20 {
        let mut buf = vec![0 as libc::c_char; len];
        // SAFETY: an all-zero `group` is a valid value (pointers null, gid 0); it is only
        // read after getgrnam_r filled it and set `found` to it.
        let mut group: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf` is `len` bytes long.
        let rc =
            unsafe { libc::getgrnam_r(c.as_ptr(), &mut group, buf.as_mut_ptr(), len, &mut found) };
        if rc == libc::ERANGE {
            len *= 4;
            continue;
        }
        return (rc == 0 && !found.is_null()).then_some(group.gr_gid);
    }
    None
}

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// This machine's name (default: the kernel's host name).
    pub host: Option<String>,
    /// Program name written into dumps.
    pub program: Option<String>,
    /// Writer queue length.
    pub queue: usize,
    /// `[ring]`.
    pub ring: RingSection,
    /// `[capture]`.
    pub capture: CaptureSection,
    /// `[trigger]`.
    pub trigger: TriggerSection,
    /// `[dump]`.
    pub dump: DumpSection,
    /// `[audit]` (absent: no audit log).
    pub audit: Option<AuditSection>,
    /// `[files]`.
    pub files: FilesSection,
    /// `[forward]` (absent: nothing forwarded); see [`crate::forward::config`].
    pub forward: Option<crate::forward::config::ForwardSection>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: None,
            program: None,
            queue: 4096,
            ring: RingSection::default(),
            capture: CaptureSection::default(),
            trigger: TriggerSection::default(),
            dump: DumpSection::default(),
            audit: None,
            files: FilesSection::default(),
            forward: None,
        }
    }
}

/// `[files]`: how every dump, audit and ring file is opened (see [`crate::files`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesSection {
    /// Mode of directories created on a file's path (default 0700; no group or world
    /// write).
    pub dir_mode: Mode,
    /// An existing file whose mode is looser than configured: `"tighten"` (default) or
    /// `"refuse"`.
    pub loose_mode: String,
    /// Groups besides root's that may have write access to a directory on a path (names or
    /// gids; Ubuntu's `/var/log` is group-writable by `syslog`).
    pub trusted_groups: Vec<Group>,
}

impl Default for FilesSection {
    fn default() -> Self {
        FilesSection {
            dir_mode: Mode::Number(0o700),
            loose_mode: "tighten".into(),
            trusted_groups: Vec::new(),
        }
    }
}

/// `[ring]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RingSection {
    /// Number of 64 KiB shards (default: twice the CPUs).
    pub shards: Option<usize>,
    /// Crash-survivable ring file (memory-mapped); none by default.
    pub file: Option<String>,
    /// Mode of the ring file.
    pub file_mode: Mode,
}

/// `[capture]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureSection {
    /// Lowest level recorded.
    pub level: LevelName,
    /// Per-target lowest levels (longest prefix wins).
    pub targets: BTreeMap<String, LevelName>,
    /// Span field holding the session id.
    pub session_field: String,
}

impl Default for CaptureSection {
    fn default() -> Self {
        CaptureSection {
            level: LevelName::Trace,
            targets: BTreeMap::new(),
            session_field: "session".into(),
        }
    }
}

/// `[trigger]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TriggerSection {
    /// Dump on a failed login.
    pub failed_login: bool,
    /// Dump on records at or above this level.
    pub level: Option<LevelName>,
    /// Custom event names that dump.
    pub named: Vec<String>,
    /// Brute-force threshold.
    pub threshold: Option<ThresholdSection>,
    /// Rate limit.
    pub rate: Option<RateSection>,
    /// Post-trigger window, milliseconds.
    pub post_ms: u64,
    /// Scope a dump to the session that fired it.
    pub scope_session: bool,
}

impl Default for TriggerSection {
    fn default() -> Self {
        TriggerSection {
            failed_login: true,
            level: None,
            named: Vec::new(),
            threshold: None,
            rate: None,
            post_ms: 100,
            scope_session: false,
        }
    }
}

/// `trigger.threshold`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSection {
    /// Record kind counted (`auth-failure`, `connect`, ...).
    pub kind: String,
    /// How many.
    pub count: u16,
    /// Within how many seconds.
    pub window_secs: f64,
    /// Count per peer address.
    #[serde(default)]
    pub per_peer: bool,
}

/// `trigger.rate`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSection {
    /// Dumps per window (and burst).
    pub dumps: u32,
    /// Window, seconds.
    pub window_secs: f64,
    /// Least seconds between two dumps.
    #[serde(default)]
    pub cooldown_secs: f64,
}

/// `[dump]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DumpSection {
    /// File name template.
    pub path: String,
    /// Mode of created files.
    pub mode: Mode,
    /// Dump signal (`SIGUSR2`, `USR1`, a number, or `"none"`).
    pub signal: String,
    /// Reopen files on `SIGHUP`.
    pub reopen_on_hup: bool,
    /// `binary` (wire format, for `flightrec decode`) or `forensic` (text blocks).
    pub format: String,
    /// Sealing key file (`flightrec keygen`, 0600): binary dumps are sealed with it
    /// (`core/SEALING.md`). None: dumps are not sealed.
    pub seal_key: Option<String>,
    /// Make each dump durable (`fdatasync`, and the directory's `fsync` when the file is
    /// new) before it is reported written or forwarded: see [`DumpOptions::durable`].
    pub durable: bool,
}

impl Default for DumpSection {
    fn default() -> Self {
        DumpSection {
            path: "flightrec-{pid}-{count}.flr".into(),
            mode: Mode::default(),
            signal: "SIGUSR2".into(),
            reopen_on_hup: true,
            format: "binary".into(),
            seal_key: None,
            durable: true,
        }
    }
}

/// `[audit]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSection {
    /// Path, `@HOST@` replaced by the virtual host.
    pub path: String,
    /// Line layout (`{ style = "ejabberd" }` or `{ style = "open-xchange", delimiter = "|", ... }`).
    pub format: LineFormat,
    /// Mode of created files.
    pub mode: Mode,
    /// Rotate past this size (0: never).
    pub max_bytes: u64,
    /// Rotated files kept.
    pub max_files: u32,
    /// Delete rotated files older than this (0: never).
    pub max_age_days: f64,
    /// Most hosts with their own file.
    pub max_hosts: usize,
    /// The audit stream's sealing key file (`flightrec keygen --audit`, 0600): every write
    /// is sealed in a sidecar `<file>.seal` (`core/SEALING.md` section 9). None: not sealed.
    pub seal_key: Option<String>,
}

impl Default for AuditSection {
    fn default() -> Self {
        let d = AuditOptions::default();
        AuditSection {
            path: d.path,
            format: d.format,
            mode: Mode::default(),
            max_bytes: d.max_bytes,
            max_files: d.max_files,
            max_age_days: 28.0,
            max_hosts: d.max_hosts,
            seal_key: None,
        }
    }
}

fn secs(key: &str, v: f64) -> Result<Duration, ConfigError> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| err(key, format!("{v} is not a duration in seconds")))
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn kind_by_name(key: &str, name: &str) -> Result<Kind, ConfigError> {
    Kind::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Kind::KNOWN.iter().filter_map(|k| k.name()).collect();
        err(
            key,
            format!("unknown kind {name:?} (known: {})", known.join(", ")),
        )
    })
}

/// Signal number of `SIGUSR2`, `USR2`, `12`; `None` for `none`.
fn signal_by_name(key: &str, name: &str) -> Result<Option<i32>, ConfigError> {
    let n = name.trim_start_matches("SIG");
    let sig = match n {
        "none" | "" => return Ok(None),
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "HUP" => return Err(err(key, "SIGHUP is taken: it reopens files")),
        "INT" => libc::SIGINT,
        "TERM" => libc::SIGTERM,
        "QUIT" => libc::SIGQUIT,
        "PWR" => libc::SIGPWR,
        other => match other.parse::<i32>() {
            Ok(n) if (1..=64).contains(&n) && ![libc::SIGKILL, libc::SIGSTOP].contains(&n) => n,
            _ => {
                return Err(err(
                    key,
                    format!("{name:?} is not a signal that can be caught"),
                ))
            }
        },
    };
    Ok(Some(sig))
}

/// Leaks names once so the trigger machine (which wants `'static` names) can hold them.
fn leak_names(names: &[String]) -> &'static [&'static str] {
    let v: Vec<&'static str> = names
        .iter()
        .map(|s| &*Box::leak(s.clone().into_boxed_str()))
        .collect();
    Box::leak(v.into_boxed_slice())
}

impl Config {
    /// Parses TOML text. Errors name the key (`dump.mode: ...`) and, for syntax and type
    /// errors, show the line.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let key = e.span().map(|s| key_at(text, s.start)).unwrap_or_default();
            ConfigError {
                key,
                problem: e.message().to_owned(),
            }
        })?;
        config.check()?;
        Ok(config)
    }

    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("", format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|mut e| {
            e.problem = format!("{} ({})", e.problem, path.display());
            e
        })
    }

    /// Checks everything that can be checked without building.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.recorder_options()?;
        self.file_policy(&self.ring.file_mode, "ring.file_mode")?;
        if self.ring.file.as_deref() == Some("") {
            return Err(err("ring.file", "must not be empty"));
        }
        self.service_options()?;
        self.forward_options()?;
        Ok(())
    }

    /// Options of the forwarder, if `[forward]` is there.
    pub fn forward_options(&self) -> Result<Option<crate::ForwardOptions>, ConfigError> {
        let format = self
            .audit
            .as_ref()
            .map(|a| a.format.clone())
            .unwrap_or_default();
        self.forward
            .as_ref()
            .map(|f| {
                f.options(format)
                    .map_err(|(key, problem)| err(key, problem))
            })
            .transpose()
    }

    /// Starts the forwarder of `[forward]`, if there is one, for the recorder's host
    /// (for [`crate::Service::start_with`]).
    pub fn forwarder(
        &self,
        rec: &crate::FlightRecorder,
    ) -> Result<Option<crate::Forwarder>, ConfigError> {
        self.forward_options()?
            .map(|o| {
                crate::Forwarder::start(o, rec.host()).map_err(|e| err("forward", e.to_string()))
            })
            .transpose()
    }

    /// Builds the recorder: with the ring file of `[ring] file`, if set.
    pub fn recorder(&self) -> Result<std::sync::Arc<crate::FlightRecorder>, ConfigError> {
        let opts = self.recorder_options()?;
        let policy = self.file_policy(&self.ring.file_mode, "ring.file_mode")?;
        match &self.ring.file {
            None => crate::FlightRecorder::new(opts),
            Some(path) => crate::FlightRecorder::with_ring_file(opts, Path::new(path), &policy)
                .map_err(|e| err("ring.file", e.to_string())),
        }
    }

    /// The rules of `[files]` with files created at `mode` (checked as key `key`).
    pub fn file_policy(&self, mode: &Mode, key: &str) -> Result<FilePolicy, ConfigError> {
        let f = &self.files;
        let loose = match f.loose_mode.as_str() {
            "tighten" => LooseMode::Tighten,
            "refuse" => LooseMode::Refuse,
            other => {
                return Err(err(
                    "files.loose_mode",
                    format!("unknown value {other:?} (known: tighten, refuse)"),
                ))
            }
        };
        Ok(FilePolicy {
            mode: mode.check(key)?,
            dir_mode: f.dir_mode.check_dir("files.dir_mode")?,
            loose,
            trusted_gids: f
                .trusted_groups
                .iter()
                .map(|g| g.gid("files.trusted_groups"))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Options of the recorder.
    pub fn recorder_options(&self) -> Result<RecorderOptions, ConfigError> {
        let mut o = RecorderOptions::default();
        if let Some(s) = self.ring.shards {
            o.shards = s;
        }
        if let Some(h) = &self.host {
            if crate::files::safe_component(h).is_none() {
                return Err(err(
                    "host",
                    format!("{h:?} is not a host name (letters, digits, - _ .)"),
                ));
            }
            o.host = h.clone();
        }
        if let Some(p) = &self.program {
            o.program = p.clone();
        }
        o.min_level = self.capture.level.core();
        let t = &self.trigger;
        let threshold = match &t.threshold {
            None => None,
            Some(th) => Some(Threshold {
                kind: kind_by_name("trigger.threshold.kind", &th.kind)?,
                count: th.count,
                window: ns(secs("trigger.threshold.window_secs", th.window_secs)?),
                per_peer: th.per_peer,
            }),
        };
        let rate = match &t.rate {
            None => None,
            Some(r) => {
                if r.dumps == 0 {
                    return Err(err("trigger.rate.dumps", "must be at least 1"));
                }
                Some(RateLimit::new(
                    r.dumps,
                    ns(secs("trigger.rate.window_secs", r.window_secs)?),
                    ns(secs("trigger.rate.cooldown_secs", r.cooldown_secs)?),
                ))
            }
        };
        o.trigger = TriggerConfig {
            failed_login: t.failed_login,
            level: t.level.map(LevelName::core),
            named: leak_names(&t.named),
            threshold,
            post_records: 0,
            post_ticks: ns(Duration::from_millis(t.post_ms)),
            rate,
            scope_session: t.scope_session,
            ..TriggerConfig::DEFAULT
        };
        // What the recorder cannot honour (shards, threshold depth, names), named by key.
        o.check()?;
        Ok(o)
    }

    /// The capture filter for [`crate::FlightLayer`] (`layer.with_filter(filter)`).
    pub fn capture_filter(&self) -> Targets {
        self.capture.targets.iter().fold(
            Targets::new().with_default(self.capture.level.tracing()),
            |t, (target, level)| t.with_target(target.clone(), level.tracing()),
        )
    }

    /// Options of the writer task.
    pub fn service_options(&self) -> Result<ServiceOptions, ConfigError> {
        if self.queue == 0 {
            return Err(err("queue", "must be at least 1"));
        }
        let d = &self.dump;
        let format = match d.format.as_str() {
            "binary" => DumpFormat::Binary,
            "forensic" => DumpFormat::Forensic,
            other => {
                return Err(err(
                    "dump.format",
                    format!("unknown format {other:?} (known: binary, forensic)"),
                ))
            }
        };
        let dump = DumpOptions {
            path: Template::parse(&d.path).map_err(|p| err("dump.path", p))?,
            file: self.file_policy(&d.mode, "dump.mode")?,
            format,
            durable: d.durable,
            seal_key: d.seal_key.as_ref().map(PathBuf::from),
        };
        let audit = match &self.audit {
            None => None,
            Some(a) => {
                if a.path.is_empty() {
                    return Err(err("audit.path", "must not be empty"));
                }
                a.format
                    .validate()
                    .map_err(|e| err("audit.format", e.to_string()))?;
                if a.max_hosts == 0 {
                    return Err(err("audit.max_hosts", "must be at least 1"));
                }
                Some(AuditOptions {
                    path: a.path.clone(),
                    format: a.format.clone(),
                    file: self.file_policy(&a.mode, "audit.mode")?,
                    max_bytes: a.max_bytes,
                    max_files: a.max_files,
                    max_age: if a.max_age_days > 0.0 {
                        Some(secs("audit.max_age_days", a.max_age_days * 86_400.0)?)
                    } else {
                        None
                    },
                    max_hosts: a.max_hosts,
                    seal_key: a.seal_key.as_ref().map(PathBuf::from),
                })
            }
        };
        Ok(ServiceOptions {
            dump,
            audit,
            queue: self.queue,
            dump_signal: signal_by_name("dump.signal", &d.signal)?,
            reopen_on_hup: d.reopen_on_hup,
        })
    }
}

/// The dotted key whose line holds byte `at` of `text`: the last `[table]` header before
/// it and the key on that line.
fn key_at(text: &str, at: usize) -> String {
    let before = text.get(..at).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text
        .get(line_start..)
        .and_then(|l| l.lines().next())
        .unwrap_or("");
    let table = before
        .get(..line_start)
        .unwrap_or("")
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    let trimmed = line.trim();
    if trimmed.starts_with('[') {
        return trimmed
            .trim_matches(|c| c == '[' || c == ']')
            .trim()
            .to_owned();
    }
    let key = trimmed
        .split('=')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"')
        .to_owned();
    match (table, key.is_empty()) {
        (Some(t), false) => format!("{t}.{key}"),
        (Some(t), true) => t,
        (None, _) => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_example_parses() {
        let text = include_str!("../examples/gateway.toml");
        let c = Config::from_toml(text).unwrap();
        let s = c.service_options().unwrap();
        assert_eq!(s.dump_signal, Some(libc::SIGUSR2));
        let a = s.audit.unwrap();
        assert_eq!(a.file.mode, 0o600);
        assert!(a.path.contains("@HOST@"));
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::from_toml("").unwrap();
        assert!(c.audit.is_none());
        assert_eq!(c.service_options().unwrap().queue, 4096);
    }

    fn error_of(text: &str) -> ConfigError {
        Config::from_toml(text).unwrap_err()
    }

    #[test]
    fn errors_name_the_key() {
        let e = error_of("[dump]\nmode = \"0666\"\n");
        assert_eq!(e.key, "dump.mode");
        assert!(e.problem.contains("world-writable"), "{e}");

        let e = error_of("[dump]\npath = \"x-{pdi}\"\n");
        assert_eq!(e.key, "dump.path");

        assert!(e.problem.contains("{pdi}"), "{e}");

        let e = error_of("[dump]\ndurable = \"yes\"\n");
        assert_eq!(e.key, "dump.durable");
        assert!(e.problem.contains("boolean"), "{e}");

        let e = error_of("[audit]\npath = \"a.log\"\nmax_files = \"many\"\n");
        assert_eq!(e.key, "audit.max_files");

        let e = error_of(
            "[trigger]\nthreshold = { kind = \"auth-fail\", count = 3, window_secs = 1 }\n",
        );
        assert_eq!(e.key, "trigger.threshold.kind");

        let e = error_of(
            "[trigger]\nthreshold = { kind = \"auth-failure\", count = 50, window_secs = 1 }\n",
        );
        assert_eq!(e.key, "trigger.threshold.count");
        assert!(e.problem.contains("32"), "{e}");

        let e = error_of("[ring]\nshards = 33\n");
        assert_eq!(e.key, "ring.shards");

        let e = error_of("[dump]\nsignal = \"SIGKILL\"\n");
        assert_eq!(e.key, "dump.signal");

        let e = error_of("[ring]\nshard = 3\n");
        assert_eq!(e.key, "ring.shard");
        assert!(e.problem.contains("unknown field"), "{e}");

        let e = error_of("[audit]\nformat = { style = \"open-xchange\", delimiter = \"a\" }\n");
        assert_eq!(e.key, "audit.format");
    }

    #[test]
    fn files_section_sets_every_files_rules() {
        let c = Config::from_toml(
            "[files]\ndir_mode = \"0750\"\nloose_mode = \"refuse\"\ntrusted_groups = [\"root\", 4]\n\
             [ring]\nfile = \"r.flr\"\nfile_mode = \"0640\"\n[audit]\npath = \"a.log\"\n",
        )
        .unwrap();
        let s = c.service_options().unwrap();
        let want = FilePolicy {
            mode: 0o600,
            dir_mode: 0o750,
            loose: LooseMode::Refuse,
            trusted_gids: vec![0, 4],
        };
        assert_eq!(s.dump.file, want);
        assert_eq!(s.audit.unwrap().file, want);
        let ring = c.file_policy(&c.ring.file_mode, "ring.file_mode").unwrap();
        assert_eq!(ring.mode, 0o640);
        // Defaults: 0700 directories, tighten, only root's group.
        let d = Config::from_toml("")
            .unwrap()
            .service_options()
            .unwrap()
            .dump
            .file;
        assert_eq!(d, FilePolicy::default());
    }

    #[test]
    fn files_section_errors_name_the_key() {
        let e = error_of("[files]\nloose_mode = \"ignore\"\n");
        assert_eq!(e.key, "files.loose_mode");
        let e = error_of("[files]\ndir_mode = \"0770\"\n");
        assert_eq!(e.key, "files.dir_mode");
        assert!(e.problem.contains("others write"), "{e}");
        let e = error_of("[files]\ndir_mode = \"0600\"\n");
        assert_eq!(e.key, "files.dir_mode");
        let e = error_of("[files]\ntrusted_groups = [\"no-such-group-flightrec\"]\n");
        assert_eq!(e.key, "files.trusted_groups");
        let e = error_of("[files]\nowner = \"me\"\n");
        assert_eq!(e.key, "files.owner");
    }
}
