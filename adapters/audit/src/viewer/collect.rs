//! Keeping the records to show, newest first, in memory that does not grow with the logs.
//!
//! Records are held in memory up to [`HOLD`] bytes; beyond that they are sorted and
//! written as a *run* to an unnamed temporary file (`tempfile::tempfile`: created with
//! mode 0600 and already unlinked, so nothing is left behind), holding only what the
//! output needs (the table's cells, or the line). Showing them merges the runs, at most
//! [`FAN_IN`] at a time (more are first merged into longer runs), so the memory held is
//! bounded however many records match. `--limit N` keeps only the N newest in a heap, as
//! before.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;

use super::table::{self, Widths};
use super::Output;
use crate::AuditRecord;

/// Bytes of records (an estimate) held in memory before they are written out as a run.
pub(super) const HOLD: usize = 2 << 20;

/// Runs merged at once.
const FAN_IN: usize = 16;

/// Bytes read ahead from each run while merging.
const RUN_BUFFER: usize = 64 * 1024;

/// A kept record; ordered by time, then by reading order (later lines are newer).
pub(super) struct Entry {
    pub(super) unix_secs: i64,
    pub(super) seq: u64,
    pub(super) record: AuditRecord,
    pub(super) line: String,
}

impl Entry {
    /// Bytes it holds, roughly: the line, the record's text, the structures.
    fn weight(&self) -> usize {
        2 * self.line.len() + std::mem::size_of::<Entry>()
    }

