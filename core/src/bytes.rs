//! Byte copies and fills that stay small on bare metal, for the core and the adapters.
//!
//! On `target_os = "none"` these are loops: `copy_from_slice` and `fill` call the compiler's
//! `memcpy`/`memset` there (about 1 KiB of flash on a Cortex-M with their `__aeabi_*` entry
//! points) for a few dozen bytes at a time. Elsewhere the platform's routines, which beat
//! the loops.

/// Copies `src` to the front of `dst` (as much as fits).
#[inline]
pub fn copy(dst: &mut [u8], src: &[u8]) {
    #[cfg(target_os = "none")]
    copy_loop(dst, src);
    #[cfg(not(target_os = "none"))]
    {
        let n = dst.len().min(src.len());
        if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
            d.copy_from_slice(s);
        }
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
}
