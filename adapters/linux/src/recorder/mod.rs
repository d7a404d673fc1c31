//! The multi-threaded recorder: one core [`Ring`](flightrec_core::Ring) per shard, threads
//! spread over the shards, merged by time when a dump is written.
//!
//! Where each part lives:
//!
//! | file | what |
//! |---|---|
//! | this one | [`FlightRecorder`]: building it, recording an event, counters |
//! | `options.rs` | [`RecorderOptions`] and what the recorder refuses; [`Stats`] |
//! | `shards.rs` | the shards: which thread writes where, the ring-file mirror, [`ShardSeq`](shards::ShardSeq) |
//! | `trigger.rs` | which records reach the trigger machine, and what follows its decisions |
//! | `queue.rs` | the writer task's queue: dump orders and audit lines |
//! | `merge.rs` | the dump's k-way merge of the shards, one record at a time |
//! | `dump.rs` | writing a dump: the merge through core's `write_dump_from` to a writer |
//! | `forensic.rs` | a dump as forensic text: the binary dump piped to the decoder's renderer |
//! | `salvage.rs` | the death dump of a run that died: its ring file's records, merged and dumped as a dump of ours |
//!
//! An event's path: [`FlightRecorder::record`] (or the `tracing` layer's `log_payload`)
//! stores it in the calling thread's shard, and, if it can fire a trigger, feeds the
//! trigger machine; a security event also goes to the audit log's queue. A due dump's order
//! goes to the writer task, which calls [`FlightRecorder::write_dump`].

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use flightrec_core::event::{Event, Field, Fields, Log};
use flightrec_core::ring::RecordMeta;
use flightrec_core::trigger::Action;
use flightrec_core::{Build, Clock, Kind, Level, SessionId, TriggerMachine};
use tokio::sync::mpsc;

use crate::clock::UnixClock;
use crate::config::ConfigError;
use crate::encode::FormatSink;

mod dump;
mod forensic;
mod merge;
mod options;
mod queue;
mod salvage;
mod shards;
mod trigger;

pub use options::{RecorderOptions, Stats};
pub use queue::AuditItem;
pub(crate) use queue::Command;
pub(crate) use salvage::death_dump;
pub use shards::{MAX_SHARDS, SHARD_BYTES};

use shards::Shards;
use trigger::Machine;

/// The recorder of a daemon: shared by the `tracing` layer, the `log` bridge, the code
/// recording security events, the signal and panic handlers and the writer task. Cheap to
/// share (`Arc`).
///
/// Security events are core's typed events, recorded with [`record`](Self::record): they
/// feed the triggers and go to the audit log.
///
/// ```
/// use flightrec_linux::{FlightRecorder, RecorderOptions};
/// use flightrec_core::event::AuthFailure;
/// use flightrec_core::{Level, SessionId};
/// let rec = FlightRecorder::new(RecorderOptions::default())?;
/// rec.log(Level::Debug, Some(SessionId(3)), "gw::login", "greeting sent", &[]);
/// let peer: std::net::SocketAddr = "192.0.2.7:40000".parse()?;
/// rec.record(Some(SessionId(3)), &AuthFailure {
///     user: "alice", host: "example.org", peer: Some(peer.into()),
///     mechanism: "PLAIN", reason: "bad password",
/// });
/// assert_eq!(rec.stats().stored, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FlightRecorder {
    shards: Shards,
    clock: UnixClock,
    min_level: Level,
    trigger: Mutex<Machine>,
    trigger_level: Option<Level>,
    threshold_kind: Option<Kind>,
    queue: OnceLock<mpsc::Sender<Command>>,
    dumper: OnceLock<Arc<crate::dumpfile::DumpFiles>>,
    /// The forwarder, if records go to a collector: audit events and trigger notices are
    /// in its spool before the call that made them returns.
    forward: OnceLock<Arc<crate::forward::Forwarder>>,
    queue_dropped: AtomicU64,
    audit_dropped: AtomicU64,
    /// Dump orders dropped since the last dump (reported as suppressed in the next).
    dumps_dropped: AtomicU32,
    dumps_dropped_total: AtomicU64,
    program: String,
    version: String,
    host: String,
    /// The ring file's place, to rename it at a clean stop.
    ring_file: Option<crate::ringfile::Place>,
    /// The ring files of runs that died, until their death dumps are written, and the
    /// one that could not be kept for it.
    left: Mutex<(Vec<crate::ringfile::Left>, Option<std::path::PathBuf>)>,
}

impl std::fmt::Debug for FlightRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightRecorder")
            .field("shards", &self.shards.len())
            .field("program", &self.program)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// An event's payload bytes, as the ring holds them; `None` if it does not encode to the
/// length it counted.
pub(crate) fn encode_vec<E: Event>(event: &E) -> Option<Vec<u8>> {
    let mut bytes = vec![0; event.encoded_len()];
    let len = flightrec_core::encode::to_slice(event, &mut bytes)?;
    (len == bytes.len()).then_some(bytes)
}

