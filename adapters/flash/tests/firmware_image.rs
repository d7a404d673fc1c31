//! Checks the flash image the firmware example wrote in QEMU (`firmware-example/run.sh`
//! runs this with `FLIGHTREC_FLASH_IMAGE` and `FLIGHTREC_DUMPS` set), using this crate's
//! own reader: the events, triggers and reasons of the demo are there, and every dump is
//! sealed (checked with the auditor's key when `FLIGHTREC_VERIFY_KEY` names it).

mod common;

use common::{parse_dump, sealed_epoch, Parsed};
use flightrec_core::event::{decode, Decoded};
use flightrec_core::{Kind, Level, Reason};
use flightrec_flash::{geometry, FlashStore, ImageFlash, Status};

fn auth_failures(d: &Parsed, user: &str) -> usize {
    d.records
        .iter()
        .filter(|r| r.kind == Kind::AUTH_FAILURE)
        .filter(|r| {
            matches!(decode(r.kind, Level::Warn, &r.payload),
                     Ok(Decoded::AuthFailure(a)) if a.user == user)
        })
        .count()
}

fn has_log(d: &Parsed, target: &str, message: &str) -> bool {
    d.records.iter().filter(|r| r.kind == Kind::LOG).any(|r| {
        matches!(decode(r.kind, Level::from_u8(r.level).unwrap_or(Level::Info), &r.payload),
                 Ok(Decoded::Log(l)) if l.target == target && l.message == message)
    })
}

#[test]
#[ignore = "needs the image written by firmware-example/run.sh"]
fn the_firmware_image_holds_the_demo_dumps() {
    let path = std::env::var("FLIGHTREC_FLASH_IMAGE").expect("FLIGHTREC_FLASH_IMAGE");
    let image = std::fs::read(&path).expect("read the flash image");
    assert_eq!(
        geometry(&image),
        Some((1024, 4)),
        "page headers give the geometry"
    );
    let mut store =
        FlashStore::mount(ImageFlash::<1024, 4>::new(&image), 0..image.len() as u32).unwrap();
    let infos: Vec<_> = store.dumps().map(Result::unwrap).collect();
    let verify_key = std::env::var("FLIGHTREC_VERIFY_KEY").ok().map(|p| {
        let text = std::fs::read(&p).expect("read the verification key");
        flightrec_flash::keys::parse_key_file(&text).expect("a key file")
    });
    let mut epochs = Vec::new();
    let mut read_out = Vec::new();
    let mut dumps = Vec::new();
    for info in &infos {
        assert_eq!(info.status, Status::Committed, "{info:?}");
        let mut bytes = Vec::new();
        store.read_out(info, &mut bytes).unwrap();
        read_out.extend_from_slice(&bytes);
        let d = parse_dump(&bytes);
        assert!(d.complete, "dump {} has its end frame", info.id);
        // Sealed: the seal frame follows the end frame, and nothing else.
        let seal = &bytes[d.len..];
        assert_eq!(
            seal.len(),
            flightrec_core::seal::SEAL_FRAME_LEN,
            "dump {}",
            info.id
        );
        assert_eq!(seal[1], flightrec_core::seal::FRAME_SEAL);
        if let Some(k) = &verify_key {
            epochs.push(sealed_epoch(&bytes, k).expect("the seal checks"));
        }
        dumps.push(d);
    }
    if verify_key.is_some() {
        assert_eq!(
            epochs,
            [0, 1],
            "one epoch per dump, from the provisioned one"
        );
    }
    let reasons: Vec<Reason> = dumps.iter().map(|d| d.reason).collect();
    assert_eq!(
        reasons,
        [Reason::Threshold(Kind::AUTH_FAILURE), Reason::UntimelyDeath],
        "the brute-force threshold, then the panic"
    );

    let brute = &dumps[0];
    assert_eq!(auth_failures(brute, "admin"), 3, "the three wrong PINs");
    assert!(
        auth_failures(brute, "pairing") >= 5,
        "the burst crossed the threshold of 5"
    );
    assert!(has_log(brute, "console", "operator logged in"));
    let frames = brute
        .records
        .iter()
        .filter(|r| r.kind == Kind::FRAME)
        .count();
    assert!(frames >= 10, "defmt frames at every step ({frames})");

    let death = &dumps[1];
    assert_eq!(death.detail, "panic");
    assert!(
        has_log(death, "panic", "lockout table corrupted"),
        "the panic message"
    );
    assert!(has_log(death, "console", "lockout table inconsistent"));
    assert!(
        auth_failures(death, "pairing") >= 5,
        "the ring held the burst when it died"
    );
    // Sequence numbers go on across the reset: records are one stream.
    let last_brute = brute.records.last().unwrap().seq;
    assert!(death.records.iter().any(|r| r.seq > last_brute));

    // The host-side helper sees the same dumps.
    let helper = flightrec_flash::image_dumps(&image).expect("a flightrec-flash image");
    let bytes: Vec<u8> = helper.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    assert_eq!(bytes, read_out);

    if let Ok(path) = std::env::var("FLIGHTREC_DUMPS") {
        let uart = std::fs::read(path).expect("read dumps.bin");
        assert_eq!(
            uart, read_out,
            "what the firmware read out is what the image holds"
        );
    }
}
