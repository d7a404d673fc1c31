//! The forwarder's bounded on-disk spool: messages are in it before
//! [`Spool::append`] returns, survive a crash of the process, and leave it in order once
//! the collector has them.
//!
//! Layout: a directory of segment files `seg-NNNNNNNNNNNNNNNNNNNN.spool`, written in
//! order. A segment starts with a header (magic `FRSPOOL1`, the sequence number of its
//! first record, the boot id its records were numbered in, a CRC-32); then records, each
//! framed as
//!
//! ```text
//! len: u32 LE | crc: u32 LE (CRC-32 of seq and message) | seq: u64 LE | message: len bytes
//! ```
//!
//! and written with one `write` on an `O_APPEND` descriptor, so a process killed at any
//! point leaves whole records and at most one torn one at the very end. On open, every
//! segment is checked: a torn or damaged tail is cut off and counted
//! ([`SpoolStats::torn`]), never handed on glued to the next record.
//!
//! Bounds: at most `max_bytes` on disk, in segments of `max_bytes / 8`. When a message
//! does not fit, the oldest segments are deleted, their records not yet acknowledged are
//! counted as dropped ([`SpoolStats::dropped`]) and the collector sees the hole in the
//! sequence numbers. Memory holds one small entry per segment.
//!
//! The acknowledged position is kept in `cursor` (segment, offset, CRC), rewritten in
//! place after each acknowledgement; segments wholly before it are deleted. After a crash
//! reading resumes there, so at most the records acknowledged after the last cursor
//! write are sent twice.
//!
//! Sequence numbers count per boot: a spool reopened in the same boot continues after its
//! newest record; one reopened after a reboot starts at 0 (older records keep their own
//! boot id in their messages).

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use crate::files::{FilePolicy, Opened, SafeDir};

/// CRC-32 of the spool's frames, header and cursor (the core's CRC, `flightrec_core::crc`).
fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

const MAGIC: &[u8; 8] = b"FRSPOOL1";
/// Frame head: length, CRC, sequence number.
const FRAME_HEAD: usize = 16;
/// Longest message stored; longer ones are refused (and counted by the caller).
pub const MAX_MESSAGE: usize = 64 * 1024;
const CURSOR_LEN: usize = 28;
/// Longest a panicking thread waits for the spool's lock.
const PANIC_WAIT: std::time::Duration = std::time::Duration::from_millis(100);
/// Smallest bound: room for the largest message beside a few segments' worth.
pub const MIN_BYTES: u64 = 4 * MAX_MESSAGE as u64;

/// Where the spool lives and how big it may grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolOptions {
    /// Directory (created 0700 if missing; a world-writable one is refused).
    pub dir: PathBuf,
    /// Most bytes on disk (at least [`MIN_BYTES`]).
    pub max_bytes: u64,
    /// Mode of the files created.
    pub mode: u32,
}

/// Counters of a [`Spool`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Messages appended since open.
    pub spooled: u64,
    /// Messages deleted unacknowledged because the spool was full.
    pub dropped: u64,
    /// Torn or damaged records cut off when the spool was opened.
    pub torn: u64,
    /// Messages not yet acknowledged (including any recovered at open).
    pub pending: u64,
    /// Bytes on disk.
    pub bytes: u64,
}

/// A position in the spool: a segment, a byte offset in it, and the records before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    /// Segment index.
    pub seg: u64,
    /// Byte offset in the segment.
    pub offset: u64,
    /// Records in the segment before `offset`.
    pub records: u64,
}

#[derive(Debug)]
struct Segment {
    index: u64,
    /// Bytes of the header (where the first record starts).
    data_start: u64,
    bytes: u64,
    records: u64,
    /// Sequence number of the last record, if any.
    last_seq: Option<u64>,
    first_seq: u64,
    current_boot: bool,
}

#[derive(Debug)]
struct Inner {
    segments: VecDeque<Segment>,
    /// The newest segment, open for appending (none until the first append after open
    /// if the newest segment is of another boot).
    file: Option<File>,
    next_seq: u64,
    acked: Cursor,
    cursor_file: File,
    frame: Vec<u8>,
    stats: SpoolStats,
}

/// The spool (see the module documentation). Shared by producers (append) and the
/// forwarder's sending thread ([`Reader`], [`Spool::ack`]).
#[derive(Debug)]
pub struct Spool {
    /// The spool's directory, opened once by its checked walk: every file is opened,
    /// created and removed relative to it.
    dir: SafeDir,
    policy: FilePolicy,
    max_bytes: u64,
    segment_bytes: u64,
    boot: String,
    inner: Mutex<Inner>,
}

