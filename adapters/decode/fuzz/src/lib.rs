//! Structure-aware fuzzing of the decoder: dumps and flash images built by the real writers
//! from `arbitrary` input, mutated frame by frame, decoded by the decoder and the CLI, and
//! judged against what the wire format says must be reported. See `FUZZING.md`.
#![deny(missing_docs)]

pub mod check;
pub mod flash;
pub mod gen;
pub mod judge;
pub mod pieces;
