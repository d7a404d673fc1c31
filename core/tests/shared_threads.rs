//! A `SharedRing` written by several threads while another reads it with a cursor: every
//! record read is whole and is exactly the record its writer pushed under that sequence
//! number, and lost + read + still unread accounts for every record pushed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use flightrec_core::{Kind, Level, Read, RecordMeta, SessionId, SharedRing};

const WRITERS: u32 = 3;
const PER_WRITER: u32 = if cfg!(miri) { 40 } else { 20_000 };
/// Reader steps taken while the writers run (the rest is read after they finish).
const READER_STEPS: u32 = if cfg!(miri) { 60 } else { 40_000 };
const N: usize = 512;

/// Payload: writer id, counter, filler whose length depends on both, FNV-1a of all that.
fn payload(writer: u32, counter: u32) -> Vec<u8> {
    let filler = ((writer * 7 + counter * 13) % 40) as usize;
    let mut p = Vec::with_capacity(12 + filler);
    p.extend_from_slice(&writer.to_le_bytes());
    p.extend_from_slice(&counter.to_le_bytes());
    p.extend((0..filler).map(|i| (i as u32 ^ counter ^ writer) as u8));
    let sum = fnv(&p);
    p.extend_from_slice(&sum.to_le_bytes());
    p
}

fn fnv(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Checks a payload read back and returns its (writer, counter).
fn parse(p: &[u8]) -> (u32, u32) {
    assert!(p.len() >= 12, "short payload {p:?}");
    let (body, sum) = p.split_at(p.len() - 4);
    assert_eq!(fnv(body).to_le_bytes(), sum, "torn or wrong payload {p:?}");
    let writer = u32::from_le_bytes(body[0..4].try_into().unwrap());
    let counter = u32::from_le_bytes(body[4..8].try_into().unwrap());
    assert_eq!(p, payload(writer, counter).as_slice());
    (writer, counter)
}

#[derive(Default)]
struct Seen {
    read: u64,
    lost: u64,
    last_seq: Option<u64>,
    /// (seq, writer, counter, time, session) of every record read.
    records: Vec<(u64, u32, u32)>,
}

fn step(ring: &SharedRing<N>, cursor: &mut flightrec_core::Cursor, seen: &mut Seen) -> bool {
    let mut buf = [0u8; 128];
    match ring.read(cursor, &mut buf).expect("not re-entrant") {
        Read::Record { seq, meta, len } => {
            if let Some(last) = seen.last_seq {
                assert!(seq > last, "seq {seq} after {last}");
            }
            seen.last_seq = Some(seq);
            let (writer, counter) = parse(&buf[..len]);
            assert_eq!(meta.kind, Kind::FRAME);
            assert_eq!(meta.level, Level::Info);
            assert_eq!(meta.time, u64::from(counter));
            assert_eq!(meta.session, Some(SessionId(writer)));
            seen.read += 1;
            seen.records.push((seq, writer, counter));
            true
        }
        Read::Lost(n) => {
            assert!(n > 0);
            seen.lost += n;
            true
        }
        Read::TooBig { seq, len } => panic!("record {seq} of {len} bytes fits the buffer"),
        Read::End => false,
    }
}

#[test]
fn writers_and_a_reader() {
    let ring: Arc<SharedRing<N>> = Arc::new(SharedRing::new());
    let done = Arc::new(AtomicBool::new(false));
    let mut cursor = ring.oldest().unwrap();
    assert_eq!(cursor.seq(), 0);

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                let mut pushed = Vec::new();
                for c in 0..PER_WRITER {
                    let meta = RecordMeta {
                        time: u64::from(c),
                        level: Level::Info,
                        kind: Kind::FRAME,
                        session: Some(SessionId(w)),
                    };
                    let seq = ring.push(&meta, &payload(w, c)).expect("push");
                    pushed.push((seq, w, c));
                }
                pushed
            })
        })
        .collect();
    let reader = {
        let ring = Arc::clone(&ring);
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut seen = Seen::default();
            for _ in 0..READER_STEPS {
                if !step(&ring, &mut cursor, &mut seen) {
                    if done.load(Ordering::Acquire) {
                        break;
                    }
                    thread::yield_now();
                }
            }
            (seen, cursor)
        })
    };
    let mut pushed = HashMap::new();
    for w in writers {
        let mut last = None;
        for (seq, writer, counter) in w.join().unwrap() {
            // A writer's own records get increasing sequence numbers.
            assert!(last < Some(seq));
            last = Some(seq);
            assert!(
                pushed.insert(seq, (writer, counter)).is_none(),
                "seq {seq} twice"
            );
        }
    }
    done.store(true, Ordering::Release);
    let (mut seen, mut cursor) = reader.join().unwrap();

    let total = u64::from(WRITERS * PER_WRITER);
    let stats = ring.stats().unwrap();
    assert_eq!(stats.next_seq, total);
    assert_eq!(pushed.len() as u64, total);
    assert!((0..total).all(|s| pushed.contains_key(&s)));

    // Whatever the reader has not reached yet: records still held plus records it will see
    // as lost. Reading on to the end must account for exactly that many.
    let unread = total - cursor.seq();
    let before = seen.read + seen.lost;
    assert_eq!(before, cursor.seq());
    while step(&ring, &mut cursor, &mut seen) {}
    assert_eq!(seen.read + seen.lost - before, unread);
    assert_eq!(seen.read + seen.lost, total);
    assert!(seen.lost <= stats.evicted);

    // Every record read is the one its writer pushed under that sequence number.
    for &(seq, writer, counter) in &seen.records {
        assert_eq!(pushed.get(&seq), Some(&(writer, counter)), "seq {seq}");
    }
}
