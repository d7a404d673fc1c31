//! The recorder's trigger machine: which records reach it, and what is done with what it
//! decides (a due dump's order goes to the writer task; a panic dumps at once).
//!
//! Only records that can fire a trigger (security events, custom events, records at or
//! above the trigger level, the threshold's kind) take the machine's lock, so the hot path
//! of an ordinary log line never does.

use std::sync::{Mutex, MutexGuard};

use flightrec_core::event::Addr;
use flightrec_core::ring::RecordMeta;
use flightrec_core::trigger::{Action, DumpOrder, Reason, RecordInfo};
use flightrec_core::{Clock, Kind, Level, SessionId, TriggerMachine};

use super::shards::ShardSeq;
use super::FlightRecorder;

/// Most events a threshold counts.
pub(crate) const THRESHOLD_DEPTH: usize = 32;
/// Peers tracked by a per-peer threshold.
const THRESHOLD_PEERS: usize = 64;

/// The recorder's trigger machine.
pub(crate) type Machine = TriggerMachine<THRESHOLD_PEERS, THRESHOLD_DEPTH>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something did, the data is still whole
    // (every update is a single step of the machine), so keep going rather than lose the
    // recorder.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FlightRecorder {
    /// Whether a record of this kind and level may fire a trigger (only those take the
    /// trigger machine's lock).
    #[inline]
    pub(super) fn can_fire(&self, kind: Kind, level: Level) -> bool {
        kind.is_security()
            || kind == Kind::CUSTOM
            || self.trigger_level.is_some_and(|l| level >= l)
            || self.threshold_kind == Some(kind)
    }

    /// Feeds a stored record (`seq`: its identity, `None` if the ring refused it) to the
    /// trigger machine.
    pub(super) fn feed(
        &self,
        meta: &RecordMeta,
        seq: Option<ShardSeq>,
        peer: Option<&Addr>,
        name: Option<&str>,
    ) -> Action {
        let info = RecordInfo::of(meta, seq.map(ShardSeq::raw), peer, name);
        self.decide(|m| m.on_record(&info, meta.time))
    }

    /// Runs the trigger machine and carries out what it decided: a due dump's order is
    /// taken under the same lock and goes to the writer task with window starts.
    fn decide(&self, run: impl FnOnce(&mut Machine) -> Action) -> Action {
        let (action, order) = self.run_machine(run);
        if let Some(order) = order {
            self.forward_trigger(&order);
            self.queue_dump(order);
        }
        if let Action::Start(_) = action {
            self.wake_writer();
        }
        action
    }

    /// Runs the trigger machine; what it decided and the due dump's order, taken.
    fn run_machine(&self, run: impl FnOnce(&mut Machine) -> Action) -> (Action, Option<DumpOrder>) {
        let mut machine = lock(&self.trigger);
        let action = run(&mut machine);
        (action, machine.take_order())
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

    /// Notes that the process is dying (panic): records `message` (in `session`), fires
    /// untimely death and writes the dump at once, on this thread (the writer task may never
    /// run again). With a forwarder, the trigger and the dump's notice go to its spool
    /// (never to the network; a spool another thread holds is waited for briefly, bounded).
    pub fn untimely_death(&self, session: Option<SessionId>, message: &str) {
        self.log(Level::Error, session, "panic", message, &[]);
        let now = self.clock.now();
        let (_, order) = self.run_machine(|m| m.fire(Reason::UntimelyDeath, now));
        if let Some(order) = order {
            self.forward_trigger(&order);
            if let Some(dumper) = self.dumper.get() {
                let _ = dumper.write(self, &order);
            }
        }
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
}
