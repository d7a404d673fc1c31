//! The recorder: ring, capture filter and trigger machine behind one critical section.
//!
//! One type, [`RecorderInner`], generic over where its ring lives ([`RingStorage`]: an owned
//! array, or a ring [`Attached`] at run time, e.g. in RAM that survives a reset) and over a
//! configuration known at compile time ([`RecorderSettings`]), in the manner of heapless's
//! storage-generic `Deque`. [`Recorder`] and [`AttachedRecorder`] name the two storages. A
//! recorder's initial value is all zero bytes, so a `static` one lands in `.bss` and costs
//! no flash for an initial image.

use core::cell::RefCell;
use core::marker::PhantomData;

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

/// How a recorder behaves; a recorder takes it from its [`RecorderSettings`] type.
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
#[non_exhaustive]
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
    /// Records dropped by an adapter before reaching the recorder (see
    /// [`RecorderInner::note_dropped`]), and records refused while no ring was attached.
    pub dropped: u64,
}

/// A recorder's configuration as a type: a zero-sized type naming a constant, so that the
/// recorder holds no reference to it (its `static` stays all zero) and the compiler folds
/// what the configuration leaves out.
///
/// ```
/// use flightrec_core::{Recorder, RecorderConfig, RecorderSettings, TriggerConfig};
///
/// struct Console;
/// impl RecorderSettings for Console {
///     const CONFIG: RecorderConfig = RecorderConfig {
///         trigger: TriggerConfig { post_records: 2, ..TriggerConfig::DEFAULT },
///         ..RecorderConfig::DEFAULT
///     };
/// }
/// static REC: Recorder<1024, Console> = Recorder::new();
/// ```
pub trait RecorderSettings {
    /// The configuration.
    const CONFIG: RecorderConfig;
}

/// [`RecorderConfig::DEFAULT`] as [`RecorderSettings`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Defaults;

impl RecorderSettings for Defaults {
    const CONFIG: RecorderConfig = RecorderConfig::DEFAULT;
}

/// Where a recorder's `N`-byte ring lives.
pub trait RingStorage<const N: usize> {
    /// The storage before anything is recorded: all zero bytes.
    const EMPTY: Self;
    /// The ring, if there is one.
    fn ring(&self) -> Option<&Ring<N>>;
    /// The ring, mutable, if there is one.
    fn ring_mut(&mut self) -> Option<&mut Ring<N>>;
}

/// The ring inside the recorder.
impl<const N: usize> RingStorage<N> for Ring<N> {
    const EMPTY: Self = Ring::new();
    #[inline(always)]
    fn ring(&self) -> Option<&Ring<N>> {
        Some(self)
    }
    #[inline(always)]
    fn ring_mut(&mut self) -> Option<&mut Ring<N>> {
        Some(self)
    }
}

