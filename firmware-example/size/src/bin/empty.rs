//! Baseline: the runtime and a volatile write, nothing of flightrec.
#![no_std]
#![no_main]

use embedded_io::Write;
use flightrec_size::{opaque, Sink};

#[cortex_m_rt::entry]
fn main() -> ! {
    loop {
        let _ = Sink.write_all(&opaque(1).to_le_bytes());
    }
}
