//! The model of "dangerous text" the tests check output against, independent of
//! `flightrec_core::text::is_dangerous`: what Python 3 (fail2ban's language) calls
//! whitespace (`\s`) or files under Zs, Zl, Zp, Cc, Cf, plus the invisible characters the
//! issue names (Hangul fillers, variation selectors, the combining grapheme joiner).

#![allow(dead_code)] // Each test file uses part of it.

use std::collections::BTreeSet;
use std::sync::OnceLock;

/// The code points Python 3 flags, or `None` (with a note) where python3 does not run;
/// under `CI` that is a failure.
pub fn python_flagged() -> Option<&'static BTreeSet<u32>> {
    static SET: OnceLock<Option<BTreeSet<u32>>> = OnceLock::new();
    SET.get_or_init(|| {
        const SCRIPT: &str = "import re, unicodedata\n\
            ws = re.compile(r'\\s')\n\
            print(' '.join('%x' % i for i in range(0x110000) if not 0xd800 <= i <= 0xdfff and \
            (ws.match(chr(i)) or unicodedata.category(chr(i)) in ('Zs', 'Zl', 'Zp', 'Cc', 'Cf'))))\n";
        match std::process::Command::new("python3")
            .args(["-c", SCRIPT])
            .output()
        {
            Ok(out) if out.status.success() => {
                let set: BTreeSet<u32> = String::from_utf8(out.stdout)
                    .unwrap()
                    .split_whitespace()
                    .map(|h| u32::from_str_radix(h, 16).unwrap())
                    .collect();
                assert!(set.len() > 200, "python3 listed {} characters", set.len());
                Some(set)
            }
            other => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "python3 is needed under CI: {other:?}"
                );
                eprintln!("SKIPPED (part): python3 did not run, the model is Rust's tables only");
                None
            }
        }
    })
    .as_ref()
}

/// The invisible characters the issue names besides Cf.
pub fn issue_invisible() -> impl Iterator<Item = u32> {
    [0x115f, 0x1160, 0x3164, 0xffa0, 0x34f]
        .into_iter()
        .chain(0xfe00..=0xfe0f)
        .chain(0xe0100..=0xe01ef)
}

/// Whether `c` must never reach output raw: a control (C0, DEL, C1), Unicode whitespace
/// other than the ASCII space, a bidi, format or invisible character. Line breaks between
/// output lines are the caller's to allow.
pub fn must_be_escaped(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || python_flagged().is_some_and(|s| s.contains(&u32::from(c)) && c != ' ')
        || issue_invisible().any(|i| i == u32::from(c))
}

/// The characters of the model, for building hostile strings.
pub fn model_chars() -> &'static [char] {
    static CHARS: OnceLock<Vec<char>> = OnceLock::new();
    CHARS.get_or_init(|| {
        let mut all: BTreeSet<u32> = python_flagged().cloned().unwrap_or_default();
        all.extend(issue_invisible());
        all.extend(
            (0..=0x10_ffffu32).filter(|&c| {
                char::from_u32(c).is_some_and(|c| c.is_control() || c.is_whitespace())
            }),
        );
        all.into_iter().filter_map(char::from_u32).collect()
    })
}
