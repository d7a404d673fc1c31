//! defmt frames decoded with the firmware's ELF, and the ELF's build identity.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use flightrec_core::RecordHead;
use flightrec_decode::FrameDecoder;
use object::Object;
use sha2::Digest;

/// The build identity of an ELF: its GNU build-id note, or, if it has none, the SHA-256 of
/// the file. A dump's `build.id` must equal it for the ELF to be used.
pub fn identity(elf: &[u8]) -> Vec<u8> {
    let note = object::File::parse(elf)
        .ok()
        .and_then(|f| f.build_id().ok().flatten().map(<[u8]>::to_vec));
    note.unwrap_or_else(|| sha2::Sha256::digest(elf).to_vec())
}

/// Decodes [`flightrec_core::Kind::FRAME`] payloads as defmt frames (one log frame each,
/// raw defmt encoding) with the table of the firmware's ELF.
pub struct DefmtFrames {
    table: defmt_decoder::Table,
}

impl DefmtFrames {
    /// Reads the ELF at `path`: its defmt table and its build identity.
    pub fn load(path: &Path) -> Result<(DefmtFrames, Vec<u8>), String> {
        let shown = path.display();
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read ELF {shown}: {e}"))?;
        let table = match defmt_decoder::Table::parse(&bytes) {
            Ok(Some(t)) => t,
            Ok(None) => {
                return Err(format!(
                    "ELF {shown} has no .defmt section: not a defmt firmware, nothing to decode frames with"
                ))
            }
            Err(e) => return Err(format!("cannot read the defmt table of ELF {shown}: {e:#}")),
        };
        Ok((DefmtFrames { table }, identity(&bytes)))
    }
}

impl FrameDecoder for DefmtFrames {
    fn decode(&mut self, _head: &RecordHead, payload: &[u8]) -> Result<String, String> {
        // defmt-decoder is not written against hostile bytes: contain a panic to one frame.
        let table = &self.table;
        catch_unwind(AssertUnwindSafe(|| match table.decode(payload) {
            Ok((frame, used)) if used == payload.len() => Ok(frame.display_message().to_string()),
            Ok((frame, used)) => Ok(format!(
                "{} (+{} bytes after the frame)",
                frame.display_message(),
                payload.len() - used
            )),
            Err(defmt_decoder::DecodeError::UnexpectedEof) => {
                Err("defmt frame cut short".to_owned())
            }
            Err(defmt_decoder::DecodeError::Malformed) => {
                Err("malformed defmt frame (or wrong ELF)".to_owned())
            }
        }))
        .unwrap_or_else(|_| Err("the defmt decoder failed on this frame".to_owned()))
    }
}
