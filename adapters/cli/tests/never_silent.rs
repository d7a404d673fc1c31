//! The `flightrec` binary on damaged flash images, spliced kinds and record-count
//! mismatches: nothing vanishes with exit status 0.

use std::path::PathBuf;
use std::process::{Command, Output};

use flightrec_core::dump::{FRAME_END, FRAME_RECORD};
use flightrec_core::{Build, ClockInfo, DumpHeader, Level, Reason, Recorder};
use flightrec_flash::{DumpInfo, FlashStore, PageHeader, RamFlash};

const PAGE: usize = 256;
const PAGES: usize = 32;

fn header() -> DumpHeader<'static> {
    DumpHeader {
        reason: Reason::Manual,
        detail: "",
        trigger_time: 40,
        trigger_seq: None,
        clock: ClockInfo::BOOT_MILLIS,
        first_seq: 0,
        next_seq: 0,
        lost: 0,
        suppressed: 0,
        scope: None,
        index: 0,
        capacity: 0,
        build: Build {
            name: "fw",
            version: "1",
            id: &[],
        },
    }
}

/// A flash image holding one dump per entry of `sizes` (that many log records each, with
/// messages `d<dump> step <i>`), and the store's view of them.
fn flash_image(sizes: &[u64]) -> (Vec<u8>, Vec<DumpInfo>) {
    let mut mem = vec![0xFF; PAGES * PAGE];
    let mut infos = Vec::new();
    {
        let mut store =
            FlashStore::mount(RamFlash::<PAGE, 4>::new(&mut mem), 0..(PAGES * PAGE) as u32)
                .unwrap();
        for (d, &n) in sizes.iter().enumerate() {
            let rec: Recorder<8192> = Recorder::new();
            for i in 0..n {
                let msg = format!("d{d} step {i} of the handshake");
                rec.log(i, Level::Info, None, "pair", &msg, &[]).unwrap();
            }
            infos.push(store.store(&rec, header(), &mut [0u8; 256]).unwrap());
        }
    }
    (mem, infos)
}

fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("flightrec-ns-{name}"));
    std::fs::write(&p, bytes).unwrap();
    p
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flightrec"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8(o.stdout.clone()).unwrap(),
        String::from_utf8(o.stderr.clone()).unwrap(),
    )
}

fn shown(stdout: &str, d: usize, n: u64) -> usize {
    (0..n)
        .filter(|i| stdout.contains(&format!("msg=\"d{d} step {i} of the handshake\"")))
        .count()
}

#[test]
fn a_flipped_first_page_header_does_not_hide_the_dump() {
    // A dump across pages, and one that fits its first page.
    let (image, infos) = flash_image(&[40, 2]);
    assert!(infos[0].pages > 2 && infos[1].pages == 1, "{infos:?}");
    for (d, n) in [(0usize, 40u64), (1, 2)] {
        let mut img = image.clone();
        img[infos[d].first_page as usize * PAGE + 5] ^= 0x04; // the dump id in its header
        let p = file(&format!("flip-header-{d}.img"), &img);
        for cmd in ["decode", "info"] {
            let o = run(&[cmd, p.to_str().unwrap()]);
            let (out, err) = text(&o);
            assert_eq!(o.status.code(), Some(1), "{cmd} dump {d}:\n{out}\n{err}");
            assert!(
                err.contains(&format!("pages {}..", infos[d].first_page)),
                "{cmd}: {err}"
            );
            if cmd == "decode" {
                assert_eq!(shown(&out, d, n), n as usize, "{out}\n{err}");
                // The other dump is untouched.
                let other = 1 - d;
                assert_eq!(shown(&out, other, [40, 2][other]), [40, 2][other] as usize);
            }
        }
    }
}

