//! Writes a file of sealed dumps and its verification key, for measuring `flightrec verify`,
//! and times sealing against plain dumping (in memory, where the hash weighs most):
//!
//! ```text
//! cargo run --release -p flightrec-benches --example sealed_dumps -- OUT.flr OUT.key 100
//! cargo build --release -p flightrec-cli
//! time target/release/flightrec verify --key OUT.key OUT.flr
//! ```
//!
//! The third argument is the number of dumps, each of 10 000 records (40-byte payloads,
//! 58-byte record frames).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use flightrec_core::seal::{SealKey, Sealer};
use flightrec_core::{
    write_dump, Build, ClockInfo, DumpHeader, DumpOrder, Kind, Level, Reason, RecordMeta, Ring,
};

const RECORDS: u64 = 10_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(out), Some(key_out), Some(n)) = (
        args.first(),
        args.get(1),
        args.get(2).and_then(|a| a.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: sealed_dumps OUT.flr OUT.key DUMPS");
        return ExitCode::from(2);
    };
    let k0 = [0x5Au8; 32];
    let mut key = SealKey::new(k0, 0);
    let build = Build {
        name: "bench",
        version: "1",
        id: &[1; 20],
    };
    let mut file = Vec::new();
    let (mut plain, mut sealed) = (Duration::ZERO, Duration::ZERO);
    let mut scratch = vec![0u8; 1024];
    for i in 0..n {
        let mut ring: Box<Ring<{ 1 << 20 }>> = Box::new(Ring::new());
        for j in 0..RECORDS {
            let t = i * RECORDS + j;
            let meta = RecordMeta {
                time: t,
                level: Level::Info,
                kind: Kind::FRAME,
                session: None,
            };
            let mut payload = [0u8; 40];
            payload[..8].copy_from_slice(&t.to_le_bytes());
            ring.push(&meta, &payload).unwrap();
        }
        let order = DumpOrder {
            reason: Reason::Manual,
            time: i,
            seq: None,
            session: None,
            suppressed: 0,
            index: i as u32,
        };
        let header = DumpHeader::for_order(&order, &[], 0, ClockInfo::BOOT_MILLIS, build);
        // The same dump twice: plain (thrown away), then sealed (kept).
        let mut scratch_out = Vec::with_capacity(1 << 20);
        let t0 = Instant::now();
        let s = write_dump(&mut scratch_out, &*ring, header, &mut scratch).unwrap();
        plain += t0.elapsed();
        assert_eq!(s.records, RECORDS);
        let t0 = Instant::now();
        let mut sealer = Sealer::new(&mut file);
        write_dump(&mut sealer, &*ring, header, &mut scratch).unwrap();
        sealer.finish(&mut key).unwrap();
        sealed += t0.elapsed();
    }
    let key_text = format!(
        "flightrec-seal-key 1\nepoch 0\nkey {}\n",
        k0.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    if let Err(e) = std::fs::write(out, &file).and_then(|()| std::fs::write(key_out, key_text)) {
        eprintln!("sealed_dumps: {e}");
        return ExitCode::from(2);
    }
    println!(
        "{n} dumps, {} records, {} bytes; dumping into memory: plain {:.1} ms, sealed {:.1} ms (+{:.0} %)",
        n * RECORDS,
        file.len(),
        plain.as_secs_f64() * 1e3,
        sealed.as_secs_f64() * 1e3,
        (sealed.as_secs_f64() / plain.as_secs_f64() - 1.0) * 100.0
    );
    ExitCode::SUCCESS
}
