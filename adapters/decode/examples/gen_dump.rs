//! Writes the input of the end-to-end `flightrec decode` timing (`benches/decode-cli.sh`):
//! dumps back to back as the Linux recorder writes them (a Unix clock in nanoseconds), of
//! a gateway's mix: `debug!(user = "alice", attempt = i, "login attempt")` log records and
//! auth failures with a peer, the log records in the full form (as before the callsite
//! table). With `callsite`, the same records as the Linux recorder writes them now: the log
//! records in the callsite form, their callsite in each dump's table (they decode to the
//! same text). With `bench`, the records of the decode bench's workload instead
//! (`benches/workload`: a boot clock in milliseconds, shorter records).
//! Deterministic: the same arguments give the same bytes.
//!
//! `cargo run --release -p flightrec-decode --example gen_dump -- OUT [RECORDS] [gateway|callsite|bench]`
//! (RECORDS defaults to one million).

use std::io::{BufWriter, Write};

use flightrec_core::callsite::{self, Callsite, Names};
use flightrec_core::encode::{to_slice, Writer};
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
        .expect("usage: gen_dump OUT [RECORDS] [gateway|callsite|bench]");
    let total: u64 = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("RECORDS"));
    let mix = args.next();
    let (bench_mix, callsite_mix) = match mix.as_deref() {
        None | Some("gateway") => (false, false),
        Some("callsite") => (false, true),
        Some("bench") => (true, false),
        Some(other) => panic!("unknown mix {other:?}: gateway, callsite or bench"),
    };
    let mut table = [0u8; 128];
    let table_len = to_slice(&SITE, &mut table).expect("the callsite fits");
    let tables: &[&[u8]] = if callsite_mix {
        &[&table[..table_len]]
    } else {
        &[]
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
            } else if callsite_mix && n % 4 != 3 {
                push_callsite(&mut ring, n);
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
        let (stats, cursor) = (ring.stats(), ring.oldest());
        let s = flightrec_core::dump::write_dump_with_callsites(
            &mut one,
            &*ring,
            header,
            stats,
            cursor,
            &mut scratch,
            tables,
        )
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
    let meta = gateway_meta(n, Kind::LOG);
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

/// Record `n`'s metadata in the gateway mix, as a log line of `kind`'s form.
fn gateway_meta(n: u64, kind: Kind) -> RecordMeta {
    RecordMeta {
        time: START_NS + n * 1_234_567,
        level: Level::Debug,
        kind,
        session: Some(SessionId((n % 50) as u32)),
    }
}

/// The callsite of the gateway mix's log records.
const SITE: Callsite<'static> = Callsite {
    id: 1,
    level: Level::Debug,
    target: "gateway::auth",
    message: Some("login attempt"),
    file: "src/auth.rs",
    line: 42,
    names: Names::Slice(&["user", "attempt"]),
};

/// Log record `n` of the gateway mix in the callsite form.
fn push_callsite<const N: usize>(ring: &mut Ring<N>, n: u64) {
    let meta = gateway_meta(n, Kind::CALLSITE);
    let mut payload = [0u8; 32];
    let mut w = Writer::new(&mut payload, &mut []);
    w.varint(u64::from(SITE.id));
    callsite::write_value(&mut w, 0, &Value::Str("alice"));
    callsite::write_value(&mut w, 1, &Value::U64(n));
    let len = w.len();
    ring.push(&meta, &payload[..len]).expect("a record fits");
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
