//! The bounded window through which the decoder and the verifier read their input: one
//! buffer of at most [`BUFFER_LEN`] bytes, whatever the input's size, grown only as the
//! input needs it (small inputs stay cheap).

use std::io::{self, Read};

use crate::decoder::BUFFER_LEN;

/// `buf[start..end]` is read and not yet consumed; `base` is the input offset of `buf[0]`.
/// The fields are open to the readers in this crate, which index the buffer directly.
pub(crate) struct Window<R> {
    input: R,
    pub(crate) buf: Vec<u8>,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) base: u64,
    /// The input ended (or failed: nothing more is read after an error).
    pub(crate) eof: bool,
}

impl<R: Read> Window<R> {
    pub(crate) fn new(input: R) -> Self {
        Window {
            input,
            buf: Vec::new(),
            start: 0,
            end: 0,
            base: 0,
            eof: false,
        }
    }

    /// Input offset of the next unconsumed byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    /// The bytes read and not yet consumed.
    pub(crate) fn avail(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    /// Makes at least `need` (at most [`BUFFER_LEN`]) bytes available unless the input
    /// ends. Moves the unconsumed bytes to the front only when `need` would not fit after
    /// them, so indices into `buf` stay valid across calls that do not.
    pub(crate) fn fill(&mut self, need: usize) -> io::Result<()> {
        if self.end - self.start >= need || self.eof {
            return Ok(());
        }
        if BUFFER_LEN - self.start < need {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < need && !self.eof {
            if self.end >= self.buf.len() {
                if self.buf.len() >= BUFFER_LEN {
                    break;
                }
                let grown = (self.buf.len() * 2).clamp(4096, BUFFER_LEN);
                self.buf.resize(grown, 0);
            }
            let Some(space) = self.buf.get_mut(self.end..) else {
                break;
            };
            match self.input.read(space) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n.min(space.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.eof = true;
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}