fn seg_name(index: u64) -> String {
    format!("seg-{index:020}.spool")
}

fn seg_index(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".spool")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// A spool file opened through the spool's [`SafeDir`] (no link followed, only a regular
/// file, never blocking); a mode found looser than configured was tightened, and said.
fn opened(dir: &SafeDir, name: &str, result: io::Result<Opened>) -> io::Result<File> {
    let o = result?;
    if let Some((old, new)) = o.tightened {
        tracing::warn!(target: "flightrec::forward", file = %dir.path().join(name).display(),
            "spool file mode 0{old:o} tightened to 0{new:o}");
    }
    Ok(o.file)
}

fn header(first_seq: u64, boot: &str) -> Vec<u8> {
    let boot = boot.as_bytes().get(..64).unwrap_or(boot.as_bytes());
    let mut h = Vec::with_capacity(8 + 8 + 1 + boot.len() + 4);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&first_seq.to_le_bytes());
    h.push(boot.len() as u8);
    h.extend_from_slice(boot);
    let crc = crc32(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// Parses a segment header: (first seq, boot, header length).
fn parse_header(bytes: &[u8]) -> Option<(u64, &[u8], usize)> {
    if bytes.get(..8)? != MAGIC {
        return None;
    }
    let first = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    let boot_len = usize::from(*bytes.get(16)?);
    let boot = bytes.get(17..17 + boot_len)?;
    let end = 17 + boot_len;
    let crc = u32::from_le_bytes(bytes.get(end..end + 4)?.try_into().ok()?);
    (crc32(bytes.get(..end)?) == crc).then_some((first, boot, end + 4))
}

/// One frame at the start of `bytes`: (seq, message, frame length); `None` if it is not
/// whole and intact.
fn parse_frame(bytes: &[u8]) -> Option<(u64, &[u8], usize)> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    if len > MAX_MESSAGE {
        return None;
    }
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    let body = bytes.get(8..FRAME_HEAD + len)?;
    if crc32(body) != crc {
        return None;
    }
    let seq = u64::from_le_bytes(body.get(..8)?.try_into().ok()?);
    Some((seq, body.get(8..)?, FRAME_HEAD + len))
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // Every update leaves the bookkeeping whole; keep going after a panic elsewhere.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Spool {
    /// Opens (or creates) the spool in `opts.dir`, checking every segment; `boot` is
    /// this boot's id.
    pub fn open(opts: &SpoolOptions, boot: &str) -> io::Result<Arc<Spool>> {
        // The directory's whole path checked (no link followed, no unsafe directory on it),
        // created at 0700 if missing; everything below is opened relative to it.
        let policy = FilePolicy::with_mode(opts.mode);
        let dir = SafeDir::open(&opts.dir, &policy)?;
        let max_bytes = opts.max_bytes.max(MIN_BYTES);
        let segment_bytes = max_bytes / 8;
        let mut names: Vec<u64> = dir
            .names()?
            .iter()
            .filter_map(|name| seg_index(name.to_str()?))
            .collect();
        names.sort_unstable();
        let mut stats = SpoolStats::default();
        let mut segments = VecDeque::new();
        for index in names {
            let name = seg_name(index);
            let file = opened(&dir, &name, dir.open_rw(name.as_ref(), &policy, false))?;
            let mut bytes = Vec::new();
            io::Read::read_to_end(&mut &file, &mut bytes)?;
            let Some((first_seq, seg_boot, data_start)) = parse_header(&bytes) else {
                // A header cut by a crash while the segment was being created: it holds
                // no record. Anything else is damage: counted as one.
                if bytes.len() > MAGIC.len() + 8 + 1 {
                    stats.torn += 1;
                }
                dir.remove(name.as_ref())?;
                continue;
            };
            let mut seg = Segment {
                index,
                data_start: data_start as u64,
                bytes: data_start as u64,
                records: 0,
                last_seq: None,
                first_seq,
                current_boot: seg_boot == boot.as_bytes().get(..64).unwrap_or(boot.as_bytes()),
            };
            let mut at = data_start;
            while at < bytes.len() {
                match bytes.get(at..).and_then(parse_frame) {
                    Some((seq, _, len)) => {
                        seg.records += 1;
                        seg.last_seq = Some(seq);
                        at += len;
                    }
                    None => {
                        // A torn or damaged tail: cut it, so new records follow whole ones.
                        stats.torn += 1;
                        file.set_len(at as u64)?;
                        break;
                    }
                }
            }
            seg.bytes = at as u64;
            segments.push_back(seg);
        }
        let cursor_file = opened(
            &dir,
            "cursor",
            dir.open_rw("cursor".as_ref(), &policy, true),
        )?;
        let mut acked = read_cursor(&cursor_file)
            .filter(|c| {
                segments
                    .iter()
                    .any(|s| s.index == c.seg && c.offset <= s.bytes && c.offset >= s.data_start)
            })
            .unwrap_or_else(|| {
                segments.front().map_or(Cursor::default(), |s| Cursor {
                    seg: s.index,
                    offset: s.data_start,
                    records: 0,
                })
            });
        // Segments wholly acknowledged (not the newest: it fixes the next number).
        while segments.len() > 1 && segments.front().is_some_and(|s| s.index < acked.seg) {
            if let Some(s) = segments.pop_front() {
                dir.remove(seg_name(s.index).as_ref())?;
            }
        }
        if segments.front().is_some_and(|s| s.index > acked.seg) {
            if let Some(s) = segments.front() {
                acked = Cursor {
                    seg: s.index,
                    offset: s.data_start,
                    records: 0,
                };
            }
        }
        let (next_seq, file) = match segments.back() {
            Some(s) if s.current_boot => {
                let name = seg_name(s.index);
                let file = opened(&dir, &name, dir.open_append(name.as_ref(), &policy))?;
                (
                    s.last_seq.map_or(s.first_seq, |l| l.wrapping_add(1)),
                    Some(file),
                )
            }
            _ => (0, None),
        };
        stats.bytes = segments.iter().map(|s| s.bytes).sum();
        stats.pending = pending(&segments, acked);
        Ok(Arc::new(Spool {
            dir,
            policy,
            max_bytes,
            segment_bytes,
            boot: boot.to_owned(),
            inner: Mutex::new(Inner {
                segments,
                file,
                next_seq,
                acked,
                cursor_file,
                frame: Vec::new(),
                stats,
            }),
        }))
    }

    /// Numbers the next message (its per-boot sequence number), has `build` write it, and
    /// stores it: on return it is on disk (in the page cache: it survives the process,
    /// not a power cut). Makes room by dropping the oldest records if the spool is full.
    /// Fails if `build` fails, the message is longer than [`MAX_MESSAGE`] or the write
    /// fails (nothing is numbered then).
    pub fn append(
        &self,
        build: impl FnOnce(u64, &mut String) -> io::Result<()>,
    ) -> io::Result<u64> {
        let mut msg = String::new();
        let mut inner = self.lock_to_append()?;
        let seq = inner.next_seq;
        build(seq, &mut msg)?;
        if msg.len() > MAX_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("message of {} bytes: at most {MAX_MESSAGE}", msg.len()),
            ));
        }
        let frame_len = (FRAME_HEAD + msg.len()) as u64;
        self.make_room(&mut inner, seq, frame_len)?;
        let inner = &mut *inner;
        let mut frame = std::mem::take(&mut inner.frame);
        frame.clear();
        frame.extend_from_slice(&(msg.len() as u32).to_le_bytes());
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(&seq.to_le_bytes());
        frame.extend_from_slice(msg.as_bytes());
        let crc = crc32(frame.get(8..).unwrap_or_default());
        if let Some(c) = frame.get_mut(4..8) {
            c.copy_from_slice(&crc.to_le_bytes());
        }
        let written = match inner.file.as_mut() {
            Some(f) => f.write_all(&frame),
            None => Err(io::Error::other("spool segment not open")),
        };
        inner.frame = frame;
        if let Err(e) = written {
            // A partial write leaves a torn frame: cut it so the next one follows whole
            // records (and a restart would cut it anyway).
            if let (Some(f), Some(s)) = (inner.file.as_ref(), inner.segments.back()) {
                let _ = f.set_len(s.bytes);
            }
            return Err(e);
        }
        if let Some(s) = inner.segments.back_mut() {
            s.bytes += frame_len;
            s.records += 1;
            s.last_seq = Some(seq);
        }
        inner.next_seq = seq.wrapping_add(1);
        inner.stats.spooled += 1;
        inner.stats.pending += 1;
        inner.stats.bytes += frame_len;
        Ok(seq)
    }

    /// The lock, for an append. A panicking thread (the panic hook's dump notice) waits
    /// at most [`PANIC_WAIT`] for it: another thread holds it for one `write`, and this
    /// thread may hold it itself (it panicked inside an append), which never frees it.
    fn lock_to_append(&self) -> io::Result<MutexGuard<'_, Inner>> {
        if !std::thread::panicking() {
            return Ok(lock(&self.inner));
        }
        let end = std::time::Instant::now() + PANIC_WAIT;
        loop {
            match self.inner.try_lock() {
                Ok(g) => return Ok(g),
                Err(TryLockError::Poisoned(e)) => return Ok(e.into_inner()),
                Err(TryLockError::WouldBlock) if std::time::Instant::now() < end => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "spool held by another thread while this one panics",
                    ))
                }
            }
        }
    }

    /// Rotates to a new segment when the current one is full (or of another boot), and
    /// deletes the oldest while the total would pass the bound.
    fn make_room(&self, inner: &mut Inner, seq: u64, frame_len: u64) -> io::Result<()> {
        let rotate = match inner.segments.back() {
            Some(s) => {
                !s.current_boot || inner.file.is_none() || s.bytes + frame_len > self.segment_bytes
            }
            None => true,
        };
        let head = if rotate {
            header(seq, &self.boot)
        } else {
            Vec::new()
        };
        let need = frame_len + head.len() as u64;
        while inner.stats.bytes + need > self.max_bytes
            && inner.segments.len() > usize::from(!rotate)
        {
            let Some(old) = inner.segments.pop_front() else {
                break;
            };
            let unacked = if old.index == inner.acked.seg {
                old.records.saturating_sub(inner.acked.records)
            } else {
                old.records
            };
            inner.stats.dropped += unacked;
            inner.stats.pending = inner.stats.pending.saturating_sub(unacked);
            inner.stats.bytes = inner.stats.bytes.saturating_sub(old.bytes);
            if inner.segments.is_empty() {
                inner.file = None;
            }
            self.dir.remove(seg_name(old.index).as_ref())?;
            if old.index >= inner.acked.seg {
                inner.acked = match inner.segments.front() {
                    Some(s) => Cursor {
                        seg: s.index,
                        offset: s.data_start,
                        records: 0,
                    },
                    None => Cursor {
                        seg: old.index + 1,
                        offset: 0,
                        records: 0,
                    },
                };
            }
        }
        if rotate {
            let index = inner
                .segments
                .back()
                .map_or(inner.acked.seg, |s| s.index + 1);
            let name = seg_name(index);
            let mut file = self.open_segment(&name, |d, p| d.open_append(name.as_ref(), p))?;
            // A leftover of this index (a crash between deleting and creating) is emptied.
            file.set_len(0)?;
            file.write_all(&head)?;
            if inner.segments.is_empty() {
                inner.acked = Cursor {
                    seg: index,
                    offset: head.len() as u64,
                    records: 0,
                };
            }
            inner.segments.push_back(Segment {
                index,
                data_start: head.len() as u64,
                bytes: head.len() as u64,
                records: 0,
                last_seq: None,
                first_seq: seq,
                current_boot: true,
            });
            inner.stats.bytes += head.len() as u64;
            inner.file = Some(file);
        }
        Ok(())
    }

    /// Notes that everything before `to` has been delivered: saves the position (so a
    /// restart resumes there) and deletes segments wholly before it.
    pub fn ack(&self, to: Cursor) -> io::Result<()> {
        let mut inner = lock(&self.inner);
        if to <= inner.acked {
            return Ok(());
        }
        let acked = records_between(&inner.segments, inner.acked, to);
        inner.stats.pending = inner.stats.pending.saturating_sub(acked);
        inner.acked = to;
        while inner.segments.len() > 1 && inner.segments.front().is_some_and(|s| s.index < to.seg) {
            if let Some(s) = inner.segments.pop_front() {
                inner.stats.bytes = inner.stats.bytes.saturating_sub(s.bytes);
                self.dir.remove(seg_name(s.index).as_ref())?;
            }
        }
        write_cursor(&inner.cursor_file, to)
    }

    /// Opens a spool file through the spool's directory.
    fn open_segment(
        &self,
        name: &str,
        open: impl FnOnce(&SafeDir, &FilePolicy) -> io::Result<Opened>,
    ) -> io::Result<File> {
        opened(&self.dir, name, open(&self.dir, &self.policy))
    }

    /// Where reading resumes after a reconnect: the acknowledged position.
    pub fn acked(&self) -> Cursor {
        lock(&self.inner).acked
    }

    /// Counters.
    pub fn stats(&self) -> SpoolStats {
        lock(&self.inner).stats
    }

    /// Where the next record at or after `pos` is: the segment's data bounds, or the next
    /// segment if `pos` is past the end of a closed one or in a deleted one.
    fn locate(&self, pos: Cursor) -> Option<(Cursor, u64)> {
        let inner = lock(&self.inner);
        let newest = inner.segments.back()?.index;
        for s in &inner.segments {
            if s.index < pos.seg {
                continue;
            }
            let at = if s.index == pos.seg && pos.offset >= s.data_start {
                pos
            } else {
                Cursor {
                    seg: s.index,
                    offset: s.data_start,
                    records: 0,
                }
            };
            if at.offset < s.bytes || s.index == newest {
                return Some((at, s.bytes));
            }
        }
        None
    }
}

