//! A line cut by a write error that could not be undone is ended with
//! `AuditLog::CUT_MARKER`: fail2ban-regex with the shipped filter reads no cut of a real
//! failure line, wherever the cut falls, as a failure (a cut inside the address must not ban
//! another address).

mod common;

use flightrec_core::event::AuthFailure;
use flightrec_core::trigger::TriggerConfig;
use flightrec_linux::files::{FilePolicy, Template};
use flightrec_linux::{
    AuditLog, AuditOptions, DumpFormat, DumpOptions, FlightRecorder, RecorderOptions, Service,
    ServiceOptions,
};

#[tokio::test(flavor = "current_thread")]
async fn no_cut_line_with_its_marker_matches_the_filter() {
    if !common::have_tool("fail2ban-regex") {
        return;
    }
    let filter = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../audit/fail2ban/flightrec-ejabberd.conf");
    let dir = tempfile::tempdir().unwrap();
    let rec = FlightRecorder::new(RecorderOptions {
        shards: 2,
        host: "gw".into(),
        trigger: TriggerConfig {
            failed_login: false,
            post_records: 0,
            ..TriggerConfig::DEFAULT
        },
        ..RecorderOptions::default()
    })
    .expect("recorder options");
    let audit = dir.path().join("audit.log");
    let service = Service::start(
        rec.clone(),
        ServiceOptions {
            dump: DumpOptions {
                path: Template::parse(&dir.path().join("d.flr").display().to_string()).unwrap(),
                file: FilePolicy::default(),
                format: DumpFormat::Binary,
                durable: true,
                seal_key: None,
            },
            audit: Some(AuditOptions {
                path: audit.display().to_string(),
                ..AuditOptions::default()
            }),
            queue: 64,
            dump_signal: None,
            reopen_on_hup: false,
        },
    )
    .unwrap();
    let addr: std::net::SocketAddr = "192.0.2.123:40000".parse().unwrap();
    rec.record(
        None,
        &AuthFailure {
            user: "alice",
            host: "example.org",
            peer: Some(addr.into()),
            mechanism: "PLAIN",
            reason: "bad password",
        },
    );
    service.shutdown().await.unwrap();
    let line = std::fs::read_to_string(&audit).unwrap();
    let line = line.trim_end_matches('\n');
    // The whole line (one match, the control), then every cut of it with the marker.
    let mut log = format!("{line}\n");
    for (cut, _) in line.char_indices().skip(1) {
        log.push_str(&line[..cut]);
        log.push_str(AuditLog::CUT_MARKER);
    }
    let cuts = dir.path().join("cuts.log");
    std::fs::write(&cuts, &log).unwrap();
    let out = std::process::Command::new("fail2ban-regex")
        .args(["-o", "<ip>"])
        .arg(&cuts)
        .arg(&filter)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let matched: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        matched,
        ["192.0.2.123"],
        "fail2ban-regex output:\n{stdout}\nlog:\n{log}"
    );
}
