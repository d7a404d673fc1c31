//! The multi-threaded recorder: one core [`Ring`] per shard, threads spread over the shards,
//! merged by time when a dump is written.
//!
//! Why shards: `flightrec_core::Recorder` keeps its ring and trigger machine in one critical
//! section, which on a daemon is a global lock every thread takes for every event. Here each
//! thread writes to its own shard (threads are given shards round-robin, so with at least as
//! many shards as busy threads no two threads share a lock), and only records that can fire
//! a trigger (security events, custom events, records at or above the trigger level, the
//! threshold's kind) take the trigger machine's lock.
//!
//! A dump copies every shard (one short lock each), merges their records by time into one
//! ring and writes it with core's [`write_dump`]: **one wire-format dump, records in time
//! order, sequence numbers `0..n` within that dump**. The header's `trigger_seq` names the
//! record that fired the trigger in that numbering.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use flightrec_core::dump::RecordHead;
use flightrec_core::event::{
    AuthFailure, AuthSuccess, Connect, Custom, Event, Field, Fields, Log, Logout, Peer,
    SessionForbidden,
};
use flightrec_core::ring::RecordMeta;
use flightrec_core::trigger::{Action, DumpOrder, Reason, RecordInfo, TriggerConfig};
use flightrec_core::{
    write_dump, Build, Clock, DumpHeader, Kind, Level, Ring, RingError, SessionId, TriggerMachine,
};
use tokio::sync::mpsc;

use crate::clock::UnixClock;
use crate::shardlock::ShardLock;

/// Bytes of one shard's ring.
pub const SHARD_BYTES: usize = 64 * 1024;
/// Most shards a recorder has (a merged dump holds all of them).
pub const MAX_SHARDS: usize = 32;
const MERGED_BYTES: usize = SHARD_BYTES * MAX_SHARDS;

/// Peers tracked by a per-peer threshold, and the deepest threshold count.
type Machine = TriggerMachine<64, 32>;

/// Process-wide counter giving each thread its shard slot.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// `slot % n` for `slot < 2^32`, given `magic = u64::MAX / n + 1` (wrapping).
#[inline]
fn fastmod(magic: u64, slot: u64, n: u64) -> usize {
    ((u128::from(magic.wrapping_mul(slot)) * u128::from(n)) >> 64) as usize
}

fn thread_slot() -> usize {
    SLOT.with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
        s.set(v);
        v
    })
}

/// A security event on its way to the audit log: its record, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditItem {
    /// Nanoseconds since the Unix epoch.
    pub time: u64,
    /// Its kind (a security kind).
    pub kind: Kind,
    /// Its level.
    pub level: Level,
    /// Its session.
    pub session: Option<SessionId>,
    /// The record's payload (postcard, as in a dump).
    pub payload: Vec<u8>,
}

/// Work for the writer task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Write a dump.
    Dump(DumpOrder),
    /// A trigger window opened: re-read the deadline.
    Wake,
    /// Write an audit line.
    Audit(AuditItem),
    /// Reopen every file.
    Reopen,
    /// Answer once everything queued before has been written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// How a [`FlightRecorder`] is built.
#[derive(Clone, Debug)]
pub struct RecorderOptions {
    /// Shards (rings of [`SHARD_BYTES`]); at most [`MAX_SHARDS`]. Default: twice the CPUs,
    /// at least 2.
    pub shards: usize,
    /// Lowest level recorded by the `log` bridge and the security-event API (the `tracing`
    /// layer takes its filter from `tracing_subscriber`; see [`crate::FlightLayer`]).
    pub min_level: Level,
    /// Trigger criteria. `post_records` is ignored (only records that can fire a trigger
    /// reach the machine); use `post_ticks` (nanoseconds) for a post-trigger window.
    pub trigger: TriggerConfig,
    /// Program name written into dumps.
    pub program: String,
    /// Program version written into dumps.
    pub version: String,
    /// This machine's name, for `{host}` in file names and as the audit host fallback.
    pub host: String,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        RecorderOptions {
            shards: (cpus * 2).clamp(2, MAX_SHARDS),
            min_level: Level::Trace,
            trigger: TriggerConfig {
                post_records: 0,
                post_ticks: 100_000_000,
                ..TriggerConfig::DEFAULT
            },
            program: "flightrec".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            host: crate::files::hostname(),
        }
    }
}

