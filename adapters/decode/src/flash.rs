//! Flash images of `flightrec-flash`'s paged layout, read page by page from any
//! `Read + Seek` (a file), never whole: memory does not grow with the image (a few KiB of
//! buffers; page headers are read again where they are needed). The walk starts at the
//! oldest page (the one after the newest header, as the store finds it), so dumps come
//! oldest first.
//!
//! The listing follows the layout's reading rule (the `flightrec-flash` crate docs) and
//! says what it could not read instead of leaving it out:
//!
//! - a dump's first page whose header is damaged is recognised by the pages after it (same
//!   dump id, index 1 on) or by its commit record, and its dump is read;
//! - a page that is neither erased nor has a valid header, or a run of pages with valid
//!   headers whose first page is gone, is read as far as its bytes go (its records are
//!   shown under an unknown dump), and reported;
//! - a committed dump whose data no longer matches its commit CRC is read all the same: the
//!   wire decoder shows every frame whose own CRC holds and reports the others;
//! - an image that ends inside a page is reported, and that page read as far as it goes;
//! - an uncommitted dump whose data does not even start with a dump's magic (a power cut
//!   right after its first page header was written) is reported: the wire decoder would
//!   find nothing to report in it.
//!
//! What remains of a dump whose first pages a newer dump reclaimed (the store's normal
//! round robin) is not damage: it is noted and not decoded.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};

use flightrec_core::dump::MAGIC;
use flightrec_flash::{page_header_at, Commit, PageHeader, Status, RECORD_LEN};

/// Smallest page the layout allows.
const PAGE_MIN: u64 = 128;

/// What the first bytes of a page are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Page {
    /// All `FF`.
    Erased,
    /// A page header of the image's geometry.
    Header(PageHeader),
    /// Neither: a damaged header, an interrupted erase, or not this layout.
    Other,
}

/// Something about a flash dump that makes it damaged (or worth a note).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trouble {
    /// Its data does not match its commit record's CRC: frames whose own CRC holds are shown.
    DataCrc,
    /// Its first page's header does not check; the dump was found by its commit record or
    /// by the pages after it.
    FirstHeaderLost,
    /// Pages with valid headers whose dump's first page is gone (and not reclaimed by a
    /// newer dump): shown as an unknown dump.
    NoFirstPage,
    /// A page that is neither erased nor has a valid header, claimed by no dump: its bytes
    /// are decoded as far as they go.
    Unreadable,
    /// The image ends inside the dump's last page.
    Cut,
    /// Its commit record is neither blank nor valid: read as an uncommitted dump.
    CommitDamaged,
    /// An uncommitted dump whose data does not start with a dump's magic (no data at all,
    /// or fewer bytes than the magic): a power cut (or damage) right after its first page
    /// header was written. The dump being written is lost, and nothing in its data would
    /// tell the wire decoder so.
    NoDumpStart,
    /// Pages left of a dump whose first pages a newer dump reclaimed. Not damage; not
    /// decoded.
    Reclaimed,
}

impl Trouble {
    /// Whether this is damage (exit status 1) rather than a note.
    pub fn is_damage(self) -> bool {
        self != Trouble::Reclaimed
    }
}

impl fmt::Display for Trouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trouble::DataCrc => "its data does not match its commit CRC: frames whose own CRC holds are shown, the others reported",
            Trouble::FirstHeaderLost => "its first page's header is damaged: read from the pages that follow it",
            Trouble::NoFirstPage => "its first page is lost: its records are shown under an unknown dump",
            Trouble::Unreadable => "the page has no valid header and is not erased: its bytes are decoded as far as they go",
            Trouble::Cut => "the image ends inside it: read as far as it goes",
            Trouble::CommitDamaged => "its commit record is damaged: read as far as its data goes",
            Trouble::NoDumpStart => "a dump was begun here but its data holds no dump start (a power cut or damage before its first bytes reached the flash): the dump being written is lost",
            Trouble::Reclaimed => "the rest of a dump whose first pages a newer dump reclaimed: not shown",
        })
    }
}

/// A stretch of the image holding (part of) one dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlashDump {
    /// Its dump id, if a page header names it.
    pub id: Option<u32>,
    /// Its first page present.
    pub first_page: u64,
    /// Pages it spans.
    pub pages: u64,
    /// Whether `first_page` is the dump's first page (data after the commit slot).
    pub has_first: bool,
    /// Data bytes to read.
    pub len: u64,
    /// What the store would say of it.
    pub status: Status,
    /// What is wrong with it (empty: nothing).
    pub trouble: Vec<Trouble>,
}

