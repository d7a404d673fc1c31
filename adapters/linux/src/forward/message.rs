//! RFC 5424 syslog messages for audit events, trigger firings and written dumps.
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ID host="gw1" boot="..." seq="17" ...] MSG
//! ```
//!
//! - The header fields are checked once, when the [`Origin`] is built (PRINTUSASCII, the
//!   RFC's lengths); the MSGID is one of ours (the event kind, `trigger`, `dump`).
//! - The structured data element (SD-ID configurable, default `flightrec@32473`) holds the
//!   gateway's host, its boot id and the per-boot sequence number, then the typed fields.
//!   Values are escaped twice: first with the project's text rules
//!   ([`flightrec_core::text::Escaped`]: line breaks, controls, bidi, invisible characters)
//!   when a peer controls them, then as RFC 5424 §6.3.3 says (`"`, `\`, `]` get a `\`).
//! - MSG is, for an audit event, exactly the audit line `flightrec-audit` renders (so a
//!   collector can write it out as an ejabberd-style file), and for notices a short text
//!   line whose peer-controlled parts are escaped. No BOM: the RFC allows MSG-ANY, and a
//!   BOM would end up at the start of the collector's rendered lines.

use std::fmt::{self, Write as _};

use flightrec_audit::LineFormat;
use flightrec_core::event::{Decoded, Peer};
use flightrec_core::seal::SEAL_BODY_LEN;
use flightrec_core::text::Escaped;
use flightrec_core::trigger::{DumpOrder, Reason};
use flightrec_core::{Level, SessionId};
use flightrec_decode::sign::SIGNATURE_BODY_LEN;
use flightrec_decode::verify::hex;

/// The documentation enterprise number of RFC 5612, as the default SD-ID.
pub const DEFAULT_SD_ID: &str = "flightrec@32473";

/// Syslog facility `authpriv` (10): security messages.
pub const DEFAULT_FACILITY: u8 = 10;

/// A header field or SD-ID that RFC 5424 does not allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Which field (`hostname`, `app_name`, `procid`, `sd_id`, `facility`).
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for FieldError {}

/// `1*max PRINTUSASCII` (RFC 5424 §6: `%d33-126`).
fn check_printusascii(field: &'static str, value: &str, max: usize) -> Result<(), FieldError> {
    let problem = if value.is_empty() {
        "must not be empty".to_owned()
    } else if value.len() > max {
        format!("{} bytes: at most {max}", value.len())
    } else if let Some(c) = value.chars().find(|c| !matches!(*c, '!'..='~')) {
        format!("{c:?} is not printable US-ASCII (RFC 5424 allows %d33-126)")
    } else {
        return Ok(());
    };
    Err(FieldError { field, problem })
}

/// Checks an SD-ID: an SD-NAME (`1*32` PRINTUSASCII but `=`, SP, `]`, `"`) of the form
/// `name@enterprise-number`. Names without `@` are reserved for IANA (§6.3.2).
pub fn check_sd_id(sd_id: &str) -> Result<(), FieldError> {
    check_printusascii("sd_id", sd_id, 32)?;
    let err = |problem: String| FieldError {
        field: "sd_id",
        problem,
    };
    if let Some(c) = sd_id.chars().find(|c| matches!(c, '=' | ']' | '"')) {
        return Err(err(format!("{c:?} is not allowed in an SD-ID")));
    }
    match sd_id.split_once('@') {
        Some((name, number))
            if !name.is_empty()
                && !number.is_empty()
                && !number.contains('@')
                && number
                    .split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) =>
        {
            Ok(())
        }
        _ => Err(err(format!(
            "{sd_id:?} is not NAME@ENTERPRISE-NUMBER (e.g. flightrec@32473): \
             names without @ are reserved for IANA"
        ))),
    }
}

/// Who sends: the header fields and SD-ID shared by every message, checked once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    facility: u8,
    hostname: String,
    app_name: String,
    procid: String,
    sd_id: String,
    boot: String,
}

