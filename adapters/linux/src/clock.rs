//! The clock records are stamped with: nanoseconds since the Unix epoch, monotonic per
//! thread, one time scale for the whole process (dumps merge shards by time).
//!
//! Why not `Instant::now()`: the vDSO's `clock_gettime` takes about a quarter of a captured
//! event's budget, twice what this clock takes (the capture bench's "floor + `Instant::now()`"
//! and "floor + flightrec's clock" rows in `benches/RESULTS.md`). Where the kernel itself
//! uses the TSC as its clocksource (and the CPU says the TSC is invariant), reading it is one
//! `rdtsc` plus a multiplication. The TSC is mapped to nanoseconds by a piecewise linear function that is
//! continuous and increasing: it starts from a 100 µs calibration against
//! `CLOCK_MONOTONIC` and is corrected against it again and again (after as long again as the
//! time measured so far, then every second), each correction changing only the slope of the
//! next piece, so that it converges to the monotonic clock without ever jumping. Elsewhere
//! (not x86_64, another clocksource, or `FLIGHTREC_CLOCK=monotonic` in the environment) the
//! clock is `Instant` anchored to the wall clock, as before.
//!
//! Both are anchored to the wall clock once per process: a later change of the wall clock
//! (NTP step, `date -s`) does not move record times, just as with `CLOCK_MONOTONIC`.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use flightrec_core::{Clock, ClockInfo};

/// Nanoseconds since the Unix epoch: cheap, never goes back within a thread (so records of
/// one thread keep their order), on one time scale for every thread and every `UnixClock`
/// of the process (see the module's source for how: TSC where the kernel trusts it,
/// `CLOCK_MONOTONIC` otherwise).
#[derive(Clone, Copy, Debug)]
pub struct UnixClock {
    source: &'static Source,
}

#[derive(Debug)]
enum Source {
    #[cfg(target_arch = "x86_64")]
    Tsc(tsc::Tsc),
    Monotonic {
        base: Instant,
        base_unix: u64,
    },
}

static SOURCE: OnceLock<Source> = OnceLock::new();

