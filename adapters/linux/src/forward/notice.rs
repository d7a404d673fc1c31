//! What a dump notice says, read back from the dump's own bytes (so the notice and the
//! file cannot disagree).

use flightrec_core::event::{decode, Decoded, Peer};
use flightrec_core::trigger::DumpOrder;
use flightrec_core::Level;
use flightrec_decode::decoder::{Decoder, Item};

use flightrec_core::frame::Parsed;
use flightrec_core::seal::{Seal, FRAME_SEAL, FRAME_SIGNATURE, SEAL_BODY_LEN};
use flightrec_decode::sign::SIGNATURE_BODY_LEN;

use super::message::{DumpNotice, ForwardedSeal};

/// The body of the frame of type `ty` at the front of `bytes` (core's frame parser), and
/// the bytes after it.
fn frame_body(bytes: &[u8], ty: u8) -> Option<(&[u8], &[u8])> {
    match flightrec_core::frame::parse(bytes) {
        Parsed::Whole { ty: t, body, len } if t == ty => {
            Some((bytes.get(body)?, bytes.get(len..)?))
        }
        _ => None,
    }
}

impl ForwardedSeal {
    /// The seal (and signature) of the frames written after a sealed dump; `None` if
    /// `frames` does not start with a version-1 seal frame (an unsealed dump: empty).
    pub fn of_frames(frames: &[u8]) -> Option<ForwardedSeal> {
        let (body, rest) = frame_body(frames, FRAME_SEAL)?;
        let parsed = Seal::parse(body)?;
        let seal: [u8; SEAL_BODY_LEN] = body.try_into().ok()?;
        let signature = frame_body(rest, FRAME_SIGNATURE)
            .and_then(|(b, _)| <[u8; SIGNATURE_BODY_LEN]>::try_from(b).ok());
        Some(ForwardedSeal {
            epoch: parsed.epoch,
            seal,
            signature,
        })
    }
}

fn peer_of(event: &Decoded<'_>) -> Option<Peer> {
    match event {
        Decoded::AuthFailure(e) => e.peer,
        Decoded::AuthSuccess(e) => e.peer,
        Decoded::Logout(e) => e.peer,
        Decoded::Connect(e) => e.peer,
        _ => None,
    }
}

impl DumpNotice {
    /// The notice of the dump read from `bytes` (wire format: a slice, or the dump read
    /// back from its file, with the memory of one decoder's buffer whatever its size)
    /// written to `file` for `order`: its records' sequence range, the lost count (before
    /// the ring and during read-out), and the peer of the record that fired the trigger.
    pub fn of_dump(order: &DumpOrder, bytes: impl std::io::Read, file: &str) -> DumpNotice {
        let mut notice = DumpNotice {
            reason: order.reason,
            time: order.time,
            session: order.session,
            peer: None,
            seq_range: None,
            records: 0,
            lost: 0,
            suppressed: order.suppressed,
            file: file.to_owned(),
            seal: None,
        };
        let mut decoder = Decoder::new(bytes);
        let mut trigger_seq = None;
        // A dump we wrote decodes; if it did not (or reading it back failed), the notice
        // says what was read.
        while let Ok(Some(item)) = decoder.next() {
            match item {
                Item::DumpStart { header, .. } => {
                    trigger_seq = header.trigger_seq;
                    notice.lost += header.lost;
                    notice.suppressed = header.suppressed;
                    notice.session = header.scope.or(notice.session);
                }
                Item::Record { head, payload, .. } => {
                    notice.records += 1;
                    notice.seq_range = Some(match notice.seq_range {
                        None => (head.seq, head.seq),
                        Some((first, _)) => (first, head.seq),
                    });
                    if Some(head.seq) == trigger_seq {
                        let level = Level::from_u8(head.level).unwrap_or(Level::Info);
                        notice.peer = decode(head.kind, level, payload)
                            .ok()
                            .as_ref()
                            .and_then(peer_of);
                    }
                }
                Item::DumpEnd { end, .. } => notice.lost += end.lost,
                _ => {}
            }
        }
        notice
    }
}
