//! Forwarding audit events, trigger firings and dump notices to a syslog collector
//! (rsyslog and friends), with a spool that survives crashes and outages.
//!
//! - [`message`]: each record becomes an RFC 5424 message carrying (host, boot, sequence
//!   number) in its structured data, its MSG the audit line itself.
//! - [`spool`]: a bounded on-disk spool. [`Forwarder::audit`] and the notices return once
//!   the message is in it; producers never wait on the network. Through the service, the
//!   record call spools its audit event and trigger notice itself, and every dump's notice
//!   (the panic hook's too) is spooled by the dump's write, with the dump's seal and
//!   signature when sealing is on (`core/SEALING.md` section 7; `flightrec verify
//!   --forwarded` checks them against the dumps).
//! - [`transport`]: plain TCP and TLS with octet-counting framing, and RELP, where a
//!   message leaves the spool only once the collector acknowledged it.
//!
//! One thread per forwarder sends: it reads the spool in order, reconnects with
//! exponential backoff, resends from the last acknowledged message after a reconnect,
//! and logs each change of state once (`tracing`, target `flightrec::forward`).

pub mod config;
pub mod message;
mod notice;
pub mod spool;
pub mod transport;

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flightrec_core::event::{decode, Decoded};
use flightrec_core::trigger::DumpOrder;
use flightrec_core::{Level, SessionId};

pub use message::{DumpNotice, ForwardedSeal, MessageBuilder, Origin};
pub use spool::{SpoolOptions, SpoolStats};
pub use transport::Target;

use spool::{Cursor, Reader, Spool};
use transport::Stream;

/// How a [`Forwarder`] runs.
#[derive(Clone, Debug)]
pub struct ForwardOptions {
    /// The collector.
    pub target: Target,
    /// The spool.
    pub spool: SpoolOptions,
    /// SD-ID of the structured data (default [`message::DEFAULT_SD_ID`]).
    pub sd_id: String,
    /// Syslog facility (default `authpriv`, 10).
    pub facility: u8,
    /// APP-NAME.
    pub app_name: String,
    /// RELP: messages sent and not yet acknowledged, at most. It must cover a round trip's
    /// worth of messages: the collector answers each only after its actions ran, so a
    /// small window leaves both ends waiting and caps the rate (`benches/RESULTS.md`,
    /// forwarding under load). After a collector crash up to this many are sent again.
    pub window: usize,
    /// First wait before reconnecting; doubled after each failure up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest wait before reconnecting.
    pub backoff_max: Duration,
    /// How audit events' MSG is written (as the audit log writes its lines).
    pub format: flightrec_audit::LineFormat,
}

impl ForwardOptions {
    /// Options with the defaults for everything but the target and the spool directory.
    pub fn new(target: Target, spool_dir: impl Into<std::path::PathBuf>) -> Self {
        ForwardOptions {
            target,
            spool: SpoolOptions {
                dir: spool_dir.into(),
                max_bytes: 64 * 1024 * 1024,
                mode: 0o600,
            },
            sd_id: message::DEFAULT_SD_ID.into(),
            facility: message::DEFAULT_FACILITY,
            app_name: "flightrec".into(),
            window: 1024,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            format: flightrec_audit::LineFormat::default(),
        }
    }
}

/// Counters of a [`Forwarder`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardStats {
    /// Messages written to the collector's connection (resent ones again).
    pub sent: u64,
    /// Messages the collector has (RELP: acknowledged; TCP, TLS: written to the socket).
    pub acked: u64,
    /// The spool's counters: spooled, dropped when full, torn at open, pending.
    pub spool: SpoolStats,
    /// Records that could not be spooled (too long, write error): lost, and counted.
    pub failed: u64,
    /// Connections made after the first.
    pub reconnects: u64,
    /// Whether a connection is up.
    pub connected: bool,
    /// The last connection error, as logged.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    sent: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    reconnects: AtomicU64,
    connected: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// Signalled when a message is spooled or the forwarder stops.
    wake: Condvar,
    wake_lock: Mutex<()>,
}

impl Shared {
    fn wait(&self, timeout: Duration) {
        let guard = self.wake_lock.lock().unwrap_or_else(|e| e.into_inner());
        if !self.stop.load(Ordering::Relaxed) {
            let _ = self.wake.wait_timeout(guard, timeout);
        }
    }

