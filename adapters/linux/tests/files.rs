//! Every file the adapter writes (audit log, dump files, ring file) is opened by the rules of
//! `flightrec_linux::files`: no link anywhere on the path, no FIFO or device (and never
//! waited on), no directory others can write, no file of another user or with a second hard
//! link, loose modes tightened or refused; each refusal counted in the service's stats and
//! reported by `flush()`, the link's target untouched.

use std::ffi::CString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use flightrec_core::event::AuthFailure;
use flightrec_core::trigger::TriggerConfig;
use flightrec_linux::files::{refusal, FilePolicy, LooseMode, Refusal, Template};
use flightrec_linux::{
    AuditOptions, DumpFormat, DumpOptions, FlightRecorder, RecorderOptions, Service,
    ServiceOptions, ServiceStats,
};

/// Long enough for any machine; only reached when an open blocks (the defect).
const HANG: Duration = Duration::from_secs(60);

/// Runs `f` on its own thread; fails the test if it does not finish (it blocked).
fn without_blocking<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("{what}: still blocked after {HANG:?}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    Audit,
    Dump,
    Ring,
}

const KINDS: [FileKind; 3] = [FileKind::Audit, FileKind::Dump, FileKind::Ring];

fn recorder(failed_login: bool) -> std::sync::Arc<FlightRecorder> {
    FlightRecorder::new(RecorderOptions {
        shards: 2,
        host: "gw".into(),
        trigger: TriggerConfig {
            failed_login,
            post_records: 0,
            post_ticks: 0,
            ..TriggerConfig::DEFAULT
        },
        ..RecorderOptions::default()
    })
    .expect("recorder options")
}

/// Writes one file of `kind` at `path` (an audit line, a dump, a ring file); the refusal's
/// cause if refused. For the service's kinds, checks that the loss is counted and that
/// `flush()` reports it.
fn attempt(kind: FileKind, path: &Path, policy: &FilePolicy) -> Result<ServiceStats, Refusal> {
    let path = path.to_owned();
    let policy = policy.clone();
    without_blocking(&format!("{kind:?} at {}", path.display()), move || {
        if kind == FileKind::Ring {
            return FlightRecorder::with_ring_file(RecorderOptions::default(), &path, &policy)
                .map(|_| ServiceStats::default())
                .map_err(|e| refusal(&e).unwrap_or_else(|| panic!("not a refusal: {e}")));
        }
        let spare = tempfile::tempdir().unwrap();
        let (dump, audit) = match kind {
            FileKind::Dump => (path.clone(), None),
            _ => (spare.path().join("d.flr"), Some(path.clone())),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let rec = recorder(kind == FileKind::Dump);
            let service = Service::start(
                rec.clone(),
                ServiceOptions {
                    dump: DumpOptions {
                        path: Template::parse(&dump.display().to_string()).unwrap(),
                        file: policy.clone(),
                        format: DumpFormat::Binary,
                        durable: true,
                        seal_key: None,
                    },
                    audit: audit.map(|a| AuditOptions {
                        path: a.display().to_string(),
                        file: policy.clone(),
                        ..AuditOptions::default()
                    }),
                    queue: 64,
                    dump_signal: None,
                    reopen_on_hup: false,
                },
            )
            .unwrap();
            rec.record(
                None,
                &AuthFailure {
                    user: "alice",
                    host: "example.org",
                    peer: None,
                    mechanism: "PLAIN",
                    reason: "bad password",
                },
            );
            for _ in 0..6000 {
                let s = service.stats();
                if kind == FileKind::Audit || s.dumps_written + s.dumps_lost > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let result = service.flush().await;
            let stats = service.stats();
            service.shutdown().await.unwrap();
            match result {
                Ok(s) => {
                    assert_eq!(s.lost(), 0);
                    assert_eq!(s.audit_lines_written + s.dumps_written, 1, "{s}");
                    Ok(s)
                }
                Err(lost) => {
                    // Counted as lost and as one refusal, in the stats too.
                    assert_eq!(lost.since_last.lost(), 1, "{lost}");
                    assert_eq!(lost.since_last.refusals.total(), 1, "{lost}");
                    assert_eq!(stats, lost.total);
                    let cause = Refusal::ALL
                        .into_iter()
                        .find(|c| stats.refusals.get(*c) == 1)
                        .unwrap();
                    Err(cause)
                }
            }
        })
    })
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mkfifo(p: &Path) {
    let c = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

fn chown(p: &Path, uid: u32, gid: u32) -> bool {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).is_ok()
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

fn names(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn a_symlinked_parent_directory_is_refused_even_under_a_sticky_world_writable_one() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        // /tmp-like: world-writable with the sticky bit, where anyone can plant a link.
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        chmod(&shared, 0o1777);
        let target = dir.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(&target, shared.join("logs")).unwrap();
        let got = attempt(kind, &shared.join("logs/f.log"), &FilePolicy::default());
        assert_eq!(got, Err(Refusal::Symlink), "{kind:?}");
        assert!(
            names(&target).is_empty(),
            "{kind:?} wrote into the link's target"
        );
        // The same directory entered without the link is fine.
        assert!(attempt(kind, &target.join("f.log"), &FilePolicy::default()).is_ok());
    }
}

#[test]
fn a_symlinked_directory_deeper_in_the_path_is_refused() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::create_dir_all(target.join("sub")).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("link")).unwrap();
        let got = attempt(
            kind,
            &dir.path().join("link/sub/f.log"),
            &FilePolicy::default(),
        );
        assert_eq!(got, Err(Refusal::Symlink), "{kind:?}");
        assert!(names(&target.join("sub")).is_empty());
    }
}

