//! SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), small.
//!
//! On bare metal this is our own compression function, a loop over the 64 rounds with a
//! rolling 16-word schedule: RustCrypto's (`sha2`, even its compact backend, and the `hmac`
//! and `digest` wrappers around it) copies through the compiler's `memcpy`/`memset`, which
//! this crate's firmware otherwise does without (see `crate::bytes`), and costs more than
//! the sealing budget (measured in `benches/RESULTS.md`). Hosts use `sha2::compress256`
//! (SHA-NI where the CPU has it). The tests check both against the `sha2` and `hmac` crates.

use zeroize::Zeroize;

/// Bytes of a SHA-256 block.
const BLOCK: usize = 64;
/// Bytes of a SHA-256 hash.
pub(crate) const OUT: usize = 32;

const INIT: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// A running SHA-256.
///
/// A fresh one is all zeros, its state set to the initial value by the first byte: a value
/// the compiler builds in place (zeroing), where one holding the initial state would be
/// built elsewhere and copied (`memcpy`, on bare metal).
#[derive(Clone)]
pub(crate) struct Sha256 {
    state: [u32; 8],
    block: [u8; BLOCK],
    /// Bytes fed so far (the block holds the last `len % 64`).
    len: u64,
}

impl Sha256 {
    pub(crate) const fn new() -> Self {
        Sha256 {
            state: [0; 8],
            block: [0; BLOCK],
            len: 0,
        }
    }

    fn start_if_fresh(&mut self) {
        if self.len == 0 {
            for (s, i) in self.state.iter_mut().zip(INIT.iter()) {
                *s = *i;
            }
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            self.start_if_fresh();
            let at = (self.len % BLOCK as u64) as usize;
            // Whole blocks straight from the input, without the copy into `block`.
            if at == 0 {
                if let Some(whole) = data.first_chunk::<BLOCK>() {
                    compress(&mut self.state, whole);
                    data = data.get(BLOCK..).unwrap_or(&[]);
                    self.len = self.len.wrapping_add(BLOCK as u64);
                    continue;
                }
            }
            let take = (BLOCK - at).min(data.len());
            if let (Some(dst), Some(src)) = (self.block.get_mut(at..at + take), data.get(..take)) {
                crate::bytes::copy(dst, src);
            }
            data = data.get(take..).unwrap_or(&[]);
            self.len = self.len.wrapping_add(take as u64);
            if at + take == BLOCK {
                compress(&mut self.state, &self.block);
            }
        }
    }

    /// Bytes fed so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Writes the hash of everything fed to `out` and starts afresh (the old state erased).
    /// Results go through out-parameters here: a returned array is a `memcpy` on bare metal.
    pub(crate) fn finish_into(&mut self, out: &mut [u8]) {
        self.start_if_fresh();
        let bits = self.len.wrapping_mul(8);
        self.update(&[0x80]);
        while self.len % BLOCK as u64 != (BLOCK - 8) as u64 {
            self.update(&[0]);
        }
        self.update(&bits.to_be_bytes());
        for (dst, word) in out.chunks_exact_mut(4).zip(self.state.iter()) {
            crate::bytes::copy(dst, &word.to_be_bytes());
        }
        self.block.zeroize();
        self.state.zeroize();
        self.len = 0;
    }

    /// The hash of everything fed; starts afresh.
    #[cfg(test)]
    pub(crate) fn finish(&mut self) -> [u8; OUT] {
        let mut out = [0u8; OUT];
        self.finish_into(&mut out);
        out
    }
}

#[cfg(target_os = "none")]
use compress_soft as compress;

/// One block into the state: `sha2`'s on hosts.
#[cfg(not(target_os = "none"))]
fn compress(state: &mut [u32; 8], block: &[u8; BLOCK]) {
    let block: &sha2::digest::generic_array::GenericArray<u8, _> = block.into();
    sha2::compress256(state, core::slice::from_ref(block));
}

