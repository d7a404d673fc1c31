//! The byte ring against a `VecDeque` model: random pushes (every payload size up to past the
//! capacity, with and without session), pops, clears, record caps, and reads through cursors
//! held across all of it. After every step the ring's records, counters and every cursor's
//! reads must equal the model's.

use std::collections::VecDeque;

use flightrec_core::event::{Field, Fields, Log, Value};
use flightrec_core::ring::{HEADER_LEN, MAX_PAYLOAD};
use flightrec_core::{Cursor, Kind, Level, Read, RecordMeta, Ring, RingError, SessionId};
use proptest::prelude::*;

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

/// Longest operation sequence tried per case.
const OPS: usize = if cfg!(miri) { 40 } else { 300 };

#[derive(Clone, Debug)]
enum Op {
    Push {
        len: usize,
        session: Option<u32>,
        level: Level,
        kind: u8,
        time: u64,
        fill: u8,
    },
    Pop,
    Clear,
    /// Read one step through cursor `which` into a buffer of `out` bytes.
    Read {
        which: usize,
        out: usize,
    },
    /// Reset cursor `which` to the oldest record.
    Reset {
        which: usize,
    },
}

const CURSORS: usize = 2;

fn level() -> impl Strategy<Value = Level> {
    proptest::sample::select(Level::ALL.to_vec())
}

fn op(n: usize) -> impl Strategy<Value = Op> {
    let push = (
        0..=n + 16,
        proptest::option::of(any::<u32>()),
        level(),
        any::<u8>(),
        any::<u64>(),
        any::<u8>(),
    )
        .prop_map(|(len, session, level, kind, time, fill)| Op::Push {
            len,
            session,
            level,
            kind,
            time,
            fill,
        });
    // Mostly small payloads so that many records share the ring, some big ones that evict a lot.
    let small_push = (
        0..=n / 8,
        proptest::option::of(any::<u32>()),
        level(),
        any::<u8>(),
        any::<u64>(),
        any::<u8>(),
    )
        .prop_map(|(len, session, level, kind, time, fill)| Op::Push {
            len,
            session,
            level,
            kind,
            time,
            fill,
        });
    prop_oneof![
        6 => small_push,
        2 => push,
        1 => Just(Op::Pop),
        1 => Just(Op::Clear),
        4 => (0..CURSORS, 0..=n + 16).prop_map(|(which, out)| Op::Read { which, out }),
        1 => (0..CURSORS).prop_map(|which| Op::Reset { which }),
    ]
}

/// A payload that names its record: a wrong or torn payload cannot match another record's.
fn payload(seq: u64, len: usize, fill: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as u8).wrapping_mul(31) ^ fill.wrapping_add(i as u8) ^ (i >> 8) as u8)
        .collect()
}

#[derive(Clone, Debug, PartialEq)]
struct Rec {
    seq: u64,
    meta: RecordMeta,
    payload: Vec<u8>,
}

/// What the ring should hold and count.
struct Model {
    cap: usize,
    max_records: usize,
    recs: VecDeque<Rec>,
    used: usize,
    first_seq: u64,
    rejected: u64,
    evicted: u64,
}

impl Model {
    fn new(cap: usize, max_records: usize) -> Self {
        Model {
            cap,
            max_records,
            recs: VecDeque::new(),
            used: 0,
            first_seq: 0,
            rejected: 0,
            evicted: 0,
        }
    }

    fn size(meta: &RecordMeta, len: usize) -> usize {
        HEADER_LEN + if meta.session.is_some() { 4 } else { 0 } + len
    }

    fn next_seq(&self) -> u64 {
        self.first_seq + self.recs.len() as u64
    }

    fn pop(&mut self) -> bool {
        match self.recs.pop_front() {
            Some(r) => {
                self.used -= Self::size(&r.meta, r.payload.len());
                self.first_seq += 1;
                self.evicted += 1;
                true
            }
            None => false,
        }
    }

    fn push(&mut self, meta: RecordMeta, payload: Vec<u8>) -> Result<u64, RingError> {
        let needed = Self::size(&meta, payload.len());
        if needed > self.cap || payload.len() > MAX_PAYLOAD {
            self.rejected += 1;
            return Err(RingError::TooLarge);
        }
        while self.cap - self.used < needed
            || (self.max_records != 0 && self.recs.len() >= self.max_records)
        {
            assert!(self.pop(), "model: nothing left to evict");
        }
        let seq = self.next_seq();
        self.used += needed;
        self.recs.push_back(Rec { seq, meta, payload });
        Ok(seq)
    }

