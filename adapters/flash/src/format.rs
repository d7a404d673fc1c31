//! On-flash framing: the page header every used page starts with, and the commit record in
//! a dump's first page. Both are 16 bytes, little-endian, each padded with `FF` to a whole
//! number of write words (a "slot").

use flightrec_core::crc::{crc32, Crc32};

/// Bytes of a page header or commit record before padding.
pub const RECORD_LEN: usize = 16;
/// `FLRP`: first bytes of a page header.
pub const PAGE_MAGIC: [u8; 4] = *b"FLRP";
/// `FLRC`: first bytes of a commit record.
pub const COMMIT_MAGIC: [u8; 4] = *b"FLRC";

/// A page header: which dump the page belongs to and where in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageHeader {
    /// The dump's id (increasing by one per dump started).
    pub dump: u32,
    /// Position of this page within the dump (0: its first page).
    pub index: u16,
    /// log2 of the erase size the page was written with.
    pub erase_log2: u8,
    /// log2 of the write size the page was written with.
    pub write_log2: u8,
}

impl PageHeader {
    /// The 16 bytes on flash.
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        put(&mut b, 0, &PAGE_MAGIC);
        put(&mut b, 4, &self.dump.to_le_bytes());
        put(&mut b, 8, &self.index.to_le_bytes());
        put(&mut b, 10, &[self.erase_log2, self.write_log2]);
        let crc = crc32(b.get(..12).unwrap_or(&[]));
        put(&mut b, 12, &crc.to_le_bytes());
        b
    }

    /// Parses and checks 16 bytes; `None` unless magic and CRC match.
    pub fn decode(b: &[u8; RECORD_LEN]) -> Option<PageHeader> {
        let [m0, m1, m2, m3, d0, d1, d2, d3, i0, i1, e, w, c0, c1, c2, c3] = *b;
        if [m0, m1, m2, m3] != PAGE_MAGIC
            || crc32(b.get(..12)?) != u32::from_le_bytes([c0, c1, c2, c3])
        {
            return None;
        }
        Some(PageHeader {
            dump: u32::from_le_bytes([d0, d1, d2, d3]),
            index: u16::from_le_bytes([i0, i1]),
            erase_log2: e,
            write_log2: w,
        })
    }
}

/// The commit record: written last, it makes a dump visible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Commit {
    /// Bytes of dump data.
    pub len: u32,
    /// CRC-32 of the dump data.
    pub data_crc: u32,
}

impl Commit {
    fn crc(head: &[u8], dump: u32) -> u32 {
        // The dump id is covered but not stored: a commit only checks in its own dump.
        let mut c = Crc32::new();
        c.update(head);
        c.update(&dump.to_le_bytes());
        c.finish()
    }

    /// The 16 bytes on flash for dump `dump`.
    pub fn encode(&self, dump: u32) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        put(&mut b, 0, &COMMIT_MAGIC);
        put(&mut b, 4, &self.len.to_le_bytes());
        put(&mut b, 8, &self.data_crc.to_le_bytes());
        let crc = Self::crc(b.get(..12).unwrap_or(&[]), dump);
        put(&mut b, 12, &crc.to_le_bytes());
        b
    }

    /// Parses and checks 16 bytes for dump `dump`; `None` unless magic and CRC match.
    pub fn decode(b: &[u8; RECORD_LEN], dump: u32) -> Option<Commit> {
        let [m0, m1, m2, m3, l0, l1, l2, l3, d0, d1, d2, d3, c0, c1, c2, c3] = *b;
        if [m0, m1, m2, m3] != COMMIT_MAGIC
            || Self::crc(b.get(..12)?, dump) != u32::from_le_bytes([c0, c1, c2, c3])
        {
            return None;
        }
        Some(Commit {
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            data_crc: u32::from_le_bytes([d0, d1, d2, d3]),
        })
    }
}

fn put(b: &mut [u8], at: usize, src: &[u8]) {
    for (d, s) in b.iter_mut().skip(at).zip(src) {
        *d = *s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let h = PageHeader {
            dump: 7,
            index: 3,
            erase_log2: 12,
            write_log2: 2,
        };
        let b = h.encode();
        assert_eq!(PageHeader::decode(&b), Some(h));
        for i in 0..RECORD_LEN {
            let mut d = b;
            d[i] ^= 0x10;
            assert_eq!(PageHeader::decode(&d), None, "flip in byte {i}");
        }
        assert_eq!(PageHeader::decode(&[0xFF; RECORD_LEN]), None);
        assert_eq!(PageHeader::decode(&[0; RECORD_LEN]), None);

        let c = Commit {
            len: 1000,
            data_crc: 0xdead_beef,
        };
        let b = c.encode(7);
        assert_eq!(Commit::decode(&b, 7), Some(c));
        assert_eq!(Commit::decode(&b, 8), None, "bound to its dump");
        assert_eq!(Commit::decode(&[0xFF; RECORD_LEN], 7), None);
    }
}
