//! A recorder whose ring survives a reset: it lives in a `.uninit` (noinit) RAM section, is
//! validated at boot, and what it held when the firmware died is dumped as an untimely death
//! before logging resumes.
//!
//! The recorder is core's, over a ring [`Attached`](flightrec_core::Attached) at boot
//! ([`flightrec_core::AttachedRecorder`]); this module adds only what is about surviving a
//! reset: the retained memory's header, its validation and salvage at attach, the notes of
//! how the firmware died, and the death dump.
//!
//! ```no_run
//! # // no_run: the section and the reset are the firmware's.
//! use core::mem::MaybeUninit;
//! use flightrec_core::Defaults;
//! use flightrec_flash::persist::{Persisted, PersistentRecorder, PersistConfig};
//!
//! #[link_section = ".uninit.flightrec"]
//! static mut RING_MEM: MaybeUninit<Persisted<2048>> = MaybeUninit::uninit();
//! static REC: PersistentRecorder<2048, Defaults> = PersistentRecorder::new();
//!
//! // At boot, before interrupts that log are enabled:
//! // SAFETY: RING_MEM is taken once, here; its RAM keeps whatever the previous run (or
//! // power-on) left in it, and every bit pattern is a valid `Persisted`.
//! let mem = unsafe { Persisted::assume_retained(&mut *core::ptr::addr_of_mut!(RING_MEM)) };
//! let boot = REC.attach(mem, &PersistConfig::DEFAULT);
//! if boot.dump_due {
//!     // REC.dump_death(&boot, now, clock, &build, &mut store, &mut scratch)
//! }
//! // In the panic handler: REC.note_death(Death::Panic), then reset.
//! ```

use core::cell::Cell;
use core::mem::MaybeUninit;
use core::ops::Deref;
use core::sync::atomic::{AtomicU32, Ordering};

use critical_section::Mutex;
use embedded_storage::nor_flash::NorFlash;
use flightrec_core::{
    AttachedRecorder, Build, ClockInfo, DumpHeader, Reason, RecorderSettings, Ring,
};

use flightrec_core::ring::salvage::Salvage;

use crate::store::{DumpInfo, Error, FlashStore};

const MAGIC: u32 = 0x464C_5252; // "FLRR"
const STATE_RUNNING: u32 = 0x5255_4E21;
const STATE_CLEAN: u32 = 0x434C_4E21;
const STATE_PANIC: u32 = 0x5041_4E21;
const STATE_FAULT: u32 = 0x464C_5421;

/// How the previous run ended, when it did not end cleanly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt-logger", derive(defmt::Format))]
pub enum Death {
    /// The panic handler reported it ([`PersistentRecorder::note_death`]).
    Panic,
    /// A fault handler (HardFault) reported it.
    Fault,
    /// A reset with no clean shutdown and no report: a watchdog, a lockup, a reset pin.
    Reset,
}

impl Death {
    /// Short name, written as the death dump's `detail`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Death::Panic => "panic",
            Death::Fault => "fault",
            Death::Reset => "reset",
        }
    }
}

/// The words in front of the ring: validity and how the last run ended. Atomics so that a
/// panic or fault handler can write them whatever else is borrowed.
#[repr(C)]
pub struct PersistHeader {
    magic: AtomicU32,
    state: AtomicU32,
    deaths: AtomicU32,
    layout: AtomicU32,
}

/// The memory that survives a reset: a header and the ring. Every bit pattern is a valid
/// value (integers only), so RAM holding anything can be taken as one and validated.
#[repr(C)]
pub struct Persisted<const N: usize> {
    header: PersistHeader,
    ring: Ring<N>,
}

impl<const N: usize> Persisted<N> {
    /// Identifies this layout: a firmware with another ring size (or another compiler's
    /// layout of the ring) does not take the memory for its own.
    const LAYOUT: u32 = (N as u32).rotate_left(8) ^ (core::mem::size_of::<Self>() as u32);

    /// Takes memory that kept its bytes across a reset as a `Persisted`.
    ///
    /// # Safety
    ///
    /// Every byte of `mem` must be initialized in the sense of the Rust abstract machine:
    /// RAM in a no-init section that the hardware kept (or filled at power-on) and that no
    /// other code uses, or memory written before (as the tests do). No validity is needed
    /// beyond that: every bit pattern is a valid `Persisted`, and
    /// [`PersistentRecorder::attach`] validates the contents.
    pub unsafe fn assume_retained(mem: &mut MaybeUninit<Self>) -> &mut Self {
        // SAFETY: the caller guarantees the bytes are initialized; `Persisted` holds only
        // integers and atomics of integers (any bit pattern is valid), so initialized bytes
        // are a valid value.
        unsafe { mem.assume_init_mut() }
    }

