//! Escaping of text a remote peer controls, before it reaches a text line.
//!
//! User names, resources and reasons come from the network. Printed raw, a newline forges a
//! log line (and a fail2ban match), an escape sequence rewrites the operator's terminal, a
//! delimiter fakes a field, a no-break space is a field break to fail2ban's `\s` but not to
//! the writer, and an invisible character makes one account look like another.
//! [`Escaped`] prints such text with every dangerous character replaced by a visible
//! escape:
//!
//! | character | printed as |
//! |---|---|
//! | `\` | `\\` |
//! | C0 controls, DEL (`\n`, `\r`, `\t`, ESC, NUL, ...) | `\xHH` |
//! | everything else [`is_dangerous`] flags: C1 controls, Unicode whitespace other than the ASCII space, format (Cf) characters (bidi controls, zero-width characters, tags, ...), default-ignorable and other invisibly rendered characters | `\u{HHHH}` |
//! | each character in the caller's delimiter set | `\xHH` (or `\u{HHHH}` beyond ASCII) |
//!
//! Everything else passes through, so ordinary names stay readable. The escaping is
//! reversible ([`unescape`]), so an audit viewer can show the original.
//!
//! ```
//! use flightrec_core::text::Escaped;
//! let hostile = "bob\nFailed sasl authentication for root@x from 6.6.6.6 port 1\x1b[2J";
//! let line = format!("user={}", Escaped::new(hostile, &[' ', '|']));
//! assert_eq!(line, "user=bob\\x0aFailed\\x20sasl\\x20authentication\\x20for\\x20root@x\\x20from\\x206.6.6.6\\x20port\\x201\\x1b[2J");
//! assert!(!line.contains('\n') && !line.contains('\x1b') && !line.contains(' '));
//! // No-break and ideographic spaces, a zero-width space: escaped, not spaces nor invisible.
//! let spoof = format!("{}", Escaped::new("al\u{a0}ice\u{3000}\u{200b}", &[]));
//! assert_eq!(spoof, "al\\u{00a0}ice\\u{3000}\\u{200b}");
//! ```

use core::fmt::{self, Write};

/// Bits of a [`DANGEROUS`] entry that hold `last - first`; the bits above hold `first`.
const SPAN_BITS: u32 = 11;
const SPAN_MASK: u32 = (1 << SPAN_BITS) - 1;

/// One [`DANGEROUS`] entry: the characters `first..=last`, packed into one word (code
/// points take 21 bits). Checked when the table is built: a bad range does not compile.
const fn range(first: u32, last: u32) -> u32 {
    assert!(first <= last && last <= 0x10_ffff && last - first < 1 << SPAN_BITS);
    (first << SPAN_BITS) | (last - first)
}

/// Every character [`is_dangerous`] flags (the classes are in its documentation), as
/// sorted disjoint ranges.
const DANGEROUS: [u32; 32] = [
    range(0x00, 0x1f),       // C0 controls: line breaks, tab, ESC, NUL, U+001C-001F
    range(0x5c, 0x5c),       // `\`, the escape character
    range(0x7f, 0xa0),       // DEL, C1 controls (NEL U+0085), no-break space
    range(0xad, 0xad),       // soft hyphen
    range(0x34f, 0x34f),     // combining grapheme joiner
    range(0x600, 0x605),     // Arabic number signs
    range(0x61c, 0x61c),     // Arabic letter mark (bidi)
    range(0x6dd, 0x6dd),     // Arabic end of ayah
    range(0x70f, 0x70f),     // Syriac abbreviation mark
    range(0x890, 0x891),     // Arabic pound and piastre marks above
    range(0x8e2, 0x8e2),     // Arabic disputed end of ayah
    range(0x115f, 0x1160),   // Hangul choseong and jungseong fillers
    range(0x1680, 0x1680),   // Ogham space mark
    range(0x17b4, 0x17b5),   // Khmer inherent vowels (not rendered)
    range(0x180b, 0x180f),   // Mongolian variation selectors, vowel separator
    range(0x2000, 0x200f),   // en quad .. hair space, zero-width space/joiners, LRM, RLM
    range(0x2028, 0x202f),   // line/paragraph separators, bidi embeddings, narrow no-break space
    range(0x205f, 0x206f),   // math space, word joiner, invisible operators, bidi isolates
    range(0x2800, 0x2800),   // Braille pattern blank
    range(0x3000, 0x3000),   // ideographic space
    range(0x3164, 0x3164),   // Hangul filler
    range(0xfe00, 0xfe0f),   // variation selectors
    range(0xfeff, 0xfeff),   // zero-width no-break space, BOM
    range(0xffa0, 0xffa0),   // halfwidth Hangul filler
    range(0xfff0, 0xfffb),   // default-ignorable, interlinear annotation controls
    range(0x110bd, 0x110bd), // Kaithi number sign
    range(0x110cd, 0x110cd), // Kaithi number sign above
    range(0x13430, 0x1343f), // Egyptian hieroglyph format controls
    range(0x1bca0, 0x1bca3), // shorthand format controls
    range(0x1d173, 0x1d17a), // musical symbol format controls
    range(0xe0000, 0xe07ff), // tags, variation selectors supplement, default-ignorable ..
    range(0xe0800, 0xe0fff), // .. to the end of their block
];

