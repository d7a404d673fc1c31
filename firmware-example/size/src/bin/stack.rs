//! Stack depth of the append path, measured by painting: run in QEMU (thumbv7m). Prints the
//! deepest stack use of one `Recorder::log`, `Recorder::record` (an auth failure) and
//! `Recorder::frame`, each called from a non-inlined wrapper (its own frame included):
//! `cargo build --release --target thumbv7m-none-eabi --bin stack`, then run it in QEMU.
#![no_std]
#![no_main]

use core::ptr::{read_volatile, write_volatile};

use cortex_m_semihosting::{debug, hprintln};
use flightrec_core::event::AuthFailure;
use flightrec_core::{Level, Recorder, SessionId};
use flightrec_size::opaque;

static REC: Recorder<1024> = Recorder::new();

const PAINT: u32 = 0xA5A5_5A5A;
const DEPTH: usize = 2048;

/// Paints `DEPTH` bytes below the current stack pointer, runs `f`, returns how deep it went.
#[inline(never)]
fn measure(f: fn()) -> usize {
    let sp = cortex_m::register::msp::read() as usize;
    // Below the stack pointer is free; the loops below push nothing.
    let top = sp;
    let bottom = top - DEPTH;
    for a in (bottom..top).step_by(4) {
        // SAFETY: free stack below the current frame (64 KiB of RAM, a few KiB used).
        unsafe { write_volatile(a as *mut u32, PAINT) };
    }
    f();
    let mut deepest = top;
    for a in (bottom..top).step_by(4) {
        // SAFETY: as above.
        if unsafe { read_volatile(a as *const u32) } != PAINT {
            deepest = a;
            break;
        }
    }
    top - deepest
}

#[inline(never)]
fn log() {
    let _ = REC.log(
        opaque(1),
        Level::Info,
        Some(SessionId(3)),
        "console",
        "pin prompt",
        &[],
    );
}

#[inline(never)]
fn record() {
    let failed = AuthFailure {
        user: "admin",
        host: "console",
        peer: None,
        mechanism: "pin",
        reason: "wrong pin",
    };
    let _ = REC.record(opaque(2), Some(SessionId(3)), &failed);
}

#[inline(never)]
fn frame() {
    let _ = REC.frame(opaque(3), Level::Debug, None, &[1, 2, 3, 4, 5, 6, 7, 8]);
}

#[cortex_m_rt::entry]
fn main() -> ! {
    // Fill the ring first so that pushes evict (the longer path).
    for _ in 0..100 {
        log();
    }
    let l = measure(log);
    let r = measure(record);
    let f = measure(frame);
    hprintln!(
        "append path stack (bytes, wrapper frame included): log {} record {} frame {}",
        l,
        r,
        f
    );
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::wfi();
    }
}
