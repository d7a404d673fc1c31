//! The sealing key on flash (feature `seal`): power cut at every write and erase of a
//! scenario of sealed dumps, checked against a model of the key's epochs. After every
//! cut there is a usable key, it is the old one or the new one of the evolution that was
//! interrupted (never an older one, never one whose epoch a committed dump used), no older
//! key is left anywhere on the flash once the key pages are mounted, and every committed
//! dump verifies with the provisioned key.

mod common;

use std::collections::BTreeMap;

use common::*;
use embedded_storage::nor_flash::NorFlash;
use flightrec_core::seal::SealKey;
use flightrec_flash::keys::{parse_key_file, KeySlots};
use flightrec_flash::{DumpInfo, Error, FlashStore, Status};

const PAGE: usize = 256;
const STORE_PAGES: u32 = 16;
/// The dump store, then the two key pages.
const STORE: std::ops::Range<u32> = 0..STORE_PAGES * PAGE as u32;
const KEYS: std::ops::Range<u32> = STORE.end..STORE.end + 2 * PAGE as u32;
const SIZE: usize = (STORE_PAGES as usize + 2) * PAGE;
const DUMPS: u32 = 6;

type Flash = CutFlash<PAGE, 4, 1>;

fn k0() -> SealKey {
    SealKey::new(*b"0123456789abcdef0123456789abcdef", 0)
}

/// The secret of epoch `e` (derived from the provisioned key).
fn secret(e: u64) -> [u8; 32] {
    *k0().at_epoch(e).unwrap().secret()
}

fn store_sealed<F: NorFlash>(
    store: &mut FlashStore<F>,
    keys: &mut KeySlots,
    index: u32,
) -> Result<DumpInfo, Error<F::Error>> {
    let ring = ring_for(u64::from(index), records_for(index));
    store.store_sealed(&ring, header(index), &mut [0u8; 256], keys)
}

/// A new device with its key provisioned: the flash and the operations that took.
fn provisioned(seed: u64) -> Flash {
    let mut flash = Flash::new(SIZE, seed);
    let mut keys = mount_keys(&mut flash, KEYS.clone()).unwrap();
    keys.provision(&mut flash, &k0()).unwrap();
    flash
}

/// Committed dumps: id -> the epoch its seal verifies for (`None`: unsealed or failing).
fn committed(flash: &mut Flash) -> BTreeMap<u32, Option<u64>> {
    let mut store = FlashStore::mount(&mut *flash, STORE.clone()).unwrap();
    let infos: Vec<DumpInfo> = store.dumps().map(Result::unwrap).collect();
    infos
        .iter()
        .filter(|i| i.status == Status::Committed)
        .map(|i| {
            let mut bytes = Vec::new();
            store.read_out(i, &mut bytes).unwrap();
            (i.id, sealed_epoch(&bytes, &k0()))
        })
        .collect()
}

/// Whether any secret of an epoch below `epoch` is anywhere on the flash.
fn older_secret_on_flash(mem: &[u8], epoch: u64) -> Option<u64> {
    (0..epoch).find(|&e| {
        let s = secret(e);
        mem.windows(32).any(|w| w == s)
    })
}

#[test]
fn power_cut_at_every_write_and_erase_of_sealed_dumps() {
    // The reference run: operations used when each dump was committed.
    let mut flash = provisioned(7);
    let start = flash.ops;
    let mut end_ops = Vec::new();
    {
        let mut keys = mount_keys(&mut flash, KEYS.clone()).unwrap();
        for i in 0..DUMPS {
            let mut store = FlashStore::mount(&mut flash, STORE.clone()).unwrap();
            let info = store_sealed(&mut store, &mut keys, i).unwrap();
            assert_eq!(info.id, i);
            end_ops.push(flash.ops);
            assert_eq!(keys.epoch(), Some(u64::from(i) + 1));
        }
    }
    let reference = committed(&mut flash);
    // Round robin reclaimed some: the cuts hit erases of older dumps' pages too.
    assert!(
        (2..DUMPS as usize).contains(&reference.len()),
        "{reference:?}"
    );
    for (id, epoch) in &reference {
        assert_eq!(
            *epoch,
            Some(u64::from(*id)),
            "dump {id} sealed with its own epoch"
        );
    }

    let total = *end_ops.last().unwrap();
    assert!(total - start > 1000, "{total} operations");
    let step = if cfg!(miri) { 199 } else { 1 };
    for k in (start..total).step_by(step) {
        let mut flash = provisioned(7 + k);
        flash.cut_at = Some(k);
        // The dump being written when power goes: dumps before it are sealed with epochs
        // 0..j, so the key is epoch j (old) or j + 1 (new).
        let j = end_ops.iter().position(|&e| e > k).unwrap() as u64;
        {
            let mut keys = mount_keys(&mut flash, KEYS.clone()).unwrap();
            for i in 0..DUMPS {
                let mut store = FlashStore::mount(&mut flash, STORE.clone()).unwrap();
                if store_sealed(&mut store, &mut keys, i).is_err() {
                    assert_eq!(u64::from(i), j, "cut at op {k}");
                    break;
                }
            }
        }
        assert!(flash.dead, "cut at op {k} happened");
        flash.power_on();

        let mut keys = mount_keys(&mut flash, KEYS.clone())
            .unwrap_or_else(|e| panic!("cut at op {k}: key pages: {e:?}"));
        let epoch = keys
            .epoch()
            .unwrap_or_else(|| panic!("cut at op {k}: no usable key"));
        assert!(
            epoch == j || epoch == j + 1,
            "cut at op {k} in dump {j}: key of epoch {epoch}"
        );
        assert_eq!(
            keys.key().unwrap().secret(),
            &secret(epoch),
            "cut at op {k}"
        );
        assert_eq!(
            older_secret_on_flash(&flash.mem, epoch),
            None,
            "cut at op {k}: an older key is left on the flash"
        );
        let dumps = committed(&mut flash);
        for (id, sealed) in &dumps {
            let e = sealed.unwrap_or_else(|| panic!("cut at op {k}: dump {id} does not verify"));
            assert_eq!(e, u64::from(*id), "cut at op {k}: dump {id}");
            assert!(
                e < epoch,
                "cut at op {k}: the key of epoch {epoch} sealed dump {id} already"
            );
        }

        // Power is back: sealing goes on from the stored key, epochs never repeat.
        for i in 100..102 {
            let mut store = FlashStore::mount(&mut flash, STORE.clone()).unwrap();
            let info = store_sealed(&mut store, &mut keys, i)
                .unwrap_or_else(|e| panic!("cut at op {k}: sealed dump after recovery: {e:?}"));
            let after = committed(&mut flash);
            let e = after[&info.id].unwrap_or_else(|| panic!("cut at op {k}: new dump fails"));
            assert_eq!(e, epoch + u64::from(i - 100), "cut at op {k}");
        }
    }
}

