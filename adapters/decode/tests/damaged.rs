//! A corpus of damaged inputs: each gets a clear diagnosis and no panic.

mod common;
use common::*;
use flightrec_core::dump::{DumpEnd, DumpHeader, FRAME_END, FRAME_HEADER, FRAME_RECORD, MAGIC};
use flightrec_core::event::Log;
use flightrec_core::ring::{Cursor, Read, RingError, RingStats};
use flightrec_core::{
    write_dump, ClockInfo, Kind, Level, Reason, RecordHead, RecordMeta, Ring, SessionId, Source,
};
use flightrec_decode::{Decoder, Item};

/// Offsets of each frame in a dump, and the frame's length.
fn frames(dump: &[u8]) -> Vec<(usize, usize)> {
    let mut at = 9;
    let mut v = Vec::new();
    while at + 4 <= dump.len() {
        let len = u16::from_le_bytes([dump[at + 2], dump[at + 3]]) as usize + 8;
        v.push((at, len));
        at += len;
    }
    v
}

#[test]
fn empty_input() {
    let (t, stats, _) = text(&[]);
    assert_eq!(t, "");
    assert_eq!(stats, Default::default());
}

#[test]
fn truncated_at_every_byte() {
    let dump = boot_dump();
    let fr = frames(&dump);
    for n in 0..dump.len() {
        let (t, stats, _) = text(&dump[..n]);
        // Whole record frames in the prefix all decode.
        let whole = fr
            .iter()
            .skip(1)
            .filter(|&&(at, len)| at + len <= n && dump[at + 1] == FRAME_RECORD)
            .count() as u64;
        let header_whole = fr[0].0 + fr[0].1 <= n;
        if n < MAGIC.len() {
            assert_eq!(stats.dumps, 0, "{n}");
            assert!(!stats.damaged(), "a partial magic is just skipped bytes");
            continue;
        }
        assert_eq!(stats.records, whole, "cut at {n}:\n{t}");
        assert_eq!(stats.incomplete, 1, "cut at {n}:\n{t}");
        assert!(t.contains("incomplete at offset"), "{t}");
        if header_whole {
            assert!(t.starts_with("== dump at offset 0: failed login"), "{t}");
        }
        let in_frame = fr.iter().any(|&(at, len)| at < n && n < at + len);
        if in_frame {
            // The torn frame is reported with its offset and why.
            assert!(
                t.contains("frame of") && t.contains("cut off: the input ends"),
                "cut at {n}:\n{t}"
            );
        }
    }
}

#[test]
fn every_single_bit_flip_is_detected() {
    let dump = boot_dump();
    for byte in 0..dump.len() {
        for bit in 0..8 {
            let mut d = dump.clone();
            d[byte] ^= 1 << bit;
            let (t, stats, sum) = text(&d);
            assert!(
                stats.damaged() || sum.damaged(),
                "flip of bit {bit} in byte {byte} went unnoticed:\n{t}"
            );
            // Damage costs at most one frame's records.
            assert!(
                stats.records >= 4 || byte < 9 + 37,
                "byte {byte}: {stats:?}\n{t}"
            );
        }
    }
}

#[test]
fn damaged_record_is_skipped_and_counted() {
    let mut dump = boot_dump();
    let fr = frames(&dump);
    let (at, len) = fr[3]; // record seq 2 (header, rec 0, rec 1, rec 2)
    dump[at + len / 2] ^= 0x40;
    let (t, stats, _) = text(&dump);
    assert_eq!(stats.records, 4);
    assert_eq!(stats.damaged, 1);
    let expect = format!(
        "!! damaged at offset {at}, {len} bytes skipped: CRC mismatch in frame type 0x52 of {} body bytes\n\
         !! 1 record lost here (seq 2..3)\n",
        len - 8
    );
    assert!(t.contains(&expect), "{t}");
    assert!(t.contains("COUNT MISMATCH: 5 written but 4 decoded"), "{t}");
}

#[test]
fn garbage_inputs() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    };
    for size in [1usize, 7, 8, 9, 64, 1000, 70_000, 300_000] {
        let g: Vec<u8> = (0..size).map(|_| next()).collect();
        let (_, stats, _) = text(&g);
        assert_eq!(stats.bytes, size as u64);
        // Garbage with dumps spliced in: the dumps are still found.
        let mut mixed = g.clone();
        mixed.extend(boot_dump());
        mixed.extend(&g);
        let (t, stats, _) = text(&mixed);
        assert!(stats.records >= 5, "{t}");
    }
    // Frame-shaped garbage: sync, known types, huge lengths, inside a dump.
    let mut d = MAGIC.to_vec();
    d.push(1);
    for i in 0..20_000u32 {
        d.extend_from_slice(&[0xFE, [b'H', b'R', b'E'][i as usize % 3], 0xFF, 0xFF]);
    }
    let (t, stats, _) = text(&d);
    assert_eq!(stats.records, 0);
    assert!(t.contains("!! damaged at offset 9, 80000 bytes skipped: CRC mismatch in frame type 0x48 of 65535 body bytes"), "{t}");
}

