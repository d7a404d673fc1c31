//! Nothing vanishes without a word: lost magics and headers, splices of dumps, stray bytes
//! between dumps, and ring regions (the Linux ring file) read against a model of their
//! writer.

mod common;
use common::*;
use flightrec_core::dump::{DumpEnd, DumpHeader, FRAME_END, FRAME_HEADER, FRAME_RECORD, MAGIC};
use flightrec_core::{ClockInfo, Kind, Reason, RecordHead, TimeBase};
use flightrec_decode::{Decoder, Item};

fn header(first: u64, next: u64, capacity: u32) -> DumpHeader<'static> {
    DumpHeader {
        reason: Reason::Manual,
        detail: "",
        trigger_time: 0,
        trigger_seq: None,
        clock: ClockInfo {
            rate_hz: 0,
            base: TimeBase::Boot,
        },
        first_seq: first,
        next_seq: next,
        lost: 0,
        suppressed: 0,
        scope: None,
        index: 0,
        capacity,
        build: BUILD,
    }
}

fn record(seq: u64, payload: &[u8]) -> Vec<u8> {
    let head = RecordHead {
        seq,
        time: 100 + seq,
        kind: Kind::FRAME,
        level: 2,
        session: None,
    };
    let mut body = postcard::to_allocvec(&head).unwrap();
    let mut p = postcard::to_allocvec(payload).unwrap();
    body.append(&mut p);
    frame(FRAME_RECORD, &body)
}

fn start(h: &DumpHeader<'_>) -> Vec<u8> {
    let mut d = MAGIC.to_vec();
    d.push(1);
    d.extend(frame(FRAME_HEADER, &postcard::to_allocvec(h).unwrap()));
    d
}

fn end(records: u64) -> Vec<u8> {
    frame(
        FRAME_END,
        &postcard::to_allocvec(&DumpEnd {
            records,
            lost: 0,
            out_of_scope: 0,
        })
        .unwrap(),
    )
}

fn seqs(bytes: &[u8]) -> Vec<u64> {
    let mut d = Decoder::new(bytes);
    let mut v = Vec::new();
    while let Some(item) = d.next().unwrap() {
        if let Item::Record { head, .. } = item {
            v.push(head.seq);
        }
    }
    v
}

#[test]
fn records_of_a_dump_whose_magic_and_header_are_lost_are_shown() {
    let dump = boot_dump();
    let header_len = 9 + 8 + u16::from_le_bytes([dump[11], dump[12]]) as usize;
    for fill in [0x00u8, 0x55, 0xFF] {
        let mut d = vec![0xFFu8; 300];
        let at = d.len();
        d.extend(&dump);
        d[at..at + header_len].fill(fill);
        let (t, stats, _) = text(&d);
        assert_eq!(stats.records, 5, "fill {fill:#x}:\n{t}");
        let first = at + header_len;
        assert!(
            t.contains(&format!(
                "!! unknown dump at offset {first}: its magic and header are lost"
            )),
            "{t}"
        );
        assert!(stats.damaged(), "fill {fill:#x}: {stats:?}\n{t}");
        // The records appear after the heading, with raw ticks (the clock is lost).
        let heading = t.find("unknown dump").unwrap();
        assert!(
            t[heading..].contains("tick:2000 WARN  auth-failure s=7"),
            "{t}"
        );
    }
}

#[test]
fn bytes_skipped_between_dumps_are_damage() {
    let mut d = boot_dump();
    d.extend(b"some bytes that are no dump");
    d.extend(boot_dump());
    let (t, stats, _) = text(&d);
    assert_eq!(stats.records, 10);
    assert!(stats.damaged(), "{t}");
    assert!(
        t.contains(&format!(
            "!! skipped 27 bytes at offset {} outside dumps\n",
            boot_dump().len()
        )),
        "{t}"
    );
    // Erased flash between dumps is not.
    let mut d = boot_dump();
    d.extend([0xFF; 500]);
    d.extend(boot_dump());
    let (t, stats, _) = text(&d);
    assert!(!stats.damaged(), "{t}");
    assert!(t.contains("-- skipped 500 bytes"), "{t}");
}

#[test]
fn a_splice_of_two_dumps_is_reported_record_by_record() {
    // Dump A covers 0..4, dump B 20..24; A's first two frames, then B's last two and end.
    let mut d = start(&header(0, 4, 4096));
    d.extend(record(0, b"a0"));
    d.extend(record(1, b"a1"));
    d.extend(record(22, b"b2"));
    d.extend(record(23, b"b3"));
    d.extend(end(4));
    let (t, stats, _) = text(&d);
    assert_eq!(stats.records, 4, "{t}");
    assert!(stats.damaged(), "{t}");
    for seq in [22, 23] {
        assert!(
            t.contains(&format!(
                "0 bytes skipped: record {seq} lies outside its dump's range 0..4: it belongs to another dump\n"
            )),
            "{t}"
        );
    }
    // The records of A's own range that are missing are still a gap.
    assert!(t.contains("2 records lost here (seq 2..4)"), "{t}");
}

#[test]
fn duplicates_and_reordering_are_damage() {
    let mut d = start(&header(0, 4, 4096));
    for seq in [0, 1, 1, 3, 2] {
        d.extend(record(seq, b"x"));
    }
    d.extend(end(5));
    let (t, stats, _) = text(&d);
    assert!(stats.damaged());
    assert!(t.contains("record 1 appears twice"), "{t}");
    assert!(
        t.contains("record 2 out of order (expected 4 or later)"),
        "{t}"
    );
}