fn pending(segments: &VecDeque<Segment>, acked: Cursor) -> u64 {
    segments
        .iter()
        .map(|s| match s.index.cmp(&acked.seg) {
            std::cmp::Ordering::Less => 0,
            std::cmp::Ordering::Equal => s.records.saturating_sub(acked.records),
            std::cmp::Ordering::Greater => s.records,
        })
        .sum()
}

fn records_between(segments: &VecDeque<Segment>, from: Cursor, to: Cursor) -> u64 {
    let total = |c: Cursor| -> u64 {
        segments
            .iter()
            .filter(|s| s.index < c.seg)
            .map(|s| s.records)
            .sum::<u64>()
            + c.records
    };
    total(to).saturating_sub(total(from))
}

fn read_cursor(f: &File) -> Option<Cursor> {
    let mut b = [0u8; CURSOR_LEN];
    f.read_exact_at(&mut b, 0).ok()?;
    let word =
        |i: usize| -> Option<u64> { Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?)) };
    let crc = u32::from_le_bytes(b.get(24..28)?.try_into().ok()?);
    (crc32(b.get(..24)?) == crc).then_some(Cursor {
        seg: word(0)?,
        offset: word(8)?,
        records: word(16)?,
    })
}

fn write_cursor(f: &File, c: Cursor) -> io::Result<()> {
    let mut b = [0u8; CURSOR_LEN];
    for (i, v) in [c.seg, c.offset, c.records].into_iter().enumerate() {
        if let Some(w) = b.get_mut(i * 8..i * 8 + 8) {
            w.copy_from_slice(&v.to_le_bytes());
        }
    }
    let crc = crc32(b.get(..24).unwrap_or_default());
    if let Some(w) = b.get_mut(24..28) {
        w.copy_from_slice(&crc.to_le_bytes());
    }
    f.write_all_at(&b, 0)
}

