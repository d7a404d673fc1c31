//! The lock of one shard's ring.
//!
//! Why not `std::sync::Mutex`: its unlock is an atomic swap (it must learn whether a waiter
//! sleeps on the futex), so an uncontended lock and unlock cost two locked instructions, a
//! visible part of a captured event's time (`benches/RESULTS.md`, capture bench). A shard is nearly always uncontended (threads get their
//! own shard while there are at least as many shards as busy threads; a dump holds a shard
//! for one copy of its ring), so this lock takes one compare-and-swap to lock and a plain
//! release store to unlock. A thread that finds it taken spins briefly, then yields its CPU
//! until the holder is done. Holders hold it for one record (or one ring copy) and never
//! wait on anything while holding it; only a page fault on the ring file (ring-file mode)
//! can make that longer, and the waiters then yield rather than spin.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// A spin-then-yield lock around a `T`.
pub(crate) struct ShardLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a guard, and `locked` lets one guard exist at a
// time (acquire on lock, release on unlock: the holder sees the previous holder's writes),
// so sharing the lock across threads gives each thread exclusive access in turn, which is
// what `T: Send` allows, as for `std::sync::Mutex`.
unsafe impl<T: Send> Sync for ShardLock<T> {}

/// Exclusive access to a [`ShardLock`]'s value; unlocks when dropped.
pub(crate) struct ShardGuard<'a, T> {
    lock: &'a ShardLock<T>,
}

impl<T> ShardLock<T> {
    pub(crate) fn new(value: T) -> Self {
        ShardLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Waits for the lock, then holds it until the guard is dropped.
    #[inline]
    pub(crate) fn lock(&self) -> ShardGuard<'_, T> {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        ShardGuard { lock: self }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            // Wait reading only (no cache-line ping-pong), then try again.
            while self.locked.load(Ordering::Relaxed) {
                if spins < 64 {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

impl<T> Deref for ShardGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock (see `ShardLock::lock`), so no other reference
        // to the value exists while it lives; the reference borrows the guard.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for ShardGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference through the guard.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for ShardGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Non-atomic read-modify-writes under the lock from several threads lose nothing (a
    /// lock that let two holders in would lose increments; under Miri, a data race).
    #[test]
    fn excludes() {
        let threads: u64 = 4;
        let rounds: u64 = if cfg!(miri) { 200 } else { 100_000 };
        let lock = Arc::new(ShardLock::new((0u64, Vec::<u64>::new())));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for i in 0..rounds {
                        let mut g = lock.lock();
                        let n = g.0;
                        g.0 = n + 1;
                        if i % 1000 == 0 {
                            g.1.push(n); // a heap update too, for Miri's checks
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let g = lock.lock();
        assert_eq!(g.0, threads * rounds);
        assert_eq!(g.1.len() as u64, threads * rounds.div_ceil(1000));
    }

    #[test]
    fn unlocks_when_the_guard_drops() {
        let lock = ShardLock::new(1);
        *lock.lock() += 1;
        assert_eq!(*lock.lock(), 2);
        let g = lock.lock();
        drop(g);
        assert!(!lock.locked.load(Ordering::Relaxed));
    }
}
