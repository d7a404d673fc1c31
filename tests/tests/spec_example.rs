//! The worked example in `core/WIRE-FORMAT.md` is what the writer really writes.

use flightrec_core::{
    Build, ClockInfo, DumpHeader, Kind, Level, Reason, RecordMeta, Ring, SessionId,
};

fn hex_block(spec: &str) -> Vec<u8> {
    let start = spec.find("## 8. Example").expect("example section");
    let block = &spec[start..];
    let block = &block[block.find("```text").expect("code block") + 7..];
    let block = &block[..block.find("```").expect("end of block")];
    let mut bytes = Vec::new();
    for line in block.lines() {
        // Hex pairs come first on each line, then the explanation.
        for word in line.split_whitespace() {
            match u8::from_str_radix(word, 16) {
                Ok(b) if word.len() == 2 => bytes.push(b),
                _ => break,
            }
        }
    }
    bytes
}

#[test]
fn spec_example_matches_writer() {
    let spec = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../core/WIRE-FORMAT.md"
    ))
    .unwrap();
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
    flightrec_core::write_dump(&mut out, &ring, header, &mut [0u8; 256]).unwrap();
    let hex: Vec<String> = out.iter().map(|b| format!("{b:02X}")).collect();
    assert!(
        hex_block(&spec) == out,
        "WIRE-FORMAT.md's example differs from what the writer writes:\n{}",
        hex.join(" ")
    );
}
