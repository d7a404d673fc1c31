//! Writing a dump: **one wire-format dump, records in time order, numbered `0..n` within
//! it**, streamed from the shards' merge (`merge.rs`) through core's `write_dump_with_callsites`
//! straight to the writer.
//!
//! Memory per dump, whatever the rings' size: one buffer holding a shard's largest record
//! (reads and the frame being written) and the merge's few words per shard, beside the
//! writer's own buffer (the dump files' is 64 KiB). Forensic text: `forensic.rs`.

use std::cell::RefCell;
use std::io::{self, Write};

use flightrec_core::dump::write_dump_with_callsites;
use flightrec_core::dump::{DumpError, DumpSummary, Source};
use flightrec_core::ring::{Cursor, Read, RingStats};
use flightrec_core::trigger::DumpOrder;
use flightrec_core::{Build, Clock, DumpHeader, RingError};

use super::merge::{Merge, Step};
use super::shards::{ShardSeq, Shards, SHARD_BYTES};
use super::trigger::lock;
use super::FlightRecorder;
use crate::dumpfile::DumpFormat;

/// Bytes a chunk of the forensic pipe holds.
pub(super) const WRITE_BUFFER: usize = 64 * 1024;

impl FlightRecorder {
    /// Writes the dump `order` asks for to `out`, in `format`, merged from all shards,
    /// streaming: nothing like a copy of the rings is made. Give it a buffered writer: a
    /// record goes out in several small writes. Returns what the dump holds (`bytes` counts
    /// its wire-format bytes, also for forensic text). The first write error ends the dump
    /// (a decoder reports it cut short); nothing is retried.
    pub fn write_dump<W: Write>(
        &self,
        order: &DumpOrder,
        format: DumpFormat,
        mut out: W,
    ) -> io::Result<DumpSummary> {
        match format {
            DumpFormat::Binary => self.write_binary(order, &mut out),
            DumpFormat::Forensic => super::forensic::write(self, order, out),
        }
    }

    /// The dump `order` asks for, as wire-format bytes in memory (for tests and tools; a
    /// daemon streams with [`write_dump`](Self::write_dump)).
    pub fn dump_bytes(&self, order: &DumpOrder) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail; a ring error leaves a dump without its end frame,
        // which a decoder reports as incomplete.
        let _ = self.write_binary(order, &mut out);
        out
    }

    pub(super) fn write_binary<W: Write>(
        &self,
        order: &DumpOrder,
        out: &mut W,
    ) -> io::Result<DumpSummary> {
        let build = Build {
            name: &self.program,
            version: &self.version,
            id: &[],
        };
        let named = lock(&self.trigger).config().named;
        // The callsite table as it is now: every callsite of the records dumped is in it
        // (a callsite enters the table before its first record in the callsite form).
        let table = crate::callsite::frames();
        let table: Vec<&[u8]> = table.iter().map(Vec::as_slice).collect();
        let trigger = order.seq.map(ShardSeq::from_raw);
        write_merged(&self.shards, trigger, &table, out, |stats, trigger_seq| {
            // Lost: records the shards' rings refused. (Audit lines dropped by a full queue
            // are not lost: their records are in the ring; a WARN record in the ring counts
            // them.)
            DumpHeader {
                trigger_seq,
                suppressed: order.suppressed.saturating_add(self.take_dumps_dropped()),
                ..DumpHeader::for_order(order, named, stats.rejected, self.clock.info(), build)
            }
        })
    }
}

/// Writes `shards` as one wire-format dump to `out`, merged by time: the header is
/// `header(stats, trigger_seq)`, given the shards' counters and the number the merge gives
/// the record `trigger`; then the callsite table `table` and the records.
pub(super) fn write_merged<'h, W: Write>(
    shards: &Shards,
    trigger: Option<ShardSeq>,
    table: &[&[u8]],
    out: &mut W,
    header: impl FnOnce(RingStats, Option<u64>) -> DumpHeader<'h>,
) -> io::Result<DumpSummary> {
    let mut scratch = vec![0u8; SHARD_BYTES];
    let mut merge = Merge::new(shards);
    let stats = merge.stats();
    let trigger_seq = match trigger {
        Some(id) => merge.find(id, &mut scratch).map_err(ring_error)?,
        None => None,
    };
    let header = header(stats, trigger_seq);
    let source = MergedShards {
        merge: RefCell::new(merge),
    };
    write_dump_with_callsites(
        &mut StdWrite(out),
        &source,
        header,
        stats,
        Cursor::at(0),
        &mut scratch,
        table,
    )
    .map_err(|e| match e {
        DumpError::Io(e) => e,
        DumpError::Ring(e) => ring_error(e),
        DumpError::ScratchTooSmall => io::Error::other("dump header too large"),
        DumpError::WriteZero => io::ErrorKind::WriteZero.into(),
        other => io::Error::other(other.to_string()),
    })
}

