//! The trigger state machine: fed records and the time, it says when to dump.
//!
//! It does no I/O and reads no clock, so it behaves the same on a microcontroller, in a
//! daemon and in a test. Criteria (each configurable in [`TriggerConfig`]):
//!
//! - a failed login ([`Kind::AUTH_FAILURE`], ProFTPD's `FailedLogin`);
//! - untimely death (the platform reports a panic or abnormal end): dumped at once, never
//!   rate-limited, because the process has one chance;
//! - policy (the application decides, ProFTPD's `ModuleConfig`);
//! - a record at or above a level;
//! - a named event ([`crate::event::Custom`] whose name is configured) or a signal;
//! - a threshold: `count` records of a kind within `window` ticks, optionally per peer
//!   address (brute force);
//! - manual.
//!
//! After a trigger, a post-trigger window of `post_records` records or `post_ticks` ticks
//! (whichever ends first) is captured before the [`Action::Dump`]; triggers during the window
//! join that dump. A [`RateLimit`] bounds dumps; triggers it refuses are counted and reported
//! in the next dump's [`DumpOrder::suppressed`].

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event::Addr;
use crate::{Kind, Level, SessionId};

/// Why a dump was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Reason {
    /// A failed login.
    FailedLogin,
    /// The process or firmware died (panic, abnormal end, fault, watchdog).
    UntimelyDeath,
    /// The application's policy asked for it.
    Policy,
    /// A record at or above the configured level.
    Level(Level),
    /// A named event: index into [`TriggerConfig::named`].
    Named(u8),
    /// A signal (its number).
    Signal(u8),
    /// A threshold of records of this kind was crossed.
    Threshold(Kind),
    /// Asked for by an operator or by code.
    Manual,
    /// A reason code this version does not know (from a newer writer).
    Unknown {
        /// Its wire code.
        code: u8,
        /// Its argument.
        arg: u32,
    },
}

impl Reason {
    /// Wire code and argument (see `WIRE-FORMAT.md`).
    pub const fn to_wire(self) -> (u8, u32) {
        match self {
            Reason::FailedLogin => (1, 0),
            Reason::UntimelyDeath => (2, 0),
            Reason::Policy => (3, 0),
            Reason::Level(l) => (4, l as u32),
            Reason::Named(i) => (5, i as u32),
            Reason::Signal(s) => (6, s as u32),
            Reason::Threshold(k) => (7, k.0 as u32),
            Reason::Manual => (8, 0),
            Reason::Unknown { code, arg } => (code, arg),
        }
    }

    /// The reason for a wire code and argument; unknown ones are kept as [`Reason::Unknown`].
    pub const fn from_wire(code: u8, arg: u32) -> Reason {
        let small = arg <= u8::MAX as u32;
        match code {
            1 => Reason::FailedLogin,
            2 => Reason::UntimelyDeath,
            3 => Reason::Policy,
            4 if small => match Level::from_u8(arg as u8) {
                Some(l) => Reason::Level(l),
                None => Reason::Unknown { code, arg },
            },
            5 if small => Reason::Named(arg as u8),
            6 if small => Reason::Signal(arg as u8),
            7 if small => Reason::Threshold(Kind(arg as u8)),
            8 => Reason::Manual,
            _ => Reason::Unknown { code, arg },
        }
    }