#[test]
fn a_symlink_as_the_file_is_refused_and_its_target_untouched() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("f.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(
            attempt(kind, &link, &FilePolicy::default()),
            Err(Refusal::Symlink),
            "{kind:?}"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    }
}

#[test]
fn a_fifo_at_the_path_is_refused_without_blocking() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f.log");
        mkfifo(&fifo);
        // No reader: an open for writing would block (or fail with ENXIO if non-blocking).
        assert_eq!(
            attempt(kind, &fifo, &FilePolicy::default()),
            Err(Refusal::NotRegular),
            "{kind:?}"
        );
        // With a reader: a non-blocking open would succeed; still refused, nothing written.
        let c = CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        let reader = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) };
        assert!(reader >= 0);
        assert_eq!(
            attempt(kind, &fifo, &FilePolicy::default()),
            Err(Refusal::NotRegular),
            "{kind:?}"
        );
        let mut buf = [0u8; 16];
        let n = unsafe { libc::read(reader, buf.as_mut_ptr().cast(), buf.len()) };
        assert!(n <= 0, "{kind:?} wrote {n} bytes into the FIFO");
        unsafe { libc::close(reader) };
    }
}

#[test]
fn a_device_or_directory_at_the_path_is_refused() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("f.log")).unwrap();
        let got = attempt(kind, &dir.path().join("f.log"), &FilePolicy::default());
        assert_eq!(got, Err(Refusal::NotRegular), "{kind:?}");
    }
    // /dev/null: the Ring kind would rename it away; audit and dump only.
    for kind in [FileKind::Audit, FileKind::Dump] {
        let got = attempt(kind, Path::new("/dev/null"), &FilePolicy::default());
        assert_eq!(got, Err(Refusal::NotRegular), "{kind:?}");
    }
}

#[test]
fn a_directory_others_can_write_is_refused() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let ww = dir.path().join("ww");
        std::fs::create_dir(&ww).unwrap();
        chmod(&ww, 0o777);
        let got = attempt(kind, &ww.join("sub/f.log"), &FilePolicy::default());
        assert_eq!(got, Err(Refusal::UnsafeDirectory), "{kind:?}");
        assert!(names(&ww).is_empty(), "nothing created under it");
        // A world-writable directory further up is refused too.
        let got = attempt(kind, &ww.join("f.log"), &FilePolicy::default());
        assert_eq!(got, Err(Refusal::UnsafeDirectory), "{kind:?}");
    }
}

