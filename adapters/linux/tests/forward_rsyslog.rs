//! Forwarding to a real rsyslogd (imtcp, imrelp, imtcp with TLS): delivery in order with
//! (host, boot, seq), the collector SIGKILLed and restarted under load (through each
//! transport), the gateway SIGKILLed while the collector is down, a spool that fills up.
//!
//! The load test is parameterised: `FLIGHTREC_FWD_LOAD_SECS` (default 4),
//! `FLIGHTREC_FWD_LOAD_RATE` (events/s, default 5000) and `FLIGHTREC_FWD_LOAD_KILLS`
//! (default 3). CI runs the defaults; the full run is 60 s, 20000/s, 10 kills.

mod collector;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use collector::{messages, seq_report, Collector, Input};
use flightrec_audit::{EjabberdFormat, LineFormat};
use flightrec_core::event::{AuthFailure, Decoded, Peer};
use flightrec_core::{Level, SessionId};
use flightrec_linux::forward::{DumpNotice, ForwardOptions, Forwarder, Target};

const HOST: &str = "gw-test";

fn options(target: Target, spool: &Path) -> ForwardOptions {
    let defaults = ForwardOptions::new(target, spool);
    ForwardOptions {
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        // `FLIGHTREC_FWD_WINDOW`: the RELP window for load experiments.
        window: env("FLIGHTREC_FWD_WINDOW", defaults.window as u64) as usize,
        ..defaults
    }
}

fn target(input: &Input, port: u16) -> Target {
    match input {
        Input::Relp => Target::Relp(format!("127.0.0.1:{port}")),
        Input::Tcp => Target::Tcp(format!("127.0.0.1:{port}")),
        Input::Tls { ca, .. } => Target::Tls {
            addr: format!("127.0.0.1:{port}"),
            ca: ca.clone(),
            server_name: "localhost".into(),
        },
    }
}

fn peer(i: u64) -> Option<Peer> {
    let addr: std::net::SocketAddr = format!("192.0.2.{}:{}", i % 250 + 1, 40000 + i % 1000)
        .parse()
        .unwrap();
    Some(Peer::from(addr))
}

