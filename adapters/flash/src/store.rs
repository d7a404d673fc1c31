//! The dump store: a region of erase pages used round robin, one or more pages per dump.

use core::fmt;
use core::ops::Range;

use embedded_storage::nor_flash::NorFlash;
use flightrec_core::crc::Crc32;
use flightrec_core::dump::{self, DumpError, DumpHeader, Source};
use flightrec_core::frame::{self, Parsed, FRAME_HEADER, FRAME_OVERHEAD, MAGIC, VERSION};
use flightrec_core::ring::RingError;

use crate::format::{Commit, PageHeader, RECORD_LEN};
use flightrec_core::bytes;

/// Bytes moved to or from flash at a time (the write buffer and the read bounce buffer).
/// `WRITE_SIZE` and `READ_SIZE` must divide it.
pub const CHUNK: usize = 32;

/// What went wrong in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// The flash driver failed.
    Flash(E),
    /// The region or the flash geometry is not usable: the region must be whole erase pages
    /// inside the flash; `ERASE_SIZE` a power of two, at least 128 bytes and a multiple of 32;
    /// `WRITE_SIZE` and `READ_SIZE` powers of two dividing 32.
    Geometry,
    /// The dump does not fit in the region (it would reclaim its own first page). It stays
    /// incomplete.
    Full,
    /// A write failed earlier in this dump; the dump stays incomplete.
    Aborted,
    /// No dump with this id, or it is not committed (for reading its header).
    NotFound,
    /// The dump's data no longer matches its commit record.
    Corrupt,
    /// Dump ids ran out (after 2^32 dumps).
    Exhausted,
    /// The ring refused to be read while storing (see [`RingError`]).
    Ring(RingError),
    /// The scratch buffer cannot hold the dump header.
    ScratchTooSmall,
    /// No sealing key (none provisioned), or a seal made with another epoch's key.
    NoKey,
    /// A sealing key is installed already: it is only ever evolved, never replaced.
    KeyPresent,
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Flash(e) => write!(f, "flash driver error: {e:?}"),
            Error::Geometry => f.write_str("flash region or geometry not usable"),
            Error::Full => f.write_str("dump larger than the flash region"),
            Error::Aborted => f.write_str("dump aborted by an earlier write error"),
            Error::NotFound => f.write_str("no committed dump with this id"),
            Error::Corrupt => f.write_str("dump data does not match its commit record"),
            Error::Exhausted => f.write_str("dump ids exhausted"),
            Error::Ring(e) => write!(f, "ring not readable: {e:?}"),
            Error::ScratchTooSmall => f.write_str("scratch buffer too small for the dump header"),
            Error::NoKey => f.write_str("no sealing key for this seal"),
            Error::KeyPresent => f.write_str("a sealing key is installed already"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

impl<E: fmt::Debug> embedded_io::Error for Error<E> {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            Error::Full => embedded_io::ErrorKind::OutOfMemory,
            _ => embedded_io::ErrorKind::Other,
        }
    }
}

impl<E> From<DumpError<Error<E>>> for Error<E> {
    fn from(e: DumpError<Error<E>>) -> Self {
        match e {
            DumpError::Io(e) => e,
            DumpError::Ring(e) => Error::Ring(e),
            DumpError::ScratchTooSmall => Error::ScratchTooSmall,
            // The store's writer never accepts zero bytes without an error of its own.
            DumpError::WriteZero => Error::Full,
            // Only a header frame over 64 KiB (which needs a scratch buffer that large), or a
            // later kind of failure: the header could not be written.
            _ => Error::ScratchTooSmall,
        }
    }
}

/// Reading a dump out failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError<E, W> {
    /// The store failed (flash error, dump gone or damaged).
    Store(Error<E>),
    /// The output failed.
    Write(W),
}

/// Whether a dump can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt-logger", derive(defmt::Format))]
pub enum Status {
    /// Its commit record checks and its data matches the commit's CRC: the dump is whole.
    Committed,
    /// No valid commit record: the writer was cut off (power loss, reset, write error). The
    /// bytes it got to write can be read out; a decoder reports the dump as incomplete.
    Incomplete,
    /// Its commit record checks but the data does not (the dump is being reclaimed, or the
    /// flash was damaged). Never read out as a committed dump.
    Corrupt,
}

