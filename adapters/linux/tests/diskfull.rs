//! A full disk, for real: a 256 KiB tmpfs filled by another writer while the service writes
//! audit lines and dumps. Every line and dump is whole in its file or counted as lost
//! (written + lost = submitted), nothing is glued to a fragment, and what comes after space
//! is freed is whole again.
//!
//! Mounting needs root: elsewhere the tests print `SKIPPED`, except under CI (`CI=true`),
//! where they fail.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use flightrec_core::event::AuthFailure;
use flightrec_core::trigger::TriggerConfig;
use flightrec_core::Level;
use flightrec_linux::files::{FilePolicy, Template};
use flightrec_linux::{
    AuditOptions, DumpFiles, DumpFormat, DumpOptions, FlightRecorder, RecorderOptions, Service,
    ServiceOptions,
};

/// A small tmpfs, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one, or says why not (and fails under CI).
    fn mount() -> Option<Tmpfs> {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("fs");
        std::fs::create_dir(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs"])
            .arg(&dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                dir,
                _parent: parent,
            }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                eprintln!("SKIPPED: cannot mount a tmpfs here (needs root): {why}");
                assert!(
                    std::env::var("CI").map_or(true, |v| v != "true"),
                    "CI must run the disk-full tests (as root): {why}"
                );
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

/// Free bytes on the file system of `dir`.
fn free_bytes(dir: &Path) -> u64 {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    st.f_bavail as u64 * st.f_frsize as u64
}

/// Fills the file system of `path`: all but 32 KiB at once, then the rest from another
/// thread, 4 KiB at a time, while the service writes. Removing the file frees most of the
/// disk again.
fn fill(path: PathBuf) -> (std::thread::JoinHandle<()>, Arc<AtomicBool>) {
    let mut f = std::fs::File::create(&path).unwrap();
    let first = free_bytes(path.parent().unwrap()).saturating_sub(32 * 1024);
    f.write_all(&vec![b'x'; first as usize]).unwrap();
    let full = Arc::new(AtomicBool::new(false));
    let done = full.clone();
    let thread = std::thread::spawn(move || {
        while f.write_all(&[b'x'; 4096]).is_ok() {
            std::thread::yield_now();
        }
        done.store(true, Ordering::SeqCst);
    });
    (thread, full)
}

/// Frees the space `path` holds at once and removes it. Truncating frees its blocks even
/// while another process holds the file open.
fn free_space(path: &Path) {
    empty(path);
    std::fs::remove_file(path).unwrap();
}

fn recorder() -> Arc<FlightRecorder> {
    FlightRecorder::new(RecorderOptions {
        shards: 2,
        host: "gw".into(),
        trigger: TriggerConfig {
            failed_login: false,
            post_records: 0,
            ..TriggerConfig::DEFAULT
        },
        ..RecorderOptions::default()
    })
    .expect("recorder options")
}

fn empty(path: &Path) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// Checks that `text` holds only whole audit lines of users `u<N>`, each at most once;
/// returns their numbers.
fn whole_lines(text: &str) -> Vec<u64> {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "ends in a fragment"
    );
    let mut seen = Vec::new();
    for line in text.lines() {
        let user = line
            .split(" authentication for u")
            .nth(1)
            .and_then(|r| r.split('@').next())
            .map(|u| u.trim_end_matches('x'))
            .unwrap_or_else(|| panic!("not a whole line: {line:?}"));
        assert!(
            line.ends_with(": bad\\x20password") && line.matches(" Failed ").count() == 1,
            "not a whole line: {line:?}"
        );
        seen.push(user.parse().unwrap());
    }
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "a line written twice");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_lines_are_whole_or_counted_lost_on_a_full_disk() {
    let Some(fs) = Tmpfs::mount() else { return };
    let rec = recorder();
    let audit = fs.dir.join("audit.log");
    let service = Service::start(
        rec.clone(),
        ServiceOptions {
            dump: DumpOptions {
                path: Template::parse(&fs.dir.join("d.flr").display().to_string()).unwrap(),
                file: FilePolicy::default(),
                format: DumpFormat::Binary,
                durable: true,
                seal_key: None,
            },
            audit: Some(AuditOptions {
                path: audit.display().to_string(),
                max_bytes: 0,
                ..AuditOptions::default()
            }),
            queue: 100_000,
            dump_signal: None,
            reopen_on_hup: false,
        },
    )
    .unwrap();
    let addr: std::net::SocketAddr = "192.0.2.9:4000".parse().unwrap();
    let peer = Some(addr.into());
    let mut submitted = 0u64;
    let burst = |n: u64, submitted: &mut u64| {
        for _ in 0..n {
            // Lengths vary, so a write stops anywhere in a line.
            let user = format!("u{submitted}{}", "x".repeat((*submitted % 37) as usize));
            rec.record(
                None,
                &AuthFailure {
                    user: &user,
                    host: "example.org",
                    peer,
                    mechanism: "PLAIN",
                    reason: "bad password",
                },
            );
            *submitted += 1;
        }
    };
    // Three times: write while another writer fills the disk, until lines have been lost a
    // few times; then free the space and write again.
    let mut after_space = Vec::new();
    let mut users = Vec::new();
    for _ in 0..3 {
        let (filler, full) = fill(fs.dir.join("filler"));
        let mut failed_flushes = 0;
        while !full.load(Ordering::SeqCst) || failed_flushes < 3 {
            burst(40, &mut submitted);
            if service.flush().await.is_err() {
                failed_flushes += 1;
            }
            assert!(submitted < 1_000_000, "the disk never filled");
        }
        filler.join().unwrap();
        let during = service.stats();
        assert!(during.audit_lines_lost > 0, "{during}");
        assert!(during.errors > 0, "{during}");
        // Space again: the next lines are whole, on their own lines. Truncated before it is
        // removed: a child that another test forks (mount, umount) may hold a copy of the
        // filler's descriptor until it execs, and unlinking alone frees nothing until then.
        free_space(&fs.dir.join("filler"));
        after_space.extend(submitted..submitted + 100);
        burst(100, &mut submitted);
        service.flush().await.unwrap();
        // Keep what the file holds, and empty it for the next round (the writer appends).
        users.extend(whole_lines(&std::fs::read_to_string(&audit).unwrap()));
        empty(&audit);
    }
    let after = service.stats();
    assert_eq!(
        after.audit_lines_written + after.audit_lines_lost,
        submitted,
        "{after}"
    );
    assert_eq!(users.len() as u64, after.audit_lines_written, "{after}");
    for u in after_space {
        assert!(
            users.contains(&u),
            "line u{u}, written after space was freed, is missing"
        );
    }
    service.shutdown().await.unwrap();
}

fn dump_files(dir: &Path, format: DumpFormat) -> DumpFiles {
    DumpFiles::new(
        DumpOptions {
            // One file: dumps are appended, each must be whole.
            path: Template::parse(&dir.join("dumps.out").display().to_string()).unwrap(),
            file: FilePolicy::default(),
            format,
            durable: true,
            seal_key: None,
        },
        "gw",
    )
}

fn dumps_are_whole_or_counted_lost(format: DumpFormat) {
    let Some(fs) = Tmpfs::mount() else { return };
    let rec = recorder();
    // About 50 KiB of records: a few dumps fill the disk.
    let text = "r".repeat(900);
    for _ in 0..55 {
        rec.log(Level::Info, None, "gw", &text, &[]);
    }
    let files = dump_files(&fs.dir, format);
    let out = fs.dir.join("dumps.out");
    let mut submitted = 0;
    let mut whole = 0;
    for _ in 0..3 {
        let (filler, full) = fill(fs.dir.join("filler"));
        let mut failed = 0;
        while !full.load(Ordering::SeqCst) || failed < 3 {
            if files.write(&rec, &rec.manual_order()).is_err() {
                failed += 1;
            }
            submitted += 1;
            assert!(submitted < 100_000, "the disk never filled");
        }
        filler.join().unwrap();
        free_space(&fs.dir.join("filler"));
        // Space again: the next dump is written, whole.
        files.write(&rec, &rec.manual_order()).unwrap();
        submitted += 1;
        whole += whole_dumps(&std::fs::read(&out).unwrap(), format);
        empty(&out);
    }
    assert_eq!(files.written() + files.errors(), submitted);
    assert!(files.errors() >= 9);
    assert_eq!(whole, files.written());
}

/// The dumps in `bytes`, checking that each is whole.
fn whole_dumps(bytes: &[u8], format: DumpFormat) -> u64 {
    let n = match format {
        // Panics on anything torn.
        DumpFormat::Binary => common::parse(bytes)
            .iter()
            .inspect(|d| assert!(d.end.is_some()))
            .count(),
        DumpFormat::Forensic => {
            let text = std::str::from_utf8(bytes).unwrap();
            let begins = text.matches("-----BEGIN ").count();
            assert_eq!(text.matches("-----END ").count(), begins);
            assert!(text.ends_with("FORENSICS-----\n"), "ends in a fragment");
            begins
        }
    };
    n as u64
}

#[test]
fn binary_dumps_are_whole_or_counted_lost_on_a_full_disk() {
    dumps_are_whole_or_counted_lost(DumpFormat::Binary);
}

#[test]
fn forensic_dumps_are_whole_or_counted_lost_on_a_full_disk() {
    dumps_are_whole_or_counted_lost(DumpFormat::Forensic);
}
