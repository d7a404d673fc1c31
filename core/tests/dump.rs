//! Dumps written by `write_dump` and `Recorder::dump`, read back by a parser written here
//! from `WIRE-FORMAT.md` alone (own varints, own bitwise CRC-32): header, records and end
//! frame say what was in the ring; a failing writer leaves a prefix of the dump; records
//! evicted or added while a dump is read out are counted, never mixed in.

use std::cell::{Cell, RefCell};

use flightrec_core::{
    write_dump, Build, ClockInfo, Cursor, DumpError, DumpHeader, Kind, Level, Read, Reason,
    RecordMeta, Ring, RingError, RingStats, SessionId, Source, TimeBase,
};
use proptest::prelude::*;

mod common;
use common::{crc32, parse, End, Parsed, Record};

#[test]
fn reader_checks_itself_against_the_spec_example() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    let example =
        "89 46 4C 52 0D 0A 1A 0A 01 FE 48 1D 00 01 00 00 0B 01 00 E8 07 00 00 01 00 00 00 00 \
                   80 20 04 64 65 6D 6F 03 31 2E 30 02 AB AB B7 04 C1 C3 FE 52 08 00 00 0B 01 03 \
                   01 07 68 69 C1 21 C0 F2 FE 45 03 00 01 00 00 9B 2A 35 A8";
    let bytes: Vec<u8> = example
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    let p = parse(&bytes).unwrap();
    assert_eq!(p.header.capacity, 4096);
    assert_eq!(p.header.name, "demo");
    assert_eq!(p.records[0].payload, b"hi");
    assert_eq!(p.records[0].session, Some(7));
    assert_eq!(
        p.end,
        End {
            records: 1,
            lost: 0,
            out_of_scope: 0
        }
    );
}

// ---------------------------------------------------------------------------------------------

const BUILD: Build<'static> = Build {
    name: "fw",
    version: "2.1.0-rc1",
    id: &[0xde, 0xad, 0xbe, 0xef],
};

fn header(scope: Option<SessionId>) -> DumpHeader<'static> {
    DumpHeader {
        reason: Reason::Threshold(Kind::AUTH_FAILURE),
        detail: "ßßß",
        trigger_time: u64::MAX,
        trigger_seq: Some(300),
        clock: ClockInfo::UNIX_NANOS,
        // Filled in by write_dump from the ring:
        first_seq: 999,
        next_seq: 999,
        capacity: 999,
        lost: 17,
        suppressed: 4,
        scope,
        index: 12,
        build: BUILD,
    }
}

fn ring_records<const N: usize>(ring: &Ring<N>) -> Vec<Record> {
    ring.iter()
        .map(|r| {
            let mut payload = vec![0u8; r.len()];
            r.copy_to(&mut payload).unwrap();
            Record {
                seq: r.seq,
                time: r.meta.time,
                kind: r.meta.kind.0,
                level: r.meta.level as u8,
                session: r.meta.session.map(|s| s.0),
                payload,
            }
        })
        .collect()
}

