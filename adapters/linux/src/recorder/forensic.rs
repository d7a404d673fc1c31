//! Forensic text dumps: the binary dump (`dump.rs`), written on a second thread, streamed
//! through a bounded pipe into `flightrec-decode`'s decoder and forensic renderer, the same
//! code as `flightrec decode --format forensic`.
//!
//! Memory: the pipe's chunks (one being filled, one in the pipe, one being decoded), the
//! decoder's bounded buffer, and the renderer's block. The renderer holds a dump's
//! rendered text until the dump's end, because a forensic block begins with facts (client
//! address, user, protocol) gathered from all its records; it holds at most
//! `flightrec_decode::render::FORENSIC_BODY_MAX` bytes, beyond which records are counted
//! as hidden.

use std::io::{self, Write};
use std::sync::mpsc;

use flightrec_core::dump::DumpSummary;
use flightrec_core::trigger::DumpOrder;

use super::dump::WRITE_BUFFER;
use super::FlightRecorder;

/// Writes the dump `order` asks for to `out` as forensic text: the binary dump, written
/// by a second thread into a pipe, rendered on this one.
pub(super) fn write<W: Write>(
    rec: &FlightRecorder,
    order: &DumpOrder,
    mut out: W,
) -> io::Result<DumpSummary> {
    // One chunk in the pipe, one being filled, one being decoded.
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::scope(|scope| {
        let writer = std::thread::Builder::new()
            .name("flightrec-dump".into())
            .spawn_scoped(scope, move || {
                let mut pipe = PipeWriter {
                    tx: Some(tx),
                    chunk: Vec::with_capacity(WRITE_BUFFER),
                };
                let written = rec.write_binary(order, &mut pipe);
                // Whatever was written goes to the renderer (a cut dump is shown as cut);
                // then the pipe closes, and the renderer sees the end.
                let _ = pipe.flush();
                written
            })?;
        // Returning drops the reading end: a writer still going sees a closed pipe.
        let rendered = render_forensic(PipeReader::new(rx), &mut out);
        let written = writer
            .join()
            .map_err(|_| io::Error::other("dump writer panicked"))?;
        // The renderer's error first: a closed pipe is what the writer saw of it.
        rendered?;
        written
    })
}

/// Renders the wire-format dump read from `input` as forensic text blocks to `out`.
fn render_forensic<W: Write>(input: PipeReader, out: &mut W) -> io::Result<()> {
    use flightrec_decode::{Format, Options, Renderer};
    let mut renderer = Renderer::new(Options {
        format: Format::Forensic,
        ..Options::default()
    });
    flightrec_decode::decode_to(input, &mut renderer, out)?;
    out.flush()
}

/// The writing end of the forensic pipe: bytes go in chunks of [`WRITE_BUFFER`].
struct PipeWriter {
    /// `None` once the reader is gone.
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
    chunk: Vec<u8>,
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.chunk.len() >= WRITE_BUFFER {
            self.flush()?;
        }
        let room = WRITE_BUFFER - self.chunk.len();
        let n = buf.len().min(room);
        self.chunk.extend_from_slice(buf.get(..n).unwrap_or(buf));
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(WRITE_BUFFER));
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(chunk).is_ok());
        if sent {
            Ok(())
        } else {
            self.tx = None;
            Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "forensic renderer stopped",
            ))
        }
    }
}

/// The reading end of the forensic pipe; the end of input once the writer is gone.
struct PipeReader {
    rx: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl PipeReader {
    fn new(rx: mpsc::Receiver<Vec<u8>>) -> Self {
        PipeReader {
            rx,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl io::Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at >= self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let rest = self.chunk.get(self.at..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::{DumpFormat, FlightRecorder, RecorderOptions};
    use flightrec_core::event::{AuthFailure, Peer};
    use flightrec_core::{Level, SessionId};

    /// Streamed through the pipe (several chunks), the text is what `flightrec decode
    /// --format forensic` makes of the binary dump.
    #[test]
    fn streamed_text_is_the_decoders_rendering_of_the_binary_dump() {
        let rec = FlightRecorder::new(RecorderOptions {
            shards: 4,
            ..RecorderOptions::default()
        })
        .unwrap();
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let rec = &rec;
                s.spawn(move || {
                    for i in 0..3000 {
                        rec.log(
                            Level::Debug,
                            Some(SessionId(t)),
                            "gw",
                            &format!("line {i}"),
                            &[],
                        );
                    }
                });
            }
        });
        let peer: std::net::SocketAddr = "192.0.2.9:4000".parse().unwrap();
        rec.record(
            Some(SessionId(1)),
            &AuthFailure {
                user: "mallory\n\x1b[2J",
                host: "a.example",
                peer: Some(Peer::from(peer)),
                mechanism: "PLAIN",
                reason: "bad password",
            },
        );
        let order = rec.manual_order();
        let binary = rec.dump_bytes(&order);
        assert!(binary.len() > 3 * super::WRITE_BUFFER);
        let mut text = Vec::new();
        let summary = rec
            .write_dump(&order, DumpFormat::Forensic, &mut text)
            .unwrap();
        assert_eq!(summary.bytes, binary.len());
        assert_eq!(
            String::from_utf8(text).unwrap(),
            String::from_utf8(crate::forensic(&binary).unwrap()).unwrap()
        );
    }
}