impl FlightRecorder {
    /// A recorder with empty rings. Fails, naming the option, on options it cannot honour
    /// (see [`RecorderOptions::check`]).
    pub fn new(opts: RecorderOptions) -> Result<Arc<Self>, ConfigError> {
        opts.check()?;
        Ok(Self::build(opts, None))
    }

    /// A recorder whose shards are also written to a crash-survivable ring file at `path`
    /// (created by `policy`'s rules, see [`crate::files`]). `flightrec decode PATH` reads it
    /// after a crash; see [`crate::ringfile`]. A file a previous run left at `path` means
    /// that run died (a clean stop renames it, [`close_ring_file`](Self::close_ring_file)):
    /// it is kept as `PATH.dead-K`, and the [`Service`](crate::Service) writes its records
    /// as its first dump, the death dump, then keeps it as `PATH.prev` (until then its bytes
    /// are held in memory: a recorder that never gets a service leaves the file waiting).
    /// Options it cannot honour are refused as
    /// [`io::ErrorKind::InvalidInput`], the error holding the [`ConfigError`].
    pub fn with_ring_file(
        opts: RecorderOptions,
        path: &Path,
        policy: &crate::files::FilePolicy,
    ) -> io::Result<Arc<Self>> {
        opts.check()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let build = Build {
            name: &opts.program,
            version: &opts.version,
            id: &[],
        };
        let file = crate::ringfile::create(path, opts.shards, policy, &build)?;
        Ok(Self::build(opts, Some(file)))
    }

    fn build(opts: RecorderOptions, file: Option<crate::ringfile::RingFile>) -> Arc<Self> {
        let trigger = opts.trigger;
        let (regions, left, not_kept, place) = match file {
            Some(f) => (f.regions, f.left, f.not_kept, Some(f.place)),
            None => (Vec::new(), Vec::new(), None, None),
        };
        Arc::new(FlightRecorder {
            ring_file: place,
            left: Mutex::new((left, not_kept)),
            shards: Shards::new(opts.shards, regions),
            clock: UnixClock::new(),
            min_level: opts.min_level,
            trigger_level: trigger.level,
            threshold_kind: trigger.threshold.map(|t| t.kind),
            trigger: Mutex::new(TriggerMachine::new(trigger)),
            queue: OnceLock::new(),
            dumper: OnceLock::new(),
            forward: OnceLock::new(),
            queue_dropped: AtomicU64::new(0),
            audit_dropped: AtomicU64::new(0),
            dumps_dropped: AtomicU32::new(0),
            dumps_dropped_total: AtomicU64::new(0),
            program: opts.program,
            version: opts.version,
            host: opts.host,
        })
    }

    /// Whether records also go to a ring file.
    pub fn has_ring_file(&self) -> bool {
        self.ring_file.is_some()
    }

    /// Marks a clean stop in the ring file, if there is one: it is renamed to `PATH.prev`,
    /// so the next run does not take this one for dead. [`Service::shutdown`] calls it; a
    /// program without a service calls it as it stops. Records still go to the renamed
    /// file until the recorder is dropped. Without a clean stop, the next run with a ring
    /// file at the same path writes what this one left as a death dump
    /// (`Service::start`).
    ///
    /// [`Service::shutdown`]: crate::Service::shutdown
    pub fn close_ring_file(&self) -> io::Result<()> {
        match &self.ring_file {
            Some(file) => file.close(),
            None => Ok(()),
        }
    }

