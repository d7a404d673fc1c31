//! Escaping of peer- and device-controlled text, one function per output syntax: quoted
//! and bare words of the text and forensic outputs (through core's [`Escaped`]) and JSON
//! strings. Every character core's [`is_dangerous`] flags is escaped on every path.

use std::fmt::{self, Display};
use std::io::{self, Write};

use flightrec_core::text::{is_dangerous, Escaped};

/// Delimiters escaped in a quoted value.
const QUOTED: &[char] = &['"'];
/// Delimiters escaped in a bare word (target, field name).
const BARE: &[char] = &[' ', '=', '"'];

/// A string escaped per JSON rules, quotes included. Besides what JSON requires, every
/// character [`is_dangerous`] flags (controls, bidi controls, separators, invisible and
/// whitespace characters other than ASCII space) is written as `\uXXXX` (a surrogate pair
/// outside the BMP), so the output carries none of them raw.
pub struct JsonStr<'a>(pub &'a str);

impl Display for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        let s = self.0;
        let mut clean = 0;
        for (i, c) in s.char_indices() {
            let esc: Option<&str> = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '\n' => Some("\\n"),
                '\r' => Some("\\r"),
                '\t' => Some("\\t"),
                _ => None,
            };
            if esc.is_none() && !is_dangerous(c) {
                continue;
            }
            f.write_str(s.get(clean..i).unwrap_or(""))?;
            clean = i + c.len_utf8();
            match esc {
                Some(e) => f.write_str(e)?,
                None => {
                    for unit in c.encode_utf16(&mut [0u16; 2]) {
                        write!(f, "\\u{unit:04x}")?;
                    }
                }
            }
        }
        f.write_str(s.get(clean..).unwrap_or(""))?;
        f.write_str("\"")
    }
}

/// Writes `s` as a JSON string.
pub fn json_str<W: Write + ?Sized>(w: &mut W, s: &str) -> io::Result<()> {
    write!(w, "{}", JsonStr(s))
}

/// Which bytes go out as they are in a quoted value (and in a JSON string, whose specials
/// are the same two): printable ASCII but the backslash and the delimiters. Every other
/// byte starts a character that is looked at on its own.
const SAFE_QUOTED: [bool; 256] = safe_ascii(QUOTED);
/// Which bytes go out as they are in a bare word.
const SAFE_BARE: [bool; 256] = safe_ascii(BARE);

/// Printable ASCII (`is_dangerous` flags none of it but the backslash) without the
/// backslash and `delimiters`.
const fn safe_ascii(delimiters: &[char]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = true;
        b += 1;
    }
    t[b'\\' as usize] = false;
    let mut i = 0;
    while i < delimiters.len() {
        let d = delimiters[i] as usize;
        if d < 256 {
            t[d] = false;
        }
        i += 1;
    }
    t
}

/// Appends `s`, copying runs of `safe` bytes as they are and handing every other
/// character (with its bytes in `s`) to `other`: the fast path of every escaper here, so
/// that the usual all-ASCII text costs a table look-up per byte.
fn push_runs(
    out: &mut Vec<u8>,
    s: &str,
    safe: &[bool; 256],
    mut other: impl FnMut(&mut Vec<u8>, char, &str),
) {
    let mut rest = s;
    loop {
        let run = rest
            .bytes()
            .position(|b| !safe[usize::from(b)])
            .unwrap_or(rest.len());
        let (clean, tail) = rest.split_at_checked(run).unwrap_or((rest, ""));
        out.extend_from_slice(clean.as_bytes());
        let Some(c) = tail.chars().next() else {
            return;
        };
        let (one, after) = tail.split_at_checked(c.len_utf8()).unwrap_or((tail, ""));
        other(out, c, one);
        rest = after;
    }
}

/// Appends `s` as [`Escaped`] with `delimiters` shows it: a character that needs no
/// escape (neither dangerous nor a delimiter) is copied, any other goes through
/// `Escaped` itself, so both paths agree by construction.
fn push_escaped(out: &mut Vec<u8>, s: &str, safe: &[bool; 256], delimiters: &[char]) {
    push_runs(out, s, safe, |out, c, one| {
        if !is_dangerous(c) && !delimiters.contains(&c) {
            out.extend_from_slice(one.as_bytes());
        } else {
            let _ = write!(out, "{}", Escaped::new(one, delimiters));
        }
    });
}

