//! Flash images written by `FlashStore` over `RamFlash`: several dumps of `arbitrary` records
//! (one of them possibly mutated frame by frame before it was stored, its CRCs valid), round
//! robin over 2 to 8 pages so older dumps are reclaimed; then the image is mutated: bit
//! flips, erased pages and runs, truncation, swapped and copied pages, a power cut while a
//! dump was written.
//!
//! Checks, beyond what `check` checks for any input: an unmutated image lists exactly the
//! dumps that survive the round robin, each committed with the bytes written, and decodes
//! to exactly their records (exit 0 when no reclaimed remnant is left to report); a frame
//! mutation the judge calls damage makes the CLI exit 1; an image mutation that changes a
//! surviving dump's page header (after its first page) or data makes the CLI exit 1.
#![no_main]

use arbitrary::Arbitrary;
use flightrec_decode_fuzz::flash::{self, FlashMutation, Survivor};
use flightrec_decode_fuzz::judge::{judge, Verdict, Why};
use flightrec_decode_fuzz::pieces::{File, Mutation};
use flightrec_decode_fuzz::{check, gen};
use flightrec_flash::Status;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    geometry: (u8, u8),
    scenario: gen::Scenario,
    /// A frame-level mutation of one dump before it is stored.
    frames: Option<(u8, Mutation)>,
    image: Option<FlashMutation>,
    format: u8,
}

/// What an image mutation did to the surviving dumps.
#[derive(Debug, PartialEq, Eq)]
enum Hit {
    /// No byte of a surviving dump changed.
    None,
    /// Only commit records changed (the data is whole, nothing is lost), or a cut of a dump
    /// mutated before it was stored: not judged.
    NotJudged,
    /// A page header after a dump's first page, or data, changed: exit 1.
    Data,
    /// A dump's first page header changed (or the image was cut inside its first page): the
    /// dump vanished before issue 10.
    Vanishes,
    /// A power cut left a started dump less than a magic and version of data.
    NothingLeft,
}

fuzz_target!(|input: Input| {
    let dumps = gen::build(&input.scenario);
    let mut files: Vec<File> = dumps
        .iter()
        .map(|d| File::of_dumps([d.bytes.as_slice()]))
        .collect();
    let mut frame_mutated = None;
    if let (Some((d, m)), false) = (&input.frames, files.is_empty()) {
        let d = usize::from(*d) % files.len();
        if files[d].apply(m) {
            frame_mutated = Some(d);
        }
    }
    let wire: Vec<Vec<u8>> = files
        .iter()
        .map(|f| {
            let (mut b, mut o) = (Vec::new(), Vec::new());
            f.render(&mut b, &mut o);
            b
        })
        .collect();
    let g = flash::geometry(input.geometry.0, input.geometry.1);
    let img = flash::store(g, &wire.iter().map(Vec::as_slice).collect::<Vec<_>>());

    // The survivors' wire bytes, one after the other: what the CLI decodes.
    let mut survivors = File::default();
    for s in &img.survivors {
        survivors.append(&files[s.dump]);
    }
    let (mut bytes, mut offsets) = (Vec::new(), Vec::new());
    survivors.render(&mut bytes, &mut offsets);
    let verdict = judge(&survivors, &offsets);

    let Some(mutation) = &input.image else {
        flightrec_decode_fuzz::judge::log(|| {
            format!(
                "whole image survivors={} remnants={} {}",
                img.survivors.len(),
                img.remnants,
                verdict.label()
            )
        });
        listing_check(&img, &wire);
        let decoded = check::decode(&bytes);
        let run = check::cli(&img.bytes, input.format);
        let strays = flash::stray_pages(&g, &img.bytes, &img.survivors);
        expect(&verdict, run.code, strays);
        if let Verdict::Clean(clean) = &verdict {
            let records: Vec<_> = decoded
                .records
                .iter()
                .map(|(o, h, r)| (*o, *h, &bytes[r.clone()]))
                .collect();
            let expected: Vec<_> = clean
                .records
                .iter()
                .map(|r| (r.offset, r.head, r.payload))
                .collect();
            assert_eq!(records, expected, "records of the surviving dumps differ");
        }
        return;
    };
    let mut mutated = Vec::new();
    mutation.apply(&img, &mut mutated);
    let hit = hit(&img, &mutated, mutation, frame_mutated);
    flightrec_decode_fuzz::judge::log(|| {
        format!("image {hit:?} survivors={}", img.survivors.len())
    });
    let partial = mutated.len() % g.erase != 0;
    let run = check::cli(&mutated, input.format);
    // What a failed assertion shows besides the input.
    let context = || {
        format!(
            "{g:?} {mutation:?} {hit:?} survivors {:?} frame-mutated {frame_mutated:?}\n{}{}",
            img.survivors,
            String::from_utf8_lossy(&run.out),
            String::from_utf8_lossy(&run.err)
        )
    };
    match hit {
        Hit::Data => assert_damaged(run.code, || {
            format!(
                "a surviving dump's data or page header changed: {}",
                context()
            )
        }),
        Hit::Vanishes if cfg!(feature = "issue10-damage") => {
            if !(run.code == 0 && shown_as_stream(&mutated, &verdict)) {
                assert_damaged(run.code, || {
                    format!("a surviving dump vanishes: {}", context())
                });
            }
        }
        Hit::NothingLeft if cfg!(feature = "empty-dump") => assert_damaged(run.code, || {
            format!("a power cut left a dump without data: {}", context())
        }),
        _ if partial && cfg!(feature = "issue10-damage") => assert_damaged(run.code, || {
            format!("the image ends inside a page: {}", context())
        }),
        Hit::None if !partial => {
            // The survivors are untouched: frame damage inside them is still damage.
            if let Verdict::Damaged(why, _) = verdict {
                if matches!(
                    mutation,
                    FlashMutation::Flip { .. } | FlashMutation::Erase { .. }
                ) {
                    expect_damaged(why, run.code);
                }
            }
        }
        _ => {}
    }
});

