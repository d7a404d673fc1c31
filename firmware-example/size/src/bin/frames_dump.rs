//! A defmt-style firmware's recorder with dumps: raw frames, the trigger machine, and the
//! dump writer streaming to a writer.
#![no_std]
#![no_main]

use flightrec_core::{ClockInfo, Level, Recorder};
use flightrec_size::{opaque, Sink, BUILD};

static REC: Recorder<1024> = Recorder::new();

#[cortex_m_rt::entry]
fn main() -> ! {
    let mut scratch = [0u8; 160];
    loop {
        let t = opaque(1);
        let _ = REC.frame(t, Level::Debug, None, &t.to_le_bytes());
        let _ = REC.dump_due(ClockInfo::BOOT_MILLIS, &BUILD, &mut Sink, &mut scratch);
    }
}