#[test]
fn huge_lengths() {
    let mut d = MAGIC.to_vec();
    d.push(1);
    d.extend_from_slice(&[0xFE, b'R', 0xFF, 0xFF, 1, 2, 3]);
    let (t, stats, _) = text(&d);
    assert_eq!(
        t,
        "!! damaged at offset 9, 0 bytes skipped: dump has no whole header frame\n\
         !! damaged at offset 9, 7 bytes skipped: frame of 65543 bytes cut off: the input ends after 7\n\
         !! dump at offset 0 incomplete at offset 16: the input ends before its end frame; 0 records decoded\n"
    );
    assert!(stats.damaged());
}

#[test]
fn power_cut_in_flash_is_incomplete_not_dropped() {
    let dump = boot_dump();
    let fr = frames(&dump);
    let (at, len) = fr[4]; // cut inside record seq 3
    let mut image = dump[..at + len / 2].to_vec();
    image.extend(vec![0xFF; 8192]);
    image.extend(unix_dump());
    let (t, stats, _) = text(&image);
    assert_eq!(stats.records, 3 + 5);
    assert!(
        t.contains(&format!(
            "!! damaged at offset {at}, {} bytes skipped: CRC mismatch",
            len / 2
        )),
        "{t}"
    );
    assert!(t.contains(&format!(
        "!! dump at offset 0 incomplete at offset {}: erased flash follows (writer cut off, e.g. power loss); 3 records decoded\n\
         -- skipped 8192 bytes at offset {} outside dumps (erased flash)\n",
        at + len / 2,
        at + len / 2
    )), "{t}");
    // Cut exactly between frames.
    let mut image = dump[..at].to_vec();
    image.extend(vec![0xFF; 100]);
    let (t, _, _) = text(&image);
    assert!(
        t.contains("incomplete at offset") && t.contains("erased flash follows"),
        "{t}"
    );
    assert!(!t.contains("damaged"), "{t}");
}

#[test]
fn next_dump_begins_before_end() {
    let dump = boot_dump();
    let fr = frames(&dump);
    let mut two = dump[..fr[3].0].to_vec();
    two.extend(boot_dump());
    let (t, stats, _) = text(&two);
    assert_eq!(
        (stats.dumps, stats.records, stats.incomplete),
        (2, 2 + 5, 1)
    );
    assert!(
        t.contains("another dump begins before its end frame; 2 records decoded"),
        "{t}"
    );
}

#[test]
fn damaged_magic_still_finds_the_dump() {
    let mut d = boot_dump();
    d[2] = b'X';
    let (t, stats, _) = text(&d);
    assert_eq!(stats.records, 5);
    // The 9 bytes of the damaged magic are damage, not bytes between dumps.
    assert!(t.starts_with("!! skipped 9 bytes at offset 0 outside dumps\n!! damaged at offset 9, 0 bytes skipped: header frame without the dump magic before it\n== dump at offset 9:"), "{t}");
    assert!(stats.damaged());
}

#[test]
fn unknown_version_is_refused_not_guessed() {
    let mut d = boot_dump();
    d[8] = 2;
    let (t, stats, _) = text(&d);
    assert_eq!((stats.records, stats.unsupported), (0, 1));
    assert!(t.starts_with("!! dump at offset 0 has format version 2; this decoder knows version 1 only, skipped\n"), "{t}");
}

/// A handmade dump: header, the given frames, end.
fn handmade(
    header: &DumpHeader<'_>,
    extra_header: &[u8],
    frames_: &[Vec<u8>],
    end: Option<&[u8]>,
) -> Vec<u8> {
    let mut d = MAGIC.to_vec();
    d.push(1);
    let mut h = postcard::to_allocvec(header).unwrap();
    h.extend_from_slice(extra_header);
    d.extend(frame(FRAME_HEADER, &h));
    for f in frames_ {
        d.extend_from_slice(f);
    }
    if let Some(e) = end {
        d.extend(frame(FRAME_END, e));
    }
    d
}

fn header(first: u64, next: u64, scope: Option<SessionId>) -> DumpHeader<'static> {
    DumpHeader {
        reason: Reason::Signal(15),
        detail: "SIGTERM",
        trigger_time: 5,
        trigger_seq: None,
        clock: ClockInfo {
            rate_hz: 0,
            base: flightrec_core::TimeBase::Boot,
        },
        first_seq: first,
        next_seq: next,
        lost: 3,
        suppressed: 1,
        scope,
        index: 2,
        capacity: 1024,
        build: BUILD,
    }
}

