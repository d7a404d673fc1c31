//! The recorder: ring, capture filter and trigger machine behind one critical section.

use core::cell::RefCell;

use critical_section::Mutex;
use embedded_io::Write;

use crate::dump::{self, Build, ClockInfo, DumpError, DumpHeader, DumpSummary, Source};
use crate::encode::{Encode, Raw};
use crate::event::{Event, Field, Fields, Log};
use crate::ring::{Cursor, Read, RecordMeta, Ring, RingError, RingStats};
use crate::trigger::{Action, DumpOrder, Reason, RecordInfo, TriggerConfig, TriggerState};
use crate::{Kind, Level, SessionId};

/// What is recorded at all (ProFTPD's `ForensicLogCapture`, Prosody's `levels`). Records
/// left out still feed the triggers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureFilter {
    /// Lowest level recorded.
    pub min_level: Level,
    /// Bit `k` set: kind `k` is recorded. Kinds 32 and above are always recorded.
    pub kinds: u32,
}

impl CaptureFilter {
    /// Records everything.
    pub const ALL: CaptureFilter = CaptureFilter {
        min_level: Level::Trace,
        kinds: u32::MAX,
    };

    /// Whether a record of this kind and level is kept.
    pub const fn allows(&self, kind: Kind, level: Level) -> bool {
        (level as u8) >= (self.min_level as u8) && (kind.0 >= 32 || self.kinds & (1 << kind.0) != 0)
    }
}

/// How a [`Recorder`] behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecorderConfig {
    /// What is recorded.
    pub capture: CaptureFilter,
    /// When to dump.
    pub trigger: TriggerConfig,
    /// Keep at most this many records (0: as many as fit).
    pub max_records: usize,
}

impl RecorderConfig {
    /// Record everything; [`TriggerConfig::DEFAULT`].
    pub const DEFAULT: RecorderConfig = RecorderConfig {
        capture: CaptureFilter::ALL,
        trigger: TriggerConfig::DEFAULT,
        max_records: 0,
    };
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A record could not be stored. The trigger machine saw it all the same: `action` says what
/// to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordError {
    /// Why it was not stored.
    pub error: RingError,
    /// What the trigger machine decided.
    pub action: Action,
}

impl core::fmt::Display for RecordError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "record not stored: {}", self.error)
    }
}

impl core::error::Error for RecordError {}

/// Counters of a recorder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// The ring's; its `rejected` counts the records that could not be stored (too large,
    /// unencodable). A re-entrant call is refused with [`RingError::Busy`] and cannot be
    /// counted.
    pub ring: RingStats,
    /// Records dropped by an adapter before reaching the recorder (see [`Recorder::note_dropped`]).
    pub dropped: u64,
}

struct Inner<const N: usize, const SLOTS: usize, const DEPTH: usize> {
    ring: Ring<N>,
    trigger: TriggerState<SLOTS, DEPTH>,
    /// Inside the cell, beside `dropped`: the two fill one 8-byte unit of the cell's
    /// alignment, where outside it the reference would add 8 bytes (4 and padding).
    config: &'static RecorderConfig,
    dropped: u32,
}

/// A flight recorder: an `N`-byte ring, a capture filter and a trigger machine, shared
/// through `critical-section` (usable as a `static`). See the crate docs for an example.
///
/// Each call holds the critical section for one record (push and trigger evaluation), so
/// sequence numbers and trigger decisions agree. Time comes from the caller (`now`, in the
/// platform [`crate::Clock`]'s ticks), which keeps the recorder free of platform code.
///
/// The configuration stays where it is (a `&'static`, in flash on an MCU); the recorder's
/// own RAM beyond the ring's `N` bytes is 88 bytes on a 32-bit MCU, plus `8 * DEPTH + 16`
/// for each of the `SLOTS` threshold slots. A threshold needs at least one slot (one for a
/// global count, one per peer tracked at once for a per-peer count); a recorder configured
/// with a threshold and no slot does not build.
pub struct Recorder<const N: usize, const SLOTS: usize = 0, const DEPTH: usize = 8> {
    inner: Mutex<RefCell<Inner<N, SLOTS, DEPTH>>>,
}

