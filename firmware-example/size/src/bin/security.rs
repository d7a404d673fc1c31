//! The firmware example's profile: raw (defmt) frames, auth-failure events, the trigger
//! machine and dumps streamed to a writer; no log lines.
#![no_std]
#![no_main]

use flightrec_core::event::AuthFailure;
use flightrec_core::{ClockInfo, Level, Recorder};
use flightrec_size::{opaque, Sink, BUILD};

static REC: Recorder<1024> = Recorder::new();

#[cortex_m_rt::entry]
fn main() -> ! {
    let mut scratch = [0u8; 160];
    loop {
        let t = opaque(1);
        let _ = REC.frame(t, Level::Debug, None, &t.to_le_bytes());
        let failed = AuthFailure {
            user: "u",
            host: "h",
            peer: None,
            mechanism: "pin",
            reason: "r",
        };
        let _ = REC.record(t, None, &failed);
        let _ = REC.dump_due(ClockInfo::BOOT_MILLIS, &BUILD, &mut Sink, &mut scratch);
    }
}