/// Whether an image whose last page header a mutation erased or damaged is read whole as a
/// stream of dumps: with no valid page header left it cannot be told from a raw region
/// holding dumps after erased flash (which the CLI reads without complaint), so it is fine
/// as long as every record of the clean survivors is shown, with every dump's header.
fn shown_as_stream(mutated: &[u8], verdict: &Verdict<'_>) -> bool {
    let Verdict::Clean(clean) = verdict else {
        return false;
    };
    let image = flightrec_decode::flash::FlashImage::open(std::io::Cursor::new(mutated));
    if !matches!(image, Ok(None)) {
        return false;
    }
    let decoded = check::decode(mutated);
    let records: Vec<_> = decoded
        .records
        .iter()
        .map(|(_, h, r)| (*h, &mutated[r.clone()]))
        .collect();
    let expected: Vec<_> = clean.records.iter().map(|r| (r.head, r.payload)).collect();
    let headers: Vec<_> = decoded.dumps.iter().map(|(_, h)| h).collect();
    let expected_headers: Vec<_> = clean.dumps.iter().map(|(_, h)| h).collect();
    records == expected && headers == expected_headers
}

fn assert_damaged(code: u8, what: impl FnOnce() -> String) {
    if code != flightrec_cli::EXIT_DAMAGED {
        panic!("exit {code}: {}", what());
    }
}

fn expect_damaged(why: Why, code: u8) {
    if !why.pending_issue10() || cfg!(feature = "issue10-damage") {
        assert_damaged(code, || format!("frame damage {why:?} in a stored dump"));
    }
}

/// The CLI's exit status against the judge's verdict on the survivors. A clean image exits
/// 0 unless it has pages of reclaimed dumps, which issue 10 may have reported.
fn expect(verdict: &Verdict<'_>, code: u8, strays: bool) {
    match verdict {
        Verdict::Clean(_) if !strays => {
            assert_eq!(code, flightrec_cli::EXIT_OK, "exit 1 on a whole image")
        }
        Verdict::Damaged(why, _) => expect_damaged(*why, code),
        _ => {}
    }
}

/// The store lists exactly the survivors, committed, with the bytes written.
fn listing_check(img: &flash::Image, wire: &[Vec<u8>]) {
    let listed = flightrec_flash::image_dumps(&img.bytes).unwrap_or_default();
    let got: Vec<_> = listed
        .iter()
        .map(|(info, data)| {
            (
                info.id,
                info.first_page as usize,
                info.status,
                data.as_slice(),
            )
        })
        .collect();
    let want: Vec<_> = img
        .survivors
        .iter()
        .map(|s| {
            (
                s.id,
                s.first_page,
                Status::Committed,
                wire[s.dump].as_slice(),
            )
        })
        .collect();
    assert_eq!(got, want, "dumps listed");
}