/// A ring attached at run time with [`RecorderInner::attach`]: memory that survives a reset
/// (`flightrec-flash`'s `persist`), or on a host a ring allocated zeroed and leaked. Until
/// then records are refused with [`RingError::Busy`] and counted in
/// [`RecorderStats::dropped`].
pub struct Attached<const N: usize>(Option<&'static mut Ring<N>>);

impl<const N: usize> RingStorage<N> for Attached<N> {
    const EMPTY: Self = Attached(None);
    #[inline(always)]
    fn ring(&self) -> Option<&Ring<N>> {
        self.0.as_deref()
    }
    #[inline(always)]
    fn ring_mut(&mut self) -> Option<&mut Ring<N>> {
        self.0.as_deref_mut()
    }
}

/// A flight recorder over its own `N`-byte ring; see [`RecorderInner`].
pub type Recorder<const N: usize, C = Defaults, const SLOTS: usize = 0, const DEPTH: usize = 8> =
    RecorderInner<N, Ring<N>, C, SLOTS, DEPTH>;

/// A flight recorder over an `N`-byte ring [`Attached`] at run time; see [`RecorderInner`].
pub type AttachedRecorder<
    const N: usize,
    C = Defaults,
    const SLOTS: usize = 0,
    const DEPTH: usize = 8,
> = RecorderInner<N, Attached<N>, C, SLOTS, DEPTH>;

struct State<S, const SLOTS: usize, const DEPTH: usize> {
    ring: S,
    trigger: TriggerState<SLOTS, DEPTH>,
    dropped: u32,
}

/// A flight recorder: an `N`-byte ring kept in storage `S`, a capture filter and a trigger
/// machine configured by `C`, shared through `critical-section` (usable as a `static`).
/// Use it through [`Recorder`] or [`AttachedRecorder`]; see the crate docs for an example.
///
/// Each call holds the critical section for one record (push and trigger evaluation), so
/// sequence numbers and trigger decisions agree. Time comes from the caller (`now`, in the
/// platform [`crate::Clock`]'s ticks), which keeps the recorder free of platform code.
///
/// Its RAM beyond the ring's `N` bytes is 88 bytes on a 32-bit MCU, plus `8 * DEPTH + 16`
/// for each of the `SLOTS` threshold slots; the configuration is a constant in flash. A
/// threshold needs at least one slot (one for a global count, one per peer tracked at
/// once for a per-peer count); a recorder configured with a threshold and no slot does
/// not build.
pub struct RecorderInner<const N: usize, S, C, const SLOTS: usize = 0, const DEPTH: usize = 8> {
    inner: Mutex<RefCell<State<S, SLOTS, DEPTH>>>,
    settings: PhantomData<fn() -> C>,
}

impl<const N: usize, S, C, const SLOTS: usize, const DEPTH: usize>
    RecorderInner<N, S, C, SLOTS, DEPTH>
where
    S: RingStorage<N>,
    C: RecorderSettings,
{
    /// The configuration, as a reference to one constant.
    const CONFIG: &'static RecorderConfig = &C::CONFIG;
    const SLOTS_FIT: () = assert!(
        SLOTS > 0 || C::CONFIG.trigger.threshold.is_none(),
        "a threshold needs SLOTS > 0: Recorder<N, C, 1> counts globally"
    );

    /// An empty recorder (all zero bytes: a `static` one is in `.bss`). A configuration
    /// with a threshold and `SLOTS` 0 does not build:
    ///
    /// ```compile_fail
    /// # use flightrec_core::{Kind, Recorder, RecorderConfig, RecorderSettings, Threshold,
    /// #     TriggerConfig};
    /// struct Brute;
    /// impl RecorderSettings for Brute {
    ///     const CONFIG: RecorderConfig = RecorderConfig {
    ///         trigger: TriggerConfig {
    ///             threshold: Some(Threshold {
    ///                 kind: Kind::AUTH_FAILURE, count: 5, window: 1_000, per_peer: false,
    ///             }),
    ///             ..TriggerConfig::DEFAULT
    ///         },
    ///         ..RecorderConfig::DEFAULT
    ///     };
    /// }
    /// static REC: Recorder<256, Brute> = Recorder::new(); // no slot to count in
    /// ```
    ///
    /// With one slot (`Recorder<256, Brute, 1>`, a global count) it builds.
    pub const fn new() -> Self {
        let () = Self::SLOTS_FIT;
        RecorderInner {
            inner: Mutex::new(RefCell::new(State {
                ring: S::EMPTY,
                trigger: TriggerState::new(),
                dropped: 0,
            })),
            settings: PhantomData,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State<S, SLOTS, DEPTH>) -> R) -> Result<R, RingError> {
        critical_section::with(|cs| {
            let mut inner = self
                .inner
                .borrow(cs)
                .try_borrow_mut()
                .map_err(|_| RingError::Busy)?;
            Ok(f(&mut inner))
        })
    }

    /// Runs `f` on the ring, if there is one.
    fn with_ring<R>(&self, f: impl FnOnce(&mut Ring<N>) -> R) -> Result<R, RingError> {
        self.with(|inner| inner.ring.ring_mut().map(f))?
            .ok_or(RingError::Busy)
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
        self.with(|inner| inner.store(Self::CONFIG, meta, peer, name, payload))
            .unwrap_or(Err(RecordError {
                error: RingError::Busy,
                action: Action::None,
            }))
    }

    /// Reports a cause that is not a record (death, signal, policy, manual); see
    /// [`crate::TriggerMachine::fire`].
    pub fn fire(&self, reason: Reason, now: u64) -> Action {
        self.with(|inner| inner.trigger.fire(&Self::CONFIG.trigger, reason, now))
            .unwrap_or(Action::None)
    }

    /// Lets time pass (closes a timed post-trigger window).
    pub fn poll(&self, now: u64) -> Action {
        self.with(|inner| inner.trigger.poll(&Self::CONFIG.trigger, now))
            .unwrap_or(Action::None)
    }

    /// When [`poll`](Self::poll) should next be called, if a timed window is open.
    pub fn deadline(&self) -> Option<u64> {
        self.with(|inner| inner.trigger.deadline(&Self::CONFIG.trigger))
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
            Some(order) => {
                let header = Self::header(&order, clock, build);
                self.write(header, start?, w, scratch).map(Some)
            }
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
        self.with(|inner| {
            Ok(RecorderStats {
                ring: inner.ring.ring().ok_or(RingError::Busy)?.stats(),
                dropped: u64::from(inner.dropped),
            })
        })?
    }

    /// Drops every record; sequence numbers go on (see [`Ring::clear`]).
    pub fn clear(&self) -> Result<(), RingError> {
        self.with_ring(|ring| ring.clear())
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
        self.dump_with_header(Self::header(order, clock, build), w, scratch)
    }

    /// Writes a dump with `header` (its reason, clock, build, ...) to `w`: its lost count is
    /// raised by the records this recorder lost, its positions and capacity are the ring's,
    /// taken in one critical section. For dumps no order asked for (a death found at boot).
    pub fn dump_with_header<W: Write>(
        &self,
        header: DumpHeader<'_>,
        w: &mut W,
        scratch: &mut [u8],
    ) -> Result<DumpSummary, DumpError<W::Error>> {
        let start = self.with(|inner| inner.start())??;
        self.write(header, start, w, scratch)
    }

    fn header<'b>(order: &DumpOrder, clock: ClockInfo, build: &Build<'b>) -> DumpHeader<'b> {
        DumpHeader::for_order(order, Self::CONFIG.trigger.named, 0, clock, *build)
    }

    fn write<W: Write>(
        &self,
        mut header: DumpHeader<'_>,
        start: DumpStart,
        w: &mut W,
        scratch: &mut [u8],
    ) -> Result<DumpSummary, DumpError<W::Error>> {
        header.lost = header.lost.saturating_add(start.lost);
        dump::write_dump_from(w, self, header, start.stats, start.cursor, scratch)
    }
}