    /// A fresh, valid value (for tests, or for RAM that is not retained).
    pub const fn new() -> Self {
        Persisted {
            header: PersistHeader {
                magic: AtomicU32::new(0),
                state: AtomicU32::new(0),
                deaths: AtomicU32::new(0),
                layout: AtomicU32::new(0),
            },
            ring: Ring::new(),
        }
    }
}

impl<const N: usize> Default for Persisted<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// How a [`PersistentRecorder`] treats deaths (what it records and when it dumps is its
/// [`RecorderSettings`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PersistConfig {
    /// Untimely deaths in a row that are dumped; later ones are counted but not dumped
    /// until [`PersistentRecorder::healthy`] is called: a crash loop does not fill the
    /// flash with identical dumps.
    pub max_death_dumps: u32,
}

impl PersistConfig {
    /// 3 death dumps in a row.
    pub const DEFAULT: PersistConfig = PersistConfig { max_death_dumps: 3 };
}

/// What [`PersistentRecorder::attach`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt-logger", derive(defmt::Format))]
pub struct Boot {
    /// How the previous run ended, if it died; `None` after a clean shutdown or when the
    /// memory held no ring (power-on, another firmware).
    pub death: Option<Death>,
    /// Untimely deaths in a row, this one included.
    pub deaths_in_a_row: u32,
    /// Records the ring kept.
    pub kept: usize,
    /// Records that failed validation.
    pub dropped: usize,
    /// Whether the memory held a ring at all.
    pub retained: bool,
    /// Whether the salvaged records should be dumped now
    /// ([`PersistentRecorder::dump_death`]): a death, records to show, and the crash-loop
    /// limit not reached.
    pub dump_due: bool,
}

/// A flight recorder over a ring in memory that survives a reset (see the module docs):
/// core's recorder ([`AttachedRecorder`], which it dereferences to for recording and
/// dumping) and the retained memory's header. Records made before
/// [`attach`](Self::attach) are refused and counted as lost.
///
/// `C`, `SLOTS` and `DEPTH` are a core `Recorder`'s: a threshold needs `SLOTS` > 0.
pub struct PersistentRecorder<
    const N: usize,
    C = flightrec_core::Defaults,
    const SLOTS: usize = 0,
    const DEPTH: usize = 8,
> {
    recorder: AttachedRecorder<N, C, SLOTS, DEPTH>,
    /// Outside the recorder's cell: death notes work while the recorder is borrowed (a
    /// panic while logging).
    header: Mutex<Cell<Option<&'static PersistHeader>>>,
}