    fn clear(&mut self) {
        while self.pop() {}
    }

    /// One read step of a cursor at `seq` with an output buffer of `out` bytes.
    fn read(&self, seq: &mut u64, out: usize) -> (Read, Option<Vec<u8>>) {
        if *seq < self.first_seq {
            let lost = self.first_seq - *seq;
            *seq = self.first_seq;
            return (Read::Lost(lost), None);
        }
        let Some(r) = self.recs.get((*seq - self.first_seq) as usize) else {
            return (Read::End, None);
        };
        *seq += 1;
        if r.payload.len() > out {
            (
                Read::TooBig {
                    seq: r.seq,
                    len: r.payload.len(),
                },
                None,
            )
        } else {
            (
                Read::Record {
                    seq: r.seq,
                    meta: r.meta,
                    len: r.payload.len(),
                },
                Some(r.payload.clone()),
            )
        }
    }
}

fn contents<const N: usize>(ring: &Ring<N>) -> Vec<Rec> {
    ring.iter()
        .map(|r| {
            let mut buf = vec![0u8; r.len()];
            let copied = r.copy_to(&mut buf).expect("buffer sized to the payload");
            assert_eq!(copied.len(), r.len());
            Rec {
                seq: r.seq,
                meta: r.meta,
                payload: buf,
            }
        })
        .collect()
}

fn check_same<const N: usize>(ring: &Ring<N>, model: &Model) {
    let s = ring.stats();
    assert_eq!(s.first_seq, model.first_seq, "first_seq");
    assert_eq!(s.next_seq, model.next_seq(), "next_seq");
    assert_eq!(s.records, model.recs.len(), "records");
    assert_eq!(ring.len(), model.recs.len());
    assert_eq!(ring.is_empty(), model.recs.is_empty());
    assert_eq!(s.used, model.used, "used bytes");
    assert_eq!(s.capacity, N);
    assert_eq!(s.rejected, model.rejected, "rejected");
    assert_eq!(s.evicted, model.evicted, "evicted");
    assert!(s.used <= N);
    let got = contents(ring);
    assert!(
        got.iter().eq(model.recs.iter()),
        "ring contents differ from the model:\nring:  {got:?}\nmodel: {:?}",
        model.recs
    );
    assert_eq!(ring.oldest().seq(), model.first_seq);
}

