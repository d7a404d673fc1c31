//! The writer task: dumps, audit lines, signals, the post-trigger timer, expiry.
//!
//! Producers never touch a disk: they put dump orders and audit lines on a bounded queue
//! (`try_send`; when it is full the item is dropped and counted, so memory stays bounded)
//! and this task does the writing. Signal handlers only set a flag (tokio's signal driver);
//! the dump or reopen happens here.

use std::io::{self, Write as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flightrec_core::trigger::Reason;
use flightrec_core::{Clock, Level};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::auditlog::{AuditLog, AuditOptions};
use crate::dumpfile::{DumpFiles, DumpOptions};
use crate::forward::{ForwardStats, Forwarder};
use crate::recorder::{Command, FlightRecorder};
use crate::stats::{Counters, Lost, ServiceStats, Source};

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
///
/// Nothing it loses is silent: every audit line and dump ends up written or lost in
/// [`stats`](Self::stats), every refusal and write error is counted there and said once per
/// cause (stderr, and an ERROR record `flightrec` in the ring), and [`flush`](Self::flush)
/// returns an error when something was lost since the previous flush.
#[derive(Debug)]
pub struct Service {
    rec: Arc<FlightRecorder>,
    tx: mpsc::Sender<Command>,
    task: JoinHandle<()>,
    dumper: Arc<DumpFiles>,
    counters: Arc<Counters>,
    flushed: Mutex<ServiceStats>,
    forward: Option<Arc<Forwarder>>,
}

impl Service {
    /// Starts the writer task on the current tokio runtime and connects `rec` to it.
    /// Fails if `rec` already has a writer, or a signal handler cannot be installed.
    pub fn start(rec: Arc<FlightRecorder>, opts: ServiceOptions) -> io::Result<Service> {
        Self::start_with(rec, opts, None)
    }

    /// As [`start`](Self::start), and hands audit events, trigger firings and dump
    /// notices to `forward` as well ([`crate::Config::forwarder`] builds it): each is in
    /// the forwarder's spool before the call that made it returns (the record call, the
    /// dump's write, the panic hook's dump).
    pub fn start_with(
        rec: Arc<FlightRecorder>,
        opts: ServiceOptions,
        forward: Option<Forwarder>,
    ) -> io::Result<Service> {
        let forward = forward.map(Arc::new);
        let (tx, rx) = mpsc::channel(opts.queue.max(1));
        let counters = Arc::new(Counters::default());
        let dumper = Arc::new(DumpFiles::with_counters(
            opts.dump.clone(),
            rec.host(),
            counters.clone(),
        ));
        let dump_sig = opts
            .dump_signal
            .map(|s| signal(SignalKind::from_raw(s)).map(|h| (s, h)))
            .transpose()?;
        let hup = if opts.reopen_on_hup {
            Some(signal(SignalKind::hangup())?)
        } else {
            None
        };
        if let Some(path) = &opts.dump.seal_key {
            let key = crate::sealkey::KeyFile::open(path).map_err(|e| {
                io::Error::new(e.kind(), format!("dump seal key {}: {e}", path.display()))
            })?;
            dumper.seal_with(key);
        }
        if let Some(f) = &forward {
            dumper.forward_to(f.clone());
        }
        if !rec.attach(tx.clone(), dumper.clone(), forward.clone()) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "this recorder already has a writer task",
            ));
        }
        let audit = opts
            .audit
            .map(|a| AuditLog::with_counters(a, rec.host(), counters.clone()));
        let task = tokio::spawn(run(
            rec.clone(),
            rx,
            dumper.clone(),
            audit,
            dump_sig,
            hup,
            counters.clone(),
        ));
        Ok(Service {
            rec,
            tx,
            task,
            dumper,
            counters,
            flushed: Mutex::new(ServiceStats::default()),
            forward,
        })
    }

    /// The forwarder's counters (sent, acknowledged, spooled, dropped, reconnects), if
    /// records are forwarded.
    pub fn forward_stats(&self) -> Option<ForwardStats> {
        self.forward.as_ref().map(|f| f.stats())
    }

    /// Waits until everything queued before this call has been written, then returns the
    /// counts, or [`Lost`] if an audit line or a dump was lost since the previous flush
    /// (refused file, write error, full queue).
    pub async fn flush(&self) -> Result<ServiceStats, Lost> {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Command::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
        let total = self.stats();
        let mut flushed = self.flushed.lock().unwrap_or_else(|e| e.into_inner());
        let since_last = total.since(&flushed);
        *flushed = total;
        if since_last.lost() > 0 {
            Err(Lost { since_last, total })
        } else {
            Ok(total)
        }
    }

    /// The counts as of now (current for what was queued before the last
    /// [`flush`](Self::flush)): lines and dumps written and lost (the queue's drops
    /// included), refusals by cause, tightened modes, I/O errors.
    pub fn stats(&self) -> ServiceStats {
        let mut s = self.counters.snapshot();
        let queue = self.rec.stats();
        s.audit_lines_lost += queue.audit_dropped;
        s.dumps_lost += queue.dumps_dropped;
        s
    }

    /// Reopens every file, as `SIGHUP` does.
    pub async fn reopen(&self) {
        let _ = self.tx.send(Command::Reopen).await;
    }

    /// The dump files (counters).
    pub fn dumps(&self) -> &DumpFiles {
        &self.dumper
    }

    /// Audit lines written so far (whole in their file).
    pub fn audit_lines(&self) -> u64 {
        self.counters.snapshot().audit_lines_written
    }

    /// The recorder.
    pub fn recorder(&self) -> &Arc<FlightRecorder> {
        &self.rec
    }

    /// Flushes, then stops the task and marks a clean stop in the ring file
    /// ([`FlightRecorder::close_ring_file`]: the next run writes no death dump for this
    /// one); the last flush's result.
    pub async fn shutdown(self) -> Result<ServiceStats, Lost> {
        let result = self.flush().await;
        self.task.abort();
        let _ = self.task.await;
        if let Err(e) = self.rec.close_ring_file() {
            // Not lost: the next run takes this one for dead and dumps its ring file.
            let _ = writeln!(io::stderr(), "flightrec: ring file not closed: {e}");
        }
        result
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
async fn run(
    rec: Arc<FlightRecorder>,
    mut rx: mpsc::Receiver<Command>,
    dumper: Arc<DumpFiles>,
    mut audit: Option<AuditLog>,
    mut dump_sig: Option<(i32, Signal)>,
    mut hup: Option<Signal>,
    counters: Arc<Counters>,
) {
    dump_left(&rec, &dumper, &counters);
    if let Some(a) = audit.as_mut() {
        a.expire();
    }
    record_notes(&rec, &counters);
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
                    handle(&rec, &dumper, &mut audit, &counters, cmd);
                    taken += 1;
                    if taken < 4096 {
                        pending = rx.try_recv().ok();
                    }
                }
                if let Some(a) = audit.as_mut() {
                    // Counted and said by the audit log.
                    let _ = a.flush();
                }
                record_notes(&rec, &counters);
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
                reopen(&mut audit);
                record_notes(&rec, &counters);
            }
            () = tokio::time::sleep_until(wake) => {
                rec.poll();
                if tokio::time::Instant::now() >= next_expiry {
                    if let Some(a) = audit.as_mut() {
                        a.expire();
                    }
                    record_notes(&rec, &counters);
                    next_expiry = tokio::time::Instant::now() + EXPIRY_EVERY;
                }
            }
        }
    }
}

