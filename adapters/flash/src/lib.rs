//! Power-fail-safe storage of flightrec dumps on NOR flash, for microcontrollers: no heap,
//! no second RAM copy of the ring, any power cut survived.
//!
//! - [`FlashStore`]: a region of erase pages holding several dumps, oldest reclaimed first
//!   (round robin, so every page wears alike). [`FlashStore::store`] streams a dump from a
//!   ring (or [`FlashStore::begin`] gives an [`embedded_io::Write`] to stream into);
//!   [`FlashStore::dumps`] lists them, [`FlashStore::header`] decodes one's header,
//!   [`FlashStore::read_out`] sends one through any [`embedded_io::Write`] (a UART, a USB
//!   CDC pipe) in the wire format of `core/WIRE-FORMAT.md`; [`FlashStore::erase`] and
//!   [`FlashStore::erase_all`] erase.
//! - [`persist`]: a recorder whose ring lives in `.uninit` RAM, survives a reset, is
//!   validated at boot and dumped as an untimely death; crash loops are bounded.
//! - `keys` (feature `seal`): the device's sealing key in two erase pages, evolved
//!   power-fail safely before each sealed dump is committed (`FlashStore::store_sealed`,
//!   `FlashStore::write_sealed`, `PersistentRecorder::dump_death_sealed`); the format and
//!   the order of writes are `core/SEALING.md` section 8.
//! - [`frame`] and `defmt_logger` (feature `defmt-logger`): a `#[defmt::global_logger]`
//!   recording defmt frames into the ring.
//! - [`RamFlash`] (NOR semantics in RAM, for demos) and [`ImageFlash`] (a raw image read
//!   back on the host with this same code).
//!
//! ```
//! use flightrec_core::{Ring, RecordMeta, Kind, Level, DumpHeader, Reason, ClockInfo, Build};
//! use flightrec_flash::{FlashStore, RamFlash, Status};
//!
//! let mut mem = [0xFFu8; 8 * 256];
//! let flash: RamFlash<'_, 256, 4> = RamFlash::new(&mut mem);
//! let mut store = FlashStore::mount(flash, 0..8 * 256).unwrap();
//!
//! let mut ring: Ring<512> = Ring::new();
//! let meta = RecordMeta { time: 3, level: Level::Warn, kind: Kind::FRAME, session: None };
//! ring.push(&meta, b"wrong pin").unwrap();
//! let header = DumpHeader {
//!     reason: Reason::FailedLogin, detail: "", trigger_time: 3, trigger_seq: Some(0),
//!     clock: ClockInfo::BOOT_MILLIS, first_seq: 0, next_seq: 0, lost: 0, suppressed: 0,
//!     scope: None, index: 0, capacity: 0,
//!     build: Build { name: "demo", version: "1", id: &[] },
//! };
//! let mut scratch = [0u8; 128];
//! let info = store.store(&ring, header, &mut scratch).unwrap();
//!
//! let listed = store.dumps().next().unwrap().unwrap();
//! assert_eq!((listed.id, listed.status), (info.id, Status::Committed));
//! let mut uart = Vec::new();
//! store.read_out(&listed, &mut uart).unwrap();
//! assert_eq!(&uart[..8], &flightrec_core::dump::MAGIC);
//! ```
//!
//! # Our own format, not sequential-storage
//!
//! We decided against building on `sequential-storage` and use the small format below:
//!
//! - **Streaming.** Its queue stores an item from one `&[u8]` that must fit in a page; a
//!   dump is larger than a page and must stream from the ring without a RAM copy. Splitting
//!   a dump into items would need our own commit across items anyway.
//! - **Blocking.** sequential-storage 8 is async-only (`embedded-storage-async`); this
//!   store runs from a panic path and a boot path where there is no executor.
//! - **Power-fail semantics we can state and test.** Its issue 136 (a torn item header plus
//!   a later write forming a valid-looking header: a phantom) and issue 70 (a half-erased
//!   page taken for data) are ruled out by construction here (below), and checked by a
//!   power-cut simulation at every single operation.
//! - **Size.** The whole store is a few hundred lines; see the footprint in the firmware
//!   example's README.
//!
//! # Layout on flash
//!
//! The region is `P` pages of `E = ERASE_SIZE` bytes. A *slot* is 16 bytes rounded up to a
//! multiple of `W = WRITE_SIZE` (`S` bytes; padding is `FF`). Every used page starts with a
//! page-header slot; the first page of a dump has a commit slot after it:
//!
//! ```text
//! first page of a dump:  [page header S][commit S][data .......... to the page end]
//! page k >= 1 of a dump: [page header S][data ...................... to the page end]
//!
//! page header (16 bytes, LE): "FLRP" | dump id u32 | page index u16 | log2 E u8 | log2 W u8
//!                             | CRC-32 of the 12 bytes before
//! commit      (16 bytes, LE): "FLRC" | data length u32 | CRC-32 of the data
//!                             | CRC-32 of (the 12 bytes before, then the dump id as u32 LE)
//! ```
//!
//! The *data* is the dump exactly as [`flightrec_core::write_dump`] wrote it (wire format,
//! starting with its 8-byte magic). Page `k` of a dump is region page `(first + k) mod P`,
//! with the same dump id and page index `k`. Dump ids increase by one per dump started.
//! CRC-32 is the one of the wire format ([`flightrec_core::crc`]).
//!
//! **Reading an image** (what [`FlashStore::dumps`] does, and what a host decoder of raw
//! images must do): for each page whose header checks and has index 0, follow the pages
//! after it while they check with the same id and the next index. If the commit checks,
//! its length fits those pages and the CRC of that many data bytes matches, the dump is
//! [`Status::Committed`]: its bytes are the data, page after page, cut at the length. If
//! the commit slot does not check (blank or torn), the dump is [`Status::Incomplete`]: its
//! data runs to the last byte that is not `FF` of its last page (a wire-format decoder then
//! reports the missing end frame). A commit that checks over data that does not is
//! [`Status::Corrupt`] and is not read. A dump that fits its first page (`E - 2S` bytes) is
//! contiguous in the image, so scanning an image for the wire-format magic finds it whole;
//! a larger dump has a page header every `E` bytes inside its data, which only a reader of
//! this layout skips. [`geometry`] finds `E` and `W` in an image; with the `alloc`
//! feature, `image_dumps` returns every dump of an image with its bytes (for host
//! decoders).
//!
//! # Power-fail safety
//!
//! - **Visible only once whole.** The commit, written last, covers the length and a CRC of
//!   all data and is bound to the dump id. A cut at any write or erase before it leaves the
//!   dump incomplete; a torn commit does not check.
//! - **No phantom** (sequential-storage issue 136). No word is ever written twice: every
//!   page is erased right before its header is written, the header before any data, the
//!   commit once. After a reboot the next dump starts on the page after the newest valid
//!   header (largest id, then index), which the store erases before use: a torn header is
//!   never completed by a later write. Data never starts at a page's offset 0, so bytes a
//!   peer controls (a user name) cannot pose as a page header.
//! - **No half-erased page taken for data** (issue 70). An interrupted erase leaves a page
//!   whose header fails its CRC (ignored), or whose header survived while its data did not:
//!   the data CRC of the commit fails and the dump is reported corrupt, never read as data.
//! - **Earlier dumps intact.** Only the page being erased for the new dump changes; dumps
//!   whose pages it does not touch are unaffected. A dump is reclaimed first page first, so
//!   what remains of a reclaimed dump has no first page and is ignored.
//! - **Geometry.** Reads honour `READ_SIZE` (through a 32-byte bounce buffer), writes are
//!   whole `WRITE_SIZE` words at aligned offsets, erases whole pages. `WRITE_SIZE` and
//!   `READ_SIZE` up to 32 bytes, `ERASE_SIZE` a power of two of at least 128 bytes.
//!
//! The tests cut power at every write (mid-word: a random subset of the bits programmed)
//! and every erase (random bytes erased, kept or half set) of a scenario of ten dumps of
//! one to several pages, for three geometries, then check every dump listed against what
//! was written, and that the store goes on working; a fuzz target feeds random images to
//! the reader.
//!
//! # Wear under a brute-force attack
//!
//! Dumps only happen when the trigger machine orders one, and its [`RateLimit`] bounds
//! that: in any hour at most `dumps + dumps * (1 h / window)` dumps (e.g. `dumps: 2,
//! window: 1 h` gives at most 4). A dump erases exactly the pages it spans, once each, and
//! is at most about `2.6 * N + 300` bytes for an `N`-byte ring (the worst case is empty
//! records: 12 ring bytes become up to 31 dump bytes). So the worst case is
//!
//! ```text
//! erases per hour <= dumps_per_hour * ceil((2.6 * N + 300) / (E - S))
//! ```
//!
//! For the firmware example (4 KiB ring, 1 KiB pages, `dumps: 2` per hour): at most
//! 4 * 11 = **44 page erases per hour**, spread round robin over 16 pages: under 3 erases
//! per page per hour, so a 100 000-cycle NOR flash lasts more than 4 years of continuous
//! attack. An attacker's failed logins only ever feed the limiter; triggers it refuses are
//! counted (`suppressed` in the next dump header), never written. Untimely-death dumps are
//! not rate-limited (the firmware has one chance) but need a reboot each and stop after
//! [`persist::PersistConfig::max_death_dumps`] deaths in a row.
//!
//! # Not done
//!
//! No async variant: the dump stream is written through the blocking
//! [`embedded_io::Write`] of `flightrec_core::write_dump`; an async store would need an
//! async dump writer in the core as well.
//!
//! [`RateLimit`]: flightrec_core::RateLimit
#![no_std]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

#[cfg(feature = "defmt-logger")]
pub mod defmt_logger;
mod format;
pub mod frame;
mod image;
#[cfg(feature = "seal")]
pub mod keys;
pub mod persist;
mod ram;
mod store;

pub use format::{Commit, PageHeader, COMMIT_MAGIC, PAGE_MAGIC, RECORD_LEN};
#[cfg(feature = "alloc")]
pub use image::image_dumps;
pub use image::{geometry, page_header_at, ImageError, ImageFlash};
pub use ram::{RamFlash, RamFlashError};
pub use store::{DumpInfo, DumpWriter, Dumps, Error, FlashStore, ReadError, Status, CHUNK};