#[test]
fn provisioning_is_power_fail_safe_and_refuses_a_second_key() {
    let mut probe = Flash::new(SIZE, 3);
    let mut keys = mount_keys(&mut probe, KEYS.clone()).unwrap();
    keys.provision(&mut probe, &k0()).unwrap();
    let total = probe.ops;
    for k in 0..total {
        let mut flash = Flash::new(SIZE, 11 + k);
        flash.cut_at = Some(k);
        let mut keys = mount_keys(&mut flash, KEYS.clone()).unwrap();
        assert!(keys.provision(&mut flash, &k0()).is_err());
        flash.power_on();
        let mut keys = mount_keys(&mut flash, KEYS.clone()).unwrap();
        match keys.epoch() {
            // Cut before the record was whole: provision again.
            None => keys.provision(&mut flash, &k0()).unwrap(),
            Some(e) => assert_eq!((e, keys.key().unwrap().secret()), (0, k0().secret())),
        }
        let keys = mount_keys(&mut flash, KEYS.clone()).unwrap();
        assert_eq!(keys.epoch(), Some(0), "cut at op {k}");
    }
    // A provisioned key is never replaced (an older one could be put back).
    let mut keys = mount_keys(&mut probe, KEYS.clone()).unwrap();
    keys.evolve(&mut probe).unwrap();
    assert_eq!(
        keys.provision(&mut probe, &k0()).unwrap_err(),
        Error::KeyPresent
    );
    assert_eq!(
        mount_keys(&mut probe, KEYS.clone()).unwrap().epoch(),
        Some(1)
    );
}

#[test]
fn without_a_key_dumps_are_stored_unsealed() {
    let mut flash = Flash::new(SIZE, 5);
    let mut keys = mount_keys(&mut flash, KEYS.clone()).unwrap();
    let mut store = FlashStore::mount(&mut flash, STORE.clone()).unwrap();
    let info = store_sealed(&mut store, &mut keys, 0).unwrap();
    let mut bytes = Vec::new();
    store.read_out(&info, &mut bytes).unwrap();
    assert_eq!(bytes, dump_bytes(0));
}

#[test]
fn key_pages_never_mounted_do_not_let_dumps_go_unsealed() {
    let mut flash = provisioned(4);
    let mut keys = KeySlots::new(KEYS.clone());
    let mut store = FlashStore::mount(&mut flash, STORE.clone()).unwrap();
    assert_eq!(
        store_sealed(&mut store, &mut keys, 0).unwrap_err(),
        Error::Geometry
    );
    assert_eq!(store.dumps().count(), 0);
}

#[test]
fn key_pages_inside_the_dump_region_are_refused() {
    let mut flash = provisioned(9);
    let mut keys = mount_keys(&mut flash, KEYS.clone()).unwrap();
    let mut store = FlashStore::mount(&mut flash, 0..KEYS.end).unwrap();
    assert_eq!(
        store_sealed(&mut store, &mut keys, 0).unwrap_err(),
        Error::Geometry
    );
}

#[test]
fn the_key_file_keygen_writes_is_read() {
    let key = k0().at_epoch(5).unwrap();
    let hex: String = key.secret().iter().map(|b| format!("{b:02x}")).collect();
    let text = format!("flightrec-seal-key 1\nepoch 5\nkey {hex}\n");
    let parsed = parse_key_file(text.as_bytes()).unwrap();
    assert_eq!((parsed.epoch(), parsed.secret()), (5, key.secret()));
    for bad in [
        "flightrec-seal-key 2\nepoch 5\nkey 00\n".to_owned(),
        text.replace("epoch 5", "epoch -5"),
        text.replace("epoch 5\n", ""),
        text.replace(&hex[..2], "g0"),
        text.replace(&hex, &hex[..62]),
        text.replace("epoch 5", "epoch 99999999999999999999"),
        format!("{text}extra line\n"),
    ] {
        assert!(parse_key_file(bad.as_bytes()).is_none(), "{bad:?}");
    }
}