/// Counters of a [`FlightRecorder`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records stored, all shards.
    pub stored: u64,
    /// Records refused (too large, unencodable), as the shards' rings count them.
    pub failed: u64,
    /// Records evicted to make room (the normal life of a ring).
    pub evicted: u64,
    /// Queue items (audit lines, dump orders) dropped because the writer's queue was full.
    pub queue_dropped: u64,
    /// Audit lines dropped because the queue was full (also in `queue_dropped`).
    pub audit_dropped: u64,
    /// Dump orders dropped because the queue was full (also in `queue_dropped`), reported as
    /// suppressed in the next dump.
    pub dumps_dropped: u64,
}

#[repr(align(128))] // keep shards' locks on separate cache lines
struct Shard {
    ring: ShardLock<ShardInner>,
}

struct ShardInner {
    ring: Box<Ring<SHARD_BYTES>>,
    /// The shard's region of the ring file, if there is one.
    file: Option<crate::ringfile::Region>,
}

/// The recorder of a daemon: shared by the `tracing` layer, the `log` bridge, the security
/// event API, the signal and panic handlers and the writer task. Cheap to share (`Arc`).
///
/// ```
/// use flightrec_linux::{FlightRecorder, RecorderOptions};
/// use flightrec_core::{Level, SessionId};
/// let rec = FlightRecorder::new(RecorderOptions::default());
/// rec.log(Level::Debug, Some(SessionId(3)), "gw::login", "greeting sent", &[]);
/// let peer = "192.0.2.7:40000".parse().ok();
/// rec.auth_failure(Some(SessionId(3)), "alice", "example.org", peer, "PLAIN", "bad password");
/// assert_eq!(rec.stats().stored, 2);
/// ```
pub struct FlightRecorder {
    shards: Box<[Shard]>,
    /// `u64::MAX / shards + 1`: a thread's shard is its slot modulo the shard count,
    /// computed with two multiplications instead of a division (Lemire's fastmod).
    shard_magic: u64,
    clock: UnixClock,
    min_level: Level,
    trigger: Mutex<Machine>,
    trigger_level: Option<Level>,
    threshold_kind: Option<Kind>,
    queue: OnceLock<mpsc::Sender<Command>>,
    dumper: OnceLock<Arc<crate::dumpfile::DumpFiles>>,
    queue_dropped: AtomicU64,
    audit_dropped: AtomicU64,
    dumps_dropped: AtomicU32,
    dumps_dropped_total: AtomicU64,
    program: String,
    version: String,
    host: String,
    /// Declared last: dropped after the shards that write into it.
    _ring_file: Option<crate::ringfile::RingFile>,
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something did, the data is still whole
    // (every update is a single push), so keep going rather than lose the recorder.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An event's payload bytes, as the ring holds them; `None` if it does not encode to the
/// length it counted.
fn encode_vec<E: Event>(event: &E) -> Option<Vec<u8>> {
    let mut bytes = vec![0; event.encoded_len()];
    let len = flightrec_core::encode::to_slice(event, &mut bytes)?;
    (len == bytes.len()).then_some(bytes)
}

/// A core ring on the heap without building it on the stack first.
fn boxed_ring<const N: usize>() -> Box<Ring<N>> {
    let layout = std::alloc::Layout::new::<Ring<N>>();
    // SAFETY: the layout is not zero-sized (a ring has integer fields). `alloc_zeroed` gives
    // memory of that layout from the global allocator (or null, handled), which is what
    // `Box::from_raw` takes over. `Ring<N>` is a byte array and integers (no references, no
    // niches): all-zero bytes are a valid value, the same as `Ring::new()` (checked by the
    // `zeroed_ring_is_new` test).
    unsafe {
        let p = std::alloc::alloc_zeroed(layout).cast::<Ring<N>>();
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Box::from_raw(p)
    }
}

impl FlightRecorder {
    /// A recorder with empty rings.
    pub fn new(opts: RecorderOptions) -> Arc<Self> {
        Self::build(opts, None, Vec::new())
    }

