//! Reading a raw flash image (a copy of the region, e.g. written to the host by the firmware)
//! with the same code that reads the device: [`ImageFlash`] is a read-only [`NorFlash`] over
//! a byte slice.

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use crate::format::{PageHeader, RECORD_LEN};

/// Why [`ImageFlash`] refused an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Outside the image.
    OutOfBounds,
    /// An image is read-only.
    ReadOnly,
}

impl NorFlashError for ImageError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            ImageError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            ImageError::ReadOnly => NorFlashErrorKind::Other,
        }
    }
}

/// A flash image as a read-only flash with `ERASE`-byte pages and `WRITE`-byte words (the
/// geometry it was written with: see [`geometry`]).
///
/// ```
/// use flightrec_flash::{FlashStore, ImageFlash};
/// let image = [0xFFu8; 4 * 256];
/// let mut store = FlashStore::mount(ImageFlash::<256, 4>::new(&image), 0..1024).unwrap();
/// assert_eq!(store.dumps().count(), 0);
/// ```
pub struct ImageFlash<'a, const ERASE: usize, const WRITE: usize> {
    image: &'a [u8],
}

impl<'a, const ERASE: usize, const WRITE: usize> ImageFlash<'a, ERASE, WRITE> {
    /// Reads `image`.
    pub const fn new(image: &'a [u8]) -> Self {
        ImageFlash { image }
    }
}

impl<const ERASE: usize, const WRITE: usize> ErrorType for ImageFlash<'_, ERASE, WRITE> {
    type Error = ImageError;
}

impl<const ERASE: usize, const WRITE: usize> ReadNorFlash for ImageFlash<'_, ERASE, WRITE> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), ImageError> {
        let start = offset as usize;
        let src = start
            .checked_add(bytes.len())
            .and_then(|end| self.image.get(start..end))
            .ok_or(ImageError::OutOfBounds)?;
        flightrec_core::bytes::copy(bytes, src);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.image.len()
    }
}

impl<const ERASE: usize, const WRITE: usize> NorFlash for ImageFlash<'_, ERASE, WRITE> {
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, _from: u32, _to: u32) -> Result<(), ImageError> {
        Err(ImageError::ReadOnly)
    }

    fn write(&mut self, _offset: u32, _bytes: &[u8]) -> Result<(), ImageError> {
        Err(ImageError::ReadOnly)
    }
}

/// The geometry an image was written with, from its first valid page header:
/// `(erase size, write size)` in bytes. Page headers sit at multiples of the erase size
/// and record it, so a header found at a multiple of the size it claims is taken.
pub fn geometry(image: &[u8]) -> Option<(usize, usize)> {
    for log2 in 7..=20u32 {
        let page = 1usize << log2;
        for at in (0..image.len()).step_by(page) {
            let Some(b) = image.get(at..at + RECORD_LEN).and_then(|b| b.first_chunk()) else {
                continue;
            };
            if let Some(h) = page_header_at(at as u64, b) {
                if u32::from(h.erase_log2) == log2 {
                    return Some((page, 1 << h.write_log2));
                }
            }
        }
    }
    None
}

/// The page header in `bytes`, found at byte `offset` of an image, if it checks and
/// `offset` is a multiple of the page size it records (with a geometry the store
/// accepts): how a host reader tells a page header from data shaped like one. Page by
/// page, this is the lowest-level listing of an image (see the crate docs for the rest).
///
/// ```
/// use flightrec_flash::{page_header_at, PageHeader};
/// let h = PageHeader { dump: 3, index: 0, erase_log2: 8, write_log2: 2 }.encode();
/// assert!(page_header_at(512, &h).is_some());
/// assert!(page_header_at(128, &h).is_none(), "not at a multiple of its 256-byte page");
/// ```
pub fn page_header_at(offset: u64, bytes: &[u8; RECORD_LEN]) -> Option<PageHeader> {
    let h = PageHeader::decode(bytes)?;
    let aligned = (7..=20).contains(&h.erase_log2)
        && h.write_log2 <= 5
        && offset % (1u64 << h.erase_log2) == 0;
    aligned.then_some(h)
}

/// Every dump in a raw image written by [`crate::FlashStore`], oldest first, with its
/// wire-format bytes (an incomplete dump's as far as they got; a corrupt dump's are empty),
/// or `None` if the image holds no page header of this crate (not such an image, or
/// blank). For host tools (feature `alloc`); the image must start at the region's start.
///
/// ```
/// let blank = [0xFFu8; 2048];
/// assert!(flightrec_flash::image_dumps(&blank).is_none());
/// ```
#[cfg(feature = "alloc")]
pub fn image_dumps(
    image: &[u8],
) -> Option<alloc::vec::Vec<(crate::DumpInfo, alloc::vec::Vec<u8>)>> {
    use crate::{FlashStore, Status};
    use alloc::vec::Vec;

    fn read<const E: usize, const W: usize>(
        image: &[u8],
    ) -> Option<Vec<(crate::DumpInfo, Vec<u8>)>> {
        let len = (image.len() / E * E) as u32;
        let mut store = FlashStore::mount(ImageFlash::<E, W>::new(image), 0..len).ok()?;
        let infos: Vec<_> = store.dumps().filter_map(Result::ok).collect();
        let mut out = Vec::new();
        for info in infos {
            let mut bytes = Vec::new();
            if info.status != Status::Corrupt
                && store.read_out(&info, &mut VecOut(&mut bytes)).is_err()
            {
                bytes.clear();
            }
            out.push((info, bytes));
        }
        Some(out)
    }

    macro_rules! dispatch {
        ($e:expr, $w:expr; $($ev:literal)*; $($wv:literal)*) => {
            dispatch!(@e $e, $w; [$($ev)*]; [$($wv)*])
        };
        (@e $e:expr, $w:expr; [$($ev:literal)*]; $ws:tt) => {
            match $e {
                $( $ev => dispatch!(@w $ev, $w; $ws), )*
                _ => None,
            }
        };
        (@w $ev:literal, $w:expr; [$($wv:literal)*]) => {
            match $w {
                $( $wv => read::<$ev, $wv>(image), )*
                _ => None,
            }
        };
    }

    let (erase, write) = geometry(image)?;
    dispatch!(erase, write;
        128 256 512 1024 2048 4096 8192 16384 32768 65536 131072 262144;
        1 2 4 8 16 32)
}

#[cfg(feature = "alloc")]
struct VecOut<'a>(&'a mut alloc::vec::Vec<u8>);

#[cfg(feature = "alloc")]
impl embedded_io::ErrorType for VecOut<'_> {
    type Error = core::convert::Infallible;
}

#[cfg(feature = "alloc")]
impl embedded_io::Write for VecOut<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}
