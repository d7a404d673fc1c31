//! Ticks to text and back: RFC 3339 UTC for Unix clocks, seconds since boot for boot clocks,
//! raw ticks when the rate is unknown.

use std::fmt;

use flightrec_core::{ClockInfo, TimeBase};

const NANOS: u128 = 1_000_000_000;

/// Nanoseconds for `ticks` at `rate_hz` (`None` if the rate is 0).
pub fn ticks_to_nanos(ticks: u64, rate_hz: u64) -> Option<u128> {
    if rate_hz == 0 {
        return None;
    }
    Some(u128::from(ticks) * NANOS / u128::from(rate_hz))
}

/// Digits of fraction worth showing for a tick rate.
fn precision(rate_hz: u64) -> usize {
    match rate_hz {
        0..=1 => 0,
        2..=1_000 => 3,
        1_001..=1_000_000 => 6,
        _ => 9,
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Displays a tick count as its clock says: `2026-11-23T18:00:00.123Z` (Unix),
/// `+12.345s` (since boot), `tick:12345` (rate unknown), `?+12.345s` (unknown base).
#[derive(Clone, Copy, Debug)]
pub struct Time {
    /// The ticks.
    pub ticks: u64,
    /// Their clock.
    pub clock: Option<ClockInfo>,
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Fast path for the common case (boot clock, milliseconds or finer): u64 arithmetic.
        if let Some(ClockInfo {
            rate_hz: rate @ 1..,
            base: TimeBase::Boot,
        }) = self.clock
        {
            let (secs, frac) = (self.ticks / rate, self.ticks % rate);
            if let Some(scaled) = frac.checked_mul(1000) {
                return write!(f, "+{secs}.{:03}s", scaled / rate);
            }
        }
        let Some(clock) = self.clock else {
            return write!(f, "tick:{}", self.ticks);
        };
        let Some(nanos) = ticks_to_nanos(self.ticks, clock.rate_hz) else {
            return write!(f, "tick:{}", self.ticks);
        };
        let secs = nanos / NANOS;
        let frac = nanos % NANOS;
        match clock.base {
            TimeBase::Unix => {
                let days = (secs / 86_400) as i64; // u64 ticks: at most 2.2e14 days
                let rem = (secs % 86_400) as u32;
                let (y, mo, d) = civil_from_days(days);
                write!(
                    f,
                    "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
                    rem / 3600,
                    rem / 60 % 60,
                    rem % 60
                )?;
                fraction(f, frac, precision(clock.rate_hz))?;
                f.write_str("Z")
            }
            TimeBase::Boot => write!(f, "+{secs}.{:03}s", frac / 1_000_000),
            TimeBase::Unknown(_) => {
                write!(f, "?+{secs}.{:03}s", frac / 1_000_000)
            }
        }
    }
}

fn fraction(f: &mut fmt::Formatter<'_>, frac_nanos: u128, digits: usize) -> fmt::Result {
    if digits == 0 {
        return Ok(());
    }
    let scaled = frac_nanos / 10u128.pow(9 - digits as u32);
    write!(f, ".{scaled:0digits$}")
}

/// Writes [`Time`]s into a line buffer exactly as its `Display` does, for the hot path of
/// `decode`: integer arithmetic on `u64` where it is exact, digits written by hand, and the
/// date of a Unix time (the second of a boot time) kept from one record to the next:
/// records come in time order, so the calendar is worked out about once a day of records.
#[derive(Default)]
pub(crate) struct TimeText {
    /// The day (since 1970-01-01) whose `YYYY-MM-DDT` is in `date`.
    day: Option<u64>,
    date: Vec<u8>,
    /// The second (and whether of a boot clock) whose `+SECS.` or `?+SECS.` is in `since`.
    second: Option<(u64, bool)>,
    since: Vec<u8>,
}

/// The nanoseconds of `frac` ticks (`frac < rate`, `rate > 0`) within their second:
/// `floor(frac * 10^9 / rate)`, as [`ticks_to_nanos`] gives it modulo a second.
fn frac_nanos(frac: u64, rate: u64) -> u64 {
    const NANOS64: u64 = NANOS as u64;
    if rate == NANOS64 {
        frac
    } else if let Some(n) = frac.checked_mul(NANOS64) {
        n / rate
    } else {
        (u128::from(frac) * NANOS / u128::from(rate)) as u64 // below 10^9: frac < rate
    }
}

impl TimeText {
    /// Appends `Time { ticks, clock }` as it displays.
    pub(crate) fn push(&mut self, out: &mut Vec<u8>, ticks: u64, clock: Option<ClockInfo>) {
        use crate::render::push::{push_2, push_u64, push_u64_padded, POW10};
        let Some(ClockInfo {
            rate_hz: rate @ 1..,
            base,
        }) = clock
        else {
            out.extend_from_slice(b"tick:");
            push_u64(out, ticks);
            return;
        };
        // Whole seconds and their fraction: what `ticks_to_nanos` splits, without `u128`.
        let (secs, frac) = (ticks / rate, frac_nanos(ticks % rate, rate));
        match base {
            TimeBase::Unix => {
                let day = secs / 86_400;
                if self.day != Some(day) {
                    let (y, mo, d) = civil_from_days(day as i64); // at most 2.2e14 days
                    self.date.clear();
                    let _ = std::io::Write::write_fmt(
                        &mut self.date,
                        format_args!("{y:04}-{mo:02}-{d:02}T"),
                    );
                    self.day = Some(day);
                }
                out.extend_from_slice(&self.date);
                let rem = secs % 86_400;
                push_2(out, rem / 3600);
                out.push(b':');
                push_2(out, rem / 60 % 60);
                out.push(b':');
                push_2(out, rem % 60);
                let digits = precision(rate);
                if digits > 0 {
                    out.push(b'.');
                    let scale = POW10.get(9 - digits).copied().unwrap_or(1);
                    push_u64_padded(out, frac / scale, digits);
                }
                out.push(b'Z');
            }
            TimeBase::Boot | TimeBase::Unknown(_) => {
                let boot = base == TimeBase::Boot;
                if self.second != Some((secs, boot)) {
                    self.since.clear();
                    self.since
                        .extend_from_slice(if boot { b"+" } else { b"?+" });
                    push_u64(&mut self.since, secs);
                    self.since.push(b'.');
                    self.second = Some((secs, boot));
                }
                out.extend_from_slice(&self.since);
                push_u64_padded(out, frac / 1_000_000, 3);
                out.push(b's');
            }
        }
    }
}

/// A point in time given on the command line, for `--since` / `--until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeBound {
    /// An absolute time: nanoseconds since the Unix epoch (may be negative). Compared with
    /// records of Unix clocks.
    Unix(i128),
    /// Nanoseconds since boot. Compared with records of boot clocks.
    SinceBoot(u128),
    /// Raw ticks, compared with any record.
    Ticks(u64),
}