    /// The ring files of runs that died, once (for their death dumps), and the one that
    /// could not be kept for it.
    pub(crate) fn take_left(&self) -> (Vec<crate::ringfile::Left>, Option<std::path::PathBuf>) {
        std::mem::take(&mut *self.left.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// `left`'s death dump is written: its file no longer waits for it (it becomes
    /// `PATH.prev`).
    pub(crate) fn left_dumped(&self, left: &crate::ringfile::Left) -> io::Result<()> {
        match &self.ring_file {
            Some(place) => place.dumped(left),
            None => Ok(()),
        }
    }

    /// The clock records are stamped with (nanoseconds since the Unix epoch).
    pub fn clock(&self) -> &UnixClock {
        &self.clock
    }

    /// This machine's name as configured.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Records a log line from its encoded payload (the `tracing` layer's path).
    #[inline]
    pub(crate) fn log_payload(&self, level: Level, session: Option<SessionId>, payload: &[u8]) {
        let meta = RecordMeta {
            time: self.clock.now(),
            level,
            kind: Kind::LOG,
            session,
        };
        let seq = self
            .shards
            .push(&meta, |ring| ring.push(&meta, payload), payload);
        if self.can_fire(Kind::LOG, level) {
            self.feed(&meta, seq, None, None);
        }
    }

    /// Records a log line in the callsite form (the `tracing` layer's path): stored as
    /// [`Kind::CALLSITE`], a log line for the triggers.
    #[inline]
    pub(crate) fn callsite_payload(
        &self,
        level: Level,
        session: Option<SessionId>,
        payload: &[u8],
    ) {
        let meta = RecordMeta {
            time: self.clock.now(),
            level,
            kind: Kind::CALLSITE,
            session,
        };
        let seq = self
            .shards
            .push(&meta, |ring| ring.push(&meta, payload), payload);
        if self.can_fire(Kind::LOG, level) {
            let meta = RecordMeta {
                kind: Kind::LOG,
                ..meta
            };
            self.feed(&meta, seq, None, None);
        }
    }

    /// Records a `log` record from a callsite with a static file name: in the callsite
    /// form once the callsite is in the table (its first record, in the full form, puts it
    /// there).
    pub(crate) fn log_site(
        &self,
        level: Level,
        target: &str,
        file: &'static str,
        line: u32,
        message: &std::fmt::Arguments<'_>,
    ) {
        if level < self.min_level {
            return;
        }
        crate::encode::with_encoders(|enc| {
            let lookup = enc.cache.log(level, target, file, line);
            if let crate::callsite::Lookup::Site(site) = lookup {
                enc.site.clear();
                match message.as_str() {
                    Some(text) => enc.site.message_str(text),
                    None => enc.site.message_display(message),
                }
                if let Some(payload) = enc.site.finish(site) {
                    self.callsite_payload(level, None, payload);
                }
                return;
            }
            enc.full.clear();
            match message.as_str() {
                Some(text) => enc.full.message_str(text),
                None => enc.full.message_display(message),
            }
            if let Some(payload) = enc.full.finish(target) {
                self.log_payload(level, None, payload);
            }
            if lookup == crate::callsite::Lookup::New {
                enc.cache
                    .learn_log(level, target, file, line, message.as_str());
            }
        });
    }

    /// Records a log line whose message is given as `fmt::Arguments` or text (the `log`
    /// bridge's path).
    pub(crate) fn log_fmt(
        &self,
        level: Level,
        session: Option<SessionId>,
        target: &str,
        message: &std::fmt::Arguments<'_>,
    ) {
        if level < self.min_level {
            return;
        }
        crate::encode::with_encoder(|enc| {
            match message.as_str() {
                Some(text) => enc.message_str(text),
                None => enc.message_display(message),
            }
            if let Some(payload) = enc.finish(target) {
                self.log_payload(level, session, payload);
            }
        });
    }

    /// Records a log line with fields.
    pub fn log(
        &self,
        level: Level,
        session: Option<SessionId>,
        target: &str,
        message: &str,
        fields: &[Field<'_>],
    ) {
        self.record(
            session,
            &Log {
                level,
                target,
                message,
                fields: Fields::Slice(fields),
            },
        );
    }

    /// Records any typed event (core's security events `AuthFailure`, `AuthSuccess`,
    /// `Logout`, `SessionForbidden`, `Connect`; `Custom` for a named event; `Log`), feeds
    /// the triggers, and queues security events for the audit log. Returns what the trigger
    /// machine decided.
    pub fn record<E: Event>(&self, session: Option<SessionId>, event: &E) -> Action {
        let level = event.level();
        if level < self.min_level && !E::KIND.is_security() {
            return Action::None;
        }
        let meta = RecordMeta {
            time: self.clock.now(),
            level,
            kind: E::KIND,
            session,
        };
        // The ring file and the audit log need the payload's bytes: encoded once, then
        // copied into the ring (security events are rare). Other events are encoded
        // straight into the ring, allocation-free.
        let security = E::KIND.is_security();
        let bytes = (security || self.ring_file.is_some())
            .then(|| encode_vec(event))
            .flatten();
        let seq = if let Some(bytes) = bytes {
            let seq = self
                .shards
                .push(&meta, |ring| ring.push(&meta, &bytes), &bytes);
            if security {
                self.queue_audit(&meta, bytes);
            }
            seq
        } else {
            // Also an event that did not encode as it counted: the ring refuses it and
            // counts it, as for any other record.
            self.shards
                .push(&meta, |ring| ring.push_event(&meta, event), &[])
        };
        if self.can_fire(E::KIND, level) {
            self.feed(&meta, seq, event.peer(), event.name())
        } else {
            Action::None
        }
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let (stored, evicted, failed) = self.shards.counts();
        Stats {
            stored,
            evicted,
            failed,
            queue_dropped: self.queue_dropped.load(Ordering::Relaxed),
            audit_dropped: self.audit_dropped.load(Ordering::Relaxed),
            dumps_dropped: self.dumps_dropped_total.load(Ordering::Relaxed),
        }
    }

    /// Time since the epoch as a [`Duration`] (for file name templates).
    pub(crate) fn wall(&self) -> Duration {
        Duration::from_nanos(self.clock.now())
    }
}
