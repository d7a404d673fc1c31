//! As `flash`, every dump sealed (core's feature `seal`): the sealing key lives in two
//! erase pages of the flash (`flightrec_flash::keys`) and evolves there, power-fail safely,
//! before each dump is committed.
#![no_std]
#![no_main]

use flightrec_core::event::AuthFailure;
use flightrec_core::{Action, ClockInfo, Level, Recorder};
use flightrec_flash::keys::KeySlots;
use flightrec_flash::{FlashStore, RamFlash, Status};
use flightrec_size::{opaque, Sink, BUILD};

static REC: Recorder<1024> = Recorder::new();
static mut FLASH: [u8; 10 * 1024] = [0; 10 * 1024];

#[cortex_m_rt::entry]
fn main() -> ! {
    // SAFETY: taken once, here.
    let mem = unsafe { &mut *core::ptr::addr_of_mut!(FLASH) };
    let flash: RamFlash<'_, 1024, 4> = RamFlash::new(mem);
    // Dumps on pages 0..8, the key on pages 8 and 9.
    let Ok(mut store) = FlashStore::mount(flash, 0..8 * 1024) else {
        loop {
            cortex_m::asm::wfi();
        }
    };
    let mut keys = KeySlots::new(8 * 1024..10 * 1024);
    let Ok(()) = keys.mount(store.flash_mut()) else {
        loop {
            cortex_m::asm::wfi();
        }
    };
    let mut scratch = [0u8; 160];
    loop {
        let t = opaque(1);
        let _ = REC.log(t, Level::Info, None, "size", "tick", &[]);
        let _ = REC.frame(t, Level::Debug, None, &t.to_le_bytes());
        let failed = AuthFailure {
            user: "u",
            host: "h",
            peer: None,
            mechanism: "pin",
            reason: "r",
        };
        // The order is taken only when a dump is due (a refused record still carries the
        // machine's action), then the store's writer begun: no page erased for nothing.
        let action = REC.record(t, None, &failed).unwrap_or_else(|e| e.action);
        if let Some(order) = matches!(action, Action::Dump(_))
            .then(|| REC.take_order())
            .flatten()
        {
            let _ = store.write_sealed(&mut keys, |w| {
                REC.dump(&order, ClockInfo::BOOT_MILLIS, &BUILD, w, &mut scratch)
                    .map(|_| ())
            });
        }
        if opaque(0) == 1 {
            let mut first = None;
            for info in store.dumps().flatten() {
                first = Some(info);
            }
            if let Some(info) = first {
                if info.status == Status::Committed {
                    let _ = store.read_out(&info, &mut Sink);
                }
            }
        }
    }
}
