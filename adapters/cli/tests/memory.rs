//! The CLI streams: decoding a large input holds memory that does not grow with its size.
//! A counting allocator measures the peak of heap bytes held while `flightrec decode` and
//! `flightrec info` run in this process (the only test of this binary, so nothing else
//! allocates meanwhile).

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::Parser;
use flightrec_cli::{run, Cli, Env};
use flightrec_core::{Build, ClockInfo, Level, Recorder, SessionId};

mod counting;

/// A recorder holding a few hundred records.
fn recorder() -> Box<Recorder<65536>> {
    let rec: Box<Recorder<65536>> = Box::new(Recorder::new());
    for i in 0..600u64 {
        let msg = format!("request {i} served in {} us", i * 7 % 1000);
        rec.log(
            i,
            Level::Info,
            Some(SessionId(i as u32 % 9)),
            "http",
            &msg,
            &[],
        )
        .unwrap();
    }
    rec
}

/// One dump of a few hundred records.
fn dump() -> Vec<u8> {
    let rec = recorder();
    let flightrec_core::Action::Dump(_) = rec.fire(flightrec_core::Reason::UntimelyDeath, 0) else {
        panic!("a death dumps at once")
    };
    let order = rec.take_order().unwrap();
    let build = Build {
        name: "svc",
        version: "1",
        id: &[],
    };
    let mut out = Vec::new();
    rec.dump(
        &order,
        ClockInfo::BOOT_MILLIS,
        &build,
        &mut out,
        &mut [0u8; 512],
    )
    .unwrap();
    out
}

/// Heap bytes `flightrec ARGS` holds at its peak, beyond what was held before.
fn peak_of(args: &[&str]) -> (usize, u8, String) {
    let mut argv = vec!["flightrec"];
    argv.extend(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    let mut err = Vec::with_capacity(4096);
    let (peak, code) =
        counting::peak_during(|| run(&cli, &Env::default(), &mut std::io::sink(), &mut err));
    (peak, code, String::from_utf8_lossy(&err).into_owned())
}

#[test]
fn memory_does_not_grow_with_the_input() {
    const INPUT: usize = 12 << 20;
    const BOUND: usize = 2 << 20;
    let one = dump();
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("flightrec-memory.bin");
    {
        let mut f = BufWriter::new(std::fs::File::create(&path).unwrap());
        for _ in 0..INPUT.div_ceil(one.len()) {
            f.write_all(&one).unwrap();
        }
    }
    drop(one);
    let p = path.to_str().unwrap();
    for args in [
        &["decode", p][..],
        &["decode", "--format", "json", p],
        &["decode", "--format", "forensic", p],
        &["info", p],
    ] {
        let (peak, code, err) = peak_of(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(
            peak < BOUND,
            "{args:?}: {peak} bytes held at the peak for a {INPUT}-byte input (bound {BOUND})"
        );
        eprintln!("{args:?}: peak {peak} bytes for a {INPUT}-byte input");
    }
    std::fs::remove_file(&path).unwrap();

    // A flash image of the paged layout, full of dumps: walked page by page.
    const PAGE: usize = 256;
    let mut mem = vec![0xFF; INPUT / 2];
    {
        let region = 0..mem.len() as u32;
        let mut store = flightrec_flash::FlashStore::mount(
            flightrec_flash::RamFlash::<PAGE, 4>::new(&mut mem),
            region,
        )
        .unwrap();
        let rec = recorder();
        let header = flightrec_core::DumpHeader {
            reason: flightrec_core::Reason::Manual,
            detail: "",
            trigger_time: 0,
            trigger_seq: None,
            clock: ClockInfo::BOOT_MILLIS,
            first_seq: 0,
            next_seq: 0,
            lost: 0,
            suppressed: 0,
            scope: None,
            index: 0,
            capacity: 0,
            build: Build {
                name: "fw",
                version: "1",
                id: &[],
            },
        };
        let used = |i: &flightrec_flash::DumpInfo| (i.first_page + i.pages) as usize * PAGE;
        while store
            .store(&*rec, header, &mut [0u8; 256])
            .is_ok_and(|i| used(&i) + 40_000 < INPUT / 2)
        {}
    }
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("flightrec-memory.img");
    std::fs::write(&path, &mem).unwrap();
    drop(mem);
    let p = path.to_str().unwrap();
    for args in [&["decode", p][..], &["info", p]] {
        let (peak, code, err) = peak_of(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(
            peak < BOUND,
            "{args:?}: {peak} bytes held at the peak for a {}-byte flash image (bound {BOUND})",
            INPUT / 2
        );
        eprintln!(
            "{args:?}: peak {peak} bytes for a {}-byte flash image",
            INPUT / 2
        );
    }
    std::fs::remove_file(&path).unwrap();
}
