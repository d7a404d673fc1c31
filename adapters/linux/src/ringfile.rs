//! The crash-survivable ring file: each shard's records are also written, as wire-format
//! record frames, into a memory-mapped file (`MAP_SHARED`), so a process killed by
//! SIGKILL, the OOM killer or a segfault leaves them in the page cache and on disk.
//!
//! Layout: one region per shard, each `HEADER_AREA + TABLE_AREA + SHARD_BYTES` bytes. A
//! region starts with a dump's magic, version and header frame (reason "untimely death",
//! detail naming the shard), then the callsite table area: one callsite table frame per
//! callsite (`WIRE-FORMAT.md` section 9), written when the callsite enters this process's
//! table, before any record of it, so that each region reads without the program that wrote
//! it. Then a circular area of record frames: a frame that does not fit before the end
//! of the area zeroes the rest and starts again at its beginning. No end frame: a decoder
//! (`flightrec decode FILE`) shows each region as an incomplete dump, skips the frame that
//! was being written when the process died and the oldest frame a newer one partly
//! overwrote (their CRCs fail), and reports where sequence numbers jump back at the wrap.
//! Sequence numbers are per shard; times order records across shards.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flightrec_core::callsite::FRAME_CALLSITES;
use flightrec_core::dump::{Build, ClockInfo, DumpHeader, RecordHead};
use flightrec_core::frame::{FrameWriter, FRAME_HEADER, FRAME_OVERHEAD, FRAME_RECORD, MAX_BODY};
use flightrec_core::trigger::Reason;

use crate::files::{FilePolicy, SafeDir};
use crate::SHARD_BYTES;

/// Bytes before each shard's callsite table area (magic, version, header frame, zero
/// padding).
pub const HEADER_AREA: usize = 512;
/// Bytes of each shard's callsite table area (zero padding after its frames). A callsite
/// that would not fit is not given an id while the file is open: its records keep the full
/// form, readable without a table.
pub const TABLE_AREA: usize = 32 * 1024;
/// Bytes of one shard's region.
pub const REGION: usize = HEADER_AREA + TABLE_AREA + SHARD_BYTES;

/// The ring file's shared mapping: unmapped when the last [`Region`] holding it is dropped,
/// so no region can outlive the memory it writes to, whatever order things are dropped in.
struct Mapping {
    ptr: *mut u8,
    len: usize,
    /// Kept open while mapped.
    _file: File,
}

// SAFETY: the mapping is plain memory owned by this value and reached only through the
// regions, each of which writes its own disjoint part (under its shard's lock); unmapping
// it from whichever thread drops the last region is sound.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are the mapping made in `create`, unmapped once, when the last
        // region holding it is gone.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// One shard's circular area inside the mapping.
pub(crate) struct Region {
    /// Start of this region's circular area, `SHARD_BYTES` long, inside `_map`.
    area: *mut u8,
    head: usize,
    /// Keeps the mapping `area` points into alive as long as this region.
    _map: Arc<Mapping>,
    /// Keeps the file's callsite tables attached to the process's table while the file is
    /// written.
    _tables: Arc<Tables>,
}

/// The callsite table areas of a ring file's regions: written by the process's callsite
/// table (under its lock, the only writer), frame by frame.
pub(crate) struct Tables {
    map: Arc<Mapping>,
    /// Per region: where its table area starts in the mapping, and how much is used; only
    /// touched under the callsite table's lock.
    areas: std::sync::Mutex<Vec<(usize, usize)>>,
}

impl Tables {
    /// Whether a table frame of `body` bytes fits every region.
    pub(crate) fn room(&self, body: usize) -> bool {
        let areas = self.areas.lock().unwrap_or_else(|e| e.into_inner());
        areas
            .iter()
            .all(|&(_, used)| used + FRAME_OVERHEAD + body <= TABLE_AREA)
    }

    /// Appends a table frame holding `body` (one encoded callsite) to every region's table
    /// area that has room.
    pub(crate) fn append(&self, body: &[u8]) {
        let mut areas = self.areas.lock().unwrap_or_else(|e| e.into_inner());
        for (start, used) in areas.iter_mut() {
            let frame = FRAME_OVERHEAD + body.len();
            if *used + frame > TABLE_AREA {
                continue;
            }
            // SAFETY: the table area `start..start + TABLE_AREA` lies inside the mapping
            // (checked when the areas were made), which `map` keeps alive; only this
            // value writes it, under its lock.
            let area =
                unsafe { std::slice::from_raw_parts_mut(self.map.ptr.add(*start), TABLE_AREA) };
            if let Some(dst) = area.get_mut(*used..*used + frame) {
                if FrameWriter::new(dst)
                    .frame_bytes(FRAME_CALLSITES, body, &[])
                    .is_ok()
                {
                    *used += frame;
                }
            }
        }
    }
}