thread_local! {
    /// The last time this thread was given: the TSC of the core a thread moves to may lag a
    /// few cycles behind the one it left.
    static LAST: Cell<u64> = const { Cell::new(0) };
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn monotonic() -> Source {
    Source::Monotonic {
        base: Instant::now(),
        base_unix: unix_nanos(SystemTime::now()),
    }
}

fn pick() -> Source {
    if std::env::var_os("FLIGHTREC_CLOCK").is_some_and(|v| v == "monotonic") {
        return monotonic();
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(tsc) = tsc::Tsc::start() {
        return Source::Tsc(tsc);
    }
    monotonic()
}

impl UnixClock {
    /// The process's clock (anchored to the wall clock at its first use).
    pub fn new() -> Self {
        UnixClock {
            source: SOURCE.get_or_init(pick),
        }
    }

    /// Whether this clock reads the TSC (else `CLOCK_MONOTONIC`).
    pub fn is_tsc(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if let Source::Tsc(_) = self.source {
            return true;
        }
        false
    }

    #[inline]
    fn raw(&self) -> u64 {
        match self.source {
            #[cfg(target_arch = "x86_64")]
            Source::Tsc(tsc) => tsc.now(),
            Source::Monotonic { base, base_unix } => {
                let d = base.elapsed();
                base_unix
                    .saturating_add(d.as_secs().saturating_mul(1_000_000_000))
                    .saturating_add(u64::from(d.subsec_nanos()))
            }
        }
    }
}

impl Default for UnixClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for UnixClock {
    #[inline]
    fn now(&self) -> u64 {
        let t = self.raw();
        LAST.try_with(|last| {
            let t = t.max(last.get());
            last.set(t);
            t
        })
        .unwrap_or(t)
    }

    fn info(&self) -> ClockInfo {
        ClockInfo::UNIX_NANOS
    }
}

#[cfg(target_arch = "x86_64")]
mod tsc {
    use std::sync::atomic::{fence, AtomicU64, Ordering};
    use std::time::{Duration, Instant, SystemTime};

    /// Fractional bits of the nanoseconds-per-tick factor: 2^-40 ns per tick is 0.24 µs
    /// a day at 3 GHz (corrections re-anchor every second), and (ticks < 2^64) × (factor < 2^47) fits in a `u128`.
    const SHIFT: u32 = 40;
    /// Longest time between two corrections.
    const PERIOD_MAX_NS: u64 = 1_000_000_000;
    /// First calibration: long enough for a first slope within about 1e-3, short enough
    /// not to be felt at start-up.
    const CALIBRATION: Duration = Duration::from_micros(100);

    /// The TSC as nanoseconds since the Unix epoch: the current piece of the mapping behind
    /// a sequence lock, so that readers never see a mix of two pieces and never write a
    /// shared cache line.
    ///
    /// A piece starts at TSC `at` with time `ns_at`; up to TSC `end` it has the slope
    /// `mult` (the measured rate plus what brings it onto the monotonic clock by `end`),
    /// after `end` the measured rate `rate` (so that a piece read late, when nobody read the
    /// clock for a while, does not keep catching up past its aim).
    #[derive(Debug)]
    pub(super) struct Tsc {
        /// Odd while a correction is being written.
        seq: AtomicU64,
        at: AtomicU64,
        ns_at: AtomicU64,
        mult: AtomicU64,
        end: AtomicU64,
        rate: AtomicU64,
        /// TSC reading from which the next reader corrects the mapping (`u64::MAX` while
        /// one does).
        next: AtomicU64,
        /// Calibration start: TSC, monotonic clock and wall clock read together.
        tsc0: u64,
        mono0: Instant,
        unix0: u64,
    }

    /// One piece of the mapping (see [`Tsc`]).
    #[derive(Clone, Copy)]
    struct Piece {
        at: u64,
        ns_at: u64,
        mult: u64,
        end: u64,
        rate: u64,
    }

    fn scale(ticks: u64, mult: u64) -> u64 {
        u64::try_from((u128::from(ticks) * u128::from(mult)) >> SHIFT).unwrap_or(u64::MAX)
    }

    impl Piece {
        #[inline]
        fn map(&self, t: u64) -> u64 {
            if t <= self.at {
                // A reading taken just before a correction was published can be a little
                // before the new piece's start: extend the piece backwards.
                self.ns_at.saturating_sub(scale(self.at - t, self.mult))
            } else if t <= self.end {
                self.ns_at.saturating_add(scale(t - self.at, self.mult))
            } else {
                self.ns_at
                    .saturating_add(scale(self.end.saturating_sub(self.at), self.mult))
                    .saturating_add(scale(t - self.end, self.rate))
            }
        }
    }

    #[inline]
    fn rdtsc() -> u64 {
        // SAFETY: `rdtsc` reads a register and touches no memory; every x86_64 CPU has it
        // (an OS could forbid it to user code with CR4.TSD, which Linux does only on
        // request of a seccomp-style prctl, never for a process that did not ask).
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    /// Whether the CPU says its TSC is invariant (constant rate, runs in every sleep state),
    /// and the kernel keeps time with it (so it also found it synchronised across cores).
    fn trusted() -> bool {
        // SAFETY (older compilers require `unsafe`): `cpuid` only reads identification
        // registers; leaf 0x8000_0000 exists on every x86_64 CPU and gives the highest
        // extended leaf, checked before 0x8000_0007 is read.
        #[allow(unused_unsafe)]
        let invariant = unsafe {
            core::arch::x86_64::__cpuid(0x8000_0000).eax >= 0x8000_0007
                && core::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
        };
        invariant
            && std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .is_ok_and(|s| s.trim() == "tsc")
    }

    /// A TSC reading and the monotonic clock (ns since `mono0`) at the same moment: of
    /// three tries, the pair read closest together, the TSC taken at its middle.
    fn sample(mono0: Instant) -> (u64, u64) {
        let mut best = (u64::MAX, 0, 0);
        for _ in 0..3 {
            let a = rdtsc();
            let d = mono0.elapsed();
            let b = rdtsc();
            let width = b.wrapping_sub(a);
            if width < best.0 {
                let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                best = (width, a.wrapping_add(width / 2), ns);
            }
        }
        (best.1, best.2)
    }

    /// `ns << SHIFT / ticks`, if it is a plausible rate (a TSC of 50 MHz to 20 GHz).
    fn rate(ns: u64, ticks: u64) -> Option<u64> {
        let m = (u128::from(ns) << SHIFT).checked_div(u128::from(ticks))?;
        let m = u64::try_from(m).ok()?;
        ((1u64 << SHIFT) / 20..=(1u64 << SHIFT) * 20)
            .contains(&m)
            .then_some(m)
    }

    impl Tsc {
        /// Calibrates the TSC against the monotonic clock, if it can be trusted.
        pub(super) fn start() -> Option<Tsc> {
            if !trusted() {
                return None;
            }
            // The first calls of the clocks may fault their pages in: warm them up, then
            // anchor on the closest of three (TSC, monotonic) pairs.
            let _ = (Instant::now(), SystemTime::now());
            let mut anchor = (u64::MAX, 0, Instant::now());
            for _ in 0..3 {
                let a = rdtsc();
                let mono = Instant::now();
                let b = rdtsc();
                let width = b.wrapping_sub(a);
                if width < anchor.0 {
                    anchor = (width, a.wrapping_add(width / 2), mono);
                }
            }
            let (_, tsc0, mono0) = anchor;
            let unix0 = super::unix_nanos(SystemTime::now())
                .saturating_sub(u64::try_from(mono0.elapsed().as_nanos()).unwrap_or(0));
            while mono0.elapsed() < CALIBRATION {
                std::hint::spin_loop();
            }
            let (t, ns) = sample(mono0);
            let ticks = t.checked_sub(tsc0)?;
            let rate = rate(ns, ticks)?;
            let end = t.saturating_add(ticks);
            Some(Tsc {
                seq: AtomicU64::new(0),
                at: AtomicU64::new(tsc0),
                ns_at: AtomicU64::new(unix0),
                mult: AtomicU64::new(rate),
                end: AtomicU64::new(end),
                rate: AtomicU64::new(rate),
                next: AtomicU64::new(end),
                tsc0,
                mono0,
                unix0,
            })
        }

        /// Now, in nanoseconds since the Unix epoch.
        #[inline]
        pub(super) fn now(&self) -> u64 {
            let t = rdtsc();
            // The common case in few instructions: the piece read whole (no correction
            // being written) and the reading inside it; corrections are due at its end at
            // the earliest (`next >= end`, see `correct`).
            let s = self.seq.load(Ordering::Acquire);
            let at = self.at.load(Ordering::Relaxed);
            let ns_at = self.ns_at.load(Ordering::Relaxed);
            let mult = self.mult.load(Ordering::Relaxed);
            let end = self.end.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if s & 1 == 0 && self.seq.load(Ordering::Relaxed) == s && at < t && t <= end {
                // At most a second of ticks times a few ns per tick (2^-40 units):
                // shifted back, it fits a `u64`.
                let ns = (u128::from(t - at) * u128::from(mult)) >> SHIFT;
                return ns_at.saturating_add(ns as u64);
            }
            self.now_slow(t)
        }

        #[cold]
        #[inline(never)]
        fn now_slow(&self, t: u64) -> u64 {
            if t >= self.next.load(Ordering::Relaxed) {
                self.correct(t);
            }
            self.map(t)
        }

        /// The current piece, read whole.
        #[inline]
        fn piece(&self) -> Piece {
            loop {
                let s = self.seq.load(Ordering::Acquire);
                let piece = Piece {
                    at: self.at.load(Ordering::Relaxed),
                    ns_at: self.ns_at.load(Ordering::Relaxed),
                    mult: self.mult.load(Ordering::Relaxed),
                    end: self.end.load(Ordering::Relaxed),
                    rate: self.rate.load(Ordering::Relaxed),
                };
                fence(Ordering::Acquire);
                if s & 1 == 0 && self.seq.load(Ordering::Relaxed) == s {
                    return piece;
                }
                std::hint::spin_loop();
            }
        }

        #[inline]
        fn map(&self, t: u64) -> u64 {
            self.piece().map(t)
        }

        /// Starts a new piece at `t`, continuing the current one, with a slope that brings
        /// it onto the monotonic clock by the next correction. One reader does it; the
        /// others go on with the current piece meanwhile.
        #[cold]
        #[inline(never)]
        fn correct(&self, seen: u64) {
            let next = self.next.load(Ordering::Relaxed);
            if seen < next
                || self
                    .next
                    .compare_exchange(next, u64::MAX, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                return;
            }
            let (t, mono) = sample(self.mono0);
            let elapsed = t.saturating_sub(self.tsc0);
            let Some(rate) = rate(mono, elapsed) else {
                // The TSC went backwards or wild: keep the current piece, look again later.
                self.next
                    .store(seen.saturating_add(1 << 20), Ordering::Relaxed);
                return;
            };
            let v = self.map(t);
            let target_now = self.unix0.saturating_add(mono);
            // The next piece lasts as long as what was measured so far (each correction
            // halves the slope's error), at most a second.
            let period_max = u64::try_from((u128::from(PERIOD_MAX_NS) << SHIFT) / u128::from(rate))
                .unwrap_or(u64::MAX);
            let period = elapsed.clamp(1, period_max);
            let period_ns =
                u64::try_from((u128::from(period) * u128::from(rate)) >> SHIFT).unwrap_or(u64::MAX);
            let target = target_now.saturating_add(period_ns);
            // Aim at the monotonic clock by the end of the piece; never slower than half or
            // faster than twice the measured rate (a clock that went far off catches up
            // over several pieces instead of standing still or racing).
            let mult = u128::from(target.saturating_sub(v)) << SHIFT;
            let mult = u64::try_from(mult / u128::from(period))
                .unwrap_or(u64::MAX)
                .clamp(rate / 2, rate.saturating_mul(2));
            self.seq.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::Release);
            self.at.store(t, Ordering::Relaxed);
            self.ns_at.store(v, Ordering::Relaxed);
            self.mult.store(mult, Ordering::Relaxed);
            self.end.store(t.saturating_add(period), Ordering::Relaxed);
            self.rate.store(rate, Ordering::Relaxed);
            self.seq.fetch_add(1, Ordering::Release);
            self.next.store(t.saturating_add(period), Ordering::Relaxed);
        }

        /// How far the mapping is from the monotonic clock now (ns, positive if ahead).
        #[cfg(test)]
        pub(super) fn offset(&self) -> i128 {
            let (t, mono) = sample(self.mono0);
            i128::from(self.map(t)) - i128::from(self.unix0) - i128::from(mono)
        }

        /// Makes the next reading correct the mapping: the current piece ends now (the
        /// mapping up to now is unchanged), so the next reading takes the slow path, where
        /// the correction is due.
        #[cfg(test)]
        pub(super) fn correct_now(&self) {
            self.seq.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::Release);
            let at = self.at.load(Ordering::Relaxed);
            self.end.store(rdtsc().max(at), Ordering::Relaxed);
            self.seq.fetch_add(1, Ordering::Release);
            self.next.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Condvar, Mutex};

    #[test]
    fn near_the_wall_clock() {
        for clock in [
            UnixClock::new(),
            UnixClock {
                source: Box::leak(Box::new(monotonic())),
            },
        ] {
            let wall = unix_nanos(SystemTime::now()) as i128;
            let ours = clock.now() as i128;
            // Both are anchored to the wall clock; a second covers a wall-clock step
            // during the test, not precision.
            assert!((ours - wall).abs() < 1_000_000_000, "{ours} vs {wall}");
        }
    }

    /// A thread never sees time go back: a reading behind the thread's last one (a
    /// correction that stepped the mapping back, a migration to a core whose counter lags)
    /// is raised to it. Checked by putting the last reading ahead of the source; a loop of
    /// readings could not tell, since the raise makes them non-decreasing whatever the
    /// source does.
    #[test]
    fn a_reading_behind_the_threads_last_is_raised_to_it() {
        let clock = UnixClock::new();
        std::thread::spawn(move || {
            let ahead = clock.raw() + 3_600_000_000_000; // an hour ahead of the source
            LAST.with(|last| last.set(ahead));
            assert_eq!(clock.now(), ahead);
            assert!(
                clock.raw() < ahead,
                "the source itself did not jump an hour"
            );
        })
        .join()
        .unwrap();
    }

    /// A time read after another thread's (in happens-before order) is not earlier: what
    /// merging shards by time relies on.
    #[test]
    fn ordered_across_threads() {
        let clock = UnixClock::new();
        let baton = Arc::new((Mutex::new((0u32, 0u64)), Condvar::new()));
        let rounds = 2_000;
        let threads: Vec<_> = (0..2u32)
            .map(|me| {
                let baton = baton.clone();
                std::thread::spawn(move || {
                    let (lock, cv) = &*baton;
                    for _ in 0..rounds {
                        let mut g = lock.lock().unwrap();
                        while g.0 % 2 != me {
                            g = cv.wait(g).unwrap();
                        }
                        let t = clock.now();
                        assert!(t >= g.1, "thread {me}: {t} < {} of the other", g.1);
                        *g = (g.0 + 1, t);
                        cv.notify_all();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn corrections_are_continuous_and_converge() {
        let Some(tsc) = tsc::Tsc::start() else {
            eprintln!("no trusted TSC here: nothing to test");
            return;
        };
        let mut last = tsc.now();
        for _ in 0..50 {
            std::thread::sleep(std::time::Duration::from_micros(200));
            tsc.correct_now();
            let t = tsc.now();
            assert!(t >= last, "a correction went back: {t} < {last}");
            last = t;
        }
        // After the corrections, the mapping is on the monotonic clock (a millisecond is
        // far more than the reading jitter, far less than a wrong rate over the test).
        let off = tsc.offset();
        assert!(off.abs() < 1_000_000, "{off} ns off the monotonic clock");
    }
}
