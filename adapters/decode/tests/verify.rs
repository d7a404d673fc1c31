//! The verifier on any bytes: no panic, no endless loop, and a verdict for every dump.

use flightrec_core::seal::{SealKey, Sealer};
use flightrec_core::{write_dump, Build, ClockInfo, DumpHeader, DumpOrder, Kind, Level, Reason};
use flightrec_core::{RecordMeta, Ring};
use flightrec_decode::verify::Verifier;
use proptest::prelude::*;

fn sealed(n: u64) -> Vec<u8> {
    let mut key = SealKey::new([4; 32], 0);
    let mut out = Vec::new();
    let mut ring: Ring<1024> = Ring::new();
    for i in 0..n {
        let meta = RecordMeta {
            time: i,
            level: Level::Warn,
            kind: Kind::FRAME,
            session: None,
        };
        ring.push(&meta, &[i as u8; 9]).unwrap();
        let order = DumpOrder {
            reason: Reason::Manual,
            time: i,
            seq: None,
            session: None,
            suppressed: 0,
            index: i as u32,
        };
        let build = Build {
            name: "p",
            version: "1",
            id: &[],
        };
        let header = DumpHeader::for_order(&order, &[], 0, ClockInfo::BOOT_MILLIS, build);
        let mut s = Sealer::new(&mut out);
        write_dump(&mut s, &ring, header, &mut [0; 64]).unwrap();
        s.finish(&mut key).unwrap();
    }
    out
}

fn run(bytes: &[u8]) -> (usize, usize) {
    let mut v = Verifier::new(SealKey::new([4; 32], 0));
    let mut verdicts = v.verify_input("x", bytes).unwrap();
    let problems = v.finish(&mut verdicts).len();
    let failed = verdicts.iter().filter(|d| d.fault.is_some()).count() + problems;
    (verdicts.len(), failed)
}

#[test]
fn sealed_dumps_pass() {
    assert_eq!(run(&sealed(4)), (4, 0));
}

/// The decoder passes over seal frames: sealed dumps decode as plain ones, nothing skipped.
#[test]
fn decoder_passes_over_seals() {
    let bytes = sealed(4);
    let mut d = flightrec_decode::Decoder::new(&bytes[..]);
    let mut records = 0;
    while let Some(item) = d.next().unwrap() {
        match item {
            flightrec_decode::Item::Record { .. } => records += 1,
            flightrec_decode::Item::Skipped { .. } => panic!("{item:?}"),
            _ => {}
        }
    }
    assert_eq!(records, 1 + 2 + 3 + 4);
    assert!(!d.stats().damaged());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        run(&bytes);
    }

    /// Sealed dumps with a stretch overwritten by arbitrary bytes: something fails.
    #[test]
    fn overwritten_stretch_fails(at in 0usize..1000, junk in proptest::collection::vec(any::<u8>(), 1..64)) {
        let mut bytes = sealed(4);
        let at = at % bytes.len();
        let end = (at + junk.len()).min(bytes.len());
        let changed = bytes[at..end] != junk[..end - at];
        bytes[at..end].copy_from_slice(&junk[..end - at]);
        let (_, failed) = run(&bytes);
        prop_assert!(!changed || failed > 0);
    }
}
