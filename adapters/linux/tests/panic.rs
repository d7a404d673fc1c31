//! The panic hook dumps with reason "untimely death" before the thread dies.

mod common;

use flightrec_core::trigger::{Reason, TriggerConfig};
use flightrec_core::{Level, SessionId};
use flightrec_linux::files::Template;
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
                mode: 0o600,
                format: DumpFormat::Binary,
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
    service.shutdown().await;
}
