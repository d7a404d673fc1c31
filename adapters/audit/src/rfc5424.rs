//! Reading RFC 5424 syslog lines, as a collector writes what flightrec forwarded
//! (rsyslog's `RSYSLOG_SyslogProtocol23Format`), and checking their sequence numbers.
//!
//! [`parse`] follows the RFC's ABNF (§6):
//!
//! ```text
//! SYSLOG-MSG      = HEADER SP STRUCTURED-DATA [SP MSG]
//! HEADER          = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID
//! PRI             = "<" PRIVAL ">"             ; PRIVAL 0..191, 1*3DIGIT
//! VERSION         = NONZERO-DIGIT 0*2DIGIT
//! TIMESTAMP       = NILVALUE / FULL-DATE "T" FULL-TIME   ; RFC 3339, 1..6 fraction digits
//! HOSTNAME        = NILVALUE / 1*255PRINTUSASCII
//! APP-NAME        = NILVALUE / 1*48PRINTUSASCII
//! PROCID          = NILVALUE / 1*128PRINTUSASCII
//! MSGID           = NILVALUE / 1*32PRINTUSASCII
//! STRUCTURED-DATA = NILVALUE / 1*SD-ELEMENT
//! SD-ELEMENT      = "[" SD-ID *(SP SD-PARAM) "]"
//! SD-PARAM        = PARAM-NAME "=" %d34 PARAM-VALUE %d34  ; '"' '\' ']' escaped with '\'
//! SD-NAME         = 1*32PRINTUSASCII except '=', SP, ']', %d34
//! MSG             = MSG-ANY / MSG-UTF8                     ; a leading BOM is dropped
//! ```
//!
//! [`SeqCheck`] is `flightrec audit --gaps`: per (host, boot), every sequence number
//! missing, seen twice, or seen after a later one.

use std::collections::BTreeMap;
use std::fmt;

/// Why a line is not an RFC 5424 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyslogError {
    /// What was wrong.
    pub reason: &'static str,
}

impl fmt::Display for SyslogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for SyslogError {}

const fn bad(reason: &'static str) -> SyslogError {
    SyslogError { reason }
}

/// One structured-data element, its values unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdElement {
    /// Its SD-ID.
    pub id: String,
    /// Its parameters, in order (a name may repeat, §6.3.3).
    pub params: Vec<(String, String)>,
}

impl SdElement {
    /// The first value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed RFC 5424 message. `None` stands for the NILVALUE `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogMessage {
    /// Facility * 8 + severity.
    pub pri: u8,
    /// Protocol version (1).
    pub version: u16,
    /// The timestamp as written (RFC 3339).
    pub timestamp: Option<String>,
    /// HOSTNAME.
    pub hostname: Option<String>,
    /// APP-NAME.
    pub app_name: Option<String>,
    /// PROCID.
    pub procid: Option<String>,
    /// MSGID.
    pub msgid: Option<String>,
    /// Structured data.
    pub sd: Vec<SdElement>,
    /// MSG, without a leading BOM (empty when there is none).
    pub msg: String,
}

impl SyslogMessage {
    /// The first element with this SD-ID.
    pub fn element(&self, id: &str) -> Option<&SdElement> {
        self.sd.iter().find(|e| e.id == id)
    }
}

/// Splits off the next space-separated header field.
fn field<'a>(rest: &mut &'a str) -> Result<&'a str, SyslogError> {
    let (f, r) = rest.split_once(' ').ok_or(bad("header ends early"))?;
    *rest = r;
    Ok(f)
}

/// NILVALUE or `1*max` PRINTUSASCII.
fn header_field(f: &str, max: usize, what: &'static str) -> Result<Option<String>, SyslogError> {
    if f == "-" {
        return Ok(None);
    }
    if f.is_empty() || f.len() > max || !f.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(bad(what));
    }
    Ok(Some(f.to_owned()))
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// FULL-DATE "T" FULL-TIME (RFC 5424 §6.2.3: RFC 3339 with an upper-case T and Z, at
/// most 6 fraction digits).
fn check_timestamp(t: &str) -> Result<(), SyslogError> {
    let e = bad("bad TIMESTAMP");
    let (date, time) = t.split_once('T').ok_or(e)?;
    let mut d = date.split('-');
    let ok_date = matches!((d.next(), d.next(), d.next(), d.next()),
        (Some(y), Some(m), Some(dd), None) if digits(y, 4) && digits(m, 2) && digits(dd, 2));
    let (clock, offset) = match time.find(['Z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => return Err(e),
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (clock, None),
    };
    let mut c = hms.split(':');
    let ok_clock = matches!((c.next(), c.next(), c.next(), c.next()),
        (Some(h), Some(m), Some(s), None) if digits(h, 2) && digits(m, 2) && digits(s, 2));
    let ok_frac = frac.is_none_or(|f| (1..=6).contains(&f.len()) && digits(f, f.len()));
    let ok_offset = offset == "Z"
        || offset
            .get(1..)
            .and_then(|o| o.split_once(':'))
            .is_some_and(|(h, m)| digits(h, 2) && digits(m, 2));
    if ok_date && ok_clock && ok_frac && ok_offset {
        Ok(())
    } else {
        Err(e)
    }
}

fn sd_name(s: &str) -> Result<String, SyslogError> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(bad("bad SD-NAME"))
    }
}

