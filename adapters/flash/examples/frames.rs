//! Prints the defmt stream held in dumps: the payloads of their frame records, in order.
//! `cargo run -p flightrec-flash --example frames -- dumps.bin | defmt-print -e firmware.elf`
//! (`dumps.bin`: dumps in the wire format, back to back, e.g. read out of the flash store).

use std::io::Write;

use flightrec_core::crc::Crc32;
use flightrec_core::dump::{RecordHead, FRAME_RECORD, MAGIC, SYNC};
use flightrec_core::Kind;

fn main() -> Result<(), String> {
    let path = std::env::args().nth(1).ok_or("usage: frames DUMPS-FILE")?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    let mut out = std::io::stdout().lock();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at..].starts_with(&MAGIC) {
            at += MAGIC.len() + 1;
            continue;
        }
        let Some(&[sync, ty, l0, l1]) = bytes.get(at..at + 4) else {
            break;
        };
        let len = usize::from(u16::from_le_bytes([l0, l1]));
        let (Some(body), Some(crc)) = (
            bytes.get(at + 4..at + 4 + len),
            bytes.get(at + 4 + len..at + 8 + len),
        ) else {
            break;
        };
        let mut c = Crc32::new();
        c.update(&[ty, l0, l1]);
        c.update(body);
        if sync != SYNC || c.finish().to_le_bytes() != crc {
            return Err(format!("{path}: bad frame at offset {at}"));
        }
        if ty == FRAME_RECORD {
            if let Ok((head, payload)) = postcard::take_from_bytes::<RecordHead>(body) {
                if head.kind == Kind::FRAME {
                    out.write_all(payload).map_err(|e| e.to_string())?;
                }
            }
        }
        at += 8 + len;
    }
    Ok(())
}
