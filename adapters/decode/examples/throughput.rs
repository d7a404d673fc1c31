//! Decode throughput measured in CPU time of this thread (from /proc/thread-self/schedstat),
//! so the numbers hold on a busy machine where wall-clock benches are noisy. Same input and
//! functions as `benches/decode.rs`.
//!
//! `cargo run --release -p flightrec-decode --example throughput`

use std::hint::black_box;
use std::io::{self, Read, Write};

use flightrec_core::event::{AuthFailure, Field, Value};
use flightrec_core::{Build, ClockInfo, DumpHeader, Level, Reason, RecordMeta, Ring, SessionId};
use flightrec_decode::{Decoder, Options, Renderer};

/// Nanoseconds this thread has run on a CPU.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat (Linux)")
}

/// A file of dumps back to back; typical records (log lines with fields, auth failures).
fn input() -> (Vec<u8>, u64) {
    let mut ring: Box<Ring<65536>> = Box::new(Ring::new());
    let mut i = 0u64;
    loop {
        let meta = RecordMeta {
            time: 1000 + i,
            level: Level::Info,
            kind: flightrec_core::Kind::LOG,
            session: Some(SessionId((i % 50) as u32)),
        };
        let pushed = if i % 4 == 3 {
            let meta = RecordMeta {
                kind: flightrec_core::Kind::AUTH_FAILURE,
                level: Level::Warn,
                ..meta
            };
            let e = AuthFailure {
                user: "admin",
                host: "gw1",
                peer: None,
                mechanism: "PLAIN",
                reason: "bad password",
            };
            ring.push_serialize(&meta, &e)
        } else {
            let fields = [Field {
                name: "n",
                value: Value::U64(i),
            }];
            let log = flightrec_core::event::Log {
                level: Level::Info,
                target: "app",
                message: "request served",
                fields: flightrec_core::event::Fields::Slice(&fields),
            };
            ring.push_serialize(&meta, &log)
        };
        pushed.unwrap();
        i += 1;
        if ring.stats().first_seq > 0 {
            break; // full: the ring now evicts
        }
    }
    let header = DumpHeader {
        reason: Reason::Manual,
        detail: "",
        trigger_time: 0,
        trigger_seq: None,
        clock: ClockInfo::BOOT_MILLIS,
        first_seq: 0,
        next_seq: 0,
        lost: 0,
        suppressed: 0,
        scope: None,
        index: 0,
        capacity: 0,
        build: Build {
            name: "bench",
            version: "1",
            id: &[1; 20],
        },
    };
    let mut one = Vec::new();
    let s = flightrec_core::write_dump(&mut one, &*ring, header, &mut [0u8; 1024]).unwrap();
    let copies = (8 << 20) / one.len() + 1; // ~8 MB
    (one.repeat(copies), s.records * copies as u64)
}

fn plain_read(bytes: &[u8]) -> u64 {
    let mut r = bytes;
    let mut buf = vec![0u8; 128 * 1024];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf).unwrap();
        if k == 0 {
            return n;
        }
        n += u64::from(black_box(buf[k - 1])) + k as u64;
    }
}

fn decode_only(bytes: &[u8]) -> u64 {
    let mut d = Decoder::new(bytes);
    let mut n = 0;
    while let Some(item) = d.next().unwrap() {
        black_box(&item);
        n += 1;
    }
    n
}

fn decode_text(bytes: &[u8]) -> u64 {
    let mut r = Renderer::new(Options::default());
    let mut out = io::BufWriter::with_capacity(1 << 16, io::sink());
    let (stats, _) = flightrec_decode::decode_to(bytes, &mut r, &mut out).unwrap();
    out.flush().unwrap();
    stats.records
}

fn decode_json(bytes: &[u8]) -> u64 {
    let mut r = Renderer::new(Options {
        format: flightrec_decode::Format::Json,
        ..Options::default()
    });
    let mut out = io::BufWriter::with_capacity(1 << 16, io::sink());
    let (stats, _) = flightrec_decode::decode_to(bytes, &mut r, &mut out).unwrap();
    stats.records
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
