//! Sharding: one core [`Ring`] per shard, each thread writing to its own shard, and each
//! shard's records mirrored into its region of the ring file when there is one.
//!
//! Why shards: `flightrec_core::Recorder` keeps its ring and trigger machine in one critical
//! section, which on a daemon is a global lock every thread takes for every event. Here each
//! thread writes to its own shard (threads are given shards round-robin, so with at least as
//! many shards as busy threads no two threads share a lock).

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use flightrec_core::dump::RecordHead;
use flightrec_core::ring::{Cursor, Read, RecordMeta, RingStats};
use flightrec_core::{Ring, RingError};

use crate::ringfile::Region;
use crate::shardlock::ShardLock;

/// Bytes of one shard's ring.
pub const SHARD_BYTES: usize = 64 * 1024;
/// Most shards a recorder has.
pub const MAX_SHARDS: usize = 32;

/// A record's identity across shards: the shard's index in the top 8 bits, the record's
/// sequence number in that shard's ring in the low 56. The trigger machine gets it as the
/// firing record's number, and a dump finds the trigger record by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ShardSeq(u64);

impl ShardSeq {
    const SEQ_BITS: u32 = 56;
    const SEQ_MASK: u64 = (1 << Self::SEQ_BITS) - 1;

    /// Record `seq` of shard `shard` (`shard` < [`MAX_SHARDS`]; a shard's ring would need
    /// 2^56 records before its numbers wrap).
    #[inline]
    pub(crate) fn new(shard: usize, seq: u64) -> Self {
        ShardSeq(((shard as u64) << Self::SEQ_BITS) | (seq & Self::SEQ_MASK))
    }

    /// The number the trigger machine was given.
    pub(crate) fn from_raw(raw: u64) -> Self {
        ShardSeq(raw)
    }

    /// The number to give the trigger machine.
    #[inline]
    pub(crate) fn raw(self) -> u64 {
        self.0
    }
}

/// Process-wide counter giving each thread its shard slot.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn thread_slot() -> usize {
    SLOT.with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
        s.set(v);
        v
    })
}

/// `slot % n` for `slot < 2^32`, given `magic = u64::MAX / n + 1` (wrapping).
#[inline]
fn fastmod(magic: u64, slot: u64, n: u64) -> usize {
    ((u128::from(magic.wrapping_mul(slot)) * u128::from(n)) >> 64) as usize
}

/// One shard: its ring and its region of the ring file, behind one lock.
#[repr(align(128))] // keep shards' locks on separate cache lines
pub(crate) struct Shard {
    lock: ShardLock<ShardInner>,
}

struct ShardInner {
    ring: Box<Ring<SHARD_BYTES>>,
    /// The shard's region of the ring file, if there is one: every record stored in the
    /// ring is also written there, under the same lock.
    mirror: Option<Region>,
}

impl Shard {
    /// Positions and counters of the shard's ring, and a cursor at its oldest record, taken
    /// together.
    pub(crate) fn snapshot(&self) -> (RingStats, Cursor) {
        let inner = self.lock.lock();
        (inner.ring.stats(), inner.ring.oldest())
    }

    /// Copies one record out (see [`Ring::read`]): producers wait for one record copy.
    pub(crate) fn read(&self, cursor: &mut Cursor, out: &mut [u8]) -> Result<Read, RingError> {
        self.lock.lock().ring.read(cursor, out)
    }
}

/// The shards of a recorder.
pub(crate) struct Shards {
    shards: Box<[Shard]>,
    /// `u64::MAX / shards + 1`: a thread's shard is its slot modulo the shard count,
    /// computed with two multiplications instead of a division (Lemire's fastmod).
    magic: u64,
}

impl Shards {
    /// `count` shards (1..=[`MAX_SHARDS`], checked by the options), the first ones
    /// mirrored into `regions`.
    pub(crate) fn new(count: usize, regions: Vec<Region>) -> Self {
        let count = count.clamp(1, MAX_SHARDS);
        let mut regions = regions.into_iter();
        Shards {
            magic: (u64::MAX / count as u64).wrapping_add(1),
            shards: (0..count)
                .map(|_| Shard {
                    lock: ShardLock::new(ShardInner {
                        ring: boxed_ring(),
                        mirror: regions.next(),
                    }),
                })
                .collect(),
        }
    }

    /// Number of shards.
    pub(crate) fn len(&self) -> usize {
        self.shards.len()
    }

    /// Shard `i`.
    pub(crate) fn get(&self, i: usize) -> Option<&Shard> {
        self.shards.get(i)
    }