fn ring_error(e: RingError) -> io::Error {
    io::Error::other(format!("shard ring: {e:?}"))
}

/// The shards' merge as a core dump [`Source`]: it reads forward from where its merge is,
/// numbering records itself (the cursor carries the number only).
struct MergedShards<'a> {
    merge: RefCell<Merge<'a>>,
}

impl Source for MergedShards<'_> {
    fn stats(&self) -> Result<RingStats, RingError> {
        Ok(self
            .merge
            .try_borrow()
            .map_err(|_| RingError::Busy)?
            .stats())
    }

    fn oldest(&self) -> Result<Cursor, RingError> {
        Ok(Cursor::at(0))
    }

    fn read(&self, cursor: &mut Cursor, out: &mut [u8]) -> Result<Read, RingError> {
        let mut merge = self.merge.try_borrow_mut().map_err(|_| RingError::Busy)?;
        let read = match merge.next(out)? {
            Step::Record {
                number, meta, len, ..
            } => Read::Record {
                seq: number,
                meta,
                len,
            },
            Step::Lost(n) => Read::Lost(n),
            Step::End => Read::End,
        };
        *cursor = Cursor::at(merge.position());
        Ok(read)
    }
}

/// A `std::io::Write` as an `embedded_io::Write` (core's dump writer takes the latter).
struct StdWrite<W>(W);

impl<W: Write> embedded_io::ErrorType for StdWrite<W> {
    type Error = io::Error;
}

