//! Audit-line renderers (ejabberd and Open-Xchange styles), escaping and parsing.
//!
//! Security events ([`Decoded::AuthFailure`], [`Decoded::AuthSuccess`], [`Decoded::Logout`],
//! [`Decoded::SessionForbidden`], [`Decoded::Connect`]) become one text line each, in one of
//! two styles:
//!
//! - [`EjabberdFormat`] writes `2010-04-02 17:21:37 Failed PLAIN authentication for user@host from
//!   127.0.0.1 port 58973`, the shape fail2ban filters for ejabberd expect;
//! - [`OxFormat`] writes `ox.login|login=thorben|host=example.org|ip=::1|port=5222|mechanism=PLAIN|timestamp=2016-06-10T10:31:10Z`,
//!   like Open-Xchange's audit log.
//!
//! Every field a remote peer controls goes through [`flightrec_core::text::Escaped`], so a
//! user name cannot end a line, print a terminal escape, fake a delimiter or a
//! `from <ip>` part. Both styles parse back ([`LineFormat::parse`]) into an owned
//! [`AuditRecord`]; the parser accepts only lines the renderer could have written (it
//! re-renders and compares), so a parsed line is known to be clean. [`viewer`] is the
//! `flightrec audit` subcommand.
//!
//! # fail2ban
//!
//! The crate ships a filter per style in `adapters/audit/fail2ban/`; both match failed
//! logins that have a peer address, and `check.sh` there runs them with `fail2ban-regex`
//! against hostile lines:
//!
//! - `flightrec-ejabberd.conf`: [`EjabberdFormat`] lines. The date has no zone: set the
//!   jail's `logtimezone` to the configured [`EjabberdFormat::time_zone`].
//! - `flightrec-ox.conf`: [`OxFormat`] lines, with [`OxFormat::attribute_names`] on or off
//!   (both match: a value never holds a raw `=`, so the optional `name=` cannot be
//!   confused with one). A delimiter other than `|` is the filter parameter `delimiter`,
//!   written as a regex: `filter = flightrec-ox[delimiter=";"]`, `[delimiter="\t"]`,
//!   `[delimiter="\x20"]`. A [`OxFormat::date_pattern`] other than the default needs the
//!   jail's `datepattern` (the same `%`-specifiers, anchored with `$`: the timestamp is the
//!   last value) and, without an offset in it, `logtimezone`.
//!
//! Neither filter can be evaded by varying a character of a peer-controlled field: those
//! fields never hold a raw delimiter, line break, control, Unicode whitespace other than
//! the ASCII space, or invisible character (see [`flightrec_core::text::is_dangerous`]).
//!
//! ```
//! use flightrec_audit::{EjabberdFormat, LineFormat};
//! use flightrec_core::event::{AuthFailure, Decoded, Peer};
//!
//! let event = Decoded::AuthFailure(AuthFailure {
//!     user: "bob\nFailed x authentication for root@h from 6.6.6.6 port 1",
//!     host: "example.org",
//!     peer: Some(Peer::from("127.0.0.1:58973".parse::<std::net::SocketAddr>().unwrap())),
//!     mechanism: "PLAIN",
//!     reason: "",
//! });
//! let format = LineFormat::Ejabberd(EjabberdFormat::default());
//! let mut line = String::new();
//! format.render(1_270_228_897_000_000_000, "gw", &event, &mut line).unwrap();
//! assert_eq!(
//!     line,
//!     "2010-04-02 17:21:37 Failed PLAIN authentication for bob\\x0aFailed\\x20x\\x20authentication\\x20for\\x20root\\x40h\\x20from\\x206.6.6.6\\x20port\\x201@example.org from 127.0.0.1 port 58973"
//! );
//! let back = format.parse(&line).unwrap();
//! assert_eq!(back.unix_secs, 1_270_228_897);
//! assert_eq!(back.event.as_decoded(), event);
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use core::fmt;

use flightrec_core::event::Decoded;
use serde::Deserialize;

mod ejabberd;
mod ox;
mod record;
pub mod rfc5424;
pub mod viewer;
mod zone;

pub use ejabberd::EjabberdFormat;
pub use ox::OxFormat;
pub use record::{AuditEvent, AuditRecord};
pub use zone::UtcOffset;

/// First line of an audit log's seal sidecar (`<log>.seal`, `core/SEALING.md` section 9):
/// the viewer skips such files in directories (the same text as
/// `flightrec_decode::auditseal::SIDECAR_TAG`; a test of the CLI checks they agree).
pub const SEAL_SIDECAR_TAG: &str = "flightrec-audit-seal 1";

/// How audit lines are written: one of the two styles with its settings.
///
/// In TOML the style is the `style` key beside the style's own settings:
///
/// ```
/// # use flightrec_audit::LineFormat;
/// let f: LineFormat = toml::from_str(r#"
///     style = "open-xchange"
///     delimiter = ";"
///     attribute_names = false
///     time_zone = "UTC"
/// "#).unwrap();
/// assert!(matches!(f, LineFormat::OpenXchange(ref ox) if ox.delimiter == ';'));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "style", rename_all = "kebab-case")]
pub enum LineFormat {
    /// `YYYY-MM-DD HH:MM:SS Failed PLAIN authentication for user@host from ip port N`.
    Ejabberd(EjabberdFormat),
    /// `ox.login|login=user|...|timestamp=...`.
    OpenXchange(OxFormat),
}

impl Default for LineFormat {
    fn default() -> Self {
        LineFormat::Ejabberd(EjabberdFormat::default())
    }
}