/// A dump found in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt-logger", derive(defmt::Format))]
pub struct DumpInfo {
    /// Its id: dumps started later have larger ids.
    pub id: u32,
    /// Its first page, counted from the start of the region.
    pub first_page: u32,
    /// Pages it spans.
    pub pages: u32,
    /// Bytes of dump data (for an incomplete dump: up to its last byte that is not `FF`).
    pub len: u32,
    /// Whether it is whole.
    pub status: Status,
}

/// A power-fail-safe store of dumps on a region of NOR flash. See the crate docs for the
/// layout and the guarantees.
///
/// RAM: the driver, 16 bytes of position and the state of the dump being written (its
/// [`CHUNK`]-byte buffer included), 72 bytes besides the driver on a 32-bit target; a
/// [`DumpWriter`] is one pointer.
pub struct FlashStore<F> {
    flash: F,
    base: u32,
    pages: u32,
    /// Page the next dump starts on (the oldest page); while a dump is written, the page
    /// after its current one.
    next_page: u32,
    next_id: u32,
    /// The dump being written, if a [`DumpWriter`] is out.
    w: Writing,
}

/// The state of the dump being written. It lives in the store, and the [`DumpWriter`] only
/// borrows the store: the writer, returned by `begin` and consumed by `commit`, is then one
/// pointer, where a larger one is moved with `memcpy` calls. One dump at a time: the writer
/// borrows the store mutably.
struct Writing {
    first_page: u32,
    /// Flash address the buffer goes to; a multiple of the page size at the end of a page
    /// (pages are aligned: `mount` checks it). The current page is the one before the
    /// store's `next_page`.
    pos: u32,
    /// Bytes accepted.
    len: u32,
    crc: Crc32,
    /// Bytes in `buf`.
    fill: usize,
    /// Page index of the current page within the dump.
    index: u16,
    /// A write failed (or was cut short): the dump stays incomplete.
    failed: bool,
    buf: [u8; CHUNK],
}

impl<F: NorFlash> FlashStore<F> {
    // The geometry is the driver's, known at compile time: constants rather than fields, so
    // the store's RAM is smaller and its arithmetic folds.
    /// Erase page size (`mount` checks it fits a `u32`).
    const PAGE: u32 = F::ERASE_SIZE as u32;
    /// A slot: a 16-byte record rounded up to whole write words (`mount` refuses a write size
    /// of 0; the `if` only keeps the constant defined for such a driver).
    const SLOT: u32 =
        RECORD_LEN.next_multiple_of(if F::WRITE_SIZE == 0 { 1 } else { F::WRITE_SIZE }) as u32;
    /// Data bytes a page holds after its header (`mount` refuses pages under 128 bytes, and
    /// a slot is at most 32).
    const PER_PAGE: u32 = Self::PAGE.saturating_sub(Self::SLOT);
    const ERASE_LOG2: u8 = F::ERASE_SIZE.trailing_zeros() as u8;
    const WRITE_LOG2: u8 = F::WRITE_SIZE.trailing_zeros() as u8;

    /// Takes the pages of `region` (byte offsets in `flash`, whole erase pages) and finds
    /// where the next dump goes. Reads every page header once; writes nothing.
    pub fn mount(flash: F, region: Range<u32>) -> Result<Self, Error<F::Error>> {
        let geometry_ok = F::ERASE_SIZE.is_power_of_two()
            && F::ERASE_SIZE >= 128
            && F::ERASE_SIZE % CHUNK == 0
            && F::ERASE_SIZE <= 1 << 30
            && F::WRITE_SIZE.is_power_of_two()
            && CHUNK % F::WRITE_SIZE == 0
            && F::READ_SIZE.is_power_of_two()
            && CHUNK % F::READ_SIZE == 0;
        let page_size = Self::PAGE;
        if !geometry_ok
            || region.start % page_size != 0
            || region.end % page_size != 0
            || region.end <= region.start
            || region.end as usize > flash.capacity()
        {
            return Err(Error::Geometry);
        }
        // The store is built last, in place: mutating a whole `FlashStore` and then
        // returning it costs a `memcpy` call.
        let mut flash = flash;
        let pages = (region.end - region.start) / page_size;
        // The newest page is the one with the largest (dump, index): dumps are written in
        // page order, so the next dump starts after it, on the oldest page.
        // (dump, index) as one `u64` key, dump id above page index: a single compare.
        let mut newest: Option<(u64, u32)> = None;
        for page in 0..pages {
            if let Some(h) = Self::header_at(&mut flash, region.start + page * page_size)? {
                let key = u64::from(h.dump) << 16 | u64::from(h.index);
                if newest.is_none_or(|(k, _)| key > k) {
                    newest = Some((key, page));
                }
            }
        }
        let (next_page, next_id) = match newest {
            Some((key, page)) => (
                wrap(page + 1, pages),
                ((key >> 16) as u32)
                    .checked_add(1)
                    .ok_or(Error::Exhausted)?,
            ),
            None => (0, 0),
        };
        Ok(FlashStore {
            flash,
            base: region.start,
            pages,
            next_page,
            next_id,
            w: Writing {
                first_page: 0,
                pos: 0,
                len: 0,
                crc: Crc32::new(),
                fill: 0,
                index: 0,
                failed: false,
                buf: [0; CHUNK],
            },
        })
    }

