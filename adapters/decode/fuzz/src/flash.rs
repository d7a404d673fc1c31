//! Flash images written by `flightrec-flash`'s `FlashStore` over a `RamFlash` (several dumps,
//! round robin, older dumps reclaimed), and the model of what survives: the dumps whose pages
//! no later dump took, each at the pages the layout puts it (page header slot, commit slot on
//! the first page, data after them, page after page).

use arbitrary::Arbitrary;
use embedded_io::Write;
use flightrec_flash::{FlashStore, PageHeader, RamFlash, Status, RECORD_LEN};

/// A geometry: erase page and write word sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Erase page, bytes.
    pub erase: usize,
    /// Write word, bytes.
    pub write: usize,
    /// Pages in the region.
    pub pages: usize,
}

impl Geometry {
    /// A slot: 16 bytes rounded up to whole words.
    pub fn slot(&self) -> usize {
        RECORD_LEN.next_multiple_of(self.write)
    }

    /// Image offset of data byte `j` of a dump whose first page is `first`.
    pub fn data_at(&self, first: usize, j: usize) -> usize {
        let s = self.slot();
        let head = self.erase - 2 * s;
        let (k, off) = if j < head {
            (0, 2 * s + j)
        } else {
            let j = j - head;
            (1 + j / (self.erase - s), s + j % (self.erase - s))
        };
        (first + k) % self.pages * self.erase + off
    }

    /// Pages a dump of `len` bytes spans.
    pub fn pages_for(&self, len: usize) -> usize {
        let s = self.slot();
        if len <= self.erase - 2 * s {
            1
        } else {
            1 + (len - (self.erase - 2 * s)).div_ceil(self.erase - s)
        }
    }
}

/// A dump that survives in the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Survivor {
    /// Index of the dump among those the scenario wrote.
    pub dump: usize,
    /// Its store id.
    pub id: u32,
    /// Its first page.
    pub first_page: usize,
    /// Pages it spans.
    pub pages: usize,
    /// Its data length.
    pub len: usize,
}

impl Survivor {
    /// Whether image byte `at` holds something of this dump: a page header, its commit, or
    /// data.
    pub fn holds(&self, g: &Geometry, at: usize) -> bool {
        let page = at / g.erase;
        let off = at % g.erase;
        let k = (page + g.pages - self.first_page) % g.pages;
        if k >= self.pages {
            return false;
        }
        let s = g.slot();
        if off < RECORD_LEN || (k == 0 && off >= s && off < s + RECORD_LEN) {
            return true;
        }
        let data_start = if k == 0 { 2 * s } else { s };
        if off < data_start {
            return false;
        }
        let j = if k == 0 {
            off - 2 * s
        } else {
            (g.erase - 2 * s) + (k - 1) * (g.erase - s) + (off - s)
        };
        j < self.len
    }

    /// Whether image byte `at` is in this dump's first page header.
    pub fn first_header(&self, g: &Geometry, at: usize) -> bool {
        at / g.erase == self.first_page && at % g.erase < RECORD_LEN
    }
}

/// An image and what survives in it.
pub struct Image {
    /// Its geometry.
    pub geometry: Geometry,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The surviving dumps, oldest first.
    pub survivors: Vec<Survivor>,
    /// Dumps some of whose pages survive without their first page (reclaimed in part).
    pub remnants: usize,
}

/// Geometry selector and page count from two bytes.
pub fn geometry(sel: u8, pages: u8) -> Geometry {
    let (erase, write) = [(128, 1), (256, 4), (128, 16), (512, 32)][usize::from(sel % 4)];
    Geometry {
        erase,
        write,
        pages: 2 + usize::from(pages % 7),
    }
}

/// Stores `dumps` (wire-format bytes) in a fresh region of geometry `g`, skipping those
/// larger than the region; checks each lands where the round robin puts it.
pub fn store(g: Geometry, dumps: &[&[u8]]) -> Image {
    match (g.erase, g.write) {
        (128, 1) => store_as::<128, 1>(g, dumps),
        (256, 4) => store_as::<256, 4>(g, dumps),
        (128, 16) => store_as::<128, 16>(g, dumps),
        _ => store_as::<512, 32>(g, dumps),
    }
}

