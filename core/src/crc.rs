//! CRC-32 (IEEE 802.3, the zlib/PNG one: reflected polynomial `0xEDB88320`, initial value and
//! final XOR `0xFFFFFFFF`), used for every frame of a dump.
//!
//! A 16-entry table (64 bytes) processed a nibble at a time: small enough for a Cortex-M0, and
//! the host decoder may use any other implementation of the same CRC (e.g. `crc32fast`).
//!
//! ```
//! assert_eq!(flightrec_core::crc::crc32(b"123456789"), 0xCBF4_3926);
//! ```

const POLY: u32 = 0xEDB8_8320;

const TABLE: [u32; 16] = {
    let mut table = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 4 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// Incremental CRC-32: feed bytes with [`Crc32::update`], read with [`Crc32::finish`].
#[derive(Clone, Copy, Debug)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    /// A fresh CRC.
    pub const fn new() -> Self {
        Crc32(0xFFFF_FFFF)
    }

    /// Feed `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut c = self.0;
        for &b in bytes {
            c ^= b as u32;
            c = (c >> 4) ^ TABLE[(c & 0xF) as usize];
            c = (c >> 4) ^ TABLE[(c & 0xF) as usize];
        }
        self.0 = c;
    }

    /// The CRC of everything fed so far.
    pub const fn finish(self) -> u32 {
        !self.0
    }
}

/// CRC-32 of `bytes` in one call.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(bytes);
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn incremental_equals_whole() {
        let data: std::vec::Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for split in [0, 1, 7, 500, 999, 1000] {
            let mut c = Crc32::new();
            c.update(&data[..split]);
            c.update(&data[split..]);
            assert_eq!(c.finish(), crc32(&data));
        }
    }
}