/// One message read from the spool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its sequence number.
    pub seq: u64,
    /// The message.
    pub message: Vec<u8>,
    /// The position after it (acknowledge up to here).
    pub end: Cursor,
}

/// Reads the spool in order from a position, without holding up producers (the file is
/// read outside the lock, up to what was whole when it looked).
#[derive(Debug)]
pub struct Reader {
    spool: Arc<Spool>,
    pos: Cursor,
    file: Option<(u64, File)>,
    buf: Vec<u8>,
    /// `buf` holds this segment's bytes...
    buf_seg: u64,
    /// ...from this offset.
    buf_at: u64,
    /// Damaged records skipped while reading (only after a disk error).
    pub damaged: u64,
}

impl Reader {
    /// A reader at the acknowledged position.
    pub fn new(spool: Arc<Spool>) -> Reader {
        let pos = spool.acked();
        Reader {
            spool,
            pos,
            file: None,
            buf: Vec::new(),
            buf_seg: 0,
            buf_at: 0,
            damaged: 0,
        }
    }

    /// Goes back to the acknowledged position (after a reconnect, to resend).
    pub fn rewind(&mut self) {
        self.pos = self.spool.acked();
        self.buf.clear();
    }

    /// The message at the position from what was read before, if it holds it whole
    /// (read when it was whole; its CRC is checked again): no lock taken.
    fn buffered(&mut self) -> Option<Entry> {
        if self.buf_seg != self.pos.seg {
            return None;
        }
        let skip = usize::try_from(self.pos.offset.checked_sub(self.buf_at)?).ok()?;
        let (seq, message, len) = self.buf.get(skip..).and_then(parse_frame)?;
        let entry = Entry {
            seq,
            message: message.to_vec(),
            end: Cursor {
                seg: self.pos.seg,
                offset: self.pos.offset + len as u64,
                records: self.pos.records + 1,
            },
        };
        self.pos = entry.end;
        Some(entry)
    }