impl<const N: usize, const SLOTS: usize, const DEPTH: usize> Recorder<N, SLOTS, DEPTH> {
    /// An empty recorder.
    ///
    /// # Panics
    ///
    /// If `config` has a threshold and `SLOTS` is 0: when building a `static`, this is a
    /// compile-time error.
    pub const fn new(config: &'static RecorderConfig) -> Self {
        assert!(
            SLOTS > 0 || config.trigger.threshold.is_none(),
            "a threshold needs SLOTS > 0: Recorder<N, 1> counts globally"
        );
        Recorder {
            inner: Mutex::new(RefCell::new(Inner {
                ring: Ring::new(),
                trigger: TriggerState::new(),
                config,
                dropped: 0,
            })),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner<N, SLOTS, DEPTH>) -> R) -> Result<R, RingError> {
        critical_section::with(|cs| {
            let mut inner = self
                .inner
                .borrow(cs)
                .try_borrow_mut()
                .map_err(|_| RingError::Busy)?;
            Ok(f(&mut inner))
        })
    }

    /// Records a typed event at `now` and feeds it to the triggers.
    pub fn record<E: Event>(
        &self,
        now: u64,
        session: Option<SessionId>,
        event: &E,
    ) -> Result<Action, RecordError> {
        let meta = RecordMeta {
            time: now,
            level: event.level(),
            kind: E::KIND,
            session,
        };
        self.store(&meta, event.peer(), event.name(), event)
    }

    /// Records a log line (a [`Log`] event).
    pub fn log(
        &self,
        now: u64,
        level: Level,
        session: Option<SessionId>,
        target: &str,
        message: &str,
        fields: &[Field<'_>],
    ) -> Result<Action, RecordError> {
        self.record(
            now,
            session,
            &Log {
                level,
                target,
                message,
                fields: Fields::Slice(fields),
            },
        )
    }

    /// Records a raw frame (e.g. defmt bytes) as a [`Kind::FRAME`] record.
    pub fn frame(
        &self,
        now: u64,
        level: Level,
        session: Option<SessionId>,
        bytes: &[u8],
    ) -> Result<Action, RecordError> {
        let meta = RecordMeta {
            time: now,
            level,
            kind: Kind::FRAME,
            session,
        };
        self.store(&meta, None, None, &Raw(bytes))
    }

    /// Not generic over the event type (its encoding is called through `dyn`): one copy for
    /// every kind of record, which on a Cortex-M saves more code than the indirect call
    /// costs in time.
    fn store(
        &self,
        meta: &RecordMeta,
        peer: Option<&crate::event::Addr>,
        name: Option<&str>,
        payload: &dyn Encode,
    ) -> Result<Action, RecordError> {
        self.with(|inner| {
            let config = inner.config;
            let ring = Some(&mut inner.ring);
            store(ring, &mut inner.trigger, config, meta, peer, name, payload)
        })
        .unwrap_or(Err(RecordError {
            error: RingError::Busy,
            action: Action::None,
        }))
    }

    /// Reports a cause that is not a record (death, signal, policy, manual); see
    /// [`crate::TriggerMachine::fire`].
    pub fn fire(&self, reason: Reason, now: u64) -> Action {
        self.with(|inner| inner.trigger.fire(&inner.config.trigger, reason, now))
            .unwrap_or(Action::None)
    }

    /// Lets time pass (closes a timed post-trigger window).
    pub fn poll(&self, now: u64) -> Action {
        self.with(|inner| inner.trigger.poll(&inner.config.trigger, now))
            .unwrap_or(Action::None)
    }

    /// When [`poll`](Self::poll) should next be called, if a timed window is open.
    pub fn deadline(&self) -> Option<u64> {
        self.with(|inner| inner.trigger.deadline(&inner.config.trigger))
            .ok()
            .flatten()
    }

    /// The order of the dump that is due (after an [`Action::Dump`]), taken: the next
    /// trigger opens a new window. [`dump_due`](Self::dump_due) takes and writes it.
    pub fn take_order(&self) -> Option<DumpOrder> {
        self.with(|inner| inner.trigger.take_order()).ok().flatten()
    }

    /// Writes the dump that is due, if one is (see [`dump`](Self::dump)); `Ok(None)` if
    /// none is. The order is taken in the same critical section that starts the dump.
    pub fn dump_due<W: Write>(
        &self,
        clock: ClockInfo,
        build: &Build<'_>,
        w: &mut W,
        scratch: &mut [u8],
    ) -> Result<Option<DumpSummary>, DumpError<W::Error>> {
        let (order, start) = self.with(|inner| (inner.trigger.take_order(), inner.start()))?;
        match order {
            Some(order) => self
                .write(&order, start, clock, build, w, scratch)
                .map(Some),
            None => Ok(None),
        }
    }

    /// Counts `n` records an adapter dropped before they reached the recorder (a full queue);
    /// reported in the next dump's header.
    pub fn note_dropped(&self, n: u64) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let _ = self.with(|inner| inner.dropped = inner.dropped.saturating_add(n));
    }

