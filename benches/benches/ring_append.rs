//! Appending one 32-byte record to a full ring (steady-state eviction), side by side with the
//! fixed-size rings a user would pick instead. Every benchmark appends exactly one item per
//! iteration, so criterion's time per iteration is the time per append.
//!
//! Run: `cargo bench -p flightrec-benches --bench ring_append`. Results: `RESULTS.md`.

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use crossbeam_queue::ArrayQueue;
use flightrec_core::ring::HEADER_LEN;
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

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// Bytes of payload (flightrec) or item size (the others).
const ITEM: usize = 32;
/// Ring sizes in bytes; the fixed-size rings hold `BYTES / ITEM` items.
const SMALL: usize = 4 * 1024;
const LARGE: usize = 64 * 1024;

/// A payload that is not all zeros, so no copy can be turned into a memset.
fn payload() -> [u8; ITEM] {
    core::array::from_fn(|i| i as u8)
}

/// Meta of a plain record: no session, as most log records.
fn meta(time: u64) -> RecordMeta {
    RecordMeta {
        time,
        level: Level::Info,
        kind: Kind::FRAME,
        session: None,
    }
}

/// Fills a ring until it has evicted at least once, so every measured push evicts.
fn fill_ring<const N: usize>(ring: &mut Ring<N>) {
    let item = payload();
    let mut t = 0;
    while ring.stats().evicted == 0 {
        t += 1;
        ring.push(&meta(t), &item).expect("a 32-byte record fits");
    }
}

fn bench_flightrec_ring<const N: usize>(group: &mut Group<'_>) {
    let mut ring: Box<Ring<N>> = Box::new(Ring::new());
    fill_ring(&mut ring);
    let item = payload();
    let mut time = 1_000_000u64;
    group.bench_function(BenchmarkId::new("flightrec Ring::push", N), |b| {
        b.iter(|| {
            time = time.wrapping_add(1);
            black_box(ring.push(black_box(&meta(time)), black_box(&item)))
        })
    });
    // The measured pushes succeeded: the ring is in the same steady state as this one.
    assert!(ring.push(&meta(time + 1), &item).is_ok());
    assert_eq!(ring.stats().rejected, 0);
}

fn bench_flightrec_shared<const N: usize>(group: &mut Group<'_>) {
    let shared: Box<SharedRing<N>> = Box::new(SharedRing::new());
    shared.with(fill_ring).expect("not re-entrant");
    let item = payload();
    let mut time = 1_000_000u64;
    group.bench_function(BenchmarkId::new("flightrec SharedRing::push", N), |b| {
        b.iter(|| {
            time = time.wrapping_add(1);
            black_box(shared.push(black_box(&meta(time)), black_box(&item)))
        })
    });
    assert!(shared.push(&meta(time + 1), &item).is_ok());
}

fn bench_flightrec_recorder<const N: usize>(group: &mut Group<'_>) {
    settings!(Settings1 = RecorderConfig::DEFAULT);
    let rec: Box<Recorder<N, Settings1>> = Box::new(Recorder::new());
    // Target and message encode to a 32-byte payload (postcard: length-prefixed strings and an
    // empty field list).
    let (target, message) = ("net", "eth0 link up at 100 Mbit/s");
    let mut time = 0u64;
    rec.log(time, Level::Info, None, target, message, &[])
        .expect("a short log line fits");
    let used = rec.stats().expect("not re-entrant").ring.used;
    assert_eq!(used, HEADER_LEN + ITEM, "the log payload is {ITEM} bytes");
    while rec.stats().expect("not re-entrant").ring.evicted == 0 {
        time += 1;
        rec.log(time, Level::Info, None, target, message, &[])
            .expect("a short log line fits");
    }
    group.bench_function(BenchmarkId::new("flightrec Recorder::log", N), |b| {
        b.iter(|| {
            time = time.wrapping_add(1);
            black_box(rec.log(
                black_box(time),
                Level::Info,
                None,
                black_box(target),
                black_box(message),
                &[],
            ))
        })
    });
    let stats = rec.stats().expect("not re-entrant");
    assert_eq!(stats.ring.rejected, 0, "every log line was stored");
}