    /// The name used in forensic markers: `-----BEGIN <NAME> FORENSICS-----`.
    pub const fn marker(self) -> &'static str {
        match self {
            Reason::FailedLogin => "FAILED LOGIN",
            Reason::UntimelyDeath => "UNTIMELY DEATH",
            Reason::Policy => "MODULE CONFIG",
            Reason::Level(_) => "LEVEL",
            Reason::Named(_) => "NAMED EVENT",
            Reason::Signal(_) => "SIGNAL",
            Reason::Threshold(_) => "THRESHOLD",
            Reason::Manual => "MANUAL",
            Reason::Unknown { .. } => "UNKNOWN REASON",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reason::FailedLogin => f.write_str("failed login"),
            Reason::UntimelyDeath => f.write_str("untimely death"),
            Reason::Policy => f.write_str("policy"),
            Reason::Level(l) => write!(f, "level {}", l.as_str()),
            Reason::Named(i) => write!(f, "named event #{i}"),
            Reason::Signal(s) => write!(f, "signal {s}"),
            Reason::Threshold(k) => match k.name() {
                Some(n) => write!(f, "threshold of {n}"),
                None => write!(f, "threshold of kind {}", k.0),
            },
            Reason::Manual => f.write_str("manual"),
            Reason::Unknown { code, arg } => write!(f, "unknown reason {code} ({arg})"),
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        self.to_wire().serialize(ser)
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let (code, arg) = <(u8, u32)>::deserialize(de)?;
        Ok(Reason::from_wire(code, arg))
    }
}

/// `count` records of `kind` within `window` ticks fire [`Reason::Threshold`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold {
    /// Which records count.
    pub kind: Kind,
    /// How many (at least 1; more than the machine's `DEPTH` counts as `DEPTH`).
    pub count: u16,
    /// Within how many ticks: the last of them comes at most `window` ticks after the first.
    pub window: u64,
    /// Count separately for each peer address (records without one share one count).
    pub per_peer: bool,
}

/// Bounds how often dumps are taken (a token bucket).
///
/// Up to `dumps` dumps at once, then one per `window / dumps` ticks (rounded up), and never
/// two closer than `cooldown`. Over any span of `S` ticks at most
/// `dumps + floor(S * dumps / window)` dumps are taken: with 4 dumps per hour, at most 8 in
/// any hour. A `window` shorter than `dumps` ticks allows one dump per tick after the burst.
///
/// A dump is counted at the time its trigger fired ([`DumpOrder::time`], the start of its
/// post-trigger window); it is written when that window closes, so two written dumps can be
/// closer than `cooldown` when a window closes early. Untimely deaths are never limited and
/// not counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Burst size and dumps per window (at least 1).
    pub dumps: u32,
    /// The window, in ticks.
    pub window: u64,
    /// Least ticks between two dumps.
    pub cooldown: u64,
}

/// Which criteria fire, the post-trigger window and the rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TriggerConfig {
    /// Fire on [`Kind::AUTH_FAILURE`] records.
    pub failed_login: bool,
    /// Fire when the platform reports a death ([`TriggerMachine::fire`] with
    /// [`Reason::UntimelyDeath`]).
    pub untimely_death: bool,
    /// Fire when the application asks ([`Reason::Policy`]).
    pub policy: bool,
    /// Fire on records at or above this level.
    pub level: Option<Level>,
    /// Fire on signals ([`Reason::Signal`]).
    pub signal: bool,
    /// Fire on [`crate::event::Custom`] events with one of these names.
    pub named: &'static [&'static str],
    /// Fire on a threshold.
    pub threshold: Option<Threshold>,
    /// Records captured after the trigger before dumping (0: not counted).
    pub post_records: u32,
    /// Ticks captured after the trigger before dumping (0: not timed). With both 0 the dump is
    /// immediate; with only `post_records`, the window waits for that many records.
    pub post_ticks: u64,
    /// Bounds how often dumps are taken.
    pub rate: Option<RateLimit>,
    /// Scope a dump to the session of the record that fired it (plus records with no session).
    pub scope_session: bool,
}

impl TriggerConfig {
    /// Failed logins, deaths, policy, signals and manual dumps fire; 16 records of post-trigger
    /// window; no rate limit; no scoping.
    pub const DEFAULT: TriggerConfig = TriggerConfig {
        failed_login: true,
        untimely_death: true,
        policy: true,
        level: None,
        signal: true,
        named: &[],
        threshold: None,
        post_records: 16,
        post_ticks: 0,
        rate: None,
        scope_session: false,
    };
}

impl Default for TriggerConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What the caller should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// A trigger fired; the post-trigger window is being captured.
    Start(Reason),
    /// Write a dump now.
    Dump(DumpOrder),
    /// A trigger fired but the rate limit refused it (counted).
    Suppressed(Reason),
}