    /// The flash driver back.
    pub fn release(self) -> F {
        self.flash
    }

    /// The flash driver, e.g. to copy the raw image out.
    pub fn flash_mut(&mut self) -> &mut F {
        &mut self.flash
    }

    /// Pages in the region.
    pub const fn pages(&self) -> u32 {
        self.pages
    }

    /// Dump-data bytes a dump of `pages` pages holds.
    pub const fn capacity(&self, pages: u32) -> u32 {
        if pages == 0 {
            0
        } else {
            pages * Self::PER_PAGE - Self::SLOT
        }
    }

    /// Starts a dump: erases the oldest page and writes its page header. Write the dump's
    /// wire-format bytes to the returned writer, then [`DumpWriter::commit`]. A dump that is
    /// dropped uncommitted stays on flash as [`Status::Incomplete`].
    pub fn begin(&mut self) -> Result<DumpWriter<'_, F>, Error<F::Error>> {
        self.next_id = self.next_id.checked_add(1).ok_or(Error::Exhausted)?;
        // Field by field: `buf` needs no reset.
        let w = &mut self.w;
        w.first_page = self.next_page;
        w.len = 0;
        w.crc = Crc32::new();
        w.fill = 0;
        let mut w = DumpWriter { store: self };
        w.open_page(w.store.w.first_page, 0)?;
        Ok(w)
    }

    /// Streams a dump of `source` (a ring, a shared ring, a recorder) into the store and
    /// commits it; see [`flightrec_core::write_dump`] for `header` and `scratch`. The ring is
    /// read one record at a time: there is no second copy of it in RAM.
    pub fn store<S: Source + ?Sized>(
        &mut self,
        source: &S,
        header: DumpHeader<'_>,
        scratch: &mut [u8],
    ) -> Result<DumpInfo, Error<F::Error>> {
        let mut w = self.begin()?;
        dump::write_dump(&mut w, source, header, scratch)?;
        w.commit()
    }

    /// The dumps on flash, oldest first (committed, incomplete and corrupt ones; check
    /// [`DumpInfo::status`]). Reads page headers and the data of committed dumps (to check
    /// their CRC).
    pub fn dumps(&mut self) -> Dumps<'_, F> {
        // Oldest first: from the page the next dump would take.
        let (left, page) = (self.pages, self.next_page);
        Dumps {
            store: self,
            left,
            page,
        }
    }

    /// The dump with id `id`.
    pub fn find(&mut self, id: u32) -> Result<DumpInfo, Error<F::Error>> {
        for info in self.dumps() {
            let info = info?;
            if info.id == id {
                return Ok(info);
            }
        }
        Err(Error::NotFound)
    }

    /// Reads the header frame of a dump into `buf` and decodes it (`buf` holds the whole
    /// frame: a few hundred bytes, the header holds the build's name, version and id).
    pub fn header<'b>(
        &mut self,
        info: &DumpInfo,
        buf: &'b mut [u8],
    ) -> Result<DumpHeader<'b>, Error<F::Error>> {
        const PRE: usize = MAGIC.len() + 1;
        let mut head = [0u8; PRE + 4];
        if (info.len as usize) < head.len() {
            return Err(Error::Corrupt);
        }
        self.read_data(info.first_page, 0, &mut head)?;
        let [m @ .., v, _, _, l0, l1] = head;
        if m != MAGIC || v != VERSION {
            return Err(Error::Corrupt);
        }
        let frame_len = FRAME_OVERHEAD + usize::from(u16::from_le_bytes([l0, l1]));
        if PRE + frame_len > info.len as usize {
            return Err(Error::Corrupt);
        }
        let frame = buf.get_mut(..frame_len).ok_or(Error::ScratchTooSmall)?;
        self.read_data(info.first_page, PRE as u32, frame)?;
        let frame: &'b [u8] = frame;
        let body = match frame::parse(frame) {
            Parsed::Whole {
                ty: FRAME_HEADER,
                body,
                ..
            } => frame.get(body).unwrap_or(&[]),
            _ => return Err(Error::Corrupt),
        };
        let (header, _rest) =
            postcard::take_from_bytes::<DumpHeader<'b>>(body).map_err(|_| Error::Corrupt)?;
        Ok(header)
    }

    /// Writes a dump's bytes (wire format, as [`flightrec_core::write_dump`] wrote them) to
    /// `w`, e.g. a UART. A committed dump is checked against its CRC before the first byte
    /// goes out; an incomplete one is sent as far as it got (a decoder reports it as
    /// incomplete). Returns the bytes written.
    pub fn read_out<W: embedded_io::Write>(
        &mut self,
        info: &DumpInfo,
        w: &mut W,
    ) -> Result<u32, ReadError<F::Error, W::Error>> {
        if info.status == Status::Corrupt {
            return Err(ReadError::Store(Error::Corrupt));
        }
        let current = self.find(info.id).map_err(ReadError::Store)?;
        if current != *info {
            return Err(ReadError::Store(Error::Corrupt));
        }
        let mut crc = Crc32::new();
        let mut buf = [0u8; CHUNK];
        let mut at = 0;
        while at < info.len {
            let n = (info.len - at).min(CHUNK as u32) as usize;
            let chunk = buf.get_mut(..n).unwrap_or(&mut []);
            self.read_data(info.first_page, at, chunk)
                .map_err(ReadError::Store)?;
            crc.update(chunk);
            w.write_all(chunk).map_err(ReadError::Write)?;
            at += n as u32;
        }
        w.flush().map_err(ReadError::Write)?;
        if info.status == Status::Committed {
            // The commit was decoded and checked by `find` just before: its data CRC alone.
            let mut commit_crc = [0u8; 4];
            self.read(
                self.page_addr(info.first_page) + Self::SLOT + Commit::DATA_CRC_AT,
                &mut commit_crc,
            )
            .map_err(ReadError::Store)?;
            if crc.finish() != u32::from_le_bytes(commit_crc) {
                // Changed while it was sent (it was checked just before).
                return Err(ReadError::Store(Error::Corrupt));
            }
        }
        Ok(info.len)
    }

    /// Erases one dump's pages (first page first, so a power cut midway leaves at most an
    /// ignored remnant).
    pub fn erase(&mut self, info: &DumpInfo) -> Result<(), Error<F::Error>> {
        for i in 0..info.pages {
            self.erase_page(self.wrap(info.first_page + i))?;
        }
        Ok(())
    }

    /// Erases the whole region. Dump ids go on from where they were.
    pub fn erase_all(&mut self) -> Result<(), Error<F::Error>> {
        for page in 0..self.pages {
            self.erase_page(page)?;
        }
        self.next_page = 0;
        Ok(())
    }

    // ---- internals ----

    const fn wrap(&self, page: u32) -> u32 {
        wrap(page, self.pages)
    }

    const fn page_addr(&self, page: u32) -> u32 {
        self.base + page * Self::PAGE
    }

    fn erase_page(&mut self, page: u32) -> Result<(), Error<F::Error>> {
        let at = self.page_addr(page);
        self.flash.erase(at, at + Self::PAGE).map_err(Error::Flash)
    }

    /// Reads `out.len()` bytes at `addr`, honouring `READ_SIZE` through a bounce buffer.
    fn read(&mut self, addr: u32, out: &mut [u8]) -> Result<(), Error<F::Error>> {
        Self::read_from(&mut self.flash, addr, out)
    }

    /// [`Self::read`] before there is a store (`mount`), and for the key pages.
    pub(crate) fn read_from(
        flash: &mut F,
        addr: u32,
        out: &mut [u8],
    ) -> Result<(), Error<F::Error>> {
        if F::READ_SIZE == 1 {
            return flash.read(addr, out).map_err(Error::Flash);
        }
        let mut tmp = [0u8; CHUNK];
        let mut done = 0usize;
        while done < out.len() {
            let a = addr + done as u32;
            let block = a - a % CHUNK as u32;
            flash.read(block, &mut tmp).map_err(Error::Flash)?;
            let off = (a - block) as usize;
            let n = (CHUNK - off).min(out.len() - done);
            let (Some(dst), Some(src)) = (out.get_mut(done..done + n), tmp.get(off..off + n))
            else {
                return Err(Error::Geometry);
            };
            bytes::copy(dst, src);
            done += n;
        }
        Ok(())
    }

    /// The valid page header of `page` written with this geometry, if any.
    fn page_header(&mut self, page: u32) -> Result<Option<PageHeader>, Error<F::Error>> {
        let addr = self.page_addr(page);
        Self::header_at(&mut self.flash, addr)
    }

    /// The valid page header at `addr` written with this geometry, if any.
    fn header_at(flash: &mut F, addr: u32) -> Result<Option<PageHeader>, Error<F::Error>> {
        let mut b = [0u8; RECORD_LEN];
        Self::read_from(flash, addr, &mut b)?;
        Ok(PageHeader::decode(&b)
            .filter(|h| h.erase_log2 == Self::ERASE_LOG2 && h.write_log2 == Self::WRITE_LOG2))
    }

    /// Flash address of data byte `at` of the dump starting on `first_page`, and how many
    /// data bytes follow it on the same page.
    fn data_addr(&self, first_page: u32, at: u32) -> (u32, u32) {
        // Every page holds `PER_PAGE` bytes after its header, and on the first page the
        // commit takes the first `SLOT` of them: data byte `at` is byte `at + SLOT` of that
        // run of pages (one formula for all pages). A constant divisor: no divide, no panic
        // path linked.
        let pos = at + Self::SLOT;
        let (k, off) = (pos / Self::PER_PAGE, pos % Self::PER_PAGE);
        (
            self.page_addr(self.wrap(first_page + k)) + Self::SLOT + off,
            Self::PER_PAGE - off,
        )
    }

    /// Reads dump data bytes `at..` of the dump starting on `first_page` into `out`.
    fn read_data(
        &mut self,
        first_page: u32,
        mut at: u32,
        mut out: &mut [u8],
    ) -> Result<(), Error<F::Error>> {
        while !out.is_empty() {
            let (addr, avail) = self.data_addr(first_page, at);
            let n = out.len().min(avail as usize);
            let (now, later) = out.split_at_mut(n);
            self.read(addr, now)?;
            out = later;
            at += n as u32;
        }
        Ok(())
    }

    /// What the dump whose first page is `page` looks like, if `page` is one.
    fn inspect(&mut self, page: u32) -> Result<Option<DumpInfo>, Error<F::Error>> {
        let Some(h) = self.page_header(page)? else {
            return Ok(None);
        };
        if h.index != 0 {
            return Ok(None);
        }
        let id = h.dump;
        let mut pages = 1u32;
        while pages < self.pages && pages <= u32::from(u16::MAX) {
            match self.page_header(self.wrap(page + pages))? {
                Some(n) if n.dump == id && u32::from(n.index) == pages => pages += 1,
                _ => break,
            }
        }
        // Only the record of the commit slot is read: its padding says nothing.
        let mut record = [0u8; RECORD_LEN];
        self.read(self.page_addr(page) + Self::SLOT, &mut record)?;
        let info = match Commit::decode(&record, id) {
            Some(c) => {
                let needed = self.pages_for(c.len);
                let status = if needed <= pages && self.data_crc(page, c.len)? == c.data_crc {
                    Status::Committed
                } else {
                    Status::Corrupt
                };
                DumpInfo {
                    id,
                    first_page: page,
                    pages: needed.min(pages),
                    len: c.len,
                    status,
                }
            }
            // Blank or torn: either way the dump never committed.
            None => DumpInfo {
                id,
                first_page: page,
                pages,
                len: self.written_len(page, pages)?,
                status: Status::Incomplete,
            },
        };
        Ok(Some(info))
    }

    /// Pages a dump of `len` data bytes spans.
    fn pages_for(&self, len: u32) -> u32 {
        // As in `data_addr`: `len + SLOT` bytes after the page headers, rounded up to pages
        // (saturating: a length that large fits no region anyway).
        len.saturating_add(Self::SLOT).div_ceil(Self::PER_PAGE)
    }

    fn data_crc(&mut self, first_page: u32, len: u32) -> Result<u32, Error<F::Error>> {
        let mut crc = Crc32::new();
        let mut buf = [0u8; CHUNK];
        let mut at = 0;
        while at < len {
            let n = (len - at).min(CHUNK as u32) as usize;
            let chunk = buf.get_mut(..n).unwrap_or(&mut []);
            self.read_data(first_page, at, chunk)?;
            crc.update(chunk);
            at += n as u32;
        }
        Ok(crc.finish())
    }

    /// Data bytes of an uncommitted dump: all its pages, up to the last byte that is not `FF`.
    fn written_len(&mut self, first_page: u32, pages: u32) -> Result<u32, Error<F::Error>> {
        let before = self.capacity(pages - 1);
        let last_cap = self.capacity(pages) - before;
        let mut buf = [0u8; CHUNK];
        let mut end = last_cap;
        while end > 0 {
            let n = end.min(CHUNK as u32);
            let chunk = buf.get_mut(..n as usize).unwrap_or(&mut []);
            self.read_data(first_page, before + end - n, chunk)?;
            if let Some(i) = chunk.iter().rposition(|&b| b != 0xFF) {
                return Ok(before + end - n + i as u32 + 1);
            }
            end -= n;
        }
        Ok(before)
    }
}

