//! A NOR flash in RAM with real NOR semantics, for firmware demos and tests.

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// Why [`RamFlash`] refused an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RamFlashError {
    /// Offset or length not a multiple of the read, write or erase size.
    NotAligned,
    /// Outside the memory.
    OutOfBounds,
    /// A write to a word that is not erased: NOR flash can only clear bits, and a word is
    /// written once between erases.
    NotErased,
}

impl NorFlashError for RamFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            RamFlashError::NotAligned => NorFlashErrorKind::NotAligned,
            RamFlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            RamFlashError::NotErased => NorFlashErrorKind::Other,
        }
    }
}

/// NOR flash simulated in a byte slice: erase sets whole `ERASE`-byte pages to `FF`, a write
/// goes to whole `WRITE`-byte words that must be erased (all `FF`) and clears bits (`&`).
///
/// ```
/// use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
/// use flightrec_flash::RamFlash;
/// let mut mem = [0u8; 1024];
/// let mut flash: RamFlash<'_, 256, 4> = RamFlash::new(&mut mem);
/// flash.erase(0, 256).unwrap();
/// flash.write(0, &[1, 2, 3, 4]).unwrap();
/// assert!(flash.write(0, &[1, 2, 3, 4]).is_err(), "a word is written once");
/// ```
pub struct RamFlash<'a, const ERASE: usize, const WRITE: usize> {
    mem: &'a mut [u8],
    erases: u32,
}

impl<'a, const ERASE: usize, const WRITE: usize> RamFlash<'a, ERASE, WRITE> {
    /// A flash over `mem` as it is (not erased: a new device would call `erase` first).
    pub fn new(mem: &'a mut [u8]) -> Self {
        RamFlash { mem, erases: 0 }
    }

    /// The raw image.
    pub fn image(&self) -> &[u8] {
        self.mem
    }

    /// Pages erased since creation (for wear accounting).
    pub const fn erases(&self) -> u32 {
        self.erases
    }

    fn range(
        &self,
        offset: u32,
        len: usize,
        align: usize,
    ) -> Result<core::ops::Range<usize>, RamFlashError> {
        let start = offset as usize;
        if start % align != 0 || len % align != 0 {
            return Err(RamFlashError::NotAligned);
        }
        let end = start.checked_add(len).ok_or(RamFlashError::OutOfBounds)?;
        if end > self.mem.len() {
            return Err(RamFlashError::OutOfBounds);
        }
        Ok(start..end)
    }
}

impl<const ERASE: usize, const WRITE: usize> ErrorType for RamFlash<'_, ERASE, WRITE> {
    type Error = RamFlashError;
}

impl<const ERASE: usize, const WRITE: usize> ReadNorFlash for RamFlash<'_, ERASE, WRITE> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let r = self.range(offset, bytes.len(), 1)?;
        let src = self.mem.get(r).ok_or(RamFlashError::OutOfBounds)?;
        flightrec_core::bytes::copy(bytes, src);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl<const ERASE: usize, const WRITE: usize> NorFlash for RamFlash<'_, ERASE, WRITE> {
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        let len = (to as usize)
            .checked_sub(from as usize)
            .ok_or(RamFlashError::OutOfBounds)?;
        let r = self.range(from, len, ERASE)?;
        flightrec_core::bytes::fill(self.mem.get_mut(r).ok_or(RamFlashError::OutOfBounds)?, 0xFF);
        self.erases = self.erases.saturating_add((len / ERASE) as u32);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let r = self.range(offset, bytes.len(), WRITE)?;
        let dst = self.mem.get_mut(r).ok_or(RamFlashError::OutOfBounds)?;
        if dst.iter().any(|&b| b != 0xFF) {
            return Err(RamFlashError::NotErased);
        }
        for (d, s) in dst.iter_mut().zip(bytes) {
            *d &= *s;
        }
        Ok(())
    }
}
