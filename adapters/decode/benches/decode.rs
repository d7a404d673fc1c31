//! Decode throughput (records/s and MB/s), side by side with a plain read of the same bytes.
//!
//! `cargo bench -p flightrec-decode --bench decode`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod workload;
use workload::{decode_json, decode_only, decode_text, input, plain_read};

fn bench(c: &mut Criterion) {
    let (bytes, records) = input();
    assert_eq!(decode_text(&bytes), records);
    eprintln!("input: {} bytes, {records} records", bytes.len());
    let mut g = c.benchmark_group("decode_records");
    g.throughput(Throughput::Elements(records));
    g.sample_size(10);
    g.bench_function("decode_only", |b| b.iter(|| decode_only(black_box(&bytes))));
    g.bench_function("decode_text_to_sink", |b| {
        b.iter(|| decode_text(black_box(&bytes)))
    });
    g.bench_function("decode_json_to_sink", |b| {
        b.iter(|| decode_json(black_box(&bytes)))
    });
    g.finish();
    let mut g = c.benchmark_group("decode_bytes");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.sample_size(10);
    g.bench_function("plain_read", |b| b.iter(|| plain_read(black_box(&bytes))));
    g.bench_function("decode_text_to_sink", |b| {
        b.iter(|| decode_text(black_box(&bytes)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
