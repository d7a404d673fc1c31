//! The appends of `benches/ring_append.rs` in a plain loop, for instruction counting under
//! callgrind (deterministic, unlike wall-clock time on a shared machine):
//!
//! ```text
//! cargo build --profile bench -p flightrec-benches --example append_loop
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/append_loop ring 1000000
//! ```
//!
//! The first argument picks the subject (`ring`, `shared`, `recorder`, `historybuf`,
//! `historybuf-meta`, `arrayqueue`, `ringbuf`, `none`), the second the number of appends
//! after the warm-up fill. Instructions per append, loop included = (total of a run with
//! COUNT appends − total of a run with 0) / COUNT; `none` is the bare loop.

use std::hint::black_box;
use std::process::ExitCode;

use crossbeam_queue::ArrayQueue;
use flightrec_core::{Kind, Level, RecordMeta, Recorder, RecorderConfig, Ring, SharedRing};
use heapless::HistoryBuf;
use ringbuf::HeapRb;

/// A `RecorderSettings` type `$name` for the configuration `$config`.
macro_rules! settings {
    ($name:ident = $config:expr) => {
        struct $name;
        impl flightrec_core::RecorderSettings for $name {
            const CONFIG: flightrec_core::RecorderConfig = $config;
        }
    };
}

const ITEM: usize = 32;
const BYTES: usize = 4096;

fn meta(time: u64) -> RecordMeta {
    RecordMeta {
        time,
        level: Level::Info,
        kind: Kind::FRAME,
        session: None,
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let subject = args.next().unwrap_or_default();
    let Some(n) = args.next().and_then(|a| a.parse::<u64>().ok()) else {
        eprintln!(
            "usage: append_loop ring|shared|recorder|historybuf|historybuf-meta|arrayqueue|ringbuf|none COUNT"
        );
        return ExitCode::FAILURE;
    };
    let item: [u8; ITEM] = core::array::from_fn(|i| i as u8);
    // The warm-up fill (BYTES / ITEM appends and then some) is the same for every subject,
    // so that the `none` baseline subtracts it.
    let warm = (BYTES / ITEM) as u64 * 2;
    match subject.as_str() {
        "ring" => {
            let mut ring: Box<Ring<BYTES>> = Box::new(Ring::new());
            for t in 0..warm + n {
                let _ = black_box(ring.push(black_box(&meta(t)), black_box(&item)));
            }
            black_box(ring.stats());
        }
        "shared" => {
            let ring: Box<SharedRing<BYTES>> = Box::new(SharedRing::new());
            for t in 0..warm + n {
                let _ = black_box(ring.push(black_box(&meta(t)), black_box(&item)));
            }
        }
        "recorder" => {
            settings!(Settings1 = RecorderConfig::DEFAULT);
            let rec: Box<Recorder<BYTES, Settings1>> = Box::new(Recorder::new());
            for t in 0..warm + n {
                let _ = black_box(rec.log(
                    black_box(t),
                    Level::Info,
                    None,
                    black_box("net"),
                    black_box("eth0 link up at 100 Mbit/s"),
                    &[],
                ));
            }
        }
        "historybuf" => {
            let mut buf: Box<HistoryBuf<[u8; ITEM], { BYTES / ITEM }>> =
                Box::new(HistoryBuf::new());
            for _ in 0..warm + n {
                buf.write(black_box(item));
            }
            black_box(buf.recent());
        }
        "historybuf-meta" => {
            let mut buf: Box<HistoryBuf<(u64, RecordMeta, [u8; ITEM]), { BYTES / ITEM }>> =
                Box::new(HistoryBuf::new());
            for t in 0..warm + n {
                buf.write(black_box((t, meta(t), item)));
            }
            black_box(buf.recent().map(|e| e.0));
        }
        "arrayqueue" => {
            let queue: ArrayQueue<[u8; ITEM]> = ArrayQueue::new(BYTES / ITEM);
            for _ in 0..warm + n {
                black_box(queue.force_push(black_box(item)));
            }
        }
        "ringbuf" => {
            let mut rb: HeapRb<u8> = HeapRb::new(BYTES);
            for _ in 0..warm + n {
                rb.push_slice_overwrite(black_box(&item));
            }
            black_box(&rb);
        }
        "none" => {
            for t in 0..warm + n {
                black_box(black_box(&meta(t)));
                black_box(black_box(&item));
            }
        }
        other => {
            eprintln!("unknown subject {other:?}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
