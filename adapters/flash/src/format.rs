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
        let geometry = u32::from(self.index)
            | u32::from(self.erase_log2) << 16
            | u32::from(self.write_log2) << 24;
        record([u32::from_le_bytes(PAGE_MAGIC), self.dump, geometry], crc32)
    }

    /// Parses and checks 16 bytes; `None` unless magic and CRC match.
    pub fn decode(b: &[u8; RECORD_LEN]) -> Option<PageHeader> {
        let [dump, geometry] = check(b, PAGE_MAGIC, crc32)?;
        Some(PageHeader {
            dump,
            index: geometry as u16,
            erase_log2: (geometry >> 16) as u8,
            write_log2: (geometry >> 24) as u8,
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
    /// Where `data_crc` sits in the record (the third word), for a reader that re-checks
    /// the data against a commit it decoded before.
    pub const DATA_CRC_AT: u32 = 8;

    fn crc(head: &[u8], dump: u32) -> u32 {
        // The dump id is covered but not stored: a commit only checks in its own dump.
        let mut c = Crc32::new();
        c.update(head);
        c.update(&dump.to_le_bytes());
        c.finish()
    }

    /// The 16 bytes on flash for dump `dump`.
    pub fn encode(&self, dump: u32) -> [u8; RECORD_LEN] {
        record(
            [u32::from_le_bytes(COMMIT_MAGIC), self.len, self.data_crc],
            |head| Self::crc(head, dump),
        )
    }

    /// Parses and checks 16 bytes for dump `dump`; `None` unless magic and CRC match.
    pub fn decode(b: &[u8; RECORD_LEN], dump: u32) -> Option<Commit> {
        let [len, data_crc] = check(b, COMMIT_MAGIC, |head| Self::crc(head, dump))?;
        Some(Commit { len, data_crc })
    }
}

// Both records are four little-endian words: magic, two of content, CRC of the 12 bytes
// before it. Handled as one `u128`: a few word moves, where byte-wise puts cost calls.

/// The 16 bytes of a record: `words` little-endian, then `crc` of their 12 bytes.
fn record(words: [u32; 3], crc: impl FnOnce(&[u8]) -> u32) -> [u8; RECORD_LEN] {
    let [w0, w1, w2] = words;
    let head = u128::from(w0) | u128::from(w1) << 32 | u128::from(w2) << 64;
    let c = crc(head.to_le_bytes().get(..12).unwrap_or(&[]));
    (head | u128::from(c) << 96).to_le_bytes()
}

/// The two content words of a record, if its magic is `magic` and its CRC is `crc` of its
/// first 12 bytes.
fn check(b: &[u8; RECORD_LEN], magic: [u8; 4], crc: impl FnOnce(&[u8]) -> u32) -> Option<[u32; 2]> {
    let v = u128::from_le_bytes(*b);
    let word = |i: u32| (v >> (32 * i)) as u32;
    if word(0) != u32::from_le_bytes(magic) || crc(b.get(..12)?) != word(3) {
        return None;
    }
    Some([word(1), word(2)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes against the layout the crate docs give, built here field by field (the
    /// round trip below cannot see a field moved on both sides).
    #[test]
    fn records_have_the_documented_layout() {
        use flightrec_core::crc::crc32;
        let b = PageHeader {
            dump: 0x0102_0304,
            index: 0x0506,
            erase_log2: 12,
            write_log2: 2,
        }
        .encode();
        let head: [u8; 12] = [b'F', b'L', b'R', b'P', 4, 3, 2, 1, 6, 5, 12, 2];
        assert_eq!(b[..12], head);
        assert_eq!(b[12..], crc32(&head).to_le_bytes());

        let b = Commit {
            len: 0x1122_3344,
            data_crc: 0xdead_beef,
        }
        .encode(0x0102_0304);
        let head: [u8; 12] = [
            b'F', b'L', b'R', b'C', 0x44, 0x33, 0x22, 0x11, 0xef, 0xbe, 0xad, 0xde,
        ];
        assert_eq!(b[..12], head);
        let at = Commit::DATA_CRC_AT as usize;
        assert_eq!(b[at..at + 4], 0xdead_beefu32.to_le_bytes());
        let mut bound = [0u8; 16];
        bound[..12].copy_from_slice(&head);
        bound[12..].copy_from_slice(&0x0102_0304u32.to_le_bytes());
        assert_eq!(b[12..], crc32(&bound).to_le_bytes());
    }

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
