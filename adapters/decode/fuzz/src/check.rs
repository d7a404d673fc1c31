//! Runs the decoder and the CLI on bytes and checks what holds for any input: no panic, a
//! bounded number of items and bytes of output per input byte, every record shown is a
//! whole record frame of the input, no raw control character in what is printed, and an
//! exit status of 0 or 1.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use clap::Parser;
use flightrec_cli::{Cli, Env, EXIT_DAMAGED, EXIT_OK};
use flightrec_core::dump::{FRAME_OVERHEAD, FRAME_RECORD};
use flightrec_core::RecordHead;
use flightrec_decode::{Decoder, Header, Item, Stats};

use crate::pieces::whole_frame;

/// Output bytes (standard output and error together) allowed per input byte, beyond
/// [`OUTPUT_FIXED`]: a frame record's hex, a JSON `\u` escape, a forensic block per
/// 13-byte record all stay well below it.
pub const OUTPUT_PER_BYTE: usize = 160;
/// Output allowed whatever the input.
pub const OUTPUT_FIXED: usize = 16 << 10;

/// What the decoder reported, owned.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Its counts.
    pub stats: Stats,
    /// Each dump's offset and header.
    pub dumps: Vec<(u64, Header)>,
    /// Each record's offset, head and payload (a range of the input).
    pub records: Vec<(u64, RecordHead, std::ops::Range<usize>)>,
}

/// Decodes `input` with [`Decoder`], checking every record against the input's bytes.
pub fn decode(input: &[u8]) -> Decoded {
    let mut d = Decoder::new(input);
    let mut out = Decoded::default();
    let mut items = 0usize;
    while let Some(item) = d.next().expect("reading a slice cannot fail") {
        items += 1;
        assert!(items <= 4 * input.len() + 8, "more items than input bytes");
        match item {
            Item::DumpStart { offset, header } => out.dumps.push((offset, header)),
            Item::Record {
                offset,
                head,
                payload,
            } => {
                let range = record_frame(input, offset, &head, payload);
                out.records.push((offset, head, range));
            }
            _ => {}
        }
    }
    out.stats = d.stats();
    assert_eq!(out.stats.bytes, input.len() as u64, "input not consumed");
    out
}

/// Checks that a whole record frame with this head and payload is at `offset`; returns the
/// payload's range in the input. A decoder never shows a record the input does not hold.
fn record_frame(
    input: &[u8],
    offset: u64,
    head: &RecordHead,
    payload: &[u8],
) -> std::ops::Range<usize> {
    let at = usize::try_from(offset).expect("offset");
    let len = input
        .get(at + 2..at + 4)
        .map(|l| usize::from(u16::from_le_bytes([l[0], l[1]])))
        .expect("a record's offset inside the input");
    let frame = input
        .get(at..at + FRAME_OVERHEAD + len)
        .expect("a record's frame inside the input");
    let body =
        whole_frame(frame, FRAME_RECORD).expect("a record shown from a frame that does not check");
    let (decoded, rest) = postcard::take_from_bytes::<RecordHead>(body).expect("record head");
    if decoded.kind == flightrec_core::Kind::CALLSITE {
        // Shown as the log record it stands for: its payload rebuilt from the table.
        let log = RecordHead {
            kind: flightrec_core::Kind::LOG,
            ..decoded
        };
        assert_eq!(&log, head, "callsite record head differs from its frame's");
    } else {
        assert_eq!(&decoded, head, "record head differs from its frame's");
        assert_eq!(rest, payload, "record payload differs from its frame's");
    }
    let start = at + 4 + (body.len() - rest.len());
    start..start + rest.len()
}

/// The file the CLI reads, and a command line for each output format, made once.
fn clis() -> &'static (PathBuf, [Cli; 3]) {
    static CLIS: OnceLock<(PathBuf, [Cli; 3])> = OnceLock::new();
    CLIS.get_or_init(|| {
        let path = scratch_path();
        let clis = ["text", "json", "forensic"].map(|f| {
            Cli::try_parse_from([
                "flightrec".as_ref(),
                "decode".as_ref(),
                "--format".as_ref(),
                f.as_ref(),
                "--color".as_ref(),
                "never".as_ref(),
                path.as_os_str(),
            ])
            .expect("a valid command line")
        });
        (path, clis)
    })
}

