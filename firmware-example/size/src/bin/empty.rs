//! Baseline: the runtime, a volatile write and the same zeroed scratch buffer as the other
//! probes (so the compiler's `memclr`, which any firmware has, counts on both sides).
#![no_std]
#![no_main]

use embedded_io::Write;
use flightrec_size::{opaque, Sink};

#[cortex_m_rt::entry]
fn main() -> ! {
    let mut scratch = [0u8; 160];
    loop {
        let _ = Sink.write_all(&opaque(1).to_le_bytes());
        core::hint::black_box(&mut scratch);
    }
}
