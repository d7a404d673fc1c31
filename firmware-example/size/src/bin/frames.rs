//! A defmt-style firmware's recorder: raw frames into the ring and the trigger machine, no
//! typed events, no dump writer (the append path alone).
#![no_std]
#![no_main]

use flightrec_core::{Level, Recorder};
use flightrec_size::opaque;

static REC: Recorder<1024> = Recorder::new();

#[cortex_m_rt::entry]
fn main() -> ! {
    let mut scratch = [0u8; 160];
    loop {
        let t = opaque(1);
        let _ = REC.frame(t, Level::Debug, None, &t.to_le_bytes());
        core::hint::black_box(&mut scratch);
    }
}
