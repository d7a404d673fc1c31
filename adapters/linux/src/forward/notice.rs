//! What a dump notice says, read back from the dump's own bytes (so the notice and the
//! file cannot disagree).

use flightrec_core::event::{decode, Decoded, Peer};
use flightrec_core::trigger::DumpOrder;
use flightrec_core::Level;
use flightrec_decode::decoder::{Decoder, Item};

use super::message::DumpNotice;

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
    /// The notice of the dump `bytes` (wire format) written to `file` for `order`: its
    /// records' sequence range, the lost count (before the ring and during read-out), and
    /// the peer of the record that fired the trigger.
    pub fn of_dump(order: &DumpOrder, bytes: &[u8], file: &str) -> DumpNotice {
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
        };
        let mut decoder = Decoder::new(bytes);
        let mut trigger_seq = None;
        // A dump we built in memory decodes; if it did not, the notice says what was read.
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
