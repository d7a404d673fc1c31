//! The writer task: dumps, audit lines, signals, the post-trigger timer, expiry.
//!
//! Producers never touch a disk: they put dump orders and audit lines on a bounded queue
//! (`try_send`; when it is full the item is dropped and counted, so memory stays bounded)
//! and this task does the writing. Signal handlers only set a flag (tokio's signal driver);
//! the dump or reopen happens here.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flightrec_core::trigger::Reason;
use flightrec_core::{Clock, Level};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::auditlog::{AuditLog, AuditOptions};
use crate::dumpfile::{DumpFiles, DumpOptions};
use crate::forward::{DumpNotice, ForwardStats, Forwarder};
use crate::recorder::{Command, FlightRecorder};

/// How the writer task runs.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    /// Dump files.
    pub dump: DumpOptions,
    /// Audit log (none: security events are only recorded in the ring).
    pub audit: Option<AuditOptions>,
    /// Items the queue holds before producers' items are dropped (and counted).
    pub queue: usize,
    /// Signal that dumps (default `SIGUSR2`); `None`: no signal dumps.
    pub dump_signal: Option<i32>,
    /// Reopen every file on `SIGHUP`.
    pub reopen_on_hup: bool,
}

/// The running writer task.
#[derive(Debug)]
pub struct Service {
    rec: Arc<FlightRecorder>,
    tx: mpsc::Sender<Command>,
    task: JoinHandle<()>,
    dumper: Arc<DumpFiles>,
    audit_lines: Arc<AtomicU64>,
    forward: Option<Arc<Forwarder>>,
}

impl Service {
    /// Starts the writer task on the current tokio runtime and connects `rec` to it.
    /// Fails if `rec` already has a writer, or a signal handler cannot be installed.
    pub fn start(rec: Arc<FlightRecorder>, opts: ServiceOptions) -> io::Result<Service> {
        Self::start_with(rec, opts, None)
    }

