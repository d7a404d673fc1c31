//! The store's API: listing, headers, read-out, erase, errors, geometry.

mod common;

use common::*;
use embedded_io::Write;
use flightrec_core::Reason;
use flightrec_flash::{geometry, Error, FlashStore, ImageFlash, ReadError, Status};

type Sim = CutFlash<256, 4, 1>;

fn stored(store: &mut FlashStore<&mut Sim>, index: u32) -> flightrec_flash::DumpInfo {
    let ring = ring_for(u64::from(index), records_for(index));
    let mut scratch = [0u8; 256];
    store.store(&ring, header(index), &mut scratch).unwrap()
}

#[test]
fn list_header_read_out_and_erase() {
    let mut flash = Sim::new(16 * 256, 1);
    let mut store = FlashStore::mount(&mut flash, 0..16 * 256).unwrap();
    let a = stored(&mut store, 0);
    let b = stored(&mut store, 1);
    assert_eq!((a.id, b.id), (0, 1));
    assert!(b.pages > 1, "dump 1 spans pages");
    let list: Vec<_> = store.dumps().map(Result::unwrap).collect();
    assert_eq!(list, [a, b]);

    let mut buf = [0u8; 128];
    let h = store.header(&b, &mut buf).unwrap();
    assert_eq!(
        (h.reason, h.index, h.build.name),
        (Reason::UntimelyDeath, 1, BUILD.name)
    );

    let mut out = Vec::new();
    assert_eq!(store.read_out(&b, &mut out).unwrap() as usize, out.len());
    assert_eq!(out, dump_bytes(1));

    assert_eq!(store.find(1).unwrap(), b);
    assert_eq!(store.find(9), Err(Error::NotFound));

    store.erase(&a).unwrap();
    let list: Vec<_> = store.dumps().map(Result::unwrap).collect();
    assert_eq!(list, [b]);
    let mut out = Vec::new();
    assert!(matches!(
        store.read_out(&a, &mut out),
        Err(ReadError::Store(Error::NotFound))
    ));

    store.erase_all().unwrap();
    assert_eq!(store.dumps().count(), 0);
    // Ids go on: a new dump is never confused with an erased one.
    assert_eq!(stored(&mut store, 2).id, 2);
}

#[test]
fn a_small_header_buffer_is_an_error_not_a_panic() {
    let mut flash = Sim::new(8 * 256, 1);
    let mut store = FlashStore::mount(&mut flash, 0..8 * 256).unwrap();
    let a = stored(&mut store, 0);
    let mut small = [0u8; 4];
    assert_eq!(store.header(&a, &mut small), Err(Error::ScratchTooSmall));
}

#[test]
fn a_dump_larger_than_the_region_fails_and_the_store_goes_on() {
    let mut flash = Sim::new(4 * 256, 1);
    let mut store = FlashStore::mount(&mut flash, 0..4 * 256).unwrap();
    let mut w = store.begin().unwrap();
    let big = [0x42u8; 2000];
    assert_eq!(w.write_all(&big), Err(Error::Full));
    assert_eq!(w.write_all(b"more"), Err(Error::Aborted));
    assert_eq!(w.commit().map(|_| ()), Err(Error::Aborted));
    let list: Vec<_> = store.dumps().map(Result::unwrap).collect();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].status, Status::Incomplete);
    let a = stored(&mut store, 2);
    assert_eq!(store.find(a.id).unwrap().status, Status::Committed);
}

#[test]
fn a_dropped_writer_leaves_nothing_to_the_next_dump() {
    // The writer's state (its buffer too) is kept in the store between dumps.
    let mut flash = Sim::new(8 * 256, 1);
    let mut store = FlashStore::mount(&mut flash, 0..8 * 256).unwrap();
    {
        let mut w = store.begin().unwrap();
        assert_eq!(w.id(), 0);
        // Past the first page, with a part of a chunk left buffered.
        w.write_all(&[0x42; 300]).unwrap();
    }
    let b = stored(&mut store, 1);
    assert_eq!((b.id, b.first_page), (1, 2));
    let mut out = Vec::new();
    store.read_out(&b, &mut out).unwrap();
    assert_eq!(out, dump_bytes(1));
    let statuses: Vec<_> = store.dumps().map(|d| d.unwrap().status).collect();
    assert_eq!(statuses, [Status::Incomplete, Status::Committed]);
}