impl Origin {
    /// Checks every field: `hostname` (1..=255 printable US-ASCII), `app_name` (1..=48),
    /// `procid` (1..=128), `sd_id` ([`check_sd_id`]), `facility` (0..=23). `boot` is the
    /// boot id (Linux: `/proc/sys/kernel/random/boot_id`), written as an SD value.
    pub fn new(
        facility: u8,
        hostname: &str,
        app_name: &str,
        procid: &str,
        sd_id: &str,
        boot: &str,
    ) -> Result<Origin, FieldError> {
        if facility > 23 {
            return Err(FieldError {
                field: "facility",
                problem: format!("{facility} is not in 0..=23"),
            });
        }
        check_printusascii("hostname", hostname, 255)?;
        check_printusascii("app_name", app_name, 48)?;
        check_printusascii("procid", procid, 128)?;
        check_sd_id(sd_id)?;
        Ok(Origin {
            facility,
            hostname: hostname.to_owned(),
            app_name: app_name.to_owned(),
            procid: procid.to_owned(),
            sd_id: sd_id.to_owned(),
            boot: boot.to_owned(),
        })
    }

    /// The gateway's host name as sent.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The boot id as sent.
    pub fn boot(&self) -> &str {
        &self.boot
    }
}

/// This machine's boot id (`/proc/sys/kernel/random/boot_id`), or `unknown-boot`.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-boot".into())
}

/// Syslog severity of a level (RFC 5424 table 2).
const fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// A `fmt::Write` that escapes `"`, `\` and `]` as RFC 5424 §6.3.3 asks of PARAM-VALUEs.
struct SdValue<'a>(&'a mut String);

impl fmt::Write for SdValue<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if matches!(c, '"' | '\\' | ']') {
                self.0.push('\\');
            }
            self.0.push(c);
        }
        Ok(())
    }
}

/// Writes one SD element's parameters.
struct Params<'a>(&'a mut String);

impl Params<'_> {
    /// A value we produce (numbers, names, addresses): still §6.3.3-escaped.
    fn add(&mut self, name: &str, value: impl fmt::Display) {
        let _ = write!(self.0, " {name}=\"");
        let _ = write!(SdValue(self.0), "{value}");
        self.0.push('"');
    }

    /// Text a peer controls: the project's escaping first, then §6.3.3's.
    fn text(&mut self, name: &str, value: &str) {
        self.add(name, Escaped::new(value, &[]));
    }

    fn peer(&mut self, peer: Option<Peer>) {
        if let Some(p) = peer {
            self.add("peer", p.addr);
            self.add("port", p.port);
        }
    }
}

/// A dump that was written, as its notice tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpNotice {
    /// Why it was taken.
    pub reason: Reason,
    /// When the trigger fired (ns since the Unix epoch).
    pub time: u64,
    /// The session it is scoped to.
    pub session: Option<SessionId>,
    /// The peer of the record that fired it, if it had one.
    pub peer: Option<Peer>,
    /// First and last sequence number of its records (in the dump's numbering).
    pub seq_range: Option<(u64, u64)>,
    /// Records in it.
    pub records: u64,
    /// Records lost (refused before the ring, or evicted while it was read out).
    pub lost: u64,
    /// Triggers the rate limit refused since the previous dump.
    pub suppressed: u32,
    /// The file it went to.
    pub file: String,
    /// Its seal (and signature), when sealing is on.
    pub seal: Option<ForwardedSeal>,
}

/// A sealed dump's seal as its notice carries it (`core/SEALING.md` section 7): the seal
/// frame's body, and the signature frame's body when the host signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForwardedSeal {
    /// The seal's epoch (also inside `seal`; said apart for readers of the collector's files).
    pub epoch: u64,
    /// The seal body, version 1 (`SEALING.md` section 2).
    pub seal: [u8; SEAL_BODY_LEN],
    /// The signature body, version 1 (`SEALING.md` section 6), if signed.
    pub signature: Option<[u8; SIGNATURE_BODY_LEN]>,
}

/// Builds RFC 5424 messages from one [`Origin`] and audit-line layout.
#[derive(Clone, Debug)]
pub struct MessageBuilder {
    origin: Origin,
    format: LineFormat,
}

