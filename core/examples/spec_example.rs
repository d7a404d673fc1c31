//! Prints the dump used as the worked example in `WIRE-FORMAT.md`, as hex.
use flightrec_core::{
    Build, ClockInfo, DumpHeader, Kind, Level, Reason, RecordMeta, Ring, SessionId,
};

fn main() {
    let mut ring: Ring<4096> = Ring::new();
    let meta = RecordMeta {
        time: 11,
        level: Level::Warn,
        kind: Kind::FRAME,
        session: Some(SessionId(7)),
    };
    ring.push(&meta, b"hi").unwrap();
    let header = DumpHeader {
        reason: Reason::FailedLogin,
        detail: "",
        trigger_time: 11,
        trigger_seq: Some(0),
        clock: ClockInfo::BOOT_MILLIS,
        first_seq: 0,
        next_seq: 0,
        lost: 0,
        suppressed: 0,
        scope: None,
        index: 0,
        capacity: 0,
        build: Build {
            name: "demo",
            version: "1.0",
            id: &[0xab, 0xab],
        },
    };
    let mut out = Vec::new();
    let mut scratch = [0u8; 256];
    flightrec_core::write_dump(&mut out, &ring, header, &mut scratch).unwrap();
    for chunk in out.chunks(16) {
        let line: Vec<String> = chunk.iter().map(|b| format!("{b:02X}")).collect();
        println!("{}", line.join(" "));
    }
}
