//! The reset-surviving ring: boots after power-on noise, panics, faults, watchdog resets,
//! clean shutdowns and crash loops, with the memory reused across "resets" as in firmware.
//! Runs under Miri (`cargo +nightly miri test -p flightrec-flash --test persist`).

mod common;

use core::mem::MaybeUninit;

use common::{mount_keys, Rng};
use flightrec_core::event::AuthFailure;
use flightrec_core::{ClockInfo, Level, Reason, RecorderConfig, RecorderSettings, TriggerConfig};
use flightrec_flash::persist::{Death, PersistConfig, Persisted, PersistentRecorder};
use flightrec_flash::{FlashStore, RamFlash, Status};

const N: usize = 512;
type Mem = MaybeUninit<Persisted<N>>;

/// Failed logins are recorded, not dumped: the dumps here are death dumps.
struct Quiet;
impl RecorderSettings for Quiet {
    const CONFIG: RecorderConfig = RecorderConfig {
        trigger: TriggerConfig {
            failed_login: false,
            ..TriggerConfig::DEFAULT
        },
        ..RecorderConfig::DEFAULT
    };
}
type Rec = PersistentRecorder<N, Quiet>;

const CONFIG: PersistConfig = PersistConfig { max_death_dumps: 3 };

/// RAM that keeps its bytes across resets, filled with power-on noise.
struct Ram(*mut Mem);

impl Ram {
    fn power_on(seed: u64) -> Ram {
        let raw = Box::into_raw(Box::new(MaybeUninit::<Persisted<N>>::uninit()));
        let mut rng = Rng(seed | 1);
        // SAFETY: `raw` is a fresh, exclusive allocation of `size_of::<Mem>()` bytes; writing
        // bytes through a `u8` pointer initializes every one of them.
        unsafe {
            let bytes = raw.cast::<u8>();
            for i in 0..core::mem::size_of::<Mem>() {
                bytes.add(i).write(rng.next() as u8);
            }
        }
        Ram(raw)
    }

    /// The memory as a boot sees it. The previous boot's recorder is never used again.
    fn boot(&self) -> &'static mut Persisted<N> {
        // SAFETY: every byte was initialized in `power_on` (and only ever written with
        // initialized values since); the previous `&'static mut` handed out is dead: each
        // test drops its recorder before the next boot, as a reset does.
        unsafe { Persisted::assume_retained(&mut *self.0) }
    }

    /// Flips bytes of the retained memory (as a stray write or a brown-out might).
    fn damage(&self, seed: u64, count: usize) {
        let mut rng = Rng(seed | 1);
        let size = core::mem::size_of::<Mem>();
        // SAFETY: in bounds of the allocation; no reference to it is live (between boots).
        unsafe {
            let bytes = self.0.cast::<u8>();
            for _ in 0..count {
                let at = rng.below(size as u64) as usize;
                bytes.add(at).write(rng.next() as u8);
            }
        }
    }
}

impl Drop for Ram {
    fn drop(&mut self) {
        // SAFETY: allocated by `Box::into_raw` in `power_on`, freed once.
        drop(unsafe { Box::from_raw(self.0) });
    }
}

fn failure(user: &str) -> AuthFailure<'_> {
    AuthFailure {
        user,
        host: "console",
        peer: None,
        mechanism: "pin",
        reason: "wrong pin",
    }
}

const BUILD: flightrec_core::Build<'static> = flightrec_core::Build {
    name: "persist-test",
    version: "1",
    id: &[],
};

struct Flash {
    mem: Vec<u8>,
}

impl Flash {
    fn new() -> Self {
        Flash {
            mem: vec![0xFF; 8 * 256],
        }
    }
    fn store(&mut self) -> FlashStore<RamFlash<'_, 256, 4>> {
        FlashStore::mount(RamFlash::new(&mut self.mem), 0..8 * 256).unwrap()
    }
}

/// Boots once: attach, dump the death if due. Returns the boot report and the number of
/// death dumps now on flash.
fn boot(ram: &Ram, flash: &mut Flash) -> (flightrec_flash::persist::Boot, Rec) {
    let rec = Rec::new();
    let boot = rec.attach(ram.boot(), &CONFIG);
    let mut store = flash.store();
    let mut scratch = [0u8; 256];
    let dumped = rec
        .dump_death(
            &boot,
            5,
            ClockInfo::BOOT_MILLIS,
            &BUILD,
            &mut store,
            &mut scratch,
        )
        .unwrap();
    assert_eq!(dumped.is_some(), boot.dump_due);
    (boot, rec)
}