// Sorted and disjoint, or the binary search in `is_dangerous` misses entries.
const _: () = {
    let mut i = 1;
    while i < DANGEROUS.len() {
        let last_before = (DANGEROUS[i - 1] >> SPAN_BITS) + (DANGEROUS[i - 1] & SPAN_MASK);
        assert!(last_before < DANGEROUS[i] >> SPAN_BITS);
        i += 1;
    }
};

/// Whether `c` is printed escaped regardless of the delimiter set.
///
/// The classes: the escape character `\`; controls (Cc); every character some regex
/// engine takes for whitespace (Unicode White_Space, Python's `\s` which adds
/// U+001C–U+001F, and U+180E and U+200B that older engines count) except the ASCII space,
/// which layouts that need it escaped put in their delimiter set; format characters (Cf:
/// bidi controls, zero-width characters, invisible operators, tags, ...); and the other
/// default-ignorable or blank-rendering characters used to make one name look like
/// another (Hangul fillers, variation selectors, the combining grapheme joiner, the
/// Braille blank), with the unassigned default-ignorable code points, so that characters
/// a later Unicode version puts there are covered too.
///
/// One compact table (32 packed ranges, a binary search), so it is cheap on a
/// microcontroller.
pub const fn is_dangerous(c: char) -> bool {
    let c = c as u32;
    // The entries that start at or below `c` sort at or below this key.
    let key = (c << SPAN_BITS) | SPAN_MASK;
    let mut rest: &[u32] = &DANGEROUS;
    loop {
        let Some((below, from_mid)) = rest.split_at_checked(rest.len() / 2) else {
            return false;
        };
        let Some((&entry, above)) = from_mid.split_first() else {
            return false;
        };
        if entry > key {
            rest = below;
        } else if c.wrapping_sub(entry >> SPAN_BITS) <= entry & SPAN_MASK {
            return true;
        } else {
            rest = above;
        }
    }
}

/// Displays `text` with dangerous characters and `delimiters` escaped.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a> {
    text: &'a str,
    delimiters: &'a [char],
}

impl<'a> Escaped<'a> {
    /// Escapes `text`, also escaping every character in `delimiters`.
    pub const fn new(text: &'a str, delimiters: &'a [char]) -> Self {
        Escaped { text, delimiters }
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut clean_from = 0;
        for (i, c) in self.text.char_indices() {
            let delimiter = self.delimiters.contains(&c);
            if !delimiter && !is_dangerous(c) {
                continue;
            }
            // Unescaped runs go out in one piece.
            f.write_str(self.text.get(clean_from..i).unwrap_or(""))?;
            clean_from = i + c.len_utf8();
            match c {
                '\\' if !delimiter => f.write_str("\\\\")?,
                c if (c as u32) < 0x80 => write!(f, "\\x{:02x}", c as u32)?,
                c => write!(f, "\\u{{{:04x}}}", c as u32)?,
            }
        }
        f.write_str(self.text.get(clean_from..).unwrap_or(""))
    }
}

/// Why [`unescape`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnescapeError {
    /// Byte offset of the bad escape in the input.
    pub at: usize,
}

impl fmt::Display for UnescapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad escape at byte {}", self.at)
    }
}

/// Hex digits only (`from_str_radix` alone would take a sign: `\x+a`).
fn parse_hex(digits: &str) -> Option<u32> {
    if digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        u32::from_str_radix(digits, 16).ok()
    } else {
        None
    }
}