// SAFETY: a region is used only under its shard's lock, it is the only writer of its area,
// and it holds the mapping alive (`_map`).
unsafe impl Send for Region {}

/// Most bytes of a ring file left by a previous run that are read back for its death dump
/// (a recorder's largest file); a larger file is read that far, and the dump says so.
pub(crate) const LEFT_MAX: usize = crate::MAX_SHARDS * REGION;

/// Most ring files of runs that died kept waiting for their death dump (`PATH.dead-1` to
/// `PATH.dead-8`): each run that died before it wrote its predecessor's death dump adds
/// one. Beyond that a dead run's file is kept as `PATH.prev` only, and this is said.
pub(crate) const PENDING_MAX: usize = 8;

/// A ring file and where it is: what [`create`] made, and what it found there.
pub(crate) struct RingFile {
    /// One region per shard.
    pub(crate) regions: Vec<Region>,
    /// The files of runs that died, waiting for their death dumps.
    pub(crate) left: Vec<Left>,
    /// A dead run's file that could not be kept for a death dump (more than
    /// [`PENDING_MAX`] wait): its name (`PATH.prev`), to be said.
    pub(crate) not_kept: Option<PathBuf>,
    /// Where it is.
    pub(crate) place: Place,
}

/// Where a ring file is: its directory (held open: renames happen in it, wherever its path
/// leads later) and its name.
pub(crate) struct Place {
    dir: SafeDir,
    name: OsString,
}

/// The ring file of a run that died, read back; kept as `PATH.dead-K` until its death dump
/// is written.
#[derive(Debug)]
pub(crate) struct Left {
    /// Its bytes, at most [`LEFT_MAX`].
    pub(crate) bytes: Vec<u8>,
    /// Whether it was longer than that.
    pub(crate) cut: bool,
    /// Its path now (`PATH.dead-K`).
    pub(crate) path: PathBuf,
    /// Its name in the directory.
    pub(crate) name: OsString,
}

impl Place {
    /// Marks a clean stop: the file is renamed to `PATH.prev` (replacing an older one), so
    /// that the next run finds nothing at the path and writes no death dump. The regions
    /// keep writing to it until they are dropped. Once is enough: with nothing at the path
    /// (closed already), nothing is done.
    pub(crate) fn close(&self) -> io::Result<()> {
        if self.dir.entry(&self.name)?.is_none() {
            return Ok(());
        }
        self.dir.rename(&self.name, &suffixed(&self.name, ".prev"))
    }

    /// `left`'s death dump is written: its file becomes `PATH.prev` (replacing an older
    /// one), no longer waiting.
    pub(crate) fn dumped(&self, left: &Left) -> io::Result<()> {
        self.dir.rename(&left.name, &suffixed(&self.name, ".prev"))
    }
}

fn suffixed(name: &OsStr, suffix: &str) -> OsString {
    let mut s = name.to_owned();
    s.push(suffix);
    s
}

/// Reads back the file `name` of `dir` (at most [`LEFT_MAX`] bytes).
fn read_left(dir: &SafeDir, name: &OsStr, policy: &FilePolicy) -> io::Result<(Vec<u8>, bool)> {
    let file = dir.open_read(name, policy)?.file;
    let mut bytes = Vec::new();
    (&file).take(LEFT_MAX as u64).read_to_end(&mut bytes)?;
    let cut = file.metadata()?.len() > LEFT_MAX as u64;
    Ok((bytes, cut))
}

