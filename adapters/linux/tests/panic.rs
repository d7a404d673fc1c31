//! The panic hook dumps with reason "untimely death" before the thread dies.

mod common;

use flightrec_core::trigger::{Reason, TriggerConfig};
use flightrec_core::{Level, SessionId};
use flightrec_linux::files::{FilePolicy, Template};
use flightrec_linux::{
    install_panic_hook, DumpFormat, DumpOptions, FlightRecorder, RecorderOptions, Service,
    ServiceOptions,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_dumps_untimely_death() {
    let dir = tempfile::tempdir().unwrap();
    let rec = FlightRecorder::new(RecorderOptions {
        shards: 2,
        trigger: TriggerConfig {
            failed_login: false,
            post_records: 0,
            ..TriggerConfig::DEFAULT
        },
        ..RecorderOptions::default()
    })
    .expect("recorder options");
    let service = Service::start(
        rec.clone(),
        ServiceOptions {
            dump: DumpOptions {
                path: Template::parse(&dir.path().join("death.flr").display().to_string()).unwrap(),
                file: FilePolicy::default(),
                format: DumpFormat::Binary,
                durable: true,
                seal_key: None,
            },
            audit: None,
            queue: 64,
            dump_signal: None,
            reopen_on_hup: false,
        },
    )
    .unwrap();
    install_panic_hook(rec.clone());
    rec.log(
        Level::Debug,
        Some(SessionId(5)),
        "gw",
        "about to divide",
        &[],
    );
    let handle = tokio::spawn(async {
        let v: Vec<u32> = Vec::new();
        v[3] // index out of bounds
    });
    assert!(handle.await.unwrap_err().is_panic());
    // Written synchronously by the hook: no waiting.
    assert_eq!(service.dumps().written(), 1);
    let d = &common::parse(&std::fs::read(dir.path().join("death.flr")).unwrap())[0];
    assert_eq!(d.reason, Reason::UntimelyDeath);
    let last = d.records.last().unwrap();
    assert_eq!(last.target().unwrap(), "panic");
    assert!(
        last.message().unwrap().contains("index out of bounds"),
        "{:?}",
        last.message()
    );
    assert_eq!(d.records[0].message().unwrap(), "about to divide");
    service.shutdown().await.unwrap();
}

/// The child's side of `a_fifo_at_the_dump_path_does_not_hang_the_panic_hook`.
const CHILD: &str = "FLIGHTREC_PANIC_FIFO_CHILD";

#[test]
fn a_fifo_at_the_dump_path_does_not_hang_the_panic_hook() {
    if let Ok(dir) = std::env::var(CHILD) {
        return panic_with_a_fifo_at_the_dump_path(std::path::Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("death.flr");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "a_fifo_at_the_dump_path_does_not_hang_the_panic_hook",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded only so that a hang fails the test rather than the whole run.
    let mut waited = 0;
    while child.try_wait().unwrap().is_none() {
        if waited == 6000 {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the panic hook blocked on the FIFO at the dump path");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited += 1;
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Refused, said on stderr, counted; the previous hook ran (the panic message).
    assert!(
        stderr.contains("is not a regular file: refused (FIFO)"),
        "{stderr}"
    );
    assert!(stderr.contains("deliberate panic"), "{stderr}");
    assert!(
        stdout.contains("dumps lost: 1, refused as not regular: 1"),
        "{stdout}"
    );
}

fn panic_with_a_fifo_at_the_dump_path(dir: &std::path::Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let rec = FlightRecorder::new(RecorderOptions {
            shards: 2,
            trigger: TriggerConfig {
                failed_login: false,
                post_records: 0,
                ..TriggerConfig::DEFAULT
            },
            ..RecorderOptions::default()
        })
        .expect("recorder options");
        let service = Service::start(
            rec.clone(),
            ServiceOptions {
                dump: DumpOptions {
                    path: Template::parse(&dir.join("death.flr").display().to_string()).unwrap(),
                    file: FilePolicy::default(),
                    format: DumpFormat::Binary,
                    durable: true,
                    seal_key: None,
                },
                audit: None,
                queue: 64,
                dump_signal: None,
                reopen_on_hup: false,
            },
        )
        .unwrap();
        install_panic_hook(rec.clone());
        let thread = std::thread::spawn(|| panic!("deliberate panic"));
        assert!(thread.join().is_err());
        let s = service.stats();
        println!(
            "dumps lost: {}, refused as not regular: {}",
            s.dumps_lost, s.refusals.not_regular
        );
        assert!(service.shutdown().await.is_err());
    });
}