fn payload_for(seq: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as u8) ^ (i as u8).wrapping_mul(7))
        .collect()
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        // ChaCha (the default) is several times slower under Miri.
        rng_algorithm: if cfg!(miri) {
            proptest::test_runner::RngAlgorithm::XorShift
        } else {
            proptest::test_runner::RngAlgorithm::default()
        },
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// A dump holds every record of the ring (of the scope), head and payload as pushed.
    #[test]
    fn dump_holds_the_ring(
        recs in prop::collection::vec(
            (0usize..120, proptest::option::of(0u32..3), any::<u8>(), 0u8..5, any::<u64>()),
            0..if cfg!(miri) { 12 } else { 60 },
        ),
        scope in proptest::option::of(0u32..3),
    ) {
        let mut ring: Ring<600> = Ring::new();
        for (i, &(len, session, kind, level, time)) in recs.iter().enumerate() {
            let meta = RecordMeta {
                time,
                level: Level::from_u8(level).unwrap(),
                kind: Kind(kind),
                session: session.map(SessionId),
            };
            ring.push(&meta, &payload_for(i as u64, len)).unwrap();
        }
        let mut out = Vec::new();
        let mut scratch = [0u8; 200];
        let scope = scope.map(SessionId);
        let summary = write_dump(&mut out, &ring, header(scope), &mut scratch).unwrap();
        let p = parse(&out).map_err(TestCaseError::fail)?;

        let stats = ring.stats();
        let h = &p.header;
        prop_assert_eq!((h.reason_code, h.reason_arg), (7, 2));
        prop_assert_eq!(h.detail.as_str(), "ßßß");
        prop_assert_eq!((h.trigger_time, h.trigger_seq), (u64::MAX, Some(300)));
        prop_assert_eq!((h.rate_hz, h.base), (1_000_000_000, 1));
        prop_assert_eq!((h.first_seq, h.next_seq, h.capacity), (stats.first_seq, stats.next_seq, 600));
        prop_assert_eq!((h.lost, h.suppressed, h.scope, h.index), (17, 4, scope.map(|s| s.0), 12));
        prop_assert_eq!((h.name.as_str(), h.version.as_str(), h.id.as_slice()), ("fw", "2.1.0-rc1", &[0xde, 0xad, 0xbe, 0xef][..]));

        let all = ring_records(&ring);
        let want: Vec<Record> = all
            .iter()
            .filter(|r| match (scope, r.session) {
                (Some(s), Some(r)) => s.0 == r,
                _ => true,
            })
            .cloned()
            .collect();
        prop_assert_eq!(&p.records, &want);
        let out_of_scope = (all.len() - want.len()) as u64;
        prop_assert_eq!(p.end, End { records: want.len() as u64, lost: 0, out_of_scope });
        prop_assert_eq!(summary.records, want.len() as u64);
        prop_assert_eq!(summary.out_of_scope, out_of_scope);
        prop_assert_eq!(summary.lost, 0);
        prop_assert_eq!(summary.bytes, out.len());
    }
}

#[test]
fn header_reasons_and_clock_bases() {
    let ring: Ring<64> = Ring::new();
    for (i, (reason, code, arg)) in [
        (Reason::FailedLogin, 1, 0),
        (Reason::UntimelyDeath, 2, 0),
        (Reason::Policy, 3, 0),
        (Reason::Level(Level::Error), 4, 4),
        (Reason::Named(3), 5, 3),
        (Reason::Signal(15), 6, 15),
        (Reason::Threshold(Kind(200)), 7, 200),
        (Reason::Manual, 8, 0),
        (
            Reason::Unknown {
                code: 99,
                arg: u16::MAX,
            },
            99,
            u32::from(u16::MAX),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        // Each base with every third reason: enough, and cheap under Miri.
        let (base, code_of_base) = [
            (TimeBase::Boot, 0),
            (TimeBase::Unix, 1),
            (TimeBase::Unknown(9), 9),
        ][i % 3];
        let mut out = Vec::new();
        let h = DumpHeader {
            reason,
            clock: ClockInfo {
                rate_hz: 32_768,
                base,
            },
            trigger_seq: None,
            scope: None,
            ..header(None)
        };
        let summary = write_dump(&mut out, &ring, h, &mut [0u8; 128]).unwrap();
        assert_eq!(summary.records, 0);
        let p = parse(&out).unwrap();
        assert_eq!((p.header.reason_code, p.header.reason_arg), (code, arg));
        assert_eq!((p.header.rate_hz, p.header.base), (32_768, code_of_base));
        assert_eq!(p.header.trigger_seq, None);
        assert_eq!((p.header.first_seq, p.header.next_seq), (0, 0));
        assert!(p.records.is_empty());
    }
}

#[test]
fn unknown_reasons_keep_their_code_and_saturate_large_arguments() {
    assert_eq!(
        Reason::from_wire(99, 70_000),
        Reason::Unknown {
            code: 99,
            arg: u16::MAX
        }
    );
    assert_eq!(
        Reason::from_wire(4, 300),
        Reason::Unknown { code: 4, arg: 300 }
    );
    assert_eq!(Reason::from_wire(99, 7).to_wire(), (99, 7));
}

fn filled_ring() -> Ring<512> {
    let mut ring: Ring<512> = Ring::new();
    for i in 0..20u64 {
        let meta = RecordMeta {
            time: i * 10,
            level: Level::Info,
            kind: Kind::FRAME,
            session: (i % 3 != 0).then_some(SessionId(i as u32 % 2)),
        };
        ring.push(&meta, &payload_for(i, (i as usize * 5) % 50))
            .unwrap();
    }
    ring
}

/// A writer that takes `limit` bytes, then fails (on write or, with everything written, on
/// flush when `fail_flush`).
struct Failing {
    out: Vec<u8>,
    limit: usize,
    fail_flush: bool,
}

#[derive(Debug, PartialEq, Eq)]
struct Broken;

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("broken writer")
    }
}

