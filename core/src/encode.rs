//! The payload encoder: postcard's bytes, written without serde.
//!
//! Every record and dump structure is written in the postcard subset of `WIRE-FORMAT.md`
//! section 1. On a Cortex-M, postcard's serializer is the largest part of a recorder: each
//! event type is monomorphised once per flavour (a counting pass and a writing pass), the
//! `…[+N]` cut marker goes through `core::fmt`, and the serde state lives on the stack. This
//! encoder writes the same bytes (checked against postcard by the tests in
//! `core/tests/events.rs`) with one routine per type that runs twice, first counting, then
//! writing straight into the ring slot.
//!
//! ```
//! use flightrec_core::encode::{Encode, Writer};
//! use flightrec_core::event::AuthFailure;
//!
//! let event = AuthFailure { user: "bob", host: "h", peer: None, mechanism: "PLAIN", reason: "r" };
//! let mut out = [0u8; 64];
//! let len = flightrec_core::encode::to_slice(&event, &mut out).unwrap();
//! assert_eq!(&out[..len], b"\x03bob\x01h\x00\x05PLAIN\x01r");
//! ```

/// Writes an encoding: counts its bytes, or stores them across two slices (a ring slot that
/// may wrap around the ring's end).
///
/// Writing never panics: bytes past the end of the slices are counted but not stored, and
/// [`Writer::overflowed`] says so.
#[derive(Debug)]
pub struct Writer<'a> {
    a: &'a mut [u8],
    b: &'a mut [u8],
    /// Bytes written or counted; past `a.len() + b.len()` they were dropped.
    at: usize,
}

impl<'a> Writer<'a> {
    /// A writer that only counts (it has nowhere to store: every byte overflows).
    #[inline]
    pub fn counter() -> Writer<'static> {
        Writer::new(&mut [], &mut [])
    }

    /// A writer filling `a`, then `b`.
    #[inline]
    pub fn new(a: &'a mut [u8], b: &'a mut [u8]) -> Self {
        Writer { a, b, at: 0 }
    }

    /// Bytes written (or counted) so far.
    #[inline]
    pub const fn len(&self) -> usize {
        self.at
    }

    /// Whether nothing was written yet.
    pub const fn is_empty(&self) -> bool {
        self.at == 0
    }

    /// Whether bytes were written past the end of the slices (and dropped).
    #[inline]
    pub const fn overflowed(&self) -> bool {
        // No overflow: two distinct slices are each at most `isize::MAX` bytes.
        self.at > self.a.len() + self.b.len()
    }

    /// Raw bytes, nothing before them.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub fn bytes(&mut self, src: &[u8]) {
        let at = self.at;
        self.at = at.saturating_add(src.len());
        crate::bytes::copy_into_two(self.a, self.b, at, src);
    }

    /// One byte (postcard's `u8`, `bool`, and the tag of an `Option`).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub fn u8(&mut self, v: u8) {
        #[cfg(not(target_os = "none"))]
        if let Some(d) = self.a.get_mut(self.at) {
            *d = v;
            self.at += 1;
            return;
        }
        self.bytes(&[v]);
    }

    /// An unsigned varint (postcard's `u16`, `u32`, `u64`, `usize`, enum variant indices).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub fn varint(&mut self, v: u64) {
        if v < 0x80 {
            // Most lengths and counts: one byte.
            return self.u8(v as u8);
        }
        #[cfg(not(target_os = "none"))]
        {
            let n = varint_len(v);
            if let Some((last, rest)) = self.room(n).and_then(|d| d.split_last_mut()) {
                let mut v = v;
                for slot in rest {
                    *slot = v as u8 | 0x80;
                    v >>= 7;
                }
                *last = v as u8;
                self.at += n;
                return;
            }
        }
        self.varint_buffered(v);
    }

    /// [`varint`](Self::varint) built in a buffer, then stored: the bare-metal way (one
    /// store routine), and a host's when the bytes may not all be in the first slice.
    #[cfg_attr(not(target_os = "none"), cold, inline(never))]
    #[cfg_attr(target_os = "none", inline(always))]
    fn varint_buffered(&mut self, mut v: u64) {
        let mut buf = [0u8; 10];
        let mut n = 0;
        for slot in buf.iter_mut() {
            n += 1;
            if v < 0x80 {
                *slot = v as u8;
                break;
            }
            *slot = v as u8 | 0x80;
            v >>= 7;
        }
        self.bytes(buf.get(..n).unwrap_or(&buf));
    }

    /// On a host, the next `n` bytes when they are all in the first slice (nearly always):
    /// a short encoding is then stored after one bounds check.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn room(&mut self, n: usize) -> Option<&mut [u8]> {
        self.a.get_mut(self.at..)?.get_mut(..n)
    }

    /// Length-prefixed bytes (postcard's `[u8]`).
    #[inline]
    pub fn prefixed(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.bytes(b);
    }

    /// A `str`: encoded as its bytes, length-prefixed.
    #[inline]
    pub fn str(&mut self, s: &str) {
        self.prefixed(s.as_bytes());
    }

    /// A `str` of at most `max` bytes of its own: a longer one is cut at a character
    /// boundary and marked `…[+N]`, `N` the bytes cut (`WIRE-FORMAT.md` section 6).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub fn str_bounded(&mut self, s: &str, max: usize) {
        // On a host, a short string that is not cut: its one-byte length and its bytes.
        #[cfg(not(target_os = "none"))]
        if s.len() <= max && s.len() < 0x80 {
            let n = s.len();
            if let Some((len, rest)) = self.room(1 + n).and_then(|d| d.split_first_mut()) {
                *len = n as u8;
                crate::bytes::copy(rest, s.as_bytes());
                self.at += 1 + n;
                return;
            }
        }
        self.str_bounded_any(s, max);
    }

    /// [`str_bounded`](Self::str_bounded) for any string, cut or not.
    #[cfg_attr(not(target_os = "none"), inline(never))]
    #[cfg_attr(target_os = "none", inline(always))]
    fn str_bounded_any(&mut self, s: &str, max: usize) {
        let end = cut_point(s, max);
        if end == s.len() {
            return self.str(s);
        }
        let kept = s.as_bytes().get(..end).unwrap_or(&[]);
        let mark = CutMarker::new(s.len() - end);
        self.varint((kept.len() + mark.as_bytes().len()) as u64);
        self.bytes(kept);
        self.bytes(mark.as_bytes());
    }

    /// An `Option`: `00`, or `01` then what `some` writes.
    pub fn option<T>(&mut self, v: Option<T>, some: impl FnOnce(&mut Self, T)) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                some(self, v);
            }
        }
    }
}