    /// The next message, or `None` when everything stored has been read.
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        if let Some(entry) = self.buffered() {
            return Ok(Some(entry));
        }
        loop {
            let Some((at, end)) = self.spool.locate(self.pos) else {
                return Ok(None);
            };
            self.pos = at;
            if at.offset >= end {
                return Ok(None);
            }
            if self.file.as_ref().is_none_or(|(i, _)| *i != at.seg) {
                let name = seg_name(at.seg);
                match self
                    .spool
                    .open_segment(&name, |d, p| d.open_read(OsStr::new(&name), p))
                {
                    Ok(f) => self.file = Some((at.seg, f)),
                    // Deleted since (dropped while full): look again.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        self.pos.seg += 1;
                        self.pos.offset = 0;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            if let Some(entry) = self.buffered() {
                return Ok(Some(entry));
            }
            // Refill from this position, up to what was whole when we looked.
            let want = (end - at.offset).min(256 * 1024) as usize;
            self.buf.resize(want, 0);
            if let Some((_, f)) = self.file.as_ref() {
                f.read_exact_at(&mut self.buf, at.offset)?;
            }
            self.buf_seg = at.seg;
            self.buf_at = at.offset;
            if parse_frame(&self.buf).is_none() {
                // Only a disk error can damage a record after the open-time check: skip
                // the rest of this segment rather than stop forever.
                self.damaged += 1;
                self.pos = Cursor {
                    seg: at.seg,
                    offset: end,
                    records: at.records,
                };
                self.buf.clear();
                if self
                    .spool
                    .locate(self.pos)
                    .is_some_and(|(c, e)| c.seg == at.seg && c.offset >= e)
                {
                    return Ok(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::path::Path;

    fn opts(dir: &Path, max_bytes: u64) -> SpoolOptions {
        SpoolOptions {
            dir: dir.join("spool"),
            max_bytes,
            mode: 0o600,
        }
    }

    fn msg(seq: u64) -> impl FnOnce(u64, &mut String) -> io::Result<()> {
        move |s, out| {
            assert_eq!(s, seq);
            out.push_str(&format!("message {s} {}", "x".repeat((s % 50) as usize)));
            Ok(())
        }
    }

    fn read_all(r: &mut Reader) -> Vec<Entry> {
        std::iter::from_fn(|| r.next_entry().unwrap()).collect()
    }

    #[test]
    fn in_order_and_resumed_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(dir.path(), 1 << 20);
        let spool = Spool::open(&o, "boot-a").unwrap();
        for i in 0..1000 {
            spool.append(msg(i)).unwrap();
        }
        let mut r = Reader::new(spool.clone());
        let all = read_all(&mut r);
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (0..1000).collect::<Vec<_>>()
        );
        assert_eq!(all[7].message, b"message 7 xxxxxxx");
        spool.ack(all[399].end).unwrap();
        assert_eq!(spool.stats().pending, 600);
        // Killed: nothing flushed, nothing closed.
        std::mem::forget(r);
        std::mem::forget(spool);
        let spool = Spool::open(&o, "boot-a").unwrap();
        assert_eq!(spool.stats().pending, 600);
        assert_eq!(spool.stats().torn, 0);
        // Numbering continues in the same boot.
        assert_eq!(spool.append(msg(1000)).unwrap(), 1000);
        let got: Vec<u64> = read_all(&mut Reader::new(spool.clone()))
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(got, (400..1001).collect::<Vec<_>>());
        use std::os::unix::fs::PermissionsExt;
        for e in std::fs::read_dir(&o.dir).unwrap() {
            let mode = e.unwrap().metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn torn_tail_is_cut_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(dir.path(), 1 << 20);
        let spool = Spool::open(&o, "b").unwrap();
        for i in 0..10 {
            spool.append(msg(i)).unwrap();
        }
        drop(spool);
        let seg = o.dir.join(seg_name(0));
        let len = std::fs::metadata(&seg).unwrap().len();
        // A crash in the middle of the last record's write.
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 5)
            .unwrap();
        let spool = Spool::open(&o, "b").unwrap();
        assert_eq!(spool.stats().torn, 1);
        assert_eq!(spool.stats().pending, 9);
        // The next record follows whole ones and takes the lost one's number.
        assert_eq!(spool.append(msg(9)).unwrap(), 9);
        let got: Vec<u64> = read_all(&mut Reader::new(spool))
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn full_spool_drops_the_oldest_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(dir.path(), MIN_BYTES);
        let spool = Spool::open(&o, "b").unwrap();
        let n = 10_000;
        for i in 0..n {
            spool.append(msg(i)).unwrap();
        }
        let s = spool.stats();
        assert!(s.bytes <= MIN_BYTES, "{s:?}");
        assert!(s.dropped > 0, "{s:?}");
        assert_eq!(s.dropped + s.pending, n);
        let got: Vec<u64> = read_all(&mut Reader::new(spool.clone()))
            .iter()
            .map(|e| e.seq)
            .collect();
        // The newest are kept, in order, with no hole among them.
        assert_eq!(got.len() as u64, s.pending);
        assert_eq!(*got.last().unwrap(), n - 1);
        assert!(got.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(got[0], s.dropped);
    }

    #[test]
    fn reader_skips_segments_dropped_under_it() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(&opts(dir.path(), MIN_BYTES), "b").unwrap();
        let mut r = Reader::new(spool.clone());
        spool.append(msg(0)).unwrap();
        assert_eq!(r.next_entry().unwrap().unwrap().seq, 0);
        for i in 1..10_000 {
            spool.append(msg(i)).unwrap();
        }
        let got: Vec<u64> = read_all(&mut r).iter().map(|e| e.seq).collect();
        let dropped = spool.stats().dropped;
        assert!(dropped > 0);
        assert_eq!(got.first().copied(), Some(dropped));
        assert_eq!(got.last().copied(), Some(9999));
    }

    #[test]
    fn new_boot_numbers_from_zero_after_the_old_records() {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(dir.path(), 1 << 20);
        let spool = Spool::open(&o, "boot-a").unwrap();
        for i in 0..3 {
            spool.append(msg(i)).unwrap();
        }
        drop(spool);
        let spool = Spool::open(&o, "boot-b").unwrap();
        assert_eq!(spool.append(msg(0)).unwrap(), 0);
        let got: Vec<u64> = read_all(&mut Reader::new(spool))
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(got, [0, 1, 2, 0]);
    }

    #[test]
    fn the_crc_is_the_cores() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        assert_eq!(crc32(&bytes), flightrec_core::crc::crc32(&bytes));
    }

    #[test]
    fn links_and_special_files_are_refused_without_blocking() {
        use crate::files::{refusal, Refusal};
        let dir = tempfile::tempdir().unwrap();
        let o = opts(dir.path(), 1 << 20);
        let spool = Spool::open(&o, "b").unwrap();
        spool.append(msg(0)).unwrap();
        drop(spool);
        // The cursor replaced by a link to a file elsewhere: refused, the target untouched.
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, b"keep").unwrap();
        std::fs::remove_file(o.dir.join("cursor")).unwrap();
        std::os::unix::fs::symlink(&target, o.dir.join("cursor")).unwrap();
        let e = Spool::open(&o, "b").unwrap_err();
        assert_eq!(refusal(&e), Some(Refusal::Symlink), "{e}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        std::fs::remove_file(o.dir.join("cursor")).unwrap();
        // A FIFO where a segment should be: refused, never opened (nothing waits).
        let fifo = o.dir.join(seg_name(7));
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo has no other preconditions.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = Spool::open(&o, "b").unwrap_err();
        assert_eq!(refusal(&e), Some(Refusal::NotRegular), "{e}");
        std::fs::remove_file(&fifo).unwrap();
        // The spool directory itself a link: refused.
        let real = dir.path().join("real");
        std::fs::rename(&o.dir, &real).unwrap();
        std::os::unix::fs::symlink(&real, &o.dir).unwrap();
        let e = Spool::open(&o, "b").unwrap_err();
        assert_eq!(refusal(&e), Some(Refusal::Symlink), "{e}");
    }
}