impl<const N: usize, C: RecorderSettings, const SLOTS: usize, const DEPTH: usize>
    PersistentRecorder<N, C, SLOTS, DEPTH>
{
    /// A recorder with no memory attached yet (all zero bytes: a `static` one is in `.bss`).
    pub const fn new() -> Self {
        PersistentRecorder {
            recorder: AttachedRecorder::new(),
            header: Mutex::new(Cell::new(None)),
        }
    }

    /// The recorder (e.g. for a `static` frame sink).
    pub const fn recorder(&self) -> &AttachedRecorder<N, C, SLOTS, DEPTH> {
        &self.recorder
    }

    /// Validates the retained memory, salvages its good records and starts recording into
    /// it. Call once at boot, before anything logs.
    pub fn attach(&self, mem: &'static mut Persisted<N>, config: &PersistConfig) -> Boot {
        let Persisted { header, ring } = mem;
        let retained = header.magic.load(Ordering::Relaxed) == MAGIC
            && header.layout.load(Ordering::Relaxed) == Persisted::<N>::LAYOUT;
        let mut boot = Boot {
            death: None,
            deaths_in_a_row: 0,
            kept: 0,
            dropped: 0,
            retained,
            dump_due: false,
        };
        if retained {
            let Salvage { kept, dropped, .. } = ring.salvage();
            boot.kept = kept;
            boot.dropped = dropped;
            boot.death = match header.state.load(Ordering::Relaxed) {
                STATE_CLEAN => None,
                STATE_PANIC => Some(Death::Panic),
                STATE_FAULT => Some(Death::Fault),
                _ => Some(Death::Reset),
            };
            let deaths = header.deaths.load(Ordering::Relaxed);
            boot.deaths_in_a_row = match boot.death {
                Some(_) => deaths.saturating_add(1),
                None => 0,
            };
            boot.dump_due =
                boot.death.is_some() && kept > 0 && boot.deaths_in_a_row <= config.max_death_dumps;
        } else {
            *ring = Ring::new();
        }
        header.deaths.store(boot.deaths_in_a_row, Ordering::Relaxed);
        header
            .layout
            .store(Persisted::<N>::LAYOUT, Ordering::Relaxed);
        header.state.store(STATE_RUNNING, Ordering::Relaxed);
        header.magic.store(MAGIC, Ordering::Release);
        let header: &'static PersistHeader = header;
        critical_section::with(|cs| self.header.borrow(cs).set(Some(header)));
        // Called at boot, before anything logs: the recorder is not borrowed.
        let _ = self.recorder.attach(ring);
        boot
    }

    fn header(&self) -> Option<&'static PersistHeader> {
        critical_section::with(|cs| self.header.borrow(cs).get())
    }

    /// Notes how the firmware is dying; call from the panic handler or a fault handler
    /// just before the reset. Works while the recorder is borrowed (a panic while logging).
    pub fn note_death(&self, death: Death) {
        let state = match death {
            Death::Panic => STATE_PANIC,
            Death::Fault => STATE_FAULT,
            Death::Reset => STATE_RUNNING,
        };
        if let Some(h) = self.header() {
            h.state.store(state, Ordering::Release);
        }
    }

    /// Notes an orderly shutdown or reset: the next boot is not an untimely death.
    pub fn shutdown_clean(&self) {
        if let Some(h) = self.header() {
            h.state.store(STATE_CLEAN, Ordering::Release);
        }
    }

    /// The firmware has run well for a while: the crash-loop count starts again.
    pub fn healthy(&self) {
        if let Some(h) = self.header() {
            h.deaths.store(0, Ordering::Relaxed);
        }
    }

    /// Stores the salvaged records as an [`Reason::UntimelyDeath`] dump (detail: how it
    /// died) if `boot` says one is due, then empties the ring (sequence numbers go on) so
    /// that the next death dump does not repeat them. Returns the dump stored, if any.
    pub fn dump_death<F: NorFlash>(
        &self,
        boot: &Boot,
        now: u64,
        clock: ClockInfo,
        build: &Build<'_>,
        store: &mut FlashStore<F>,
        scratch: &mut [u8],
    ) -> Result<Option<DumpInfo>, Error<F::Error>> {
        let Some(header) = death_header(boot, now, clock, build) else {
            return Ok(None);
        };
        let mut w = store.begin()?;
        self.recorder.dump_with_header(header, &mut w, scratch)?;
        let info = w.commit()?;
        let _ = self.recorder.clear();
        Ok(Some(info))
    }

    /// As [`Self::dump_death`], the dump sealed with `keys`' key if there is one (the key
    /// evolves on flash before the dump is committed: [`crate::keys`]). Call at boot, once
    /// the key pages are mounted.
    #[cfg(feature = "seal")]
    #[allow(clippy::too_many_arguments)] // dump_death's, and the keys
    pub fn dump_death_sealed<F: NorFlash>(
        &self,
        boot: &Boot,
        now: u64,
        clock: ClockInfo,
        build: &Build<'_>,
        store: &mut FlashStore<F>,
        scratch: &mut [u8],
        keys: &mut crate::keys::KeySlots,
    ) -> Result<Option<DumpInfo>, Error<F::Error>> {
        let Some(header) = death_header(boot, now, clock, build) else {
            return Ok(None);
        };
        let info = store.write_sealed(keys, |w| {
            self.recorder
                .dump_with_header(header, w, scratch)
                .map(|_| ())
        })?;
        let _ = self.recorder.clear();
        Ok(Some(info))
    }
}

/// The header of the death dump `boot` calls for, if one is due.
fn death_header<'b>(
    boot: &Boot,
    now: u64,
    clock: ClockInfo,
    build: &Build<'b>,
) -> Option<DumpHeader<'b>> {
    let (Some(death), true) = (boot.death, boot.dump_due) else {
        return None;
    };
    Some(DumpHeader {
        reason: Reason::UntimelyDeath,
        detail: death.as_str(),
        trigger_time: now,
        trigger_seq: None,
        clock,
        first_seq: 0,
        next_seq: 0,
        lost: boot.dropped as u64,
        suppressed: 0,
        scope: None,
        index: 0,
        capacity: 0,
        build: *build,
    })
}

impl<const N: usize, C: RecorderSettings, const SLOTS: usize, const DEPTH: usize> Default
    for PersistentRecorder<N, C, SLOTS, DEPTH>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, C, const SLOTS: usize, const DEPTH: usize> Deref
    for PersistentRecorder<N, C, SLOTS, DEPTH>
{
    type Target = AttachedRecorder<N, C, SLOTS, DEPTH>;
    fn deref(&self) -> &Self::Target {
        &self.recorder
    }
}
