//! Open-Xchange-style audit lines.
//!
//! `ox.login|login=thorben|host=example.org|ip=::1|port=5222|mechanism=PLAIN|timestamp=2016-06-10T10:31:10Z`:
//! the event name, then the attributes in a fixed order per event, joined by the
//! delimiter, each `name=value` or, with attribute names off, the value alone. Every
//! value, the timestamp included, is escaped with the delimiter and `=` in the escape set,
//! so a value never holds a raw delimiter or `=` (which is also how a parser tells the two
//! layouts apart). An unknown peer leaves `ip` and `port` empty.
//!
//! | event | name | attributes |
//! |---|---|---|
//! | auth success | `ox.login` | login, host, ip, port, mechanism, timestamp |
//! | auth failure | `ox.login.failed` | login, host, ip, port, mechanism, reason, timestamp |
//! | logout | `ox.logout` | login, host, ip, port, timestamp |
//! | session forbidden | `ox.session.forbidden` | login, host, resource, timestamp |
//! | connect | `ox.connect` | protocol, ip, port, timestamp |

use core::fmt::Write;

use chrono::format::{self, Item, Parsed, StrftimeItems};
use chrono::Datelike;
use flightrec_core::event::{Decoded, Peer};
use flightrec_core::text::{is_dangerous, Escaped};
use serde::Deserialize;

use crate::ejabberd::kind_of;
use crate::record::{AuditEvent, AuditRecord};
use crate::{
    parse_addr, parse_port, unescape_field, unix_secs, ParseError, RenderError, UtcOffset,
};

/// Open-Xchange-style lines.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OxFormat {
    /// Between the event name and the attributes (default `|`). Not a letter, digit,
    /// `\`, `=`, `.`, `:`, `{`, `}`, or a character escaped anyway
    /// ([`is_dangerous`](flightrec_core::text::is_dangerous)) other than tab. Characters of
    /// an IP address are refused so that the `ip` value is never escaped and a fail2ban
    /// filter (`fail2ban/flightrec-ox.conf`) always reads it.
    pub delimiter: char,
    /// `name=value` (default) or the values alone.
    pub attribute_names: bool,
    /// strftime-like pattern of the `timestamp` attribute (chrono's specifiers), default
    /// `%Y-%m-%dT%H:%M:%SZ`. For `flightrec audit` to read it back it must hold the date
    /// and the time (`%s` counts too, for times after 1970).
    pub date_pattern: String,
    /// Zone the timestamp is written in (default UTC). With another zone, write the
    /// offset (`%:z`) instead of a literal `Z`.
    pub time_zone: UtcOffset,
}

impl Default for OxFormat {
    fn default() -> Self {
        OxFormat {
            delimiter: '|',
            attribute_names: true,
            date_pattern: "%Y-%m-%dT%H:%M:%SZ".to_owned(),
            time_zone: UtcOffset::UTC,
        }
    }
}

/// Event names and attribute names, in line order.
const LOGIN: (&str, &[&str]) = (
    "ox.login",
    &["login", "host", "ip", "port", "mechanism", "timestamp"],
);
const LOGIN_FAILED: (&str, &[&str]) = (
    "ox.login.failed",
    &[
        "login",
        "host",
        "ip",
        "port",
        "mechanism",
        "reason",
        "timestamp",
    ],
);
const LOGOUT: (&str, &[&str]) = ("ox.logout", &["login", "host", "ip", "port", "timestamp"]);
const FORBIDDEN: (&str, &[&str]) = (
    "ox.session.forbidden",
    &["login", "host", "resource", "timestamp"],
);
const CONNECT: (&str, &[&str]) = ("ox.connect", &["protocol", "ip", "port", "timestamp"]);