impl TimeBound {
    /// Parses `2026-11-23T18:00:00Z` (RFC 3339, any offset, optional fraction),
    /// `12.5` or `12.5s` (seconds since boot) or `tick:1234` (raw ticks).
    pub fn parse(s: &str) -> Result<TimeBound, String> {
        let s = s.trim();
        if let Some(t) = s.strip_prefix("tick:") {
            return t
                .parse()
                .map(TimeBound::Ticks)
                .map_err(|_| format!("bad tick count {t:?}"));
        }
        if s.contains('T') || s.contains('t') {
            return parse_rfc3339(s)
                .map(TimeBound::Unix)
                .ok_or_else(|| format!("bad RFC 3339 time {s:?} (e.g. 2026-11-23T18:00:00Z)"));
        }
        let num = s.strip_suffix('s').unwrap_or(s);
        parse_seconds(num).map(TimeBound::SinceBoot).ok_or_else(|| {
            format!("bad time {s:?}: give an RFC 3339 time, seconds since boot (12.5s) or tick:N")
        })
    }

    /// Whether a record at `ticks` of `clock` is at or after this bound; `None` if they
    /// cannot be compared (a Unix time against a boot clock, ...).
    pub fn cmp_ticks(&self, ticks: u64, clock: Option<ClockInfo>) -> Option<std::cmp::Ordering> {
        match *self {
            TimeBound::Ticks(t) => Some(ticks.cmp(&t)),
            TimeBound::Unix(n) => {
                let c = clock.filter(|c| c.base == TimeBase::Unix)?;
                let nanos = i128::try_from(ticks_to_nanos(ticks, c.rate_hz)?).ok()?;
                Some(nanos.cmp(&n))
            }
            TimeBound::SinceBoot(n) => {
                let c = clock.filter(|c| c.base == TimeBase::Boot)?;
                Some(ticks_to_nanos(ticks, c.rate_hz)?.cmp(&n))
            }
        }
    }
}

fn parse_seconds(s: &str) -> Option<u128> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) || frac.len() > 9 {
        return None;
    }
    let i: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut f: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..9 {
        f *= 10;
    }
    i.checked_mul(NANOS)?.checked_add(f)
}