impl LineFormat {
    /// Renders `event`, which happened at `unix_nanos` (nanoseconds since the Unix epoch,
    /// UTC), as one audit line appended to `out`, without the trailing newline.
    /// `host_fallback` stands in for an event's empty host (a device with no virtual
    /// hosts names itself). Kinds with no audit line (logs, frames, custom and unknown
    /// events) give [`RenderError::NoAuditLine`] and leave `out` as it was; so does every
    /// other error.
    pub fn render(
        &self,
        unix_nanos: i128,
        host_fallback: &str,
        event: &Decoded<'_>,
        out: &mut String,
    ) -> Result<(), RenderError> {
        let start = out.len();
        let result = match self {
            LineFormat::Ejabberd(f) => f.render(unix_nanos, host_fallback, event, out),
            LineFormat::OpenXchange(f) => f.render(unix_nanos, host_fallback, event, out),
        };
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// Parses one line (without its newline) written in this format.
    pub fn parse(&self, line: &str) -> Result<AuditRecord, ParseError> {
        match self {
            LineFormat::Ejabberd(f) => f.parse(line),
            LineFormat::OpenXchange(f) => f.parse(line),
        }
    }

    /// Checks the settings (an Open-Xchange delimiter that would break lines, a date
    /// pattern that does not format); [`LineFormat::render`] runs the same checks.
    pub fn validate(&self) -> Result<(), RenderError> {
        match self {
            LineFormat::Ejabberd(_) => Ok(()),
            LineFormat::OpenXchange(f) => f.validate(),
        }
    }
}

/// Why an event was not rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenderError {
    /// This kind of event has no audit line (logs, frames, custom and unknown kinds).
    NoAuditLine(flightrec_core::Kind),
    /// The time is outside years 0000–9999.
    TimeOutOfRange,
    /// The date pattern has a bad `%` specifier.
    BadDatePattern,
    /// The date pattern writes a literal `Z` (UTC) while the time zone is not UTC.
    PatternClaimsUtc,
    /// This character cannot be the Open-Xchange delimiter (letters, digits, `\`, `=`,
    /// `.`, `:`, `{`, `}`, and characters escaped anyway: line breaks, controls other
    /// than tab, Unicode whitespace other than the ASCII space, invisible characters).
    BadDelimiter(char),
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::NoAuditLine(kind) => match kind.name() {
                Some(name) => write!(f, "{name} events have no audit line"),
                None => write!(f, "events of unknown kind {} have no audit line", kind.0),
            },
            RenderError::TimeOutOfRange => f.write_str("time outside years 0000-9999"),
            RenderError::BadDatePattern => f.write_str("bad %-specifier in the date pattern"),
            RenderError::PatternClaimsUtc => f.write_str(
                "the date pattern writes a literal Z (UTC) but the time zone is not UTC; use %:z",
            ),
            RenderError::BadDelimiter(c) => {
                // The character itself only where it is visible.
                if !flightrec_core::text::is_dangerous(*c) && *c != ' ' {
                    write!(f, "'{c}' ")?;
                }
                write!(
                    f,
                    "(U+{:04X}) cannot be the delimiter (letters, digits, \\ = . : {{ }}, controls, Unicode spaces and invisible characters are not allowed)",
                    u32::from(*c)
                )
            }
        }
    }
}

impl std::error::Error for RenderError {}

/// Why a line did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// What was wrong, for messages.
    pub reason: &'static str,
}

impl ParseError {
    pub(crate) const fn new(reason: &'static str) -> Self {
        ParseError { reason }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for ParseError {}

/// Unescapes a field written by [`flightrec_core::text::Escaped`] with `delimiters`, and
/// accepts it only if escaping the result again gives the same text: a field the renderer
/// could not have written (a raw control character, an unescaped delimiter, a needless
/// escape) is refused.
pub(crate) fn unescape_field(field: &str, delimiters: &[char]) -> Result<String, ParseError> {
    use core::fmt::Write;
    let mut text = String::with_capacity(field.len());
    flightrec_core::text::unescape(field, &mut text)
        .map_err(|_| ParseError::new("bad escape in a field"))?;
    let mut again = String::with_capacity(field.len());
    write!(
        again,
        "{}",
        flightrec_core::text::Escaped::new(&text, delimiters)
    )
    .map_err(|_| ParseError::new("bad field"))?;
    if again != field {
        return Err(ParseError::new("field not escaped as the renderer does"));
    }
    Ok(text)
}

/// Parses an IP address written as [`flightrec_core::event::Addr`] displays it.
pub(crate) fn parse_addr(s: &str) -> Result<flightrec_core::event::Addr, ParseError> {
    let ip: std::net::IpAddr = s.parse().map_err(|_| ParseError::new("bad IP address"))?;
    // Only the canonical spelling: `::0:1` or `::ffff:1.2.3.4` written otherwise is not ours.
    if ip.to_string() != s {
        return Err(ParseError::new("IP address not in canonical form"));
    }
    Ok(ip.into())
}

/// Parses a port written in decimal, without sign or leading zeros.
pub(crate) fn parse_port(s: &str) -> Result<u16, ParseError> {
    let port: u16 = s.parse().map_err(|_| ParseError::new("bad port"))?;
    if port.to_string() != s {
        return Err(ParseError::new("port not in canonical form"));
    }
    Ok(port)
}

/// Whole seconds of `unix_nanos`, rounded down (so a time before the epoch stays before).
pub(crate) fn unix_secs(unix_nanos: i128) -> Result<i64, RenderError> {
    i64::try_from(unix_nanos.div_euclid(1_000_000_000)).map_err(|_| RenderError::TimeOutOfRange)
}