    /// As [`start`](Self::start), and hands audit events, trigger firings and dump
    /// notices to `forward` as well ([`crate::Config::forwarder`] builds it).
    pub fn start_with(
        rec: Arc<FlightRecorder>,
        opts: ServiceOptions,
        forward: Option<Forwarder>,
    ) -> io::Result<Service> {
        let forward = forward.map(Arc::new);
        let (tx, rx) = mpsc::channel(opts.queue.max(1));
        let dumper = Arc::new(DumpFiles::new(opts.dump.clone(), rec.host()));
        let dump_sig = opts
            .dump_signal
            .map(|s| signal(SignalKind::from_raw(s)).map(|h| (s, h)))
            .transpose()?;
        let hup = if opts.reopen_on_hup {
            Some(signal(SignalKind::hangup())?)
        } else {
            None
        };
        if !rec.attach(tx.clone(), dumper.clone()) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "this recorder already has a writer task",
            ));
        }
        let audit = opts.audit.map(|a| AuditLog::new(a, rec.host()));
        let audit_lines = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run(
            rec.clone(),
            rx,
            dumper.clone(),
            audit,
            dump_sig,
            hup,
            audit_lines.clone(),
            forward.clone(),
        ));
        Ok(Service {
            rec,
            tx,
            task,
            dumper,
            audit_lines,
            forward,
        })
    }

    /// The forwarder's counters (sent, acknowledged, spooled, dropped, reconnects), if
    /// records are forwarded.
    pub fn forward_stats(&self) -> Option<ForwardStats> {
        self.forward.as_ref().map(|f| f.stats())
    }

    /// Waits until everything queued before this call has been written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Command::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Reopens every file, as `SIGHUP` does.
    pub async fn reopen(&self) {
        let _ = self.tx.send(Command::Reopen).await;
    }

    /// The dump files (counters).
    pub fn dumps(&self) -> &DumpFiles {
        &self.dumper
    }

    /// Audit lines written so far.
    pub fn audit_lines(&self) -> u64 {
        self.audit_lines.load(Ordering::Relaxed)
    }

    /// The recorder.
    pub fn recorder(&self) -> &Arc<FlightRecorder> {
        &self.rec
    }

    /// Flushes, then stops the task.
    pub async fn shutdown(self) {
        self.flush().await;
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn next_signal(s: &mut Option<(i32, Signal)>) -> i32 {
    match s {
        Some((n, h)) => match h.recv().await {
            Some(()) => *n,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

async fn next_hup(s: &mut Option<Signal>) {
    match s {
        Some(h) => {
            if h.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

const EXPIRY_EVERY: Duration = Duration::from_secs(3600);

// The task's whole state, handed over once at spawn.
#[allow(clippy::too_many_arguments)]
async fn run(
    rec: Arc<FlightRecorder>,
    mut rx: mpsc::Receiver<Command>,
    dumper: Arc<DumpFiles>,
    mut audit: Option<AuditLog>,
    mut dump_sig: Option<(i32, Signal)>,
    mut hup: Option<Signal>,
    audit_lines: Arc<AtomicU64>,
    forward: Option<Arc<Forwarder>>,
) {
    if let Some(a) = audit.as_mut() {
        a.expire();
    }
    let mut next_expiry = tokio::time::Instant::now() + EXPIRY_EVERY;
    let mut reported_drops = 0;
    loop {
        let now = rec.clock().now();
        let wake = match rec.deadline() {
            Some(d) => tokio::time::Instant::now() + Duration::from_nanos(d.saturating_sub(now)),
            None => next_expiry,
        }
        .min(next_expiry);
        tokio::select! {
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break };
                let mut pending = Some(cmd);
                // Take what is queued in one go: audit lines of a burst share one write.
                let mut taken = 0;
                while let Some(cmd) = pending.take() {
                    handle(&rec, &dumper, &mut audit, forward.as_deref(), cmd);
                    taken += 1;
                    if taken < 4096 {
                        pending = rx.try_recv().ok();
                    }
                }
                if let Some(a) = audit.as_mut() {
                    if let Err(e) = a.flush() {
                        note_error(&rec, "audit write failed", &e);
                    }
                    audit_lines.store(a.lines(), Ordering::Relaxed);
                }
                let drops = rec.stats().queue_dropped;
                if drops != reported_drops {
                    let n = (drops - reported_drops).to_string();
                    rec.log(Level::Warn, None, "flightrec", "writer queue full: items dropped",
                        &[flightrec_core::event::Field { name: "dropped",
                            value: flightrec_core::event::Value::Str(&n) }]);
                    reported_drops = drops;
                }
            }
            sig = next_signal(&mut dump_sig) => {
                rec.fire(Reason::Signal(u8::try_from(sig).unwrap_or(u8::MAX)));
            }
            () = next_hup(&mut hup) => {
                reopen(&rec, &mut audit);
            }
            () = tokio::time::sleep_until(wake) => {
                rec.poll();
                if tokio::time::Instant::now() >= next_expiry {
                    if let Some(a) = audit.as_mut() {
                        a.expire();
                    }
                    next_expiry = tokio::time::Instant::now() + EXPIRY_EVERY;
                }
            }
        }
    }
}

fn reopen(rec: &FlightRecorder, audit: &mut Option<AuditLog>) {
    // Dump files are opened per dump: nothing to do for them.
    if let Some(a) = audit.as_mut() {
        if let Err(e) = a.reopen() {
            note_error(rec, "audit write failed", &e);
        }
    }
}

fn note_error(rec: &FlightRecorder, what: &str, e: &io::Error) {
    let text = e.to_string();
    rec.log(
        Level::Error,
        None,
        "flightrec",
        what,
        &[flightrec_core::event::Field {
            name: "error",
            value: flightrec_core::event::Value::Str(&text),
        }],
    );
}

fn handle(
    rec: &FlightRecorder,
    dumper: &DumpFiles,
    audit: &mut Option<AuditLog>,
    forward: Option<&Forwarder>,
    cmd: Command,
) {
    match cmd {
        Command::Dump(order) => {
            // The forwarder counts and logs its own failures.
            if let Some(f) = forward {
                let _ = f.trigger(&order);
            }
            let written = dumper.write_noting(rec, &order, |bytes, path| {
                if let Some(f) = forward {
                    let _ = f.dump(&DumpNotice::of_dump(&order, bytes, &path.to_string_lossy()));
                }
            });
            if let Err(e) = written {
                note_error(rec, "dump failed", &e);
            }
        }
        Command::Wake => {}
        Command::Audit(item) => {
            if let Some(f) = forward {
                let _ = f.audit_item(&item);
            }
            if let Some(a) = audit.as_mut() {
                a.add(&item);
            }
        }
        Command::Reopen => reopen(rec, audit),
        Command::Flush(done) => {
            if let Some(a) = audit.as_mut() {
                if let Err(e) = a.flush() {
                    note_error(rec, "audit write failed", &e);
                }
            }
            let _ = done.send(());
        }
    }
}

/// Installs a panic hook that records the panic (in the session of the current `tracing`
/// span, if any), dumps with reason "untimely death" on the panicking thread (before the
/// process dies), then runs the previous hook.
pub fn install_panic_hook(rec: Arc<FlightRecorder>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info.to_string();
        rec.untimely_death(crate::layer::current_session(), &text);
        previous(info);
    }));
}
