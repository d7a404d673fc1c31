//! ejabberd-style audit lines.
//!
//! Grammar (one line, `SP` a single space, `E(x)` the text escaped with
//! [`Escaped::new(x, &[' ', '@', '/'])`](flightrec_core::text::Escaped), so it never holds a
//! space, `@`, `/`, control or bidi character):
//!
//! ```text
//! line     = date SP time SP message
//! date     = YYYY "-" MM "-" DD            ; in the configured zone, UTC by default
//! time     = hh ":" mm ":" ss
//! message  = "Failed" SP E(mechanism) SP "authentication for" SP account [from] [":" SP E(reason)]
//!          / "Accepted" SP E(mechanism) SP "authentication for" SP account [from]
//!          / "Closed session for" SP account [from]
//!          / "Forbidden session for" SP account "/" E(resource)
//!          / "Accepted" SP E(protocol) SP "connection" [from]
//! account  = E(user) "@" E(host)
//! from     = SP "from" SP ip SP "port" SP port   ; ip as Rust prints it (IPv4 dotted, IPv6 RFC 5952)
//! ```

use core::fmt::Write;

use chrono::{Datelike, NaiveDate, Timelike};
use flightrec_core::event::{Decoded, Peer};
use flightrec_core::text::Escaped;
use serde::Deserialize;

use crate::record::{AuditEvent, AuditRecord};
use crate::{
    parse_addr, parse_port, unescape_field, unix_secs, ParseError, RenderError, UtcOffset,
};

/// Characters escaped in every peer-controlled field of an ejabberd-style line.
pub const EJABBERD_DELIMITERS: &[char] = &[' ', '@', '/'];

/// ejabberd-style lines: `2010-04-02 17:21:37 Failed PLAIN authentication for user@host
/// from 127.0.0.1 port 58973`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EjabberdFormat {
    /// Zone of the date and time at the start of each line (UTC by default). The line
    /// does not say it: readers (fail2ban's `logtimezone`, `flightrec audit --tz`) must be
    /// told.
    pub time_zone: UtcOffset,
}

fn esc(s: &str) -> Escaped<'_> {
    Escaped::new(s, EJABBERD_DELIMITERS)
}

/// Writes ` from IP port N` when the peer is known.
fn write_peer(out: &mut String, peer: Option<Peer>) {
    if let Some(p) = peer {
        // Writing to a String cannot fail.
        let _ = write!(out, " from {} port {}", p.addr, p.port);
    }
}

pub(crate) fn kind_of(event: &Decoded<'_>) -> flightrec_core::Kind {
    event.kind()
}

