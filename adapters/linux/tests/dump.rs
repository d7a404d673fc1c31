//! Dumps of many shards whose threads write while the dump runs, so that records are
//! evicted between the moment a dump takes the shards' positions and the moment it reads
//! them: every dump is whole, its records and lost records add up to what the shards held
//! when it began, and each thread's records keep their order.

mod common;

use std::io::{self, Write};
use std::sync::mpsc;

use flightrec_core::{Level, SessionId};
use flightrec_linux::{DumpFormat, FlightRecorder, RecorderOptions};

const SHARDS: usize = 8;
/// Records a thread writes to fill its shard's ring (about 2 200 fit).
const FILL: u64 = 4_000;
/// Records each thread writes in the middle of a dump.
const DURING: u64 = 1_000;

/// A thread writing numbered log lines (in its session) when told how many.
struct Producer {
    go: mpsc::Sender<u64>,
    done: mpsc::Receiver<()>,
}

impl Producer {
    fn spawn(
        rec: &std::sync::Arc<FlightRecorder>,
        t: u32,
    ) -> (Producer, std::thread::JoinHandle<()>) {
        let (go, orders) = mpsc::channel::<u64>();
        let (ack, done) = mpsc::channel();
        let rec = rec.clone();
        let handle = std::thread::spawn(move || {
            let mut n = 0u64;
            for count in orders {
                for _ in 0..count {
                    rec.log(
                        Level::Debug,
                        Some(SessionId(t)),
                        "load",
                        &n.to_string(),
                        &[],
                    );
                    n += 1;
                }
                ack.send(()).unwrap();
            }
        });
        (Producer { go, done }, handle)
    }
}

/// Runs every producer for `count` records at once, and waits for them.
fn produce(producers: &[Producer], count: u64) {
    for p in producers {
        p.go.send(count).unwrap();
    }
    for p in producers {
        p.done.recv().unwrap();
    }
}

/// Collects a dump; at its first byte (the shards' positions are taken, no record is read
/// yet) every thread writes [`DURING`] records.
struct EvictAtFirstByte<'a> {
    out: Vec<u8>,
    producers: &'a [Producer],
}

impl Write for EvictAtFirstByte<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.is_empty() {
            produce(self.producers, DURING);
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn dumps_during_evictions_are_whole_and_add_up() {
    let rec = FlightRecorder::new(RecorderOptions {
        shards: SHARDS,
        ..RecorderOptions::default()
    })
    .expect("recorder options");
    // One thread per shard (threads take shards round-robin).
    let (producers, handles): (Vec<_>, Vec<_>) =
        (0..SHARDS as u32).map(|t| Producer::spawn(&rec, t)).unzip();
    produce(&producers, FILL);
    for _ in 0..5 {
        let mut w = EvictAtFirstByte {
            out: Vec::new(),
            producers: &producers,
        };
        let summary = rec
            .write_dump(&rec.manual_order(), DumpFormat::Binary, &mut w)
            .unwrap();
        let mut dumps = common::parse(&w.out);
        assert_eq!(dumps.len(), 1);
        let d = dumps.remove(0);
        let end = d.end.expect("end frame");
        assert_eq!(d.bad_frames, 0);
        assert_eq!(end.records, d.records.len() as u64);
        assert_eq!((summary.records, summary.lost), (end.records, end.lost));
        assert_eq!(d.first_seq, 0);
        assert_eq!(
            end.records + end.lost,
            d.next_seq,
            "records and lost add up"
        );
        // At the first byte no record is read yet: each thread evicted at least its own
        // records' worth of the snapshot from its (full) shard.
        assert!(end.lost >= DURING, "{end:?}");
        assert!(end.records > 0, "{end:?}");
        let seqs: Vec<u64> = d.records.iter().map(|r| r.head.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        assert!(seqs.last().is_some_and(|s| *s < d.next_seq));
        // Each thread's records in its order, none written during the dump.
        let mut last = [None::<u64>; SHARDS];
        for r in &d.records {
            let t = r.head.session.expect("session").0 as usize;
            let n: u64 = r.message().unwrap().parse().unwrap();
            assert!(
                last[t].is_none_or(|l| l < n),
                "thread {t}: {n} after {last:?}"
            );
            last[t] = Some(n);
        }
    }
    drop(producers);
    for h in handles {
        h.join().unwrap();
    }
}