    /// The shards, by index.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &Shard> {
        self.shards.iter()
    }

    /// The calling thread's shard and its index.
    #[inline]
    fn this_thread(&self) -> (usize, &Shard) {
        let n = self.shards.len() as u64; // at most MAX_SHARDS
                                          // Slots wrap at 2^32 threads: still round-robin.
        let slot = u64::from(thread_slot() as u32);
        let i = fastmod(self.magic, slot, n);
        match self.shards.get(i) {
            Some(s) => (i, s),
            // Unreachable (i < n, n >= 1), but no panic path.
            None => (0, &self.shards[..][0]),
        }
    }

    /// Stores one record in the calling thread's shard with `push`, and mirrors it (its
    /// payload is `file_payload`) into the shard's ring-file region. `None` if the ring
    /// refused it (the ring counts it).
    #[inline]
    pub(crate) fn push(
        &self,
        meta: &RecordMeta,
        push: impl FnOnce(&mut Ring<SHARD_BYTES>) -> Result<u64, RingError>,
        file_payload: &[u8],
    ) -> Option<ShardSeq> {
        let (i, shard) = self.this_thread();
        let mut inner = shard.lock.lock();
        let inner = &mut *inner;
        let seq = push(&mut inner.ring).ok()?;
        if let Some(region) = inner.mirror.as_mut() {
            let head = RecordHead {
                seq,
                time: meta.time,
                kind: meta.kind,
                level: meta.level as u8,
                session: meta.session,
            };
            region.write(&head, file_payload);
        }
        Some(ShardSeq::new(i, seq))
    }

    /// Stores one record in shard `i`, not mirrored (a death dump's records, each region's
    /// in a shard of its own; tests place records in chosen shards).
    pub(crate) fn push_to(&self, i: usize, meta: &RecordMeta, payload: &[u8]) -> Option<ShardSeq> {
        let seq = self.get(i)?.lock.lock().ring.push(meta, payload).ok()?;
        Some(ShardSeq::new(i, seq))
    }

    /// Records stored, evicted and refused, all shards.
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        self.shards.iter().fold((0, 0, 0), |(s, e, r), shard| {
            let st = shard.lock.lock().ring.stats();
            (s + st.next_seq, e + st.evicted, r + st.rejected)
        })
    }
}

/// A core ring on the heap without building it on the stack first.
fn boxed_ring<const N: usize>() -> Box<Ring<N>> {
    let layout = std::alloc::Layout::new::<Ring<N>>();
    // SAFETY: the layout is not zero-sized (a ring has integer fields). `alloc_zeroed` gives
    // memory of that layout from the global allocator (or null, handled), which is what
    // `Box::from_raw` takes over. `Ring<N>` is a byte array and integers (no references, no
    // niches): all-zero bytes are a valid value, the same as `Ring::new()` (checked by the
    // `zeroed_ring_is_new` test).
    unsafe {
        let p = std::alloc::alloc_zeroed(layout).cast::<Ring<N>>();
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Box::from_raw(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightrec_core::{Kind, Level};

    #[test]
    fn fastmod_is_modulo() {
        for n in 1..=MAX_SHARDS as u64 {
            let magic = (u64::MAX / n).wrapping_add(1);
            let slots = (0..1000).chain([u32::MAX as u64 - 1, u32::MAX as u64, 1 << 31]);
            for slot in slots {
                assert_eq!(fastmod(magic, slot, n), (slot % n) as usize, "{slot} % {n}");
            }
        }
    }

    #[test]
    fn shard_seq_keeps_shard_and_seq_apart() {
        let a = ShardSeq::new(3, 7);
        assert_eq!(a, ShardSeq::from_raw(a.raw()));
        assert_ne!(a, ShardSeq::new(2, 7));
        assert_ne!(a, ShardSeq::new(3, 8));
        assert_eq!(ShardSeq::new(31, 1 << 56), ShardSeq::new(31, 0));
        assert_eq!(ShardSeq::new(31, 5).raw() >> 56, 31);
    }

    #[test]
    fn zeroed_ring_is_new() {
        let z: Box<Ring<64>> = boxed_ring();
        assert_eq!(z.stats(), Ring::<64>::new().stats());
        let mut z = z;
        let meta = RecordMeta {
            time: 1,
            level: Level::Info,
            kind: Kind::FRAME,
            session: None,
        };
        for i in 0..10u8 {
            z.push(&meta, &[i; 10]).unwrap();
        }
        let seqs: Vec<u64> = z.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [8, 9]);
    }
}
