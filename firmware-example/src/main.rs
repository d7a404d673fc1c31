//! A simulated login console on a Cortex-M3 (QEMU lm3s6965evb) with a flight recorder.
//!
//! Boot 1 (cold): debug logs (defmt) at every step, a few wrong PINs, then a brute-force
//! burst that crosses the threshold: the ring is dumped to a RAM-backed NOR flash. Then a
//! panic: the panic handler notes the death and resets the chip (SYSRESETREQ).
//! Boot 2: the ring survived in `.uninit` RAM; it is validated, salvaged and dumped as an
//! untimely death. The dumps are read out to `dumps.bin` and the raw flash image written to
//! `flash.img` on the host (semihosting); the exit status says whether all went as planned.
//!
//! Every dump is sealed (`core/SEALING.md`): the sealing key lives in two erase pages after
//! the dump store's and evolves there before each dump is committed. At the cold boot the
//! device is provisioned with the key file `device.key` that `flightrec keygen` wrote on the
//! host (read over semihosting); `run.sh` then checks the dumps with the auditor's
//! `verify.key`.
#![no_std]
#![no_main]

use core::fmt::Write as _;
use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::debug;
use flightrec_core::event::AuthFailure;
use flightrec_core::{
    Action, AttachedRecorder, Build, ClockInfo, DumpOrder, Kind, Level, RateLimit, Reason,
    RecorderConfig, RecorderSettings, SessionId, Threshold, TriggerConfig,
};
use flightrec_flash::frame::RecorderSink;
use flightrec_flash::keys::{parse_key_file, KeySlots};
use flightrec_flash::persist::{Death, PersistConfig, Persisted, PersistentRecorder};
use flightrec_flash::{DumpInfo, Error, FlashStore, RamFlash, Status};

mod semihosting;

const RING: usize = 4096;
const PAGE: usize = 1024;
/// The dump store's pages, then the two pages of the sealing key.
const STORE_SIZE: usize = 16 * PAGE;
const FLASH_SIZE: usize = STORE_SIZE + 2 * PAGE;

/// Milliseconds since boot, advanced by the script (a simulated clock).
static NOW_MS: AtomicU32 = AtomicU32::new(0);

fn now() -> u64 {
    u64::from(NOW_MS.load(Ordering::Relaxed))
}

fn advance(ms: u32) {
    NOW_MS.fetch_add(ms, Ordering::Relaxed);
}

defmt::timestamp!("{=u64:ms}", now());

// RAM that keeps its contents across a reset: the ring, and the "flash" (a real device
// would keep its flash anyway).
#[link_section = ".uninit.flightrec.ring"]
static mut RING_MEM: MaybeUninit<Persisted<RING>> = MaybeUninit::uninit();
#[link_section = ".uninit.flightrec.flash"]
static mut FLASH_MEM: MaybeUninit<[u8; FLASH_SIZE]> = MaybeUninit::uninit();

/// The recorder's configuration, a constant in flash (the recorder holds nothing of it).
struct Console;
impl RecorderSettings for Console {
    const CONFIG: RecorderConfig = RecorderConfig {
        trigger: TriggerConfig {
            // Single wrong PINs are recorded, not dumped: the burst is what matters.
            failed_login: false,
            threshold: Some(Threshold {
                kind: Kind::AUTH_FAILURE,
                count: THRESHOLD,
                window: 10_000,
                per_peer: false,
            }),
            post_records: 4,
            // At most 2 dumps at once, 2 per hour, one a minute: a brute-force attacker
            // cannot wear the flash out (see the flightrec-flash docs).
            rate: Some(RateLimit::new(2, 3_600_000, 60_000)),
            ..TriggerConfig::DEFAULT
        },
        ..RecorderConfig::DEFAULT
    };
}
const PERSIST: PersistConfig = PersistConfig { max_death_dumps: 3 };
/// Failed PINs within the window that make a brute force.
const THRESHOLD: u16 = 5;

/// One threshold slot (the console is one peer: a global count) remembering the last
/// `THRESHOLD` failures.
static REC: PersistentRecorder<RING, Console, 1, { THRESHOLD as usize }> =
    PersistentRecorder::new();
static SINK: RecorderSink<AttachedRecorder<RING, Console, 1, { THRESHOLD as usize }>> =
    RecorderSink::new(REC.recorder(), now, None);

/// Who wrote the dumps: the GNU build-id lets the decoder refuse a wrong ELF.
fn build() -> Build<'static> {
    Build {
        name: "flightrec-firmware-example",
        version: env!("CARGO_PKG_VERSION"),
        id: build_id(),
    }
}