/// Bytes [`Writer::varint`] writes for `v`: seven bits a byte.
#[inline]
pub const fn varint_len(v: u64) -> usize {
    if v < 0x80 {
        // Most lengths and counts.
        return 1;
    }
    (64 - v.leading_zeros() as usize).div_ceil(7)
}

/// The end of the part of `s` kept when it is cut to at most `max` bytes: `s.len()` if it
/// fits, else the last character boundary at or before `max`.
#[inline]
pub fn cut_point(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1; // terminates: 0 is a char boundary
    }
    end
}

/// The visible marker that ends a string cut by `N` bytes: `…[+N]` (`WIRE-FORMAT.md`
/// section 6), written without `core::fmt`.
#[derive(Clone, Copy, Debug)]
pub struct CutMarker {
    /// The marker, right-aligned.
    bytes: [u8; CutMarker::MAX],
    start: u8,
}

impl CutMarker {
    /// Longest marker: `…` (3 bytes), `[+`, the digits of `usize::MAX` (10 on a 32-bit
    /// MCU, where a buffer this short is zeroed without a `memset` call; 20 on a 64-bit
    /// host), `]`.
    pub const MAX: usize = 6 + usize::MAX.ilog10() as usize + 1;

    /// The marker of a string cut by `cut` bytes.
    pub fn new(mut cut: usize) -> Self {
        // Written backwards from the end: `]`, the digits, then `…[+`.
        let mut bytes = [0; Self::MAX];
        let mut start = Self::MAX;
        let mut put = |b: u8| {
            // Never wraps (`MAX` fits the longest marker); if it did, `get_mut` would refuse.
            start = start.wrapping_sub(1);
            if let Some(slot) = bytes.get_mut(start) {
                *slot = b;
            }
        };
        put(b']');
        loop {
            put(b'0' + (cut % 10) as u8);
            cut /= 10;
            if cut == 0 {
                break;
            }
        }
        for &b in "…[+".as_bytes().iter().rev() {
            put(b);
        }
        CutMarker {
            bytes,
            start: start as u8,
        }
    }

    /// Its bytes (UTF-8).
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(usize::from(self.start)..).unwrap_or(&[])
    }

    /// Its text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