fn death_dumps(flash: &mut Flash) -> Vec<(String, Vec<u8>)> {
    let mut store = flash.store();
    let infos: Vec<_> = store.dumps().map(Result::unwrap).collect();
    infos
        .iter()
        .filter(|i| i.status == Status::Committed)
        .map(|info| {
            let mut buf = [0u8; 256];
            let h = store.header(info, &mut buf).unwrap();
            assert_eq!(h.reason, Reason::UntimelyDeath);
            let detail = h.detail.to_string();
            let mut bytes = Vec::new();
            store.read_out(info, &mut bytes).unwrap();
            (detail, bytes)
        })
        .collect()
}

#[test]
fn power_on_noise_is_not_taken_for_a_ring() {
    for seed in 1..20 {
        let ram = Ram::power_on(seed);
        let mut flash = Flash::new();
        let (boot, rec) = boot(&ram, &mut flash);
        assert!(!boot.retained && boot.death.is_none() && !boot.dump_due);
        rec.log(1, Level::Info, None, "boot", "hello", &[]).unwrap();
        assert!(death_dumps(&mut flash).is_empty());
    }
}

#[test]
fn a_panic_is_dumped_at_the_next_boot_with_the_records_before_it() {
    let ram = Ram::power_on(42);
    let mut flash = Flash::new();
    {
        let (_, rec) = boot(&ram, &mut flash);
        for i in 0..5 {
            rec.record(10 + i, None, &failure("mallory")).unwrap();
        }
        rec.log(20, Level::Error, None, "console", "about to fail", &[])
            .unwrap();
        rec.note_death(Death::Panic);
    }
    let (boot2, rec) = boot(&ram, &mut flash);
    assert_eq!(boot2.death, Some(Death::Panic));
    assert_eq!(
        (boot2.kept, boot2.dropped, boot2.deaths_in_a_row),
        (6, 0, 1)
    );
    let dumps = death_dumps(&mut flash);
    assert_eq!(dumps.len(), 1);
    assert_eq!(dumps[0].0, "panic");
    // The dump holds the six records, in the wire format.
    let bytes = &dumps[0].1;
    assert_eq!(&bytes[..8], &flightrec_core::dump::MAGIC);
    let records = bytes
        .windows(2)
        .filter(|w| {
            w == &[
                flightrec_core::dump::SYNC,
                flightrec_core::dump::FRAME_RECORD,
            ]
        })
        .count();
    assert!(records >= 6, "six record frames (found {records} markers)");
    // The ring was emptied after the dump; sequence numbers went on.
    assert_eq!(rec.stats_for_test().0, 0);
    assert_eq!(rec.stats_for_test().1, 6);
}

#[test]
fn a_reset_without_a_report_is_a_death_and_a_clean_shutdown_is_not() {
    let ram = Ram::power_on(7);
    let mut flash = Flash::new();
    {
        let (_, rec) = boot(&ram, &mut flash);
        rec.log(1, Level::Info, None, "app", "working", &[])
            .unwrap();
        // The watchdog bites: nothing is noted.
    }
    {
        let (b, rec) = boot(&ram, &mut flash);
        assert_eq!(b.death, Some(Death::Reset));
        assert!(b.dump_due);
        rec.log(2, Level::Info, None, "app", "working", &[])
            .unwrap();
        rec.note_death(Death::Fault);
    }
    {
        let (b, rec) = boot(&ram, &mut flash);
        assert_eq!((b.death, b.deaths_in_a_row), (Some(Death::Fault), 2));
        rec.healthy();
        rec.log(3, Level::Info, None, "app", "bye", &[]).unwrap();
        rec.shutdown_clean();
    }
    let (b, _) = boot(&ram, &mut flash);
    assert_eq!((b.death, b.deaths_in_a_row, b.dump_due), (None, 0, false));
    assert_eq!(b.kept, 1, "the records of a clean run stay in the ring");
    let details: Vec<String> = death_dumps(&mut flash).into_iter().map(|d| d.0).collect();
    assert_eq!(details, ["reset", "fault"]);
}

