//! The recorder: ring, capture filter and trigger machine behind one critical section.

use core::cell::RefCell;

use critical_section::Mutex;
use embedded_io::Write;

use crate::dump::{self, Build, ClockInfo, DumpError, DumpHeader, DumpSummary, Source};
use crate::event::{Event, Field, Fields, Log};
use crate::ring::{Cursor, PushError, Read, RecordMeta, Ring, RingStats};
use crate::trigger::{Action, DumpOrder, Reason, RecordInfo, TriggerConfig, TriggerMachine};
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
    pub error: PushError,
    /// What the trigger machine decided.
    pub action: Action,
}

/// Counters of a recorder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// The ring's.
    pub ring: RingStats,
    /// Records the capture filter left out.
    pub filtered: u64,
    /// Records that could not be stored (too large, unencodable). A re-entrant call is
    /// refused with [`PushError::Busy`] and cannot be counted here.
    pub failed: u64,
    /// Records dropped by an adapter before reaching the recorder (see [`Recorder::note_dropped`]).
    pub dropped: u64,
}

struct Inner<const N: usize, const SLOTS: usize, const DEPTH: usize> {
    ring: Ring<N>,
    trigger: TriggerMachine<SLOTS, DEPTH>,
    filtered: u64,
    failed: u64,
    dropped: u64,
}

/// A flight recorder: an `N`-byte ring, a capture filter and a trigger machine, shared
/// through `critical-section` (usable as a `static`). See the crate docs for an example.
///
/// Each call holds the critical section for one record (push and trigger evaluation), so
/// sequence numbers and trigger decisions agree. Time comes from the caller (`now`, in the
/// platform [`crate::Clock`]'s ticks), which keeps the recorder free of platform code.
pub struct Recorder<const N: usize, const SLOTS: usize = 4, const DEPTH: usize = 8> {
    inner: Mutex<RefCell<Inner<N, SLOTS, DEPTH>>>,
    capture: CaptureFilter,
}

impl<const N: usize, const SLOTS: usize, const DEPTH: usize> Recorder<N, SLOTS, DEPTH> {
    /// An empty recorder.
    pub const fn new(config: RecorderConfig) -> Self {
        Recorder {
            inner: Mutex::new(RefCell::new(Inner {
                ring: Ring::with_max_records(config.max_records),
                trigger: TriggerMachine::new(config.trigger),
                filtered: 0,
                failed: 0,
                dropped: 0,
            })),
            capture: config.capture,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner<N, SLOTS, DEPTH>) -> R) -> Result<R, PushError> {
        critical_section::with(|cs| {
            let mut inner = self
                .inner
                .borrow(cs)
                .try_borrow_mut()
                .map_err(|_| PushError::Busy)?;
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
        self.store(&meta, event.peer(), event.name(), |ring| {
            ring.push_serialize(&meta, event)
        })
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
        self.store(&meta, None, None, |ring| ring.push(&meta, bytes))
    }

    fn store(
        &self,
        meta: &RecordMeta,
        peer: Option<crate::event::Addr>,
        name: Option<&str>,
        push: impl FnOnce(&mut Ring<N>) -> Result<u64, PushError>,
    ) -> Result<Action, RecordError> {
        let capture = self.capture.allows(meta.kind, meta.level);
        let result = self.with(|inner| {
            let stored = if capture {
                push(&mut inner.ring).map(Some)
            } else {
                inner.filtered += 1;
                Ok(None)
            };
            if stored.is_err() {
                inner.failed += 1;
            }
            let info = RecordInfo {
                seq: stored.unwrap_or(None),
                kind: meta.kind,
                level: meta.level,
                session: meta.session,
                peer,
                name,
            };
            let action = inner.trigger.on_record(&info, meta.time);
            match stored {
                Ok(_) => Ok(action),
                Err(error) => Err(RecordError { error, action }),
            }
        });
        result.unwrap_or(Err(RecordError {
            error: PushError::Busy,
            action: Action::None,
        }))
    }

    /// Reports a cause that is not a record (death, signal, policy, manual); see
    /// [`TriggerMachine::fire`].
    pub fn fire(&self, reason: Reason, now: u64) -> Action {
        self.with(|inner| inner.trigger.fire(reason, now))
            .unwrap_or(Action::None)
    }

    /// Lets time pass (closes a timed post-trigger window).
    pub fn poll(&self, now: u64) -> Action {
        self.with(|inner| inner.trigger.poll(now))
            .unwrap_or(Action::None)
    }

    /// When [`poll`](Self::poll) should next be called, if a timed window is open.
    pub fn deadline(&self) -> Option<u64> {
        self.with(|inner| inner.trigger.deadline()).ok().flatten()
    }

    /// Counts `n` records an adapter dropped before they reached the recorder (a full queue);
    /// reported in the next dump's header.
    pub fn note_dropped(&self, n: u64) {
        let _ = self.with(|inner| inner.dropped = inner.dropped.saturating_add(n));
    }

    /// Counters.
    pub fn stats(&self) -> Result<RecorderStats, PushError> {
        self.with(|inner| RecorderStats {
            ring: inner.ring.stats(),
            filtered: inner.filtered,
            failed: inner.failed,
            dropped: inner.dropped,
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
        let detail = match order.reason {
            Reason::Named(i) => self
                .with(|inner| inner.trigger.config().named.get(usize::from(i)).copied())
                .ok()
                .flatten()
                .unwrap_or(""),
            _ => "",
        };
        let stats = self.stats()?;
        let header = DumpHeader {
            reason: order.reason,
            detail,
            trigger_time: order.time,
            trigger_seq: order.seq,
            clock,
            first_seq: 0,
            next_seq: 0,
            // `failed` already counts the ring's rejections: every push goes through `store`.
            lost: stats.failed.saturating_add(stats.dropped),
            suppressed: order.suppressed,
            scope: order.session,
            index: order.index,
            capacity: 0,
            build: *build,
        };
        dump::write_dump(w, self, header, scratch)
    }
}

impl<const N: usize, const SLOTS: usize, const DEPTH: usize> Source for Recorder<N, SLOTS, DEPTH> {
    fn stats(&self) -> Result<RingStats, PushError> {
        self.with(|inner| inner.ring.stats())
    }
    fn oldest(&self) -> Result<Cursor, PushError> {
        self.with(|inner| inner.ring.oldest())
    }
    fn read(&self, cursor: &mut Cursor, out: &mut [u8]) -> Result<Read, PushError> {
        self.with(|inner| inner.ring.read(cursor, out))?
    }
}
