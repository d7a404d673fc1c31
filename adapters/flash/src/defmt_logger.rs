//! A `#[defmt::global_logger]` that records every defmt frame as one
//! [`flightrec_core::Kind::FRAME`] record (feature `defmt-logger`).
//!
//! Each record holds the bytes defmt's encoder produced for one log call: with defmt's
//! `encoding-raw` feature (what the firmware example uses, and what `flightrec decode
//! --elf` reads) the raw frame; with the default `encoding-rzcobs`, one rzCOBS frame with
//! its `00` terminator. Either way the payloads of a dump's frame records, concatenated in
//! sequence order, are a defmt stream for `defmt-print -e firmware.elf` (the `frames`
//! example of this crate extracts them). Frames are recorded at [`flightrec_core::Level::Debug`]:
//! a logger does not see a frame's level, which is in the ELF.
//!
//! Register where frames go once at boot with [`set_sink`]; frames logged before that are
//! dropped. The logger holds a critical section from `acquire` to `release` (interrupts
//! that log wait for the frame in progress). A frame longer than [`crate::frame::FRAME_MAX`]
//! is dropped and counted in the dump header's `lost`. A frame started while another is in
//! progress (only possible from a fault handler or a panic inside the logger) is dropped.

use core::cell::UnsafeCell;

use crate::frame::{FrameBuf, FrameSink};

struct State {
    /// Frames in progress: 0 idle, 1 one frame, more: nested frames being dropped.
    depth: u8,
    restore: critical_section::RestoreState,
    encoder: defmt::Encoder,
    buf: FrameBuf,
    sink: Option<&'static dyn FrameSink>,
}

struct Global(UnsafeCell<State>);

// SAFETY: the state is only touched with the critical section held: between
// `critical_section::acquire` in `acquire` and `critical_section::release` in `release`
// (defmt calls `write`/`flush`/`release` only between them), or inside
// `critical_section::with` in `set_sink`.
unsafe impl Sync for Global {}

static STATE: Global = Global(UnsafeCell::new(State {
    depth: 0,
    restore: critical_section::RestoreState::invalid(),
    encoder: defmt::Encoder::new(),
    buf: FrameBuf::new(),
    sink: None,
}));

/// Sends frames to `sink` from now on (e.g. a [`crate::frame::RecorderSink`]).
pub fn set_sink(sink: &'static dyn FrameSink) {
    critical_section::with(|_| {
        // SAFETY: critical section held, and no frame is in progress on this core (a frame
        // in progress holds the critical section too).
        let state = unsafe { &mut *STATE.0.get() };
        state.sink = Some(sink);
    });
}

#[defmt::global_logger]
struct Logger;

// SAFETY: `acquire` takes the critical section before touching the state and the state
// stays exclusively ours until `release` gives it back, as `defmt::Logger` requires.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        // SAFETY: released in `release`, which defmt calls once per `acquire`.
        let restore = unsafe { critical_section::acquire() };
        // SAFETY: critical section held (see `Global`).
        let state = unsafe { &mut *STATE.0.get() };
        state.depth = state.depth.saturating_add(1);
        if state.depth > 1 {
            // Nested: keep the outer frame intact; give this critical section back now.
            // SAFETY: the state taken just above, released in LIFO order (the outer one
            // is still held).
            unsafe { critical_section::release(restore) };
            return;
        }
        state.restore = restore;
        state.buf.start();
        let State { encoder, buf, .. } = state;
        encoder.start_frame(|b| buf.extend(b));
    }

    unsafe fn flush() {}

    unsafe fn release() {
        // SAFETY: defmt calls `release` after `acquire`; critical section held.
        let state = unsafe { &mut *STATE.0.get() };
        if state.depth > 1 {
            state.depth -= 1;
            return;
        }
        let State {
            encoder, buf, sink, ..
        } = state;
        encoder.end_frame(|b| buf.extend(b));
        if let Some(sink) = sink {
            sink.frame(buf.frame());
        }
        state.depth = 0;
        let restore = state.restore;
        // SAFETY: the state `acquire` got for the outermost frame.
        unsafe { critical_section::release(restore) };
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: defmt calls `write` between `acquire` and `release`; critical section held.
        let state = unsafe { &mut *STATE.0.get() };
        if state.depth == 1 {
            let State { encoder, buf, .. } = state;
            encoder.write(bytes, |b| buf.extend(b));
        }
    }
}