    fn notify(&self) {
        // A dying thread does not wait for the lock: the sender looks again within
        // `IDLE_CHECK` anyway.
        let _guard = if std::thread::panicking() {
            match self.wake_lock.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return,
            }
        } else {
            self.wake_lock.lock().unwrap_or_else(|e| e.into_inner())
        };
        self.wake.notify_all();
    }
}

/// Forwards records to a collector (see the module documentation).
#[derive(Debug)]
pub struct Forwarder {
    builder: MessageBuilder,
    spool: Arc<Spool>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    target: Target,
}

impl Forwarder {
    /// Opens the spool (recovering what a previous run left), checks the header fields,
    /// and starts the sending thread. `host` is the HOSTNAME sent and the `host` in the
    /// structured data.
    pub fn start(opts: ForwardOptions, host: &str) -> io::Result<Forwarder> {
        let invalid =
            |e: message::FieldError| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
        let boot = message::boot_id();
        let procid = std::process::id().to_string();
        let origin = Origin::new(
            opts.facility,
            host,
            &opts.app_name,
            &procid,
            &opts.sd_id,
            &boot,
        )
        .map_err(invalid)?;
        let tls = match &opts.target {
            Target::Tls { ca, .. } => Some(transport::tls_config(ca)?),
            _ => None,
        };
        let spool = Spool::open(&opts.spool, &boot)?;
        let torn = spool.stats().torn;
        if torn > 0 {
            tracing::warn!(target: "flightrec::forward", torn, "spool: torn records cut off at open (lost)");
        }
        let shared = Arc::new(Shared::default());
        let sender = Sender {
            spool: spool.clone(),
            shared: shared.clone(),
            target: opts.target.clone(),
            tls,
            window: opts.window.max(1),
            backoff_min: opts.backoff_min,
            backoff_max: opts.backoff_max.max(opts.backoff_min),
        };
        let thread = std::thread::Builder::new()
            .name("flightrec-fwd".into())
            .spawn(move || sender.run())?;
        Ok(Forwarder {
            builder: MessageBuilder::new(origin, opts.format),
            spool,
            shared,
            thread: Some(thread),
            target: opts.target,
        })
    }

    fn spool_message(
        &self,
        build: impl FnOnce(u64, &mut String) -> io::Result<()>,
    ) -> io::Result<u64> {
        let result = self.spool.append(build);
        match &result {
            Ok(_) => self.shared.notify(),
            Err(e) => {
                let failed = self.shared.failed.fetch_add(1, Ordering::Relaxed) + 1;
                if failed == 1 {
                    tracing::error!(target: "flightrec::forward", error = %e, "record not forwarded: lost (counted in failed)");
                }
            }
        }
        result
    }

    /// Spools an audit event (a security kind); returns its sequence number once it is in
    /// the spool.
    pub fn audit(
        &self,
        unix_nanos: u64,
        level: Level,
        session: Option<SessionId>,
        event: &Decoded<'_>,
    ) -> io::Result<u64> {
        self.spool_message(|seq, out| {
            self.builder
                .audit(out, seq, unix_nanos, level, session, event)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
        })
    }

