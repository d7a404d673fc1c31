//! Salvage of a ring whose memory survived a reset (a `.uninit` RAM section): its bytes
//! may hold anything, from a ring cut off mid-update to power-on noise.

use super::{record_size, Ring, FLAG_SESSION, LEVEL_MASK};
use crate::Level;

/// What [`Ring::salvage`] found and kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Salvage {
    /// Whole records kept, oldest first from the ring's tail.
    pub kept: usize,
    /// Records the bookkeeping claimed but that failed validation (dropped with everything
    /// after them).
    pub dropped: usize,
    /// Whether the positions and counters were rebuilt (the ring was not left consistent,
    /// e.g. a reset in the middle of a push or an eviction).
    pub repaired: bool,
}

/// Counters and sequence numbers above this are taken for noise: far beyond any real count,
/// and far enough below `u64::MAX` that counting on cannot overflow.
const COUNTER_LIMIT: u64 = 1 << 62;

impl<const N: usize> Ring<N> {
    /// Validates a ring whose bytes came from anywhere (memory that survived a reset) and
    /// keeps its good records: walking from the oldest record, each record header must
    /// carry a known level, no unknown flag bits and a length that stays inside the bytes
    /// the ring claims to hold; the walk stops at the first record that does not. Positions
    /// and counts are then rebuilt from what the walk found.
    ///
    /// A ring that was consistent is left unchanged. After salvage
    /// every operation works as on a ring that was never reset; sequence numbers go on.
    ///
    /// ```
    /// use flightrec_core::{Ring, RecordMeta, Kind, Level};
    /// let mut ring: Ring<64> = Ring::new();
    /// let meta = RecordMeta { time: 1, level: Level::Info, kind: Kind::FRAME, session: None };
    /// ring.push(&meta, b"kept").unwrap();
    /// let report = ring.salvage();
    /// assert_eq!((report.kept, report.repaired), (1, false));
    /// ```
    pub fn salvage(&mut self) -> Salvage {
        if self.first_seq > COUNTER_LIMIT {
            self.first_seq = 0;
        }
        if self.tail >= N || self.head >= N || N == 0 {
            let claimed = self.count;
            self.reset_positions(0);
            return Salvage {
                kept: 0,
                dropped: claimed,
                repaired: true,
            };
        }
        let used = self.used();
        let mut walked = 0usize;
        let mut kept = 0usize;
        while kept < self.count && walked < used {
            let word = u32::from_le_bytes(self.bytes_at(self.wrap(self.tail + walked)));
            let flags = (word >> 24) as u8;
            let known_flags = LEVEL_MASK | FLAG_SESSION;
            if flags & !known_flags != 0 || Level::from_u8(flags & LEVEL_MASK).is_none() {
                break;
            }
            let size = record_size(word);
            if size > used - walked {
                break;
            }
            walked += size;
            kept += 1;
        }
        let head = self.wrap(self.tail + walked);
        let consistent = kept == self.count && walked == used && self.head == head;
        if consistent {
            return Salvage {
                kept,
                dropped: 0,
                repaired: false,
            };
        }
        let dropped = self.count.saturating_sub(kept);
        self.head = head;
        self.count = kept;
        Salvage {
            kept,
            dropped,
            repaired: true,
        }
    }

    /// Empties the ring at `pos` keeping sequence numbers and counters.
    fn reset_positions(&mut self, pos: usize) {
        self.tail = pos;
        self.head = pos;
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Kind, RecordMeta, SessionId};
    use std::vec::Vec;

    fn meta(i: u64) -> RecordMeta {
        RecordMeta {
            time: i,
            level: Level::ALL[(i % 5) as usize],
            kind: Kind::FRAME,
            session: (i % 2 == 0).then_some(SessionId(i as u32)),
        }
    }

    fn filled() -> Ring<128> {
        let mut ring = Ring::new();
        for i in 0..20u64 {
            ring.push(&meta(i), &[i as u8; 7]).unwrap();
        }
        ring
    }

    fn contents<const N: usize>(ring: &Ring<N>) -> Vec<(u64, RecordMeta, Vec<u8>)> {
        ring.iter()
            .map(|r| {
                let mut p = [0u8; 64];
                let len = r.copy_to(&mut p).unwrap().len();
                (r.seq, r.meta, p[..len].to_vec())
            })
            .collect()
    }

    #[test]
    fn a_consistent_ring_is_kept_whole() {
        let mut ring = filled();
        let before = contents(&ring);
        let report = ring.salvage();
        assert_eq!(
            report,
            Salvage {
                kept: before.len(),
                dropped: 0,
                repaired: false
            }
        );
        assert_eq!(contents(&ring), before);
    }

    #[test]
    fn a_push_cut_short_is_dropped_and_the_rest_kept() {
        let mut ring = filled();
        let before = contents(&ring);
        // A reset after count was bumped but before head was: the claimed last record runs
        // past the bytes held.
        ring.count += 1;
        let report = ring.salvage();
        assert_eq!(report.kept, before.len());
        assert!(report.repaired);
        assert_eq!(contents(&ring), before);
        // The ring works on.
        let seq = ring.push(&meta(99), b"after").unwrap();
        assert_eq!(seq, before.last().unwrap().0 + 1);
    }

    #[test]
    fn a_damaged_record_cuts_the_walk_there() {
        let mut ring = filled();
        let before = contents(&ring);
        // Break the third record's flags byte.
        let mut pos = ring.tail;
        for _ in 0..2 {
            let (_, hl, len) = ring.header_at(pos).unwrap();
            pos = ring.wrap(pos + hl + len);
        }
        ring.buf[ring.wrap(pos + 3)] = 0xF7;
        let report = ring.salvage();
        assert_eq!(report.kept, 2);
        assert_eq!(report.dropped, before.len() - 2);
        assert_eq!(contents(&ring), before[..2].to_vec());
    }

    /// Any bytes at all: salvage never panics, and leaves a ring whose every operation
    /// works and agrees with its own counts.
    #[test]
    fn noise_is_salvaged_into_a_working_ring() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let rounds = if cfg!(miri) { 20 } else { 2000 };
        for round in 0..rounds {
            let mut ring: Ring<96> = Ring::new();
            for b in ring.buf.iter_mut() {
                *b = next() as u8;
            }
            let small = round % 2 == 0;
            let pick = |v: u64| {
                if small {
                    (v % 200) as usize
                } else {
                    v as usize
                }
            };
            ring.tail = pick(next());
            ring.head = pick(next());
            ring.count = pick(next()) % if small { 20 } else { usize::MAX };
            ring.first_seq = next();
            ring.rejected = next() as u32;
            let report = ring.salvage();
            assert_eq!(ring.len(), report.kept);
            assert_eq!(ring.iter().count(), report.kept);
            let stats = ring.stats();
            assert!(stats.used <= 96);
            for i in 0..10u64 {
                ring.push(&meta(i), &[1, 2, 3]).unwrap();
            }
            assert_eq!(ring.iter().count(), ring.len());
            assert_eq!(
                ring.iter().last().unwrap().payload.0.len()
                    + ring.iter().last().unwrap().payload.1.len(),
                3
            );
        }
    }
}
