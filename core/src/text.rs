//! Escaping of text a remote peer controls, before it reaches a text line.
//!
//! User names, resources and reasons come from the network. Printed raw, a newline forges a
//! log line (and a fail2ban match), an escape sequence rewrites the operator's terminal, a
//! delimiter fakes a field. [`Escaped`] prints such text with every dangerous character
//! replaced by a visible escape:
//!
//! | character | printed as |
//! |---|---|
//! | `\` | `\\` |
//! | C0 controls, DEL (`\n`, `\r`, `\t`, ESC, NUL, ...) | `\xHH` |
//! | C1 controls (U+0080–U+009F, includes NEL), line and paragraph separators, bidi controls (U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069), BOM / zero-width no-break space | `\u{HHHH}` |
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
//! ```

use core::fmt::{self, Write};

/// Whether `c` is printed escaped regardless of the delimiter set.
pub const fn is_dangerous(c: char) -> bool {
    matches!(c,
        '\\'
        | '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200e}' | '\u{200f}'
        | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{feff}')
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
            let v = hex
                .get(..2)
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or(err)?;
            (char::from_u32(v).ok_or(err)?, 3)
        } else if let Some(braced) = tail.strip_prefix("u{") {
            let end = braced.find('}').filter(|&e| e > 0 && e <= 6).ok_or(err)?;
            let v = braced
                .get(..end)
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or(err)?;
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

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 8 } else { 512 },
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn escaped_is_safe_and_reversible(s in any::<String>()) {
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
