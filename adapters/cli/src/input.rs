//! Reading one input: what kind it is (a stream of dumps, a ring file, or a flash image of
//! the paged layout) and its items, streamed: no input is read into memory whole.
//!
//! The kind is decided by the file's first bytes (a dump's magic, or a page header at
//! offset 0), never by what records contain. When the start says neither (a damaged first
//! page, garbage before the first dump), both readings are tried and the one that
//! explains more of the file (bytes of whole frames, plus page header and commit slots) is
//! kept.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use flightrec_core::dump::MAGIC;
use flightrec_decode::flash::{FlashImage, Trouble};
use flightrec_decode::{Decoder, Item, Stats};
use flightrec_flash::{page_header_at, RECORD_LEN};

use crate::{shown, Env, Progress};

/// Why reading an input stopped early.
pub(crate) enum Stop {
    /// Writing the output failed (a closed pipe ends the run quietly).
    Output(io::Error),
    /// The ELF was refused.
    Refused,
}

/// What reading one input found, besides its items.
#[derive(Default)]
pub(crate) struct Outcome {
    /// The decoder's counts, summed over the input's parts.
    pub(crate) stats: Stats,
    /// The flash image had damage of its own (pages, commit CRCs).
    pub(crate) flash_damaged: bool,
    /// Reading failed: the message is on the error stream.
    pub(crate) read_error: bool,
}

/// Called with every item of an input (and the error stream).
pub(crate) type OnItem<'a> = dyn FnMut(&Item<'_>, &mut dyn Write) -> Result<(), Stop> + 'a;

/// Opens `path` ("-": standard input), decides its kind and hands every item to `on_item`.
/// An input that cannot be opened is an `Err` (the caller reports it).
pub(crate) fn read(
    path: &Path,
    env: &Env,
    err: &mut dyn Write,
    on_item: &mut OnItem<'_>,
) -> io::Result<Result<Outcome, Stop>> {
    if path.as_os_str() == "-" {
        return Ok(stream(path, io::stdin().lock(), env, err, on_item));
    }
    let mut file = File::open(path)?;
    if !file.metadata()?.is_file() {
        // A pipe (`<(zcat dump.gz)`) or a device: read as it comes, no seeking.
        return Ok(stream(path, file, env, err, on_item));
    }
    let mut start = Vec::with_capacity(RECORD_LEN);
    (&mut file)
        .take(RECORD_LEN as u64)
        .read_to_end(&mut start)?;
    let flash = if start.starts_with(&MAGIC) {
        None
    } else if starts_as_flash(&start) {
        FlashImage::open(File::open(path)?)?
    } else {
        // Neither a dump nor a page header at the start: keep the reading that explains
        // more of the file.
        match FlashImage::open(File::open(path)?)? {
            Some(mut image) => {
                let flash = flash_explains(&mut image)?;
                (flash > wire_explains(path)?).then_some(image)
            }
            None => None,
        }
    };
    Ok(match flash {
        Some(image) => flash_dumps(path, image, err, on_item),
        None => {
            let file = File::open(path)?;
            let len = file.metadata().ok().map(|m| m.len());
            let r: Box<dyn Read> = if env.progress {
                Box::new(Progress::new(file, shown(path), len))
            } else {
                Box::new(file)
            };
            wire(path, r, err, on_item)
        }
    })
}

/// Decodes an input that cannot seek (standard input, a pipe) as a stream of dumps; a
/// flash image (a page header at its start) is refused, as it is read page by page.
fn stream(
    path: &Path,
    mut input: impl Read,
    env: &Env,
    err: &mut dyn Write,
    on_item: &mut OnItem<'_>,
) -> Result<Outcome, Stop> {
    let mut start = Vec::with_capacity(RECORD_LEN);
    if let Err(e) = (&mut input).take(RECORD_LEN as u64).read_to_end(&mut start) {
        let _ = writeln!(err, "flightrec: cannot read {}: {e}", shown(path));
        return Ok(Outcome {
            read_error: true,
            ..Outcome::default()
        });
    }
    if starts_as_flash(&start) {
        let _ = writeln!(
            err,
            "flightrec: {}: a flash image (a page header at offset 0) is read page by page: give it as a regular file",
            shown(path)
        );
        return Ok(Outcome {
            read_error: true,
            ..Outcome::default()
        });
    }
    let r = io::Cursor::new(start).chain(input);
    if env.progress {
        wire(path, Progress::new(r, shown(path), None), err, on_item)
    } else {
        wire(path, r, err, on_item)
    }
}