fn parse_rfc3339(s: &str) -> Option<i128> {
    let num = |t: &str| -> Option<i64> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (date, time) = s.split_once(['T', 't'])?;
    let mut d = date.splitn(3, '-');
    let (y, mo, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset_secs) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0i64)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (c, off) = time.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off.get(1..)?.split_once(':')?;
        (c, sign * (num(oh)? * 3600 + num(om)? * 60))
    };
    let mut t = clock.splitn(3, ':');
    let (h, mi, sec) = (num(t.next()?)?, num(t.next()?)?, t.next()?);
    let sec_nanos = parse_seconds(sec)?;
    if h > 23 || mi > 59 || sec_nanos >= 61 * NANOS {
        return None;
    }
    let days = days_from_civil(y, mo as u32, day as u32);
    let secs = i128::from(days) * 86_400 + i128::from(h * 3600 + mi * 60) - i128::from(offset_secs);
    Some(secs * NANOS as i128 + sec_nanos as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(rate: u64) -> Option<ClockInfo> {
        Some(ClockInfo {
            rate_hz: rate,
            base: TimeBase::Unix,
        })
    }

    #[test]
    fn formats() {
        let t = |ticks, clock| Time { ticks, clock }.to_string();
        assert_eq!(t(0, unix(1)), "1970-01-01T00:00:00Z");
        assert_eq!(t(1_795_456_800_123, unix(1000)), "2026-11-23T18:00:00.123Z");
        assert_eq!(
            t(951_782_400_000_000_001, unix(1_000_000_000)),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(t(12_345, Some(ClockInfo::BOOT_MILLIS)), "+12.345s");
        assert_eq!(t(7, None), "tick:7");
        assert_eq!(t(7, unix(0)), "tick:7");
        // The largest tick count does not overflow.
        assert!(t(u64::MAX, unix(1)).ends_with('Z'));
    }

    #[test]
    fn date_round_trip() {
        for days in [-719_468i64, -1, 0, 1, 11_016, 20_415, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn parses_bounds() {
        assert_eq!(
            TimeBound::parse("2026-11-23T18:00:00.5Z"),
            Ok(TimeBound::Unix(1_795_456_800_500_000_000))
        );
        assert_eq!(
            TimeBound::parse("2026-11-23T19:00:00+01:00"),
            Ok(TimeBound::Unix(1_795_456_800_000_000_000))
        );
        assert_eq!(
            TimeBound::parse("12.5s"),
            Ok(TimeBound::SinceBoot(12_500_000_000))
        );
        assert_eq!(
            TimeBound::parse("3"),
            Ok(TimeBound::SinceBoot(3_000_000_000))
        );
        assert_eq!(TimeBound::parse("tick:99"), Ok(TimeBound::Ticks(99)));
        for bad in [
            "",
            "s",
            "x",
            "2026-13-01T00:00:00Z",
            "1.2.3",
            "tick:-1",
            "1e9",
        ] {
            assert!(TimeBound::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn compares() {
        let b = TimeBound::SinceBoot(1_000_000_000);
        let boot = Some(ClockInfo::BOOT_MILLIS);
        assert_eq!(b.cmp_ticks(999, boot), Some(std::cmp::Ordering::Less));
        assert_eq!(b.cmp_ticks(1000, boot), Some(std::cmp::Ordering::Equal));
        assert_eq!(b.cmp_ticks(1000, unix(1000)), None);
        assert_eq!(
            TimeBound::Ticks(5).cmp_ticks(6, None),
            Some(std::cmp::Ordering::Greater)
        );
    }

    /// The writer gives what `Display` gives, for any ticks and clock, one after another
    /// (so that the kept date and second are checked when they change, and when they do
    /// not).
    mod writer_as_display {
        use super::*;
        use proptest::prelude::*;

        fn clock() -> impl Strategy<Value = Option<ClockInfo>> {
            let rate = prop_oneof![
                Just(0u64),
                Just(1),
                Just(1000),
                Just(1_000_000),
                Just(1_000_000_000),
                Just(32_768),
                Just(u64::MAX),
                any::<u64>(),
                1u64..5000,
            ];
            let base = prop_oneof![
                Just(TimeBase::Unix),
                Just(TimeBase::Boot),
                any::<u8>().prop_map(TimeBase::Unknown),
            ];
            prop::option::weighted(
                0.9,
                (rate, base).prop_map(|(rate_hz, base)| ClockInfo { rate_hz, base }),
            )
        }

        /// Ticks to the next record: as often within the same second as beyond.
        fn step() -> impl Strategy<Value = u64> {
            prop_oneof![0u64..2000, 0u64..200_000_000_000]
        }

        proptest! {
            #[test]
            fn any_ticks(
                clock in clock(),
                start in any::<u64>(),
                shift in 0u32..64,
                steps in prop::collection::vec(step(), 1..8),
            ) {
                let mut w = TimeText::default();
                let mut ticks = start >> shift;
                for step in steps {
                    let mut out = b"x".to_vec();
                    w.push(&mut out, ticks, clock);
                    let shown = format!("x{}", Time { ticks, clock });
                    prop_assert_eq!(String::from_utf8(out).unwrap(), shown);
                    ticks = ticks.saturating_add(step);
                }
            }
        }
    }
}
