//! Forwarding over TLS (RFC 5425) to a real rsyslogd (imtcp with the gtls driver), with a
//! CA and server certificate made here: delivery, and a certificate from another CA or
//! for another name refused with a clear error while records wait in the spool.

mod collector;

use std::path::Path;
use std::time::{Duration, Instant};

use collector::{make_pki, messages, seq_report, Collector};
use flightrec_core::event::{Connect, Decoded};
use flightrec_core::Level;
use flightrec_linux::forward::{ForwardOptions, Forwarder, Target};

fn forwarder(port: u16, ca: &Path, name: &str, spool: &Path) -> Forwarder {
    let target = Target::Tls {
        addr: format!("127.0.0.1:{port}"),
        ca: ca.to_owned(),
        server_name: name.into(),
    };
    let opts = ForwardOptions {
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..ForwardOptions::new(target, spool)
    };
    Forwarder::start(opts, "gw-tls").unwrap()
}

fn send(fwd: &Forwarder, n: u64) {
    for i in 0..n {
        let peer: std::net::SocketAddr = format!("198.51.100.{}:5222", i + 1).parse().unwrap();
        let e = Decoded::Connect(Connect {
            protocol: "xmpp",
            peer: Some(peer.into()),
        });
        fwd.audit(1_800_000_000_000_000_000 + i, Level::Info, None, &e)
            .unwrap();
    }
}

#[test]
fn tls_delivers_and_refuses_a_wrong_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let input = collector::tls_input(&pki);
    if !collector::available(&input) {
        return;
    }
    let c = Collector::start(&dir.path().join("c"), input, "");

    // The right CA and name: delivered.
    let fwd = forwarder(
        c.port,
        &pki.join("ca.pem"),
        "localhost",
        &dir.path().join("s1"),
    );
    send(&fwd, 50);
    assert!(fwd.drain(Duration::from_secs(30)), "{:?}", fwd.stats());
    let lines = c.wait_lines(50, Duration::from_secs(30));
    let report = seq_report(&messages(&lines), "gw-tls");
    assert!(report.is_clean() && report.range == (0, 49), "{report:?}");
    fwd.shutdown();

    // Another CA: refused, said so, and the records wait in the spool.
    let other = dir.path().join("other");
    make_pki(&other, &["localhost"]);
    let refused = |ca: &Path, name: &str, spool: &str, expect: &str| {
        let fwd = forwarder(c.port, ca, name, &dir.path().join(spool));
        send(&fwd, 3);
        let end = Instant::now() + Duration::from_secs(20);
        let error = loop {
            if let Some(e) = fwd.stats().last_error {
                break e;
            }
            assert!(Instant::now() < end, "no error reported");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(error.contains("TLS handshake with 127.0.0.1"), "{error}");
        assert!(error.contains(expect), "{error}");
        let s = fwd.stats();
        assert!(!s.connected);
        assert_eq!((s.sent, s.spool.pending), (0, 3), "{s:?}");
        error
    };
    let e = refused(
        &other.join("ca.pem"),
        "localhost",
        "s2",
        "invalid peer certificate",
    );
    eprintln!("another CA: {e}");
    // The right CA, but not the name the certificate was made for.
    let e = refused(
        &pki.join("ca.pem"),
        "collector.example",
        "s3",
        "invalid peer certificate",
    );
    eprintln!("another name: {e}");
    assert_eq!(c.lines().len(), 50);
}
