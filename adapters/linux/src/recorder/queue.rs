//! The writer task's queue: dump orders and audit lines leave the producers here.
//!
//! Producers do not write files: they `try_send` on a bounded queue; when it is full (or no
//! writer task is attached) the item is dropped and counted, so memory stays bounded and
//! nothing is lost silently (dropped dump orders are reported as suppressed in the next
//! dump; a WARN record in the ring counts dropped items). The one exception is the
//! forwarder's spool: an audit event handed to a forwarder is appended to its on-disk spool
//! before the producer's call returns (one `write`, never the network), so a process killed
//! right after the call still forwards it on its next start.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use flightrec_core::ring::RecordMeta;
use flightrec_core::trigger::DumpOrder;
use flightrec_core::{Kind, Level, SessionId};
use tokio::sync::mpsc;

use super::FlightRecorder;

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

impl FlightRecorder {
    /// Connects the writer task: its queue, the dump files the panic hook writes to, and
    /// the forwarder, if any. False if a writer task is already attached.
    pub(crate) fn attach(
        &self,
        queue: mpsc::Sender<Command>,
        dumper: Arc<crate::dumpfile::DumpFiles>,
        forward: Option<Arc<crate::forward::Forwarder>>,
    ) -> bool {
        if self.queue.set(queue).is_err() || self.dumper.set(dumper).is_err() {
            return false;
        }
        forward.is_none_or(|f| self.forward.set(f).is_ok())
    }

    /// Spools a security event's record for the forwarder (if any: it counts and says its
    /// own failures), then queues it for the audit log.
    pub(super) fn queue_audit(&self, meta: &RecordMeta, payload: Vec<u8>) {
        let item = AuditItem {
            time: meta.time,
            kind: meta.kind,
            level: meta.level,
            session: meta.session,
            payload,
        };
        if let Some(f) = self.forward.get() {
            let _ = f.audit_item(&item);
        }
        if !self.send(Command::Audit(item)) {
            self.audit_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Spools the notice of a trigger whose dump is due, if records are forwarded (the
    /// forwarder counts and says its own failures).
    pub(super) fn forward_trigger(&self, order: &DumpOrder) {
        if let Some(f) = self.forward.get() {
            let _ = f.trigger(order);
        }
    }

    /// Queues a due dump.
    pub(super) fn queue_dump(&self, order: DumpOrder) {
        if !self.send(Command::Dump(order)) {
            self.dumps_dropped.fetch_add(1, Ordering::Relaxed);
            self.dumps_dropped_total.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Tells the writer task that a post-trigger window opened (it re-reads the deadline).
    /// Not counted when dropped: a full queue wakes the task anyway.
    pub(super) fn wake_writer(&self) {
        let _ = self.queue.get().map(|q| q.try_send(Command::Wake));
    }

    /// Queues a command; false (and counted) if the queue is full or not running.
    fn send(&self, cmd: Command) -> bool {
        let sent = self.queue.get().is_some_and(|q| q.try_send(cmd).is_ok());
        if !sent {
            self.queue_dropped.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    /// Dump orders dropped since the last dump, now reported (taken: the next dump reports
    /// those dropped after it).
    pub(super) fn take_dumps_dropped(&self) -> u32 {
        self.dumps_dropped.swap(0, Ordering::Relaxed)
    }
}