/// A dump to write: why, when, and what to put in its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DumpOrder {
    /// Why.
    pub reason: Reason,
    /// When the trigger fired (ticks).
    pub time: u64,
    /// The record that fired it, if a record did.
    pub seq: Option<u64>,
    /// Scope the dump to this session.
    pub session: Option<SessionId>,
    /// Triggers the rate limit refused since the previous dump.
    pub suppressed: u32,
    /// Dumps ordered before this one (0 for the first).
    pub index: u32,
}

/// What the machine needs to know about a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordInfo<'a> {
    /// Its sequence number, if it was recorded.
    pub seq: Option<u64>,
    /// Its kind.
    pub kind: Kind,
    /// Its level.
    pub level: Level,
    /// Its session.
    pub session: Option<SessionId>,
    /// The peer it concerns.
    pub peer: Option<Addr>,
    /// Its name (custom events).
    pub name: Option<&'a str>,
}

#[derive(Clone, Copy, Debug)]
struct Slot<const DEPTH: usize> {
    key: Option<Addr>,
    in_use: bool,
    /// Times of the last `len` records, a ring starting at `next - len`.
    times: [u64; DEPTH],
    len: usize,
    next: usize,
    last: u64,
}

impl<const DEPTH: usize> Slot<DEPTH> {
    const EMPTY: Self = Slot {
        key: None,
        in_use: false,
        times: [0; DEPTH],
        len: 0,
        next: 0,
        last: 0,
    };

    /// Notes a record at `now`; returns how many of the remembered ones (this one included)
    /// lie within `window` ticks before it.
    fn note(&mut self, now: u64, window: u64) -> usize {
        if let Some(t) = self.times.get_mut(self.next) {
            *t = now;
        }
        self.next = if self.next + 1 >= DEPTH {
            0
        } else {
            self.next + 1
        };
        self.len = (self.len + 1).min(DEPTH);
        self.last = now;
        let mut within = 0;
        let mut i = self.next;
        for _ in 0..self.len {
            i = if i == 0 { DEPTH - 1 } else { i - 1 };
            match self.times.get(i) {
                Some(&t) if now.saturating_sub(t) <= window => within += 1,
                _ => break, // older ones are older still
            }
        }
        within
    }
}

#[derive(Clone, Copy, Debug)]
enum State {
    Idle,
    Capturing {
        order: DumpOrder,
        records_left: Option<u32>,
        deadline: Option<u64>,
    },
}

/// The trigger state machine. `SLOTS` peers are tracked for a per-peer threshold (the least
/// recently seen is forgotten first); `DEPTH` bounds a threshold's count.
///
/// ```
/// use flightrec_core::{TriggerMachine, TriggerConfig, Threshold, Action, Reason, Kind, Level};
/// use flightrec_core::trigger::RecordInfo;
///
/// let mut m: TriggerMachine<4, 8> = TriggerMachine::new(TriggerConfig {
///     failed_login: false,
///     threshold: Some(Threshold { kind: Kind::AUTH_FAILURE, count: 3, window: 60, per_peer: false }),
///     post_records: 0,
///     ..TriggerConfig::DEFAULT
/// });
/// let fail = RecordInfo { seq: None, kind: Kind::AUTH_FAILURE, level: Level::Warn,
///                         session: None, peer: None, name: None };
/// assert_eq!(m.on_record(&fail, 0), Action::None);
/// assert_eq!(m.on_record(&fail, 30), Action::None);
/// let Action::Dump(order) = m.on_record(&fail, 60) else { panic!() };
/// assert_eq!(order.reason, Reason::Threshold(Kind::AUTH_FAILURE));
/// ```
#[derive(Clone, Debug)]
pub struct TriggerMachine<const SLOTS: usize = 4, const DEPTH: usize = 8> {
    config: TriggerConfig,
    state: State,
    slots: [Slot<DEPTH>; SLOTS],
    /// Rate limit: theoretical arrival time of the next dump (GCRA).
    tat: u64,
    last_dump: Option<u64>,
    suppressed: u32,
    dumps: u32,
}