/// A value with a postcard encoding written by [`Writer`].
pub trait Encode {
    /// Writes the encoding. It must write the same bytes every time it is called (it runs
    /// once to count and once to store).
    fn encode(&self, w: &mut Writer<'_>);

    /// Bytes the encoding takes.
    fn encoded_len(&self) -> usize {
        let mut w = Writer::counter();
        self.encode(&mut w);
        w.len()
    }
}

/// Bytes taken as they are: a payload that is already encoded (a defmt frame).
#[derive(Clone, Copy, Debug)]
pub struct Raw<'a>(pub &'a [u8]);

impl Encode for Raw<'_> {
    fn encode(&self, w: &mut Writer<'_>) {
        w.bytes(self.0);
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode(&self, w: &mut Writer<'_>) {
        (**self).encode(w)
    }
}

/// Encodes `value` into the front of `out`; the length written, or `None` if `out` is too
/// small.
pub fn to_slice<T: Encode + ?Sized>(value: &T, out: &mut [u8]) -> Option<usize> {
    let mut w = Writer::new(out, &mut []);
    value.encode(&mut w);
    (!w.overflowed()).then_some(w.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_postcard() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut out = [0u8; 10];
            let mut w = Writer::new(&mut out, &mut []);
            w.varint(v);
            let n = w.len();
            let want = postcard::to_allocvec(&v).unwrap();
            assert_eq!(&out[..n], &want[..], "{v}");
            assert_eq!(varint_len(v), n, "{v}");
        }
    }

    #[test]
    fn bytes_split_across_the_two_pieces() {
        let src: std::vec::Vec<u8> = (0..20).collect();
        for split in 0..=20 {
            let mut a = [0u8; 20];
            let mut b = [0u8; 20];
            let (a, b) = (&mut a[..split], &mut b[..20 - split]);
            let mut w = Writer::new(a, b);
            w.bytes(&src[..7]);
            w.bytes(&src[7..]);
            assert!(!w.overflowed());
            let mut got = a.to_vec();
            got.extend_from_slice(b);
            assert_eq!(got, src);
        }
    }

    /// Varints and strings written across every split of two pieces (a wrapping ring slot:
    /// the host's in-place paths do not apply) are the bytes written into one.
    #[test]
    fn encodings_split_across_the_two_pieces() {
        let long = "é".repeat(40);
        let write = |w: &mut Writer<'_>| {
            w.varint(300);
            w.str_bounded("short", 10);
            w.varint(u64::MAX);
            w.str_bounded(&long, 50);
            w.varint(5);
        };
        let mut count = Writer::counter();
        write(&mut count);
        let n = count.len();
        let mut whole = std::vec![0u8; n];
        let mut w = Writer::new(&mut whole, &mut []);
        write(&mut w);
        assert!(!w.overflowed());
        for split in 0..=n {
            let (mut a, mut b) = (std::vec![0u8; split], std::vec![0u8; n - split]);
            let mut w = Writer::new(&mut a, &mut b);
            write(&mut w);
            assert!(!w.overflowed());
            a.extend_from_slice(&b);
            assert_eq!(a, whole, "split {split}");
        }
    }

    #[test]
    fn overflow_is_reported_not_a_panic() {
        let mut a = [0u8; 3];
        let mut b = [0u8; 2];
        let mut w = Writer::new(&mut a, &mut b);
        w.bytes(b"abcdefg");
        assert!(w.overflowed());
        assert_eq!(w.len(), 7);
        assert_eq!(to_slice(&"x", &mut []), None);
    }

    #[test]
    fn cut_markers() {
        for cut in [0usize, 7, 10, 907, 123456] {
            assert_eq!(CutMarker::new(cut).as_str(), std::format!("…[+{cut}]"));
        }
        let widest = std::format!("…[+{}]", usize::MAX);
        assert_eq!(CutMarker::new(usize::MAX).as_str(), widest);
        assert!(widest.len() <= CutMarker::MAX);
    }

    #[test]
    fn cut_points_are_char_boundaries() {
        assert_eq!(cut_point("abc", 5), 3);
        assert_eq!(cut_point("abc", 2), 2);
        assert_eq!(cut_point("aéb", 2), 1); // é is bytes 1..3
        assert_eq!(cut_point("éé", 1), 0);
    }

    impl Encode for str {
        fn encode(&self, w: &mut Writer<'_>) {
            w.str(self)
        }
    }
}