/// The i-th test event: a failed login whose user name says `i`.
fn send(fwd: &Forwarder, i: u64, user: &str) -> u64 {
    let e = Decoded::AuthFailure(AuthFailure {
        user,
        host: "example.org",
        peer: peer(i),
        mechanism: "PLAIN",
        reason: "bad password",
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    fwd.audit(now, Level::Warn, Some(SessionId(i as u32)), &e)
        .unwrap()
}

fn delivery_in_order(input: Input) {
    if !collector::available(&input) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(&dir.path().join("c"), input.clone(), "");
    let fwd = Forwarder::start(
        options(target(&input, c.port), &dir.path().join("spool")),
        HOST,
    )
    .unwrap();
    let hostile = "eve\n<13>1 - - - - - [x@1 a=\"]\"] Failed PLAIN authentication for r@h from 6.6.6.6 port 1\u{202e}";
    let n = 500;
    for i in 0..n {
        let user = if i == 7 {
            hostile.to_owned()
        } else {
            format!("user{i}")
        };
        assert_eq!(send(&fwd, i, &user), i);
    }
    let notice = DumpNotice {
        reason: flightrec_core::trigger::Reason::FailedLogin,
        time: 1_000_000_000,
        session: Some(SessionId(3)),
        peer: peer(3),
        seq_range: Some((0, 10)),
        records: 11,
        lost: 0,
        suppressed: 0,
        file: "dumps/d-1.flr".into(),
        seal: None,
    };
    assert_eq!(fwd.dump(&notice).unwrap(), n);
    assert!(fwd.drain(Duration::from_secs(30)), "{:?}", fwd.stats());
    let lines = c.wait_lines(n as usize + 1, Duration::from_secs(30));
    assert_eq!(lines.len(), n as usize + 1, "{:?}", fwd.stats());
    let msgs = messages(&lines);
    let report = seq_report(&msgs, HOST);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.range, (0, n));
    let format = LineFormat::Ejabberd(EjabberdFormat::default());
    for (i, m) in msgs.iter().enumerate().take(n as usize) {
        let sd = m.element("flightrec@32473").unwrap();
        assert_eq!(sd.param("seq"), Some(i.to_string().as_str()));
        assert_eq!(m.hostname.as_deref(), Some(HOST));
        // MSG is the audit line, and it parses back to the event.
        let rec = format
            .parse(&m.msg)
            .unwrap_or_else(|e| panic!("{e}: {}", m.msg));
        let want = if i == 7 {
            hostile.to_owned()
        } else {
            format!("user{i}")
        };
        assert_eq!(rec.event.account().unwrap().0, want);
        assert!(!lines[i].contains(['\u{202e}']));
    }
    assert_eq!(msgs[n as usize].msgid.as_deref(), Some("dump"));
    let s = fwd.stats();
    assert_eq!(
        (s.spool.spooled, s.acked, s.spool.dropped, s.failed),
        (n + 1, n + 1, 0, 0)
    );
}

#[test]
fn tcp_delivers_in_order() {
    delivery_in_order(Input::Tcp);
}

#[test]
fn relp_delivers_in_order() {
    delivery_in_order(Input::Relp);
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Load with the collector SIGKILLed and restarted; returns (sent, delivered lines,
/// report, in-flight bound).
fn load_with_collector_kills(input: Input) {
    if !collector::available(&input) {
        return;
    }
    let secs = env("FLIGHTREC_FWD_LOAD_SECS", 4);
    let rate = env("FLIGHTREC_FWD_LOAD_RATE", 5000);
    let kills = env("FLIGHTREC_FWD_LOAD_KILLS", 3);
    let dir = tempfile::tempdir().unwrap();
    // A second file with when rsyslogd took each message and the event's own time.
    let delays = dir.path().join("delays.log");
    let extra = format!(
        "template(name=\"delay\" type=\"string\" \
         string=\"%timegenerated:::date-rfc3339% %timestamp:::date-rfc3339%\\n\")\n\
         action(type=\"omfile\" file=\"{}\" template=\"delay\")\n",
        delays.display()
    );
    let mut c = Collector::start(&dir.path().join("c"), input.clone(), &extra);
    let opts = options(target(&input, c.port), &dir.path().join("spool"));
    let window = opts.window as u64;
    let fwd = std::sync::Arc::new(Forwarder::start(opts, HOST).unwrap());
    let total = secs * rate;
    let producer = {
        let fwd = fwd.clone();
        std::thread::spawn(move || {
            let cpu_before = thread_cpu_ns("self");
            let start = Instant::now();
            let mut user = String::new();
            for i in 0..total {
                // Paced: event i is due at i / rate seconds. Sleeping only once a
                // millisecond ahead keeps the pacing's own system calls (one per event at
                // this rate) out of the producer's CPU figure.
                let due = Duration::from_nanos(i * 1_000_000_000 / rate);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    if wait >= Duration::from_millis(1) {
                        std::thread::sleep(wait);
                    }
                }
                user.clear();
                use std::fmt::Write;
                let _ = write!(user, "load{i}");
                assert_eq!(send(&fwd, i, &user), i);
            }
            thread_cpu_ns("self") - cpu_before
        })
    };
    // Kills spread over the run; each outage lasts 100 ms.
    let mut in_flight_bound = 0u64;
    for k in 0..kills {
        std::thread::sleep(
            Duration::from_millis(secs * 1000 / (kills + 1))
                .saturating_sub(Duration::from_millis(100)),
        );
        c.kill9();
        // Once the forwarder has noticed, what it sent beyond what reached the file was
        // in flight at the kill.
        let end = Instant::now() + Duration::from_secs(5);
        while fwd.stats().connected && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        let sent = fwd.stats().sent;
        in_flight_bound += sent.saturating_sub(c.lines().len() as u64);
        std::thread::sleep(Duration::from_millis(100));
        c.restart();
        eprintln!("kill {k}: sent {sent}, lines {}", c.lines().len());
    }
    let producer_cpu = producer.join().unwrap();
    assert!(fwd.drain(Duration::from_secs(300)), "{:?}", fwd.stats());
    let forwarder_cpu = forwarder_thread_cpu_ns();
    let stats = fwd.stats();
    let lines = c.wait_lines(total as usize, Duration::from_secs(60));
    let msgs = messages(&lines);
    let report = seq_report(&msgs, HOST);
    eprintln!("{input:?}: {total} events, {} lines, stats {stats:?}, report: missing {:?}, {} duplicated, {} out of order",
        lines.len(), report.missing, report.duplicated.len(), report.out_of_order.len());
    assert_eq!(report.range.1, total - 1, "the last event arrives");
    let missing: u64 = report.missing.iter().map(|(a, b)| b - a + 1).sum();
    let duplicates: u64 = report.duplicated.iter().map(|(_, n)| n).sum();
    let (p50, p99, max) = delay_percentiles(&delays);
    eprintln!(
        "LOAD {input:?}: {total} events in {secs} s ({rate}/s), {kills} collector kills: \
         forwarder thread {:.0} ns CPU/event, producer (format + spool append) {:.0} ns CPU/event, \
         delay record call -> rsyslogd p50 {p50:.1} ms p99 {p99:.1} ms max {max:.1} ms, \
         {missing} lost, {duplicates} duplicated, {} resent",
        forwarder_cpu as f64 / total as f64,
        producer_cpu as f64 / total as f64,
        stats.sent - stats.acked
    );
    match input {
        Input::Relp => {
            // At least once: nothing lost; a resend only repeats what was unacknowledged.
            assert_eq!(report.range.0, 0);
            assert_eq!(missing, 0, "{report:?}");
            assert!(
                duplicates <= kills * window,
                "{duplicates} duplicates for {kills} kills"
            );
        }
        _ => {
            // What is lost was in flight at a kill, and shows as a gap.
            assert!(
                missing <= in_flight_bound,
                "{missing} lost, in flight at kills {in_flight_bound}"
            );
            assert_eq!(lines.len() as u64, total - missing + duplicates);
        }
    }
    assert!(stats.reconnects >= kills, "{stats:?}");
    // `flightrec audit --gaps` on the collector's file says the same.
    let gaps = gaps_report(&c.out);
    for (a, b) in &report.missing {
        let want = if a == b {
            format!("  missing {a}\n")
        } else {
            format!("  missing {a}..={b} (")
        };
        assert!(gaps.contains(&want), "{want} in {gaps}");
    }
    assert_eq!(gaps.contains("NOT complete"), !report.is_clean(), "{gaps}");
    assert_eq!(stats.spool.dropped, 0);
}

/// CPU time of a thread of this process (`self` for the calling one), from schedstat.
fn thread_cpu_ns(tid: &str) -> u64 {
    let path = if tid == "self" {
        "/proc/thread-self/schedstat".to_owned()
    } else {
        format!("/proc/self/task/{tid}/schedstat")
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time of the forwarder's sending thread (named `flightrec-fwd`).
fn forwarder_thread_cpu_ns() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim() == "flightrec-fwd")
        })
        .map(|t| thread_cpu_ns(&t.file_name().to_string_lossy()))
        .sum()
}