/// The descriptor of the GNU build-id note the linker put in flash (see build.rs).
fn build_id() -> &'static [u8] {
    extern "C" {
        static __flightrec_build_id_start: u8;
        static __flightrec_build_id_end: u8;
    }
    // SAFETY: the linker script defines both symbols around the note section in flash,
    // which is read-only and lives as long as the program.
    let note = unsafe {
        let start = core::ptr::addr_of!(__flightrec_build_id_start);
        let end = core::ptr::addr_of!(__flightrec_build_id_end);
        core::slice::from_raw_parts(start, (end as usize).saturating_sub(start as usize))
    };
    // namesz, descsz, type (3 = NT_GNU_BUILD_ID), name ("GNU\0", padded to 4), descriptor.
    let word = |at: usize| {
        note.get(at..at + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let desc_at = 12 + word(0).next_multiple_of(4);
    note.get(desc_at..desc_at + word(4)).unwrap_or(&[])
}

type Flash = RamFlash<'static, PAGE, 4>;

#[entry]
fn main() -> ! {
    // SAFETY: RING_MEM is taken once, here, before anything else runs; it is RAM in a
    // NOLOAD section that keeps the bytes of the previous run (QEMU's RAM reads as zero at
    // power-on), and any bytes are a valid `Persisted`, validated by `attach`.
    let ring_mem = unsafe { Persisted::assume_retained(&mut *addr_of_mut!(RING_MEM)) };
    let boot = REC.attach(ring_mem, &PERSIST);
    flightrec_flash::defmt_logger::set_sink(&SINK);

    // SAFETY: taken once, here; plain bytes (any value valid), kept across resets like
    // RING_MEM.
    let flash_mem: &'static mut [u8; FLASH_SIZE] =
        unsafe { (*addr_of_mut!(FLASH_MEM)).assume_init_mut() };
    let mut flash: Flash = RamFlash::new(flash_mem);
    if !boot.retained {
        // Cold boot: the simulated device comes out of the factory erased.
        use embedded_storage::nor_flash::NorFlash;
        if flash.erase(0, FLASH_SIZE as u32).is_err() {
            fail("erase");
        }
    }
    let mut store = match FlashStore::mount(flash, 0..STORE_SIZE as u32) {
        Ok(s) => s,
        Err(_) => fail("mount"),
    };
    let mut keys = KeySlots::new(STORE_SIZE as u32..FLASH_SIZE as u32);
    if keys.mount(store.flash_mut()).is_err() {
        fail("mount the key pages");
    }
    if keys.key().is_none() {
        provision(&mut keys, &mut store);
    }
    let mut scratch = [0u8; 256];
    match REC.dump_death_sealed(
        &boot,
        now(),
        ClockInfo::BOOT_MILLIS,
        &build(),
        &mut store,
        &mut scratch,
        &mut keys,
    ) {
        Ok(Some(info)) => defmt::warn!("untimely death dumped as dump {=u32}", info.id),
        Ok(None) => {}
        Err(_) => defmt::error!("death dump failed"),
    }

    // Logged after the death dump: that dump holds only what came before the death.
    defmt::info!(
        "boot: retained={=bool} kept={=usize} dropped={=usize} deaths in a row={=u32}",
        boot.retained,
        boot.kept,
        boot.dropped,
        boot.deaths_in_a_row
    );
    match boot.death {
        None => console(&mut store, &mut keys, &mut scratch),
        Some(death) => {
            defmt::info!("back from {=str}: reading the dumps out", death.as_str());
            REC.shutdown_clean();
            let ok = report(&mut store);
            debug::exit(if ok {
                debug::EXIT_SUCCESS
            } else {
                debug::EXIT_FAILURE
            });
            loop {
                cortex_m::asm::wfi();
            }
        }
    }
}

/// Installs the sealing key of the host's `device.key` (`flightrec keygen --device`): the
/// factory step. Without it the demo fails: its dumps must be sealed.
fn provision(keys: &mut KeySlots, store: &mut FlashStore<Flash>) {
    let mut text = [0u8; 160];
    let n = match semihosting::File::open_read("device.key") {
        Some(mut f) => f.read(&mut text),
        None => fail("no device.key to provision the sealing key from"),
    };
    let key = text.get(..n).and_then(parse_key_file);
    text.fill(0);
    let Some(key) = key else {
        fail("device.key is not a flightrec sealing key file")
    };
    if keys.provision(store.flash_mut(), &key).is_err() {
        fail("provision the sealing key");
    }
    defmt::info!("sealing key installed, epoch {=u64}", key.epoch());
}

/// The scripted login console of the first boot. Ends in a panic.
fn console(store: &mut FlashStore<Flash>, keys: &mut KeySlots, scratch: &mut [u8]) -> ! {
    defmt::info!("login console up");
    let session = Some(SessionId(1));
    // A few wrong PINs, spread out: recorded, below the threshold.
    for (i, pin) in ["0000", "1234", "1111"].iter().enumerate() {
        advance(2_000);
        defmt::debug!("pin prompt for admin (attempt {=usize})", i + 1);
        defmt::debug!("pin entered: {=usize} digits", pin.len());
        let action = attempt(session, "admin", "wrong pin");
        handle(action, store, keys, scratch);
        defmt::info!("wrong pin for admin, try again");
    }
    REC.log(
        now(),
        Level::Info,
        session,
        "console",
        "operator logged in",
        &[],
    )
    .ok();
    // The brute-force burst: one attempt every 200 ms.
    advance(30_000);
    defmt::warn!("burst of pin attempts from the pairing port");
    for i in 0..10u32 {
        advance(200);
        defmt::debug!("pairing pin attempt {=u32}", i);
        let action = attempt(Some(SessionId(2)), "pairing", "wrong pairing pin");
        handle(action, store, keys, scratch);
        // A defmt frame can close a window too: the dump waits in the recorder.
        store_due(store, keys, scratch);
    }
    defmt::debug!("lockout table update");
    advance(500);
    REC.log(
        now(),
        Level::Error,
        None,
        "console",
        "lockout table inconsistent",
        &[],
    )
    .ok();
    panic!("lockout table corrupted");
}

fn attempt(session: Option<SessionId>, user: &str, reason: &str) -> Action {
    let event = AuthFailure {
        user,
        host: "console",
        peer: None,
        mechanism: "pin",
        reason,
    };
    REC.record(now(), session, &event).unwrap_or(Action::None)
}

fn handle(action: Action, store: &mut FlashStore<Flash>, keys: &mut KeySlots, scratch: &mut [u8]) {
    match action {
        Action::None => {}
        Action::Start(reason) => defmt::warn!("trigger fired: {}", reason),
        Action::Suppressed(reason) => {
            defmt::warn!("trigger refused by the rate limit: {}", reason)
        }
        Action::Dump(_) => store_due(store, keys, scratch),
    }
}

/// Stores the dump that is due, if one is, sealed.
fn store_due(store: &mut FlashStore<Flash>, keys: &mut KeySlots, scratch: &mut [u8]) {
    let Some(order) = SINK.take_order() else {
        return;
    };
    match dump_to(&order, store, keys, scratch) {
        Ok(info) => defmt::warn!(
            "dump {=u32} stored: {=u32} bytes on {=u32} pages",
            info.id,
            info.len,
            info.pages
        ),
        Err(_) => defmt::error!("dump failed"),
    }
}

/// Writes the dump `order` asks for to a new dump of `store`, sealed (the key evolves on
/// flash first) and committed if written whole.
fn dump_to(
    order: &DumpOrder,
    store: &mut FlashStore<Flash>,
    keys: &mut KeySlots,
    scratch: &mut [u8],
) -> Result<DumpInfo, Error<<Flash as embedded_storage::nor_flash::ErrorType>::Error>> {
    store.write_sealed(keys, |w| {
        REC.dump(order, ClockInfo::BOOT_MILLIS, &build(), w, scratch)
            .map(|_| ())
    })
}

/// Boot 2: lists the dumps, reads each out to `dumps.bin` (the wire format, as a UART would
/// carry it) and writes the raw flash image to `flash.img`. True if both dumps are there.
fn report(store: &mut FlashStore<Flash>) -> bool {
    let mut threshold = false;
    let mut death = false;
    let mut out = match semihosting::File::create("dumps.bin") {
        Some(f) => f,
        None => fail("open dumps.bin"),
    };
    let mut ids = [None; 16];
    for (slot, info) in ids.iter_mut().zip(store.dumps()) {
        *slot = info.ok();
    }
    for info in ids.iter().flatten() {
        let mut buf = [0u8; 256];
        let Ok(header) = store.header(info, &mut buf) else {
            defmt::warn!("dump {=u32}: {} (no header)", info.id, info.status);
            continue;
        };
        let reason = header.reason;
        defmt::info!(
            "dump {=u32}: {} {=u32} bytes, reason {} {=str}",
            info.id,
            info.status,
            info.len,
            reason,
            header.detail
        );
        if info.status == Status::Committed {
            threshold |= reason == Reason::Threshold(Kind::AUTH_FAILURE);
            death |= reason == Reason::UntimelyDeath;
            if store.read_out(info, &mut out).is_err() {
                fail("read out");
            }
        }
    }
    drop(out);
    let mut image = match semihosting::File::create("flash.img") {
        Some(f) => f,
        None => fail("open flash.img"),
    };
    use embedded_io::Write as _;
    // The dump store's pages: the key pages stay on the device.
    let region = store.flash_mut().image().get(..STORE_SIZE).unwrap_or(&[]);
    if image.write_all(region).is_err() {
        fail("write flash.img");
    }
    threshold && death
}

fn fail(what: &str) -> ! {
    semihosting::eprint(what);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

/// A small `fmt::Write` buffer for the panic message.
struct Line {
    buf: [u8; 96],
    len: usize,
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut line = Line {
        buf: [0; 96],
        len: 0,
    };
    let _ = write!(line, "{}", info.message());
    let msg = line
        .buf
        .get(..line.len)
        .and_then(|b| core::str::from_utf8(b).ok());
    let _ = REC.log(
        now(),
        Level::Error,
        None,
        "panic",
        msg.unwrap_or("panic"),
        &[],
    );
    REC.note_death(Death::Panic);
    cortex_m::peripheral::SCB::sys_reset();
}

#[exception]
unsafe fn HardFault(_frame: &ExceptionFrame) -> ! {
    REC.note_death(Death::Fault);
    cortex_m::peripheral::SCB::sys_reset();
}