/// One block into the state: the rounds of FIPS 180-4 section 6.2.2 with the message
/// schedule kept as a ring of 16 words.
#[cfg(any(target_os = "none", test))]
fn compress_soft(state: &mut [u32; 8], block: &[u8; BLOCK]) {
    let mut w = [0u32; 16];
    for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
        let mut b = [0u8; 4];
        crate::bytes::copy(&mut b, bytes);
        *word = u32::from_be_bytes(b);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for (i, k) in K.iter().enumerate() {
        // w[i mod 16] holds W[i-16] until it is replaced by W[i].
        let at = |w: &[u32; 16], back: usize| w.get((i + 16 - back) % 16).copied().unwrap_or(0);
        let wi = if i < 16 {
            at(&w, 16)
        } else {
            let w15 = at(&w, 15);
            let w2 = at(&w, 2);
            let s0 = w15.rotate_right(7) ^ w15.rotate_right(18) ^ (w15 >> 3);
            let s1 = w2.rotate_right(17) ^ w2.rotate_right(19) ^ (w2 >> 10);
            let next = at(&w, 16)
                .wrapping_add(s0)
                .wrapping_add(at(&w, 7))
                .wrapping_add(s1);
            if let Some(slot) = w.get_mut(i % 16) {
                *slot = next;
            }
            next
        };
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = h
            .wrapping_add(s1)
            .wrapping_add(ch)
            .wrapping_add(*k)
            .wrapping_add(wi);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
    w.zeroize();
}

#[cfg(any(target_os = "none", test))]
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// `SHA-256(a || b)` into `out`.
pub(crate) fn hash2(a: &[u8], b: &[u8], out: &mut [u8]) {
    let mut h = Sha256::new();
    h.update(a);
    h.update(b);
    h.finish_into(out);
}

/// HMAC-SHA-256 of the concatenation of `parts` under a key of at most one block (the
/// sealing keys are 32 bytes), into `out`.
pub(crate) fn hmac(key: &[u8; OUT], parts: &[&[u8]], out: &mut [u8]) {
    let mut pad = [0u8; BLOCK];
    crate::bytes::copy(&mut pad, key);
    for b in pad.iter_mut() {
        *b ^= 0x36;
    }
    let mut inner = Sha256::new();
    inner.update(&pad);
    for part in parts {
        inner.update(part);
    }
    let mut inner_hash = [0u8; OUT];
    inner.finish_into(&mut inner_hash);
    // ipad ^ opad turns the inner pad into the outer one; the same hasher, started afresh.
    for b in pad.iter_mut() {
        *b ^= 0x36 ^ 0x5c;
    }
    inner.update(&pad);
    inner.update(&inner_hash);
    pad.zeroize();
    inner_hash.zeroize();
    inner.finish_into(out);
}

/// Whether `a == b`, in time independent of where they differ.
pub(crate) fn same(a: &[u8; OUT], b: &[u8; OUT]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    core::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::Mac;
    use proptest::prelude::*;
    use sha2::Digest;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

        /// The hash of any bytes, fed in any two pieces, is the `sha2` crate's.
        #[test]
        fn sha256_is_the_sha2_crates(data in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..300) {
            let cut = cut.min(data.len());
            let mut h = Sha256::new();
            h.update(&data[..cut]);
            h.update(&data[cut..]);
            let want: [u8; 32] = sha2::Sha256::digest(&data).into();
            prop_assert_eq!(h.finish(), want);
        }

        /// HMAC of any message under any 32-byte key is the `hmac` crate's.
        #[test]
        fn hmac_is_the_hmac_crates(key in any::<[u8; 32]>(), data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
            m.update(&data);
            let want: [u8; 32] = m.finalize().into_bytes().into();
            let mut ours = [0u8; 32];
            hmac(&key, &[&data[..data.len() / 2], &data[data.len() / 2..]], &mut ours);
            prop_assert_eq!(ours, want);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

        /// The bare-metal compression function is `sha2`'s.
        #[test]
        fn soft_compress_is_sha2s(state in any::<[u32; 8]>(), block in proptest::collection::vec(any::<u8>(), 64)) {
            let block: [u8; 64] = block.try_into().unwrap();
            let (mut ours, mut theirs) = (state, state);
            compress_soft(&mut ours, &block);
            sha2::compress256(&mut theirs, &[block.into()]);
            prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn same_compares() {
        assert!(same(&[1; 32], &[1; 32]));
        let mut b = [1; 32];
        b[31] = 0;
        assert!(!same(&[1; 32], &b));
    }
}