/// p50, p99 and max of (rsyslogd's receive time - the event's time), milliseconds.
fn delay_percentiles(file: &Path) -> (f64, f64, f64) {
    use chrono::DateTime;
    let mut d: Vec<f64> = collector::lines_of(file)
        .iter()
        .filter_map(|l| {
            let (got, sent) = l.split_once(' ')?;
            let got = DateTime::parse_from_rfc3339(got).ok()?;
            let sent = DateTime::parse_from_rfc3339(sent).ok()?;
            Some((got - sent).num_microseconds()? as f64 / 1000.0)
        })
        .collect();
    if d.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    d.sort_by(f64::total_cmp);
    let at = |q: f64| d[((d.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99), at(1.0))
}

/// `flightrec audit --gaps FILE`'s output.
fn gaps_report(file: &Path) -> String {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        audit: flightrec_audit::viewer::AuditArgs,
    }
    let args = Cli::parse_from(["flightrec", "--gaps", file.to_str().unwrap()]).audit;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = flightrec_audit::viewer::run(&args, &mut out, &mut err);
    let out = String::from_utf8(out).unwrap();
    let clean = out.contains(": complete");
    assert_eq!(
        code,
        if clean {
            0
        } else {
            flightrec_audit::viewer::exit::GAPS
        },
        "{out}"
    );
    out
}

#[test]
fn relp_collector_killed_under_load_loses_nothing() {
    load_with_collector_kills(Input::Relp);
}

#[test]
fn tcp_collector_killed_under_load_loss_is_a_visible_gap() {
    load_with_collector_kills(Input::Tcp);
}

#[test]
fn tls_collector_killed_under_load_loss_is_a_visible_gap() {
    let pki = tempfile::tempdir().unwrap();
    load_with_collector_kills(collector::tls_input(pki.path()));
}

