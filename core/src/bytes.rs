//! Byte copies and fills: the one copy routine of the core and the adapters.
//!
//! Every copy of a record's bytes (the ring's, the encoder's [`Writer`], sealing's, the flash
//! store's, the Linux adapter's per-thread payload buffer) goes through here, so that the
//! choice is made once, for a reason that holds for all of them: the copies are short (a
//! header, a name, a value, a whole typical payload of a few dozen bytes) and of a length
//! known only at run time. Code that only runs on a host and is not on the capture path
//! (files, spools, the decoder) uses the standard library's copies, which is what [`copy`]
//! does there for long copies anyway.
//!
//! - **Bare metal** (`target_os = "none"`): byte loops. `copy_from_slice` and `fill` call
//!   the compiler's `memcpy`/`memset` there, whose code with their `__aeabi_*` entry points
//!   is larger than the whole append path (`benches/RESULTS.md`, "Footprint"), for copies of
//!   a few dozen bytes. A copy into a piece of memory that is two slices (a ring slot that
//!   wraps) is one loop over both, smaller than splitting the source and copying twice.
//! - **Hosts**: up to 64 bytes, two overlapping fixed-size moves of 32, 16, 8 or 4 bytes
//!   (a few instructions, no call); longer, the platform's `memcpy`, which beats any loop.
//!   A two-slice destination is one copy when the bytes land in the first slice (nearly
//!   always), else two.
//!
//! [`Writer`]: crate::encode::Writer

/// Copies `src` to the front of `dst` (as much as fits).
#[inline(always)]
pub fn copy(dst: &mut [u8], src: &[u8]) {
    #[cfg(target_os = "none")]
    copy_loop(dst, src);
    #[cfg(not(target_os = "none"))]
    {
        let n = dst.len().min(src.len());
        if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
            copy_short_or_long(d, s);
        }
    }
}

/// Copies `src` into the bytes `a` then `b` (one destination in two pieces, such as a ring
/// slot that wraps around the ring's end), starting `at` bytes in; what lies past the end
/// of `b` is not stored.
#[inline]
pub fn copy_into_two(a: &mut [u8], b: &mut [u8], at: usize, src: &[u8]) {
    #[cfg(target_os = "none")]
    copy_into_two_loop(a, b, at, src);
    #[cfg(not(target_os = "none"))]
    match a.get_mut(at..).and_then(|d| d.get_mut(..src.len())) {
        Some(d) => copy_short_or_long(d, src),
        None => copy_into_two_split(a, b, at, src),
    }
}

/// Sets every byte of `dst` to `b`.
#[inline]
pub fn fill(dst: &mut [u8], b: u8) {
    #[cfg(target_os = "none")]
    fill_loop(dst, b);
    #[cfg(not(target_os = "none"))]
    dst.fill(b);
}

// The host versions.

/// Copies `src` into `dst` of the same length: short copies as two overlapping moves.
#[cfg_attr(target_os = "none", allow(dead_code))]
#[inline(always)]
fn copy_short_or_long(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n > 64 {
        dst.copy_from_slice(src);
    } else if n > 32 {
        copy_ends::<32>(dst, src);
    } else if n >= 16 {
        copy_ends::<16>(dst, src);
    } else if n >= 8 {
        copy_ends::<8>(dst, src);
    } else if n >= 4 {
        copy_ends::<4>(dst, src);
    } else {
        copy_loop(dst, src);
    }
}

/// Copies the first and the last `K` bytes (overlapping: `K <= len <= 2 * K`).
#[cfg_attr(target_os = "none", allow(dead_code))]
#[inline(always)]
fn copy_ends<const K: usize>(dst: &mut [u8], src: &[u8]) {
    if let (Some(a), Some(b)) = (src.first_chunk::<K>(), src.last_chunk::<K>()) {
        let (a, b) = (*a, *b);
        if let Some(d) = dst.first_chunk_mut::<K>() {
            *d = a;
        }
        if let Some(d) = dst.last_chunk_mut::<K>() {
            *d = b;
        }
    }
}