#[test]
fn an_incomplete_dump_reads_out_as_far_as_it_got() {
    let mut flash = Sim::new(8 * 256, 1);
    let bytes = dump_bytes(3);
    {
        let mut store = FlashStore::mount(&mut flash, 0..8 * 256).unwrap();
        let mut w = store.begin().unwrap();
        w.write_all(&bytes[..700]).unwrap();
        // Power lost: no commit (the writer is dropped).
    }
    let mut store = FlashStore::mount(&mut flash, 0..8 * 256).unwrap();
    let info = store.dumps().next().unwrap().unwrap();
    assert_eq!(info.status, Status::Incomplete);
    let mut out = Vec::new();
    store.read_out(&info, &mut out).unwrap();
    // The last partial chunk stayed in RAM: what reached flash is a prefix.
    assert!(out.len() <= 700 && out.len() >= 700 - 32, "{}", out.len());
    assert_eq!(out[..], bytes[..out.len()]);
    // The next dump starts after it, and the incomplete one stays listed.
    let next = {
        let ring = ring_for(4, records_for(4));
        let mut scratch = [0u8; 256];
        store.store(&ring, header(4), &mut scratch).unwrap()
    };
    assert_eq!(next.id, info.id + 1);
    let statuses: Vec<_> = store.dumps().map(|d| d.unwrap().status).collect();
    assert_eq!(statuses, [Status::Incomplete, Status::Committed]);
}

#[test]
fn an_unformatted_device_is_usable() {
    for seed in 1..30 {
        let mut flash = Sim::garbage(8 * 256, seed);
        let mut store = FlashStore::mount(&mut flash, 0..8 * 256).unwrap();
        for (info, _) in store.dumps().map(Result::unwrap).map(|i| (i, ())) {
            assert_ne!(info.status, Status::Committed, "noise is no dump");
        }
        let a = stored(&mut store, 1);
        assert_eq!(store.find(a.id).unwrap().status, Status::Committed);
    }
}

#[test]
fn bad_regions_and_geometries_are_refused() {
    let mut flash = Sim::new(8 * 256, 1);
    for region in [0..0, 1..256, 0..300, 0..9 * 256, 256..256] {
        assert!(
            matches!(
                FlashStore::mount(&mut flash, region.clone()),
                Err(Error::Geometry)
            ),
            "{region:?}"
        );
    }
    let mut small_pages = CutFlash::<64, 4, 1>::new(1024, 1);
    assert!(matches!(
        FlashStore::mount(&mut small_pages, 0..1024),
        Err(Error::Geometry)
    ));
    let mut wide_words = CutFlash::<256, 64, 1>::new(1024, 1);
    assert!(matches!(
        FlashStore::mount(&mut wide_words, 0..1024),
        Err(Error::Geometry)
    ));
}

#[test]
fn an_image_is_read_back_with_its_geometry() {
    let mut flash = Sim::new(8 * 256, 1);
    {
        let mut store = FlashStore::mount(&mut flash, 0..8 * 256).unwrap();
        stored(&mut store, 0);
        stored(&mut store, 1);
    }
    let image = flash.mem.clone();
    assert_eq!(geometry(&image), Some((256, 4)));
    assert_eq!(geometry(&[0xFF; 4096]), None);
    let mut store = FlashStore::mount(ImageFlash::<256, 4>::new(&image), 0..2048).unwrap();
    let infos: Vec<_> = store.dumps().map(Result::unwrap).collect();
    assert_eq!(infos.len(), 2);
    for (i, info) in infos.iter().enumerate() {
        let mut out = Vec::new();
        store.read_out(info, &mut out).unwrap();
        assert_eq!(out, dump_bytes(i as u32));
    }
    let all = flightrec_flash::image_dumps(&image).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].1, dump_bytes(1));
    // Read-only: storing fails cleanly.
    assert!(store.begin().is_err());
}
