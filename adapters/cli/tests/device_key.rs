//! The microcontroller's sealing key end to end on the host: `flightrec keygen` writes the
//! device key file, the flash store's key pages are provisioned from it
//! (`flightrec_flash::keys::parse_key_file`, the parser a firmware uses), dumps are sealed
//! into a flash image, and `flightrec verify --key` accepts exactly what it should.

use std::path::PathBuf;

use clap::Parser;
use flightrec_cli::{run, Cli, Env};
use flightrec_core::{Build, ClockInfo, DumpHeader, Level, Reason, Recorder};
use flightrec_flash::keys::{parse_key_file, KeySlots};
use flightrec_flash::{FlashStore, RamFlash};

const PAGE: usize = 256;
const STORE_PAGES: usize = 24;

fn cli(args: &[&str]) -> (u8, String, String) {
    let cli =
        Cli::try_parse_from(std::iter::once("flightrec").chain(args.iter().copied())).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&cli, &Env::default(), &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("device-key-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn header(i: u64) -> DumpHeader<'static> {
    DumpHeader {
        reason: Reason::Manual,
        detail: "",
        trigger_time: i,
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
    }
}

#[test]
fn keygen_device_key_provisions_the_flash_and_verify_accepts_its_dumps() {
    let d = dir("e2e");
    let (device, verify_key) = (d.join("device.key"), d.join("verify.key"));
    let (code, _, err) = cli(&[
        "keygen",
        "--device",
        device.to_str().unwrap(),
        "--verify",
        verify_key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let key = parse_key_file(&std::fs::read(&device).unwrap()).expect("the device parser reads it");
    let host = flightrec_cli::seal::read_key(&device).unwrap();
    assert_eq!((key.epoch(), key.secret()), (host.epoch(), host.secret()));

    // A device: dumps on the first pages, the key on two pages after them.
    let mut mem = vec![0xFF; (STORE_PAGES + 2) * PAGE];
    let store_end = (STORE_PAGES * PAGE) as u32;
    {
        let mut flash = RamFlash::<'_, PAGE, 4>::new(&mut mem);
        let mut keys = KeySlots::new(store_end..store_end + 2 * PAGE as u32);
        keys.mount(&mut flash).unwrap();
        keys.provision(&mut flash, &key).unwrap();
        let mut store = FlashStore::mount(&mut flash, 0..store_end).unwrap();
        for i in 0..3u64 {
            let rec: Recorder<4096> = Recorder::new();
            for r in 0..10 {
                rec.log(r, Level::Info, None, "t", "sealed on the device", &[])
                    .unwrap();
            }
            store
                .store_sealed(&rec, header(i), &mut [0u8; 256], &mut keys)
                .unwrap();
        }
        assert_eq!(keys.epoch(), Some(3));
    }
    let image = d.join("flash.img");
    std::fs::write(&image, &mem[..STORE_PAGES * PAGE]).unwrap();
    let (code, out, err) = cli(&[
        "verify",
        "--key",
        verify_key.to_str().unwrap(),
        "--last-epoch",
        "2",
        image.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out.matches("sealed and intact").count(), 4, "{out}"); // 3 dumps + summary

    // The same dumps, power cut while the newest one's seal frame was written (its last
    // bytes and its commit record never reached the flash): verify fails on it.
    let mut cut = mem[..STORE_PAGES * PAGE].to_vec();
    let newest = cut
        .chunks(PAGE)
        .enumerate()
        .filter(|(_, p)| p.starts_with(b"FLRP") && p[8..10] == [0, 0])
        .map(|(i, p)| (u32::from_le_bytes(p[4..8].try_into().unwrap()), i))
        .max()
        .unwrap()
        .1;
    let commit = newest * PAGE + 16;
    let len = u32::from_le_bytes(cut[commit + 4..commit + 8].try_into().unwrap()) as usize;
    cut[commit..commit + 16].fill(0xFF);
    for j in len - 40..len {
        let pos = j + 16;
        cut[(newest + pos / (PAGE - 16)) * PAGE + 16 + pos % (PAGE - 16)] = 0xFF;
    }
    let cut_image = d.join("cut.img");
    std::fs::write(&cut_image, &cut).unwrap();
    let (code, out, err) = cli(&[
        "verify",
        "--key",
        verify_key.to_str().unwrap(),
        cut_image.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(
        out.matches("\nok ").count() + usize::from(out.starts_with("ok ")),
        2,
        "{out}"
    );
    assert!(out.contains("FAIL"), "{out}");
}
