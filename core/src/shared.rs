//! A [`Ring`] shared between threads and interrupt handlers through `critical-section`.

use core::cell::RefCell;

use critical_section::Mutex;

use crate::ring::{Cursor, Read, RecordMeta, Ring, RingError, RingStats};

/// A [`Ring`] behind a critical section, usable as a `static`.
///
/// Every operation holds the critical section for one record: a push, or the copy of one
/// record to a reader's buffer. Readers never block producers for longer than that, and a
/// record evicted while a reader was between two calls is reported as lost, never torn.
///
/// ```
/// use flightrec_core::{SharedRing, RecordMeta, Kind, Level, Read};
/// static RING: SharedRing<1024> = SharedRing::new();
/// let meta = RecordMeta { time: 5, level: Level::Warn, kind: Kind::FRAME, session: None };
/// RING.push(&meta, b"hello").unwrap();
///
/// let mut cursor = RING.oldest().unwrap();
/// let mut buf = [0u8; 64];
/// assert!(matches!(RING.read(&mut cursor, &mut buf), Ok(Read::Record { seq: 0, len: 5, .. })));
/// assert_eq!(&buf[..5], b"hello");
/// assert_eq!(RING.read(&mut cursor, &mut buf), Ok(Read::End));
/// ```
pub struct SharedRing<const N: usize> {
    ring: Mutex<RefCell<Ring<N>>>,
}

impl<const N: usize> Default for SharedRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> SharedRing<N> {
    /// An empty shared ring.
    pub const fn new() -> Self {
        Self::from_ring(Ring::new())
    }

    /// Shares an existing ring (e.g. one salvaged from retained memory).
    pub const fn from_ring(ring: Ring<N>) -> Self {
        SharedRing {
            ring: Mutex::new(RefCell::new(ring)),
        }
    }

    /// Appends a record; see [`Ring::push`].
    pub fn push(&self, meta: &RecordMeta, payload: &[u8]) -> Result<u64, RingError> {
        self.with(|ring| ring.push(meta, payload))
            .unwrap_or(Err(RingError::Busy))
    }

    /// A cursor at the oldest record now held.
    pub fn oldest(&self) -> Result<Cursor, RingError> {
        self.with(|ring| ring.oldest()).ok_or(RingError::Busy)
    }

    /// Copies one record out; see [`Ring::read`].
    pub fn read(&self, cursor: &mut Cursor, out: &mut [u8]) -> Result<Read, RingError> {
        self.with(|ring| ring.read(cursor, out))
            .unwrap_or(Err(RingError::Busy))
    }

    /// Counters and positions.
    pub fn stats(&self) -> Result<RingStats, RingError> {
        self.with(|ring| ring.stats()).ok_or(RingError::Busy)
    }

    /// Drops every record; see [`Ring::clear`].
    pub fn clear(&self) -> Result<(), RingError> {
        self.with(|ring| ring.clear()).ok_or(RingError::Busy)
    }

    /// Runs `f` on the ring inside the critical section. Keep `f` short: producers in
    /// interrupt handlers wait for it. Returns `None`, without running `f`, when called from
    /// inside another `with` on the same ring (e.g. a panic hook logging while `f` panicked).
    pub fn with<R>(&self, f: impl FnOnce(&mut Ring<N>) -> R) -> Option<R> {
        critical_section::with(|cs| {
            let mut ring = self.ring.borrow(cs).try_borrow_mut().ok()?;
            Some(f(&mut ring))
        })
    }
}
