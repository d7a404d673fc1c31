//! Byte appenders for the hot path of `decode`: integers, hex and peers written straight
//! into a line buffer, without `fmt`'s dynamic dispatch and padding logic. Each writes
//! exactly what its `Display` counterpart writes (checked against it in the tests below).

use flightrec_core::event::{Addr, Peer};

use super::PeerText;

/// `00`, `01`, ..., `99`: two digits per division.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// 10^0 ..= 10^19.
pub(crate) const POW10: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// The two digits of `n % 100`.
fn pair(n: u64) -> [u8; 2] {
    let i = (n % 100) as usize * 2;
    match PAIRS.get(i..i + 2) {
        Some(&[a, b]) => [a, b],
        _ => [b'?', b'?'], // unreachable: i <= 198
    }
}

/// Appends `n` in decimal, as `{n}` shows it.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while n >= 100 {
        i -= 2;
        if let Some(d) = buf.get_mut(i..i + 2) {
            d.copy_from_slice(&pair(n));
        }
        n /= 100;
    }
    if n >= 10 {
        i -= 2;
        if let Some(d) = buf.get_mut(i..i + 2) {
            d.copy_from_slice(&pair(n));
        }
    } else {
        i -= 1;
        if let Some(d) = buf.get_mut(i) {
            *d = b'0' + n as u8;
        }
    }
    out.extend_from_slice(buf.get(i..).unwrap_or(&[]));
}

/// Appends `n` in decimal, as `{n}` shows it.
pub(crate) fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

/// Appends `n` as `{n:0width$}` shows it (zero-padded to at least `width` digits).
pub(crate) fn push_u64_padded(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    // 10^width (0 past 10^19, where every u64 fits): whether `n` has more digits.
    let limit = POW10.get(width).copied().unwrap_or(0);
    if width == 0 || width > buf.len() || (limit > 0 && n >= limit) {
        // Wider than asked (never on the hot path, whose widths fit their numbers).
        use std::io::Write;
        let _ = write!(out, "{n:0width$}");
        return;
    }
    // Exactly `width` digits, two at a time from the right.
    let mut i = width;
    while i >= 2 {
        i -= 2;
        if let Some(d) = buf.get_mut(i..i + 2) {
            d.copy_from_slice(&pair(n));
        }
        n /= 100;
    }
    if i == 1 {
        if let Some(d) = buf.first_mut() {
            *d = b'0' + (n % 10) as u8;
        }
    }
    out.extend_from_slice(buf.get(..width).unwrap_or(&[]));
}

/// Appends the two digits of `n` (below 100), as `{n:02}` shows it.
pub(crate) fn push_2(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&pair(n));
}

/// Appends `bytes` in lower-case hex, as [`super::Hex`] shows them.
pub(crate) fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        let hi = DIGITS.get(usize::from(b >> 4)).copied().unwrap_or(b'?');
        let lo = DIGITS.get(usize::from(b & 15)).copied().unwrap_or(b'?');
        out.extend_from_slice(&[hi, lo]);
    }
}

/// Appends a peer as [`PeerText`] shows it (`ADDR:PORT`, or `-`): IPv4 by hand, IPv6
/// (whose shortest form takes work) through its `Display`.
pub(crate) fn push_peer(out: &mut Vec<u8>, peer: Option<Peer>) {
    match peer {
        None => out.push(b'-'),
        Some(Peer {
            addr: Addr::V4([a, b, c, d]),
            port,
        }) => {
            for (i, octet) in [a, b, c, d].into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_u64(out, u64::from(octet));
            }
            out.push(b':');
            push_u64(out, u64::from(port));
        }
        Some(p) => {
            use std::io::Write;
            let _ = write!(out, "{}", PeerText(Some(p)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Hex;
    use proptest::prelude::*;

    fn with(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = b"x".to_vec(); // appends, never overwrites
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn integer_edges() {
        for n in [0, 1, 9, 10, 99, 100, 101, 999, 1000, u64::MAX - 1, u64::MAX] {
            assert_eq!(with(|o| push_u64(o, n)), format!("x{n}"));
        }
        for n in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX] {
            assert_eq!(with(|o| push_i64(o, n)), format!("x{n}"));
        }
    }

    proptest! {
        #[test]
        fn integers_as_fmt(n in any::<u64>(), shift in 0u32..64, i in any::<i64>(), w in 0usize..24) {
            let n = n >> shift; // short numbers as often as long ones
            prop_assert_eq!(with(|o| push_u64(o, n)), format!("x{n}"));
            prop_assert_eq!(with(|o| push_i64(o, i)), format!("x{i}"));
            prop_assert_eq!(with(|o| push_u64_padded(o, n, w)), format!("x{n:0w$}"));
        }

        #[test]
        fn hex_as_fmt(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(with(|o| push_hex(o, &bytes)), format!("x{}", Hex(&bytes)));
        }

        #[test]
        fn peers_as_fmt(v4 in any::<[u8; 4]>(), v6 in any::<[u8; 16]>(), port in any::<u16>(), which in 0u8..3) {
            let peer = match which {
                0 => None,
                1 => Some(Peer { addr: Addr::V4(v4), port }),
                _ => Some(Peer { addr: Addr::V6(v6), port }),
            };
            prop_assert_eq!(with(|o| push_peer(o, peer)), format!("x{}", PeerText(peer)));
        }
    }
}