/// Parses STRUCTURED-DATA at the start of `s`; returns the elements and the rest.
fn structured_data(s: &str) -> Result<(Vec<SdElement>, &str), SyslogError> {
    if let Some(rest) = s.strip_prefix('-') {
        return Ok((Vec::new(), rest));
    }
    let mut elements = Vec::new();
    let mut rest = s;
    while let Some(body) = rest.strip_prefix('[') {
        let id_end = body.find([' ', ']']).ok_or(bad("SD-ELEMENT not closed"))?;
        let (id, mut after) = body.split_at(id_end);
        let mut element = SdElement {
            id: sd_name(id)?,
            params: Vec::new(),
        };
        loop {
            if let Some(r) = after.strip_prefix(']') {
                rest = r;
                break;
            }
            let p = after
                .strip_prefix(' ')
                .ok_or(bad("SD-PARAM not after a space"))?;
            let (name, v) = p.split_once("=\"").ok_or(bad("SD-PARAM without =\""))?;
            let name = sd_name(name)?;
            let mut value = String::new();
            let mut chars = v.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err(bad("PARAM-VALUE not closed")),
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c @ ('"' | '\\' | ']'))) => value.push(c),
                        // §6.3.3: a backslash before anything else is kept as it is.
                        Some((_, c)) => {
                            value.push('\\');
                            value.push(c);
                        }
                        None => return Err(bad("PARAM-VALUE not closed")),
                    },
                    // An unescaped ']' is not allowed inside a value.
                    Some((_, ']')) => return Err(bad("unescaped ] in PARAM-VALUE")),
                    Some((_, c)) => value.push(c),
                }
            };
            element.params.push((name, value));
            after = v.get(end + 1..).unwrap_or("");
        }
        elements.push(element);
    }
    if elements.is_empty() {
        return Err(bad("STRUCTURED-DATA is neither - nor [...]"));
    }
    Ok((elements, rest))
}

/// Parses one line (without its newline) as an RFC 5424 message.
pub fn parse(line: &str) -> Result<SyslogMessage, SyslogError> {
    let rest = line.strip_prefix('<').ok_or(bad("no <PRI>"))?;
    let (prival, mut rest) = rest.split_once('>').ok_or(bad("no <PRI>"))?;
    if prival.is_empty() || prival.len() > 3 || !prival.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("bad PRI"));
    }
    let pri = prival
        .parse::<u8>()
        .ok()
        .filter(|p| *p <= 191)
        .ok_or(bad("PRI above 191"))?;
    let version = field(&mut rest)?;
    if version.is_empty()
        || version.len() > 3
        || version.starts_with('0')
        || !version.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad("bad VERSION"));
    }
    let version = version.parse().map_err(|_| bad("bad VERSION"))?;
    let timestamp = field(&mut rest)?;
    let timestamp = if timestamp == "-" {
        None
    } else {
        check_timestamp(timestamp)?;
        Some(timestamp.to_owned())
    };
    let hostname = header_field(field(&mut rest)?, 255, "bad HOSTNAME")?;
    let app_name = header_field(field(&mut rest)?, 48, "bad APP-NAME")?;
    let procid = header_field(field(&mut rest)?, 128, "bad PROCID")?;
    let msgid_end = rest.find(' ').ok_or(bad("header ends early"))?;
    let (msgid, rest) = rest.split_at(msgid_end);
    let msgid = header_field(msgid, 32, "bad MSGID")?;
    let (sd, rest) = structured_data(rest.get(1..).unwrap_or(""))?;
    let msg = if rest.is_empty() {
        ""
    } else {
        rest.strip_prefix(' ')
            .ok_or(bad("no space between STRUCTURED-DATA and MSG"))?
    };
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    Ok(SyslogMessage {
        pri,
        version,
        timestamp,
        hostname,
        app_name,
        procid,
        msgid,
        sd,
        msg: msg.to_owned(),
    })
}

