//! Names that become path components: this machine's host name, and host names a peer sends.

/// This machine's host name (`uname -n`), or `localhost`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A name safe as one path component: ASCII letters, digits, `-`, `_`, `.` (not leading, so
/// never `.` or `..`), 1 to 64 bytes. Anything else gives `None`: no `/`, no NUL, no control
/// or non-ASCII character, never empty (a remote-controlled host never picks a path).
pub fn safe_component(name: &str) -> Option<&str> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then_some(name)
}

/// The name of `host`'s audit file: one spelling per host name, so `example.org`,
/// `EXAMPLE.ORG` and `example.org.` share a file. ASCII letters are lowered and one trailing
/// dot (DNS's root) is dropped; the rest must be DNS labels (1 to 63 bytes each of letters,
/// digits, `-`, `_`, no empty label) forming a [`safe_component`]. Anything else (empty,
/// `.`, `..`, `/`, controls, non-ASCII, over 64 bytes) gives `None`: the fallback file.
pub fn host_file_name(host: &str) -> Option<String> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let labels_ok = host.split('.').all(|l| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    });
    let name = safe_component(host).filter(|_| labels_ok)?;
    Some(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_spellings_share_one_file_and_hostile_ones_none() {
        for h in ["example.org", "EXAMPLE.ORG", "example.org.", "Example.Org."] {
            assert_eq!(host_file_name(h).as_deref(), Some("example.org"), "{h}");
        }
        let long = "a".repeat(65);
        let label = format!("{}.org", "b".repeat(64));
        for h in [
            "",
            ".",
            "..",
            "...",
            "/",
            "a/b",
            "../etc",
            "example.org..",
            ".example.org",
            "a..b",
            "ex ample",
            "é.org",
            "a\u{0}b",
            "a\nb",
            "a\u{200b}b",
            "a\\b",
            "a:b",
            &long,
            &label,
        ] {
            assert_eq!(host_file_name(h), None, "{h:?}");
        }
    }
}