/// A model of the Linux ring file's region (see adapters/linux/src/ringfile.rs): magic,
/// version and header in a zero-padded header area, then a circular area of record frames
/// where a frame that does not fit zeroes the rest of the area and starts again at 0.
struct RingModel {
    area: Vec<u8>,
    head: usize,
    /// Every whole frame written: its record, where, its bytes.
    written: Vec<(u64, usize, Vec<u8>)>,
}

const HEADER_AREA: usize = 512;

impl RingModel {
    fn new(capacity: usize) -> Self {
        RingModel {
            area: vec![0; capacity],
            head: 0,
            written: Vec::new(),
        }
    }

    /// Writes the frame of `seq`, whole or only its first `cut` bytes (the writer killed).
    fn write(&mut self, seq: u64, payload_len: usize, cut: Option<usize>) {
        let f = record(seq, &vec![seq as u8; payload_len]);
        if self.head + f.len() > self.area.len() {
            self.area[self.head..].fill(0);
            self.head = 0;
        }
        let n = cut.unwrap_or(f.len());
        self.area[self.head..self.head + n].copy_from_slice(&f[..n]);
        if cut.is_none() {
            self.written.push((seq, self.head, f.clone()));
        }
        self.head += f.len();
    }

    /// The region, and the records whose frames are still whole in it.
    fn region(&self) -> (Vec<u8>, Vec<u64>) {
        let mut r = start(&header(0, u64::MAX, self.area.len() as u32));
        r.resize(HEADER_AREA, 0);
        r.extend(&self.area);
        let mut whole: Vec<u64> = self
            .written
            .iter()
            .filter(|(_, at, f)| self.area[*at..*at + f.len()] == f[..])
            .map(|&(seq, _, _)| seq)
            .collect();
        whole.sort_unstable();
        (r, whole)
    }
}

#[test]
fn ring_regions_are_not_damage_and_lose_nothing_they_hold() {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for case in 0..300 {
        let capacity = 512 + rnd(3000) as usize;
        let records = rnd(200);
        let killed = rnd(2) == 0;
        let mut file = Vec::new();
        let mut expect = Vec::new();
        let mut first_seq = Vec::new();
        for shard in 0..2u64 {
            let mut m = RingModel::new(capacity);
            let base = shard * 1000;
            for seq in base..base + records {
                m.write(seq, rnd(60) as usize, None);
            }
            if killed {
                let len = 8 + 6 + 1 + 10;
                m.write(base + records, 10, Some(1 + rnd(len as u64 - 1) as usize));
            }
            let (region, whole) = m.region();
            file.extend(region);
            first_seq.push(whole.first().copied());
            expect.extend(whole);
        }
        let (t, stats, sum) = text(&file);
        let mut got = seqs(&file);
        got.sort_unstable();
        assert_eq!(got, expect, "case {case}:\n{t}");
        assert!(
            !stats.damaged() && !sum.damaged(),
            "case {case}: {stats:?}\n{t}"
        );
        // Every record the region could still hold is there: nothing reported lost.
        assert_eq!(stats.missing, 0, "case {case}:\n{t}");
        assert_eq!(t.matches("== ring region at offset").count(), 2, "{t}");
        assert!(!t.contains("!!"), "case {case}:\n{t}");
    }
}

#[test]
fn ring_region_damage_is_damage_and_the_loss_is_exact() {
    let mut m = RingModel::new(2048);
    for seq in 0..100 {
        m.write(seq, 20, None);
    }
    let (mut region, whole) = m.region();
    assert!(
        whole.len() > 10 && whole[0] > 0,
        "the model wrapped: {whole:?}"
    );
    // Flip a bit inside a record in the middle of the newer lap (the area's start).
    let at = HEADER_AREA + 3 * 45 + 20;
    region[at] ^= 0x10;
    let (t, stats, _) = text(&region);
    assert!(stats.damaged(), "{t}");
    assert_eq!(
        stats.missing, 1,
        "one record lost, not the records before the ring:\n{t}"
    );
    assert_eq!(stats.records, whole.len() as u64 - 1, "{t}");
    assert!(t.contains("-- ring wraps at offset"), "{t}");
    // A ring file cut inside a frame of a region: damage.
    let (region, _) = m.region();
    let (t, stats, _) = text(&region[..region.len() - 100]);
    assert!(stats.damaged(), "{t}");
}

#[test]
fn a_ring_region_repeating_a_record_is_damage_not_a_wrap() {
    for (seqs, why) in [
        (&[5u64, 6, 6, 7][..], "record 6 appears twice"),
        // An "older lap" that reaches into the newer one.
        (&[5, 6, 7, 3, 4, 5], "record 5 out of order"),
    ] {
        let mut r = start(&header(0, u64::MAX, 1024));
        r.resize(HEADER_AREA, 0);
        for &s in seqs {
            r.extend(record(s, b"x"));
        }
        r.resize(HEADER_AREA + 1024, 0);
        let (t, stats, _) = text(&r);
        assert!(stats.damaged(), "{t}");
        assert!(t.contains(why), "{t}");
    }
}