impl FlashDump {
    /// Whether anything about it is damage. (A dump the store calls incomplete is not
    /// damage of the image when its data starts a dump: the wire decoder reports its
    /// missing end frame; when it does not, [`Trouble::NoDumpStart`] is.)
    pub fn damaged(&self) -> bool {
        self.trouble.iter().any(|t| t.is_damage())
    }
}

/// A flash image being read: its geometry and a cursor over its pages; nothing per page
/// is kept (headers are read again where needed).
pub struct FlashImage<R> {
    input: R,
    len: u64,
    erase: u64,
    write: u64,
    slot: u64,
    /// Page the walk over the image starts at: the one after the newest page header.
    origin: u64,
    /// Pages walked so far.
    walked: u64,
}

impl<R: Read + Seek> FlashImage<R> {
    /// Opens `input` if it is an image of the paged layout (a page header sits at a
    /// multiple of the page size it records); `None` if it holds none.
    pub fn open(mut input: R) -> io::Result<Option<Self>> {
        let len = input.seek(SeekFrom::End(0))?;
        let Some((erase, write)) = geometry(&mut input, len)? else {
            return Ok(None);
        };
        let mut image = FlashImage {
            input,
            len,
            erase,
            write,
            slot: (RECORD_LEN as u64).max(write),
            origin: 0,
            walked: 0,
        };
        // As the store does: dumps are written in page order, so the oldest page is the one
        // after the newest header (largest dump id, then index).
        let mut newest: Option<(u64, u64)> = None;
        for p in 0..image.page_count() {
            if let Some(h) = image.header(p)? {
                let key = u64::from(h.dump) << 16 | u64::from(h.index);
                if newest.is_none_or(|(k, _)| key > k) {
                    newest = Some((key, p));
                }
            }
        }
        image.origin = newest.map_or(0, |(_, p)| (p + 1) % image.page_count());
        Ok(Some(image))
    }

    /// Page size (erase size) in bytes.
    pub fn page_size(&self) -> u64 {
        self.erase
    }

    /// Pages, the last one possibly partial.
    pub fn page_count(&self) -> u64 {
        self.len.div_ceil(self.erase)
    }

    /// If the image ends inside a page: that page and the bytes of it the image holds.
    pub fn partial_tail(&self) -> Option<(u64, u64)> {
        let held = self.len % self.erase;
        (held != 0).then(|| (self.page_count().saturating_sub(1), held))
    }