impl EjabberdFormat {
    pub(crate) fn render(
        &self,
        unix_nanos: i128,
        host_fallback: &str,
        event: &Decoded<'_>,
        out: &mut String,
    ) -> Result<(), RenderError> {
        if !kind_of(event).is_security() {
            return Err(RenderError::NoAuditLine(kind_of(event)));
        }
        let t = self.time_zone.local(unix_secs(unix_nanos)?)?;
        if !(0..=9999).contains(&t.year()) {
            return Err(RenderError::TimeOutOfRange);
        }
        let host = |h: &'_ str| -> String {
            let h = if h.is_empty() { host_fallback } else { h };
            esc(h).to_string()
        };
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} ",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        let peer = match event {
            Decoded::AuthFailure(e) => {
                let _ = write!(
                    out,
                    "Failed {} authentication for {}@{}",
                    esc(e.mechanism),
                    esc(e.user),
                    host(e.host)
                );
                e.peer
            }
            Decoded::AuthSuccess(e) => {
                let _ = write!(
                    out,
                    "Accepted {} authentication for {}@{}",
                    esc(e.mechanism),
                    esc(e.user),
                    host(e.host)
                );
                e.peer
            }
            Decoded::Logout(e) => {
                let _ = write!(out, "Closed session for {}@{}", esc(e.user), host(e.host));
                e.peer
            }
            Decoded::SessionForbidden(e) => {
                let _ = write!(
                    out,
                    "Forbidden session for {}@{}/{}",
                    esc(e.user),
                    host(e.host),
                    esc(e.resource)
                );
                None
            }
            Decoded::Connect(e) => {
                let _ = write!(out, "Accepted {} connection", esc(e.protocol));
                e.peer
            }
            _ => return Err(RenderError::NoAuditLine(kind_of(event))),
        };
        write_peer(out, peer);
        // ejabberd ends a failure with `: Reason`.
        if let Decoded::AuthFailure(e) = event {
            if !e.reason.is_empty() {
                let _ = write!(out, ": {}", esc(e.reason));
            }
        }
        Ok(())
    }

    pub(crate) fn parse(&self, line: &str) -> Result<AuditRecord, ParseError> {
        let unix_secs = self.parse_stamp(line)?;
        let message = line
            .get(20..)
            .ok_or(ParseError::new("line ends after the time"))?;
        let tokens: Vec<&str> = message.split(' ').collect();
        let event = match tokens.as_slice() {
            ["Failed", mechanism, "authentication", "for", rest @ ..] => {
                let mut rest = rest.to_vec();
                // A reason is one more token (spaces in it are escaped), after a `:` that
                // ends the token before it.
                let reason = if matches!(rest.len(), 2 | 6) {
                    let reason = rest.pop().unwrap_or_default();
                    if reason.is_empty() {
                        return Err(ParseError::new("empty reason"));
                    }
                    let last = rest.last_mut().ok_or(ParseError::new("missing account"))?;
                    *last = last
                        .strip_suffix(':')
                        .ok_or(ParseError::new("junk after the account or port"))?;
                    unescape_field(reason, EJABBERD_DELIMITERS)?
                } else {
                    String::new()
                };
                let (account, from) = rest
                    .split_first()
                    .ok_or(ParseError::new("missing account"))?;
                let (user, host) = parse_account(account)?;
                AuditEvent::AuthFailure {
                    user,
                    host,
                    peer: parse_from(from)?,
                    mechanism: unescape_field(mechanism, EJABBERD_DELIMITERS)?,
                    reason,
                }
            }
            ["Accepted", mechanism, "authentication", "for", account, from @ ..] => {
                let (user, host) = parse_account(account)?;
                AuditEvent::AuthSuccess {
                    user,
                    host,
                    peer: parse_from(from)?,
                    mechanism: unescape_field(mechanism, EJABBERD_DELIMITERS)?,
                }
            }
            ["Closed", "session", "for", account, from @ ..] => {
                let (user, host) = parse_account(account)?;
                AuditEvent::Logout {
                    user,
                    host,
                    peer: parse_from(from)?,
                }
            }
            ["Forbidden", "session", "for", full] => {
                let (account, resource) = full
                    .split_once('/')
                    .ok_or(ParseError::new("missing /resource"))?;
                let (user, host) = parse_account(account)?;
                AuditEvent::SessionForbidden {
                    user,
                    host,
                    resource: unescape_field(resource, EJABBERD_DELIMITERS)?,
                }
            }
            ["Accepted", protocol, "connection", from @ ..] => AuditEvent::Connect {
                protocol: unescape_field(protocol, EJABBERD_DELIMITERS)?,
                peer: parse_from(from)?,
            },
            _ => return Err(ParseError::new("not an ejabberd-style audit message")),
        };
        Ok(AuditRecord { unix_secs, event })
    }

    /// Parses `YYYY-MM-DD hh:mm:ss ` at the start of `line`, exactly as rendered.
    fn parse_stamp(&self, line: &str) -> Result<i64, ParseError> {
        let bad = ParseError::new("line does not start with YYYY-MM-DD hh:mm:ss");
        let stamp = line.as_bytes().get(..20).ok_or(bad)?;
        let mut numbers = [0u32; 6];
        for (i, &b) in stamp.iter().enumerate() {
            let expected = match i {
                4 | 7 => b'-',
                10 | 19 => b' ',
                13 | 16 => b':',
                _ => {
                    if !b.is_ascii_digit() {
                        return Err(bad);
                    }
                    let field = match i {
                        0..=3 => 0,
                        5..=6 => 1,
                        8..=9 => 2,
                        11..=12 => 3,
                        14..=15 => 4,
                        _ => 5,
                    };
                    if let Some(n) = numbers.get_mut(field) {
                        *n = *n * 10 + u32::from(b - b'0');
                    }
                    continue;
                }
            };
            if b != expected {
                return Err(bad);
            }
        }
        let [y, mo, d, h, mi, s] = numbers;
        let local = i32::try_from(y)
            .ok()
            .and_then(|y| NaiveDate::from_ymd_opt(y, mo, d))
            .and_then(|date| date.and_hms_opt(h, mi, s))
            .ok_or(ParseError::new("no such date or time"))?;
        self.time_zone
            .to_unix(&local)
            .ok_or(ParseError::new("time out of range"))
    }
}

/// `E(user)@E(host)`.
fn parse_account(account: &str) -> Result<(String, String), ParseError> {
    let (user, host) = account
        .split_once('@')
        .ok_or(ParseError::new("account without @"))?;
    Ok((
        unescape_field(user, EJABBERD_DELIMITERS)?,
        unescape_field(host, EJABBERD_DELIMITERS)?,
    ))
}

/// Nothing, or `from IP port N` (as tokens).
fn parse_from(tokens: &[&str]) -> Result<Option<Peer>, ParseError> {
    match tokens {
        [] => Ok(None),
        ["from", ip, "port", port] => Ok(Some(Peer {
            addr: parse_addr(ip)?,
            port: parse_port(port)?,
        })),
        _ => Err(ParseError::new(
            "expected `from IP port N` or the end of the line",
        )),
    }
}
