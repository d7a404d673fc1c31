//! Fixed-offset time zones for audit-line timestamps.

use core::fmt;
use core::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset as _, TimeZone as _};
use serde::Deserialize;

use crate::RenderError;

/// A fixed offset from UTC, written `UTC`, `Z`, `+02:00`, `-0530` or `+02`.
///
/// Fixed offsets only: an audit line must mean the same instant whatever the reader's
/// zone database says, and a daylight-saving switch would make local times ambiguous.
///
/// ```
/// use flightrec_audit::UtcOffset;
/// assert_eq!("+02:00".parse::<UtcOffset>().unwrap().seconds(), 7200);
/// assert_eq!("UTC".parse::<UtcOffset>().unwrap(), UtcOffset::UTC);
/// assert!("+24:00".parse::<UtcOffset>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(try_from = "String")]
pub struct UtcOffset {
    seconds: i32,
}

impl UtcOffset {
    /// UTC itself.
    pub const UTC: UtcOffset = UtcOffset { seconds: 0 };

    /// `seconds` east of UTC, if less than a day.
    pub const fn from_seconds(seconds: i32) -> Option<UtcOffset> {
        if seconds > -86_400 && seconds < 86_400 {
            Some(UtcOffset { seconds })
        } else {
            None
        }
    }

    /// Seconds east of UTC.
    pub const fn seconds(self) -> i32 {
        self.seconds
    }

    pub(crate) fn fixed(self) -> FixedOffset {
        // In range by construction; UTC is only the no-panic fallback.
        FixedOffset::east_opt(self.seconds).unwrap_or_else(|| chrono::Utc.fix())
    }

    /// The local time in this zone of `unix_secs`, if chrono can represent it.
    pub(crate) fn local(self, unix_secs: i64) -> Result<DateTime<FixedOffset>, RenderError> {
        DateTime::from_timestamp(unix_secs, 0)
            .map(|t| t.with_timezone(&self.fixed()))
            .ok_or(RenderError::TimeOutOfRange)
    }

    /// Unix seconds of a local time in this zone.
    pub(crate) fn to_unix(self, local: &NaiveDateTime) -> Option<i64> {
        self.fixed()
            .from_local_datetime(local)
            .single()
            .map(|t| t.timestamp())
    }
}

impl fmt::Display for UtcOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.seconds == 0 {
            return f.write_str("UTC");
        }
        let sign = if self.seconds < 0 { '-' } else { '+' };
        let abs = self.seconds.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60)?;
        if abs % 60 != 0 {
            write!(f, ":{:02}", abs % 60)?;
        }
        Ok(())
    }
}

/// Why a time zone did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadOffset(String);

impl fmt::Display for BadOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad time zone \"{}\": expected UTC, Z or a fixed offset like +02:00, -0530, +02",
            flightrec_core::text::Escaped::new(&self.0, &['"'])
        )
    }
}

impl std::error::Error for BadOffset {}

impl FromStr for UtcOffset {
    type Err = BadOffset;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadOffset(s.to_owned());
        if s.eq_ignore_ascii_case("utc") || s == "Z" || s == "z" {
            return Ok(UtcOffset::UTC);
        }
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+') => (1, s.get(1..).ok_or_else(bad)?),
            Some(b'-') => (-1, s.get(1..).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        let digits: String = rest.chars().filter(|&c| c != ':').collect();
        let colons = rest.len() - digits.len();
        if !digits.bytes().all(|b| b.is_ascii_digit()) || colons > 1 {
            return Err(bad());
        }
        let (h, m) = match digits.len() {
            2 if colons == 0 => (digits.as_str(), "0"),
            4 => (
                digits.get(..2).ok_or_else(bad)?,
                digits.get(2..).ok_or_else(bad)?,
            ),
            _ => return Err(bad()),
        };
        let h: i32 = h.parse().map_err(|_| bad())?;
        let m: i32 = m.parse().map_err(|_| bad())?;
        if h > 23 || m > 59 {
            return Err(bad());
        }
        UtcOffset::from_seconds(sign * (h * 3600 + m * 60)).ok_or_else(bad)
    }
}

impl TryFrom<String> for UtcOffset {
    type Error = BadOffset;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_and_display() {
        for (text, secs, shown) in [
            ("UTC", 0, "UTC"),
            ("z", 0, "UTC"),
            ("+02:00", 7200, "+02:00"),
            ("-0530", -19800, "-05:30"),
            ("+02", 7200, "+02:00"),
            ("-00:30", -1800, "-00:30"),
        ] {
            let o: UtcOffset = text.parse().unwrap();
            assert_eq!(o.seconds(), secs, "{text}");
            assert_eq!(o.to_string(), shown);
        }
        for bad in [
            "",
            "+",
            "+2",
            "+24:00",
            "+12:60",
            "02:00",
            "+1:2:3",
            "+ab:cd",
            "Europe/Paris",
        ] {
            assert!(bad.parse::<UtcOffset>().is_err(), "{bad}");
        }
    }
}
