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
        /// Its argument (saturated at `u16::MAX`: every reason this version writes has an
        /// argument below 256).
        arg: u16,
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
            Reason::Unknown { code, arg } => (code, arg as u32),
        }
    }

    /// The reason for a wire code and argument; unknown ones are kept as [`Reason::Unknown`].
    pub const fn from_wire(code: u8, arg: u32) -> Reason {
        let small = arg <= u8::MAX as u32;
        let unknown = Reason::Unknown {
            code,
            arg: if arg > u16::MAX as u32 {
                u16::MAX
            } else {
                arg as u16
            },
        };
        match code {
            1 => Reason::FailedLogin,
            2 => Reason::UntimelyDeath,
            3 => Reason::Policy,
            4 if small => match Level::from_u8(arg as u8) {
                Some(l) => Reason::Level(l),
                None => unknown,
            },
            5 if small => Reason::Named(arg as u8),
            6 if small => Reason::Signal(arg as u8),
            7 if small => Reason::Threshold(Kind(arg as u8)),
            8 => Reason::Manual,
            _ => unknown,
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
///
/// The interval is worked out by [`RateLimit::new`], a `const fn`: in a firmware's constant
/// configuration the division happens at compile time and no 64-bit divide is linked.
///
/// ```
/// use flightrec_core::RateLimit;
/// const FLASH_SAFE: RateLimit = RateLimit::new(2, 3_600_000, 60_000); // 2 an hour, 1 a minute
/// assert_eq!((FLASH_SAFE.dumps(), FLASH_SAFE.interval()), (2, 1_800_000));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    dumps: u32,
    window: u64,
    cooldown: u64,
    /// `window / dumps`, rounded up, at least 1.
    interval: u64,
    /// `interval * (dumps - 1)`: how far ahead of now the bucket may run (the burst).
    tolerance: u64,
}

impl RateLimit {
    /// At most `dumps` (at least 1) per `window` ticks, in bursts of up to `dumps`, never two
    /// closer than `cooldown` ticks.
    pub const fn new(dumps: u32, window: u64, cooldown: u64) -> Self {
        let dumps = if dumps == 0 { 1 } else { dumps };
        let interval = window.div_ceil(dumps as u64);
        let interval = if interval == 0 { 1 } else { interval };
        RateLimit {
            dumps,
            window,
            cooldown,
            interval,
            tolerance: interval.saturating_mul(dumps as u64 - 1),
        }
    }

    /// The same limit with another cooldown.
    pub const fn with_cooldown(self, cooldown: u64) -> Self {
        RateLimit { cooldown, ..self }
    }

    /// Burst size and dumps per window.
    pub const fn dumps(&self) -> u32 {
        self.dumps
    }

    /// The window, in ticks.
    pub const fn window(&self) -> u64 {
        self.window
    }

    /// Least ticks between two dumps.
    pub const fn cooldown(&self) -> u64 {
        self.cooldown
    }

    /// Ticks per dump once the burst is spent.
    pub const fn interval(&self) -> u64 {
        self.interval
    }
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
    /// Records captured after the trigger before dumping (0: not counted; at most 65 535).
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
    /// A dump is due, for this reason: take its [`DumpOrder`] and write it
    /// ([`TriggerState::take_order`]; a `Recorder` does both in `dump_due`). Until then,
    /// triggers join it.
    Dump(Reason),
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
    pub peer: Option<&'a Addr>,
    /// Its name (custom events).
    pub name: Option<&'a str>,
}

impl<'a> RecordInfo<'a> {
    /// What the machine needs of a record with this `meta`, stored as `seq` (`None`: not
    /// stored).
    pub fn of(
        meta: &crate::RecordMeta,
        seq: Option<u64>,
        peer: Option<&'a Addr>,
        name: Option<&'a str>,
    ) -> Self {
        RecordInfo {
            seq,
            kind: meta.kind,
            level: meta.level,
            session: meta.session,
            peer,
            name,
        }
    }
}

/// A peer address folded to 32 bits for a threshold slot: an IPv4 address as it is, an
/// IPv6 address hashed (FNV-1a). Two IPv6 peers that collide share one count, which can
/// only make a threshold fire sooner, never later.
const fn peer_key(addr: Option<&Addr>) -> (u8, u32) {
    match addr {
        None => (KEY_NONE, 0),
        Some(Addr::V4(b)) => (KEY_V4, u32::from_be_bytes(*b)),
        Some(Addr::V6(b)) => {
            let mut h: u32 = 0x811c_9dc5;
            let mut i = 0;
            while i < b.len() {
                h = (h ^ b[i] as u32).wrapping_mul(0x0100_0193);
                i += 1;
            }
            (KEY_V6, h)
        }
    }
}

const KEY_FREE: u8 = 0;
const KEY_NONE: u8 = 1;
const KEY_V4: u8 = 2;
const KEY_V6: u8 = 3;

/// Counts the records of one peer (or of all) for a threshold: the times of the last `len`
/// of them, a ring ending before `next`.
#[derive(Clone, Copy, Debug)]
struct Slot<const DEPTH: usize> {
    times: [u64; DEPTH],
    key: u32,
    /// `KEY_FREE` for an unused slot, else what `key` holds.
    tag: u8,
    len: u16,
    next: u16,
}

impl<const DEPTH: usize> Slot<DEPTH> {
    const EMPTY: Self = Slot {
        times: [0; DEPTH],
        key: 0,
        tag: KEY_FREE,
        len: 0,
        next: 0,
    };

    /// Empties it, now counting for `tag` and `key`. The old times stay, unread (only the
    /// last `len` are): no struct copy, which for a few slots the compiler makes a `memcpy`.
    fn reset(&mut self, tag: u8, key: u32) {
        self.tag = tag;
        self.key = key;
        self.len = 0;
        self.next = 0;
    }

    /// Time of its newest record (0 if none).
    fn newest(&self) -> u64 {
        if self.len == 0 {
            return 0;
        }
        let i = if self.next == 0 {
            DEPTH.saturating_sub(1)
        } else {
            usize::from(self.next) - 1
        };
        self.times.get(i).copied().unwrap_or(0)
    }

    /// Notes a record at `now`; returns how many of the remembered ones (this one included)
    /// lie within `window` ticks before it.
    fn note(&mut self, now: u64, window: u64) -> usize {
        let next = usize::from(self.next);
        if let Some(t) = self.times.get_mut(next) {
            *t = now;
        }
        self.next = if next + 1 >= DEPTH {
            0
        } else {
            next as u16 + 1
        };
        self.len = (usize::from(self.len) + 1).min(DEPTH) as u16;
        let mut within = 0;
        let mut i = usize::from(self.next);
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

/// A post-trigger window is open.
const CAPTURING: u8 = 1;
/// The window closed and its dump is due: the window's fields are its order until taken.
const DUE: u8 = 2;
/// The window's trigger record is known (`seq`).
const HAS_SEQ: u8 = 4;
/// The window is scoped to `session`.
const HAS_SESSION: u8 = 8;
/// A dump was admitted by the rate limit at `time` (the cooldown counts from it).
const ADMITTED: u8 = 16;
/// The due dump is a death's, made at `seq` (a death has no trigger record, and `time`
/// stays the last admitted one: deaths are not rate-limited nor counted by the limit).
const DEATH: u8 = 32;

/// The state of a trigger machine without its configuration, for owners that keep the
/// configuration elsewhere (a recorder holding a `&'static` config in flash); each call
/// takes the configuration. [`TriggerMachine`] bundles the two.
///
/// A trigger opens a post-trigger window; when it closes, a dump is due, and the window's
/// fields become its order until the owner takes it ([`take_order`](Self::take_order)).
/// Triggers while a window is open or a dump is due join that dump. Keeping the order here
/// keeps [`Action`] to 6 bytes on a 32-bit MCU, which the append path passes up through every frame
/// (a firmware's stack budget is a few hundred bytes).
///
/// Its size is 48 bytes on a 32-bit MCU plus, for each of the `SLOTS` threshold slots,
/// `8 * DEPTH + 16`.
#[derive(Clone, Debug)]
pub struct TriggerState<const SLOTS: usize = 4, const DEPTH: usize = 8> {
    slots: [Slot<DEPTH>; SLOTS],
    /// Rate limit: theoretical arrival time of the next dump (GCRA).
    tat: u64,
    /// When the window's trigger fired; while idle, when the last admitted one did.
    time: u64,
    /// The window's trigger record.
    seq: u64,
    /// The window's session.
    session: u32,
    suppressed: u32,
    /// Dumps made due so far.
    dumps: u32,
    /// Records the open window still waits for (0: not counting).
    left: u16,
    reason: Reason,
    flags: u8,
}

impl<const SLOTS: usize, const DEPTH: usize> Default for TriggerState<SLOTS, DEPTH> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const SLOTS: usize, const DEPTH: usize> TriggerState<SLOTS, DEPTH> {
    /// Idle, nothing counted.
    pub const fn new() -> Self {
        const { assert!(DEPTH <= u16::MAX as usize, "DEPTH must fit a u16") };
        TriggerState {
            slots: [Slot::EMPTY; SLOTS],
            tat: 0,
            time: 0,
            seq: 0,
            session: 0,
            suppressed: 0,
            dumps: 0,
            left: 0,
            // Not read while idle; the first variant, so that an idle machine is all zero
            // bytes (a recorder `static` in `.bss`).
            reason: Reason::FailedLogin,
            flags: 0,
        }
    }

    /// Triggers refused by the rate limit since the last dump.
    pub const fn suppressed(&self) -> u32 {
        self.suppressed
    }

    /// Whether a post-trigger window is open.
    pub const fn is_capturing(&self) -> bool {
        self.flags & CAPTURING != 0
    }

    /// Whether a dump is due (its order not taken yet).
    pub const fn is_due(&self) -> bool {
        self.flags & DUE != 0
    }

    /// The order of the dump that is due, if one is; taking it makes the machine idle, so
    /// the next trigger opens a new window.
    pub fn take_order(&mut self) -> Option<DumpOrder> {
        if !self.is_due() {
            return None;
        }
        let has = |flag| self.flags & flag != 0;
        let order = DumpOrder {
            reason: self.reason,
            time: if has(DEATH) { self.seq } else { self.time },
            seq: has(HAS_SEQ).then_some(self.seq),
            session: has(HAS_SESSION).then_some(SessionId(self.session)),
            suppressed: self.suppressed,
            index: self.dumps.wrapping_sub(1),
        };
        self.suppressed = 0;
        self.flags &= ADMITTED;
        Some(order)
    }

    /// See [`TriggerMachine::on_record`].
    pub fn on_record(&mut self, c: &TriggerConfig, rec: &RecordInfo<'_>, now: u64) -> Action {
        let fired = self.evaluate(c, rec, now);
        if self.is_capturing() && self.left > 0 {
            self.left -= 1;
            if self.left == 0 {
                return self.finish();
            }
        }
        if let Some(action) = self.expire(c, now) {
            return action;
        }
        match fired {
            Some(reason) => self.start(c, reason, now, rec.seq, rec.session),
            None => Action::None,
        }
    }

    /// See [`TriggerMachine::fire`].
    pub fn fire(&mut self, c: &TriggerConfig, reason: Reason, now: u64) -> Action {
        let enabled = match reason {
            Reason::UntimelyDeath => c.untimely_death,
            Reason::Policy => c.policy,
            Reason::Signal(_) => c.signal,
            _ => true,
        };
        if !enabled {
            return Action::None;
        }
        if reason == Reason::UntimelyDeath {
            // Due at once, never limited. It takes over an open window or a due dump (the
            // ring holds their records all the same) and keeps its session scope.
            if self.flags & (CAPTURING | DUE) == 0 {
                self.flags &= ADMITTED;
            }
            self.flags = (self.flags & !HAS_SEQ) | DEATH;
            self.reason = reason;
            self.seq = now;
            return self.finish();
        }
        // A window whose end has passed closes now; this trigger joins its dump.
        if let Some(action) = self.expire(c, now) {
            return action;
        }
        self.start(c, reason, now, None, None)
    }

    /// See [`TriggerMachine::poll`].
    pub fn poll(&mut self, c: &TriggerConfig, now: u64) -> Action {
        self.expire(c, now).unwrap_or(Action::None)
    }

    /// See [`TriggerMachine::deadline`].
    pub fn deadline(&self, c: &TriggerConfig) -> Option<u64> {
        (self.is_capturing() && c.post_ticks > 0).then(|| self.time.saturating_add(c.post_ticks))
    }

    fn expire(&mut self, c: &TriggerConfig, now: u64) -> Option<Action> {
        match self.deadline(c) {
            Some(d) if now >= d => Some(self.finish()),
            _ => None,
        }
    }

    /// Which criterion, if any, this record meets. Threshold counters move for every record.
    fn evaluate(&mut self, c: &TriggerConfig, rec: &RecordInfo<'_>, now: u64) -> Option<Reason> {
        if let (true, Some(t)) = (SLOTS > 0, c.threshold) {
            if t.kind == rec.kind {
                let key = peer_key(if t.per_peer { rec.peer } else { None });
                let count = usize::from(t.count.max(1)).min(DEPTH);
                if let Some(slot) = self.slot_for(key) {
                    if slot.note(now, t.window) >= count {
                        slot.reset(KEY_FREE, 0);
                        return Some(Reason::Threshold(t.kind));
                    }
                }
            }
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
    fn slot_for(&mut self, (tag, key): (u8, u32)) -> Option<&mut Slot<DEPTH>> {
        let (mut free, mut lru, mut oldest) = (None, None, u64::MAX);
        for (i, s) in self.slots.iter().enumerate() {
            if s.tag == tag && s.key == key {
                return self.slots.get_mut(i);
            }
            if s.tag == KEY_FREE {
                free = free.or(Some(i));
            } else if lru.is_none() || s.newest() < oldest {
                (lru, oldest) = (Some(i), s.newest());
            }
        }
        let slot = self.slots.get_mut(free.or(lru)?)?;
        slot.reset(tag, key);
        Some(slot)
    }

    fn start(
        &mut self,
        c: &TriggerConfig,
        reason: Reason,
        now: u64,
        seq: Option<u64>,
        session: Option<SessionId>,
    ) -> Action {
        if self.flags & (CAPTURING | DUE) != 0 {
            // Joins the open window's (or the due) dump; a threshold says more than the
            // single failed login that opened the window (a brute force, not a typo), so it
            // names the dump.
            if matches!(reason, Reason::Threshold(_))
                && !matches!(self.reason, Reason::Threshold(_))
            {
                self.reason = reason;
            }
            return Action::None;
        }
        if !self.rate_allows(c, now) {
            self.suppressed = self.suppressed.saturating_add(1);
            return Action::Suppressed(reason);
        }
        let session = if c.scope_session { session } else { None };
        self.reason = reason;
        self.time = now;
        self.seq = seq.unwrap_or(0);
        self.session = session.map_or(0, |s| s.0);
        self.left = c.post_records.min(u32::from(u16::MAX)) as u16;
        self.flags = ADMITTED
            | CAPTURING
            | if seq.is_some() { HAS_SEQ } else { 0 }
            | if session.is_some() { HAS_SESSION } else { 0 };
        if c.post_records == 0 && c.post_ticks == 0 {
            return self.finish();
        }
        Action::Start(reason)
    }

    /// Closes the window: its dump is due (a death taking over a due dump keeps its index).
    fn finish(&mut self) -> Action {
        if !self.is_due() {
            self.dumps = self.dumps.wrapping_add(1);
        }
        self.flags = (self.flags & !CAPTURING) | DUE;
        Action::Dump(self.reason)
    }

    /// Token bucket (GCRA): takes a token at `now` if there is one.
    fn rate_allows(&mut self, c: &TriggerConfig, now: u64) -> bool {
        let Some(r) = c.rate else {
            return true;
        };
        if self.flags & ADMITTED != 0 && now < self.time.saturating_add(r.cooldown) {
            return false;
        }
        // The interval rounded up, and the burst set to exactly `dumps`, so that neither
        // rounding nor a window shorter than `dumps` ticks lets more dumps through than
        // documented.
        if self.tat > now.saturating_add(r.tolerance) {
            return false;
        }
        self.tat = self.tat.max(now).saturating_add(r.interval);
        true
    }
}

/// The trigger state machine: a [`TriggerConfig`] and a [`TriggerState`]. `SLOTS` peers are
/// tracked for a per-peer threshold (the least recently seen is forgotten first); `DEPTH`
/// bounds a threshold's count.
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
/// assert_eq!(m.on_record(&fail, 60), Action::Dump(Reason::Threshold(Kind::AUTH_FAILURE)));
/// let order = m.take_order().unwrap();
/// assert_eq!((order.time, order.index), (60, 0));
/// ```
#[derive(Clone, Debug)]
pub struct TriggerMachine<const SLOTS: usize = 4, const DEPTH: usize = 8> {
    config: TriggerConfig,
    state: TriggerState<SLOTS, DEPTH>,
}

impl<const SLOTS: usize, const DEPTH: usize> TriggerMachine<SLOTS, DEPTH> {
    /// A machine in the idle state.
    pub const fn new(config: TriggerConfig) -> Self {
        TriggerMachine {
            config,
            state: TriggerState::new(),
        }
    }

    /// Its configuration.
    pub const fn config(&self) -> &TriggerConfig {
        &self.config
    }

    /// Triggers refused by the rate limit since the last dump.
    pub const fn suppressed(&self) -> u32 {
        self.state.suppressed()
    }

    /// Whether a post-trigger window is open.
    pub const fn is_capturing(&self) -> bool {
        self.state.is_capturing()
    }

    /// Whether a dump is due (its order not taken yet).
    pub const fn is_due(&self) -> bool {
        self.state.is_due()
    }

    /// Takes the order of the dump that is due (after [`Action::Dump`]); see
    /// [`TriggerState::take_order`].
    pub fn take_order(&mut self) -> Option<DumpOrder> {
        self.state.take_order()
    }

    /// Feeds a record seen at `now`.
    pub fn on_record(&mut self, rec: &RecordInfo<'_>, now: u64) -> Action {
        self.state.on_record(&self.config, rec, now)
    }

    /// Reports a cause that is not a record: [`Reason::UntimelyDeath`], [`Reason::Signal`],
    /// [`Reason::Policy`], [`Reason::Manual`] (or any other). Returns [`Action::None`] if that
    /// criterion is switched off or a window is open or a dump due (it joins that dump),
    /// except a death, which is due at once (taking over an open window or a due dump). A
    /// window whose deadline has passed is closed first: its [`Action::Dump`] is returned
    /// and this trigger joins it.
    pub fn fire(&mut self, reason: Reason, now: u64) -> Action {
        self.state.fire(&self.config, reason, now)
    }

    /// Lets time pass: closes a timed window whose end has come.
    pub fn poll(&mut self, now: u64) -> Action {
        self.state.poll(&self.config, now)
    }

    /// The tick at which [`poll`](Self::poll) should next be called, if a timed window is open.
    pub fn deadline(&self) -> Option<u64> {
        self.state.deadline(&self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_interval_is_rounded_up_and_never_zero() {
        assert_eq!(RateLimit::new(3, 10, 0).interval(), 4);
        assert_eq!(RateLimit::new(4, 2, 0).interval(), 1);
        assert_eq!(RateLimit::new(0, 10, 0).dumps(), 1);
        assert_eq!(RateLimit::new(1, 0, 0).interval(), 1);
    }

    #[test]
    fn ipv4_keys_are_exact_and_distinct_from_none() {
        assert_eq!(
            peer_key(Some(&Addr::V4([10, 0, 0, 1]))),
            (KEY_V4, 0x0a00_0001)
        );
        assert_ne!(peer_key(None), peer_key(Some(&Addr::V4([0; 4]))));
        assert_ne!(
            peer_key(Some(&Addr::V6([0; 16]))),
            peer_key(Some(&Addr::V4([0; 4])))
        );
    }
}