#[test]
fn an_image_cut_inside_a_first_page_is_reported() {
    let (image, infos) = flash_image(&[10, 30]);
    let cut = infos[1].first_page as usize * PAGE + 200;
    let p = file("cut.img", &image[..cut]);
    let o = run(&["decode", p.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(err.contains("the image ends inside it"), "{err}");
    assert_eq!(shown(&out, 0, 10), 10, "{out}");
    // An image cut inside an erased page is cut too.
    let (image, _) = flash_image(&[10]);
    let p2 = file("cut-erased.img", &image[..image.len() - 100]);
    let o2 = run(&["info", p2.to_str().unwrap()]);
    assert_eq!(o2.status.code(), Some(1));
    assert!(
        text(&o2).1.contains("bytes into page 31"),
        "{}",
        text(&o2).1
    );
    // What the first 200 bytes of its page hold is shown: the dump's start.
    assert!(out.contains("records 0..30"), "{out}");
    assert!(out.contains("d1 step 0 of the handshake"), "{out}\n{err}");
}

#[test]
fn pages_of_no_listed_dump_are_reported_and_shown() {
    let (mut image, infos) = flash_image(&[3, 40]);
    // The second dump's first page erased: its other pages belong to no listed dump.
    let first = infos[1].first_page as usize;
    image[first * PAGE..(first + 1) * PAGE].fill(0xFF);
    let p = file("orphans.img", &image);
    for cmd in ["decode", "info"] {
        let o = run(&[cmd, p.to_str().unwrap()]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {out}\n{err}");
        assert!(err.contains("its first page is lost"), "{err}");
        if cmd == "decode" {
            assert!(out.contains("unknown dump at offset"), "{out}");
            // Records whose frames lie whole inside one of the remaining pages are shown.
            assert!(shown(&out, 1, 40) > 20, "{out}");
        }
    }
}

#[test]
fn one_flipped_data_bit_costs_one_frame() {
    let (mut image, infos) = flash_image(&[40]);
    // A byte in the middle of the dump's third page.
    let at = (infos[0].first_page as usize + 2) * PAGE + PAGE / 2;
    image[at] ^= 0x01;
    let p = file("data-flip.img", &image);
    let o = run(&["decode", p.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(err.contains("does not match its commit CRC"), "{err}");
    assert!(out.contains("!! damaged at offset"), "{out}");
    assert_eq!(shown(&out, 0, 40), 39, "{out}");
}

/// A 16-byte valid page header whose bytes are all ASCII, so a logged string can hold it.
fn ascii_page_header() -> String {
    (0u32..)
        .map(|id| {
            PageHeader {
                dump: 0x4141_0000 | (id & 0x7f7f),
                index: 0,
                erase_log2: 7,
                write_log2: 2,
            }
            .encode()
        })
        .find(|b| b.iter().all(|&c| c < 0x80))
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .unwrap()
}

/// A dump whose log message holds a page header at a multiple of 128 bytes of the file.
fn dump_with_page_header_in_a_string() -> Vec<u8> {
    let fake = ascii_page_header();
    for pad in 0..128 {
        let rec: Recorder<8192> = Recorder::new();
        rec.log(1, Level::Info, None, "auth", "user logged in", &[])
            .unwrap();
        let msg = format!("{}{fake} tail", "x".repeat(pad));
        rec.log(2, Level::Warn, None, "auth", &msg, &[]).unwrap();
        rec.log(3, Level::Info, None, "auth", "after", &[]).unwrap();
        // Enough after it that the fake header's page is whole in the file.
        for i in 0..8 {
            let msg = format!("then step {i} of the session, logged");
            rec.log(4 + i, Level::Info, None, "auth", &msg, &[])
                .unwrap();
        }
        let mut out = Vec::new();
        let Some(order) = (match rec.fire(Reason::UntimelyDeath, 0) {
            flightrec_core::Action::Dump(_) => rec.take_order(),
            _ => None,
        }) else {
            panic!("a death dumps at once")
        };
        let build = header().build;
        rec.dump(
            &order,
            ClockInfo::BOOT_MILLIS,
            &build,
            &mut out,
            &mut [0u8; 512],
        )
        .unwrap();
        let at = out.windows(16).position(|w| w == fake.as_bytes()).unwrap();
        if at % 128 == 0 {
            assert!(out.len() >= at + 128, "the fake page is whole in the file");
            return out;
        }
    }
    unreachable!()
}

#[test]
fn record_contents_do_not_steer_the_input_kind() {
    let dump = dump_with_page_header_in_a_string();
    // ... also when the start decides nothing (the magic damaged) and both readings are
    // tried.
    let mut damaged = dump.clone();
    damaged[1] ^= 0x20;
    for (name, bytes, code) in [("whole", &dump, 0), ("magic", &damaged, 1)] {
        let p = file(&format!("kind-{name}.bin"), bytes);
        let o = run(&["decode", p.to_str().unwrap()]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(code), "{name}: {out}\n{err}");
        assert!(
            out.contains("msg=\"user logged in\""),
            "{name}: {out}\n{err}"
        );
        assert!(out.contains("msg=\"after\""), "{name}: {out}\n{err}");
        assert!(
            !err.contains("flash dump") && !err.contains("page"),
            "{name}: {err}"
        );
    }
}

/// Rewrites a dump's end frame to claim `records` records.
fn with_end_count(dump: &[u8], records: u8) -> Vec<u8> {
    let end = dump.len() - 11; // FE 45 03 00, three one-byte varints, CRC
    assert_eq!(&dump[end..end + 2], &[0xFE, FRAME_END]);
    let mut d = dump[..end].to_vec();
    let body = [records, 0, 0];
    let mut frame = vec![0xFE, FRAME_END, 3, 0];
    frame.extend(body);
    let crc = flightrec_core::crc::crc32(&frame[1..]);
    frame.extend(crc.to_le_bytes());
    d.extend(frame);
    d
}

#[test]
fn info_exits_1_where_decode_does() {
    let dump = dump_with_page_header_in_a_string();
    assert!(dump.windows(2).any(|w| w == [0xFE, FRAME_RECORD]));
    let p = file("mismatch.bin", &with_end_count(&dump, 9));
    for cmd in ["decode", "info"] {
        let o = run(&[cmd, p.to_str().unwrap()]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {out}\n{err}");
        assert!(
            out.contains("COUNT MISMATCH: 9 written but 11 decoded"),
            "{cmd}: {out}"
        );
        // Said where a filtered or piped output cannot hide it.
        assert!(err.ends_with(": 1 record count mismatch\n"), "{cmd}: {err}");
    }
    let o = run(&["info", "--format", "json", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["count_mismatch"].as_bool(), v["whole"].as_bool()),
        (Some(true), Some(false))
    );
    // And both exit 0 on the same dump whole.
    let p = file("match.bin", &dump);
    for cmd in ["decode", "info"] {
        assert_eq!(
            run(&[cmd, p.to_str().unwrap()]).status.code(),
            Some(0),
            "{cmd}"
        );
    }
}

#[test]
fn standard_input_streams_and_refuses_a_flash_image() {
    use std::io::Write;
    use std::process::Stdio;
    let feed = |bytes: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flightrec"))
            .args(["decode", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        child.wait_with_output().unwrap()
    };
    let o = feed(&dump_with_page_header_in_a_string());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    assert!(text(&o).0.contains("msg=\"after\""));
    let (image, _) = flash_image(&[3]);
    let o = feed(&image);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("give it as a regular file"),
        "{}",
        text(&o).1
    );
}

#[test]
fn the_rest_of_a_reclaimed_dump_is_a_note_not_damage() {
    // Dumps of several pages each, round robin over 32 pages: the store reclaims the
    // oldest ones' first pages, and a newer dump wraps round the region's end.
    let (image, infos) = flash_image(&[60, 60, 60, 60, 60, 60]);
    let pages: u32 = infos.iter().map(|i| i.pages).sum();
    assert!(pages > PAGES as u32, "the store wrapped: {infos:?}");
    let p = file("reclaimed.img", &image);
    let o = run(&["decode", p.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(err.contains("reclaimed"), "{err}");
    // Every dump the store still lists is shown whole.
    let mut mem = image.clone();
    let mut store =
        FlashStore::mount(RamFlash::<PAGE, 4>::new(&mut mem), 0..(PAGES * PAGE) as u32).unwrap();
    let listed: Vec<_> = store.dumps().map(Result::unwrap).collect();
    assert!(listed.len() >= 2, "{listed:?}");
    for l in &listed {
        assert_eq!(shown(&out, l.id as usize, 60), 60, "dump {}: {out}", l.id);
    }
}

/// `flightrec ARGS` run in process: exit code, standard output, standard error.
fn run_in_process(args: &[&str]) -> (u8, String, String) {
    use clap::Parser;
    let cli = flightrec_cli::Cli::try_parse_from(
        std::iter::once("flightrec").chain(args.iter().copied()),
    )
    .unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = flightrec_cli::run(&cli, &flightrec_cli::Env::default(), &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

/// The flash image a power cut leaves while the store wrote dump `info` (committed in
/// `image`): its data from byte `k` on and its commit never reached the flash, nor the
/// pages the writer had not opened yet; with `opened`, the page that byte `k` starts was
/// opened (erased, header written) just before power went.
fn power_cut(image: &[u8], info: &DumpInfo, k: usize, opened: bool) -> Vec<u8> {
    // The layout of the flash crate's docs with 4-byte words: 16-byte slots.
    const SLOT: usize = 16;
    const PER_PAGE: usize = PAGE - SLOT;
    let mut img = image.to_vec();
    let first = info.first_page as usize;
    let page_of = |j: usize| (first + (j + SLOT) / PER_PAGE) % PAGES;
    let at = |j: usize| page_of(j) * PAGE + SLOT + (j + SLOT) % PER_PAGE;
    img[first * PAGE + SLOT..first * PAGE + 2 * SLOT].fill(0xFF);
    for j in k..info.len as usize {
        img[at(j)] = 0xFF;
    }
    // Pages reached: those holding bytes before `k` (the first page always).
    let reached = if k == 0 {
        1
    } else {
        (k - 1 + SLOT) / PER_PAGE + 1
    };
    let reached = reached + usize::from(opened && k > 0 && (k + SLOT) % PER_PAGE == 0);
    for p in reached..info.pages as usize {
        let p = (first + p) % PAGES;
        img[p * PAGE..(p + 1) * PAGE].fill(0xFF);
    }
    img
}

#[test]
fn a_power_cut_while_a_dump_is_written_is_reported_at_every_byte() {
    let (image, infos) = flash_image(&[3, 40]);
    let cut = &infos[1];
    assert!(cut.pages > 2, "{infos:?}");
    let mut mem = image.clone();
    let mut store =
        FlashStore::mount(RamFlash::<PAGE, 4>::new(&mut mem), 0..(PAGES * PAGE) as u32).unwrap();
    let mut whole = Vec::new();
    store.read_out(&infos[0], &mut whole).unwrap();
    let mut cut_bytes = Vec::new();
    store.read_out(cut, &mut cut_bytes).unwrap();
    let (img_path, file_path) = (file("power-cut.img", &[]), file("power-cut.bin", &[]));
    // Every byte of the dump's start and of each page boundary, the end, and a stride.
    let len = cut.len as usize;
    let per_page = PAGE - 16;
    let ks = (0..len).filter(|&k| {
        let boundary = (k + 16) % per_page;
        k <= 40 || !(3..per_page - 3).contains(&boundary) || k + 3 >= len || k % 29 == 0
    });
    for k in ks {
        for opened in [false, true] {
            let img = power_cut(&image, cut, k, opened);
            std::fs::write(&img_path, &img).unwrap();
            for cmd in ["decode", "info"] {
                let (code, out, err) = run_in_process(&[cmd, img_path.to_str().unwrap()]);
                assert_eq!(code, 1, "{cmd}, image cut at data byte {k}:\n{out}\n{err}");
                assert!(
                    err.contains(&format!("flash dump {}", cut.id)),
                    "{cmd}, cut at {k}: {err}"
                );
                if cmd == "decode" {
                    assert_eq!(shown(&out, 0, 3), 3, "cut at {k}: {out}");
                }
            }
        }
        // The same dump read out of the device as far as it got, after a whole one.
        if k > 0 {
            let mut bytes = whole.clone();
            bytes.extend_from_slice(&cut_bytes[..k]);
            std::fs::write(&file_path, &bytes).unwrap();
            let (code, out, err) = run_in_process(&["decode", file_path.to_str().unwrap()]);
            assert_eq!(code, 1, "dump file cut at byte {k}:\n{out}\n{err}");
            assert!(!err.is_empty(), "dump file cut at {k}");
            assert_eq!(shown(&out, 0, 3), 3, "dump file cut at {k}: {out}");
        }
    }
    // The seed the fuzz campaign left: nothing of the dump but its first page header.
    let img = power_cut(&image, cut, 0, false);
    let p = file("power-cut-before-data.img", &img);
    let o = run(&["decode", p.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(err.contains("holds no dump start"), "{err}");
}
