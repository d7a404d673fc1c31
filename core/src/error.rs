//! The core's errors: a ring's and a dump's.

/// Why a push or read was refused. The ring is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PushError {
    /// The record would take more ring bytes than the ring holds (see
    /// [`crate::RecordMeta::ring_size`]), or its payload is over [`crate::ring::MAX_PAYLOAD`]. Counted in
    /// [`crate::RingStats::rejected`].
    TooLarge,
    /// The ring's bookkeeping is inconsistent (only possible for a ring salvaged from memory
    /// that was not validated). Nothing was written.
    Corrupt,
    /// The value to record could not be serialised.
    Encode,
    /// A shared ring was used re-entrantly (from inside [`crate::SharedRing::with`]).
    Busy,
}

/// Why a dump (or one frame, see [`crate::frame::FrameWriter`]) could not be written whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpError<E> {
    /// The writer failed; the dump is cut short (a decoder reports it as incomplete).
    Io(E),
    /// The ring refused to be read (see [`PushError`]).
    Ring(PushError),
    /// The scratch buffer cannot hold the header (or a frame's encoded head).
    ScratchTooSmall,
    /// The writer accepted no bytes (a full device or a closed pipe); the dump is cut short.
    WriteZero,
    /// A frame's body is over [`crate::frame::MAX_BODY`] bytes (a header with huge strings).
    FrameTooLong,
}

impl<E> From<PushError> for DumpError<E> {
    fn from(e: PushError) -> Self {
        DumpError::Ring(e)
    }
}
