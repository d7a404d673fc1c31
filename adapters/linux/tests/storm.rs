//! A dump storm: thousands of failed logins per second stay within the rate limit and a
//! bounded disk use; the suppressed count is in the next dump.

mod common;

use std::time::Duration;

use flightrec_core::event::AuthFailure;
use flightrec_core::trigger::{RateLimit, Reason, TriggerConfig};
use flightrec_core::SessionId;
use flightrec_linux::files::{FilePolicy, Template};
use flightrec_linux::{
    AuditOptions, DumpFormat, DumpOptions, FlightRecorder, RecorderOptions, Service,
    ServiceOptions, SHARD_BYTES,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_is_rate_limited_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let shards = 2;
    let rec = FlightRecorder::new(RecorderOptions {
        shards,
        trigger: TriggerConfig {
            post_records: 0,
            post_ticks: 0,
            // Two dumps at once, then one per 30 minutes: the storm gets two.
            rate: Some(RateLimit::new(2, 3_600_000_000_000, 0)),
            ..TriggerConfig::DEFAULT
        },
        ..RecorderOptions::default()
    })
    .expect("recorder options");
    let service = Service::start(
        rec.clone(),
        ServiceOptions {
            dump: DumpOptions {
                path: Template::parse(&dir.path().join("dumps/storm.flr").display().to_string())
                    .unwrap(),
                file: FilePolicy::default(),
                format: DumpFormat::Binary,
                durable: true,
                seal_key: None,
            },
            audit: Some(AuditOptions {
                path: dir.path().join("audit/audit.log").display().to_string(),
                max_bytes: 64 * 1024,
                max_files: 3,
                ..AuditOptions::default()
            }),
            queue: 1 << 16,
            dump_signal: None,
            reopen_on_hup: false,
        },
    )
    .unwrap();
    let addr: std::net::SocketAddr = "203.0.113.9:6000".parse().unwrap();
    let peer = Some(addr.into());
    let storm = 5000u32;
    for i in 0..storm {
        rec.record(
            Some(SessionId(i)),
            &AuthFailure {
                user: "root",
                host: "h",
                peer,
                mechanism: "PLAIN",
                reason: "bad password",
            },
        );
    }
    service.flush().await.unwrap();
    // The storm's two dumps are written by now (the orders were queued before the flush).
    assert_eq!(service.dumps().written(), 2);
    // The next dump (a death is never rate-limited) reports what was suppressed.
    rec.untimely_death(None, "after the storm");
    let dumps = common::parse(&std::fs::read(dir.path().join("dumps/storm.flr")).unwrap());
    assert_eq!(dumps.len(), 3);
    assert_eq!(dumps[0].suppressed, 0);
    assert_eq!(dumps[2].reason, Reason::UntimelyDeath);
    assert_eq!(dumps[2].suppressed, storm - 2);
    // Disk: dumps hold at most the rings; the audit log at most (1 + max_files) * max_bytes.
    let dump_bytes = std::fs::metadata(dir.path().join("dumps/storm.flr"))
        .unwrap()
        .len();
    assert!(
        dump_bytes <= 3 * (shards * SHARD_BYTES + 64 * 1024) as u64,
        "{dump_bytes}"
    );
    let mut audit_bytes = 0;
    let mut audit_lines = 0;
    for e in std::fs::read_dir(dir.path().join("audit"))
        .unwrap()
        .flatten()
    {
        let text = std::fs::read_to_string(e.path()).unwrap();
        audit_bytes += text.len();
        audit_lines += text.lines().count();
    }
    assert!(audit_bytes <= 4 * 64 * 1024, "{audit_bytes}");
    assert!(audit_lines > 0);
    let _ = Duration::ZERO;
    service.shutdown().await.unwrap();
}