/// Whether an input starts with a page header (at offset 0 every page size divides).
fn starts_as_flash(start: &[u8]) -> bool {
    start
        .first_chunk::<RECORD_LEN>()
        .is_some_and(|b| page_header_at(0, b).is_some())
}

/// Decodes a stream of dumps (a file of dumps, a ring file, a raw image of simple layout).
fn wire(
    path: &Path,
    input: impl Read,
    err: &mut dyn Write,
    on_item: &mut OnItem<'_>,
) -> Result<Outcome, Stop> {
    let mut outcome = Outcome::default();
    let mut decoder = Decoder::new(input);
    outcome.read_error = !items(path, &mut decoder, err, on_item)?;
    outcome.stats = decoder.stats();
    Ok(outcome)
}

/// Hands a decoder's items to `on_item`; `false` if reading failed (said on `err`).
fn items<R: Read>(
    path: &Path,
    decoder: &mut Decoder<R>,
    err: &mut dyn Write,
    on_item: &mut OnItem<'_>,
) -> Result<bool, Stop> {
    loop {
        match decoder.next() {
            Ok(Some(item)) => on_item(&item, err)?,
            Ok(None) => return Ok(true),
            Err(e) => {
                let _ = writeln!(err, "flightrec: cannot read {}: {e}", shown(path));
                return Ok(false);
            }
        }
    }
}

/// Decodes the dumps of a flash image one after the other (item offsets count from the
/// start of each dump's data), reporting on `err` what the image's pages say is wrong.
fn flash_dumps(
    path: &Path,
    mut image: FlashImage<File>,
    err: &mut dyn Write,
    on_item: &mut OnItem<'_>,
) -> Result<Outcome, Stop> {
    let mut outcome = Outcome::default();
    let page = image.page_size();
    let count = image.page_count();
    let mut cut = false;
    image.rewind();
    loop {
        let d = match image.next_dump() {
            Ok(Some(d)) => d,
            Ok(None) => break,
            Err(e) => {
                let _ = writeln!(err, "flightrec: cannot read {}: {e}", shown(path));
                outcome.read_error = true;
                break;
            }
        };
        cut |= d.trouble.contains(&Trouble::Cut);
        let last = (d.first_page + d.pages - 1) % count;
        let name = match d.id {
            Some(id) => format!("flash dump {id}"),
            None => "flash page".to_owned(),
        };
        for t in &d.trouble {
            let _ = writeln!(
                err,
                "flightrec: {}: {name}, pages {}..={last}{} (image offset {}): {t}",
                shown(path),
                d.first_page,
                if last < d.first_page {
                    " round the region's end"
                } else {
                    ""
                },
                d.first_page * page,
            );
        }
        outcome.flash_damaged |= d.damaged();
        if d.trouble.contains(&Trouble::Reclaimed) {
            continue;
        }
        // Item offsets count in the dump's data (page headers interleave it in the image).
        let _ = writeln!(
            err,
            "flightrec: {}: {name}, pages {}..={last} (image offset {}): the offsets shown for it count from its data's first byte",
            shown(path),
            d.first_page,
            d.first_page * page,
        );
        let mut decoder = Decoder::new(image.data(&d));
        let ok = items(path, &mut decoder, err, on_item)?;
        outcome.read_error |= !ok;
        outcome.stats.add(&decoder.stats());
    }
    if let Some((last, held)) = image.partial_tail().filter(|_| !cut) {
        outcome.flash_damaged = true;
        let _ = writeln!(
            err,
            "flightrec: {}: the image ends {held} bytes into page {last} (pages are {page} bytes): it is cut",
            shown(path)
        );
    }
    Ok(outcome)
}

/// Bytes of `path` the dump-stream reading explains.
fn wire_explains(path: &Path) -> io::Result<u64> {
    let mut decoder = Decoder::new(File::open(path)?);
    while decoder.next()?.is_some() {}
    Ok(decoder.stats().framed)
}

/// Bytes of an image the flash reading explains: whole frames in its dumps, and their
/// page header and commit slots.
fn flash_explains(image: &mut FlashImage<File>) -> io::Result<u64> {
    let mut total = 0;
    image.rewind();
    while let Some(d) = image.next_dump()? {
        if d.trouble.contains(&Trouble::Reclaimed) {
            continue;
        }
        let mut decoder = Decoder::new(image.data(&d));
        while decoder.next()?.is_some() {}
        let framed = decoder.stats().framed;
        if framed > 0 {
            total += framed + (d.pages + u64::from(d.has_first)) * RECORD_LEN as u64;
        }
    }
    Ok(total)
}