    /// Reads up to `buf.len()` bytes at `at` (fewer at the image's end).
    fn read_at<'b>(&mut self, at: u64, buf: &'b mut [u8]) -> io::Result<&'b [u8]> {
        let n = usize::try_from(self.len.saturating_sub(at))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        self.input.seek(SeekFrom::Start(at))?;
        let dst = &mut buf[..n];
        self.input.read_exact(dst)?;
        Ok(dst)
    }

    /// The page header of page `p`, if it checks and has the image's geometry.
    fn header(&mut self, p: u64) -> io::Result<Option<PageHeader>> {
        let mut b = [0u8; RECORD_LEN];
        let at = p * self.erase;
        let got = self.read_at(at, &mut b)?.len();
        let (erase, write) = (self.erase, self.write);
        Ok((got == RECORD_LEN)
            .then(|| page_header_at(at, &b))
            .flatten()
            .filter(|h| 1u64 << h.erase_log2 == erase && 1u64 << h.write_log2 == write))
    }

    /// What page `p` is.
    fn page(&mut self, p: u64) -> io::Result<Page> {
        if let Some(h) = self.header(p)? {
            return Ok(Page::Header(h));
        }
        let mut buf = [0u8; 4096];
        let mut at = 0;
        while at < self.erase {
            let n = (self.erase - at).min(buf.len() as u64) as usize;
            let got = self.read_at(p * self.erase + at, &mut buf[..n])?;
            if got.iter().any(|&b| b != 0xFF) {
                return Ok(Page::Other);
            }
            if got.len() < n {
                break; // the image ends
            }
            at += n as u64;
        }
        Ok(Page::Erased)
    }

    /// Whether page `p` is not a whole page (the image ends inside it).
    fn partial(&self, p: u64) -> bool {
        (p + 1) * self.erase > self.len
    }

    /// Starts the walk over the image again (see [`Self::next_dump`]).
    pub fn rewind(&mut self) {
        self.walked = 0;
    }

    /// The next stretch of the image that holds dump data, each with what is wrong with it,
    /// walking the pages once from the oldest (so dumps come oldest first); `None` at the
    /// end of the walk.
    pub fn next_dump(&mut self) -> io::Result<Option<FlashDump>> {
        let n = self.page_count();
        while self.walked < n {
            let p = (self.origin + self.walked) % n;
            let left = n - self.walked;
            let page = self.page(p)?;
            // A first page whose header checks, or one whose header is damaged but whose
            // next page names its dump.
            let first = match page {
                Page::Header(h) if h.index == 0 => Some((h.dump, false)),
                Page::Other if left > 1 && !self.partial(p) => self
                    .header((p + 1) % n)?
                    .filter(|h| h.index == 1)
                    .map(|h| (h.dump, true)),
                _ => None,
            };
            if let Some((id, lost_header)) = first {
                let pages = self.run(p, id, 1, left)?;
                let mut d = self.inspect(p, pages, id)?;
                if lost_header {
                    d.trouble.insert(0, Trouble::FirstHeaderLost);
                }
                self.walked += d.pages.max(1);
                return Ok(Some(d));
            }
            let (id, trouble, pages) = match page {
                Page::Erased => {
                    self.walked += 1;
                    continue;
                }
                Page::Header(h) => {
                    let pages = self.run(p, h.dump, u64::from(h.index) + 1, left)?;
                    // A newer dump on the page before: the store reclaimed this one.
                    let before = self.header((p + n - 1) % n)?;
                    let t = if before.is_some_and(|b| b.dump > h.dump) {
                        Trouble::Reclaimed
                    } else {
                        Trouble::NoFirstPage
                    };
                    (Some(h.dump), t, pages)
                }
                Page::Other => (None, Trouble::Unreadable, 1),
            };
            self.walked += pages;
            let mut trouble = vec![trouble];
            if self.partial((p + pages - 1) % n) {
                trouble.push(Trouble::Cut);
            }
            let mut d = FlashDump {
                id,
                first_page: p,
                pages,
                has_first: false,
                len: pages * (self.erase - self.slot),
                status: Status::Incomplete,
                trouble,
            };
            d.len = self.written_len(&d)?;
            return Ok(Some(d));
        }
        Ok(None)
    }

    /// Pages of dump `id` from page `p` on (page `p` counted), the page after `p` holding
    /// index `next`, at most `left`.
    fn run(&mut self, p: u64, id: u32, mut next: u64, left: u64) -> io::Result<u64> {
        let n = self.page_count();
        let mut pages = 1;
        while pages < left {
            match self.header((p + pages) % n)? {
                Some(h) if h.dump == id && u64::from(h.index) == next => {
                    pages += 1;
                    next += 1;
                }
                _ => break,
            }
        }
        Ok(pages)
    }

    /// The dump whose first page is `p`, spanning `pages` pages.
    fn inspect(&mut self, p: u64, pages: u64, id: u32) -> io::Result<FlashDump> {
        let mut record = [0u8; RECORD_LEN];
        let got = self.read_at(p * self.erase + self.slot, &mut record)?.len();
        let commit = (got == RECORD_LEN)
            .then(|| Commit::decode(&record, id))
            .flatten();
        let per_page = self.erase - self.slot;
        let last = (p + pages - 1) % self.page_count();
        let mut d = FlashDump {
            id: Some(id),
            first_page: p,
            pages,
            has_first: true,
            len: (pages * per_page).saturating_sub(self.slot),
            status: Status::Incomplete,
            trouble: Vec::new(),
        };
        if self.partial(last) {
            d.trouble.push(Trouble::Cut);
        }
        match commit {
            Some(c) => {
                let needed = (u64::from(c.len) + self.slot).div_ceil(per_page);
                d.pages = needed.min(pages);
                d.len = u64::from(c.len).min(d.len);
                d.status = if needed <= pages && self.data_crc(&d)? == Some(c.data_crc) {
                    Status::Committed
                } else {
                    Status::Corrupt
                };
                if d.status == Status::Corrupt && !d.trouble.contains(&Trouble::Cut) {
                    d.trouble.push(Trouble::DataCrc);
                }
            }
            None => {
                if got == RECORD_LEN && record.iter().any(|&b| b != 0xFF) {
                    d.trouble.push(Trouble::CommitDamaged);
                }
                d.len = self.written_len(&d)?;
                if !self.starts_with_magic(&d)? {
                    d.trouble.push(Trouble::NoDumpStart);
                }
            }
        }
        Ok(d)
    }

    /// CRC-32 of a dump's data, `None` if the image ends first.
    fn data_crc(&mut self, d: &FlashDump) -> io::Result<Option<u32>> {
        let mut crc = crc32fast::Hasher::new();
        let mut r = self.data(d);
        let mut buf = [0u8; 4096];
        let mut total = 0u64;
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            crc.update(&buf[..n]);
        }
        Ok((total == d.len).then(|| crc.finalize()))
    }

    /// Whether a dump's data starts with the wire format's magic.
    fn starts_with_magic(&mut self, d: &FlashDump) -> io::Result<bool> {
        let mut start = Vec::with_capacity(MAGIC.len());
        self.data(d)
            .take(MAGIC.len() as u64)
            .read_to_end(&mut start)?;
        Ok(start == MAGIC)
    }

    /// Data bytes of an uncommitted stretch: up to its last byte that is not `FF`.
    fn written_len(&mut self, d: &FlashDump) -> io::Result<u64> {
        let mut r = self.data(d);
        let mut buf = [0u8; 4096];
        let (mut at, mut last) = (0u64, 0u64);
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if let Some(i) = buf[..n].iter().rposition(|&b| b != 0xFF) {
                last = at + i as u64 + 1;
            }
            at += n as u64;
        }
        Ok(last)
    }

    /// A reader of a dump's data bytes (wire format), page after page.
    pub fn data(&mut self, d: &FlashDump) -> DumpData<'_, R> {
        DumpData {
            d: d.clone(),
            image: self,
            page: 0,
            at: 0,
            done: 0,
        }
    }
}