    /// Spools an audit item as the recorder queues it for the audit log.
    pub fn audit_item(&self, item: &crate::recorder::AuditItem) -> io::Result<u64> {
        let event = decode(item.kind, item.level, &item.payload).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, "audit item does not decode")
        })?;
        self.audit(item.time, item.level, item.session, &event)
    }

    /// Spools the notice of a trigger whose dump is due.
    pub fn trigger(&self, order: &DumpOrder) -> io::Result<u64> {
        self.spool_message(|seq, out| {
            self.builder.trigger(out, seq, order);
            Ok(())
        })
    }

    /// Spools the notice of a dump written.
    pub fn dump(&self, notice: &DumpNotice) -> io::Result<u64> {
        self.spool_message(|seq, out| {
            self.builder.dump(out, seq, notice);
            Ok(())
        })
    }

    /// The collector.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Counters.
    pub fn stats(&self) -> ForwardStats {
        let s = &self.shared;
        ForwardStats {
            sent: s.sent.load(Ordering::Relaxed),
            acked: s.acked.load(Ordering::Relaxed),
            spool: self.spool.stats(),
            failed: s.failed.load(Ordering::Relaxed),
            reconnects: s.reconnects.load(Ordering::Relaxed),
            connected: s.connected.load(Ordering::Relaxed),
            last_error: s
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Waits until every spooled message has been delivered, or `timeout`; true if so.
    pub fn drain(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while self.spool.stats().pending > 0 {
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Stops the sending thread (what is not delivered stays in the spool for next time).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.notify();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The sending thread.
struct Sender {
    spool: Arc<Spool>,
    shared: Arc<Shared>,
    target: Target,
    tls: Option<Arc<rustls::ClientConfig>>,
    window: usize,
    backoff_min: Duration,
    backoff_max: Duration,
}

/// How long a RELP window may wait for its answer before the connection is given up.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// How often an idle connection is looked at.
const IDLE_CHECK: Duration = Duration::from_millis(200);
/// Bytes written in one go.
const BATCH_BYTES: usize = 256 * 1024;

impl Sender {
    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    fn run(self) {
        let mut reader = Reader::new(self.spool.clone());
        let mut backoff = self.backoff_min;
        let mut failing: Option<String> = None;
        let mut connections = 0u64;
        while !self.stopping() {
            let result =
                transport::connect(&self.target, self.tls.as_ref()).and_then(|mut stream| {
                    connections += 1;
                    if connections > 1 {
                        self.shared.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    if matches!(self.target, Target::Relp(_)) {
                        relp_open(&mut stream)?;
                    }
                    self.shared.connected.store(true, Ordering::Relaxed);
                    tracing::info!(target: "flightrec::forward", collector = %self.target,
                    pending = self.spool.stats().pending, "connected to the collector");
                    failing = None;
                    backoff = self.backoff_min;
                    reader.rewind();
                    match self.target {
                        Target::Relp(_) => self.relp_session(&mut stream, &mut reader),
                        Target::Tcp(_) | Target::Tls { .. } => {
                            self.stream_session(&mut stream, &mut reader)
                        }
                    }
                });
            let was_connected = self.shared.connected.swap(false, Ordering::Relaxed);
            let Err(e) = result else { break };
            let text = e.to_string();
            if was_connected {
                tracing::warn!(target: "flightrec::forward", collector = %self.target, error = %text,
                    "connection to the collector lost; resending from the last acknowledged message");
            } else if failing.as_deref() != Some(text.as_str()) {
                tracing::warn!(target: "flightrec::forward", collector = %self.target, error = %text,
                    "cannot reach the collector; retrying with backoff, records stay in the spool");
            }
            *self
                .shared
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(text.clone());
            failing = Some(text);
            self.shared.wait(backoff);
            backoff = (backoff * 2).min(self.backoff_max);
        }
    }

    fn ack(&self, to: Cursor, n: u64) -> io::Result<()> {
        self.shared.acked.fetch_add(n, Ordering::Relaxed);
        self.spool.ack(to)
    }

    /// TCP and TLS: octet-counted messages; a message counts as delivered once written.
    fn stream_session(&self, stream: &mut Stream, reader: &mut Reader) -> io::Result<()> {
        let mut out = Vec::with_capacity(BATCH_BYTES + spool::MAX_MESSAGE);
        while !self.stopping() {
            out.clear();
            let mut last = None;
            let mut n = 0u64;
            while out.len() < BATCH_BYTES {
                let Some(e) = reader.next_entry()? else { break };
                transport::octet_counted(&mut out, &e.message);
                last = Some(e.end);
                n += 1;
            }
            let Some(last) = last else {
                stream.flush()?;
                if stream.peer_gone() {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the collector closed the connection",
                    ));
                }
                self.shared.wait(IDLE_CHECK);
                continue;
            };
            stream.write_all(&out)?;
            stream.flush()?;
            self.shared.sent.fetch_add(n, Ordering::Relaxed);
            self.ack(last, n)?;
        }
        Ok(())
    }

    /// RELP: up to `window` messages unanswered; each answer moves the spool on.
    fn relp_session(&self, stream: &mut Stream, reader: &mut Reader) -> io::Result<()> {
        let mut txnr = 1u32;
        let mut inflight: VecDeque<(u32, Cursor)> = VecDeque::new();
        let mut out = Vec::with_capacity(BATCH_BYTES + spool::MAX_MESSAGE);
        let mut inbuf = Vec::new();
        let mut waiting_since: Option<Instant> = None;
        let mut timeout = None;
        while !self.stopping() {
            out.clear();
            let mut n = 0u64;
            while inflight.len() < self.window && out.len() < BATCH_BYTES {
                let Some(e) = reader.next_entry()? else { break };
                txnr = transport::next_txnr(txnr);
                transport::relp_frame(&mut out, txnr, "syslog", &e.message);
                inflight.push_back((txnr, e.end));
                n += 1;
            }
            if n > 0 {
                stream.write_all(&out)?;
                stream.flush()?;
                self.shared.sent.fetch_add(n, Ordering::Relaxed);
            }
            if inflight.is_empty() {
                if stream.peer_gone() {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the collector closed the connection",
                    ));
                }
                self.shared.wait(IDLE_CHECK);
                continue;
            }
            // Answers: wait briefly if more could be sent, longer if the window is full.
            let room = inflight.len() < self.window;
            let wait = if room {
                Duration::from_millis(2)
            } else {
                IDLE_CHECK
            };
            read_timeout(stream, &mut timeout, wait)?;
            let mut acked = None;
            let mut k = 0u64;
            while let Some(f) = transport::relp_read(stream, &mut inbuf)? {
                match f.command.as_str() {
                    "rsp" => {
                        let Some((expected, end)) = inflight.pop_front() else {
                            return Err(relp_error(format!(
                                "answer to {} with nothing sent",
                                f.txnr
                            )));
                        };
                        if f.txnr != expected {
                            return Err(relp_error(format!(
                                "answer to {} where {expected} was due",
                                f.txnr
                            )));
                        }
                        if !transport::relp_ok(&f.data) {
                            return Err(relp_error(format!(
                                "the collector refused message {}: {}",
                                f.txnr,
                                String::from_utf8_lossy(&f.data)
                            )));
                        }
                        acked = Some(end);
                        k += 1;
                    }
                    "serverclose" => {
                        if let Some(end) = acked {
                            self.ack(end, k)?;
                        }
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "the collector closed the session (serverclose)",
                        ));
                    }
                    other => return Err(relp_error(format!("unexpected command {other:?}"))),
                }
                // Refill once half the window is answered: the pipe stays full.
                if inflight.len() <= self.window / 2 {
                    break;
                }
                read_timeout(stream, &mut timeout, Duration::from_millis(1))?;
            }
            if let Some(end) = acked {
                self.ack(end, k)?;
                waiting_since = None;
            } else if !inflight.is_empty() {
                let since = *waiting_since.get_or_insert_with(Instant::now);
                if since.elapsed() > ACK_TIMEOUT {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no RELP answer for 30 s",
                    ));
                }
            }
        }
        // Stopping: close the session politely, taking the answers still due (what stays
        // unanswered is resent next time).
        let close = transport::next_txnr(txnr);
        out.clear();
        transport::relp_frame(&mut out, close, "close", b"");
        stream.write_all(&out)?;
        stream.set_read_timeout(Duration::from_secs(1))?;
        let (mut acked, mut k) = (None, 0u64);
        while let Ok(Some(f)) = transport::relp_read(stream, &mut inbuf) {
            if f.txnr == close || f.command != "rsp" {
                break;
            }
            match inflight.pop_front() {
                Some((expected, end)) if expected == f.txnr && transport::relp_ok(&f.data) => {
                    acked = Some(end);
                    k += 1;
                }
                _ => break,
            }
        }
        match acked {
            Some(end) => self.ack(end, k),
            None => Ok(()),
        }
    }
}

/// Sets the stream's read timeout unless it is set to `t` already (a system call saved per
/// answer read).
fn read_timeout(stream: &Stream, current: &mut Option<Duration>, t: Duration) -> io::Result<()> {
    if *current != Some(t) {
        stream.set_read_timeout(t)?;
        *current = Some(t);
    }
    Ok(())
}

fn relp_error(text: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("RELP: {text}"))
}

/// Opens a RELP session (transaction 1) and checks the server's answer.
fn relp_open(stream: &mut Stream) -> io::Result<()> {
    let mut out = Vec::new();
    transport::relp_frame(&mut out, 1, "open", transport::relp_offer().as_bytes());
    stream.write_all(&out)?;
    stream.flush()?;
    stream.set_read_timeout(Duration::from_secs(10))?;
    let mut buf = Vec::new();
    let f = transport::relp_read(stream, &mut buf)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "RELP: no answer to open"))?;
    if f.txnr != 1 || f.command != "rsp" || !transport::relp_ok(&f.data) {
        return Err(relp_error(format!(
            "open refused: {} {} {}",
            f.txnr,
            f.command,
            String::from_utf8_lossy(&f.data)
        )));
    }
    Ok(())
}