    fn key(&self) -> (i64, u64) {
        (self.unix_secs, self.seq)
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// Keeps every record (spilling sorted runs to a temporary file), or only the newest
/// `limit` ones.
pub(super) enum Collector {
    /// Every record.
    All {
        /// Records not yet written out.
        held: Vec<Entry>,
        /// Their [`Entry::weight`].
        weight: usize,
        /// What is shown of each record (decides what a run holds).
        output: Output,
        /// The runs written, once there are any.
        spill: Option<Spill>,
        /// [`HOLD`] and [`FAN_IN`] (tests make them small).
        limits: (usize, usize),
    },
    /// The newest `limit` records.
    Newest {
        /// The oldest kept on top.
        heap: BinaryHeap<Reverse<Entry>>,
        /// How many.
        limit: usize,
    },
}

/// The temporary file and the runs in it (byte ranges, each sorted newest first).
pub(super) struct Spill {
    file: File,
    fan_in: usize,
    runs: Vec<(u64, u64)>,
    /// Bytes written so far (the end of the last run).
    end: u64,
}

impl Collector {
    /// A collector for `limit` (every record when `None`) shown as `output`.
    pub(super) fn new(limit: Option<usize>, output: Output) -> Collector {
        match limit {
            Some(limit) => Collector::Newest {
                heap: BinaryHeap::new(),
                limit,
            },
            None => Collector::All {
                held: Vec::new(),
                weight: 0,
                output,
                spill: None,
                limits: (HOLD, FAN_IN),
            },
        }
    }

    /// Keeps `e`. An error is about the temporary file: the records are then held in
    /// memory (nothing is lost), and the caller says so.
    pub(super) fn push(&mut self, e: Entry) -> io::Result<()> {
        match self {
            Collector::All {
                held,
                weight,
                output,
                spill,
                limits: (hold, fan_in),
            } => {
                *weight += e.weight();
                held.push(e);
                if *weight > *hold {
                    let spill = match spill {
                        Some(s) => s,
                        None => spill.insert(Spill {
                            file: tempfile::tempfile()?,
                            fan_in: *fan_in,
                            runs: Vec::new(),
                            end: 0,
                        }),
                    };
                    held.sort_unstable_by(|a, b| b.cmp(a));
                    let mut run = BufWriter::with_capacity(RUN_BUFFER, &spill.file);
                    let mut written = 0u64;
                    for e in held.iter() {
                        written += write_item(&mut run, &Item::of(e, *output))?;
                    }
                    run.flush()?;
                    spill.runs.push((spill.end, spill.end + written));
                    spill.end += written;
                    held.clear();
                    held.shrink_to(0);
                    *weight = 0;
                }
            }
            Collector::Newest { heap, limit } => {
                if heap.len() < *limit {
                    heap.push(Reverse(e));
                } else if heap.peek().is_some_and(|Reverse(oldest)| *oldest < e) {
                    heap.pop();
                    heap.push(Reverse(e));
                }
            }
        }
        Ok(())
    }

    /// Writes the records newest first as `output`; returns how many.
    pub(super) fn write(self, out: &mut dyn Write, output: Output) -> io::Result<u64> {
        let (held, spill) = match self {
            Collector::All { held, spill, .. } => (held, spill),
            Collector::Newest { heap, .. } => {
                (heap.into_iter().map(|Reverse(e)| e).collect(), None)
            }
        };
        let mut held = held;
        held.sort_unstable_by(|a, b| b.cmp(a));
        let Some(mut spill) = spill else {
            match output {
                Output::Table => table::write_table(out, &held)?,
                Output::Lines => held.iter().try_for_each(|e| writeln!(out, "{}", e.line))?,
            }
            return Ok(held.len() as u64);
        };
        // What is still held is one more run, read from memory.
        let last: Vec<Item> = held.iter().map(|e| Item::of(e, output)).collect();
        drop(held);
        spill.merge_down()?;
        match output {
            Output::Table => {
                let mut widths = Widths::default();
                spill.merged(&last, |item| {
                    widths.measure(&item.cells());
                    Ok(())
                })?;
                widths.write_row(out, &table::HEADERS)?;
                spill.merged(&last, |item| widths.write_row(out, &item.cells()))
            }
            Output::Lines => spill.merged(&last, |item| {
                out.write_all(item.fields.first().map_or(&[][..], |f| f.as_bytes()))?;
                out.write_all(b"\n")
            }),
        }
    }
}

/// What a run holds of a record: its key and the text shown (the table's five cells, or
/// the line).
struct Item {
    key: (i64, u64),
    fields: Vec<String>,
}

impl Item {
    fn of(e: &Entry, output: Output) -> Item {
        Item {
            key: e.key(),
            fields: match output {
                Output::Table => table::cells(e).into(),
                Output::Lines => vec![e.line.clone()],
            },
        }
    }

    /// The five cells of a table row.
    fn cells(&self) -> [&str; 5] {
        let cell = |i: usize| self.fields.get(i).map_or("", String::as_str);
        [cell(0), cell(1), cell(2), cell(3), cell(4)]
    }
}

/// Writes `item` (key, field count, then each field with its length); returns the bytes
/// written.
fn write_item(w: &mut impl Write, item: &Item) -> io::Result<u64> {
    let mut n = 0u64;
    w.write_all(&item.key.0.to_le_bytes())?;
    w.write_all(&item.key.1.to_le_bytes())?;
    w.write_all(&(item.fields.len() as u32).to_le_bytes())?;
    n += 20;
    for f in &item.fields {
        w.write_all(&(f.len() as u32).to_le_bytes())?;
        w.write_all(f.as_bytes())?;
        n += 4 + f.len() as u64;
    }
    Ok(n)
}

/// Reads one run of the temporary file, item by item.
struct RunReader<'f> {
    file: &'f File,
    /// File offset of `buf`'s first byte.
    at: u64,
    end: u64,
    buf: Vec<u8>,
    /// Bytes of `buf` already used.
    used: usize,
}

impl RunReader<'_> {
    /// The next `n` bytes of the run.
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.used + n > self.buf.len() {
            let keep = self.buf.split_off(self.used);
            self.at += self.used as u64;
            self.used = 0;
            let have = keep.len();
            let want = (n.max(RUN_BUFFER) as u64).min(self.end - self.at) as usize;
            if want < n {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "temporary file: run cut short",
                ));
            }
            self.buf = keep;
            self.buf.resize(want, 0);
            let tail = self.buf.get_mut(have..).unwrap_or_default();
            self.file.read_exact_at(tail, self.at + have as u64)?;
        }
        let bytes = self.buf.get(self.used..self.used + n).unwrap_or_default();
        self.used += n;
        Ok(bytes)
    }

    fn next_item(&mut self) -> io::Result<Option<Item>> {
        if self.at + self.used as u64 >= self.end {
            return Ok(None);
        }
        let number = |b: &[u8]| -> u64 {
            let mut a = [0u8; 8];
            for (d, s) in a.iter_mut().zip(b) {
                *d = *s;
            }
            u64::from_le_bytes(a)
        };
        let head = self.take(20)?;
        let secs = number(head.get(..8).unwrap_or_default()) as i64;
        let seq = number(head.get(8..16).unwrap_or_default());
        let count = number(head.get(16..20).unwrap_or_default()) as usize;
        let mut fields = Vec::with_capacity(count.min(5));
        for _ in 0..count {
            let len = number(self.take(4)?) as usize;
            let text = String::from_utf8_lossy(self.take(len)?).into_owned();
            fields.push(text);
        }
        Ok(Some(Item {
            key: (secs, seq),
            fields,
        }))
    }
}

