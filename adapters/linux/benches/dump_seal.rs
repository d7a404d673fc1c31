//! The cost of sealing on the gateway's dump path (`core/SEALING.md`; the issue's budget:
//! at most 10 % of a dump's write time): the same recorder dumped to a file by
//! [`DumpFiles`], in one run, on the bench's working directory (a disk) and on a tmpfs
//! (`/dev/shm`), the key file beside the dumps:
//!
//! - `unsealed`: streamed from the shards, not made durable (the page cache only);
//! - `unsealed_durable`: the same, then `fdatasync` (the default, `[dump] durable`);
//! - `sealed_durable`: streamed through its hash while the key file is evolved and
//!   `fdatasync`ed on another thread, then MAC, Ed25519 signature, the seal and signature
//!   frames, and the dump's `fdatasync`;
//! - `sealed`: as `sealed_durable` without the dump's `fdatasync` (the key's stays).
//!
//! Criterion measures one case after the other; on a shared machine the load changes
//! between them, so the bench then also runs the cases of each file system **interleaved**
//! (one dump of each case per round, in turn) and prints each case's median and quartiles
//! and its ratio to `unsealed_durable` and to `unsealed`, with the load average before and
//! after: the ratios to quote.
//!
//! ```text
//! cargo bench -p flightrec-linux --bench dump_seal
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use flightrec_core::seal::SealKey;
use flightrec_core::Level;
use flightrec_decode::verify::key_file_text;
use flightrec_linux::files::{FilePolicy, Template};
use flightrec_linux::sealkey::KeyFile;
use flightrec_linux::{DumpFiles, DumpFormat, DumpOptions, FlightRecorder, RecorderOptions};

/// Records in the recorder (over 4 shards): a full-sized dump.
const RECORDS: usize = 20_000;

fn dump_files(dir: &Path, durable: bool, key_dir: Option<&Path>) -> DumpFiles {
    let files = DumpFiles::new(
        DumpOptions {
            path: Template::parse(&format!("{}/d.flr", dir.display())).unwrap(),
            file: FilePolicy::default(),
            format: DumpFormat::Binary,
            durable,
            seal_key: None,
        },
        "bench",
    );
    if let Some(kd) = key_dir {
        let p = kd.join(format!("seal-{durable}.key"));
        std::fs::write(&p, key_file_text(&SealKey::new([9; 32], 0))).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(files.seal_with(KeyFile::open(&p).unwrap()));
    }
    files
}

/// Time to write one dump file (the file removed between runs, outside the timing).
fn time_dumps(files: &DumpFiles, rec: &FlightRecorder, dir: &Path, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let order = rec.manual_order();
        let start = Instant::now();
        files.write(rec, &order).unwrap();
        total += start.elapsed();
        std::fs::remove_file(dir.join("d.flr")).unwrap();
    }
    total
}

/// Rounds of the interleaved comparison.
const ROUNDS: usize = 300;

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Each case's dumps, one of each per round in turn, so that every case sees the same load;
/// prints median, quartiles and the ratios of the medians.
fn interleaved(fs: &str, cases: &[(&str, DumpFiles)], rec: &FlightRecorder, dir: &Path) {
    let load = load_average();
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for round in 0..ROUNDS {
        for i in 0..cases.len() {
            // Each round starts with another case: none always follows the same one.
            let k = (i + round) % cases.len();
            times[k].push(time_dumps(&cases[k].1, rec, dir, 1));
        }
    }
    let quartiles = |t: &mut Vec<Duration>| {
        t.sort();
        let at = |q: usize| t[(t.len() - 1) * q / 4].as_secs_f64() * 1e3;
        (at(1), at(2), at(3))
    };
    let stats: Vec<_> = times.iter_mut().map(quartiles).collect();
    let median_of = |name: &str| {
        cases
            .iter()
            .position(|(n, _)| *n == name)
            .map(|i| stats[i].1)
    };
    let (durable, plain) = (median_of("unsealed_durable"), median_of("unsealed"));
    eprintln!(
        "interleaved, {fs}, {ROUNDS} rounds, load average {load} before, {} after:",
        load_average()
    );
    for ((name, _), (q1, med, q3)) in cases.iter().zip(&stats) {
        eprintln!(
            "  {name:<17} median {med:.3} ms (quartiles {q1:.3}-{q3:.3} ms)  \
             vs unsealed_durable {:.2}x  vs unsealed {:.2}x",
            durable.map_or(f64::NAN, |d| med / d),
            plain.map_or(f64::NAN, |p| med / p),
        );
    }
}

fn bench(c: &mut Criterion) {
    let rec = FlightRecorder::new(RecorderOptions {
        shards: 4,
        min_level: Level::Trace,
        ..RecorderOptions::default()
    })
    .unwrap();
    for i in 0..RECORDS {
        rec.log(
            Level::Info,
            None,
            "bench",
            &format!("record {i} of the sealing bench, a line of typical length"),
            &[],
        );
    }
    let disk = tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or(".".into())).unwrap();
    let shm = tempfile::tempdir_in("/dev/shm").ok();
    let mut g = c.benchmark_group("dump_file");
    g.sample_size(30);
    for (fs, root) in [
        ("disk", Some(disk.path())),
        ("tmpfs", shm.as_ref().map(|s| s.path())),
    ] {
        let Some(root) = root else {
            eprintln!("no /dev/shm: the tmpfs cases are left out");
            continue;
        };
        let dir = root.join("dumps");
        let cases = [
            ("unsealed", dump_files(&dir, false, None)),
            ("unsealed_durable", dump_files(&dir, true, None)),
            ("sealed_durable", dump_files(&dir, true, Some(root))),
            ("sealed", dump_files(&dir, false, Some(root))),
        ];
        if fs == "disk" {
            let order = rec.manual_order();
            cases[0].1.write(&rec, &order).unwrap();
            let n = std::fs::metadata(dir.join("d.flr")).unwrap().len();
            std::fs::remove_file(dir.join("d.flr")).unwrap();
            eprintln!("dump of {RECORDS} records: {n} bytes");
        }
        for (name, files) in &cases {
            g.bench_function(format!("{fs}/{name}"), |b| {
                b.iter_custom(|n| time_dumps(files, &rec, &dir, n))
            });
        }
        interleaved(fs, &cases, &rec, &dir);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