fn store_as<const E: usize, const W: usize>(g: Geometry, dumps: &[&[u8]]) -> Image {
    let mut mem = vec![0xFF; E * g.pages];
    let flash: RamFlash<'_, E, W> = RamFlash::new(&mut mem);
    let mut store = FlashStore::mount(flash, 0..(E * g.pages) as u32).expect("mount");
    let capacity = store.capacity(g.pages as u32) as usize;
    // Page owners, in write order: (dump, page index within it).
    let mut owner: Vec<Option<(usize, usize)>> = vec![None; g.pages];
    let mut written: Vec<Survivor> = Vec::new();
    let mut next_page = 0;
    for (i, bytes) in dumps.iter().enumerate() {
        if bytes.len() > capacity {
            continue;
        }
        let mut w = store.begin().expect("begin");
        w.write_all(bytes).expect("write");
        let info = w.commit().expect("commit");
        let pages = g.pages_for(bytes.len());
        assert_eq!(info.first_page as usize, next_page, "round robin");
        assert_eq!(info.pages as usize, pages, "pages spanned");
        assert_eq!(info.len as usize, bytes.len());
        assert_eq!(info.status, Status::Committed);
        for k in 0..pages {
            owner[(next_page + k) % g.pages] = Some((i, k));
        }
        written.push(Survivor {
            dump: i,
            id: info.id,
            first_page: next_page,
            pages,
            len: bytes.len(),
        });
        next_page = (next_page + pages) % g.pages;
    }
    let whole = |s: &Survivor| {
        (0..s.pages).all(|k| owner[(s.first_page + k) % g.pages] == Some((s.dump, k)))
    };
    let survivors: Vec<Survivor> = written.iter().copied().filter(whole).collect();
    let remnants = written
        .iter()
        .filter(|s| !whole(s) && owner.iter().any(|o| o.is_some_and(|(d, _)| d == s.dump)))
        .count();
    drop(store);
    Image {
        geometry: g,
        bytes: mem,
        survivors,
        remnants,
    }
}

/// Whether some page of `image` has a header that checks but belongs to no survivor.
pub fn stray_pages(g: &Geometry, image: &[u8], survivors: &[Survivor]) -> bool {
    image.chunks(g.erase).enumerate().any(|(page, p)| {
        let Some(h) = p.first_chunk::<RECORD_LEN>().and_then(PageHeader::decode) else {
            return false;
        };
        !survivors.iter().any(|s| {
            s.id == h.dump
                && usize::from(h.index) < s.pages
                && (s.first_page + usize::from(h.index)) % g.pages == page
        })
    }) || image.len() % g.erase != 0
}

/// A mutation of the image.
#[derive(Arbitrary, Clone, Debug)]
pub enum FlashMutation {
    /// Flips a burst of bits (no CRC repaired).
    Flip {
        /// Bit offset (modulo the image's bits).
        bit: u32,
        /// Which of the 32 bits from there flip.
        pattern: u32,
    },
    /// Erases a page.
    ErasePage(u8),
    /// Sets a run of bytes to `FF`.
    Erase {
        /// Start (modulo the image's length).
        at: u32,
        /// Length, less one.
        len: u16,
    },
    /// Cuts the image.
    Truncate(u32),
    /// Swaps two pages.
    SwapPages(u8, u8),
    /// Copies a page over another.
    CopyPage(u8, u8),
    /// A power cut while a surviving dump was written: its data from byte `at` on and its
    /// commit never reached the flash.
    Cut {
        /// Which survivor.
        dump: u8,
        /// Data bytes that reached the flash (modulo its length).
        at: u32,
    },
}

impl FlashMutation {
    /// Applies it to `image` (bytes and geometry of `img`).
    pub fn apply(&self, img: &Image, out: &mut Vec<u8>) {
        let g = &img.geometry;
        out.clear();
        out.extend_from_slice(&img.bytes);
        let page = |p: u8| usize::from(p) % g.pages * g.erase;
        match *self {
            FlashMutation::Flip { bit, pattern } => {
                let bits = out.len() * 8;
                for k in 0..32 {
                    if pattern >> k & 1 == 1 {
                        let b = (bit as usize + k) % bits;
                        out[b / 8] ^= 1 << (b % 8);
                    }
                }
            }
            FlashMutation::ErasePage(p) => out[page(p)..page(p) + g.erase].fill(0xFF),
            FlashMutation::Erase { at, len } => {
                let from = at as usize % out.len();
                let to = (from + usize::from(len) + 1).min(out.len());
                out[from..to].fill(0xFF);
            }
            FlashMutation::Truncate(at) => out.truncate(at as usize % out.len()),
            FlashMutation::SwapPages(a, b) => {
                let (a, b) = (page(a), page(b));
                if a != b {
                    let (lo, hi) = (a.min(b), a.max(b));
                    let (x, y) = out.split_at_mut(hi);
                    x[lo..lo + g.erase].swap_with_slice(&mut y[..g.erase]);
                }
            }
            FlashMutation::CopyPage(a, b) => {
                let (a, b) = (page(a), page(b));
                out.copy_within(a..a + g.erase, b);
            }
            FlashMutation::Cut { dump, at } => {
                let Some(s) = img
                    .survivors
                    .get(usize::from(dump) % img.survivors.len().max(1))
                else {
                    return;
                };
                let slot = g.slot();
                let commit = s.first_page * g.erase + slot;
                out[commit..commit + slot].fill(0xFF);
                let from = at as usize % s.len.max(1);
                for j in from..s.len {
                    out[g.data_at(s.first_page, j)] = 0xFF;
                }
                // Pages the writer had not reached yet were never opened.
                for k in 1..s.pages {
                    if (g.erase - 2 * slot) + (k - 1) * (g.erase - slot) >= from {
                        let p = (s.first_page + k) % g.pages * g.erase;
                        out[p..p + g.erase].fill(0xFF);
                    }
                }
            }
        }
    }
}
