//! The writer task: dumps on triggers, files, audit lines, the bounded queue.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flightrec_core::event::Decoded;
use flightrec_core::event::{AuthFailure, Connect, Peer};
use flightrec_core::trigger::{Reason, TriggerConfig};
use flightrec_core::{Kind, Level, SessionId};
use flightrec_linux::files::{FilePolicy, Template};
use flightrec_linux::{
    AuditOptions, DumpFormat, DumpOptions, FlightRecorder, RecorderOptions, Service, ServiceOptions,
};

/// A failed login of `user` at host `h`, from no known peer.
fn failure(user: &str) -> AuthFailure<'_> {
    AuthFailure {
        user,
        host: "h",
        peer: None,
        mechanism: "PLAIN",
        reason: "no",
    }
}

fn options(dir: &Path, dump: &str, queue: usize) -> ServiceOptions {
    ServiceOptions {
        dump: DumpOptions {
            path: Template::parse(&dir.join(dump).display().to_string()).unwrap(),
            file: FilePolicy::default(),
            format: DumpFormat::Binary,
            durable: true,
            seal_key: None,
        },
        audit: Some(AuditOptions {
            path: dir.join("audit/@HOST@/audit.log").display().to_string(),
            ..AuditOptions::default()
        }),
        queue,
        dump_signal: None,
        reopen_on_hup: false,
    }
}

fn recorder(trigger: TriggerConfig) -> Arc<FlightRecorder> {
    FlightRecorder::new(RecorderOptions {
        shards: 2,
        trigger,
        host: "gw".into(),
        ..RecorderOptions::default()
    })
    .expect("recorder options")
}