/// The SD-ID flightrec forwards with unless configured otherwise (RFC 5612's documentation
/// enterprise number).
pub const DEFAULT_SD_ID: &str = "flightrec@32473";

/// A line a flightrec gateway forwarded (element `sd_id` with `host`, `boot`, `seq`): notes
/// its number in `check` and returns its MSG if it is an audit event, `None` for a notice
/// (`trigger`, `dump`). An error for a line that is not RFC 5424 or not forwarded by us.
pub fn forwarded(
    line: &str,
    sd_id: &str,
    check: &mut SeqCheck,
) -> Result<Option<String>, SyslogError> {
    let m = parse(line)?;
    if !check.add_message(&m, sd_id) {
        return Err(bad("RFC 5424 line without flightrec's host, boot and seq"));
    }
    Ok(match m.msgid.as_deref() {
        Some("trigger" | "dump") => None,
        _ => Some(m.msg),
    })
}

/// Writes `flightrec audit --gaps`' report: one line per (host, boot), then one per
/// problem. Returns whether every stream is clean.
pub fn write_gaps(out: &mut dyn std::io::Write, check: &SeqCheck) -> std::io::Result<bool> {
    use flightrec_core::text::Escaped;
    let mut clean = true;
    let reports = check.reports();
    for ((host, boot), r) in &reports {
        let (first, last) = r.range;
        writeln!(
            out,
            "{} boot {}: seq {first}..={last}, {} records: {}",
            Escaped::new(host, &[' ']),
            Escaped::new(boot, &[' ']),
            r.seen,
            if r.is_clean() {
                "complete"
            } else {
                "NOT complete"
            }
        )?;
        clean &= r.is_clean();
        for (a, b) in &r.missing {
            if a == b {
                writeln!(out, "  missing {a}")?;
            } else {
                writeln!(out, "  missing {a}..={b} ({})", b - a + 1)?;
            }
        }
        for (seq, extra) in &r.duplicated {
            writeln!(out, "  duplicated {seq} ({extra} extra)")?;
        }
        for (seq, after) in &r.out_of_order {
            writeln!(out, "  out of order {seq} (after {after})")?;
        }
    }
    writeln!(out, "{} (host, boot) streams checked", reports.len())?;
    Ok(clean)
}

/// What is wrong with one (host, boot)'s sequence numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeqReport {
    /// Lowest and highest number seen.
    pub range: (u64, u64),
    /// Records seen.
    pub seen: u64,
    /// Missing numbers, as inclusive ranges.
    pub missing: Vec<(u64, u64)>,
    /// Numbers seen more than once, with how many extra times.
    pub duplicated: Vec<(u64, u64)>,
    /// Numbers that came after a higher one (in reading order), with the one before them.
    pub out_of_order: Vec<(u64, u64)>,
}

impl SeqReport {
    /// Whether nothing is missing, duplicated or out of order.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.duplicated.is_empty() && self.out_of_order.is_empty()
    }
}

/// Collects (host, boot, seq) triples in reading order and reports per (host, boot).
///
/// Memory: the numbers seen per (host, boot) are kept as sorted runs, so an in-order
/// stream costs one run however long it is.
#[derive(Clone, Debug, Default)]
pub struct SeqCheck {
    streams: BTreeMap<(String, String), Stream>,
}

#[derive(Clone, Debug, Default)]
struct Stream {
    /// Disjoint runs `start -> end` (inclusive) of numbers seen.
    runs: BTreeMap<u64, u64>,
    last: Option<u64>,
    seen: u64,
    duplicated: BTreeMap<u64, u64>,
    out_of_order: Vec<(u64, u64)>,
}

impl Stream {
    fn add(&mut self, seq: u64) {
        self.seen += 1;
        if let Some(last) = self.last {
            if seq < last {
                self.out_of_order.push((seq, last));
            }
        }
        self.last = Some(seq);
        // The run at or before seq.
        let before = self.runs.range(..=seq).next_back().map(|(s, e)| (*s, *e));
        if before.is_some_and(|(_, e)| e >= seq) {
            *self.duplicated.entry(seq).or_default() += 1;
            return;
        }
        let start = before
            .filter(|(_, e)| e.checked_add(1) == Some(seq))
            .map_or(seq, |(s, _)| s);
        let mut end = seq;
        if let Some(next_end) = seq.checked_add(1).and_then(|n| self.runs.remove(&n)) {
            end = next_end;
        }
        self.runs.insert(start, end);
    }