impl std::error::Error for Broken {}

impl embedded_io::Error for Broken {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

impl embedded_io::ErrorType for Failing {
    type Error = Broken;
}

impl embedded_io::Write for Failing {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Broken> {
        let room = self.limit - self.out.len();
        if room == 0 && !buf.is_empty() {
            return Err(Broken);
        }
        // Short writes: at most 3 bytes at a time, to exercise write_all's loop.
        let n = buf.len().min(room).min(3);
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> Result<(), Broken> {
        if self.fail_flush {
            Err(Broken)
        } else {
            Ok(())
        }
    }
}

#[test]
fn failing_writer_leaves_a_prefix() {
    let ring = filled_ring();
    let mut full = Vec::new();
    let mut scratch = [0u8; 128];
    write_dump(&mut full, &ring, header(Some(SessionId(1))), &mut scratch).unwrap();
    parse(&full).unwrap();
    let step = if cfg!(miri) { 97 } else { 1 };
    for k in (0..full.len()).step_by(step).chain([full.len() - 1]) {
        let mut w = Failing {
            out: Vec::new(),
            limit: k,
            fail_flush: false,
        };
        let r = write_dump(&mut w, &ring, header(Some(SessionId(1))), &mut scratch);
        assert_eq!(r, Err(DumpError::Io(Broken)), "cut at {k}");
        assert_eq!(w.out, full[..k], "cut at {k}");
        assert!(parse(&w.out).is_err(), "a cut dump is incomplete");
    }
    let mut w = Failing {
        out: Vec::new(),
        limit: full.len(),
        fail_flush: true,
    };
    let r = write_dump(&mut w, &ring, header(Some(SessionId(1))), &mut scratch);
    assert_eq!(r, Err(DumpError::Io(Broken)));
    assert_eq!(w.out, full);
    let mut w = Failing {
        out: Vec::new(),
        limit: full.len(),
        fail_flush: false,
    };
    let r = write_dump(&mut w, &ring, header(Some(SessionId(1))), &mut scratch).unwrap();
    assert_eq!(r.bytes, full.len());
    assert_eq!(w.out, full);
}

#[test]
fn small_scratch() {
    let mut ring: Ring<512> = Ring::new();
    let meta = RecordMeta {
        time: 0,
        level: Level::Warn,
        kind: Kind::FRAME,
        session: None,
    };
    for len in [10, 100, 20, 101, 0] {
        ring.push(&meta, &vec![len as u8; len]).unwrap();
    }
    // The header (about 40 bytes here) fits, payloads over 64 bytes do not: counted as lost.
    let mut out = Vec::new();
    let s = write_dump(&mut out, &ring, header(None), &mut [0u8; 64]).unwrap();
    let p = parse(&out).unwrap();
    let seqs: Vec<u64> = p.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [0, 2, 4]);
    assert_eq!(p.records[1].payload, [20; 20]);
    assert_eq!(
        p.end,
        End {
            records: 3,
            lost: 2,
            out_of_scope: 0
        }
    );
    assert_eq!((s.records, s.lost), (3, 2));