/// The gateway side of `gateway_killed_while_collector_down`: spools events (the
/// collector is down) and prints each sequence number once its call returned.
#[test]
fn gateway_child() {
    let Some(spool) = std::env::var_os("FLIGHTREC_FWD_CHILD_SPOOL") else {
        return;
    };
    let port: u16 = std::env::var("FLIGHTREC_FWD_CHILD_PORT")
        .unwrap()
        .parse()
        .unwrap();
    let fwd = Forwarder::start(
        options(Target::Relp(format!("127.0.0.1:{port}")), Path::new(&spool)),
        HOST,
    )
    .unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        let seq = send(&fwd, i, &format!("child{i}"));
        use std::io::Write;
        writeln!(out, "returned {seq}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn gateway_killed_while_collector_down_then_resent() {
    if !collector::available(&Input::Relp) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    // The port the collector will have; nothing listens yet.
    let port = collector::free_port();
    let mut returned = BTreeSet::new();
    let kills = env("FLIGHTREC_FWD_GATEWAY_KILLS", 20);
    for k in 0..kills {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "gateway_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("FLIGHTREC_FWD_CHILD_SPOOL", &spool)
            .env("FLIGHTREC_FWD_CHILD_PORT", port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Let it spool a varying number of events, then SIGKILL it mid-stream.
        let want = 50 + k * 37 % 200;
        let mut got = 0;
        while got < want {
            let line = lines.next().unwrap().unwrap();
            if let Some(seq) = line.strip_prefix("returned ") {
                assert!(
                    returned.insert(seq.parse::<u64>().unwrap()),
                    "seq {seq} returned twice"
                );
                got += 1;
            }
        }
        child.kill().unwrap();
        // Whatever it printed before dying also returned.
        for line in lines.map_while(Result::ok) {
            if let Some(seq) = line.strip_prefix("returned ") {
                assert!(returned.insert(seq.parse::<u64>().unwrap()));
            }
        }
        child.wait().unwrap();
    }
    // The collector comes up on that port; a new gateway process resends the spool.
    let mut c = Collector::start(&dir.path().join("c"), Input::Relp, "");
    if c.port != port {
        // Start it on the agreed port instead.
        c.kill9();
        let conf = std::fs::read_to_string(dir.path().join("c/rsyslog.conf")).unwrap();
        std::fs::write(
            dir.path().join("c/rsyslog.conf"),
            conf.replace(&format!("port=\"{}\"", c.port), &format!("port=\"{port}\"")),
        )
        .unwrap();
        c.port = port;
        c.restart();
    }
    let fwd = Forwarder::start(
        options(Target::Relp(format!("127.0.0.1:{port}")), &spool),
        HOST,
    )
    .unwrap();
    assert!(fwd.drain(Duration::from_secs(60)), "{:?}", fwd.stats());
    let lines = c.wait_lines(returned.len(), Duration::from_secs(30));
    let msgs = messages(&lines);
    let delivered: BTreeSet<u64> = msgs
        .iter()
        .map(|m| {
            m.element("flightrec@32473")
                .unwrap()
                .param("seq")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let lost: Vec<_> = returned.difference(&delivered).collect();
    assert!(lost.is_empty(), "returned but not delivered: {lost:?}");
    let report = seq_report(&msgs, HOST);
    assert!(
        report.missing.is_empty() && report.duplicated.is_empty(),
        "{report:?}"
    );
    eprintln!(
        "{} returned by {kills} killed processes, {} delivered; torn at opens: {}",
        returned.len(),
        delivered.len(),
        fwd.stats().spool.torn
    );
}

#[test]
fn spool_full_drops_are_counted_and_the_gap_shows() {
    if !collector::available(&Input::Relp) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = collector::free_port();
    let mut opts = options(
        Target::Relp(format!("127.0.0.1:{port}")),
        &dir.path().join("spool"),
    );
    opts.spool.max_bytes = flightrec_linux::forward::spool::MIN_BYTES;
    let fwd = Forwarder::start(opts, HOST).unwrap();
    let n = 10_000;
    for i in 0..n {
        send(&fwd, i, &format!("u{i}"));
    }
    let s = fwd.stats();
    assert!(s.spool.dropped > 0, "{s:?}");
    assert!(
        s.spool.bytes <= flightrec_linux::forward::spool::MIN_BYTES,
        "{s:?}"
    );
    assert_eq!(s.spool.dropped + s.spool.pending, n);
    // The collector comes up late, on the port the forwarder has been trying.
    let mut c = Collector::start(&dir.path().join("c"), Input::Relp, "");
    c.kill9();
    let conf_path = dir.path().join("c/rsyslog.conf");
    let conf = std::fs::read_to_string(&conf_path).unwrap();
    std::fs::write(
        &conf_path,
        conf.replace(&format!("port=\"{}\"", c.port), &format!("port=\"{port}\"")),
    )
    .unwrap();
    c.port = port;
    c.restart();
    assert!(fwd.drain(Duration::from_secs(60)), "{:?}", fwd.stats());
    // One more event after the outage, so the gap is between two delivered records.
    let last = send(&fwd, n, "after");
    assert!(fwd.drain(Duration::from_secs(30)));
    let lines = c.wait_lines(s.spool.pending as usize + 1, Duration::from_secs(30));
    let report = seq_report(&messages(&lines), HOST);
    // The oldest were dropped: the collector's numbers start after them.
    assert_eq!(report.range, (s.spool.dropped, last));
    assert!(report.is_clean(), "{report:?}");
}

/// Through the writer task: an audit event, the trigger it fires and the dump written
/// arrive at the collector, the dump notice naming the file and its records.
#[test]
fn service_forwards_events_triggers_and_dump_notices() {
    use flightrec_linux::{
        DumpFormat, DumpOptions, FlightRecorder, RecorderOptions, Service, ServiceOptions,
    };
    if !collector::available(&Input::Relp) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(&dir.path().join("c"), Input::Relp, "");
    let fwd = Forwarder::start(
        options(target(&Input::Relp, c.port), &dir.path().join("spool")),
        HOST,
    )
    .unwrap();
    let rec = FlightRecorder::new(RecorderOptions {
        shards: 2,
        host: HOST.into(),
        ..RecorderOptions::default()
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dump_path = dir.path().join("dumps/d.flr");
    rt.block_on(async {
        let opts = ServiceOptions {
            dump: DumpOptions {
                path: flightrec_linux::files::Template::parse(&dump_path.display().to_string())
                    .unwrap(),
                file: flightrec_linux::files::FilePolicy::with_mode(0o600),
                format: DumpFormat::Binary,
                durable: true,
                seal_key: None,
            },
            audit: None,
            queue: 64,
            dump_signal: None,
            reopen_on_hup: false,
        };
        let service = Service::start_with(rec.clone(), opts, Some(fwd)).unwrap();
        rec.log(Level::Info, Some(SessionId(5)), "gw", "hello", &[]);
        let peer: Option<std::net::SocketAddr> = "203.0.113.9:4444".parse().ok();
        rec.record(
            Some(SessionId(5)),
            &AuthFailure {
                user: "bob",
                host: "example.org",
                peer: peer.map(Peer::from),
                mechanism: "PLAIN",
                reason: "bad",
            },
        );
        // The post-trigger window (100 ms) closes, the dump is written.
        let end = Instant::now() + Duration::from_secs(20);
        while service.dumps().written() == 0 {
            assert!(Instant::now() < end, "no dump");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        service.flush().await.unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        while service.forward_stats().unwrap().spool.pending > 0 {
            assert!(Instant::now() < end, "{:?}", service.forward_stats());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        service.shutdown().await.unwrap();
    });
    let lines = c.wait_lines(3, Duration::from_secs(20));
    let msgs = messages(&lines);
    let ids: Vec<_> = msgs.iter().map(|m| m.msgid.clone().unwrap()).collect();
    assert_eq!(ids, ["auth-failure", "trigger", "dump"], "{lines:?}");
    assert!(seq_report(&msgs, HOST).is_clean());
    let trigger = msgs[1].element("flightrec@32473").unwrap();
    assert_eq!(trigger.param("reason"), Some("failed login"));
    let dump = msgs[2].element("flightrec@32473").unwrap();
    assert_eq!(dump.param("file"), Some(dump_path.to_str().unwrap()));
    assert_eq!(dump.param("peer"), Some("203.0.113.9"));
    assert_eq!(dump.param("port"), Some("4444"));
    assert_eq!(dump.param("records"), Some("2"));
    assert_eq!(
        (dump.param("first"), dump.param("last")),
        (Some("0"), Some("1"))
    );
    assert_eq!(dump.param("lost"), Some("0"));
    assert!(dump_path.exists());
}
