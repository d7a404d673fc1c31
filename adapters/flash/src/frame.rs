//! Assembling one log frame from the pieces a logger writes, and handing it to a recorder.
//! The defmt global logger (`crate::defmt_logger`, feature `defmt-logger`) builds on it;
//! this part has no defmt dependency, so it is tested on the host.

use flightrec_core::{Action, DumpOrder, Level, RecorderInner, RecorderSettings, RingStorage};

/// Largest frame kept; longer frames are dropped and counted.
pub const FRAME_MAX: usize = 128;

/// One frame being assembled.
pub struct FrameBuf {
    buf: [u8; FRAME_MAX],
    len: usize,
    overflow: bool,
}

impl FrameBuf {
    /// Empty.
    pub const fn new() -> Self {
        FrameBuf {
            buf: [0; FRAME_MAX],
            len: 0,
            overflow: false,
        }
    }

    /// Starts a new frame.
    pub fn start(&mut self) {
        self.len = 0;
        self.overflow = false;
    }

    /// Appends bytes; a frame that grows past [`FRAME_MAX`] is marked as overflowed.
    pub fn extend(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) if !self.overflow => {
                flightrec_core::bytes::copy(dst, bytes);
                self.len += bytes.len();
            }
            _ => self.overflow = true,
        }
    }

    /// The whole frame, or `None` if it overflowed.
    pub fn frame(&self) -> Option<&[u8]> {
        if self.overflow {
            None
        } else {
            self.buf.get(..self.len)
        }
    }
}

impl Default for FrameBuf {
    fn default() -> Self {
        Self::new()
    }
}

/// Where whole frames go. Called with the logger's critical section held: keep it short.
pub trait FrameSink: Sync {
    /// Records one frame (`None`: it was too long and is only counted).
    fn frame(&self, frame: Option<&[u8]>);
}

/// Something frames can be recorded into.
pub trait FrameRecorder: Sync {
    /// Records the frame as a [`flightrec_core::Kind::FRAME`] record.
    fn record_frame(&self, now: u64, level: Level, bytes: &[u8]) -> Action;
    /// Counts a frame that could not be kept.
    fn drop_frame(&self);
    /// Takes the order of the dump that is due, if one is.
    fn take_order(&self) -> Option<DumpOrder>;
}

impl<const N: usize, S, C, const SLOTS: usize, const DEPTH: usize> FrameRecorder
    for RecorderInner<N, S, C, SLOTS, DEPTH>
where
    S: RingStorage<N> + Send,
    C: RecorderSettings,
{
    fn record_frame(&self, now: u64, level: Level, bytes: &[u8]) -> Action {
        self.frame(now, level, None, bytes)
            .unwrap_or_else(|e| e.action)
    }
    fn drop_frame(&self) {
        self.note_dropped(1);
    }
    fn take_order(&self) -> Option<DumpOrder> {
        RecorderInner::take_order(self)
    }
}

/// Records frames into a recorder at [`Level::Debug`] (a logger does not see a defmt
/// frame's level: it is in the ELF), optionally forwarding each frame to another output
/// (a UART, RTT). A dump that a frame makes due (the end of a post-trigger window) waits in
/// the recorder for the application: take it with [`RecorderSink::take_order`] (or the
/// recorder's own `take_order`) and store it.
pub struct RecorderSink<R: 'static> {
    recorder: &'static R,
    now: fn() -> u64,
    forward: Option<fn(&[u8])>,
}

impl<R: FrameRecorder> RecorderSink<R> {
    /// Frames go to `recorder`, stamped with `now()`, and to `forward` if given.
    pub const fn new(recorder: &'static R, now: fn() -> u64, forward: Option<fn(&[u8])>) -> Self {
        RecorderSink {
            recorder,
            now,
            forward,
        }
    }

    /// The dump that is due, if any (taken: the next call returns `None`).
    pub fn take_order(&self) -> Option<DumpOrder> {
        self.recorder.take_order()
    }
}

impl<R: FrameRecorder> FrameSink for RecorderSink<R> {
    fn frame(&self, frame: Option<&[u8]>) {
        let Some(bytes) = frame else {
            self.recorder.drop_frame();
            return;
        };
        if let Some(forward) = self.forward {
            forward(bytes);
        }
        // A dump this frame makes due stays in the recorder until the application takes it.
        self.recorder
            .record_frame((self.now)(), Level::Debug, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightrec_core::dump::Source;
    use flightrec_core::{Read, Recorder, RecorderConfig, TriggerConfig};

    #[test]
    fn frames_are_assembled_and_overflow_is_caught() {
        let mut f = FrameBuf::new();
        f.start();
        f.extend(b"ab");
        f.extend(b"cd");
        assert_eq!(f.frame(), Some(&b"abcd"[..]));
        f.start();
        f.extend(&[0; FRAME_MAX]);
        assert_eq!(f.frame().map(<[u8]>::len), Some(FRAME_MAX));
        f.extend(b"x");
        assert_eq!(f.frame(), None);
        f.extend(b"");
        assert_eq!(f.frame(), None, "stays overflowed until the next frame");
        f.start();
        assert_eq!(f.frame(), Some(&b""[..]));
    }

    struct OneAfter;
    impl RecorderSettings for OneAfter {
        const CONFIG: RecorderConfig = RecorderConfig {
            trigger: TriggerConfig {
                post_records: 1,
                ..TriggerConfig::DEFAULT
            },
            ..RecorderConfig::DEFAULT
        };
    }
    static REC: Recorder<256, OneAfter> = Recorder::new();

    #[test]
    fn a_sink_records_forwards_and_keeps_due_dumps() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static FORWARDED: AtomicUsize = AtomicUsize::new(0);
        static SINK: RecorderSink<Recorder<256, OneAfter>> = RecorderSink::new(
            &REC,
            || 77,
            Some(|b| {
                FORWARDED.fetch_add(b.len(), Ordering::Relaxed);
            }),
        );
        SINK.frame(Some(b"\x01\x02"));
        SINK.frame(None);
        let stats = REC.stats().unwrap();
        assert_eq!((stats.ring.records, stats.dropped), (1, 1));
        assert_eq!(FORWARDED.load(Ordering::Relaxed), 2);
        let mut c = REC.oldest().unwrap();
        let mut out = [0u8; 8];
        let Ok(Read::Record { meta, len, .. }) = Source::read(&REC, &mut c, &mut out) else {
            panic!("a record");
        };
        assert_eq!(
            (meta.time, meta.level, &out[..len]),
            (77, Level::Debug, &b"\x01\x02"[..])
        );
        // A trigger fires; the next frame closes the window: the order waits for the app.
        assert_eq!(SINK.take_order(), None);
        REC.fire(flightrec_core::Reason::Manual, 78);
        SINK.frame(Some(b"\x03"));
        assert!(SINK.take_order().is_some());
        assert_eq!(SINK.take_order(), None);
    }
}