impl<const SLOTS: usize, const DEPTH: usize> TriggerMachine<SLOTS, DEPTH> {
    /// A machine in the idle state.
    pub const fn new(config: TriggerConfig) -> Self {
        TriggerMachine {
            config,
            state: State::Idle,
            slots: [Slot::EMPTY; SLOTS],
            tat: 0,
            last_dump: None,
            suppressed: 0,
            dumps: 0,
        }
    }

    /// Its configuration.
    pub const fn config(&self) -> &TriggerConfig {
        &self.config
    }

    /// Triggers refused by the rate limit since the last dump.
    pub const fn suppressed(&self) -> u32 {
        self.suppressed
    }

    /// Whether a post-trigger window is open.
    pub const fn is_capturing(&self) -> bool {
        matches!(self.state, State::Capturing { .. })
    }

    /// Feeds a record seen at `now`.
    pub fn on_record(&mut self, rec: &RecordInfo<'_>, now: u64) -> Action {
        let fired = self.evaluate(rec, now);
        if let State::Capturing {
            order,
            records_left: Some(left),
            ..
        } = &mut self.state
        {
            *left = left.saturating_sub(1);
            if *left == 0 {
                let order = *order;
                return self.finish(order);
            }
        }
        if let Some(action) = self.expire(now) {
            return action;
        }
        match fired {
            Some(reason) => self.start(reason, now, rec.seq, rec.session),
            None => Action::None,
        }
    }

    /// Reports a cause that is not a record: [`Reason::UntimelyDeath`], [`Reason::Signal`],
    /// [`Reason::Policy`], [`Reason::Manual`] (or any other). Returns [`Action::None`] if that
    /// criterion is switched off or a window is already open (it joins that dump), except a
    /// death, which dumps at once. A window whose deadline has passed is closed first: its
    /// [`Action::Dump`] is returned and this trigger joins it.
    pub fn fire(&mut self, reason: Reason, now: u64) -> Action {
        let enabled = match reason {
            Reason::UntimelyDeath => self.config.untimely_death,
            Reason::Policy => self.config.policy,
            Reason::Signal(_) => self.config.signal,
            _ => true,
        };
        if !enabled {
            return Action::None;
        }
        if reason != Reason::UntimelyDeath {
            // A window whose end has passed closes now; this trigger joins its dump.
            if let Some(action) = self.expire(now) {
                return action;
            }
        }
        if reason == Reason::UntimelyDeath {
            let session = match self.state {
                State::Capturing { order, .. } => order.session,
                State::Idle => None,
            };
            let order = self.order(reason, now, None, session);
            return self.finish(order);
        }
        self.start(reason, now, None, None)
    }

    /// Lets time pass: closes a timed window whose end has come.
    pub fn poll(&mut self, now: u64) -> Action {
        self.expire(now).unwrap_or(Action::None)
    }

    /// The tick at which [`poll`](Self::poll) should next be called, if a timed window is open.
    pub const fn deadline(&self) -> Option<u64> {
        match self.state {
            State::Capturing { deadline, .. } => deadline,
            State::Idle => None,
        }
    }

    fn expire(&mut self, now: u64) -> Option<Action> {
        match self.state {
            State::Capturing {
                order,
                deadline: Some(d),
                ..
            } if now >= d => Some(self.finish(order)),
            _ => None,
        }
    }