    /// A recorder whose shards are also written to a crash-survivable ring file at `path`
    /// (created by `policy`'s rules, see [`crate::files`]; a file left by a previous run is
    /// kept as `PATH.prev`). `flightrec decode PATH` reads it after a crash; see
    /// [`crate::ringfile`].
    pub fn with_ring_file(
        opts: RecorderOptions,
        path: &Path,
        policy: &crate::files::FilePolicy,
    ) -> io::Result<Arc<Self>> {
        let shards = opts.shards.clamp(1, MAX_SHARDS);
        let build = Build {
            name: &opts.program,
            version: &opts.version,
            id: &[],
        };
        let (file, regions) = crate::ringfile::RingFile::create(path, shards, policy, &build)?;
        Ok(Self::build(opts, Some(file), regions))
    }

    fn build(
        opts: RecorderOptions,
        ring_file: Option<crate::ringfile::RingFile>,
        regions: Vec<crate::ringfile::Region>,
    ) -> Arc<Self> {
        let shards = opts.shards.clamp(1, MAX_SHARDS);
        let mut trigger = opts.trigger;
        trigger.post_records = 0;
        let mut regions = regions.into_iter();
        Arc::new(FlightRecorder {
            shard_magic: (u64::MAX / shards as u64).wrapping_add(1),
            shards: (0..shards)
                .map(|_| Shard {
                    ring: ShardLock::new(ShardInner {
                        ring: boxed_ring(),
                        file: regions.next(),
                    }),
                })
                .collect(),
            clock: UnixClock::new(),
            min_level: opts.min_level,
            trigger_level: trigger.level,
            threshold_kind: trigger.threshold.map(|t| t.kind),
            trigger: Mutex::new(TriggerMachine::new(trigger)),
            queue: OnceLock::new(),
            dumper: OnceLock::new(),
            queue_dropped: AtomicU64::new(0),
            audit_dropped: AtomicU64::new(0),
            dumps_dropped: AtomicU32::new(0),
            dumps_dropped_total: AtomicU64::new(0),
            program: opts.program,
            version: opts.version,
            host: opts.host,
            _ring_file: ring_file,
        })
    }

