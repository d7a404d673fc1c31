//! Host-side decoder of flightrec dumps, flash images and ring files.
//!
//! Built from `core/WIRE-FORMAT.md`: a [`Decoder`] streams any [`std::io::Read`] with one
//! bounded buffer ([`decoder::BUFFER_LEN`] bytes, whatever the input's size), finds dumps by
//! their magic (in files holding several dumps, raw flash images, ring files), checks every
//! frame's CRC, reports damage (offset and why) and resynchronises, reports dumps cut off
//! by a power loss as incomplete, and shows gaps in sequence numbers where they happened.
//! It never panics and never loops forever on any bytes (it is fuzzed). Flash images of
//! `flightrec-flash`'s paged layout are read page by page by [`flash::FlashImage`], whose
//! dumps' bytes feed the same decoder.
//!
//! A [`Renderer`] turns the items into text lines, NDJSON or ProFTPD-style forensic blocks,
//! escaping everything a peer or device controls.
//!
//! ```
//! use flightrec_decode::{Decoder, Format, Options, Renderer};
//!
//! // The worked example of WIRE-FORMAT.md: one frame record, dumped for a failed login.
//! let dump: &[u8] = &[
//!     0x89, 0x46, 0x4C, 0x52, 0x0D, 0x0A, 0x1A, 0x0A, 0x01,
//!     0xFE, 0x48, 0x1D, 0x00, 0x01, 0x00, 0x00, 0x0B, 0x01, 0x00, 0xE8, 0x07, 0x00, 0x00,
//!     0x01, 0x00, 0x00, 0x00, 0x00, 0x80, 0x20, 0x04, 0x64, 0x65, 0x6D, 0x6F, 0x03, 0x31,
//!     0x2E, 0x30, 0x02, 0xAB, 0xAB, 0xB7, 0x04, 0xC1, 0xC3,
//!     0xFE, 0x52, 0x08, 0x00, 0x00, 0x0B, 0x01, 0x03, 0x01, 0x07, 0x68, 0x69,
//!     0xC1, 0x21, 0xC0, 0xF2,
//!     0xFE, 0x45, 0x03, 0x00, 0x01, 0x00, 0x00, 0x9B, 0x2A, 0x35, 0xA8,
//! ];
//! let mut decoder = Decoder::new(dump);
//! let mut renderer = Renderer::new(Options { format: Format::Text, ..Options::default() });
//! let mut out = Vec::new();
//! while let Some(item) = decoder.next().unwrap() {
//!     renderer.render(&item, &mut out).unwrap();
//! }
//! renderer.finish(&mut out).unwrap();
//! let text = String::from_utf8(out).unwrap();
//! assert!(text.contains("+0.011s WARN  frame s=7 len=2 hex=6869\n"));
//! assert!(!decoder.stats().damaged());
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod auditseal;
mod callsite;
pub mod decoder;
pub mod flash;
pub mod info;
mod item;
pub mod render;
pub mod sign;
pub mod time;
pub mod verify;
mod window;

pub use decoder::{Cut, Damage, Decoder, Header, Item, Stats};
pub use render::{Filter, Format, FrameDecoder, Options, Renderer, Summary};
pub use time::{Time, TimeBound};

/// Decodes all of `input` and renders it to `out`; returns the decoder's counts and the
/// renderer's summary. I/O errors of either side end it.
pub fn decode_to<R: std::io::Read, W: std::io::Write + ?Sized>(
    input: R,
    renderer: &mut Renderer,
    out: &mut W,
) -> std::io::Result<(Stats, Summary)> {
    let mut decoder = Decoder::new(input);
    while let Some(item) = decoder.next()? {
        renderer.render(&item, out)?;
    }
    renderer.finish(out)?;
    Ok((decoder.stats(), renderer.summary()))
}