/// Waits (without a timing assert: a generous bound only to not hang) until `n` dumps exist.
async fn wait_dumps(service: &Service, n: u64) {
    for _ in 0..1000 {
        if service.dumps().written() + service.dumps().errors() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("dump not written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_login_dumps_the_sessions_trail_and_audits() {
    let dir = tempfile::tempdir().unwrap();
    let rec = recorder(TriggerConfig {
        post_records: 0,
        post_ticks: 5_000_000,
        scope_session: true,
        ..TriggerConfig::DEFAULT
    });
    let service = Service::start(
        rec.clone(),
        options(dir.path(), "dumps/d-{host}-{count}.flr", 64),
    )
    .unwrap();
    let addr: std::net::SocketAddr = "198.51.100.7:5000".parse().unwrap();
    let peer = Some(Peer::from(addr));
    rec.log(Level::Debug, None, "gw", "listening", &[]);
    rec.record(
        Some(SessionId(1)),
        &Connect {
            protocol: "gw",
            peer,
        },
    );
    rec.log(Level::Trace, Some(SessionId(2)), "gw", "other session", &[]);
    rec.log(
        Level::Debug,
        Some(SessionId(1)),
        "gw",
        "password checked",
        &[],
    );
    rec.record(
        Some(SessionId(1)),
        &AuthFailure {
            user: "mallory",
            host: "b.example",
            peer,
            mechanism: "PLAIN",
            reason: "bad password",
        },
    );
    wait_dumps(&service, 1).await;
    service.flush().await.unwrap();

    let path = dir.path().join("dumps/d-gw-0.flr");
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    let dumps = common::parse(&std::fs::read(&path).unwrap());
    assert_eq!(dumps.len(), 1);
    let d = &dumps[0];
    assert_eq!(d.reason, Reason::FailedLogin);
    assert_eq!(d.scope, Some(SessionId(1)));
    let msgs: Vec<_> = d
        .records
        .iter()
        .map(|r| {
            r.message()
                .unwrap_or_else(|| r.head.kind.name().unwrap().into())
        })
        .collect();
    // The session's trail, the newest record included (ProFTPD drops it), no other session.
    assert_eq!(
        msgs,
        ["listening", "connect", "password checked", "auth-failure"]
    );
    let trigger = d.trigger_seq.unwrap();
    let fired = d.records.iter().find(|r| r.head.seq == trigger).unwrap();
    assert_eq!(fired.head.kind, Kind::AUTH_FAILURE);
    assert_eq!(d.end.unwrap().out_of_scope, 1);

    let audit = std::fs::read_to_string(dir.path().join("audit/b.example/audit.log")).unwrap();
    assert!(
        audit.ends_with(" Failed PLAIN authentication for mallory@b.example from 198.51.100.7 port 5000: bad\\x20password\n"),
        "{audit}"
    );
    let gw = std::fs::read_to_string(dir.path().join("audit/gw/audit.log")).unwrap();
    assert_eq!(gw.lines().count(), 1, "{gw}"); // the connect (no host)
    service.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dumps_append_to_an_existing_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let rec = recorder(TriggerConfig {
        post_records: 0,
        post_ticks: 0,
        ..TriggerConfig::DEFAULT
    });
    let service = Service::start(rec.clone(), options(dir.path(), "all.flr", 64)).unwrap();
    for i in 0..3u32 {
        rec.log(Level::Info, None, "gw", "before", &[]);
        rec.record(Some(SessionId(i)), &failure("u"));
    }
    wait_dumps(&service, 3).await;
    let dumps = common::parse(&std::fs::read(dir.path().join("all.flr")).unwrap());
    assert_eq!(dumps.len(), 3);
    // Each dump is whole; dump i was ordered after 2(i+1) records (it may hold more: the
    // dump is taken when the writer gets to it).
    for (i, d) in dumps.iter().enumerate() {
        assert!(d.records.len() >= 2 * (i + 1));
        assert!(d.end.is_some());
    }
    assert_eq!(dumps[2].records.len(), 6);
    service.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_that_cannot_be_written_is_given_up_and_the_task_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let rec = recorder(TriggerConfig {
        post_records: 0,
        post_ticks: 0,
        ..TriggerConfig::DEFAULT
    });
    // The dump's directory is a regular file: opening fails.
    let service = Service::start(rec.clone(), options(dir.path(), "file/d.flr", 64)).unwrap();
    rec.record(None, &failure("u"));
    wait_dumps(&service, 1).await;
    assert_eq!(service.dumps().errors(), 1);
    rec.record(None, &failure("u"));
    wait_dumps(&service, 2).await;
    // The task is alive; flush says what was lost.
    let lost = service.flush().await.unwrap_err();
    assert_eq!(lost.since_last.dumps_lost, 2);
    assert_eq!(lost.since_last.refusals.not_directory, 2);
    assert_eq!(service.dumps().errors(), 2);
    // The error went into the ring, once for its cause (two dumps failed alike).
    let d = &common::parse(&rec.dump_bytes(&rec.manual_order()))[0];
    let said: Vec<_> = d
        .records
        .iter()
        .filter(|r| r.message().as_deref() == Some("dump failed"))
        .collect();
    assert_eq!(said.len(), 1);
    assert!(said[0].fields()[0]
        .1
        .contains("is not a directory: refused"));
    // Nothing lost since that flush.
    service.shutdown().await.unwrap();
}

#[test]
fn a_full_queue_drops_and_counts_never_blocks() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let rec = recorder(TriggerConfig {
            failed_login: false,
            post_records: 0,
            ..TriggerConfig::DEFAULT
        });
        let service = Service::start(rec.clone(), options(dir.path(), "d.flr", 4)).unwrap();
        // The writer task cannot run until we yield: the queue fills.
        for i in 0..50 {
            rec.record(None, &failure(&format!("u{i}")));
        }
        let stats = rec.stats();
        assert_eq!(stats.audit_dropped, 46);
        assert_eq!(stats.queue_dropped, 46);
        let lost = service.flush().await.unwrap_err();
        assert_eq!(lost.since_last.audit_lines_lost, 46);
        assert_eq!(lost.since_last.audit_lines_written, 4);
        assert_eq!(service.audit_lines(), 4);
        let audit = std::fs::read_to_string(dir.path().join("audit/h/audit.log")).unwrap();
        assert_eq!(audit.lines().count(), 4);
        // The drop is reported in the ring.
        let d = &common::parse(&rec.dump_bytes(&rec.manual_order()))[0];
        let note = d
            .records
            .iter()
            .find(|r| r.message().as_deref() == Some("writer queue full: items dropped"))
            .unwrap();
        assert_eq!(note.fields(), [("dropped".into(), "46".into())]);
        match d.records[0].decoded() {
            Decoded::AuthFailure(f) => assert_eq!(f.user, "u0"),
            other => panic!("{other:?}"),
        }
        service.shutdown().await.unwrap();
    });
}