/// A source of items newest first: a run of the file, or the items still in memory.
enum Source<'a> {
    Run(RunReader<'a>),
    Held(std::slice::Iter<'a, Item>),
}

impl Source<'_> {
    fn next_item(&mut self) -> io::Result<Option<Item>> {
        match self {
            Source::Run(r) => r.next_item(),
            Source::Held(it) => Ok(it.next().map(|i| Item {
                key: i.key,
                fields: i.fields.clone(),
            })),
        }
    }
}

/// Merges `sources` (each newest first), calling `f` with each item newest first.
fn merge(
    mut sources: Vec<Source<'_>>,
    mut f: impl FnMut(Item) -> io::Result<()>,
) -> io::Result<()> {
    let mut heads = BinaryHeap::new();
    let mut pending: Vec<Option<Item>> = Vec::with_capacity(sources.len());
    for (i, s) in sources.iter_mut().enumerate() {
        let item = s.next_item()?;
        if let Some(item) = &item {
            heads.push((item.key, i));
        }
        pending.push(item);
    }
    while let Some((_, i)) = heads.pop() {
        let (Some(slot), Some(source)) = (pending.get_mut(i), sources.get_mut(i)) else {
            continue;
        };
        let next = source.next_item()?;
        if let Some(item) = &next {
            heads.push((item.key, i));
        }
        if let Some(item) = std::mem::replace(slot, next) {
            f(item)?;
        }
    }
    Ok(())
}

impl Spill {
    fn reader(&self, (start, end): (u64, u64)) -> RunReader<'_> {
        RunReader {
            file: &self.file,
            at: start,
            end,
            buf: Vec::new(),
            used: 0,
        }
    }

    /// Merges runs `fan_in` at a time into longer ones until at most `fan_in - 1` are
    /// left (one more source is the records still in memory).
    fn merge_down(&mut self) -> io::Result<()> {
        while self.runs.len() >= self.fan_in.max(2) {
            let group: Vec<(u64, u64)> = self.runs.drain(..self.fan_in.max(2)).collect();
            let sources = group.iter().map(|&r| Source::Run(self.reader(r))).collect();
            let mut w = BufWriter::with_capacity(RUN_BUFFER, &self.file);
            let mut written = 0u64;
            merge(sources, |item| {
                written += write_item(&mut w, &item)?;
                Ok(())
            })?;
            w.flush()?;
            drop(w);
            self.runs.push((self.end, self.end + written));
            self.end += written;
        }
        Ok(())
    }

    /// Calls `f` with every item, the runs' and `held`'s, newest first.
    fn merged(&self, held: &[Item], mut f: impl FnMut(&Item) -> io::Result<()>) -> io::Result<u64> {
        let mut sources: Vec<Source<'_>> = self
            .runs
            .iter()
            .map(|&r| Source::Run(self.reader(r)))
            .collect();
        sources.push(Source::Held(held.iter()));
        let mut n = 0u64;
        merge(sources, |item| {
            n += 1;
            f(&item)
        })?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditEvent, AuditRecord};
    use proptest::prelude::*;

    fn entry(unix_secs: i64, seq: u64) -> Entry {
        Entry {
            unix_secs,
            seq,
            record: AuditRecord {
                unix_secs,
                event: AuditEvent::Logout {
                    user: format!("u{seq}"),
                    host: "h".to_owned(),
                    peer: None,
                },
            },
            line: format!("line {seq} at {unix_secs}"),
        }
    }

    fn shown(times: &[i64], output: Output, limits: Option<(usize, usize)>) -> String {
        let mut c = Collector::new(None, output);
        if let (Some(l), Collector::All { limits, .. }) = (limits, &mut c) {
            *limits = l;
        }
        for (seq, &t) in times.iter().enumerate() {
            c.push(entry(t, seq as u64)).unwrap();
        }
        let mut out = Vec::new();
        let n = c.write(&mut out, output).unwrap();
        assert_eq!(n, times.len() as u64);
        String::from_utf8(out).unwrap()
    }

    proptest! {
        /// The model is the collector that holds everything in memory: spilling runs,
        /// merging them (several levels deep) shows the same, byte for byte.
        #[test]
        fn runs_show_what_memory_shows(
            times in proptest::collection::vec(0i64..50, 0..300),
            hold in 100usize..3000,
            fan_in in 2usize..5,
            table in any::<bool>(),
        ) {
            let output = if table { Output::Table } else { Output::Lines };
            prop_assert_eq!(
                shown(&times, output, Some((hold, fan_in))),
                shown(&times, output, None)
            );
        }
    }
}