/// Finds the geometry of an image: the smallest page size at whose multiples a page header
/// recording that size sits (what `flightrec_flash::geometry` does, streamed).
fn geometry<R: Read + Seek>(input: &mut R, len: u64) -> io::Result<Option<(u64, u64)>> {
    input.seek(SeekFrom::Start(0))?;
    let mut r = io::BufReader::with_capacity(1 << 16, input);
    let mut best: Option<(u8, u8)> = None;
    let mut block = [0u8; PAGE_MIN as usize];
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(PAGE_MIN) as usize;
        r.read_exact(&mut block[..n])?;
        if let Some(h) = block
            .first_chunk::<RECORD_LEN>()
            .filter(|_| n >= RECORD_LEN)
            .and_then(|b| page_header_at(at, b))
        {
            if best.is_none_or(|(e, _)| h.erase_log2 < e) {
                best = Some((h.erase_log2, h.write_log2));
            }
        }
        at += n as u64;
    }
    Ok(best.map(|(e, w)| (1u64 << e, 1u64 << w)))
}

/// The data bytes of one dump; see [`FlashImage::data`].
pub struct DumpData<'a, R> {
    image: &'a mut FlashImage<R>,
    d: FlashDump,
    /// Page of the dump being read, and the offset in its data.
    page: u64,
    at: u64,
    done: u64,
}

impl<R: Read + Seek> Read for DumpData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let img = &mut *self.image;
        while self.done < self.d.len && self.page < self.d.pages {
            let start = if self.page == 0 && self.d.has_first {
                2 * img.slot
            } else {
                img.slot
            };
            let room = img.erase.saturating_sub(start + self.at);
            if room == 0 {
                self.page += 1;
                self.at = 0;
                continue;
            }
            let p = (self.d.first_page + self.page) % img.page_count();
            let want = room.min(self.d.len - self.done).min(buf.len() as u64) as usize;
            let n = img
                .read_at(p * img.erase + start + self.at, &mut buf[..want])?
                .len();
            if n == 0 {
                break; // the image ends
            }
            self.at += n as u64;
            self.done += n as u64;
            return Ok(n);
        }
        Ok(0)
    }
}