impl MessageBuilder {
    /// A builder; `format` renders audit events' MSG, as the audit log does.
    pub fn new(origin: Origin, format: LineFormat) -> Self {
        MessageBuilder { origin, format }
    }

    /// Who sends.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ID host= boot= seq=`.
    fn head(&self, out: &mut String, level: Level, unix_nanos: u64, msgid: &str, seq: u64) {
        let o = &self.origin;
        let pri = u16::from(o.facility) * 8 + u16::from(severity(level));
        let _ = write!(out, "<{pri}>1 ");
        timestamp(out, unix_nanos);
        let _ = write!(
            out,
            " {} {} {} {msgid} [{}",
            o.hostname, o.app_name, o.procid, o.sd_id
        );
        let mut p = Params(out);
        p.add("host", &o.hostname);
        p.text("boot", &o.boot);
        p.add("seq", seq);
    }

    /// An audit event (a security kind) as a message; `Err` (and `out` as it was) for
    /// kinds with no audit line or a time the renderer refuses.
    pub fn audit(
        &self,
        out: &mut String,
        seq: u64,
        unix_nanos: u64,
        level: Level,
        session: Option<SessionId>,
        event: &Decoded<'_>,
    ) -> Result<(), flightrec_audit::RenderError> {
        let start = out.len();
        let kind = match event {
            Decoded::AuthFailure(_) => "auth-failure",
            Decoded::AuthSuccess(_) => "auth-success",
            Decoded::Logout(_) => "logout",
            Decoded::SessionForbidden(_) => "session-forbidden",
            Decoded::Connect(_) => "connect",
            _ => "other",
        };
        self.head(out, level, unix_nanos, kind, seq);
        let mut p = Params(out);
        if let Some(s) = session {
            p.add("session", s.0);
        }
        match event {
            Decoded::AuthFailure(e) => {
                p.text("user", e.user);
                p.text("vhost", e.host);
                p.peer(e.peer);
                p.text("mechanism", e.mechanism);
                p.text("reason", e.reason);
            }
            Decoded::AuthSuccess(e) => {
                p.text("user", e.user);
                p.text("vhost", e.host);
                p.peer(e.peer);
                p.text("mechanism", e.mechanism);
            }
            Decoded::Logout(e) => {
                p.text("user", e.user);
                p.text("vhost", e.host);
                p.peer(e.peer);
            }
            Decoded::SessionForbidden(e) => {
                p.text("user", e.user);
                p.text("vhost", e.host);
                p.text("resource", e.resource);
            }
            Decoded::Connect(e) => {
                p.text("protocol", e.protocol);
                p.peer(e.peer);
            }
            _ => {}
        }
        out.push_str("] ");
        let time = i128::from(unix_nanos);
        let rendered = self.format.render(time, &self.origin.hostname, event, out);
        if rendered.is_err() {
            out.truncate(start);
        }
        rendered
    }

    /// A trigger firing whose dump is now due: its reason, session and the firings the
    /// rate limit refused since the previous dump.
    pub fn trigger(&self, out: &mut String, seq: u64, order: &DumpOrder) {
        self.head(out, Level::Warn, order.time, "trigger", seq);
        let mut p = Params(out);
        p.add("reason", order.reason);
        if let Some(s) = order.session {
            p.add("session", s.0);
        }
        p.add("suppressed", order.suppressed);
        p.add("index", order.index);
        let _ = write!(out, "] trigger fired: {}", order.reason);
        if let Some(s) = order.session {
            let _ = write!(out, ", session {}", s.0);
        }
        let _ = write!(out, ", {} suppressed before it", order.suppressed);
    }

