//! Capture: tracing layer, log bridge, sessions, shards merged into one dump.

mod common;

use std::sync::Arc;

use flightrec_core::event::Decoded;
use flightrec_core::event::{AuthFailure, AuthSuccess, Connect, Logout, Peer, SessionForbidden};
use flightrec_core::trigger::Reason;
use flightrec_core::{Kind, SessionId};
use flightrec_linux::{FlightLayer, FlightLogger, FlightRecorder, RecorderOptions};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

fn recorder(shards: usize) -> Arc<FlightRecorder> {
    FlightRecorder::new(RecorderOptions {
        shards,
        ..RecorderOptions::default()
    })
    .expect("recorder options")
}

fn dump(rec: &FlightRecorder, session: Option<SessionId>) -> common::Dump {
    let mut order = rec.manual_order();
    order.session = session;
    let mut dumps = common::parse(&rec.dump_bytes(&order));
    assert_eq!(dumps.len(), 1);
    dumps.remove(0)
}

#[test]
fn layer_records_debug_and_trace_while_console_shows_info() {
    let rec = recorder(2);
    let console = std::sync::Mutex::new(Vec::<u8>::new());
    let console = Arc::new(console);
    let sink = console.clone();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || SinkWriter(sink.clone()))
                .with_filter(LevelFilter::INFO),
        )
        .with(FlightLayer::new(rec.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("conn", session = 42u64, peer = "10.0.0.1");
        let _g = span.enter();
        tracing::trace!(step = 1u64, "hello {}", "world");
        tracing::debug!(
            user = "alice",
            ok = false,
            ratio = 0.5f64,
            delta = -3i64,
            "checking"
        );
        tracing::info!("visible");
        let inner = tracing::debug_span!("inner");
        let _i = inner.enter();
        tracing::warn!(error = %std::io::Error::other("boom"), "nested");
    });
    tracing::subscriber::with_default(
        tracing_subscriber::registry().with(FlightLayer::new(rec.clone())),
        || {
            tracing::error!(target: "other", "outside");
        },
    );
    let console = String::from_utf8(console.lock().unwrap().clone()).unwrap();
    assert!(
        console.contains("visible") && !console.contains("checking"),
        "{console}"
    );

    let d = dump(&rec, None);
    let msgs: Vec<_> = d.records.iter().map(|r| r.message().unwrap()).collect();
    assert_eq!(
        msgs,
        ["hello world", "checking", "visible", "nested", "outside"]
    );
    let sessions: Vec<_> = d.records.iter().map(|r| r.head.session).collect();
    let s = Some(SessionId(42));
    assert_eq!(sessions, [s, s, s, s, None]);
    assert_eq!(
        d.records[1].fields(),
        [
            ("user".into(), "alice".into()),
            ("ok".into(), "false".into()),
            ("ratio".into(), "0.5".into()),
            ("delta".into(), "-3".into())
        ]
    );
    assert_eq!(d.records[3].fields(), [("error".into(), "boom".into())]);
    assert_eq!(d.records[0].fields(), [("step".into(), "1".into())]);
    assert_eq!(d.records[0].head.level, 0);
    // Sequence numbers are consecutive within the dump.
    let seqs: Vec<_> = d.records.iter().map(|r| r.head.seq).collect();
    assert_eq!(seqs, (0..5).collect::<Vec<_>>());
}

#[derive(Clone)]
struct SinkWriter(Arc<std::sync::Mutex<Vec<u8>>>);
impl std::io::Write for SinkWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn capture_filter_by_target_and_session_recorded_later() {
    let rec = recorder(1);
    let filter = Targets::new()
        .with_default(tracing::Level::TRACE)
        .with_target("noisy", tracing::Level::WARN);
    let subscriber =
        tracing_subscriber::registry().with(FlightLayer::new(rec.clone()).with_filter(filter));
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!(target: "noisy", "dropped");
        tracing::warn!(target: "noisy", "kept");
        let span = tracing::info_span!("login", session = tracing::field::Empty);
        let _g = span.enter();
        tracing::debug!("before");
        span.record("session", 9u64);
        tracing::debug!("after");
    });
    let d = dump(&rec, None);
    let msgs: Vec<_> = d
        .records
        .iter()
        .map(|r| (r.message().unwrap(), r.head.session))
        .collect();
    assert_eq!(
        msgs,
        [
            ("kept".into(), None),
            ("before".into(), None),
            ("after".into(), Some(SessionId(9)))
        ]
    );
}

/// The layer skips the span lookup while no span is entered: explicit parents still give
/// their session, leaving a span drops it, root events have none.
#[test]
fn sessions_of_explicit_parents_and_none_after_exit() {
    let rec = recorder(1);
    let subscriber = tracing_subscriber::registry().with(FlightLayer::new(rec.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("conn", session = 5u64);
        tracing::debug!(parent: &span, "explicit parent, no span entered");
        span.in_scope(|| tracing::debug!("inside"));
        tracing::debug!("after exit");
        let _g = span.enter();
        tracing::debug!(parent: None, "root while inside");
        let other = tracing::info_span!("other", session = 6u64);
        tracing::debug!(parent: &other, "explicit parent while inside another");
    });
    let d = dump(&rec, None);
    let got: Vec<_> = d
        .records
        .iter()
        .map(|r| (r.message().unwrap(), r.head.session.map(|s| s.0)))
        .collect();
    assert_eq!(
        got,
        [
            ("explicit parent, no span entered".into(), Some(5)),
            ("inside".into(), Some(5)),
            ("after exit".into(), None),
            ("root while inside".into(), None),
            ("explicit parent while inside another".into(), Some(6)),
        ]
    );
}