    /// Which criterion, if any, this record meets. Threshold counters move for every record.
    fn evaluate(&mut self, rec: &RecordInfo<'_>, now: u64) -> Option<Reason> {
        let c = self.config;
        let threshold = c.threshold.filter(|t| t.kind == rec.kind).and_then(|t| {
            let key = if t.per_peer { rec.peer } else { None };
            let count = usize::from(t.count.max(1)).min(DEPTH);
            let slot = self.slot_for(key, now)?;
            if slot.note(now, t.window) >= count {
                *slot = Slot::EMPTY;
                Some(Reason::Threshold(t.kind))
            } else {
                None
            }
        });
        if threshold.is_some() {
            return threshold;
        }
        if c.failed_login && rec.kind == Kind::AUTH_FAILURE {
            return Some(Reason::FailedLogin);
        }
        if rec.kind == Kind::CUSTOM {
            if let Some(name) = rec.name {
                if let Some(i) = c.named.iter().position(|n| *n == name) {
                    return Some(Reason::Named(i.min(u8::MAX as usize) as u8));
                }
            }
        }
        match c.level {
            Some(min) if rec.level >= min => Some(Reason::Level(rec.level)),
            _ => None,
        }
    }

    /// The slot counting for `key`: its own, a free one, or the least recently used one.
    fn slot_for(&mut self, key: Option<Addr>, _now: u64) -> Option<&mut Slot<DEPTH>> {
        let i = match self.slots.iter().position(|s| s.in_use && s.key == key) {
            Some(i) => i,
            None => {
                let i = match self.slots.iter().position(|s| !s.in_use) {
                    Some(i) => i,
                    None => self
                        .slots
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, s)| s.last)
                        .map(|(i, _)| i)?,
                };
                let slot = self.slots.get_mut(i)?;
                *slot = Slot::EMPTY;
                slot.in_use = true;
                slot.key = key;
                i
            }
        };
        self.slots.get_mut(i)
    }

    fn start(
        &mut self,
        reason: Reason,
        now: u64,
        seq: Option<u64>,
        session: Option<SessionId>,
    ) -> Action {
        if let State::Capturing { order, .. } = &mut self.state {
            // Joins the open window's dump; a threshold says more than the single failed
            // login that opened the window (a brute force, not a typo), so it names the dump.
            if matches!(reason, Reason::Threshold(_))
                && !matches!(order.reason, Reason::Threshold(_))
            {
                order.reason = reason;
            }
            return Action::None;
        }
        if !self.rate_allows(now) {
            self.suppressed = self.suppressed.saturating_add(1);
            return Action::Suppressed(reason);
        }
        let session = if self.config.scope_session {
            session
        } else {
            None
        };
        let order = self.order(reason, now, seq, session);
        let c = self.config;
        if c.post_records == 0 && c.post_ticks == 0 {
            return self.finish(order);
        }
        self.state = State::Capturing {
            order,
            records_left: (c.post_records > 0).then_some(c.post_records),
            deadline: (c.post_ticks > 0).then(|| now.saturating_add(c.post_ticks)),
        };
        Action::Start(reason)
    }

    fn order(
        &self,
        reason: Reason,
        now: u64,
        seq: Option<u64>,
        session: Option<SessionId>,
    ) -> DumpOrder {
        DumpOrder {
            reason,
            time: now,
            seq,
            session,
            suppressed: 0,
            index: self.dumps,
        }
    }

    fn finish(&mut self, mut order: DumpOrder) -> Action {
        order.suppressed = self.suppressed;
        order.index = self.dumps;
        self.suppressed = 0;
        self.dumps = self.dumps.wrapping_add(1);
        self.state = State::Idle;
        Action::Dump(order)
    }

    /// Token bucket (GCRA): takes a token at `now` if there is one.
    fn rate_allows(&mut self, now: u64) -> bool {
        let Some(r) = self.config.rate else {
            return true;
        };
        if let Some(last) = self.last_dump {
            if now < last.saturating_add(r.cooldown) {
                return false;
            }
        }
        // Rounded up, and the burst set to exactly `dumps`, so that neither rounding nor a
        // window shorter than `dumps` ticks lets more dumps through than documented.
        let dumps = u64::from(r.dumps.max(1));
        let interval = r.window.div_ceil(dumps).max(1);
        let tolerance = interval.saturating_mul(dumps - 1);
        if self.tat > now.saturating_add(tolerance) {
            return false;
        }
        self.tat = self.tat.max(now).saturating_add(interval);
        self.last_dump = Some(now);
        true
    }
}