fn run<const N: usize>(max_records: usize, ops: &[Op]) {
    let mut ring: Ring<N> = Ring::new();
    let mut model = Model::new(N, max_records);
    let mut cursors: [Cursor; CURSORS] = [ring.oldest(); CURSORS];
    let mut model_cursors = [0u64; CURSORS];
    let mut out = vec![0u8; N + 32];
    for op in ops {
        match *op {
            Op::Push {
                len,
                session,
                level,
                kind,
                time,
                fill,
            } => {
                let meta = RecordMeta {
                    time,
                    level,
                    kind: Kind(kind),
                    session: session.map(SessionId),
                };
                let bytes = payload(model.next_seq(), len, fill);
                let want = model.push(meta, bytes.clone());
                let got = ring.push(&meta, &bytes);
                // The last N records, as a recorder keeps them: trimmed after the push.
                if got.is_ok() && max_records != 0 {
                    ring.retain_last(max_records);
                }
                assert_eq!(got, want, "push of {len} bytes");
            }
            Op::Pop => assert_eq!(ring.pop_oldest(), model.pop()),
            Op::Clear => {
                ring.clear();
                model.clear();
            }
            Op::Read {
                which,
                out: out_len,
            } => {
                let (want, want_payload) = model.read(&mut model_cursors[which], out_len);
                // Poison the buffer so that a short copy cannot pass for the right bytes.
                out.fill(0xA5);
                let got = ring
                    .read(&mut cursors[which], &mut out[..out_len])
                    .expect("a consistent ring reads without error");
                assert_eq!(got, want);
                if let (Read::Record { len, .. }, Some(p)) = (got, want_payload) {
                    assert_eq!(&out[..len], &p[..], "payload read through a cursor");
                }
                assert_eq!(cursors[which].seq(), model_cursors[which]);
            }
            Op::Reset { which } => {
                cursors[which] = ring.oldest();
                model_cursors[which] = model.first_seq;
            }
        }
        check_same(&ring, &model);
    }
    // Drain every cursor: each ends at `End` having seen what the model says.
    for which in 0..CURSORS {
        loop {
            let (want, _) = model.read(&mut model_cursors[which], out.len());
            let got = ring.read(&mut cursors[which], &mut out).expect("read");
            assert_eq!(got, want);
            if got == Read::End {
                break;
            }
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ring_64_matches_model(ops in prop::collection::vec(op(64), 0..OPS)) {
        run::<64>(0, &ops);
    }

    #[test]
    fn ring_257_matches_model(ops in prop::collection::vec(op(257), 0..OPS)) {
        run::<257>(0, &ops);
    }

    #[test]
    fn ring_1024_matches_model(ops in prop::collection::vec(op(1024), 0..OPS)) {
        run::<1024>(0, &ops);
    }

    #[test]
    fn capped_ring_matches_model(
        max in 1usize..6,
        ops in prop::collection::vec(op(257), 0..OPS),
    ) {
        run::<257>(max, &ops);
    }

    /// `push_event` writes exactly the bytes `push` of the postcard encoding writes,
    /// wherever the ring's write position is (header and payload wrapping included).
    #[test]
    fn push_event_equals_push_of_encoding(
        fillers in prop::collection::vec(0usize..200, 0..6),
        // Not regex strategies: building their Unicode classes is very slow under Miri.
        target in prop::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
        message in prop::collection::vec(any::<char>(), 0..80).prop_map(String::from_iter),
        n in any::<u64>(),
        session in proptest::option::of(any::<u32>()),
    ) {
        let fields = [Field { name: "n", value: Value::U64(n) }, Field { name: "s", value: Value::Str(&message) }];
        let log = Log { level: Level::Info, target: &target, message: &message, fields: Fields::Slice(&fields) };
        let meta = RecordMeta { time: n, level: Level::Info, kind: Kind::LOG, session: session.map(SessionId) };
        let mut a: Ring<257> = Ring::new();
        let filler = RecordMeta { session: None, ..meta };
        for len in fillers {
            a.push(&filler, &vec![7u8; len]).unwrap();
        }
        let mut b = a.clone();
        let encoded = encoded(&log);
        let ra = a.push_event(&meta, &log);
        let rb = b.push(&meta, &encoded);
        prop_assert_eq!(ra, rb);
        prop_assert_eq!(contents(&a), contents(&b));
        prop_assert_eq!(a.stats(), b.stats());
    }
}

/// Every write position of a small ring, so that the header and the payload each wrap at every
/// possible byte.
#[test]
fn push_event_wraps_at_every_offset() {
    const N: usize = 128;
    let fields = [Field {
        name: "attempt",
        value: Value::I64(-3),
    }];
    let log = Log {
        level: Level::Warn,
        target: "auth",
        message: "wrong password for ünïcödé",
        fields: Fields::Slice(&fields),
    };
    let encoded = encoded(&log);
    let meta = RecordMeta {
        time: 99,
        level: Level::Warn,
        kind: Kind::LOG,
        session: Some(SessionId(5)),
    };
    let step = if cfg!(miri) { 13 } else { 1 };
    for filler in (0..N - HEADER_LEN).step_by(step) {
        let mut a: Ring<N> = Ring::new();
        let fm = RecordMeta {
            session: None,
            ..meta
        };
        a.push(&fm, &vec![1u8; filler]).unwrap();
        let mut b = a.clone();
        assert_eq!(a.push_event(&meta, &log), b.push(&meta, &encoded));
        let got = contents(&a);
        assert_eq!(got, contents(&b));
        let last = got.last().unwrap();
        assert_eq!(last.payload, encoded, "filler {filler}");
        assert_eq!(last.meta, meta);
    }
}

#[test]
fn size_limits() {
    let meta = RecordMeta {
        time: 0,
        level: Level::Info,
        kind: Kind::FRAME,
        session: None,
    };
    let with_session = RecordMeta {
        session: Some(SessionId(1)),
        ..meta
    };
    let mut ring: Ring<64> = Ring::new();
    // Exactly the capacity fits, one byte more does not.
    assert_eq!(ring.push(&meta, &[1; 64 - HEADER_LEN]), Ok(0));
    assert_eq!(
        ring.push(&meta, &[1; 64 - HEADER_LEN + 1]),
        Err(RingError::TooLarge)
    );
    assert_eq!(
        ring.push(&with_session, &[1; 64 - HEADER_LEN - 3]),
        Err(RingError::TooLarge)
    );
    // The refused record evicted nothing.
    assert_eq!(ring.len(), 1);
    assert_eq!(ring.stats().rejected, 2);
    assert_eq!(ring.push(&with_session, &[2; 64 - HEADER_LEN - 4]), Ok(1));
    assert_eq!(ring.stats().evicted, 1);
    assert_eq!(ring.stats().used, 64);

    // A payload over MAX_PAYLOAD is refused even by a ring big enough for it.
    let mut big: Box<Ring<70_000>> = Box::new(Ring::new());
    let payload = vec![3u8; MAX_PAYLOAD + 1];
    assert_eq!(big.push(&meta, &payload), Err(RingError::TooLarge));
    assert_eq!(big.push(&meta, &payload[..MAX_PAYLOAD]), Ok(0));
    let mut out = vec![0u8; MAX_PAYLOAD];
    let mut c = big.oldest();
    assert_eq!(
        big.read(&mut c, &mut out),
        Ok(Read::Record {
            seq: 0,
            meta,
            len: MAX_PAYLOAD
        })
    );

    // `push_with` takes any length: a huge one is refused, not overflowed.
    let before = ring.stats();
    let r = ring.push_with(&with_session, usize::MAX, |_, _| Ok(()));
    assert_eq!(r, Err(RingError::TooLarge));
    assert_eq!(ring.stats().rejected, before.rejected + 1);
    assert_eq!(with_session.ring_size(usize::MAX - 3), usize::MAX);
    // A failing fill appends nothing.
    assert_eq!(
        ring.push_with(&meta, 4, |_, _| Err(RingError::Encode)),
        Err(RingError::Encode)
    );
    assert_eq!(ring.stats().next_seq, before.next_seq);
    assert_eq!(contents(&ring).len(), ring.len());

    // A zero-sized ring refuses everything and never panics.
    let mut zero: Ring<0> = Ring::new();
    assert!(matches!(zero.push(&meta, &[]), Err(RingError::TooLarge)));
    let mut c = zero.oldest();
    assert_eq!(zero.read(&mut c, &mut []), Ok(Read::End));
    assert!(!zero.pop_oldest());
}

/// A cursor held while records are evicted reports exactly how many it missed, then reads on
/// from the oldest record.
#[test]
fn held_cursor_counts_lost_records() {
    let meta = RecordMeta {
        time: 0,
        level: Level::Debug,
        kind: Kind::FRAME,
        session: None,
    };
    let mut ring: Ring<100> = Ring::new(); // 20-byte records: 5 fit
    for i in 0..5u8 {
        ring.push(&meta, &[i; 8]).unwrap();
    }
    let mut c = ring.oldest();
    let mut out = [0u8; 8];
    assert!(matches!(
        ring.read(&mut c, &mut out),
        Ok(Read::Record { seq: 0, .. })
    ));
    for i in 5..12u8 {
        ring.push(&meta, &[i; 8]).unwrap();
    }
    // Records 1..7 are gone: 6 lost, then 7 is read.
    assert_eq!(ring.read(&mut c, &mut out), Ok(Read::Lost(6)));
    assert_eq!(c.seq(), 7);
    assert!(matches!(
        ring.read(&mut c, &mut out),
        Ok(Read::Record { seq: 7, len: 8, .. })
    ));
    assert_eq!(out, [7; 8]);
    // A too-small buffer skips the record.
    assert_eq!(
        ring.read(&mut c, &mut out[..7]),
        Ok(Read::TooBig { seq: 8, len: 8 })
    );
    ring.clear();
    assert_eq!(ring.read(&mut c, &mut out), Ok(Read::Lost(3)));
    assert_eq!(ring.read(&mut c, &mut out), Ok(Read::End));
    ring.push(&meta, &[42; 8]).unwrap();
    assert!(matches!(
        ring.read(&mut c, &mut out),
        Ok(Read::Record { seq: 12, .. })
    ));
    assert_eq!(out, [42; 8]);
}

/// Core's encoding of `log` into one buffer (the ring writes it into a slot that may wrap).
fn encoded(log: &Log<'_>) -> Vec<u8> {
    use flightrec_core::encode::Encode;
    let mut out = vec![0u8; log.encoded_len()];
    assert_eq!(
        flightrec_core::encode::to_slice(log, &mut out),
        Some(out.len())
    );
    out
}
