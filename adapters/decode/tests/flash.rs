//! Flash images read page by page: real images written by the flash store decode whole,
//! and damaged or random ones never panic, never hang, and lose nothing silently.

mod common;
use std::io::{Cursor, Read};

use flightrec_core::{Build, ClockInfo, DumpHeader, Level, Reason, Recorder, RecorderConfig};
use flightrec_decode::flash::{FlashImage, Trouble};
use flightrec_decode::{Decoder, Item};
use flightrec_flash::{FlashStore, RamFlash, Status};

const PAGE: usize = 256;
const PAGES: usize = 24;

fn image(sizes: &[u64]) -> Vec<u8> {
    let mut mem = vec![0xFF; PAGES * PAGE];
    let mut store =
        FlashStore::mount(RamFlash::<PAGE, 4>::new(&mut mem), 0..(PAGES * PAGE) as u32).unwrap();
    store_dumps(&mut store, sizes);
    mem
}

fn store_dumps(store: &mut FlashStore<RamFlash<'_, PAGE, 4>>, sizes: &[u64]) {
    for (d, &n) in sizes.iter().enumerate() {
        let rec: Recorder<8192> = Recorder::new(&RecorderConfig::DEFAULT);
        for i in 0..n {
            rec.log(i, Level::Info, None, "t", &format!("d{d} r{i}"), &[])
                .unwrap();
        }
        let header = DumpHeader {
            reason: Reason::Manual,
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
        store.store(&rec, header, &mut [0u8; 256]).unwrap();
    }
}

/// Every record of every stretch of an image, and whether anything was damaged.
fn read_all(bytes: &[u8]) -> Option<(Vec<String>, bool)> {
    let mut img = FlashImage::open(Cursor::new(bytes)).unwrap()?;
    let mut seen = Vec::new();
    let mut damaged = false;
    while let Some(d) = img.next_dump().unwrap() {
        damaged |= d.damaged();
        if d.trouble.contains(&Trouble::Reclaimed) {
            continue;
        }
        let mut data = Vec::new();
        img.data(&d).read_to_end(&mut data).unwrap();
        assert!(data.len() as u64 <= d.len, "{d:?}");
        let mut dec = Decoder::new(&data[..]);
        while let Some(item) = dec.next().unwrap() {
            match item {
                Item::Record { payload, .. } => {
                    seen.push(String::from_utf8_lossy(payload).into_owned())
                }
                // A dump of a version this decoder does not know is not guessed at (the
                // spec's rule), so a flipped version byte costs its dump: said, not hidden.
                Item::Unsupported { .. } => seen.push("unsupported".to_owned()),
                _ => {}
            }
        }
        damaged |= dec.stats().damaged();
    }
    Some((seen, damaged))
}

#[test]
fn store_images_read_whole() {
    let bytes = image(&[5, 30, 2]);
    let mut img = FlashImage::open(Cursor::new(&bytes[..])).unwrap().unwrap();
    let dumps: Vec<_> = std::iter::from_fn(|| img.next_dump().unwrap()).collect();
    assert_eq!(dumps.len(), 3);
    assert!(dumps
        .iter()
        .all(|d| d.status == Status::Committed && d.trouble.is_empty()));
    let (seen, damaged) = read_all(&bytes).unwrap();
    assert!(!damaged);
    assert_eq!(seen.len(), 37);
    // A blank image, or one of another layout, is none.
    assert!(FlashImage::open(Cursor::new(&[0xFFu8; 4096][..]))
        .unwrap()
        .is_none());
    assert!(FlashImage::open(Cursor::new(&common::boot_dump()[..]))
        .unwrap()
        .is_none());
}

#[test]
fn every_byte_flip_and_cut_is_noticed_and_costs_little() {
    let bytes = image(&[4, 20]);
    let (all, _) = read_all(&bytes).unwrap();
    let used = bytes.iter().rposition(|&b| b != 0xFF).unwrap() + 1;
    // Bytes that hold something (the unused rest of a page is erased flash nobody reads).
    for at in (0..used).filter(|&at| bytes[at] != 0xFF).step_by(3) {
        let mut b = bytes.clone();
        b[at] ^= 0x08;
        let Some((seen, damaged)) = read_all(&b) else {
            panic!("flip at {at}: no longer an image")
        };
        assert!(damaged, "flip at {at} went unnoticed");
        // One flip costs at most the records of one frame (or the frame and the one its
        // CRC failure runs into), never a whole dump.
        if !seen.iter().any(|s| s == "unsupported") {
            assert!(
                seen.len() + 2 >= all.len(),
                "flip at {at}: {} of {}",
                seen.len(),
                all.len()
            );
        }
    }
    for cut in (PAGE..used).step_by(37) {
        let Some((seen, damaged)) = read_all(&bytes[..cut]) else {
            continue;
        };
        assert!(damaged || cut % PAGE == 0, "cut at {cut} went unnoticed");
        assert!(seen.len() <= all.len());
    }
}

#[test]
fn random_images_never_panic() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let base = image(&[3, 12, 1]);
    for _ in 0..300 {
        let mut b = base.clone();
        // Page-level edits: copy, swap and erase pages, then a few byte flips.
        for _ in 0..(next() % 6) {
            let (p, q) = ((next() as usize) % PAGES, (next() as usize) % PAGES);
            match next() % 3 {
                0 => {
                    let page = b[p * PAGE..(p + 1) * PAGE].to_vec();
                    b[q * PAGE..(q + 1) * PAGE].copy_from_slice(&page);
                }
                1 => b[p * PAGE..(p + 1) * PAGE].fill(0xFF),
                _ => b[p * PAGE..(p + 1) * PAGE].fill(0),
            }
        }
        for _ in 0..(next() % 4) {
            let at = (next() as usize) % b.len();
            b[at] ^= 1 << (next() % 8);
        }
        let cut = b.len() - (next() as usize % 2) * (next() as usize % PAGE);
        let _ = read_all(&b[..cut]);
    }
}