    /// A dump written to a file.
    pub fn dump(&self, out: &mut String, seq: u64, d: &DumpNotice) {
        self.head(out, Level::Warn, d.time, "dump", seq);
        let mut p = Params(out);
        p.add("reason", d.reason);
        if let Some(s) = d.session {
            p.add("session", s.0);
        }
        p.peer(d.peer);
        if let Some((first, last)) = d.seq_range {
            p.add("first", first);
            p.add("last", last);
        }
        p.add("records", d.records);
        p.add("lost", d.lost);
        p.add("suppressed", d.suppressed);
        p.text("file", &d.file);
        if let Some(s) = &d.seal {
            p.add("epoch", s.epoch);
            p.add("seal", hex(&s.seal));
            if let Some(sig) = &s.signature {
                p.add("sig", hex(sig));
            }
        }
        let _ = write!(
            out,
            "] dump written: {} ({}, {} records",
            Escaped::new(&d.file, &[' ']),
            d.reason,
            d.records
        );
        if let Some((first, last)) = d.seq_range {
            let _ = write!(out, " {first}..={last}");
        }
        let _ = write!(out, ", {} lost, {} suppressed)", d.lost, d.suppressed);
        if let Some(s) = &d.seal {
            let _ = write!(out, ", sealed epoch {}", s.epoch);
        }
    }
}

