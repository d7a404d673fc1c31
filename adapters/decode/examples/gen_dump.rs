//! Writes the input of the end-to-end `flightrec decode` timing (`benches/decode-cli.sh`):
//! dumps back to back as the Linux recorder writes them (a Unix clock in nanoseconds), of
//! a gateway's mix: `debug!(user = "alice", attempt = i, "login attempt")` log records and
//! auth failures with a peer. With `bench`, the records of the decode bench's workload
//! instead (`benches/workload`: a boot clock in milliseconds, shorter records).
//! Deterministic: the same arguments give the same bytes.
//!
//! `cargo run --release -p flightrec-decode --example gen_dump -- OUT [RECORDS] [gateway|bench]`
//! (RECORDS defaults to one million).

use std::io::{BufWriter, Write};

use flightrec_core::event::{Addr, AuthFailure, Field, Fields, Log, Peer, Value};
use flightrec_core::{
    Build, ClockInfo, DumpHeader, Kind, Level, Reason, RecordMeta, Ring, SessionId,
};

/// Records per dump (a fresh ring each, so that no record is evicted).
const PER_DUMP: u64 = 1000;
/// 2026-12-07T14:00:00Z in nanoseconds.
const START_NS: u64 = 1_796_652_000_000_000_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: gen_dump OUT [RECORDS] [gateway|bench]");
    let total: u64 = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("RECORDS"));
    let bench_mix = match args.next().as_deref() {
        None | Some("gateway") => false,
        Some("bench") => true,
        Some(other) => panic!("unknown mix {other:?}: gateway or bench"),
    };
    let mut out = BufWriter::new(std::fs::File::create(&path).expect("create OUT"));
    let mut scratch = vec![0u8; 1024];
    let mut one = Vec::new();
    let mut written = 0u64;
    let mut i = 0u64;
    while i < total {
        let mut ring: Box<Ring<{ 1 << 17 }>> = Box::new(Ring::new());
        let end = (i + PER_DUMP).min(total);
        for n in i..end {
            if bench_mix {
                push_bench(&mut ring, n);
            } else {
                push(&mut ring, n);
            }
        }
        assert_eq!(ring.stats().first_seq, 0, "a dump's records fit its ring");
        let header = DumpHeader {
            reason: Reason::Manual,
            detail: "",
            trigger_time: if bench_mix {
                1000 + end
            } else {
                START_NS + end * 1_234_567
            },
            trigger_seq: None,
            clock: if bench_mix {
                ClockInfo::BOOT_MILLIS
            } else {
                ClockInfo::UNIX_NANOS
            },
            first_seq: 0,
            next_seq: 0,
            lost: 0,
            suppressed: 0,
            scope: None,
            index: (i / PER_DUMP) as u32,
            capacity: 0,
            build: Build {
                name: "gateway",
                version: "1.4.2",
                id: &[0xab; 20],
            },
        };
        one.clear();
        let s = flightrec_core::write_dump(&mut one, &*ring, header, &mut scratch)
            .expect("write the dump");
        out.write_all(&one).expect("write OUT");
        written += s.records;
        i = end;
    }
    out.flush().expect("write OUT");
    eprintln!("{path}: {written} records");
}

/// Record `n` of the mix: three log records, then an auth failure.
fn push<const N: usize>(ring: &mut Ring<N>, n: u64) {
    let meta = RecordMeta {
        time: START_NS + n * 1_234_567,
        level: Level::Debug,
        kind: Kind::LOG,
        session: Some(SessionId((n % 50) as u32)),
    };
    let pushed = if n % 4 == 3 {
        let meta = RecordMeta {
            kind: Kind::AUTH_FAILURE,
            level: Level::Warn,
            ..meta
        };
        ring.push_event(
            &meta,
            &AuthFailure {
                user: "alice",
                host: "gw1.example.net",
                peer: Some(Peer {
                    addr: Addr::V4([203, 0, 113, (n % 250) as u8 + 1]),
                    port: 40_000 + (n % 20_000) as u16,
                }),
                mechanism: "PLAIN",
                reason: "bad password",
            },
        )
    } else {
        let fields = [
            Field {
                name: "user",
                value: Value::Str("alice"),
            },
            Field {
                name: "attempt",
                value: Value::U64(n),
            },
        ];
        ring.push_event(
            &meta,
            &Log {
                level: Level::Debug,
                target: "gateway::auth",
                message: "login attempt",
                fields: Fields::Slice(&fields),
            },
        )
    };
    pushed.expect("a record fits");
}

/// Record `n` of the decode bench's workload: three log records, then an auth failure.
fn push_bench<const N: usize>(ring: &mut Ring<N>, n: u64) {
    let meta = RecordMeta {
        time: 1000 + n,
        level: Level::Info,
        kind: Kind::LOG,
        session: Some(SessionId((n % 50) as u32)),
    };
    let pushed = if n % 4 == 3 {
        let meta = RecordMeta {
            kind: Kind::AUTH_FAILURE,
            level: Level::Warn,
            ..meta
        };
        ring.push_event(
            &meta,
            &AuthFailure {
                user: "admin",
                host: "gw1",
                peer: None,
                mechanism: "PLAIN",
                reason: "bad password",
            },
        )
    } else {
        let fields = [Field {
            name: "n",
            value: Value::U64(n),
        }];
        ring.push_event(
            &meta,
            &Log {
                level: Level::Info,
                target: "app",
                message: "request served",
                fields: Fields::Slice(&fields),
            },
        )
    };
    pushed.expect("a record fits");
}