/// [`copy_into_two`] for bytes that do not all land in `a`: the part that does, then what
/// fits of the rest into `b`.
#[cfg_attr(target_os = "none", allow(dead_code))]
#[cold]
#[inline(never)]
fn copy_into_two_split(a: &mut [u8], b: &mut [u8], at: usize, src: &[u8]) {
    let in_a = a.len().saturating_sub(at).min(src.len());
    let (sa, sb) = src.split_at(in_a);
    if let Some(d) = a.get_mut(at..at + in_a) {
        copy(d, sa);
    }
    let from = at.saturating_add(in_a).saturating_sub(a.len());
    if let Some(d) = b.get_mut(from..) {
        copy(d, sb);
    }
}

// The bare-metal versions, compiled everywhere so that the host tests check them.

#[cfg_attr(not(target_os = "none"), allow(dead_code))]
#[inline]
fn copy_loop(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

#[cfg_attr(not(target_os = "none"), allow(dead_code))]
#[inline]
fn copy_into_two_loop(a: &mut [u8], b: &mut [u8], at: usize, src: &[u8]) {
    for (pos, &v) in (at..).zip(src) {
        let slot = match pos.checked_sub(a.len()) {
            None => a.get_mut(pos),
            Some(in_b) => b.get_mut(in_b),
        };
        match slot {
            Some(d) => *d = v,
            // Past the end: nothing further fits either.
            None => return,
        }
    }
}

#[cfg_attr(not(target_os = "none"), allow(dead_code))]
#[inline]
fn fill_loop(dst: &mut [u8], b: u8) {
    for d in dst {
        *d = b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_do_what_the_library_does() {
        for (dn, sn) in [(0, 0), (0, 3), (3, 0), (5, 3), (3, 5), (32, 32)] {
            let src: std::vec::Vec<u8> = (1..=sn as u8).collect();
            let (mut a, mut b) = (std::vec![0xAAu8; dn], std::vec![0xAAu8; dn]);
            copy(&mut a, &src);
            copy_loop(&mut b, &src);
            assert_eq!(a, b, "copy {dn} {sn}");
            let n = dn.min(sn);
            assert_eq!(&a[..n], &src[..n]);
            assert!(a[n..].iter().all(|&x| x == 0xAA));
            fill(&mut a, 0xFF);
            fill_loop(&mut b, 0xFF);
            assert_eq!(a, b, "fill {dn}");
            assert!(a.iter().all(|&x| x == 0xFF));
        }
    }

    /// Every length a short copy handles by sizes, and past them.
    #[test]
    fn short_copies() {
        for n in 0..150usize {
            let src: std::vec::Vec<u8> = (1..=n).map(|i| i as u8).collect();
            let mut dst = std::vec![0u8; n];
            copy(&mut dst, &src);
            assert_eq!(dst, src);
        }
    }

    /// The bare-metal and the host way of copying into two pieces agree, at every split of
    /// the two pieces, every start and every length, past the end included.
    #[test]
    fn copies_into_two_pieces_agree() {
        let src: std::vec::Vec<u8> = (1..=24).collect();
        let step = if cfg!(miri) { 3 } else { 1 };
        for split in (0..=20).step_by(step) {
            for at in (0..=22).step_by(step) {
                for n in 0..=24 {
                    let (mut a1, mut b1) = ([0u8; 20], [0u8; 20]);
                    let (mut a2, mut b2) = ([0u8; 20], [0u8; 20]);
                    copy_into_two_loop(&mut a1[..split], &mut b1[..20 - split], at, &src[..n]);
                    copy_into_two(&mut a2[..split], &mut b2[..20 - split], at, &src[..n]);
                    assert_eq!((a1, b1), (a2, b2), "split {split} at {at} n {n}");
                }
            }
        }
    }
}