#[test]
fn log_bridge_records_everything_and_forwards() {
    struct Counting(std::sync::atomic::AtomicUsize);
    impl log::Log for Counting {
        fn enabled(&self, m: &log::Metadata<'_>) -> bool {
            m.level() <= log::Level::Info
        }
        fn log(&self, _: &log::Record<'_>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        fn flush(&self) {}
    }
    let rec = recorder(1);
    let inner = Box::leak(Box::new(Counting(Default::default())));
    struct Fwd(&'static Counting);
    impl log::Log for Fwd {
        fn enabled(&self, m: &log::Metadata<'_>) -> bool {
            self.0.enabled(m)
        }
        fn log(&self, r: &log::Record<'_>) {
            self.0.log(r)
        }
        fn flush(&self) {}
    }
    let logger = FlightLogger::new(rec.clone(), Some(Box::new(Fwd(inner))));
    use log::Log;
    for (level, text) in [
        (log::Level::Trace, "t"),
        (log::Level::Debug, "d"),
        (log::Level::Info, "i"),
    ] {
        logger.log(
            &log::Record::builder()
                .level(level)
                .target("gw::auth")
                .args(format_args!("{text}-{}", 1))
                .build(),
        );
    }
    let d = dump(&rec, None);
    let msgs: Vec<_> = d.records.iter().map(|r| r.message().unwrap()).collect();
    assert_eq!(msgs, ["t-1", "d-1", "i-1"]);
    assert_eq!(d.records[0].target().unwrap(), "gw::auth");
    assert_eq!(inner.0.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn threads_merge_into_one_time_ordered_dump() {
    let rec = recorder(4);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let rec = rec.clone();
            std::thread::spawn(move || {
                for i in 0..500u64 {
                    let n = i.to_string();
                    rec.log(
                        flightrec_core::Level::Debug,
                        Some(SessionId(t as u32)),
                        "worker",
                        "tick",
                        &[flightrec_core::event::Field {
                            name: "i",
                            value: flightrec_core::event::Value::Str(&n),
                        }],
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let d = dump(&rec, None);
    assert_eq!(d.records.len(), 2000);
    assert_eq!(d.first_seq, 0);
    assert_eq!(d.next_seq, 2000);
    let mut last_time = 0;
    let mut per_session = [0u64; 4];
    for (k, r) in d.records.iter().enumerate() {
        assert_eq!(r.head.seq, k as u64);
        assert!(r.head.time >= last_time);
        last_time = r.head.time;
        let s = r.head.session.unwrap().0 as usize;
        // Each thread's records keep their order.
        assert_eq!(r.fields()[0].1, per_session[s].to_string());
        per_session[s] += 1;
    }
    assert_eq!(per_session, [500; 4]);
    // Scoped to one session: only its records (and none without a session).
    let d = dump(&rec, Some(SessionId(2)));
    assert_eq!(d.records.len(), 500);
    assert_eq!(d.end.unwrap().out_of_scope, 1500);
}

#[test]
fn security_events_are_recorded_and_fire_triggers() {
    let rec = recorder(2);
    let addr: std::net::SocketAddr = "192.0.2.5:4000".parse().unwrap();
    let peer = Some(Peer::from(addr));
    rec.record(
        Some(SessionId(1)),
        &Connect {
            protocol: "gw",
            peer,
        },
    );
    rec.record(
        Some(SessionId(1)),
        &AuthSuccess {
            user: "alice",
            host: "a.example",
            peer,
            mechanism: "PLAIN",
        },
    );
    let action = rec.record(
        Some(SessionId(2)),
        &AuthFailure {
            user: "bob",
            host: "a.example",
            peer,
            mechanism: "PLAIN",
            reason: "bad password",
        },
    );
    assert!(matches!(
        action,
        flightrec_core::Action::Start(Reason::FailedLogin) | flightrec_core::Action::Dump(_)
    ));
    rec.record(
        None,
        &SessionForbidden {
            user: "eve",
            host: "a.example",
            resource: "admin",
        },
    );
    rec.record(
        Some(SessionId(1)),
        &Logout {
            user: "alice",
            host: "a.example",
            peer,
        },
    );
    let d = dump(&rec, None);
    assert_eq!(
        common::kinds(&d),
        [
            Kind::CONNECT,
            Kind::AUTH_SUCCESS,
            Kind::AUTH_FAILURE,
            Kind::SESSION_FORBIDDEN,
            Kind::LOGOUT
        ]
    );
    match d.records[2].decoded() {
        Decoded::AuthFailure(f) => {
            assert_eq!((f.user, f.reason), ("bob", "bad password"));
        }
        other => panic!("{other:?}"),
    }
    let stats = rec.stats();
    assert_eq!(stats.stored, 5);
    // No writer task: the audit items could not be queued, and say so.
    assert_eq!(stats.audit_dropped, 5);
}
