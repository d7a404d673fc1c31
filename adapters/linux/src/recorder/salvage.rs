//! The death dump of a run that died: what its ring file held (`ringfile.rs`), read back at
//! the next start, written as one dump of ours, which is sealed and forwarded like any
//! other. A ring file is rewritten in place with every record and cannot carry a seal
//! itself (`core/SEALING.md` section 10); its death dump does, as a microcontroller's RAM
//! ring is dumped and sealed at the next boot (`flightrec-flash`'s `persist`).
//!
//! The file is read with the decoder (frames checked, callsite records resolved with the
//! region's own table: the dead process's callsite ids mean nothing to this one), each
//! region's records sorted by sequence number (a region's circular area holds its newest
//! lap first) into a shard of their own, and the shards merged by time as for any dump
//! (`merge.rs`). Never silent: records the file shows were there but that cannot be read
//! back (a hole in a region's numbers: a damaged frame) are the dump's `lost`, and so is
//! anything else left out.

use std::io;

use flightrec_core::dump::{Build, DumpHeader};
use flightrec_core::ring::RecordMeta;
use flightrec_core::trigger::{DumpOrder, Reason};
use flightrec_core::{ClockInfo, Level};
use flightrec_decode::{Decoder, Item};

use super::dump::write_merged;
use super::shards::{Shards, MAX_SHARDS};
use crate::ringfile::Left;

/// A death dump, ready for [`crate::DumpFiles`].
#[derive(Debug)]
pub(crate) struct DeathDump {
    /// Its order (reason [`Reason::UntimelyDeath`], the time of the newest record): what
    /// its notice says.
    pub(crate) order: DumpOrder,
    /// The dump, wire format.
    pub(crate) wire: Vec<u8>,
    /// Records in it.
    pub(crate) records: u64,
    /// Records the file held that are not in it.
    pub(crate) lost: u64,
}

/// One region of the file: its records, as read.
#[derive(Default)]
struct Region {
    records: Vec<(u64, RecordMeta, Vec<u8>)>,
}

/// What the file held, as read back.
struct Salvaged {
    regions: Vec<Region>,
    /// The first region's program name and version, and clock.
    build: Option<(String, String, ClockInfo)>,
    /// Records that could not be placed or stored as they were.
    lost: u64,
}

fn read(bytes: &[u8]) -> io::Result<Salvaged> {
    let mut read = Salvaged {
        regions: Vec::new(),
        build: None,
        lost: 0,
    };
    let mut decoder = Decoder::new(bytes);
    while let Some(item) = decoder.next()? {
        match item {
            Item::DumpStart { header, .. } => {
                if read.build.is_none() {
                    read.build = Some((header.build_name, header.build_version, header.clock));
                }
                read.regions.push(Region::default());
            }
            Item::Record { head, payload, .. } => {
                let (Some(region), Some(level)) =
                    (read.regions.last_mut(), Level::from_u8(head.level))
                else {
                    // Before any region's header, or of a level this build does not know.
                    read.lost += 1;
                    continue;
                };
                let meta = RecordMeta {
                    time: head.time,
                    level,
                    kind: head.kind,
                    session: head.session,
                };
                region.records.push((head.seq, meta, payload.to_vec()));
            }
            _ => {}
        }
    }
    Ok(read)
}