/// Which survivor bytes `mutated` changed. A power cut inside a dump that was mutated frame
/// by frame before it was stored may cut only bytes after its end frame: not judged.
fn hit(img: &flash::Image, mutated: &[u8], m: &FlashMutation, frame_mutated: Option<usize>) -> Hit {
    let g = &img.geometry;
    if let FlashMutation::SwapPages(a, b) = *m {
        return swap_hit(img, usize::from(a) % g.pages, usize::from(b) % g.pages);
    }
    // A dump whose first page is erased, cut off or overwritten whole (by a copy of another
    // dump's page) is gone as if the store had erased it: no sign of it is left.
    let overwritten = match *m {
        FlashMutation::CopyPage(a, b) if usize::from(a) % g.pages != usize::from(b) % g.pages => {
            Some(usize::from(b) % g.pages)
        }
        _ => None,
    };
    let gone = |s: &Survivor| {
        let first = s.first_page * g.erase;
        if overwritten == Some(s.first_page) {
            return true;
        }
        match mutated.get(first..first + g.erase) {
            Some(page) => page.iter().all(|&b| b == 0xFF),
            None => mutated.len() <= first,
        }
    };
    let mut hit = Hit::None;
    for (at, &b) in img.bytes.iter().enumerate() {
        if mutated.get(at) == Some(&b) {
            continue;
        }
        let Some(s) = img.survivors.iter().find(|s| s.holds(g, at)) else {
            continue;
        };
        if gone(s) {
            hit = match hit {
                Hit::None => Hit::NotJudged,
                h => h,
            };
            continue;
        }
        let h = if s.first_header(g, at) {
            Hit::Vanishes
        } else if in_commit(s, g, at) {
            Hit::NotJudged
        } else {
            Hit::Data
        };
        hit = match (hit, h) {
            (Hit::Vanishes, _) | (_, Hit::Vanishes) => Hit::Vanishes,
            (Hit::Data, _) | (_, Hit::Data) => Hit::Data,
            _ => Hit::NotJudged,
        };
    }
    // An image cut inside a dump's first page: the dump vanished before issue 10.
    let cut_first_page = img.survivors.iter().any(|s| {
        (s.first_page * g.erase + 1..(s.first_page + 1) * g.erase).contains(&mutated.len())
    });
    if matches!(m, FlashMutation::Truncate(_)) && cut_first_page {
        return Hit::Vanishes;
    }
    if let (FlashMutation::Cut { dump, at }, Hit::Data) = (m, &hit) {
        let s = &img.survivors[usize::from(*dump) % img.survivors.len()];
        if frame_mutated == Some(s.dump) {
            return Hit::NotJudged;
        }
        // Less than a magic and version left: the dump shows as nothing.
        if (*at as usize % s.len.max(1)) <= flightrec_core::dump::MAGIC.len() {
            return Hit::NothingLeft;
        }
    }
    hit
}

/// Swapped pages: a dump whose pages are still in order after the swap (a one-page dump,
/// or a dump round the whole region of two pages) only moved whole (not judged); any other
/// dump touched loses its page order (damage).
fn swap_hit(img: &flash::Image, a: usize, b: usize) -> Hit {
    let g = &img.geometry;
    let swap = |p: usize| {
        if p == a {
            b
        } else if p == b {
            a
        } else {
            p
        }
    };
    let mut hit = Hit::None;
    for s in &img.survivors {
        let at: Vec<usize> = (0..s.pages)
            .map(|k| swap((s.first_page + k) % g.pages))
            .collect();
        if at
            .iter()
            .enumerate()
            .all(|(k, &p)| p == (s.first_page + k) % g.pages)
        {
            continue;
        }
        let in_order = at
            .iter()
            .enumerate()
            .all(|(k, &p)| p == (at[0] + k) % g.pages);
        hit = match (hit, in_order) {
            (Hit::Data, _) | (_, false) => Hit::Data,
            _ => Hit::NotJudged,
        };
    }
    hit
}

fn in_commit(s: &Survivor, g: &flash::Geometry, at: usize) -> bool {
    let base = s.first_page * g.erase + g.slot();
    (base..base + flightrec_flash::RECORD_LEN).contains(&at)
}
