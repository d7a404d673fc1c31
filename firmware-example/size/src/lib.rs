//! What the probes share: a sink that the optimiser cannot see through, a panic handler.
#![no_std]

use core::ptr::{addr_of_mut, write_volatile};

/// Bytes written to the sink go to a volatile register-like location.
pub struct Sink;

static mut REG: u8 = 0;

impl embedded_io::ErrorType for Sink {
    type Error = core::convert::Infallible;
}

impl embedded_io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for &b in buf {
            // SAFETY: a plain byte, written volatile so the dump is not optimised away.
            unsafe { write_volatile(addr_of_mut!(REG), b) };
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

// The RAM the docs give (core's `Ring`, `TriggerState` and `Recorder` docs, RESULTS.md),
// checked on the target when the probes build.
const _: () = {
    use core::mem::size_of;
    use flightrec_core::{Recorder, Ring, TriggerState};
    assert!(size_of::<Ring<1024>>() == 1024 + 24);
    assert!(size_of::<TriggerState<0, 8>>() == 48);
    // A threshold slot: 8 bytes a remembered time, and 16 of key, tag and cursors.
    assert!(size_of::<TriggerState<1, 8>>() == 48 + 8 * 8 + 16);
    assert!(size_of::<TriggerState<2, 8>>() == 48 + 2 * (8 * 8 + 16));
    assert!(size_of::<TriggerState<1, 5>>() == 48 + 8 * 5 + 16);
    assert!(size_of::<Recorder<1024>>() == 1024 + 88);
    // What the append path hands back.
    assert!(size_of::<flightrec_core::Action>() == 6);
    assert!(size_of::<flightrec_core::DumpOrder>() == 48);
    // The flash store holds the dump being written (its state and 32-byte buffer), so the
    // writer a firmware moves around is one pointer.
    use flightrec_flash::{DumpWriter, FlashStore, RamFlash};
    assert!(size_of::<FlashStore<RamFlash<'static, 1024, 4>>>() == 84);
    assert!(size_of::<DumpWriter<'static, RamFlash<'static, 1024, 4>>>() == 4);
};

/// Who wrote the probes' dumps.
pub const BUILD: flightrec_core::Build<'static> = flightrec_core::Build {
    name: "size",
    version: "0",
    id: &[],
};

/// An input the optimiser cannot predict.
pub fn opaque(x: u64) -> u64 {
    core::hint::black_box(x)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    cortex_m::asm::udf()
}