/// Builds the death dump of the ring file `left`. `None` if it held no record (a run
/// that died before it logged anything leaves nothing to show).
pub(crate) fn death_dump(left: &Left) -> io::Result<Option<DeathDump>> {
    let Salvaged {
        mut regions,
        build,
        mut lost,
    } = read(&left.bytes)?;
    if regions.len() > MAX_SHARDS {
        for extra in regions.drain(MAX_SHARDS..) {
            lost = lost.saturating_add(extra.records.len() as u64);
        }
    }
    let shards = Shards::new(regions.len().max(1), Vec::new());
    let mut newest = 0u64;
    for (i, region) in regions.iter_mut().enumerate() {
        region.records.sort_by_key(|&(seq, ..)| seq);
        region.records.dedup_by_key(|&mut (seq, ..)| seq);
        if let (Some(first), Some(last)) = (region.records.first(), region.records.last()) {
            // Numbers between the oldest and the newest record read that are missing: records
            // the file held whose frames did not read back.
            let span = (last.0 - first.0).saturating_add(1);
            lost = lost.saturating_add(span - region.records.len() as u64);
        }
        for (_, meta, payload) in &region.records {
            match shards.push_to(i, meta, payload) {
                Some(_) => newest = newest.max(meta.time),
                None => lost = lost.saturating_add(1),
            }
        }
    }
    let (stored, evicted, _) = shards.counts();
    if stored == 0 {
        return Ok(None);
    }
    // A region fuller than a shard's ring (only a file we did not write) loses its oldest.
    lost = lost.saturating_add(evicted);
    let (name, version, clock) =
        build.unwrap_or_else(|| (String::new(), String::new(), ClockInfo::UNIX_NANOS));
    let file = left
        .path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let detail = if left.cut {
        format!(
            "ring file {file} of a run that died (read up to its first {} bytes)",
            left.bytes.len()
        )
    } else {
        format!("ring file {file} of a run that died")
    };
    let time = newest;
    let order = DumpOrder {
        reason: Reason::UntimelyDeath,
        time,
        seq: None,
        session: None,
        suppressed: 0,
        index: 0,
    };
    let mut wire = Vec::new();
    let summary = write_merged(&shards, None, &[], &mut wire, |_, _| DumpHeader {
        reason: Reason::UntimelyDeath,
        detail: &detail,
        trigger_time: time,
        trigger_seq: None,
        clock,
        first_seq: 0,
        next_seq: 0,
        lost,
        suppressed: 0,
        scope: None,
        index: 0,
        capacity: 0,
        build: Build {
            name: &name,
            version: &version,
            id: &[],
        },
    })?;
    Ok(Some(DeathDump {
        order,
        wire,
        records: summary.records,
        lost: lost.saturating_add(summary.lost),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::FilePolicy;
    use crate::{FlightRecorder, RecorderOptions};
    use flightrec_core::event::{decode, Decoded};
    use std::path::Path;
    use std::sync::Arc;

    fn open(path: &Path) -> Arc<FlightRecorder> {
        let opts = RecorderOptions {
            shards: 2,
            program: "gw-test".into(),
            version: "9.9".into(),
            ..RecorderOptions::default()
        };
        FlightRecorder::with_ring_file(opts, path, &FilePolicy::default()).unwrap()
    }

    /// Logs `n` lines from each of two threads (so into both shards).
    fn log_lines(rec: &Arc<FlightRecorder>, n: usize) {
        std::thread::scope(|s| {
            for t in 0..2 {
                s.spawn(move || {
                    for i in 0..n {
                        let text = format!("thread {t} line {i}");
                        rec.log(Level::Info, None, "gw", &text, &[]);
                    }
                });
            }
        });
    }

    /// The messages of a dump, in order, and its header.
    fn messages(wire: &[u8]) -> (flightrec_decode::Header, Vec<String>, u64) {
        let mut d = Decoder::new(wire);
        let (mut header, mut out, mut ends) = (None, Vec::new(), 0);
        let mut last_time = 0;
        while let Some(item) = d.next().unwrap() {
            match item {
                Item::DumpStart { header: h, .. } => header = Some(h),
                Item::Record { head, payload, .. } => {
                    assert!(head.time >= last_time, "merged by time");
                    last_time = head.time;
                    let level = Level::from_u8(head.level).unwrap();
                    match decode(head.kind, level, payload).unwrap() {
                        Decoded::Log(l) => out.push(l.message.to_owned()),
                        other => panic!("{other:?}"),
                    }
                }
                Item::DumpEnd { .. } => ends += 1,
                Item::Damaged { why, .. } => panic!("{why}"),
                _ => {}
            }
        }
        (header.unwrap(), out, ends)
    }

    #[test]
    fn a_run_that_died_leaves_a_death_dump_of_its_ring_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.flr");
        let rec = open(&path);
        log_lines(&rec, 50);
        // Dies: dropped without a clean stop; the mapping's bytes stay in the file.
        drop(rec);
        let rec = open(&path);
        let (mut left, not_kept) = rec.take_left();
        assert_eq!(
            (left.len(), not_kept),
            (1, None),
            "the file of a run that died"
        );
        assert!(rec.take_left().0.is_empty(), "once");
        let left = left.pop().unwrap();
        assert_eq!(left.path, dir.path().join("ring.flr.dead-1"));
        assert!(left.path.exists());
        let death = death_dump(&left).unwrap().unwrap();
        assert_eq!((death.records, death.lost), (100, 0));
        assert_eq!(death.order.reason, Reason::UntimelyDeath);
        let (header, got, ends) = messages(&death.wire);
        assert_eq!(ends, 1, "a whole dump");
        assert_eq!(header.reason, Reason::UntimelyDeath);
        assert_eq!(header.build_name, "gw-test");
        assert_eq!(header.build_version, "9.9");
        assert_eq!(header.lost, 0);
        assert!(
            header.detail.contains("ring.flr.dead-1"),
            "{}",
            header.detail
        );
        // Dumped, it no longer waits.
        rec.left_dumped(&left).unwrap();
        assert!(!left.path.exists());
        assert!(dir.path().join("ring.flr.prev").exists());
        let mut want: Vec<String> = (0..2)
            .flat_map(|t| (0..50).map(move |i| format!("thread {t} line {i}")))
            .collect();
        let mut sorted = got.clone();
        sorted.sort();
        want.sort();
        assert_eq!(sorted, want);
        // Each thread's lines in their order.
        for t in 0..2 {
            let mine: Vec<&String> = got
                .iter()
                .filter(|m| m.starts_with(&format!("thread {t} ")))
                .collect();
            let expect: Vec<String> = (0..50).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(mine, expect.iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_clean_stop_leaves_no_death_dump() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.flr");
        let rec = open(&path);
        log_lines(&rec, 5);
        rec.close_ring_file().unwrap();
        rec.close_ring_file().unwrap(); // twice: nothing more to do
        assert!(!path.exists());
        assert!(dir.path().join("ring.flr.prev").exists());
        drop(rec);
        let rec = open(&path);
        assert!(rec.take_left().0.is_empty());
        // Nothing at the path either: a fresh file.
        let rec2 = open(&dir.path().join("other.flr"));
        assert!(rec2.take_left().0.is_empty());
        drop(rec);
    }

    #[test]
    fn callsite_records_are_dumped_resolved_with_the_dead_runs_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.flr");
        let rec = open(&path);
        for i in 0..3 {
            // The first enters the callsite table (full form), the next are callsite
            // records.
            rec.log_site(
                Level::Warn,
                "gw::site",
                "salvage_test.rs",
                7,
                &format_args!("attempt {i}"),
            );
        }
        drop(rec);
        let rec = open(&path);
        let death = death_dump(&rec.take_left().0[0]).unwrap().unwrap();
        let (_, got, _) = messages(&death.wire);
        assert_eq!(got, ["attempt 0", "attempt 1", "attempt 2"]);
    }

    #[test]
    fn a_damaged_frame_is_counted_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.flr");
        let rec = open(&path);
        for i in 0..20 {
            rec.log(Level::Info, None, "gw", &format!("line {i}"), &[]);
        }
        drop(rec);
        // Flip a byte inside the fifth record frame of the region written.
        let mut bytes = std::fs::read(&path).unwrap();
        let region = (0..2)
            .map(|r| r * crate::ringfile::REGION)
            .find(|&r| {
                let area = r + crate::ringfile::HEADER_AREA + crate::ringfile::TABLE_AREA;
                bytes[area] == flightrec_core::frame::SYNC
            })
            .unwrap();
        let area = region + crate::ringfile::HEADER_AREA + crate::ringfile::TABLE_AREA;
        let mut at = area;
        for _ in 0..4 {
            let len = u16::from_le_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
            at += flightrec_core::frame::FRAME_OVERHEAD + len;
        }
        bytes[at + 6] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let rec = open(&path);
        let death = death_dump(&rec.take_left().0[0]).unwrap().unwrap();
        assert_eq!((death.records, death.lost), (19, 1));
        let (header, got, _) = messages(&death.wire);
        assert_eq!(header.lost, 1);
        assert!(!got.contains(&"line 4".to_owned()), "{got:?}");
    }

    #[test]
    fn runs_that_die_before_their_predecessors_death_dump_leave_it_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.flr");
        // Each run logs one line and dies before it writes the death dumps it was given.
        for run in 1..=crate::ringfile::PENDING_MAX {
            let rec = open(&path);
            let (left, not_kept) = rec.take_left();
            assert_eq!((left.len(), not_kept), (run - 1, None));
            rec.log(Level::Info, None, "gw", &format!("run {run}"), &[]);
        }
        let rec = open(&path);
        let (left, not_kept) = rec.take_left();
        assert_eq!(not_kept, None);
        let mut runs: Vec<String> = left
            .iter()
            .map(|l| {
                let death = death_dump(l).unwrap().unwrap();
                let (_, got, _) = messages(&death.wire);
                assert_eq!(got.len(), 1);
                got[0].clone()
            })
            .collect();
        runs.sort();
        let mut want: Vec<String> = (1..=crate::ringfile::PENDING_MAX)
            .map(|r| format!("run {r}"))
            .collect();
        want.sort();
        assert_eq!(runs, want, "every dead run's file waits, none replaced");
        rec.log(Level::Info, None, "gw", "one too many", &[]);
        drop(rec);
        // Every slot taken: the next dead file is kept as PATH.prev only, and said.
        let rec = open(&path);
        let (left, not_kept) = rec.take_left();
        assert_eq!(left.len(), crate::ringfile::PENDING_MAX);
        assert_eq!(not_kept, Some(dir.path().join("ring.flr.prev")));
        // Once dumped, the slots are free again.
        for l in &left {
            rec.left_dumped(l).unwrap();
        }
        drop(rec);
        let rec = open(&path);
        let (left, not_kept) = rec.take_left();
        assert_eq!((left.len(), not_kept), (1, None));
    }

    /// A ring file cut anywhere or with bytes changed anywhere: never a panic, and the death
    /// dump holds only whole records that were logged, in each thread's order, the rest
    /// counted lost or (past the cut) gone.
    #[test]
    fn cut_or_damaged_ring_files_dump_only_whole_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.flr");
        let rec = open(&path);
        log_lines(&rec, 40);
        drop(rec);
        let whole = std::fs::read(&path).unwrap();
        let logged: Vec<String> = (0..2)
            .flat_map(|t| (0..40).map(move |i| format!("thread {t} line {i}")))
            .collect();
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let step = if cfg!(miri) { 50 } else { 1 };
        for round in (0..200).step_by(step) {
            let mut bytes = whole.clone();
            if round % 2 == 0 {
                bytes.truncate(next() as usize % whole.len());
            } else {
                for _ in 0..1 + round % 7 {
                    let at = next() as usize % bytes.len();
                    bytes[at] ^= 1 << (next() % 8);
                }
            }
            let left = crate::ringfile::Left {
                bytes,
                cut: false,
                path: path.clone(),
                name: "ring.flr".into(),
            };
            let Some(death) = death_dump(&left).unwrap() else {
                continue;
            };
            let mut d = Decoder::new(&death.wire[..]);
            let mut got = Vec::new();
            while let Some(item) = d.next().unwrap() {
                if let Item::Record { head, payload, .. } = item {
                    let level = Level::from_u8(head.level).unwrap();
                    if let Ok(Decoded::Log(l)) = decode(head.kind, level, payload) {
                        got.push(l.message.to_owned());
                    }
                }
            }
            assert_eq!(got.len() as u64, death.records, "round {round}");
            for t in 0..2 {
                let mine: Vec<&String> = got
                    .iter()
                    .filter(|m| m.starts_with(&format!("thread {t} ")))
                    .collect();
                let mut last = None;
                for m in mine {
                    let i = logged.iter().position(|l| l == m);
                    assert!(i.is_some(), "round {round}: {m:?} was never logged");
                    assert!(i > last, "round {round}: {m:?} out of order");
                    last = i;
                }
            }
        }
    }

    #[test]
    fn any_bytes_at_the_path_are_read_without_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.flr");
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for len in [0usize, 1, 9, 100, 4096, 70_000] {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            std::fs::write(&path, &bytes).unwrap();
            let rec = open(&path);
            let (left, _) = rec.take_left();
            assert_eq!(left[0].bytes, bytes);
            // Random bytes hold no dump: nothing to write.
            assert!(death_dump(&left[0]).unwrap().is_none());
            rec.left_dumped(&left[0]).unwrap();
        }
    }
}
