//! Dumps written by core's `write_dump` from `arbitrary` records (every kind, hostile
//! strings), up to four in one file (two writers, so splices can mix devices), then mutated
//! frame by frame: removed, duplicated, moved and swapped frames, splices, header edits with
//! the CRC recomputed, bit flips with and without CRC repair, truncation, erased-flash runs,
//! inserted bytes.
//!
//! Checks, beyond no panic: bounded items and output per input byte, every record shown is a
//! whole record frame of the input, nothing printed holds a raw control character; an
//! unmutated file decodes to exactly the records written with no damage and exit 0 (the
//! model check); a mutated file that breaks a rule of the wire format makes the CLI exit 1,
//! one that breaks none decodes exactly with exit 0 (see `judge`).
#![no_main]

use arbitrary::Arbitrary;
use flightrec_decode_fuzz::judge::{judge, Verdict};
use flightrec_decode_fuzz::pieces::{File, Mutation};
use flightrec_decode_fuzz::{check, gen};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    scenario: gen::Scenario,
    mutations: Vec<Mutation>,
    format: u8,
}

/// Mutations applied at most: enough to combine a splice with a flip and a cut.
const MAX_MUTATIONS: usize = 3;

fuzz_target!(|input: Input| {
    let dumps = gen::build(&input.scenario);
    let mut file = File::of_dumps(dumps.iter().map(|d| d.bytes.as_slice()));
    let mut mutated = false;
    for m in input.mutations.iter().take(MAX_MUTATIONS) {
        mutated |= file.apply(m);
    }
    let (mut bytes, mut offsets) = (Vec::new(), Vec::new());
    file.render(&mut bytes, &mut offsets);

    let decoded = check::decode(&bytes);
    let verdict = judge(&file, &offsets);
    flightrec_decode_fuzz::judge::log(|| format!("{} mutated={mutated}", verdict.label()));
    if !mutated && !dumps.is_empty() {
        model_check(&dumps, &verdict);
    }
    let run = check::cli(&bytes, input.format);
    match verdict {
        Verdict::Clean(clean) => {
            assert_eq!(decoded.dumps, clean.dumps, "dumps or headers differ");
            let records: Vec<_> = decoded
                .records
                .iter()
                .map(|(offset, head, range)| (*offset, *head, &bytes[range.clone()]))
                .collect();
            let expected: Vec<_> = clean
                .records
                .iter()
                .map(|r| (r.offset, r.head, r.payload))
                .collect();
            assert_eq!(records, expected, "records differ");
            assert!(
                !decoded.stats.damaged(),
                "damage reported: {:?}",
                decoded.stats
            );
            assert_eq!(
                run.code,
                flightrec_cli::EXIT_OK,
                "exit 1 on an undamaged file: {}",
                String::from_utf8_lossy(&run.err)
            );
        }
        Verdict::Damaged(why, piece) => {
            if !why.pending_issue10() || cfg!(feature = "issue10-damage") {
                assert_eq!(
                    run.code,
                    flightrec_cli::EXIT_DAMAGED,
                    "damage not reported ({why:?} at piece {piece}); stats {:?}",
                    decoded.stats
                );
            }
        }
        Verdict::Undecided(_) => {}
    }
});

/// The unmutated file: the judge finds it clean, and what it expects is what was written.
fn model_check(dumps: &[gen::ModelDump], verdict: &Verdict<'_>) {
    let Verdict::Clean(clean) = verdict else {
        panic!("unmutated dumps judged {verdict:?}");
    };
    let mut offset = 0u64;
    let mut records = clean.records.iter();
    for (d, (at, header)) in dumps.iter().zip(&clean.dumps) {
        assert_eq!(*at, offset, "dump offset");
        assert_eq!(header, &d.header, "header differs from the one written");
        for r in &d.records {
            let got = records.next().expect("a record written is missing");
            assert_eq!((got.head, got.payload), (r.head, r.payload.as_slice()));
        }
        offset += d.bytes.len() as u64;
    }
    assert_eq!(clean.dumps.len(), dumps.len(), "dump count");
    assert!(records.next().is_none(), "a record not written");
}
