//! Input and workloads shared by `benches/decode.rs` and `examples/throughput.rs`, so both
//! measure the same thing.

use std::hint::black_box;
use std::io::{self, Read, Write};

use flightrec_core::event::{AuthFailure, Field, Value};
use flightrec_core::{Build, ClockInfo, DumpHeader, Level, Reason, RecordMeta, Ring, SessionId};
use flightrec_decode::{Decoder, Options, Renderer};

/// A file of dumps back to back; typical records (log lines with fields, auth failures).
pub fn input() -> (Vec<u8>, u64) {
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
            ring.push_event(&meta, &e)
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
            ring.push_event(&meta, &log)
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

pub fn plain_read(bytes: &[u8]) -> u64 {
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

pub fn decode_only(bytes: &[u8]) -> u64 {
    let mut d = Decoder::new(bytes);
    let mut n = 0;
    while let Some(item) = d.next().unwrap() {
        black_box(&item);
        n += 1;
    }
    n
}

pub fn decode_text(bytes: &[u8]) -> u64 {
    let mut r = Renderer::new(Options::default());
    let mut out = io::BufWriter::with_capacity(1 << 16, io::sink());
    let (stats, _) = flightrec_decode::decode_to(bytes, &mut r, &mut out).unwrap();
    out.flush().unwrap();
    stats.records
}

pub fn decode_json(bytes: &[u8]) -> u64 {
    let mut r = Renderer::new(Options {
        format: flightrec_decode::Format::Json,
        ..Options::default()
    });
    let mut out = io::BufWriter::with_capacity(1 << 16, io::sink());
    let (stats, _) = flightrec_decode::decode_to(bytes, &mut r, &mut out).unwrap();
    stats.records
}