/// Writes the death dumps of the ring files runs that died left (oldest first), before
/// any other dump (sealed and forwarded as they are), and says so. A file whose dump fails
/// keeps waiting for the next run.
fn dump_left(rec: &FlightRecorder, dumper: &DumpFiles, counters: &Counters) {
    let (left, not_kept) = rec.take_left();
    if let Some(path) = not_kept {
        counters.lost(Source::Dump, 1);
        counters.say(
            "the previous run died",
            format!(
                "its ring file is kept as {} but not dumped: {} files of runs that died wait \
                 for their death dumps already",
                path.display(),
                crate::ringfile::PENDING_MAX
            ),
        );
    }
    let mut deaths = Vec::new();
    for file in &left {
        match crate::recorder::death_dump(file) {
            Ok(death) => deaths.push((file, death)),
            Err(e) => {
                counters.lost(Source::Dump, 1);
                counters.failed(Source::Dump, "death dump failed", &e);
            }
        }
    }
    deaths.sort_by_key(|(_, death)| death.as_ref().map_or(0, |d| d.order.time));
    for (file, death) in deaths {
        let shown = file.path.display();
        let said = match death {
            Some(death) => match dumper.write_wire(rec, &death.order, &death.wire) {
                Ok(path) => format!(
                    "its ring file {shown}: {} records dumped to {} ({} lost)",
                    death.records,
                    path.display(),
                    death.lost
                ),
                // Counted and said by the dump files; the file waits for the next run.
                Err(_) => continue,
            },
            None => format!("its ring file {shown} holds no record"),
        };
        counters.say("the previous run died", said);
        if let Err(e) = rec.left_dumped(file) {
            // The dump is written; the next run would dump the file again (a duplicate,
            // not a loss).
            counters.failed(Source::Dump, "ring file not renamed", &e);
        }
    }
}

fn reopen(audit: &mut Option<AuditLog>) {
    // Dump files are opened per dump: nothing to do for them. Errors are counted and said
    // by the audit log.
    if let Some(a) = audit.as_mut() {
        let _ = a.reopen();
    }
}

/// Records what was said (a failure's first occurrence per cause) as ERROR records in the
/// ring, so the next dump shows it.
fn record_notes(rec: &FlightRecorder, counters: &Counters) {
    for (what, text) in counters.take_notes() {
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
}

fn handle(
    rec: &FlightRecorder,
    dumper: &DumpFiles,
    audit: &mut Option<AuditLog>,
    counters: &Counters,
    cmd: Command,
) {
    match cmd {
        Command::Dump(order) => {
            // Counted and said by the dump files (its notice, if forwarded, by the forwarder).
            let _ = dumper.write(rec, &order);
        }
        Command::Wake => {}
        Command::Audit(item) => {
            if let Some(a) = audit.as_mut() {
                a.add(&item);
            }
        }
        Command::Reopen => reopen(audit),
        Command::Flush(done) => {
            if let Some(a) = audit.as_mut() {
                let _ = a.flush();
            }
            record_notes(rec, counters);
            let _ = done.send(());
        }
    }
}

/// Installs a panic hook that records the panic (in the session of the current `tracing`
/// span, if any), dumps with reason "untimely death" on the panicking thread (before the
/// process dies), then runs the previous hook.
///
/// The hook never waits on a file or on the writer: the dump file is opened non-blocking
/// and refused if it is not a regular file (a FIFO at the path is not waited on), and if
/// the writer task is writing a dump at that moment the panic's dump goes to a file of its
/// own (see [`DumpFiles`]).
pub fn install_panic_hook(rec: Arc<FlightRecorder>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info.to_string();
        rec.untimely_death(crate::layer::current_session(), &text);
        previous(info);
    }));
}