    fn report(&self) -> SeqReport {
        let first = self.runs.keys().next().copied().unwrap_or(0);
        let last = self.runs.values().next_back().copied().unwrap_or(0);
        let mut missing = Vec::new();
        let mut prev_end: Option<u64> = None;
        for (&s, &e) in &self.runs {
            if let Some(p) = prev_end {
                missing.push((p + 1, s - 1));
            }
            prev_end = Some(e);
        }
        SeqReport {
            range: (first, last),
            seen: self.seen,
            missing,
            duplicated: self.duplicated.iter().map(|(k, v)| (*k, *v)).collect(),
            out_of_order: self.out_of_order.clone(),
        }
    }
}

impl SeqCheck {
    /// An empty check.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes one record.
    pub fn add(&mut self, host: &str, boot: &str, seq: u64) {
        self.streams
            .entry((host.to_owned(), boot.to_owned()))
            .or_default()
            .add(seq);
    }

    /// Notes the record in `m` if its element `sd_id` has `host`, `boot` and `seq`; false
    /// if it has not.
    pub fn add_message(&mut self, m: &SyslogMessage, sd_id: &str) -> bool {
        let Some(e) = m.element(sd_id) else {
            return false;
        };
        match (e.param("host"), e.param("boot"), e.param("seq")) {
            (Some(h), Some(b), Some(s)) => match s.parse::<u64>() {
                Ok(seq) if s == seq.to_string() => {
                    self.add(h, b, seq);
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// One report per (host, boot), in name order.
    pub fn reports(&self) -> Vec<((String, String), SeqReport)> {
        self.streams
            .iter()
            .map(|(k, s)| (k.clone(), s.report()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of RFC 5424 §6.5.
    #[test]
    fn rfc_examples() {
        let m = parse("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed for lonvick on /dev/pts/8").unwrap();
        assert_eq!(m.pri, 34);
        assert_eq!(m.hostname.as_deref(), Some("mymachine.example.com"));
        assert_eq!(m.procid, None);
        assert_eq!(m.msgid.as_deref(), Some("ID47"));
        assert!(m.sd.is_empty());
        assert_eq!(m.msg, "'su root' failed for lonvick on /dev/pts/8");

        let m = parse("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.").unwrap();
        assert_eq!(m.pri, 165);
        assert_eq!(m.msg, "%% It's time to make the do-nuts.");

        let m = parse("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \u{feff}An application event log entry...").unwrap();
        let e = m.element("exampleSDID@32473").unwrap();
        assert_eq!(e.param("eventSource"), Some("Application"));
        assert_eq!(m.msg, "An application event log entry...");

        let m = parse("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]").unwrap();
        assert_eq!(m.sd.len(), 2);
        assert_eq!(
            m.element("examplePriority@32473").unwrap().param("class"),
            Some("high")
        );
        assert_eq!(m.msg, "");
    }

    #[test]
    fn sd_value_escapes() {
        let m = parse(r#"<1>1 - - - - - [a@1 v="x\"y\\z\]w\n"]"#).unwrap();
        assert_eq!(m.sd[0].param("v"), Some("x\"y\\z]w\\n"));
    }

    #[test]
    fn refused() {
        for line in [
            "",
            "<192>1 - - - - - -",
            "<1>0 - - - - - -",
            "<1>1 2003-10-11 - - - - -",
            "<1>1 2003-10-11T22:14:15.0000001Z - - - - -",
            "<1>1 - h\u{e9} - - - -",
            "<1>1 - - - - - [a@1 v=\"x]\"]",
            "<1>1 - - - - - [a@1 v=\"x]",
            "<1>1 - - - - - [a b=\"c\"]x",
            "<1>1 - - - - - nil",
            &format!("<1>1 - - - - {} -", "m".repeat(33)),
        ] {
            assert!(parse(line).is_err(), "{line:?}");
        }
    }

    #[test]
    fn gaps_duplicates_and_order() {
        let mut c = SeqCheck::new();
        for s in [0, 1, 2, 5, 6, 6, 3, 9] {
            c.add("gw1", "b", s);
        }
        for s in 0..1000 {
            c.add("gw2", "b", s);
        }
        let r = c.reports();
        assert_eq!(r.len(), 2);
        let gw1 = &r[0].1;
        assert_eq!(gw1.range, (0, 9));
        assert_eq!(gw1.missing, [(4, 4), (7, 8)]);
        assert_eq!(gw1.duplicated, [(6, 1)]);
        assert_eq!(gw1.out_of_order, [(3, 6)]);
        assert!(r[1].1.is_clean());
        assert_eq!(r[1].1.seen, 1000);
    }
}
