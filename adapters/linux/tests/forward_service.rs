//! Forwarding through the service (the recorder, the writer task, the panic hook), with
//! the gateway process SIGKILLed or panicking while the collector is down: what a record
//! call or a dump returned is in the spool, and reaches the collector on the next start.

mod collector;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use collector::{messages, seq_report, Collector, Input};
use flightrec_core::event::AuthFailure;
use flightrec_core::seal::SealKey;
use flightrec_core::trigger::TriggerConfig;
use flightrec_core::SessionId;
use flightrec_linux::files::{FilePolicy, Template};
use flightrec_linux::forward::{ForwardOptions, Forwarder, Target};
use flightrec_linux::{
    install_panic_hook, DumpFormat, DumpOptions, FlightRecorder, RecorderOptions, Service,
    ServiceOptions,
};

const HOST: &str = "gw-svc";
const SD: &str = "flightrec@32473";

fn options(port: u16, spool: &Path) -> ForwardOptions {
    ForwardOptions {
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ..ForwardOptions::new(Target::Relp(format!("127.0.0.1:{port}")), spool)
    }
}

/// A recorder and its service forwarding to `port` through the spool in `dir`; dumps
/// to `dir/dumps/d.flr` (sealed with `dir/seal.key` if it exists). On the current
/// (current-thread) runtime.
fn service(
    dir: &Path,
    port: u16,
    trigger: TriggerConfig,
) -> (std::sync::Arc<FlightRecorder>, Service) {
    let rec = FlightRecorder::new(RecorderOptions {
        shards: 2,
        host: HOST.into(),
        trigger,
        ..RecorderOptions::default()
    })
    .unwrap();
    let fwd = Forwarder::start(options(port, &dir.join("spool")), HOST).unwrap();
    let opts = ServiceOptions {
        dump: DumpOptions {
            path: Template::parse(&dir.join("dumps/d.flr").display().to_string()).unwrap(),
            file: FilePolicy::default(),
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
    let key = dir.join("seal.key");
    if key.exists() {
        let kf = flightrec_linux::sealkey::KeyFile::open(&key).unwrap();
        assert!(service.dumps().seal_with(kf));
    }
    (rec, service)
}

fn failed_login(rec: &FlightRecorder, i: u64) {
    rec.record(
        Some(SessionId(i as u32)),
        &AuthFailure {
            user: &format!("svc{i}"),
            host: "example.org",
            peer: None,
            mechanism: "PLAIN",
            reason: "bad password",
        },
    );
}

/// The child processes' side: `FLIGHTREC_FWD_SVC_CHILD` says which, `..._DIR` and
/// `..._PORT` where (the collector is down: nothing listens on the port).
#[test]
fn service_child() {
    let Ok(role) = std::env::var("FLIGHTREC_FWD_SVC_CHILD") else {
        return;
    };
    let dir = std::path::PathBuf::from(std::env::var_os("FLIGHTREC_FWD_SVC_DIR").unwrap());
    let port: u16 = std::env::var("FLIGHTREC_FWD_SVC_PORT")
        .unwrap()
        .parse()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        match role.as_str() {
            "record" => {
                // No trigger: only the audit events go to the spool. The loop never
                // yields, so the writer task never runs: the record call alone must have
                // put each event in the spool.
                let trigger = TriggerConfig {
                    failed_login: false,
                    ..RecorderOptions::default().trigger
                };
                let (rec, _service) = service(&dir, port, trigger);
                let first: u64 = std::env::var("FLIGHTREC_FWD_SVC_FIRST")
                    .unwrap()
                    .parse()
                    .unwrap();
                let mut out = std::io::stdout().lock();
                for i in first.. {
                    failed_login(&rec, i);
                    writeln!(out, "returned {i}").unwrap();
                    out.flush().unwrap();
                }
            }
            "panic" => {
                let trigger = TriggerConfig {
                    failed_login: false,
                    ..RecorderOptions::default().trigger
                };
                let (rec, _service) = service(&dir, port, trigger);
                install_panic_hook(rec.clone());
                failed_login(&rec, 1);
                failed_login(&rec, 2);
                panic!("deliberate panic: the hook dumps and spools the notice");
            }
            other => panic!("unknown child role {other}"),
        }
    });
}

