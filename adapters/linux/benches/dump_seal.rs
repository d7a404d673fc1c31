//! The cost of sealing on the gateway's dump path (`core/SEALING.md`; the issue's budget:
//! at most 10 % of a dump's write time): the same recorder dumped to a file by
//! [`DumpFiles`], unsealed (streamed from the shards) and sealed (built in memory, hashed,
//! MAC, Ed25519 signature, key evolved and `fsync`ed before the dump is written), in one
//! run. A third case seals with the key file's `fsync` on a tmpfs (`/dev/shm`) to show what
//! the hashing and signing cost apart from the disk.
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

fn dump_files(dir: &Path, key_dir: Option<&Path>) -> DumpFiles {
    let files = DumpFiles::new(
        DumpOptions {
            path: Template::parse(&format!("{}/d.flr", dir.display())).unwrap(),
            file: FilePolicy::default(),
            format: DumpFormat::Binary,
        },
        "bench",
    );
    if let Some(kd) = key_dir {
        let p = kd.join("seal.key");
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
    let tmp = tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or(".".into())).unwrap();
    let shm = tempfile::tempdir_in("/dev/shm").ok();
    let dir = tmp.path().join("dumps");
    let plain = dump_files(&dir, None);
    let sealed = dump_files(&dir, Some(tmp.path()));
    let sealed_shm = shm.as_ref().map(|s| dump_files(&dir, Some(s.path())));
    let size = {
        let order = rec.manual_order();
        plain.write(&rec, &order).unwrap();
        let n = std::fs::metadata(dir.join("d.flr")).unwrap().len();
        std::fs::remove_file(dir.join("d.flr")).unwrap();
        n
    };
    eprintln!("dump of {RECORDS} records: {size} bytes");
    let mut g = c.benchmark_group("dump_file");
    g.sample_size(30);
    g.bench_function("unsealed", |b| {
        b.iter_custom(|n| time_dumps(&plain, &rec, &dir, n))
    });
    g.bench_function("sealed", |b| {
        b.iter_custom(|n| time_dumps(&sealed, &rec, &dir, n))
    });
    if let Some(s) = &sealed_shm {
        g.bench_function("sealed_key_on_tmpfs", |b| {
            b.iter_custom(|n| time_dumps(s, &rec, &dir, n))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