#[test]
fn a_group_writable_directory_needs_root_group_or_a_trusted_one() {
    if !is_root() {
        eprintln!("SKIPPED: changing a directory's group needs root");
        assert!(std::env::var("CI").is_err(), "CI runs these tests as root");
        return;
    }
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let gw = dir.path().join("gw");
        std::fs::create_dir(&gw).unwrap();
        chmod(&gw, 0o770);
        assert!(chown(&gw, 0, 54_321));
        let got = attempt(kind, &gw.join("f.log"), &FilePolicy::default());
        assert_eq!(got, Err(Refusal::UnsafeDirectory), "{kind:?}");
        let trusted = FilePolicy {
            trusted_gids: vec![54_321],
            ..FilePolicy::default()
        };
        assert!(
            attempt(kind, &gw.join("f.log"), &trusted).is_ok(),
            "{kind:?}"
        );
        // Root's group may write (logrotate's rule).
        assert!(chown(&gw, 0, 0));
        assert!(attempt(kind, &gw.join("g.log"), &FilePolicy::default()).is_ok());
    }
}

#[test]
fn another_users_directory_or_file_is_refused() {
    if !is_root() {
        eprintln!("SKIPPED: giving a file to another user needs root");
        assert!(std::env::var("CI").is_err(), "CI runs these tests as root");
        return;
    }
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        assert!(chown(&theirs, 54_321, 54_321));
        let got = attempt(kind, &theirs.join("f.log"), &FilePolicy::default());
        assert_eq!(got, Err(Refusal::ForeignOwner), "{kind:?}");
    }
    for kind in [FileKind::Audit, FileKind::Dump] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.log");
        std::fs::write(&file, b"").unwrap();
        chmod(&file, 0o600);
        assert!(chown(&file, 54_321, 54_321));
        let got = attempt(kind, &file, &FilePolicy::default());
        assert_eq!(got, Err(Refusal::ForeignOwner), "{kind:?}");
    }
}

#[test]
fn a_file_with_a_second_hard_link_is_refused() {
    for kind in [FileKind::Audit, FileKind::Dump] {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("elsewhere");
        std::fs::write(&other, b"keep").unwrap();
        chmod(&other, 0o600);
        std::fs::hard_link(&other, dir.path().join("f.log")).unwrap();
        let got = attempt(kind, &dir.path().join("f.log"), &FilePolicy::default());
        assert_eq!(got, Err(Refusal::HardLinked), "{kind:?}");
        assert_eq!(std::fs::read(&other).unwrap(), b"keep");
    }
}

#[test]
fn a_loose_existing_file_is_tightened_by_default_and_said() {
    for kind in [FileKind::Audit, FileKind::Dump] {
        for loose in [0o644, 0o666, 0o4600, 0o640] {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("f.log");
            std::fs::write(&file, b"").unwrap();
            chmod(&file, loose);
            let stats = attempt(kind, &file, &FilePolicy::default()).unwrap();
            assert_eq!(mode(&file), 0o600, "{kind:?} {loose:o}");
            assert_eq!(stats.modes_tightened, 1, "{kind:?} {loose:o}");
        }
        // A mode narrower than configured is left alone.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.log");
        std::fs::write(&file, b"").unwrap();
        chmod(&file, 0o600);
        let policy = FilePolicy::with_mode(0o640);
        let stats = attempt(kind, &file, &policy).unwrap();
        assert_eq!((mode(&file), stats.modes_tightened), (0o600, 0));
    }
}

#[test]
fn a_loose_existing_file_is_refused_when_configured() {
    for kind in [FileKind::Audit, FileKind::Dump] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.log");
        std::fs::write(&file, b"old\n").unwrap();
        chmod(&file, 0o644);
        let policy = FilePolicy {
            loose: LooseMode::Refuse,
            ..FilePolicy::default()
        };
        assert_eq!(attempt(kind, &file, &policy), Err(Refusal::LooseMode));
        assert_eq!(mode(&file), 0o644);
        assert_eq!(std::fs::read(&file).unwrap(), b"old\n");
    }
}

#[test]
fn missing_directories_are_created_at_the_configured_mode() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let policy = FilePolicy {
            dir_mode: 0o750,
            ..FilePolicy::default()
        };
        attempt(kind, &dir.path().join("a/b/f.log"), &policy).unwrap();
        // The umask may narrow it; never wider.
        for d in ["a", "a/b"] {
            let m = mode(&dir.path().join(d));
            assert_eq!(m & !0o750, 0, "{kind:?} {d} {m:o}");
            assert_eq!(m & 0o700, 0o700);
        }
        let f = mode(&dir.path().join("a/b/f.log"));
        assert_eq!(f & !0o600, 0, "{kind:?} {f:o}");
    }
}