    // A scratch too small for the header: nothing but the magic and version written.
    let mut out = Vec::new();
    assert_eq!(
        write_dump(&mut out, &ring, header(None), &mut [0u8; 8]),
        Err(DumpError::ScratchTooSmall)
    );
    assert_eq!(out.len(), 9);
}

/// A source that pushes records into its ring between reads, as producers would while a dump
/// is being read out.
struct Busy<const N: usize> {
    ring: RefCell<Ring<N>>,
    reads: Cell<usize>,
    /// Records pushed before each read (by index of the read); the rest: none.
    pushes: Vec<usize>,
    payload_len: usize,
}

impl<const N: usize> Busy<N> {
    fn push(&self) {
        let mut ring = self.ring.borrow_mut();
        let seq = ring.stats().next_seq;
        let meta = RecordMeta {
            time: seq,
            level: Level::Debug,
            kind: Kind::FRAME,
            session: None,
        };
        ring.push(&meta, &payload_for(seq, self.payload_len))
            .unwrap();
    }
}

impl<const N: usize> Source for Busy<N> {
    fn stats(&self) -> Result<RingStats, RingError> {
        Ok(self.ring.borrow().stats())
    }
    fn oldest(&self) -> Result<Cursor, RingError> {
        Ok(self.ring.borrow().oldest())
    }
    fn read(&self, cursor: &mut Cursor, out: &mut [u8]) -> Result<Read, RingError> {
        let i = self.reads.get();
        self.reads.set(i + 1);
        for _ in 0..self.pushes.get(i).copied().unwrap_or(0) {
            self.push();
        }
        self.ring.borrow().read(cursor, out)
    }
}

/// Checks a dump of a `Busy` source: only records of the range the header announces, each
/// whole and in order, and records + lost account for the whole range.
fn check_busy_dump(out: &[u8], payload_len: usize) -> Parsed {
    let p = parse(out).unwrap();
    let (first, next) = (p.header.first_seq, p.header.next_seq);
    let mut last = None;
    for r in &p.records {
        assert!(
            r.seq >= first && r.seq < next,
            "record {} outside {first}..{next}",
            r.seq
        );
        assert!(last < Some(r.seq));
        last = Some(r.seq);
        assert_eq!(r.payload, payload_for(r.seq, payload_len));
        assert_eq!(r.time, r.seq);
    }
    assert_eq!(p.end.records, p.records.len() as u64);
    assert_eq!(
        p.end.records + p.end.lost + p.end.out_of_scope,
        next - first,
        "records + lost must account for the range exactly: {:?}",
        p.end
    );
    p
}

fn busy(pushes: Vec<usize>) -> Busy<256> {
    // 20-byte records: 12 fit in 256 bytes.
    let b = Busy {
        ring: RefCell::new(Ring::new()),
        reads: Cell::new(0),
        pushes,
        payload_len: 8,
    };
    for _ in 0..15 {
        b.push();
    }
    b
}

#[test]
fn records_evicted_during_the_dump_are_lost() {
    // 15 pushed, 3..15 held. After 3 reads, 30 more records evict the rest of the range and
    // more: 9 of the dump's records are lost, not 30 - the records pushed after it began.
    let b = busy(vec![0, 0, 0, 30]);
    let mut out = Vec::new();
    let s = write_dump(&mut out, &b, header(None), &mut [0u8; 64]).unwrap();
    let p = check_busy_dump(&out, 8);
    assert_eq!((p.header.first_seq, p.header.next_seq), (3, 15));
    assert_eq!(
        p.end,
        End {
            records: 3,
            lost: 9,
            out_of_scope: 0
        }
    );
    assert_eq!((s.records, s.lost), (3, 9));

    // Evicted in the middle: 2 pushes after the first read evict records 3 (already read)
    // and 4.
    let b = busy(vec![0, 2]);
    let mut out = Vec::new();
    write_dump(&mut out, &b, header(None), &mut [0u8; 64]).unwrap();
    let p = check_busy_dump(&out, 8);
    let seqs: Vec<u64> = p.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    assert_eq!(p.end.lost, 1);
}

#[test]
fn records_added_during_the_dump_are_left_out() {
    let b = Busy {
        ring: RefCell::new(Ring::<4096>::new()),
        reads: Cell::new(0),
        pushes: vec![5, 5, 5, 5],
        payload_len: 8,
    };
    for _ in 0..4 {
        b.push();
    }
    let mut out = Vec::new();
    write_dump(&mut out, &b, header(None), &mut [0u8; 64]).unwrap();
    let p = check_busy_dump(&out, 8);
    assert_eq!((p.header.first_seq, p.header.next_seq), (0, 4));
    assert_eq!(p.records.len(), 4);
    assert_eq!(p.end.lost, 0);
    assert_eq!(b.ring.borrow().stats().next_seq, 24);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn busy_dumps_account_for_every_record(
        pushes in prop::collection::vec(0usize..20, 0..20),
        scratch_len in 64usize..80,
    ) {
        let b = busy(pushes);
        let mut out = Vec::new();
        let mut scratch = vec![0u8; scratch_len];
        write_dump(&mut out, &b, header(None), &mut scratch).unwrap();
        check_busy_dump(&out, 8);
    }
}

/// A writer that takes `room` bytes, then accepts nothing (a full device).
struct Stuck {
    room: usize,
    taken: Vec<u8>,
}

impl embedded_io::ErrorType for Stuck {
    type Error = core::convert::Infallible;
}

impl embedded_io::Write for Stuck {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let n = buf.len().min(self.room - self.taken.len());
        self.taken.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[test]
fn a_writer_that_accepts_nothing_is_an_error_not_a_panic() {
    let ring = filled_ring();
    let mut full = Vec::new();
    write_dump(&mut full, &ring, header(None), &mut [0u8; 256]).unwrap();
    for room in [0, 1, 9, 40, full.len() - 1] {
        let mut w = Stuck {
            room,
            taken: Vec::new(),
        };
        let r = write_dump(&mut w, &ring, header(None), &mut [0u8; 256]);
        assert_eq!(r, Err(DumpError::WriteZero), "room {room}");
        assert_eq!(w.taken, full[..room], "room {room}");
    }
}

fn reason() -> impl Strategy<Value = Reason> {
    (any::<u8>(), any::<u32>()).prop_map(|(code, arg)| Reason::from_wire(code, arg))
}

proptest! {
    #![proptest_config(config())]

    /// The dump's own structures, written by core's encoder, are the bytes postcard writes
    /// for them (the wire format's reference) and read back as they were.
    #[test]
    fn dump_structures_are_postcards_bytes(
        reason in reason(),
        detail in ".{0,40}",
        nums in any::<[u64; 6]>(),
        small in any::<[u32; 4]>(),
        seq in proptest::option::of(any::<u64>()),
        scope in proptest::option::of(any::<u32>()),
        base in any::<u8>(),
        id in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let header = DumpHeader {
            reason,
            detail: &detail,
            trigger_time: nums[0],
            trigger_seq: seq,
            clock: ClockInfo {
                rate_hz: nums[1],
                base: match base {
                    0 => TimeBase::Boot,
                    1 => TimeBase::Unix,
                    c => TimeBase::Unknown(c),
                },
            },
            first_seq: nums[2],
            next_seq: nums[3],
            lost: nums[4],
            suppressed: small[0],
            scope: scope.map(SessionId),
            index: small[1],
            capacity: small[2],
            build: Build { name: &detail, version: "1.2", id: &id },
        };
        let mut out = vec![0u8; 512];
        let len = flightrec_core::encode::to_slice(&header, &mut out).unwrap();
        let reference = postcard::to_allocvec(&header).unwrap();
        prop_assert_eq!(&out[..len], &reference[..]);
        prop_assert_eq!(postcard::from_bytes::<DumpHeader<'_>>(&out[..len]).unwrap(), header);

        let head = flightrec_core::RecordHead {
            seq: nums[5],
            time: nums[0],
            kind: Kind(small[3] as u8),
            level: (small[3] >> 8) as u8,
            session: scope.map(SessionId),
        };
        let mut out = [0u8; flightrec_core::dump::RECORD_HEAD_MAX];
        let len = flightrec_core::encode::to_slice(&head, &mut out).unwrap();
        prop_assert_eq!(&out[..len], &postcard::to_allocvec(&head).unwrap()[..]);

        let end = flightrec_core::DumpEnd { records: nums[1], lost: nums[2], out_of_scope: nums[3] };
        let mut out = [0u8; 30];
        let len = flightrec_core::encode::to_slice(&end, &mut out).unwrap();
        prop_assert_eq!(&out[..len], &postcard::to_allocvec(&end).unwrap()[..]);
    }
}
