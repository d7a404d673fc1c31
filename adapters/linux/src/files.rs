//! Opening files that hold dumps and audit lines safely, and expanding file name templates.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Opens `path` for appending, creating it with `mode` if missing, never through a symlink
/// (`O_NOFOLLOW`). The parent directory is created (0700) if missing and refused if it is
/// world-writable (anyone could swap the file). Only regular files are accepted.
pub fn open_append(path: &Path, mode: u32) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        ensure_dir(dir)?;
    }
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{} is a symbolic link: refused", path.display()),
                )
            } else {
                io::Error::new(e.kind(), format!("{}: {e}", path.display()))
            }
        })?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file: refused", path.display()),
        ));
    }
    Ok(file)
}

/// Creates `dir` (0700, with its parents) if missing; refuses a world-writable one.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    }
    let meta = std::fs::metadata(dir)?;
    if meta.mode() & 0o002 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "directory {} is world-writable: refused (anyone could replace the file)",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// This machine's host name (`uname -n`), or `localhost`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A name safe as one path component: letters, digits, `-`, `_`, `.` (not leading), at most
/// 64 bytes. Anything else gives `None` (a remote-controlled host never picks a path).
pub fn safe_component(name: &str) -> Option<&str> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then_some(name)
}

/// A variable in a file name template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Var {
    Pid,
    Count,
    Time,
    Date,
    Clock,
    Host,
}

/// A parsed dump file name template (Prosody's `filename_template`): `{pid}`, `{count}`,
/// `{time}` (Unix seconds), `{time|yyyymmdd}`, `{time|hhmmss}` (UTC) and `{host}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Result<String, Var>>,
}

/// What to put in a template's variables.
#[derive(Clone, Copy, Debug)]
pub struct TemplateVars<'a> {
    /// `{pid}`.
    pub pid: u32,
    /// `{count}`.
    pub count: u64,
    /// `{time}`: seconds since the Unix epoch.
    pub unix_secs: u64,
    /// `{host}`.
    pub host: &'a str,
}

impl Template {
    /// Parses a template; the error names the bad variable.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let (lit, after) = rest.split_at(open);
            if !lit.is_empty() {
                parts.push(Ok(lit.to_owned()));
            }
            let close = after
                .find('}')
                .ok_or_else(|| format!("unclosed `{{` in template {text:?}"))?;
            let name = after.get(1..close).unwrap_or("");
            let var = match name {
                "pid" => Var::Pid,
                "count" => Var::Count,
                "time" => Var::Time,
                "time|yyyymmdd" => Var::Date,
                "time|hhmmss" => Var::Clock,
                "host" => Var::Host,
                other => {
                    return Err(format!(
                        "unknown variable {{{other}}} (known: {{pid}}, {{count}}, {{time}}, \
                         {{time|yyyymmdd}}, {{time|hhmmss}}, {{host}})"
                    ))
                }
            };
            parts.push(Err(var));
            rest = after.get(close + 1..).unwrap_or("");
        }
        if !rest.is_empty() {
            parts.push(Ok(rest.to_owned()));
        }
        if parts.is_empty() {
            return Err("empty template".into());
        }
        Ok(Template { parts })
    }

    /// The file name for these values. `{host}` is made path-safe.
    pub fn expand(&self, v: &TemplateVars<'_>) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let (y, mo, d, h, mi, s) = civil(v.unix_secs);
        for p in &self.parts {
            let _ = match p {
                Ok(lit) => out.write_str(lit),
                Err(Var::Pid) => write!(out, "{}", v.pid),
                Err(Var::Count) => write!(out, "{}", v.count),
                Err(Var::Time) => write!(out, "{}", v.unix_secs),
                Err(Var::Date) => write!(out, "{y:04}{mo:02}{d:02}"),
                Err(Var::Clock) => write!(out, "{h:02}{mi:02}{s:02}"),
                Err(Var::Host) => out.write_str(safe_component(v.host).unwrap_or("unknown-host")),
            };
        }
        out
    }
}

/// UTC calendar date and time of `secs` since the epoch (Howard Hinnant's `civil_from_days`).
pub fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let tod = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (tod / 3600) as u32,
        (tod / 60 % 60) as u32,
        (tod % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_expands_every_variable() {
        let t = Template::parse("d/{host}-{pid}-{count}-{time}-{time|yyyymmdd}-{time|hhmmss}.flr")
            .unwrap();
        let v = TemplateVars {
            pid: 42,
            count: 3,
            unix_secs: 1_700_000_000, // 2023-11-14T22:13:20Z
            host: "gw1",
        };
        assert_eq!(t.expand(&v), "d/gw1-42-3-1700000000-20231114-221320.flr");
        let evil = TemplateVars {
            host: "../etc",
            ..v
        };
        assert_eq!(
            Template::parse("{host}").unwrap().expand(&evil),
            "unknown-host"
        );
    }

    #[test]
    fn template_errors_name_the_variable() {
        let e = Template::parse("x-{pdi}.log").unwrap_err();
        assert!(e.contains("{pdi}"), "{e}");
        assert!(Template::parse("x-{pid").unwrap_err().contains("unclosed"));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(civil(4_102_444_799), (2099, 12, 31, 23, 59, 59));
    }

    #[test]
    fn secure_open() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/dir/f.log");
        let f = open_append(&p, 0o600).unwrap();
        assert_eq!(f.metadata().unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(dir.path().join("sub")).unwrap().mode() & 0o777,
            0o700
        );
        // A symlink is refused, and its target is untouched.
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("link.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open_append(&link, 0o600).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        // A world-writable directory is refused.
        let ww = dir.path().join("ww");
        std::fs::create_dir(&ww).unwrap();
        std::fs::set_permissions(&ww, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let e = open_append(&ww.join("f"), 0o600).unwrap_err();
        assert!(e.to_string().contains("world-writable"), "{e}");
        // A directory or device is not a regular file.
        assert!(open_append(Path::new("/dev/null"), 0o600).is_err());
    }
}