#[test]
fn a_crash_loop_stops_dumping_after_the_limit() {
    let ram = Ram::power_on(9);
    let mut flash = Flash::new();
    boot(&ram, &mut flash).1.shutdown_clean();
    for round in 1..=6u32 {
        let (b, rec) = boot(&ram, &mut flash);
        if round > 1 {
            assert_eq!(b.deaths_in_a_row, round - 1);
            assert_eq!(b.dump_due, round - 1 <= CONFIG.max_death_dumps);
        }
        rec.log(
            u64::from(round),
            Level::Warn,
            None,
            "loop",
            "dying again",
            &[],
        )
        .unwrap();
        rec.note_death(Death::Panic);
    }
    assert_eq!(
        death_dumps(&mut flash).len(),
        CONFIG.max_death_dumps as usize
    );
}

#[test]
fn damaged_retained_memory_never_panics_and_keeps_a_working_ring() {
    let rounds = if cfg!(miri) { 4 } else { 200 };
    for seed in 0..rounds {
        let ram = Ram::power_on(1000 + seed);
        let mut flash = Flash::new();
        {
            let (_, rec) = boot(&ram, &mut flash);
            for i in 0..30 {
                rec.record(i, None, &failure("eve")).unwrap();
            }
            rec.note_death(Death::Panic);
        }
        ram.damage(seed, 1 + (seed as usize % 40));
        let (b, rec) = boot(&ram, &mut flash);
        if b.retained {
            assert!(b.kept + b.dropped > 0 || b.kept == 0);
        }
        for i in 0..40 {
            rec.record(100 + i, None, &failure("eve")).unwrap();
        }
        let (records, _) = rec.stats_for_test();
        assert!(records > 0);
        // Whatever was dumped reads back whole.
        for (_, bytes) in death_dumps(&mut flash) {
            assert_eq!(&bytes[..8], &flightrec_core::dump::MAGIC);
        }
    }
}

trait StatsForTest {
    fn stats_for_test(&self) -> (usize, u64);
}

impl StatsForTest for Rec {
    /// (records held, next sequence number)
    fn stats_for_test(&self) -> (usize, u64) {
        let s = self.stats().unwrap().ring;
        (s.records, s.next_seq)
    }
}

#[test]
fn the_death_dump_is_sealed_at_the_next_boot() {
    use flightrec_core::seal::SealKey;
    let k0 = SealKey::new([0x5A; 32], 0);
    let ram = Ram::power_on(7);
    // Dumps on pages 0..8, the key on pages 8 and 9.
    let mut mem = vec![0xFF; 10 * 256];
    let keys_at = 8 * 256..10 * 256;
    {
        let mut flash = RamFlash::<'_, 256, 4>::new(&mut mem);
        let mut keys = mount_keys(&mut flash, keys_at.clone()).unwrap();
        keys.provision(&mut flash, &k0).unwrap();
        let rec = Rec::new();
        let _ = rec.attach(ram.boot(), &CONFIG);
        rec.record(10, None, &failure("mallory")).unwrap();
        rec.note_death(Death::Fault);
    }
    let mut flash = RamFlash::<'_, 256, 4>::new(&mut mem);
    let mut keys = mount_keys(&mut flash, keys_at.clone()).unwrap();
    let rec = Rec::new();
    let boot = rec.attach(ram.boot(), &CONFIG);
    let mut store = FlashStore::mount(&mut flash, 0..8 * 256).unwrap();
    let info = rec
        .dump_death_sealed(
            &boot,
            5,
            ClockInfo::BOOT_MILLIS,
            &BUILD,
            &mut store,
            &mut [0u8; 256],
            &mut keys,
        )
        .unwrap()
        .unwrap();
    let mut bytes = Vec::new();
    store.read_out(&info, &mut bytes).unwrap();
    assert_eq!(common::sealed_epoch(&bytes, &k0), Some(0));
    // The key moved on, and the one that sealed the dump is gone from the flash.
    assert_eq!(keys.epoch(), Some(1));
    assert_eq!(mount_keys(&mut flash, keys_at).unwrap().epoch(), Some(1));
    assert!(!mem.windows(32).any(|w| w == k0.secret()));
}
