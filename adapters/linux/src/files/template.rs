//! File name templates (Prosody's `filename_template`) and UTC calendar dates for them.

use super::safe_component;

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
}