/// Creates (or replaces) the ring file for `shards` shards, by the rules of
/// [`crate::files`]: the path walked without following a link, every directory checked, the
/// file created new (`O_EXCL`) at `policy.mode`; and maps it: one region per shard. A
/// regular file left by a previous run did not get a clean stop ([`Place::close`]): that
/// run died. It is read back and kept as `PATH.dead-K` for its death dump
/// ([`RingFile::left`], with those of earlier runs still waiting). A link, FIFO, socket or
/// device at any of these names is refused.
pub(crate) fn create(
    path: &Path,
    shards: usize,
    policy: &FilePolicy,
    build: &Build<'_>,
) -> io::Result<RingFile> {
    let (dir, name) = crate::files::split(path)?;
    let dir = SafeDir::open(dir, policy)?;
    dir.check_regular(name)?;
    dir.check_regular(&suffixed(name, ".prev"))?;
    let mut left = Vec::new();
    let mut free = None;
    for k in 1..=PENDING_MAX {
        let dead = suffixed(name, &format!(".dead-{k}"));
        dir.check_regular(&dead)?;
        if dir.entry(&dead)?.is_none() {
            free = free.or(Some(dead));
            continue;
        }
        let (bytes, cut) = read_left(&dir, &dead, policy)?;
        left.push(Left {
            bytes,
            cut,
            path: dir.path().join(&dead),
            name: dead,
        });
    }
    let mut not_kept = None;
    if dir.entry(name)?.is_some() {
        match free {
            Some(dead) => {
                let (bytes, cut) = read_left(&dir, name, policy)?;
                dir.rename(name, &dead)?;
                left.push(Left {
                    bytes,
                    cut,
                    path: dir.path().join(&dead),
                    name: dead,
                });
            }
            None => {
                let prev = suffixed(name, ".prev");
                dir.rename(name, &prev)?;
                not_kept = Some(dir.path().join(prev));
            }
        }
    }
    let file = dir.create_new(name, policy)?;
    let len = shards
        .checked_mul(REGION)
        .ok_or_else(|| io::Error::other("ring file too large"))?;
    file.set_len(len as u64)?;
    // SAFETY: a fresh shared mapping of the whole file, which stays open while mapped.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let map = Arc::new(Mapping {
        ptr: ptr.cast(),
        len,
        _file: file,
    });
    let tables = Arc::new(Tables {
        map: map.clone(),
        areas: std::sync::Mutex::new((0..shards).map(|i| (i * REGION + HEADER_AREA, 0)).collect()),
    });
    // Every callsite already in the process's table goes in now; later ones as they come.
    crate::callsite::attach(&tables);
    let mut regions = Vec::with_capacity(shards);
    for i in 0..shards {
        let detail = format!("ring file, shard {} of {shards}", i + 1);
        let header = region_header(&detail, build)?;
        // SAFETY: region `i` lies inside the mapping (len = shards * REGION), which `map`
        // keeps alive, and nothing else refers to it yet.
        let region = unsafe { std::slice::from_raw_parts_mut(map.ptr.add(i * REGION), REGION) };
        let dst = region
            .get_mut(..header.len())
            .ok_or_else(|| io::Error::other("ring file header too large"))?;
        dst.copy_from_slice(&header);
        // SAFETY: inside the same region.
        let area = unsafe { map.ptr.add(i * REGION + HEADER_AREA + TABLE_AREA) };
        regions.push(Region {
            area,
            head: 0,
            _map: map.clone(),
            _tables: tables.clone(),
        });
    }
    Ok(RingFile {
        regions,
        left,
        not_kept,
        place: Place {
            dir,
            name: name.to_owned(),
        },
    })
}

/// Magic, version and a header frame, as the start of a dump.
fn region_header(detail: &str, build: &Build<'_>) -> io::Result<Vec<u8>> {
    let header = DumpHeader {
        reason: Reason::UntimelyDeath,
        detail,
        trigger_time: 0,
        trigger_seq: None,
        clock: ClockInfo::UNIX_NANOS,
        // Unknown when the file is read: any sequence number may be in it (a decoder
        // resynchronising after damage only believes records inside this range).
        first_seq: 0,
        next_seq: flightrec_core::dump::OPEN_RANGE,
        lost: 0,
        suppressed: 0,
        scope: None,
        index: 0,
        capacity: SHARD_BYTES as u32,
        build: *build,
    };
    let mut out = Vec::with_capacity(HEADER_AREA);
    let mut w = FrameWriter::new(&mut out);
    let too_large = |e| io::Error::other(format!("ring file header: {e:?}"));
    w.preamble().map_err(too_large)?;
    let mut body = [0u8; HEADER_AREA];
    w.frame(FRAME_HEADER, &header, &mut body, &[])
        .map_err(too_large)?;
    if out.len() > HEADER_AREA {
        return Err(io::Error::other("ring file header too large"));
    }
    Ok(out)
}

impl Region {
    /// Appends one record frame (head, then the payload). A record too large for the area
    /// is left out (it is still in the memory ring).
    pub(crate) fn write(&mut self, head: &RecordHead, payload: &[u8]) {
        let mut head_buf = [0u8; flightrec_core::dump::RECORD_HEAD_MAX];
        let Some(head_len) = flightrec_core::encode::to_slice(head, &mut head_buf) else {
            return;
        };
        let head = head_buf.get(..head_len).unwrap_or(&[]);
        let body = head.len() + payload.len();
        let frame = FRAME_OVERHEAD + body;
        if body > MAX_BODY || frame > SHARD_BYTES {
            return;
        }
        // SAFETY: the area is SHARD_BYTES long inside the mapping, written only by this
        // region's owner (under its shard lock).
        let area = unsafe { std::slice::from_raw_parts_mut(self.area, SHARD_BYTES) };
        if self.head + frame > SHARD_BYTES {
            if let Some(rest) = area.get_mut(self.head..) {
                rest.fill(0);
            }
            self.head = 0;
        }
        let Some(dst) = area.get_mut(self.head..self.head + frame) else {
            return;
        };
        // The slot holds the frame exactly, and its length was checked: this cannot fail.
        if FrameWriter::new(dst)
            .frame_bytes(FRAME_RECORD, head, payload)
            .is_ok()
        {
            self.head += frame;
        }
    }
}