fn record(seq: u64, kind: u8, level: u8, payload: &[u8]) -> Vec<u8> {
    let head = RecordHead {
        seq,
        time: seq.saturating_add(100),
        kind: Kind(kind),
        level,
        session: None,
    };
    let mut body = postcard::to_allocvec(&head).unwrap();
    body.extend_from_slice(payload);
    frame(FRAME_RECORD, &body)
}

fn end(records: u64, lost: u64, oos: u64) -> Vec<u8> {
    postcard::to_allocvec(&DumpEnd {
        records,
        lost,
        out_of_scope: oos,
    })
    .unwrap()
}

#[test]
fn gaps_unknown_kinds_frames_and_appended_fields() {
    let log = Log {
        level: Level::Info,
        target: "t",
        message: "m",
        fields: flightrec_core::event::Fields::NONE,
    };
    let mut log_bytes = [0u8; 16];
    let n = flightrec_core::encode::to_slice(&log, &mut log_bytes).unwrap();
    let log = &log_bytes[..n];
    let mut end_body = end(4, 2, 0);
    end_body.extend_from_slice(&[9, 9, 9]); // a newer writer's fields
    let d = handmade(
        &header(10, 20, None),
        &[0x42, 0x42], // a newer writer's fields
        &[
            record(12, 0, 2, log),
            frame(b'Z', b"future"),
            record(13, 9, 7, b"abc"),
            record(17, 0, 2, b"\xff\xff\xff"),
            record(18, 0, 2, log),
        ],
        Some(&end_body),
    );
    let (t, stats, sum) = text(&d);
    assert_eq!(
        t,
        "== dump at offset 0: signal 15 \"SIGTERM\" at tick:5; build \"demo\" \"1.0\" id abcdef01; records 10..20; lost 3; suppressed 1\n\
         !! 2 records lost here (seq 10..12)\n\
         tick:112 INFO  log - target=t msg=\"m\"\n\
         -- frame of unknown type 0x5a at offset 73, 6 bytes, skipped\n\
         tick:113 L7    kind9 - unknown kind 9, 3 bytes\n\
         !! 3 records lost here (seq 14..17)\n\
         tick:117 INFO  log - malformed payload, 3 bytes: ffffff\n\
         tick:118 INFO  log - target=t msg=\"m\"\n\
         !! 1 record lost here (seq 19..20)\n\
         == end of dump at offset 137: yes; 4 records written, 4 decoded, 2 lost during read-out, 0 outside scope\n"
    );
    assert_eq!(stats.missing, 6);
    assert!(!stats.damaged());
    assert_eq!(sum.malformed, 1);
}

#[test]
fn scoped_gaps_say_so() {
    let d = handmade(
        &header(0, 3, Some(SessionId(7))),
        &[],
        &[record(0, 1, 2, b""), record(2, 1, 2, b"")],
        Some(&end(2, 0, 1)),
    );
    let (t, _, _) = text(&d);
    assert!(t.contains("!! 1 record missing (lost, or of another session than the dump's scope) here (seq 1..2)\n"), "{t}");
}

/// A source that loses one record while the dump is read out, as a ring being overwritten
/// would.
struct Lossy<'r> {
    ring: &'r Ring<4096>,
    skip_seq: u64,
}

impl Source for Lossy<'_> {
    fn stats(&self) -> Result<RingStats, RingError> {
        Ok(self.ring.stats())
    }
    fn oldest(&self) -> Result<Cursor, RingError> {
        Ok(self.ring.oldest())
    }
    fn read(&self, cursor: &mut Cursor, out: &mut [u8]) -> Result<Read, RingError> {
        if cursor.seq() == self.skip_seq {
            self.ring.read(cursor, out)?; // read and dropped
            return Ok(Read::Lost(1));
        }
        self.ring.read(cursor, out)
    }
}

#[test]
fn records_lost_during_read_out_show_where() {
    let mut ring: Ring<4096> = Ring::new();
    for i in 0..6u64 {
        let meta = RecordMeta {
            time: i,
            level: Level::Info,
            kind: Kind::FRAME,
            session: None,
        };
        ring.push(&meta, &[i as u8]).unwrap();
    }
    let mut out = Vec::new();
    let mut scratch = [0u8; 256];
    let h = header(0, 0, None);
    write_dump(
        &mut out,
        &Lossy {
            ring: &ring,
            skip_seq: 3,
        },
        h,
        &mut scratch,
    )
    .unwrap();
    let (t, stats, sum) = text(&out);
    assert!(t.contains("tick:2 INFO  frame - len=1 hex=02\n!! 1 record lost here (seq 3..4)\ntick:4 INFO  frame - len=1 hex=04\n"), "{t}");
    assert!(
        t.contains("5 records written, 5 decoded, 1 lost during read-out"),
        "{t}"
    );
    assert_eq!(stats.missing, 1);
    assert!(!stats.damaged() && !sum.damaged());
}