impl<const N: usize, C: RecorderSettings, const SLOTS: usize, const DEPTH: usize>
    AttachedRecorder<N, C, SLOTS, DEPTH>
{
    /// Starts recording into `ring` (it replaces a ring attached before). Refused with
    /// [`RingError::Busy`] from inside a recorder's call (an interrupt that preempted one).
    pub fn attach(&self, ring: &'static mut Ring<N>) -> Result<(), RingError> {
        self.with(|inner| inner.ring = Attached(Some(ring)))
    }
}

impl<const N: usize, S, C, const SLOTS: usize, const DEPTH: usize> Default
    for RecorderInner<N, S, C, SLOTS, DEPTH>
where
    S: RingStorage<N>,
    C: RecorderSettings,
{
    fn default() -> Self {
        Self::new()
    }
}

/// What a dump starts from, taken in one critical section.
struct DumpStart {
    lost: u64,
    stats: RingStats,
    cursor: Cursor,
}

impl<S, const SLOTS: usize, const DEPTH: usize> State<S, SLOTS, DEPTH> {
    fn start<const N: usize>(&self) -> Result<DumpStart, RingError>
    where
        S: RingStorage<N>,
    {
        let ring = self.ring.ring().ok_or(RingError::Busy)?;
        let stats = ring.stats();
        Ok(DumpStart {
            lost: stats.rejected.saturating_add(u64::from(self.dropped)),
            stats,
            cursor: ring.oldest(),
        })
    }

    /// One record through the capture filter, the ring and the trigger machine. `payload`
    /// is encoded through `dyn`, so that this code exists once for every event type (and
    /// [`Raw`] bytes).
    fn store<const N: usize>(
        &mut self,
        config: &RecorderConfig,
        meta: &RecordMeta,
        peer: Option<&crate::event::Addr>,
        name: Option<&str>,
        payload: &dyn Encode,
    ) -> Result<Action, RecordError>
    where
        S: RingStorage<N>,
    {
        let stored = match self.ring.ring_mut() {
            _ if !config.capture.allows(meta.kind, meta.level) => Ok(None),
            Some(ring) => {
                let stored = ring.push_event(meta, payload);
                // Trimmed after the push, so that a record refused as too large costs nothing.
                if stored.is_ok() && config.max_records != 0 {
                    ring.retain_last(config.max_records);
                }
                stored.map(Some)
            }
            None => {
                self.dropped = self.dropped.saturating_add(1);
                Err(RingError::Busy)
            }
        };
        let action = conclude(
            &mut self.trigger,
            config,
            meta,
            peer,
            name,
            stored.unwrap_or(None),
        );
        match stored {
            Ok(_) => Ok(action),
            Err(error) => Err(RecordError { error, action }),
        }
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

impl<const N: usize, S, C, const SLOTS: usize, const DEPTH: usize> Source
    for RecorderInner<N, S, C, SLOTS, DEPTH>
where
    S: RingStorage<N>,
    C: RecorderSettings,
{
    fn stats(&self) -> Result<RingStats, RingError> {
        self.with_ring(|ring| ring.stats())
    }
    fn oldest(&self) -> Result<Cursor, RingError> {
        self.with_ring(|ring| ring.oldest())
    }
    fn read(&self, cursor: &mut Cursor, out: &mut [u8]) -> Result<Read, RingError> {
        self.with_ring(|ring| ring.read(cursor, out))?
    }
}