/// Reverses [`Escaped`], writing the original text to `out`.
pub fn unescape(escaped: &str, out: &mut impl Write) -> Result<(), UnescapeError> {
    let mut rest = escaped;
    let mut at = 0;
    while let Some(i) = rest.find('\\') {
        let err = UnescapeError { at: at + i };
        out.write_str(rest.get(..i).ok_or(err)?).map_err(|_| err)?;
        let tail = rest.get(i + 1..).ok_or(err)?;
        let (c, used) = if tail.starts_with('\\') {
            ('\\', 1)
        } else if let Some(hex) = tail.strip_prefix('x') {
            let v = hex.get(..2).and_then(parse_hex).ok_or(err)?;
            (char::from_u32(v).ok_or(err)?, 3)
        } else if let Some(braced) = tail.strip_prefix("u{") {
            let end = braced.find('}').filter(|&e| e > 0 && e <= 6).ok_or(err)?;
            let v = braced.get(..end).and_then(parse_hex).ok_or(err)?;
            (char::from_u32(v).ok_or(err)?, 2 + end + 1)
        } else {
            return Err(err);
        };
        out.write_char(c).map_err(|_| err)?;
        let consumed = i + 1 + used;
        rest = rest.get(consumed..).ok_or(err)?;
        at += consumed;
    }
    out.write_str(rest).map_err(|_| UnescapeError { at })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::string::String;

    fn esc(s: &str, d: &[char]) -> String {
        std::format!("{}", Escaped::new(s, d))
    }

    #[test]
    fn plain_text_unchanged() {
        assert_eq!(esc("alice@example.org", &['|']), "alice@example.org");
        assert_eq!(esc("Zoë 東京", &[]), "Zoë 東京");
    }

    #[test]
    fn dangerous_characters() {
        assert_eq!(esc("a\r\nb", &[]), "a\\x0d\\x0ab");
        assert_eq!(esc("\x1b]0;pwned\x07", &[]), "\\x1b]0;pwned\\x07");
        assert_eq!(
            esc("\u{85}\u{2028}\u{202e}", &[]),
            "\\u{0085}\\u{2028}\\u{202e}"
        );
        assert_eq!(esc("a\\x0a", &[]), "a\\\\x0a");
        assert_eq!(esc("a|b=c", &['|', '=']), "a\\x7cb\\x3dc");
        assert_eq!(esc("\0", &[]), "\\x00");
    }

    /// Every character of the issue's classes, one each (ranges by their ends).
    #[test]
    fn named_classes_are_escaped() {
        let whitespace = "\t\n\u{b}\u{c}\r\u{1c}\u{1f}\u{85}\u{a0}\u{1680}\u{2000}\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}\u{180e}\u{200b}";
        let format = "\u{ad}\u{600}\u{605}\u{61c}\u{6dd}\u{70f}\u{890}\u{891}\u{8e2}\u{180e}\u{200b}\u{200f}\u{202a}\u{202e}\u{2060}\u{2064}\u{2066}\u{206f}\u{feff}\u{fff9}\u{fffb}\u{110bd}\u{110cd}\u{13430}\u{1343f}\u{1bca0}\u{1bca3}\u{1d173}\u{1d17a}\u{e0001}\u{e0020}\u{e007f}";
        let invisible = "\u{115f}\u{1160}\u{3164}\u{ffa0}\u{fe00}\u{fe0f}\u{e0100}\u{e01ef}\u{34f}";
        for c in whitespace
            .chars()
            .chain(format.chars())
            .chain(invisible.chars())
        {
            assert!(is_dangerous(c), "U+{:04X}", c as u32);
            let e = esc(&std::format!("a{c}b"), &[]);
            assert!(
                e.starts_with("a\\") && e.ends_with('b') && e.len() > 5,
                "{e}"
            );
        }
        assert_eq!(esc("x\u{a0}\u{e0041}", &[]), "x\\u{00a0}\\u{e0041}");
        for c in [' ', 'a', '~', '[', 'é', '東', '🦀', '\u{a1}', '\u{2010}'] {
            assert!(!is_dangerous(c), "U+{:04X}", c as u32);
        }
    }

    /// Checks every code point against a model; the model's flagged set must be covered.
    fn check_model(name: &str, model: impl Fn(char) -> bool) {
        let missed: std::vec::Vec<u32> = (0..=0x10_ffffu32)
            .filter_map(char::from_u32)
            .filter(|&c| c != ' ' && model(c) && !is_dangerous(c))
            .map(|c| c as u32)
            .collect();
        assert!(
            missed.is_empty(),
            "{name} flags {} characters printed raw: {:04X?}",
            missed.len(),
            &missed[..missed.len().min(40)]
        );
    }

    /// Rust's own Unicode tables: whitespace (White_Space) and controls (Cc).
    #[test]
    #[cfg_attr(miri, ignore = "a million code points")]
    fn covers_rust_whitespace_and_controls() {
        check_model("char::is_whitespace", char::is_whitespace);
        check_model("char::is_control", char::is_control);
    }

    /// Python 3, which fail2ban runs on: `re.match(r'\s', c)` and the categories Zs, Zl,
    /// Zp, Cc, Cf. Skipped with a note without python3, a failure under CI.
    #[test]
    #[cfg_attr(miri, ignore = "runs python3")]
    fn covers_python_whitespace_and_format_characters() {
        const SCRIPT: &str = "import re, sys, unicodedata\n\
            ws = re.compile(r'\\s')\n\
            print(unicodedata.unidata_version)\n\
            print(' '.join('%x' % i for i in range(0x110000) if not 0xd800 <= i <= 0xdfff and \
            (ws.match(chr(i)) or unicodedata.category(chr(i)) in ('Zs', 'Zl', 'Zp', 'Cc', 'Cf'))))\n";
        let out = match std::process::Command::new("python3")
            .args(["-c", SCRIPT])
            .output()
        {
            Ok(out) if out.status.success() => out,
            other => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "python3 is needed under CI: {other:?}"
                );
                std::eprintln!("SKIPPED: python3 did not run ({other:?})");
                return;
            }
        };
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        let version = lines.next().unwrap();
        let flagged: std::collections::BTreeSet<u32> = lines
            .next()
            .unwrap()
            .split(' ')
            .map(|h| u32::from_str_radix(h, 16).unwrap())
            .collect();
        // Sanity: the model is the one meant (Unicode whitespace and format characters).
        for c in [0x1c, 0x85, 0xa0, 0x3000, 0x200b, 0xe0001, 0x20] {
            assert!(
                flagged.contains(&c),
                "python3 (Unicode {version}) lacks {c:x}"
            );
        }
        check_model(&std::format!("python3 (Unicode {version})"), |c| {
            flagged.contains(&(c as u32))
        });
    }

    /// Each flagged character escapes to printable text that unescapes to it.
    #[test]
    #[cfg_attr(miri, ignore = "a million code points")]
    fn every_code_point_round_trips() {
        let mut s = String::new();
        let mut back = String::new();
        for c in (0..=0x10_ffffu32).filter_map(char::from_u32) {
            s.clear();
            back.clear();
            std::write!(s, "{}", Escaped::new(c.encode_utf8(&mut [0; 4]), &[' '])).unwrap();
            assert!(
                s.chars().all(|e| e == '\\' || !is_dangerous(e)),
                "U+{:04X} gives {s:?}",
                c as u32
            );
            assert_eq!(s.len() > c.len_utf8(), is_dangerous(c) || c == ' ');
            unescape(&s, &mut back).unwrap();
            assert_eq!(back.chars().collect::<std::vec::Vec<_>>(), [c]);
        }
    }

    fn hostile() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            Just('a'),
            Just('\\'),
            Just(' '),
            Just('|'),
            (0u32..0x110_000).prop_filter_map("a char", char::from_u32),
            (0usize..DANGEROUS.len(), 0u32..64).prop_filter_map("a flagged char", |(i, k)| {
                let e = DANGEROUS.get(i)?;
                char::from_u32((e >> SPAN_BITS) + k % ((e & SPAN_MASK) + 1))
            }),
        ];
        proptest::collection::vec(pieces, 0..16).prop_map(|v| v.into_iter().collect())
    }

    #[test]
    fn unescape_takes_hex_digits_only() {
        let mut out = String::new();
        for bad in [
            "\\x+a",
            "\\x-1",
            "\\u{+a}",
            "\\u{ a}",
            "\\xg0",
            "\\u{}",
            "\\u{1234567}",
        ] {
            assert!(unescape(bad, &mut out).is_err(), "{bad}");
        }
        unescape("\\x0a\\u{E0041}\\u{a0}", &mut out).unwrap();
        assert_eq!(out, "\n\u{e0041}\u{a0}");
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 8 } else { 512 },
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn escaped_is_safe_and_reversible(s in prop_oneof![any::<String>(), hostile()]) {
            let e = esc(&s, &[' ', '|', '@']);
            prop_assert!(!e.chars().any(|c| is_dangerous(c) && c != '\\'));
            prop_assert!(!e.contains(' ') && !e.contains('|') && !e.contains('@'));
            let mut back = String::new();
            unescape(&e, &mut back).unwrap();
            prop_assert_eq!(back, s);
        }

        #[test]
        fn unescape_never_panics(s in any::<String>()) {
            let mut out = String::new();
            let _ = unescape(&s, &mut out);
        }
    }
}
