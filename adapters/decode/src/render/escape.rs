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

/// Whether `s` is printable ASCII with nothing [`Escaped`] would change: then it is written
/// as is (a fast path only; everything else goes through `Escaped`).
fn clean(s: &str, delimiters: &[char]) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'\\' && !delimiters.contains(&char::from(b)))
}

/// A value in quotes, escaped.
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        if clean(self.0, QUOTED) {
            f.write_str(self.0)?;
        } else {
            Escaped::new(self.0, QUOTED).fmt(f)?;
        }
        f.write_str("\"")
    }
}

/// Appends `s` in quotes, escaped.
pub(crate) fn push_quoted(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    if clean(s, QUOTED) {
        out.extend_from_slice(s.as_bytes());
    } else {
        let _ = write!(out, "{}", Escaped::new(s, QUOTED));
    }
    out.push(b'"');
}

/// Appends `s` escaped, without quotes (a target, a field name).
pub(crate) fn push_bare(out: &mut Vec<u8>, s: &str) {
    if clean(s, BARE) {
        out.extend_from_slice(s.as_bytes());
    } else {
        let _ = write!(out, "{}", Escaped::new(s, BARE));
    }
}

/// `s` escaped for a line of text, no delimiters (a build name, a path).
pub(crate) fn plain(s: &str) -> Escaped<'_> {
    Escaped::new(s, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
