//! Decode throughput measured in CPU time of this thread (from /proc/thread-self/schedstat),
//! so the numbers hold on a busy machine where wall-clock benches are noisy. Same input and
//! functions as `benches/decode.rs`.
//!
//! `cargo run --release -p flightrec-decode --example throughput`

use std::hint::black_box;

#[path = "../benches/workload/mod.rs"]
mod workload;
use workload::{decode_json, decode_only, decode_text, input, plain_read};

/// Nanoseconds this thread has run on a CPU.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat (Linux)")
}

fn main() {
    let (bytes, records) = input();
    println!("input: {} bytes, {records} records", bytes.len());
    type Run = (&'static str, fn(&[u8]) -> u64);
    let runs: [Run; 4] = [
        ("plain_read", plain_read),
        ("decode_only", decode_only),
        ("decode_text_to_sink", decode_text),
        ("decode_json_to_sink", decode_json),
    ];
    for (name, f) in runs {
        f(&bytes); // warm up
                   // The scheduler's CPU-time counter is coarse: repeat for at least 0.5 s of CPU.
        let (t0, mut runs) = (cpu_ns(), 0u32);
        while cpu_ns() - t0 < 500_000_000 {
            black_box(f(black_box(&bytes)));
            runs += 1;
        }
        let secs = (cpu_ns() - t0) as f64 / 1e9 / f64::from(runs);
        println!(
            "{name:<22} {:>8.2} ms CPU  {:>7.2} M records/s  {:>8.1} MB/s",
            secs * 1e3,
            records as f64 / secs / 1e6,
            bytes.len() as f64 / secs / 1e6
        );
    }
}