/// Hands out one byte per read: the output must not depend on how the input arrives.
struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((b, rest)), Some(slot)) => {
                *slot = *b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

#[test]
fn streaming_does_not_change_the_output() {
    let mut image = vec![0xFF; 70_000];
    image.extend(boot_dump());
    let mut torn = boot_dump();
    torn[100] ^= 1;
    image.extend(torn);
    image.extend(vec![0x00; 1000]);
    let whole = text(&image).0;
    let mut trickled = Vec::new();
    let mut dec = Decoder::new(Trickle(&image));
    let mut r = flightrec_decode::Renderer::new(Default::default());
    while let Some(item) = dec.next().unwrap() {
        r.render(&item, &mut trickled).unwrap();
    }
    assert_eq!(String::from_utf8(trickled).unwrap(), whole);
}

/// An endless-looking input produced on the fly: memory stays bounded by construction (the
/// decoder owns one fixed buffer); this checks that a large input decodes in one pass.
struct Repeat {
    unit: Vec<u8>,
    left: usize,
    at: usize,
}

impl std::io::Read for Repeat {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() && self.left > 0 {
            let chunk = (self.unit.len() - self.at).min(buf.len() - n);
            buf[n..n + chunk].copy_from_slice(&self.unit[self.at..self.at + chunk]);
            n += chunk;
            self.at += chunk;
            if self.at == self.unit.len() {
                self.at = 0;
                self.left -= 1;
            }
        }
        Ok(n)
    }
}

#[test]
fn large_stream_in_one_pass() {
    let mut unit = boot_dump();
    unit.extend(vec![0xFF; 700]);
    let copies = 20_000; // ~20 MB
    let mut dec = Decoder::new(Repeat {
        unit: unit.clone(),
        left: copies,
        at: 0,
    });
    let mut dumps = 0;
    while let Some(item) = dec.next().unwrap() {
        if let Item::DumpEnd { .. } = item {
            dumps += 1;
        }
    }
    assert_eq!(dumps, copies);
    let s = dec.stats();
    assert_eq!(s.bytes, (unit.len() * copies) as u64);
    assert_eq!(s.records, 5 * copies as u64);
    assert!(!s.damaged());
}

/// Fails after handing out `ok` bytes.
struct Failing<'a>(&'a [u8]);

impl std::io::Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() {
            return Err(std::io::Error::other("device unplugged"));
        }
        let n = self.0.len().min(buf.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn read_errors_end_decoding_cleanly() {
    let dump = boot_dump();
    let mut dec = Decoder::new(Failing(&dump[..100]));
    let mut seen_error = false;
    for _ in 0..100 {
        match dec.next() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                assert_eq!(e.to_string(), "device unplugged");
                seen_error = true;
            }
        }
    }
    assert!(seen_error);
    assert!(matches!(dec.next(), Ok(None)), "finished after the error");
}

/// Gaps are as large as the sequence numbers an input states: two dumps with gaps of more
/// than half the `u64` range each saturate the count of missing records (a fuzz finding:
/// the sum overflowed) instead of wrapping or panicking.
#[test]
fn huge_gaps_saturate() {
    let big = u64::MAX - 10;
    let dump = handmade(
        &header(0, u64::MAX - 1, None),
        &[],
        &[record(0, 1, 2, b""), record(big, 1, 2, b"")],
        Some(&end(2, 0, 0)),
    );
    let both = [dump.as_slice(), dump.as_slice()].concat();
    let (t, stats, _) = text(&both);
    assert!(t.contains("!! 8 records lost here"), "{t}");
    assert_eq!(stats.missing, u64::MAX);
    let mut sum = stats;
    sum.add(&stats);
    assert_eq!(sum.missing, u64::MAX);
    // `info` sums a dump's gaps the same way.
    let mut decoder = flightrec_decode::Decoder::new(both.as_slice());
    let mut info = flightrec_decode::info::InfoCollector::new();
    let mut missing = Vec::new();
    while let Some(item) = decoder.next().unwrap() {
        if let Some(d) = info.feed(&item) {
            missing.push(d.missing);
        }
    }
    missing.extend(info.finish().map(|d| d.missing));
    assert_eq!(missing, [big + 7, big + 7]);
}