/// `YYYY-MM-DDThh:mm:ss.ffffffZ` (RFC 5424 allows at most 6 fraction digits).
fn timestamp(out: &mut String, unix_nanos: u64) {
    let secs = unix_nanos / 1_000_000_000;
    let micros = unix_nanos % 1_000_000_000 / 1000;
    let (y, mo, d, h, mi, s) = crate::files::civil(secs);
    let _ = write!(
        out,
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{micros:06}Z"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightrec_audit::rfc5424::{self, SyslogMessage};
    use flightrec_core::event::{AuthFailure, Connect, SessionForbidden};

    fn builder() -> MessageBuilder {
        let origin = Origin::new(10, "gw1", "flightrec", "42", DEFAULT_SD_ID, "b-1").unwrap();
        MessageBuilder::new(origin, LineFormat::default())
    }

    fn peer() -> Option<Peer> {
        Some(Peer::from(
            "192.0.2.7:40000".parse::<std::net::SocketAddr>().unwrap(),
        ))
    }

    fn parse(text: &str) -> SyslogMessage {
        rfc5424::parse(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn audit_event_is_rfc5424_with_typed_fields() {
        let mut out = String::new();
        let e = Decoded::AuthFailure(AuthFailure {
            user: "alice",
            host: "example.org",
            peer: peer(),
            mechanism: "PLAIN",
            reason: "bad password",
        });
        builder()
            .audit(
                &mut out,
                17,
                1_270_228_897_123_456_789,
                Level::Warn,
                Some(SessionId(3)),
                &e,
            )
            .unwrap();
        assert_eq!(
            out,
            "<84>1 2010-04-02T17:21:37.123456Z gw1 flightrec 42 auth-failure \
             [flightrec@32473 host=\"gw1\" boot=\"b-1\" seq=\"17\" session=\"3\" user=\"alice\" \
             vhost=\"example.org\" peer=\"192.0.2.7\" port=\"40000\" mechanism=\"PLAIN\" \
             reason=\"bad password\"] 2010-04-02 17:21:37 Failed PLAIN authentication for \
             alice@example.org from 192.0.2.7 port 40000: bad\\x20password"
        );
        let m = parse(&out);
        assert_eq!(m.pri, 84);
        assert_eq!(m.msgid.as_deref(), Some("auth-failure"));
        let sd = m.element(DEFAULT_SD_ID).unwrap();
        assert_eq!(sd.param("seq"), Some("17"));
        assert_eq!(sd.param("reason"), Some("bad password"));
    }

    #[test]
    fn hostile_text_cannot_leave_its_value_or_its_line() {
        let hostile = "x\"] [evil@1 a=\"b\"]\\\n<13>1 - - - - - - forged\u{202e}\u{7}";
        let mut out = String::new();
        let e = Decoded::SessionForbidden(SessionForbidden {
            user: hostile,
            host: "h]",
            resource: "r\\",
        });
        builder()
            .audit(&mut out, 1, 1_000_000_000, Level::Warn, None, &e)
            .unwrap();
        assert!(!out.contains(['\n', '\r', '\u{7}', '\u{202e}']), "{out}");
        let m = parse(&out);
        // One element only; the values come back as the project's escaping wrote them.
        assert_eq!(m.sd.len(), 1, "{out}");
        let sd = m.element(DEFAULT_SD_ID).unwrap();
        let mut user = String::new();
        flightrec_core::text::unescape(sd.param("user").unwrap(), &mut user).unwrap();
        assert_eq!(user, hostile);
        assert_eq!(sd.param("vhost"), Some("h]"));
        assert_eq!(sd.param("resource"), Some("r\\\\"));
    }

    #[test]
    fn notices_carry_their_fields() {
        let b = builder();
        let mut out = String::new();
        b.dump(
            &mut out,
            5,
            &DumpNotice {
                reason: Reason::FailedLogin,
                time: 1_000_000_000,
                session: Some(SessionId(9)),
                peer: peer(),
                seq_range: Some((0, 41)),
                records: 42,
                lost: 1,
                suppressed: 2,
                file: "dumps/d 1\n.flr".into(),
                seal: None,
            },
        );
        let m = parse(&out);
        assert_eq!(m.msgid.as_deref(), Some("dump"));
        let sd = m.element(DEFAULT_SD_ID).unwrap();
        for (k, v) in [
            ("reason", "failed login"),
            ("session", "9"),
            ("peer", "192.0.2.7"),
            ("first", "0"),
            ("last", "41"),
            ("records", "42"),
            ("lost", "1"),
            ("suppressed", "2"),
            ("file", "dumps/d 1\\x0a.flr"),
        ] {
            assert_eq!(sd.param(k), Some(v), "{k} in {out}");
        }
        assert!(m.msg.contains("dumps/d\\x201\\x0a.flr"), "{out}");

        let mut out = String::new();
        let order = DumpOrder {
            reason: Reason::Threshold(flightrec_core::Kind::AUTH_FAILURE),
            time: 2_000_000_000,
            seq: None,
            session: None,
            suppressed: 4,
            index: 1,
        };
        b.trigger(&mut out, 6, &order);
        let m = parse(&out);
        assert_eq!(m.msgid.as_deref(), Some("trigger"));
        assert_eq!(
            m.element(DEFAULT_SD_ID).unwrap().param("reason"),
            Some("threshold of auth-failure")
        );
    }

    #[test]
    fn connect_without_account() {
        let mut out = String::new();
        let e = Decoded::Connect(Connect {
            protocol: "xmpp",
            peer: peer(),
        });
        builder()
            .audit(&mut out, 0, 0, Level::Info, None, &e)
            .unwrap();
        assert!(
            out.starts_with("<86>1 1970-01-01T00:00:00.000000Z gw1 "),
            "{out}"
        );
        parse(&out);
    }

    #[test]
    fn header_fields_are_checked() {
        let bad = |f: u8, h: &str, a: &str, p: &str, sd: &str| {
            Origin::new(f, h, a, p, sd, "b").unwrap_err().field
        };
        assert_eq!(bad(24, "h", "a", "1", DEFAULT_SD_ID), "facility");
        assert_eq!(bad(1, "", "a", "1", DEFAULT_SD_ID), "hostname");
        assert_eq!(bad(1, "h st", "a", "1", DEFAULT_SD_ID), "hostname");
        assert_eq!(
            bad(1, &"h".repeat(256), "a", "1", DEFAULT_SD_ID),
            "hostname"
        );
        assert_eq!(bad(1, "h", &"a".repeat(49), "1", DEFAULT_SD_ID), "app_name");
        assert_eq!(bad(1, "h", "a\u{e9}", "1", DEFAULT_SD_ID), "app_name");
        assert_eq!(bad(1, "h", "a", &"1".repeat(129), DEFAULT_SD_ID), "procid");
        for sd in [
            "origin",
            "x@",
            "@1",
            "a=b@1",
            "a@1x",
            "a\"@1",
            &format!("{}@1", "a".repeat(31)),
        ] {
            assert_eq!(bad(1, "h", "a", "1", sd), "sd_id", "{sd}");
        }
        for sd in ["exampleSDID@32473", "a@1.2.3", DEFAULT_SD_ID] {
            check_sd_id(sd).unwrap();
        }
    }
}