    /// Whether records also go to a ring file.
    pub fn has_ring_file(&self) -> bool {
        self._ring_file.is_some()
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

    #[inline]
    fn shard(&self) -> (usize, &Shard) {
        let n = self.shards.len() as u64; // at most MAX_SHARDS
                                          // Slots wrap at 2^32 threads: still round-robin.
        let slot = u64::from(thread_slot() as u32);
        let i = fastmod(self.shard_magic, slot, n);
        match self.shards.get(i) {
            Some(s) => (i, s),
            // Unreachable (i < n, n >= 1), but no panic path.
            None => (0, &self.shards[..][0]),
        }
    }

    /// Whether a record of this kind and level may fire a trigger (only those take the
    /// trigger machine's lock).
    #[inline]
    fn can_fire(&self, kind: Kind, level: Level) -> bool {
        kind.is_security()
            || kind == Kind::CUSTOM
            || self.trigger_level.is_some_and(|l| level >= l)
            || self.threshold_kind == Some(kind)
    }

    /// Stores one record in this thread's shard; returns its trigger identity.
    #[inline]
    fn push(
        &self,
        meta: &RecordMeta,
        push: impl FnOnce(&mut Ring<SHARD_BYTES>) -> Result<u64, RingError>,
        file_payload: &[u8],
    ) -> Option<u64> {
        let (i, shard) = self.shard();
        let result = {
            let mut inner = shard.ring.lock();
            let result = push(&mut inner.ring);
            if let (Ok(seq), Some(region)) = (result, inner.file.as_mut()) {
                region.write(&RecordHead::of(seq, meta), file_payload);
            }
            result
        };
        // Shard index in the top bits: unique across shards for the trigger machine. A
        // refused record is counted by its ring.
        result
            .ok()
            .map(|seq| ((i as u64) << 56) | (seq & ((1 << 56) - 1)))
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
        let seq = self.push(&meta, |ring| ring.push(&meta, payload), payload);
        if self.can_fire(Kind::LOG, level) {
            self.feed(&meta, seq, None, None);
        }
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

    /// Records any typed event, feeds the triggers, and queues security events for the
    /// audit log. Returns what the trigger machine decided.
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
        let bytes = (security || self.has_ring_file())
            .then(|| encode_vec(event))
            .flatten();
        let seq = if let Some(bytes) = bytes {
            let seq = self.push(&meta, |ring| ring.push(&meta, &bytes), &bytes);
            if security {
                self.queue_audit(&meta, bytes);
            }
            seq
        } else {
            // Also an event that did not encode as it counted: the ring refuses it and
            // counts it, as for any other record.
            self.push(&meta, |ring| ring.push_event(&meta, event), &[])
        };
        if self.can_fire(E::KIND, level) {
            self.feed(&meta, seq, event.peer(), event.name())
        } else {
            Action::None
        }
    }

    fn queue_audit(&self, meta: &RecordMeta, payload: Vec<u8>) {
        let item = AuditItem {
            time: meta.time,
            kind: meta.kind,
            level: meta.level,
            session: meta.session,
            payload,
        };
        if !self.send(Command::Audit(item)) {
            self.audit_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a command; false (and counted) if the queue is full or not running.
    fn send(&self, cmd: Command) -> bool {
        let sent = self.queue.get().is_some_and(|q| q.try_send(cmd).is_ok());
        if !sent {
            self.queue_dropped.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    fn feed(
        &self,
        meta: &RecordMeta,
        seq: Option<u64>,
        peer: Option<&flightrec_core::event::Addr>,
        name: Option<&str>,
    ) -> Action {
        let info = RecordInfo::of(meta, seq, peer, name);
        self.decide(|m| m.on_record(&info, meta.time))
    }

    /// Runs the trigger machine and carries out what it decided: a due dump's order is
    /// taken under the same lock and goes to the writer task with window starts.
    fn decide(&self, run: impl FnOnce(&mut Machine) -> Action) -> Action {
        let (action, order) = self.run_machine(run);
        self.act(action, order);
        action
    }

    /// Runs the trigger machine; what it decided and the due dump's order, taken.
    fn run_machine(&self, run: impl FnOnce(&mut Machine) -> Action) -> (Action, Option<DumpOrder>) {
        let mut machine = lock(&self.trigger);
        let action = run(&mut machine);
        (action, machine.take_order())
    }

    fn act(&self, action: Action, order: Option<DumpOrder>) {
        if let Some(order) = order {
            if !self.send(Command::Dump(order)) {
                self.dumps_dropped.fetch_add(1, Ordering::Relaxed);
                self.dumps_dropped_total.fetch_add(1, Ordering::Relaxed);
            }
        }
        match action {
            Action::Start(_) => {
                let _ = self.queue.get().map(|q| q.try_send(Command::Wake));
            }
            Action::None | Action::Dump(_) | Action::Suppressed(_) => {}
        }
    }

    /// A failed login. Fires the failed-login trigger and thresholds; goes to the audit log.
    pub fn auth_failure(
        &self,
        session: Option<SessionId>,
        user: &str,
        host: &str,
        peer: Option<SocketAddr>,
        mechanism: &str,
        reason: &str,
    ) -> Action {
        self.record(
            session,
            &AuthFailure {
                user,
                host,
                peer: peer.map(Peer::from),
                mechanism,
                reason,
            },
        )
    }

    /// A successful login; goes to the audit log.
    pub fn auth_success(
        &self,
        session: Option<SessionId>,
        user: &str,
        host: &str,
        peer: Option<SocketAddr>,
        mechanism: &str,
    ) -> Action {
        self.record(
            session,
            &AuthSuccess {
                user,
                host,
                peer: peer.map(Peer::from),
                mechanism,
            },
        )
    }

    /// A logout; goes to the audit log.
    pub fn logout(
        &self,
        session: Option<SessionId>,
        user: &str,
        host: &str,
        peer: Option<SocketAddr>,
    ) -> Action {
        self.record(
            session,
            &Logout {
                user,
                host,
                peer: peer.map(Peer::from),
            },
        )
    }

    /// A session refused by policy; goes to the audit log.
    pub fn session_forbidden(
        &self,
        session: Option<SessionId>,
        user: &str,
        host: &str,
        resource: &str,
    ) -> Action {
        self.record(
            session,
            &SessionForbidden {
                user,
                host,
                resource,
            },
        )
    }

    /// A new connection; goes to the audit log.
    pub fn connect(
        &self,
        session: Option<SessionId>,
        protocol: &str,
        peer: Option<SocketAddr>,
    ) -> Action {
        self.record(
            session,
            &Connect {
                protocol,
                peer: peer.map(Peer::from),
            },
        )
    }

    /// A named event from code: fires the named-event trigger when its name is configured.
    pub fn named_event(
        &self,
        session: Option<SessionId>,
        level: Level,
        name: &str,
        attributes: &[Field<'_>],
    ) -> Action {
        self.record(
            session,
            &Custom {
                level,
                name,
                attributes: Fields::Slice(attributes),
            },
        )
    }

    /// Reports a cause that is not a record (signal, policy, manual); a dump follows through
    /// the writer task (after the post-trigger window, within the rate limit).
    pub fn fire(&self, reason: Reason) -> Action {
        let now = self.clock.now();
        self.decide(|m| m.fire(reason, now))
    }

    /// Closes a timed post-trigger window whose end has come.
    pub(crate) fn poll(&self) -> Action {
        let now = self.clock.now();
        self.decide(|m| m.poll(now))
    }

    /// When the open post-trigger window ends (ns since the epoch).
    pub(crate) fn deadline(&self) -> Option<u64> {
        lock(&self.trigger).deadline()
    }

    pub(crate) fn attach(
        &self,
        queue: mpsc::Sender<Command>,
        dumper: Arc<crate::dumpfile::DumpFiles>,
    ) -> bool {
        self.queue.set(queue).is_ok() && self.dumper.set(dumper).is_ok()
    }

    /// Notes that the process is dying (panic): records `message` (in `session`), fires untimely death and
    /// writes the dump at once, on this thread (the writer task may never run again).
    pub fn untimely_death(&self, session: Option<SessionId>, message: &str) {
        self.log(Level::Error, session, "panic", message, &[]);
        let now = self.clock.now();
        let (_, order) = self.run_machine(|m| m.fire(Reason::UntimelyDeath, now));
        if let (Some(order), Some(dumper)) = (order, self.dumper.get()) {
            let _ = dumper.write(self, &order);
        }
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            queue_dropped: self.queue_dropped.load(Ordering::Relaxed),
            audit_dropped: self.audit_dropped.load(Ordering::Relaxed),
            dumps_dropped: self.dumps_dropped_total.load(Ordering::Relaxed),
            ..Stats::default()
        };
        for shard in self.shards.iter() {
            let r = shard.ring.lock().ring.stats();
            s.stored += r.next_seq;
            s.evicted += r.evicted;
            s.failed += r.rejected;
        }
        s
    }

    /// Writes the dump `order` asks for, merged from all shards, as wire-format bytes.
    pub fn dump_bytes(&self, order: &DumpOrder) -> Vec<u8> {
        let trigger_id = order.seq;
        let mut merged: Box<Ring<MERGED_BYTES>> = boxed_ring();
        let mut snapshot: Box<Ring<SHARD_BYTES>> = boxed_ring();
        let mut snaps: Vec<Box<Ring<SHARD_BYTES>>> = Vec::with_capacity(self.shards.len());
        let mut rejected = 0;
        for shard in self.shards.iter() {
            {
                let inner = shard.ring.lock();
                snapshot.clone_from(&inner.ring);
            }
            rejected += snapshot.stats().rejected;
            snaps.push(std::mem::replace(&mut snapshot, boxed_ring()));
        }
        let mut iters: Vec<_> = snaps.iter().map(|r| r.iter().peekable()).collect();
        let mut trigger_seq = None;
        let mut scratch = vec![0u8; SHARD_BYTES];
        loop {
            // Oldest head among the shards (few shards: a linear scan is fine).
            let mut best: Option<(usize, u64)> = None;
            for (i, it) in iters.iter_mut().enumerate() {
                if let Some(r) = it.peek() {
                    if best.is_none_or(|(_, t)| r.meta.time < t) {
                        best = Some((i, r.meta.time));
                    }
                }
            }
            let Some((i, _)) = best else { break };
            let Some(rec) = iters.get_mut(i).and_then(|it| it.next()) else {
                break;
            };
            let Some(payload) = rec.copy_to(&mut scratch) else {
                continue;
            };
            if let Ok(seq) = merged.push(&rec.meta, payload) {
                let id = ((i as u64) << 56) | (rec.seq & ((1 << 56) - 1));
                if trigger_id == Some(id) {
                    trigger_seq = Some(seq);
                }
            }
        }
        let suppressed = order
            .suppressed
            .saturating_add(self.dumps_dropped.swap(0, Ordering::Relaxed));
        let build = Build {
            name: &self.program,
            version: &self.version,
            id: &[],
        };
        let named = lock(&self.trigger).config().named;
        // Lost: records the shards' rings refused. (Audit lines dropped by a full queue are
        // not lost: their records are in the ring; a WARN record in the ring counts them.)
        let header = DumpHeader {
            trigger_seq,
            suppressed,
            ..DumpHeader::for_order(order, named, rejected, self.clock.info(), build)
        };
        let mut out = Vec::with_capacity(merged.stats().used + 4096);
        // Writing to a Vec cannot fail; a ring error would leave a dump without its end
        // frame, which a decoder reports as incomplete.
        let _ = write_dump(&mut out, &*merged, header, &mut scratch);
        out
    }

    /// A manual dump order now (for code that wants a dump without the trigger machine).
    pub fn manual_order(&self) -> DumpOrder {
        DumpOrder {
            reason: Reason::Manual,
            time: self.clock.now(),
            seq: None,
            session: None,
            suppressed: 0,
            index: 0,
        }
    }

    /// Time since the epoch as a [`Duration`] (for file name templates).
    pub(crate) fn wall(&self) -> Duration {
        Duration::from_nanos(self.clock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fastmod_is_modulo() {
        for n in 1..=MAX_SHARDS as u64 {
            let magic = (u64::MAX / n).wrapping_add(1);
            let slots = (0..1000).chain([u32::MAX as u64 - 1, u32::MAX as u64, 1 << 31]);
            for slot in slots {
                assert_eq!(fastmod(magic, slot, n), (slot % n) as usize, "{slot} % {n}");
            }
        }
    }

    #[test]
    fn zeroed_ring_is_new() {
        let z: Box<Ring<64>> = boxed_ring();
        assert_eq!(z.stats(), Ring::<64>::new().stats());
        let mut z = z;
        let meta = RecordMeta {
            time: 1,
            level: Level::Info,
            kind: Kind::FRAME,
            session: None,
        };
        for i in 0..10u8 {
            z.push(&meta, &[i; 10]).unwrap();
        }
        let seqs: Vec<u64> = z.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [8, 9]);
    }
}