    /// Counters.
    pub fn stats(&self) -> Result<RecorderStats, RingError> {
        self.with(|inner| RecorderStats {
            ring: inner.ring.stats(),
            dropped: u64::from(inner.dropped),
        })
    }

    /// Writes the dump `order` asks for to `w` (see [`dump::write_dump`]). `scratch` holds one
    /// record at a time.
    pub fn dump<W: Write>(
        &self,
        order: &DumpOrder,
        clock: ClockInfo,
        build: &Build<'_>,
        w: &mut W,
        scratch: &mut [u8],
    ) -> Result<DumpSummary, DumpError<W::Error>> {
        let start = self.with(|inner| inner.start())?;
        self.write(order, start, clock, build, w, scratch)
    }

    fn write<W: Write>(
        &self,
        order: &DumpOrder,
        start: DumpStart,
        clock: ClockInfo,
        build: &Build<'_>,
        w: &mut W,
        scratch: &mut [u8],
    ) -> Result<DumpSummary, DumpError<W::Error>> {
        let header = DumpHeader::for_order(order, start.named, start.lost, clock, *build);
        dump::write_dump_from(w, self, header, start.stats, start.cursor, scratch)
    }
}

/// What a dump starts from, taken in one critical section.
struct DumpStart {
    named: &'static [&'static str],
    lost: u64,
    stats: RingStats,
    cursor: Cursor,
}

impl<const N: usize, const SLOTS: usize, const DEPTH: usize> Inner<N, SLOTS, DEPTH> {
    fn start(&self) -> DumpStart {
        let stats = self.ring.stats();
        DumpStart {
            named: self.config.trigger.named,
            lost: stats.rejected + u64::from(self.dropped),
            stats,
            cursor: self.ring.oldest(),
        }
    }
}

/// One record through the capture filter, the ring and the trigger machine: what a
/// [`Recorder`] does inside its critical section, for recorders that keep their ring
/// elsewhere (`flightrec-flash`'s ring in memory that survives a reset; `None` while it is
/// not attached, which refuses the record with [`RingError::Busy`]). `payload` is encoded
/// through `dyn`, so that this code exists once for every event type (and [`Raw`] bytes).
pub fn store<const N: usize, const SLOTS: usize, const DEPTH: usize>(
    ring: Option<&mut Ring<N>>,
    trigger: &mut TriggerState<SLOTS, DEPTH>,
    config: &RecorderConfig,
    meta: &RecordMeta,
    peer: Option<&crate::event::Addr>,
    name: Option<&str>,
    payload: &dyn Encode,
) -> Result<Action, RecordError> {
    let stored = match ring {
        _ if !config.capture.allows(meta.kind, meta.level) => Ok(None),
        Some(ring) => {
            let stored = ring.push_event(meta, payload);
            // Trimmed after the push, so that a record refused as too large costs nothing.
            if stored.is_ok() && config.max_records != 0 {
                ring.retain_last(config.max_records);
            }
            stored.map(Some)
        }
        None => Err(RingError::Busy),
    };
    let action = conclude(trigger, config, meta, peer, name, stored.unwrap_or(None));
    match stored {
        Ok(_) => Ok(action),
        Err(error) => Err(RecordError { error, action }),
    }
}

/// Feeds a record, stored (`seq`) or not, to the trigger machine. Out of line: its frame is
/// not on the stack while the record is copied into the ring.
#[inline(never)]
fn conclude<const SLOTS: usize, const DEPTH: usize>(
    trigger: &mut TriggerState<SLOTS, DEPTH>,
    config: &RecorderConfig,
    meta: &RecordMeta,
    peer: Option<&crate::event::Addr>,
    name: Option<&str>,
    seq: Option<u64>,
) -> Action {
    let info = RecordInfo::of(meta, seq, peer, name);
    trigger.on_record(&config.trigger, &info, meta.time)
}

impl<const N: usize, const SLOTS: usize, const DEPTH: usize> Source for Recorder<N, SLOTS, DEPTH> {
    fn stats(&self) -> Result<RingStats, RingError> {
        self.with(|inner| inner.ring.stats())
    }
    fn oldest(&self) -> Result<Cursor, RingError> {
        self.with(|inner| inner.ring.oldest())
    }
    fn read(&self, cursor: &mut Cursor, out: &mut [u8]) -> Result<Read, RingError> {
        self.with(|inner| inner.ring.read(cursor, out))?
    }
}