impl<W: Write> embedded_io::Write for StdWrite<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecorderOptions;
    use flightrec_core::ring::RecordMeta;
    use flightrec_core::{Kind, Level};
    use flightrec_decode::{Decoder, Item};
    use std::sync::Arc;

    const SHARDS: usize = 8;

    fn recorder(shards: usize) -> Arc<FlightRecorder> {
        FlightRecorder::new(RecorderOptions {
            shards,
            ..RecorderOptions::default()
        })
        .unwrap()
    }

    fn frame(time: u64) -> RecordMeta {
        RecordMeta {
            time,
            level: Level::Info,
            kind: Kind::FRAME,
            session: None,
        }
    }

    /// Collects the dump; once `at` bytes are out, fills shards 1.. with newer records, so
    /// that the records of theirs not yet read are evicted in the middle of the dump.
    struct EvictMidway<'a> {
        out: Vec<u8>,
        rec: &'a FlightRecorder,
        at: usize,
        done: bool,
    }

    impl Write for EvictMidway<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.out.extend_from_slice(buf);
            if !self.done && self.out.len() >= self.at {
                self.done = true;
                for i in 1..self.rec.shard_count() {
                    for j in 0..3000 {
                        self.rec.shards.push_to(i, &frame(1 << 40), &[j as u8; 24]);
                    }
                }
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Decoded {
        trigger_seq: Option<u64>,
        next_seq: u64,
        records: Vec<(u64, Vec<u8>)>,
        lost: u64,
    }

    fn decode(bytes: &[u8]) -> Decoded {
        let mut d = Decoder::new(bytes);
        let mut out = Decoded {
            trigger_seq: None,
            next_seq: 0,
            records: Vec::new(),
            lost: u64::MAX,
        };
        while let Some(item) = d.next().unwrap() {
            match item {
                Item::DumpStart { header, .. } => {
                    out.trigger_seq = header.trigger_seq;
                    out.next_seq = header.next_seq;
                }
                Item::Record { head, payload, .. } => {
                    out.records.push((head.seq, payload.to_vec()))
                }
                Item::DumpEnd { end, seen, .. } => {
                    assert_eq!(end.records, seen);
                    out.lost = end.lost;
                }
                Item::Gap { .. } => {}
                other => panic!("{other:?}"),
            }
        }
        assert!(!d.stats().damaged());
        out
    }

    /// Records of seven shards are evicted in the middle of a dump: the dump still holds
    /// every record of the quiet shard, in order, counts the others as lost (records and
    /// lost add up to the snapshot), and the trigger record keeps the number the header
    /// gives it.
    #[test]
    fn evictions_during_a_dump_are_counted_and_the_trigger_keeps_its_number() {
        let rec = recorder(SHARDS);
        let rounds = 100u64;
        for j in 0..rounds {
            for i in 0..SHARDS {
                let payload = format!("{i}:{j}");
                rec.shards
                    .push_to(i, &frame(10 * j + i as u64), payload.as_bytes())
                    .unwrap();
            }
        }
        let trigger = rec
            .shards
            .push_to(0, &frame(10 * rounds), b"trigger")
            .unwrap();
        for i in 0..SHARDS {
            let payload = format!("{i}:after");
            rec.shards
                .push_to(i, &frame(10 * rounds + 1 + i as u64), payload.as_bytes())
                .unwrap();
        }
        let order = DumpOrder {
            seq: Some(trigger.raw()),
            ..rec.manual_order()
        };
        let mut w = EvictMidway {
            out: Vec::new(),
            rec: &rec,
            at: 2000,
            done: false,
        };
        let summary = rec.write_binary(&order, &mut w).unwrap();
        assert!(w.done);
        let d = decode(&w.out);

        let n = SHARDS as u64 * (rounds + 1) + 1;
        assert_eq!(d.next_seq, n);
        assert_eq!(d.records.len() as u64 + d.lost, n);
        assert_eq!(
            (summary.records, summary.lost),
            (d.records.len() as u64, d.lost)
        );
        assert!(d.lost > 6 * rounds, "{}", d.lost);
        let seqs: Vec<u64> = d.records.iter().map(|r| r.0).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        // Every record before it in time order, in the snapshot: its number.
        assert_eq!(d.trigger_seq, Some(SHARDS as u64 * rounds));
        let at_trigger = d.records.iter().find(|r| Some(r.0) == d.trigger_seq);
        assert_eq!(at_trigger.map(|r| &r.1[..]), Some(&b"trigger"[..]));
        // The quiet shard is whole, in order.
        let quiet: Vec<String> = d
            .records
            .iter()
            .map(|r| String::from_utf8_lossy(&r.1).into_owned())
            .filter(|p| p.starts_with("0:") || p == "trigger")
            .collect();
        let expected: Vec<String> = (0..rounds)
            .map(|j| format!("0:{j}"))
            .chain(["trigger".to_owned(), "0:after".to_owned()])
            .collect();
        assert_eq!(quiet, expected);
    }

    /// Without evictions, the dump is every record in time order, numbered `0..n`.
    #[test]
    fn a_dump_is_the_shards_merged_in_time_order() {
        let rec = recorder(3);
        let times = [[5u64, 9, 12], [1, 9, 20], [2, 3, 30]];
        for (i, ts) in times.iter().enumerate() {
            for t in ts {
                rec.shards.push_to(i, &frame(*t), &[i as u8]).unwrap();
            }
        }
        let d = decode(&rec.dump_bytes(&rec.manual_order()));
        let got: Vec<(u64, u8)> = d.records.iter().map(|r| (r.0, r.1[0])).collect();
        // Ties in time: the lower shard first.
        let shards = [1u8, 2, 2, 0, 0, 1, 0, 1, 2];
        let expected: Vec<(u64, u8)> = (0..9).zip(shards).collect();
        assert_eq!(got, expected);
        assert_eq!((d.lost, d.trigger_seq, d.next_seq), (0, None, 9));
    }

    struct Broken {
        calls: usize,
    }
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A dump whose writer fails gives up at once (ProFTPD's forensic log retries a failing
    /// write forever).
    #[test]
    fn write_error_gives_up_at_once() {
        let rec = FlightRecorder::new(RecorderOptions {
            shards: 2,
            ..RecorderOptions::default()
        })
        .unwrap();
        for i in 0..5000 {
            rec.log(Level::Info, None, "t", &format!("line {i}"), &[]);
        }
        let order = rec.manual_order();
        let mut w = Broken { calls: 0 };
        let e = rec.write_binary(&order, &mut w).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(w.calls, 1);
        for format in [DumpFormat::Binary, DumpFormat::Forensic] {
            let e = rec
                .write_dump(&order, format, Broken { calls: 0 })
                .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{format:?}");
        }
    }
}