/// The file the CLI reads: one per process, in memory (tmpfs).
fn scratch_path() -> PathBuf {
    let dir = std::path::Path::new("/dev/shm");
    let dir = if dir.is_dir() {
        dir.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("flightrec-fuzz-{}.bin", std::process::id()))
}

/// What the CLI did.
pub struct CliRun {
    /// Its exit status.
    pub code: u8,
    /// Its standard output.
    pub out: Vec<u8>,
    /// Its standard error.
    pub err: Vec<u8>,
}

/// Runs `flightrec decode --format F --color never FILE` in process on `input` (written to a
/// file, as a user would have it); checks the exit status is 0 or 1, the output's size and
/// that nothing printed holds a raw control character.
pub fn cli(input: &[u8], format: u8) -> CliRun {
    let (path, clis) = clis();
    let cli = &clis[usize::from(format % 3)];
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(input))
        .expect("scratch file");
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = flightrec_cli::run(cli, &Env::default(), &mut out, &mut err);
    assert!(
        code == EXIT_OK || code == EXIT_DAMAGED,
        "exit status {code}: {}",
        String::from_utf8_lossy(&err)
    );
    let printed = out.len() + err.len();
    assert!(
        printed <= OUTPUT_PER_BYTE * input.len() + OUTPUT_FIXED,
        "{printed} bytes printed for {} input bytes",
        input.len()
    );
    check_text(&out);
    check_text(&err);
    CliRun { code, out, err }
}

/// No raw control character but line feeds (and, with `issue10-text`, no bidi control, Unicode
/// space other than ASCII space, or invisible format character).
pub fn check_text(out: &[u8]) {
    let text = std::str::from_utf8(out).expect("output is UTF-8");
    let bad =
        |c: char| (c.is_control() && c != '\n') || cfg!(feature = "issue10-text") && invisible(c);
    // Eight bytes at a time, looking at characters only in words that hold a control byte,
    // DEL or a non-ASCII byte: libFuzzer traces every comparison, and a loop over every
    // character cost more than the decoding it checks.
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if let Some(word) = bytes.get(i..i + 8) {
            if !needs_a_look(u64::from_le_bytes(word.try_into().expect("8 bytes"))) {
                i += 8;
                continue;
            }
        }
        // Every skipped byte was ASCII, so `i` is on a character boundary.
        let end = (i + 8).min(bytes.len());
        while i < end {
            let c = text[i..].chars().next().expect("i < len");
            assert!(!bad(c), "raw {c:?} printed: {text:?}");
            i += c.len_utf8();
        }
    }
}

/// Whether a word of output holds a byte below `0x20`, `0x7F`, or a byte of a non-ASCII
/// character (the classic "has a byte less than n" and "has a zero byte" tests).
fn needs_a_look(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let del = word ^ (ONES * 0x7f);
    let del = del.wrapping_sub(ONES) & !del & HIGH;
    below_space | del | word & HIGH != 0
}

/// Characters that render as space or nothing, or reorder text: what one name must not use
/// to look like another.
fn invisible(c: char) -> bool {
    c != ' '
        && c != '\n'
        && (c.is_whitespace()
            || matches!(c,
                '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}'
                | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
                | '\u{110bd}' | '\u{1d173}'..='\u{1d17a}' | '\u{e0001}' | '\u{e0020}'..='\u{e007f}'))
}

#[cfg(test)]
mod tests {
    use super::check_text;

    fn fails(text: &str) -> bool {
        std::panic::catch_unwind(|| check_text(text.as_bytes())).is_err()
    }

    #[test]
    fn finds_a_bad_character_at_every_offset() {
        let pad = "abcdefghijklmnopqrstu\n";
        for bad in ["\u{7}", "\u{7f}", "\u{85}", "\r", "\u{1b}"]
            .into_iter()
            .chain(cfg!(feature = "issue10-text").then_some("\u{200b}"))
        {
            for at in 0..pad.len() {
                let text = format!("{}{bad}{}", &pad[..at], &pad[at..]);
                assert!(fails(&text), "{text:?}");
            }
        }
        assert!(!fails(pad));
        assert!(!fails("é日本\n語 ok\n"));
    }
}
