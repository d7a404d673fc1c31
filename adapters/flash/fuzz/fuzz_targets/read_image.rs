//! Random bytes as a flash image: the reader lists, decodes headers and reads out without
//! panicking, looping or reading out a committed dump whose bytes do not match its CRC; a
//! dump stored over the random image then reads back exactly.
#![no_main]

use embedded_io::Write;
use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};
use flightrec_core::crc::crc32;
use flightrec_flash::{geometry, FlashStore, ImageFlash, Status};
use libfuzzer_sys::fuzz_target;

/// A writable flash over a copy of the input: NOR semantics enforced loosely (writes clear
/// bits), enough to store over whatever the image held.
struct VecFlash<const E: usize, const W: usize>(Vec<u8>);

impl<const E: usize, const W: usize> ErrorType for VecFlash<E, W> {
    type Error = NorFlashErrorKind;
}
impl<const E: usize, const W: usize> ReadNorFlash for VecFlash<E, W> {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let o = offset as usize;
        bytes.copy_from_slice(
            self.0
                .get(o..o + bytes.len())
                .ok_or(NorFlashErrorKind::OutOfBounds)?,
        );
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.0.len()
    }
}
impl<const E: usize, const W: usize> NorFlash for VecFlash<E, W> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.0
            .get_mut(from as usize..to as usize)
            .ok_or(NorFlashErrorKind::OutOfBounds)?
            .fill(0xFF);
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let o = offset as usize;
        let dst = self
            .0
            .get_mut(o..o + bytes.len())
            .ok_or(NorFlashErrorKind::OutOfBounds)?;
        assert!(
            dst.iter().all(|&b| b == 0xFF),
            "write over a word that is not erased"
        );
        for (d, s) in dst.iter_mut().zip(bytes) {
            *d &= s;
        }
        Ok(())
    }
}

fn check<const E: usize, const W: usize>(data: &[u8]) {
    let pages = data.len() / E;
    if pages == 0 {
        return;
    }
    let image = &data[..pages * E];
    let region = 0..(pages * E) as u32;
    let mut store = FlashStore::mount(ImageFlash::<E, W>::new(image), region.clone()).unwrap();
    let infos: Vec<_> = store.dumps().map(|d| d.unwrap()).collect();
    assert!(infos.len() <= pages);
    for info in &infos {
        let mut buf = [0u8; 256];
        let _ = store.header(info, &mut buf);
        let mut out = Vec::new();
        match store.read_out(info, &mut out) {
            Ok(n) => {
                assert_eq!(n as usize, out.len());
                assert!(out.len() <= image.len());
                if info.status == Status::Committed {
                    // A committed dump is exactly what its commit record describes.
                    let at = (info.first_page as usize) * E + 16usize.next_multiple_of(W);
                    let commit = &image[at..at + 16];
                    assert_eq!(
                        u32::from_le_bytes(commit[4..8].try_into().unwrap()) as usize,
                        out.len()
                    );
                    assert_eq!(
                        u32::from_le_bytes(commit[8..12].try_into().unwrap()),
                        crc32(&out)
                    );
                }
            }
            Err(_) => assert_ne!(info.status, Status::Committed),
        }
    }
    // Storing over whatever was there works and reads back.
    let mut store = FlashStore::mount(VecFlash::<E, W>(image.to_vec()), region).unwrap();
    let payload: Vec<u8> = image.iter().take(300).copied().collect();
    let mut w = store.begin().unwrap();
    let full = w.write_all(&payload).is_err();
    if !full {
        let info = w.commit().unwrap();
        let mut out = Vec::new();
        store.read_out(&info, &mut out).unwrap();
        assert_eq!(out, payload);
    }
    let _ = geometry(image);
}

fuzz_target!(|data: &[u8]| {
    match data.first().map(|b| b % 3) {
        Some(0) => check::<128, 1>(data),
        Some(1) => check::<256, 4>(data),
        _ => check::<512, 16>(data),
    }
});