fn bench_history_buf<const N: usize, const ITEMS: usize>(group: &mut Group<'_>) {
    let mut buf: Box<HistoryBuf<[u8; ITEM], ITEMS>> = Box::new(HistoryBuf::new());
    let item = payload();
    for _ in 0..ITEMS {
        buf.write(item);
    }
    group.bench_function(BenchmarkId::new("heapless HistoryBuf::write", N), |b| {
        b.iter(|| buf.write(black_box(item)))
    });
    black_box(buf.recent());
}

/// What a fixed-size ring would have to store to carry what a flightrec record carries.
#[derive(Clone, Copy)]
struct Entry {
    seq: u64,
    meta: RecordMeta,
    payload: [u8; ITEM],
}

/// For information: HistoryBuf holding the same meta data as a flightrec record (still fixed
/// size, so no length, no eviction walk).
fn bench_history_buf_meta<const N: usize, const ITEMS: usize>(group: &mut Group<'_>) {
    let entry = |seq: u64| Entry {
        seq,
        meta: meta(seq),
        payload: payload(),
    };
    let mut buf: Box<HistoryBuf<Entry, ITEMS>> = Box::new(HistoryBuf::new());
    let mut seq = 0u64;
    for _ in 0..ITEMS {
        seq += 1;
        buf.write(entry(seq));
    }
    group.bench_function(
        BenchmarkId::new("heapless HistoryBuf::write (32 B + seq + meta)", N),
        |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                buf.write(black_box(entry(seq)))
            })
        },
    );
    black_box(buf.recent().map(|e| (e.seq, e.meta.time, e.payload)));
}

fn bench_array_queue<const N: usize>(group: &mut Group<'_>) {
    let queue: ArrayQueue<[u8; ITEM]> = ArrayQueue::new(N / ITEM);
    let item = payload();
    while queue.force_push(item).is_none() {}
    group.bench_function(
        BenchmarkId::new("crossbeam ArrayQueue::force_push", N),
        |b| b.iter(|| black_box(queue.force_push(black_box(item)))),
    );
}

fn bench_ringbuf<const N: usize>(group: &mut Group<'_>) {
    let mut rb: HeapRb<u8> = HeapRb::new(N);
    let item = payload();
    for _ in 0..N / ITEM + 1 {
        rb.push_slice_overwrite(&item);
    }
    group.bench_function(
        BenchmarkId::new("ringbuf HeapRb::push_slice_overwrite", N),
        |b| b.iter(|| rb.push_slice_overwrite(black_box(&item))),
    );
    black_box(&rb);
}

fn ring_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_append");
    group.throughput(Throughput::Elements(1));
    bench_history_buf::<SMALL, { SMALL / ITEM }>(&mut group);
    bench_flightrec_ring::<SMALL>(&mut group);
    bench_array_queue::<SMALL>(&mut group);
    bench_ringbuf::<SMALL>(&mut group);
    bench_flightrec_shared::<SMALL>(&mut group);
    bench_flightrec_recorder::<SMALL>(&mut group);
    bench_history_buf_meta::<SMALL, { SMALL / ITEM }>(&mut group);
    bench_history_buf::<LARGE, { LARGE / ITEM }>(&mut group);
    bench_flightrec_ring::<LARGE>(&mut group);
    bench_array_queue::<LARGE>(&mut group);
    bench_ringbuf::<LARGE>(&mut group);
    bench_flightrec_shared::<LARGE>(&mut group);
    bench_flightrec_recorder::<LARGE>(&mut group);
    bench_history_buf_meta::<LARGE, { LARGE / ITEM }>(&mut group);
    group.finish();
}

criterion_group!(benches, ring_append);
criterion_main!(benches);
