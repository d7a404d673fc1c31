//! Power cut at every flash operation of a scenario of several dumps: no committed dump is
//! lost (unless the store had started reclaiming it) or altered, no phantom dump appears,
//! and the store keeps working after power comes back.

mod common;

use std::collections::BTreeSet;

use common::*;
use embedded_storage::nor_flash::NorFlash;
use flightrec_flash::{DumpInfo, Error, FlashStore, Status};

const DUMPS: u32 = 10;

fn store_dump<F: NorFlash>(
    store: &mut FlashStore<F>,
    index: u32,
) -> Result<DumpInfo, Error<F::Error>> {
    let ring = ring_for(u64::from(index), records_for(index));
    let mut scratch = [0u8; 256];
    store.store(&ring, header(index), &mut scratch)
}

/// Every dump listed, with the bytes read out of the committed ones.
fn listing<F: NorFlash>(store: &mut FlashStore<F>) -> Vec<(DumpInfo, Option<Vec<u8>>)>
where
    F::Error: std::fmt::Debug,
{
    let infos: Vec<DumpInfo> = store.dumps().map(|d| d.unwrap()).collect();
    infos
        .into_iter()
        .map(|info| {
            let bytes = (info.status == Status::Committed).then(|| {
                let mut out = Vec::new();
                store.read_out(&info, &mut out).unwrap();
                out
            });
            (info, bytes)
        })
        .collect()
}

fn committed_ids(list: &[(DumpInfo, Option<Vec<u8>>)]) -> BTreeSet<u32> {
    list.iter()
        .filter(|(i, _)| i.status == Status::Committed)
        .map(|(i, _)| i.id)
        .collect()
}

/// Checks that every committed dump is byte for byte the dump written under its id (dump
/// `id` of the scenario holds `dump_bytes(expected(id))`), that ids are unique and listed
/// oldest first.
fn check_exact(list: &[(DumpInfo, Option<Vec<u8>>)], expected: impl Fn(u32) -> Option<u32>) {
    let mut seen = BTreeSet::new();
    for (info, bytes) in list {
        assert!(seen.insert(info.id), "dump {} listed twice", info.id);
        if let Some(bytes) = bytes {
            let index =
                expected(info.id).unwrap_or_else(|| panic!("phantom committed dump {info:?}"));
            assert_eq!(bytes, &dump_bytes(index), "dump {} altered", info.id);
        }
    }
    let ids: Vec<u32> = list.iter().map(|(i, _)| i.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "listed oldest first");
}

struct Reference {
    /// Operation count when dump `i` was committed.
    end_ops: Vec<u64>,
    /// Committed dumps alive after dump `i` (index 0: before any).
    alive: Vec<BTreeSet<u32>>,
}

fn reference<const E: usize, const W: usize, const R: usize>(
    size: usize,
    region: std::ops::Range<u32>,
) -> Reference {
    let mut flash = CutFlash::<E, W, R>::new(size, 7);
    let mut end_ops = Vec::new();
    let mut alive = vec![BTreeSet::new()];
    let mut store = FlashStore::mount(&mut flash, region.clone()).unwrap();
    for i in 0..DUMPS {
        let info = store_dump(&mut store, i).unwrap();
        assert_eq!(info.id, i);
        let list = listing(&mut store);
        check_exact(&list, Some);
        let ids = committed_ids(&list);
        assert!(ids.contains(&i), "the dump just stored is listed");
        alive.push(ids);
        end_ops.push(flash.ops);
        store = FlashStore::mount(&mut flash, region.clone()).unwrap();
    }
    // Several dumps were reclaimed on the way: the scenario exercises round robin.
    assert!(!alive[DUMPS as usize].contains(&0));
    Reference { end_ops, alive }
}

fn cut_everywhere<const E: usize, const W: usize, const R: usize>(
    size: usize,
    region: std::ops::Range<u32>,
    step: usize,
) {
    let reference = reference::<E, W, R>(size, region.clone());
    let total = *reference.end_ops.last().unwrap();
    let mut checked = 0;
    for k in (0..total).step_by(step) {
        let mut flash = CutFlash::<E, W, R>::new(size, 7 + k);
        flash.cut_at = Some(k);
        // The dump being written when power goes.
        let j = reference.end_ops.iter().position(|&e| e > k).unwrap() as u32;
        {
            let mut store = FlashStore::mount(&mut flash, region.clone()).unwrap();
            for i in 0..DUMPS {
                if store_dump(&mut store, i).is_err() {
                    assert_eq!(i, j, "power lost during dump {j} (cut at op {k})");
                    break;
                }
            }
        }
        assert!(flash.dead, "cut at op {k} happened");
        flash.power_on();

        let mut store = FlashStore::mount(&mut flash, region.clone()).unwrap();
        let list = listing(&mut store);
        // Ids 0..=j hold dumps 0..=j: the interrupted one may have committed at the last op.
        check_exact(&list, |id| (id <= j).then_some(id));
        let ids = committed_ids(&list);
        let before = &reference.alive[j as usize];
        let after = &reference.alive[j as usize + 1];
        for id in before.intersection(after) {
            assert!(ids.contains(id), "cut at op {k}: committed dump {id} lost");
        }
        for (info, _) in &list {
            assert!(info.id <= j, "cut at op {k}: unknown dump {info:?}");
        }

        // Power is back: the store goes on. Dumps 100.. are new content.
        let mut next_ids = Vec::new();
        for i in 100..103 {
            let info = store_dump(&mut store, i)
                .unwrap_or_else(|e| panic!("cut at op {k}: store after recovery: {e:?}"));
            next_ids.push(info.id);
        }
        let list = listing(&mut store);
        check_exact(&list, |id| {
            if let Some(p) = next_ids.iter().position(|&n| n == id) {
                Some(100 + p as u32)
            } else {
                (id <= j).then_some(id)
            }
        });
        let ids = committed_ids(&list);
        assert!(
            next_ids.iter().all(|id| ids.contains(id)),
            "cut at op {k}: dumps stored after recovery are listed"
        );
        checked += 1;
    }
    assert!(checked > 0);
}

// Under Miri (no unsafe code here; it checks the safe code's behaviour) only a few cuts.
#[test]
fn power_cut_at_every_operation() {
    // 256-byte pages, 4-byte words, byte reads; 16 pages.
    let step = if cfg!(miri) { 997 } else { 1 };
    cut_everywhere::<256, 4, 1>(8192, 1024..1024 + 16 * 256, step);
}

#[test]
fn power_cut_with_wide_words_and_aligned_reads() {
    // 512-byte pages, 16-byte words (a whole header per word), 4-byte reads.
    let step = if cfg!(miri) { 131 } else { 3 };
    cut_everywhere::<512, 16, 4>(8 * 512, 0..8 * 512, step);
}

#[test]
fn power_cut_with_32_byte_words() {
    let step = if cfg!(miri) { 257 } else { 2 };
    cut_everywhere::<1024, 32, 32>(4 * 1024, 0..4 * 1024, step);
}
