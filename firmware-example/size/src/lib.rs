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