/// `page` modulo `pages`.
const fn wrap(page: u32, pages: u32) -> u32 {
    // `pages` is never 0 (mount refuses an empty region): checked only to keep the panic
    // path out of the binary.
    match page.checked_rem(pages) {
        Some(p) => p,
        None => 0,
    }
}

/// Iterator over the dumps of a store, oldest first; see [`FlashStore::dumps`].
pub struct Dumps<'s, F> {
    store: &'s mut FlashStore<F>,
    /// Pages still to look at.
    left: u32,
    page: u32,
}

impl<F: NorFlash> Iterator for Dumps<'_, F> {
    type Item = Result<DumpInfo, Error<F::Error>>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.left > 0 {
            let page = self.page;
            self.left -= 1;
            self.page = self.store.wrap(page + 1);
            match self.store.inspect(page) {
                Ok(Some(info)) => return Some(Ok(info)),
                Ok(None) => {}
                Err(e) => {
                    self.left = 0;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// Writes one dump's bytes into the store; an [`embedded_io::Write`]. Created by
/// [`FlashStore::begin`].
pub struct DumpWriter<'s, F: NorFlash> {
    /// The dump's state is `store.w`.
    store: &'s mut FlashStore<F>,
}

impl<F: NorFlash> DumpWriter<'_, F> {
    /// The id the dump will have.
    pub const fn id(&self) -> u32 {
        // `begin` took it: the store's next id is one more.
        self.store.next_id.wrapping_sub(1)
    }

    /// Erases `page` and writes its header as page `index` of this dump.
    fn open_page(&mut self, page: u32, index: u16) -> Result<(), Error<F::Error>> {
        // Whatever happens from here on, the next dump starts after this page.
        self.store.next_page = self.store.wrap(page + 1);
        self.store.w.failed = true;
        self.store.erase_page(page)?;
        let header = PageHeader {
            dump: self.id(),
            index,
            erase_log2: FlashStore::<F>::ERASE_LOG2,
            write_log2: FlashStore::<F>::WRITE_LOG2,
        }
        .encode();
        let start = self.store.page_addr(page);
        self.program_record(start, &header)?;
        let w = &mut self.store.w;
        w.index = index;
        w.pos = start + if index == 0 { 2 } else { 1 } * FlashStore::<F>::SLOT;
        w.failed = false;
        Ok(())
    }

    /// Writes a 16-byte record padded with `FF` to a whole slot. Called with the buffer
    /// empty (`fill` 0).
    fn program_record(
        &mut self,
        at: u32,
        record: &[u8; RECORD_LEN],
    ) -> Result<(), Error<F::Error>> {
        let slot = FlashStore::<F>::SLOT as usize;
        let store = &mut *self.store;
        let bytes = if slot == RECORD_LEN {
            // Words of up to 16 bytes: the record is the slot.
            &record[..]
        } else {
            // Wider words: padded in the (empty) write buffer.
            let buf = &mut store.w.buf;
            bytes::copy(buf, record);
            bytes::fill(buf.get_mut(RECORD_LEN..slot).unwrap_or(&mut []), 0xFF);
            buf.get(..slot).ok_or(Error::Geometry)?
        };
        store.flash.write(at, bytes).map_err(Error::Flash)
    }

    /// Programs the buffer (padded with `FF` to whole words) at `pos`.
    fn flush_buf(&mut self) -> Result<(), Error<F::Error>> {
        let FlashStore { flash, w, .. } = &mut *self.store;
        let n = w.fill.next_multiple_of(F::WRITE_SIZE);
        let Some(chunk) = w.buf.get_mut(..n) else {
            return Err(Error::Geometry);
        };
        bytes::fill(chunk.get_mut(w.fill..).unwrap_or(&mut []), 0xFF);
        w.failed = true;
        flash.write(w.pos, chunk).map_err(Error::Flash)?;
        w.failed = false;
        w.pos += n as u32;
        w.fill = 0;
        Ok(())
    }

    /// The flash driver (the key pages share it).
    #[cfg(feature = "seal")]
    pub(crate) fn flash(&mut self) -> &mut F {
        &mut self.store.flash
    }

    /// The store's region in the flash.
    #[cfg(feature = "seal")]
    pub(crate) fn region(&self) -> Range<u32> {
        let s = &*self.store;
        s.base..s.base + s.pages * FlashStore::<F>::PAGE
    }

    pub(crate) fn push(&mut self, mut data: &[u8]) -> Result<(), Error<F::Error>> {
        if self.store.w.failed {
            return Err(Error::Aborted);
        }
        while !data.is_empty() {
            let page = FlashStore::<F>::PAGE;
            if self.store.w.pos % page == 0 {
                // The current page is full: the next one is `next_page`.
                let next = self.store.next_page;
                let w = &mut self.store.w;
                let index = w.index.checked_add(1).ok_or(Error::Full)?;
                if next == w.first_page {
                    w.failed = true;
                    return Err(Error::Full);
                }
                self.open_page(next, index)?;
            }
            let w = &mut self.store.w;
            let cap = ((page - w.pos % page) as usize).min(CHUNK);
            let take = (cap - w.fill).min(data.len());
            let (now, later) = data.split_at(take);
            if let Some(dst) = w.buf.get_mut(w.fill..) {
                bytes::copy(dst, now);
            }
            w.crc.update(now);
            w.fill += take;
            w.len = w.len.checked_add(take as u32).ok_or(Error::Full)?;
            data = later;
            if w.fill == cap {
                self.flush_buf()?;
            }
        }
        Ok(())
    }

    /// Writes the last bytes and the commit record: from here on the dump is visible. A
    /// power cut before the commit record is whole leaves the dump incomplete.
    pub fn commit(mut self) -> Result<DumpInfo, Error<F::Error>> {
        if self.store.w.failed {
            return Err(Error::Aborted);
        }
        if self.store.w.fill > 0 {
            self.flush_buf()?;
        }
        let id = self.id();
        let w = &self.store.w;
        let (first_page, pages, len) = (w.first_page, u32::from(w.index) + 1, w.len);
        let commit = Commit {
            len,
            data_crc: w.crc.finish(),
        }
        .encode(id);
        let at = self.store.page_addr(first_page) + FlashStore::<F>::SLOT;
        self.program_record(at, &commit)?;
        Ok(DumpInfo {
            id,
            first_page,
            pages,
            len,
            status: Status::Committed,
        })
    }
}

impl<F: NorFlash> embedded_io::ErrorType for DumpWriter<'_, F> {
    type Error = Error<F::Error>;
}

impl<F: NorFlash> embedded_io::Write for DumpWriter<'_, F> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.push(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        // Bytes stay buffered until a whole chunk or the commit: a word is written once.
        Ok(())
    }
}
