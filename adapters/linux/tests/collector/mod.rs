//! A private rsyslogd for tests: its own config, work directory and free port on
//! 127.0.0.1, started in the foreground, stopped (or SIGKILLed) by its pid.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flightrec_audit::rfc5424::{self, SeqCheck, SeqReport, SyslogMessage};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// What the collector listens with.
#[derive(Clone, Debug)]
pub enum Input {
    /// imtcp, plain.
    Tcp,
    /// imrelp.
    Relp,
    /// imtcp with TLS (gtls driver): CA, certificate and key files.
    Tls {
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    },
}

/// Whether rsyslogd (and for RELP, imrelp) is here; under `CI` its absence fails.
pub fn available(input: &Input) -> bool {
    let module = match input {
        Input::Relp => "imrelp.so",
        Input::Tcp => "imtcp.so",
        Input::Tls { .. } => "lmnsd_gtls.so",
    };
    let have = Command::new("rsyslogd")
        .arg("-v")
        .stdout(Stdio::null())
        .status()
        .is_ok()
        && [
            "/usr/lib/x86_64-linux-gnu/rsyslog",
            "/usr/lib/rsyslog",
            "/usr/lib64/rsyslog",
        ]
        .iter()
        .any(|d| Path::new(d).join(module).exists());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "rsyslogd with {module} is needed (apt-get install rsyslog rsyslog-relp rsyslog-gnutls)"
        );
        eprintln!("skipped: rsyslogd with {module} not installed");
    }
    have
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running (or stopped) rsyslogd.
pub struct Collector {
    pub dir: PathBuf,
    pub port: u16,
    pub out: PathBuf,
    conf: PathBuf,
    child: Option<Child>,
}

impl Collector {
    /// Writes the config and starts rsyslogd; returns once it accepts connections.
    /// `extra` is appended to the config (more actions).
    pub fn start(dir: &Path, input: Input, extra: &str) -> Collector {
        let port = free_port();
        let work = dir.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let out = dir.join("out.log");
        // Direct queues: a message is in the file (flushed at the end of its batch)
        // before imrelp acknowledges it, so a SIGKILL cannot lose an acknowledged one.
        let global = format!(
            "global(workDirectory=\"{}\" maxMessageSize=\"64k\"{})\nmain_queue(queue.type=\"Direct\")\n",
            work.display(),
            match &input {
                Input::Tls { ca, cert, key } => format!(
                    " defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=\"{}\" \
                     defaultNetstreamDriverCertFile=\"{}\" defaultNetstreamDriverKeyFile=\"{}\"",
                    ca.display(),
                    cert.display(),
                    key.display()
                ),
                _ => String::new(),
            }
        );
        let listen = match &input {
            Input::Tcp => format!(
                "module(load=\"imtcp\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n"
            ),
            Input::Relp => format!(
                "module(load=\"imrelp\")\ninput(type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\")\n"
            ),
            Input::Tls { .. } => format!(
                "module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" \
                 streamDriver.authMode=\"anon\")\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n"
            ),
        };
        let text = format!(
            "{global}{listen}action(type=\"omfile\" file=\"{}\" \
             template=\"RSYSLOG_SyslogProtocol23Format\" flushOnTXEnd=\"on\" asyncWriting=\"off\")\n{extra}",
            out.display()
        );
        Self::with_config(dir, port, &text, &out)
    }

    /// Starts rsyslogd with the config `text` (listening on `port`); `out` is the file
    /// [`lines`](Self::lines) reads.
    pub fn with_config(dir: &Path, port: u16, text: &str, out: &Path) -> Collector {
        std::fs::create_dir_all(dir.join("work")).unwrap();
        let conf = dir.join("rsyslog.conf");
        std::fs::write(&conf, text).unwrap();
        let mut c = Collector {
            dir: dir.to_owned(),
            port,
            out: out.to_owned(),
            conf,
            child: None,
        };
        c.restart();
        c
    }

    /// Starts rsyslogd again on the same port (after [`kill9`](Self::kill9)).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&self.conf)
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("rsyslogd starts");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("rsyslogd exited: {status} (config {})", self.conf.display());
            }
            assert!(
                Instant::now() < end,
                "rsyslogd does not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs it (by its pid) and waits for it to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.dir.join("rsyslogd.pid"));
    }

    /// Stops it with SIGTERM (by its pid), letting it write what it holds.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal_pid(c.id(), 15);
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.dir.join("rsyslogd.pid"));
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// The output file's whole lines.
    pub fn lines(&self) -> Vec<String> {
        lines_of(&self.out)
    }

    /// Waits until the output holds at least `n` lines, or has not grown for a second
    /// (what was lost will not come), or `timeout`; returns the lines.
    pub fn wait_lines(&self, n: usize, timeout: Duration) -> Vec<String> {
        let end = Instant::now() + timeout;
        let mut last = (0, Instant::now());
        loop {
            let lines = self.lines();
            if lines.len() != last.0 {
                last = (lines.len(), Instant::now());
            }
            if lines.len() >= n || Instant::now() > end || last.1.elapsed() > Duration::from_secs(1)
            {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Sends a signal to one process by pid, through the `kill` command (no unsafe here).
pub fn signal_pid(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// Whole lines of a file (a torn last line is left out).
pub fn lines_of(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = match text.rfind('\n') {
        Some(i) => &text[..i],
        None => "",
    };
    whole.lines().map(str::to_owned).collect()
}

/// Parses every line as RFC 5424 (panics on one that is not: nothing may arrive torn).
pub fn messages(lines: &[String]) -> Vec<SyslogMessage> {
    lines
        .iter()
        .map(|l| rfc5424::parse(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

/// The sequence report of (host, boot) over these messages.
pub fn seq_report(msgs: &[SyslogMessage], host: &str) -> SeqReport {
    let mut check = SeqCheck::new();
    for m in msgs {
        assert!(m.sd.iter().any(|e| e.id == "flightrec@32473"), "{m:?}");
        check.add_message(m, "flightrec@32473");
    }
    let reports = check.reports();
    let mine: Vec<_> = reports
        .into_iter()
        .filter(|((h, _), _)| h == host)
        .collect();
    assert_eq!(mine.len(), 1, "one boot of {host}");
    mine.into_iter().next().unwrap().1
}

/// Writes `ca.pem`, and `cert.pem` + `key.pem` for `names`, signed by that CA, in `dir`.
pub fn make_pki(dir: &Path, names: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "flightrec test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    let cert = params.signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

/// A TLS input whose CA and certificate (for `localhost` and `127.0.0.1`) are made in `dir`.
pub fn tls_input(dir: &Path) -> Input {
    make_pki(dir, &["localhost", "127.0.0.1"]);
    Input::Tls {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}