/// Appends `s` as a JSON string, as [`JsonStr`] shows it.
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    push_runs(out, s, &SAFE_QUOTED, |out, c, one| {
        let esc: &[u8] = match c {
            '"' => b"\\\"",
            '\\' => b"\\\\",
            '\n' => b"\\n",
            '\r' => b"\\r",
            '\t' => b"\\t",
            c if is_dangerous(c) => {
                for unit in c.encode_utf16(&mut [0u16; 2]) {
                    out.extend_from_slice(b"\\u");
                    super::push::push_hex(out, &unit.to_be_bytes());
                }
                return;
            }
            _ => one.as_bytes(),
        };
        out.extend_from_slice(esc);
    });
    out.push(b'"');
}

/// A value in quotes, escaped.
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", Escaped::new(self.0, QUOTED))
    }
}

/// Appends `s` in quotes, escaped, as [`Quoted`] shows it.
pub(crate) fn push_quoted(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    push_escaped(out, s, &SAFE_QUOTED, QUOTED);
    out.push(b'"');
}

/// Appends `s` escaped, without quotes (a target, a field name).
pub(crate) fn push_bare(out: &mut Vec<u8>, s: &str) {
    push_escaped(out, s, &SAFE_BARE, BARE);
}

/// `s` escaped for a line of text, no delimiters (a build name, a path).
pub(crate) fn plain(s: &str) -> Escaped<'_> {
    Escaped::new(s, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn json_strings() {
        assert_eq!(
            JsonStr("a\"b\\c\n\u{1b}\u{85}\u{2028}é").to_string(),
            "\"a\\\"b\\\\c\\n\\u001b\\u0085\\u2028é\""
        );
    }

    /// Every character core flags is escaped, and the escape reads back as that character
    /// (outside the BMP as a surrogate pair).
    #[test]
    fn json_escapes_every_dangerous_character() {
        for c in (0..=0x10_FFFFu32).filter_map(char::from_u32) {
            let s = format!("a{c}b");
            let j = JsonStr(&s).to_string();
            if is_dangerous(c) && c != '\\' {
                assert!(!j.contains(c), "U+{:04X} raw in {j}", c as u32);
                assert!(j.starts_with("\"a\\") && j.ends_with("b\""), "{j}");
            }
            let back: String = serde_json::from_str(&j).unwrap();
            assert_eq!(back, s, "U+{:04X}", c as u32);
        }
    }

    /// Hostile text: ASCII (delimiters, controls), the edges of core's dangerous ranges,
    /// and any character at all.
    fn hostile() -> impl Strategy<Value = String> {
        let edges = prop::sample::select(vec![
            '"',
            '\\',
            ' ',
            '=',
            '\n',
            '\r',
            '\t',
            '\0',
            '\x1b',
            '\x7f',
            '\u{80}',
            '\u{85}',
            '\u{9f}',
            '\u{a0}',
            '\u{a1}',
            '\u{ad}',
            'é',
            '\u{200b}',
            '\u{202e}',
            '\u{2028}',
            '\u{2066}',
            '\u{3000}',
            '\u{feff}',
            '\u{fffd}',
            '\u{1d173}',
            '\u{e0001}',
            '\u{e0fff}',
            '\u{10ffff}',
            '😀',
        ]);
        let ascii = (0u8..0x80).prop_map(char::from);
        prop::collection::vec(
            prop_oneof![4 => ascii, 3 => edges, 2 => any::<char>()],
            0..48,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    fn pushed(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = b"x".to_vec(); // appends, never overwrites
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    proptest! {
        /// The fast paths write what the straightforward `Display`s write.
        #[test]
        fn fast_paths_as_display(s in hostile()) {
            prop_assert_eq!(pushed(|o| push_quoted(o, &s)), format!("x{}", Quoted(&s)));
            prop_assert_eq!(pushed(|o| push_bare(o, &s)), format!("x{}", Escaped::new(&s, BARE)));
            prop_assert_eq!(pushed(|o| push_json_str(o, &s)), format!("x{}", JsonStr(&s)));
        }
    }

    /// Every character, between safe ones, on every fast path.
    #[test]
    fn fast_paths_as_display_for_every_character() {
        for c in (0..=0x10_FFFFu32).filter_map(char::from_u32) {
            let s = format!("a{c}b{c}");
            assert_eq!(pushed(|o| push_quoted(o, &s)), format!("x{}", Quoted(&s)));
            assert_eq!(
                pushed(|o| push_bare(o, &s)),
                format!("x{}", Escaped::new(&s, BARE))
            );
            assert_eq!(
                pushed(|o| push_json_str(o, &s)),
                format!("x{}", JsonStr(&s))
            );
        }
    }
}