impl OxFormat {
    /// Checks the delimiter and the date pattern.
    pub fn validate(&self) -> Result<(), RenderError> {
        let d = self.delimiter;
        if d.is_alphanumeric()
            || matches!(d, '\\' | '=' | '.' | ':' | '{' | '}')
            || (is_dangerous(d) && d != '\t')
        {
            return Err(RenderError::BadDelimiter(d));
        }
        for item in StrftimeItems::new(&self.date_pattern) {
            match item {
                Item::Error => return Err(RenderError::BadDatePattern),
                Item::Literal(s) if s.contains('Z') && self.time_zone != UtcOffset::UTC => {
                    return Err(RenderError::PatternClaimsUtc)
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn escape_set(&self) -> [char; 2] {
        [self.delimiter, '=']
    }

    fn timestamp(&self, unix_secs: i64) -> Result<String, RenderError> {
        let t = self.time_zone.local(unix_secs)?;
        if !(0..=9999).contains(&t.year()) {
            return Err(RenderError::TimeOutOfRange);
        }
        let mut s = String::new();
        write!(
            s,
            "{}",
            t.format_with_items(StrftimeItems::new(&self.date_pattern))
        )
        .map_err(|_| RenderError::BadDatePattern)?;
        Ok(s)
    }

    pub(crate) fn render(
        &self,
        unix_nanos: i128,
        host_fallback: &str,
        event: &Decoded<'_>,
        out: &mut String,
    ) -> Result<(), RenderError> {
        self.validate()?;
        let timestamp = self.timestamp(unix_secs(unix_nanos)?)?;
        let fallback = |h: &str| -> String {
            if h.is_empty() {
                host_fallback.to_owned()
            } else {
                h.to_owned()
            }
        };
        let peer = |p: Option<Peer>| match p {
            Some(p) => (p.addr.to_string(), p.port.to_string()),
            None => (String::new(), String::new()),
        };
        let ((name, names), values): ((&str, &[&str]), Vec<String>) = match event {
            Decoded::AuthSuccess(e) => {
                let (ip, port) = peer(e.peer);
                (
                    LOGIN,
                    vec![
                        e.user.to_owned(),
                        fallback(e.host),
                        ip,
                        port,
                        e.mechanism.to_owned(),
                    ],
                )
            }
            Decoded::AuthFailure(e) => {
                let (ip, port) = peer(e.peer);
                (
                    LOGIN_FAILED,
                    vec![
                        e.user.to_owned(),
                        fallback(e.host),
                        ip,
                        port,
                        e.mechanism.to_owned(),
                        e.reason.to_owned(),
                    ],
                )
            }
            Decoded::Logout(e) => {
                let (ip, port) = peer(e.peer);
                (LOGOUT, vec![e.user.to_owned(), fallback(e.host), ip, port])
            }
            Decoded::SessionForbidden(e) => (
                FORBIDDEN,
                vec![e.user.to_owned(), fallback(e.host), e.resource.to_owned()],
            ),
            Decoded::Connect(e) => {
                let (ip, port) = peer(e.peer);
                (CONNECT, vec![e.protocol.to_owned(), ip, port])
            }
            _ => return Err(RenderError::NoAuditLine(kind_of(event))),
        };
        let escape = self.escape_set();
        out.push_str(name);
        for (attr, value) in names.iter().zip(
            values
                .iter()
                .map(String::as_str)
                .chain([timestamp.as_str()]),
        ) {
            out.push(self.delimiter);
            if self.attribute_names {
                out.push_str(attr);
                out.push('=');
            }
            // Writing to a String cannot fail.
            let _ = write!(out, "{}", Escaped::new(value, &escape));
        }
        Ok(())
    }

    pub(crate) fn parse(&self, line: &str) -> Result<AuditRecord, ParseError> {
        let mut fields = line.split(self.delimiter);
        let name = fields.next().unwrap_or_default();
        let (_, names) = [LOGIN, LOGIN_FAILED, LOGOUT, FORBIDDEN, CONNECT]
            .into_iter()
            .find(|(n, _)| *n == name)
            .ok_or(ParseError::new("not an Open-Xchange-style audit event"))?;
        let raw: Vec<&str> = fields.collect();
        if raw.len() != names.len() {
            return Err(ParseError::new("wrong number of attributes"));
        }
        // Values have `=` escaped: a raw `=` means names are on.
        let named = raw.first().is_some_and(|f| f.contains('='));
        let escape = self.escape_set();
        let mut values = Vec::with_capacity(raw.len());
        for (field, attr) in raw.iter().zip(names.iter()) {
            let value = if named {
                match field.split_once('=') {
                    Some((a, v)) if a == *attr => v,
                    _ => return Err(ParseError::new("attribute missing or out of order")),
                }
            } else {
                field
            };
            values.push(unescape_field(value, &escape)?);
        }
        let mut values = values.into_iter();
        let mut next = || values.next().unwrap_or_default();
        let event = match name {
            "ox.login" => {
                let (user, host, ip, port) = (next(), next(), next(), next());
                AuditEvent::AuthSuccess {
                    user,
                    host,
                    peer: parse_peer(&ip, &port)?,
                    mechanism: next(),
                }
            }
            "ox.login.failed" => {
                let (user, host, ip, port) = (next(), next(), next(), next());
                AuditEvent::AuthFailure {
                    user,
                    host,
                    peer: parse_peer(&ip, &port)?,
                    mechanism: next(),
                    reason: next(),
                }
            }
            "ox.logout" => {
                let (user, host, ip, port) = (next(), next(), next(), next());
                AuditEvent::Logout {
                    user,
                    host,
                    peer: parse_peer(&ip, &port)?,
                }
            }
            "ox.session.forbidden" => AuditEvent::SessionForbidden {
                user: next(),
                host: next(),
                resource: next(),
            },
            _ => {
                let (protocol, ip, port) = (next(), next(), next());
                AuditEvent::Connect {
                    protocol,
                    peer: parse_peer(&ip, &port)?,
                }
            }
        };
        let unix_secs = self.parse_timestamp(&next())?;
        Ok(AuditRecord { unix_secs, event })
    }

    fn parse_timestamp(&self, ts: &str) -> Result<i64, ParseError> {
        let mut parsed = Parsed::new();
        // Epoch seconds (`%s`) and written offsets (`%z`) win over the configured zone.
        let secs = format::parse(&mut parsed, ts, StrftimeItems::new(&self.date_pattern))
            .ok()
            .and_then(|()| {
                parsed
                    .to_datetime_with_timezone(&self.time_zone.fixed())
                    .ok()
            })
            .map(|t| t.timestamp())
            .ok_or(ParseError::new(
                "timestamp does not match the date pattern (it must hold date and time)",
            ))?;
        // Only what the renderer writes: a pattern that loses information is caught here.
        if self.timestamp(secs).ok().as_deref() != Some(ts) {
            return Err(ParseError::new("timestamp not as the renderer writes it"));
        }
        Ok(secs)
    }
}

/// Both empty (unknown peer) or both given.
fn parse_peer(ip: &str, port: &str) -> Result<Option<Peer>, ParseError> {
    match (ip.is_empty(), port.is_empty()) {
        (true, true) => Ok(None),
        (false, false) => Ok(Some(Peer {
            addr: parse_addr(ip)?,
            port: parse_port(port)?,
        })),
        _ => Err(ParseError::new("ip without port or port without ip")),
    }
}
