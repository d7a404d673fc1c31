//! The core's errors: a ring's and a dump's ([`crate::RecordError`], a record not stored,
//! is the recorder's).

use core::fmt;

/// Why a ring (or a recorder's ring) refused a push or a read. The ring is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RingError {
    /// The record would take more ring bytes than the ring holds (see
    /// [`crate::RecordMeta::ring_size`]), or its payload is over [`crate::ring::MAX_PAYLOAD`]. Counted in
    /// [`crate::RingStats::rejected`].
    TooLarge,
    /// The ring's bookkeeping is inconsistent (only possible for a ring salvaged from memory
    /// that was not validated). Nothing was written.
    Corrupt,
    /// The value to record could not be serialised.
    Encode,
    /// A shared ring or a recorder was used re-entrantly (from inside
    /// [`crate::SharedRing::with`], or from an interrupt that preempted a recorder's call), or
    /// a recorder has no ring attached yet.
    Busy,
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RingError::TooLarge => "record larger than the ring or the largest payload",
            RingError::Corrupt => "ring bookkeeping inconsistent",
            RingError::Encode => "record could not be encoded",
            RingError::Busy => "ring busy (re-entrant use) or not attached",
        })
    }
}

impl core::error::Error for RingError {}

/// Why a dump (or one frame, see [`crate::frame::FrameWriter`]) could not be written whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DumpError<E> {
    /// The writer failed; the dump is cut short (a decoder reports it as incomplete).
    Io(E),
    /// The ring refused to be read (see [`RingError`]).
    Ring(RingError),
    /// The scratch buffer cannot hold the header (or a frame's encoded head).
    ScratchTooSmall,
    /// The writer accepted no bytes (a full device or a closed pipe); the dump is cut short.
    WriteZero,
    /// A frame's body is over [`crate::frame::MAX_BODY`] bytes (a header with huge strings).
    FrameTooLong,
}

impl<E> From<RingError> for DumpError<E> {
    fn from(e: RingError) -> Self {
        DumpError::Ring(e)
    }
}

impl<E: fmt::Debug> fmt::Display for DumpError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DumpError::Io(e) => write!(f, "dump output failed: {e:?}"),
            DumpError::Ring(e) => write!(f, "ring not readable: {e}"),
            DumpError::ScratchTooSmall => f.write_str("scratch buffer too small for the header"),
            DumpError::WriteZero => f.write_str("dump output accepted no bytes"),
            DumpError::FrameTooLong => f.write_str("frame body over 65535 bytes"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for DumpError<E> {}