fn child(role: &str, dir: &Path, port: u16, first: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "service_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FLIGHTREC_FWD_SVC_CHILD", role)
        .env("FLIGHTREC_FWD_SVC_DIR", dir)
        .env("FLIGHTREC_FWD_SVC_PORT", port.to_string())
        .env("FLIGHTREC_FWD_SVC_FIRST", first.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The collector comes up on `port` (where the children tried to send), and a forwarder
/// on the spool the children left resends it; the collector's messages.
fn resend(dir: &Path, port: u16, want: usize) -> Vec<flightrec_audit::rfc5424::SyslogMessage> {
    let mut c = Collector::start(&dir.join("c"), Input::Relp, "");
    c.kill9();
    let conf_path = dir.join("c/rsyslog.conf");
    let conf = std::fs::read_to_string(&conf_path).unwrap();
    std::fs::write(
        &conf_path,
        conf.replace(&format!("port=\"{}\"", c.port), &format!("port=\"{port}\"")),
    )
    .unwrap();
    c.port = port;
    c.restart();
    let fwd = Forwarder::start(options(port, &dir.join("spool")), HOST).unwrap();
    assert!(fwd.drain(Duration::from_secs(60)), "{:?}", fwd.stats());
    let msgs = messages(&c.wait_lines(want, Duration::from_secs(30)));
    fwd.shutdown();
    msgs
}

#[test]
fn record_calls_that_returned_survive_sigkill() {
    if !collector::available(&Input::Relp) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = collector::free_port();
    let mut returned = BTreeSet::new();
    let mut next = 0u64;
    for k in 0..5u64 {
        let mut c = child("record", dir.path(), port, next);
        let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
        let want = 20 + k * 41 % 100;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(i) = line.strip_prefix("returned ") {
                returned.insert(i.parse::<u64>().unwrap());
                if returned.len() as u64 >= next + want {
                    break;
                }
            }
        }
        // SIGKILL right after a record call returned.
        c.kill().unwrap();
        for line in lines.map_while(Result::ok) {
            if let Some(i) = line.strip_prefix("returned ") {
                returned.insert(i.parse::<u64>().unwrap());
            }
        }
        c.wait().unwrap();
        assert!(returned.len() as u64 >= next + want, "the child ran");
        next = returned.last().map_or(0, |l| l + 1);
    }
    let msgs = resend(dir.path(), port, returned.len());
    let delivered: BTreeSet<u64> = msgs
        .iter()
        .filter_map(|m| {
            m.element(SD)?
                .param("user")?
                .strip_prefix("svc")?
                .parse()
                .ok()
        })
        .collect();
    let lost: Vec<_> = returned.difference(&delivered).collect();
    assert!(lost.is_empty(), "returned but not delivered: {lost:?}");
    let report = seq_report(&msgs, HOST);
    assert!(
        report.missing.is_empty() && report.duplicated.is_empty(),
        "{report:?}"
    );
}

#[test]
fn the_panic_hooks_dump_is_noticed_with_its_seal() {
    if !collector::available(&Input::Relp) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = SealKey::new([7; 32], 0);
    let key_path = dir.path().join("seal.key");
    std::fs::write(&key_path, flightrec_decode::verify::key_file_text(&key)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = collector::free_port();
    let status = child("panic", dir.path(), port, 0).wait().unwrap();
    assert!(!status.success(), "the child panics");
    let dump_path = dir.path().join("dumps/d.flr");
    let dump = std::fs::read(&dump_path).expect("the panic hook wrote the dump");
    let msgs = resend(dir.path(), port, 4);
    let ids: Vec<_> = msgs.iter().map(|m| m.msgid.clone().unwrap()).collect();
    assert_eq!(
        ids,
        ["auth-failure", "auth-failure", "trigger", "dump"],
        "{msgs:?}"
    );
    let notice = msgs[3].element(SD).unwrap();
    assert_eq!(notice.param("reason"), Some("untimely death"));
    assert_eq!(notice.param("file"), Some(dump_path.to_str().unwrap()));
    assert_eq!(notice.param("epoch"), Some("0"));
    // The notice's seal and signature are the frames after the dump in its file.
    use flightrec_core::frame::{parse, Parsed};
    let seal_hex = notice.param("seal").unwrap();
    let sig_hex = notice.param("sig").unwrap();
    let mut at = dump.len();
    let mut frames = Vec::new();
    // The two frames at the end: the seal (81-byte body), then the signature (105).
    for body_len in [105usize, 81] {
        at -= body_len + 8;
        match parse(&dump[at..]) {
            Parsed::Whole { body, .. } => {
                frames.push(flightrec_decode::verify::hex(&dump[at..][body]))
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        (seal_hex, sig_hex),
        (frames[1].as_str(), frames[0].as_str())
    );
    // The verifier checks the forwarded seal against the dump (`flightrec verify
    // --forwarded` reads it from the collector's file the same way).
    use flightrec_decode::verify::{parse_hex, Verifier};
    let forwarded = |v: &mut Verifier| {
        v.add_forwarded(
            "collector".into(),
            &parse_hex::<81>(seal_hex).unwrap(),
            Some(&parse_hex::<105>(sig_hex).unwrap()),
        )
        .unwrap()
    };
    let mut v = Verifier::new(SealKey::new([7; 32], 0));
    forwarded(&mut v);
    let mut verdicts = v.verify_input("d.flr", &dump[..]).unwrap();
    assert!(v.finish(&mut verdicts).is_empty());
    assert!(verdicts.iter().all(|d| d.fault.is_none()), "{verdicts:?}");
    // Deleted, the dump is missed.
    let mut v = Verifier::new(SealKey::new([7; 32], 0));
    forwarded(&mut v);
    assert!(!v.finish(&mut []).is_empty());
}
